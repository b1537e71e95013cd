//! The publisher: sends the schedule to JetStream, awaits PubAcks without
//! holding up the schedule, retries with backoff, and classifies each event.
//!
//! Open model (DESIGN.md): event i is due at start + offset(i) whatever the
//! acks are doing. The hot path is a pipeline with no task per event:
//!
//! 1. the pacer ([`Publisher::run_schedule`], a thread of its own) waits
//!    until events are due and hands what is due at each wake-up, as one
//!    burst, to
//! 2. the sender ([`pipeline`]), one task that sends each burst in order
//!    and keeps the PubAck futures in one set, settling each event as its
//!    answer comes;
//! 3. an event whose attempt failed goes to the side path ([`retry`]), a
//!    task of its own that backs off and tries again under the same
//!    `Nats-Msg-Id`.
//!
//! `max_in_flight` bounds the events between being due and being settled;
//! a due event it holds back is counted and shows up as schedule lag.
//!
//! Why events fail is told at warn, grouped by cause ([`failures`]).

mod failures;
mod pace;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
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

/// What the publisher's tasks share.
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
    /// One per event between being due and being settled.
    permits: Arc<Semaphore>,
    seed: u64,
    /// The sender and the retries.
    tasks: TaskTracker,
}

/// When the run started, on both clocks: the monotonic one for scheduling
/// and the wall clock that event headers carry.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub instant: Instant,
    pub wall: SystemTime,
}

/// An event the pacer found due, on its way to the sender.
struct Due {
    seq: u64,
    due: Instant,
    intended_wall: SystemTime,
    /// Seeds the event's payload and its retries' jitter.
    seed: u64,
    /// Its place among `max_in_flight`, given back when it is settled.
    permit: OwnedSemaphorePermit,
}

/// An event on its way: sent at least once, not settled yet.
struct Event {
    seq: u64,
    due: Instant,
    event_id: String,
    message: PublishMessage,
    rng: StdRng,
    _permit: OwnedSemaphorePermit,
}

/// How one attempt ended.
type Answer = Result<PublishAck, PublishErrorKind>;

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
        let max_in_flight = scenario.load.max_in_flight;
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
            max_in_flight,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            seed,
            tasks: TaskTracker::new(),
        }
    }

    /// Events due and not settled yet: being sent, awaiting their PubAck,
    /// or backing off.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight
            .saturating_sub(self.permits.available_permits())
    }

    /// Runs the schedule until it ends or `schedule_stop` fires, then returns;
    /// publishes already sent go on until `wait` or the shared stop.
    ///
    /// This is the pacer, and it runs on a thread of its own (call it from
    /// `spawn_blocking`): tokio's timer ticks in whole milliseconds, while a
    /// thread's sleep wakes within tens of microseconds ([`pace`]). What is
    /// due at one wake-up goes to the sender as one burst; each event's lag
    /// is measured from its own due time.
    pub fn run_schedule(
        &self,
        schedule: Schedule,
        start: Start,
        schedule_stop: CancellationToken,
        runtime: Handle,
    ) {
        let (bursts, receiver) = mpsc::unbounded_channel();
        let (shared, tasks) = (self.shared.clone(), self.tasks.clone());
        self.tasks.spawn_on(
            async move {
                let sender = pipeline(&shared, receiver, &tasks);
                shared.panics.guard("publish", sender).await;
            },
            &runtime,
        );
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut pacer = pace::Pacer::new();
        let at = |offset| crate::clock::after(start.instant, offset);
        let end = at(schedule.profile().duration());
        let mut schedule = schedule.peekable();
        let mut burst: Vec<Due> = Vec::new();
        'schedule: while let Some(first) = schedule.next() {
            if !pacer.wait_until(at(first.1), &schedule_stop) {
                break;
            }
            // This event, and every later one that is due by now.
            let mut next = Some(first);
            while let Some((seq, offset)) = next {
                let due = at(offset);
                self.shared.ledger.schedule(seq);
                let permit = match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        self.shared.ledger.held_back();
                        // What is due already goes first: it holds permits.
                        let _ = bursts.send(std::mem::take(&mut burst));
                        let permits = self.permits.clone();
                        let acquired = runtime.block_on(async {
                            tokio::select! {
                                permit = permits.acquire_owned() => permit.ok(),
                                _ = schedule_stop.cancelled() => None,
                            }
                        });
                        match acquired {
                            Some(permit) => permit,
                            None => break 'schedule,
                        }
                    }
                };
                self.shared.stats.record(
                    Latency::ScheduleLag,
                    Instant::now().saturating_duration_since(due),
                );
                burst.push(Due {
                    seq,
                    due,
                    intended_wall: start.wall.checked_add(offset).unwrap_or(start.wall),
                    seed: rng.random(),
                    permit,
                });
                next = schedule.next_if(|&(_, offset)| at(offset) <= Instant::now());
            }
            let _ = bursts.send(std::mem::take(&mut burst));
        }
        // The load lasts the profile's whole duration, not until its last
        // event: N events at R/s take N/R seconds, and the rates say so.
        pacer.wait_until(end, &schedule_stop);
    }

    /// Waits for the sender and every retry to finish, then tells the
    /// failures not logged yet.
    pub async fn wait(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        for line in self.shared.failures.flush() {
            line.log();
        }
    }
}

