use super::memory::MemoryStore;
use super::*;
use crate::detect::Event;

fn account(n: u8) -> AccountId {
    [n; 32]
}

fn mint(n: u8, amount: u64) -> DomainEvent {
    DomainEvent::Minted {
        account: account(n),
        amount,
        key: vec![n],
    }
}

fn cause(height: u64) -> Causation {
    Causation {
        height,
        client: [9; 32],
        request_id: height,
    }
}

#[test]
fn memory_store_passes_the_conformance_suite() {
    conformance::run(MemoryStore::new, |mut s| {
        s.crash();
        s
    });
}

#[test]
fn append_chains_and_open_verifies() {
    let mut ledger = Ledger::open(MemoryStore::new()).unwrap();
    let records = ledger
        .append(
            1_000,
            cause(1),
            vec![
                ("account/a".into(), ExpectedVersion::NoStream, mint(1, 5)),
                ("account/a".into(), ExpectedVersion::Any, mint(1, 6)),
                ("account/b".into(), ExpectedVersion::NoStream, mint(2, 7)),
            ],
        )
        .unwrap();
    assert_eq!(
        records.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(records[1].stream_version, 2);
    assert_eq!(ledger.stream_version("account/a"), 2);
    ledger.sync().unwrap();
    let head = ledger.head();
    let store = ledger.store().clone();
    let reopened = Ledger::open(store).unwrap();
    assert_eq!(reopened.head(), head);
    assert_eq!(reopened.stream_version("account/b"), 1);
    let mut seen = Vec::new();
    reopened.replay(|r| seen.push(r.clone())).unwrap();
    assert_eq!(seen, records, "replay returns the records as appended");
}

#[test]
fn wrong_expected_version_rejects_the_whole_batch() {
    let mut ledger = Ledger::open(MemoryStore::new()).unwrap();
    ledger
        .append(
            1,
            cause(1),
            vec![("s".into(), ExpectedVersion::NoStream, mint(1, 1))],
        )
        .unwrap();
    let head = ledger.head();
    let err = ledger
        .append(
            2,
            cause(2),
            vec![
                ("t".into(), ExpectedVersion::NoStream, mint(2, 1)),
                ("s".into(), ExpectedVersion::Exact(0), mint(1, 1)),
            ],
        )
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::WrongVersion {
            stream: "s".into(),
            expected: ExpectedVersion::Exact(0),
            actual: 1
        }
    );
    assert_eq!(ledger.head(), head);
    assert_eq!(ledger.stream_version("t"), 0);
    assert_eq!(ledger.store().len(), 1);
    // Two events of one stream in one batch: the second expects the first's version.
    ledger
        .append(
            3,
            cause(3),
            vec![
                ("s".into(), ExpectedVersion::Exact(1), mint(1, 1)),
                ("s".into(), ExpectedVersion::Exact(2), mint(1, 1)),
            ],
        )
        .unwrap();
    assert_eq!(ledger.stream_version("s"), 3);
}

#[test]
fn failed_write_changes_nothing_and_crash_loses_only_unsynced() {
    let mut ledger = Ledger::open(MemoryStore::new()).unwrap();
    ledger
        .append(
            1,
            cause(1),
            vec![("s".into(), ExpectedVersion::Any, mint(1, 1))],
        )
        .unwrap();
    ledger.sync().unwrap();
    let synced = ledger.head();
    ledger.store_mut().fail_next_writes(1);
    let err = ledger.append(
        2,
        cause(2),
        vec![("s".into(), ExpectedVersion::Any, mint(1, 2))],
    );
    assert!(matches!(
        err,
        Err(LedgerError::Store(StoreError::WriteFailed(_)))
    ));
    assert_eq!(ledger.head(), synced, "a failed write leaves the head");
    assert_eq!(ledger.stream_version("s"), 1);
    ledger
        .append(
            3,
            cause(3),
            vec![("s".into(), ExpectedVersion::Exact(1), mint(1, 3))],
        )
        .unwrap();
    let mut store = ledger.store().clone();
    store.crash();
    let reopened = Ledger::open(store).unwrap();
    assert_eq!(
        reopened.head(),
        synced,
        "the unsynced append is lost, the synced one is not"
    );
}

