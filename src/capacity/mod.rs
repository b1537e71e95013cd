//! Capacity planning: the highest rate a scenario's pipeline sustains
//! (`harness capacity`), found by separate trials, each a whole run on a
//! fresh or purged stream; and the same search across configurations
//! (`[[variants]]`).
//!
//! A rate is sustainable when one trial at it, after the warm-up, achieves
//! at least 99% of it, keeps its backlog from growing faster than
//! `max_backlog_growth` of it per second (least-squares slope) and drains
//! it within `drain` after the load, loses nothing, and passes every
//! criterion of the scenario. If the harness's own schedule lag broke, the
//! trial says that the harness, not the pipeline, was the limit.

pub mod cli;
mod drive;
pub mod search;
mod table;

use serde::{Deserialize, Serialize};

use crate::report::{Fingerprint, Report, ServerUsage};
use crate::scenario::{Capacity, Variant};
use crate::stats::Summary;

pub use drive::{search_capacity, search_configurations, trial_scenario, CapacityOptions};
pub use search::Ending;
pub use table::{at_percentile, render_configurations, render_result, trial_header, trial_row};

/// Bumped when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// The share of the rate a trial must achieve.
const ACHIEVED_SHARE: f64 = 0.99;

/// One trial: its figures over the measured part, its verdict, and the
/// whole run report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    pub rate: f64,
    /// Seconds measured after the warm-up.
    pub measured_secs: f64,
    /// It checked the highest sustainable rate found so far.
    pub confirmation: bool,
    /// Measured twice as long: a confirmation, or any trial after a failed one.
    #[serde(default)]
    pub long: bool,
    /// Events/s sent over the measured part.
    pub achieved: f64,
    /// Least-squares growth of the backlog over the measured part, messages/s.
    pub backlog_slope: f64,
    /// Seconds from the end of the load until nothing was left.
    pub drain_secs: f64,
    pub publish: Summary,
    pub end_to_end: Summary,
    pub schedule_lag_p99: f64,
    pub sustainable: bool,
    /// Every condition that failed, the first one first (see [`judge`]).
    pub failures: Vec<Failure>,
    pub report: Report,
}

/// A condition of sustainability that a trial failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// `harness`, `lost`, `achieved`, `backlog`, `drain`, `criterion`, `run`.
    pub condition: String,
    pub detail: String,
}

impl Failure {
    fn new(condition: &str, detail: String) -> Failure {
        Failure {
            condition: condition.into(),
            detail,
        }
    }

    /// The harness, not the pipeline, could not keep up.
    pub fn is_harness(&self) -> bool {
        self.condition == "harness"
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.condition, self.detail)
    }
}

/// The result of one search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityResult {
    /// `capacity`, to tell this file from a run report.
    pub kind: String,
    pub schema_version: u32,
    pub harness_version: String,
    pub scenario: String,
    pub scenario_file: String,
    /// The variant searched, if the scenario lists them.
    pub variant: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_secs: f64,
    /// The maximum sustainable rate, events/s; None if none was.
    pub msr: Option<f64>,
    pub ending: Ending,
    /// What failed first at the lowest unsustainable rate tried above the MSR.
    pub limited_by: Option<Failure>,
    /// The harness's own schedule broke before the pipeline did: the MSR is
    /// the harness's, not the pipeline's.
    pub harness_limited: bool,
    pub knobs: Capacity,
    pub fingerprint: Fingerprint,
    pub trials: Vec<Trial>,
    /// The embedded server's usage in the confirmation trial, if it ran one.
    pub server_usage: Option<ServerUsage>,
    pub interrupted: bool,
    /// A trial could not run (a server that could not be started or reached).
    pub error: Option<String>,
    pub warnings: Vec<String>,
}

impl CapacityResult {
    /// 0 a sustainable rate was found; 1 none was; 3 a trial could not
    /// run; 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        exit_code(self.interrupted, self.error.is_some(), self.msr.is_some())
    }
}

