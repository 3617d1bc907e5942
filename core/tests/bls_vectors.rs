//! BLS12-381 POP ciphersuite (`BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`,
//! draft-irtf-cfrg-bls-signature-05 sections 2.3-2.9 and 3.3) against vectors made by
//! an independent implementation, py_ecc's `G2ProofOfPossession`
//! (`vectors/bls12381_pop_py_ecc.json`, generator in `vectors/generators/`).

use serde_json::Value;
use shieldx_core::crypto::CryptoError;
use shieldx_core::crypto::bls::{
    BlsPublicKey, BlsSecretKey, BlsSignature, aggregate_verify, fast_aggregate_verify,
};

fn vectors() -> Vec<Value> {
    let text = include_str!("../../vectors/bls12381_pop_py_ecc.json");
    let document: Value = serde_json::from_str(text).expect("vector file is JSON");
    assert_eq!(
        document["ciphersuite"],
        "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
    );
    document["cases"].as_array().expect("cases array").clone()
}

fn bytes(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("hex string")).expect("valid hex")
}

fn list(value: &Value) -> Vec<Vec<u8>> {
    value.as_array().expect("array").iter().map(bytes).collect()
}

/// Parses the public keys of a verification case; `None` when one fails `KeyValidate`
/// (py_ecc then answers "invalid", and so must we).
fn publics(value: &Value) -> Option<Vec<BlsPublicKey>> {
    list(value)
        .iter()
        .map(|b| BlsPublicKey::from_slice(b).ok())
        .collect()
}

fn secret(value: &Value) -> BlsSecretKey {
    BlsSecretKey::from_slice(&bytes(value)).expect("vector secret key is valid")
}

#[test]
fn every_vector_matches_py_ecc() {
    let cases = vectors();
    let mut checked_by_op = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for (number, case) in cases.iter().enumerate() {
        let op = case["op"].as_str().expect("op");
        let input = &case["input"];
        let expected = &case["output"];
        let label = format!(
            "case {number} ({op}, {})",
            input["case"].as_str().unwrap_or("-")
        );
        let valid_expected = expected.as_bool().unwrap_or(true);
        let outcome: bool = match op {
            "keygen" => {
                let key = BlsSecretKey::key_gen(&bytes(&input["ikm"]), &bytes(&input["key_info"]))
                    .expect("IKM is 32 bytes");
                assert_eq!(
                    key.to_bytes().to_vec(),
                    bytes(&expected["secret"]),
                    "{label}"
                );
                assert_eq!(
                    key.public_key().to_bytes().to_vec(),
                    bytes(&expected["public"]),
                    "{label}"
                );
                true
            }
            "sign" => {
                let signature = secret(&input["secret"]).sign(&bytes(&input["message"]));
                assert_eq!(signature.to_bytes().to_vec(), bytes(expected), "{label}");
                true
            }
            "pop_prove" => {
                let proof = secret(&input["secret"]).prove_possession();
                assert_eq!(proof.to_bytes().to_vec(), bytes(expected), "{label}");
                true
            }
            "aggregate" => {
                let signatures: Vec<BlsSignature> = list(&input["signatures"])
                    .iter()
                    .map(|b| BlsSignature::from_slice(b).expect("valid signature"))
                    .collect();
                let aggregate = BlsSignature::aggregate(&signatures).expect("non-empty");
                assert_eq!(aggregate.to_bytes().to_vec(), bytes(expected), "{label}");
                true
            }
            "key_validate" => BlsPublicKey::from_slice(&bytes(&input["public"])).is_ok(),
            "verify" => {
                let public = BlsPublicKey::from_slice(&bytes(&input["public"]));
                let signature = BlsSignature::from_slice(&bytes(&input["signature"]));
                match (public, signature) {
                    (Ok(p), Ok(s)) => p.verify(&bytes(&input["message"]), &s).is_ok(),
                    _ => false,
                }
            }
            "pop_verify" => {
                let public = BlsPublicKey::from_slice(&bytes(&input["public"])).expect("valid key");
                let proof = BlsSignature::from_slice(&bytes(&input["proof"])).expect("valid point");
                public.verify_possession(&proof).is_ok()
            }
            "fast_aggregate_verify" => {
                let signature =
                    BlsSignature::from_slice(&bytes(&input["signature"])).expect("point");
                match publics(&input["publics"]) {
                    Some(p) => {
                        fast_aggregate_verify(&p, &bytes(&input["message"]), &signature).is_ok()
                    }
                    None => false,
                }
            }
            "aggregate_verify" => {
                let signature =
                    BlsSignature::from_slice(&bytes(&input["signature"])).expect("point");
                let messages = list(&input["messages"]);
                let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
                match publics(&input["publics"]) {
                    Some(p) => aggregate_verify(&p, &message_refs, &signature).is_ok(),
                    None => false,
                }
            }
            other => panic!("{label}: unknown op {other}"),
        };
        assert_eq!(outcome, valid_expected, "{label}");
        let entry = checked_by_op.entry(op.to_owned()).or_default();
        if valid_expected {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    // Both valid and invalid cases must be exercised for every verification kind.
    for op in [
        "verify",
        "fast_aggregate_verify",
        "aggregate_verify",
        "pop_verify",
        "key_validate",
    ] {
        let (valid, invalid) = checked_by_op.get(op).copied().unwrap_or_default();
        assert!(
            valid > 0 && invalid > 0,
            "{op}: {valid} valid and {invalid} invalid cases"
        );
    }
    for op in ["keygen", "sign", "aggregate", "pop_prove"] {
        assert!(
            checked_by_op.get(op).is_some_and(|(valid, _)| *valid > 0),
            "{op} has no case"
        );
    }
}

#[test]
fn a_point_outside_the_subgroup_is_named_as_such() {
    let case = vectors()
        .into_iter()
        .find(|c| c["op"] == "key_validate" && c["input"]["case"] == "outside the subgroup")
        .expect("vector present");
    assert_eq!(
        BlsPublicKey::from_slice(&bytes(&case["input"]["public"])),
        Err(CryptoError::NotInSubgroup {
            what: "BLS public key"
        })
    );
}
