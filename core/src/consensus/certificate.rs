//! Certificates: signer bitmaps, commit certificates (BLS aggregate), prepared
//! certificates and checkpoint certificates.

use crate::codec::{self, CodecError, Decode, Encode, Reader};
use crate::crypto::Digest;
use crate::crypto::bls::{AggregatePublicKey, BlsSignature, UncheckedSignature};

use super::message::{CheckpointVote, CommitMessage, CommitVote, PrePrepare, Signed, Vote};
use super::types::{ReplicaIndex, Sequence, VALIDATORS_MAX, ValidatorSet, View};

/// Why a certificate did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The signers hold no more than 2/3 of the power.
    #[error("signers hold {have} power, quorum is {need}")]
    NoQuorum {
        /// Power of the valid, distinct signers.
        have: u64,
        /// The quorum.
        need: u64,
    },
    /// A signature inside is invalid.
    #[error("invalid signature: {0}")]
    Signature(#[from] crate::crypto::CryptoError),
    /// The parts do not agree (view, sequence, digest, signer role, duplicates).
    #[error("inconsistent certificate: {0}")]
    Inconsistent(&'static str),
}

/// A set of validator indices as a bitmap, canonical: no bits beyond `len`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignerSet {
    len: u16,
    bits: Vec<u8>,
}

impl SignerSet {
    /// An empty set over `len` validators.
    pub fn new(len: usize) -> SignerSet {
        // Validator sets never exceed VALIDATORS_MAX, which fits in u16.
        SignerSet {
            len: len as u16,
            bits: vec![0; len.div_ceil(8)],
        }
    }

    /// Adds `index`; false if it is outside the set.
    pub fn insert(&mut self, index: ReplicaIndex) -> bool {
        if index >= self.len {
            return false;
        }
        self.bits[usize::from(index / 8)] |= 1 << (index % 8);
        true
    }

    /// Whether `index` is in the set.
    pub fn contains(&self, index: ReplicaIndex) -> bool {
        index < self.len && self.bits[usize::from(index / 8)] & (1 << (index % 8)) != 0
    }

    /// The members, ascending.
    pub fn iter(&self) -> impl Iterator<Item = ReplicaIndex> + '_ {
        (0..self.len).filter(|i| self.contains(*i))
    }

    /// The number of members.
    pub fn count(&self) -> usize {
        self.iter().count()
    }

    /// The bitmap as `0`/`1` characters, index 0 first (for logs and the demo).
    pub fn to_bit_string(&self) -> String {
        (0..self.len)
            .map(|i| if self.contains(i) { '1' } else { '0' })
            .collect()
    }
}

impl Encode for SignerSet {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.bits);
    }
}

impl Decode for SignerSet {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        let len = reader.u16("signer set length")?;
        if usize::from(len) > VALIDATORS_MAX {
            return Err(CodecError::TooLong {
                what: "signer set",
                length: usize::from(len),
                maximum: VALIDATORS_MAX,
            });
        }
        let bits = reader
            .take("signer bitmap", usize::from(len).div_ceil(8))?
            .to_vec();
        let unused = (bits.len() * 8) - usize::from(len);
        if unused > 0 && bits.last().is_some_and(|last| last >> (8 - unused) != 0) {
            return Err(CodecError::Invalid {
                what: "signer set",
                reason: "bits set beyond its length",
            });
        }
        Ok(SignerSet { len, bits })
    }
}

/// Proof that `(view, sequence, digest)` committed: an aggregate BLS signature of
/// validators holding more than 2/3 of the power, with their bitmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitCertificate {
    /// The view the votes were cast in.
    pub view: View,
    /// The committed sequence number.
    pub sequence: Sequence,
    /// The committed batch digest.
    pub digest: Digest,
    /// Who voted.
    pub signers: SignerSet,
    /// The aggregate of their commit votes.
    pub aggregate: BlsSignature,
}

