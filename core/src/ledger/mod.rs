//! The event-sourced ledger: an append-only, hash-chained log of versioned
//! domain events behind a storage trait.
//!
//! # Invariants
//! - **Append-only and gap-free.** Entries carry sequence numbers 1, 2, 3, …;
//!   a batch is appended atomically (all of it or none of it) and always at
//!   `head + 1`.
//! - **Hash chain.** Each entry's hash is `blake3("shieldx/ledger/entry",
//!   prev_hash, bytes)`; the first entry chains from [`GENESIS`] (or from the
//!   head a snapshot certifies, after state transfer). [`Ledger::open`] and
//!   [`Ledger::replay`] recompute every hash and refuse a log that does not
//!   chain ([`LedgerError::Corrupt`]), naming the first bad sequence number.
//! - **Optimistic concurrency per stream.** An append names the version it
//!   expects for each stream it writes; a mismatch rejects the whole batch and
//!   writes nothing ([`LedgerError::WrongVersion`]).
//! - **Versioned events.** Entries are stored in the encoding of the version
//!   that wrote them, so old hashes stay valid; [`EventRecord::decode`]
//!   upcasts older versions to the current one after the hash is checked.
//! - **Logical time.** An entry's time is the block time of the transaction
//!   that caused it, and its causation is (block height, client, request id);
//!   nothing here reads a clock.
//!
//! Durability is the store's: [`EventStore::sync`] is the point after which a
//! crash loses nothing; [`memory::MemoryStore`] loses everything appended since
//! the last sync when the simulator crashes it, and can be told to fail writes.

pub mod conformance;
pub mod memory;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use crate::codec::{CodecError, Reader, put_bytes};
use crate::crypto::{Digest, DigestDomain, Digests};
use crate::detect::{Event, Severity};

/// The hash the first entry chains from.
pub const GENESIS: Digest = Digest::from_bytes([0; 32]);
/// The version this build writes.
pub const EVENT_VERSION: u8 = 2;
/// The longest stream name.
pub const STREAM_BYTES_MAX: usize = 256;
/// The longest string field inside an event.
pub const TEXT_BYTES_MAX: usize = 4096;

/// The longest rule file an event may carry.
pub const RULES_BYTES_MAX: usize = 4 << 20;
/// The most security events in one `EventsSubmitted`.
pub const EVENTS_PER_RECORD_MAX: usize = 10_000;
/// The longest payload of one security event.
pub const EVENT_PAYLOAD_MAX: usize = 64 << 10;

/// A 32-byte account or validator identity (an ed25519 public key).
pub type AccountId = [u8; 32];

/// What happened. Every state change of the application is one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    /// Credits created. `key` is the idempotency key of the transaction.
    Minted {
        /// Credited account.
        account: AccountId,
        /// Amount.
        amount: u64,
        /// Idempotency key.
        key: Vec<u8>,
    },
    /// Credits destroyed.
    Burned {
        /// Debited account.
        account: AccountId,
        /// Amount.
        amount: u64,
        /// Idempotency key.
        key: Vec<u8>,
    },
    /// Credits moved.
    Transferred {
        /// Debited account.
        from: AccountId,
        /// Credited account.
        to: AccountId,
        /// Amount.
        amount: u64,
        /// Idempotency key.
        key: Vec<u8>,
    },
    /// A detection rule fired on a submitted event.
    AlertRaised {
        /// Rule id.
        rule_id: String,
        /// Severity.
        severity: Severity,
        /// The security event's id.
        event_id: String,
        /// The security event's source (added in version 2; empty when
        /// upcast from version 1).
        source: String,
        /// blake3 of the security event's payload.
        payload_hash: Digest,
    },
    /// Stake bonded.
    Staked {
        /// Validator.
        validator: AccountId,
        /// Amount moved from its credits into stake.
        amount: u64,
    },
    /// Bonded stake began unbonding: it leaves the leader weight at once,
    /// stays slashable, and returns to the balance at `matures`.
    UnbondingStarted {
        /// Validator.
        validator: AccountId,
        /// Amount moved out of bonded stake.
        amount: u64,
        /// The height at which it returns to the balance.
        matures: u64,
    },
    /// An unbonding entry matured: what is left of it returned to the balance.
    UnbondingCompleted {
        /// Validator.
        validator: AccountId,
        /// Amount credited to the balance.
        amount: u64,
        /// The height the entry began unbonding at (identifies the entry).
        started: u64,
    },
    /// Part of an unbonding entry destroyed as a penalty: the entry began
    /// unbonding after the offence, so it was at stake when it happened.
    UnbondingSlashed {
        /// Validator.
        validator: AccountId,
        /// Amount removed from the entry (and from the supply).
        amount: u64,
        /// The height the entry began unbonding at (identifies the entry).
        started: u64,
        /// The id of the offence (the same as its `Slashed` event's).
        evidence: Digest,
    },
    /// Stake destroyed as a penalty.
    Slashed {
        /// Validator.
        validator: AccountId,
        /// Amount removed from stake (and from the supply).
        amount: u64,
        /// Why (the offence).
        reason: String,
        /// The id of the evidence that proved it (slashed once per id).
        evidence: Digest,
    },
    /// A new detection rule set was adopted.
    RulesUpdated {
        /// The rule set's version number.
        version: u64,
        /// The height from which it applies.
        effective_height: u64,
        /// blake3 of the rule file.
        rules_digest: Digest,
        /// The rule file (YAML), so that replay can rebuild the detector.
        rules: String,
    },
    /// Security events a sensor submitted, in order: the input of detection,
    /// kept so that replay re-derives the anomaly windows exactly.
    EventsSubmitted {
        /// The events.
        events: Vec<Event>,
    },
    /// A transaction with an idempotency key succeeded: the scoped key and a
    /// digest of its fields, remembered for the retention window.
    IdempotencyRecorded {
        /// blake3(client, key).
        key: Digest,
        /// blake3 of the transaction's fields.
        fields: Digest,
    },
    /// A validator showed it is online (its own signed heartbeat committed).
    Heartbeat {
        /// Validator.
        validator: AccountId,
    },
    /// A validator was jailed: excluded from leader selection until the
    /// first checkpoint at or after `until` (released automatically).
    Jailed {
        /// Validator.
        validator: AccountId,
        /// Release height (sequence number).
        until: u64,
    },
}

