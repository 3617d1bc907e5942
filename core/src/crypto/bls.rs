//! BLS12-381 signatures, minimal-pubkey-size variant (public keys in G1,
//! signatures in G2), ciphersuite `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`
//! (draft-irtf-cfrg-bls-signature-05), on the `bls12_381` crate.
//!
//! - [`BlsSecretKey::key_gen`] is the draft's `KeyGen` (section 2.3, HKDF-SHA-256).
//! - Messages are hashed with `hash_to_curve` (RFC 9380, `expand_message_xmd` with
//!   SHA-256 and the SSWU map) under [`SIGNATURE_DST`].
//! - Every public key is checked with `KeyValidate` when decoded: it must be on the
//!   curve, in the prime-order subgroup and not the identity. Signatures are
//!   subgroup-checked when decoded.
//! - Proofs of possession (section 3.3) sign the public key's encoding under
//!   [`POP_DST`]. Once every key in a set has a verified proof, aggregating public
//!   keys for one message is safe from rogue-key attacks, which is what makes
//!   [`fast_aggregate_verify`] sound.
//! - [`fast_aggregate_verify`] and [`aggregate_verify`] each run a single
//!   multi-Miller loop and one final exponentiation.
//! - Signing multiplies `H(message)` by the secret with a 4-bit fixed window,
//!   constant-time in the secret (`bls12_381`'s own multiplication is
//!   double-and-add). [`HashedMessage`] lets a caller that signs and verifies
//!   one message hash it once.
//! - [`threshold`] adds t-of-n signing: Shamir shares, partial signatures and
//!   Lagrange combination in the exponent.

use core::fmt;

use bls12_381::Scalar;
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;
use super::hex_fmt::{fixed, write_hex};

pub mod threshold;

// The group arithmetic. A build with the test-only `simulated-signatures`
// feature compiles `bls/simulated.rs` in its place (same functions, scalar-field
// stand-ins); every other build uses BLS12-381.
#[cfg(not(feature = "simulated-signatures"))]
mod group;
#[cfg(feature = "simulated-signatures")]
#[path = "bls/simulated.rs"]
mod group;

use group::{MessagePoint, PublicPoint, SignaturePoint};

/// Domain separation tag for message signatures.
pub const SIGNATURE_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Domain separation tag for proofs of possession.
pub const POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A BLS secret key: a non-zero scalar modulo r. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlsSecretKey(Scalar);

/// A BLS public key in G1 that passed `KeyValidate`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BlsPublicKey(PublicPoint);

/// A BLS signature (or proof of possession) in G2, subgroup-checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BlsSignature(SignaturePoint);

/// A signature decoded from its bytes, a point on the curve, but not yet
/// checked to be in the prime-order subgroup. Commit votes travel as these:
/// a certificate aggregates a quorum's votes and checks the *sum* once
/// ([`UncheckedSignature::aggregate`]), which is what FastAggregateVerify
/// requires of its signature, instead of checking every vote on arrival.
/// A vote verified alone is checked first ([`UncheckedSignature::check`]).
/// A vote with a component outside the subgroup makes the sum fail the
/// check (unless another vote cancels it exactly, and then the sum is a valid
/// aggregate of the signers' keys all the same).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UncheckedSignature(SignaturePoint);

/// A message hashed onto G2 under [`SIGNATURE_DST`], for a caller that signs
/// and verifies one message more than once: hashing is about a quarter of a
/// verification and a third of a signature. A replica's own commit vote and
/// the certificate it then checks sign the same (chain, view, sequence,
/// digest), so it hashes that message once.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashedMessage(MessagePoint);

impl HashedMessage {
    /// `hash_to_curve(message, SIGNATURE_DST)`.
    pub fn new(message: &[u8]) -> HashedMessage {
        HashedMessage(group::hash(message, SIGNATURE_DST))
    }
}

impl fmt::Debug for HashedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashedMessage(")?;
        write_hex(f, &group::encode_signature(&self.0))?;
        f.write_str(")")
    }
}

/// The sum of several public keys, for verifying a signature aggregated over one
/// message. Only sound when every summand's proof of possession was verified.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AggregatePublicKey(PublicPoint);

impl BlsSecretKey {
    /// Length of the encoding in bytes.
    pub const LENGTH: usize = 32;

