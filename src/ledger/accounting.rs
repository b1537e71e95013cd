//! The closing of the books: every event counted once, and the invariants.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{outcome, publish_state, Ledger, Live, Outcome, PublishState, Sample, SAMPLE_LIMIT};

/// Every count of DESIGN.md's accounting table, for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    pub scheduled: u64,
    pub published: u64,
    pub deduplicated: u64,
    pub publish_failed: u64,
    pub indeterminate: u64,
    pub not_sent: u64,
    pub processed: u64,
    pub dead_lettered: u64,
    pub pending: u64,
    pub lost: u64,
    pub lost_mid_run: u64,
    pub lost_tail: u64,
    pub recovered: u64,
    pub unexpected: u64,
    /// Of publish_failed: the stream already held another message under
    /// the event's id (a reused run id, or a forged copy).
    pub collisions: u64,
    /// Deliveries whose intended send time lay outside the run; left out
    /// of the latency figures.
    pub intended_out_of_range: u64,
    pub duplicates: u64,
    pub stream_duplicates: u64,
    pub redelivered: u64,
    pub retries: u64,
    pub held_back: u64,
    /// Events whose deliveries ran out (max_deliver): the harness's own
    /// consumer then dead-letters them; a service may leave them pending.
    #[serde(default)]
    pub exhausted: u64,
    /// The output contract (an external consumer's `[consumer.output]`):
    /// events with at least one result.
    #[serde(default)]
    pub outputs: u64,
    /// Results beyond the first for an event.
    #[serde(default)]
    pub output_duplicates: u64,
    /// Results whose payload hash is not the event's.
    #[serde(default)]
    pub output_corrupt: u64,
    /// Processed events without a result by the end.
    #[serde(default)]
    pub output_missing: u64,
    /// The first ids of each kind, so a failure can be chased.
    pub samples: Samples,
    pub invariants: Vec<Invariant>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Samples {
    pub lost: Vec<Sample>,
    pub indeterminate: Vec<Sample>,
    pub dead_lettered: Vec<Sample>,
}

/// One accounting identity, with both sides as counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invariant {
    pub name: String,
    pub left: u64,
    pub right: u64,
    pub holds: bool,
}

impl Invariant {
    fn new(name: &str, left: u64, right: u64) -> Invariant {
        Invariant {
            name: name.to_string(),
            left,
            right,
            holds: left == right,
        }
    }
}

impl Accounting {
    pub fn invariants_hold(&self) -> bool {
        self.invariants.iter().all(|i| i.holds)
    }
}

pub(super) fn tally(
    ledger: &Ledger,
    states: &super::states::States,
    unresolved: &super::SeqMap<u64>,
    gone: &[u64],
    last_resolved: Option<u64>,
    indeterminate: &[Sample],
    dead_lettered: &[Sample],
) -> Accounting {
    let gone: HashSet<u64> = gone.iter().copied().collect();
    let live = &ledger.live;
    let mut a = Accounting {
        scheduled: states.len() as u64,
        deduplicated: Live::get(&live.deduplicated),
        unexpected: Live::get(&live.unexpected),
        collisions: Live::get(&live.collisions),
        intended_out_of_range: Live::get(&live.intended_out_of_range),
        duplicates: Live::get(&live.duplicates),
        stream_duplicates: Live::get(&live.stream_duplicates),
        redelivered: Live::get(&live.redelivered),
        retries: Live::get(&live.retries),
        held_back: Live::get(&live.held_back),
        exhausted: Live::get(&live.exhausted),
        outputs: Live::get(&live.outputs),
        output_duplicates: Live::get(&live.output_duplicates),
        output_corrupt: Live::get(&live.output_corrupt),
        ..Accounting::default()
    };
    let mut samples = Samples {
        indeterminate: indeterminate.to_vec(),
        dead_lettered: dead_lettered.to_vec(),
        lost: Vec::new(),
    };
    for (seq, byte) in states.iter().enumerate() {
        let seq = seq as u64;
        let resolved = outcome(byte);
        match resolved {
            Outcome::Processed => a.processed += 1,
            Outcome::DeadLettered => a.dead_lettered += 1,
            Outcome::None => {}
        }
        match publish_state(byte) {
            Some(PublishState::Published) => {
                a.published += 1;
                if resolved == Outcome::None {
                    if gone.contains(&seq) || !unresolved.contains_key(&seq) {
                        a.lost += 1;
                        if last_resolved.is_some_and(|last| seq < last) {
                            a.lost_mid_run += 1;
                        } else {
                            a.lost_tail += 1;
                        }
                        if samples.lost.len() < SAMPLE_LIMIT {
                            samples.lost.push(Sample {
                                event_id: ledger.event_id(seq),
                                stream_sequence: unresolved.get(&seq).copied(),
                                reason: None,
                            });
                        }
                    } else {
                        a.pending += 1;
                    }
                }
            }
            Some(PublishState::Failed) => a.publish_failed += 1,
            // An attempt still unanswered when the books close is as
            // unknown as one that timed out.
            Some(PublishState::Indeterminate) | Some(PublishState::Sent) => a.indeterminate += 1,
            Some(PublishState::Scheduled) | Some(PublishState::NotSent) | None => a.not_sent += 1,
        }
        let failed_or_unknown = matches!(
            publish_state(byte),
            Some(PublishState::Failed | PublishState::Indeterminate | PublishState::Sent)
        );
        if failed_or_unknown && resolved != Outcome::None {
            a.recovered += 1;
        }
    }
    a.samples = samples;
    a.invariants = vec![
        Invariant::new(
            "scheduled = published + publish_failed + indeterminate + not_sent",
            a.scheduled,
            a.published + a.publish_failed + a.indeterminate + a.not_sent,
        ),
        Invariant::new(
            "processed + dead_lettered + pending + lost = published + recovered",
            a.processed + a.dead_lettered + a.pending + a.lost,
            a.published + a.recovered,
        ),
        Invariant::new(
            "processed counted live = processed in the ledger",
            Live::get(&live.processed),
            a.processed,
        ),
        Invariant::new(
            "dead_lettered counted live = dead_lettered in the ledger",
            Live::get(&live.dead_lettered),
            a.dead_lettered,
        ),
    ];
    a
}
