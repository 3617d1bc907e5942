//! Detection quality: confusion counts and (severity-weighted) precision,
//! recall and F1 of a rule set over labelled events.
//!
//! An event counts as *flagged* when at least one rule alerted on it; matching
//! is by event id. Weighted metrics weigh each event by a severity (critical 3,
//! high 2, medium 1, low 0.5): a malicious event by its labelled severity (the
//! highest alert severity if it has no label, medium if neither), a false
//! positive by the highest severity that alerted on it, which is the cost of
//! the false alarm to an analyst.

use std::collections::BTreeMap;

use super::Severity;

/// One labelled event's ground truth and what the engine said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Labelled malicious (otherwise benign).
    pub malicious: bool,
    /// The labelled severity, if any.
    pub severity: Option<Severity>,
    /// The labelled attack class (`sqli`, `xss`, ...), if any.
    pub class: Option<String>,
    /// The highest severity among the alerts on this event, if any fired.
    pub alerted: Option<Severity>,
}

/// Confusion counts with the derived ratios.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counts {
    /// Malicious and flagged.
    pub tp: u64,
    /// Benign and flagged.
    pub fp: u64,
    /// Malicious and missed.
    pub fn_: u64,
    /// Benign and not flagged.
    pub tn: u64,
}

impl Counts {
    fn add(&mut self, o: &Outcome) {
        match (o.malicious, o.alerted.is_some()) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }

    /// tp / (tp + fp); 0 when nothing was flagged.
    pub fn precision(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fp) as f64)
    }

    /// tp / (tp + fn); 0 when nothing was malicious.
    pub fn recall(&self) -> f64 {
        ratio(self.tp as f64, (self.tp + self.fn_) as f64)
    }

    /// The harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }

    /// fp / (fp + tn): the share of benign events flagged.
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.fp as f64, (self.fp + self.tn) as f64)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

fn f1(p: f64, r: f64) -> f64 {
    ratio(2.0 * p * r, p + r)
}

/// The full evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// Over all events.
    pub total: Counts,
    /// Severity-weighted precision.
    pub weighted_precision: f64,
    /// Severity-weighted recall.
    pub weighted_recall: f64,
    /// Severity-weighted F1.
    pub weighted_f1: f64,
    /// Per severity: tp and fn by the labelled severity of malicious events,
    /// fp by the highest alert severity on benign events.
    pub by_severity: BTreeMap<Severity, Counts>,
    /// Per labelled class (events without a class are not counted here).
    pub by_class: BTreeMap<String, Counts>,
}

impl Report {
    /// Evaluates `outcomes`.
    pub fn from_outcomes<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Report {
        let mut r = Report::default();
        let (mut wtp, mut wfp, mut wfn) = (0.0, 0.0, 0.0);
        for o in outcomes {
            r.total.add(o);
            if let Some(class) = &o.class {
                r.by_class.entry(class.clone()).or_default().add(o);
            }
            if o.malicious {
                let severity = o.severity.or(o.alerted).unwrap_or(Severity::Medium);
                let counts = r.by_severity.entry(severity).or_default();
                if o.alerted.is_some() {
                    wtp += severity.weight();
                    counts.tp += 1;
                } else {
                    wfn += severity.weight();
                    counts.fn_ += 1;
                }
            } else if let Some(alerted) = o.alerted {
                wfp += alerted.weight();
                r.by_severity.entry(alerted).or_default().fp += 1;
            }
        }
        r.weighted_precision = ratio(wtp, wtp + wfp);
        r.weighted_recall = ratio(wtp, wtp + wfn);
        r.weighted_f1 = f1(r.weighted_precision, r.weighted_recall);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(malicious: bool, severity: Option<Severity>, alerted: Option<Severity>) -> Outcome {
        Outcome {
            malicious,
            severity,
            class: Some(if malicious { "sqli" } else { "benign" }.into()),
            alerted,
        }
    }

    #[test]
    fn counts_and_weighted_metrics() {
        use Severity::*;
        let outcomes = [
            o(true, Some(Critical), Some(High)), // tp, weight 3
            o(true, Some(Low), None),            // fn, weight 0.5
            o(false, None, Some(Medium)),        // fp, weight 1
            o(false, None, None),                // tn
            o(false, None, None),                // tn
        ];
        let r = Report::from_outcomes(&outcomes);
        assert_eq!(
            r.total,
            Counts {
                tp: 1,
                fp: 1,
                fn_: 1,
                tn: 2
            }
        );
        assert_eq!(r.total.precision(), 0.5);
        assert_eq!(r.total.recall(), 0.5);
        assert_eq!(r.total.f1(), 0.5);
        assert_eq!(r.weighted_precision, 3.0 / 4.0);
        assert_eq!(r.weighted_recall, 3.0 / 3.5);
        let expected_f1 = 2.0 * 0.75 * (3.0 / 3.5) / (0.75 + 3.0 / 3.5);
        assert!((r.weighted_f1 - expected_f1).abs() < 1e-12);
        assert_eq!(
            r.by_severity[&Critical],
            Counts {
                tp: 1,
                ..Counts::default()
            }
        );
        assert_eq!(
            r.by_severity[&Low],
            Counts {
                fn_: 1,
                ..Counts::default()
            }
        );
        assert_eq!(
            r.by_severity[&Medium],
            Counts {
                fp: 1,
                ..Counts::default()
            }
        );
        assert_eq!(
            r.by_class["benign"],
            Counts {
                fp: 1,
                tn: 2,
                ..Counts::default()
            }
        );
        assert_eq!(r.total.false_positive_rate(), 1.0 / 3.0);
    }

    #[test]
    fn empty_input_gives_zeros_not_nan() {
        let r = Report::from_outcomes(&[]);
        assert_eq!(r.total.f1(), 0.0);
        assert_eq!(r.weighted_f1, 0.0);
    }
}
