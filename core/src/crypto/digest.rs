//! blake3 digests.

use core::fmt;

use super::CryptoError;
use super::hex_fmt::{fixed, write_hex};

/// A 32-byte blake3 digest.
///
/// Used for batch digests, state digests, hash chains and audit trails. Ordering
/// is by bytes, so digests can key ordered maps deterministically.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Length of the encoding in bytes.
    pub const LENGTH: usize = 32;
    /// The all-zero digest, used as the predecessor of the first entry of a hash chain.
    pub const ZERO: Digest = Digest([0; 32]);

    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// Hashes the concatenation of `parts`, each prefixed by its length so that
    /// different splits of the same bytes give different digests, under a domain
    /// `context` (blake3 `derive_key` mode) so that different uses never collide.
    pub fn of_parts(context: &str, parts: &[&[u8]]) -> Digest {
        DigestDomain::new(context).digest(parts)
    }

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// Decodes a digest from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Digest, CryptoError> {
        fixed("digest", bytes).map(Digest)
    }

    /// The digest bytes.
    pub const fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The digest bytes, borrowed.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// A [`Digest::of_parts`] domain prepared once. Deriving the context key is
/// one blake3 compression; a hot path that hashes many small inputs under one
/// context (the ledger's hash chain) keeps a `DigestDomain` and skips it.
#[derive(Clone)]
pub struct DigestDomain(blake3::Hasher);

impl DigestDomain {
    /// Prepares `context`.
    pub fn new(context: &str) -> DigestDomain {
        DigestDomain(blake3::Hasher::new_derive_key(context))
    }

    /// The same digest as `Digest::of_parts(context, parts)`.
    pub fn digest(&self, parts: &[&[u8]]) -> Digest {
        let mut hasher = self.0.clone();
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Digest(*hasher.finalize().as_bytes())
    }
}

impl fmt::Debug for DigestDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DigestDomain")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_blake3_reference_for_empty_input() {
        // blake3 of the empty string, from the BLAKE3 specification's test vectors.
        assert_eq!(
            Digest::of(b"").to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn parts_are_length_delimited_and_domain_separated() {
        let ab_c = Digest::of_parts("shieldx test", &[b"ab", b"c"]);
        let a_bc = Digest::of_parts("shieldx test", &[b"a", b"bc"]);
        let other_domain = Digest::of_parts("shieldx other", &[b"ab", b"c"]);
        assert_ne!(ab_c, a_bc);
        assert_ne!(ab_c, other_domain);
        assert_eq!(ab_c, Digest::of_parts("shieldx test", &[b"ab", b"c"]));
    }

    #[test]
    fn a_prepared_domain_gives_of_parts_digests() {
        let domain = DigestDomain::new("shieldx test");
        for parts in [
            &[][..],
            &[&b""[..]],
            &[b"ab", b"c"],
            &[&[7u8; 1500][..], b"x"],
        ] {
            assert_eq!(
                domain.digest(parts),
                Digest::of_parts("shieldx test", parts)
            );
        }
    }

    #[test]
    fn from_slice_rejects_wrong_length() {
        assert_eq!(
            Digest::from_slice(&[0; 31]),
            Err(CryptoError::InvalidLength {
                what: "digest",
                expected: 32,
                actual: 31
            })
        );
        let digest = Digest::of(b"x");
        assert_eq!(Digest::from_slice(digest.as_bytes()), Ok(digest));
    }
}
