//! The redb event store: the shared conformance suite, the application over
//! it across reopen, and refusal of a corrupted log.

use std::cell::Cell;
use std::path::PathBuf;

use shieldx_core::app::{App, AppConfig, Transaction, TransferLeg};
use shieldx_core::consensus::Application as _;
use shieldx_core::ledger::{Ledger, LedgerError, conformance};
use shieldx_daemon::store::RedbStore;

/// One test's directory of fresh database files, removed with everything in
/// it when the test ends, passed or not.
struct Scratch {
    dir: PathBuf,
    files: Cell<u32>,
}

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("shieldx-redb-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch {
            dir,
            files: Cell::new(0),
        }
    }

    /// A path no database has used yet.
    fn fresh_path(&self) -> PathBuf {
        let n = self.files.get();
        self.files.set(n + 1);
        self.dir.join(format!("{n}.redb"))
    }

    /// The path [`Scratch::fresh_path`] gave last.
    fn last_path(&self) -> PathBuf {
        self.dir.join(format!("{}.redb", self.files.get() - 1))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn redb_store_passes_the_conformance_suite() {
    let scratch = Scratch::new("conformance");
    conformance::run(
        || RedbStore::open(&scratch.fresh_path()).expect("open"),
        |store| {
            drop(store);
            RedbStore::open(&scratch.last_path()).expect("reopen")
        },
    );
}

const ADMIN: [u8; 32] = [1; 32];

#[test]
fn the_application_reopens_on_redb_with_the_same_state() {
    let scratch = Scratch::new("reopen");
    let path = scratch.fresh_path();
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
}

#[test]
fn a_corrupted_entry_is_refused_at_open() {
    let scratch = Scratch::new("corrupted");
    let path = scratch.fresh_path();
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
    let corrupted = {
        // Flip the last byte of a page in the middle of the log, behind the
        // store's back: that is the last byte of the page's last entry, the
        // one just before the next page.
        let db = redb::Database::create(&path).expect("db");
        use redb::ReadableTable as _;
        let table: redb::TableDefinition<'_, u64, &[u8]> =
            redb::TableDefinition::new("ledger_pages");
        let tx = db.begin_write().expect("write");
        let corrupted = {
            let mut t = tx.open_table(table).expect("table");
            let keys: Vec<u64> = t
                .iter()
                .expect("iter")
                .map(|item| item.expect("page").0.value())
                .collect();
            assert!(keys.len() >= 3, "one page per transaction: {keys:?}");
            let (page, next) = (keys[keys.len() / 2], keys[keys.len() / 2 + 1]);
            let mut value = t.get(page).expect("get").expect("page").value().to_vec();
            let last = value.len() - 1;
            value[last] ^= 0x40;
            t.insert(page, value.as_slice()).expect("insert");
            next - 1
        };
        tx.commit().expect("commit");
        corrupted
    };
    match Ledger::open(RedbStore::open(&path).expect("open")) {
        Err(LedgerError::Corrupt { sequence, .. }) => assert_eq!(sequence, corrupted),
        other => panic!("opened a corrupt log: {other:?}"),
    }
}

#[test]
fn a_store_in_the_per_entry_layout_is_refused_with_a_clear_error() {
    let scratch = Scratch::new("legacy");
    let path = scratch.fresh_path();
    {
        let db = redb::Database::create(&path).expect("db");
        let table: redb::TableDefinition<'_, u64, &[u8]> =
            redb::TableDefinition::new("ledger_entries");
        let tx = db.begin_write().expect("write");
        tx.open_table(table)
            .expect("table")
            .insert(1, [0u8; 40].as_slice())
            .expect("insert");
        tx.commit().expect("commit");
    }
    let err = RedbStore::open(&path).expect_err("the old layout is not read");
    assert!(err.to_string().contains("per-entry layout"), "{err}");
}
