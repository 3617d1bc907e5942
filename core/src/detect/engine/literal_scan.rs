//! The literal scan: every occurrence of every literal in one input.
//!
//! Walking an Aho-Corasick DFA of all literals over every byte of every input
//! cost about 4 ns per byte with 1,000 literals: the transition table does not
//! stay in L1, and an overlapping search visits every match state. Even used
//! only to confirm candidate positions (anchored), a DFA walk cost about
//! 65 ns, one dependent miss per byte. So the scan works as Hyperscan's FDR
//! does: a fingerprint filter chooses the positions where some literal may
//! start, and an exact index decides them by comparing bytes:
//!
//! - a literal of 4 bytes or more sets two bits of one 64-bit word in a
//!   bitmap (a blocked Bloom filter), both chosen by a hash of its first four
//!   bytes, case-folded; with about 64 bits per such literal a random position
//!   passes about 1 time in 1,000;
//! - a literal of 2 or 3 bytes puts a bit in a table indexed by its first two
//!   bytes, case-folded, and a literal of 1 byte one indexed by that byte;
//! - the index maps a folded prefix (four, two or one bytes) to the literals
//!   that begin with it, shortest first, each compared with the input in
//!   full, ASCII case-insensitively.
//!
//! The filter reads eight bytes at a time and tests the four positions they
//! cover with one branch (and the short-literal tables too, in a separate
//! instantiation of the loop, when there are short literals). Only at a
//! position that passes is the index consulted.
//!
//! Invariants (the unit tests here and the engine's property tests compare
//! against naive substring search):
//! - the filter never rejects a position where some literal starts: the fold
//!   (`| 0x20` on each byte) maps both cases of a letter to the same value and
//!   leaves other bytes' equality unchanged, so a case-insensitive occurrence
//!   always has the fingerprint and the index key its literal registered;
//! - the byte comparison decides every reported match, so a fingerprint or
//!   fold collision costs a lookup, never a false match;
//! - occurrences of one literal are reported in increasing start order (so
//!   the first one reported is the leftmost), which is all the engine relies
//!   on; at one start, shorter literals come first.

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
const WORDS_MAX: usize = 1 << WORDS_MAX_LOG2;

/// Finds every occurrence of a fixed set of literals (ASCII case-insensitive).
#[derive(Debug, Clone)]
pub(super) struct LiteralScan {
    /// Blocked Bloom filter of the literals of 4 bytes or more: its first
    /// `1 << (64 - shift)` words. Allocated at the largest size so that the
    /// filter's index needs no bounds check; the words past the used ones
    /// are never touched (nor, being zeroed on allocation, made resident).
    long: Box<[u64; WORDS_MAX]>,
    shift: u32,
    /// First two bytes of literals of 2 or 3 bytes (65,536 bits; empty when
    /// there are none).
    pairs: Vec<u64>,
    /// Literals of 1 byte.
    singles: [u64; 4],
    has_short: bool,
    /// How far apart the positions the filter tests for long literals are
    /// (1 to 4, see [`LiteralScan::new`]).
    stride: usize,
    /// Literals of 4 bytes or more, by their first four bytes folded.
    quads: PrefixIndex,
    /// Literals of 2 or 3 bytes, by their first two bytes folded.
    duos: PrefixIndex,
    /// Literals of 1 byte, by that byte folded.
    ones: PrefixIndex,
    /// Every literal's bytes, lowercased, one after the other.
    bytes: Vec<u8>,
}

/// One literal as the index holds it.
#[derive(Debug, Clone, Copy)]
struct Member {
    pattern: u32,
    offset: u32,
    len: u32,
}

/// One slot of a [`PrefixIndex`]: the members `first..first + count` share
/// the folded prefix `key` (0 marks an empty slot; a folded prefix is never 0).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u32,
    first: u32,
    count: u32,
}

/// An open-addressed map from a folded prefix to the literals that begin
/// with it, at most half full, probed linearly.
#[derive(Debug, Clone)]
struct PrefixIndex {
    slots: Vec<Slot>,
    shift: u32,
    members: Vec<Member>,
}

