//! The report: everything a run found, as data. Rendered for people on the
//! terminal ([`summary`]), for machines as JSON (`--report-json`), whose
//! fields are part of the stable contract (DESIGN.md), and for CI test
//! views as JUnit XML (`--report-junit`, [`junit`]), and for people after
//! the run as one self-contained HTML page (`--report-html`, [`html`]).

pub mod chart;
pub mod hdr_log;
pub mod html;
pub mod junit;
pub mod output;
pub mod summary;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::criteria;
use crate::figures::Figures;
use crate::ledger::Accounting;
use crate::stats::Summary;

/// Bumped when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub harness_version: String,
    pub scenario: String,
    pub scenario_file: String,
    pub run_id: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Wall time of the whole run, drain included.
    pub duration_secs: f64,
    /// Time the schedule ran.
    pub load_secs: f64,
    /// The latencies count from this many seconds into the load (a capacity
    /// trial's warm-up); 0 for a whole run.
    #[serde(default)]
    pub measured_from_secs: f64,
    pub target: TargetInfo,
    /// What must match for two reports to be compared (`harness compare`).
    #[serde(default)]
    pub fingerprint: Fingerprint,
    /// The scenario as run: file values, defaults and overrides; secrets redacted.
    pub config: serde_json::Value,
    pub counts: Accounting,
    pub rates: Rates,
    pub success_rate: f64,
    /// publish, publish_attempt, end_to_end, processing, schedule_lag.
    pub latency: BTreeMap<String, Summary>,
    /// Each latency's whole percentile distribution, as `[percentile,
    /// milliseconds]` points ever finer towards 100% (HdrHistogram's
    /// percentile output), for plotting on a "nines" axis and comparing
    /// runs across the whole range rather than at one percentile.
    #[serde(default)]
    pub distribution: BTreeMap<String, Vec<[f64; 2]>>,
    /// Each latency's whole histogram, HdrHistogram's V2 deflate encoding
    /// in base64 (as in its interval logs): what `harness merge` adds
    /// exactly, and what HdrHistogram's own tools read.
    #[serde(default)]
    pub histograms: BTreeMap<String, String>,
    /// One shard of a run (`--shard`): which, and when its schedule began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardInfo>,
    /// The shard reports this one was merged from (`harness merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<crate::merge::Merged>,
    pub consumer: ConsumerState,
    pub criteria: Vec<criteria::Outcome>,
    /// The faults applied: what, on which node, when, when it was undone,
    /// how long until the pipeline was back within `[recovery]` bounds, and
    /// the publish failures and indeterminate publishes until then.
    pub faults: Vec<crate::faults::Applied>,
    /// The consumer stopped taking deliveries outside any fault while
    /// messages waited for it: the longest such time. The run fails.
    pub consumer_stuck: Option<crate::recovery::Stuck>,
    /// The fault figures of the criteria, from the recovery tracker.
    #[serde(skip)]
    pub fault_figures: crate::recovery::FaultFigures,
    /// Garbage messages the stream acknowledged (`load.garbage`); each should
    /// show as unexpected and be dead-lettered as poison.
    pub garbage_sent: u64,
    /// The run over time: per-interval rates, backlog and latencies, with
    /// the phases and fault windows on the same timeline.
    pub series: crate::series::Series,
    /// Tasks of the harness that panicked, each with its reason: the run
    /// fails, since the work they held was never done.
    pub panics: Vec<String>,
    /// The run was stopped by Ctrl+C or SIGTERM: the report is partial.
    pub interrupted: bool,
    /// The abort_on expression that stopped the run, if one did.
    pub aborted_by: Option<String>,
    /// The harness could not hold its own schedule: its figures understate the target's.
    pub saturated: bool,
    pub warnings: Vec<String>,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub url: String,
    pub embedded: bool,
    pub nodes: usize,
    /// The proxy the publisher and consumer went through, for network faults.
    pub proxy: Option<ProxyInfo>,
    /// The version the (first) server reported when the clients connected.
    #[serde(default)]
    pub server_version: String,
    /// What the embedded server(s) used, summed over the nodes; None for an
    /// external server, which the harness cannot see.
    #[serde(default)]
    pub server_usage: Option<ServerUsage>,
}

