//! Detection engine throughput, latency and anomaly-window cost (issue 6,
//! BENCHMARKS.md), with libinjection's Rust port on the same events.
//!
//! Quality against libinjection on a labelled corpus (built by
//! `benches/corpus/build_eval_corpus.py`) runs when `SHIELDX_EVAL_CORPUS`
//! names the file: `SHIELDX_EVAL_CORPUS=/tmp/corpus.jsonl cargo bench -p
//! shieldx-benches --bench detect -- quality`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shieldx_benches::{events, literal_rules, mixed_rules, with_transforms};
use shieldx_core::detect::window::{WindowTable, WindowUpdate};
use shieldx_core::detect::{
    Aggregate, AggregateMode, CompiledRules, Detector, DetectorConfig, Event, Field, RuleSet,
    default_rules,
};

fn detector(set: &RuleSet) -> Detector {
    Detector::new(
        Arc::new(CompiledRules::compile(set).expect("bench rules compile")),
        DetectorConfig::default(),
    )
}

fn shapes() -> Vec<(&'static str, RuleSet, Vec<Event>)> {
    vec![
        (
            "literals-1000/256B",
            literal_rules(1000, 1),
            events(4096, 256, 7),
        ),
        (
            "literals-1000+transforms/256B",
            with_transforms(literal_rules(1000, 1)),
            events(4096, 256, 7),
        ),
        (
            "mixed-1000/1KiB",
            mixed_rules(1000, 1),
            events(2048, 1024, 7),
        ),
        (
            "mixed-1000+transforms/1KiB",
            with_transforms(mixed_rules(1000, 1)),
            events(2048, 1024, 7),
        ),
        (
            "default-pack/generated",
            default_rules(),
            events(4096, 0, 7),
        ),
    ]
}

/// Events per `Detector::inspect_batch` call: the application inspects the
/// events of one ordered batch together.
const BATCH: usize = 256;

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect");
    for (name, set, events) in shapes() {
        let mut d = detector(&set);
        let mut alerts = Vec::new();
        group.throughput(Throughput::Elements(events.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for batch in events.chunks(BATCH) {
                    alerts.clear();
                    d.inspect_batch(batch.iter().map(|e| (e, e.ts)), &mut alerts);
                }
                black_box(alerts.len())
            })
        });
    }
    group.finish();
}

/// Per-event latency percentiles (criterion reports means only).
fn latency(_: &mut Criterion) {
    for (name, set, events) in shapes() {
        let mut d = detector(&set);
        let mut alerts = Vec::new();
        let mut samples = Vec::with_capacity(events.len() * 8);
        for _ in 0..8 {
            for e in &events {
                alerts.clear();
                let start = Instant::now();
                d.inspect(e, e.ts, &mut alerts);
                samples.push(start.elapsed().as_nanos() as u64);
            }
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        println!(
            "latency {name}: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs",
            at(0.5) as f64 / 1e3,
            at(0.99) as f64 / 1e3,
            at(0.999) as f64 / 1e3
        );
    }
}

fn windows(c: &mut Criterion) {
    const KEYS: usize = 100_000;
    let key = |i: usize| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255).into_bytes();
    // The update sequence visits every key in a scattered order (stride
    // 7,919, prime to 100,000). Its keys lie back to back in that order, as
    // the keys of successive events would: in the engine a key is a field of
    // the event being inspected, already in cache, so the bench must not add
    // a miss of its own to fetch it.
    let mut stream = Vec::new();
    let mut ends = Vec::with_capacity(KEYS);
    let mut i = 0usize;
    for _ in 0..KEYS {
        i = (i + 7919) % KEYS;
        stream.extend_from_slice(&key(i));
        ends.push(stream.len());
    }
    let mut group = c.benchmark_group("anomaly-window");
    for (name, mode) in [
        ("event_count", AggregateMode::EventCount),
        ("detection_filter", AggregateMode::DetectionFilter),
    ] {
        let mut table = WindowTable::new(
            Aggregate {
                by: Field::Source,
                mode,
                count: 20,
                window_ms: 60_000,
            },
            KEYS,
            42,
        );
        let mut t = 0u64;
        for i in 0..KEYS {
            t += 1;
            table.update(&key(i), None, t);
        }
        assert_eq!(table.len(), KEYS);
        let (mut n, mut start) = (0usize, 0usize);
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}/update-at-100k-keys"), |b| {
            b.iter(|| {
                let end = ends[n];
                t += 1;
                let alert = table.update(&stream[start..end], None, t);
                (n, start) = if n + 1 == KEYS { (0, 0) } else { (n + 1, end) };
                black_box(alert)
            })
        });
        // As `inspect_batch` applies a batch's window updates: together,
        // through `update_many`.
        const BULK: usize = 256;
        let mut alerts = Vec::with_capacity(BULK);
        let mut updates: Vec<WindowUpdate<'_>> = Vec::with_capacity(BULK);
        group.throughput(Throughput::Elements(BULK as u64));
        group.bench_function(format!("{name}/update-{BULK}-together-at-100k-keys"), |b| {
            b.iter(|| {
                updates.clear();
                for _ in 0..BULK {
                    let end = ends[n];
                    t += 1;
                    updates.push((&stream[start..end], None, t));
                    (n, start) = if n + 1 == KEYS { (0, 0) } else { (n + 1, end) };
                }
                alerts.clear();
                table.update_many(&updates, &mut alerts);
                black_box(alerts.len())
            })
        });
    }
    group.finish();
}

