//! Validators, quorum arithmetic, client requests and batches.

use crate::codec::{self, CodecError, Decode, Encode, Reader};
use crate::crypto::bls::BlsPublicKey;
use crate::crypto::ed25519::{self, Signature, SigningKey, VerifyingKey};
use crate::crypto::vrf::{VrfProof, VrfPublicKey};
use crate::crypto::{CryptoError, Digest};

/// A view number.
pub type View = u64;
/// A sequence number.
pub type Sequence = u64;
/// A validator's position in the validator set.
pub type ReplicaIndex = u16;

/// The largest validator set.
pub const VALIDATORS_MAX: usize = 1024;
/// The largest client request payload, in bytes.
pub const REQUEST_PAYLOAD_MAX: usize = 64 << 10;
/// The largest payload of a request a validator identity signs (an evidence
/// transaction): a wrong-NEW-VIEW record carries the whole signed NEW-VIEW,
/// with every view change and prepared certificate of its `V`, and has no
/// smaller form (the signature covers all of it). A replica admits such a
/// request up to its `batch_bytes_max`.
pub const VALIDATOR_REQUEST_PAYLOAD_MAX: usize = 4 << 20;
/// The largest number of requests one batch may carry on the wire.
pub const BATCH_REQUESTS_MAX: usize = 16_384;
/// The longest chain id, in bytes.
pub const CHAIN_ID_MAX: usize = 64;

/// One validator: identity, vote key and voting power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// ed25519 identity that signs consensus messages.
    pub identity: VerifyingKey,
    /// BLS key that signs commit votes; its proof of possession was checked at
    /// registration (issue "Staking").
    pub vote_key: BlsPublicKey,
    /// ECVRF key whose proofs feed the leader beacon (`staking`).
    pub vrf_key: VrfPublicKey,
    /// Voting power, at least 1.
    pub power: u64,
}

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The validator set is empty or larger than [`VALIDATORS_MAX`].
    #[error("validator set size {0} is outside 1..={VALIDATORS_MAX}")]
    ValidatorCount(usize),
    /// A validator has zero power.
    #[error("validator {0} has zero power")]
    ZeroPower(usize),
    /// The total power does not fit the quorum arithmetic.
    #[error("total power overflows")]
    PowerOverflow,
    /// Two validators share an identity or a vote key.
    #[error("validator {0} repeats another validator's key")]
    DuplicateKey(usize),
    /// A configuration value is out of range.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// The validator set of a view: who votes, and with what power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
}

impl ValidatorSet {
    /// Checks and builds a validator set.
    pub fn new(validators: Vec<Validator>) -> Result<ValidatorSet, ConfigError> {
        if validators.is_empty() || validators.len() > VALIDATORS_MAX {
            return Err(ConfigError::ValidatorCount(validators.len()));
        }
        let mut total: u64 = 0;
        for (index, validator) in validators.iter().enumerate() {
            if validator.power == 0 {
                return Err(ConfigError::ZeroPower(index));
            }
            total = total
                .checked_add(validator.power)
                .ok_or(ConfigError::PowerOverflow)?;
            let repeats = validators[..index].iter().any(|other| {
                other.identity == validator.identity
                    || other.vote_key == validator.vote_key
                    || other.vrf_key == validator.vrf_key
            });
            if repeats {
                return Err(ConfigError::DuplicateKey(index));
            }
        }
        // 2 * total must not overflow in the quorum arithmetic.
        if total > u64::MAX / 2 {
            return Err(ConfigError::PowerOverflow);
        }
        Ok(ValidatorSet {
            validators,
            total_power: total,
        })
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Always false: a set has at least one validator.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The validator at `index`.
    pub fn get(&self, index: ReplicaIndex) -> Option<&Validator> {
        self.validators.get(usize::from(index))
    }

    /// All validators, in index order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The sum of all powers.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// More than 2/3 of the total power: `floor(2 * total / 3) + 1`.
    pub fn quorum_power(&self) -> u64 {
        self.total_power * 2 / 3 + 1
    }

    /// More than 1/3 of the total power: `floor(total / 3) + 1`. Any set with this
    /// much power holds at least one honest validator.
    pub fn weak_quorum_power(&self) -> u64 {
        self.total_power / 3 + 1
    }

    /// The power of the distinct validators in `indices` (unknown indices count 0).
    pub fn power_of(&self, indices: impl IntoIterator<Item = ReplicaIndex>) -> u64 {
        let mut seen = vec![false; self.validators.len()];
        let mut power = 0u64;
        for index in indices {
            if let Some(slot) = seen.get_mut(usize::from(index))
                && !*slot
            {
                *slot = true;
                power += self.validators[usize::from(index)].power;
            }
        }
        power
    }

    /// Iterates over `(index, validator)`.
    pub fn iter(&self) -> impl Iterator<Item = (ReplicaIndex, &Validator)> {
        // VALIDATORS_MAX fits in a ReplicaIndex.
        self.validators
            .iter()
            .enumerate()
            .map(|(i, v)| (i as ReplicaIndex, v))
    }
}

/// What a leader schedule may draw on: the state at a stable checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleAnchor {
    /// The checkpoint it was taken at (0: genesis).
    pub sequence: Sequence,
    /// The beacon seed after that checkpoint (`staking::next_seed`).
    pub seed: [u8; 32],
    /// Leader weight per validator index; 0 means not eligible (no stake,
    /// jailed or tombstoned).
    pub weights: Vec<u64>,
}

