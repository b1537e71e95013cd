//! Shard reports added into one report with one verdict (`harness merge`).
//!
//! Each shard's books are complete on their own (see [`crate::shard`]), so
//! the whole run's counts are their sums. Latencies are never averaged:
//! every report carries each latency's whole HDR histogram, and the merged
//! percentiles come from the sum of those histograms, exactly as if one
//! process had recorded every sample. The series line up on the absolute
//! timeline (see [`timeline`]). The criteria are evaluated once, on the
//! merged figures.
//!
//! What would make the sum a lie fails the merged verdict with its own
//! reason, never silently: a shard missing, the same shard twice, a report
//! of another run, another scenario or another shard count, a report that
//! is no shard's. Such a report is left out of the sums, and the problem
//! says so.

pub mod cli;
mod timeline;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ledger::Accounting;
use crate::recovery::FaultFigures;
use crate::report::{ConsumerState, Rates, Report};
use crate::stats::{Latency, Summary};

/// What a merged report says of its making.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// Shards in the run (N).
    pub count: u32,
    /// The shards whose figures are in this report.
    pub shards: Vec<u32>,
    /// The report files read, in the order given.
    pub reports: Vec<String>,
    /// Why these figures are not the whole run's: each fails the verdict.
    pub problems: Vec<String>,
}

/// Adds `reports` (each with the name it is known by, such as its path)
/// into one report; None when not one of them is a shard's report.
pub fn merge(reports: Vec<(String, Report)>) -> Option<Report> {
    let names: Vec<String> = reports.iter().map(|(name, _)| name.clone()).collect();
    let (kept, mut problems) = select(reports);
    let first = kept.first()?;
    let count = first.shard.as_ref().map_or(0, |s| s.count);
    let present: BTreeSet<u32> = kept
        .iter()
        .filter_map(|r| r.shard.as_ref().map(|s| s.index))
        .collect();
    let missing: Vec<String> = (0..count)
        .filter(|k| !present.contains(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "shard {} of {count} missing: {} share of the load is not in these figures",
            missing.join(", "),
            if missing.len() == 1 { "its" } else { "their" }
        ));
    }
    let (mut merged, unreadable) = add(&kept);
    problems.extend(unreadable);
    merged.merged = Some(Merged {
        count,
        shards: present.into_iter().collect(),
        reports: names,
        problems,
    });
    judge(&mut merged);
    Some(merged)
}

