//! The user's own service as the consumer under test: the reference audit
//! consumer (examples/audit_consumer.rs) runs as its own process, and the
//! harness, which only observes it, must report exactly what it did.

mod common;

use std::process::{Child, Command, Stdio};

use common::{example, NatsServer};

/// The service's process, killed when the test ends however it ends.
struct Service(Child);

impl Service {
    fn start(server: &NatsServer, stream: &str, durable: &str, fail_every: u64) -> Service {
        let path = example("audit_consumer");
        let child = Command::new(&path)
            .env("NATS_URL", server.url())
            .env("HARNESS_STREAM", stream)
            .env("HARNESS_DURABLE", durable)
            .env(
                "HARNESS_DEAD_LETTER_SUBJECT",
                format!("{}_dlq.events", durable),
            )
            .env("AUDIT_FAIL_EVERY", fail_every.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        Service(child)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scenario(stream: &str, durable: &str) -> String {
    format!(
        r#"
[stream]
name = "{stream}"
subjects = ["{durable}.>"]
[load]
subject = "{durable}.events"
rate = 200
duration = "3s"
[consumer]
mode = "external"
durable = "{durable}"
dead_letter_subject = "{durable}_dlq.events"
dead_letter_stream = "{stream}_DLQ"
[drain]
timeout = "20s"
"#
    )
}

/// Every event the service acked is processed, each once, with its
/// latencies; nothing is lost, nothing pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_service_has_every_event_processed() {
    let server = NatsServer::start().await;
    let _service = Service::start(&server, "AUDIT", "audit", 0);
    let report = common::run_to_report(common::run_config(
        &scenario("AUDIT", "audit"),
        &server,
        "ext1",
    ))
    .await;
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(
        (c.scheduled, c.processed, c.dead_lettered, c.lost, c.pending),
        (600, 600, 0, 0, 0),
        "{c:#?}"
    );
    assert_eq!((c.unexpected, c.duplicates), (0, 0), "{c:#?}");
    let e2e = &report.latency["end_to_end"];
    assert_eq!(e2e.count, 600, "{e2e:?}");
    assert!(e2e.p99 > 0.0 && e2e.p99 < 1000.0, "{e2e:?}");
    assert_eq!(report.latency["processing"].count, 600);
    assert!(report.consumer.acks_confirmed);
    assert!(report.passed, "{:#?}", report.criteria);
}

/// Every tenth message fails in the service: it copies it to the
/// dead-letter subject and TERMs it. The harness counts exactly those as
/// dead-lettered, the others as processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_service_dead_letters_is_counted_dead_lettered_exactly() {
    let server = NatsServer::start().await;
    let _service = Service::start(&server, "AUDITF", "auditf", 10);
    let report = common::run_to_report(common::run_config(
        &scenario("AUDITF", "auditf"),
        &server,
        "ext2",
    ))
    .await;
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(
        (c.scheduled, c.processed, c.dead_lettered, c.lost, c.pending),
        (600, 540, 60, 0, 0),
        "{c:#?}"
    );
    assert_eq!(report.consumer.dead_letter_copies, 60);
    assert_eq!(
        (c.unexpected, c.duplicates, c.redelivered),
        (0, 0, 0),
        "{c:#?}"
    );
}

fn run_by_the_harness(stream: &str, durable: &str, extra: &str) -> String {
    let program = example("audit_consumer");
    // Deliveries a killed service held come back soon.
    let scenario = scenario(stream, durable).replace("[drain]", "ack_wait = \"2s\"\n[drain]");
    format!(
        "{scenario}[consumer.service]\ncommand = [\"{}\"]\nlog = \"{}\"\n{extra}",
        program.display(),
        std::env::temp_dir()
            .join(format!("harness-test-{durable}.log"))
            .display(),
    )
}

/// The harness starts the service with the run's settings, waits for its
/// first pull, keeps its output in the log, and stops it with SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_starts_the_service_and_stops_it_gracefully() {
    let server = NatsServer::start().await;
    let text = run_by_the_harness("OWNED", "owned", "");
    let log = std::env::temp_dir().join("harness-test-owned.log");
    let _ = std::fs::remove_file(&log);
    let report = common::run_to_report(common::run_config(&text, &server, "ext3")).await;
    let c = &report.counts;
    assert_eq!(
        (c.scheduled, c.processed, c.lost, c.pending),
        (600, 600, 0, 0),
        "{c:#?}"
    );
    assert_eq!(
        report.consumer.service_log.as_deref(),
        Some(log.to_str().unwrap())
    );
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(
        written.contains("consuming `owned` on `OWNED`"),
        "{written}"
    );
    // Its own last words: it exited through its SIGTERM path.
    assert!(written.contains("stopped after 600 messages"), "{written}");
    assert!(
        report.passed,
        "{:#?} {:#?}",
        report.criteria, report.warnings
    );
}

