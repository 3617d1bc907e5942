//! The gateway: how sensor events submitted with a bearer token become
//! consensus requests.
//!
//! A `SubmitEvents` call carries no client signature, so the node signs a
//! request for it with one of its *gateway keys*. Calls are combined: the
//! node keeps at most `api.gateway_requests_in_flight` gateway requests in
//! consensus, and the calls that arrive while they are in flight queue; when
//! one is answered, the core loop packs the events of the queued calls into
//! as few `SubmitEvents` requests as the request limits allow, signs each
//! request once, and answers every caller from that request's one committed
//! reply — the same signed reply bytes, plus where the caller's events sit
//! in the request. A request costs one signature, one verification at each
//! validator, one reply signature and its share of a batch however many
//! calls it carries; that is the amortisation a Narwhal worker's batch gives
//! its transactions. The batching clocks itself: under light load a call
//! finds a free place and goes alone at once, and the heavier the load, the
//! more calls each request carries.
//!
//! Invariants (tested below):
//! - a caller's events stay contiguous and in their order, inside one
//!   request; calls are packed in arrival order;
//! - a request never exceeds [`REQUEST_PAYLOAD_MAX`] bytes or
//!   [`EVENTS_PER_TX_MAX`] events (the API refuses a call that alone would);
//! - each gateway key has at most [`CLIENT_WINDOW`] requests in flight and
//!   its request ids only increase, so no request falls out of its key's
//!   window while it waits;
//! - what is queued is bounded ([`QUEUED_BYTES_MAX`]); a call beyond that is
//!   refused at once rather than left to time out.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use shieldx_core::app::EVENTS_PER_TX_MAX;
use shieldx_core::consensus::{CLIENT_WINDOW, REQUEST_PAYLOAD_MAX, Request};
use shieldx_core::crypto::ed25519::SigningKey;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::SignedReply;
use super::keys::NodeKeys;

/// Gateway keys per node.
pub const GATEWAY_KEYS: u32 = 64;
/// Bytes of submitted events a node queues for free request slots.
pub const QUEUED_BYTES_MAX: usize = 64 << 20;
/// The bytes of a `SubmitEvents` payload before its events: the transaction
/// tag, the time and the event count.
pub const PAYLOAD_HEADER_BYTES: usize = 1 + 8 + 4;
/// The `SubmitEvents` transaction tag (`app::Transaction`'s encoding).
const SUBMIT_EVENTS_TAG: u8 = 1;

/// Where one call's events sit in the request that carried them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRange {
    /// Position of the call's first event.
    pub first: u32,
    /// How many events the call submitted.
    pub count: u32,
}

/// A committed answer to one call.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The executing node's signed reply to the request.
    pub reply: Arc<SignedReply>,
    /// The call's events in that request; `None` when the request is the
    /// caller's own (`SubmitTransaction`).
    pub events: Option<EventRange>,
}

/// Why a call got no committed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Consensus refused the request (the reason).
    Rejected(String),
    /// The node is at capacity; retry later.
    Busy(String),
}

/// Where a call's answer goes.
pub type AnswerSender = oneshot::Sender<Result<Answer, Refusal>>;

/// One `SubmitEvents` call, waiting to be combined.
#[derive(Debug)]
pub struct Submission {
    /// Its events, each encoded as the ledger encodes events, back to back.
    pub events: Vec<u8>,
    /// How many events that is.
    pub count: u32,
    /// Labels the sensor put on events (event id, malicious?), for the
    /// detection quality metrics.
    pub labels: Vec<(String, bool)>,
    /// Where the answer goes.
    pub reply: AnswerSender,
    /// When the API received the call.
    pub received: Instant,
}

/// A caller waiting for a request's reply.
#[derive(Debug)]
pub struct Caller {
    /// Where the answer goes.
    pub reply: AnswerSender,
    /// Its events in the request.
    pub events: Option<EventRange>,
    /// When the API received the call.
    pub received: Instant,
}

struct Slot {
    key: SigningKey,
    next_id: u64,
    in_flight: u64,
}

