//! PBFT (Castro and Liskov, OSDI '99 / TOCS 2002) as a sans-IO state machine,
//! stake-weighted and certificate-based.
//!
//! # Shape
//! A [`Replica`] takes inputs — [`Replica::handle_request`],
//! [`Replica::handle_message`], [`Replica::handle_timeout`] — and queues outputs,
//! drained with [`Replica::poll_output`]: messages to send, durable records to
//! persist, committed batches, client replies and evidence. [`Replica::poll_timeout`]
//! says when it next wants `handle_timeout`. It never reads a clock: `now_ns` is an
//! argument. The simulator and the daemon are both loops over this API.
//!
//! # Quorums by voting power
//! Each validator has a power. A quorum is more than 2/3 of the total power
//! (`quorum_power = floor(2 * total / 3) + 1`), and faulty validators hold less
//! than 1/3. Two quorums therefore share more than 1/3 of the power, so at least
//! one honest validator. A *weak quorum* (more than 1/3) contains at least one
//! honest validator; it is what makes a replica join a view change. Voting
//! power is the genesis power for the life of the chain: stake, slashing and
//! jail move leader weights, not votes (the `staking` module docs say why,
//! and what changing power would need from this protocol).
//!
//! # Authentication, and its cost per batch
//! - Every consensus message a replica sends (pre-prepare, prepare, checkpoint,
//!   view-change, new-view, status) is individually signed with its ed25519
//!   identity over `domain || chain id || canonical encoding`. Each such message
//!   is therefore attributable and can serve as evidence. No MACs: PBFT's MAC
//!   variant (and its Q set) is not used.
//! - A commit vote is a BLS signature over `(chain id, view, sequence, digest)`.
//!   Votes are not verified one by one: once the unverified votes for a digest
//!   reach a quorum, the replica aggregates them and runs one
//!   FastAggregateVerify. Only if that fails does it verify the votes singly, drop
//!   the bad ones and count them as forged. The result is the commit certificate
//!   (aggregate + signer bitmap), which anyone holding the validator set can verify.
//!   A replica hashes a slot's commit message onto G2 once
//!   ([`CommitMessage`]): its own vote and the certificate it checks sign the
//!   same bytes.
//! - Per batch and replica the normal case costs one pre-prepare and at most
//!   `n - 1` prepare ed25519 verifications, plus one pairing check (at most `n`
//!   more when a Byzantine voter forces the fallback). Client request signatures
//!   are checked with ed25519 batch verification per pre-prepare.
//!
//! # Invariants (checked by the simulator's independent checkers and by tests)
//! - **Agreement:** no two honest replicas commit different digests at one
//!   sequence number; executed logs are prefixes of one another.
//! - **Certificates:** every committed batch carries a commit certificate that
//!   verifies against the validator set with more than 2/3 of the power.
//! - **Order and exactly-once:** execution follows sequence order with no gaps;
//!   a `(client, request id)` executes at most once; a retry gets the cached
//!   reply. Clients may pipeline within [`CLIENT_WINDOW`] request ids: a
//!   request more than that far behind the client's newest executed one is
//!   refused, never executed late.
//! - **Watermarks:** a replica accepts protocol messages only for sequences in
//!   `(h, h + window]`, where `h` is its last stable checkpoint.
//! - **No equivocation by an honest replica, even across crashes:** every
//!   signature is recorded in a [`DurableRecord`] output before any message that
//!   carries it is sent, and a recovered replica refuses to sign a different
//!   digest for a `(view, sequence, phase)` it already signed.
//! - **Accountability:** two validly signed, conflicting messages from one
//!   validator for the same `(view, sequence, phase)` yield [`Evidence`] that a
//!   third party can verify with the validator set alone. A replica watches
//!   every validly signed pre-prepare and prepare for its current view inside
//!   its window, including those it refuses to act on: a pre-prepare or
//!   prepare that arrives before the view's NEW-VIEW, and a pre-prepare whose
//!   signer it does not take for the view's primary (replicas that entered a
//!   view under different stable anchors can pin different primaries). It
//!   watches those of the four views before its current one as well (one half
//!   of an equivocation may reach only replicas that have moved on), and
//!   checks one of an older view against what was watched from its signer
//!   in that view, so an equivocation whose halves straddle a view change is
//!   evidence too. A replica shows every watched pre-prepare of a slot to a
//!   replica whose prepare, current or stale, names another digest for it, so
//!   the halves of an equivocation meet. What is watched is bounded by the
//!   window, five views, the validators and two phases.
//! - **Certificates persist:** a commit certificate, once formed or received,
//!   stays with its slot until a stable checkpoint covers the sequence; votes of
//!   later views for that sequence never replace it. State transfer serves
//!   these certificates, so a replica that missed a commit can always catch up
//!   from one that saw it.
//! - **State transfer of any size:** a snapshot longer than one message may
//!   carry goes in pieces ([`SnapshotPiece`]), asked for one at a time; the
//!   requester keeps a piece only after the checkpoint certificate verifies,
//!   and adopts nothing until the whole snapshot matches the certified
//!   digest (scenario regression-state-larger-than-a-snapshot-message).
//!   The certified batches after the checkpoint follow in runs of at most
//!   4 MiB of requests beyond the first batch of each, so no message passes
//!   what a peer decodes however far behind the requester is.
//! - **Liveness of view changes:** a replica's view-change timer runs only while
//!   validators with a quorum of power ask for its view or a later one (Castro
//!   and Liskov, section 4.5.2); a replica alone in a view change waits rather
//!   than climbing views by itself. The timeout grows by one base timeout per
//!   failed attempt, up to a cap, and returns to the base once a request
//!   executes. It grows linearly, not by doubling, because the leader schedule
//!   is a random draw: k faulty primaries can come in a row, and doubling
//!   would make that run cost `2^k` base timeouts where this costs about `k²/2`
//!   (scenario regression-run-of-byzantine-primaries-outlasts-the-bound).
//! - **No ineligible primary keeps a view:** a view's primary is drawn from the
//!   stable checkpoint's leader anchor when the view begins. Once a replica's
//!   stable anchor gives that primary no weight (tombstoned, or jailed), the
//!   replica leaves the view; every replica stabilising the same checkpoint
//!   does, so the next primary comes from the anchor that excludes it
//!   (scenario regression-tombstoned-primary-keeps-its-view).
//! - **Bounded state:** every queue, log and map has an explicit limit
//!   ([`ReplicaConfig`] and the `*_MAX` constants); input beyond a limit is
//!   rejected with a reason, never buffered without bound.
//! - **Robustness:** malformed, stale, duplicate, unsigned, wrongly signed,
//!   out-of-window and oversized input is rejected with a typed [`Rejection`],
//!   counted, and changes no state.