/// libinjection inspects one parameter value at a time: split the query
/// string and form body, URL-decode each value, run SQLi and XSS detection.
fn libinjection_flags(payload: &[u8]) -> (bool, bool) {
    let text = String::from_utf8_lossy(payload);
    let line_end = text.find("\r\n").unwrap_or(text.len());
    let request_line = &text[..line_end];
    let target = request_line.split(' ').nth(1).unwrap_or("");
    let mut parts: Vec<&str> = Vec::new();
    if let Some((path, query)) = target.split_once('?') {
        parts.push(path);
        parts.extend(query.split('&'));
    } else {
        parts.push(target);
    }
    if let Some((_, body)) = text.split_once("\r\n\r\n") {
        parts.extend(body.split('&'));
    }
    let (mut sqli, mut xss) = (false, false);
    for part in parts {
        let value = part.split_once('=').map_or(part, |(_, v)| v);
        let decoded = percent_decode(value);
        sqli |= libinjectionrs::detect_sqli(&decoded).is_injection();
        xss |= libinjectionrs::detect_xss(&decoded).is_injection();
    }
    (sqli, xss)
}

fn percent_decode(text: &str) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some((hex(bytes[i + 1])? << 4) | hex(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (b'+', _) => out.push(b' '),
            (_, Some(v)) => {
                out.push(v);
                i += 2;
            }
            (b, None) => out.push(b),
        }
        i += 1;
    }
    out
}

fn libinjection(c: &mut Criterion) {
    let events = events(4096, 0, 7);
    let mut group = c.benchmark_group("detect-vs-libinjection");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("libinjectionrs-sqli+xss/generated", |b| {
        b.iter(|| {
            events
                .iter()
                .filter(|e| {
                    let (s, x) = libinjection_flags(&e.payload);
                    s || x
                })
                .count()
        })
    });
    group.finish();
}

