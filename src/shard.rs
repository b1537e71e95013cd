//! One shard of a run spread over several harness processes
//! (`harness run --shard K/N`), and what makes its books complete on their
//! own: its share of the schedule, its own subject and durable, and event
//! ids that name it.
//!
//! The N shards together follow the single-machine schedule: event i of
//! the whole schedule belongs to shard i mod N, so every shard keeps the
//! profile's shape at 1/N of its rate, and Poisson arrivals stay one
//! Poisson process (the shards share the seed). Shard K publishes to
//! `<load.subject>.K` and consumes through the durable `<durable>-K`
//! filtered to that subject, with dead letters on `<dead-letter
//! subject>.K` in a stream of its own: every delivery it sees is one of its
//! own events, so its ledger is exact without the others. Event ids are
//! `<run id>-K-<seq>`, unique across shards. `harness merge` (see
//! [`crate::merge`]) adds the shards' reports into one. Garbage is thrown
//! at 1/N of its rate too; the fault timeline acts on each shard's own
//! consumer and connections.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::scenario::{ConsumerMode, Scenario};

/// The most shards of one run.
pub const MAX_SHARDS: u32 = 1_000;

/// Shard `index` (from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `K/N`, K from 0 to N-1 (a Kubernetes Indexed Job's
    /// `JOB_COMPLETION_INDEX` as it is).
    fn from_str(text: &str) -> Result<Shard, String> {
        let usage = || {
            format!(
                "`{text}` is not a shard: use K/N, K from 0 to N-1 and N from 1 to {MAX_SHARDS}, such as 0/3"
            )
        };
        let (index, count) = text.trim().split_once('/').ok_or_else(usage)?;
        let index: u32 = index.trim().parse().map_err(|_| usage())?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether event `global` of the whole schedule is this shard's.
    pub fn takes(&self, global: u64) -> bool {
        global % u64::from(self.count) == u64::from(self.index)
    }

    /// This shard's share of the whole rate.
    pub fn share(&self) -> f64 {
        1.0 / f64::from(self.count)
    }

    /// The prefix of this shard's event ids: `<run id>-K`.
    pub fn id_prefix(&self, run_id: &str) -> String {
        format!("{run_id}-{}", self.index)
    }

    /// The scenario as this shard runs it: its own subject under the load
    /// subject, its own durable filtered to it, its own dead letters.
    /// Refused for what cannot be split (an external consumer, whose
    /// service reads one durable) and for a stream that would not capture
    /// the shard's subject.
    pub fn apply(&self, s: &mut Scenario) -> Result<(), String> {
        if s.consumer.mode == ConsumerMode::External {
            return Err(
                "--shard runs the harness's own consumer per shard; an external consumer \
                 (consumer.mode = \"external\") reads one durable and cannot be sharded"
                    .into(),
            );
        }
        let k = self.index;
        let subject = format!("{}.{k}", s.load.subject);
        if !s
            .stream
            .subjects
            .iter()
            .any(|p| crate::scenario::subject_matches(p, &subject))
        {
            return Err(format!(
                "shard {self} publishes to `{subject}`, which stream.subjects ({}) does not \
                 capture: add `{}.>` to stream.subjects",
                s.stream.subjects.join(", "),
                s.load.subject
            ));
        }
        s.load.subject = subject.clone();
        if let Some(garbage) = &mut s.load.garbage {
            garbage.rate *= self.share();
        }
        s.consumer.filter_subject = Some(subject);
        s.consumer.durable = format!("{}-{k}", s.consumer.durable);
        s.consumer.dead_letter_subject = format!("{}.{k}", s.consumer.dead_letter_subject);
        s.consumer.dead_letter_stream = format!("{}_{k}", s.consumer.dead_letter_stream);
        Ok(())
    }
}

/// What a shard's report says of the shard, for the merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    /// The scenario hash before this shard's own subject and durable: the
    /// same for every shard of one run.
    pub scenario_hash: String,
    /// When the schedule's time 0 was, RFC 3339 with nanoseconds, UTC:
    /// `--start-at` when given, else when this shard began its schedule.
    pub schedule_start: String,
    /// How late the shard was ready for `--start-at` (0 if on time): its
    /// first events were overdue by that much when it began.
    pub late_secs: f64,
}

impl ShardInfo {
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }

    /// [`ShardInfo::schedule_start`] as a time.
    pub fn schedule_start_time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.schedule_start).ok()
    }
}

/// What every shard of one run must share: the whole scenario (seed,
/// rate and all) but for the URL, hashed.
pub fn whole_hash(whole: &Scenario) -> String {
    let mut hashed = whole.clone();
    hashed.target.url = None;
    let text = serde_json::to_string(&hashed).unwrap_or_default();
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

/// A `--start-at` time: RFC 3339 in UTC (`2026-12-04T18:00:00Z`, with or
/// without fractions of a second).
pub fn parse_start_at(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text.trim()).map_err(|e| {
        format!("`{text}` is not a time: use RFC 3339 in UTC, such as 2026-12-04T18:00:00Z ({e})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_from_index_and_count() {
        assert_eq!("0/3".parse::<Shard>(), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(" 2 / 3 ".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3", "0/1001", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("K from 0 to N-1"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_event_belongs_to_exactly_one_shard() {
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        for global in 0..100u64 {
            let owners = shards.iter().filter(|s| s.takes(global)).count();
            assert_eq!(owners, 1, "event {global}");
        }
    }

    #[test]
    fn a_shard_has_its_own_subject_durable_and_dead_letters() {
        let mut s = Scenario::default();
        s.stream.subjects = vec!["harness.events.>".into()];
        s.load.subject = "harness.events".into();
        s.load.rate = Some(10.0);
        s.load.duration = Some(std::time::Duration::from_secs(1));
        let shard = Shard { index: 1, count: 3 };
        shard.apply(&mut s).unwrap();
        assert_eq!(s.load.subject, "harness.events.1");
        assert_eq!(
            s.consumer.filter_subject.as_deref(),
            Some("harness.events.1")
        );
        assert_eq!(s.consumer.durable, "harness-consumer-1");
        assert_eq!(s.consumer.dead_letter_subject, "harness.dlq.1");
        assert_eq!(s.consumer.dead_letter_stream, "HARNESS_DLQ_1");
        assert_eq!(shard.id_prefix("ci_7"), "ci_7-1");
        crate::scenario::validate(&s).unwrap();
    }

    #[test]
    fn a_stream_that_misses_the_shard_subject_is_refused_with_the_fix() {
        let mut s = Scenario::default();
        s.stream.subjects = vec!["orders.events".into()];
        s.load.subject = "orders.events".into();
        let e = Shard { index: 0, count: 2 }.apply(&mut s).unwrap_err();
        assert!(
            e.contains("`orders.events.0`") && e.contains("orders.events.>"),
            "{e}"
        );
        s.consumer.mode = ConsumerMode::External;
        let e = Shard { index: 0, count: 2 }.apply(&mut s).unwrap_err();
        assert!(e.contains("external"), "{e}");
    }

    #[test]
    fn start_times_are_rfc3339() {
        let t = parse_start_at("2026-12-04T18:00:00Z").unwrap();
        assert_eq!(
            humantime::format_rfc3339_seconds(t).to_string(),
            "2026-12-04T18:00:00Z"
        );
        assert!(parse_start_at("2026-12-04T18:00:00.250Z").is_ok());
        assert!(parse_start_at("tomorrow").unwrap_err().contains("RFC 3339"));
    }
}
