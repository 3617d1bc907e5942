//! The ledger's [`EventStore`] on redb: every durable byte of the event log
//! and its snapshots. It passes the same conformance suite as the in-memory
//! store (`daemon/tests/redb_store.rs`).
//!
//! The log is stored in *pages*: each append is cut into runs of contiguous
//! entries (at most [`PAGE_ENTRIES`] entries or [`PAGE_BYTES`] bytes each),
//! and each run is one redb value keyed by its first sequence number. A
//! group commit of 10,000 entries is then a few dozen B-tree inserts, not
//! 10,000, and a scan reads long contiguous values. A page is never rewritten:
//! appends only add pages after the last one.
//!
//! A page is laid out by column: the entry count, every hash, every entry's
//! end offset, then every entry's bytes. Where each entry lies is known from
//! the header alone, so a scan reads each column front to back instead of
//! chasing a length from one entry to the next, a chain of dependent loads
//! that cost one memory latency per entry (about a sixth of replay).
//!
//! Durability maps onto redb's: an append commits with `Durability::None`
//! (visible at once, not yet on disk), `sync` commits an empty transaction with
//! `Durability::Immediate`, which persists every earlier commit. Immediate
//! commits write redb's allocator state (`quick_repair`), so reopening after a
//! crash does not rebuild it by walking the whole file.

use std::ops::ControlFlow;
use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use shieldx_core::crypto::Digest;
use shieldx_core::ledger::{Base, Entry, EntryRef, EventStore, StoreError};

/// first sequence of the page -> count (u32 LE) || count hashes (32 bytes
/// each) || count end offsets (u32 LE, each the end of that entry's bytes in
/// the bytes region) || the bytes region.
const PAGES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("ledger_pages_v2");
/// Tables of earlier layouts, with what to call them; a store that has one is
/// refused.
const EARLIER_LAYOUTS: [(&str, &str); 2] = [
    ("ledger_entries", "per-entry layout"),
    ("ledger_pages", "interleaved page layout"),
];
/// Most entries in one page.
pub const PAGE_ENTRIES: usize = 1024;
/// A page is closed once it holds this many bytes (one entry may exceed it).
pub const PAGE_BYTES: usize = 256 * 1024;
/// Entries a scan gathers before lending them to its visitor.
const SCAN_BATCH: usize = 256;
/// Bytes of the page header per entry: its hash and its end offset.
const ENTRY_HEADER: usize = 32 + 4;
/// "base" -> sequence || hash; "snapshot" -> sequence || hash || bytes.
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("ledger_meta");

/// An event store in one redb file.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    /// The sequence the next append must start at (kept in step with every
    /// committed append and reset).
    next: u64,
}

/// A page's columns, borrowed.
struct Page<'a> {
    first: u64,
    count: usize,
    hashes: &'a [u8],
    ends: &'a [u8],
    bytes: &'a [u8],
}

impl<'a> Page<'a> {
    /// Splits the page that starts at `first` into its columns.
    fn parse(first: u64, value: &'a [u8]) -> Result<Page<'a>, StoreError> {
        let truncated = || read_err(format!("page {first}: its header is truncated"));
        let (count, rest) = value.split_first_chunk::<4>().ok_or_else(truncated)?;
        let count = u32::from_le_bytes(*count) as usize;
        if count == 0 {
            return Err(read_err(format!("page {first} is empty")));
        }
        let column = |width: usize| count.checked_mul(width).ok_or_else(truncated);
        let (hashes, rest) = rest.split_at_checked(column(32)?).ok_or_else(truncated)?;
        let (ends, bytes) = rest.split_at_checked(column(4)?).ok_or_else(truncated)?;
        let page = Page {
            first,
            count,
            hashes,
            ends,
            bytes,
        };
        if page.end(count - 1) != bytes.len() {
            return Err(read_err(format!(
                "page {first}: its entries end at byte {} of {}",
                page.end(count - 1),
                bytes.len()
            )));
        }
        Ok(page)
    }

    /// Where entry `i`'s bytes end in the bytes region.
    fn end(&self, i: usize) -> usize {
        let mut end = [0u8; 4];
        end.copy_from_slice(&self.ends[4 * i..4 * i + 4]);
        u32::from_le_bytes(end) as usize
    }

    /// Entry `i` (below `count`).
    fn entry(&self, i: usize) -> Result<EntryRef<'a>, StoreError> {
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        let sequence = self.first + i as u64;
        let bytes = self.bytes.get(start..self.end(i)).ok_or_else(|| {
            read_err(format!(
                "page {}: entry {sequence} has a corrupt end offset",
                self.first
            ))
        })?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&self.hashes[32 * i..32 * i + 32]);
        Ok(EntryRef {
            sequence,
            hash: Digest::from_bytes(hash),
            bytes,
        })
    }
}

