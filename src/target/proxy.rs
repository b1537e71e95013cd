//! A TCP proxy the harness places between its clients and the nats-server(s)
//! when a scenario has network faults. Each server address gets a listener
//! on 127.0.0.1; the publisher and the consumer connect through it, and the
//! faults change how bytes cross it:
//!
//! - latency: each chunk is held for `delay ± jitter`, order kept;
//! - bandwidth: each direction is limited to so many bytes per second;
//! - blackhole: connections stay open but every byte read is dropped; when
//!   it ends, the connections that lost bytes are reset, as TCP itself would
//!   give up on them, and clients reconnect;
//! - reset: every open connection is reset (RST), and new ones are reset on
//!   arrival until the fault ends.
//!
//! Each direction of a connection is a reader, which applies the blackhole
//! and stamps each chunk with the time it is due, and a writer, which waits
//! for that time and for the bandwidth budget. A bounded queue between them
//! turns a slow writer into TCP back-pressure instead of memory.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bytes read at once from either side.
const CHUNK: usize = 16 * 1024;
/// Chunks queued between a reader and its writer.
const QUEUE: usize = 64;
/// How long a new connection may take to reach its server.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(5);

/// Which way across the proxy a network fault acts.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Both ways.
    #[default]
    Both,
    /// Client to server only: publishes, pulls and acks.
    ToServer,
    /// Server to client only: PubAcks, deliveries and PONGs.
    ToClient,
}

impl Direction {
    /// The indexes (0 to server, 1 to client) this direction covers.
    fn covers(self, way: usize) -> bool {
        match self {
            Direction::Both => true,
            Direction::ToServer => way == 0,
            Direction::ToClient => way == 1,
        }
    }
}

/// What the network does right now, per way (0 to server, 1 to client).
#[derive(Debug, Clone, Copy, Default)]
struct Conditions {
    latency: [Option<(Duration, Duration)>; 2],
    bandwidth: [Option<u64>; 2],
    blackhole: [bool; 2],
    refuse: bool,
}

/// One proxied connection: both sockets, and a switch that ends it.
struct Conn {
    client: Arc<TcpStream>,
    server: Arc<TcpStream>,
    stop: CancellationToken,
    /// Bytes of this connection were dropped by a blackhole.
    tainted: AtomicBool,
}

impl Conn {
    /// Ends the connection with a reset on both sides.
    fn reset(&self) {
        let _ = self.client.set_zero_linger();
        let _ = self.server.set_zero_linger();
        self.stop.cancel();
    }
}

#[derive(Default)]
struct Shared {
    conditions: Mutex<Conditions>,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// Bytes a blackhole dropped.
    dropped: AtomicU64,
    /// Connections reset by a fault, a blackhole's end, or refused on arrival.
    resets: AtomicU64,
}

impl Shared {
    fn now(&self) -> Conditions {
        *self.conditions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut Conditions)) {
        f(&mut self.conditions.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn live(&self) -> Vec<Arc<Conn>> {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.values().cloned().collect()
    }
}

/// The running proxy. Dropping it closes every listener and connection.
pub struct Proxy {
    url: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("url", &self.url).finish()
    }
}

impl Proxy {
    /// Starts one listener on 127.0.0.1 per server of `url` (`nats://h:p`,
    /// several separated by commas).
    pub async fn start(url: &str) -> io::Result<Proxy> {
        let shared = Arc::new(Shared::default());
        let stop = CancellationToken::new();
        let mut proxied = Vec::new();
        for one in url.split(',').map(str::trim) {
            let (prefix, host, port) = split_url(one)?;
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let local = listener.local_addr()?;
            proxied.push(format!("{prefix}127.0.0.1:{}", local.port()));
            let upstream = format!("{host}:{port}");
            tokio::spawn(accept(listener, upstream, shared.clone(), stop.clone()));
        }
        Ok(Proxy {
            url: proxied.join(","),
            shared,
            stop,
        })
    }

    /// The URL clients connect to instead of the servers'.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connections open right now.
    pub fn connections(&self) -> usize {
        self.shared.conns.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Bytes dropped by blackholes so far.
    pub fn dropped_bytes(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Connections reset so far.
    pub fn resets(&self) -> u64 {
        self.shared.resets.load(Ordering::Relaxed)
    }

    /// Adds `delay ± jitter` to every chunk going `direction`; None removes it.
    pub fn set_latency(&self, direction: Direction, latency: Option<(Duration, Duration)>) {
        self.shared.change(|c| {
            for way in 0..2 {
                if direction.covers(way) {
                    c.latency[way] = latency;
                }
            }
        });
    }

    /// Limits each connection's `direction` to so many bytes per second.
    pub fn set_bandwidth(&self, direction: Direction, bytes_per_sec: Option<u64>) {
        self.shared.change(|c| {
            for way in 0..2 {
                if direction.covers(way) {
                    c.bandwidth[way] = bytes_per_sec.filter(|b| *b > 0);
                }
            }
        });
    }

    /// Starts dropping every byte going `direction`; `false` stops it and
    /// resets the connections that lost bytes meanwhile.
    pub fn set_blackhole(&self, direction: Direction, on: bool) {
        self.shared.change(|c| {
            for way in 0..2 {
                if direction.covers(way) {
                    c.blackhole[way] = on;
                }
            }
        });
        if !on {
            for conn in self.shared.live() {
                if conn.tainted.load(Ordering::Relaxed) {
                    self.shared.resets.fetch_add(1, Ordering::Relaxed);
                    conn.reset();
                }
            }
        }
    }

    /// Resets every open connection; while `refuse` holds, new ones too.
    pub fn reset_all(&self, refuse: bool) {
        self.shared.change(|c| c.refuse = refuse);
        if refuse {
            for conn in self.shared.live() {
                self.shared.resets.fetch_add(1, Ordering::Relaxed);
                conn.reset();
            }
        }
    }
}

/// `nats://user:pw@host:port` into (`nats://user:pw@`, host, port).
fn split_url(url: &str) -> io::Result<(String, String, u16)> {
    let bad = |why: &str| {
        let url = super::redact(url);
        io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {why}"))
    };
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("nats://", url),
    };
    let (user, hostport) = match rest.rfind('@') {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => ("", rest),
    };
    let hostport = hostport.trim_end_matches('/');
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            let port = p.parse().map_err(|_| bad("the port is not a number"))?;
            (h, port)
        }
        _ => (hostport, 4222),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((format!("{scheme}{user}"), host.to_string(), port))
}

