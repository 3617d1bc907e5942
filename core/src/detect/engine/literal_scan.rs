//! The literal scan: every occurrence of every literal in one input.
//!
//! All literals are compiled into one Aho-Corasick DFA (the DFA kind forced
//! with `aho_corasick::dfa::DFA`, never the crate's automatic choice),
//! lowercased, for anchored searches. Walking that DFA over every byte of
//! every input cost about 4 ns per byte with 1,000 literals: the transition
//! table does not stay in L1, and an overlapping search visits every match
//! state. So the scan works as Hyperscan's FDR does: a fingerprint filter
//! chooses the positions where some literal may start, and the DFA decides
//! only those:
//!
//! - a literal of 4 bytes or more sets two bits of one 64-bit word in a
//!   bitmap (a blocked Bloom filter), both chosen by a hash of its first four
//!   bytes, case-folded; with about 64 bits per such literal a random position
//!   passes about 1 time in 1,000;
//! - a literal of 2 or 3 bytes puts a bit in a table indexed by its first two
//!   bytes, case-folded, and a literal of 1 byte one indexed by that byte;
//! - at a position that passes, the DFA walks from its anchored start over
//!   at most three bytes (only when there are literals shorter than four
//!   bytes), and a jump table then gives the DFA state after the first four
//!   bytes, lowercased, without walking them: those first transitions fan
//!   out over the whole table and were most of a walk's cache misses. The
//!   walk continues from that state until the DFA dies.
//!
//! The filter reads eight bytes at a time and tests the four positions they
//! cover with one branch (and the short-literal tables too, in a separate
//! instantiation of the loop, when there are short literals).
//!
//! Invariants (the unit tests here and the engine's property tests compare
//! against naive substring search):
//! - the filter never rejects a position where some literal starts: the fold
//!   (`| 0x20` on each byte) maps both cases of a letter to the same value and
//!   leaves other bytes' equality unchanged, so a case-insensitive occurrence
//!   always has the fingerprint its literal registered;
//! - the jump table holds, for every lowercased four-byte prefix of a
//!   literal, the state the anchored DFA reaches over it, so starting there
//!   is the same walk;
//! - the DFA decides every reported match, so a fingerprint or fold
//!   collision costs a lookup, never a false match;
//! - occurrences of one literal are reported in increasing start order (so
//!   the first one reported is the leftmost), which is all the engine relies
//!   on; at one start, shorter literals come first.

use aho_corasick::automaton::{Automaton, StateID};
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
    /// All literals, lowercased, anchored.
    dfa: DFA,
    start: StateID,
    /// The literals each match state *ends*, by `sid >> owner_shift`: the
    /// DFA's own match lists also hold literals that are proper suffixes of
    /// the path walked (Aho-Corasick copies matches along failure links);
    /// those start later and are reported from their own start. One flat
    /// load per match state, where the DFA's lists cost a pointer chase and
    /// a length check per listed literal. See [`Owners`].
    owners: Owners,
    /// The DFA's state after each literal's first four bytes, lowercased.
    jumps: JumpTable,
}

/// The literals that end at each match state of the anchored DFA, shortest
/// first (all of one state have the state's depth, so they share a length).
/// `first[i]` is the one literal of state `i` (`NONE` for none) or, with
/// `MANY` set, an index into `many`, a list of two or more.
#[derive(Debug, Clone)]
struct Owners {
    first: Vec<u32>,
    many: Vec<Vec<u32>>,
    shift: u32,
}

impl Owners {
    const NONE: u32 = u32::MAX;
    const MANY: u32 = 1 << 31;

    /// `ends[i]` is the state literal `i` ends at.
    fn new(ends: &[StateID]) -> Owners {
        // State ids are premultiplied by the DFA's stride: shifting out the
        // zero bits they all share keeps them distinct and the table dense.
        let shift = ends
            .iter()
            .map(|sid| sid.as_u32().trailing_zeros())
            .min()
            .unwrap_or(0)
            .min(31);
        let size = ends
            .iter()
            .map(|sid| (sid.as_usize() >> shift) + 1)
            .max()
            .unwrap_or(0);
        let mut lists = vec![Vec::new(); size];
        for (pattern, sid) in ends.iter().enumerate() {
            lists[sid.as_usize() >> shift].push(pattern as u32);
        }
        let mut owners = Owners {
            first: Vec::with_capacity(size),
            many: Vec::new(),
            shift,
        };
        for list in lists {
            owners.first.push(match list[..] {
                [] => Owners::NONE,
                [one] => one,
                _ => {
                    owners.many.push(list);
                    Owners::MANY | (owners.many.len() - 1) as u32
                }
            });
        }
        owners
    }

