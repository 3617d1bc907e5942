//! The test-only fast-signature build (`--features fast-signatures`).
//!
//! Its stand-ins authenticate nothing against an adversary that reads public
//! keys, but against the simulator's Byzantine roles they must behave like the
//! real schemes: a signature verifies only for its signer and message, a
//! corrupted byte fails, aggregates verify only for exactly their signers, and
//! threshold combination still yields the group signature. CI runs these
//! together with every scenario in this build (`--test scenarios`), whose
//! expectations include the forger's and impersonator's rejections.
#![cfg(feature = "fast-signatures")]

use shieldx_core::crypto::bls::{
    BlsPublicKey, BlsSecretKey, BlsSignature, aggregate_verify, fast_aggregate_verify, threshold,
};
use shieldx_core::crypto::ed25519::{self, Signature, SigningKey};

fn identity(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).expect("32-byte seed")
}

fn vote_key(seed: u8) -> BlsSecretKey {
    BlsSecretKey::key_gen(&[seed; 32], b"").expect("32-byte IKM")
}

/// Every single-bit flip of `bytes`, decoded with `decode` where it decodes.
fn bit_flips<T>(bytes: &[u8], decode: impl Fn(&[u8]) -> Option<T>) -> Vec<T> {
    (0..bytes.len() * 8)
        .filter_map(|bit| {
            let mut flipped = bytes.to_vec();
            flipped[bit / 8] ^= 1 << (bit % 8);
            decode(&flipped)
        })
        .collect()
}

#[test]
fn envelope_signatures_verify_only_for_their_signer_and_message() {
    let (alice, bob) = (identity(1), identity(2));
    let signature = alice.sign(b"prepare v0 s1");
    assert_eq!(
        alice.verifying_key().verify(b"prepare v0 s1", &signature),
        Ok(())
    );
    assert!(
        alice
            .verifying_key()
            .verify(b"prepare v0 s2", &signature)
            .is_err()
    );
    // The impersonator's move: its own signature under the victim's name.
    assert!(
        bob.verifying_key()
            .verify(b"prepare v0 s1", &signature)
            .is_err()
    );
    // The forger's move: corrupted bytes.
    let flips = bit_flips(&signature.to_bytes(), |b| Signature::from_slice(b).ok());
    assert_eq!(flips.len(), 512);
    for forged in flips {
        assert!(
            alice
                .verifying_key()
                .verify(b"prepare v0 s1", &forged)
                .is_err()
        );
    }
}

#[test]
fn batch_verification_fails_when_any_item_is_bad() {
    let keys: Vec<SigningKey> = (1..=4).map(identity).collect();
    let messages: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 10]).collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let mut signatures: Vec<Signature> = keys.iter().zip(&refs).map(|(k, m)| k.sign(m)).collect();
    let publics: Vec<_> = keys.iter().map(SigningKey::verifying_key).collect();
    assert_eq!(ed25519::verify_batch(&refs, &signatures, &publics), Ok(()));
    signatures.swap(1, 2);
    assert!(ed25519::verify_batch(&refs, &signatures, &publics).is_err());
}

#[test]
fn commit_votes_aggregate_and_verify_only_for_exactly_their_signers() {
    let secrets: Vec<BlsSecretKey> = (1..=4).map(vote_key).collect();
    let publics: Vec<BlsPublicKey> = secrets.iter().map(BlsSecretKey::public_key).collect();
    let message = b"commit v0 s7";
    let votes: Vec<BlsSignature> = secrets.iter().map(|s| s.sign(message)).collect();
    for (public, vote) in publics.iter().zip(&votes) {
        assert_eq!(public.verify(message, vote), Ok(()));
        assert!(public.verify(b"commit v0 s8", vote).is_err());
    }
    let three = BlsSignature::aggregate(&votes[..3]).expect("non-empty");
    assert_eq!(
        fast_aggregate_verify(&publics[..3], message, &three),
        Ok(())
    );
    // A signer claimed but absent, a signer present but unclaimed, a vote
    // counted twice: each fails, as the certificate checks need.
    assert!(fast_aggregate_verify(&publics, message, &three).is_err());
    assert!(fast_aggregate_verify(&publics[..2], message, &three).is_err());
    let doubled = BlsSignature::aggregate(&[votes[0], votes[0], votes[1]]).expect("non-empty");
    assert!(fast_aggregate_verify(&publics[..3], message, &doubled).is_err());
    for forged in bit_flips(&three.to_bytes(), |b| BlsSignature::from_slice(b).ok()) {
        assert!(fast_aggregate_verify(&publics[..3], message, &forged).is_err());
    }
    // Distinct messages, one aggregate.
    let other = secrets[3].sign(b"other");
    let mixed = BlsSignature::aggregate(&[votes[0], other]).expect("non-empty");
    assert_eq!(
        aggregate_verify(&[publics[0], publics[3]], &[message, b"other"], &mixed),
        Ok(())
    );
    assert!(aggregate_verify(&[publics[3], publics[0]], &[message, b"other"], &mixed).is_err());
}

#[test]
fn proofs_of_possession_are_domain_separated_and_encodings_round_trip() {
    let secret = vote_key(9);
    let public = secret.public_key();
    let proof = secret.prove_possession();
    assert_eq!(public.verify_possession(&proof), Ok(()));
    assert!(
        public
            .verify_possession(&secret.sign(&public.to_bytes()))
            .is_err()
    );
    assert_eq!(BlsPublicKey::from_slice(&public.to_bytes()), Ok(public));
    assert_eq!(BlsSignature::from_slice(&proof.to_bytes()), Ok(proof));
    assert!(BlsPublicKey::from_slice(&[0; 48]).is_err());
    assert!(BlsSignature::from_slice(&[0xff; 96]).is_err());
}

#[test]
fn threshold_shares_combine_to_the_group_signature() {
    let secret = vote_key(11);
    let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(7);
    let dealing = threshold::deal(&secret, 3, 5, &mut rng).expect("valid dealing");
    let message = b"checkpoint 128";
    let partials: Vec<threshold::PartialSignature> = dealing.secret_shares[1..4]
        .iter()
        .map(|share| share.sign(message))
        .collect();
    for (partial, public) in partials.iter().zip(&dealing.public_shares[1..4]) {
        assert_eq!(public.verify(message, partial), Ok(()));
    }
    let combined = threshold::combine(3, &partials).expect("three shares");
    assert_eq!(dealing.group_public.verify(message, &combined), Ok(()));
    let short = threshold::combine(2, &partials[..2]).expect("two shares");
    assert!(dealing.group_public.verify(message, &short).is_err());
}
