//! The user's own service as the consumer under test: the reference audit
//! consumer (examples/audit_consumer.rs) runs as its own process, and the
//! harness, which only observes it, must report exactly what it did.

mod common;

use std::process::{Child, Command, Stdio};

use common::NatsServer;

/// The example service, built once per test binary (`cargo test` builds
/// examples too, but not when only some tests are asked for).
fn example(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "--quiet",
            "--example",
            name,
            "--manifest-path",
            manifest,
        ]);
        // What cargo sets for a test process, left out: build scripts that
        // track such a variable would rebuild their crate for a change.
        for (key, _) in std::env::vars() {
            let set_for_tests = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|prefix| key.starts_with(prefix))
                || [
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                ]
                .contains(&key.as_str());
            if set_for_tests {
                cargo.env_remove(key);
            }
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "cannot build the example {name}");
    });
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    profile_dir.join("examples").join(name)
}

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
