//! From the closed books to the report: rates, latencies, criteria,
//! warnings, and whether the run passed.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::criteria::Criterion;
use crate::figures::Figures;
use crate::ledger::Accounting;
use crate::report::{ConsumerState, Rates, Report, TargetInfo, SCHEMA_VERSION};
use crate::schedule::Profile;
use crate::stats::{Latency, Stats};

use super::{Ending, Experiment, RunConfig};
use crate::ledger::Live;
use crate::provision;

/// Schedule lag beyond which the harness says it could not keep up.
const SATURATION_LAG_MS: f64 = 10.0;

/// The first criterion that fails on figures known now. A figure that is
/// not known yet (None) does not fail a live check.
pub fn first_failure(criteria: &[Criterion], figures: &Figures) -> Option<String> {
    criteria
        .iter()
        .map(|c| c.evaluate(figures))
        .find(|o| o.actual.is_some() && !o.passed)
        .map(|o| o.expression)
}

/// What the run observed, besides the accounting.
pub struct Facts<'a> {
    pub config: &'a RunConfig,
    pub plan: &'a crate::plan::Plan,
    pub target: TargetInfo,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub load_time: Duration,
    /// Latencies count from here (a capacity trial's warm-up).
    pub measured_from: Duration,
    pub profile: &'a Profile,
    pub sent: u64,
    pub stats: &'a Stats,
    pub reconnects: u64,
    pub faults: Vec<crate::faults::Applied>,
    pub fault_figures: crate::recovery::FaultFigures,
    pub consumer_stuck: Option<crate::recovery::Stuck>,
    pub garbage_sent: u64,
    pub panics: Vec<String>,
    pub series: crate::series::Series,
    pub shard: Option<crate::shard::ShardInfo>,
}

fn rates(facts: &Facts) -> Rates {
    let window = facts.load_time.min(facts.profile.duration());
    let secs = window.as_secs_f64().max(1e-9);
    Rates {
        target: facts.profile.events_by(window) / secs,
        achieved: facts.sent as f64 / secs,
    }
}

/// The scenario as run, without secrets; for a shard, the scenario every
/// shard of the run shares (its own subject and durable follow from its
/// index), so that a merge reads one scenario whichever shard it takes.
fn config_json(config: &RunConfig) -> serde_json::Value {
    let mut scenario = config
        .shard
        .as_ref()
        .map_or(&config.scenario, |s| &s.whole)
        .clone();
    scenario.name = Some(config.name.clone());
    scenario.load.seed = Some(config.seed);
    scenario.target.url = scenario.target.url.as_deref().map(crate::target::redact);
    for secret in [&mut scenario.target.password, &mut scenario.target.token] {
        if secret.is_some() {
            *secret = Some("***".into());
        }
    }
    serde_json::to_value(&scenario).unwrap_or(serde_json::Value::Null)
}

/// Faults of the scenario that never started: the run ended (or was
/// stopped) first, such as when `--duration` shortened it.
fn faults_not_started(
    planned: &[crate::faults::Planned],
    applied: &[crate::faults::Applied],
) -> Option<String> {
    let missing: Vec<String> = planned
        .iter()
        .enumerate()
        .filter(|(i, _)| !applied.iter().any(|a| a.index == *i))
        .map(|(i, f)| format!("faults[{i}] ({} at {:?})", f.action.name(), f.at))
        .collect();
    (!missing.is_empty())
        .then(|| format!("{} never started: the run ended first", missing.join(", ")))
}

