//! The PBFT replica: normal case, checkpoints, view change, retransmission.
//!
//! # Durability contract with the driver
//! [`Output::Persist`] records appear in the output queue *before* any
//! [`Output::Send`] whose message depends on them. A driver must make every
//! `Persist` durable (synced) before it performs any output that follows it. A
//! crash may lose only records that were never synced, and then no message that
//! depends on them was sent either.
//!
//! # Timers
//! - *Batch timer* (primary): a partial batch is proposed `batch_timeout_ns` after
//!   its first request arrived.
//! - *Progress timer* (all): armed while a replica knows of work that has not
//!   executed (pending client requests or accepted pre-prepares). If execution
//!   does not advance within the timeout, the replica starts a view change. The
//!   timeout grows by one base timeout with each consecutive failed view change,
//!   up to `view_change_timeout_max_ns`, and resets once a view starts working.
//! - *Status timer* (all): every `status_interval_ns` a replica broadcasts its
//!   [`Status`]; peers answer with what it is missing (pre-prepares with batches,
//!   votes, checkpoints, the accepted new view or view-change messages), so a lost
//!   message is recovered by retransmission, never by waiting forever.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::codec::{self, CodecError};
use crate::crypto::bls::BlsSecretKey;
use crate::crypto::ed25519::{Signature, SigningKey, VerifyingKey};
use crate::crypto::{CryptoError, Digest};

use super::certificate::{
    CertificateError, CheckpointCertificate, CommitCertificate, PreparedCertificate,
};
use super::evidence::{Evidence, Phase};
use super::message::{
    BatchFetch, CertifiedBatch, CheckpointVote, CommitMessage, CommitVote, ConflictProof, Message,
    NewView, PrePrepare, Signed, SignedBody, SnapshotPiece, StateTransfer, Status, ViewChange,
    Vote,
};
use super::types::{
    Batch, CHAIN_ID_MAX, ConfigError, LeaderProof, LeaderSchedule, REQUEST_PAYLOAD_MAX,
    ReplicaIndex, Request, ScheduleAnchor, Sequence, ValidatorSet, View,
};
use crate::crypto::vrf::VrfSecretKey;
use crate::staking;

/// How far ahead of the current view a view-change message may point.
const VIEW_AHEAD_MAX: u64 = 64;
/// Slots one status answer retransmits at most.
const RETRANSMIT_SLOTS_MAX: u64 = 32;
/// Batches fetched by digest that may be outstanding at once.
const WANTED_BATCHES_MAX: usize = 4096;
/// How many views before its current one a replica still watches refused
/// pre-prepares and prepares for equivocation: one half of an equivocation
/// may reach only replicas that have moved on. Bounds what is watched to the
/// window times this many views per signer and phase.
const STALE_VIEWS_WATCHED: View = 4;

/// The replicated application that executes committed requests.
///
/// Issue "Event-sourced ledger" implements it with the ledger; tests and the
/// simulator use small deterministic ones. Execution must be deterministic: the
/// same requests in the same order give the same results and state digest on
/// every replica.
pub trait Application {
    /// Executes one committed request and returns its result for the client.
    fn execute(&mut self, sequence: Sequence, request: &Request) -> Vec<u8>;
    /// A digest of the whole application state; with the reply cache it forms
    /// the state digest that CHECKPOINT messages carry.
    fn state_digest(&self) -> Digest;
    /// The whole application state, for state transfer. Taken at checkpoints.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the state with `snapshot`, but only if the restored state's digest
    /// is `expected`; otherwise leaves the state untouched and says why.
    fn restore(&mut self, snapshot: &[u8], expected: Digest) -> Result<(), RestoreError>;
    /// Leader weight per validator index at the current state (0: not
    /// eligible), read after executing the checkpoint at `height`. The
    /// default is the voting power.
    fn leader_weights(&self, validators: &ValidatorSet, _height: Sequence) -> Vec<u64> {
        validators.validators().iter().map(|v| v.power).collect()
    }
}

/// Why an application refused a snapshot. The state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The snapshot does not decode.
    #[error("snapshot does not decode: {0}")]
    Malformed(String),
    /// The snapshot decodes to a state with another digest.
    #[error("snapshot digest {actual} differs from the certified {expected}")]
    DigestMismatch {
        /// The certified digest.
        expected: Digest,
        /// The digest of the decoded state.
        actual: Digest,
    },
}

/// Replica configuration. Every limit is explicit.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// Chain id, bound into every signature.
    pub chain_id: Vec<u8>,
    /// The validator set and powers.
    pub validators: ValidatorSet,
    /// K: a checkpoint every K sequence numbers.
    pub checkpoint_interval: u64,
    /// L: the watermark window, `h < n <= h + L`; a multiple of K, at least 2K.
    pub window: u64,
    /// Most requests in one batch.
    pub batch_requests_max: usize,
    /// Most payload bytes in one batch.
    pub batch_bytes_max: usize,
    /// How long the primary waits to fill a batch.
    pub batch_timeout_ns: u64,
    /// Most proposed batches the primary keeps in flight (proposed, not yet
    /// executed here). Beyond it requests wait and fill the next batch, so
    /// that under load the per-batch costs (signatures, the BLS commit
    /// certificate) are spread over many requests instead of many batches.
    pub proposals_in_flight_max: u64,
    /// Base progress timeout before a view change.
    pub request_timeout_ns: u64,
    /// Cap on the progress timeout, which grows by `request_timeout_ns` per
    /// consecutive failed view change.
    pub view_change_timeout_max_ns: u64,
    /// Interval between STATUS broadcasts.
    pub status_interval_ns: u64,
    /// Largest snapshot piece a replica serves: a snapshot longer than this
    /// goes to a lagging replica in pieces ([`SnapshotPiece`]). At most
    /// [`SNAPSHOT_BYTES_MAX`](super::message::SNAPSHOT_BYTES_MAX).
    pub snapshot_chunk_bytes: usize,
    /// Most client requests waiting to be ordered.
    pub pending_requests_max: usize,
    /// Most clients tracked in the reply cache.
    pub clients_max: usize,
    /// Check client signatures (always on in production; benches measure both).
    pub verify_client_signatures: bool,
    /// A deliberately planted protocol bug, for testing the simulator's power
    /// to find and shrink failures. Exists only with the test-only
    /// `planted-bugs` feature: production builds cannot contain it.
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<PlantedBug>,
}

/// Protocol bugs the simulator must be able to catch (test-only): the
/// catalogue `sim/examples/planted_catalogue.rs` measures the swarm's
/// bug-finding power against. Each is one small, plausible slip in the replica.
#[cfg(feature = "planted-bugs")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlantedBug {
    /// Prepare and commit quorums need one unit of power less than 2/3.
    QuorumOffByOne,
    /// Signatures are recorded in memory but never persisted, so a replica
    /// restarted from its records may sign a second digest for a slot.
    NoPersistBeforeVote,
    /// Backups never arm the progress timer: a failed primary is never
    /// replaced.
    NoProgressTimer,
    /// Detected equivocations produce no evidence.
    SuppressedEvidence,
    /// A commit certificate is formed from the matching votes without
    /// verifying the aggregate signature.
    UnverifiedCommitCertificate,
    /// Execution skips the exactly-once check, so a request ordered twice
    /// executes twice.
    ExactlyOnceSkipped,
    /// The NEW-VIEW plan keeps, per sequence, the digest prepared in the
    /// lowest view instead of the highest.
    LowestViewInNewView,
    /// VIEW-CHANGE messages carry no prepared certificates, so the new view
    /// may fill a slot some replica already committed with another batch.
    ViewChangeDropsPrepared,
}

#[cfg(feature = "planted-bugs")]
impl PlantedBug {
    /// Every planted bug, in catalogue order.
    pub const ALL: [PlantedBug; 8] = [
        PlantedBug::QuorumOffByOne,
        PlantedBug::NoPersistBeforeVote,
        PlantedBug::NoProgressTimer,
        PlantedBug::SuppressedEvidence,
        PlantedBug::UnverifiedCommitCertificate,
        PlantedBug::ExactlyOnceSkipped,
        PlantedBug::LowestViewInNewView,
        PlantedBug::ViewChangeDropsPrepared,
    ];

    /// The bug's name in scenarios and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::QuorumOffByOne => "quorum-off-by-one",
            PlantedBug::NoPersistBeforeVote => "no-persist-before-vote",
            PlantedBug::NoProgressTimer => "no-progress-timer",
            PlantedBug::SuppressedEvidence => "suppressed-evidence",
            PlantedBug::UnverifiedCommitCertificate => "unverified-commit-certificate",
            PlantedBug::ExactlyOnceSkipped => "exactly-once-skipped",
            PlantedBug::LowestViewInNewView => "lowest-view-in-new-view",
            PlantedBug::ViewChangeDropsPrepared => "view-change-drops-prepared",
        }
    }

    /// The bug called `name`, if any.
    pub fn from_name(name: &str) -> Option<PlantedBug> {
        PlantedBug::ALL.into_iter().find(|bug| bug.name() == name)
    }
}

impl ReplicaConfig {
    /// Defaults: K = 100, L = 200, batches of up to 1,000 requests or 1 MiB, 5 ms
    /// batch timeout, 8 batches in flight, 500 ms progress timeout growing by
    /// 500 ms per failed view change up to 30 s, 100 ms status.
    pub fn new(chain_id: &[u8], validators: ValidatorSet) -> ReplicaConfig {
        ReplicaConfig {
            chain_id: chain_id.to_vec(),
            validators,
            checkpoint_interval: 100,
            window: 200,
            batch_requests_max: 1_000,
            batch_bytes_max: 1 << 20,
            batch_timeout_ns: 5_000_000,
            proposals_in_flight_max: 8,
            request_timeout_ns: 500_000_000,
            view_change_timeout_max_ns: 30_000_000_000,
            status_interval_ns: 100_000_000,
            snapshot_chunk_bytes: super::message::SNAPSHOT_BYTES_MAX / 2,
            pending_requests_max: 100_000,
            clients_max: 100_000,
            verify_client_signatures: true,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }

    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason| Err(ConfigError::Invalid { field, reason });
        if self.chain_id.is_empty() || self.chain_id.len() > CHAIN_ID_MAX {
            return invalid("chain_id", "must be 1 to 64 bytes");
        }
        if self.checkpoint_interval == 0 {
            return invalid("checkpoint_interval", "must be positive");
        }
        if self.window < 2 * self.checkpoint_interval
            || !self.window.is_multiple_of(self.checkpoint_interval)
            || self.window as usize > super::message::WINDOW_MAX
        {
            return invalid(
                "window",
                "must be a multiple of K, at least 2K, at most 4096",
            );
        }
        if self.batch_requests_max == 0
            || self.batch_requests_max > super::types::BATCH_REQUESTS_MAX
        {
            return invalid("batch_requests_max", "must be 1 to 16,384");
        }
        if self.proposals_in_flight_max == 0 {
            return invalid("proposals_in_flight_max", "must be positive");
        }
        if self.batch_bytes_max < REQUEST_PAYLOAD_MAX {
            return invalid("batch_bytes_max", "must hold at least one maximal request");
        }
        if self.request_timeout_ns == 0 || self.view_change_timeout_max_ns < self.request_timeout_ns
        {
            return invalid(
                "request_timeout_ns",
                "must be positive and at most the maximum",
            );
        }
        if self.status_interval_ns == 0 || self.pending_requests_max == 0 || self.clients_max == 0 {
            return invalid(
                "status_interval_ns",
                "intervals and bounds must be positive",
            );
        }
        if self.snapshot_chunk_bytes == 0
            || self.snapshot_chunk_bytes > super::message::SNAPSHOT_BYTES_MAX
        {
            return invalid("snapshot_chunk_bytes", "must be 1 byte to 8 MiB");
        }
        Ok(())
    }
}

/// The keys a replica signs with.
#[derive(Debug)]
pub struct ReplicaKeys {
    /// This replica's index in the validator set.
    pub index: ReplicaIndex,
    /// ed25519 identity (must match the validator set).
    pub identity: SigningKey,
    /// BLS vote key (must match the validator set).
    pub vote_key: BlsSecretKey,
    /// ECVRF key for the leader beacon (must match the validator set).
    pub vrf_key: VrfSecretKey,
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every other replica.
    All,
    /// One replica.
    Replica(ReplicaIndex),
}

/// A record the driver must make durable before performing later outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurableRecord {
    /// The replica entered (or started changing to) this view.
    View(View),
    /// The replica signed `digest` for `(view, sequence, phase)`.
    Signed {
        /// The view.
        view: View,
        /// The sequence.
        sequence: Sequence,
        /// The phase.
        phase: Phase,
        /// What it signed.
        digest: Digest,
    },
    /// The replica signed a checkpoint vote.
    Checkpoint(CheckpointVote),
    /// The replica signed this view change.
    ViewChange(Signed<ViewChange>),
    /// A checkpoint became stable; records below it may be discarded.
    StableCheckpoint(CheckpointCertificate),
}

const DURABLE_RECORD_VERSION: u8 = 1;

impl codec::Encode for DurableRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(DURABLE_RECORD_VERSION);
        match self {
            DurableRecord::View(view) => {
                out.push(1);
                out.extend_from_slice(&view.to_le_bytes());
            }
            DurableRecord::Signed {
                view,
                sequence,
                phase,
                digest,
            } => {
                out.push(2);
                out.extend_from_slice(&view.to_le_bytes());
                out.extend_from_slice(&sequence.to_le_bytes());
                out.push(match phase {
                    Phase::PrePrepare => 1,
                    Phase::Prepare => 2,
                    Phase::Commit => 3,
                });
                digest.encode(out);
            }
            DurableRecord::Checkpoint(vote) => {
                out.push(3);
                vote.encode(out);
            }
            DurableRecord::ViewChange(signed) => {
                out.push(4);
                signed.encode(out);
            }
            DurableRecord::StableCheckpoint(certificate) => {
                out.push(5);
                certificate.encode(out);
            }
        }
    }
}

impl codec::Decode for DurableRecord {
    fn decode(reader: &mut codec::Reader<'_>) -> Result<Self, CodecError> {
        reader.version("durable record", DURABLE_RECORD_VERSION)?;
        Ok(match reader.u8("durable record kind")? {
            1 => DurableRecord::View(reader.u64("view")?),
            2 => DurableRecord::Signed {
                view: reader.u64("view")?,
                sequence: reader.u64("sequence")?,
                phase: match reader.u8("phase")? {
                    1 => Phase::PrePrepare,
                    2 => Phase::Prepare,
                    3 => Phase::Commit,
                    tag => return Err(CodecError::InvalidTag { what: "phase", tag }),
                },
                digest: Digest::decode(reader)?,
            },
            3 => DurableRecord::Checkpoint(CheckpointVote::decode(reader)?),
            4 => DurableRecord::ViewChange(Signed::decode(reader)?),
            5 => DurableRecord::StableCheckpoint(CheckpointCertificate::decode(reader)?),
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "durable record kind",
                    tag,
                });
            }
        })
    }
}

/// Why stored bytes are not a durable record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Shorter than the checksum that must precede every record.
    #[error("stored durable record is {0} bytes, shorter than its checksum")]
    Truncated(usize),
    /// The bytes changed after they were written.
    #[error("stored durable record fails its checksum: the storage corrupted it")]
    ChecksumMismatch,
    /// The checksum holds but the record does not decode (written by an
    /// incompatible version).
    #[error("stored durable record does not decode: {0}")]
    Malformed(CodecError),
}

/// Bytes of the checksum in front of each stored record (blake3, truncated).
const RECORD_CHECKSUM_BYTES: usize = 16;

fn record_checksum(encoded: &[u8]) -> [u8; RECORD_CHECKSUM_BYTES] {
    let digest = Digest::of_parts("shieldx durable record", &[encoded]);
    let mut checksum = [0; RECORD_CHECKSUM_BYTES];
    checksum.copy_from_slice(&digest.as_bytes()[..RECORD_CHECKSUM_BYTES]);
    checksum
}

impl DurableRecord {
    /// The record as a driver stores it: a checksum, then the encoding. A
    /// corrupted record can decode to a plausible but different one (a
    /// flipped bit in a signed digest), and a replica recovered from it could
    /// sign twice for one slot; the checksum makes every such read fail.
    pub fn to_stored(&self) -> Vec<u8> {
        let encoded = codec::Encode::to_encoded(self);
        let mut stored = Vec::with_capacity(RECORD_CHECKSUM_BYTES + encoded.len());
        stored.extend_from_slice(&record_checksum(&encoded));
        stored.extend_from_slice(&encoded);
        stored
    }

