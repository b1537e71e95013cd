//! The pacer's wait: the publisher's thread sleeps until an event is due,
//! waking early by a margin it learns, and spends only that margin
//! yielding the CPU in a loop.
//!
//! A sleeping thread wakes late: by the kernel's timer slack (50 µs by
//! default for an ordinary thread) plus the scheduler's delay, which on a
//! virtual machine can reach a millisecond. Waking a fixed 1.5 ms early
//! and spinning the rest held the schedule to microseconds, but cost 1.5 ms
//! of a core per event: 1.5% of a core at 10 events/s, for nothing. So the
//! thread asks for no timer slack, and the margin follows how late its own
//! sleeps actually wake: it jumps up to a late wake-up at once (the next
//! one is likely as late) and creeps back down over a few dozen on-time
//! ones. The spin then covers the wake-up's lateness and little more.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The longest single sleep, so that `stop` is noticed promptly.
const SLICE: Duration = Duration::from_millis(50);
/// The margin's bounds: below the floor a spin is not worth a syscall; the
/// ceiling is the old fixed margin, the most a wake-up was seen to be late.
const MIN_MARGIN: Duration = Duration::from_micros(20);
const MAX_MARGIN: Duration = Duration::from_micros(1500);
/// How much of the gap to an on-time wake-up the margin gives back each time.
const DECAY: u32 = 32;
/// How much of the margin a wait that never slept gives back: slowly, since
/// the late wake-up that widened it is likely to come again.
const UNUSED_DECAY: u32 = 128;

/// Sleeps until due times, learning how early it must wake.
#[derive(Debug)]
pub struct Pacer {
    margin: Duration,
}

impl Pacer {
    /// For the calling thread: asks the kernel for no timer slack.
    pub fn new() -> Pacer {
        // SAFETY: PR_SET_TIMERSLACK changes only this thread's timer slack;
        // 1 ns is the smallest the kernel takes (0 means "the default").
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
        }
        Pacer {
            margin: Duration::from_micros(200),
        }
    }

    /// Waits until `due`; false if `stop` fired first.
    pub fn wait_until(&mut self, due: Instant, stop: &CancellationToken) -> bool {
        let mut slept = false;
        loop {
            if stop.is_cancelled() {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                if !slept {
                    self.unused();
                }
                return true;
            }
            let left = due - now;
            if left > self.margin {
                let asked = (left - self.margin).min(SLICE);
                std::thread::sleep(asked);
                slept = true;
                self.learn(now.elapsed().saturating_sub(asked));
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// A wait that never slept, its whole gap spun: the margin may be wider
    /// than the gaps between events (one late wake-up at a high rate), and
    /// without a sleep it would never learn otherwise. It shrinks until
    /// the pacer sleeps again and measures.
    fn unused(&mut self) {
        self.margin = (self.margin - self.margin / UNUSED_DECAY).max(MIN_MARGIN);
    }

    /// Learns from one sleep that woke `late` past what it asked for.
    fn learn(&mut self, late: Duration) {
        let wanted = (late + late / 4).clamp(MIN_MARGIN, MAX_MARGIN);
        self.margin = if wanted > self.margin {
            wanted
        } else {
            self.margin - (self.margin - wanted) / DECAY
        };
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

    fn near(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) < Duration::from_micros(1)
    }

    #[test]
    fn the_margin_jumps_up_to_a_late_wake_up_and_creeps_back_down() {
        let mut pacer = Pacer {
            margin: Duration::from_micros(200),
        };
        pacer.learn(Duration::from_micros(800));
        assert_eq!(
            pacer.margin,
            Duration::from_micros(1000),
            "up at once, with a quarter to spare"
        );
        pacer.learn(Duration::from_millis(50));
        assert_eq!(pacer.margin, MAX_MARGIN, "never above the ceiling");
        for _ in 0..500 {
            pacer.learn(Duration::from_micros(40));
        }
        assert!(
            near(pacer.margin, Duration::from_micros(50)),
            "down to a quarter above on-time wake-ups: {:?}",
            pacer.margin
        );
        for _ in 0..500 {
            pacer.learn(Duration::ZERO);
        }
        assert!(near(pacer.margin, MIN_MARGIN), "{:?}", pacer.margin);
        // Gaps shorter than the margin: it shrinks without a sleep to learn from.
        pacer.learn(Duration::from_millis(2));
        for _ in 0..800 {
            pacer.unused();
        }
        assert!(near(pacer.margin, MIN_MARGIN), "{:?}", pacer.margin);
    }

    #[test]
    fn it_wakes_on_time_and_stops_when_told() {
        let mut pacer = Pacer::new();
        let stop = CancellationToken::new();
        let due = Instant::now() + Duration::from_millis(20);
        assert!(pacer.wait_until(due, &stop));
        assert!(Instant::now() >= due, "never early");
        stop.cancel();
        assert!(!pacer.wait_until(Instant::now() + Duration::from_secs(60), &stop));
    }
}
