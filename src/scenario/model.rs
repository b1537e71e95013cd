//! The scenario file's shape: every key, its type and its default.
//!
//! These types mirror the TOML one to one. `deny_unknown_fields` everywhere
//! makes a typo an error instead of a silently ignored setting. Defaults follow
//! the settings NATS users already run in production (publish timeout 10s,
//! three retries with 1s-2s-4s backoff, ack_wait 30s, max_deliver 5, file
//! storage), so a scenario only states what it changes.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::{self, ByteSize};

/// A whole scenario file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Name used in reports and metric labels; defaults to the file stem.
    pub name: Option<String>,
    pub description: Option<String>,
    pub target: Target,
    pub stream: Stream,
    pub load: Load,
    pub publish: Publish,
    pub consumer: Consumer,
    pub drain: Drain,
    pub criteria: Criteria,
    /// What "back to normal" means after a fault, and when a consumer is stuck.
    pub recovery: Recovery,
    /// Faults injected on a timeline.
    pub faults: Vec<Fault>,
    /// How `harness capacity` searches this scenario's highest sustainable rate.
    pub capacity: Capacity,
    /// How `harness compare` judges a change in this scenario's figures.
    pub compare: Compare,
    /// Configurations `harness capacity` searches one after another, each
    /// the scenario with a few settings changed.
    pub variants: Vec<Variant>,
}

/// The knobs of the search for the maximum sustainable rate. A rate is
/// sustainable when a trial at it, after the warm-up, achieves at least 99%
/// of it, its backlog grows no faster than `max_backlog_growth` of it per
/// second and drains within `drain`, nothing is lost, and every criterion
/// of the scenario holds.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Capacity {
    /// The first trial's rate, events/s; the probe doubles from here.
    pub start_rate: f64,
    /// The probe never goes above this rate.
    pub max_rate: f64,
    /// The bisection stops once (hi - lo) / lo is below this.
    pub precision: f64,
    /// How long each trial is measured, after its warm-up. The confirmation
    /// trial measures twice as long.
    #[serde(with = "humantime_serde")]
    pub trial: Duration,
    /// The start of each trial that no figure counts.
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    /// The backlog may grow by at most this share of the rate per second
    /// (least-squares slope over the measured part).
    pub max_backlog_growth: f64,
    /// After the load, the backlog must be gone within this.
    #[serde(with = "humantime_serde")]
    pub drain: Duration,
    /// The harness's own schedule_lag p99 above this means the harness, not
    /// the pipeline, was the limit.
    #[serde(with = "humantime_serde")]
    pub max_schedule_lag: Duration,
    /// The search gives up after this many trials.
    pub max_trials: u32,
    /// With variants: one more trial per variant at this rate, so their
    /// latencies compare at one load (none: half the lowest rate found).
    pub common_rate: Option<f64>,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            start_rate: 100.0,
            max_rate: 1_000_000.0,
            precision: 0.05,
            trial: Duration::from_secs(20),
            warmup: Duration::from_secs(5),
            max_backlog_growth: 0.01,
            drain: Duration::from_secs(10),
            max_schedule_lag: Duration::from_millis(5),
            max_trials: 30,
            common_rate: None,
        }
    }
}

/// Tolerances for `harness compare`: a figure regressed when it is worse by
/// more than max(relative share, absolute floor).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Compare {
    /// Latency percentiles: worse by more than this share...
    pub latency: f64,
    /// ...and by more than this much.
    #[serde(with = "humantime_serde")]
    pub latency_floor: Duration,
    /// The percentiles compared, of each latency in `latencies`.
    pub percentiles: Vec<f64>,
    /// The latencies compared.
    pub latencies: Vec<String>,
    /// Achieved rate and success rate: lower by more than this share.
    pub rate: f64,
    /// The maximum sustainable rate of a capacity result: lower by more
    /// than this share.
    pub msr: f64,
}

impl Default for Compare {
    fn default() -> Self {
        Compare {
            latency: 0.25,
            latency_floor: Duration::from_millis(1),
            percentiles: vec![50.0, 90.0, 99.0, 99.9],
            latencies: vec!["publish".into(), "end_to_end".into()],
            rate: 0.01,
            msr: 0.10,
        }
    }
}

/// One configuration of a comparison across configurations: the scenario
/// with these settings changed (unset: as the scenario says).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Variant {
    /// How the variant is named in the table; by default its settings.
    pub name: Option<String>,
    pub storage: Option<Storage>,
    /// Stream replicas; above 1 on the embedded target, as many nodes start.
    pub replicas: Option<usize>,
    pub payload: Option<ByteSize>,
    pub workers: Option<usize>,
}

