//! The binary's contract: exit codes, messages and the report file, checked
//! by running `harness` as a user or a CI job would.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{harness, text, write};
use common::NatsServer;

const SHORT: &str = r#"
[load]
rate = 20
duration = "2s"
[drain]
timeout = "10s"
"#;

#[tokio::test]
async fn a_failing_criterion_exits_1_and_names_its_actual_value() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "fail.toml",
        &format!("{SHORT}[criteria]\nchecks = [\"processed > 1000\", \"lost == 0\"]\n"),
    );
    let report = dir.path().join("report.json");
    let output = harness()
        .args([
            "run",
            file.to_str().unwrap(),
            "--nats-url",
            &server.url(),
            "--report-json",
        ])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAIL  processed > 1000") && stdout.contains("actual 40"),
        "{}",
        text(&output)
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["passed"], false);
    assert_eq!(json["criteria"][0]["passed"], false);
    assert_eq!(json["criteria"][0]["actual"], 40.0);
    assert_eq!(json["criteria"][1]["passed"], true);
}

#[test]
fn an_unreachable_server_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.toml",
        &format!("{SHORT}[target]\nconnect_timeout = \"1s\"\n"),
    );
    let started = Instant::now();
    let output = harness()
        .args([
            "run",
            file.to_str().unwrap(),
            "--nats-url",
            "nats://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to NATS at nats://127.0.0.1:1"),
        "{}",
        text(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_malformed_scenario_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.toml",
        "[load]\nrate = 10\nduraton = \"5s\"\n",
    );
    let output = harness()
        .args(["run", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let place = format!("{}:3:1", file.display());
    assert!(
        stderr.contains(&place) && stderr.contains("load.duraton"),
        "{}",
        text(&output)
    );

    let output = harness()
        .args(["validate", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3);
    let output = harness().arg("validate").args(&files).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .matches(": ok")
            .count(),
        files.len()
    );
}

/// SIGINT on a running (embedded-target) run: the schedule stops, the
/// fault under way is undone at once and the next never starts, the report
/// is written as partial, and the process exits 130.
#[test]
fn sigint_writes_the_partial_report_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "long.toml",
        // Slow handlers keep events unresolved, so the interrupted drain
        // lasts its full 5 s: the reset at 6 s would fall inside it.
        "[load]\nrate = 50\nduration = \"5m\"\n[consumer]\nworkers = 1\n\
         [consumer.processing]\nmean = \"2s\"\n[criteria]\nchecks = [\"lost == 0\"]\n\
         [[faults]]\nat = \"2s\"\nkind = \"latency\"\ndelay = \"20ms\"\nduration = \"1m\"\n\
         [[faults]]\nat = \"6s\"\nkind = \"reset\"\n",
    );
    let report = dir.path().join("partial.json");
    let mut child = harness()
        .args(["run", file.to_str().unwrap(), "--report-json"])
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until events flow: the embedded server is up and the schedule runs.
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().unwrap().is_none(), "the run ended early");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit 30 s after SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["interrupted"], true);
    assert_eq!(json["passed"], false);
    let scheduled = json["counts"]["scheduled"].as_u64().unwrap();
    assert!(
        scheduled > 0 && scheduled < 15_000,
        "stopped early: {scheduled}"
    );
    assert_eq!(json["counts"]["lost"], 0);
    let faults = json["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "the reset never started: {faults:?}");
    let warnings = json["warnings"].to_string();
    assert!(
        warnings.contains("faults[1] (reset at 6s) never started"),
        "{warnings}"
    );
    assert_eq!(faults[0]["kind"], "latency");
    let undone = faults[0]["recovered_secs"].as_f64().unwrap();
    assert!(
        undone < 6.0,
        "undone at the interrupt, not after the drain: {undone}"
    );
    let invariants = json["counts"]["invariants"].as_array().unwrap();
    assert!(
        invariants.iter().all(|i| i["holds"] == true),
        "{invariants:?}"
    );
}

#[test]
fn a_missing_nats_server_exits_3_with_the_install_hint() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", SHORT);
    let output = harness()
        .args(["run", file.to_str().unwrap()])
        .env("NATS_SERVER_BIN", dir.path().join("no-such-nats-server"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nats-server not found") && stderr.contains("scripts/install-tools.sh"),
        "{}",
        text(&output)
    );
}

