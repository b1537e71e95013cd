//! The publisher: sends the schedule to JetStream, awaits PubAcks without
//! holding up the schedule, retries with backoff, and classifies each event.
//!
//! Open model (DESIGN.md): event i is due at start + offset(i) whatever the
//! acks are doing. Each event gets its own task, so slow acks never delay
//! later sends; `max_in_flight` bounds how many wait at once, and a send it
//! holds back is counted and shows up as schedule lag.
//!
//! Why events fail is told at warn, grouped by cause ([`failures`]).

mod failures;
mod pace;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::event::{self, PayloadBuilder};
use crate::ledger::{Ledger, Live};
use crate::panics::Panics;
use crate::scenario::Scenario;
use crate::schedule::Schedule;
use crate::stats::{Latency, Stats};
use crate::{backoff, scenario};
use failures::{Cause, FailureLog, Outcome};

/// How the last attempt of an event ended, when it did not end in a PubAck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The server said no, or the message never left: it is not stored.
    Definite,
    /// No answer in time, or the connection broke after the send.
    Unknown,
}

fn classify(kind: &PublishErrorKind) -> Failure {
    match kind {
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => Failure::Unknown,
        _ => Failure::Definite,
    }
}

/// Everything one event's task needs, shared by all of them.
struct Shared {
    js: Context,
    ledger: Arc<Ledger>,
    stats: Arc<Stats>,
    subject: String,
    publish: scenario::Publish,
    payloads: PayloadBuilder,
    stop: CancellationToken,
    panics: Panics,
    failures: FailureLog,
}

/// Sends the schedule and waits for what it sent.
pub struct Publisher {
    shared: Arc<Shared>,
    max_in_flight: usize,
    seed: u64,
    tasks: TaskTracker,
}

/// When the run started, on both clocks: the monotonic one for scheduling
/// and the wall clock that event headers carry.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub instant: Instant,
    pub wall: SystemTime,
}

impl Publisher {
    /// `stop` ends everything, retries included (an interrupt's short drain).
    pub fn new(
        js: Context,
        scenario: &Scenario,
        ledger: Arc<Ledger>,
        stats: Arc<Stats>,
        seed: u64,
        stop: CancellationToken,
        panics: Panics,
    ) -> Publisher {
        Publisher {
            shared: Arc::new(Shared {
                js,
                ledger,
                stats,
                subject: scenario.load.subject.clone(),
                publish: scenario.publish.clone(),
                payloads: PayloadBuilder::new(&scenario.load.payload),
                stop,
                panics,
                failures: FailureLog::new(failures::EVERY),
            }),
            max_in_flight: scenario.load.max_in_flight,
            seed,
            tasks: TaskTracker::new(),
        }
    }

    /// Publish tasks still running (awaiting acks or backing off).
    pub fn in_flight(&self) -> usize {
        self.tasks.len()
    }

    /// Runs the schedule until it ends or `schedule_stop` fires, then returns;
    /// publishes already sent go on until `wait` or the shared stop.
    ///
    /// This is the pacer, and it runs on a thread of its own (call it from
    /// `spawn_blocking`): tokio's timer ticks in whole milliseconds, while a
    /// thread's sleep wakes within tens of microseconds, and a short spin
    /// covers the rest ([`pace`]). Each event's publish is then a task on
    /// `runtime`.
    pub fn run_schedule(
        &self,
        schedule: Schedule,
        start: Start,
        schedule_stop: CancellationToken,
        runtime: Handle,
    ) {
        let permits = Arc::new(Semaphore::new(self.max_in_flight));
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut pacer = pace::Pacer::new();
        let end = crate::clock::after(start.instant, schedule.profile().duration());
        for (seq, offset) in schedule {
            let due = crate::clock::after(start.instant, offset);
            if !pacer.wait_until(due, &schedule_stop) {
                break;
            }
            self.shared.ledger.schedule(seq);
            let permit = match permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    self.shared.ledger.held_back();
                    let acquired = runtime.block_on(async {
                        tokio::select! {
                            permit = permits.clone().acquire_owned() => permit.ok(),
                            _ = schedule_stop.cancelled() => None,
                        }
                    });
                    match acquired {
                        Some(permit) => permit,
                        None => break,
                    }
                }
            };
            self.shared.stats.record(
                Latency::ScheduleLag,
                Instant::now().saturating_duration_since(due),
            );
            let shared = self.shared.clone();
            let intended_wall = start.wall.checked_add(offset).unwrap_or(start.wall);
            let jitter_seed = rng.random();
            self.tasks.spawn_on(
                async move {
                    let task = publish_one(&shared, seq, due, intended_wall, jitter_seed);
                    shared.panics.guard("publish", task).await;
                    drop(permit);
                },
                &runtime,
            );
        }
        // The load lasts the profile's whole duration, not until its last
        // event: N events at R/s take N/R seconds, and the rates say so.
        pacer.wait_until(end, &schedule_stop);
    }

    /// Waits for every publish task to finish, then tells the failures
    /// not logged yet.
    pub async fn wait(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        for line in self.shared.failures.flush() {
            line.log();
        }
    }
}