/// CPU and memory of the nats-server processes the harness owns, read from
/// /proc at the end of the run. A node restarted by a fault counts from its
/// restart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerUsage {
    /// User plus system CPU time, in seconds.
    pub cpu_secs: f64,
    /// Peak resident memory (VmHWM), in bytes.
    pub peak_rss_bytes: u64,
}

/// What decides whether two reports describe the same experiment: the
/// scenario as run (its hash leaves out what varies between otherwise equal
/// runs: the seed, the rate and duration, the URL, the capacity and compare
/// tables) and the setting it ran in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// BLAKE3 of the resolved scenario, as above, in hex.
    pub scenario_hash: String,
    pub harness_version: String,
    pub nats_server_version: String,
    pub storage: String,
    pub replicas: usize,
    /// Embedded nodes; 0 for an external server.
    pub nodes: usize,
    pub payload_bytes: u64,
    /// CPU cores of the machine the harness ran on.
    pub cores: usize,
}

impl Fingerprint {
    /// The fingerprint of `scenario` run against a server of `server_version`
    /// with `nodes` embedded nodes.
    pub fn of(scenario: &crate::scenario::Scenario, server_version: &str, nodes: usize) -> Self {
        let mut hashed = scenario.clone();
        hashed.load.seed = None;
        hashed.load.rate = None;
        hashed.load.duration = None;
        hashed.target.url = None;
        hashed.capacity = Default::default();
        hashed.compare = Default::default();
        hashed.variants = Vec::new();
        let text = serde_json::to_string(&hashed).unwrap_or_default();
        Fingerprint {
            scenario_hash: blake3::hash(text.as_bytes()).to_hex()[..16].to_string(),
            harness_version: env!("CARGO_PKG_VERSION").to_string(),
            nats_server_version: server_version.to_string(),
            storage: match scenario.stream.storage {
                crate::scenario::Storage::File => "file".into(),
                crate::scenario::Storage::Memory => "memory".into(),
            },
            replicas: scenario.stream.replicas,
            nodes,
            payload_bytes: scenario.load.payload.size.0,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        }
    }

    /// The fields that differ, as `name: baseline → current`.
    pub fn differences(&self, current: &Fingerprint) -> Vec<String> {
        let pairs = [
            ("scenario_hash", &self.scenario_hash, &current.scenario_hash),
            (
                "harness_version",
                &self.harness_version,
                &current.harness_version,
            ),
            (
                "nats_server_version",
                &self.nats_server_version,
                &current.nats_server_version,
            ),
            ("storage", &self.storage, &current.storage),
        ];
        let mut out: Vec<String> = pairs
            .into_iter()
            .filter(|(_, a, b)| a != b)
            .map(|(name, a, b)| format!("{name}: {a} → {b}"))
            .collect();
        let numbers = [
            ("replicas", self.replicas as u64, current.replicas as u64),
            ("nodes", self.nodes as u64, current.nodes as u64),
            ("payload_bytes", self.payload_bytes, current.payload_bytes),
            ("cores", self.cores as u64, current.cores as u64),
        ];
        out.extend(
            numbers
                .into_iter()
                .filter(|(_, a, b)| a != b)
                .map(|(name, a, b)| format!("{name}: {a} → {b}")),
        );
        out
    }
}

/// The network-fault proxy and what it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProxyInfo {
    /// The URL the clients connected to.
    pub url: String,
    /// Bytes dropped by blackholes.
    pub dropped_bytes: u64,
    /// Connections reset: by reset faults, and after a blackhole.
    pub resets: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Rates {
    /// Intended events/s over the load time.
    pub target: f64,
    /// Events/s the publisher sent over the load time.
    pub achieved: f64,
}

