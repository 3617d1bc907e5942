//! Test-only stand-in for [`group`](super): the same algebra over the scalar
//! field, compiled instead of BLS12-381 under the `simulated-signatures`
//! feature, so the simulator's swarm can cover many more seeds.
//!
//! A public key *is* its secret scalar, `H` is blake3 onto the field, and a
//! signature is `secret * H(message)`. Signing, aggregation, threshold
//! combination and the verification equation
//! `sum(public_i * H(m_i)) == signature` keep BLS's shape, at the cost of a few
//! field multiplications instead of a pairing. **Nothing here is secret or
//! unforgeable**: anyone holding a public key can sign for it. It stands in for
//! BLS only against the simulator's Byzantine roles, which sign with their own
//! keys and forge by corrupting bytes, exactly as they do in a real build. The
//! node refuses to start in a build with this feature
//! ([`crate::crypto::SIMULATED_SIGNATURES`]).

use bls12_381::Scalar;

use crate::crypto::CryptoError;

/// A public key: the secret scalar itself.
pub(super) type PublicPoint = Scalar;
/// A signature: `secret * H(message)`.
pub(super) type SignaturePoint = Scalar;
/// A message hashed onto the field: `H(message)`.
pub(super) type MessagePoint = Scalar;

pub(super) fn public_of(secret: &Scalar) -> PublicPoint {
    *secret
}

pub(super) fn hash(message: &[u8], dst: &[u8]) -> MessagePoint {
    let mut hasher =
        blake3::Hasher::new_derive_key("shieldx simulated signatures: bls hash to field");
    hasher.update(&(dst.len() as u64).to_le_bytes());
    hasher.update(dst);
    hasher.update(message);
    let mut wide = [0u8; 64];
    hasher.finalize_xof().fill(&mut wide);
    Scalar::from_bytes_wide(&wide)
}

pub(super) fn sign(secret: &Scalar, message: &MessagePoint) -> SignaturePoint {
    message * secret
}

/// 32 little-endian scalar bytes, then 16 zero bytes; zero is the identity.
pub(super) fn decode_public(
    bytes: &[u8; 48],
    what: &'static str,
) -> Result<PublicPoint, CryptoError> {
    let scalar = decode_scalar(bytes, what)?;
    if scalar == Scalar::zero() {
        return Err(CryptoError::IdentityPoint { what });
    }
    Ok(scalar)
}

pub(super) fn encode_public(public: &PublicPoint) -> [u8; 48] {
    let mut out = [0u8; 48];
    out[..32].copy_from_slice(&public.to_bytes());
    out
}

/// 32 little-endian scalar bytes, then 64 zero bytes.
pub(super) fn decode_signature(
    bytes: &[u8; 96],
    what: &'static str,
) -> Result<SignaturePoint, CryptoError> {
    decode_scalar(bytes, what)
}

pub(super) fn decode_signature_unchecked(
    bytes: &[u8; 96],
    what: &'static str,
) -> Result<SignaturePoint, CryptoError> {
    decode_scalar(bytes, what)
}

/// 32 little-endian scalar bytes, then 160 zero bytes.
pub(super) fn decode_signature_uncompressed_unchecked(
    bytes: &[u8; 192],
    what: &'static str,
) -> Result<SignaturePoint, CryptoError> {
    decode_scalar(bytes, what)
}

pub(super) fn encode_signature_uncompressed(signature: &SignaturePoint) -> [u8; 192] {
    let mut out = [0u8; 192];
    out[..32].copy_from_slice(&signature.to_bytes());
    out
}

/// Every scalar is in the (stand-in) group.
pub(super) fn in_subgroup(_point: &SignaturePoint) -> bool {
    true
}

pub(super) fn encode_signature(signature: &SignaturePoint) -> [u8; 96] {
    let mut out = [0u8; 96];
    out[..32].copy_from_slice(&signature.to_bytes());
    out
}

pub(super) fn sum_publics<'a>(publics: impl Iterator<Item = &'a PublicPoint>) -> PublicPoint {
    publics.fold(Scalar::zero(), |acc, p| acc + p)
}

pub(super) fn is_identity(public: &PublicPoint) -> bool {
    *public == Scalar::zero()
}

pub(super) fn weighted_sum<'a>(
    terms: impl Iterator<Item = (&'a SignaturePoint, Scalar)>,
) -> SignaturePoint {
    terms.fold(Scalar::zero(), |acc, (signature, weight)| {
        acc + signature * weight
    })
}

pub(super) fn verify(
    terms: &[(&PublicPoint, &MessagePoint)],
    signature: &SignaturePoint,
    what: &'static str,
) -> Result<(), CryptoError> {
    let expected = terms.iter().fold(Scalar::zero(), |acc, (public, message)| {
        acc + *message * *public
    });
    if expected == *signature {
        Ok(())
    } else {
        Err(CryptoError::VerificationFailed { what })
    }
}

fn decode_scalar<const N: usize>(
    bytes: &[u8; N],
    what: &'static str,
) -> Result<Scalar, CryptoError> {
    let (head, tail) = bytes.split_at(32);
    let mut repr = [0u8; 32];
    repr.copy_from_slice(head);
    if tail.iter().any(|b| *b != 0) {
        return Err(CryptoError::InvalidPoint { what });
    }
    Option::<Scalar>::from(Scalar::from_bytes(&repr)).ok_or(CryptoError::InvalidPoint { what })
}