/// Chooses the primary of each view.
///
/// [`RoundRobin`] ignores the anchor; `staking::VrfSchedule` is the
/// stake-weighted VRF schedule. Every replica that holds the same anchor must
/// compute the same primary for the same view.
pub trait LeaderSchedule: std::fmt::Debug + Send + Sync {
    /// The primary of `view`, drawn from `anchor`.
    fn primary(
        &self,
        view: View,
        anchor: &ScheduleAnchor,
        validators: &ValidatorSet,
    ) -> ReplicaIndex;

    /// Whether validator `index` may lead views drawn from `anchor`. A
    /// replica whose newly stable anchor makes its current primary
    /// ineligible leaves the view (see the module docs of `consensus`).
    /// Every validator is eligible unless a schedule says otherwise.
    fn eligible(&self, index: ReplicaIndex, anchor: &ScheduleAnchor) -> bool {
        let _ = (index, anchor);
        true
    }
}

/// `primary(v) = v mod n`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobin;

impl LeaderSchedule for RoundRobin {
    fn primary(
        &self,
        view: View,
        _anchor: &ScheduleAnchor,
        validators: &ValidatorSet,
    ) -> ReplicaIndex {
        // n <= VALIDATORS_MAX, so the remainder fits in a ReplicaIndex.
        (view % validators.len() as u64) as ReplicaIndex
    }
}

/// A client request, signed by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The client's ed25519 key; also its identity for exactly-once semantics.
    pub client: VerifyingKey,
    /// Per-client request number; a client's requests execute in increasing order,
    /// each at most once.
    pub request_id: u64,
    /// Opaque application payload, at most [`REQUEST_PAYLOAD_MAX`] bytes.
    pub payload: Vec<u8>,
    /// The client's signature over `(chain id, client, request id, payload)`.
    pub signature: Signature,
}

const REQUEST_DOMAIN: &[u8] = b"shieldx/request/v1";

impl Request {
    /// Builds and signs a request.
    pub fn sign(chain_id: &[u8], key: &SigningKey, request_id: u64, payload: Vec<u8>) -> Request {
        let client = key.verifying_key();
        let signature = key.sign(&Request::signing_bytes(
            chain_id, &client, request_id, &payload,
        ));
        Request {
            client,
            request_id,
            payload,
            signature,
        }
    }

    /// The bytes the client signs.
    pub fn signing_bytes(
        chain_id: &[u8],
        client: &VerifyingKey,
        request_id: u64,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(REQUEST_DOMAIN.len() + chain_id.len() + 48 + payload.len());
        out.extend_from_slice(REQUEST_DOMAIN);
        codec::put_bytes(&mut out, chain_id);
        out.extend_from_slice(&client.to_bytes());
        out.extend_from_slice(&request_id.to_le_bytes());
        codec::put_bytes(&mut out, payload);
        out
    }

