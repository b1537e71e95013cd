//! The end-of-run summary on the terminal: counts, rates, latencies,
//! invariants and the verdict, each criterion with its actual value.

use std::fmt::Write;

use super::Report;
use crate::criteria;
use crate::stats::Latency;

/// The summary as text (no colour: it goes to logs and CI output as is).
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let c = &report.counts;
    let _ = writeln!(
        out,
        "\nharness · {} · run {} · load {:.1}s, total {:.1}s · {}{}",
        report.scenario,
        report.run_id,
        report.load_secs,
        report.duration_secs,
        if report.target.embedded {
            "embedded "
        } else {
            ""
        },
        report.target.url,
    );
    let rows: [(&str, Vec<(&str, u64)>); 3] = [
        (
            "publish",
            vec![
                ("scheduled", c.scheduled),
                ("published", c.published),
                ("deduplicated", c.deduplicated),
                ("failed", c.publish_failed),
                ("indeterminate", c.indeterminate),
                ("not sent", c.not_sent),
                ("retries", c.retries),
                ("held back", c.held_back),
            ],
        ),
        (
            "outcome",
            vec![
                ("processed", c.processed),
                ("dead-lettered", c.dead_lettered),
                ("pending", c.pending),
                ("lost", c.lost),
                ("lost mid-run", c.lost_mid_run),
                ("lost at tail", c.lost_tail),
                ("recovered", c.recovered),
            ],
        ),
        (
            "delivery",
            vec![
                ("redelivered", c.redelivered),
                ("duplicates", c.duplicates),
                ("stream duplicates", c.stream_duplicates),
                ("unexpected", c.unexpected),
            ],
        ),
    ];
    for (title, cells) in rows {
        let cells: Vec<String> = cells.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  {title:<10} {}", cells.join(" · "));
    }
    let _ = writeln!(
        out,
        "  {:<10} target {:.2}/s · achieved {:.2}/s · success rate {:.2}%",
        "rate",
        report.rates.target,
        report.rates.achieved,
        report.success_rate * 100.0
    );
    let _ = writeln!(
        out,
        "\n  {:<16}{:>9}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
        "latency (ms)", "count", "min", "mean", "p50", "p90", "p99", "p99.9", "max"
    );
    let in_flow_order = Latency::ALL
        .iter()
        .filter_map(|l| report.latency.get(l.name()).map(|s| (l.name(), s)));
    for (name, s) in in_flow_order {
        let _ = writeln!(
            out,
            "  {name:<16}{:>9}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}",
            s.count, s.min, s.mean, s.p50, s.p90, s.p99, s.p999, s.max
        );
    }
    render_faults(&mut out, report);
    let _ = writeln!(out);
    for invariant in &report.counts.invariants {
        let mark = if invariant.holds { "ok " } else { "BROKEN" };
        let _ = writeln!(
            out,
            "  {mark} {} ({} vs {})",
            invariant.name, invariant.left, invariant.right
        );
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
    render_samples(&mut out, report);
    if !report.criteria.is_empty() {
        let _ = writeln!(out, "\n  criteria");
        for outcome in &report.criteria {
            let _ = writeln!(out, "    {}", criterion_line(outcome));
        }
    }
    let verdict = match (report.interrupted, report.passed) {
        (true, _) => "INTERRUPTED (partial report)",
        (false, true) => "PASSED",
        (false, false) => "FAILED",
    };
    let _ = writeln!(out, "\n  {verdict}");
    out
}

/// One line per fault: when, and what it cost.
fn render_faults(out: &mut String, report: &Report) {
    if report.faults.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n  faults");
    if let Some(proxy) = &report.target.proxy {
        let _ = writeln!(
            out,
            "    network through the proxy at {} · {} bytes dropped · {} connections reset",
            proxy.url, proxy.dropped_bytes, proxy.resets
        );
    }
    for f in &report.faults {
        let what = match f.node {
            Some(node) => format!("{} node {node}", f.kind.name()),
            None => f.kind.name().to_string(),
        };
        let until = f
            .recovered_secs
            .map_or("—".to_string(), |end| format!("{end:.1}s"));
        let outcome = match (&f.error, f.cost.recovery_secs) {
            (Some(error), _) => format!("error: {error}"),
            (None, Some(secs)) => format!("back within bounds {secs:.1}s after"),
            (None, None) => "never back within bounds".to_string(),
        };
        let _ = writeln!(
            out,
            "    {what:<22} {:>6.1}s → {until:>6} · {outcome} · publish failed {} · indeterminate {}",
            f.started_secs, f.cost.publish_failed, f.cost.indeterminate
        );
    }
}

fn criterion_line(outcome: &criteria::Outcome) -> String {
    let mark = if outcome.passed { "pass" } else { "FAIL" };
    let actual = match outcome.actual {
        Some(value) if value.fract() == 0.0 && value.abs() < 1e15 => format!("{value:.0}"),
        Some(value) => format!("{value:.4}"),
        None => "n/a".into(),
    };
    format!("{mark}  {:<40} actual {actual}", outcome.expression)
}

fn render_samples(out: &mut String, report: &Report) {
    let samples = &report.counts.samples;
    for (kind, list) in [
        ("lost", &samples.lost),
        ("indeterminate", &samples.indeterminate),
        ("dead-lettered", &samples.dead_lettered),
    ] {
        if list.is_empty() {
            continue;
        }
        let shown: Vec<String> = list
            .iter()
            .take(5)
            .map(|s| match s.stream_sequence {
                Some(seq) => format!("{} (seq {seq})", s.event_id),
                None => s.event_id.clone(),
            })
            .collect();
        let more = if list.len() > 5 {
            " … (the JSON report lists up to 100)"
        } else {
            ""
        };
        let _ = writeln!(out, "  {kind}: {}{more}", shown.join(", "));
    }
}
