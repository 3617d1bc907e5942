//! Credits-ledger invariants under arbitrary transaction sequences:
//! conservation, no negative balance (a rejected transaction changes nothing),
//! idempotency, and replay determinism from genesis and from any snapshot.
//! Unbonding takes 5 heights here, so unstaked credits mature within a run.

mod common;

use proptest::prelude::*;
use shieldx_core::app::{App, AppConfig, Rejection, Transaction, TransferLeg, TxResult};
use shieldx_core::consensus::Application as _;
use shieldx_core::ledger::AccountId;
use shieldx_core::ledger::memory::MemoryStore;

const ADMIN: AccountId = [0; 32];

fn account(i: u8) -> AccountId {
    [i + 1; 32]
}

#[derive(Debug, Clone)]
enum Op {
    Mint(u8, u64, u8),
    Burn(u8, u64, u8),
    Transfer(u8, Vec<(u8, u64)>, u8),
    Stake(u8, u64),
    Unstake(u8, u64),
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0u8..4;
    let amount = prop_oneof![1u64..50, 0u64..3, Just(u64::MAX)];
    let key = 0u8..6;
    prop_oneof![
        (who.clone(), amount.clone(), key.clone()).prop_map(|(w, a, k)| Op::Mint(w, a, k)),
        (who.clone(), amount.clone(), key.clone()).prop_map(|(w, a, k)| Op::Burn(w, a, k)),
        (
            who.clone(),
            proptest::collection::vec((0u8..4, 1u64..40), 1..4),
            key
        )
            .prop_map(|(w, legs, k)| Op::Transfer(w, legs, k)),
        (who.clone(), amount.clone()).prop_map(|(w, a)| Op::Stake(w, a)),
        (who, amount).prop_map(|(w, a)| Op::Unstake(w, a)),
        Just(Op::Checkpoint),
    ]
}

fn tx(op: &Op, time: u64) -> Option<(AccountId, Transaction)> {
    let key = |k: u8| vec![b'k', k];
    Some(match op {
        Op::Mint(w, a, k) => (
            ADMIN,
            Transaction::Mint {
                time_ms: time,
                key: key(*k),
                to: account(*w),
                amount: *a,
            },
        ),
        Op::Burn(w, a, k) => (
            account(*w),
            Transaction::Burn {
                time_ms: time,
                key: key(*k),
                amount: *a,
            },
        ),
        Op::Transfer(w, legs, k) => (
            account(*w),
            Transaction::Transfer {
                time_ms: time,
                key: key(*k),
                legs: legs
                    .iter()
                    .map(|&(to, amount)| TransferLeg {
                        to: account(to),
                        amount,
                    })
                    .collect(),
            },
        ),
        Op::Stake(w, a) => (
            account(*w),
            Transaction::Stake {
                time_ms: time,
                amount: *a,
            },
        ),
        Op::Unstake(w, a) => (
            account(*w),
            Transaction::Unstake {
                time_ms: time,
                amount: *a,
            },
        ),
        Op::Checkpoint => return None,
    })
}

fn config() -> AppConfig {
    let mut config = AppConfig::new(b"prop-chain".to_vec(), ADMIN);
    config.slashing.evidence_max_age = 5;
    config.slashing.unbonding_sequences = 5;
    config
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn credits_invariants_hold(ops in proptest::collection::vec(op(), 1..60)) {
        let mut app = App::open(config(), MemoryStore::new()).expect("opens");
        let (mut minted, mut burned) = (0u128, 0u128);
        let mut results: Vec<(AccountId, Transaction, TxResult)> = Vec::new();
        for (h, op) in ops.iter().enumerate() {
            let height = h as u64 + 1;
            let Some((client, t)) = tx(op, 1_000 + height) else {
                app.checkpoint().expect("checkpoint");
                continue;
            };
            common::reach(&mut app, height, account(0));
            let before = app.state_digest();
            let head = app.ledger().head();
            let supply = app.state().supply;
            let result = app.execute_transaction(height, client, height, &t);
            match &result {
                TxResult::Rejected(_) => {
                    prop_assert_eq!(app.state_digest(), before, "a rejection changed state: {:?}", op);
                    prop_assert_eq!(app.ledger().head(), head);
                }
                TxResult::Applied { .. } => {
                    let delta = i128::from(app.state().supply) - i128::from(supply);
                    match op {
                        Op::Mint(..) => minted += delta as u128,
                        Op::Burn(..) => burned += (-delta) as u128,
                        _ => prop_assert_eq!(delta, 0, "only mint and burn change supply: {:?}", op),
                    }
                }
            }
            // Conservation: balances + stakes + unbonding == supply ==
            // minted - burned.
            let s = app.state();
            let held: u128 = s.balances.values().map(|&b| u128::from(b)).sum::<u128>()
                + s.stakes.values().map(|&b| u128::from(b)).sum::<u128>()
                + s.unbonding
                    .values()
                    .flat_map(|entries| entries.values())
                    .map(|e| u128::from(e.amount))
                    .sum::<u128>();
            prop_assert_eq!(held, u128::from(s.supply));
            prop_assert_eq!(u128::from(s.supply), minted - burned);
            prop_assert!(s.balances.values().all(|&b| b > 0), "zero balances are pruned, none negative");
            results.push((client, t, result));
        }
        // Idempotency: every keyed transaction repeated returns its original
        // result (or the same conflict), and changes nothing.
        common::reach(&mut app, 10_000, account(0));
        let digest = app.state_digest();
        let mut seen = std::collections::BTreeMap::new();
        for (client, t, result) in &results {
            if matches!(t, Transaction::Stake { .. } | Transaction::Unstake { .. }) {
                continue;
            }
            let key = format!("{client:?}/{:?}", match t {
                Transaction::Mint { key, .. } | Transaction::Burn { key, .. } | Transaction::Transfer { key, .. } => key.clone(),
                _ => vec![],
            });
            if let TxResult::Applied { .. } = result { seen.insert(key, (t.clone(), result.clone(), *client)); }
        }
        for (t, result, client) in seen.values() {
            let again = app.execute_transaction(10_000, *client, 10_000, t);
            let conflict = matches!(again, TxResult::Rejected(Rejection::IdempotencyConflict));
            prop_assert!(again == *result || conflict, "{:?} then {:?}", result, again);
            prop_assert_eq!(app.state_digest(), digest);
        }
    }

    #[test]
    fn replay_from_genesis_and_from_snapshot_agree(ops in proptest::collection::vec(op(), 1..60)) {
        let mut app = App::open(config(), MemoryStore::new()).expect("opens");
        for (h, op) in ops.iter().enumerate() {
            let height = h as u64 + 1;
            match tx(op, 1_000 + height * 7) {
                Some((client, t)) => { app.execute_transaction(height, client, height, &t); }
                None => app.checkpoint().expect("checkpoint"),
            }
        }
        common::assert_replays(&mut app, config)?;
    }
}
