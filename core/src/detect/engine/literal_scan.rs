//! The literal scan: every occurrence of every literal in one input.
//!
//! All literals are compiled into one Aho-Corasick DFA (built as a DFA
//! explicitly, over lowercased literals and fed lowercased input, which makes
//! it ASCII case-insensitive with half the byte classes). Walking that DFA over every byte of
//! every input cost about 4 ns per byte with 1,000 literals: the transition
//! table does not stay in L1, and an overlapping search visits every match
//! state. So the DFA is built for *anchored* searches, and a fingerprint
//! filter (the idea of Hyperscan's FDR) chooses where to start them:
//!
//! - a literal of 4 bytes or more sets two bits of one 64-bit word in a
//!   bitmap (a blocked Bloom filter), both chosen by a hash of its first four
//!   bytes, case-folded; with about 64 bits per such literal a random position
//!   passes about 1 time in 1,000;
//! - a literal of 2 or 3 bytes puts a bit in a table indexed by its first two
//!   bytes, case-folded, and a literal of 1 byte one indexed by that byte.
//!
//! The filter reads eight bytes at a time and tests the four positions they
//! cover with one branch (and the short-literal tables too, in a separate
//! instantiation of the loop, when there are short literals). Only at a
//! position that passes does the anchored DFA walk, for
//! as long as the bytes spell a prefix of some literal, reporting the literals
//! that start exactly there.
//!
//! Invariants (the property tests compare against naive substring search):
//! - the filter never rejects a position where some literal starts: the fold
//!   (`| 0x20` on each byte) maps both cases of a letter to the same value and
//!   leaves other bytes' equality unchanged, so a case-insensitive occurrence
//!   always has the fingerprint its literal registered;
//! - the DFA decides every reported match, so a fingerprint collision costs a
//!   short walk, never a false match;
//! - occurrences of one literal are reported in increasing start order (so
//!   the first one reported is the leftmost), which is all the engine relies
//!   on.

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, BuildError, MatchKind, StartKind};

/// Folds the ASCII case of four bytes at once: `A`–`Z` onto `a`–`z`. Other
/// bytes move too (0x00–0x1F onto 0x20–0x3F), which only makes collisions.
const FOLD: u32 = 0x2020_2020;
const FOLD8: u64 = 0x2020_2020_2020_2020;
/// Multiplier of the fingerprint hash (an odd constant from splitmix64).
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
/// Bitmap bits per literal of 4 bytes or more.
const BITS_PER_LITERAL: usize = 64;
/// Bounds on the bitmap's size in 64-bit words: 64 bytes to 128 KiB.
const WORDS_MIN_LOG2: u32 = 3;
const WORDS_MAX_LOG2: u32 = 14;

/// Finds every occurrence of a fixed set of literals (ASCII case-insensitive).
#[derive(Debug, Clone)]
pub(super) struct LiteralScan {
    dfa: DFA,
    start: aho_corasick::automaton::StateID,
    lengths: Vec<u32>,
    /// Blocked Bloom filter of the literals of 4 bytes or more.
    long: Vec<u64>,
    shift: u32,
    /// First two bytes of literals of 2 or 3 bytes (65,536 bits; all zero
    /// when there are none).
    pairs: Vec<u64>,
    /// Literals of 1 byte.
    singles: [u64; 4],
    has_short: bool,
}

fn set(bits: &mut [u64], index: usize) {
    bits[index >> 6] |= 1 << (index & 63);
}

#[inline(always)]
fn test(bits: &[u64], index: usize) -> bool {
    bits[index >> 6] & (1 << (index & 63)) != 0
}

