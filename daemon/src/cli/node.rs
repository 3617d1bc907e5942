//! `shieldx node`: initialise a node directory, generate a local testnet,
//! and run a validator.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use shieldx_daemon::node::config::{NetworkSection, NodeConfig};
use shieldx_daemon::node::{self, NodeError, local, tls};

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

pub(super) fn node_error(e: NodeError) -> CliError {
    match e {
        NodeError::Config(_) | NodeError::Genesis(_) | NodeError::Keys(_) => {
            CliError::Input(e.to_string())
        }
        other => CliError::Node(other.to_string()),
    }
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
            let tokens = local::ApiTokens::generate(&mut rng);
            // A node of its own gets a CA of its own; a network shares one
            // (`node testnet`, or issue certificates from this one).
            let ca = tls::generate_ca("shieldx").map_err(node_error)?;
            local::init_node(
                &home,
                power,
                NetworkSection {
                    peer_listen,
                    api_listen,
                    metrics_listen,
                },
                &tokens,
                &ca,
                &mut rng,
            )
            .map_err(node_error)?;
            local::write_secret_file(&home.join("tls/ca.key"), &ca.key_pem).map_err(node_error)?;
            tokens
                .write(&home.join("keys/api-tokens.toml"))
                .map_err(node_error)?;
            writeln!(
                out,
                "initialised {}: keys/ (secret keys and keys/api-tokens.toml, mode 0600), keys/validator.json (add it to the genesis), config.toml",
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
    let address = |offset: u16, i: u16| SocketAddr::from(([127, 0, 0, 1], base_port + offset + i));
    let networks = (0..n)
        .map(|i| NetworkSection {
            peer_listen: address(0, i),
            api_listen: address(100, i),
            metrics_listen: address(200, i),
        })
        .collect();
    local::generate(dir, chain_id, networks, &mut os_rng()?).map_err(node_error)?;
    writeln!(
        out,
        "testnet of {n} validators in {}: node0..node{} (start each with `shieldx node start --config {}/node0/config.toml`), admin.key, api-tokens.toml",
        dir.display(),
        n - 1,
        dir.display()
    )?;
    Ok(())
}

pub(super) fn init_logging(config: &NodeConfig) {
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
