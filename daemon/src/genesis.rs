//! The validator-set file: the public half of genesis, shared by every
//! validator and by anyone who verifies evidence offline.
//!
//! ```json
//! {
//!   "chain_id": "shieldx-local",
//!   "validators": [
//!     {"identity": "<32-byte ed25519 key, hex>",
//!      "vote_key": "<48-byte BLS12-381 G1 key, hex>",
//!      "vote_key_pop": "<96-byte proof of possession, hex>",
//!      "vrf_key": "<32-byte ECVRF key, hex>",
//!      "power": 1}
//!   ]
//! }
//! ```
//!
//! Loading checks every key's encoding and every BLS proof of possession
//! (the rogue-key defence the aggregate commit certificates rely on), then
//! the set's own rules (sizes, powers, no repeated key). Order matters: a
//! validator's index is its position in the list.

use std::path::Path;

use serde::{Deserialize, Serialize};
use shieldx_core::consensus::{ConfigError, Validator, ValidatorSet};
use shieldx_core::crypto::CryptoError;
use shieldx_core::crypto::bls::{BlsPublicKey, BlsSignature};
use shieldx_core::crypto::ed25519::VerifyingKey;
use shieldx_core::crypto::vrf::VrfPublicKey;

/// One validator's public registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEntry {
    /// ed25519 identity, hex.
    pub identity: String,
    /// BLS vote key, hex.
    pub vote_key: String,
    /// Proof of possession of the vote key, hex.
    pub vote_key_pop: String,
    /// ECVRF key, hex.
    pub vrf_key: String,
    /// Voting power.
    pub power: u64,
}

/// The file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorsFile {
    /// The chain id every signature binds.
    pub chain_id: String,
    /// Validators in index order.
    pub validators: Vec<ValidatorEntry>,
    /// The chain's admin account (ed25519 key, hex): the only one that may
    /// mint credits or update rules. Absent: nobody can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// Stake each validator bonds at genesis per unit of voting power.
    /// Slashing takes a share of it (1% to 50%), so it must be large enough
    /// for those shares to be whole credits.
    #[serde(default = "default_stake_per_power")]
    pub stake_per_power: u64,
}

/// The genesis stake per unit of power when the file does not say.
pub const DEFAULT_STAKE_PER_POWER: u64 = 1_000_000;

fn default_stake_per_power() -> u64 {
    DEFAULT_STAKE_PER_POWER
}

/// Why a validator-set file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenesisError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is not the expected JSON.
    #[error("not a validator-set file: {0}")]
    Json(#[from] serde_json::Error),
    /// A key field is not hex of the right length, or not a valid key.
    #[error("validator {index}: {field}: {reason}")]
    Key {
        /// The validator's index.
        index: usize,
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A proof of possession does not verify.
    #[error("validator {index}: proof of possession does not verify: {source}")]
    Possession {
        /// The validator's index.
        index: usize,
        /// The failure.
        source: CryptoError,
    },
    /// The set breaks the consensus rules.
    #[error("validator set: {0}")]
    Set(#[from] ConfigError),
    /// `stake_per_power` is zero: no validator would have stake to lead
    /// with or to lose.
    #[error("stake_per_power must be at least 1")]
    NoStake,
}

fn key<T>(
    index: usize,
    field: &'static str,
    value: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, CryptoError>,
) -> Result<T, GenesisError> {
    let bytes = hex::decode(value.trim()).map_err(|e| GenesisError::Key {
        index,
        field,
        reason: e.to_string(),
    })?;
    parse(&bytes).map_err(|e| GenesisError::Key {
        index,
        field,
        reason: e.to_string(),
    })
}

impl ValidatorsFile {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<(Vec<u8>, ValidatorSet), GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Read {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str::<ValidatorsFile>(&text)?.validator_set()
    }

    /// The admin account (all zeroes, which no key signs for, when absent).
    pub fn admin_account(&self) -> Result<[u8; 32], GenesisError> {
        match &self.admin {
            None => Ok([0; 32]),
            Some(admin) => Ok(key(0, "admin", admin, VerifyingKey::from_slice)?.to_bytes()),
        }
    }

    /// Checks every key and proof and builds the chain id and the set.
    pub fn validator_set(&self) -> Result<(Vec<u8>, ValidatorSet), GenesisError> {
        if self.stake_per_power == 0 {
            return Err(GenesisError::NoStake);
        }
        let mut validators = Vec::with_capacity(self.validators.len());
        for (index, entry) in self.validators.iter().enumerate() {
            let identity = key(index, "identity", &entry.identity, VerifyingKey::from_slice)?;
            let vote_key = key(index, "vote_key", &entry.vote_key, BlsPublicKey::from_slice)?;
            let pop = key(
                index,
                "vote_key_pop",
                &entry.vote_key_pop,
                BlsSignature::from_slice,
            )?;
            vote_key
                .verify_possession(&pop)
                .map_err(|source| GenesisError::Possession { index, source })?;
            let vrf_key = key(index, "vrf_key", &entry.vrf_key, VrfPublicKey::from_slice)?;
            validators.push(Validator {
                identity,
                vote_key,
                vrf_key,
                power: entry.power,
            });
        }
        Ok((
            self.chain_id.as_bytes().to_vec(),
            ValidatorSet::new(validators)?,
        ))
    }
}
