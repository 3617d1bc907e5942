//! Staking: who may lead a view, how the leader is drawn, and what an offence
//! costs.
//!
//! # The leader schedule
//! The primary of view `v` is drawn stake-weighted, by *follow-the-satoshi*
//! over the validator set in index order: a uniform draw `r` in
//! `[0, total weight)` picks the validator whose cumulative weight interval
//! holds `r`. The draw is `blake3_xof(seed || v)` with rejection sampling, so
//! it is exactly uniform (no modulo bias). Validators with weight 0 — no
//! stake, jailed or tombstoned — own no interval and are never selected
//! ([`select_leader`]).
//!
//! The seed and the weights come from a [`ScheduleAnchor`]: the state at the
//! replica's latest **stable** checkpoint, i.e. data certified by a quorum.
//! A replica pins the primary of the view it works in when it enters that
//! view, so a checkpoint that becomes stable during view `v` never changes
//! the primary of `v`: the seed produced inside view `v` is first used for
//! views after it.
//!
//! # The beacon
//! The seed is a beacon chained through checkpoints. The batch at each
//! checkpoint sequence `c` carries its proposer's ECVRF proof (RFC 9381)
//! over `(chain id, seed after c - K, epoch c / K)` ([`vrf_alpha`]). When a
//! replica executes `c` it verifies the proof with the proposer's VRF key;
//! the seed after `c` is `H(seed, epoch, beta)` for a valid proof and
//! `H(seed, epoch, "none")` otherwise ([`next_seed`]). Verification happens
//! at execution, on committed data, so every replica mixes the same value.
//!
//! # Bias resistance (what a withholding proposer can and cannot do)
//! - It **cannot choose** its VRF output: ECVRF is unique — for one key and
//!   one input there is exactly one valid proof and one `beta`.
//! - It **cannot use another input**: the input binds the chain id, the
//!   previous seed and the epoch; a proof over anything else fails
//!   verification and counts as withheld.
//! - It **cannot forge** another validator's contribution: proofs are checked
//!   against the proposer's own registered key.
//! - It **can withhold**: omit the proof (or send an invalid one), and the
//!   fallback seed is mixed instead. It sees both outcomes in advance, so it
//!   has one bit of influence per checkpoint batch it proposes. It can also
//!   decline to propose at all, which hands the checkpoint to the next
//!   primary after a view change — and costs it leadership of that view.
//! - The seed of view `v` never decides view `v` (pinning, above), so a
//!   proposer cannot react within the view it leads.
//!
//! The test `withholding_proposer_has_two_outcomes_at_most` keeps this true.
//!
//! # Offences and slashing
//! [`SlashingPolicy`] has four tiers (basis points of the stake at risk:
//! bonded, plus unbonding that began at or after the offence; see
//! "Unbonding" below):
//! liveness 1%, invalid proposal 5%, repeated offence 10%, equivocation 50%.
//! Evidence of equivocation (two conflicting signed votes or pre-prepares)
//! is slashed at its tier; evidence of a wrong NEW-VIEW (an `O` its own `V`
//! refutes) is an invalid proposal, and the repeated tier applies to any
//! offence but equivocation once the validator has one on record.
//! Equivocation also tombstones the validator for good. Liveness faults jail
//! it until a release height (default current + 1,000); **the release is
//! automatic** — a jailed validator becomes eligible again at the first
//! checkpoint at or after its release height, without a transaction. This
//! is deliberate: a validator that went down for a while should return
//! without operator ceremony, and the jail already cost it its stake share.
//!
//! Liveness is measured by heartbeats: each validator periodically commits a
//! `Heartbeat` transaction signed with its identity key (replicas propose
//! validators' own requests ahead of client load). The application jails a
//! staked validator with no committed heartbeat for more than
//! `liveness_window` sequence numbers, counted from genesis or its last
//! release (Polkadot's `im-online` works the same way). A validator cut off
//! by a partition for that long is indistinguishable from one that is down
//! and is jailed too. Known gap: a Byzantine primary that keeps committing
//! other requests could delay an honest validator's heartbeats, because the
//! progress timer watches execution, not each request; per-request timers
//! would close it.
//!
//! # Unbonding: stake stays slashable while evidence can still arrive
//! `Unstake` does not return credits at once. It moves the amount from
//! bonded stake into an *unbonding entry* that matures
//! `unbonding_sequences` after the height it was committed at; the first
//! transaction executed at or after that height returns it to the balance
//! (`UnbondingCompleted`, automatic like the jail release). Meanwhile the
//! entry no longer weighs in the leader schedule, but it can be slashed:
//! an offence at slot height `h` slashes, at the offence's tier, the bonded
//! stake *and* every entry that began unbonding at or after `h` (an entry
//! that began before `h` was not at stake when the offence happened; the
//! Cosmos SDK applies the same rule). For a liveness fault, `h` is the
//! validator's last heartbeat (or release). Evidence is admissible for `evidence_max_age`
//! after its slot and [`SlashingPolicy::validate`] requires
//! `unbonding_sequences >= evidence_max_age`, so no admissible evidence finds
//! the stake already gone: without this, an equivocator could `Unstake`
//! before its evidence commits and be slashed 50% of nothing. A validator
//! has at most [`UNBONDING_ENTRIES_MAX`] entries (one per height), so the
//! per-offence work stays bounded. Maturity, like the liveness sweep, is an
//! effect of reaching a height: it runs before the first transaction at that
//! height, even one that is then refused.
//!
//! # Voting power is fixed at genesis; the stake that backs it is locked
//! Quorums count the genesis voting power ([`ValidatorSet`]), not the stake:
//! slashing, jail and tombstoning change who may lead and what the offender
//! owns, not the weight of its vote. This is a deliberate limit, and what
//! keeps it sound:
//! - **Safety does not depend on stake.** It rests on faulty validators
//!   holding less than a third of the genesis power; an offender's
//!   tombstoning makes it no more able to break a quorum than before.
//! - **Its vote stays backed by stake.** A validator cannot unstake below
//!   its *bond floor*, `power * genesis_stake_per_power` (its genesis bond):
//!   a validator that could take its stake out and keep its vote would have
//!   nothing left to lose to an equivocation. Stake above the floor can be
//!   unbonded; stake below it only returns by slashing, which is the point.
//! - **What changing power would take.** PBFT keeps up to a window of
//!   sequences in flight, and a view change must intersect the commit
//!   quorum of every one of them. With power tables that differ between
//!   sequences, two quorums of different tables need not share an honest
//!   validator, so a table change must be handed over at a point where
//!   nothing is in flight: a checkpoint that a quorum of the old table knows
//!   to be stable, followed by a view change whose NEW-VIEW re-proposes
//!   nothing, from which the new table counts. State transfer across such
//!   changes then needs the light-client rule (a certificate signed by more
//!   than a third of the newest trusted table). That reconfiguration
//!   protocol is not built.

