//! ECVRF-EDWARDS25519-SHA512-TAI, exactly as RFC 9381 section 5 (suite string 0x03).
//!
//! - `prove` is RFC 9381 section 5.1, `proof_to_hash` section 5.2, `verify` section 5.3.
//! - `encode_to_curve` is try-and-increment (section 5.4.1.1), salted with the
//!   public key string.
//! - The nonce is RFC 8032-style (section 5.4.2.2); the challenge hashes
//!   `Y, H, Gamma, U, V` (section 5.4.3) and keeps 16 bytes.
//! - Decoding is strict: `s >= q` is rejected (section 5.4.4), points use the
//!   RFC 8032 section 5.1.3 decoding (so `y >= p` and "x = 0 with sign bit 1" are
//!   rejected), and public keys of small order are rejected (`validate_key`,
//!   section 5.4.5, as section 5.6.1 requires for full uniqueness and collision resistance).
//!
//! The output `beta` is a 64-byte pseudorandom value bound to `(public key, alpha)`.
//! It is unique: for a valid public key, no two proofs for the same alpha verify
//! to different betas.
//!
//! Performance: the point compressions of each operation are batched into one
//! field inversion (`compress_batch`), and verification computes `U` and `V`
//! with variable-time double-scalar multiplications (all inputs are public).

use core::fmt;

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use rand_core::CryptoRng;
use sha2::{Digest as _, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::CryptoError;
use super::edwards::decode_canonical as string_to_point;
use super::hex_fmt::{fixed, write_hex};

/// `suite_string` for ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381 section 5.5).
const SUITE: u8 = 0x03;
/// `cLen`: challenge length in bytes.
const CHALLENGE_LENGTH: usize = 16;

/// An ECVRF secret key: the 32-byte RFC 8032 seed and the values derived from it.
/// Zeroized on drop; `Debug` prints only the public key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct VrfSecretKey {
    seed: [u8; 32],
    /// The clamped secret scalar `x` (RFC 8032 section 5.1.5), reduced mod q.
    scalar: Scalar,
    /// The second half of SHA-512(seed): the nonce-generation prefix.
    nonce_prefix: [u8; 32],
    #[zeroize(skip)]
    public: VrfPublicKey,
}

/// An ECVRF public key: a canonical point that is not of small order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VrfPublicKey {
    bytes: [u8; 32],
    point: EdwardsPoint,
}

/// An 80-byte ECVRF proof `pi = Gamma || c || s`, decoded and range-checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VrfProof {
    gamma_bytes: [u8; 32],
    gamma: EdwardsPoint,
    challenge: [u8; CHALLENGE_LENGTH],
    response: Scalar,
}

/// The 64-byte VRF output `beta`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VrfOutput([u8; 64]);

impl VrfSecretKey {
    /// Length of the encoding (the seed) in bytes.
    pub const LENGTH: usize = 32;

    /// Draws a fresh key from the caller's RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> VrfSecretKey {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        VrfSecretKey::from_seed(&seed)
    }

    /// Decodes a key from its 32-byte seed.
    pub fn from_slice(bytes: &[u8]) -> Result<VrfSecretKey, CryptoError> {
        let seed = zeroize::Zeroizing::new(fixed::<32>("VRF secret key", bytes)?);
        Ok(VrfSecretKey::from_seed(&seed))
    }

    fn from_seed(seed: &[u8; 32]) -> VrfSecretKey {
        let expanded = ExpandedSecret::new(seed);
        let point = EdwardsPoint::mul_base(&expanded.scalar);
        let public = VrfPublicKey {
            bytes: point.compress().to_bytes(),
            point,
        };
        VrfSecretKey {
            seed: *seed,
            scalar: expanded.scalar,
            nonce_prefix: expanded.nonce_prefix,
            public,
        }
    }

    /// The 32-byte seed. The caller is responsible for zeroizing the copy.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.seed)
    }

    /// The matching public key.
    pub fn public_key(&self) -> VrfPublicKey {
        self.public
    }

    /// `ECVRF_prove` (RFC 9381 section 5.1), also returning `beta` so callers need
    /// not run `proof_to_hash` again.
    ///
    /// Fails only if try-and-increment exhausts its 256 counters, which happens
    /// with probability about 2^-256.
    pub fn prove(&self, alpha: &[u8]) -> Result<(VrfProof, VrfOutput), CryptoError> {
        let (h, _) = encode_to_curve(&self.public.bytes, alpha)?;
        let h_bytes = h.compress().to_bytes();
        let gamma = h * self.scalar;
        let k = nonce(&self.nonce_prefix, &h_bytes);
        let u = EdwardsPoint::mul_base(&k);
        let v = h * k;
        let [gamma_c, u_c, v_c, gamma_cleared_c] =
            EdwardsPoint::compress_batch(&[gamma, u, v, gamma.mul_by_cofactor()]);
        let challenge = challenge(
            &self.public.bytes,
            &h_bytes,
            gamma_c.as_bytes(),
            u_c.as_bytes(),
            v_c.as_bytes(),
        );
        let response = k + challenge_scalar(&challenge) * self.scalar;
        let proof = VrfProof {
            gamma_bytes: gamma_c.to_bytes(),
            gamma,
            challenge,
            response,
        };
        Ok((proof, hash_cleared_gamma(gamma_cleared_c.as_bytes())))
    }
}

