//! The user's own service as the consumer under test, seen from outside:
//! JetStream reports what happened to each message, and the harness ties
//! each report to its event by the stream sequence its PubAck named.
//!
//! - An ack, through ack sampling (`sample_freq` 100%): the event is
//!   processed. The metric's time less its `ack_time` is when the acked
//!   delivery reached the service, so an event acked at its first delivery
//!   has its end-to-end latency, and every ack its processing time.
//! - A NAK or a TERM, through the consumer's advisories: counted as the
//!   service's replies. A TERMed event is resolved by its dead-letter copy.
//! - A copy on the dead-letter subject that carries the event's id in
//!   `Harness-Event-Id`: the event is dead-lettered.
//! - With an output contract (`[consumer.output]`), a result that carries
//!   the event's id: the first gives the event's true end-to-end latency
//!   (its intended send time to the result's arrival in its stream), any
//!   more are duplicates, and one whose `Harness-Payload-Sha256` is not the
//!   hash of the event's payload (rebuilt from its seed) is corrupt.
//!
//! Metrics and advisories are captured into a stream before the run starts
//! (see [`crate::provision::observation_config`]), so that a slow observer
//! or a network fault does not turn into false loss. A report can arrive
//! before the event's PubAck; it waits until the PubAck is in the books. A
//! report that never matches an event of this run (the service acked
//! foreign input) is counted unexpected at the end. Anything not resolved
//! by the end is pending or lost, exactly as for the harness's own consumer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;
use rand::SeedableRng;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::event;
use crate::ledger::{Ledger, Live};
use crate::stats::{Latency, Stats};

/// What the observer reads from, and what it writes to.
pub struct Sources {
    /// The stream capturing the ack metric and the advisories.
    pub observed: Stream,
    /// The dead-letter stream, read from its end as the run starts.
    pub dead_letter: Stream,
    /// The stream of the service's results, with an output contract.
    pub output: Option<Stream>,
    /// Builds an event's payload again, for the results' hash check.
    pub payloads: event::PayloadBuilder,
    pub ledger: Arc<Ledger>,
    pub stats: Arc<Stats>,
}

/// `$JS.EVENT.METRIC.CONSUMER.ACK`: one sampled ack.
#[derive(Debug, Deserialize)]
struct AckMetric {
    stream_seq: u64,
    deliveries: i64,
    /// From the delivery to the ack, in nanoseconds.
    ack_time: i64,
    /// When the server saw the ack, RFC 3339.
    timestamp: String,
}

/// A TERM, NAK or exhausted-deliveries advisory.
#[derive(Debug, Deserialize)]
struct Advisory {
    stream_seq: u64,
    deliveries: i64,
}

/// A report from JetStream, read from the capture stream.
#[derive(Debug)]
enum Report {
    Ack(AckMetric),
    Nak(Advisory),
    Term(Advisory),
    Exhausted(Advisory),
}

impl Report {
    fn read(subject: &str, payload: &[u8]) -> Option<Report> {
        let prefix = |p: &str| subject.starts_with(p);
        Some(if prefix("$JS.EVENT.METRIC.CONSUMER.ACK.") {
            Report::Ack(serde_json::from_slice(payload).ok()?)
        } else if prefix("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.") {
            Report::Nak(serde_json::from_slice(payload).ok()?)
        } else if prefix("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.") {
            Report::Term(serde_json::from_slice(payload).ok()?)
        } else if prefix("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.") {
            Report::Exhausted(serde_json::from_slice(payload).ok()?)
        } else {
            return None;
        })
    }

    fn stream_seq(&self) -> u64 {
        match self {
            Report::Ack(m) => m.stream_seq,
            Report::Nak(a) | Report::Term(a) | Report::Exhausted(a) => a.stream_seq,
        }
    }
}

/// The observer's running state.
pub struct Observer {
    sources: Sources,
    reports: pull::Ordered,
    copies: pull::Ordered,
    results: Option<pull::Ordered>,
    /// Reports whose stream sequence no PubAck has named yet.
    early: HashMap<u64, Vec<Report>>,
    /// Copies seen on the dead-letter stream.
    copies_seen: Arc<AtomicU64>,
}

/// How often reports waiting for their PubAck are tried again.
const RETRY: Duration = Duration::from_millis(100);

/// Once stopping, how long without a new report or copy ends the watch.
const QUIET: Duration = Duration::from_millis(300);

