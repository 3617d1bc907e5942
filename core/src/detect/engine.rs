//! The compiled matcher: one Aho-Corasick DFA for every literal, regexes
//! behind a literal prefilter, and the per-event evaluation.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use regex_automata::meta::{self, Regex};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

use super::rules::{Condition, Field, Rule, RuleSet};
use super::transform::{Transform, apply_chain};
use super::window::WindowTable;
use super::{Alert, Event, MatchSpan, MatchSpans, Severity};
use crate::crypto::Digest;
use literal_scan::LiteralScan;

/// Compiled size limit of one regex. Set explicitly (the issue this engine was
/// written for measured the defaults collapsing with 1,000 regexes): a rule set
/// of 1,000 regexes then needs at most 1,000 × this for programs.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The lazy-DFA cache of one regex. Large enough that a regex over 1 KiB
/// events never thrashes into the slow NFA fallback; the cache is allocated on
/// demand, so small regexes use far less.
pub const REGEX_DFA_CACHE: usize = 2 << 20;

/// Builds a regex with the engine's explicit limits.
///
/// Regexes match bytes with ASCII semantics by default (`\\w`, `\\d`, `\\s`,
/// `\\b` and `(?i)` are ASCII; `\\xNN` is a byte): payloads are arbitrary
/// bytes, and Unicode word boundaries would stop the lazy DFA on the first
/// non-ASCII byte. `(?u)` opts a group back into Unicode. The semantics are
/// those of `regex::bytes::Regex` (leftmost-first, empty matches anywhere);
/// only the overall match is reported, so no capture group is compiled.
///
/// The regex is driven with caches the rules lend a [`Detector`] per call,
/// not through a pool keyed by thread.
pub fn build_regex(source: &str) -> Result<Regex, String> {
    regex_builder(
        MatchKind::LeftmostFirst,
        WhichCaptures::Implicit,
        REGEX_SIZE_LIMIT,
        REGEX_DFA_CACHE,
    )
    .build(source)
    .map_err(|e| regex_error(&e))
}

/// A meta-regex builder with the engine's semantics (bytes, ASCII by
/// default, empty matches anywhere, the nesting limit rule files are held
/// to) and explicit limits: `size_limit` on the compiled program, `cache`
/// on each lazy DFA's cache.
fn regex_builder(
    kind: MatchKind,
    captures: WhichCaptures,
    size_limit: usize,
    cache: usize,
) -> meta::Builder {
    let mut builder = meta::Builder::new();
    builder
        .configure(
            meta::Config::new()
                .match_kind(kind)
                .utf8_empty(false)
                .which_captures(captures)
                .nfa_size_limit(Some(size_limit))
                .hybrid_cache_capacity(cache),
        )
        .syntax(
            syntax::Config::new()
                .unicode(false)
                .utf8(false)
                .nest_limit(64),
        );
    builder
}

/// A build error as `regex` words it: the parser's message with its
/// position, or the size limit exceeded.
fn regex_error(e: &meta::BuildError) -> String {
    match (e.size_limit(), e.syntax_error()) {
        (Some(limit), _) => format!("Compiled regex exceeds size limit of {limit} bytes."),
        (None, Some(syntax)) => syntax.to_string(),
        (None, None) => e.to_string(),
    }
}

/// The most regexes one set of broad regexes holds.
const REGEX_GROUP_MAX: usize = 64;
/// A regex whose rarest required literal is shorter than this (or that has
/// none) is *broad*: its prefilter passes on much ordinary traffic, so it
/// runs on most events. The broad regexes of one input run together as a
/// multi-pattern regex, one scan of the input for all of them; a member's own regex
/// runs only when the set says it matches, to find where. A member drops its
/// prefilter: its rule is evaluated on every event (the set scan is shared),
/// and its short literals leave the literal scan.
const BROAD_LITERAL_LEN: usize = 4;
/// Compiled size limit of a set of broad regexes, and its lazy-DFA cache.
pub const REGEX_SET_SIZE_LIMIT: usize = 8 << 20;
/// See [`REGEX_SET_SIZE_LIMIT`].
pub const REGEX_SET_DFA_CACHE: usize = 8 << 20;

/// A rule set that could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// A regex failed to compile (the parser checks them, so only a
    /// hand-built [`RuleSet`] reaches this).
    #[error("rule `{rule}`: invalid regex: {message}")]
    Regex {
        /// The rule's id.
        rule: String,
        /// The regex crate's message.
        message: String,
    },
    /// The literal automaton could not be built (too many patterns for a DFA).
    #[error("cannot build the literal automaton: {0}")]
    Automaton(String),
    /// More inputs or atoms than the engine's indices hold.
    #[error("rule set too large: {0}")]
    TooLarge(&'static str),
}

/// Counts describing a compiled set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Rules.
    pub rules: usize,
    /// Distinct (field, transform chain) inputs.
    pub inputs: usize,
    /// Distinct patterns in the literal scan.
    pub patterns: usize,
    /// Regexes.
    pub regexes: usize,
    /// Regexes that run only when their prefilter literal was found.
    pub prefiltered_regexes: usize,
    /// Broad regexes (no required literal of four bytes or more), which run
    /// as members of a set.
    pub grouped_regexes: usize,
    /// (rule, field) targets evaluated on every event (no trigger literal).
    pub unfiltered_targets: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct InputSpec {
    field: Field,
    chain: Vec<Transform>,
}

#[derive(Debug)]
enum Atom {
    Literal {
        exact: Option<Box<[u8]>>,
    },
    Regex {
        regex: u32,
        prefiltered: bool,
        /// The set of broad regexes this one belongs to, and its index there.
        group: Option<(u32, u32)>,
    },
}

#[derive(Debug)]
enum Node {
    Atom(u32),
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    True,
}

#[derive(Debug, Clone, Copy)]
struct Hook {
    input: u16,
    atom: u32,
}

#[derive(Debug)]
struct Target {
    rule: u32,
    field: u16,
    input: u16,
    node: Node,
    /// The node is one literal atom, the commonest rule: the candidate loop
    /// answers it from the scan's record without evaluating the node.
    single_literal: Option<u32>,
}

