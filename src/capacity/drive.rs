//! Carrying out a search: each trial a whole run of the scenario at one
//! constant rate, on a fresh embedded server or a purged stream, judged by
//! [`super::judge`]; then, for `[[variants]]`, one search per variant and
//! a trial each at a common rate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::search::{Ending, Search, Step};
use super::{apply_variant, judge, table, variant_name, CapacityResult, Configurations, Trial};
use super::{VariantResult, SCHEMA_VERSION};
use crate::error::HarnessError;
use crate::progress;
use crate::report::Fingerprint;
use crate::run::{self, MetricsOptions, RunConfig, Signals};
use crate::scenario::{self, Scenario, Variant};

/// What a search needs besides the scenario.
#[derive(Debug, Clone)]
pub struct CapacityOptions {
    pub file: PathBuf,
    pub name: String,
    /// Trials run as `<run_id>_t<n>`.
    pub run_id: String,
    pub seed: Option<u64>,
    pub progress: progress::Mode,
    pub metrics: MetricsOptions,
}

/// Why the trials stopped early.
enum Stop {
    Interrupted,
    Error(String),
}

/// The scenario of one trial: the load replaced by `rate` for the warm-up
/// plus the measured time, the drain bounded by the capacity's.
pub fn trial_scenario(s: &Scenario, rate: f64, measured: Duration) -> Result<Scenario, String> {
    let mut t = s.clone();
    t.load.phases.clear();
    t.load.rate = Some(rate);
    t.load.duration = Some(s.capacity.warmup + measured);
    t.drain.timeout = s.capacity.drain;
    scenario::validate(&t)
        .map_err(|e| format!("at {rate} events/s, `{}`: {}", e.key, e.message))?;
    Ok(t)
}

/// A JetStream stream and consumer as fresh as a new server's: purged,
/// the durable deleted so that its counts start at zero. Only for an
/// external server; an embedded one is started anew for each trial.
async fn purge(s: &Scenario) -> Result<(), String> {
    let Some(url) = &s.target.url else {
        return Ok(());
    };
    let state = Arc::new(crate::target::ConnectionState::default());
    let client = crate::target::connect(&s.target, url, "harness-capacity", false, state)
        .await
        .map_err(|e| e.to_string())?;
    let js = async_nats::jetstream::new(client.clone());
    for name in [&s.stream.name, &s.consumer.dead_letter_stream] {
        if let Ok(stream) = js.get_stream(name).await {
            if name == &s.stream.name {
                let _ = stream.delete_consumer(&s.consumer.durable).await;
            }
            stream
                .purge()
                .await
                .map_err(|e| format!("cannot purge stream `{name}` before the trial: {e}"))?;
        }
    }
    let _ = client.drain().await;
    Ok(())
}

struct Trials<'a> {
    options: &'a CapacityOptions,
    signals: &'a Signals,
    count: usize,
    say: &'a mut dyn FnMut(&str),
}

