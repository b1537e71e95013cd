//! The report as JUnit XML (`--report-junit`), for CI systems that show
//! test results: one test suite per run, one test case per criterion, per
//! accounting invariant, and for the run itself (completed, consumer never
//! stuck, a service the harness ran never exited on its own), each failing
//! as the verdict does. The terminal summary rides along as the suite's
//! system-out.

use std::fmt::Write;

use super::{escape, summary, Report};

/// One test case: its class, its name, and the failure message if it failed.
struct Case {
    class: &'static str,
    name: String,
    failure: Option<String>,
}

fn cases(report: &Report) -> Vec<Case> {
    let mut cases = Vec::new();
    for c in &report.criteria {
        let actual = c.actual.map_or("not available".to_string(), |a| {
            crate::criteria::show(&c.name, a)
        });
        cases.push(Case {
            class: "criteria",
            name: c.expression.clone(),
            failure: (!c.passed).then(|| format!("actual {actual}")),
        });
    }
    for i in &report.counts.invariants {
        cases.push(Case {
            class: "invariants",
            name: i.name.clone(),
            failure: (!i.holds).then(|| format!("{} vs {}", i.left, i.right)),
        });
    }
    let stopped = match (report.interrupted, &report.aborted_by) {
        (true, _) => Some("interrupted: the report is partial".to_string()),
        (false, Some(expression)) => Some(format!("aborted by `{expression}`")),
        _ => None,
    };
    cases.push(Case {
        class: "run",
        name: "the run completed".into(),
        failure: stopped,
    });
    cases.push(Case {
        class: "run",
        name: "no task of the harness panicked".into(),
        failure: (!report.panics.is_empty()).then(|| report.panics.join("; ")),
    });
    cases.push(Case {
        class: "run",
        name: "the consumer never got stuck".into(),
        failure: report.consumer_stuck.map(|s| {
            format!(
                "stuck for {:.1} s from {:.1} s with {} messages waiting",
                s.for_secs, s.since_secs, s.pending
            )
        }),
    });
    if let Some(merged) = &report.merged {
        cases.push(Case {
            class: "run",
            name: format!("every one of the {} shards merged, once", merged.count),
            failure: (!merged.problems.is_empty()).then(|| merged.problems.join("; ")),
        });
    }
    if report.consumer.service_log.is_some() {
        let exits = &report.consumer.service_exits;
        cases.push(Case {
            class: "run",
            name: "the service under test never exited on its own".into(),
            failure: (!exits.is_empty()).then(|| exits.join("; ")),
        });
    }
    cases
}

/// The report as a JUnit XML document.
pub fn render(report: &Report) -> String {
    let cases = cases(report);
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let suite = escape(&report.scenario);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"harness\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
        cases.len(),
        report.duration_secs
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
        cases.len(),
        report.duration_secs,
        escape(&report.started_at)
    );
    let _ = writeln!(out, "    <properties>");
    for (name, value) in [
        ("run_id", report.run_id.as_str()),
        ("scenario_file", report.scenario_file.as_str()),
        ("harness_version", report.harness_version.as_str()),
        ("target", report.target.url.as_str()),
    ] {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(value)
        );
    }
    let _ = writeln!(out, "    </properties>");
    for case in &cases {
        let _ = write!(
            out,
            "    <testcase classname=\"harness.{suite}.{}\" name=\"{}\" time=\"0\"",
            case.class,
            escape(&case.name)
        );
        match &case.failure {
            None => out.push_str("/>\n"),
            Some(message) => {
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"{}\" message=\"{}\"/>\n    </testcase>",
                    case.class,
                    escape(message)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "    <system-out>{}</system-out>",
        escape(&summary::render(report))
    );
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(
            escape("p99 < 5ms & \"x\" > 'y'\u{1}"),
            "p99 &lt; 5ms &amp; &quot;x&quot; &gt; &apos;y&apos;\u{FFFD}"
        );
        assert_eq!(escape("line\nnext"), "line\nnext");
    }
}