/// A rule set compiled for matching. Immutable; share it with `Arc`.
#[derive(Debug)]
pub struct CompiledRules {
    rules: Vec<Rule>,
    inputs: Vec<InputSpec>,
    literals: Option<LiteralScan>,
    /// Per literal pattern, the atoms it fires.
    hooks: Jagged<FiredAtom>,
    atoms: Vec<Atom>,
    atom_input: Vec<u16>,
    regexes: Vec<Regex>,
    /// Sets of broad regexes: one multi-pattern regex each, reporting every
    /// member that matches.
    groups: Vec<Regex>,
    /// Search caches not in use, lent to a detector for one inspection call
    /// (see [`RegexCaches`]).
    idle_caches: Mutex<Vec<RegexCaches>>,
    targets: Vec<Target>,
    /// Each target's rule (the candidate loop reads only this of a target
    /// until it evaluates one).
    target_rule: Vec<u32>,
    /// What the candidate loop needs of each rule, compact.
    meta: Vec<RuleMeta>,
    atom_targets: Jagged<u32>,
    always: Vec<u32>,
    rule_targets: Vec<Range<u32>>,
    stats: EngineStats,
}

/// The parts of a rule that every alert reads, 4 bytes a rule instead of a
/// few cache lines of `Rule`.
#[derive(Debug, Clone, Copy)]
struct RuleMeta {
    severity: Severity,
    /// The rule names event kinds (`Rule::kinds` is not empty).
    kinds_filtered: bool,
    /// The rule has a window (`Rule::aggregate` is set).
    windowed: bool,
}

/// Lists of lists, laid out one after the other: reaching list `i` is one
/// load of its bounds, not a pointer to chase (the literal-match path walks
/// two of these per match).
#[derive(Debug)]
struct Jagged<T> {
    ends: Vec<u32>,
    items: Vec<T>,
}

impl<T> Jagged<T> {
    fn new(lists: impl IntoIterator<Item = Vec<T>>) -> Jagged<T> {
        let mut jagged = Jagged {
            ends: Vec::new(),
            items: Vec::new(),
        };
        for list in lists {
            jagged.items.extend(list);
            jagged.ends.push(jagged.items.len() as u32);
        }
        jagged
    }

    #[inline]
    fn get(&self, i: usize) -> &[T] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.items[start..self.ends[i] as usize]
    }
}

/// An atom a literal pattern fires, with what the match path needs to know
/// about it without reading the atom.
#[derive(Debug, Clone, Copy)]
struct FiredAtom {
    atom: u32,
    input: u16,
    /// The literal is case-sensitive: the matched bytes must equal it.
    exact: bool,
}

struct Builder {
    inputs: BTreeMap<InputSpec, u16>,
    input_list: Vec<InputSpec>,
    patterns: BTreeMap<Vec<u8>, u32>,
    hooks: Vec<Vec<Hook>>,
    atoms: Vec<Atom>,
    atom_input: Vec<u16>,
    regexes: Vec<Regex>,
    prefiltered: usize,
    /// Broad regex atoms: (input, atom, source).
    broad: Vec<(u16, u32, String)>,
}

impl Builder {
    fn input(&mut self, spec: InputSpec) -> Result<u16, CompileError> {
        if let Some(&i) = self.inputs.get(&spec) {
            return Ok(i);
        }
        let i =
            u16::try_from(self.input_list.len()).map_err(|_| CompileError::TooLarge("inputs"))?;
        self.inputs.insert(spec.clone(), i);
        self.input_list.push(spec);
        Ok(i)
    }

    fn pattern(&mut self, bytes: &[u8]) -> u32 {
        let key = bytes.to_ascii_lowercase();
        if let Some(&p) = self.patterns.get(&key) {
            return p;
        }
        let p = self.hooks.len() as u32;
        self.patterns.insert(key, p);
        self.hooks.push(Vec::new());
        p
    }

    fn atom(&mut self, atom: Atom, input: u16) -> Result<u32, CompileError> {
        let id = u32::try_from(self.atoms.len()).map_err(|_| CompileError::TooLarge("atoms"))?;
        self.atoms.push(atom);
        self.atom_input.push(input);
        Ok(id)
    }

    fn node(&mut self, rule: &Rule, cond: &Condition, input: u16) -> Result<Node, CompileError> {
        Ok(match cond {
            // The empty string occurs in every input (the parser refuses it;
            // a hand-built set may still hold one).
            Condition::Literal { bytes, .. } if bytes.is_empty() => Node::True,
            Condition::Literal { bytes, nocase } => {
                let exact = (!nocase && bytes.iter().any(u8::is_ascii_alphabetic))
                    .then(|| bytes.clone().into_boxed_slice());
                let atom = self.atom(Atom::Literal { exact }, input)?;
                let p = self.pattern(bytes);
                self.hooks[p as usize].push(Hook { input, atom });
                Node::Atom(atom)
            }
            Condition::Regex(source) => {
                let regex = build_regex(source).map_err(|message| CompileError::Regex {
                    rule: rule.id.clone(),
                    message,
                })?;
                let literals = required_literals(source);
                let index = self.regexes.len() as u32;
                self.regexes.push(regex);
                let atom = self.atom(
                    Atom::Regex {
                        regex: index,
                        prefiltered: literals.is_some(),
                        group: None,
                    },
                    input,
                )?;
                if literals
                    .as_ref()
                    .is_none_or(|set| score(set).0 < BROAD_LITERAL_LEN)
                {
                    self.broad.push((input, atom, source.clone()));
                }
                if let Some(literals) = literals {
                    self.prefiltered += 1;
                    for lit in literals {
                        let p = self.pattern(&lit);
                        self.hooks[p as usize].push(Hook { input, atom });
                    }
                }
                Node::Atom(atom)
            }
            Condition::All(children) => Node::All(
                children
                    .iter()
                    .map(|c| self.node(rule, c, input))
                    .collect::<Result<_, _>>()?,
            ),
            Condition::Any(children) => Node::Any(
                children
                    .iter()
                    .map(|c| self.node(rule, c, input))
                    .collect::<Result<_, _>>()?,
            ),
            Condition::Not(child) => Node::Not(Box::new(self.node(rule, child, input)?)),
        })
    }
}

