//! Handler-level tests of the replica, over a small in-process network with
//! virtual time. (The simulator in `sim/` is the full chaos driver; this harness
//! only delivers messages with a fixed delay and lets a test drop or inspect them.)

use std::collections::BTreeMap;

use super::*;
use crate::codec::Encode as _;
use crate::consensus::EvidenceError;
use crate::consensus::types::{RoundRobin, Validator};
use crate::crypto::bls::BlsSecretKey;
use crate::crypto::ed25519::SigningKey;

const CHAIN: &[u8] = b"shieldx-test";
const DELAY_NS: u64 = 1_000_000;

/// A deterministic application: a running hash of everything executed.
#[derive(Debug, Default)]
struct Ledger {
    state: Digest,
    executed: Vec<(Sequence, u64)>,
}

impl Application for Ledger {
    fn execute(&mut self, sequence: Sequence, request: &Request) -> Vec<u8> {
        self.state = Digest::of_parts("test ledger", &[self.state.as_bytes(), &request.payload]);
        self.executed.push((sequence, request.request_id));
        sequence.to_le_bytes().to_vec()
    }

    fn state_digest(&self) -> Digest {
        self.state
    }

    fn snapshot(&self) -> Vec<u8> {
        self.state.to_bytes().to_vec()
    }

    fn restore(&mut self, snapshot: &[u8], expected: Digest) -> Result<(), RestoreError> {
        let state =
            Digest::from_slice(snapshot).map_err(|e| RestoreError::Malformed(e.to_string()))?;
        if state != expected {
            return Err(RestoreError::DigestMismatch {
                expected,
                actual: state,
            });
        }
        self.state = state;
        Ok(())
    }
}

fn keys(index: u16) -> ReplicaKeys {
    let seed = [index as u8 + 1; 32];
    ReplicaKeys {
        index,
        identity: SigningKey::from_slice(&seed).expect("seed"),
        vote_key: BlsSecretKey::key_gen(&seed, b"").expect("ikm"),
        vrf_key: VrfSecretKey::from_slice(&seed).expect("seed"),
    }
}

fn validator_set(n: u16) -> ValidatorSet {
    ValidatorSet::new(
        (0..n)
            .map(|i| {
                let k = keys(i);
                Validator {
                    identity: k.identity.verifying_key(),
                    vote_key: k.vote_key.public_key(),
                    vrf_key: k.vrf_key.public_key(),
                    power: 1,
                }
            })
            .collect(),
    )
    .expect("valid set")
}

type Filter = Box<dyn FnMut(ReplicaIndex, ReplicaIndex, &Message) -> bool>;

struct Cluster {
    replicas: Vec<Replica<Ledger>>,
    now_ns: u64,
    in_flight: BTreeMap<(u64, u64), (ReplicaIndex, ReplicaIndex, Message)>,
    next_id: u64,
    crashed: Vec<bool>,
    /// Returns false to drop a message (from, to, message).
    filter: Filter,
    committed: Vec<Vec<(Sequence, Digest, u64)>>,
    /// The leader proof each batch committed with, per sequence.
    leader_proofs: BTreeMap<Sequence, Option<LeaderProof>>,
    replies: Vec<Reply>,
    evidence: Vec<Evidence>,
    /// Every certified batch each replica committed (what a driver stores).
    blocks: Vec<BTreeMap<Sequence, CertifiedBatch>>,
    pre_prepare_sent_ns: BTreeMap<Sequence, u64>,
}

impl Cluster {
    fn new(n: u16, configure: impl Fn(&mut ReplicaConfig)) -> Cluster {
        let validators = validator_set(n);
        let replicas = (0..n)
            .map(|i| {
                let mut config = ReplicaConfig::new(CHAIN, validators.clone());
                config.batch_timeout_ns = 2 * DELAY_NS;
                config.request_timeout_ns = 50 * DELAY_NS;
                config.status_interval_ns = 20 * DELAY_NS;
                configure(&mut config);
                Replica::new(config, keys(i), Box::new(RoundRobin), Ledger::default(), 0)
                    .expect("valid replica")
            })
            .collect();
        Cluster {
            replicas,
            now_ns: 0,
            in_flight: BTreeMap::new(),
            next_id: 0,
            crashed: vec![false; usize::from(n)],
            filter: Box::new(|_, _, _| true),
            committed: vec![Vec::new(); usize::from(n)],
            leader_proofs: BTreeMap::new(),
            replies: Vec::new(),
            evidence: Vec::new(),
            blocks: vec![BTreeMap::new(); usize::from(n)],
            pre_prepare_sent_ns: BTreeMap::new(),
        }
    }

    fn n(&self) -> u16 {
        self.replicas.len() as u16
    }

    fn drain(&mut self, index: ReplicaIndex) {
        while let Some(output) = self.replicas[usize::from(index)].poll_output() {
            match output {
                Output::Send { to, message } => {
                    if let Message::PrePrepare(header, _) = &message {
                        self.pre_prepare_sent_ns
                            .entry(header.body.sequence)
                            .or_insert(self.now_ns);
                    }
                    let targets: Vec<ReplicaIndex> = match to {
                        Target::All => (0..self.n()).filter(|t| *t != index).collect(),
                        Target::Replica(t) => vec![t],
                    };
                    for target in targets {
                        if (self.filter)(index, target, &message) {
                            self.next_id += 1;
                            self.in_flight.insert(
                                (self.now_ns + DELAY_NS, self.next_id),
                                (index, target, message.clone()),
                            );
                        }
                    }
                }
                Output::Committed(committed) => {
                    self.leader_proofs
                        .insert(committed.sequence, committed.batch.leader_proof);
                    self.committed[usize::from(index)].push((
                        committed.sequence,
                        committed.certificate.digest,
                        self.now_ns,
                    ));
                    committed
                        .certificate
                        .verify(CHAIN, &self.replicas[0].config.validators)
                        .expect("certificates verify");
                    self.blocks[usize::from(index)].insert(
                        committed.sequence,
                        CertifiedBatch {
                            batch: committed.batch,
                            certificate: committed.certificate,
                        },
                    );
                }
                Output::Reply(reply) => self.replies.push(reply),
                Output::Evidence(evidence) => self.evidence.push(evidence),
                _ => {}
            }
        }
    }

    fn submit(&mut self, client: &SigningKey, request_id: u64, payload: &[u8]) {
        let request = Request::sign(CHAIN, client, request_id, payload.to_vec());
        for i in 0..self.n() {
            if !self.crashed[usize::from(i)] {
                let _ = self.replicas[usize::from(i)].handle_request(self.now_ns, request.clone());
                self.drain(i);
            }
        }
    }

    /// Runs until `until_ns`, delivering messages and firing timers.
    fn run_until(&mut self, until_ns: u64) {
        loop {
            let next_message = self.in_flight.keys().next().map(|(t, _)| *t);
            let next_timer = (0..self.n())
                .filter(|i| !self.crashed[usize::from(*i)])
                .map(|i| self.replicas[usize::from(i)].poll_timeout())
                .min();
            let next = [next_message, next_timer].into_iter().flatten().min();
            let Some(next) = next.filter(|t| *t <= until_ns) else {
                self.now_ns = until_ns;
                return;
            };
            self.now_ns = self.now_ns.max(next);
            if next_message == Some(next) {
                let key = *self.in_flight.keys().next().expect("non-empty");
                let (from, to, message) = self.in_flight.remove(&key).expect("present");
                if !self.crashed[usize::from(to)] {
                    let kind = message.kind();
                    let result =
                        self.replicas[usize::from(to)].handle_message(self.now_ns, from, message);
                    if std::env::var("TRACE").is_ok() {
                        eprintln!(
                            "t={} {from}->{to} {kind}: {result:?}",
                            self.now_ns / DELAY_NS
                        );
                    }
                    self.drain(to);
                }
            } else {
                for i in 0..self.n() {
                    if !self.crashed[usize::from(i)]
                        && self.replicas[usize::from(i)].poll_timeout() <= self.now_ns
                    {
                        self.replicas[usize::from(i)].handle_timeout(self.now_ns);
                        self.drain(i);
                    }
                }
            }
        }
    }

    fn assert_agreement(&self) {
        let mut by_sequence: BTreeMap<Sequence, Digest> = BTreeMap::new();
        for log in &self.committed {
            for (sequence, digest, _) in log {
                let previous = by_sequence.insert(*sequence, *digest);
                assert!(
                    previous.is_none_or(|p| p == *digest),
                    "disagreement at {sequence}"
                );
            }
        }
    }
}

fn client(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[100 + seed; 32]).expect("seed")
}