/// The reports that belong together: shards of the first shard report's
/// run and scenario, each shard once. The rest are named in problems.
fn select(reports: Vec<(String, Report)>) -> (Vec<Report>, Vec<String>) {
    let mut problems = Vec::new();
    let mut kept: Vec<(String, Report)> = Vec::new();
    for (name, report) in reports {
        let Some(shard) = report.shard.clone() else {
            problems.push(format!(
                "{name} is not a shard's report (run without --shard): left out"
            ));
            continue;
        };
        if let Some((first_name, first)) = kept.first() {
            let reference = first
                .shard
                .as_ref()
                .map(|s| (s.count, s.scenario_hash.clone()));
            let why = if report.run_id != first.run_id {
                Some(format!(
                    "run id `{}`, not `{}`",
                    report.run_id, first.run_id
                ))
            } else if report.harness_version != first.harness_version {
                Some(format!(
                    "harness {}, not {}",
                    report.harness_version, first.harness_version
                ))
            } else if reference.as_ref().map(|r| r.0) != Some(shard.count) {
                Some(format!(
                    "shard count {}, not {}",
                    shard.count,
                    reference.map_or(0, |r| r.0)
                ))
            } else if reference.map(|r| r.1) != Some(shard.scenario_hash.clone()) {
                Some("another scenario (its scenario_hash differs)".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                problems.push(format!(
                    "{name} is of another run than {first_name} ({why}): left out"
                ));
                continue;
            }
            if let Some((twin, _)) = kept
                .iter()
                .find(|(_, r)| r.shard.as_ref().map(|s| s.index) == Some(shard.index))
            {
                problems.push(format!(
                    "shard {}/{} appears twice ({twin} and {name}): counted once, from {twin}",
                    shard.index, shard.count
                ));
                continue;
            }
        }
        kept.push((name, report));
    }
    kept.sort_by_key(|(_, r)| r.shard.as_ref().map_or(0, |s| s.index));
    (kept.into_iter().map(|(_, r)| r).collect(), problems)
}

/// The sums: counts, rates, histograms, series, faults and what went
/// wrong; and the histograms that could not be added, as problems.
fn add(reports: &[Report]) -> (Report, Vec<String>) {
    let first = &reports[0];
    let mut out = first.clone();
    out.shard = None;
    out.counts = counts(reports.iter().map(|r| &r.counts));
    out.rates = Rates {
        target: reports.iter().map(|r| r.rates.target).sum(),
        achieved: reports.iter().map(|r| r.rates.achieved).sum(),
    };
    out.success_rate = crate::figures::Figures::success_rate_of(&out.counts);
    let ((latency, distribution, histograms), unreadable) = latencies(reports);
    (out.latency, out.distribution, out.histograms) = (latency, distribution, histograms);
    out.consumer = consumer(reports.iter().map(|r| &r.consumer));
    out.started_at = reports
        .iter()
        .map(|r| r.started_at.clone())
        .min()
        .unwrap_or_default();
    // From the first shard's start to the last one's end.
    let offsets = timeline::offsets(reports);
    let spans =
        |f: fn(&Report) -> f64| fold_max(reports.iter().zip(&offsets).map(|(r, o)| o + f(r)));
    out.duration_secs = spans(|r| r.duration_secs);
    out.load_secs = spans(|r| r.load_secs);
    out.garbage_sent = reports.iter().map(|r| r.garbage_sent).sum();
    out.series = timeline::merge(reports);
    out.faults = reports.iter().flat_map(|r| r.faults.clone()).collect();
    out.consumer_stuck = reports.iter().find_map(|r| r.consumer_stuck);
    out.fault_figures = fault_figures(&out);
    out.interrupted = reports.iter().any(|r| r.interrupted);
    out.aborted_by = reports.iter().find_map(|r| r.aborted_by.clone());
    out.saturated = reports.iter().any(|r| r.saturated);
    let each = |r: &Report, line: &String| {
        let k = r.shard.as_ref().map_or(0, |s| s.index);
        format!("shard {k}: {line}")
    };
    out.panics = reports
        .iter()
        .flat_map(|r| r.panics.iter().map(move |p| each(r, p)))
        .collect();
    out.warnings = reports
        .iter()
        .flat_map(|r| r.warnings.iter().map(move |w| each(r, w)))
        .collect();
    (out, unreadable)
}

fn fold_max(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max)
}

/// Every count added (whatever counts [`Accounting`] holds: each is a
/// number of events or deliveries of one shard's own events), the samples
/// kept up to their usual limit, and each invariant as the sum of its
/// sides, holding only if it held in every shard.
fn counts<'a>(all: impl Iterator<Item = &'a Accounting>) -> Accounting {
    let mut sum = serde_json::Map::new();
    let mut samples = crate::ledger::Samples::default();
    let mut invariants: Vec<crate::ledger::Invariant> = Vec::new();
    for counts in all {
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(counts) {
            for (name, value) in fields {
                if let Some(n) = value.as_u64() {
                    let total = sum.get(&name).and_then(|v| v.as_u64()).unwrap_or(0);
                    sum.insert(name, total.saturating_add(n).into());
                }
            }
        }
        let limit = crate::ledger::SAMPLE_LIMIT;
        for (into, from) in [
            (&mut samples.lost, &counts.samples.lost),
            (&mut samples.indeterminate, &counts.samples.indeterminate),
            (&mut samples.dead_lettered, &counts.samples.dead_lettered),
        ] {
            into.extend(from.iter().take(limit.saturating_sub(into.len())).cloned());
        }
        for invariant in &counts.invariants {
            match invariants.iter_mut().find(|i| i.name == invariant.name) {
                Some(sum) => {
                    sum.left = sum.left.saturating_add(invariant.left);
                    sum.right = sum.right.saturating_add(invariant.right);
                    sum.holds &= invariant.holds;
                }
                None => invariants.push(invariant.clone()),
            }
        }
    }
    // Filled in below; the sums above cover every other field.
    sum.insert(
        "samples".into(),
        serde_json::json!({"lost": [], "indeterminate": [], "dead_lettered": []}),
    );
    sum.insert("invariants".into(), serde_json::json!([]));
    let mut out: Accounting =
        serde_json::from_value(serde_json::Value::Object(sum)).unwrap_or_default();
    for invariant in &mut invariants {
        invariant.holds &= invariant.left == invariant.right;
    }
    out.samples = samples;
    out.invariants = invariants;
    out
}

