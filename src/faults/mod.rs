//! Faults on a timeline: kill -9, graceful restart and pause of embedded
//! nats-server nodes ([`server`]); latency, bandwidth, blackhole and reset
//! on the network through the harness's proxy ([`network`]); and crash,
//! stall and slowness of the consumer under test ([`consumer`]); kill,
//! restart and pause of the user's service when the harness runs it
//! ([`service`]), each recovered after its duration. Every fault is recorded (what, on which
//! node, when, for how long) for the report, and shown as active in the
//! metrics while it lasts.
//!
//! Each target's faults are an enum in its own module, which holds all a
//! kind is: its name, its settings and their checks, how it is injected
//! and how it is undone. A new kind is a variant there, and the compiler
//! then points at every match that must handle it.

pub mod consumer;
pub mod network;
pub mod server;
pub mod service;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::consumer::UnderTest;
use crate::scenario::{Invalid, Scenario};
use crate::target::embedded::EmbeddedCluster;
use crate::target::proxy::{Direction, Proxy};
pub use consumer::ConsumerFault;
pub use network::NetworkFault;
pub use server::{Node, ServerFault};
pub use service::ServiceFault;

/// A fault as it happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Applied {
    /// The kind, as the scenario names it.
    pub kind: String,
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

/// One fault of the plan: when, for how long, and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// From the start of the load.
    pub at: Duration,
    pub duration: Duration,
    pub action: Action,
}

/// What a fault does, by the target it acts on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Server {
        node: Node,
        fault: ServerFault,
    },
    Network {
        direction: Direction,
        fault: NetworkFault,
    },
    Consumer(ConsumerFault),
    Service(ServiceFault),
}

impl Action {
    /// The kind, as the scenario names it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Server { fault, .. } => fault.name(),
            Action::Network { fault, .. } => fault.name(),
            Action::Consumer(fault) => fault.name(),
            Action::Service(fault) => fault.name(),
        }
    }

    /// Where it acts, as the `node` label of `harness_fault_active` shows
    /// it: the node's index, `leader`, `network` or `consumer`.
    pub fn place(&self) -> String {
        match self {
            Action::Server {
                node: Node::Index(n),
                ..
            } => n.to_string(),
            Action::Server {
                node: Node::Leader, ..
            } => "leader".into(),
            Action::Network { .. } => "network".into(),
            Action::Consumer(_) => "consumer".into(),
            Action::Service(_) => "service".into(),
        }
    }

    /// Whether two faults of this kind at once would share one switch, so
    /// that the end of one would undo the other early (the proxy, the
    /// consumer and each node hold one state per kind). A leader is any node.
    fn shares_a_switch(&self, other: &Action) -> bool {
        let place = match (self, other) {
            (
                Action::Server {
                    node: Node::Index(a),
                    ..
                },
                Action::Server {
                    node: Node::Index(b),
                    ..
                },
            ) => a == b,
            (Action::Server { .. }, _) => false,
            _ => true,
        };
        place && self.name() == other.name()
    }
}

/// The scenario's faults as the run applies them, each checked.
pub fn plan(s: &Scenario) -> Result<Vec<Planned>, Invalid> {
    let mut planned = Vec::with_capacity(s.faults.len());
    for (i, spec) in s.faults.iter().enumerate() {
        let key = format!("faults[{i}]");
        let action = if let Some(server) = ServerFault::plan(spec, &key, s) {
            server.map(|(node, fault)| Action::Server { node, fault })
        } else if let Some(network) = NetworkFault::plan(spec, &key) {
            network.map(|(direction, fault)| Action::Network { direction, fault })
        } else if let Some(consumer) = ConsumerFault::plan(spec, &key, s) {
            consumer.map(Action::Consumer)
        } else if let Some(service) = ServiceFault::plan(spec, &key, s) {
            service.map(Action::Service)
        } else {
            Err(unknown_kind(&spec.kind, &key))
        }?;
        planned.push(Planned {
            at: spec.at,
            duration: spec.duration,
            action,
        });
    }
    no_overlaps(&planned)?;
    Ok(planned)
}

/// Every kind, as scenarios name them.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    server::KINDS
        .iter()
        .chain(network::KINDS)
        .chain(consumer::KINDS)
        .chain(service::KINDS)
        .copied()
}

