//! One deterministic run of a scenario: the event loop, the network, node
//! faults, Byzantine behaviours, and the audit digest.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use shieldx_core::app::{App, AppConfig, Transaction, TransferLeg};
use shieldx_core::codec::{self, Encode};
use shieldx_core::consensus::{
    Batch, CLIENT_WINDOW, CommitVote, DurableRecord, EvidenceRecord, Message, NewView, Output,
    PrePrepare, Replica, ReplicaConfig, ReplicaIndex, ReplicaKeys, Request, Sequence, Signed,
    Status, Target, Validator, ValidatorSet, Vote,
};
use shieldx_core::crypto::Digest;
use shieldx_core::crypto::bls::{BlsSecretKey, UncheckedSignature};
use shieldx_core::crypto::ed25519::SigningKey;
use shieldx_core::crypto::vrf::VrfSecretKey;
use shieldx_core::ledger::memory::MemoryStore;
use shieldx_core::staking::VrfSchedule;

use crate::audit::AuditDigest;
use crate::checker::{Checker, CheckerValidators, LivenessWindow, Violation};
use crate::fidelity::CheckedApp;
use crate::queue::EventQueue;
use crate::rng::SimRng;
use crate::scenario::{ByzantineRole, FaultAction, Latency, Scenario};

const MS: u64 = 1_000_000;
/// Bound on pending events: a run that needs more is a bug in the scenario or
/// the protocol, and fails loudly instead of exhausting memory.
const EVENTS_MAX: usize = 4_000_000;
/// Messages a replayer remembers.
const REPLAY_HISTORY_MAX: usize = 64;
/// Trace events kept at most; a trace beyond this says so and stops growing.
const TRACE_EVENTS_MAX: usize = 2_000_000;
/// Events at one simulated instant before the run is declared a livelock.
const EVENTS_AT_ONE_INSTANT_MAX: u64 = 200_000;
const CHAIN_ID: &[u8] = b"shieldx-sim";
/// Decoded messages kept for other receivers of the same bytes
/// ([`Simulation::decode`]); cleared whole when full.
const DECODED_MEMO_MAX: usize = 4_096;
/// A client retransmits a request not committed within this time (then with
/// doubling backoff, up to 8×).
const CLIENT_RETRY_MS: u64 = 500;
/// Genesis stake per unit of voting power: large enough that slashing tiers
/// move whole credits.
const GENESIS_STAKE_PER_POWER: u64 = 1_000;

/// The simulator runs the production application (`shieldx_core::app`) over
/// the in-memory ledger store: the same transactions, detection, credits
/// rules and snapshots as the daemon.
pub type SimApp = App<MemoryStore>;

/// The account of a simulated client: its ed25519 public key.
fn account_of(client: &SigningKey) -> [u8; 32] {
    client.verifying_key().to_bytes()
}

fn shieldx_sim_workload(seed: u64) -> crate::workload::Workload {
    crate::workload::Workload::new(crate::workload::WorkloadConfig {
        seed,
        malicious_ratio: 0.2,
    })
}

/// Replica `node`'s application; client 0 is the chain's admin (it mints).
/// Each replica's window tables hash with their own seed, as each daemon's do,
/// and every application runs beside a copy restored from its own snapshots
/// ([`CheckedApp`]).
fn new_app(
    admin: [u8; 32],
    validators: &ValidatorSet,
    scenario: &Scenario,
    node: ReplicaIndex,
) -> CheckedApp {
    let staking = &scenario.staking;
    let mut config = AppConfig::new(CHAIN_ID.to_vec(), admin);
    config.detector.max_keys_per_rule = scenario.detector.max_keys_per_rule;
    config.detector.hash_seed =
        0x5eed_0000_0000_0001 ^ u64::from(node).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    config.validators = Some(validators.clone());
    config.genesis_stake_per_power = GENESIS_STAKE_PER_POWER;
    config.slashing.liveness_window = staking.liveness_window;
    config.slashing.liveness_check_interval = staking.liveness_check_interval;
    config.slashing.jail_sequences = staking.jail_sequences;
    match App::open(config.clone(), MemoryStore::new()) {
        Ok(app) => CheckedApp::new(app, config),
        Err(e) => unreachable!("an empty in-memory ledger always opens: {e}"),
    }
}

/// The wall-clock time transactions carry: a fixed epoch plus simulated time.
fn sim_time_ms(now_ns: u64) -> u64 {
    1_767_225_600_000 + now_ns / 1_000_000
}

/// A validator's ECVRF key, derived like its other keys from its index.
fn vrf_key(node: ReplicaIndex) -> VrfSecretKey {
    VrfSecretKey::from_slice(&node_key_seed(node, "vrf")).expect("32-byte seed")
}

#[derive(Debug)]
enum Event {
    Deliver {
        from: ReplicaIndex,
        to: ReplicaIndex,
        bytes: Rc<Vec<u8>>,
        kind: &'static str,
        flow: u64,
    },
    Timer {
        node: ReplicaIndex,
    },
    /// The timer of a node's twin ([`ByzantineRole::Twin`]).
    TwinTimer {
        node: ReplicaIndex,
    },
    Submit {
        client: u16,
        request_id: u64,
    },
    /// A validator's heartbeat timer.
    Heartbeat {
        node: ReplicaIndex,
    },
    /// A client may send more of its backlog (a request of it committed).
    Pump {
        client: u16,
    },
    /// A client's retransmission timer for one request.
    Retry {
        client: u16,
        request_id: u64,
        attempt: u32,
    },
    /// A validator submits a transaction of its own (evidence it found, or
    /// its liveness heartbeat), signed with its identity key.
    ValidatorTx {
        node: ReplicaIndex,
        tx: Box<Transaction>,
    },
    Fault(FaultAction),
    FaultsStop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Up,
    Paused,
    Crashed,
}

#[derive(Debug)]
struct Node {
    replica: Replica<CheckedApp>,
    /// The second replica of a [`ByzantineRole::Twin`] validator: the same
    /// keys, its own memory, no disk. It shares the node's state and clock.
    twin: Option<Twin>,
    state: NodeState,
    timer_at_ns: Option<u64>,
    role: Option<ByzantineRole>,
    skew_ns: i64,
    drift_ppm: i64,
    identity: SigningKey,
    /// The node's disk: each synced durable record as stored
    /// ([`DurableRecord::to_stored`], checksummed).
    synced: Vec<Vec<u8>>,
    unsynced: Vec<DurableRecord>,
    history: VecDeque<Rc<Vec<u8>>>,
}

#[derive(Debug)]
struct Twin {
    replica: Replica<CheckedApp>,
    timer_at_ns: Option<u64>,
}

/// Which replicas of a node a delivery reaches.
#[derive(Debug, Clone, Copy)]
struct Route {
    original: bool,
    twin: bool,
}

impl Node {
    fn local_time(&self, global_ns: u64) -> u64 {
        let drift = i128::from(global_ns) * i128::from(self.drift_ppm) / 1_000_000;
        (i128::from(global_ns) + drift + i128::from(self.skew_ns)).max(0) as u64
    }

    /// The earliest global time at which this node's clock reads `local_ns`
    /// (rounded up, so a timer never fires before its local deadline).
    fn global_time(&self, local_ns: u64) -> u64 {
        let shifted = i128::from(local_ns) - i128::from(self.skew_ns);
        let rate = 1_000_000 + i128::from(self.drift_ppm);
        let mut global = (shifted * 1_000_000).div_euclid(rate).max(0) as u64;
        while self.local_time(global) < local_ns {
            global += 1;
        }
        global
    }
}

/// Counters reported at the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Messages sent by replicas (per target).
    pub messages_sent: u64,
    /// Messages delivered.
    pub messages_delivered: u64,
    /// Messages dropped by loss, partitions or down nodes.
    pub messages_dropped: u64,
    /// Messages duplicated.
    pub messages_duplicated: u64,
    /// Timed and random faults applied.
    pub faults: u64,
    /// Events processed.
    pub events: u64,
    /// Highest view any honest node entered.
    pub max_view: u64,
    /// View changes entered, summed over nodes (a node entering view v counts once).
    pub view_changes: u64,
    /// Requests submitted.
    pub requests: u64,
    /// Ledger writes made to fail (storage faults injected).
    pub ledger_write_failures: u64,
    /// Restarts refused because a stored durable record failed its checksum.
    pub corruptions_detected: u64,
    /// Replicas that halted on a storage failure (and were restarted).
    pub halts: u64,
    /// Client retransmissions of requests not committed in time.
    pub client_retries: u64,
    /// Evidence transactions honest validators submitted.
    pub evidence_submitted: u64,
    /// Anomaly-window keys evicted at capacity, on the up replica that
    /// evicted most (counted since its detector was last built or restored).
    pub window_evictions: u64,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Simulated time at the end, nanoseconds.
    pub simulated_ns: u64,
    /// Counters.
    pub stats: RunStats,
    /// Highest committed sequence.
    pub committed_height: Sequence,
    /// Distinct evidence records.
    pub evidence: usize,
    /// Commit observations the checker verified.
    pub checks: u64,
    /// Broken invariants (empty when the run passed).
    pub violations: Vec<Violation>,
    /// The audit digest over every event of the run.
    pub trace_digest: Digest,
    /// Per-event digests, kept only when requested (to locate divergence).
    pub event_digests: Vec<Digest>,
    /// Each node's state at the end.
    pub nodes: Vec<NodeSummary>,
    /// The Chrome trace-event JSON, when the run was traced.
    pub trace: Option<String>,
}

