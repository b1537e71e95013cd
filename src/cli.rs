//! The command line: `harness run`, `validate`, `report`, `capacity`,
//! `compare` and `merge`, their flags and the environment variables that
//! stand in for them in CI.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{exit, HarnessError};
use crate::progress;
use crate::report::summary;
use crate::run::{self, MetricsOptions, RunConfig, Signals};
use crate::scenario::{self, Scenario};

/// Stress and reliability experiments against NATS JetStream.
///
/// A scenario file (TOML) describes the stream, the load, the consumer under
/// test and the pass/fail criteria. `harness run` carries it out, accounts for
/// every event, prints a summary and exits 0 if every criterion passed.
///
/// Exit codes: 0 passed · 1 a criterion failed · 2 bad usage or invalid
/// scenario · 3 NATS could not be started, reached or provisioned ·
/// 130 interrupted (the partial report is written).
#[derive(Debug, Parser)]
#[command(name = "harness", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HARNESS_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter: a level (off, error, warn, info, debug, trace) or
    /// TARGET=LEVEL, comma-separated, e.g. `info`, `warn,harness=debug`.
    /// Passwords and tokens never show, whatever the level.
    #[arg(long, global = true, default_value = "warn", env = "HARNESS_LOG", value_parser = crate::logging::check_filter)]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario against NATS and report the verdict.
    ///
    /// With no URL in the scenario and none given here, the harness starts its
    /// own nats-server (NATS_SERVER_BIN, then PATH, then .tools/bin).
    Run(Box<RunArgs>),
    /// Check scenario files without running them.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Draw saved JSON reports (from `--report-json`) as an HTML page.
    ///
    /// One report gives the same page as `run --report-html`. With
    /// `--baseline`, a second run is drawn dashed behind it for comparison.
    /// Several reports of one scenario at different rates add a chart of
    /// latency against rate with the highest passing rate marked, and the
    /// page details the run at that rate.
    ///
    /// Exit codes: 0 written · 2 a report cannot be read or the page cannot
    /// be written.
    Report(ReportArgs),
    /// Search the highest rate the scenario's pipeline sustains.
    ///
    /// Each trial is a whole run at one constant rate (the scenario's load
    /// profile is replaced), on a fresh embedded server or, for an external
    /// one, a purged stream and a new durable. A rate is sustainable when,
    /// after the warm-up, the trial achieves at least 99% of it, the backlog
    /// grows no faster than `max_backlog_growth` of it per second and drains
    /// within `drain`, nothing is lost, and every criterion of the scenario
    /// holds. The search doubles from `start_rate` until a trial fails,
    /// bisects until (hi - lo) / lo < `precision`, then confirms the result
    /// with a trial twice as long. If the harness's own schedule lag broke
    /// first, the result says the harness was the limit.
    ///
    /// Knobs come from the scenario's `[capacity]` table; the flags below
    /// override them. With `[[variants]]`, each variant is searched in
    /// turn, then every variant runs once at a common rate, and a table
    /// compares them.
    ///
    /// Exit codes: 0 a sustainable rate was found · 1 none was · 2 bad usage
    /// or invalid scenario · 3 a trial could not start or reach NATS · 130
    /// interrupted (the partial result is written).
    Capacity(Box<CapacityArgs>),
    /// Compare two JSON reports (runs or capacity results) for regressions.
    ///
    /// Each figure has a direction (latency lower is better, rates higher)
    /// and a tolerance of max(relative share, absolute floor), from the
    /// current report's `[compare]` table unless the flags below override
    /// it. Latency is compared across its percentile range; a capacity
    /// result's maximum sustainable rate too. Loss and new dead letters are
    /// never tolerated. The reports' fingerprints (scenario, harness and
    /// nats-server versions, storage, replicas, nodes, payload, cores) must
    /// match unless `--allow-mismatch` is given.
    ///
    /// Exit codes: 0 nothing regressed · 1 a figure regressed · 2 bad usage,
    /// an unreadable report, or reports that cannot be compared.
    Compare(CompareArgs),
    /// Merge the reports of a run's shards into one report and one verdict.
    ///
    /// Each shard (`harness run --shard K/N --report-json ...`) accounted
    /// for its own events; the merged counts are their sums, each latency
    /// comes from the sum of the shards' HDR histograms (exact, never an
    /// average of percentiles), the series line up on the absolute
    /// timeline, and the scenario's criteria are evaluated once, on the
    /// merged figures. A missing shard, a shard given twice, or a report
    /// of another run, scenario or shard count fails the merged verdict
    /// with its own reason.
    ///
    /// Exit codes: 0 the merged verdict passed · 1 it failed (a criterion,
    /// or a shard missing, doubled or foreign) · 2 a report cannot be read,
    /// or none is a shard's.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// NATS server URL(s), comma-separated; overrides `target.url`.
    #[arg(long, env = "HARNESS_NATS_URL")]
    pub nats_url: Option<String>,
    /// The first trial's rate, events/s (`capacity.start_rate`).
    #[arg(long, allow_negative_numbers = true)]
    pub start_rate: Option<f64>,
    /// The probe never goes above this rate (`capacity.max_rate`).
    #[arg(long, allow_negative_numbers = true)]
    pub max_rate: Option<f64>,
    /// Stop bisecting once (hi - lo) / lo is below this (`capacity.precision`).
    #[arg(long, allow_negative_numbers = true)]
    pub precision: Option<f64>,
    /// Measured length of a trial after its warm-up (`capacity.trial`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub trial: Option<Duration>,
    /// Warm-up at the start of each trial, not measured (`capacity.warmup`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Backlog growth allowed, as a share of the rate per second
    /// (`capacity.max_backlog_growth`).
    #[arg(long, allow_negative_numbers = true)]
    pub max_backlog_growth: Option<f64>,
    /// The backlog must be gone this long after the load (`capacity.drain`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub drain: Option<Duration>,
    /// The harness's schedule_lag p99 above this means the harness was the
    /// limit (`capacity.max_schedule_lag`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub max_schedule_lag: Option<Duration>,
    /// Give up after this many trials (`capacity.max_trials`).
    #[arg(long)]
    pub max_trials: Option<u32>,
    /// With variants: the rate every variant runs at once for the latency
    /// comparison (`capacity.common_rate`; default half the lowest MSR).
    #[arg(long)]
    pub common_rate: Option<f64>,
    /// Write the result as JSON here, every trial's report inside (partial
    /// results too).
    #[arg(long, env = "HARNESS_REPORT_JSON")]
    pub report_json: Option<PathBuf>,
    /// Write the trials as one HTML page here: latency against rate with the
    /// MSR marked, and the confirmation trial in detail. With variants, one
    /// page per variant beside it (`NAME-v1.html`, ...).
    #[arg(long, env = "HARNESS_REPORT_HTML", value_name = "PATH")]
    pub report_html: Option<PathBuf>,
    /// Run id prefix; each trial runs as `<ID>_t<n>`. Random if unset.
    #[arg(long, env = "HARNESS_RUN_ID")]
    pub run_id: Option<String>,
    /// Seed for arrivals, payloads and simulated outcomes; overrides `load.seed`.
    #[arg(long, env = "HARNESS_SEED")]
    pub seed: Option<u64>,
    /// No progress display within trials (the rows are still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// Serve Prometheus metrics on this address during each trial (`off` for none).
    #[arg(long, env = "HARNESS_METRICS_ADDR", default_value = "127.0.0.1:9464", value_parser = parse_metrics_addr)]
    pub metrics_addr: MetricsAddr,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The reference report, such as main's.
    pub baseline: PathBuf,
    /// The report of the change under review.
    pub current: PathBuf,
    /// Latency percentiles may be worse by this share (`compare.latency`;
    /// 0.25 is 25%)...
    #[arg(long)]
    pub latency_tolerance: Option<f64>,
    /// ...and by this much (`compare.latency_floor`), whichever is larger.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub latency_floor: Option<Duration>,
    /// Achieved rate and success rate may be lower by this share (`compare.rate`).
    #[arg(long)]
    pub rate_tolerance: Option<f64>,
    /// The maximum sustainable rate may be lower by this share (`compare.msr`).
    #[arg(long)]
    pub msr_tolerance: Option<f64>,
    /// Compare even if the fingerprints differ (the differences are still shown).
    #[arg(long)]
    pub allow_mismatch: bool,
    /// Write the comparison as JSON here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' JSON reports.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged JSON report here.
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// Write the merged verdict as JUnit XML here.
    #[arg(long, value_name = "PATH")]
    pub report_junit: Option<PathBuf>,
    /// Write the merged report as one self-contained HTML page here.
    #[arg(long, value_name = "PATH")]
    pub report_html: Option<PathBuf>,
    /// Write an HdrHistogram interval log per latency into this folder.
    #[arg(long, value_name = "DIR")]
    pub hdr_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON reports written by `harness run --report-json`.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the HTML page here.
    #[arg(long, value_name = "PATH")]
    pub html: PathBuf,
    /// A JSON report to draw dashed behind the run, such as main's.
    #[arg(long, value_name = "JSON")]
    pub baseline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// NATS server URL(s), comma-separated; overrides `target.url`.
    #[arg(long, env = "HARNESS_NATS_URL")]
    pub nats_url: Option<String>,
    /// Load duration, e.g. `30s`, `5m`; overrides `load.duration` (constant-rate scenarios).
    #[arg(long, env = "HARNESS_DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Events per second; overrides `load.rate` (constant-rate scenarios).
    // A negative value reaches validation, which says what is allowed,
    // instead of clap reading `-1` as an unknown flag.
    #[arg(long, env = "HARNESS_RATE", allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Write the JSON report here (partial reports too).
    #[arg(long, env = "HARNESS_REPORT_JSON")]
    pub report_json: Option<PathBuf>,
    /// Write the verdict as JUnit XML here, for CI test views: a test case
    /// per criterion, per accounting invariant, and for the run itself.
    #[arg(long, env = "HARNESS_REPORT_JUNIT")]
    pub report_junit: Option<PathBuf>,
    /// Write the report as one self-contained HTML page here: the verdict,
    /// criteria and accounting, latency, rates and backlog over time with
    /// fault windows shaded, and each latency's distribution. Opens offline.
    #[arg(long, env = "HARNESS_REPORT_HTML", value_name = "PATH")]
    pub report_html: Option<PathBuf>,
    /// Write an HdrHistogram interval log per latency into this folder
    /// (`publish.hlog`, `end_to_end.hlog`, ...), one histogram per second,
    /// for HdrHistogram's own tools.
    #[arg(long, env = "HARNESS_HDR_LOG", value_name = "DIR")]
    pub hdr_log: Option<PathBuf>,
    /// Run id used in event ids and labels; random if unset.
    #[arg(long, env = "HARNESS_RUN_ID")]
    pub run_id: Option<String>,
    /// Seed for arrivals, payloads and simulated outcomes; overrides `load.seed`.
    #[arg(long, env = "HARNESS_SEED")]
    pub seed: Option<u64>,
    /// Run shard K of N (K from 0): every Nth event of the schedule, on
    /// the subject `<load.subject>.K` through the durable `<durable>-K`,
    /// so that N processes, on as many machines, send the whole schedule
    /// together; `harness merge` adds their reports. Needs --run-id, the
    /// same for every shard.
    #[arg(long, env = "HARNESS_SHARD", value_name = "K/N")]
    pub shard: Option<crate::shard::Shard>,
    /// Begin the schedule at this time (RFC 3339, UTC, such as
    /// 2026-12-04T18:00:00Z) once ready, so that shards start together. A
    /// shard ready late sends what is overdue at once, and says so.
    #[arg(long, env = "HARNESS_START_AT", value_name = "TIME", value_parser = crate::shard::parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// No progress display (the summary is still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// Serve Prometheus metrics on this address for the whole run (`off` for none).
    #[arg(long, env = "HARNESS_METRICS_ADDR", default_value = "127.0.0.1:9464", value_parser = parse_metrics_addr)]
    pub metrics_addr: MetricsAddr,
    /// Keep serving /metrics this long after the run, so its end is scraped.
    #[arg(long, env = "HARNESS_METRICS_LINGER", default_value = "0s", value_parser = humantime::parse_duration)]
    pub metrics_linger: Duration,
    /// Write the final metrics (Prometheus text format) to this file.
    #[arg(long, env = "HARNESS_METRICS_OUT")]
    pub metrics_out: Option<PathBuf>,
    /// Push the final metrics to this Pushgateway, e.g. `http://127.0.0.1:9091`.
    #[arg(long, env = "HARNESS_PUSHGATEWAY")]
    pub pushgateway: Option<String>,
}

