//! Usage errors caught before anything starts, each exiting 2 with a
//! message that names the flag or key at fault: URLs, logins, TLS files,
//! log filters, rates, payloads above the server's limit. And logs fit
//! for files: no colour codes when stderr is not a terminal.

mod common;

use std::path::{Path, PathBuf};

use common::cli::{harness, text};

fn scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("s.toml");
    std::fs::write(
        &path,
        format!("{text}\n[load]\nrate = 20\nduration = \"1s\"\n"),
    )
    .unwrap();
    path
}

/// Runs `harness ARGS...` and expects exit 2 with every one of `needles`
/// in stderr.
fn expect_usage_error(args: &[&str], needles: &[&str]) -> String {
    let output = harness().args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "`{needle}` expected\n{}",
            text(&output)
        );
    }
    stderr
}

#[test]
fn a_malformed_url_exits_2_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "");
    let file = file.to_str().unwrap();
    expect_usage_error(
        &["run", file, "--nats-url", "nats://host:notaport"],
        &["--nats-url", "invalid port number", "nats://host:port"],
    );
    expect_usage_error(&["run", file, "--nats-url", "::"], &["--nats-url", "`::`"]);
    let in_file = scenario(dir.path(), "[target]\nurl = \"nats://a:s3cret@h:x\"");
    let stderr = expect_usage_error(
        &["validate", in_file.to_str().unwrap()],
        &["s.toml:2:1: `target.url`", "invalid port number"],
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn a_token_with_user_and_password_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(
        dir.path(),
        "[target]\nurl = \"nats://127.0.0.1:1\"\ntoken = \"t\"\nuser = \"u\"\npassword = \"p\"",
    );
    expect_usage_error(
        &["validate", file.to_str().unwrap()],
        &["`target.token`", "keep one"],
    );
}

/// Noticed at validation even on a `nats://` URL, where the TLS settings
/// would only matter once the server asks for TLS.
#[test]
fn a_missing_tls_file_exits_2_whatever_the_scheme() {
    let dir = tempfile::tempdir().unwrap();
    for key in ["ca_file", "cert_file", "key_file"] {
        let file = scenario(
            dir.path(),
            &format!(
                "[target]\nurl = \"nats://127.0.0.1:1\"\n[target.tls]\n{key} = \"missing.pem\""
            ),
        );
        let file = file.to_str().unwrap();
        expect_usage_error(
            &["validate", file],
            &[&format!("`target.tls.{key}`"), "missing.pem"],
        );
        expect_usage_error(&["run", file], &[&format!("`target.tls.{key}`")]);
    }
}

#[test]
fn a_log_level_that_is_no_filter_exits_2_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "");
    let file = file.to_str().unwrap();
    expect_usage_error(
        &["--log-level", "loud", "validate", file],
        &[
            "--log-level",
            "`loud` is not a log filter",
            "warn,harness=debug",
        ],
    );
    let output = harness()
        .env("HARNESS_LOG", "harness=noisy")
        .args(["validate", file])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let output = harness()
        .args(["--log-level", "info,harness=debug", "validate", file])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// stderr here is a pipe, as in CI or `2> run.log`: plain text only.
#[test]
fn logs_carry_no_colour_codes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "[target]\nconnect_timeout = \"1s\"");
    let output = harness()
        .args(["--log-level", "debug", "run", file.to_str().unwrap()])
        .args(["--nats-url", "nats://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DEBUG"), "debug lines expected\n{stderr}");
    assert!(!stderr.contains("\x1b["), "colour codes in\n{stderr}");
}

#[test]
fn a_rate_at_or_below_zero_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "");
    let file = file.to_str().unwrap();
    for rate in ["-1", "0", "-0.5"] {
        expect_usage_error(
            &["run", file, "--rate", rate],
            &["--rate (`load.rate`)", "must be above 0 events/s"],
        );
    }
}

/// Every publish would fail with "maximum payload exceeded" and, with no
/// criteria, the run used to pass at 0%.
#[test]
fn a_payload_above_the_servers_max_payload_exits_2_before_the_run() {
    let server = common::ConfiguredServer::start("max_payload: 4096");
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), "[load.payload]\nsize = \"8KiB\"");
    let url = format!("nats://127.0.0.1:{}", server.port());
    let stderr = expect_usage_error(
        &["run", file.to_str().unwrap(), "--nats-url", &url],
        &["`load.payload.size` 8192 B", "max_payload of 4096 B"],
    );
    assert!(!stderr.contains("publish failed"), "{stderr}");
    // The largest size it suggests goes through the real server whole,
    // dead-lettered copies (whose headers are longer) included.
    let fits: u64 = stderr
        .split("to at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a size that fits expected\n{stderr}"));
    assert!((3600..4096).contains(&fits), "{fits}");
    let file = scenario(
        dir.path(),
        &format!(
            "[criteria]\nchecks = [\"published == 20\", \"dead_lettered > 0\", \"pending == 0\", \"lost == 0\"]\n\
             [consumer]\nerror_ratio = 0.5\n[load.payload]\nkind = \"random\"\nsize = {fits}"
        ),
    );
    let output = harness()
        .args(["run", file.to_str().unwrap(), "--nats-url", &url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn a_shard_that_cannot_be_run_exits_2_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let captured = scenario(dir.path(), "[stream]\nsubjects = [\"harness.events.>\"]");
    let captured = captured.to_str().unwrap();
    // Refused before connecting: nothing listens there.
    let url = ["--nats-url", "nats://127.0.0.1:1"];
    let run = |extra: &[&str]| -> Vec<String> {
        ["run", captured]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let usage = |args: Vec<String>, needles: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        expect_usage_error(&args, needles);
    };
    // The scenario's load.subject is the default, harness.events.test.
    usage(run(&["--shard", "3/3"]), &["--shard", "K from 0 to N-1"]);
    usage(
        run(&["--shard", "0/3", "--run-id", "r1"]),
        &["--shard 0/3", "--nats-url or target.url"],
    );
    usage(
        run(&[url[0], url[1], "--shard", "0/3"]),
        &["--shard 0/3", "the same --run-id"],
    );
    usage(
        run(&[
            url[0],
            url[1],
            "--shard",
            "0/3",
            "--run-id",
            "r1",
            "--start-at",
            "soon",
        ]),
        &["--start-at", "RFC 3339"],
    );
    usage(
        run(&[url[0], url[1], "--start-at", "2020-01-01T00:00:00Z"]),
        &[
            "--start-at 2020-01-01T00:00:00Z was",
            "longer than the schedule",
        ],
    );
    usage(
        run(&[url[0], url[1], "--start-at", "2999-01-01T00:00:00Z"]),
        &["--start-at 2999-01-01T00:00:00Z is", "more than a day"],
    );
    let exact = dir.path().join("exact.toml");
    std::fs::write(
        &exact,
        "[stream]\nsubjects = [\"orders.events\"]\n[load]\nsubject = \"orders.events\"\nrate = 20\nduration = \"1s\"\n",
    )
    .unwrap();
    let exact = exact.to_str().unwrap();
    expect_usage_error(
        &[
            "run", exact, url[0], url[1], "--shard", "1/2", "--run-id", "r1",
        ],
        &[
            "`orders.events.1`",
            "add `orders.events.>` to stream.subjects",
        ],
    );
}
