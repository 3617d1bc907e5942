//! Staking invariants under arbitrary sequences of staking transactions,
//! heartbeats, equivocation evidence and height jumps: credits are conserved
//! (balances + bonded + unbonding == supply, and the supply only falls by
//! what was slashed), a refused transaction changes nothing, a validator
//! never unstakes below its bond floor, and replay from genesis and from a
//! snapshot reaches the same state. Short periods (unbonding and evidence
//! age 30, liveness window 40 checked every 10, jail 20) make maturity,
//! jail, release and slashing of unbonding entries meet within a run.

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use shieldx_core::app::{App, AppConfig, State, Transaction, TxResult};
use shieldx_core::consensus::{
    Application as _, Evidence, EvidenceRecord, Signed, Validator, ValidatorSet, Vote,
};
use shieldx_core::crypto::Digest;
use shieldx_core::crypto::bls::BlsSecretKey;
use shieldx_core::crypto::ed25519::SigningKey;
use shieldx_core::crypto::vrf::VrfSecretKey;
use shieldx_core::ledger::memory::MemoryStore;
use shieldx_core::ledger::{AccountId, DomainEvent};

const CHAIN: &[u8] = b"prop-staking";
const ADMIN: AccountId = [0; 32];
const VALIDATORS: u8 = 4;
const STAKE_PER_POWER: u64 = 100;

fn identities() -> &'static [SigningKey] {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..VALIDATORS)
            .map(|i| SigningKey::from_slice(&[i + 1; 32]).expect("seed"))
            .collect()
    })
}

fn validator_set() -> ValidatorSet {
    ValidatorSet::new(
        (0..VALIDATORS)
            .map(|i| {
                let seed = [i + 1; 32];
                Validator {
                    identity: identities()[usize::from(i)].verifying_key(),
                    vote_key: BlsSecretKey::key_gen(&seed, b"").expect("ikm").public_key(),
                    vrf_key: VrfSecretKey::from_slice(&seed).expect("seed").public_key(),
                    power: 1 + u64::from(i % 2),
                }
            })
            .collect(),
    )
    .expect("valid set")
}

fn config() -> AppConfig {
    let mut config = AppConfig::new(CHAIN.to_vec(), ADMIN);
    config.validators = Some(validator_set());
    config.genesis_stake_per_power = STAKE_PER_POWER;
    config.slashing.evidence_max_age = 30;
    config.slashing.unbonding_sequences = 30;
    config.slashing.liveness_window = 40;
    config.slashing.liveness_check_interval = 10;
    config.slashing.jail_sequences = 20;
    config
}

fn account(validator: u8) -> AccountId {
    identities()[usize::from(validator)]
        .verifying_key()
        .to_bytes()
}

#[derive(Debug, Clone)]
enum Op {
    /// Heights to advance before the next transaction (at least 1).
    Advance(u64),
    Mint(u8, u64),
    Stake(u8, u64),
    Unstake(u8, u64),
    Heartbeat(u8),
    /// Validator, how many heights back its double prepare was.
    Equivocate(u8, u64),
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    let validator = 0..VALIDATORS;
    // Amounts large enough that even the 1% liveness tier slashes something.
    let amount = prop_oneof![8 => 100u64..5_000, 1 => 0u64..2, 1 => Just(u64::MAX)];
    prop_oneof![
        3 => (1u64..25).prop_map(Op::Advance),
        2 => (validator.clone(), amount.clone()).prop_map(|(v, a)| Op::Mint(v, a)),
        2 => (validator.clone(), amount.clone()).prop_map(|(v, a)| Op::Stake(v, a)),
        3 => (validator.clone(), amount).prop_map(|(v, a)| Op::Unstake(v, a)),
        1 => validator.clone().prop_map(Op::Heartbeat),
        1 => (validator, 0u64..40).prop_map(|(v, back)| Op::Equivocate(v, back)),
        1 => Just(Op::Checkpoint),
    ]
}

