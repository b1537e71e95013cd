//! Faults on a timeline: kill -9, graceful restart and pause of embedded
//! nats-server nodes; latency, bandwidth, blackhole and reset on the network
//! through the harness's proxy; and crash, stall and slowness of the
//! consumer under test, each recovered after its duration. Every fault is
//! recorded (what, on which node, when, for how long) for the report, and
//! shown as active in the metrics while it lasts.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::consumer::control::Control;
use crate::scenario::{Fault, FaultKind};
use crate::target::embedded::EmbeddedCluster;
use crate::target::proxy::Proxy;

/// A fault as it happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Applied {
    pub kind: FaultKind,
    /// The embedded node, for server faults.
    pub node: Option<usize>,
    /// Seconds from the start of the load.
    pub started_secs: f64,
    /// When the node was back (restarted or resumed), if it came back.
    pub recovered_secs: Option<f64>,
    /// What went wrong applying or recovering it, if anything.
    pub error: Option<String>,
    /// Recovery time, and publish failures and indeterminate publishes
    /// from its start to its recovery (see [`crate::recovery`]).
    #[serde(flatten)]
    pub cost: crate::recovery::Cost,
    /// Its place in the scenario's `faults`.
    #[serde(skip)]
    pub index: usize,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Restart => "restart",
            FaultKind::Pause => "pause",
            FaultKind::ConsumerCrash => "consumer_crash",
            FaultKind::ConsumerStall => "consumer_stall",
            FaultKind::ConsumerSlow => "consumer_slow",
            FaultKind::Latency => "latency",
            FaultKind::Bandwidth => "bandwidth",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Reset => "reset",
        }
    }
}

/// Called with (the fault's index in the scenario, active) when it starts and ends.
pub type Watcher = Arc<dyn Fn(usize, bool) + Send + Sync>;

/// What faults act on.
#[derive(Clone)]
pub struct Targets {
    /// The embedded nodes; None for an external target.
    pub cluster: Option<Arc<Mutex<EmbeddedCluster>>>,
    pub consumer: Arc<Control>,
    /// The stream under test, to find its leader.
    pub stream: Option<async_nats::jetstream::stream::Stream>,
    /// The proxy between the clients and the server(s), for network faults.
    pub proxy: Option<Arc<Proxy>>,
}

fn proxy_of(targets: &Targets) -> Result<&Proxy, String> {
    targets
        .proxy
        .as_deref()
        .ok_or_else(|| "network faults need the harness's proxy, which is not running".into())
}

/// The node a server fault hits: `node`, or the stream's leader right now.
async fn resolve_node(fault: &Fault, targets: &Targets) -> Result<usize, String> {
    if !fault.leader {
        return Ok(fault.node);
    }
    let stream = targets
        .stream
        .as_ref()
        .ok_or("no stream to find the leader of")?;
    let info = stream
        .get_info()
        .await
        .map_err(|e| format!("cannot find the stream leader: {e}"))?;
    let leader = info
        .cluster
        .and_then(|c| c.leader)
        .ok_or("the stream has no leader")?;
    let cluster = targets
        .cluster
        .as_ref()
        .ok_or("server faults need an embedded target")?;
    let cluster = cluster.lock().await;
    (0..cluster.nodes())
        .find(|&n| cluster.server_name(n) == leader)
        .ok_or_else(|| format!("the leader `{leader}` is no embedded node"))
}

/// Runs every fault at its time, each in its own task so that overlapping
/// faults overlap. `stop` cuts waiting short: a fault not yet started is
/// skipped, one under way recovers at once.
pub async fn run_timeline(
    faults: Vec<Fault>,
    targets: Targets,
    start: Instant,
    stop: CancellationToken,
    watcher: Watcher,
) -> Vec<Applied> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, fault) in faults.into_iter().enumerate() {
        let (targets, stop, watcher) = (targets.clone(), stop.clone(), watcher.clone());
        tasks.spawn(async move {
            let watch = move |active| watcher(index, active);
            (index, apply(fault, targets, start, stop, watch).await)
        });
    }
    let mut applied = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Ok((index, Some(mut record))) = result {
            record.index = index;
            applied.push((index, record));
        }
    }
    applied.sort_by_key(|(index, _)| *index);
    applied.into_iter().map(|(_, record)| record).collect()
}

