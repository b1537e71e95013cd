//! The run as a time series: per-interval rates, backlog, publishes in
//! flight and, for each latency, the interval's count, p50, p99, p99.9 and
//! max; with the phases (load, drain) and the fault windows marked on the
//! same timeline. It goes into the JSON report under `series`, so that a
//! run's story survives without Grafana.
//!
//! Memory is bounded by the number of points, not the number of events:
//! at most [`MAX_POINTS`]. The interval starts at one second and doubles
//! whenever the series would grow past that, by merging neighbouring
//! points: rates average over the merged time, the backlog and in-flight
//! keep the larger of the two, and each point's interval histograms (kept
//! encoded, a few hundred bytes each) add exactly, so a merged p99 is the
//! p99 of the merged interval, never an average of quantiles.
//! A run of hours keeps at most [`MAX_POINTS`] points at a few seconds each.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::stats::Latency;

/// The most points a series keeps.
pub const MAX_POINTS: usize = 3_600;

/// One latency over one interval, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalLatency {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl IntervalLatency {
    /// The report's own summary, cut to what a point carries.
    pub fn of(h: &Histogram<u64>) -> IntervalLatency {
        let s = crate::stats::Summary::of(h);
        IntervalLatency {
            count: s.count,
            p50: s.p50,
            p99: s.p99,
            p999: s.p999,
            max: s.max,
        }
    }
}

/// Each latency's figures from its histogram, in [`Latency::ALL`] order.
pub(crate) fn latencies(histograms: &[Histogram<u64>]) -> BTreeMap<String, IntervalLatency> {
    Latency::ALL
        .iter()
        .zip(histograms)
        .map(|(which, h)| (which.name().to_string(), IntervalLatency::of(h)))
        .collect()
}

/// One interval, ending at `t_secs` from the start of the load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub t_secs: f64,
    /// Events per second over the interval: intended by the schedule,
    /// sent, acknowledged by the stream, and processed by the consumer.
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub acked_rate: f64,
    pub processed_rate: f64,
    /// Messages waiting for the consumer or its acks (None: the server did
    /// not answer).
    pub backlog: Option<u64>,
    pub in_flight: u64,
    /// By latency name.
    pub latency: BTreeMap<String, IntervalLatency>,
    /// The interval's histograms themselves, in [`Latency::ALL`] order,
    /// V2-deflate encoded (a few hundred bytes each): what `--hdr-log`
    /// writes, and what merging adds exactly. In JSON (base64) only in a
    /// shard's report, which `harness merge` reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "as_base64")]
    pub histograms: Vec<Vec<u8>>,
}

/// Encoded histograms in JSON as base64 strings.
mod as_base64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let engine = &base64::engine::general_purpose::STANDARD;
        s.collect_seq(list.iter().map(|bytes| engine.encode(bytes)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let engine = &base64::engine::general_purpose::STANDARD;
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| engine.decode(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// A histogram as text: [`encode`]d, then base64 (HdrHistogram's own
/// interval-log form of a histogram).
pub fn encode_text(h: &Histogram<u64>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(encode(h))
}

/// [`encode_text`]'s inverse; None for text that is not one.
pub fn decode_text(text: &str) -> Option<Histogram<u64>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .ok()
}

/// A histogram in the V2 deflate encoding (HdrHistogram's own).
pub fn encode(h: &Histogram<u64>) -> Vec<u8> {
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
    let mut bytes = Vec::new();
    // Writing to memory cannot fail, and the counts fit the format.
    let _ = V2DeflateSerializer::new().serialize(h, &mut bytes);
    bytes
}

/// [`encode`]'s inverse; an empty histogram for bytes that do not decode.
pub fn decode(bytes: &[u8]) -> Histogram<u64> {
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .unwrap_or_else(|_| crate::stats::new_histogram())
}

impl Point {
    /// Two neighbouring points as one, `self` first.
    pub(crate) fn merge(self, later: Point, start_secs: f64) -> Point {
        let (a, b) = (self.t_secs - start_secs, later.t_secs - self.t_secs);
        let span = (a + b).max(f64::EPSILON);
        let mean = |x: f64, y: f64| (x * a + y * b) / span;
        // The histograms add exactly, and the figures come from the sum.
        let merged: Vec<Histogram<u64>> = self
            .histograms
            .iter()
            .zip(&later.histograms)
            .map(|(a, b)| {
                let mut sum = decode(a);
                let _ = sum.add(decode(b));
                sum
            })
            .collect();
        Point {
            t_secs: later.t_secs,
            target_rate: mean(self.target_rate, later.target_rate),
            achieved_rate: mean(self.achieved_rate, later.achieved_rate),
            acked_rate: mean(self.acked_rate, later.acked_rate),
            processed_rate: mean(self.processed_rate, later.processed_rate),
            backlog: match (self.backlog, later.backlog) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            },
            in_flight: self.in_flight.max(later.in_flight),
            latency: latencies(&merged),
            histograms: merged.iter().map(encode).collect(),
        }
    }
}

/// A stretch of the timeline: a phase or a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// `load` or `drain` for phases; a fault's kind for faults.
    pub name: String,
    pub start_secs: f64,
    /// None: still under way when the run ended (a fault never undone).
    pub end_secs: Option<f64>,
}