/// Where the NATS server is: an external URL, or one the harness starts.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Target {
    /// `nats://host:port` (several separated by commas). None: embedded.
    pub url: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// A `.creds` file (JWT and NKey seed).
    pub credentials: Option<PathBuf>,
    pub tls: Option<Tls>,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_wait: Duration,
    /// Reconnect attempts before giving up; 0 means never give up.
    pub max_reconnects: usize,
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// Embedded target only: how many nats-server nodes to start.
    pub nodes: usize,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            url: None,
            user: None,
            password: None,
            token: None,
            credentials: None,
            tls: None,
            connect_timeout: Duration::from_secs(5),
            reconnect_wait: Duration::from_secs(2),
            max_reconnects: 60,
            ping_interval: Duration::from_secs(20),
            nodes: 1,
        }
    }
}

/// TLS settings for an external target.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// Require TLS even if the URL says `nats://`.
    pub required: bool,
    /// PEM file with the CA certificates that sign the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    File,
    Memory,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    Limits,
    Interest,
    Workqueue,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Discard {
    Old,
    New,
}

/// The stream under test.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Stream {
    pub name: String,
    pub subjects: Vec<String>,
    pub storage: Storage,
    pub retention: Retention,
    /// 0s means no age limit.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// -1 means no limit.
    pub max_messages: i64,
    /// None means no limit.
    pub max_bytes: Option<ByteSize>,
    pub replicas: usize,
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    pub discard: Discard,
    /// Delete and recreate an existing stream whose settings differ.
    pub recreate: bool,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            name: "HARNESS".into(),
            subjects: vec!["harness.events.>".into()],
            storage: Storage::File,
            retention: Retention::Limits,
            max_age: Duration::ZERO,
            max_messages: -1,
            max_bytes: None,
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            discard: Discard::Old,
            recreate: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Evenly spaced: event i at i / rate.
    Uniform,
    /// Exponential gaps with the same mean rate (a Poisson process).
    Poisson,
}

/// One part of the rate profile.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Phase {
    /// A steady rate.
    Constant {
        #[serde(with = "humantime_serde")]
        duration: Duration,
        rate: f64,
    },
    /// A straight line from `from` to `to` events/s.
    Ramp {
        #[serde(with = "humantime_serde")]
        duration: Duration,
        from: f64,
        to: f64,
    },
    /// A staircase from `from` to `to` in `steps` equal steps.
    Step {
        #[serde(with = "humantime_serde")]
        duration: Duration,
        from: f64,
        to: f64,
        steps: u32,
    },
}

impl Phase {
    pub fn duration(&self) -> Duration {
        match self {
            Phase::Constant { duration, .. }
            | Phase::Ramp { duration, .. }
            | Phase::Step { duration, .. } => *duration,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// `{event_id, event_type, source, sequence, sent_at, data}`, padded to `size`.
    Json,
    /// `size` random bytes.
    Random,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Payload {
    pub kind: PayloadKind,
    pub size: ByteSize,
    pub event_type: String,
    pub source: String,
}

impl Default for Payload {
    fn default() -> Self {
        Payload {
            kind: PayloadKind::Json,
            size: ByteSize(256),
            event_type: "harness.test".into(),
            source: "harness".into(),
        }
    }
}

/// What to send and when.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Load {
    pub subject: String,
    /// Length of a constant-rate run; with `phases`, their sum.
    #[serde(with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// Events per second for a constant-rate run.
    pub rate: Option<f64>,
    pub phases: Vec<Phase>,
    pub arrivals: Arrivals,
    /// Seed for Poisson gaps, random payloads and simulated outcomes.
    pub seed: Option<u64>,
    pub payload: Payload,
    /// Publishes awaiting their PubAck at once; the schedule waits beyond it.
    pub max_in_flight: usize,
    /// Foreign input thrown into the subject during the load.
    pub garbage: Option<Garbage>,
}

/// A kind of foreign input.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GarbageKind {
    /// Random bytes.
    Random,
    /// The start of a JSON event, cut off.
    Truncated,
    /// Valid JSON that is not an event.
    WrongSchema,
    /// No payload at all.
    Empty,
    /// Random bytes just under the server's max_payload.
    NearMaxPayload,
}

/// Garbage published into `load.subject` from a separate connection, with
/// no event id: the consumer must dead-letter each message as poison and
/// count it as unexpected, and nothing else may change.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Garbage {
    /// Messages per second.
    pub rate: f64,
    /// The kinds, taken in turn.
    #[serde(default = "all_garbage")]
    pub kinds: Vec<GarbageKind>,
}