#[test]
fn corruption_is_refused_with_the_first_bad_sequence() {
    let mut ledger = Ledger::open(MemoryStore::new()).unwrap();
    for i in 0..5u8 {
        ledger
            .append(
                u64::from(i),
                cause(1),
                vec![("s".into(), ExpectedVersion::Any, mint(i, 1))],
            )
            .unwrap();
    }
    ledger.sync().unwrap();
    let mut store = ledger.store().clone();
    store.corrupt(3);
    match Ledger::open(store) {
        Err(LedgerError::Corrupt { sequence, reason }) => {
            assert_eq!(sequence, 3);
            assert!(reason.contains("does not chain"), "{reason}");
        }
        other => panic!("corrupt log opened: {other:?}"),
    }
}

#[test]
fn side_by_side_chain_hashes_are_the_in_order_ones_and_find_the_first_break() {
    let mut hash = GENESIS;
    let entries: Vec<Entry> = (1..=300u64)
        .map(|sequence| {
            // Sizes across every blake3 block count, and past one chunk.
            let bytes = vec![sequence as u8; (sequence as usize * 37) % 1_300];
            hash = entry_hash(&hash, &bytes);
            Entry {
                sequence,
                bytes,
                hash,
            }
        })
        .collect();
    let refs: Vec<EntryRef<'_>> = entries.iter().map(Entry::as_ref).collect();
    let mut out = Digests::new();
    entry_hashes(&GENESIS, &refs, &mut out);
    let stored: Vec<Digest> = entries.iter().map(|e| e.hash).collect();
    assert_eq!(*out, stored[..]);

    // Tampered bytes break the chain at that entry and nowhere else; a
    // tampered stored hash breaks it there and at the next entry.
    let mut tampered = entries.clone();
    tampered[120].bytes[0] ^= 1;
    tampered[200].hash = Digest::of(b"forged");
    let refs: Vec<EntryRef<'_>> = tampered.iter().map(Entry::as_ref).collect();
    entry_hashes(&GENESIS, &refs, &mut out);
    let breaks: Vec<usize> = (0..out.len())
        .filter(|&i| out[i] != tampered[i].hash)
        .collect();
    assert_eq!(breaks, vec![120, 200, 201]);

    // A wrong starting hash breaks the first entry only.
    entry_hashes(&Digest::of(b"elsewhere"), &refs[..3], &mut out);
    assert_ne!(out[0], tampered[0].hash);
    assert_eq!(out[1..], stored[1..3]);
}

/// Version-1 encoding of a record (AlertRaised had no `source`): kept here,
/// in the test, to write the frozen fixture; the ledger itself only reads v1.
fn encode_v1(record: &EventRecord) -> Vec<u8> {
    let mut out = vec![1u8];
    record.encode_header(&mut out);
    match &record.event {
        DomainEvent::AlertRaised {
            rule_id,
            severity,
            event_id,
            payload_hash,
            ..
        } => {
            out.push(4);
            put_bytes(&mut out, rule_id.as_bytes());
            out.push(severity_tag(*severity));
            put_bytes(&mut out, event_id.as_bytes());
            out.extend_from_slice(payload_hash.as_bytes());
        }
        other => other.encode_v2(&mut out),
    }
    out
}

fn v1_fixture_records() -> Vec<EventRecord> {
    let alert = |seq: u64, rule: &str, event: &str| EventRecord {
        sequence: seq,
        stream: "alerts".into(),
        stream_version: seq,
        time_ms: 1_767_225_600_000 + seq,
        causation: cause(seq),
        event: DomainEvent::AlertRaised {
            rule_id: rule.into(),
            severity: Severity::Critical,
            event_id: event.into(),
            source: String::new(),
            payload_hash: Digest::of(event.as_bytes()),
        },
    };
    vec![
        alert(1, "sqli-union-select", "evt-1"),
        alert(2, "xss-script-tag", "evt-2"),
        EventRecord {
            sequence: 3,
            stream: "account/01".into(),
            stream_version: 1,
            time_ms: 1_767_225_600_003,
            causation: cause(3),
            event: mint(1, 500),
        },
    ]
}

const V1_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vectors/ledger-events-v1.hex"
);

