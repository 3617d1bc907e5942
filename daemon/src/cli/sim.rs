//! `shieldx sim`: deterministic simulation runs (DESIGN.md section 5).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use shieldx_sim::{RunReport, Scenario, Simulation};

use super::CliError;

#[derive(Debug, Subcommand)]
pub(super) enum SimCommand {
    /// One deterministic run. Exit 0 iff every invariant held; the last line is
    /// `trace-digest: <64 hex>`. On failure, prints each violated invariant and the
    /// exact command that replays the run.
    Run {
        /// Scenario file (TOML), see scenarios/.
        #[arg(long)]
        scenario: PathBuf,
        /// Seed; the same seed replays the same run exactly.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write a Chrome trace-event JSON of the run (opens in Perfetto): one
        /// track per node, message flows, drops, faults, commits, view changes.
        #[arg(long)]
        trace: Option<PathBuf>,
    },
    /// Minimises a failing run: drops Byzantine roles, timed faults, fault rates,
    /// clock models, workload and run length while the same invariant still
    /// breaks, and writes the smallest scenario found.
    Shrink {
        /// The failing scenario (TOML).
        #[arg(long)]
        scenario: PathBuf,
        /// The seed it fails under.
        #[arg(long)]
        seed: u64,
        /// Where to write the shrunk scenario.
        #[arg(long, default_value = "shrunk.toml")]
        out: PathBuf,
    },
    /// Many seeds, each with its own randomly drawn fault rates, latency model,
    /// Byzantine roles (up to f) and timed faults. Prints every failing seed with
    /// its derived scenario and the command that replays it; exit 1 if any failed.
    Swarm {
        /// Base scenario (TOML); its cluster, workload and settings are kept.
        #[arg(long)]
        scenario: PathBuf,
        /// How many seeds.
        #[arg(long)]
        seeds: u64,
        /// First seed.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
}

pub(super) fn run(command: SimCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        SimCommand::Run {
            scenario: path,
            seed,
            trace,
        } => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
            let scenario = Scenario::from_toml(&text)
                .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
            let mut simulation = Simulation::new(scenario, seed);
            if trace.is_some() {
                simulation = simulation.with_trace();
            }
            let bar = terminal_progress_bar(
                "{elapsed_precise} [{bar:30}] {pos}/{len} simulated ms  {msg}",
            );
            if let Some(bar) = bar.clone() {
                simulation = simulation.with_progress(Box::new(move |progress| {
                    bar.set_length(progress.end_ns / 1_000_000);
                    bar.set_position(progress.simulated_ns / 1_000_000);
                    bar.set_message(format!(
                        "height {}, {} events",
                        progress.committed_height, progress.events
                    ));
                }));
            }
            let report = simulation.run();
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if let (Some(file), Some(json)) = (&trace, &report.trace) {
                std::fs::write(file, json)
                    .map_err(|e| CliError::Input(format!("{}: {e}", file.display())))?;
            }
            write_report(out, &report)?;
            if report.passed() {
                writeln!(out, "trace-digest: {}", report.trace_digest)?;
                Ok(())
            } else {
                writeln!(
                    out,
                    "replay: shieldx sim run --scenario {} --seed {seed}",
                    path.display()
                )?;
                writeln!(out, "trace-digest: {}", report.trace_digest)?;
                Err(CliError::InvariantViolated(report.violations.len()))
            }
        }
        SimCommand::Swarm {
            scenario,
            seeds,
            from,
        } => swarm(&scenario, seeds, from, out),
        SimCommand::Shrink {
            scenario: path,
            seed,
            out: target,
        } => shrink(&path, seed, &target, out),
    }
}

fn shrink(
    path: &std::path::Path,
    seed: u64,
    target: &std::path::Path,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    let scenario = Scenario::from_toml(&text)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    let Some(shrunk) = shieldx_sim::shrink::shrink(&scenario, seed) else {
        writeln!(
            out,
            "{} passes under seed {seed}: nothing to shrink",
            scenario.name
        )?;
        return Ok(());
    };
    std::fs::write(target, shrunk.scenario.to_toml())
        .map_err(|e| CliError::Input(format!("{}: {e}", target.display())))?;
    writeln!(
        out,
        "shrunk in {} runs: {} -> {} timed faults, {} -> {} Byzantine roles, {} -> {} ms; still breaks \"{}\"",
        shrunk.runs,
        scenario.faults.len(),
        shrunk.scenario.faults.len(),
        scenario.byzantine.len(),
        shrunk.scenario.byzantine.len(),
        scenario.run.duration_ms,
        shrunk.scenario.run.duration_ms,
        shrunk.invariant
    )?;
    writeln!(out, "wrote {}", target.display())?;
    writeln!(
        out,
        "replay: shieldx sim run --scenario {} --seed {seed}",
        target.display()
    )?;
    Ok(())
}

