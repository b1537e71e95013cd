//! Live metrics for Prometheus: one registry per run, every series labelled
//! `scenario` and `run_id`, served on `--metrics-addr` for the whole run.
//!
//! The hot paths stay as they are: counters are mirrored from the ledger's
//! atomic counters by a periodic task ([`RunMetrics::mirror`]), and only the
//! latency histograms are recorded per event (an atomic bucket increment).
//! [`CATALOGUE`] is the list of every metric; the README, the dashboards
//! and the tests all check against it.

use std::net::SocketAddr;

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::figures::Figures;
use crate::ledger::{Ledger, Live};
use crate::stats::Latency;

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its name, type, extra labels and meaning.
#[derive(Debug, Clone, Copy)]
pub struct Described {
    pub name: &'static str,
    pub kind: Type,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn m(
    name: &'static str,
    kind: Type,
    labels: &'static [&'static str],
    help: &'static str,
) -> Described {
    Described {
        name,
        kind,
        labels,
        help,
    }
}

use Type::{Counter as C, Gauge as G, Histogram as H};

/// Every metric the harness exports. Each also carries `scenario` and `run_id`.
pub const CATALOGUE: &[Described] = &[
    m("harness_events_scheduled_total", C, &[], "Events the schedule reached."),
    m("harness_events_published_total", C, &[], "Events whose PubAck arrived."),
    m("harness_events_deduplicated_total", C, &[], "PubAcks flagged duplicate: a retry the stream had already stored."),
    m("harness_events_publish_failed_total", C, &[], "Events whose last publish attempt failed for certain."),
    m("harness_events_indeterminate_total", C, &[], "Events whose last publish attempt got no answer."),
    m("harness_events_not_sent_total", C, &[], "Events scheduled but never sent (set at the end of the run)."),
    m("harness_events_processed_total", C, &[], "Events acked by the consumer under test, once each."),
    m("harness_events_dead_lettered_total", C, &[], "Events copied to the dead-letter subject, once each."),
    m("harness_events_lost_total", C, &["position"], "Published events gone from the stream unprocessed (set at the end; position mid_run or tail)."),
    m("harness_events_recovered_total", C, &[], "Failed or indeterminate publishes the consumer still saw (set at the end)."),
    m("harness_events_unexpected_total", C, &[], "Deliveries whose id this run never scheduled, or without this run's signature."),
    m("harness_events_collisions_total", C, &[], "First publishes the stream answered duplicate: another message already held the event's id."),
    m("harness_events_intended_out_of_range_total", C, &[], "Deliveries whose intended send time lay outside the run, left out of the latency figures."),
    m("harness_events_duplicates_total", C, &[], "Deliveries of events already processed or dead-lettered."),
    m("harness_events_stream_duplicates_total", C, &[], "Duplicates that were a second stored copy."),
    m("harness_events_held_back_total", C, &[], "Sends delayed because max_in_flight publishes awaited acks."),
    m("harness_publish_attempts_total", C, &["result"], "Publish attempts by result: ack, timeout or error."),
    m("harness_publish_retries_total", C, &[], "Publish attempts after the first."),
    m("harness_deliveries_total", C, &[], "Deliveries to the consumer under test."),
    m("harness_redeliveries_total", C, &[], "Deliveries with a delivery count above 1."),
    m("harness_consumer_outcomes_total", C, &["outcome"], "Consumer replies by outcome: ack, nak or term."),
    m("harness_dead_letters_total", C, &["reason"], "Copies stored on the dead-letter stream by reason: error, poison or max_deliveries."),
    m("harness_connection_reconnects_total", C, &["connection"], "Reconnects of the publisher or consumer connection."),
    m("harness_publish_latency_seconds", H, &[], "Intended send to PubAck, retries included."),
    m("harness_publish_attempt_latency_seconds", H, &[], "One publish attempt: send to PubAck."),
    m("harness_end_to_end_latency_seconds", H, &[], "Intended send to first delivery."),
    m("harness_processing_latency_seconds", H, &[], "Time in the consumer's handler."),
    m("harness_schedule_lag_seconds", H, &[], "Actual send minus intended send: the harness's own delay."),
    m("harness_target_rate_events_per_second", G, &[], "The intended publish rate now."),
    m("harness_achieved_rate_events_per_second", G, &[], "Events sent per second over the last second."),
    m("harness_publish_in_flight", G, &[], "Publishes awaiting a PubAck or backing off."),
    m("harness_events_unresolved", G, &[], "Published events neither processed nor dead-lettered yet; at the end, those still pending."),
    m("harness_consumer_num_pending", G, &[], "The consumer's num_pending, polled from JetStream."),
    m("harness_consumer_num_ack_pending", G, &[], "The consumer's num_ack_pending, polled from JetStream."),
    m("harness_consumer_num_redelivered", G, &[], "The consumer's num_redelivered, polled from JetStream."),
    m("harness_connection_up", G, &["connection"], "1 while the publisher or consumer connection is up."),
    m("harness_criterion_passed", G, &["criterion"], "1 if the criterion passes, 0 if it fails: on the live figures while the run goes on, final at the end."),
    m("harness_run_passed", G, &[], "The verdict, 1 passed or 0 failed: provisional (every criterion on the live figures) until harness_run_finished is 1."),
    m("harness_run_finished", G, &[], "0 while the run goes on, 1 once its final values are set."),
    m("harness_run_info", G, &["version", "scenario_file"], "Always 1; labels describe the run."),
    m("harness_fault_active", G, &["fault", "node"], "1 while a fault is active; node is the embedded node, `leader`, `network` for the proxy, `consumer` for the harness's own consumer under test, or `service` for the service it runs."),
    m("harness_fault_recovery_seconds", G, &[], "The longest recovery so far: from a fault's end until the acknowledged rate and end-to-end p99 are back within the [recovery] bounds; a fault still recovering counts its time since its end, and one never back by the end is +Inf."),
    m("harness_consumer_stuck", G, &[], "1 once the consumer was stuck outside any fault (messages waiting, no handler busy, nothing delivered for recovery.stuck_after); the run fails."),
    m("harness_proxy_dropped_bytes_total", C, &[], "Bytes the network-fault proxy dropped in blackholes."),
    m("harness_proxy_resets_total", C, &[], "Connections the network-fault proxy reset: reset faults, and connections that lost bytes to a blackhole."),
];

