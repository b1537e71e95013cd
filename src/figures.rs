//! The figures of a run: one typed snapshot, and the one catalogue that
//! names them.
//!
//! A [`Figures`] is what the run knows at one moment: live, a few times a
//! second (pending is the unresolved backlog, and what only the end can
//! know, such as lost, is 0), or final, from the closed books. The same
//! snapshot feeds the criteria (`checks` at the end, `abort_on` live), the
//! report and the live metrics. [`CATALOGUE`] is the only place a figure is
//! named: a new figure is one row there, reading a field of the snapshot.

use std::collections::BTreeMap;
use std::fmt;

use crate::ledger::Accounting;
use crate::recovery::FaultFigures;
use crate::stats::Summary;

/// What a figure measures, which decides the units its thresholds accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Events or deliveries; `%` is a share of the scheduled total.
    Count,
    /// A ratio between 0 and 1; `%` divides by 100.
    Ratio,
    /// Events per second; `%` is a share of the target rate.
    Rate,
    /// Milliseconds; accepts time units, never `%`.
    Latency,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Count => "a count",
            Kind::Ratio => "a ratio",
            Kind::Rate => "a rate",
            Kind::Latency => "a latency",
        })
    }
}

/// One figure's value, as criteria compare it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figure {
    pub value: f64,
    pub kind: Kind,
    /// What 100% means: for a Count the scheduled total, for a Rate the
    /// target rate; None for the others.
    pub base: Option<f64>,
}

/// Everything a run measured at one moment.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// The accounting table; live, the end-only counts are 0.
    pub counts: Accounting,
    pub garbage_sent: u64,
    /// Recovery time, failures during faults, a stuck consumer.
    pub faults: FaultFigures,
    /// Processed over scheduled, 0 to 1.
    pub success_rate: f64,
    /// Events per second.
    pub target_rate: f64,
    pub achieved_rate: f64,
    /// Each latency's summary, in milliseconds, by its name.
    pub latency: BTreeMap<String, Summary>,
}

/// Where a figure is also exported to Prometheus, as a counter.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    /// A label that tells this figure from others in the same metric.
    pub label: Option<(&'static str, &'static str)>,
}

/// A named figure of the catalogue.
#[derive(Clone, Copy)]
pub struct Named {
    pub name: &'static str,
    pub kind: Kind,
    pub read: fn(&Figures) -> f64,
    pub metric: Option<Metric>,
}

const fn count(name: &'static str, read: fn(&Figures) -> f64, metric: &'static str) -> Named {
    Named {
        name,
        kind: Kind::Count,
        read,
        metric: Some(Metric {
            name: metric,
            label: None,
        }),
    }
}

const fn labelled(named: Named, label: (&'static str, &'static str)) -> Named {
    let Some(metric) = named.metric else {
        return named;
    };
    Named {
        metric: Some(Metric {
            label: Some(label),
            ..metric
        }),
        ..named
    }
}

const fn plain(name: &'static str, kind: Kind, read: fn(&Figures) -> f64) -> Named {
    Named {
        name,
        kind,
        read,
        metric: None,
    }
}

