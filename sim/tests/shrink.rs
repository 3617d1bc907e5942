//! Shrinking, tested on a deliberately planted bug (the test-only
//! `planted-bugs` feature; run by .ci/run with `--features planted-bugs`).
#![cfg(feature = "planted-bugs")]

use shieldx_sim::Scenario;
use shieldx_sim::shrink::{first_violation, shrink};

const PLANTED: &str = r#"
name = "planted-quorum-off-by-one"
description = "An equivocating primary against replicas whose prepared quorum is one short, buried in unrelated faults."
validators = 4
byzantine = [{ node = "genesis-primary", role = "equivocating-primary" }]
clocks = [{ node = 2, skew_ms = 30, drift_ppm = 1000 }]

[consensus]
planted_bug = "quorum-off-by-one"

[workload]
clients = 2
requests_per_client = 8
interval_ms = 20

[random_faults]
loss_per_mille = 50
reorder_per_mille = 100

[[faults]]
at_ms = 100
action = { kind = "isolate", node = 3 }

[[faults]]
at_ms = 180
action = { kind = "heal" }

[[faults]]
at_ms = 300
action = { kind = "partition", groups = [[1, 2]] }

[[faults]]
at_ms = 360
action = { kind = "heal" }

[run]
duration_ms = 4000
faults_stop_ms = 400
"#;

#[test]
fn shrinking_keeps_the_failure_and_drops_the_noise() {
    let scenario = Scenario::from_toml(PLANTED).expect("valid scenario");
    let seed = 4;
    let invariant = first_violation(&scenario, seed).expect("the planted bug breaks the run");
    // With a quorum one short, the first commit already carries too little power.
    assert_eq!(invariant, "certificate holds > 2/3 of the power");
    let report = shieldx_sim::Simulation::new(scenario.clone(), seed).run();
    assert!(
        report.violations.iter().any(|v| v.invariant == "agreement"),
        "the planted bug lets two honest replicas commit different batches: {:?}",
        report.violations
    );
    let mut fixed = scenario.clone();
    fixed.consensus.planted_bug = None;
    assert_eq!(
        first_violation(&fixed, seed),
        None,
        "without the planted bug the same run is safe"
    );

    let shrunk = shrink(&scenario, seed).expect("the scenario fails");
    assert_eq!(shrunk.invariant, invariant);
    let smaller = &shrunk.scenario;
    assert!(
        smaller.faults.len() < scenario.faults.len(),
        "timed faults were dropped: {:?}",
        smaller.faults
    );
    assert!(smaller.clocks.is_empty(), "the clock model is irrelevant");
    assert!(smaller.run.duration_ms <= scenario.run.duration_ms);
    // The equivocator is needed to split agreement, not to break certificate
    // power: the minimal cause is the bug alone, so the shrinker drops it.
    assert!(smaller.byzantine.is_empty(), "{:?}", smaller.byzantine);
    assert_eq!(
        smaller.random_faults,
        shieldx_sim::scenario::RandomFaults::default()
    );
    // The written scenario parses back and still fails the same way.
    let reparsed = Scenario::from_toml(&smaller.to_toml()).expect("shrunk scenario is valid TOML");
    assert_eq!(first_violation(&reparsed, seed), Some(invariant));
}
