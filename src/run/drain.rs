//! The end of a run: the drain that waits for publishes and the consumer to
//! settle, and the close that stops the actors and confirms the acks.

use std::time::{Duration, Instant};

use super::{Ending, Experiment, RateMeter, CONSUMER_IDLE};
use crate::progress::Progress;
use crate::report::ConsumerState;

impl Experiment {
    /// Waits for publishes to finish and the consumer to resolve every
    /// published event, up to the drain timeout. A Ctrl+C or SIGTERM during
    /// the drain shortens it and marks the run interrupted.
    pub(super) async fn drain(
        &self,
        ending: &mut Ending,
        progress: &mut Progress,
        load_time: Duration,
    ) {
        let drain = &self.config.scenario.drain;
        let short = ending.interrupted || ending.aborted_by.is_some();
        let mut deadline = crate::clock::after(
            Instant::now(),
            if short {
                drain.interrupt_timeout
            } else {
                drain.timeout
            },
        );
        let mut rate = RateMeter::default();
        let mut idle_since: Option<Instant> = None;
        // Every event resolved is not quite the end: second stored copies of
        // events (retries past the duplicate window) are no unresolved
        // events, yet they must be delivered to be counted, so the consumer
        // must also have nothing left on the server. Not known before the
        // first look; a server that does not answer holds nothing back.
        let mut server_empty = false;
        while !(self.settled() && server_empty) && Instant::now() < deadline {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = self.signals.hard_stop.cancelled() => {
                    ending.interrupted = true;
                    break;
                }
                _ = self.signals.interrupt.cancelled(), if !ending.interrupted => {
                    tracing::warn!("interrupted during the drain: draining briefly, then writing the report");
                    ending.interrupted = true;
                    deadline = deadline.min(crate::clock::after(Instant::now(), drain.interrupt_timeout));
                }
            }
            let (mut snapshot, _) = self.snapshot("drain", &mut rate).await;
            snapshot.elapsed = load_time;
            progress.update(&snapshot);
            server_empty = snapshot.backlog.unwrap_or(0) == 0;
            // Unresolved events the consumer can no longer receive (gone from
            // the stream) would hold the drain to its timeout: once nothing
            // is publishing and the consumer has had nothing pending for a
            // while, there is nothing left to wait for.
            let idle = snapshot.in_flight == 0 && snapshot.backlog == Some(0);
            idle_since = if idle {
                idle_since.or(Some(Instant::now()))
            } else {
                None
            };
            // A NAKed message waits out its delay before coming back.
            let quiet_for =
                CONSUMER_IDLE.max(self.config.scenario.consumer.nak_delay + Duration::from_secs(1));
            if idle_since.is_some_and(|at| at.elapsed() >= quiet_for) {
                tracing::info!(
                    unresolved = self.books.ledger.unresolved_count(),
                    "the consumer has nothing left to deliver; ending the drain"
                );
                return;
            }
        }
        if !self.settled() {
            tracing::warn!(
                unresolved = self.books.ledger.unresolved_count(),
                publishing = self.actors.publisher.in_flight(),
                "drain ended before everything settled"
            );
        }
    }

    /// Every publish answered, every published event resolved and, with an
    /// output contract, every processed event's result in. With
    /// garbage thrown in, the consumer must also have emptied its backlog
    /// (garbage is no event, so only the idle check in the loop sees it).
    fn settled(&self) -> bool {
        self.actors.publisher.in_flight() == 0
            && self.books.ledger.unresolved_count() == 0
            && !self.books.ledger.results_outstanding()
            && self.config.scenario.load.garbage.is_none()
    }

    /// Stops the actors and confirms the consumer's acks with the server.
    pub(super) async fn close(&self) -> ConsumerState {
        self.actors.publish_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.actors.publisher.wait()).await;
        let _ =
            tokio::time::timeout(Duration::from_secs(5), self.target.consumer_client.flush()).await;
        let acks_confirmed = self.confirm_acks().await;
        self.actors.under_test.stop().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.target.publisher_client.flush())
            .await;
        let info = self.target.durable.get_info().await.ok();
        ConsumerState {
            num_pending: info.as_ref().map_or(0, |i| i.num_pending),
            num_ack_pending: info.as_ref().map_or(0, |i| i.num_ack_pending as u64),
            num_redelivered: info.as_ref().map_or(0, |i| i.num_redelivered as u64),
            ack_floor: info.as_ref().map_or(0, |i| i.ack_floor.stream_sequence),
            service_log: self
                .actors
                .under_test
                .service()
                .map(|s| s.log().display().to_string()),
            service_exits: self
                .actors
                .under_test
                .service()
                .map(|s| s.exits())
                .unwrap_or_default(),
            acks_confirmed,
            dead_letter_copies: self.actors.under_test.dead_letter_copies(),
        }
    }

    /// Every ack sent has reached the server once the consumer has nothing
    /// pending acknowledgement; checked for a few seconds after a flush.
    async fn confirm_acks(&self) -> bool {
        if self.books.ledger.unresolved_count() > 0 {
            return false;
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(info) = self.target.durable.get_info().await {
                if info.num_ack_pending == 0 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}
