//! Which rate to try next: an exponential probe up from the start rate,
//! bisection between the highest sustainable and the lowest unsustainable
//! rate until they are within the precision, then a confirmation trial at
//! the highest sustainable rate, twice as long. A failed confirmation makes
//! that rate the new upper bound and the bisection goes on below it.
//!
//! Pure bookkeeping, apart from the trials themselves, so that it can be
//! tested against pipelines of known capacity in microseconds.

/// Confirmations that may fail before the search gives up confirming.
const MAX_CONFIRMATIONS: u32 = 3;

/// What to run next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub rate: f64,
    /// A confirmation trial: it checks the highest sustainable rate so far.
    pub confirmation: bool,
    /// Measured twice as long: confirmations, and every trial after a
    /// confirmation failed.
    pub long: bool,
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The highest sustainable rate was found and confirmed.
    Confirmed,
    /// Sustainable at the probe's ceiling (`max_rate`): the pipeline may
    /// take more than was asked.
    AtMaxRate,
    /// Not even the lowest rate tried was sustainable.
    NoneSustainable,
    /// The trial budget ran out first.
    OutOfTrials,
    /// Confirmations kept failing: the pipeline is not steady near its limit.
    Unconfirmed,
    /// Ctrl+C, or a trial that could not run.
    Stopped,
}

#[derive(Debug, Clone)]
pub struct Search {
    start: f64,
    max: f64,
    precision: f64,
    /// The lowest rate the downward probe tries.
    floor: f64,
    /// Highest sustainable rate so far (confirmed or not).
    lo: Option<f64>,
    /// Lowest unsustainable rate so far.
    hi: Option<f64>,
    /// Every rate found sustainable, for falling back after a failed confirmation.
    passed: Vec<f64>,
    confirmations_failed: u32,
    /// After a failed confirmation short trials are not to be trusted near
    /// the limit: every trial from then on is long.
    long: bool,
    /// `lo` was sustained by a long trial: it needs no confirmation.
    lo_long: bool,
    pending: Option<Step>,
    /// The pending step confirms `lo`.
    checking: bool,
    ended: Option<Ending>,
}

/// Rates as people write them: whole events/s from 100 up, else three
/// significant digits.
pub(crate) fn round(rate: f64) -> f64 {
    if rate >= 100.0 {
        rate.round()
    } else {
        let scale = 10f64.powi(2 - rate.abs().log10().floor() as i32);
        (rate * scale).round() / scale
    }
}

impl Search {
    pub fn new(start: f64, max: f64, precision: f64) -> Search {
        let start = start.min(max);
        Search {
            start,
            max,
            precision,
            floor: (start / 1024.0).max(0.01),
            lo: None,
            hi: None,
            passed: Vec::new(),
            confirmations_failed: 0,
            long: false,
            lo_long: false,
            pending: None,
            checking: false,
            ended: None,
        }
    }

    /// The highest sustainable rate found so far.
    pub fn best(&self) -> Option<f64> {
        self.lo
    }

    /// Why it ended, once it has.
    pub fn ending(&self) -> Option<Ending> {
        self.ended
    }

    /// Ends the search early (an interrupt, a trial that could not run, or
    /// the trial budget).
    pub fn stop(&mut self, why: Ending) {
        self.ended.get_or_insert(why);
        self.pending = None;
    }

    /// The next trial, or None once the search has ended.
    pub fn next_step(&mut self) -> Option<Step> {
        if self.ended.is_some() {
            return None;
        }
        let long = self.long;
        let (rate, checking) = match (self.lo, self.hi) {
            (None, None) => (self.start, false),
            // Probing up, to the ceiling at most.
            (Some(lo), None) if lo >= self.max => (lo, true),
            (Some(lo), None) => {
                let rate = round(lo * 2.0);
                (if rate >= self.max { self.max } else { rate }, false)
            }
            // Probing down.
            (None, Some(hi)) => {
                let rate = round(hi / 2.0);
                if rate < self.floor || rate >= hi {
                    self.ended = Some(Ending::NoneSustainable);
                    return None;
                }
                (rate, false)
            }
            (Some(lo), Some(hi)) => {
                let mid = round((lo + hi) / 2.0);
                if (hi - lo) / lo < self.precision || mid <= lo || mid >= hi {
                    (lo, true)
                } else {
                    (mid, false)
                }
            }
        };
        if checking && self.lo_long {
            // Sustained by a long trial already.
            self.ended = Some(if self.hi.is_none() {
                Ending::AtMaxRate
            } else {
                Ending::Confirmed
            });
            return None;
        }
        let step = Step {
            rate,
            confirmation: checking,
            long: checking || long,
        };
        self.checking = checking;
        self.pending = Some(step);
        Some(step)
    }

