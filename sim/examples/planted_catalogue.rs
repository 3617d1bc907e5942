//! Measures the simulator's bug-finding power: for every bug in the planted
//! catalogue, runs swarm seeds (each deriving its own faults and Byzantine
//! roles from a base scenario) until one fails, and prints how many seeds it
//! took and which invariant caught it.
//!
//! ```text
//! cargo run --release -p shieldx-sim --features planted-bugs,fast-signatures \
//!     --example planted_catalogue -- [SEEDS_MAX] [BASE_SCENARIO] [BUG]
//! ```
//!
//! Defaults: 1,000 seeds, `scenarios/normal-n4.toml`, every bug. With
//! `fast-signatures` the runs take the same paths at a fraction of the cost.

use std::path::PathBuf;

use shieldx_core::consensus::PlantedBug;
use shieldx_sim::{Scenario, Simulation, swarm};

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds_max: u64 = args
        .next()
        .map(|s| s.parse().expect("SEEDS_MAX is a number"))
        .unwrap_or(1_000);
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/normal-n4.toml")
    });
    let text = std::fs::read_to_string(&path).expect("readable base scenario");
    let base = Scenario::from_toml(&text).expect("valid base scenario");
    let only = args.next();
    if let Some(name) = &only {
        assert!(
            PlantedBug::from_name(name).is_some(),
            "no planted bug is named {name}"
        );
    }
    println!("| planted bug | seeds to first catch | invariant that caught it |");
    println!("| --- | --- | --- |");
    for bug in PlantedBug::ALL
        .into_iter()
        .filter(|bug| only.as_deref().is_none_or(|name| name == bug.name()))
    {
        let mut planted = base.clone();
        planted.consensus.planted_bug = Some(bug.name().to_owned());
        let mut caught = None;
        for seed in 1..=seeds_max {
            let scenario = swarm::derive(&planted, seed);
            let report = Simulation::new(scenario, seed).run();
            if let Some(violation) = report.violations.first() {
                caught = Some((seed, violation.invariant));
                break;
            }
        }
        match caught {
            Some((seed, invariant)) => {
                // Control: the same derived run without the bug must pass,
                // or the catch says nothing about the bug.
                let control = Simulation::new(swarm::derive(&base, seed), seed).run();
                let note = if control.passed() {
                    ""
                } else {
                    " (the run fails without the bug too)"
                };
                println!("| {} | {seed} | {invariant}{note} |", bug.name());
            }
            None => println!("| {} | not caught in {seeds_max} | |", bug.name()),
        }
    }
}
