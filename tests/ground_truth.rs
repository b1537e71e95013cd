//! Ground truth: the stream itself, read back after a run, against what the
//! report says. Faults are made to cause real damage, and the report must
//! name exactly that damage.

mod common;

use std::collections::HashMap;

use async_nats::jetstream;

use common::{run_config, run_to_report, NatsServer};

const LATE_RETRIES: &str = r#"
[stream]
name = "LATE_RETRIES"
subjects = ["late.>"]
storage = "memory"
duplicate_window = "1s"
[load]
subject = "late.events"
rate = 20
duration = "8s"
[publish]
timeout = "300ms"
max_retries = 3
[publish.backoff]
initial = "1500ms"
max = "1500ms"
jitter = 0.1
[consumer]
durable = "late"
ack_wait = "3s"
processing_timeout = "2s"
dead_letter_subject = "late_dlq.events"
dead_letter_stream = "LATE_RETRIES_DLQ"
[drain]
timeout = "40s"
[[faults]]
at = "2s"
kind = "blackhole"
direction = "to_client"
duration = "2500ms"
[criteria]
checks = ["lost == 0", "stream_duplicates == 0"]
"#;

/// Copies of each `Nats-Msg-Id` in the stream, read back one by one.
async fn copies_by_id(client: async_nats::Client, stream: &str) -> HashMap<String, u64> {
    let js = jetstream::new(client);
    let stream = js.get_stream(stream).await.unwrap();
    let last = stream.get_info().await.unwrap().state.last_sequence;
    let mut copies = HashMap::new();
    for seq in 1..=last {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue;
        };
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.to_string())
            .expect("every event carries its id");
        *copies.entry(id).or_insert(0) += 1;
    }
    copies
}

/// A blackhole on the server's replies holds back the PubAcks of stored
/// publishes; the retries come 1.5 s later, past the stream's 1 s
/// duplicate window, so the stream stores them again. Read back, the
/// stream holds some events more than once: the report's stream_duplicates
/// must be exactly the number of extra copies, and nothing may be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_past_the_duplicate_window_are_counted_exactly() {
    let server = NatsServer::start().await;
    let report = run_to_report(run_config(LATE_RETRIES, &server, "late")).await;
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!((c.scheduled, c.lost, c.pending), (160, 0, 0), "{c:#?}");

    let copies = copies_by_id(server.client().await, "LATE_RETRIES").await;
    assert_eq!(copies.len(), 160, "every event was stored at least once");
    let extra: u64 = copies.values().map(|n| n - 1).sum();
    assert!(extra > 0, "the late retries were stored again: {c:#?}");
    assert_eq!(
        c.stream_duplicates, extra,
        "each extra stored copy counted once: {c:#?}"
    );
    assert_eq!(
        report.consumer.num_pending, 0,
        "every copy was delivered before the books closed"
    );
    assert!(!report.passed, "stream_duplicates == 0 fails");
    let failed: Vec<_> = report.criteria.iter().filter(|c| !c.passed).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].expression, "stream_duplicates == 0");
    eprintln!(
        "extra copies {extra}, stream_duplicates {}, retries {}, deduplicated {}",
        c.stream_duplicates, c.retries, c.deduplicated
    );
}
