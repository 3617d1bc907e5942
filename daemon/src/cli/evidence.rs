//! `shieldx evidence verify`: checks an evidence record offline, with only the
//! validator-set file (DESIGN.md: accountability is third-party verifiable).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use shieldx_core::codec::decode_exact;
use shieldx_core::consensus::{EvidenceRecord, Phase};

use super::CliError;
use shieldx_daemon::genesis::ValidatorsFile;

/// Evidence commands.
#[derive(Debug, Subcommand)]
pub(super) enum EvidenceCommand {
    /// Verify an evidence record: exit 0 if valid, 1 if not (with the
    /// reason), 2 if a file is unreadable or malformed.
    Verify(VerifyArguments),
}

#[derive(Debug, Args)]
pub(super) struct VerifyArguments {
    /// The validator-set file (JSON; see `shieldx_daemon::genesis`).
    #[arg(long)]
    validators: PathBuf,
    /// The evidence record: its canonical encoding, in hex.
    #[arg(long)]
    evidence: PathBuf,
}

pub(super) fn run(command: EvidenceCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        EvidenceCommand::Verify(arguments) => verify(&arguments, out),
    }
}

fn verify(arguments: &VerifyArguments, out: &mut dyn Write) -> Result<(), CliError> {
    let (chain_id, validators) =
        ValidatorsFile::load(&arguments.validators).map_err(|e| CliError::Input(e.to_string()))?;
    let text = std::fs::read_to_string(&arguments.evidence).map_err(|e| {
        CliError::Input(format!("cannot read {}: {e}", arguments.evidence.display()))
    })?;
    let compact: String = text.split_whitespace().collect();
    let bytes = hex::decode(&compact).map_err(|source| CliError::Hex {
        argument: "evidence",
        source,
    })?;
    let record: EvidenceRecord = decode_exact(&bytes)
        .map_err(|e| CliError::Input(format!("--evidence: not an evidence record: {e}")))?;
    record
        .verify(&chain_id, &validators)
        .map_err(|e| CliError::EvidenceInvalid(e.to_string()))?;
    let (view, sequence, phase, validator) =
        (record.view, record.sequence, record.phase, record.validator);
    let identity = validators
        .get(validator)
        .map(|v| hex::encode(v.identity.to_bytes()))
        .unwrap_or_default();
    let phase = match phase {
        Phase::PrePrepare => "pre-prepare",
        Phase::Prepare => "prepare",
        Phase::Commit => "commit",
        _ => "unknown",
    };
    if record.evidence.is_equivocation() {
        writeln!(
            out,
            "valid: validator {validator} ({identity}) signed two digests at view {view}, sequence {sequence}, phase {phase}"
        )?;
    } else {
        writeln!(
            out,
            "valid: validator {validator} ({identity}) signed a NEW-VIEW for view {view} whose O is not the one its V determines (checkpoint {sequence})"
        )?;
    }
    writeln!(out, "evidence id: {}", record.id())?;
    Ok(())
}
