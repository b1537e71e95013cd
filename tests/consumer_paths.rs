//! The consumer under test's unhappy paths against a real server: garbage
//! on the subject, exhausted deliveries, and provisioning conflicts.

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::NatsServer;
use harness::error::HarnessError;
use harness::run::{self, Signals};

const STEADY: &str = r#"
[stream]
name = "POISON"
subjects = ["poison.>"]
[load]
subject = "poison.events"
rate = 50
duration = "4s"
[consumer]
durable = "poison"
dead_letter_subject = "poison_dlq.events"
dead_letter_stream = "POISON_DLQ"
[drain]
timeout = "15s"
[criteria]
checks = ["lost == 0", "success_rate == 100%", "unexpected == 6"]
"#;

/// Garbage thrown into the subject mid-run is dead-lettered as poison and
/// counted as unexpected; the run's own events are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_subject_is_dead_lettered_as_poison_and_changes_nothing_else() {
    let server = NatsServer::start().await;
    let client = server.client().await;
    let js = jetstream::new(client.clone());
    let run = tokio::spawn(common::run_to_report(common::run_config(
        STEADY, &server, "poison",
    )));
    let deadline = Instant::now() + Duration::from_secs(10);
    while js.get_stream("POISON").await.is_err() {
        assert!(Instant::now() < deadline, "the stream never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut foreign_id = async_nats::HeaderMap::new();
    foreign_id.insert("Nats-Msg-Id", "someone-else-1");
    let mut our_id_bad_payload = async_nats::HeaderMap::new();
    our_id_bad_payload.insert("Nats-Msg-Id", "poison-999999");
    let garbage: Vec<(Option<async_nats::HeaderMap>, Vec<u8>)> = vec![
        (None, vec![0xff, 0xfe, 0x00, 0x01]),
        (None, b"{\"event_id\": \"trunc".to_vec()),
        (None, b"{\"wrong\": \"schema\"}".to_vec()),
        (None, Vec::new()),
        (Some(foreign_id), b"{}".to_vec()),
        (Some(our_id_bad_payload), b"not json".to_vec()),
    ];
    for (headers, payload) in garbage {
        let ack = match headers {
            Some(h) => {
                js.publish_with_headers("poison.events", h, payload.into())
                    .await
            }
            None => js.publish("poison.events", payload.into()).await,
        };
        ack.unwrap().await.unwrap();
    }
    let report = run.await.unwrap();
    let c = &report.counts;
    assert_eq!(
        (c.scheduled, c.processed, c.dead_lettered, c.lost),
        (200, 200, 0, 0),
        "{c:#?}"
    );
    assert_eq!(c.unexpected, 6);
    assert!(report.passed, "{:#?}", report.criteria);
    assert_eq!(report.consumer.dead_letter_copies, 6);
    let mut dlq = js.get_stream("POISON_DLQ").await.unwrap();
    assert_eq!(dlq.info().await.unwrap().state.messages, 6);
    let copy = dlq.get_raw_message(1).await.unwrap();
    assert_eq!(
        copy.headers
            .get("Harness-Reason")
            .map(|v| v.as_str().to_string())
            .as_deref(),
        Some("poison")
    );
}

const ALWAYS_HANGS: &str = r#"
[stream]
name = "EXHAUST"
subjects = ["exhaust.>"]
[load]
subject = "exhaust.events"
rate = 10
duration = "1s"
[consumer]
durable = "exhaust"
workers = 4
ack_wait = "2s"
max_deliver = 2
processing_timeout = "100ms"
timeout_ratio = 1.0
nak_delay = "100ms"
dead_letter_subject = "exhaust_dlq.events"
dead_letter_stream = "EXHAUST_DLQ"
[drain]
timeout = "20s"
[criteria]
checks = ["dead_lettered == 10", "redelivered == 10", "lost == 0", "pending == 0"]
"#;

/// Every handler hangs: each event is NAKed, redelivered once, NAKed again,
/// and dead-lettered from the MAX_DELIVERIES advisory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_deliveries_are_dead_lettered_from_the_advisory() {
    let server = NatsServer::start().await;
    let report = common::run_to_report(common::run_config(ALWAYS_HANGS, &server, "exhaust")).await;
    assert!(
        report.passed,
        "{:#?}\n{:#?}",
        report.criteria, report.counts
    );
    let reasons: Vec<_> = report
        .counts
        .samples
        .dead_lettered
        .iter()
        .map(|s| s.reason.clone().unwrap_or_default())
        .collect();
    assert_eq!(reasons.len(), 10);
    assert!(reasons.iter().all(|r| r == "max_deliveries"), "{reasons:?}");
    let js = jetstream::new(server.client().await);
    let mut dlq = js.get_stream("EXHAUST_DLQ").await.unwrap();
    assert_eq!(dlq.info().await.unwrap().state.messages, 10);
}

/// An existing stream whose settings differ is an error naming the
/// differences, never silently changed; `recreate = true` replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_stream_is_an_error_unless_recreate_is_asked() {
    let server = NatsServer::start().await;
    let js = jetstream::new(server.client().await);
    js.create_stream(jetstream::stream::Config {
        name: "CONFLICT".into(),
        subjects: vec!["conflict.>".into()],
        storage: jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let text = "[stream]\nname = \"CONFLICT\"\nsubjects = [\"conflict.>\"]\n[load]\nsubject = \"conflict.events\"\nrate = 20\nduration = \"1s\"\n";
    let error = run::run(
        common::run_config(text, &server, "conflict"),
        Signals::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, HarnessError::Provision(_)), "{error}");
    assert_eq!(error.exit_code(), 3);
    let message = error.to_string();
    assert!(
        message.contains("storage: Memory → File") && message.contains("recreate"),
        "{message}"
    );
    let info = js
        .get_stream("CONFLICT")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .storage;
    assert_eq!(
        info,
        jetstream::stream::StorageType::Memory,
        "left as it was"
    );

    let recreate = text.replace("[load]", "recreate = true\n[load]");
    let report = common::run_to_report(common::run_config(&recreate, &server, "conflict2")).await;
    assert_eq!(report.counts.processed, 20);
    let info = js
        .get_stream("CONFLICT")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .storage;
    assert_eq!(info, jetstream::stream::StorageType::File);
}

/// The poison scenario, shortened: every garbage message the stream took is
/// counted unexpected and dead-lettered as poison, and the run's own events
/// are all processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_garbage_publisher_is_dead_lettered_and_changes_nothing_else() {
    let server = NatsServer::start().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/poison.toml");
    let mut scenario = harness::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    scenario.load.duration = Some(std::time::Duration::from_secs(5));
    if let Some(garbage) = scenario.load.garbage.as_mut() {
        garbage.rate = 5.0;
    }
    let report = common::run_to_report(common::config_for(scenario, &server, "poison2")).await;
    let c = &report.counts;
    assert!(report.garbage_sent >= 20, "{}", report.garbage_sent);
    assert_eq!(c.unexpected, report.garbage_sent, "{c:#?}");
    assert_eq!(report.consumer.dead_letter_copies, report.garbage_sent);
    assert_eq!(
        (c.scheduled, c.processed, c.dead_lettered, c.lost),
        (250, 250, 0, 0)
    );
    assert!(report.passed, "{:#?}", report.criteria);
    let js = jetstream::new(server.client().await);
    let mut dlq = js.get_stream("HARNESS_POISON_DLQ").await.unwrap();
    assert_eq!(
        dlq.info().await.unwrap().state.messages,
        report.garbage_sent
    );
}
