//! Is the harness ever the bottleneck? Against nats-server on 127.0.0.1
//! (the same binary and configuration, started afresh for each step and
//! each bare pipeline), in one run, for 128 B and 1 KiB payloads on memory
//! and file storage:
//!
//! 1. the harness's highest holding rate, run as a user runs it (the
//!    release binary, `harness run --nats-url`, its own process), where a
//!    rate holds when the run exits 0 with nothing lost, achieves at least
//!    99% of the target, keeps end_to_end p99 under 100 ms and
//!    schedule_lag p99 under 5 ms: doubling from a start rate until a step
//!    misses, then bisecting;
//! 2. the strongest bare async-nats pipeline on the same server: one
//!    publisher keeping a window of PubAck futures outstanding, a
//!    `Nats-Msg-Id` on every message, and one pull consumer on
//!    `stream().max_messages_per_batch(1000).messages()` acking each; the
//!    best of windows 256, 1,024 and 4,096, its rate N over the time from
//!    the first publish to the last message consumed;
//! 3. their ratio;
//!
//! and, for 128 B on memory storage, the harness process's CPU (its own
//! rusage; the server is another process) at 10 events/s over 60 s, per
//! event at 2,000/s against per event at the ceiling; the schedule's
//! honesty (achieved against target, schedule_lag p99 at half the
//! ceiling); and its peak RSS after 100 k and after 10 M events at 80% of
//! the ceiling.
//!
//! `cargo bench --bench ceiling`. Knobs (environment): CEILING_STEP_SECS
//! (10), CEILING_START_RATE (4000), CEILING_BARE_EVENTS (500000),
//! CEILING_MEMORY_EVENTS (10000000), CEILING_IDLE_SECS (60),
//! CEILING_CONFIGS (`128:memory,1024:memory,128:file,1024:file`), and
//! CEILING_QUICK=1 for a short sanity pass. Results are printed and written
//! to target/ceiling.json.
//!
//! `CEILING_PACED=1 cargo bench --bench ceiling` measures instead what the
//! open model itself costs: at each rate of CEILING_PACED_RATES
//! (`16000,32000,48000,64000,80000,96000`), a bare pipeline that publishes
//! what is due at each wake-up (tokio's timer, every millisecond) against
//! the harness at the same rate, each on a fresh server, with the CPU per
//! event of the client and of the server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use async_nats::jetstream::{self, consumer::pull, stream};
use async_nats::HeaderMap;
use futures::StreamExt;
use harness::report::Report;
use harness::target::embedded::EmbeddedCluster;
use serde_json::json;