impl PrefixIndex {
    /// Groups `entries` (folded prefix, member) by prefix, members shortest
    /// first.
    fn new(mut entries: Vec<(u32, Member)>) -> PrefixIndex {
        entries.sort_by_key(|&(key, m)| (key, m.len, m.pattern));
        let distinct = entries.windows(2).filter(|w| w[0].0 != w[1].0).count() + 1;
        let log2 = (2 * distinct).next_power_of_two().trailing_zeros().max(1);
        let mut index = PrefixIndex {
            slots: vec![Slot::default(); 1 << log2],
            shift: 64 - log2,
            members: Vec::with_capacity(entries.len()),
        };
        for group in entries.chunk_by(|a, b| a.0 == b.0) {
            let key = group[0].0;
            let mut at = index.home(key);
            while index.slots[at].key != 0 {
                at = (at + 1) & (index.slots.len() - 1);
            }
            index.slots[at] = Slot {
                key,
                first: index.members.len() as u32,
                count: group.len() as u32,
            };
            index.members.extend(group.iter().map(|&(_, m)| m));
        }
        index
    }

    #[inline(always)]
    fn home(&self, key: u32) -> usize {
        (u64::from(key).wrapping_mul(MIX) >> self.shift) as usize
    }

    /// The literals whose folded prefix is `key`.
    #[inline(always)]
    fn get(&self, key: u32) -> &[Member] {
        let mask = self.slots.len() - 1;
        let mut at = self.home(key);
        loop {
            let slot = self.slots[at];
            if slot.key == key {
                let first = slot.first as usize;
                return &self.members[first..first + slot.count as usize];
            }
            if slot.key == 0 {
                return &[];
            }
            at = (at + 1) & mask;
        }
    }
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
    /// `None` if their count or total length does not fit in `u32`.
    ///
    /// When every literal is at least `m` bytes long (`m >= 5`), the filter
    /// tests only every `s = min(m - 3, 4)`-th position, as FDR's strided
    /// variants do: each literal registers the fingerprints of its four-byte
    /// windows at offsets `0..s`, and an occurrence starting at `t` spans
    /// exactly one tested position `p` in `t..t + s` (whose window, at offset
    /// `p - t < s <= m - 3`, lies inside the literal). A position that
    /// passes sends its `s` candidate starts `p - s + 1..=p` to the index.
    pub(super) fn new(patterns: &[&[u8]]) -> Option<LiteralScan> {
        let long_count = patterns.iter().filter(|p| p.len() >= 4).count();
        let has_short = patterns.iter().any(|p| p.len() < 4);
        let stride = match patterns.iter().map(|p| p.len()).min() {
            Some(shortest) if !has_short => (shortest - 3).min(4),
            _ => 1,
        };
        let log2 = (long_count * stride * BITS_PER_LITERAL / 64)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(WORDS_MIN_LOG2, WORDS_MAX_LOG2);
        let mut long: Box<[u64; WORDS_MAX]> = vec![0; WORDS_MAX]
            .into_boxed_slice()
            .try_into()
            .expect("the length is the array's");
        let shift = 64 - log2;
        let mut pairs = vec![0; 1 << 10];
        let mut singles = [0; 4];
        let mut bytes = Vec::with_capacity(patterns.iter().map(|p| p.len()).sum());
        let (mut quads, mut duos, mut ones) = (Vec::new(), Vec::new(), Vec::new());
        for (i, p) in patterns.iter().enumerate() {
            let member = Member {
                pattern: u32::try_from(i).ok()?,
                offset: u32::try_from(bytes.len()).ok()?,
                len: u32::try_from(p.len()).ok()?,
            };
            bytes.extend(p.iter().map(u8::to_ascii_lowercase));
            match p.len() {
                0 => {}
                1 => {
                    let key = u32::from(p[0] | 0x20);
                    set(&mut singles, key as usize);
                    ones.push((key, member));
                }
                2 | 3 => {
                    let key = u32::from(u16::from_le_bytes([p[0], p[1]]) | 0x2020);
                    set(&mut pairs, key as usize);
                    duos.push((key, member));
                }
                _ => {
                    for window in p.windows(4).take(stride) {
                        let (word, mask) = slot(shift, word_at(window, 0) | FOLD);
                        long[word] |= mask;
                    }
                    quads.push((word_at(p, 0) | FOLD, member));
                }
            }
        }
        if !has_short {
            pairs = Vec::new();
        }
        u32::try_from(bytes.len()).ok()?;
        Some(LiteralScan {
            long,
            shift,
            pairs,
            singles,
            has_short,
            stride,
            quads: PrefixIndex::new(quads),
            duos: PrefixIndex::new(duos),
            ones: PrefixIndex::new(ones),
            bytes,
        })
    }

