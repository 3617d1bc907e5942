//! Workload shapes shared by the detection bench (`benches/detect.rs`) and its
//! cost regression test (`tests/detect_shapes.rs`), so both measure the same
//! thing.

use shieldx_core::detect::{Condition, Event, Field, Rule, RuleSet, Severity, Transform};
use shieldx_sim::rng::SimRng;
use shieldx_sim::workload::{Workload, WorkloadConfig};

fn token(rng: &mut SimRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'a' + rng.below(26) as u8))
        .collect()
}

fn rule(i: usize, condition: Condition) -> Rule {
    Rule {
        id: format!("bench-{i}"),
        title: format!("bench rule {i}"),
        severity: Severity::ALL[i % 4],
        tags: vec![],
        kinds: vec![],
        fields: vec![Field::Payload],
        transforms: vec![],
        condition: Some(condition),
        aggregate: None,
    }
}

/// Words that occur in generated requests, so that some rules really match.
const PRESENT: [&str; 8] = [
    "cookie", "session", "mozilla", "accept", "search", "select", "checkout", "chrome",
];

/// `n` case-insensitive literal rules: random 6–12 letter tokens, with every
/// 50th rule a word that occurs in the traffic.
pub fn literal_rules(n: usize, seed: u64) -> RuleSet {
    let mut rng = SimRng::stream(seed, "bench-literals");
    let rules = (0..n)
        .map(|i| {
            let bytes = if i % 50 == 0 {
                PRESENT[(i / 50) % PRESENT.len()].as_bytes().to_vec()
            } else {
                let len = 6 + rng.below(7) as usize;
                token(&mut rng, len).into_bytes()
            };
            rule(
                i,
                Condition::Literal {
                    bytes,
                    nocase: true,
                },
            )
        })
        .collect();
    RuleSet { rules }
}

/// `n` rules, half literal and half regex. Every regex starts with a literal
/// (so the prefilter applies), as signatures in Suricata and CRS mostly do.
pub fn mixed_rules(n: usize, seed: u64) -> RuleSet {
    let mut set = literal_rules(n / 2, seed);
    let mut rng = SimRng::stream(seed, "bench-regexes");
    for i in n / 2..n {
        let a = if i % 50 == 0 {
            PRESENT[(i / 50) % PRESENT.len()].to_string()
        } else {
            token(&mut rng, 5)
        };
        let b = token(&mut rng, 4);
        let source = match i % 4 {
            0 => format!(r"(?i){a}\s*=\s*['\x22]?\d+"),
            1 => format!(r"(?i){a}[^&\r\n]{{0,32}}{b}"),
            2 => format!(r"{a}(?:/[\w.-]+){{2,}}"),
            _ => format!(r"(?i)\b{a}\b.*\b{b}\b"),
        };
        set.rules.push(rule(i, Condition::Regex(source)));
    }
    set
}

/// The same rule sets with a realistic normalisation chain on every rule.
pub fn with_transforms(mut set: RuleSet) -> RuleSet {
    for r in &mut set.rules {
        r.transforms = vec![Transform::UrlDecode, Transform::Lowercase];
    }
    set
}

/// `count` generated HTTP events (10% attacks), each cut or padded to exactly
/// `size` bytes of payload; `size` 0 keeps the requests as generated.
pub fn events(count: usize, size: usize, seed: u64) -> Vec<Event> {
    Workload::new(WorkloadConfig {
        seed,
        malicious_ratio: 0.1,
    })
    .take(count)
    .map(|e| {
        let mut payload = e.payload.into_bytes();
        if size > 0 {
            while payload.len() < size {
                payload.extend_from_slice(b"&note=free+shipping+on+orders+over+fifty");
            }
            payload.truncate(size);
        }
        Event {
            id: e.id,
            ts: e.ts,
            source: e.source,
            sensor: e.sensor,
            kind: e.kind,
            payload,
            headers: Vec::new(),
        }
    })
    .collect()
}