use crate::codec::put_bytes;
use crate::consensus::{LeaderSchedule, ReplicaIndex, ScheduleAnchor, ValidatorSet, View};
use crate::crypto::vrf::{VrfOutput, VrfProof, VrfPublicKey};

/// The most unbonding entries one account may have at once (one per
/// height); a further `Unstake` is refused until one matures.
pub const UNBONDING_ENTRIES_MAX: usize = 7;

const ALPHA_DOMAIN: &[u8] = b"shieldx/leader-vrf/v1";

/// The seed before the first checkpoint: fixed by the chain id.
pub fn genesis_seed(chain_id: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("shieldx beacon genesis v1");
    hasher.update(&(chain_id.len() as u64).to_le_bytes());
    hasher.update(chain_id);
    *hasher.finalize().as_bytes()
}

/// The VRF input of the proposer of checkpoint epoch `epoch`.
pub fn vrf_alpha(chain_id: &[u8], seed: &[u8; 32], epoch: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(ALPHA_DOMAIN.len() + chain_id.len() + 48);
    out.extend_from_slice(ALPHA_DOMAIN);
    put_bytes(&mut out, chain_id);
    out.extend_from_slice(seed);
    out.extend_from_slice(&epoch.to_le_bytes());
    out
}

/// The seed after epoch `epoch`: the previous seed mixed with the verified
/// VRF output of the checkpoint's proposer, or with a fixed marker when there
/// was no valid proof.
pub fn next_seed(seed: &[u8; 32], epoch: u64, output: Option<&VrfOutput>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("shieldx beacon v1");
    hasher.update(seed);
    hasher.update(&epoch.to_le_bytes());
    match output {
        Some(beta) => {
            hasher.update(&[1]);
            hasher.update(beta.as_bytes());
        }
        None => {
            hasher.update(&[0]);
        }
    }
    *hasher.finalize().as_bytes()
}