fn all_garbage() -> Vec<GarbageKind> {
    vec![
        GarbageKind::Random,
        GarbageKind::Truncated,
        GarbageKind::WrongSchema,
        GarbageKind::Empty,
        GarbageKind::NearMaxPayload,
    ]
}

impl Default for Load {
    fn default() -> Self {
        Load {
            subject: "harness.events.test".into(),
            duration: None,
            rate: None,
            phases: Vec::new(),
            arrivals: Arrivals::Uniform,
            seed: None,
            payload: Payload::default(),
            max_in_flight: 1024,
            garbage: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    pub multiplier: f64,
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Each delay is drawn from delay * [1 - jitter, 1 + jitter].
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(30),
            jitter: 0.2,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Publish {
    /// How long one attempt waits for its PubAck.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub max_retries: u32,
    pub backoff: Backoff,
}

impl Default for Publish {
    fn default() -> Self {
        Publish {
            timeout: Duration::from_secs(10),
            max_retries: 3,
            backoff: Backoff::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    Constant,
    Uniform,
    Normal,
    Exponential,
}

/// Simulated time in the consumer's handler.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Processing {
    pub distribution: Distribution,
    /// constant, normal, exponential.
    #[serde(with = "humantime_serde")]
    pub mean: Duration,
    /// normal.
    #[serde(with = "humantime_serde")]
    pub stddev: Duration,
    /// uniform.
    #[serde(with = "humantime_serde")]
    pub min: Duration,
    #[serde(with = "humantime_serde")]
    pub max: Duration,
}

impl Default for Processing {
    fn default() -> Self {
        Processing {
            distribution: Distribution::Constant,
            mean: Duration::from_millis(1),
            stddev: Duration::ZERO,
            min: Duration::ZERO,
            max: Duration::ZERO,
        }
    }
}

/// Who consumes from the durable consumer under test.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerMode {
    /// The harness's own workers, handling deliveries as `[consumer]` says.
    #[default]
    Simulated,
    /// The user's own service; the harness observes what JetStream reports
    /// of it (ack sampling, advisories, consumer info, dead letters).
    External,
}

impl ConsumerMode {
    fn is_simulated(&self) -> bool {
        *self == ConsumerMode::Simulated
    }
}

/// The consumer under test: a durable pull consumer and its workers.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Consumer {
    /// Left out of the resolved scenario when simulated, so that the
    /// fingerprint of every scenario without it stays what it was.
    #[serde(skip_serializing_if = "ConsumerMode::is_simulated")]
    pub mode: ConsumerMode,
    pub durable: String,
    /// The durable receives only the stream's messages on this subject
    /// (JetStream's filter subject); all of them when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    pub workers: usize,
    /// Messages per pull request.
    pub batch: usize,
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    pub max_deliver: i64,
    /// Redelivery delays after ack_wait expiries (JetStream's BackOff).
    #[serde(with = "units::duration_list")]
    pub backoff: Vec<Duration>,
    pub max_ack_pending: i64,
    pub processing: Processing,
    /// A handler running longer than this is abandoned and its message NAKed.
    #[serde(with = "humantime_serde")]
    pub processing_timeout: Duration,
    /// Share of deliveries whose handler hangs past processing_timeout.
    pub timeout_ratio: f64,
    /// Share of deliveries whose handler fails: dead-lettered, then TERMed.
    pub error_ratio: f64,
    /// Redelivery delay asked for with each NAK.
    #[serde(with = "humantime_serde")]
    pub nak_delay: Duration,
    pub dead_letter_subject: String,
    /// The stream the harness creates to capture dead_letter_subject.
    pub dead_letter_stream: String,
    /// External mode: the service the harness starts, watches and stops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// External mode: where the service publishes a result per event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
}

/// The output contract of an external consumer: for each event it
/// processes, the service publishes a result to `subject` that carries the
/// event's id in `Harness-Event-Id` and, to have it checked, the SHA-256 of
/// the event's payload in `Harness-Payload-Sha256`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub subject: String,
}

/// The user's service, run by the harness as the external consumer under
/// test: started before the load with the run's settings in its
/// environment, its output kept in a log, stopped on every way out.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The program and its arguments; a relative program path is taken
    /// from the working directory.
    pub command: Vec<String>,
    /// Environment besides what the harness sets (`NATS_URL`,
    /// `HARNESS_STREAM`, `HARNESS_DURABLE`, ...).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Ready once a line of its output holds this text.
    #[serde(default)]
    pub ready_log: Option<String>,
    /// Ready once 127.0.0.1 accepts connections on this port.
    #[serde(default)]
    pub ready_port: Option<u16>,
    /// Without ready_log or ready_port: ready once it pulls from the durable.
    #[serde(with = "humantime_serde", default = "default_ready_timeout")]
    pub ready_timeout: Duration,
    /// After SIGTERM, how long it may take to exit before SIGKILL.
    #[serde(with = "humantime_serde", default = "default_stop_timeout")]
    pub stop_timeout: Duration,
    /// Its stdout and stderr; `harness-service-<run id>.log` in the working
    /// directory by default.
    #[serde(default)]
    pub log: Option<PathBuf>,
}