/// Literals (lowercased) one of which every match of `source` contains; `None`
/// if no such set is worth searching for. The prefix and suffix sets of
/// `regex-syntax`'s extractor are candidates, and so are *inner* factors found
/// by walking the syntax tree (ripgrep's "required literal" idea): a
/// concatenation needs every child, so any child's set will do; an alternation
/// needs one branch, so it takes the union of its branches' sets.
fn required_literals(source: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .unicode(false)
        .build()
        .parse(source)
        .ok()?;
    let mut best: Option<Vec<Vec<u8>>> = factor(&hir).map(normalise);
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let mut extractor = Extractor::new();
        extractor
            .kind(kind)
            .limit_class(16)
            .limit_repeat(8)
            .limit_literal_len(64)
            .limit_total(512);
        let mut seq = extractor.extract(&hir);
        seq.optimize_for_prefix_by_preference();
        let Some(lits) = seq.literals() else { continue };
        if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
            continue;
        }
        let set = normalise(lits.iter().map(|l| l.as_bytes().to_vec()).collect());
        if best.as_ref().is_none_or(|b| score(&set) > score(b)) {
            best = Some(set);
        }
    }
    best.filter(|set| set.len() <= FACTOR_SET_MAX && score(set).0 >= PREFILTER_LITERAL_MIN)
}

/// A prefilter literal shorter than this fires on almost every request (a
/// quote, an `=`), costing more in literal matches than the regex it spares.
const PREFILTER_LITERAL_MIN: usize = 2;

/// The most literals one regex may add to the literal scan.
const FACTOR_SET_MAX: usize = 64;

fn normalise(set: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut set: Vec<Vec<u8>> = set.into_iter().map(|l| l.to_ascii_lowercase()).collect();
    set.sort();
    set.dedup();
    set
}

/// Higher is a better prefilter: the shortest literal decides how often it
/// fires; fewer literals break ties.
fn score(set: &[Vec<u8>]) -> (usize, std::cmp::Reverse<usize>) {
    (
        set.iter().map(Vec::len).min().unwrap_or(0),
        std::cmp::Reverse(set.len()),
    )
}

/// The bytes a small class matches, case-folded; `None` for large classes.
fn class_bytes(class: &regex_syntax::hir::Class) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::Class;
    let mut out = Vec::new();
    match class {
        Class::Bytes(bytes) => {
            for r in bytes.ranges() {
                for b in r.start()..=r.end() {
                    out.push(vec![b.to_ascii_lowercase()]);
                    if out.len() > 2 * FACTOR_SET_MAX {
                        return None;
                    }
                }
            }
        }
        Class::Unicode(chars) => {
            for r in chars.ranges() {
                for c in r.start()..=r.end() {
                    let mut buf = [0u8; 4];
                    out.push(c.encode_utf8(&mut buf).as_bytes().to_ascii_lowercase());
                    if out.len() > 2 * FACTOR_SET_MAX {
                        return None;
                    }
                }
            }
        }
    }
    let out = normalise(out);
    (out.len() <= 8).then_some(out)
}

/// A set of literals one of which every match of `hir` contains.
fn factor(hir: &regex_syntax::hir::Hir) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => None,
        HirKind::Literal(lit) => Some(vec![lit.0.to_vec()]),
        HirKind::Class(class) => class_bytes(class),
        HirKind::Repetition(rep) if rep.min >= 1 => factor(&rep.sub),
        HirKind::Repetition(_) => None,
        HirKind::Capture(cap) => factor(&cap.sub),
        HirKind::Alternation(branches) => {
            let mut all = Vec::new();
            for b in branches {
                all.extend(factor(b)?);
                if all.len() > FACTOR_SET_MAX {
                    return None;
                }
            }
            Some(normalise(all))
        }
        HirKind::Concat(children) => {
            // Runs of children that each match a small set of exact strings
            // concatenate into longer literals (cross product, bounded).
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut run: Option<Vec<Vec<u8>>> = None;
            let consider = |candidate: Vec<Vec<u8>>, best: &mut Option<Vec<Vec<u8>>>| {
                let candidate = normalise(candidate);
                if best.as_ref().is_none_or(|b| score(&candidate) > score(b)) {
                    *best = Some(candidate);
                }
            };
            for child in children {
                let exact = match child.kind() {
                    HirKind::Literal(lit) => Some(vec![lit.0.to_vec()]),
                    HirKind::Class(class) => class_bytes(class),
                    _ => None,
                };
                match exact {
                    Some(options) => {
                        run = Some(match run.take() {
                            None => options,
                            Some(prefixes) if prefixes.len() * options.len() <= FACTOR_SET_MAX => {
                                let mut joined = Vec::new();
                                for p in &prefixes {
                                    for o in &options {
                                        joined.push([p.as_slice(), o.as_slice()].concat());
                                    }
                                }
                                normalise(joined)
                            }
                            Some(prefixes) => {
                                consider(prefixes, &mut best);
                                options
                            }
                        });
                    }
                    None => {
                        if let Some(r) = run.take() {
                            consider(r, &mut best);
                        }
                        if let Some(f) = factor(child) {
                            consider(f, &mut best);
                        }
                    }
                }
            }
            if let Some(r) = run.take() {
                consider(r, &mut best);
            }
            best
        }
    }
}

/// Compiles the broad regexes of each input into sets of at most
/// [`REGEX_GROUP_MAX`], marking each member atom with its set and index.
/// A chunk whose set does not compile (too large together) stays ungrouped:
/// its regexes then run one by one, as they would have anyway.
fn group_broad_regexes(b: &mut Builder) -> (Vec<Regex>, usize) {
    let mut by_input: BTreeMap<u16, Vec<(u32, String)>> = BTreeMap::new();
    for (input, atom, source) in b.broad.drain(..) {
        by_input.entry(input).or_default().push((atom, source));
    }
    let mut groups = Vec::new();
    let mut grouped = 0;
    for members in by_input.values() {
        for chunk in members.chunks(REGEX_GROUP_MAX) {
            if chunk.len() < 2 {
                continue;
            }
            let sources: Vec<&str> = chunk.iter().map(|(_, source)| source.as_str()).collect();
            let Ok(set) = regex_builder(
                MatchKind::All,
                WhichCaptures::None,
                REGEX_SET_SIZE_LIMIT,
                REGEX_SET_DFA_CACHE,
            )
            .build_many(&sources) else {
                continue;
            };
            let g = groups.len() as u32;
            for (k, (atom, _)) in chunk.iter().enumerate() {
                if let Atom::Regex {
                    group, prefiltered, ..
                } = &mut b.atoms[*atom as usize]
                {
                    *group = Some((g, k as u32));
                    // Its prefilter's short literals fire on most requests
                    // and the set scan answers for it anyway: the rule is
                    // evaluated on every event, and the literals leave the
                    // scan (walks for them cost more than they spare).
                    if *prefiltered {
                        *prefiltered = false;
                        b.prefiltered -= 1;
                    }
                }
            }
            let members: BTreeSet<u32> = chunk.iter().map(|(atom, _)| *atom).collect();
            for hooks in &mut b.hooks {
                hooks.retain(|h| !members.contains(&h.atom));
            }
            grouped += chunk.len();
            groups.push(set);
        }
    }
    (groups, grouped)
}

