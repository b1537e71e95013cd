//! The pacer's clock: a `timerfd` on the publisher's lane, so that the
//! lane's runtime wakes exactly when the next event is due.
//!
//! tokio's own timer ticks in whole milliseconds; a timerfd is armed to
//! the nanosecond and wakes the runtime through its poller like any other
//! descriptor, so the pacer and the sender are one task on one thread and
//! never spin. A wake-up is late by the scheduler's delay only; each
//! event's lag is measured from its own due time, so lateness shows, and
//! it does not accumulate, since every due time is fixed from the start.
//!
//! At high rates the gaps between events are shorter than a wake-up's own
//! cost, so the pacer wakes at most every [`burst`] (200 µs, longer near
//! the ceiling) and sends whatever fell due meanwhile at once: a few
//! thousand wake-ups a second at most, whatever the rate, and CPU that
//! follows the events, not the clock.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The shortest time between two wake-ups up to [`BURSTS_GROW_FROM`].
/// Well under the 1 ms that schedule_lag may reach.
pub const BURST: Duration = Duration::from_micros(200);
/// Above this rate the time between wake-ups grows with the rate...
const BURSTS_GROW_FROM: f64 = 20_000.0;
/// ...up to this. Near the ceiling the server's cost per event is what
/// limits the pipeline, and it falls with the events it reads at once.
pub const LONGEST_BURST: Duration = Duration::from_micros(600);

/// The shortest time between two wake-ups at `rate` events a second:
/// [`BURST`] up to [`BURSTS_GROW_FROM`], longer in proportion above it, up
/// to [`LONGEST_BURST`]. Each event's lag is still measured from its own
/// due time.
pub fn burst(rate: f64) -> Duration {
    let most = LONGEST_BURST.as_secs_f64() / BURST.as_secs_f64();
    // `max` and `min` (unlike `clamp`) also turn NaN and infinity into a
    // factor that `mul_f64` takes.
    let scale = (rate / BURSTS_GROW_FROM).max(1.0).min(most);
    BURST.mul_f64(scale)
}

/// A one-shot timer on the current runtime's poller.
#[derive(Debug)]
pub struct Timer {
    fd: AsyncFd<OwnedFd>,
    /// What it is armed for: a wait for the same time again (the pacer's
    /// loop turns for other reasons too) does not arm it again.
    armed: Option<Instant>,
}

impl Timer {
    /// Must be called on a runtime with its I/O driver enabled.
    pub fn new() -> io::Result<Timer> {
        // SAFETY: timerfd_create takes no pointers; the result is checked.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor just made, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays
        // open, and the same, for as long as it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(Timer { fd, armed: None })
    }

    /// Returns at `at` or later, never before; at once if it has passed.
    /// Cancel-safe: a later call re-arms the timer.
    pub async fn sleep_until(&mut self, at: Instant) {
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        if self.armed != Some(at) {
            if !self.arm(left) {
                // Cannot happen with a valid timerfd; tokio's timer still works.
                return tokio::time::sleep_until(at.into()).await;
            }
            self.armed = Some(at);
        }
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                return tokio::time::sleep_until(at.into()).await;
            };
            let mut expirations = 0u64;
            // SAFETY: reads at most 8 bytes into a u64 we own.
            let read = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut expirations as *mut u64).cast(),
                    8,
                )
            };
            if read == 8 {
                self.armed = None;
                return;
            }
            // Not expired yet (a readiness left from before this arming).
            ready.clear_ready();
        }
    }

    /// Arms the timer to expire once, `left` from now.
    fn arm(&self, left: Duration) -> bool {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: the descriptor is a timerfd we own; `spec` lives across
        // the call; the old value is not asked for. Arming also resets the
        // count of expirations, so an old one is never read as this one.
        let armed =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        armed == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn it_is_never_early_and_a_cancelled_wait_leaves_nothing_behind() {
        let mut timer = Timer::new().expect("timerfd");
        for gap in [20_000, 500, 50] {
            let due = Instant::now() + Duration::from_micros(gap);
            timer.sleep_until(due).await;
            assert!(Instant::now() >= due, "never early");
        }
        // A wait given up before its time, then a longer one: the first
        // arming must not end the second early.
        let short = Instant::now() + Duration::from_millis(1);
        let _ = tokio::time::timeout(Duration::from_micros(10), timer.sleep_until(short)).await;
        std::thread::sleep(Duration::from_millis(3));
        let due = Instant::now() + Duration::from_millis(20);
        timer.sleep_until(due).await;
        assert!(Instant::now() >= due, "a stale expiration woke it early");
    }

    #[test]
    fn bursts_grow_with_the_rate_only_above_twenty_thousand_a_second() {
        assert_eq!(burst(10.0), BURST);
        assert_eq!(burst(20_000.0), BURST);
        assert_eq!(burst(40_000.0), Duration::from_micros(400));
        assert_eq!(burst(1e9), LONGEST_BURST);
        assert_eq!(burst(f64::NAN), BURST);
        assert_eq!(burst(f64::INFINITY), LONGEST_BURST);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_due_time_in_the_past_returns_at_once() {
        let mut timer = Timer::new().expect("timerfd");
        let started = Instant::now();
        timer.sleep_until(started - Duration::from_millis(1)).await;
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
