//! `shieldx bench cluster`: N real nodes in this process (tonic over
//! loopback, redb on disk), driven over the gRPC API by concurrent
//! submitters for a fixed time; reports committed requests per second and
//! the latency distribution of submissions (API call to committed reply).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use shieldx_daemon::node::api;
use shieldx_daemon::node::local::LocalCluster;
use shieldx_daemon::proto::stream_events_response::Outcome;
use shieldx_daemon::proto::{SecurityEvent, StreamEventsRequest, SubmitEventsRequest};
use shieldx_sim::workload::{Workload, WorkloadConfig};
use tokio_stream::StreamExt as _;

use super::CliError;

#[derive(Debug, Subcommand)]
pub(super) enum BenchCommand {
    /// Load a local cluster over gRPC.
    Cluster(ClusterArguments),
}

#[derive(Debug, Args)]
pub(super) struct ClusterArguments {
    /// Validators.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    validators: u16,
    /// Seconds of load (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent submitters (spread over the validators).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Security events per request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    events_per_request: u64,
    /// Most requests per consensus batch.
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Batches the primary keeps in flight (`consensus.proposals_in_flight_max`).
    #[arg(long)]
    proposals_in_flight: Option<u64>,
    /// The primary's partial-batch timer (`consensus.batch_timeout_ms`).
    #[arg(long)]
    batch_timeout_ms: Option<u64>,
    /// Combined event requests each node keeps in consensus
    /// (`api.gateway_requests_in_flight`).
    #[arg(long)]
    gateway_in_flight: Option<usize>,
    /// Submit over this many `StreamEvents` streams (spread over the
    /// validators, the concurrency split among them) instead of one unary
    /// `SubmitEvents` call per submission.
    #[arg(long)]
    streams: Option<usize>,
}

fn error(e: impl std::fmt::Display) -> CliError {
    CliError::Node(e.to_string())
}

