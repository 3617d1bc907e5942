//! `shieldx detect`, `shieldx eval`, `shieldx rules check` and
//! `shieldx gen events` (DESIGN.md section 5): the detection engine on JSON
//! lines.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{Value, json};
use shieldx_core::detect::eval::{Counts, Outcome, Report};
use shieldx_core::detect::{
    Alert, CompiledRules, Detector, DetectorConfig, Event, RuleSet, Severity, default_rules,
};
use shieldx_sim::workload::{Workload, WorkloadConfig};

use super::CliError;

/// The longest accepted input line (one event), in bytes.
const LINE_BYTES_MAX: u64 = 1 << 20;

#[derive(Debug, Args)]
pub(super) struct DetectArguments {
    /// Rule file (YAML), or `default` for the built-in web rule pack.
    #[arg(long, default_value = "default")]
    rules: String,
    /// Events as JSON lines; standard input if absent.
    #[arg(long)]
    input: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct EvalArguments {
    /// Rule file (YAML), or `default` for the built-in web rule pack.
    #[arg(long, default_value = "default")]
    rules: String,
    /// Labelled events as JSON lines (`label`: malicious or benign; optional
    /// `severity` and `class`).
    #[arg(long)]
    labeled: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(super) enum RulesCommand {
    /// Validate a rule file: every error with its line and field; exit 0 if
    /// valid, 1 if not.
    Check {
        /// The rule file (YAML), or `default`.
        file: String,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum GenCommand {
    /// Synthetic labelled HTTP events as JSON lines (the input of `eval`).
    Events {
        /// Seed; the same seed gives the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many events.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Share of malicious events, 0.0 to 1.0.
        #[arg(long, default_value_t = 0.1)]
        malicious_ratio: f64,
    },
}

/// One input line. Unknown keys are ignored so that sensors can add context.
#[derive(Debug, Deserialize)]
struct JsonEvent {
    id: String,
    #[serde(default)]
    ts: u64,
    #[serde(default)]
    source: String,
    #[serde(default)]
    sensor: String,
    #[serde(default = "http")]
    kind: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    label: Option<String>,
    severity: Option<String>,
    class: Option<String>,
}

fn http() -> String {
    "http".into()
}

impl JsonEvent {
    fn to_event(&self) -> Event {
        Event {
            id: self.id.clone(),
            ts: self.ts,
            source: self.source.clone(),
            sensor: self.sensor.clone(),
            kind: self.kind.clone(),
            payload: self.payload.as_bytes().to_vec(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        }
    }
}

/// Loads `default` or a rule file, turning problems into one error listing
/// every diagnostic.
pub(super) fn load_rules(spec: &str) -> Result<RuleSet, CliError> {
    if spec == "default" {
        return Ok(default_rules());
    }
    let text = std::fs::read_to_string(spec)
        .map_err(|e| CliError::Input(format!("cannot read rule file {spec}: {e}")))?;
    RuleSet::parse(&text).map_err(|e| CliError::Input(format!("{spec}: {e}")))
}

fn detector(spec: &str) -> Result<Detector, CliError> {
    let set = load_rules(spec)?;
    let compiled = CompiledRules::compile(&set).map_err(|e| CliError::Input(e.to_string()))?;
    Ok(Detector::new(Arc::new(compiled), DetectorConfig::default()))
}

/// Reads JSON lines, calling `each` with the 1-based line number and event;
/// blank lines are skipped, a malformed line is an error naming its number.
fn for_each_line(
    input: impl Read,
    name: &str,
    mut each: impl FnMut(usize, JsonEvent) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut reader = BufReader::new(input);
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        number += 1;
        let read = (&mut reader)
            .take(LINE_BYTES_MAX + 1)
            .read_line(&mut line)
            .map_err(|e| CliError::Input(format!("{name}:{number}: cannot read: {e}")))?;
        if read == 0 {
            return Ok(());
        }
        if read as u64 > LINE_BYTES_MAX {
            return Err(CliError::Input(format!(
                "{name}:{number}: line longer than {LINE_BYTES_MAX} bytes"
            )));
        }
        if line.trim().is_empty() {
            continue;
        }
        let event: JsonEvent = serde_json::from_str(&line)
            .map_err(|e| CliError::Input(format!("{name}:{number}: not a valid event: {e}")))?;
        each(number, event)?;
    }
}

fn open(path: &Path) -> Result<std::fs::File, CliError> {
    std::fs::File::open(path)
        .map_err(|e| CliError::Input(format!("cannot open {}: {e}", path.display())))
}

fn alert_json(alert: &Alert, event: &Event, rules: &CompiledRules) -> Value {
    let rule = rules.rule(alert);
    json!({
        "event_id": event.id,
        "rule_id": rule.id,
        "title": rule.title,
        "severity": alert.severity.name(),
        "tags": rule.tags,
        "payload_blake3": alert.payload_hash.to_string(),
        "matches": alert.matches.iter().map(|m| json!({
            "field": rule.fields.get(usize::from(m.field)).map(ToString::to_string),
            "start": m.start,
            "end": m.end,
        })).collect::<Vec<_>>(),
    })
}

pub(super) fn detect(arguments: &DetectArguments, out: &mut dyn Write) -> Result<(), CliError> {
    let mut detector = detector(&arguments.rules)?;
    let rules = Arc::clone(detector.rules());
    let mut alerts = Vec::new();
    let mut run = |input: &mut dyn Read, name: &str| {
        for_each_line(input, name, |_, event| {
            let event = event.to_event();
            alerts.clear();
            detector.inspect(&event, event.ts, &mut alerts);
            for alert in &alerts {
                writeln!(out, "{}", alert_json(alert, &event, &rules))?;
            }
            Ok(())
        })
    };
    match &arguments.input {
        Some(path) => run(&mut open(path)?, &path.display().to_string()),
        None => run(&mut std::io::stdin().lock(), "stdin"),
    }
}

fn counts_json(c: &Counts) -> Value {
    json!({
        "tp": c.tp, "fp": c.fp, "fn": c.fn_, "tn": c.tn,
        "precision": c.precision(), "recall": c.recall(), "f1": c.f1(),
    })
}

pub(super) fn eval(arguments: &EvalArguments, out: &mut dyn Write) -> Result<(), CliError> {
    let mut detector = detector(&arguments.rules)?;
    let name = arguments.labeled.display().to_string();
    let mut outcomes = Vec::new();
    let mut seen = BTreeSet::new();
    let mut alerts = Vec::new();
    let mut alert_count = 0u64;
    let mut by_rule: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for_each_line(open(&arguments.labeled)?, &name, |number, json| {
        let malicious = match json.label.as_deref() {
            Some("malicious") => true,
            Some("benign") => false,
            other => {
                return Err(CliError::Input(format!(
                    "{name}:{number}: label must be \"malicious\" or \"benign\", found {other:?}"
                )));
            }
        };
        let severity = match json.severity.as_deref() {
            None => None,
            Some(s) => Some(Severity::from_name(s).ok_or_else(|| {
                CliError::Input(format!("{name}:{number}: unknown severity {s:?}"))
            })?),
        };
        if !seen.insert(json.id.clone()) {
            return Err(CliError::Input(format!(
                "{name}:{number}: duplicate event id {:?} (matching is by id)",
                json.id
            )));
        }
        let event = json.to_event();
        alerts.clear();
        detector.inspect(&event, event.ts, &mut alerts);
        alert_count += alerts.len() as u64;
        for a in &alerts {
            let entry = by_rule
                .entry(detector.rules().rule(a).id.clone())
                .or_default();
            if malicious {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
        outcomes.push(Outcome {
            malicious,
            severity,
            class: json.class,
            alerted: alerts.iter().map(|a| a.severity).max(),
        });
        Ok(())
    })?;
    let report = Report::from_outcomes(&outcomes);
    let total = &report.total;
    let document = json!({
        "events": outcomes.len(),
        "alerts": alert_count,
        "tp": total.tp, "fp": total.fp, "fn": total.fn_, "tn": total.tn,
        "precision": total.precision(),
        "recall": total.recall(),
        "f1": total.f1(),
        "false_positive_rate": total.false_positive_rate(),
        "weighted_precision": report.weighted_precision,
        "weighted_recall": report.weighted_recall,
        "weighted_f1": report.weighted_f1,
        "by_severity": Severity::ALL.iter()
            .filter_map(|s| report.by_severity.get(s).map(|c| (s.name().to_string(), counts_json(c))))
            .collect::<serde_json::Map<_, _>>(),
        "by_class": report.by_class.iter()
            .map(|(k, c)| (k.clone(), counts_json(c)))
            .collect::<serde_json::Map<_, _>>(),
        "by_rule": by_rule.iter()
            .map(|(k, (on_malicious, on_benign))| (k.clone(), json!({"on_malicious": on_malicious, "on_benign": on_benign})))
            .collect::<serde_json::Map<_, _>>(),
    });
    let text = serde_json::to_string_pretty(&document)
        .map_err(|e| CliError::Input(format!("cannot render the report: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(())
}

pub(super) fn rules(command: RulesCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        RulesCommand::Check { file } => {
            let set = if file == "default" {
                default_rules()
            } else {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| CliError::Input(format!("cannot read rule file {file}: {e}")))?;
                match RuleSet::parse(&text) {
                    Ok(set) => set,
                    Err(e) => {
                        for d in &e.0 {
                            writeln!(out, "{file}:{d}")?;
                        }
                        return Err(CliError::RulesInvalid(e.0.len()));
                    }
                }
            };
            let compiled =
                CompiledRules::compile(&set).map_err(|e| CliError::Input(e.to_string()))?;
            let s = compiled.stats();
            writeln!(
                out,
                "ok: {} rules, {} inputs, {} automaton patterns, {} regexes ({} prefiltered), {} targets evaluated on every event",
                s.rules,
                s.inputs,
                s.patterns,
                s.regexes,
                s.prefiltered_regexes,
                s.unfiltered_targets
            )?;
            Ok(())
        }
    }
}

pub(super) fn generate(command: GenCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        GenCommand::Events {
            seed,
            count,
            malicious_ratio,
        } => {
            if !(0.0..=1.0).contains(&malicious_ratio) {
                return Err(CliError::Input(format!(
                    "--malicious-ratio must be between 0 and 1, got {malicious_ratio}"
                )));
            }
            let config = WorkloadConfig {
                seed,
                malicious_ratio,
            };
            let mut out = std::io::BufWriter::new(out);
            for e in Workload::new(config).take(count as usize) {
                let mut line = json!({
                    "id": e.id, "ts": e.ts, "source": e.source, "sensor": e.sensor,
                    "kind": e.kind, "payload": e.payload,
                    "label": if e.malicious { "malicious" } else { "benign" },
                    "class": e.class,
                });
                if let Some(severity) = e.severity {
                    line["severity"] = json!(severity);
                }
                writeln!(out, "{line}")?;
            }
            out.flush()?;
            Ok(())
        }
    }
}
