//! Swarm testing: each seed draws its own fault rates, latency model, Byzantine
//! roles and timed faults (from the seed's "swarm" stream), so many seeds explore
//! many differently-shaped runs instead of one shape many times.

use crate::rng::SimRng;
use crate::scenario::{
    ByzantineAssignment, ByzantineRole, FaultAction, Latency, NodeRef, RandomFaults, Scenario,
    TimedFault,
};

const ROLES: [ByzantineRole; 9] = [
    ByzantineRole::EquivocatingPrimary,
    ByzantineRole::DoubleVoter,
    ByzantineRole::Silent,
    ByzantineRole::Delayer,
    ByzantineRole::Forger,
    ByzantineRole::Replayer,
    ByzantineRole::Impersonator,
    ByzantineRole::WrongNewView,
    ByzantineRole::Twin,
];

/// The scenario that seed `seed` runs: `base` with randomised faults. The same
/// base and seed always derive the same scenario.
pub fn derive(base: &Scenario, seed: u64) -> Scenario {
    let mut rng = SimRng::stream(seed, "swarm");
    let mut scenario = base.clone();
    let n = scenario.validators;
    let f = (n - 1) / 3;
    let faults_stop_ms = 500 + rng.below(1_500);
    scenario.name = format!("{}-swarm-{seed}", base.name);
    scenario.run.faults_stop_ms = faults_stop_ms;
    // Recovery from the faults gets at least 12 s. The run then lasts one
    // more bound, so that a request submitted or an equivocation injected up
    // to the end of the recovery window (a Byzantine primary that first
    // leads late) still gets the whole bound before the checker asks for it
    // (`checker::LivenessWindow`).
    let recovery_end_ms = scenario.run.duration_ms.max(faults_stop_ms + 12_000);
    scenario.expect.liveness_bound_ms = recovery_end_ms - faults_stop_ms;
    scenario.run.duration_ms = recovery_end_ms + scenario.expect.liveness_bound_ms;
    scenario.expect.view_changes_min = 0;
    scenario.expect.evidence_min = 0;
    // The seed's own faults decide how many view changes are fair.
    scenario.expect.view_changes_max = None;
    scenario.expect.rejections_min.clear();
    scenario.expect.corruptions_detected_min = 0;
    scenario.expect.window_evictions_min = 0;
    // Each fault kind is switched on by its own coin, as swarm testing does.
    scenario.random_faults = RandomFaults {
        loss_per_mille: if rng.chance(1, 2) { rng.below(301) } else { 0 },
        duplicate_per_mille: if rng.chance(1, 3) { rng.below(101) } else { 0 },
        reorder_per_mille: if rng.chance(1, 3) { rng.below(201) } else { 0 },
        ledger_write_failure_per_mille: 0,
    };
    scenario.network.latency = match rng.below(3) {
        0 => Latency::Uniform {
            min_ms: 1,
            max_ms: 1 + rng.below(20),
        },
        1 => Latency::Normal {
            mean_ms: 2 + rng.below(10),
            stddev_ms: rng.below(5),
        },
        _ => Latency::Bimodal {
            fast_ms: 1,
            slow_ms: 20 + rng.below(200),
            slow_per_mille: rng.below(100),
        },
    };
    scenario.byzantine.clear();
    let byzantine_count = rng.below(u64::from(f) + 1) as u16;
    let mut taken = Vec::new();
    while (taken.len() as u16) < byzantine_count {
        let node = rng.below(u64::from(n)) as u16;
        if !taken.contains(&node) {
            taken.push(node);
            let role = ROLES[rng.below(ROLES.len() as u64) as usize];
            scenario.byzantine.push(ByzantineAssignment {
                node: NodeRef::Index(node),
                role,
            });
        }
    }
    scenario.faults.clear();
    // Honest nodes only: crashing a Byzantine one as well could exceed f faults.
    let honest: Vec<u16> = (0..n).filter(|node| !taken.contains(node)).collect();
    let crash_budget = f - byzantine_count;
    if crash_budget > 0 && rng.chance(1, 2) {
        let node = honest[rng.below(honest.len() as u64) as usize];
        let at_ms = rng.below(faults_stop_ms / 2);
        scenario.faults.push(TimedFault {
            at_ms,
            action: FaultAction::Crash { node },
        });
        if rng.chance(2, 3) {
            let restart_ms = at_ms + 1 + rng.below(faults_stop_ms - at_ms);
            scenario.faults.push(TimedFault {
                at_ms: restart_ms.min(faults_stop_ms),
                action: FaultAction::Restart { node },
            });
        }
    }
    if rng.chance(1, 2) {
        let at_ms = rng.below(faults_stop_ms);
        let action = match rng.below(3) {
            0 => FaultAction::Isolate {
                node: rng.below(u64::from(n)) as u16,
            },
            1 => {
                let cut = 1 + rng.below(u64::from(n) - 1) as u16;
                FaultAction::Partition {
                    groups: vec![(0..cut).collect()],
                }
            }
            _ => FaultAction::Clog {
                node: rng.below(u64::from(n)) as u16,
                until_ms: faults_stop_ms,
            },
        };
        scenario.faults.push(TimedFault { at_ms, action });
        scenario.faults.push(TimedFault {
            at_ms: (at_ms + 1 + rng.below(500)).min(faults_stop_ms),
            action: FaultAction::Heal,
        });
    }
    scenario.faults.sort_by_key(|fault| fault.at_ms);
    scenario
}
