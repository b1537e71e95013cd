//! Provisioning: the stream under test, the dead-letter stream and the
//! durable pull consumer, created or checked against the scenario, and the
//! end-of-run question of which messages are still in the stream.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::Context;

use crate::scenario::{ConsumerMode, Discard, Retention, Scenario, Storage};

/// Provisioning failures. All of them exit 3.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "{what} exists with other settings ({differences}); \
         set `stream.recreate = true` to delete and recreate it"
    )]
    Conflict { what: String, differences: String },
    #[error("cannot provision {what}: {message}")]
    Api { what: String, message: String },
}

fn api(what: impl Into<String>) -> impl FnOnce(String) -> ProvisionError {
    let what = what.into();
    move |message| ProvisionError::Api { what, message }
}

/// What a run works against.
#[derive(Debug)]
pub struct Provisioned {
    pub stream: stream::Stream,
    pub dead_letter: stream::Stream,
    pub consumer: PullConsumer,
    /// What JetStream reports of an observed consumer, captured for the
    /// run; None when the harness runs the consumer itself.
    pub observed: Option<stream::Stream>,
    /// The stream holding the service's results (`[consumer.output]`).
    pub output: Option<stream::Stream>,
}

/// The stream config the scenario asks for.
pub fn stream_config(s: &Scenario) -> stream::Config {
    let st = &s.stream;
    stream::Config {
        name: st.name.clone(),
        subjects: st.subjects.clone(),
        storage: storage(st.storage),
        retention: match st.retention {
            Retention::Limits => RetentionPolicy::Limits,
            Retention::Interest => RetentionPolicy::Interest,
            Retention::Workqueue => RetentionPolicy::WorkQueue,
        },
        max_age: st.max_age,
        max_messages: st.max_messages,
        max_bytes: st.max_bytes.map_or(-1, |b| b.0 as i64),
        num_replicas: st.replicas,
        duplicate_window: st.duplicate_window,
        discard: match st.discard {
            Discard::Old => DiscardPolicy::Old,
            Discard::New => DiscardPolicy::New,
        },
        ..Default::default()
    }
}

fn storage(storage: Storage) -> StorageType {
    match storage {
        Storage::File => StorageType::File,
        Storage::Memory => StorageType::Memory,
    }
}

/// The dead-letter stream: captures the dead-letter subject, kept by limits
/// and never trimmed (dead letters are what a user looks at afterwards).
pub fn dead_letter_config(s: &Scenario) -> stream::Config {
    stream::Config {
        name: s.consumer.dead_letter_stream.clone(),
        subjects: vec![s.consumer.dead_letter_subject.clone()],
        storage: storage(s.stream.storage),
        num_replicas: s.stream.replicas,
        duplicate_window: s.stream.duplicate_window,
        max_messages: NO_LIMIT,
        max_bytes: NO_LIMIT,
        ..Default::default()
    }
}

/// JetStream's "no limit". The server stores 0 as -1, so a config that
/// says 0 never matches what it reads back.
const NO_LIMIT: i64 = -1;

/// A limit as the server keeps it: 0 and every negative value mean no limit.
fn limit(value: i64) -> i64 {
    if value <= 0 {
        NO_LIMIT
    } else {
        value
    }
}

pub fn consumer_config(s: &Scenario) -> pull::Config {
    let c = &s.consumer;
    pull::Config {
        durable_name: Some(c.durable.clone()),
        filter_subject: c.filter_subject.clone().unwrap_or_default(),
        ack_policy: AckPolicy::Explicit,
        deliver_policy: DeliverPolicy::All,
        ack_wait: c.ack_wait,
        max_deliver: c.max_deliver,
        backoff: c.backoff.clone(),
        max_ack_pending: c.max_ack_pending,
        num_replicas: 0,
        // A service the harness does not run is seen through the ack
        // metric JetStream publishes for every sampled ack.
        sample_frequency: match c.mode {
            ConsumerMode::Simulated => 0,
            ConsumerMode::External => 100,
        },
        ..Default::default()
    }
}