#[test]
fn normal_case_commits_executes_and_replies() {
    let mut cluster = Cluster::new(4, |_| {});
    let alice = client(1);
    for id in 1..=10 {
        cluster.submit(&alice, id, format!("event {id}").as_bytes());
    }
    cluster.run_until(100 * DELAY_NS);
    cluster.assert_agreement();
    for replica in &cluster.replicas {
        let ids: Vec<u64> = replica.app().executed.iter().map(|(_, id)| *id).collect();
        assert_eq!(
            ids,
            (1..=10).collect::<Vec<_>>(),
            "replica {}",
            replica.index()
        );
        assert_eq!(replica.pending_requests(), 0);
    }
    // Four replies per request; signed at the edge, each verifies, and a
    // signature from another replica does not.
    assert_eq!(cluster.replies.len(), 40);
    let validators = validator_set(4);
    for reply in &cluster.replies {
        let signature = reply.sign(CHAIN, &keys(reply.replica).identity);
        assert_eq!(reply.verify(CHAIN, &validators, &signature), Ok(()));
        let wrong = reply.sign(CHAIN, &keys((reply.replica + 1) % 4).identity);
        assert!(reply.verify(CHAIN, &validators, &wrong).is_err());
    }
    let states: Vec<Digest> = cluster
        .replicas
        .iter()
        .map(|r| r.app().state_digest())
        .collect();
    assert!(states.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn fault_free_commit_takes_exactly_three_message_delays() {
    let mut cluster = Cluster::new(4, |c| c.batch_requests_max = 1);
    let alice = client(2);
    cluster.submit(&alice, 1, b"one");
    cluster.run_until(30 * DELAY_NS);
    let sent = cluster.pre_prepare_sent_ns[&1];
    for (index, log) in cluster.committed.iter().enumerate() {
        let (sequence, _, at) = log[0];
        assert_eq!(sequence, 1);
        assert_eq!(
            at - sent,
            3 * DELAY_NS,
            "replica {index}: pre-prepare to committed-local"
        );
    }
}

#[test]
fn retried_request_gets_the_cached_reply_and_executes_once() {
    let mut cluster = Cluster::new(4, |_| {});
    let alice = client(3);
    cluster.submit(&alice, 1, b"pay");
    cluster.run_until(50 * DELAY_NS);
    let before = cluster.replies.len();
    cluster.submit(&alice, 1, b"pay");
    cluster.run_until(100 * DELAY_NS);
    assert_eq!(
        cluster.replies.len(),
        before + 4,
        "each replica re-sends its cached reply"
    );
    for replica in &cluster.replicas {
        assert_eq!(replica.app().executed.len(), 1);
        assert_eq!(replica.rejections().get("already_executed"), 1);
    }
}

#[test]
fn a_pipelining_client_executes_out_of_order_within_its_window() {
    let mut cluster = Cluster::new(4, |_| {});
    let alice = client(3);
    // Request 2 overtakes request 1 (say, 1 was lost on its way).
    cluster.submit(&alice, 2, b"second");
    cluster.run_until(50 * DELAY_NS);
    cluster.submit(&alice, 1, b"first");
    cluster.run_until(100 * DELAY_NS);
    for replica in &cluster.replicas {
        let ids: Vec<u64> = replica.app().executed.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids, vec![2, 1], "both execute, once each");
    }
    // Retrying either gets its own cached reply.
    let before = cluster.replies.len();
    cluster.submit(&alice, 1, b"first");
    cluster.run_until(150 * DELAY_NS);
    let resent: Vec<&Reply> = cluster.replies[before..].iter().collect();
    assert_eq!(resent.len(), 4);
    assert!(resent.iter().all(|r| r.request_id == 1));
    // Far ahead, then an id that fell out of the window: refused, never run.
    let far = 2 + CLIENT_WINDOW + 1;
    cluster.submit(&alice, far, b"far");
    cluster.run_until(200 * DELAY_NS);
    cluster.submit(&alice, 3, b"too old");
    cluster.run_until(250 * DELAY_NS);
    for replica in &cluster.replicas {
        let ids: Vec<u64> = replica.app().executed.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids, vec![2, 1, far]);
        assert_eq!(replica.rejections().get("outside_client_window"), 1);
    }
}

#[test]
fn checkpoint_batches_carry_verified_vrf_proofs_that_advance_the_beacon() {
    let mut cluster = Cluster::new(4, |config| {
        config.checkpoint_interval = 2;
        config.window = 4;
        config.batch_requests_max = 1;
    });
    let alice = client(3);
    let genesis = cluster.replicas[0].schedule_anchor().seed;
    for id in 1..=6 {
        cluster.submit(&alice, id, format!("r{id}").as_bytes());
        cluster.run_until(id * 40 * DELAY_NS);
    }
    cluster.run_until(400 * DELAY_NS);
    cluster.assert_agreement();
    let anchors: Vec<&ScheduleAnchor> = cluster
        .replicas
        .iter()
        .map(|r| r.schedule_anchor())
        .collect();
    assert!(anchors[0].sequence >= 4, "checkpoints became stable");
    assert!(
        anchors.iter().all(|a| *a == anchors[0]),
        "one anchor everywhere"
    );
    // Recompute the beacon from the committed proofs: every checkpoint batch
    // carried a valid proof from its proposer, so no fallback was mixed.
    let mut seed = genesis;
    let validators = cluster.replicas[0].config.validators.clone();
    for sequence in (2..=anchors[0].sequence).step_by(2) {
        let proof = cluster.leader_proofs[&sequence]
            .expect("a checkpoint batch carries its proposer's proof");
        let key = &validators.get(proof.proposer).expect("validator").vrf_key;
        let beta = key
            .verify(
                &staking::vrf_alpha(CHAIN, &seed, sequence / 2),
                &proof.proof,
            )
            .expect("the committed proof verifies");
        seed = staking::next_seed(&seed, sequence / 2, Some(&beta));
    }
    assert_eq!(anchors[0].seed, seed, "the beacon mixed every proof");
    assert!(
        cluster
            .leader_proofs
            .iter()
            .all(|(sequence, proof)| proof.is_some() == sequence.is_multiple_of(2)),
        "proofs ride on checkpoint batches only"
    );
    assert_ne!(seed, genesis);
}

#[test]
fn checkpoints_become_stable_and_bound_the_log() {
    let mut cluster = Cluster::new(4, |c| {
        c.checkpoint_interval = 5;
        c.window = 10;
        c.batch_requests_max = 1;
    });
    let alice = client(4);
    for id in 1..=60 {
        cluster.submit(&alice, id, &id.to_le_bytes());
        cluster.run_until(cluster.now_ns + 5 * DELAY_NS);
        for replica in &cluster.replicas {
            assert!(replica.log_len() <= 10, "log exceeds the window");
        }
    }
    cluster.run_until(cluster.now_ns + 100 * DELAY_NS);
    cluster.assert_agreement();
    for replica in &cluster.replicas {
        assert_eq!(replica.last_executed(), 60);
        assert_eq!(replica.stable_checkpoint().sequence, 60);
        assert!(replica.log_len() <= 10);
    }
}

