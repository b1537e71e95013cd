//! The metrics endpoint, scraped for real during and after a run, and the
//! exposition checked by promtool.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::NatsServer;
use harness::metrics::{Type, CATALOGUE};
use harness::progress;
use harness::run::{self, MetricsOptions, RunConfig, Signals};
use harness::scenario;

/// GET /metrics, as a scraper does.
fn scrape(port: u16) -> Option<String> {
    common::http_get(port, "/metrics").and_then(|(status, body)| (status == 200).then_some(body))
}

/// Metric names that have a `# TYPE` line.
fn typed(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// A sample's value by name and label fragment, e.g. (`..._total`, `result="ack"`).
fn value(exposition: &str, name: &str, labels: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

const SCENARIO: &str = r#"
name = "metrics-test"
[load]
rate = 50
duration = "4s"
[consumer]
error_ratio = 0.1
[criteria]
checks = ["lost == 0", "processed > 1000000"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_serves_every_metric_live_and_the_final_values_match_the_report() {
    let server = NatsServer::start().await;
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("final.prom");
    let mut scenario =
        scenario::parse(SCENARIO, Path::new("m.toml")).unwrap_or_else(|e| panic!("{e}"));
    scenario.target.url = Some(server.url());
    let config = RunConfig {
        scenario,
        name: "metrics-test".into(),
        file: "m.toml".into(),
        run_id: "m1".into(),
        seed: 3,
        progress: progress::Mode::Quiet,
        metrics: MetricsOptions {
            addr: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            out: Some(out.clone()),
            ..Default::default()
        },
        shard: None,
        start_at: None,
    };
    let run = tokio::spawn(run::run_with_telemetry(config, Signals::default()));

    // Mid-run: every metric that has a live value is there, with values moving.
    let deadline = Instant::now() + Duration::from_secs(15);
    let live = loop {
        assert!(
            Instant::now() < deadline,
            "no live scrape with published events"
        );
        if let Some(text) = tokio::task::spawn_blocking(move || scrape(port))
            .await
            .unwrap()
        {
            if value(&text, "harness_events_published_total", "").is_some_and(|v| v >= 50.0) {
                break text;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let live_names = typed(&live);
    // harness_fault_active has a series per fault, and this run has none
    // (tests/prometheus.rs runs one).
    for d in CATALOGUE
        .iter()
        .filter(|d| d.name != "harness_fault_active")
    {
        assert!(
            live_names.iter().any(|n| n == d.name),
            "{} missing from the live scrape",
            d.name
        );
    }
    // The verdict gauges are provisional while the run goes on.
    assert_eq!(
        value(&live, "harness_criterion_passed", "criterion=\"lost == 0\""),
        Some(1.0)
    );
    assert_eq!(
        value(
            &live,
            "harness_criterion_passed",
            "criterion=\"processed > 1000000\""
        ),
        Some(0.0)
    );
    assert_eq!(value(&live, "harness_run_passed", ""), Some(0.0));
    assert_eq!(value(&live, "harness_run_finished", ""), Some(0.0));
    for line in live
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(
            line.contains("scenario=\"metrics-test\"") && line.contains("run_id=\"m1\""),
            "unlabelled: {line}"
        );
    }
    for d in CATALOGUE.iter().filter(|d| d.kind == Type::Histogram) {
        assert!(
            live.contains(&format!("{}_bucket{{", d.name)),
            "{} is not a histogram with buckets",
            d.name
        );
    }

    let (report, telemetry) = run.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
    drop(telemetry);
    let last = std::fs::read_to_string(&out).expect("--metrics-out file");
    for d in CATALOGUE
        .iter()
        .filter(|d| d.name != "harness_fault_active")
    {
        assert!(
            typed(&last).iter().any(|n| n == d.name),
            "{} missing from the final exposition",
            d.name
        );
    }
    let c = &report.counts;
    for (name, count) in [
        ("harness_events_scheduled_total", c.scheduled),
        ("harness_events_published_total", c.published),
        ("harness_events_processed_total", c.processed),
        ("harness_events_dead_lettered_total", c.dead_lettered),
        ("harness_redeliveries_total", c.redelivered),
    ] {
        assert_eq!(value(&last, name, ""), Some(count as f64), "{name}");
    }
    assert!(c.dead_lettered > 0);
    assert_eq!(
        value(&last, "harness_dead_letters_total", "reason=\"error\""),
        Some(c.dead_lettered as f64)
    );
    assert_eq!(
        value(&last, "harness_consumer_outcomes_total", "outcome=\"term\""),
        Some(c.dead_lettered as f64)
    );
    assert_eq!(
        value(&last, "harness_publish_attempts_total", "result=\"ack\""),
        Some(c.published as f64)
    );
    assert_eq!(
        value(&last, "harness_run_passed", ""),
        Some(0.0),
        "processed > 1000000 fails"
    );
    assert_eq!(
        value(&last, "harness_criterion_passed", "criterion=\"lost == 0\""),
        Some(1.0)
    );
    assert_eq!(
        value(
            &last,
            "harness_criterion_passed",
            "criterion=\"processed > 1000000\""
        ),
        Some(0.0)
    );
    assert_eq!(value(&last, "harness_run_finished", ""), Some(1.0));
    assert_eq!(
        value(&last, "harness_end_to_end_latency_seconds_count", ""),
        Some(report.latency["end_to_end"].count as f64)
    );
}

/// promtool (Debian's prometheus package, installed by the test command)
/// accepts the exposition: names, types, help and units follow the conventions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_exposition() {
    let (metrics, _) = harness::metrics::RunMetrics::new("lint", "l1", None, None).unwrap();
    for d in CATALOGUE {
        let labels: Vec<(&'static str, String)> =
            d.labels.iter().map(|l| (*l, "x".to_string())).collect();
        match d.kind {
            Type::Counter => metrics.counter(d.name, &labels).increment(1),
            Type::Gauge => metrics.gauge(d.name, &labels).set(1.0),
            Type::Histogram => {}
        }
    }
    for latency in harness::stats::Latency::ALL {
        metrics.histogram(latency).record(0.003);
    }
    let text = metrics.render();
    assert_eq!(typed(&text).len(), CATALOGUE.len());
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is needed: scripts/install-tools.sh --with-prometheus installs it");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The README's metrics table lists exactly the exported metrics.
#[test]
fn the_readme_lists_every_metric_and_nothing_else() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("a Metrics section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `harness_"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let listed: Vec<String> = listed.iter().map(|n| format!("harness_{n}")).collect();
    let exported: Vec<String> = CATALOGUE.iter().map(|d| d.name.to_string()).collect();
    assert_eq!(
        listed, exported,
        "README's metrics table and src/metrics.rs CATALOGUE differ"
    );
}
