//! Runs every scenario in `scenarios/` over a fixed set of seeds, and proves
//! determinism: one seed twice gives the same trace digest.

use std::path::{Path, PathBuf};

use shieldx_sim::{Scenario, Simulation};

/// The seeds every scenario runs under in `cargo test`, besides the
/// scenario's own `[run] seeds`.
const SEEDS: &[u64] = &[1, 2, 3];

fn scenario_files() -> Vec<PathBuf> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Scenario {
    let text = std::fs::read_to_string(path).expect("readable scenario");
    Scenario::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The (scenario, seed) runs are dealt round-robin into this many tests, so
/// the test harness spreads them over every core.
const SHARDS: usize = 4;

/// Runs shard `shard` of every (scenario, seed) pair and fails with every
/// violation found, each with the command that replays it.
fn run_shard(shard: usize) {
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenarios found");
    let runs: Vec<(&PathBuf, u64)> = files
        .iter()
        .flat_map(|path| {
            let pinned = load(path).run.seeds;
            SEEDS
                .iter()
                .copied()
                .chain(pinned.into_iter().filter(|seed| !SEEDS.contains(seed)))
                .map(move |seed| (path, seed))
        })
        .collect();
    let mut failures = Vec::new();
    let mut ran = 0;
    for &(path, seed) in runs.iter().skip(shard).step_by(SHARDS) {
        let scenario = load(path);
        let report = Simulation::new(scenario.clone(), seed).run();
        ran += 1;
        if !report.passed() {
            failures.push(format!(
                "{} seed {seed}: {:?}\n  replay: cargo run --release -- sim run --scenario {} --seed {seed}",
                scenario.name,
                report.violations,
                path.display()
            ));
        }
        assert!(
            report.committed_height > 0 || scenario.workload.requests_per_client == 0,
            "{}: nothing committed",
            scenario.name
        );
    }
    assert!(ran > 0, "shard {shard} ran nothing");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_scenario_holds_its_invariants_on_every_seed_shard_0() {
    run_shard(0);
}

#[test]
fn every_scenario_holds_its_invariants_on_every_seed_shard_1() {
    run_shard(1);
}

#[test]
fn every_scenario_holds_its_invariants_on_every_seed_shard_2() {
    run_shard(2);
}

#[test]
fn every_scenario_holds_its_invariants_on_every_seed_shard_3() {
    run_shard(3);
}

#[test]
fn the_same_seed_gives_the_same_trace_digest() {
    let scenario =
        load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/heavy-loss-n4.toml"));
    let first = Simulation::new(scenario.clone(), 7)
        .keep_event_digests()
        .run();
    let second = Simulation::new(scenario.clone(), 7)
        .keep_event_digests()
        .run();
    if first.trace_digest != second.trace_digest {
        let diverged = first
            .event_digests
            .iter()
            .zip(&second.event_digests)
            .position(|(a, b)| a != b)
            .unwrap_or(first.event_digests.len().min(second.event_digests.len()));
        panic!("runs of seed 7 diverge at event {diverged}");
    }
    assert_eq!(first.stats, second.stats);
    let other = Simulation::new(scenario, 8).run();
    assert_ne!(
        first.trace_digest, other.trace_digest,
        "another seed gives another run"
    );
}

#[test]
fn invalid_scenarios_are_rejected_with_a_reason() {
    let error = Scenario::from_toml(
        "name = \"x\"\nvalidators = 4\n[run]\nduration_ms = 10\nfaults_stop_ms = 20\n",
    )
    .expect_err("faults_stop after duration");
    assert!(error.to_string().contains("faults_stop_ms"), "{error}");
    let error = Scenario::from_toml(
        "name = \"x\"\nvalidators = 4\nbogus = 1\n[run]\nduration_ms = 10\nfaults_stop_ms = 0\n",
    )
    .expect_err("unknown field");
    assert!(error.to_string().contains("bogus"), "{error}");
    let error = Scenario::from_toml("name = \"x\"\nvalidators = 4\n[[faults]]\nat_ms = 1\naction = { kind = \"crash\", node = 9 }\n[run]\nduration_ms = 10\nfaults_stop_ms = 5\n")
        .expect_err("node out of range");
    assert!(error.to_string().contains("node 9"), "{error}");
    let error = Scenario::from_toml(
        "name = \"x\"\nvalidators = 4\n[detector]\nmax_keys_per_rule = 0\n[run]\nduration_ms = 10\nfaults_stop_ms = 5\n",
    )
    .expect_err("a window that holds no key");
    assert!(error.to_string().contains("max_keys_per_rule"), "{error}");
}

#[test]
fn the_ledger_survives_crashes_identically_on_every_replica() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/ledger-crash-restart-n4.toml");
    for seed in 1..=3 {
        let report = Simulation::new(load(&path), seed).run();
        assert!(report.passed(), "seed {seed}: {:?}", report.violations);
        let top = report
            .nodes
            .iter()
            .map(|n| n.last_executed)
            .max()
            .expect("nodes");
        let caught_up: Vec<_> = report
            .nodes
            .iter()
            .filter(|n| n.last_executed == top)
            .collect();
        assert_eq!(
            caught_up.len(),
            report.nodes.len(),
            "seed {seed}: every replica caught up"
        );
        for n in &caught_up {
            assert_eq!(
                n.app_digest, caught_up[0].app_digest,
                "seed {seed}: same state"
            );
            assert_eq!(
                n.ledger_head, caught_up[0].ledger_head,
                "seed {seed}: same log length"
            );
            assert_eq!(
                n.supply, 7_000,
                "seed {seed}: genesis stakes (4 validators x 1,000) and three mints of 1,000; nothing else changes supply"
            );
            assert!(
                n.alerts > 0,
                "seed {seed}: the generated attacks raised alerts"
            );
        }
    }
}

#[test]
fn equivocators_are_slashed_and_tombstoned_through_the_log() {
    for name in ["double-voter-n4.toml", "equivocating-primary-n4.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(name);
        for seed in 1..=2 {
            let scenario = load(&path);
            let mints = 1_000 * u64::from(scenario.workload.clients);
            let report = Simulation::new(scenario, seed).run();
            assert!(
                report.passed(),
                "{name} seed {seed}: {:?}",
                report.violations
            );
            let byzantine = report
                .nodes
                .iter()
                .position(|n| n.state.contains('('))
                .expect("one Byzantine node") as u16;
            for (index, node) in report.nodes.iter().enumerate() {
                if index == usize::from(byzantine) {
                    continue;
                }
                assert_eq!(
                    node.tombstoned,
                    vec![byzantine],
                    "{name} seed {seed}: node {index} recorded the slash"
                );
                // Genesis stake 1,000 per validator, a mint of 1,000 per
                // client, and half the equivocator's stake slashed.
                assert_eq!(node.supply, 4_000 + mints - 500, "{name} seed {seed}");
            }
        }
    }
}

#[test]
fn a_wrong_new_view_is_slashed_as_an_invalid_proposal() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/wrong-new-view-n7.toml");
    let report = Simulation::new(load(&path), 1).run();
    assert!(report.passed(), "{:?}", report.violations);
    assert!(
        report.evidence >= 1,
        "the wrong NEW-VIEW yielded no evidence"
    );
    let byzantine = report
        .nodes
        .iter()
        .position(|n| n.state.contains('('))
        .expect("one Byzantine node");
    for (index, node) in report.nodes.iter().enumerate() {
        if index == byzantine || node.last_executed == 0 {
            continue;
        }
        // 5% of the 1,000 genesis stake, once, and no tombstone: an invalid
        // proposal is not equivocation.
        assert_eq!(node.stakes[byzantine], 950, "node {index}");
        assert!(node.tombstoned.is_empty(), "node {index}");
    }
}

