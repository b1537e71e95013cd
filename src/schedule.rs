//! The rate profile as intended send offsets: the open model's clock.
//!
//! Phases are normalised into piecewise-linear rate segments. The expected
//! number of events by time t is N(t) = ∫ rate. Event i is due when N(t)
//! reaches its threshold: i itself for uniform arrivals, or the i-th point of
//! a unit-rate Poisson process for Poisson arrivals (the time-rescaling
//! theorem turns that into a Poisson process with the profile's rate). Both
//! are computed lazily, so a schedule of hours costs no memory.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::scenario::{Arrivals, Load, Phase};

/// A stretch of time whose rate moves linearly from `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start_secs: f64,
    length_secs: f64,
    from: f64,
    to: f64,
    /// N at the start of the segment.
    events_before: f64,
}

impl Segment {
    fn events(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.length_secs
    }

    /// Time into the segment at which `x` events of it have been due.
    fn time_for(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        let slope = (self.to - self.from) / self.length_secs;
        if slope.abs() < 1e-12 {
            return x / self.from;
        }
        // Solve from·τ + slope·τ²/2 = x, in the form that stays stable
        // when the slope is tiny or negative.
        let a = slope / 2.0;
        let b = self.from;
        2.0 * x / (b + (b * b + 4.0 * a * x).max(0.0).sqrt())
    }

    fn rate_at(&self, t: f64) -> f64 {
        self.from + (self.to - self.from) * (t - self.start_secs) / self.length_secs
    }
}

/// The normalised rate profile of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    segments: Vec<Segment>,
}

impl Profile {
    /// The load's phases, or its single constant rate.
    pub fn from_load(load: &Load) -> Profile {
        let phases = if load.phases.is_empty() {
            vec![Phase::Constant {
                duration: load.duration.unwrap_or_default(),
                rate: load.rate.unwrap_or_default(),
            }]
        } else {
            load.phases.clone()
        };
        Profile::from_phases(&phases)
    }

    pub fn from_phases(phases: &[Phase]) -> Profile {
        let mut pieces = Vec::new();
        for phase in phases {
            let secs = phase.duration().as_secs_f64();
            match *phase {
                Phase::Constant { rate, .. } => pieces.push((secs, rate, rate)),
                Phase::Ramp { from, to, .. } => pieces.push((secs, from, to)),
                Phase::Step {
                    from, to, steps, ..
                } => {
                    let steps = steps.max(1);
                    for k in 0..steps {
                        let level = if steps == 1 {
                            to
                        } else {
                            from + (to - from) * f64::from(k) / f64::from(steps - 1)
                        };
                        pieces.push((secs / f64::from(steps), level, level));
                    }
                }
            }
        }
        let mut segments = Vec::with_capacity(pieces.len());
        let (mut start_secs, mut events_before) = (0.0, 0.0);
        for (length_secs, from, to) in pieces {
            let segment = Segment {
                start_secs,
                length_secs,
                from,
                to,
                events_before,
            };
            start_secs += length_secs;
            events_before += segment.events();
            segments.push(segment);
        }
        Profile { segments }
    }

    pub fn duration(&self) -> Duration {
        crate::clock::secs(
            self.segments
                .last()
                .map_or(0.0, |s| s.start_secs + s.length_secs),
        )
    }

    /// N(end): the expected number of events.
    pub fn expected_events(&self) -> f64 {
        self.segments
            .last()
            .map_or(0.0, |s| s.events_before + s.events())
    }

    /// N(offset): events due by `offset`, as a real number.
    pub fn events_by(&self, offset: Duration) -> f64 {
        let t = offset.as_secs_f64();
        self.segments
            .iter()
            .take_while(|s| s.start_secs <= t)
            .last()
            .map_or(0.0, |s| {
                let into = (t - s.start_secs).min(s.length_secs);
                let rate_then = s.from + (s.to - s.from) * into / s.length_secs;
                s.events_before + (s.from + rate_then) / 2.0 * into
            })
    }

    /// The intended rate at `offset` (0 after the end).
    pub fn rate_at(&self, offset: Duration) -> f64 {
        let t = offset.as_secs_f64();
        self.segments
            .iter()
            .find(|s| t >= s.start_secs && t < s.start_secs + s.length_secs)
            .map_or(0.0, |s| s.rate_at(t))
    }

    /// The same shape at `share` of the rate: what one shard of several
    /// intends.
    pub fn scaled(&self, share: f64) -> Profile {
        let segments = self
            .segments
            .iter()
            .map(|s| Segment {
                from: s.from * share,
                to: s.to * share,
                events_before: s.events_before * share,
                ..*s
            })
            .collect();
        Profile { segments }
    }

