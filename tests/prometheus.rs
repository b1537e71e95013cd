//! The harness against a real Prometheus (Debian's package, installed by
//! the test command): Prometheus scrapes a short run, then its final counts
//! must equal the JSON report's, each percentile derived from the buckets
//! must lie in the bucket holding the report's exact HDR value, and every
//! query of every dashboard panel and rule must parse, and return data when
//! it is about harness metrics.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::progress;
use harness::report::Report;
use harness::run::{self, MetricsOptions, RunConfig, Signals};
use harness::scenario;
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrapes `target` every second and evaluates the repository's rules.
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let rules = repo().join("prometheus/rules");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}/*.yml\nscrape_configs:\n  - job_name: harness\n    static_configs:\n      - targets: ['{target}']\n",
            rules.display()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = common::free_port();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is needed: scripts/install-tools.sh --with-prometheus installs it");
        let prometheus = Prometheus {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(port, "/-/ready").is_none() {
            assert!(Instant::now() < deadline, "Prometheus never became ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    /// An instant query; the JSON `data` on success, the error text otherwise.
    fn query(&self, expr: &str) -> Result<Value, String> {
        let body =
            get(self.port, &format!("/api/v1/query?query={}", encode(expr))).ok_or("no answer")?;
        let json: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        if json["status"] == "success" {
            Ok(json["data"].clone())
        } else {
            Err(format!("{}: {}", json["errorType"], json["error"]))
        }
    }

    /// The single value of a query that returns one series.
    fn scalar(&self, expr: &str) -> Option<f64> {
        let data = self.query(expr).ok()?;
        let result = data["result"].as_array()?;
        (result.len() == 1).then(|| result[0]["value"][1].as_str()?.parse().ok())?
    }
}

/// GET on Prometheus's API; the body of an answer the API explains
/// (200, or 400/422 with an error in JSON).
fn get(port: u16, path: &str) -> Option<String> {
    common::http_get(port, path)
        .and_then(|(status, body)| matches!(status, 200 | 400 | 422).then_some(body))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

const SCENARIO: &str = r#"
[load]
rate = 100
duration = "6s"
[consumer]
ack_wait = "3s"
error_ratio = 0.05
timeout_ratio = 0.05
processing_timeout = "50ms"
nak_delay = "50ms"
[consumer.processing]
distribution = "exponential"
mean = "3ms"
[criteria]
checks = ["lost == 0"]
[[faults]]
at = "2s"
kind = "pause"
duration = "1s"
[[faults]]
at = "4s"
kind = "blackhole"
duration = "500ms"
"#;

/// Runs the scenario with Prometheus scraping it; returns the report and
/// the Prometheus that holds the run's final values.
/// The target is embedded (the harness owns it), so the pause fault runs
/// and its gauge has data too; the blackhole puts the proxy's counters there.
async fn scraped_run(run_id: &str) -> (Report, Prometheus, harness::run::Telemetry) {
    let metrics_port = common::free_port();
    let prometheus = Prometheus::start(&format!("127.0.0.1:{metrics_port}"));
    let scenario = scenario::parse(SCENARIO, Path::new("p.toml")).unwrap_or_else(|e| panic!("{e}"));
    let config = RunConfig {
        scenario,
        name: "prom".into(),
        file: "p.toml".into(),
        run_id: run_id.into(),
        seed: 11,
        progress: progress::Mode::Quiet,
        metrics: MetricsOptions {
            addr: Some(format!("127.0.0.1:{metrics_port}").parse().unwrap()),
            ..Default::default()
        },
        shard: None,
        start_at: None,
    };
    let (report, telemetry) = run::run_with_telemetry(config, Signals::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The listener lingers (telemetry is alive) until Prometheus has the end.
    let finished = format!("harness_run_finished{{run_id=\"{run_id}\"}}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while prometheus.scalar(&finished) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the end of the run"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One more scrape, so rates over the last window have two samples of the end.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    (report, prometheus, telemetry)
}

/// The bucket bounds around `seconds`, from a histogram's `le` values.
fn bucket_of(bounds: &[f64], seconds: f64) -> (f64, f64) {
    let mut lower = 0.0;
    for &upper in bounds {
        if seconds <= upper {
            return (lower, upper);
        }
        lower = upper;
    }
    (lower, f64::INFINITY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_holds_the_reports_counts_and_percentiles_and_every_query_returns_data() {
    let (report, prometheus, _telemetry) = scraped_run("prom1").await;
    assert_eq!(report.faults.len(), 2, "the pause and the blackhole ran");
    let c = &report.counts;
    let sel = "{run_id=\"prom1\"}";
    let dropped = prometheus.scalar(&format!("harness_proxy_dropped_bytes_total{sel}"));
    assert!(
        dropped.is_some_and(|d| d > 0.0),
        "the blackhole dropped bytes: {dropped:?}"
    );
    let recovery = report.fault_figures.recovery_ms / 1000.0;
    if recovery.is_finite() {
        let scraped = prometheus
            .scalar(&format!("harness_fault_recovery_seconds{sel}"))
            .expect("the recovery gauge was scraped");
        assert!((scraped - recovery).abs() < 1e-6, "{scraped} vs {recovery}");
    }
    for (metric, count) in [
        ("harness_events_scheduled_total", c.scheduled),
        ("harness_events_published_total", c.published),
        ("harness_events_processed_total", c.processed),
        ("harness_events_dead_lettered_total", c.dead_lettered),
        ("harness_events_unexpected_total", c.unexpected),
        ("harness_events_duplicates_total", c.duplicates),
        ("harness_redeliveries_total", c.redelivered),
        ("harness_publish_retries_total", c.retries),
        ("harness_events_not_sent_total", c.not_sent),
    ] {
        assert_eq!(
            prometheus.scalar(&format!("{metric}{sel}")),
            Some(count as f64),
            "{metric}"
        );
    }
    assert_eq!(
        prometheus.scalar(&format!("sum(harness_events_lost_total{sel})")),
        Some(c.lost as f64)
    );
    assert!(
        c.dead_lettered > 0 && c.redelivered > 0,
        "the run exercised the unhappy paths: {c:?}"
    );

    for (latency, metric) in [
        ("publish", "harness_publish_latency_seconds"),
        ("end_to_end", "harness_end_to_end_latency_seconds"),
        ("processing", "harness_processing_latency_seconds"),
        ("schedule_lag", "harness_schedule_lag_seconds"),
    ] {
        let summary = &report.latency[latency];
        assert_eq!(
            prometheus.scalar(&format!("{metric}_count{sel}")),
            Some(summary.count as f64),
            "{metric}"
        );
        let data = prometheus.query(&format!("{metric}_bucket{sel}")).unwrap();
        let mut bounds: Vec<f64> = data["result"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["metric"]["le"].as_str()?.parse().ok())
            .filter(|b: &f64| b.is_finite())
            .collect();
        bounds.sort_by(f64::total_cmp);
        for (q, exact_ms) in [(0.5, summary.p50), (0.9, summary.p90), (0.99, summary.p99)] {
            let estimate = prometheus
                .scalar(&format!(
                    "histogram_quantile({q}, sum by (le) ({metric}_bucket{sel}))"
                ))
                .unwrap();
            // The HDR value stands for a small range: microseconds, truncated,
            // at 3 significant digits. The bucket check spans that range.
            let exact = exact_ms / 1000.0;
            let (low, _) = bucket_of(&bounds, exact * (1.0 - 1e-3));
            let (_, high) = bucket_of(&bounds, exact * (1.0 + 1e-3) + 1e-6);
            assert!(
                estimate >= low - 1e-9 && estimate <= high + 1e-9,
                "{metric} q{q}: Prometheus {estimate} s outside the bucket ({low}, {high}] of the exact {exact_ms} ms"
            );
        }
    }

    let queries = Command::new("python3")
        .arg(repo().join("scripts/dashboard-queries.py"))
        .current_dir(repo())
        .output()
        .expect("python3 runs scripts/dashboard-queries.py");
    assert!(
        queries.status.success(),
        "{}",
        String::from_utf8_lossy(&queries.stderr)
    );
    let queries: Vec<Value> = String::from_utf8_lossy(&queries.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        queries.len() >= 20,
        "dashboards and rules hold {} queries",
        queries.len()
    );
    let mut failures = Vec::new();
    let has_data = |expr: &str| {
        prometheus
            .query(expr)
            .is_ok_and(|data| data["result"].as_array().is_some_and(|r| !r.is_empty()))
    };
    for q in &queries {
        let expr = q["expr"].as_str().unwrap();
        let place = format!("{} / {}", q["file"], q["panel"]);
        if let Err(e) = prometheus.query(expr) {
            failures.push(format!("{place}: `{expr}` does not parse: {e}"));
        } else if q["harness"] != true {
            // The NATS exporter's metrics: no exporter runs in this test.
        } else if q["kind"] == "alert" || q["kind"] == "annotation" {
            // Conditions over time: a healthy run fires no alert, and a fault
            // annotation is empty once the fault is over, so every harness
            // series the condition reads must exist instead.
            for name in metric_names(expr) {
                if !has_data(&name) {
                    failures.push(format!("{place}: `{name}` has no data"));
                }
            }
        } else if !has_data(expr) {
            failures.push(format!("{place}: `{expr}` returned no data"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries failed:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}

/// The harness metrics (and recorded series) an expression reads.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names: Vec<String> = expr
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("harness_") || w.starts_with("harness:"))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Dashboards name only metrics the harness exports (and the NATS exporter's on nats.json).
#[test]
fn dashboards_use_only_catalogued_metric_names() {
    let known: Vec<&str> = harness::metrics::CATALOGUE.iter().map(|d| d.name).collect();
    let dir = repo().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    assert!(
        files.len() >= 4,
        "overview, latency, reliability and nats dashboards"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let _: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let Some(base) = word.strip_prefix("harness_") else {
                continue;
            };
            let name = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| word.strip_suffix(s).filter(|n| known.contains(n)))
                .unwrap_or(word);
            assert!(
                known.contains(&name),
                "{}: `{word}` is not an exported metric ({base})",
                file.display()
            );
        }
    }
}

fn check_command(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed (scripts/install-tools.sh --with-prometheus --with-compose): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// promtool accepts the Prometheus configuration and both rule files.
#[test]
fn promtool_accepts_the_config_and_the_rules() {
    check_command(
        "promtool",
        &["check", "config", "prometheus/prometheus.yml"],
    );
    let rules: Vec<String> = std::fs::read_dir(repo().join("prometheus/rules"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".yml"))
        .collect();
    assert!(rules.len() >= 2, "recording and alert rules");
    let mut args = vec!["check", "rules"];
    args.extend(rules.iter().map(String::as_str));
    check_command("promtool", &args);
}

/// The compose stack is a valid compose file (no engine needed to check).
#[test]
fn docker_compose_accepts_the_stack() {
    check_command(
        "docker-compose",
        &["-f", "docker-compose.yml", "config", "-q"],
    );
}
