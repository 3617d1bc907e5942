//! The redb event store: the shared conformance suite, the application over
//! it across reopen, and refusal of a corrupted log.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use shieldx_core::app::{App, AppConfig, Transaction, TransferLeg};
use shieldx_core::consensus::Application as _;
use shieldx_core::ledger::{Ledger, LedgerError, conformance};
use shieldx_daemon::store::RedbStore;

fn fresh_path() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("shieldx-redb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}.redb", N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn redb_store_passes_the_conformance_suite() {
    let paths = std::cell::RefCell::new(Vec::new());
    conformance::run(
        || {
            let path = fresh_path();
            paths.borrow_mut().push(path.clone());
            RedbStore::open(&path).expect("open")
        },
        |store| {
            drop(store);
            let path = paths.borrow().last().cloned().expect("a store was made");
            RedbStore::open(&path).expect("reopen")
        },
    );
    for p in paths.into_inner() {
        let _ = std::fs::remove_file(p);
    }
}

const ADMIN: [u8; 32] = [1; 32];

#[test]
fn the_application_reopens_on_redb_with_the_same_state() {
    let path = fresh_path();
    let config = || AppConfig::new(b"redb-chain".to_vec(), ADMIN);
    let digest = {
        let mut app = App::open(config(), RedbStore::open(&path).expect("open")).expect("app");
        for h in 1..200u64 {
            let tx = if h % 2 == 1 {
                Transaction::Mint {
                    time_ms: h,
                    key: h.to_le_bytes().to_vec(),
                    to: [2; 32],
                    amount: 10,
                }
            } else {
                Transaction::Transfer {
                    time_ms: h,
                    key: h.to_le_bytes().to_vec(),
                    legs: vec![TransferLeg {
                        to: [3; 32],
                        amount: 4,
                    }],
                }
            };
            let client = if h % 2 == 1 { ADMIN } else { [2; 32] };
            app.execute_transaction(h, client, h, &tx);
            if h == 120 {
                app.checkpoint().expect("checkpoint");
            }
        }
        app.ledger_mut().sync().expect("sync");
        app.state_digest()
    };
    let reopened = App::open(config(), RedbStore::open(&path).expect("reopen")).expect("app");
    assert_eq!(reopened.state_digest(), digest);
    assert_eq!(reopened.state().balance(&[3; 32]), 99 * 4);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_corrupted_entry_is_refused_at_open() {
    let path = fresh_path();
    {
        let mut app = App::open(
            AppConfig::new(b"c".to_vec(), ADMIN),
            RedbStore::open(&path).expect("open"),
        )
        .expect("app");
        for h in 1..10u64 {
            app.execute_transaction(
                h,
                ADMIN,
                h,
                &Transaction::Mint {
                    time_ms: h,
                    key: vec![h as u8],
                    to: [2; 32],
                    amount: 1,
                },
            );
        }
        app.ledger_mut().sync().expect("sync");
    }
    {
        // Flip one byte of entry 5 behind the store's back.
        let db = redb::Database::create(&path).expect("db");
        use redb::ReadableTable as _;
        let table: redb::TableDefinition<'_, u64, &[u8]> =
            redb::TableDefinition::new("ledger_entries");
        let tx = db.begin_write().expect("write");
        {
            let mut t = tx.open_table(table).expect("table");
            let mut value = t.get(5).expect("get").expect("entry 5").value().to_vec();
            let last = value.len() - 1;
            value[last] ^= 0x40;
            t.insert(5, value.as_slice()).expect("insert");
        }
        tx.commit().expect("commit");
    }
    match Ledger::open(RedbStore::open(&path).expect("open")) {
        Err(LedgerError::Corrupt { sequence, .. }) => assert_eq!(sequence, 5),
        other => panic!("opened a corrupt log: {other:?}"),
    }
    let _ = std::fs::remove_file(&path);
}