/// A Byzantine validator floods a backup with everything a peer can send,
/// within the rules of the wire: prepares and commits for every slot of the
/// window with many digests each, CHECKPOINT votes for every checkpoint it
/// may name, VIEW-CHANGEs for every view it may name, status and state
/// requests, and batch traffic nobody asked for. The cluster keeps
/// committing, and after every round each of the backup's collections is
/// within a bound set by the window, the validator count, configuration or
/// a constant (`Footprint`), however many rounds pass.
#[test]
fn a_flooding_validator_cannot_grow_any_collection_past_its_bound() {
    const K: u64 = 5;
    const L: u64 = 10;
    const DIGESTS_PER_SLOT: u8 = 3;
    let mut cluster = Cluster::new(4, |c| {
        c.checkpoint_interval = K;
        c.window = L;
        c.batch_requests_max = 1;
        c.pending_requests_max = 64;
        c.clients_max = 8;
    });
    let (target, attacker) = (1, 3);
    let byzantine = keys(attacker);
    let alice = client(4);
    for round in 1..=12u64 {
        cluster.submit(&alice, round, &round.to_le_bytes());
        cluster.run_until(cluster.now_ns + 6 * DELAY_NS);
        let now = cluster.now_ns;
        let replica = &mut cluster.replicas[usize::from(target)];
        let (h, view) = (replica.stable_checkpoint().sequence, replica.view());
        let digest = |sequence: u64, d: u8| {
            Digest::of_parts(
                "flood",
                &[&round.to_le_bytes(), &sequence.to_le_bytes(), &[d]],
            )
        };
        let mut flood = Vec::new();
        for sequence in h + 1..=h + L {
            for d in 0..DIGESTS_PER_SLOT {
                let vote = Vote {
                    view,
                    sequence,
                    digest: digest(sequence, d),
                };
                flood.push(Message::Prepare(Signed::sign(
                    CHAIN,
                    attacker,
                    &byzantine.identity,
                    vote,
                )));
                flood.push(Message::Commit(CommitVote::sign(
                    CHAIN,
                    attacker,
                    &byzantine.vote_key,
                    view,
                    sequence,
                    digest(sequence, d),
                )));
                flood.push(Message::Batch(BatchFetch::Request(digest(sequence, d))));
            }
        }
        for sequence in (h + K..=h + 3 * L).step_by(K as usize) {
            let vote = CheckpointVote {
                sequence,
                state_digest: digest(sequence, 0),
            };
            flood.push(Message::Checkpoint(Signed::sign(
                CHAIN,
                attacker,
                &byzantine.identity,
                vote,
            )));
        }
        for new_view in view + 1..=view + VIEW_AHEAD_MAX + 4 {
            let body = ViewChange {
                new_view,
                checkpoint: replica.stable_checkpoint().clone(),
                prepared: Vec::new(),
            };
            flood.push(Message::ViewChange(Signed::sign(
                CHAIN,
                attacker,
                &byzantine.identity,
                body,
            )));
        }
        let status = Status {
            view,
            changing_view: false,
            last_executed: 0,
            stable_checkpoint: 0,
        };
        flood.push(Message::Status(Signed::sign(
            CHAIN,
            attacker,
            &byzantine.identity,
            status,
        )));
        flood.push(Message::StateRequest(0));
        for _ in 0..40 {
            flood.push(Message::SnapshotRequest {
                sequence: h,
                offset: 0,
            });
        }
        flood.push(Message::SnapshotPiece(Box::new(SnapshotPiece {
            checkpoint: replica.stable_checkpoint().clone(),
            total: 1 << 20,
            offset: 0,
            bytes: vec![0; 64],
            batches: Vec::new(),
        })));
        for message in flood {
            let _ = replica.handle_message(now, attacker, message);
        }
        cluster.drain(target);

        let f = cluster.replicas[usize::from(target)].footprint();
        let (n, l, k) = (4usize, L as usize, K as usize);
        let bounds = [
            ("slots", f.slots, l),
            ("batches", f.batches, 2 * l),
            ("wanted batches", f.wanted_batches, WANTED_BATCHES_MAX),
            ("prepared", f.prepared, l),
            ("checkpoint votes", f.checkpoint_votes, n * (3 * l / k + 1)),
            ("own checkpoints", f.own_checkpoints, l / k + 1),
            ("snapshots", f.checkpoint_snapshots, l / k + 1),
            ("anchors", f.anchors, l / k + 1),
            ("state served", f.state_served, n),
            ("pieces served", f.pieces_served, n),
            ("snapshot assembly bytes", f.snapshot_assembly_bytes, 0),
            (
                "view changes",
                f.view_changes,
                n * (VIEW_AHEAD_MAX as usize + 1),
            ),
            ("pending", f.pending, 3 * 64),
            ("proposed", f.proposed, l),
            ("clients", f.clients, 8),
            ("signed", f.signed, 3 * l),
            ("seen", f.seen, n * 3 * l),
            ("evidence", f.evidence, 3 * l),
            ("forwarded", f.forwarded, n * 3 * l * (n + 1)),
            ("outputs", f.outputs, 0),
        ];
        for (name, size, bound) in bounds {
            assert!(
                size <= bound,
                "round {round}: {name} holds {size} entries, over its bound {bound}"
            );
        }
    }
    cluster.run_until(cluster.now_ns + 50 * DELAY_NS);
    cluster.assert_agreement();
    for (i, replica) in cluster.replicas.iter().enumerate() {
        assert_eq!(replica.last_executed(), 12, "replica {i} kept committing");
    }
}

/// Evidence can be larger than any client request (a wrong NEW-VIEW's
/// record carries all of its V), so a request a validator identity signs
/// may fill a batch; a client's may not, neither at admission nor inside a
/// primary's batch (scenario regression-evidence-larger-than-a-client-request).
#[test]
fn a_validator_request_may_fill_a_batch_and_a_client_request_may_not() {
    let mut cluster = Cluster::new(4, |c| c.batch_requests_max = 1);
    let big = vec![7u8; REQUEST_PAYLOAD_MAX + 1];
    let alice = client(9);
    let oversized = Request::sign(CHAIN, &alice, 1, big.clone());
    assert_eq!(
        cluster.replicas[1].handle_request(0, oversized.clone()),
        Err(Rejection::TooLarge("request payload"))
    );
    // A Byzantine primary cannot slip the client's request into a batch.
    let batch = Batch {
        requests: vec![oversized],
        leader_proof: None,
    };
    let body = PrePrepare {
        view: 0,
        sequence: 1,
        digest: batch.digest(),
    };
    let header = Signed::sign(CHAIN, 0, &keys(0).identity, body);
    assert_eq!(
        cluster.replicas[1].handle_message(0, 0, Message::PrePrepare(header, batch)),
        Err(Rejection::TooLarge("request payload"))
    );

    let validator = keys(2).identity;
    let request = Request::sign(CHAIN, &validator, 1, big.clone());
    let decoded: Request = crate::codec::decode_exact(&request.to_encoded()).expect("decodes");
    assert_eq!(decoded, request);
    cluster.submit(&validator, 1, &big);
    cluster.run_until(100 * DELAY_NS);
    for replica in &cluster.replicas {
        assert_eq!(replica.app().executed, vec![(1, 1)]);
    }
    let batch_bytes_max = cluster.replicas[1].config().batch_bytes_max;
    let huge = Request::sign(CHAIN, &validator, 2, vec![0; batch_bytes_max + 1]);
    assert_eq!(
        cluster.replicas[1].handle_request(cluster.now_ns, huge),
        Err(Rejection::TooLarge("request payload"))
    );
}

#[test]
fn silent_primary_is_replaced_by_a_view_change() {
    let mut cluster = Cluster::new(4, |_| {});
    cluster.crashed[0] = true;
    let alice = client(5);
    cluster.submit(&alice, 1, b"needs a new primary");
    cluster.run_until(400 * DELAY_NS);
    for index in 1..4 {
        let replica = &cluster.replicas[index];
        assert_eq!(replica.view(), 1, "replica {index}");
        assert!(!replica.is_changing_view());
        assert_eq!(
            replica.app().executed.len(),
            1,
            "replica {index} executed the request"
        );
    }
    cluster.assert_agreement();
}

#[test]
fn prepared_request_survives_a_primary_crash_in_the_commit_phase() {
    let mut cluster = Cluster::new(4, |c| c.batch_requests_max = 1);
    // Every view-0 commit is lost: the request prepares everywhere but commits
    // nowhere, so only the view change's prepared certificates can carry it.
    cluster.filter = Box::new(|_, _, m| !matches!(m, Message::Commit(vote) if vote.view == 0));
    carry_one_request_into_view_1(&mut cluster, b"prepared, then the primary dies");
    for index in 1..4 {
        let (sequence, _, _) = cluster.committed[index][0];
        assert_eq!(sequence, 1);
    }
}

/// Submits one request that must not commit in view 0 (the caller's filter
/// sees to it), crashes the view-0 primary, and checks that every survivor
/// moves to view 1 and executes the request at sequence 1, in agreement.
fn carry_one_request_into_view_1(cluster: &mut Cluster, payload: &[u8]) {
    let alice = client(6);
    cluster.submit(&alice, 1, payload);
    cluster.run_until(10 * DELAY_NS);
    assert!(cluster.committed.iter().all(Vec::is_empty));
    cluster.crashed[0] = true;
    cluster.run_until(500 * DELAY_NS);
    for index in 1..4 {
        assert_eq!(cluster.replicas[index].view(), 1);
        assert_eq!(
            cluster.replicas[index].app().executed,
            vec![(1, 1)],
            "the prepared request keeps sequence 1 in the new view"
        );
    }
    cluster.assert_agreement();
}