    /// The outcome of the step [`Search::next_step`] gave.
    pub fn record(&mut self, sustainable: bool) {
        let Some(step) = self.pending.take() else {
            return;
        };
        match (self.checking, sustainable) {
            (true, true) => {
                self.ended = Some(if self.hi.is_none() {
                    Ending::AtMaxRate
                } else {
                    Ending::Confirmed
                });
            }
            (true, false) => {
                self.confirmations_failed += 1;
                self.long = true;
                self.hi = Some(step.rate);
                self.passed.retain(|r| *r < step.rate);
                self.lo = self.passed.iter().copied().reduce(f64::max);
                self.lo_long = false;
                if self.confirmations_failed >= MAX_CONFIRMATIONS {
                    self.ended = Some(Ending::Unconfirmed);
                }
            }
            (false, true) => {
                self.passed.push(step.rate);
                if self.lo.is_none_or(|lo| step.rate > lo) {
                    self.lo = Some(step.rate);
                    self.lo_long = step.long;
                }
            }
            (false, false) => {
                self.hi = Some(self.hi.map_or(step.rate, |hi| hi.min(step.rate)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a pipeline that sustains exactly `limit`,
    /// returning the result and the trials it took.
    fn against(limit: f64, start: f64, max: f64) -> (Option<f64>, Ending, Vec<Step>) {
        let mut search = Search::new(start, max, 0.05);
        let mut steps = Vec::new();
        while let Some(step) = search.next_step() {
            steps.push(step);
            assert!(steps.len() < 60, "the search does not end: {steps:?}");
            search.record(step.rate <= limit);
        }
        (search.best(), search.ending().unwrap(), steps)
    }

    #[test]
    fn it_lands_within_the_precision_below_the_limit_and_confirms_there() {
        for limit in [7.0, 480.0, 500.0, 12_345.0, 90_000.0] {
            let (best, ending, steps) = against(limit, 100.0, 1e6);
            let best = best.unwrap();
            assert_eq!(ending, Ending::Confirmed, "{limit}: {steps:?}");
            assert!(
                best <= limit && best >= limit * 0.95,
                "{limit}: {best} {steps:?}"
            );
            let last = steps.last().unwrap();
            assert!(last.confirmation && last.rate == best);
            assert_eq!(steps.iter().filter(|s| s.confirmation).count(), 1);
            assert!(steps.len() <= 20, "{limit}: {} trials", steps.len());
        }
    }

    #[test]
    fn the_probe_doubles_up_then_the_bisection_halves_the_gap() {
        let (_, _, steps) = against(500.0, 100.0, 1e6);
        let rates: Vec<f64> = steps.iter().map(|s| s.rate).collect();
        assert_eq!(&rates[..4], &[100.0, 200.0, 400.0, 800.0]);
        assert_eq!(rates[4], 600.0);
        assert_eq!(rates[5], 500.0);
    }

    #[test]
    fn a_pipeline_above_the_ceiling_is_reported_at_it() {
        let (best, ending, _) = against(1e9, 100.0, 1000.0);
        assert_eq!((best, ending), (Some(1000.0), Ending::AtMaxRate));
    }

    #[test]
    fn a_ceiling_that_is_no_round_number_is_tried_as_written() {
        for max in [1000.4, 1000.5, 12.34] {
            let (best, ending, steps) = against(1e9, 100.0, max);
            assert_eq!((best, ending), (Some(max), Ending::AtMaxRate), "{steps:?}");
            assert!(steps.iter().all(|s| s.rate <= max), "{steps:?}");
            assert!(steps.len() <= 6, "{steps:?}");
        }
    }

    #[test]
    fn a_start_above_the_limit_probes_down() {
        let (best, ending, steps) = against(30.0, 1000.0, 1e6);
        assert_eq!(ending, Ending::Confirmed);
        assert!(best.unwrap() <= 30.0 && best.unwrap() >= 28.5, "{steps:?}");
        assert_eq!(steps[1].rate, 500.0);
    }

    #[test]
    fn nothing_sustainable_ends_without_a_rate() {
        let (best, ending, steps) = against(0.0, 100.0, 1e6);
        assert_eq!((best, ending), (None, Ending::NoneSustainable));
        assert!(steps.len() <= 12, "{}", steps.len());
    }

    #[test]
    fn a_failed_confirmation_moves_the_bound_down_and_searches_again() {
        // Sustains 500 in short trials but only 450 in long ones.
        let mut search = Search::new(100.0, 1e6, 0.05);
        let mut steps = Vec::new();
        while let Some(step) = search.next_step() {
            steps.push(step);
            let limit = if step.long { 450.0 } else { 500.0 };
            search.record(step.rate <= limit);
        }
        let best = search.best().unwrap();
        assert_eq!(search.ending(), Some(Ending::Confirmed), "{steps:?}");
        assert!((450.0 * 0.95..=450.0).contains(&best), "{best}: {steps:?}");
        // After the failed confirmation every trial is long.
        let failed = steps.iter().position(|s| s.confirmation).unwrap();
        assert_eq!(steps[failed].rate, 500.0);
        assert!(steps[failed..].iter().all(|s| s.long), "{steps:?}");
        assert!(steps[..failed].iter().all(|s| !s.long), "{steps:?}");
    }

    #[test]
    fn confirmations_that_keep_failing_end_the_search() {
        let mut search = Search::new(100.0, 1e6, 0.05);
        let mut n = 0;
        while let Some(step) = search.next_step() {
            n += 1;
            assert!(n < 100);
            search.record(!step.long && step.rate <= 500.0);
        }
        assert_eq!(search.ending(), Some(Ending::Unconfirmed));
    }

    #[test]
    fn stopping_ends_it_at_once_keeping_the_best_so_far() {
        let mut search = Search::new(100.0, 1e6, 0.05);
        search.next_step();
        search.record(true);
        search.next_step();
        search.stop(Ending::Stopped);
        assert_eq!(search.next_step(), None);
        assert_eq!(search.best(), Some(100.0));
        assert_eq!(search.ending(), Some(Ending::Stopped));
    }

    #[test]
    fn rates_are_rounded_as_people_write_them() {
        assert_eq!(round(612.4), 612.0);
        assert_eq!(round(12.345), 12.3);
        assert_eq!(round(0.012345), 0.0123);
    }
}