    /// The literals ending at `sid` (a match state).
    #[inline(always)]
    fn of(&self, sid: StateID) -> &[u32] {
        match self.first.get(sid.as_usize() >> self.shift) {
            None | Some(&Owners::NONE) => &[],
            Some(v) if v & Owners::MANY != 0 => &self.many[(v & !Owners::MANY) as usize],
            Some(v) => std::slice::from_ref(v),
        }
    }
}

/// One slot of a [`JumpTable`]; `state` 0 (the DFA's dead state, never
/// reached over a literal's prefix) marks an empty slot.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u32,
    state: u32,
}

/// An open-addressed map from four lowercased bytes to a DFA state, at most
/// half full, probed linearly.
#[derive(Debug, Clone)]
struct JumpTable {
    slots: Vec<Slot>,
    shift: u32,
}

impl JumpTable {
    fn new(mut entries: Vec<(u32, StateID)>) -> JumpTable {
        entries.sort_unstable_by_key(|&(key, _)| key);
        entries.dedup_by_key(|&mut (key, _)| key);
        let log2 = (2 * entries.len())
            .next_power_of_two()
            .trailing_zeros()
            .max(1);
        let mut table = JumpTable {
            slots: vec![Slot::default(); 1 << log2],
            shift: 64 - log2,
        };
        let mask = table.slots.len() - 1;
        for (key, state) in entries {
            let mut at = table.home(key);
            while table.slots[at].state != 0 {
                at = (at + 1) & mask;
            }
            table.slots[at] = Slot {
                key,
                state: state.as_u32(),
            };
        }
        table
    }

    #[inline(always)]
    fn home(&self, key: u32) -> usize {
        (u64::from(key).wrapping_mul(MIX) >> self.shift) as usize
    }