fn knob(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quick() -> bool {
    std::env::var("CEILING_QUICK").is_ok_and(|v| v == "1")
}

/// A payload size and a storage.
#[derive(Debug, Clone, Copy)]
struct Shape {
    payload: usize,
    file: bool,
}

impl Shape {
    fn name(self) -> String {
        format!(
            "{} B {}",
            self.payload,
            if self.file { "file" } else { "memory" }
        )
    }
}

fn shapes() -> Vec<Shape> {
    let text = std::env::var("CEILING_CONFIGS")
        .unwrap_or_else(|_| "128:memory,1024:memory,128:file,1024:file".into());
    text.split(',')
        .filter_map(|s| {
            let (size, storage) = s.trim().split_once(':')?;
            Some(Shape {
                payload: size.parse().ok()?,
                file: storage == "file",
            })
        })
        .collect()
}

/// One harness run as its own process: the report, the exit code, and
/// what the process used.
struct Run {
    report: Report,
    exit: i32,
    cpu_secs: f64,
    max_rss_kib: u64,
    /// The nats-server's CPU over the run.
    server_cpu_secs: f64,
}

impl Run {
    fn held(&self) -> bool {
        let r = &self.report;
        self.exit == 0
            && r.counts.lost == 0
            && r.rates.achieved >= 0.99 * r.rates.target
            && r.latency["end_to_end"].p99 < 100.0
            && r.latency["schedule_lag"].p99 < 5.0
    }

    fn cpu_per_event_us(&self) -> f64 {
        self.cpu_secs * 1e6 / self.report.counts.scheduled.max(1) as f64
    }
}

struct Bench {
    binary: PathBuf,
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    steps: usize,
}

impl Bench {
    /// Runs the harness on a fresh stream: `events` at `rate`.
    /// A fresh nats-server for each step and each bare pipeline: one
    /// server kept across many steps slows down as they go (seen: 21 µs of
    /// server CPU per event on a fresh server, 27 µs after twenty steps,
    /// at the same rate), which would favour whatever runs first.
    fn server(&self) -> EmbeddedCluster {
        self.runtime
            .block_on(EmbeddedCluster::start(1))
            .expect("nats-server (run scripts/install-tools.sh)")
    }

    /// The strongest bare pipeline's rate at `window`, on a server of its own.
    fn bare(&self, shape: Shape, window: usize, events: u64, n: usize) -> f64 {
        let server = self.server();
        let rate = self
            .runtime
            .block_on(bare(&server.url(), shape, window, events, n));
        self.runtime.block_on(server.shutdown());
        rate
    }

    fn run(&mut self, shape: Shape, rate: f64, secs: f64, workqueue: bool) -> Run {
        let server = self.server();
        let url = server.url();
        self.steps += 1;
        let n = self.steps;
        let scenario = format!(
            r#"name = "ceiling-{n}"
[stream]
name = "CEILING_{n}"
subjects = ["ceiling.{n}.>"]
storage = "{storage}"
retention = "{retention}"
[load]
subject = "ceiling.{n}.events"
rate = {rate}
duration = "{millis}ms"
max_in_flight = 4096
[load.payload]
size = {size}
kind = "random"
[consumer]
durable = "ceiling{n}"
workers = 4
batch = 256
max_ack_pending = -1
dead_letter_subject = "ceiling_dlq.{n}"
dead_letter_stream = "CEILING_DLQ_{n}"
[consumer.processing]
distribution = "constant"
mean = "0s"
[drain]
timeout = "60s"
"#,
            storage = if shape.file { "file" } else { "memory" },
            retention = if workqueue { "workqueue" } else { "limits" },
            millis = (secs * 1000.0).round() as u64,
            size = shape.payload,
        );
        let file = self.dir.path().join(format!("s{n}.toml"));
        let json = self.dir.path().join(format!("r{n}.json"));
        std::fs::write(&file, scenario).expect("scenario");
        // Reaped by `wait`, with wait4, for the child's own rusage.
        #[allow(clippy::zombie_processes)]
        let child = Command::new(&self.binary)
            .args([
                "run",
                "--quiet",
                "--metrics-addr",
                "off",
                "--nats-url",
                &url,
            ])
            .arg("--report-json")
            .arg(&json)
            .arg(&file)
            .env("HARNESS_LOG", "error")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("harness");
        let server_before = server.usage().0;
        let (exit, usage) = wait(child.id());
        let server_cpu_secs = server.usage().0 - server_before;
        self.runtime.block_on(server.shutdown());
        let report =
            Report::read_json(&json).unwrap_or_else(|e| panic!("step {n}: exit {exit}: {e}"));
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Run {
            report,
            exit,
            cpu_secs: tv(usage.ru_utime) + tv(usage.ru_stime),
            max_rss_kib: usage.ru_maxrss as u64,
            server_cpu_secs,
        }
    }
}

/// Reaps the child, with its exit code and resource usage.
fn wait(pid: u32) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; the pid is our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid as libc::pid_t, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage)
}

fn print_header() {
    println!(
        "  {:>8} {:>9} {:>8} {:>8} {:>9} {:>9} {:>7} {:>6} {:>9}  verdict",
        "rate/s",
        "achieved",
        "lag p50",
        "lag p99",
        "pub p99",
        "e2e p99",
        "cpu %",
        "lost",
        "µs/event"
    );
}

fn print_step(rate: f64, run: &Run) {
    let r = &run.report;
    let lag = &r.latency["schedule_lag"];
    println!(
        "  {rate:>8.0} {:>9.1} {:>8.3} {:>8.3} {:>9.3} {:>9.3} {:>7.1} {:>6} {:>9.2}  {}",
        r.rates.achieved,
        lag.p50,
        lag.p99,
        r.latency["publish"].p99,
        r.latency["end_to_end"].p99,
        100.0 * run.cpu_secs / r.duration_secs.max(f64::EPSILON),
        r.counts.lost,
        run.cpu_per_event_us(),
        if run.held() { "holds" } else { "misses" },
    );
    assert!(
        r.counts.invariants_hold(),
        "accounting invariants broke at {rate}/s: {:?}",
        r.counts.invariants
    );
}

