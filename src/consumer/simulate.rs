//! What the simulated handler does with a delivery: how long it works and
//! how it ends, drawn from the scenario's distribution and ratios.

use std::time::Duration;

use rand::Rng;

use crate::scenario::{Consumer, Distribution, Processing};

/// How a handler ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Works for the given time, then succeeds: ack.
    Ok,
    /// Hangs past processing_timeout: NAK with a delay, redelivered later.
    Hang,
    /// Fails: dead-lettered, then TERMed.
    Error,
}

/// One draw: the verdict and the work time.
pub fn draw(consumer: &Consumer, rng: &mut impl Rng) -> (Verdict, Duration) {
    let roll: f64 = rng.random();
    let verdict = if roll < consumer.timeout_ratio {
        Verdict::Hang
    } else if roll < consumer.timeout_ratio + consumer.error_ratio {
        Verdict::Error
    } else {
        Verdict::Ok
    };
    let work = match verdict {
        // Long enough that the timeout, not the work, ends it.
        Verdict::Hang => consumer.processing_timeout.saturating_mul(2),
        Verdict::Ok | Verdict::Error => work_time(&consumer.processing, rng),
    };
    (verdict, work)
}

/// A processing time from the configured distribution, never negative.
pub fn work_time(p: &Processing, rng: &mut impl Rng) -> Duration {
    let mean = p.mean.as_secs_f64();
    let secs = match p.distribution {
        Distribution::Constant => mean,
        Distribution::Uniform => {
            let (low, high) = (p.min.as_secs_f64(), p.max.as_secs_f64());
            if high > low {
                rng.random_range(low..high)
            } else {
                low
            }
        }
        Distribution::Normal => {
            // Box-Muller.
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            mean + z * p.stddev.as_secs_f64()
        }
        Distribution::Exponential => {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            -u.ln() * mean
        }
    };
    crate::clock::secs(secs)
}

/// Back to back, within this of the previous handler's end, a handler
/// continues the previous one's clock (tokio's timer rounds each sleep up
/// to its next millisecond).
const BACK_TO_BACK: std::time::Duration = std::time::Duration::from_millis(2);

/// A worker's simulated work as a clock: a handler that starts right after
/// the previous one ends its work where that one's should have ended plus
/// its own time, so the timer's rounding does not pile up and a worker
/// with a constant 4 ms of work resolves 250 events a second, not 200.
#[derive(Debug, Default)]
pub struct WorkClock {
    last_end: Option<std::time::Instant>,
}

impl WorkClock {
    /// When work of `work` begun at `started` should end.
    pub fn end(
        &mut self,
        started: std::time::Instant,
        work: std::time::Duration,
    ) -> std::time::Instant {
        let begin = match self.last_end {
            Some(end) if started.saturating_duration_since(end) < BACK_TO_BACK => end.min(started),
            _ => started,
        };
        let end = crate::clock::after(begin, work);
        self.last_end = Some(end);
        end
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn back_to_back_work_keeps_its_own_clock_and_idle_work_starts_afresh() {
        use std::time::{Duration, Instant};
        let ms = Duration::from_millis;
        let mut clock = WorkClock::default();
        let t0 = Instant::now();
        assert_eq!(clock.end(t0, ms(4)), t0 + ms(4));
        // The timer woke 1 ms late: the next work ends 4 ms after the
        // previous one should have, so it takes 3 ms.
        assert_eq!(clock.end(t0 + ms(5), ms(4)), t0 + ms(8));
        // After an idle gap the work takes its whole time from its start.
        assert_eq!(clock.end(t0 + ms(50), ms(4)), t0 + ms(54));
    }

    fn mean_of(p: &Processing) -> f64 {
        let mut rng = StdRng::seed_from_u64(9);
        (0..20_000)
            .map(|_| work_time(p, &mut rng).as_secs_f64())
            .sum::<f64>()
            / 20_000.0
    }

    #[test]
    fn distributions_have_their_configured_means() {
        let ms = Duration::from_millis;
        let base = Processing::default();
        let constant = Processing {
            mean: ms(5),
            ..base.clone()
        };
        assert!((mean_of(&constant) - 0.005).abs() < 1e-12);
        let uniform = Processing {
            distribution: Distribution::Uniform,
            min: ms(10),
            max: ms(30),
            ..base.clone()
        };
        assert!((mean_of(&uniform) - 0.020).abs() < 0.0005);
        let normal = Processing {
            distribution: Distribution::Normal,
            mean: ms(50),
            stddev: ms(5),
            ..base.clone()
        };
        assert!((mean_of(&normal) - 0.050).abs() < 0.0005);
        let exponential = Processing {
            distribution: Distribution::Exponential,
            mean: ms(10),
            ..base
        };
        assert!((mean_of(&exponential) - 0.010).abs() < 0.0005);
    }

    #[test]
    fn ratios_split_the_outcomes() {
        let consumer = Consumer {
            timeout_ratio: 0.1,
            error_ratio: 0.2,
            ..Consumer::default()
        };
        let mut rng = StdRng::seed_from_u64(4);
        let draws: Vec<_> = (0..10_000).map(|_| draw(&consumer, &mut rng).0).collect();
        let share = |v: Verdict| draws.iter().filter(|d| **d == v).count() as f64 / 10_000.0;
        assert!((share(Verdict::Hang) - 0.1).abs() < 0.015);
        assert!((share(Verdict::Error) - 0.2).abs() < 0.015);
        assert!((share(Verdict::Ok) - 0.7).abs() < 0.015);
    }

    #[test]
    fn a_hang_outlasts_the_processing_timeout() {
        let consumer = Consumer {
            timeout_ratio: 1.0,
            ..Consumer::default()
        };
        let (verdict, work) = draw(&consumer, &mut StdRng::seed_from_u64(1));
        assert_eq!(verdict, Verdict::Hang);
        assert!(work > consumer.processing_timeout);
    }
}
