//! Ed25519 identities (RFC 8032), on `ed25519-dalek`.
//!
//! Verification is always *strict*: it rejects small-order public keys and
//! non-canonical `R`/`s`, so one message has exactly one valid signature per key
//! and signatures cannot be malleated into a second valid form. That matters for
//! evidence and idempotency, which compare signed messages byte for byte.
//!
//! [`verify_batch`] checks many signatures with one multiscalar multiplication. Its
//! random coefficients are derived deterministically from the batch itself (a
//! blake3 transcript of every challenge and `s`), so it needs no RNG input.
//! Signatures by one key share that key's term: a batch of requests from 16
//! clients multiplies about one point per signature (its `R`) instead of two.

use core::fmt;

#[cfg(not(feature = "simulated-signatures"))]
use ed25519_dalek::Signer as _;
use rand_core::CryptoRng;

use super::CryptoError;
use super::hex_fmt::{fixed, write_hex};

/// An ed25519 secret key (the 32-byte RFC 8032 seed). Zeroized on drop.
pub struct SigningKey(ed25519_dalek::SigningKey);

/// An ed25519 public key, decoded and checked to be a canonical, non-small-order point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

/// A 64-byte ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

impl SigningKey {
    /// Length of the encoding in bytes.
    pub const LENGTH: usize = 32;

