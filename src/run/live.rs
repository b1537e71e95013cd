//! The run seen while it goes on: a snapshot a few times a second for the
//! status line, the metrics and the recovery tracker, and the figures
//! `abort_on` checks use. Loss and pending are only known at the end, so
//! here pending is the unresolved backlog and lost is 0.

use std::time::{Duration, Instant};

use super::Experiment;
use crate::figures::Figures;
use crate::ledger::Live;
use crate::progress::Snapshot;
use crate::stats::Latency;

impl Experiment {
    /// The figures as they stand now, for `abort_on`, the live verdict
    /// gauges and the metrics.
    pub(super) fn figures(&self, target_rate: f64, achieved_rate: f64) -> Figures {
        let counts = self.books.ledger.live_counts();
        Figures {
            success_rate: Figures::success_rate_of(&counts),
            counts,
            garbage_sent: self
                .books
                .garbage_sent
                .load(std::sync::atomic::Ordering::Relaxed),
            faults: self
                .tracker()
                .figures(self.start.instant.elapsed().as_secs_f64(), false),
            target_rate,
            achieved_rate,
            latency: self.books.stats.summaries(),
        }
    }

    /// A look at the run: the status line's snapshot and the figures.
    pub(super) async fn snapshot(
        &self,
        phase: &'static str,
        rate: &mut RateMeter,
    ) -> (Snapshot, Figures) {
        // Ask the server first, so the counters below are read together; a
        // server cut off by a fault must not hold up the run's ticks.
        let info = tokio::time::timeout(Duration::from_secs(1), self.target.durable.get_info())
            .await
            .ok()
            .and_then(Result::ok);
        let backlog = info
            .as_ref()
            .map(|i| i.num_pending + i.num_ack_pending as u64);
        let live = &self.books.ledger.live;
        let elapsed = self.start.instant.elapsed();
        self.track(elapsed, info.as_ref());
        let sent = Live::get(&live.sent);
        let achieved = rate.update(sent);
        let target_rate = self.profile.rate_at(elapsed);
        let figures = self.figures(target_rate, achieved);
        let snapshot = Snapshot {
            phase,
            elapsed,
            total: self.profile.duration(),
            sent,
            published: figures.counts.published,
            processed: figures.counts.processed,
            dead_lettered: figures.counts.dead_lettered,
            failed: figures.counts.publish_failed + figures.counts.indeterminate,
            in_flight: self.actors.publisher.in_flight() as u64,
            backlog,
            rate: achieved,
            target_rate,
            end_to_end_p99_ms: figures.latency[Latency::EndToEnd.name()].p99,
            success_rate: figures.success_rate,
            faults: self
                .tracker()
                .active()
                .into_iter()
                .filter_map(|i| self.plan.faults.get(i))
                .map(|f| f.action.name())
                .collect(),
        };
        self.record_series(elapsed, false, backlog);
        self.telemetry
            .faults(&figures.faults, self.target.proxy.as_deref());
        let so_far: Vec<_> = self
            .plan
            .every_criterion()
            .map(|c| c.evaluate(&figures))
            .collect();
        self.telemetry.tick(
            &self.books.ledger,
            &figures,
            &snapshot,
            info.as_ref(),
            &self.target.connections,
            &so_far,
        );
        (snapshot, figures)
    }
}

impl Experiment {
    /// A look for the time series at `elapsed`; `last` takes the final point.
    pub(super) fn record_series(&self, elapsed: Duration, last: bool, backlog: Option<u64>) {
        let mut series = self.books.series.lock().unwrap_or_else(|p| p.into_inner());
        series.observe(elapsed.as_secs_f64(), last, |histograms| {
            let live = &self.books.ledger.live;
            let totals = crate::series::Totals {
                intended: self.profile.events_by(elapsed),
                sent: Live::get(&live.sent),
                published: Live::get(&live.published),
                processed: Live::get(&live.processed),
            };
            for (which, into) in Latency::ALL.iter().zip(histograms) {
                self.books.stats.snapshot_into(*which, into);
            }
            (totals, backlog, self.actors.publisher.in_flight() as u64)
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
