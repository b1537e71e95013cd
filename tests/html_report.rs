//! `--report-html` and `harness report`, looked at in a real browser:
//! headless Chromium (Debian's `chromium`) driven by Playwright's
//! `playwright-core` (npm, in a folder of the test's own), with the network
//! off. A fault run's page must load without console errors or requests
//! leaving the file, with every chart present and drawn; a baseline and a
//! sweep of runs at several rates add what they promise.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{harness, text, write};
use serde_json::Value;

const PLAYWRIGHT_CORE_VERSION: &str = "1.64.1";
const CHECK: &str = include_str!("browser/check.mjs");

/// Chromium, from `CHROMIUM` or Debian's package.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    path.exists().then_some(path)
}

/// A folder with `playwright-core` installed and the check script beside
/// it (made once under the build's temporary folder, then reused); None if
/// npm cannot install it.
fn checker() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-check");
    std::fs::create_dir_all(&dir).ok()?;
    let installed = dir.join("node_modules/playwright-core/package.json");
    let version_ok = |p: &Path| {
        std::fs::read_to_string(p)
            .is_ok_and(|t| t.contains(&format!("\"version\": \"{PLAYWRIGHT_CORE_VERSION}\"")))
    };
    if !version_ok(&installed) {
        let ok = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--ignore-scripts",
                "--no-save",
            ])
            .arg(format!("playwright-core@{PLAYWRIGHT_CORE_VERSION}"))
            .current_dir(&dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok || !version_ok(&installed) {
            return None;
        }
    }
    std::fs::write(dir.join("check.mjs"), CHECK).ok()?;
    Some(dir)
}

/// What the page showed in the browser.
fn look(checker: &Path, chromium: &Path, page: &Path, screenshot: &Path) -> Value {
    let output = Command::new("node")
        .arg("check.mjs")
        .arg(page)
        .arg(screenshot)
        .env("CHROMIUM", chromium)
        .current_dir(checker)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output)))
}

fn chart<'a>(seen: &'a Value, id: &str) -> &'a Value {
    seen["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} chart: {seen:#}"))
}

/// The things a person would notice first: errors, anything fetched, a
/// chart missing, empty or squashed, a page that scrolls sideways.
fn assert_sound(seen: &Value, charts: &[&str]) {
    assert_eq!(seen["errors"], Value::Array(vec![]), "{seen:#}");
    assert_eq!(seen["requests"], Value::Array(vec![]), "{seen:#}");
    assert_eq!(seen["scrollsSideways"], false, "{seen:#}");
    for id in charts {
        let c = chart(seen, id);
        assert!(c["width"].as_f64().unwrap() > 600.0, "{id}: {c}");
        assert!(c["height"].as_f64().unwrap() > 150.0, "{id}: {c}");
        assert!(c["drawn"].as_u64().unwrap() >= 1, "{id} draws nothing: {c}");
        assert_eq!(c["noData"], false, "{id}: {c}");
    }
}

const FAULTS: &str = r#"
name = "html report"
[stream]
name = "HTML_REPORT"
subjects = ["html.>"]
storage = "file"
[load]
subject = "html.events"
rate = 50
duration = "8s"
[publish]
timeout = "2s"
max_retries = 5
[publish.backoff]
initial = "250ms"
max = "1s"
[consumer]
durable = "html"
ack_wait = "10s"
processing_timeout = "5s"
dead_letter_subject = "html_dlq.events"
dead_letter_stream = "HTML_REPORT_DLQ"
[drain]
timeout = "30s"
[[faults]]
at = "2s"
kind = "kill"
duration = "1s"
[[faults]]
at = "5s"
kind = "consumer_stall"
duration = "1s"
[criteria]
checks = ["lost == 0", "end_to_end.p99 < 30s"]
"#;