    /// Reads a record written by [`DurableRecord::to_stored`], refusing any
    /// bytes that changed since.
    pub fn from_stored(stored: &[u8]) -> Result<DurableRecord, RecordError> {
        if stored.len() < RECORD_CHECKSUM_BYTES {
            return Err(RecordError::Truncated(stored.len()));
        }
        let (checksum, encoded) = stored.split_at(RECORD_CHECKSUM_BYTES);
        if checksum != record_checksum(encoded) {
            return Err(RecordError::ChecksumMismatch);
        }
        codec::decode_exact(encoded).map_err(RecordError::Malformed)
    }
}

/// A committed, executed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Its sequence number.
    pub sequence: Sequence,
    /// The batch.
    pub batch: Batch,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
    /// The application state digest after executing it.
    pub state_digest: Digest,
}

/// A replica's reply to a client.
///
/// The replica emits replies as data. The driver signs those it actually
/// delivers ([`Reply::sign`]) with the replica's identity key: signing at the
/// edge costs one ed25519 signature per delivered reply instead of one per
/// executed request on every replica, most of which no client is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The view the request committed in (informational, not signed: replies
    /// for one request from different views must still match).
    pub view: View,
    /// The sequence number it committed at.
    pub sequence: Sequence,
    /// The client.
    pub client: VerifyingKey,
    /// The client's request id.
    pub request_id: u64,
    /// The application's result.
    pub result: Vec<u8>,
    /// The replying replica.
    pub replica: ReplicaIndex,
}

const REPLY_DOMAIN: &[u8] = b"shieldx/reply/v1";

impl Reply {
    /// Signs the reply as its replica.
    pub fn sign(&self, chain_id: &[u8], key: &SigningKey) -> Signature {
        key.sign(&self.signing_bytes(chain_id))
    }

    fn signing_bytes(&self, chain_id: &[u8]) -> Vec<u8> {
        reply_signing_bytes(
            chain_id,
            self.sequence,
            &self.client,
            self.request_id,
            &self.result,
            self.replica,
        )
    }

    /// Verifies a reply signature against the replica's identity.
    pub fn verify(
        &self,
        chain_id: &[u8],
        validators: &ValidatorSet,
        signature: &Signature,
    ) -> Result<(), CryptoError> {
        let validator = validators
            .get(self.replica)
            .ok_or(CryptoError::VerificationFailed {
                what: "reply signer is not a validator",
            })?;
        validator
            .identity
            .verify(&self.signing_bytes(chain_id), signature)
    }
}

fn reply_signing_bytes(
    chain_id: &[u8],
    sequence: Sequence,
    client: &VerifyingKey,
    request_id: u64,
    result: &[u8],
    replica: ReplicaIndex,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + result.len());
    out.extend_from_slice(REPLY_DOMAIN);
    codec::put_bytes(&mut out, chain_id);
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&client.to_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    codec::put_bytes(&mut out, result);
    out.extend_from_slice(&replica.to_le_bytes());
    out
}

/// Everything a replica asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send a message.
    Send {
        /// Recipient(s).
        to: Target,
        /// The message.
        message: Message,
    },
    /// Make a record durable before any later output.
    Persist(DurableRecord),
    /// A batch committed and executed, in sequence order.
    Committed(Committed),
    /// A reply for a client.
    Reply(Reply),
    /// Proof of a validator's equivocation.
    Evidence(Evidence),
    /// The replica entered a new view (for traces and metrics).
    EnteredView(View),
    /// The replica signed a checkpoint with this state digest (application plus
    /// reply cache).
    Checkpointed {
        /// The checkpointed sequence.
        sequence: Sequence,
        /// The state digest.
        state_digest: Digest,
    },
    /// The replica restored a certified snapshot instead of executing up to it.
    StateTransferred {
        /// The checkpoint it restored.
        sequence: Sequence,
        /// The certified state digest.
        state_digest: Digest,
    },
}

/// Why an input was rejected. A rejected input changes no state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Bytes that do not decode.
    #[error("malformed: {0}")]
    Malformed(#[from] CodecError),
    /// The transport sender is not a validator, or is this replica.
    #[error("unknown sender {0}")]
    UnknownSender(ReplicaIndex),
    /// The signed sender differs from the transport sender.
    #[error("message signed by {signer} arrived from {from}")]
    WrongSender {
        /// Transport sender.
        from: ReplicaIndex,
        /// Signer.
        signer: ReplicaIndex,
    },
    /// A signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(CryptoError),
    /// A certificate inside does not verify.
    #[error("bad certificate: {0}")]
    BadCertificate(CertificateError),
    /// A pre-prepare from a validator that is not the primary.
    #[error("sender is not the primary of view {0}")]
    NotPrimary(View),
    /// A batch's leader proof names another proposer or sits at a
    /// non-checkpoint sequence.
    #[error("leader proof from another proposer or off a checkpoint")]
    BadLeaderProof,
    /// For an older view.
    #[error("stale view {0}")]
    StaleView(View),
    /// For a view this replica has not entered (retransmission will catch it up).
    #[error("future view {0}")]
    FutureView(View),
    /// The replica is changing views and ignores normal-case messages.
    #[error("changing views")]
    ChangingView,
    /// Outside the watermark window.
    #[error("sequence {0} outside the watermark window")]
    OutOfWindow(Sequence),
    /// Already have it.
    #[error("duplicate")]
    Duplicate,
    /// A vote of a later view for a sequence this replica already holds a
    /// commit certificate for; the certificate stands (state transfer serves
    /// it to replicas that missed the commit).
    #[error("sequence {0} already committed")]
    AlreadyCommitted(Sequence),
    /// Conflicts with something the sender signed before (evidence was emitted).
    #[error("equivocation by {0}")]
    Equivocation(ReplicaIndex),
    /// The batch does not match the digest.
    #[error("batch does not match its digest")]
    DigestMismatch,
    /// Over a size limit.
    #[error("too large: {0}")]
    TooLarge(&'static str),
    /// A client request is invalid.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A request was already executed; its cached reply was re-sent.
    #[error("request already executed")]
    AlreadyExecuted,
    /// The request id trails the client's newest executed one by
    /// [`CLIENT_WINDOW`] or more; it will never execute.
    #[error("request id is {CLIENT_WINDOW} or more behind the newest executed ({newest})")]
    OutsideClientWindow {
        /// The client's newest executed request id.
        newest: u64,
    },
    /// A bounded queue is full.
    #[error("queue full: {0}")]
    QueueFull(&'static str),
    /// A NEW-VIEW whose `O` or `V` is wrong.
    #[error("bad new view: {0}")]
    BadNewView(&'static str),
    /// A batch response nobody asked for.
    #[error("unsolicited batch")]
    Unsolicited,
    /// A checkpoint vote for a sequence that is not a checkpoint.
    #[error("not a checkpoint sequence")]
    NotCheckpoint,
    /// A snapshot the application refused.
    #[error("bad snapshot: {0}")]
    BadSnapshot(RestoreError),
    /// The peer asks more often than allowed.
    #[error("rate limited")]
    RateLimited,
}

impl Rejection {
    /// A stable name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::UnknownSender(_) => "unknown_sender",
            Rejection::WrongSender { .. } => "wrong_sender",
            Rejection::BadSignature(_) => "bad_signature",
            Rejection::BadCertificate(_) => "bad_certificate",
            Rejection::NotPrimary(_) => "not_primary",
            Rejection::StaleView(_) => "stale_view",
            Rejection::FutureView(_) => "future_view",
            Rejection::ChangingView => "changing_view",
            Rejection::OutOfWindow(_) => "out_of_window",
            Rejection::Duplicate => "duplicate",
            Rejection::AlreadyCommitted(_) => "already_committed",
            Rejection::Equivocation(_) => "equivocation",
            Rejection::DigestMismatch => "digest_mismatch",
            Rejection::TooLarge(_) => "too_large",
            Rejection::BadRequest(_) => "bad_request",
            Rejection::AlreadyExecuted => "already_executed",
            Rejection::OutsideClientWindow { .. } => "outside_client_window",
            Rejection::QueueFull(_) => "queue_full",
            Rejection::BadNewView(_) => "bad_new_view",
            Rejection::Unsolicited => "unsolicited",
            Rejection::NotCheckpoint => "not_checkpoint",
            Rejection::BadSnapshot(_) => "bad_snapshot",
            Rejection::BadLeaderProof => "bad_leader_proof",
            Rejection::RateLimited => "rate_limited",
        }
    }
}

/// Rejections counted by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectionCounts(BTreeMap<&'static str, u64>);

impl RejectionCounts {
    /// The count for one kind.
    pub fn get(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    /// Every non-zero count, by kind.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }

    /// The sum of all counts.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    ChangingView,
}

/// One sequence number's state in the current view.
#[derive(Debug, Default)]
struct Slot {
    view: View,
    pre_prepare: Option<Signed<PrePrepare>>,
    prepares: BTreeMap<ReplicaIndex, Signed<Vote>>,
    /// Commit votes, not yet individually verified.
    commits: BTreeMap<ReplicaIndex, CommitVote>,
    prepared: bool,
    certificate: Option<CommitCertificate>,
    /// This replica's own votes, kept for retransmission.
    own_prepare: Option<Signed<Vote>>,
    own_commit: Option<CommitVote>,
    /// The commit message hashed when this replica signed its vote, reused
    /// to check the certificate.
    commit_message: Option<CommitMessage>,
}

impl Slot {
    fn digest(&self) -> Option<Digest> {
        self.pre_prepare.as_ref().map(|p| p.body.digest)
    }

    /// The hashed commit message for `(view, sequence, digest)`, hashed once
    /// per slot.
    fn commit_message(
        &mut self,
        chain_id: &[u8],
        (view, sequence, digest): (View, Sequence, Digest),
    ) -> CommitMessage {
        match self.commit_message {
            Some(message)
                if (message.view, message.sequence, message.digest) == (view, sequence, digest) =>
            {
                message
            }
            _ => {
                let message = CommitMessage::new(chain_id, view, sequence, digest);
                self.commit_message = Some(message);
                message
            }
        }
    }
}

/// A message seen from another validator, kept to detect equivocation.
#[derive(Debug, Clone)]
enum Seen {
    PrePrepare(Signed<PrePrepare>),
    Prepare(Signed<Vote>),
    Commit(CommitVote),
}

/// How far a client's request id may trail its newest executed one and
/// still execute. A client may pipeline requests, but must keep every
/// request it has not seen committed within this distance of the newest
/// one it sent (a TigerBeetle session has a window of one; PBFT assumes
/// one). Executed requests inside the window keep their replies.
pub const CLIENT_WINDOW: u64 = 32;

/// One executed request, kept for re-sending its reply. Replicated state:
/// it holds only what the committed log determines. The view a replica's
/// certificate for the slot carries is not (one batch may commit at one
/// sequence under certificates of different views at different replicas), so
/// a re-sent reply carries the replica's current view instead (scenario
/// regression-checkpoint-digest-covers-the-commit-view).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Executed {
    sequence: Sequence,
    result: Vec<u8>,
}

/// A client's executed requests inside its window: ids above
/// `newest - CLIENT_WINDOW`.
#[derive(Debug, Clone, Default)]
struct ClientEntry {
    executed: BTreeMap<u64, Executed>,
}

/// Where a request id stands against its client's window.
enum Standing<'a> {
    /// Not executed, inside the window: may execute.
    Fresh,
    /// Executed; here is its reply.
    Executed(&'a Executed),
    /// Below the window: whether or not it executed, it never will now.
    TooOld,
}

impl ClientEntry {
    fn newest(&self) -> u64 {
        self.executed.last_key_value().map_or(0, |(id, _)| *id)
    }

    fn latest_sequence(&self) -> Sequence {
        self.executed
            .values()
            .map(|e| e.sequence)
            .max()
            .unwrap_or(0)
    }

    fn standing(&self, request_id: u64) -> Standing<'_> {
        if request_id.saturating_add(CLIENT_WINDOW) <= self.newest() {
            return Standing::TooOld;
        }
        match self.executed.get(&request_id) {
            Some(executed) => Standing::Executed(executed),
            None => Standing::Fresh,
        }
    }

    fn record(&mut self, request_id: u64, executed: Executed) {
        self.executed.insert(request_id, executed);
        let floor = self.newest().saturating_sub(CLIENT_WINDOW);
        self.executed = self.executed.split_off(&(floor + 1));
    }
}

fn is_fresh(clients: &BTreeMap<[u8; 32], ClientEntry>, client: &[u8; 32], id: u64) -> bool {
    clients
        .get(client)
        .is_none_or(|e| matches!(e.standing(id), Standing::Fresh))
}

/// The reply cache is replicated state: it is part of every checkpoint digest
/// and of every snapshot.
fn encode_clients(clients: &BTreeMap<[u8; 32], ClientEntry>) -> Vec<u8> {
    let mut out = Vec::new();
    codec::put_length(&mut out, clients.len());
    for (client, entry) in clients {
        out.extend_from_slice(client);
        codec::put_length(&mut out, entry.executed.len());
        for (id, executed) in &entry.executed {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&executed.sequence.to_le_bytes());
            codec::put_bytes(&mut out, &executed.result);
        }
    }
    out
}

fn decode_clients(
    bytes: &[u8],
    clients_max: usize,
) -> Result<BTreeMap<[u8; 32], ClientEntry>, CodecError> {
    let mut reader = codec::Reader::new(bytes);
    let count = reader.length("client table", clients_max)?;
    let mut clients = BTreeMap::new();
    let mut previous: Option<[u8; 32]> = None;
    for _ in 0..count {
        let client: [u8; 32] = reader.array("client")?;
        if previous.is_some_and(|p| p >= client) {
            return Err(CodecError::Invalid {
                what: "client table",
                reason: "not strictly sorted",
            });
        }
        previous = Some(client);
        let count = reader.length("client window", CLIENT_WINDOW as usize)?;
        let mut entry = ClientEntry::default();
        for _ in 0..count {
            let id = reader.u64("request id")?;
            let executed = Executed {
                sequence: reader.u64("sequence")?,
                result: reader.bytes("result", REQUEST_PAYLOAD_MAX)?,
            };
            if entry.newest() >= id {
                return Err(CodecError::Invalid {
                    what: "client window",
                    reason: "request ids not strictly increasing",
                });
            }
            entry.executed.insert(id, executed);
        }
        if count == 0 || entry.executed.len() != count {
            return Err(CodecError::Invalid {
                what: "client window",
                reason: "empty or wider than the window",
            });
        }
        if entry
            .executed
            .keys()
            .next()
            .is_some_and(|first| first + CLIENT_WINDOW <= entry.newest())
        {
            return Err(CodecError::Invalid {
                what: "client window",
                reason: "wider than the window",
            });
        }
        clients.insert(client, entry);
    }
    if reader.remaining() != 0 {
        return Err(CodecError::TrailingBytes {
            remaining: reader.remaining(),
        });
    }
    Ok(clients)
}

/// The checkpoint state digest: the application's digest, the reply cache's
/// and the leader beacon's seed.
fn checkpoint_digest(app_digest: Digest, clients: &[u8], seed: &[u8; 32]) -> Digest {
    Digest::of_parts(
        "shieldx checkpoint state v3",
        &[app_digest.as_bytes(), Digest::of(clients).as_bytes(), seed],
    )
}

const SNAPSHOT_VERSION: u8 = 3;

/// A replica snapshot: beacon seed, application state and reply cache.
fn encode_snapshot(seed: &[u8; 32], app_digest: Digest, app: &[u8], clients: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(app.len() + clients.len() + 80);
    out.push(SNAPSHOT_VERSION);
    out.extend_from_slice(seed);
    out.extend_from_slice(app_digest.as_bytes());
    codec::put_bytes(&mut out, app);
    codec::put_bytes(&mut out, clients);
    out
}

/// Request bytes of the certified batches one state-transfer message carries
/// (beyond its first batch); with a snapshot piece of at most
/// `snapshot_chunk_bytes`, a message stays under
/// [`ENCODED_LENGTH_MAX`](crate::codec::ENCODED_LENGTH_MAX).
const TRANSFER_BATCH_BYTES: usize = 4 << 20;

/// Snapshot pieces a replica serves one peer per status interval.
const PIECES_PER_INTERVAL: u32 = 16;

/// A snapshot being received in pieces ([`SnapshotPiece`]).
#[derive(Debug)]
struct SnapshotAssembly {
    checkpoint: CheckpointCertificate,
    total: usize,
    bytes: Vec<u8>,
}

