//! Consensus messages and their canonical encodings.
//!
//! Every message except a commit vote travels inside a [`Signed`] wrapper: the sender's ed25519 signature over
//! `"shieldx/consensus/v1" || chain id || type tag || signer || body`. A commit vote
//! is authenticated by its BLS signature over
//! `"shieldx/commit/v1" || chain id || view || sequence || digest`, the same bytes
//! its commit certificate aggregates.

use crate::codec::{self, CodecError, Decode, Encode, Reader};
use crate::crypto::bls::{BlsSecretKey, HashedMessage, UncheckedSignature};
use crate::crypto::ed25519::{Signature, SigningKey};
use crate::crypto::{CryptoError, Digest};

use super::certificate::{CheckpointCertificate, CommitCertificate, PreparedCertificate};
use super::types::{Batch, ReplicaIndex, Sequence, ValidatorSet, View};

const ENVELOPE_DOMAIN: &[u8] = b"shieldx/consensus/v1";
const COMMIT_DOMAIN: &[u8] = b"shieldx/commit/v1";
/// Version byte of the wire [`Message`] encoding.
const MESSAGE_VERSION: u8 = 2;
/// Bound on the view-change messages one new-view carries.
pub(crate) const VIEW_CHANGES_MAX: usize = super::types::VALIDATORS_MAX;
/// Bound on the prepared certificates (or pre-prepares) one view change (or
/// new view) carries: the largest watermark window.
pub(crate) const WINDOW_MAX: usize = 4096;

/// A body that can be signed into a [`Signed`] envelope.
pub trait SignedBody: Encode + Decode + Clone {
    /// The type tag inside the signed bytes, so one type's signature never
    /// verifies as another's.
    const TAG: u8;
}

/// A body with its signer's ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    /// The signed content.
    pub body: T,
    /// The signing validator.
    pub signer: ReplicaIndex,
    /// ed25519 signature over the envelope bytes.
    pub signature: Signature,
}

impl<T: SignedBody> Signed<T> {
    /// Signs `body` as validator `signer`.
    pub fn sign(chain_id: &[u8], signer: ReplicaIndex, key: &SigningKey, body: T) -> Signed<T> {
        let signature = key.sign(&signing_bytes(chain_id, signer, &body));
        Signed {
            body,
            signer,
            signature,
        }
    }

    /// Verifies the signature against the signer's identity in `validators`.
    pub fn verify(&self, chain_id: &[u8], validators: &ValidatorSet) -> Result<(), CryptoError> {
        let validator = validators
            .get(self.signer)
            .ok_or(CryptoError::VerificationFailed {
                what: "signer is not a validator",
            })?;
        validator.identity.verify(
            &signing_bytes(chain_id, self.signer, &self.body),
            &self.signature,
        )
    }
}

fn signing_bytes<T: SignedBody>(chain_id: &[u8], signer: ReplicaIndex, body: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(ENVELOPE_DOMAIN);
    codec::put_bytes(&mut out, chain_id);
    out.push(T::TAG);
    out.extend_from_slice(&signer.to_le_bytes());
    body.encode(&mut out);
    out
}

impl<T: SignedBody> Encode for Signed<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.body.encode(out);
        out.extend_from_slice(&self.signer.to_le_bytes());
        out.extend_from_slice(&self.signature.to_bytes());
    }
}

impl<T: SignedBody> Decode for Signed<T> {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        let body = T::decode(reader)?;
        let signer = reader.u16("signer")?;
        let signature = Signature::from_slice(reader.take("signature", 64)?)?;
        Ok(Signed {
            body,
            signer,
            signature,
        })
    }
}

/// PRE-PREPARE: the primary assigns `digest` to `sequence` in `view`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrePrepare {
    /// The view.
    pub view: View,
    /// The sequence number.
    pub sequence: Sequence,
    /// The batch digest.
    pub digest: Digest,
}

/// PREPARE: a backup accepts the primary's assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    /// The view.
    pub view: View,
    /// The sequence number.
    pub sequence: Sequence,
    /// The batch digest.
    pub digest: Digest,
}

macro_rules! view_sequence_digest_codec {
    ($type:ident, $tag:expr) => {
        impl Encode for $type {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.view.to_le_bytes());
                out.extend_from_slice(&self.sequence.to_le_bytes());
                self.digest.encode(out);
            }
        }
        impl Decode for $type {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
                Ok($type {
                    view: reader.u64("view")?,
                    sequence: reader.u64("sequence")?,
                    digest: Digest::decode(reader)?,
                })
            }
        }
        impl SignedBody for $type {
            const TAG: u8 = $tag;
        }
    };
}