    /// `KeyGen(IKM, key_info)` (draft-irtf-cfrg-bls-signature-05 section 2.3).
    /// `ikm` must hold at least 32 bytes of secret entropy.
    pub fn key_gen(ikm: &[u8], key_info: &[u8]) -> Result<BlsSecretKey, CryptoError> {
        if ikm.len() < 32 {
            return Err(CryptoError::ShortKeyMaterial { actual: ikm.len() });
        }
        // L = ceil((3 * ceil(log2(r))) / 16) = 48.
        const OKM_LENGTH: usize = 48;
        let mut salt: [u8; 32] = Sha256::digest(b"BLS-SIG-KEYGEN-SALT-").into();
        let mut ikm_zero = Zeroizing::new(Vec::with_capacity(ikm.len() + 1));
        ikm_zero.extend_from_slice(ikm);
        ikm_zero.push(0);
        let mut info = Vec::with_capacity(key_info.len() + 2);
        info.extend_from_slice(key_info);
        info.extend_from_slice(&(OKM_LENGTH as u16).to_be_bytes());
        loop {
            let (_, hkdf) = Hkdf::<Sha256>::extract(Some(&salt), &ikm_zero);
            let mut okm = Zeroizing::new([0u8; OKM_LENGTH]);
            // 48 bytes is far below HKDF-SHA-256's 255 * 32 byte limit.
            hkdf.expand(&info, okm.as_mut())
                .map_err(|_| CryptoError::ShortKeyMaterial { actual: ikm.len() })?;
            // OS2IP(OKM) mod r: big-endian bytes into a little-endian 64-byte buffer.
            let mut wide = Zeroizing::new([0u8; 64]);
            for (i, byte) in okm.iter().rev().enumerate() {
                wide[i] = *byte;
            }
            let scalar = Scalar::from_bytes_wide(&wide);
            if scalar != Scalar::zero() {
                return Ok(BlsSecretKey(scalar));
            }
            salt = Sha256::digest(salt).into();
        }
    }

    /// Draws a fresh key: `KeyGen` over 32 bytes from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> BlsSecretKey {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ikm.as_mut());
        // 32 bytes of key material is exactly the minimum key_gen accepts.
        BlsSecretKey::key_gen(ikm.as_ref(), b"").expect("32-byte IKM is always long enough")
    }

    /// Decodes a key from its 32-byte big-endian encoding (`I2OSP(SK, 32)`),
    /// rejecting zero and values not below r.
    pub fn from_slice(bytes: &[u8]) -> Result<BlsSecretKey, CryptoError> {
        const WHAT: &str = "BLS secret key";
        let mut little_endian = Zeroizing::new(fixed::<32>(WHAT, bytes)?);
        little_endian.reverse();
        let scalar = Option::<Scalar>::from(Scalar::from_bytes(&little_endian))
            .filter(|s| *s != Scalar::zero())
            .ok_or(CryptoError::NonCanonicalScalar { what: WHAT })?;
        Ok(BlsSecretKey(scalar))
    }

    fn from_scalar(scalar: Scalar) -> Option<BlsSecretKey> {
        (scalar != Scalar::zero()).then_some(BlsSecretKey(scalar))
    }

    /// The 32-byte big-endian encoding. The caller is responsible for the copy.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut bytes = Zeroizing::new(self.0.to_bytes());
        bytes.reverse();
        bytes
    }

    /// `SkToPk`.
    pub fn public_key(&self) -> BlsPublicKey {
        BlsPublicKey(group::public_of(&self.0))
    }

    /// `Sign(SK, message)`.
    pub fn sign(&self, message: &[u8]) -> BlsSignature {
        self.sign_hashed(&HashedMessage::new(message))
    }

    /// `Sign(SK, message)` for a message already hashed.
    pub fn sign_hashed(&self, message: &HashedMessage) -> BlsSignature {
        BlsSignature(group::sign(&self.0, &message.0))
    }

    /// `PopProve(SK)`: a signature over the public key's encoding under [`POP_DST`].
    pub fn prove_possession(&self) -> BlsSignature {
        let public = self.public_key().to_bytes();
        BlsSignature(group::sign(&self.0, &group::hash(&public, POP_DST)))
    }
}

