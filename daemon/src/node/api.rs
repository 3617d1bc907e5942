//! The client gRPC API (`shieldx.v1.Client`) with server reflection.
//!
//! Writes are answered once this node executed them: the response carries
//! the height, the application's result and the node's signature over the
//! reply (a client that trusts no single node collects matching replies from
//! more than a third of the power, as `consensus::ReplyCollector` does).
//! Sensor events are signed into requests by the node's *gateway* keys; a
//! client that holds its own key submits signed requests instead.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shieldx_core::app::Transaction;
use shieldx_core::codec::{self, Encode as _};
use shieldx_core::consensus::{CLIENT_WINDOW, Request};
use shieldx_core::crypto::ed25519::SigningKey;
use shieldx_core::detect::Event;
use tokio::sync::{Semaphore, oneshot};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request as GrpcRequest, Response, Status};

use super::auth::{Auth, Principal, Role};
use super::config::ApiSection;
use super::keys::NodeKeys;
use super::{Input, NodeError, Notice, Shared, SignedReply};
use crate::proto::{self, client_server::Client};

/// Gateway keys per node: each keeps at most [`CLIENT_WINDOW`] requests in
/// flight, so the pool bounds the node's sensor submissions in flight.
pub const GATEWAY_KEYS: u32 = 64;
/// Most events in one `SubmitEvents` call.
pub const EVENTS_PER_CALL_MAX: usize = 1024;
/// How long a write waits for its commit.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// The pool of gateway client keys.
pub struct Gateway {
    keys: Vec<(SigningKey, AtomicU64, Semaphore)>,
    next: AtomicU64,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The pool; request ids start at `first_id` (wall-clock microseconds,
    /// so that they keep increasing across restarts).
    pub fn new(keys: &NodeKeys, first_id: u64) -> Gateway {
        Gateway {
            keys: (0..GATEWAY_KEYS)
                .map(|i| {
                    (
                        keys.gateway_key(i),
                        AtomicU64::new(first_id),
                        Semaphore::new(CLIENT_WINDOW as usize),
                    )
                })
                .collect(),
            next: AtomicU64::new(0),
        }
    }
}

/// The service.
#[derive(Debug, Clone)]
pub struct ApiService {
    shared: Shared,
    auth: Arc<Auth>,
}

/// The wire form of a security event (a sensor's side of `event_of`).
pub fn security_event(event: Event) -> proto::SecurityEvent {
    proto::SecurityEvent {
        id: event.id,
        ts: event.ts,
        source: event.source,
        sensor: event.sensor,
        kind: event.kind,
        payload: event.payload,
        headers: event.headers.into_iter().collect(),
    }
}

fn event_of(event: proto::SecurityEvent) -> Event {
    let mut headers: Vec<(String, String)> = event
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    headers.sort();
    Event {
        id: event.id,
        ts: event.ts,
        source: event.source,
        sensor: event.sensor,
        kind: event.kind,
        payload: event.payload,
        headers,
    }
}

/// The application's reply: tag 0, ledger sequence (u64 LE), alerts (u32
/// LE); or tag 1 and the reason (length-prefixed text). See
/// `app::TxResult::encode`.
fn decode_result(bytes: &[u8]) -> Result<(bool, u64, u32, String), String> {
    let mut reader = codec::Reader::new(bytes);
    let outcome = match reader.u8("result tag").map_err(|e| e.to_string())? {
        0 => (
            true,
            reader.u64("ledger sequence").map_err(|e| e.to_string())?,
            reader.u32("alerts").map_err(|e| e.to_string())?,
            String::new(),
        ),
        1 => {
            let reason = reader
                .bytes("reason", shieldx_core::consensus::REQUEST_PAYLOAD_MAX)
                .map_err(|e| e.to_string())?;
            (false, 0, 0, String::from_utf8_lossy(&reason).into_owned())
        }
        tag => return Err(format!("unknown result tag {tag}")),
    };
    if reader.remaining() != 0 {
        return Err(format!("{} trailing bytes", reader.remaining()));
    }
    Ok(outcome)
}

fn submit_response(reply: SignedReply) -> proto::SubmitResponse {
    let (applied, ledger_sequence, alerts, rejection) = decode_result(&reply.reply.result)
        .unwrap_or_else(|e| (false, 0, 0, format!("undecodable result: {e}")));
    proto::SubmitResponse {
        height: reply.reply.sequence,
        client: hex::encode(reply.reply.client.to_bytes()),
        request_id: reply.reply.request_id,
        applied,
        ledger_sequence,
        alerts,
        rejection,
        result: reply.reply.result,
        reply_signature: hex::encode(reply.signature),
        replica: u32::from(reply.reply.replica),
    }
}

impl ApiService {
    async fn submit(&self, request: Request) -> Result<proto::SubmitResponse, Status> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .inbox
            .send(Input::Submit {
                request: Box::new(request),
                reply: tx,
                received: tokio::time::Instant::now(),
            })
            .await
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        match tokio::time::timeout(COMMIT_WAIT, rx).await {
            Ok(Ok(Ok(reply))) => Ok(submit_response(reply)),
            Ok(Ok(Err(reason))) => Err(Status::failed_precondition(reason)),
            Ok(Err(_)) => Err(Status::unavailable("the node is shutting down")),
            Err(_) => Err(Status::deadline_exceeded(
                "not committed in time; retry with the same request to get its result",
            )),
        }
    }
}

