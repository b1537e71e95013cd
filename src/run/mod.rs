//! One experiment from start to verdict: target, provisioning, the load
//! with the consumer alongside, the drain, the books, the report.
//!
//! The phases are plain steps over one [`Experiment`]; each owns a stretch
//! of the run's life and hands the next what it needs. Signals arrive as
//! cancellation tokens, so an interrupted run takes the same path as a
//! finished one, only with a shorter drain, and still writes its report.

mod alongside;
mod drain;
mod live;
mod setup;
mod telemetry;
mod verdict;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::Client;
use tokio_util::sync::CancellationToken;

use crate::error::HarnessError;
use crate::ledger::Ledger;
use crate::progress::{self, Progress};
use crate::provision::Provisioned;
use crate::publisher::{Publisher, Start};
use crate::recovery::Tracker;
use crate::report::Report;
use crate::scenario::Scenario;
use crate::schedule::{Profile, Schedule};
use crate::stats::Stats;
use crate::target::{proxy::Proxy, ConnectionState};
use setup::{prepare, SharedCluster};

use live::RateMeter;
pub use telemetry::{MetricsOptions, Telemetry};

/// How long the consumer must have had nothing pending before the drain
/// stops waiting for events that can no longer arrive.
const CONSUMER_IDLE: Duration = Duration::from_secs(2);

/// What a run needs besides the scenario.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Validated, with command-line overrides applied.
    pub scenario: Scenario,
    pub name: String,
    pub file: PathBuf,
    pub run_id: String,
    pub seed: u64,
    pub progress: progress::Mode,
    pub metrics: MetricsOptions,
    /// One shard of a run spread over processes (`--shard K/N`).
    pub shard: Option<ShardRun>,
    /// The schedule's time 0 (`--start-at`): the run waits for it once
    /// ready, or, ready late, begins with what is overdue.
    pub start_at: Option<SystemTime>,
}

/// A shard's part in a run: which shard, and the scenario every shard of
/// the run shares (before this shard's own subject and durable).
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub shard: crate::shard::Shard,
    pub whole: Scenario,
}

impl RunConfig {
    /// What every event id of this run starts with: the run id, and the
    /// shard for a shard.
    pub fn id_prefix(&self) -> String {
        match &self.shard {
            Some(s) => s.shard.id_prefix(&self.run_id),
            None => self.run_id.clone(),
        }
    }
}

/// Ctrl+C and friends. The first `interrupt` stops the schedule and drains
/// briefly; `hard_stop` (a second Ctrl+C) cuts the drain short.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    pub interrupt: CancellationToken,
    pub hard_stop: CancellationToken,
}

/// How the load phase ended.
#[derive(Debug, Clone, Default)]
struct Ending {
    interrupted: bool,
    aborted_by: Option<String>,
    /// When the drain ended, from the start of the load.
    drained_at: Duration,
}

/// Everything that lives for the length of one run, by who owns it: what
/// the run was asked, the target and its clients, the actors that act on
/// it, and the books that account for what they did.
struct Experiment {
    config: RunConfig,
    /// The criteria and the fault timeline, compiled from the scenario.
    plan: crate::plan::Plan,
    signals: Signals,
    profile: Profile,
    telemetry: Telemetry,
    books: Books,
    actors: Actors,
    /// Latencies count from this far into the load (a capacity trial's
    /// warm-up); zero for a whole run.
    warmup: Duration,
    started_at: SystemTime,
    start: Start,
    /// How late the run was ready for `--start-at`.
    late: Duration,
    /// Declared last, so it drops last: its lanes end every task on them.
    target: Target,
}

/// The target and the harness's clients of it.
struct Target {
    info: crate::report::TargetInfo,
    /// The embedded nodes, for the fault timeline.
    cluster: Option<SharedCluster>,
    /// The proxy network faults act on, if the scenario has any.
    proxy: Option<Arc<Proxy>>,
    provisioned: Provisioned,
    publisher_client: Client,
    /// The consumer side's connection.
    consumer_client: Client,
    /// The durable consumer under test, as the server sees it.
    durable: PullConsumer,
    /// The publisher's and the consumer's connection states.
    connections: [Arc<ConnectionState>; 2],
    /// The connection foreign input is thrown from, if `load.garbage` is set.
    garbage_client: Option<(Client, Arc<ConnectionState>)>,
    lanes: Lanes,
}

/// The threads the hot path runs on, each with its side's connection.
/// Their tasks end when they drop.
struct Lanes {
    /// The publisher's connection, pacer and sender.
    publisher: crate::lane::Lane,
    /// The consumer's connection and the consumer under test's workers.
    _consumer: crate::lane::Lane,
}

