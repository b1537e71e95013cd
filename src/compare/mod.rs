//! `harness compare`: did a change make the pipeline worse? Two run
//! reports, or two capacity results, figure by figure: each with the
//! direction that is better and a tolerance of max(relative share, absolute
//! floor), from the `[compare]` table of the scenario as run.
//!
//! Latency is compared across its percentile range (50, 90, 99, 99.9 by
//! default), not at one percentile; a capacity result's maximum sustainable
//! rate is compared too. Loss and new dead letters are never tolerated.
//! Reports whose fingerprints differ are not comparable unless the caller
//! says they are.

pub mod cli;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::capacity::{at_percentile, CapacityResult};
use crate::report::{Fingerprint, Report};
use crate::scenario::Compare;

/// A report to compare: a run, or a capacity search.
#[derive(Debug, Clone)]
pub enum Subject {
    Run(Box<Report>),
    Capacity(Box<CapacityResult>),
}

impl Subject {
    /// Reads either kind from a JSON file; the error names the file.
    pub fn read(path: &Path) -> Result<Subject, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("capacity") => serde_json::from_value(value)
                .map(|r| Subject::Capacity(Box::new(r)))
                .map_err(|e| format!("{}: not a harness capacity result: {e}", path.display())),
            Some("configurations") => Err(format!(
                "{}: a comparison across configurations; compare one variant's search (its `capacity` object) or single runs",
                path.display()
            )),
            _ => Report::read_json(path).map(|r| Subject::Run(Box::new(r))),
        }
    }

    fn fingerprint(&self) -> &Fingerprint {
        match self {
            Subject::Run(r) => &r.fingerprint,
            Subject::Capacity(c) => &c.fingerprint,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Subject::Run(_) => "run report",
            Subject::Capacity(_) => "capacity result",
        }
    }

    /// The `[compare]` table of the scenario as run, else the defaults.
    pub fn tolerances(&self) -> Compare {
        let config = match self {
            Subject::Run(r) => Some(&r.config),
            Subject::Capacity(c) => c.trials.first().map(|t| &t.report.config),
        };
        config
            .and_then(|c| c.get("compare"))
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .unwrap_or_default()
    }
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Lower,
    Higher,
}

/// One figure of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub figure: String,
    pub unit: String,
    pub better: Better,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// Current minus baseline.
    pub change: Option<f64>,
    /// How much worse is still tolerated, in the figure's unit (0: never).
    pub tolerance: f64,
    pub regressed: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// `comparison`.
    pub kind: String,
    pub baseline: String,
    pub current: String,
    /// The fingerprint fields that differ, `name: baseline → current`.
    pub mismatches: Vec<String>,
    pub allowed_mismatch: bool,
    pub tolerances: Compare,
    pub rows: Vec<Row>,
    pub regressed: bool,
}

impl Comparison {
    /// 0 nothing regressed; 1 a figure regressed; 2 not comparable.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        if !self.mismatches.is_empty() && !self.allowed_mismatch {
            exit::USAGE
        } else if self.regressed {
            exit::FAILED
        } else {
            exit::PASSED
        }
    }
}

/// A figure where lower is better, tolerated up to max(share, floor) worse.
fn lower(
    figure: String,
    unit: &str,
    base: Option<f64>,
    cur: Option<f64>,
    share: f64,
    floor: f64,
) -> Row {
    let tolerance = base.map_or(floor, |b| (b.abs() * share).max(floor));
    let regressed = matches!((base, cur), (Some(b), Some(c)) if c - b > tolerance)
        || (base.is_some() && cur.is_none());
    row(figure, unit, Better::Lower, base, cur, tolerance, regressed)
}

/// A figure where higher is better, tolerated up to `share` lower.
fn higher(figure: String, unit: &str, base: Option<f64>, cur: Option<f64>, share: f64) -> Row {
    let tolerance = base.map_or(0.0, |b| b.abs() * share);
    let regressed = matches!((base, cur), (Some(b), Some(c)) if b - c > tolerance)
        || (base.is_some() && cur.is_none());
    row(
        figure,
        unit,
        Better::Higher,
        base,
        cur,
        tolerance,
        regressed,
    )
}

fn row(
    figure: String,
    unit: &str,
    better: Better,
    baseline: Option<f64>,
    current: Option<f64>,
    tolerance: f64,
    regressed: bool,
) -> Row {
    Row {
        figure,
        unit: unit.into(),
        better,
        change: baseline.zip(current).map(|(b, c)| c - b),
        baseline,
        current,
        tolerance,
        regressed,
    }
}