type NotificationStream =
    Pin<Box<dyn Stream<Item = Result<proto::Notification, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Client for ApiService {
    async fn submit_events(
        &self,
        request: GrpcRequest<proto::SubmitEventsRequest>,
    ) -> Result<Response<proto::SubmitResponse>, Status> {
        self.auth.bearer(request.metadata(), Role::Submit)?;
        let events = request.into_inner().events;
        if events.is_empty() {
            return Err(Status::invalid_argument("no events"));
        }
        if events.len() > EVENTS_PER_CALL_MAX {
            return Err(Status::invalid_argument(format!(
                "at most {EVENTS_PER_CALL_MAX} events per call"
            )));
        }
        let time_ms = self.shared.host.clock.unix_ms();
        let payload = Transaction::SubmitEvents {
            time_ms,
            events: events.into_iter().map(event_of).collect(),
        }
        .to_bytes();
        if payload.len() > shieldx_core::consensus::REQUEST_PAYLOAD_MAX {
            return Err(Status::invalid_argument(format!(
                "the events encode to {} bytes; at most {} per call",
                payload.len(),
                shieldx_core::consensus::REQUEST_PAYLOAD_MAX
            )));
        }
        let gateway = &self.shared.gateway;
        let slot =
            (gateway.next.fetch_add(1, Ordering::Relaxed) % u64::from(GATEWAY_KEYS)) as usize;
        let (key, ids, window) = &gateway.keys[slot];
        let _permit = window
            .acquire()
            .await
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let request = Request::sign(&self.shared.chain_id, key, id, payload);
        self.submit(request).await.map(Response::new)
    }

    async fn submit_transaction(
        &self,
        request: GrpcRequest<proto::SubmitTransactionRequest>,
    ) -> Result<Response<proto::SubmitResponse>, Status> {
        let bytes = request.into_inner().request;
        let request = codec::decode_exact::<Request>(&bytes)
            .map_err(|e| Status::invalid_argument(format!("request: {e}")))?;
        self.auth
            .charge(&Principal::Client(request.client.to_bytes()))?;
        Transaction::decode_exact(&request.payload)
            .map_err(|e| Status::invalid_argument(format!("transaction: {e}")))?;
        request
            .verify(&self.shared.chain_id)
            .map_err(|e| Status::unauthenticated(format!("request signature: {e}")))?;
        self.submit(request).await.map(Response::new)
    }

    async fn get_state(
        &self,
        request: GrpcRequest<proto::GetStateRequest>,
    ) -> Result<Response<proto::StateResponse>, Status> {
        self.auth.bearer(request.metadata(), Role::Read)?;
        let account = request.into_inner().account;
        let account = match account.is_empty() {
            true => None,
            false => Some(super::parse_account(&account).map_err(Status::invalid_argument)?),
        };
        let (tx, rx) = oneshot::channel();
        self.shared
            .inbox
            .send(Input::State { account, reply: tx })
            .await
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        rx.await
            .map(Response::new)
            .map_err(|_| Status::unavailable("the node is shutting down"))
    }

    async fn get_block(
        &self,
        request: GrpcRequest<proto::GetBlockRequest>,
    ) -> Result<Response<proto::BlockResponse>, Status> {
        self.auth.bearer(request.metadata(), Role::Read)?;
        let height = request.into_inner().height;
        let block = self
            .shared
            .store
            .block(height)
            .map_err(|e| Status::internal(e.to_string()))?
            .ok_or_else(|| Status::not_found(format!("no block {height} on this node")))?;
        let certificate = &block.certified.certificate;
        Ok(Response::new(proto::BlockResponse {
            height,
            digest: certificate.digest.to_string(),
            certified_batch: block.certified.to_encoded(),
            state_digest: block.state_digest.to_string(),
            requests: block.certified.batch.requests.len() as u32,
            view: certificate.view,
            signers: certificate.signers.iter().map(u32::from).collect(),
        }))
    }

    async fn get_alert(
        &self,
        request: GrpcRequest<proto::GetAlertRequest>,
    ) -> Result<Response<proto::AlertResponse>, Status> {
        self.auth.bearer(request.metadata(), Role::Read)?;
        let sequence = request.into_inner().sequence;
        let (tx, rx) = oneshot::channel();
        self.shared
            .inbox
            .send(Input::Alert {
                sequence,
                reply: tx,
            })
            .await
            .map_err(|_| Status::unavailable("the node is shutting down"))?;
        rx.await
            .map_err(|_| Status::unavailable("the node is shutting down"))?
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("no alert at ledger sequence {sequence}")))
    }

    type SubscribeStream = NotificationStream;

    async fn subscribe(
        &self,
        request: GrpcRequest<proto::SubscribeRequest>,
    ) -> Result<Response<NotificationStream>, Status> {
        self.auth.bearer(request.metadata(), Role::Read)?;
        let wanted = request.into_inner();
        if !wanted.commits && !wanted.alerts {
            return Err(Status::invalid_argument(
                "subscribe to commits, alerts or both",
            ));
        }
        let receiver = self.shared.notices.subscribe();
        let stream = tokio_stream::wrappers::BroadcastStream::new(receiver).filter_map(
            move |item| match item {
                Ok(Notice::Commit(commit)) if wanted.commits => Some(Ok(proto::Notification {
                    kind: Some(proto::notification::Kind::Commit(commit)),
                })),
                Ok(Notice::Alert(alert)) if wanted.alerts => Some(Ok(proto::Notification {
                    kind: Some(proto::notification::Kind::Alert(alert)),
                })),
                Ok(_) => None,
                // A subscriber that falls behind is told, then continues.
                Err(_) => Some(Err(Status::resource_exhausted(
                    "subscriber fell behind; notifications were dropped",
                ))),
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Serves the API and reflection until shutdown.
pub async fn serve(
    incoming: super::host::Incoming,
    shared: Shared,
    limits: ApiSection,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), NodeError> {
    // Both reflection versions: grpcurl speaks v1, many clients (Python's
    // grpcio-reflection among them) still speak v1alpha.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
        .with_service_name("shieldx.v1.Client")
        .build_v1()
        .map_err(|e| NodeError::Transport(e.to_string()))?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
        .with_service_name("shieldx.v1.Client")
        .build_v1alpha()
        .map_err(|e| NodeError::Transport(e.to_string()))?;
    let auth = Auth::new(&limits.tokens, limits.requests_per_second, limits.burst)
        .map_err(NodeError::Config)?;
    let service = proto::client_server::ClientServer::new(ApiService {
        shared,
        auth: Arc::new(auth),
    })
    .max_decoding_message_size(limits.max_message_bytes)
    .max_encoding_message_size(limits.max_message_bytes);
    tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
        .map_err(|e| NodeError::Transport(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::decode_result;
    use shieldx_core::app::{Rejection, TxResult};

    #[test]
    fn replies_decode_to_what_the_application_encoded() {
        let applied = TxResult::Applied {
            sequence: 42,
            alerts: 3,
        };
        assert_eq!(
            decode_result(&applied.encode()),
            Ok((true, 42, 3, String::new()))
        );
        let rejected = TxResult::Rejected(Rejection::Malformed("bad".into()));
        let (ok, _, _, reason) = decode_result(&rejected.encode()).expect("decodes");
        assert!(!ok);
        assert!(reason.contains("bad"), "{reason}");
        assert!(decode_result(&[0, 1]).is_err());
        assert!(decode_result(&[7]).is_err());
    }
}

/// Adds `authorization: Bearer <token>` to every call of a client.
#[derive(Debug, Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// For a token; `None` if it is not printable ASCII.
    pub fn new(token: &str) -> Option<Bearer> {
        format!("Bearer {token}").parse().ok().map(Bearer)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: GrpcRequest<()>) -> Result<GrpcRequest<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A client of the API that presents a bearer token.
pub type AuthedClient = proto::client_client::ClientClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

/// Connects to `url` (`http://host:port`) with `token`.
pub async fn connect(url: &str, token: &str) -> Result<AuthedClient, String> {
    connect_on(&super::host::Host::os(), url, token).await
}

/// Connects to `url` with `token` over `host`'s network.
pub async fn connect_on(
    host: &super::host::Host,
    url: &str,
    token: &str,
) -> Result<AuthedClient, String> {
    let bearer = Bearer::new(token).ok_or("the token is not printable ASCII")?;
    let endpoint =
        tonic::transport::Endpoint::from_shared(url.to_string()).map_err(|e| e.to_string())?;
    let channel = host.channel(endpoint).await.map_err(|e| e.to_string())?;
    Ok(
        proto::client_client::ClientClient::with_interceptor(channel, bearer)
            .max_decoding_message_size(16 << 20),
    )
}
