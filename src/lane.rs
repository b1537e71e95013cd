//! A lane: one thread running a single-threaded runtime, for one side of
//! the hot path and its own connection.
//!
//! The publisher has one (its connection, its pacer and its sender), and
//! the consumer under test another (its connection and its workers). A
//! due event then goes from the pacer's wake-up to the socket, and its
//! PubAck from the socket back to its books, without waking another
//! thread; a delivery likewise from the socket to its worker and its ack.
//! No futex, no work stealing: on a machine of few cores a hop between
//! threads costs more than an event's own work.
//!
//! The publisher's lane also asks the kernel for a short time slice
//! ([`Slice::Short`]): on a machine the server under test keeps busy, a
//! woken pacer would otherwise wait behind the server's threads for their
//! whole slice (seen: 4 ms), and every event due meanwhile would be sent
//! late.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The lane's thread and runtime; dropping it stops both, and every task
/// still on the lane (the publisher's connection among them) with them.
#[derive(Debug)]
pub struct Lane {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

/// The time slice a lane's thread asks the kernel for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slice {
    /// The kernel's default.
    Default,
    /// [`SHORT_SLICE`]: under EEVDF (Linux 6.12 and later) a thread with a
    /// shorter slice than the running one may preempt it when it wakes,
    /// so a pacer waiting on its timer runs soon after the timer fires.
    /// It takes no privilege, and changes neither the thread's share of
    /// the CPU nor its priority; older kernels ignore it.
    Short,
}

/// The shortest slice the kernel accepts, near the pacer's usual run of
/// work at one wake-up (a burst's sends and the answers in).
pub const SHORT_SLICE: Duration = Duration::from_micros(100);

impl Lane {
    /// `name` names the thread; `slice` is the time slice it asks for.
    pub fn start(name: &str, slice: Slice) -> std::io::Result<Lane> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (started, handle) = std::sync::mpsc::channel();
        // The runtime is made and dropped on its own thread: dropping one
        // inside another runtime's task would panic.
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                fine_timer_slack();
                if slice == Slice::Short {
                    if let Err(e) = request_slice(SHORT_SLICE) {
                        tracing::debug!("the kernel refused a short time slice: {e}");
                    }
                }
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                let _ = started.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Whatever is left (a stuck connection) is not waited for.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        let handle = handle.recv().map_err(|_| {
            std::io::Error::other("the lane's thread ended before its runtime started")
        })??;
        Ok(Lane {
            handle,
            _stop: stop,
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on the lane and waits for its output from anywhere.
    pub async fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle.spawn(future).await {
            Ok(output) => output,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("a lane stopped while in use"),
        }
    }
}

/// Asks the kernel for no timer slack on the calling thread (the default
/// of 50 µs would add to every wake-up).
fn fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK changes only this thread's timer slack;
    // 1 ns is the smallest the kernel takes (0 means "the default").
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// The kernel's `struct sched_attr`, as far as its first version
/// (`SCHED_ATTR_SIZE_VER0`, 48 bytes), which the libc crate does not have.
#[repr(C)]
#[derive(Debug, Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    /// For a normal (fair) thread: the slice it asks for, in nanoseconds.
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// Asks for `slice` on the calling thread, keeping its normal policy and
/// its nice value.
fn request_slice(slice: Duration) -> std::io::Result<()> {
    let mut attr = thread_sched_attr()?;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    attr.flags = 0;
    attr.runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
    // SAFETY: sched_setattr reads `size` bytes of a SchedAttr we own that
    // lives across the call; pid 0 is the calling thread.
    let done = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The calling thread's scheduling attributes.
fn thread_sched_attr() -> std::io::Result<SchedAttr> {
    let mut attr = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: sched_getattr writes at most `size` bytes into a SchedAttr
    // we own; pid 0 is the calling thread.
    let done = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut SchedAttr,
            size,
            0,
        )
    };
    if done == 0 {
        Ok(attr)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux 6.12 took a fair thread's `sched_runtime` as its slice;
    /// older kernels ignore it.
    fn kernel_takes_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().ok());
        matches!(
            (parts.next().flatten(), parts.next().flatten()),
            (Some(major), Some(minor)) if (major, minor) >= (6, 12)
        )
    }

    #[tokio::test]
    async fn the_publishers_lane_asks_for_a_short_slice_and_the_others_do_not() {
        let short = Lane::start("harness-short", Slice::Short).expect("lane");
        let plain = Lane::start("harness-plain", Slice::Default).expect("lane");
        let read = || thread_sched_attr().map(|a| (a.policy, a.nice, a.runtime));
        let (policy, nice, runtime) = short.run(async move { read() }).await.expect("getattr");
        let (plain_policy, plain_nice, plain_runtime) =
            plain.run(async move { read() }).await.expect("getattr");
        // Whatever policy and nice the process runs under, both keep them.
        assert_eq!(
            (policy, nice),
            (plain_policy, plain_nice),
            "policy and nice kept"
        );
        if kernel_takes_slices() {
            assert_eq!(runtime, SHORT_SLICE.as_nanos() as u64);
            assert!(
                plain_runtime > runtime,
                "the default slice is longer: {plain_runtime}"
            );
        }
    }

    #[tokio::test]
    async fn runs_futures_on_its_own_thread_and_stops_when_dropped() {
        let lane = Lane::start("harness-publisher", Slice::Default).expect("lane");
        let name = lane
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await;
        assert_eq!(name.as_deref(), Some("harness-publisher"));
        let handle = lane.handle().clone();
        let (_keep, never) = oneshot::channel::<()>();
        let pending = handle.spawn(async move {
            let _ = never.await;
        });
        drop(lane);
        let joined = tokio::time::timeout(Duration::from_secs(5), pending)
            .await
            .expect("the lane's tasks end with it");
        assert!(joined.unwrap_err().is_cancelled());
    }
}