    /// Verifies the client's signature.
    pub fn verify(&self, chain_id: &[u8]) -> Result<(), CryptoError> {
        let bytes = Request::signing_bytes(chain_id, &self.client, self.request_id, &self.payload);
        self.client.verify(&bytes, &self.signature)
    }

    /// The encoded size, used for batch byte limits.
    pub fn encoded_len(&self) -> usize {
        32 + 8 + 4 + self.payload.len() + 64
    }
}

impl Encode for Request {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.client.to_bytes());
        out.extend_from_slice(&self.request_id.to_le_bytes());
        codec::put_bytes(out, &self.payload);
        out.extend_from_slice(&self.signature.to_bytes());
    }
}

impl Decode for Request {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        let client = VerifyingKey::from_slice(reader.take("request client", 32)?)?;
        let request_id = reader.u64("request id")?;
        // Who signed is checked later; the decoder admits the larger limit.
        let payload = reader.bytes("request payload", VALIDATOR_REQUEST_PAYLOAD_MAX)?;
        let signature = Signature::from_slice(reader.take("request signature", 64)?)?;
        Ok(Request {
            client,
            request_id,
            payload,
            signature,
        })
    }
}

/// The proposer's VRF proof for the leader beacon, carried by the batch at a
/// checkpoint sequence (see `staking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderProof {
    /// The validator that proposed the batch (the pre-prepare's signer).
    pub proposer: ReplicaIndex,
    /// ECVRF proof over `staking::vrf_alpha(chain id, previous seed, epoch)`.
    pub proof: VrfProof,
}

/// An ordered batch of requests: what one sequence number commits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// The requests, in execution order.
    pub requests: Vec<Request>,
    /// The beacon contribution; only at checkpoint sequences.
    pub leader_proof: Option<LeaderProof>,
}

const BATCH_VERSION: u8 = 2;

impl Batch {
    /// The empty batch: the "null request" that fills gaps after a view change.
    pub fn null() -> Batch {
        Batch {
            requests: Vec::new(),
            leader_proof: None,
        }
    }

    /// The batch digest: blake3 of the canonical encoding.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.to_encoded())
    }

    /// Verifies every request's client signature with one batch verification;
    /// on failure, finds the first bad request by verifying singly.
    pub fn verify_requests(&self, chain_id: &[u8]) -> Result<(), (usize, CryptoError)> {
        if self.requests.is_empty() {
            return Ok(());
        }
        let messages: Vec<Vec<u8>> = self
            .requests
            .iter()
            .map(|r| Request::signing_bytes(chain_id, &r.client, r.request_id, &r.payload))
            .collect();
        let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<Signature> = self.requests.iter().map(|r| r.signature).collect();
        let keys: Vec<VerifyingKey> = self.requests.iter().map(|r| r.client).collect();
        if ed25519::verify_batch(&message_refs, &signatures, &keys).is_ok() {
            return Ok(());
        }
        for (index, request) in self.requests.iter().enumerate() {
            if let Err(error) = request.client.verify(&messages[index], &request.signature) {
                return Err((index, error));
            }
        }
        // Batch verification is cofactored and strict single verification is not;
        // they disagree only on crafted small-order components. Strict wins.
        Ok(())
    }
}

impl Encode for Batch {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(BATCH_VERSION);
        codec::put_sequence(out, &self.requests);
        match &self.leader_proof {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                out.extend_from_slice(&p.proposer.to_le_bytes());
                out.extend_from_slice(&p.proof.to_bytes());
            }
        }
    }
}