/// The gateway keys, their windows, and the calls queued for them.
pub struct Gateway {
    slots: Vec<Slot>,
    /// Requests in flight, over all keys, and the most allowed.
    in_flight: usize,
    in_flight_max: usize,
    by_client: BTreeMap<[u8; 32], usize>,
    queue: VecDeque<Submission>,
    queued_bytes: usize,
    next: usize,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("keys", &self.slots.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The node's gateway; request ids start at `first_id` (wall-clock
    /// microseconds, so that they keep increasing across restarts).
    /// At most `in_flight_max` (at least one) requests are in consensus at
    /// once; calls arriving meanwhile queue and ride in the next request.
    pub fn new(keys: &NodeKeys, first_id: u64, in_flight_max: usize) -> Gateway {
        Gateway::with_keys(
            (0..GATEWAY_KEYS).map(|i| keys.gateway_key(i)),
            first_id,
            in_flight_max,
        )
    }

    fn with_keys(
        keys: impl IntoIterator<Item = SigningKey>,
        first_id: u64,
        in_flight_max: usize,
    ) -> Gateway {
        let slots: Vec<Slot> = keys
            .into_iter()
            .map(|key| Slot {
                key,
                next_id: first_id,
                in_flight: 0,
            })
            .collect();
        let by_client = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.verifying_key().to_bytes(), i))
            .collect();
        Gateway {
            slots,
            in_flight: 0,
            in_flight_max: in_flight_max.max(1),
            by_client,
            queue: VecDeque::new(),
            queued_bytes: 0,
            next: 0,
        }
    }

    /// Queues a call; gives it back when the queue is full.
    pub fn enqueue(&mut self, submission: Submission) -> Result<(), Box<Submission>> {
        if self.queued_bytes + submission.events.len() > QUEUED_BYTES_MAX {
            return Err(Box::new(submission));
        }
        self.queued_bytes += submission.events.len();
        self.queue.push_back(submission);
        Ok(())
    }

    /// Whether a queued call could be combined now.
    pub fn ready(&self) -> bool {
        !self.queue.is_empty()
            && self.in_flight < self.in_flight_max
            && self.slots.iter().any(|s| s.in_flight < CLIENT_WINDOW)
    }

    /// Whether `client` is one of the gateway keys.
    pub fn is_gateway(&self, client: &[u8; 32]) -> bool {
        self.by_client.contains_key(client)
    }

    /// Combines queued calls into signed requests at `time_ms`, as far as the
    /// keys' windows allow; each request comes with its callers.
    pub fn combine(&mut self, chain_id: &[u8], time_ms: u64) -> Vec<(Request, Vec<Caller>)> {
        let mut combined = Vec::new();
        while !self.queue.is_empty() && self.in_flight < self.in_flight_max {
            let Some(slot) = (0..self.slots.len())
                .map(|k| (self.next + k) % self.slots.len())
                .find(|&i| self.slots[i].in_flight < CLIENT_WINDOW)
            else {
                break;
            };
            self.next = (slot + 1) % self.slots.len();
            let mut payload = Vec::with_capacity(REQUEST_PAYLOAD_MAX.min(
                PAYLOAD_HEADER_BYTES + self.queue.iter().map(|s| s.events.len()).sum::<usize>(),
            ));
            payload.push(SUBMIT_EVENTS_TAG);
            payload.extend_from_slice(&time_ms.to_le_bytes());
            payload.extend_from_slice(&0u32.to_le_bytes());
            let mut count = 0u32;
            let mut callers = Vec::new();
            while let Some(next) = self.queue.front() {
                let fits = payload.len() + next.events.len() <= REQUEST_PAYLOAD_MAX
                    && count as usize + next.count as usize <= EVENTS_PER_TX_MAX;
                if !fits && !callers.is_empty() {
                    break;
                }
                let Some(submission) = self.queue.pop_front() else {
                    break;
                };
                self.queued_bytes -= submission.events.len();
                payload.extend_from_slice(&submission.events);
                callers.push(Caller {
                    reply: submission.reply,
                    events: Some(EventRange {
                        first: count,
                        count: submission.count,
                    }),
                    received: submission.received,
                });
                count += submission.count;
            }
            payload[9..PAYLOAD_HEADER_BYTES].copy_from_slice(&count.to_le_bytes());
            let slot = &mut self.slots[slot];
            let request = Request::sign(chain_id, &slot.key, slot.next_id, payload);
            slot.next_id += 1;
            slot.in_flight += 1;
            self.in_flight += 1;
            combined.push((request, callers));
        }
        combined
    }

    /// A request of gateway key `client` was answered, refused or abandoned:
    /// its place in the key's window is free.
    pub fn finished(&mut self, client: &[u8; 32]) {
        if let Some(&i) = self.by_client.get(client) {
            let slot = &mut self.slots[i];
            if slot.in_flight > 0 {
                slot.in_flight -= 1;
                self.in_flight -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shieldx_core::app::Transaction;
    use shieldx_core::codec::Encode as _;
    use shieldx_core::detect::Event;

    const CHAIN: &[u8] = b"shieldx-gateway-test";

    fn gateway(keys: u8, in_flight_max: usize) -> Gateway {
        Gateway::with_keys(
            (0..keys).map(|i| SigningKey::from_slice(&[i + 1; 32]).expect("seed")),
            1_000,
            in_flight_max,
        )
    }

    fn event(id: &str, payload_bytes: usize) -> Event {
        Event {
            id: id.into(),
            kind: "http".into(),
            payload: vec![b'a'; payload_bytes],
            ..Event::default()
        }
    }

    fn submission(events: &[Event]) -> (Submission, oneshot::Receiver<Result<Answer, Refusal>>) {
        let (tx, rx) = oneshot::channel();
        let mut bytes = Vec::new();
        events
            .iter()
            .for_each(|e| shieldx_core::ledger::encode_event(e, &mut bytes));
        (
            Submission {
                events: bytes,
                count: events.len() as u32,
                labels: Vec::new(),
                reply: tx,
                received: Instant::now(),
            },
            rx,
        )
    }

    #[test]
    fn calls_are_combined_in_order_into_requests_that_decode_to_their_events() {
        let mut gateway = gateway(2, 1);
        let calls: Vec<Vec<Event>> = (0..5)
            .map(|c| (0..=c).map(|i| event(&format!("c{c}e{i}"), 40)).collect())
            .collect();
        let mut receivers = Vec::new();
        for call in &calls {
            let (s, rx) = submission(call);
            gateway.enqueue(s).expect("room");
            receivers.push(rx);
        }
        assert!(gateway.ready());
        let combined = gateway.combine(CHAIN, 77);
        assert_eq!(combined.len(), 1, "five small calls fit one request");
        let (request, callers) = &combined[0];
        assert_eq!(request.verify(CHAIN), Ok(()));
        let Ok(Transaction::SubmitEvents { time_ms, events }) =
            Transaction::decode_exact(&request.payload)
        else {
            panic!("a SubmitEvents payload")
        };
        assert_eq!(time_ms, 77);
        assert_eq!(events, calls.concat());
        let ranges: Vec<EventRange> = callers.iter().filter_map(|c| c.events).collect();
        assert_eq!(
            ranges,
            [(0, 1), (1, 2), (3, 3), (6, 4), (10, 5)]
                .map(|(first, count)| EventRange { first, count })
        );
        // The payload is exactly the transaction's own encoding.
        let again = Transaction::SubmitEvents {
            time_ms: 77,
            events: calls.concat(),
        };
        assert_eq!(request.payload, again.to_encoded());
        assert!(!gateway.ready(), "nothing left");
    }

    #[test]
    fn requests_respect_the_payload_limit_and_keep_each_call_whole() {
        let mut gateway = gateway(4, 8);
        // Each call is a little over a quarter of the limit: three per request.
        let big = REQUEST_PAYLOAD_MAX / 4 + 100;
        for c in 0..7 {
            let (s, _) = submission(&[event(&format!("big{c}"), big)]);
            gateway.enqueue(s).expect("room");
        }
        let combined = gateway.combine(CHAIN, 1);
        let sizes: Vec<usize> = combined.iter().map(|(_, c)| c.len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        for (request, callers) in &combined {
            assert!(request.payload.len() <= REQUEST_PAYLOAD_MAX);
            let Ok(Transaction::SubmitEvents { events, .. }) =
                Transaction::decode_exact(&request.payload)
            else {
                panic!("decodes")
            };
            assert_eq!(events.len(), callers.len());
        }
    }

    #[test]
    fn each_key_keeps_at_most_its_window_in_flight_and_ids_increase() {
        let mut gateway = gateway(2, usize::MAX);
        let mut ids: BTreeMap<[u8; 32], Vec<u64>> = BTreeMap::new();
        let mut in_flight = Vec::new();
        for round in 0..3 * CLIENT_WINDOW {
            let (s, _) = submission(&[event(&format!("r{round}"), 10)]);
            gateway.enqueue(s).expect("room");
            for (request, _) in gateway.combine(CHAIN, round) {
                ids.entry(request.client.to_bytes())
                    .or_default()
                    .push(request.request_id);
                in_flight.push(request.client.to_bytes());
            }
        }
        // Two keys, each full: the rest stays queued.
        assert_eq!(in_flight.len() as u64, 2 * CLIENT_WINDOW);
        assert!(!gateway.ready());
        assert_eq!(gateway.queue.len() as u64, CLIENT_WINDOW);
        for list in ids.values() {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
        // One answer frees one place, and the queue moves.
        gateway.finished(&in_flight[0]);
        assert!(gateway.ready());
        let combined = gateway.combine(CHAIN, 9);
        assert_eq!(combined.len(), 1);
        assert_eq!(combined[0].0.client.to_bytes(), in_flight[0]);
        assert_eq!(
            combined[0].1.len() as u64,
            CLIENT_WINDOW,
            "all queued calls, one request"
        );
        // Keys that are not the gateway's are ignored.
        gateway.finished(&[9; 32]);
        assert!(!gateway.ready());
    }

    #[test]
    fn calls_arriving_while_the_requests_are_in_flight_ride_in_the_next_one() {
        let mut gateway = gateway(8, 2);
        let mut sent = Vec::new();
        let round = |gateway: &mut Gateway, calls: usize| {
            for c in 0..calls {
                let (s, _) = submission(&[event(&format!("c{c}"), 10)]);
                gateway.enqueue(s).expect("room");
            }
            gateway.combine(CHAIN, 1)
        };
        // Light load: each call goes at once, alone, while places are free.
        for _ in 0..2 {
            let combined = round(&mut gateway, 1);
            assert_eq!(combined.len(), 1);
            assert_eq!(combined[0].1.len(), 1);
            sent.push(combined[0].0.client.to_bytes());
        }
        // Both places taken: ten calls wait...
        assert!(round(&mut gateway, 10).is_empty());
        assert!(!gateway.ready());
        // ...and one answer sends all ten in one request.
        gateway.finished(&sent[0]);
        let combined = gateway.combine(CHAIN, 2);
        assert_eq!(combined.len(), 1);
        assert_eq!(combined[0].1.len(), 10);
        assert!(!gateway.ready());
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut gateway = gateway(1, 1);
        let mut queued = 0;
        loop {
            let (s, _) = submission(&[event("big", REQUEST_PAYLOAD_MAX - 400)]);
            match gateway.enqueue(s) {
                Ok(()) => queued += 1,
                Err(refused) => {
                    assert_eq!(refused.count, 1);
                    break;
                }
            }
        }
        assert!(queued * (REQUEST_PAYLOAD_MAX - 400) <= QUEUED_BYTES_MAX);
        assert!((queued + 1) * (REQUEST_PAYLOAD_MAX - 300) > QUEUED_BYTES_MAX);
    }
}
