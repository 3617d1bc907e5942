//! Staking benches (BENCHMARKS.md, issue 5), each beside a reference cost
//! measured in the same run:
//! - leader selection per view (follow-the-satoshi over the stake table) at
//!   4, 100 and 1,000 validators, against one ed25519 verification — the
//!   cheapest thing a replica does per consensus message;
//! - the beacon step a replica runs per checkpoint (one ECVRF verification);
//! - offline evidence verification: conflicting prepares (two ed25519
//!   verifications) and conflicting commit votes (two BLS verifications).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use shieldx_core::consensus::{
    CommitVote, Evidence, LeaderSchedule, ScheduleAnchor, Signed, Validator, ValidatorSet, Vote,
};
use shieldx_core::crypto::Digest;
use shieldx_core::crypto::bls::BlsSecretKey;
use shieldx_core::crypto::ed25519::SigningKey;
use shieldx_core::crypto::vrf::VrfSecretKey;
use shieldx_core::staking::{VrfSchedule, beacon_step, genesis_seed, select_leader, vrf_alpha};
use std::hint::black_box;

const CHAIN: &[u8] = b"shieldx-bench";

fn seed_bytes(i: u16, salt: u8) -> [u8; 32] {
    let mut seed = [salt; 32];
    seed[..2].copy_from_slice(&i.to_le_bytes());
    seed
}

fn validator_set(n: u16) -> ValidatorSet {
    ValidatorSet::new(
        (0..n)
            .map(|i| Validator {
                identity: SigningKey::from_slice(&seed_bytes(i, 1))
                    .expect("seed")
                    .verifying_key(),
                vote_key: BlsSecretKey::key_gen(&seed_bytes(i, 2), b"")
                    .expect("ikm")
                    .public_key(),
                vrf_key: VrfSecretKey::from_slice(&seed_bytes(i, 3))
                    .expect("seed")
                    .public_key(),
                power: 1,
            })
            .collect(),
    )
    .expect("valid set")
}

fn selection(c: &mut Criterion) {
    let mut group = c.benchmark_group("staking/select-leader");
    for n in [4u16, 100, 1_000] {
        // Uneven stakes, a tenth of them jailed (weight 0).
        let weights: Vec<u64> = (0..u64::from(n))
            .map(|i| {
                if i % 10 == 9 {
                    0
                } else {
                    1_000 + (i * 7_919) % 100_000
                }
            })
            .collect();
        let validators = validator_set(n);
        let anchor = ScheduleAnchor {
            sequence: 100,
            seed: genesis_seed(CHAIN),
            weights: weights.clone(),
        };
        let mut view = 0u64;
        group.bench_with_input(BenchmarkId::new("fts", n), &n, |b, _| {
            b.iter(|| {
                view += 1;
                black_box(select_leader(&anchor.seed, black_box(view), &weights))
            })
        });
        group.bench_with_input(BenchmarkId::new("vrf-schedule", n), &n, |b, _| {
            b.iter(|| {
                view += 1;
                black_box(VrfSchedule.primary(black_box(view), &anchor, &validators))
            })
        });
    }
    // The reference: one ed25519 verification.
    let key = SigningKey::from_slice(&[9; 32]).expect("seed");
    let public = key.verifying_key();
    let message = b"a consensus message of typical size, signed by a validator";
    let signature = key.sign(message);
    group.bench_function("reference/ed25519-verify", |b| {
        b.iter(|| black_box(public.verify(black_box(message), &signature)).is_ok())
    });
    group.finish();
}

fn beacon(c: &mut Criterion) {
    let proposer = VrfSecretKey::from_slice(&[5; 32]).expect("seed");
    let key = proposer.public_key();
    let seed = genesis_seed(CHAIN);
    let (proof, _) = proposer.prove(&vrf_alpha(CHAIN, &seed, 7)).expect("prove");
    c.bench_function("staking/beacon-step (ECVRF verify + mix)", |b| {
        b.iter(|| black_box(beacon_step(CHAIN, &seed, 7, Some(&key), Some(&proof))))
    });
}

fn evidence(c: &mut Criterion) {
    let validators = validator_set(100);
    let identity = SigningKey::from_slice(&seed_bytes(42, 1)).expect("seed");
    let vote_key = BlsSecretKey::key_gen(&seed_bytes(42, 2), b"").expect("ikm");
    let vote = |digest: &[u8]| {
        Signed::sign(
            CHAIN,
            42,
            &identity,
            Vote {
                view: 3,
                sequence: 17,
                digest: Digest::of(digest),
            },
        )
    };
    let prepares = Evidence::ConflictingPrepare(vote(b"a"), vote(b"b"));
    prepares.verify(CHAIN, &validators).expect("valid");
    let commit = |digest: &[u8]| CommitVote::sign(CHAIN, 42, &vote_key, 3, 17, Digest::of(digest));
    let commits = Evidence::ConflictingCommit(Box::new(commit(b"a")), Box::new(commit(b"b")));
    commits.verify(CHAIN, &validators).expect("valid");
    let mut group = c.benchmark_group("staking/evidence-verify");
    group.bench_function("conflicting-prepares", |b| {
        b.iter(|| black_box(prepares.verify(CHAIN, &validators)).is_ok())
    });
    group.bench_function("conflicting-commits", |b| {
        b.iter(|| black_box(commits.verify(CHAIN, &validators)).is_ok())
    });
    group.finish();
}

criterion_group!(benches, selection, beacon, evidence);
criterion_main!(benches);