fn swarm(
    path: &std::path::Path,
    seeds: u64,
    from: u64,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    let base = Scenario::from_toml(&text)
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    if let Some(line) = signature_notice() {
        writeln!(out, "{line}")?;
    }
    let mut failed = 0usize;
    let bar = terminal_progress_bar("{elapsed_precise} [{bar:30}] {pos}/{len} seeds  {msg}");
    if let Some(bar) = &bar {
        bar.set_length(seeds);
    }
    for seed in from..from.saturating_add(seeds) {
        let scenario = shieldx_sim::swarm::derive(&base, seed);
        let report = Simulation::new(scenario.clone(), seed).run();
        if let Some(bar) = &bar {
            bar.inc(1);
            bar.set_message(format!("{failed} failed before seed {seed}"));
        }
        if report.passed() {
            writeln!(
                out,
                "seed {seed}: ok (height {}, view changes {})",
                report.committed_height, report.stats.view_changes
            )?;
            continue;
        }
        failed += 1;
        writeln!(out, "seed {seed}: FAILED")?;
        for violation in &report.violations {
            writeln!(
                out,
                "  VIOLATED {}: {}",
                violation.invariant, violation.detail
            )?;
        }
        writeln!(
            out,
            "  replay: {} sim swarm --scenario {} --seeds 1 --from {seed}",
            replay_program(),
            path.display()
        )?;
        writeln!(out, "  derived scenario:")?;
        for line in scenario.to_toml().lines() {
            writeln!(out, "    {line}")?;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    writeln!(out, "swarm: {} seeds, {failed} failed", seeds)?;
    if failed > 0 {
        Err(CliError::InvariantViolated(failed))
    } else {
        Ok(())
    }
}

/// The command that replays a seed: a run in the test-only fast-signature build
/// replays only in that build (its signatures, and so its digests, differ).
fn replay_program() -> &'static str {
    if shieldx_core::crypto::SIMULATED_SIGNATURES {
        "cargo run --release -p shieldx-daemon --features fast-signatures --"
    } else {
        "shieldx"
    }
}

/// Says so when this build's signatures are the simulator's stand-ins.
fn signature_notice() -> Option<&'static str> {
    shieldx_core::crypto::SIMULATED_SIGNATURES.then_some(
        "signatures: simulated stand-ins (test-only build with --features fast-signatures)",
    )
}

/// A progress bar on stderr with `template`, or `None` when stderr is not a
/// terminal (pipes, CI and tests get the plain report only).
fn terminal_progress_bar(template: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let style = indicatif::ProgressStyle::with_template(template)
        .ok()?
        .progress_chars("=> ");
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(style);
    Some(bar)
}

fn write_report(out: &mut dyn Write, report: &RunReport) -> std::io::Result<()> {
    let stats = &report.stats;
    writeln!(out, "scenario: {} (seed {})", report.scenario, report.seed)?;
    if let Some(line) = signature_notice() {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "simulated: {:.3} s, events {}, messages sent {} delivered {} dropped {} duplicated {}",
        report.simulated_ns as f64 / 1e9,
        stats.events,
        stats.messages_sent,
        stats.messages_delivered,
        stats.messages_dropped,
        stats.messages_duplicated
    )?;
    writeln!(
        out,
        "requests {}, committed height {}, view changes {} (max view {}), faults {}, evidence {}, commit checks {}",
        stats.requests,
        report.committed_height,
        stats.view_changes,
        stats.max_view,
        stats.faults,
        report.evidence,
        report.checks
    )?;
    if stats.ledger_write_failures + stats.corruptions_detected > 0 {
        writeln!(
            out,
            "storage faults: {} failed ledger writes ({} halts), {} corrupted records detected at restart",
            stats.ledger_write_failures, stats.halts, stats.corruptions_detected
        )?;
    }
    for (index, node) in report.nodes.iter().enumerate() {
        writeln!(
            out,
            "  node {index}: {} view {}{} executed {} stable {} pending {} ledger {} alerts {} supply {}",
            node.state,
            node.view,
            if node.changing_view {
                " (changing)"
            } else {
                ""
            },
            node.last_executed,
            node.stable_checkpoint,
            node.pending_requests,
            node.ledger_head,
            node.alerts,
            node.supply
        )?;
        if !node.tombstoned.is_empty() {
            writeln!(out, "    tombstoned validators: {:?}", node.tombstoned)?;
        }
        for (validator, since, until) in &node.jails {
            writeln!(
                out,
                "    validator {validator} jailed at {since} until {until} (stake {})",
                node.stakes
                    .get(usize::from(*validator))
                    .copied()
                    .unwrap_or(0)
            )?;
        }
        if !node.rejections.is_empty() {
            let list: Vec<String> = node
                .rejections
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            writeln!(out, "    rejected inputs: {}", list.join(", "))?;
        }
    }
    if report.passed() {
        writeln!(out, "invariants: all held")?;
    }
    for violation in &report.violations {
        writeln!(
            out,
            "VIOLATED {} at {:.3} s: {}",
            violation.invariant,
            violation.at_ns as f64 / 1e9,
            violation.detail
        )?;
    }
    Ok(())
}