/// Atoms such that the node can be true only if at least one of them fired.
fn triggers(node: &Node, atoms: &[Atom]) -> Option<Vec<u32>> {
    match node {
        Node::Atom(a) => match &atoms[*a as usize] {
            Atom::Literal { .. }
            | Atom::Regex {
                prefiltered: true, ..
            } => Some(vec![*a]),
            Atom::Regex {
                prefiltered: false, ..
            } => None,
        },
        Node::All(children) => children
            .iter()
            .filter_map(|c| triggers(c, atoms))
            .min_by_key(Vec::len),
        Node::Any(children) => {
            let mut all = Vec::new();
            for c in children {
                all.extend(triggers(c, atoms)?);
            }
            Some(all)
        }
        Node::Not(_) | Node::True => None,
    }
}

impl CompiledRules {
    /// Compiles `set`.
    pub fn compile(set: &RuleSet) -> Result<CompiledRules, CompileError> {
        let mut b = Builder {
            inputs: BTreeMap::new(),
            input_list: Vec::new(),
            patterns: BTreeMap::new(),
            hooks: Vec::new(),
            atoms: Vec::new(),
            atom_input: Vec::new(),
            regexes: Vec::new(),
            prefiltered: 0,
            broad: Vec::new(),
        };
        let mut targets = Vec::new();
        let mut rule_targets = Vec::with_capacity(set.rules.len());
        for (ri, rule) in set.rules.iter().enumerate() {
            let start = targets.len() as u32;
            for (fi, field) in rule.fields.iter().enumerate() {
                let input = b.input(InputSpec {
                    field: field.clone(),
                    chain: rule.transforms.clone(),
                })?;
                let node = match &rule.condition {
                    Some(c) => b.node(rule, c, input)?,
                    None => Node::True,
                };
                targets.push(Target {
                    rule: ri as u32,
                    field: u16::try_from(fi).map_err(|_| CompileError::TooLarge("fields"))?,
                    input,
                    node,
                    single_literal: None,
                });
            }
            rule_targets.push(start..targets.len() as u32);
        }
        let (groups, grouped) = group_broad_regexes(&mut b);
        let mut atom_targets = vec![Vec::new(); b.atoms.len()];
        let mut always = Vec::new();
        for target in &mut targets {
            if let Node::Atom(a) = target.node
                && matches!(b.atoms[a as usize], Atom::Literal { .. })
            {
                target.single_literal = Some(a);
            }
        }
        for (ti, target) in targets.iter().enumerate() {
            match triggers(&target.node, &b.atoms) {
                Some(atoms) => {
                    for a in atoms {
                        let list: &mut Vec<u32> = &mut atom_targets[a as usize];
                        if list.last() != Some(&(ti as u32)) {
                            list.push(ti as u32);
                        }
                    }
                }
                None => always.push(ti as u32),
            }
        }
        // Patterns that only grouped regexes used are gone from the scan;
        // the rest are renumbered densely, in their original order.
        let mut patterns: Vec<(u32, &[u8])> = b
            .patterns
            .iter()
            .filter(|&(_, &v)| !b.hooks[v as usize].is_empty())
            .map(|(k, &v)| (v, k.as_slice()))
            .collect();
        patterns.sort_by_key(|(id, _)| *id);
        let hooks = Jagged::new(patterns.iter().map(|&(id, _)| {
            b.hooks[id as usize]
                .iter()
                .map(|h| FiredAtom {
                    atom: h.atom,
                    input: h.input,
                    exact: matches!(b.atoms[h.atom as usize], Atom::Literal { exact: Some(_) }),
                })
                .collect()
        }));
        let literals = if patterns.is_empty() {
            None
        } else {
            let patterns: Vec<&[u8]> = patterns.iter().map(|(_, p)| *p).collect();
            Some(LiteralScan::new(&patterns).map_err(|e| CompileError::Automaton(e.to_string()))?)
        };
        let stats = EngineStats {
            rules: set.rules.len(),
            inputs: b.input_list.len(),
            patterns: patterns.len(),
            regexes: b.regexes.len(),
            prefiltered_regexes: b.prefiltered,
            grouped_regexes: grouped,
            unfiltered_targets: always.len(),
        };
        Ok(CompiledRules {
            target_rule: targets.iter().map(|t| t.rule).collect(),
            meta: set
                .rules
                .iter()
                .map(|r| RuleMeta {
                    severity: r.severity,
                    kinds_filtered: !r.kinds.is_empty(),
                    windowed: r.aggregate.is_some(),
                })
                .collect(),
            rules: set.rules.clone(),
            inputs: b.input_list,
            literals,
            hooks,
            atoms: b.atoms,
            atom_input: b.atom_input,
            regexes: b.regexes,
            groups,
            idle_caches: Mutex::new(Vec::new()),
            targets,
            atom_targets: Jagged::new(atom_targets),
            always,
            rule_targets,
            stats,
        })
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule an alert raised with this set names.
    ///
    /// # Panics
    /// If `alert` was raised with a set of fewer rules.
    pub fn rule(&self, alert: &Alert) -> &Rule {
        &self.rules[alert.rule_index as usize]
    }

    /// Size counts.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }
}

/// Tunables of a [`Detector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorConfig {
    /// The most keys one anomaly rule tracks; the least recently updated key
    /// is evicted beyond it.
    pub max_keys_per_rule: usize,
    /// Seed of the window tables' hasher. It affects memory layout only, never
    /// output; the daemon passes a secret random value so that an attacker
    /// cannot aim source addresses at one bucket.
    pub hash_seed: u64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            max_keys_per_rule: 100_000,
            hash_seed: 0x5eed_5eed_5eed_5eed,
        }
    }
}