#[test]
fn a_validator_that_goes_down_is_jailed_and_released_automatically() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/validator-down-jailed-released-n7.toml");
    let report = Simulation::new(load(&path), 1).run();
    assert!(report.passed(), "{:?}", report.violations);
    for (index, node) in report.nodes.iter().enumerate() {
        let jail = node
            .jails
            .iter()
            .find(|(validator, _, _)| *validator == 1)
            .unwrap_or_else(|| panic!("node {index} recorded no jail for validator 1"));
        assert!(
            jail.2 <= node.last_executed,
            "node {index}: released by the end"
        );
        // One liveness fault: 1% of 1,000 genesis stake.
        assert_eq!(node.stakes[1], 990, "node {index}");
        assert!(
            node.leader_weights[1] > 0,
            "node {index}: validator 1 is back in the leader schedule"
        );
    }
}

#[test]
fn a_progress_sink_observes_without_changing_the_run() {
    let scenario =
        load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/heavy-loss-n4.toml"));
    let plain = Simulation::new(scenario.clone(), 3).run();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink_seen = seen.clone();
    let watched = Simulation::new(scenario, 3)
        .with_progress(Box::new(move |progress| {
            sink_seen.borrow_mut().push(progress)
        }))
        .run();
    assert_eq!(plain.trace_digest, watched.trace_digest);
    let seen = seen.borrow();
    assert!(!seen.is_empty(), "a run of this length reports progress");
    assert!(
        seen.windows(2)
            .all(|w| w[0].simulated_ns <= w[1].simulated_ns
                && w[0].events < w[1].events
                && w[0].committed_height <= w[1].committed_height),
        "progress only moves forward"
    );
    let last = seen.last().expect("non-empty");
    assert!(last.simulated_ns <= last.end_ns);
    assert!(last.committed_height <= watched.committed_height);
}
