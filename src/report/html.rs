//! The report as one self-contained HTML page (`--report-html`): the
//! verdict with the criteria and the accounting, the run over time with
//! its fault windows shaded, each latency's whole distribution on a
//! "nines" axis, the faults with their recovery, the target and the
//! configuration. Everything is inline (styles and SVG charts, no script,
//! no fonts, no network), so the file opens offline from a CI artifact.
//!
//! Optionally a baseline run is overlaid (dashed), and several runs of one
//! scenario at different rates are drawn as latency against rate.

use std::fmt::Write;

use super::chart::{label, Axis, Band, Chart, Line, Marker, Scale, Unit};
use super::{escape, Report};
use crate::criteria;

/// What a page shows.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// The run the page is about.
    pub report: &'a Report,
    /// A run to compare with, drawn dashed behind this one.
    pub baseline: Option<&'a Report>,
    /// Runs at several rates, drawn as latency against rate when there are
    /// two or more (`report` is usually one of them).
    pub sweep: &'a [Report],
}

const PUBLISH: [&str; 3] = ["#9ecae1", "#3182bd", "#08306b"];
const END_TO_END: [&str; 3] = ["#fdae6b", "#e6550d", "#7f2704"];
const FAULT_FILL: &str = "rgba(214, 39, 40, 0.13)";
const DRAIN_FILL: &str = "rgba(120, 120, 120, 0.10)";

const STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222; margin: 0 auto; max-width: 1040px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; }
.verdict { display: inline-block; font-weight: 700; padding: 2px 10px; border-radius: 4px; color: #fff; margin-right: 8px; }
.passed { background: #2a7d2e; } .failed { background: #c62828; } .interrupted { background: #b26a00; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid #eee; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.ok { color: #2a7d2e; font-weight: 600; } td.bad { color: #c62828; font-weight: 600; }
svg.chart { width: 100%; height: auto; display: block; margin: 4px 0 12px; }
pre { background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 12px; }
.warn { color: #8a4b00; }
.note { color: #666; font-size: 13px; }
";

/// The whole page.
pub fn render(page: &Page) -> String {
    let r = page.report;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · {}</title><style>{STYLE}</style></head><body>\n",
        escape(&r.scenario),
        verdict(r).1
    );
    header(&mut out, page);
    if page.sweep.len() >= 2 {
        sweep(&mut out, page.sweep);
    }
    criteria_table(&mut out, page);
    over_time(&mut out, page);
    distributions(&mut out, page);
    accounting(&mut out, r);
    faults(&mut out, r);
    target_and_config(&mut out, r);
    out.push_str("</body></html>\n");
    out
}

fn verdict(r: &Report) -> (&'static str, &'static str) {
    if r.interrupted {
        ("interrupted", "INTERRUPTED")
    } else if r.passed {
        ("passed", "PASSED")
    } else {
        ("failed", "FAILED")
    }
}

fn header(out: &mut String, page: &Page) {
    let r = page.report;
    let (class, word) = verdict(r);
    let _ = write!(
        out,
        "<h1><span class=\"verdict {class}\" id=\"verdict\">{word}</span>{}</h1>\
         <div class=\"meta\">run <code>{}</code> · started {} · load {} · whole run {} · \
         target {:.2}/s, achieved {:.2}/s · {} · harness {}</div>",
        escape(&r.scenario),
        escape(&r.run_id),
        escape(&r.started_at),
        label(Unit::Clock, r.load_secs),
        label(Unit::Clock, r.duration_secs),
        r.rates.target,
        r.rates.achieved,
        escape(&r.scenario_file),
        escape(&r.harness_version),
    );
    if let Some(b) = page.baseline {
        let _ = write!(
            out,
            "<p class=\"meta\">Baseline (dashed): run <code>{}</code> of {}, started {}, {}.</p>",
            escape(&b.run_id),
            escape(&b.scenario),
            escape(&b.started_at),
            verdict(b).1
        );
    }
    let mut notes: Vec<String> = Vec::new();
    if let Some(by) = &r.aborted_by {
        notes.push(format!("aborted by <code>{}</code>", escape(by)));
    }
    if r.interrupted {
        notes.push("interrupted: the report is partial".into());
    }
    if r.saturated {
        notes.push(
            "the harness could not hold its own schedule: its figures understate the target's"
                .into(),
        );
    }
    if let Some(s) = r.consumer_stuck {
        notes.push(format!(
            "the consumer was stuck for {:.1} s from {} with {} messages waiting",
            s.for_secs,
            label(Unit::Clock, s.since_secs),
            s.pending
        ));
    }
    notes.extend(r.panics.iter().map(|p| format!("panicked: {}", escape(p))));
    notes.extend(r.warnings.iter().map(|w| escape(w)));
    if !notes.is_empty() {
        out.push_str("<ul class=\"warn\" id=\"warnings\">");
        for n in notes {
            let _ = write!(out, "<li>{n}</li>");
        }
        out.push_str("</ul>\n");
    }
}

fn criteria_table(out: &mut String, page: &Page) {
    let r = page.report;
    out.push_str("<h2>Criteria</h2>\n");
    if r.criteria.is_empty() {
        out.push_str("<p class=\"note\">The scenario sets no criteria.</p>\n");
        return;
    }
    let _ = write!(
        out,
        "<table id=\"criteria\"><tr><th>figure</th><th>limit</th><th>actual</th>{}<th>verdict</th></tr>",
        if page.baseline.is_some() { "<th>baseline</th>" } else { "" }
    );
    let show = |name: &str, actual: Option<f64>| {
        actual.map_or("not available".to_string(), |a| criteria::show(name, a))
    };
    for c in &r.criteria {
        let limit = c
            .expression
            .strip_prefix(&c.name)
            .unwrap_or(&c.expression)
            .trim();
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td class=\"n\">{}</td>",
            escape(&c.name),
            escape(limit),
            escape(&show(&c.name, c.actual))
        );
        if let Some(b) = page.baseline {
            let before = b
                .criteria
                .iter()
                .find(|o| o.name == c.name)
                .and_then(|o| o.actual);
            let _ = write!(
                out,
                "<td class=\"n\">{}</td>",
                escape(&show(&c.name, before))
            );
        }
        let _ = write!(
            out,
            "<td class=\"{}\">{}</td></tr>",
            if c.passed { "ok" } else { "bad" },
            if c.passed { "pass" } else { "FAIL" }
        );
    }
    out.push_str("</table>\n");
}

/// The fault windows and the drain, as shaded bands on the time axis.
fn bands(r: &Report) -> Vec<Band> {
    let end = r.duration_secs.max(r.load_secs);
    let mut bands: Vec<Band> = r
        .series
        .phases
        .iter()
        .filter(|p| p.name == "drain")
        .map(|p| Band {
            start: p.start_secs,
            end: p.end_secs.unwrap_or(end),
            label: "drain".into(),
            fill: DRAIN_FILL,
        })
        .collect();
    bands.extend(r.series.faults.iter().map(|f| Band {
        start: f.start_secs,
        end: f.end_secs.unwrap_or(end),
        label: f.name.clone(),
        fill: FAULT_FILL,
    }));
    bands
}

fn time_axis() -> Axis {
    Axis {
        label: "time since the load started".into(),
        scale: Scale::Linear,
        unit: Unit::Clock,
    }
}

fn latency_axis() -> Axis {
    Axis {
        label: "latency (log)".into(),
        scale: Scale::Log,
        unit: Unit::Milliseconds,
    }
}

fn line(label: impl Into<String>, colour: &'static str, points: Vec<(f64, f64)>) -> Line {
    Line {
        label: label.into(),
        points,
        colour,
        dashed: false,
        dots: false,
    }
}

fn dashed(mut l: Line) -> Line {
    l.dashed = true;
    l
}

/// One latency's interval figure over time.
fn latency_points(
    r: &Report,
    which: &str,
    stat: fn(&crate::series::IntervalLatency) -> f64,
) -> Vec<(f64, f64)> {
    r.series
        .points
        .iter()
        .map(|p| {
            let v = p
                .latency
                .get(which)
                .filter(|l| l.count > 0)
                .map_or(f64::NAN, stat);
            (p.t_secs, v)
        })
        .collect()
}

fn over_time(out: &mut String, page: &Page) {
    let r = page.report;
    let _ = write!(
        out,
        "<h2>Over time</h2>\n<p class=\"note\">Latency from each event's intended send time, per {} \
         interval. Shaded: fault windows (red) and the drain (grey).</p>\n",
        if r.series.interval_secs >= 1.0 {
            format!("{:.0} s", r.series.interval_secs)
        } else {
            format!("{} s", r.series.interval_secs)
        }
    );
    type Stat = fn(&crate::series::IntervalLatency) -> f64;
    // The maximum first, so that on a long, spiky run it stays behind
    // the percentiles instead of hiding them.
    let stats: [(&str, Stat); 3] = [("max", |l| l.max), ("p99", |l| l.p99), ("p50", |l| l.p50)];
    let mut lines = Vec::new();
    for (which, colours) in [("publish", PUBLISH), ("end_to_end", END_TO_END)] {
        for ((name, stat), colour) in stats.iter().zip(colours.iter().rev()) {
            lines.push(line(
                format!("{which} {name}"),
                colour,
                latency_points(r, which, *stat),
            ));
        }
    }
    if let Some(b) = page.baseline {
        lines.push(dashed(line(
            "baseline publish p99",
            PUBLISH[1],
            latency_points(b, "publish", |l| l.p99),
        )));
        lines.push(dashed(line(
            "baseline end_to_end p99",
            END_TO_END[1],
            latency_points(b, "end_to_end", |l| l.p99),
        )));
    }
    let latency = Chart {
        id: "latency",
        x: time_axis(),
        y: latency_axis(),
        lines,
        bands: bands(r),
        markers: Vec::new(),
    };
    out.push_str(&latency.svg());

    let rate = |r: &Report, f: fn(&crate::series::Point) -> f64| -> Vec<(f64, f64)> {
        r.series.points.iter().map(|p| (p.t_secs, f(p))).collect()
    };
    let mut lines = vec![
        line("target", "#777", rate(r, |p| p.target_rate)),
        line("achieved", "#3182bd", rate(r, |p| p.achieved_rate)),
        line("acknowledged", "#6baed6", rate(r, |p| p.acked_rate)),
        line("processed", "#e6550d", rate(r, |p| p.processed_rate)),
    ];
    if let Some(b) = page.baseline {
        lines.push(dashed(line(
            "baseline processed",
            "#e6550d",
            rate(b, |p| p.processed_rate),
        )));
    }
    let rates = Chart {
        id: "rates",
        x: time_axis(),
        y: Axis {
            label: "events per second".into(),
            scale: Scale::Linear,
            unit: Unit::PerSecond,
        },
        lines,
        bands: bands(r),
        markers: Vec::new(),
    };
    out.push_str(&rates.svg());

    let backlog = |r: &Report| -> Vec<(f64, f64)> {
        r.series
            .points
            .iter()
            .map(|p| (p.t_secs, p.backlog.map_or(f64::NAN, |b| b as f64)))
            .collect()
    };
    let mut lines = vec![
        line("backlog", "#756bb1", backlog(r)),
        line(
            "publishes in flight",
            "#31a354",
            rate(r, |p| p.in_flight as f64),
        ),
    ];
    if let Some(b) = page.baseline {
        lines.push(dashed(line("baseline backlog", "#756bb1", backlog(b))));
    }
    let chart = Chart {
        id: "backlog",
        x: time_axis(),
        y: Axis {
            label: "messages".into(),
            scale: Scale::Linear,
            unit: Unit::Count,
        },
        lines,
        bands: bands(r),
        markers: Vec::new(),
    };
    out.push_str(&chart.svg());
}

fn distributions(out: &mut String, page: &Page) {
    let r = page.report;
    out.push_str(
        "<h2>Latency distribution</h2>\n<p class=\"note\">Every percentile of the whole run, \
         spread by its nines as HdrHistogram plots them.</p>\n",
    );
    const LATENCIES: [(&str, &str); 4] = [
        ("publish", "#3182bd"),
        ("end_to_end", "#e6550d"),
        ("processing", "#31a354"),
        ("schedule_lag", "#756bb1"),
    ];
    let points = |r: &Report, which: &str| -> Vec<(f64, f64)> {
        let count = r.latency.get(which).map_or(0, |s| s.count);
        r.distribution
            .get(which)
            .map(|d| {
                let mut reached = 0f64;
                d.iter()
                    .map(|[p, ms]| {
                        reached = reached.max(top(*p, count));
                        (reached, *ms)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut lines: Vec<Line> = LATENCIES
        .iter()
        .map(|(which, colour)| line(*which, colour, points(r, which)))
        .collect();
    if let Some(b) = page.baseline {
        lines.extend(LATENCIES.iter().take(2).map(|(which, colour)| {
            dashed(line(format!("baseline {which}"), colour, points(b, which)))
        }));
    }
    let chart = Chart {
        id: "distribution",
        x: Axis {
            label: "percentile".into(),
            scale: Scale::Nines,
            unit: Unit::Percentile,
        },
        y: latency_axis(),
        lines,
        bands: Vec::new(),
        markers: Vec::new(),
    };
    out.push_str(&chart.svg());
    out.push_str(
        "<table id=\"latency\"><tr><th>latency</th><th>count</th><th>p50</th><th>p90</th>\
         <th>p99</th><th>p99.9</th><th>max</th></tr>",
    );
    for (name, s) in &r.latency {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td>",
            escape(name),
            s.count
        );
        for v in [s.p50, s.p90, s.p99, s.p999, s.max] {
            let _ = write!(out, "<td class=\"n\">{v:.2} ms</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>\n");
}

/// Where a percentile sits on the nines axis: 100% (the maximum) at the
/// finest percentile `count` samples can tell apart, 1 − 1/count, rather
/// than at the axis's end.
fn top(percentile: f64, count: u64) -> f64 {
    if percentile >= 100.0 && count > 1 {
        100.0 * (1.0 - 1.0 / count as f64)
    } else {
        percentile
    }
}

fn accounting(out: &mut String, r: &Report) {
    let c = &r.counts;
    out.push_str(
        "<h2>Accounting</h2>\n<table id=\"accounting\"><tr><th>count</th><th>events</th></tr>",
    );
    let mut rows: Vec<(&str, u64)> = vec![
        ("scheduled", c.scheduled),
        ("published", c.published),
        ("deduplicated", c.deduplicated),
        ("publish_failed", c.publish_failed),
        ("indeterminate", c.indeterminate),
        ("not_sent", c.not_sent),
        ("processed", c.processed),
        ("dead_lettered", c.dead_lettered),
        ("pending", c.pending),
        ("lost", c.lost),
        ("lost_mid_run", c.lost_mid_run),
        ("lost_tail", c.lost_tail),
        ("recovered", c.recovered),
        ("unexpected", c.unexpected),
        ("collisions", c.collisions),
        ("intended_out_of_range", c.intended_out_of_range),
        ("duplicates", c.duplicates),
        ("stream_duplicates", c.stream_duplicates),
        ("redelivered", c.redelivered),
        ("exhausted", c.exhausted),
        ("retries", c.retries),
        ("held_back", c.held_back),
        ("garbage_sent", r.garbage_sent),
    ];
    if r.has_output_contract() {
        rows.extend([
            ("outputs", c.outputs),
            ("output_missing", c.output_missing),
            ("output_duplicates", c.output_duplicates),
            ("output_corrupt", c.output_corrupt),
        ]);
    }
    for (name, value) in rows {
        let bad = value > 0
            && matches!(
                name,
                "lost"
                    | "lost_mid_run"
                    | "lost_tail"
                    | "collisions"
                    | "output_missing"
                    | "output_corrupt"
            );
        let _ = write!(
            out,
            "<tr><td>{name}</td><td class=\"n{}\">{value}</td></tr>",
            if bad { " bad" } else { "" }
        );
    }
    out.push_str("</table>\n<table id=\"invariants\"><tr><th>invariant</th><th>left</th><th>right</th><th></th></tr>");
    for i in &c.invariants {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"{}\">{}</td></tr>",
            escape(&i.name),
            i.left,
            i.right,
            if i.holds { "ok" } else { "bad" },
            if i.holds { "holds" } else { "BROKEN" }
        );
    }
    out.push_str("</table>\n");
}

fn faults(out: &mut String, r: &Report) {
    out.push_str("<h2>Faults</h2>\n");
    if r.faults.is_empty() {
        out.push_str("<p class=\"note\">No faults were injected.</p>\n");
        return;
    }
    out.push_str(
        "<table id=\"faults\"><tr><th>#</th><th>fault</th><th>node</th><th>from</th><th>undone</th>\
         <th>recovered after</th><th>publish failed</th><th>indeterminate</th><th>error</th></tr>",
    );
    for (i, f) in r.faults.iter().enumerate() {
        let _ = write!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            i + 1,
            f.kind.as_str(),
            f.node.map_or(String::new(), |n| n.to_string()),
            label(Unit::Clock, f.started_secs),
            f.recovered_secs.map_or("never".into(), |s| label(Unit::Clock, s)),
            if f.cost.recovery_secs.is_none() { " bad" } else { "" },
            f.cost.recovery_secs.map_or("not back".into(), |s| format!("{s:.1} s")),
            f.cost.publish_failed,
            f.cost.indeterminate,
            f.error.as_deref().map(escape).unwrap_or_default(),
        );
    }
    out.push_str("</table>\n");
}

fn target_and_config(out: &mut String, r: &Report) {
    let t = &r.target;
    let _ = write!(
        out,
        "<h2>Target</h2>\n<table id=\"target\"><tr><td>URL</td><td><code>{}</code></td></tr>\
         <tr><td>server</td><td>{}, {} node{}</td></tr>",
        escape(&t.url),
        if t.embedded { "embedded" } else { "external" },
        t.nodes,
        if t.nodes == 1 { "" } else { "s" }
    );
    if let Some(p) = &t.proxy {
        let _ = write!(
            out,
            "<tr><td>fault proxy</td><td><code>{}</code>: {} bytes dropped, {} connections reset</td></tr>",
            escape(&p.url),
            p.dropped_bytes,
            p.resets
        );
    }
    let c = &r.consumer;
    let _ = write!(
        out,
        "<tr><td>consumer at the end</td><td>{} pending, {} waiting for acks, {} redelivered, \
         {} dead-letter copies, acks {}</td></tr></table>",
        c.num_pending,
        c.num_ack_pending,
        c.num_redelivered,
        c.dead_letter_copies,
        if c.acks_confirmed {
            "all confirmed"
        } else {
            "not all confirmed"
        }
    );
    let config = serde_json::to_string_pretty(&r.config).unwrap_or_default();
    let _ = write!(
        out,
        "<h2>Configuration</h2>\n<p class=\"note\">The scenario as run: file values, defaults and \
         overrides; secrets redacted.</p><pre id=\"config\">{}</pre>\n",
        escape(&config)
    );
}

/// Several runs of one scenario as latency against rate, with the highest
/// rate that passed marked, and a row per run.
fn sweep(out: &mut String, runs: &[Report]) {
    let mut runs: Vec<&Report> = runs.iter().collect();
    runs.sort_by(|a, b| a.rates.target.total_cmp(&b.rates.target));
    out.push_str(
        "<h2>Latency against rate</h2>\n<p class=\"note\">One point per run at its achieved rate; \
         the marked rate is the highest one whose run passed.</p>\n",
    );
    let highest = runs
        .iter()
        .filter(|r| r.passed)
        .map(|r| r.rates.achieved)
        .reduce(f64::max);
    let points = |which: &str, stat: fn(&crate::stats::Summary) -> f64| -> Vec<(f64, f64)> {
        runs.iter()
            .map(|r| {
                (
                    r.rates.achieved,
                    r.latency.get(which).map_or(f64::NAN, stat),
                )
            })
            .collect()
    };
    type Stat = fn(&crate::stats::Summary) -> f64;
    let stats: [(&str, Stat); 3] = [
        ("p50", |s| s.p50),
        ("p99", |s| s.p99),
        ("p99.9", |s| s.p999),
    ];
    let mut lines = Vec::new();
    for (which, colours) in [("publish", PUBLISH), ("end_to_end", END_TO_END)] {
        for ((name, stat), colour) in stats.iter().zip(colours) {
            let mut l = line(format!("{which} {name}"), colour, points(which, *stat));
            l.dots = true;
            lines.push(l);
        }
    }
    let chart = Chart {
        id: "sweep",
        x: Axis {
            label: "achieved rate".into(),
            scale: Scale::Linear,
            unit: Unit::PerSecond,
        },
        y: latency_axis(),
        lines,
        bands: Vec::new(),
        markers: highest
            .map(|at| Marker {
                at,
                label: format!("highest passing {}", label(Unit::PerSecond, at)),
            })
            .into_iter()
            .collect(),
    };
    out.push_str(&chart.svg());
    out.push_str(
        "<table id=\"runs\"><tr><th>target</th><th>achieved</th><th>publish p50 / p99 / p99.9</th>\
         <th>end_to_end p50 / p99 / p99.9</th><th>lost</th><th>verdict</th></tr>",
    );
    for r in runs {
        let triple = |which: &str| {
            r.latency.get(which).map_or("-".into(), |s| {
                format!("{:.2} / {:.2} / {:.2} ms", s.p50, s.p99, s.p999)
            })
        };
        let (class, word) = verdict(r);
        let _ = write!(
            out,
            "<tr><td class=\"n\">{:.2}/s</td><td class=\"n\">{:.2}/s</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"{}\">{word}</td></tr>",
            r.rates.target,
            r.rates.achieved,
            triple("publish"),
            triple("end_to_end"),
            r.counts.lost,
            if class == "passed" { "ok" } else { "bad" },
        );
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(report: &Report) -> String {
        render(&Page {
            report,
            baseline: None,
            sweep: &[],
        })
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_what_it_quotes() {
        let html = page(&super::super::example());
        assert!(html.starts_with("<!DOCTYPE html>"));
        for outside in ["<script", "src=", "href=", "url(", "@import"] {
            assert!(
                !html.contains(outside),
                "{outside} would reach outside the file"
            );
        }
        assert!(html.contains("example &lt;&amp;&gt;"));
        assert!(!html.contains("example <&>"));
    }

    #[test]
    fn the_page_shows_verdict_criteria_accounting_charts_and_faults() {
        let html = page(&super::super::example());
        assert!(html.contains(r#"<span class="verdict passed" id="verdict">PASSED</span>"#));
        // Actual against limit, with units.
        assert!(
            html.contains("<td><code>&lt; 200ms</code></td><td class=\"n\">4.00 ms</td>"),
            "{html}"
        );
        assert!(html.contains("<td>scheduled</td><td class=\"n\">6000</td>"));
        assert!(html.contains(">holds</td>"));
        for chart in ["latency", "rates", "backlog", "distribution"] {
            assert!(
                html.contains(&format!(r#"data-chart="{chart}""#)),
                "{chart} missing"
            );
        }
        assert!(!html.contains(r#"data-chart="sweep""#));
        // The fault: shaded over its window, and in the table with its recovery.
        assert_eq!(
            html.matches(r#"class="band""#).count(),
            3 * 2,
            "a fault and the drain on each time chart"
        );
        assert!(html.contains("<td>kill</td><td class=\"n\">1</td><td class=\"n\">0:20</td><td class=\"n\">0:30</td><td class=\"n\">3.5 s</td>"));
        assert!(!html.contains("no data"));
    }

    #[test]
    fn a_failed_run_says_why_at_the_top() {
        let mut r = super::super::example();
        r.passed = false;
        r.criteria[0].passed = false;
        r.criteria[0].actual = Some(250.0);
        r.counts.lost = 3;
        r.warnings.push("3 events lost".into());
        let html = page(&r);
        assert!(html.contains(">FAILED</span>"));
        assert!(html.contains("<td class=\"bad\">FAIL</td>"));
        assert!(html.contains("<td>lost</td><td class=\"n bad\">3</td>"));
        assert!(html.contains("<li>3 events lost</li>"));
    }

    #[test]
    fn a_baseline_is_drawn_dashed_and_its_figures_sit_beside_the_run() {
        let run = super::super::example();
        let mut base = super::super::example();
        base.run_id = "rbase".into();
        base.criteria[0].actual = Some(3.0);
        let html = render(&Page {
            report: &run,
            baseline: Some(&base),
            sweep: &[],
        });
        assert!(html.contains("<code>rbase</code>"));
        assert!(html.contains("<th>baseline</th>"));
        assert!(html.contains("<td class=\"n\">4.00 ms</td><td class=\"n\">3.00 ms</td>"));
        assert!(html.contains(r#"data-label="baseline end_to_end p99""#));
        assert!(html.contains("stroke-dasharray=\"6 4\""));
    }

    #[test]
    fn runs_at_several_rates_draw_latency_against_rate_with_the_highest_pass_marked() {
        let runs: Vec<Report> = [100.0, 200.0, 400.0]
            .into_iter()
            .map(|rate| {
                let mut r = super::super::example();
                r.rates.target = rate;
                r.rates.achieved = rate * 0.99;
                r.passed = rate < 400.0;
                r
            })
            .collect();
        let html = render(&Page {
            report: &runs[1],
            baseline: None,
            sweep: &runs,
        });
        assert!(html.contains(r#"data-chart="sweep""#));
        assert!(html.contains("highest passing 198/s"), "{html}");
        assert_eq!(html.matches("<td class=\"bad\">FAILED</td>").count(), 1);
    }

    #[test]
    fn an_hour_of_points_and_a_hundred_faults_stay_a_modest_page() {
        let mut r = super::super::example();
        let template = r.series.points[0].clone();
        r.series.points = (1..=3600)
            .map(|t| crate::series::Point {
                t_secs: t as f64,
                ..template.clone()
            })
            .collect();
        r.series.faults = (0..100)
            .map(|i| crate::series::Mark {
                name: "consumer_stall".into(),
                start_secs: i as f64 * 36.0,
                end_secs: Some(i as f64 * 36.0 + 5.0),
            })
            .collect();
        r.faults = (0..100).map(|_| r.faults[0].clone()).collect();
        let html = page(&r);
        assert!(html.len() < 3_000_000, "{} bytes", html.len());
        assert_eq!(
            html.matches("<tr><td class=\"n\">").count(),
            100,
            "a row per fault"
        );
    }
}
