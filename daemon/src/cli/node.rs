//! `shieldx node`: initialise a node directory, generate a local testnet,
//! and run a validator.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use shieldx_core::crypto::ed25519::SigningKey;
use shieldx_daemon::genesis::ValidatorsFile;
use shieldx_daemon::node::config::{NetworkSection, NodeConfig, NodeSection, PeerEntry};
use shieldx_daemon::node::keys::NodeKeys;
use shieldx_daemon::node::{self, NodeError};

use super::{CliError, os_rng};

#[derive(Debug, Subcommand)]
pub(super) enum NodeCommand {
    /// Create a node directory: keys (mode 0600) and config.toml.
    Init {
        /// The node directory (created).
        #[arg(long)]
        home: PathBuf,
        /// Voting power to register with.
        #[arg(long, default_value_t = 1)]
        power: u64,
        /// Validator-to-validator address.
        #[arg(long, default_value = "127.0.0.1:26700")]
        peer_listen: SocketAddr,
        /// Client API address.
        #[arg(long, default_value = "127.0.0.1:26710")]
        api_listen: SocketAddr,
        /// Metrics and health address.
        #[arg(long, default_value = "127.0.0.1:26720")]
        metrics_listen: SocketAddr,
    },
    /// Create a local testnet: N initialised node directories sharing one
    /// genesis, each config listing the others as peers, and an admin key.
    Testnet {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        validators: u16,
        /// Output directory (node0, node1, ... and admin.key).
        #[arg(long)]
        dir: PathBuf,
        /// Chain id.
        #[arg(long, default_value = "shieldx-local")]
        chain_id: String,
        /// First peer port; API ports start at +100, metrics at +200.
        #[arg(long, default_value_t = 26700)]
        base_port: u16,
    },
    /// Run one validator until SIGINT or SIGTERM.
    Start {
        /// The node's config.toml.
        #[arg(long)]
        config: PathBuf,
    },
}

fn node_error(e: NodeError) -> CliError {
    match e {
        NodeError::Config(_) | NodeError::Genesis(_) | NodeError::Keys(_) => {
            CliError::Input(e.to_string())
        }
        other => CliError::Node(other.to_string()),
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|e| CliError::Input(format!("{}: {e}", path.display())))
}

fn init(
    home: &Path,
    power: u64,
    network: NetworkSection,
    rng: &mut rand::rngs::StdRng,
) -> Result<NodeKeys, CliError> {
    std::fs::create_dir_all(home)
        .map_err(|e| CliError::Input(format!("{}: {e}", home.display())))?;
    let keys = NodeKeys::generate(rng);
    keys.write(home, power).map_err(node_error)?;
    let config = NodeConfig {
        node: NodeSection::default(),
        network,
        peers: Vec::new(),
        consensus: Default::default(),
        api: Default::default(),
        log: Default::default(),
    };
    write_file(
        &home.join("config.toml"),
        &config.to_toml().map_err(node_error)?,
    )?;
    Ok(keys)
}

pub(super) fn run(command: NodeCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        NodeCommand::Init {
            home,
            power,
            peer_listen,
            api_listen,
            metrics_listen,
        } => {
            let mut rng = os_rng()?;
            init(
                &home,
                power,
                NetworkSection {
                    peer_listen,
                    api_listen,
                    metrics_listen,
                },
                &mut rng,
            )?;
            writeln!(
                out,
                "initialised {}: keys/ (secret keys, mode 0600), keys/validator.json (add it to the genesis), config.toml",
                home.display()
            )?;
            Ok(())
        }
        NodeCommand::Testnet {
            validators,
            dir,
            chain_id,
            base_port,
        } => testnet(validators, &dir, &chain_id, base_port, out),
        NodeCommand::Start { config } => start(&config),
    }
}

fn testnet(
    n: u16,
    dir: &Path,
    chain_id: &str,
    base_port: u16,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if !(1..=256).contains(&n) {
        return Err(CliError::Input("--validators must be 1..=256".into()));
    }
    if usize::from(base_port) + 200 + usize::from(n) > usize::from(u16::MAX) {
        return Err(CliError::Input(
            "--base-port leaves no room for the ports".into(),
        ));
    }
    let mut rng = os_rng()?;
    let address = |offset: u16, i: u16| -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], base_port + offset + i))
    };
    let mut entries = Vec::new();
    for i in 0..n {
        let home = dir.join(format!("node{i}"));
        let keys = init(
            &home,
            1,
            NetworkSection {
                peer_listen: address(0, i),
                api_listen: address(100, i),
                metrics_listen: address(200, i),
            },
            &mut rng,
        )?;
        entries.push(keys.entry(1));
    }
    let admin = SigningKey::generate(&mut rng);
    let admin_path = dir.join("admin.key");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options
            .open(&admin_path)
            .map_err(|e| CliError::Input(format!("{}: {e}", admin_path.display())))?;
        file.write_all(hex::encode(&admin.to_bytes()[..]).as_bytes())?;
    }
    let genesis = ValidatorsFile {
        chain_id: chain_id.to_string(),
        validators: entries,
        admin: Some(hex::encode(admin.verifying_key().to_bytes())),
    };
    genesis
        .validator_set()
        .map_err(|e| CliError::Input(e.to_string()))?;
    let genesis_text =
        serde_json::to_string_pretty(&genesis).map_err(|e| CliError::Input(e.to_string()))? + "\n";
    for i in 0..n {
        let home = dir.join(format!("node{i}"));
        write_file(&home.join("genesis.json"), &genesis_text)?;
        let config_path = home.join("config.toml");
        let mut config = NodeConfig::load(&config_path).map_err(node_error)?;
        config.node = NodeSection::default();
        config.peers = (0..n)
            .filter(|j| *j != i)
            .map(|j| PeerEntry {
                validator: j,
                address: address(0, j).to_string(),
            })
            .collect();
        write_file(&config_path, &config.to_toml().map_err(node_error)?)?;
    }
    writeln!(
        out,
        "testnet of {n} validators in {}: node0..node{} (start each with `shieldx node start --config {}/node0/config.toml`), admin.key",
        dir.display(),
        n - 1,
        dir.display()
    )?;
    Ok(())
}

fn init_logging(config: &NodeConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log.format.as_str() {
        "json" => builder.json().try_init(),
        _ => builder.try_init(),
    };
}

fn start(config_path: &Path) -> Result<(), CliError> {
    let config = NodeConfig::load(config_path).map_err(node_error)?;
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Node(e.to_string()))?;
    runtime.block_on(async move {
        let running = node::start(config).await.map_err(node_error)?;
        tracing::info!(
            peer = %running.addresses.0,
            api = %running.addresses.1,
            metrics = %running.addresses.2,
            "node started"
        );
        let signal = shutdown_signal().await;
        tracing::info!(signal, "shutting down: finishing in-flight work");
        running.stop();
        running.wait().await.map_err(node_error)?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        };
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