fn warnings(report: &Report, reconnects: u64, mut warnings: Vec<String>) -> Vec<String> {
    let lag = &report.latency["schedule_lag"];
    if report.saturated {
        warnings.push(format!(
            "the harness could not hold its schedule (schedule_lag p99 {:.2} ms, achieved {:.1} of {:.1} events/s, {} sends held back by max_in_flight): \
             the figures describe the harness's limit, not only the target's",
            lag.p99, report.rates.achieved, report.rates.target, report.counts.held_back
        ));
    }
    if !report.counts.invariants_hold() {
        warnings.push("an accounting invariant is broken: this is a harness bug, please report it with the JSON report".into());
    }
    if !report.consumer.acks_confirmed && report.counts.pending == 0 && !report.interrupted {
        warnings.push(
            "the server still counted acks pending at the end; some acks may not have arrived"
                .into(),
        );
    }
    let c = &report.counts;
    if c.collisions > 0 {
        warnings.push(format!(
            "{} events were not stored: the stream already held a message under their ids \
             (the run id was used within the duplicate window, or somebody published copies of its ids); \
             counted as publish_failed",
            c.collisions
        ));
    }
    if c.intended_out_of_range > 0 {
        warnings.push(format!(
            "{} deliveries carried an intended send time outside the run and were left out of end_to_end",
            c.intended_out_of_range
        ));
    }
    for panic in &report.panics {
        warnings.push(format!(
            "{panic}: the run fails, its figures are incomplete; this is a harness bug, please report it"
        ));
    }
    if reconnects > 0 {
        warnings.push(format!("{reconnects} reconnects to NATS during the run"));
    }
    if let Some(stuck) = &report.consumer_stuck {
        warnings.push(format!(
            "the consumer was stuck for {:.1} s from {:.1} s into the run: {} messages waited,              no handler was busy, nothing was delivered, and no fault was under way; the run fails",
            stuck.for_secs, stuck.since_secs, stuck.pending
        ));
    }
    for exit in &report.consumer.service_exits {
        warnings.push(format!(
            "the service exited on its own during the run ({exit}); the run fails; its log: {}",
            report.consumer.service_log.as_deref().unwrap_or("not kept")
        ));
    }
    let unrecovered: Vec<String> = report
        .faults
        .iter()
        .filter(|f| f.error.is_none() && f.cost.recovery_secs.is_none())
        .map(|f| format!("{} at {:.1} s", f.kind, f.started_secs))
        .collect();
    if !unrecovered.is_empty() {
        warnings.push(format!(
            "not back within the [recovery] bounds before the run ended: {}",
            unrecovered.join(", ")
        ));
    }
    warnings
}

pub fn build(
    facts: Facts,
    counts: Accounting,
    consumer: ConsumerState,
    interrupted: bool,
    aborted_by: Option<String>,
    extra_warnings: Vec<String>,
) -> Report {
    let latency = facts.stats.summaries();
    let distribution: BTreeMap<String, _> = Latency::ALL
        .into_iter()
        .map(|l| (l.name().to_string(), facts.stats.distribution(l)))
        .collect();
    let rates = rates(&facts);
    let completed = !interrupted && aborted_by.is_none();
    let saturated = latency["schedule_lag"].p99 > SATURATION_LAG_MS
        || (completed && rates.achieved < 0.99 * rates.target);
    let success_rate = Figures::success_rate_of(&counts);
    let config = facts.config;
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: config.name.clone(),
        scenario_file: config.file.display().to_string(),
        run_id: config.run_id.clone(),
        started_at: humantime::format_rfc3339_seconds(facts.started_at).to_string(),
        duration_secs: facts.duration.as_secs_f64(),
        load_secs: facts.load_time.as_secs_f64(),
        measured_from_secs: facts.measured_from.as_secs_f64(),
        // A shard's fingerprint is the whole run's, the same for each shard.
        fingerprint: crate::report::Fingerprint::of(
            config.shard.as_ref().map_or(&config.scenario, |s| &s.whole),
            &facts.target.server_version,
            facts.target.nodes,
        ),
        target: facts.target,
        config: config_json(config),
        counts,
        rates,
        success_rate,
        latency,
        distribution,
        histograms: facts.stats.encoded(),
        shard: facts.shard,
        merged: None,
        consumer,
        criteria: Vec::new(),
        faults: facts.faults,
        series: facts.series,
        consumer_stuck: facts.consumer_stuck,
        fault_figures: facts.fault_figures,
        garbage_sent: facts.garbage_sent,
        panics: facts.panics,
        interrupted,
        aborted_by,
        saturated,
        warnings: Vec::new(),
        passed: false,
    };
    let figures = report.figures();
    report.criteria = facts
        .plan
        .every_criterion()
        .map(|c| c.evaluate(&figures))
        .collect();
    let mut extra_warnings = extra_warnings;
    extra_warnings.extend(faults_not_started(&facts.plan.faults, &report.faults));
    report.warnings = warnings(&report, facts.reconnects, extra_warnings);
    report.passed = !report.interrupted
        && report.aborted_by.is_none()
        && report.counts.invariants_hold()
        && report.consumer_stuck.is_none()
        && report.consumer.service_exits.is_empty()
        && report.panics.is_empty()
        && report.criteria.iter().all(|c| c.passed);
    report
}

