//! The end-of-run summary on the terminal: counts, rates, latencies,
//! invariants and the verdict, each criterion with its actual value.

use std::fmt::Write;

use super::Report;
use crate::criteria;
use crate::stats::{Latency, Summary};

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
    if let Some(shard) = &report.shard {
        let _ = writeln!(
            out,
            "  shard {}/{} · schedule from {}{}",
            shard.index,
            shard.count,
            shard.schedule_start,
            if shard.late_secs > 0.1 {
                format!(" · ready {:.2} s late", shard.late_secs)
            } else {
                String::new()
            }
        );
    }
    if let Some(merged) = &report.merged {
        let shards: Vec<String> = merged.shards.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "  merged from shards {} of {} ({} reports)",
            shards.join(", "),
            merged.count,
            merged.reports.len()
        );
    }
    let mut rows: Vec<(&str, Vec<(&str, u64)>)> = vec![
        (
            "publish",
            vec![
                ("scheduled", c.scheduled),
                ("published", c.published),
                ("deduplicated", c.deduplicated),
                ("failed", c.publish_failed),
                ("collisions", c.collisions),
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
                ("exhausted", c.exhausted),
                ("duplicates", c.duplicates),
                ("stream duplicates", c.stream_duplicates),
                ("unexpected", c.unexpected),
            ],
        ),
    ];
    if report.has_output_contract() {
        rows.push((
            "results",
            vec![
                ("events with one", c.outputs),
                ("missing", c.output_missing),
                ("duplicates", c.output_duplicates),
                ("corrupt", c.output_corrupt),
            ],
        ));
    }
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
    let in_flow_order: Vec<(&str, Summary)> = Latency::ALL
        .iter()
        .filter_map(|l| report.latency.get(l.name()).map(|s| (l.name(), *s)))
        .collect();
    let _ = writeln!(out);
    out.push_str(&latency_table(&in_flow_order));
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

/// The latency table, each column as wide as its widest value (an hour-long
/// publish latency is 3600810.000 ms) plus two spaces, so values never touch.
fn latency_table(rows: &[(&str, Summary)]) -> String {
    const HEADER: [&str; 9] = [
        "latency (ms)",
        "count",
        "min",
        "mean",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
    ];
    // The narrowest widths, which keep the usual table as it always looked.
    const MIN_WIDTHS: [usize; 9] = [16, 9, 10, 10, 10, 10, 10, 10, 10];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|(name, s)| {
            let ms = |v: f64| format!("{v:.3}");
            [
                name.to_string(),
                s.count.to_string(),
                ms(s.min),
                ms(s.mean),
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.p999),
                ms(s.max),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|i| {
            let widest = cells.iter().map(|row| row[i].len()).max().unwrap_or(0);
            let gap = if i == 0 { 1 } else { 2 };
            MIN_WIDTHS[i].max(widest.max(HEADER[i].len()) + gap)
        })
        .collect();
    let line = |row: &[&str]| {
        let mut text = format!("  {:<w$}", row[0], w = widths[0]);
        for (cell, width) in row.iter().zip(&widths).skip(1) {
            let _ = write!(text, "{cell:>width$}");
        }
        text.push('\n');
        text
    };
    let mut table = line(&HEADER);
    for row in &cells {
        table.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    table
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
            Some(node) => format!("{} node {node}", f.kind),
            None => f.kind.clone(),
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
    let actual = outcome
        .actual
        .map_or_else(|| "n/a".into(), |v| criteria::show(&outcome.name, v));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(ms: f64) -> Summary {
        Summary {
            count: 1_000_000_000,
            min: ms / 4.0,
            mean: ms / 2.0,
            p50: ms / 2.0,
            p90: ms,
            p99: ms,
            p999: ms,
            max: ms,
        }
    }

    #[test]
    fn huge_latencies_never_touch_their_neighbours() {
        let table = latency_table(&[
            ("publish", summary(3_600_810.0)),
            ("end_to_end", summary(0.25)),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        for line in &lines[1..] {
            assert_eq!(line.split_whitespace().count(), 9, "{table}");
        }
        assert!(lines[1].contains("  3600810.000  3600810.000"), "{table}");
        // Right-aligned: every column ends where its header ends.
        let ends = |line: &str| -> Vec<usize> {
            let mut ends = Vec::new();
            let bytes = line.as_bytes();
            for i in 1..bytes.len() {
                if bytes[i - 1] != b' ' && bytes[i] == b' ' {
                    ends.push(i);
                }
            }
            ends.push(line.len());
            ends
        };
        let header_ends = ends(&lines[0].replace("latency (ms)", "latency_(ms)"));
        assert_eq!(ends(lines[1])[1..], header_ends[1..], "{table}");
        assert_eq!(ends(lines[2])[1..], header_ends[1..], "{table}");
    }

    #[test]
    fn usual_latencies_keep_the_usual_layout() {
        let usual = Summary {
            count: 1000,
            ..summary(12.5)
        };
        let table = latency_table(&[("publish", usual)]);
        assert_eq!(
            table.lines().next().unwrap(),
            format!(
                "  {:<16}{:>9}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
                "latency (ms)", "count", "min", "mean", "p50", "p90", "p99", "p99.9", "max"
            )
        );
        assert!(table.ends_with("    12.500    12.500\n"), "{table}");
    }
}