impl DomainEvent {
    fn tag(&self) -> u8 {
        match self {
            DomainEvent::Minted { .. } => 1,
            DomainEvent::Burned { .. } => 2,
            DomainEvent::Transferred { .. } => 3,
            DomainEvent::AlertRaised { .. } => 4,
            DomainEvent::Staked { .. } => 5,
            DomainEvent::Slashed { .. } => 7,
            DomainEvent::RulesUpdated { .. } => 8,
            DomainEvent::EventsSubmitted { .. } => 9,
            DomainEvent::IdempotencyRecorded { .. } => 10,
            DomainEvent::Heartbeat { .. } => 11,
            DomainEvent::Jailed { .. } => 12,
            DomainEvent::UnbondingStarted { .. } => 13,
            DomainEvent::UnbondingCompleted { .. } => 14,
            DomainEvent::UnbondingSlashed { .. } => 15,
        }
    }

    /// The accounts this event touches (for the audit trail).
    pub fn accounts(&self) -> Vec<AccountId> {
        match self {
            DomainEvent::Minted { account, .. } | DomainEvent::Burned { account, .. } => {
                vec![*account]
            }
            DomainEvent::Transferred { from, to, .. } => vec![*from, *to],
            DomainEvent::Staked { validator, .. }
            | DomainEvent::UnbondingStarted { validator, .. }
            | DomainEvent::UnbondingCompleted { validator, .. }
            | DomainEvent::UnbondingSlashed { validator, .. }
            | DomainEvent::Slashed { validator, .. }
            | DomainEvent::Heartbeat { validator }
            | DomainEvent::Jailed { validator, .. } => vec![*validator],
            DomainEvent::AlertRaised { .. }
            | DomainEvent::RulesUpdated { .. }
            | DomainEvent::EventsSubmitted { .. }
            | DomainEvent::IdempotencyRecorded { .. } => Vec::new(),
        }
    }

