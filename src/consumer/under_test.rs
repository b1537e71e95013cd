//! The consumer under test, as the run drives it: one interface, whatever
//! does the consuming. The run starts it once; the fault timeline crashes,
//! stalls and slows it; the recovery tracker asks whether it is busy; the
//! close stops it. A new kind of consumer is a variant here, and the
//! compiler points at every place that must drive it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::stream::Stream;
use async_nats::Client;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::control::Control;
use super::observer::{Observer, Sources};
use super::service::Service;
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
    /// The user's own service, observed through what JetStream reports.
    External(External),
}

/// The observer of the user's service, and the service when the harness
/// runs it.
pub struct External {
    service: Option<Arc<Service>>,
    copies: Arc<AtomicU64>,
    stop: CancellationToken,
    tasks: TaskTracker,
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

    /// Starts observing the user's service on `lane`, and starts the
    /// service itself if the harness runs it.
    pub async fn external(
        sources: Sources,
        service: Option<Service>,
        lane: &tokio::runtime::Handle,
        panics: &Panics,
    ) -> Result<UnderTest, String> {
        let observer = Observer::open(sources).await?;
        let copies = observer.copies();
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let watch = observer.watch(stop.clone());
        tasks.spawn_on(panics.clone().guard_owned("observer", watch), lane);
        let service = service.map(Arc::new);
        if let Some(service) = &service {
            if let Err(e) = service.start().await {
                stop.cancel();
                return Err(e);
            }
        }
        Ok(UnderTest::External(External {
            service,
            copies,
            stop,
            tasks,
        }))
    }

    /// Every in-flight delivery is dropped unacknowledged, and nothing is
    /// read until [`UnderTest::revive`].
    pub fn crash(&self) {
        match self {
            UnderTest::Simulated(s) => s.control.crash(),
            // Validation refuses consumer faults on a service the harness does not run.
            UnderTest::External(_) => unreachable_fault("consumer_crash"),
        }
    }

    pub fn revive(&self) {
        match self {
            UnderTest::Simulated(s) => s.control.revive(),
            UnderTest::External(_) => unreachable_fault("consumer_crash"),
        }
    }

    /// Stops reading deliveries, or reads again.
    pub fn set_stalled(&self, stalled: bool) {
        match self {
            UnderTest::Simulated(s) => s.control.set_stalled(stalled),
            UnderTest::External(_) => unreachable_fault("consumer_stall"),
        }
    }

    /// Processing takes `factor` times longer (1: as the scenario says).
    pub fn set_slow_factor(&self, factor: f64) {
        match self {
            UnderTest::Simulated(s) => s.control.set_slow_factor(factor),
            UnderTest::External(_) => unreachable_fault("consumer_slow"),
        }
    }

    /// Deliveries being handled right now: a consumer that is busy is not
    /// stuck, however long nothing arrives.
    pub fn busy(&self) -> u64 {
        match self {
            UnderTest::Simulated(s) => s.control.busy(),
            // Its handlers cannot be seen: only whether deliveries arrive.
            UnderTest::External(_) => 0,
        }
    }

    /// Copies it stored on the dead-letter stream, poison included.
    pub fn dead_letter_copies(&self) -> u64 {
        match self {
            UnderTest::Simulated(s) => s.dead_letters.copies(),
            UnderTest::External(e) => e.copies.load(Ordering::Relaxed),
        }
    }

    /// The service the harness runs, if it runs one.
    pub fn service(&self) -> Option<&Arc<Service>> {
        match self {
            UnderTest::Simulated(_) => None,
            UnderTest::External(e) => e.service.as_ref(),
        }
    }

    /// Stops consuming; what is under way gets a few seconds to finish.
    /// A service the harness runs is stopped first, then what it did last
    /// is read.
    pub async fn stop(&self) {
        if let Some(service) = self.service() {
            if let Err(e) = service.stop().await {
                tracing::warn!(error = %e, "cannot stop the service");
            }
        }
        match self {
            UnderTest::Simulated(Simulated { stop, tasks, .. })
            | UnderTest::External(External { stop, tasks, .. }) => {
                stop.cancel();
                tasks.close();
                let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
            }
        }
    }
}

/// A consumer fault reached a service the harness does not run: validation
/// refuses that, so this is a harness bug, reported and otherwise ignored.
fn unreachable_fault(kind: &str) {
    tracing::error!(
        kind,
        "a consumer fault reached an external consumer; this is a harness bug, please report it"
    );
}