impl Observer {
    /// Opens both streams: the dead-letter stream from its end, so that
    /// only this run's copies count, and nothing the service does from now
    /// on is missed.
    pub async fn open(sources: Sources) -> Result<Observer, String> {
        let reports = ordered(&sources.observed, DeliverPolicy::All).await?;
        let copies = ordered(&sources.dead_letter, DeliverPolicy::New).await?;
        let results = match &sources.output {
            Some(output) => Some(ordered(output, DeliverPolicy::New).await?),
            None => None,
        };
        Ok(Observer {
            sources,
            reports,
            copies,
            results,
            early: HashMap::new(),
            copies_seen: Arc::default(),
        })
    }

    /// Copies the dead-letter stream received during the run.
    pub fn copies(&self) -> Arc<AtomicU64> {
        self.copies_seen.clone()
    }

    /// Reads both streams until `stop`, then what is still stored, then
    /// counts the reports that matched no event as unexpected.
    pub async fn watch(mut self, stop: CancellationToken) {
        let mut retry = tokio::time::interval(RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Once stopping, whatever is still stored arrives within a moment:
        // the watch ends after a quiet moment with nothing new.
        let mut quiet_at: Option<tokio::time::Instant> = None;
        loop {
            let quiet = async move {
                match quiet_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                next = self.reports.next() => match next {
                    Some(Ok(message)) => self.report(&message.subject, &message.payload),
                    Some(Err(e)) => tracing::debug!(error = %e, "observer: reading reports"),
                    None => break,
                },
                next = self.copies.next() => match next {
                    Some(Ok(message)) => self.copy(message.headers.as_ref()),
                    Some(Err(e)) => tracing::debug!(error = %e, "observer: reading dead letters"),
                    None => break,
                },
                next = next_result(&mut self.results) => match next {
                    Some(Ok(message)) => self.result(&message),
                    Some(Err(e)) => tracing::debug!(error = %e, "observer: reading results"),
                    None => break,
                },
                _ = retry.tick() => {
                    self.retry();
                    continue;
                }
                _ = stop.cancelled(), if quiet_at.is_none() => {}
                _ = quiet => break,
            }
            if stop.is_cancelled() {
                quiet_at = Some(tokio::time::Instant::now() + QUIET);
            }
        }
        self.retry();
        let unmatched: usize = self.early.values().map(Vec::len).sum();
        for _ in 0..unmatched {
            self.sources.ledger.unexpected();
        }
        if unmatched > 0 {
            tracing::warn!(
                unmatched,
                "acks and advisories of messages that are no events of this run"
            );
        }
    }

    fn report(&mut self, subject: &str, payload: &[u8]) {
        let Some(report) = Report::read(subject, payload) else {
            tracing::warn!(subject, "unreadable report from JetStream; ignored");
            return;
        };
        if let Some(report) = self.apply(report) {
            self.early
                .entry(report.stream_seq())
                .or_default()
                .push(report);
        }
    }

    fn retry(&mut self) {
        let waiting: Vec<u64> = self.early.keys().copied().collect();
        for stream_seq in waiting {
            if self.sources.ledger.event_at(stream_seq).is_none() {
                continue;
            }
            for report in self.early.remove(&stream_seq).unwrap_or_default() {
                // Known now: it applies.
                let _ = self.apply(report);
            }
        }
    }

    /// Applies `report` to its event; hands it back if its stream sequence
    /// is not known yet.
    fn apply(&self, report: Report) -> Option<Report> {
        let ledger = &self.sources.ledger;
        let stream_seq = report.stream_seq();
        let Some((seq, intended)) = ledger.event_at(stream_seq) else {
            return Some(report);
        };
        let live = &ledger.live;
        match report {
            Report::Ack(metric) => {
                ledger.delivered(seq, metric.deliveries, stream_seq);
                Live::add(&live.acks);
                ledger.processed(seq, stream_seq);
                let processing = Duration::from_nanos(metric.ack_time.max(0) as u64);
                self.sources.stats.record(Latency::Processing, processing);
                // With results, end to end runs to the result instead.
                if metric.deliveries == 1 && self.sources.output.is_none() {
                    self.end_to_end(&metric.timestamp, processing, intended);
                }
            }
            // A NAK or a TERM ends a delivery, one that is neither a first
            // look at the event nor a duplicate: the TERM of a dead-lettered
            // event follows its copy.
            Report::Nak(advisory) => {
                delivered(live, advisory.deliveries);
                Live::add(&live.naks);
            }
            Report::Term(advisory) => {
                delivered(live, advisory.deliveries);
                Live::add(&live.terms);
            }
            Report::Exhausted(advisory) => {
                // Never delivered again: it stays in the stream, pending,
                // unless the service dead-letters it some other way.
                Live::add(&live.exhausted);
                tracing::debug!(
                    event_id = %ledger.event_id(seq),
                    deliveries = advisory.deliveries,
                    "the service used up every delivery of an event"
                );
            }
        }
        None
    }

    /// From the intended send time to the delivery that was acked: the
    /// ack's time less the time the service took.
    fn end_to_end(&self, acked_at: &str, processing: Duration, intended: SystemTime) {
        let Ok(acked_at) = humantime::parse_rfc3339_weak(acked_at) else {
            tracing::debug!(acked_at, "ack metric with an unreadable time");
            return;
        };
        let delivered_at = acked_at.checked_sub(processing).unwrap_or(acked_at);
        match delivered_at.duration_since(intended) {
            Ok(age) => self.sources.stats.record(Latency::EndToEnd, age),
            // The server's clock is behind the harness's: nothing to tell.
            Err(_) => Live::add(&self.sources.ledger.live.intended_out_of_range),
        }
    }

    /// A result on the output subject.
    fn result(&self, message: &async_nats::jetstream::Message) {
        let ledger = &self.sources.ledger;
        let live = &ledger.live;
        let headers = message.headers.as_ref();
        let seq = headers
            .and_then(|h| h.get(event::DLQ_EVENT_ID))
            .and_then(|id| ledger.parse_event_id(id.as_str()))
            .filter(|&seq| ledger.is_scheduled(seq));
        let (Some(seq), Some(before)) = (seq, seq.and_then(|seq| ledger.output(seq))) else {
            ledger.unexpected();
            return;
        };
        let Some((intended, seed)) = ledger.intended(seq) else {
            return;
        };
        if before == 0 {
            Live::add(&live.outputs);
            let arrived = message.info().ok().map(|info| {
                let nanos = info.published.unix_timestamp_nanos().max(0) as u64;
                SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos)
            });
            match arrived.map(|at| at.duration_since(intended)) {
                Some(Ok(age)) => self.sources.stats.record(Latency::EndToEnd, age),
                Some(Err(_)) => Live::add(&live.intended_out_of_range),
                None => {}
            }
        } else {
            Live::add(&live.output_duplicates);
        }
        let claimed = headers.and_then(|h| h.get(PAYLOAD_SHA256));
        if let Some(claimed) = claimed {
            let id = ledger.event_id(seq);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let payload = self.sources.payloads.build(&id, seq, intended, &mut rng);
            if !claimed.as_str().eq_ignore_ascii_case(&sha256_hex(&payload)) {
                Live::add(&live.output_corrupt);
            }
        }
    }

