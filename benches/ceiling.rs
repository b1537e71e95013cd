//! The schedule ceiling: the highest rate at which the harness holds its
//! schedule (schedule_lag p99 under 1 ms and achieved rate at least 99% of
//! target) against an embedded memory-storage stream; in the same run, the
//! ceiling of a bare async-nats pipeline (publish with acks plus a pull
//! consumer acking, no accounting) against the same server; their ratio;
//! and the peak RSS after a run of 1M events.
//!
//! `cargo bench --bench ceiling`. Knobs (environment): CEILING_STEP_SECS
//! (8), CEILING_START_RATE (1000), CEILING_MAX_RATE (200000),
//! CEILING_RSS_EVENTS (1000000), CEILING_QUICK=1 (short steps, 50k events).
//! Results are printed and written to target/ceiling.json.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use harness::progress;
use harness::report::Report;
use harness::run::{self, RunConfig, Signals};
use harness::scenario::{Distribution, Scenario, Storage};
use harness::target::embedded::EmbeddedCluster;

fn knob(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quick() -> bool {
    std::env::var("CEILING_QUICK").is_ok_and(|v| v == "1")
}

/// A memory-storage scenario whose consumer does no work, so that the
/// publisher's pacing is what is measured.
fn scenario(url: &str, step: usize, rate: f64, secs: f64) -> Scenario {
    let mut s = Scenario::default();
    s.target.url = Some(url.to_string());
    s.stream.name = format!("CEILING_{step}");
    s.stream.subjects = vec![format!("ceiling.{step}.>")];
    s.stream.storage = Storage::Memory;
    s.load.subject = format!("ceiling.{step}.events");
    s.load.rate = Some(rate);
    s.load.duration = Some(Duration::from_secs_f64(secs));
    s.load.max_in_flight = 16_384;
    s.load.payload.size = harness::scenario::ByteSize(128);
    s.consumer.durable = format!("ceiling{step}");
    s.consumer.workers = 4;
    s.consumer.batch = 256;
    s.consumer.max_ack_pending = 50_000;
    s.consumer.processing.distribution = Distribution::Constant;
    s.consumer.processing.mean = Duration::ZERO;
    s.consumer.dead_letter_subject = format!("ceiling_dlq.{step}");
    s.consumer.dead_letter_stream = format!("CEILING_DLQ_{step}");
    s.drain.timeout = Duration::from_secs(30);
    s
}

async fn run_harness(url: &str, step: usize, rate: f64, secs: f64) -> Report {
    let config = RunConfig {
        scenario: scenario(url, step, rate, secs),
        name: format!("ceiling-{step}"),
        file: "bench".into(),
        run_id: format!("c{step}"),
        seed: step as u64,
        progress: progress::Mode::Quiet,
        metrics: Default::default(),
    };
    run::run(config, Signals::default())
        .await
        .expect("bench run")
}

fn holds(report: &Report) -> bool {
    report.latency["schedule_lag"].p99 < 1.0 && report.rates.achieved >= 0.99 * report.rates.target
}

fn print_step(rate: f64, report: &Report) {
    let lag = &report.latency["schedule_lag"];
    let c = &report.counts;
    println!(
        "{rate:>9.0} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>10.3} {:>10.3} {:>9} {:>6} {:>6} {}",
        report.rates.achieved,
        lag.p50,
        lag.p99,
        lag.max,
        report.latency["publish"].p99,
        report.latency["end_to_end"].p99,
        c.processed,
        c.lost,
        c.held_back,
        if holds(report) { "holds" } else { "misses" },
    );
    assert!(
        c.invariants_hold(),
        "accounting invariants broke at {rate}/s: {:?}",
        c.invariants
    );
}

/// Doubles the rate until the schedule slips, then bisects.
async fn harness_ceiling(url: &str, step_secs: f64) -> f64 {
    println!("\nharness: rate/s  achieved  lag p50   lag p99   lag max  publish p99  e2e p99  processed   lost  held");
    let mut step = 0;
    let mut rate = knob("CEILING_START_RATE", 1000.0);
    let max_rate = knob("CEILING_MAX_RATE", 200_000.0);
    let (mut pass, mut fail) = (0.0, f64::INFINITY);
    while rate <= max_rate {
        step += 1;
        let report = run_harness(url, step, rate, step_secs).await;
        print_step(rate, &report);
        if holds(&report) {
            pass = rate;
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
        rate = ((pass + fail) / 2.0).round();
        step += 1;
        let report = run_harness(url, step, rate, step_secs).await;
        print_step(rate, &report);
        if holds(&report) {
            pass = rate;
        } else {
            fail = rate;
        }
    }
    pass
}

/// A bare pipeline: publish with acks as fast as 1024 outstanding acks
/// allow, and a pull consumer acking what arrives. Returns (published/s, consumed/s).
async fn bare_ceiling(url: &str, secs: f64) -> (f64, f64) {
    let client = async_nats::connect(url).await.expect("connect");
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(stream::Config {
            name: "BARE".into(),
            subjects: vec!["bare.>".into()],
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .expect("stream");
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bare".into()),
            max_ack_pending: 50_000,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let consumed = Arc::new(AtomicU64::new(0));
    let consuming = consumed.clone();
    let reader = tokio::spawn(async move {
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(256)
            .messages()
            .await
            .expect("pull");
        while let Some(Ok(message)) = messages.next().await {
            let _ = message.ack().await;
            consuming.fetch_add(1, Ordering::Relaxed);
        }
    });
    let payload = bytes::Bytes::from(vec![b'x'; 128]);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut acks = futures::stream::FuturesUnordered::new();
    let mut published = 0u64;
    while Instant::now() < deadline {
        while acks.len() < 1024 {
            let ack = js
                .publish("bare.events", payload.clone())
                .await
                .expect("publish");
            acks.push(std::future::IntoFuture::into_future(ack));
        }
        if let Some(Ok(_)) = acks.next().await {
            published += 1;
        }
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let consumed_at_end = consumed.load(Ordering::Relaxed);
    while let Some(result) = acks.next().await {
        published += u64::from(result.is_ok());
    }
    reader.abort();
    (
        published as f64 / publish_secs,
        consumed_at_end as f64 / publish_secs,
    )
}

fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let step_secs = knob("CEILING_STEP_SECS", if quick() { 2.0 } else { 8.0 });
        let rss_events = knob("CEILING_RSS_EVENTS", if quick() { 50_000.0 } else { 1_000_000.0 });
        let cluster = EmbeddedCluster::start(1).await.expect("nats-server (run scripts/install-tools.sh)");
        let url = cluster.url();
        let harness = harness_ceiling(&url, step_secs).await;
        let (bare_publish, bare_consume) = bare_ceiling(&url, step_secs.max(5.0)).await;
        let bare = bare_publish.min(bare_consume.max(1.0));
        println!("\nbare async-nats pipeline: published {bare_publish:.0}/s, consumed {bare_consume:.0}/s");

        let rss_rate = (harness * 0.8).max(1000.0).round();
        let (before_hwm, _) = rss_kib();
        let report = run_harness(&url, 999, rss_rate, rss_events / rss_rate).await;
        let (hwm, rss) = rss_kib();
        let events = report.counts.scheduled;
        println!("\nmemory run: {events} events at {rss_rate}/s, lost {}, pending {}", report.counts.lost, report.counts.pending);
        let per_event = (hwm.saturating_sub(before_hwm) * 1024) as f64 / events.max(1) as f64;
        let ratio = harness / bare;
        println!("\nschedule ceiling (lag p99 < 1 ms, achieved >= 99%): {harness:.0} events/s");
        println!("bare pipeline ceiling (min of publish and consume): {bare:.0} events/s");
        println!("ratio harness / bare: {ratio:.2}");
        println!("peak RSS after {events} events: {:.1} MiB (VmHWM; {:.1} MiB before the run, {per_event:.0} bytes/event added), VmRSS now {:.1} MiB",
            hwm as f64 / 1024.0, before_hwm as f64 / 1024.0, rss as f64 / 1024.0);
        let json = serde_json::json!({
            "harness_ceiling_events_per_sec": harness,
            "bare_publish_events_per_sec": bare_publish,
            "bare_consume_events_per_sec": bare_consume,
            "ratio": ratio,
            "rss_events": events,
            "peak_rss_kib": hwm,
            "peak_rss_before_kib": before_hwm,
            "bytes_per_event": per_event,
        });
        let _ = std::fs::write("target/ceiling.json", serde_json::to_string_pretty(&json).unwrap_or_default());
        cluster.shutdown().await;
    });
}