fn equivocation(validator: u8, sequence: u64) -> Transaction {
    let vote = |digest: &[u8]| {
        let body = Vote {
            view: 1,
            sequence,
            digest: Digest::of(digest),
        };
        Signed::sign(
            CHAIN,
            u16::from(validator),
            &identities()[usize::from(validator)],
            body,
        )
    };
    Transaction::Evidence {
        time_ms: 0,
        evidence: Box::new(EvidenceRecord::new(
            CHAIN,
            Evidence::ConflictingPrepare(vote(b"a"), vote(b"b")),
        )),
    }
}

/// The transaction of `op` at `height`, and who sends it.
fn tx(op: &Op, height: u64) -> Option<(AccountId, Transaction)> {
    let time_ms = 1_000 + height;
    Some(match *op {
        Op::Mint(v, amount) => (
            ADMIN,
            Transaction::Mint {
                time_ms,
                key: height.to_le_bytes().to_vec(),
                to: account(v),
                amount,
            },
        ),
        Op::Stake(v, amount) => (account(v), Transaction::Stake { time_ms, amount }),
        Op::Unstake(v, amount) => (account(v), Transaction::Unstake { time_ms, amount }),
        Op::Heartbeat(v) => (account(v), Transaction::Heartbeat { time_ms }),
        Op::Equivocate(v, back) => (ADMIN, equivocation(v, height.saturating_sub(back).max(1))),
        Op::Advance(_) | Op::Checkpoint => return None,
    })
}

fn held(state: &State) -> u128 {
    let sum = |values: &mut dyn Iterator<Item = u64>| values.map(u128::from).sum::<u128>();
    sum(&mut state.balances.values().copied())
        + sum(&mut state.stakes.values().copied())
        + sum(&mut state
            .unbonding
            .values()
            .flat_map(|entries| entries.values())
            .map(|entry| entry.amount))
}

/// Minted minus slashed, from the log itself.
fn expected_supply(app: &App<MemoryStore>) -> u128 {
    let genesis = validator_set()
        .validators()
        .iter()
        .map(|v| u128::from(v.power * STAKE_PER_POWER))
        .sum::<u128>();
    let mut supply = genesis as i128;
    app.ledger()
        .replay(|record| match &record.event {
            DomainEvent::Minted { amount, .. } => supply += i128::from(*amount),
            DomainEvent::Burned { amount, .. }
            | DomainEvent::Slashed { amount, .. }
            | DomainEvent::UnbondingSlashed { amount, .. } => supply -= i128::from(*amount),
            _ => {}
        })
        .expect("replay");
    supply as u128
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn staking_conserves_credits_and_replays(ops in proptest::collection::vec(op(), 1..80)) {
        let mut app = App::open(config(), MemoryStore::new()).expect("opens");
        let floors: Vec<u64> = validator_set()
            .validators()
            .iter()
            .map(|v| v.power * STAKE_PER_POWER)
            .collect();
        let mut height = 1u64;
        for op in &ops {
            match op {
                Op::Advance(by) => {
                    height += by;
                    continue;
                }
                Op::Checkpoint => {
                    app.checkpoint().expect("checkpoint");
                    continue;
                }
                _ => {}
            }
            let (client, t) = tx(op, height).expect("a transaction");
            common::reach(&mut app, height, ADMIN);
            let before = app.state_digest();
            let head = app.ledger().head();
            let stake_before = app.state().stake(&client);
            let result = app.execute_transaction(height, client, height, &t);
            match &result {
                TxResult::Rejected(_) => {
                    prop_assert_eq!(app.state_digest(), before, "a refusal changed state: {:?}", op);
                    prop_assert_eq!(app.ledger().head(), head);
                }
                TxResult::Applied { .. } => {
                    if let Op::Unstake(v, amount) = op {
                        prop_assert!(
                            stake_before - amount >= floors[usize::from(*v)],
                            "unstaked below the bond floor"
                        );
                    }
                }
            }
            let s = app.state();
            prop_assert_eq!(held(s), u128::from(s.supply), "after {:?} at {}", op, height);
            prop_assert_eq!(u128::from(s.supply), expected_supply(&app));
            for entries in s.unbonding.values() {
                prop_assert!(!entries.is_empty());
                prop_assert!(entries.len() <= shieldx_core::staking::UNBONDING_ENTRIES_MAX);
            }
        }
        common::assert_replays(&mut app, config)?;
    }
}
