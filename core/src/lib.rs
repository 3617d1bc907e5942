//! shieldx-core: the pure state machines of shieldx.
//!
//! # Contract
//!
//! This crate performs no I/O, never reads a clock and never draws OS randomness.
//! Time, randomness, storage and network enter only as inputs (a `now` argument,
//! a caller-supplied RNG, a storage trait, a message), so the same inputs in the
//! same order always produce the same outputs. The deterministic simulator
//! (`shieldx-sim`) and the production daemon (`shieldx-daemon`) are both loops
//! over this crate's API.
//!
//! The contract is enforced, not just stated:
//! - `core/clippy.toml` disallows `Instant::now`, `SystemTime::now`, `thread_rng`,
//!   `OsRng` and the default-hashed `HashMap`/`HashSet`;
//! - `core/tests/dependency_contract.rs` fails if `cargo tree -p shieldx-core -e normal`
//!   reaches tokio, tonic, mio or hyper.
//!
//! # Modules
//! - [`crypto`]: ed25519 identities, ECVRF (RFC 9381), BLS12-381 (min-pk, POP),
//!   blake3 digests.
//! - [`codec`] and [`consensus`]: the wire encoding and the PBFT replica.
//! - [`detect`]: signature and anomaly rules, the compiled matcher, quality metrics.
//! - [`ledger`]: the hash-chained event log, its storage trait and in-memory store.
//! - [`staking`]: the stake-weighted VRF leader schedule, its beacon, and the
//!   slashing policy.
//! - [`app`]: the replicated application (credits, alerts, stakes, rules) that
//!   PBFT executes, over the ledger.

pub mod app;
pub mod codec;
pub mod consensus;
pub mod crypto;
pub mod detect;
pub mod ledger;
pub mod staking;
