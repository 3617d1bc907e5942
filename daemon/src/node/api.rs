//! The client gRPC API (`shieldx.v1.Client`) with server reflection.
//!
//! Writes are answered once this node executed them: the response carries
//! the height, the application's result and the node's signature over the
//! reply (a client that trusts no single node collects matching replies from
//! more than a third of the power, as `consensus::ReplyCollector` does).
//! Sensor events are signed into requests by the node's *gateway* keys,
//! which combine concurrent calls into one request ([`super::gateway`]); a
//! client that holds its own key submits signed requests instead.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shieldx_core::app::Transaction;
use shieldx_core::codec::{self, Encode as _};
use shieldx_core::consensus::Request;
use shieldx_core::detect::Event;
use tokio::sync::oneshot;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request as GrpcRequest, Response, Status};

use super::auth::{Auth, Principal, Role};
use super::config::ApiSection;
use super::gateway::{Answer, PAYLOAD_HEADER_BYTES, Refusal, Submission};
use super::{Input, NodeError, Notice, Shared};
use crate::proto::{self, client_server::Client};

/// Most events in one `SubmitEvents` call.
pub const EVENTS_PER_CALL_MAX: usize = 1024;
/// How long a write waits for its commit.
const COMMIT_WAIT: Duration = Duration::from_secs(30);
/// Submissions of one `StreamEvents` stream waiting for commit at once.
pub const STREAM_IN_FLIGHT_MAX: usize = 4096;
/// What an events submission that did not commit in time is told.
const EVENTS_TIMEOUT: &str =
    "not committed in time; the events may still commit (watch the commit stream)";

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

/// The application's reply, decoded (`app::TxResult::encode`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    applied: bool,
    ledger_sequence: u64,
    alerts: u32,
    /// (event position, alerts) of each event that raised some.
    alerting: Vec<(u32, u32)>,
    rejection: String,
}

/// Tag 0: ledger sequence (u64), alerts (u32), then the alerting events (a
/// u32 count, each a u32 position and u32 alerts), little-endian; or tag 1
/// and the reason (length-prefixed text).
fn decode_result(bytes: &[u8]) -> Result<Outcome, String> {
    let mut reader = codec::Reader::new(bytes);
    let e = |e: codec::CodecError| e.to_string();
    let outcome = match reader.u8("result tag").map_err(e)? {
        0 => {
            let ledger_sequence = reader.u64("ledger sequence").map_err(e)?;
            let alerts = reader.u32("alerts").map_err(e)?;
            let count = reader
                .length("alerting events", shieldx_core::app::EVENTS_PER_TX_MAX)
                .map_err(e)?;
            let mut alerting = Vec::with_capacity(count);
            for _ in 0..count {
                let index = reader.u32("event position").map_err(e)?;
                alerting.push((index, reader.u32("event alerts").map_err(e)?));
            }
            Outcome {
                applied: true,
                ledger_sequence,
                alerts,
                alerting,
                rejection: String::new(),
            }
        }
        1 => {
            let reason = reader
                .bytes("reason", shieldx_core::consensus::REQUEST_PAYLOAD_MAX)
                .map_err(e)?;
            Outcome {
                applied: false,
                ledger_sequence: 0,
                alerts: 0,
                alerting: Vec::new(),
                rejection: String::from_utf8_lossy(&reason).into_owned(),
            }
        }
        tag => return Err(format!("unknown result tag {tag}")),
    };
    if reader.remaining() != 0 {
        return Err(format!("{} trailing bytes", reader.remaining()));
    }
    Ok(outcome)
}

fn submit_response(answer: Answer) -> proto::SubmitResponse {
    let reply = &answer.reply;
    let outcome = decode_result(&reply.reply.result).unwrap_or_else(|e| Outcome {
        applied: false,
        ledger_sequence: 0,
        alerts: 0,
        alerting: Vec::new(),
        rejection: format!("undecodable result: {e}"),
    });
    let (first_event, events, alerts) = match answer.events {
        Some(range) => {
            let mine = range.first..range.first.saturating_add(range.count);
            let alerts = outcome
                .alerting
                .iter()
                .filter(|(index, _)| mine.contains(index))
                .map(|(_, alerts)| *alerts)
                .fold(0u32, u32::saturating_add);
            (range.first, range.count, alerts)
        }
        None => (0, 0, outcome.alerts),
    };
    proto::SubmitResponse {
        height: reply.reply.sequence,
        client: hex::encode(reply.reply.client.to_bytes()),
        request_id: reply.reply.request_id,
        applied: outcome.applied,
        ledger_sequence: outcome.ledger_sequence,
        alerts,
        rejection: outcome.rejection,
        result: reply.reply.result.clone(),
        reply_signature: hex::encode(reply.signature),
        replica: u32::from(reply.reply.replica),
        first_event,
        events,
    }
}

