//! The report: everything a run found, as data. Rendered for people on the
//! terminal ([`summary`]), for machines as JSON (`--report-json`), whose
//! fields are part of the stable contract (DESIGN.md), and for CI test
//! views as JUnit XML (`--report-junit`, [`junit`]).

pub mod hdr_log;
pub mod junit;
pub mod output;
pub mod summary;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::criteria::{self, Figure, Figures, Kind};
use crate::ledger::Accounting;
use crate::stats::Summary;

/// Bumped when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
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
    pub target: TargetInfo,
    /// The scenario as run: file values, defaults and overrides; secrets redacted.
    pub config: serde_json::Value,
    pub counts: Accounting,
    pub rates: Rates,
    pub success_rate: f64,
    /// publish, publish_attempt, end_to_end, processing, schedule_lag.
    pub latency: BTreeMap<String, Summary>,
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

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub url: String,
    pub embedded: bool,
    pub nodes: usize,
    /// The proxy the publisher and consumer went through, for network faults.
    pub proxy: Option<ProxyInfo>,
}

/// The network-fault proxy and what it did.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyInfo {
    /// The URL the clients connected to.
    pub url: String,
    /// Bytes dropped by blackholes.
    pub dropped_bytes: u64,
    /// Connections reset: by reset faults, and after a blackhole.
    pub resets: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rates {
    /// Intended events/s over the load time.
    pub target: f64,
    /// Events/s the publisher sent over the load time.
    pub achieved: f64,
}

/// The durable consumer as JetStream saw it at the end.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumerState {
    pub num_pending: u64,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    /// Every ack the consumer sent was confirmed by the server by the end.
    pub acks_confirmed: bool,
    /// Copies stored on the dead-letter stream, poison included.
    pub dead_letter_copies: u64,
}

impl Report {
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
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

    /// The report as JUnit XML (see [`junit`]).
    pub fn write_junit(&self, path: &Path) -> std::io::Result<()> {
        output::write_atomically(path, junit::render(self).as_bytes())
    }

    /// Counts by their criteria names.
    fn count(&self, name: &str) -> Option<u64> {
        let c = &self.counts;
        Some(match name {
            "scheduled" => c.scheduled,
            "published" => c.published,
            "deduplicated" => c.deduplicated,
            "publish_failed" => c.publish_failed,
            "indeterminate" => c.indeterminate,
            "not_sent" => c.not_sent,
            "processed" => c.processed,
            "dead_lettered" => c.dead_lettered,
            "pending" => c.pending,
            "lost" => c.lost,
            "lost_mid_run" => c.lost_mid_run,
            "lost_tail" => c.lost_tail,
            "recovered" => c.recovered,
            "unexpected" => c.unexpected,
            "collisions" => c.collisions,
            "intended_out_of_range" => c.intended_out_of_range,
            "duplicates" => c.duplicates,
            "stream_duplicates" => c.stream_duplicates,
            "redelivered" => c.redelivered,
            "retries" => c.retries,
            "held_back" => c.held_back,
            "garbage_sent" => self.garbage_sent,
            _ => return None,
        })
    }
}

impl Figures for Report {
    fn figure(&self, name: &str) -> Option<Figure> {
        let scheduled = Some(self.counts.scheduled as f64);
        if let Some(count) = self.count(name) {
            return Some(Figure {
                value: count as f64,
                kind: Kind::Count,
                base: scheduled,
            });
        }
        if let Some(figure) = self.fault_figures.figure(name, scheduled) {
            return Some(figure);
        }
        let (value, kind, base) = match name {
            "success_rate" => (self.success_rate, Kind::Ratio, None),
            "target_rate" => (self.rates.target, Kind::Rate, Some(self.rates.target)),
            "achieved_rate" => (self.rates.achieved, Kind::Rate, Some(self.rates.target)),
            _ => {
                let (histogram, stat) = name.split_once('.')?;
                let value = self.latency.get(histogram)?.stat(stat)?;
                if stat == "count" {
                    (value, Kind::Count, scheduled)
                } else {
                    (value, Kind::Latency, None)
                }
            }
        };
        Some(Figure { value, kind, base })
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