impl LiteralScan {
    /// Compiles `patterns` (each non-empty); pattern `i` is reported as `i`.
    pub(super) fn new(patterns: &[&[u8]]) -> Result<LiteralScan, BuildError> {
        // The DFA sees lowercased patterns and lowercased input: one byte
        // class per letter, not two, halves its transition table.
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(false)
            .byte_classes(true)
            .start_kind(StartKind::Anchored)
            .prefilter(false)
            .build(patterns.iter().map(|p| p.to_ascii_lowercase()))?;
        let start = dfa
            .start_state(Anchored::Yes)
            .expect("a DFA built for anchored search has an anchored start state");
        let long_count = patterns.iter().filter(|p| p.len() >= 4).count();
        let log2 = (long_count * BITS_PER_LITERAL / 64)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(WORDS_MIN_LOG2, WORDS_MAX_LOG2);
        let mut scan = LiteralScan {
            dfa,
            start,
            lengths: patterns.iter().map(|p| p.len() as u32).collect(),
            long: vec![0; 1 << log2],
            shift: 64 - log2,
            pairs: vec![0; 1 << 10],
            singles: [0; 4],
            has_short: false,
        };
        for p in patterns {
            match p.len() {
                0 => {}
                1 => {
                    set(&mut scan.singles, usize::from(p[0] | 0x20));
                    scan.has_short = true;
                }
                2 | 3 => {
                    let pair = u16::from_le_bytes([p[0], p[1]]) | 0x2020;
                    set(&mut scan.pairs, usize::from(pair));
                    scan.has_short = true;
                }
                _ => {
                    let (word, mask) = scan.slot(u32::from_le_bytes([p[0], p[1], p[2], p[3]]));
                    scan.long[word] |= mask;
                }
            }
        }
        if !scan.has_short {
            scan.pairs = Vec::new();
        }
        Ok(scan)
    }

    /// The filter word and the two bits in it for four input bytes.
    #[inline(always)]
    fn slot(&self, word: u32) -> (usize, u64) {
        let h = u64::from(word | FOLD).wrapping_mul(MIX);
        let mask = (1 << ((h >> 32) & 63)) | (1 << ((h >> 38) & 63));
        ((h >> self.shift) as usize, mask)
    }

    /// Whether a literal may start at the first of four folded bytes.
    #[inline(always)]
    fn passes<const SHORT: bool>(&self, folded: u32) -> bool {
        let (word, mask) = self.slot(folded);
        let long = self.long[word] & mask == mask;
        if SHORT {
            long | test(&self.singles, (folded & 0xFF) as usize)
                | test(&self.pairs, (folded & 0xFFFF) as usize)
        } else {
            long
        }
    }

    /// Calls `report(pattern, start, end)` for every occurrence of every
    /// pattern in `haystack`, in increasing start order. Returns the number
    /// of positions the filter passed to the DFA.
    #[inline]
    pub(super) fn for_each(
        &self,
        haystack: &[u8],
        mut report: impl FnMut(usize, usize, usize),
    ) -> usize {
        if self.has_short {
            self.scan::<true>(haystack, &mut report)
        } else {
            self.scan::<false>(haystack, &mut report)
        }
    }

