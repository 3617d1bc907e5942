//! The BLS12-381 group operations behind [`super`]: public keys in G1,
//! signatures in G2, hashing with RFC 9380 `hash_to_curve` and verification by
//! one multi-Miller loop. The test-only build swaps this module for
//! `simulated.rs`, which has the same functions.

use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use bls12_381::{
    G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective, Gt, Scalar, multi_miller_loop,
};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::crypto::CryptoError;

/// A public key: `secret * g1`.
pub(super) type PublicPoint = G1Affine;
/// A signature: `secret * H(message)` in G2.
pub(super) type SignaturePoint = G2Affine;
/// A message hashed onto G2: `H(message)`.
pub(super) type MessagePoint = G2Affine;

/// `SkToPk`.
pub(super) fn public_of(secret: &Scalar) -> PublicPoint {
    G1Affine::from(G1Affine::generator() * secret)
}

/// `hash_to_curve(message, dst)` onto G2 with `expand_message_xmd(SHA-256)`
/// (RFC 9380 section 8.8.2).
pub(super) fn hash(message: &[u8], dst: &[u8]) -> MessagePoint {
    G2Affine::from(<G2Projective as HashToCurve<
        ExpandMsgXmd<sha2_v010::Sha256>,
    >>::hash_to_curve([message], dst))
}

/// `secret * H(message)`.
pub(super) fn sign(secret: &Scalar, message: &MessagePoint) -> SignaturePoint {
    G2Affine::from(mul_secret(&G2Projective::from(message), secret))
}

/// Width of the window in [`mul_secret`].
const WINDOW_BITS: u32 = 4;

/// `secret * point` by a fixed window of [`WINDOW_BITS`], constant-time in
/// `secret`: every window costs the same four doublings, one lookup that reads
/// all sixteen table entries and one complete addition (adding the identity
/// for a zero window). It replaces `bls12_381`'s double-and-add, which pays
/// one addition per bit (255), with one per window (64) plus fifteen for the
/// table.
fn mul_secret(point: &G2Projective, secret: &Scalar) -> G2Projective {
    let mut table = [G2Projective::identity(); 1 << WINDOW_BITS];
    for i in 1..table.len() {
        table[i] = if i % 2 == 0 {
            table[i / 2].double()
        } else {
            table[i - 1] + point
        };
    }
    let mut acc = G2Projective::identity();
    // Little-endian canonical bytes; walk them from the most significant.
    for byte in secret.to_bytes().iter().rev() {
        for window in [byte >> WINDOW_BITS, byte & 0x0f] {
            for _ in 0..WINDOW_BITS {
                acc = acc.double();
            }
            let mut entry = G2Projective::identity();
            for (index, candidate) in (0u8..).zip(table.iter()) {
                entry.conditional_assign(candidate, index.ct_eq(&window));
            }
            acc += entry;
        }
    }
    acc
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
    let point = decode_signature_unchecked(bytes, what)?;
    if !in_subgroup(&point) {
        return Err(CryptoError::NotInSubgroup { what });
    }
    Ok(point)
}

/// Decodes a compressed G2 point: a point on the curve (decompression finds
/// its `y` or fails), not yet known to be in the prime-order subgroup.
pub(super) fn decode_signature_unchecked(
    bytes: &[u8; 96],
    what: &'static str,
) -> Result<SignaturePoint, CryptoError> {
    Option::<G2Affine>::from(G2Affine::from_compressed_unchecked(bytes))
        .ok_or(CryptoError::InvalidPoint { what })
}

/// Decodes an uncompressed G2 point: canonical coordinates (the flags say
/// uncompressed) of a point on the curve, not yet known to be in the
/// prime-order subgroup.
pub(super) fn decode_signature_uncompressed_unchecked(
    bytes: &[u8; 192],
    what: &'static str,
) -> Result<SignaturePoint, CryptoError> {
    let point = Option::<G2Affine>::from(G2Affine::from_uncompressed_unchecked(bytes))
        .ok_or(CryptoError::InvalidPoint { what })?;
    if !bool::from(point.is_on_curve()) {
        return Err(CryptoError::InvalidPoint { what });
    }
    Ok(point)
}

/// The 192-byte uncompressed encoding.
pub(super) fn encode_signature_uncompressed(signature: &SignaturePoint) -> [u8; 192] {
    signature.to_uncompressed()
}