/// Every figure with a name of its own, in the order the criteria's help
/// lists them: the accounting table (DESIGN.md) first. The latencies are
/// `<histogram>.<stat>`, from [`HISTOGRAMS`] and [`STATS`].
#[rustfmt::skip]
pub const CATALOGUE: &[Named] = &[
    count("scheduled", |f| f.counts.scheduled as f64, "harness_events_scheduled_total"),
    count("published", |f| f.counts.published as f64, "harness_events_published_total"),
    count("deduplicated", |f| f.counts.deduplicated as f64, "harness_events_deduplicated_total"),
    count("publish_failed", |f| f.counts.publish_failed as f64, "harness_events_publish_failed_total"),
    count("indeterminate", |f| f.counts.indeterminate as f64, "harness_events_indeterminate_total"),
    count("not_sent", |f| f.counts.not_sent as f64, "harness_events_not_sent_total"),
    count("processed", |f| f.counts.processed as f64, "harness_events_processed_total"),
    count("dead_lettered", |f| f.counts.dead_lettered as f64, "harness_events_dead_lettered_total"),
    plain("pending", Kind::Count, |f| f.counts.pending as f64),
    plain("lost", Kind::Count, |f| f.counts.lost as f64),
    labelled(count("lost_mid_run", |f| f.counts.lost_mid_run as f64, "harness_events_lost_total"), ("position", "mid_run")),
    labelled(count("lost_tail", |f| f.counts.lost_tail as f64, "harness_events_lost_total"), ("position", "tail")),
    count("recovered", |f| f.counts.recovered as f64, "harness_events_recovered_total"),
    count("unexpected", |f| f.counts.unexpected as f64, "harness_events_unexpected_total"),
    count("collisions", |f| f.counts.collisions as f64, "harness_events_collisions_total"),
    count("intended_out_of_range", |f| f.counts.intended_out_of_range as f64, "harness_events_intended_out_of_range_total"),
    count("duplicates", |f| f.counts.duplicates as f64, "harness_events_duplicates_total"),
    count("stream_duplicates", |f| f.counts.stream_duplicates as f64, "harness_events_stream_duplicates_total"),
    count("redelivered", |f| f.counts.redelivered as f64, "harness_redeliveries_total"),
    count("retries", |f| f.counts.retries as f64, "harness_publish_retries_total"),
    count("held_back", |f| f.counts.held_back as f64, "harness_events_held_back_total"),
    plain("exhausted", Kind::Count, |f| f.counts.exhausted as f64),
    plain("outputs", Kind::Count, |f| f.counts.outputs as f64),
    plain("output_duplicates", Kind::Count, |f| f.counts.output_duplicates as f64),
    plain("output_corrupt", Kind::Count, |f| f.counts.output_corrupt as f64),
    plain("output_missing", Kind::Count, |f| f.counts.output_missing as f64),
    plain("garbage_sent", Kind::Count, |f| f.garbage_sent as f64),
    plain("faults_unrecovered", Kind::Count, |f| f.faults.unrecovered as f64),
    plain("fault_publish_failed", Kind::Count, |f| f.faults.publish_failed as f64),
    plain("fault_indeterminate", Kind::Count, |f| f.faults.indeterminate as f64),
    plain("consumer_stuck", Kind::Count, |f| f.faults.consumer_stuck as f64),
    plain("success_rate", Kind::Ratio, |f| f.success_rate),
    plain("target_rate", Kind::Rate, |f| f.target_rate),
    plain("achieved_rate", Kind::Rate, |f| f.achieved_rate),
    plain("recovery_time", Kind::Latency, |f| f.faults.recovery_ms),
];

/// Latency histograms criteria can name; each has the statistics in
/// [`STATS`] plus `count`.
pub const HISTOGRAMS: &[&str] = &["publish", "end_to_end", "processing", "schedule_lag"];

/// Latency statistics of a histogram, in milliseconds.
pub const STATS: &[&str] = &["min", "mean", "p50", "p90", "p99", "p999", "max"];

/// The kind of a catalogued figure name; None for unknown names.
pub fn kind_of(name: &str) -> Option<Kind> {
    if let Some(named) = CATALOGUE.iter().find(|n| n.name == name) {
        return Some(named.kind);
    }
    let (histogram, stat) = name.split_once('.')?;
    if !HISTOGRAMS.contains(&histogram) {
        return None;
    }
    match stat {
        "count" => Some(Kind::Count),
        _ if STATS.contains(&stat) => Some(Kind::Latency),
        _ => None,
    }
}

/// Every catalogued figure name.
pub fn names() -> impl Iterator<Item = String> {
    let plain = CATALOGUE.iter().map(|n| n.name.to_string());
    let latencies = HISTOGRAMS.iter().flat_map(|h| {
        STATS
            .iter()
            .chain(&["count"])
            .map(move |s| format!("{h}.{s}"))
    });
    plain.chain(latencies)
}