mod certificate;
mod client;
mod evidence;
mod message;
mod replica;
mod types;

pub use certificate::{CheckpointCertificate, CommitCertificate, PreparedCertificate, SignerSet};
pub use client::{ReplyCollector, ReplyError};
pub use evidence::{Evidence, EvidenceError, EvidenceRecord, Phase};
pub use message::{
    BatchFetch, CertifiedBatch, CheckpointVote, CommitMessage, CommitVote, ConflictProof, Message,
    NewView, PrePrepare, Signed, SignedBody, SnapshotPiece, StateTransfer, Status, ViewChange,
    Vote,
};
pub use message::{SNAPSHOT_BYTES_MAX, SNAPSHOT_TOTAL_MAX};
#[cfg(feature = "planted-bugs")]
pub use replica::PlantedBug;
pub use replica::{
    Application, CLIENT_WINDOW, Committed, DurableRecord, Footprint, Output, RecordError,
    Rejection, RejectionCounts, Replica, ReplicaConfig, ReplicaKeys, Reply, RestoreError, Target,
};
pub use types::{
    Batch, ConfigError, LeaderProof, LeaderSchedule, REQUEST_PAYLOAD_MAX, ReplicaIndex, Request,
    RoundRobin, ScheduleAnchor, Sequence, VALIDATOR_REQUEST_PAYLOAD_MAX, Validator, ValidatorSet,
    View,
};