/// A listen address, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

fn parse_metrics_addr(text: &str) -> Result<MetricsAddr, String> {
    if text.eq_ignore_ascii_case("off") || text.is_empty() {
        return Ok(MetricsAddr(None));
    }
    text.parse()
        .map(|addr| MetricsAddr(Some(addr)))
        .map_err(|_| format!("`{text}` is not an address such as 127.0.0.1:9464 (or `off`)"))
}

/// Runs the parsed command line and returns the process exit code.
pub async fn execute(cli: Cli, signals: Signals) -> i32 {
    match cli.command {
        Command::Validate { files } => {
            // Reading a file can block (a FIFO, a stuck network mount): on
            // its own thread, so a Ctrl+C still ends the command.
            let checked = tokio::task::spawn_blocking(move || validate(&files));
            tokio::select! {
                code = checked => code.unwrap_or(exit::INFRASTRUCTURE),
                _ = signals.interrupt.cancelled() => {
                    say_error("interrupted");
                    exit::INTERRUPTED
                }
            }
        }
        Command::Report(args) => match draw(&args) {
            Ok(()) => exit::PASSED,
            Err(e) => {
                say_error(&format!("error: {e}"));
                exit::USAGE
            }
        },
        Command::Capacity(args) => match crate::capacity::cli::capacity(*args, signals).await {
            Ok(code) => code,
            Err(e) => {
                say_error(&format!("error: {e}"));
                e.exit_code()
            }
        },
        Command::Compare(args) => crate::compare::cli::compare(&args),
        Command::Merge(args) => crate::merge::cli::merge(&args),
        Command::Run(args) => match run_scenario(*args, signals).await {
            Ok(code) => code,
            Err(e) => {
                say_error(&format!("error: {e}"));
                e.exit_code()
            }
        },
    }
}

