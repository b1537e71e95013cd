//! The user's service as a process of the harness: started before the load
//! with the run's settings in its environment, waited for until it is
//! ready, its output appended to a log, and stopped on every way out
//! (SIGTERM, then SIGKILL after `stop_timeout`; a dropped handle kills it).
//! The fault timeline kills, restarts and pauses it ([`crate::faults`]).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::scenario;

/// How often readiness and exits are looked at.
const LOOK: Duration = Duration::from_millis(100);

pub struct Service {
    spec: scenario::Service,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// The durable it consumes from, for the first-pull readiness check.
    durable: PullConsumer,
    child: Mutex<Option<Child>>,
    /// Exits nobody asked for, as `exit status` texts.
    exits: std::sync::Mutex<Vec<String>>,
}

impl Service {
    /// `env`: what the harness tells the service (its server, stream,
    /// durable, subjects), besides the scenario's own `env`.
    pub fn new(
        spec: scenario::Service,
        env: Vec<(String, String)>,
        log: PathBuf,
        durable: PullConsumer,
    ) -> Service {
        Service {
            spec,
            env,
            log,
            durable,
            child: Mutex::new(None),
            exits: Default::default(),
        }
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Exits of its own during the run, each with its status.
    pub fn exits(&self) -> Vec<String> {
        self.exits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Starts it and waits until it is ready.
    pub async fn start(&self) -> Result<(), String> {
        let mut child = self.child.lock().await;
        self.note_exit(&mut child);
        if child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open its log {}: {e}", self.log.display()))?;
        let logged_from = log.metadata().map_or(0, |m| m.len());
        let err = log
            .try_clone()
            .map_err(|e| format!("cannot open its log {}: {e}", self.log.display()))?;
        let (program, args) = self
            .spec
            .command
            .split_first()
            .ok_or("the service has no command")?;
        let started = Command::new(program)
            .args(args)
            .envs(self.env.iter().cloned())
            .envs(&self.spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start `{program}`: {e}"))?;
        tracing::info!(pid = started.id(), log = %self.log.display(), "service started");
        *child = Some(started);
        drop(child);
        self.ready(logged_from).await
    }

    /// Waits for the readiness the scenario names.
    async fn ready(&self, logged_from: u64) -> Result<(), String> {
        let deadline = Instant::now() + self.spec.ready_timeout;
        loop {
            if let Some(status) = self.exited().await {
                return Err(format!(
                    "the service exited before it was ready ({status}); its log: {}",
                    self.log.display()
                ));
            }
            if self.is_ready(logged_from).await {
                tracing::info!("service ready");
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the service was not ready within {} ({}); its log: {}",
                    humantime::format_duration(self.spec.ready_timeout),
                    self.readiness(),
                    self.log.display()
                ));
            }
            tokio::time::sleep(LOOK).await;
        }
    }

    fn readiness(&self) -> String {
        match (&self.spec.ready_log, self.spec.ready_port) {
            (Some(text), _) => format!("no line of its output held `{text}`"),
            (None, Some(port)) => format!("nothing accepted connections on 127.0.0.1:{port}"),
            (None, None) => "it never pulled from its durable".into(),
        }
    }

    async fn is_ready(&self, logged_from: u64) -> bool {
        match (&self.spec.ready_log, self.spec.ready_port) {
            (Some(text), _) => std::fs::read(&self.log).is_ok_and(|log| {
                let new = log.get(logged_from as usize..).unwrap_or_default();
                String::from_utf8_lossy(new).contains(text.as_str())
            }),
            (None, Some(port)) => tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok(),
            (None, None) => self
                .durable
                .get_info()
                .await
                .is_ok_and(|info| info.num_waiting > 0),
        }
    }

    /// Its exit status if it has exited, which is then noted.
    async fn exited(&self) -> Option<String> {
        let mut child = self.child.lock().await;
        let status = child.as_mut()?.try_wait().ok().flatten()?;
        *child = None;
        Some(describe(status))
    }

    /// Notes an exit nobody asked for.
    fn note_exit(&self, child: &mut Option<Child>) {
        let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) else {
            return;
        };
        *child = None;
        self.exits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(describe(status));
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(&self) -> Result<(), String> {
        let mut child = self.child.lock().await;
        self.note_exit(&mut child);
        let Some(mut running) = child.take() else {
            return Err("the service was not running".into());
        };
        running
            .kill()
            .await
            .map_err(|e| format!("cannot kill the service: {e}"))
    }

    /// SIGTERM; SIGKILL if it is still there after `stop_timeout`.
    pub async fn stop(&self) -> Result<(), String> {
        let mut child = self.child.lock().await;
        self.note_exit(&mut child);
        let Some(mut running) = child.take() else {
            return Ok(());
        };
        signal(&running, libc::SIGTERM)?;
        match tokio::time::timeout(self.spec.stop_timeout, running.wait()).await {
            Ok(Ok(status)) => {
                tracing::info!(status = %describe(status), "service stopped");
                Ok(())
            }
            _ => {
                tracing::warn!(
                    "the service did not exit within {} of SIGTERM: killed",
                    humantime::format_duration(self.spec.stop_timeout)
                );
                running
                    .kill()
                    .await
                    .map_err(|e| format!("cannot kill the service: {e}"))
            }
        }
    }

    /// SIGSTOP (`paused`) or SIGCONT.
    pub async fn pause(&self, paused: bool) -> Result<(), String> {
        let child = self.child.lock().await;
        let running = child.as_ref().ok_or("the service is not running")?;
        signal(running, if paused { libc::SIGSTOP } else { libc::SIGCONT })
    }
}

fn signal(child: &Child, signal: libc::c_int) -> Result<(), String> {
    let pid = child.id().ok_or("the service has exited")?;
    // SAFETY: kill(2) on the pid of a child this handle has not reaped yet.
    let done = unsafe { libc::kill(pid as libc::pid_t, signal) };
    if done == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot signal the service: {}",
            std::io::Error::last_os_error()
        ))
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}