/// What acts on the target: the publisher and the consumer under test
/// (the fault timeline and the garbage are started with the load).
struct Actors {
    publisher: Arc<Publisher>,
    publish_stop: CancellationToken,
    under_test: Arc<crate::consumer::UnderTest>,
}

/// What the run counted and measured.
struct Books {
    ledger: Arc<Ledger>,
    stats: Arc<Stats>,
    /// Recovery after faults, and a stuck consumer.
    recovery: Arc<std::sync::Mutex<Tracker>>,
    /// The run as a time series, a point per interval.
    series: std::sync::Mutex<crate::series::Recorder>,
    garbage_sent: Arc<std::sync::atomic::AtomicU64>,
    /// Panics in the run's tasks: any one fails the run.
    panics: crate::panics::Panics,
}

/// Runs a scenario and returns its report, after writing nothing: the
/// caller decides where the report goes. Errors are infrastructure or
/// usage problems met before a verdict was possible.
pub async fn run(config: RunConfig, signals: Signals) -> Result<Report, HarnessError> {
    run_with_telemetry(config, signals)
        .await
        .map(|(report, _)| report)
}

/// [`run`], also handing back the run's metrics, whose listener is still
/// up for a linger (see [`Telemetry::linger`]).
pub async fn run_with_telemetry(
    config: RunConfig,
    signals: Signals,
) -> Result<(Report, Telemetry), HarnessError> {
    run_measured(config, signals, Duration::ZERO).await
}

/// [`run`] whose latencies count only from `warmup` into the load: one
/// trial of a capacity search.
pub async fn run_trial(
    config: RunConfig,
    signals: Signals,
    warmup: Duration,
) -> Result<Report, HarnessError> {
    let (report, telemetry) = run_measured(config, signals, warmup).await?;
    // The next trial serves metrics on the same address.
    telemetry.close().await;
    Ok(report)
}

async fn run_measured(
    config: RunConfig,
    signals: Signals,
    warmup: Duration,
) -> Result<(Report, Telemetry), HarnessError> {
    // Until the load begins, a signal ends the run at once: starting or
    // reaching a server can hang for as long as its timeouts allow.
    let interrupt = signals.interrupt.clone();
    // Both futures are large; boxed, they live on the heap and not on the
    // stack of whatever awaits a run (a test's thread has 2 MiB).
    let experiment = tokio::select! {
        experiment = Box::pin(prepare(config, signals)) => experiment?,
        _ = interrupt.cancelled() => {
            return Err(HarnessError::Interrupted("while setting up the run"));
        }
    };
    let (mut experiment, cluster) = experiment;
    experiment.warmup = warmup;
    let finished = Box::pin(experiment.execute()).await;
    // The fault timeline has ended, so this is the last handle; were it not,
    // the cluster's Drop still stops every node.
    if let Some(cluster) = cluster.and_then(|c| Arc::try_unwrap(c).ok()) {
        cluster.into_inner().shutdown().await;
    }
    Ok(finished)
}

impl Experiment {
    async fn execute(mut self) -> (Report, Telemetry) {
        let mut progress = Progress::new(self.config.progress, self.profile.duration());
        self.start = match self.config.start_at {
            Some(at) => self.wait_for_start(at).await,
            None => Start {
                instant: Instant::now(),
                wall: SystemTime::now(),
            },
        };
        self.started_at = self.start.wall;
        let fault_stop = CancellationToken::new();
        let timeline = self.start_faults(fault_stop.clone());
        let garbage_stop = CancellationToken::new();
        let garbage = self.start_garbage(garbage_stop.clone());
        let mut ending = self.load(&mut progress).await;
        let load_time = self.start.instant.elapsed();
        garbage_stop.cancel();
        if ending.interrupted || ending.aborted_by.is_some() {
            // Stopping: undo the faults under way, start no more.
            fault_stop.cancel();
        }
        if let Some(task) = garbage {
            let _ = task.await;
        }
        if let Some((client, state)) = &self.target.garbage_client {
            state
                .closing
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = tokio::time::timeout(Duration::from_secs(2), client.drain()).await;
        }
        self.drain(&mut ending, &mut progress, load_time).await;
        ending.drained_at = self.start.instant.elapsed();
        // A last look, for deliveries since the last tick.
        self.track(ending.drained_at, None);
        self.record_series(ending.drained_at, true, None);
        progress.finish();
        // A fault still under way recovers now, before the books close.
        fault_stop.cancel();
        let faults = match timeline {
            Some(task) => task.await.ok().flatten().unwrap_or_default(),
            None => Vec::new(),
        };
        let consumer_state = self.close().await;
        let mut report = self.report(ending, load_time, consumer_state, faults).await;
        self.telemetry
            .faults(&report.fault_figures, self.target.proxy.as_deref());
        self.telemetry.finish(&self.books.ledger, &report);
        let problems = self
            .telemetry
            .export_final(&self.config.name, &self.config.run_id)
            .await;
        report.warnings.extend(problems);
        for (client, state) in [&self.target.publisher_client, &self.target.consumer_client]
            .into_iter()
            .zip(&self.target.connections)
        {
            state
                .closing
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = tokio::time::timeout(Duration::from_secs(2), client.drain()).await;
        }
        (report, self.telemetry)
    }

