//! The validator node: a tokio driver around one `Replica<App<RedbStore>>`.
//!
//! One task (the *core loop*) owns the replica. Everything else talks to it
//! through one bounded inbox ([`Input`]):
//!
//! ```text
//!  peers --(tonic streams)--> PeerService --+
//!  clients --(gRPC API)-----> ApiService ---+--> inbox --> core loop --> NodeStore (redb, durable first)
//!  timers ----------------------------------+                  |--> peer queues --> PeerLink (dialers)
//!                                                              |--> replies to waiting API calls
//!                                                              '--> commit/alert notifications, metrics
//! ```
//!
//! The loop drains the replica's outputs after every input. Durable records
//! (and a newly stable checkpoint with its snapshot) are committed to redb
//! with immediate durability before any message of that drain is sent —
//! the core's durability contract. On start the node rebuilds its state from
//! its own disk: [`Replica::recover`] with the durable records (so it never
//! signs twice), then [`Replica::resume`] with its stored stable checkpoint,
//! snapshot and the blocks after it (checked like a peer's state transfer);
//! whatever it lacks beyond that it catches up by state transfer from peers.
//! The event log (`data/ledger.redb`) is rebuilt at each start from that
//! checkpoint: it is a projection of the consensus log, whose blocks and
//! certificates stay in `data/consensus.redb`.

pub mod api;
pub mod auth;
pub mod config;
pub mod gateway;
pub mod host;
pub mod keys;
pub mod local;
pub mod metrics;
pub mod peer;
pub mod storage;
pub mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shieldx_core::app::{App, AppConfig, INGEST_STREAM, Transaction};
use shieldx_core::codec::{self, Encode as _};
use shieldx_core::consensus::{
    DurableRecord, Evidence, EvidenceRecord, Output, Replica, ReplicaConfig, ReplicaKeys, Reply,
    Request, StateTransfer, Target, ValidatorSet,
};
use shieldx_core::crypto::ed25519::VerifyingKey;
use shieldx_core::ledger::{DomainEvent, EventRecord, EventStore as _};
use shieldx_core::staking::VrfSchedule;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::genesis::{GenesisError, ValidatorsFile};
use crate::proto::{self, PeerFrame, peer_frame::Frame};
use crate::store::RedbStore;
use config::NodeConfig;
use keys::NodeKeys;
use metrics::{KindLabel, Metrics, SeverityLabel};
use storage::{NodeStore, StoredBlock, WriteBatch};

/// Why the node cannot start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(String),
    /// The keys are missing, unreadable or unsafe.
    #[error("keys: {0}")]
    Keys(String),
    /// The genesis file is invalid.
    #[error("genesis: {0}")]
    Genesis(#[from] GenesisError),
    /// The storage failed or holds corrupt data.
    #[error("storage: {0}")]
    Storage(String),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("transport: {0}")]
    Transport(String),
    /// This binary was built with the simulator's test-only stand-in
    /// signatures, which authenticate nothing.
    #[error(
        "this build has the test-only feature simulated-signatures and authenticates nothing; \
         rebuild without --features fast-signatures to run a node"
    )]
    SimulatedSignatures,
}

impl NodeError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> NodeError {
        NodeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What the core loop takes.
#[derive(Debug)]
pub enum Input {
    /// A consensus message from an authenticated peer.
    Peer {
        /// The peer's validator index.
        from: u16,
        /// The canonical message bytes.
        bytes: Vec<u8>,
    },
    /// Client requests a peer admitted and relayed.
    Relayed {
        /// Canonical request encodings.
        requests: Vec<Vec<u8>>,
    },
    /// A client request submitted to this node's API.
    Submit {
        /// The signed request.
        request: Box<Request>,
        /// Where the committed reply goes.
        reply: gateway::AnswerSender,
        /// When the API received it.
        received: Instant,
    },
    /// Sensor events submitted to this node's API with a bearer token, for
    /// the gateway to sign (combined with other such calls).
    Events(gateway::Submission),
    /// A read of the committed state.
    State {
        /// An account to report on.
        account: Option<[u8; 32]>,
        /// The answer.
        reply: oneshot::Sender<proto::StateResponse>,
    },
    /// A read of one ledger event.
    Alert {
        /// The ledger sequence.
        sequence: u64,
        /// The answer (None: not an alert or not present).
        reply: oneshot::Sender<Option<proto::AlertResponse>>,
    },
}

/// A reply as delivered: the replica's reply and its signature.
#[derive(Debug, Clone)]
pub struct SignedReply {
    /// The reply.
    pub reply: Reply,
    /// The replica identity's signature over it.
    pub signature: [u8; 64],
}

/// What the core loop tells subscribers.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A block committed.
    Commit(proto::CommitNotice),
    /// An alert was raised.
    Alert(proto::AlertResponse),
}