impl Trials<'_> {
    async fn run(&mut self, s: &Scenario, step: Step) -> Result<Trial, Stop> {
        let measured = s.capacity.trial * if step.long { 2 } else { 1 };
        let scenario = trial_scenario(s, step.rate, measured).map_err(Stop::Error)?;
        purge(&scenario).await.map_err(Stop::Error)?;
        self.count += 1;
        let config = RunConfig {
            scenario,
            name: self.options.name.clone(),
            file: self.options.file.clone(),
            run_id: format!("{}_t{}", self.options.run_id, self.count),
            seed: self.options.seed.unwrap_or_else(rand::random),
            progress: self.options.progress,
            metrics: self.options.metrics.clone(),
            shard: None,
            start_at: None,
        };
        let report = match run::run_trial(config, self.signals.clone(), s.capacity.warmup).await {
            Ok(report) => report,
            Err(HarnessError::Interrupted(_)) => return Err(Stop::Interrupted),
            Err(e) => return Err(Stop::Error(e.to_string())),
        };
        let mut trial = judge(step.rate, step.confirmation, report, &s.capacity);
        trial.long = step.long;
        (self.say)(&table::trial_row(self.count, &trial));
        // An interrupted trial is kept in the result, and ends the search.
        Ok(trial)
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn empty_result(
    s: &Scenario,
    options: &CapacityOptions,
    variant: Option<&Variant>,
) -> CapacityResult {
    CapacityResult {
        kind: "capacity".into(),
        schema_version: SCHEMA_VERSION,
        harness_version: env!("CARGO_PKG_VERSION").into(),
        scenario: options.name.clone(),
        scenario_file: options.file.display().to_string(),
        variant: variant.map(variant_name),
        started_at: now_rfc3339(),
        duration_secs: 0.0,
        msr: None,
        ending: Ending::Stopped,
        limited_by: None,
        harness_limited: false,
        knobs: s.capacity.clone(),
        fingerprint: Fingerprint::of(
            s,
            "",
            if s.target.url.is_none() {
                s.target.nodes
            } else {
                0
            },
        ),
        trials: Vec::new(),
        server_usage: None,
        interrupted: false,
        error: None,
        warnings: Vec::new(),
    }
}

/// Searches the maximum sustainable rate of `s` (with `variant`'s settings
/// in place), saying each trial's row as it ends. Never fails: a trial
/// that cannot run ends the search with the error in the result.
pub async fn search_capacity(
    s: &Scenario,
    options: &CapacityOptions,
    signals: &Signals,
    say: &mut dyn FnMut(&str),
) -> CapacityResult {
    let began = Instant::now();
    let mut result = empty_result(s, options, None);
    let knobs = &s.capacity;
    let mut search = Search::new(knobs.start_rate, knobs.max_rate, knobs.precision);
    let mut trials = Trials {
        options,
        signals,
        count: 0,
        say,
    };
    while let Some(step) = search.next_step() {
        if result.trials.len() >= knobs.max_trials as usize {
            search.stop(Ending::OutOfTrials);
            break;
        }
        match trials.run(s, step).await {
            Ok(trial) if trial.report.interrupted => {
                result.trials.push(trial);
                result.interrupted = true;
                search.stop(Ending::Stopped);
            }
            Ok(trial) => {
                search.record(trial.sustainable);
                result.trials.push(trial);
            }
            Err(Stop::Interrupted) => {
                result.interrupted = true;
                search.stop(Ending::Stopped);
            }
            Err(Stop::Error(e)) => {
                result.error = Some(e);
                search.stop(Ending::Stopped);
            }
        }
    }
    finish(&mut result, &search);
    result.duration_secs = began.elapsed().as_secs_f64();
    result
}

/// The MSR and what limited it, from the trials.
fn finish(result: &mut CapacityResult, search: &Search) {
    result.msr = search.best();
    result.ending = search.ending().unwrap_or(Ending::Stopped);
    let msr = result.msr.unwrap_or(0.0);
    // What failed at the lowest rate above the MSR that failed.
    let above = result
        .trials
        .iter()
        .filter(|t| !t.sustainable && t.rate > msr && !t.report.interrupted)
        .min_by(|a, b| a.rate.total_cmp(&b.rate));
    result.limited_by = above.and_then(|t| t.failures.first().cloned());
    result.harness_limited = result.limited_by.as_ref().is_some_and(|f| f.is_harness());
    if let Some(first) = result.trials.first() {
        result.fingerprint = first.report.fingerprint.clone();
    }
    // A long trial at the MSR that was sustained confirmed it, whether it
    // ran as a confirmation or as a long bisection step.
    if let Some(msr) = result.msr {
        if let Some(t) = result
            .trials
            .iter_mut()
            .rev()
            .find(|t| t.long && t.sustainable && t.rate == msr)
        {
            t.confirmation = true;
        }
    }
    result.server_usage = result
        .trials
        .iter()
        .rev()
        .find(|t| t.confirmation && t.sustainable)
        .and_then(|t| t.report.target.server_usage);
    let warning = match result.ending {
        Ending::AtMaxRate => Some(format!(
            "sustainable at capacity.max_rate ({} events/s): the pipeline may take more; raise max_rate",
            msr
        )),
        Ending::OutOfTrials => Some(format!(
            "capacity.max_trials ({}) ran out before the search converged: the MSR is the best found so far, unconfirmed",
            result.knobs.max_trials
        )),
        Ending::Unconfirmed => Some(
            "confirmation trials kept failing: the pipeline is not steady near its limit; the MSR is the highest rate a short trial sustained".into(),
        ),
        _ => None,
    };
    result.warnings.extend(warning);
    if result.harness_limited {
        result.warnings.push(
            "the harness's own schedule broke first above the MSR: the pipeline may sustain more with the load generated from more cores or another machine (see `harness_limited`)"
                .into(),
        );
    }
}

/// One search per variant, then one trial per variant at the common rate
/// (`capacity.common_rate`, else half the lowest MSR found).
pub async fn search_configurations(
    s: &Scenario,
    options: &CapacityOptions,
    signals: &Signals,
    say: &mut dyn FnMut(&str),
) -> Configurations {
    let mut out = Configurations {
        kind: "configurations".into(),
        schema_version: SCHEMA_VERSION,
        scenario: options.name.clone(),
        scenario_file: options.file.display().to_string(),
        started_at: now_rfc3339(),
        common_rate: None,
        variants: Vec::new(),
        interrupted: false,
        error: None,
    };
    let mut scenarios = Vec::new();
    for variant in &s.variants {
        let mut v = s.clone();
        apply_variant(&mut v, variant);
        v.variants.clear();
        scenarios.push(v);
    }
    for (variant, v) in s.variants.iter().zip(&scenarios) {
        let name = variant_name(variant);
        say(&format!("\n== {name} ==\n{}", table::trial_header()));
        let mut options = options.clone();
        options.run_id = format!("{}_v{}", options.run_id, out.variants.len() + 1);
        let mut capacity = search_capacity(v, &options, signals, say).await;
        capacity.variant = Some(name.clone());
        say(&table::render_result(&capacity));
        let stop = capacity.interrupted || capacity.error.is_some();
        out.interrupted |= capacity.interrupted;
        out.error = out.error.take().or(capacity.error.clone());
        out.variants.push(VariantResult {
            name,
            settings: variant.clone(),
            capacity,
            common: None,
        });
        if stop {
            return out;
        }
    }
    let common = s.capacity.common_rate.or_else(|| {
        out.variants
            .iter()
            .filter_map(|v| v.capacity.msr)
            .reduce(f64::min)
            .map(|m| super::search::round(m / 2.0))
    });
    out.common_rate = common;
    let Some(rate) = common else {
        return out;
    };
    say(&format!(
        "\n== every variant at {rate} events/s, numbered in the order above ==\n{}",
        table::trial_header()
    ));
    for (i, v) in scenarios.iter().enumerate() {
        let mut options = options.clone();
        options.run_id = format!("{}_c{}", options.run_id, i + 1);
        // Rows numbered as the variants are.
        let mut trials = Trials {
            options: &options,
            signals,
            count: i,
            say,
        };
        let step = Step {
            rate,
            confirmation: false,
            long: false,
        };
        match trials.run(v, step).await {
            Ok(trial) => {
                let interrupted = trial.report.interrupted;
                out.variants[i].common = Some(trial);
                if interrupted {
                    out.interrupted = true;
                    break;
                }
            }
            Err(Stop::Interrupted) => {
                out.interrupted = true;
                break;
            }
            Err(Stop::Error(e)) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out
}
