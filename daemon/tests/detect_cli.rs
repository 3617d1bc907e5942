//! `shieldx gen events`, `detect`, `eval` and `rules check` as real processes.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn shieldx(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shieldx"))
        .args(arguments)
        .output()
        .expect("binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// One test's directory of input files, removed with everything in it when
/// the test ends, passed or not.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("shieldx-detect-cli-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }

    /// Writes `contents` to the file `name` in this directory.
    fn file(&self, name: &str, contents: &str) -> std::path::PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn generated_events_evaluate_with_the_default_pack() {
    let scratch = Scratch::new("generated_events_evaluate_with_the_default_pack");
    let generated = shieldx(&[
        "gen",
        "events",
        "--seed",
        "5",
        "--count",
        "3000",
        "--malicious-ratio",
        "0.2",
    ]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let lines = text(&generated.stdout);
    assert_eq!(lines.lines().count(), 3000);
    let again = shieldx(&[
        "gen",
        "events",
        "--seed",
        "5",
        "--count",
        "3000",
        "--malicious-ratio",
        "0.2",
    ]);
    assert_eq!(generated.stdout, again.stdout, "same seed, same events");
    let path = scratch.file("labeled.jsonl", &lines);

    let eval = shieldx(&[
        "eval",
        "--rules",
        "default",
        "--labeled",
        path.to_str().expect("utf-8 path"),
    ]);
    assert!(eval.status.success(), "{}", text(&eval.stderr));
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).expect("JSON report");
    for key in [
        "tp",
        "fp",
        "fn",
        "tn",
        "precision",
        "recall",
        "f1",
        "weighted_precision",
        "weighted_recall",
        "weighted_f1",
        "by_severity",
        "by_class",
    ] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    let n = |k: &str| report[k].as_u64().expect("count");
    assert_eq!(n("tp") + n("fp") + n("fn") + n("tn"), 3000);
    assert!(
        report["precision"].as_f64().expect("number") > 0.95,
        "{report}"
    );
    assert!(
        report["by_class"]["sqli"]["recall"]
            .as_f64()
            .expect("number")
            > 0.9,
        "{report}"
    );
    assert!(
        report["by_class"]["xss"]["recall"]
            .as_f64()
            .expect("number")
            > 0.9,
        "{report}"
    );
}

#[test]
fn detect_reads_stdin_and_writes_alert_lines() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shieldx"))
        .args(["detect", "--rules", "default"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(
            concat!(
                r#"{"id":"a1","payload":"GET /item?id=1%27%20UNION%20SELECT%20password%20FROM%20users--%20 HTTP/1.1\r\nHost: x\r\n\r\n"}"#,
                "\n\n",
                r#"{"id":"b1","payload":"GET /search?q=running+shoes HTTP/1.1\r\nHost: x\r\n\r\n"}"#,
                "\n"
            )
            .as_bytes(),
        )
        .expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    let alerts: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON alert"))
        .collect();
    assert!(!alerts.is_empty());
    assert!(alerts.iter().all(|a| a["event_id"] == "a1"), "{alerts:?}");
    assert!(
        alerts.iter().any(|a| a["rule_id"] == "sqli-union-select"),
        "{alerts:?}"
    );
    let first = &alerts[0];
    assert_eq!(first["payload_blake3"].as_str().map(str::len), Some(64));
    assert!(first["matches"][0]["end"].as_u64() > first["matches"][0]["start"].as_u64());
}

#[test]
fn malformed_event_line_is_named_and_exit_2() {
    let scratch = Scratch::new("malformed_event_line_is_named_and_exit_2");
    let path = scratch.file("bad.jsonl", "{\"id\":\"x\",\"payload\":\"a\"}\nnot json\n");
    let output = shieldx(&["detect", "--input", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(2));
    let err = text(&output.stderr);
    assert!(err.contains("bad.jsonl:2"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn rules_check_reports_line_and_field_and_exit_1() {
    let scratch = Scratch::new("rules_check_reports_line_and_field_and_exit_1");
    let path = scratch.file(
        "rules.yaml",
        "rules:\n  - id: a\n    title: t\n    severity: urgent\n    match: { regex: '(' }\n",
    );
    let output = shieldx(&["rules", "check", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output.stdout);
    assert!(
        out.contains(":line 4, column 15: rules[0].severity: unknown severity `urgent`"),
        "{out}"
    );
    assert!(
        out.contains(":line 5, column 21: rules[0].match.regex: invalid regex"),
        "{out}"
    );

    let ok = shieldx(&["rules", "check", "default"]);
    assert!(ok.status.success());
    assert!(text(&ok.stdout).starts_with("ok: "), "{}", text(&ok.stdout));
}

#[test]
fn eval_rejects_bad_labels_and_duplicate_ids() {
    let scratch = Scratch::new("eval_rejects_bad_labels_and_duplicate_ids");
    let path = scratch.file(
        "labels.jsonl",
        "{\"id\":\"x\",\"payload\":\"a\",\"label\":\"evil\"}\n",
    );
    let output = shieldx(&["eval", "--labeled", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("label must be"),
        "{}",
        text(&output.stderr)
    );
    let dup = scratch.file(
        "dup.jsonl",
        "{\"id\":\"x\",\"label\":\"benign\"}\n{\"id\":\"x\",\"label\":\"benign\"}\n",
    );
    let output = shieldx(&["eval", "--labeled", dup.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("duplicate event id"),
        "{}",
        text(&output.stderr)
    );
}
