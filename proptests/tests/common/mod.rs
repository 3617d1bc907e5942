//! Helpers the application property tests share.

use proptest::prelude::*;
use shieldx_core::app::{App, AppConfig, Rejection, Transaction, TxResult};
use shieldx_core::consensus::Application as _;
use shieldx_core::ledger::memory::MemoryStore;
use shieldx_core::ledger::{AccountId, EventStore as _};

/// Runs what reaching `height` does by itself (unbonding maturity, the
/// liveness sweep) with a transaction from `client` that is always refused,
/// so that what follows measures only the transaction under test.
pub fn reach(app: &mut App<MemoryStore>, height: u64, client: AccountId) {
    let probe = Transaction::Unstake {
        time_ms: 0,
        amount: 0,
    };
    let result = app.execute_transaction(height, client, 0, &probe);
    assert!(matches!(
        result,
        TxResult::Rejected(Rejection::InvalidAmount(_))
    ));
}

/// Syncs `app`'s log and checks that reopening it (snapshot + suffix) and
/// replaying it from genesis both reach its state digest.
pub fn assert_replays(
    app: &mut App<MemoryStore>,
    config: fn() -> AppConfig,
) -> Result<(), TestCaseError> {
    app.ledger_mut().sync().expect("sync");
    let digest = app.state_digest();
    let store = app.ledger().store().clone();
    let from_snapshot = App::open(config(), store.clone()).expect("reopens");
    prop_assert_eq!(from_snapshot.state_digest(), digest);
    let mut genesis = MemoryStore::new();
    genesis
        .append(&store.read(1, usize::MAX).expect("read"))
        .expect("append");
    let from_genesis = App::open(config(), genesis).expect("replays");
    prop_assert_eq!(from_genesis.state_digest(), digest);
    Ok(())
}
