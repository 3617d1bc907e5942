//! Invariant checkers, written independently of the protocol code they judge:
//! they recompute quorums with their own arithmetic (`3 * power > 2 * total`),
//! verify certificates from raw keys, and track execution from outputs alone.

use std::collections::{BTreeMap, BTreeSet};

use shieldx_core::codec::Encode;
use shieldx_core::consensus::{Committed, Evidence, Phase, ReplicaIndex, Reply, Sequence};
use shieldx_core::crypto::Digest;
use shieldx_core::crypto::bls::{BlsPublicKey, BlsSignature, fast_aggregate_verify};
use shieldx_core::crypto::ed25519::VerifyingKey;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
    /// Simulated time, nanoseconds.
    pub at_ns: u64,
}

/// The checker's view of the validator set: raw keys and powers.
#[derive(Debug, Clone)]
pub struct CheckerValidators {
    /// BLS vote keys by index.
    pub vote_keys: Vec<BlsPublicKey>,
    /// Powers by index.
    pub powers: Vec<u64>,
}

/// What a run owes by its end. Something that happened at `at_ns` (a
/// request submitted, an equivocation injected) must have taken effect by
/// the end only if the run left it the scenario's whole liveness bound
/// after faults stopped: `max(at, faults stop) + bound <= end`. A request
/// or an equivocation later than that (a Byzantine primary that first
/// leads in the last milliseconds) is checked for safety, not liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessWindow {
    /// When faults stop.
    pub faults_stop_ns: u64,
    /// The scenario's liveness bound.
    pub bound_ns: u64,
    /// The end of the run.
    pub end_ns: u64,
}

impl LivenessWindow {
    /// The deadline of something at `at_ns`: `max(at, faults stop) + bound`.
    pub fn deadline_ns(&self, at_ns: u64) -> u64 {
        at_ns.max(self.faults_stop_ns).saturating_add(self.bound_ns)
    }

    /// Whether something at `at_ns` must have taken effect by the end.
    pub fn owes(&self, at_ns: u64) -> bool {
        self.deadline_ns(at_ns) <= self.end_ns
    }
}

/// Accumulates observations during a run and reports violations.
#[derive(Debug)]
pub struct Checker {
    chain_id: Vec<u8>,
    validators: CheckerValidators,
    byzantine: BTreeSet<ReplicaIndex>,
    /// Per node: the next sequence it must execute.
    next_sequence: Vec<Sequence>,
    /// The one digest committed at each sequence, by anyone honest.
    agreed: BTreeMap<Sequence, Digest>,
    /// Certificates already verified, by (sequence, digest, aggregate bytes).
    verified: BTreeSet<(Sequence, Digest, Vec<u8>)>,
    /// Per node: (client, request id) -> the sequence it executed at.
    executed: Vec<BTreeMap<([u8; 32], u64), Sequence>>,
    /// Per node: simulated time of its last execution.
    /// Per node: when it reached each height (by execution or transfer).
    reached_ns: Vec<BTreeMap<Sequence, u64>>,
    submitted: BTreeMap<([u8; 32], u64), Digest>,
    /// When each request was first submitted.
    submitted_at: BTreeMap<([u8; 32], u64), u64>,
    /// Submitted requests that need not commit (periodic heartbeats).
    best_effort: BTreeSet<([u8; 32], u64)>,
    evidence: BTreeMap<Digest, ReplicaIndex>,
    /// The one checkpoint state digest honest nodes signed at each sequence.
    checkpoints: BTreeMap<Sequence, Digest>,
    /// State transfers to check once the checkpoint's digest is known.
    transfers: Vec<(ReplicaIndex, Sequence, Digest, u64)>,
    /// Every consensus signature honest nodes sent: one digest per slot and phase.
    signatures: BTreeMap<(ReplicaIndex, u64, Sequence, Phase), Digest>,
    /// Where each request committed (first honest commit).
    committed_at: BTreeMap<([u8; 32], u64), Sequence>,
    /// Each node made to equivocate, with when it first did.
    equivocators: BTreeMap<ReplicaIndex, u64>,
    violations: Vec<Violation>,
    checks: u64,
}

impl Checker {
    /// A checker for one run.
    pub fn new(
        chain_id: &[u8],
        validators: CheckerValidators,
        byzantine: BTreeSet<ReplicaIndex>,
    ) -> Checker {
        let n = validators.powers.len();
        Checker {
            chain_id: chain_id.to_vec(),
            validators,
            byzantine,
            next_sequence: vec![1; n],
            agreed: BTreeMap::new(),
            verified: BTreeSet::new(),
            executed: vec![BTreeMap::new(); n],
            reached_ns: vec![BTreeMap::new(); n],
            submitted: BTreeMap::new(),
            submitted_at: BTreeMap::new(),
            best_effort: BTreeSet::new(),
            evidence: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            transfers: Vec::new(),
            committed_at: BTreeMap::new(),
            signatures: BTreeMap::new(),
            equivocators: BTreeMap::new(),
            violations: Vec::new(),
            checks: 0,
        }
    }

