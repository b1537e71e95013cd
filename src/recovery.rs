//! What faults cost: how long after each fault the pipeline was back to
//! normal, the publish failures and indeterminate publishes from its start
//! to its recovery, and whether the consumer got stuck once faults ended.
//!
//! The run feeds a [`Tracker`] a [`Tick`] a few times a second and tells it
//! when faults start and end. Recovery is judged over a trailing window,
//! which is within bounds when the acknowledged rate is at least
//! `recovery.rate` of the target and the end-to-end p99 of the deliveries
//! is within `recovery.end_to_end_p99`. A fault has recovered at the start
//! of the first window after its end from which every window stays within
//! bounds, up to the end of the run or the start of the next fault: a
//! relapse (redeliveries arriving late, say) pushes the recovery back. A
//! fault that is not back within bounds by then is unrecovered, unless it
//! gets there later, the next fault's disruption included, or the run
//! drains dry (every event resolved), which ends its recovery there.
//!
//! A consumer is stuck when, outside every fault, messages wait for it on
//! the server, none of its handlers is busy, it is below its ack-pending
//! limit, and no delivery has reached it for `recovery.stuck_after`. That is
//! a failure of its own, whatever the criteria say.

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::scenario::Recovery;

/// Slack when comparing tick times with fault ends, in seconds: ticks are
/// a quarter of a second apart at most.
const TICK_SLACK: f64 = 0.3;

/// Publisher counters, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub published: u64,
    pub publish_failed: u64,
    pub indeterminate: u64,
}

/// The consumer as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerView {
    /// Messages not yet delivered to anyone.
    pub num_pending: u64,
    /// The consumer is at its max_ack_pending limit: the server holds back.
    pub at_ack_limit: bool,
}

/// One look at the run.
#[derive(Debug, Clone)]
pub struct Tick {
    /// Seconds from the start of the load.
    pub at: f64,
    /// Events the rate profile intended by now, cumulative.
    pub expected: f64,
    pub counters: Counters,
    /// End-to-end latencies (µs) of the first deliveries since the last
    /// tick; None in a run without faults, which has no recovery to judge.
    pub end_to_end: Option<Histogram<u64>>,
    /// Deliveries the consumer has received, cumulative.
    pub deliveries: u64,
    /// Handlers running right now.
    pub busy: u64,
    /// None when the server could not be asked.
    pub server: Option<ServerView>,
}

/// What one fault cost, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// From the end of the fault until the rate and end-to-end p99 were
    /// back within bounds; None if they never were during the run.
    pub recovery_secs: Option<f64>,
    /// Publishes that failed, from the fault's start to its recovery.
    pub publish_failed: u64,
    /// Publishes left indeterminate, from the fault's start to its recovery.
    pub indeterminate: u64,
}

/// The longest time the consumer was stuck.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stuck {
    /// Seconds from the start of the load when it last made progress.
    pub since_secs: f64,
    /// How long it stayed stuck.
    pub for_secs: f64,
    /// Messages waiting for it on the server when last seen.
    pub pending: u64,
}

#[derive(Debug, Default)]
struct FaultTrack {
    started: Option<(f64, Counters)>,
    ended: Option<f64>,
    /// Seconds from the end to the start of the windows within bounds
    /// since, and the cost up to then; cleared by a relapse.
    recovered_after: Option<f64>,
    cost: Cost,
    /// A later fault started while this one was recovered: its recovery
    /// stands, whatever the later fault does.
    settled: bool,
}

impl FaultTrack {
    fn under_way(&self) -> bool {
        self.started.is_some() && self.ended.is_none()
    }
}

/// A past tick, for the trailing window.
#[derive(Debug)]
struct Past {
    at: f64,
    expected: f64,
    published: u64,
    /// Deliveries since the tick before.
    end_to_end: Histogram<u64>,
}

#[derive(Debug)]
pub struct Tracker {
    bounds: Recovery,
    faults: Vec<FaultTrack>,
    window: VecDeque<Past>,
    /// When the consumer last made progress or had a reason not to.
    progress_at: f64,
    last_deliveries: u64,
    stuck: Option<Stuck>,
    last: Counters,
}

impl Tracker {
    pub fn new(bounds: Recovery, faults: usize) -> Tracker {
        Tracker {
            bounds,
            faults: (0..faults).map(|_| FaultTrack::default()).collect(),
            window: VecDeque::new(),
            progress_at: 0.0,
            last_deliveries: 0,
            stuck: None,
            last: Counters::default(),
        }
    }

    pub fn fault_started(&mut self, index: usize, at: f64, counters: Counters) {
        for earlier in &mut self.faults {
            if earlier.ended.is_some() && earlier.recovered_after.is_some() {
                earlier.settled = true;
            }
        }
        if let Some(f) = self.faults.get_mut(index) {
            f.started = Some((at, counters));
        }
    }

    pub fn fault_ended(&mut self, index: usize, at: f64) {
        if let Some(f) = self.faults.get_mut(index) {
            f.ended = Some(at);
        }
    }

    /// The indexes of the faults under way.
    pub fn active(&self) -> Vec<usize> {
        (0..self.faults.len())
            .filter(|&i| self.faults[i].under_way())
            .collect()
    }