/// Appends the page of `entries` (at least one) to `out`.
fn encode_page(entries: &[Entry], out: &mut Vec<u8>) -> Result<(), StoreError> {
    let too_large = || write_err("a page exceeds 4 GiB");
    let count = u32::try_from(entries.len()).map_err(|_| too_large())?;
    out.extend_from_slice(&count.to_le_bytes());
    for e in entries {
        out.extend_from_slice(e.hash.as_bytes());
    }
    let mut end = 0usize;
    for e in entries {
        end += e.bytes.len();
        let offset = u32::try_from(end).map_err(|_| too_large())?;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for e in entries {
        out.extend_from_slice(&e.bytes);
    }
    Ok(())
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

/// Stores base || snapshot under "snapshot", written straight into the
/// space redb reserves for it (a snapshot can be many MiB: no staging copy).
fn insert_snapshot(
    meta: &mut redb::Table<'_, &str, &[u8]>,
    base: &[u8],
    snapshot: &[u8],
) -> Result<(), StoreError> {
    let mut value = meta
        .insert_reserve("snapshot", base.len() + snapshot.len())
        .map_err(write_err)?;
    let bytes = value.as_mut();
    bytes[..base.len()].copy_from_slice(base);
    bytes[base.len()..].copy_from_slice(snapshot);
    Ok(())
}

impl RedbStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let db = Database::create(path).map_err(read_err)?;
        let mut store = RedbStore { db, next: 0 };
        // Create the tables so that reads never meet a missing table.
        let mut tx = store.db.begin_write().map_err(write_err)?;
        tx.set_durability(Durability::Immediate)
            .map_err(write_err)?;
        tx.set_quick_repair(true);
        let tables: Vec<String> = tx
            .list_tables()
            .map_err(read_err)?
            .map(|t| t.name().to_owned())
            .collect();
        if let Some((table, layout)) = EARLIER_LAYOUTS
            .iter()
            .find(|(table, _)| tables.iter().any(|t| t == table))
        {
            return Err(read_err(format!(
                "{} holds a ledger in the {layout} ({table}), \
                 which this version does not read; rebuild the node from a peer's snapshot",
                path.display()
            )));
        }
        tx.open_table(PAGES).map_err(write_err)?;
        tx.open_table(META).map_err(write_err)?;
        tx.commit().map_err(write_err)?;
        store.next = match store.last()? {
            Some((sequence, _)) => sequence + 1,
            None => store.base()?.sequence + 1,
        };
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
        let pages = tx.open_table(PAGES).map_err(read_err)?;
        let Some((first, page)) = pages.last().map_err(read_err)? else {
            return Ok(None);
        };
        let page = Page::parse(first.value(), page.value())?;
        let last = page.entry(page.count - 1)?;
        Ok(Some((last.sequence, last.hash)))
    }
}

