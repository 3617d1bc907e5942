//! Detection: signature and anomaly rules over security events.
//!
//! A [`RuleSet`] (parsed from YAML, see [`rules`]) compiles into
//! [`CompiledRules`]; a [`Detector`] runs them over [`Event`]s in order and
//! emits [`Alert`]s. The same engine is embedded on its own (`shieldx detect`,
//! `shieldx eval`) and runs inside the replicated application, where every
//! validator feeds it the same ordered events.
//!
//! # How matching works
//! 1. Each rule names fields and a transform chain. Every distinct
//!    (field, chain) pair of the whole set is an *input*, computed once per
//!    event (see [`transform`]).
//! 2. Every literal of every rule, and the literals that any match of each
//!    regex must contain, go into **one** Aho-Corasick automaton, built
//!    explicitly as an anchored DFA over the lowercased literals
//!    (`engine/literal_scan.rs`): a fingerprint filter over every four input
//!    bytes chooses the positions where the DFA runs, entered through a jump
//!    table at the state after those four bytes; exact-case literals are
//!    confirmed at the match position.
//! 3. A rule is evaluated only if one of its *trigger* atoms fired (a literal of
//!    an `all`, every branch of an `any`), so a regex runs only for candidate
//!    rules. Rules that cannot be pre-filtered (a bare `not`, a regex without a
//!    required literal) are evaluated on every event; [`CompiledRules::stats`]
//!    counts them. *Broad* regexes (no required literal of four bytes or
//!    more) of one input run together as one multi-pattern regex scan per
//!    event (`regex-automata`'s meta regex reporting every member), and
//!    a member's own regex runs only to locate a match the set found.
//! 4. Anomaly rules then count matches per key in a window ([`window`]).
//!
//! # Invariants
//! - **Determinism.** The alerts for an event are a function of the rule set,
//!   the events before it in order and their times, and nothing else: no clock,
//!   no randomness, no hash-table iteration order. Alerts come out in rule-file
//!   order. The window tables' hash seed is an input and provably does not
//!   change any output (test `hash_seed_does_not_change_alerts`).
//! - **Logical time.** Windows advance on the time passed with each event (the
//!   event's or the block's timestamp), never wall time; a time that goes
//!   backwards is treated as the latest time seen for that key.
//! - **Bounded memory.** Per rule, the window table holds at most
//!   [`DetectorConfig::max_keys_per_rule`] keys, each with at most `count`
//!   timestamps; the least recently updated key is evicted first.
//! - **No panics on input.** Any event bytes and any rule file that parses are
//!   safe; the fuzz targets `detect_rules` and `detect_engine` check it.

pub mod engine;
pub mod eval;
pub mod rules;
pub mod transform;
pub mod window;

use std::fmt;

pub use engine::{
    AlertingEvent, CompileError, CompiledRules, Detector, DetectorConfig, EngineStats, WorkCounters,
};
pub use rules::{Aggregate, AggregateMode, Condition, Field, Rule, RuleFileError, RuleSet};
pub use transform::Transform;

use crate::crypto::Digest;

/// The source of the default web rule pack (`--rules default`).
pub const DEFAULT_RULES_YAML: &str = include_str!("../../rules/default.yaml");

/// The default rule pack, parsed.
///
/// # Panics
/// Never in a released build: the pack is checked by the test
/// `default_pack_parses_and_compiles`.
pub fn default_rules() -> RuleSet {
    match RuleSet::parse(DEFAULT_RULES_YAML) {
        Ok(set) => set,
        Err(e) => unreachable!("the embedded default rule pack is invalid: {e}"),
    }
}

/// How bad a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Informational or weak signal.
    Low,
    /// Suspicious.
    Medium,
    /// An attack attempt.
    High,
    /// An attack likely to succeed or already damaging.
    Critical,
}

