//! A run spread over shards, proven on one machine: three `harness run
//! --shard K/3` processes against one server, started together with
//! `--start-at`, then `harness merge`. The merged report is checked against
//! the shards' own (counts add up, percentiles are those of one histogram
//! of every sample), against one process running the whole schedule, and
//! against the stream itself (messages deleted mid-run are exactly the lost
//! ones, across shards).

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, SystemTime};

use async_nats::jetstream;
use common::cli::{harness, text, wait_exit, write};
use common::NatsServer;
use harness::report::Report;
use harness::stats::Latency;

const SCENARIO: &str = r#"
name = "shards"
[stream]
name = "SHARDS"
subjects = ["shards.>"]
storage = "memory"
[load]
subject = "shards.events"
rate = 1500
duration = "3s"
seed = 11
[consumer]
durable = "shards"
workers = 2
batch = 128
max_ack_pending = -1
dead_letter_subject = "shards_dlq.events"
dead_letter_stream = "SHARDS_DLQ"
[consumer.processing]
mean = "0s"
[drain]
timeout = "30s"
[criteria]
checks = ["lost == 0", "pending == 0", "end_to_end.p99 < 2s"]
"#;

/// An RFC 3339 time `secs` from now: long enough for three processes to
/// connect and provision on a busy two-core machine.
fn soon(secs: u64) -> String {
    humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(secs)).to_string()
}