#[derive(Debug, Default)]
struct Scratch {
    generation: u32,
    buffers: Vec<Vec<u8>>,
    spare: Vec<u8>,
    fired: Vec<u32>,
    spans: Vec<(u32, u32)>,
    regex_memo: Vec<u32>,
    regex_result: Vec<Option<(u32, u32)>>,
    /// Per set of broad regexes: the generation it last ran in, and which
    /// members matched then.
    group_memo: Vec<u32>,
    group_matched: Vec<u64>,
    /// The search caches lent by the rules for the current call.
    caches: RegexCaches,
    /// Per set, the members that matched in its last scan.
    group_patterns: Vec<PatternSet>,
    /// The targets to evaluate, gathered in any order during the scan.
    candidate: TargetSet,
    /// The same, in increasing order.
    candidates: Vec<u32>,
    /// `inspect_batch`: the alerts of each event that raised some.
    alerting: Vec<Range<usize>>,
    digests: crate::crypto::Digests,
    /// `inspect_batch`: window updates held back until the batch's end.
    deferred: Vec<DeferredWindow>,
    /// `inspect_batch`: the answers of one rule's held-back updates.
    answers: Vec<bool>,
    /// The match spans of the rule being evaluated.
    alert_spans: Vec<MatchSpan>,
}

/// The search caches of every regex and set of one [`CompiledRules`], each
/// made on first use.
///
/// Caches are the rules' to lend, not a detector's to keep: a detector
/// borrows a set for one `inspect` or `inspect_batch` call and gives it back.
/// The replicas of a simulation (and the runs of a swarm) then share warm
/// lazy DFAs, as they share the compiled rules; detectors inspecting at once
/// on several threads each hold a set of their own. Nothing keys them by
/// thread: `regex`'s own pool does, and handed cold caches to a detector
/// that a runtime moved to a thread it had not seen. What a search finds
/// never depends on its cache.
#[derive(Debug, Default)]
struct RegexCaches {
    regexes: Vec<Option<Box<meta::Cache>>>,
    groups: Vec<Option<Box<meta::Cache>>>,
}

/// Idle cache sets kept beyond this many (detectors that inspected at
/// once) are dropped.
const IDLE_CACHES_MAX: usize = 16;

impl CompiledRules {
    fn idle(&self) -> MutexGuard<'_, Vec<RegexCaches>> {
        // The list stays consistent whatever panicked while holding it.
        self.idle_caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lend_caches(&self) -> RegexCaches {
        self.idle().pop().unwrap_or_else(|| RegexCaches {
            regexes: (0..self.regexes.len()).map(|_| None).collect(),
            groups: (0..self.groups.len()).map(|_| None).collect(),
        })
    }

    fn take_back_caches(&self, caches: RegexCaches) {
        let mut idle = self.idle();
        if idle.len() < IDLE_CACHES_MAX {
            idle.push(caches);
        }
    }
}

/// A set of target ids that comes out in increasing order without a sort:
/// a bitmap, and a summary bitmap of its non-zero words so that draining
/// visits only the words holding members (two words for 1,000 targets
/// after the summary, one per 4,096 targets for the summary itself).
#[derive(Debug, Clone, Default)]
struct TargetSet {
    words: Vec<u64>,
    summary: Vec<u64>,
}

impl TargetSet {
    fn new(targets: usize) -> TargetSet {
        let words = targets.div_ceil(64);
        TargetSet {
            words: vec![0; words],
            summary: vec![0; words.div_ceil(64)],
        }
    }

    #[inline(always)]
    fn insert(&mut self, t: u32) {
        let w = t as usize >> 6;
        self.words[w] |= 1 << (t & 63);
        self.summary[w >> 6] |= 1 << (w & 63);
    }

    /// Appends the members to `out` in increasing order and empties the set.
    fn drain_into(&mut self, out: &mut Vec<u32>) {
        for (s, summary) in self.summary.iter_mut().enumerate() {
            let mut nonzero = std::mem::take(summary);
            while nonzero != 0 {
                let w = s * 64 + nonzero.trailing_zeros() as usize;
                nonzero &= nonzero - 1;
                let mut bits = std::mem::take(&mut self.words[w]);
                while bits != 0 {
                    out.push((w * 64 + bits.trailing_zeros() as usize) as u32);
                    bits &= bits - 1;
                }
            }
        }
    }
}

/// An alert of `inspect_batch` that stands only if its rule's window update
/// says so; the updates of a batch are applied together at its end.
#[derive(Debug, Clone, Copy)]
struct DeferredWindow {
    /// The alert's position in the output.
    alert: usize,
    /// Its rule.
    rule: u32,
    /// Its event's position in the batch.
    event: u32,
}

/// Deterministic counts of the work a [`Detector`] did: what the engine's
/// cost is made of, independent of the machine's speed. The cost regression
/// test bounds them for every bench shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkCounters {
    /// Events inspected.
    pub events: u64,
    /// Bytes fed through transforms (field length times chain length).
    pub transformed_bytes: u64,
    /// Bytes of input searched by the literal scan.
    pub input_bytes: u64,
    /// Positions the literal scan's fingerprint filter passed, each decided
    /// by the literal DFA.
    pub literal_lookups: u64,
    /// Literal occurrences found (before a case-sensitive literal's exact
    /// comparison).
    pub literal_matches: u64,
    /// (rule, field) targets whose condition was evaluated.
    pub targets_evaluated: u64,
    /// Regex searches run.
    pub regex_runs: u64,
    /// Bytes those regex searches covered (input length per run).
    pub regex_bytes: u64,
    /// Scans by a set of broad regexes.
    pub regex_set_runs: u64,
    /// Bytes those set scans covered.
    pub regex_set_bytes: u64,
}

/// An event of a batch that raised alerts ([`Detector::inspect_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertingEvent {
    /// Its position in the batch.
    pub index: u32,
    /// How many alerts it raised.
    pub alerts: u32,
}

/// Runs a [`CompiledRules`] over events, keeping the anomaly windows.
#[derive(Debug)]
pub struct Detector {
    rules: Arc<CompiledRules>,
    config: DetectorConfig,
    windows: Vec<Option<WindowTable>>,
    scratch: Scratch,
    work: WorkCounters,
}

