//! Embedded nats-server processes: binary lookup, temporary store, free
//! ports on 127.0.0.1, readiness, and cleanup on every exit path.
//!
//! Nodes are numbered from 0; node `i` runs as server `harness-n{i+1}`. Each
//! node keeps its ports, config file and store across kill and restart, so a
//! restarted node is the same server to the cluster and to clients.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::TargetError;

mod scratch;

const BINARY_NAME: &str = "nats-server";
const MAX_NODES: usize = 5;
/// Bounds startup and restart: a cluster elects its meta leader well within it.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// Whole-cluster attempts when a reserved port was taken before the server bound it.
const START_ATTEMPTS: usize = 3;
const LOG_TAIL_LINES: usize = 20;

/// Finds nats-server: `NATS_SERVER_BIN`, then `PATH`, then `.tools/bin` under
/// the current directory, then under this crate's source folder.
pub fn find_binary() -> Result<PathBuf, TargetError> {
    let mut dirs = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        dirs.push(cwd.join(".tools/bin"));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin"));
    find_binary_in(
        std::env::var_os("NATS_SERVER_BIN"),
        std::env::var_os("PATH"),
        &dirs,
    )
}

/// [`find_binary`] with its inputs passed in. A non-empty `env_value` is the
/// user's explicit choice: if it is not an executable file that is the
/// error, rather than silently running some other nats-server.
pub fn find_binary_in(
    env_value: Option<OsString>,
    path_var: Option<OsString>,
    dirs: &[PathBuf],
) -> Result<PathBuf, TargetError> {
    if let Some(value) = env_value.filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        if is_executable(&path) {
            return Ok(path);
        }
        return Err(TargetError::MissingBinary {
            searched: format!(
                "NATS_SERVER_BIN={} (not an executable file)",
                path.display()
            ),
        });
    }
    let path_dirs: Vec<PathBuf> = path_var
        .as_deref()
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    if let Some(found) = path_dirs
        .iter()
        .chain(dirs)
        .map(|dir| dir.join(BINARY_NAME))
        .find(|candidate| is_executable(candidate))
    {
        return Ok(found);
    }
    let mut searched = vec!["NATS_SERVER_BIN (unset)".to_string(), "PATH".to_string()];
    searched.extend(dirs.iter().map(|d| d.display().to_string()));
    Err(TargetError::MissingBinary {
        searched: searched.join(", "),
    })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The three ports of one node, all on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ports {
    client: u16,
    http: u16,
    cluster: u16,
}

/// Reserves every port of every node before any server starts, holding all
/// listeners at once so no two ports of the cluster can coincide.
fn reserve_ports(nodes: usize) -> io::Result<Vec<Ports>> {
    let listeners = (0..nodes * 3)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<io::Result<Vec<_>>>()?;
    Ok(ports
        .chunks(3)
        .map(|p| Ports {
            client: p[0],
            http: p[1],
            cluster: p[2],
        })
        .collect())
}

fn node_name(node: usize) -> String {
    format!("harness-n{}", node + 1)
}

/// The config file of node `node`; a single node gets no cluster block.
fn render_config(node: usize, all: &[Ports], store_dir: &Path) -> String {
    let me = all[node];
    let mut config = format!(
        "server_name: {:?}\nlisten: \"127.0.0.1:{}\"\nhttp: \"127.0.0.1:{}\"\n\
         jetstream {{\n  store_dir: {:?}\n}}\n",
        node_name(node),
        me.client,
        me.http,
        store_dir.display().to_string(),
    );
    if all.len() > 1 {
        let routes: String = (all.iter().enumerate())
            .filter(|(i, _)| *i != node)
            .map(|(_, p)| format!("    \"nats-route://127.0.0.1:{}\"\n", p.cluster))
            .collect();
        config.push_str(&format!(
            "cluster {{\n  name: \"harness\"\n  listen: \"127.0.0.1:{}\"\n  routes: [\n{routes}  ]\n}}\n",
            me.cluster
        ));
    }
    config
}

/// The last `lines` lines of a log file, or a note saying why there are none.
fn log_tail(path: &Path, lines: usize) -> String {
    const MAX_BYTES: u64 = 64 * 1024;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(no log: {e})"),
    }
}

