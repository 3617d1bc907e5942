//! ed25519 batch verification, which merges the terms of signatures by one
//! key, accepts a batch exactly when every signature in it verifies singly:
//! batches of a few keys with many signatures each (a batch of client
//! requests), untouched or with one byte of one signature, message or key
//! assignment changed.

use proptest::prelude::*;
use shieldx_core::crypto::ed25519::{Signature, SigningKey, VerifyingKey, verify_batch};

/// What to change in an otherwise valid batch.
#[derive(Debug, Clone)]
enum Change {
    None,
    /// XOR `mask` into byte `at % 64` of signature `index`.
    SignatureByte {
        index: usize,
        at: usize,
        mask: u8,
    },
    /// XOR `mask` into the first byte of message `index`.
    MessageByte {
        index: usize,
        mask: u8,
    },
    /// Credit signature `index` to the next key.
    OtherKey {
        index: usize,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::None),
        (any::<usize>(), any::<usize>(), 1..=255u8)
            .prop_map(|(index, at, mask)| Change::SignatureByte { index, at, mask }),
        (any::<usize>(), 1..=255u8).prop_map(|(index, mask)| Change::MessageByte { index, mask }),
        any::<usize>().prop_map(|index| Change::OtherKey { index }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batch_accepts_exactly_when_every_signature_verifies(
        seeds in prop::collection::vec(any::<[u8; 32]>(), 1..4),
        count in 1usize..24,
        change in change(),
    ) {
        let keys: Vec<SigningKey> = seeds
            .iter()
            .map(|seed| SigningKey::from_slice(seed).expect("32 bytes"))
            .collect();
        let mut messages: Vec<Vec<u8>> = (0..count).map(|i| format!("request {i}").into_bytes()).collect();
        let signers: Vec<usize> = (0..count).map(|i| i % keys.len()).collect();
        let mut signatures: Vec<Signature> = signers
            .iter()
            .zip(&messages)
            .map(|(signer, message)| keys[*signer].sign(message))
            .collect();
        let mut publics: Vec<VerifyingKey> =
            signers.iter().map(|signer| keys[*signer].verifying_key()).collect();
        match change {
            Change::None => {}
            Change::SignatureByte { index, at, mask } => {
                let index = index % count;
                let mut bytes = signatures[index].to_bytes();
                bytes[at % 64] ^= mask;
                signatures[index] = Signature::from_slice(&bytes).expect("64 bytes");
            }
            Change::MessageByte { index, mask } => messages[index % count][0] ^= mask,
            Change::OtherKey { index } => {
                let index = index % count;
                publics[index] = keys[(signers[index] + 1) % keys.len()].verifying_key();
            }
        }
        let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let singly = message_refs
            .iter()
            .zip(&signatures)
            .zip(&publics)
            .all(|((message, signature), public)| public.verify(message, signature).is_ok());
        prop_assert_eq!(verify_batch(&message_refs, &signatures, &publics).is_ok(), singly);
    }
}
