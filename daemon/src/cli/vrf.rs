//! `shieldx vrf`: ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381).

use std::io::Write;

use clap::Subcommand;
use shieldx_core::crypto::vrf::{VrfProof, VrfPublicKey, VrfSecretKey};

use super::{CliError, decode, hex_argument, os_rng};

#[derive(Debug, Subcommand)]
pub(super) enum VrfCommand {
    /// Generate a key pair; prints `secret: HEX` and `public: HEX`.
    Keygen,
    /// Prove over alpha; prints `pi: HEX` and `beta: HEX`.
    Prove {
        /// The 32-byte secret key (RFC 8032 seed), hex.
        #[arg(long)]
        secret: String,
        /// The VRF input alpha, hex (may be empty).
        #[arg(long)]
        alpha: String,
    },
    /// Verify a proof; prints `beta: HEX` and exits 0, or prints the reason and exits 1.
    Verify {
        /// The 32-byte public key, hex.
        #[arg(long)]
        public: String,
        /// The VRF input alpha, hex (may be empty).
        #[arg(long)]
        alpha: String,
        /// The 80-byte proof pi, hex.
        #[arg(long)]
        proof: String,
    },
}

pub(super) fn run(command: VrfCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        VrfCommand::Keygen => {
            let secret = VrfSecretKey::generate(&mut os_rng()?);
            writeln!(out, "secret: {}", hex::encode(secret.to_bytes().as_ref()))?;
            writeln!(
                out,
                "public: {}",
                hex::encode(secret.public_key().to_bytes())
            )?;
        }
        VrfCommand::Prove { secret, alpha } => {
            let secret_bytes = zeroize::Zeroizing::new(hex_argument("secret", &secret)?);
            let secret = decode("secret", &secret_bytes, VrfSecretKey::from_slice)?;
            let alpha = hex_argument("alpha", &alpha)?;
            let (proof, beta) = secret.prove(&alpha).map_err(CliError::Invalid)?;
            writeln!(out, "pi: {}", hex::encode(proof.to_bytes()))?;
            writeln!(out, "beta: {}", hex::encode(beta.to_bytes()))?;
        }
        VrfCommand::Verify {
            public,
            alpha,
            proof,
        } => {
            let public = decode(
                "public",
                &hex_argument("public", &public)?,
                VrfPublicKey::from_slice,
            )?;
            let alpha = hex_argument("alpha", &alpha)?;
            let proof = decode(
                "proof",
                &hex_argument("proof", &proof)?,
                VrfProof::from_slice,
            )?;
            let beta = public.verify(&alpha, &proof).map_err(CliError::Invalid)?;
            writeln!(out, "beta: {}", hex::encode(beta.to_bytes()))?;
        }
    }
    Ok(())
}