impl fmt::Debug for BlsSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlsSecretKey")
            .field("public", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl BlsPublicKey {
    /// Length of the encoding in bytes.
    pub const LENGTH: usize = 48;

    /// Decodes a compressed G1 point and applies `KeyValidate`.
    pub fn from_slice(bytes: &[u8]) -> Result<BlsPublicKey, CryptoError> {
        const WHAT: &str = "BLS public key";
        let bytes = fixed::<48>(WHAT, bytes)?;
        group::decode_public(&bytes, WHAT).map(BlsPublicKey)
    }

    /// The 48-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; 48] {
        group::encode_public(&self.0)
    }

    /// `Verify(PK, message, signature)`.
    pub fn verify(&self, message: &[u8], signature: &BlsSignature) -> Result<(), CryptoError> {
        self.verify_hashed(&HashedMessage::new(message), signature)
    }

    /// `Verify(PK, message, signature)` for a message already hashed.
    pub fn verify_hashed(
        &self,
        message: &HashedMessage,
        signature: &BlsSignature,
    ) -> Result<(), CryptoError> {
        group::verify(&[(&self.0, &message.0)], &signature.0, "BLS signature")
    }

    /// `PopVerify(PK, proof)`.
    pub fn verify_possession(&self, proof: &BlsSignature) -> Result<(), CryptoError> {
        group::verify(
            &[(&self.0, &group::hash(&self.to_bytes(), POP_DST))],
            &proof.0,
            "BLS proof of possession",
        )
    }
}

impl fmt::Debug for BlsPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlsPublicKey(")?;
        write_hex(f, &self.to_bytes())?;
        f.write_str(")")
    }
}

impl BlsSignature {
    /// Length of the encoding in bytes.
    pub const LENGTH: usize = 96;

    /// Decodes a compressed G2 point and checks it is in the prime-order subgroup
    /// (`signature_subgroup_check`).
    pub fn from_slice(bytes: &[u8]) -> Result<BlsSignature, CryptoError> {
        const WHAT: &str = "BLS signature";
        let bytes = fixed::<96>(WHAT, bytes)?;
        group::decode_signature(&bytes, WHAT).map(BlsSignature)
    }

    /// The 96-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; 96] {
        group::encode_signature(&self.0)
    }

    /// `Aggregate(signatures)`: the sum of the points. Fails on an empty list.
    pub fn aggregate(signatures: &[BlsSignature]) -> Result<BlsSignature, CryptoError> {
        if signatures.is_empty() {
            return Err(CryptoError::Empty {
                what: "BLS signature aggregation",
            });
        }
        Ok(BlsSignature(group::weighted_sum(
            signatures.iter().map(|s| (&s.0, Scalar::one())),
        )))
    }
}

impl UncheckedSignature {
    /// Decodes a compressed G2 point; refuses bytes that are not a point.
    pub fn from_slice(bytes: &[u8]) -> Result<UncheckedSignature, CryptoError> {
        const WHAT: &str = "BLS signature";
        let bytes = fixed::<96>(WHAT, bytes)?;
        group::decode_signature_unchecked(&bytes, WHAT).map(UncheckedSignature)
    }

    /// The 96-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; 96] {
        group::encode_signature(&self.0)
    }

    /// Decodes an uncompressed G2 point ([`Self::UNCOMPRESSED_LEN`] bytes:
    /// both coordinates, in the ZCash serialization); refuses bytes that are
    /// not a point on the curve. No square root is taken: a point decodes in
    /// microseconds, where decompressing one costs a G2 square root
    /// (about 0.25 ms), which is why commit votes travel uncompressed.
    pub fn from_uncompressed_slice(bytes: &[u8]) -> Result<UncheckedSignature, CryptoError> {
        const WHAT: &str = "BLS signature";
        let bytes = fixed::<{ Self::UNCOMPRESSED_LEN }>(WHAT, bytes)?;
        group::decode_signature_uncompressed_unchecked(&bytes, WHAT).map(UncheckedSignature)
    }

    /// The uncompressed encoding.
    pub fn to_uncompressed(&self) -> [u8; Self::UNCOMPRESSED_LEN] {
        group::encode_signature_uncompressed(&self.0)
    }

    /// Bytes of the uncompressed encoding.
    pub const UNCOMPRESSED_LEN: usize = 192;

    /// `signature_subgroup_check`: the signature, if the point is in the
    /// prime-order subgroup.
    pub fn check(&self) -> Result<BlsSignature, CryptoError> {
        if group::in_subgroup(&self.0) {
            Ok(BlsSignature(self.0))
        } else {
            Err(CryptoError::NotInSubgroup {
                what: "BLS signature",
            })
        }
    }

    /// `Aggregate(signatures)`, then the subgroup check of the sum. Fails on
    /// an empty list and on a sum outside the subgroup.
    pub fn aggregate(signatures: &[UncheckedSignature]) -> Result<BlsSignature, CryptoError> {
        if signatures.is_empty() {
            return Err(CryptoError::Empty {
                what: "BLS signature aggregation",
            });
        }
        UncheckedSignature(group::weighted_sum(
            signatures.iter().map(|s| (&s.0, Scalar::one())),
        ))
        .check()
        .map_err(|_| CryptoError::NotInSubgroup {
            what: "aggregate BLS signature",
        })
    }
}

