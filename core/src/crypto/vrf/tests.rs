//! ECVRF against the published RFC 9381 Appendix B.3 vectors (Examples 16-18),
//! checking every intermediate value, plus the decoding rejections of sections
//! 5.4.4 and 5.4.5.

use curve25519_dalek::constants::EIGHT_TORSION;

use super::*;

/// One example of RFC 9381 Appendix B.3, as written in `vectors/`.
struct Example {
    name: String,
    fields: Vec<(String, String)>,
}

impl Example {
    fn hex(&self, key: &str) -> Vec<u8> {
        let value = self
            .fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{}: field {key} missing", self.name));
        if key == "alpha" && value.starts_with("(the empty string)") {
            return Vec::new();
        }
        let hex_part = value.split_whitespace().next().expect("non-empty value");
        hex::decode(hex_part).unwrap_or_else(|e| panic!("{}: {key}: {e}", self.name))
    }

    fn counter(&self) -> u8 {
        let line = self
            .fields
            .iter()
            .find(|(k, _)| k == "try_and_increment succeeded on ctr")
            .map(|(_, v)| v.clone())
            .expect("counter line present");
        line.parse().expect("counter is a small integer")
    }
}

/// Parses `vectors/rfc9381-ecvrf-edwards25519-sha512-tai.txt`: blocks headed
/// `Example N`, with `key = value` lines.
fn examples() -> Vec<Example> {
    let text = include_str!("../../../../vectors/rfc9381-ecvrf-edwards25519-sha512-tai.txt");
    let mut out: Vec<Example> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Example ") {
            out.push(Example {
                name: format!("Example {rest}"),
                fields: Vec::new(),
            });
        } else if let (Some(example), Some((key, value))) = (out.last_mut(), line.split_once(" = "))
        {
            let key = key.split(" = ").next().unwrap_or(key).trim().to_owned();
            // "U = k*B = hex": keep the last value.
            let value = value
                .rsplit(" = ")
                .next()
                .unwrap_or(value)
                .trim()
                .to_owned();
            example.fields.push((key, value));
        }
    }
    assert_eq!(out.len(), 3, "RFC 9381 B.3 has Examples 16, 17 and 18");
    out
}

#[test]
fn rfc9381_b3_every_intermediate_value() {
    for example in examples() {
        let name = &example.name;
        let seed = example.hex("SK");
        let alpha = example.hex("alpha");
        let secret = VrfSecretKey::from_slice(&seed).expect("32-byte seed");

        assert_eq!(
            secret.public_key().to_bytes().to_vec(),
            example.hex("PK"),
            "{name}: PK"
        );

        let expanded = ExpandedSecret::new(&secret.seed);
        assert_eq!(expanded.clamped.to_vec(), example.hex("x"), "{name}: x");

        let (h, counter) = encode_to_curve(&secret.public.bytes, &alpha).expect("encodes");
        assert_eq!(
            counter,
            example.counter(),
            "{name}: try-and-increment counter"
        );
        let h_bytes = h.compress().to_bytes();
        assert_eq!(h_bytes.to_vec(), example.hex("H"), "{name}: H");

        let mut k_hasher = Sha512::new();
        k_hasher.update(expanded.nonce_prefix);
        k_hasher.update(h_bytes);
        assert_eq!(
            k_hasher.finalize().to_vec(),
            example.hex("k"),
            "{name}: k string"
        );
        let k = nonce(&expanded.nonce_prefix, &h_bytes);
        assert_eq!(
            EdwardsPoint::mul_base(&k).compress().to_bytes().to_vec(),
            example.hex("U"),
            "{name}: U = k*B"
        );
        assert_eq!(
            (h * k).compress().to_bytes().to_vec(),
            example.hex("V"),
            "{name}: V = k*H"
        );

        let (proof, beta) = secret.prove(&alpha).expect("proves");
        assert_eq!(proof.to_bytes().to_vec(), example.hex("pi"), "{name}: pi");
        assert_eq!(
            beta.to_bytes().to_vec(),
            example.hex("beta"),
            "{name}: beta"
        );
        assert_eq!(proof.to_hash(), beta, "{name}: proof_to_hash");

        let public = VrfPublicKey::from_slice(&example.hex("PK")).expect("valid key");
        let decoded = VrfProof::from_slice(&example.hex("pi")).expect("valid proof");
        assert_eq!(public.verify(&alpha, &decoded), Ok(beta), "{name}: verify");

        let mut wrong_alpha = alpha.clone();
        wrong_alpha.push(0);
        assert_eq!(
            public.verify(&wrong_alpha, &decoded),
            Err(CryptoError::VerificationFailed { what: "VRF proof" }),
            "{name}: verify with another alpha"
        );
    }
}