/// The durable consumer as JetStream saw it at the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConsumerState {
    pub num_pending: u64,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    /// The stream sequence below which every message is acknowledged.
    #[serde(default)]
    pub ack_floor: u64,
    /// Every ack the consumer sent was confirmed by the server by the end.
    pub acks_confirmed: bool,
    /// Copies stored on the dead-letter stream, poison included.
    pub dead_letter_copies: u64,
    /// The log of the service the harness ran as the consumer under test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_log: Option<String>,
    /// Each time that service exited on its own (no fault stopped it),
    /// with its exit status: the run fails for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_exits: Vec<String>,
}

/// Text safe in XML, SVG and HTML attributes and content; characters XML
/// 1.0 cannot hold at all become U+FFFD. Every renderer's quoting.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

impl Report {
    /// The consumer under test published a result per event
    /// (`[consumer.output]`), so the report has the output counts.
    pub fn has_output_contract(&self) -> bool {
        self.config
            .get("consumer")
            .and_then(|c| c.get("output"))
            .is_some_and(|o| !o.is_null())
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        // The series' interval histograms go only into a shard's report,
        // for the merge; elsewhere they would triple the file.
        let text = if self.shard.is_some() {
            serde_json::to_string_pretty(self)
        } else {
            let mut lean = self.clone();
            for point in &mut lean.series.points {
                point.histograms.clear();
            }
            serde_json::to_string_pretty(&lean)
        }
        .map_err(std::io::Error::other)?;
        output::write_atomically(path, (text + "\n").as_bytes())
    }

    /// An HdrHistogram interval log per latency in the folder `dir` (see
    /// [`hdr_log`]); each is written even if another cannot be.
    pub fn write_hdr_logs(&self, dir: &Path) -> std::io::Result<()> {
        let mut failed = None;
        for which in crate::stats::Latency::ALL {
            let path = dir.join(format!("{}.hlog", which.name()));
            if let Err(e) = output::write_atomically(&path, &hdr_log::render(self, which)) {
                failed = Some(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// The report as one self-contained HTML page (see [`html`]).
    pub fn write_html(&self, path: &Path) -> std::io::Result<()> {
        let page = html::Page {
            report: self,
            baseline: None,
            sweep: &[],
        };
        output::write_atomically(path, html::render(&page).as_bytes())
    }

    /// A report written by `--report-json`, read back.
    pub fn read_json(path: &Path) -> Result<Report, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let report: Report = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a harness JSON report (line {}, column {}: {e})",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if report.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "{}: report schema_version {} is not this harness's {SCHEMA_VERSION}",
                path.display(),
                report.schema_version
            ));
        }
        Ok(report)
    }

    /// The report as JUnit XML (see [`junit`]).
    pub fn write_junit(&self, path: &Path) -> std::io::Result<()> {
        output::write_atomically(path, junit::render(self).as_bytes())
    }

    /// The figures this report holds, for the criteria and the metrics.
    pub fn figures(&self) -> Figures {
        Figures {
            counts: self.counts.clone(),
            garbage_sent: self.garbage_sent,
            faults: self.fault_figures,
            success_rate: self.success_rate,
            target_rate: self.rates.target,
            achieved_rate: self.rates.achieved,
            latency: self.latency.clone(),
        }
    }
}

impl Report {
    /// The exit code this report ends the process with.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.passed {
            exit::PASSED
        } else {
            exit::FAILED
        }
    }
}