fn send_signal(child: &Child, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    // SAFETY: kill(2) has no memory-safety preconditions. The pid is our own
    // child that has not been reaped yet, so it cannot have been reused.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// kill(2) returns before the threads of the target have taken SIGSTOP (a
/// preempted vCPU can delay that for milliseconds), so wait, bounded, until
/// /proc shows every thread stopped. Without /proc there is nothing to check.
fn wait_stopped(pid: u32, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if all_threads_stopped(pid).unwrap_or(true) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn all_threads_stopped(pid: u32) -> io::Result<bool> {
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = fs::read_to_string(task?.path().join("stat"))?;
        // The state follows the command name, which is in parentheses.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        if state != Some('T') {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Waits for `child` to exit, polling so the runtime is never blocked.
/// Returns false if it was still running at `deadline`.
async fn reap(child: &mut Child, deadline: Instant) -> io::Result<bool> {
    loop {
        if child.try_wait()?.is_some() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One nats-server: its fixed identity, and its process while it runs.
struct Node {
    ports: Ports,
    dir: PathBuf,
    store_dir: PathBuf,
    child: Option<Child>,
    paused: AtomicBool,
}

impl Node {
    fn new(dir: PathBuf, ports: Ports) -> Node {
        Node {
            ports,
            store_dir: dir.join("store"),
            dir,
            child: None,
            paused: AtomicBool::new(false),
        }
    }
    fn config_path(&self) -> PathBuf {
        self.dir.join("nats-server.conf")
    }
    fn log_path(&self) -> PathBuf {
        self.dir.join("nats-server.log")
    }
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.ports.client)
    }
}

/// 1 to 5 nats-server processes owned by the harness, killed and removed
/// with their store when this value is dropped, whatever the exit path.
pub struct EmbeddedCluster {
    binary: PathBuf,
    nodes: Vec<Node>,
    // Declared last: dropped after `Drop::drop` has killed every process.
    scratch: scratch::Scratch,
}

impl EmbeddedCluster {
    /// Finds the binary and starts `nodes` servers, ready when JetStream
    /// answers on every one of them (for a cluster: a meta leader exists).
    pub async fn start(nodes: usize) -> Result<EmbeddedCluster, TargetError> {
        Self::start_with(find_binary()?, nodes).await
    }

    /// [`EmbeddedCluster::start`] with a given nats-server binary.
    pub async fn start_with(binary: PathBuf, nodes: usize) -> Result<EmbeddedCluster, TargetError> {
        if !(1..=MAX_NODES).contains(&nodes) {
            return Err(TargetError::Start {
                binary,
                message: format!("an embedded cluster has 1 to {MAX_NODES} nodes, not {nodes}"),
            });
        }
        let mut attempt = 1;
        loop {
            match Self::try_start(binary.clone(), nodes).await {
                Err(e) if attempt < START_ATTEMPTS && is_port_taken(&e) => {
                    tracing::warn!(
                        attempt,
                        "a reserved port was taken; retrying with new ports"
                    );
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn try_start(binary: PathBuf, nodes: usize) -> Result<EmbeddedCluster, TargetError> {
        let setup = |message: String| TargetError::Start {
            binary: binary.clone(),
            message,
        };
        let scratch = scratch::create()
            .map_err(|e| setup(format!("cannot create a temporary folder: {e}")))?;
        let ports =
            reserve_ports(nodes).map_err(|e| setup(format!("cannot reserve ports: {e}")))?;
        let mut cluster = EmbeddedCluster {
            binary: binary.clone(),
            nodes: Vec::with_capacity(nodes),
            scratch,
        };
        for (i, node_ports) in ports.iter().enumerate() {
            let node = Node::new(cluster.dir().join(format!("n{}", i + 1)), *node_ports);
            fs::create_dir_all(&node.store_dir)
                .and_then(|()| {
                    fs::write(
                        node.config_path(),
                        render_config(i, &ports, &node.store_dir),
                    )
                })
                .map_err(|e| setup(format!("cannot write {}: {e}", node.dir.display())))?;
            cluster.nodes.push(node);
        }
        // All processes first, then readiness: a cluster needs its peers to
        // elect a meta leader. On any error `cluster` drops and cleans up.
        for i in 0..nodes {
            cluster.spawn(i)?;
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for i in 0..nodes {
            cluster.wait_ready(i, deadline).await?;
        }
        tracing::info!(nodes, url = %cluster.url(), "embedded nats-server ready");
        Ok(cluster)
    }

    /// `nats://127.0.0.1:PORT` for each node.
    pub fn client_urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// Every node's client URL joined by ',', for a client that fails over.
    pub fn url(&self) -> String {
        self.client_urls().join(",")
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The temporary folder holding every node's config, log and store.
    pub fn dir(&self) -> &Path {
        self.scratch.dir.path()
    }

    /// The JetStream store of `node`. Panics if `node` is out of range.
    pub fn store_dir(&self, node: usize) -> &Path {
        &self.nodes[node].store_dir
    }

    /// The nats-server log of `node` (appended across restarts).
    pub fn log_path(&self, node: usize) -> Option<PathBuf> {
        self.nodes.get(node).map(Node::log_path)
    }

    /// The monitoring endpoint of `node`, `http://127.0.0.1:PORT`.
    pub fn monitor_url(&self, node: usize) -> Option<String> {
        (self.nodes.get(node)).map(|n| format!("http://127.0.0.1:{}", n.ports.http))
    }

    /// The process id of `node` while it runs (also while it is paused).
    pub fn pid(&self, node: usize) -> Option<u32> {
        self.nodes.get(node)?.child.as_ref().map(Child::id)
    }

    pub fn server_name(&self, node: usize) -> String {
        node_name(node)
    }

    /// CPU seconds (user + system) and peak resident bytes of the running
    /// nodes, summed; nodes not running count nothing.
    pub fn usage(&self) -> (f64, u64) {
        (0..self.nodes.len())
            .filter_map(|node| self.pid(node))
            .filter_map(|pid| process_usage(pid).ok())
            .fold((0.0, 0), |(cpu, rss), (c, r)| (cpu + c, rss + r))
    }
}

/// One process's CPU seconds and peak RSS (VmHWM), from /proc.
fn process_usage(pid: u32) -> io::Result<(f64, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields count from
    // the last `)`. utime and stime are fields 14 and 15 of the whole line.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = (ticks(11) + ticks(12)) as f64 / per_sec;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    Ok((cpu, peak_kib * 1024))
}

/// Faults: what the harness does to its own servers.
impl EmbeddedCluster {
    /// SIGKILL and reap: a crash. Nothing to do if `node` is not running.
    pub async fn kill(&mut self, node: usize) -> Result<(), TargetError> {
        let slot = self.node_mut(node)?;
        if let Some(child) = slot.child.as_mut() {
            // SIGKILL ends a stopped (paused) process too.
            child
                .kill()
                .map_err(|e| node_error(node, format!("cannot kill: {e}")))?;
            let reaped = reap(child, Instant::now() + STOP_TIMEOUT).await;
            reaped.map_err(|e| node_error(node, format!("cannot reap: {e}")))?;
            slot.child = None;
            slot.paused.store(false, Ordering::Relaxed);
            tracing::info!(node, "killed embedded nats-server");
        }
        Ok(())
    }

    /// Graceful stop: SIGTERM (after SIGCONT if paused), then SIGKILL if it
    /// has not exited within 10 s. Nothing to do if `node` is not running.
    pub async fn stop(&mut self, node: usize) -> Result<(), TargetError> {
        self.node_mut(node)?;
        self.begin_stop(node)?;
        self.finish_stop(node, Instant::now() + STOP_TIMEOUT).await
    }

    /// Starts `node` again with the same ports, config and store (stopping
    /// it first if it runs) and waits until JetStream answers on it. A node
    /// that starts but is not ready in 20 s is left running for the caller.
    pub async fn restart(&mut self, node: usize) -> Result<(), TargetError> {
        self.stop(node).await?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.spawn(node)?;
            match self.wait_ready(node, deadline).await {
                // Our old port may briefly be held by someone else's socket.
                Err(e) if is_port_taken(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                result => return result,
            }
        }
    }

    /// SIGSTOP: the server freezes with its connections open.
    /// Returns once every thread has stopped, so nothing sent after it is answered.
    pub fn pause(&self, node: usize) -> Result<(), TargetError> {
        self.signal(node, libc::SIGSTOP, "pause")?;
        self.nodes[node].paused.store(true, Ordering::Relaxed);
        if let Some(pid) = self.pid(node) {
            if !wait_stopped(pid, Duration::from_secs(2)) {
                tracing::warn!(node, "nats-server threads still running 2 s after SIGSTOP");
            }
        }
        Ok(())
    }

    /// SIGCONT: undoes [`EmbeddedCluster::pause`].
    pub fn resume(&self, node: usize) -> Result<(), TargetError> {
        self.signal(node, libc::SIGCONT, "resume")?;
        self.nodes[node].paused.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Stops every node gracefully, at once, then removes the store.
    pub async fn shutdown(mut self) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        for node in 0..self.nodes.len() {
            if let Err(e) = self.begin_stop(node) {
                tracing::warn!(error = %e, "shutdown");
            }
        }
        for node in 0..self.nodes.len() {
            if let Err(e) = self.finish_stop(node, deadline).await {
                tracing::warn!(error = %e, "shutdown");
            }
        }
        // Drop kills anything left and removes the temporary folder.
    }

    fn node_mut(&mut self, node: usize) -> Result<&mut Node, TargetError> {
        let nodes = self.nodes.len();
        self.nodes.get_mut(node).ok_or_else(|| {
            node_error(
                node,
                format!("no such node (the cluster has {nodes}, numbered from 0)"),
            )
        })
    }

    fn signal(&self, node: usize, signal: libc::c_int, what: &str) -> Result<(), TargetError> {
        let slot = self.nodes.get(node).ok_or_else(|| {
            node_error(
                node,
                format!(
                    "no such node (the cluster has {}, numbered from 0)",
                    self.nodes.len()
                ),
            )
        })?;
        let child = (slot.child.as_ref())
            .ok_or_else(|| node_error(node, format!("cannot {what}: not running")))?;
        send_signal(child, signal).map_err(|e| node_error(node, format!("cannot {what}: {e}")))
    }

    fn begin_stop(&mut self, node: usize) -> Result<(), TargetError> {
        let slot = &mut self.nodes[node];
        if let Some(child) = slot.child.as_ref() {
            // A stopped process would hold SIGTERM pending forever.
            if slot.paused.swap(false, Ordering::Relaxed) {
                let _ = send_signal(child, libc::SIGCONT);
            }
            send_signal(child, libc::SIGTERM)
                .map_err(|e| node_error(node, format!("cannot stop: {e}")))?;
        }
        Ok(())
    }

    async fn finish_stop(&mut self, node: usize, deadline: Instant) -> Result<(), TargetError> {
        let slot = &mut self.nodes[node];
        let Some(child) = slot.child.as_mut() else {
            return Ok(());
        };
        let reap_error = |e: io::Error| node_error(node, format!("cannot reap: {e}"));
        if !reap(child, deadline).await.map_err(reap_error)? {
            tracing::warn!(node, "nats-server ignored SIGTERM; killing it");
            let _ = child.kill();
            reap(child, Instant::now() + STOP_TIMEOUT)
                .await
                .map_err(reap_error)?;
        }
        slot.child = None;
        tracing::info!(node, "stopped embedded nats-server");
        Ok(())
    }

    fn spawn(&mut self, node: usize) -> Result<(), TargetError> {
        let binary = self.binary.clone();
        let slot = &mut self.nodes[node];
        let start_error = |e: io::Error| TargetError::Start {
            binary: binary.clone(),
            message: format!("{}: {e}", node_name(node)),
        };
        let log = (File::options().create(true).append(true))
            .open(slot.log_path())
            .map_err(start_error)?;
        let mut command = Command::new(&binary);
        command
            .arg("--config")
            .arg(slot.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(start_error)?)
            .stderr(log)
            // Its own process group: a Ctrl-C in the terminal reaches the
            // harness only, which then shuts its servers down in order.
            .process_group(0);
        // If the harness dies without cleaning up (SIGKILL), the kernel kills
        // the server too. The signal follows the thread that spawned it;
        // spawns run on the runtime's worker threads, which live as long as
        // the run.
        // SAFETY: prctl and getppid are async-signal-safe and nothing here
        // allocates, so the closure is sound between fork and exec.
        let parent = std::process::id();
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(start_error)?;
        slot.child = Some(child);
        slot.paused.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Polls `node` until JetStream answers on it, failing fast if the
    /// process exits and with the log tail if `deadline` passes.
    async fn wait_ready(&mut self, node: usize, deadline: Instant) -> Result<(), TargetError> {
        let url = self.nodes[node].url();
        let mut client = None;
        let mut last = "not probed yet".to_string();
        loop {
            if let Some(status) = self.exit_status(node) {
                return Err(self.start_error(node, format!("exited during startup ({status})")));
            }
            let now = Instant::now();
            if now >= deadline {
                let waited = READY_TIMEOUT.as_secs();
                return Err(self.start_error(
                    node,
                    format!("JetStream not ready after {waited} s ({last})"),
                ));
            }
            match probe(&url, &mut client, deadline - now).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Reaps `node` if it has exited, returning how.
    fn exit_status(&mut self, node: usize) -> Option<ExitStatus> {
        let slot = &mut self.nodes[node];
        let status = match slot.child.as_mut()?.try_wait() {
            Ok(status) => status?,
            Err(e) => {
                tracing::warn!(node, error = %e, "cannot poll nats-server");
                return None;
            }
        };
        slot.child = None;
        Some(status)
    }

    fn start_error(&self, node: usize, what: String) -> TargetError {
        // The tail, not the log's path: a failed start removes the folder.
        let slot = &self.nodes[node];
        let tail = log_tail(&slot.log_path(), LOG_TAIL_LINES);
        TargetError::Start {
            binary: self.binary.clone(),
            message: format!(
                "{} on {} {what}; its log ends with:\n{tail}",
                node_name(node),
                slot.url()
            ),
        }
    }
}

/// One readiness probe: connect (once) and ask JetStream for account info.
async fn probe(
    url: &str,
    client: &mut Option<async_nats::Client>,
    budget: Duration,
) -> Result<(), String> {
    let budget = budget.min(Duration::from_secs(2));
    let connected = match client {
        Some(connected) => connected,
        None => {
            let options = async_nats::ConnectOptions::new().connection_timeout(budget);
            client.insert(options.connect(url).await.map_err(|e| e.to_string())?)
        }
    };
    let mut jetstream = async_nats::jetstream::new(connected.clone());
    jetstream.set_timeout(budget);
    jetstream
        .query_account()
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

fn node_error(node: usize, message: String) -> TargetError {
    TargetError::Node { node, message }
}

/// A server that could not bind a port we reserved for it (someone else
/// took it between our release and its bind).
fn is_port_taken(error: &TargetError) -> bool {
    matches!(error, TargetError::Start { message, .. } if message.contains("address already in use"))
}

impl Drop for EmbeddedCluster {
    /// Synchronous, so it also runs on panics and early returns: kill every
    /// process still running, wait for each, then the folder goes with `dir`.
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                if node.paused.load(Ordering::Relaxed) {
                    let _ = send_signal(child, libc::SIGCONT);
                }
                let _ = child.kill();
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(client: u16) -> Ports {
        Ports {
            client,
            http: client + 1,
            cluster: client + 2,
        }
    }

    #[test]
    fn a_single_node_has_jetstream_and_no_cluster_block() {
        let config = render_config(0, &[ports(4000)], Path::new("/tmp/x/store"));
        assert!(config.contains("server_name: \"harness-n1\""));
        assert!(config.contains("listen: \"127.0.0.1:4000\""));
        assert!(config.contains("http: \"127.0.0.1:4001\""));
        assert!(config.contains("store_dir: \"/tmp/x/store\""));
        assert!(!config.contains("cluster"));
    }

    #[test]
    fn a_cluster_node_routes_to_every_other_node() {
        let all = [ports(4000), ports(5000), ports(6000)];
        let config = render_config(1, &all, Path::new("/s"));
        assert!(config.contains("server_name: \"harness-n2\""));
        assert!(config.contains("listen: \"127.0.0.1:5002\""));
        assert!(config.contains("nats-route://127.0.0.1:4002"));
        assert!(config.contains("nats-route://127.0.0.1:6002"));
        assert!(!config.contains("nats-route://127.0.0.1:5002"));
    }

    #[test]
    fn reserved_ports_are_distinct() {
        let reserved = reserve_ports(5).unwrap();
        let mut all: Vec<u16> = reserved
            .iter()
            .flat_map(|p| [p.client, p.http, p.cluster])
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 15);
    }

    #[test]
    fn the_log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&path, 2), "c\nd");
        assert!(log_tail(&dir.path().join("missing"), 2).starts_with("(no log:"));
    }
}
