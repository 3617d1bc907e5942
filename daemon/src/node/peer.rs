//! The validator-to-validator transport: one tonic bidirectional stream per
//! ordered pair of validators (the dialer's messages go up the request half;
//! the server speaks first on the response half with a challenge).
//!
//! - **Authentication.** The dialer answers the server's fresh 32-byte
//!   challenge with an ed25519 signature by its validator identity over
//!   `"shieldx/peer-hello/v1" || chain id || nonce || dialer || server`. Every
//!   consensus message carried afterwards is also signed by its sender
//!   (the core verifies those), so a stream only decides *which* validator's
//!   messages it carries.
//! - **Reconnection.** A dialer that loses its stream reconnects with
//!   exponential backoff and full jitter (sleep uniformly in
//!   `[0, min(cap, base * 2^attempt)]`, AWS's "full jitter").
//! - **Circuit breaker.** After `BREAKER_THRESHOLD` consecutive failures the
//!   breaker opens for `BREAKER_OPEN`: messages for the peer are dropped at
//!   once instead of queueing behind a dead link. Then one trial connection
//!   (half-open) closes it again or re-opens it.
//! - **Backpressure.** Each peer has a bounded queue; when it is full the
//!   message is dropped and counted. PBFT recovers lost messages by STATUS
//!   retransmission, so dropping is safe and never blocks the replica.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shieldx_core::codec;
use shieldx_core::consensus::ValidatorSet;
use shieldx_core::crypto::ed25519::{Signature, SigningKey};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use super::Input;
use super::host::Host;
use super::metrics::Metrics;
use crate::proto::peer_client::PeerClient;
use crate::proto::peer_frame::Frame;
use crate::proto::peer_server::Peer;
use crate::proto::{Challenge, Hello, PeerFrame};

const HELLO_DOMAIN: &[u8] = b"shieldx/peer-hello/v1";
/// Messages queued per peer before new ones are dropped.
pub const PEER_QUEUE: usize = 8192;
const BACKOFF_BASE: Duration = Duration::from_millis(50);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
const BREAKER_THRESHOLD: u32 = 8;
const BREAKER_OPEN: Duration = Duration::from_secs(10);
/// HTTP/2 pings on every peer connection, both ends: a link that dies
/// without a reset (a partition, a peer host that vanished, a middlebox
/// that dropped its state) is noticed within interval + timeout, and the
/// dialer reconnects. PBFT cannot wait for TCP's own minutes-long timeout:
/// a silent link to the next primary stalls the view change.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// How long a ping may go unanswered before the connection is dropped.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest frame: a state transfer with a full snapshot.
pub const FRAME_BYTES_MAX: usize = shieldx_core::consensus::SNAPSHOT_BYTES_MAX + (4 << 20);

fn hello_bytes(chain_id: &[u8], nonce: &[u8], dialer: u16, server: u16) -> Vec<u8> {
    let mut out = HELLO_DOMAIN.to_vec();
    codec::put_bytes(&mut out, chain_id);
    codec::put_bytes(&mut out, nonce);
    out.extend_from_slice(&dialer.to_le_bytes());
    out.extend_from_slice(&server.to_le_bytes());
    out
}

/// The server half: accepts authenticated streams from other validators.
#[derive(Debug, Clone)]
pub struct PeerService {
    /// This validator's index.
    pub index: u16,
    /// The chain id.
    pub chain_id: Vec<u8>,
    /// The validator set (identities).
    pub validators: Arc<ValidatorSet>,
    /// Where decoded input goes.
    pub inbox: mpsc::Sender<Input>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Entropy for challenges.
    pub host: Host,
    /// The node's span, for the tasks the service spawns.
    pub span: tracing::Span,
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<PeerFrame, Status>> + Send + 'static>>;

fn nonce(host: &Host) -> Result<[u8; 32], Status> {
    let mut nonce = [0u8; 32];
    host.entropy
        .fill(&mut nonce)
        .map_err(|e| Status::unavailable(format!("no randomness: {e}")))?;
    Ok(nonce)
}

#[tonic::async_trait]
impl Peer for PeerService {
    type ExchangeStream = FrameStream;

