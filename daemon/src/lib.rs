//! shieldx-daemon: the production driver over `shieldx-core` (library part).
//!
//! - [`store`]: the ledger's event store on redb.
//! - [`genesis`]: the validator-set file (keys, proofs of possession, powers).

pub mod genesis;
pub mod store;