fn unknown_kind(kind: &str, key: &str) -> Invalid {
    let known: Vec<String> = kinds().map(|k| format!("`{k}`")).collect();
    Invalid {
        key: format!("{key}.kind"),
        message: format!(
            "unknown fault kind `{kind}`: use one of {}",
            known.join(", ")
        ),
    }
}

/// Two faults of one kind on one switch cannot overlap.
fn no_overlaps(planned: &[Planned]) -> Result<(), Invalid> {
    for (j, later) in planned.iter().enumerate() {
        for (i, earlier) in planned.iter().enumerate().take(j) {
            let overlap =
                earlier.at < later.at + later.duration && later.at < earlier.at + earlier.duration;
            if overlap && earlier.action.shares_a_switch(&later.action) {
                return Err(Invalid {
                    key: format!("faults[{j}].at"),
                    message: format!(
                        "overlaps faults[{i}], a `{}` on the same target from {:?} for {:?}; \
                         start it after that one ends",
                        earlier.action.name(),
                        earlier.at,
                        earlier.duration
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Called with (the fault's index in the scenario, active) when it starts and ends.
pub type Watcher = Arc<dyn Fn(usize, bool) + Send + Sync>;

/// What faults act on.
#[derive(Clone)]
pub struct Targets {
    /// The embedded nodes; None for an external target.
    pub cluster: Option<Arc<Mutex<EmbeddedCluster>>>,
    pub consumer: Arc<UnderTest>,
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

fn service_of(targets: &Targets) -> Result<&crate::consumer::service::Service, String> {
    targets
        .consumer
        .service()
        .map(|s| s.as_ref())
        .ok_or_else(|| "service faults need the service the harness runs".into())
}

fn cluster_of(targets: &Targets) -> Result<&Arc<Mutex<EmbeddedCluster>>, String> {
    targets
        .cluster
        .as_ref()
        .ok_or_else(|| "server faults need an embedded target".into())
}

/// The index of the node a server fault hits, now.
async fn resolve_node(node: Node, targets: &Targets) -> Result<usize, String> {
    match node {
        Node::Index(index) => Ok(index),
        Node::Leader => leader(targets).await,
    }
}

/// The node that leads the stream under test right now.
async fn leader(targets: &Targets) -> Result<usize, String> {
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
    let cluster = cluster_of(targets)?.lock().await;
    (0..cluster.nodes())
        .find(|&n| cluster.server_name(n) == leader)
        .ok_or_else(|| format!("the leader `{leader}` is no embedded node"))
}

/// Runs every fault at its time, each in its own task so that overlapping
/// faults overlap. `stop` cuts waiting short: a fault not yet started is
/// skipped, one under way recovers at once.
pub async fn run_timeline(
    faults: Vec<Planned>,
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
    fault: Planned,
    targets: Targets,
    start: Instant,
    stop: CancellationToken,
    watch: impl Fn(bool),
) -> Option<Applied> {
    if !sleep_until(crate::clock::after(start, fault.at), &stop).await {
        return None;
    }
    let name = fault.action.name();
    let mut record = Applied {
        kind: name.to_string(),
        node: None,
        started_secs: 0.0,
        recovered_secs: None,
        error: None,
        cost: Default::default(),
        index: 0,
    };
    let node = match fault.action {
        Action::Server { node, .. } => match resolve_node(node, &targets).await {
            Ok(node) => Some(node),
            Err(e) => {
                record.started_secs = start.elapsed().as_secs_f64();
                record.error = Some(e);
                return Some(record);
            }
        },
        _ => None,
    };
    record.node = node;
    record.started_secs = start.elapsed().as_secs_f64();
    tracing::warn!(fault = name, ?node, "fault starts");
    if let Err(e) = inject(fault.action, node, &targets).await {
        record.error = Some(e);
        return Some(record);
    }
    watch(true);
    // Recover at the end of the fault, or at once if the run is stopping.
    let _ = sleep_until(crate::clock::after(Instant::now(), fault.duration), &stop).await;
    let recovered = recover(fault.action, node, &targets).await;
    watch(false);
    match recovered {
        Ok(()) => {
            record.recovered_secs = Some(start.elapsed().as_secs_f64());
            tracing::warn!(fault = name, ?node, "fault over");
        }
        Err(e) => record.error = Some(format!("recovery failed: {e}")),
    }
    Some(record)
}

/// `node`: the node a server fault resolved to.
async fn inject(action: Action, node: Option<usize>, targets: &Targets) -> Result<(), String> {
    match action {
        Action::Server { fault, .. } => {
            let mut cluster = cluster_of(targets)?.lock().await;
            let node = node.ok_or("the fault's node was not resolved")?;
            fault.inject(&mut cluster, node).await
        }
        Action::Network { direction, fault } => {
            fault.inject(proxy_of(targets)?, direction);
            Ok(())
        }
        Action::Consumer(fault) => {
            fault.inject(&targets.consumer);
            Ok(())
        }
        Action::Service(fault) => fault.inject(service_of(targets)?).await,
    }
}

async fn recover(action: Action, node: Option<usize>, targets: &Targets) -> Result<(), String> {
    match action {
        Action::Server { fault, .. } => {
            let mut cluster = cluster_of(targets)?.lock().await;
            let node = node.ok_or("the fault's node was not resolved")?;
            fault.recover(&mut cluster, node).await
        }
        Action::Network { direction, fault } => {
            fault.recover(proxy_of(targets)?, direction);
            Ok(())
        }
        Action::Consumer(fault) => {
            fault.recover(&targets.consumer);
            Ok(())
        }
        Action::Service(fault) => fault.recover(service_of(targets)?).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(faults: &str) -> Scenario {
        let text = format!("[target]\nnodes = 3\n[load]\nrate = 1\nduration = \"10s\"\n{faults}");
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn every_kind_plans_to_an_action_of_its_own_name() {
        // The consumer's kinds act on the harness's own consumer, the
        // service's on a service the harness runs: two scenarios.
        let external =
            "[consumer]\nmode = \"external\"\n[consumer.service]\ncommand = [\"true\"]\n";
        let mut names = Vec::new();
        for (kinds, extra) in [
            (&[server::KINDS, network::KINDS, consumer::KINDS][..], ""),
            (&[service::KINDS][..], external),
        ] {
            let mut faults = extra.to_string();
            for (i, kind) in kinds.iter().flat_map(|k| k.iter()).enumerate() {
                faults += &format!(
                    "[[faults]]\nat = \"{i}s\"\nduration = \"1s\"\nkind = \"{kind}\"\nbandwidth = \"1KiB\"\n"
                );
            }
            let planned = plan(&scenario(&faults)).unwrap();
            names.extend(planned.iter().map(|p| p.action.name()));
        }
        assert_eq!(names, kinds().collect::<Vec<_>>());
        assert_eq!(names.len(), 13);
    }

    #[test]
    fn each_fault_shows_where_it_acts() {
        let planned = plan(&scenario(
            "[[faults]]\nat = \"1s\"\nkind = \"kill\"\nnode = 2\n\
             [[faults]]\nat = \"1s\"\nkind = \"pause\"\nleader = true\n\
             [[faults]]\nat = \"1s\"\nkind = \"reset\"\n\
             [[faults]]\nat = \"1s\"\nkind = \"consumer_slow\"\nfactor = 3.0\n",
        ))
        .unwrap();
        let places: Vec<String> = planned.iter().map(|p| p.action.place()).collect();
        assert_eq!(places, ["2", "leader", "network", "consumer"]);
        assert_eq!(
            planned[3].action,
            Action::Consumer(ConsumerFault::Slow { factor: 3.0 })
        );
    }

    #[test]
    fn one_switch_holds_one_fault_at_a_time() {
        let two = |a: &str, b: &str| {
            plan(&scenario(&format!(
                "[[faults]]\nat = \"1s\"\nduration = \"5s\"\n{a}\n\
                 [[faults]]\nat = \"2s\"\nduration = \"5s\"\n{b}\n"
            )))
        };
        // The same node, or a leader that may be any node: one switch.
        let e = two("kind = \"kill\"\nnode = 1", "kind = \"kill\"\nnode = 1").unwrap_err();
        assert_eq!(e.key, "faults[1].at");
        assert!(two("kind = \"kill\"\nnode = 1", "kind = \"kill\"\nnode = 2").is_ok());
        assert!(two(
            "kind = \"kill\"\nleader = true",
            "kind = \"kill\"\nnode = 2"
        )
        .is_ok());
        // Different kinds each hold their own switch.
        assert!(two("kind = \"consumer_stall\"", "kind = \"consumer_slow\"").is_ok());
        assert!(two("kind = \"consumer_stall\"", "kind = \"consumer_stall\"").is_err());
        assert!(two(
            "kind = \"latency\"",
            "kind = \"latency\"\ndirection = \"to_client\""
        )
        .is_err());
    }
}