/// A backup that never saw a batch, and then meets its digest in a
/// NEW-VIEW, fetches the batch before it prepares: it vouches only for
/// batches it holds and can serve.
#[test]
fn a_backup_fetches_a_re_proposed_batch_before_it_prepares() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut cluster = Cluster::new(4, |c| c.batch_requests_max = 1);
    let events: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    let log = events.clone();
    cluster.filter = Box::new(move |from, to, message| {
        match message {
            // Replica 2 never receives the view-0 batch, and nothing
            // commits in view 0: only the NEW-VIEW carries the digest on.
            Message::PrePrepare(header, _) if header.body.view == 0 && to == 2 => return false,
            Message::Commit(vote) if vote.view == 0 => return false,
            Message::Batch(BatchFetch::Response(_)) if to == 2 => {
                log.borrow_mut().push("batch sent to 2");
            }
            Message::Prepare(vote)
                if from == 2 && vote.body.view == 1 && vote.body.sequence == 1 =>
            {
                log.borrow_mut().push("prepare sent by 2");
            }
            Message::Prepare(vote) if from == 2 && vote.body.view == 1 => {
                log.borrow_mut().push("prepare of another slot");
            }
            _ => {}
        }
        true
    });
    carry_one_request_into_view_1(&mut cluster, b"re-proposed in view 1");
    let events = events.borrow();
    let fetched = events.iter().position(|e| *e == "batch sent to 2");
    let prepared = events.iter().position(|e| *e == "prepare sent by 2");
    assert!(
        matches!((fetched, prepared), (Some(f), Some(p)) if f < p),
        "replica 2 prepared before it held the batch: {events:?}"
    );
}

/// A new primary whose NEW-VIEW re-proposes a batch does not propose that
/// batch's requests again at a fresh sequence: they are already in flight.
#[test]
fn a_new_primary_does_not_propose_again_what_its_new_view_re_proposes() {
    let mut cluster = Cluster::new(4, |c| c.batch_requests_max = 1);
    // Nothing commits in view 0, so the request is prepared, not committed,
    // when the view changes.
    cluster.filter =
        Box::new(|_, _, message| !matches!(message, Message::Commit(vote) if vote.view == 0));
    carry_one_request_into_view_1(&mut cluster, b"re-proposed once");
    for index in 1..4 {
        assert_eq!(
            cluster.replicas[index].last_executed(),
            1,
            "replica {index} executed a second slot: the request was proposed twice"
        );
    }
}

/// The same when the new primary never received the re-proposed batch: it
/// fetches it, and the requests it carries are in flight from then on.
#[test]
fn a_new_primary_that_fetches_a_re_proposed_batch_does_not_propose_it_again() {
    let mut cluster = Cluster::new(4, |c| c.batch_requests_max = 1);
    assert_eq!(cluster.replicas[2].primary_of(1), 1);
    cluster.filter = Box::new(|_, to, message| match message {
        Message::PrePrepare(header, _) if header.body.view == 0 => to != 1,
        Message::Commit(vote) => vote.view != 0,
        _ => true,
    });
    carry_one_request_into_view_1(&mut cluster, b"fetched, then re-proposed once");
    for index in 1..4 {
        assert_eq!(
            cluster.replicas[index].last_executed(),
            1,
            "replica {index} executed a second slot: the request was proposed twice"
        );
    }
}

/// A pre-prepare for `(view, 1)` signed by `signer`, over a one-request batch
/// carrying `payload`: two payloads make an equivocation.
fn signed_pre_prepare(
    signer: ReplicaIndex,
    view: View,
    payload: &[u8],
) -> (Signed<PrePrepare>, Batch) {
    let batch = Batch {
        requests: vec![Request::sign(CHAIN, &client(7), 1, payload.to_vec())],
        leader_proof: None,
    };
    let header = PrePrepare {
        view,
        sequence: 1,
        digest: batch.digest(),
    };
    (
        Signed::sign(CHAIN, signer, &keys(signer).identity, header),
        batch,
    )
}

#[test]
fn equivocating_primary_produces_verifiable_evidence() {
    let mut cluster = Cluster::new(4, |_| {});
    let (first, first_batch) = signed_pre_prepare(0, 0, b"a");
    let (second, second_batch) = signed_pre_prepare(0, 0, b"b");
    let backup = &mut cluster.replicas[1];
    assert_eq!(
        backup.handle_message(0, 0, Message::PrePrepare(first, first_batch)),
        Ok(())
    );
    assert_eq!(
        backup.handle_message(0, 0, Message::PrePrepare(second, second_batch)),
        Err(Rejection::Equivocation(0))
    );
    cluster.drain(1);
    assert_eq!(cluster.evidence.len(), 1);
    let evidence = &cluster.evidence[0];
    assert_eq!(evidence.validator(), 0);
    assert_eq!(evidence.slot(), (0, 1, Phase::PrePrepare));
    assert_eq!(evidence.verify(CHAIN, &validator_set(4)), Ok(()));
    let decoded: Evidence = crate::codec::decode_exact(&evidence.to_encoded()).expect("round trip");
    assert_eq!(&decoded, evidence);
}

/// A validator that is not this replica's primary for the view (replicas that
/// entered the view under different stable anchors pin different primaries)
/// still signs what it sends: two conflicting pre-prepares from it are
/// evidence, and a watched one is shown to a replica that prepared another
/// digest for the slot, so the halves meet even when the replicas that took
/// the equivocator for primary are not the ones that received both.
#[test]
fn an_equivocation_by_another_replicas_primary_is_evidence_too() {
    let mut cluster = Cluster::new(4, |_| {});
    let (first, first_batch) = signed_pre_prepare(2, 0, b"a");
    let (second, second_batch) = signed_pre_prepare(2, 0, b"b");
    assert_eq!(cluster.replicas[1].primary(), 0);

    // Replica 1 watches the first and shows it to a replica whose prepare
    // names another digest for the slot.
    let backup = &mut cluster.replicas[1];
    assert_eq!(
        backup.handle_message(0, 2, Message::PrePrepare(first.clone(), first_batch)),
        Err(Rejection::NotPrimary(0))
    );
    let other = Vote {
        view: 0,
        sequence: 1,
        digest: second.body.digest,
    };
    let prepare = Signed::sign(CHAIN, 3, &keys(3).identity, other);
    assert_eq!(
        backup.handle_message(0, 3, Message::Prepare(prepare)),
        Ok(())
    );
    let shown: Vec<Output> = std::iter::from_fn(|| backup.poll_output()).collect();
    assert!(
        shown.iter().any(|o| matches!(
            o,
            Output::Send {
                to: Target::Replica(3),
                message: Message::Conflict(ConflictProof::PrePrepare(p)),
            } if *p == first
        )),
        "the watched pre-prepare is shown to the replica that prepared another digest: {shown:?}"
    );

    // The second half, arriving at the same replica, is evidence.
    assert_eq!(
        backup.handle_message(0, 2, Message::PrePrepare(second, second_batch)),
        Err(Rejection::Equivocation(2))
    );
    cluster.drain(1);
    assert_eq!(cluster.evidence.len(), 1);
    let evidence = &cluster.evidence[0];
    assert_eq!(evidence.validator(), 2);
    assert_eq!(evidence.slot(), (0, 1, Phase::PrePrepare));
    assert_eq!(evidence.verify(CHAIN, &validator_set(4)), Ok(()));

    // A forged pre-prepare in another's name is refused before it is watched.
    let (forged, forged_batch) = {
        let (mut header, batch) = signed_pre_prepare(2, 0, b"c");
        header.signer = 3;
        (header, batch)
    };
    assert!(matches!(
        cluster.replicas[1].handle_message(0, 3, Message::PrePrepare(forged, forged_batch)),
        Err(Rejection::BadSignature(_))
    ));
}

/// A pre-prepare or prepare for the view a replica is changing to can arrive
/// before the NEW-VIEW (the network reorders). It cannot be acted on yet, but
/// it is watched: the second half of an equivocation is evidence.
#[test]
fn an_equivocation_that_arrives_before_the_new_view_is_evidence() {
    let mut cluster = Cluster::new(4, |_| {});
    let replica = &mut cluster.replicas[3];
    replica.start_view_change(0, 1);
    assert_eq!((replica.view(), replica.mode), (1, Mode::ChangingView));
    let (first, first_batch) = signed_pre_prepare(1, 1, b"a");
    let (second, second_batch) = signed_pre_prepare(1, 1, b"b");
    assert_eq!(
        replica.handle_message(0, 1, Message::PrePrepare(first, first_batch)),
        Err(Rejection::ChangingView)
    );
    assert_eq!(
        replica.handle_message(0, 1, Message::PrePrepare(second, second_batch)),
        Err(Rejection::Equivocation(1))
    );
    let prepare = |digest: &[u8]| {
        let vote = Vote {
            view: 1,
            sequence: 1,
            digest: Digest::of(digest),
        };
        Signed::sign(CHAIN, 2, &keys(2).identity, vote)
    };
    assert_eq!(
        replica.handle_message(0, 2, Message::Prepare(prepare(b"x"))),
        Err(Rejection::ChangingView)
    );
    assert_eq!(
        replica.handle_message(0, 2, Message::Prepare(prepare(b"y"))),
        Err(Rejection::Equivocation(2))
    );
    cluster.drain(3);
    let found: Vec<_> = cluster.evidence.iter().map(Evidence::validator).collect();
    assert_eq!(found, [1, 2]);
    for evidence in &cluster.evidence {
        assert_eq!(evidence.verify(CHAIN, &validator_set(4)), Ok(()));
    }
    // Outside the window nothing is watched (the bound on what is kept).
    let far = Vote {
        view: 1,
        sequence: 10_000,
        digest: Digest::of(b"x"),
    };
    let replica = &mut cluster.replicas[3];
    assert_eq!(
        replica.handle_message(
            0,
            2,
            Message::Prepare(Signed::sign(CHAIN, 2, &keys(2).identity, far))
        ),
        Err(Rejection::ChangingView)
    );
    assert!(!replica.seen.contains_key(&(10_000, 1, Phase::Prepare, 2)));
}