    async fn exchange(
        &self,
        request: Request<Streaming<PeerFrame>>,
    ) -> Result<Response<FrameStream>, Status> {
        let mut inbound = request.into_inner();
        let nonce = nonce(&self.host)?;
        let (tx, rx) = mpsc::channel(4);
        tx.send(Ok(PeerFrame {
            frame: Some(Frame::Challenge(Challenge {
                nonce: nonce.to_vec(),
                validator: u32::from(self.index),
            })),
        }))
        .await
        .map_err(|_| Status::internal("stream closed"))?;
        let service = self.clone();
        let span = self.span.clone();
        let serve = async move {
            // The response half stays open while the dialer sends.
            let _keep = tx;
            let hello = tokio::time::timeout(Duration::from_secs(10), inbound.next()).await;
            let Ok(Some(Ok(PeerFrame {
                frame: Some(Frame::Hello(hello)),
            }))) = hello
            else {
                tracing::debug!("peer stream without a hello");
                return;
            };
            let Some(from) = service.authenticate(&nonce, &hello) else {
                service
                    .metrics
                    .rejected
                    .get_or_create(&super::metrics::KindLabel {
                        kind: "peer_hello".into(),
                    })
                    .inc();
                tracing::warn!(claimed = hello.validator, "peer hello does not verify");
                return;
            };
            tracing::debug!(from, "peer stream authenticated");
            while let Some(frame) = inbound.next().await {
                match frame {
                    Ok(PeerFrame {
                        frame: Some(Frame::Message(bytes)),
                    }) => {
                        if service
                            .inbox
                            .send(Input::Peer { from, bytes })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(PeerFrame {
                        frame: Some(Frame::Requests(batch)),
                    }) => {
                        let requests = batch.requests;
                        if service
                            .inbox
                            .send(Input::Relayed { requests })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {
                        tracing::warn!(from, "unexpected peer frame; closing");
                        return;
                    }
                    Err(status) => {
                        tracing::debug!(from, %status, "peer stream ended");
                        return;
                    }
                }
            }
        };
        tokio::spawn(tracing::Instrument::instrument(serve, span));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl PeerService {
    fn authenticate(&self, nonce: &[u8], hello: &Hello) -> Option<u16> {
        let from = u16::try_from(hello.validator).ok()?;
        if from == self.index {
            return None;
        }
        let validator = self.validators.get(from)?;
        let signature = Signature::from_slice(&hello.signature).ok()?;
        validator
            .identity
            .verify(
                &hello_bytes(&self.chain_id, nonce, from, self.index),
                &signature,
            )
            .ok()?;
        Some(from)
    }
}

/// Circuit breaker state of one peer link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    /// Connected or trying.
    Closed,
    /// Too many failures: messages are dropped until the instant passes.
    Open(tokio::time::Instant),
}

/// Full-jitter backoff before attempt `attempt` (0-based).
pub fn backoff(attempt: u32, unit_random: f64) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(unit_random.clamp(0.0, 1.0))
}

/// The dialer half for one peer: keeps a stream up and forwards `queue`.
pub struct PeerLink {
    /// This validator.
    pub index: u16,
    /// The peer.
    pub peer: u16,
    /// `http://host:port`.
    pub endpoint: String,
    /// The chain id.
    pub chain_id: Vec<u8>,
    /// This validator's identity key.
    pub identity: SigningKey,
    /// Mutual TLS (absent: plaintext).
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The network to dial on, and entropy for the jitter.
    pub host: Host,
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLink")
            .field("index", &self.index)
            .field("peer", &self.peer)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl PeerLink {
    /// Runs until `shutdown` flips.
    pub async fn run(
        self,
        mut queue: mpsc::Receiver<PeerFrame>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut failures: u32 = 0;
        let mut breaker = Breaker::Closed;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Breaker::Open(until) = breaker {
                // Drop what arrives while open, until the cool-down passes.
                let sleep = tokio::time::sleep_until(until);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        biased;
                        _ = shutdown.changed() => return,
                        () = &mut sleep => break,
                        message = queue.recv() => if message.is_none() { return },
                    }
                }
                breaker = Breaker::Closed;
            }
            match self.session(&mut queue, &mut shutdown).await {
                Ok(()) => return,
                Err(connected) => {
                    if connected {
                        failures = 0;
                    } else {
                        failures += 1;
                    }
                    if failures >= BREAKER_THRESHOLD {
                        tracing::warn!(peer = self.peer, "circuit breaker open");
                        breaker = Breaker::Open(tokio::time::Instant::now() + BREAKER_OPEN);
                        failures = BREAKER_THRESHOLD / 2;
                        continue;
                    }
                    let delay = backoff(failures, self.host.unit_random());
                    // Messages that pile up while down are stale: drop them.
                    while queue.try_recv().is_ok() {}
                    tokio::select! {
                        biased;
                        _ = shutdown.changed() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One connection. `Ok` on shutdown; `Err(connected)` when it failed,
    /// saying whether it had got as far as an authenticated stream.
    async fn session(
        &self,
        queue: &mut mpsc::Receiver<PeerFrame>,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), bool> {
        let mut endpoint =
            tonic::transport::Endpoint::from_shared(self.endpoint.clone()).map_err(|_| false)?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(|e| {
                tracing::warn!(peer = self.peer, %e, "tls configuration refused");
                false
            })?;
        }
        let endpoint = endpoint
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let channel = self.host.channel(endpoint).await.map_err(|_| false)?;
        let mut client = PeerClient::new(channel)
            .max_decoding_message_size(FRAME_BYTES_MAX)
            .max_encoding_message_size(FRAME_BYTES_MAX);
        let (tx, rx) = mpsc::channel::<PeerFrame>(256);
        let response = client
            .exchange(ReceiverStream::new(rx))
            .await
            .map_err(|_| false)?;
        let mut inbound = response.into_inner();
        let challenge = match tokio::time::timeout(Duration::from_secs(5), inbound.next()).await {
            Ok(Some(Ok(PeerFrame {
                frame: Some(Frame::Challenge(challenge)),
            }))) => challenge,
            _ => return Err(false),
        };
        if challenge.validator != u32::from(self.peer) || challenge.nonce.len() != 32 {
            tracing::warn!(peer = self.peer, "peer answered as another validator");
            return Err(false);
        }
        let signature = self.identity.sign(&hello_bytes(
            &self.chain_id,
            &challenge.nonce,
            self.index,
            self.peer,
        ));
        tx.send(PeerFrame {
            frame: Some(Frame::Hello(Hello {
                validator: u32::from(self.index),
                signature: signature.to_bytes().to_vec(),
            })),
        })
        .await
        .map_err(|_| false)?;
        tracing::info!(peer = self.peer, endpoint = %self.endpoint, "peer connected");
        self.metrics.peers_connected.inc();
        let result = loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break Ok(()),
                ended = inbound.next() => {
                    // The server sends nothing after the challenge: any item
                    // or the end means the stream is gone.
                    match ended {
                        Some(Err(status)) => tracing::debug!(peer = self.peer, %status, "stream closed by the peer"),
                        Some(Ok(_)) => tracing::debug!(peer = self.peer, "unexpected frame from the peer"),
                        None => tracing::debug!(peer = self.peer, "stream ended by the peer"),
                    }
                    break Err(true);
                }
                message = queue.recv() => match message {
                    None => break Ok(()),
                    Some(frame) => {
                        if tx.send(frame).await.is_err() {
                            break Err(true);
                        }
                    }
                },
            }
        };
        self.metrics.peers_connected.dec();
        tracing::info!(peer = self.peer, "peer disconnected");
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_below_an_exponential_cap() {
        assert_eq!(backoff(0, 1.0), BACKOFF_BASE);
        assert_eq!(backoff(3, 1.0), BACKOFF_BASE * 8);
        assert_eq!(backoff(30, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(5, 0.0), Duration::ZERO);
        assert_eq!(backoff(2, 0.5), BACKOFF_BASE * 2);
    }
}
