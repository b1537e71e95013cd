//! The consumer under test, as the run drives it: one interface, whatever
//! does the consuming. The run starts it once; the fault timeline crashes,
//! stalls and slows it; the recovery tracker asks whether it is busy; the
//! close stops it. A new kind of consumer is a variant here, and the
//! compiler points at every place that must drive it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::stream::Stream;
use async_nats::Client;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::control::Control;
use super::{advisory, DeadLetters, Workers};
use crate::ledger::Ledger;
use crate::panics::Panics;
use crate::scenario::Scenario;
use crate::stats::Stats;

/// The consumer under test.
pub enum UnderTest {
    /// The harness's own consumer: workers on the durable consumer that
    /// handle each delivery as the scenario says.
    Simulated(Simulated),
}

/// The harness's own consumer and what it runs on.
pub struct Simulated {
    control: Arc<Control>,
    dead_letters: Arc<DeadLetters>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// What the simulated consumer consumes with.
pub struct Wiring<'a> {
    /// The consumer side's connection, on `lane`.
    pub client: &'a Client,
    pub durable: PullConsumer,
    /// The stream under test, to fetch messages that exhausted max_deliver.
    pub stream: Stream,
    pub lane: &'a tokio::runtime::Handle,
}

impl UnderTest {
    /// Starts the harness's own consumer: its workers on `wiring.lane`,
    /// and the watch on deliveries exhausted, which it dead-letters.
    pub async fn simulated(
        s: &Scenario,
        wiring: Wiring<'_>,
        ledger: Arc<Ledger>,
        stats: Arc<Stats>,
        seed: u64,
        panics: &Panics,
    ) -> Result<UnderTest, String> {
        let stop = CancellationToken::new();
        let js = async_nats::jetstream::new(wiring.client.clone());
        let workers = Workers::new(wiring.durable, js, s, ledger.clone(), stats, stop.clone());
        let dead_letters = workers.dead_letters();
        let tasks = TaskTracker::new();
        let watcher = advisory::watch(
            wiring.client,
            wiring.stream,
            &s.consumer.durable,
            ledger,
            dead_letters.clone(),
            stop.clone(),
        )
        .await?;
        let watcher_panics = panics.clone();
        tasks.spawn(async move {
            watcher_panics.joined("advisory watcher", watcher.await);
        });
        workers.spawn(&tasks, seed, panics, wiring.lane);
        Ok(UnderTest::Simulated(Simulated {
            control: workers.control(),
            dead_letters,
            stop,
            tasks,
        }))
    }

    /// Every in-flight delivery is dropped unacknowledged, and nothing is
    /// read until [`UnderTest::revive`].
    pub fn crash(&self) {
        match self {
            UnderTest::Simulated(s) => s.control.crash(),
        }
    }

    pub fn revive(&self) {
        match self {
            UnderTest::Simulated(s) => s.control.revive(),
        }
    }

    /// Stops reading deliveries, or reads again.
    pub fn set_stalled(&self, stalled: bool) {
        match self {
            UnderTest::Simulated(s) => s.control.set_stalled(stalled),
        }
    }

    /// Processing takes `factor` times longer (1: as the scenario says).
    pub fn set_slow_factor(&self, factor: f64) {
        match self {
            UnderTest::Simulated(s) => s.control.set_slow_factor(factor),
        }
    }

    /// Deliveries being handled right now: a consumer that is busy is not
    /// stuck, however long nothing arrives.
    pub fn busy(&self) -> u64 {
        match self {
            UnderTest::Simulated(s) => s.control.busy(),
        }
    }

    /// Copies it stored on the dead-letter stream, poison included.
    pub fn dead_letter_copies(&self) -> u64 {
        match self {
            UnderTest::Simulated(s) => s.dead_letters.copies(),
        }
    }

    /// Stops consuming; what is under way gets a few seconds to finish.
    pub async fn stop(&self) {
        match self {
            UnderTest::Simulated(s) => {
                s.stop.cancel();
                s.tasks.close();
                let _ = tokio::time::timeout(Duration::from_secs(5), s.tasks.wait()).await;
            }
        }
    }
}
