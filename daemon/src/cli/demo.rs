//! `shieldx demo`: a 4-validator cluster in this process on embedded
//! defaults (temporary directory, loopback ports), driven over its gRPC API
//! by a generated sensor workload, with a live progress display, a summary
//! and an agreement check (DESIGN.md section 5).
//!
//! The nodes are the real daemon: tonic peer streams, redb storage, PBFT
//! with BLS commit certificates, the VRF leader schedule, detection and the
//! credits ledger. Only the process boundary is saved.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use shieldx_core::app::{Transaction, TransferLeg};
use shieldx_core::codec::Encode as _;
use shieldx_core::consensus::Request;
use shieldx_core::crypto::ed25519::SigningKey;
use shieldx_daemon::node::api::{self, AuthedClient};
use shieldx_daemon::node::local::LocalCluster;
use shieldx_daemon::proto::{
    GetBlockRequest, GetStateRequest, SecurityEvent, SubmitEventsRequest, SubmitTransactionRequest,
};
use shieldx_sim::workload::{Workload, WorkloadConfig};

use super::CliError;

/// Options of `shieldx demo`; every one has an embedded default.
#[derive(Debug, Args)]
pub(super) struct DemoArguments {
    /// Number of validators.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(4..=16))]
    validators: u16,
    /// Security events to submit.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Events per SubmitEvents call.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1024))]
    batch: u64,
    /// Concurrent submitters.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seed of the generated workload (which events, which attacks).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the cluster running after the summary, until Ctrl-C, so that
    /// the hints can be tried.
    #[arg(long)]
    keep_running: bool,
}

