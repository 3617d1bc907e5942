//! Properties of the consensus codec and quorum arithmetic, and the frozen
//! encodings in `vectors/consensus-codec-v2.json`.

use std::sync::OnceLock;

use proptest::prelude::*;
use shieldx_core::codec::{Encode, decode_exact};
use shieldx_core::consensus::{
    Batch, BatchFetch, CheckpointCertificate, CheckpointVote, CommitVote, ConflictProof, Message,
    PrePrepare, Request, Signed, SnapshotPiece, Status, Validator, ValidatorSet, Vote,
};
use shieldx_core::crypto::Digest;
use shieldx_core::crypto::bls::BlsSecretKey;
use shieldx_core::crypto::ed25519::{Signature, SigningKey};

const CHAIN: &[u8] = b"shieldx-proptest";

fn client(seed: u8) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..40u8)
            .map(|i| SigningKey::from_slice(&[i + 1; 32]).expect("seed"))
            .collect()
    })[usize::from(seed % 40)]
}

/// BLS signing costs milliseconds; a few commit votes are made once and reused.
fn commit_votes() -> &'static Vec<CommitVote> {
    static VOTES: OnceLock<Vec<CommitVote>> = OnceLock::new();
    VOTES.get_or_init(|| {
        let key = BlsSecretKey::key_gen(&[7; 32], b"").expect("ikm");
        (0..4u64)
            .map(|i| {
                CommitVote::sign(
                    CHAIN,
                    i as u16,
                    &key,
                    i,
                    i + 1,
                    Digest::of(&i.to_le_bytes()),
                )
            })
            .collect()
    })
}

fn request() -> impl Strategy<Value = Request> {
    (
        any::<u8>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<[u8; 32]>(),
    )
        .prop_map(|(seed, request_id, payload, signature_half)| {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&signature_half);
            Request {
                client: client(seed).verifying_key(),
                request_id,
                payload,
                signature: Signature::from_slice(&signature).expect("64 bytes"),
            }
        })
}

fn signature() -> impl Strategy<Value = Signature> {
    any::<[u8; 32]>().prop_map(|half| {
        let mut bytes = [half[0]; 64];
        bytes[..32].copy_from_slice(&half);
        Signature::from_slice(&bytes).expect("64 bytes")
    })
}

fn vote() -> impl Strategy<Value = Signed<Vote>> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u16>(),
        signature(),
    )
        .prop_map(|(view, sequence, digest, signer, signature)| Signed {
            body: Vote {
                view,
                sequence,
                digest: Digest::from_bytes(digest),
            },
            signer,
            signature,
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (vote(), prop::collection::vec(request(), 0..4)).prop_map(|(v, requests)| {
            let header = Signed {
                body: PrePrepare {
                    view: v.body.view,
                    sequence: v.body.sequence,
                    digest: v.body.digest,
                },
                signer: v.signer,
                signature: v.signature,
            };
            Message::PrePrepare(
                header,
                Batch {
                    requests,
                    leader_proof: None,
                },
            )
        }),
        vote().prop_map(Message::Prepare),
        (0..4usize).prop_map(|i| Message::Commit(commit_votes()[i])),
        (vote(), any::<bool>()).prop_map(|(v, changing_view)| Message::Status(Signed {
            body: Status {
                view: v.body.view,
                changing_view,
                last_executed: v.body.sequence,
                stable_checkpoint: v.body.view
            },
            signer: v.signer,
            signature: v.signature,
        })),
        vote().prop_map(|v| Message::Checkpoint(Signed {
            body: CheckpointVote {
                sequence: v.body.sequence,
                state_digest: v.body.digest
            },
            signer: v.signer,
            signature: v.signature
        })),
        any::<[u8; 32]>().prop_map(|d| Message::Batch(BatchFetch::Request(Digest::from_bytes(d)))),
        any::<u64>().prop_map(Message::StateRequest),
        (any::<u64>(), any::<u64>())
            .prop_map(|(sequence, offset)| Message::SnapshotRequest { sequence, offset }),
        (
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(total, offset, bytes)| Message::SnapshotPiece(Box::new(
                SnapshotPiece {
                    checkpoint: CheckpointCertificate::genesis(Digest::of(&bytes)),
                    total,
                    offset,
                    bytes,
                    batches: Vec::new(),
                }
            ))),
        vote().prop_map(|v| Message::Conflict(ConflictProof::Prepare(v))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips(message in message()) {
        let bytes = message.to_encoded();
        prop_assert_eq!(decode_exact::<Message>(&bytes), Ok(message));
    }

    #[test]
    fn any_bytes_decode_cleanly_or_canonically(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(message) = decode_exact::<Message>(&bytes) {
            prop_assert_eq!(message.to_encoded(), bytes, "one encoding per value");
        }
    }

    #[test]
    fn a_mutated_encoding_never_decodes_to_the_same_message(message in message(), position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = message.to_encoded();
        let index = position.index(bytes.len());
        bytes[index] ^= flip;
        if let Ok(decoded) = decode_exact::<Message>(&bytes) {
            prop_assert_ne!(decoded, message);
        }
    }

    #[test]
    fn quorum_arithmetic(powers in prop::collection::vec(1u64..1_000_000, 1..40)) {
        let validators = ValidatorSet::new(
            powers.iter().enumerate().map(|(i, power)| Validator {
                identity: client(i as u8).verifying_key(),
                vote_key: quorum_keys()[i].public_key(),
                vrf_key: shieldx_core::crypto::vrf::VrfSecretKey::from_slice(&[i as u8 + 1; 32])
                    .expect("seed")
                    .public_key(),
                power: *power,
            }).collect(),
        );
        let validators = validators.expect("distinct keys and positive powers form a valid set");
        let total = u128::from(validators.total_power());
        let quorum = u128::from(validators.quorum_power());
        let weak = u128::from(validators.weak_quorum_power());
        // A quorum is the least power strictly above 2/3.
        prop_assert!(3 * quorum > 2 * total);
        prop_assert!(3 * (quorum - 1) <= 2 * total);
        // A weak quorum is the least power strictly above 1/3.
        prop_assert!(3 * weak > total);
        prop_assert!(3 * (weak - 1) <= total);
        // Any two quorums overlap in more than 1/3 of the power: an honest validator.
        prop_assert!(2 * quorum - total >= weak);
    }
}

fn quorum_keys() -> &'static Vec<BlsSecretKey> {
    static KEYS: OnceLock<Vec<BlsSecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..40u8)
            .map(|i| BlsSecretKey::key_gen(&[i; 32], b"").expect("ikm"))
            .collect()
    })
}