/// The sender: sends each burst in order, then settles each event as its
/// PubAck comes; a failed attempt goes to [`retry`] on `tasks`. Ends when
/// the pacer is done and every event it sent is answered, or at the stop.
async fn pipeline(
    shared: &Arc<Shared>,
    mut bursts: mpsc::UnboundedReceiver<Vec<Due>>,
    tasks: &TaskTracker,
) {
    // Events awaiting their first PubAck, by sequence; the set holds only
    // their answers' futures.
    let mut events: HashMap<u64, (Event, Instant)> = HashMap::new();
    let mut answers = FuturesUnordered::new();
    let mut open = true;
    while open || !answers.is_empty() {
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            burst = bursts.recv(), if open => {
                let Some(burst) = burst else {
                    open = false;
                    continue;
                };
                for due in burst {
                    // Stopped mid-burst: the rest stay unsent (not_sent).
                    if shared.stop.is_cancelled() {
                        break;
                    }
                    let event = prepare(shared, due);
                    // One deadline over the send and its PubAck, from now.
                    let sent_at = Instant::now();
                    let deadline = tokio::time::Instant::from_std(crate::clock::after(
                        sent_at,
                        shared.publish.timeout,
                    ));
                    let message = event.message.clone();
                    let sent = tokio::select! {
                        biased;
                        _ = shared.stop.cancelled() => {
                            // It may have left: it may be stored.
                            give_up(shared, &event, Failure::Unknown, Cause::Stopped);
                            break;
                        }
                        sent = tokio::time::timeout_at(deadline, shared.js.send_publish(shared.subject.clone(), message)) => sent,
                    };
                    match sent {
                        Ok(Ok(ack)) => {
                            let seq = event.seq;
                            events.insert(seq, (event, sent_at));
                            answers.push(async move {
                                let answer = match tokio::time::timeout_at(deadline, ack).await {
                                    Ok(answer) => answer.map_err(|e| e.kind()),
                                    Err(_) => Err(PublishErrorKind::TimedOut),
                                };
                                (seq, answer)
                            });
                        }
                        Ok(Err(e)) => settle(shared, tasks, event, sent_at, Err(e.kind())),
                        Err(_) => settle(shared, tasks, event, sent_at, Err(PublishErrorKind::TimedOut)),
                    }
                }
            }
            Some((seq, answer)) = answers.next(), if !answers.is_empty() => {
                if let Some((event, sent_at)) = events.remove(&seq) {
                    settle(shared, tasks, event, sent_at, answer);
                }
            }
        }
    }
    // Stopped: what was sent and not answered may or may not be stored.
    for (event, _) in events.into_values() {
        give_up(shared, &event, Failure::Unknown, Cause::Stopped);
    }
}

/// Builds the event's message; from here on it counts as sent.
fn prepare(shared: &Shared, due: Due) -> Event {
    let ledger = &shared.ledger;
    let event_id = ledger.event_id(due.seq);
    let mut rng = StdRng::seed_from_u64(due.seed);
    let payload = shared
        .payloads
        .build(&event_id, due.seq, due.intended_wall, &mut rng);
    let message = PublishMessage::build()
        .payload(payload)
        .headers(event::headers(&event_id, due.intended_wall, &ledger.signer));
    ledger.sent(due.seq);
    Event {
        seq: due.seq,
        due: due.due,
        event_id,
        message,
        rng,
        _permit: due.permit,
    }
}