/// Doubles the rate until a step misses, then bisects: the highest rate
/// that held, and its run.
fn ceiling(bench: &mut Bench, shape: Shape, step_secs: f64) -> (f64, Option<Run>) {
    print_header();
    let mut rate = knob("CEILING_START_RATE", 4000.0);
    let (mut pass, mut fail): (f64, f64) = (0.0, f64::INFINITY);
    let mut best = None;
    while rate <= 1_000_000.0 {
        let run = bench.run(shape, rate, step_secs, false);
        print_step(rate, &run);
        if run.held() {
            pass = rate;
            best = Some(run);
            rate *= 2.0;
        } else {
            fail = rate;
            break;
        }
    }
    for _ in 0..if quick() { 1 } else { 3 } {
        if !fail.is_finite() {
            break;
        }
        let rate = ((pass + fail) / 2.0).round();
        let run = bench.run(shape, rate, step_secs, false);
        print_step(rate, &run);
        if run.held() {
            pass = rate;
            best = Some(run);
        } else {
            fail = rate;
        }
    }
    (pass, best)
}

/// PubAcks awaited, each settled as it comes.
type Acks = futures::stream::FuturesUnordered<
    <async_nats::jetstream::context::PublishAckFuture as std::future::IntoFuture>::IntoFuture,
>;

/// Publishes one message with its `Nats-Msg-Id`, first settling a PubAck
/// if `window` are outstanding.
async fn publish(
    js: &jetstream::Context,
    acks: &mut Acks,
    window: usize,
    subject: &str,
    id: &str,
    payload: &bytes::Bytes,
) {
    if acks.len() >= window {
        acks.next().await.expect("a future").expect("pub ack");
    }
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", id);
    let ack = js
        .publish_with_headers(subject.to_string(), headers, payload.clone())
        .await
        .expect("publish");
    acks.push(std::future::IntoFuture::into_future(ack));
}