/// Runs three shards of `file` against the server at `url`, started
/// together, and waits for them (blocking): their report paths.
fn run_shards(dir: &Path, file: &Path, url: &str, run_id: &str) -> Vec<PathBuf> {
    let start_at = soon(4);
    let reports: Vec<PathBuf> = (0..3)
        .map(|k| dir.join(format!("{run_id}-{k}.json")))
        .collect();
    let children: Vec<Child> = reports
        .iter()
        .enumerate()
        .map(|(k, report)| {
            harness()
                .arg("run")
                .arg(file)
                .args(["--nats-url", url, "--run-id", run_id, "-q"])
                .args(["--shard", &format!("{k}/3"), "--start-at", &start_at])
                .arg("--report-json")
                .arg(report)
                .arg("--metrics-out")
                .arg(report.with_extension("prom"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("harness starts")
        })
        .collect();
    for child in children {
        let output = wait_exit(child, Duration::from_secs(90));
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{}",
            text(&output)
        );
    }
    reports
}

fn merge(reports: &[PathBuf], into: &Path) -> (std::process::Output, Report) {
    let output = harness()
        .arg("merge")
        .args(reports)
        .arg("--report-json")
        .arg(into)
        .output()
        .expect("harness merge runs");
    let merged = Report::read_json(into).unwrap_or_else(|e| panic!("{e}\n{}", text(&output)));
    (output, merged)
}

fn read(path: &Path) -> Report {
    Report::read_json(path).unwrap_or_else(|e| panic!("{e}"))
}

/// One histogram of every shard's samples of `which`.
fn all_samples(shards: &[Report], which: Latency) -> harness::stats::Summary {
    let mut all = harness::stats::new_histogram();
    for shard in shards {
        let h = harness::series::decode_text(&shard.histograms[which.name()]).expect("decodes");
        all.add(h).unwrap();
    }
    harness::stats::Summary::of(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_merge_into_the_verdict_of_one_process() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "shards.toml", SCENARIO);
    let paths = run_shards(dir.path(), &file, &server.url(), "sh1");
    let shards: Vec<Report> = paths.iter().map(|p| read(p)).collect();
    let (output, merged) = merge(&paths, &dir.path().join("merged.json"));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // Each shard had its third of the schedule, on time.
    let scheduled: Vec<u64> = shards.iter().map(|s| s.counts.scheduled).collect();
    assert_eq!(scheduled, vec![1500, 1500, 1500]);
    for (s, path) in shards.iter().zip(&paths) {
        let info = s.shard.as_ref().unwrap();
        assert!(info.late_secs < 1.0, "{info:?}");
        // Every series of a shard names it.
        let metrics = std::fs::read_to_string(path.with_extension("prom")).unwrap();
        let series: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("harness_"))
            .collect();
        assert!(!series.is_empty());
        let label = format!("shard=\"{}\"", info.index);
        assert!(series.iter().all(|l| l.contains(&label)), "{metrics}");
    }
    // The merged counts are the shards' sums.
    let sum = |f: fn(&Report) -> u64| shards.iter().map(f).sum::<u64>();
    let c = &merged.counts;
    assert_eq!(c.scheduled, sum(|r| r.counts.scheduled));
    assert_eq!(c.published, sum(|r| r.counts.published));
    assert_eq!(c.processed, sum(|r| r.counts.processed));
    assert_eq!(c.redelivered, sum(|r| r.counts.redelivered));
    assert_eq!(c.lost + c.pending, 0, "{c:#?}");
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    // Each latency is that of one histogram holding every sample.
    // Each shard's histogram is the one its own summary came from.
    for s in &shards {
        for which in Latency::ALL {
            let h = harness::series::decode_text(&s.histograms[which.name()]).unwrap();
            let own = s.latency[which.name()];
            assert_eq!(harness::stats::Summary::of(&h).p99, own.p99);
            assert_eq!(h.len(), own.count);
        }
    }
    // (The mean only to the last bit JSON keeps of a float.)
    for which in Latency::ALL {
        let (got, exact) = (merged.latency[which.name()], all_samples(&shards, which));
        let quantiles =
            |s: harness::stats::Summary| (s.count, s.min, s.p50, s.p90, s.p99, s.p999, s.max);
        assert_eq!(quantiles(got), quantiles(exact), "{}", which.name());
        assert!((got.mean - exact.mean).abs() < 1e-9, "{}", which.name());
    }
    // The series add up to the whole, interval by interval.
    let in_series: u64 = merged
        .series
        .points
        .iter()
        .map(|p| p.latency["end_to_end"].count)
        .sum();
    assert_eq!(in_series, merged.latency["end_to_end"].count);
    assert!(
        (merged.rates.target - 1500.0).abs() < 15.0,
        "{:?}",
        merged.rates
    );

    // One process running the whole schedule gives the same verdict, on a
    // stream of its own (the shards' messages are still in theirs).
    jetstream::new(server.client().await)
        .delete_stream("SHARDS")
        .await
        .unwrap();
    let whole = harness()
        .arg("run")
        .arg(&file)
        .args(["--nats-url", &server.url(), "--run-id", "whole1", "-q"])
        .arg("--report-json")
        .arg(dir.path().join("whole.json"))
        .output()
        .unwrap();
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole));
    let whole = read(&dir.path().join("whole.json"));
    let w = &whole.counts;
    assert_eq!(
        (w.scheduled, w.published, w.processed, w.lost, w.pending),
        (c.scheduled, c.published, c.processed, c.lost, c.pending)
    );
    assert_eq!((w.unexpected, c.unexpected), (0, 0));
    let verdicts = |r: &Report| -> Vec<(String, bool)> {
        r.criteria
            .iter()
            .map(|o| (o.expression.clone(), o.passed))
            .collect()
    };
    assert_eq!(verdicts(&merged), verdicts(&whole));
    assert_eq!(merged.passed, whole.passed);

    // Two of three: the merged verdict fails, and says which is missing.
    let (output, partial) = merge(&paths[..2], &dir.path().join("partial.json"));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let problems = &partial.merged.as_ref().unwrap().problems;
    assert!(
        problems.iter().any(|p| p.contains("shard 2 of 3 missing")),
        "{problems:?}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("shard 2 of 3 missing"));
    assert_eq!(partial.counts.scheduled, 3000);
}

