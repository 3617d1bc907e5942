//! Architecture Invariant: shieldx-core has no I/O stack. Its normal dependency
//! tree never reaches an async runtime, an HTTP/gRPC stack or an event loop.

use std::path::Path;
use std::process::Command;

const FORBIDDEN: &[&str] = &["tokio", "tonic", "mio", "hyper"];

#[test]
fn core_reaches_no_async_runtime_or_network_stack() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO"))
        .current_dir(&workspace)
        .args([
            "tree",
            "-p",
            "shieldx-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
        ])
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo tree failed: {stderr}");
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    // Guard against a vacuous pass: the tree must list the core and its crypto.
    assert!(
        crates.contains(&"shieldx-core"),
        "unexpected cargo tree output: {tree}"
    );
    assert!(
        crates.contains(&"curve25519-dalek"),
        "unexpected cargo tree output: {tree}"
    );
    let reached: Vec<&str> = crates
        .iter()
        .copied()
        .filter(|name| FORBIDDEN.contains(name))
        .collect();
    assert!(
        reached.is_empty(),
        "shieldx-core depends on {reached:?}:\n{tree}"
    );
}