    fn violate(&mut self, invariant: &'static str, detail: String, at_ns: u64) {
        self.violations.push(Violation {
            invariant,
            detail,
            at_ns,
        });
    }

    /// A request that may commit but need not (a heartbeat superseded by
    /// the next one): checked for validity, not for liveness.
    pub fn on_submit_best_effort(
        &mut self,
        client: &VerifyingKey,
        request_id: u64,
        payload: &[u8],
        at_ns: u64,
    ) {
        self.on_submit(client, request_id, payload, at_ns);
        self.best_effort.insert((client.to_bytes(), request_id));
    }

    /// A client submitted a request at `at_ns`.
    pub fn on_submit(
        &mut self,
        client: &VerifyingKey,
        request_id: u64,
        payload: &[u8],
        at_ns: u64,
    ) {
        let key = (client.to_bytes(), request_id);
        self.submitted.insert(key, Digest::of(payload));
        self.submitted_at.entry(key).or_insert(at_ns);
    }

    /// A Byzantine node sent conflicting signed messages at `at_ns`.
    pub fn on_equivocation_injected(&mut self, node: ReplicaIndex, at_ns: u64) {
        self.equivocators.entry(node).or_insert(at_ns);
    }

    /// The nodes made to equivocate early enough that `window` owes their
    /// evidence and slashing by the end of the run.
    pub fn equivocators_owed(&self, window: &LivenessWindow) -> BTreeSet<ReplicaIndex> {
        self.equivocators
            .iter()
            .filter(|(_, at)| window.owes(**at))
            .map(|(node, _)| *node)
            .collect()
    }

    /// A node committed and executed a batch.
    pub fn on_commit(&mut self, node: ReplicaIndex, committed: &Committed, at_ns: u64) {
        if self.byzantine.contains(&node) {
            return;
        }
        self.checks += 1;
        let index = usize::from(node);
        let sequence = committed.sequence;
        if sequence != self.next_sequence[index] {
            self.violate(
                "order: executed log is a gap-free prefix",
                format!(
                    "node {node} executed {sequence}, expected {}",
                    self.next_sequence[index]
                ),
                at_ns,
            );
        }
        self.next_sequence[index] = sequence + 1;
        let digest = Digest::of(&committed.batch.to_encoded());
        if digest != committed.certificate.digest || sequence != committed.certificate.sequence {
            self.violate(
                "certificate matches its batch",
                format!("node {node} at {sequence}"),
                at_ns,
            );
        }
        match self.agreed.get(&sequence) {
            Some(agreed) if *agreed != digest => self.violate(
                "agreement",
                format!("node {node} committed {digest} at {sequence}, others {agreed}"),
                at_ns,
            ),
            Some(_) => {}
            None => {
                self.agreed.insert(sequence, digest);
            }
        }
        self.check_certificate(node, committed, at_ns);
        for request in &committed.batch.requests {
            let key = (request.client.to_bytes(), request.request_id);
            self.committed_at.entry(key).or_insert(sequence);
            match self.submitted.get(&key) {
                Some(payload) if *payload == Digest::of(&request.payload) => {}
                _ => self.violate(
                    "validity: only submitted requests commit",
                    format!("node {node} committed an unknown request at {sequence}"),
                    at_ns,
                ),
            }
        }
        self.reached_ns[index].insert(sequence, at_ns);
    }