/// Everything a running node shares between its tasks.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The chain id.
    pub chain_id: Vec<u8>,
    /// The inbox of the core loop.
    pub inbox: mpsc::Sender<Input>,
    /// The consensus store (blocks are read from it directly).
    pub store: Arc<NodeStore>,
    /// Commit and alert notifications.
    pub notices: broadcast::Sender<Notice>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Whether the node is ready (caught up, not changing view).
    pub ready: Arc<AtomicBool>,
    /// The node's keys (gateway keys sign sensor submissions).
    pub keys: Arc<NodeKeys>,
    /// The machine the node runs on.
    pub host: host::Host,
}

/// Everything read at start, before any task runs.
struct Prepared {
    config: NodeConfig,
    chain_id: Vec<u8>,
    validators: ValidatorSet,
    index: u16,
    keys: NodeKeys,
    admin: [u8; 32],
    stake_per_power: u64,
    data: PathBuf,
}

fn prepare(config: NodeConfig) -> Result<Prepared, NodeError> {
    let keys = NodeKeys::load(&config.node.home)?;
    let text = std::fs::read_to_string(&config.node.genesis)
        .map_err(|e| NodeError::io(&config.node.genesis, e))?;
    let file: ValidatorsFile = serde_json::from_str(&text).map_err(GenesisError::Json)?;
    let (chain_id, validators) = file.validator_set()?;
    let admin = file.admin_account()?;
    let stake_per_power = file.stake_per_power;
    let identity = keys.identity.verifying_key();
    let index = validators
        .validators()
        .iter()
        .position(|v| v.identity == identity)
        .ok_or_else(|| {
            NodeError::Keys("this node's identity is not in the genesis validator set".into())
        })? as u16;
    for peer in &config.peers {
        if validators.get(peer.validator).is_none() || peer.validator == index {
            return Err(NodeError::Config(format!(
                "peer {} is not another validator of the genesis",
                peer.validator
            )));
        }
    }
    let data = config.node.home.join("data");
    std::fs::create_dir_all(&data).map_err(|e| NodeError::io(&data, e))?;
    Ok(Prepared {
        config,
        chain_id,
        validators,
        index,
        keys,
        admin,
        stake_per_power,
        data,
    })
}

fn replica_config(prepared: &Prepared) -> ReplicaConfig {
    let c = &prepared.config.consensus;
    let mut config = ReplicaConfig::new(&prepared.chain_id, prepared.validators.clone());
    config.batch_requests_max = c.batch_requests_max;
    config.batch_timeout_ns = c.batch_timeout_ms * 1_000_000;
    config.proposals_in_flight_max = c.proposals_in_flight_max;
    config.request_timeout_ns = c.request_timeout_ms * 1_000_000;
    config.checkpoint_interval = c.checkpoint_interval;
    config.window = c.window;
    config
}

fn replica_keys(keys: &NodeKeys, index: u16) -> Result<ReplicaKeys, NodeError> {
    // The replica owns its copies; the node keeps its own for the transport.
    Ok(ReplicaKeys {
        index,
        identity: shieldx_core::crypto::ed25519::SigningKey::from_slice(
            &keys.identity.to_bytes()[..],
        )
        .map_err(|e| NodeError::Keys(e.to_string()))?,
        vote_key: shieldx_core::crypto::bls::BlsSecretKey::from_slice(
            &keys.vote_key.to_bytes()[..],
        )
        .map_err(|e| NodeError::Keys(e.to_string()))?,
        vrf_key: shieldx_core::crypto::vrf::VrfSecretKey::from_slice(&keys.vrf_key.to_bytes()[..])
            .map_err(|e| NodeError::Keys(e.to_string()))?,
    })
}

type NodeReplica = Replica<App<RedbStore>>;

/// Opens storage and rebuilds the replica from it.
fn open_replica(
    prepared: &Prepared,
    store: &NodeStore,
    started: Instant,
) -> Result<NodeReplica, NodeError> {
    let recovered = store.recover()?;
    let ledger_path = prepared.data.join("ledger.redb");
    if ledger_path.exists() {
        std::fs::remove_file(&ledger_path).map_err(|e| NodeError::io(&ledger_path, e))?;
    }
    let ledger = RedbStore::open(&ledger_path).map_err(|e| NodeError::Storage(e.to_string()))?;
    let mut app_config = AppConfig::new(prepared.chain_id.clone(), prepared.admin);
    app_config.validators = Some(prepared.validators.clone());
    app_config.genesis_stake_per_power = prepared.stake_per_power;
    let app = App::open(app_config, ledger).map_err(|e| NodeError::Storage(e.to_string()))?;
    let now = started.elapsed().as_nanos() as u64;
    let mut replica = Replica::recover(
        replica_config(prepared),
        replica_keys(&prepared.keys, prepared.index)?,
        Box::new(VrfSchedule),
        app,
        &recovered.records,
        now,
    )
    .map_err(|e| NodeError::Config(e.to_string()))?;
    let resumed_blocks = recovered.blocks_after.len();
    let (checkpoint, snapshot) = match recovered.stable {
        Some((checkpoint, snapshot)) => (checkpoint, Some(snapshot)),
        None => (replica.stable_checkpoint().clone(), None),
    };
    let from = checkpoint.sequence;
    if snapshot.is_some() || resumed_blocks > 0 {
        let transfer = StateTransfer {
            checkpoint,
            snapshot,
            batches: recovered
                .blocks_after
                .into_iter()
                .map(|b| b.certified)
                .collect(),
        };
        if let Err(rejection) = replica.resume(now, transfer) {
            tracing::warn!(%rejection, "stored state refused; catching up from peers");
        }
    }
    tracing::info!(
        checkpoint = from,
        blocks = resumed_blocks,
        height = replica.last_executed(),
        view = replica.view(),
        "resumed from disk"
    );
    Ok(replica)
}