/// One node's state at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// Up, paused or crashed, and its Byzantine role if any.
    pub state: String,
    /// Its view, and whether it is changing views.
    pub view: u64,
    /// True while changing views.
    pub changing_view: bool,
    /// Last executed sequence.
    pub last_executed: Sequence,
    /// Last stable checkpoint.
    pub stable_checkpoint: Sequence,
    /// Client requests still waiting.
    pub pending_requests: usize,
    /// Rejected inputs by kind.
    pub rejections: Vec<(&'static str, u64)>,
    /// The application's state digest.
    pub app_digest: Digest,
    /// The ledger's last sequence number.
    pub ledger_head: u64,
    /// Total credits.
    pub supply: u64,
    /// Alerts raised (all severities).
    pub alerts: u64,
    /// Validators this node's state records as tombstoned (slashed for
    /// equivocation through the log).
    pub tombstoned: Vec<ReplicaIndex>,
    /// Validators jailed for liveness: (validator, since, release height).
    pub jails: Vec<(ReplicaIndex, u64, u64)>,
    /// Bonded stake per validator.
    pub stakes: Vec<u64>,
    /// Leader weights of the stable checkpoint's schedule anchor.
    pub leader_weights: Vec<u64>,
}

impl RunReport {
    /// True when every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// How far a run has got, for a progress display ([`Simulation::with_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Simulated time reached, in nanoseconds.
    pub simulated_ns: u64,
    /// Simulated time the run ends at, in nanoseconds.
    pub end_ns: u64,
    /// Events processed so far.
    pub events: u64,
    /// The highest sequence any honest node has committed.
    pub committed_height: Sequence,
}

/// Receives [`Progress`] every [`PROGRESS_EVERY_EVENTS`] events. It observes
/// and cannot change the run.
pub type ProgressSink = Box<dyn FnMut(Progress)>;

/// How often a progress sink hears from the run, in processed events.
pub const PROGRESS_EVERY_EVENTS: u64 = 4_096;

/// A simulation of one scenario under one seed.
#[derive(Debug)]
pub struct Simulation {
    scenario: Scenario,
    seed: u64,
    queue: EventQueue<Event>,
    nodes: Vec<Node>,
    clients: Vec<SigningKey>,
    /// The chain's admin account (client 0).
    admin: [u8; 32],
    /// Sensor events for `transactions` workloads.
    sensors: crate::workload::Workload,
    /// Addresses the login flood has used (`Workload::login_flood_events`).
    flood_sources: u64,
    /// Requests no replica has committed yet, by (client account, request id):
    /// the clients retransmit these.
    outstanding: BTreeMap<([u8; 32], u64), Request>,
    /// Per client: request ids due but not yet sent, because sending them
    /// would leave an uncommitted request outside the replicas' client
    /// window ([`CLIENT_WINDOW`]).
    backlog: Vec<VecDeque<u64>>,
    network_rng: SimRng,
    fault_rng: SimRng,
    workload_rng: SimRng,
    blocked: BTreeSet<(ReplicaIndex, ReplicaIndex)>,
    clogged_until_ns: BTreeMap<ReplicaIndex, u64>,
    link_busy_until_ns: BTreeMap<(ReplicaIndex, ReplicaIndex), u64>,
    faults_active: bool,
    audit: AuditDigest,
    keep_event_digests: bool,
    event_digests: Vec<Digest>,
    checker: Checker,
    stats: RunStats,
    views_entered: Vec<u64>,
    /// Violations found by the driver itself (for example, an overflowing queue).
    extra_violations: Vec<Violation>,
    /// (node, view) pairs already reported as led by an ineligible primary.
    leader_violations: BTreeSet<(ReplicaIndex, u64)>,
    /// Nodes the run took down or cut off (crash, halt, pause, isolation,
    /// partition, one-way block, clog): liveness jailing may hit these.
    faulted: BTreeSet<ReplicaIndex>,
    /// Nodes whose disk holds a corrupted record not yet read back.
    corrupted: BTreeSet<ReplicaIndex>,
    /// (reporter, accused) pairs already submitted: one report each.
    evidence_reported: BTreeSet<(ReplicaIndex, ReplicaIndex)>,
    /// Each validator's next request id for its own transactions.
    validator_request_ids: Vec<u64>,
    /// Chrome trace-event JSON objects, when tracing.
    trace: Option<Vec<String>>,
    /// Messages already decoded, by the digest of their bytes. A broadcast is
    /// delivered as the same bytes to every peer; decoding is a pure function
    /// of those bytes (and, for BLS votes, costs a square root and a subgroup
    /// check), so each receiver gets a clone of the one decoding. Bounded by
    /// [`DECODED_MEMO_MAX`]; a miss only costs a decode.
    decoded: BTreeMap<Digest, Message>,
    next_flow: u64,
    progress: Option<ProgressHook>,
}

/// The progress sink, wrapped so [`Simulation`] keeps its `Debug`.
struct ProgressHook(ProgressSink);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

fn node_key_seed(index: u16, purpose: &str) -> [u8; 32] {
    Digest::of_parts(
        "shieldx-sim key",
        &[purpose.as_bytes(), &index.to_le_bytes()],
    )
    .to_bytes()
}

impl Simulation {
    /// Builds the cluster, clients and initial events of `scenario` under `seed`.
    pub fn new(scenario: Scenario, seed: u64) -> Simulation {
        let n = scenario.validators;
        let identities: Vec<_> = (0..n)
            .map(|i| {
                SigningKey::from_slice(&node_key_seed(i, "identity"))
                    .expect("32-byte seed")
                    .verifying_key()
            })
            .collect();
        let vote_keys: Vec<BlsSecretKey> = (0..n)
            .map(|i| BlsSecretKey::key_gen(&node_key_seed(i, "vote"), b"").expect("32-byte IKM"))
            .collect();
        let powers: Vec<u64> = if scenario.powers.is_empty() {
            vec![1; usize::from(n)]
        } else {
            scenario.powers.clone()
        };
        let validators = ValidatorSet::new(
            (0..usize::from(n))
                .map(|i| Validator {
                    identity: identities[i],
                    vote_key: vote_keys[i].public_key(),
                    vrf_key: vrf_key(i as u16).public_key(),
                    power: powers[i],
                })
                .collect(),
        )
        .expect("scenario validation bounds the set");
        let settings = &scenario.consensus;
        let identity =
            |i: u16| SigningKey::from_slice(&node_key_seed(i, "identity")).expect("32-byte seed");
        let clients: Vec<SigningKey> = (0..scenario.workload.clients)
            .map(|c| SigningKey::from_slice(&node_key_seed(c, "client")).expect("32-byte seed"))
            .collect();
        let admin = account_of(&clients[0]);
        let start_local_ns = |i: u16| {
            let clock = scenario.clocks.iter().find(|c| c.node == i);
            clock.map_or(0, |c| c.skew_ms * MS as i64).max(0) as u64
        };
        let build_replica = |i: u16| {
            let mut config = ReplicaConfig::new(CHAIN_ID, validators.clone());
            config.checkpoint_interval = settings.checkpoint_interval;
            config.window = settings.window;
            config.batch_requests_max = settings.batch_requests_max;
            config.batch_timeout_ns = settings.batch_timeout_ms * MS;
            config.request_timeout_ns = settings.request_timeout_ms * MS;
            config.status_interval_ns = settings.status_interval_ms * MS;
            #[cfg(feature = "planted-bugs")]
            {
                config.planted_bug = settings
                    .planted_bug
                    .as_deref()
                    .and_then(shieldx_core::consensus::PlantedBug::from_name);
            }
            let keys = ReplicaKeys {
                index: i,
                identity: identity(i),
                vote_key: vote_keys[usize::from(i)].clone(),
                vrf_key: vrf_key(i),
            };
            Replica::new(
                config,
                keys,
                Box::new(VrfSchedule),
                new_app(admin, &validators, &scenario, i),
                start_local_ns(i),
            )
            .expect("scenario settings are valid")
        };
        let nodes = (0..n)
            .map(|i| {
                let clock = scenario.clocks.iter().find(|c| c.node == i);
                let skew_ns = clock.map_or(0, |c| c.skew_ms * MS as i64);
                let drift_ppm = clock.map_or(0, |c| c.drift_ppm);
                Node {
                    replica: build_replica(i),
                    twin: None,
                    state: NodeState::Up,
                    timer_at_ns: None,
                    role: None,
                    skew_ns,
                    drift_ppm,
                    identity: identity(i),
                    synced: Vec::new(),
                    unsynced: Vec::new(),
                    history: VecDeque::new(),
                }
            })
            .collect::<Vec<Node>>();
        let mut nodes = nodes;
        let genesis_primary = nodes[0].replica.primary();
        let schedule = &nodes[0].replica;
        let roles: BTreeMap<u16, ByzantineRole> = scenario
            .byzantine
            .iter()
            .map(|b| (b.node.resolve(|view| schedule.primary_of(view)), b.role))
            .collect();
        for (node, role) in &roles {
            let target = &mut nodes[usize::from(*node)];
            target.role = Some(*role);
            if *role == ByzantineRole::Twin {
                target.twin = Some(Twin {
                    replica: build_replica(*node),
                    timer_at_ns: None,
                });
            }
        }
        let colliding = roles.len() < scenario.byzantine.len();
        let checker = Checker::new(
            CHAIN_ID,
            CheckerValidators {
                vote_keys: vote_keys.iter().map(BlsSecretKey::public_key).collect(),
                powers,
            },
            roles.keys().copied().collect(),
        );
        let mut simulation = Simulation {
            admin,
            sensors: shieldx_sim_workload(seed),
            flood_sources: 0,
            outstanding: BTreeMap::new(),
            backlog: vec![VecDeque::new(); usize::from(scenario.workload.clients)],
            seed,
            queue: EventQueue::new(EVENTS_MAX),
            nodes,
            clients,
            network_rng: SimRng::stream(seed, "network"),
            fault_rng: SimRng::stream(seed, "faults"),
            workload_rng: SimRng::stream(seed, "workload"),
            blocked: BTreeSet::new(),
            clogged_until_ns: BTreeMap::new(),
            link_busy_until_ns: BTreeMap::new(),
            faults_active: true,
            audit: AuditDigest::default(),
            keep_event_digests: false,
            event_digests: Vec::new(),
            checker,
            stats: RunStats::default(),
            views_entered: vec![0; usize::from(n)],
            extra_violations: if colliding {
                vec![Violation {
                    invariant: "scenario: one Byzantine role per node",
                    detail: format!(
                        "two roles resolve to one node (the genesis primary is {genesis_primary})"
                    ),
                    at_ns: 0,
                }]
            } else {
                Vec::new()
            },
            evidence_reported: BTreeSet::new(),
            leader_violations: BTreeSet::new(),
            faulted: BTreeSet::new(),
            corrupted: BTreeSet::new(),
            validator_request_ids: vec![0; usize::from(n)],
            trace: None,
            decoded: BTreeMap::new(),
            progress: None,
            next_flow: 0,
            scenario,
        };
        simulation.schedule_initial_events();
        simulation
    }

