//! Logging in to a server that requires it: credentials in the URL or in
//! the scenario, and no secret in any output the run leaves behind,
//! whatever the log level and format. Each test starts its own nats-server
//! with an authorization block and runs the real binary against it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::{harness, text};
use common::ConfiguredServer;

const PASSWORD: &str = "s3cret-Pa55";
const TOKEN: &str = "s3cr3t-T0ken";

fn password_server() -> ConfiguredServer {
    ConfiguredServer::start(&format!(
        "authorization {{ user: alice, password: \"{PASSWORD}\" }}"
    ))
}

fn token_server() -> ConfiguredServer {
    ConfiguredServer::start(&format!("authorization {{ token: \"{TOKEN}\" }}"))
}

/// 20 events, a short network fault (so the proxy, which carries the URL's
/// userinfo, is in the path), and a criterion that needs every event.
fn scenario(dir: &Path, target: &str) -> PathBuf {
    let path = dir.join("s.toml");
    let text = format!(
        "[target]\n{target}\n[stream]\nrecreate = true\n[load]\nrate = 20\nduration = \"1s\"\n\
         [drain]\ntimeout = \"10s\"\n[criteria]\nchecks = [\"processed == 20\"]\n\
         [[faults]]\nat = \"200ms\"\nkind = \"latency\"\ndelay = \"5ms\"\nduration = \"300ms\"\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run(file: &Path, url: &str, extra: &[&str]) -> Output {
    harness()
        .args(["run", file.to_str().unwrap(), "--nats-url", url])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn user_and_password_in_the_url_log_in() {
    let server = password_server();
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "");
    let url = format!("nats://alice:{PASSWORD}@127.0.0.1:{}", server.port());
    let output = run(&file, &url, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let wrong = format!("nats://alice:wrong@127.0.0.1:{}", server.port());
    let output = run(&file, &wrong, &[]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("authorization violation"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_token_in_the_url_logs_in() {
    let server = token_server();
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "");
    let url = format!("nats://{TOKEN}@127.0.0.1:{}", server.port());
    let output = run(&file, &url, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn credentials_in_the_url_and_the_scenario_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "user = \"bob\"\npassword = \"other\"");
    let url = format!("nats://alice:{PASSWORD}@127.0.0.1:1");
    let output = run(&file, &url, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--nats-url") && stderr.contains("target.user/target.password"),
        "{}",
        text(&output)
    );
    assert!(!stderr.contains(PASSWORD), "{}", text(&output));
}

/// Every file and stream the run wrote, as one text.
fn everything(output: &Output, dir: &Path) -> String {
    let mut all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for name in ["report.json", "report.xml", "metrics.prom"] {
        let written = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{name} was not written: {e}\n{}", text(output)));
        all.push_str(&written);
    }
    all
}

/// A URL without a scheme is read as nats://; its login is used and hidden
/// all the same, in a failing connection's error too.
#[test]
fn a_login_in_a_url_without_a_scheme_logs_in_and_stays_hidden() {
    let server = password_server();
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "");
    let url = format!("alice:{PASSWORD}@127.0.0.1:{}", server.port());
    let reports = dir.path().to_str().unwrap();
    let output = run(
        &file,
        &url,
        &[
            "--log-level",
            "debug",
            "--report-json",
            &format!("{reports}/report.json"),
            "--report-junit",
            &format!("{reports}/report.xml"),
            "--metrics-out",
            &format!("{reports}/metrics.prom"),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let all = everything(&output, dir.path());
    assert!(!all.contains(PASSWORD), "the password leaked:\n{all}");
    assert!(all.contains("***@127.0.0.1"), "{all}");
    let unreachable = run(&file, &format!("alice:{PASSWORD}@127.0.0.1:1"), &[]);
    assert_eq!(unreachable.status.code(), Some(3), "{}", text(&unreachable));
    assert!(
        !text(&unreachable).contains(PASSWORD),
        "{}",
        text(&unreachable)
    );
}

/// The secret, given in the URL (debug) or in the scenario (trace), never
/// shows in stderr, stdout, the JSON and JUnit reports or the metrics
/// file, in text or JSON logs; the report's copy of the scenario masks it.
#[test]
fn no_secret_in_any_output_at_any_log_level() {
    let servers = [(password_server(), PASSWORD), (token_server(), TOKEN)];
    for (server, secret) in &servers {
        let port = server.port();
        for level in ["debug", "trace"] {
            for format in ["text", "json"] {
                let dir = tempfile::tempdir().unwrap();
                let in_url = level == "debug";
                let (target, url) = match (*secret == PASSWORD, in_url) {
                    (true, true) => (
                        String::new(),
                        format!("nats://alice:{secret}@127.0.0.1:{port}"),
                    ),
                    (false, true) => (String::new(), format!("nats://{secret}@127.0.0.1:{port}")),
                    (true, false) => (
                        format!("user = \"alice\"\npassword = \"{secret}\""),
                        format!("nats://127.0.0.1:{port}"),
                    ),
                    (false, false) => (
                        format!("token = \"{secret}\""),
                        format!("nats://127.0.0.1:{port}"),
                    ),
                };
                let file = scenario(dir.path(), &target);
                let d = dir.path();
                let output = run(
                    &file,
                    &url,
                    &[
                        "--log-level",
                        level,
                        "--log-format",
                        format,
                        "--report-json",
                        d.join("report.json").to_str().unwrap(),
                        "--report-junit",
                        d.join("report.xml").to_str().unwrap(),
                        "--metrics-out",
                        d.join("metrics.prom").to_str().unwrap(),
                    ],
                );
                let case = format!("{level} {format}, secret in the URL: {in_url}");
                assert_eq!(output.status.code(), Some(0), "{case}\n{}", text(&output));
                assert!(
                    output.stderr.len() > 1000,
                    "{case}: the client's own logs should be there\n{}",
                    text(&output)
                );
                let all = everything(&output, d);
                let at = all.find(secret);
                assert!(
                    at.is_none(),
                    "{case}: the secret shows: …{}…",
                    &all[at.unwrap().saturating_sub(200)..at.unwrap() + secret.len()]
                );
                let report: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap())
                        .unwrap();
                let target = &report["config"]["target"];
                let key = if *secret == PASSWORD {
                    "password"
                } else {
                    "token"
                };
                if !in_url {
                    assert_eq!(target[key], "***", "{case}: {target}");
                }
                let url = target["url"].as_str().unwrap();
                assert_eq!(url.starts_with("nats://***@"), in_url, "{case}: {target}");
            }
        }
    }
}