    /// The offset at which `n` events have been due, if within the profile.
    fn offset_for(&self, n: f64) -> Option<Duration> {
        let segment = self
            .segments
            .iter()
            .find(|s| n < s.events_before + s.events() && s.events() > 0.0)?;
        let into = segment.time_for(n - segment.events_before);
        let t = (segment.start_secs + into).min(segment.start_secs + segment.length_secs);
        Some(crate::clock::secs(t))
    }
}

/// Intended send offsets, one per event, in order.
#[derive(Debug, Clone)]
pub struct Schedule {
    profile: Profile,
    arrivals: Arrivals,
    rng: StdRng,
    threshold: f64,
    next_seq: u64,
    /// Only this shard's events, numbered in its own order.
    shard: Option<crate::shard::Shard>,
}

impl Schedule {
    pub fn new(profile: Profile, arrivals: Arrivals, seed: u64) -> Schedule {
        let mut schedule = Schedule {
            profile,
            arrivals,
            rng: StdRng::seed_from_u64(seed),
            threshold: 0.0,
            next_seq: 0,
            shard: None,
        };
        if arrivals == Arrivals::Poisson {
            schedule.threshold = schedule.exponential_gap();
        }
        schedule
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The rate this schedule sends at `offset`: the profile's, or a
    /// shard's share of it.
    pub fn rate_at(&self, offset: Duration) -> f64 {
        let share = self.shard.map_or(1.0, |s| s.share());
        self.profile.rate_at(offset) * share
    }

    /// Only `shard`'s events of this whole schedule, at their own offsets,
    /// numbered from 0: event i of the whole is event i / N of shard i mod N.
    pub fn for_shard(mut self, shard: crate::shard::Shard) -> Schedule {
        self.shard = Some(shard);
        self
    }

    fn exponential_gap(&mut self) -> f64 {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        -u.ln()
    }
}

/// (event sequence number, intended offset from the start of the run).
impl Iterator for Schedule {
    type Item = (u64, Duration);