/// Waits for a write's answer.
async fn answer(
    rx: oneshot::Receiver<Result<Answer, Refusal>>,
    on_timeout: &str,
) -> Result<proto::SubmitResponse, Status> {
    match tokio::time::timeout(COMMIT_WAIT, rx).await {
        Ok(Ok(Ok(answer))) => Ok(submit_response(answer)),
        Ok(Ok(Err(Refusal::Rejected(reason)))) => Err(Status::failed_precondition(reason)),
        Ok(Ok(Err(Refusal::Busy(reason)))) => Err(Status::resource_exhausted(reason)),
        Ok(Err(_)) => Err(Status::unavailable("the node is shutting down")),
        Err(_) => Err(Status::deadline_exceeded(on_timeout.to_string())),
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
        answer(
            rx,
            "not committed in time; retry with the same request to get its result",
        )
        .await
    }
}

type EventStream =
    Pin<Box<dyn Stream<Item = Result<proto::StreamEventsResponse, Status>> + Send + 'static>>;

type NotificationStream =
    Pin<Box<dyn Stream<Item = Result<proto::Notification, Status>> + Send + 'static>>;

/// What a stream answers for a submission that did not commit.
fn refused(tag: u64, status: &Status) -> proto::StreamEventsResponse {
    proto::StreamEventsResponse {
        tag,
        outcome: Some(proto::stream_events_response::Outcome::Refused(
            proto::Refused {
                code: status.code() as i32,
                message: status.message().to_string(),
            },
        )),
    }
}

/// Checks one submission's events and hands them to the node's gateway;
/// the receiver gets the committed answer.
async fn submit_to_gateway(
    shared: &Shared,
    events: Vec<proto::SecurityEvent>,
) -> Result<oneshot::Receiver<Result<Answer, Refusal>>, Status> {
    if events.is_empty() {
        return Err(Status::invalid_argument("no events"));
    }
    if events.len() > EVENTS_PER_CALL_MAX {
        return Err(Status::invalid_argument(format!(
            "at most {EVENTS_PER_CALL_MAX} events per call"
        )));
    }
    let count = events.len() as u32;
    let mut labels = Vec::new();
    let mut encoded = Vec::new();
    for event in events {
        let event = event_of(event);
        if let Some((_, label)) = event.headers.iter().find(|(n, _)| n == "x-shieldx-label") {
            labels.push((event.id.clone(), label.eq_ignore_ascii_case("malicious")));
        }
        shieldx_core::ledger::encode_event(&event, &mut encoded);
    }
    let limit = shieldx_core::consensus::REQUEST_PAYLOAD_MAX - PAYLOAD_HEADER_BYTES;
    if encoded.len() > limit {
        return Err(Status::invalid_argument(format!(
            "the events encode to {} bytes; at most {limit} per call",
            encoded.len(),
        )));
    }
    let (tx, rx) = oneshot::channel();
    shared
        .inbox
        .send(Input::Events(Submission {
            events: encoded,
            count,
            labels,
            reply: tx,
            received: tokio::time::Instant::now(),
        }))
        .await
        .map_err(|_| Status::unavailable("the node is shutting down"))?;
    Ok(rx)
}