#[test]
fn every_single_bit_flip_of_a_proof_is_rejected() {
    let example = &examples()[1];
    let public = VrfPublicKey::from_slice(&example.hex("PK")).expect("valid key");
    let alpha = example.hex("alpha");
    let pi = example.hex("pi");
    for bit in 0..pi.len() * 8 {
        let mut flipped = pi.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let outcome = VrfProof::from_slice(&flipped).and_then(|p| public.verify(&alpha, &p));
        assert!(outcome.is_err(), "bit {bit} flipped still verifies");
    }
}

#[test]
fn section_5_4_4_rejects_s_at_or_above_the_group_order() {
    let example = &examples()[0];
    let mut pi = example.hex("pi");
    // q = 2^252 + 27742317777372353535851937790883648493, little-endian.
    let q: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    pi[48..].copy_from_slice(&q);
    assert_eq!(
        VrfProof::from_slice(&pi),
        Err(CryptoError::NonCanonicalScalar {
            what: "VRF proof s"
        })
    );
    // s + q is the same residue as s: the non-canonical form must not verify.
    let original = VrfProof::from_slice(&example.hex("pi")).expect("valid proof");
    let mut s_plus_q = [0u8; 32];
    let mut carry = 0u16;
    for (i, byte) in s_plus_q.iter_mut().enumerate() {
        let sum = u16::from(original.response.as_bytes()[i]) + u16::from(q[i]) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    if carry == 0 {
        pi[48..].copy_from_slice(&s_plus_q);
        assert!(VrfProof::from_slice(&pi).is_err());
    }
}

#[test]
fn section_5_4_5_rejects_small_order_public_keys() {
    for (i, torsion) in EIGHT_TORSION.iter().enumerate() {
        let bytes = torsion.compress().to_bytes();
        let outcome = VrfPublicKey::from_slice(&bytes);
        assert!(
            matches!(
                outcome,
                Err(CryptoError::SmallOrderPoint { .. }) | Err(CryptoError::InvalidPoint { .. })
            ),
            "torsion point {i} accepted: {outcome:?}"
        );
    }
}

#[test]
fn rfc8032_decoding_rejects_non_canonical_points() {
    // y = p (non-canonical 0), y = p + 1 (non-canonical 1) and y = 2^255 - 1.
    let mut y_is_p = [0xffu8; 32];
    y_is_p[0] = 0xed;
    y_is_p[31] = 0x7f;
    let mut y_is_p_plus_one = y_is_p;
    y_is_p_plus_one[0] = 0xee;
    let all_ones = [0xffu8; 32];
    // x = 0 with the sign bit set: y = 1, sign 1.
    let mut negative_zero_x = [0u8; 32];
    negative_zero_x[0] = 1;
    negative_zero_x[31] = 0x80;
    for bytes in [y_is_p, y_is_p_plus_one, all_ones, negative_zero_x] {
        assert!(
            string_to_point(&bytes).is_none(),
            "{} accepted",
            hex::encode(bytes)
        );
        assert!(VrfPublicKey::from_slice(&bytes).is_err());
    }
    // The canonical identity encoding decodes, and is then rejected as small order.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(string_to_point(&identity).is_some());
    assert_eq!(
        VrfPublicKey::from_slice(&identity),
        Err(CryptoError::SmallOrderPoint {
            what: "VRF public key"
        })
    );
}

#[test]
fn wrong_lengths_fail_cleanly() {
    assert!(matches!(
        VrfProof::from_slice(&[0; 79]),
        Err(CryptoError::InvalidLength { .. })
    ));
    assert!(matches!(
        VrfPublicKey::from_slice(&[0; 33]),
        Err(CryptoError::InvalidLength { .. })
    ));
    assert!(matches!(
        VrfSecretKey::from_slice(&[]),
        Err(CryptoError::InvalidLength { .. })
    ));
}

#[test]
fn a_proof_under_another_key_is_rejected() {
    let first = VrfSecretKey::from_slice(&[1; 32]).expect("seed");
    let second = VrfSecretKey::from_slice(&[2; 32]).expect("seed");
    let (proof, _) = first.prove(b"view 7").expect("proves");
    assert!(second.public_key().verify(b"view 7", &proof).is_err());
    assert!(first.public_key().verify(b"view 7", &proof).is_ok());
}

#[test]
fn debug_never_prints_the_secret() {
    let secret = VrfSecretKey::from_slice(&[9; 32]).expect("seed");
    let printed = format!("{secret:?}");
    assert!(!printed.contains(&hex::encode([9u8; 32])));
    assert!(printed.contains("VrfPublicKey("));
}
