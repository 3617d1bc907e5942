//! Evidence of misbehaviour, verifiable by anyone with the chain id and the
//! validator set ([`Evidence::verify`]):
//!
//! - **Equivocation:** two validly signed, conflicting messages from one
//!   validator for the same `(view, sequence, phase)`. Honest replicas never
//!   produce such pairs (see the durability rules in `replica`).
//! - **A wrong NEW-VIEW** (an invalid proposal): a validly signed NEW-VIEW
//!   whose `O` is not the one its own `V` determines. An honest primary
//!   computes `O` from `V` with one deterministic function, the same one
//!   verification runs, whatever `V` holds; so a mismatch convicts its signer
//!   without trusting `V` at all.
//!
//! Valid evidence therefore always names a faulty validator.
//!
//! An [`Evidence`] is the offence alone. What is committed, stored and
//! handed to third parties is an [`EvidenceRecord`]: the offence under a
//! header naming the chain, the validator and the slot, so a verifier holding
//! only the validator-set file can check that the record is about its chain
//! and that the header says what the signed messages prove.

use crate::codec::{CodecError, Decode, Encode, Reader};
use crate::crypto::Digest;

use super::message::{CommitVote, NewView, PrePrepare, Signed, Vote};
use super::types::{CHAIN_ID_MAX, ReplicaIndex, Sequence, ValidatorSet, View};

/// The protocol phase a signed message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// PRE-PREPARE (by the primary).
    PrePrepare,
    /// PREPARE.
    Prepare,
    /// COMMIT.
    Commit,
}

