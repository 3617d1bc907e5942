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
