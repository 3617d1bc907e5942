//! The redb event store: the shared conformance suite, the application over
//! it across reopen, and refusal of a corrupted log.

use std::cell::Cell;
use std::path::PathBuf;

use shieldx_core::app::{App, AppConfig, Transaction, TransferLeg};
use shieldx_core::consensus::Application as _;
use shieldx_core::crypto::Digest;
use shieldx_core::ledger::{
    Entry, EventStore as _, Ledger, LedgerError, StoreError, conformance, entry_hash,
};
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
            redb::TableDefinition::new("ledger_pages_v2");
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
fn a_store_in_an_earlier_layout_is_refused_with_a_clear_error() {
    let scratch = Scratch::new("legacy");
    for (table, layout) in [
        ("ledger_entries", "per-entry layout"),
        ("ledger_pages", "interleaved page layout"),
    ] {
        let path = scratch.fresh_path();
        {
            let db = redb::Database::create(&path).expect("db");
            let table: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new(table);
            let tx = db.begin_write().expect("write");
            tx.open_table(table)
                .expect("table")
                .insert(1, [0u8; 40].as_slice())
                .expect("insert");
            tx.commit().expect("commit");
        }
        let err = RedbStore::open(&path).expect_err("the old layout is not read");
        assert!(err.to_string().contains(layout), "{err}");
    }
}

#[test]
fn a_page_with_a_damaged_header_is_refused_not_trusted() {
    let scratch = Scratch::new("damaged-header");
    use redb::ReadableTable as _;
    let table: redb::TableDefinition<'_, u64, &[u8]> =
        redb::TableDefinition::new("ledger_pages_v2");
    // Each damage is applied to a fresh two-page log; every one must make
    // opening or reading fail with a read error, never a panic or a wrong entry.
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 5] = [
        ("truncated to its count", |v| v.truncate(4)),
        ("a count of zero", |v| {
            v[..4].copy_from_slice(&0u32.to_le_bytes())
        }),
        ("a count past its columns", |v| {
            v[..4].copy_from_slice(&u32::MAX.to_le_bytes())
        }),
        ("its first end offset past the bytes", |v| {
            let count = u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as usize;
            let at = 4 + 32 * count;
            v[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }),
        ("its bytes cut short", |v| {
            v.pop();
        }),
    ];
    for (what, damage) in damages {
        let path = scratch.fresh_path();
        {
            let mut store = RedbStore::open(&path).expect("open");
            let mut hash = Digest::ZERO;
            for sequence in 1..=6u64 {
                let bytes = vec![sequence as u8; 10 + sequence as usize];
                hash = entry_hash(&hash, &bytes);
                store
                    .append(&[Entry {
                        sequence,
                        bytes,
                        hash,
                    }])
                    .expect("append");
            }
            store.sync().expect("sync");
        }
        {
            let db = redb::Database::create(&path).expect("db");
            let tx = db.begin_write().expect("write");
            {
                let mut t = tx.open_table(table).expect("table");
                let mut value = t.get(3).expect("get").expect("page 3").value().to_vec();
                damage(&mut value);
                t.insert(3, value.as_slice()).expect("insert");
            }
            tx.commit().expect("commit");
        }
        let store = RedbStore::open(&path).expect("page 3 is not the last: open does not read it");
        let err = store.read(1, 10).expect_err(what);
        assert!(matches!(err, StoreError::ReadFailed(_)), "{what}: {err}");
        assert!(err.to_string().contains("page 3"), "{what}: {err}");
    }
}