    fn encode_v2(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        match self {
            DomainEvent::Minted {
                account,
                amount,
                key,
            }
            | DomainEvent::Burned {
                account,
                amount,
                key,
            } => {
                out.extend_from_slice(account);
                out.extend_from_slice(&amount.to_le_bytes());
                put_bytes(out, key);
            }
            DomainEvent::Transferred {
                from,
                to,
                amount,
                key,
            } => {
                out.extend_from_slice(from);
                out.extend_from_slice(to);
                out.extend_from_slice(&amount.to_le_bytes());
                put_bytes(out, key);
            }
            DomainEvent::AlertRaised {
                rule_id,
                severity,
                event_id,
                source,
                payload_hash,
            } => {
                put_bytes(out, rule_id.as_bytes());
                out.push(severity_tag(*severity));
                put_bytes(out, event_id.as_bytes());
                put_bytes(out, source.as_bytes());
                out.extend_from_slice(payload_hash.as_bytes());
            }
            DomainEvent::Staked { validator, amount } => {
                out.extend_from_slice(validator);
                out.extend_from_slice(&amount.to_le_bytes());
            }
            DomainEvent::UnbondingStarted {
                validator,
                amount,
                matures: height,
            }
            | DomainEvent::UnbondingCompleted {
                validator,
                amount,
                started: height,
            } => {
                out.extend_from_slice(validator);
                out.extend_from_slice(&amount.to_le_bytes());
                out.extend_from_slice(&height.to_le_bytes());
            }
            DomainEvent::UnbondingSlashed {
                validator,
                amount,
                started,
                evidence,
            } => {
                out.extend_from_slice(validator);
                out.extend_from_slice(&amount.to_le_bytes());
                out.extend_from_slice(&started.to_le_bytes());
                out.extend_from_slice(evidence.as_bytes());
            }
            DomainEvent::Slashed {
                validator,
                amount,
                reason,
                evidence,
            } => {
                out.extend_from_slice(validator);
                out.extend_from_slice(&amount.to_le_bytes());
                put_bytes(out, reason.as_bytes());
                out.extend_from_slice(evidence.as_bytes());
            }
            DomainEvent::RulesUpdated {
                version,
                effective_height,
                rules_digest,
                rules,
            } => {
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(&effective_height.to_le_bytes());
                out.extend_from_slice(rules_digest.as_bytes());
                put_bytes(out, rules.as_bytes());
            }
            DomainEvent::EventsSubmitted { events } => {
                crate::codec::put_length(out, events.len());
                events.iter().for_each(|e| encode_event(e, out));
            }
            DomainEvent::IdempotencyRecorded { key, fields } => {
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(fields.as_bytes());
            }
            DomainEvent::Heartbeat { validator } => out.extend_from_slice(validator),
            DomainEvent::Jailed { validator, until } => {
                out.extend_from_slice(validator);
                out.extend_from_slice(&until.to_le_bytes());
            }
        }
    }

    /// Decodes an event written by `version` (1 or 2), upcasting to the
    /// current shape: version 1's `AlertRaised` had no `source`.
    fn decode(version: u8, r: &mut Reader<'_>) -> Result<DomainEvent, CodecError> {
        let text = |r: &mut Reader<'_>, what: &'static str| -> Result<String, CodecError> {
            String::from_utf8(r.bytes(what, TEXT_BYTES_MAX)?)
                .map_err(|_| CodecError::InvalidTag { what, tag: 0xff })
        };
        let tag = r.u8("event tag")?;
        Ok(match tag {
            1 | 2 => {
                let account = r.array("account")?;
                let amount = r.u64("amount")?;
                let key = r.bytes("idempotency key", TEXT_BYTES_MAX)?;
                if tag == 1 {
                    DomainEvent::Minted {
                        account,
                        amount,
                        key,
                    }
                } else {
                    DomainEvent::Burned {
                        account,
                        amount,
                        key,
                    }
                }
            }
            3 => DomainEvent::Transferred {
                from: r.array("from")?,
                to: r.array("to")?,
                amount: r.u64("amount")?,
                key: r.bytes("idempotency key", TEXT_BYTES_MAX)?,
            },
            4 => {
                let rule_id = text(r, "rule id")?;
                let severity = severity_from_tag(r.u8("severity")?)?;
                let event_id = text(r, "event id")?;
                let source = if version >= 2 {
                    text(r, "source")?
                } else {
                    String::new()
                };
                DomainEvent::AlertRaised {
                    rule_id,
                    severity,
                    event_id,
                    source,
                    payload_hash: Digest::from_bytes(r.array("payload hash")?),
                }
            }
            5 => DomainEvent::Staked {
                validator: r.array("validator")?,
                amount: r.u64("amount")?,
            },
            // Tag 6 was an immediate unstake, retired before any release:
            // unstaking always unbonds (tags 13 to 15).
            7 => DomainEvent::Slashed {
                validator: r.array("validator")?,
                amount: r.u64("amount")?,
                reason: text(r, "reason")?,
                evidence: Digest::from_bytes(r.array("evidence id")?),
            },
            8 => DomainEvent::RulesUpdated {
                version: r.u64("rules version")?,
                effective_height: r.u64("effective height")?,
                rules_digest: Digest::from_bytes(r.array("rules digest")?),
                rules: String::from_utf8(r.bytes("rules", RULES_BYTES_MAX)?).map_err(|_| {
                    CodecError::InvalidTag {
                        what: "rules",
                        tag: 0xff,
                    }
                })?,
            },
            9 => {
                let n = r.length("events", EVENTS_PER_RECORD_MAX)?;
                let mut events = Vec::with_capacity(n.min(r.remaining()));
                for _ in 0..n {
                    events.push(decode_event(r)?);
                }
                DomainEvent::EventsSubmitted { events }
            }
            10 => DomainEvent::IdempotencyRecorded {
                key: Digest::from_bytes(r.array("idempotency key")?),
                fields: Digest::from_bytes(r.array("idempotency fields")?),
            },
            11 => DomainEvent::Heartbeat {
                validator: r.array("validator")?,
            },
            12 => DomainEvent::Jailed {
                validator: r.array("validator")?,
                until: r.u64("release height")?,
            },
            13 | 14 => {
                let validator = r.array("validator")?;
                let amount = r.u64("amount")?;
                let height = r.u64("unbonding height")?;
                if tag == 13 {
                    DomainEvent::UnbondingStarted {
                        validator,
                        amount,
                        matures: height,
                    }
                } else {
                    DomainEvent::UnbondingCompleted {
                        validator,
                        amount,
                        started: height,
                    }
                }
            }
            15 => DomainEvent::UnbondingSlashed {
                validator: r.array("validator")?,
                amount: r.u64("amount")?,
                started: r.u64("unbonding height")?,
                evidence: Digest::from_bytes(r.array("evidence id")?),
            },
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "event tag",
                    tag,
                });
            }
        })
    }
}

