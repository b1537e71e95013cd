//! Why publishes fail, told at warn without flooding the log: at most one
//! line per cause every [`EVERY`], counting the events it stands for.
//!
//! A cause that breaks every publish (a payload above `max_payload`, a
//! missing stream) would otherwise write a line per event, thousands a
//! second. The first failure of a cause is told at once, so the reason
//! shows as soon as it happens; later ones are counted and told when the
//! cause's period is over and it fails again, or at the end of the run
//! ([`FailureLog::flush`]). Only the failure path takes the lock, and the
//! list holds one entry per cause that occurred: a handful at most.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;

/// The shortest time between two lines of one cause.
pub const EVERY: Duration = Duration::from_secs(5);

/// How an event ended without a PubAck (DESIGN.md's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// publish_failed: the server said no; not stored.
    Failed,
    /// indeterminate: no answer; it may or may not be stored.
    Indeterminate,
}

/// Why an event was not stored, or may not be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cause {
    /// The last attempt's error.
    Error(PublishErrorKind),
    /// The first attempt was answered "duplicate": somebody else had
    /// stored a message under the event's id.
    Collision,
    /// The run stopped the event before a PubAck.
    Stopped,
}

/// One line to log: a cause and how many events it covers since its last line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub outcome: Outcome,
    pub cause: Cause,
    pub events: u64,
    /// The event whose failure brought the line about.
    pub example: String,
}

impl Line {
    /// At warn, e.g. `publish failed (not stored) cause=max payload size
    /// exceeded events_since_last=5000 example=r1a2b3c4d-812`.
    pub fn log(&self) {
        let message = match self.outcome {
            Outcome::Failed => "publish failed (not stored)",
            Outcome::Indeterminate => "publish indeterminate (no PubAck; it may be stored)",
        };
        tracing::warn!(
            cause = %CauseText(self.cause),
            events_since_last = self.events,
            example = %self.example,
            "{message}"
        );
    }
}

struct CauseText(Cause);

impl fmt::Display for CauseText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Cause::Error(kind) => write!(f, "{kind}"),
            Cause::Collision => write!(
                f,
                "the stream already held a message under the event's id: the run id was used \
                 within the duplicate window, or somebody published copies of its ids"
            ),
            Cause::Stopped => write!(f, "the run stopped before a PubAck"),
        }
    }
}

struct Tally {
    outcome: Outcome,
    cause: Cause,
    last_line: Instant,
    /// Events since `last_line`, not told yet.
    untold: u64,
    example: String,
}

/// Counts failures by cause and says when a line is due.
pub struct FailureLog {
    every: Duration,
    tallies: Mutex<Vec<Tally>>,
}

impl FailureLog {
    pub fn new(every: Duration) -> FailureLog {
        FailureLog {
            every,
            tallies: Mutex::new(Vec::new()),
        }
    }

    /// Counts one event's failure at `now`; the line to log, if one is due.
    pub fn note(
        &self,
        outcome: Outcome,
        cause: Cause,
        event_id: &str,
        now: Instant,
    ) -> Option<Line> {
        let Ok(mut tallies) = self.tallies.lock() else {
            return None;
        };
        let Some(tally) = tallies
            .iter_mut()
            .find(|t| t.outcome == outcome && t.cause == cause)
        else {
            tallies.push(Tally {
                outcome,
                cause,
                last_line: now,
                untold: 0,
                example: String::new(),
            });
            return Some(Line {
                outcome,
                cause,
                events: 1,
                example: event_id.to_string(),
            });
        };
        tally.untold += 1;
        if now.saturating_duration_since(tally.last_line) < self.every {
            if tally.example.is_empty() {
                tally.example = event_id.to_string();
            }
            return None;
        }
        let line = Line {
            outcome,
            cause,
            events: tally.untold,
            example: event_id.to_string(),
        };
        tally.last_line = now;
        tally.untold = 0;
        tally.example.clear();
        Some(line)
    }

    /// The failures not told yet, one line per cause; the end of the run.
    pub fn flush(&self) -> Vec<Line> {
        let Ok(mut tallies) = self.tallies.lock() else {
            return Vec::new();
        };
        tallies
            .iter_mut()
            .filter(|t| t.untold > 0)
            .map(|t| {
                let line = Line {
                    outcome: t.outcome,
                    cause: t.cause,
                    events: t.untold,
                    example: std::mem::take(&mut t.example),
                };
                t.untold = 0;
                line
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: Cause = Cause::Error(PublishErrorKind::MaxPayloadExceeded);
    const TIMEOUT: Cause = Cause::Error(PublishErrorKind::TimedOut);

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn the_first_failure_of_a_cause_is_told_at_once() {
        let log = FailureLog::new(EVERY);
        let t0 = Instant::now();
        let line = log.note(Outcome::Failed, PAYLOAD, "r-1", t0).unwrap();
        assert_eq!((line.events, line.example.as_str()), (1, "r-1"));
        let other = log.note(Outcome::Indeterminate, TIMEOUT, "r-2", t0);
        assert!(other.is_some(), "another cause has its own period");
    }

    #[test]
    fn later_failures_are_counted_into_one_line_per_period() {
        let log = FailureLog::new(EVERY);
        let t0 = Instant::now();
        log.note(Outcome::Failed, PAYLOAD, "r-0", t0);
        // 1000 events a second for 12 s: three lines, not 12000.
        let mut lines = Vec::new();
        for i in 1..12_000u64 {
            if let Some(line) = log.note(Outcome::Failed, PAYLOAD, &format!("r-{i}"), at(t0, i)) {
                lines.push(line);
            }
        }
        let counts: Vec<u64> = lines.iter().map(|l| l.events).collect();
        assert_eq!(counts, [5000, 5000], "at 5 s and 10 s");
        assert_eq!(lines[0].example, "r-5000");
        let rest = log.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].events, 1999, "10.001 s to 11.999 s");
        assert_eq!(rest[0].example, "r-10001");
        let told: u64 = 1 + counts.iter().sum::<u64>() + rest[0].events;
        assert_eq!(told, 12_000, "every event is counted once");
        assert!(log.flush().is_empty(), "nothing is told twice");
    }

    #[test]
    fn a_collision_is_told_as_its_own_cause() {
        let log = FailureLog::new(EVERY);
        let t0 = Instant::now();
        let line = log
            .note(Outcome::Failed, Cause::Collision, "r-1", t0)
            .unwrap();
        assert!(CauseText(line.cause)
            .to_string()
            .contains("duplicate window"));
        assert!(
            log.note(Outcome::Failed, PAYLOAD, "r-2", t0).is_some(),
            "apart from errors"
        );
        assert!(log
            .note(Outcome::Failed, Cause::Collision, "r-3", at(t0, 1))
            .is_none());
    }

    #[test]
    fn outcomes_with_the_same_cause_are_apart() {
        let log = FailureLog::new(EVERY);
        let t0 = Instant::now();
        assert!(log
            .note(Outcome::Failed, Cause::Stopped, "r-1", t0)
            .is_some());
        assert!(log
            .note(Outcome::Indeterminate, Cause::Stopped, "r-2", t0)
            .is_some());
        assert!(log
            .note(Outcome::Indeterminate, Cause::Stopped, "r-3", at(t0, 1))
            .is_none());
        let rest = log.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].outcome, Outcome::Indeterminate);
    }
}
