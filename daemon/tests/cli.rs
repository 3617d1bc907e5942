//! The `shieldx` command line, run as a real process: outputs, exit codes and
//! one-line errors as DESIGN.md section 5 specifies.

use std::process::{Command, Output};

fn shieldx(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shieldx"))
        .args(arguments)
        .output()
        .expect("binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 output")
}

fn field(output: &Output, name: &str) -> String {
    let prefix = format!("{name}: ");
    stdout(output)
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no `{name}:` line in {:?}", stdout(output)))
}

// RFC 9381 Appendix B.3, Example 17.
const VRF_SECRET: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const VRF_PUBLIC: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const VRF_PI: &str = "f3141cd382dc42909d19ec5110469e4feae18300e94f304590abdced48aed5933bf0864a62558b3ed7f2fea45c92a465301b3bbf5e3e54ddf2d935be3b67926da3ef39226bbc355bdc9850112c8f4b02";
const VRF_BETA: &str = "eb4440665d3891d668e7e0fcaf587f1b4bd7fbfe99d0eb2211ccec90496310eb5e33821bc613efb94db5e5b54c70a848a0bef4553a41befc57663b56373a5031";

#[test]
fn vrf_prove_and_verify_match_rfc9381() {
    let proved = shieldx(&["vrf", "prove", "--secret", VRF_SECRET, "--alpha", "72"]);
    assert!(proved.status.success(), "{}", stderr(&proved));
    assert_eq!(field(&proved, "pi"), VRF_PI);
    assert_eq!(field(&proved, "beta"), VRF_BETA);

    let verified = shieldx(&[
        "vrf", "verify", "--public", VRF_PUBLIC, "--alpha", "72", "--proof", VRF_PI,
    ]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    assert_eq!(stdout(&verified), format!("beta: {VRF_BETA}\n"));
}

#[test]
fn vrf_verify_rejects_with_a_reason_and_exit_1() {
    let rejected = shieldx(&[
        "vrf", "verify", "--public", VRF_PUBLIC, "--alpha", "73", "--proof", VRF_PI,
    ]);
    assert_eq!(rejected.status.code(), Some(1));
    assert_eq!(
        stderr(&rejected),
        "shieldx: invalid: VRF proof does not verify\n"
    );
    assert!(stdout(&rejected).is_empty());
}

#[test]
fn malformed_input_is_one_line_and_exit_2() {
    let bad_hex = shieldx(&[
        "vrf", "verify", "--public", "zz", "--alpha", "", "--proof", VRF_PI,
    ]);
    assert_eq!(bad_hex.status.code(), Some(2));
    assert_eq!(stderr(&bad_hex).lines().count(), 1, "{}", stderr(&bad_hex));
    assert!(stderr(&bad_hex).starts_with("shieldx: --public: not valid hex"));

    let short = shieldx(&[
        "bls",
        "verify",
        "--public",
        "00",
        "--message",
        "",
        "--signature",
        "00",
    ]);
    assert_eq!(short.status.code(), Some(2));
    assert_eq!(
        stderr(&short),
        "shieldx: --public: BLS public key must be 48 bytes, got 1\n"
    );
}

#[test]
fn vrf_keygen_output_proves_and_verifies() {
    let keys = shieldx(&["vrf", "keygen"]);
    assert!(keys.status.success());
    let proved = shieldx(&[
        "vrf",
        "prove",
        "--secret",
        &field(&keys, "secret"),
        "--alpha",
        "00ff",
    ]);
    let verified = shieldx(&[
        "vrf",
        "verify",
        "--public",
        &field(&keys, "public"),
        "--alpha",
        "00ff",
        "--proof",
        &field(&proved, "pi"),
    ]);
    assert_eq!(verified.status.code(), Some(0));
    assert_eq!(field(&verified, "beta"), field(&proved, "beta"));
}

#[test]
fn bls_sign_aggregate_and_verify_round_trip() {
    let first = shieldx(&["bls", "keygen"]);
    let second = shieldx(&["bls", "keygen"]);
    assert!(first.status.success() && second.status.success());
    let message = "73686965646c78";
    let sign = |keys: &Output| {
        let signed = shieldx(&[
            "bls",
            "sign",
            "--secret",
            &field(keys, "secret"),
            "--message",
            message,
        ]);
        field(&signed, "signature")
    };
    let (sig_a, sig_b) = (sign(&first), sign(&second));
    let public_a = field(&first, "public");
    let public_b = field(&second, "public");

    let verify = |public: &str, signature: &str| {
        shieldx(&[
            "bls",
            "verify",
            "--public",
            public,
            "--message",
            message,
            "--signature",
            signature,
        ])
    };
    let valid = verify(&public_a, &sig_a);
    assert_eq!(valid.status.code(), Some(0));
    assert_eq!(stdout(&valid), "valid\n");
    let wrong = verify(&public_b, &sig_a);
    assert_eq!(wrong.status.code(), Some(1));
    assert_eq!(
        stderr(&wrong),
        "shieldx: invalid: BLS signature does not verify\n"
    );

    let aggregated = shieldx(&[
        "bls",
        "aggregate",
        "--signatures",
        &format!("{sig_a},{sig_b}"),
    ]);
    let aggregate = field(&aggregated, "signature");
    let publics = format!("{public_a},{public_b}");
    let fast = |publics: &str| {
        shieldx(&[
            "bls",
            "fast-aggregate-verify",
            "--publics",
            publics,
            "--message",
            message,
            "--signature",
            &aggregate,
        ])
    };
    assert_eq!(fast(&publics).status.code(), Some(0));
    assert_eq!(fast(&public_a).status.code(), Some(1));

    let each = |messages: &str| {
        shieldx(&[
            "bls",
            "aggregate-verify",
            "--publics",
            &publics,
            "--messages",
            messages,
            "--signature",
            &aggregate,
        ])
    };
    assert_eq!(each(&format!("{message},{message}")).status.code(), Some(0));
    assert_eq!(each(message).status.code(), Some(1));
}

#[test]
fn bls_sign_matches_the_independent_vectors() {
    // py_ecc: KeyGen(0x01 * 32) signs "abc" (vectors/bls12381_pop_py_ecc.json).
    let secret = "144b27828e305a2d67fc7f4eea6de706b405cdd1ab8ad2daec046ccdeeec8b79";
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../vectors/bls12381_pop_py_ecc.json")).expect("JSON");
    let expected = vectors["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| {
            c["op"] == "sign" && c["input"]["secret"] == secret && c["input"]["message"] == "616263"
        })
        .and_then(|c| c["output"].as_str())
        .expect("vector present")
        .to_owned();
    let signed = shieldx(&["bls", "sign", "--secret", secret, "--message", "616263"]);
    assert_eq!(field(&signed, "signature"), expected);
}

