//! Whole runs against a real nats-server, in-process through the library's
//! entry point: exact counts, dead letters on the stream, and ground truth
//! for loss.

mod common;

use std::path::Path;

use async_nats::jetstream;
use common::NatsServer;
use harness::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_scenario_passes_with_exact_counts() {
    let server = NatsServer::start().await;
    let scenario = scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/smoke.toml"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    let report = common::run_to_report(common::config_for(scenario, &server, "smoke")).await;
    let c = &report.counts;
    assert_eq!(c.scheduled, 500, "50/s for 10s");
    assert_eq!((c.published, c.processed), (500, 500));
    assert_eq!(
        (
            c.publish_failed,
            c.indeterminate,
            c.not_sent,
            c.dead_lettered,
            c.pending,
            c.lost
        ),
        (0, 0, 0, 0, 0, 0)
    );
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert!(report.passed, "{:#?}", report.criteria);
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.latency["end_to_end"].count, 500);
    assert!(report.consumer.acks_confirmed);
    // The report names every criterion with its actual value.
    assert_eq!(report.criteria.len(), 8);
    assert!(report.criteria.iter().all(|c| c.actual.is_some()));
}

const DEAD_LETTERS: &str = r#"
[stream]
name = "DLQ_TRUTH"
subjects = ["truth.>"]
[load]
subject = "truth.events"
rate = 100
duration = "4s"
[consumer]
durable = "truth"
workers = 4
error_ratio = 0.2
dead_letter_subject = "truth_dlq.events"
dead_letter_stream = "DLQ_TRUTH_DLQ"
[drain]
timeout = "20s"
[criteria]
checks = ["lost == 0", "dead_lettered > 0"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_stream_holds_exactly_what_the_report_dead_lettered() {
    let server = NatsServer::start().await;
    let report = common::run_to_report(common::run_config(DEAD_LETTERS, &server, "dlq")).await;
    let c = &report.counts;
    assert!(report.passed, "{:#?} {:#?}", report.criteria, c);
    assert_eq!(c.processed + c.dead_lettered, 400);
    // 20% of 400: far from 0 and from 400 whatever the seed.
    assert!((40..=130).contains(&c.dead_lettered), "{}", c.dead_lettered);
    let js = jetstream::new(server.client().await);
    let mut dlq = js.get_stream("DLQ_TRUTH_DLQ").await.unwrap();
    let stored = dlq.info().await.unwrap().state.messages;
    assert_eq!(stored, c.dead_lettered, "one copy per dead-lettered event");
    assert_eq!(report.consumer.dead_letter_copies, c.dead_lettered);
    let copy = dlq.get_raw_message(1).await.unwrap();
    let reason = copy
        .headers
        .get("Harness-Reason")
        .map(|v| v.as_str().to_string());
    assert_eq!(reason.as_deref(), Some("error"));
    assert_eq!(
        copy.headers
            .get("Harness-Original-Subject")
            .map(|v| v.as_str().to_string())
            .as_deref(),
        Some("truth.events")
    );
    assert!(copy.headers.get("Harness-Stream-Sequence").is_some());
    assert!(copy.headers.get("Harness-Deliveries").is_some());
}

const SLOW_CONSUMER: &str = r#"
[stream]
name = "LOSS_TRUTH"
subjects = ["loss.>"]
[load]
subject = "loss.events"
rate = 300
duration = "3s"
[consumer]
durable = "loss"
workers = 1
batch = 5
max_ack_pending = 10
dead_letter_subject = "loss_dlq.events"
dead_letter_stream = "LOSS_TRUTH_DLQ"
[consumer.processing]
mean = "8ms"
[drain]
timeout = "40s"
[criteria]
checks = ["lost == 0"]
"#;

/// Acked messages deleted from the stream before the consumer reaches them
/// are gone for real; the report must say exactly how many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_deleted_mid_run_are_reported_as_exactly_that_many_lost() {
    let server = NatsServer::start().await;
    let js = jetstream::new(server.client().await);
    let run = tokio::spawn(common::run_to_report(common::run_config(
        SLOW_CONSUMER,
        &server,
        "loss",
    )));
    const DOOMED: std::ops::Range<u64> = 700..710;
    common::delete_before_the_consumers(&js, "LOSS_TRUTH", &["loss"], DOOMED, 100).await;
    let report = run.await.unwrap();
    let c = &report.counts;
    assert_eq!(c.published, 900);
    assert_eq!(c.lost, 10, "{c:#?}");
    assert_eq!(c.lost_mid_run, 10, "later events were processed");
    assert_eq!((c.processed, c.pending), (890, 0));
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert!(!report.passed, "lost == 0 fails");
    assert_eq!(report.exit_code(), 1);
    let mut seqs: Vec<u64> = c
        .samples
        .lost
        .iter()
        .filter_map(|s| s.stream_sequence)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, DOOMED.collect::<Vec<_>>());
}

const FAST_LOSS: &str = r#"
[stream]
name = "FAST_LOSS"
subjects = ["fast.>"]
storage = "memory"
[load]
subject = "fast.events"
rate = 20000
duration = "3s"
max_in_flight = 4096
[load.payload]
size = 128
kind = "random"
[consumer]
durable = "fast"
workers = 4
batch = 256
max_ack_pending = -1
dead_letter_subject = "fast_dlq.events"
dead_letter_stream = "FAST_LOSS_DLQ"
[consumer.processing]
mean = "0s"
[drain]
timeout = "60s"
[[faults]]
at = "1s"
kind = "consumer_stall"
duration = "1500ms"
"#;

/// The same at 20,000 events/s: the consumer stalls, messages it has not
/// reached are deleted under it, and the report counts exactly those lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_twenty_thousand_a_second_deleted_messages_are_exactly_the_lost_ones() {
    let server = NatsServer::start().await;
    let js = jetstream::new(server.client().await);
    let run = tokio::spawn(common::run_to_report(common::run_config(
        FAST_LOSS, &server, "fast",
    )));
    const DOOMED: std::ops::Range<u64> = 28_000..28_100;
    common::delete_before_the_consumers(&js, "FAST_LOSS", &["fast"], DOOMED, 0).await;
    let report = run.await.unwrap();
    let c = &report.counts;
    assert_eq!(c.scheduled, 60_000, "{c:#?}");
    assert_eq!(c.published, 60_000, "{c:#?}");
    assert_eq!((c.lost, c.lost_mid_run), (100, 100), "{c:#?}");
    assert_eq!(
        (c.processed, c.pending, c.dead_lettered),
        (59_900, 0, 0),
        "{c:#?}"
    );
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    let mut seqs: Vec<u64> = c
        .samples
        .lost
        .iter()
        .filter_map(|s| s.stream_sequence)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, DOOMED.collect::<Vec<_>>());
    assert!(
        report.rates.achieved >= 0.99 * report.rates.target,
        "{:?}",
        report.rates
    );
}
