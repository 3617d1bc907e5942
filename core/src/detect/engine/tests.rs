use super::*;
use crate::detect::{Severity, default_rules};

fn detector(yaml: &str) -> Detector {
    let set = RuleSet::parse(yaml).unwrap_or_else(|e| panic!("{e}"));
    Detector::new(
        Arc::new(CompiledRules::compile(&set).unwrap()),
        DetectorConfig::default(),
    )
}

fn http(id: &str, payload: &str) -> Event {
    Event {
        id: id.into(),
        ts: 0,
        source: "10.0.0.1".into(),
        sensor: "s1".into(),
        kind: "http".into(),
        payload: payload.as_bytes().to_vec(),
        headers: Vec::new(),
    }
}

fn fired(d: &mut Detector, e: &Event) -> Vec<String> {
    let mut alerts = Vec::new();
    d.inspect(e, e.ts, &mut alerts);
    ids(d, &alerts)
}

fn ids(d: &Detector, alerts: &[Alert]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| d.rules().rule(a).id.clone())
        .collect()
}

#[test]
fn literals_exact_case_and_nocase() {
    let mut d = detector(
        r#"rules:
  - { id: exact, title: t, severity: low, match: { literal: "Admin" } }
  - { id: nocase, title: t, severity: low, match: { literal: "admin", nocase: true } }
"#,
    );
    assert_eq!(fired(&mut d, &http("1", "GET /Admin")), ["exact", "nocase"]);
    assert_eq!(fired(&mut d, &http("2", "GET /ADMIN")), ["nocase"]);
    assert!(fired(&mut d, &http("3", "GET /adm1n")).is_empty());
}

#[test]
fn regex_runs_behind_its_literal_prefilter() {
    let yaml = r#"rules:
  - { id: union, title: t, severity: critical, transforms: [url_decode, lowercase], match: { regex: 'union\s+select' } }
  - { id: digits, title: t, severity: low, match: { regex: '[a-z0-9]{5}' } }
"#;
    let mut d = detector(yaml);
    let stats = d.rules().stats();
    assert_eq!(
        (
            stats.regexes,
            stats.prefiltered_regexes,
            stats.unfiltered_targets
        ),
        (2, 1, 1)
    );
    assert_eq!(
        fired(&mut d, &http("1", "GET /?q=1%20UNION%20%20SELECT%201")),
        ["union"]
    );
    assert!(fired(&mut d, &http("2", "GET /?q=uni")).is_empty());
    assert_eq!(fired(&mut d, &http("3", "GET /ab345")), ["digits"]);
}

#[test]
fn boolean_conditions_and_spans() {
    let mut d = detector(
        r#"rules:
  - id: r
    title: t
    severity: high
    match:
      all:
        - any: [{ literal: "<script" , nocase: true}, { literal: "onerror=" }]
        - not: { literal: "trusted" }
"#,
    );
    let mut alerts = Vec::new();
    d.inspect(&http("1", "x=<SCRIPT>alert(1)"), 0, &mut alerts);
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].matches[..],
        [MatchSpan {
            field: 0,
            start: 2,
            end: 9
        }]
    );
    assert_eq!(alerts[0].severity, Severity::High);
    assert_eq!(alerts[0].payload_hash, Digest::of(b"x=<SCRIPT>alert(1)"));
    assert!(fired(&mut d, &http("2", "trusted <script")).is_empty());
    assert!(fired(&mut d, &http("3", "plain")).is_empty());
}