fn validate(files: &[PathBuf]) -> i32 {
    let mut code = exit::PASSED;
    for file in files {
        match scenario::load(file) {
            Ok(s) => {
                let rehearsal = crate::rehearsal::rehearse(&s, s.load.seed.unwrap_or(0));
                println!("{}: ok: {rehearsal}", file.display());
            }
            Err(e) => {
                eprintln!("{e}");
                code = exit::USAGE;
            }
        }
    }
    code
}

/// `harness report`: the page for saved reports.
fn draw(args: &ReportArgs) -> Result<(), String> {
    use crate::report::{html, output, Report};
    let runs = args
        .reports
        .iter()
        .map(|path| Report::read_json(path))
        .collect::<Result<Vec<_>, _>>()?;
    let baseline = args
        .baseline
        .as_deref()
        .map(Report::read_json)
        .transpose()?;
    // Several runs: the page details the highest achieved rate that passed
    // (the one the chart marks), else the last one given.
    let shown = runs
        .iter()
        .filter(|r| r.passed)
        .max_by(|a, b| a.rates.achieved.total_cmp(&b.rates.achieved))
        .or(runs.last())
        .ok_or("no reports given")?;
    let page = html::Page {
        report: shown,
        baseline: baseline.as_ref(),
        sweep: if runs.len() >= 2 { &runs } else { &[] },
    };
    output::write_atomically(&args.html, html::render(&page).as_bytes())
        .map_err(|e| format!("--html {}: cannot write there: {e}", args.html.display()))?;
    println!("  report: {}", args.html.display());
    Ok(())
}

