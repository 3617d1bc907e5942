//! A node directory's keys: the validator's ed25519 identity, its BLS vote key
//! with the proof of possession, its ECVRF key, and the gateway key the node
//! signs sensor submissions with.
//!
//! Layout under `<home>/keys/`: `identity.key`, `vote.key`, `vrf.key`,
//! `gateway.key` (secret, hex, mode 0600, refused if group or others can read
//! them) and `validator.json` (the public registration, a genesis entry).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use shieldx_core::crypto::bls::BlsSecretKey;
use shieldx_core::crypto::ed25519::SigningKey;
use shieldx_core::crypto::vrf::VrfSecretKey;

use super::NodeError;
use crate::genesis::ValidatorEntry;

/// The secret keys of one validator node.
#[derive(Debug)]
pub struct NodeKeys {
    /// ed25519 identity: signs consensus messages, replies and peer hellos.
    pub identity: SigningKey,
    /// BLS12-381 vote key: signs commit votes.
    pub vote_key: BlsSecretKey,
    /// ECVRF key: proves the leader beacon.
    pub vrf_key: VrfSecretKey,
    /// The seed of the node's gateway client keys (sensor submissions).
    pub gateway: SigningKey,
}

const SECRET_FILES: [&str; 4] = ["identity.key", "vote.key", "vrf.key", "gateway.key"];

fn keys_dir(home: &Path) -> PathBuf {
    home.join("keys")
}

fn write_secret(path: &Path, secret: &[u8]) -> Result<(), NodeError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| NodeError::io(path, e))?;
    file.write_all(hex::encode(secret).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| NodeError::io(path, e))
}

fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, NodeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|e| NodeError::io(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(NodeError::Keys(format!(
                "{} is readable by group or others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            )));
        }
    }
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| NodeError::io(path, e))?);
    hex::decode(text.trim())
        .map(zeroize::Zeroizing::new)
        .map_err(|e| NodeError::Keys(format!("{}: {e}", path.display())))
}

impl NodeKeys {
    /// Fresh keys from a cryptographic RNG.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> NodeKeys {
        NodeKeys {
            identity: SigningKey::generate(rng),
            vote_key: BlsSecretKey::generate(rng),
            vrf_key: VrfSecretKey::generate(rng),
            gateway: SigningKey::generate(rng),
        }
    }

    /// Writes the keys under `home/keys`; refuses to overwrite any key.
    pub fn write(&self, home: &Path, power: u64) -> Result<(), NodeError> {
        let dir = keys_dir(home);
        std::fs::create_dir_all(&dir).map_err(|e| NodeError::io(&dir, e))?;
        for name in SECRET_FILES {
            let path = dir.join(name);
            if path.exists() {
                return Err(NodeError::Keys(format!(
                    "{} exists; a node directory is initialised once",
                    path.display()
                )));
            }
        }
        write_secret(&dir.join("identity.key"), &self.identity.to_bytes()[..])?;
        write_secret(&dir.join("vote.key"), &self.vote_key.to_bytes()[..])?;
        write_secret(&dir.join("vrf.key"), &self.vrf_key.to_bytes()[..])?;
        write_secret(&dir.join("gateway.key"), &self.gateway.to_bytes()[..])?;
        let public = serde_json::to_string_pretty(&self.entry(power))
            .map_err(|e| NodeError::Keys(e.to_string()))?;
        let path = dir.join("validator.json");
        std::fs::write(&path, public + "\n").map_err(|e| NodeError::io(&path, e))
    }

    /// Reads the keys from `home/keys`.
    pub fn load(home: &Path) -> Result<NodeKeys, NodeError> {
        let dir = keys_dir(home);
        let bad = |name: &str, e: shieldx_core::crypto::CryptoError| {
            NodeError::Keys(format!("{}: {e}", dir.join(name).display()))
        };
        Ok(NodeKeys {
            identity: SigningKey::from_slice(&read_secret(&dir.join("identity.key"))?)
                .map_err(|e| bad("identity.key", e))?,
            vote_key: BlsSecretKey::from_slice(&read_secret(&dir.join("vote.key"))?)
                .map_err(|e| bad("vote.key", e))?,
            vrf_key: VrfSecretKey::from_slice(&read_secret(&dir.join("vrf.key"))?)
                .map_err(|e| bad("vrf.key", e))?,
            gateway: SigningKey::from_slice(&read_secret(&dir.join("gateway.key"))?)
                .map_err(|e| bad("gateway.key", e))?,
        })
    }

    /// The public registration of this validator, with `power`.
    pub fn entry(&self, power: u64) -> ValidatorEntry {
        ValidatorEntry {
            identity: hex::encode(self.identity.verifying_key().to_bytes()),
            vote_key: hex::encode(self.vote_key.public_key().to_bytes()),
            vote_key_pop: hex::encode(self.vote_key.prove_possession().to_bytes()),
            vrf_key: hex::encode(self.vrf_key.public_key().to_bytes()),
            power,
        }
    }

    /// Gateway client key `i`: derived from the gateway seed, so that a node
    /// can keep many requests in flight (each client key has a window of
    /// [`shieldx_core::consensus::CLIENT_WINDOW`] request ids).
    pub fn gateway_key(&self, i: u32) -> SigningKey {
        let mut input = self.gateway.to_bytes().to_vec();
        input.extend_from_slice(&i.to_le_bytes());
        let seed = zeroize::Zeroizing::new(blake3::derive_key(
            "shieldx 2026 node gateway client key",
            &input,
        ));
        input.iter_mut().for_each(|b| *b = 0);
        SigningKey::from_slice(&seed[..]).expect("a 32-byte seed is a valid key")
    }
}