/// An abort criterion that fails stops the run long before its end.
#[tokio::test]
async fn a_failing_abort_criterion_stops_the_run_and_exits_1() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = "[load]\nrate = 20\nduration = \"2m\"\n[criteria]\nabort_on = [\"processed > 1000000\"]\nabort_grace = \"1s\"\n";
    let file = write(dir.path(), "abort.toml", scenario);
    let report = dir.path().join("report.json");
    let started = Instant::now();
    let output = harness()
        .args([
            "run",
            file.to_str().unwrap(),
            "--nats-url",
            &server.url(),
            "--report-json",
        ])
        .arg(&report)
        .arg("--report-junit")
        .arg(dir.path().join("junit.xml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(started.elapsed() < Duration::from_secs(30), "aborted early");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["aborted_by"], "processed > 1000000");
    assert_eq!(json["passed"], false);
    assert!(json["counts"]["scheduled"].as_u64().unwrap() < 200);

    // The JUnit file, read by a real XML parser: one case per criterion,
    // per invariant and three for the run; the abort criterion fails, and so
    // does the run, which it stopped.
    let junit = junit_cases(&dir.path().join("junit.xml"));
    assert_eq!(junit["tests"], 1 + 4 + 3, "{junit}");
    assert_eq!(junit["failures"], 2, "{junit}");
    assert_eq!(junit["failed"][0][0], "processed > 1000000", "{junit}");
    assert_eq!(junit["failed"][1][0], "the run completed", "{junit}");
    assert!(
        junit["failed"][1][1]
            .as_str()
            .unwrap()
            .contains("aborted by `processed > 1000000`"),
        "{junit}"
    );
}

/// A JUnit file as Python's XML parser reads it: the suite's counts and the
/// failed cases with their messages.
fn junit_cases(path: &Path) -> serde_json::Value {
    let script = r#"
import json, sys, xml.etree.ElementTree as ET
suite = ET.parse(sys.argv[1]).getroot().find("testsuite")
cases = suite.findall("testcase")
failed = [[c.get("name"), c.find("failure").get("message")] for c in cases if c.find("failure") is not None]
assert int(suite.get("tests")) == len(cases)
print(json.dumps({"tests": len(cases), "failures": int(suite.get("failures")), "failed": failed}))
"#;
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 reads the JUnit file");
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A Pushgateway on a free port of 127.0.0.1, and that port.
fn pushgateway() -> (std::process::Child, u16) {
    let port = common::free_port();
    let gateway = Command::new("prometheus-pushgateway")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-pushgateway is needed: scripts/install-tools.sh --with-prometheus");
    (gateway, port)
}

/// After the run: the final values reach a real Pushgateway, and /metrics
/// stays up for the linger with `harness_run_finished 1`; Ctrl+C ends the
/// linger without changing the verdict's exit code.
#[tokio::test]
async fn final_metrics_reach_the_pushgateway_and_linger_on_the_endpoint() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut gateway, gateway_port) = pushgateway();
    let metrics_port = common::free_port();
    let file = write(
        dir.path(),
        "push.toml",
        &format!("{SHORT}[criteria]\nchecks = [\"lost == 0\"]\n"),
    );
    let report = dir.path().join("report.json");
    let mut child = harness()
        .args([
            "run",
            file.to_str().unwrap(),
            "--nats-url",
            &server.url(),
            "--run-id",
            "push1",
        ])
        .args([
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
            "--metrics-linger",
            "60s",
        ])
        .args([
            "--pushgateway",
            &format!("http://127.0.0.1:{gateway_port}"),
            "--report-json",
        ])
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !report.exists() {
        assert!(Instant::now() < deadline, "no report");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its linger"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let processed = json["counts"]["processed"].as_u64().unwrap();
    assert_eq!(processed, 40);

    let (_, lingering) =
        common::http_get(metrics_port, "/metrics").expect("/metrics lingers after the run");
    assert!(
        lingering.contains("harness_run_finished{scenario=\"push\",run_id=\"push1\"} 1"),
        "{lingering}"
    );
    assert!(lingering.contains(&format!(
        "harness_events_processed_total{{scenario=\"push\",run_id=\"push1\"}} {processed}"
    )));
    let (_, pushed) = common::http_get(gateway_port, "/metrics").expect("the Pushgateway answers");
    let line = pushed
        .lines()
        .find(|l| {
            l.starts_with("harness_events_processed_total{") && l.contains("run_id=\"push1\"")
        })
        .unwrap_or_else(|| panic!("nothing pushed:\n{pushed}"));
    assert!(
        line.contains("job=\"harness\"") && line.ends_with(&format!(" {processed}")),
        "{line}"
    );

    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "Ctrl+C did not end the linger");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let _ = gateway.kill();
    let _ = gateway.wait();
}

/// Each shard of a run pushes to a group of its own: one shard's final
/// values never replace another's.
#[tokio::test]
async fn shards_push_to_groups_of_their_own() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut gateway, gateway_port) = pushgateway();
    let file = write(dir.path(), "pushs.toml", SHORT);
    for shard in ["0/2", "1/2"] {
        let output = harness()
            .args(["run", file.to_str().unwrap(), "--nats-url", &server.url()])
            .args(["--run-id", "pushs", "--shard", shard, "-q"])
            .args(["--pushgateway", &format!("http://127.0.0.1:{gateway_port}")])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }
    let (_, pushed) = common::http_get(gateway_port, "/metrics").expect("the Pushgateway answers");
    for k in ["0", "1"] {
        let line = pushed
            .lines()
            .find(|l| {
                l.starts_with("harness_events_processed_total{")
                    && l.contains("run_id=\"pushs\"")
                    && l.contains(&format!("shard=\"{k}\""))
            })
            .unwrap_or_else(|| panic!("shard {k} not in the Pushgateway:\n{pushed}"));
        assert!(line.ends_with(" 20"), "{line}");
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
}