impl Experiment {
    /// Closes the books: what is still stored decides lost against pending,
    /// then the verdict.
    pub(super) async fn report(
        &self,
        ending: Ending,
        load_time: Duration,
        consumer: ConsumerState,
        mut faults: Vec<crate::faults::Applied>,
    ) -> Report {
        let (costs, fault_figures, consumer_stuck) = {
            let mut tracker = self.tracker();
            let at = ending.drained_at.as_secs_f64();
            let caught_up = !ending.interrupted && self.books.ledger.unresolved_count() == 0;
            tracker.finish(at, caught_up);
            (tracker.costs(), tracker.figures(at, true), tracker.stuck())
        };
        for fault in &mut faults {
            fault.cost = costs.get(fault.index).copied().unwrap_or_default();
        }
        let unresolved: Vec<(u64, u64, String)> = self
            .books
            .ledger
            .unresolved()
            .into_iter()
            .map(|(event, seq)| (event, seq, self.books.ledger.event_id(event)))
            .collect();
        let mut warnings = Vec::new();
        if self.late > Duration::from_millis(100) {
            warnings.push(format!(
                "the run was ready {:.2} s after --start-at: its first events went out late, \
                 and their latencies count from their intended times",
                self.late.as_secs_f64()
            ));
        }
        let gone = match provision::gone_from_stream(&self.target.provisioned.stream, &unresolved)
            .await
        {
            Ok(gone) => gone,
            Err(e) => {
                warnings.push(format!("could not check which unresolved events are still stored ({e}); counted as pending"));
                Vec::new()
            }
        };
        let accounting = self.books.ledger.account(&gone);
        let series = self.series_with_marks(&ending, load_time, &faults);
        let facts = Facts {
            config: &self.config,
            plan: &self.plan,
            target: self.target_with_proxy_counts().await,
            started_at: self.started_at,
            duration: self.start.instant.elapsed(),
            load_time,
            measured_from: self.warmup.min(load_time),
            profile: &self.profile,
            sent: Live::get(&self.books.ledger.live.sent),
            stats: &self.books.stats,
            reconnects: self
                .target
                .connections
                .iter()
                .map(|c| c.reconnects.load(std::sync::atomic::Ordering::Relaxed))
                .sum(),
            faults,
            fault_figures,
            consumer_stuck,
            garbage_sent: self
                .books
                .garbage_sent
                .load(std::sync::atomic::Ordering::Relaxed),
            panics: self.books.panics.list(),
            series,
            shard: self.config.shard.as_ref().map(|s| crate::shard::ShardInfo {
                index: s.shard.index,
                count: s.shard.count,
                scenario_hash: crate::shard::whole_hash(&s.whole),
                schedule_start: humantime::format_rfc3339_nanos(self.start.wall).to_string(),
                late_secs: self.late.as_secs_f64(),
            }),
        };
        build(
            facts,
            accounting,
            consumer,
            ending.interrupted,
            ending.aborted_by,
            warnings,
        )
    }

    /// The time series, with the phases and the fault windows marked.
    fn series_with_marks(
        &self,
        ending: &Ending,
        load_time: Duration,
        faults: &[crate::faults::Applied],
    ) -> crate::series::Series {
        use crate::series::Mark;
        let recorder =
            std::mem::take(&mut *self.books.series.lock().unwrap_or_else(|p| p.into_inner()));
        let load = load_time.as_secs_f64();
        let phases = vec![
            Mark {
                name: "load".into(),
                start_secs: 0.0,
                end_secs: Some(load),
            },
            Mark {
                name: "drain".into(),
                start_secs: load,
                end_secs: Some(ending.drained_at.as_secs_f64()),
            },
        ];
        let faults = faults
            .iter()
            .map(|f| Mark {
                name: f.kind.clone(),
                start_secs: f.started_secs,
                end_secs: f.recovered_secs,
            })
            .collect();
        recorder.finish(phases, faults)
    }

    /// The target, with what the proxy did by now.
    async fn target_with_proxy_counts(&self) -> TargetInfo {
        let mut target = self.target.info.clone();
        if let Some(cluster) = &self.target.cluster {
            let (cpu_secs, peak_rss_bytes) = cluster.lock().await.usage();
            target.server_usage = Some(crate::report::ServerUsage {
                cpu_secs,
                peak_rss_bytes,
            });
        }
        if let (Some(info), Some(proxy)) = (&mut target.proxy, &self.target.proxy) {
            info.dropped_bytes = proxy.dropped_bytes();
            info.resets = proxy.resets();
        }
        target
    }
}
