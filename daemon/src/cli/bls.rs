//! `shieldx bls`: BLS12-381 min-pk signatures, ciphersuite
//! `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`.

use std::io::Write;

use clap::Subcommand;
use shieldx_core::crypto::bls::{
    BlsPublicKey, BlsSecretKey, BlsSignature, aggregate_verify, fast_aggregate_verify,
};

use super::{CliError, decode, hex_argument, hex_list, os_rng};

/// Verify-type commands print `valid` and exit 0, print the reason and exit 1 when
/// the signature is invalid, and exit 2 on malformed input (bad hex, wrong length).
#[derive(Debug, Subcommand)]
pub(super) enum BlsCommand {
    /// Generate a key pair; prints `secret: HEX`, `public: HEX` and `pop: HEX`
    /// (the proof of possession).
    Keygen,
    /// Sign a message; prints `signature: HEX`.
    Sign {
        /// The 32-byte big-endian secret key, hex.
        #[arg(long)]
        secret: String,
        /// The message, hex (may be empty).
        #[arg(long)]
        message: String,
    },
    /// Verify one signature.
    Verify {
        /// The 48-byte compressed G1 public key, hex.
        #[arg(long)]
        public: String,
        /// The message, hex.
        #[arg(long)]
        message: String,
        /// The 96-byte compressed G2 signature, hex.
        #[arg(long)]
        signature: String,
    },
    /// Aggregate signatures; prints `signature: HEX`.
    Aggregate {
        /// Comma-separated signatures, hex.
        #[arg(long)]
        signatures: String,
    },
    /// Verify an aggregate signature by several keys over one message.
    FastAggregateVerify {
        /// Comma-separated public keys, hex (each must have a verified proof of possession).
        #[arg(long)]
        publics: String,
        /// The message, hex.
        #[arg(long)]
        message: String,
        /// The aggregate signature, hex.
        #[arg(long)]
        signature: String,
    },
    /// Verify an aggregate signature over one message per key.
    AggregateVerify {
        /// Comma-separated public keys, hex.
        #[arg(long)]
        publics: String,
        /// Comma-separated messages, hex, one per public key.
        #[arg(long)]
        messages: String,
        /// The aggregate signature, hex.
        #[arg(long)]
        signature: String,
    },
}

pub(super) fn run(command: BlsCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        BlsCommand::Keygen => {
            let secret = BlsSecretKey::generate(&mut os_rng()?);
            writeln!(out, "secret: {}", hex::encode(secret.to_bytes().as_ref()))?;
            writeln!(
                out,
                "public: {}",
                hex::encode(secret.public_key().to_bytes())
            )?;
            writeln!(
                out,
                "pop: {}",
                hex::encode(secret.prove_possession().to_bytes())
            )?;
        }
        BlsCommand::Sign { secret, message } => {
            let secret_bytes = zeroize::Zeroizing::new(hex_argument("secret", &secret)?);
            let secret = decode("secret", &secret_bytes, BlsSecretKey::from_slice)?;
            let signature = secret.sign(&hex_argument("message", &message)?);
            writeln!(out, "signature: {}", hex::encode(signature.to_bytes()))?;
        }
        BlsCommand::Verify {
            public,
            message,
            signature,
        } => {
            let public = decode(
                "public",
                &hex_argument("public", &public)?,
                BlsPublicKey::from_slice,
            )?;
            let message = hex_argument("message", &message)?;
            let signature = signature_argument(&signature)?;
            public
                .verify(&message, &signature)
                .map_err(CliError::Invalid)?;
            writeln!(out, "valid")?;
        }
        BlsCommand::Aggregate { signatures } => {
            let signatures = hex_list("signatures", &signatures)?
                .iter()
                .map(|bytes| decode("signatures", bytes, BlsSignature::from_slice))
                .collect::<Result<Vec<_>, _>>()?;
            let aggregate =
                BlsSignature::aggregate(&signatures).map_err(|source| CliError::Malformed {
                    argument: "signatures",
                    source,
                })?;
            writeln!(out, "signature: {}", hex::encode(aggregate.to_bytes()))?;
        }
        BlsCommand::FastAggregateVerify {
            publics,
            message,
            signature,
        } => {
            let publics = public_list(&publics)?;
            let message = hex_argument("message", &message)?;
            let signature = signature_argument(&signature)?;
            fast_aggregate_verify(&publics, &message, &signature).map_err(CliError::Invalid)?;
            writeln!(out, "valid")?;
        }
        BlsCommand::AggregateVerify {
            publics,
            messages,
            signature,
        } => {
            let publics = public_list(&publics)?;
            let messages = hex_list("messages", &messages)?;
            let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let signature = signature_argument(&signature)?;
            aggregate_verify(&publics, &message_refs, &signature).map_err(CliError::Invalid)?;
            writeln!(out, "valid")?;
        }
    }
    Ok(())
}

fn signature_argument(value: &str) -> Result<BlsSignature, CliError> {
    decode(
        "signature",
        &hex_argument("signature", value)?,
        BlsSignature::from_slice,
    )
}

fn public_list(value: &str) -> Result<Vec<BlsPublicKey>, CliError> {
    hex_list("publics", value)?
        .iter()
        .map(|bytes| decode("publics", bytes, BlsPublicKey::from_slice))
        .collect()
}
