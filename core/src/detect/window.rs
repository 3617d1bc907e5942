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

use std::collections::{HashMap, VecDeque};

use foldhash::fast::FixedState;

use super::rules::{Aggregate, AggregateMode};
use crate::crypto::Digest;

#[derive(Debug)]
enum State {
    Fixed { start: u64, count: u32 },
    Sliding(VecDeque<u64>),
    Distinct(Vec<(u64, u64)>),
}

/// Key bytes kept inline when short.
const INLINE_KEY: usize = 22;

/// A window key: inline when it is at most [`INLINE_KEY`] bytes (addresses,
/// sensor ids), so that a lookup compares bytes inside the hash table's
/// bucket instead of following a pointer to the heap (one cache miss fewer
/// per update at 100,000 keys). Hashes and compares as its bytes.
#[derive(Debug, Clone)]
enum WindowKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl WindowKey {
    fn new(key: &[u8]) -> WindowKey {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key);
            WindowKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            WindowKey::Heap(key.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            WindowKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            WindowKey::Heap(bytes) => bytes,
        }
    }
}

impl PartialEq for WindowKey {
    fn eq(&self, other: &WindowKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for WindowKey {}

impl std::hash::Hash for WindowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As the bytes hash, so that lookups by `&[u8]` find it.
        self.as_bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for WindowKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[derive(Debug)]
struct Slot {
    key: WindowKey,
    latest: u64,
    state: State,
}

/// The per-key windows of one anomaly rule.
#[derive(Debug)]
pub struct WindowTable {
    aggregate: Aggregate,
    capacity: usize,
    index: HashMap<WindowKey, u32, FixedState>,
    slots: Vec<Option<Slot>>,
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
            index: HashMap::with_hasher(FixedState::with_seed(hash_seed)),
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
        self.index.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
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
        let slot_id = match self.index.get(key) {
            Some(&id) => id,
            None => self.insert(key, time_ms),
        };
        // Record the touch before the queue may be compacted: compaction
        // keeps each key's latest touch, and this is now that touch.
        self.queue.push_back((slot_id, touched));
        self.touched[slot_id as usize] = touched;
        if self.queue.len() > 2 * self.index.len() + 64 {
            self.rebuild_queue();
        }
        let Some(slot) = self.slots[slot_id as usize].as_mut() else {
            return false;
        };
        // Logical time never runs backwards for a key.
        let now = time_ms.max(slot.latest);
        slot.latest = now;
        let a = &self.aggregate;
        let n = a.count;
        let inside = |t: u64| now.saturating_sub(t) < a.window_ms;
        match (&a.mode, &mut slot.state) {
            (AggregateMode::EventCount, State::Sliding(times)) => {
                if times.len() == n as usize {
                    times.pop_front();
                }
                times.push_back(now);
                let alert = times.len() == n as usize && times.front().is_some_and(|&t| inside(t));
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

    fn fresh_state(&self) -> State {
        match &self.aggregate.mode {
            AggregateMode::EventCount => State::Sliding(VecDeque::new()),
            AggregateMode::ValueCount(_) => State::Distinct(Vec::new()),
            _ => State::Fixed { start: 0, count: 0 },
        }
    }

    fn insert(&mut self, key: &[u8], time_ms: u64) -> u32 {
        while self.index.len() >= self.capacity && self.evict_oldest() {}
        let key = WindowKey::new(key);
        let slot = Slot {
            key: key.clone(),
            latest: time_ms,
            state: self.fresh_state(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                self.touched.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, id);
        id
    }

    /// Evicts the least recently updated key; false if there was none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((id, touched)) = self.queue.pop_front() {
            let live = self.touched[id as usize] == touched;
            if live && let Some(slot) = self.slots[id as usize].take() {
                self.touched[id as usize] = 0;
                self.index.remove(slot.key.as_bytes());
                self.free.push(id);
                self.evictions += 1;
                return true;
            }
        }
        false
    }

    /// Compacts the queue to each live key's latest touch, oldest first. The
    /// queue holds every live key's latest touch (eviction pops only the key
    /// it evicts, and stale records before it) in touch order, so keeping
    /// just those records is the whole compaction.
    fn rebuild_queue(&mut self) {
        let touched = &self.touched;
        self.queue.retain(|&(id, t)| touched[id as usize] == t);
    }
}

impl WindowTable {
    /// Canonical encoding of the live windows (oldest update first), for
    /// snapshots: a replica restored from it alerts exactly as one that saw
    /// every event.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut live: Vec<(u64, &Slot)> = self
            .slots
            .iter()
            .zip(&self.touched)
            .filter_map(|(s, &t)| s.as_ref().map(|s| (t, s)))
            .collect();
        live.sort_unstable_by_key(|&(t, _)| t);
        let live = live.into_iter().map(|(_, s)| s);
        crate::codec::put_length(out, live.len());
        for slot in live {
            crate::codec::put_bytes(out, slot.key.as_bytes());
            out.extend_from_slice(&slot.latest.to_le_bytes());
            match &slot.state {
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
    /// for the same aggregate.
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
                    let mut times = VecDeque::with_capacity(len);
                    for _ in 0..len {
                        times.push_back(r.u64("window time")?);
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
            let id = self.insert(&key, latest);
            self.touches += 1;
            let touched = self.touches;
            self.queue.push_back((id, touched));
            self.touched[id as usize] = touched;
            if let Some(slot) = self.slots[id as usize].as_mut() {
                slot.state = state;
            }
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
        let mut keys: Vec<Vec<u8>> = t.index.keys().map(|k| k.as_bytes().to_vec()).collect();
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
        let mut t = table(AggregateMode::Threshold, 1_000, 1_000, 16);
        let mut model: Vec<Vec<u8>> = Vec::new();
        let mut fresh = 0u64;
        let mut time = 0u64;
        for _ in 0..100 {
            for step in 0..300 {
                let key = if model.len() < 16 || step % 97 == 0 {
                    fresh += 1;
                    format!("new{fresh}").into_bytes()
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
                assert_eq!(held(&t), expected, "at time {time}");
            }
        }
        assert!(t.evictions() > 200);
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
            let mut keys: Vec<Vec<u8>> = t.index.keys().map(|k| k.as_bytes().to_vec()).collect();
            keys.sort();
            keys
        };
        assert_eq!(survivors(1), survivors(2));
    }
}