fn text_field(r: &mut Reader<'_>, what: &'static str) -> Result<String, CodecError> {
    String::from_utf8(r.bytes(what, TEXT_BYTES_MAX)?)
        .map_err(|_| CodecError::InvalidTag { what, tag: 0xff })
}

/// Encodes one security event (also the wire form inside transactions).
pub fn encode_event(e: &Event, out: &mut Vec<u8>) {
    put_bytes(out, e.id.as_bytes());
    out.extend_from_slice(&e.ts.to_le_bytes());
    put_bytes(out, e.source.as_bytes());
    put_bytes(out, e.sensor.as_bytes());
    put_bytes(out, e.kind.as_bytes());
    put_bytes(out, &e.payload);
    crate::codec::put_length(out, e.headers.len());
    for (k, v) in &e.headers {
        put_bytes(out, k.as_bytes());
        put_bytes(out, v.as_bytes());
    }
}

/// Decodes one security event written by [`encode_event`].
pub fn decode_event(r: &mut Reader<'_>) -> Result<Event, CodecError> {
    let id = text_field(r, "event id")?;
    let ts = r.u64("event time")?;
    let source = text_field(r, "source")?;
    let sensor = text_field(r, "sensor")?;
    let kind = text_field(r, "kind")?;
    let payload = r.bytes("payload", EVENT_PAYLOAD_MAX)?;
    let n = r.length("headers", 256)?;
    let mut headers = Vec::with_capacity(n.min(r.remaining()));
    for _ in 0..n {
        headers.push((
            text_field(r, "header name")?.to_ascii_lowercase(),
            text_field(r, "header value")?,
        ));
    }
    Ok(Event {
        id,
        ts,
        source,
        sensor,
        kind,
        payload,
        headers,
    })
}

/// The one-byte encoding of a severity (ledger events and app snapshots).
pub(crate) fn severity_tag(s: Severity) -> u8 {
    match s {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
        Severity::Critical => 3,
    }
}

/// Decodes [`severity_tag`].
pub(crate) fn severity_from_tag(tag: u8) -> Result<Severity, CodecError> {
    Ok(match tag {
        0 => Severity::Low,
        1 => Severity::Medium,
        2 => Severity::High,
        3 => Severity::Critical,
        tag => {
            return Err(CodecError::InvalidTag {
                what: "severity",
                tag,
            });
        }
    })
}

/// Why an event was appended: the committed request that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Causation {
    /// Consensus sequence number (block height) of the request.
    pub height: u64,
    /// The client that sent it.
    pub client: [u8; 32],
    /// The client's request id.
    pub request_id: u64,
}

/// One event with its position, time and causation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Global position, from 1.
    pub sequence: u64,
    /// The stream (aggregate) it belongs to, such as `account/<hex>`.
    pub stream: String,
    /// The stream's version after this event, from 1.
    pub stream_version: u64,
    /// Block time in milliseconds.
    pub time_ms: u64,
    /// What caused it.
    pub causation: Causation,
    /// The event.
    pub event: DomainEvent,
}