    /// Whether a literal may start at the first of four folded bytes.
    #[inline(always)]
    fn passes<const SHORT: bool>(&self, folded: u32) -> bool {
        let (word, mask) = slot(self.shift, folded);
        let long = self.long[word & (WORDS_MAX - 1)] & mask == mask;
        if SHORT {
            long | test(&self.singles, (folded & 0xFF) as usize)
                | test(&self.pairs, (folded & 0xFFFF) as usize)
        } else {
            long
        }
    }

    /// Calls `report(pattern, start, end)` for every occurrence of every
    /// pattern in `haystack`, in increasing start order. Returns the number
    /// of start positions looked up in the index.
    #[inline]
    pub(super) fn for_each(
        &self,
        haystack: &[u8],
        mut report: impl FnMut(usize, usize, usize),
    ) -> usize {
        match (self.has_short, self.stride) {
            (true, _) => self.scan::<true>(haystack, &mut report),
            (false, 2) => self.scan_strided::<2>(haystack, &mut report),
            (false, 3) => self.scan_strided::<3>(haystack, &mut report),
            (false, 4) => self.scan_strided::<4>(haystack, &mut report),
            (false, _) => self.scan::<false>(haystack, &mut report),
        }
    }

    /// The scan for sets whose literals are all at least `STRIDE + 3`
    /// bytes long: tests every `STRIDE`-th position (see [`LiteralScan::new`]).
    #[inline(always)]
    fn scan_strided<const STRIDE: usize>(
        &self,
        haystack: &[u8],
        report: &mut impl FnMut(usize, usize, usize),
    ) -> usize {
        let n = haystack.len();
        let mut lookups = 0;
        let mut p = 0;
        let mut decide = |p: usize, lookups: &mut usize| {
            for start in p.saturating_sub(STRIDE - 1)..=p {
                *lookups += 1;
                self.verify::<false>(haystack, start, report);
            }
        };
        // Four tested positions per branch.
        while p + 3 * STRIDE + 4 <= n {
            let hits = u32::from(self.passes::<false>(word_at(haystack, p) | FOLD))
                | u32::from(self.passes::<false>(word_at(haystack, p + STRIDE) | FOLD)) << 1
                | u32::from(self.passes::<false>(word_at(haystack, p + 2 * STRIDE) | FOLD)) << 2
                | u32::from(self.passes::<false>(word_at(haystack, p + 3 * STRIDE) | FOLD)) << 3;
            if hits != 0 {
                for k in 0..4 {
                    if hits & (1 << k) != 0 {
                        decide(p + k * STRIDE, &mut lookups);
                    }
                }
            }
            p += 4 * STRIDE;
        }
        // An occurrence ends by `n`, so its tested position has four bytes.
        while p + 4 <= n {
            if self.passes::<false>(word_at(haystack, p) | FOLD) {
                decide(p, &mut lookups);
            }
            p += STRIDE;
        }
        lookups
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
                        self.verify::<SHORT>(haystack, p + k, report);
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
                self.verify::<SHORT>(haystack, p, report);
            }
            p += 1;
        }
        // The last three positions can only start a short literal; looking
        // them up is cheaper than building a partial fingerprint.
        if SHORT {
            while p < n {
                walks += 1;
                self.verify::<SHORT>(haystack, p, report);
                p += 1;
            }
        }
        walks
    }

    /// Decides a position the filter passed: reports the literals that
    /// begin exactly at `start`, shortest first.
    #[inline]
    fn verify<const SHORT: bool>(
        &self,
        haystack: &[u8],
        start: usize,
        report: &mut impl FnMut(usize, usize, usize),
    ) {
        let rest = &haystack[start..];
        if SHORT {
            if let Some(&first) = rest.first() {
                self.confirm(&self.ones, u32::from(first | 0x20), rest, start, report);
            }
            if let [a, b, ..] = *rest {
                let key = u32::from(u16::from_le_bytes([a, b]) | 0x2020);
                self.confirm(&self.duos, key, rest, start, report);
            }
        }
        if let [a, b, c, d, ..] = *rest {
            let key = u32::from_le_bytes([a, b, c, d]) | FOLD;
            self.confirm(&self.quads, key, rest, start, report);
        }
    }

    /// Reports the literals under `key` in `index` that `rest` begins with.
    #[inline(always)]
    fn confirm(
        &self,
        index: &PrefixIndex,
        key: u32,
        rest: &[u8],
        start: usize,
        report: &mut impl FnMut(usize, usize, usize),
    ) {
        for m in index.get(key) {
            let len = m.len as usize;
            let literal = &self.bytes[m.offset as usize..][..len];
            if rest
                .get(..len)
                .is_some_and(|s| s.eq_ignore_ascii_case(literal))
            {
                report(m.pattern as usize, start, start + len);
            }
        }
    }
}