impl Figures {
    /// A figure by its name; None for a name outside the catalogue, or a
    /// latency without a summary.
    pub fn get(&self, name: &str) -> Option<Figure> {
        let (value, kind) = match CATALOGUE.iter().find(|n| n.name == name) {
            Some(named) => ((named.read)(self), named.kind),
            None => {
                let kind = kind_of(name)?;
                let (histogram, stat) = name.split_once('.')?;
                (self.latency.get(histogram)?.stat(stat)?, kind)
            }
        };
        let base = match kind {
            Kind::Count => Some(self.counts.scheduled as f64),
            Kind::Rate => Some(self.target_rate),
            Kind::Ratio | Kind::Latency => None,
        };
        Some(Figure { value, kind, base })
    }

    /// Processed over scheduled; 0 before anything was scheduled.
    pub fn success_rate_of(counts: &Accounting) -> f64 {
        if counts.scheduled == 0 {
            0.0
        } else {
            counts.processed as f64 / counts.scheduled as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_figure_reads_its_own_field() {
        let figures = Figures {
            counts: Accounting {
                scheduled: 1000,
                lost_tail: 7,
                held_back: 3,
                ..Accounting::default()
            },
            garbage_sent: 5,
            faults: FaultFigures {
                recovery_ms: 2500.0,
                consumer_stuck: 1,
                ..FaultFigures::default()
            },
            success_rate: 0.5,
            target_rate: 100.0,
            achieved_rate: 99.0,
            latency: BTreeMap::from([(
                "publish".to_string(),
                Summary {
                    count: 10,
                    p99: 4.5,
                    ..Summary::default()
                },
            )]),
        };
        let value = |name: &str| figures.get(name).map(|f| (f.value, f.kind, f.base));
        let scheduled = Some(1000.0);
        assert_eq!(value("scheduled"), Some((1000.0, Kind::Count, scheduled)));
        assert_eq!(value("lost_tail"), Some((7.0, Kind::Count, scheduled)));
        assert_eq!(value("held_back"), Some((3.0, Kind::Count, scheduled)));
        assert_eq!(value("lost"), Some((0.0, Kind::Count, scheduled)));
        assert_eq!(value("garbage_sent"), Some((5.0, Kind::Count, scheduled)));
        assert_eq!(value("consumer_stuck"), Some((1.0, Kind::Count, scheduled)));
        assert_eq!(value("recovery_time"), Some((2500.0, Kind::Latency, None)));
        assert_eq!(value("success_rate"), Some((0.5, Kind::Ratio, None)));
        assert_eq!(
            value("achieved_rate"),
            Some((99.0, Kind::Rate, Some(100.0)))
        );
        assert_eq!(value("publish.p99"), Some((4.5, Kind::Latency, None)));
        assert_eq!(value("publish.count"), Some((10.0, Kind::Count, scheduled)));
        // Catalogued, but no summary was taken: not available.
        assert_eq!(value("end_to_end.p99"), None);
        assert_eq!(value("publish_attempt.p99"), None);
        assert_eq!(value("nothing"), None);
    }

    #[test]
    fn names_are_unique_and_every_metric_is_in_the_metrics_catalogue() {
        let all: Vec<String> = names().collect();
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        for named in CATALOGUE {
            if let Some(metric) = named.metric {
                let described = crate::metrics::CATALOGUE
                    .iter()
                    .find(|d| d.name == metric.name)
                    .unwrap_or_else(|| panic!("{} is not in metrics::CATALOGUE", metric.name));
                assert_eq!(
                    described.kind,
                    crate::metrics::Type::Counter,
                    "{}",
                    metric.name
                );
                let labels: Vec<&str> = metric.label.iter().map(|(k, _)| *k).collect();
                assert_eq!(described.labels, labels.as_slice(), "{}", metric.name);
            }
        }
    }
}