/// One beacon step at checkpoint epoch `epoch`: verifies the proposer's
/// proof over [`vrf_alpha`] with the proposer's registered key and mixes
/// its output; anything else (no proof, no such validator, a proof that
/// fails) mixes the fallback. This is the only way the seed advances.
pub fn beacon_step(
    chain_id: &[u8],
    seed: &[u8; 32],
    epoch: u64,
    proposer_key: Option<&VrfPublicKey>,
    proof: Option<&VrfProof>,
) -> [u8; 32] {
    let output = match (proposer_key, proof) {
        (Some(key), Some(proof)) => key.verify(&vrf_alpha(chain_id, seed, epoch), proof).ok(),
        _ => None,
    };
    next_seed(seed, epoch, output.as_ref())
}

/// Follow-the-satoshi: the validator whose cumulative-weight interval holds a
/// uniform draw from `(seed, view)`. `None` when every weight is 0.
pub fn select_leader(seed: &[u8; 32], view: View, weights: &[u64]) -> Option<ReplicaIndex> {
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if total == 0 {
        return None;
    }
    let mut hasher = blake3::Hasher::new_derive_key("shieldx leader draw v1");
    hasher.update(seed);
    hasher.update(&view.to_le_bytes());
    let mut xof = hasher.finalize_xof();
    // Accept draws below the largest multiple of `total`: exactly uniform.
    let zone = u128::MAX - (u128::MAX % total + 1) % total;
    let draw = loop {
        let mut word = [0u8; 16];
        xof.fill(&mut word);
        let x = u128::from_le_bytes(word);
        if x <= zone {
            break x % total;
        }
    };
    let mut cumulative = 0u128;
    for (index, &weight) in weights.iter().enumerate() {
        cumulative += u128::from(weight);
        if draw < cumulative {
            // Weights are per validator: at most VALIDATORS_MAX entries.
            return Some(index as ReplicaIndex);
        }
    }
    unreachable!("the draw is below the total weight")
}

/// The stake-weighted VRF schedule ([module docs](self)). When no validator
/// is eligible (every weight 0) it falls back to `view mod n` so the chain
/// keeps a primary; the simulator checks that this never happens while an
/// honest validator holds stake.
#[derive(Debug, Clone, Copy, Default)]
pub struct VrfSchedule;

impl LeaderSchedule for VrfSchedule {
    fn primary(
        &self,
        view: View,
        anchor: &ScheduleAnchor,
        validators: &ValidatorSet,
    ) -> ReplicaIndex {
        select_leader(&anchor.seed, view, &anchor.weights)
            .filter(|&index| usize::from(index) < validators.len())
            .unwrap_or((view % validators.len() as u64) as ReplicaIndex)
    }

    /// Eligible: a positive weight at the anchor, or nobody has one (the
    /// `view mod n` fallback then leads).
    fn eligible(&self, index: ReplicaIndex, anchor: &ScheduleAnchor) -> bool {
        anchor
            .weights
            .get(usize::from(index))
            .is_some_and(|w| *w > 0)
            || anchor.weights.iter().all(|w| *w == 0)
    }
}

/// The kinds of offence, in the order of their default severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Offence {
    /// Missed more than the allowed share of votes in a window.
    Liveness,
    /// Proposed something invalid.
    InvalidProposal,
    /// Signed two different digests for one slot.
    Equivocation,
}

impl Offence {
    /// A stable name, used in ledger events.
    pub fn name(self) -> &'static str {
        match self {
            Offence::Liveness => "liveness",
            Offence::InvalidProposal => "invalid-proposal",
            Offence::Equivocation => "equivocation",
        }
    }
}

