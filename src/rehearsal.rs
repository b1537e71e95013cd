//! A run rehearsed without NATS: every time, rate and count the actors will
//! derive from a scenario, computed by the actors' own functions (the
//! schedule, retry backoff, simulated handlers, the slow-consumer factor,
//! the garbage period, the fault windows, the drain deadline).
//!
//! `harness validate` prints what it found, and the property tests drive it
//! with extreme values: a scenario that validates must rehearse without a
//! panic, which is what makes "validates" mean "runs".

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::clock;
use crate::consumer::{control::Control, simulate};
use crate::faults::{Action, ConsumerFault};
use crate::scenario::Scenario;
use crate::schedule::{Profile, Schedule};

/// How many events of the schedule are walked: enough to cover every
/// phase's start for a profile of a few phases, bounded for a huge one.
const EVENTS_WALKED: usize = 10_000;
/// Simulated handler draws.
const DRAWS: usize = 1_000;

/// What a run of the scenario will be like.
#[derive(Debug, Clone, PartialEq)]
pub struct Rehearsal {
    /// Events the schedule is expected to send.
    pub events: f64,
    /// The length of the load.
    pub load: Duration,
    /// The longest one event can take to publish: every attempt timing out
    /// and every backoff at its longest.
    pub longest_publish: Duration,
    /// The longest simulated handler, slow-consumer faults included.
    pub longest_handler: Duration,
    /// When the last fault ends, from the start of the load.
    pub faults_until: Duration,
}

impl std::fmt::Display for Rehearsal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "about {:.0} events over {}",
            self.events,
            humantime::format_duration(Duration::from_millis(self.load.as_millis() as u64))
        )?;
        if !self.faults_until.is_zero() {
            let until = Duration::from_secs(self.faults_until.as_secs());
            write!(f, ", faults until {}", humantime::format_duration(until))?;
        }
        Ok(())
    }
}

/// Rehearses a validated scenario.
pub fn rehearse(s: &Scenario, seed: u64) -> Rehearsal {
    let now = Instant::now();
    let profile = Profile::from_load(&s.load);
    let load = profile.duration();
    for (_, offset) in Schedule::new(profile.clone(), s.load.arrivals, seed).take(EVENTS_WALKED) {
        clock::after(now, offset);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let p = &s.publish;
    let mut longest_publish = p.timeout.saturating_mul(p.max_retries.saturating_add(1));
    for retry in 1..=p.max_retries {
        let delay = crate::backoff::delay(&p.backoff, retry, &mut rng);
        longest_publish = longest_publish.saturating_add(delay);
    }
    clock::after(now, longest_publish);
    let control = Control::default();
    let factor = crate::faults::plan(s)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| match f.action {
            Action::Consumer(ConsumerFault::Slow { factor }) => Some(factor),
            _ => None,
        })
        .fold(1.0, f64::max);
    control.set_slow_factor(factor);
    let mut longest_handler = Duration::ZERO;
    for _ in 0..DRAWS {
        let (_, work) = simulate::draw(&s.consumer, &mut rng);
        longest_handler = longest_handler.max(control.slowed(work));
    }
    clock::after(now, longest_handler);
    if let Some(garbage) = &s.load.garbage {
        crate::garbage::period(garbage.rate);
    }
    let faults_until = s
        .faults
        .iter()
        .map(|f| f.at.saturating_add(f.duration))
        .max()
        .unwrap_or_default();
    clock::after(clock::after(now, load), s.drain.timeout);
    Rehearsal {
        events: profile.expected_events(),
        load,
        longest_publish,
        longest_handler,
        faults_until,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_rehearsal_says_what_the_run_will_do() {
        let s = crate::scenario::parse(
            "[load]\nrate = 10\nduration = \"5m\"\n[publish]\ntimeout = \"2s\"\nmax_retries = 1\n\
             [publish.backoff]\ninitial = \"1s\"\njitter = 0.0\n\
             [[faults]]\nat = \"30s\"\nkind = \"consumer_slow\"\nfactor = 4.0\nduration = \"10s\"\n",
            Path::new("s.toml"),
        )
        .unwrap();
        let r = rehearse(&s, 1);
        assert_eq!(r.events, 3000.0);
        assert_eq!(r.load, Duration::from_secs(300));
        assert_eq!(
            r.longest_publish,
            Duration::from_secs(5),
            "two 2 s attempts and a 1 s backoff"
        );
        assert_eq!(
            r.longest_handler,
            Duration::from_millis(4),
            "1 ms, four times slower"
        );
        assert_eq!(r.faults_until, Duration::from_secs(40));
        assert_eq!(r.to_string(), "about 3000 events over 5m, faults until 40s");
    }
}
