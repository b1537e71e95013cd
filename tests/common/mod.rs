//! Test guard: a real nats-server (or a small cluster) per test, on free
//! ports with a temporary store, killed and removed when the guard drops.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use harness::target::embedded::EmbeddedCluster;

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
