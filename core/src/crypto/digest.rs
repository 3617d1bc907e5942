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

    /// `into[i] = Digest::of(inputs[i])` for every input, computed side by
    /// side as [`DigestDomain::digest_many`] does: inputs of at most one
    /// chunk (1,024 bytes) share SIMD passes, longer ones are hashed alone.
    pub fn of_many(inputs: &[&[u8]], into: &mut Digests) {
        into.prepare(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            if input.len() > CHUNK_LEN {
                into.digests[i] = Digest::of(input);
            } else {
                into.push_with(i, |framed| framed.extend_from_slice(input));
            }
        }
        into.hash_groups(&IV, 0);
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
///
/// [`DigestDomain::digest_many`] hashes many independent inputs side by side.
/// It drives blake3's compression function directly, through the crate's
/// `platform` module: the SIMD routine blake3 itself uses to hash up to 16
/// chunks of one large input at once (AVX-512, AVX2 or SSE4.1, chosen at run
/// time). That module is documented by blake3 as unstable, so the workspace
/// pins blake3 to one exact version, and the tests compare every input length
/// a chunk can hold with [`DigestDomain::digest`].
#[derive(Clone)]
pub struct DigestDomain {
    hasher: blake3::Hasher,
    /// The derived context key, as the compression function's key words.
    key: [u32; 8],
}

/// blake3's block and chunk sizes and the domain flags of the spec (§2.1) that
/// `derive_key` mode uses for the key material.
const BLOCK_LEN: usize = blake3::BLOCK_LEN;
const CHUNK_LEN: usize = blake3::CHUNK_LEN;
const CHUNK_START: u8 = 1 << 0;
const CHUNK_END: u8 = 1 << 1;
const ROOT: u8 = 1 << 3;
const DERIVE_KEY_MATERIAL: u8 = 1 << 6;
/// blake3's key words in plain hashing mode: its IV (spec §2.2).
const IV: [u32; 8] = [
    0x6A09_E667,
    0xBB67_AE85,
    0x3C6E_F372,
    0xA54F_F53A,
    0x510E_527F,
    0x9B05_688C,
    0x1F83_D9AB,
    0x5BE0_CD19,
];

impl DigestDomain {
    /// Prepares `context`.
    pub fn new(context: &str) -> DigestDomain {
        let context_key = blake3::hazmat::hash_derive_key_context(context);
        DigestDomain {
            hasher: blake3::Hasher::new_derive_key(context),
            key: words(&context_key),
        }
    }

    /// The same digest as `Digest::of_parts(context, parts)`.
    ///
    /// Small inputs are framed into one stack buffer and hashed with a
    /// single `update`: the same bytes, without a call per part.
    pub fn digest(&self, parts: &[&[u8]]) -> Digest {
        const FRAMED_INLINE: usize = 256;
        let mut hasher = self.hasher.clone();
        let framed: usize = parts.iter().map(|p| 8 + p.len()).sum();
        if framed <= FRAMED_INLINE {
            let mut buf = [0u8; FRAMED_INLINE];
            let mut at = 0;
            for part in parts {
                buf[at..at + 8].copy_from_slice(&(part.len() as u64).to_le_bytes());
                buf[at + 8..at + 8 + part.len()].copy_from_slice(part);
                at += 8 + part.len();
            }
            hasher.update(&buf[..at]);
        } else {
            for part in parts {
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part);
            }
        }
        Digest(*hasher.finalize().as_bytes())
    }

    /// `out[i] = self.digest(&inputs[i])` for every input, computed side by
    /// side: inputs whose framed length fits one blake3 chunk (1,024 bytes)
    /// are grouped by their number of blocks, and every block but the last of
    /// a group is compressed up to 16 inputs per SIMD pass. Longer inputs are
    /// hashed one at a time. The digests replace those `into` held, and its
    /// buffers are reused, so a caller that hashes batch after batch keeps one.
    pub fn digest_many<const K: usize>(&self, inputs: &[[&[u8]; K]], into: &mut Digests) {
        into.prepare(inputs.len());
        for (i, parts) in inputs.iter().enumerate() {
            let len: usize = parts.iter().map(|p| 8 + p.len()).sum();
            if len > CHUNK_LEN {
                into.digests[i] = self.digest(parts);
                continue;
            }
            into.push_with(i, |framed| {
                for part in parts {
                    framed.extend_from_slice(&(part.len() as u64).to_le_bytes());
                    framed.extend_from_slice(part);
                }
            });
        }
        into.hash_groups(&self.key, DERIVE_KEY_MATERIAL);
    }
}