impl EventRecord {
    /// Encodes in the current version.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.push(EVENT_VERSION);
        self.encode_header(&mut out);
        self.event.encode_v2(&mut out);
        out
    }

    fn encode_header(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.sequence.to_le_bytes());
        put_bytes(out, self.stream.as_bytes());
        out.extend_from_slice(&self.stream_version.to_le_bytes());
        out.extend_from_slice(&self.time_ms.to_le_bytes());
        out.extend_from_slice(&self.causation.height.to_le_bytes());
        out.extend_from_slice(&self.causation.client);
        out.extend_from_slice(&self.causation.request_id.to_le_bytes());
    }

    /// The stream of an encoded entry, read from its header alone (a reader
    /// that wants only some streams skips the others without decoding them).
    pub fn stream_of(bytes: &[u8]) -> Result<&str, CodecError> {
        let mut r = Reader::new(bytes);
        record_version(&mut r)?;
        r.u64("sequence")?;
        let length = r.length("stream", STREAM_BYTES_MAX)?;
        std::str::from_utf8(r.take("stream", length)?).map_err(|_| CodecError::InvalidTag {
            what: "stream",
            tag: 0xff,
        })
    }

    /// Decodes an entry written by any supported version, upcasting it.
    pub fn decode(bytes: &[u8]) -> Result<EventRecord, CodecError> {
        let mut r = Reader::new(bytes);
        let version = record_version(&mut r)?;
        let sequence = r.u64("sequence")?;
        let stream = String::from_utf8(r.bytes("stream", STREAM_BYTES_MAX)?).map_err(|_| {
            CodecError::InvalidTag {
                what: "stream",
                tag: 0xff,
            }
        })?;
        let record = EventRecord {
            sequence,
            stream,
            stream_version: r.u64("stream version")?,
            time_ms: r.u64("time")?,
            causation: Causation {
                height: r.u64("height")?,
                client: r.array("client")?,
                request_id: r.u64("request id")?,
            },
            event: DomainEvent::decode(version, &mut r)?,
        };
        if r.remaining() != 0 {
            return Err(CodecError::TrailingBytes {
                remaining: r.remaining(),
            });
        }
        Ok(record)
    }
}

/// An entry's version byte, if it is one this build reads.
fn record_version(r: &mut Reader<'_>) -> Result<u8, CodecError> {
    let version = r.u8("event record version")?;
    if !(1..=EVENT_VERSION).contains(&version) {
        return Err(CodecError::UnsupportedVersion {
            what: "event record",
            version,
        });
    }
    Ok(version)
}

/// The domain of the chain hash.
static ENTRY_DOMAIN: std::sync::LazyLock<DigestDomain> =
    std::sync::LazyLock::new(|| DigestDomain::new("shieldx/ledger/entry"));

/// The chain hash of an entry.
pub fn entry_hash(prev: &Digest, bytes: &[u8]) -> Digest {
    ENTRY_DOMAIN.digest(&[prev.as_bytes(), bytes])
}

/// The chain hash each of `entries` should have if the one before the first
/// has hash `prev` and every other one's predecessor has its stored hash:
/// `out[i] = entry_hash(stored hash of entries[i - 1], entries[i].bytes)`.
///
/// A run of stored entries chains from `prev` exactly when `out` equals their
/// stored hashes, and since no hash depends on a computed one, they are
/// computed side by side ([`DigestDomain::digest_many`]): replay and recovery
/// verify a chain at several times the speed of hashing it in order.
pub fn entry_hashes(prev: &Digest, entries: &[EntryRef<'_>], out: &mut Digests) {
    let inputs: Vec<[&[u8]; 2]> = entries
        .iter()
        .scan(prev, |prev, entry| {
            let input = [prev.as_bytes().as_slice(), entry.bytes];
            *prev = &entry.hash;
            Some(input)
        })
        .collect();
    ENTRY_DOMAIN.digest_many(&inputs, out);
}

/// A stored entry: its sequence number, encoded bytes and chain hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number.
    pub sequence: u64,
    /// `EventRecord` encoding, in the version that wrote it.
    pub bytes: Vec<u8>,
    /// `entry_hash(previous entry's hash, bytes)`.
    pub hash: Digest,
}