/// The comparison across configurations: one search per variant, and
/// one trial each at a common rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Configurations {
    /// `configurations`.
    pub kind: String,
    pub schema_version: u32,
    pub scenario: String,
    pub scenario_file: String,
    pub started_at: String,
    /// The rate every variant ran at for the latency comparison.
    pub common_rate: Option<f64>,
    pub variants: Vec<VariantResult>,
    pub interrupted: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    pub settings: Variant,
    pub capacity: CapacityResult,
    /// The trial at the common rate.
    pub common: Option<Trial>,
}

impl Configurations {
    /// As for one search; every variant must have found a rate.
    pub fn exit_code(&self) -> i32 {
        let found = self.variants.iter().all(|v| v.capacity.msr.is_some());
        exit_code(self.interrupted, self.error.is_some(), found)
    }
}

/// 130 interrupted; 3 a trial could not run; 0 a sustainable rate found; 1 none.
fn exit_code(interrupted: bool, error: bool, found: bool) -> i32 {
    use crate::error::exit;
    match (interrupted, error, found) {
        (true, _, _) => exit::INTERRUPTED,
        (_, true, _) => exit::INFRASTRUCTURE,
        (_, _, true) => exit::PASSED,
        _ => exit::FAILED,
    }
}

/// The points of the measured part of the load: after the warm-up, up to
/// the end of the load.
fn measured_points(report: &Report) -> impl Iterator<Item = &crate::series::Point> {
    let (from, to) = (report.measured_from_secs, report.load_secs + 1e-6);
    report
        .series
        .points
        .iter()
        .filter(move |p| p.t_secs > from + 1e-6 && p.t_secs <= to)
}

/// Events/s sent over the measured part, from the series: each point's
/// rate weighted by the share of its interval that lies after the warm-up.
pub fn achieved(report: &Report) -> f64 {
    let (from, to) = (report.measured_from_secs, report.load_secs + 1e-6);
    let (mut sent, mut time, mut previous) = (0.0, 0.0, 0.0_f64);
    for p in &report.series.points {
        if p.t_secs > from && p.t_secs <= to {
            let span = p.t_secs - previous.max(from);
            sent += p.achieved_rate * span;
            time += span;
        }
        previous = p.t_secs;
    }
    if time > 0.0 {
        sent / time
    } else {
        report.rates.achieved
    }
}

/// Least-squares slope of the backlog against time over the measured
/// part, messages per second; 0 with fewer than two points.
pub fn backlog_slope(report: &Report) -> f64 {
    let points: Vec<(f64, f64)> = measured_points(report)
        .filter_map(|p| Some((p.t_secs, p.backlog? as f64)))
        .collect();
    slope(&points)
}

fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_b = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (t, b) in points {
        num += (t - mean_t) * (b - mean_b);
        den += (t - mean_t) * (t - mean_t);
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// Seconds the drain took, from the report's phase marks.
pub fn drain_secs(report: &Report) -> f64 {
    report
        .series
        .phases
        .iter()
        .find(|m| m.name == "drain")
        .map_or(0.0, |m| m.end_secs.unwrap_or(m.start_secs) - m.start_secs)
}

/// Judges a trial at `rate` by its report: every condition it failed, the
/// harness's own limit first (it makes the others meaningless), then loss,
/// the achieved rate, the backlog's growth, the drain, the criteria, and
/// whatever else failed the run.
pub fn judge(rate: f64, confirmation: bool, report: Report, knobs: &Capacity) -> Trial {
    let achieved = achieved(&report);
    let backlog_slope = backlog_slope(&report);
    let drain_secs = drain_secs(&report);
    let lag = report
        .latency
        .get("schedule_lag")
        .copied()
        .unwrap_or_default();
    let limit_ms = knobs.max_schedule_lag.as_secs_f64() * 1000.0;
    let mut failures = Vec::new();
    if lag.p99 > limit_ms {
        failures.push(Failure::new(
            "harness",
            format!(
                "schedule_lag p99 {:.2} ms, above {limit_ms} ms: the harness could not hold its own schedule, so this trial measured the load generator, not the pipeline",
                lag.p99
            ),
        ));
    }
    let c = &report.counts;
    if c.lost > 0 {
        failures.push(Failure::new("lost", format!("{} events lost", c.lost)));
    }
    if achieved < ACHIEVED_SHARE * rate {
        failures.push(Failure::new(
            "achieved",
            format!("achieved {achieved:.1}/s, under 99% of {rate}/s"),
        ));
    }
    let bound = knobs.max_backlog_growth * rate;
    if backlog_slope > bound {
        failures.push(Failure::new(
            "backlog",
            format!("the backlog grew {backlog_slope:.1} messages/s, above {bound:.1}/s"),
        ));
    }
    if c.pending > 0 || drain_secs > knobs.drain.as_secs_f64() + 0.5 {
        failures.push(Failure::new(
            "drain",
            format!(
                "{} events still pending {drain_secs:.1} s after the load (drain bound {})",
                c.pending,
                humantime::format_duration(knobs.drain)
            ),
        ));
    }
    for criterion in report.criteria.iter().filter(|c| !c.passed) {
        let actual = criterion
            .actual
            .map_or("not measured".to_string(), |a| format!("{a}"));
        failures.push(Failure::new(
            "criterion",
            format!("{} (actual {actual})", criterion.expression),
        ));
    }
    let mut run = Vec::new();
    if !report.counts.invariants_hold() {
        run.push("an accounting invariant is broken".to_string());
    }
    if let Some(stuck) = &report.consumer_stuck {
        run.push(format!(
            "the consumer was stuck for {:.1} s",
            stuck.for_secs
        ));
    }
    run.extend(report.panics.iter().cloned());
    if let Some(abort) = &report.aborted_by {
        run.push(format!("aborted by {abort}"));
    }
    failures.extend(run.into_iter().map(|r| Failure::new("run", r)));
    let sustainable = failures.is_empty() && !report.interrupted;
    Trial {
        rate,
        measured_secs: (report.load_secs - report.measured_from_secs).max(0.0),
        confirmation,
        long: confirmation,
        achieved,
        backlog_slope,
        drain_secs,
        publish: report.latency.get("publish").copied().unwrap_or_default(),
        end_to_end: report
            .latency
            .get("end_to_end")
            .copied()
            .unwrap_or_default(),
        schedule_lag_p99: lag.p99,
        sustainable,
        failures,
        report,
    }
}

/// The variant's name: given, else its settings (`memory R3 1KiB 8w`).
pub fn variant_name(v: &Variant) -> String {
    if let Some(name) = &v.name {
        return name.clone();
    }
    let mut parts = Vec::new();
    if let Some(storage) = v.storage {
        parts.push(format!("{storage:?}").to_lowercase());
    }
    if let Some(r) = v.replicas {
        parts.push(format!("R{r}"));
    }
    if let Some(p) = v.payload {
        parts.push(size(p.0));
    }
    if let Some(w) = v.workers {
        parts.push(format!("{w} worker{}", if w == 1 { "" } else { "s" }));
    }
    if parts.is_empty() {
        "as written".into()
    } else {
        parts.join(" ")
    }
}

/// `128B`, `1KiB`, `16KiB`, `1.5MiB`.
fn size(bytes: u64) -> String {
    let units = [(1u64 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in units {
        if bytes >= unit {
            let n = bytes as f64 / unit as f64;
            return if n.fract() == 0.0 {
                format!("{n:.0}{name}")
            } else {
                format!("{n:.1}{name}")
            };
        }
    }
    format!("{bytes}B")
}

/// The scenario with the variant's settings in place. Replicas above one
/// on the embedded target start as many nodes.
pub fn apply_variant(s: &mut crate::scenario::Scenario, v: &Variant) {
    if let Some(storage) = v.storage {
        s.stream.storage = storage;
    }
    if let Some(replicas) = v.replicas {
        s.stream.replicas = replicas;
        if s.target.url.is_none() {
            s.target.nodes = s.target.nodes.max(replicas);
        }
    }
    if let Some(payload) = v.payload {
        s.load.payload.size = payload;
    }
    if let Some(workers) = v.workers {
        s.consumer.workers = workers;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_slope_is_the_least_squares_line() {
        let rising: Vec<(f64, f64)> = (0..10).map(|t| (t as f64, 5.0 + 3.0 * t as f64)).collect();
        assert!((slope(&rising) - 3.0).abs() < 1e-9);
        // Noise around a flat line has a slope near zero.
        let flat: Vec<(f64, f64)> = (0..10)
            .map(|t| (t as f64, if t % 2 == 0 { 10.0 } else { 0.0 }))
            .collect();
        assert!(slope(&flat).abs() < 1.5, "{}", slope(&flat));
        assert_eq!(slope(&[(1.0, 4.0)]), 0.0);
    }

    #[test]
    fn a_trial_is_judged_on_its_measured_part() {
        let knobs = Capacity::default();
        // The example: 100/s for 60 s, a slow stretch 20-30 s with a rising backlog.
        let mut report = crate::report::example();
        report.measured_from_secs = 30.0;
        let trial = judge(100.0, false, report.clone(), &knobs);
        assert!(trial.sustainable, "{:?}", trial.failures);
        assert!((trial.achieved - 100.0).abs() < 1e-9);
        assert_eq!(trial.measured_secs, 30.0);
        // A backlog that grows 10 messages/s throughout: above 1% of 100/s.
        for p in &mut report.series.points {
            p.backlog = Some((10.0 * p.t_secs) as u64);
        }
        let trial = judge(100.0, false, report.clone(), &knobs);
        assert!(!trial.sustainable);
        assert_eq!(
            trial.failures[0].condition, "backlog",
            "{:?}",
            trial.failures
        );
        // The harness's own lag comes first.
        report.latency.get_mut("schedule_lag").unwrap().p99 = 50.0;
        report.counts.lost = 3;
        let trial = judge(100.0, false, report, &knobs);
        let conditions: Vec<&str> = trial
            .failures
            .iter()
            .map(|f| f.condition.as_str())
            .collect();
        assert_eq!(&conditions[..2], &["harness", "lost"]);
        assert!(trial.failures[0].is_harness());
    }

    #[test]
    fn the_achieved_rate_leaves_out_the_warm_up_even_between_points() {
        let mut report = crate::report::example();
        // Points just after each whole second, as the 250 ms ticks take
        // them: 50/s during a 10 s warm-up, 100/s after.
        for (i, p) in report.series.points.iter_mut().enumerate() {
            p.t_secs = (i + 1) as f64 + 0.2;
            p.achieved_rate = if p.t_secs <= 10.2 { 50.0 } else { 100.0 };
        }
        report.load_secs = 60.2;
        report.measured_from_secs = 10.0;
        // The point at 10.2 covers 9.2..10.2: 0.2 s of it is measured, at 50/s.
        let expected = (50.0 * 0.2 + 100.0 * 50.0) / 50.2;
        assert!(
            (achieved(&report) - expected).abs() < 1e-9,
            "{}",
            achieved(&report)
        );
        report.measured_from_secs = 10.2;
        assert!((achieved(&report) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn variants_change_only_what_they_name() {
        let mut s = crate::scenario::Scenario::default();
        let v = Variant {
            replicas: Some(3),
            payload: Some(crate::scenario::ByteSize(1024)),
            ..Variant::default()
        };
        apply_variant(&mut s, &v);
        assert_eq!((s.stream.replicas, s.target.nodes), (3, 3));
        assert_eq!(s.load.payload.size.0, 1024);
        assert_eq!(s.consumer.workers, 4);
        assert_eq!(variant_name(&v), "R3 1KiB");
    }
}