impl From<BlsSignature> for UncheckedSignature {
    fn from(signature: BlsSignature) -> UncheckedSignature {
        UncheckedSignature(signature.0)
    }
}

impl fmt::Debug for UncheckedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UncheckedSignature(")?;
        write_hex(f, &self.to_bytes())?;
        f.write_str(")")
    }
}

impl fmt::Debug for BlsSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlsSignature(")?;
        write_hex(f, &self.to_bytes())?;
        f.write_str(")")
    }
}

impl AggregatePublicKey {
    /// Sums validated public keys. Fails on an empty list.
    pub fn aggregate<'a>(
        publics: impl IntoIterator<Item = &'a BlsPublicKey>,
    ) -> Result<AggregatePublicKey, CryptoError> {
        let mut count = 0usize;
        let sum = group::sum_publics(publics.into_iter().map(|public| {
            count += 1;
            &public.0
        }));
        if count == 0 {
            return Err(CryptoError::Empty {
                what: "BLS public key aggregation",
            });
        }
        Ok(AggregatePublicKey(sum))
    }

    /// Verifies a signature aggregated over one message by every summand.
    pub fn verify(&self, message: &[u8], signature: &BlsSignature) -> Result<(), CryptoError> {
        self.verify_hashed(&HashedMessage::new(message), signature)
    }

    /// [`AggregatePublicKey::verify`] for a message already hashed.
    pub fn verify_hashed(
        &self,
        message: &HashedMessage,
        signature: &BlsSignature,
    ) -> Result<(), CryptoError> {
        if group::is_identity(&self.0) {
            return Err(CryptoError::IdentityPoint {
                what: "BLS aggregate public key",
            });
        }
        group::verify(
            &[(&self.0, &message.0)],
            &signature.0,
            "BLS aggregate signature",
        )
    }
}

impl fmt::Debug for AggregatePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AggregatePublicKey(")?;
        write_hex(f, &group::encode_public(&self.0))?;
        f.write_str(")")
    }
}

/// `FastAggregateVerify(PKs, message, signature)`: every key signed the same
/// message. Requires verified proofs of possession for `publics`.
pub fn fast_aggregate_verify(
    publics: &[BlsPublicKey],
    message: &[u8],
    signature: &BlsSignature,
) -> Result<(), CryptoError> {
    AggregatePublicKey::aggregate(publics)?.verify(message, signature)
}

/// `AggregateVerify((PK_1..PK_n), (message_1..message_n), signature)`. Under the POP
/// scheme the messages need not be distinct. One multi-Miller loop over n + 1 pairs.
pub fn aggregate_verify(
    publics: &[BlsPublicKey],
    messages: &[&[u8]],
    signature: &BlsSignature,
) -> Result<(), CryptoError> {
    const WHAT: &str = "BLS aggregate verification";
    if publics.len() != messages.len() {
        return Err(CryptoError::LengthMismatch {
            what: WHAT,
            left: publics.len(),
            right: messages.len(),
        });
    }
    if publics.is_empty() {
        return Err(CryptoError::Empty { what: WHAT });
    }
    let hashed: Vec<MessagePoint> = messages
        .iter()
        .map(|message| group::hash(message, SIGNATURE_DST))
        .collect();
    let terms: Vec<(&PublicPoint, &MessagePoint)> =
        publics.iter().map(|p| &p.0).zip(hashed.iter()).collect();
    group::verify(&terms, &signature.0, "BLS aggregate signature")
}