/// The value of `latency` at percentile `p` in a run report, ms.
fn percentile(r: &Report, latency: &str, p: f64) -> Option<f64> {
    // No samples is no figure, never 0 ms.
    if r.latency.get(latency).is_none_or(|s| s.count == 0) {
        return None;
    }
    let from_distribution = r
        .distribution
        .get(latency)
        .and_then(|d| at_percentile(d, p));
    from_distribution.or_else(|| {
        let s = r.latency.get(latency)?;
        match p {
            50.0 => Some(s.p50),
            90.0 => Some(s.p90),
            99.0 => Some(s.p99),
            99.9 => Some(s.p999),
            100.0 => Some(s.max),
            _ => None,
        }
    })
}

fn runs(base: &Report, cur: &Report, t: &Compare) -> Vec<Row> {
    let floor = t.latency_floor.as_secs_f64() * 1000.0;
    let mut rows = Vec::new();
    for name in &t.latencies {
        for &p in &t.percentiles {
            // No samples on either side: nothing to compare.
            let count = |r: &Report| r.latency.get(name).map_or(0, |s| s.count);
            if count(base) == 0 && count(cur) == 0 {
                continue;
            }
            rows.push(lower(
                format!("{name} p{p}"),
                "ms",
                percentile(base, name, p),
                percentile(cur, name, p),
                t.latency,
                floor,
            ));
        }
    }
    rows.push(higher(
        "achieved rate".into(),
        "events/s",
        Some(base.rates.achieved),
        Some(cur.rates.achieved),
        t.rate,
    ));
    rows.push(higher(
        "success rate".into(),
        "",
        Some(base.success_rate),
        Some(cur.success_rate),
        t.rate,
    ));
    // Never tolerated: any loss, and dead letters beyond the baseline's.
    let mut lost = lower(
        "lost".into(),
        "events",
        Some(base.counts.lost as f64),
        Some(cur.counts.lost as f64),
        0.0,
        0.0,
    );
    lost.regressed = cur.counts.lost > 0;
    rows.push(lost);
    rows.push(lower(
        "dead_lettered".into(),
        "events",
        Some(base.counts.dead_lettered as f64),
        Some(cur.counts.dead_lettered as f64),
        0.0,
        0.0,
    ));
    let verdict = |r: &Report| if r.passed { 1.0 } else { 0.0 };
    let mut passed = higher(
        "passed".into(),
        "",
        Some(verdict(base)),
        Some(verdict(cur)),
        0.0,
    );
    passed.regressed = base.passed && !cur.passed;
    rows.push(passed);
    rows
}

fn capacities(base: &CapacityResult, cur: &CapacityResult, t: &Compare) -> Vec<Row> {
    let mut rows = vec![higher(
        "maximum sustainable rate".into(),
        "events/s",
        base.msr,
        cur.msr,
        t.msr,
    )];
    if let Some(row) = rows.first_mut() {
        // A search that found nothing regressed from one that found a rate.
        row.regressed |= base.msr.is_some() && cur.msr.is_none();
    }
    let lost = |c: &CapacityResult| {
        c.trials
            .iter()
            .filter(|t| t.sustainable)
            .map(|t| t.report.counts.lost)
            .sum::<u64>()
    };
    let mut row = lower(
        "lost in sustainable trials".into(),
        "events",
        Some(lost(base) as f64),
        Some(lost(cur) as f64),
        0.0,
        0.0,
    );
    row.regressed = lost(cur) > 0;
    rows.push(row);
    rows
}

/// Compares `current` against `baseline` with the tolerances `t`.
pub fn compare(
    baseline: &Subject,
    current: &Subject,
    t: &Compare,
    names: (&str, &str),
    allow_mismatch: bool,
) -> Result<Comparison, String> {
    let mut mismatches = baseline.fingerprint().differences(current.fingerprint());
    let rows = match (baseline, current) {
        (Subject::Run(b), Subject::Run(c)) => {
            let (rb, rc) = (b.rates.target, c.rates.target);
            if (rb - rc).abs() > 0.01 * rb.max(rc) {
                mismatches.push(format!("target rate: {rb:.1} → {rc:.1} events/s"));
            }
            runs(b, c, t)
        }
        (Subject::Capacity(b), Subject::Capacity(c)) => {
            // Searched under other rules, the MSRs measure different things.
            if b.knobs != c.knobs {
                let (kb, kc) = (
                    serde_json::to_value(&b.knobs),
                    serde_json::to_value(&c.knobs),
                );
                if let (Ok(serde_json::Value::Object(kb)), Ok(serde_json::Value::Object(kc))) =
                    (kb, kc)
                {
                    for (key, vb) in &kb {
                        let vc = kc.get(key).cloned().unwrap_or_default();
                        if *vb != vc {
                            mismatches.push(format!("capacity.{key}: {vb} → {vc}"));
                        }
                    }
                }
            }
            capacities(b, c, t)
        }
        (b, c) => {
            return Err(format!(
                "a {} cannot be compared with a {}",
                b.kind(),
                c.kind()
            ))
        }
    };
    let regressed = rows.iter().any(|r| r.regressed);
    Ok(Comparison {
        kind: "comparison".into(),
        baseline: names.0.into(),
        current: names.1.into(),
        mismatches,
        allowed_mismatch: allow_mismatch,
        tolerances: t.clone(),
        rows,
        regressed,
    })
}

