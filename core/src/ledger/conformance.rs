//! The conformance suite every [`EventStore`] must pass: the in-memory store
//! runs it in `cargo test` (module tests) and the daemon's redb store runs it
//! in its own tests. Each check panics with a message on failure.
//!
//! `make` returns a fresh, empty store; `reopen` simulates a crash and
//! restart of the store it is given (for a real store: drop it without any
//! further call and open the same files).

use super::{Base, Entry, EventStore, GENESIS, StoreError, entry_hash};
use std::ops::ControlFlow;

use crate::crypto::Digest;

fn chain(from: Base, count: u64, tag: u8) -> Vec<Entry> {
    let mut hash = from.hash;
    (1..=count)
        .map(|i| {
            let sequence = from.sequence + i;
            let bytes = vec![tag, i as u8, (i >> 8) as u8];
            hash = entry_hash(&hash, &bytes);
            Entry {
                sequence,
                bytes,
                hash,
            }
        })
        .collect()
}

fn head_of(entries: &[Entry]) -> Base {
    entries.last().map_or(Base::GENESIS, |e| Base {
        sequence: e.sequence,
        hash: e.hash,
    })
}

/// Runs every check.
pub fn run<S: EventStore>(mut make: impl FnMut() -> S, mut reopen: impl FnMut(S) -> S) {
    append_read_and_bounds(make());
    rejects_gaps_and_overlaps(make());
    synced_appends_survive_a_crash(make(), &mut reopen);
    snapshots_and_reset(make(), &mut reopen);
    large_batches_and_entries(make(), &mut reopen);
}

fn append_read_and_bounds<S: EventStore>(mut store: S) {
    assert_eq!(
        store.bounds().expect("bounds"),
        (Base::GENESIS, None),
        "a new store is empty"
    );
    assert!(store.read(1, 10).expect("read").is_empty());
    let entries = chain(Base::GENESIS, 300, 1);
    store.append(&entries[..100]).expect("append");
    store.append(&entries[100..]).expect("append");
    assert_eq!(
        store.read(1, 1000).expect("read"),
        entries,
        "read returns what was appended"
    );
    assert_eq!(store.read(299, 10).expect("read"), entries[298..].to_vec());
    assert_eq!(
        store.read(50, 3).expect("read"),
        entries[49..52].to_vec(),
        "limit"
    );
    assert!(store.read(301, 10).expect("read").is_empty());
    let (base, last) = store.bounds().expect("bounds");
    assert_eq!(base, Base::GENESIS);
    assert_eq!(last, Some((300, entries[299].hash)));
}

/// Batches of thousands of entries and entries of hundreds of KiB (a store
/// may group entries into pages: reads must start and stop anywhere).
fn large_batches_and_entries<S: EventStore>(mut store: S, reopen: &mut impl FnMut(S) -> S) {
    let mut entries = chain(Base::GENESIS, 2_500, 5);
    // Entry 2,501 is 600 KiB, 2,502 is empty, 2,503..2,600 are small.
    let mut hash = entries[2_499].hash;
    for (sequence, len) in (2_501..=2_600).map(|s| {
        (
            s,
            if s == 2_501 {
                600 << 10
            } else {
                (s % 7) as usize * 50 * (usize::from(s != 2_502))
            },
        )
    }) {
        let bytes = vec![(sequence % 251) as u8; len];
        hash = entry_hash(&hash, &bytes);
        entries.push(Entry {
            sequence,
            bytes,
            hash,
        });
    }
    store
        .append(&entries[..2_500])
        .expect("append a large batch");
    store
        .append(&entries[2_500..])
        .expect("append large entries");
    store.sync().expect("sync");
    store = reopen(store);
    for from in [
        1u64, 2, 1_023, 1_024, 1_025, 1_026, 2_047, 2_049, 2_500, 2_501, 2_502, 2_599, 2_600,
    ] {
        for limit in [1usize, 2, 3, 1_500] {
            let start = from as usize - 1;
            let end = (start + limit).min(entries.len());
            assert_eq!(
                store.read(from, limit).expect("read"),
                entries[start..end].to_vec(),
                "read({from}, {limit})"
            );
        }
    }
    assert!(store.read(2_601, 5).expect("read").is_empty());
    for from in [1u64, 1_024, 1_025, 2_500, 2_600, 2_601] {
        let mut seen = Vec::new();
        store
            .scan(from, &mut |batch| {
                assert!(!batch.is_empty(), "scan batches are never empty");
                seen.extend(batch.iter().map(|e| Entry {
                    sequence: e.sequence,
                    hash: e.hash,
                    bytes: e.bytes.to_vec(),
                }));
                ControlFlow::Continue(())
            })
            .expect("scan");
        assert_eq!(seen, entries[from as usize - 1..].to_vec(), "scan({from})");
    }
    let mut batches = 0;
    store
        .scan(1, &mut |_| {
            batches += 1;
            ControlFlow::Break(())
        })
        .expect("scan");
    assert_eq!(batches, 1, "a scan stops when its visitor breaks");
    assert_eq!(
        store.bounds().expect("bounds").1,
        Some((2_600, entries[2_599].hash))
    );
    let next = chain(head_of(&entries), 1, 6);
    store
        .append(&next)
        .expect("the log continues after large entries");
    assert_eq!(store.read(2_601, 5).expect("read"), next);
}