/// A node that is running; [`RunningNode::wait`] returns when it stopped.
#[derive(Debug)]
pub struct RunningNode {
    /// The shared handles (for in-process clients and tests).
    pub shared: Shared,
    /// Where each server listens (peer, api, metrics).
    pub addresses: (SocketAddr, SocketAddr, SocketAddr),
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), NodeError>>>,
}

impl RunningNode {
    /// Asks every task to finish in-flight work and stop.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits for every task; the first error wins.
    pub async fn wait(self) -> Result<(), NodeError> {
        let mut result = Ok(());
        for task in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
                Err(e) => {
                    if result.is_ok() {
                        result = Err(NodeError::Transport(format!("task failed: {e}")));
                    }
                }
            }
        }
        result
    }
}

async fn bind(
    host: &host::Host,
    address: SocketAddr,
) -> Result<(host::Incoming, SocketAddr), NodeError> {
    host.network
        .listen(address)
        .await
        .map_err(|source| NodeError::Listen { address, source })
}

fn spawn_in<F>(span: &tracing::Span, task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(tracing::Instrument::instrument(task, span.clone()))
}

/// Starts a node from its configuration (inside a tokio runtime), on the
/// real machine.
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    start_on(config, host::Host::os()).await
}

/// Starts a node on `host`: its network, wall clock and entropy.
pub async fn start_on(config: NodeConfig, host: host::Host) -> Result<RunningNode, NodeError> {
    if shieldx_core::crypto::SIMULATED_SIGNATURES {
        return Err(NodeError::SimulatedSignatures);
    }
    let prepared = prepare(config)?;
    // Every task of this node logs inside it: several nodes in one
    // process (the demo, the deterministic tests) stay apart in the log.
    let span = tracing::info_span!("node", validator = prepared.index);
    let started = Instant::now();
    let store = Arc::new(NodeStore::open(&prepared.data.join("consensus.redb"))?);
    let replica = span.in_scope(|| open_replica(&prepared, &store, started))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (inbox_tx, inbox_rx) = mpsc::channel::<Input>(16_384);
    let (notices, _) = broadcast::channel(4096);
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let (peer_listener, peer_address) = bind(&host, prepared.config.network.peer_listen).await?;
    let (api_listener, api_address) = bind(&host, prepared.config.network.api_listen).await?;
    let (metrics_listener, metrics_address) =
        bind(&host, prepared.config.network.metrics_listen).await?;
    let addresses = (peer_address, api_address, metrics_address);

    let core_identity = replica_keys(&prepared.keys, prepared.index)?.identity;
    let keys = Arc::new(NodeKeys::load(&prepared.config.node.home)?);
    let tls = match &prepared.config.tls {
        Some(section) => Some(tls::TlsMaterial::load(&prepared.config.node.home, section)?),
        None => None,
    };
    let gateway = gateway::Gateway::new(
        &keys,
        host.clock.unix_ms() * 1000,
        prepared.config.api.gateway_requests_in_flight,
    );
    let shared = Shared {
        chain_id: prepared.chain_id.clone(),
        inbox: inbox_tx.clone(),
        store: store.clone(),
        notices: notices.clone(),
        metrics: metrics.clone(),
        ready: ready.clone(),
        keys: keys.clone(),
        host: host.clone(),
    };

    let mut tasks = Vec::new();
    // Dialers, one per configured peer.
    let mut peer_queues = BTreeMap::new();
    for peer in &prepared.config.peers {
        let (tx, rx) = mpsc::channel(peer::PEER_QUEUE);
        peer_queues.insert(peer.validator, tx);
        let link = peer::PeerLink {
            index: prepared.index,
            peer: peer.validator,
            endpoint: format!(
                "{}://{}",
                if tls.is_some() { "https" } else { "http" },
                peer.address
            ),
            tls: tls.as_ref().map(tls::TlsMaterial::client),
            chain_id: prepared.chain_id.clone(),
            identity: shieldx_core::crypto::ed25519::SigningKey::from_slice(
                &keys.identity.to_bytes()[..],
            )
            .map_err(|e| NodeError::Keys(e.to_string()))?,
            metrics: metrics.clone(),
            host: host.clone(),
        };
        let shutdown = shutdown_rx.clone();
        tasks.push(spawn_in(&span, async move {
            link.run(rx, shutdown).await;
            Ok(())
        }));
    }

    // The peer server.
    let peer_service = peer::PeerService {
        index: prepared.index,
        chain_id: prepared.chain_id.clone(),
        validators: Arc::new(prepared.validators.clone()),
        inbox: inbox_tx.clone(),
        metrics: metrics.clone(),
        host: host.clone(),
        span: span.clone(),
    };
    let mut shutdown = shutdown_rx.clone();
    let mut server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(peer::KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(peer::KEEPALIVE_TIMEOUT));
    if let Some(tls) = &tls {
        server = server
            .tls_config(tls.server())
            .map_err(|e| NodeError::Keys(format!("tls: {e}")))?;
    }
    tasks.push(spawn_in(&span, async move {
        server
            .add_service(
                proto::peer_server::PeerServer::new(peer_service)
                    .max_decoding_message_size(peer::FRAME_BYTES_MAX)
                    .max_encoding_message_size(peer::FRAME_BYTES_MAX),
            )
            .serve_with_incoming_shutdown(peer_listener, async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(|e| NodeError::Transport(e.to_string()))
    }));

    // The client API.
    tasks.push(spawn_in(
        &span,
        api::serve(
            api_listener,
            shared.clone(),
            prepared.config.api.clone(),
            shutdown_rx.clone(),
        ),
    ));

    // Metrics and health.
    tasks.push(spawn_in(
        &span,
        metrics::serve_task(
            metrics_listener,
            metrics.clone(),
            ready.clone(),
            shutdown_rx.clone(),
        ),
    ));

    // The core loop.
    let core = CoreLoop {
        replica,
        store,
        chain_id: prepared.chain_id.clone(),
        identity: core_identity,
        index: prepared.index,
        peers: peer_queues,
        waiting: BTreeMap::new(),
        gateway,
        admitted_at: BTreeMap::new(),
        notices,
        metrics,
        ready,
        started,
        ledger_seen: 0,
        event_labels: BTreeMap::new(),
        clock: host.clock.clone(),
        last_view: 0,
        next_heartbeat: Instant::now(),
        last_own_request_id: 0,
        offences_reported: BTreeSet::new(),
    };
    // A core loop that fails (storage) takes the whole node down: a node
    // that keeps its streams open without a replica behind them would look
    // alive to its peers.
    let stop_all = shutdown_tx.clone();
    tasks.push(spawn_in(&span, async move {
        let result = core.run(inbox_rx, shutdown_rx).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "core loop failed; stopping the node");
        }
        let _ = stop_all.send(true);
        result
    }));

    Ok(RunningNode {
        shared,
        addresses,
        shutdown: shutdown_tx,
        tasks,
    })
}