/// Bucket upper bounds (seconds) for each latency histogram, fitted to its range.
fn buckets(name: &str) -> &'static [f64] {
    const WIDE: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0,
    ];
    const LAG: &[f64] = &[
        0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
        5.0,
    ];
    if name == "harness_schedule_lag_seconds" {
        LAG
    } else {
        WIDE
    }
}

static METADATA: Metadata<'static> =
    Metadata::new("harness", metrics::Level::INFO, Some("harness::metrics"));

/// The metrics of one run, on a registry of its own.
pub struct RunMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

/// Where the metrics are served, if anywhere.
pub struct Listener {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Stops serving and waits until the socket is closed, so that the
    /// address can be bound again at once (the next trial of a search).
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RunMetrics {
    /// A registry labelled with the run (and the shard, for one shard of
    /// a run), and its HTTP listener if `listen` is set.
    pub fn new(
        scenario: &str,
        run_id: &str,
        shard: Option<&str>,
        listen: Option<SocketAddr>,
    ) -> Result<(RunMetrics, Option<Listener>), String> {
        let mut builder = PrometheusBuilder::new()
            .add_global_label("scenario", scenario)
            .add_global_label("run_id", run_id);
        if let Some(shard) = shard {
            builder = builder.add_global_label("shard", shard);
        }
        for d in CATALOGUE.iter().filter(|d| d.kind == Type::Histogram) {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(d.name.to_string()), buckets(d.name))
                .map_err(|e| e.to_string())?;
        }
        let (recorder, listener) = match listen {
            Some(addr) => {
                let (recorder, serve) = builder
                    .with_http_listener(addr)
                    .build()
                    .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
                let task = tokio::spawn(async move {
                    if let Err(e) = serve.await {
                        tracing::warn!(error = ?e, "metrics listener stopped");
                    }
                });
                (recorder, Some(Listener { addr, task }))
            }
            None => (builder.build_recorder(), None),
        };
        for d in CATALOGUE {
            let key = KeyName::from(d.name);
            let help = SharedString::from(d.help);
            let unit = d.name.ends_with("_seconds").then_some(Unit::Seconds);
            match d.kind {
                Type::Counter => recorder.describe_counter(key, unit, help),
                Type::Gauge => recorder.describe_gauge(key, unit, help),
                Type::Histogram => recorder.describe_histogram(key, unit, help),
            }
        }
        let handle = recorder.handle();
        Ok((RunMetrics { recorder, handle }, listener))
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, String)]) -> Counter {
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, String)]) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &METADATA)
    }

    pub fn histogram(&self, latency: Latency) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_name(histogram_name(latency)), &METADATA)
    }

    /// The exposition text, as a scrape would see it.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Sets every figure that has a metric ([`crate::figures::CATALOGUE`])
    /// from `figures`, live or final. Counters only ever rise: a figure
    /// that the books close lower than it was counted live keeps its count.
    pub fn figures(&self, figures: &Figures) {
        for named in crate::figures::CATALOGUE {
            let Some(metric) = named.metric else {
                continue;
            };
            let labels: Vec<(&'static str, String)> = metric
                .label
                .iter()
                .map(|(k, v)| (*k, v.to_string()))
                .collect();
            self.counter(metric.name, &labels)
                .absolute((named.read)(figures) as u64);
        }
        self.gauge("harness_events_unresolved", &[])
            .set(figures.counts.pending as f64);
    }

    /// Copies the ledger's live counters that are no figures (deliveries,
    /// publish attempts, the consumer's replies and dead letters by kind)
    /// into their Prometheus counters, and folds the latency samples
    /// recorded since into their buckets: the exporter keeps every raw
    /// sample until then, so without this a run that nobody scrapes would
    /// hold each one for its whole length.
    pub fn mirror(&self, ledger: &Ledger) {
        self.handle.run_upkeep();
        let live = &ledger.live;
        self.counter("harness_deliveries_total", &[])
            .absolute(Live::get(&live.deliveries));
        let labelled: [(
            &'static str,
            &'static str,
            &'static str,
            &std::sync::atomic::AtomicU64,
        ); 9] = [
            (
                "harness_publish_attempts_total",
                "result",
                "ack",
                &live.attempts_acked,
            ),
            (
                "harness_publish_attempts_total",
                "result",
                "timeout",
                &live.attempts_timed_out,
            ),
            (
                "harness_publish_attempts_total",
                "result",
                "error",
                &live.attempts_failed,
            ),
            (
                "harness_consumer_outcomes_total",
                "outcome",
                "ack",
                &live.acks,
            ),
            (
                "harness_consumer_outcomes_total",
                "outcome",
                "nak",
                &live.naks,
            ),
            (
                "harness_consumer_outcomes_total",
                "outcome",
                "term",
                &live.terms,
            ),
            (
                "harness_dead_letters_total",
                "reason",
                "error",
                &live.dead_letters_error,
            ),
            (
                "harness_dead_letters_total",
                "reason",
                "poison",
                &live.dead_letters_poison,
            ),
            (
                "harness_dead_letters_total",
                "reason",
                "max_deliveries",
                &live.dead_letters_max_deliveries,
            ),
        ];
        for (name, label, value, counter) in labelled {
            self.counter(name, &[(label, value.to_string())])
                .absolute(Live::get(counter));
        }
    }
}

fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, v.clone()))
        .collect();
    Key::from_parts(name, labels)
}

pub fn histogram_name(latency: Latency) -> &'static str {
    match latency {
        Latency::Publish => "harness_publish_latency_seconds",
        Latency::PublishAttempt => "harness_publish_attempt_latency_seconds",
        Latency::EndToEnd => "harness_end_to_end_latency_seconds",
        Latency::Processing => "harness_processing_latency_seconds",
        Latency::ScheduleLag => "harness_schedule_lag_seconds",
    }
}