/// A made-up report of a 60-second run at 100/s with one fault, for the
/// renderers' tests.
#[cfg(test)]
pub(crate) fn example() -> Report {
    use crate::series::{IntervalLatency, Mark, Point, Series};
    let summary = |ms: f64| Summary {
        count: 6000,
        min: ms / 10.0,
        mean: ms / 2.0,
        p50: ms / 2.0,
        p90: ms,
        p99: ms * 2.0,
        p999: ms * 4.0,
        max: ms * 8.0,
    };
    let names = [
        "publish",
        "publish_attempt",
        "end_to_end",
        "processing",
        "schedule_lag",
    ];
    let points = (1..=60)
        .map(|t| {
            let slow = if (20..30).contains(&t) { 50.0 } else { 1.0 };
            Point {
                t_secs: t as f64,
                target_rate: 100.0,
                achieved_rate: 100.0,
                acked_rate: 100.0,
                processed_rate: if slow > 1.0 { 20.0 } else { 100.0 },
                backlog: Some(if slow > 1.0 { 80 * (t - 19) } else { 3 }),
                in_flight: 4,
                latency: names
                    .iter()
                    .map(|n| {
                        let l = IntervalLatency {
                            count: 100,
                            p50: slow,
                            p99: slow * 3.0,
                            p999: slow * 4.0,
                            max: slow * 5.0,
                        };
                        (n.to_string(), l)
                    })
                    .collect(),
                histograms: Vec::new(),
            }
        })
        .collect();
    let counts = Accounting {
        scheduled: 6000,
        published: 6000,
        processed: 6000,
        invariants: vec![crate::ledger::Invariant {
            name: "scheduled = published + publish_failed + indeterminate + not_sent".into(),
            left: 6000,
            right: 6000,
            holds: true,
        }],
        ..Accounting::default()
    };
    Report {
        schema_version: SCHEMA_VERSION,
        harness_version: "0.0.0".into(),
        scenario: "example <&>".into(),
        scenario_file: "scenarios/example.toml".into(),
        run_id: "r0000cafe".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        duration_secs: 62.0,
        load_secs: 60.0,
        measured_from_secs: 0.0,
        target: TargetInfo {
            url: "nats://127.0.0.1:4222".into(),
            embedded: true,
            nodes: 3,
            proxy: None,
            server_version: "2.12.8".into(),
            server_usage: None,
        },
        fingerprint: Fingerprint::default(),
        config: serde_json::json!({"load": {"rate": 100.0}}),
        counts,
        rates: Rates {
            target: 100.0,
            achieved: 100.0,
        },
        success_rate: 1.0,
        latency: names
            .iter()
            .map(|n| (n.to_string(), summary(2.0)))
            .collect(),
        histograms: BTreeMap::new(),
        shard: None,
        merged: None,
        distribution: names
            .iter()
            .map(|n| {
                let d = vec![
                    [0.0, 0.1],
                    [50.0, 1.0],
                    [90.0, 2.0],
                    [99.0, 4.0],
                    [99.9, 8.0],
                    [100.0, 16.0],
                ];
                (n.to_string(), d)
            })
            .collect(),
        consumer: ConsumerState::default(),
        criteria: vec![criteria::Outcome {
            name: "end_to_end.p99".into(),
            expression: "end_to_end.p99 < 200ms".into(),
            actual: Some(4.0),
            passed: true,
        }],
        faults: vec![crate::faults::Applied {
            kind: "kill".into(),
            node: Some(1),
            started_secs: 20.0,
            recovered_secs: Some(30.0),
            error: None,
            cost: crate::recovery::Cost {
                recovery_secs: Some(3.5),
                publish_failed: 0,
                indeterminate: 2,
            },
            index: 0,
        }],
        consumer_stuck: None,
        fault_figures: Default::default(),
        garbage_sent: 0,
        series: Series {
            interval_secs: 1.0,
            points,
            phases: vec![
                Mark {
                    name: "load".into(),
                    start_secs: 0.0,
                    end_secs: Some(60.0),
                },
                Mark {
                    name: "drain".into(),
                    start_secs: 60.0,
                    end_secs: Some(62.0),
                },
            ],
            faults: vec![Mark {
                name: "kill".into(),
                start_secs: 20.0,
                end_secs: Some(30.0),
            }],
        },
        panics: Vec::new(),
        interrupted: false,
        aborted_by: None,
        saturated: false,
        warnings: Vec::new(),
        passed: true,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_json_report_reads_back_as_the_same_report() {
        let report = super::example();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        report.write_json(&path).unwrap();
        let back = super::Report::read_json(&path).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&report).unwrap()
        );
        std::fs::write(&path, "{\"schema_version\": 1}").unwrap();
        let e = super::Report::read_json(&path).unwrap_err();
        assert!(
            e.contains("not a harness JSON report") && e.contains("r.json"),
            "{e}"
        );
    }
}