    fn next(&mut self) -> Option<(u64, Duration)> {
        loop {
            let (seq, threshold) = (self.next_seq, self.threshold);
            self.next_seq += 1;
            self.threshold += match self.arrivals {
                Arrivals::Uniform => 1.0,
                Arrivals::Poisson => self.exponential_gap(),
            };
            // Another shard's event costs only its draw, not its offset.
            let mine = match self.shard {
                None => Some(seq),
                Some(shard) if shard.takes(seq) => Some(seq / u64::from(shard.count)),
                Some(_) => None,
            };
            match mine {
                Some(seq) => return self.profile.offset_for(threshold).map(|o| (seq, o)),
                // Past the profile's end, as offset_for would say.
                None if threshold >= self.profile.expected_events() => return None,
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn offsets(phases: &[Phase]) -> Vec<Duration> {
        Schedule::new(Profile::from_phases(phases), Arrivals::Uniform, 1)
            .map(|(_, offset)| offset)
            .collect()
    }

    #[test]
    fn constant_rate_is_evenly_spaced_and_exact_in_count() {
        let all = offsets(&[Phase::Constant {
            duration: secs(300),
            rate: 10.0,
        }]);
        assert_eq!(all.len(), 3000);
        assert_eq!(all[0], Duration::ZERO);
        assert_eq!(all[1], Duration::from_millis(100));
        assert_eq!(all[2999], Duration::from_millis(299_900));
    }

    #[test]
    fn ramp_from_zero_places_events_on_the_square_root_curve() {
        // N(t) = t²/2 for a ramp 0 → 10 over 10 s: 50 events, event n at sqrt(2n).
        let all = offsets(&[Phase::Ramp {
            duration: secs(10),
            from: 0.0,
            to: 10.0,
        }]);
        assert_eq!(all.len(), 50);
        for (n, offset) in all.iter().enumerate() {
            let expected = (2.0 * n as f64).sqrt();
            assert!((offset.as_secs_f64() - expected).abs() < 1e-9, "event {n}");
        }
    }

    #[test]
    fn a_falling_ramp_is_the_mirror_of_a_rising_one() {
        let all = offsets(&[Phase::Ramp {
            duration: secs(10),
            from: 10.0,
            to: 0.0,
        }]);
        assert_eq!(all.len(), 50);
        // N(t) = 10t - t²/2, so event 32 (N=32) is at t = 10 - sqrt(36) = 4.
        assert!((all[32].as_secs_f64() - 4.0).abs() < 1e-9);
    }

    #[test]
    fn steps_are_levels_from_first_to_last_rate() {
        let phases = [Phase::Step {
            duration: secs(30),
            from: 10.0,
            to: 30.0,
            steps: 3,
        }];
        let profile = Profile::from_phases(&phases);
        assert_eq!(profile.rate_at(secs(5)), 10.0);
        assert_eq!(profile.rate_at(secs(15)), 20.0);
        assert_eq!(profile.rate_at(secs(25)), 30.0);
        assert_eq!(offsets(&phases).len(), 100 + 200 + 300);
    }

    #[test]
    fn events_by_integrates_the_rate() {
        let profile = Profile::from_phases(&[
            Phase::Ramp {
                duration: secs(10),
                from: 0.0,
                to: 10.0,
            },
            Phase::Constant {
                duration: secs(10),
                rate: 10.0,
            },
        ]);
        assert_eq!(profile.events_by(secs(0)), 0.0);
        assert_eq!(profile.events_by(secs(4)), 8.0);
        assert_eq!(profile.events_by(secs(15)), 100.0);
        assert_eq!(profile.events_by(secs(99)), 150.0);
        assert_eq!(profile.expected_events(), 150.0);
    }

    #[test]
    fn phases_follow_each_other_in_time() {
        let all = offsets(&[
            Phase::Constant {
                duration: secs(2),
                rate: 5.0,
            },
            Phase::Constant {
                duration: secs(1),
                rate: 100.0,
            },
        ]);
        assert_eq!(all.len(), 110);
        assert_eq!(all[10], secs(2));
        assert_eq!(all[11], Duration::from_millis(2010));
    }

    #[test]
    fn a_pause_phase_at_rate_zero_sends_nothing() {
        let all = offsets(&[
            Phase::Constant {
                duration: secs(1),
                rate: 10.0,
            },
            Phase::Constant {
                duration: secs(5),
                rate: 0.0,
            },
            Phase::Constant {
                duration: secs(1),
                rate: 10.0,
            },
        ]);
        assert_eq!(all.len(), 20);
        assert_eq!(all[10], secs(6));
    }

    #[test]
    fn poisson_arrivals_keep_the_mean_rate_and_are_reproducible() {
        let profile = Profile::from_phases(&[Phase::Constant {
            duration: secs(1000),
            rate: 100.0,
        }]);
        let count = Schedule::new(profile.clone(), Arrivals::Poisson, 7).count();
        // Poisson(100 000): a standard deviation of about 316.
        assert!((98_500..101_500).contains(&count), "{count}");
        let first: Vec<_> = Schedule::new(profile.clone(), Arrivals::Poisson, 7)
            .take(5)
            .collect();
        let again: Vec<_> = Schedule::new(profile, Arrivals::Poisson, 7)
            .take(5)
            .collect();
        assert_eq!(first, again);
        assert!(first.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    /// The shards' schedules together are the whole schedule, event for
    /// event, uniform or Poisson; each shard's profile is the whole's at
    /// 1/N of its rate.
    #[test]
    fn shards_interleave_into_the_whole_schedule() {
        use crate::shard::Shard;
        let profile = Profile::from_phases(&[
            Phase::Ramp {
                duration: secs(10),
                from: 10.0,
                to: 50.0,
            },
            Phase::Constant {
                duration: secs(5),
                rate: 30.0,
            },
        ]);
        for arrivals in [Arrivals::Uniform, Arrivals::Poisson] {
            let whole: Vec<Duration> = Schedule::new(profile.clone(), arrivals, 9)
                .map(|(_, offset)| offset)
                .collect();
            let mut merged = vec![None; whole.len()];
            for index in 0..3 {
                let shard = Shard { index, count: 3 };
                for (seq, offset) in Schedule::new(profile.clone(), arrivals, 9).for_shard(shard) {
                    let global = (seq * 3 + u64::from(index)) as usize;
                    assert!(merged[global].replace(offset).is_none());
                }
            }
            let merged: Vec<Duration> = merged.into_iter().map(Option::unwrap).collect();
            assert_eq!(merged, whole, "{arrivals:?}");
        }
        let third = profile.scaled(1.0 / 3.0);
        assert!((third.expected_events() * 3.0 - profile.expected_events()).abs() < 1e-9);
        assert!((third.rate_at(secs(12)) * 3.0 - 30.0).abs() < 1e-9);
        assert!((third.events_by(secs(4)) * 3.0 - profile.events_by(secs(4))).abs() < 1e-9);
    }
}
