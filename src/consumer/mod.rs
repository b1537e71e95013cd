//! The consumer under test: N workers on the durable pull consumer.
//!
//! Each delivery is matched to its event through the `Nats-Msg-Id` header,
//! then handled as the scenario says: ok → ack; a hang past
//! processing_timeout → NAK with a delay; an error → copied to the
//! dead-letter subject (PubAck awaited) and TERMed. A payload that cannot be
//! decoded, or an id this run never made, is dead-lettered as poison: bad
//! input is data, never a crash. Messages that exhaust max_deliver are
//! dead-lettered by [`advisory`] from the server's MAX_DELIVERIES advisory.
//!
//! Acks are sent without waiting for the server's confirmation (a double
//! ack per message would cap throughput); the run confirms them at the end
//! by flushing and checking the consumer's ack-pending count.

pub mod advisory;
pub mod control;
mod dead_letter;
pub mod observer;
pub mod service;
pub mod simulate;
mod under_test;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Context, Message};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use dead_letter::{largest_copy_headers, DeadLetters};
pub use under_test::{External, Simulated, UnderTest, Wiring};

use crate::event;
use crate::ledger::{Ledger, Live};
use crate::panics::Panics;
use crate::scenario::{self, PayloadKind};
use crate::stats::{Latency, Stats};
use control::Control;
use simulate::Verdict;

/// What every worker shares.
pub struct Workers {
    consumer: PullConsumer,
    ledger: Arc<Ledger>,
    stats: Arc<Stats>,
    config: scenario::Consumer,
    payload_kind: PayloadKind,
    dead_letters: Arc<DeadLetters>,
    stop: CancellationToken,
    control: Arc<Control>,
}

impl Workers {
    pub fn new(
        consumer: PullConsumer,
        js: Context,
        scenario: &scenario::Scenario,
        ledger: Arc<Ledger>,
        stats: Arc<Stats>,
        stop: CancellationToken,
    ) -> Arc<Workers> {
        Arc::new(Workers {
            consumer,
            dead_letters: Arc::new(DeadLetters::new(js, scenario, ledger.clone())),
            ledger,
            stats,
            config: scenario.consumer.clone(),
            payload_kind: scenario.load.payload.kind,
            stop,
            control: Arc::default(),
        })
    }

    /// The handle the fault timeline uses to crash, stall or slow the workers.
    pub fn control(&self) -> Arc<Control> {
        self.control.clone()
    }

    pub fn dead_letters(&self) -> Arc<DeadLetters> {
        self.dead_letters.clone()
    }

    /// Starts the workers on `tracker`; they run until `stop` fires.
    pub fn spawn(
        self: &Arc<Self>,
        tracker: &TaskTracker,
        seed: u64,
        panics: &Panics,
        lane: &tokio::runtime::Handle,
    ) {
        for index in 0..self.config.workers {
            let workers = self.clone();
            let rng = StdRng::seed_from_u64(seed.wrapping_add(index as u64 + 1));
            let task = async move { workers.work(index, rng).await };
            tracker.spawn_on(panics.clone().guard_owned("consumer worker", task), lane);
        }
    }

