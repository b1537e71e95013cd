//! `harness compare` on real run reports: a run against itself, against a
//! run made worse on purpose (a slower simulated consumer), and files it
//! cannot compare.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{harness, read_json, text, write};

fn scenario(processing: &str) -> String {
    format!(
        r#"
name = "compare"
[stream]
name = "COMPARE"
subjects = ["compare.>"]
storage = "memory"
[load]
subject = "compare.events"
rate = 100
duration = "3s"
[load.payload]
kind = "random"
size = "128B"
[consumer]
durable = "compare"
workers = 2
batch = 8
dead_letter_subject = "dlq.compare"
dead_letter_stream = "COMPARE_DLQ"
[consumer.processing]
distribution = "constant"
mean = "{processing}"
[drain]
timeout = "15s"
[criteria]
checks = ["lost == 0"]
"#
    )
}

fn run(dir: &Path, name: &str, processing: &str) -> PathBuf {
    let file = write(dir, &format!("{name}.toml"), &scenario(processing));
    let report = dir.join(format!("{name}.json"));
    let output = harness()
        .args(["run", file.to_str().unwrap(), "--quiet", "--report-json"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    report
}

fn compare(a: &Path, b: &Path, extra: &[&str]) -> std::process::Output {
    harness()
        .args(["compare", a.to_str().unwrap(), b.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_slower_consumer_regresses_and_a_report_against_itself_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let base = run(dir.path(), "base", "1ms");
    // 2 workers x 25 ms serve 80 events/s: at 100/s events queue.
    let worse = run(dir.path(), "worse", "25ms");

    let same = compare(&base, &base, &[]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    assert!(text(&same).contains("no regression"));

    // Different scenarios: not comparable unless the caller says so.
    let refused = compare(&base, &worse, &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("fingerprint differs: scenario_hash"),
        "{}",
        text(&refused)
    );

    let json = dir.path().join("comparison.json");
    let regressed = compare(
        &base,
        &worse,
        &["--allow-mismatch", "--json", json.to_str().unwrap()],
    );
    assert_eq!(regressed.status.code(), Some(1), "{}", text(&regressed));
    let c = read_json(&json);
    let row = |figure: &str| {
        c["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["figure"] == figure)
            .unwrap_or_else(|| panic!("no row {figure}: {c:#}"))
            .clone()
    };
    // Events waited for the slow consumer: end_to_end is worse across the
    // range; publishing was not touched.
    for p in ["p50", "p99"] {
        let r = row(&format!("end_to_end {p}"));
        assert_eq!(r["regressed"], true, "{r:#}");
        assert!(r["current"].as_f64() > r["baseline"].as_f64());
    }
    assert_eq!(row("lost")["regressed"], false);
    assert_eq!(row("achieved rate")["regressed"], false);
    assert_eq!(c["regressed"], true);
    assert!(text(&regressed).contains("REGRESSED"));

    // The other way round end_to_end improved. (Publish latency of two
    // separate runs differs by noise alone; its tail is not asserted.)
    let reverse_json = dir.path().join("reverse.json");
    let reverse = compare(
        &worse,
        &base,
        &["--allow-mismatch", "--json", reverse_json.to_str().unwrap()],
    );
    assert!(
        matches!(reverse.status.code(), Some(0 | 1)),
        "{}",
        text(&reverse)
    );
    let reverse = read_json(&reverse_json);
    for r in reverse["rows"].as_array().unwrap() {
        if r["figure"].as_str().unwrap().starts_with("end_to_end") {
            assert_eq!(r["regressed"], false, "{r:#}");
            assert!(r["change"].as_f64().unwrap() < 0.0, "{r:#}");
        }
    }

    // A tolerance wide enough forgives it.
    let forgiven = compare(
        &base,
        &worse,
        &["--allow-mismatch", "--latency-floor", "10m"],
    );
    assert_eq!(forgiven.status.code(), Some(0), "{}", text(&forgiven));
}

#[test]
fn files_that_are_not_comparable_exit_2_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let junk = write(dir.path(), "junk.json", "{\"kind\": \"configurations\"}");
    let missing = dir.path().join("missing.json");
    let output = compare(&junk, &missing, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("junk.json"), "{}", text(&output));
    let output = compare(&missing, &missing, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("missing.json"), "{}", text(&output));
    let output = harness()
        .args(["compare", "a.json", "b.json", "--latency-tolerance", "-1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