    /// Waits for `--start-at`, so that shards started apart begin one
    /// schedule together. The books opened at that time (see setup): ready
    /// late, the schedule still counts from it, so what is overdue is sent
    /// at once, and its lag and latency are measured from the intended
    /// times, as ever. A signal ends the wait (the load then stops at once).
    async fn wait_for_start(&mut self, at: SystemTime) -> Start {
        let opened = self.books.ledger.opened;
        if opened.wall != at {
            // The monotonic clock could not place `at` (checked against at
            // the command line): begin now, from now.
            tracing::warn!("--start-at lies beyond this machine's clock; starting now");
            return Start {
                instant: opened.instant,
                wall: opened.wall,
            };
        }
        let now = Instant::now();
        if opened.instant > now {
            let wait = opened.instant - now;
            tracing::info!(
                start_at = %humantime::format_rfc3339_millis(at),
                wait = %humantime::format_duration(Duration::from_millis(wait.as_millis() as u64)),
                "ready; waiting for --start-at"
            );
            tokio::select! {
                _ = tokio::time::sleep_until(opened.instant.into()) => {}
                _ = self.signals.interrupt.cancelled() => {}
            }
        }
        self.late = Instant::now().saturating_duration_since(opened.instant);
        if self.late > Duration::from_millis(100) {
            tracing::warn!(
                late_secs = self.late.as_secs_f64(),
                "ready after --start-at: beginning with what is overdue"
            );
        }
        Start {
            instant: opened.instant,
            wall: at,
        }
    }

    /// Runs the schedule, watching for signals and abort criteria.
    async fn load(&self, progress: &mut Progress) -> Ending {
        let schedule_stop = CancellationToken::new();
        // A shard walks the whole schedule and keeps its own events.
        let schedule = Schedule::new(
            Profile::from_load(&self.config.scenario.load),
            self.config.scenario.load.arrivals,
            self.config.seed,
        );
        let schedule = match &self.config.shard {
            Some(s) => schedule.for_shard(s.shard),
            None => schedule,
        };
        let paced = self.actors.publisher.start(
            schedule,
            self.start,
            schedule_stop.clone(),
            &self.target.lanes.publisher,
        );
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        // A tick held up (a server cut off by a fault answers a look only
        // at its 1 s timeout) is not made up for by a burst of ticks.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ending = Ending::default();
        let mut rate = RateMeter::default();
        let mut warming = !self.warmup.is_zero();
        loop {
            tokio::select! {
                // A signal or the schedule's end first: ticks are always
                // due again, and a random pick among ready branches would
                // let ticks hold off a Ctrl+C for seconds.
                biased;
                _ = paced.cancelled() => break,
                _ = self.signals.interrupt.cancelled() => {
                    tracing::warn!("interrupted: stopping the schedule, draining briefly, then writing the report");
                    ending.interrupted = true;
                    break;
                }
                _ = ticker.tick() => {
                    if warming && self.start.instant.elapsed() >= self.warmup {
                        // The warm-up is over: from here the latencies count.
                        let mut series = self.books.series.lock().unwrap_or_else(|p| p.into_inner());
                        self.books.stats.reset();
                        series.latencies_restarted();
                        drop(series);
                        warming = false;
                    }
                    let (snapshot, figures) = self.snapshot("load", &mut rate).await;
                    progress.update(&snapshot);
                    if self.start.instant.elapsed() >= self.config.scenario.criteria.abort_grace {
                        if let Some(failed) = verdict::first_failure(&self.plan.abort_on, &figures) {
                            tracing::error!(criterion = %failed, "abort criterion failed: stopping the run");
                            ending.aborted_by = Some(failed);
                            break;
                        }
                    }
                }
            }
        }
        schedule_stop.cancel();
        // The pacer notices at once, even mid-send; a second Ctrl+C does
        // not wait for it anyway.
        tokio::select! {
            _ = paced.cancelled() => {}
            _ = self.signals.hard_stop.cancelled() => {}
        }
        ending
    }
}
