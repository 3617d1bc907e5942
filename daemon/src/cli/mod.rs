//! Argument parsing and dispatch for the `shieldx` binary.

use std::io::Write;

use clap::{Parser, Subcommand};
use shieldx_core::crypto::CryptoError;

mod bench;
mod bls;
mod demo;
mod detect;
mod evidence;
mod node;
mod sim;
mod vrf;

/// shieldx: a deterministic BFT network that orders security events, detects
/// attacks and keeps an auditable ledger.
#[derive(Debug, Parser)]
#[command(name = "shieldx", version, about, long_about = None)]
pub struct Arguments {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a local demonstration on embedded defaults and exit 0.
    Demo(demo::DemoArguments),
    /// ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381): keygen, prove, verify.
    #[command(subcommand)]
    Vrf(vrf::VrfCommand),
    /// BLS12-381 min-pk signatures, BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_.
    #[command(subcommand)]
    Bls(bls::BlsCommand),
    /// Deterministic simulation: run a scenario under a seed.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Run detection rules over events (JSON lines) and print alerts (JSON lines).
    Detect(detect::DetectArguments),
    /// Measure a rule set's quality on labelled events; prints a JSON report.
    Eval(detect::EvalArguments),
    /// Rule files: `check` validates one.
    #[command(subcommand)]
    Rules(detect::RulesCommand),
    /// Synthetic workloads: `events` writes labelled HTTP events.
    #[command(subcommand)]
    Gen(detect::GenCommand),
    /// Evidence of validator misbehaviour: `verify` checks a record offline.
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Benchmarks: `cluster` loads a local cluster over gRPC.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// A validator node: `init`, `testnet`, `start`.
    #[command(subcommand)]
    Node(node::NodeCommand),
}

/// Why a command failed; decides the exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// An argument is not valid hex.
    #[error("--{argument}: not valid hex: {source}")]
    Hex {
        /// The argument's name.
        argument: &'static str,
        /// The decoding failure.
        source: hex::FromHexError,
    },
    /// An argument decodes but has the wrong length or shape.
    #[error("--{argument}: {source}")]
    Malformed {
        /// The argument's name.
        argument: &'static str,
        /// The decoding failure.
        source: CryptoError,
    },
    /// The input is well formed but cryptographically invalid.
    #[error("invalid: {0}")]
    Invalid(CryptoError),
    /// The operating system refused randomness for key generation.
    #[error("no OS randomness available: {0}")]
    Randomness(String),
    /// An input file is unreadable or invalid.
    #[error("{0}")]
    Input(String),
    /// A rule file has errors (each printed on stdout with line and field).
    #[error("{0} error(s) in the rule file")]
    RulesInvalid(usize),
    /// Evidence is well formed but does not prove an offence.
    #[error("invalid evidence: {0}")]
    EvidenceInvalid(String),
    /// A simulation broke invariants (details are on stdout).
    #[error("{0} invariant violation(s)")]
    InvariantViolated(usize),
    /// The node failed to start or stopped with an error.
    #[error("node: {0}")]
    Node(String),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process exit code for this error (DESIGN.md section 5).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Invalid(_)
            | CliError::InvariantViolated(_)
            | CliError::RulesInvalid(_)
            | CliError::EvidenceInvalid(_) => 1,
            CliError::Hex { .. } | CliError::Malformed { .. } | CliError::Input(_) => 2,
            CliError::Randomness(_) | CliError::Output(_) | CliError::Node(_) => 1,
        }
    }
}

/// Runs one parsed command, writing its output to `out`.
pub fn run(arguments: Arguments, out: &mut dyn Write) -> Result<(), CliError> {
    match arguments.command {
        Command::Demo(demo) => demo::run(&demo, out),
        Command::Vrf(command) => vrf::run(command, out),
        Command::Bls(command) => bls::run(command, out),
        Command::Sim(command) => sim::run(command, out),
        Command::Detect(arguments) => detect::detect(&arguments, out),
        Command::Eval(arguments) => detect::eval(&arguments, out),
        Command::Rules(command) => detect::rules(command, out),
        Command::Gen(command) => detect::generate(command, out),
        Command::Evidence(command) => evidence::run(command, out),
        Command::Node(command) => node::run(command, out),
        Command::Bench(command) => bench::run(command, out),
    }
}

/// Decodes a hex argument.
fn hex_argument(argument: &'static str, value: &str) -> Result<Vec<u8>, CliError> {
    hex::decode(value.trim()).map_err(|source| CliError::Hex { argument, source })
}

/// Decodes a comma-separated list of hex values; an empty string is an empty list.
fn hex_list(argument: &'static str, value: &str) -> Result<Vec<Vec<u8>>, CliError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|item| hex_argument(argument, item))
        .collect()
}

/// Decodes a value, classifying a wrong length as malformed input (exit 2) and
/// any other rejection as invalid (exit 1).
fn decode<T>(
    argument: &'static str,
    bytes: &[u8],
    decoder: impl FnOnce(&[u8]) -> Result<T, CryptoError>,
) -> Result<T, CliError> {
    decoder(bytes).map_err(|source| match source {
        CryptoError::InvalidLength { .. } => CliError::Malformed { argument, source },
        other => CliError::Invalid(other),
    })
}

/// A cryptographically secure RNG seeded from the operating system.
fn os_rng() -> Result<rand::rngs::StdRng, CliError> {
    use rand::SeedableRng as _;
    rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng)
        .map_err(|e| CliError::Randomness(e.to_string()))
}