view_sequence_digest_codec!(PrePrepare, 1);
view_sequence_digest_codec!(Vote, 2);

/// COMMIT: a BLS vote for `(view, sequence, digest)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitVote {
    /// The view.
    pub view: View,
    /// The sequence number.
    pub sequence: Sequence,
    /// The batch digest.
    pub digest: Digest,
    /// The voting validator.
    pub replica: ReplicaIndex,
    /// BLS signature over [`CommitVote::signing_bytes`], subgroup-checked
    /// only when it is verified alone or aggregated (see
    /// [`UncheckedSignature`]). Encoded uncompressed (192 bytes): every
    /// replica decodes every vote of every slot, and decompression would
    /// cost each a G2 square root (message version 2).
    pub signature: UncheckedSignature,
}

/// What commit votes for `(view, sequence, digest)` sign, hashed onto G2 once:
/// a replica signs its own vote and then checks the certificate over the same
/// message, and hashing is a third of a BLS signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitMessage {
    /// The view.
    pub view: View,
    /// The sequence number.
    pub sequence: Sequence,
    /// The batch digest.
    pub digest: Digest,
    hashed: HashedMessage,
}

impl CommitMessage {
    /// Hashes [`CommitVote::signing_bytes`] for `(view, sequence, digest)`.
    pub fn new(chain_id: &[u8], view: View, sequence: Sequence, digest: Digest) -> CommitMessage {
        CommitMessage {
            view,
            sequence,
            digest,
            hashed: HashedMessage::new(&CommitVote::signing_bytes(
                chain_id, view, sequence, &digest,
            )),
        }
    }

    /// The hashed message, for signing and verification.
    pub fn hashed(&self) -> &HashedMessage {
        &self.hashed
    }
}

impl CommitVote {
    /// Signs a commit vote.
    pub fn sign(
        chain_id: &[u8],
        replica: ReplicaIndex,
        key: &BlsSecretKey,
        view: View,
        sequence: Sequence,
        digest: Digest,
    ) -> CommitVote {
        CommitVote::sign_message(
            replica,
            key,
            &CommitMessage::new(chain_id, view, sequence, digest),
        )
    }

    /// Signs a commit vote for a message already hashed.
    pub fn sign_message(
        replica: ReplicaIndex,
        key: &BlsSecretKey,
        message: &CommitMessage,
    ) -> CommitVote {
        CommitVote {
            view: message.view,
            sequence: message.sequence,
            digest: message.digest,
            replica,
            signature: key.sign_hashed(message.hashed()).into(),
        }
    }

    /// The bytes a commit vote signs and a commit certificate aggregates.
    pub fn signing_bytes(
        chain_id: &[u8],
        view: View,
        sequence: Sequence,
        digest: &Digest,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(COMMIT_DOMAIN.len() + chain_id.len() + 52);
        out.extend_from_slice(COMMIT_DOMAIN);
        codec::put_bytes(&mut out, chain_id);
        out.extend_from_slice(&view.to_le_bytes());
        out.extend_from_slice(&sequence.to_le_bytes());
        out.extend_from_slice(digest.as_bytes());
        out
    }

    /// Verifies this single vote (used only when an aggregate fails, and for evidence).
    pub fn verify(&self, chain_id: &[u8], validators: &ValidatorSet) -> Result<(), CryptoError> {
        let validator = validators
            .get(self.replica)
            .ok_or(CryptoError::VerificationFailed {
                what: "voter is not a validator",
            })?;
        let bytes = CommitVote::signing_bytes(chain_id, self.view, self.sequence, &self.digest);
        validator.vote_key.verify(&bytes, &self.signature.check()?)
    }
}

impl Encode for CommitVote {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.view.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        self.digest.encode(out);
        out.extend_from_slice(&self.replica.to_le_bytes());
        out.extend_from_slice(&self.signature.to_uncompressed());
    }
}

impl Decode for CommitVote {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CommitVote {
            view: reader.u64("view")?,
            sequence: reader.u64("sequence")?,
            digest: Digest::decode(reader)?,
            replica: reader.u16("replica")?,
            signature: UncheckedSignature::from_uncompressed_slice(
                reader.take("commit signature", UncheckedSignature::UNCOMPRESSED_LEN)?,
            )?,
        })
    }
}

