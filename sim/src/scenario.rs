//! Scenario files (`scenarios/*.toml`): the cluster, the workload, Byzantine
//! roles, a timed fault schedule, random fault rates, the run length and the
//! expectations. Every field has a default, so a scenario states only what it
//! is about.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a scenario file was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Not valid TOML, or a field of the wrong type or an unknown field.
    #[error("scenario does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    /// Parsed, but inconsistent.
    #[error("scenario is invalid: {0}")]
    Invalid(String),
}

/// A complete scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in reports.
    pub name: String,
    /// What the scenario exercises, and why.
    #[serde(default)]
    pub description: String,
    /// Number of validators.
    pub validators: u16,
    /// Voting power per validator (default: 1 each).
    #[serde(default)]
    pub powers: Vec<u64>,
    /// Consensus settings.
    #[serde(default)]
    pub consensus: ConsensusSettings,
    /// Liveness and jail settings (sequence numbers).
    #[serde(default)]
    pub staking: StakingSettings,
    /// Client load.
    #[serde(default)]
    pub workload: Workload,
    /// The detector's bounds on every replica.
    #[serde(default)]
    pub detector: DetectorSettings,
    /// Network model.
    #[serde(default)]
    pub network: NetworkModel,
    /// Byzantine validators and their roles.
    #[serde(default)]
    pub byzantine: Vec<ByzantineAssignment>,
    /// Timed faults.
    #[serde(default)]
    pub faults: Vec<TimedFault>,
    /// Random fault rates, active until `run.faults_stop_ms`.
    #[serde(default)]
    pub random_faults: RandomFaults,
    /// Clock skew and drift per node.
    #[serde(default)]
    pub clocks: Vec<ClockModel>,
    /// Run length and phases.
    pub run: RunSettings,
    /// What must hold.
    #[serde(default)]
    pub expect: Expectations,
}

/// Consensus parameters (milliseconds of simulated time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusSettings {
    /// K.
    pub checkpoint_interval: u64,
    /// L.
    pub window: u64,
    /// Requests per batch.
    pub batch_requests_max: usize,
    /// Batch timeout.
    pub batch_timeout_ms: u64,
    /// Base progress timeout.
    pub request_timeout_ms: u64,
    /// Status interval.
    pub status_interval_ms: u64,
    /// A deliberately planted protocol bug (a name from `PlantedBug::name`,
    /// such as `"quorum-off-by-one"`); accepted only when the simulator is
    /// built with the test-only `planted-bugs` feature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planted_bug: Option<String>,
}

/// True when `name` is a planted bug this build can switch on (only builds
/// with the test-only `planted-bugs` feature know any).
fn planted_bug_known(name: &str) -> bool {
    #[cfg(feature = "planted-bugs")]
    return shieldx_core::consensus::PlantedBug::from_name(name).is_some();
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = name;
        false
    }
}

impl Default for ConsensusSettings {
    fn default() -> Self {
        ConsensusSettings {
            checkpoint_interval: 20,
            window: 40,
            batch_requests_max: 16,
            batch_timeout_ms: 5,
            request_timeout_ms: 300,
            status_interval_ms: 50,
            planted_bug: None,
        }
    }
}

/// Liveness and jail settings, in sequence numbers (the application's
/// `SlashingPolicy`; defaults are production's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StakingSettings {
    /// No heartbeat for more than this long jails a validator.
    pub liveness_window: u64,
    /// How often liveness is checked.
    pub liveness_check_interval: u64,
    /// How long a liveness fault jails.
    pub jail_sequences: u64,
    /// How often each up validator sends its heartbeat (simulated ms).
    pub heartbeat_interval_ms: u64,
}

impl Default for StakingSettings {
    fn default() -> Self {
        let policy = shieldx_core::staking::SlashingPolicy::default();
        StakingSettings {
            liveness_window: policy.liveness_window,
            liveness_check_interval: policy.liveness_check_interval,
            jail_sequences: policy.jail_sequences,
            heartbeat_interval_ms: 1_000,
        }
    }
}

/// The detector's bounds (the application's `DetectorConfig`; defaults are
/// production's). Each replica gets its own window hash seed, as each daemon
/// draws a secret one, so a result that depended on the seed would split the
/// replicas' state digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorSettings {
    /// The most keys one anomaly rule tracks before it evicts the least
    /// recently updated one.
    pub max_keys_per_rule: usize,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings {
            max_keys_per_rule: shieldx_core::detect::DetectorConfig::default().max_keys_per_rule,
        }
    }
}

