//! Peer streams require mutual TLS with the testnet CA: a plaintext dialer
//! and a dialer whose certificate another CA issued never reach the
//! protocol; a certificate from the testnet CA gets the challenge.

use std::time::Duration;

use shieldx_daemon::node::local::LocalCluster;
use shieldx_daemon::node::tls::{Ca, NODE_NAME, generate_ca, issue};
use shieldx_daemon::proto::PeerFrame;
use shieldx_daemon::proto::peer_client::PeerClient;
use shieldx_daemon::proto::peer_frame::Frame;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

async fn challenge(endpoint: Endpoint) -> Result<u32, String> {
    let channel = tokio::time::timeout(Duration::from_secs(5), endpoint.connect())
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let mut client = PeerClient::new(channel);
    let (_tx, rx) = tokio::sync::mpsc::channel::<PeerFrame>(1);
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        client.exchange(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
    .await
    .map_err(|_| "exchange timed out".to_string())?
    .map_err(|e| format!("exchange: {e}"))?;
    let mut inbound = response.into_inner();
    match tokio::time::timeout(Duration::from_secs(5), inbound.message()).await {
        Ok(Ok(Some(PeerFrame {
            frame: Some(Frame::Challenge(c)),
        }))) => Ok(c.validator),
        other => Err(format!("no challenge: {other:?}")),
    }
}

fn tls(ca_pem: &str, cert: &str, key: &str) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(Identity::from_pem(cert, key))
        .domain_name(NODE_NAME)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_certificates_from_the_testnet_ca_reach_the_peer_protocol() {
    let dir = std::env::temp_dir().join(format!("shieldx-peer-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = LocalCluster::start(1, &dir, |_| {}).await.expect("starts");
    let address = cluster.nodes[0].addresses.0;
    let ca = Ca {
        cert_pem: std::fs::read_to_string(dir.join("ca.pem")).expect("ca.pem"),
        key_pem: std::fs::read_to_string(dir.join("ca.key")).expect("ca.key"),
        name: "shieldx-local".into(),
    };

    let plaintext = Endpoint::from_shared(format!("http://{address}")).expect("url");
    assert!(
        challenge(plaintext).await.is_err(),
        "plaintext reached the protocol"
    );

    let stranger = generate_ca("stranger").expect("ca");
    let (cert, key) = issue(&stranger).expect("cert");
    let foreign = Endpoint::from_shared(format!("https://{address}"))
        .expect("url")
        .tls_config(tls(&ca.cert_pem, &cert, &key))
        .expect("tls");
    assert!(
        challenge(foreign).await.is_err(),
        "a certificate from another CA was accepted"
    );

    let (cert, key) = issue(&ca).expect("cert");
    let member = Endpoint::from_shared(format!("https://{address}"))
        .expect("url")
        .tls_config(tls(&ca.cert_pem, &cert, &key))
        .expect("tls");
    assert_eq!(challenge(member).await, Ok(0));

    cluster.stop().await.expect("clean stop");
    let _ = std::fs::remove_dir_all(&dir);
}