/// The series as the report carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The interval between points, after any coarsening.
    pub interval_secs: f64,
    pub points: Vec<Point>,
    pub phases: Vec<Mark>,
    /// Fault windows, in the order of the report's `faults`.
    pub faults: Vec<Mark>,
}

/// The running totals a point is taken from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Events the schedule intended by now (a real number).
    pub intended: f64,
    pub sent: u64,
    pub published: u64,
    pub processed: u64,
}

/// Builds the series from looks at the run, taken as often as the caller
/// likes; a point is kept once per interval.
#[derive(Debug)]
pub struct Recorder {
    interval_secs: f64,
    max_points: usize,
    points: Vec<Point>,
    last_t: f64,
    last: Totals,
    /// The cumulative histograms now, filled by each look, and at the last
    /// point, to subtract; swapped at each point and the interval made in
    /// `scratch`, so that a point allocates none of these (about 180 KB
    /// each) again.
    now: Vec<Histogram<u64>>,
    before: Vec<Histogram<u64>>,
    scratch: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new(1.0, MAX_POINTS)
    }
}

impl Recorder {
    pub fn new(interval_secs: f64, max_points: usize) -> Recorder {
        Recorder {
            interval_secs,
            max_points: max_points.max(2),
            points: Vec::new(),
            last_t: 0.0,
            last: Totals::default(),
            now: Latency::ALL
                .iter()
                .map(|_| crate::stats::new_histogram())
                .collect(),
            before: Latency::ALL
                .iter()
                .map(|_| crate::stats::new_histogram())
                .collect(),
            scratch: crate::stats::new_histogram(),
        }
    }

    /// Whether a point is due at `t_secs`: points fall on the interval's
    /// grid (1 s, 2 s, ...), so that looks a little early or late do not
    /// stretch an interval to the next look.
    pub fn due(&self, t_secs: f64) -> bool {
        let next = ((self.last_t / self.interval_secs).floor() + 1.0) * self.interval_secs;
        t_secs >= next
    }

    /// The cumulative histograms started again from empty (the end of a
    /// capacity trial's warm-up): the next point takes them whole, instead
    /// of less the last point's, which they no longer hold.
    pub fn latencies_restarted(&mut self) {
        for h in &mut self.before {
            h.reset();
        }
    }

    /// A look at the run at `t_secs`: kept as a point if one is due, or if
    /// `last` (the end of the run, however short its interval). The look
    /// is taken only then (copying the histograms is the cost): it fills
    /// the cumulative histograms it is handed, in [`Latency::ALL`] order.
    pub fn observe(
        &mut self,
        t_secs: f64,
        last: bool,
        look: impl FnOnce(&mut [Histogram<u64>]) -> (Totals, Option<u64>, u64),
    ) {
        if self.due(t_secs) || (last && t_secs > self.last_t) {
            let (totals, backlog, in_flight) = look(&mut self.now);
            self.point(t_secs, totals, backlog, in_flight);
        }
    }

    /// Takes a point at `t_secs`: rates from the totals since the last
    /// point, latencies from the cumulative histograms (in
    /// [`Latency::ALL`] order) less the last point's.
    fn point(&mut self, t_secs: f64, totals: Totals, backlog: Option<u64>, in_flight: u64) {
        let dt = (t_secs - self.last_t).max(f64::EPSILON);
        let rate = |now: u64, before: u64| now.saturating_sub(before) as f64 / dt;
        let mut latency = BTreeMap::new();
        let mut encoded = Vec::with_capacity(self.now.len());
        for (i, which) in Latency::ALL.iter().enumerate() {
            let (Some(now), Some(before)) = (self.now.get(i), self.before.get(i)) else {
                continue;
            };
            let interval = &mut self.scratch;
            interval.reset();
            // Same bounds on both sides, and cumulative histograms only
            // grow, so neither fails.
            let _ = interval.add(now);
            let _ = interval.subtract(before);
            latency.insert(which.name().to_string(), IntervalLatency::of(interval));
            encoded.push(encode(interval));
        }
        // What is now becomes what was before; the next look overwrites
        // the other buffer.
        std::mem::swap(&mut self.now, &mut self.before);
        self.points.push(Point {
            t_secs,
            target_rate: (totals.intended - self.last.intended).max(0.0) / dt,
            achieved_rate: rate(totals.sent, self.last.sent),
            acked_rate: rate(totals.published, self.last.published),
            processed_rate: rate(totals.processed, self.last.processed),
            backlog,
            in_flight,
            latency,
            histograms: encoded,
        });
        self.last_t = t_secs;
        self.last = totals;
        if self.points.len() > self.max_points {
            self.coarsen();
        }
    }

