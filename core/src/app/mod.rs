//! The replicated application: every validator executes the same committed
//! requests through it, in order, and reaches the same state.
//!
//! A request's payload is one [`Transaction`]; the request's client key is the
//! acting account. Execution appends the resulting [`DomainEvent`]s to the
//! [`Ledger`] as one atomic batch and updates the projections (balances,
//! supply, stakes, alert counts). A rejected transaction appends nothing and
//! changes nothing; its reply says why ([`Rejection`]).
//!
//! # Invariants (property-tested in `core/src/app/tests.rs`)
//! - **No negative balance.** Every debit is checked before anything is
//!   applied; a multi-leg transfer is applied all-or-nothing, with each leg
//!   checked against the balances the earlier legs left
//!   (TigerBeetle's `debits_must_not_exceed_credits`).
//! - **Conservation.** The sum of balances and stakes equals the supply; the
//!   supply changes only by `Mint`, `Burn` and slashing.
//! - **Idempotency.** A transaction with an idempotency key that already
//!   succeeded returns the original result and appends nothing; the same key
//!   with different fields is rejected ([`Rejection::IdempotencyConflict`]).
//!   Keys are kept for [`AppConfig::idempotency_retention_ms`] of block time.
//! - **Bounded projections.** What attackers choose cannot grow the state
//!   without bound: alert counts by source hold at most
//!   [`ALERT_SOURCES_MAX`] sources (top-k counting), the anomaly windows at
//!   most their configured keys per rule, idempotency keys their retention.
//! - **Determinism.** State and replies are functions of the committed
//!   requests only; the state digest covers every projection, the anomaly
//!   windows, the rule set and the ledger head, so two replicas with equal
//!   digests alert identically from then on.
//!
//! **Block time.** PBFT does not yet carry a primary-proposed timestamp, so
//! each transaction carries the sender's time and the application's block
//! time is `max(previous, min(sent, previous + AppConfig::clock_step_max_ms))`:
//! monotone, deterministic, and a client cannot move it more than one step
//! ahead. Replacing it with BFT time from the pre-prepare is part of issue 3.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::codec::{CodecError, Encode, put_bytes, put_length};
use crate::consensus::EvidenceRecord;
use crate::consensus::{Application, RestoreError};
use crate::consensus::{Request, Sequence, ValidatorSet};
use crate::crypto::Digest;
use crate::detect::{
    AlertingEvent, CompiledRules, Detector, DetectorConfig, Event, RuleSet, Severity, default_rules,
};
use crate::ledger::{
    AccountId, Base, Causation, DomainEvent, EventStore, ExpectedVersion, Ledger, LedgerError,
};
use crate::staking::{Offence, SlashingPolicy, UNBONDING_ENTRIES_MAX, ValidatorStatus};

/// The ledger stream of submitted security events (`EventsSubmitted`).
pub const INGEST_STREAM: &str = "ingest";
/// Most security events in one `SubmitEvents`.
pub const EVENTS_PER_TX_MAX: usize = 10_000;
/// Most legs in one `Transfer`.
pub const TRANSFER_LEGS_MAX: usize = 8_192;
/// Longest idempotency key.
pub const IDEMPOTENCY_KEY_MAX: usize = 64;
/// Longest rule file in a `RulesUpdate`.
pub const RULES_BYTES_MAX: usize = 4 << 20;
/// Longest payload of one submitted event.
pub const EVENT_PAYLOAD_MAX: usize = 64 << 10;
/// Most sources [`State::alerts_by_source`] counts alerts for. Sources are
/// whatever attackers use, so the count is bounded the way top-k counters
/// are (Space-Saving, Metwally et al. 2005): at the bound, a new source
/// displaces the one with the fewest alerts (the smallest source among
/// equals) and takes over its count plus one. A source that never displaced
/// another has its exact count; any source with more alerts than
/// `total / ALERT_SOURCES_MAX` is held, its count over by at most the count
/// it took over.
pub const ALERT_SOURCES_MAX: usize = 10_000;

/// Settings every replica must share (part of genesis).
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Chain id (evidence is verified against it).
    pub chain_id: Vec<u8>,
    /// The only account allowed to mint and to update rules.
    pub admin: AccountId,
    /// The validator set (index order of consensus). When present, each
    /// validator's identity account starts with its voting power bonded as
    /// stake (genesis), evidence against it can be slashed, and its stake is
    /// its leader weight.
    pub validators: Option<ValidatorSet>,
    /// How long idempotency keys are remembered, in block-time milliseconds.
    pub idempotency_retention_ms: u64,
    /// The most a transaction's time may advance block time.
    pub clock_step_max_ms: u64,
    /// What each offence costs.
    pub slashing: SlashingPolicy,
    /// Genesis stake bonded per unit of voting power (default 1).
    pub genesis_stake_per_power: u64,
    /// Anomaly window bounds.
    pub detector: DetectorConfig,
}

impl AppConfig {
    /// Defaults: 24 h idempotency retention, 1 h clock step, the default
    /// slashing tiers.
    pub fn new(chain_id: Vec<u8>, admin: AccountId) -> AppConfig {
        AppConfig {
            chain_id,
            admin,
            validators: None,
            idempotency_retention_ms: 24 * 3600 * 1000,
            clock_step_max_ms: 3600 * 1000,
            slashing: SlashingPolicy::default(),
            genesis_stake_per_power: 1,
            detector: DetectorConfig::default(),
        }
    }
}

/// One leg of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLeg {
    /// Credited account.
    pub to: AccountId,
    /// Amount, at least 1.
    pub amount: u64,
}

/// A request payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transaction {
    /// Security events from a sensor: detection runs and alerts are appended.
    SubmitEvents {
        /// The sender's time (see the module docs on block time).
        time_ms: u64,
        /// The events.
        events: Vec<Event>,
    },
    /// Create credits (admin only).
    Mint {
        /// Sender's time.
        time_ms: u64,
        /// Idempotency key.
        key: Vec<u8>,
        /// Credited account.
        to: AccountId,
        /// Amount.
        amount: u64,
    },
    /// Destroy the sender's credits.
    Burn {
        /// Sender's time.
        time_ms: u64,
        /// Idempotency key.
        key: Vec<u8>,
        /// Amount.
        amount: u64,
    },
    /// Move the sender's credits, all legs or none.
    Transfer {
        /// Sender's time.
        time_ms: u64,
        /// Idempotency key.
        key: Vec<u8>,
        /// The legs, applied in order.
        legs: Vec<TransferLeg>,
    },
    /// Bond some of the sender's credits as stake.
    Stake {
        /// Sender's time.
        time_ms: u64,
        /// Amount.
        amount: u64,
    },
    /// Return bonded stake to credits.
    Unstake {
        /// Sender's time.
        time_ms: u64,
        /// Amount.
        amount: u64,
    },
    /// A validator's proof that it is online (liveness); only validators
    /// send it, signed with their identity key.
    Heartbeat {
        /// Sender's time.
        time_ms: u64,
    },
    /// Proof of an offence (equivocation or a wrong NEW-VIEW); slashes the
    /// offender once per offence.
    Evidence {
        /// Sender's time.
        time_ms: u64,
        /// The record: this chain's id, the offender, the slot and the
        /// signed messages.
        evidence: Box<EvidenceRecord>,
    },
    /// A new rule set (admin only), from `effective_height` on.
    RulesUpdate {
        /// Sender's time.
        time_ms: u64,
        /// Must exceed the current version.
        version: u64,
        /// First height it applies to.
        effective_height: u64,
        /// The YAML rule file.
        rules: String,
    },
}

