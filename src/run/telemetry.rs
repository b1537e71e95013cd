//! The run's metrics from start to linger: the registry and its listener,
//! the gauges set on every tick, the final values, the exposition file,
//! the Pushgateway push, and the linger that keeps the end scrapeable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer;

use crate::criteria::Outcome;
use crate::error::HarnessError;
use crate::figures::Figures;
use crate::ledger::Ledger;
use crate::metrics::{Listener, RunMetrics};
use crate::progress::Snapshot;
use crate::report::Report;
use crate::stats::{Latency, Stats};
use crate::target::ConnectionState;

use super::Signals;

/// Where metrics go besides the live listener.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    /// Serve /metrics here for the whole run; None: no listener.
    pub addr: Option<SocketAddr>,
    /// Keep serving this long after the run, so the last values are scraped.
    pub linger: Duration,
    /// Write the final exposition here.
    pub out: Option<PathBuf>,
    /// Push the final values to this Pushgateway (`http://host:port`).
    pub pushgateway: Option<String>,
}

pub struct Telemetry {
    metrics: RunMetrics,
    listener: Option<Listener>,
    options: MetricsOptions,
    /// A shard's index, in its labels and its Pushgateway group.
    shard: Option<String>,
}

impl Telemetry {
    pub fn start(
        scenario: &str,
        run_id: &str,
        shard: Option<crate::shard::Shard>,
        file: &str,
        options: &MetricsOptions,
    ) -> Result<Telemetry, HarnessError> {
        let shard = shard.map(|s| s.index.to_string());
        let (metrics, listener) = RunMetrics::new(scenario, run_id, shard.as_deref(), options.addr)
            .map_err(|e| {
                HarnessError::Usage(format!("{e}; choose another --metrics-addr, or `off`"))
            })?;
        if let Some(listener) = &listener {
            tracing::info!(addr = %listener.addr, "serving metrics on http://{}/metrics", listener.addr);
        }
        let info = [
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("scenario_file", file.to_string()),
        ];
        metrics.gauge("harness_run_info", &info).set(1.0);
        metrics.gauge("harness_run_finished", &[]).set(0.0);
        // Every figure starts at 0; those known only at the end stay so.
        metrics.figures(&Figures::default());
        Ok(Telemetry {
            metrics,
            listener,
            options: options.clone(),
            shard,
        })
    }

    /// A watcher that shows each fault of `faults` in `harness_fault_active`.
    pub fn fault_watcher(&self, faults: &[crate::faults::Planned]) -> crate::faults::Watcher {
        let gauges: Vec<_> = faults
            .iter()
            .map(|f| {
                let labels = [
                    ("fault", f.action.name().to_string()),
                    ("node", f.action.place()),
                ];
                let gauge = self.metrics.gauge("harness_fault_active", &labels);
                gauge.set(0.0);
                gauge
            })
            .collect();
        Arc::new(move |index, active| {
            if let Some(gauge) = gauges.get(index) {
                gauge.set(if active { 1.0 } else { 0.0 });
            }
        })
    }

    /// Stops the listener and waits until its address is free again.
    pub async fn close(mut self) {
        if let Some(listener) = self.listener.take() {
            listener.stop().await;
        }
    }

    /// Stats whose histograms also feed Prometheus.
    pub fn stats(&self) -> Stats {
        Stats::exporting(Latency::ALL.map(|l| self.metrics.histogram(l)))
    }

    /// The live values, on every tick of the run.
    /// `so_far`: every criterion against the live figures; until the end
    /// (`harness_run_finished 0`) the verdict gauges are provisional.
    pub fn tick(
        &self,
        ledger: &Ledger,
        figures: &Figures,
        snapshot: &Snapshot,
        info: Option<&consumer::Info>,
        connections: &[Arc<ConnectionState>; 2],
        so_far: &[Outcome],
    ) {
        let m = &self.metrics;
        m.mirror(ledger);
        m.figures(figures);
        self.verdict(
            so_far,
            so_far.iter().all(|o| o.passed || o.actual.is_none()),
        );
        m.gauge("harness_target_rate_events_per_second", &[])
            .set(snapshot.target_rate);
        m.gauge("harness_achieved_rate_events_per_second", &[])
            .set(snapshot.rate);
        m.gauge("harness_publish_in_flight", &[])
            .set(snapshot.in_flight as f64);
        if let Some(info) = info {
            m.gauge("harness_consumer_num_pending", &[])
                .set(info.num_pending as f64);
            m.gauge("harness_consumer_num_ack_pending", &[])
                .set(info.num_ack_pending as f64);
            m.gauge("harness_consumer_num_redelivered", &[])
                .set(info.num_redelivered as f64);
        }
        for (name, state) in ["publisher", "consumer"].into_iter().zip(connections) {
            let label = [("connection", name.to_string())];
            m.gauge("harness_connection_up", &label)
                .set(if state.is_connected() { 1.0 } else { 0.0 });
            m.counter("harness_connection_reconnects_total", &label)
                .absolute(state.reconnects.load(Ordering::Relaxed));
        }
    }