/// Compresses the first `N / 64` blocks of the inputs that start at
/// `starts` in `framed`, writing each chaining value to `cvs`.
fn full_blocks<const N: usize>(
    platform: &blake3::platform::Platform,
    key: &[u32; 8],
    flags: u8,
    framed: &[u8],
    starts: impl Iterator<Item = usize>,
    cvs: &mut [u8],
) {
    let blocks: Vec<&[u8; N]> = starts
        .map(|start| {
            framed[start..start + N]
                .try_into()
                .expect("a framed input holds more than its full blocks")
        })
        .collect();
    platform.hash_many(
        &blocks,
        key,
        0,
        blake3::IncrementCounter::No,
        flags,
        CHUNK_START,
        0,
        cvs,
    );
}

/// The digests [`DigestDomain::digest_many`] computed last, in input order,
/// and the buffers it reuses.
#[derive(Debug, Default)]
pub struct Digests {
    digests: Vec<Digest>,
    /// The framed inputs that fit one chunk, back to back.
    framed: Vec<u8>,
    /// (input index, start in `framed`, framed length), by full-block count.
    groups: [Vec<(usize, usize, usize)>; CHUNK_LEN / BLOCK_LEN],
    /// Chaining values after the full blocks of one group.
    cvs: Vec<u8>,
}

impl Digests {
    /// No digests yet.
    pub fn new() -> Digests {
        Digests::default()
    }

    /// Clears the buffers for `count` inputs.
    fn prepare(&mut self, count: usize) {
        self.digests.clear();
        self.digests.resize(count, Digest::ZERO);
        self.framed.clear();
        self.groups.iter_mut().for_each(Vec::clear);
    }

    /// Appends input `i`, the bytes `write` appends (at most one chunk), to
    /// the group of its block count.
    fn push_with(&mut self, i: usize, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.framed.len();
        write(&mut self.framed);
        let len = self.framed.len() - start;
        debug_assert!(len <= CHUNK_LEN);
        // The last block, full or not, is the one that ends the chunk.
        self.groups[len.saturating_sub(1) / BLOCK_LEN].push((i, start, len));
    }

    /// Hashes every pushed input as one blake3 chunk (the root) under `key`
    /// and the mode's `flags`: each group's full blocks side by side, then
    /// each input's last block.
    fn hash_groups(&mut self, key: &[u32; 8], flags: u8) {
        use blake3::platform::Platform;

        let Digests {
            digests: out,
            framed,
            groups,
            cvs,
        } = self;
        let platform = Platform::detect();
        for (full, group) in groups.iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            cvs.clear();
            cvs.resize(group.len() * 32, 0u8);
            let starts = group.iter().map(|&(_, start, _)| start);
            macro_rules! blocks {
                ($($n:literal)*) => {
                    match full {
                        0 => {
                            for cv in cvs.chunks_exact_mut(32) {
                                cv.copy_from_slice(&bytes(key));
                            }
                        }
                        $($n => full_blocks::<{ $n * BLOCK_LEN }>(&platform, key, flags, framed, starts, cvs),)*
                        _ => unreachable!("a chunk has at most 16 blocks"),
                    }
                };
            }
            blocks!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
            let first = if full == 0 { CHUNK_START } else { 0 };
            for (&(i, start, len), cv) in group.iter().zip(cvs.chunks_exact(32)) {
                let last = &framed[start + full * BLOCK_LEN..start + len];
                let mut block = [0u8; BLOCK_LEN];
                block[..last.len()].copy_from_slice(last);
                let mut cv = words(cv);
                platform.compress_in_place(
                    &mut cv,
                    &block,
                    last.len() as u8,
                    0,
                    flags | first | CHUNK_END | ROOT,
                );
                out[i] = Digest(bytes(&cv));
            }
        }
    }
}

