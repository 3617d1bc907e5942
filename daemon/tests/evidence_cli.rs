//! `shieldx evidence verify`, run as a real process against records built
//! with the core library: valid evidence exits 0, evidence that proves
//! nothing exits 1 with the reason, unreadable input exits 2.

use std::path::PathBuf;
use std::process::{Command, Output};

use shieldx_core::codec::Encode as _;
use shieldx_core::consensus::{Evidence, EvidenceRecord, NewView, PrePrepare, Signed, Vote};
use shieldx_core::crypto::Digest;
use shieldx_core::crypto::bls::BlsSecretKey;
use shieldx_core::crypto::ed25519::SigningKey;
use shieldx_core::crypto::vrf::VrfSecretKey;
use shieldx_daemon::genesis::{ValidatorEntry, ValidatorsFile};

const CHAIN: &str = "shieldx-evidence-test";

fn shieldx(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shieldx"))
        .args(arguments)
        .output()
        .expect("binary runs")
}

/// The hex of `evidence`'s record on the test chain, as a node stores it.
fn record_hex(evidence: &Evidence) -> String {
    hex::encode(EvidenceRecord::new(CHAIN.as_bytes(), evidence.clone()).to_encoded())
}

fn identity(i: u8) -> SigningKey {
    SigningKey::from_slice(&[i + 1; 32]).expect("seed")
}

fn validators_file(chain: &str) -> ValidatorsFile {
    ValidatorsFile {
        admin: None,
        stake_per_power: shieldx_daemon::genesis::DEFAULT_STAKE_PER_POWER,
        chain_id: chain.into(),
        validators: (0..4u8)
            .map(|i| {
                let vote = BlsSecretKey::key_gen(&[i + 1; 32], b"").expect("ikm");
                ValidatorEntry {
                    identity: hex::encode(identity(i).verifying_key().to_bytes()),
                    vote_key: hex::encode(vote.public_key().to_bytes()),
                    vote_key_pop: hex::encode(vote.prove_possession().to_bytes()),
                    vrf_key: hex::encode(
                        VrfSecretKey::from_slice(&[i + 101; 32])
                            .expect("seed")
                            .public_key()
                            .to_bytes(),
                    ),
                    power: 1,
                }
            })
            .collect(),
    }
}

