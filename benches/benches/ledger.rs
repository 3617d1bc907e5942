//! Ledger and application throughput on redb (issue 7, BENCHMARKS.md):
//! durable appends with group commit, checked transfers, replay with hash-chain
//! verification, snapshot writes, reopen time, and recovery after a crash of a
//! process that had written a 1 GiB log, and what the application's state
//! digest (computed after every executed batch) costs as a distributed
//! login flood fills the anomaly windows. Each figure is printed with the raw
//! fsync rate (or raw file write) measured in the same run, because this VM's
//! disk swings widely.

use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use shieldx_core::app::{App, AppConfig, Transaction, TransferLeg};
use shieldx_core::crypto::Digest;
use shieldx_core::ledger::{Base, Entry, EventStore as _, Ledger, entry_hash};
use shieldx_daemon::store::RedbStore;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("shieldx-ledger-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// fsyncs per second of a 4 KiB write + fsync loop in the bench's directory.
fn fsync_rate() -> f64 {
    let path = dir().join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe file");
    let block = [7u8; 4096];
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed().as_secs_f64() < 1.0 {
        f.write_all(&block).expect("write");
        f.sync_data().expect("fsync");
        n += 1;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn entries(from: u64, count: u64, hash: &mut Digest) -> Vec<Entry> {
    (from..from + count)
        .map(|sequence| {
            let bytes = vec![(sequence % 251) as u8; 96];
            *hash = entry_hash(hash, &bytes);
            Entry {
                sequence,
                bytes,
                hash: *hash,
            }
        })
        .collect()
}

fn appends(_: &mut Criterion) {
    for per_commit in [10_000u64, 1_000] {
        let path = dir().join(format!("appends-{per_commit}.redb"));
        let _ = std::fs::remove_file(&path);
        let mut store = RedbStore::open(&path).expect("open");
        let mut hash = Digest::default();
        let total = 200_000u64;
        let fsync = fsync_rate();
        let start = Instant::now();
        let mut next = 1;
        while next <= total {
            let batch = entries(next, per_commit, &mut hash);
            store.append(&batch).expect("append");
            store.sync().expect("durable commit");
            next += per_commit;
        }
        let rate = total as f64 / start.elapsed().as_secs_f64();
        let sqlite = sqlite_appends(per_commit, total);
        println!(
            "ledger appends, {per_commit} per durable commit: {rate:.0} appends/s; \
             SQLite (WAL, synchronous=FULL) {sqlite:.0} appends/s, same run (raw fsync rate {fsync:.0}/s)"
        );
        let _ = std::fs::remove_file(&path);
    }
    sqlite_replay();
}

/// The peer: the same entries (sequence, hash, bytes) into SQLite in WAL
/// mode with `synchronous=FULL`, so that every commit is durable, through
/// one prepared statement, `per_commit` rows per transaction.
fn sqlite_appends(per_commit: u64, total: u64) -> f64 {
    let path = dir().join(format!("appends-{per_commit}.sqlite"));
    remove_sqlite(&path);
    let db = open_sqlite(&path);
    let mut hash = Digest::default();
    let start = Instant::now();
    let mut next = 1;
    while next <= total {
        let batch = entries(next, per_commit, &mut hash);
        insert_sqlite(&db, &batch);
        next += per_commit;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    drop(db);
    remove_sqlite(&path);
    rate
}

fn open_sqlite(path: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(path).expect("sqlite");
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS entries (sequence INTEGER PRIMARY KEY, hash BLOB NOT NULL, bytes BLOB NOT NULL);",
    )
    .expect("schema");
    db
}

fn insert_sqlite(db: &rusqlite::Connection, batch: &[Entry]) {
    let tx = db.unchecked_transaction().expect("begin");
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO entries (sequence, hash, bytes) VALUES (?1, ?2, ?3)")
            .expect("prepare");
        for e in batch {
            insert
                .execute(rusqlite::params![
                    e.sequence as i64,
                    e.hash.as_bytes().as_slice(),
                    e.bytes
                ])
                .expect("insert");
        }
    }
    tx.commit().expect("durable commit");
}

fn remove_sqlite(path: &Path) {
    let _ = std::fs::remove_file(path);
    for suffix in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// The peer of replay: 100,000 entries of a transfer entry's size (230
/// bytes) read back from SQLite in order, each entry's chain hash verified
/// as the ledger does; there is no decoding on this side.
fn sqlite_replay() {
    let path = dir().join("replay.sqlite");
    remove_sqlite(&path);
    let db = open_sqlite(&path);
    let mut hash = Digest::default();
    let mut next = 1;
    while next <= 100_000 {
        let mut batch = entries(next, 10_000, &mut Digest::default());
        // Transfer entries are ~230 bytes, not 96: pad to that size and
        // re-chain.
        for e in &mut batch {
            e.bytes.resize(230, 7);
            hash = entry_hash(&hash, &e.bytes);
            e.hash = hash;
        }
        insert_sqlite(&db, &batch);
        next += 10_000;
    }
    let start = Instant::now();
    let mut statement = db
        .prepare("SELECT sequence, hash, bytes FROM entries ORDER BY sequence")
        .expect("select");
    let mut rows = statement.query([]).expect("query");
    let mut prev = Digest::default();
    let mut n = 0u64;
    while let Some(row) = rows.next().expect("row") {
        let stored = row.get_ref(1).expect("hash").as_blob().expect("blob");
        let bytes = row.get_ref(2).expect("bytes").as_blob().expect("blob");
        let expected = entry_hash(&prev, bytes);
        assert_eq!(stored, expected.as_bytes().as_slice(), "the chain verifies");
        prev = expected;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(rows);
    drop(statement);
    drop(db);
    remove_sqlite(&path);
    println!(
        "SQLite peer of replay: {rate:.0} entries/s read in order with the chain verified (230-byte entries, no decoding)"
    );
}

/// A transfer of 1,000 legs from `payer`, one leg per account of 997.
fn thousand_legs(h: u64) -> Transaction {
    let legs = (0..1_000u64)
        .map(|i| TransferLeg {
            to: {
                let mut a = [0u8; 32];
                a[..8].copy_from_slice(&(i % 997 + 10).to_le_bytes());
                a
            },
            amount: 1 + i % 13,
        })
        .collect();
    Transaction::Transfer {
        time_ms: 2 + h,
        key: h.to_le_bytes().to_vec(),
        legs,
    }
}

const ADMIN: [u8; 32] = [1u8; 32];
const PAYER: [u8; 32] = [2u8; 32];

/// An application on redb at `path` whose payer holds enough to pay forever.
fn funded_app(path: &Path) -> App<RedbStore> {
    let mut app = App::open(
        AppConfig::new(b"bench".to_vec(), ADMIN),
        RedbStore::open(path).expect("open"),
    )
    .expect("app");
    app.execute_transaction(
        1,
        ADMIN,
        1,
        &Transaction::Mint {
            time_ms: 1,
            key: b"mint".to_vec(),
            to: PAYER,
            amount: u64::MAX / 2,
        },
    );
    app
}

fn transfers(_: &mut Criterion) {
    let path = dir().join("transfers.redb");
    let _ = std::fs::remove_file(&path);
    let mut app = funded_app(&path);
    let fsync = fsync_rate();
    let commits = 100u64;
    let start = Instant::now();
    for h in 0..commits {
        let r = app.execute_transaction(h + 2, PAYER, h + 2, &thousand_legs(h));
        black_box(r);
        app.ledger_mut().sync().expect("durable commit");
    }
    let rate = (commits * 1_000) as f64 / start.elapsed().as_secs_f64();
    println!(
        "checked transfers, 1,000 legs per durable commit: {rate:.0} transfers/s (raw fsync rate {fsync:.0}/s)"
    );

    // Replay with hash-chain verification and decoding: the median of
    // REPLAY_RUNS passes over the whole log.
    let events = app.ledger().head().0;
    let runs: usize = std::env::var("REPLAY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut rates: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u64;
            app.ledger().replay(|_| n += 1).expect("replay");
            n as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    let rate = rates[rates.len() / 2];
    println!(
        "replay with hash-chain verification: {rate:.0} events/s over {events} events (median of {} passes)",
        rates.len()
    );

    // Reopen: verify the chain and rebuild the state from the snapshot + log.
    app.checkpoint().expect("checkpoint");
    drop(app);
    let start = Instant::now();
    let reopened = App::open(
        AppConfig::new(b"bench".to_vec(), ADMIN),
        RedbStore::open(&path).expect("reopen"),
    )
    .expect("app");
    println!(
        "reopen after shutdown (snapshot + suffix, chain verified): {:.1} ms for {} events",
        start.elapsed().as_secs_f64() * 1e3,
        reopened.ledger().head().0
    );
    let _ = std::fs::remove_file(&path);
}

fn snapshot(_: &mut Criterion) {
    let path = dir().join("snapshot.redb");
    let _ = std::fs::remove_file(&path);
    let mut store = RedbStore::open(&path).expect("open");
    let bytes = vec![42u8; 16 << 20];
    let fsync = fsync_rate();
    // The peer: the same bytes into a plain file, then fdatasync.
    let raw_path = dir().join("snapshot.raw");
    let start = Instant::now();
    {
        let mut f = std::fs::File::create(&raw_path).expect("raw file");
        f.write_all(&bytes).expect("write");
        f.sync_data().expect("fdatasync");
    }
    let raw = start.elapsed().as_secs_f64() * 1e3;
    let _ = std::fs::remove_file(&raw_path);
    let start = Instant::now();
    store.put_snapshot(Base::GENESIS, &bytes).expect("snapshot");
    store.sync().expect("durable");
    println!(
        "16 MiB snapshot written durably: {:.1} ms (plain file write + fdatasync of the same bytes {raw:.1} ms; raw fsync rate {fsync:.0}/s)",
        start.elapsed().as_secs_f64() * 1e3
    );
    let ledger = Ledger::open(store).expect("opens");
    black_box(ledger.head());
    let _ = std::fs::remove_file(&path);
}

/// `App::state_digest`, which every replica computes after every executed
/// batch, once a credential-stuffing flood from `sources` distinct addresses
/// has filled the default pack's two per-source windows: the digest hashes
/// the whole encoded state, so it grows with the keys the windows hold.
fn state_digest(c: &mut Criterion) {
    use shieldx_core::consensus::Application as _;
    use shieldx_core::detect::Event;
    use shieldx_core::ledger::memory::MemoryStore;

    let mut group = c.benchmark_group("app");
    group.sample_size(10);
    for sources in [10_000u32, 100_000] {
        let mut app = App::open(
            AppConfig::new(b"bench".to_vec(), [9; 32]),
            MemoryStore::new(),
        )
        .expect("opens");
        for (h, first) in (1u64..).zip((0..sources).step_by(1_000)) {
            let events = (first..(first + 1_000).min(sources))
                .map(|n| Event {
                    id: format!("e{n}"),
                    ts: 1_000,
                    source: format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255),
                    sensor: "edge-1".into(),
                    kind: "http".into(),
                    payload: format!("POST /login HTTP/1.1\r\n\r\nuser=u{n}&pass=x").into_bytes(),
                    headers: vec![],
                })
                .collect();
            let tx = Transaction::SubmitEvents {
                time_ms: 1_000 + h,
                events,
            };
            app.execute_transaction(h, [1; 32], h, &tx);
        }
        let encoded = app.encode_state().len();
        // Each source is a key of both windows, with its count or its one
        // distinct value: tens of bytes per source.
        assert!(encoded > 40 * sources as usize, "windows hold the sources");
        println!("state at {sources} flooding sources: {encoded} bytes encoded");
        group.bench_function(format!("state-digest/{sources}-window-sources"), |b| {
            b.iter(|| black_box(app.state_digest()))
        });
    }
    group.finish();
}

/// Set in the child process that writes the 1 GiB log, then crashes.
const CRASH_CHILD: &str = "SHIELDX_LEDGER_BENCH_CRASH_CHILD";
/// The child's snapshot interval, in batches of 1,000 events.
const CRASH_CHILD_INTERVAL: &str = "SHIELDX_LEDGER_BENCH_CRASH_INTERVAL";
/// The log size recovery is measured at.
const RECOVERY_LOG_BYTES: u64 = 1 << 30;

/// The child: checked transfers of 1,000 legs, each batch committed durably
/// as a validator does, a snapshot every `interval` batches, until the file
/// holds 1 GiB and the next snapshot is one batch away: the worst case,
/// `interval` - 1 durable batches after the last snapshot. Then a few batches
/// without a durable commit, and an abort.
fn write_a_large_log_then_crash(path: &Path, interval: u64) -> ! {
    let mut app = funded_app(path);
    let mut h = 0u64;
    while std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) < RECOVERY_LOG_BYTES
        || h % interval != interval - 1
    {
        app.execute_transaction(h + 2, PAYER, h + 2, &thousand_legs(h));
        app.ledger_mut().sync().expect("durable commit");
        h += 1;
        if h.is_multiple_of(interval) {
            app.checkpoint().expect("checkpoint");
        }
    }
    for _ in 0..3 {
        app.execute_transaction(h + 2, PAYER, h + 2, &thousand_legs(h));
        h += 1;
    }
    std::process::abort();
}

fn recovery(_: &mut Criterion) {
    // Snapshots every 100,000 and every 25,000 events.
    for interval in [100u64, 25] {
        recovery_with_snapshots_every(interval);
    }
}

fn recovery_with_snapshots_every(interval: u64) {
    let path = dir().join("recovery.redb");
    let _ = std::fs::remove_file(&path);
    let build = Instant::now();
    let status = std::process::Command::new(std::env::current_exe().expect("this bench"))
        .env(CRASH_CHILD, &path)
        .env(CRASH_CHILD_INTERVAL, interval.to_string())
        .status()
        .expect("child");
    assert!(!status.success(), "the child crashes: {status}");
    let built = build.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).expect("log file").len();
    let start = Instant::now();
    let app = App::open(
        AppConfig::new(b"bench".to_vec(), ADMIN),
        RedbStore::open(&path).expect("reopen after the crash"),
    )
    .expect("recovers");
    let recovered = start.elapsed().as_secs_f64() * 1e3;
    let events = app.ledger().head().0;
    let snapshot_at = app
        .ledger()
        .store()
        .snapshot()
        .expect("snapshot")
        .map_or(0, |(base, _)| base.sequence);
    let start = Instant::now();
    app.verify_log().expect("the whole chain verifies");
    let verified = start.elapsed().as_secs_f64();
    println!(
        "recovery after a crash, snapshots every {} events: {recovered:.1} ms for a {:.2} GiB log \
         of {events} events, {} of them after the last snapshot \
         (written in {built:.0} s; verifying the whole chain takes {verified:.2} s)",
        interval * 1_000,
        size as f64 / f64::from(1u32 << 30),
        events - snapshot_at
    );
    drop(app);
    let _ = std::fs::remove_file(&path);
}

criterion_group!(
    benches,
    appends,
    transfers,
    snapshot,
    state_digest,
    recovery
);

fn main() {
    if let Some(path) = std::env::var_os(CRASH_CHILD) {
        let interval = std::env::var(CRASH_CHILD_INTERVAL)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        write_a_large_log_then_crash(Path::new(&path), interval);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
