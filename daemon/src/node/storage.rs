//! The node's consensus storage in redb (`data/consensus.redb`): the durable
//! records the replica declares (views, signatures, view changes,
//! checkpoints), the committed blocks with their certificates, the last
//! stable checkpoint with its snapshot, and the evidence seen.
//!
//! Durability follows the core's contract: a write that carries durable
//! records commits with `Durability::Immediate` before the driver performs
//! any later output; blocks alone commit with `Durability::None` and reach
//! the disk with the next immediate commit. A `kill -9` therefore loses at
//! most blocks that the replica can recover from its peers, never a
//! signature it may have sent.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use shieldx_core::codec::{self, Encode as _};
use shieldx_core::consensus::{
    CertifiedBatch, CheckpointCertificate, DurableRecord, EvidenceRecord,
};
use shieldx_core::crypto::Digest;

use super::NodeError;

/// append order -> encoded `DurableRecord`.
const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("consensus_records");
/// height -> state digest (32 bytes) || encoded `CertifiedBatch`.
const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("consensus_blocks");
/// "stable" -> encoded checkpoint certificate || snapshot (length-prefixed).
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("consensus_meta");
/// evidence id (`Evidence::id`) -> encoded `EvidenceRecord` (self-describing:
/// `shieldx evidence verify` checks one with the validator-set file alone).
const EVIDENCE: TableDefinition<'_, &[u8; 32], &[u8]> =
    TableDefinition::new("consensus_evidence_records");

/// A committed block as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlock {
    /// Its height (consensus sequence).
    pub height: u64,
    /// The batch and its commit certificate.
    pub certified: CertifiedBatch,
    /// The state digest after executing it.
    pub state_digest: Digest,
}

/// What one drain of the replica's outputs writes.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// Durable records, in output order.
    pub records: Vec<DurableRecord>,
    /// A newly stable checkpoint and the replica snapshot at it.
    pub stable: Option<(CheckpointCertificate, Vec<u8>)>,
    /// Committed blocks.
    pub blocks: Vec<StoredBlock>,
    /// Evidence found.
    pub evidence: Vec<EvidenceRecord>,
}

impl WriteBatch {
    /// True if there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.stable.is_none()
            && self.blocks.is_empty()
            && self.evidence.is_empty()
    }
}

/// Everything a restart needs.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every durable record, in order.
    pub records: Vec<DurableRecord>,
    /// The last stable checkpoint with its snapshot.
    pub stable: Option<(CheckpointCertificate, Vec<u8>)>,
    /// The blocks after it, in height order.
    pub blocks_after: Vec<StoredBlock>,
}

/// The consensus store.
#[derive(Debug)]
pub struct NodeStore {
    db: Database,
}