impl core::ops::Deref for Digests {
    type Target = [Digest];

    fn deref(&self) -> &[Digest] {
        &self.digests
    }
}

/// Little-endian words of 32 bytes.
fn words(bytes: &[u8]) -> [u32; 8] {
    let mut words = [0u32; 8];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    words
}

/// The 32 bytes of little-endian words.
fn bytes(words: &[u32; 8]) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    bytes
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
    fn of_parts_is_blake3_derive_key_over_length_framed_parts() {
        let data: Vec<u8> = (0..600u32).map(|i| (i * 13 + 1) as u8).collect();
        // Framed lengths 28 + n: both sides of the one-buffer bound (256 bytes).
        for n in [0, 1, 200, 227, 228, 229, 240, 500] {
            let parts: [&[u8]; 3] = [b"kind", &data[..n], &[]];
            let mut framed = Vec::new();
            for part in parts {
                framed.extend_from_slice(&(part.len() as u64).to_le_bytes());
                framed.extend_from_slice(part);
            }
            assert_eq!(
                Digest::of_parts("shieldx test", &parts).to_bytes(),
                blake3::derive_key("shieldx test", &framed),
                "{n} bytes"
            );
        }
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
    fn digest_many_matches_digest_for_every_length_a_chunk_holds() {
        let domain = DigestDomain::new("shieldx test");
        let prev = [9u8; 32];
        let data: Vec<u8> = (0..1_200u32).map(|i| (i * 31 + 7) as u8).collect();
        // Framed lengths 48..=1248: every block count, both sides of each
        // block boundary, and past one chunk (the one-at-a-time path).
        let inputs: Vec<[&[u8]; 2]> = (0..=1_200).map(|n| [&prev[..], &data[..n]]).collect();
        let mut out = Digests::new();
        domain.digest_many(&inputs, &mut out);
        assert_eq!(out.len(), inputs.len());
        for (parts, digest) in inputs.iter().zip(out.iter()) {
            assert_eq!(*digest, domain.digest(parts), "{} bytes", parts[1].len());
        }
        // One part: framed lengths from 8, including a single partial block.
        let singles: Vec<[&[u8]; 1]> = (0..=200).map(|n| [&data[..n]]).collect();
        domain.digest_many(&singles, &mut out);
        for (parts, digest) in singles.iter().zip(out.iter()) {
            assert_eq!(*digest, Digest::of_parts("shieldx test", parts));
        }
        // Inputs of mixed sizes, in an order that interleaves the groups.
        let mixed: Vec<[&[u8]; 2]> = [500, 3, 1_100, 70, 500, 0, 16, 1_000]
            .iter()
            .map(|&n| [&prev[..], &data[..n]])
            .collect();
        domain.digest_many(&mixed, &mut out);
        for (parts, digest) in mixed.iter().zip(out.iter()) {
            assert_eq!(*digest, domain.digest(parts));
        }
        domain.digest_many::<2>(&[], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn of_many_matches_of_for_every_length_a_chunk_holds() {
        let data: Vec<u8> = (0..1_200u32).map(|i| (i * 131 + 3) as u8).collect();
        // Every block count, both sides of each block boundary, the empty
        // input and inputs longer than a chunk.
        let inputs: Vec<&[u8]> = (0..=1_200).map(|n| &data[..n]).collect();
        let mut out = Digests::new();
        Digest::of_many(&inputs, &mut out);
        assert_eq!(out.len(), inputs.len());
        for (input, digest) in inputs.iter().zip(out.iter()) {
            assert_eq!(*digest, Digest::of(input), "{} bytes", input.len());
        }
        let mixed: Vec<&[u8]> = [300, 0, 1_024, 1_025, 64, 65, 300]
            .iter()
            .map(|&n| &data[..n])
            .collect();
        Digest::of_many(&mixed, &mut out);
        for (input, digest) in mixed.iter().zip(out.iter()) {
            assert_eq!(*digest, Digest::of(input));
        }
        Digest::of_many(&[], &mut out);
        assert!(out.is_empty());
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