    /// Halves the points by merging neighbours; the interval doubles.
    fn coarsen(&mut self) {
        let mut merged = Vec::with_capacity(self.points.len() / 2 + 1);
        let mut start = 0.0;
        let mut points = std::mem::take(&mut self.points).into_iter();
        while let Some(first) = points.next() {
            let point = match points.next() {
                Some(second) => first.merge(second, start),
                None => first,
            };
            start = point.t_secs;
            merged.push(point);
        }
        self.points = merged;
        self.interval_secs *= 2.0;
    }

    pub fn finish(self, phases: Vec<Mark>, faults: Vec<Mark>) -> Series {
        Series {
            interval_secs: self.interval_secs,
            points: self.points,
            phases,
            faults,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A look that fills the histograms with `values_ms` in every latency.
    fn fill(into: &mut [Histogram<u64>], values_ms: &[u64]) {
        for (h, new) in into.iter_mut().zip(histograms(values_ms)) {
            *h = new;
        }
    }

    fn histograms(values_ms: &[u64]) -> Vec<Histogram<u64>> {
        Latency::ALL
            .iter()
            .map(|_| {
                let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
                for ms in values_ms {
                    h.record(ms * 1000).unwrap();
                }
                h
            })
            .collect()
    }

    fn totals(n: u64) -> Totals {
        Totals {
            intended: n as f64,
            sent: n,
            published: n,
            processed: n,
        }
    }

    #[test]
    fn a_point_holds_the_interval_not_the_run_so_far() {
        let mut r = Recorder::default();
        assert!(!r.due(0.5) && r.due(1.0));
        r.observe(0.5, false, |_| unreachable!("not due"));
        r.observe(1.0, false, |h| {
            fill(h, &[1, 2, 3]);
            (totals(100), Some(5), 3)
        });
        r.observe(2.0, false, |h| {
            fill(h, &[1, 2, 3, 50, 60]);
            (totals(300), None, 0)
        });
        let s = r.finish(Vec::new(), Vec::new());
        assert_eq!(s.points.len(), 2);
        let second = &s.points[1];
        assert_eq!(
            (second.achieved_rate, second.processed_rate),
            (200.0, 200.0)
        );
        assert_eq!(second.target_rate, 200.0);
        let e2e = second.latency["end_to_end"];
        assert_eq!(e2e.count, 2, "only the interval's two samples");
        assert!((e2e.p50 - 50.0).abs() < 0.1, "{e2e:?}");
        assert!((e2e.max - 60.0).abs() < 0.1, "{e2e:?}");
        assert_eq!(s.points[0].latency["end_to_end"].count, 3);
    }

    #[test]
    fn after_the_histograms_restart_a_point_takes_them_whole() {
        let mut r = Recorder::new(1.0, 100);
        r.observe(1.0, false, |h| {
            fill(h, &[1, 2, 3, 4, 5]);
            (totals(100), None, 0)
        });
        // The warm-up ends: the running histograms start again from empty,
        // and two samples arrive.
        r.latencies_restarted();
        r.observe(2.0, true, |h| {
            fill(h, &[9, 9]);
            (totals(200), None, 0)
        });
        let s = r.finish(Vec::new(), Vec::new());
        let e2e = s.points[1].latency["end_to_end"];
        assert_eq!(e2e.count, 2, "{e2e:?}");
        assert!((e2e.p50 - 9.0).abs() < 0.1, "{e2e:?}");
    }

    #[test]
    fn a_long_run_is_coarsened_within_the_bound() {
        let mut r = Recorder::new(1.0, 100);
        let mut samples = Vec::new();
        // A look every quarter second, as the run's ticks do.
        for tick in 1..=4000u64 {
            let t = tick as f64 / 4.0;
            if tick % 4 == 0 {
                samples.push(tick / 4 % 7 + 1);
            }
            let look = |h: &mut [Histogram<u64>]| {
                fill(h, &samples);
                (totals(tick * 10 / 4), Some(tick / 4), 1)
            };
            r.observe(t, tick == 4000, look);
        }
        let s = r.finish(Vec::new(), Vec::new());
        assert!(
            s.points.len() <= 100 && s.points.len() > 50,
            "{}",
            s.points.len()
        );
        assert_eq!(s.interval_secs, 16.0);
        let counted: u64 = s.points.iter().map(|p| p.latency["publish"].count).sum();
        assert_eq!(counted, 1000, "counts add up across merges");
        let mut whole = crate::stats::new_histogram();
        for p in &s.points {
            whole.add(decode(&p.histograms[0])).unwrap();
        }
        assert_eq!(whole.len(), 1000, "merged histograms are exact");
        assert!(whole.equivalent(whole.max(), 7000), "7 ms, in µs");
        assert!(s
            .points
            .iter()
            .all(|p| (p.achieved_rate - 10.0).abs() < 1e-9));
        assert_eq!(
            s.points.last().unwrap().backlog,
            Some(1000),
            "the larger backlog"
        );
        let times: Vec<f64> = s.points.iter().map(|p| p.t_secs).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(*times.last().unwrap(), 1000.0);
    }
}
