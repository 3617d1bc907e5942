//! Canonical encodings of transactions and of the application state.

use std::collections::BTreeMap;

use super::{EVENTS_PER_TX_MAX, IDEMPOTENCY_KEY_MAX, RULES_BYTES_MAX, TRANSFER_LEGS_MAX};
use super::{Remembered, State, Transaction, TransferLeg, Unbonding};
use crate::codec::{CodecError, Decode, Encode, Reader, put_bytes, put_length};
use crate::consensus::EvidenceRecord;
use crate::crypto::Digest;
use crate::ledger::{decode_event, encode_event, severity_from_tag, severity_tag};
use crate::staking::UNBONDING_ENTRIES_MAX;

const STATE_VERSION: u8 = 3;
const TEXT_MAX: usize = 4096;
const MAP_MAX: usize = 1 << 24;

fn text(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<String, CodecError> {
    String::from_utf8(r.bytes(what, max)?).map_err(|_| CodecError::InvalidTag { what, tag: 0xff })
}

impl Encode for Transaction {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Transaction::SubmitEvents { time_ms, events } => {
                out.push(1);
                out.extend_from_slice(&time_ms.to_le_bytes());
                put_length(out, events.len());
                events.iter().for_each(|e| encode_event(e, out));
            }
            Transaction::Mint {
                time_ms,
                key,
                to,
                amount,
            } => {
                out.push(2);
                out.extend_from_slice(&time_ms.to_le_bytes());
                put_bytes(out, key);
                out.extend_from_slice(to);
                out.extend_from_slice(&amount.to_le_bytes());
            }
            Transaction::Burn {
                time_ms,
                key,
                amount,
            } => {
                out.push(3);
                out.extend_from_slice(&time_ms.to_le_bytes());
                put_bytes(out, key);
                out.extend_from_slice(&amount.to_le_bytes());
            }
            Transaction::Transfer { time_ms, key, legs } => {
                out.push(4);
                out.extend_from_slice(&time_ms.to_le_bytes());
                put_bytes(out, key);
                put_length(out, legs.len());
                for leg in legs {
                    out.extend_from_slice(&leg.to);
                    out.extend_from_slice(&leg.amount.to_le_bytes());
                }
            }
            Transaction::Stake { time_ms, amount } | Transaction::Unstake { time_ms, amount } => {
                out.push(if matches!(self, Transaction::Stake { .. }) {
                    5
                } else {
                    6
                });
                out.extend_from_slice(&time_ms.to_le_bytes());
                out.extend_from_slice(&amount.to_le_bytes());
            }
            Transaction::Heartbeat { time_ms } => {
                out.push(9);
                out.extend_from_slice(&time_ms.to_le_bytes());
            }
            Transaction::Evidence { time_ms, evidence } => {
                out.push(7);
                out.extend_from_slice(&time_ms.to_le_bytes());
                evidence.encode(out);
            }
            Transaction::RulesUpdate {
                time_ms,
                version,
                effective_height,
                rules,
            } => {
                out.push(8);
                out.extend_from_slice(&time_ms.to_le_bytes());
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(&effective_height.to_le_bytes());
                put_bytes(out, rules.as_bytes());
            }
        }
    }
}

impl Decode for Transaction {
    fn decode(r: &mut Reader<'_>) -> Result<Transaction, CodecError> {
        let tag = r.u8("transaction")?;
        let time_ms = r.u64("time")?;
        Ok(match tag {
            1 => {
                let n = r.length("events", EVENTS_PER_TX_MAX)?;
                let mut events = Vec::with_capacity(n.min(r.remaining()));
                for _ in 0..n {
                    events.push(decode_event(r)?);
                }
                Transaction::SubmitEvents { time_ms, events }
            }
            2 => Transaction::Mint {
                time_ms,
                key: r.bytes("key", IDEMPOTENCY_KEY_MAX)?,
                to: r.array("to")?,
                amount: r.u64("amount")?,
            },
            3 => Transaction::Burn {
                time_ms,
                key: r.bytes("key", IDEMPOTENCY_KEY_MAX)?,
                amount: r.u64("amount")?,
            },
            4 => {
                let key = r.bytes("key", IDEMPOTENCY_KEY_MAX)?;
                let n = r.length("legs", TRANSFER_LEGS_MAX)?;
                let mut legs = Vec::with_capacity(n.min(r.remaining() / 40));
                for _ in 0..n {
                    legs.push(TransferLeg {
                        to: r.array("to")?,
                        amount: r.u64("amount")?,
                    });
                }
                Transaction::Transfer { time_ms, key, legs }
            }
            5 => Transaction::Stake {
                time_ms,
                amount: r.u64("amount")?,
            },
            6 => Transaction::Unstake {
                time_ms,
                amount: r.u64("amount")?,
            },
            7 => Transaction::Evidence {
                time_ms,
                evidence: Box::new(EvidenceRecord::decode(r)?),
            },
            8 => Transaction::RulesUpdate {
                time_ms,
                version: r.u64("rules version")?,
                effective_height: r.u64("effective height")?,
                rules: text(r, "rules", RULES_BYTES_MAX)?,
            },
            9 => Transaction::Heartbeat { time_ms },
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "transaction",
                    tag,
                });
            }
        })
    }
}

