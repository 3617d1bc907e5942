//! The rule model and its YAML form.
//!
//! ```yaml
//! rules:
//!   - id: sqli-union-select            # unique, [a-z0-9._-]+
//!     title: SQL injection with UNION SELECT
//!     severity: critical                # critical | high | medium | low
//!     tags: [sqli, attack]
//!     kinds: [http]                     # optional: only events of these kinds
//!     fields: [payload]                 # payload | source | kind | sensor | header.NAME
//!     transforms: [url_decode, html_entity_decode, replace_comments, lowercase, compress_whitespace]
//!     match:                            # literal | regex | all | any | not
//!       all:
//!         - literal: union
//!           nocase: true
//!         - regex: 'union\s+(all\s+)?select'
//!     aggregate:                        # optional: makes it an anomaly rule
//!       by: source                      # the key that is counted
//!       mode: event_count               # threshold | limit | both | detection_filter
//!                                       # | event_count | value_count
//!       count: 20
//!       window_ms: 60000
//!       distinct: header.user-agent     # value_count only
//! ```
//!
//! A top-level `defaults:` mapping may set `fields`, `transforms` and `kinds`
//! for every rule that does not set them itself (YAML anchors are refused, so
//! this is how a pack shares one normalisation chain).
//!
//! A condition is evaluated on each listed field separately (after the
//! transforms); the rule matches an event when it holds on at least one field.
//! A rule without `match` matches every event it applies to, which is only
//! useful with `aggregate` (counting all requests per source, say).
//!
//! [`RuleSet::parse`] reports every problem it finds, each with its line and the
//! path of the offending field, and builds nothing unless the whole file is valid.

use std::collections::BTreeSet;
use std::fmt;

use marked_yaml::{LoaderOptions, Node, Span};

use super::Severity;
use super::transform::Transform;

/// The most rules one file may hold.
pub const RULES_MAX: usize = 100_000;
/// The longest literal or regex source, in bytes.
pub const PATTERN_BYTES_MAX: usize = 4096;
/// The deepest nesting of `all`/`any`/`not`.
pub const CONDITION_DEPTH_MAX: usize = 16;
/// The largest `count` of an aggregate (it bounds the memory kept per key).
pub const AGGREGATE_COUNT_MAX: u32 = 10_000;
/// The largest rule file accepted, in bytes.
pub const RULE_FILE_BYTES_MAX: usize = 64 << 20;

/// An event field a rule inspects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// The raw payload (for HTTP: the request line and headers).
    Payload,
    /// The source address.
    Source,
    /// The event kind (`http`, `dns`, ...).
    Kind,
    /// The sensor that reported the event.
    Sensor,
    /// A named header (lowercase name); see [`super::Event::header`].
    Header(String),
}

impl Field {
    fn parse(text: &str) -> Option<Field> {
        match text {
            "payload" => Some(Field::Payload),
            "source" => Some(Field::Source),
            "kind" => Some(Field::Kind),
            "sensor" => Some(Field::Sensor),
            _ => {
                let name = text.strip_prefix("header.")?;
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                valid.then(|| Field::Header(name.to_ascii_lowercase()))
            }
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Payload => f.write_str("payload"),
            Field::Source => f.write_str("source"),
            Field::Kind => f.write_str("kind"),
            Field::Sensor => f.write_str("sensor"),
            Field::Header(name) => write!(f, "header.{name}"),
        }
    }
}

/// A boolean condition over one (transformed) field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The field contains these bytes (ASCII case-insensitively if `nocase`).
    Literal {
        /// The bytes searched for.
        bytes: Vec<u8>,
        /// Match ASCII letters in either case.
        nocase: bool,
    },
    /// The field matches this regex (Rust `regex` syntax, on bytes).
    Regex(String),
    /// Every sub-condition holds.
    All(Vec<Condition>),
    /// At least one sub-condition holds.
    Any(Vec<Condition>),
    /// The sub-condition does not hold.
    Not(Box<Condition>),
}