/// Each latency from the sum of the shards' histograms.
type Latencies = (
    BTreeMap<String, Summary>,
    BTreeMap<String, Vec<[f64; 2]>>,
    BTreeMap<String, String>,
);

fn latencies(reports: &[Report]) -> (Latencies, Vec<String>) {
    let mut out: Latencies = Default::default();
    let mut problems = Vec::new();
    for which in Latency::ALL {
        let name = which.name().to_string();
        let mut sum = crate::stats::new_histogram();
        for report in reports {
            let shard = report.shard.as_ref().map_or(0, |s| s.index);
            let decoded = report
                .histograms
                .get(&name)
                .and_then(|text| crate::series::decode_text(text));
            let expected = report.latency.get(&name).map_or(0, |s| s.count);
            // A histogram that is missing, unreadable or not the one its
            // report summarised would make every percentile a guess.
            match decoded {
                Some(h) if h.len() == expected && sum.add(&h).is_ok() => {}
                Some(h) => problems.push(format!(
                    "shard {shard}: its {name} histogram holds {} samples against {expected} \
                     in its report: left out of {name}",
                    h.len()
                )),
                None => problems.push(format!(
                    "shard {shard}: no readable {name} histogram in its report: left out of {name}"
                )),
            }
        }
        out.0.insert(name.clone(), Summary::of(&sum));
        out.1.insert(name.clone(), crate::stats::distribution(&sum));
        out.2.insert(name, crate::series::encode_text(&sum));
    }
    (out, problems)
}

fn consumer<'a>(all: impl Iterator<Item = &'a ConsumerState>) -> ConsumerState {
    all.fold(
        ConsumerState {
            acks_confirmed: true,
            ..ConsumerState::default()
        },
        |sum, c| ConsumerState {
            num_pending: sum.num_pending.saturating_add(c.num_pending),
            num_ack_pending: sum.num_ack_pending.saturating_add(c.num_ack_pending),
            num_redelivered: sum.num_redelivered.saturating_add(c.num_redelivered),
            ack_floor: 0,
            acks_confirmed: sum.acks_confirmed && c.acks_confirmed,
            dead_letter_copies: sum.dead_letter_copies.saturating_add(c.dead_letter_copies),
            service_log: None,
            service_exits: Vec::new(),
        },
    )
}

/// The fault figures from the faults every shard applied, as the recovery
/// tracker gives them at the end of a run.
fn fault_figures(report: &Report) -> FaultFigures {
    let mut figures = FaultFigures {
        consumer_stuck: u64::from(report.consumer_stuck.is_some()),
        ..FaultFigures::default()
    };
    for fault in &report.faults {
        figures.publish_failed = figures
            .publish_failed
            .saturating_add(fault.cost.publish_failed);
        figures.indeterminate = figures
            .indeterminate
            .saturating_add(fault.cost.indeterminate);
        let secs = fault.cost.recovery_secs.unwrap_or_else(|| {
            figures.unrecovered += 1;
            f64::INFINITY
        });
        figures.recovery_ms = figures.recovery_ms.max(secs * 1000.0);
    }
    figures
}

/// The criteria, once, on the merged figures; then the verdict, as for
/// one run, and failed by any problem of the merge.
fn judge(report: &mut Report) {
    let scenario: Option<crate::scenario::Scenario> =
        serde_json::from_value(report.config.clone()).ok();
    let plan = scenario.as_ref().map(crate::plan::Plan::compile);
    let problems = &mut report.merged.get_or_insert_with(Merged::default).problems;
    let plan = match plan {
        Some(Ok(plan)) => plan,
        _ => {
            problems.push("the shards' scenario cannot be read back from their reports: no criteria evaluated".into());
            crate::plan::Plan::default()
        }
    };
    let problems = problems.clone();
    let figures = report.figures();
    report.criteria = plan
        .every_criterion()
        .map(|c| c.evaluate(&figures))
        .collect();
    report.warnings.extend(problems.iter().cloned());
    report.passed = problems.is_empty()
        && !report.interrupted
        && report.aborted_by.is_none()
        && report.counts.invariants_hold()
        && report.consumer_stuck.is_none()
        && report.panics.is_empty()
        && report.criteria.iter().all(|c| c.passed);
}

#[cfg(test)]
mod tests;