/// The client load: each client sends requests one after another, to every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Number of clients.
    pub clients: u16,
    /// Requests per client.
    pub requests_per_client: u64,
    /// Time between one client's requests.
    pub interval_ms: u64,
    /// Payload size in bytes (opaque payloads).
    pub payload_bytes: usize,
    /// Send real ledger transactions (mints, transfers, stakes, sensor
    /// events with attacks), the default; `false` sends opaque payloads of
    /// `payload_bytes`, which the application rejects as malformed.
    #[serde(default = "yes")]
    pub transactions: bool,
    /// With `transactions`: when positive, every request after the opening
    /// mints submits this many `POST /login` attempts, each from an address
    /// no earlier attempt used (IPv6, in sequence): a credential-stuffing
    /// flood that fills the per-source anomaly windows with distinct keys.
    pub login_flood_events: u32,
}

fn yes() -> bool {
    true
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 2,
            requests_per_client: 20,
            interval_ms: 10,
            payload_bytes: 64,
            transactions: true,
            login_flood_events: 0,
        }
    }
}

/// Latency distribution of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Latency {
    /// Uniform in `[min_ms, max_ms]`.
    Uniform {
        /// Lower bound.
        min_ms: u64,
        /// Upper bound.
        max_ms: u64,
    },
    /// Approximately normal (Irwin-Hall sum of 12 uniforms), clamped at 0.
    Normal {
        /// Mean.
        mean_ms: u64,
        /// Standard deviation.
        stddev_ms: u64,
    },
    /// Fast most of the time, slow with probability `slow_per_mille / 1000`.
    Bimodal {
        /// Fast latency.
        fast_ms: u64,
        /// Slow latency.
        slow_ms: u64,
        /// Chance of the slow mode, per mille.
        slow_per_mille: u64,
    },
}

/// The network: latency, jitter, loss, duplication, bandwidth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkModel {
    /// Base latency distribution.
    pub latency: Latency,
    /// Extra uniform jitter in `[0, jitter_us]` microseconds.
    pub jitter_us: u64,
    /// Bytes per millisecond per directed link; 0 means unlimited.
    pub bandwidth_bytes_per_ms: u64,
}

impl Default for NetworkModel {
    fn default() -> Self {
        NetworkModel {
            latency: Latency::Uniform {
                min_ms: 1,
                max_ms: 3,
            },
            jitter_us: 500,
            bandwidth_bytes_per_ms: 0,
        }
    }
}

/// Random faults, drawn from the fault stream until `run.faults_stop_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RandomFaults {
    /// Message loss, per mille (at most 500).
    pub loss_per_mille: u64,
    /// Message duplication, per mille.
    pub duplicate_per_mille: u64,
    /// Extra reordering delay chance, per mille (delays a message by up to 20 ms).
    pub reorder_per_mille: u64,
    /// Chance, per mille per submitted request, that one random replica's
    /// next ledger write fails. The replica halts (fail-stop), is crashed by
    /// the simulator, and restarts 200 ms later.
    pub ledger_write_failure_per_mille: u64,
}

/// A node's clock relative to simulated time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockModel {
    /// The node.
    pub node: u16,
    /// Constant offset, milliseconds (may be negative).
    #[serde(default)]
    pub skew_ms: i64,
    /// Drift in parts per million (may be negative, at most 100,000 in magnitude).
    #[serde(default)]
    pub drift_ppm: i64,
}

/// A Byzantine validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByzantineAssignment {
    /// The node: an index, `"genesis-primary"` for the primary of view 0 or
    /// `"view-1-primary"` for the primary of view 1
    /// (the leader schedule is a VRF draw, so its index is not obvious).
    pub node: NodeRef,
    /// What it does.
    pub role: ByzantineRole,
}

/// A node, by index or by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NodeRef {
    /// The node with this index.
    Index(u16),
    /// A node named by its role at genesis.
    Named(NamedNode),
}

/// Roles a scenario can name a node by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NamedNode {
    /// The primary of view 0.
    GenesisPrimary,
    /// The primary of view 1: the first NEW-VIEW's sender.
    #[serde(rename = "view-1-primary")]
    ViewOnePrimary,
}