/// How an anomaly rule turns matches per key into alerts. The first four
/// follow Suricata's `threshold`/`detection_filter` (a fixed window that opens
/// at the first match of a key and lasts `window_ms`); the last two follow
/// Sigma's correlation rules (a sliding window over the last `window_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateMode {
    /// Alert on every `count`-th match within the window.
    Threshold,
    /// Alert on the first `count` matches within the window, then stay quiet.
    Limit,
    /// Alert once per window, when the match count reaches `count`.
    Both,
    /// Alert on every match after the first `count` within the window.
    DetectionFilter,
    /// Sigma `event_count`: alert when `count` matches fall within the sliding
    /// window; the key's history is then cleared, so the next alert needs
    /// `count` new matches.
    EventCount,
    /// Sigma `value_count`: alert when `count` distinct values of the field fall
    /// within the sliding window; then cleared as for `EventCount`.
    ValueCount(Field),
}

/// The counting part of an anomaly rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// What is counted per: the value of this field.
    pub by: Field,
    /// The alerting semantics.
    pub mode: AggregateMode,
    /// The threshold.
    pub count: u32,
    /// The window length in milliseconds of event (or block) time.
    pub window_ms: u64,
}

/// One detection rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique within its set.
    pub id: String,
    /// A one-line description.
    pub title: String,
    /// How bad a match is.
    pub severity: Severity,
    /// Free-form labels (`sqli`, `xss`, ...).
    pub tags: Vec<String>,
    /// Only events of these kinds (empty: all kinds).
    pub kinds: Vec<String>,
    /// The fields the condition is evaluated on.
    pub fields: Vec<Field>,
    /// The transforms applied to each field, in order.
    pub transforms: Vec<Transform>,
    /// The condition; `None` matches every event the rule applies to.
    pub condition: Option<Condition>,
    /// Present for anomaly rules.
    pub aggregate: Option<Aggregate>,
}

/// A validated set of rules, in file order (which is also alert order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleSet {
    /// The rules.
    pub rules: Vec<Rule>,
}

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line (0 when the position is unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// The path of the offending field, such as `rules[3].match.any[1].regex`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}: {}",
            self.line, self.column, self.field, self.message
        )
    }
}

/// A rule file that is not valid: every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error(s) in rule file:\n{}", .0.len(), render(.0))]
pub struct RuleFileError(pub Vec<Diagnostic>);

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl RuleSet {
    /// Parses and validates a YAML rule file. Regexes are compiled here too
    /// (with the engine's limits), so a set that parses also compiles.
    pub fn parse(text: &str) -> Result<RuleSet, RuleFileError> {
        let mut cx = Cx::default();
        if text.len() > RULE_FILE_BYTES_MAX {
            cx.error_at(
                0,
                0,
                "",
                format!("file is larger than {RULE_FILE_BYTES_MAX} bytes"),
            );
            return Err(RuleFileError(cx.diagnostics));
        }
        let options = LoaderOptions::default()
            .error_on_duplicate_keys(true)
            .toplevel_mapping();
        let root = match marked_yaml::parse_yaml_with_options(0, text, options) {
            Ok(root) => root,
            Err(e) => {
                let (line, column, message) = load_error(&e);
                cx.error_at(line, column, "", message);
                return Err(RuleFileError(cx.diagnostics));
            }
        };
        let rules = cx.rule_file(&root);
        if cx.diagnostics.is_empty() {
            Ok(RuleSet { rules })
        } else {
            Err(RuleFileError(cx.diagnostics))
        }
    }
}

fn load_error(e: &marked_yaml::LoadError) -> (usize, usize, String) {
    use marked_yaml::LoadError as E;
    let (marker, message) = match e {
        E::TopLevelMustBeMapping(m) => (*m, "the file must be a mapping with a `rules` key".into()),
        E::TopLevelMustBeSequence(m) => (*m, "unexpected top-level sequence".into()),
        E::UnexpectedAnchor(m) => (*m, "YAML anchors and aliases are not allowed".into()),
        E::MappingKeyMustBeScalar(m) => (*m, "mapping keys must be plain scalars".into()),
        E::UnexpectedTag(m) => (*m, "YAML tags are not allowed".into()),
        E::ScanError(m, scan) => (*m, format!("YAML syntax error: {scan}")),
        E::DuplicateKey(inner) => {
            let marker = inner
                .key
                .span()
                .start()
                .copied()
                .unwrap_or_else(|| marked_yaml::Marker::new(0, 0, 0, 0));
            (marker, format!("duplicate key `{}`", inner.key.as_str()))
        }
    };
    (marker.line(), marker.column(), message)
}