    /// Hands `request` to every replica that is up.
    fn broadcast_request(&mut self, request: &Request, now_ns: u64) {
        for node in 0..self.nodes.len() as u16 {
            if self.nodes[usize::from(node)].state != NodeState::Up {
                continue;
            }
            let route = self.route(node);
            let target = &mut self.nodes[usize::from(node)];
            let local = target.local_time(now_ns);
            if route.original {
                let _ = target.replica.handle_request(local, request.clone());
                self.drain(node, now_ns);
            }
            if route.twin {
                let twin = self.nodes[usize::from(node)].twin.as_mut();
                if let Some(twin) = twin {
                    let _ = twin.replica.handle_request(local, request.clone());
                }
                self.drain_twin(node, now_ns);
            }
        }
    }

    /// Which of `node`'s replicas an input reaches: the only one, or for a
    /// twin pair one or both, a third each (network stream).
    fn route(&mut self, node: ReplicaIndex) -> Route {
        if self.nodes[usize::from(node)].twin.is_none() {
            return Route {
                original: true,
                twin: false,
            };
        }
        match self.network_rng.below(3) {
            0 => Route {
                original: true,
                twin: false,
            },
            1 => Route {
                original: false,
                twin: true,
            },
            _ => Route {
                original: true,
                twin: true,
            },
        }
    }

    /// The account of simulated client `client`.
    fn client_account(&self, client: u16) -> [u8; 32] {
        account_of(&self.clients[usize::from(client)])
    }

    /// Sends a client's due requests while every uncommitted one stays
    /// within the client window of the newest sent (the replicas' contract).
    fn pump_client(&mut self, client: u16, now_ns: u64) {
        let account = self.client_account(client);
        while let Some(&request_id) = self.backlog[usize::from(client)].front() {
            let oldest = self
                .outstanding
                .range((account, 0)..=(account, u64::MAX))
                .next()
                .map(|((_, id), _)| *id);
            if oldest.is_some_and(|oldest| request_id >= oldest + CLIENT_WINDOW) {
                return;
            }
            self.backlog[usize::from(client)].pop_front();
            self.send_client_request(client, request_id, now_ns);
        }
    }

    fn send_client_request(&mut self, client: u16, request_id: u64, now_ns: u64) {
        let payload = if self.scenario.workload.transactions {
            self.transaction(client, request_id, now_ns).to_bytes()
        } else {
            let mut payload = vec![0u8; self.scenario.workload.payload_bytes];
            for byte in payload.iter_mut() {
                *byte = self.workload_rng.below(256) as u8;
            }
            payload
        };
        let key = &self.clients[usize::from(client)];
        let request = Request::sign(CHAIN_ID, key, request_id, payload);
        self.checker
            .on_submit(&request.client, request_id, &request.payload, now_ns);
        self.stats.requests += 1;
        self.record("submit", now_ns, &request.to_encoded());
        self.outstanding
            .insert((request.client.to_bytes(), request_id), request.clone());
        self.schedule(
            now_ns + CLIENT_RETRY_MS * MS,
            Event::Retry {
                client,
                request_id,
                attempt: 1,
            },
        );
        self.broadcast_request(&request, now_ns);
    }

    /// A ledger transaction for `transactions` workloads: the admin (client 0)
    /// mints to every client first; then sensors submit generated HTTP events,
    /// and clients transfer (sometimes more than they hold, which must be
    /// rejected identically everywhere) and stake.
    fn transaction(&mut self, client: u16, request_id: u64, now_ns: u64) -> Transaction {
        let time_ms = sim_time_ms(now_ns);
        let clients = self.clients.len() as u16;
        let key = request_id.to_le_bytes().to_vec();
        if client == 0 && request_id <= u64::from(clients) {
            return Transaction::Mint {
                time_ms,
                key,
                to: self.client_account((request_id - 1) as u16),
                amount: 1_000,
            };
        }
        let flood = self.scenario.workload.login_flood_events;
        if flood > 0 {
            let events = (0..flood)
                .map(|_| {
                    let n = self.flood_sources;
                    self.flood_sources += 1;
                    shieldx_core::detect::Event {
                        id: format!("flood-{n}"),
                        ts: time_ms,
                        source: format!(
                            "2001:db8:{:x}:{:x}::{:x}",
                            n >> 32,
                            (n >> 16) & 0xffff,
                            n & 0xffff
                        ),
                        sensor: "edge".into(),
                        kind: "http".into(),
                        payload: format!("POST /login HTTP/1.1\r\n\r\nuser=u{n}").into_bytes(),
                        headers: vec![],
                    }
                })
                .collect();
            return Transaction::SubmitEvents { time_ms, events };
        }
        match self.workload_rng.below(10) {
            0..=4 => {
                let count = 1 + self.workload_rng.below(3) as usize;
                let events = (0..count)
                    .filter_map(|_| self.sensors.next())
                    .map(crate::workload::LabeledEvent::into_event)
                    .collect();
                Transaction::SubmitEvents { time_ms, events }
            }
            5..=8 => {
                // Draw order (recipient, then amount) is part of every trace.
                let to = self.workload_rng.below(u64::from(clients)) as u16;
                Transaction::Transfer {
                    time_ms,
                    key,
                    legs: vec![TransferLeg {
                        to: self.client_account(to),
                        amount: 1 + self.workload_rng.below(400),
                    }],
                }
            }
            _ => Transaction::Stake {
                time_ms,
                amount: 1 + self.workload_rng.below(50),
            },
        }
    }

    /// Records a Chrome trace-event timeline (one track per node, message flows,
    /// drops, faults, commits and view changes); it comes back in
    /// [`RunReport::trace`]. Open the file in Perfetto or chrome://tracing.
    pub fn with_trace(mut self) -> Simulation {
        let mut events: Vec<String> = (0..self.nodes.len())
            .map(|node| format!("{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":0,\"tid\":{node},\"args\":{{\"name\":\"node {node}\"}}}}"))
            .collect();
        events.push(format!(
            "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":0,\"args\":{{\"name\":\"{} seed {}\"}}}}",
            json_escape(&self.scenario.name),
            self.seed
        ));
        self.trace = Some(events);
        self
    }

    fn trace_event(&mut self, event: String) {
        if let Some(trace) = &mut self.trace {
            if trace.len() < TRACE_EVENTS_MAX {
                trace.push(event);
            } else if trace.len() == TRACE_EVENTS_MAX {
                trace.push("{\"ph\":\"i\",\"s\":\"g\",\"name\":\"trace truncated\",\"pid\":0,\"tid\":0,\"ts\":0}".into());
            }
        }
    }

    fn trace_instant(&mut self, node: Option<ReplicaIndex>, at_ns: u64, name: &str) {
        if self.trace.is_none() {
            return;
        }
        let (scope, tid) = match node {
            Some(node) => ("t", node),
            None => ("g", 0),
        };
        let event = format!(
            "{{\"ph\":\"i\",\"s\":\"{scope}\",\"name\":\"{}\",\"pid\":0,\"tid\":{tid},\"ts\":{}}}",
            json_escape(name),
            micros(at_ns)
        );
        self.trace_event(event);
    }