/// Applies command-line values over the file's, then validates again.
pub fn apply_overrides(s: &mut Scenario, args: &RunArgs) -> Result<(), HarnessError> {
    if let Some(url) = &args.nats_url {
        s.target.url = Some(url.clone());
    }
    if args.duration.is_some() || args.rate.is_some() {
        if !s.load.phases.is_empty() {
            return Err(HarnessError::Usage(
                "--duration and --rate apply to constant-rate scenarios; this one has load.phases"
                    .into(),
            ));
        }
        if let Some(duration) = args.duration {
            s.load.duration = Some(duration);
        }
        if let Some(rate) = args.rate {
            s.load.rate = Some(rate);
        }
    }
    if let Some(seed) = args.seed {
        s.load.seed = Some(seed);
    }
    scenario::validate(s).map_err(|invalid| {
        let flag = overridden_by(&invalid.key, args);
        HarnessError::Usage(match flag {
            Some(flag) => format!("{flag} (`{}`): {}", invalid.key, invalid.message),
            None => format!(
                "after command-line overrides, `{}` is invalid: {}",
                invalid.key, invalid.message
            ),
        })
    })
}

/// The furthest ahead `--start-at` may lie: further is taken for a typo.
const START_AT_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// A `--start-at` the run can keep: not so far past that the whole
/// schedule would be overdue, not more than a day ahead.
fn check_start_at(at: SystemTime, s: &Scenario, now: SystemTime) -> Result<(), HarnessError> {
    let shown = humantime::format_rfc3339_seconds(at);
    let length = crate::schedule::Profile::from_load(&s.load).duration();
    match at.duration_since(now) {
        Ok(ahead) if ahead > START_AT_AHEAD => Err(HarnessError::Usage(format!(
            "--start-at {shown} is {} ahead, more than a day: give the time the shards should begin",
            humantime::format_duration(Duration::from_secs(ahead.as_secs()))
        ))),
        Err(past) if past.duration() >= length => Err(HarnessError::Usage(format!(
            "--start-at {shown} was {} ago, longer than the schedule ({}): every event would be overdue; \
             give a time a little ahead, for every shard alike",
            humantime::format_duration(Duration::from_secs(past.duration().as_secs())),
            humantime::format_duration(length)
        ))),
        _ => Ok(()),
    }
}

