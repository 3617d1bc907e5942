//! Local testnets: the node directories `shieldx node testnet` writes, and
//! an in-process cluster of real nodes (tonic over loopback, redb on disk)
//! for `shieldx demo` and `shieldx bench cluster`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use shieldx_core::crypto::ed25519::SigningKey;

use serde::{Deserialize, Serialize};

use super::auth::{Role, TokenEntry, generate_token};
use super::config::{ApiSection, NetworkSection, NodeConfig, NodeSection, PeerEntry};
use super::keys::NodeKeys;
use super::tls::{Ca, TlsSection, generate_ca, issue};
use super::{NodeError, RunningNode};
use crate::genesis::ValidatorsFile;

/// Plaintext API tokens, one per role (the configs hold their hashes).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTokens {
    /// Reads state, blocks and alerts.
    pub read: String,
    /// Submits sensor events.
    pub submit: String,
    /// Everything.
    pub admin: String,
}

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiTokens(..)")
    }
}

impl ApiTokens {
    /// Fresh random tokens.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> ApiTokens {
        ApiTokens {
            read: generate_token(rng),
            submit: generate_token(rng),
            admin: generate_token(rng),
        }
    }

    /// The config entries (hashes only).
    pub fn entries(&self) -> Vec<TokenEntry> {
        vec![
            TokenEntry::for_token(Role::Read, &self.read),
            TokenEntry::for_token(Role::Submit, &self.submit),
            TokenEntry::for_token(Role::Admin, &self.admin),
        ]
    }

    /// Writes the plaintext tokens (mode 0600, never overwritten).
    pub fn write(&self, path: &Path) -> Result<(), NodeError> {
        let text = toml::to_string(self).map_err(|e| NodeError::Config(e.to_string()))?;
        write_secret_file(path, &text)
    }

    /// Reads a tokens file.
    pub fn load(path: &Path) -> Result<ApiTokens, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|e| NodeError::io(path, e))?;
        toml::from_str(&text).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))
    }
}

/// A generated testnet.
#[derive(Debug)]
pub struct Testnet {
    /// The API tokens every node accepts (also in `api-tokens.toml`).
    pub tokens: ApiTokens,
    /// Each node's config file.
    pub configs: Vec<PathBuf>,
    /// The admin key (also written to `admin.key`, mode 0600).
    pub admin: SigningKey,
    /// The addresses, per node.
    pub networks: Vec<NetworkSection>,
}

/// Writes a new file readable by its owner only (mode 0600); never
/// overwrites.
pub fn write_secret_file(path: &Path, text: &str) -> Result<(), NodeError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| NodeError::io(path, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| NodeError::io(path, e))
}

fn write(path: &Path, text: &str) -> Result<(), NodeError> {
    std::fs::write(path, text).map_err(|e| NodeError::io(path, e))
}

/// Initialises one node directory: keys and a config with no peers that
/// accepts `tokens`.
pub fn init_node<R: rand::CryptoRng + ?Sized>(
    home: &Path,
    power: u64,
    network: NetworkSection,
    tokens: &ApiTokens,
    ca: &Ca,
    rng: &mut R,
) -> Result<NodeKeys, NodeError> {
    std::fs::create_dir_all(home).map_err(|e| NodeError::io(home, e))?;
    let keys = NodeKeys::generate(rng);
    keys.write(home, power)?;
    let tls_dir = home.join("tls");
    std::fs::create_dir_all(&tls_dir).map_err(|e| NodeError::io(&tls_dir, e))?;
    let (cert, key) = issue(ca)?;
    write(&tls_dir.join("ca.pem"), &ca.cert_pem)?;
    write(&tls_dir.join("node.pem"), &cert)?;
    write_secret_file(&tls_dir.join("node.key"), &key)?;
    let config = NodeConfig {
        node: NodeSection::default(),
        network,
        peers: Vec::new(),
        consensus: Default::default(),
        api: ApiSection {
            tokens: tokens.entries(),
            ..Default::default()
        },
        log: Default::default(),
        tls: Some(TlsSection::default()),
    };
    write(&home.join("config.toml"), &config.to_toml()?)?;
    Ok(keys)
}