impl Detector {
    /// A detector with empty windows.
    pub fn new(rules: Arc<CompiledRules>, config: DetectorConfig) -> Detector {
        let windows = Self::tables(&rules, &config);
        let scratch = Scratch {
            generation: 0,
            buffers: vec![Vec::new(); rules.inputs.len()],
            spare: Vec::new(),
            fired: vec![0; rules.atoms.len()],
            spans: vec![(0, 0); rules.atoms.len()],
            regex_memo: vec![0; rules.atoms.len()],
            regex_result: vec![None; rules.atoms.len()],
            group_memo: vec![0; rules.groups.len()],
            group_matched: vec![0; rules.groups.len()],
            caches: RegexCaches::default(),
            group_patterns: rules
                .groups
                .iter()
                .map(|set| PatternSet::new(set.pattern_len()))
                .collect(),
            candidate: TargetSet::new(rules.targets.len()),
            candidates: Vec::new(),
            alerting: Vec::new(),
            digests: crate::crypto::Digests::new(),
            deferred: Vec::new(),
            answers: Vec::new(),
            alert_spans: Vec::new(),
        };
        Detector {
            rules,
            config,
            windows,
            scratch,
            work: WorkCounters::default(),
        }
    }

    /// The work done so far.
    pub fn work(&self) -> WorkCounters {
        self.work
    }

    fn tables(rules: &CompiledRules, config: &DetectorConfig) -> Vec<Option<WindowTable>> {
        rules
            .rules
            .iter()
            .map(|r| {
                r.aggregate.as_ref().map(|a| {
                    WindowTable::new(a.clone(), config.max_keys_per_rule, config.hash_seed)
                })
            })
            .collect()
    }

    /// The compiled rules in use.
    pub fn rules(&self) -> &Arc<CompiledRules> {
        &self.rules
    }

    /// Replaces the rule set. Windows of rules whose id and aggregate are
    /// unchanged carry over; all others start empty.
    pub fn replace_rules(&mut self, rules: Arc<CompiledRules>) {
        let mut old: BTreeMap<&str, (usize, &Rule)> = BTreeMap::new();
        for (i, r) in self.rules.rules.iter().enumerate() {
            old.insert(r.id.as_str(), (i, r));
        }
        let mut windows = Self::tables(&rules, &self.config);
        for (i, r) in rules.rules.iter().enumerate() {
            if let Some((j, prev)) = old.get(r.id.as_str())
                && prev.aggregate == r.aggregate
                && prev.condition == r.condition
            {
                windows[i] = self.windows[*j].take();
            }
        }
        let work = self.work;
        *self = Detector::new(rules, self.config);
        self.windows = windows;
        self.work = work;
    }

    /// Canonical encoding of every anomaly window, in rule order.
    pub fn encode_windows(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for w in self.windows.iter().flatten() {
            w.encode(&mut out);
        }
        out
    }

    /// Restores windows written by [`Detector::encode_windows`] for the same
    /// rule set; on error the windows are left empty.
    pub fn restore_windows(&mut self, bytes: &[u8]) -> Result<(), crate::codec::CodecError> {
        self.windows = Self::tables(&self.rules, &self.config);
        let mut r = crate::codec::Reader::new(bytes);
        let mut fresh = Self::tables(&self.rules, &self.config);
        for w in fresh.iter_mut().flatten() {
            w.decode_into(&mut r)?;
        }
        if r.remaining() != 0 {
            return Err(crate::codec::CodecError::TrailingBytes {
                remaining: r.remaining(),
            });
        }
        self.windows = fresh;
        Ok(())
    }

    /// Keys tracked by each anomaly rule, in rule order (0 for signature rules).
    pub fn window_keys(&self) -> Vec<usize> {
        self.windows
            .iter()
            .map(|w| w.as_ref().map_or(0, WindowTable::len))
            .collect()
    }

    /// Keys evicted so far, over every anomaly rule, to respect
    /// [`DetectorConfig::max_keys_per_rule`]. Since the last rebuild of the
    /// tables (a snapshot restore or a rules update restarts the count).
    pub fn window_evictions(&self) -> u64 {
        self.windows
            .iter()
            .flatten()
            .map(WindowTable::evictions)
            .sum()
    }

    /// Inspects one event at logical time `time_ms` (the event's or the
    /// block's timestamp) and appends its alerts to `alerts`, in rule order.
    pub fn inspect(&mut self, event: &Event, time_ms: u64, alerts: &mut Vec<Alert>) {
        let first = alerts.len();
        self.with_lent_caches(|d| d.inspect_unhashed(event, time_ms, None, alerts));
        if alerts.len() > first {
            let hash = Digest::of(&event.payload);
            alerts[first..]
                .iter_mut()
                .for_each(|a| a.payload_hash = hash);
        }
    }

    /// Inspects each `(event, time_ms)` in order, exactly as [`inspect`]
    /// would one after the other, and appends the alerts in that order. The
    /// payload hashes of the events that raised alerts are computed side by
    /// side at the end ([`Digest::of_many`]), and so are the anomaly-window
    /// updates ([`WindowTable::update_many`], in event order per rule; an
    /// alert their answer refuses is dropped): that is what makes a batch
    /// cheaper than its events one at a time.
    ///
    /// Returns, for each event that raised alerts, its position among
    /// `events` and how many it raised, in order (a submission split among
    /// several callers tells each its own).
    ///
    /// [`inspect`]: Detector::inspect
    pub fn inspect_batch<'a>(
        &mut self,
        events: impl IntoIterator<Item = (&'a Event, u64)>,
        alerts: &mut Vec<Alert>,
    ) -> Vec<AlertingEvent> {
        let events: Vec<(&Event, u64)> = events.into_iter().collect();
        let base = alerts.len();
        let mut ranges = std::mem::take(&mut self.scratch.alerting);
        ranges.clear();
        self.scratch.deferred.clear();
        let mut alerting = Vec::new();
        self.with_lent_caches(|d| {
            for (index, &(event, time_ms)) in events.iter().enumerate() {
                let first = alerts.len();
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                d.inspect_unhashed(event, time_ms, Some(index), alerts);
                if alerts.len() > first {
                    ranges.push(first..alerts.len());
                    alerting.push(AlertingEvent {
                        index,
                        alerts: u32::try_from(alerts.len() - first).unwrap_or(u32::MAX),
                    });
                }
            }
        });
        if !self.scratch.deferred.is_empty() {
            self.settle_windows(&events, base, alerts, &mut ranges, &mut alerting);
        }
        let payloads: Vec<&[u8]> = alerting
            .iter()
            .map(|a| &events[a.index as usize].0.payload[..])
            .collect();
        Digest::of_many(&payloads, &mut self.scratch.digests);
        for (range, hash) in ranges.iter().zip(self.scratch.digests.iter()) {
            alerts[range.clone()]
                .iter_mut()
                .for_each(|a| a.payload_hash = *hash);
        }
        self.scratch.alerting = ranges;
        alerting
    }