/// The comparison as a table: figure, baseline, current, change, tolerance, verdict.
pub fn render(c: &Comparison) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "baseline: {}\ncurrent:  {}", c.baseline, c.current);
    for m in &c.mismatches {
        let _ = writeln!(out, "fingerprint differs: {m}");
    }
    let _ = writeln!(
        out,
        "{:<28} {:>12} {:>12} {:>12} {:>12}  verdict",
        "figure", "baseline", "current", "change", "tolerance"
    );
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    for r in &c.rows {
        let unit = if r.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", r.unit)
        };
        let change = match (r.change, r.baseline) {
            (Some(d), Some(b)) if b != 0.0 => format!("{d:+.3} ({:+.0}%)", 100.0 * d / b),
            (Some(d), _) => format!("{d:+.3}"),
            _ => "-".into(),
        };
        let verdict = if r.regressed { "REGRESSED" } else { "ok" };
        let _ = writeln!(
            out,
            "{:<28} {:>12} {:>12} {:>12} {:>12}  {verdict}",
            format!("{}{unit}", r.figure),
            show(r.baseline),
            show(r.current),
            change,
            if r.tolerance == 0.0 && r.better == Better::Lower {
                "none".to_string()
            } else {
                format!("{:.3}", r.tolerance)
            },
        );
    }
    let verdict = match c.exit_code() {
        0 => "no regression",
        1 => "REGRESSION",
        _ => "not comparable: the fingerprints differ (--allow-mismatch compares anyway)",
    };
    let _ = writeln!(out, "{verdict}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(e2e_scale: f64, lost: u64) -> Subject {
        let mut r = crate::report::example();
        for d in r.distribution.values_mut() {
            for point in d.iter_mut() {
                point[1] *= e2e_scale;
            }
        }
        r.counts.lost = lost;
        Subject::Run(Box::new(r))
    }

    #[test]
    fn the_same_report_against_itself_has_no_regression() {
        let a = run(1.0, 0);
        let c = compare(&a, &a, &Compare::default(), ("a", "a"), false).unwrap();
        assert!(!c.regressed, "{}", render(&c));
        assert_eq!(c.exit_code(), 0);
        assert_eq!(c.rows.iter().filter(|r| r.figure.contains(" p")).count(), 8);
    }

    #[test]
    fn latency_worse_beyond_both_the_share_and_the_floor_regresses() {
        let t = Compare::default();
        // Twice as slow: p99 4 → 8 ms, beyond 25% and 1 ms.
        let c = compare(&run(1.0, 0), &run(2.0, 0), &t, ("a", "b"), false).unwrap();
        assert!(c.regressed);
        assert!(c
            .rows
            .iter()
            .any(|r| r.figure == "end_to_end p99" && r.regressed));
        // 10% slower is inside the tolerance.
        let c = compare(&run(1.0, 0), &run(1.1, 0), &t, ("a", "b"), false).unwrap();
        assert!(!c.regressed, "{}", render(&c));
        // Faster is never a regression.
        let c = compare(&run(2.0, 0), &run(1.0, 0), &t, ("a", "b"), false).unwrap();
        assert!(!c.regressed);
        // A 50% rise under the floor is noise: p50 0.1 ms → 0.15 ms.
        let row = lower("x".into(), "ms", Some(0.1), Some(0.15), 0.25, 1.0);
        assert!(!row.regressed);
    }

    #[test]
    fn any_loss_regresses_whatever_the_baseline() {
        let c = compare(
            &run(1.0, 0),
            &run(1.0, 1),
            &Compare::default(),
            ("a", "b"),
            false,
        )
        .unwrap();
        assert!(c.rows.iter().any(|r| r.figure == "lost" && r.regressed));
        assert_eq!(c.exit_code(), 1);
    }

    #[test]
    fn a_fingerprint_mismatch_is_not_comparable_unless_allowed() {
        let a = run(1.0, 0);
        let mut b = crate::report::example();
        b.fingerprint.storage = "memory".into();
        let b = Subject::Run(Box::new(b));
        let c = compare(&a, &b, &Compare::default(), ("a", "b"), false).unwrap();
        assert_eq!(c.mismatches, vec!["storage:  → memory".to_string()]);
        assert_eq!(c.exit_code(), 2);
        let c = compare(&a, &b, &Compare::default(), ("a", "b"), true).unwrap();
        assert_eq!(c.exit_code(), 0);
    }
}
