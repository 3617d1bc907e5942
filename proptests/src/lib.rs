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
    let vrf_key = |i: u8| {
        shieldx_core::crypto::vrf::VrfSecretKey::from_slice(&[i + 1; 32]).expect("32-byte seed")
    };
    let validators = ValidatorSet::new(
        (0..4u8)
            .map(|i| Validator {
                identity: identity(i).verifying_key(),
                vote_key: vote_key(i).public_key(),
                vrf_key: vrf_key(i).public_key(),
                power: 1,
            })
            .collect(),
    )
    .expect("valid set");
    let keys = ReplicaKeys {
        index: 1,
        identity: identity(1),
        vote_key: vote_key(1),
        vrf_key: vrf_key(1),
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

/// The default pack compiled once, for the detection fuzz bodies.
fn default_engine() -> std::sync::Arc<shieldx_core::detect::CompiledRules> {
    use std::sync::{Arc, OnceLock};
    static ENGINE: OnceLock<Arc<shieldx_core::detect::CompiledRules>> = OnceLock::new();
    Arc::clone(ENGINE.get_or_init(|| {
        let set = shieldx_core::detect::default_rules();
        match shieldx_core::detect::CompiledRules::compile(&set) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("default pack does not compile: {e}"),
        }
    }))
}

/// Runs `rules` over events cut from `data` (fields separated by 0xff: payload,
/// source, kind, header value) and checks every alert's spans are in bounds.
fn inspect_all(rules: std::sync::Arc<shieldx_core::detect::CompiledRules>, data: &[u8]) {
    use shieldx_core::detect::{Detector, DetectorConfig, Event};
    let mut detector = Detector::new(
        rules,
        DetectorConfig {
            max_keys_per_rule: 4,
            hash_seed: 1,
        },
    );
    let mut alerts = Vec::new();
    for (i, chunk) in data.split(|&b| b == 0xfe).take(64).enumerate() {
        let mut parts = chunk.split(|&b| b == 0xff);
        let text = |p: Option<&[u8]>| String::from_utf8_lossy(p.unwrap_or_default()).into_owned();
        let payload = parts.next().unwrap_or_default().to_vec();
        let event = Event {
            id: i.to_string(),
            ts: i as u64 * 1000,
            source: text(parts.next()),
            kind: text(parts.next()),
            sensor: "fuzz".into(),
            headers: vec![("user-agent".into(), text(parts.next()))],
            payload,
        };
        alerts.clear();
        detector.inspect(&event, event.ts, &mut alerts);
        for alert in &alerts {
            for m in &alert.matches {
                assert!(m.start <= m.end, "span {m:?}");
            }
        }
    }
    assert!(detector.window_keys().iter().all(|&k| k <= 4));
}

/// Rule parser: any text either parses into a set that compiles, or yields
/// diagnostics that each name a field or a position.
pub fn detect_rules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match shieldx_core::detect::RuleSet::parse(&text) {
        Ok(set) => {
            let compiled = shieldx_core::detect::CompiledRules::compile(&set)
                .unwrap_or_else(|e| panic!("parsed but does not compile: {e}"));
            inspect_all(
                std::sync::Arc::new(compiled),
                b"GET /?q=%27+or+1%3D1 HTTP/1.1",
            );
        }
        Err(e) => {
            assert!(!e.0.is_empty());
            assert!(e.0.iter().all(|d| !d.message.is_empty()));
        }
    }
}

/// Engine: the data up to the first 0xfd is a rule file (the default pack if
/// it does not parse); the rest is events. Nothing may panic.
pub fn detect_engine(data: &[u8]) {
    let (rules, events) = match data.iter().position(|&b| b == 0xfd) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let compiled = std::str::from_utf8(rules)
        .ok()
        .and_then(|t| shieldx_core::detect::RuleSet::parse(t).ok())
        .and_then(|set| shieldx_core::detect::CompiledRules::compile(&set).ok())
        .map(std::sync::Arc::new)
        .unwrap_or_else(default_engine);
    inspect_all(compiled, events);
}
