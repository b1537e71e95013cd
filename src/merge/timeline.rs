//! The shards' series on one timeline. Each shard counts its time from
//! its own schedule start; shards started with one `--start-at` share it,
//! others are shifted by the difference. A shard's points fall in
//! intervals of the coarsest shard's length, ending at whole multiples of
//! it; the shards' points of one interval add up: rates, backlog and
//! publishes in flight as sums (each shard has its own durable), latencies
//! from their interval histograms added, never from averaged quantiles.

use std::collections::BTreeMap;
use std::time::SystemTime;

use hdrhistogram::Histogram;

use crate::report::Report;
use crate::series::{decode, encode, latencies, Mark, Point, Series};

/// Seconds from the earliest schedule start to each report's.
pub(super) fn offsets(reports: &[Report]) -> Vec<f64> {
    let starts: Vec<Option<SystemTime>> = reports
        .iter()
        .map(|r| r.shard.as_ref().and_then(|s| s.schedule_start_time()))
        .collect();
    let earliest = starts.iter().flatten().min().copied();
    starts
        .iter()
        .map(|start| match (start, earliest) {
            (Some(start), Some(earliest)) => start
                .duration_since(earliest)
                .map_or(0.0, |d| d.as_secs_f64()),
            _ => 0.0,
        })
        .collect()
}

pub(super) fn merge(reports: &[Report]) -> Series {
    let offsets = offsets(reports);
    let interval = reports
        .iter()
        .map(|r| r.series.interval_secs)
        .fold(0.0, f64::max);
    let interval = if interval > 0.0 { interval } else { 1.0 };
    // Interval number → the shards' points in it, one per shard.
    let mut slots: BTreeMap<u64, Vec<Point>> = BTreeMap::new();
    for (report, offset) in reports.iter().zip(&offsets) {
        // Interval number → when this shard's point(s) in it began, and
        // the point.
        let mut mine: BTreeMap<u64, (f64, Point)> = BTreeMap::new();
        let mut previous_end = *offset;
        for point in &report.series.points {
            let mut point = point.clone();
            point.t_secs += offset;
            let slot = (point.t_secs / interval - 1e-9).ceil().max(0.0) as u64;
            let start = previous_end;
            previous_end = point.t_secs;
            // Two points of one shard in one interval (its last, short
            // one; a shard shifted off the grid or coarsened less) are one,
            // each weighted by the time it covers.
            let merged = match mine.remove(&slot) {
                Some((began, earlier)) => (began, earlier.merge(point, began)),
                None => (start, point),
            };
            mine.insert(slot, merged);
        }
        for (slot, (_, point)) in mine {
            slots.entry(slot).or_default().push(point);
        }
    }
    let points = slots.into_values().map(add_points).collect();
    let shift = |marks: &[Mark], offset: f64| -> Vec<Mark> {
        marks
            .iter()
            .map(|m| Mark {
                name: m.name.clone(),
                start_secs: m.start_secs + offset,
                end_secs: m.end_secs.map(|e| e + offset),
            })
            .collect()
    };
    Series {
        interval_secs: interval,
        points,
        phases: phases(reports, &offsets),
        faults: reports
            .iter()
            .zip(&offsets)
            .flat_map(|(r, &offset)| shift(&r.series.faults, offset))
            .collect(),
    }
}

/// One interval of every shard: sums, and latencies from the sum of the
/// interval histograms.
fn add_points(points: Vec<Point>) -> Point {
    let histograms: Vec<Histogram<u64>> = (0..crate::stats::Latency::ALL.len())
        .map(|i| {
            let mut sum = crate::stats::new_histogram();
            for point in &points {
                if let Some(bytes) = point.histograms.get(i) {
                    let _ = sum.add(decode(bytes));
                }
            }
            sum
        })
        .collect();
    let backlogs: Vec<u64> = points.iter().filter_map(|p| p.backlog).collect();
    Point {
        t_secs: points.iter().map(|p| p.t_secs).fold(0.0, f64::max),
        target_rate: points.iter().map(|p| p.target_rate).sum(),
        achieved_rate: points.iter().map(|p| p.achieved_rate).sum(),
        acked_rate: points.iter().map(|p| p.acked_rate).sum(),
        processed_rate: points.iter().map(|p| p.processed_rate).sum(),
        backlog: (!backlogs.is_empty()).then(|| backlogs.iter().sum()),
        in_flight: points.iter().map(|p| p.in_flight).sum(),
        latency: latencies(&histograms),
        histograms: histograms.iter().map(encode).collect(),
    }
}

/// Load and drain, from the first shard's start to the last shard's end.
fn phases(reports: &[Report], offsets: &[f64]) -> Vec<Mark> {
    let mut out: Vec<Mark> = Vec::new();
    for name in ["load", "drain"] {
        let spans: Vec<(f64, Option<f64>)> = reports
            .iter()
            .zip(offsets)
            .flat_map(|(r, &offset)| {
                r.series
                    .phases
                    .iter()
                    .filter(|m| m.name == name)
                    .map(move |m| (m.start_secs + offset, m.end_secs.map(|e| e + offset)))
            })
            .collect();
        let Some(start) = spans.iter().map(|s| s.0).reduce(f64::min) else {
            continue;
        };
        // Still open (None) if it is open in any shard.
        let end = spans
            .iter()
            .map(|s| s.1)
            .try_fold(f64::MIN, |end, e| e.map(|e| end.max(e)));
        out.push(Mark {
            name: name.to_string(),
            start_secs: start,
            end_secs: end,
        });
    }
    out
}