/// Why evidence did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The two messages are from different validators, views, sequences, or agree.
    #[error("the messages do not conflict: {0}")]
    NoConflict(&'static str),
    /// A signature does not verify.
    #[error("invalid signature: {0}")]
    Signature(#[from] crate::crypto::CryptoError),
    /// The NEW-VIEW's `O` is the one its `V` determines: no offence.
    #[error("the NEW-VIEW is consistent: {0}")]
    Consistent(&'static str),
    /// The record is about another chain than the verifier's.
    #[error("the record is for chain {record:?}, not {expected:?}")]
    WrongChain {
        /// The record's chain id (lossy UTF-8).
        record: String,
        /// The verifier's chain id (lossy UTF-8).
        expected: String,
    },
    /// A header field differs from what the signed messages prove.
    #[error("the record's {0} does not match its signed messages")]
    Header(&'static str),
}

/// Proof that one validator signed two different digests for one slot, or a
/// NEW-VIEW its own contents refute.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evidence {
    /// Two pre-prepares from one primary.
    ConflictingPrePrepare(Signed<PrePrepare>, Signed<PrePrepare>),
    /// Two prepares from one validator.
    ConflictingPrepare(Signed<Vote>, Signed<Vote>),
    /// Two commit votes from one validator (boxed: BLS points make them large).
    ConflictingCommit(Box<CommitVote>, Box<CommitVote>),
    /// A NEW-VIEW whose `O` differs from the one its `V` determines (a
    /// pre-prepare dropped, added, changed, or signed by someone else).
    WrongNewView(Box<Signed<NewView>>),
}

impl Evidence {
    /// The offending validator.
    pub fn validator(&self) -> ReplicaIndex {
        match self {
            Evidence::ConflictingPrePrepare(a, _) => a.signer,
            Evidence::ConflictingPrepare(a, _) => a.signer,
            Evidence::ConflictingCommit(a, _) => a.replica,
            Evidence::WrongNewView(new_view) => new_view.signer,
        }
    }

    /// Whether this is equivocation (two conflicting signed messages), the
    /// offence that tombstones; otherwise it is an invalid proposal.
    pub fn is_equivocation(&self) -> bool {
        !matches!(self, Evidence::WrongNewView(_))
    }

    /// `(view, sequence, phase)` of the offence.
    pub fn slot(&self) -> (View, Sequence, Phase) {
        match self {
            Evidence::ConflictingPrePrepare(a, _) => {
                (a.body.view, a.body.sequence, Phase::PrePrepare)
            }
            Evidence::ConflictingPrepare(a, _) => (a.body.view, a.body.sequence, Phase::Prepare),
            Evidence::ConflictingCommit(a, _) => (a.view, a.sequence, Phase::Commit),
            // O is the new primary's set of pre-prepares, from the highest
            // stable checkpoint in V on.
            Evidence::WrongNewView(new_view) => {
                let checkpoint = new_view
                    .body
                    .view_changes
                    .iter()
                    .map(|v| v.body.checkpoint.sequence)
                    .max()
                    .unwrap_or(0);
                (new_view.body.view, checkpoint, Phase::PrePrepare)
            }
        }
    }

    /// A digest identifying this record, for de-duplication. The two messages are
    /// ordered canonically first, so `(a, b)` and `(b, a)` are the same evidence.
    pub fn id(&self) -> Digest {
        let (first, second) = match self {
            Evidence::ConflictingPrePrepare(a, b) => (a.to_encoded(), b.to_encoded()),
            Evidence::ConflictingPrepare(a, b) => (a.to_encoded(), b.to_encoded()),
            Evidence::ConflictingCommit(a, b) => (a.to_encoded(), b.to_encoded()),
            Evidence::WrongNewView(new_view) => {
                return Digest::of_parts(
                    "shieldx evidence id v1: wrong new-view",
                    &[&new_view.to_encoded()],
                );
            }
        };
        let (low, high) = if first <= second {
            (first, second)
        } else {
            (second, first)
        };
        Digest::of_parts(
            "shieldx evidence id v1",
            &[&[self.slot().2 as u8], &low, &high],
        )
    }

    /// Verifies both signatures and that the messages truly conflict; for a
    /// NEW-VIEW, its signature and that its `O` is not the one `V` determines.
    pub fn verify(&self, chain_id: &[u8], validators: &ValidatorSet) -> Result<(), EvidenceError> {
        match self {
            Evidence::ConflictingPrePrepare(a, b) => {
                conflict(
                    a.signer,
                    b.signer,
                    (a.body.view, a.body.sequence, a.body.digest),
                    (b.body.view, b.body.sequence, b.body.digest),
                )?;
                a.verify(chain_id, validators)?;
                b.verify(chain_id, validators)?;
            }
            Evidence::ConflictingPrepare(a, b) => {
                conflict(
                    a.signer,
                    b.signer,
                    (a.body.view, a.body.sequence, a.body.digest),
                    (b.body.view, b.body.sequence, b.body.digest),
                )?;
                a.verify(chain_id, validators)?;
                b.verify(chain_id, validators)?;
            }
            Evidence::ConflictingCommit(a, b) => {
                conflict(
                    a.replica,
                    b.replica,
                    (a.view, a.sequence, a.digest),
                    (b.view, b.sequence, b.digest),
                )?;
                a.verify(chain_id, validators)?;
                b.verify(chain_id, validators)?;
            }
            Evidence::WrongNewView(new_view) => {
                new_view.verify(chain_id, validators)?;
                if super::replica::new_view_follows_from_v(new_view, false) {
                    return Err(EvidenceError::Consistent("O is the one V determines"));
                }
            }
        }
        Ok(())
    }
}

/// Evidence as it is committed, stored and verified offline: the offence
/// under a header of everything needed to check it, besides the validator
/// set: the chain id, the validator, and the slot `(view, sequence, phase)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRecord {
    /// The chain every signature in the offence binds.
    pub chain_id: Vec<u8>,
    /// The offending validator.
    pub validator: ReplicaIndex,
    /// The view of the offence.
    pub view: View,
    /// The sequence of the offence (for a NEW-VIEW: the checkpoint its `O`
    /// starts from).
    pub sequence: Sequence,
    /// The phase of the offence.
    pub phase: Phase,
    /// The signed messages.
    pub evidence: Evidence,
}

impl EvidenceRecord {
    /// The record of `evidence` on `chain_id`, its header taken from the
    /// messages.
    pub fn new(chain_id: &[u8], evidence: Evidence) -> EvidenceRecord {
        let (view, sequence, phase) = evidence.slot();
        EvidenceRecord {
            chain_id: chain_id.to_vec(),
            validator: evidence.validator(),
            view,
            sequence,
            phase,
            evidence,
        }
    }

    /// Checks that the record is about `chain_id`, that its header is what
    /// its messages prove, and the offence itself ([`Evidence::verify`]).
    pub fn verify(&self, chain_id: &[u8], validators: &ValidatorSet) -> Result<(), EvidenceError> {
        if self.chain_id != chain_id {
            return Err(EvidenceError::WrongChain {
                record: String::from_utf8_lossy(&self.chain_id).into_owned(),
                expected: String::from_utf8_lossy(chain_id).into_owned(),
            });
        }
        if self.validator != self.evidence.validator() {
            return Err(EvidenceError::Header("validator"));
        }
        let (view, sequence, phase) = self.evidence.slot();
        if self.view != view {
            return Err(EvidenceError::Header("view"));
        }
        if self.sequence != sequence {
            return Err(EvidenceError::Header("sequence"));
        }
        if self.phase != phase {
            return Err(EvidenceError::Header("phase"));
        }
        self.evidence.verify(&self.chain_id, validators)
    }

    /// The offence's id ([`Evidence::id`]): one offence, one slash, however
    /// many records report it.
    pub fn id(&self) -> Digest {
        self.evidence.id()
    }
}

const RECORD_VERSION: u8 = 1;

impl Encode for EvidenceRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(RECORD_VERSION);
        crate::codec::put_bytes(out, &self.chain_id);
        out.extend_from_slice(&self.validator.to_le_bytes());
        out.extend_from_slice(&self.view.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.push(match self.phase {
            Phase::PrePrepare => 1,
            Phase::Prepare => 2,
            Phase::Commit => 3,
        });
        self.evidence.encode(out);
    }
}

