//! PBFT throughput in an in-process cluster on one core (BENCHMARKS.md):
//! every consensus message really signed and verified (ed25519 envelopes, BLS
//! commit votes checked by FastAggregateVerify), batches of 1,000 requests.
//! - `ordering`: requests ordered per second, client signatures not checked;
//! - `end_to_end`: every replica batch-verifies every client signature;
//! - `scaling`: the ordering cost at n = 4, 16 and 64.
//!
//! Messages pass as values (no encoding), in FIFO order, with no simulated delay.

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shieldx_core::consensus::{
    Application, Message, Output, Replica, ReplicaConfig, ReplicaKeys, Request, RestoreError,
    RoundRobin, Target, Validator, ValidatorSet,
};
use shieldx_core::crypto::Digest;
use shieldx_core::crypto::bls::BlsSecretKey;
use shieldx_core::crypto::ed25519::SigningKey;

const CHAIN: &[u8] = b"shieldx-bench";

#[derive(Debug, Default)]
struct Counter {
    state: Digest,
    executed: u64,
}

impl Application for Counter {
    fn execute(&mut self, _sequence: u64, request: &Request) -> Vec<u8> {
        self.executed += 1;
        self.state = Digest::of_parts("bench", &[self.state.as_bytes(), &request.payload]);
        Vec::new()
    }
    fn state_digest(&self) -> Digest {
        self.state
    }
    fn snapshot(&self) -> Vec<u8> {
        self.state.to_bytes().to_vec()
    }
    fn restore(&mut self, _: &[u8], expected: Digest) -> Result<(), RestoreError> {
        Err(RestoreError::DigestMismatch {
            expected,
            actual: self.state,
        })
    }
}

fn cluster(n: u16, verify_clients: bool) -> Vec<Replica<Counter>> {
    // Distinct 32-byte seeds per validator and key kind.
    let seed = |i: u16, fill: u8| {
        let mut seed = [fill; 32];
        seed[0] = (i % 250) as u8 + 1;
        seed[1] = (i / 250) as u8;
        seed
    };
    let identity = |i: u16| SigningKey::from_slice(&seed(i, 7)).expect("seed");
    let vote = |i: u16| BlsSecretKey::key_gen(&seed(i, 9), b"").expect("ikm");
    let vrf = |i: u16| {
        shieldx_core::crypto::vrf::VrfSecretKey::from_slice(&[(i % 251) as u8 + 1; 32])
            .expect("seed")
    };
    let validators = ValidatorSet::new(
        (0..n)
            .map(|i| Validator {
                identity: identity(i).verifying_key(),
                vote_key: vote(i).public_key(),
                vrf_key: vrf(i).public_key(),
                power: 1,
            })
            .collect(),
    )
    .expect("valid set");
    (0..n)
        .map(|i| {
            let mut config = ReplicaConfig::new(CHAIN, validators.clone());
            config.batch_requests_max = 1_000;
            config.checkpoint_interval = 50;
            config.window = 100;
            config.verify_client_signatures = verify_clients;
            Replica::new(
                config,
                ReplicaKeys {
                    index: i,
                    identity: identity(i),
                    vote_key: vote(i),
                    vrf_key: vrf(i),
                },
                Box::new(RoundRobin),
                Counter::default(),
                0,
            )
            .expect("valid replica")
        })
        .collect()
}

fn requests(count: usize) -> Vec<Request> {
    let clients: Vec<SigningKey> = (0..16u8)
        .map(|i| SigningKey::from_slice(&[100 + i; 32]).expect("seed"))
        .collect();
    (0..count)
        .map(|i| {
            Request::sign(
                CHAIN,
                &clients[i % 16],
                (i / 16) as u64 + 1,
                vec![(i % 251) as u8; 64],
            )
        })
        .collect()
}

/// Submits every request to every replica (as clients do) and pumps messages
/// until all replicas executed everything. Returns the executed count at replica 0.
fn order(replicas: &mut [Replica<Counter>], requests: &[Request]) -> u64 {
    let n = replicas.len() as u16;
    let mut in_flight: VecDeque<(u16, u16, Message)> = VecDeque::new();
    let pump = |replicas: &mut [Replica<Counter>],
                index: u16,
                in_flight: &mut VecDeque<(u16, u16, Message)>| {
        while let Some(output) = replicas[usize::from(index)].poll_output() {
            if let Output::Send { to, message } = output {
                match to {
                    Target::All => {
                        for target in (0..n).filter(|t| *t != index) {
                            in_flight.push_back((index, target, message.clone()));
                        }
                    }
                    Target::Replica(target) => in_flight.push_back((index, target, message)),
                }
            }
        }
    };
    // Clients' requests reach each replica in groups of 250, as a driver reads
    // them off the network.
    for group in requests.chunks(250) {
        for index in 0..n {
            let _ = replicas[usize::from(index)].handle_requests(0, group.to_vec());
            pump(replicas, index, &mut in_flight);
        }
        while let Some((from, to, message)) = in_flight.pop_front() {
            let _ = replicas[usize::from(to)].handle_message(0, from, message);
            pump(replicas, to, &mut in_flight);
        }
    }
    // Flush the last partial batch.
    for index in 0..n {
        replicas[usize::from(index)].handle_timeout(u64::MAX / 2);
        pump(replicas, index, &mut in_flight);
    }
    while let Some((from, to, message)) = in_flight.pop_front() {
        let _ = replicas[usize::from(to)].handle_message(u64::MAX / 2, from, message);
        pump(replicas, to, &mut in_flight);
    }
    replicas[0].app().executed
}

fn ordering(c: &mut Criterion) {
    let batch = requests(10_000);
    let mut group = c.benchmark_group("pbft_n4_batch1000");
    group.sample_size(10);
    group.throughput(Throughput::Elements(batch.len() as u64));
    for (name, verify) in [("ordering", false), ("end_to_end", true)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || cluster(4, verify),
                |mut replicas| {
                    let executed = order(&mut replicas, black_box(&batch));
                    assert_eq!(executed, batch.len() as u64);
                    replicas
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let batch = requests(2_000);
    let mut group = c.benchmark_group("pbft_scaling_batch1000");
    group.sample_size(10);
    group.throughput(Throughput::Elements(batch.len() as u64));
    for n in [4u16, 16, 64] {
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || cluster(n, false),
                |mut replicas| {
                    assert_eq!(order(&mut replicas, black_box(&batch)), batch.len() as u64);
                    replicas
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(100))
        .measurement_time(std::time::Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = ordering, scaling
}
criterion_main!(benches);
