//! `harness capacity` against real nats-servers, as a user runs it: a
//! pipeline whose limit is known, a search with nothing sustainable, a
//! Ctrl+C mid-search, and the errors said before any trial.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::cli::{harness, read_json, signal, text, wait_exit, write};

fn scenario() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/capacity.toml")
        .display()
        .to_string()
}

/// Short trials, so the whole search fits in a CI minute.
const SHORT: [&str; 6] = ["--trial", "3s", "--warmup", "1s", "--drain", "3s"];
/// Two trials of a second each: enough to see how a search ends.
const TWO_QUICK_TRIALS: [&str; 8] = [
    "--max-trials",
    "2",
    "--trial",
    "1s",
    "--warmup",
    "500ms",
    "--drain",
    "2s",
];

/// `harness capacity FILE --quiet ARGS... --report-json JSON`, run to its end.
fn search(file: &str, args: &[&str], json: &Path) -> std::process::Output {
    harness()
        .args(["capacity", file, "--quiet"])
        .args(args)
        .arg("--report-json")
        .arg(json)
        .output()
        .unwrap()
}

#[test]
fn the_search_lands_within_ten_percent_of_a_known_limit() {
    // 2 workers x a constant 4 ms: at most 500 events/s.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("capacity.json");
    let html = dir.path().join("capacity.html");
    let html_arg = html.to_str().unwrap();
    let output = search(
        &scenario(),
        &[&SHORT[..], &["--report-html", html_arg]].concat(),
        &json,
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    let result = read_json(&json);
    let msr = result["msr"].as_f64().unwrap();
    assert!((450.0..=550.0).contains(&msr), "MSR {msr}: {said}");
    assert_eq!(result["kind"], "capacity");
    assert_eq!(result["ending"], "confirmed", "{said}");
    let trials = result["trials"].as_array().unwrap();
    // The probe doubled from 100/s, then bisected; the last trial confirms
    // the MSR, twice as long.
    let rates: Vec<f64> = trials.iter().map(|t| t["rate"].as_f64().unwrap()).collect();
    assert_eq!(&rates[..3], &[100.0, 200.0, 400.0], "{rates:?}");
    let last = trials.last().unwrap();
    assert_eq!(last["rate"].as_f64(), Some(msr));
    assert_eq!(last["confirmation"], true);
    assert_eq!(last["measured_secs"].as_f64().map(f64::round), Some(6.0));
    // Every trial carries its whole run report, measured after the warm-up.
    for t in trials {
        let report = &t["report"];
        assert_eq!(report["measured_from_secs"].as_f64(), Some(1.0));
        assert_eq!(report["counts"]["lost"], 0);
        assert!(report["latency"]["end_to_end"]["count"].as_u64().unwrap() > 0);
    }
    // Above the MSR the consumer could not keep up: the backlog grew.
    assert_eq!(result["limited_by"]["condition"], "backlog", "{said}");
    assert_eq!(result["harness_limited"], false);
    assert_eq!(result["fingerprint"]["storage"], "memory");
    assert!(!result["fingerprint"]["nats_server_version"]
        .as_str()
        .unwrap()
        .is_empty());
    assert!(result["server_usage"]["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "maximum sustainable rate: {msr} events/s (confirmed)"
        )),
        "{said}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("sustainable") || l.contains(" no: "))
            .count(),
        trials.len() + 1,
        "a row per trial and the result: {said}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains(&format!("{msr}")));

    // The same result compared with itself: nothing regressed. A copy with
    // a fifth less capacity regresses beyond the 10% tolerance.
    let compare = |a: &Path, b: &Path| {
        harness()
            .args(["compare", a.to_str().unwrap(), b.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let same = compare(&json, &json);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let mut worse = result.clone();
    worse["msr"] = serde_json::json!(msr * 0.8);
    let worse_path = write(dir.path(), "worse.json", &worse.to_string());
    let regressed = compare(&json, &worse_path);
    assert_eq!(regressed.status.code(), Some(1), "{}", text(&regressed));
    // Searched under other rules: not comparable.
    let mut other_rules = result.clone();
    other_rules["knobs"]["max_backlog_growth"] = serde_json::json!(0.5);
    let other_path = write(dir.path(), "other.json", &other_rules.to_string());
    let refused = compare(&json, &other_path);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("capacity.max_backlog_growth"),
        "{}",
        text(&refused)
    );
    assert!(String::from_utf8_lossy(&regressed.stdout).contains("maximum sustainable rate"));
}

#[test]
fn nothing_sustainable_exits_1_with_every_trial_explained() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("capacity.json");
    // A criterion no pipeline meets: every trial fails it.
    let text_of = std::fs::read_to_string(scenario())
        .unwrap()
        .replace("\"end_to_end.p99 < 1s\",", "\"end_to_end.p99 < 1us\",");
    let file = write(dir.path(), "impossible.toml", &text_of);
    let output = search(file.to_str().unwrap(), &TWO_QUICK_TRIALS, &json);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    let result = read_json(&json);
    assert!(result["msr"].is_null(), "{said}");
    assert_eq!(result["ending"], "out_of_trials");
    let trials = result["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    // It probed down from 100/s.
    assert_eq!(trials[1]["rate"].as_f64(), Some(50.0));
    for t in trials {
        assert_eq!(t["sustainable"], false);
        assert!(
            t["failures"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["condition"] == "criterion"
                    && f["detail"]
                        .as_str()
                        .unwrap()
                        .contains("end_to_end.p99 < 1us")),
            "{t:#}"
        );
    }
    assert!(said.contains("no sustainable rate found"), "{said}");
}

#[test]
fn ctrl_c_mid_search_writes_the_partial_result_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("capacity.json");
    let mut child = harness()
        .args(["capacity", &scenario(), "--quiet"])
        .args(["--trial", "2s", "--warmup", "500ms"])
        .arg("--report-json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first row, then interrupt the second trial.
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (seen, rows) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = seen.send(line);
        }
    });
    let mut said = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !said
        .iter()
        .any(|l: &String| l.trim_start().starts_with("1 "))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rows.recv_timeout(left) {
            Ok(line) => said.push(line),
            Err(_) => panic!("no first trial within a minute: {said:?}"),
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, libc::SIGINT);
    let output = wait_exit(child, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    // Every line the reader had, once it has read to the end.
    reader.join().unwrap();
    let rest: Vec<String> = rows.try_iter().collect();
    let result = read_json(&json);
    assert_eq!(result["interrupted"], true);
    let trials = result["trials"].as_array().unwrap();
    assert!(!trials.is_empty(), "{result:#}");
    assert_eq!(trials[0]["sustainable"], true);
    assert!(
        rest.iter().any(|l| l.contains("interrupted")),
        "{said:?} {rest:?}"
    );
}

#[test]
fn what_cannot_work_is_said_before_any_trial() {
    let dir = tempfile::tempdir().unwrap();
    let precision = harness()
        .args(["capacity", &scenario(), "--precision", "0"])
        .output()
        .unwrap();
    assert_eq!(precision.status.code(), Some(2), "{}", text(&precision));
    assert!(
        text(&precision).contains("--precision (`capacity.precision`)"),
        "{}",
        text(&precision)
    );
    // A variant whose payload is too small for JSON events fails now, named.
    let text_of = format!(
        "{}\n[[variants]]\nname = \"tiny\"\npayload = \"16B\"\n",
        std::fs::read_to_string(scenario())
            .unwrap()
            .replace("kind = \"random\"", "kind = \"json\"")
            .replace("size = \"128B\"", "size = \"256B\"")
    );
    let file = write(dir.path(), "variants.toml", &text_of);
    let started = std::time::Instant::now();
    let output = harness()
        .args(["capacity", file.to_str().unwrap()])
        .output()
        .unwrap();
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("variant `tiny`") && said.contains("load.payload.size"),
        "{said}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "no trial ran");
}

/// Against an external server each trial starts on a purged stream and a
/// new durable: the backlog a failed trial leaves behind is neither
/// delivered to the next one (it would count as unexpected) nor counted
/// in its backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_an_external_server_each_trial_starts_on_a_purged_stream() {
    let server = common::NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("capacity.json");
    // 800/s into a consumer of 500/s leaves a backlog behind; the next
    // trial, at 400/s, must start clean.
    let url = server.url();
    let output = search(
        &scenario(),
        &[
            "--nats-url",
            &url,
            "--start-rate",
            "800",
            "--max-trials",
            "2",
        ]
        .into_iter()
        .chain(["--trial", "2s", "--warmup", "500ms", "--drain", "1s"])
        .collect::<Vec<_>>(),
        &json,
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    let result = read_json(&json);
    let trials = result["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "{said}");
    assert_eq!(trials[0]["sustainable"], false, "{said}");
    assert!(trials[0]["report"]["counts"]["pending"].as_u64().unwrap() > 0);
    let second = &trials[1]["report"];
    assert_eq!(trials[1]["rate"].as_f64(), Some(400.0));
    assert_eq!(trials[1]["sustainable"], true, "{said}");
    assert_eq!(second["counts"]["unexpected"], 0, "{second:#}");
    assert_eq!(second["target"]["embedded"], false);
    assert!(second["target"]["server_usage"].is_null());
    assert_eq!(result["fingerprint"]["nodes"], 0);
    // The stream holds only the last trial's events.
    let js = async_nats::jetstream::new(server.client().await);
    let mut stream = js.get_stream("HARNESS_CAPACITY").await.unwrap();
    let info = stream.info().await.unwrap();
    let scheduled = second["counts"]["scheduled"].as_u64().unwrap();
    assert_eq!(info.state.messages, scheduled, "{said}");
}

/// `[[variants]]`: a search per variant, a trial each at the common rate,
/// and the table comparing them, with the embedded server's CPU and memory.
#[test]
fn variants_are_searched_in_turn_then_compared_at_one_rate() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("configurations.json");
    let text_of = format!(
        "{}\n[[variants]]\nstorage = \"memory\"\n\n[[variants]]\nname = \"on file\"\nstorage = \"file\"\n",
        std::fs::read_to_string(scenario()).unwrap()
    );
    let file = write(dir.path(), "variants.toml", &text_of);
    let output = search(file.to_str().unwrap(), &TWO_QUICK_TRIALS, &json);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    let result = read_json(&json);
    assert_eq!(result["kind"], "configurations");
    let variants = result["variants"].as_array().unwrap();
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["memory", "on file"]);
    // Two trials each (100/s, 200/s), then both at half the lower MSR.
    assert_eq!(result["common_rate"].as_f64(), Some(100.0), "{said}");
    for v in variants {
        assert_eq!(v["capacity"]["msr"].as_f64(), Some(200.0), "{said}");
        assert_eq!(v["capacity"]["trials"].as_array().unwrap().len(), 2);
        let common = &v["common"];
        assert_eq!(common["rate"].as_f64(), Some(100.0));
        assert!(
            common["report"]["target"]["server_usage"]["cpu_secs"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }
    assert_eq!(variants[0]["capacity"]["fingerprint"]["storage"], "memory");
    assert_eq!(variants[1]["capacity"]["fingerprint"]["storage"], "file");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("| variant | MSR events/s |"), "{said}");
    assert!(
        stdout.contains("| memory | 200 |") && stdout.contains("| on file | 200 |"),
        "{said}"
    );
}

/// Every trial serves /metrics on the same address: each must free it for
/// the next, even after a trial that ended with a backlog.
#[test]
fn every_trial_serves_metrics_on_the_same_address() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("capacity.json");
    let addr = format!("127.0.0.1:{}", common::free_port());
    let output = search(
        &scenario(),
        &[
            "--metrics-addr",
            &addr,
            "--start-rate",
            "400",
            "--max-trials",
            "4",
        ]
        .into_iter()
        .chain(["--trial", "1s", "--warmup", "500ms", "--drain", "1s"])
        .collect::<Vec<_>>(),
        &json,
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(!said.contains("Address already in use"), "{said}");
    let result = read_json(&json);
    assert_eq!(result["trials"].as_array().unwrap().len(), 4, "{said}");
    assert!(result["error"].is_null(), "{said}");
}