impl Severity {
    /// All severities, most severe first.
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    /// The rule-file name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// Parses a rule-file name.
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The weight in severity-weighted quality metrics: critical 3, high 2,
    /// medium 1, low 0.5.
    pub fn weight(self) -> f64 {
        match self {
            Severity::Critical => 3.0,
            Severity::High => 2.0,
            Severity::Medium => 1.0,
            Severity::Low => 0.5,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A security event reported by a sensor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// Unique per sensor stream; alerts and evaluation refer to it.
    pub id: String,
    /// Event time in milliseconds since the Unix epoch, as the sensor saw it.
    pub ts: u64,
    /// The source address.
    pub source: String,
    /// The reporting sensor.
    pub sensor: String,
    /// `http`, `dns`, `auth`, ...
    pub kind: String,
    /// The raw payload; for `http`, the request line, headers and body.
    pub payload: Vec<u8>,
    /// Header fields given separately by the sensor (names lowercase).
    pub headers: Vec<(String, String)>,
}

impl Event {
    /// The value of header `name` (lowercase): from [`Event::headers`] if the
    /// sensor gave it, otherwise, for `http` events, from the header lines of
    /// the payload.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        if let Some((_, v)) = self.headers.iter().find(|(n, _)| n == name) {
            return Some(v.as_bytes());
        }
        if self.kind != "http" {
            return None;
        }
        let head_end =
            memchr::memmem::find(&self.payload, b"\r\n\r\n").unwrap_or(self.payload.len());
        let head = &self.payload[..head_end];
        // The header lines follow the request line.
        let mut start = memchr::memchr(b'\n', head)? + 1;
        while start < head.len() {
            let end = memchr::memchr(b'\n', &head[start..]).map_or(head.len(), |i| start + i);
            let line = &head[start..end];
            if let Some(colon) = memchr::memchr(b':', line) {
                let (n, v) = line.split_at(colon);
                if n.trim_ascii().eq_ignore_ascii_case(name.as_bytes()) {
                    return Some(v[1..].trim_ascii());
                }
            }
            start = end + 1;
        }
        None
    }

    /// The bytes of `field` in this event (empty if absent).
    pub fn field(&self, field: &Field) -> &[u8] {
        match field {
            Field::Payload => &self.payload,
            Field::Source => self.source.as_bytes(),
            Field::Kind => self.kind.as_bytes(),
            Field::Sensor => self.sensor.as_bytes(),
            Field::Header(name) => self.header(name).unwrap_or_default(),
        }
    }
}

/// Where a condition matched: a byte range of a field *after* the rule's
/// transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchSpan {
    /// Index into the rule's `fields`.
    pub field: u16,
    /// Start offset in the transformed field.
    pub start: u32,
    /// End offset (exclusive).
    pub end: u32,
}

/// A rule that fired on an event.
///
/// It names its rule by position ([`CompiledRules::rule`] gives the rule and
/// its id) and belongs to the event it was inspected with (for a batch,
/// [`Detector::inspect_batch`] says which events raised which alerts): an
/// alert holds no shared or allocated name, so raising one costs no
/// reference count and no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The rule's position in its set.
    pub rule_index: u32,
    /// The rule's severity.
    pub severity: Severity,
    /// blake3 of the event's raw payload.
    pub payload_hash: Digest,
    /// The positive literal and regex matches that made the rule true, in
    /// condition order (empty for a rule without `match`).
    pub matches: MatchSpans,
}

/// The spans of one alert, as a slice. Up to two are held inline, which is
/// every rule of one condition or a pair: an alert then costs no allocation.
#[derive(Clone)]
pub struct MatchSpans(SpansRepr);

#[derive(Clone)]
enum SpansRepr {
    Inline { len: u8, spans: [MatchSpan; 2] },
    Heap(Box<[MatchSpan]>),
}

const NO_SPAN: MatchSpan = MatchSpan {
    field: 0,
    start: 0,
    end: 0,
};

impl MatchSpans {
    /// One span.
    pub fn one(span: MatchSpan) -> MatchSpans {
        MatchSpans(SpansRepr::Inline {
            len: 1,
            spans: [span, NO_SPAN],
        })
    }

