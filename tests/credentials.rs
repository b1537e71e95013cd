//! Logging in to a server that requires it: credentials in the URL or in
//! the scenario, and no secret in any output the run leaves behind,
//! whatever the log level and format. Each test starts its own nats-server
//! with an authorization block and runs the real binary against it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::ConfiguredServer;

const PASSWORD: &str = "s3cret-Pa55";
const TOKEN: &str = "s3cr3t-T0ken";

fn harness() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
    command
        .env_remove("HARNESS_NATS_URL")
        .env_remove("HARNESS_LOG")
        .env("CI", "true")
        .env("HARNESS_METRICS_ADDR", "off");
    command
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

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