    /// What the faults cost so far, and the proxy's work.
    pub fn faults(
        &self,
        figures: &crate::recovery::FaultFigures,
        proxy: Option<&crate::target::proxy::Proxy>,
    ) {
        let m = &self.metrics;
        m.gauge("harness_fault_recovery_seconds", &[])
            .set(figures.recovery_ms / 1000.0);
        m.gauge("harness_consumer_stuck", &[])
            .set(figures.consumer_stuck as f64);
        // Without network faults there is no proxy, and nothing it did.
        m.counter("harness_proxy_dropped_bytes_total", &[])
            .absolute(proxy.map_or(0, |p| p.dropped_bytes()));
        m.counter("harness_proxy_resets_total", &[])
            .absolute(proxy.map_or(0, |p| p.resets()));
    }

    /// The values only the end knows, and the verdict.
    pub fn finish(&self, ledger: &Ledger, report: &Report) {
        let m = &self.metrics;
        m.mirror(ledger);
        m.figures(&report.figures());
        m.gauge("harness_publish_in_flight", &[]).set(0.0);
        self.verdict(&report.criteria, report.passed);
        m.gauge("harness_run_finished", &[]).set(1.0);
    }

    fn verdict(&self, criteria: &[Outcome], passed: bool) {
        let m = &self.metrics;
        for outcome in criteria.iter().filter(|o| o.actual.is_some()) {
            let label = [("criterion", outcome.expression.clone())];
            m.gauge("harness_criterion_passed", &label)
                .set(if outcome.passed { 1.0 } else { 0.0 });
        }
        m.gauge("harness_run_passed", &[])
            .set(if passed { 1.0 } else { 0.0 });
    }

    /// Writes the exposition file and pushes to the Pushgateway, as configured.
    pub async fn export_final(&self, scenario: &str, run_id: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let text = self.metrics.render();
        if let Some(path) = &self.options.out {
            if let Err(e) = crate::report::output::write_atomically(path, text.as_bytes()) {
                problems.push(format!("cannot write metrics to {}: {e}", path.display()));
            }
        }
        if let Some(gateway) = &self.options.pushgateway {
            let group = Group {
                scenario,
                run_id,
                shard: self.shard.as_deref(),
            };
            if let Err(e) = push(gateway, &group, &text).await {
                problems.push(format!("cannot push metrics to {gateway}: {e}"));
            }
        }
        problems
    }

    /// Keeps /metrics up for the configured linger; a signal ends it early.
    pub async fn linger(self, signals: &Signals) {
        let Some(listener) = &self.listener else {
            return;
        };
        if self.options.linger.is_zero() {
            return;
        }
        eprintln!(
            "  serving the final metrics on http://{}/metrics for {} (Ctrl+C to stop)",
            listener.addr,
            humantime::format_duration(self.options.linger)
        );
        tokio::select! {
            _ = tokio::time::sleep(self.options.linger) => {}
            _ = signals.interrupt.cancelled() => {}
            _ = signals.hard_stop.cancelled() => {}
        }
    }

    pub fn render(&self) -> String {
        self.metrics.render()
    }
}

/// A Pushgateway group: the run, and the shard for one shard of a run (the
/// shards' pushes would replace each other otherwise).
struct Group<'a> {
    scenario: &'a str,
    run_id: &'a str,
    shard: Option<&'a str>,
}

/// PUT of the exposition to
/// `<gateway>/metrics/job/harness/scenario/<s>/run_id/<r>[/shard/<k>]`,
/// replacing that group, over plain HTTP/1.1.
async fn push(gateway: &str, group: &Group<'_>, body: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = gateway
        .strip_prefix("http://")
        .ok_or("the Pushgateway URL must start with http://")?;
    let (host, base) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let path = format!(
        "/{}{}metrics/job/harness/scenario/{}/run_id/{}{}",
        base,
        if base.is_empty() || base.ends_with('/') {
            ""
        } else {
            "/"
        },
        escape(group.scenario),
        escape(group.run_id),
        group
            .shard
            .map(|k| format!("/shard/{}", escape(k)))
            .unwrap_or_default()
    );
    let connect = tokio::net::TcpStream::connect(host);
    let mut stream = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| "connection timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let request = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .map_err(|_| "no answer in 10s".to_string())?
        .map_err(|e| e.to_string())?;
    let status = String::from_utf8_lossy(&response);
    let line = status.lines().next().unwrap_or_default().to_string();
    if line
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'))
    {
        Ok(())
    } else {
        Err(format!("answered `{line}`"))
    }
}

/// Path-safe label values (Pushgateway's grouping key is in the path).
fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
