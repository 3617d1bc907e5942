//! The planted-bug catalogue (test-only `planted-bugs` feature; run by .ci/run
//! with `--features planted-bugs,fast-signatures`): each planted bug is caught by the swarm
//! seed that first caught it when the catalogue was measured (BENCHMARKS.md,
//! "Bug-finding power"), with the invariant that caught it, and the same
//! derived run passes without the bug. A protocol or checker change that
//! blinds the simulator to one of them fails here.
#![cfg(feature = "planted-bugs")]

use std::path::Path;

use shieldx_core::consensus::PlantedBug;
use shieldx_sim::{Scenario, Simulation, swarm};

/// The swarm bases the catalogue was measured over.
const NORMAL_N4: &str = "scenarios/normal-n4.toml";
const VIEW_CHURN_N7: &str = "sim/swarm/view-churn-n7.toml";

/// (bug, base, first swarm seed that catches it over that base, the
/// invariant). Each bug is pinned over the first base, in this order, that
/// caught it within 1,000 seeds: normal-n4, then view-churn-n7.
const CATALOGUE: &[(&str, &str, u64, &str)] = &[
    (
        "quorum-off-by-one",
        NORMAL_N4,
        1,
        "certificate holds > 2/3 of the power",
    ),
    (
        "no-persist-before-vote",
        NORMAL_N4,
        1,
        "an honest node never signs two digests for one slot",
    ),
    (
        "no-progress-timer",
        NORMAL_N4,
        29,
        "liveness: every request commits after faults stop",
    ),
    (
        "suppressed-evidence",
        NORMAL_N4,
        4,
        "every injected equivocation yields evidence",
    ),
    (
        "unverified-commit-certificate",
        NORMAL_N4,
        45,
        "certificate verifies",
    ),
    (
        "exactly-once-skipped",
        NORMAL_N4,
        28,
        "exactly-once execution",
    ),
    ("lowest-view-in-new-view", VIEW_CHURN_N7, 380, "agreement"),
    (
        "view-change-drops-prepared",
        NORMAL_N4,
        20,
        "liveness: every request commits after faults stop",
    ),
];

fn base(relative: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    let text = std::fs::read_to_string(path).expect("readable base scenario");
    Scenario::from_toml(&text).expect("valid base scenario")
}

#[test]
fn every_planted_bug_is_in_the_catalogue() {
    let names: Vec<&str> = CATALOGUE.iter().map(|(name, ..)| *name).collect();
    for bug in PlantedBug::ALL {
        assert!(
            names.contains(&bug.name()),
            "{} has no measured catching seed",
            bug.name()
        );
        assert_eq!(PlantedBug::from_name(bug.name()), Some(bug));
    }
    assert_eq!(PlantedBug::from_name("no-such-bug"), None);
}

#[test]
fn each_planted_bug_is_caught_by_its_seed_and_only_with_the_bug() {
    for &(name, base_path, seed, invariant) in CATALOGUE {
        let base = base(base_path);
        let mut planted = base.clone();
        planted.consensus.planted_bug = Some(name.to_owned());
        let report = Simulation::new(swarm::derive(&planted, seed), seed).run();
        assert!(
            report.violations.iter().any(|v| v.invariant == invariant),
            "{name} over {base_path} seed {seed}: expected {invariant:?}, got {:?}",
            report.violations
        );
        let control = Simulation::new(swarm::derive(&base, seed), seed).run();
        assert!(
            control.passed(),
            "{name} over {base_path} seed {seed} fails without the bug: {:?}",
            control.violations
        );
    }
}

/// Swarm seed 379 over view-churn-n7 with lowest-view-in-new-view planted
/// (the bug only moves the run's timing here) once lost an equivocation's
/// evidence: the conflicting half of node 1's pre-prepare reached three
/// replicas before its NEW-VIEW and was dropped without being watched. No
/// unplanted seed has hit that timing yet, so a planted run is the regression
/// scenario; the mechanism is pinned by the replica test
/// `an_equivocation_that_arrives_before_the_new_view_is_evidence`. Session 11
/// changed the trajectories (seed 379 no longer equivocates in time); seed
/// 506 is the run that loses the evidence when replicas stop watching
/// pre-prepares that arrive before their NEW-VIEW (found by running the swarm
/// with that watch switched off: 700 seeds, 506 the one such loss).
#[test]
fn an_equivocation_reordered_before_its_new_view_yields_evidence() {
    let mut planted = base(VIEW_CHURN_N7);
    planted.consensus.planted_bug = Some("lowest-view-in-new-view".to_owned());
    let seed = 506;
    let report = Simulation::new(swarm::derive(&planted, seed), seed).run();
    assert!(
        report.evidence > 0,
        "the equivocating primary's evidence is found"
    );
    let lost: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.invariant.contains("equivocation"))
        .collect();
    assert!(lost.is_empty(), "{lost:?}");
}
