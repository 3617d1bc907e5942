//! The ledger's [`EventStore`] on redb: every durable byte of the event log
//! and its snapshots. It passes the same conformance suite as the in-memory
//! store (`daemon/tests/redb_store.rs`).
//!
//! Durability maps onto redb's: an append commits with `Durability::None`
//! (visible at once, not yet on disk), `sync` commits an empty transaction with
//! `Durability::Immediate`, which persists every earlier commit. Immediate
//! commits write redb's allocator state (`quick_repair`), so reopening after a
//! crash does not rebuild it by walking the whole file.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use shieldx_core::crypto::Digest;
use shieldx_core::ledger::{Base, Entry, EventStore, StoreError};

/// sequence -> hash (32 bytes) || entry bytes.
const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("ledger_entries");
/// "base" -> sequence || hash; "snapshot" -> sequence || hash || bytes.
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("ledger_meta");

/// An event store in one redb file.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
}

fn write_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::WriteFailed(e.to_string())
}

fn read_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::ReadFailed(e.to_string())
}

fn encode_base(base: Base, out: &mut Vec<u8>) {
    out.extend_from_slice(&base.sequence.to_le_bytes());
    out.extend_from_slice(base.hash.as_bytes());
}

fn decode_base(bytes: &[u8]) -> Result<Base, StoreError> {
    if bytes.len() < 40 {
        return Err(read_err("stored base is truncated"));
    }
    let mut sequence = [0u8; 8];
    sequence.copy_from_slice(&bytes[..8]);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes[8..40]);
    Ok(Base {
        sequence: u64::from_le_bytes(sequence),
        hash: Digest::from_bytes(hash),
    })
}

impl RedbStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let db = Database::create(path).map_err(read_err)?;
        let store = RedbStore { db };
        // Create the tables so that reads never meet a missing table.
        let mut tx = store.db.begin_write().map_err(write_err)?;
        tx.set_durability(Durability::Immediate)
            .map_err(write_err)?;
        tx.set_quick_repair(true);
        tx.open_table(ENTRIES).map_err(write_err)?;
        tx.open_table(META).map_err(write_err)?;
        tx.commit().map_err(write_err)?;
        Ok(store)
    }

    fn base(&self) -> Result<Base, StoreError> {
        let tx = self.db.begin_read().map_err(read_err)?;
        let meta = tx.open_table(META).map_err(read_err)?;
        match meta.get("base").map_err(read_err)? {
            Some(v) => decode_base(v.value()),
            None => Ok(Base::GENESIS),
        }
    }

    fn last(&self) -> Result<Option<(u64, Digest)>, StoreError> {
        let tx = self.db.begin_read().map_err(read_err)?;
        let entries = tx.open_table(ENTRIES).map_err(read_err)?;
        match entries.last().map_err(read_err)? {
            None => Ok(None),
            Some((k, v)) => {
                let v = v.value();
                if v.len() < 32 {
                    return Err(read_err("stored entry is truncated"));
                }
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&v[..32]);
                Ok(Some((k.value(), Digest::from_bytes(hash))))
            }
        }
    }
}

impl EventStore for RedbStore {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        let next = match self.last()? {
            Some((sequence, _)) => sequence + 1,
            None => self.base()?.sequence + 1,
        };
        for (expected, e) in (next..).zip(entries) {
            if e.sequence != expected {
                return Err(StoreError::OutOfOrder {
                    expected,
                    got: e.sequence,
                });
            }
        }
        let mut tx = self.db.begin_write().map_err(write_err)?;
        tx.set_durability(Durability::None).map_err(write_err)?;
        {
            let mut table = tx.open_table(ENTRIES).map_err(write_err)?;
            let mut value = Vec::new();
            for e in entries {
                value.clear();
                value.extend_from_slice(e.hash.as_bytes());
                value.extend_from_slice(&e.bytes);
                table
                    .insert(e.sequence, value.as_slice())
                    .map_err(write_err)?;
            }
        }
        tx.commit().map_err(write_err)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(write_err)?;
        tx.set_durability(Durability::Immediate)
            .map_err(write_err)?;
        tx.set_quick_repair(true);
        tx.commit().map_err(write_err)
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let tx = self.db.begin_read().map_err(read_err)?;
        let table = tx.open_table(ENTRIES).map_err(read_err)?;
        let mut out = Vec::new();
        for item in table.range(from..).map_err(read_err)?.take(limit) {
            let (k, v) = item.map_err(read_err)?;
            let v = v.value();
            if v.len() < 32 {
                return Err(read_err(format!("entry {} is truncated", k.value())));
            }
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&v[..32]);
            out.push(Entry {
                sequence: k.value(),
                bytes: v[32..].to_vec(),
                hash: Digest::from_bytes(hash),
            });
        }
        Ok(out)
    }

    fn bounds(&self) -> Result<(Base, Option<(u64, Digest)>), StoreError> {
        Ok((self.base()?, self.last()?))
    }

    fn reset_to_snapshot(&mut self, base: Base, snapshot: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(write_err)?;
        tx.set_durability(Durability::Immediate)
            .map_err(write_err)?;
        tx.set_quick_repair(true);
        tx.delete_table(ENTRIES).map_err(write_err)?;
        tx.open_table(ENTRIES).map_err(write_err)?;
        {
            let mut meta = tx.open_table(META).map_err(write_err)?;
            let mut value = Vec::with_capacity(40 + snapshot.len());
            encode_base(base, &mut value);
            meta.insert("base", value.as_slice()).map_err(write_err)?;
            value.extend_from_slice(snapshot);
            meta.insert("snapshot", value.as_slice())
                .map_err(write_err)?;
        }
        tx.commit().map_err(write_err)
    }

    fn put_snapshot(&mut self, base: Base, snapshot: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(write_err)?;
        tx.set_durability(Durability::None).map_err(write_err)?;
        {
            let mut meta = tx.open_table(META).map_err(write_err)?;
            let mut value = Vec::with_capacity(40 + snapshot.len());
            encode_base(base, &mut value);
            value.extend_from_slice(snapshot);
            meta.insert("snapshot", value.as_slice())
                .map_err(write_err)?;
        }
        tx.commit().map_err(write_err)
    }

    fn snapshot(&self) -> Result<Option<(Base, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(read_err)?;
        let meta = tx.open_table(META).map_err(read_err)?;
        match meta.get("snapshot").map_err(read_err)? {
            None => Ok(None),
            Some(v) => {
                let v = v.value();
                Ok(Some((decode_base(v)?, v[40..].to_vec())))
            }
        }
    }
}