/// Recall per class and false-positive rate of the default pack and of
/// libinjection on one labelled corpus.
fn quality(_: &mut Criterion) {
    let Ok(path) = std::env::var("SHIELDX_EVAL_CORPUS") else {
        println!(
            "quality: set SHIELDX_EVAL_CORPUS to a labelled JSON-lines file to compare with libinjection"
        );
        return;
    };
    let text = std::fs::read_to_string(&path).expect("corpus readable");
    let mut d = detector(&default_rules());
    let mut alerts = Vec::new();
    // class -> (events, ours, libinjection)
    let mut table: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let event = Event {
            id: v["id"].as_str().unwrap_or_default().into(),
            ts: v["ts"].as_u64().unwrap_or_default(),
            source: v["source"].as_str().unwrap_or_default().into(),
            sensor: v["sensor"].as_str().unwrap_or_default().into(),
            kind: v["kind"].as_str().unwrap_or("http").into(),
            payload: v["payload"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
            headers: Vec::new(),
        };
        alerts.clear();
        d.inspect(&event, event.ts, &mut alerts);
        let (s, x) = libinjection_flags(&event.payload);
        let class = v["class"].as_str().unwrap_or("?").to_string();
        let entry = table.entry(class).or_default();
        entry.0 += 1;
        entry.1 += u64::from(!alerts.is_empty());
        entry.2 += u64::from(s || x);
    }
    println!("quality on {path}: class, events, flagged by shieldx, flagged by libinjectionrs");
    for (class, (n, ours, theirs)) in &table {
        println!(
            "  {class:<12} {n:>7}  shieldx {:>6.2}%  libinjectionrs {:>6.2}%",
            100.0 * *ours as f64 / *n as f64,
            100.0 * *theirs as f64 / *n as f64
        );
    }
}

/// Events per second of our engine, timed like the Hyperscan harness times
/// itself (passes over the same events for `seconds`), in batches as the
/// throughput bench runs it.
fn our_rate(set: &RuleSet, events: &[Event], seconds: f64) -> f64 {
    let mut d = detector(set);
    let mut alerts = Vec::new();
    let start = Instant::now();
    let mut scanned = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        for batch in events.chunks(BATCH) {
            alerts.clear();
            d.inspect_batch(batch.iter().map(|e| (e, e.ts)), &mut alerts);
        }
        scanned += events.len() as u64;
    }
    scanned as f64 / start.elapsed().as_secs_f64()
}

/// Hyperscan on the same rule shapes and events, when `SHIELDX_HYPERSCAN`
/// names the harness built by `benches/hyperscan/run.sh`.
fn hyperscan(_: &mut Criterion) {
    let Ok(harness) = std::env::var("SHIELDX_HYPERSCAN") else {
        println!("hyperscan: run benches/hyperscan/run.sh to compare with Hyperscan");
        return;
    };
    let dir = std::env::temp_dir().join(format!("shieldx-hs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (name, set, events) in shapes()
        .into_iter()
        .filter(|(n, ..)| !n.contains("transforms") && !n.starts_with("default"))
    {
        let mut patterns = String::new();
        for rule in &set.rules {
            match &rule.condition {
                Some(shieldx_core::detect::Condition::Literal { bytes, .. }) => {
                    patterns.push_str("L\t");
                    patterns.push_str(&String::from_utf8_lossy(bytes));
                }
                Some(shieldx_core::detect::Condition::Regex(source)) => {
                    patterns.push_str("R\t");
                    patterns.push_str(source);
                }
                _ => continue,
            }
            patterns.push('\n');
        }
        let mut blob = Vec::new();
        for e in &events {
            blob.extend_from_slice(&(e.payload.len() as u32).to_le_bytes());
            blob.extend_from_slice(&e.payload);
        }
        let (p, e) = (dir.join("patterns"), dir.join("events"));
        std::fs::write(&p, patterns).expect("write patterns");
        std::fs::write(&e, blob).expect("write events");
        let output = std::process::Command::new(&harness)
            .args([p.as_os_str(), e.as_os_str(), "3".as_ref()])
            .output()
            .expect("run the Hyperscan harness");
        let text = String::from_utf8_lossy(&output.stdout);
        let theirs: f64 = text
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "harness said {text:?} {:?}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let ours = our_rate(&set, &events, 3.0);
        println!(
            "hyperscan {name}: shieldx {:.0} events/s, Hyperscan {theirs:.0} events/s, ratio (shieldx / Hyperscan) {:.3}",
            ours,
            ours / theirs
        );
    }
}

criterion_group!(
    benches,
    throughput,
    windows,
    libinjection,
    latency,
    quality,
    hyperscan
);
criterion_main!(benches);
