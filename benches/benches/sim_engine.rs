//! The simulator's loop overhead with a trivial protocol (BENCHMARKS.md): a
//! ping-pong between nodes where each delivered event schedules the next one,
//! through the real `EventQueue`, `SimRng` latency draws and, in the second
//! case, the blake3 `AuditDigest` that every real run keeps.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shieldx_sim::audit::AuditDigest;
use shieldx_sim::queue::EventQueue;
use shieldx_sim::rng::SimRng;

const EVENTS: u64 = 1_000_000;
const NODES: u64 = 16;

fn run(audit: bool) -> u64 {
    let mut queue: EventQueue<(u64, u64)> = EventQueue::new(1024);
    let mut rng = SimRng::stream(1, "network");
    let mut digest = AuditDigest::default();
    for node in 0..NODES {
        queue.schedule(node, (node, 0)).expect("room");
    }
    let mut processed = 0;
    while let Some((now, _, (node, hops))) = queue.pop() {
        processed += 1;
        if audit {
            digest.record("deliver", now, &node.to_le_bytes());
        }
        if processed >= EVENTS {
            break;
        }
        let next = (node + 1 + rng.below(NODES - 1)) % NODES;
        queue
            .schedule(now + 1 + rng.below(1_000), (next, hops + 1))
            .expect("room");
    }
    processed + digest.records() + u64::from(digest.digest().as_bytes()[0])
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_engine");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("events_trivial_protocol", |b| {
        b.iter(|| black_box(run(false)))
    });
    group.bench_function("events_trivial_protocol_with_audit_digest", |b| {
        b.iter(|| black_box(run(true)))
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