/// Records `record`'s stream version, copying the stream name only for a
/// stream not seen before.
pub(crate) fn set_stream_version(streams: &mut BTreeMap<String, u64>, record: &EventRecord) {
    match streams.get_mut(record.stream.as_str()) {
        Some(version) => *version = record.stream_version,
        None => {
            streams.insert(record.stream.clone(), record.stream_version);
        }
    }
}

/// A stored entry borrowed from the store, as [`EventStore::scan`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// Sequence number.
    pub sequence: u64,
    /// The stored chain hash.
    pub hash: Digest,
    /// The stored bytes.
    pub bytes: &'a [u8],
}

impl Entry {
    /// Borrows the entry.
    pub fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            sequence: self.sequence,
            hash: self.hash,
            bytes: &self.bytes,
        }
    }
}

/// Entries read per store call by the default [`EventStore::scan`].
const SCAN_CHUNK: usize = 4096;

/// The chain position a log continues from: genesis, or a snapshot's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    /// The last sequence number before the log's first entry.
    pub sequence: u64,
    /// Its hash.
    pub hash: Digest,
}

impl Base {
    /// The empty log.
    pub const GENESIS: Base = Base {
        sequence: 0,
        hash: GENESIS,
    };
}

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The write did not happen (nothing of the batch is visible).
    #[error("write failed: {0}")]
    WriteFailed(String),
    /// A read failed or returned bytes that cannot be right.
    #[error("read failed: {0}")]
    ReadFailed(String),
    /// The batch does not start at head + 1 or is not contiguous.
    #[error("append at {got} but the log continues at {expected}")]
    OutOfOrder {
        /// The sequence number the store needed.
        expected: u64,
        /// The one it got.
        got: u64,
    },
}

