//! shieldx-daemon: the production driver over `shieldx-core` (library part).
//!
//! - [`store`]: the ledger's event store on redb.

pub mod store;