/// CHECKPOINT: the state digest after executing `sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointVote {
    /// The checkpointed sequence number (a multiple of the checkpoint interval).
    pub sequence: Sequence,
    /// The application's state digest after executing it.
    pub state_digest: Digest,
}

impl Encode for CheckpointVote {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.sequence.to_le_bytes());
        self.state_digest.encode(out);
    }
}

impl Decode for CheckpointVote {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CheckpointVote {
            sequence: reader.u64("sequence")?,
            state_digest: Digest::decode(reader)?,
        })
    }
}

impl SignedBody for CheckpointVote {
    const TAG: u8 = 3;
}

/// VIEW-CHANGE to `new_view`: the sender's last stable checkpoint proof `C` and
/// its prepared certificates `P` above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewChange {
    /// The view being moved to.
    pub new_view: View,
    /// Proof of the sender's last stable checkpoint.
    pub checkpoint: CheckpointCertificate,
    /// For each sequence above the checkpoint that prepared at the sender, the
    /// certificate from the highest view in which it prepared.
    pub prepared: Vec<PreparedCertificate>,
}

impl Encode for ViewChange {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.new_view.to_le_bytes());
        self.checkpoint.encode(out);
        codec::put_sequence(out, &self.prepared);
    }
}

impl Decode for ViewChange {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(ViewChange {
            new_view: reader.u64("new view")?,
            checkpoint: CheckpointCertificate::decode(reader)?,
            prepared: reader.sequence("prepared certificates", WINDOW_MAX)?,
        })
    }
}

impl SignedBody for ViewChange {
    const TAG: u8 = 4;
}

/// NEW-VIEW for `view`: the view changes `V` that justify it and the
/// pre-prepares `O` every backup recomputes from `V`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewView {
    /// The new view.
    pub view: View,
    /// `V`: view-change messages for `view` from a quorum.
    pub view_changes: Vec<Signed<ViewChange>>,
    /// `O`: one pre-prepare per sequence from the highest stable checkpoint in `V`
    /// (exclusive) to the highest prepared sequence in `V`; null batches fill
    /// gaps. Each is signed by the new primary, so later prepared certificates
    /// can cite it like any other pre-prepare.
    pub pre_prepares: Vec<Signed<PrePrepare>>,
}

impl Encode for NewView {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.view.to_le_bytes());
        codec::put_sequence(out, &self.view_changes);
        codec::put_sequence(out, &self.pre_prepares);
    }
}

impl Decode for NewView {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(NewView {
            view: reader.u64("view")?,
            view_changes: reader.sequence("view changes", VIEW_CHANGES_MAX)?,
            pre_prepares: reader.sequence("pre-prepares", WINDOW_MAX)?,
        })
    }
}

impl SignedBody for NewView {
    const TAG: u8 = 5;
}

/// STATUS: what the sender has, so peers can retransmit what it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The sender's view.
    pub view: View,
    /// True while the sender is changing to `view` and has no new view yet.
    pub changing_view: bool,
    /// The last sequence the sender executed.
    pub last_executed: Sequence,
    /// The sender's last stable checkpoint.
    pub stable_checkpoint: Sequence,
}

impl Encode for Status {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.view.to_le_bytes());
        out.push(u8::from(self.changing_view));
        out.extend_from_slice(&self.last_executed.to_le_bytes());
        out.extend_from_slice(&self.stable_checkpoint.to_le_bytes());
    }
}

impl Decode for Status {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Status {
            view: reader.u64("view")?,
            changing_view: reader.bool("changing view")?,
            last_executed: reader.u64("last executed")?,
            stable_checkpoint: reader.u64("stable checkpoint")?,
        })
    }
}

impl SignedBody for Status {
    const TAG: u8 = 6;
}

/// Fetching a batch by digest (after a view change, a backup may know a digest
/// from `O` without having its batch). Integrity comes from the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchFetch {
    /// Asks for the batch with this digest.
    Request(Digest),
    /// A batch; the receiver keeps it only if it asked for its digest.
    Response(Box<Batch>),
}

/// The largest snapshot one state-transfer message may carry; a larger one
/// travels in [`SnapshotPiece`]s of at most this many bytes.
pub const SNAPSHOT_BYTES_MAX: usize = 8 << 20;

/// The largest snapshot a replica assembles from pieces: what a peer with a
/// valid checkpoint certificate can make it buffer before the snapshot's
/// digest is checked.
pub const SNAPSHOT_TOTAL_MAX: usize = 1 << 30;

/// A committed batch with its commit certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedBatch {
    /// The batch.
    pub batch: Batch,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
}