/// SIGKILL mid-run: the deliveries it held come back after ack_wait, to
/// the service started again, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_started_again_loses_nothing() {
    let server = NatsServer::start().await;
    let faults = "[[faults]]\nat = \"1s\"\nkind = \"service_kill\"\nduration = \"1s\"\n";
    let text = run_by_the_harness("KILLED", "killed", faults);
    let report = common::run_to_report(common::run_config(&text, &server, "ext4")).await;
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(
        (c.scheduled, c.processed, c.lost, c.pending),
        (600, 600, 0, 0),
        "{c:#?}"
    );
    let fault = &report.faults[0];
    assert_eq!(
        (fault.kind.as_str(), fault.error.as_deref()),
        ("service_kill", None)
    );
    assert!(fault.recovered_secs.is_some(), "{fault:?}");
    assert!(
        report
            .warnings
            .iter()
            .all(|w| !w.contains("exited on its own")),
        "{:?}",
        report.warnings
    );
}

/// A service that never gets ready ends the run before the load, with
/// exit 3 and the way to its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_never_ready_is_an_infrastructure_error() {
    let server = NatsServer::start().await;
    let log = std::env::temp_dir().join("harness-test-silent.log");
    let text = format!(
        "{}[consumer.service]\ncommand = [\"sleep\", \"30\"]\nready_log = \"listening\"\n\
         ready_timeout = \"1s\"\nlog = \"{}\"\n",
        scenario("SILENT", "silent"),
        log.display()
    );
    let started = std::time::Instant::now();
    let error = harness::run::run(
        common::run_config(&text, &server, "ext5"),
        harness::run::Signals::default(),
    )
    .await
    .expect_err("the run cannot start");
    assert_eq!(error.exit_code(), harness::error::exit::INFRASTRUCTURE);
    let message = error.to_string();
    assert!(
        message.contains("not ready within 1s") && message.contains(log.to_str().unwrap()),
        "{message}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// A scenario whose service the harness runs: `program` from examples/,
/// `env` its extra environment, `extra` more TOML (faults, criteria).
fn service_scenario(
    stream: &str,
    durable: &str,
    program: &str,
    env: &str,
    output: bool,
    extra: &str,
) -> String {
    let scenario = scenario(stream, durable).replace(
        "[drain]",
        &format!(
            "ack_wait = \"2s\"\n{}[drain]",
            if output {
                format!("[consumer.output]\nsubject = \"{durable}_results.events\"\n")
            } else {
                String::new()
            }
        ),
    );
    format!(
        "{scenario}[consumer.service]\ncommand = [\"{}\"]\nenv = {{ {env} }}\nlog = \"{}\"\n{extra}",
        example(program).display(),
        std::env::temp_dir()
            .join(format!("harness-test-{durable}.log"))
            .display(),
    )
}

/// With an output contract, every event has its one result, with the hash
/// of its own payload; end to end runs to the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_has_its_one_result_with_the_output_contract() {
    let server = NatsServer::start().await;
    let text = service_scenario("OUT", "out", "audit_consumer", "", true, "");
    let report = common::run_to_report(common::run_config(&text, &server, "ext6")).await;
    let c = &report.counts;
    assert_eq!(
        (
            c.processed,
            c.outputs,
            c.output_duplicates,
            c.output_corrupt,
            c.output_missing
        ),
        (600, 600, 0, 0, 0),
        "{c:#?}"
    );
    assert_eq!(report.latency["end_to_end"].count, 600);
    assert!(report.passed, "{:#?}", report.criteria);
}

