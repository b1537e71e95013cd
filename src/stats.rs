//! Latency statistics: HDR histograms in microseconds, 3 significant digits.
//!
//! Every latency is measured from the event's intended send time (DESIGN.md),
//! so a stalled publisher shows up as latency instead of hiding it.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The latencies the harness records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Intended send → PubAck, retries and backoff included.
    Publish,
    /// One publish attempt: send → PubAck.
    PublishAttempt,
    /// Intended send → first delivery to the consumer.
    EndToEnd,
    /// Time in the consumer's handler.
    Processing,
    /// Actual send − intended send: the harness's own delay.
    ScheduleLag,
}

impl Latency {
    pub const ALL: [Latency; 5] = [
        Latency::Publish,
        Latency::PublishAttempt,
        Latency::EndToEnd,
        Latency::Processing,
        Latency::ScheduleLag,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Latency::Publish => "publish",
            Latency::PublishAttempt => "publish_attempt",
            Latency::EndToEnd => "end_to_end",
            Latency::Processing => "processing",
            Latency::ScheduleLag => "schedule_lag",
        }
    }
}

/// A latency distribution as the report shows it, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }

    /// A statistic by its criteria name (`p99`, `mean`, ...).
    pub fn stat(&self, name: &str) -> Option<f64> {
        Some(match name {
            "count" => self.count as f64,
            "min" => self.min,
            "mean" => self.mean,
            "p50" => self.p50,
            "p90" => self.p90,
            "p99" => self.p99,
            "p999" => self.p999,
            "max" => self.max,
            _ => return None,
        })
    }
}

/// How finely [`distribution`] steps: points per halving of the distance to
/// 100%, as HdrHistogram's own percentile output does.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// A latency's whole percentile distribution, in the shape HdrHistogram
/// prints it: `[percentile, milliseconds]` points, ever finer towards 100%,
/// ending at the maximum. A few dozen points for any run (about 5 per
/// "nine" of the count), so the report stays small.
pub fn distribution(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<[f64; 2]> = Vec::new();
    for step in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        let point = [
            step.quantile_iterated_to() * 100.0,
            h.highest_equivalent(step.value_iterated_to()) as f64 / 1000.0,
        ];
        // The iterator repeats the top value once it reaches 100%.
        if points.last().is_none_or(|last| last[0] < point[0]) {
            points.push(point);
        }
    }
    points
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 1 hour; values beyond are clamped to the top rather than lost.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// The run's histograms, one lock each so recorders rarely meet, and
/// optionally their Prometheus twins (explicit buckets, for dashboards).
pub struct Stats {
    histograms: [Mutex<Histogram<u64>>; 5],
    exported: Option<[metrics::Histogram; 5]>,
    /// End-to-end latencies since the last [`Stats::take_recent_end_to_end`],
    /// for judging recovery after faults over a trailing window; kept only
    /// when asked for ([`Stats::keeping_recent`]), to spare the consumer a
    /// second lock per delivery otherwise.
    recent_end_to_end: Option<Mutex<Histogram<u64>>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            histograms: std::array::from_fn(|_| Mutex::new(new_histogram())),
            exported: None,
            recent_end_to_end: None,
        }
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats")
            .field("exported", &self.exported.is_some())
            .finish()
    }
}

impl Stats {
    /// Stats that also record into the given Prometheus histograms, in
    /// [`Latency::ALL`] order.
    pub fn exporting(histograms: [metrics::Histogram; 5]) -> Stats {
        Stats {
            exported: Some(histograms),
            ..Stats::default()
        }
    }

    fn slot(&self, which: Latency) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.histograms[Self::index(which)]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub fn record(&self, which: Latency, value: Duration) {
        let us = (value.as_micros() as u64).clamp(1, 3_600_000_000);
        self.slot(which).saturating_record(us);
        if let (Latency::EndToEnd, Some(recent)) = (which, &self.recent_end_to_end) {
            recent
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .saturating_record(us);
        }
        if let Some(exported) = &self.exported {
            exported[Self::index(which)].record(value.as_secs_f64());
        }
    }

    fn index(which: Latency) -> usize {
        Latency::ALL.iter().position(|l| *l == which).unwrap_or(0)
    }

    pub fn summary(&self, which: Latency) -> Summary {
        Summary::of(&self.slot(which))
    }

    /// Every latency's summary, by its name.
    pub fn summaries(&self) -> std::collections::BTreeMap<String, Summary> {
        Latency::ALL
            .into_iter()
            .map(|l| (l.name().to_string(), self.summary(l)))
            .collect()
    }

