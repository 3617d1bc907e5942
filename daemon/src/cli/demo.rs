//! `shieldx demo`: a local demonstration on embedded defaults.
//!
//! What exists so far is the validator cryptography, so that is what the demo
//! runs, for real: it creates a 4-validator set, checks every proof of possession,
//! has every validator prove its VRF over the next view, collects BLS commit votes
//! into a quorum certificate (aggregate signature plus signer bitmap) and verifies
//! it, then signs the same vote with a 3-of-4 threshold key. The PBFT cluster,
//! detection and ledger join this demo as they land (see ARCHITECTURE.md).

use std::io::Write;

use clap::Args;
use rand::SeedableRng as _;
use shieldx_core::crypto::Digest;
use shieldx_core::crypto::bls::{AggregatePublicKey, BlsSecretKey, BlsSignature, threshold};
use shieldx_core::crypto::ed25519::SigningKey;
use shieldx_core::crypto::vrf::VrfSecretKey;

use super::CliError;

/// Options of `shieldx demo`; every one has an embedded default.
#[derive(Debug, Args)]
pub(super) struct DemoArguments {
    /// Number of validators.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(4..=64))]
    validators: u32,
    /// Seed for the demo's deterministic key generation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

struct Validator {
    identity: SigningKey,
    vote_key: BlsSecretKey,
    vrf_key: VrfSecretKey,
}

pub(super) fn run(arguments: &DemoArguments, out: &mut dyn Write) -> Result<(), CliError> {
    const CHAIN_ID: &[u8] = b"shieldx-demo";
    // Demo keys are deterministic so runs are reproducible; production keys come
    // from OS randomness (`shieldx vrf keygen`, `shieldx bls keygen`).
    let mut rng = rand::rngs::StdRng::seed_from_u64(arguments.seed);
    let count = arguments.validators as usize;
    let validators: Vec<Validator> = (0..count)
        .map(|_| Validator {
            identity: SigningKey::generate(&mut rng),
            vote_key: BlsSecretKey::generate(&mut rng),
            vrf_key: VrfSecretKey::generate(&mut rng),
        })
        .collect();
    writeln!(
        out,
        "shieldx demo: {count} validators, chain {}",
        String::from_utf8_lossy(CHAIN_ID)
    )?;

    for (index, validator) in validators.iter().enumerate() {
        let public = validator.vote_key.public_key();
        public
            .verify_possession(&validator.vote_key.prove_possession())
            .map_err(CliError::Invalid)?;
        let registration = validator.identity.sign(&public.to_bytes());
        validator
            .identity
            .verifying_key()
            .verify(&public.to_bytes(), &registration)
            .map_err(CliError::Invalid)?;
        writeln!(
            out,
            "  validator {index}: proof of possession and identity binding verified"
        )?;
    }

    let view: u64 = 1;
    let mut alpha = CHAIN_ID.to_vec();
    alpha.extend_from_slice(&view.to_be_bytes());
    let mut lowest: Option<(usize, [u8; 64])> = None;
    for (index, validator) in validators.iter().enumerate() {
        let (proof, beta) = validator.vrf_key.prove(&alpha).map_err(CliError::Invalid)?;
        let verified = validator
            .vrf_key
            .public_key()
            .verify(&alpha, &proof)
            .map_err(CliError::Invalid)?;
        debug_assert_eq!(verified, beta);
        if lowest.is_none_or(|(_, best)| beta.to_bytes() < best) {
            lowest = Some((index, beta.to_bytes()));
        }
    }
    if let Some((index, beta)) = lowest {
        writeln!(
            out,
            "VRF over view {view}: every proof verified; lowest output from validator {index} ({})",
            hex::encode(&beta[..8])
        )?;
    }

    let batch_digest = Digest::of(b"demo batch 1");
    let mut vote = CHAIN_ID.to_vec();
    vote.extend_from_slice(&view.to_be_bytes());
    vote.extend_from_slice(&1u64.to_be_bytes());
    vote.extend_from_slice(batch_digest.as_bytes());
    let quorum = count - (count - 1) / 3;
    let signers: Vec<usize> = (0..quorum).collect();
    let signatures: Vec<BlsSignature> = signers
        .iter()
        .map(|&i| validators[i].vote_key.sign(&vote))
        .collect();
    let aggregate = BlsSignature::aggregate(&signatures).map_err(CliError::Invalid)?;
    let bitmap: String = (0..count)
        .map(|i| if signers.contains(&i) { '1' } else { '0' })
        .collect();
    let publics: Vec<_> = signers
        .iter()
        .map(|&i| validators[i].vote_key.public_key())
        .collect();
    AggregatePublicKey::aggregate(&publics)
        .and_then(|key| key.verify(&vote, &aggregate))
        .map_err(CliError::Invalid)?;
    writeln!(
        out,
        "commit certificate: {quorum} of {count} votes, signers {bitmap}, 96-byte aggregate verified"
    )?;

    let group_secret = BlsSecretKey::generate(&mut rng);
    let threshold_needed = u32::try_from(quorum).unwrap_or(u32::MAX);
    let dealing = threshold::deal(
        &group_secret,
        threshold_needed,
        arguments.validators,
        &mut rng,
    )
    .map_err(CliError::Invalid)?;
    let partials: Vec<_> = dealing
        .secret_shares
        .iter()
        .rev()
        .map(|s| s.sign(&vote))
        .collect();
    let combined = threshold::combine(threshold_needed, &partials).map_err(CliError::Invalid)?;
    dealing
        .group_public
        .verify(&vote, &combined)
        .map_err(CliError::Invalid)?;
    writeln!(
        out,
        "threshold: {threshold_needed}-of-{count} partial signatures combined and verified under the group key"
    )?;
    writeln!(
        out,
        "result: ok (consensus, detection and the ledger are not wired into the demo yet)"
    )?;
    Ok(())
}
