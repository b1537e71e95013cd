//! Faults on the timeline against real embedded nats-servers: the harness
//! comes through them, and its books still balance.

use std::path::Path;
use std::time::Duration;

use harness::progress;
use harness::run::{self, RunConfig, Signals};
use harness::scenario::{self, Scenario};

/// A shipped scenario on its own embedded target, shortened for the suite.
fn shortened(file: &str, run_id: &str, shorten: impl FnOnce(&mut Scenario)) -> RunConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file);
    let mut scenario = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    shorten(&mut scenario);
    RunConfig {
        name: scenario.name_or_stem(&path),
        scenario,
        file: path,
        run_id: run_id.into(),
        seed: 5,
        progress: progress::Mode::Quiet,
        metrics: Default::default(),
        shard: None,
        start_at: None,
    }
}

/// A scenario written in the test, on its own embedded target.
fn inline(text: &str, name: &str, run_id: &str, seed: u64) -> RunConfig {
    let file = format!("{name}.toml");
    let scenario = scenario::parse(text, Path::new(&file)).unwrap_or_else(|e| panic!("{e}"));
    RunConfig {
        scenario,
        name: name.into(),
        file: file.into(),
        run_id: run_id.into(),
        seed,
        progress: progress::Mode::Quiet,
        metrics: Default::default(),
        shard: None,
        start_at: None,
    }
}

/// The chaos scenario, shortened: kill -9 of a file-storage server mid-run,
/// restart on the same store and port. Nothing acknowledged is lost, the
/// clients reconnect, and the fault is in the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_file_storage_server_loses_nothing() {
    let config = shortened("chaos.toml", "chaos", |s| {
        s.load.duration = Some(Duration::from_secs(12));
        s.faults[0].at = Duration::from_secs(4);
        s.faults[0].duration = Duration::from_secs(2);
    });
    let report = run::run(config, Signals::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(c.scheduled, 600);
    assert_eq!((c.lost, c.pending, c.publish_failed), (0, 0, 0), "{c:#?}");
    assert!(report.passed, "{:#?}\n{c:#?}", report.criteria);
    assert_eq!(
        c.stream_duplicates, 0,
        "retries were deduplicated across the restart: {c:#?}"
    );
    assert_eq!(report.faults.len(), 1);
    let fault = &report.faults[0];
    assert_eq!(
        (fault.kind.as_str(), fault.node, fault.error.as_deref()),
        ("kill", Some(0), None)
    );
    let down = fault.recovered_secs.expect("the node came back") - fault.started_secs;
    assert!((2.0..10.0).contains(&down), "down for {down}s");
    assert!(
        report.warnings.iter().any(|w| w.contains("reconnects")),
        "the clients reconnected: {:?}",
        report.warnings
    );
}

const MEMORY_CRASH: &str = r#"
[stream]
name = "MEMORY_CRASH"
subjects = ["memcrash.>"]
storage = "memory"
[load]
subject = "memcrash.events"
rate = 100
duration = "3s"
[consumer]
durable = "memcrash"
workers = 1
ack_wait = "2m"
processing_timeout = "90s"
dead_letter_subject = "memcrash_dlq.events"
dead_letter_stream = "MEMORY_CRASH_DLQ"
[consumer.processing]
mean = "80s"
[drain]
timeout = "6s"
[[faults]]
at = "3500ms"
kind = "kill"
duration = "1s"
[criteria]
checks = ["lost == 0"]
"#;

/// Ground truth: a memory-storage server killed with -9 really loses the
/// acknowledged messages it held. The consumer is stalled (every handler
/// outlasts the run), so at the kill the stream holds every published
/// event unconsumed; the report must call exactly those lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_memory_storage_server_loses_exactly_what_it_held() {
    let config = inline(MEMORY_CRASH, "memcrash", "mem", 9);
    let report = run::run(config, Signals::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(
        (c.scheduled, c.published, c.processed),
        (300, 300, 0),
        "{c:#?}"
    );
    assert_eq!(
        c.lost, 300,
        "every acknowledged, unconsumed event died with the server: {c:#?} {:?}",
        report.warnings
    );
    assert_eq!((c.lost_tail, c.lost_mid_run, c.pending), (300, 0, 0));
    assert!(!report.passed, "lost == 0 fails");
    assert_eq!(report.faults[0].kind, "kill");
    assert!(report.faults[0].recovered_secs.is_some());
}