    /// Every latency's whole histogram, encoded (see
    /// [`crate::series::encode_text`]), by its name: what a merge adds.
    pub fn encoded(&self) -> std::collections::BTreeMap<String, String> {
        Latency::ALL
            .into_iter()
            .map(|l| {
                let text = crate::series::encode_text(&self.slot(l));
                (l.name().to_string(), text)
            })
            .collect()
    }

    /// One latency's percentile distribution (see [`distribution`]).
    pub fn distribution(&self, which: Latency) -> Vec<[f64; 2]> {
        distribution(&self.slot(which))
    }

    /// These stats, also keeping the end-to-end latencies since each
    /// [`Stats::take_recent_end_to_end`].
    pub fn keeping_recent(mut self) -> Stats {
        self.recent_end_to_end = Some(Mutex::new(new_histogram()));
        self
    }

    /// The end-to-end latencies recorded since the last call, and a fresh
    /// start; None unless [`Stats::keeping_recent`].
    pub fn take_recent_end_to_end(&self) -> Option<Histogram<u64>> {
        let recent = self.recent_end_to_end.as_ref()?;
        let mut recent = recent.lock().unwrap_or_else(|poison| poison.into_inner());
        Some(std::mem::replace(&mut *recent, new_histogram()))
    }

    /// Forgets every latency recorded so far (the end of a warm-up); the
    /// Prometheus twins keep theirs.
    pub fn reset(&self) {
        for which in Latency::ALL {
            self.slot(which).reset();
        }
    }

    /// One histogram copied into `into`, whose memory is reused.
    pub fn snapshot_into(&self, which: Latency, into: &mut Histogram<u64>) {
        into.reset();
        // Both come from `new_histogram`: the same bounds, so this cannot fail.
        let _ = into.add(&*self.slot(which));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distribution_runs_from_the_minimum_to_the_maximum_ever_finer() {
        let mut h = new_histogram();
        for us in 1..=1_000_000u64 {
            h.record(us).unwrap();
        }
        let d = distribution(&h);
        assert_eq!(d.first().unwrap()[0], 0.0);
        assert_eq!(
            *d.last().unwrap(),
            [100.0, h.highest_equivalent(1_000_000) as f64 / 1000.0]
        );
        assert!(
            d.windows(2)
                .all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1]),
            "{d:?}"
        );
        // About five points per nine of a million samples, not a million.
        assert!(d.len() > 50 && d.len() < 200, "{} points", d.len());
        let p99 = d.iter().find(|p| p[0] >= 99.0).unwrap();
        assert!((p99[1] - 990.0).abs() < 1.0, "{p99:?}");
        assert!(distribution(&new_histogram()).is_empty());
    }

    #[test]
    fn summaries_are_in_milliseconds_with_three_significant_digits() {
        let stats = Stats::default();
        for ms in 1..=1000u64 {
            stats.record(Latency::EndToEnd, Duration::from_millis(ms));
        }
        let s = stats.summary(Latency::EndToEnd);
        assert_eq!(s.count, 1000);
        assert_eq!(s.min, 1.0);
        assert!((s.p50 - 500.0).abs() <= 0.5, "{}", s.p50);
        assert!((s.p99 - 990.0).abs() <= 1.0, "{}", s.p99);
        assert!((s.max - 1000.0).abs() <= 1.0, "{}", s.max);
        assert!((s.mean - 500.5).abs() <= 1.0);
        assert_eq!(s.stat("p99"), Some(s.p99));
        assert_eq!(s.stat("p42"), None);
    }

    #[test]
    fn recent_end_to_end_latencies_start_afresh_when_taken() {
        let stats = Stats::default().keeping_recent();
        stats.record(Latency::EndToEnd, Duration::from_millis(3));
        stats.record(Latency::Publish, Duration::from_millis(9));
        assert_eq!(stats.take_recent_end_to_end().map(|h| h.len()), Some(1));
        assert_eq!(stats.take_recent_end_to_end().map(|h| h.len()), Some(0));
        assert_eq!(stats.summary(Latency::EndToEnd).count, 1);
        let plain = Stats::default();
        plain.record(Latency::EndToEnd, Duration::from_millis(3));
        assert!(plain.take_recent_end_to_end().is_none());
    }

    #[test]
    fn an_empty_histogram_summarises_to_zero() {
        assert_eq!(
            Stats::default().summary(Latency::Publish),
            Summary::default()
        );
    }

    #[test]
    fn out_of_range_values_are_clamped_not_dropped() {
        let stats = Stats::default();
        stats.record(Latency::ScheduleLag, Duration::ZERO);
        stats.record(Latency::ScheduleLag, Duration::from_secs(7200));
        assert_eq!(stats.summary(Latency::ScheduleLag).count, 2);
    }
}