impl CommitCertificate {
    /// Aggregates votes that all match `(view, sequence, digest)`. Does not verify;
    /// see [`CommitCertificate::verify`].
    pub fn aggregate(validator_count: usize, votes: &[CommitVote]) -> Option<CommitCertificate> {
        let first = votes.first()?;
        let mut signers = SignerSet::new(validator_count);
        for vote in votes {
            if (vote.view, vote.sequence, vote.digest) != (first.view, first.sequence, first.digest)
                || !signers.insert(vote.replica)
            {
                return None;
            }
        }
        let signatures: Vec<UncheckedSignature> = votes.iter().map(|v| v.signature).collect();
        let aggregate = UncheckedSignature::aggregate(&signatures).ok()?;
        Some(CommitCertificate {
            view: first.view,
            sequence: first.sequence,
            digest: first.digest,
            signers,
            aggregate,
        })
    }

    /// Verifies against `validators`: quorum power, then one FastAggregateVerify.
    pub fn verify(
        &self,
        chain_id: &[u8],
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        let message = CommitMessage::new(chain_id, self.view, self.sequence, self.digest);
        self.verify_with_quorum(&message, validators, validators.quorum_power())
    }

    /// [`CommitCertificate::verify`] with an explicit power threshold (the
    /// replica passes its own, which a planted test bug may lower) and the
    /// message already hashed (the replica hashed it to sign its own vote).
    /// `message` must be for this certificate's view, sequence and digest.
    pub(crate) fn verify_with_quorum(
        &self,
        message: &CommitMessage,
        validators: &ValidatorSet,
        need: u64,
    ) -> Result<(), CertificateError> {
        if (message.view, message.sequence, message.digest)
            != (self.view, self.sequence, self.digest)
        {
            return Err(CertificateError::Inconsistent(
                "the hashed message is for another slot",
            ));
        }
        if usize::from(self.signers.len) != validators.len() {
            return Err(CertificateError::Inconsistent(
                "bitmap length differs from the validator set",
            ));
        }
        let have = validators.power_of(self.signers.iter());
        if have < need {
            return Err(CertificateError::NoQuorum { have, need });
        }
        let keys = self
            .signers
            .iter()
            .filter_map(|i| validators.get(i))
            .map(|v| &v.vote_key);
        let aggregate_key = AggregatePublicKey::aggregate(keys)?;
        aggregate_key.verify_hashed(message.hashed(), &self.aggregate)?;
        Ok(())
    }
}

impl Encode for CommitCertificate {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.view.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        self.digest.encode(out);
        self.signers.encode(out);
        out.extend_from_slice(&self.aggregate.to_bytes());
    }
}

impl Decode for CommitCertificate {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CommitCertificate {
            view: reader.u64("view")?,
            sequence: reader.u64("sequence")?,
            digest: Digest::decode(reader)?,
            signers: SignerSet::decode(reader)?,
            aggregate: BlsSignature::from_slice(reader.take("aggregate signature", 96)?)?,
        })
    }
}

/// Proof that `(view, sequence, digest)` prepared: the primary's signed
/// pre-prepare and signed prepares from other validators, together holding
/// more than 2/3 of the power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCertificate {
    /// The primary's pre-prepare.
    pub pre_prepare: Signed<PrePrepare>,
    /// Matching prepares from distinct backups.
    pub prepares: Vec<Signed<Vote>>,
}

impl PreparedCertificate {
    /// The view it prepared in.
    pub fn view(&self) -> View {
        self.pre_prepare.body.view
    }

    /// The sequence number.
    pub fn sequence(&self) -> Sequence {
        self.pre_prepare.body.sequence
    }

    /// The batch digest.
    pub fn digest(&self) -> Digest {
        self.pre_prepare.body.digest
    }