#[test]
fn demo_runs_on_embedded_defaults() {
    let demo = shieldx(&["demo", "--events", "2000"]);
    assert_eq!(demo.status.code(), Some(0), "{}", stderr(&demo));
    let text = stdout(&demo);
    assert!(text.contains("workload: 2000 events committed"), "{text}");
    assert!(text.contains("state identical"), "{text}");
    assert!(text.contains("sensor operator balance 250000"), "{text}");
    let alerts = text
        .lines()
        .find(|l| l.starts_with("alerts by severity:"))
        .expect("an alerts line");
    assert_ne!(
        alerts, "alerts by severity: critical 0, high 0, medium 0, low 0",
        "a workload with attacks raised no alert"
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.starts_with("result: ok")),
        "{text}"
    );
}

#[test]
fn sim_run_is_deterministic_and_writes_a_trace() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/primary-crash-n4.toml"
    );
    let trace = std::env::temp_dir().join(format!("shieldx-trace-{}.json", std::process::id()));
    let trace_arg = trace.to_str().expect("UTF-8 temp path");
    let first = shieldx(&[
        "sim",
        "run",
        "--scenario",
        scenario,
        "--seed",
        "5",
        "--trace",
        trace_arg,
    ]);
    assert_eq!(first.status.code(), Some(0), "{}", stdout(&first));
    let last_line = stdout(&first)
        .lines()
        .last()
        .map(str::to_owned)
        .expect("output");
    let digest = last_line
        .strip_prefix("trace-digest: ")
        .expect("last line is the trace digest");
    assert_eq!(digest.len(), 64);
    assert!(
        digest
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let second = shieldx(&["sim", "run", "--scenario", scenario, "--seed", "5"]);
    assert_eq!(
        stdout(&second).lines().last(),
        Some(last_line.as_str()),
        "same seed, same digest"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).expect("trace written"))
            .expect("valid JSON");
    let events = json.as_array().expect("a trace-event array");
    let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "thread_name").count(),
        4,
        "one track per node"
    );
    assert!(
        events.iter().any(|e| e["ph"] == "s") && events.iter().any(|e| e["ph"] == "f"),
        "message flows"
    );
    assert!(
        names.iter().any(|n| n.starts_with("fault: Crash")),
        "the crash is on the timeline"
    );
    assert!(
        names.iter().any(|n| n.starts_with("enter view ")),
        "the view change is on the timeline"
    );
    std::fs::remove_file(&trace).expect("temp file removed");
}

#[test]
fn sim_reports_a_bad_scenario_in_one_line() {
    let bad = std::env::temp_dir().join(format!("shieldx-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "name = \"x\"\n").expect("written");
    let output = shieldx(&["sim", "run", "--scenario", bad.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("scenario does not parse"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_file(&bad).expect("temp file removed");
}

#[test]
fn sim_swarm_runs_derived_seeds() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/normal-n4.toml");
    let output = shieldx(&[
        "sim",
        "swarm",
        "--scenario",
        scenario,
        "--seeds",
        "2",
        "--from",
        "11",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("seed 11: ok") && stdout(&output).contains("seed 12: ok"));
    assert_eq!(
        stdout(&output).lines().last(),
        Some("swarm: 2 seeds, 0 failed")
    );
}