fn storage<E: std::fmt::Display>(e: E) -> NodeError {
    NodeError::Storage(e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Storage(format!("corrupt {what}: {e}"))
}

impl NodeStore {
    /// Opens or creates the store.
    pub fn open(path: &Path) -> Result<NodeStore, NodeError> {
        let db = Database::create(path).map_err(storage)?;
        let mut tx = db.begin_write().map_err(storage)?;
        tx.set_durability(Durability::Immediate).map_err(storage)?;
        tx.set_quick_repair(true);
        tx.open_table(RECORDS).map_err(storage)?;
        tx.open_table(BLOCKS).map_err(storage)?;
        tx.open_table(META).map_err(storage)?;
        tx.open_table(EVIDENCE).map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(NodeStore { db })
    }

    /// Writes one drain's worth; durable before returning when it carries
    /// durable records or a stable checkpoint.
    pub fn write(&self, batch: &WriteBatch) -> Result<(), NodeError> {
        if batch.is_empty() {
            return Ok(());
        }
        let durable = !batch.records.is_empty() || batch.stable.is_some();
        let mut tx = self.db.begin_write().map_err(storage)?;
        if durable {
            tx.set_durability(Durability::Immediate).map_err(storage)?;
            tx.set_quick_repair(true);
        } else {
            tx.set_durability(Durability::None).map_err(storage)?;
        }
        {
            let mut records = tx.open_table(RECORDS).map_err(storage)?;
            let next = records
                .last()
                .map_err(storage)?
                .map_or(0, |(k, _)| k.value() + 1);
            for (key, record) in (next..).zip(&batch.records) {
                records
                    .insert(key, record.to_stored().as_slice())
                    .map_err(storage)?;
            }
            if let Some((certificate, snapshot)) = &batch.stable {
                let mut meta = tx.open_table(META).map_err(storage)?;
                let mut value = Vec::new();
                certificate.encode(&mut value);
                codec::put_bytes(&mut value, snapshot);
                meta.insert("stable", value.as_slice()).map_err(storage)?;
                // Records about sequences at or below a stable checkpoint are
                // garbage, as in the replica itself (it forgets them too).
                let stale: Vec<u64> = records
                    .iter()
                    .map_err(storage)?
                    .filter_map(Result::ok)
                    .filter_map(|(k, v)| {
                        // A record that fails its checksum is kept: recovery
                        // must see it and refuse to start.
                        let record = DurableRecord::from_stored(v.value()).ok()?;
                        let below = match record {
                            DurableRecord::Signed { sequence, .. } => {
                                sequence <= certificate.sequence
                            }
                            DurableRecord::Checkpoint(vote) => vote.sequence < certificate.sequence,
                            DurableRecord::StableCheckpoint(old) => {
                                old.sequence < certificate.sequence
                            }
                            _ => false,
                        };
                        below.then_some(k.value())
                    })
                    .collect();
                for key in stale {
                    records.remove(key).map_err(storage)?;
                }
            }
        }
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(storage)?;
            let mut bytes = Vec::new();
            for block in &batch.blocks {
                bytes.clear();
                bytes.extend_from_slice(block.state_digest.as_bytes());
                block.certified.encode(&mut bytes);
                blocks
                    .insert(block.height, bytes.as_slice())
                    .map_err(storage)?;
            }
        }
        {
            let mut table = tx.open_table(EVIDENCE).map_err(storage)?;
            let mut bytes = Vec::new();
            for evidence in &batch.evidence {
                bytes.clear();
                evidence.encode(&mut bytes);
                let id = evidence.id().to_bytes();
                table.insert(&id, bytes.as_slice()).map_err(storage)?;
            }
        }
        tx.commit().map_err(storage)
    }

    /// Reads everything a restart needs.
    pub fn recover(&self) -> Result<Recovered, NodeError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(RECORDS).map_err(storage)?;
        let mut records = Vec::new();
        for item in table.iter().map_err(storage)? {
            let (_, v) = item.map_err(storage)?;
            records.push(
                DurableRecord::from_stored(v.value()).map_err(|e| corrupt("durable record", e))?,
            );
        }
        let meta = tx.open_table(META).map_err(storage)?;
        let stable = match meta.get("stable").map_err(storage)? {
            None => None,
            Some(v) => {
                let bytes = v.value();
                let mut reader = codec::Reader::new(bytes);
                let certificate = <CheckpointCertificate as codec::Decode>::decode(&mut reader)
                    .map_err(|e| corrupt("stable checkpoint", e))?;
                let snapshot = reader
                    .bytes("snapshot", usize::MAX)
                    .map_err(|e| corrupt("stable snapshot", e))?;
                Some((certificate, snapshot))
            }
        };
        let after = stable.as_ref().map_or(0, |(c, _)| c.sequence);
        let blocks_after = self.blocks_from(after + 1, usize::MAX)?;
        Ok(Recovered {
            records,
            stable,
            blocks_after,
        })
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<StoredBlock>, NodeError> {
        Ok(self
            .blocks_from(height, 1)?
            .into_iter()
            .find(|b| b.height == height))
    }

    /// Up to `limit` consecutive stored blocks from `height` on.
    pub fn blocks_from(&self, height: u64, limit: usize) -> Result<Vec<StoredBlock>, NodeError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(BLOCKS).map_err(storage)?;
        let mut out = Vec::new();
        for (expected, item) in (height..).zip(table.range(height..).map_err(storage)?.take(limit))
        {
            let (k, v) = item.map_err(storage)?;
            if k.value() != expected {
                break;
            }
            let bytes = v.value();
            if bytes.len() < 32 {
                return Err(corrupt("block", "truncated"));
            }
            let state_digest = Digest::from_slice(&bytes[..32]).map_err(|e| corrupt("block", e))?;
            let certified = codec::decode_exact::<CertifiedBatch>(&bytes[32..])
                .map_err(|e| corrupt("block", e))?;
            out.push(StoredBlock {
                height: k.value(),
                certified,
                state_digest,
            });
        }
        Ok(out)
    }

    /// The highest stored block height (0 when none).
    pub fn top(&self) -> Result<u64, NodeError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(BLOCKS).map_err(storage)?;
        Ok(table.last().map_err(storage)?.map_or(0, |(k, _)| k.value()))
    }
}
