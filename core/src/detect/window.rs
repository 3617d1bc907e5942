//! Anomaly windows: per-key counting for one rule, in logical time, with
//! bounded memory.
//!
//! A [`WindowTable`] maps a key (the bytes of the rule's `by` field) to a small
//! state:
//! - the fixed-window modes (Suricata's `threshold`, `limit`, `both`,
//!   `detection_filter`) keep the window's start and a count: O(1);
//! - `event_count` keeps at most `count` timestamps: the sliding window holds
//!   `count` matches exactly when the `count`-th most recent one is inside it;
//! - `value_count` keeps at most `count` (value hash, last seen) pairs: if
//!   `count` distinct values are inside the window, the `count` most recently
//!   seen distinct values all are.
//!
//! At most `capacity` keys are held. Inserting beyond that evicts the least
//! recently updated key, found through a queue of (slot, touch) records with
//! lazy deletion. The queue is in touch order, so when it grows past twice the
//! live keys it is compacted by dropping every record that is not its slot's
//! latest touch (a filter, no sort); an update costs amortised O(1) and the
//! eviction order depends only on the sequence of updates, never on the
//! hasher. Each slot's latest touch is kept in a dense column beside the
//! slots, so the filter and the eviction check read 8 bytes per record, not
//! a slot.
//!
//! Memory layout, for 100,000 keys and more: the index is open-addressed
//! with linear probing, at most half full, and a key's bucket is one cache
//! line holding the key itself (up to 19 bytes; a longer key lives beside its
//! slot and the bucket holds its hash), its latest time and its whole state,
//! so a lookup and the fixed-window update miss the cache once (an
//! `event_count` update once more, for its ring of times). Removal shifts
//! the probe run back (no tombstones). [`WindowTable::update_many`] applies a
//! batch's updates with their lookups overlapped; `Detector::inspect_batch`
//! uses it. None of this is observable: answers, evictions and the snapshot
//! encoding are those of a plain map.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use foldhash::fast::FixedState;

use super::rules::{Aggregate, AggregateMode};
use crate::crypto::Digest;

#[derive(Debug)]
enum State {
    Fixed { start: u64, count: u32 },
    Sliding(Ring),
    Distinct(Vec<(u64, u64)>),
}

/// The latest match times of one key, oldest first: a ring that grows on
/// demand up to the rule's `count` (at most
/// [`AGGREGATE_COUNT_MAX`](super::rules::AGGREGATE_COUNT_MAX)), so a key
/// seen once holds one time, not `count`.
#[derive(Debug, Default)]
struct Ring {
    buf: Box<[u64]>,
    head: u32,
    len: u32,
}

impl Ring {
    fn len(&self) -> usize {
        self.len as usize
    }

    fn position(&self, i: usize) -> usize {
        let at = self.head as usize + i;
        if at >= self.buf.len() {
            at - self.buf.len()
        } else {
            at
        }
    }

    fn front(&self) -> Option<u64> {
        (self.len > 0).then(|| self.buf[self.head as usize])
    }

    fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).map(|i| self.buf[self.position(i)])
    }

    /// Appends `t`, first dropping the oldest time if `limit` are held.
    fn push_within(&mut self, t: u64, limit: usize) {
        if self.len() >= limit && self.len > 0 {
            self.head = self.position(1) as u32;
            self.len -= 1;
        }
        if self.len() == self.buf.len() {
            let grown = (2 * self.buf.len()).max(4).min(limit.max(1));
            let mut buf = Vec::with_capacity(grown);
            buf.extend(self.iter());
            buf.resize(grown, 0);
            self.buf = buf.into_boxed_slice();
            self.head = 0;
        }
        let at = self.position(self.len());
        self.buf[at] = t;
        self.len += 1;
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// Key bytes held in the bucket itself (addresses and sensor ids); a longer
/// key is held beside its slot, and its bucket holds the key's hash.
const INLINE_KEY: usize = 19;

/// `Bucket::key_len` of a key longer than [`INLINE_KEY`].
const LONG_KEY: u8 = u8::MAX;

/// `Bucket::slot` of an empty bucket.
const EMPTY: u32 = u32::MAX;

/// One key of the open-addressed index, with its whole window state: one
/// cache line, so an update at 100,000 keys misses the cache once for the
/// lookup and the state together (and once more for an `event_count` ring).
#[derive(Debug)]
#[repr(align(64))]
struct Bucket {
    state: State,
    latest: u64,
    slot: u32,
    key_len: u8,
    key: [u8; INLINE_KEY],
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

impl Bucket {
    fn empty() -> Bucket {
        Bucket {
            state: State::Fixed { start: 0, count: 0 },
            latest: 0,
            slot: EMPTY,
            key_len: 0,
            key: [0; INLINE_KEY],
        }
    }

    fn is_empty(&self) -> bool {
        self.slot == EMPTY
    }
}

/// What a slot id stands for besides its bucket: the key's hash (to find
/// the bucket again on eviction and to rehash on growth) and a key too long
/// to be held inline.
#[derive(Debug, Default)]
struct SlotKey {
    hash: u64,
    long: Option<Box<[u8]>>,
}

/// One update of [`WindowTable::update_many`]: the key, the counted value
/// (`value_count` only) and the time in milliseconds.
pub type WindowUpdate<'a> = (&'a [u8], Option<&'a [u8]>, u64);

/// The per-key windows of one anomaly rule.
#[derive(Debug)]
pub struct WindowTable {
    aggregate: Aggregate,
    capacity: usize,
    hasher: FixedState,
    /// Linear probing, at most half full; empty until the first key.
    buckets: Vec<Bucket>,
    len: usize,
    slots: Vec<SlotKey>,
    /// Each slot's latest touch; 0 for a free slot (touches start at 1).
    touched: Vec<u64>,
    free: Vec<u32>,
    queue: VecDeque<(u32, u64)>,
    touches: u64,
    evictions: u64,
}

impl WindowTable {
    /// An empty table for `aggregate` holding at most `capacity` keys (at
    /// least one). `hash_seed` only affects memory layout.
    pub fn new(aggregate: Aggregate, capacity: usize, hash_seed: u64) -> WindowTable {
        WindowTable {
            aggregate,
            capacity: capacity.max(1),
            hasher: FixedState::with_seed(hash_seed),
            buckets: Vec::new(),
            len: 0,
            slots: Vec::new(),
            touched: Vec::new(),
            free: Vec::new(),
            queue: VecDeque::new(),
            touches: 0,
            evictions: 0,
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keys evicted so far to respect the capacity.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Records one match for `key` at `time_ms` (with the counted `value` for
    /// `value_count`) and says whether it produces an alert.
    pub fn update(&mut self, key: &[u8], value: Option<&[u8]>, time_ms: u64) -> bool {
        self.touches += 1;
        let touched = self.touches;
        let hash = self.hasher.hash_one(key);
        let at = match self.find(key, hash) {
            Ok(at) => at,
            Err(_) => self.insert(key, hash, time_ms),
        };
        let slot_id = self.buckets[at].slot;
        // Record the touch before the queue may be compacted: compaction
        // keeps each key's latest touch, and this is now that touch.
        self.queue.push_back((slot_id, touched));
        self.touched[slot_id as usize] = touched;
        if self.queue.len() > 2 * self.len + 64 {
            self.rebuild_queue();
        }
        let bucket = &mut self.buckets[at];
        // Logical time never runs backwards for a key.
        let now = time_ms.max(bucket.latest);
        bucket.latest = now;
        let a = &self.aggregate;
        let n = a.count;
        let inside = |t: u64| now.saturating_sub(t) < a.window_ms;
        match (&a.mode, &mut bucket.state) {
            (AggregateMode::EventCount, State::Sliding(times)) => {
                times.push_within(now, n as usize);
                let alert = times.len() == n as usize && times.front().is_some_and(inside);
                if alert {
                    times.clear();
                }
                alert
            }
            (AggregateMode::ValueCount(_), State::Distinct(seen)) => {
                let h = value_hash(value.unwrap_or_default());
                seen.retain(|&(_, t)| inside(t));
                if let Some(entry) = seen.iter_mut().find(|(v, _)| *v == h) {
                    entry.1 = now;
                } else {
                    if seen.len() == n as usize {
                        // Drop the least recently seen value.
                        if let Some(oldest) = (0..seen.len()).min_by_key(|&i| seen[i].1) {
                            seen.swap_remove(oldest);
                        }
                    }
                    seen.push((h, now));
                }
                let alert = seen.len() >= n as usize;
                if alert {
                    seen.clear();
                }
                alert
            }
            (mode, State::Fixed { start, count }) => {
                if !inside(*start) || *count == 0 {
                    *start = now;
                    *count = 0;
                }
                *count = count.saturating_add(1);
                match mode {
                    AggregateMode::Threshold => *count % n == 0,
                    AggregateMode::Limit => *count <= n,
                    AggregateMode::Both => *count == n,
                    AggregateMode::DetectionFilter => *count > n,
                    AggregateMode::EventCount | AggregateMode::ValueCount(_) => false,
                }
            }
            _ => false,
        }
    }

    /// [`WindowTable::update`] for each of `updates` in order, appending
    /// each answer to `alerts`; the result is exactly that of the updates one
    /// by one. Each chunk's buckets (and `event_count` rings) are looked up
    /// together first: at 100,000 keys every lookup is a cache miss, and
    /// independent lookups overlap their misses where one-by-one updates pay
    /// them in turn.
    pub fn update_many(&mut self, updates: &[WindowUpdate<'_>], alerts: &mut Vec<bool>) {
        const CHUNK: usize = 64;
        if self.buckets.is_empty() {
            alerts.extend(
                updates
                    .iter()
                    .map(|&(key, value, time)| self.update(key, value, time)),
            );
            return;
        }
        let mut homes = [0usize; CHUNK];
        for chunk in updates.chunks(CHUNK) {
            // Touch each key's home bucket, then what it points to: its
            // slot's touch time (every mode) and the ends of its ring
            // (`event_count`). Short loops that do not branch on what they
            // load, so that many misses are in flight at once. `black_box`
            // waits for them before the updates run on warm lines.
            let mut sink = 0u64;
            for ((key, _, _), home) in chunk.iter().zip(&mut homes) {
                *home = self.home(self.hasher.hash_one(*key));
                sink = sink.wrapping_add(u64::from(self.buckets[*home].slot));
            }
            for &home in &homes[..chunk.len()] {
                let bucket = &self.buckets[home];
                if let Some(touched) = self.touched.get(bucket.slot as usize) {
                    sink = sink.wrapping_add(*touched);
                }
                if let State::Sliding(ring) = &bucket.state
                    && ring.len > 0
                {
                    sink = sink
                        .wrapping_add(ring.buf[ring.head as usize])
                        .wrapping_add(ring.buf[ring.position(ring.len() - 1)]);
                }
            }
            std::hint::black_box(sink);
            alerts.extend(
                chunk
                    .iter()
                    .map(|&(key, value, time)| self.update(key, value, time)),
            );
        }
    }

    fn fresh_state(&self) -> State {
        match &self.aggregate.mode {
            AggregateMode::EventCount => State::Sliding(Ring::default()),
            AggregateMode::ValueCount(_) => State::Distinct(Vec::new()),
            _ => State::Fixed { start: 0, count: 0 },
        }
    }

    fn home(&self, hash: u64) -> usize {
        hash as usize & (self.buckets.len() - 1)
    }

    fn next(&self, at: usize) -> usize {
        (at + 1) & (self.buckets.len() - 1)
    }

    /// The bucket holding `key`, or the empty bucket where it would go.
    fn find(&self, key: &[u8], hash: u64) -> Result<usize, usize> {
        if self.buckets.is_empty() {
            return Err(0);
        }
        // An inline key is compared as its zero-padded array: a fixed-size
        // comparison, no call.
        let mut padded = [0u8; INLINE_KEY];
        if key.len() <= INLINE_KEY {
            padded.iter_mut().zip(key).for_each(|(d, s)| *d = *s);
        }
        let mut at = self.home(hash);
        loop {
            let b = &self.buckets[at];
            if b.is_empty() {
                return Err(at);
            }
            let same = if key.len() <= INLINE_KEY {
                usize::from(b.key_len) == key.len() && b.key == padded
            } else {
                b.key_len == LONG_KEY
                    && b.key[..8] == hash.to_le_bytes()
                    && self.slots[b.slot as usize].long.as_deref() == Some(key)
            };
            if same {
                return Ok(at);
            }
            at = self.next(at);
        }
    }

    /// Adds `key` (absent) with a fresh state, evicting the least recently
    /// updated key at capacity; returns its bucket.
    fn insert(&mut self, key: &[u8], hash: u64, time_ms: u64) -> usize {
        while self.len >= self.capacity && self.evict_oldest() {}
        if 2 * (self.len + 1) > self.buckets.len() {
            self.grow();
        }
        let at = match self.find(key, hash) {
            Ok(at) | Err(at) => at,
        };
        let long = (key.len() > INLINE_KEY).then(|| Box::<[u8]>::from(key));
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = SlotKey { hash, long };
                id
            }
            None => {
                self.slots.push(SlotKey { hash, long });
                self.touched.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        let mut bucket = Bucket {
            state: self.fresh_state(),
            latest: time_ms,
            slot: id,
            key_len: LONG_KEY,
            key: [0; INLINE_KEY],
        };
        if key.len() <= INLINE_KEY {
            bucket.key_len = key.len() as u8;
            bucket.key[..key.len()].copy_from_slice(key);
        } else {
            bucket.key[..8].copy_from_slice(&hash.to_le_bytes());
        }
        self.buckets[at] = bucket;
        self.len += 1;
        at
    }

    /// Doubles the index (16 buckets at first), moving every bucket to its
    /// place in the larger one.
    fn grow(&mut self) {
        let size = (2 * self.buckets.len()).max(16);
        let old = std::mem::replace(&mut self.buckets, Vec::with_capacity(size));
        self.buckets.resize_with(size, Bucket::empty);
        for b in old.into_iter().filter(|b| !b.is_empty()) {
            let mut at = self.home(self.slots[b.slot as usize].hash);
            while !self.buckets[at].is_empty() {
                at = self.next(at);
            }
            self.buckets[at] = b;
        }
    }

    /// Evicts the least recently updated key; false if there was none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((id, touched)) = self.queue.pop_front() {
            if self.touched[id as usize] == touched {
                self.remove(id);
                self.evictions += 1;
                return true;
            }
        }
        false
    }

    /// Removes the key of live slot `id`, closing the gap in its probe run
    /// (backward shift: no tombstones, so lookups never lengthen).
    fn remove(&mut self, id: u32) {
        let slot = std::mem::take(&mut self.slots[id as usize]);
        self.touched[id as usize] = 0;
        self.free.push(id);
        let mut hole = self.home(slot.hash);
        while self.buckets[hole].slot != id {
            hole = self.next(hole);
        }
        self.buckets[hole] = Bucket::empty();
        self.len -= 1;
        let mut at = self.next(hole);
        while !self.buckets[at].is_empty() {
            let home = self.home(self.slots[self.buckets[at].slot as usize].hash);
            let mask = self.buckets.len() - 1;
            // The bucket at `at` may fill the hole unless its home lies
            // cyclically after the hole (then it would move before it).
            if (at.wrapping_sub(home) & mask) >= (at.wrapping_sub(hole) & mask) {
                self.buckets.swap(hole, at);
                hole = at;
            }
            at = self.next(at);
        }
    }

    /// Compacts the queue to each live key's latest touch, oldest first. The
    /// queue holds every live key's latest touch (eviction pops only the key
    /// it evicts, and stale records before it) in touch order, so keeping
    /// just those records is the whole compaction.
    fn rebuild_queue(&mut self) {
        let touched = &self.touched;
        self.queue.retain(|&(id, t)| touched[id as usize] == t);
    }

    /// The keys held, in bucket order.
    #[cfg(test)]
    fn keys(&self) -> Vec<Vec<u8>> {
        self.buckets
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| self.key_of(b).to_vec())
            .collect()
    }

    fn key_of<'a>(&'a self, bucket: &'a Bucket) -> &'a [u8] {
        match self.slots[bucket.slot as usize].long.as_deref() {
            Some(long) => long,
            None => &bucket.key[..usize::from(bucket.key_len)],
        }
    }
}

impl WindowTable {
    /// Canonical encoding of the live windows (oldest update first), for
    /// snapshots: a replica restored from it alerts exactly as one that saw
    /// every event.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut live: Vec<(u64, &Bucket)> = self
            .buckets
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| (self.touched[b.slot as usize], b))
            .collect();
        live.sort_unstable_by_key(|&(t, _)| t);
        crate::codec::put_length(out, live.len());
        for (_, bucket) in live {
            crate::codec::put_bytes(out, self.key_of(bucket));
            out.extend_from_slice(&bucket.latest.to_le_bytes());
            match &bucket.state {
                State::Fixed { start, count } => {
                    out.push(0);
                    out.extend_from_slice(&start.to_le_bytes());
                    out.extend_from_slice(&count.to_le_bytes());
                }
                State::Sliding(times) => {
                    out.push(1);
                    crate::codec::put_length(out, times.len());
                    times
                        .iter()
                        .for_each(|t| out.extend_from_slice(&t.to_le_bytes()));
                }
                State::Distinct(seen) => {
                    out.push(2);
                    crate::codec::put_length(out, seen.len());
                    for (v, t) in seen {
                        out.extend_from_slice(&v.to_le_bytes());
                        out.extend_from_slice(&t.to_le_bytes());
                    }
                }
            }
        }
    }

    /// Restores windows written by [`WindowTable::encode`] into an empty table
    /// for the same aggregate. A key that appears twice is refused.
    pub fn decode_into(
        &mut self,
        r: &mut crate::codec::Reader<'_>,
    ) -> Result<(), crate::codec::CodecError> {
        use crate::codec::CodecError;
        let n = r.length("window keys", self.capacity)?;
        let per_key = self.aggregate.count as usize;
        for _ in 0..n {
            let key = r.bytes("window key", crate::codec::ENCODED_LENGTH_MAX)?;
            let latest = r.u64("window time")?;
            let state = match r.u8("window state")? {
                0 => State::Fixed {
                    start: r.u64("window start")?,
                    count: r.u32("window count")?,
                },
                1 => {
                    let len = r.length("window times", per_key)?;
                    let mut times = Ring::default();
                    for _ in 0..len {
                        times.push_within(r.u64("window time")?, per_key);
                    }
                    State::Sliding(times)
                }
                2 => {
                    let len = r.length("window values", per_key)?;
                    let mut seen = Vec::with_capacity(len);
                    for _ in 0..len {
                        seen.push((r.u64("window value")?, r.u64("window time")?));
                    }
                    State::Distinct(seen)
                }
                tag => {
                    return Err(CodecError::InvalidTag {
                        what: "window state",
                        tag,
                    });
                }
            };
            let hash = self.hasher.hash_one(&key[..]);
            if self.find(&key, hash).is_ok() {
                return Err(CodecError::Invalid {
                    what: "window key",
                    reason: "a key appears twice",
                });
            }
            let at = self.insert(&key, hash, latest);
            self.buckets[at].state = state;
            self.touches += 1;
            let touched = self.touches;
            let id = self.buckets[at].slot;
            self.queue.push_back((id, touched));
            self.touched[id as usize] = touched;
        }
        Ok(())
    }
}

fn value_hash(value: &[u8]) -> u64 {
    let d = Digest::of(value);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::Field;

    fn table(mode: AggregateMode, count: u32, window_ms: u64, capacity: usize) -> WindowTable {
        WindowTable::new(
            Aggregate {
                by: Field::Source,
                mode,
                count,
                window_ms,
            },
            capacity,
            7,
        )
    }

    fn run(t: &mut WindowTable, times: &[u64]) -> Vec<bool> {
        times.iter().map(|&at| t.update(b"k", None, at)).collect()
    }

    #[test]
    fn suricata_fixed_window_modes() {
        let times = [0, 1, 2, 3, 4, 5, 100, 101];
        let mut t = table(AggregateMode::Threshold, 2, 50, 8);
        assert_eq!(
            run(&mut t, &times),
            [false, true, false, true, false, true, false, true]
        );
        let mut t = table(AggregateMode::Limit, 2, 50, 8);
        assert_eq!(
            run(&mut t, &times),
            [true, true, false, false, false, false, true, true]
        );
        let mut t = table(AggregateMode::Both, 3, 50, 8);
        assert_eq!(
            run(&mut t, &times),
            [false, false, true, false, false, false, false, false]
        );
        let mut t = table(AggregateMode::DetectionFilter, 3, 50, 8);
        assert_eq!(
            run(&mut t, &times),
            [false, false, false, true, true, true, false, false]
        );
    }

    #[test]
    fn sigma_event_count_is_sliding_and_resets_after_alert() {
        let mut t = table(AggregateMode::EventCount, 3, 10, 8);
        // 0, 5, 11: spans 11 ms > window; 5, 11, 14 fit in 10 ms.
        assert_eq!(
            run(&mut t, &[0, 5, 11, 14, 15, 16, 17]),
            [false, false, false, true, false, false, true]
        );
    }

    #[test]
    fn sigma_value_count_counts_distinct_values_in_window() {
        let mut t = table(AggregateMode::ValueCount(Field::Sensor), 3, 100, 8);
        let mut go = |v: &str, at| t.update(b"k", Some(v.as_bytes()), at);
        assert!(!go("a", 0));
        assert!(!go("a", 1));
        assert!(!go("b", 2));
        assert!(go("c", 3));
        assert!(!go("d", 10));
        assert!(!go("e", 200)); // d fell out of the window
        assert!(!go("e", 201));
        assert!(!go("f", 202));
        assert!(go("g", 203));
    }

    #[test]
    fn time_going_backwards_counts_as_latest_seen() {
        let mut t = table(AggregateMode::EventCount, 2, 10, 8);
        assert!(!t.update(b"k", None, 100));
        assert!(t.update(b"k", None, 3));
    }

    #[test]
    fn memory_is_bounded_and_evicts_least_recently_updated() {
        let mut t = table(AggregateMode::EventCount, 2, 1_000_000, 100);
        t.update(b"keep", None, 0);
        for i in 0..100_000u64 {
            t.update(format!("k{i}").as_bytes(), None, i);
            if i % 50 == 0 {
                t.update(b"keep", None, i);
            }
            assert!(t.len() <= 100);
            assert!(t.queue.len() <= 2 * t.len() + 65);
        }
        assert_eq!(t.len(), 100);
        assert_eq!(t.evictions(), 100_000 + 1 - 100);
        // "keep" was touched recently enough to survive, so its second match alerts.
        assert!(t.update(b"keep", None, 100_000));
        // An evicted key starts over.
        assert!(!t.update(b"k0", None, 100_001));
    }

    #[test]
    fn encode_and_restore_continue_identically() {
        let mut a = table(AggregateMode::EventCount, 3, 100, 50);
        for i in 0..200u64 {
            a.update(format!("k{}", i % 70).as_bytes(), None, i);
        }
        let mut bytes = Vec::new();
        a.encode(&mut bytes);
        let mut b = table(AggregateMode::EventCount, 3, 100, 50);
        b.decode_into(&mut crate::codec::Reader::new(&bytes))
            .unwrap();
        let mut again = Vec::new();
        b.encode(&mut again);
        assert_eq!(bytes, again);
        for i in 200..600u64 {
            let key = format!("k{}", (i * 31) % 90);
            assert_eq!(
                a.update(key.as_bytes(), None, i),
                b.update(key.as_bytes(), None, i),
                "{i}"
            );
        }
    }

    /// Keys held, sorted.
    fn held(t: &WindowTable) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = t.keys();
        keys.sort();
        keys
    }

    #[test]
    fn the_update_that_compacts_the_queue_keeps_its_own_touch() {
        // Two keys updated in turn at capacity 2: the LRU queue is compacted
        // every ~66 updates, at some update of each key. Then a third key
        // evicts the least recently updated one: "a", always. Before the
        // fix, the compaction ran before the update recorded its touch, so
        // the key being updated dropped out of the queue; at capacity, the
        // other key was evicted instead, and a replica restored from a
        // snapshot (whose queue is rebuilt from the touches) evicted
        // differently from one that was not.
        for n in 0..300u64 {
            let mut t = table(AggregateMode::Threshold, 5, 1_000, 2);
            for i in 0..n {
                t.update(if i % 2 == 0 { b"b" } else { b"a" }, None, i);
            }
            t.update(b"a", None, n);
            t.update(b"b", None, n + 1);
            let mut bytes = Vec::new();
            t.encode(&mut bytes);
            let mut restored = table(AggregateMode::Threshold, 5, 1_000, 2);
            restored
                .decode_into(&mut crate::codec::Reader::new(&bytes))
                .unwrap();
            t.update(b"c", None, n + 2);
            restored.update(b"c", None, n + 2);
            assert_eq!(held(&t), vec![b"b".to_vec(), b"c".to_vec()], "after {n}");
            assert_eq!(held(&restored), held(&t), "after {n}");
        }
    }

    #[test]
    fn evictions_follow_a_plain_lru_model_through_many_compactions() {
        // The model: keys ordered by last update, the first one evicted.
        // Each round updates only keys already held, long enough for the
        // queue to be compacted several times, then brings new keys in, each
        // of which must evict exactly the model's least recent key.
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Keys are inline, held beside their slot (longer than a bucket
        // holds), or either: every removal shifts probe runs that mix both.
        for shape in ["new{}", "a-source-key-longer-than-a-bucket-{}", "mixed"] {
            let mut t = table(AggregateMode::Threshold, 1_000, 1_000, 16);
            let mut model: Vec<Vec<u8>> = Vec::new();
            let mut fresh = 0u64;
            let mut time = 0u64;
            for _ in 0..100 {
                for step in 0..300 {
                    let key = if model.len() < 16 || step % 97 == 0 {
                        fresh += 1;
                        let shape = match shape {
                            "mixed" if fresh.is_multiple_of(3) => {
                                "long-key-of-more-than-nineteen-bytes-{}"
                            }
                            "mixed" => "k{}",
                            s => s,
                        };
                        shape.replace("{}", &fresh.to_string()).into_bytes()
                    } else {
                        model[(next() % model.len() as u64) as usize].clone()
                    };
                    time += 1;
                    t.update(&key, None, time);
                    model.retain(|m| *m != key);
                    if model.len() == 16 {
                        model.remove(0);
                    }
                    model.push(key);
                    let mut expected = model.clone();
                    expected.sort();
                    assert_eq!(held(&t), expected, "{shape} at time {time}");
                    for key in &model {
                        let hash = t.hasher.hash_one(&key[..]);
                        assert!(t.find(key, hash).is_ok(), "{shape} at time {time}");
                    }
                }
            }
            assert!(t.evictions() > 200, "{shape}");
        }
    }

    #[test]
    fn updates_in_bulk_answer_as_one_by_one() {
        // Keys repeat within a chunk and the capacity forces evictions
        // between them, so looked-up buckets move before they are updated.
        for mode in [AggregateMode::EventCount, AggregateMode::DetectionFilter] {
            let mut one = table(mode.clone(), 3, 50, 40);
            let mut bulk = table(mode.clone(), 3, 50, 40);
            let keys: Vec<Vec<u8>> = (0..1_000u64)
                .map(|i| match i % 10 {
                    0 => format!("cold-{i}").into_bytes(),
                    _ => format!("k{}", (i * 7_919) % 30).into_bytes(),
                })
                .collect();
            let updates: Vec<WindowUpdate<'_>> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (&k[..], None, i as u64 / 20))
                .collect();
            let expected: Vec<bool> = updates
                .iter()
                .map(|&(k, v, t)| one.update(k, v, t))
                .collect();
            let mut got = Vec::new();
            bulk.update_many(&updates, &mut got);
            assert_eq!(got, expected, "{mode:?}");
            assert!(expected.contains(&true), "{mode:?}");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            one.encode(&mut a);
            bulk.encode(&mut b);
            assert_eq!(a, b, "{mode:?}");
            assert!(one.evictions() > 0, "{mode:?}");
        }
    }

    #[test]
    fn a_snapshot_naming_a_key_twice_is_refused() {
        let mut t = table(AggregateMode::Threshold, 5, 1_000, 8);
        t.update(b"a", None, 1);
        let mut once = Vec::new();
        t.encode(&mut once);
        // The same entry twice, under a count of two.
        let entry = &once[4..];
        let mut twice = Vec::new();
        crate::codec::put_length(&mut twice, 2);
        twice.extend_from_slice(entry);
        twice.extend_from_slice(entry);
        let mut fresh = table(AggregateMode::Threshold, 5, 1_000, 8);
        let err = fresh
            .decode_into(&mut crate::codec::Reader::new(&twice))
            .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn event_count_follows_the_sliding_model_and_survives_a_snapshot() {
        // The model: each key's last `count` times; an alert when the oldest
        // of a full set is inside the window, which then starts over.
        for count in [1u32, 2, 7, 64, 150] {
            let window_ms = 5 * u64::from(count) + 10;
            let mut t = table(AggregateMode::EventCount, count, window_ms, 1_000);
            let mut model: Vec<VecDeque<u64>> = vec![VecDeque::new(); 5];
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(count);
            let mut now = 0u64;
            let mut alerts = 0;
            for i in 0..6_000u64 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                now += rng % 3;
                let k = (rng >> 8) as usize % model.len();
                let times = &mut model[k];
                if times.len() == count as usize {
                    times.pop_front();
                }
                times.push_back(now);
                let expected = times.len() == count as usize
                    && times.front().is_some_and(|&f| now - f < window_ms);
                if expected {
                    times.clear();
                    alerts += 1;
                }
                let key = [b'k', k as u8];
                assert_eq!(
                    t.update(&key, None, now),
                    expected,
                    "count {count}, update {i}"
                );
                if i == 3_000 {
                    let mut bytes = Vec::new();
                    t.encode(&mut bytes);
                    let mut restored = table(AggregateMode::EventCount, count, window_ms, 1_000);
                    restored
                        .decode_into(&mut crate::codec::Reader::new(&bytes))
                        .unwrap();
                    let mut again = Vec::new();
                    restored.encode(&mut again);
                    assert_eq!(again, bytes);
                    t = restored;
                }
            }
            assert!(alerts > 0, "count {count}");
        }
    }

    #[test]
    fn eviction_order_does_not_depend_on_the_hash_seed() {
        let survivors = |seed| {
            let mut t = WindowTable::new(
                Aggregate {
                    by: Field::Source,
                    mode: AggregateMode::EventCount,
                    count: 3,
                    window_ms: 1_000,
                },
                10,
                seed,
            );
            for i in 0..1_000u64 {
                t.update(format!("k{}", (i * 7919) % 37).as_bytes(), None, i);
            }
            let mut keys: Vec<Vec<u8>> = t.keys();
            keys.sort();
            keys
        };
        assert_eq!(survivors(1), survivors(2));
    }
}