/// Deleted under stalled consumers, 150 messages of the three shards'
/// interleaved traffic are lost: the merged report counts exactly those,
/// each in the shard that published it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_deleted_mid_run_are_the_lost_ones_across_shards() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stalled = format!(
        "{SCENARIO}[[faults]]\nat = \"1s\"\nkind = \"consumer_stall\"\nduration = \"2500ms\"\n"
    );
    let file = write(dir.path(), "shards.toml", &stalled);
    let js = jetstream::new(server.client().await);
    const DOOMED: std::ops::Range<u64> = 3_000..3_150;
    let deleter = tokio::spawn(async move {
        let durables = ["shards-0", "shards-1", "shards-2"];
        common::delete_before_the_consumers(&js, "SHARDS", &durables, DOOMED, 0).await
    });
    let (shard_dir, url) = (dir.path().to_path_buf(), server.url());
    let paths = tokio::task::spawn_blocking(move || run_shards(&shard_dir, &file, &url, "sh2"))
        .await
        .unwrap();
    deleter.await.unwrap();
    let shards: Vec<Report> = paths.iter().map(|p| read(p)).collect();
    let (output, merged) = merge(&paths, &dir.path().join("merged.json"));
    let c = &merged.counts;
    assert_eq!(c.scheduled, 4500, "{c:#?}");
    assert_eq!((c.lost, c.lost_mid_run), (150, 150), "{c:#?}");
    assert_eq!((c.processed, c.pending), (4350, 0), "{c:#?}");
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    // Each shard lost its own share of the interleaved range.
    for s in &shards {
        assert!(s.counts.lost > 0, "{:?}", s.shard);
    }
    // Each shard names its own lost events (up to 100 each; about 50 here).
    let mut seqs: Vec<u64> = shards
        .iter()
        .flat_map(|s| &s.counts.samples.lost)
        .filter_map(|s| s.stream_sequence)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, DOOMED.collect::<Vec<_>>());
    assert_eq!(c.samples.lost.len(), 100, "the merged report keeps 100");
    // `lost == 0` fails once, on the merged figures.
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let lost = merged
        .criteria
        .iter()
        .find(|o| o.expression == "lost == 0")
        .unwrap();
    assert_eq!((lost.actual, lost.passed), (Some(150.0), false));
}

/// A shard ready after `--start-at` (here, 2 s after) sends what is
/// overdue at once; its latencies count from the intended times, so the
/// lateness shows in them, and its report says how late it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_ready_late_counts_its_latencies_from_the_intended_times() {
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "late.toml",
        &SCENARIO.replace(
            "rate = 1500\nduration = \"3s\"",
            "rate = 200\nduration = \"4s\"",
        ),
    );
    let past = humantime::format_rfc3339_millis(SystemTime::now() - Duration::from_secs(2));
    let json = dir.path().join("late.json");
    let output = harness()
        .arg("run")
        .arg(&file)
        .args(["--nats-url", &server.url(), "--run-id", "late1", "-q"])
        .args(["--shard", "0/1", "--start-at", &past.to_string()])
        .arg("--report-json")
        .arg(&json)
        .output()
        .unwrap();
    let report = read(&json);
    let c = &report.counts;
    assert_eq!((c.scheduled, c.processed), (800, 800), "{}", text(&output));
    assert_eq!(c.intended_out_of_range, 0, "{c:#?}");
    let e2e = report.latency["end_to_end"];
    assert_eq!(e2e.count, 800);
    // The first events were about 2 s overdue when they went out.
    assert!(e2e.max > 1500.0, "{e2e:?}");
    let late = report.shard.as_ref().unwrap().late_secs;
    assert!(late > 1.5, "{late}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("after --start-at")),
        "{:?}",
        report.warnings
    );
    // end_to_end.p99 < 2s holds or not with the lateness in it, never
    // without: the verdict sees it.
    let p99 = report
        .criteria
        .iter()
        .find(|o| o.name == "end_to_end.p99")
        .unwrap();
    assert_eq!(p99.actual, Some(e2e.p99));
}