/// The consumer-crash scenario, shortened: deliveries dropped by the crash
/// come back once ack_wait passes, counted as redeliveries; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_consumer_gets_its_dropped_deliveries_again() {
    let config = shortened("consumer-crash.toml", "crash", |s| {
        s.load.duration = Some(Duration::from_secs(8));
        s.consumer.ack_wait = Duration::from_secs(3);
        s.faults[0].at = Duration::from_secs(3);
        s.faults[0].duration = Duration::from_secs(2);
    });
    let report = run::run(config, Signals::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(
        (c.scheduled, c.processed, c.lost, c.pending),
        (400, 400, 0, 0),
        "{c:#?}"
    );
    assert!(
        c.redelivered > 0,
        "the dropped deliveries came back: {c:#?}"
    );
    assert!(report.passed, "{:#?}", report.criteria);
    let fault = &report.faults[0];
    assert_eq!((fault.kind.as_str(), fault.node), ("consumer_crash", None));
    assert!(fault
        .recovered_secs
        .is_some_and(|end| end - fault.started_secs >= 2.0));
}

/// The cluster-leader-kill scenario, shortened: three nodes, R3, the stream
/// leader killed with -9 and restarted. A new leader takes over; nothing is
/// lost and nothing is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_stream_leader_of_a_cluster_loses_nothing() {
    let config = shortened("cluster-leader-kill.toml", "leader", |s| {
        s.load.duration = Some(Duration::from_secs(12));
        s.faults[0].at = Duration::from_secs(4);
        s.faults[0].duration = Duration::from_secs(3);
    });
    let report = run::run(config, Signals::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(c.scheduled, 600);
    let fault = &report.faults[0];
    assert_eq!(fault.error, None);
    assert!(
        fault.node.is_some() && fault.recovered_secs.is_some(),
        "{fault:?}"
    );
    assert_eq!(
        (c.lost, c.stream_duplicates, c.pending),
        (0, 0, 0),
        "{c:#?}"
    );
    assert!(report.passed, "{:#?}\n{c:#?}", report.criteria);
}

const MIXED: &str = r#"
[stream]
name = "MIXED_FAULTS"
subjects = ["mixed.>"]
storage = "file"
[load]
subject = "mixed.events"
rate = 40
duration = "12s"
[publish]
timeout = "2s"
max_retries = 5
[publish.backoff]
initial = "500ms"
max = "2s"
[consumer]
durable = "mixed"
ack_wait = "10s"
processing_timeout = "5s"
dead_letter_subject = "mixed_dlq.events"
dead_letter_stream = "MIXED_FAULTS_DLQ"
[drain]
timeout = "30s"
[[faults]]
at = "2s"
kind = "restart"
duration = "2s"
[[faults]]
at = "6s"
kind = "consumer_stall"
duration = "2s"
[[faults]]
at = "9s"
kind = "consumer_slow"
duration = "2s"
factor = 20
[criteria]
checks = ["lost == 0", "pending == 0"]
"#;

/// A graceful restart, a consumer stall and a slow consumer in one run:
/// each recovers, the stall shows in end-to-end latency, nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_stall_and_slowness_are_survived_and_seen() {
    let config = inline(MIXED, "mixed", "mixed", 6);
    let report = run::run(config, Signals::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!((c.scheduled, c.lost, c.pending), (480, 0, 0), "{c:#?}");
    assert!(report.passed, "{:#?}\n{c:#?}", report.criteria);
    let kinds: Vec<&str> = report.faults.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["restart", "consumer_stall", "consumer_slow"]);
    for fault in &report.faults {
        assert!(
            fault.error.is_none() && fault.recovered_secs.is_some(),
            "{fault:?}"
        );
    }
    assert!(
        report.latency["end_to_end"].max >= 1500.0,
        "events waited out the 2 s stall: {:?}",
        report.latency["end_to_end"]
    );
    assert!(
        report.latency["processing"].max >= 20.0,
        "slowed handlers: {:?}",
        report.latency["processing"]
    );
}