/// The subjects JetStream reports a consumer's outcomes on: the ack
/// metric (with sampling on) and the advisories of TERMs, NAKs and
/// exhausted deliveries.
pub fn observed_subjects(s: &Scenario) -> Vec<String> {
    let (stream, durable) = (&s.stream.name, &s.consumer.durable);
    let mut subjects = vec![format!("$JS.EVENT.METRIC.CONSUMER.ACK.{stream}.{durable}")];
    for advisory in ["MSG_TERMINATED", "MSG_NAKED", "MAX_DELIVERIES"] {
        subjects.push(format!(
            "$JS.EVENT.ADVISORY.CONSUMER.{advisory}.{stream}.{durable}"
        ));
    }
    subjects
}

/// The stream that captures [`observed_subjects`] for an observed
/// consumer. Metrics and advisories are core NATS messages, delivered at
/// most once: stored first, a slow observer or a network fault loses none.
pub fn observation_config(s: &Scenario) -> stream::Config {
    stream::Config {
        name: format!("{}_OBSERVED", s.stream.name),
        subjects: observed_subjects(s),
        storage: StorageType::Memory,
        max_age: Duration::from_secs(24 * 3600),
        ..Default::default()
    }
}

/// Settings that differ, as `key: have → want`.
#[derive(Default)]
struct Differences(Vec<String>);

impl Differences {
    fn check<T: std::fmt::Debug + PartialEq>(mut self, key: &str, have: T, want: T) -> Self {
        if have != want {
            self.0.push(format!("{key}: {have:?} → {want:?}"));
        }
        self
    }
}

/// The settings of `want` that `have` does not match.
fn stream_differences(have: &stream::Config, want: &stream::Config) -> Vec<String> {
    let sorted = |subjects: &[String]| {
        let mut subjects = subjects.to_vec();
        subjects.sort();
        subjects
    };
    Differences::default()
        .check("subjects", sorted(&have.subjects), sorted(&want.subjects))
        .check("storage", have.storage, want.storage)
        .check("retention", have.retention, want.retention)
        .check("max_age", have.max_age, want.max_age)
        .check(
            "max_messages",
            limit(have.max_messages),
            limit(want.max_messages),
        )
        .check("max_bytes", limit(have.max_bytes), limit(want.max_bytes))
        .check(
            "replicas",
            have.num_replicas.max(1),
            want.num_replicas.max(1),
        )
        .check(
            "duplicate_window",
            have.duplicate_window,
            want.duplicate_window,
        )
        .check("discard", have.discard, want.discard)
        .0
}

fn consumer_differences(have: &pull::Config, want: &pull::Config) -> Vec<String> {
    Differences::default()
        .check("ack_wait", have.ack_wait, kept_ack_wait(want))
        .check("max_deliver", have.max_deliver, want.max_deliver)
        .check("backoff", &have.backoff, &want.backoff)
        .check(
            "max_ack_pending",
            have.max_ack_pending,
            want.max_ack_pending,
        )
        .check("filter_subject", &have.filter_subject, &want.filter_subject)
        .check("sample_freq", have.sample_frequency, want.sample_frequency)
        .0
}

/// The ack wait as the server keeps it: with a redelivery backoff, the
/// first backoff step takes its place.
fn kept_ack_wait(config: &pull::Config) -> std::time::Duration {
    config.backoff.first().copied().unwrap_or(config.ack_wait)
}

/// Creates what is missing, checks what exists, recreates on request.
async fn ensure_stream(
    js: &Context,
    want: stream::Config,
    recreate: bool,
) -> Result<stream::Stream, ProvisionError> {
    let what = format!("stream `{}`", want.name);
    match js.get_stream(&want.name).await {
        Ok(mut existing) => {
            let have = existing
                .info()
                .await
                .map_err(|e| api(&what)(e.to_string()))?
                .config
                .clone();
            let differences = stream_differences(&have, &want);
            if differences.is_empty() {
                return Ok(existing);
            }
            if !recreate {
                return Err(ProvisionError::Conflict {
                    what,
                    differences: differences.join(", "),
                });
            }
            tracing::warn!(stream = %want.name, differences = %differences.join(", "), "recreating stream");
            js.delete_stream(&want.name)
                .await
                .map_err(|e| api(&what)(e.to_string()))?;
        }
        Err(e) if stream_not_found(&e) => {}
        Err(e) => return Err(api(&what)(e.to_string())),
    }
    js.create_stream(want)
        .await
        .map_err(|e| api(what)(e.to_string()))
}

