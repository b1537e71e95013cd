//! Retry delays: exponential with a ceiling and jitter.

use std::time::Duration;

use rand::Rng;

use crate::scenario::Backoff;

/// The delay before retry number `retry` (1 for the first retry), before jitter:
/// initial · multiplier^(retry-1), capped at max.
pub fn base_delay(backoff: &Backoff, retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(64) as i32;
    let secs = backoff.initial.as_secs_f64() * backoff.multiplier.powi(exponent);
    crate::clock::secs(secs.min(backoff.max.as_secs_f64()))
}

/// The delay with jitter: drawn uniformly from base · [1 - jitter, 1 + jitter],
/// so that retries of many events do not arrive at the server together.
pub fn delay(backoff: &Backoff, retry: u32, rng: &mut impl Rng) -> Duration {
    let base = base_delay(backoff, retry).as_secs_f64();
    let factor = if backoff.jitter > 0.0 {
        1.0 + rng.random_range(-backoff.jitter..=backoff.jitter)
    } else {
        1.0
    };
    crate::clock::secs(base * factor)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn default_backoff_is_one_two_four_seconds() {
        let backoff = Backoff::default();
        let delays: Vec<_> = (1..=3).map(|r| base_delay(&backoff, r)).collect();
        assert_eq!(
            delays,
            [1, 2, 4].map(Duration::from_secs).to_vec(),
            "the stability defaults NATS users run"
        );
    }

    #[test]
    fn delays_stop_growing_at_the_ceiling() {
        let backoff = Backoff {
            max: Duration::from_secs(5),
            ..Backoff::default()
        };
        assert_eq!(base_delay(&backoff, 3), Duration::from_secs(4));
        assert_eq!(base_delay(&backoff, 4), Duration::from_secs(5));
        assert_eq!(base_delay(&backoff, 60), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_within_its_band_and_spreads() {
        let backoff = Backoff::default();
        let mut rng = StdRng::seed_from_u64(3);
        let samples: Vec<f64> = (0..1000)
            .map(|_| delay(&backoff, 2, &mut rng).as_secs_f64())
            .collect();
        assert!(samples.iter().all(|s| (1.6..=2.4).contains(s)));
        let spread = samples.iter().cloned().fold(f64::MIN, f64::max)
            - samples.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 0.5, "jitter spreads retries: {spread}");
    }

    #[test]
    fn no_jitter_means_exact_delays() {
        let backoff = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(delay(&backoff, 3, &mut rng), Duration::from_secs(4));
    }
}
