//! Property tests over shieldx core types live in `tests/`.
//!
//! This library holds the bodies of the fuzz targets, shared by `fuzz/` (where
//! libFuzzer drives them) and by `tests/fuzz_corpus.rs` (where `cargo test`
//! replays every committed corpus file), so the two can never drift apart. Each
//! body must return normally on every input: a panic is a bug.

use shieldx_core::crypto::bls::{self, BlsPublicKey, BlsSignature};
use shieldx_core::crypto::ed25519::{self, VerifyingKey};
use shieldx_core::crypto::vrf::{VrfProof, VrfPublicKey};

/// Splits `data` into fixed-size prefixes and the remainder.
fn split<const A: usize, const B: usize>(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    if data.len() < A + B {
        return None;
    }
    let (a, rest) = data.split_at(A);
    let (b, rest) = rest.split_at(B);
    Some((a, b, rest))
}

/// ECVRF: public key (32) || proof (80) || alpha. Decodes and verifies; a proof
/// that verifies must give the same beta as `proof_to_hash`.
pub fn vrf_verify(data: &[u8]) {
    let Some((public, proof, alpha)) = split::<32, 80>(data) else {
        assert!(VrfProof::from_slice(data).is_err() || data.len() == 80);
        return;
    };
    let (Ok(public), Ok(proof)) = (
        VrfPublicKey::from_slice(public),
        VrfProof::from_slice(proof),
    ) else {
        return;
    };
    if let Ok(beta) = public.verify(alpha, &proof) {
        assert_eq!(beta, proof.to_hash(), "verify and proof_to_hash agree");
    }
}

/// BLS: public key (48) || signature (96) || message. Decodes, verifies, and
/// checks that a single-key FastAggregateVerify and AggregateVerify agree with Verify.
pub fn bls_verify(data: &[u8]) {
    let Some((public, signature, message)) = split::<48, 96>(data) else {
        assert!(BlsSignature::from_slice(data).is_err() || data.len() == 96);
        return;
    };
    let (Ok(public), Ok(signature)) = (
        BlsPublicKey::from_slice(public),
        BlsSignature::from_slice(signature),
    ) else {
        return;
    };
    let single = public.verify(message, &signature).is_ok();
    assert_eq!(
        single,
        bls::fast_aggregate_verify(&[public], message, &signature).is_ok()
    );
    assert_eq!(
        single,
        bls::aggregate_verify(&[public], &[message], &signature).is_ok()
    );
}

/// ed25519: public key (32) || signature (64) || message. Strict single
/// verification and batch verification of one item must agree on valid input.
pub fn ed25519_verify(data: &[u8]) {
    let Some((public, signature, message)) = split::<32, 64>(data) else {
        return;
    };
    let (Ok(public), Ok(signature)) = (
        VerifyingKey::from_slice(public),
        ed25519::Signature::from_slice(signature),
    ) else {
        return;
    };
    if public.verify(message, &signature).is_ok() {
        assert!(ed25519::verify_batch(&[message], &[signature], &[public]).is_ok());
    }
}

/// Consensus messages: bytes that decode must re-encode to themselves, and any
/// bytes fed to a replica (as from peer 0, the primary of view 0) must be
/// handled without a panic and without output when rejected.
pub fn consensus_message(data: &[u8]) {
    use shieldx_core::codec::{Encode, decode_exact};
    use shieldx_core::consensus::{
        Message, Replica, ReplicaConfig, ReplicaKeys, RoundRobin, Validator, ValidatorSet,
    };
    use shieldx_core::crypto::bls::BlsSecretKey;
    use shieldx_core::crypto::ed25519::SigningKey;

    if let Ok(message) = decode_exact::<Message>(data) {
        assert_eq!(message.to_encoded(), data, "one encoding per message");
    }
    let identity = |i: u8| SigningKey::from_slice(&[i + 1; 32]).expect("32-byte seed");
    let vote_key = |i: u8| BlsSecretKey::key_gen(&[i + 1; 32], b"").expect("32-byte IKM");
    let validators = ValidatorSet::new(
        (0..4u8)
            .map(|i| Validator {
                identity: identity(i).verifying_key(),
                vote_key: vote_key(i).public_key(),
                power: 1,
            })
            .collect(),
    )
    .expect("valid set");
    let keys = ReplicaKeys {
        index: 1,
        identity: identity(1),
        vote_key: vote_key(1),
    };
    let config = ReplicaConfig::new(b"shieldx-fuzz", validators);
    let mut replica =
        Replica::new(config, keys, Box::new(RoundRobin), NullApp, 0).expect("valid replica");
    while replica.poll_output().is_some() {}
    if replica.handle_bytes(1, 0, data).is_err() {
        assert!(
            replica.poll_output().is_none(),
            "a rejected input produces no output"
        );
        assert_eq!(replica.log_len(), 0);
    }
}

/// An application that does nothing, for fuzzing the consensus layer alone.
#[derive(Debug)]
struct NullApp;

impl shieldx_core::consensus::Application for NullApp {
    fn execute(&mut self, _: u64, _: &shieldx_core::consensus::Request) -> Vec<u8> {
        Vec::new()
    }
    fn state_digest(&self) -> shieldx_core::crypto::Digest {
        shieldx_core::crypto::Digest::ZERO
    }
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }
    fn restore(
        &mut self,
        _: &[u8],
        expected: shieldx_core::crypto::Digest,
    ) -> Result<(), shieldx_core::consensus::RestoreError> {
        match expected == shieldx_core::crypto::Digest::ZERO {
            true => Ok(()),
            false => Err(shieldx_core::consensus::RestoreError::DigestMismatch {
                expected,
                actual: shieldx_core::crypto::Digest::ZERO,
            }),
        }
    }
}
