//! Ledger and application throughput on redb (issue 7, BENCHMARKS.md):
//! durable appends with group commit, checked transfers, replay with hash-chain
//! verification, snapshot writes, and reopen time. Each figure is printed with
//! the raw fsync rate measured in the same run, because this VM's fsync rate
//! swings widely.

use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
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
        println!(
            "ledger appends, {per_commit} per durable commit: {rate:.0} appends/s (raw fsync rate {fsync:.0}/s)"
        );
        let _ = std::fs::remove_file(&path);
    }
}

fn transfers(_: &mut Criterion) {
    let path = dir().join("transfers.redb");
    let _ = std::fs::remove_file(&path);
    let admin = [1u8; 32];
    let mut app = App::open(
        AppConfig::new(b"bench".to_vec(), admin),
        RedbStore::open(&path).expect("open"),
    )
    .expect("app");
    let payer = [2u8; 32];
    app.execute_transaction(
        1,
        admin,
        1,
        &Transaction::Mint {
            time_ms: 1,
            key: b"mint".to_vec(),
            to: payer,
            amount: u64::MAX / 2,
        },
    );
    let fsync = fsync_rate();
    let commits = 100u64;
    let start = Instant::now();
    for h in 0..commits {
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
        let r = app.execute_transaction(
            h + 2,
            payer,
            h + 2,
            &Transaction::Transfer {
                time_ms: 2 + h,
                key: h.to_le_bytes().to_vec(),
                legs,
            },
        );
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
        AppConfig::new(b"bench".to_vec(), admin),
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
    let start = Instant::now();
    store.put_snapshot(Base::GENESIS, &bytes).expect("snapshot");
    store.sync().expect("durable");
    println!(
        "16 MiB snapshot written durably: {:.1} ms (raw fsync rate {fsync:.0}/s)",
        start.elapsed().as_secs_f64() * 1e3
    );
    let ledger = Ledger::open(store).expect("opens");
    black_box(ledger.head());
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, appends, transfers, snapshot);
criterion_main!(benches);
