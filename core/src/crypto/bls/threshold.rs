//! t-of-n threshold BLS: Shamir secret sharing of a BLS secret key, partial
//! signatures, and combination by Lagrange interpolation in the exponent.
//!
//! The dealer evaluates a random polynomial `f` of degree `t - 1` with
//! `f(0) = secret` at the share indices `1..=n`. Share `i` signs as an ordinary
//! BLS key, giving `f(i) * H(m)`. Any `t` partial signatures with distinct indices
//! combine to `sum(lambda_i * f(i)) * H(m) = f(0) * H(m)`, the group key's
//! signature, where `lambda_i = prod_{j != i} x_j / (x_j - x_i)`.
//!
//! This is a trusted-dealer scheme: the dealer learns the secret. Each partial
//! signature can be checked against its public share before combination, so a
//! bad share is attributable.

use bls12_381::Scalar;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{BlsPublicKey, BlsSecretKey, BlsSignature};
use crate::crypto::CryptoError;

/// Upper bound on `n`, the number of shares dealt.
pub const SHARE_COUNT_MAX: u32 = 4096;

/// One participant's secret share: `f(index)`.
#[derive(Debug, Clone)]
pub struct SecretShare {
    index: u32,
    key: BlsSecretKey,
}

/// The public counterpart of a share: `f(index) * g1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicShare {
    /// The share index, in `1..=n`.
    pub index: u32,
    /// The share's public key.
    pub key: BlsPublicKey,
}

/// A signature by one share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialSignature {
    /// The index of the share that signed.
    pub index: u32,
    /// The share's signature.
    pub signature: BlsSignature,
}

/// The output of [`deal`].
#[derive(Debug)]
pub struct Dealing {
    /// The group public key (the dealt secret's public key).
    pub group_public: BlsPublicKey,
    /// Signatures needed to combine.
    pub threshold: u32,
    /// One secret share per participant, indices `1..=n`.
    pub secret_shares: Vec<SecretShare>,
    /// The matching public shares.
    pub public_shares: Vec<PublicShare>,
}

impl SecretShare {
    /// The share index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The share's public counterpart.
    pub fn public_share(&self) -> PublicShare {
        PublicShare {
            index: self.index,
            key: self.key.public_key(),
        }
    }

    /// Signs `message` with this share.
    pub fn sign(&self, message: &[u8]) -> PartialSignature {
        PartialSignature {
            index: self.index,
            signature: self.key.sign(message),
        }
    }
}

impl PublicShare {
    /// Checks a partial signature against this share.
    pub fn verify(&self, message: &[u8], partial: &PartialSignature) -> Result<(), CryptoError> {
        if partial.index != self.index {
            return Err(CryptoError::BadShareIndex {
                index: partial.index,
            });
        }
        self.key.verify(message, &partial.signature)
    }
}

/// Splits `secret` into `total` shares, any `threshold` of which can sign.
pub fn deal<R: CryptoRng + ?Sized>(
    secret: &BlsSecretKey,
    threshold: u32,
    total: u32,
    rng: &mut R,
) -> Result<Dealing, CryptoError> {
    if threshold == 0 || threshold > total || total > SHARE_COUNT_MAX {
        return Err(CryptoError::InvalidThreshold { threshold, total });
    }
    loop {
        let mut coefficients: Vec<Scalar> = Vec::with_capacity(threshold as usize);
        coefficients.push(secret.0);
        for _ in 1..threshold {
            coefficients.push(random_scalar(rng));
        }
        let secret_shares: Option<Vec<SecretShare>> = (1..=total)
            .map(|index| {
                let value = evaluate(&coefficients, Scalar::from(u64::from(index)));
                BlsSecretKey::from_scalar(value).map(|key| SecretShare { index, key })
            })
            .collect();
        for coefficient in &mut coefficients {
            zeroize::Zeroize::zeroize(coefficient);
        }
        // A zero share has probability about n / 2^255; draw a fresh polynomial.
        if let Some(secret_shares) = secret_shares {
            let public_shares = secret_shares
                .iter()
                .map(SecretShare::public_share)
                .collect();
            return Ok(Dealing {
                group_public: secret.public_key(),
                threshold,
                secret_shares,
                public_shares,
            });
        }
    }
}

/// Combines at least `threshold` partial signatures with distinct, non-zero
/// indices into the group signature. Uses the first `threshold` partials; it does
/// not verify them (check each with [`PublicShare::verify`] first, or verify the
/// result under the group key).
pub fn combine(threshold: u32, partials: &[PartialSignature]) -> Result<BlsSignature, CryptoError> {
    if threshold == 0 || threshold > SHARE_COUNT_MAX {
        return Err(CryptoError::InvalidThreshold {
            threshold,
            total: SHARE_COUNT_MAX,
        });
    }
    if partials.len() < threshold as usize {
        return Err(CryptoError::NotEnoughShares {
            have: partials.len(),
            need: threshold,
        });
    }
    let chosen = &partials[..threshold as usize];
    let mut indices: Vec<u32> = chosen.iter().map(|p| p.index).collect();
    indices.sort_unstable();
    if let Some(index) = indices.first().filter(|i| **i == 0) {
        return Err(CryptoError::BadShareIndex { index: *index });
    }
    if let Some(pair) = indices.windows(2).find(|w| w[0] == w[1]) {
        return Err(CryptoError::BadShareIndex { index: pair[0] });
    }
    let xs: Vec<Scalar> = chosen
        .iter()
        .map(|p| Scalar::from(u64::from(p.index)))
        .collect();
    Ok(BlsSignature(super::group::weighted_sum(
        chosen
            .iter()
            .enumerate()
            .map(|(i, partial)| (&partial.signature.0, lagrange_at_zero(&xs, i))),
    )))
}