    /// One worker: pull, handle, repeat; a broken pull stream is reopened.
    /// A crash drops the pull stream and what it holds; a stall stops reading.
    async fn work(&self, index: usize, mut rng: StdRng) {
        let mut clock = simulate::WorkClock::default();
        while !self.stop.is_cancelled() {
            if !self.control.may_work() {
                self.pause(Duration::from_millis(50)).await;
                continue;
            }
            let life = self.control.life();
            let opened = self
                .consumer
                .stream()
                .max_messages_per_batch(self.config.batch)
                .expires(Duration::from_secs(5))
                .messages()
                .await;
            let mut messages = match opened {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(worker = index, error = %e, "cannot pull; retrying");
                    self.pause(Duration::from_millis(500)).await;
                    continue;
                }
            };
            loop {
                while !self.control.may_work() && !life.is_cancelled() {
                    self.pause(Duration::from_millis(50)).await;
                }
                let next = tokio::select! {
                    next = messages.next() => next,
                    _ = self.stop.cancelled() => return,
                    // Crashed: drop the stream with every delivery it holds.
                    _ = life.cancelled() => break,
                };
                match next {
                    Some(Ok(message)) => self.handle(message, &mut rng, &life, &mut clock).await,
                    Some(Err(e)) => {
                        // Missed heartbeats and failed pulls are reported by
                        // the stream and recovered from; keep reading.
                        tracing::debug!(worker = index, error = %e, "pull stream error");
                    }
                    None => break,
                }
            }
            self.pause(Duration::from_millis(200)).await;
        }
    }

    async fn pause(&self, time: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(time) => {}
            _ = self.stop.cancelled() => {}
        }
    }

    async fn handle(
        &self,
        message: Message,
        rng: &mut StdRng,
        life: &CancellationToken,
        clock: &mut simulate::WorkClock,
    ) {
        let received = Instant::now();
        let _busy = self.control.handling();
        let (stream_seq, deliveries) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered),
            Err(e) => {
                tracing::warn!(error = %e, "delivery without JetStream metadata; ignored");
                return;
            }
        };
        let headers = message.headers.as_ref();
        let id = event::event_id(headers).map(str::to_owned);
        // An id alone proves nothing: anyone can copy one. Only a delivery
        // signed with this run's secret is one of its events.
        let seq = id
            .as_deref()
            .and_then(|id| self.ledger.parse_event_id(id))
            .filter(|&seq| self.ledger.is_scheduled(seq))
            .filter(|_| self.ledger.signer.verify(headers));
        let (Some(seq), Some(id)) = (seq, id.clone()) else {
            self.ledger.unexpected();
            let id = id.as_deref().unwrap_or("-");
            tracing::warn!(
                event_id = id,
                stream_seq,
                "unexpected delivery; dead-lettering as poison"
            );
            self.dead_letters
                .term(&message, None, stream_seq, deliveries, "poison")
                .await;
            return;
        };
        let delivery = self.ledger.delivered(seq, deliveries, stream_seq);
        if delivery.first {
            match event::since_intended(headers, self.ledger.opened, received) {
                Ok(Some(age)) => self.stats.record(Latency::EndToEnd, age),
                Ok(None) => {}
                Err(intended) => {
                    Live::add(&self.ledger.live.intended_out_of_range);
                    tracing::debug!(event_id = %id, ?intended, "intended send time outside the run; left out of end_to_end");
                }
            }
        }
        if delivery.already_resolved {
            // Already counted once: settle it so it stops coming back.
            if message.ack().await.is_ok() {
                Live::add(&self.ledger.live.acks);
            }
            return;
        }
        if let Err(reason) = event::check_payload(self.payload_kind, &id, &message.payload) {
            tracing::warn!(event_id = %id, stream_seq, %reason, "poison payload; dead-lettering");
            self.dead_letters
                .term(&message, Some(seq), stream_seq, deliveries, "poison")
                .await;
            return;
        }
        let (verdict, work) = simulate::draw(&self.config, rng);
        let work = self.control.slowed(work);
        let started = Instant::now();
        let finished = if work.is_zero() {
            // No simulated work: skip the timer, which costs more than the rest.
            Ok(())
        } else {
            tokio::select! {
                finished = tokio::time::timeout(self.config.processing_timeout, tokio::time::sleep_until(clock.end(started, work).into())) => finished,
                // The run is over: leave the message unacked; it stays in the stream.
                _ = self.stop.cancelled() => return,
                // Crashed mid-handler: the delivery is dropped unacknowledged.
                _ = life.cancelled() => return,
            }
        };
        self.stats.record(Latency::Processing, started.elapsed());
        match (finished, verdict) {
            (Err(_), _) | (Ok(()), Verdict::Hang) => {
                tracing::debug!(event_id = %id, deliveries, "processing timed out; NAK");
                match message
                    .ack_with(AckKind::Nak(Some(self.config.nak_delay)))
                    .await
                {
                    Ok(()) => Live::add(&self.ledger.live.naks),
                    Err(e) => tracing::warn!(event_id = %id, error = %e, "NAK not sent"),
                }
            }
            (Ok(()), Verdict::Error) => {
                self.dead_letters
                    .term(&message, Some(seq), stream_seq, deliveries, "error")
                    .await;
            }
            (Ok(()), Verdict::Ok) => match message.ack().await {
                Ok(()) => {
                    Live::add(&self.ledger.live.acks);
                    self.ledger.processed(seq, stream_seq);
                }
                Err(e) => {
                    tracing::warn!(event_id = %id, error = %e, "ack not sent; it will be redelivered")
                }
            },
        }
    }
}
