//! Faults on an embedded nats-server node: kill -9, graceful restart and
//! pause, each on a given node or on whichever node leads the stream.

use crate::scenario::{require, Fault, Invalid, Scenario};
use crate::target::embedded::EmbeddedCluster;

/// What happens to the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFault {
    /// SIGKILL the node, then start it again after the fault's duration
    /// (same store and port).
    Kill,
    /// Stop the node gracefully (lame duck), then start it again.
    Restart,
    /// SIGSTOP the node for the fault's duration, then SIGCONT.
    Pause,
}

/// Which node a server fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// The embedded node of this index, from 0.
    Index(usize),
    /// Whichever node leads the stream under test when the fault starts.
    Leader,
}

/// The kinds of this module, as scenarios name them.
pub const KINDS: &[&str] = &["kill", "restart", "pause"];

impl ServerFault {
    pub fn name(self) -> &'static str {
        match self {
            ServerFault::Kill => "kill",
            ServerFault::Restart => "restart",
            ServerFault::Pause => "pause",
        }
    }

    /// The fault `spec` describes, if its kind is one of this module's:
    /// checked against the target, which must be embedded and have the node.
    pub fn plan(spec: &Fault, key: &str, s: &Scenario) -> Option<Result<(Node, Self), Invalid>> {
        let fault = match spec.kind.as_str() {
            "kill" => ServerFault::Kill,
            "restart" => ServerFault::Restart,
            "pause" => ServerFault::Pause,
            _ => return None,
        };
        Some(node(spec, key, s).map(|node| (node, fault)))
    }

    pub async fn inject(self, cluster: &mut EmbeddedCluster, node: usize) -> Result<(), String> {
        let done = match self {
            ServerFault::Kill => cluster.kill(node).await,
            ServerFault::Restart => cluster.stop(node).await,
            ServerFault::Pause => cluster.pause(node),
        };
        done.map_err(|e| e.to_string())
    }

    pub async fn recover(self, cluster: &mut EmbeddedCluster, node: usize) -> Result<(), String> {
        let done = match self {
            ServerFault::Kill | ServerFault::Restart => cluster.restart(node).await,
            ServerFault::Pause => cluster.resume(node),
        };
        done.map_err(|e| e.to_string())
    }
}

fn node(spec: &Fault, key: &str, s: &Scenario) -> Result<Node, Invalid> {
    require(s.target.url.is_none(), &format!("{key}.kind"), || {
        "server faults need an embedded target (the harness must own the nats-server); remove target.url".into()
    })?;
    require(
        !spec.leader || s.target.nodes > 1,
        &format!("{key}.leader"),
        || "a single node leads every stream; set target.nodes = 3 for a leader fault".into(),
    )?;
    require(spec.node < s.target.nodes, &format!("{key}.node"), || {
        format!(
            "node {} does not exist: target.nodes is {} (nodes count from 0)",
            spec.node, s.target.nodes
        )
    })?;
    Ok(if spec.leader {
        Node::Leader
    } else {
        Node::Index(spec.node)
    })
}