    fn check_certificate(&mut self, node: ReplicaIndex, committed: &Committed, at_ns: u64) {
        let certificate = &committed.certificate;
        let key = (
            certificate.sequence,
            certificate.digest,
            certificate.aggregate.to_bytes().to_vec(),
        );
        if self.verified.contains(&key) {
            return;
        }
        let total: u64 = self.validators.powers.iter().sum();
        let signers: Vec<ReplicaIndex> = certificate.signers.iter().collect();
        let power: u64 = signers
            .iter()
            .map(|i| {
                self.validators
                    .powers
                    .get(usize::from(*i))
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        if 3 * u128::from(power) <= 2 * u128::from(total) {
            self.violate(
                "certificate holds > 2/3 of the power",
                format!("node {node} at {}: {power}/{total}", certificate.sequence),
                at_ns,
            );
            return;
        }
        let keys: Vec<BlsPublicKey> = signers
            .iter()
            .filter_map(|i| self.validators.vote_keys.get(usize::from(*i)).copied())
            .collect();
        let mut message = b"shieldx/commit/v1".to_vec();
        message.extend_from_slice(&(self.chain_id.len() as u32).to_le_bytes());
        message.extend_from_slice(&self.chain_id);
        message.extend_from_slice(&certificate.view.to_le_bytes());
        message.extend_from_slice(&certificate.sequence.to_le_bytes());
        message.extend_from_slice(certificate.digest.as_bytes());
        let aggregate: BlsSignature = certificate.aggregate;
        if fast_aggregate_verify(&keys, &message, &aggregate).is_err() {
            self.violate(
                "certificate verifies",
                format!("node {node} at {}", certificate.sequence),
                at_ns,
            );
            return;
        }
        self.verified.insert(key);
    }

    /// A node signed a checkpoint: honest nodes must agree on every state digest.
    pub fn on_checkpoint(
        &mut self,
        node: ReplicaIndex,
        sequence: Sequence,
        digest: Digest,
        at_ns: u64,
    ) {
        if self.byzantine.contains(&node) {
            return;
        }
        match self.checkpoints.get(&sequence) {
            Some(agreed) if *agreed != digest => self.violate(
                "agreement on checkpoint state",
                format!("node {node} checkpointed {digest} at {sequence}, others {agreed}"),
                at_ns,
            ),
            Some(_) => {}
            None => {
                self.checkpoints.insert(sequence, digest);
            }
        }
    }

    /// A node restored a certified snapshot at `sequence` instead of executing to it.
    pub fn on_state_transfer(
        &mut self,
        node: ReplicaIndex,
        sequence: Sequence,
        digest: Digest,
        at_ns: u64,
    ) {
        if self.byzantine.contains(&node) {
            return;
        }
        let index = usize::from(node);
        if sequence < self.next_sequence[index] {
            self.violate(
                "state transfer moves forward",
                format!("node {node} restored {sequence}"),
                at_ns,
            );
        }
        self.next_sequence[index] = sequence + 1;
        self.reached_ns[index].insert(sequence, at_ns);
        self.transfers.push((node, sequence, digest, at_ns));
    }

    /// An honest node sent a signed consensus message.
    pub fn on_signed(
        &mut self,
        node: ReplicaIndex,
        view: u64,
        sequence: Sequence,
        phase: Phase,
        digest: Digest,
        at_ns: u64,
    ) {
        match self.signatures.get(&(node, view, sequence, phase)) {
            Some(first) if *first != digest => self.violate(
                "an honest node never signs two digests for one slot",
                format!("node {node} signed {first} and {digest} for view {view}, sequence {sequence}, {phase:?}"),
                at_ns,
            ),
            Some(_) => {}
            None => {
                self.signatures.insert((node, view, sequence, phase), digest);
            }
        }
    }

    /// A crashed node restarted from its durable records with a fresh application:
    /// its executed log starts again from the beginning.
    pub fn on_restart(&mut self, node: ReplicaIndex) {
        self.next_sequence[usize::from(node)] = 1;
    }

    /// A node replied to a client (fresh or cached).
    pub fn on_reply(&mut self, node: ReplicaIndex, reply: &Reply, at_ns: u64) {
        if self.byzantine.contains(&node) {
            return;
        }
        let key = (reply.client.to_bytes(), reply.request_id);
        let first = *self.executed[usize::from(node)]
            .entry(key)
            .or_insert(reply.sequence);
        if first != reply.sequence {
            self.violate(
                "exactly-once execution",
                format!(
                    "node {node} executed request {} at {first} and {}",
                    reply.request_id, reply.sequence
                ),
                at_ns,
            );
        }
    }

    /// A node produced evidence.
    pub fn on_evidence(&mut self, node: ReplicaIndex, evidence: &Evidence, at_ns: u64) {
        let accused = evidence.validator();
        if !self.byzantine.contains(&accused) {
            self.violate(
                "no honest validator is accused",
                format!("node {node} accused {accused}"),
                at_ns,
            );
        }
        self.evidence.insert(evidence.id(), accused);
    }

    /// Distinct evidence records seen.
    pub fn evidence_count(&self) -> usize {
        self.evidence.len()
    }

    /// Highest sequence any honest node executed.
    pub fn committed_height(&self) -> Sequence {
        self.agreed.keys().next_back().copied().unwrap_or(0)
    }

    /// Commit observations checked.
    pub fn checks(&self) -> u64 {
        self.checks
    }

    /// Whether `window` owes request `key` by the end: not best-effort, and
    /// submitted early enough.
    fn owed(&self, key: &([u8; 32], u64), window: &LivenessWindow) -> bool {
        !self.best_effort.contains(key)
            && self
                .submitted_at
                .get(key)
                .is_some_and(|at| window.owes(*at))
    }

    /// End-of-run checks: liveness over `healthy` nodes and accountability,
    /// for what `window` owes.
    pub fn finish(&mut self, healthy: &[ReplicaIndex], window: LivenessWindow) -> Vec<Violation> {
        let end_ns = window.end_ns;
        for (node, sequence, digest, at_ns) in self.transfers.clone() {
            if self
                .checkpoints
                .get(&sequence)
                .is_some_and(|agreed| *agreed != digest)
            {
                self.violate(
                    "state transfer restores the agreed state",
                    format!("node {node} at {sequence}"),
                    at_ns,
                );
            }
        }
        let owed = self
            .submitted
            .keys()
            .filter(|k| self.owed(k, &window))
            .count();
        let uncommitted = self
            .submitted
            .keys()
            .filter(|k| self.owed(k, &window) && !self.committed_at.contains_key(*k))
            .count();
        if uncommitted > 0 {
            self.violate(
                "liveness: every request commits after faults stop",
                format!("{uncommitted} of {owed} requests owed by the end never committed"),
                end_ns,
            );
        }
        // The height holding the last request that had to commit.
        // Each owed request's height and deadline: max(submitted, faults
        // stop) + bound.
        let owed_heights: Vec<(Sequence, u64)> = self
            .committed_at
            .iter()
            .filter(|(k, _)| self.owed(k, &window))
            .map(|(k, &height)| {
                let submitted = self.submitted_at.get(k).copied().unwrap_or(0);
                (height, window.deadline_ns(submitted))
            })
            .collect();
        // The height holding the last request that had to commit.
        let needed = owed_heights.iter().map(|(h, _)| *h).max().unwrap_or(0);
        for &node in healthy {
            let index = usize::from(node);
            let height = self.next_sequence[index] - 1;
            if height < needed {
                self.violate(
                    "liveness: every healthy node reaches every request",
                    format!("node {node} is at {height}, requests committed up to {needed}"),
                    end_ns,
                );
                continue;
            }
            let late = owed_heights.iter().find_map(|&(owed, deadline)| {
                let (_, &at) = self.reached_ns[index].range(owed..).next()?;
                (at > deadline).then_some((owed, at))
            });
            if let Some((owed, at)) = late {
                self.violate(
                    "liveness: within the scenario's bound",
                    format!("node {node} reached height {owed} at {} ms", at / 1_000_000),
                    end_ns,
                );
            }
        }
        let accused: BTreeSet<ReplicaIndex> = self.evidence.values().copied().collect();
        for node in self.equivocators_owed(&window) {
            if !accused.contains(&node) {
                self.violate(
                    "every injected equivocation yields evidence",
                    format!("node {node} equivocated without evidence"),
                    end_ns,
                );
            }
        }
        self.violations.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shieldx_core::crypto::ed25519::SigningKey;

    const MS: u64 = 1_000_000;

    /// Faults stop at 1 s, the bound is 10 s, the run ends at 11 s.
    fn window() -> LivenessWindow {
        LivenessWindow {
            faults_stop_ns: 1_000 * MS,
            bound_ns: 10_000 * MS,
            end_ns: 11_000 * MS,
        }
    }

    #[test]
    fn only_what_had_the_whole_bound_is_owed_by_the_end() {
        let window = window();
        assert!(window.owes(0));
        assert!(window.owes(1_000 * MS), "at faults stop: exactly the bound");
        assert!(!window.owes(1_000 * MS + 1));
        assert!(!window.owes(10_950 * MS), "50 ms before the end");

        let validators = CheckerValidators {
            vote_keys: Vec::new(),
            powers: vec![1; 4],
        };
        let mut checker = Checker::new(b"chain", validators, BTreeSet::new());
        let client = SigningKey::from_slice(&[9; 32])
            .expect("seed")
            .verifying_key();
        checker.on_submit(&client, 1, b"early", 500 * MS);
        checker.on_submit(&client, 2, b"late", 10_950 * MS);
        checker.on_equivocation_injected(3, 10_950 * MS);
        let violations = checker.finish(&[0, 1, 2], window);
        let details: Vec<String> = violations
            .iter()
            .map(|v| format!("{}: {}", v.invariant, v.detail))
            .collect();
        assert_eq!(
            details,
            vec![
                "liveness: every request commits after faults stop: \
                 1 of 1 requests owed by the end never committed"
                    .to_string()
            ],
            "the early request is owed; the late one and the late equivocation are not"
        );

        checker.on_equivocation_injected(2, 200 * MS);
        let violations = checker.finish(&[0, 1, 3], window);
        assert!(
            violations
                .iter()
                .any(|v| v.invariant == "every injected equivocation yields evidence"),
            "an early equivocation without evidence is still caught"
        );
    }
}
