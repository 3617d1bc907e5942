//! The in-memory event store the simulator uses, with injected faults:
//! appends since the last [`EventStore::sync`] are lost by [`MemoryStore::crash`],
//! [`MemoryStore::fail_next_writes`] makes writes fail (nothing of the batch
//! becomes visible), and [`MemoryStore::corrupt`] flips a stored byte so that
//! tests can check the ledger refuses to start.

use super::{Base, Entry, EventStore, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Contents {
    base: Option<Base>,
    entries: Vec<Entry>,
    snapshot: Option<(Base, Vec<u8>)>,
}

/// An [`EventStore`] in memory with a durable and a volatile view.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    durable: Contents,
    current: Contents,
    failing_writes: u32,
    write_failures: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Simulates a crash: everything not synced is lost.
    pub fn crash(&mut self) {
        self.current = self.durable.clone();
    }

    /// The next `n` writes (append, snapshot, reset, sync) fail.
    pub fn fail_next_writes(&mut self, n: u32) {
        self.failing_writes = n;
    }

    /// Writes failed so far by injection.
    pub fn write_failures(&self) -> u64 {
        self.write_failures
    }

    /// Flips one bit of the stored entry `sequence` (durable and current).
    pub fn corrupt(&mut self, sequence: u64) {
        for contents in [&mut self.durable, &mut self.current] {
            if let Some(e) = contents.entries.iter_mut().find(|e| e.sequence == sequence)
                && let Some(b) = e.bytes.last_mut()
            {
                *b ^= 1;
            }
        }
    }

    /// Entries currently visible.
    pub fn len(&self) -> usize {
        self.current.entries.len()
    }

    /// Whether no entry is visible.
    pub fn is_empty(&self) -> bool {
        self.current.entries.is_empty()
    }

    fn check_write(&mut self) -> Result<(), StoreError> {
        if self.failing_writes > 0 {
            self.failing_writes -= 1;
            self.write_failures += 1;
            return Err(StoreError::WriteFailed("injected write failure".into()));
        }
        Ok(())
    }

    fn next_sequence(&self) -> u64 {
        self.current.entries.last().map_or_else(
            || self.current.base.unwrap_or(Base::GENESIS).sequence + 1,
            |e| e.sequence + 1,
        )
    }
}

impl EventStore for MemoryStore {
    fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError> {
        for (expected, e) in (self.next_sequence()..).zip(entries) {
            if e.sequence != expected {
                return Err(StoreError::OutOfOrder {
                    expected,
                    got: e.sequence,
                });
            }
        }
        self.check_write()?;
        self.current.entries.extend_from_slice(entries);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.check_write()?;
        self.durable = self.current.clone();
        Ok(())
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let start = self.current.entries.partition_point(|e| e.sequence < from);
        Ok(self.current.entries[start..]
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    fn bounds(&self) -> Result<(Base, Option<(u64, super::Digest)>), StoreError> {
        Ok((
            self.current.base.unwrap_or(Base::GENESIS),
            self.current.entries.last().map(|e| (e.sequence, e.hash)),
        ))
    }

    fn reset_to_snapshot(&mut self, base: Base, snapshot: &[u8]) -> Result<(), StoreError> {
        self.check_write()?;
        self.current = Contents {
            base: Some(base),
            entries: Vec::new(),
            snapshot: Some((base, snapshot.to_vec())),
        };
        // A reset is a durable, all-or-nothing operation in every real store.
        self.durable = self.current.clone();
        Ok(())
    }

    fn put_snapshot(&mut self, base: Base, snapshot: &[u8]) -> Result<(), StoreError> {
        self.check_write()?;
        self.current.snapshot = Some((base, snapshot.to_vec()));
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<(Base, Vec<u8>)>, StoreError> {
        Ok(self.current.snapshot.clone())
    }
}
