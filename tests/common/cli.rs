//! The binary as a user or a CI job runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `harness`, with no URL, log filter or colour choice from the
/// environment, CI output and no metrics.
pub fn harness() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
    command
        .env_remove("HARNESS_NATS_URL")
        .env_remove("HARNESS_LOG")
        .env_remove("NO_COLOR")
        .env("CI", "true")
        .env("HARNESS_METRICS_ADDR", "off");
    command
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Status, stdout and stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

/// Waits for `child` to exit, panicking after `limit`.
pub fn wait_exit(child: std::process::Child, limit: Duration) -> Output {
    let mut child = child;
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("no exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Polls `check` every 50 ms until it holds, panicking after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_for`] with an async check, for tests on a runtime.
pub async fn wait_for_async<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `harness run FILE --nats-url URL --report-json REPORT`, started with
/// stdout and stderr piped.
pub fn spawn_run(file: &Path, url: &str, report: &Path) -> std::process::Child {
    harness()
        .args(["run", file.to_str().unwrap(), "--nats-url", url])
        .arg("--report-json")
        .arg(report)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A JSON report, read back.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
