//! `StreamEvents` against one real in-process node: every submission of a
//! stream is answered once, under its own tag, with the alerts of its own
//! events even when the gateway combined it with others; a bad submission is
//! refused without ending the stream; a stream without a token is refused.

use std::collections::BTreeMap;

use shieldx_daemon::node::api;
use shieldx_daemon::node::local::LocalCluster;
use shieldx_daemon::proto::stream_events_response::Outcome;
use shieldx_daemon::proto::{GetStateRequest, SecurityEvent, StreamEventsRequest};
use tokio_stream::StreamExt as _;

const ATTACK: &str =
    "GET /item?id=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nhost: shop\r\n\r\n";
const BENIGN: &str = "GET /search?q=shoes HTTP/1.1\r\nhost: shop\r\n\r\n";

fn event(id: String, payload: &str) -> SecurityEvent {
    SecurityEvent {
        id,
        ts: 1_000,
        source: "203.0.113.9".into(),
        sensor: "edge-1".into(),
        kind: "http".into(),
        payload: payload.as_bytes().to_vec(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_submission_is_answered_under_its_tag_with_its_own_alerts() {
    let dir = std::env::temp_dir().join(format!("shieldx-stream-events-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = LocalCluster::start(1, &dir, |config| {
        // One request in consensus at a time: the rest of the stream queues
        // and is combined.
        config.api.gateway_requests_in_flight = 1;
    })
    .await
    .expect("a one-validator cluster starts");
    let tokens = cluster.testnet.tokens.clone();
    let mut client = api::connect(&cluster.api(0), &tokens.submit)
        .await
        .expect("connect");

    // Submission t carries (t % 3) + 1 events; the attack is its first event
    // when t is a multiple of 4, and the empty submission 13 is refused.
    let mut sent = Vec::new();
    let mut expected: BTreeMap<u64, (u32, bool)> = BTreeMap::new();
    for tag in 0..60u64 {
        let count = if tag == 13 { 0 } else { tag % 3 + 1 };
        let attack = tag % 4 == 0 && count > 0;
        let events = (0..count)
            .map(|i| {
                let payload = if attack && i == 0 { ATTACK } else { BENIGN };
                event(format!("t{tag}e{i}"), payload)
            })
            .collect();
        expected.insert(tag, (count as u32, attack));
        sent.push(StreamEventsRequest { tag, events });
    }
    let mut answers = client
        .stream_events(tokio_stream::iter(sent))
        .await
        .expect("the stream opens")
        .into_inner();
    let mut requests: BTreeMap<(String, u64), u32> = BTreeMap::new();
    let mut answered = BTreeMap::new();
    while let Some(answer) = answers.next().await {
        let answer = answer.expect("no stream error");
        let (count, attack) = expected[&answer.tag];
        match answer.outcome.expect("an outcome") {
            Outcome::Committed(response) => {
                assert!(response.applied, "{response:?}");
                assert_eq!(response.events, count, "tag {}", answer.tag);
                assert_eq!(
                    response.alerts > 0,
                    attack,
                    "tag {}: the alerts of its own events only",
                    answer.tag
                );
                *requests
                    .entry((response.client.clone(), response.request_id))
                    .or_default() += count;
            }
            Outcome::Refused(refused) => {
                assert_eq!(answer.tag, 13, "{refused:?}");
                assert_eq!(refused.code, tonic::Code::InvalidArgument as i32);
            }
        }
        assert!(
            answered.insert(answer.tag, ()).is_none(),
            "tag {} answered twice",
            answer.tag
        );
    }
    assert_eq!(answered.len(), expected.len(), "every submission answered");
    // Whatever the combining, the requests carried every event exactly once.
    let total: u32 = expected.values().map(|(count, _)| count).sum();
    assert_eq!(requests.values().sum::<u32>(), total);
    // With one request in consensus at a time, the submissions that arrive
    // while it commits (all but a few: the stream sends them at once) ride
    // together, so the alert checks above covered combined requests.
    assert!(
        requests.len() < answered.len() / 2,
        "{} requests for {} submissions",
        requests.len(),
        answered.len()
    );

    // Without a token, the stream itself is refused.
    let channel = tonic::transport::Endpoint::from_shared(cluster.api(0))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut anonymous = shieldx_daemon::proto::client_client::ClientClient::new(channel);
    let status = anonymous
        .stream_events(tokio_stream::iter(vec![StreamEventsRequest {
            tag: 1,
            events: vec![event("x".into(), BENIGN)],
        }]))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let mut reader = api::connect(&cluster.api(0), &tokens.read)
        .await
        .expect("connect");
    let state = reader
        .get_state(GetStateRequest::default())
        .await
        .expect("state")
        .into_inner();
    let alerts: u64 = state.alerts_by_severity.values().sum();
    let attacks = expected.values().filter(|(_, attack)| *attack).count() as u64;
    assert!(alerts >= attacks, "{alerts} alerts for {attacks} attacks");
    cluster.stop().await.expect("stops");
    let _ = std::fs::remove_dir_all(&dir);
}