impl fmt::Debug for VrfSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VrfSecretKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl VrfPublicKey {
    /// Length of the encoding in bytes.
    pub const LENGTH: usize = 32;

    /// Decodes a public key and runs `ECVRF_validate_key` (RFC 9381 section 5.4.5):
    /// rejects non-canonical encodings and points of small order.
    pub fn from_slice(bytes: &[u8]) -> Result<VrfPublicKey, CryptoError> {
        const WHAT: &str = "VRF public key";
        let bytes = fixed::<32>(WHAT, bytes)?;
        let point = string_to_point(&bytes).ok_or(CryptoError::InvalidPoint { what: WHAT })?;
        if point.is_small_order() {
            return Err(CryptoError::SmallOrderPoint { what: WHAT });
        }
        Ok(VrfPublicKey { bytes, point })
    }

    /// The 32-byte encoding.
    pub const fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// `ECVRF_verify` (RFC 9381 section 5.3) with `validate_key` already applied at
    /// decoding. Returns `beta` when the proof is valid.
    pub fn verify(&self, alpha: &[u8], proof: &VrfProof) -> Result<VrfOutput, CryptoError> {
        let (h, _) = encode_to_curve(&self.bytes, alpha)?;
        let c = challenge_scalar(&proof.challenge);
        let minus_c = -c;
        // U = s*B - c*Y and V = s*H - c*Gamma; every input is public, so
        // variable-time arithmetic is safe here.
        let u = EdwardsPoint::vartime_double_scalar_mul_basepoint(
            &minus_c,
            &self.point,
            &proof.response,
        );
        let v = EdwardsPoint::vartime_multiscalar_mul([proof.response, minus_c], [h, proof.gamma]);
        let [h_c, u_c, v_c, gamma_cleared_c] =
            EdwardsPoint::compress_batch(&[h, u, v, proof.gamma.mul_by_cofactor()]);
        let expected = challenge(
            &self.bytes,
            h_c.as_bytes(),
            &proof.gamma_bytes,
            u_c.as_bytes(),
            v_c.as_bytes(),
        );
        if expected != proof.challenge {
            return Err(CryptoError::VerificationFailed { what: "VRF proof" });
        }
        Ok(hash_cleared_gamma(gamma_cleared_c.as_bytes()))
    }
}

impl fmt::Debug for VrfPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VrfPublicKey(")?;
        write_hex(f, &self.bytes)?;
        f.write_str(")")
    }
}

impl VrfProof {
    /// Length of the encoding in bytes (`ptLen + cLen + qLen`).
    pub const LENGTH: usize = 80;

    /// `ECVRF_decode_proof` (RFC 9381 section 5.4.4): a canonical `Gamma`, a 16-byte
    /// challenge and a response `s < q`.
    pub fn from_slice(bytes: &[u8]) -> Result<VrfProof, CryptoError> {
        let bytes = fixed::<80>("VRF proof", bytes)?;
        let mut gamma_bytes = [0u8; 32];
        gamma_bytes.copy_from_slice(&bytes[..32]);
        let gamma = string_to_point(&gamma_bytes).ok_or(CryptoError::InvalidPoint {
            what: "VRF proof Gamma",
        })?;
        let mut challenge = [0u8; CHALLENGE_LENGTH];
        challenge.copy_from_slice(&bytes[32..48]);
        let mut response_bytes = [0u8; 32];
        response_bytes.copy_from_slice(&bytes[48..]);
        let response = Option::<Scalar>::from(Scalar::from_canonical_bytes(response_bytes)).ok_or(
            CryptoError::NonCanonicalScalar {
                what: "VRF proof s",
            },
        )?;
        Ok(VrfProof {
            gamma_bytes,
            gamma,
            challenge,
            response,
        })
    }

    /// The 80-byte encoding `Gamma || c || s`.
    pub fn to_bytes(&self) -> [u8; 80] {
        let mut out = [0u8; 80];
        out[..32].copy_from_slice(&self.gamma_bytes);
        out[32..48].copy_from_slice(&self.challenge);
        out[48..].copy_from_slice(self.response.as_bytes());
        out
    }

