//! Usage errors caught before anything starts, each exiting 2 with a
//! message that names the flag or key at fault: URLs, logins, TLS files,
//! log filters, rates, payloads above the server's limit. And logs fit
//! for files: no colour codes when stderr is not a terminal.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn harness() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
    command
        .env_remove("HARNESS_NATS_URL")
        .env_remove("HARNESS_LOG")
        .env_remove("NO_COLOR")
        .env("CI", "true")
        .env("HARNESS_METRICS_ADDR", "off");
    command
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

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