/// Frozen encodings: changing the wire format of any of these values must be a
/// deliberate act. Set SHIELDX_BLESS=1 to rewrite the fixture after review.
#[test]
fn frozen_encodings_match_the_fixture() {
    let identity = SigningKey::from_slice(&[42; 32]).expect("seed");
    let vote_key = BlsSecretKey::key_gen(&[43; 32], b"").expect("ikm");
    let digest = Digest::of(b"frozen batch");
    let request = Request::sign(CHAIN, &identity, 9, b"{\"kind\":\"http\"}".to_vec());
    let batch = Batch {
        requests: vec![request.clone()],
        leader_proof: None,
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("request", request.to_encoded()),
        ("batch", batch.to_encoded()),
        (
            "pre-prepare",
            Message::PrePrepare(
                Signed::sign(
                    CHAIN,
                    0,
                    &identity,
                    PrePrepare {
                        view: 3,
                        sequence: 17,
                        digest: batch.digest(),
                    },
                ),
                batch.clone(),
            )
            .to_encoded(),
        ),
        (
            "prepare",
            Message::Prepare(Signed::sign(
                CHAIN,
                2,
                &identity,
                Vote {
                    view: 3,
                    sequence: 17,
                    digest,
                },
            ))
            .to_encoded(),
        ),
        (
            "commit",
            Message::Commit(CommitVote::sign(CHAIN, 2, &vote_key, 3, 17, digest)).to_encoded(),
        ),
        (
            "checkpoint",
            Message::Checkpoint(Signed::sign(
                CHAIN,
                1,
                &identity,
                CheckpointVote {
                    sequence: 100,
                    state_digest: digest,
                },
            ))
            .to_encoded(),
        ),
        (
            "status",
            Message::Status(Signed::sign(
                CHAIN,
                1,
                &identity,
                Status {
                    view: 3,
                    changing_view: true,
                    last_executed: 99,
                    stable_checkpoint: 0,
                },
            ))
            .to_encoded(),
        ),
    ];
    let rendered = format!(
        "{{\n \"source\": \"shieldx canonical codec v2 (message version 2: commit votes uncompressed), generated by proptests/tests/consensus.rs with fixed keys\",\n \"cases\": {{\n{}\n }}\n}}\n",
        cases
            .iter()
            .map(|(name, bytes)| format!("  \"{name}\": \"{}\"", hex(bytes)))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/consensus-codec-v2.json");
    if std::env::var_os("SHIELDX_BLESS").is_some() {
        std::fs::write(&path, &rendered).expect("fixture written");
    }
    let fixture =
        std::fs::read_to_string(&path).expect("fixture exists; bless it with SHIELDX_BLESS=1");
    assert_eq!(fixture, rendered, "the canonical encoding changed");
    for (name, bytes) in &cases {
        if *name != "request" && *name != "batch" {
            let message: Message = decode_exact(bytes).expect("fixture decodes");
            assert_eq!(&message.to_encoded(), bytes, "{name}");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