/// `signature_subgroup_check`: the point is in the prime-order subgroup.
pub(super) fn in_subgroup(point: &SignaturePoint) -> bool {
    bool::from(point.is_torsion_free())
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
    terms: &[(&PublicPoint, &MessagePoint)],
    signature: &SignaturePoint,
    what: &'static str,
) -> Result<(), CryptoError> {
    let prepared: Vec<G2Prepared> = terms
        .iter()
        .map(|(_, message)| G2Prepared::from(**message))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::bls::{BlsSecretKey, BlsSignature, UncheckedSignature};

    #[test]
    fn a_vote_outside_the_subgroup_decodes_but_fails_its_check_and_spoils_an_aggregate() {
        let off = crate::crypto::bls::off_subgroup_signature();
        let what = "BLS signature";
        assert_eq!(
            BlsSignature::from_slice(&off),
            Err(CryptoError::NotInSubgroup { what })
        );
        let unchecked = UncheckedSignature::from_slice(&off).expect("on the curve");
        assert_eq!(unchecked.check(), Err(CryptoError::NotInSubgroup { what }));
        assert_eq!(unchecked.to_bytes(), off);
        // Bytes that are no point at all are refused at decoding.
        let mut not_a_point = [0xffu8; 96];
        not_a_point[0] = 0x9f;
        assert!(UncheckedSignature::from_slice(&not_a_point).is_err());

        let keys: Vec<BlsSecretKey> = (1..=3u8)
            .map(|i| BlsSecretKey::key_gen(&[i; 32], b"").expect("ikm"))
            .collect();
        let honest: Vec<UncheckedSignature> = keys.iter().map(|k| k.sign(b"slot").into()).collect();
        let aggregate = UncheckedSignature::aggregate(&honest).expect("in the subgroup");
        let checked: Vec<BlsSignature> = keys.iter().map(|k| k.sign(b"slot")).collect();
        assert_eq!(
            aggregate,
            BlsSignature::aggregate(&checked).expect("non-empty")
        );
        let publics: Vec<_> = keys.iter().map(BlsSecretKey::public_key).collect();
        assert_eq!(
            crate::crypto::bls::fast_aggregate_verify(&publics, b"slot", &aggregate),
            Ok(())
        );
        // One vote off the subgroup: the sum is off it too, and refused.
        let spoiled = [honest[0], honest[1], unchecked];
        assert_eq!(
            UncheckedSignature::aggregate(&spoiled),
            Err(CryptoError::NotInSubgroup {
                what: "aggregate BLS signature"
            })
        );
        assert!(UncheckedSignature::aggregate(&[]).is_err());
    }

    #[test]
    fn the_uncompressed_encoding_round_trips_and_refuses_what_is_no_curve_point() {
        let what = "BLS signature";
        let signature: UncheckedSignature = BlsSecretKey::key_gen(&[9; 32], b"")
            .expect("ikm")
            .sign(b"slot")
            .into();
        let bytes = signature.to_uncompressed();
        assert_eq!(
            UncheckedSignature::from_uncompressed_slice(&bytes),
            Ok(signature)
        );
        // A point off the subgroup is on the curve: it decodes, and its
        // check fails, as in the compressed form.
        let off = UncheckedSignature::from_slice(&crate::crypto::bls::off_subgroup_signature())
            .expect("on the curve");
        let decoded = UncheckedSignature::from_uncompressed_slice(&off.to_uncompressed())
            .expect("on the curve");
        assert_eq!(decoded.check(), Err(CryptoError::NotInSubgroup { what }));
        let refused = |bytes: &[u8]| UncheckedSignature::from_uncompressed_slice(bytes).is_err();
        // The compressed form, a length off by one, the compression flag.
        assert!(refused(&signature.to_bytes()));
        assert!(refused(&bytes[..191]));
        let mut flagged = bytes;
        flagged[0] |= 0x80;
        assert!(refused(&flagged));
        // A coordinate changed: no longer on the curve.
        let mut moved = bytes;
        moved[191] ^= 1;
        assert!(refused(&moved));
        // A coordinate not below the field modulus.
        let mut wide = bytes;
        wide[..48].fill(0xff);
        wide[0] = 0x1f;
        assert!(refused(&wide));
        // The identity decodes (a vote carrying it fails verification);
        // the infinity flag with coordinates does not.
        let mut identity = [0u8; 192];
        identity[0] = 0x40;
        assert!(!refused(&identity));
        identity[100] = 1;
        assert!(refused(&identity));
    }

    /// The windowed multiplication agrees with `bls12_381`'s double-and-add on
    /// edge scalars (zero, one, every window set, r - 1) and on pseudo-random ones.
    #[test]
    fn windowed_multiplication_matches_double_and_add() {
        let point = G2Projective::from(hash(b"windowed", b"shieldx test"));
        let mut scalars = vec![
            Scalar::zero(),
            Scalar::one(),
            Scalar::from(0x0f),
            Scalar::from(0x10),
            Scalar::from(u64::MAX),
            -Scalar::one(),
        ];
        let mut wide = [0u8; 64];
        for round in 0u8..16 {
            blake3::Hasher::new()
                .update(&[round])
                .finalize_xof()
                .fill(&mut wide);
            scalars.push(Scalar::from_bytes_wide(&wide));
        }
        for scalar in scalars {
            assert_eq!(mul_secret(&point, &scalar), point * scalar);
        }
    }
}