    /// A copy of `spans`.
    pub fn from_slice(spans: &[MatchSpan]) -> MatchSpans {
        MatchSpans(match spans {
            [] => SpansRepr::Inline {
                len: 0,
                spans: [NO_SPAN; 2],
            },
            [a] => SpansRepr::Inline {
                len: 1,
                spans: [*a, NO_SPAN],
            },
            [a, b] => SpansRepr::Inline {
                len: 2,
                spans: [*a, *b],
            },
            _ => SpansRepr::Heap(spans.into()),
        })
    }

    /// The spans.
    pub fn as_slice(&self) -> &[MatchSpan] {
        match &self.0 {
            SpansRepr::Inline { len, spans } => &spans[..usize::from(*len)],
            SpansRepr::Heap(spans) => spans,
        }
    }
}

impl Default for MatchSpans {
    fn default() -> MatchSpans {
        MatchSpans::from_slice(&[])
    }
}

impl std::ops::Deref for MatchSpans {
    type Target = [MatchSpan];

    fn deref(&self) -> &[MatchSpan] {
        self.as_slice()
    }
}

impl<'a> IntoIterator for &'a MatchSpans {
    type Item = &'a MatchSpan;
    type IntoIter = std::slice::Iter<'a, MatchSpan>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl PartialEq for MatchSpans {
    fn eq(&self, other: &MatchSpans) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for MatchSpans {}

impl std::fmt::Debug for MatchSpans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_spans_hold_any_number_inline_or_not() {
        let span = |i: u32| MatchSpan {
            field: i as u16,
            start: i,
            end: i + 1,
        };
        for n in 0..5u32 {
            let spans: Vec<MatchSpan> = (0..n).map(span).collect();
            let held = MatchSpans::from_slice(&spans);
            assert_eq!(held.as_slice(), spans.as_slice());
            assert_eq!(held.clone(), held);
            assert_eq!(format!("{held:?}"), format!("{spans:?}"));
            assert_eq!((&held).into_iter().count(), n as usize);
        }
        assert_ne!(
            MatchSpans::from_slice(&[span(1)]),
            MatchSpans::from_slice(&[span(1), span(2)])
        );
        assert!(MatchSpans::default().is_empty());
    }

    #[test]
    fn a_header_is_read_from_the_header_lines_only() {
        let event = |payload: &str| Event {
            id: "e".into(),
            ts: 0,
            source: String::new(),
            sensor: String::new(),
            kind: "http".into(),
            payload: payload.as_bytes().to_vec(),
            headers: Vec::new(),
        };
        let e = event(
            "GET /a:b HTTP/1.1\r\nHost: shop\r\nUSER-agent :\t curl/8 \r\nX-Empty:\r\n\r\nReferer: body",
        );
        assert_eq!(e.header("user-agent"), Some(&b"curl/8"[..]));
        assert_eq!(e.header("host"), Some(&b"shop"[..]));
        assert_eq!(e.header("x-empty"), Some(&b""[..]));
        assert_eq!(e.header("get /a"), None, "the request line is no header");
        assert_eq!(e.header("referer"), None, "the body is no header");
        // Without a blank line the header lines run to the end.
        assert_eq!(
            event("GET / HTTP/1.1\nHost: a\nAccept: */*").header("accept"),
            Some(&b"*/*"[..])
        );
        assert_eq!(event("GET / HTTP/1.1").header("host"), None);
        assert_eq!(event("").header("host"), None);
        // A header the sensor gave wins; other kinds have no payload headers.
        let mut given = event("GET / HTTP/1.1\r\nHost: payload\r\n\r\n");
        given.headers = vec![("host".into(), "sensor".into())];
        assert_eq!(given.header("host"), Some(&b"sensor"[..]));
        given.headers.clear();
        given.kind = "dns".into();
        assert_eq!(given.header("host"), None);
    }
}
