//! The embedded target against a real nats-server: start, JetStream,
//! faults (kill, restart, pause), clusters, cleanup and binary lookup.

mod common;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use common::NatsServer;
use harness::target::embedded::{find_binary_in, EmbeddedCluster};
use harness::target::TargetError;

fn stream_config(name: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{}.>", name.to_lowercase())],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

/// Polls `check` every 100 ms until it passes or `timeout` elapses.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn process_exists(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the pid exists; nothing is sent.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

#[tokio::test]
async fn a_single_node_answers_jetstream_and_acks_a_publish() {
    let server = NatsServer::start().await;
    let js = jetstream::new(server.client().await);
    js.query_account().await.expect("JetStream answers");
    js.create_stream(stream_config("ORDERS", 1))
        .await
        .expect("stream created");
    let ack = js
        .publish("orders.new", "hello".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.stream, "ORDERS");
    assert_eq!(ack.sequence, 1);
}

#[tokio::test]
async fn kill_and_restart_keep_the_stored_message_and_the_url() {
    let mut server = NatsServer::start().await;
    let url = server.url();
    let js = jetstream::new(server.client().await);
    js.create_stream(stream_config("KEPT", 1)).await.unwrap();
    js.publish("kept.one", "survives".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let old_pid = server.inner().pid(0).expect("running");
    server.inner().kill(0).await.unwrap();
    assert_eq!(server.inner().pid(0), None);
    assert!(!process_exists(old_pid));

    server.inner().restart(0).await.unwrap();
    assert_eq!(server.url(), url);
    assert_ne!(server.inner().pid(0), Some(old_pid));
    let js = jetstream::new(server.client().await);
    let mut kept = js.get_stream("KEPT").await.unwrap();
    assert_eq!(kept.info().await.unwrap().state.messages, 1);
    let message = kept.get_raw_message(1).await.unwrap();
    assert_eq!(message.payload.as_ref(), b"survives");
}

#[tokio::test]
async fn a_paused_node_times_out_and_answers_again_when_resumed() {
    let mut server = NatsServer::start().await;
    let client = server.client().await;
    let info = || client.request("$JS.API.INFO", "".into());

    server.inner().pause(0).unwrap();
    let frozen = tokio::time::timeout(Duration::from_millis(500), info()).await;
    assert!(!matches!(frozen, Ok(Ok(_))), "a paused server answered");

    server.inner().resume(0).unwrap();
    let answered = eventually(Duration::from_secs(10), || async {
        matches!(
            tokio::time::timeout(Duration::from_secs(1), info()).await,
            Ok(Ok(_))
        )
    })
    .await;
    assert!(answered, "the resumed server never answered");
}

#[tokio::test]
async fn a_three_node_cluster_creates_an_r3_stream() {
    let mut server = NatsServer::cluster(3).await;
    assert_eq!(server.inner().nodes(), 3);
    assert_eq!(server.inner().client_urls().len(), 3);
    assert_eq!(server.inner().server_name(2), "harness-n3");
    let js = jetstream::new(server.client().await);
    let mut created = js
        .create_stream(stream_config("REPLICATED", 3))
        .await
        .expect("R3 stream");
    assert_eq!(created.info().await.unwrap().config.num_replicas, 3);
    let ack = js
        .publish("replicated.x", "r3".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 1);
}

#[tokio::test]
async fn dropping_the_cluster_ends_its_processes_and_removes_its_folder() {
    let mut server = NatsServer::start().await;
    let dir = server.inner().dir().to_path_buf();
    let store = server.inner().store_dir(0).to_path_buf();
    let pid = server.inner().pid(0).expect("running");
    assert!(store.starts_with(&dir) && store.is_dir());
    assert!(process_exists(pid));
    // A paused process must not survive the drop either.
    server.inner().pause(0).unwrap();
    drop(server);
    assert!(!process_exists(pid), "nats-server {pid} survived the drop");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[tokio::test]
async fn shutdown_stops_even_a_paused_node_and_removes_the_store() {
    let cluster = EmbeddedCluster::start(1).await.unwrap();
    let dir = cluster.dir().to_path_buf();
    let pid = cluster.pid(0).expect("running");
    cluster.pause(0).unwrap();
    let started = std::time::Instant::now();
    cluster.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(!process_exists(pid));
    assert!(!dir.exists());
}

fn fake_binary(dir: &Path) -> PathBuf {
    fake_binary_with(dir, "")
}

fn fake_binary_with(dir: &Path, script: &str) -> PathBuf {
    let path = dir.join("nats-server");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn the_binary_is_found_in_the_documented_order() {
    let with = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let found = fake_binary(with.path());
    let path_var = |dirs: &[&Path]| Some(std::env::join_paths(dirs).unwrap());

    // NATS_SERVER_BIN wins over PATH.
    let explicit = find_binary_in(Some(found.clone().into()), path_var(&[empty.path()]), &[]);
    assert_eq!(explicit.unwrap(), found);
    // Then PATH, then the tools folders, in order.
    let on_path = find_binary_in(None, path_var(&[empty.path(), with.path()]), &[]);
    assert_eq!(on_path.unwrap(), found);
    let in_tools = find_binary_in(None, None, &[empty.path().into(), with.path().into()]);
    assert_eq!(in_tools.unwrap(), found);
    // An empty NATS_SERVER_BIN counts as unset.
    let empty_env = find_binary_in(Some(OsString::new()), path_var(&[with.path()]), &[]);
    assert_eq!(empty_env.unwrap(), found);
}

#[test]
fn a_missing_binary_is_a_clear_error_listing_what_was_searched() {
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("no-such-nats-server");
    let error = find_binary_in(Some(missing.clone().into()), None, &[]).unwrap_err();
    assert!(matches!(error, TargetError::MissingBinary { .. }));
    let message = error.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("scripts/install-tools.sh"), "{message}");

    // A file that is not executable does not count.
    let not_executable = empty.path().join("nats-server");
    std::fs::write(&not_executable, "").unwrap();
    let tools = empty.path().to_path_buf();
    let error = find_binary_in(
        None,
        Some(tools.clone().into()),
        std::slice::from_ref(&tools),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("NATS_SERVER_BIN (unset)"), "{message}");
    assert!(message.contains(&tools.display().to_string()), "{message}");
}

#[tokio::test]
async fn a_server_that_exits_at_once_fails_fast_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let binary = fake_binary_with(dir.path(), "echo 'boom: bad config' >&2; exit 1");
    let started = std::time::Instant::now();
    let error = match EmbeddedCluster::start_with(binary, 1).await {
        Ok(_) => panic!("a server that exits cannot be ready"),
        Err(e) => e,
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let message = error.to_string();
    assert!(message.contains("exited during startup"), "{message}");
    assert!(message.contains("boom: bad config"), "{message}");

    let error = EmbeddedCluster::start_with(dir.path().join("nats-server"), 6)
        .await
        .err();
    assert!(error.is_some_and(|e| e.to_string().contains("1 to 5 nodes")));
}

#[tokio::test]
async fn faults_on_a_node_that_does_not_exist_are_errors() {
    let mut server = NatsServer::start().await;
    let cluster = server.inner();
    assert!(matches!(
        cluster.kill(1).await,
        Err(TargetError::Node { node: 1, .. })
    ));
    assert!(matches!(
        cluster.pause(3),
        Err(TargetError::Node { node: 3, .. })
    ));
    assert_eq!(cluster.pid(1), None);
    // A stopped node cannot be paused; stopping it again is a no-op.
    cluster.stop(0).await.unwrap();
    assert!(matches!(
        cluster.pause(0),
        Err(TargetError::Node { node: 0, .. })
    ));
    cluster.stop(0).await.unwrap();
}