/// Why a transaction was rejected. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The payload is not a transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// The sender may not do this.
    #[error("not authorised: {0}")]
    Unauthorised(&'static str),
    /// A debit exceeds the balance (the leg index for transfers).
    #[error("insufficient funds at leg {leg}: balance {balance}, debit {amount}")]
    InsufficientFunds {
        /// The failing leg (0 for single debits).
        leg: usize,
        /// Balance at that point.
        balance: u64,
        /// The debit.
        amount: u64,
    },
    /// An amount is zero or a sum overflows.
    #[error("invalid amount: {0}")]
    InvalidAmount(&'static str),
    /// An unstake would take a validator's stake below its bond floor, the
    /// stake that backs its voting power (see `staking`).
    #[error("unstaking {amount} would leave {stake} - {amount} below the bond floor {floor}")]
    BelowBondFloor {
        /// Bonded stake.
        stake: u64,
        /// The floor.
        floor: u64,
        /// The unstake.
        amount: u64,
    },
    /// The account already has the most unbonding entries allowed.
    #[error("{max} unbonding entries already; wait for one to mature")]
    TooManyUnbondings {
        /// [`UNBONDING_ENTRIES_MAX`].
        max: usize,
    },
    /// The idempotency key was used with different fields.
    #[error("idempotency key reused with different fields")]
    IdempotencyConflict,
    /// Evidence did not verify, or its offence was already slashed.
    #[error("evidence rejected: {0}")]
    Evidence(String),
    /// The rule file is invalid or not newer; the loaded rules stay.
    #[error("rules rejected: {0}")]
    Rules(String),
    /// A concurrency check failed (a bug if it happens: execution is serial).
    #[error("ledger: {0}")]
    Ledger(String),
}

/// The reply to a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxResult {
    /// Applied: the ledger sequence of the last event appended (or of the
    /// original execution, for an idempotent repeat) and the number of alerts
    /// raised (for `SubmitEvents`).
    Applied {
        /// Ledger head after the transaction.
        sequence: u64,
        /// Alerts raised.
        alerts: u32,
        /// The submitted events that raised alerts, by position in the
        /// transaction, so that each of several callers whose events one
        /// submission carries can tell its own (`SubmitEvents` only).
        alerting: Vec<AlertingEvent>,
    },
    /// Rejected, with the reason.
    Rejected(Rejection),
}

impl TxResult {
    /// Reply bytes: tag 0 + sequence + alerts + the alerting events (a
    /// `u32` count, then each one's position and alerts as two `u32`s), or
    /// tag 1 + reason text. Integers are little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            TxResult::Applied {
                sequence,
                alerts,
                alerting,
            } => {
                out.push(0);
                out.extend_from_slice(&sequence.to_le_bytes());
                out.extend_from_slice(&alerts.to_le_bytes());
                put_length(&mut out, alerting.len());
                for event in alerting {
                    out.extend_from_slice(&event.index.to_le_bytes());
                    out.extend_from_slice(&event.alerts.to_le_bytes());
                }
            }
            TxResult::Rejected(r) => {
                out.push(1);
                put_bytes(&mut out, r.to_string().as_bytes());
            }
        }
        out
    }
}

mod codec;
#[cfg(test)]
mod tests;

/// What an idempotency key remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Remembered {
    fields: Digest,
    result_sequence: u64,
    time_ms: u64,
}

/// The deterministic state: projections of the ledger plus what execution
/// needs. Everything here is covered by the state digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Block time.
    pub time_ms: u64,
    /// Credit balances.
    pub balances: BTreeMap<AccountId, u64>,
    /// Bonded stakes.
    pub stakes: BTreeMap<AccountId, u64>,
    /// Stake on its way out, per account, by the height it began unbonding
    /// at: slashable until it matures (see `staking`, "Unbonding").
    pub unbonding: BTreeMap<AccountId, BTreeMap<u64, Unbonding>>,
    /// `(matures, account, started)` for every unbonding entry: what the
    /// maturity sweep walks. Derived from `unbonding`, not encoded.
    unbonding_due: BTreeSet<(u64, AccountId, u64)>,
    /// Validators removed for equivocation (stake can no longer be bonded).
    pub tombstoned: BTreeMap<AccountId, u64>,
    /// Total credits (balances + stakes + unbonding).
    pub supply: u64,
    /// Alerts by severity.
    pub alerts_by_severity: BTreeMap<Severity, u64>,
    /// Alerts by rule id.
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Alerts by source (the busiest sources are what operators ask for),
    /// at most [`ALERT_SOURCES_MAX`] of them.
    alerts_by_source: BTreeMap<String, u64>,
    /// `(count, source)` for every entry of `alerts_by_source`: where the
    /// least counted source is found. Derived, not encoded.
    alert_sources_by_count: BTreeSet<(u64, String)>,
    /// Slashed offences (evidence ids).
    slashed: BTreeMap<Digest, u64>,
    /// Offences per validator account: the slashing history that selects
    /// the repeated-offence tier.
    pub offences: BTreeMap<AccountId, u64>,
    /// Height of each validator's last committed heartbeat.
    pub last_seen: BTreeMap<AccountId, u64>,
    /// Jailed validators and their release heights (kept after release:
    /// a released validator's liveness clock restarts there).
    pub jailed: BTreeMap<AccountId, u64>,
    /// When each jailed validator was last jailed.
    pub jailed_since: BTreeMap<AccountId, u64>,
    /// The height of the last transaction that appended events.
    pub height: u64,
    /// Idempotency keys: scoped key -> what was done.
    idempotency: BTreeMap<Digest, Remembered>,
    /// (time, key) index for retention.
    idempotency_by_time: BTreeMap<(u64, Digest), ()>,
    /// Rule set in force: (version, YAML).
    rules: (u64, String),
    /// A rule set waiting for its height: (version, effective height, YAML).
    pending_rules: Option<(u64, u64, String)>,
    /// Ledger head (sequence, hash).
    head: (u64, Digest),
    /// Stream versions.
    streams: BTreeMap<String, u64>,
}