    /// Reports progress to `sink` while the run goes (for a progress bar on
    /// long runs). The sink only observes: the run, its trace and its digest
    /// are the same with or without it.
    pub fn with_progress(mut self, sink: ProgressSink) -> Simulation {
        self.progress = Some(ProgressHook(sink));
        self
    }

    /// Keeps every event's running digest, to locate the first divergence.
    pub fn keep_event_digests(mut self) -> Simulation {
        self.keep_event_digests = true;
        self
    }

    fn schedule(&mut self, at_ns: u64, event: Event) {
        // The queue bound is far above any scenario's need; hitting it means a
        // message storm, which the run must report rather than absorb.
        if self
            .queue
            .schedule(at_ns.max(self.queue.now_ns()), event)
            .is_err()
        {
            self.checker_violation("bounded event queue", "event queue full".into());
        }
    }

    /// Every `heartbeat_interval_ms` an up validator says it is online,
    /// whether or not its log is current (a silent Byzantine node says
    /// nothing); then the next heartbeat is scheduled.
    fn heartbeat(&mut self, node: ReplicaIndex, now_ns: u64) {
        let interval = self.scenario.staking.heartbeat_interval_ms.max(1) * MS;
        self.schedule(now_ns + interval, Event::Heartbeat { node });
        let sender = &self.nodes[usize::from(node)];
        if sender.state != NodeState::Up || sender.role == Some(ByzantineRole::Silent) {
            return;
        }
        let tx = Transaction::Heartbeat {
            time_ms: sim_time_ms(now_ns),
        };
        self.schedule(
            now_ns,
            Event::ValidatorTx {
                node,
                tx: Box::new(tx),
            },
        );
    }

    /// A tombstoned validator leads no view: whenever an honest node works
    /// in a view (after every step, not only on entering it), its primary
    /// must not have been tombstoned, or jailed and not yet released, at or
    /// before the checkpoint the node draws leaders from. Reported once per
    /// node and view.
    fn check_leader_eligible(&mut self, node: ReplicaIndex) {
        let replica = &self.nodes[usize::from(node)].replica;
        let view = replica.view();
        if replica.is_changing_view() || self.leader_violations.contains(&(node, view)) {
            return;
        }
        let primary = replica.primary();
        let anchor = replica.schedule_anchor().sequence;
        let account = replica
            .config()
            .validators
            .get(primary)
            .map(|v| v.identity.to_bytes());
        let state = replica.app().inner().state();
        let tombstoned_at = account.and_then(|a| state.tombstoned.get(&a).copied());
        let jailed =
            account.and_then(|a| Some((*state.jailed_since.get(&a)?, *state.jailed.get(&a)?)));
        let reported = self.extra_violations.len();
        if let Some(at) = tombstoned_at
            && at <= anchor
        {
            self.checker_violation(
                "a tombstoned validator leads no view",
                format!(
                    "node {node} works in view {view} led by {primary}, tombstoned at {at}, anchor {anchor}"
                ),
            );
        }
        if let Some((since, until)) = jailed
            && since <= anchor
            && anchor < until
        {
            self.checker_violation(
                "a jailed validator leads no view until released",
                format!(
                    "node {node} works in view {view} led by {primary}, jailed {since}..{until}, anchor {anchor}"
                ),
            );
        }
        if self.extra_violations.len() > reported {
            self.leader_violations.insert((node, view));
        }
    }

    /// Staking outcomes, read from the most advanced honest replica's state:
    /// every injected equivocation was slashed and tombstoned through the
    /// committed log, and no honest validator was slashed.
    /// Reports, once, a difference between node `node`'s applications (its
    /// replica's and its twin's) and their copies restored from snapshots:
    /// called before a restart replaces them, and at the end.
    fn harvest_divergence(&mut self, node: ReplicaIndex, now_ns: u64) {
        let entry = &self.nodes[usize::from(node)];
        let apps = std::iter::once(entry.replica.app())
            .chain(entry.twin.as_ref().map(|twin| twin.replica.app()));
        let found: Vec<String> = apps.filter_map(CheckedApp::divergence).collect();
        for detail in found {
            self.extra_violations.push(Violation {
                invariant: "a replica restored from a snapshot behaves as one that executed every request",
                detail: format!("node {node}: {detail}"),
                at_ns: now_ns,
            });
        }
    }

    fn staking_violations(&self, window: &LivenessWindow) -> Vec<Violation> {
        let end_ns = window.end_ns;
        let Some(reference) = self
            .nodes
            .iter()
            .filter(|node| node.state == NodeState::Up && node.role.is_none())
            .max_by_key(|node| node.replica.last_executed())
        else {
            return Vec::new();
        };
        let state = reference.replica.app().inner().state();
        let validators = &reference.replica.config().validators;
        let account = |node: ReplicaIndex| {
            validators
                .get(node)
                .map(|v| v.identity.to_bytes())
                .unwrap_or_default()
        };
        let mut violations = Vec::new();
        for node in self.checker.equivocators_owed(window) {
            if !state.tombstoned.contains_key(&account(node)) {
                violations.push(Violation {
                    invariant: "every injected equivocation is slashed through the log",
                    detail: format!("node {node} equivocated and was not tombstoned"),
                    at_ns: end_ns,
                });
            }
        }
        for (index, node) in self.nodes.iter().enumerate() {
            let index = index as ReplicaIndex;
            if node.role.is_none()
                && !self.faulted.contains(&index)
                && (state.offences.contains_key(&account(index))
                    || state.jailed.contains_key(&account(index)))
            {
                violations.push(Violation {
                    invariant: "no honest validator is slashed or jailed",
                    detail: format!(
                        "node {index} was never down or cut off but has a slashing or jail record"
                    ),
                    at_ns: end_ns,
                });
            }
        }
        violations
    }

    fn checker_violation(&mut self, invariant: &'static str, detail: String) {
        let at_ns = self.queue.now_ns();
        self.extra_violations.push(Violation {
            invariant,
            detail,
            at_ns,
        });
    }

    fn schedule_initial_events(&mut self) {
        let workload = self.scenario.workload.clone();
        for client in 0..workload.clients {
            // Clients start at staggered offsets drawn from the workload stream.
            let offset = self.workload_rng.below(workload.interval_ms.max(1) * MS);
            for request in 0..workload.requests_per_client {
                self.schedule(
                    offset + request * workload.interval_ms * MS,
                    Event::Submit {
                        client,
                        request_id: request + 1,
                    },
                );
            }
        }
        for fault in self.scenario.faults.clone() {
            self.schedule(fault.at_ms * MS, Event::Fault(fault.action));
        }
        let interval = self.scenario.staking.heartbeat_interval_ms.max(1) * MS;
        for node in 0..self.nodes.len() as u16 {
            // Staggered so validators do not all speak at once.
            let offset = interval * u64::from(node) / self.nodes.len() as u64;
            self.schedule(offset + 1, Event::Heartbeat { node });
        }
        self.schedule(self.scenario.run.faults_stop_ms * MS, Event::FaultsStop);
        for node in 0..self.nodes.len() as u16 {
            self.reschedule_timer(node);
            self.drain_twin(node, 0);
        }
    }

