//! Forged input on the subject: copies of this run's ids, published by
//! somebody else, must not rewrite the books. A copy of a future event's
//! id makes the stream drop the real publish (a collision, counted and
//! warned about); a copy without the run's signature is unexpected, never
//! the event, and its intended time never reaches the latency figures; a
//! copy sent after the duplicate window is not a stream duplicate.

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::NatsServer;

const SCENARIO: &str = r#"
[stream]
name = "FORGED"
subjects = ["forged.>"]
storage = "memory"
duplicate_window = "3s"
[load]
subject = "forged.events"
rate = 20
duration = "5s"
[consumer]
durable = "forged"
dead_letter_subject = "forged_dlq.events"
dead_letter_stream = "FORGED_DLQ"
[consumer.processing]
mean = "0s"
"#;

async fn forge(js: &jetstream::Context, seq: u64) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("forge-{seq}").as_str());
    headers.insert("Harness-Intended-At", "0");
    headers.insert("Harness-Signature", "00000000000000000000000000000000");
    js.publish_with_headers("forged.events", headers, "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_copies_of_ids_do_not_rewrite_the_books() {
    let server = NatsServer::start().await;
    let run = tokio::spawn(common::run_to_report(common::run_config(
        SCENARIO, &server, "forge",
    )));
    let js = jetstream::new(server.client().await);
    // Once the run has stored its first five events (a quarter second in)...
    common::cli::wait_for_async("the first events", Duration::from_secs(20), || async {
        match js.get_stream("FORGED").await {
            Ok(mut stream) => stream.info().await.is_ok_and(|i| i.state.messages >= 5),
            Err(_) => false,
        }
    })
    .await;
    // ...ids of events due 2 s in are taken first, well within the window
    // (3 s) and well before they are due on a slow machine,
    for seq in 40..50 {
        forge(&js, seq).await;
    }
    // and the first five are sent again once the duplicate window is past.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for seq in 0..5 {
        forge(&js, seq).await;
    }
    let report = run.await.unwrap();
    let c = &report.counts;
    assert_eq!((c.collisions, c.publish_failed), (10, 10), "{c:?}");
    assert_eq!(c.unexpected, 15, "every copy is unexpected: {c:?}");
    assert_eq!((c.stream_duplicates, c.duplicates), (0, 0), "{c:?}");
    assert_eq!((c.processed, c.lost, c.pending), (90, 0, 0), "{c:?}");
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    let end_to_end = &report.latency["end_to_end"];
    assert_eq!(end_to_end.count, 90);
    assert!(
        end_to_end.max < 5_000.0,
        "a forged intended time got in: {end_to_end:?}"
    );
    let warnings = report.warnings.join("\n");
    assert!(warnings.contains("10 events were not stored"), "{warnings}");
}
