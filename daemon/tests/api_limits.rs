//! The client API under bad input, against one real in-process node:
//! malformed protobuf, oversized messages, malformed requests, wrong roles
//! and the rate limit each get a clear gRPC status, and none changes state.

use std::time::Duration;

use shieldx_daemon::node::api;
use shieldx_daemon::node::local::LocalCluster;
use shieldx_daemon::proto::{
    GetStateRequest, SecurityEvent, SubmitEventsRequest, SubmitTransactionRequest,
};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends raw bytes as the request message, so that a test can send bytes
/// that are not the protobuf the server expects.
#[derive(Debug, Default, Clone)]
struct RawCodec;

#[derive(Debug, Default, Clone)]
struct RawEncoder;

#[derive(Debug, Default, Clone)]
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf as _;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_statuses_and_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("shieldx-api-limits-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = LocalCluster::start(1, &dir, |config| {
        config.api.max_message_bytes = 64 << 10;
        config.api.requests_per_second = 1;
        config.api.burst = 40;
    })
    .await
    .expect("a one-validator cluster starts");
    let url = cluster.api(0);
    let tokens = cluster.testnet.tokens.clone();
    let mut admin = api::connect(&url, &tokens.admin).await.expect("connect");
    let before = admin
        .get_state(GetStateRequest::default())
        .await
        .expect("state")
        .into_inner();

    // Malformed protobuf: bytes that are not a SubmitEventsRequest.
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await.expect("ready");
    let mut request = tonic::Request::new(vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", tokens.admin).parse().expect("ascii"),
    );
    let status = raw
        .unary(
            request,
            "/shieldx.v1.Client/SubmitEvents".parse().expect("path"),
            RawCodec,
        )
        .await
        .expect_err("malformed protobuf is refused");
    assert!(
        status.message().to_lowercase().contains("decode"),
        "{status:?}"
    );

    // An oversized message.
    let huge = SubmitEventsRequest {
        events: vec![SecurityEvent {
            id: "huge".into(),
            payload: vec![b'a'; 128 << 10],
            ..Default::default()
        }],
    };
    let status = admin.submit_events(huge).await.expect_err("too large");
    assert!(
        matches!(
            status.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{status:?}"
    );

    // Well-formed protobuf carrying a request that does not decode.
    let status = admin
        .submit_transaction(SubmitTransactionRequest {
            request: vec![1, 2, 3],
        })
        .await
        .expect_err("garbage request");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let status = admin
        .submit_events(SubmitEventsRequest { events: vec![] })
        .await
        .expect_err("no events");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // Nothing of that reached the state.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = admin
        .get_state(GetStateRequest::default())
        .await
        .expect("state")
        .into_inner();
    assert_eq!(after.supply, before.supply);
    assert_eq!(after.alerts_by_severity, before.alerts_by_severity);

    // The rate limit: the bucket holds 40; a burst beyond it is refused.
    let mut reader = api::connect(&url, &tokens.read).await.expect("connect");
    let mut limited = 0;
    for _ in 0..60 {
        if let Err(status) = reader.get_state(GetStateRequest::default()).await {
            assert_eq!(status.code(), tonic::Code::ResourceExhausted);
            limited += 1;
        }
    }
    assert!(limited >= 15, "only {limited} calls were limited");

    cluster.stop().await.expect("clean stop");
    let _ = std::fs::remove_dir_all(&dir);
}