impl NodeRef {
    /// The index, given the genesis leader schedule (`primary_of(view)`).
    pub fn resolve(self, primary_of: impl Fn(u64) -> u16) -> u16 {
        match self {
            NodeRef::Index(index) => index,
            NodeRef::Named(NamedNode::GenesisPrimary) => primary_of(0),
            NodeRef::Named(NamedNode::ViewOnePrimary) => primary_of(1),
        }
    }
}

/// Named, reusable Byzantine behaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ByzantineRole {
    /// As primary, sends one batch to half the backups and another to the rest.
    EquivocatingPrimary,
    /// Sends prepares for two different digests to the two halves of its peers.
    DoubleVoter,
    /// Sends nothing at all.
    Silent,
    /// Delays every message it sends by 200 ms.
    Delayer,
    /// Corrupts the signature of every message it sends.
    Forger,
    /// Also re-sends old messages it sent earlier.
    Replayer,
    /// Also sends, to every other peer, a conflicting copy of each vote,
    /// pre-prepare, view change and status in the name of the next validator:
    /// that validator's index as signer and as transport sender (a spoofed
    /// link), under the impersonator's own keys. Honest replicas must reject
    /// every copy, and never accuse the impersonated validator.
    Impersonator,
    /// As the primary of a new view, sends a NEW-VIEW whose `O` is not the one
    /// `V` determines (its last pre-prepare dropped, or a null one added),
    /// properly signed. Honest replicas must refuse it and move to the next view.
    WrongNewView,
    /// Twins (Bano et al., "Twins: BFT Systems Made Robust", OPODIS 2021):
    /// the validator runs as two honest replicas holding the same keys. Each
    /// message and request for it reaches one twin or both (the network
    /// stream decides, a third each), so the twins see different histories
    /// and may sign conflicting proposals and votes in good faith. Together
    /// they are one Byzantine validator.
    Twin,
}

/// One timed fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedFault {
    /// When.
    pub at_ms: u64,
    /// What, as an inline table: `action = { kind = "crash", node = 0 }`.
    pub action: FaultAction,
}

/// A fault action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultAction {
    /// The node stops; it loses every write it had not synced.
    Crash {
        /// The node.
        node: u16,
    },
    /// A crashed node restarts from its synced durable records, with its
    /// application back at genesis; it must catch up by state transfer.
    Restart {
        /// The node.
        node: u16,
    },
    /// One bit of one of the node's synced durable records flips on its disk
    /// (chosen by the fault stream). The node reads its records only when it
    /// restarts: it must detect the corruption there and refuse to start,
    /// since a silently wrong signing record could make it sign twice.
    Corrupt {
        /// The node.
        node: u16,
    },
    /// The node stops processing (messages to it are lost) but keeps its state.
    Pause {
        /// The node.
        node: u16,
    },
    /// A paused node continues.
    Resume {
        /// The node.
        node: u16,
    },
    /// Isolates one node from all others, both ways.
    Isolate {
        /// The node.
        node: u16,
    },
    /// Splits the cluster into groups that cannot reach each other.
    Partition {
        /// The groups; nodes not listed form one more group.
        groups: Vec<Vec<u16>>,
    },
    /// Messages from `from` to `to` are lost (one way).
    OneWay {
        /// Senders.
        from: Vec<u16>,
        /// Receivers.
        to: Vec<u16>,
    },
    /// Each node can reach only its ring neighbours.
    Ring,
    /// Messages on links from `node` are held until `until_ms`, then released.
    Clog {
        /// The node whose outgoing links clog.
        node: u16,
        /// Release time.
        until_ms: u64,
    },
    /// Removes every partition, isolation and one-way block.
    Heal,
    /// The current primary crashes: the primary, as seen by the up node in
    /// the highest view, of that view. The leader schedule is a stake-weighted
    /// VRF draw, so scenarios name the role rather than an index.
    CrashPrimary,
    /// The current primary (as for `crash-primary`) is isolated.
    IsolatePrimary,
}

/// Run length and phases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Total simulated time.
    pub duration_ms: u64,
    /// When random faults stop and the liveness phase begins (global stabilisation).
    /// Timed faults after it are rejected.
    pub faults_stop_ms: u64,
    /// Seeds `cargo test` runs this scenario under besides 1-3: for a
    /// regression scenario, the seeds the bug was found failing under, when
    /// no schedule of timed faults reproduces it under every seed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<u64>,
}