/// The second half of an equivocation can arrive after the replica moved to a
/// later view. It is checked against what the replica watched in the old view
/// (and nothing stale is kept).
#[test]
fn an_equivocation_that_straddles_a_view_change_is_evidence() {
    let mut cluster = Cluster::new(4, |_| {});
    let (first, first_batch) = signed_pre_prepare(0, 0, b"a");
    let (second, second_batch) = signed_pre_prepare(0, 0, b"b");
    let (agreed, other) = (first.body.digest, second.body.digest);
    let prepare = |digest: Digest| {
        let vote = Vote {
            view: 0,
            sequence: 1,
            digest,
        };
        Signed::sign(CHAIN, 2, &keys(2).identity, vote)
    };
    let replica = &mut cluster.replicas[3];
    assert_eq!(
        replica.handle_message(
            0,
            0,
            Message::PrePrepare(first.clone(), first_batch.clone())
        ),
        Ok(())
    );
    assert_eq!(
        replica.handle_message(0, 2, Message::Prepare(prepare(agreed))),
        Ok(())
    );
    replica.start_view_change(0, 1);
    // The same messages again are merely stale.
    assert_eq!(
        replica.handle_message(0, 0, Message::PrePrepare(first, first_batch)),
        Err(Rejection::StaleView(0))
    );
    assert_eq!(
        replica.handle_message(0, 2, Message::Prepare(prepare(agreed))),
        Err(Rejection::StaleView(0))
    );
    // Their conflicting halves are evidence.
    assert_eq!(
        replica.handle_message(0, 0, Message::PrePrepare(second, second_batch)),
        Err(Rejection::Equivocation(0))
    );
    assert_eq!(
        replica.handle_message(0, 2, Message::Prepare(prepare(other))),
        Err(Rejection::Equivocation(2))
    );
    // A message of a view more than STALE_VIEWS_WATCHED behind, with nothing
    // watched to conflict with, is not kept (the bound on what is kept).
    replica.start_view_change(0, 1 + STALE_VIEWS_WATCHED);
    let (other, other_batch) = signed_pre_prepare(1, 0, b"c");
    assert_eq!(
        replica.handle_message(0, 1, Message::PrePrepare(other, other_batch)),
        Err(Rejection::StaleView(0))
    );
    assert!(!replica.seen.contains_key(&(1, 0, Phase::PrePrepare, 1)));
    cluster.drain(3);
    let found: Vec<_> = cluster.evidence.iter().map(Evidence::validator).collect();
    assert_eq!(found, [0, 2]);
    for evidence in &cluster.evidence {
        assert_eq!(evidence.verify(CHAIN, &validator_set(4)), Ok(()));
    }
}