/// The network-blackhole scenario, shortened: a blackhole both ways, then one
/// of the server's replies only, through the harness's proxy. Attempts that
/// all fall inside the first are indeterminate; retries of publishes stored
/// while their acks were dropped are deduplicated by the stream; nothing
/// acknowledged is lost and nothing is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackholes_are_survived_with_retries_deduplicated() {
    let config = shortened("network-blackhole.toml", "blackhole", |s| {
        s.load.duration = Some(Duration::from_secs(20));
        s.publish.timeout = Duration::from_millis(500);
        s.publish.max_retries = 2;
        s.faults[0].at = Duration::from_secs(3);
        s.faults[0].duration = Duration::from_secs(5);
        s.faults[1].at = Duration::from_secs(12);
        s.faults[1].duration = Duration::from_secs(4);
    });
    let report = run::run(config, Signals::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(c.scheduled, 400);
    let proxy = report
        .target
        .proxy
        .as_ref()
        .expect("clients went through the proxy");
    assert!(
        proxy.dropped_bytes > 0 && proxy.resets > 0,
        "the blackholes dropped bytes, and their ends reset connections: {proxy:?}"
    );
    assert_eq!(
        (c.lost, c.stream_duplicates, c.pending),
        (0, 0, 0),
        "{c:#?}"
    );
    assert!(
        c.indeterminate > 0 && c.deduplicated > 0,
        "every attempt of some events fell in the blackhole, and some stored publishes were retried: {c:#?}"
    );
    assert_eq!(c.processed + c.dead_lettered, c.published + c.recovered);
    assert!(report.passed, "{:#?}\n{c:#?}", report.criteria);
    for fault in &report.faults {
        assert_eq!(fault.kind, "blackhole");
        assert!(
            fault.error.is_none() && fault.recovered_secs.is_some(),
            "{fault:?}"
        );
    }
    // The indeterminate publishes happened in the first blackhole, and
    // each blackhole was followed by a recovery the criteria could judge.
    let (first, second) = (&report.faults[0].cost, &report.faults[1].cost);
    assert!(
        first.indeterminate > 0 && first.indeterminate + second.indeterminate <= c.indeterminate,
        "{first:?} {second:?} {c:#?}"
    );
    for cost in [first, second] {
        let back = cost.recovery_secs.expect("back within bounds");
        assert!(back < 10.0, "{cost:?}");
    }
    assert!(report.consumer_stuck.is_none());
}

const NETWORK: &str = r#"
[target]
reconnect_wait = "200ms"
[stream]
name = "NETWORK_FAULTS"
subjects = ["netfaults.>"]
[load]
subject = "netfaults.events"
rate = 20
duration = "12s"
[publish]
timeout = "2s"
max_retries = 5
[consumer]
durable = "netfaults"
ack_wait = "10s"
processing_timeout = "5s"
dead_letter_subject = "netfaults_dlq.events"
dead_letter_stream = "NETWORK_FAULTS_DLQ"
[drain]
timeout = "30s"
[[faults]]
at = "1s"
kind = "latency"
delay = "150ms"
jitter = "50ms"
duration = "3s"
[[faults]]
at = "5s"
kind = "bandwidth"
bandwidth = "2KiB"
direction = "to_client"
duration = "2s"
[[faults]]
at = "9s"
kind = "reset"
duration = "1s"
[criteria]
checks = ["lost == 0", "pending == 0"]
"#;

/// Latency with jitter, a bandwidth limit on deliveries and reset
/// connections, through the proxy against a real server: each shows where
/// it should, the clients reconnect, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_bandwidth_and_resets_are_seen_and_survived() {
    let config = inline(NETWORK, "network", "network", 8);
    let report = run::run(config, Signals::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = &report.counts;
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!((c.scheduled, c.lost, c.pending), (240, 0, 0), "{c:#?}");
    assert!(report.passed, "{:#?}\n{c:#?}", report.criteria);
    for fault in &report.faults {
        assert!(
            fault.error.is_none() && fault.recovered_secs.is_some(),
            "{fault:?}"
        );
    }
    // 150 ms ± 50 ms each way: no attempt under latency returns within 200 ms.
    assert!(
        report.latency["publish_attempt"].max >= 200.0,
        "{:?}",
        report.latency["publish_attempt"]
    );
    // 2 KiB/s cannot carry 20 deliveries a second: they queue for a while.
    assert!(
        report.latency["end_to_end"].max >= 500.0,
        "{:?}",
        report.latency["end_to_end"]
    );
    assert!(
        report.warnings.iter().any(|w| w.contains("reconnects")),
        "the reset made the clients reconnect: {:?}",
        report.warnings
    );
}