async fn accept(
    listener: TcpListener,
    upstream: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    loop {
        let client = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(e) => {
                    tracing::debug!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (shared, stop, upstream) = (shared.clone(), stop.clone(), upstream.clone());
        tokio::spawn(async move {
            if shared.now().refuse {
                shared.resets.fetch_add(1, Ordering::Relaxed);
                let _ = client.set_zero_linger();
                return;
            }
            let connected =
                tokio::time::timeout(UPSTREAM_CONNECT, TcpStream::connect(&upstream)).await;
            let server = match connected {
                Ok(Ok(server)) => server,
                // The server is down: the client sees what it would without
                // the proxy, a connection that fails at once.
                _ => {
                    let _ = client.set_zero_linger();
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            serve(client, server, shared, stop).await;
        });
    }
}

/// Carries one connection until either side closes or a fault ends it.
async fn serve(client: TcpStream, server: TcpStream, shared: Arc<Shared>, stop: CancellationToken) {
    let conn = Arc::new(Conn {
        client: Arc::new(client),
        server: Arc::new(server),
        stop: stop.child_token(),
        tainted: AtomicBool::new(false),
    });
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    shared
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, conn.clone());
    let to_server = way(0, conn.clone(), shared.clone());
    let to_client = way(1, conn.clone(), shared.clone());
    tokio::join!(to_server, to_client);
    shared
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
}

/// One direction of a connection: 0 client to server, 1 server to client.
async fn way(way: usize, conn: Arc<Conn>, shared: Arc<Shared>) {
    let (from, to) = match way {
        0 => (conn.client.clone(), conn.server.clone()),
        _ => (conn.server.clone(), conn.client.clone()),
    };
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    // The reader ends at end of file, and the writer then flushes what is
    // queued; a broken socket on either side ends the whole connection.
    let reader = read_side(way, from, tx, &conn, &shared);
    let writer = write_side(way, to, rx, &conn, &shared);
    tokio::select! {
        _ = conn.stop.cancelled() => {}
        _ = async { tokio::join!(reader, writer) } => {}
    }
    conn.stop.cancel();
}

async fn read_side(
    way: usize,
    from: Arc<TcpStream>,
    tx: mpsc::Sender<(Instant, Vec<u8>)>,
    conn: &Conn,
    shared: &Shared,
) {
    let mut last_due = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    loop {
        if from.readable().await.is_err() {
            return;
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        let now = shared.now();
        if now.blackhole[way] {
            conn.tainted.store(true, Ordering::Relaxed);
            shared.dropped.fetch_add(n as u64, Ordering::Relaxed);
            continue;
        }
        let mut due = Instant::now();
        if let Some((delay, jitter)) = now.latency[way] {
            due += jittered(delay, jitter);
        }
        // TCP keeps order, so no chunk may overtake the one before it.
        due = due.max(last_due);
        last_due = due;
        if tx.send((due, buf[..n].to_vec())).await.is_err() {
            return;
        }
    }
}

async fn write_side(
    way: usize,
    to: Arc<TcpStream>,
    mut rx: mpsc::Receiver<(Instant, Vec<u8>)>,
    conn: &Conn,
    shared: &Shared,
) {
    while let Some((due, bytes)) = rx.recv().await {
        // A timer costs a tick (about a millisecond) even when already due:
        // only chunks held back by latency wait for one.
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        if write_all(&to, &bytes).await.is_err() {
            conn.stop.cancel();
            return;
        }
        if let Some(rate) = shared.now().bandwidth[way] {
            let secs = bytes.len() as f64 / rate as f64;
            tokio::time::sleep(crate::clock::secs(secs)).await;
        }
    }
}

async fn write_all(to: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        to.writable().await?;
        match to.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `delay ± jitter`, uniformly, never below zero.
fn jittered(delay: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return delay;
    }
    let spread = jitter.as_secs_f64();
    let offset = rand::rng().random_range(-spread..=spread);
    crate::clock::secs(delay.as_secs_f64() + offset)
}

#[cfg(test)]
mod tests;
