//! A TLS target: the harness connects through rustls (ring) without a
//! crypto-provider clash, and a whole short run goes through.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::progress;
use harness::run::{self, RunConfig, Signals};
use harness::scenario;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed to make test certificates");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA and a server certificate for 127.0.0.1, made fresh for the test.
fn make_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=harness-test-ca",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server-key.pem",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName = IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

fn start_tls_server(dir: &Path, port: u16) -> Server {
    let config = format!(
        "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{store}\" }}\ntls {{ cert_file: \"{d}/server.pem\"\n key_file: \"{d}/server-key.pem\" }}\n",
        store = dir.join("store").display(),
        d = dir.display(),
    );
    std::fs::write(dir.join("server.conf"), config).unwrap();
    let binary = harness::target::embedded::find_binary().unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new(binary)
        .arg("-c")
        .arg(dir.join("server.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the TLS server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child)
}

/// A short run against a fresh TLS server, with `extra` scenario text.
async fn tls_run(extra: &str, run_id: &str) -> harness::report::Report {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let port = common::free_port();
    let _server = start_tls_server(dir.path(), port);
    let text = format!(
        "[target]\nurl = \"tls://127.0.0.1:{port}\"\n[target.tls]\nca_file = \"{}\"\n[load]\nrate = 50\nduration = \"2s\"\n[criteria]\nchecks = [\"lost == 0\", \"success_rate == 100%\"]\n{extra}",
        dir.path().join("ca.pem").display()
    );
    let scenario = scenario::parse(&text, Path::new("tls.toml")).unwrap_or_else(|e| panic!("{e}"));
    let config = RunConfig {
        scenario,
        name: "tls".into(),
        file: "tls.toml".into(),
        run_id: run_id.into(),
        seed: 1,
        progress: progress::Mode::Quiet,
        metrics: Default::default(),
        shard: None,
        start_at: None,
    };
    run::run(config, Signals::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_tls_goes_through_without_a_provider_clash() {
    let report = tls_run("", "tls").await;
    assert_eq!(report.counts.processed, 100);
    assert!(report.passed, "{:#?}", report.criteria);
}

/// The network-fault proxy carries TLS as it is: the client still checks
/// the server's certificate (issued for 127.0.0.1) through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_faults_act_on_a_tls_target_through_the_proxy() {
    let latency =
        "[[faults]]\nat = \"500ms\"\nkind = \"latency\"\ndelay = \"30ms\"\nduration = \"1s\"\n";
    let report = tls_run(latency, "tls-proxy").await;
    assert!(report.target.proxy.is_some(), "{:?}", report.target);
    assert_eq!(report.counts.processed, 100);
    assert!(report.passed, "{:#?}", report.criteria);
    assert!(
        report.latency["publish_attempt"].max >= 60.0,
        "30 ms each way: {:?}",
        report.latency["publish_attempt"]
    );
}