    /// Applies the window updates `inspect_batch` held back, rule by rule in
    /// event order (each rule's table sees exactly the sequence it would have
    /// seen event by event), and drops the alerts whose update said no,
    /// with the events left without alerts.
    fn settle_windows(
        &mut self,
        events: &[(&Event, u64)],
        base: usize,
        alerts: &mut Vec<Alert>,
        ranges: &mut Vec<Range<usize>>,
        alerting: &mut Vec<AlertingEvent>,
    ) {
        let mut deferred = std::mem::take(&mut self.scratch.deferred);
        let mut answers = std::mem::take(&mut self.scratch.answers);
        // Stable: within a rule, updates stay in event order.
        deferred.sort_by_key(|d| d.rule);
        let mut keep = vec![true; alerts.len() - base];
        for group in deferred.chunk_by(|a, b| a.rule == b.rule) {
            let rule = group[0].rule as usize;
            let (Some(aggregate), Some(table)) = (
                self.rules.rules[rule].aggregate.as_ref(),
                self.windows[rule].as_mut(),
            ) else {
                continue;
            };
            let updates: Vec<super::window::WindowUpdate<'_>> = group
                .iter()
                .map(|d| {
                    let (event, time_ms) = events[d.event as usize];
                    let (key, value) = window_input(aggregate, event);
                    (key, value, time_ms)
                })
                .collect();
            answers.clear();
            table.update_many(&updates, &mut answers);
            for (d, &alert) in group.iter().zip(&answers) {
                keep[d.alert - base] = alert;
            }
        }
        let mut position = 0;
        alerts.retain(|_| {
            position += 1;
            position <= base || keep[position - 1 - base]
        });
        let mut next = base;
        let mut kept_events = 0;
        for i in 0..ranges.len() {
            let kept = keep[ranges[i].start - base..ranges[i].end - base]
                .iter()
                .filter(|&&k| k)
                .count();
            if kept > 0 {
                ranges[kept_events] = next..next + kept;
                alerting[kept_events] = AlertingEvent {
                    index: alerting[i].index,
                    alerts: kept as u32,
                };
                kept_events += 1;
                next += kept;
            }
        }
        ranges.truncate(kept_events);
        alerting.truncate(kept_events);
        self.scratch.deferred = deferred;
        self.scratch.answers = answers;
    }

    /// [`Detector::inspect`] with every alert's payload hash left zero. With
    /// `batch_index` (the event's position in an `inspect_batch` batch), a
    /// rule's window update is held back in `scratch.deferred` and its alert
    /// is emitted provisionally.
    /// Runs `inspect` with a set of regex caches borrowed from the rules
    /// (see [`RegexCaches`]), given back when it returns.
    fn with_lent_caches<R>(&mut self, inspect: impl FnOnce(&mut Detector) -> R) -> R {
        self.scratch.caches = self.rules.lend_caches();
        let result = inspect(self);
        self.rules
            .take_back_caches(std::mem::take(&mut self.scratch.caches));
        result
    }

    fn inspect_unhashed(
        &mut self,
        event: &Event,
        time_ms: u64,
        batch_index: Option<u32>,
        alerts: &mut Vec<Alert>,
    ) {
        // Borrowed apart, so that reading the rules costs no reference count.
        let Detector {
            rules,
            scratch: s,
            work,
            windows,
            ..
        } = self;
        let rules: &CompiledRules = rules;
        s.generation = s.generation.wrapping_add(1);
        if s.generation == 0 {
            s.fired.fill(0);
            s.regex_memo.fill(0);
            s.group_memo.fill(0);
            s.generation = 1;
        }
        let generation = s.generation;
        work.events += 1;

        for (i, spec) in rules.inputs.iter().enumerate() {
            if spec.chain.is_empty() {
                continue; // searched in place, see `input`
            }
            let raw = event.field(&spec.field);
            work.transformed_bytes += (raw.len() * spec.chain.len()) as u64;
            let mut out = std::mem::take(&mut s.buffers[i]);
            apply_chain(&spec.chain, raw, &mut out, &mut s.spare);
            s.buffers[i] = out;
        }

        s.candidates.clear();
        if let Some(scan) = &rules.literals {
            for i in 0..rules.inputs.len() {
                let buffer = input(rules, &s.buffers, event, i);
                work.input_bytes += buffer.len() as u64;
                work.literal_lookups += scan.for_each(buffer, |pattern, start, end| {
                    work.literal_matches += 1;
                    for hook in rules.hooks.get(pattern) {
                        if usize::from(hook.input) != i {
                            continue;
                        }
                        let a = hook.atom as usize;
                        if s.fired[a] == generation {
                            continue;
                        }
                        if hook.exact
                            && let Atom::Literal { exact: Some(bytes) } = &rules.atoms[a]
                            && &buffer[start..end] != bytes.as_ref()
                        {
                            continue;
                        }
                        s.fired[a] = generation;
                        s.spans[a] = (start as u32, end as u32);
                        for &t in rules.atom_targets.get(a) {
                            s.candidate.insert(t);
                        }
                    }
                }) as u64;
            }
        }
        for &t in &rules.always {
            s.candidate.insert(t);
        }
        // Targets of one rule are contiguous and rules are in file order, so
        // target ids in increasing order yield alerts in rule order.
        s.candidate.drain_into(&mut s.candidates);

        let mut index = 0;
        let mut spans = std::mem::take(&mut s.alert_spans);
        while index < s.candidates.len() {
            let rule_index = rules.target_rule[s.candidates[index] as usize] as usize;
            let meta = rules.meta[rule_index];
            // Only an alert's rare parts read the rule itself.
            let rule = || &rules.rules[rule_index];
            let mut found: Option<MatchSpans> = None;
            while index < s.candidates.len()
                && rules.target_rule[s.candidates[index] as usize] as usize == rule_index
            {
                let target = &rules.targets[s.candidates[index] as usize];
                index += 1;
                if found.is_some() || (meta.kinds_filtered && !rule().kinds.contains(&event.kind)) {
                    continue;
                }
                work.targets_evaluated += 1;
                if let Some(a) = target.single_literal {
                    // What `eval` answers for `Node::Atom` of a literal.
                    let a = a as usize;
                    if s.fired[a] == generation {
                        let (start, end) = s.spans[a];
                        found = Some(MatchSpans::one(MatchSpan {
                            field: target.field,
                            start,
                            end,
                        }));
                    }
                    continue;
                }
                spans.clear();
                if eval(
                    rules,
                    event,
                    s,
                    generation,
                    work,
                    target,
                    &target.node,
                    &mut spans,
                ) {
                    found = Some(MatchSpans::from_slice(&spans));
                }
            }
            let Some(matches) = found else {
                continue;
            };
            if meta.windowed
                && let (Some(aggregate), Some(table)) =
                    (&rule().aggregate, windows[rule_index].as_mut())
            {
                if let Some(event_index) = batch_index {
                    s.deferred.push(DeferredWindow {
                        alert: alerts.len(),
                        rule: rule_index as u32,
                        event: event_index,
                    });
                } else {
                    let (key, value) = window_input(aggregate, event);
                    if !table.update(key, value, time_ms) {
                        continue;
                    }
                }
            }
            alerts.push(Alert {
                rule_index: rule_index as u32,
                severity: meta.severity,
                payload_hash: Digest::ZERO,
                matches,
            });
        }
        s.alert_spans = spans;
        debug_assert!(rules.rule_targets.len() == rules.rules.len());
    }
}