    /// A copy on the dead-letter stream.
    fn copy(&self, headers: Option<&async_nats::HeaderMap>) {
        self.copies_seen.fetch_add(1, Ordering::Relaxed);
        let ledger = &self.sources.ledger;
        let live = &ledger.live;
        let id = headers
            .and_then(|h| h.get(event::DLQ_EVENT_ID))
            .map(|v| v.as_str());
        let seq = id
            .and_then(|id| ledger.parse_event_id(id))
            .filter(|&seq| ledger.is_scheduled(seq));
        let Some(seq) = seq else {
            Live::add(&live.dead_letters_poison);
            return;
        };
        Live::add(&live.dead_letters_error);
        let stream_seq = headers
            .and_then(|h| h.get(event::DLQ_STREAM_SEQ))
            .and_then(|v| v.as_str().parse().ok())
            .or_else(|| ledger.stream_sequence_of(seq))
            .unwrap_or(0);
        let reason = headers
            .and_then(|h| h.get(event::DLQ_REASON))
            .map_or("service", |v| v.as_str());
        ledger.dead_lettered(seq, stream_seq, reason);
    }
}

/// The header of a result that carries the SHA-256 of the event's payload,
/// in hex.
pub const PAYLOAD_SHA256: &str = "Harness-Payload-Sha256";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The next result, or never without an output contract.
async fn next_result(
    results: &mut Option<pull::Ordered>,
) -> Option<<pull::Ordered as futures::Stream>::Item> {
    match results {
        Some(results) => results.next().await,
        None => std::future::pending().await,
    }
}

/// A delivery that did not end in an ack.
fn delivered(live: &Live, deliveries: i64) {
    Live::add(&live.deliveries);
    if deliveries > 1 {
        Live::add(&live.redelivered);
    }
}

/// An ordered consumer on `stream`, its messages from `from`.
async fn ordered(stream: &Stream, from: DeliverPolicy) -> Result<pull::Ordered, String> {
    let name = stream.cached_info().config.name.clone();
    stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: from,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("cannot read stream `{name}`: {e}"))?
        .messages()
        .await
        .map_err(|e| format!("cannot read stream `{name}`: {e}"))
}