fn put_u64_map<K>(out: &mut Vec<u8>, map: &BTreeMap<K, u64>, key: impl Fn(&K, &mut Vec<u8>)) {
    put_length(out, map.len());
    for (k, v) in map {
        key(k, out);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Encodes the state and the detector's windows.
pub(super) fn encode_state(s: &State, windows: &[u8]) -> Vec<u8> {
    let mut out = vec![STATE_VERSION];
    out.extend_from_slice(&s.time_ms.to_le_bytes());
    let account = |k: &[u8; 32], out: &mut Vec<u8>| out.extend_from_slice(k);
    let string = |k: &String, out: &mut Vec<u8>| put_bytes(out, k.as_bytes());
    let digest = |k: &Digest, out: &mut Vec<u8>| out.extend_from_slice(k.as_bytes());
    put_u64_map(&mut out, &s.balances, account);
    put_u64_map(&mut out, &s.stakes, account);
    put_u64_map(&mut out, &s.tombstoned, account);
    out.extend_from_slice(&s.supply.to_le_bytes());
    put_u64_map(&mut out, &s.alerts_by_severity, |k, out| {
        out.push(severity_tag(*k))
    });
    put_u64_map(&mut out, &s.alerts_by_rule, string);
    put_u64_map(&mut out, &s.alerts_by_source, string);
    put_u64_map(&mut out, &s.slashed, digest);
    put_u64_map(&mut out, &s.offences, account);
    put_u64_map(&mut out, &s.last_seen, account);
    put_u64_map(&mut out, &s.jailed, account);
    put_u64_map(&mut out, &s.jailed_since, account);
    put_length(&mut out, s.unbonding.len());
    for (account, entries) in &s.unbonding {
        out.extend_from_slice(account);
        put_length(&mut out, entries.len());
        for (started, entry) in entries {
            out.extend_from_slice(&started.to_le_bytes());
            out.extend_from_slice(&entry.matures.to_le_bytes());
            out.extend_from_slice(&entry.amount.to_le_bytes());
        }
    }
    out.extend_from_slice(&s.height.to_le_bytes());
    put_length(&mut out, s.idempotency.len());
    for (k, v) in &s.idempotency {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.fields.as_bytes());
        out.extend_from_slice(&v.result_sequence.to_le_bytes());
        out.extend_from_slice(&v.time_ms.to_le_bytes());
    }
    out.extend_from_slice(&s.rules.0.to_le_bytes());
    put_bytes(&mut out, s.rules.1.as_bytes());
    match &s.pending_rules {
        None => out.push(0),
        Some((version, height, yaml)) => {
            out.push(1);
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(&height.to_le_bytes());
            put_bytes(&mut out, yaml.as_bytes());
        }
    }
    out.extend_from_slice(&s.head.0.to_le_bytes());
    out.extend_from_slice(s.head.1.as_bytes());
    put_u64_map(&mut out, &s.streams, string);
    put_bytes(&mut out, windows);
    out
}

fn get_u64_map<K: Ord>(
    r: &mut Reader<'_>,
    what: &'static str,
    mut key: impl FnMut(&mut Reader<'_>) -> Result<K, CodecError>,
) -> Result<BTreeMap<K, u64>, CodecError> {
    let n = r.length(what, MAP_MAX)?;
    let mut map = BTreeMap::new();
    for _ in 0..n {
        let k = key(r)?;
        let v = r.u64(what)?;
        if map.insert(k, v).is_some() {
            return Err(CodecError::InvalidTag { what, tag: 0xfe });
        }
    }
    Ok(map)
}

/// Decodes [`encode_state`]'s output into the state and the window bytes.
pub(super) fn decode_state(bytes: &[u8]) -> Result<(State, Vec<u8>), CodecError> {
    let mut r = Reader::new(bytes);
    r.version("application state", STATE_VERSION)?;
    let mut s = State {
        time_ms: r.u64("time")?,
        ..State::default()
    };
    s.balances = get_u64_map(&mut r, "balances", |r| r.array("account"))?;
    s.stakes = get_u64_map(&mut r, "stakes", |r| r.array("account"))?;
    s.tombstoned = get_u64_map(&mut r, "tombstoned", |r| r.array("account"))?;
    s.supply = r.u64("supply")?;
    s.alerts_by_severity = get_u64_map(&mut r, "alerts by severity", |r| {
        severity_from_tag(r.u8("severity")?)
    })?;
    s.alerts_by_rule = get_u64_map(&mut r, "alerts by rule", |r| text(r, "rule", TEXT_MAX))?;
    s.alerts_by_source = get_u64_map(&mut r, "alerts by source", |r| text(r, "source", TEXT_MAX))?;
    if s.alerts_by_source.len() > super::ALERT_SOURCES_MAX {
        return Err(CodecError::Invalid {
            what: "alerts by source",
            reason: "more sources than ALERT_SOURCES_MAX",
        });
    }
    s.alert_sources_by_count = s
        .alerts_by_source
        .iter()
        .map(|(source, count)| (*count, source.clone()))
        .collect();
    s.slashed = get_u64_map(&mut r, "slashed", |r| {
        Ok(Digest::from_bytes(r.array("evidence")?))
    })?;
    s.offences = get_u64_map(&mut r, "offences", |r| r.array("account"))?;
    s.last_seen = get_u64_map(&mut r, "last seen", |r| r.array("account"))?;
    s.jailed = get_u64_map(&mut r, "jailed", |r| r.array("account"))?;
    s.jailed_since = get_u64_map(&mut r, "jailed since", |r| r.array("account"))?;
    let accounts = r.length("unbonding accounts", MAP_MAX)?;
    for _ in 0..accounts {
        let account: [u8; 32] = r.array("unbonding account")?;
        let n = r.length("unbonding entries", UNBONDING_ENTRIES_MAX)?;
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let started = r.u64("unbonding start")?;
            let entry = Unbonding {
                matures: r.u64("unbonding maturity")?,
                amount: r.u64("unbonding amount")?,
            };
            if entries.insert(started, entry).is_some() {
                return Err(CodecError::InvalidTag {
                    what: "unbonding entries",
                    tag: 0xfe,
                });
            }
            s.unbonding_due.insert((entry.matures, account, started));
        }
        if entries.is_empty() || s.unbonding.insert(account, entries).is_some() {
            return Err(CodecError::InvalidTag {
                what: "unbonding accounts",
                tag: 0xfe,
            });
        }
    }
    s.height = r.u64("height")?;
    let n = r.length("idempotency", MAP_MAX)?;
    for _ in 0..n {
        let key = Digest::from_bytes(r.array("idempotency key")?);
        let entry = Remembered {
            fields: Digest::from_bytes(r.array("idempotency fields")?),
            result_sequence: r.u64("idempotency result")?,
            time_ms: r.u64("idempotency time")?,
        };
        s.idempotency_by_time.insert((entry.time_ms, key), ());
        s.idempotency.insert(key, entry);
    }
    s.rules = (
        r.u64("rules version")?,
        text(&mut r, "rules", RULES_BYTES_MAX)?,
    );
    s.pending_rules = match r.u8("pending rules")? {
        0 => None,
        1 => Some((
            r.u64("pending version")?,
            r.u64("pending height")?,
            text(&mut r, "pending rules", RULES_BYTES_MAX)?,
        )),
        tag => {
            return Err(CodecError::InvalidTag {
                what: "pending rules",
                tag,
            });
        }
    };
    s.head = (r.u64("head")?, Digest::from_bytes(r.array("head hash")?));
    s.streams = get_u64_map(&mut r, "streams", |r| {
        text(r, "stream", crate::ledger::STREAM_BYTES_MAX)
    })?;
    // Bounded by the state itself: full window tables (100,000 keys per
    // rule, up to `count` values each) pass any fixed encoding limit.
    let windows = r.bytes("windows", bytes.len())?;
    if r.remaining() != 0 {
        return Err(CodecError::TrailingBytes {
            remaining: r.remaining(),
        });
    }
    Ok((s, windows))
}
