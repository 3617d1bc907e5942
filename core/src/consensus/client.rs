//! The client's side of replies: accept a result once validators holding more
//! than 1/3 of the power (f + 1 by power, so at least one honest validator)
//! sent matching signed replies for it.

use std::collections::BTreeMap;

use crate::crypto::Digest;
use crate::crypto::ed25519::{Signature, VerifyingKey};

use super::replica::Reply;
use super::types::{ReplicaIndex, Sequence, ValidatorSet};

/// Why a reply was not counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The reply is for another client or request.
    #[error("reply is for another request")]
    WrongRequest,
    /// The signature does not verify against the named replica.
    #[error("bad reply signature: {0}")]
    BadSignature(crate::crypto::CryptoError),
    /// The replica already replied with a different result or sequence.
    #[error("replica {0} replied twice with different results")]
    Conflicting(ReplicaIndex),
}

/// Collects replies for one request until enough of them match.
#[derive(Debug)]
pub struct ReplyCollector {
    chain_id: Vec<u8>,
    validators: ValidatorSet,
    client: VerifyingKey,
    request_id: u64,
    /// Each replica's (sequence, result digest).
    votes: BTreeMap<ReplicaIndex, (Sequence, Digest)>,
    results: BTreeMap<(Sequence, Digest), Vec<u8>>,
}

impl ReplyCollector {
    /// Waits for replies to `(client, request_id)`.
    pub fn new(
        chain_id: &[u8],
        validators: ValidatorSet,
        client: VerifyingKey,
        request_id: u64,
    ) -> ReplyCollector {
        ReplyCollector {
            chain_id: chain_id.to_vec(),
            validators,
            client,
            request_id,
            votes: BTreeMap::new(),
            results: BTreeMap::new(),
        }
    }

    /// Counts one signed reply; returns the result once it is certain.
    pub fn add(
        &mut self,
        reply: &Reply,
        signature: &Signature,
    ) -> Result<Option<Vec<u8>>, ReplyError> {
        if reply.client != self.client || reply.request_id != self.request_id {
            return Err(ReplyError::WrongRequest);
        }
        reply
            .verify(&self.chain_id, &self.validators, signature)
            .map_err(ReplyError::BadSignature)?;
        let key = (reply.sequence, Digest::of(&reply.result));
        match self.votes.get(&reply.replica) {
            Some(previous) if *previous != key => {
                return Err(ReplyError::Conflicting(reply.replica));
            }
            Some(_) => {}
            None => {
                self.votes.insert(reply.replica, key);
                self.results
                    .entry(key)
                    .or_insert_with(|| reply.result.clone());
            }
        }
        let power = self.validators.power_of(
            self.votes
                .iter()
                .filter(|(_, v)| **v == key)
                .map(|(r, _)| *r),
        );
        Ok((power >= self.validators.weak_quorum_power()).then(|| self.results[&key].clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::types::Validator;
    use crate::crypto::bls::BlsSecretKey;
    use crate::crypto::ed25519::SigningKey;

    const CHAIN: &[u8] = b"shieldx-client-test";

    fn identity(i: u8) -> SigningKey {
        SigningKey::from_slice(&[i + 1; 32]).expect("seed")
    }

    fn validators() -> ValidatorSet {
        ValidatorSet::new(
            (0..4u8)
                .map(|i| Validator {
                    identity: identity(i).verifying_key(),
                    vote_key: BlsSecretKey::key_gen(&[i + 1; 32], b"")
                        .expect("ikm")
                        .public_key(),
                    vrf_key: crate::crypto::vrf::VrfSecretKey::from_slice(&[i + 1; 32])
                        .expect("seed")
                        .public_key(),
                    power: 1,
                })
                .collect(),
        )
        .expect("valid set")
    }

    fn reply(replica: u8, result: &[u8]) -> (Reply, Signature) {
        let client = identity(9).verifying_key();
        let reply = Reply {
            view: 0,
            sequence: 5,
            client,
            request_id: 1,
            result: result.to_vec(),
            replica: u16::from(replica),
        };
        let signature = reply.sign(CHAIN, &identity(replica));
        (reply, signature)
    }

    #[test]
    fn accepts_at_f_plus_one_matching_and_not_before() {
        let mut collector =
            ReplyCollector::new(CHAIN, validators(), identity(9).verifying_key(), 1);
        let (first, first_signature) = reply(0, b"ok");
        assert_eq!(collector.add(&first, &first_signature), Ok(None));
        // A lone Byzantine replica with another result does not tip it.
        let (liar, liar_signature) = reply(3, b"forged");
        assert_eq!(collector.add(&liar, &liar_signature), Ok(None));
        let (second, second_signature) = reply(1, b"ok");
        assert_eq!(
            collector.add(&second, &second_signature),
            Ok(Some(b"ok".to_vec()))
        );
    }

    #[test]
    fn rejects_bad_signatures_wrong_requests_and_changed_answers() {
        let mut collector =
            ReplyCollector::new(CHAIN, validators(), identity(9).verifying_key(), 1);
        let (reply_zero, _) = reply(0, b"ok");
        let forged = reply_zero.sign(CHAIN, &identity(1));
        assert!(matches!(
            collector.add(&reply_zero, &forged),
            Err(ReplyError::BadSignature(_))
        ));
        let (mut other, signature) = reply(1, b"ok");
        other.request_id = 2;
        assert_eq!(
            collector.add(&other, &signature),
            Err(ReplyError::WrongRequest)
        );
        let (first, signature) = reply(2, b"ok");
        assert_eq!(collector.add(&first, &signature), Ok(None));
        let (changed, signature) = reply(2, b"changed");
        assert_eq!(
            collector.add(&changed, &signature),
            Err(ReplyError::Conflicting(2))
        );
    }
}