/// Where the ledger keeps its bytes. Implementations: [`memory::MemoryStore`]
/// (the simulator's, with injected faults) and the daemon's redb store. Both
/// pass [`conformance::run`].
pub trait EventStore {
    /// Appends `entries` (contiguous, starting at the head + 1) atomically.
    /// On error nothing of the batch is visible, now or after a crash.
    fn append(&mut self, entries: &[Entry]) -> Result<(), StoreError>;
    /// Makes every append so far survive a crash.
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Up to `limit` entries from sequence `from`, in order.
    fn read(&self, from: u64, limit: usize) -> Result<Vec<Entry>, StoreError>;
    /// Where the stored log starts (genesis, or a snapshot's head after state
    /// transfer) and the last entry, if any.
    fn bounds(&self) -> Result<(Base, Option<(u64, Digest)>), StoreError>;
    /// Replaces the log with an empty one continuing from `base` and stores
    /// `snapshot` (application state at `base`), atomically.
    fn reset_to_snapshot(&mut self, base: Base, snapshot: &[u8]) -> Result<(), StoreError>;
    /// Stores a snapshot of the application state at `base` (which must be
    /// within the log), keeping the log.
    fn put_snapshot(&mut self, base: Base, snapshot: &[u8]) -> Result<(), StoreError>;
    /// The latest stored snapshot.
    fn snapshot(&self) -> Result<Option<(Base, Vec<u8>)>, StoreError>;
    /// Calls `each` with the entries from `from` to the end of the log, in
    /// order and in batches (never empty), until `each` breaks. Replay and
    /// chain verification use it; a store overrides it to lend its bytes
    /// rather than copy them, as the redb store does. The default reads
    /// [`EventStore::read`] chunks.
    fn scan(
        &self,
        from: u64,
        each: &mut dyn FnMut(&[EntryRef<'_>]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut from = from;
        loop {
            let chunk = self.read(from, SCAN_CHUNK)?;
            let Some(last) = chunk.last() else {
                return Ok(());
            };
            from = last.sequence + 1;
            let refs: Vec<EntryRef<'_>> = chunk.iter().map(Entry::as_ref).collect();
            if each(&refs).is_break() {
                return Ok(());
            }
        }
    }
}

/// The version a stream must be at for an append to proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(u64),
}

/// A ledger operation that failed. State is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The log does not verify; the node must not start on it.
    #[error("ledger corrupt at sequence {sequence}: {reason}")]
    Corrupt {
        /// The first bad entry.
        sequence: u64,
        /// What is wrong.
        reason: String,
    },
    /// Optimistic concurrency: a stream is not at the expected version.
    #[error("stream {stream}: expected {expected:?}, found version {actual}")]
    WrongVersion {
        /// The stream.
        stream: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's version (0: no stream).
        actual: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The application's slashing policy is unusable; nothing was opened.
    #[error("slashing policy: {0}")]
    Policy(#[from] crate::staking::PolicyError),
}

/// The log with its head and stream versions, over a store.
#[derive(Debug)]
pub struct Ledger<S> {
    store: S,
    base: Base,
    head: (u64, Digest),
    streams: BTreeMap<String, u64>,
}

impl<S: EventStore> Ledger<S> {
    /// Opens the log in `store`, verifying the whole hash chain and every
    /// entry's encoding; a log that does not verify is refused.
    pub fn open(store: S) -> Result<Ledger<S>, LedgerError> {
        let (base, _) = store.bounds()?;
        let mut ledger = Ledger {
            store,
            base,
            head: (base.sequence, base.hash),
            streams: BTreeMap::new(),
        };
        let mut streams = BTreeMap::new();
        let head = ledger.replay(|record| set_stream_version(&mut streams, record))?;
        ledger.head = head;
        ledger.streams = streams;
        Ok(ledger)
    }

    /// Opens the log from a checkpoint the caller trusts (the head recorded
    /// in the latest snapshot, with the stream versions at that point):
    /// checks that the stored entry at the checkpoint has the recorded hash,
    /// then verifies only the suffix after it. Recovery time is therefore
    /// bounded by the checkpoint interval, not by the size of the log; the
    /// whole chain stays verifiable with [`Ledger::replay`].
    pub fn open_at(
        store: S,
        checkpoint: Base,
        streams: BTreeMap<String, u64>,
    ) -> Result<Ledger<S>, LedgerError> {
        Ledger::open_at_with(store, checkpoint, streams, |_| {})
    }

    /// [`Ledger::open_at`], handing every verified record of the suffix to
    /// `each`, in order: recovery applies them to its projections without
    /// reading and verifying the suffix a second time.
    pub fn open_at_with(
        store: S,
        checkpoint: Base,
        streams: BTreeMap<String, u64>,
        mut each: impl FnMut(EventRecord),
    ) -> Result<Ledger<S>, LedgerError> {
        let (base, _) = store.bounds()?;
        let corrupt = |reason: &str| LedgerError::Corrupt {
            sequence: checkpoint.sequence,
            reason: reason.to_string(),
        };
        if checkpoint.sequence < base.sequence {
            return Err(corrupt("the checkpoint is older than the stored log"));
        }
        if checkpoint.sequence == base.sequence {
            if checkpoint.hash != base.hash {
                return Err(corrupt("the checkpoint hash differs from the log's base"));
            }
        } else {
            // The checkpointed entry and its predecessor: the entry's bytes
            // must chain from the predecessor's hash to the recorded hash.
            let first = checkpoint.sequence - 1;
            let pair = store.read(first.max(base.sequence + 1), 2)?;
            let (prev_hash, entry) = if first == base.sequence {
                (base.hash, pair.first())
            } else {
                match pair.first() {
                    Some(p) if p.sequence == first => (p.hash, pair.get(1)),
                    _ => return Err(corrupt("the entry before the checkpoint is missing")),
                }
            };
            match entry {
                Some(e)
                    if e.sequence == checkpoint.sequence
                        && e.hash == checkpoint.hash
                        && entry_hash(&prev_hash, &e.bytes) == checkpoint.hash => {}
                Some(_) => return Err(corrupt("the stored entry does not match the checkpoint")),
                None => return Err(corrupt("the checkpointed entry is missing")),
            }
        }
        let mut ledger = Ledger {
            store,
            base,
            head: (checkpoint.sequence, checkpoint.hash),
            streams,
        };
        let mut streams = std::mem::take(&mut ledger.streams);
        let head = ledger.replay_records(checkpoint, &mut |record| {
            set_stream_version(&mut streams, &record);
            each(record);
        })?;
        ledger.head = head;
        ledger.streams = streams;
        Ok(ledger)
    }

    /// Reads the whole stored log in order, verifying the chain, and calls
    /// `each` with every decoded (upcast) record. Returns the verified head.
    pub fn replay(&self, each: impl FnMut(&EventRecord)) -> Result<(u64, Digest), LedgerError> {
        self.replay_from(self.base, each)
    }

    /// Like [`Ledger::replay`], from the entry after `start` (whose hash the
    /// caller vouches for).
    pub fn replay_from(
        &self,
        start: Base,
        mut each: impl FnMut(&EventRecord),
    ) -> Result<(u64, Digest), LedgerError> {
        self.replay_records(start, &mut |record| each(&record))
    }

    /// [`Ledger::replay_from`], handing over each record.
    fn replay_records(
        &self,
        start: Base,
        each: &mut dyn FnMut(EventRecord),
    ) -> Result<(u64, Digest), LedgerError> {
        let (mut sequence, mut hash) = (start.sequence, start.hash);
        let mut failure = None;
        let mut chained = Digests::new();
        self.store.scan(sequence + 1, &mut |batch| {
            entry_hashes(&hash, batch, &mut chained);
            for (entry, &expected) in batch.iter().zip(chained.iter()) {
                let corrupt = |reason: String| LedgerError::Corrupt {
                    sequence: sequence + 1,
                    reason,
                };
                if entry.sequence != sequence + 1 {
                    failure = Some(corrupt(format!("found sequence {}", entry.sequence)));
                    return ControlFlow::Break(());
                }
                if entry.hash != expected {
                    failure = Some(corrupt(format!(
                        "hash {} does not chain (expected {expected})",
                        entry.hash
                    )));
                    return ControlFlow::Break(());
                }
                let record = match EventRecord::decode(entry.bytes) {
                    Ok(record) => record,
                    Err(e) => {
                        failure = Some(corrupt(format!("does not decode: {e}")));
                        return ControlFlow::Break(());
                    }
                };
                if record.sequence != entry.sequence {
                    failure = Some(corrupt(format!("encodes sequence {}", record.sequence)));
                    return ControlFlow::Break(());
                }
                each(record);
                sequence = entry.sequence;
                hash = entry.hash;
            }
            ControlFlow::Continue(())
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok((sequence, hash)),
        }
    }

    /// The last sequence number and hash.
    pub fn head(&self) -> (u64, Digest) {
        self.head
    }

    /// Where the stored log starts.
    pub fn base(&self) -> Base {
        self.base
    }

    /// A stream's version (0 if it does not exist).
    pub fn stream_version(&self, stream: &str) -> u64 {
        self.streams.get(stream).copied().unwrap_or(0)
    }

    /// The store, for snapshots and reads.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, mutably (tests crash it).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Appends `events` as one atomic batch at `time_ms` with `causation`,
    /// after checking every stream's expected version. On any error nothing is
    /// written and the ledger is unchanged.
    pub fn append(
        &mut self,
        time_ms: u64,
        causation: Causation,
        events: Vec<(String, ExpectedVersion, DomainEvent)>,
    ) -> Result<Vec<EventRecord>, LedgerError> {
        let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
        for (stream, expected, _) in &events {
            let actual = *versions
                .entry(stream.as_str())
                .or_insert_with(|| self.stream_version(stream));
            let ok = match expected {
                ExpectedVersion::Any => true,
                ExpectedVersion::NoStream => actual == 0,
                ExpectedVersion::Exact(v) => actual == *v,
            };
            if !ok {
                return Err(LedgerError::WrongVersion {
                    stream: stream.clone(),
                    expected: *expected,
                    actual,
                });
            }
            if let Some(v) = versions.get_mut(stream.as_str()) {
                *v += 1;
            }
        }
        let (mut sequence, mut hash) = self.head;
        let mut next_version: BTreeMap<String, u64> = BTreeMap::new();
        let mut records = Vec::with_capacity(events.len());
        let mut entries = Vec::with_capacity(events.len());
        for (stream, _, event) in events {
            sequence += 1;
            let version = next_version
                .entry(stream.clone())
                .or_insert_with(|| self.stream_version(&stream));
            *version += 1;
            let record = EventRecord {
                sequence,
                stream_version: *version,
                stream,
                time_ms,
                causation,
                event,
            };
            let bytes = record.encode();
            hash = entry_hash(&hash, &bytes);
            entries.push(Entry {
                sequence,
                bytes,
                hash,
            });
            records.push(record);
        }
        self.store.append(&entries)?;
        self.head = (sequence, hash);
        self.streams.extend(next_version);
        Ok(records)
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), LedgerError> {
        Ok(self.store.sync()?)
    }

    /// Restarts the log from a snapshot (state transfer): the stored log is
    /// replaced by an empty one continuing from `base`. Stream versions come
    /// from the application's snapshot (`streams`).
    pub fn reset_to_snapshot(
        &mut self,
        base: Base,
        snapshot: &[u8],
        streams: BTreeMap<String, u64>,
    ) -> Result<(), LedgerError> {
        self.store.reset_to_snapshot(base, snapshot)?;
        self.base = base;
        self.head = (base.sequence, base.hash);
        self.streams = streams;
        Ok(())
    }

    /// All stream versions (part of the application snapshot).
    pub fn streams(&self) -> &BTreeMap<String, u64> {
        &self.streams
    }
}

#[cfg(test)]
mod tests;