/// Writes `dir/node0..` (one per network), a shared genesis with an admin
/// key, and configs listing every other node as a peer.
pub fn generate<R: rand::CryptoRng + ?Sized>(
    dir: &Path,
    chain_id: &str,
    networks: Vec<NetworkSection>,
    rng: &mut R,
) -> Result<Testnet, NodeError> {
    let n = networks.len();
    if !(1..=256).contains(&n) {
        return Err(NodeError::Config(
            "a testnet has 1 to 256 validators".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
    let tokens = ApiTokens::generate(rng);
    tokens.write(&dir.join("api-tokens.toml"))?;
    let ca = generate_ca(chain_id)?;
    write(&dir.join("ca.pem"), &ca.cert_pem)?;
    write_secret_file(&dir.join("ca.key"), &ca.key_pem)?;
    let mut entries = Vec::new();
    for (i, network) in networks.iter().enumerate() {
        let keys = init_node(
            &dir.join(format!("node{i}")),
            1,
            network.clone(),
            &tokens,
            &ca,
            rng,
        )?;
        entries.push(keys.entry(1));
    }
    let admin = SigningKey::generate(rng);
    write_secret_file(&dir.join("admin.key"), &hex::encode(&admin.to_bytes()[..]))?;
    let genesis = ValidatorsFile {
        chain_id: chain_id.to_string(),
        validators: entries,
        admin: Some(hex::encode(admin.verifying_key().to_bytes())),
        stake_per_power: crate::genesis::DEFAULT_STAKE_PER_POWER,
    };
    genesis.validator_set()?;
    let genesis_text = serde_json::to_string_pretty(&genesis)
        .map_err(|e| NodeError::Config(e.to_string()))?
        + "\n";
    let mut configs = Vec::new();
    for i in 0..n {
        let home = dir.join(format!("node{i}"));
        write(&home.join("genesis.json"), &genesis_text)?;
        let path = home.join("config.toml");
        let mut config = NodeConfig::load(&path)?;
        config.node = NodeSection::default();
        config.peers = (0..n)
            .filter(|j| *j != i)
            .map(|j| PeerEntry {
                validator: j as u16,
                address: networks[j].peer_listen.to_string(),
            })
            .collect();
        write(&path, &config.to_toml()?)?;
        configs.push(path);
    }
    Ok(Testnet {
        tokens,
        configs,
        admin,
        networks,
    })
}

/// Loopback addresses for `n` nodes on ports the OS reports free now.
pub fn free_networks(n: usize) -> Result<Vec<NetworkSection>, NodeError> {
    let mut listeners = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..3 * n {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| NodeError::Transport(format!("no free loopback port: {e}")))?;
        addresses.push(
            listener
                .local_addr()
                .map_err(|e| NodeError::Transport(e.to_string()))?,
        );
        // Held until all are chosen, so that no two nodes get one port.
        listeners.push(listener);
    }
    Ok(addresses
        .chunks(3)
        .map(|a| NetworkSection {
            peer_listen: a[0],
            api_listen: a[1],
            metrics_listen: a[2],
        })
        .collect())
}

/// Real nodes running in this process.
#[derive(Debug)]
pub struct LocalCluster {
    /// The running nodes.
    pub nodes: Vec<RunningNode>,
    /// The testnet they run.
    pub testnet: Testnet,
    /// Where it lives.
    pub dir: PathBuf,
}

impl LocalCluster {
    /// Generates an `n`-validator testnet in `dir` (which must not exist or
    /// be empty), lets `tune` adjust each config, and starts every node.
    pub async fn start(
        n: usize,
        dir: &Path,
        tune: impl Fn(&mut NodeConfig),
    ) -> Result<LocalCluster, NodeError> {
        use rand::SeedableRng as _;
        let mut rng = rand::rngs::StdRng::try_from_rng(&mut rand::rngs::SysRng)
            .map_err(|e| NodeError::Keys(format!("no OS randomness: {e}")))?;
        let testnet = generate(dir, "shieldx-local", free_networks(n)?, &mut rng)?;
        let mut nodes = Vec::new();
        for path in &testnet.configs {
            let mut config = NodeConfig::load(path)?;
            tune(&mut config);
            nodes.push(super::start(config).await?);
        }
        Ok(LocalCluster {
            nodes,
            testnet,
            dir: dir.to_path_buf(),
        })
    }

    /// The client API endpoint of node `i`.
    pub fn api(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].addresses.1)
    }

    /// A client of node `i`'s API presenting `token`, retrying while the
    /// node comes up (at most 20 s).
    pub async fn client(
        &self,
        i: usize,
        token: &str,
    ) -> Result<super::api::AuthedClient, NodeError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match super::api::connect(&self.api(i), token).await {
                Ok(client) => return Ok(client),
                Err(e) if std::time::Instant::now() > deadline => {
                    return Err(NodeError::Transport(e));
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    /// The metrics address of node `i`.
    pub fn metrics(&self, i: usize) -> SocketAddr {
        self.nodes[i].addresses.2
    }

    /// Stops every node gracefully.
    pub async fn stop(self) -> Result<(), NodeError> {
        for node in &self.nodes {
            node.stop();
        }
        let mut result = Ok(());
        for node in self.nodes {
            if let Err(e) = node.wait().await
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }
}
