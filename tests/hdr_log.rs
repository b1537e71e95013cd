//! `--hdr-log DIR`: the interval logs are read back by HdrHistogram's own
//! Python package (PyPI `hdrhistogram`, in a virtualenv of the test's own),
//! and the whole run's count and p99 from them match the JSON report.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{harness, text, write};

const HDRHISTOGRAM_VERSION: &str = "0.10.8";

/// A Python with the `hdrh` package, in a virtualenv under the build's
/// temporary folder (made once, then reused); None if it cannot be made.
fn python_with_hdrh() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hdrh-venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import hdrh.log"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready(&python) {
        return Some(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .is_ok_and(|o| o.status.success());
    let installed = made
        && Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(format!("hdrhistogram=={HDRHISTOGRAM_VERSION}"))
            .output()
            .is_ok_and(|o| o.status.success());
    (installed && ready(&python)).then_some(python)
}

const READ: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
out = {}
for name in ["publish", "publish_attempt", "end_to_end", "processing", "schedule_lag"]:
    total = HdrHistogram(1, 3600000000, 3)
    reader = HistogramLogReader(f"{sys.argv[1]}/{name}.hlog", HdrHistogram(1, 3600000000, 3))
    intervals = 0
    while reader.add_next_interval_histogram(total) is not None:
        intervals += 1
    out[name] = {"intervals": intervals, "count": total.get_total_count(),
                 "p99": total.get_value_at_percentile(99) / 1000.0}
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdrhistograms_own_reader_agrees_with_the_report() {
    let Some(python) = python_with_hdrh() else {
        eprintln!(
            "skipped: cannot make a virtualenv with hdrhistogram=={HDRHISTOGRAM_VERSION} from PyPI"
        );
        return;
    };
    let server = common::NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.toml",
        "[load]\nrate = 50\nduration = \"3s\"\n[consumer.processing]\nmean = \"2ms\"\n",
    );
    let logs = dir.path().join("hlog");
    let report = dir.path().join("report.json");
    let output = harness()
        .args(["run", file.to_str().unwrap(), "--nats-url", &server.url()])
        .arg("--hdr-log")
        .arg(&logs)
        .arg("--report-json")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let head = std::fs::read_to_string(logs.join("end_to_end.hlog")).unwrap();
    for header in [
        "#[Histogram log format version 1.3]",
        "#[StartTime: ",
        "#[BaseTime: ",
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"",
        "Tag=end_to_end,",
    ] {
        assert!(head.contains(header), "{header} missing:\n{head}");
    }
    let read = Command::new(&python)
        .args(["-c", READ])
        .arg(&logs)
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", text(&read));
    let decoded: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    let json = common::cli::read_json(&report);
    for (name, latency) in json["latency"].as_object().unwrap() {
        let ours = latency["count"].as_u64().unwrap();
        assert!(ours > 0, "{name}");
        assert_eq!(
            decoded[name]["count"].as_u64(),
            Some(ours),
            "{name}: {decoded}"
        );
        assert!(
            decoded[name]["intervals"].as_u64().unwrap() >= 3,
            "{name}: {decoded}"
        );
        let (p99, theirs) = (
            latency["p99"].as_f64().unwrap(),
            decoded[name]["p99"].as_f64().unwrap(),
        );
        // Within HDR's precision: 3 significant digits.
        assert!(
            (p99 - theirs).abs() <= p99 * 0.001 + 0.001,
            "{name}: {p99} vs {theirs}"
        );
    }
}