/// The four bytes of `bytes` at `at`, little-endian.
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// The filter word and the two bits in it for four folded input bytes, with
/// a bitmap of `64 - shift` bits of words.
#[inline(always)]
fn slot(shift: u32, folded: u32) -> (usize, u64) {
    let h = u64::from(folded).wrapping_mul(MIX);
    let mask = (1 << ((h >> 32) & 63)) | (1 << ((h >> 38) & 63));
    ((h >> shift) as usize, mask)
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
            .expect("a small set fits")
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
    fn the_fold_collides_bytes_but_the_comparison_decides() {
        // `\r` folds onto `-`, `@` onto a backtick and `[` onto `{`: the
        // fingerprints collide, the matches must not.
        let patterns: &[&[u8]] = &[b"-x-y", b"`ab{", b"\r", b"-\n"];
        let hay = b"\rx\ry @AB[ `ab{ -\n -X-Y \r*";
        assert_eq!(scan(patterns, hay), naive(patterns, hay));
    }

    #[test]
    fn strided_scans_find_occurrences_at_every_offset() {
        let mut rng = 0x0bad_cafe_dead_beefu64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Shortest literal 5, 6, 7 and 8 or more: strides 2, 3, 4 and 4.
        for (shortest, stride) in [(5, 2), (6, 3), (7, 4), (9, 4)] {
            let owned: Vec<Vec<u8>> = (0..60)
                .map(|i| {
                    let len = shortest + if i == 0 { 0 } else { (next() % 5) as usize };
                    (0..len).map(|_| b"aAbB-"[(next() % 5) as usize]).collect()
                })
                .collect();
            let patterns: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            assert_eq!(LiteralScan::new(&patterns).expect("fits").stride, stride);
            for _ in 0..200 {
                // Haystacks shorter than one stride of windows too, and
                // occurrences planted at every offset from the start and end.
                let len = (next() % 48) as usize;
                let mut hay: Vec<u8> = (0..len).map(|_| b"aAbB-x"[(next() % 6) as usize]).collect();
                if len > 0 && next() % 2 == 0 {
                    let p = owned[(next() % 60) as usize].as_slice();
                    let at = (next() as usize) % (len + 1);
                    hay.splice(at..at, p.iter().map(u8::to_ascii_uppercase));
                }
                assert_eq!(scan(&patterns, &hay), naive(&patterns, &hay), "{hay:?}");
            }
        }
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
