//! Test guard: a real nats-server (or a small cluster) per test, on free
//! ports with a temporary store, killed and removed when the guard drops.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use harness::target::embedded::EmbeddedCluster;

pub mod cli;

pub struct NatsServer {
    cluster: EmbeddedCluster,
}

impl NatsServer {
    /// One node with JetStream. Panics with the reason if it cannot start
    /// (run `scripts/install-tools.sh` when the binary is missing).
    pub async fn start() -> NatsServer {
        Self::cluster(1).await
    }

    /// `nodes` clustered servers, ready when JetStream answers on each.
    pub async fn cluster(nodes: usize) -> NatsServer {
        match EmbeddedCluster::start(nodes).await {
            Ok(cluster) => NatsServer { cluster },
            Err(e) => panic!("cannot start the embedded nats-server: {e}"),
        }
    }

    /// Every node's client URL, joined by ','.
    pub fn url(&self) -> String {
        self.cluster.url()
    }

    /// A client that knows every node (async-nats does not split a
    /// comma-separated URL itself, so the list is passed as a list).
    pub async fn client(&self) -> async_nats::Client {
        let urls = self.cluster.client_urls();
        match async_nats::connect(urls.as_slice()).await {
            Ok(client) => client,
            Err(e) => panic!("cannot connect to {}: {e}", self.url()),
        }
    }

    pub fn inner(&mut self) -> &mut EmbeddedCluster {
        &mut self.cluster
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A run of `text` (scenario TOML) against `server`, quiet, without metrics.
pub fn run_config(text: &str, server: &NatsServer, run_id: &str) -> harness::run::RunConfig {
    let scenario = harness::scenario::parse(text, std::path::Path::new("test.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    config_for(scenario, server, run_id)
}

/// A run of `scenario` against `server`, quiet, without metrics.
pub fn config_for(
    mut scenario: harness::scenario::Scenario,
    server: &NatsServer,
    run_id: &str,
) -> harness::run::RunConfig {
    scenario.target.url = Some(server.url());
    harness::run::RunConfig {
        name: "test".into(),
        file: "test.toml".into(),
        run_id: run_id.into(),
        seed: 7,
        progress: harness::progress::Mode::Quiet,
        metrics: Default::default(),
        scenario,
        shard: None,
        start_at: None,
    }
}

/// Runs to the end; panics on an infrastructure error.
pub async fn run_to_report(config: harness::run::RunConfig) -> harness::report::Report {
    harness::run::run(config, harness::run::Signals::default())
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// GET over plain HTTP/1.1 on 127.0.0.1; the status code and the body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response).to_string();
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Some((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A single nats-server started from a config of the test's own, for
/// settings the embedded target does not make (authorization, limits).
/// Killed, and its store removed, on drop.
pub struct ConfiguredServer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl ConfiguredServer {
    /// JetStream on a free port of 127.0.0.1, plus `extra` config text
    /// such as `authorization { token: "t0k3n" }` or `max_payload: 4096`.
    pub fn start(extra: &str) -> ConfiguredServer {
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().expect("temporary folder");
        let port = free_port();
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n{extra}\n",
            dir.path().join("store").display().to_string()
        );
        let file = dir.path().join("server.conf");
        std::fs::write(&file, config).expect("write the server config");
        let binary = harness::target::embedded::find_binary().unwrap_or_else(|e| panic!("{e}"));
        let child = std::process::Command::new(binary)
            .arg("-c")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server");
        let server = ConfiguredServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for ConfiguredServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An example service, the examples all built once per test binary
/// (`cargo test` builds examples too, but not when only some tests are
/// asked for).
pub fn example(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "--quiet",
            "--examples",
            "--manifest-path",
            manifest,
        ]);
        // What cargo sets for a test process, left out: build scripts that
        // track such a variable would rebuild their crate for a change.
        for (key, _) in std::env::vars() {
            let set_for_tests = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|prefix| key.starts_with(prefix))
                || [
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                ]
                .contains(&key.as_str());
            if set_for_tests {
                cargo.env_remove(key);
            }
        }
        let status = cargo.status().expect("cargo runs");
        assert!(status.success(), "cannot build the examples");
    });
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    profile_dir.join("examples").join(name)
}

/// Deletes the messages at `doomed` stream sequences as soon as the stream
/// holds them, checking that none of the `durables` has reached them (with
/// `margin` to spare), so that they are gone before a consumer could
/// process them.
pub async fn delete_before_the_consumers(
    js: &async_nats::jetstream::Context,
    stream: &str,
    durables: &[&str],
    doomed: std::ops::Range<u64>,
    margin: u64,
) {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        assert!(
            Instant::now() < deadline,
            "{stream} never reached {}",
            doomed.end
        );
        if let Ok(mut stream) = js.get_stream(stream).await {
            let last = stream
                .info()
                .await
                .map(|i| i.state.last_sequence)
                .unwrap_or(0);
            if last >= doomed.end {
                for durable in durables {
                    let consumer: async_nats::jetstream::consumer::PullConsumer =
                        stream.get_consumer(durable).await.unwrap();
                    let delivered = consumer.get_info().await.unwrap().delivered.stream_sequence;
                    assert!(
                        delivered + margin < doomed.start,
                        "`{durable}` got there first: {delivered}"
                    );
                }
                for seq in doomed {
                    stream.delete_message(seq).await.unwrap();
                }
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
