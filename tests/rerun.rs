//! Running again against the same server: every shipped scenario's stream,
//! dead-letter stream and consumer are found as the server keeps them, so a
//! second run provisions cleanly and processes every event; a run id reused
//! within the duplicate window is refused before anything is sent.

mod common;

use std::path::{Path, PathBuf};

use common::NatsServer;
use harness::error::HarnessError;
use harness::scenario::{self, Scenario};

fn shipped() -> Vec<(PathBuf, Scenario)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    files
        .into_iter()
        .map(|f| {
            let s = scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
            (f, s)
        })
        .collect()
}

/// The scenario's stream, dead letters and consumer as written, with a short
/// constant load and no faults (an external server cannot be killed).
fn shortened(mut s: Scenario) -> Scenario {
    s.faults.clear();
    s.load.phases.clear();
    s.load.rate = Some(20.0);
    s.load.duration = Some(std::time::Duration::from_secs(1));
    s.criteria = Default::default();
    s.consumer.timeout_ratio = 0.0;
    s.consumer.error_ratio = 0.0;
    s.drain.timeout = std::time::Duration::from_secs(30);
    // A service the scenario runs: the example built for the tests, its
    // log kept out of the working directory.
    if let Some(service) = &mut s.consumer.service {
        let program = Path::new(&service.command[0]);
        if let Some(name) = program
            .file_name()
            .filter(|_| program.starts_with("target"))
        {
            service.command[0] = common::example(&name.to_string_lossy())
                .display()
                .to_string();
        }
        service.log =
            Some(std::env::temp_dir().join(format!("harness-test-rerun-{}.log", s.stream.name)));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_scenario_runs_twice_against_one_server() {
    // Three nodes, for the replicated stream of cluster-leader-kill.
    let server = NatsServer::cluster(3).await;
    let scenarios = shipped();
    // Each scenario has streams of its own: two sharing a name with other
    // settings would conflict on a shared server.
    let mut names: Vec<&str> = scenarios
        .iter()
        .flat_map(|(_, s)| {
            [
                s.stream.name.as_str(),
                s.consumer.dead_letter_stream.as_str(),
            ]
        })
        .collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        count,
        "stream names shared between scenarios: {names:?}"
    );
    let runs = scenarios.into_iter().map(|(file, s)| {
        let server = &server;
        async move {
            let name = file
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .replace('-', "_");
            for round in ["first", "second"] {
                let config =
                    common::config_for(shortened(s.clone()), server, &format!("{name}_{round}"));
                let report = harness::run::run(config, harness::run::Signals::default())
                    .await
                    .unwrap_or_else(|e| panic!("{}: {round} run: {e}", file.display()));
                let c = &report.counts;
                assert_eq!(
                    (c.scheduled, c.processed, c.deduplicated, c.lost),
                    (20, 20, 0, 0),
                    "{}: {round} run: {c:?}",
                    file.display()
                );
            }
        }
    });
    // A few at a time: provisioning replicated streams on a busy two-core
    // machine is slow enough already.
    use futures::StreamExt;
    futures::stream::iter(runs)
        .buffer_unordered(3)
        .collect::<Vec<()>>()
        .await;
}

const SMALL: &str = r#"
[stream]
name = "REUSE"
subjects = ["reuse.>"]
storage = "memory"
duplicate_window = "1m"
[load]
subject = "reuse.events"
rate = 20
duration = "1s"
[consumer]
durable = "reuse"
# The server keeps the first step as the ack wait: still no conflict.
backoff = ["5s", "10s"]
dead_letter_subject = "reuse_dlq.events"
dead_letter_stream = "REUSE_DLQ"
[consumer.processing]
mean = "0s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_id_reused_within_the_duplicate_window_is_refused() {
    let server = NatsServer::start().await;
    let first = common::run_to_report(common::run_config(SMALL, &server, "ci_42")).await;
    assert_eq!(first.counts.processed, 20);
    let again = harness::run::run(
        common::run_config(SMALL, &server, "ci_42"),
        harness::run::Signals::default(),
    )
    .await
    .expect_err("the same run id within the duplicate window must be refused");
    assert!(matches!(again, HarnessError::Usage(_)), "{again}");
    assert_eq!(again.exit_code(), 2);
    let message = again.to_string();
    assert!(
        message.contains("ci_42")
            && message.contains("duplicate window")
            && message.contains("--run-id"),
        "{message}"
    );
    // A new id runs as usual on the same stream.
    let other = common::run_to_report(common::run_config(SMALL, &server, "ci_43")).await;
    assert_eq!((other.counts.processed, other.counts.deduplicated), (20, 0));
}