    pub fn tick(&mut self, tick: Tick) {
        self.last = tick.counters;
        self.watch_consumer(&tick);
        let Some(end_to_end) = tick.end_to_end else {
            return;
        };
        let window = self.bounds.window.as_secs_f64();
        self.window.push_back(Past {
            at: tick.at,
            expected: tick.expected,
            published: tick.counters.published,
            end_to_end,
        });
        // Keep one tick at or before the window's start, as its base.
        while self.window.len() > 2 && self.window[1].at <= tick.at - window {
            self.window.pop_front();
        }
        let base = &self.window[0];
        if tick.at - base.at < window - TICK_SLACK {
            return;
        }
        let base_at = base.at;
        let within = self.within_bounds();
        for fault in &mut self.faults {
            let (Some(end), Some((_, at_start))) = (fault.ended, fault.started) else {
                continue;
            };
            if fault.settled || base_at + TICK_SLACK < end {
                continue;
            }
            match (within, fault.recovered_after) {
                (true, None) => {
                    fault.recovered_after = Some((base_at - end).max(0.0));
                    fault.cost = cost(&fault.recovered_after, at_start, tick.counters);
                }
                (false, Some(_)) => {
                    fault.recovered_after = None;
                    fault.cost = Cost::default();
                }
                _ => {}
            }
        }
    }

    /// The window from its base tick to now: acknowledged rate against the
    /// target, and the end-to-end p99 of what was delivered.
    fn within_bounds(&self) -> bool {
        let (base, now) = (&self.window[0], &self.window[self.window.len() - 1]);
        let expected = now.expected - base.expected;
        let acked = now.published.saturating_sub(base.published) as f64;
        if expected > 0.0 && acked < self.bounds.rate * expected {
            return false;
        }
        let mut merged: Option<Histogram<u64>> = None;
        for past in self.window.iter().skip(1) {
            match &mut merged {
                Some(m) => {
                    let _ = m.add(&past.end_to_end);
                }
                None => merged = Some(past.end_to_end.clone()),
            }
        }
        match merged.filter(|m| !m.is_empty()) {
            Some(m) => m.value_at_quantile(0.99) <= self.bounds.end_to_end_p99.as_micros() as u64,
            // Nothing delivered while events were due: not back yet.
            None => expected <= 0.0,
        }
    }

    fn watch_consumer(&mut self, tick: &Tick) {
        let waiting = tick
            .server
            .is_some_and(|s| s.num_pending > 0 && !s.at_ack_limit);
        let excused = self.faults.iter().any(FaultTrack::under_way) || tick.busy > 0 || !waiting;
        if excused || tick.deliveries != self.last_deliveries {
            self.progress_at = tick.at;
            self.last_deliveries = tick.deliveries;
            return;
        }
        let quiet = tick.at - self.progress_at;
        if quiet < self.bounds.stuck_after.as_secs_f64() {
            return;
        }
        let episode = Stuck {
            since_secs: self.progress_at,
            for_secs: quiet,
            pending: tick.server.map_or(0, |s| s.num_pending),
        };
        if self.stuck.is_none_or(|s| s.for_secs <= episode.for_secs) {
            if self.stuck.is_none() {
                tracing::error!(
                    since_secs = episode.since_secs,
                    pending = episode.pending,
                    "the consumer is stuck: messages wait, nothing is delivered, no fault is under way"
                );
            }
            self.stuck = Some(episode);
        }
    }

    /// The run is over at `at`. If every event it published was resolved
    /// (`caught_up`), a fault not yet seen back within bounds recovered when
    /// the last of them was: the run drained dry, there is no later window.
    pub fn finish(&mut self, at: f64, caught_up: bool) {
        if !caught_up {
            return;
        }
        let now = self.last;
        for fault in &mut self.faults {
            let (Some(end), Some((_, at_start))) = (fault.ended, fault.started) else {
                continue;
            };
            if fault.recovered_after.is_none() && at >= end {
                fault.recovered_after = Some(at - end);
                fault.cost = cost(&fault.recovered_after, at_start, now);
            }
        }
    }

    /// Each fault's cost so far, by its index in the scenario. A fault not
    /// yet recovered counts what it has cost up to now.
    pub fn costs(&self) -> Vec<Cost> {
        self.faults
            .iter()
            .map(|f| match f.started {
                Some((_, at_start)) if f.recovered_after.is_none() => {
                    cost(&None, at_start, self.last)
                }
                _ => f.cost,
            })
            .collect()
    }

    pub fn stuck(&self) -> Option<Stuck> {
        self.stuck
    }

    /// The figures criteria use, as of `at` (seconds from the start of the
    /// load). A fault that ended and has not recovered yet counts its time
    /// since its end as its recovery time so far; in the final figures
    /// (`finished`) it is unrecovered, and the recovery time is infinite.
    pub fn figures(&self, at: f64, finished: bool) -> FaultFigures {
        let mut figures = FaultFigures {
            consumer_stuck: u64::from(self.stuck.is_some()),
            ..FaultFigures::default()
        };
        for (track, cost) in self.faults.iter().zip(self.costs()) {
            if track.started.is_none() {
                continue;
            }
            figures.publish_failed += cost.publish_failed;
            figures.indeterminate += cost.indeterminate;
            let secs = match (track.recovered_after, track.ended) {
                (Some(secs), _) => secs,
                (None, _) if finished => {
                    figures.unrecovered += 1;
                    f64::INFINITY
                }
                (None, Some(end)) => (at - end).max(0.0),
                (None, None) => 0.0,
            };
            figures.recovery_ms = figures.recovery_ms.max(secs * 1000.0);
        }
        figures
    }
}

fn cost(recovered_after: &Option<f64>, at_start: Counters, now: Counters) -> Cost {
    Cost {
        recovery_secs: *recovered_after,
        publish_failed: now.publish_failed.saturating_sub(at_start.publish_failed),
        indeterminate: now.indeterminate.saturating_sub(at_start.indeterminate),
    }
}

/// What the faults cost, as figures ([`crate::figures`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultFigures {
    /// The longest recovery, in milliseconds; infinite if one never recovered.
    pub recovery_ms: f64,
    pub unrecovered: u64,
    pub publish_failed: u64,
    pub indeterminate: u64,
    pub consumer_stuck: u64,
}

#[cfg(test)]
mod tests;