    /// Verifies every signature, matching fields and the power.
    ///
    /// It does not check that the pre-prepare's signer was the primary of its
    /// view: with the VRF schedule a verifier may hold another anchor than the
    /// view had. Safety does not need it. Two certificates for one
    /// `(view, sequence)` with different digests each hold more than 2/3 of
    /// the power, so they share an honest validator, which would have signed
    /// (pre-prepare or prepare) two digests for one slot — and honest
    /// validators sign at most one per slot and phase, and never both phases.
    pub fn verify(
        &self,
        chain_id: &[u8],
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        let header = self.pre_prepare.body;
        let primary = self.pre_prepare.signer;
        self.pre_prepare.verify(chain_id, validators)?;
        let mut signers = SignerSet::new(validators.len());
        signers.insert(primary);
        for prepare in &self.prepares {
            let vote = prepare.body;
            if (vote.view, vote.sequence, vote.digest)
                != (header.view, header.sequence, header.digest)
            {
                return Err(CertificateError::Inconsistent(
                    "prepare does not match the pre-prepare",
                ));
            }
            if prepare.signer == primary || signers.contains(prepare.signer) {
                return Err(CertificateError::Inconsistent(
                    "prepare from the primary or repeated",
                ));
            }
            prepare.verify(chain_id, validators)?;
            signers.insert(prepare.signer);
        }
        let have = validators.power_of(signers.iter());
        let need = validators.quorum_power();
        if have < need {
            return Err(CertificateError::NoQuorum { have, need });
        }
        Ok(())
    }
}

impl Encode for PreparedCertificate {
    fn encode(&self, out: &mut Vec<u8>) {
        self.pre_prepare.encode(out);
        codec::put_sequence(out, &self.prepares);
    }
}

impl Decode for PreparedCertificate {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(PreparedCertificate {
            pre_prepare: Signed::decode(reader)?,
            prepares: reader.sequence("prepares", VALIDATORS_MAX)?,
        })
    }
}

/// Proof that the state after `sequence` has `state_digest`: matching signed
/// checkpoint votes holding more than 2/3 of the power. Sequence 0 (genesis)
/// needs no votes: every replica starts there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointCertificate {
    /// The checkpointed sequence.
    pub sequence: Sequence,
    /// The state digest.
    pub state_digest: Digest,
    /// The votes.
    pub votes: Vec<Signed<CheckpointVote>>,
}

impl CheckpointCertificate {
    /// The genesis checkpoint.
    pub fn genesis(state_digest: Digest) -> CheckpointCertificate {
        CheckpointCertificate {
            sequence: 0,
            state_digest,
            votes: Vec::new(),
        }
    }

    /// Verifies the votes' signatures, their agreement and their power.
    pub fn verify(
        &self,
        chain_id: &[u8],
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        if self.sequence == 0 {
            return if self.votes.is_empty() {
                Ok(())
            } else {
                Err(CertificateError::Inconsistent(
                    "genesis checkpoint carries votes",
                ))
            };
        }
        let mut signers = SignerSet::new(validators.len());
        for vote in &self.votes {
            if vote.body.sequence != self.sequence || vote.body.state_digest != self.state_digest {
                return Err(CertificateError::Inconsistent(
                    "checkpoint vote does not match",
                ));
            }
            if signers.contains(vote.signer) {
                return Err(CertificateError::Inconsistent("repeated checkpoint voter"));
            }
            vote.verify(chain_id, validators)?;
            signers.insert(vote.signer);
        }
        let have = validators.power_of(signers.iter());
        let need = validators.quorum_power();
        if have < need {
            return Err(CertificateError::NoQuorum { have, need });
        }
        Ok(())
    }
}

impl Encode for CheckpointCertificate {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.sequence.to_le_bytes());
        self.state_digest.encode(out);
        codec::put_sequence(out, &self.votes);
    }
}

impl Decode for CheckpointCertificate {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(CheckpointCertificate {
            sequence: reader.u64("sequence")?,
            state_digest: Digest::decode(reader)?,
            votes: reader.sequence("checkpoint votes", VALIDATORS_MAX)?,
        })
    }
}