#[tonic::async_trait]
impl Client for ApiService {
    async fn submit_events(
        &self,
        request: GrpcRequest<proto::SubmitEventsRequest>,
    ) -> Result<Response<proto::SubmitResponse>, Status> {
        self.auth.bearer(request.metadata(), Role::Submit)?;
        let rx = submit_to_gateway(&self.shared, request.into_inner().events).await?;
        answer(rx, EVENTS_TIMEOUT).await.map(Response::new)
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        request: GrpcRequest<tonic::Streaming<proto::StreamEventsRequest>>,
    ) -> Result<Response<EventStream>, Status> {
        let principal = self.auth.bearer(request.metadata(), Role::Submit)?;
        let mut inbound = request.into_inner();
        let (out, answers) = tokio::sync::mpsc::channel(STREAM_IN_FLIGHT_MAX);
        let window = Arc::new(tokio::sync::Semaphore::new(STREAM_IN_FLIGHT_MAX));
        let shared = self.shared.clone();
        let auth = Arc::clone(&self.auth);
        tokio::spawn(async move {
            loop {
                // At most STREAM_IN_FLIGHT_MAX submissions wait for commit;
                // the sensor's further messages wait in its HTTP/2 window.
                let Ok(place) = Arc::clone(&window).acquire_owned().await else {
                    break;
                };
                let message = match inbound.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(status) => {
                        let _ = out.send(Err(status)).await;
                        break;
                    }
                };
                let tag = message.tag;
                let submitted = match auth.charge(&principal) {
                    Ok(()) => submit_to_gateway(&shared, message.events).await,
                    Err(status) => Err(status),
                };
                let rx = match submitted {
                    Ok(rx) => rx,
                    Err(status) => {
                        if out.send(Ok(refused(tag, &status))).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                let out = out.clone();
                tokio::spawn(async move {
                    let response = match answer(rx, EVENTS_TIMEOUT).await {
                        Ok(committed) => proto::StreamEventsResponse {
                            tag,
                            outcome: Some(proto::stream_events_response::Outcome::Committed(
                                committed,
                            )),
                        },
                        Err(status) => refused(tag, &status),
                    };
                    let _ = out.send(Ok(response)).await;
                    drop(place);
                });
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(answers),
        )))
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
    use super::*;
    use crate::node::SignedReply;
    use crate::node::gateway::EventRange;
    use shieldx_core::app::{Rejection, TxResult};
    use shieldx_core::consensus::Reply;
    use shieldx_core::crypto::ed25519::SigningKey;
    use shieldx_core::detect::AlertingEvent;

    #[test]
    fn replies_decode_to_what_the_application_encoded() {
        let applied = TxResult::Applied {
            sequence: 42,
            alerts: 3,
            alerting: vec![
                AlertingEvent {
                    index: 1,
                    alerts: 2,
                },
                AlertingEvent {
                    index: 4,
                    alerts: 1,
                },
            ],
        };
        assert_eq!(
            decode_result(&applied.encode()),
            Ok(Outcome {
                applied: true,
                ledger_sequence: 42,
                alerts: 3,
                alerting: vec![(1, 2), (4, 1)],
                rejection: String::new(),
            })
        );
        let rejected = TxResult::Rejected(Rejection::Malformed("bad".into()));
        let outcome = decode_result(&rejected.encode()).expect("decodes");
        assert!(!outcome.applied);
        assert!(outcome.rejection.contains("bad"), "{outcome:?}");
        assert!(decode_result(&[0, 1]).is_err());
        assert!(decode_result(&[7]).is_err());
        let mut trailing = applied.encode();
        trailing.push(0);
        assert!(decode_result(&trailing).is_err());
    }

    #[test]
    fn each_caller_is_told_the_alerts_of_its_own_events() {
        let result = TxResult::Applied {
            sequence: 9,
            alerts: 4,
            alerting: vec![
                AlertingEvent {
                    index: 0,
                    alerts: 1,
                },
                AlertingEvent {
                    index: 3,
                    alerts: 3,
                },
            ],
        };
        let reply = Arc::new(SignedReply {
            reply: Reply {
                view: 0,
                sequence: 5,
                client: SigningKey::from_slice(&[3; 32])
                    .expect("seed")
                    .verifying_key(),
                request_id: 1,
                result: result.encode(),
                replica: 2,
            },
            signature: [0; 64],
        });
        let of = |first, count| {
            submit_response(Answer {
                reply: Arc::clone(&reply),
                events: Some(EventRange { first, count }),
            })
        };
        // Events 0..2 belong to one caller, 2..5 to another, 5..6 to a third.
        assert_eq!(
            (of(0, 2).alerts, of(2, 3).alerts, of(5, 1).alerts),
            (1, 3, 0)
        );
        let response = of(2, 3);
        assert_eq!((response.first_event, response.events), (2, 3));
        assert_eq!(response.ledger_sequence, 9);
        assert_eq!(response.result, result.encode(), "the signed bytes, whole");
        let own = submit_response(Answer {
            reply,
            events: None,
        });
        assert_eq!((own.alerts, own.events), (4, 0));
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