impl EventStore for RedbStore {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        for (expected, e) in (self.next..).zip(entries) {
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
            let mut table = tx.open_table(PAGES).map_err(write_err)?;
            let mut page = Vec::new();
            let mut rest = entries;
            while let Some(first) = rest.first() {
                let mut taken = 0;
                let mut size = 4;
                for e in rest.iter().take(PAGE_ENTRIES) {
                    if taken > 0 && size + ENTRY_HEADER + e.bytes.len() > PAGE_BYTES {
                        break;
                    }
                    size += ENTRY_HEADER + e.bytes.len();
                    taken += 1;
                }
                page.clear();
                encode_page(&rest[..taken], &mut page)?;
                table
                    .insert(first.sequence, page.as_slice())
                    .map_err(write_err)?;
                rest = &rest[taken..];
            }
        }
        tx.commit().map_err(write_err)?;
        self.next += entries.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(write_err)?;
        tx.set_durability(Durability::Immediate)
            .map_err(write_err)?;
        tx.set_quick_repair(true);
        tx.commit().map_err(write_err)
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.scan(from, &mut |batch| {
            for entry in batch.iter().take(limit - out.len()) {
                out.push(Entry {
                    sequence: entry.sequence,
                    bytes: entry.bytes.to_vec(),
                    hash: entry.hash,
                });
            }
            if out.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(out)
    }

    fn scan(
        &self,
        from: u64,
        each: &mut dyn FnMut(&[EntryRef<'_>]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_read().map_err(read_err)?;
        let table = tx.open_table(PAGES).map_err(read_err)?;
        // Start at the page that holds `from`: the last one that begins at or
        // before it.
        let start = match table.range(..=from).map_err(read_err)?.next_back() {
            Some(item) => item.map_err(read_err)?.0.value(),
            None => from,
        };
        // Pages are lent, not copied: their guards are held until the
        // batch they make up has been visited. Small pages (one per small
        // transaction) are gathered into batches of at least SCAN_BATCH.
        let mut guards = Vec::new();
        let mut gathered = 0;
        let mut iter = table.range(start..).map_err(read_err)?.peekable();
        while let Some(item) = iter.next() {
            let (first, guard) = item.map_err(read_err)?;
            let first = first.value();
            gathered += (Page::parse(first, guard.value())?.count as u64)
                .saturating_sub(from.saturating_sub(first));
            guards.push((first, guard));
            if gathered < SCAN_BATCH as u64 && iter.peek().is_some() {
                continue;
            }
            let mut batch = Vec::with_capacity(usize::try_from(gathered).unwrap_or(SCAN_BATCH));
            for (first, guard) in &guards {
                let page = Page::parse(*first, guard.value())?;
                let skip = usize::try_from(from.saturating_sub(*first)).unwrap_or(usize::MAX);
                for i in skip.min(page.count)..page.count {
                    batch.push(page.entry(i)?);
                }
            }
            if !batch.is_empty() && each(&batch).is_break() {
                return Ok(());
            }
            guards.clear();
            gathered = 0;
        }
        Ok(())
    }

    fn bounds(&self) -> Result<(Base, Option<(u64, Digest)>), StoreError> {
        Ok((self.base()?, self.last()?))
    }

    fn reset_to_snapshot(&mut self, base: Base, snapshot: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(write_err)?;
        tx.set_durability(Durability::Immediate)
            .map_err(write_err)?;
        tx.set_quick_repair(true);
        tx.delete_table(PAGES).map_err(write_err)?;
        tx.open_table(PAGES).map_err(write_err)?;
        {
            let mut meta = tx.open_table(META).map_err(write_err)?;
            let mut value = Vec::with_capacity(40);
            encode_base(base, &mut value);
            meta.insert("base", value.as_slice()).map_err(write_err)?;
            insert_snapshot(&mut meta, &value, snapshot)?;
        }
        tx.commit().map_err(write_err)?;
        self.next = base.sequence + 1;
        Ok(())
    }

    fn put_snapshot(&mut self, base: Base, snapshot: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(write_err)?;
        tx.set_durability(Durability::None).map_err(write_err)?;
        {
            let mut meta = tx.open_table(META).map_err(write_err)?;
            let mut value = Vec::with_capacity(40);
            encode_base(base, &mut value);
            insert_snapshot(&mut meta, &value, snapshot)?;
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
