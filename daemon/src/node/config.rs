//! The node's configuration file (TOML). Paths are relative to the file's
//! directory; every field not given takes the default shown by `node init`.
//!
//! ```toml
//! [node]
//! home = "."                 # holds keys/, data/ and the genesis file
//! genesis = "genesis.json"
//!
//! [network]
//! peer_listen = "127.0.0.1:26700"     # validator-to-validator gRPC
//! api_listen = "127.0.0.1:26710"      # client gRPC API (with reflection)
//! metrics_listen = "127.0.0.1:26720"  # /metrics, /healthz, /readyz
//!
//! [[peers]]
//! validator = 1
//! address = "127.0.0.1:26701"
//!
//! [consensus]
//! batch_requests_max = 1024
//! batch_timeout_ms = 2
//! proposals_in_flight_max = 1
//! request_timeout_ms = 2000
//! checkpoint_interval = 128
//! window = 256
//!
//! [api]
//! max_message_bytes = 4194304
//! requests_per_second = 10000  # token bucket per principal
//! burst = 20000
//! max_concurrent_streams = 64
//! gateway_requests_in_flight = 2  # combined SubmitEvents requests in consensus
//!
//! [[api.tokens]]               # one per token; see node::auth
//! role = "read"                # read, submit or admin
//! blake3 = "<hash of the token, hex>"
//!
//! [log]
//! format = "text"            # or "json"
//! level = "info"
//!
//! [tls]                      # peer mutual TLS; omit for plaintext
//! ca = "tls/ca.pem"
//! cert = "tls/node.pem"
//! key = "tls/node.key"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::NodeError;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the node's files are.
    #[serde(default)]
    pub node: NodeSection,
    /// Listening addresses.
    pub network: NetworkSection,
    /// The other validators and where to reach them.
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
    /// Consensus tunables.
    #[serde(default)]
    pub consensus: ConsensusSection,
    /// Client API limits.
    #[serde(default)]
    pub api: ApiSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// Mutual TLS between validators (absent: plaintext peer streams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::tls::TlsSection>,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// The node directory.
    pub home: PathBuf,
    /// The genesis (validator-set) file.
    pub genesis: PathBuf,
}

impl Default for NodeSection {
    fn default() -> NodeSection {
        NodeSection {
            home: PathBuf::from("."),
            genesis: PathBuf::from("genesis.json"),
        }
    }
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Validator-to-validator transport.
    pub peer_listen: SocketAddr,
    /// The client API.
    pub api_listen: SocketAddr,
    /// Metrics and health.
    pub metrics_listen: SocketAddr,
}

/// One `[[peers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// The peer's index in the genesis validator list.
    pub validator: u16,
    /// Its peer address, `host:port`.
    pub address: String,
}

/// `[consensus]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusSection {
    /// Most requests in one batch.
    pub batch_requests_max: usize,
    /// How long a primary waits to fill a batch.
    pub batch_timeout_ms: u64,
    /// Batches a primary keeps in flight before requests wait for the next.
    pub proposals_in_flight_max: u64,
    /// Progress timeout before a view change.
    pub request_timeout_ms: u64,
    /// A checkpoint every this many sequences.
    pub checkpoint_interval: u64,
    /// The watermark window (a multiple of the interval, at least twice it).
    pub window: u64,
}

impl Default for ConsensusSection {
    fn default() -> ConsensusSection {
        ConsensusSection {
            batch_requests_max: 1024,
            batch_timeout_ms: 2,
            proposals_in_flight_max: 1,
            request_timeout_ms: 2000,
            checkpoint_interval: 128,
            window: 256,
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Largest gRPC message accepted.
    pub max_message_bytes: usize,
    /// Sustained requests per second per client address.
    pub requests_per_second: u32,
    /// Token bucket size per client address.
    pub burst: u32,
    /// Concurrent streams per connection.
    pub max_concurrent_streams: u32,
    /// Gateway requests (bearer-token `SubmitEvents` calls, combined) this
    /// node keeps in consensus at once; calls arriving meanwhile wait and
    /// are combined into the next ones (`node::gateway`).
    pub gateway_requests_in_flight: usize,
    /// Bearer tokens (their blake3 hashes) and the roles they grant.
    pub tokens: Vec<super::auth::TokenEntry>,
}

impl Default for ApiSection {
    fn default() -> ApiSection {
        ApiSection {
            max_message_bytes: 4 << 20,
            requests_per_second: 10_000,
            burst: 20_000,
            max_concurrent_streams: 64,
            gateway_requests_in_flight: 2,
            tokens: Vec::new(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info` or `shieldx=debug`.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> LogSection {
        LogSection {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl NodeConfig {
    /// Reads a config file; relative paths become relative to its directory.
    pub fn load(path: &Path) -> Result<NodeConfig, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|e| NodeError::io(path, e))?;
        let mut config: NodeConfig = toml::from_str(&text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if config.node.home.is_relative() {
            config.node.home = base.join(&config.node.home);
        }
        if config.node.genesis.is_relative() {
            config.node.genesis = config.node.home.join(&config.node.genesis);
        }
        if config.api.gateway_requests_in_flight == 0 {
            return Err(NodeError::Config(
                "api.gateway_requests_in_flight must be at least 1".into(),
            ));
        }
        if !matches!(config.log.format.as_str(), "text" | "json") {
            return Err(NodeError::Config(format!(
                "log.format must be \"text\" or \"json\", not {:?}",
                config.log.format
            )));
        }
        Ok(config)
    }

    /// The file's text.
    pub fn to_toml(&self) -> Result<String, NodeError> {
        toml::to_string(self).map_err(|e| NodeError::Config(e.to_string()))
    }
}