fn default_ready_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_stop_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for Consumer {
    fn default() -> Self {
        Consumer {
            mode: ConsumerMode::Simulated,
            durable: "harness-consumer".into(),
            workers: 4,
            batch: 64,
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            backoff: Vec::new(),
            max_ack_pending: 1000,
            processing: Processing::default(),
            processing_timeout: Duration::from_secs(30),
            timeout_ratio: 0.0,
            error_ratio: 0.0,
            nak_delay: Duration::from_secs(1),
            dead_letter_subject: "harness.dlq".into(),
            dead_letter_stream: "HARNESS_DLQ".into(),
            service: None,
            output: None,
            filter_subject: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Drain {
    /// Longest wait after the load for publishes and the consumer to settle.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Drain allowed after Ctrl+C or an abort.
    #[serde(with = "humantime_serde")]
    pub interrupt_timeout: Duration,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            timeout: Duration::from_secs(60),
            interrupt_timeout: Duration::from_secs(5),
        }
    }
}

/// A fault has recovered once, over a whole `window` after its end, the
/// acknowledged rate is at least `rate` of the target and the end-to-end
/// p99 at most `end_to_end_p99`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Recovery {
    /// Share of the target rate (0 to 1) that must be acknowledged.
    pub rate: f64,
    /// End-to-end p99 of the deliveries in the window.
    #[serde(with = "humantime_serde")]
    pub end_to_end_p99: Duration,
    /// How long both must hold.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Outside faults, a consumer with messages waiting, no handler busy and
    /// no delivery for this long is stuck, and the run fails.
    #[serde(with = "humantime_serde")]
    pub stuck_after: Duration,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            rate: 0.9,
            end_to_end_p99: Duration::from_secs(1),
            window: Duration::from_secs(2),
            stuck_after: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Criteria {
    /// Expressions checked at the end of the run; see the criteria module.
    pub checks: Vec<String>,
    /// Expressions also checked every second during the run: the first
    /// failure stops the run, which then fails.
    pub abort_on: Vec<String>,
    /// Time from the start before abort_on is first checked.
    #[serde(with = "humantime_serde")]
    pub abort_grace: Duration,
}

/// One fault on the timeline, as written: the settings of every kind, each
/// with its default. [`crate::plan`] turns it into its kind's typed action.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// When the fault starts, from the start of the load.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// What the fault does: a kind of [`crate::faults`], such as `kill`,
    /// `latency` or `consumer_stall`.
    pub kind: String,
    /// How long the fault lasts before recovery.
    #[serde(with = "humantime_serde", default = "default_fault_duration")]
    pub duration: Duration,
    /// Which embedded node (0-based), for server faults.
    #[serde(default)]
    pub node: usize,
    /// Server faults on a cluster: hit whichever node leads the stream under
    /// test when the fault starts, instead of `node`.
    #[serde(default)]
    pub leader: bool,
    /// consumer_slow: how many times longer processing takes.
    #[serde(default = "default_slow_factor")]
    pub factor: f64,
    /// Network faults: which way they act (`both`, `to_server`, `to_client`).
    #[serde(default)]
    pub direction: crate::target::proxy::Direction,
    /// latency: the added delay.
    #[serde(with = "humantime_serde", default = "default_delay")]
    pub delay: Duration,
    /// latency: the delay varies uniformly by up to this much either way.
    #[serde(with = "humantime_serde", default)]
    pub jitter: Duration,
    /// bandwidth: bytes per second, per connection and direction.
    #[serde(default)]
    pub bandwidth: Option<ByteSize>,
}

fn default_delay() -> Duration {
    Duration::from_millis(100)
}

fn default_fault_duration() -> Duration {
    Duration::from_secs(5)
}

fn default_slow_factor() -> f64 {
    10.0
}
