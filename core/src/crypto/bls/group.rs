//! The BLS12-381 group operations behind [`super`]: public keys in G1,
//! signatures in G2, hashing with RFC 9380 `hash_to_curve` and verification by
//! one multi-Miller loop. The test-only build swaps this module for
//! `simulated.rs`, which has the same functions.

use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use bls12_381::{
    G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective, Gt, Scalar, multi_miller_loop,
};

use crate::crypto::CryptoError;

/// A public key: `secret * g1`.
pub(super) type PublicPoint = G1Affine;
/// A signature: `secret * H(message)` in G2.
pub(super) type SignaturePoint = G2Affine;

/// `SkToPk`.
pub(super) fn public_of(secret: &Scalar) -> PublicPoint {
    G1Affine::from(G1Affine::generator() * secret)
}

/// `secret * hash_to_curve(message, dst)`.
pub(super) fn sign(secret: &Scalar, message: &[u8], dst: &[u8]) -> SignaturePoint {
    G2Affine::from(hash_to_g2(message, dst) * secret)
}

/// Decodes a compressed G1 point and applies `KeyValidate`.
pub(super) fn decode_public(
    bytes: &[u8; 48],
    what: &'static str,
) -> Result<PublicPoint, CryptoError> {
    let unchecked = Option::<G1Affine>::from(G1Affine::from_compressed_unchecked(bytes))
        .ok_or(CryptoError::InvalidPoint { what })?;
    if bool::from(unchecked.is_identity()) {
        return Err(CryptoError::IdentityPoint { what });
    }
    if !bool::from(unchecked.is_torsion_free()) {
        return Err(CryptoError::NotInSubgroup { what });
    }
    Ok(unchecked)
}

/// The 48-byte compressed encoding.
pub(super) fn encode_public(public: &PublicPoint) -> [u8; 48] {
    public.to_compressed()
}

/// Decodes a compressed G2 point and checks it is in the prime-order subgroup
/// (`signature_subgroup_check`).
pub(super) fn decode_signature(
    bytes: &[u8; 96],
    what: &'static str,
) -> Result<SignaturePoint, CryptoError> {
    let unchecked = Option::<G2Affine>::from(G2Affine::from_compressed_unchecked(bytes))
        .ok_or(CryptoError::InvalidPoint { what })?;
    if !bool::from(unchecked.is_torsion_free()) {
        return Err(CryptoError::NotInSubgroup { what });
    }
    Ok(unchecked)
}

/// The 96-byte compressed encoding.
pub(super) fn encode_signature(signature: &SignaturePoint) -> [u8; 96] {
    signature.to_compressed()
}

/// The sum of public keys, and whether it is the identity.
pub(super) fn sum_publics<'a>(publics: impl Iterator<Item = &'a PublicPoint>) -> PublicPoint {
    G1Affine::from(publics.fold(G1Projective::identity(), |acc, p| acc.add_mixed(p)))
}

/// Whether a (summed) public key is the identity.
pub(super) fn is_identity(public: &PublicPoint) -> bool {
    bool::from(public.is_identity())
}

/// `sum(weight_i * signature_i)`; a weight of one is plain aggregation.
pub(super) fn weighted_sum<'a>(
    terms: impl Iterator<Item = (&'a SignaturePoint, Scalar)>,
) -> SignaturePoint {
    G2Affine::from(
        terms.fold(G2Projective::identity(), |acc, (signature, weight)| {
            if weight == Scalar::one() {
                acc + signature
            } else {
                acc + G2Projective::from(signature) * weight
            }
        }),
    )
}

/// Checks `prod e(P_i, H(m_i)) == e(g1, signature)` with one multi-Miller loop
/// and one final exponentiation, as `prod e(P_i, H(m_i)) * e(-g1, signature) == 1`.
pub(super) fn verify(
    terms: &[(&PublicPoint, &[u8])],
    dst: &[u8],
    signature: &SignaturePoint,
    what: &'static str,
) -> Result<(), CryptoError> {
    let prepared: Vec<G2Prepared> = terms
        .iter()
        .map(|(_, message)| G2Prepared::from(G2Affine::from(hash_to_g2(message, dst))))
        .chain(core::iter::once(G2Prepared::from(*signature)))
        .collect();
    let minus_generator = -G1Affine::generator();
    let pairs: Vec<(&G1Affine, &G2Prepared)> = terms
        .iter()
        .map(|(public, _)| *public)
        .chain(core::iter::once(&minus_generator))
        .zip(prepared.iter())
        .collect();
    if multi_miller_loop(&pairs).final_exponentiation() == Gt::identity() {
        Ok(())
    } else {
        Err(CryptoError::VerificationFailed { what })
    }
}

/// `hash_to_curve` onto G2 with `expand_message_xmd(SHA-256)` (RFC 9380 section 8.8.2).
fn hash_to_g2(message: &[u8], dst: &[u8]) -> G2Projective {
    <G2Projective as HashToCurve<ExpandMsgXmd<sha2_v010::Sha256>>>::hash_to_curve([message], dst)
}