/// How often a validator proves liveness (a heartbeat transaction).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Offences remembered as reported before the memory is cleared (a
/// repeated report costs one rejected transaction, nothing more).
const OFFENCES_REMEMBERED: usize = 4096;
/// How long a gateway request goes unanswered before this node hands it
/// on again.
const GATEWAY_RETRANSMIT: Duration = Duration::from_secs(2);
/// Inputs handled before outputs are drained (amortises the durable write).
const INPUTS_PER_DRAIN: usize = 512;

/// The callers waiting for one request's reply: one for a client's own
/// request, one or more for a gateway request.
struct Waiter {
    callers: Vec<gateway::Caller>,
    /// A gateway request and when this node last handed it on: the node is
    /// its client, so it retransmits it as a PBFT client would (an executed
    /// one is then answered from the reply cache, say after a state
    /// transfer skipped its execution here; a lost one is admitted again).
    retransmit: Option<(Request, Instant)>,
}

impl Waiter {
    fn refuse(self, refusal: &gateway::Refusal) {
        for caller in self.callers {
            let _ = caller.reply.send(Err(refusal.clone()));
        }
    }
}

fn refusal_of(rejection: &shieldx_core::consensus::Rejection) -> gateway::Refusal {
    match rejection {
        shieldx_core::consensus::Rejection::QueueFull(_) => {
            gateway::Refusal::Busy(rejection.to_string())
        }
        _ => gateway::Refusal::Rejected(rejection.to_string()),
    }
}