/// Results twice, with a wrong hash, and deliveries dropped unacked: the
/// harness reports each exactly. Picked by stream sequence (1 to 600): the
/// 12 multiples of 50 are dropped at their first delivery and acked at
/// their second, the 60 multiples of 10 have two results, and the 24
/// multiples of 25 a first result with a wrong hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_corrupt_and_dropped_results_are_counted_exactly() {
    let server = NatsServer::start().await;
    let env =
        "FAULTY_DROP_EVERY = \"50\", FAULTY_TWICE_EVERY = \"10\", FAULTY_CORRUPT_EVERY = \"25\"";
    let text = service_scenario("FAULTY", "faulty", "faulty_consumer", env, true, "");
    let report = common::run_to_report(common::run_config(&text, &server, "ext7")).await;
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(
        (c.processed, c.lost, c.pending, c.redelivered),
        (600, 0, 0, 12),
        "{c:#?}"
    );
    assert_eq!(
        (
            c.outputs,
            c.output_duplicates,
            c.output_corrupt,
            c.output_missing
        ),
        (600, 60, 24, 0),
        "{c:#?}"
    );
}

/// A service that crashes at its 301st message: the 300 events it acked
/// are processed, the rest stay in the stream, pending; the report says
/// it exited on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_service_leaves_the_rest_pending_and_is_named() {
    let server = NatsServer::start().await;
    let text = service_scenario(
        "CRASH",
        "crash",
        "faulty_consumer",
        "FAULTY_CRASH_AT = \"301\"",
        false,
        "",
    )
    .replace("timeout = \"20s\"", "timeout = \"3s\"");
    let report = common::run_to_report(common::run_config(&text, &server, "ext8")).await;
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!((c.processed, c.pending, c.lost), (300, 300, 0), "{c:#?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("exited on its own") && w.contains("exit code 1")),
        "{:?}",
        report.warnings
    );
    assert!(!report.passed);
}

/// A service that stops reading but stays up: the consumer is stuck, and
/// the run fails for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_service_is_reported_stuck() {
    let server = NatsServer::start().await;
    let text = service_scenario(
        "HUNG",
        "hung",
        "faulty_consumer",
        "FAULTY_HANG_AT = \"301\"",
        false,
        "[recovery]\nstuck_after = \"1s\"\n",
    )
    .replace("timeout = \"20s\"", "timeout = \"4s\"");
    let report = common::run_to_report(common::run_config(&text, &server, "ext9")).await;
    let c = &report.counts;
    assert_eq!((c.processed, c.pending), (300, 300), "{c:#?}");
    assert!(report.consumer_stuck.is_some(), "{:?}", report.warnings);
    assert!(!report.passed);
}

/// A service that acks an event and crashes before its result: JetStream
/// counts it acked, so only the output contract shows the event lost. The
/// 299 events before it have their results, the rest wait in the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_acked_then_lost_by_a_crash_is_output_missing() {
    let server = NatsServer::start().await;
    let text = service_scenario(
        "LOSE",
        "lose",
        "faulty_consumer",
        "FAULTY_LOSE_AT = \"300\"",
        true,
        "[criteria]\nchecks = [\"output_missing == 0\"]\n",
    )
    .replace("timeout = \"20s\"", "timeout = \"3s\"");
    let report = common::run_to_report(common::run_config(&text, &server, "ext10")).await;
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(
        (c.processed, c.outputs, c.output_missing, c.pending, c.lost),
        (300, 299, 1, 300, 0),
        "{c:#?}"
    );
    let missing = &report.criteria[0];
    assert_eq!((missing.actual, missing.passed), (Some(1.0), false));
    assert_eq!(report.consumer.service_exits.len(), 1);
    assert!(!report.passed);
}

/// Messages the service never acks (every 50th stream sequence) run out of
/// their two deliveries: the server says so, and the harness counts each
/// exhausted once, still pending in the stream. (Their second deliveries
/// timed out unanswered: JetStream reports no such delivery, so they are
/// not counted redelivered.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_run_out_exactly_for_the_messages_never_acked() {
    let server = NatsServer::start().await;
    let text = service_scenario(
        "NEVER",
        "never",
        "faulty_consumer",
        "FAULTY_NEVER_EVERY = \"50\"",
        false,
        "",
    )
    .replace("ack_wait = \"2s\"", "ack_wait = \"1s\"\nmax_deliver = 2");
    let report = common::run_to_report(common::run_config(&text, &server, "ext11")).await;
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(
        (c.processed, c.exhausted, c.pending, c.lost),
        (588, 12, 12, 0),
        "{c:#?}"
    );
}
