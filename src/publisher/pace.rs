//! The pacer's wait: the publisher's thread sleeps until the next event is
//! due, and never spins.
//!
//! A sleeping thread wakes late: by its timer slack (50 µs by default for
//! an ordinary thread), which the pacer sets to the kernel's smallest, plus
//! the scheduler's delay. Each event's lag is measured from its own due
//! time, so lateness shows; it does not accumulate, since every due time
//! is fixed from the start.
//!
//! At high rates the gaps between events are shorter than a wake-up's own
//! cost, so the pacer sleeps at least [`BURST`] and sends whatever fell due
//! meanwhile at once, as a burst: a few thousand wake-ups a second at
//! most, whatever the rate, and CPU that follows the events, not the clock.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The longest single sleep, so that `stop` is noticed promptly.
const SLICE: Duration = Duration::from_millis(50);
/// The shortest sleep: wake-ups at most this often, each sending what fell
/// due as one burst. Well under the 1 ms that schedule_lag may reach.
const BURST: Duration = Duration::from_micros(200);

/// Sleeps until due times.
#[derive(Debug)]
pub struct Pacer {
    _private: (),
}

impl Pacer {
    /// For the calling thread: asks the kernel for no timer slack.
    pub fn new() -> Pacer {
        // SAFETY: PR_SET_TIMERSLACK changes only this thread's timer slack;
        // 1 ns is the smallest the kernel takes (0 means "the default").
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
        }
        Pacer { _private: () }
    }

    /// Waits until `due`; false if `stop` fired first.
    pub fn wait_until(&mut self, due: Instant, stop: &CancellationToken) -> bool {
        let mut first = true;
        loop {
            if stop.is_cancelled() {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            let left = due - now;
            // A gap this short means a high rate: sleep a burst's length.
            // Otherwise sleep exactly what is left (in slices).
            let nap = if first && left < BURST {
                BURST
            } else {
                left.min(SLICE)
            };
            first = false;
            std::thread::sleep(nap);
        }
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_never_early_and_stops_when_told() {
        let mut pacer = Pacer::new();
        let stop = CancellationToken::new();
        for gap in [20_000, 500, 50] {
            let due = Instant::now() + Duration::from_micros(gap);
            assert!(pacer.wait_until(due, &stop));
            assert!(Instant::now() >= due, "never early");
        }
        stop.cancel();
        assert!(!pacer.wait_until(Instant::now() + Duration::from_secs(60), &stop));
    }

    #[test]
    fn a_due_time_in_the_past_returns_at_once() {
        let mut pacer = Pacer::new();
        let started = Instant::now();
        assert!(pacer.wait_until(
            started - Duration::from_millis(1),
            &CancellationToken::new()
        ));
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