/// What each offence costs. Basis points of the bonded stake (10,000 = 100%).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlashingPolicy {
    /// Liveness fault (default 1%); also jails.
    pub liveness_bps: u64,
    /// Invalid proposal (default 5%).
    pub invalid_proposal_bps: u64,
    /// A second or later non-equivocation offence (default 10%).
    pub repeated_bps: u64,
    /// Equivocation (default 50%); also tombstones.
    pub equivocation_bps: u64,
    /// How long a liveness fault jails, in sequence numbers (default 1,000).
    pub jail_sequences: u64,
    /// Evidence about a slot older than this many sequence numbers is refused
    /// (default 100,000).
    pub evidence_max_age: u64,
    /// A staked validator with no committed heartbeat for more than this
    /// many sequence numbers is jailed (default 10,000).
    pub liveness_window: u64,
    /// How often, in sequence numbers, liveness is checked (default 100).
    pub liveness_check_interval: u64,
    /// How long unstaked credits stay bonded and slashable before they
    /// return to the validator's balance, in sequence numbers (default
    /// 100,000). At least `evidence_max_age` ([`SlashingPolicy::validate`]).
    pub unbonding_sequences: u64,
}

impl Default for SlashingPolicy {
    fn default() -> SlashingPolicy {
        SlashingPolicy {
            liveness_bps: 100,
            invalid_proposal_bps: 500,
            repeated_bps: 1_000,
            equivocation_bps: 5_000,
            jail_sequences: 1_000,
            evidence_max_age: 100_000,
            liveness_window: 10_000,
            liveness_check_interval: 100,
            unbonding_sequences: 100_000,
        }
    }
}

/// Why a [`SlashingPolicy`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Unbonding ends before evidence expires, so an offender could take its
    /// stake out of reach of evidence that is still admissible.
    #[error(
        "unbonding_sequences ({unbonding}) is shorter than evidence_max_age ({evidence_max_age})"
    )]
    UnbondingShorterThanEvidence {
        /// The unbonding period.
        unbonding: u64,
        /// The evidence age limit.
        evidence_max_age: u64,
    },
    /// A tier above 10,000 basis points (100%).
    #[error("slashing tier {tier} is {bps} basis points, more than 10,000")]
    TierAboveWhole {
        /// The tier's name.
        tier: &'static str,
        /// Its value.
        bps: u64,
    },
}

impl SlashingPolicy {
    /// Checks the policy: every tier at most 100%, and unbonding at least as
    /// long as evidence stays admissible (module docs, "Unbonding").
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (tier, bps) in [
            ("liveness", self.liveness_bps),
            ("invalid-proposal", self.invalid_proposal_bps),
            ("repeated", self.repeated_bps),
            ("equivocation", self.equivocation_bps),
        ] {
            if bps > 10_000 {
                return Err(PolicyError::TierAboveWhole { tier, bps });
            }
        }
        if self.unbonding_sequences < self.evidence_max_age {
            return Err(PolicyError::UnbondingShorterThanEvidence {
                unbonding: self.unbonding_sequences,
                evidence_max_age: self.evidence_max_age,
            });
        }
        Ok(())
    }

    /// The share slashed for `offence` by a validator with `prior` earlier
    /// offences.
    pub fn bps(&self, offence: Offence, prior: usize) -> u64 {
        match offence {
            Offence::Equivocation => self.equivocation_bps,
            _ if prior > 0 => self.repeated_bps,
            Offence::Liveness => self.liveness_bps,
            Offence::InvalidProposal => self.invalid_proposal_bps,
        }
    }

    /// The amount slashed from `stake` at `bps`, rounded down.
    pub fn amount(stake: u64, bps: u64) -> u64 {
        (u128::from(stake) * u128::from(bps.min(10_000)) / 10_000) as u64
    }
}

/// A validator's standing, as the schedule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValidatorStatus {
    /// May lead and vote.
    Active,
    /// Excluded from the schedule until the first checkpoint at or after
    /// this sequence number; released automatically.
    JailedUntil(u64),
    /// Removed for good (equivocation).
    Tombstoned,
}

impl ValidatorStatus {
    /// True when the validator may be drawn as leader at `height`.
    pub fn eligible_at(self, height: u64) -> bool {
        match self {
            ValidatorStatus::Active => true,
            ValidatorStatus::JailedUntil(release) => height >= release,
            ValidatorStatus::Tombstoned => false,
        }
    }
}

#[cfg(test)]
mod tests;