struct CoreLoop {
    replica: NodeReplica,
    store: Arc<NodeStore>,
    chain_id: Vec<u8>,
    identity: shieldx_core::crypto::ed25519::SigningKey,
    index: u16,
    peers: BTreeMap<u16, mpsc::Sender<PeerFrame>>,
    waiting: BTreeMap<([u8; 32], u64), Waiter>,
    gateway: gateway::Gateway,
    admitted_at: BTreeMap<([u8; 32], u64), Instant>,
    notices: broadcast::Sender<Notice>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    started: Instant,
    /// The last ledger sequence scanned for alerts and slashing.
    ledger_seen: u64,
    /// Labels of submitted events (event id -> malicious?), until scanned.
    event_labels: BTreeMap<String, bool>,
    /// Wall time, for heartbeat request ids.
    clock: Arc<dyn host::WallClock>,
    last_view: u64,
    next_heartbeat: Instant,
    /// The last request id this validator signed (heartbeats, evidence).
    last_own_request_id: u64,
    /// Offences already reported: (validator, view of a wrong NEW-VIEW).
    offences_reported: BTreeSet<(u16, Option<u64>)>,
}

impl CoreLoop {
    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Input>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        self.ledger_seen = self.replica.app().ledger().head().0;
        self.last_view = self.replica.view();
        self.drain()?;
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        loop {
            let deadline =
                self.started + Duration::from_nanos(self.replica.poll_timeout().min(u64::MAX / 2));
            let deadline = deadline.min(self.next_heartbeat);
            let woke: Instant;
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                input = inbox.recv() => {
                    woke = Instant::now();
                    let Some(input) = input else { break };
                    let mut inputs = vec![input];
                    while inputs.len() < INPUTS_PER_DRAIN {
                        match inbox.try_recv() {
                            Ok(input) => inputs.push(input),
                            Err(_) => break,
                        }
                    }
                    let count = inputs.len();
                    let at = Instant::now();
                    self.handle(inputs);
                    tracing::trace!(count, micros = at.elapsed().as_micros() as u64, "inputs handled");
                }
                () = tokio::time::sleep_until(deadline) => {
                    woke = Instant::now();
                    let now = self.now_ns();
                    self.replica.handle_timeout(now);
                    if Instant::now() >= self.next_heartbeat {
                        self.heartbeat();
                    }
                }
                _ = housekeeping.tick() => {
                    woke = Instant::now();
                    // Requests whose callers all gave up (timed out) free
                    // their gateway key's place.
                    let gateway = &mut self.gateway;
                    self.waiting.retain(|(client, _), w| {
                        let waited_for = w.callers.iter().any(|c| !c.reply.is_closed());
                        if !waited_for {
                            gateway.finished(client);
                        }
                        waited_for
                    });
                    let due = Instant::now();
                    let retransmit: Vec<Request> = self
                        .waiting
                        .values_mut()
                        .filter_map(|w| w.retransmit.as_mut())
                        .filter(|(_, sent)| due.duration_since(*sent) >= GATEWAY_RETRANSMIT)
                        .map(|(request, sent)| {
                            *sent = due;
                            request.clone()
                        })
                        .collect();
                    if !retransmit.is_empty() {
                        tracing::debug!(requests = retransmit.len(), "retransmitting gateway requests");
                        self.admit(retransmit);
                    }
                    if self.admitted_at.len() > 1_000_000 {
                        self.admitted_at.clear();
                    }
                }
            }
            self.drain()?;
            // Answers free gateway keys; calls queued for them go now.
            if self.gateway.ready() {
                self.admit(Vec::new());
                self.drain()?;
            }
            self.metrics
                .core_loop_busy
                .inc_by(woke.elapsed().as_secs_f64());
        }
        // In-flight work: whatever the replica has queued is made durable
        // and sent before the loop returns.
        self.drain()?;
        tracing::info!(height = self.replica.last_executed(), "core loop stopped");
        Ok(())
    }

    fn heartbeat(&mut self) {
        self.next_heartbeat = Instant::now() + HEARTBEAT_INTERVAL;
        let time_ms = self.clock.unix_ms();
        self.submit_own(time_ms, Transaction::Heartbeat { time_ms });
    }

    /// Submits evidence the replica found as a transaction, so that the
    /// offence is slashed through the committed log. One report per
    /// equivocator (equivocation tombstones) and per wrong NEW-VIEW view;
    /// the application slashes each offence once however many validators
    /// report it.
    fn report_offence(&mut self, evidence: Evidence) {
        let key = (
            evidence.validator(),
            (!evidence.is_equivocation()).then(|| evidence.slot().0),
        );
        if self.offences_reported.len() >= OFFENCES_REMEMBERED {
            self.offences_reported.clear();
        }
        if !self.offences_reported.insert(key) {
            return;
        }
        let time_ms = self.clock.unix_ms();
        tracing::warn!(
            validator = key.0,
            equivocation = evidence.is_equivocation(),
            "evidence found; reporting it for slashing"
        );
        let evidence = Box::new(EvidenceRecord::new(&self.chain_id, evidence));
        self.submit_own(time_ms, Transaction::Evidence { time_ms, evidence });
    }

    /// Signs `tx` with this validator's identity and submits it as a request.
    fn submit_own(&mut self, time_ms: u64, tx: Transaction) {
        // Request ids are wall-clock milliseconds, so they keep increasing
        // across restarts (a repeated id would be answered from the cache).
        let id = time_ms.max(self.last_own_request_id + 1);
        self.last_own_request_id = id;
        let request = Request::sign(&self.chain_id, &self.identity, id, tx.to_bytes());
        let now = self.now_ns();
        if self.replica.handle_request(now, request.clone()).is_ok() {
            self.relay(vec![request]);
        }
    }

    fn relay(&mut self, requests: Vec<Request>) {
        if requests.is_empty() {
            return;
        }
        let encoded: Vec<Vec<u8>> = requests.iter().map(|r| r.to_encoded()).collect();
        let frame = PeerFrame {
            frame: Some(Frame::Requests(proto::RequestBatch { requests: encoded })),
        };
        for queue in self.peers.values() {
            let _ = queue.try_send(frame.clone());
        }
    }

    fn reject(&self, kind: &str) {
        self.metrics
            .rejected
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    fn handle(&mut self, inputs: Vec<Input>) {
        let now = self.now_ns();
        let mut submitted = Vec::new();
        let mut relayed = Vec::new();
        for input in inputs {
            match input {
                Input::Peer { from, bytes } => {
                    if let Err(rejection) = self.replica.handle_bytes(now, from, &bytes) {
                        self.reject(rejection.kind());
                    }
                }
                Input::Relayed { requests } => {
                    for bytes in requests {
                        match codec::decode_exact::<Request>(&bytes) {
                            Ok(request) => relayed.push(request),
                            Err(_) => self.reject("malformed_request"),
                        }
                    }
                }
                Input::Submit {
                    request,
                    reply,
                    received,
                } => {
                    self.label_events(&request);
                    let key = (request.client.to_bytes(), request.request_id);
                    let caller = gateway::Caller {
                        reply,
                        events: None,
                        received,
                    };
                    self.waiting.insert(
                        key,
                        Waiter {
                            callers: vec![caller],
                            retransmit: None,
                        },
                    );
                    submitted.push(*request);
                }
                Input::Events(mut submission) => {
                    self.record_labels(std::mem::take(&mut submission.labels));
                    if let Err(refused) = self.gateway.enqueue(submission) {
                        self.reject("gateway_queue_full");
                        let _ = refused.reply.send(Err(gateway::Refusal::Busy(
                            "the node's gateway queue is full; retry later".into(),
                        )));
                    }
                }
                Input::State { account, reply } => {
                    let _ = reply.send(self.state(account));
                }
                Input::Alert { sequence, reply } => {
                    let _ = reply.send(self.alert(sequence));
                }
            }
        }
        self.admit(submitted);
        if !relayed.is_empty() {
            let results = self.replica.handle_requests(now, relayed.clone());
            for (request, result) in relayed.iter().zip(results) {
                if result.is_ok() {
                    self.admitted_at.insert(
                        (request.client.to_bytes(), request.request_id),
                        Instant::now(),
                    );
                }
            }
        }
    }

    /// Hands this node's clients' requests to the replica, with requests
    /// the gateway combines from the queued event calls, and relays what was
    /// admitted.
    fn admit(&mut self, mut submitted: Vec<Request>) {
        let time_ms = self.clock.unix_ms();
        for (request, callers) in self.gateway.combine(&self.chain_id, time_ms) {
            let key = (request.client.to_bytes(), request.request_id);
            let retransmit = Some((request.clone(), Instant::now()));
            self.waiting.insert(
                key,
                Waiter {
                    callers,
                    retransmit,
                },
            );
            submitted.push(request);
        }
        if submitted.is_empty() {
            return;
        }
        let now = self.now_ns();
        let results = self.replica.handle_requests(now, submitted.clone());
        let mut admitted = Vec::new();
        for (request, result) in submitted.into_iter().zip(results) {
            let key = (request.client.to_bytes(), request.request_id);
            match result {
                Ok(()) => {
                    self.admitted_at.insert(key, Instant::now());
                    admitted.push(request);
                }
                // A retry: the cached reply is among the outputs.
                Err(shieldx_core::consensus::Rejection::AlreadyExecuted) => {}
                Err(shieldx_core::consensus::Rejection::Duplicate) => {
                    admitted.push(request);
                }
                Err(rejection) => {
                    self.reject(rejection.kind());
                    if let Some(waiter) = self.waiting.remove(&key) {
                        self.gateway.finished(&key.0);
                        waiter.refuse(&refusal_of(&rejection));
                    }
                }
            }
        }
        self.relay(admitted);
    }

    fn record_labels(&mut self, labels: Vec<(String, bool)>) {
        if labels.is_empty() {
            return;
        }
        if self.event_labels.len() > 1_000_000 {
            self.event_labels.clear();
        }
        self.event_labels.extend(labels);
    }

    fn label_events(&mut self, request: &Request) {
        if let Ok(Transaction::SubmitEvents { events, .. }) =
            Transaction::decode_exact(&request.payload)
        {
            for event in events {
                if let Some((_, label)) = event.headers.iter().find(|(n, _)| n == "x-shieldx-label")
                {
                    self.event_labels
                        .insert(event.id.clone(), label.eq_ignore_ascii_case("malicious"));
                }
            }
            if self.event_labels.len() > 1_000_000 {
                self.event_labels.clear();
            }
        }
    }

    fn state(&self, account: Option<[u8; 32]>) -> proto::StateResponse {
        let app = self.replica.app();
        let state = app.state();
        let height = self.replica.last_executed();
        let mut response = proto::StateResponse {
            chain_id: String::from_utf8_lossy(&self.chain_id).into_owned(),
            replica: u32::from(self.index),
            height,
            view: self.replica.view(),
            primary: u32::from(self.replica.primary()),
            stable_checkpoint: self.replica.stable_checkpoint().sequence,
            app_digest: shieldx_core::consensus::Application::state_digest(app).to_string(),
            supply: state.supply,
            alerts_by_severity: state
                .alerts_by_severity
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            ledger_head: app.ledger().head().0,
            ..Default::default()
        };
        if let Some(account) = account {
            response.balance = state.balance(&account);
            response.stake = state.stake(&account);
            let entries = state.unbonding.get(&account);
            response.unbonding = entries.map_or(0, |e| e.values().map(|u| u.amount).sum());
            response.unbonding_next_maturity = entries
                .and_then(|e| e.values().map(|u| u.matures).min())
                .unwrap_or(0);
            response.validator_status = format!("{:?}", state.status(&account));
        }
        response
    }

    fn alert(&self, sequence: u64) -> Option<proto::AlertResponse> {
        let entry = self
            .replica
            .app()
            .ledger()
            .store()
            .read(sequence, 1)
            .ok()?
            .into_iter()
            .find(|e| e.sequence == sequence)?;
        let record = EventRecord::decode(&entry.bytes).ok()?;
        alert_of(&record)
    }

    /// Performs every queued output, durable records first.
    fn drain(&mut self) -> Result<(), NodeError> {
        let mut outputs = Vec::new();
        while let Some(output) = self.replica.poll_output() {
            outputs.push(output);
        }
        if outputs.is_empty() {
            return Ok(());
        }
        let mut write = WriteBatch::default();
        for output in &outputs {
            match output {
                Output::Persist(record) => {
                    if let DurableRecord::StableCheckpoint(certificate) = record
                        && let Some(snapshot) =
                            self.replica.checkpoint_snapshot(certificate.sequence)
                    {
                        write.stable = Some((certificate.clone(), snapshot.to_vec()));
                    }
                    write.records.push(record.clone());
                }
                Output::Committed(committed) => write.blocks.push(StoredBlock {
                    height: committed.sequence,
                    certified: shieldx_core::consensus::CertifiedBatch {
                        batch: committed.batch.clone(),
                        certificate: committed.certificate.clone(),
                    },
                    state_digest: committed.state_digest,
                }),
                Output::Evidence(evidence) => write
                    .evidence
                    .push(EvidenceRecord::new(&self.chain_id, evidence.clone())),
                _ => {}
            }
        }
        // The durability contract: nothing below runs before this returns.
        let at = Instant::now();
        // The commit waits for the disk (fsync). On a multi-threaded runtime
        // the worker hands its other tasks to a new thread meanwhile, so the
        // node's network and API (and other nodes in this process) go on.
        let store = &self.store;
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| store.write(&write))?;
            }
            _ => store.write(&write)?,
        }
        tracing::trace!(
            outputs = outputs.len(),
            records = write.records.len(),
            blocks = write.blocks.len(),
            micros = at.elapsed().as_micros() as u64,
            "outputs made durable"
        );
        let mut offences = Vec::new();
        for output in outputs {
            match output {
                Output::Send { to, message } => {
                    let frame = PeerFrame {
                        frame: Some(Frame::Message(message.to_encoded())),
                    };
                    match to {
                        Target::All => {
                            for queue in self.peers.values() {
                                if queue.try_send(frame.clone()).is_err() {
                                    self.metrics
                                        .rejected
                                        .get_or_create(&KindLabel {
                                            kind: "peer_queue_full".into(),
                                        })
                                        .inc();
                                }
                            }
                        }
                        Target::Replica(peer) => {
                            if let Some(queue) = self.peers.get(&peer) {
                                let _ = queue.try_send(frame);
                            }
                        }
                    }
                }
                Output::Committed(committed) => {
                    self.metrics
                        .requests_committed
                        .inc_by(committed.batch.requests.len() as u64);
                    for request in &committed.batch.requests {
                        if let Some(at) = self
                            .admitted_at
                            .remove(&(request.client.to_bytes(), request.request_id))
                        {
                            self.metrics
                                .round_latency
                                .observe(at.elapsed().as_secs_f64());
                        }
                    }
                    let _ = self.notices.send(Notice::Commit(proto::CommitNotice {
                        height: committed.sequence,
                        digest: committed.certificate.digest.to_string(),
                        requests: committed.batch.requests.len() as u32,
                        state_digest: committed.state_digest.to_string(),
                    }));
                }
                Output::Reply(reply) => {
                    let key = (reply.client.to_bytes(), reply.request_id);
                    if let Some(waiter) = self.waiting.remove(&key) {
                        self.gateway.finished(&key.0);
                        let signature = reply.sign(&self.chain_id, &self.identity).to_bytes();
                        let reply = Arc::new(SignedReply { reply, signature });
                        for caller in waiter.callers {
                            self.metrics
                                .ingest_latency
                                .observe(caller.received.elapsed().as_secs_f64());
                            let _ = caller.reply.send(Ok(gateway::Answer {
                                reply: Arc::clone(&reply),
                                events: caller.events,
                            }));
                        }
                    }
                }
                Output::Evidence(evidence) => {
                    self.metrics.byzantine_faults.inc();
                    offences.push(evidence);
                }
                Output::EnteredView(view) => {
                    if view > self.last_view {
                        self.metrics.view_changes.inc();
                    }
                    self.last_view = view;
                    tracing::info!(
                        view,
                        primary = self.replica.primary_of(view),
                        "entered view"
                    );
                }
                Output::StateTransferred { sequence, .. } => {
                    tracing::info!(sequence, "state transferred");
                }
                _ => {}
            }
        }
        self.scan_ledger();
        let height = self.replica.last_executed();
        self.metrics.height.set(height as i64);
        self.metrics.view.set(self.replica.view() as i64);
        self.ready
            .store(!self.replica.is_changing_view(), Ordering::Relaxed);
        if offences.is_empty() {
            return Ok(());
        }
        for evidence in offences {
            self.report_offence(evidence);
        }
        // The reports' own outputs go out now, not at the next input.
        self.drain()
    }

    /// Reads the events appended since the last scan: alerts (metrics,
    /// detection quality for labelled events, notifications) and slashing.
    fn scan_ledger(&mut self) {
        let head = self.replica.app().ledger().head().0;
        if head <= self.ledger_seen {
            self.ledger_seen = head.min(self.ledger_seen);
            return;
        }
        let base = self.replica.app().ledger().base().sequence;
        let from = (self.ledger_seen + 1).max(base + 1);
        let Ok(entries) = self
            .replica
            .app()
            .ledger()
            .store()
            .read(from, (head - from + 1) as usize)
        else {
            return;
        };
        self.ledger_seen = head;
        for entry in entries {
            // The submitted events themselves (most of the bytes) are of no
            // interest here: only alerts and slashing are.
            if EventRecord::stream_of(&entry.bytes) == Ok(INGEST_STREAM) {
                continue;
            }
            let Ok(record) = EventRecord::decode(&entry.bytes) else {
                continue;
            };
            match &record.event {
                DomainEvent::AlertRaised {
                    severity, event_id, ..
                } => {
                    let label = SeverityLabel {
                        severity: severity.to_string(),
                    };
                    self.metrics.alerts.get_or_create(&label).inc();
                    match self.event_labels.remove(event_id) {
                        Some(true) => {
                            self.metrics.true_positives.get_or_create(&label).inc();
                        }
                        Some(false) => {
                            self.metrics.false_positives.get_or_create(&label).inc();
                        }
                        None => {}
                    }
                    if let Some(alert) = alert_of(&record) {
                        let _ = self.notices.send(Notice::Alert(alert));
                    }
                }
                DomainEvent::Slashed { .. } => {
                    self.metrics.slashings.inc();
                }
                _ => {}
            }
        }
    }
}

fn alert_of(record: &EventRecord) -> Option<proto::AlertResponse> {
    match &record.event {
        DomainEvent::AlertRaised {
            rule_id,
            severity,
            event_id,
            source,
            ..
        } => Some(proto::AlertResponse {
            sequence: record.sequence,
            rule_id: rule_id.clone(),
            severity: severity.to_string(),
            event_id: event_id.clone(),
            source: source.clone(),
            block_time_ms: record.time_ms,
        }),
        _ => None,
    }
}

/// Parses a hex account (ed25519 public key).
pub fn parse_account(hex_text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_text.trim()).map_err(|e| format!("account: {e}"))?;
    let key = VerifyingKey::from_slice(&bytes).map_err(|e| format!("account: {e}"))?;
    Ok(key.to_bytes())
}