impl Decode for Batch {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        reader.version("batch", BATCH_VERSION)?;
        let requests = reader.sequence("batch requests", BATCH_REQUESTS_MAX)?;
        let leader_proof = match reader.u8("leader proof tag")? {
            0 => None,
            1 => Some(LeaderProof {
                proposer: reader.u16("leader proof proposer")?,
                proof: VrfProof::from_slice(reader.take("leader proof", 80)?)?,
            }),
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "leader proof tag",
                    tag,
                });
            }
        };
        Ok(Batch {
            requests,
            leader_proof,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::bls::BlsSecretKey;

    fn validator(seed: u8, power: u64) -> Validator {
        Validator {
            identity: SigningKey::from_slice(&[seed; 32])
                .expect("seed")
                .verifying_key(),
            vote_key: BlsSecretKey::key_gen(&[seed; 32], b"")
                .expect("ikm")
                .public_key(),
            vrf_key: crate::crypto::vrf::VrfSecretKey::from_slice(&[seed; 32])
                .expect("seed")
                .public_key(),
            power,
        }
    }

    #[test]
    fn quorum_arithmetic_for_equal_powers() {
        for (n, quorum, weak) in [
            (1u8, 1, 1),
            (3, 3, 2),
            (4, 3, 2),
            (7, 5, 3),
            (16, 11, 6),
            (64, 43, 22),
        ] {
            let set = ValidatorSet::new((0..n).map(|i| validator(i, 1)).collect()).expect("valid");
            assert_eq!(set.quorum_power(), quorum, "n = {n}");
            assert_eq!(set.weak_quorum_power(), weak, "n = {n}");
        }
    }

    #[test]
    fn quorum_arithmetic_for_stake_weights() {
        // 100/50/25/25: total 200, quorum > 133.3 so 134, weak > 66.6 so 67.
        let set = ValidatorSet::new(vec![
            validator(1, 100),
            validator(2, 50),
            validator(3, 25),
            validator(4, 25),
        ])
        .expect("valid");
        assert_eq!(set.quorum_power(), 134);
        assert_eq!(set.weak_quorum_power(), 67);
        assert_eq!(set.power_of([0, 1]), 150);
        assert_eq!(
            set.power_of([1, 1, 2, 9]),
            75,
            "duplicates and unknown indices count once / zero"
        );
    }

    #[test]
    fn rejects_bad_sets() {
        assert_eq!(
            ValidatorSet::new(vec![]),
            Err(ConfigError::ValidatorCount(0))
        );
        assert_eq!(
            ValidatorSet::new(vec![validator(1, 0)]),
            Err(ConfigError::ZeroPower(0))
        );
        assert_eq!(
            ValidatorSet::new(vec![validator(1, 1), validator(1, 1)]),
            Err(ConfigError::DuplicateKey(1))
        );
        assert_eq!(
            ValidatorSet::new(vec![validator(1, u64::MAX / 2), validator(2, 2)]),
            Err(ConfigError::PowerOverflow)
        );
    }

    #[test]
    fn request_signatures_bind_chain_and_fields() {
        let key = SigningKey::from_slice(&[9; 32]).expect("seed");
        let request = Request::sign(b"chain-a", &key, 7, b"payload".to_vec());
        assert_eq!(request.verify(b"chain-a"), Ok(()));
        assert!(request.verify(b"chain-b").is_err());
        let mut tampered = request.clone();
        tampered.request_id = 8;
        assert!(tampered.verify(b"chain-a").is_err());
        let vrf = crate::crypto::vrf::VrfSecretKey::from_slice(&[5; 32]).expect("seed");
        let batch = Batch {
            requests: vec![request.clone(), tampered],
            leader_proof: Some(LeaderProof {
                proposer: 3,
                proof: vrf.prove(b"alpha").expect("prove").0,
            }),
        };
        assert_eq!(
            batch.verify_requests(b"chain-a").map_err(|(i, _)| i),
            Err(1)
        );
        assert_eq!(
            crate::codec::decode_exact::<Batch>(&batch.to_encoded()),
            Ok(batch.clone())
        );
        let without = Batch {
            leader_proof: None,
            ..batch.clone()
        };
        assert_ne!(without.digest(), batch.digest(), "the proof is committed");
        let mut bad_tag = without.to_encoded();
        *bad_tag.last_mut().expect("tag") = 7;
        assert!(crate::codec::decode_exact::<Batch>(&bad_tag).is_err());
    }
}
