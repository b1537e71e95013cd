//! The run seen while it goes on: a snapshot a few times a second for the
//! status line, the metrics and the recovery tracker, and the figures
//! `abort_on` checks use. Loss and pending are only known at the end, so
//! here pending is the unresolved backlog and lost is 0.

use std::time::{Duration, Instant};

use super::Experiment;
use crate::criteria::{Figure, Figures, Kind};
use crate::ledger::{Ledger, Live};
use crate::progress::Snapshot;
use crate::stats::{Latency, Stats};

pub struct LiveFigures<'a> {
    pub ledger: &'a Ledger,
    pub stats: &'a Stats,
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub garbage_sent: u64,
    /// Recovery time so far, failures during faults, a stuck consumer.
    pub faults: crate::recovery::FaultFigures,
}

impl LiveFigures<'_> {
    fn count(&self, name: &str) -> Option<u64> {
        let live = &self.ledger.live;
        let get = Live::get;
        Some(match name {
            "scheduled" => get(&live.scheduled),
            "published" => get(&live.published),
            "deduplicated" => get(&live.deduplicated),
            "publish_failed" => get(&live.publish_failed),
            "indeterminate" => get(&live.indeterminate),
            "processed" => get(&live.processed),
            "dead_lettered" => get(&live.dead_lettered),
            "pending" => self.ledger.unresolved_count() as u64,
            "unexpected" => get(&live.unexpected),
            "collisions" => get(&live.collisions),
            "intended_out_of_range" => get(&live.intended_out_of_range),
            "duplicates" => get(&live.duplicates),
            "stream_duplicates" => get(&live.stream_duplicates),
            "redelivered" => get(&live.redelivered),
            "retries" => get(&live.retries),
            "held_back" => get(&live.held_back),
            "garbage_sent" => self.garbage_sent,
            "not_sent" | "lost" | "lost_mid_run" | "lost_tail" | "recovered" => 0,
            _ => return None,
        })
    }

    pub fn success_rate(&self) -> f64 {
        let live = &self.ledger.live;
        let scheduled = Live::get(&live.scheduled);
        if scheduled == 0 {
            return 0.0;
        }
        Live::get(&live.processed) as f64 / scheduled as f64
    }
}

impl Figures for LiveFigures<'_> {
    fn figure(&self, name: &str) -> Option<Figure> {
        let scheduled = Some(Live::get(&self.ledger.live.scheduled) as f64);
        if let Some(count) = self.count(name) {
            return Some(Figure {
                value: count as f64,
                kind: Kind::Count,
                base: scheduled,
            });
        }
        if let Some(figure) = self.faults.figure(name, scheduled) {
            return Some(figure);
        }
        let (value, kind, base) = match name {
            "success_rate" => (self.success_rate(), Kind::Ratio, None),
            "target_rate" => (self.target_rate, Kind::Rate, Some(self.target_rate)),
            "achieved_rate" => (self.achieved_rate, Kind::Rate, Some(self.target_rate)),
            _ => {
                let (histogram, stat) = name.split_once('.')?;
                let which = Latency::ALL.into_iter().find(|l| l.name() == histogram)?;
                let value = self.stats.summary(which).stat(stat)?;
                let kind = if stat == "count" {
                    Kind::Count
                } else {
                    Kind::Latency
                };
                (value, kind, if stat == "count" { scheduled } else { None })
            }
        };
        Some(Figure { value, kind, base })
    }
}

impl Experiment {
    pub(super) fn live_figures(&self, target_rate: f64, achieved_rate: f64) -> LiveFigures<'_> {
        LiveFigures {
            ledger: &self.ledger,
            stats: &self.stats,
            target_rate,
            achieved_rate,
            garbage_sent: self.garbage_sent.load(std::sync::atomic::Ordering::Relaxed),
            faults: self
                .tracker()
                .figures(self.start.instant.elapsed().as_secs_f64(), false),
        }
    }

    pub(super) async fn snapshot(&self, phase: &'static str, rate: &mut RateMeter) -> Snapshot {
        // Ask the server first, so the counters below are read together; a
        // server cut off by a fault must not hold up the run's ticks.
        let info = tokio::time::timeout(Duration::from_secs(1), self.consumer.get_info())
            .await
            .ok()
            .and_then(Result::ok);
        let backlog = info
            .as_ref()
            .map(|i| i.num_pending + i.num_ack_pending as u64);
        let live = &self.ledger.live;
        let elapsed = self.start.instant.elapsed();
        self.track(elapsed, info.as_ref());
        let sent = Live::get(&live.sent);
        let snapshot = Snapshot {
            phase,
            elapsed,
            total: self.profile.duration(),
            sent,
            published: Live::get(&live.published),
            processed: Live::get(&live.processed),
            dead_lettered: Live::get(&live.dead_lettered),
            failed: Live::get(&live.publish_failed) + Live::get(&live.indeterminate),
            in_flight: self.publisher.in_flight() as u64,
            backlog,
            rate: rate.update(sent),
            target_rate: self.profile.rate_at(elapsed),
            end_to_end_p99_ms: self.stats.summary(Latency::EndToEnd).p99,
            success_rate: self.live_figures(0.0, 0.0).success_rate(),
            faults: self
                .tracker()
                .active()
                .into_iter()
                .filter_map(|i| self.config.scenario.faults.get(i))
                .map(|f| f.kind.name())
                .collect(),
        };
        self.record_series(elapsed, false, backlog);
        let figures = self.live_figures(snapshot.target_rate, snapshot.rate);
        self.telemetry
            .faults(&figures.faults, self.proxy.as_deref());
        let so_far: Vec<_> = self.criteria.iter().map(|c| c.evaluate(&figures)).collect();
        self.telemetry.tick(
            &self.ledger,
            &snapshot,
            info.as_ref(),
            &self.connections,
            &so_far,
        );
        snapshot
    }
}

impl Experiment {
    /// A look for the time series at `elapsed`; `last` takes the final point.
    pub(super) fn record_series(&self, elapsed: Duration, last: bool, backlog: Option<u64>) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.observe(elapsed.as_secs_f64(), last, |histograms| {
            let live = &self.ledger.live;
            let totals = crate::series::Totals {
                intended: self.profile.events_by(elapsed),
                sent: Live::get(&live.sent),
                published: Live::get(&live.published),
                processed: Live::get(&live.processed),
            };
            for (which, into) in Latency::ALL.iter().zip(histograms) {
                self.stats.snapshot_into(*which, into);
            }
            (totals, backlog, self.publisher.in_flight() as u64)
        });
    }
}

/// Events per second between two looks.
#[derive(Debug, Default)]
pub(super) struct RateMeter {
    last: Option<(Instant, u64)>,
    rate: f64,
}

impl RateMeter {
    pub(super) fn update(&mut self, count: u64) -> f64 {
        let now = Instant::now();
        match self.last {
            Some((at, before)) if now.duration_since(at) >= Duration::from_secs(1) => {
                self.rate = (count - before) as f64 / now.duration_since(at).as_secs_f64();
                self.last = Some((now, count));
            }
            None => self.last = Some((now, count)),
            _ => {}
        }
        self.rate
    }
}
