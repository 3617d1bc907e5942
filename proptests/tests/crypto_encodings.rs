//! Every encoded crypto type: `decode(encode(x)) == x`, and any other byte string
//! either fails with an error or is that same canonical encoding (one encoding per
//! value). Decoding never panics.

use proptest::prelude::*;
use shieldx_core::crypto::bls::{BlsPublicKey, BlsSecretKey, BlsSignature};
use shieldx_core::crypto::ed25519::{Signature, SigningKey, VerifyingKey};
use shieldx_core::crypto::vrf::{VrfProof, VrfPublicKey, VrfSecretKey};
use shieldx_core::crypto::{CryptoError, Digest};

/// Decoding `bytes` either fails cleanly or yields a value that encodes back to
/// exactly `bytes`; a wrong length is always `InvalidLength`.
fn canonical_or_error<T>(
    bytes: &[u8],
    length: usize,
    decode: impl Fn(&[u8]) -> Result<T, CryptoError>,
    encode: impl Fn(&T) -> Vec<u8>,
) -> Result<(), TestCaseError> {
    match decode(bytes) {
        Ok(value) => prop_assert_eq!(encode(&value), bytes.to_vec()),
        Err(CryptoError::InvalidLength {
            expected, actual, ..
        }) => {
            prop_assert_eq!(expected, length);
            prop_assert_eq!(actual, bytes.len());
            prop_assert_ne!(bytes.len(), length);
        }
        Err(_) => prop_assert_eq!(
            bytes.len(),
            length,
            "only right-length input reaches validation"
        ),
    }
    Ok(())
}

fn lengths_around(length: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), length),
        prop::collection::vec(any::<u8>(), 0..length * 2 + 2),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn digest(bytes in lengths_around(32), content in any::<Vec<u8>>()) {
        let digest = Digest::of(&content);
        prop_assert_eq!(Digest::from_slice(digest.as_bytes()), Ok(digest));
        canonical_or_error(&bytes, 32, Digest::from_slice, |d| d.to_bytes().to_vec())?;
    }

    #[test]
    fn ed25519_types(seed in any::<[u8; 32]>(), message in any::<Vec<u8>>(), bytes in lengths_around(64)) {
        let signing = SigningKey::from_slice(&seed).expect("any 32 bytes are a seed");
        prop_assert_eq!(signing.to_bytes().to_vec(), seed.to_vec());
        let public = signing.verifying_key();
        prop_assert_eq!(VerifyingKey::from_slice(&public.to_bytes()), Ok(public));
        let signature = signing.sign(&message);
        prop_assert_eq!(Signature::from_slice(&signature.to_bytes()), Ok(signature));
        prop_assert_eq!(public.verify(&message, &signature), Ok(()));
        canonical_or_error(&bytes, 64, Signature::from_slice, |s| s.to_bytes().to_vec())?;
        canonical_or_error(&bytes[..bytes.len().min(32)], 32, VerifyingKey::from_slice, |k| k.to_bytes().to_vec())?;
    }

    #[test]
    fn vrf_types(seed in any::<[u8; 32]>(), alpha in any::<Vec<u8>>(), bytes in lengths_around(80)) {
        let secret = VrfSecretKey::from_slice(&seed).expect("any 32 bytes are a seed");
        prop_assert_eq!(secret.to_bytes().to_vec(), seed.to_vec());
        let public = secret.public_key();
        prop_assert_eq!(VrfPublicKey::from_slice(&public.to_bytes()), Ok(public));
        let (proof, beta) = secret.prove(&alpha).expect("encode_to_curve succeeds");
        prop_assert_eq!(VrfProof::from_slice(&proof.to_bytes()), Ok(proof));
        prop_assert_eq!(public.verify(&alpha, &proof), Ok(beta));
        canonical_or_error(&bytes, 80, VrfProof::from_slice, |p| p.to_bytes().to_vec())?;
        canonical_or_error(&bytes[..bytes.len().min(32)], 32, VrfPublicKey::from_slice, |k| k.to_bytes().to_vec())?;
    }
}

proptest! {
    // Pairing-based checks cost milliseconds each; fewer cases, same properties.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn bls_types(ikm in any::<[u8; 32]>(), message in any::<Vec<u8>>(), bytes in lengths_around(96)) {
        let secret = BlsSecretKey::key_gen(&ikm, b"").expect("32-byte IKM");
        let decoded = BlsSecretKey::from_slice(secret.to_bytes().as_ref()).expect("round trip");
        prop_assert_eq!(decoded.to_bytes(), secret.to_bytes());
        let public = secret.public_key();
        prop_assert_eq!(BlsPublicKey::from_slice(&public.to_bytes()), Ok(public));
        let signature = secret.sign(&message);
        prop_assert_eq!(BlsSignature::from_slice(&signature.to_bytes()), Ok(signature));
        prop_assert_eq!(public.verify(&message, &signature), Ok(()));
        canonical_or_error(&bytes, 96, BlsSignature::from_slice, |s| s.to_bytes().to_vec())?;
        canonical_or_error(&bytes[..bytes.len().min(48)], 48, BlsPublicKey::from_slice, |k| k.to_bytes().to_vec())?;
        canonical_or_error(&bytes[..bytes.len().min(32)], 32, BlsSecretKey::from_slice, |k| k.to_bytes().to_vec())?;
    }
}