/// One unbonding entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unbonding {
    /// The height at which it returns to the balance.
    pub matures: u64,
    /// What is left of it (slashing reduces it).
    pub amount: u64,
}

/// The application over a ledger store.
#[derive(Debug)]
pub struct App<S> {
    config: AppConfig,
    ledger: Ledger<S>,
    state: State,
    detector: Detector,
    halted: Option<String>,
}

/// Compiles a rule file; the empty string is the default pack, compiled once
/// per process and shared (it is immutable).
fn compile(yaml: &str) -> Result<Arc<CompiledRules>, String> {
    static DEFAULT: std::sync::OnceLock<Result<Arc<CompiledRules>, String>> =
        std::sync::OnceLock::new();
    if yaml.is_empty() {
        return DEFAULT
            .get_or_init(|| {
                CompiledRules::compile(&default_rules())
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone();
    }
    let set = RuleSet::parse(yaml).map_err(|e| e.to_string())?;
    CompiledRules::compile(&set)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

fn stream_of(account: &AccountId) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut stream = String::with_capacity("account/".len() + 2 * account.len());
    stream.push_str("account/");
    for b in account {
        stream.push(char::from(HEX[usize::from(b >> 4)]));
        stream.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    stream
}

impl<S: EventStore> App<S> {
    /// Opens the application over `store`: restores the latest snapshot (if
    /// any), checks that the log's entry at the snapshot carries the recorded
    /// hash, and verifies and applies only the log after it, so recovery time
    /// is bounded by the checkpoint interval. A corrupt suffix, snapshot or
    /// missing entry is refused ([`LedgerError::Corrupt`]), and so is a
    /// slashing policy that fails [`SlashingPolicy::validate`]; the whole
    /// chain is verified by [`App::verify_log`].
    pub fn open(config: AppConfig, store: S) -> Result<App<S>, LedgerError> {
        config.slashing.validate()?;
        let detector = Detector::new(
            compile("").map_err(|e| LedgerError::Corrupt {
                sequence: 0,
                reason: format!("default rules: {e}"),
            })?,
            config.detector,
        );
        let snapshot = store.snapshot()?;
        let (base, _) = store.bounds()?;
        let mut state = State::genesis(&config);
        let mut windows = Vec::new();
        let checkpoint = match snapshot {
            Some((at, bytes)) if at.sequence >= base.sequence => {
                let corrupt = |reason: String| LedgerError::Corrupt {
                    sequence: at.sequence,
                    reason,
                };
                let (s, w) =
                    codec::decode_state(&bytes).map_err(|e| corrupt(format!("snapshot: {e}")))?;
                if s.head != (at.sequence, at.hash) {
                    return Err(corrupt("snapshot head differs from its record".into()));
                }
                state = s;
                windows = w;
                at
            }
            _ if base.sequence != 0 => {
                return Err(LedgerError::Corrupt {
                    sequence: base.sequence,
                    reason: "log starts after genesis but no snapshot covers it".into(),
                });
            }
            _ => Base::GENESIS,
        };
        // Recovery verifies the snapshot's entry and the suffix only, once:
        // the verified records are kept and applied below.
        let mut records = Vec::new();
        let ledger = Ledger::open_at_with(store, checkpoint, state.streams.clone(), |r| {
            records.push(r);
        })?;
        let genesis = State::genesis(&config);
        let mut app = App {
            config,
            ledger,
            state: genesis,
            detector,
            halted: None,
        };
        if checkpoint != Base::GENESIS {
            let compiled = compile(&state.rules.1).map_err(|e| LedgerError::Corrupt {
                sequence: checkpoint.sequence,
                reason: format!("snapshot rules: {e}"),
            })?;
            let mut detector = Detector::new(compiled, app.config.detector);
            detector
                .restore_windows(&windows)
                .map_err(|e| LedgerError::Corrupt {
                    sequence: checkpoint.sequence,
                    reason: format!("snapshot windows: {e}"),
                })?;
            app.detector = detector;
            app.state = state;
        }
        let retention = app.config.idempotency_retention_ms;
        for r in &records {
            app.apply(r, retention, true);
        }
        app.state.head = app.ledger.head();
        app.state.streams = app.ledger.streams().clone();
        Ok(app)
    }

    /// Verifies the entire stored hash chain (every entry's hash and
    /// encoding); returns the verified head. For audits and background scrubs.
    pub fn verify_log(&self) -> Result<(u64, Digest), LedgerError> {
        self.ledger.replay(|_| {})
    }

    /// The state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger<S> {
        &self.ledger
    }

    /// Anomaly-window keys evicted at capacity since this replica's detector
    /// was built or restored ([`crate::detect::Detector::window_evictions`]).
    pub fn window_evictions(&self) -> u64 {
        self.detector.window_evictions()
    }

    /// The ledger, mutably (the simulator crashes its store).
    pub fn ledger_mut(&mut self) -> &mut Ledger<S> {
        &mut self.ledger
    }

    /// Set when the store failed during execution: this replica can no longer
    /// follow the chain and must be restarted (it recovers by replaying the
    /// consensus log or by state transfer).
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    /// Every recorded event that touched `account`, in order (audit trail).
    pub fn audit_trail(
        &self,
        account: &AccountId,
    ) -> Result<Vec<crate::ledger::EventRecord>, LedgerError> {
        let mut out = Vec::new();
        self.ledger.replay(|r| {
            if r.event.accounts().contains(account) {
                out.push(r.clone());
            }
        })?;
        Ok(out)
    }

    /// Executes one transaction from `client` at `height`.
    pub fn execute_transaction(
        &mut self,
        height: u64,
        client: AccountId,
        request_id: u64,
        tx: &Transaction,
    ) -> TxResult {
        self.execute_owned(height, client, request_id, tx.clone())
    }

    /// [`App::execute_transaction`] of a transaction it may take apart: the
    /// submitted events move into the log instead of being copied.
    fn execute_owned(
        &mut self,
        height: u64,
        client: AccountId,
        request_id: u64,
        mut tx: Transaction,
    ) -> TxResult {
        if let Some(reason) = &self.halted {
            return TxResult::Rejected(Rejection::Ledger(format!("replica halted: {reason}")));
        }
        let time_ms = self.next_time(tx_time(&tx));
        let causation = Causation {
            height,
            client,
            request_id,
        };
        if let Err(e) = self.height_effects(height, time_ms, causation) {
            return e;
        }
        let planned = match &mut tx {
            Transaction::SubmitEvents { events, .. } => {
                self.plan_submit(height, std::mem::take(events), time_ms)
            }
            tx => self.plan(height, client, tx, time_ms),
        };
        let plan = match planned {
            Ok(p) => p,
            Err(r) => return TxResult::Rejected(r),
        };
        if let Some(sequence) = plan.repeat {
            return TxResult::Applied {
                sequence,
                alerts: 0,
                alerting: Vec::new(),
            };
        }
        match self.ledger.append(time_ms, causation, plan.events) {
            Ok(records) => {
                let retention = self.config.idempotency_retention_ms;
                for r in &records {
                    self.apply(r, retention, false);
                }
                self.state.head = self.ledger.head();
                TxResult::Applied {
                    sequence: self.state.head.0,
                    alerts: plan.alerts,
                    alerting: plan.alerting,
                }
            }
            Err(LedgerError::WrongVersion { stream, .. }) => {
                TxResult::Rejected(Rejection::Ledger(format!("stream {stream} moved")))
            }
            Err(e) => {
                self.halted = Some(e.to_string());
                TxResult::Rejected(Rejection::Ledger(format!(
                    "store failure, replica halted: {e}"
                )))
            }
        }
    }

    /// What reaching `height` does without any transaction asking for it:
    /// matured unbonding entries return to their balances, and the liveness
    /// sweep runs. Both run before the first transaction executed at a
    /// height and are recorded as events, so replay reproduces them without
    /// re-running them.
    fn height_effects(
        &mut self,
        height: u64,
        time_ms: u64,
        causation: Causation,
    ) -> Result<(), TxResult> {
        // Whether the sweep is due depends on the last height with events,
        // so decide before maturity appends any; slash after it has, so an
        // entry returned at this height is not slashed as well.
        let sweep_due = self.liveness_sweep_due(height);
        let maturity = self.maturity_events(height);
        self.append_height_events(maturity, time_ms, causation)?;
        if sweep_due {
            let liveness = self.liveness_events(height);
            self.append_height_events(liveness, time_ms, causation)?;
        }
        Ok(())
    }

    fn append_height_events(
        &mut self,
        events: Vec<PlannedEvent>,
        time_ms: u64,
        causation: Causation,
    ) -> Result<(), TxResult> {
        if events.is_empty() {
            return Ok(());
        }
        match self.ledger.append(time_ms, causation, events) {
            Ok(records) => {
                let retention = self.config.idempotency_retention_ms;
                for r in &records {
                    self.apply(r, retention, false);
                }
                self.state.head = self.ledger.head();
                Ok(())
            }
            Err(e) => {
                self.halted = Some(e.to_string());
                Err(TxResult::Rejected(Rejection::Ledger(format!(
                    "store failure, replica halted: {e}"
                ))))
            }
        }
    }

    /// Every unbonding entry that matures at or before `height` returns what
    /// is left of it to the balance.
    fn maturity_events(&self, height: u64) -> Vec<PlannedEvent> {
        let s = &self.state;
        s.unbonding_due
            .iter()
            .take_while(|(matures, _, _)| *matures <= height)
            .map(|&(_, account, started)| {
                let amount = s
                    .unbonding
                    .get(&account)
                    .and_then(|entries| entries.get(&started))
                    .map_or(0, |entry| entry.amount);
                (
                    stream_of(&account),
                    ExpectedVersion::Any,
                    DomainEvent::UnbondingCompleted {
                        validator: account,
                        amount,
                        started,
                    },
                )
            })
            .collect()
    }

    /// Whether reaching `height` crosses a `liveness_check_interval`
    /// boundary past the liveness window.
    fn liveness_sweep_due(&self, height: u64) -> bool {
        let policy = self.config.slashing;
        let interval = policy.liveness_check_interval.max(1);
        height / interval > self.state.height / interval && height > policy.liveness_window
    }

    /// Liveness: once per `liveness_check_interval` heights, jails (and
    /// slashes at the liveness tier) every staked validator that is neither
    /// jailed nor tombstoned and has committed no heartbeat for more than
    /// `liveness_window` heights (counted from genesis or its release).
    fn liveness_events(&self, height: u64) -> Vec<PlannedEvent> {
        let policy = self.config.slashing;
        let Some(validators) = &self.config.validators else {
            return Vec::new();
        };
        let s = &self.state;
        let mut events = Vec::new();
        for validator in validators.validators() {
            let account = validator.identity.to_bytes();
            let stake = s.stakes.get(&account).copied().unwrap_or(0);
            let released_at = s.jailed.get(&account).copied().unwrap_or(0);
            if stake == 0 || s.tombstoned.contains_key(&account) || released_at > height {
                continue;
            }
            let seen = s.last_seen.get(&account).copied().unwrap_or(0);
            let absent_since = seen.max(released_at);
            if height - absent_since <= policy.liveness_window {
                continue;
            }
            let prior = s.offences.get(&account).copied().unwrap_or(0) as usize;
            let offence = Digest::of_parts(
                "shieldx liveness offence v1",
                &[&account, &height.to_le_bytes()],
            );
            events.extend(self.slash_events(
                &account,
                Offence::Liveness,
                policy.bps(Offence::Liveness, prior),
                absent_since,
                offence,
            ));
            events.push((
                stream_of(&account),
                ExpectedVersion::Any,
                DomainEvent::Jailed {
                    validator: account,
                    until: height + policy.jail_sequences,
                },
            ));
        }
        events
    }

    /// Slashes `account` at `bps` for an offence at height `offence_height`:
    /// its bonded stake, and every unbonding entry that began at or after
    /// that height (it was at stake when the offence happened).
    fn slash_events(
        &self,
        account: &AccountId,
        offence: Offence,
        bps: u64,
        offence_height: u64,
        id: Digest,
    ) -> Vec<PlannedEvent> {
        let s = &self.state;
        let mut events = vec![(
            stream_of(account),
            ExpectedVersion::Any,
            DomainEvent::Slashed {
                validator: *account,
                amount: SlashingPolicy::amount(s.stake(account), bps),
                reason: offence.name().into(),
                evidence: id,
            },
        )];
        if let Some(entries) = s.unbonding.get(account) {
            for (&started, entry) in entries.range(offence_height..) {
                let amount = SlashingPolicy::amount(entry.amount, bps);
                if amount > 0 {
                    events.push((
                        stream_of(account),
                        ExpectedVersion::Any,
                        DomainEvent::UnbondingSlashed {
                            validator: *account,
                            amount,
                            started,
                            evidence: id,
                        },
                    ));
                }
            }
        }
        events
    }

    /// The stake that backs a validator's voting power, which it cannot
    /// unstake: its genesis bond (see `staking`). Zero for other accounts.
    fn bond_floor(&self, account: &AccountId) -> u64 {
        self.config
            .validators
            .as_ref()
            .and_then(|set| {
                set.validators()
                    .iter()
                    .find(|v| v.identity.to_bytes() == *account)
            })
            .map_or(0, |v| {
                v.power.saturating_mul(self.config.genesis_stake_per_power)
            })
    }

    /// Block time for a transaction sent at `sent` (module docs).
    fn next_time(&self, sent: u64) -> u64 {
        let now = self.state.time_ms;
        if now == 0 {
            return sent;
        }
        now.max(sent.min(now.saturating_add(self.config.clock_step_max_ms)))
    }

    /// Applies one recorded event: during execution right after it was
    /// appended, during replay from the log. Both paths run this same code,
    /// which is why replay reaches the same state.
    fn apply(&mut self, r: &crate::ledger::EventRecord, retention: u64, replaying: bool) {
        let s = &mut self.state;
        s.time_ms = s.time_ms.max(r.time_ms);
        s.height = s.height.max(r.causation.height);
        let horizon = s.time_ms.saturating_sub(retention);
        while let Some((&(t, key), ())) = s.idempotency_by_time.iter().next() {
            if t >= horizon {
                break;
            }
            s.idempotency_by_time.remove(&(t, key));
            s.idempotency.remove(&key);
        }
        crate::ledger::set_stream_version(&mut self.state.streams, r);
        match &r.event {
            DomainEvent::EventsSubmitted { events } => {
                if replaying {
                    // Execution already ran detection when it planned the
                    // transaction; replay re-runs it to rebuild the windows.
                    self.activate_pending_rules(r.causation.height);
                    let mut alerts = Vec::new();
                    let _ = self
                        .detector
                        .inspect_batch(events.iter().map(|e| (e, r.time_ms)), &mut alerts);
                }
            }
            DomainEvent::IdempotencyRecorded { key, fields } => {
                let entry = Remembered {
                    fields: *fields,
                    result_sequence: r.sequence,
                    time_ms: r.time_ms,
                };
                self.state
                    .idempotency_by_time
                    .insert((entry.time_ms, *key), ());
                self.state.idempotency.insert(*key, entry);
            }
            DomainEvent::RulesUpdated {
                version,
                effective_height,
                rules,
                ..
            } => {
                self.state.pending_rules = Some((*version, *effective_height, rules.clone()));
                self.activate_pending_rules(r.causation.height);
            }
            _ => self.state.project(r),
        }
    }

    fn activate_pending_rules(&mut self, height: u64) {
        let due = matches!(&self.state.pending_rules, Some((_, h, _)) if *h <= height);
        if !due {
            return;
        }
        if let Some((version, _, yaml)) = self.state.pending_rules.take()
            && let Ok(compiled) = compile(&yaml)
        {
            self.detector.replace_rules(compiled);
            self.state.rules = (version, yaml);
        }
    }

    /// Plans a transaction: checks everything and computes the events, without
    /// changing any state.
    fn plan(
        &mut self,
        height: u64,
        client: AccountId,
        tx: &Transaction,
        time_ms: u64,
    ) -> Result<Plan, Rejection> {
        let horizon = time_ms.saturating_sub(self.config.idempotency_retention_ms);
        let s = &self.state;
        let mut plan = Plan::default();
        let keyed = |key: &[u8], fields: &[u8]| -> Result<(Digest, Digest), Rejection> {
            if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX {
                return Err(Rejection::Malformed(format!(
                    "idempotency key must be 1 to {IDEMPOTENCY_KEY_MAX} bytes"
                )));
            }
            Ok((
                Digest::of_parts("shieldx/app/idempotency-key", &[&client, key]),
                Digest::of_parts("shieldx/app/idempotency-fields", &[fields]),
            ))
        };
        let check_repeat = |plan: &mut Plan, key: (Digest, Digest)| -> Result<bool, Rejection> {
            match s
                .idempotency
                .get(&key.0)
                .filter(|seen| seen.time_ms >= horizon)
            {
                Some(seen) if seen.fields == key.1 => {
                    plan.repeat = Some(seen.result_sequence);
                    Ok(true)
                }
                Some(_) => Err(Rejection::IdempotencyConflict),
                None => {
                    plan.remember = Some(key);
                    Ok(false)
                }
            }
        };
        match tx {
            Transaction::SubmitEvents { .. } => unreachable!("planned by plan_submit"),
            Transaction::Mint {
                key, to, amount, ..
            } => {
                if client != self.config.admin {
                    return Err(Rejection::Unauthorised("only the admin mints"));
                }
                if *amount == 0 {
                    return Err(Rejection::InvalidAmount("zero"));
                }
                let mut fields = to.to_vec();
                fields.extend_from_slice(&amount.to_le_bytes());
                if check_repeat(&mut plan, keyed(key, &fields)?)? {
                    return Ok(plan);
                }
                s.supply
                    .checked_add(*amount)
                    .ok_or(Rejection::InvalidAmount("supply overflow"))?;
                plan.events.push((
                    stream_of(to),
                    ExpectedVersion::Exact(s.stream_version(&stream_of(to))),
                    DomainEvent::Minted {
                        account: *to,
                        amount: *amount,
                        key: key.clone(),
                    },
                ));
            }
            Transaction::Burn { key, amount, .. } => {
                if *amount == 0 {
                    return Err(Rejection::InvalidAmount("zero"));
                }
                if check_repeat(&mut plan, keyed(key, &amount.to_le_bytes())?)? {
                    return Ok(plan);
                }
                s.check_debit(&client, *amount)?;
                plan.events.push((
                    stream_of(&client),
                    ExpectedVersion::Exact(s.stream_version(&stream_of(&client))),
                    DomainEvent::Burned {
                        account: client,
                        amount: *amount,
                        key: key.clone(),
                    },
                ));
            }
            Transaction::Transfer { key, legs, .. } => {
                if legs.is_empty() || legs.len() > TRANSFER_LEGS_MAX {
                    return Err(Rejection::Malformed(format!(
                        "1 to {TRANSFER_LEGS_MAX} legs"
                    )));
                }
                let mut fields = Vec::with_capacity(legs.len() * 40);
                for leg in legs {
                    fields.extend_from_slice(&leg.to);
                    fields.extend_from_slice(&leg.amount.to_le_bytes());
                }
                if check_repeat(&mut plan, keyed(key, &fields)?)? {
                    return Ok(plan);
                }
                // Every leg is checked against the balances the earlier legs left.
                let mut touched: BTreeMap<AccountId, u64> = BTreeMap::new();
                for (i, leg) in legs.iter().enumerate() {
                    if leg.amount == 0 {
                        return Err(Rejection::InvalidAmount("zero leg"));
                    }
                    let from_balance = *touched.entry(client).or_insert_with(|| s.balance(&client));
                    if from_balance < leg.amount {
                        return Err(Rejection::InsufficientFunds {
                            leg: i,
                            balance: from_balance,
                            amount: leg.amount,
                        });
                    }
                    touched.insert(client, from_balance - leg.amount);
                    let to_balance = *touched.entry(leg.to).or_insert_with(|| s.balance(&leg.to));
                    touched.insert(
                        leg.to,
                        to_balance
                            .checked_add(leg.amount)
                            .ok_or(Rejection::InvalidAmount("balance overflow"))?,
                    );
                    plan.events.push((
                        stream_of(&client),
                        ExpectedVersion::Any,
                        DomainEvent::Transferred {
                            from: client,
                            to: leg.to,
                            amount: leg.amount,
                            key: key.clone(),
                        },
                    ));
                }
            }
            Transaction::Stake { amount, .. } => {
                if *amount == 0 {
                    return Err(Rejection::InvalidAmount("zero"));
                }
                if s.tombstoned.contains_key(&client) {
                    return Err(Rejection::Unauthorised(
                        "tombstoned validators cannot stake",
                    ));
                }
                s.check_debit(&client, *amount)?;
                plan.events.push((
                    stream_of(&client),
                    ExpectedVersion::Any,
                    DomainEvent::Staked {
                        validator: client,
                        amount: *amount,
                    },
                ));
            }
            Transaction::Unstake { amount, .. } => {
                let stake = s.stake(&client);
                if *amount == 0 {
                    return Err(Rejection::InvalidAmount("zero"));
                }
                if stake < *amount {
                    return Err(Rejection::InsufficientFunds {
                        leg: 0,
                        balance: stake,
                        amount: *amount,
                    });
                }
                let floor = self.bond_floor(&client);
                if stake - *amount < floor {
                    return Err(Rejection::BelowBondFloor {
                        stake,
                        floor,
                        amount: *amount,
                    });
                }
                let entries = s.unbonding.get(&client);
                let new_entry = entries.is_none_or(|e| !e.contains_key(&height));
                if new_entry && entries.is_some_and(|e| e.len() >= UNBONDING_ENTRIES_MAX) {
                    return Err(Rejection::TooManyUnbondings {
                        max: UNBONDING_ENTRIES_MAX,
                    });
                }
                plan.events.push((
                    stream_of(&client),
                    ExpectedVersion::Any,
                    DomainEvent::UnbondingStarted {
                        validator: client,
                        amount: *amount,
                        matures: height.saturating_add(self.config.slashing.unbonding_sequences),
                    },
                ));
            }
            Transaction::Heartbeat { .. } => {
                let is_validator =
                    self.config.validators.as_ref().is_some_and(|set| {
                        set.iter().any(|(_, v)| v.identity.to_bytes() == client)
                    });
                if !is_validator {
                    return Err(Rejection::Unauthorised("only validators send heartbeats"));
                }
                if s.tombstoned.contains_key(&client) {
                    return Err(Rejection::Unauthorised(
                        "tombstoned validators are out for good",
                    ));
                }
                plan.events.push((
                    stream_of(&client),
                    ExpectedVersion::Any,
                    DomainEvent::Heartbeat { validator: client },
                ));
            }
            Transaction::Evidence { evidence, .. } => {
                let Some(validators) = &self.config.validators else {
                    return Err(Rejection::Evidence("no validator set configured".into()));
                };
                evidence
                    .verify(&self.config.chain_id, validators)
                    .map_err(|e| Rejection::Evidence(e.to_string()))?;
                let id = evidence.id();
                if s.slashed.contains_key(&id) {
                    return Err(Rejection::Evidence("offence already slashed".into()));
                }
                let slot_sequence = evidence.sequence;
                if height.saturating_sub(slot_sequence) > self.config.slashing.evidence_max_age {
                    return Err(Rejection::Evidence("evidence expired".into()));
                }
                let offender = validators
                    .get(evidence.validator)
                    .map(|v| v.identity.to_bytes())
                    .ok_or_else(|| Rejection::Evidence("unknown validator".into()))?;
                // Equivocation tombstones: a validator is slashed for it once.
                if s.tombstoned.contains_key(&offender) {
                    return Err(Rejection::Evidence("validator already tombstoned".into()));
                }
                let prior = s.offences.get(&offender).copied().unwrap_or(0) as usize;
                // Equivocation is slashed at its own tier and tombstones; a
                // wrong NEW-VIEW is an invalid proposal (the repeated tier
                // once the validator has an offence on record).
                let offence = if evidence.evidence.is_equivocation() {
                    Offence::Equivocation
                } else {
                    Offence::InvalidProposal
                };
                let bps = self.config.slashing.bps(offence, prior);
                plan.events
                    .extend(self.slash_events(&offender, offence, bps, slot_sequence, id));
            }
            Transaction::RulesUpdate {
                version,
                effective_height,
                rules,
                ..
            } => {
                if client != self.config.admin {
                    return Err(Rejection::Unauthorised("only the admin updates rules"));
                }
                let current = self
                    .state
                    .pending_rules
                    .as_ref()
                    .map_or(self.state.rules.0, |p| p.0);
                if *version <= current {
                    return Err(Rejection::Rules(format!(
                        "version {version} is not newer than {current}"
                    )));
                }
                if *effective_height < height {
                    return Err(Rejection::Rules("effective height is in the past".into()));
                }
                compile(rules).map_err(Rejection::Rules)?;
                plan.events.push((
                    "rules".to_string(),
                    ExpectedVersion::Any,
                    DomainEvent::RulesUpdated {
                        version: *version,
                        effective_height: *effective_height,
                        rules_digest: Digest::of(rules.as_bytes()),
                        rules: rules.clone(),
                    },
                ));
            }
        }
        if let Some((key, fields)) = plan.remember {
            plan.events.push((
                "idempotency".to_string(),
                ExpectedVersion::Any,
                DomainEvent::IdempotencyRecorded { key, fields },
            ));
        }
        Ok(plan)
    }

    /// Plans `SubmitEvents`, which cannot be rejected once decoded: rules due
    /// at this height take effect, detection runs (updating the windows), and
    /// the events and their alerts become one batch.
    fn plan_submit(
        &mut self,
        height: u64,
        events: Vec<Event>,
        time_ms: u64,
    ) -> Result<Plan, Rejection> {
        if events.is_empty() {
            return Err(Rejection::Malformed("no events".into()));
        }
        self.activate_pending_rules(height);
        let mut alerts = Vec::new();
        let alerting = self
            .detector
            .inspect_batch(events.iter().map(|e| (e, time_ms)), &mut alerts);
        // The alerts come in event order, so each alerting event's own come
        // next: the source is that event's, whatever other events share its id.
        let mut raised = Vec::with_capacity(alerts.len());
        let mut alerts = alerts.into_iter();
        let rules = self.detector.rules();
        for alerting_event in &alerting {
            let event = &events[alerting_event.index as usize];
            for a in alerts.by_ref().take(alerting_event.alerts as usize) {
                raised.push((
                    "alerts".to_string(),
                    ExpectedVersion::Any,
                    DomainEvent::AlertRaised {
                        source: event.source.clone(),
                        rule_id: rules.rule(&a).id.clone(),
                        severity: a.severity,
                        event_id: event.id.clone(),
                        payload_hash: a.payload_hash,
                    },
                ));
            }
        }
        let mut plan = Plan {
            alerts: raised.len() as u32,
            alerting,
            ..Plan::default()
        };
        plan.events.push((
            INGEST_STREAM.to_string(),
            ExpectedVersion::Any,
            DomainEvent::EventsSubmitted { events },
        ));
        plan.events.extend(raised);
        Ok(plan)
    }

    /// The canonical encoding of the whole state (snapshot and digest input).
    pub fn encode_state(&self) -> Vec<u8> {
        codec::encode_state(&self.state, &self.detector.encode_windows())
    }

    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), String> {
        let (state, windows) = codec::decode_state(bytes).map_err(|e| e.to_string())?;
        let compiled = compile(&state.rules.1)?;
        let mut detector = Detector::new(compiled, self.config.detector);
        detector
            .restore_windows(&windows)
            .map_err(|e| e.to_string())?;
        self.state = state;
        self.detector = detector;
        Ok(())
    }

    /// Writes a snapshot of the current state to the store (at checkpoints).
    pub fn checkpoint(&mut self) -> Result<(), LedgerError> {
        let base = Base {
            sequence: self.state.head.0,
            hash: self.state.head.1,
        };
        let bytes = self.encode_state();
        self.ledger.store_mut().put_snapshot(base, &bytes)?;
        self.ledger.sync()
    }
}

/// An event to append: its stream, the expected stream version, the event.
type PlannedEvent = (String, ExpectedVersion, DomainEvent);

#[derive(Debug, Default)]
struct Plan {
    events: Vec<PlannedEvent>,
    alerts: u32,
    alerting: Vec<AlertingEvent>,
    remember: Option<(Digest, Digest)>,
    repeat: Option<u64>,
}

fn tx_time(tx: &Transaction) -> u64 {
    match tx {
        Transaction::SubmitEvents { time_ms, .. }
        | Transaction::Mint { time_ms, .. }
        | Transaction::Burn { time_ms, .. }
        | Transaction::Transfer { time_ms, .. }
        | Transaction::Stake { time_ms, .. }
        | Transaction::Unstake { time_ms, .. }
        | Transaction::Evidence { time_ms, .. }
        | Transaction::Heartbeat { time_ms }
        | Transaction::RulesUpdate { time_ms, .. } => *time_ms,
    }
}

impl State {
    /// Alerts by source, for at most [`ALERT_SOURCES_MAX`] sources (see
    /// there for how a source beyond it is counted).
    pub fn alerts_by_source(&self) -> &BTreeMap<String, u64> {
        &self.alerts_by_source
    }

    /// Counts one alert from `source`, displacing the least counted source
    /// when the table is full.
    fn count_alert_source(&mut self, source: &str) {
        if let Some(count) = self.alerts_by_source.get_mut(source) {
            self.alert_sources_by_count
                .remove(&(*count, source.to_string()));
            *count += 1;
            self.alert_sources_by_count
                .insert((*count, source.to_string()));
            return;
        }
        let mut count = 1;
        if self.alerts_by_source.len() >= ALERT_SOURCES_MAX
            && let Some((least, displaced)) = self.alert_sources_by_count.pop_first()
        {
            self.alerts_by_source.remove(&displaced);
            count = least.saturating_add(1);
        }
        self.alerts_by_source.insert(source.to_string(), count);
        self.alert_sources_by_count
            .insert((count, source.to_string()));
    }

    /// A validator's standing.
    pub fn status(&self, account: &AccountId) -> ValidatorStatus {
        if self.tombstoned.contains_key(account) {
            ValidatorStatus::Tombstoned
        } else {
            match self.jailed.get(account) {
                Some(&until) => ValidatorStatus::JailedUntil(until),
                None => ValidatorStatus::Active,
            }
        }
    }

    /// An account's bonded stake.
    pub fn stake(&self, account: &AccountId) -> u64 {
        self.stakes.get(account).copied().unwrap_or(0)
    }

    /// An account's balance.
    pub fn balance(&self, account: &AccountId) -> u64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    /// Refuses a single debit of `amount` that exceeds the balance.
    fn check_debit(&self, account: &AccountId, amount: u64) -> Result<(), Rejection> {
        let balance = self.balance(account);
        if balance < amount {
            return Err(Rejection::InsufficientFunds {
                leg: 0,
                balance,
                amount,
            });
        }
        Ok(())
    }

    /// The state before any event: with a validator set, each validator's
    /// identity account holds its voting power times
    /// [`AppConfig::genesis_stake_per_power`] as bonded stake.
    fn genesis(config: &AppConfig) -> State {
        let mut state = State::default();
        if let Some(validators) = &config.validators {
            for validator in validators.validators() {
                let stake = validator
                    .power
                    .saturating_mul(config.genesis_stake_per_power);
                if stake > 0 {
                    state.stakes.insert(validator.identity.to_bytes(), stake);
                }
                state.supply = state.supply.saturating_add(stake);
            }
        }
        state
    }

    fn stream_version(&self, stream: &str) -> u64 {
        self.streams.get(stream).copied().unwrap_or(0)
    }

    /// The rule set version in force.
    pub fn rules_version(&self) -> u64 {
        self.rules.0
    }

    /// Applies one recorded credit, stake or alert event to the projections.
    /// Events were checked before they were recorded, so arithmetic here
    /// cannot fail; saturating operations keep a corrupt-but-verified log
    /// from panicking.
    fn project(&mut self, r: &crate::ledger::EventRecord) {
        match &r.event {
            DomainEvent::Minted {
                account, amount, ..
            } => {
                credit(&mut self.balances, account, *amount);
                self.supply = self.supply.saturating_add(*amount);
            }
            DomainEvent::Burned {
                account, amount, ..
            } => {
                debit(&mut self.balances, account, *amount);
                self.supply = self.supply.saturating_sub(*amount);
            }
            DomainEvent::Transferred {
                from, to, amount, ..
            } => {
                debit(&mut self.balances, from, *amount);
                credit(&mut self.balances, to, *amount);
            }
            DomainEvent::AlertRaised {
                rule_id,
                severity,
                source,
                ..
            } => {
                *self.alerts_by_severity.entry(*severity).or_default() += 1;
                *self.alerts_by_rule.entry(rule_id.clone()).or_default() += 1;
                self.count_alert_source(source);
            }
            DomainEvent::Staked { validator, amount } => {
                debit(&mut self.balances, validator, *amount);
                credit(&mut self.stakes, validator, *amount);
            }
            DomainEvent::UnbondingStarted {
                validator,
                amount,
                matures,
            } => {
                debit(&mut self.stakes, validator, *amount);
                let started = r.causation.height;
                let entry = self
                    .unbonding
                    .entry(*validator)
                    .or_default()
                    .entry(started)
                    .or_insert(Unbonding {
                        matures: *matures,
                        amount: 0,
                    });
                entry.amount = entry.amount.saturating_add(*amount);
                self.unbonding_due
                    .insert((entry.matures, *validator, started));
            }
            DomainEvent::UnbondingCompleted {
                validator,
                amount,
                started,
            } => {
                if let Some(entries) = self.unbonding.get_mut(validator) {
                    if let Some(entry) = entries.remove(started) {
                        self.unbonding_due
                            .remove(&(entry.matures, *validator, *started));
                    }
                    if entries.is_empty() {
                        self.unbonding.remove(validator);
                    }
                }
                credit(&mut self.balances, validator, *amount);
            }
            DomainEvent::UnbondingSlashed {
                validator,
                amount,
                started,
                ..
            } => {
                if let Some(entry) = self
                    .unbonding
                    .get_mut(validator)
                    .and_then(|entries| entries.get_mut(started))
                {
                    entry.amount = entry.amount.saturating_sub(*amount);
                }
                self.supply = self.supply.saturating_sub(*amount);
            }
            DomainEvent::Slashed {
                validator,
                amount,
                evidence,
                reason,
            } => {
                debit(&mut self.stakes, validator, *amount);
                self.supply = self.supply.saturating_sub(*amount);
                if reason == Offence::Equivocation.name() {
                    self.tombstoned.insert(*validator, r.causation.height);
                }
                *self.offences.entry(*validator).or_default() += 1;
                self.slashed.insert(*evidence, r.causation.height);
            }
            DomainEvent::Heartbeat { validator } => {
                self.last_seen.insert(*validator, r.causation.height);
            }
            DomainEvent::Jailed { validator, until } => {
                self.jailed.insert(*validator, *until);
                self.jailed_since.insert(*validator, r.causation.height);
            }
            DomainEvent::RulesUpdated { .. }
            | DomainEvent::EventsSubmitted { .. }
            | DomainEvent::IdempotencyRecorded { .. } => {}
        }
    }
}

/// Adds to an account's amount. No account keeps a zero balance or stake:
/// crediting nothing creates no entry, and [`debit`] removes an entry that
/// reaches zero, so no projection ever scans for zeros.
fn credit(amounts: &mut BTreeMap<AccountId, u64>, account: &AccountId, amount: u64) {
    if amount > 0 {
        let held = amounts.entry(*account).or_default();
        *held = held.saturating_add(amount);
    }
}

/// Takes from an account's amount, removing the entry if it reaches zero.
fn debit(amounts: &mut BTreeMap<AccountId, u64>, account: &AccountId, amount: u64) {
    if let std::collections::btree_map::Entry::Occupied(mut held) = amounts.entry(*account) {
        let left = held.get().saturating_sub(amount);
        if left == 0 {
            held.remove();
        } else {
            *held.get_mut() = left;
        }
    }
}

impl<S: EventStore> Application for App<S> {
    fn execute(&mut self, sequence: Sequence, request: &Request) -> Vec<u8> {
        let client = request.client.to_bytes();
        let result = match Transaction::decode_exact(&request.payload) {
            Ok(tx) => self.execute_owned(sequence, client, request.request_id, tx),
            Err(e) => TxResult::Rejected(Rejection::Malformed(e.to_string())),
        };
        result.encode()
    }

    fn state_digest(&self) -> Digest {
        Digest::of_parts("shieldx/app/state", &[&self.encode_state()])
    }

    /// A validator's leader weight is its bonded stake; jailed (until their
    /// release height) and tombstoned validators weigh nothing.
    fn leader_weights(&self, validators: &ValidatorSet, height: Sequence) -> Vec<u64> {
        validators
            .validators()
            .iter()
            .map(|v| {
                let account = v.identity.to_bytes();
                if self.state.status(&account).eligible_at(height) {
                    self.state.stakes.get(&account).copied().unwrap_or(0)
                } else {
                    0
                }
            })
            .collect()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.encode_state()
    }

    fn restore(&mut self, snapshot: &[u8], expected: Digest) -> Result<(), RestoreError> {
        let actual = Digest::of_parts("shieldx/app/state", &[snapshot]);
        if actual != expected {
            return Err(RestoreError::DigestMismatch { expected, actual });
        }
        let (state, _) =
            codec::decode_state(snapshot).map_err(|e| RestoreError::Malformed(e.to_string()))?;
        let base = Base {
            sequence: state.head.0,
            hash: state.head.1,
        };
        let mut trial = App {
            config: self.config.clone(),
            ledger: Ledger::open(NullStore).map_err(|e| RestoreError::Malformed(e.to_string()))?,
            state: State::default(),
            detector: Detector::new(
                compile("").map_err(RestoreError::Malformed)?,
                self.config.detector,
            ),
            halted: None,
        };
        trial
            .load_snapshot(snapshot)
            .map_err(RestoreError::Malformed)?;
        self.ledger
            .reset_to_snapshot(base, snapshot, trial.state.streams.clone())
            .map_err(|e| RestoreError::Malformed(e.to_string()))?;
        self.state = trial.state;
        self.detector = trial.detector;
        self.halted = None;
        Ok(())
    }
}

/// A store with nothing in it, used to validate a snapshot before the real
/// store is touched.
#[derive(Debug)]
struct NullStore;

impl EventStore for NullStore {
    fn append(&mut self, _: &[crate::ledger::Entry]) -> Result<(), crate::ledger::StoreError> {
        Err(crate::ledger::StoreError::WriteFailed("null store".into()))
    }
    fn sync(&mut self) -> Result<(), crate::ledger::StoreError> {
        Ok(())
    }
    fn read(
        &self,
        _: u64,
        _: usize,
    ) -> Result<Vec<crate::ledger::Entry>, crate::ledger::StoreError> {
        Ok(Vec::new())
    }
    fn bounds(&self) -> Result<(Base, Option<(u64, Digest)>), crate::ledger::StoreError> {
        Ok((Base::GENESIS, None))
    }
    fn reset_to_snapshot(&mut self, _: Base, _: &[u8]) -> Result<(), crate::ledger::StoreError> {
        Ok(())
    }
    fn put_snapshot(&mut self, _: Base, _: &[u8]) -> Result<(), crate::ledger::StoreError> {
        Ok(())
    }
    fn snapshot(&self) -> Result<Option<(Base, Vec<u8>)>, crate::ledger::StoreError> {
        Ok(None)
    }
}

impl Transaction {
    /// Decodes exactly one transaction.
    pub fn decode_exact(bytes: &[u8]) -> Result<Transaction, CodecError> {
        crate::codec::decode_exact(bytes)
    }

    /// Encodes the transaction.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}
