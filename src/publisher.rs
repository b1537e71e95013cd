//! The publisher: sends the schedule to JetStream, awaits PubAcks without
//! holding up the schedule, retries with backoff, and classifies each event.
//!
//! Open model (DESIGN.md): event i is due at start + offset(i) whatever the
//! acks are doing. The hot path is one task on the publisher's own thread
//! ([`lane`]), with the publisher's connection beside it, and no task per
//! event:
//!
//! 1. the pacer wakes when the next event is due (a timerfd, [`pace`]) and
//!    sends, in order, everything that is due by then, as one burst;
//! 2. the same task keeps the PubAck futures in one set and settles each
//!    event as its answer comes;
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

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::Subject;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::event::{self, PayloadBuilder};
use crate::lane::Lane;
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
    subject: Subject,
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
    /// The pipeline and the retries.
    tasks: TaskTracker,
}

/// When the run started, on both clocks: the monotonic one for scheduling
/// and the wall clock that event headers carry.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub instant: Instant,
    pub wall: SystemTime,
}

/// An event that fell due: sent at least once, not settled yet. Its
/// message is made again for each attempt, from its seed, identical.
struct Event {
    seq: u64,
    due: Instant,
    intended_wall: SystemTime,
    /// Seeds the event's payload and its retries' jitter.
    seed: u64,
    /// Its place among `max_in_flight`, given back when it is settled.
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
                subject: Subject::from(scenario.load.subject.as_str()),
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

    /// Starts the schedule on `lane` (where the publisher's connection
    /// lives). The token it returns fires when the schedule is over: run
    /// to its end, or stopped by `schedule_stop`. Publishes already sent go
    /// on until [`Publisher::wait`] or the shared stop.
    pub fn start(
        self: &Arc<Self>,
        schedule: Schedule,
        start: Start,
        schedule_stop: CancellationToken,
        lane: &Lane,
    ) -> CancellationToken {
        let paced = CancellationToken::new();
        let publisher = self.clone();
        let over = paced.clone().drop_guard();
        self.tasks.spawn_on(
            async move {
                let pipeline = publisher.pipeline(schedule, start, schedule_stop, over);
                publisher.shared.panics.guard("publish", pipeline).await;
            },
            lane.handle(),
        );
        paced
    }

    /// Waits for the pipeline and every retry to finish, then tells the
    /// failures not logged yet.
    pub async fn wait(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        for line in self.shared.failures.flush() {
            line.log();
        }
    }

