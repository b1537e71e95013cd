//! Output paths: a path that cannot be written is refused before the run
//! (exit 2), and one report that cannot be written does not keep the
//! others from being written, nor change the verdict's exit code.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::cli::{harness, text, wait_exit, write};
use common::NatsServer;

const SHORT: &str = "[load]\nrate = 20\nduration = \"2s\"\n[consumer.processing]\nmean = \"0s\"\n";

#[test]
fn an_unwritable_report_path_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SHORT);
    let cases = [
        ("--report-json", "/proc/harness-report.json".to_string()),
        ("--report-junit", dir.path().to_str().unwrap().to_string()),
        ("--metrics-out", "/proc/harness.prom".to_string()),
    ];
    for (flag, path) in cases {
        let started = Instant::now();
        // No server at this URL: the check must come before any connection.
        let output = harness()
            .args([
                "run",
                file.to_str().unwrap(),
                "--nats-url",
                "nats://127.0.0.1:1",
            ])
            .args([flag, &path])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains(&path),
            "{}",
            text(&output)
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "s.toml")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_report_failing_leaves_the_others_and_the_verdict() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SHORT);
    let json_dir = dir.path().join("json");
    let junit = dir.path().join("verdict.xml");
    let child = harness()
        .args(["run", file.to_str().unwrap(), "--nats-url", &server.url()])
        .arg("--report-json")
        .arg(json_dir.join("report.json"))
        .arg("--report-junit")
        .arg(&junit)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The check made the folder; while the run goes on, a file takes its place.
    common::cli::wait_for("the report folder", Duration::from_secs(10), || {
        json_dir.is_dir()
    });
    std::fs::remove_dir(&json_dir).unwrap();
    std::fs::write(&json_dir, "in the way").unwrap();
    let output = wait_exit(child, Duration::from_secs(60));
    assert_eq!(
        output.status.code(),
        Some(0),
        "the verdict's code: {}",
        text(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot write"),
        "{}",
        text(&output)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite"), "{xml}");
}

/// A terminal that hung up, or `harness run ... | head -1`: stdout is
/// closed when the summary is printed. The reports are written all the
/// same, and the exit code is the verdict's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_loses_no_report() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SHORT);
    let report = dir.path().join("report.json");
    let mut child = common::cli::spawn_run(&file, &server.url(), &report);
    drop(child.stdout.take());
    let output = wait_exit(child, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(common::cli::read_json(&report)["passed"], true);
}
