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

use crate::codec::{CodecError, Decode, Encode, Reader};
use crate::crypto::Digest;

use super::message::{CommitVote, NewView, PrePrepare, Signed, Vote};
use super::types::{ReplicaIndex, Sequence, ValidatorSet, View};

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
