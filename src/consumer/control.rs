//! Faults the consumer under test can be put through: crash (drop every
//! in-flight delivery unacknowledged, come back later), stall (stop reading)
//! and slow (processing takes longer).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Shared by the workers and the fault timeline.
#[derive(Debug)]
pub struct Control {
    /// Cancelled by a crash; replaced by a fresh one when the workers return.
    life: Mutex<CancellationToken>,
    down: AtomicBool,
    stalled: AtomicBool,
    /// Processing time multiplier, as f64 bits.
    slow_factor: AtomicU64,
    /// Deliveries being handled right now.
    busy: AtomicU64,
}

/// Counts a delivery as being handled for as long as it lives.
pub struct Busy<'a>(&'a AtomicU64);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Control {
    fn default() -> Self {
        Control {
            life: Mutex::new(CancellationToken::new()),
            down: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            slow_factor: AtomicU64::new(1.0f64.to_bits()),
            busy: AtomicU64::new(0),
        }
    }
}

impl Control {
    /// The token that a crash cancels: workers drop what they hold when it fires.
    pub fn life(&self) -> CancellationToken {
        self.life.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Crashes the consumer: in-flight deliveries are dropped, workers stay down.
    pub fn crash(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.life.lock().unwrap_or_else(|p| p.into_inner()).cancel();
    }

    /// Brings the workers back after a crash.
    pub fn revive(&self) {
        *self.life.lock().unwrap_or_else(|p| p.into_inner()) = CancellationToken::new();
        self.down.store(false, Ordering::SeqCst);
    }

    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    pub fn set_slow_factor(&self, factor: f64) {
        self.slow_factor.store(factor.to_bits(), Ordering::SeqCst);
    }

    /// Workers may read deliveries now.
    pub fn may_work(&self) -> bool {
        !self.down.load(Ordering::SeqCst) && !self.stalled.load(Ordering::SeqCst)
    }

    /// Marks a delivery as being handled until the guard drops.
    pub fn handling(&self) -> Busy<'_> {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(&self.busy)
    }

    /// Deliveries being handled right now.
    pub fn busy(&self) -> u64 {
        self.busy.load(Ordering::Relaxed)
    }

    pub fn slowed(&self, work: Duration) -> Duration {
        let factor = f64::from_bits(self.slow_factor.load(Ordering::SeqCst));
        crate::clock::secs(work.as_secs_f64() * factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_cancels_the_current_life_and_revival_starts_a_new_one() {
        let control = Control::default();
        let before = control.life();
        assert!(control.may_work());
        control.crash();
        assert!(before.is_cancelled() && !control.may_work());
        control.revive();
        assert!(!control.life().is_cancelled() && control.may_work());
        control.set_stalled(true);
        assert!(!control.may_work());
        {
            let _one = control.handling();
            let _two = control.handling();
            assert_eq!(control.busy(), 2);
        }
        assert_eq!(control.busy(), 0);
        control.set_slow_factor(3.0);
        assert_eq!(
            control.slowed(Duration::from_millis(10)),
            Duration::from_millis(30)
        );
    }
}
