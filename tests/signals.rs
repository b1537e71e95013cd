//! Signals at every stage of a run: during setup, the load and the drain,
//! SIGHUP like SIGTERM, and SIGKILL of the harness taking its embedded
//! server down with it.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::cli::{harness, signal, text, wait_exit, wait_for, write};
use common::NatsServer;

/// Slow handlers: the drain after a 1 s load would take about 20 s.
const SLOW_DRAIN: &str = r#"
[stream]
name = "SIGNALS"
subjects = ["signals.>"]
storage = "memory"
[load]
subject = "signals.events"
rate = 20
duration = "1s"
[consumer]
workers = 1
dead_letter_subject = "signals_dlq.events"
dead_letter_stream = "SIGNALS_DLQ"
[consumer.processing]
mean = "1s"
[drain]
timeout = "60s"
interrupt_timeout = "1s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_the_drain_gives_a_partial_report_and_130() {
    let server = NatsServer::start().await;
    let signals = harness::run::Signals::default();
    let interrupt = signals.interrupt.clone();
    tokio::spawn(async move {
        // The load lasts 1 s; the drain is well under way at 3 s.
        tokio::time::sleep(Duration::from_secs(3)).await;
        interrupt.cancel();
    });
    let started = Instant::now();
    let report = harness::run::run(
        common::run_config(SLOW_DRAIN, &server, "drain_int"),
        signals,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.interrupted,
        "an interrupt in the drain is an interrupt"
    );
    assert!(!report.passed);
    assert_eq!(report.exit_code(), 130);
    assert_eq!(report.counts.scheduled, 20, "the whole load was sent");
    assert!(report.counts.pending > 0, "{:?}", report.counts);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the drain was cut short: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_writes_the_partial_report_like_sigterm() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "slow.toml", SLOW_DRAIN);
    let report = dir.path().join("report.json");
    let child = common::cli::spawn_run(&file, &server.url(), &report);
    std::thread::sleep(Duration::from_secs(3));
    signal(&child, libc::SIGHUP);
    let output = wait_exit(child, Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    let json = common::cli::read_json(&report);
    assert_eq!(json["interrupted"], true);
    assert_eq!(json["counts"]["scheduled"], 20);
}

/// A server that accepts connections and never says a word.
fn silent_server() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("nats://{}", listener.local_addr().unwrap());
    (listener, url)
}

#[test]
fn ctrl_c_while_connecting_to_a_silent_server_ends_at_once() {
    let (_listener, url) = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.toml",
        "[target]\nconnect_timeout = \"1h\"\n[load]\nrate = 1\nduration = \"1s\"\n",
    );
    let child = harness()
        .args(["run", file.to_str().unwrap(), "--nats-url", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let sent = Instant::now();
    signal(&child, libc::SIGINT);
    let output = wait_exit(child, Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "{:?}",
        sent.elapsed()
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("interrupted while setting up"),
        "{}",
        text(&output)
    );
}

#[test]
fn ctrl_c_while_validate_reads_a_fifo_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("scenario.toml");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a plain mkfifo on a path in our own temporary folder.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let child = harness()
        .args(["validate", fifo.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGINT);
    let output = wait_exit(child, Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
}

/// The children of `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|stat| {
                    // Fields after the command name, which is in parentheses.
                    let after = stat.rsplit_once(')')?.1;
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// Running, not a zombie waiting to be reaped.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false)
}

#[test]
fn sigkill_of_the_harness_takes_its_embedded_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "long.toml",
        "[load]\nrate = 10\nduration = \"5m\"\n",
    );
    let mut child = harness()
        .args(["run", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let harness_pid = child.id();
    let mut servers = Vec::new();
    wait_for("the embedded nats-server", Duration::from_secs(30), || {
        servers = children(harness_pid);
        !servers.is_empty()
    });
    let server = servers[0];
    assert!(running(server));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for(
        "the orphaned nats-server to die",
        Duration::from_secs(5),
        || !running(server),
    );
}

/// PubAcks held back by a blackhole: every publish after it began waits.
const UNANSWERED: &str = r#"
[stream]
name = "UNANSWERED"
subjects = ["unanswered.>"]
storage = "memory"
[load]
subject = "unanswered.events"
rate = 200
duration = "6s"
[publish]
timeout = "10s"
max_retries = 2
[consumer]
durable = "unanswered"
ack_wait = "30s"
processing_timeout = "5s"
dead_letter_subject = "unanswered_dlq.events"
dead_letter_stream = "UNANSWERED_DLQ"
[drain]
timeout = "60s"
interrupt_timeout = "1s"
[[faults]]
at = "1s"
kind = "blackhole"
direction = "to_client"
duration = "20s"
"#;

/// Ctrl+C while hundreds of publishes wait for PubAcks that cannot come:
/// the run stops within its short drain, and each event ends exactly once
/// (acked before the blackhole, indeterminate if sent into it, not sent
/// if the schedule never reached it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_with_publishes_unanswered_leaves_them_indeterminate_exactly_once() {
    let server = NatsServer::start().await;
    let signals = harness::run::Signals::default();
    let interrupt = signals.interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        interrupt.cancel();
    });
    let started = Instant::now();
    let report = harness::run::run(
        common::run_config(UNANSWERED, &server, "unanswered"),
        signals,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let c = &report.counts;
    assert!(report.interrupted);
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert!(c.published >= 150, "acked before the blackhole: {c:#?}");
    assert!(c.indeterminate >= 300, "sent into the blackhole: {c:#?}");
    assert!(
        c.scheduled < 1200,
        "the schedule stopped at the interrupt: {c:#?}"
    );
    eprintln!(
        "scheduled {}, published {}, indeterminate {}, not_sent {}, retries {}",
        c.scheduled, c.published, c.indeterminate, c.not_sent, c.retries
    );
    assert_eq!(
        c.scheduled,
        c.published + c.publish_failed + c.indeterminate + c.not_sent,
        "{c:#?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the stop did not wait out the 10 s publish timeouts: {:?}",
        started.elapsed()
    );
}