    /// The state after the four lowercased bytes `key`, if some literal
    /// begins with them.
    #[inline(always)]
    fn get(&self, key: u32) -> Option<StateID> {
        let mask = self.slots.len() - 1;
        let mut at = self.home(key);
        loop {
            let slot = self.slots[at];
            if slot.state == 0 {
                return None;
            }
            if slot.key == key {
                return StateID::new(slot.state as usize).ok();
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
    ///
    /// When every literal is at least `m` bytes long (`m >= 5`), the filter
    /// tests only every `s = min(m - 3, 4)`-th position, as FDR's strided
    /// variants do: each literal registers the fingerprints of its four-byte
    /// windows at offsets `0..s`, and an occurrence starting at `t` spans
    /// exactly one tested position `p` in `t..t + s` (whose window, at offset
    /// `p - t < s <= m - 3`, lies inside the literal). A position that
    /// passes sends its `s` candidate starts `p - s + 1..=p` to the DFA.
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
        let mut jumps = Vec::with_capacity(long_count);
        for p in patterns {
            match p.len() {
                0 => {}
                1 => set(&mut singles, usize::from(p[0] | 0x20)),
                2 | 3 => set(
                    &mut pairs,
                    usize::from(u16::from_le_bytes([p[0], p[1]]) | 0x2020),
                ),
                _ => {
                    for window in p.windows(4).take(stride) {
                        let (word, mask) = slot(shift, word_at(window, 0) | FOLD);
                        long[word] |= mask;
                    }
                    let prefix = lower4(word_at(p, 0));
                    let state = prefix
                        .to_le_bytes()
                        .iter()
                        .fold(start, |sid, &b| dfa.next_state(Anchored::Yes, sid, b));
                    debug_assert!(!dfa.is_dead(state), "a literal's prefix is a live path");
                    jumps.push((prefix, state));
                }
            }
        }
        if !has_short {
            pairs = Vec::new();
        }
        let ends: Vec<StateID> = patterns
            .iter()
            .map(|p| {
                p.iter().fold(start, |sid, &b| {
                    dfa.next_state(Anchored::Yes, sid, b.to_ascii_lowercase())
                })
            })
            .collect();
        debug_assert!(ends.iter().all(|&sid| dfa.is_match(sid)));
        Ok(LiteralScan {
            long,
            shift,
            pairs,
            singles,
            has_short,
            stride,
            dfa,
            start,
            owners: Owners::new(&ends),
            jumps: JumpTable::new(jumps),
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
    /// of start positions the DFA decided.
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
            // Walk the first bytes only as deep as the short-literal tables
            // say a short literal may end here: they are exact in the folded
            // bytes, so a missing bit rules the walk out.
            let depth = match *rest {
                [a, b, ..]
                    if test(
                        &self.pairs,
                        usize::from(u16::from_le_bytes([a, b]) | 0x2020),
                    ) =>
                {
                    3
                }
                [a, ..] if test(&self.singles, usize::from(a | 0x20)) => 1,
                _ => 0,
            };
            let short = &rest[..depth.min(rest.len())];
            if !self.walk(self.start, short, start, 0, report) {
                return;
            }
        }
        if rest.len() >= 4
            && let Some(sid) = self.jumps.get(lower4(word_at(rest, 0)))
        {
            self.report_matches(sid, start, 4, report);
            self.walk(sid, rest, start, 4, report);
        }
    }

    /// Walks the DFA on from `sid`, the state after `rest`'s first `depth`
    /// bytes, over the rest of `rest`, reporting each match; says whether
    /// it is still alive at the end.
    #[inline(always)]
    fn walk(
        &self,
        mut sid: StateID,
        rest: &[u8],
        start: usize,
        depth: usize,
        report: &mut impl FnMut(usize, usize, usize),
    ) -> bool {
        for (i, &byte) in rest.iter().enumerate().skip(depth) {
            sid = self
                .dfa
                .next_state(Anchored::Yes, sid, byte.to_ascii_lowercase());
            if self.dfa.is_dead(sid) {
                return false;
            }
            self.report_matches(sid, start, i + 1, report);
        }
        true
    }

    /// Reports the literals that end at the state `sid`, reached over
    /// `len` bytes from `start`.
    #[inline(always)]
    fn report_matches(
        &self,
        sid: StateID,
        start: usize,
        len: usize,
        report: &mut impl FnMut(usize, usize, usize),
    ) {
        if self.dfa.is_match(sid) {
            for &pattern in self.owners.of(sid) {
                report(pattern as usize, start, start + len);
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

/// Four bytes with `A`–`Z` lowercased and every other byte unchanged.
#[inline(always)]
fn lower4(x: u32) -> u32 {
    // Per byte, with the top bit cleared (so no sum carries into the next
    // byte): the top bit of `low + 0x3F` is set from `A` (0x41) up, that of
    // `low + 0x25` from `[` (0x5B) up; a byte with its own top bit set is
    // not ASCII.
    let low = x & 0x7F7F_7F7F;
    let from_a = low.wrapping_add(0x3F3F_3F3F);
    let past_z = low.wrapping_add(0x2525_2525);
    let upper = from_a & !past_z & !x & 0x8080_8080;
    x | (upper >> 2)
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
        // `ABCD` and `Cd` equal `abcd` and `cd` once lowercased: two literals
        // ending at one DFA state.
        let patterns: &[&[u8]] = &[
            b"abcd",
            b"bcd",
            b"ABCDE",
            b"cd",
            b"d",
            b"e",
            b"abcdabcd",
            b"ABCD",
            b"Cd",
        ];
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
    fn lower4_lowercases_exactly_the_ascii_capitals() {
        for b in 0u8..=255 {
            for lane in 0..4 {
                // The byte in every lane, beside neighbours that carry or
                // borrow if the lanes leaked into each other.
                let mut bytes = [0xFF, 0x40, 0x5B, 0x80];
                bytes[lane] = b;
                let want = bytes.map(|x| x.to_ascii_lowercase());
                assert_eq!(
                    lower4(u32::from_le_bytes(bytes)).to_le_bytes(),
                    want,
                    "{b:#x}"
                );
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
