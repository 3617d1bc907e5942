//! shieldx-daemon: the production driver over `shieldx-core` (library part).
//!
//! - [`store`]: the ledger's event store on redb.
//! - [`genesis`]: the validator-set file (keys, proofs of possession, powers).
//! - [`node`]: the validator node (tokio, tonic, redb).

pub mod genesis;
pub mod node;
pub mod store;

/// The generated protobuf types and tonic services (`proto/shieldx/v1`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod proto {
    tonic::include_proto!("shieldx.v1");

    /// The encoded file descriptor set, for server reflection.
    pub const DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("shieldx_descriptor");
}
