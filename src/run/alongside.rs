//! What runs alongside the load: the fault timeline, foreign input, and the
//! recovery tracker that judges what the faults cost.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Experiment;
use crate::ledger::{Ledger, Live};
use crate::recovery::{self, Tracker};

impl Experiment {
    /// Foreign input into the load subject for as long as the load runs.
    pub(super) fn start_garbage(
        &self,
        stop: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<Option<()>>> {
        let garbage = self.config.scenario.load.garbage.clone()?;
        let client = self.target.garbage_client.as_ref()?.0.clone();
        let subject = self.config.scenario.load.subject.clone();
        let sent = self.books.garbage_sent.clone();
        let task = crate::garbage::throw(client, subject, garbage, self.config.seed, sent, stop);
        Some(tokio::spawn(
            self.books.panics.clone().guard_owned("garbage", task),
        ))
    }

    /// The fault timeline, from the start of the load, if there is one.
    pub(super) fn start_faults(
        &self,
        stop: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<Option<Vec<crate::faults::Applied>>>> {
        let faults = self.plan.faults.clone();
        if faults.is_empty() {
            return None;
        }
        let targets = crate::faults::Targets {
            cluster: self.target.cluster.clone(),
            consumer: self.actors.under_test.clone(),
            stream: Some(self.target.provisioned.stream.clone()),
            proxy: self.target.proxy.clone(),
        };
        let shown = self.telemetry.fault_watcher(&faults);
        let start = self.start.instant;
        let (tracker, ledger) = (self.books.recovery.clone(), self.books.ledger.clone());
        let watcher: crate::faults::Watcher = Arc::new(move |index, active| {
            shown(index, active);
            let at = start.elapsed().as_secs_f64();
            let mut tracker = tracker.lock().unwrap_or_else(|p| p.into_inner());
            if active {
                tracker.fault_started(index, at, publish_counters(&ledger));
            } else {
                tracker.fault_ended(index, at);
            }
        });
        let task = crate::faults::run_timeline(faults, targets, start, stop, watcher);
        Some(tokio::spawn(
            self.books
                .panics
                .clone()
                .guard_owned("fault timeline", task),
        ))
    }

    pub(super) fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.books
            .recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// One look for the recovery tracker, with the consumer as the server
    /// sees it (None when the server did not answer).
    pub(super) fn track(
        &self,
        elapsed: Duration,
        info: Option<&async_nats::jetstream::consumer::Info>,
    ) {
        let max_ack_pending = self.config.scenario.consumer.max_ack_pending;
        let tick = recovery::Tick {
            at: elapsed.as_secs_f64(),
            expected: self.profile.events_by(elapsed.min(self.profile.duration())),
            counters: publish_counters(&self.books.ledger),
            end_to_end: self.books.stats.take_recent_end_to_end(),
            deliveries: Live::get(&self.books.ledger.live.deliveries)
                + Live::get(&self.books.ledger.live.unexpected),
            busy: self.actors.under_test.busy(),
            server: info.map(|i| recovery::ServerView {
                num_pending: i.num_pending,
                at_ack_limit: max_ack_pending > 0 && i.num_ack_pending as i64 >= max_ack_pending,
            }),
        };
        self.tracker().tick(tick);
    }
}

fn publish_counters(ledger: &Ledger) -> recovery::Counters {
    let live = &ledger.live;
    recovery::Counters {
        published: Live::get(&live.published),
        publish_failed: Live::get(&live.publish_failed),
        indeterminate: Live::get(&live.indeterminate),
    }
}