#[test]
fn fields_headers_and_kinds() {
    let mut d = detector(
        r#"rules:
  - { id: ua, title: t, severity: medium, kinds: [http], fields: [header.user-agent], match: { literal: sqlmap, nocase: true } }
  - { id: src, title: t, severity: low, fields: [source, sensor], match: { literal: "10.6.6." } }
"#,
    );
    let e = http(
        "1",
        "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: sqlmap/1.7\r\n\r\n",
    );
    assert_eq!(fired(&mut d, &e), ["ua"]);
    let mut dns = e.clone();
    dns.kind = "dns".into();
    dns.headers = vec![("user-agent".into(), "SQLMAP".into())];
    assert!(fired(&mut d, &dns).is_empty(), "kinds filter");
    let mut given = http("2", "GET /");
    given.headers = vec![("user-agent".into(), "SQLMap".into())];
    given.sensor = "10.6.6.1".into();
    assert_eq!(fired(&mut d, &given), ["ua", "src"]);
}

#[test]
fn anomaly_rule_counts_matches_per_source() {
    let mut d = detector(
        r#"rules:
  - id: brute
    title: t
    severity: high
    match: { literal: "POST /login" }
    aggregate: { by: source, mode: event_count, count: 3, window_ms: 1000 }
"#,
    );
    let mut results = Vec::new();
    for (i, (src, ts)) in [("a", 0), ("a", 10), ("b", 20), ("a", 30), ("a", 2000)]
        .iter()
        .enumerate()
    {
        let mut e = http(&i.to_string(), "POST /login HTTP/1.1");
        e.source = (*src).into();
        e.ts = *ts;
        results.push(fired(&mut d, &e).len());
    }
    assert_eq!(results, [0, 0, 0, 1, 0]);
    assert_eq!(d.window_keys(), [2]);
}

#[test]
fn hash_seed_does_not_change_alerts() {
    let run = |seed| {
        let set = RuleSet::parse(
            r#"rules:
  - { id: a, title: t, severity: low, match: { literal: x }, aggregate: { by: source, mode: threshold, count: 2, window_ms: 50 } }
"#,
        )
        .unwrap();
        let mut d = Detector::new(
            Arc::new(CompiledRules::compile(&set).unwrap()),
            DetectorConfig {
                max_keys_per_rule: 8,
                hash_seed: seed,
            },
        );
        let mut out = Vec::new();
        for i in 0..2_000u64 {
            let mut e = http(&i.to_string(), "x");
            e.source = format!("10.0.{}.{}", i % 13, i % 7);
            d.inspect(&e, i, &mut out);
        }
        out
    };
    assert_eq!(run(1), run(0xdead_beef));
}

#[test]
fn replacing_rules_keeps_unchanged_windows() {
    let base = r#"rules:
  - { id: a, title: t, severity: low, match: { literal: x }, aggregate: { by: source, mode: event_count, count: 2, window_ms: 100 } }
"#;
    let mut d = detector(base);
    assert!(fired(&mut d, &http("1", "x")).is_empty());
    let extended =
        format!("{base}  - {{ id: b, title: t, severity: low, match: {{ literal: y }} }}\n");
    d.replace_rules(Arc::new(
        CompiledRules::compile(&RuleSet::parse(&extended).unwrap()).unwrap(),
    ));
    assert_eq!(fired(&mut d, &http("2", "x y")), ["a", "b"]);
}

#[test]
fn default_pack_parses_and_compiles() {
    let set = default_rules();
    assert!(set.rules.len() >= 20, "{} rules", set.rules.len());
    let compiled = CompiledRules::compile(&set).unwrap();
    assert_eq!(compiled.stats().rules, set.rules.len());
}