#[derive(Default)]
struct Cx {
    diagnostics: Vec<Diagnostic>,
    default_fields: Option<Vec<Field>>,
    default_transforms: Option<Vec<Transform>>,
    default_kinds: Option<Vec<String>>,
}

fn position(span: &Span) -> (usize, usize) {
    span.start().map_or((0, 0), |m| (m.line(), m.column()))
}

impl Cx {
    fn error_at(&mut self, line: usize, column: usize, field: &str, message: String) {
        self.diagnostics.push(Diagnostic {
            line,
            column,
            field: field.to_string(),
            message,
        });
    }

    fn error(&mut self, node: &Node, field: &str, message: impl Into<String>) {
        let (line, column) = position(node.span());
        self.error_at(line, column, field, message.into());
    }

    fn scalar<'n>(&mut self, node: &'n Node, field: &str) -> Option<&'n str> {
        match node.as_scalar() {
            Some(s) => Some(s.as_str()),
            None => {
                self.error(node, field, "expected a string");
                None
            }
        }
    }

    fn strings(&mut self, node: &Node, field: &str) -> Option<Vec<String>> {
        let Some(seq) = node.as_sequence() else {
            self.error(node, field, "expected a list");
            return None;
        };
        let mut out = Vec::with_capacity(seq.len());
        for (i, item) in seq.iter().enumerate() {
            out.push(self.scalar(item, &format!("{field}[{i}]"))?.to_string());
        }
        Some(out)
    }

    fn check_keys(&mut self, node: &Node, field: &str, allowed: &[&str]) {
        let Some(map) = node.as_mapping() else { return };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                let (line, column) = position(key.span());
                self.error_at(
                    line,
                    column,
                    &format!("{field}.{}", key.as_str()),
                    format!("unknown key (expected one of: {})", allowed.join(", ")),
                );
            }
        }
    }

    fn rule_file(&mut self, root: &Node) -> Vec<Rule> {
        self.check_keys(root, "", &["rules", "defaults"]);
        let Some(map) = root.as_mapping() else {
            return Vec::new();
        };
        if let Some(defaults) = map.get_node("defaults") {
            self.check_keys(defaults, "defaults", &["fields", "transforms", "kinds"]);
            match defaults.as_mapping() {
                None => self.error(defaults, "defaults", "expected a mapping"),
                Some(d) => {
                    self.default_fields = d
                        .get_node("fields")
                        .and_then(|n| self.fields(n, "defaults.fields"));
                    self.default_transforms = d
                        .get_node("transforms")
                        .and_then(|n| self.transforms(n, "defaults.transforms"));
                    self.default_kinds = d
                        .get_node("kinds")
                        .and_then(|n| self.strings(n, "defaults.kinds"));
                }
            }
        }
        let Some(rules) = map.get_node("rules") else {
            self.error(root, "rules", "missing key `rules`");
            return Vec::new();
        };
        let Some(seq) = rules.as_sequence() else {
            self.error(rules, "rules", "expected a list of rules");
            return Vec::new();
        };
        if seq.len() > RULES_MAX {
            self.error(rules, "rules", format!("more than {RULES_MAX} rules"));
            return Vec::new();
        }
        let mut ids = BTreeSet::new();
        let mut out = Vec::with_capacity(seq.len());
        for (i, node) in seq.iter().enumerate() {
            let field = format!("rules[{i}]");
            if let Some(id_node) = node.as_mapping().and_then(|m| m.get_node("id"))
                && let Some(id) = id_node.as_scalar()
                && !ids.insert(id.as_str().to_string())
            {
                self.error(
                    id_node,
                    &format!("{field}.id"),
                    format!("duplicate rule id `{}`", id.as_str()),
                );
            }
            if let Some(rule) = self.rule(node, &field) {
                out.push(rule);
            }
        }
        out
    }

    fn rule(&mut self, node: &Node, field: &str) -> Option<Rule> {
        const KEYS: [&str; 10] = [
            "id",
            "title",
            "severity",
            "tags",
            "kinds",
            "fields",
            "transforms",
            "match",
            "aggregate",
            "description",
        ];
        let Some(map) = node.as_mapping() else {
            self.error(node, field, "expected a rule (a mapping)");
            return None;
        };
        let before = self.diagnostics.len();
        self.check_keys(node, field, &KEYS);

        let id = match map.get_node("id") {
            None => {
                self.error(node, &format!("{field}.id"), "missing key `id`");
                None
            }
            Some(n) => {
                let f = format!("{field}.id");
                self.scalar(n, &f).and_then(|id| {
                    let valid = !id.is_empty()
                        && id.len() <= 128
                        && id.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                        });
                    if valid {
                        Some(id.to_string())
                    } else {
                        self.error(
                            n,
                            &f,
                            format!("invalid id `{id}` (expected 1-128 of [a-z0-9._-])"),
                        );
                        None
                    }
                })
            }
        };
        let title = match map.get_node("title") {
            None => {
                self.error(node, &format!("{field}.title"), "missing key `title`");
                None
            }
            Some(n) => self
                .scalar(n, &format!("{field}.title"))
                .map(str::to_string),
        };
        let severity = match map.get_node("severity") {
            None => {
                self.error(node, &format!("{field}.severity"), "missing key `severity`");
                None
            }
            Some(n) => {
                let f = format!("{field}.severity");
                self.scalar(n, &f).and_then(|s| {
                    let parsed = Severity::from_name(s);
                    if parsed.is_none() {
                        self.error(
                            n,
                            &f,
                            format!(
                                "unknown severity `{s}` (expected critical, high, medium or low)"
                            ),
                        );
                    }
                    parsed
                })
            }
        };
        let tags = match map.get_node("tags") {
            None => Some(Vec::new()),
            Some(n) => self.strings(n, &format!("{field}.tags")),
        };
        let kinds = match map.get_node("kinds") {
            None => Some(self.default_kinds.clone().unwrap_or_default()),
            Some(n) => self.strings(n, &format!("{field}.kinds")),
        };
        let fields = match map.get_node("fields") {
            None => Some(
                self.default_fields
                    .clone()
                    .unwrap_or_else(|| vec![Field::Payload]),
            ),
            Some(n) => self.fields(n, &format!("{field}.fields")),
        };
        let transforms = match map.get_node("transforms") {
            None => Some(self.default_transforms.clone().unwrap_or_default()),
            Some(n) => self.transforms(n, &format!("{field}.transforms")),
        };
        let condition = match map.get_node("match") {
            None => Some(None),
            Some(n) => self.condition(n, &format!("{field}.match"), 0).map(Some),
        };
        let aggregate = match map.get_node("aggregate") {
            None => Some(None),
            Some(n) => self.aggregate(n, &format!("{field}.aggregate")).map(Some),
        };
        if let (Some(None), Some(None)) = (&condition, &aggregate) {
            self.error(
                node,
                field,
                "a rule needs `match`, `aggregate`, or both (it would match every event)",
            );
        }
        if self.diagnostics.len() != before {
            return None;
        }
        Some(Rule {
            id: id?,
            title: title?,
            severity: severity?,
            tags: tags?,
            kinds: kinds?,
            fields: fields?,
            transforms: transforms?,
            condition: condition?,
            aggregate: aggregate?,
        })
    }

    fn field(&mut self, node: &Node, field: &str) -> Option<Field> {
        let text = self.scalar(node, field)?;
        let parsed = Field::parse(text);
        if parsed.is_none() {
            self.error(
                node,
                field,
                format!(
                    "unknown field `{text}` (expected payload, source, kind, sensor or header.NAME)"
                ),
            );
        }
        parsed
    }

    fn fields(&mut self, node: &Node, field: &str) -> Option<Vec<Field>> {
        let Some(seq) = node.as_sequence() else {
            self.error(node, field, "expected a list of fields");
            return None;
        };
        if seq.is_empty() {
            self.error(node, field, "at least one field is needed");
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in seq.iter().enumerate() {
            match self.field(item, &format!("{field}[{i}]")) {
                Some(f) if !out.contains(&f) => out.push(f),
                Some(f) => {
                    self.error(
                        item,
                        &format!("{field}[{i}]"),
                        format!("field `{f}` listed twice"),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn transforms(&mut self, node: &Node, field: &str) -> Option<Vec<Transform>> {
        let names = self.strings(node, field)?;
        let seq = node.as_sequence()?;
        let mut out = Vec::new();
        let mut ok = true;
        for (i, name) in names.iter().enumerate() {
            match Transform::from_name(name) {
                Some(t) => out.push(t),
                None => {
                    let expected: Vec<&str> = Transform::ALL.iter().map(|(_, n)| *n).collect();
                    self.error(
                        &seq[i],
                        &format!("{field}[{i}]"),
                        format!(
                            "unknown transform `{name}` (expected one of: {})",
                            expected.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn condition(&mut self, node: &Node, field: &str, depth: usize) -> Option<Condition> {
        if depth > CONDITION_DEPTH_MAX {
            self.error(
                node,
                field,
                format!("conditions nest deeper than {CONDITION_DEPTH_MAX}"),
            );
            return None;
        }
        let Some(map) = node.as_mapping() else {
            self.error(
                node,
                field,
                "expected a condition (literal, regex, all, any or not)",
            );
            return None;
        };
        let kinds: Vec<&str> = ["literal", "regex", "all", "any", "not"]
            .into_iter()
            .filter(|k| map.get_node(k).is_some())
            .collect();
        match kinds.as_slice() {
            ["literal"] => {
                self.check_keys(node, field, &["literal", "nocase"]);
                let value = map.get_node("literal")?;
                let f = format!("{field}.literal");
                let text = self.scalar(value, &f)?;
                if text.is_empty() || text.len() > PATTERN_BYTES_MAX {
                    self.error(
                        value,
                        &f,
                        format!("a literal must be 1 to {PATTERN_BYTES_MAX} bytes"),
                    );
                    return None;
                }
                let nocase = match map.get_node("nocase") {
                    None => false,
                    Some(n) => {
                        let f = format!("{field}.nocase");
                        match n.as_scalar().and_then(|s| s.as_bool()) {
                            Some(b) => b,
                            None => {
                                self.error(n, &f, "expected true or false");
                                return None;
                            }
                        }
                    }
                };
                Some(Condition::Literal {
                    bytes: text.as_bytes().to_vec(),
                    nocase,
                })
            }
            ["regex"] => {
                self.check_keys(node, field, &["regex"]);
                let value = map.get_node("regex")?;
                let f = format!("{field}.regex");
                let text = self.scalar(value, &f)?;
                if text.len() > PATTERN_BYTES_MAX {
                    self.error(
                        value,
                        &f,
                        format!("a regex must be at most {PATTERN_BYTES_MAX} bytes"),
                    );
                    return None;
                }
                if let Err(e) = super::engine::build_regex(text) {
                    let first = e
                        .lines()
                        .last()
                        .unwrap_or("invalid regex")
                        .trim()
                        .to_string();
                    self.error(value, &f, format!("invalid regex: {first}"));
                    return None;
                }
                Some(Condition::Regex(text.to_string()))
            }
            [op @ ("all" | "any")] => {
                self.check_keys(node, field, &[op]);
                let value = map.get_node(op)?;
                let f = format!("{field}.{op}");
                let Some(seq) = value.as_sequence() else {
                    self.error(value, &f, "expected a list of conditions");
                    return None;
                };
                if seq.is_empty() {
                    self.error(value, &f, "expected at least one condition");
                    return None;
                }
                let mut children = Vec::with_capacity(seq.len());
                let mut ok = true;
                for (i, child) in seq.iter().enumerate() {
                    match self.condition(child, &format!("{f}[{i}]"), depth + 1) {
                        Some(c) => children.push(c),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Some(if *op == "all" {
                    Condition::All(children)
                } else {
                    Condition::Any(children)
                })
            }
            ["not"] => {
                self.check_keys(node, field, &["not"]);
                let value = map.get_node("not")?;
                let child = self.condition(value, &format!("{field}.not"), depth + 1)?;
                Some(Condition::Not(Box::new(child)))
            }
            [] => {
                self.error(node, field, "expected one of literal, regex, all, any, not");
                None
            }
            _ => {
                self.error(
                    node,
                    field,
                    format!(
                        "a condition has exactly one of literal, regex, all, any, not (found {})",
                        kinds.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn aggregate(&mut self, node: &Node, field: &str) -> Option<Aggregate> {
        self.check_keys(
            node,
            field,
            &["by", "mode", "count", "window_ms", "distinct"],
        );
        let Some(map) = node.as_mapping() else {
            self.error(node, field, "expected a mapping");
            return None;
        };
        let before = self.diagnostics.len();
        let by = match map.get_node("by") {
            None => {
                self.error(node, &format!("{field}.by"), "missing key `by`");
                None
            }
            Some(n) => self.field(n, &format!("{field}.by")),
        };
        let count = self.number(
            node,
            map.get_node("count"),
            &format!("{field}.count"),
            1,
            u64::from(AGGREGATE_COUNT_MAX),
        );
        let window_ms = self.number(
            node,
            map.get_node("window_ms"),
            &format!("{field}.window_ms"),
            1,
            30 * 24 * 3600 * 1000,
        );
        let distinct = map
            .get_node("distinct")
            .map(|n| (n, self.field(n, &format!("{field}.distinct"))));
        let mode = match map.get_node("mode") {
            None => {
                self.error(node, &format!("{field}.mode"), "missing key `mode`");
                None
            }
            Some(n) => {
                let f = format!("{field}.mode");
                match self.scalar(n, &f)? {
                    "threshold" => Some(AggregateMode::Threshold),
                    "limit" => Some(AggregateMode::Limit),
                    "both" => Some(AggregateMode::Both),
                    "detection_filter" => Some(AggregateMode::DetectionFilter),
                    "event_count" => Some(AggregateMode::EventCount),
                    "value_count" => match &distinct {
                        Some((_, Some(d))) => Some(AggregateMode::ValueCount(d.clone())),
                        Some((_, None)) => None,
                        None => {
                            self.error(
                                node,
                                &format!("{field}.distinct"),
                                "mode `value_count` needs `distinct`",
                            );
                            None
                        }
                    },
                    other => {
                        self.error(
                            n,
                            &f,
                            format!("unknown mode `{other}` (expected threshold, limit, both, detection_filter, event_count or value_count)"),
                        );
                        None
                    }
                }
            }
        };
        if let (Some(m), Some((n, _))) = (&mode, &distinct)
            && !matches!(m, AggregateMode::ValueCount(_))
        {
            self.error(
                n,
                &format!("{field}.distinct"),
                "`distinct` applies only to mode `value_count`",
            );
        }
        if self.diagnostics.len() != before {
            return None;
        }
        Some(Aggregate {
            by: by?,
            mode: mode?,
            count: u32::try_from(count?).ok()?,
            window_ms: window_ms?,
        })
    }

    fn number(
        &mut self,
        parent: &Node,
        node: Option<&Node>,
        field: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let Some(node) = node else {
            let key = field.rsplit('.').next().unwrap_or(field);
            self.error(parent, field, format!("missing key `{key}`"));
            return None;
        };
        match node
            .as_scalar()
            .and_then(|s| s.as_str().parse::<u64>().ok())
        {
            Some(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.error(
                    node,
                    field,
                    format!("expected an integer from {min} to {max}"),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
rules:
  - id: sqli-union
    title: UNION SELECT
    severity: critical
    tags: [sqli]
    transforms: [url_decode, lowercase]
    match:
      all:
        - literal: union
        - regex: 'union\s+select'
  - id: brute-force
    title: many logins
    severity: high
    kinds: [http]
    match: { literal: "POST /login", nocase: true }
    aggregate: { by: source, mode: event_count, count: 5, window_ms: 60000 }
  - id: scanner-paths
    title: many distinct paths
    severity: medium
    aggregate: { by: source, mode: value_count, distinct: header.host, count: 3, window_ms: 1000 }
"#;

    #[test]
    fn parses_a_valid_file() {
        let set = RuleSet::parse(VALID).unwrap();
        assert_eq!(set.rules.len(), 3);
        let r = &set.rules[0];
        assert_eq!(r.id, "sqli-union");
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.fields, vec![Field::Payload]);
        assert_eq!(
            r.transforms,
            vec![Transform::UrlDecode, Transform::Lowercase]
        );
        assert_eq!(
            r.condition,
            Some(Condition::All(vec![
                Condition::Literal {
                    bytes: b"union".to_vec(),
                    nocase: false
                },
                Condition::Regex(r"union\s+select".into()),
            ]))
        );
        assert_eq!(
            set.rules[1].aggregate,
            Some(Aggregate {
                by: Field::Source,
                mode: AggregateMode::EventCount,
                count: 5,
                window_ms: 60000
            })
        );
        assert_eq!(
            set.rules[2].aggregate.as_ref().unwrap().mode,
            AggregateMode::ValueCount(Field::Header("host".into()))
        );
    }

    #[test]
    fn reports_every_error_with_line_and_field() {
        let text = r#"rules:
  - id: Bad Id
    title: t
    severity: hgh
    fields: [payload, nowhere]
    transforms: [lowercase, base64]
    match:
      any:
        - regex: '(unclosed'
        - literal: ""
        - bogus: 1
  - id: ok
    title: t
    severity: low
    colour: red
    match: { literal: x }
  - id: ok
    title: t
    severity: low
    match: { literal: y }
"#;
        let err = RuleSet::parse(text).unwrap_err();
        let got: Vec<(usize, &str)> = err.0.iter().map(|d| (d.line, d.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (2, "rules[0].id"),
                (4, "rules[0].severity"),
                (5, "rules[0].fields[1]"),
                (6, "rules[0].transforms[1]"),
                (9, "rules[0].match.any[0].regex"),
                (10, "rules[0].match.any[1].literal"),
                (11, "rules[0].match.any[2]"),
                (15, "rules[1].colour"),
                (17, "rules[2].id"),
            ],
            "{err}"
        );
        assert!(err.to_string().contains("unknown severity `hgh`"), "{err}");
        // The regex parser's own words come through, not a generic failure.
        assert!(
            err.to_string()
                .contains("invalid regex: error: unclosed group"),
            "{err}"
        );
    }

    #[test]
    fn a_regex_over_the_compiled_size_limit_is_refused_by_name() {
        let text = "rules:\n  - id: big\n    title: t\n    severity: low\n    match: { regex: '(?:\\w{1000}){40}' }\n";
        let err = RuleSet::parse(text).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert!(
            err.to_string()
                .contains("invalid regex: Compiled regex exceeds size limit of 1048576 bytes."),
            "{err}"
        );
    }

    #[test]
    fn rejects_yaml_syntax_anchors_and_duplicate_keys() {
        for (text, needle) in [
            ("rules: [", "YAML syntax error"),
            ("rules:\n  - &a {id: x}\n  - *a\n", "anchors"),
            ("rules: []\nrules: []\n", "duplicate key"),
            ("- 1\n", "mapping"),
            ("rules: {}\n", "list of rules"),
        ] {
            let err = RuleSet::parse(text).unwrap_err();
            assert!(err.to_string().contains(needle), "{text:?}: {err}");
            assert!(err.0[0].line >= 1, "{text:?}: {err}");
        }
    }

    #[test]
    fn defaults_apply_unless_a_rule_overrides_them() {
        let text = r#"defaults:
  transforms: [lowercase]
  kinds: [http]
rules:
  - { id: a, title: t, severity: low, match: { literal: x } }
  - { id: b, title: t, severity: low, transforms: [], kinds: [], match: { literal: x } }
"#;
        let set = RuleSet::parse(text).unwrap();
        assert_eq!(set.rules[0].transforms, vec![Transform::Lowercase]);
        assert_eq!(set.rules[0].kinds, vec!["http".to_string()]);
        assert!(set.rules[1].transforms.is_empty());
        assert!(set.rules[1].kinds.is_empty());
        let err = RuleSet::parse("defaults: { transforms: [nope] }\nrules: []\n").unwrap_err();
        assert_eq!(err.0[0].field, "defaults.transforms[0]");
    }

    #[test]
    fn aggregate_errors() {
        let text = r#"rules:
  - id: a
    title: t
    severity: low
    aggregate: { by: source, mode: value_count, count: 0, window_ms: 10 }
  - id: b
    title: t
    severity: low
    aggregate: { by: source, mode: limit, count: 1, window_ms: 10, distinct: source }
  - id: c
    title: t
    severity: low
"#;
        let err = RuleSet::parse(text).unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "rules[0].aggregate.count",
                "rules[0].aggregate.distinct",
                "rules[1].aggregate.distinct",
                "rules[2]"
            ],
            "{err}"
        );
    }
}