#[test]
fn replays_a_frozen_version_1_log_through_the_upcaster() {
    if std::env::var_os("SHIELDX_BLESS").is_some() {
        let mut hash = GENESIS;
        let mut text = String::from(
            "# shieldx ledger log written by event version 1: one entry per line, hex(bytes)\n",
        );
        for r in v1_fixture_records() {
            let bytes = encode_v1(&r);
            hash = entry_hash(&hash, &bytes);
            text.push_str(&format!("{}\n", to_hex(&bytes)));
        }
        text.push_str(&format!("# head hash {hash}\n"));
        std::fs::write(V1_FIXTURE, text).unwrap();
    }
    let text =
        std::fs::read_to_string(V1_FIXTURE).expect("fixture present (SHIELDX_BLESS=1 writes it)");
    let mut store = MemoryStore::new();
    let mut hash = GENESIS;
    for (i, line) in text.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let bytes = from_hex(line);
        assert_eq!(bytes[0], 1, "the fixture is version 1");
        hash = entry_hash(&hash, &bytes);
        store
            .append(&[Entry {
                sequence: i as u64 + 1,
                bytes,
                hash,
            }])
            .unwrap();
    }
    let ledger = Ledger::open(store).expect("a v1 log verifies");
    let mut replayed = Vec::new();
    ledger.replay(|r| replayed.push(r.clone())).unwrap();
    assert_eq!(
        replayed,
        v1_fixture_records(),
        "upcast records: source is empty"
    );
    assert_eq!(ledger.stream_version("alerts"), 2);
    // New appends continue the chain in version 2.
    let mut ledger = ledger;
    let r = ledger
        .append(
            9,
            cause(9),
            vec![("alerts".into(), ExpectedVersion::Exact(2), mint(3, 1))],
        )
        .unwrap();
    assert_eq!(r[0].sequence, 4);
    assert_eq!(
        ledger.store().read(4, 1).unwrap()[0].bytes[0],
        EVENT_VERSION
    );
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn every_event_round_trips_and_garbage_fails_cleanly() {
    let events = vec![
        mint(1, 2),
        DomainEvent::Burned {
            account: account(2),
            amount: 3,
            key: b"k".to_vec(),
        },
        DomainEvent::Transferred {
            from: account(1),
            to: account(2),
            amount: 4,
            key: vec![],
        },
        DomainEvent::AlertRaised {
            rule_id: "r".into(),
            severity: Severity::Low,
            event_id: "e".into(),
            source: "10.0.0.1".into(),
            payload_hash: Digest::of(b"p"),
        },
        DomainEvent::Staked {
            validator: account(3),
            amount: 5,
        },
        DomainEvent::UnbondingStarted {
            validator: account(3),
            amount: 1,
            matures: 100,
        },
        DomainEvent::UnbondingCompleted {
            validator: account(3),
            amount: 1,
            started: 7,
        },
        DomainEvent::UnbondingSlashed {
            validator: account(3),
            amount: 1,
            started: 7,
            evidence: Digest::of(b"evidence"),
        },
        DomainEvent::Slashed {
            validator: account(3),
            amount: 2,
            reason: "equivocation".into(),
            evidence: Digest::of(b"evidence"),
        },
        DomainEvent::RulesUpdated {
            version: 2,
            effective_height: 10,
            rules_digest: Digest::of(b"rules"),
            rules: "rules: []".into(),
        },
        DomainEvent::EventsSubmitted {
            events: vec![Event {
                id: "e".into(),
                ts: 3,
                source: "s".into(),
                sensor: "x".into(),
                kind: "http".into(),
                payload: b"GET /".to_vec(),
                headers: vec![("host".into(), "a".into())],
            }],
        },
        DomainEvent::IdempotencyRecorded {
            key: Digest::of(b"k"),
            fields: Digest::of(b"f"),
        },
        DomainEvent::Heartbeat {
            validator: account(4),
        },
        DomainEvent::Jailed {
            validator: account(4),
            until: 1_000,
        },
    ];
    for (i, event) in events.into_iter().enumerate() {
        let record = EventRecord {
            sequence: i as u64 + 1,
            stream: format!("stream-{i}"),
            stream_version: 1,
            time_ms: 5,
            causation: cause(1),
            event,
        };
        let bytes = record.encode();
        assert_eq!(EventRecord::decode(&bytes).unwrap(), record);
        assert_eq!(EventRecord::stream_of(&bytes), Ok(record.stream.as_str()));
        for cut in 0..bytes.len() {
            assert!(EventRecord::decode(&bytes[..cut]).is_err());
        }
    }
    assert!(EventRecord::decode(&[3, 0, 0]).is_err(), "unknown version");
    assert!(
        EventRecord::stream_of(&[3, 0, 0]).is_err(),
        "unknown version"
    );
    assert!(EventRecord::stream_of(&[2, 0, 0]).is_err(), "cut short");
}
