//! Cryptographic primitives, all built on audited pure-Rust crates.
//!
//! - [`digest`]: blake3 [`Digest`] newtype.
//! - [`ed25519`]: identities; strict verification and batch verification.
//! - [`vrf`]: ECVRF-EDWARDS25519-SHA512-TAI exactly as RFC 9381, on `curve25519-dalek`.
//! - [`bls`]: BLS12-381 min-pk signatures, ciphersuite
//!   `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`, on `bls12_381`, with aggregation,
//!   proofs of possession and t-of-n threshold signing.
//!
//! A build with the test-only `simulated-signatures` feature replaces the
//! ed25519 and BLS arithmetic with fast stand-ins that authenticate nothing
//! ([`SIMULATED_SIGNATURES`]); the ECVRF and blake3 are never replaced.
//!
//! Secret types zeroize on drop and never print their contents in `Debug`.
//! Functions that need randomness take a caller-supplied [`rand_core::CryptoRng`]:
//! this crate never reaches for OS randomness itself.
//!
//! Encodings are fixed-length byte strings (`to_bytes` / `from_slice`); decoding
//! checks the length first, then validity, and never panics on any input.

pub mod bls;
pub mod digest;
pub mod ed25519;
mod edwards;
pub mod vrf;

mod hex_fmt;

pub use digest::{Digest, DigestDomain, Digests};

/// Whether this build replaced ed25519 and BLS signatures with the simulator's
/// test-only stand-ins (feature `simulated-signatures`; see `bls/simulated.rs`).
/// Such a build authenticates nothing: a node must refuse to run in it, and
/// the simulator says so in every summary. The ECVRF and blake3 stay real.
pub const SIMULATED_SIGNATURES: bool = cfg!(feature = "simulated-signatures");

/// Why a cryptographic input was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The byte string has the wrong length for the value it should encode.
    #[error("{what} must be {expected} bytes, got {actual}")]
    InvalidLength {
        /// The value being decoded.
        what: &'static str,
        /// The only accepted length.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// The bytes do not decode to a point on the curve, or use a non-canonical encoding.
    #[error("{what} is not a canonical encoding of a curve point")]
    InvalidPoint {
        /// The value being decoded.
        what: &'static str,
    },
    /// The point is of small order (its cofactor multiple is the identity).
    #[error("{what} is a point of small order")]
    SmallOrderPoint {
        /// The value being decoded.
        what: &'static str,
    },
    /// The point is the identity, which no public key may be.
    #[error("{what} is the identity point")]
    IdentityPoint {
        /// The value being decoded.
        what: &'static str,
    },
    /// The point is on the curve but outside the prime-order subgroup.
    #[error("{what} is not in the prime-order subgroup")]
    NotInSubgroup {
        /// The value being decoded.
        what: &'static str,
    },
    /// A scalar is not reduced modulo the group order, or is zero where zero is forbidden.
    #[error("{what} is not a canonical scalar")]
    NonCanonicalScalar {
        /// The value being decoded.
        what: &'static str,
    },
    /// A signature or proof does not verify.
    #[error("{what} does not verify")]
    VerificationFailed {
        /// The check that failed.
        what: &'static str,
    },
    /// An operation needs at least one input and got none.
    #[error("{what}: no inputs")]
    Empty {
        /// The operation.
        what: &'static str,
    },
    /// Two lists that must pair up have different lengths.
    #[error("{what}: {left} items do not pair with {right} items")]
    LengthMismatch {
        /// The operation.
        what: &'static str,
        /// Length of the first list.
        left: usize,
        /// Length of the second list.
        right: usize,
    },
    /// Key generation input keying material is too short.
    #[error("input keying material must be at least 32 bytes, got {actual}")]
    ShortKeyMaterial {
        /// The length received.
        actual: usize,
    },
    /// Threshold parameters are outside 1 <= t <= n <= the share-index limit.
    #[error("invalid threshold {threshold} of {total}")]
    InvalidThreshold {
        /// Signatures needed.
        threshold: u32,
        /// Shares dealt.
        total: u32,
    },
    /// Fewer partial signatures than the threshold were supplied.
    #[error("{have} partial signatures, threshold is {need}")]
    NotEnoughShares {
        /// Partial signatures supplied.
        have: usize,
        /// Threshold.
        need: u32,
    },
    /// A share index is zero (the secret itself) or appears twice.
    #[error("share index {index} is zero or repeated")]
    BadShareIndex {
        /// The offending index.
        index: u32,
    },
}