    /// `ECVRF_proof_to_hash` (RFC 9381 section 5.2). Does not verify the proof:
    /// only use the result of a proof that [`VrfPublicKey::verify`] accepted.
    pub fn to_hash(&self) -> VrfOutput {
        hash_cleared_gamma(self.gamma.mul_by_cofactor().compress().as_bytes())
    }
}

impl fmt::Debug for VrfProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VrfProof(")?;
        write_hex(f, &self.to_bytes())?;
        f.write_str(")")
    }
}

impl VrfOutput {
    /// Length of the encoding in bytes.
    pub const LENGTH: usize = 64;

    /// The 64 output bytes.
    pub const fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// The 64 output bytes, borrowed.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for VrfOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VrfOutput(")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

/// RFC 8032 section 5.1.5 secret expansion.
struct ExpandedSecret {
    clamped: [u8; 32],
    scalar: Scalar,
    nonce_prefix: [u8; 32],
}

impl ExpandedSecret {
    fn new(seed: &[u8; 32]) -> ExpandedSecret {
        let hashed = zeroize::Zeroizing::new(<[u8; 64]>::from(Sha512::digest(seed)));
        let mut clamped = [0u8; 32];
        clamped.copy_from_slice(&hashed[..32]);
        clamped[0] &= 248;
        clamped[31] &= 127;
        clamped[31] |= 64;
        let mut nonce_prefix = [0u8; 32];
        nonce_prefix.copy_from_slice(&hashed[32..]);
        ExpandedSecret {
            clamped,
            scalar: Scalar::from_bytes_mod_order(clamped),
            nonce_prefix,
        }
    }
}

impl Drop for ExpandedSecret {
    fn drop(&mut self) {
        self.clamped.zeroize();
        self.scalar.zeroize();
        self.nonce_prefix.zeroize();
    }
}

/// `ECVRF_encode_to_curve_try_and_increment` (RFC 9381 section 5.4.1.1), with the
/// public key string as salt. Returns the point and the counter that succeeded.
fn encode_to_curve(salt: &[u8; 32], alpha: &[u8]) -> Result<(EdwardsPoint, u8), CryptoError> {
    let mut prefix = Sha512::new();
    prefix.update([SUITE, 0x01]);
    prefix.update(salt);
    prefix.update(alpha);
    for counter in 0..=u8::MAX {
        let mut hasher = prefix.clone();
        hasher.update([counter, 0x00]);
        let hash = hasher.finalize();
        let mut candidate = [0u8; 32];
        candidate.copy_from_slice(&hash[..32]);
        if let Some(point) = string_to_point(&candidate) {
            return Ok((point.mul_by_cofactor(), counter));
        }
    }
    Err(CryptoError::VerificationFailed {
        what: "VRF encode_to_curve",
    })
}

/// `ECVRF_nonce_generation_RFC8032` (RFC 9381 section 5.4.2.2).
fn nonce(nonce_prefix: &[u8; 32], h_bytes: &[u8; 32]) -> Scalar {
    let mut hasher = Sha512::new();
    hasher.update(nonce_prefix);
    hasher.update(h_bytes);
    let mut k_string = <[u8; 64]>::from(hasher.finalize());
    let k = Scalar::from_bytes_mod_order_wide(&k_string);
    k_string.zeroize();
    k
}

/// `ECVRF_challenge_generation` (RFC 9381 section 5.4.3) over `Y, H, Gamma, U, V`.
fn challenge(
    y: &[u8; 32],
    h: &[u8; 32],
    gamma: &[u8; 32],
    u: &[u8; 32],
    v: &[u8; 32],
) -> [u8; CHALLENGE_LENGTH] {
    let mut hasher = Sha512::new();
    hasher.update([SUITE, 0x02]);
    for point in [y, h, gamma, u, v] {
        hasher.update(point);
    }
    hasher.update([0x00]);
    let hash = hasher.finalize();
    let mut out = [0u8; CHALLENGE_LENGTH];
    out.copy_from_slice(&hash[..CHALLENGE_LENGTH]);
    out
}

/// `string_to_int` of the 16-byte challenge (little-endian; always below q).
fn challenge_scalar(challenge: &[u8; CHALLENGE_LENGTH]) -> Scalar {
    let mut wide = [0u8; 32];
    wide[..CHALLENGE_LENGTH].copy_from_slice(challenge);
    Scalar::from_bytes_mod_order(wide)
}

/// `beta = SHA512(suite || 0x03 || point_to_string(cofactor * Gamma) || 0x00)`.
fn hash_cleared_gamma(cleared_gamma: &[u8; 32]) -> VrfOutput {
    let mut hasher = Sha512::new();
    hasher.update([SUITE, 0x03]);
    hasher.update(cleared_gamma);
    hasher.update([0x00]);
    VrfOutput(<[u8; 64]>::from(hasher.finalize()))
}

#[cfg(test)]
mod tests;
