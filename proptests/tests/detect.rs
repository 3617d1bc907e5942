//! The compiled engine (one automaton, prefilters, candidate selection) must
//! give exactly the alerts of a naive matcher that evaluates every rule on
//! every field with plain substring search and a fresh regex.

use std::sync::Arc;

use proptest::prelude::*;
use shieldx_core::detect::transform::apply_chain;
use shieldx_core::detect::{
    CompiledRules, Condition, Detector, DetectorConfig, Event, Field, Rule, RuleSet, Severity,
    Transform,
};

const ALPHABET: &[u8] = b"abAB'<%27 ";

fn literal() -> impl Strategy<Value = Condition> {
    (
        // Up to 7 bytes: the literal scan treats literals of 1, 2–3 and 4 or
        // more bytes differently.
        proptest::collection::vec(proptest::sample::select(ALPHABET), 1..8),
        any::<bool>(),
    )
        .prop_map(|(bytes, nocase)| Condition::Literal { bytes, nocase })
}

fn regex() -> impl Strategy<Value = Condition> {
    proptest::sample::select(vec![
        "a+b",
        "(?i)ab",
        "[ab]'",
        "a.b",
        "^a",
        "b$",
        "'\\s*a",
        "(?i)b{2}",
        "<a|b<",
        "ab|ba",
        "%2",
        "a?'",
        "(?-u:\\x27)b",
        "\\d",
    ])
    .prop_map(|s| Condition::Regex(s.to_string()))
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![literal(), regex()].prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..3).prop_map(Condition::All),
            proptest::collection::vec(inner.clone(), 1..3).prop_map(Condition::Any),
            inner.prop_map(|c| Condition::Not(Box::new(c))),
        ]
    })
}

fn rule_set() -> impl Strategy<Value = RuleSet> {
    proptest::collection::vec(
        (
            condition(),
            proptest::sample::subsequence(vec![Transform::UrlDecode, Transform::Lowercase], 0..=2),
            proptest::sample::select(vec![
                vec![Field::Payload],
                vec![Field::Source],
                vec![Field::Payload, Field::Header("x-h".into())],
            ]),
            proptest::option::of(Just(vec!["http".to_string()])),
        ),
        1..8,
    )
    .prop_map(|rules| RuleSet {
        rules: rules
            .into_iter()
            .enumerate()
            .map(|(i, (condition, transforms, fields, kinds))| Rule {
                id: format!("r{i}"),
                title: "t".into(),
                severity: Severity::Low,
                tags: vec![],
                kinds: kinds.unwrap_or_default(),
                fields,
                transforms,
                condition: Some(condition),
                aggregate: None,
            })
            .collect(),
    })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(ALPHABET), 0..24)
}

fn event() -> impl Strategy<Value = Event> {
    (bytes(), bytes(), bytes(), any::<bool>()).prop_map(|(payload, source, header, http)| Event {
        id: "e".into(),
        ts: 0,
        source: String::from_utf8_lossy(&source).into_owned(),
        sensor: "s".into(),
        kind: if http { "http" } else { "dns" }.into(),
        payload,
        headers: vec![("x-h".into(), String::from_utf8_lossy(&header).into_owned())],
    })
}

fn contains(haystack: &[u8], needle: &[u8], nocase: bool) -> bool {
    haystack.windows(needle.len()).any(|w| {
        if nocase {
            w.eq_ignore_ascii_case(needle)
        } else {
            w == needle
        }
    })
}

fn naive_eval(condition: &Condition, input: &[u8]) -> bool {
    match condition {
        Condition::Literal { bytes, nocase } => contains(input, bytes, *nocase),
        // The engine's documented regex semantics: bytes, ASCII classes.
        Condition::Regex(source) => regex::bytes::RegexBuilder::new(source)
            .unicode(false)
            .build()
            .expect("test regexes are valid")
            .is_match(input),
        Condition::All(children) => children.iter().all(|c| naive_eval(c, input)),
        Condition::Any(children) => children.iter().any(|c| naive_eval(c, input)),
        Condition::Not(child) => !naive_eval(child, input),
    }
}

fn naive(set: &RuleSet, event: &Event) -> Vec<String> {
    let mut out = Vec::new();
    for rule in &set.rules {
        if !rule.kinds.is_empty() && !rule.kinds.contains(&event.kind) {
            continue;
        }
        let hit = rule.fields.iter().any(|field| {
            let (mut buffer, mut scratch) = (Vec::new(), Vec::new());
            apply_chain(
                &rule.transforms,
                event.field(field),
                &mut buffer,
                &mut scratch,
            );
            rule.condition
                .as_ref()
                .is_none_or(|c| naive_eval(c, &buffer))
        });
        if hit {
            out.push(rule.id.clone());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn engine_matches_naive_reference(set in rule_set(), events in proptest::collection::vec(event(), 1..6)) {
        let compiled = Arc::new(CompiledRules::compile(&set).expect("generated rules compile"));
        let mut detector = Detector::new(Arc::clone(&compiled), DetectorConfig::default());
        for event in &events {
            let mut alerts = Vec::new();
            detector.inspect(event, 0, &mut alerts);
            let got: Vec<String> = alerts.iter().map(|a| compiled.rule(a).id.clone()).collect();
            prop_assert_eq!(got, naive(&set, event), "event {:?}", event);
            for alert in &alerts {
                let rule = compiled.rule(alert);
                for m in &alert.matches {
                    let field = &rule.fields[usize::from(m.field)];
                    let (mut buffer, mut scratch) = (Vec::new(), Vec::new());
                    apply_chain(&rule.transforms, event.field(field), &mut buffer, &mut scratch);
                    prop_assert!(m.start <= m.end && m.end as usize <= buffer.len());
                }
            }
        }
    }
}
