//! The search on the terminal: a row per trial as it ends, the result
//! under them, and the table across configurations.

use std::fmt::Write;

use super::{CapacityResult, Configurations, Ending, Trial};

/// The columns of [`trial_row`].
pub fn trial_header() -> String {
    format!(
        "{:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}  verdict\n\
         {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "trial",
        "rate/s",
        "achieved",
        "pub p50",
        "pub p99",
        "p99.9",
        "e2e p50",
        "e2e p99",
        "p99.9",
        "backlog/s",
        "",
        "",
        "",
        "ms",
        "ms",
        "ms",
        "ms",
        "ms",
        "ms",
        "",
    )
}

/// One trial's row: rate, achieved, publish and end_to_end p50/p99/p99.9,
/// backlog slope, verdict (with the first failed condition).
pub fn trial_row(n: usize, t: &Trial) -> String {
    let verdict = if t.sustainable {
        "sustainable".to_string()
    } else if t.report.interrupted {
        "interrupted".to_string()
    } else {
        match t.failures.first() {
            Some(f) => format!("no: {f}"),
            None => "no".into(),
        }
    };
    format!(
        "{:>5} {:>9} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.1}  {}{}",
        n,
        t.rate,
        t.achieved,
        t.publish.p50,
        t.publish.p99,
        t.publish.p999,
        t.end_to_end.p50,
        t.end_to_end.p99,
        t.end_to_end.p999,
        t.backlog_slope,
        if t.confirmation {
            "(confirmation) "
        } else if t.long {
            "(long) "
        } else {
            ""
        },
        verdict
    )
}

/// The result under the trials: the MSR, what limited it, warnings.
pub fn render_result(r: &CapacityResult) -> String {
    let mut out = String::new();
    match (r.msr, r.ending) {
        (Some(msr), Ending::Confirmed) => {
            let _ = writeln!(out, "maximum sustainable rate: {msr} events/s (confirmed)");
        }
        (Some(msr), _) => {
            let _ = writeln!(
                out,
                "maximum sustainable rate: {msr} events/s ({})",
                ending(r.ending)
            );
        }
        (None, _) => {
            let _ = writeln!(out, "no sustainable rate found ({})", ending(r.ending));
        }
    }
    if let Some(limit) = &r.limited_by {
        let _ = writeln!(out, "above it, first failed: {limit}");
    }
    if let Some(usage) = r.server_usage {
        let _ = writeln!(
            out,
            "nats-server in the confirmation trial: {:.1} s CPU, peak RSS {:.1} MiB",
            usage.cpu_secs,
            usage.peak_rss_bytes as f64 / (1 << 20) as f64
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "error: {e}");
    }
    if r.interrupted {
        let _ = writeln!(out, "interrupted: the result is partial");
    }
    let _ = writeln!(out, "{} trials in {:.0} s", r.trials.len(), r.duration_secs);
    out
}

fn ending(e: Ending) -> &'static str {
    match e {
        Ending::Confirmed => "confirmed",
        Ending::AtMaxRate => "at capacity.max_rate; the pipeline may take more",
        Ending::NoneSustainable => "not even the lowest rate tried",
        Ending::OutOfTrials => "capacity.max_trials ran out; unconfirmed",
        Ending::Unconfirmed => "confirmations kept failing",
        Ending::Stopped => "the search was stopped",
    }
}

/// The table across configurations, as Markdown: each variant's MSR and
/// what limited it, its latencies at the common rate, and the embedded
/// server's CPU and memory in that trial.
pub fn render_configurations(c: &Configurations) -> String {
    let mut out = String::new();
    let rate = c.common_rate.map_or("-".to_string(), |r| format!("{r}/s"));
    let _ = writeln!(
        out,
        "| variant | MSR events/s | limited by | at {rate}: publish p50 / p95 / p99 ms | end_to_end p50 / p95 / p99 ms | server CPU % | server peak RSS MiB |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for v in &c.variants {
        let msr = v
            .capacity
            .msr
            .map_or("none".to_string(), |m| format!("{m}"));
        let limit = v
            .capacity
            .limited_by
            .as_ref()
            .map_or("-".to_string(), |f| f.condition.clone());
        let latencies = |name: &str| {
            v.common.as_ref().map_or("-".to_string(), |t| {
                let d = t.report.distribution.get(name);
                let at = |p: f64| d.and_then(|d| at_percentile(d, p)).unwrap_or(f64::NAN);
                format!("{:.2} / {:.2} / {:.2}", at(50.0), at(95.0), at(99.0))
            })
        };
        let (cpu, rss) = v
            .common
            .as_ref()
            .and_then(|t| {
                let usage = t.report.target.server_usage?;
                let secs = t.report.duration_secs.max(1e-9);
                Some((
                    format!("{:.0}", 100.0 * usage.cpu_secs / secs),
                    format!("{:.0}", usage.peak_rss_bytes as f64 / (1 << 20) as f64),
                ))
            })
            .unwrap_or(("-".into(), "-".into()));
        let _ = writeln!(
            out,
            "| {} | {msr} | {limit} | {} | {} | {cpu} | {rss} |",
            v.name,
            latencies("publish"),
            latencies("end_to_end")
        );
    }
    out
}

/// The value at percentile `p` of a report's distribution: the first point
/// at or above it.
pub fn at_percentile(d: &[[f64; 2]], p: f64) -> Option<f64> {
    d.iter().find(|point| point[0] >= p).map(|point| point[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentile_is_read_off_the_distribution() {
        let d = [
            [0.0, 0.1],
            [50.0, 1.0],
            [90.0, 2.0],
            [96.875, 3.0],
            [100.0, 9.0],
        ];
        assert_eq!(at_percentile(&d, 50.0), Some(1.0));
        assert_eq!(at_percentile(&d, 95.0), Some(3.0));
        assert_eq!(at_percentile(&[], 95.0), None);
    }

    #[test]
    fn a_row_says_the_rate_the_figures_and_what_failed_first() {
        let knobs = crate::scenario::Capacity::default();
        let mut report = crate::report::example();
        report.counts.lost = 2;
        let trial = super::super::judge(100.0, true, report, &knobs);
        let row = trial_row(7, &trial);
        assert!(
            row.contains("(confirmation) no: lost: 2 events lost"),
            "{row}"
        );
        assert!(row.trim_start().starts_with("7 "), "{row}");
        // Every column of the row under its header.
        let header = trial_header();
        let columns = header.lines().next().unwrap().split_whitespace().count();
        assert_eq!(columns, 15, "{header}");
        assert!(header.contains("backlog/s") && header.contains("e2e p99"));
    }
}