    /// Draws a fresh key from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> SigningKey {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// Decodes a key from its 32-byte seed.
    pub fn from_slice(bytes: &[u8]) -> Result<SigningKey, CryptoError> {
        let seed = zeroize::Zeroizing::new(fixed::<32>("ed25519 secret key", bytes)?);
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The 32-byte seed. The caller is responsible for zeroizing the copy.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// Signs `message` (PureEdDSA; deterministic).
    pub fn sign(&self, message: &[u8]) -> Signature {
        #[cfg(not(feature = "simulated-signatures"))]
        return Signature(self.0.sign(message));
        #[cfg(feature = "simulated-signatures")]
        return Signature(ed25519_dalek::Signature::from_bytes(&simulated::sign(
            self.0.verifying_key().as_bytes(),
            message,
        )));
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.verifying_key())
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Length of the encoding in bytes.
    pub const LENGTH: usize = 32;

    /// Decodes a public key, rejecting non-canonical encodings and small-order points.
    pub fn from_slice(bytes: &[u8]) -> Result<VerifyingKey, CryptoError> {
        const WHAT: &str = "ed25519 public key";
        let bytes = fixed::<32>(WHAT, bytes)?;
        // Reject the non-canonical encodings that dalek's decompression accepts, so
        // every key has exactly one encoding; dalek then decompresses it once.
        if !super::edwards::is_canonical_encoding(&bytes) {
            return Err(CryptoError::InvalidPoint { what: WHAT });
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| CryptoError::InvalidPoint { what: WHAT })?;
        if key.is_weak() {
            return Err(CryptoError::SmallOrderPoint { what: WHAT });
        }
        Ok(VerifyingKey(key))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verifies `signature` on `message` strictly (RFC 8032 section 5.1.7 plus
    /// rejection of small-order `R` and non-canonical `s`).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), CryptoError> {
        const WHAT: &str = "ed25519 signature";
        #[cfg(not(feature = "simulated-signatures"))]
        return self
            .0
            .verify_strict(message, &signature.0)
            .map_err(|_| CryptoError::VerificationFailed { what: WHAT });
        #[cfg(feature = "simulated-signatures")]
        return (simulated::sign(self.0.as_bytes(), message) == signature.0.to_bytes())
            .then_some(())
            .ok_or(CryptoError::VerificationFailed { what: WHAT });
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifyingKey(")?;
        write_hex(f, self.0.as_bytes())?;
        f.write_str(")")
    }
}

impl Signature {
    /// Length of the encoding in bytes.
    pub const LENGTH: usize = 64;

    /// Decodes a signature. Only the length is checked here; `s < l` and the point
    /// `R` are checked by verification.
    pub fn from_slice(bytes: &[u8]) -> Result<Signature, CryptoError> {
        let bytes = fixed::<64>("ed25519 signature", bytes)?;
        Ok(Signature(ed25519_dalek::Signature::from_bytes(&bytes)))
    }

    /// The 64-byte encoding `R || s`.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        write_hex(f, &self.0.to_bytes())?;
        f.write_str(")")
    }
}

/// Verifies many `(message, signature, key)` triples at once.
///
/// Succeeds only if every signature is valid. On failure it does not say which
/// one failed; callers that need to know fall back to [`VerifyingKey::verify`]
/// per item. Batch verification is cofactored and therefore slightly more
/// permissive than strict single verification for adversarial small-order
/// components; keys decoded through [`VerifyingKey::from_slice`] are never small-order,
/// and callers that must match strict semantics exactly re-check singly on failure.
pub fn verify_batch(
    messages: &[&[u8]],
    signatures: &[Signature],
    keys: &[VerifyingKey],
) -> Result<(), CryptoError> {
    const WHAT: &str = "ed25519 batch";
    if messages.len() != signatures.len() || messages.len() != keys.len() {
        return Err(CryptoError::LengthMismatch {
            what: WHAT,
            left: messages.len(),
            right: signatures.len().min(keys.len()),
        });
    }
    if messages.is_empty() {
        return Ok(());
    }
    #[cfg(not(feature = "simulated-signatures"))]
    {
        batch_equation_holds(messages, signatures, keys)
            .then_some(())
            .ok_or(CryptoError::VerificationFailed { what: WHAT })
    }
    #[cfg(feature = "simulated-signatures")]
    {
        let all_valid = messages
            .iter()
            .zip(signatures)
            .zip(keys)
            .all(|((message, signature), key)| key.verify(message, signature).is_ok());
        all_valid
            .then_some(())
            .ok_or(CryptoError::VerificationFailed { what: WHAT })
    }
}

/// The batch equation with coefficients `z_i` (128 bits each, derived from the
/// whole batch), challenges `k_i = SHA-512(R_i || A_i || M_i)` and the keys'
/// terms merged:
///
/// `sum z_i R_i + sum_A (sum_{i: A_i = A} z_i k_i) A - (sum z_i s_i) B == 0`.
///
/// It is `ed25519-dalek`'s batch equation (not cofactored), with the per-key
/// merge: a signature costs one point in the multiplication, plus one per
/// distinct key. Rejects a non-canonical `s` or an `R` that does not decode.
#[cfg(not(feature = "simulated-signatures"))]
fn batch_equation_holds(
    messages: &[&[u8]],
    signatures: &[Signature],
    keys: &[VerifyingKey],
) -> bool {
    use std::collections::BTreeMap;

    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use sha2::{Digest as _, Sha512};

    let mut transcript = blake3::Hasher::new_derive_key("shieldx ed25519 batch coefficients v1");
    transcript.update(&(signatures.len() as u64).to_le_bytes());
    let challenges: Vec<Scalar> = messages
        .iter()
        .zip(signatures)
        .zip(keys)
        .map(|((message, signature), key)| {
            let bytes = signature.0.to_bytes();
            let hram = <[u8; 64]>::from(
                Sha512::new()
                    .chain_update(&bytes[..32])
                    .chain_update(key.0.as_bytes())
                    .chain_update(message)
                    .finalize(),
            );
            transcript.update(&hram);
            transcript.update(&bytes[32..]);
            Scalar::from_bytes_mod_order_wide(&hram)
        })
        .collect();
    let mut coefficients = transcript.finalize_xof();

    let mut scalars = Vec::with_capacity(signatures.len() + 1);
    let mut points = Vec::with_capacity(signatures.len() + 1);
    let mut basepoint = Scalar::ZERO;
    let mut merged: BTreeMap<[u8; 32], (EdwardsPoint, Scalar)> = BTreeMap::new();
    for ((signature, key), challenge) in signatures.iter().zip(keys).zip(&challenges) {
        let bytes = signature.0.to_bytes();
        let mut s = [0u8; 32];
        s.copy_from_slice(&bytes[32..]);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
            return false;
        };
        let mut r = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        let Some(r) = CompressedEdwardsY(r).decompress() else {
            return false;
        };
        let mut z = [0u8; 32];
        coefficients.fill(&mut z[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        basepoint -= z * s;
        scalars.push(z);
        points.push(r);
        let term = merged
            .entry(key.to_bytes())
            .or_insert_with(|| (key.0.to_edwards(), Scalar::ZERO));
        term.1 += z * challenge;
    }
    for (point, scalar) in merged.into_values() {
        points.push(point);
        scalars.push(scalar);
    }
    points.push(ED25519_BASEPOINT_POINT);
    scalars.push(basepoint);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

/// Test-only stand-in for ed25519 signing, compiled under the
/// `simulated-signatures` feature: a signature is 64 bytes of blake3 output
/// derived from the *public* key and the message. Anyone can compute it for
/// any key, so it is no signature at all; it stands in for ed25519 only
/// against the simulator's Byzantine roles, which sign with their own keys and
/// forge by corrupting bytes. The node refuses to start in such a build
/// ([`super::SIMULATED_SIGNATURES`]).
#[cfg(feature = "simulated-signatures")]
mod simulated {
    pub(super) fn sign(public: &[u8; 32], message: &[u8]) -> [u8; 64] {
        let mut hasher = blake3::Hasher::new_derive_key("shieldx simulated signatures: ed25519");
        hasher.update(public);
        hasher.update(message);
        let mut signature = [0u8; 64];
        hasher.finalize_xof().fill(&mut signature);
        signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_slice(&[seed; 32]).expect("32 bytes is a valid seed length")
    }

    #[test]
    fn rfc8032_test_1_signature() {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        let secret =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .expect("valid hex");
        let signing = SigningKey::from_slice(&secret).expect("valid seed");
        assert_eq!(
            hex::encode(signing.verifying_key().to_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let signature = signing.sign(b"");
        assert_eq!(
            hex::encode(signature.to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert_eq!(signing.verifying_key().verify(b"", &signature), Ok(()));
        assert!(signing.verifying_key().verify(b"x", &signature).is_err());
    }

    #[test]
    fn rejects_small_order_and_non_canonical_keys() {
        // The identity point (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            VerifyingKey::from_slice(&identity),
            Err(CryptoError::SmallOrderPoint {
                what: "ed25519 public key"
            })
        );
        // y = p + 1 is a non-canonical encoding of the identity.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert_eq!(
            VerifyingKey::from_slice(&non_canonical),
            Err(CryptoError::InvalidPoint {
                what: "ed25519 public key"
            })
        );
    }

    #[test]
    fn batch_accepts_all_valid_and_rejects_one_bad() {
        let keys: Vec<SigningKey> = (1..=8).map(key).collect();
        let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; usize::from(i) + 1]).collect();
        let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let mut signatures: Vec<Signature> =
            keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        let publics: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
        assert_eq!(verify_batch(&message_refs, &signatures, &publics), Ok(()));
        signatures.swap(0, 1);
        assert_eq!(
            verify_batch(&message_refs, &signatures, &publics),
            Err(CryptoError::VerificationFailed {
                what: "ed25519 batch"
            })
        );
        assert!(matches!(
            verify_batch(&message_refs[..7], &signatures, &publics),
            Err(CryptoError::LengthMismatch { .. })
        ));
    }

    /// Many signatures by few keys, as a batch of client requests: the keys'
    /// merged terms must still hold every signature to its own message.
    #[test]
    #[cfg(not(feature = "simulated-signatures"))]
    fn batch_with_repeated_keys_accepts_valid_and_rejects_each_kind_of_bad() {
        let keys: Vec<SigningKey> = (1..=3).map(key).collect();
        let messages: Vec<Vec<u8>> = (0..24u8).map(|i| vec![i; 40]).collect();
        let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signers: Vec<&SigningKey> = (0..24).map(|i| &keys[i % 3]).collect();
        let signatures: Vec<Signature> = signers
            .iter()
            .zip(&messages)
            .map(|(k, m)| k.sign(m))
            .collect();
        let publics: Vec<VerifyingKey> = signers.iter().map(|k| k.verifying_key()).collect();
        assert_eq!(verify_batch(&message_refs, &signatures, &publics), Ok(()));
        let rejected = |signatures: &[Signature], publics: &[VerifyingKey]| {
            verify_batch(&message_refs, signatures, publics).is_err()
        };
        // Two signatures by one key, swapped between its messages.
        let mut swapped = signatures.clone();
        swapped.swap(0, 3);
        assert!(rejected(&swapped, &publics));
        // One signature credited to another key.
        let mut wrong_key = publics.clone();
        wrong_key[4] = keys[0].verifying_key();
        assert!(rejected(&signatures, &wrong_key));
        // One bit of one `s` flipped.
        let mut bytes = signatures[7].to_bytes();
        bytes[40] ^= 1;
        let mut flipped = signatures.clone();
        flipped[7] = Signature::from_slice(&bytes).expect("64 bytes");
        assert!(rejected(&flipped, &publics));
        // A non-canonical `s` (s + l), which would satisfy the equation.
        let mut bytes = signatures[9].to_bytes();
        let mut s = [0u8; 32];
        s.copy_from_slice(&bytes[32..]);
        // The group order l, little-endian.
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, l) in s.iter_mut().zip(&order) {
            let sum = u16::from(*byte) + u16::from(*l) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        bytes[32..].copy_from_slice(&s);
        let mut malleated = signatures.clone();
        malleated[9] = Signature::from_slice(&bytes).expect("64 bytes");
        assert!(rejected(&malleated, &publics));
        // An `R` that is not a curve point.
        let not_a_point = (2u8..)
            .map(|y| {
                let mut r = [0u8; 32];
                r[0] = y;
                r
            })
            .find(|r| {
                curve25519_dalek::edwards::CompressedEdwardsY(*r)
                    .decompress()
                    .is_none()
            })
            .expect("half of all y are not on the curve");
        let mut bytes = signatures[11].to_bytes();
        bytes[..32].copy_from_slice(&not_a_point);
        let mut undecodable = signatures.clone();
        undecodable[11] = Signature::from_slice(&bytes).expect("64 bytes");
        assert!(rejected(&undecodable, &publics));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let signing = key(7);
        let printed = format!("{signing:?}");
        assert!(!printed.contains(&hex::encode([7u8; 32])));
        assert!(printed.contains(&hex::encode(signing.verifying_key().to_bytes())));
    }
}