impl Decode for EvidenceRecord {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        reader.version("evidence record", RECORD_VERSION)?;
        let chain_id = reader.bytes("chain id", CHAIN_ID_MAX)?;
        let validator = reader.u16("validator")?;
        let view = reader.u64("view")?;
        let sequence = reader.u64("sequence")?;
        let phase = match reader.u8("phase")? {
            1 => Phase::PrePrepare,
            2 => Phase::Prepare,
            3 => Phase::Commit,
            tag => return Err(CodecError::InvalidTag { what: "phase", tag }),
        };
        Ok(EvidenceRecord {
            chain_id,
            validator,
            view,
            sequence,
            phase,
            evidence: Evidence::decode(reader)?,
        })
    }
}

fn conflict(
    first_signer: ReplicaIndex,
    second_signer: ReplicaIndex,
    first: (View, Sequence, Digest),
    second: (View, Sequence, Digest),
) -> Result<(), EvidenceError> {
    if first_signer != second_signer {
        return Err(EvidenceError::NoConflict("different validators"));
    }
    if (first.0, first.1) != (second.0, second.1) {
        return Err(EvidenceError::NoConflict("different view or sequence"));
    }
    if first.2 == second.2 {
        return Err(EvidenceError::NoConflict("same digest"));
    }
    Ok(())
}

const EVIDENCE_VERSION: u8 = 1;

impl Encode for Evidence {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(EVIDENCE_VERSION);
        match self {
            Evidence::ConflictingPrePrepare(a, b) => {
                out.push(1);
                a.encode(out);
                b.encode(out);
            }
            Evidence::ConflictingPrepare(a, b) => {
                out.push(2);
                a.encode(out);
                b.encode(out);
            }
            Evidence::ConflictingCommit(a, b) => {
                out.push(3);
                a.encode(out);
                b.encode(out);
            }
            Evidence::WrongNewView(new_view) => {
                out.push(4);
                new_view.encode(out);
            }
        }
    }
}

impl Decode for Evidence {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        reader.version("evidence", EVIDENCE_VERSION)?;
        Ok(match reader.u8("evidence kind")? {
            1 => Evidence::ConflictingPrePrepare(Signed::decode(reader)?, Signed::decode(reader)?),
            2 => Evidence::ConflictingPrepare(Signed::decode(reader)?, Signed::decode(reader)?),
            3 => Evidence::ConflictingCommit(
                Box::new(CommitVote::decode(reader)?),
                Box::new(CommitVote::decode(reader)?),
            ),
            4 => Evidence::WrongNewView(Box::new(Signed::decode(reader)?)),
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "evidence kind",
                    tag,
                });
            }
        })
    }
}
