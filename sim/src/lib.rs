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
//! On these sit the scenario format ([`scenario`]), the run loop with its
//! network model, node faults and Byzantine roles ([`runner`]), and the
//! invariant checkers ([`checker`], and [`fidelity`] for snapshots), which are
//! written independently of the protocol code they judge, and the synthetic
//! labelled sensor workload ([`workload`]).

pub mod audit;
pub mod checker;
pub mod fidelity;
pub mod queue;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod shrink;
pub mod swarm;
pub mod workload;

pub use runner::{Progress, ProgressSink, RunReport, Simulation};
pub use scenario::Scenario;