impl Encode for CertifiedBatch {
    fn encode(&self, out: &mut Vec<u8>) {
        self.batch.encode(out);
        self.certificate.encode(out);
    }
}

impl Decode for CertifiedBatch {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CertifiedBatch {
            batch: Batch::decode(reader)?,
            certificate: CommitCertificate::decode(reader)?,
        })
    }
}

/// What a replica that is behind receives: the sender's last stable checkpoint
/// with (when needed) the state snapshot at that checkpoint, and the certified
/// batches the sender executed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTransfer {
    /// The checkpoint the snapshot is at.
    pub checkpoint: CheckpointCertificate,
    /// The replica snapshot at `checkpoint` (absent when the requester is past it).
    pub snapshot: Option<Vec<u8>>,
    /// Certified batches after the checkpoint (or after the requester's last
    /// executed sequence), in order.
    pub batches: Vec<CertifiedBatch>,
}

impl Encode for StateTransfer {
    fn encode(&self, out: &mut Vec<u8>) {
        self.checkpoint.encode(out);
        match &self.snapshot {
            Some(snapshot) => {
                out.push(1);
                codec::put_bytes(out, snapshot);
            }
            None => out.push(0),
        }
        codec::put_sequence(out, &self.batches);
    }
}

impl Decode for StateTransfer {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        let checkpoint = CheckpointCertificate::decode(reader)?;
        let snapshot = match reader.bool("snapshot present")? {
            true => Some(reader.bytes("snapshot", SNAPSHOT_BYTES_MAX)?),
            false => None,
        };
        Ok(StateTransfer {
            checkpoint,
            snapshot,
            batches: reader.sequence("certified batches", WINDOW_MAX)?,
        })
    }
}

/// One piece of a snapshot too large for one [`StateTransfer`]: the answer
/// to a state request, or to a [`Message::SnapshotRequest`] for the bytes
/// after `offset`. The requester appends pieces in order and checks the
/// whole against the certified checkpoint digest only once it holds
/// `total` bytes; pieces from different honest peers are interchangeable,
/// since every honest replica encodes the same state identically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPiece {
    /// The checkpoint the snapshot is at.
    pub checkpoint: CheckpointCertificate,
    /// The snapshot's whole length.
    pub total: u64,
    /// Where these bytes start.
    pub offset: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// With the last piece: the certified batches after the checkpoint, as
    /// in [`StateTransfer::batches`].
    pub batches: Vec<CertifiedBatch>,
}

impl Encode for SnapshotPiece {
    fn encode(&self, out: &mut Vec<u8>) {
        self.checkpoint.encode(out);
        out.extend_from_slice(&self.total.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        codec::put_bytes(out, &self.bytes);
        codec::put_sequence(out, &self.batches);
    }
}

impl Decode for SnapshotPiece {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(SnapshotPiece {
            checkpoint: CheckpointCertificate::decode(reader)?,
            total: reader.u64("snapshot length")?,
            offset: reader.u64("snapshot offset")?,
            bytes: reader.bytes("snapshot piece", SNAPSHOT_BYTES_MAX)?,
            batches: reader.sequence("certified batches", WINDOW_MAX)?,
        })
    }
}

/// A signed message forwarded because it disagrees with what the forwarder
/// holds for the same slot. If its signer signed something else there too, the
/// receiver now holds both and produces evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictProof {
    /// A primary's pre-prepare.
    PrePrepare(Signed<PrePrepare>),
    /// A validator's prepare.
    Prepare(Signed<Vote>),
}

/// Everything one replica sends another.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
// The test-only stand-in signatures are 32 bytes where a G2 point is 192, so
// only that build sees one variant dwarf the rest; the real layout is what counts.
#[cfg_attr(feature = "simulated-signatures", expect(clippy::large_enum_variant))]
pub enum Message {
    /// PRE-PREPARE with its batch (the batch is bound by the signed digest).
    PrePrepare(Signed<PrePrepare>, Batch),
    /// PREPARE.
    Prepare(Signed<Vote>),
    /// COMMIT.
    Commit(CommitVote),
    /// CHECKPOINT.
    Checkpoint(Signed<CheckpointVote>),
    /// VIEW-CHANGE.
    ViewChange(Signed<ViewChange>),
    /// NEW-VIEW.
    NewView(Signed<NewView>),
    /// STATUS, for retransmission.
    Status(Signed<Status>),
    /// Batch fetch request or response.
    Batch(BatchFetch),
    /// "I have executed up to this sequence; send me what follows."
    StateRequest(Sequence),
    /// The answer to a state request.
    StateResponse(Box<StateTransfer>),
    /// "Send me the snapshot of the checkpoint at `sequence` from `offset`
    /// on": the next piece of a snapshot too large for one message.
    SnapshotRequest {
        /// The checkpoint the snapshot is at.
        sequence: Sequence,
        /// The bytes the requester already holds.
        offset: u64,
    },
    /// A piece of a snapshot.
    SnapshotPiece(Box<SnapshotPiece>),
    /// A forwarded message that may expose an equivocation.
    Conflict(ConflictProof),
}