/// One event: attempts until a PubAck, a definite failure, or retries run out.
async fn publish_one(
    shared: &Shared,
    seq: u64,
    due: Instant,
    intended_wall: SystemTime,
    jitter_seed: u64,
) {
    let ledger = &shared.ledger;
    let event_id = ledger.event_id(seq);
    let mut rng = StdRng::seed_from_u64(jitter_seed);
    let message = PublishMessage::build()
        .payload(
            shared
                .payloads
                .build(&event_id, seq, intended_wall, &mut rng),
        )
        .headers(event::headers(&event_id, intended_wall, &ledger.signer));
    ledger.sent(seq);
    let mut failure = Failure::Unknown;
    let mut cause = Cause::Stopped;
    for attempt in 0..=shared.publish.max_retries {
        if attempt > 0 {
            ledger.retried();
            let delay = backoff::delay(&shared.publish.backoff, attempt, &mut rng);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shared.stop.cancelled() => break,
            }
        }
        let sent_at = Instant::now();
        let deadline =
            tokio::time::Instant::from_std(crate::clock::after(sent_at, shared.publish.timeout));
        let attempt_result = tokio::select! {
            result = tokio::time::timeout_at(deadline, send(shared, message.clone())) => {
                result.unwrap_or(Err(PublishErrorKind::TimedOut))
            }
            _ = shared.stop.cancelled() => break,
        };
        match attempt_result {
            Ok(ack) => {
                Live::add(&ledger.live.attempts_acked);
                let now = Instant::now();
                shared.stats.record(Latency::PublishAttempt, now - sent_at);
                if attempt == 0 && ack.duplicate {
                    collided(shared, seq, &event_id);
                    return;
                }
                shared
                    .stats
                    .record(Latency::Publish, now.saturating_duration_since(due));
                ledger.published(seq, ack.sequence, ack.duplicate);
                return;
            }
            Err(kind) => {
                let live = &ledger.live;
                Live::add(if kind == PublishErrorKind::TimedOut {
                    &live.attempts_timed_out
                } else {
                    &live.attempts_failed
                });
                failure = classify(&kind);
                cause = Cause::Error(kind);
                tracing::debug!(event_id = %event_id, attempt, error = %kind, "publish attempt failed");
                if failure == Failure::Definite && !retryable(&kind) {
                    break;
                }
            }
        }
    }
    let outcome = match failure {
        Failure::Definite => {
            ledger.publish_failed(seq);
            Outcome::Failed
        }
        Failure::Unknown => {
            ledger.indeterminate(seq);
            Outcome::Indeterminate
        }
    };
    let now = Instant::now();
    if let Some(line) = shared.failures.note(outcome, cause, &event_id, now) {
        line.log();
    }
}

/// Nothing of this run was sent under this id before its first attempt, so
/// a duplicate answer means somebody else stored that id first.
fn collided(shared: &Shared, seq: u64, event_id: &str) {
    shared.ledger.collided(seq);
    let line = shared
        .failures
        .note(Outcome::Failed, Cause::Collision, event_id, Instant::now());
    if let Some(line) = line {
        line.log();
    }
}

/// Some definite failures will not change on a retry.
fn retryable(kind: &PublishErrorKind) -> bool {
    !matches!(kind, PublishErrorKind::MaxPayloadExceeded)
}

async fn send(
    shared: &Shared,
    message: PublishMessage,
) -> Result<async_nats::jetstream::publish::PublishAck, PublishErrorKind> {
    let future = shared
        .js
        .send_publish(shared.subject.clone(), message)
        .await
        .map_err(|e| e.kind())?;
    future.await.map_err(|e| e.kind())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_broken_connections_are_indeterminate() {
        assert_eq!(classify(&PublishErrorKind::TimedOut), Failure::Unknown);
        assert_eq!(classify(&PublishErrorKind::BrokenPipe), Failure::Unknown);
        assert_eq!(
            classify(&PublishErrorKind::StreamNotFound),
            Failure::Definite
        );
        assert_eq!(
            classify(&PublishErrorKind::MaxPayloadExceeded),
            Failure::Definite
        );
        assert!(!retryable(&PublishErrorKind::MaxPayloadExceeded));
        assert!(retryable(&PublishErrorKind::StreamNotFound));
    }
}