/// What both bare pipelines share: a stream `<kind>.<n>.>` of their own,
/// a reader that pulls and acks `events` messages (1,000 per batch) and
/// says when the last came, and the payload.
async fn bare_pipeline(
    url: &str,
    shape: Shape,
    kind: &str,
    events: u64,
    n: usize,
) -> (
    jetstream::Context,
    String,
    tokio::task::JoinHandle<Instant>,
    bytes::Bytes,
) {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client.clone());
    let name = format!("{}_{n}", kind.to_uppercase());
    let stream = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{kind}.{n}.>")],
            storage: if shape.file {
                stream::StorageType::File
            } else {
                stream::StorageType::Memory
            },
            ..Default::default()
        })
        .await
        .expect("stream");
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(format!("{kind}{n}")),
            max_ack_pending: -1,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let reader = tokio::spawn(async move {
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(1000)
            .messages()
            .await
            .expect("pull");
        let mut consumed = 0u64;
        while let Some(Ok(message)) = messages.next().await {
            let _ = message.ack().await;
            consumed += 1;
            if consumed == events {
                break;
            }
        }
        Instant::now()
    });
    let payload: bytes::Bytes = (0..shape.payload)
        .map(|i| (i * 7 + 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    (js, name, reader, payload)
}

/// The bare pipeline with `window` PubAcks outstanding: N over the time
/// from the first publish to the last message consumed.
async fn bare(url: &str, shape: Shape, window: usize, events: u64, n: usize) -> f64 {
    let (js, name, reader, payload) = bare_pipeline(url, shape, "bare", events, n).await;
    let subject = format!("bare.{n}.events");
    let started = Instant::now();
    let mut acks = Acks::new();
    for i in 0..events {
        let id = format!("b{n}-{i}");
        publish(&js, &mut acks, window, &subject, &id, &payload).await;
    }
    while let Some(ack) = acks.next().await {
        ack.expect("pub ack");
    }
    let last = reader.await.expect("reader");
    let _ = js.delete_stream(&name).await;
    events as f64 / last.duration_since(started).as_secs_f64()
}

/// The bare pipeline paced by the open model: every millisecond it sends
/// what has fallen due, never waiting for PubAcks (up to 4,096
/// outstanding), and one pull consumer acks each message. Whether it kept
/// up (the last message consumed within 100 ms of the schedule's end), and
/// the events per second consumed.
async fn bare_paced(url: &str, shape: Shape, rate: f64, secs: f64, n: usize) -> (bool, f64) {
    let events = (rate * secs) as u64;
    let (js, name, reader, payload) = bare_pipeline(url, shape, "paced", events, n).await;
    let subject = format!("paced.{n}.events");
    let started = Instant::now();
    let mut acks = Acks::new();
    let mut sent = 0u64;
    while sent < events {
        let due = ((started.elapsed().as_secs_f64() * rate) as u64 + 1).min(events);
        while sent < due {
            let id = format!("p{n}-{sent}");
            publish(&js, &mut acks, 4096, &subject, &id, &payload).await;
            sent += 1;
        }
        let wake = tokio::time::sleep(std::time::Duration::from_millis(1));
        tokio::pin!(wake);
        loop {
            tokio::select! {
                _ = &mut wake => break,
                Some(ack) = acks.next() => { ack.expect("pub ack"); }
            }
        }
    }
    while let Some(ack) = acks.next().await {
        ack.expect("pub ack");
    }
    let last = reader.await.expect("reader");
    let _ = js.delete_stream(&name).await;
    let took = last.duration_since(started).as_secs_f64();
    (took <= secs + 0.1, events as f64 / took)
}

/// This process's own CPU seconds so far (the servers are other processes).
fn own_cpu_secs() -> f64 {
    // SAFETY: rusage is plain data that getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The paced bare pipeline against the harness, rate by rate.
fn paced(bench: &mut Bench, shape: Shape, secs: f64) {
    let rates: Vec<f64> = std::env::var("CEILING_PACED_RATES")
        .unwrap_or_else(|_| "16000,32000,48000,64000,80000,96000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    println!(
        "\n== the open model's own cost ({}, {secs:.0} s per run) ==",
        shape.name()
    );
    println!(
        "  {:>8}  {:>24}  {:>24}  {:>24}",
        "rate/s",
        "paced bare: kept up, ev/s",
        "µs/event client, server",
        "harness: verdict, client, server"
    );
    let mut rows = Vec::new();
    for (i, rate) in rates.into_iter().enumerate() {
        let server = bench.server();
        let (server_before, own_before) = (server.usage().0, own_cpu_secs());
        let (kept_up, achieved) =
            bench
                .runtime
                .block_on(bare_paced(&server.url(), shape, rate, secs, i));
        let client = own_cpu_secs() - own_before;
        let server_cpu = server.usage().0 - server_before;
        bench.runtime.block_on(server.shutdown());
        let events = rate * secs;
        let run = bench.run(shape, rate, secs, false);
        let harness_events = run.report.counts.scheduled.max(1) as f64;
        println!(
            "  {rate:>8.0}  {:>15} {achieved:>8.0}  {:>11.2} {:>11.2}  {:>8} {:>7.2} {:>7.2}",
            if kept_up { "yes" } else { "no" },
            client * 1e6 / events,
            server_cpu * 1e6 / events,
            if run.held() { "holds" } else { "misses" },
            run.cpu_per_event_us(),
            run.server_cpu_secs * 1e6 / harness_events,
        );
        rows.push(json!({
            "rate": rate,
            "bare_kept_up": kept_up,
            "bare_events_per_sec": achieved,
            "bare_client_us_per_event": client * 1e6 / events,
            "bare_server_us_per_event": server_cpu * 1e6 / events,
            "harness_holds": run.held(),
            "harness_us_per_event": run.cpu_per_event_us(),
            "harness_server_us_per_event": run.server_cpu_secs * 1e6 / harness_events,
        }));
    }
    let out = Path::new("target/ceiling-paced.json");
    let _ = std::fs::write(out, serde_json::to_string_pretty(&rows).unwrap_or_default());
    println!("\nwritten to {}", out.display());
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let step_secs = knob("CEILING_STEP_SECS", if quick() { 3.0 } else { 10.0 });
    let bare_events = knob(
        "CEILING_BARE_EVENTS",
        if quick() { 50_000.0 } else { 500_000.0 },
    ) as u64;
    let memory_events = knob(
        "CEILING_MEMORY_EVENTS",
        if quick() { 200_000.0 } else { 10_000_000.0 },
    );
    let idle_secs = knob("CEILING_IDLE_SECS", if quick() { 10.0 } else { 60.0 });
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_harness"));
    let mut bench = Bench {
        binary,
        runtime,
        dir: tempfile::tempdir().expect("temp dir"),
        steps: 0,
    };
    println!(
        "harness {} against a fresh nats-server on 127.0.0.1 for each step",
        bench.binary.display()
    );
    if std::env::var("CEILING_PACED").is_ok_and(|v| v == "1") {
        paced(&mut bench, shapes()[0], step_secs);
        return;
    }

    let mut results = Vec::new();
    let mut first: Option<(f64, Option<Run>)> = None;
    for (i, shape) in shapes().into_iter().enumerate() {
        println!("\n== {} ==", shape.name());
        let mut best_bare: f64 = 0.0;
        let mut windows = Vec::new();
        for window in [256, 1024, 4096] {
            let rate = bench.bare(shape, window, bare_events, i * 10 + window);
            println!("  bare pipeline, window {window:>4}: {rate:>9.0} events/s");
            windows.push(json!({"window": window, "events_per_sec": rate}));
            best_bare = best_bare.max(rate);
        }
        println!("  harness:");
        let (held, run) = ceiling(&mut bench, shape, step_secs);
        let ratio = held / best_bare;
        println!("  => harness holds {held:.0}/s; bare best {best_bare:.0}/s; ratio {ratio:.2}");
        results.push(json!({
            "payload_bytes": shape.payload,
            "storage": if shape.file { "file" } else { "memory" },
            "harness_events_per_sec": held,
            "harness_cpu_us_per_event": run.as_ref().map(Run::cpu_per_event_us),
            "bare_events_per_sec": best_bare,
            "bare_windows": windows,
            "ratio": ratio,
        }));
        if i == 0 {
            first = Some((held, run));
        }
    }

    // CPU, schedule and memory, on the first shape (128 B memory by default).
    let Some((held, at_ceiling)) = first else {
        return;
    };
    let shape = shapes()[0];
    println!("\n== CPU, schedule and memory ({}) ==", shape.name());
    print_header();
    let idle = bench.run(shape, 10.0, idle_secs, false);
    print_step(10.0, &idle);
    let moderate = bench.run(shape, 2000.0, step_secs, false);
    print_step(2000.0, &moderate);
    let half = bench.run(shape, (held / 2.0).round().max(1.0), step_secs, false);
    print_step((held / 2.0).round(), &half);
    let idle_core = 100.0 * idle.cpu_secs / idle.report.duration_secs;
    let per_event_ceiling = at_ceiling.as_ref().map_or(f64::NAN, Run::cpu_per_event_us);
    let cpu_ratio = moderate.cpu_per_event_us() / per_event_ceiling;
    let honest = |r: &Run| (r.report.rates.achieved / r.report.rates.target - 1.0).abs() * 100.0;
    println!("  CPU at 10/s over {idle_secs:.0} s: {idle_core:.2}% of a core");
    println!(
        "  CPU per event: {:.2} µs at 2000/s, {per_event_ceiling:.2} µs at the ceiling: ratio {cpu_ratio:.2}",
        moderate.cpu_per_event_us()
    );
    println!(
        "  achieved vs target: {:.3}% off at 10/s, {:.3}% at 2000/s, {:.3}% at half the ceiling; schedule_lag p99 at half the ceiling {:.3} ms",
        honest(&idle),
        honest(&moderate),
        honest(&half),
        half.report.latency["schedule_lag"].p99
    );

    let memory_rate = (held * 0.8).round().max(1000.0);
    let small_events = 100_000.0f64.min(memory_events);
    let small = bench.run(shape, memory_rate, small_events / memory_rate, true);
    print_step(memory_rate, &small);
    let large = bench.run(shape, memory_rate, memory_events / memory_rate, true);
    print_step(memory_rate, &large);
    let (small_n, large_n) = (small.report.counts.scheduled, large.report.counts.scheduled);
    let per_event = (large.max_rss_kib as f64 - small.max_rss_kib as f64) * 1024.0
        / (large_n - small_n).max(1) as f64;
    println!(
        "  peak RSS: {:.1} MiB after {small_n} events, {:.1} MiB after {large_n}: {per_event:.3} bytes per event more",
        small.max_rss_kib as f64 / 1024.0,
        large.max_rss_kib as f64 / 1024.0
    );

    let summary = json!({
        "shapes": results,
        "cpu_core_percent_at_10_per_sec": idle_core,
        "cpu_us_per_event_at_2000": moderate.cpu_per_event_us(),
        "cpu_us_per_event_at_ceiling": per_event_ceiling,
        "cpu_per_event_ratio": cpu_ratio,
        "achieved_off_percent": {"10": honest(&idle), "2000": honest(&moderate), "half_ceiling": honest(&half)},
        "schedule_lag_p99_ms_at_half_ceiling": half.report.latency["schedule_lag"].p99,
        "memory": {
            "rate": memory_rate,
            "small_events": small_n, "small_peak_rss_kib": small.max_rss_kib,
            "large_events": large_n, "large_peak_rss_kib": large.max_rss_kib,
            "bytes_per_event": per_event,
            "large_lost": large.report.counts.lost,
        },
    });
    let out = Path::new("target/ceiling.json");
    let _ = std::fs::write(
        out,
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    );
    println!("\nwritten to {}", out.display());
}