impl Message {
    /// A short name for counters and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::PrePrepare(..) => "pre-prepare",
            Message::Prepare(_) => "prepare",
            Message::Commit(_) => "commit",
            Message::Checkpoint(_) => "checkpoint",
            Message::ViewChange(_) => "view-change",
            Message::NewView(_) => "new-view",
            Message::Status(_) => "status",
            Message::Batch(BatchFetch::Request(_)) => "batch-request",
            Message::Batch(BatchFetch::Response(_)) => "batch-response",
            Message::StateRequest(_) => "state-request",
            Message::StateResponse(_) => "state-response",
            Message::SnapshotRequest { .. } => "snapshot-request",
            Message::SnapshotPiece(_) => "snapshot-piece",
            Message::Conflict(_) => "conflict",
        }
    }
}

impl Encode for Message {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(MESSAGE_VERSION);
        match self {
            Message::PrePrepare(header, batch) => {
                out.push(1);
                header.encode(out);
                batch.encode(out);
            }
            Message::Prepare(vote) => {
                out.push(2);
                vote.encode(out);
            }
            Message::Commit(vote) => {
                out.push(3);
                vote.encode(out);
            }
            Message::Checkpoint(vote) => {
                out.push(4);
                vote.encode(out);
            }
            Message::ViewChange(view_change) => {
                out.push(5);
                view_change.encode(out);
            }
            Message::NewView(new_view) => {
                out.push(6);
                new_view.encode(out);
            }
            Message::Status(status) => {
                out.push(7);
                status.encode(out);
            }
            Message::Batch(BatchFetch::Request(digest)) => {
                out.push(8);
                digest.encode(out);
            }
            Message::Batch(BatchFetch::Response(batch)) => {
                out.push(9);
                batch.encode(out);
            }
            Message::StateRequest(sequence) => {
                out.push(10);
                sequence.encode(out);
            }
            Message::StateResponse(transfer) => {
                out.push(11);
                transfer.encode(out);
            }
            Message::Conflict(ConflictProof::PrePrepare(header)) => {
                out.push(12);
                header.encode(out);
            }
            Message::Conflict(ConflictProof::Prepare(vote)) => {
                out.push(13);
                vote.encode(out);
            }
            Message::SnapshotRequest { sequence, offset } => {
                out.push(14);
                sequence.encode(out);
                offset.encode(out);
            }
            Message::SnapshotPiece(piece) => {
                out.push(15);
                piece.encode(out);
            }
        }
    }
}

impl Decode for Message {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        reader.version("message", MESSAGE_VERSION)?;
        Ok(match reader.u8("message kind")? {
            1 => Message::PrePrepare(Signed::decode(reader)?, Batch::decode(reader)?),
            2 => Message::Prepare(Signed::decode(reader)?),
            3 => Message::Commit(CommitVote::decode(reader)?),
            4 => Message::Checkpoint(Signed::decode(reader)?),
            5 => Message::ViewChange(Signed::decode(reader)?),
            6 => Message::NewView(Signed::decode(reader)?),
            7 => Message::Status(Signed::decode(reader)?),
            8 => Message::Batch(BatchFetch::Request(Digest::decode(reader)?)),
            9 => Message::Batch(BatchFetch::Response(Box::new(Batch::decode(reader)?))),
            10 => Message::StateRequest(reader.u64("state request sequence")?),
            11 => Message::StateResponse(Box::new(StateTransfer::decode(reader)?)),
            12 => Message::Conflict(ConflictProof::PrePrepare(Signed::decode(reader)?)),
            13 => Message::Conflict(ConflictProof::Prepare(Signed::decode(reader)?)),
            14 => Message::SnapshotRequest {
                sequence: reader.u64("snapshot request sequence")?,
                offset: reader.u64("snapshot request offset")?,
            },
            15 => Message::SnapshotPiece(Box::new(SnapshotPiece::decode(reader)?)),
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "message kind",
                    tag,
                });
            }
        })
    }
}