fn stream_not_found(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    use async_nats::jetstream::ErrorCode;
    matches!(e.kind(), GetStreamErrorKind::JetStream(inner) if inner.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// Sets up the stream, the dead-letter stream and the durable consumer.
pub async fn provision(js: &Context, s: &Scenario) -> Result<Provisioned, ProvisionError> {
    let stream = ensure_stream(js, stream_config(s), s.stream.recreate).await?;
    let dead_letter = ensure_stream(js, dead_letter_config(s), s.stream.recreate).await?;
    let want = consumer_config(s);
    let what = format!(
        "consumer `{}` on stream `{}`",
        s.consumer.durable, s.stream.name
    );
    let consumer = match stream
        .get_consumer::<pull::Config>(&s.consumer.durable)
        .await
    {
        Ok(mut existing) => {
            let have = existing
                .info()
                .await
                .map_err(|e| api(&what)(e.to_string()))?
                .config
                .clone();
            let have = pull::Config {
                ack_wait: have.ack_wait,
                max_deliver: have.max_deliver,
                backoff: have.backoff.clone(),
                max_ack_pending: have.max_ack_pending,
                filter_subject: have.filter_subject.clone(),
                sample_frequency: have.sample_frequency,
                ..Default::default()
            };
            let differences = consumer_differences(&have, &want);
            if differences.is_empty() {
                existing
            } else if s.stream.recreate {
                stream
                    .delete_consumer(&s.consumer.durable)
                    .await
                    .map_err(|e| api(&what)(e.to_string()))?;
                stream
                    .create_consumer(want)
                    .await
                    .map_err(|e| api(&what)(e.to_string()))?
            } else {
                return Err(ProvisionError::Conflict {
                    what,
                    differences: differences.join(", "),
                });
            }
        }
        Err(_) => stream
            .create_consumer(want)
            .await
            .map_err(|e| api(&what)(e.to_string()))?,
    };
    let observed = match s.consumer.mode {
        ConsumerMode::Simulated => None,
        ConsumerMode::External => Some(fresh_stream(js, observation_config(s)).await?),
    };
    let output = match &s.consumer.output {
        Some(output) => Some(output_stream(js, s, &output.subject).await?),
        None => None,
    };
    Ok(Provisioned {
        stream,
        dead_letter,
        consumer,
        observed,
        output,
    })
}

/// The stream that holds the results on `subject`: one of the user's that
/// already captures it, else one the harness creates for the run.
async fn output_stream(
    js: &Context,
    s: &Scenario,
    subject: &str,
) -> Result<stream::Stream, ProvisionError> {
    if let Ok(name) = js.stream_by_subject(subject).await {
        return js
            .get_stream(&name)
            .await
            .map_err(|e| api(format!("stream `{name}`"))(e.to_string()));
    }
    let config = stream::Config {
        name: format!("{}_OUTPUT", s.stream.name),
        subjects: vec![subject.to_string()],
        storage: storage(s.stream.storage),
        num_replicas: s.stream.replicas,
        ..Default::default()
    };
    fresh_stream(js, config).await
}

/// A stream created empty for this run, whatever an earlier run left.
async fn fresh_stream(
    js: &Context,
    config: stream::Config,
) -> Result<stream::Stream, ProvisionError> {
    let what = format!("stream `{}`", config.name);
    // Usually there is none to delete; a failure that matters shows in
    // the create below.
    if let Err(e) = js.delete_stream(&config.name).await {
        tracing::debug!(error = %e, "no earlier {what} deleted");
    }
    js.create_stream(config)
        .await
        .map_err(|e| api(what)(e.to_string()))
}

/// How long ago a message of run `run_id` was stored as the last one on
/// `subject`, if it was within the stream's duplicate window: a run that
/// reused that id now would see its events dropped as duplicates of the
/// earlier run's.
pub async fn run_id_in_use(
    stream: &stream::Stream,
    subject: &str,
    run_id: &str,
    duplicate_window: Duration,
) -> Result<Option<Duration>, String> {
    let last = match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => message,
        Err(e) if missing(&e) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let ours = crate::event::event_id(Some(&last.headers))
        .and_then(|id| id.strip_prefix(run_id)?.strip_prefix('-'))
        .is_some_and(|seq| !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()));
    if !ours {
        return Ok(None);
    }
    let stored_nanos = last.time.unix_timestamp_nanos();
    let now_nanos = crate::event::unix_nanos(std::time::SystemTime::now()) as i128;
    let age = Duration::from_nanos(u64::try_from(now_nanos - stored_nanos).unwrap_or(0));
    Ok((age < duplicate_window).then_some(age))
}

/// Of the given (event, stream sequence, event id) triples, the events whose
/// message is no longer in the stream. Each sequence is looked up and its
/// `Nats-Msg-Id` compared, because a sequence can be reused: a memory-storage
/// server that lost its messages in a crash numbers new ones from its old
/// first sequence again. Sequences below the stream's first are gone without
/// asking.
pub async fn gone_from_stream(
    stream: &stream::Stream,
    unresolved: &[(u64, u64, String)],
) -> Result<Vec<u64>, String> {
    use futures::StreamExt;
    if unresolved.is_empty() {
        return Ok(Vec::new());
    }
    let first = match stream.get_info().await {
        Ok(info) => info.state.first_sequence,
        // The stream itself is gone (a memory-storage server that crashed
        // forgets it): so is every message it held.
        Err(e) if is_stream_not_found(&e) => {
            return Ok(unresolved.iter().map(|(event, _, _)| *event).collect())
        }
        Err(e) => return Err(e.to_string()),
    };
    // Owned values, so the lookups are plain 'static futures.
    let checks = futures::stream::iter(unresolved.to_vec()).map(|(event, seq, id)| {
        let stream = stream.clone();
        async move {
            let stored = seq >= first && holds(&stream, seq, &id).await?;
            Ok::<_, String>((!stored).then_some(event))
        }
    });
    let results: Vec<Result<Option<u64>, String>> = checks.buffer_unordered(32).collect().await;
    let mut gone = Vec::new();
    for result in results {
        gone.extend(result?);
    }
    gone.sort_unstable();
    Ok(gone)
}

fn is_stream_not_found(e: &stream::InfoError) -> bool {
    use async_nats::jetstream::ErrorCode;
    std::error::Error::source(e)
        .and_then(|source| source.downcast_ref::<async_nats::jetstream::Error>())
        .is_some_and(|inner| inner.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

fn missing(e: &stream::RawMessageError) -> bool {
    use async_nats::jetstream::ErrorCode;
    match e.kind() {
        stream::RawMessageErrorKind::NoMessageFound => true,
        stream::RawMessageErrorKind::JetStream(inner) => {
            inner.error_code() == ErrorCode::NO_MESSAGE_FOUND
        }
        _ => false,
    }
}

/// Whether the stream holds, at `seq`, the message with id `id`.
async fn holds(stream: &stream::Stream, seq: u64, id: &str) -> Result<bool, String> {
    for _ in 0..3 {
        match stream.get_raw_message(seq).await {
            Ok(message) => return Ok(crate::event::event_id(Some(&message.headers)) == Some(id)),
            Err(e) if missing(&e) => return Ok(false),
            Err(e) => {
                tracing::debug!(seq, error = %e, "message lookup failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Err(format!(
        "cannot tell whether stream sequence {seq} is still stored"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_compared_as_the_server_keeps_them() {
        let s = crate::scenario::parse(
            "[load]\nrate = 1\nduration = \"1s\"\n[consumer]\nbackoff = [\"2s\", \"5s\"]\n",
            std::path::Path::new("s.toml"),
        )
        .unwrap();
        let want = consumer_config(&s);
        let mut kept = want.clone();
        kept.ack_wait = std::time::Duration::from_secs(2);
        assert!(consumer_differences(&kept, &want).is_empty());
        let want = dead_letter_config(&s);
        let mut kept = want.clone();
        (kept.max_messages, kept.max_bytes) = (-1, -1);
        assert!(stream_differences(&kept, &want).is_empty());
        kept.max_bytes = 1 << 30;
        assert_eq!(
            stream_differences(&kept, &want),
            ["max_bytes: 1073741824 → -1"]
        );
    }
}