/// What must hold at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectations {
    /// After `faults_stop_ms`, every healthy node commits every submitted request
    /// within this bound.
    pub liveness_bound_ms: u64,
    /// At least this many view changes happen (e.g. a primary crash must cause one).
    pub view_changes_min: u64,
    /// At least this many distinct evidence records are produced.
    pub evidence_min: u64,
    /// At most this many view changes happen: a fault the protocol should
    /// absorb in its view (a primary restarting within the request timeout)
    /// must not cost one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_changes_max: Option<u64>,
    /// Inputs of each named kind (a `Rejection` kind, e.g. `bad_new_view`)
    /// the honest nodes together must have rejected by the end: proof that a
    /// Byzantine role's attack reached them and was refused. A kind no
    /// replica ever reports fails the run, so a misspelling cannot pass.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rejections_min: BTreeMap<String, u64>,
    /// At least this many restarts refused because a stored record failed
    /// its checksum (proof that a `corrupt` fault was read back and caught).
    #[serde(default)]
    pub corruptions_detected_min: u64,
    /// At least this many anomaly-window keys evicted at capacity, on the
    /// replica that evicted most (proof that a small `detector.max_keys_per_rule`
    /// was reached).
    #[serde(default)]
    pub window_evictions_min: u64,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            liveness_bound_ms: 5_000,
            view_changes_min: 0,
            evidence_min: 0,
            view_changes_max: None,
            rejections_min: BTreeMap::new(),
            corruptions_detected_min: 0,
            window_evictions_min: 0,
        }
    }
}

impl Scenario {
    /// Parses and checks a scenario.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Renders the scenario back to TOML (for `sim shrink` and swarm reports).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render scenario: {e}\n"))
    }

    /// Checks internal consistency.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let fail = |message: String| Err(ScenarioError::Invalid(message));
        let n = self.validators;
        if !(1..=1024).contains(&n) {
            return fail(format!("validators must be 1..=1024, got {n}"));
        }
        if !self.powers.is_empty() && self.powers.len() != usize::from(n) {
            return fail("powers must list one power per validator".into());
        }
        if self.detector.max_keys_per_rule == 0 {
            return fail("detector.max_keys_per_rule must be at least 1".into());
        }
        if let Some(max) = self.expect.view_changes_max
            && max < self.expect.view_changes_min
        {
            return fail(format!(
                "expect.view_changes_max ({max}) is below expect.view_changes_min ({})",
                self.expect.view_changes_min
            ));
        }
        let node_ok = |node: u16| node < n;
        for assignment in &self.byzantine {
            if let NodeRef::Index(node) = assignment.node
                && !node_ok(node)
            {
                return fail(format!("byzantine node {node} out of range"));
            }
        }
        for fault in &self.faults {
            if fault.at_ms > self.run.faults_stop_ms {
                return fail(format!(
                    "fault at {} ms is after faults_stop_ms",
                    fault.at_ms
                ));
            }
            let nodes: Vec<u16> = match &fault.action {
                FaultAction::Crash { node }
                | FaultAction::Restart { node }
                | FaultAction::Corrupt { node }
                | FaultAction::Pause { node }
                | FaultAction::Resume { node }
                | FaultAction::Isolate { node }
                | FaultAction::Clog { node, .. } => vec![*node],
                FaultAction::Partition { groups } => groups.iter().flatten().copied().collect(),
                FaultAction::OneWay { from, to } => from.iter().chain(to).copied().collect(),
                FaultAction::Ring
                | FaultAction::Heal
                | FaultAction::CrashPrimary
                | FaultAction::IsolatePrimary => vec![],
            };
            if let Some(bad) = nodes.into_iter().find(|node| !node_ok(*node)) {
                return fail(format!("fault names node {bad}, outside the cluster"));
            }
        }
        if self.random_faults.loss_per_mille > 500 {
            return fail("loss_per_mille is at most 500".into());
        }
        for clock in &self.clocks {
            if !node_ok(clock.node) || clock.drift_ppm.abs() > 100_000 {
                return fail(format!(
                    "clock model for node {} is out of range",
                    clock.node
                ));
            }
        }
        if let Some(bug) = &self.consensus.planted_bug
            && !planted_bug_known(bug)
        {
            return fail(format!(
                "planted bug {bug:?} needs the test-only planted-bugs feature and a known name"
            ));
        }
        if self.run.faults_stop_ms > self.run.duration_ms {
            return fail("faults_stop_ms must not exceed duration_ms".into());
        }
        Ok(())
    }
}