/// What an anomaly rule's window counts for `event`: its key, and the
/// counted value for `value_count`.
fn window_input<'a>(
    aggregate: &super::Aggregate,
    event: &'a Event,
) -> (&'a [u8], Option<&'a [u8]>) {
    let value = match &aggregate.mode {
        super::AggregateMode::ValueCount(f) => Some(event.field(f)),
        _ => None,
    };
    (event.field(&aggregate.by), value)
}

/// The bytes of input `i`: the field itself when its chain is empty (no
/// copy), otherwise the transformed buffer.
fn input<'a>(
    rules: &CompiledRules,
    buffers: &'a [Vec<u8>],
    event: &'a Event,
    i: usize,
) -> &'a [u8] {
    let spec = &rules.inputs[i];
    if spec.chain.is_empty() {
        event.field(&spec.field)
    } else {
        &buffers[i]
    }
}

#[allow(clippy::too_many_arguments)]
fn eval(
    rules: &CompiledRules,
    event: &Event,
    s: &mut Scratch,
    generation: u32,
    work: &mut WorkCounters,
    target: &Target,
    node: &Node,
    spans: &mut Vec<MatchSpan>,
) -> bool {
    match node {
        Node::True => true,
        Node::Atom(a) => {
            let a = *a as usize;
            debug_assert_eq!(rules.atom_input[a], target.input);
            match &rules.atoms[a] {
                Atom::Literal { .. } => {
                    if s.fired[a] != generation {
                        return false;
                    }
                    let (start, end) = s.spans[a];
                    spans.push(MatchSpan {
                        field: target.field,
                        start,
                        end,
                    });
                    true
                }
                Atom::Regex {
                    regex,
                    prefiltered,
                    group,
                } => {
                    if *prefiltered && s.fired[a] != generation {
                        return false;
                    }
                    if s.regex_memo[a] != generation {
                        s.regex_memo[a] = generation;
                        let buffer = input(rules, &s.buffers, event, usize::from(target.input));
                        let may_match = match *group {
                            None => true,
                            Some((g, member)) => {
                                let g = g as usize;
                                if s.group_memo[g] != generation {
                                    s.group_memo[g] = generation;
                                    work.regex_set_runs += 1;
                                    work.regex_set_bytes += buffer.len() as u64;
                                    let set = &rules.groups[g];
                                    let cache = s.caches.groups[g]
                                        .get_or_insert_with(|| Box::new(set.create_cache()));
                                    let found = &mut s.group_patterns[g];
                                    found.clear();
                                    set.which_overlapping_matches_with(
                                        cache,
                                        &Input::new(buffer),
                                        found,
                                    );
                                    s.group_matched[g] =
                                        found.iter().fold(0, |bits, k| bits | 1 << k.as_usize());
                                }
                                s.group_matched[g] & (1 << member) != 0
                            }
                        };
                        s.regex_result[a] = if may_match {
                            work.regex_runs += 1;
                            work.regex_bytes += buffer.len() as u64;
                            let r = *regex as usize;
                            let regex = &rules.regexes[r];
                            let cache = s.caches.regexes[r]
                                .get_or_insert_with(|| Box::new(regex.create_cache()));
                            regex
                                .search_with(cache, &Input::new(buffer))
                                .map(|m| (m.start() as u32, m.end() as u32))
                        } else {
                            None
                        };
                    }
                    match s.regex_result[a] {
                        Some((start, end)) => {
                            spans.push(MatchSpan {
                                field: target.field,
                                start,
                                end,
                            });
                            true
                        }
                        None => false,
                    }
                }
            }
        }
        Node::All(children) => {
            let mark = spans.len();
            let all = children
                .iter()
                .all(|c| eval(rules, event, s, generation, work, target, c, spans));
            if !all {
                spans.truncate(mark);
            }
            all
        }
        Node::Any(children) => children.iter().any(|c| {
            let mark = spans.len();
            let hit = eval(rules, event, s, generation, work, target, c, spans);
            if !hit {
                spans.truncate(mark);
            }
            hit
        }),
        Node::Not(child) => {
            let mark = spans.len();
            let inner = eval(rules, event, s, generation, work, target, child, spans);
            spans.truncate(mark);
            !inner
        }
    }
}

mod literal_scan;
#[cfg(test)]
mod tests;