/// One half of an equivocation can reach only a replica that has already
/// moved to a later view, while the other half is prepared by a replica still
/// in the old one. The replica that moved on watches the stale half and shows
/// it to the one whose (stale) prepare names the other digest, which then
/// holds both (regression-equivocation-half-reaches-only-a-replica-in-a-later-view).
#[test]
fn a_stale_half_of_an_equivocation_is_shown_to_the_replica_holding_the_other() {
    let mut cluster = Cluster::new(4, |_| {});
    let (first, first_batch) = signed_pre_prepare(0, 0, b"a");
    let (second, second_batch) = signed_pre_prepare(0, 0, b"b");
    assert_eq!(
        cluster.replicas[1].handle_message(0, 0, Message::PrePrepare(first.clone(), first_batch)),
        Ok(())
    );
    let prepare: Vec<Signed<Vote>> = std::iter::from_fn(|| cluster.replicas[1].poll_output())
        .filter_map(|output| match output {
            Output::Send {
                message: Message::Prepare(vote),
                ..
            } => Some(vote),
            _ => None,
        })
        .collect();
    assert_eq!(prepare.len(), 1, "replica 1 prepares the first half");

    let moved_on = &mut cluster.replicas[2];
    moved_on.start_view_change(0, 1);
    assert_eq!(
        moved_on.handle_message(0, 0, Message::PrePrepare(second.clone(), second_batch)),
        Err(Rejection::StaleView(0))
    );
    while moved_on.poll_output().is_some() {}
    assert_eq!(
        moved_on.handle_message(0, 1, Message::Prepare(prepare[0].clone())),
        Err(Rejection::StaleView(0))
    );
    let shown: Vec<Output> = std::iter::from_fn(|| moved_on.poll_output()).collect();
    let proof = shown
        .iter()
        .find_map(|output| match output {
            Output::Send {
                to: Target::Replica(1),
                message: Message::Conflict(proof @ ConflictProof::PrePrepare(p)),
            } if *p == second => Some(proof.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the stale half is shown to replica 1: {shown:?}"));
    assert_eq!(
        cluster.replicas[1].handle_message(0, 2, Message::Conflict(proof)),
        Err(Rejection::Equivocation(0))
    );
    cluster.drain(1);
    let found: Vec<_> = cluster.evidence.iter().map(Evidence::validator).collect();
    assert_eq!(found, [0]);
    assert_eq!(cluster.evidence[0].verify(CHAIN, &validator_set(4)), Ok(()));
}

#[test]
fn bad_input_is_rejected_without_changing_state() {
    let mut cluster = Cluster::new(4, |_| {});
    let replica = &mut cluster.replicas[1];
    assert!(matches!(
        replica.handle_bytes(0, 0, &[1, 2, 3]),
        Err(Rejection::Malformed(_))
    ));
    // A prepare signed by someone else than the transport sender.
    let vote = Vote {
        view: 0,
        sequence: 1,
        digest: Digest::of(b"x"),
    };
    let forged = Signed::sign(CHAIN, 2, &keys(3).identity, vote);
    assert!(matches!(
        replica.handle_message(0, 2, Message::Prepare(forged)),
        Err(Rejection::BadSignature(_))
    ));
    let out_of_window = Signed::sign(
        CHAIN,
        2,
        &keys(2).identity,
        Vote {
            sequence: 10_000,
            ..vote
        },
    );
    assert_eq!(
        replica.handle_message(0, 2, Message::Prepare(out_of_window)),
        Err(Rejection::OutOfWindow(10_000))
    );
    let stale_sender = Signed::sign(CHAIN, 3, &keys(3).identity, vote);
    assert_eq!(
        replica.handle_message(0, 2, Message::Prepare(stale_sender)),
        Err(Rejection::WrongSender { from: 2, signer: 3 })
    );
    assert_eq!(
        replica.handle_message(0, 9, Message::Batch(BatchFetch::Request(vote.digest))),
        Err(Rejection::UnknownSender(9))
    );
    assert_eq!(
        replica.handle_message(
            0,
            2,
            Message::Batch(BatchFetch::Response(Box::new(Batch::null())))
        ),
        Err(Rejection::Unsolicited)
    );
    assert_eq!(replica.log_len(), 0);
    assert_eq!(replica.rejections().total(), 6);
    assert_eq!(replica.rejections().get("malformed"), 1);
    // Nothing to send: rejected input produced no output.
    assert!(replica.poll_output().is_none());
}

#[test]
fn pending_requests_are_bounded() {
    let mut cluster = Cluster::new(4, |c| c.pending_requests_max = 3);
    let backup = &mut cluster.replicas[1];
    let alice = client(8);
    for id in 1..=3 {
        assert_eq!(
            backup.handle_request(0, Request::sign(CHAIN, &alice, id, vec![1])),
            Ok(())
        );
    }
    assert_eq!(
        backup.handle_request(0, Request::sign(CHAIN, &alice, 4, vec![1])),
        Err(Rejection::QueueFull("pending requests"))
    );
    assert_eq!(backup.pending_requests(), 3);
    let mut bad = Request::sign(CHAIN, &alice, 5, vec![1]);
    bad.payload = vec![2];
    let mut cluster = Cluster::new(4, |_| {});
    assert!(matches!(
        cluster.replicas[1].handle_request(0, bad),
        Err(Rejection::BadSignature(_))
    ));
}

#[test]
fn lost_messages_are_recovered_by_status_retransmission() {
    let mut cluster = Cluster::new(4, |c| c.batch_requests_max = 1);
    // Replica 3 misses every message sent in the first 10 ms.
    cluster.filter = Box::new(|_, to, _| to != 3);
    let alice = client(9);
    cluster.submit(&alice, 1, b"catch me up");
    cluster.run_until(10 * DELAY_NS);
    assert!(cluster.committed[3].is_empty());
    cluster.filter = Box::new(|_, _, _| true);
    cluster.run_until(200 * DELAY_NS);
    assert_eq!(cluster.replicas[3].last_executed(), 1);
    assert_eq!(cluster.replicas[3].view(), 0, "no view change was needed");
    cluster.assert_agreement();
}

#[test]
fn a_new_view_with_a_wrong_o_is_rejected() {
    let mut cluster = Cluster::new(4, |_| {});
    // Every backup times out and moves to view 1 (primary 1); capture the NEW-VIEW.
    cluster.crashed[0] = true;
    let captured: std::rc::Rc<std::cell::RefCell<Option<Signed<NewView>>>> = Default::default();
    let sink = captured.clone();
    cluster.filter = Box::new(move |_, _, m| {
        if let Message::NewView(nv) = m {
            sink.borrow_mut().get_or_insert_with(|| nv.clone());
        }
        true
    });
    let alice = client(10);
    cluster.submit(&alice, 1, b"x");
    cluster.run_until(200 * DELAY_NS);
    let mut new_view = captured.borrow().clone().expect("a new view was sent");
    let honest = new_view.clone();
    // Forge O with an extra pre-prepare and re-sign as the new primary.
    let extra = Signed::sign(
        CHAIN,
        1,
        &keys(1).identity,
        PrePrepare {
            view: 1,
            sequence: 99,
            digest: Digest::of(b"bogus"),
        },
    );
    new_view.body.pre_prepares.push(extra);
    let forged = Signed::sign(CHAIN, 1, &keys(1).identity, new_view.body.clone());
    assert_eq!(new_view.body.view, 1);
    // A replica still in view 0 may move straight to view 1 on a valid NEW-VIEW;
    // the forged one must not move it.
    let mut fresh = Cluster::new(4, |_| {});
    let replica = &mut fresh.replicas[2];
    assert_eq!(
        replica.handle_message(0, 1, Message::NewView(forged.clone())),
        Err(Rejection::BadNewView(
            "O differs from the one computed from V"
        ))
    );
    assert_eq!(replica.view(), 0);
    // The refusal yields evidence against the signer that a third party with
    // only the validator set verifies, and that survives the codec.
    let mut evidence = None;
    while let Some(output) = replica.poll_output() {
        if let Output::Evidence(found) = output {
            evidence = Some(found);
        }
    }
    let evidence = evidence.expect("a wrong NEW-VIEW is evidence");
    assert_eq!(evidence, Evidence::WrongNewView(Box::new(forged)));
    assert_eq!(evidence.validator(), 1);
    assert!(!evidence.is_equivocation());
    let validators = validator_set(4);
    assert_eq!(evidence.verify(CHAIN, &validators), Ok(()));
    let decoded: Evidence = crate::codec::decode_exact(&evidence.to_encoded()).expect("round trip");
    assert_eq!(decoded, evidence);
    // The honest NEW-VIEW is no evidence, and neither is a wrong one whose
    // signature is not the named signer's.
    assert_eq!(
        Evidence::WrongNewView(Box::new(honest.clone())).verify(CHAIN, &validators),
        Err(EvidenceError::Consistent("O is the one V determines"))
    );
    // Validator 2 signs a wrong NEW-VIEW in validator 1's name.
    let mut body = honest.body.clone();
    body.pre_prepares.clear();
    let framed = Signed::sign(CHAIN, 1, &keys(2).identity, body);
    assert!(matches!(
        Evidence::WrongNewView(Box::new(framed)).verify(CHAIN, &validators),
        Err(EvidenceError::Signature(_))
    ));
}

#[test]
fn an_evidence_record_binds_its_chain_and_a_header_its_messages_prove() {
    use crate::consensus::EvidenceRecord;
    let validators = validator_set(4);
    let vote = |digest: &[u8]| {
        let body = Vote {
            view: 3,
            sequence: 17,
            digest: Digest::of(digest),
        };
        Signed::sign(CHAIN, 2, &keys(2).identity, body)
    };
    let evidence = Evidence::ConflictingPrepare(vote(b"a"), vote(b"b"));
    let record = EvidenceRecord::new(CHAIN, evidence.clone());
    assert_eq!(
        (record.validator, record.view, record.sequence, record.phase),
        (2, 3, 17, Phase::Prepare)
    );
    assert_eq!(record.verify(CHAIN, &validators), Ok(()));
    assert_eq!(record.id(), evidence.id());
    let bytes = record.to_encoded();
    let decoded: EvidenceRecord = crate::codec::decode_exact(&bytes).expect("round trip");
    assert_eq!(decoded, record);
    // Any shorter prefix, or a trailing byte, is refused.
    for cut in 0..bytes.len() {
        assert!(crate::codec::decode_exact::<EvidenceRecord>(&bytes[..cut]).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(crate::codec::decode_exact::<EvidenceRecord>(&longer).is_err());

    // Another chain's verifier refuses it before looking at signatures.
    assert!(matches!(
        record.verify(b"another-chain", &validators),
        Err(EvidenceError::WrongChain { .. })
    ));
    // A header that names another validator or slot than the messages prove.
    type Relabel = fn(&mut EvidenceRecord);
    let relabelled: [(&str, Relabel); 4] = [
        ("validator", |r| r.validator = 1),
        ("view", |r| r.view += 1),
        ("sequence", |r| r.sequence -= 1),
        ("phase", |r| r.phase = Phase::Commit),
    ];
    for (field, relabel) in relabelled {
        let mut wrong = record.clone();
        relabel(&mut wrong);
        assert_eq!(
            wrong.verify(CHAIN, &validators),
            Err(EvidenceError::Header(field))
        );
    }
    // A record claiming this chain for messages signed on another fails
    // on the signatures.
    let foreign = |digest: &[u8]| {
        let body = Vote {
            view: 3,
            sequence: 17,
            digest: Digest::of(digest),
        };
        Signed::sign(b"another-chain", 2, &keys(2).identity, body)
    };
    let moved = EvidenceRecord::new(
        CHAIN,
        Evidence::ConflictingPrepare(foreign(b"a"), foreign(b"b")),
    );
    assert!(matches!(
        moved.verify(CHAIN, &validators),
        Err(EvidenceError::Signature(_))
    ));
}

/// Four replicas checkpointing every 5 sequences (window 10), one request a
/// batch, where replica 3 hears nothing while a client commits `requests`
/// requests; `configure` adjusts the replicas further. Replica 3 stays at 0.
fn replica_3_cut_off_while_committing(
    requests: u64,
    configure: impl Fn(&mut ReplicaConfig),
) -> Cluster {
    let mut cluster = Cluster::new(4, |c| {
        c.checkpoint_interval = 5;
        c.window = 10;
        c.batch_requests_max = 1;
        configure(c);
    });
    cluster.filter = Box::new(|_, to, _| to != 3);
    let alice = client(11);
    for id in 1..=requests {
        cluster.submit(&alice, id, &id.to_le_bytes());
        cluster.run_until(cluster.now_ns + 5 * DELAY_NS);
    }
    assert_eq!(cluster.replicas[3].last_executed(), 0);
    cluster
}

/// Replica `index` of `cluster`, asserted to have executed up to `height`
/// into replica 0's state.
fn caught_up_with_replica_0(cluster: &Cluster, index: usize, height: u64) -> &Replica<Ledger> {
    let replica = &cluster.replicas[index];
    assert_eq!(replica.last_executed(), height);
    assert_eq!(
        replica.app().state_digest(),
        cluster.replicas[0].app().state_digest()
    );
    replica
}

#[test]
fn a_partitioned_replica_catches_up_by_state_transfer() {
    let mut cluster = replica_3_cut_off_while_committing(23, |_| {});
    assert!(cluster.replicas[0].stable_checkpoint().sequence >= 20);
    cluster.filter = Box::new(|_, _, _| true);
    cluster.run_until(cluster.now_ns + 300 * DELAY_NS);
    let caught_up = caught_up_with_replica_0(&cluster, 3, 23);
    assert_eq!(
        caught_up.pending_requests(),
        0,
        "the restored reply cache covers the transferred requests"
    );
    cluster.assert_agreement();
}

/// A replica far behind in large batches gets them over several state
/// transfers, none of them carrying more than the transfer's batch budget
/// beyond its first batch, and catches up.
#[test]
fn a_state_transfer_carries_its_batch_budget_and_the_rest_follows() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut cluster = Cluster::new(4, |c| {
        c.checkpoint_interval = 100;
        c.window = 200;
        c.batch_requests_max = 1;
    });
    cluster.filter = Box::new(|_, to, _| to != 3);
    let alice = client(14);
    let payload = vec![7u8; REQUEST_PAYLOAD_MAX - 1024];
    for id in 1..=90u64 {
        let mut bytes = payload.clone();
        bytes[..8].copy_from_slice(&id.to_le_bytes());
        cluster.submit(&alice, id, &bytes);
        cluster.run_until(cluster.now_ns + 5 * DELAY_NS);
    }
    assert_eq!(cluster.replicas[0].last_executed(), 90);
    assert_eq!(cluster.replicas[3].last_executed(), 0);
    let transfers: Rc<RefCell<Vec<usize>>> = Rc::default();
    let sink = Rc::clone(&transfers);
    cluster.filter = Box::new(move |_, to, message| {
        if to == 3
            && let Message::StateResponse(transfer) = message
        {
            sink.borrow_mut().push(transfer.batches.len());
            let requests: usize = transfer
                .batches
                .iter()
                .skip(1)
                .flat_map(|b| &b.batch.requests)
                .map(Request::encoded_len)
                .sum();
            assert!(
                requests <= TRANSFER_BATCH_BYTES,
                "{requests} bytes of batches"
            );
        }
        // Retransmitted pre-prepares would catch it up too: this test is
        // about state transfer, so only that reaches it.
        to != 3 || !matches!(message, Message::PrePrepare(..))
    });
    cluster.run_until(cluster.now_ns + 600 * DELAY_NS);
    assert_eq!(cluster.replicas[3].last_executed(), 90);
    let transfers = transfers.borrow();
    assert!(
        transfers.iter().filter(|n| **n > 0).count() >= 2,
        "the batches came in more than one transfer: {transfers:?}"
    );
    cluster.assert_agreement();
}

/// A snapshot longer than the piece size reaches a lagging replica in
/// pieces, each asked for when the last arrives, and restores the same state
/// as a snapshot sent whole.
#[test]
fn a_snapshot_larger_than_a_piece_arrives_in_pieces() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut cluster = replica_3_cut_off_while_committing(23, |c| c.snapshot_chunk_bytes = 16);
    let stable = cluster.replicas[0].stable_checkpoint().sequence;
    let snapshot_len = cluster.replicas[0]
        .checkpoint_snapshot(stable)
        .expect("the stable snapshot")
        .len();
    let pieces = Rc::new(Cell::new(0usize));
    let counted = Rc::clone(&pieces);
    cluster.filter = Box::new(move |_, to, message| {
        if to == 3
            && let Message::SnapshotPiece(piece) = message
        {
            assert!(piece.bytes.len() <= 16, "a piece is at most the chunk size");
            counted.set(counted.get() + 1);
        }
        true
    });
    cluster.run_until(cluster.now_ns + 600 * DELAY_NS);
    let caught_up = caught_up_with_replica_0(&cluster, 3, 23);
    assert!(
        pieces.get() >= snapshot_len.div_ceil(16),
        "{} pieces for a {snapshot_len}-byte snapshot",
        pieces.get()
    );
    assert_eq!(caught_up.footprint().snapshot_assembly_bytes, 0);
    cluster.assert_agreement();
}

/// Pieces are checked together, once whole: a snapshot with one byte
/// changed in its last piece is refused against the certified digest, and
/// nothing of it is kept.
#[test]
fn a_snapshot_tampered_in_one_piece_is_refused_and_changes_nothing() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut cluster = replica_3_cut_off_while_committing(6, |c| c.snapshot_chunk_bytes = 16);
    let captured: Rc<RefCell<Option<(ReplicaIndex, SnapshotPiece)>>> = Rc::default();
    let sink = Rc::clone(&captured);
    cluster.filter = Box::new(move |from, to, m| {
        if let Message::SnapshotPiece(piece) = m {
            sink.borrow_mut()
                .get_or_insert_with(|| (from, (**piece).clone()));
            return false;
        }
        to != 3 || matches!(m, Message::Status(_))
    });
    cluster.run_until(cluster.now_ns + 100 * DELAY_NS);
    let (from, first) = captured.borrow().clone().expect("a piece was sent");
    let mut snapshot = cluster.replicas[usize::from(from)]
        .checkpoint_snapshot(first.checkpoint.sequence)
        .expect("the server's snapshot")
        .to_vec();
    let last = snapshot.len() - 1;
    snapshot[last] ^= 1;
    let total = snapshot.len() as u64;
    let now = cluster.now_ns;
    let replica = &mut cluster.replicas[3];
    let before = replica.app().state_digest();
    // Replica 3 asked `from`, and gets `bytes` at `offset` of the snapshot.
    let deliver = |replica: &mut Replica<Ledger>, offset: usize, bytes: &[u8]| {
        replica.state_request = Some((from, now));
        replica.handle_message(
            now,
            from,
            Message::SnapshotPiece(Box::new(SnapshotPiece {
                checkpoint: first.checkpoint.clone(),
                total,
                offset: offset as u64,
                bytes: bytes.to_vec(),
                batches: Vec::new(),
            })),
        )
    };
    let pieces: Vec<&[u8]> = snapshot.chunks(16).collect();
    for (i, bytes) in pieces.iter().enumerate() {
        let answer = deliver(replica, 16 * i, bytes);
        if i + 1 < pieces.len() {
            assert_eq!(answer, Ok(()), "piece {i}");
        } else {
            assert!(
                matches!(answer, Err(Rejection::BadCertificate(_))),
                "{answer:?}"
            );
        }
    }
    assert_eq!(replica.last_executed(), 0);
    assert_eq!(replica.app().state_digest(), before);
    assert_eq!(replica.footprint().snapshot_assembly_bytes, 0);
    // A piece that does not follow the bytes held is not kept either.
    let answer = deliver(replica, 16, pieces[1]);
    assert_eq!(answer, Err(Rejection::Unsolicited));
    assert_eq!(replica.footprint().snapshot_assembly_bytes, 0);
}

#[test]
fn a_tampered_snapshot_is_refused_and_changes_nothing() {
    let mut cluster = replica_3_cut_off_while_committing(6, |_| {});
    // Capture a genuine state response from replica 0 to replica 3, then tamper with it.
    let captured: std::rc::Rc<std::cell::RefCell<Option<StateTransfer>>> = Default::default();
    let sink = captured.clone();
    cluster.filter = Box::new(move |_, to, m| {
        if let Message::StateResponse(transfer) = m {
            sink.borrow_mut()
                .get_or_insert_with(|| (**transfer).clone());
            return false;
        }
        to != 3 || matches!(m, Message::Status(_))
    });
    cluster.run_until(cluster.now_ns + 100 * DELAY_NS);
    let mut transfer = captured
        .borrow()
        .clone()
        .expect("a state response was sent");
    let snapshot = transfer
        .snapshot
        .as_mut()
        .expect("the requester needed a snapshot");
    let last = snapshot.len() - 1;
    snapshot[last] ^= 1;
    let replica = &mut cluster.replicas[3];
    let before = replica.app().state_digest();
    let answer = replica.handle_message(
        cluster.now_ns,
        0,
        Message::StateResponse(Box::new(transfer)),
    );
    assert!(
        matches!(answer, Err(Rejection::BadCertificate(_))),
        "{answer:?}"
    );
    assert_eq!(replica.last_executed(), 0);
    assert_eq!(replica.app().state_digest(), before);
}

#[test]
fn a_recovered_replica_never_signs_a_conflicting_digest() {
    let validators = validator_set(4);
    let config = ReplicaConfig::new(CHAIN, validators.clone());
    let signed_before_crash = Digest::of(b"the batch prepared before the crash");
    let records = vec![
        DurableRecord::View(0),
        DurableRecord::Signed {
            view: 0,
            sequence: 1,
            phase: Phase::Prepare,
            digest: signed_before_crash,
        },
    ];
    let mut replica = Replica::recover(
        config,
        keys(1),
        Box::new(RoundRobin),
        Ledger::default(),
        &records,
        0,
    )
    .expect("valid configuration");
    while replica.poll_output().is_some() {}
    // The primary (equivocating, or the replica's pre-crash view of it lost)
    // now proposes another batch for the same slot.
    let batch = Batch {
        requests: vec![Request::sign(CHAIN, &client(13), 1, b"other".to_vec())],
        leader_proof: None,
    };
    let header = Signed::sign(
        CHAIN,
        0,
        &keys(0).identity,
        PrePrepare {
            view: 0,
            sequence: 1,
            digest: batch.digest(),
        },
    );
    assert_eq!(
        replica.handle_message(0, 0, Message::PrePrepare(header, batch)),
        Ok(())
    );
    let mut prepares = 0;
    while let Some(output) = replica.poll_output() {
        if let Output::Send {
            message: Message::Prepare(_),
            ..
        } = output
        {
            prepares += 1;
        }
    }
    assert_eq!(
        prepares, 0,
        "no prepare for a different digest in a slot it signed"
    );
    assert_eq!(replica.rejections().get("refused_conflicting_signature"), 1);
}

#[test]
fn durable_records_round_trip_through_the_codec() {
    let k = keys(0);
    let records = vec![
        DurableRecord::View(7),
        DurableRecord::Signed {
            view: 7,
            sequence: 9,
            phase: Phase::Commit,
            digest: Digest::of(b"batch"),
        },
        DurableRecord::ViewChange(Signed::sign(
            CHAIN,
            0,
            &k.identity,
            ViewChange {
                new_view: 8,
                checkpoint: CheckpointCertificate::genesis(Digest::of(b"genesis")),
                prepared: Vec::new(),
            },
        )),
        DurableRecord::StableCheckpoint(CheckpointCertificate::genesis(Digest::of(b"g"))),
    ];
    for record in records {
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        assert_eq!(
            codec::decode_exact::<DurableRecord>(&bytes).expect("decodes"),
            record
        );
        bytes[1] = 99;
        assert!(codec::decode_exact::<DurableRecord>(&bytes).is_err());
    }
}

#[test]
fn a_stored_snapshot_larger_than_a_state_transfer_message_still_decodes() {
    // A validator's own stable snapshot comes back through `resume` from its
    // disk, not off the wire: an application state past the message limit
    // (a window table full of flooding sources) must not stop it restarting.
    let app = vec![7u8; super::super::message::SNAPSHOT_BYTES_MAX + 1];
    let clients = vec![9u8; 100];
    let seed = [3u8; 32];
    let digest = Digest::of(b"app");
    let bytes = encode_snapshot(&seed, digest, &app, &clients);
    let (seed_back, digest_back, app_back, clients_back) =
        decode_snapshot(&bytes).expect("a stored snapshot decodes whatever its size");
    assert_eq!(
        (seed_back, digest_back, app_back, clients_back),
        (seed, digest, app, clients)
    );
    // The parts are still bounded by the bytes themselves.
    assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn a_restarted_replica_resumes_from_its_own_checkpoint_and_blocks() {
    let mut cluster = Cluster::new(4, |c| {
        c.checkpoint_interval = 5;
        c.window = 10;
        c.batch_requests_max = 1;
    });
    let alice = client(4);
    for id in 1..=13 {
        cluster.submit(&alice, id, &id.to_le_bytes());
        cluster.run_until(cluster.now_ns + 5 * DELAY_NS);
    }
    cluster.run_until(cluster.now_ns + 100 * DELAY_NS);
    let before = &cluster.replicas[2];
    assert_eq!(before.last_executed(), 13);
    let checkpoint = before.stable_checkpoint().clone();
    assert_eq!(checkpoint.sequence, 10);
    let snapshot = before
        .checkpoint_snapshot(10)
        .expect("a replica keeps the snapshot of its stable checkpoint")
        .to_vec();
    let blocks: Vec<CertifiedBatch> = cluster.blocks[2]
        .range(11..)
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(blocks.len(), 3);
    let expected_digest = before.app().state_digest();

    let restart = |cluster: &Cluster| {
        let config = cluster.replicas[2].config().clone();
        let mut replica = Replica::recover(
            config,
            keys(2),
            Box::new(RoundRobin),
            Ledger::default(),
            &[],
            cluster.now_ns,
        )
        .expect("valid configuration");
        while replica.poll_output().is_some() {}
        replica
    };

    // A tampered block is refused; only what verified before it (the
    // certified snapshot) is adopted.
    let mut tampered = blocks.clone();
    tampered[1].batch.requests[0].payload = b"tampered".to_vec();
    let mut replica = restart(&cluster);
    assert_eq!(
        replica.resume(
            cluster.now_ns,
            StateTransfer {
                checkpoint: checkpoint.clone(),
                snapshot: Some(snapshot.clone()),
                batches: tampered,
            },
        ),
        Err(Rejection::DigestMismatch)
    );
    assert!(replica.last_executed() <= 11);

    // A snapshot that does not match the certificate changes nothing.
    let mut replica = restart(&cluster);
    let mut bad_snapshot = snapshot.clone();
    let last = bad_snapshot.len() - 1;
    bad_snapshot[last] ^= 1;
    assert!(
        replica
            .resume(
                cluster.now_ns,
                StateTransfer {
                    checkpoint: checkpoint.clone(),
                    snapshot: Some(bad_snapshot),
                    batches: blocks.clone(),
                },
            )
            .is_err()
    );
    assert_eq!(replica.last_executed(), 0);

    // The intact record restores exactly the state the replica had.
    let mut replica = restart(&cluster);
    replica
        .resume(
            cluster.now_ns,
            StateTransfer {
                checkpoint,
                snapshot: Some(snapshot),
                batches: blocks,
            },
        )
        .expect("its own certified state");
    assert_eq!(replica.last_executed(), 13);
    assert_eq!(replica.stable_checkpoint().sequence, 10);
    assert_eq!(replica.app().state_digest(), expected_digest);
}

#[test]
fn a_single_validator_commits_alone() {
    let mut cluster = Cluster::new(1, |_| {});
    let alice = client(4);
    cluster.submit(&alice, 1, b"alone");
    cluster.run_until(cluster.now_ns + 20 * DELAY_NS);
    assert_eq!(cluster.replicas[0].last_executed(), 1);
    assert_eq!(cluster.replies.len(), 1);
}

#[test]
fn stored_records_round_trip_and_every_bit_flip_is_detected() {
    let records = [
        DurableRecord::View(7),
        DurableRecord::Signed {
            view: 3,
            sequence: 41,
            phase: Phase::Commit,
            digest: Digest::of_parts("stored record test", &[b"batch"]),
        },
    ];
    for record in &records {
        let stored = record.to_stored();
        assert_eq!(DurableRecord::from_stored(&stored).as_ref(), Ok(record));
        // A single flipped bit anywhere, in the checksum or in the record, is
        // refused; without the checksum a flip inside the signed digest
        // would decode to a different, plausible record.
        for bit in 0..stored.len() * 8 {
            let mut corrupted = stored.clone();
            corrupted[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                DurableRecord::from_stored(&corrupted),
                Err(RecordError::ChecksumMismatch),
                "bit {bit} of {record:?}"
            );
        }
        for cut in 0..stored.len() {
            assert!(DurableRecord::from_stored(&stored[..cut]).is_err());
        }
    }
    assert_eq!(
        DurableRecord::from_stored(&[0; 15]),
        Err(RecordError::Truncated(15))
    );
}

/// Commit votes are subgroup-checked when aggregated, not on arrival: a vote
/// whose signature is a curve point outside the subgroup still decodes, but
/// it fails when verified alone and no certificate aggregates it, so the
/// replica's fallback (verify singly, drop the bad vote) is what meets it.
#[cfg(not(feature = "simulated-signatures"))]
#[test]
fn a_commit_vote_outside_the_subgroup_spoils_only_the_aggregate_it_is_in() {
    use crate::crypto::bls::{UncheckedSignature, off_subgroup_signature};
    let validators = validator_set(4);
    let digest = Digest::of(b"batch");
    let votes: Vec<CommitVote> = (0..3)
        .map(|i| CommitVote::sign(CHAIN, i, &keys(i).vote_key, 0, 1, digest))
        .collect();
    let good = CommitCertificate::aggregate(4, &votes).expect("aggregates");
    assert_eq!(good.verify(CHAIN, &validators), Ok(()));
    let mut bad = votes[2];
    bad.signature =
        UncheckedSignature::from_slice(&off_subgroup_signature()).expect("on the curve");
    assert_eq!(
        codec::decode_exact::<CommitVote>(&bad.to_encoded()),
        Ok(bad),
        "it decodes"
    );
    assert!(matches!(
        bad.verify(CHAIN, &validators),
        Err(CryptoError::NotInSubgroup { .. })
    ));
    assert!(CommitCertificate::aggregate(4, &[votes[0], votes[1], bad]).is_none());
    let fourth = CommitVote::sign(CHAIN, 3, &keys(3).vote_key, 0, 1, digest);
    let without = CommitCertificate::aggregate(4, &[votes[0], votes[1], fourth]).expect("ok");
    assert_eq!(without.verify(CHAIN, &validators), Ok(()));
}