    /// Runs to the end and checks every invariant.
    pub fn run(mut self) -> RunReport {
        let end_ns = self.scenario.run.duration_ms * MS;
        let mut instant = (0u64, 0u64);
        while let Some((at_ns, _, event)) = self.queue.pop() {
            if at_ns > end_ns {
                break;
            }
            instant = if instant.0 == at_ns {
                (at_ns, instant.1 + 1)
            } else {
                (at_ns, 1)
            };
            if instant.1 > EVENTS_AT_ONE_INSTANT_MAX {
                self.checker_violation(
                    "simulated time advances",
                    format!("{} events at {at_ns} ns", instant.1),
                );
                break;
            }
            self.stats.events += 1;
            self.process(at_ns, event);
            if self.stats.events.is_multiple_of(PROGRESS_EVERY_EVENTS)
                && let Some(ProgressHook(sink)) = &mut self.progress
            {
                sink(Progress {
                    simulated_ns: at_ns,
                    end_ns,
                    events: self.stats.events,
                    committed_height: self.checker.committed_height(),
                });
            }
        }
        let healthy: Vec<ReplicaIndex> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| node.state == NodeState::Up && node.role.is_none())
            .map(|(i, _)| i as ReplicaIndex)
            .collect();
        let window = LivenessWindow {
            faults_stop_ns: self.scenario.run.faults_stop_ms * MS,
            bound_ns: self.scenario.expect.liveness_bound_ms * MS,
            end_ns,
        };
        for node in 0..self.nodes.len() {
            self.harvest_divergence(node as ReplicaIndex, end_ns);
        }
        let mut violations = self.checker.finish(&healthy, window);
        violations.extend(self.extra_violations.iter().cloned());
        violations.extend(self.staking_violations(&window));
        self.stats.window_evictions = self
            .nodes
            .iter()
            .filter(|node| node.state == NodeState::Up)
            .map(|node| node.replica.app().inner().window_evictions())
            .max()
            .unwrap_or(0);
        let expect = &self.scenario.expect;
        let at_least = [
            (
                "expected view changes",
                self.stats.view_changes,
                expect.view_changes_min,
            ),
            (
                "expected corrupted reads detected",
                self.stats.corruptions_detected,
                expect.corruptions_detected_min,
            ),
            (
                "expected evidence",
                self.checker.evidence_count() as u64,
                expect.evidence_min,
            ),
            (
                "expected anomaly-window evictions",
                self.stats.window_evictions,
                expect.window_evictions_min,
            ),
        ];
        for (invariant, seen, min) in at_least {
            if seen < min {
                violations.push(Violation {
                    invariant,
                    detail: format!("{seen} < {min}"),
                    at_ns: end_ns,
                });
            }
        }
        if let Some(max) = self.scenario.expect.view_changes_max
            && self.stats.view_changes > max
        {
            violations.push(Violation {
                invariant: "at most the expected view changes",
                detail: format!("{} > {max}", self.stats.view_changes),
                at_ns: end_ns,
            });
        }
        for (kind, min) in &self.scenario.expect.rejections_min {
            let rejected: u64 = self
                .nodes
                .iter()
                .filter(|node| node.role.is_none())
                .filter_map(|node| {
                    node.replica
                        .rejections()
                        .iter()
                        .find(|(k, _)| k == kind)
                        .map(|(_, count)| count)
                })
                .sum();
            if rejected < *min {
                violations.push(Violation {
                    invariant: "expected rejections",
                    detail: format!(
                        "honest nodes rejected {rejected} {kind} inputs, expected at least {min}"
                    ),
                    at_ns: end_ns,
                });
            }
        }
        let unsent: usize = self.backlog.iter().map(VecDeque::len).sum();
        if unsent > 0 {
            violations.push(Violation {
                invariant: "liveness: every client request is sent",
                detail: format!("{unsent} requests still wait in client backlogs"),
                at_ns: end_ns,
            });
        }
        let nodes = self
            .nodes
            .iter()
            .map(|node| NodeSummary {
                state: format!(
                    "{:?}{}",
                    node.state,
                    node.role.map(|r| format!(" ({r:?})")).unwrap_or_default()
                ),
                view: node.replica.view(),
                changing_view: node.replica.is_changing_view(),
                last_executed: node.replica.last_executed(),
                stable_checkpoint: node.replica.stable_checkpoint().sequence,
                pending_requests: node.replica.pending_requests(),
                rejections: node.replica.rejections().iter().collect(),
                app_digest: shieldx_core::consensus::Application::state_digest(node.replica.app()),
                ledger_head: node.replica.app().inner().ledger().head().0,
                supply: node.replica.app().inner().state().supply,
                alerts: node
                    .replica
                    .app()
                    .inner()
                    .state()
                    .alerts_by_severity
                    .values()
                    .sum(),
                jails: node
                    .replica
                    .config()
                    .validators
                    .iter()
                    .filter_map(|(i, v)| {
                        let state = node.replica.app().inner().state();
                        let account = v.identity.to_bytes();
                        Some((
                            i,
                            *state.jailed_since.get(&account)?,
                            *state.jailed.get(&account)?,
                        ))
                    })
                    .collect(),
                stakes: node
                    .replica
                    .config()
                    .validators
                    .iter()
                    .map(|(_, v)| {
                        node.replica
                            .app()
                            .inner()
                            .state()
                            .stake(&v.identity.to_bytes())
                    })
                    .collect(),
                leader_weights: node.replica.schedule_anchor().weights.clone(),
                tombstoned: node
                    .replica
                    .config()
                    .validators
                    .iter()
                    .filter(|(_, v)| {
                        node.replica
                            .app()
                            .inner()
                            .state()
                            .tombstoned
                            .contains_key(&v.identity.to_bytes())
                    })
                    .map(|(i, _)| i)
                    .collect(),
            })
            .collect();
        let trace = self
            .trace
            .take()
            .map(|events| format!("[\n{}\n]\n", events.join(",\n")));
        RunReport {
            trace,
            nodes,
            scenario: self.scenario.name.clone(),
            seed: self.seed,
            simulated_ns: self.queue.now_ns().min(end_ns),
            committed_height: self.checker.committed_height(),
            evidence: self.checker.evidence_count(),
            checks: self.checker.checks(),
            violations,
            trace_digest: self.audit.digest(),
            event_digests: self.event_digests,
            stats: self.stats,
        }
    }

    fn record(&mut self, kind: &str, at_ns: u64, bytes: &[u8]) {
        let digest = self.audit.record(kind, at_ns, bytes);
        if self.keep_event_digests {
            self.event_digests.push(digest);
        }
    }

    fn process(&mut self, now_ns: u64, event: Event) {
        match event {
            Event::Deliver {
                from,
                to,
                bytes,
                kind,
                flow,
            } => {
                if self.trace.is_some() {
                    let event = format!(
                        "{{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"message\",\"name\":\"{kind}\",\"id\":{flow},\"pid\":0,\"tid\":{to},\"ts\":{}}}",
                        micros(now_ns)
                    );
                    self.trace_event(event);
                    self.trace_instant(Some(to), now_ns, &format!("recv {kind} from {from}"));
                }
                let digest = Digest::of(&bytes);
                let mut tag = Vec::with_capacity(36);
                tag.extend_from_slice(&from.to_le_bytes());
                tag.extend_from_slice(&to.to_le_bytes());
                tag.extend_from_slice(digest.as_bytes());
                self.record("deliver", now_ns, &tag);
                if self.nodes[usize::from(to)].state != NodeState::Up {
                    self.stats.messages_dropped += 1;
                    return;
                }
                self.stats.messages_delivered += 1;
                let message = self.decode(digest, &bytes);
                let route = self.route(to);
                let node = &mut self.nodes[usize::from(to)];
                let local = node.local_time(now_ns);
                if route.twin
                    && let Some(twin) = node.twin.as_mut()
                {
                    let _ = match message.clone() {
                        Some(message) => twin.replica.handle_message(local, from, message),
                        None => twin.replica.handle_bytes(local, from, &bytes),
                    };
                    self.drain_twin(to, now_ns);
                }
                if route.original {
                    let node = &mut self.nodes[usize::from(to)];
                    let _ = match message {
                        Some(message) => node.replica.handle_message(local, from, message),
                        // Malformed: the replica decodes, rejects and counts it itself.
                        None => node.replica.handle_bytes(local, from, &bytes),
                    };
                    self.drain(to, now_ns);
                }
            }
            Event::Timer { node } => {
                let index = usize::from(node);
                if self.nodes[index].timer_at_ns != Some(now_ns)
                    || self.nodes[index].state != NodeState::Up
                {
                    return;
                }
                self.record("timer", now_ns, &node.to_le_bytes());
                self.nodes[index].timer_at_ns = None;
                let local = self.nodes[index].local_time(now_ns);
                self.nodes[index].replica.handle_timeout(local);
                self.drain(node, now_ns);
            }
            Event::TwinTimer { node } => {
                let index = usize::from(node);
                let due = self.nodes[index]
                    .twin
                    .as_ref()
                    .is_some_and(|twin| twin.timer_at_ns == Some(now_ns));
                if !due || self.nodes[index].state != NodeState::Up {
                    return;
                }
                self.record("twin-timer", now_ns, &node.to_le_bytes());
                let local = self.nodes[index].local_time(now_ns);
                if let Some(twin) = self.nodes[index].twin.as_mut() {
                    twin.timer_at_ns = None;
                    twin.replica.handle_timeout(local);
                }
                self.drain_twin(node, now_ns);
            }
            Event::Submit { client, request_id } => {
                self.maybe_fail_a_ledger_write();
                self.backlog[usize::from(client)].push_back(request_id);
                self.pump_client(client, now_ns);
            }
            Event::Pump { client } => self.pump_client(client, now_ns),
            Event::Heartbeat { node } => self.heartbeat(node, now_ns),
            Event::ValidatorTx { node, tx } => {
                if self.nodes[usize::from(node)].state != NodeState::Up {
                    return;
                }
                let counter = &mut self.validator_request_ids[usize::from(node)];
                *counter += 1;
                let request_id = *counter;
                let request = Request::sign(
                    CHAIN_ID,
                    &self.nodes[usize::from(node)].identity,
                    request_id,
                    tx.to_bytes(),
                );
                if matches!(*tx, Transaction::Evidence { .. }) {
                    // Evidence must commit like any request.
                    self.checker
                        .on_submit(&request.client, request_id, &request.payload, now_ns);
                    self.stats.evidence_submitted += 1;
                } else {
                    // A heartbeat sent just before the run ends need not.
                    self.checker.on_submit_best_effort(
                        &request.client,
                        request_id,
                        &request.payload,
                        now_ns,
                    );
                }
                self.record("validator-tx", now_ns, &request.to_encoded());
                self.broadcast_request(&request, now_ns);
            }
            Event::Retry {
                client,
                request_id,
                attempt,
            } => {
                let account = self.client_account(client);
                let Some(request) = self.outstanding.get(&(account, request_id)).cloned() else {
                    return;
                };
                // As a PBFT client does: no reply in time, so send the same
                // signed request to every replica again, with backoff.
                self.stats.client_retries += 1;
                self.record("retry", now_ns, &request.to_encoded());
                self.broadcast_request(&request, now_ns);
                let backoff = CLIENT_RETRY_MS << attempt.min(3);
                self.schedule(
                    now_ns + backoff * MS,
                    Event::Retry {
                        client,
                        request_id,
                        attempt: attempt + 1,
                    },
                );
            }
            Event::Fault(action) => {
                let action = self.resolve_fault(action);
                self.stats.faults += 1;
                self.trace_instant(None, now_ns, &format!("fault: {action:?}"));
                self.record("fault", now_ns, format!("{action:?}").as_bytes());
                self.apply_fault(now_ns, action);
            }
            Event::FaultsStop => {
                self.record("faults-stop", now_ns, &[]);
                self.faults_active = false;
                self.blocked.clear();
                self.clogged_until_ns.clear();
                for node in 0..self.nodes.len() as u16 {
                    if self.nodes[usize::from(node)].state == NodeState::Paused {
                        self.nodes[usize::from(node)].state = NodeState::Up;
                        self.reschedule_timer(node);
                    }
                }
            }
        }
    }

    /// Faults that name a role become faults on the node holding it now.
    fn resolve_fault(&self, action: FaultAction) -> FaultAction {
        match action {
            FaultAction::CrashPrimary => FaultAction::Crash {
                node: self.current_primary(),
            },
            FaultAction::IsolatePrimary => FaultAction::Isolate {
                node: self.current_primary(),
            },
            other => other,
        }
    }

    /// Records which nodes a fault takes down or cuts off.
    fn mark_faulted(&mut self, action: &FaultAction) {
        let n = self.nodes.len() as u16;
        match action {
            FaultAction::Crash { node }
            | FaultAction::Pause { node }
            | FaultAction::Isolate { node }
            | FaultAction::Clog { node, .. } => {
                self.faulted.insert(*node);
            }
            FaultAction::Partition { groups } => {
                // Everyone outside the largest group is cut off from it.
                let listed: BTreeSet<u16> = groups.iter().flatten().copied().collect();
                let rest: Vec<u16> = (0..n).filter(|i| !listed.contains(i)).collect();
                let mut all: Vec<Vec<u16>> = groups.clone();
                all.push(rest);
                let largest = all.iter().map(Vec::len).max().unwrap_or(0);
                let mut kept = false;
                for group in &all {
                    if group.len() == largest && !kept {
                        kept = true;
                        continue;
                    }
                    self.faulted.extend(group.iter().copied());
                }
            }
            FaultAction::OneWay { from, to } => {
                self.faulted.extend(from.iter().chain(to).copied());
            }
            FaultAction::Ring => self.faulted.extend(0..n),
            FaultAction::Restart { .. }
            | FaultAction::Corrupt { .. }
            | FaultAction::Resume { .. }
            | FaultAction::Heal
            | FaultAction::CrashPrimary
            | FaultAction::IsolatePrimary => {}
        }
    }

    /// The primary of the highest view any up node is in, as that node sees it.
    fn current_primary(&self) -> ReplicaIndex {
        self.nodes
            .iter()
            .filter(|node| node.state == NodeState::Up)
            .max_by_key(|node| node.replica.view())
            .map_or(0, |node| node.replica.primary())
    }

    fn apply_fault(&mut self, now_ns: u64, action: FaultAction) {
        let n = self.nodes.len() as u16;
        self.mark_faulted(&action);
        match action {
            FaultAction::Crash { node } => {
                let target = &mut self.nodes[usize::from(node)];
                target.state = NodeState::Crashed;
                // A crash loses every write that was not synced.
                target.unsynced.clear();
            }
            FaultAction::Restart { node } => {
                let index = usize::from(node);
                if self.nodes[index].state != NodeState::Crashed {
                    return;
                }
                let config = self.nodes[index].replica.config().clone();
                let keys = ReplicaKeys {
                    index: node,
                    identity: SigningKey::from_slice(&node_key_seed(node, "identity"))
                        .expect("32-byte seed"),
                    vote_key: BlsSecretKey::key_gen(&node_key_seed(node, "vote"), b"")
                        .expect("32-byte IKM"),
                    vrf_key: vrf_key(node),
                };
                let local = self.nodes[index].local_time(now_ns);
                let records: Result<Vec<DurableRecord>, _> = self.nodes[index]
                    .synced
                    .iter()
                    .map(|stored| DurableRecord::from_stored(stored))
                    .collect();
                let corrupted = self.corrupted.remove(&node);
                let records = match records {
                    Ok(records) => {
                        if corrupted {
                            self.extra_violations.push(Violation {
                                invariant: "every corrupted read is detected",
                                detail: format!("node {node} restarted from a corrupted record"),
                                at_ns: now_ns,
                            });
                        }
                        records
                    }
                    Err(error) => {
                        // Fail-stop: the node stays down rather than act on
                        // records it cannot trust.
                        self.stats.corruptions_detected += 1;
                        self.faulted.insert(node);
                        self.trace_instant(
                            Some(node),
                            now_ns,
                            &format!("restart refused: {error}"),
                        );
                        self.record("restart refused", now_ns, &node.to_le_bytes());
                        return;
                    }
                };
                let app = new_app(
                    self.admin,
                    &config.validators,
                    &self.scenario,
                    index as ReplicaIndex,
                );
                self.harvest_divergence(index as ReplicaIndex, now_ns);
                self.nodes[index].replica =
                    Replica::recover(config, keys, Box::new(VrfSchedule), app, &records, local)
                        .expect("the configuration was valid at start");
                self.nodes[index].state = NodeState::Up;
                self.nodes[index].timer_at_ns = None;
                self.views_entered[index] = 0;
                self.checker.on_restart(node);
                self.drain(node, now_ns);
            }
            FaultAction::Corrupt { node } => {
                let disk = &mut self.nodes[usize::from(node)].synced;
                if disk.is_empty() {
                    return;
                }
                let record = self.fault_rng.below(disk.len() as u64) as usize;
                let bit = self.fault_rng.below(disk[record].len() as u64 * 8) as usize;
                disk[record][bit / 8] ^= 1 << (bit % 8);
                self.corrupted.insert(node);
                self.trace_instant(
                    Some(node),
                    now_ns,
                    &format!("corrupt: bit {bit} of stored record {record}"),
                );
            }
            FaultAction::Pause { node } => self.nodes[usize::from(node)].state = NodeState::Paused,
            FaultAction::Resume { node } => {
                if self.nodes[usize::from(node)].state == NodeState::Paused {
                    self.nodes[usize::from(node)].state = NodeState::Up;
                    self.reschedule_timer(node);
                }
            }
            FaultAction::Isolate { node } => {
                for other in (0..n).filter(|o| *o != node) {
                    self.blocked.insert((node, other));
                    self.blocked.insert((other, node));
                }
            }
            FaultAction::Partition { groups } => {
                let group_of = |node: u16| {
                    groups
                        .iter()
                        .position(|g| g.contains(&node))
                        .unwrap_or(groups.len())
                };
                for a in 0..n {
                    for b in 0..n {
                        if group_of(a) != group_of(b) {
                            self.blocked.insert((a, b));
                        }
                    }
                }
            }
            FaultAction::OneWay { from, to } => {
                for a in &from {
                    for b in &to {
                        self.blocked.insert((*a, *b));
                    }
                }
            }
            FaultAction::Ring => {
                for a in 0..n {
                    for b in 0..n {
                        let distance = (i32::from(a) - i32::from(b)).rem_euclid(i32::from(n));
                        if a != b && distance != 1 && distance != i32::from(n) - 1 {
                            self.blocked.insert((a, b));
                        }
                    }
                }
            }
            FaultAction::Clog { node, until_ms } => {
                self.clogged_until_ns
                    .insert(node, (until_ms * MS).max(now_ns));
            }
            FaultAction::Heal => {
                self.blocked.clear();
                self.clogged_until_ns.clear();
            }
            FaultAction::CrashPrimary | FaultAction::IsolatePrimary => {
                unreachable!("resolved to a node above")
            }
        }
    }

    /// Performs a node's outputs in order: persist (synced before any send),
    /// send through the network, and feed the checker.
    /// With the scenario's probability, makes one random up replica's next
    /// ledger write fail.
    fn maybe_fail_a_ledger_write(&mut self) {
        let rate = self.scenario.random_faults.ledger_write_failure_per_mille;
        if !self.faults_active || rate == 0 || !self.fault_rng.chance(rate, 1000) {
            return;
        }
        let node = self.fault_rng.below(self.nodes.len() as u64) as usize;
        if self.nodes[node].state == NodeState::Up {
            self.stats.ledger_write_failures += 1;
            self.nodes[node]
                .replica
                .app_mut()
                .inner_mut()
                .ledger_mut()
                .store_mut()
                .fail_next_writes(1);
        }
    }

    fn drain(&mut self, node: ReplicaIndex, now_ns: u64) {
        let index = usize::from(node);
        if self.nodes[index].state == NodeState::Up
            && let Some(reason) = self.nodes[index].replica.app().inner().halted()
        {
            // Fail-stop: the replica's store failed mid-step. Whatever it had
            // not yet sent or synced is lost, exactly as in a crash, and it
            // restarts from its durable records shortly after.
            let reason = reason.to_string();
            self.trace_instant(Some(node), now_ns, &format!("halted: {reason}"));
            self.record("halt", now_ns, &node.to_le_bytes());
            self.stats.halts += 1;
            self.faulted.insert(node);
            while self.nodes[index].replica.poll_output().is_some() {}
            self.nodes[index].state = NodeState::Crashed;
            self.nodes[index].unsynced.clear();
            self.schedule(
                now_ns + 200 * MS,
                Event::Fault(FaultAction::Restart { node }),
            );
            return;
        }
        while let Some(output) = self.nodes[index].replica.poll_output() {
            match output {
                Output::Persist(record) => self.nodes[index].unsynced.push(record),
                Output::Send { to, message } => {
                    // The durability contract: sync before any later output.
                    let target_node = &mut self.nodes[index];
                    let records = std::mem::take(&mut target_node.unsynced);
                    target_node
                        .synced
                        .extend(records.iter().map(DurableRecord::to_stored));
                    self.send(node, now_ns, to, message);
                }
                Output::Committed(committed) => {
                    for request in &committed.batch.requests {
                        let account = request.client.to_bytes();
                        if self
                            .outstanding
                            .remove(&(account, request.request_id))
                            .is_some()
                            && let Some(client) = self
                                .clients
                                .iter()
                                .position(|c| account_of(c) == account)
                                .map(|c| c as u16)
                            && !self.backlog[usize::from(client)].is_empty()
                        {
                            self.schedule(now_ns, Event::Pump { client });
                        }
                    }
                    self.trace_instant(
                        Some(node),
                        now_ns,
                        &format!("commit {}", committed.sequence),
                    );
                    self.checker.on_commit(node, &committed, now_ns)
                }
                Output::Reply(reply) => self.checker.on_reply(node, &reply, now_ns),
                Output::Evidence(evidence) => {
                    self.checker.on_evidence(node, &evidence, now_ns);
                    if self.nodes[index].role.is_none()
                        && self.evidence_reported.insert((node, evidence.validator()))
                    {
                        let tx = Transaction::Evidence {
                            time_ms: sim_time_ms(now_ns),
                            evidence: Box::new(EvidenceRecord::new(CHAIN_ID, evidence)),
                        };
                        self.schedule(
                            now_ns,
                            Event::ValidatorTx {
                                node,
                                tx: Box::new(tx),
                            },
                        );
                    }
                }
                Output::Checkpointed {
                    sequence,
                    state_digest,
                } => self
                    .checker
                    .on_checkpoint(node, sequence, state_digest, now_ns),
                Output::StateTransferred {
                    sequence,
                    state_digest,
                } => self
                    .checker
                    .on_state_transfer(node, sequence, state_digest, now_ns),
                Output::EnteredView(view)
                    if self.nodes[index].role.is_none() && view > self.views_entered[index] =>
                {
                    self.trace_instant(Some(node), now_ns, &format!("enter view {view}"));
                    self.views_entered[index] = view;
                    self.stats.view_changes += 1;
                    self.stats.max_view = self.stats.max_view.max(view);
                }
                _ => {}
            }
        }
        if self.nodes[index].role.is_none() && self.nodes[index].state == NodeState::Up {
            self.check_leader_eligible(node);
        }
        self.reschedule_timer(node);
    }

    /// Sends what a node's twin sends, under the node's name; the rest of its
    /// output (commits, replies, evidence, records) is the Byzantine
    /// validator's own business and reaches neither clients nor checkers.
    fn drain_twin(&mut self, node: ReplicaIndex, now_ns: u64) {
        let index = usize::from(node);
        let mut sends = Vec::new();
        let Some(twin) = self.nodes[index].twin.as_mut() else {
            return;
        };
        while let Some(output) = twin.replica.poll_output() {
            if let Output::Send { to, message } = output {
                sends.push((to, message));
            }
        }
        let local = twin.replica.poll_timeout();
        for (to, message) in sends {
            self.send(node, now_ns, to, message);
        }
        let global = self.nodes[index]
            .global_time(local)
            .max(self.queue.now_ns());
        if let Some(twin) = self.nodes[index].twin.as_mut()
            && twin.timer_at_ns != Some(global)
        {
            twin.timer_at_ns = Some(global);
            self.schedule(global, Event::TwinTimer { node });
        }
    }

    fn reschedule_timer(&mut self, node: ReplicaIndex) {
        let index = usize::from(node);
        let local = self.nodes[index].replica.poll_timeout();
        let global = self.nodes[index]
            .global_time(local)
            .max(self.queue.now_ns());
        if self.nodes[index].timer_at_ns != Some(global) {
            self.nodes[index].timer_at_ns = Some(global);
            self.schedule(global, Event::Timer { node });
        }
    }

    /// The message `bytes` (whose digest is `digest`) decode to, or `None` if
    /// they are malformed; memoised across receivers of the same bytes.
    fn decode(&mut self, digest: Digest, bytes: &[u8]) -> Option<Message> {
        if let Some(message) = self.decoded.get(&digest) {
            return Some(message.clone());
        }
        let message = decode_message(bytes).ok()?;
        if self.decoded.len() >= DECODED_MEMO_MAX {
            self.decoded.clear();
        }
        self.decoded.insert(digest, message.clone());
        Some(message)
    }

    fn send(&mut self, from: ReplicaIndex, now_ns: u64, to: Target, message: Message) {
        let n = self.nodes.len() as u16;
        let targets: Vec<ReplicaIndex> = match to {
            Target::All => (0..n).filter(|t| *t != from).collect(),
            Target::Replica(t) => vec![t],
        };
        let role = self.nodes[usize::from(from)].role;
        if role.is_none() {
            self.record_signatures(from, now_ns, &message);
        }
        let plain = Rc::new(message.to_encoded());
        let mut extra_delay_ns = 0;
        // Byzantine behaviours act on the honest replica's outputs.
        let per_target: Vec<(ReplicaIndex, Rc<Vec<u8>>)> = match role {
            Some(ByzantineRole::Silent) => Vec::new(),
            Some(ByzantineRole::EquivocatingPrimary) => match &message {
                Message::PrePrepare(header, batch)
                    if header.signer == from && targets.len() >= 2 =>
                {
                    let mut other = batch.clone();
                    if other.requests.len() >= 2 {
                        other.requests.reverse();
                    } else {
                        other = Batch::null();
                    }
                    let body = PrePrepare {
                        digest: other.digest(),
                        ..header.body
                    };
                    let forged = Signed::sign(
                        CHAIN_ID,
                        from,
                        &self.nodes[usize::from(from)].identity,
                        body,
                    );
                    let conflicting = Rc::new(Message::PrePrepare(forged, other).to_encoded());
                    self.checker.on_equivocation_injected(from, now_ns);
                    split_halves(&targets, &plain, &conflicting)
                }
                _ => targets.iter().map(|t| (*t, plain.clone())).collect(),
            },
            Some(ByzantineRole::DoubleVoter) => match &message {
                Message::Prepare(vote) if targets.len() >= 2 => {
                    let body = Vote {
                        digest: Digest::of_parts("double vote", &[vote.body.digest.as_bytes()]),
                        ..vote.body
                    };
                    let forged = Signed::sign(
                        CHAIN_ID,
                        from,
                        &self.nodes[usize::from(from)].identity,
                        body,
                    );
                    let conflicting = Rc::new(Message::Prepare(forged).to_encoded());
                    self.checker.on_equivocation_injected(from, now_ns);
                    split_halves(&targets, &plain, &conflicting)
                }
                _ => targets.iter().map(|t| (*t, plain.clone())).collect(),
            },
            Some(ByzantineRole::Forger) => {
                let corrupted = match &message {
                    // A flipped byte would make the BLS signature an invalid
                    // point, rejected at decoding; a forger that wants its
                    // vote counted sends a valid point that is the wrong
                    // signature (here twice its own), which only the
                    // signature check catches.
                    Message::Commit(vote) => {
                        let mut forged = *vote;
                        forged.signature =
                            UncheckedSignature::aggregate(&[vote.signature, vote.signature])
                                .map_or(vote.signature, UncheckedSignature::from);
                        Message::Commit(forged).to_encoded()
                    }
                    _ => {
                        let mut corrupted = (*plain).clone();
                        if let Some(last) = corrupted.last_mut() {
                            *last ^= 0x5a;
                        }
                        corrupted
                    }
                };
                let corrupted = Rc::new(corrupted);
                targets.iter().map(|t| (*t, corrupted.clone())).collect()
            }
            Some(ByzantineRole::Delayer) => {
                extra_delay_ns = 200 * MS;
                targets.iter().map(|t| (*t, plain.clone())).collect()
            }
            Some(ByzantineRole::Impersonator) => {
                let victim = (from + 1) % n;
                if let Some(forged) = self.impersonate(from, victim, &message) {
                    let forged = Rc::new(forged.to_encoded());
                    let kind = message.kind();
                    for target in targets.iter().filter(|t| **t != victim) {
                        self.trace_instant(
                            Some(from),
                            now_ns,
                            &format!("impersonate {victim}: {kind} to {target}"),
                        );
                        self.transmit(victim, *target, now_ns, forged.clone(), kind);
                    }
                }
                targets.iter().map(|t| (*t, plain.clone())).collect()
            }
            Some(ByzantineRole::WrongNewView) => match &message {
                Message::NewView(signed) if signed.signer == from => {
                    let wrong = self.wrong_new_view(from, &signed.body);
                    let wrong = Rc::new(Message::NewView(wrong).to_encoded());
                    targets.iter().map(|t| (*t, wrong.clone())).collect()
                }
                _ => targets.iter().map(|t| (*t, plain.clone())).collect(),
            },
            Some(ByzantineRole::Replayer) => {
                let history = &mut self.nodes[usize::from(from)].history;
                let mut out: Vec<(ReplicaIndex, Rc<Vec<u8>>)> =
                    targets.iter().map(|t| (*t, plain.clone())).collect();
                if !history.is_empty() {
                    let pick = self.fault_rng.below(history.len() as u64) as usize;
                    let old = history[pick].clone();
                    out.extend(targets.iter().map(|t| (*t, old.clone())));
                }
                history.push_back(plain.clone());
                if history.len() > REPLAY_HISTORY_MAX {
                    history.pop_front();
                }
                out
            }
            None | Some(ByzantineRole::Twin) => {
                targets.iter().map(|t| (*t, plain.clone())).collect()
            }
        };
        let kind = message.kind();
        for (target, bytes) in per_target {
            self.transmit(from, target, now_ns + extra_delay_ns, bytes, kind);
        }
    }

    /// A conflicting copy of `message` in `victim`'s name, signed with
    /// `from`'s keys (it has no others), or `None` for kinds it leaves alone.
    /// Votes name another digest, so a replica that took the copy as the
    /// victim's would see the victim equivocate; a status claims the victim
    /// is far ahead, to draw state requests.
    fn impersonate(
        &self,
        from: ReplicaIndex,
        victim: ReplicaIndex,
        message: &Message,
    ) -> Option<Message> {
        let identity = &self.nodes[usize::from(from)].identity;
        let other = |digest: Digest| Digest::of_parts("impersonated", &[digest.as_bytes()]);
        match message {
            Message::Prepare(vote) => {
                let body = Vote {
                    digest: other(vote.body.digest),
                    ..vote.body
                };
                Some(Message::Prepare(Signed::sign(
                    CHAIN_ID, victim, identity, body,
                )))
            }
            // The impersonator's own BLS signature, relabelled: a valid point
            // that is the wrong signature for the victim and the new digest.
            Message::Commit(vote) => Some(Message::Commit(CommitVote {
                replica: victim,
                digest: other(vote.digest),
                ..*vote
            })),
            Message::ViewChange(signed) => Some(Message::ViewChange(Signed::sign(
                CHAIN_ID,
                victim,
                identity,
                signed.body.clone(),
            ))),
            Message::Status(signed) => {
                let body = Status {
                    last_executed: signed.body.last_executed + 1_000,
                    ..signed.body
                };
                Some(Message::Status(Signed::sign(
                    CHAIN_ID, victim, identity, body,
                )))
            }
            _ => None,
        }
    }

    /// The NEW-VIEW `new_view` with an `O` that `V` does not determine: its
    /// last pre-prepare dropped, or, when `O` is empty, a null pre-prepare
    /// added after the highest checkpoint in `V`. Signed properly by `from`.
    fn wrong_new_view(&self, from: ReplicaIndex, new_view: &NewView) -> Signed<NewView> {
        let identity = &self.nodes[usize::from(from)].identity;
        let mut body = new_view.clone();
        if body.pre_prepares.pop().is_none() {
            let sequence = body
                .view_changes
                .iter()
                .map(|v| v.body.checkpoint.sequence)
                .max()
                .unwrap_or(0)
                + 1;
            let header = PrePrepare {
                view: body.view,
                sequence,
                digest: Batch::null().digest(),
            };
            body.pre_prepares
                .push(Signed::sign(CHAIN_ID, from, identity, header));
        }
        Signed::sign(CHAIN_ID, from, identity, body)
    }

    /// Feeds every consensus signature an honest node sends to the checker, which
    /// holds it to one digest per (view, sequence, phase) for the whole run,
    /// across crashes and restarts.
    fn record_signatures(&mut self, from: ReplicaIndex, now_ns: u64, message: &Message) {
        use shieldx_core::consensus::Phase;
        match message {
            Message::PrePrepare(header, _) if header.signer == from => {
                let b = header.body;
                self.checker.on_signed(
                    from,
                    b.view,
                    b.sequence,
                    Phase::PrePrepare,
                    b.digest,
                    now_ns,
                );
            }
            Message::Prepare(vote) if vote.signer == from => {
                let b = vote.body;
                self.checker
                    .on_signed(from, b.view, b.sequence, Phase::Prepare, b.digest, now_ns);
            }
            Message::Commit(vote) if vote.replica == from => {
                self.checker.on_signed(
                    from,
                    vote.view,
                    vote.sequence,
                    Phase::Commit,
                    vote.digest,
                    now_ns,
                );
            }
            Message::NewView(new_view) if new_view.signer == from => {
                for header in &new_view.body.pre_prepares {
                    let b = header.body;
                    self.checker.on_signed(
                        from,
                        b.view,
                        b.sequence,
                        Phase::PrePrepare,
                        b.digest,
                        now_ns,
                    );
                }
            }
            _ => {}
        }
    }

    fn transmit(
        &mut self,
        from: ReplicaIndex,
        to: ReplicaIndex,
        now_ns: u64,
        bytes: Rc<Vec<u8>>,
        kind: &'static str,
    ) {
        self.stats.messages_sent += 1;
        let faults = self.scenario.random_faults.clone();
        if self.blocked.contains(&(from, to))
            || (self.faults_active && self.fault_rng.chance(faults.loss_per_mille, 1000))
        {
            self.stats.messages_dropped += 1;
            self.trace_instant(Some(from), now_ns, &format!("drop {kind} to {to}"));
            return;
        }
        let copies =
            if self.faults_active && self.fault_rng.chance(faults.duplicate_per_mille, 1000) {
                self.stats.messages_duplicated += 1;
                2
            } else {
                1
            };
        for _ in 0..copies {
            let mut delay = self.sample_latency_ns();
            if self.faults_active && self.fault_rng.chance(faults.reorder_per_mille, 1000) {
                delay += self.fault_rng.below(20 * MS);
            }
            let mut depart = now_ns;
            // Zero bandwidth means an unlimited link.
            if let Some(transfer_ns) =
                (bytes.len() as u64 * MS).checked_div(self.scenario.network.bandwidth_bytes_per_ms)
            {
                let busy = self.link_busy_until_ns.entry((from, to)).or_insert(0);
                depart = depart.max(*busy) + transfer_ns;
                *busy = depart;
            }
            let mut arrive = depart + delay;
            if let Some(until) = self.clogged_until_ns.get(&from) {
                arrive = arrive.max(*until);
            }
            let flow = self.next_flow;
            self.next_flow += 1;
            if self.trace.is_some() {
                let event = format!(
                    "{{\"ph\":\"s\",\"cat\":\"message\",\"name\":\"{kind}\",\"id\":{flow},\"pid\":0,\"tid\":{from},\"ts\":{}}}",
                    micros(now_ns)
                );
                self.trace_event(event);
                self.trace_instant(Some(from), now_ns, &format!("send {kind} to {to}"));
            }
            self.schedule(
                arrive,
                Event::Deliver {
                    from,
                    to,
                    bytes: bytes.clone(),
                    kind,
                    flow,
                },
            );
        }
    }

    fn sample_latency_ns(&mut self) -> u64 {
        let network = &self.scenario.network;
        let rng = &mut self.network_rng;
        let base = match network.latency {
            Latency::Uniform { min_ms, max_ms } => {
                min_ms * MS + rng.below((max_ms.saturating_sub(min_ms)) * MS + 1)
            }
            Latency::Normal { mean_ms, stddev_ms } => {
                // Irwin-Hall: the sum of 12 uniforms on [0, 1) has mean 6 and variance 1.
                let unit = 1u64 << 32;
                let sum: u64 = (0..12).map(|_| rng.below(unit)).sum();
                let z = sum as i128 - 6 * unit as i128;
                let value =
                    i128::from(mean_ms * MS) + z * i128::from(stddev_ms * MS) / unit as i128;
                value.max(0) as u64
            }
            Latency::Bimodal {
                fast_ms,
                slow_ms,
                slow_per_mille,
            } => {
                if rng.chance(slow_per_mille, 1000) {
                    slow_ms * MS
                } else {
                    fast_ms * MS
                }
            }
        };
        base + rng.below(network.jitter_us * 1_000 + 1)
    }
}

/// Decodes a message, for tools that inspect traces.
pub fn decode_message(bytes: &[u8]) -> Result<Message, codec::CodecError> {
    codec::decode_exact(bytes)
}

/// An equivocator's delivery plan: the first half of `targets` gets `plain`,
/// the rest gets `conflicting`.
fn split_halves(
    targets: &[ReplicaIndex],
    plain: &Rc<Vec<u8>>,
    conflicting: &Rc<Vec<u8>>,
) -> Vec<(ReplicaIndex, Rc<Vec<u8>>)> {
    let half = targets.len() / 2;
    targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            (
                *target,
                if i < half {
                    plain.clone()
                } else {
                    conflicting.clone()
                },
            )
        })
        .collect()
}

/// Nanoseconds as trace-event microseconds with three decimals.
fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000, ns % 1_000)
}

/// Escapes a string for a JSON string literal.
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