pub(super) fn run(command: BenchCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let BenchCommand::Cluster(arguments) = command;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(error)?;
    let dir = std::env::temp_dir().join(format!("shieldx-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = runtime.block_on(bench(&arguments, &dir, out));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn bench(
    arguments: &ClusterArguments,
    dir: &std::path::Path,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let n = usize::from(arguments.validators);
    let batch = arguments.batch;
    let cluster = LocalCluster::start(n, dir, |config| {
        config.consensus.batch_requests_max = batch;
        if let Some(n) = arguments.proposals_in_flight {
            config.consensus.proposals_in_flight_max = n;
        }
        if let Some(ms) = arguments.batch_timeout_ms {
            config.consensus.batch_timeout_ms = ms;
        }
        if let Some(n) = arguments.gateway_in_flight {
            config.api.gateway_requests_in_flight = n;
        }
        config.api.requests_per_second = 1_000_000;
        config.api.burst = 1_000_000;
        config.api.max_concurrent_streams = 4096;
    })
    .await
    .map_err(super::node::node_error)?;
    let token = cluster.testnet.tokens.submit.clone();
    let mut clients = Vec::new();
    for i in 0..n {
        clients.push(
            cluster
                .client(i, &token)
                .await
                .map_err(super::node::node_error)?,
        );
    }
    let events: Arc<Vec<SecurityEvent>> = Arc::new(
        Workload::new(WorkloadConfig {
            seed: 7,
            malicious_ratio: 0.2,
        })
        .take(4096)
        .map(|e| api::security_event(e.into_event()))
        .collect(),
    );
    let warmup = Duration::from_secs(1);
    let duration = Duration::from_secs(arguments.duration.max(1));
    let started = Instant::now();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let per_request = arguments.events_per_request as usize;
    let submission = move |worker: usize, k: usize| -> Vec<SecurityEvent> {
        (0..per_request)
            .map(|j| {
                let mut e = events[(k + j) % events.len()].clone();
                e.id = format!("bench-{worker}-{k}-{j}");
                e
            })
            .collect()
    };
    let mut tasks = Vec::new();
    let unary_workers = match arguments.streams {
        Some(_) => 0,
        None => arguments.concurrency.max(1),
    };
    if let Some(streams) = arguments.streams {
        let streams = streams.clamp(1, arguments.concurrency.max(1));
        for stream in 0..streams {
            let window = arguments.concurrency.max(1) / streams
                + usize::from(stream < arguments.concurrency.max(1) % streams);
            tasks.push(tokio::spawn(stream_worker(
                clients[stream % n].clone(),
                stream,
                window,
                submission.clone(),
                measuring.clone(),
                stop.clone(),
            )));
        }
    }
    for worker in 0..unary_workers {
        let mut client = clients[worker % n].clone();
        let submission = submission.clone();
        let measuring = measuring.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0u64;
            let mut k = worker * 7919;
            while !stop.load(Ordering::Relaxed) {
                let request = SubmitEventsRequest {
                    events: submission(worker, k),
                };
                k += per_request;
                let sent = Instant::now();
                let result = client.submit_events(request).await;
                if measuring.load(Ordering::Relaxed) {
                    match result {
                        Ok(_) => latencies.push(sent.elapsed()),
                        Err(_) => failed += 1,
                    }
                }
            }
            (latencies, failed)
        }));
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let measured_from = Instant::now();
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let measured = measured_from.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (mine, f) = task.await.map_err(error)?;
        latencies.extend(mine);
        failed += f;
    }
    latencies.sort();
    let committed = latencies.len() as f64 / measured.as_secs_f64();
    let how = match arguments.streams {
        Some(streams) => format!(
            "{} submissions in flight over {streams} StreamEvents streams",
            arguments.concurrency
        ),
        None => format!("{} unary SubmitEvents submitters", arguments.concurrency),
    };
    writeln!(
        out,
        "bench cluster: {n} validators in one process, {how}, {} event(s) per request, batches up to {batch}",
        arguments.events_per_request
    )?;
    writeln!(
        out,
        "committed: {} requests in {:.1} s = {:.0} requests/s ({:.0} events/s); {failed} failed",
        latencies.len(),
        measured.as_secs_f64(),
        committed,
        committed * arguments.events_per_request as f64
    )?;
    writeln!(
        out,
        "latency: p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.9).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    )?;
    let mut reader = cluster
        .client(0, &cluster.testnet.tokens.read)
        .await
        .map_err(super::node::node_error)?;
    let state = reader
        .get_state(shieldx_daemon::proto::GetStateRequest::default())
        .await
        .map_err(error)?
        .into_inner();
    // Consensus requests (gateway-combined calls) over the whole run,
    // warm-up included, as node 0 committed them.
    let consensus_requests = cluster.nodes[0].shared.metrics.requests_committed.get();
    let busy: Vec<String> = cluster
        .nodes
        .iter()
        .map(|node| {
            format!(
                "{:.0}%",
                100.0 * node.shared.metrics.core_loop_busy.get() / started.elapsed().as_secs_f64()
            )
        })
        .collect();
    writeln!(
        out,
        "core loops busy (share of the run, per node): {}",
        busy.join(" ")
    )?;
    writeln!(
        out,
        "batches: height {} at the end, view {}, {consensus_requests} consensus requests ({:.1} per batch); run took {:.1} s",
        state.height,
        state.view,
        consensus_requests as f64 / state.height.max(1) as f64,
        started.elapsed().as_secs_f64()
    )?;
    cluster.stop().await.map_err(super::node::node_error)?;
    Ok(())
}

/// One `StreamEvents` stream keeping `window` submissions in flight: each
/// answer sends the next.
async fn stream_worker(
    mut client: api::AuthedClient,
    stream: usize,
    window: usize,
    submission: impl Fn(usize, usize) -> Vec<SecurityEvent>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::new();
    let mut failed = 0u64;
    let (tx, rx) = tokio::sync::mpsc::channel(window.max(1));
    let mut answers = match client
        .stream_events(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(_) => return (latencies, 1),
    };
    let worker = 1_000_000 + stream;
    let mut sent_at = std::collections::BTreeMap::new();
    let mut next_tag = 0u64;
    let mut send = |sent_at: &mut std::collections::BTreeMap<u64, Instant>| {
        let tag = next_tag;
        next_tag += 1;
        sent_at.insert(tag, Instant::now());
        tx.try_send(StreamEventsRequest {
            tag,
            events: submission(worker, tag as usize),
        })
        .is_ok()
    };
    for _ in 0..window {
        send(&mut sent_at);
    }
    while !stop.load(Ordering::Relaxed) {
        let Some(answer) = answers.next().await else {
            break;
        };
        let Ok(answer) = answer else {
            failed += 1;
            break;
        };
        let Some(at) = sent_at.remove(&answer.tag) else {
            continue;
        };
        if measuring.load(Ordering::Relaxed) {
            match answer.outcome {
                Some(Outcome::Committed(_)) => latencies.push(at.elapsed()),
                _ => failed += 1,
            }
        }
        send(&mut sent_at);
    }
    (latencies, failed)
}
