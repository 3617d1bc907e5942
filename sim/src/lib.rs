//! shieldx-sim: the deterministic discrete-event simulator over `shieldx-core`.
//!
//! This crate holds the simulator's engine foundations, each deterministic by
//! construction:
//! - [`rng::SimRng`]: one seeded PRNG with named, independent sub-streams
//!   (network, faults, workload), stable across platforms and crate versions;
//! - [`queue::EventQueue`]: events totally ordered by `(time, sequence number)`,
//!   with simulated time jumping straight to the next event;
//! - [`audit::AuditDigest`]: a blake3 chain over every delivery, timer, fault and
//!   random draw; two runs of one seed must end on the same digest.
//!
//! The protocol drivers, fault injectors, Byzantine actors, invariant checkers
//! and scenario runner are built on these as the PBFT core lands (issue
//! "Deterministic simulator"); they are not here yet.

pub mod audit;
pub mod queue;
pub mod rng;