/// `lambda_i(0) = prod_{j != i} x_j / (x_j - x_i)`; the x values are distinct.
fn lagrange_at_zero(xs: &[Scalar], i: usize) -> Scalar {
    let mut numerator = Scalar::one();
    let mut denominator = Scalar::one();
    for (j, x_j) in xs.iter().enumerate() {
        if j != i {
            numerator *= x_j;
            denominator *= x_j - xs[i];
        }
    }
    // Distinct indices make every factor of the denominator non-zero.
    let inverse = Option::<Scalar>::from(denominator.invert()).expect("distinct share indices");
    numerator * inverse
}

/// Horner evaluation of the polynomial with `coefficients` (constant term first).
fn evaluate(coefficients: &[Scalar], x: Scalar) -> Scalar {
    coefficients
        .iter()
        .rev()
        .fold(Scalar::zero(), |acc, c| acc * x + c)
}

fn random_scalar<R: CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(wide.as_mut());
    Scalar::from_bytes_wide(&wide)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic test RNG seeded with a constant.
    fn rng() -> rand::rngs::StdRng {
        rand::SeedableRng::seed_from_u64(7)
    }

    #[test]
    fn any_t_of_n_combine_to_the_group_signature() {
        let secret = BlsSecretKey::key_gen(&[5; 32], b"").expect("IKM");
        let dealing = deal(&secret, 3, 5, &mut rng()).expect("valid parameters");
        let message = b"checkpoint 100";
        let partials: Vec<PartialSignature> = dealing
            .secret_shares
            .iter()
            .map(|s| s.sign(message))
            .collect();
        for (share, partial) in dealing.public_shares.iter().zip(&partials) {
            assert_eq!(share.verify(message, partial), Ok(()));
        }
        let expected = secret.sign(message);
        for subset in [[0, 1, 2], [0, 2, 4], [4, 3, 1], [1, 2, 3]] {
            let chosen: Vec<PartialSignature> = subset.iter().map(|&i| partials[i]).collect();
            let combined = combine(3, &chosen).expect("three distinct shares");
            assert_eq!(combined, expected, "subset {subset:?}");
            assert_eq!(dealing.group_public.verify(message, &combined), Ok(()));
        }
    }

    #[test]
    fn fewer_than_t_do_not_combine() {
        let secret = BlsSecretKey::key_gen(&[6; 32], b"").expect("IKM");
        let dealing = deal(&secret, 3, 4, &mut rng()).expect("valid parameters");
        let partials: Vec<PartialSignature> = dealing
            .secret_shares
            .iter()
            .take(2)
            .map(|s| s.sign(b"m"))
            .collect();
        assert_eq!(
            combine(3, &partials),
            Err(CryptoError::NotEnoughShares { have: 2, need: 3 })
        );
        // Two shares of a 3-of-4 interpolated as if t = 2 give a wrong signature.
        let wrong = combine(2, &partials).expect("two distinct shares");
        assert!(dealing.group_public.verify(b"m", &wrong).is_err());
    }

    #[test]
    fn duplicate_and_zero_indices_are_rejected() {
        let secret = BlsSecretKey::key_gen(&[8; 32], b"").expect("IKM");
        let dealing = deal(&secret, 2, 3, &mut rng()).expect("valid parameters");
        let first = dealing.secret_shares[0].sign(b"m");
        assert_eq!(
            combine(2, &[first, first]),
            Err(CryptoError::BadShareIndex { index: 1 })
        );
        let zero = PartialSignature { index: 0, ..first };
        assert_eq!(
            combine(2, &[zero, first]),
            Err(CryptoError::BadShareIndex { index: 0 })
        );
        let other = dealing.secret_shares[1].sign(b"m");
        assert_eq!(
            dealing.public_shares[0].verify(b"m", &other),
            Err(CryptoError::BadShareIndex { index: 2 })
        );
    }

    #[test]
    fn parameters_are_bounded() {
        let secret = BlsSecretKey::key_gen(&[9; 32], b"").expect("IKM");
        for (t, n) in [(0, 3), (4, 3), (1, SHARE_COUNT_MAX + 1)] {
            assert_eq!(
                deal(&secret, t, n, &mut rng()).map(|d| d.threshold),
                Err(CryptoError::InvalidThreshold {
                    threshold: t,
                    total: n
                })
            );
        }
    }
}
