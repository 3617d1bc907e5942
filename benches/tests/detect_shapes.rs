//! Cost regression test for every rule-set shape of the detection bench: no
//! shape may fall below 50,000 events/s.
//!
//! Tests never assert on wall-clock time (the machines are noisy), so the
//! test bounds the engine's deterministic work counters through a cost model
//! whose unit costs are upper bounds measured with `cargo bench --bench
//! detect` and perf on the project's machine (BENCHMARKS.md): a regression
//! that defeats the literal prefilter, evaluates every rule on every event or
//! rescans inputs shows up here as modelled cost, identically on every run.

use std::sync::Arc;

use shieldx_benches::{events, literal_rules, mixed_rules, with_transforms};
use shieldx_core::detect::{CompiledRules, Detector, DetectorConfig, RuleSet, default_rules};

/// Nanoseconds per unit of work. Calibrated on the 2026-11-22 bench run so
/// that the model stays above every measured shape's mean (literals-1000/256B
/// measured 2.3-3.3 µs, modelled 3.1; mixed-1000/1KiB measured 6-8 µs,
/// modelled 11.6; mixed-1000+transforms/1KiB measured 10-12 µs, modelled 15.6).
const NS_PER_EVENT: f64 = 1_000.0; // alert construction, payload hash, candidate sort
const NS_PER_TRANSFORMED_BYTE: f64 = 2.0; // per byte per transform in a chain
const NS_PER_INPUT_BYTE: f64 = 6.0; // fingerprint filter (~1 measured with perf; the DFA scan it replaced ~4)
const NS_PER_LITERAL_LOOKUP: f64 = 40.0; // DFA decision where the fingerprint filter passed
const NS_PER_LITERAL_MATCH: f64 = 25.0;
const NS_PER_TARGET: f64 = 60.0;
const NS_PER_REGEX_RUN: f64 = 150.0;
const NS_PER_REGEX_BYTE: f64 = 1.5;

/// 50,000 events/s.
const BUDGET_NS_PER_EVENT: f64 = 20_000.0;

fn modelled_ns_per_event(set: &RuleSet, events: &[shieldx_core::detect::Event]) -> f64 {
    let compiled = Arc::new(CompiledRules::compile(set).expect("bench rules compile"));
    let mut d = Detector::new(compiled, DetectorConfig::default());
    let mut alerts = Vec::new();
    for e in events {
        alerts.clear();
        d.inspect(e, e.ts, &mut alerts);
    }
    let w = d.work();
    let total = w.events as f64 * NS_PER_EVENT
        + w.transformed_bytes as f64 * NS_PER_TRANSFORMED_BYTE
        + w.input_bytes as f64 * NS_PER_INPUT_BYTE
        + w.literal_lookups as f64 * NS_PER_LITERAL_LOOKUP
        + w.literal_matches as f64 * NS_PER_LITERAL_MATCH
        + w.targets_evaluated as f64 * NS_PER_TARGET
        + w.regex_runs as f64 * NS_PER_REGEX_RUN
        + w.regex_bytes as f64 * NS_PER_REGEX_BYTE
        // A set of broad regexes scans like one regex (its DFA is larger).
        + w.regex_set_runs as f64 * NS_PER_REGEX_RUN
        + w.regex_set_bytes as f64 * NS_PER_REGEX_BYTE;
    total / w.events as f64
}

#[test]
fn no_bench_shape_falls_below_50k_events_per_second() {
    let shapes: Vec<(&str, RuleSet, usize)> = vec![
        ("literals-1000/256B", literal_rules(1000, 1), 256),
        (
            "literals-1000+transforms/256B",
            with_transforms(literal_rules(1000, 1)),
            256,
        ),
        ("mixed-1000/1KiB", mixed_rules(1000, 1), 1024),
        (
            "mixed-1000+transforms/1KiB",
            with_transforms(mixed_rules(1000, 1)),
            1024,
        ),
        ("default-pack/generated", default_rules(), 0),
    ];
    for (name, set, size) in shapes {
        let ns = modelled_ns_per_event(&set, &events(1000, size, 7));
        println!("{name}: modelled {ns:.0} ns/event");
        assert!(
            ns < BUDGET_NS_PER_EVENT,
            "{name}: modelled {ns:.0} ns/event, over the 50K events/s budget"
        );
    }
}

#[test]
fn the_model_catches_a_defeated_prefilter() {
    // 500 regexes that no literal can pre-filter run on every 1 KiB event.
    let mut set = mixed_rules(1000, 1);
    for (i, r) in set.rules.iter_mut().enumerate().skip(500) {
        r.condition = Some(shieldx_core::detect::Condition::Regex(format!(
            r"\w{{3}}\d{{2,}}[a-f]{{{}}}",
            3 + i % 3
        )));
    }
    let ns = modelled_ns_per_event(&set, &events(200, 1024, 7));
    println!("defeated prefilter: modelled {ns:.0} ns/event");
    assert!(ns > BUDGET_NS_PER_EVENT, "modelled {ns:.0} ns/event");
}