/// Accounts for the first attempt's answer: a PubAck settles the event; a
/// failure goes to [`retry`] on `tasks` while retries are left and worth
/// it, else it ends the event as failed or indeterminate.
fn settle(
    shared: &Arc<Shared>,
    tasks: &TaskTracker,
    event: Event,
    sent_at: Instant,
    answer: Answer,
) {
    match answer {
        Ok(ack) => acked(shared, event, 0, sent_at, ack),
        Err(kind) => {
            attempt_failed(shared, &event, 0, kind);
            let failure = classify(&kind);
            let worth_it = failure == Failure::Unknown || retryable(&kind);
            if shared.publish.max_retries > 0 && worth_it {
                let shared = shared.clone();
                tasks.spawn(async move {
                    let task = retry(&shared, event, 1, kind);
                    shared.panics.guard("publish retry", task).await;
                });
            } else {
                give_up(shared, &event, failure, Cause::Error(kind));
            }
        }
    }
}

/// The side path: attempts from `first` on, each after its backoff, until
/// a PubAck, a definite failure, or retries run out.
async fn retry(shared: &Arc<Shared>, mut event: Event, first: u32, mut last: PublishErrorKind) {
    for attempt in first..=shared.publish.max_retries {
        shared.ledger.retried();
        let delay = backoff::delay(&shared.publish.backoff, attempt, &mut event.rng);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shared.stop.cancelled() => break,
        }
        let sent_at = Instant::now();
        let answer = tokio::select! {
            answer = send(shared, event.message.clone()) => answer,
            // Sent, and no answer: it may be stored.
            _ = shared.stop.cancelled() => {
                return give_up(shared, &event, Failure::Unknown, Cause::Stopped);
            }
        };
        match answer {
            Ok(ack) => return acked(shared, event, attempt, sent_at, ack),
            Err(kind) => {
                attempt_failed(shared, &event, attempt, kind);
                last = kind;
                if classify(&kind) == Failure::Definite && !retryable(&kind) {
                    break;
                }
            }
        }
    }
    give_up(shared, &event, classify(&last), Cause::Error(last));
}

/// A PubAck: the event is stored (or was, under its id, by an earlier
/// attempt of its own). Its permit goes back as it drops, after the books.
fn acked(shared: &Shared, event: Event, attempt: u32, sent_at: Instant, ack: PublishAck) {
    let ledger = &shared.ledger;
    Live::add(&ledger.live.attempts_acked);
    let now = Instant::now();
    shared.stats.record(Latency::PublishAttempt, now - sent_at);
    if attempt == 0 && ack.duplicate {
        // Nothing of this run was sent under this id before its first
        // attempt: somebody else stored that id first.
        ledger.collided(event.seq);
        return note(shared, Outcome::Failed, Cause::Collision, &event.event_id);
    }
    shared
        .stats
        .record(Latency::Publish, now.saturating_duration_since(event.due));
    ledger.published(event.seq, ack.sequence, ack.duplicate);
}

fn attempt_failed(shared: &Shared, event: &Event, attempt: u32, kind: PublishErrorKind) {
    let live = &shared.ledger.live;
    Live::add(if kind == PublishErrorKind::TimedOut {
        &live.attempts_timed_out
    } else {
        &live.attempts_failed
    });
    tracing::debug!(event_id = %event.event_id, attempt, error = %kind, "publish attempt failed");
}

/// Ends an event without a PubAck: failed if the last attempt was refused,
/// indeterminate if it went unanswered.
fn give_up(shared: &Shared, event: &Event, failure: Failure, cause: Cause) {
    let outcome = match failure {
        Failure::Definite => {
            shared.ledger.publish_failed(event.seq);
            Outcome::Failed
        }
        Failure::Unknown => {
            shared.ledger.indeterminate(event.seq);
            Outcome::Indeterminate
        }
    };
    note(shared, outcome, cause, &event.event_id);
}

fn note(shared: &Shared, outcome: Outcome, cause: Cause, event_id: &str) {
    if let Some(line) = shared
        .failures
        .note(outcome, cause, event_id, Instant::now())
    {
        line.log();
    }
}

/// Some definite failures will not change on a retry.
fn retryable(kind: &PublishErrorKind) -> bool {
    !matches!(kind, PublishErrorKind::MaxPayloadExceeded)
}

/// One attempt, sent and answered within `publish.timeout` from now.
async fn send(shared: &Shared, message: PublishMessage) -> Answer {
    let attempt = async {
        let future = shared
            .js
            .send_publish(shared.subject.clone(), message)
            .await
            .map_err(|e| e.kind())?;
        future.await.map_err(|e| e.kind())
    };
    tokio::time::timeout(shared.publish.timeout, attempt)
        .await
        .unwrap_or(Err(PublishErrorKind::TimedOut))
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
