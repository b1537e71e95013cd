//! Arithmetic on durations and instants that cannot panic. Validation
//! bounds every value a scenario holds, so none of these limits is reached
//! by a valid scenario; they are the second line, so that a value that slips
//! through ends in a long wait instead of a panic in a task.

use std::time::{Duration, Instant};

/// Far enough to mean "never" for a run, near enough to fit every clock.
const FAR: Duration = Duration::from_secs(30 * 366 * 86_400);

/// Seconds as a duration: negative and NaN give zero, too large gives `FAR`.
pub fn secs(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).map_or(FAR, |d| d.min(FAR))
}

/// `now + wait`, at most `FAR` ahead.
pub fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(FAR)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_saturate_instead_of_panicking() {
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(-1.0), Duration::ZERO);
        assert_eq!(secs(f64::INFINITY), FAR);
        assert_eq!(secs(1e300), FAR);
        assert_eq!(secs(1.5), Duration::from_millis(1500));
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now);
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