    /// The pacer and the sender in one: sends what is due, in order, then
    /// waits for whichever comes first of the next due time, a PubAck, or
    /// a permit for an event held back. `over` is dropped when the schedule
    /// is over; the pipeline ends when, after that, every event it sent is
    /// answered, or at the stop.
    async fn pipeline(
        &self,
        schedule: Schedule,
        start: Start,
        schedule_stop: CancellationToken,
        over: tokio_util::sync::DropGuard,
    ) {
        let shared = &self.shared;
        let mut timer =
            pace::Timer::new().unwrap_or_else(|e| panic!("cannot make the pacer's timer: {e}"));
        let at = |offset| crate::clock::after(start.instant, offset);
        let intended_wall = |offset| start.wall.checked_add(offset).unwrap_or(start.wall);
        let end = at(schedule.profile().duration());
        // The rate this process sends at (a shard's share of the whole).
        let rate_at = {
            let schedule = schedule.clone();
            move |offset| schedule.rate_at(offset)
        };
        let mut schedule = schedule.peekable();
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut over = Some(over);
        // A due event waiting for a permit (already counted held back).
        let mut held: Option<(u64, std::time::Duration, u64)> = None;
        // Events awaiting their first PubAck, and the answers' futures.
        let mut waiting = Slots::default();
        let mut answers = FuturesUnordered::new();
        let mut woke = start.instant;
        // Sends happen at the pacer's wake-ups only (and when a permit
        // frees an event held back), not whenever a PubAck comes: that
        // keeps each wake-up's events together in one write.
        let mut wake_up = true;
        // Made once, not at every turn of the loop: each makes a waiter.
        let stopped = shared.stop.cancelled();
        let schedule_stopped = schedule_stop.cancelled();
        tokio::pin!(stopped, schedule_stopped);
        loop {
            // Everything due by now, in order; nothing more once the
            // schedule is stopped (a send can take a while).
            while over.is_some()
                && wake_up
                && !schedule_stop.is_cancelled()
                && !shared.stop.is_cancelled()
            {
                let now = Instant::now();
                let (seq, offset, seed, was_held) = match held.take() {
                    Some((seq, offset, seed)) => (seq, offset, seed, true),
                    None => match schedule.next_if(|&(_, offset)| at(offset) <= now) {
                        Some((seq, offset)) => {
                            // The seed of its payload and retry jitter.
                            let seed = rng.random();
                            shared.ledger.schedule(seq, intended_wall(offset), seed);
                            (seq, offset, seed, false)
                        }
                        None => break,
                    },
                };
                let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                    if !was_held {
                        shared.ledger.held_back();
                    }
                    held = Some((seq, offset, seed));
                    break;
                };
                let due = at(offset);
                shared
                    .stats
                    .record(Latency::ScheduleLag, now.saturating_duration_since(due));
                let event = Event {
                    seq,
                    due,
                    intended_wall: intended_wall(offset),
                    seed,
                    _permit: permit,
                };
                let sent_at = Instant::now();
                // One deadline over the send and its PubAck, from now.
                let deadline = tokio::time::Instant::from_std(crate::clock::after(
                    sent_at,
                    shared.publish.timeout,
                ));
                let message = message(shared, &event);
                // From here on it counts as sent.
                shared.ledger.sent(seq);
                let send = tokio::time::timeout_at(
                    deadline,
                    shared.js.send_publish(shared.subject.clone(), message),
                );
                tokio::pin!(send);
                let sent = loop {
                    tokio::select! {
                        biased;
                        _ = &mut stopped => break None,
                        // The schedule is over even while this send waits
                        // (a connection cut off): the run need not wait.
                        _ = &mut schedule_stopped, if over.is_some() => over = None,
                        sent = &mut send => break Some(sent),
                    }
                };
                let Some(sent) = sent else {
                    // It may have left: it may be stored.
                    give_up(shared, &event, Failure::Unknown, Cause::Stopped);
                    break;
                };
                let sent = match sent {
                    Ok(sent) => sent.map_err(|e| e.kind()),
                    Err(_) => Err(PublishErrorKind::TimedOut),
                };
                match sent {
                    Ok(ack) => {
                        let slot = waiting.insert((event, sent_at));
                        answers.push(async move {
                            let answer = match tokio::time::timeout_at(deadline, ack).await {
                                Ok(answer) => answer.map_err(|e| e.kind()),
                                Err(_) => Err(PublishErrorKind::TimedOut),
                            };
                            (slot, answer)
                        });
                    }
                    Err(kind) => settle(shared, &self.tasks, event, sent_at, Err(kind)),
                }
            }
            // The load lasts the profile's whole duration, not until its
            // last event: N events at R/s take N/R seconds, and the rates
            // say so.
            wake_up = false;
            let exhausted = held.is_none() && schedule.peek().is_none();
            if over.is_some()
                && (schedule_stop.is_cancelled() || (exhausted && Instant::now() >= end))
            {
                over = None;
            }
            if over.is_none() && answers.is_empty() {
                break;
            }
            // The pacer's next wake-up: the next due time, no sooner than a
            // burst after the last; none while an event waits for a permit
            // or once the schedule is over.
            let wake = match (&over, held, schedule.peek()) {
                (None, _, _) | (_, Some(_), _) => None,
                (Some(_), None, Some(&(_, offset))) => {
                    Some(at(offset).max(woke + pace::burst(rate_at(offset))))
                }
                (Some(_), None, None) => Some(end),
            };
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                _ = &mut schedule_stopped, if over.is_some() => {}
                permit = self.permits.acquire(), if over.is_some() && held.is_some() => {
                    drop(permit);
                    wake_up = true;
                }
                () = timer.sleep_until(wake.unwrap_or(end)), if wake.is_some() => {
                    woke = Instant::now();
                    wake_up = true;
                }
                Some(first) = answers.next(), if !answers.is_empty() => {
                    // And every other answer in already, in one turn.
                    let rest = std::iter::from_fn(|| answers.next().now_or_never().flatten());
                    for (slot, answer) in std::iter::once(first).chain(rest) {
                        let (event, sent_at) = waiting.remove(slot);
                        settle(shared, &self.tasks, event, sent_at, answer);
                    }
                }
            }
        }
        // Stopped: what was sent and not answered may or may not be stored.
        drop(answers);
        for (event, _) in waiting.drain() {
            give_up(shared, &event, Failure::Unknown, Cause::Stopped);
        }
    }
}

/// The events awaiting their PubAck, each in a slot its answer names: the
/// slots are reused, so the set allocates only while it grows.
struct Slots<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    fn insert(&mut self, value: T) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(value);
                slot
            }
            None => {
                self.slots.push(Some(value));
                self.slots.len() - 1
            }
        }
    }

    /// Panics on a slot not taken: each answer names its own slot once.
    fn remove(&mut self, slot: usize) -> T {
        let value = self.slots[slot].take().expect("a slot answered twice");
        self.free.push(slot);
        value
    }

    fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.free.clear();
        self.slots.drain(..).flatten()
    }
}

/// The event's message, the same for every attempt.
fn message(shared: &Shared, event: &Event) -> PublishMessage {
    let ledger = &shared.ledger;
    let event_id = ledger.event_id(event.seq);
    let mut rng = StdRng::seed_from_u64(event.seed);
    let payload = shared
        .payloads
        .build(&event_id, event.seq, event.intended_wall, &mut rng);
    PublishMessage::build()
        .payload(payload)
        .headers(event::headers(
            event_id,
            event.intended_wall,
            &ledger.signer,
        ))
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
async fn retry(shared: &Arc<Shared>, event: Event, first: u32, mut last: PublishErrorKind) {
    // The jitter's own stream, apart from the payload's.
    let mut rng = StdRng::seed_from_u64(event.seed.rotate_left(32) ^ 0x6a09_e667_f3bc_c908);
    for attempt in first..=shared.publish.max_retries {
        shared.ledger.retried();
        let delay = backoff::delay(&shared.publish.backoff, attempt, &mut rng);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shared.stop.cancelled() => break,
        }
        let sent_at = Instant::now();
        let answer = tokio::select! {
            answer = send(shared, message(shared, &event)) => answer,
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
        return note(shared, Outcome::Failed, Cause::Collision, event.seq);
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
    tracing::debug!(event_id = %shared.ledger.event_id(event.seq), attempt, error = %kind, "publish attempt failed");
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
    note(shared, outcome, cause, event.seq);
}

fn note(shared: &Shared, outcome: Outcome, cause: Cause, seq: u64) {
    let event_id = shared.ledger.event_id(seq);
    if let Some(line) = shared
        .failures
        .note(outcome, cause, &event_id, Instant::now())
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