/// A decoded snapshot: (beacon seed, app digest, app state, reply cache).
type SnapshotParts = ([u8; 32], Digest, Vec<u8>, Vec<u8>);

/// Splits a replica snapshot into its parts.
///
/// The parts are bounded by the snapshot itself, not by the wire limit
/// ([`SNAPSHOT_BYTES_MAX`](super::message::SNAPSHOT_BYTES_MAX)): a snapshot
/// from a peer was held to that limit when its message was decoded, and one
/// the replica's own driver stored ([`Replica::resume`]) may be larger.
fn decode_snapshot(bytes: &[u8]) -> Result<SnapshotParts, CodecError> {
    let mut reader = codec::Reader::new(bytes);
    reader.version("snapshot", SNAPSHOT_VERSION)?;
    let seed: [u8; 32] = reader.array("beacon seed")?;
    let app_digest = Digest::from_bytes(reader.array("app digest")?);
    let app = reader.bytes("app snapshot", bytes.len())?;
    let clients = reader.bytes("client table", bytes.len())?;
    if reader.remaining() != 0 {
        return Err(CodecError::TrailingBytes {
            remaining: reader.remaining(),
        });
    }
    Ok((seed, app_digest, app, clients))
}

/// Entries in each of a replica's collections ([`Replica::footprint`]).
///
/// Every one is bounded: by the window (`slots`, `prepared`, `batches`
/// between checkpoints, `signed`, `seen`, `evidence`, `forwarded`), by the
/// window and the validators (`checkpoint_votes`), by `VIEW_AHEAD_MAX` and
/// the validators (`view_changes`), by configuration (`pending`,
/// `clients`), by a constant (`wanted_batches`), by the validator count
/// (`state_served`), or by the driver draining `outputs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Log slots (sequence numbers in the window).
    pub slots: usize,
    /// Batches held (by digest).
    pub batches: usize,
    /// Batches asked of peers.
    pub wanted_batches: usize,
    /// Prepared certificates above the stable checkpoint.
    pub prepared: usize,
    /// CHECKPOINT votes held, over all sequences.
    pub checkpoint_votes: usize,
    /// This replica's own CHECKPOINT votes at or above the stable one.
    pub own_checkpoints: usize,
    /// Snapshots at own checkpoints at or above the stable one.
    pub checkpoint_snapshots: usize,
    /// Schedule anchors at own checkpoints at or above the stable one.
    pub anchors: usize,
    /// Peers served state recently.
    pub state_served: usize,
    /// Peers served snapshot pieces recently.
    pub pieces_served: usize,
    /// Bytes of a snapshot being received in pieces.
    pub snapshot_assembly_bytes: usize,
    /// VIEW-CHANGE messages held, over all views.
    pub view_changes: usize,
    /// Pending requests, with their order queues.
    pub pending: usize,
    /// Requests the primary placed in uncommitted batches.
    pub proposed: usize,
    /// Client table entries.
    pub clients: usize,
    /// What this replica signed per (view, sequence, phase).
    pub signed: usize,
    /// Messages watched for equivocation.
    pub seen: usize,
    /// Offences reported.
    pub evidence: usize,
    /// Conflict proofs forwarded.
    pub forwarded: usize,
    /// Outputs the driver has not polled.
    pub outputs: usize,
}

/// A PBFT replica over application `A`.
#[derive(Debug)]
pub struct Replica<A: Application> {
    config: ReplicaConfig,
    keys: ReplicaKeys,
    schedule: Box<dyn LeaderSchedule>,
    app: A,

    /// The beacon seed after the last executed checkpoint, and that checkpoint.
    beacon: [u8; 32],
    beacon_at: Sequence,
    /// Schedule anchors at own checkpoints at or above the stable one.
    anchors: BTreeMap<Sequence, ScheduleAnchor>,
    /// The anchor of the stable checkpoint: what future views are drawn from.
    anchor: ScheduleAnchor,
    /// The primary of the current view, fixed when the view started working.
    pinned_primary: Option<ReplicaIndex>,
    /// The primary waits to propose a checkpoint sequence until it has
    /// executed the previous checkpoint (its VRF input).
    proposal_stalled: bool,

    view: View,
    mode: Mode,
    /// Consecutive view changes without a working view.
    view_change_attempts: u32,

    stable_checkpoint: CheckpointCertificate,
    last_executed: Sequence,
    /// The primary's next sequence number to assign.
    next_sequence: Sequence,
    slots: BTreeMap<Sequence, Slot>,
    batches: BTreeMap<Digest, Batch>,
    wanted_batches: BTreeSet<Digest>,
    /// Prepared certificates above the stable checkpoint, highest view per sequence.
    prepared: BTreeMap<Sequence, PreparedCertificate>,
    checkpoint_votes: BTreeMap<Sequence, BTreeMap<ReplicaIndex, Signed<CheckpointVote>>>,
    own_checkpoints: BTreeMap<Sequence, Signed<CheckpointVote>>,
    /// Snapshots at this replica's own checkpoints at or above the stable one.
    checkpoint_snapshots: BTreeMap<Sequence, Vec<u8>>,
    /// The last executed sequence at which a peer was last seen ahead of us.
    behind_at: Option<Sequence>,
    /// The peer asked for state, and when.
    state_request: Option<(ReplicaIndex, u64)>,
    /// When each peer was last served state (rate limit: one per status interval).
    state_served: BTreeMap<ReplicaIndex, u64>,
    /// A snapshot arriving in pieces: its checkpoint, its length and the
    /// bytes so far (at most [`SNAPSHOT_TOTAL_MAX`](super::message::SNAPSHOT_TOTAL_MAX)).
    snapshot_assembly: Option<SnapshotAssembly>,
    /// Snapshot pieces served to each peer in the current status interval:
    /// (when the interval began, pieces), at most [`PIECES_PER_INTERVAL`].
    pieces_served: BTreeMap<ReplicaIndex, (u64, u32)>,

    view_changes: BTreeMap<View, BTreeMap<ReplicaIndex, Signed<ViewChange>>>,
    own_view_change: Option<Signed<ViewChange>>,
    accepted_new_view: Option<Signed<NewView>>,

    /// Client requests waiting to be ordered, oldest first, by (client, id).
    pending: BTreeMap<([u8; 32], u64), Request>,
    pending_order: VecDeque<([u8; 32], u64)>,
    /// Requests signed by validator identities (evidence, liveness
    /// heartbeats), proposed before client requests so that load cannot
    /// delay them.
    priority_order: VecDeque<([u8; 32], u64)>,
    /// The validators' identity keys.
    validator_identities: BTreeSet<[u8; 32]>,
    pending_bytes: usize,
    /// Requests the primary already placed in an uncommitted batch.
    proposed: BTreeSet<([u8; 32], u64)>,
    /// Payload bytes of the proposed requests.
    proposed_bytes: usize,
    clients: BTreeMap<[u8; 32], ClientEntry>,

    /// What this replica signed, per (view, sequence, phase): it never signs a
    /// different digest for the same key.
    signed: BTreeMap<(View, Sequence, Phase), Digest>,
    /// Every verified pre-prepare, prepare and commit, per (sequence, view,
    /// phase, signer): a second one with another digest is evidence. Keyed by
    /// slot first, so a slot's watched messages are one range and pruning is a
    /// split.
    seen: BTreeMap<(Sequence, View, Phase, ReplicaIndex), Seen>,
    /// Offences already reported, one per (signer, view, sequence, phase,
    /// wrong NEW-VIEW): a validator that signs many digests for one slot
    /// yields one piece of evidence, not one per digest.
    evidence_slots: BTreeSet<(ReplicaIndex, View, Sequence, Phase, bool)>,
    /// Conflict proofs already forwarded: (signer, view, sequence, phase, target).
    forwarded: BTreeSet<(ReplicaIndex, View, Sequence, Phase, Option<ReplicaIndex>)>,

    /// The latest `now_ns` any input carried; time never runs backwards here.
    now_ns: u64,
    batch_deadline_ns: Option<u64>,
    progress_deadline_ns: Option<u64>,
    status_deadline_ns: u64,

    outputs: VecDeque<Output>,
    rejections: RejectionCounts,
}

impl<A: Application> Replica<A> {
    /// A fresh replica at genesis, in view 0.
    pub fn new(
        config: ReplicaConfig,
        keys: ReplicaKeys,
        schedule: Box<dyn LeaderSchedule>,
        app: A,
        now_ns: u64,
    ) -> Result<Replica<A>, ConfigError> {
        config.validate()?;
        let validator = config
            .validators
            .get(keys.index)
            .ok_or(ConfigError::Invalid {
                field: "keys.index",
                reason: "not in the validator set",
            })?;
        if validator.identity != keys.identity.verifying_key()
            || validator.vote_key != keys.vote_key.public_key()
            || validator.vrf_key != keys.vrf_key.public_key()
        {
            return Err(ConfigError::Invalid {
                field: "keys",
                reason: "do not match the validator set entry",
            });
        }
        let seed = staking::genesis_seed(&config.chain_id);
        let genesis = CheckpointCertificate::genesis(checkpoint_digest(
            app.state_digest(),
            &encode_clients(&BTreeMap::new()),
            &seed,
        ));
        let anchor = ScheduleAnchor {
            sequence: 0,
            seed,
            weights: app.leader_weights(&config.validators, 0),
        };
        let pinned_primary = Some(schedule.primary(0, &anchor, &config.validators));
        let validator_identities = config
            .validators
            .validators()
            .iter()
            .map(|v| v.identity.to_bytes())
            .collect();
        Ok(Replica {
            beacon: seed,
            beacon_at: 0,
            anchors: BTreeMap::new(),
            anchor,
            pinned_primary,
            proposal_stalled: false,
            status_deadline_ns: now_ns + config.status_interval_ns,
            config,
            keys,
            schedule,
            app,
            view: 0,
            mode: Mode::Normal,
            view_change_attempts: 0,
            stable_checkpoint: genesis,
            last_executed: 0,
            next_sequence: 1,
            slots: BTreeMap::new(),
            batches: BTreeMap::new(),
            wanted_batches: BTreeSet::new(),
            prepared: BTreeMap::new(),
            checkpoint_votes: BTreeMap::new(),
            own_checkpoints: BTreeMap::new(),
            checkpoint_snapshots: BTreeMap::new(),
            behind_at: None,
            state_request: None,
            state_served: BTreeMap::new(),
            snapshot_assembly: None,
            pieces_served: BTreeMap::new(),
            view_changes: BTreeMap::new(),
            own_view_change: None,
            accepted_new_view: None,
            pending: BTreeMap::new(),
            pending_order: VecDeque::new(),
            priority_order: VecDeque::new(),
            validator_identities,
            pending_bytes: 0,
            proposed: BTreeSet::new(),
            proposed_bytes: 0,
            clients: BTreeMap::new(),
            signed: BTreeMap::new(),
            seen: BTreeMap::new(),
            evidence_slots: BTreeSet::new(),
            forwarded: BTreeSet::new(),
            now_ns,
            batch_deadline_ns: None,
            progress_deadline_ns: None,
            outputs: VecDeque::new(),
            rejections: RejectionCounts::default(),
        })
    }

    /// Rebuilds a replica after a crash from the durable records it had synced.
    ///
    /// The application passed in holds whatever state the driver could restore
    /// (at worst genesis); the replica starts at genesis of the log and catches
    /// up by state transfer. What the records restore is what safety needs: the
    /// signing registry (so it never signs a different digest for a
    /// `(view, sequence, phase)` it signed before the crash) and the view. A
    /// replica recovered into a view above 0 waits in view-change mode until a
    /// peer shows it that view's NEW-VIEW, rather than trusting a view it may
    /// only have been changing to.
    pub fn recover(
        config: ReplicaConfig,
        keys: ReplicaKeys,
        schedule: Box<dyn LeaderSchedule>,
        app: A,
        records: &[DurableRecord],
        now_ns: u64,
    ) -> Result<Replica<A>, ConfigError> {
        let mut replica = Replica::new(config, keys, schedule, app, now_ns)?;
        for record in records {
            match record {
                DurableRecord::View(view) => replica.view = replica.view.max(*view),
                DurableRecord::Signed {
                    view,
                    sequence,
                    phase,
                    digest,
                } => {
                    replica.signed.insert((*view, *sequence, *phase), *digest);
                }
                DurableRecord::ViewChange(signed) => {
                    replica.view = replica.view.max(signed.body.new_view);
                    if replica
                        .own_view_change
                        .as_ref()
                        .is_none_or(|own| own.body.new_view < signed.body.new_view)
                    {
                        replica.own_view_change = Some(signed.clone());
                    }
                }
                DurableRecord::Checkpoint(_) | DurableRecord::StableCheckpoint(_) => {}
            }
        }
        if replica.view > 0 {
            replica.mode = Mode::ChangingView;
            replica.pinned_primary = None;
            // The timer starts once peers' view changes make a quorum.
            replica.arm_view_change_timer(now_ns);
        }
        // Announce ourselves at once so peers retransmit what we lack.
        replica.broadcast_status();
        Ok(replica)
    }

    // ----- Accessors -----