fn demo_error(e: impl std::fmt::Display) -> CliError {
    CliError::Node(e.to_string())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn run(arguments: &DemoArguments, out: &mut dyn Write) -> Result<(), CliError> {
    // Node logs only on request: RUST_LOG=shieldx_daemon=debug shieldx demo
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(demo_error)?;
    let dir = std::env::temp_dir().join(format!("shieldx-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = runtime.block_on(demo(arguments, &dir, out));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn submit_signed(
    client: &mut AuthedClient,
    chain_id: &[u8],
    key: &SigningKey,
    request_id: u64,
    tx: Transaction,
) -> Result<(), CliError> {
    let request = Request::sign(chain_id, key, request_id, tx.to_bytes());
    let response = client
        .submit_transaction(SubmitTransactionRequest {
            request: request.to_encoded(),
        })
        .await
        .map_err(demo_error)?
        .into_inner();
    if !response.applied {
        return Err(demo_error(format!(
            "transaction rejected: {}",
            response.rejection
        )));
    }
    Ok(())
}

fn severity_line(alerts: &BTreeMap<String, u64>) -> String {
    ["critical", "high", "medium", "low"]
        .iter()
        .map(|s| format!("{s} {}", alerts.get(*s).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn demo(
    arguments: &DemoArguments,
    dir: &std::path::Path,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let n = usize::from(arguments.validators);
    let cluster = LocalCluster::start(n, dir, |config| {
        config.consensus.request_timeout_ms = 1000;
    })
    .await
    .map_err(super::node::node_error)?;
    writeln!(
        out,
        "shieldx demo: {n} validators in this process (tonic over loopback, redb in {})",
        dir.display()
    )?;
    for i in 0..n {
        writeln!(
            out,
            "  validator {i}: api {}  metrics http://{}/metrics",
            cluster.api(i),
            cluster.metrics(i)
        )?;
    }
    let chain_id = b"shieldx-local".to_vec();
    let mut clients = Vec::new();
    for i in 0..n {
        clients.push(
            cluster
                .client(i, &cluster.testnet.tokens.admin)
                .await
                .map_err(super::node::node_error)?,
        );
    }

    // Credits: the admin mints, then pays a sensor operator.
    let admin = &cluster.testnet.admin;
    let operator = SigningKey::from_slice(&blake3::hash(b"shieldx demo operator").as_bytes()[..])
        .map_err(demo_error)?;
    let operator_account = operator.verifying_key().to_bytes();
    let now = unix_ms();
    submit_signed(
        &mut clients[0],
        &chain_id,
        admin,
        now,
        Transaction::Mint {
            time_ms: now,
            key: b"demo-mint".to_vec(),
            to: admin.verifying_key().to_bytes(),
            amount: 1_000_000,
        },
    )
    .await?;
    submit_signed(
        &mut clients[1 % n],
        &chain_id,
        admin,
        now + 1,
        Transaction::Transfer {
            time_ms: now,
            key: b"demo-pay-operator".to_vec(),
            legs: vec![TransferLeg {
                to: operator_account,
                amount: 250_000,
            }],
        },
    )
    .await?;
    writeln!(
        out,
        "credits: admin minted 1000000 and paid 250000 to a sensor operator"
    )?;

    // The workload: generated labelled HTTP events, submitted concurrently
    // to every validator.
    let workload: Vec<SecurityEvent> = Workload::new(WorkloadConfig {
        seed: arguments.seed,
        malicious_ratio: 0.2,
    })
    .take(arguments.events as usize)
    .map(|e| {
        let label = if e.malicious { "malicious" } else { "benign" };
        let mut event = api::security_event(e.into_event());
        event
            .headers
            .insert("x-shieldx-label".to_string(), label.to_string());
        event
    })
    .collect();
    let malicious = workload
        .iter()
        .filter(|e| {
            e.headers
                .get("x-shieldx-label")
                .is_some_and(|l| l == "malicious")
        })
        .count();
    let chunks: Vec<Vec<SecurityEvent>> = workload
        .chunks(arguments.batch as usize)
        .map(<[SecurityEvent]>::to_vec)
        .collect();
    let chunks = Arc::new(std::sync::Mutex::new(chunks.into_iter().enumerate()));
    let submitted = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let progress = indicatif::ProgressBar::new(arguments.events);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} events  {msg}",
        )
        .map_err(demo_error)?
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..arguments.concurrency.max(1) {
        let mut client = clients[worker % n].clone();
        let chunks = chunks.clone();
        let submitted = submitted.clone();
        let failures = failures.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let next = chunks.lock().map(|mut c| c.next()).unwrap_or(None);
                let Some((_, events)) = next else { return };
                let count = events.len() as u64;
                let mut attempts = 0;
                loop {
                    match client
                        .submit_events(SubmitEventsRequest {
                            events: events.clone(),
                        })
                        .await
                    {
                        Ok(_) => {
                            submitted.fetch_add(count, Ordering::Relaxed);
                            progress.inc(count);
                            break;
                        }
                        Err(_) if attempts < 5 => {
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(_) => {
                            failures.fetch_add(count, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        }));
    }
    let mut watcher = clients[0].clone();
    let all_done = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    tokio::pin!(all_done);
    loop {
        tokio::select! {
            biased;
            () = &mut all_done => break,
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                if let Ok(state) = watcher.get_state(GetStateRequest::default()).await {
                    let state = state.into_inner();
                    let rate = submitted.load(Ordering::Relaxed) as f64
                        / started.elapsed().as_secs_f64().max(1e-3);
                    progress.set_message(format!(
                        "height {}  {:.0} events/s  alerts: {}",
                        state.height,
                        rate,
                        severity_line(&state.alerts_by_severity.into_iter().collect())
                    ));
                }
            }
        }
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let committed = submitted.load(Ordering::Relaxed);
    writeln!(
        out,
        "workload: {committed} events committed ({malicious} labelled malicious) in {elapsed:.1} s, {:.0} events/s; {} failed",
        committed as f64 / elapsed.max(1e-3),
        failures.load(Ordering::Relaxed)
    )?;

    // Agreement: every validator reaches the same height, state digest and
    // block digests.
    let deadline = Instant::now() + Duration::from_secs(30);
    let states = loop {
        let mut states = Vec::new();
        for client in &mut clients {
            states.push(
                client
                    .get_state(GetStateRequest {
                        account: hex::encode(operator_account),
                    })
                    .await
                    .map_err(demo_error)?
                    .into_inner(),
            );
        }
        let top = states.iter().map(|s| s.height).max().unwrap_or(0);
        let settled = states
            .iter()
            .all(|s| s.height == top && s.app_digest == states[0].app_digest);
        if settled || Instant::now() > deadline {
            break states;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let top = states.iter().map(|s| s.height).max().unwrap_or(0);
    let mut disagreements = 0;
    for height in 1..=top {
        let mut digests = Vec::new();
        for client in &mut clients {
            if let Ok(block) = client.get_block(GetBlockRequest { height }).await {
                digests.push(block.into_inner().digest);
            }
        }
        if digests.len() < n || digests.windows(2).any(|w| w[0] != w[1]) {
            disagreements += 1;
        }
    }
    let same_state = states
        .iter()
        .all(|s| s.height == top && s.app_digest == states[0].app_digest);
    let state = &states[0];
    writeln!(
        out,
        "committed height {top} in view {} (primary: validator {}), stable checkpoint {}",
        state.view, state.primary, state.stable_checkpoint
    )?;
    writeln!(
        out,
        "alerts by severity: {}",
        severity_line(&state.alerts_by_severity.clone().into_iter().collect())
    )?;
    writeln!(
        out,
        "credits: supply {}, sensor operator balance {}",
        state.supply, state.balance
    )?;
    writeln!(
        out,
        "agreement: {n} validators at height {top}, state {}; {} of {top} blocks identical on every validator",
        if same_state { "identical" } else { "DIFFERENT" },
        top - disagreements
    )?;
    writeln!(out, "try it on a running testnet:")?;
    writeln!(
        out,
        "  shieldx node testnet --validators 4 --dir ./testnet && for i in 0 1 2 3; do shieldx node start --config ./testnet/node$i/config.toml & done"
    )?;
    writeln!(
        out,
        "  curl -s http://127.0.0.1:26900/metrics | grep shieldx_consensus_height"
    )?;
    writeln!(
        out,
        "  grpcurl -plaintext 127.0.0.1:26800 list shieldx.v1.Client"
    )?;
    writeln!(
        out,
        "  grpcurl -plaintext -d '{{}}' 127.0.0.1:26800 shieldx.v1.Client/GetState"
    )?;
    if arguments.keep_running {
        writeln!(
            out,
            "the cluster keeps running (api {}); Ctrl-C stops it",
            cluster.api(0)
        )?;
        out.flush()?;
        let _ = tokio::signal::ctrl_c().await;
    }
    cluster.stop().await.map_err(super::node::node_error)?;
    if !same_state || disagreements > 0 {
        return Err(CliError::Node(format!(
            "agreement check failed: {disagreements} block(s) differ or are missing"
        )));
    }
    writeln!(out, "result: ok")?;
    Ok(())
}