#[test]
fn a_fault_runs_page_shows_everything_in_a_real_browser_offline() {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: no Chromium at /usr/bin/chromium or $CHROMIUM (scripts/install-tools.sh --with-chromium installs it)");
        return;
    };
    let Some(checker) = checker() else {
        eprintln!("skipped: cannot npm install playwright-core@{PLAYWRIGHT_CORE_VERSION} (needs node and npm)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "faults.toml", FAULTS);
    let (page, json) = (dir.path().join("run.html"), dir.path().join("run.json"));
    let output = harness()
        .args(["run", scenario.to_str().unwrap(), "--quiet"])
        .arg("--report-html")
        .arg(&page)
        .arg("--report-json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains(&format!("report: {}", page.display())));

    let shot = dir.path().join("run.png");
    let seen = look(&checker, &chromium, &page, &shot);
    assert_sound(&seen, &["latency", "rates", "backlog", "distribution"]);
    assert_eq!(seen["verdict"], "PASSED", "{seen:#}");
    assert_eq!(seen["title"], "html report · PASSED");
    // Both faults and the drain are shaded on each chart over time.
    for id in ["latency", "rates", "backlog"] {
        assert_eq!(chart(&seen, id)["bands"], 3, "{id}: {seen:#}");
    }
    assert_eq!(chart(&seen, "latency")["lines"], 6);
    assert_eq!(chart(&seen, "distribution")["lines"], 4);
    let tables = &seen["tables"];
    assert_eq!(tables["criteria"], 3, "a header and two criteria: {seen:#}");
    assert_eq!(tables["faults"], 3, "a header and two faults: {seen:#}");
    assert!(tables["accounting"].as_u64().unwrap() > 20);
    assert!(tables["invariants"].as_u64().unwrap() >= 2);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );

    // Read back from JSON with a baseline: dashed lines on every chart.
    let compared = dir.path().join("compared.html");
    let output = harness()
        .arg("report")
        .arg(&json)
        .arg("--baseline")
        .arg(&json)
        .arg("--html")
        .arg(&compared)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let seen = look(
        &checker,
        &chromium,
        &compared,
        &dir.path().join("compared.png"),
    );
    assert_sound(&seen, &["latency", "rates", "backlog", "distribution"]);
    for id in ["latency", "rates", "backlog", "distribution"] {
        assert!(
            chart(&seen, id)["dashed"].as_u64().unwrap() >= 1,
            "{id}: {seen:#}"
        );
    }
    assert_eq!(tables_of(&seen, "criteria"), 3);

    // Runs at three rates (the same run, relabelled): latency against rate,
    // one dot per run and figure, the highest passing rate marked.
    let mut runs = Vec::new();
    for (i, rate) in [25.0, 50.0, 100.0].into_iter().enumerate() {
        let mut report: Value = common::cli::read_json(&json);
        report["rates"]["target"] = rate.into();
        report["rates"]["achieved"] = rate.into();
        report["passed"] = (rate < 100.0).into();
        runs.push(write(
            dir.path(),
            &format!("run{i}.json"),
            &report.to_string(),
        ));
    }
    let sweep = dir.path().join("sweep.html");
    let output = harness()
        .arg("report")
        .args(&runs)
        .arg("--html")
        .arg(&sweep)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let seen = look(&checker, &chromium, &sweep, &dir.path().join("sweep.png"));
    assert_sound(
        &seen,
        &["sweep", "latency", "rates", "backlog", "distribution"],
    );
    let c = chart(&seen, "sweep");
    assert_eq!(c["dots"], 3 * 6, "{c}");
    assert_eq!(c["markers"], 1, "{c}");
    assert_eq!(tables_of(&seen, "runs"), 4);
}

fn tables_of(seen: &Value, id: &str) -> u64 {
    seen["tables"][id].as_u64().unwrap_or(0)
}

/// The check itself can fail: a page that throws and fetches is caught.
#[test]
fn the_browser_check_sees_errors_and_requests() {
    let (Some(chromium), Some(checker)) = (chromium(), checker()) else {
        eprintln!("skipped: no Chromium or no playwright-core (see the test above)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = write(
        dir.path(),
        "broken.html",
        "<!DOCTYPE html><html><body><svg class=\"chart\" data-chart=\"x\"></svg>\
         <img src=\"http://127.0.0.1:9/x.png\"><script>throw new Error('broken')</script></body></html>",
    );
    let seen = look(&checker, &chromium, &page, &dir.path().join("broken.png"));
    assert!(seen["errors"].to_string().contains("broken"), "{seen:#}");
    assert!(
        seen["requests"].to_string().contains("127.0.0.1:9"),
        "{seen:#}"
    );
    assert_eq!(chart(&seen, "x")["drawn"], 0);
}

/// A report that is not one is refused with the file named, exit 2.
#[test]
fn harness_report_refuses_what_is_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.json", "{\"name\": 1}\n");
    let output = harness()
        .arg("report")
        .arg(&bad)
        .arg("--html")
        .arg(dir.path().join("out.html"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("bad.json") && err.contains("not a harness JSON report"),
        "{err}"
    );
    assert!(!dir.path().join("out.html").exists());
}