fn rejects_gaps_and_overlaps<S: EventStore>(mut store: S) {
    let entries = chain(Base::GENESIS, 5, 2);
    assert!(matches!(
        store.append(&entries[1..]),
        Err(StoreError::OutOfOrder {
            expected: 1,
            got: 2
        })
    ));
    store.append(&entries[..3]).expect("append");
    assert!(
        matches!(
            store.append(&entries[..1]),
            Err(StoreError::OutOfOrder { .. })
        ),
        "overlap"
    );
    let mut gap = entries[3..].to_vec();
    gap.remove(0);
    assert!(store.append(&gap).is_err(), "gap");
    assert_eq!(
        store.read(1, 10).expect("read").len(),
        3,
        "failed appends wrote nothing"
    );
}

fn synced_appends_survive_a_crash<S: EventStore>(mut store: S, reopen: &mut impl FnMut(S) -> S) {
    let entries = chain(Base::GENESIS, 20, 3);
    store.append(&entries[..10]).expect("append");
    store.sync().expect("sync");
    store = reopen(store);
    assert_eq!(
        store.read(1, 100).expect("read"),
        entries[..10].to_vec(),
        "synced entries survive"
    );
    store
        .append(&entries[10..])
        .expect("append after restart continues the log");
    store.sync().expect("sync");
    store = reopen(store);
    assert_eq!(store.read(1, 100).expect("read"), entries);
}

fn snapshots_and_reset<S: EventStore>(mut store: S, reopen: &mut impl FnMut(S) -> S) {
    assert_eq!(store.snapshot().expect("snapshot"), None);
    let entries = chain(Base::GENESIS, 8, 4);
    store.append(&entries).expect("append");
    store
        .put_snapshot(head_of(&entries[..5]), b"state at 5")
        .expect("put snapshot");
    store.sync().expect("sync");
    store = reopen(store);
    assert_eq!(
        store.snapshot().expect("snapshot"),
        Some((head_of(&entries[..5]), b"state at 5".to_vec()))
    );
    assert_eq!(
        store.read(1, 100).expect("read").len(),
        8,
        "snapshots keep the log"
    );

    let base = Base {
        sequence: 1000,
        hash: Digest::of(b"certified head"),
    };
    store
        .reset_to_snapshot(base, b"state at 1000")
        .expect("reset");
    store = reopen(store);
    assert_eq!(
        store.bounds().expect("bounds"),
        (base, None),
        "reset is durable"
    );
    assert!(
        store.read(1, 100).expect("read").is_empty(),
        "the old log is gone"
    );
    assert_eq!(
        store.snapshot().expect("snapshot"),
        Some((base, b"state at 1000".to_vec()))
    );
    let next = chain(base, 3, 5);
    assert!(
        store.append(&chain(Base::GENESIS, 1, 6)).is_err(),
        "must continue from the base"
    );
    store.append(&next).expect("append after reset");
    assert_eq!(store.read(1001, 10).expect("read"), next);
    assert_ne!(base.hash, GENESIS);
}
