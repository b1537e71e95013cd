//! Faults on a timeline: kill -9, graceful restart and pause of embedded
//! nats-server nodes, each recovered after its duration. Every fault is
//! recorded (what, on which node, when, for how long) for the report, and
//! shown as active in the metrics while it lasts.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::scenario::{Fault, FaultKind};
use crate::target::embedded::EmbeddedCluster;

/// A fault as it happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Applied {
    pub kind: FaultKind,
    pub node: usize,
    /// Seconds from the start of the load.
    pub started_secs: f64,
    /// When the node was back (restarted or resumed), if it came back.
    pub recovered_secs: Option<f64>,
    /// What went wrong applying or recovering it, if anything.
    pub error: Option<String>,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Restart => "restart",
            FaultKind::Pause => "pause",
        }
    }
}

/// Called with (fault, node, active) when a fault starts and ends.
pub type Watcher = Arc<dyn Fn(FaultKind, usize, bool) + Send + Sync>;

/// Runs every fault at its time, each in its own task so that overlapping
/// faults overlap. `stop` cuts waiting short: a fault not yet started is
/// skipped, one under way recovers at once.
pub async fn run_timeline(
    faults: Vec<Fault>,
    cluster: Arc<Mutex<EmbeddedCluster>>,
    start: Instant,
    stop: CancellationToken,
    watcher: Watcher,
) -> Vec<Applied> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, fault) in faults.into_iter().enumerate() {
        let (cluster, stop, watcher) = (cluster.clone(), stop.clone(), watcher.clone());
        tasks.spawn(async move { (index, apply(fault, cluster, start, stop, watcher).await) });
    }
    let mut applied = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Ok((index, Some(record))) = result {
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
    cluster: Arc<Mutex<EmbeddedCluster>>,
    start: Instant,
    stop: CancellationToken,
    watcher: Watcher,
) -> Option<Applied> {
    if !sleep_until(start + fault.at, &stop).await {
        return None;
    }
    let node = fault.node;
    let mut record = Applied {
        kind: fault.kind,
        node,
        started_secs: start.elapsed().as_secs_f64(),
        recovered_secs: None,
        error: None,
    };
    tracing::warn!(fault = fault.kind.name(), node, "fault starts");
    let injected = {
        let mut cluster = cluster.lock().await;
        match fault.kind {
            FaultKind::Kill => cluster.kill(node).await,
            FaultKind::Restart => cluster.stop(node).await,
            FaultKind::Pause => cluster.pause(node),
        }
    };
    if let Err(e) = injected {
        record.error = Some(e.to_string());
        return Some(record);
    }
    watcher(fault.kind, node, true);
    // Recover at the end of the fault, or at once if the run is stopping.
    let _ = sleep_until(Instant::now() + fault.duration, &stop).await;
    let recovered = {
        let mut cluster = cluster.lock().await;
        match fault.kind {
            FaultKind::Kill | FaultKind::Restart => cluster.restart(node).await,
            FaultKind::Pause => cluster.resume(node),
        }
    };
    watcher(fault.kind, node, false);
    match recovered {
        Ok(()) => {
            record.recovered_secs = Some(start.elapsed().as_secs_f64());
            tracing::warn!(fault = fault.kind.name(), node, "fault over: node back");
        }
        Err(e) => record.error = Some(format!("recovery failed: {e}")),
    }
    Some(record)
}
