//! harness: stress and reliability experiments against NATS JetStream.
//!
//! A run flows one way (see DESIGN.md): scenario → plan → actors → ledger and
//! stats → verdict → report. Modules, each with one job:
//!
//! - [`scenario`]: the TOML file, its defaults, errors with file:line:column, validation.
//! - [`schedule`]: the rate profile as intended send offsets (open model).
//! - [`backoff`]: retry delays, exponential with jitter.
//! - [`figures`]: one typed snapshot of what a run measured, and the one catalogue naming each figure.
//! - [`criteria`]: pass/fail expressions such as `publish.p99 < 500ms`, over the figures.
//! - [`ledger`]: the state of every event (a byte each, settled chunks folded) and the final accounting.
//! - [`series`]: the run as a time series, bounded in points, with phases and faults marked.
//! - [`stats`]: HDR histograms and live counters.
//! - [`event`]: event ids, headers and payloads, encoded and decoded.
//! - [`target`]: connecting to NATS, or starting embedded nats-server processes.
//! - [`garbage`]: foreign input thrown into the load subject.
//! - [`plan`]: a scenario compiled once into what the run acts on: parsed criteria, typed faults.
//! - [`faults`]: the fault timeline: server, network (through a proxy) and consumer faults, a module each.
//! - [`recovery`]: what faults cost: recovery time, failures during them, a stuck consumer.
//! - [`rehearsal`]: a run rehearsed without NATS: every time and count its actors derive.
//! - [`provision`]: the stream, the dead-letter stream and the durable consumer.
//! - [`publisher`]: sends the schedule, awaits PubAcks, retries, classifies.
//! - [`consumer`]: the consumer under test: workers, outcomes, dead letters.
//! - [`report`]: the final report: JSON, the terminal summary, JUnit XML,
//!   HdrHistogram interval logs, and the HTML page with its SVG charts.
//! - [`metrics`]: the Prometheus registry, its catalogue of metrics and their mirroring.
//! - [`panics`]: panics in a run's tasks, caught and named, so the run fails loudly.
//! - [`progress`]: the live status line while a run goes on.
//! - [`run`]: one experiment from start to verdict.
//! - [`shard`]: one shard of a run spread over processes: its share of the schedule, subject and durable.
//! - [`merge`]: shard reports added into one report and one verdict.
//! - [`capacity`]: the highest sustainable rate, by trials that are each a run; across variants.
//! - [`compare`]: two reports or capacity results, figure by figure, for regressions.
//! - [`cli`]: command-line flags and their environment twins.
//! - [`clock`]: duration and instant arithmetic that saturates instead of panicking.
//! - [`logging`]: logs on stderr, checked filter, no colour off a terminal, no secrets.
//! - [`error`]: the errors a user can cause, and the exit codes.

pub mod backoff;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod consumer;
pub mod criteria;
pub mod error;
pub mod event;
pub mod faults;
pub mod figures;
pub mod garbage;
pub mod lane;
pub mod ledger;
pub mod logging;
pub mod merge;
pub mod metrics;
pub mod panics;
pub mod plan;
pub mod progress;
pub mod provision;
pub mod publisher;
pub mod recovery;
pub mod rehearsal;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod series;
pub mod shard;
pub mod stats;
pub mod target;