    /// This replica's index.
    pub fn index(&self) -> ReplicaIndex {
        self.keys.index
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// True while changing views.
    pub fn is_changing_view(&self) -> bool {
        self.mode == Mode::ChangingView
    }

    /// The primary of the current view.
    pub fn primary(&self) -> ReplicaIndex {
        self.primary_of(self.view)
    }

    /// The primary of `view`: for the view this replica works in, the one it
    /// pinned on entering it; otherwise drawn from the stable checkpoint's
    /// anchor (see `staking`).
    pub fn primary_of(&self, view: View) -> ReplicaIndex {
        match self.pinned_primary {
            Some(primary) if view == self.view && self.mode == Mode::Normal => primary,
            _ => self
                .schedule
                .primary(view, &self.anchor, &self.config.validators),
        }
    }

    /// The schedule anchor of the stable checkpoint.
    pub fn schedule_anchor(&self) -> &ScheduleAnchor {
        &self.anchor
    }

    /// The last executed sequence number.
    pub fn last_executed(&self) -> Sequence {
        self.last_executed
    }

    /// The last stable checkpoint.
    pub fn stable_checkpoint(&self) -> &CheckpointCertificate {
        &self.stable_checkpoint
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably: for drivers that inject storage faults
    /// into it (the simulator). Consensus state is not reachable from here.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Rejected inputs, by kind.
    pub fn rejections(&self) -> &RejectionCounts {
        &self.rejections
    }

    /// Client requests waiting to be ordered.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Slots held in the log (bounded by the window).
    pub fn log_len(&self) -> usize {
        self.slots.len()
    }

    /// The size of every collection this replica holds, for bound checks
    /// and memory metrics.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            slots: self.slots.len(),
            batches: self.batches.len(),
            wanted_batches: self.wanted_batches.len(),
            prepared: self.prepared.len(),
            checkpoint_votes: self.checkpoint_votes.values().map(BTreeMap::len).sum(),
            own_checkpoints: self.own_checkpoints.len(),
            checkpoint_snapshots: self.checkpoint_snapshots.len(),
            anchors: self.anchors.len(),
            state_served: self.state_served.len(),
            pieces_served: self.pieces_served.len(),
            snapshot_assembly_bytes: self.snapshot_assembly.as_ref().map_or(0, |a| a.bytes.len()),
            view_changes: self.view_changes.values().map(BTreeMap::len).sum(),
            pending: self.pending.len() + self.pending_order.len() + self.priority_order.len(),
            proposed: self.proposed.len(),
            clients: self.clients.len(),
            signed: self.signed.len(),
            seen: self.seen.len(),
            evidence: self.evidence_slots.len(),
            forwarded: self.forwarded.len(),
            outputs: self.outputs.len(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReplicaConfig {
        &self.config
    }

    // ----- Outputs -----

    /// The next output, in the order the driver must perform them.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the replica next needs [`Replica::handle_timeout`].
    pub fn poll_timeout(&self) -> u64 {
        [
            self.batch_deadline_ns,
            self.progress_deadline_ns,
            Some(self.status_deadline_ns),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.status_deadline_ns)
    }

    /// The replica snapshot (application state, reply cache and beacon seed)
    /// at checkpoint `sequence`, if this replica still holds it: what it
    /// serves in state transfer, and what a driver stores beside the stable
    /// checkpoint so that a restart resumes from its own disk.
    pub fn checkpoint_snapshot(&self, sequence: Sequence) -> Option<&[u8]> {
        self.checkpoint_snapshots.get(&sequence).map(Vec::as_slice)
    }

    // ----- Inputs -----

    /// Resumes a recovered replica from what its own driver stored: the last
    /// stable checkpoint with its snapshot, and the certified batches it
    /// committed after it. The input is checked exactly like a state
    /// transfer from a peer (checkpoint certificate against the validator
    /// set, snapshot against the certified digest, each batch against its
    /// commit certificate), so a damaged disk cannot make the replica adopt
    /// a state no quorum certified. Batches beyond the watermark window are
    /// left for peers to retransmit.
    pub fn resume(&mut self, now_ns: u64, transfer: StateTransfer) -> Result<(), Rejection> {
        self.now_ns = self.now_ns.max(now_ns);
        let result = self.apply_state_transfer(now_ns, transfer);
        self.count(&result);
        result
    }

    /// A client request arrives (clients send to every replica).
    pub fn handle_request(&mut self, now_ns: u64, request: Request) -> Result<(), Rejection> {
        self.handle_requests(now_ns, vec![request])
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Several client requests arrive together. Their signatures are checked
    /// with one ed25519 batch verification (single verification only finds the
    /// culprits when the batch fails), which is how a driver should hand over
    /// what it read from the network. One result per request, in order.
    pub fn handle_requests(
        &mut self,
        now_ns: u64,
        requests: Vec<Request>,
    ) -> Vec<Result<(), Rejection>> {
        self.now_ns = self.now_ns.max(now_ns);
        let batch = Batch {
            requests,
            leader_proof: None,
        };
        let mut signature_ok = vec![true; batch.requests.len()];
        if self.config.verify_client_signatures
            && batch.verify_requests(&self.config.chain_id).is_err()
        {
            for (ok, request) in signature_ok.iter_mut().zip(&batch.requests) {
                *ok = request.verify(&self.config.chain_id).is_ok();
            }
        }
        let results: Vec<Result<(), Rejection>> = batch
            .requests
            .into_iter()
            .zip(signature_ok)
            .map(|(request, ok)| match ok {
                true => self.admit_request(now_ns, request),
                false => Err(Rejection::BadSignature(CryptoError::VerificationFailed {
                    what: "ed25519 signature",
                })),
            })
            .collect();
        for result in &results {
            self.count(result);
        }
        results
    }

    /// Bytes from replica `from` arrive; decoded, then handled.
    pub fn handle_bytes(
        &mut self,
        now_ns: u64,
        from: ReplicaIndex,
        bytes: &[u8],
    ) -> Result<(), Rejection> {
        let decoded = codec::decode_exact::<Message>(bytes).map_err(Rejection::Malformed);
        match decoded {
            Ok(message) => self.handle_message(now_ns, from, message),
            Err(rejection) => {
                let result = Err(rejection);
                self.count(&result);
                result
            }
        }
    }

    /// A message from replica `from` (authenticated by the transport) arrives.
    pub fn handle_message(
        &mut self,
        now_ns: u64,
        from: ReplicaIndex,
        message: Message,
    ) -> Result<(), Rejection> {
        self.now_ns = self.now_ns.max(now_ns);
        let result = if from == self.keys.index || self.config.validators.get(from).is_none() {
            Err(Rejection::UnknownSender(from))
        } else {
            match message {
                Message::PrePrepare(header, batch) => {
                    self.on_pre_prepare(now_ns, from, header, batch)
                }
                Message::Prepare(vote) => self.on_prepare(now_ns, from, vote),
                Message::Commit(vote) => self.on_commit(now_ns, from, vote),
                Message::Checkpoint(vote) => self.on_checkpoint(from, vote),
                Message::ViewChange(view_change) => self.on_view_change(now_ns, from, view_change),
                Message::NewView(new_view) => self.on_new_view(now_ns, from, new_view),
                Message::Status(status) => self.on_status(from, status),
                Message::Batch(BatchFetch::Request(digest)) => self.on_batch_request(from, digest),
                Message::Batch(BatchFetch::Response(batch)) => {
                    self.on_batch_response(now_ns, *batch)
                }
                Message::StateRequest(have) => self.on_state_request(from, have),
                Message::Conflict(proof) => self.on_conflict(from, proof),
                Message::StateResponse(transfer) => self.on_state_response(now_ns, from, *transfer),
                Message::SnapshotRequest { sequence, offset } => {
                    self.on_snapshot_request(from, sequence, offset)
                }
                Message::SnapshotPiece(piece) => self.on_snapshot_piece(now_ns, from, *piece),
            }
        };
        self.retire_ineligible_primary(now_ns);
        self.count(&result);
        result
    }

    /// A view keeps the primary it began with, drawn from the stable anchor
    /// of that moment. When a later stable checkpoint's anchor makes that
    /// primary ineligible (tombstoned, or jailed and not released) while this
    /// replica works in its view, the replica leaves the view as it would a
    /// silent primary. Every replica that stabilises the same checkpoint holds
    /// the same anchor and does the same, and the next view's primary is drawn
    /// from the anchor that excludes the old one.
    fn retire_ineligible_primary(&mut self, now_ns: u64) {
        if self.mode != Mode::Normal {
            return;
        }
        let primary = self.primary();
        if !self.schedule.eligible(primary, &self.anchor) {
            self.start_view_change(now_ns, self.view + 1);
        }
    }

    /// Time passes; fires every deadline at or before `now_ns`.
    pub fn handle_timeout(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        if self.batch_deadline_ns.is_some_and(|d| d <= now_ns) {
            self.batch_deadline_ns = None;
            self.propose_batches(now_ns, true);
        }
        if self.progress_deadline_ns.is_some_and(|d| d <= now_ns) {
            self.progress_deadline_ns = None;
            // While changing views, expiry means the new primary failed too.
            if self.mode == Mode::ChangingView || self.has_outstanding_work() {
                let next = self.view + 1;
                self.start_view_change(now_ns, next);
            }
        }
        if self.status_deadline_ns <= now_ns {
            self.status_deadline_ns = now_ns + self.config.status_interval_ns;
            self.broadcast_status();
        }
    }

    fn count(&mut self, result: &Result<(), Rejection>) {
        if let Err(rejection) = result {
            *self.rejections.0.entry(rejection.kind()).or_insert(0) += 1;
        }
    }

    // ----- Client requests -----

    /// The largest payload `client` may sign: a client's requests are
    /// small; a validator's (evidence) may fill a batch.
    fn payload_limit(&self, client: &[u8; 32]) -> usize {
        if self.validator_identities.contains(client) {
            self.config
                .batch_bytes_max
                .min(super::types::VALIDATOR_REQUEST_PAYLOAD_MAX)
        } else {
            REQUEST_PAYLOAD_MAX
        }
    }

    fn admit_request(&mut self, now_ns: u64, request: Request) -> Result<(), Rejection> {
        let client = request.client.to_bytes();
        if request.payload.len() > self.payload_limit(&client) {
            return Err(Rejection::TooLarge("request payload"));
        }
        if let Some(entry) = self.clients.get(&client) {
            match entry.standing(request.request_id) {
                Standing::Fresh => {}
                Standing::Executed(executed) => {
                    // A retry gets its cached reply again.
                    let reply = Reply {
                        view: self.view,
                        sequence: executed.sequence,
                        client: request.client,
                        request_id: request.request_id,
                        result: executed.result.clone(),
                        replica: self.keys.index,
                    };
                    self.outputs.push_back(Output::Reply(reply));
                    return Err(Rejection::AlreadyExecuted);
                }
                Standing::TooOld => {
                    return Err(Rejection::OutsideClientWindow {
                        newest: entry.newest(),
                    });
                }
            }
        }
        let key = (client, request.request_id);
        if self.pending.contains_key(&key) {
            return Err(Rejection::Duplicate);
        }
        if self.pending.len() >= self.config.pending_requests_max {
            return Err(Rejection::QueueFull("pending requests"));
        }
        self.pending_bytes += request.payload.len();
        self.pending.insert(key, request);
        if self.validator_identities.contains(&client) {
            self.priority_order.push_back(key);
        } else {
            self.pending_order.push_back(key);
        }
        self.arm_progress_timer(now_ns);
        self.propose_batches(now_ns, false);
        Ok(())
    }

    fn is_primary(&self) -> bool {
        self.primary() == self.keys.index
    }

    fn high_watermark(&self) -> Sequence {
        self.stable_checkpoint.sequence + self.config.window
    }

    fn in_window(&self, sequence: Sequence) -> bool {
        sequence > self.stable_checkpoint.sequence && sequence <= self.high_watermark()
    }

    /// Proposes full batches (and, when `flush`, one partial batch) while the
    /// window has room; re-arms the batch timer for what is left. Costs
    /// O(batch) per proposal: `pending_order` is consumed from the front.
    fn propose_batches(&mut self, now_ns: u64, flush: bool) {
        if !self.is_primary() || self.mode != Mode::Normal {
            return;
        }
        if self.fetching_batches_of_this_view() {
            // The NEW-VIEW re-proposed batches this primary does not hold yet:
            // their requests may be pending here too, and proposing now would
            // spend a fresh sequence on them. The fetch takes a round trip
            // (retried with STATUS); its answer proposes again.
            self.proposal_stalled = true;
            return;
        }
        while self.next_sequence <= self.high_watermark() {
            let unproposed = self.pending.len() - self.proposed.len();
            let unproposed_bytes = self.pending_bytes - self.proposed_bytes;
            let sequence = self.next_sequence;
            let interval = self.config.checkpoint_interval;
            let at_checkpoint = sequence.is_multiple_of(interval);
            if unproposed > 0 && at_checkpoint && self.beacon_at + interval != sequence {
                // The VRF input is the seed after the previous checkpoint.
                self.proposal_stalled = true;
                break;
            }
            let can_fill = unproposed >= self.config.batch_requests_max
                || unproposed_bytes >= self.config.batch_bytes_max;
            if unproposed == 0 || !(can_fill || flush) {
                break;
            }
            // A primary that caught up by state transfer (or resumed from its
            // disk) may have executed past the sequence it proposes next:
            // nothing of its own is in flight then.
            if sequence.saturating_sub(self.last_executed) > self.config.proposals_in_flight_max {
                // Execution advancing proposes again (with a flush).
                self.proposal_stalled = true;
                break;
            }
            if self
                .signed
                .contains_key(&(self.view, sequence, Phase::PrePrepare))
            {
                // A primary restarted from its records signed this slot before
                // the crash but lost the batch: it may not sign another digest
                // here. The backups hold what it sent (or a view change fills
                // the gap), so it proposes at the next sequence instead.
                self.next_sequence += 1;
                continue;
            }
            let mut requests = Vec::new();
            let mut bytes = 0usize;
            let mut full = false;
            loop {
                // Validators' own requests first, then clients' in arrival order.
                let queue = if self.priority_order.is_empty() {
                    &mut self.pending_order
                } else {
                    &mut self.priority_order
                };
                let Some(key) = queue.front().copied() else {
                    break;
                };
                // Executed or already proposed entries are stale: drop them.
                let Some(request) = self
                    .pending
                    .get(&key)
                    .filter(|_| !self.proposed.contains(&key))
                else {
                    queue.pop_front();
                    continue;
                };
                if requests.len() == self.config.batch_requests_max
                    || bytes + request.payload.len() > self.config.batch_bytes_max
                {
                    full = true;
                    break;
                }
                bytes += request.payload.len();
                requests.push(request.clone());
                queue.pop_front();
            }
            full |= requests.len() == self.config.batch_requests_max;
            if requests.is_empty() {
                break;
            }
            for request in &requests {
                self.proposed
                    .insert((request.client.to_bytes(), request.request_id));
            }
            self.proposed_bytes += bytes;
            let leader_proof = if at_checkpoint {
                let alpha =
                    staking::vrf_alpha(&self.config.chain_id, &self.beacon, sequence / interval);
                match self.keys.vrf_key.prove(&alpha) {
                    Ok((proof, _)) => Some(LeaderProof {
                        proposer: self.keys.index,
                        proof,
                    }),
                    // Proving fails only for a degenerate key; the beacon then
                    // takes the fallback, exactly as for a withheld proof.
                    Err(_) => None,
                }
            } else {
                None
            };
            let batch = Batch {
                requests,
                leader_proof,
            };
            let header = PrePrepare {
                view: self.view,
                sequence,
                digest: batch.digest(),
            };
            if !self.record_signature(header.view, sequence, Phase::PrePrepare, header.digest) {
                // Unreachable: slots signed before are skipped above. Never
                // sign a second digest for one slot, whatever the bookkeeping.
                return;
            }
            self.next_sequence += 1;
            let signed = self.sign(header);
            self.batches.insert(header.digest, batch.clone());
            self.slots.insert(
                sequence,
                Slot {
                    view: self.view,
                    pre_prepare: Some(signed.clone()),
                    ..Slot::default()
                },
            );
            self.send(Target::All, Message::PrePrepare(signed, batch));
            // When the primary's own power is a quorum (a one-validator
            // chain), its pre-prepare alone prepares the slot.
            self.try_prepared(sequence);
            self.arm_progress_timer(now_ns);
            if !full {
                // A flush proposes at most one partial batch.
                break;
            }
        }
        self.batch_deadline_ns = (self.pending.len() > self.proposed.len()).then(|| {
            self.batch_deadline_ns
                .unwrap_or(now_ns + self.config.batch_timeout_ns)
        });
    }

    /// Forgets which requests were proposed (a view change voids proposals) and
    /// queues every pending request again, in a deterministic order.
    fn requeue_pending(&mut self) {
        self.proposed.clear();
        self.proposed_bytes = 0;
        let identities = &self.validator_identities;
        let (priority, normal): (Vec<_>, Vec<_>) = self
            .pending
            .keys()
            .copied()
            .partition(|(client, _)| identities.contains(client));
        self.priority_order = priority.into();
        self.pending_order = normal.into();
    }

    /// Whether a slot of the current view waits for a batch being fetched.
    fn fetching_batches_of_this_view(&self) -> bool {
        !self.wanted_batches.is_empty()
            && self.slots.values().any(|slot| {
                slot.view == self.view
                    && slot
                        .digest()
                        .is_some_and(|digest| self.wanted_batches.contains(&digest))
            })
    }

    /// Counts the pending requests of a re-proposed batch (when this
    /// replica holds it; otherwise when the fetch brings it) as proposed, so
    /// that a new primary does not spend a fresh sequence on requests its
    /// NEW-VIEW already carries. A later view change re-queues them if they
    /// have not executed by then.
    fn mark_in_flight(&mut self, digest: Digest) {
        let Some(batch) = self.batches.get(&digest) else {
            return;
        };
        for request in &batch.requests {
            let key = (request.client.to_bytes(), request.request_id);
            if self.pending.contains_key(&key) && self.proposed.insert(key) {
                self.proposed_bytes += request.payload.len();
            }
        }
    }

    // ----- Normal case -----

    /// Refuses a vote of `view` for a sequence committed in another view.
    fn check_not_committed(&self, sequence: Sequence, view: View) -> Result<(), Rejection> {
        match self.slots.get(&sequence) {
            Some(slot) if slot.view != view && slot.certificate.is_some() => {
                Err(Rejection::AlreadyCommitted(sequence))
            }
            _ => Ok(()),
        }
    }

    /// The slot at `sequence`, emptied for `view` if it holds an older view's
    /// votes. A slot with a commit certificate is never emptied: the
    /// certificate is the proof state transfer hands to replicas that missed
    /// the commit, and it stays until a stable checkpoint covers the sequence.
    /// (The certificate may be of an older view than the one a NEW-VIEW
    /// re-proposed the slot in; both certify the same digest.)
    fn slot_in_view(&mut self, sequence: Sequence, view: View) -> Result<&mut Slot, Rejection> {
        self.check_not_committed(sequence, view)?;
        let slot = self.slots.entry(sequence).or_default();
        if slot.view != view {
            *slot = Slot {
                view,
                ..Slot::default()
            };
        }
        Ok(slot)
    }

    fn check_view_and_window(&self, view: View, sequence: Sequence) -> Result<(), Rejection> {
        if view < self.view {
            return Err(Rejection::StaleView(view));
        }
        if view > self.view {
            return Err(Rejection::FutureView(view));
        }
        if self.mode == Mode::ChangingView {
            return Err(Rejection::ChangingView);
        }
        if !self.in_window(sequence) {
            return Err(Rejection::OutOfWindow(sequence));
        }
        Ok(())
    }

    fn on_pre_prepare(
        &mut self,
        now_ns: u64,
        from: ReplicaIndex,
        header: Signed<PrePrepare>,
        batch: Batch,
    ) -> Result<(), Rejection> {
        let body = header.body;
        if header.signer != from {
            return Err(Rejection::WrongSender {
                from,
                signer: header.signer,
            });
        }
        let refusal = match self.check_view_and_window(body.view, body.sequence) {
            Err(Rejection::ChangingView) if self.in_window(body.sequence) => {
                Some(Rejection::ChangingView)
            }
            Err(Rejection::StaleView(view))
                if self.watches_stale(
                    from,
                    (view, body.sequence, Phase::PrePrepare),
                    body.digest,
                ) =>
            {
                Some(Rejection::StaleView(view))
            }
            Err(rejection) => return Err(rejection),
            Ok(()) if from != self.primary() => Some(Rejection::NotPrimary(body.view)),
            Ok(()) => None,
        };
        if let Some(refusal) = refusal {
            // Refused, yet watched: a pre-prepare for this view that arrives
            // before its NEW-VIEW (the network reorders; test
            // an_equivocation_that_arrives_before_the_new_view_is_evidence),
            // or from a validator this replica does not take for the view's
            // primary (replicas that entered the view under different stable
            // anchors can pin different primaries;
            // regression-equivocation-to-replicas-that-pinned-another-primary),
            // still binds its signer, so a conflicting second one is evidence.
            // Bounded like every watched message: the window, and the current
            // view or one of the STALE_VIEWS_WATCHED before it (a half that
            // reaches only a replica that has moved on:
            // regression-equivocation-half-reaches-only-a-replica-in-a-later-view).
            // An older one is only checked against what was watched in its view
            // (the second half of an equivocation that straddled a view change).
            self.watch_verified(
                &header,
                (body.view, body.sequence, Phase::PrePrepare),
                body.digest,
                Seen::PrePrepare(header.clone()),
            )?;
            return Err(refusal);
        }
        if batch.requests.len() > self.config.batch_requests_max {
            return Err(Rejection::TooLarge("batch requests"));
        }
        if batch
            .requests
            .iter()
            .map(|r| r.payload.len())
            .sum::<usize>()
            > self.config.batch_bytes_max
        {
            return Err(Rejection::TooLarge("batch bytes"));
        }
        if batch
            .requests
            .iter()
            .any(|r| r.payload.len() > self.payload_limit(&r.client.to_bytes()))
        {
            return Err(Rejection::TooLarge("request payload"));
        }
        header
            .verify(&self.config.chain_id, &self.config.validators)
            .map_err(Rejection::BadSignature)?;
        self.watch_equivocation(
            from,
            body.view,
            body.sequence,
            Phase::PrePrepare,
            Seen::PrePrepare(header.clone()),
            body.digest,
        )?;
        self.check_not_committed(body.sequence, body.view)?;
        if let Some(existing) = self.slots.get(&body.sequence).and_then(Slot::digest)
            && self
                .slots
                .get(&body.sequence)
                .is_some_and(|s| s.view == body.view)
        {
            return if existing == body.digest {
                Err(Rejection::Duplicate)
            } else {
                Err(Rejection::Equivocation(from))
            };
        }
        // A batch the NEW-VIEW re-proposed keeps the leader proof of the view
        // it was first proposed in (its digest is fixed by a prepared
        // certificate); a fresh proposal carries its proposer's own proof.
        let reproposed = self
            .accepted_new_view
            .as_ref()
            .is_some_and(|nv| nv.body.view == body.view && nv.body.pre_prepares.contains(&header));
        if let Some(proof) = &batch.leader_proof
            && ((proof.proposer != from && !reproposed)
                || !body
                    .sequence
                    .is_multiple_of(self.config.checkpoint_interval))
        {
            return Err(Rejection::BadLeaderProof);
        }
        if batch.digest() != body.digest {
            return Err(Rejection::DigestMismatch);
        }
        if self.config.verify_client_signatures {
            // Requests this replica admitted itself were verified then; only the
            // others need checking (one batch verification).
            let unverified: Vec<Request> = batch
                .requests
                .iter()
                .filter(|r| self.pending.get(&(r.client.to_bytes(), r.request_id)) != Some(*r))
                .cloned()
                .collect();
            Batch {
                requests: unverified,
                leader_proof: None,
            }
            .verify_requests(&self.config.chain_id)
            .map_err(|(_, error)| Rejection::BadSignature(error))?;
        }
        self.batches.insert(body.digest, batch);
        self.accept_pre_prepare(now_ns, header);
        Ok(())
    }

    /// Installs a verified pre-prepare for the current view and prepares it.
    fn accept_pre_prepare(&mut self, now_ns: u64, header: Signed<PrePrepare>) {
        let body = header.body;
        let Ok(slot) = self.slot_in_view(body.sequence, body.view) else {
            // Both callers skip committed slots first.
            return;
        };
        slot.pre_prepare = Some(header);
        // Prepares that arrived first stay only if they match.
        slot.prepares.retain(|_, p| p.body.digest == body.digest);
        if self.batches.contains_key(&body.digest) || body.digest == Batch::null().digest() {
            self.send_own_prepare(body.sequence);
        } else {
            self.want_batch(body.digest);
        }
        self.arm_progress_timer(now_ns);
        self.try_prepared(body.sequence);
    }

    /// A backup prepares a slot only once it holds the batch the pre-prepare
    /// names (a NEW-VIEW re-proposal carries no batch; the backup fetches
    /// it first). So a prepared certificate's 2f prepares come from backups
    /// at least f of which are honest and can serve the batch, and a digest
    /// a later NEW-VIEW re-proposes always has a batch behind it.
    fn send_own_prepare(&mut self, sequence: Sequence) {
        if self.is_primary() || self.mode != Mode::Normal {
            return;
        }
        let Some(slot) = self.slots.get(&sequence) else {
            return;
        };
        let Some(pre_prepare) = slot.pre_prepare.as_ref() else {
            return;
        };
        if slot.own_prepare.is_some() || slot.view != self.view {
            return;
        }
        let vote = Vote {
            view: pre_prepare.body.view,
            sequence,
            digest: pre_prepare.body.digest,
        };
        if self.record_signature(vote.view, vote.sequence, Phase::Prepare, vote.digest) {
            let signed = self.sign(vote);
            if let Some(slot) = self.slots.get_mut(&sequence) {
                // A backup's own prepare counts toward "prepared" like any other.
                slot.prepares.insert(self.keys.index, signed.clone());
                slot.own_prepare = Some(signed.clone());
            }
            self.send(Target::All, Message::Prepare(signed));
        }
    }

    fn on_prepare(
        &mut self,
        now_ns: u64,
        from: ReplicaIndex,
        vote: Signed<Vote>,
    ) -> Result<(), Rejection> {
        let body = vote.body;
        if vote.signer != from {
            return Err(Rejection::WrongSender {
                from,
                signer: vote.signer,
            });
        }
        if let Err(refusal) = self.check_view_and_window(body.view, body.sequence) {
            // Refused, yet watched, as a pre-prepare is: before the NEW-VIEW,
            // or stale and conflicting with what was watched in its view.
            let watched = match refusal {
                Rejection::ChangingView => self.in_window(body.sequence),
                Rejection::StaleView(view) => {
                    self.watches_stale(from, (view, body.sequence, Phase::Prepare), body.digest)
                }
                _ => false,
            };
            if watched {
                self.watch_verified(
                    &vote,
                    (body.view, body.sequence, Phase::Prepare),
                    body.digest,
                    Seen::Prepare(vote.clone()),
                )?;
                self.show_conflicting_pre_prepares(from, body.view, body.sequence, body.digest);
            }
            return Err(refusal);
        }
        if from == self.primary() {
            return Err(Rejection::NotPrimary(body.view));
        }
        vote.verify(&self.config.chain_id, &self.config.validators)
            .map_err(Rejection::BadSignature)?;
        self.watch_equivocation(
            from,
            body.view,
            body.sequence,
            Phase::Prepare,
            Seen::Prepare(vote.clone()),
            body.digest,
        )?;
        self.show_conflicting_pre_prepares(from, body.view, body.sequence, body.digest);
        let slot = self.slot_in_view(body.sequence, body.view)?;
        if slot.prepares.contains_key(&from) {
            return Err(Rejection::Duplicate);
        }
        if let Some(ours) = slot
            .pre_prepare
            .clone()
            .filter(|p| p.body.digest != body.digest)
        {
            // A prepare for another digest than the primary's: either the primary
            // equivocated or the sender did. It cannot count; show the sender our
            // pre-prepare and everyone the prepare, so the equivocator's two
            // signatures meet at some honest replica.
            self.forward_conflict(Target::Replica(from), ConflictProof::PrePrepare(ours));
            self.forward_conflict(Target::All, ConflictProof::Prepare(vote));
            return Err(Rejection::DigestMismatch);
        }
        slot.prepares.insert(from, vote);
        self.arm_progress_timer(now_ns);
        self.try_prepared(body.sequence);
        Ok(())
    }

    fn try_prepared(&mut self, sequence: Sequence) {
        let primary = self.primary();
        let Some(slot) = self.slots.get(&sequence) else {
            return;
        };
        let Some(pre_prepare) = slot.pre_prepare.clone() else {
            return;
        };
        if slot.prepared {
            return;
        }
        let digest = pre_prepare.body.digest;
        let signers = std::iter::once(primary).chain(slot.prepares.keys().copied());
        if self.config.validators.power_of(signers) < self.quorum_power() {
            return;
        }
        let certificate = PreparedCertificate {
            pre_prepare,
            prepares: slot
                .prepares
                .values()
                .filter(|p| p.body.digest == digest)
                .cloned()
                .collect(),
        };
        let view = slot.view;
        if let Some(slot) = self.slots.get_mut(&sequence) {
            slot.prepared = true;
        }
        self.prepared.insert(sequence, certificate);
        let own = self.keys.index;
        if !self.record_signature(view, sequence, Phase::Commit, digest) {
            return;
        }
        let Some(slot) = self.slots.get_mut(&sequence) else {
            return;
        };
        let message = slot.commit_message(&self.config.chain_id, (view, sequence, digest));
        let vote = CommitVote::sign_message(own, &self.keys.vote_key, &message);
        slot.own_commit = Some(vote);
        slot.commits.insert(own, vote);
        self.send(Target::All, Message::Commit(vote));
        self.try_committed(sequence);
    }

    fn on_commit(
        &mut self,
        now_ns: u64,
        from: ReplicaIndex,
        vote: CommitVote,
    ) -> Result<(), Rejection> {
        if vote.replica != from {
            return Err(Rejection::WrongSender {
                from,
                signer: vote.replica,
            });
        }
        self.check_view_and_window(vote.view, vote.sequence)?;
        if let Some(Seen::Commit(first)) =
            self.seen
                .get(&(vote.sequence, vote.view, Phase::Commit, from))
        {
            if first.digest != vote.digest {
                // Only verified votes make evidence; verify both now.
                let first = *first;
                let validators = &self.config.validators;
                let chain = &self.config.chain_id;
                vote.verify(chain, validators)
                    .map_err(Rejection::BadSignature)?;
                if first.verify(chain, validators).is_ok() {
                    self.emit_evidence(Evidence::ConflictingCommit(
                        Box::new(first),
                        Box::new(vote),
                    ));
                    return Err(Rejection::Equivocation(from));
                }
                // The first vote was forged: forget it and take this valid one.
                self.seen.insert(
                    (vote.sequence, vote.view, Phase::Commit, from),
                    Seen::Commit(vote),
                );
                if let Some(slot) = self.slots.get_mut(&vote.sequence) {
                    slot.commits.remove(&from);
                }
            }
        } else {
            self.seen.insert(
                (vote.sequence, vote.view, Phase::Commit, from),
                Seen::Commit(vote),
            );
        }
        let slot = self.slot_in_view(vote.sequence, vote.view)?;
        if slot.commits.contains_key(&from) {
            return Err(Rejection::Duplicate);
        }
        slot.commits.insert(from, vote);
        self.arm_progress_timer(now_ns);
        self.try_committed(vote.sequence);
        Ok(())
    }

    fn try_committed(&mut self, sequence: Sequence) {
        let quorum = self.quorum_power();
        let validators = &self.config.validators;
        let Some(slot) = self.slots.get_mut(&sequence) else {
            return;
        };
        if !slot.prepared || slot.certificate.is_some() {
            return;
        }
        let Some(digest) = slot.digest() else { return };
        let matching: Vec<CommitVote> = slot
            .commits
            .values()
            .filter(|v| v.digest == digest)
            .copied()
            .collect();
        if validators.power_of(matching.iter().map(|v| v.replica)) < quorum {
            return;
        }
        let chain = &self.config.chain_id;
        #[cfg(feature = "planted-bugs")]
        let skip_check = self.config.planted_bug == Some(PlantedBug::UnverifiedCommitCertificate);
        #[cfg(not(feature = "planted-bugs"))]
        let skip_check = false;
        let certificate = CommitCertificate::aggregate(validators.len(), &matching).filter(|c| {
            skip_check || {
                let message = slot.commit_message(chain, (c.view, c.sequence, c.digest));
                c.verify_with_quorum(&message, validators, quorum).is_ok()
            }
        });
        let certificate = match certificate {
            Some(certificate) => certificate,
            None => {
                // Some vote is forged: verify singly, drop the bad ones, wait for more.
                let bad: Vec<ReplicaIndex> = matching
                    .iter()
                    .filter(|v| v.verify(chain, validators).is_err())
                    .map(|v| v.replica)
                    .collect();
                for replica in &bad {
                    slot.commits.remove(replica);
                    *self.rejections.0.entry("bad_signature").or_insert(0) += 1;
                }
                if bad.is_empty() {
                    return;
                }
                return self.try_committed(sequence);
            }
        };
        slot.certificate = Some(certificate);
        self.execute_ready();
    }

    // ----- Execution -----

    fn execute_ready(&mut self) {
        let progressed_from = self.last_executed;
        loop {
            let next = self.last_executed + 1;
            let Some(slot) = self.slots.get(&next) else {
                break;
            };
            let Some(certificate) = slot.certificate.clone() else {
                break;
            };
            let batch = if certificate.digest == Batch::null().digest() {
                Batch::null()
            } else {
                match self.batches.get(&certificate.digest) {
                    Some(batch) => batch.clone(),
                    None => {
                        self.want_batch(certificate.digest);
                        break;
                    }
                }
            };
            for request in &batch.requests {
                self.execute_request(next, certificate.view, request);
            }
            self.last_executed = next;
            if next.is_multiple_of(self.config.checkpoint_interval) {
                self.advance_beacon(next, batch.leader_proof.as_ref());
            }
            let state_digest = self.app.state_digest();
            self.outputs.push_back(Output::Committed(Committed {
                sequence: next,
                batch,
                certificate,
                state_digest,
            }));
            if next.is_multiple_of(self.config.checkpoint_interval) {
                self.send_checkpoint(next, state_digest);
            }
        }
        if self.last_executed > progressed_from {
            // Progress: the view works, so the timeout returns to its base.
            self.view_change_attempts = 0;
            self.progress_deadline_ns = None;
            self.rearm_after_progress();
            if std::mem::take(&mut self.proposal_stalled) {
                self.propose_batches(self.now_ns, true);
            }
        }
    }

    /// Mixes the checkpoint proposer's VRF output into the beacon, after
    /// verifying it against the proposer's registered key; a missing or
    /// invalid proof mixes the fallback marker. Runs on committed data only,
    /// so every replica derives the same seed.
    fn advance_beacon(&mut self, sequence: Sequence, proof: Option<&LeaderProof>) {
        let epoch = sequence / self.config.checkpoint_interval;
        let key = proof
            .and_then(|p| self.config.validators.get(p.proposer))
            .map(|v| &v.vrf_key);
        self.beacon = staking::beacon_step(
            &self.config.chain_id,
            &self.beacon,
            epoch,
            key,
            proof.map(|p| &p.proof),
        );
        self.beacon_at = sequence;
    }

    fn execute_request(&mut self, sequence: Sequence, view: View, request: &Request) {
        let client = request.client.to_bytes();
        let key = (client, request.request_id);
        if let Some(removed) = self.pending.remove(&key) {
            self.pending_bytes -= removed.payload.len();
            if self.proposed.remove(&key) {
                self.proposed_bytes -= removed.payload.len();
            }
        }
        #[cfg(feature = "planted-bugs")]
        let skip_check = self.planted(PlantedBug::ExactlyOnceSkipped);
        #[cfg(not(feature = "planted-bugs"))]
        let skip_check = false;
        if !skip_check && !is_fresh(&self.clients, &client, request.request_id) {
            return;
        }
        let result = self.app.execute(sequence, request);
        let reply = Reply {
            view,
            sequence,
            client: request.client,
            request_id: request.request_id,
            result: result.clone(),
            replica: self.keys.index,
        };
        if self.clients.len() >= self.config.clients_max && !self.clients.contains_key(&client) {
            // Evict the client whose last request is oldest (deterministic).
            if let Some(oldest) = self
                .clients
                .iter()
                .min_by_key(|(k, e)| (e.latest_sequence(), **k))
                .map(|(k, _)| *k)
            {
                self.clients.remove(&oldest);
            }
        }
        self.clients
            .entry(client)
            .or_default()
            .record(request.request_id, Executed { sequence, result });
        self.outputs.push_back(Output::Reply(reply));
    }

    fn rearm_after_progress(&mut self) {
        // Backups never consume pending_order; compact it when stale entries
        // dominate, so it stays within a constant factor of the pending set.
        if self.pending_order.len() + self.priority_order.len() > 2 * self.pending.len() + 1024 {
            let pending = &self.pending;
            self.pending_order.retain(|key| pending.contains_key(key));
            self.priority_order.retain(|key| pending.contains_key(key));
        }
        if self.wants_progress_timer() {
            self.progress_deadline_ns = Some(self.now_ns + self.current_timeout_ns());
        }
    }

    /// Whether the progress timer must run: while there is work to wait for,
    /// and always while changing views. A view change that does not complete
    /// (its primary is down, or cannot sign a NEW-VIEW without contradicting
    /// one it signed before a crash) must time out into the next view even on
    /// a replica with no requests of its own; otherwise that replica waits in
    /// the view change forever (scenario
    /// regression-restarted-replicas-stuck-in-view-change).
    fn wants_progress_timer(&self) -> bool {
        match self.mode {
            Mode::ChangingView => self.view_change_quorum(),
            Mode::Normal => self.has_outstanding_work(),
        }
    }

    /// Whether validators with a quorum of power (this replica included) ask
    /// for the view this replica is changing to or a later one. Only then does
    /// its view-change timer run (Castro and Liskov, section 4.5.2): a replica
    /// alone in a view change waits there instead of timing out view after
    /// view, so peers in lower views can reach it (scenario
    /// regression-lone-replica-races-ahead-in-view-changes).
    ///
    /// A view change for a later view counts too: its sender has given up on
    /// this one. Without that, a replica whose quorum timed out into the next
    /// view while it missed one of their view changes for this view would
    /// wait forever, since nobody sends those again.
    fn view_change_quorum(&self) -> bool {
        let mut senders: BTreeSet<ReplicaIndex> = self
            .view_changes
            .range(self.view..)
            .flat_map(|(_, received)| received.keys().copied())
            .collect();
        if self
            .own_view_change
            .as_ref()
            .is_some_and(|own| own.body.new_view == self.view)
        {
            senders.insert(self.keys.index);
        }
        self.config.validators.power_of(senders.iter().copied())
            >= self.config.validators.quorum_power()
    }

    /// Starts the view-change timer once a quorum asks for this view.
    fn arm_view_change_timer(&mut self, now_ns: u64) {
        if self.mode == Mode::ChangingView
            && self.progress_deadline_ns.is_none()
            && self.view_change_quorum()
        {
            self.progress_deadline_ns = Some(now_ns + self.current_timeout_ns());
        }
    }

    /// The planted NEW-VIEW bug (always false in production builds).
    fn lowest_view_bug(&self) -> bool {
        #[cfg(feature = "planted-bugs")]
        return self.planted(PlantedBug::LowestViewInNewView);
        #[cfg(not(feature = "planted-bugs"))]
        false
    }

    /// True when the test-only planted bug `bug` is switched on.
    #[cfg(feature = "planted-bugs")]
    fn planted(&self, bug: PlantedBug) -> bool {
        self.config.planted_bug == Some(bug)
    }

    /// The power of a prepare or commit quorum: more than 2/3 (or, with the
    /// planted test bug, one unit less).
    fn quorum_power(&self) -> u64 {
        #[cfg(feature = "planted-bugs")]
        if self.planted(PlantedBug::QuorumOffByOne) {
            return self.config.validators.quorum_power() - 1;
        }
        self.config.validators.quorum_power()
    }

    /// Work this replica knows of that has not executed: waiting client requests,
    /// or accepted pre-prepares above the last executed sequence.
    fn has_outstanding_work(&self) -> bool {
        !self.pending.is_empty()
            || self
                .slots
                .range(self.last_executed + 1..)
                .any(|(_, s)| s.pre_prepare.is_some())
    }

    /// The progress timeout after `view_change_attempts` consecutive failed
    /// views: the base plus one base per failed view, capped. It grows linearly,
    /// as CometBFT's round deltas do, not by doubling: the leader schedule is a
    /// stake-weighted draw, so a run of k faulty primaries is possible for any k
    /// (with probability about (f/n)^k), and a doubling timeout would make such a
    /// run cost 2^k base timeouts where this costs about k²/2. It still grows
    /// without bound (up to the cap), which is all partial synchrony needs: it
    /// eventually exceeds the unknown delay bound.
    fn current_timeout_ns(&self) -> u64 {
        self.config
            .request_timeout_ns
            .saturating_mul(u64::from(self.view_change_attempts).saturating_add(1))
            .min(self.config.view_change_timeout_max_ns)
    }

    /// Arms the progress timer if it is idle and it should run (see
    /// `wants_progress_timer`). Late messages about executed slots must not
    /// arm it: an idle replica in a working view never suspects its primary.
    fn arm_progress_timer(&mut self, now_ns: u64) {
        #[cfg(feature = "planted-bugs")]
        if self.planted(PlantedBug::NoProgressTimer) && !self.is_primary() {
            return;
        }
        if self.progress_deadline_ns.is_none() && self.wants_progress_timer() {
            self.progress_deadline_ns = Some(now_ns + self.current_timeout_ns());
        }
    }

    // ----- Checkpoints -----

    /// Signs the checkpoint after executing `sequence`, and keeps the snapshot
    /// at it for state transfer.
    fn send_checkpoint(&mut self, sequence: Sequence, app_digest: Digest) {
        let clients = encode_clients(&self.clients);
        let state_digest = checkpoint_digest(app_digest, &clients, &self.beacon);
        let snapshot = encode_snapshot(&self.beacon, app_digest, &self.app.snapshot(), &clients);
        self.checkpoint_snapshots.insert(sequence, snapshot);
        self.anchors.insert(
            sequence,
            ScheduleAnchor {
                sequence,
                seed: self.beacon,
                weights: self.app.leader_weights(&self.config.validators, sequence),
            },
        );
        self.outputs.push_back(Output::Checkpointed {
            sequence,
            state_digest,
        });
        let vote = CheckpointVote {
            sequence,
            state_digest,
        };
        self.outputs
            .push_back(Output::Persist(DurableRecord::Checkpoint(vote)));
        let signed = self.sign(vote);
        self.own_checkpoints.insert(sequence, signed.clone());
        self.checkpoint_votes
            .entry(sequence)
            .or_default()
            .insert(self.keys.index, signed.clone());
        self.send(Target::All, Message::Checkpoint(signed));
        self.try_stable(sequence);
    }

    fn on_checkpoint(
        &mut self,
        from: ReplicaIndex,
        vote: Signed<CheckpointVote>,
    ) -> Result<(), Rejection> {
        let body = vote.body;
        if vote.signer != from {
            return Err(Rejection::WrongSender {
                from,
                signer: vote.signer,
            });
        }
        if !body
            .sequence
            .is_multiple_of(self.config.checkpoint_interval)
        {
            return Err(Rejection::NotCheckpoint);
        }
        if body.sequence <= self.stable_checkpoint.sequence {
            return Err(Rejection::StaleView(body.sequence));
        }
        // Checkpoints up to one window beyond the high watermark tell a lagging
        // replica how far behind it is; anything further is refused (bounded).
        if body.sequence > self.high_watermark() + self.config.window {
            return Err(Rejection::OutOfWindow(body.sequence));
        }
        vote.verify(&self.config.chain_id, &self.config.validators)
            .map_err(Rejection::BadSignature)?;
        let votes = self.checkpoint_votes.entry(body.sequence).or_default();
        if votes.contains_key(&from) {
            return Err(Rejection::Duplicate);
        }
        votes.insert(from, vote);
        self.try_stable(body.sequence);
        Ok(())
    }

    fn try_stable(&mut self, sequence: Sequence) {
        let Some(own) = self.own_checkpoints.get(&sequence) else {
            return;
        };
        let state_digest = own.body.state_digest;
        let Some(votes) = self.checkpoint_votes.get(&sequence) else {
            return;
        };
        let matching: Vec<Signed<CheckpointVote>> = votes
            .values()
            .filter(|v| v.body.state_digest == state_digest)
            .cloned()
            .collect();
        let power = self
            .config
            .validators
            .power_of(matching.iter().map(|v| v.signer));
        if power < self.config.validators.quorum_power() {
            return;
        }
        let certificate = CheckpointCertificate {
            sequence,
            state_digest,
            votes: matching,
        };
        self.make_stable(certificate);
    }

    /// Moves the low watermark to a stable checkpoint and discards what lies below.
    fn make_stable(&mut self, certificate: CheckpointCertificate) {
        let sequence = certificate.sequence;
        if sequence <= self.stable_checkpoint.sequence || sequence > self.last_executed {
            return;
        }
        self.outputs
            .push_back(Output::Persist(DurableRecord::StableCheckpoint(
                certificate.clone(),
            )));
        self.stable_checkpoint = certificate;
        if self
            .snapshot_assembly
            .as_ref()
            .is_some_and(|a| a.checkpoint.sequence <= sequence)
        {
            self.snapshot_assembly = None;
        }
        if let Some(anchor) = self.anchors.get(&sequence) {
            self.anchor = anchor.clone();
        }
        self.anchors = self.anchors.split_off(&sequence);
        let keep = sequence + 1;
        self.slots = self.slots.split_off(&keep);
        self.prepared = self.prepared.split_off(&keep);
        self.checkpoint_votes = self.checkpoint_votes.split_off(&keep);
        self.own_checkpoints = self.own_checkpoints.split_off(&sequence);
        self.checkpoint_snapshots = self.checkpoint_snapshots.split_off(&sequence);
        self.signed.retain(|(_, s, _), _| *s > sequence);
        self.seen = self.seen.split_off(&(keep, 0, Phase::PrePrepare, 0));
        self.forwarded.retain(|(_, _, s, _, _)| *s > sequence);
        self.evidence_slots.retain(|(_, _, s, _, _)| *s > sequence);
        // A batch stays while a slot refers to it or this replica holds a
        // prepared certificate for it: a later NEW-VIEW may re-propose a
        // prepared digest after the slot itself was reset, and then some
        // replica must still be able to serve the batch (scenario
        // regression-pruned-batch-of-a-prepared-digest).
        let live: BTreeSet<Digest> = self
            .slots
            .values()
            .filter_map(Slot::digest)
            .chain(self.prepared.values().map(|c| c.pre_prepare.body.digest))
            .collect();
        self.batches.retain(|digest, _| live.contains(digest));
        self.wanted_batches.retain(|digest| live.contains(digest));
        if self.next_sequence <= sequence {
            self.next_sequence = sequence + 1;
        }
        // The window moved: the primary may have requests waiting for room.
        let now_ns = self.now_ns;
        self.propose_batches(now_ns, false);
    }

    // ----- View change -----

    fn start_view_change(&mut self, now_ns: u64, new_view: View) {
        if new_view <= self.view {
            return;
        }
        self.view = new_view;
        self.mode = Mode::ChangingView;
        self.pinned_primary = None;
        self.view_change_attempts = self.view_change_attempts.saturating_add(1);
        self.batch_deadline_ns = None;
        self.requeue_pending();
        self.outputs
            .push_back(Output::Persist(DurableRecord::View(new_view)));
        let low = self.stable_checkpoint.sequence;
        #[allow(unused_mut)]
        let mut body = ViewChange {
            new_view,
            checkpoint: self.stable_checkpoint.clone(),
            prepared: self
                .prepared
                .range(low + 1..)
                .map(|(_, c)| c.clone())
                .collect(),
        };
        #[cfg(feature = "planted-bugs")]
        if self.planted(PlantedBug::ViewChangeDropsPrepared) {
            body.prepared.clear();
        }
        let signed = self.sign(body);
        self.outputs
            .push_back(Output::Persist(DurableRecord::ViewChange(signed.clone())));
        self.own_view_change = Some(signed.clone());
        self.view_changes
            .entry(new_view)
            .or_default()
            .insert(self.keys.index, signed.clone());
        self.view_changes = self.view_changes.split_off(&new_view);
        self.send(Target::All, Message::ViewChange(signed));
        self.progress_deadline_ns = None;
        self.arm_view_change_timer(now_ns);
        self.try_new_view(now_ns);
    }

    fn on_view_change(
        &mut self,
        now_ns: u64,
        from: ReplicaIndex,
        signed: Signed<ViewChange>,
    ) -> Result<(), Rejection> {
        if signed.signer != from {
            return Err(Rejection::WrongSender {
                from,
                signer: signed.signer,
            });
        }
        let new_view = signed.body.new_view;
        if new_view == 0 || new_view < self.view {
            return Err(Rejection::StaleView(new_view));
        }
        if new_view > self.view + VIEW_AHEAD_MAX {
            return Err(Rejection::FutureView(new_view));
        }
        if self
            .view_changes
            .get(&new_view)
            .is_some_and(|m| m.contains_key(&from))
        {
            return Err(Rejection::Duplicate);
        }
        self.verify_view_change(&signed)?;
        if new_view == self.view && self.mode == Mode::Normal {
            // A late view change for the view we are in: help the sender enter it.
            if let Some(new_view_message) = self.accepted_new_view.clone() {
                self.send(Target::Replica(from), Message::NewView(new_view_message));
            }
            return Ok(());
        }
        self.view_changes
            .entry(new_view)
            .or_default()
            .insert(from, signed);
        self.join_view_change(now_ns);
        self.arm_view_change_timer(now_ns);
        if self.mode == Mode::ChangingView && new_view == self.view {
            self.try_new_view(now_ns);
        }
        Ok(())
    }

    fn verify_view_change(&self, signed: &Signed<ViewChange>) -> Result<(), Rejection> {
        let chain = &self.config.chain_id;
        let validators = &self.config.validators;
        signed
            .verify(chain, validators)
            .map_err(Rejection::BadSignature)?;
        let body = &signed.body;
        body.checkpoint
            .verify(chain, validators)
            .map_err(Rejection::BadCertificate)?;
        let low = body.checkpoint.sequence;
        let mut last = low;
        for certificate in &body.prepared {
            let sequence = certificate.sequence();
            // Strictly increasing, inside the sender's window, from earlier views.
            if sequence <= last
                || sequence > low + self.config.window
                || certificate.view() >= body.new_view
            {
                return Err(Rejection::BadCertificate(CertificateError::Inconsistent(
                    "prepared certificates out of order, window or view",
                )));
            }
            last = sequence;
            certificate
                .verify(chain, validators)
                .map_err(Rejection::BadCertificate)?;
        }
        Ok(())
    }

    /// Joins a view change once validators with more than 1/3 of the power ask
    /// for views above the current one (at least one of them is honest).
    fn join_view_change(&mut self, now_ns: u64) {
        let current = self.view;
        let mut latest: BTreeMap<ReplicaIndex, View> = BTreeMap::new();
        for (view, senders) in self.view_changes.range(current + 1..) {
            for sender in senders.keys() {
                latest.insert(*sender, *view);
            }
        }
        let power = self.config.validators.power_of(latest.keys().copied());
        if power >= self.config.validators.weak_quorum_power()
            && let Some(smallest) = latest.values().min().copied()
        {
            self.start_view_change(now_ns, smallest);
        }
    }

    fn try_new_view(&mut self, now_ns: u64) {
        if self.mode != Mode::ChangingView || !self.is_primary() {
            return;
        }
        let Some(received) = self.view_changes.get(&self.view) else {
            return;
        };
        let power = self.config.validators.power_of(received.keys().copied());
        if power < self.config.validators.quorum_power() {
            return;
        }
        let view_changes: Vec<Signed<ViewChange>> = received.values().cloned().collect();
        let (_, plan) = compute_new_view_plan(&view_changes, self.lowest_view_bug());
        let mut pre_prepares = Vec::with_capacity(plan.len());
        for (sequence, digest) in plan {
            let header = PrePrepare {
                view: self.view,
                sequence,
                digest,
            };
            if !self.record_signature(self.view, sequence, Phase::PrePrepare, digest) {
                return;
            }
            pre_prepares.push(self.sign(header));
        }
        let body = NewView {
            view: self.view,
            view_changes,
            pre_prepares,
        };
        let signed = self.sign(body);
        self.send(Target::All, Message::NewView(signed.clone()));
        self.enter_new_view(now_ns, signed);
    }

    fn on_new_view(
        &mut self,
        now_ns: u64,
        from: ReplicaIndex,
        signed: Signed<NewView>,
    ) -> Result<(), Rejection> {
        let view = signed.body.view;
        if signed.signer != from {
            return Err(Rejection::WrongSender {
                from,
                signer: signed.signer,
            });
        }
        if view < self.view || (view == self.view && self.mode == Mode::Normal) {
            return Err(Rejection::StaleView(view));
        }
        if view > self.view + VIEW_AHEAD_MAX {
            return Err(Rejection::FutureView(view));
        }
        if from != self.primary_of(view) {
            return Err(Rejection::NotPrimary(view));
        }
        signed
            .verify(&self.config.chain_id, &self.config.validators)
            .map_err(Rejection::BadSignature)?;
        let body = &signed.body;
        let mut senders = BTreeSet::new();
        for view_change in &body.view_changes {
            if view_change.body.new_view != view || !senders.insert(view_change.signer) {
                return Err(Rejection::BadNewView(
                    "V holds a view change for another view, or a repeat",
                ));
            }
            self.verify_view_change(view_change)?;
        }
        if self.config.validators.power_of(senders.iter().copied())
            < self.config.validators.quorum_power()
        {
            return Err(Rejection::BadNewView("V lacks a quorum"));
        }
        if !new_view_follows_from_v(&signed, self.lowest_view_bug()) {
            // Signed by the primary, yet refuted by its own V: an invalid
            // proposal anyone can check (`Evidence::WrongNewView`).
            self.emit_evidence(Evidence::WrongNewView(Box::new(signed.clone())));
            return Err(Rejection::BadNewView(
                "O differs from the one computed from V",
            ));
        }
        for pre_prepare in &body.pre_prepares {
            pre_prepare
                .verify(&self.config.chain_id, &self.config.validators)
                .map_err(Rejection::BadSignature)?;
        }
        self.enter_new_view(now_ns, signed);
        Ok(())
    }

    /// Enters the view of a verified NEW-VIEW and processes its `O`.
    fn enter_new_view(&mut self, now_ns: u64, signed: Signed<NewView>) {
        let view = signed.body.view;
        let (checkpoint, _) =
            compute_new_view_plan(&signed.body.view_changes, self.lowest_view_bug());
        if view != self.view || self.mode == Mode::Normal {
            self.outputs
                .push_back(Output::Persist(DurableRecord::View(view)));
        }
        // The NEW-VIEW was verified as coming from this primary.
        self.pinned_primary = Some(signed.signer);
        self.view = view;
        self.mode = Mode::Normal;
        self.accepted_new_view = Some(signed.clone());
        self.view_changes = self.view_changes.split_off(&(view + 1));
        self.own_view_change = None;
        self.requeue_pending();
        if let Some(checkpoint) = checkpoint
            && checkpoint.sequence > self.stable_checkpoint.sequence
            && checkpoint.sequence <= self.last_executed
        {
            self.make_stable(checkpoint);
        }
        // Slots of older views are superseded by O.
        for slot in self.slots.values_mut() {
            if slot.view < view && slot.certificate.is_none() {
                *slot = Slot {
                    view,
                    ..Slot::default()
                };
            }
        }
        let mut highest = self.stable_checkpoint.sequence;
        for pre_prepare in signed.body.pre_prepares.clone() {
            highest = highest.max(pre_prepare.body.sequence);
            if !self.in_window(pre_prepare.body.sequence) {
                continue;
            }
            if self
                .slots
                .get(&pre_prepare.body.sequence)
                .is_some_and(|s| s.certificate.is_some())
            {
                continue;
            }
            if pre_prepare.body.digest == Batch::null().digest() {
                self.batches.insert(pre_prepare.body.digest, Batch::null());
            }
            self.mark_in_flight(pre_prepare.body.digest);
            self.accept_pre_prepare(now_ns, pre_prepare);
        }
        self.next_sequence = highest.max(self.last_executed) + 1;
        self.outputs.push_back(Output::EnteredView(view));
        self.progress_deadline_ns = None;
        if !self.pending.is_empty() {
            self.arm_progress_timer(now_ns);
        }
        if self.is_primary() {
            self.propose_batches(now_ns, true);
        }
    }

    // ----- Retransmission -----

    fn broadcast_status(&mut self) {
        let status = Status {
            view: self.view,
            changing_view: self.mode == Mode::ChangingView,
            last_executed: self.last_executed,
            stable_checkpoint: self.stable_checkpoint.sequence,
        };
        let signed = self.sign(status);
        self.send(Target::All, Message::Status(signed));
        // A batch request or its answer may have been lost: ask again, for
        // a bounded number of the batches still wanted.
        let wanted: Vec<Digest> = self
            .wanted_batches
            .iter()
            .take(RETRANSMIT_SLOTS_MAX as usize)
            .copied()
            .collect();
        for digest in wanted {
            self.send(Target::All, Message::Batch(BatchFetch::Request(digest)));
        }
    }

    fn on_status(&mut self, from: ReplicaIndex, signed: Signed<Status>) -> Result<(), Rejection> {
        if signed.signer != from {
            return Err(Rejection::WrongSender {
                from,
                signer: signed.signer,
            });
        }
        signed
            .verify(&self.config.chain_id, &self.config.validators)
            .map_err(Rejection::BadSignature)?;
        let status = signed.body;
        let to = Target::Replica(from);
        // State transfer (view-independent: certified batches and checkpoints)
        // when retransmission cannot repair the gap: the peer discarded the slots
        // we lack (its stable checkpoint is above us), or it executed further
        // while we are not in its working view, so its view-specific votes are
        // useless to us.
        // Also when a peer is still ahead at the next status and this replica
        // made no progress in between: the slots it lacks may have committed in
        // an earlier view, whose votes no one retransmits.
        let views_differ =
            status.view != self.view || status.changing_view || self.mode == Mode::ChangingView;
        let peer_ahead = status.last_executed > self.last_executed;
        let stalled = peer_ahead && self.behind_at == Some(self.last_executed);
        if peer_ahead {
            self.behind_at = Some(self.last_executed);
        }
        if status.stable_checkpoint > self.last_executed
            || (peer_ahead && (views_differ || stalled))
        {
            self.request_state(from);
        }
        if self.mode == Mode::ChangingView {
            if let Some(own) = self.own_view_change.clone()
                && status.view <= self.view
            {
                self.send(to, Message::ViewChange(own));
            }
            return Ok(());
        }
        if (status.view < self.view || (status.view == self.view && status.changing_view))
            && let Some(new_view) = self.accepted_new_view.clone()
        {
            self.send(to, Message::NewView(new_view));
        }
        if status.view > self.view {
            return Ok(());
        }
        // Checkpoint votes the peer may lack, so it can garbage-collect.
        if status.stable_checkpoint < self.stable_checkpoint.sequence {
            for vote in self.stable_checkpoint.votes.clone() {
                if vote.signer == self.keys.index {
                    self.send(to, Message::Checkpoint(vote));
                }
            }
        }
        // Votes for slots the peer has not executed.
        let from_sequence = status.last_executed.max(self.stable_checkpoint.sequence) + 1;
        let until = from_sequence + RETRANSMIT_SLOTS_MAX;
        let mut resend = Vec::new();
        for (_, slot) in self.slots.range(from_sequence..until) {
            if slot.view != self.view {
                continue;
            }
            if let Some(pre_prepare) = &slot.pre_prepare
                && pre_prepare.signer == self.keys.index
                && let Some(batch) = self.batches.get(&pre_prepare.body.digest)
            {
                resend.push(Message::PrePrepare(pre_prepare.clone(), batch.clone()));
            }
            if let Some(prepare) = &slot.own_prepare {
                resend.push(Message::Prepare(prepare.clone()));
            }
            if let Some(commit) = slot.own_commit {
                resend.push(Message::Commit(commit));
            }
        }
        for (sequence, vote) in self.own_checkpoints.range(from_sequence..) {
            if *sequence > status.stable_checkpoint {
                resend.push(Message::Checkpoint(vote.clone()));
            }
        }
        for message in resend {
            self.send(to, message);
        }
        Ok(())
    }

    // ----- State transfer -----

    /// Asks `peer` for state; one request at a time, retried after four status
    /// intervals without an answer.
    fn request_state(&mut self, peer: ReplicaIndex) {
        let retry_after_ns = 4 * self.config.status_interval_ns;
        if self
            .state_request
            .is_some_and(|(_, sent)| self.now_ns < sent + retry_after_ns)
        {
            return;
        }
        self.state_request = Some((peer, self.now_ns));
        let message = match &self.snapshot_assembly {
            // A snapshot half received goes on from where it stopped, from
            // whichever peer is asked now.
            Some(assembly) => Message::SnapshotRequest {
                sequence: assembly.checkpoint.sequence,
                offset: assembly.bytes.len() as u64,
            },
            None => Message::StateRequest(self.last_executed),
        };
        self.send(Target::Replica(peer), message);
    }

    fn on_state_request(&mut self, from: ReplicaIndex, have: Sequence) -> Result<(), Rejection> {
        if self
            .state_served
            .get(&from)
            .is_some_and(|last| self.now_ns < last + self.config.status_interval_ns)
        {
            return Err(Rejection::RateLimited);
        }
        if have >= self.last_executed {
            return Err(Rejection::Duplicate);
        }
        let checkpoint = self.stable_checkpoint.clone();
        let snapshot = if have < checkpoint.sequence {
            match self.checkpoint_snapshots.get(&checkpoint.sequence) {
                Some(snapshot) => Some(snapshot),
                // This replica reached the checkpoint without a snapshot of its
                // own; another peer must answer.
                None => return Err(Rejection::Unsolicited),
            }
        } else {
            None
        };
        self.state_served.insert(from, self.now_ns);
        if snapshot.is_some_and(|s| s.len() > self.config.snapshot_chunk_bytes) {
            return self.send_snapshot_piece(from, 0);
        }
        let snapshot = snapshot.cloned();
        let batches = self.certified_batches_after(have.max(checkpoint.sequence));
        let transfer = StateTransfer {
            checkpoint,
            snapshot,
            batches,
        };
        self.send(
            Target::Replica(from),
            Message::StateResponse(Box::new(transfer)),
        );
        Ok(())
    }

    /// The certified batches this replica executed after `after`, in order,
    /// up to the first it cannot certify, and no more than
    /// [`TRANSFER_BATCH_BYTES`] of requests beyond the first batch: with a
    /// snapshot or its last piece, the message stays inside what a peer
    /// decodes. A requester still behind asks again from where it got to.
    fn certified_batches_after(&self, after: Sequence) -> Vec<CertifiedBatch> {
        let mut batches = Vec::new();
        let mut bytes = 0usize;
        for sequence in after + 1..=self.last_executed {
            let Some(certificate) = self
                .slots
                .get(&sequence)
                .and_then(|s| s.certificate.clone())
            else {
                break;
            };
            let batch = if certificate.digest == Batch::null().digest() {
                Batch::null()
            } else {
                match self.batches.get(&certificate.digest) {
                    Some(batch) => batch.clone(),
                    None => break,
                }
            };
            bytes += batch
                .requests
                .iter()
                .map(Request::encoded_len)
                .sum::<usize>();
            if bytes > TRANSFER_BATCH_BYTES && !batches.is_empty() {
                break;
            }
            batches.push(CertifiedBatch { batch, certificate });
        }
        batches
    }

    /// Sends `to` the piece of the stable checkpoint's snapshot that starts
    /// at `offset`, with the certified batches after the checkpoint when it
    /// is the last piece.
    fn send_snapshot_piece(&mut self, to: ReplicaIndex, offset: u64) -> Result<(), Rejection> {
        let checkpoint = self.stable_checkpoint.clone();
        let Some(snapshot) = self.checkpoint_snapshots.get(&checkpoint.sequence) else {
            return Err(Rejection::Unsolicited);
        };
        let total = snapshot.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if start >= total {
            return Err(Rejection::Unsolicited);
        }
        let end = total.min(start + self.config.snapshot_chunk_bytes);
        let bytes = snapshot[start..end].to_vec();
        let batches = if end == total {
            self.certified_batches_after(checkpoint.sequence)
        } else {
            Vec::new()
        };
        self.send(
            Target::Replica(to),
            Message::SnapshotPiece(Box::new(SnapshotPiece {
                checkpoint,
                total: total as u64,
                offset,
                bytes,
                batches,
            })),
        );
        Ok(())
    }

    /// A peer asks for more of a snapshot. It is served from this replica's
    /// stable checkpoint: the piece it asked for when that is the checkpoint
    /// it is assembling, the first piece of the newer one otherwise.
    fn on_snapshot_request(
        &mut self,
        from: ReplicaIndex,
        sequence: Sequence,
        offset: u64,
    ) -> Result<(), Rejection> {
        let stable = self.stable_checkpoint.sequence;
        if sequence > stable {
            return Err(Rejection::Unsolicited);
        }
        // A requester asks for one piece at a time, on receiving the last;
        // beyond PIECES_PER_INTERVAL pieces in a status interval it is
        // asking faster than it can be receiving.
        let now = self.now_ns;
        let interval = self.config.status_interval_ns;
        let served = self.pieces_served.entry(from).or_insert((now, 0));
        if now >= served.0 + interval {
            *served = (now, 0);
        }
        if served.1 >= PIECES_PER_INTERVAL {
            return Err(Rejection::RateLimited);
        }
        served.1 += 1;
        let offset = if sequence == stable { offset } else { 0 };
        self.send_snapshot_piece(from, offset)
    }

    /// A piece of a snapshot arrives. Pieces are appended in order; the
    /// checkpoint certificate is checked before any is kept, and the whole
    /// snapshot against the certified digest once complete, by
    /// `apply_state_transfer`, exactly as a snapshot that came in one message.
    fn on_snapshot_piece(
        &mut self,
        now_ns: u64,
        from: ReplicaIndex,
        piece: SnapshotPiece,
    ) -> Result<(), Rejection> {
        self.answered_by(from)?;
        let checkpoint = piece.checkpoint;
        if checkpoint.sequence <= self.last_executed {
            self.snapshot_assembly = None;
            return Err(Rejection::Duplicate);
        }
        let total = usize::try_from(piece.total).unwrap_or(usize::MAX);
        let offset = usize::try_from(piece.offset).unwrap_or(usize::MAX);
        if total > super::message::SNAPSHOT_TOTAL_MAX
            || piece.bytes.is_empty()
            || offset.saturating_add(piece.bytes.len()) > total
        {
            return Err(Rejection::BadSnapshot(RestoreError::Malformed(
                "a snapshot piece outside its snapshot's length".into(),
            )));
        }
        checkpoint
            .verify(&self.config.chain_id, &self.config.validators)
            .map_err(Rejection::BadCertificate)?;
        let continued = self.snapshot_assembly.as_mut().filter(|a| {
            a.checkpoint.sequence == checkpoint.sequence
                && a.checkpoint.state_digest == checkpoint.state_digest
                && a.total == total
                && a.bytes.len() == offset
        });
        match continued {
            Some(assembly) => assembly.bytes.extend_from_slice(&piece.bytes),
            // Grown piece by piece, not reserved at the claimed length: a
            // peer's claim costs memory only as bytes arrive.
            None if offset == 0 => {
                self.snapshot_assembly = Some(SnapshotAssembly {
                    checkpoint,
                    total,
                    bytes: piece.bytes,
                });
            }
            None => return Err(Rejection::Unsolicited),
        }
        let Some(assembly) = self.snapshot_assembly.take_if(|a| a.bytes.len() == a.total) else {
            self.request_state(from);
            return Ok(());
        };
        self.apply_state_transfer(
            now_ns,
            StateTransfer {
                checkpoint: assembly.checkpoint,
                snapshot: Some(assembly.bytes),
                batches: piece.batches,
            },
        )
    }

    /// Accepts an answer from `from` only if it is the peer last asked for
    /// state, and marks the request answered.
    fn answered_by(&mut self, from: ReplicaIndex) -> Result<(), Rejection> {
        if self.state_request.is_none_or(|(asked, _)| asked != from) {
            return Err(Rejection::Unsolicited);
        }
        self.state_request = None;
        Ok(())
    }

    fn on_state_response(
        &mut self,
        now_ns: u64,
        from: ReplicaIndex,
        transfer: StateTransfer,
    ) -> Result<(), Rejection> {
        self.answered_by(from)?;
        self.apply_state_transfer(now_ns, transfer)
    }

    /// Adopts a certified checkpoint (with its snapshot, when ahead) and the
    /// certified batches after it. Nothing changes unless the certificate,
    /// the snapshot's digest and each batch's certificate verify.
    fn apply_state_transfer(
        &mut self,
        now_ns: u64,
        transfer: StateTransfer,
    ) -> Result<(), Rejection> {
        let chain = self.config.chain_id.clone();
        let checkpoint = transfer.checkpoint;
        if let Some(snapshot) = transfer
            .snapshot
            .filter(|_| checkpoint.sequence > self.last_executed)
        {
            checkpoint
                .verify(&chain, &self.config.validators)
                .map_err(Rejection::BadCertificate)?;
            let (seed, app_digest, app, clients) = decode_snapshot(&snapshot)?;
            if checkpoint_digest(app_digest, &clients, &seed) != checkpoint.state_digest {
                return Err(Rejection::BadCertificate(CertificateError::Inconsistent(
                    "snapshot does not match the checkpoint digest",
                )));
            }
            let clients = decode_clients(&clients, self.config.clients_max)?;
            // Only now, with everything checked, does any state change.
            self.app
                .restore(&app, app_digest)
                .map_err(Rejection::BadSnapshot)?;
            self.clients = clients;
            self.last_executed = checkpoint.sequence;
            self.beacon = seed;
            self.beacon_at = checkpoint.sequence;
            self.anchors.insert(
                checkpoint.sequence,
                ScheduleAnchor {
                    sequence: checkpoint.sequence,
                    seed,
                    weights: self
                        .app
                        .leader_weights(&self.config.validators, checkpoint.sequence),
                },
            );
            let clients = &self.clients;
            self.pending
                .retain(|(client, id), _| is_fresh(clients, client, *id));
            self.pending_bytes = self.pending.values().map(|r| r.payload.len()).sum();
            let pending = &self.pending;
            self.proposed.retain(|key| pending.contains_key(key));
            self.proposed_bytes = self
                .proposed
                .iter()
                .filter_map(|k| pending.get(k))
                .map(|r| r.payload.len())
                .sum();
            let pending = &self.pending;
            self.pending_order.retain(|key| pending.contains_key(key));
            self.priority_order.retain(|key| pending.contains_key(key));
            self.checkpoint_snapshots
                .insert(checkpoint.sequence, snapshot);
            self.outputs.push_back(Output::StateTransferred {
                sequence: checkpoint.sequence,
                state_digest: checkpoint.state_digest,
            });
            self.make_stable(checkpoint);
        }
        for certified in transfer.batches {
            let certificate = certified.certificate;
            let sequence = certificate.sequence;
            if sequence <= self.last_executed {
                continue;
            }
            if !self.in_window(sequence) {
                break;
            }
            if certified.batch.digest() != certificate.digest {
                return Err(Rejection::DigestMismatch);
            }
            certificate
                .verify(&chain, &self.config.validators)
                .map_err(Rejection::BadCertificate)?;
            self.batches.insert(certificate.digest, certified.batch);
            let slot = self.slots.entry(sequence).or_default();
            slot.certificate = Some(certificate);
        }
        self.progress_deadline_ns = None;
        self.arm_progress_timer(now_ns);
        self.execute_ready();
        Ok(())
    }

    fn want_batch(&mut self, digest: Digest) {
        if self.wanted_batches.len() < WANTED_BATCHES_MAX && self.wanted_batches.insert(digest) {
            self.send(Target::All, Message::Batch(BatchFetch::Request(digest)));
        }
    }

    fn on_batch_request(&mut self, from: ReplicaIndex, digest: Digest) -> Result<(), Rejection> {
        match self.batches.get(&digest) {
            Some(batch) => {
                let batch = Box::new(batch.clone());
                self.send(
                    Target::Replica(from),
                    Message::Batch(BatchFetch::Response(batch)),
                );
                Ok(())
            }
            None => Err(Rejection::Unsolicited),
        }
    }

    fn on_batch_response(&mut self, now_ns: u64, batch: Batch) -> Result<(), Rejection> {
        let digest = batch.digest();
        if !self.wanted_batches.remove(&digest) {
            return Err(Rejection::Unsolicited);
        }
        if batch.requests.len() > self.config.batch_requests_max {
            return Err(Rejection::TooLarge("batch requests"));
        }
        self.batches.insert(digest, batch);
        let view = self.view;
        if self
            .slots
            .values()
            .any(|slot| slot.view == view && slot.digest() == Some(digest))
        {
            self.mark_in_flight(digest);
        }
        // Slots of this view that waited for the batch prepare now.
        let waiting: Vec<Sequence> = self
            .slots
            .iter()
            .filter(|(_, slot)| slot.own_prepare.is_none() && slot.digest() == Some(digest))
            .map(|(sequence, _)| *sequence)
            .collect();
        for sequence in waiting {
            self.send_own_prepare(sequence);
            self.try_prepared(sequence);
        }
        self.arm_progress_timer(now_ns);
        self.execute_ready();
        if std::mem::take(&mut self.proposal_stalled) {
            self.propose_batches(now_ns, true);
        }
        Ok(())
    }

    // ----- Signing, evidence, sending -----

    /// Records that this replica signs `digest` for `(view, sequence, phase)`, or
    /// refuses (false) if it already signed a different digest there. The record
    /// is queued for durability before the signed message can be sent.
    fn record_signature(
        &mut self,
        view: View,
        sequence: Sequence,
        phase: Phase,
        digest: Digest,
    ) -> bool {
        match self.signed.get(&(view, sequence, phase)) {
            Some(previous) if *previous != digest => {
                *self
                    .rejections
                    .0
                    .entry("refused_conflicting_signature")
                    .or_insert(0) += 1;
                false
            }
            Some(_) => true,
            None => {
                self.signed.insert((view, sequence, phase), digest);
                #[cfg(feature = "planted-bugs")]
                if self.planted(PlantedBug::NoPersistBeforeVote) {
                    return true;
                }
                self.outputs
                    .push_back(Output::Persist(DurableRecord::Signed {
                        view,
                        sequence,
                        phase,
                        digest,
                    }));
                true
            }
        }
    }

    fn sign<T: super::message::SignedBody>(&self, body: T) -> Signed<T> {
        Signed::sign(
            &self.config.chain_id,
            self.keys.index,
            &self.keys.identity,
            body,
        )
    }

    /// Records a verified message; a second one with another digest for the same
    /// `(sender, view, sequence, phase)` becomes evidence.
    fn watch_equivocation(
        &mut self,
        from: ReplicaIndex,
        view: View,
        sequence: Sequence,
        phase: Phase,
        message: Seen,
        digest: Digest,
    ) -> Result<(), Rejection> {
        let key = (sequence, view, phase, from);
        match self.seen.get(&key) {
            None => {
                self.seen.insert(key, message);
                Ok(())
            }
            Some(first) => {
                let evidence = match (first, message) {
                    (Seen::PrePrepare(a), Seen::PrePrepare(b)) if a.body.digest != digest => {
                        Some(Evidence::ConflictingPrePrepare(a.clone(), b))
                    }
                    (Seen::Prepare(a), Seen::Prepare(b)) if a.body.digest != digest => {
                        Some(Evidence::ConflictingPrepare(a.clone(), b))
                    }
                    _ => None,
                };
                match evidence {
                    Some(evidence) => {
                        self.emit_evidence(evidence);
                        Err(Rejection::Equivocation(from))
                    }
                    None => Ok(()),
                }
            }
        }
    }

    /// A verified prepare from `from` names `digest` for `(view, sequence)`:
    /// every pre-prepare this replica watched for that slot with another
    /// digest (its primary's, or one from another signer that some replica
    /// may take for primary, or of a view it has left) may be half of an
    /// equivocation. Show the sender, so that if it holds the other half the
    /// two signatures meet there.
    fn show_conflicting_pre_prepares(
        &mut self,
        from: ReplicaIndex,
        view: View,
        sequence: Sequence,
        digest: Digest,
    ) {
        for conflicting in self.seen_pre_prepares_other_than(view, sequence, digest) {
            self.forward_conflict(
                Target::Replica(from),
                ConflictProof::PrePrepare(conflicting),
            );
        }
    }

    /// Whether a pre-prepare or prepare of an older view is still watched:
    /// inside the window, and either of one of the [`STALE_VIEWS_WATCHED`]
    /// views before the current one, or conflicting with what was watched
    /// from its signer in its view.
    fn watches_stale(
        &self,
        from: ReplicaIndex,
        (view, sequence, phase): (View, Sequence, Phase),
        digest: Digest,
    ) -> bool {
        self.in_window(sequence)
            && (view.saturating_add(STALE_VIEWS_WATCHED) >= self.view
                || self.conflicts_with_watched(from, (view, sequence, phase), digest))
    }

    /// The pre-prepares watched for `(view, sequence)`, from any signer, whose
    /// digest is not `digest`.
    fn seen_pre_prepares_other_than(
        &self,
        view: View,
        sequence: Sequence,
        digest: Digest,
    ) -> Vec<Signed<PrePrepare>> {
        let phase = Phase::PrePrepare;
        self.seen
            .range((sequence, view, phase, 0)..=(sequence, view, phase, ReplicaIndex::MAX))
            .filter_map(|(_, seen)| match seen {
                Seen::PrePrepare(p) if p.body.digest != digest => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether a message from `from` for a slot of an older view names another
    /// digest than the one watched from it there: the late second half of an
    /// equivocation. Only what is already watched counts, so stale views add
    /// nothing to what is kept.
    fn conflicts_with_watched(
        &self,
        from: ReplicaIndex,
        (view, sequence, phase): (View, Sequence, Phase),
        digest: Digest,
    ) -> bool {
        self.in_window(sequence)
            && match self.seen.get(&(sequence, view, phase, from)) {
                Some(Seen::PrePrepare(p)) => p.body.digest != digest,
                Some(Seen::Prepare(p)) => p.body.digest != digest,
                Some(Seen::Commit(_)) | None => false,
            }
    }

    /// Verifies a pre-prepare or prepare this replica refuses to act on and
    /// watches it for equivocation all the same.
    fn watch_verified<T: SignedBody>(
        &mut self,
        signed: &Signed<T>,
        (view, sequence, phase): (View, Sequence, Phase),
        digest: Digest,
        seen: Seen,
    ) -> Result<(), Rejection> {
        signed
            .verify(&self.config.chain_id, &self.config.validators)
            .map_err(Rejection::BadSignature)?;
        self.watch_equivocation(signed.signer, view, sequence, phase, seen, digest)
    }

    /// Sends a conflict proof once per (signer, slot, phase, target).
    fn forward_conflict(&mut self, to: Target, proof: ConflictProof) {
        let (signer, view, sequence, phase) = match &proof {
            ConflictProof::PrePrepare(p) => {
                (p.signer, p.body.view, p.body.sequence, Phase::PrePrepare)
            }
            ConflictProof::Prepare(p) => (p.signer, p.body.view, p.body.sequence, Phase::Prepare),
        };
        let target = match to {
            Target::All => None,
            Target::Replica(index) => Some(index),
        };
        if self
            .forwarded
            .insert((signer, view, sequence, phase, target))
        {
            self.send(to, Message::Conflict(proof));
        }
    }

    fn on_conflict(&mut self, from: ReplicaIndex, proof: ConflictProof) -> Result<(), Rejection> {
        let (view, sequence) = match &proof {
            ConflictProof::PrePrepare(p) => (p.body.view, p.body.sequence),
            ConflictProof::Prepare(p) => (p.body.view, p.body.sequence),
        };
        if view > self.view {
            return Err(Rejection::FutureView(view));
        }
        if !self.in_window(sequence) {
            return Err(Rejection::OutOfWindow(sequence));
        }
        match proof {
            ConflictProof::PrePrepare(header) => {
                // Equivocation is about one signer, whoever it thought led.
                let primary = header.signer;
                header
                    .verify(&self.config.chain_id, &self.config.validators)
                    .map_err(Rejection::BadSignature)?;
                let digest = header.body.digest;
                let ours = match self.seen.get(&(sequence, view, Phase::PrePrepare, primary)) {
                    Some(Seen::PrePrepare(p)) if p.body.digest != digest => Some(p.clone()),
                    _ => None,
                };
                let result = self.watch_equivocation(
                    primary,
                    view,
                    sequence,
                    Phase::PrePrepare,
                    Seen::PrePrepare(header),
                    digest,
                );
                // Show the sender what we hold, so it can produce evidence too.
                if let Some(ours) = ours {
                    self.forward_conflict(Target::Replica(from), ConflictProof::PrePrepare(ours));
                }
                result
            }
            ConflictProof::Prepare(vote) => {
                vote.verify(&self.config.chain_id, &self.config.validators)
                    .map_err(Rejection::BadSignature)?;
                let digest = vote.body.digest;
                self.watch_equivocation(
                    vote.signer,
                    view,
                    sequence,
                    Phase::Prepare,
                    Seen::Prepare(vote),
                    digest,
                )
            }
        }
    }

    fn emit_evidence(&mut self, evidence: Evidence) {
        #[cfg(feature = "planted-bugs")]
        if self.planted(PlantedBug::SuppressedEvidence) {
            return;
        }
        let (view, sequence, phase) = evidence.slot();
        let key = (
            evidence.validator(),
            view,
            sequence,
            phase,
            !evidence.is_equivocation(),
        );
        if self.evidence_slots.insert(key) {
            self.outputs.push_back(Output::Evidence(evidence));
        }
    }

    fn send(&mut self, to: Target, message: Message) {
        self.outputs.push_back(Output::Send { to, message });
    }
}

/// From a quorum of view changes, the checkpoint to start from and the plan for
/// `O`: for each sequence from that checkpoint (exclusive) up to the highest
/// prepared sequence, the digest prepared in the highest view, or the null batch.
///
/// Deterministic: ties in view resolve to the smallest digest (two certificates
/// for one sequence and view with different digests would need a quorum
/// intersection to contain an equivocator whose prepares were accepted twice).
/// Whether a NEW-VIEW's `O` is exactly the one an honest primary computes
/// from its `V`: one pre-prepare per planned sequence, in order, for the
/// planned digest, in the new view, signed by the NEW-VIEW's signer.
pub(super) fn new_view_follows_from_v(signed: &Signed<NewView>, lowest_view_bug: bool) -> bool {
    let body = &signed.body;
    let (_, plan) = compute_new_view_plan(&body.view_changes, lowest_view_bug);
    plan.len() == body.pre_prepares.len()
        && plan
            .iter()
            .zip(&body.pre_prepares)
            .all(|((sequence, digest), p)| {
                p.body
                    == PrePrepare {
                        view: body.view,
                        sequence: *sequence,
                        digest: *digest,
                    }
                    && p.signer == signed.signer
            })
}

fn compute_new_view_plan(
    view_changes: &[Signed<ViewChange>],
    lowest_view_bug: bool,
) -> (Option<CheckpointCertificate>, Vec<(Sequence, Digest)>) {
    let checkpoint = view_changes
        .iter()
        .map(|v| &v.body.checkpoint)
        .max_by_key(|c| c.sequence)
        .cloned();
    let low = checkpoint.as_ref().map_or(0, |c| c.sequence);
    let mut chosen: BTreeMap<Sequence, (View, Digest)> = BTreeMap::new();
    for view_change in view_changes {
        for certificate in &view_change.body.prepared {
            let sequence = certificate.sequence();
            if sequence <= low {
                continue;
            }
            let candidate = (certificate.view(), certificate.digest());
            chosen
                .entry(sequence)
                .and_modify(|best| {
                    let later = if lowest_view_bug {
                        candidate.0 < best.0
                    } else {
                        candidate.0 > best.0
                    };
                    if later || (candidate.0 == best.0 && candidate.1 < best.1) {
                        *best = candidate;
                    }
                })
                .or_insert(candidate);
        }
    }
    let high = chosen.keys().next_back().copied().unwrap_or(low);
    let null = Batch::null().digest();
    let plan = (low + 1..=high)
        .map(|sequence| {
            (
                sequence,
                chosen.get(&sequence).map_or(null, |(_, digest)| *digest),
            )
        })
        .collect();
    (checkpoint, plan)
}

#[cfg(test)]
mod tests;
