//! Shrinking a failing run: delta debugging over the scenario's faults and
//! length, keeping each simplification only if the run still breaks the same
//! invariant, until no single simplification preserves the failure.
//!
//! Order: Byzantine roles, then timed faults (chunks, then one by one), random
//! fault rates, clock models, the workload, and finally the run length.

use crate::runner::Simulation;
use crate::scenario::{RandomFaults, Scenario};

/// Upper bound on candidate runs, so shrinking always ends.
pub const SHRINK_RUNS_MAX: usize = 400;

/// The outcome of shrinking.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest scenario found that still fails the same way.
    pub scenario: Scenario,
    /// The invariant it breaks.
    pub invariant: &'static str,
    /// Candidate runs tried.
    pub runs: usize,
}

/// The first invariant `scenario` breaks under `seed`, if any.
pub fn first_violation(scenario: &Scenario, seed: u64) -> Option<&'static str> {
    Simulation::new(scenario.clone(), seed)
        .run()
        .violations
        .first()
        .map(|v| v.invariant)
}

/// Shrinks a failing `scenario` under `seed`. `None` if it does not fail.
pub fn shrink(scenario: &Scenario, seed: u64) -> Option<Shrunk> {
    let invariant = first_violation(scenario, seed)?;
    let mut runs = 1usize;
    let mut best = scenario.clone();
    let still_fails = |candidate: &Scenario, runs: &mut usize| -> bool {
        if *runs >= SHRINK_RUNS_MAX || candidate.validate().is_err() {
            return false;
        }
        *runs += 1;
        Simulation::new(candidate.clone(), seed)
            .run()
            .violations
            .iter()
            .any(|v| v.invariant == invariant)
    };

    // Byzantine roles, one at a time.
    let mut index = 0;
    while index < best.byzantine.len() {
        let mut candidate = best.clone();
        candidate.byzantine.remove(index);
        if still_fails(&candidate, &mut runs) {
            best = candidate;
        } else {
            index += 1;
        }
    }

    // Timed faults: ddmin-style, removing chunks of decreasing size.
    let mut chunk = best.faults.len().div_ceil(2).max(1);
    while !best.faults.is_empty() {
        let mut removed_any = false;
        let mut start = 0;
        while start < best.faults.len() {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.faults.len());
            candidate.faults.drain(start..end);
            if still_fails(&candidate, &mut runs) {
                best = candidate;
                removed_any = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 && !removed_any {
            break;
        }
        chunk = (chunk / 2).max(1);
    }

    // Random fault rates: off entirely, else each one off.
    let mut candidate = best.clone();
    candidate.random_faults = RandomFaults::default();
    if best.random_faults != RandomFaults::default() && still_fails(&candidate, &mut runs) {
        best = candidate;
    }
    for field in 0..3 {
        let mut candidate = best.clone();
        let rates = &mut candidate.random_faults;
        let rate = match field {
            0 => &mut rates.loss_per_mille,
            1 => &mut rates.duplicate_per_mille,
            _ => &mut rates.reorder_per_mille,
        };
        if *rate > 0 {
            *rate = 0;
            if still_fails(&candidate, &mut runs) {
                best = candidate;
            }
        }
    }
    if !best.clocks.is_empty() {
        let mut candidate = best.clone();
        candidate.clocks.clear();
        if still_fails(&candidate, &mut runs) {
            best = candidate;
        }
    }

    // The workload: fewer requests per client, fewer clients.
    while best.workload.requests_per_client > 1 {
        let mut candidate = best.clone();
        candidate.workload.requests_per_client /= 2;
        if !still_fails(&candidate, &mut runs) {
            break;
        }
        best = candidate;
    }
    while best.workload.clients > 1 {
        let mut candidate = best.clone();
        candidate.workload.clients -= 1;
        if !still_fails(&candidate, &mut runs) {
            break;
        }
        best = candidate;
    }

    // The run length: halve while it still fails (never before the faults stop).
    loop {
        let mut candidate = best.clone();
        candidate.run.duration_ms = (best.run.duration_ms / 2)
            .max(best.run.faults_stop_ms)
            .max(1);
        if candidate.run.duration_ms == best.run.duration_ms || !still_fails(&candidate, &mut runs)
        {
            break;
        }
        best = candidate;
    }
    best.name = format!("{}-shrunk", scenario.name);
    best.description = format!(
        "Shrunk from {} (seed {seed}): the smallest schedule found that still breaks \"{invariant}\".",
        scenario.name
    );
    Some(Shrunk {
        scenario: best,
        invariant,
        runs,
    })
}
