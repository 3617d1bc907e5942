//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`) through the
//! same body the fuzz target runs, so `cargo test` keeps the corpora passing.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&directory)
        .unwrap_or_else(|e| panic!("{}: {e}", directory.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "{target}: corpus is empty");
    for path in entries {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        body(&data);
    }
}

#[test]
fn vrf_verify_corpus() {
    replay("vrf_verify", shieldx_proptests::vrf_verify);
}

#[test]
fn bls_verify_corpus() {
    replay("bls_verify", shieldx_proptests::bls_verify);
}

#[test]
fn ed25519_verify_corpus() {
    replay("ed25519_verify", shieldx_proptests::ed25519_verify);
}

#[test]
fn consensus_message_corpus() {
    replay("consensus_message", shieldx_proptests::consensus_message);
}

#[test]
fn detect_rules_corpus() {
    replay("detect_rules", shieldx_proptests::detect_rules);
}

#[test]
fn detect_engine_corpus() {
    replay("detect_engine", shieldx_proptests::detect_engine);
}