fn prepare(signer: u8, digest: &[u8]) -> Signed<Vote> {
    Signed::sign(
        CHAIN.as_bytes(),
        u16::from(signer),
        &identity(signer),
        Vote {
            view: 3,
            sequence: 17,
            digest: Digest::of(digest),
        },
    )
}

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let dir =
            std::env::temp_dir().join(format!("shieldx-evidence-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Files { dir }
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write");
        path.to_str().expect("UTF-8 path").to_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn verify(validators: &str, evidence: &str) -> (Option<i32>, String, String) {
    let output = shieldx(&[
        "evidence",
        "verify",
        "--validators",
        validators,
        "--evidence",
        evidence,
    ]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_double_vote_verifies_offline_with_the_validator_set_alone() {
    let files = Files::new("valid");
    let validators = files.write(
        "validators.json",
        &serde_json::to_string_pretty(&validators_file(CHAIN)).expect("json"),
    );
    let evidence = Evidence::ConflictingPrepare(prepare(2, b"a"), prepare(2, b"b"));
    let record = files.write("evidence.hex", &format!("{}\n", record_hex(&evidence)));
    let (code, out, err) = verify(&validators, &record);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("valid: validator 2"), "{out}");
    assert!(out.contains("view 3, sequence 17, phase prepare"), "{out}");
    assert!(
        out.contains(&format!("evidence id: {}", evidence.id())),
        "{out}"
    );
}

#[test]
fn a_wrong_new_view_verifies_offline_and_its_honest_form_does_not() {
    let files = Files::new("new-view");
    let validators = files.write(
        "validators.json",
        &serde_json::to_string(&validators_file(CHAIN)).expect("json"),
    );
    let chain = CHAIN.as_bytes();
    // An empty V determines an empty O; this O holds a pre-prepare.
    let pre_prepare = Signed::sign(
        chain,
        1,
        &identity(1),
        PrePrepare {
            view: 5,
            sequence: 1,
            digest: Digest::of(b"smuggled"),
        },
    );
    let wrong = NewView {
        view: 5,
        view_changes: Vec::new(),
        pre_prepares: vec![pre_prepare],
    };
    let evidence = Evidence::WrongNewView(Box::new(Signed::sign(chain, 1, &identity(1), wrong)));
    let record = files.write("wrong.hex", &record_hex(&evidence));
    let (code, out, err) = verify(&validators, &record);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("valid: validator 1") && out.contains("NEW-VIEW for view 5"),
        "{out}"
    );
    let consistent = NewView {
        view: 5,
        view_changes: Vec::new(),
        pre_prepares: Vec::new(),
    };
    let honest = Evidence::WrongNewView(Box::new(Signed::sign(chain, 1, &identity(1), consistent)));
    let record = files.write("honest.hex", &record_hex(&honest));
    let (code, _, err) = verify(&validators, &record);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("O is the one V determines"), "{err}");
}

#[test]
fn evidence_that_proves_nothing_exits_1_with_the_reason() {
    let files = Files::new("invalid");
    let validators = files.write(
        "validators.json",
        &serde_json::to_string(&validators_file(CHAIN)).expect("json"),
    );
    // The same vote twice: no conflict.
    let same = Evidence::ConflictingPrepare(prepare(1, b"a"), prepare(1, b"a"));
    let record = files.write("same.hex", &record_hex(&same));
    let (code, _, err) = verify(&validators, &record);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("do not conflict"), "{err}");

    // Two validators' votes: no single offender.
    let two = Evidence::ConflictingPrepare(prepare(1, b"a"), prepare(2, b"b"));
    let record = files.write("two.hex", &record_hex(&two));
    let (code, _, err) = verify(&validators, &record);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("different validators"), "{err}");

    // A forged signature.
    let mut forged = prepare(2, b"b");
    let mut signature = forged.signature.to_bytes();
    signature[5] ^= 1;
    forged.signature =
        shieldx_core::crypto::ed25519::Signature::from_slice(&signature).expect("64 bytes");
    let bad = Evidence::ConflictingPrepare(prepare(2, b"a"), forged);
    let record = files.write("forged.hex", &record_hex(&bad));
    let (code, _, err) = verify(&validators, &record);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("invalid evidence"), "{err}");

    // Valid on another chain only.
    let other_chain = files.write(
        "other.json",
        &serde_json::to_string(&validators_file("another-chain")).expect("json"),
    );
    let real = Evidence::ConflictingPrepare(prepare(2, b"a"), prepare(2, b"b"));
    let record = files.write("real.hex", &record_hex(&real));
    let (code, _, err) = verify(&other_chain, &record);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is for chain \"shieldx-evidence-test\", not \"another-chain\""),
        "{err}"
    );

    // A header that claims another slot than its messages prove.
    let mut relabelled = EvidenceRecord::new(CHAIN.as_bytes(), real);
    relabelled.view += 1;
    let record = files.write("relabelled.hex", &hex::encode(relabelled.to_encoded()));
    let (code, _, err) = verify(&validators, &record);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("view does not match"), "{err}");
}

#[test]
fn unreadable_input_exits_2() {
    let files = Files::new("malformed");
    let good = validators_file(CHAIN);
    let validators = files.write(
        "validators.json",
        &serde_json::to_string(&good).expect("json"),
    );
    let real = Evidence::ConflictingPrepare(prepare(2, b"a"), prepare(2, b"b"));
    let record = files.write("real.hex", &record_hex(&real));

    let garbage = files.write("garbage.hex", "not hex at all");
    assert_eq!(verify(&validators, &garbage).0, Some(2));
    let truncated = files.write("truncated.hex", &record_hex(&real)[..80]);
    let (code, _, err) = verify(&validators, &truncated);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not an evidence record"), "{err}");

    // A validator whose proof of possession is for another key.
    let mut rogue = good.clone();
    rogue.validators[1].vote_key_pop = good.validators[0].vote_key_pop.clone();
    let rogue = files.write("rogue.json", &serde_json::to_string(&rogue).expect("json"));
    let (code, _, err) = verify(&rogue, &record);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("validator 1: proof of possession"), "{err}");

    let missing = files.dir.join("missing.json");
    let (code, _, err) = verify(missing.to_str().expect("UTF-8"), &record);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read"), "{err}");
}
