//! Ed25519 identities (RFC 8032), on `ed25519-dalek`.
//!
//! Verification is always *strict*: it rejects small-order public keys and
//! non-canonical `R`/`s`, so one message has exactly one valid signature per key
//! and signatures cannot be malleated into a second valid form. That matters for
//! evidence and idempotency, which compare signed messages byte for byte.
//!
//! [`verify_batch`] checks many signatures with one multiscalar multiplication. Its
//! random coefficients are derived deterministically from the batch itself (a
//! Merlin transcript inside `ed25519-dalek`), so it needs no RNG input.

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
        // every key has exactly one encoding.
        if super::edwards::decode_canonical(&bytes).is_none() {
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
        let signatures: Vec<ed25519_dalek::Signature> = signatures.iter().map(|s| s.0).collect();
        let keys: Vec<ed25519_dalek::VerifyingKey> = keys.iter().map(|k| k.0).collect();
        ed25519_dalek::verify_batch(messages, &signatures, &keys)
            .map_err(|_| CryptoError::VerificationFailed { what: WHAT })
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

    #[test]
    fn debug_never_prints_the_secret() {
        let signing = key(7);
        let printed = format!("{signing:?}");
        assert!(!printed.contains(&hex::encode([7u8; 32])));
        assert!(printed.contains(&hex::encode(signing.verifying_key().to_bytes())));
    }
}