    #[inline(always)]
    fn scan<const SHORT: bool>(
        &self,
        haystack: &[u8],
        report: &mut impl FnMut(usize, usize, usize),
    ) -> usize {
        let n = haystack.len();
        let mut walks = 0;
        let mut p = 0;
        // Eight bytes hold the four-byte windows of four positions.
        while p + 8 <= n {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&haystack[p..p + 8]);
            let x = u64::from_le_bytes(bytes) | FOLD8;
            let hits = u32::from(self.passes::<SHORT>(x as u32))
                | u32::from(self.passes::<SHORT>((x >> 8) as u32)) << 1
                | u32::from(self.passes::<SHORT>((x >> 16) as u32)) << 2
                | u32::from(self.passes::<SHORT>((x >> 24) as u32)) << 3;
            if hits != 0 {
                for k in 0..4 {
                    if hits & (1 << k) != 0 {
                        walks += 1;
                        self.verify(haystack, p + k, report);
                    }
                }
            }
            p += 4;
        }
        while p + 4 <= n {
            let word = u32::from_le_bytes([
                haystack[p],
                haystack[p + 1],
                haystack[p + 2],
                haystack[p + 3],
            ]);
            if self.passes::<SHORT>(word | FOLD) {
                walks += 1;
                self.verify(haystack, p, report);
            }
            p += 1;
        }
        // The last three positions can only start a short literal; walking
        // the DFA there is cheaper than building a partial fingerprint.
        if SHORT {
            while p < n {
                walks += 1;
                self.verify(haystack, p, report);
                p += 1;
            }
        }
        walks
    }

    /// Walks the anchored DFA from `start`, reporting the literals that begin
    /// exactly there. The DFA's match states also list literals that are
    /// proper suffixes of the path walked (Aho-Corasick copies matches along
    /// failure links); those start later and are reported from their own
    /// start position, so the length check drops them here.
    #[inline]
    fn verify(&self, haystack: &[u8], start: usize, report: &mut impl FnMut(usize, usize, usize)) {
        let mut sid = self.start;
        for (i, &byte) in haystack[start..].iter().enumerate() {
            sid = self
                .dfa
                .next_state(Anchored::Yes, sid, byte.to_ascii_lowercase());
            if self.dfa.is_dead(sid) {
                return;
            }
            if self.dfa.is_match(sid) {
                let len = i + 1;
                for k in 0..self.dfa.match_len(sid) {
                    let pattern = self.dfa.match_pattern(sid, k).as_usize();
                    if self.lengths[pattern] as usize == len {
                        report(pattern, start, start + len);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(patterns: &[&[u8]], haystack: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for start in 0..haystack.len() {
            for (i, p) in patterns.iter().enumerate() {
                if haystack[start..].len() >= p.len()
                    && haystack[start..start + p.len()].eq_ignore_ascii_case(p)
                {
                    out.push((i, start, start + p.len()));
                }
            }
        }
        out.sort_unstable();
        out
    }

    fn scan(patterns: &[&[u8]], haystack: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        LiteralScan::new(patterns)
            .expect("patterns compile")
            .for_each(haystack, |p, s, e| out.push((p, s, e)));
        let mut sorted = out.clone();
        sorted.sort_unstable();
        // Per literal, increasing start order.
        for i in 0..patterns.len() {
            let mine: Vec<usize> = out.iter().filter(|m| m.0 == i).map(|m| m.1).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        }
        sorted
    }

    #[test]
    fn overlapping_prefix_suffix_and_case() {
        let patterns: &[&[u8]] = &[b"abcd", b"bcd", b"ABCDE", b"cd", b"d", b"e", b"abcdabcd"];
        for hay in [
            &b"abcdabcdE"[..],
            b"xxABCDexx",
            b"d",
            b"",
            b"cde",
            b"aBcDaBcD",
        ] {
            assert_eq!(scan(patterns, hay), naive(patterns, hay), "{hay:?}");
        }
    }

    #[test]
    fn the_fold_collides_bytes_but_the_dfa_decides() {
        // `\r` folds onto `-`, `@` onto a backtick and `[` onto `{`: the
        // fingerprints collide, the matches must not.
        let patterns: &[&[u8]] = &[b"-x-y", b"`ab{", b"\r", b"-\n"];
        let hay = b"\rx\ry @AB[ `ab{ -\n -X-Y \r*";
        assert_eq!(scan(patterns, hay), naive(patterns, hay));
    }

    #[test]
    fn every_byte_value_and_many_literals() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let alphabet: Vec<u8> = (0u8..=255).collect();
        let owned: Vec<Vec<u8>> = (0..300)
            .map(|_| {
                let len = 1 + (next() % 7) as usize;
                // A small alphabet half the time, so literals overlap.
                (0..len)
                    .map(|_| {
                        if next() % 2 == 0 {
                            b"aAbB\x01!"[(next() % 6) as usize]
                        } else {
                            alphabet[(next() % 256) as usize]
                        }
                    })
                    .collect()
            })
            .collect();
        let patterns: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        // Without short literals the scan runs its other instantiation.
        let long: Vec<&[u8]> = patterns.iter().copied().filter(|p| p.len() >= 4).collect();
        for _ in 0..100 {
            let len = (next() % 200) as usize;
            let hay: Vec<u8> = (0..len)
                .map(|_| {
                    if next() % 2 == 0 {
                        b"aAbB\x01!"[(next() % 6) as usize]
                    } else {
                        (next() % 256) as u8
                    }
                })
                .collect();
            assert_eq!(scan(&patterns, &hay), naive(&patterns, &hay));
            assert_eq!(scan(&long, &hay), naive(&long, &hay));
        }
    }
}