async fn sleep_until(at: Instant, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(at.into()) => true,
        _ = stop.cancelled() => false,
    }
}

async fn apply(
    fault: Fault,
    targets: Targets,
    start: Instant,
    stop: CancellationToken,
    watch: impl Fn(bool),
) -> Option<Applied> {
    if !sleep_until(crate::clock::after(start, fault.at), &stop).await {
        return None;
    }
    let mut fault = fault;
    if fault.kind.on_server() {
        match resolve_node(&fault, &targets).await {
            Ok(node) => fault.node = node,
            Err(e) => {
                return Some(Applied {
                    kind: fault.kind,
                    node: None,
                    started_secs: start.elapsed().as_secs_f64(),
                    recovered_secs: None,
                    error: Some(e),
                    cost: Default::default(),
                    index: 0,
                })
            }
        }
    }
    let node = fault.kind.on_server().then_some(fault.node);
    let mut record = Applied {
        kind: fault.kind,
        node,
        started_secs: start.elapsed().as_secs_f64(),
        recovered_secs: None,
        error: None,
        cost: Default::default(),
        index: 0,
    };
    tracing::warn!(fault = fault.kind.name(), ?node, "fault starts");
    if let Err(e) = inject(&fault, &targets).await {
        record.error = Some(e);
        return Some(record);
    }
    watch(true);
    // Recover at the end of the fault, or at once if the run is stopping.
    let _ = sleep_until(crate::clock::after(Instant::now(), fault.duration), &stop).await;
    let recovered = recover(&fault, &targets).await;
    watch(false);
    match recovered {
        Ok(()) => {
            record.recovered_secs = Some(start.elapsed().as_secs_f64());
            tracing::warn!(fault = fault.kind.name(), ?node, "fault over");
        }
        Err(e) => record.error = Some(format!("recovery failed: {e}")),
    }
    Some(record)
}

async fn inject(fault: &Fault, targets: &Targets) -> Result<(), String> {
    let consumer = &targets.consumer;
    match fault.kind {
        FaultKind::ConsumerCrash => consumer.crash(),
        FaultKind::ConsumerStall => consumer.set_stalled(true),
        FaultKind::ConsumerSlow => consumer.set_slow_factor(fault.factor),
        FaultKind::Latency => {
            proxy_of(targets)?.set_latency(fault.direction, Some((fault.delay, fault.jitter)))
        }
        FaultKind::Bandwidth => {
            proxy_of(targets)?.set_bandwidth(fault.direction, fault.bandwidth.map(|b| b.0))
        }
        FaultKind::Blackhole => proxy_of(targets)?.set_blackhole(fault.direction, true),
        FaultKind::Reset => proxy_of(targets)?.reset_all(true),
        server => {
            let cluster = targets
                .cluster
                .as_ref()
                .ok_or("server faults need an embedded target")?;
            let mut cluster = cluster.lock().await;
            let done = match server {
                FaultKind::Kill => cluster.kill(fault.node).await,
                FaultKind::Restart => cluster.stop(fault.node).await,
                _ => cluster.pause(fault.node),
            };
            done.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

async fn recover(fault: &Fault, targets: &Targets) -> Result<(), String> {
    let consumer = &targets.consumer;
    match fault.kind {
        FaultKind::ConsumerCrash => consumer.revive(),
        FaultKind::ConsumerStall => consumer.set_stalled(false),
        FaultKind::ConsumerSlow => consumer.set_slow_factor(1.0),
        FaultKind::Latency => proxy_of(targets)?.set_latency(fault.direction, None),
        FaultKind::Bandwidth => proxy_of(targets)?.set_bandwidth(fault.direction, None),
        FaultKind::Blackhole => proxy_of(targets)?.set_blackhole(fault.direction, false),
        FaultKind::Reset => proxy_of(targets)?.reset_all(false),
        server => {
            let cluster = targets
                .cluster
                .as_ref()
                .ok_or("server faults need an embedded target")?;
            let mut cluster = cluster.lock().await;
            let done = match server {
                FaultKind::Pause => cluster.resume(fault.node),
                _ => cluster.restart(fault.node).await,
            };
            done.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
