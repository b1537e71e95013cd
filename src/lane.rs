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

impl Lane {
    /// `name` names the thread.
    pub fn start(name: &str) -> std::io::Result<Lane> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (started, handle) = std::sync::mpsc::channel();
        // The runtime is made and dropped on its own thread: dropping one
        // inside another runtime's task would panic.
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                fine_timer_slack();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_futures_on_its_own_thread_and_stops_when_dropped() {
        let lane = Lane::start("harness-publisher").expect("lane");
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