/// Test-only: a point on the curve outside the prime-order subgroup, the
/// first `x = k` (real part) whose decompression succeeds; G2's cofactor is
/// huge, so such a point is almost never in the subgroup.
#[cfg(all(test, not(feature = "simulated-signatures")))]
pub(crate) fn off_subgroup_signature() -> [u8; 96] {
    use bls12_381::G2Affine;
    (1u8..=255)
        .map(|k| {
            let mut bytes = [0u8; 96];
            bytes[0] = 0x80; // compressed, finite, smaller y
            bytes[95] = k;
            bytes
        })
        .find(|bytes| {
            Option::<G2Affine>::from(G2Affine::from_compressed_unchecked(bytes))
                .is_some_and(|p| !bool::from(p.is_torsion_free()))
        })
        .expect("a small x on the curve")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> BlsSecretKey {
        BlsSecretKey::key_gen(&[seed; 32], b"").expect("32-byte IKM")
    }

    #[test]
    fn sign_verify_and_reject_other_message() {
        let secret = key(1);
        let signature = secret.sign(b"commit");
        assert_eq!(secret.public_key().verify(b"commit", &signature), Ok(()));
        assert_eq!(
            secret.public_key().verify(b"commot", &signature),
            Err(CryptoError::VerificationFailed {
                what: "BLS signature"
            })
        );
    }

    #[test]
    fn hashed_message_signs_and_verifies_as_the_bytes_do() {
        let secret = key(5);
        let hashed = HashedMessage::new(b"commit");
        let signature = secret.sign_hashed(&hashed);
        assert_eq!(signature, secret.sign(b"commit"));
        assert_eq!(
            secret.public_key().verify_hashed(&hashed, &signature),
            Ok(())
        );
        let other = HashedMessage::new(b"commot");
        assert!(
            secret
                .public_key()
                .verify_hashed(&other, &signature)
                .is_err()
        );
        let aggregate = AggregatePublicKey::aggregate([&secret.public_key()]).expect("one key");
        assert_eq!(aggregate.verify_hashed(&hashed, &signature), Ok(()));
        assert!(aggregate.verify_hashed(&other, &signature).is_err());
    }

    #[test]
    fn pop_and_message_signatures_are_domain_separated() {
        let secret = key(2);
        let public = secret.public_key();
        let proof = secret.prove_possession();
        assert_eq!(public.verify_possession(&proof), Ok(()));
        // The same bytes signed as a message are not a proof of possession.
        let as_message = secret.sign(&public.to_bytes());
        assert!(public.verify_possession(&as_message).is_err());
        assert!(public.verify(&public.to_bytes(), &proof).is_err());
    }

    #[test]
    fn key_validate_rejects_identity() {
        let mut identity = [0u8; 48];
        identity[0] = 0xc0;
        assert_eq!(
            BlsPublicKey::from_slice(&identity),
            Err(CryptoError::IdentityPoint {
                what: "BLS public key"
            })
        );
    }

    #[test]
    fn secret_key_encoding_rejects_zero_and_out_of_range() {
        assert!(BlsSecretKey::from_slice(&[0; 32]).is_err());
        assert!(BlsSecretKey::from_slice(&[0xff; 32]).is_err());
        let secret = key(3);
        let decoded = BlsSecretKey::from_slice(secret.to_bytes().as_ref()).expect("round trip");
        assert_eq!(decoded.public_key(), secret.public_key());
    }

    #[test]
    fn key_gen_rejects_short_ikm() {
        assert_eq!(
            BlsSecretKey::key_gen(&[1; 31], b"").map(|k| k.public_key()),
            Err(CryptoError::ShortKeyMaterial { actual: 31 })
        );
    }

    #[test]
    fn aggregate_of_nothing_is_an_error() {
        assert!(matches!(
            BlsSignature::aggregate(&[]),
            Err(CryptoError::Empty { .. })
        ));
        assert!(matches!(
            fast_aggregate_verify(&[], b"m", &key(1).sign(b"m")),
            Err(CryptoError::Empty { .. })
        ));
        assert!(matches!(
            aggregate_verify(&[], &[], &key(1).sign(b"m")),
            Err(CryptoError::Empty { .. })
        ));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let secret = key(4);
        let printed = format!("{secret:?}");
        assert!(!printed.contains(&hex::encode(secret.to_bytes().as_ref())));
        assert!(printed.contains("BlsPublicKey("));
    }
}