/// The scenario this process runs, its shard, and the seed. Every shard
/// must draw the same schedule, so without a seed they derive one from the
/// run id they share.
fn shard_of(
    whole: Scenario,
    args: &RunArgs,
    run_id: &str,
) -> Result<(Scenario, Option<run::ShardRun>, u64), HarnessError> {
    let Some(shard) = args.shard else {
        let seed = whole.load.seed.unwrap_or_else(rand::random);
        return Ok((whole, None, seed));
    };
    if whole.target.url.is_none() {
        return Err(HarnessError::Usage(format!(
            "--shard {shard}: the shards of a run load one NATS system together; give its \
             address with --nats-url or target.url (without one, each shard would start a \
             server of its own)"
        )));
    }
    if args.run_id.is_none() {
        return Err(HarnessError::Usage(format!(
            "--shard {shard}: give every shard of the run the same --run-id, so that \
             their event ids, seed and reports belong together"
        )));
    }
    let mut whole = whole;
    let seed = whole.load.seed.unwrap_or_else(|| {
        let hash = blake3::hash(run_id.as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(bytes)
    });
    whole.load.seed = Some(seed);
    let mut mine = whole.clone();
    shard
        .apply(&mut mine)
        .map_err(|e| HarnessError::Usage(format!("--shard {shard}: {e}")))?;
    scenario::validate(&mine).map_err(|invalid| {
        HarnessError::Usage(format!(
            "--shard {shard}: `{}` is invalid for the shard: {}",
            invalid.key, invalid.message
        ))
    })?;
    Ok((mine, Some(run::ShardRun { shard, whole }), seed))
}

/// Writes `report` to each path given, in the order JSON, JUnit, HTML,
/// HdrHistogram logs, then prints the summary and where each went. The
/// files come first: after a hangup the terminal is gone, and what is said
/// there may be lost, but the reports must not be. Each is written even if
/// another cannot be; the exit code stays the verdict's. A closed stdout
/// (a hangup, `| head`) is no error.
pub(crate) fn write_and_say(report: &crate::report::Report, paths: [&Option<PathBuf>; 4]) {
    type Writer = fn(&crate::report::Report, &Path) -> std::io::Result<()>;
    let writers: [Writer; 4] = [
        crate::report::Report::write_json,
        crate::report::Report::write_junit,
        crate::report::Report::write_html,
        crate::report::Report::write_hdr_logs,
    ];
    let mut said = Vec::new();
    for (path, write) in paths.into_iter().zip(writers) {
        let Some(path) = path else { continue };
        match write(report, path) {
            Ok(()) => said.push(format!("  report: {}", path.display())),
            Err(e) => {
                // An earlier run's file there must not pass for this one's.
                let _ = std::fs::remove_file(path);
                say_error(&format!("error: cannot write {}: {e}", path.display()));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", summary::render(report));
    for line in said {
        let _ = writeln!(out, "{line}");
    }
}

/// The flag that set `key`, if one did: the error should name what the
/// user typed.
fn overridden_by(key: &str, args: &RunArgs) -> Option<&'static str> {
    match key {
        "target.url" if args.nats_url.is_some() => Some("--nats-url"),
        "load.rate" if args.rate.is_some() => Some("--rate"),
        "load.duration" if args.duration.is_some() => Some("--duration"),
        _ => None,
    }
}

pub(crate) fn run_id(given: Option<&str>) -> Result<String, HarnessError> {
    match given {
        Some(id) if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => Ok(id.to_string()),
        Some(id) => Err(HarnessError::Usage(format!(
            "--run-id `{id}`: use 1 to 64 letters, digits or `_` (it becomes part of every event id)"
        ))),
        None => Ok(format!("r{:08x}", rand::random::<u32>())),
    }
}

/// A line on stderr; a closed stderr is no reason to fail (`eprintln!`
/// would panic).
pub(crate) fn say_error(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Every output path, checked before the run so that a typo costs seconds,
/// not a whole run (exit 2).
fn check_outputs(args: &RunArgs) -> Result<(), HarnessError> {
    // A folder is checked by a file it will hold.
    let hdr_log = args.hdr_log.as_ref().map(|dir| dir.join("publish.hlog"));
    let outputs = [
        ("--report-json", &args.report_json),
        ("--report-junit", &args.report_junit),
        ("--report-html", &args.report_html),
        ("--metrics-out", &args.metrics_out),
        ("--hdr-log", &hdr_log),
    ];
    for (flag, path) in outputs {
        let Some(path) = path else { continue };
        crate::report::output::check_writable(path).map_err(|e| {
            HarnessError::Usage(format!(
                "{flag} {}: cannot write there: {e}",
                path.display()
            ))
        })?;
    }
    Ok(())
}

async fn run_scenario(args: RunArgs, signals: Signals) -> Result<i32, HarnessError> {
    let mut scenario = scenario::load(&args.scenario)?;
    apply_overrides(&mut scenario, &args)?;
    check_outputs(&args)?;
    crate::logging::hide_secrets(crate::target::secrets(&scenario.target));
    let name = scenario.name_or_stem(&args.scenario);
    let run_id = run_id(args.run_id.as_deref())?;
    let (scenario, shard, seed) = shard_of(scenario, &args, &run_id)?;
    if let Some(at) = args.start_at {
        check_start_at(at, &scenario, SystemTime::now())?;
    }
    tracing::info!(scenario = %name, %run_id, seed, "starting run");
    let config = RunConfig {
        scenario,
        name,
        file: args.scenario.clone(),
        run_id,
        seed,
        progress: progress::Mode::detect(args.quiet),
        metrics: MetricsOptions {
            addr: args.metrics_addr.0,
            linger: args.metrics_linger,
            out: args.metrics_out.clone(),
            pushgateway: args.pushgateway.clone(),
        },
        shard,
        start_at: args.start_at,
    };
    let (report, telemetry) = run::run_with_telemetry(config, signals.clone()).await?;
    let paths = [
        &args.report_json,
        &args.report_junit,
        &args.report_html,
        &args.hdr_log,
    ];
    write_and_say(&report, paths);
    telemetry.linger(&signals).await;
    Ok(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_checked_or_generated() {
        assert_eq!(run_id(Some("ci_42")).unwrap(), "ci_42");
        assert!(
            run_id(Some("has-dash")).is_err(),
            "a dash would make ids ambiguous"
        );
        assert!(run_id(Some("")).is_err());
        let generated = run_id(None).unwrap();
        assert_eq!(generated.len(), 9);
        assert!(generated.starts_with('r'));
    }

    #[test]
    fn the_command_line_parses_and_documents_itself() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "harness",
            "run",
            "s.toml",
            "--rate",
            "50",
            "--duration",
            "30s",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(args.rate, Some(50.0));
        assert_eq!(args.duration, Some(Duration::from_secs(30)));
        assert_eq!(
            args.metrics_addr,
            MetricsAddr(Some("127.0.0.1:9464".parse().unwrap()))
        );
        assert_eq!(parse_metrics_addr("off").unwrap(), MetricsAddr(None));
        assert!(parse_metrics_addr("localhost").is_err());
    }
}