#[test]
fn a_batch_raises_the_alerts_of_its_events_one_at_a_time() {
    let set = default_rules();
    let compiled = Arc::new(CompiledRules::compile(&set).unwrap());
    let mut payloads: Vec<String> = vec![
        "GET /?id=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nHost: a\r\n\r\n"
            .into(),
        "GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n".into(),
        "GET /?q=<script>alert(1)</script> HTTP/1.1\r\nUser-Agent: sqlmap/1.7\r\n\r\n".into(),
        String::new(),
        format!(
            "GET /../../etc/passwd?{} HTTP/1.1\r\n\r\n",
            "pad=x&".repeat(300)
        ),
    ];
    // Logins: the brute-force rule's window holds back its first five
    // alerts, so its updates decide which alerts of the batch stand. The
    // second login also carries an injection, whose alert stands alone.
    for i in 0..12 {
        let user = if i == 1 {
            "admin%27%20OR%20%271%27%3D%271"
        } else {
            "admin"
        };
        payloads.push(format!(
            "POST /login HTTP/1.1\r\n\r\nuser={user}&password=guess"
        ));
    }
    let events: Vec<(Event, u64)> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| (http(&format!("e{i}"), p), 1_000 + 10 * i as u64))
        .collect();
    let mut one = Detector::new(Arc::clone(&compiled), DetectorConfig::default());
    let mut expected = Vec::new();
    let mut expected_alerting = Vec::new();
    for (i, (e, t)) in events.iter().enumerate() {
        let before = expected.len();
        one.inspect(e, *t, &mut expected);
        if expected.len() > before {
            expected_alerting.push(AlertingEvent {
                index: i as u32,
                alerts: (expected.len() - before) as u32,
            });
        }
    }
    let mut batch = Detector::new(compiled, DetectorConfig::default());
    let mut got = vec![];
    let alerting = batch.inspect_batch(events.iter().map(|(e, t)| (e, *t)), &mut got);
    assert!(expected.len() >= 4, "{expected:?}");
    assert!(expected.iter().all(|a| a.payload_hash != Digest::ZERO));
    assert_eq!(got, expected);
    assert!(expected_alerting.len() >= 2, "{expected_alerting:?}");
    assert!(
        expected_alerting.len() < events.len(),
        "some events are clean"
    );
    assert_eq!(alerting, expected_alerting);
    assert_eq!(batch.encode_windows(), one.encode_windows());
    let login = |i: usize| expected_alerting.iter().find(|a| a.index as usize == 5 + i);
    assert_eq!(login(0), None, "the first login raises nothing");
    assert!(
        login(1).is_some(),
        "the injection in the second login stands"
    );
    // Each event's alerts, by the counts the batch reported.
    let mut rest = ids(&one, &expected).into_iter();
    let by_event: Vec<(u32, Vec<String>)> = expected_alerting
        .iter()
        .map(|a| (a.index, rest.by_ref().take(a.alerts as usize).collect()))
        .collect();
    let brute_force = |index: usize| {
        by_event
            .iter()
            .any(|(i, ids)| *i as usize == index && ids.iter().any(|id| id == "bruteforce-login"))
    };
    assert!(
        (5 + 5..events.len()).all(brute_force),
        "the sixth login on raise the brute-force alert"
    );
    assert!(!(5..5 + 5).any(brute_force), "the first five do not");
}

#[test]
fn broad_regexes_scan_together_and_run_alone_only_to_locate_a_match() {
    // Neither regex has a required literal of four bytes or more, so both
    // are broad: one set scan answers for both, and only the one that
    // matches runs on its own (for its span).
    let mut d = detector(
        r#"rules:
  - { id: quote, title: t, severity: low, match: { regex: "['\"]\\s*(?:or|and)\\s+\\d" } }
  - { id: semi, title: t, severity: low, match: { regex: ";\\s*(?:id|ls)\\b" } }
  - { id: long, title: t, severity: low, match: { regex: "union\\s+select" } }
"#,
    );
    assert_eq!(d.rules().stats().grouped_regexes, 2);
    let mut alerts = Vec::new();
    d.inspect(&http("1", "GET /?a=1' or 1=1 ; x"), 0, &mut alerts);
    let work = d.work();
    assert_eq!(ids(&d, &alerts), ["quote"]);
    assert_eq!((work.regex_set_runs, work.regex_runs), (1, 1));
    let m = &alerts[0].matches[0];
    assert_eq!((m.start, m.end), (9, 15));
}
