//! The ledger: the state of every event, one byte each, and the accounting.
//!
//! Each event's byte holds its publish state (3 bits), its outcome (2 bits)
//! and whether it was ever delivered (1 bit). What is still unresolved, a
//! published event not yet processed or dead-lettered, also keeps its stream
//! sequence so the end of the drain can tell pending (still in the stream)
//! from lost (gone). Memory is one byte per event still open or ended
//! otherwise than processed, plus the backlog: runs of 65,536 events all
//! processed fold into one byte ([`states`]), so a healthy soak of hours
//! stays flat.
//!
//! Writers (publisher tasks, consumer workers) take a short lock; readers of
//! live figures use the atomic counters in [`Live`] and never lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;

mod accounting;
mod states;

pub use accounting::{Accounting, Invariant, Samples};

/// Where an event's publish stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PublishState {
    /// The schedule reached it; not sent yet (held back by max_in_flight).
    Scheduled = 1,
    /// An attempt is out, no answer yet.
    Sent = 2,
    Published = 3,
    Failed = 4,
    Indeterminate = 5,
    /// Scheduled but never sent: the run stopped first.
    NotSent = 6,
}

/// What the consumer did with an event, counted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    None = 0,
    Processed = 1,
    DeadLettered = 2,
}

const PUBLISH_MASK: u8 = 0b0000_0111;
const OUTCOME_SHIFT: u8 = 3;
const OUTCOME_MASK: u8 = 0b0001_1000;
const SEEN: u8 = 0b0010_0000;
/// Where a healthy run leaves almost every event: published, delivered,
/// processed. Chunks of events all in it take no memory per event.
const SETTLED: u8 =
    PublishState::Published as u8 | (Outcome::Processed as u8) << OUTCOME_SHIFT | SEEN;

fn publish_state(byte: u8) -> Option<PublishState> {
    Some(match byte & PUBLISH_MASK {
        1 => PublishState::Scheduled,
        2 => PublishState::Sent,
        3 => PublishState::Published,
        4 => PublishState::Failed,
        5 => PublishState::Indeterminate,
        6 => PublishState::NotSent,
        _ => return None,
    })
}

fn outcome(byte: u8) -> Outcome {
    match (byte & OUTCOME_MASK) >> OUTCOME_SHIFT {
        1 => Outcome::Processed,
        2 => Outcome::DeadLettered,
        _ => Outcome::None,
    }
}

/// An event named in the report so a failure can be chased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Sample {
    pub event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_sequence: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How many events keep the stream sequence they were resolved at, for
/// duplicate checks: 1 MiB. A second stored copy of an event delivered
/// after the event this many later in the schedule was resolved still
/// counts as a duplicate, but no longer as a stream one.
const RECENT_LIMIT: usize = 65_536;

/// The stream sequence each of the latest events was resolved at: a
/// fixed ring, slot `seq % RECENT_LIMIT`, so it never grows nor rehashes.
/// (A map with as many removals as inserts rehashed into twice its size,
/// with both tables live for a moment, some 100,000 events into a run.)
#[derive(Debug, Default)]
struct Recent {
    /// (seq + 1, stream sequence); seq + 1 == 0 marks an empty slot.
    slots: Vec<(u64, u64)>,
}

impl Recent {
    fn insert(&mut self, seq: u64, stream_sequence: u64) {
        if self.slots.is_empty() {
            self.slots = vec![(0, 0); RECENT_LIMIT];
        }
        self.slots[seq as usize % RECENT_LIMIT] = (seq.wrapping_add(1), stream_sequence);
    }

    fn get(&self, seq: u64) -> Option<u64> {
        self.slots
            .get(seq as usize % RECENT_LIMIT)
            .filter(|&&(held, _)| held == seq.wrapping_add(1))
            .map(|&(_, stream_sequence)| stream_sequence)
    }
}

/// Second stored copies remembered, to count each once.
const COPIES_LIMIT: usize = 1_000_000;

/// The ledger's maps are keyed by sequence numbers, which no outsider
/// picks: a fast hash, not SipHash's (several lookups per event).
type SeqMap<V> = HashMap<u64, V, foldhash::fast::RandomState>;
type SeqSet = std::collections::HashSet<u64, foldhash::fast::RandomState>;

/// How many ids of each kind the report lists.
pub const SAMPLE_LIMIT: usize = 100;

/// Live counters, readable at any time without a lock.
#[derive(Debug, Default)]
pub struct Live {
    pub scheduled: AtomicU64,
    pub sent: AtomicU64,
    pub published: AtomicU64,
    pub deduplicated: AtomicU64,
    pub publish_failed: AtomicU64,
    pub indeterminate: AtomicU64,
    pub retries: AtomicU64,
    pub held_back: AtomicU64,
    /// Events whose deliveries ran out (the MAX_DELIVERIES advisory).
    pub exhausted: AtomicU64,
    pub processed: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub duplicates: AtomicU64,
    pub stream_duplicates: AtomicU64,
    pub redelivered: AtomicU64,
    pub unexpected: AtomicU64,
    /// First publish attempts the stream answered "duplicate": another
    /// publisher had already stored a message under the event's id.
    pub collisions: AtomicU64,
    /// Deliveries whose intended send time lay outside the run, left out
    /// of the latency figures.
    pub intended_out_of_range: AtomicU64,
    pub deliveries: AtomicU64,
    /// Publish attempts by result.
    pub attempts_acked: AtomicU64,
    pub attempts_timed_out: AtomicU64,
    pub attempts_failed: AtomicU64,
    /// The consumer's replies.
    pub acks: AtomicU64,
    pub naks: AtomicU64,
    pub terms: AtomicU64,
    /// Copies stored on the dead-letter stream, by reason.
    pub dead_letters_error: AtomicU64,
    pub dead_letters_poison: AtomicU64,
    pub dead_letters_max_deliveries: AtomicU64,
    /// The output contract: events with a result, further results, and
    /// results whose payload hash is not the event's.
    pub outputs: AtomicU64,
    pub output_duplicates: AtomicU64,
    pub output_corrupt: AtomicU64,
}

impl Live {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a delivery means for its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The first delivery of this event: its end-to-end latency counts.
    pub first: bool,
    /// The event was already processed or dead-lettered.
    pub already_resolved: bool,
}

#[derive(Debug)]
struct Inner {
    states: states::States,
    /// Published, unresolved events: event seq → stream sequence.
    unresolved: SeqMap<u64>,
    indeterminate: Vec<Sample>,
    dead_lettered: Vec<Sample>,
    /// Highest event seq that was processed or dead-lettered.
    last_resolved: Option<u64>,
    /// Stream sequences the latest events were resolved at, to tell a
    /// second stored copy from the same message delivered again.
    recent: Recent,
    /// Stream sequences of the second copies already counted, so that a
    /// copy delivered again counts once. Second copies are rare; past
    /// [`COPIES_LIMIT`] each delivery of one counts.
    copies: SeqSet,
    /// Kept only when the consumer under test is observed from outside.
    observed: Option<Observed>,
}

/// What an observer of a consumer the harness does not run needs to tie
/// JetStream's reports to events: which event each stream sequence holds,
/// and when each event was meant to be sent.
#[derive(Debug, Default)]
struct Observed {
    by_stream: SeqMap<u64>,
    /// Intended send time of each event, in nanoseconds since the Unix epoch.
    intended: Vec<u64>,
    /// The seed each event's payload was built from.
    seeds: Vec<u64>,
    /// Results seen on the output subject, per event (saturating).
    outputs: Vec<u8>,
    /// Whether results are expected at all.
    output: bool,
}

/// The state of every event of one run.
#[derive(Debug)]
pub struct Ledger {
    run_id: String,
    inner: Mutex<Inner>,
    pub live: Live,
    /// Signs this run's events, so that a copy of an id is told from the event.
    pub signer: crate::event::Signer,
    /// When the books opened, before the first event: no intended send
    /// time of this run lies earlier.
    pub opened: crate::event::Moment,
}

impl Ledger {
    pub fn new(run_id: impl Into<String>) -> Ledger {
        Ledger {
            run_id: run_id.into(),
            inner: Mutex::new(Inner {
                states: states::States::new(SETTLED),
                unresolved: SeqMap::default(),
                indeterminate: Vec::new(),
                dead_lettered: Vec::new(),
                last_resolved: None,
                recent: Recent::default(),
                copies: SeqSet::default(),
                observed: None,
            }),
            live: Live::default(),
            signer: crate::event::Signer::random(),
            opened: crate::event::Moment::now(),
        }
    }

    /// These books, also keeping what an observer of a consumer outside
    /// the harness needs (about 50 bytes per event): see [`Ledger::event_at`].
    /// `output`: the consumer publishes a result per event, and a processed
    /// event without one counts as `output_missing`.
    pub fn observing(self, output: bool) -> Ledger {
        self.lock().observed = Some(Observed {
            output,
            ..Observed::default()
        });
        self
    }

    /// The event stored at `stream_sequence`, and when it was meant to be
    /// sent; None for a sequence no PubAck of this run named (yet).
    /// Only for books that are [`Ledger::observing`].
    pub fn event_at(&self, stream_sequence: u64) -> Option<(u64, SystemTime)> {
        let inner = self.lock();
        let observed = inner.observed.as_ref()?;
        let seq = *observed.by_stream.get(&stream_sequence)?;
        let nanos = observed.intended.get(seq as usize).copied().unwrap_or(0);
        Some((seq, SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos)))
    }

    /// When event `seq` was meant to be sent, and the seed its payload was
    /// built from. Only for books that are [`Ledger::observing`].
    pub fn intended(&self, seq: u64) -> Option<(SystemTime, u64)> {
        let inner = self.lock();
        let observed = inner.observed.as_ref()?;
        let nanos = *observed.intended.get(seq as usize)?;
        let seed = *observed.seeds.get(seq as usize)?;
        Some((SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos), seed))
    }

    /// A result on the output subject for event `seq`: how many it has had
    /// before this one (0 for the first). Only for observing books.
    pub fn output(&self, seq: u64) -> Option<u8> {
        let mut inner = self.lock();
        let count = inner.observed.as_mut()?.outputs.get_mut(seq as usize)?;
        let before = *count;
        *count = count.saturating_add(1);
        Some(before)
    }

    /// With an output contract, fewer events have a result than are
    /// processed: results may still be on their way.
    pub fn results_outstanding(&self) -> bool {
        let expected = self.lock().observed.as_ref().is_some_and(|o| o.output);
        expected && Live::get(&self.live.outputs) < Live::get(&self.live.processed)
    }

    /// Events processed without a result on the output subject.
    pub fn processed_without_output(&self) -> u64 {
        let inner = self.lock();
        let Some(observed) = inner.observed.as_ref().filter(|o| o.output) else {
            return 0;
        };
        observed
            .outputs
            .iter()
            .enumerate()
            .filter(|(seq, &count)| {
                count == 0 && inner.states.get(*seq).map(outcome) == Some(Outcome::Processed)
            })
            .count() as u64
    }

    /// The stream sequence of a published event not yet resolved.
    pub fn stream_sequence_of(&self, seq: u64) -> Option<u64> {
        self.lock().unresolved.get(&seq).copied()
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// `<run_id>-<seq>`, the event's id and its `Nats-Msg-Id`.
    pub fn event_id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.run_id)
    }

    /// The seq of an id of this run, or None for a foreign id.
    pub fn parse_event_id(&self, id: &str) -> Option<u64> {
        let rest = id.strip_prefix(self.run_id.as_str())?.strip_prefix('-')?;
        let seq: u64 = rest.parse().ok()?;
        (seq.to_string() == rest).then_some(seq)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent bytes behind
        // (every write is a single store), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The schedule reached event `seq` (sequence numbers come in order),
    /// meant to be sent at `intended`, its payload built from `seed`.
    pub fn schedule(&self, seq: u64, intended: SystemTime, seed: u64) {
        let mut inner = self.lock();
        debug_assert_eq!(inner.states.len() as u64, seq);
        inner.states.push(PublishState::Scheduled as u8);
        if let Some(observed) = &mut inner.observed {
            let nanos = intended.duration_since(SystemTime::UNIX_EPOCH);
            let nanos = nanos.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            observed.intended.push(nanos);
            observed.seeds.push(seed);
            observed.outputs.push(0);
        }
        Live::add(&self.live.scheduled);
    }

    /// Whether `seq` was scheduled by this run.
    pub fn is_scheduled(&self, seq: u64) -> bool {
        (seq as usize) < self.lock().states.len()
    }

    fn set_publish(inner: &mut Inner, seq: u64, state: PublishState) {
        inner
            .states
            .update(seq as usize, |byte| (byte & !PUBLISH_MASK) | state as u8);
    }

    pub fn sent(&self, seq: u64) {
        let mut inner = self.lock();
        if publish_state(inner.states.get(seq as usize).unwrap_or(0))
            == Some(PublishState::Scheduled)
        {
            Self::set_publish(&mut inner, seq, PublishState::Sent);
            Live::add(&self.live.sent);
        }
    }

    pub fn retried(&self) {
        Live::add(&self.live.retries);
    }

    pub fn held_back(&self) {
        Live::add(&self.live.held_back);
    }

    /// A PubAck arrived. `duplicate`: the stream had already stored it.
    pub fn published(&self, seq: u64, stream_sequence: u64, duplicate: bool) {
        let mut inner = self.lock();
        Self::set_publish(&mut inner, seq, PublishState::Published);
        if inner.states.get(seq as usize).map(outcome) == Some(Outcome::None) {
            inner.unresolved.insert(seq, stream_sequence);
        }
        if let Some(observed) = &mut inner.observed {
            observed.by_stream.insert(stream_sequence, seq);
        }
        drop(inner);
        Live::add(&self.live.published);
        if duplicate {
            Live::add(&self.live.deduplicated);
        }
    }

    /// The first attempt's PubAck said duplicate: the stream already held a
    /// message under this event's id that this run never sent (a run id
    /// reused within the duplicate window, or a forged copy). The event
    /// itself was not stored, so it failed for certain.
    pub fn collided(&self, seq: u64) {
        Live::add(&self.live.collisions);
        self.publish_failed(seq);
    }

    /// The last attempt failed for certain.
    pub fn publish_failed(&self, seq: u64) {
        Self::set_publish(&mut self.lock(), seq, PublishState::Failed);
        Live::add(&self.live.publish_failed);
    }

    /// The last attempt got no answer: the event may or may not be stored.
    pub fn indeterminate(&self, seq: u64) {
        let mut inner = self.lock();
        Self::set_publish(&mut inner, seq, PublishState::Indeterminate);
        if inner.indeterminate.len() < SAMPLE_LIMIT {
            let event_id = self.event_id(seq);
            inner.indeterminate.push(Sample {
                event_id,
                stream_sequence: None,
                reason: None,
            });
        }
        drop(inner);
        Live::add(&self.live.indeterminate);
    }

    /// A delivery of one of this run's events reached the consumer, from
    /// stream sequence `stream_sequence`.
    pub fn delivered(&self, seq: u64, delivery_count: i64, stream_sequence: u64) -> Delivery {
        Live::add(&self.live.deliveries);
        if delivery_count > 1 {
            Live::add(&self.live.redelivered);
        }
        let mut inner = self.lock();
        let Some(byte) = inner.states.update(seq as usize, |byte| byte | SEEN) else {
            return Delivery {
                first: false,
                already_resolved: false,
            };
        };
        let first = byte & SEEN == 0;
        let already_resolved = outcome(byte) != Outcome::None;
        // A second stored copy has its own stream sequence; the same message
        // delivered again (a lost ack, or a consumer whose state rewound when
        // its server restarted) has the one the event was resolved at.
        let second_copy = already_resolved
            && inner
                .recent
                .get(seq)
                .is_some_and(|resolved_at| resolved_at != stream_sequence);
        let new_copy = second_copy
            && (inner.copies.len() >= COPIES_LIMIT || inner.copies.insert(stream_sequence));
        drop(inner);
        if already_resolved {
            Live::add(&self.live.duplicates);
            if new_copy {
                Live::add(&self.live.stream_duplicates);
            }
        }
        Delivery {
            first,
            already_resolved,
        }
    }

    fn resolve(&self, seq: u64, to: Outcome, stream_sequence: u64) -> bool {
        let mut inner = self.lock();
        let set = |byte: u8| {
            if outcome(byte) == Outcome::None {
                (byte & !OUTCOME_MASK) | ((to as u8) << OUTCOME_SHIFT)
            } else {
                byte
            }
        };
        match inner.states.update(seq as usize, set) {
            Some(byte) if outcome(byte) == Outcome::None => {}
            _ => return false,
        }
        inner.unresolved.remove(&seq);
        inner.recent.insert(seq, stream_sequence);
        inner.last_resolved = Some(inner.last_resolved.map_or(seq, |last| last.max(seq)));
        true
    }

    /// The consumer acked the event, delivered from `stream_sequence`.
    /// False if it was already resolved.
    pub fn processed(&self, seq: u64, stream_sequence: u64) -> bool {
        let counted = self.resolve(seq, Outcome::Processed, stream_sequence);
        if counted {
            Live::add(&self.live.processed);
        }
        counted
    }

    /// The event was copied to the dead-letter subject. False if it was already resolved.
    pub fn dead_lettered(&self, seq: u64, stream_sequence: u64, reason: &str) -> bool {
        let counted = self.resolve(seq, Outcome::DeadLettered, stream_sequence);
        if counted {
            Live::add(&self.live.dead_lettered);
            let mut inner = self.lock();
            if inner.dead_lettered.len() < SAMPLE_LIMIT {
                let event_id = self.event_id(seq);
                inner.dead_lettered.push(Sample {
                    event_id,
                    stream_sequence: Some(stream_sequence),
                    reason: Some(reason.to_string()),
                });
            }
        }
        counted
    }

    /// A delivery whose id this run never scheduled.
    pub fn unexpected(&self) {
        Live::add(&self.live.unexpected);
    }

    /// Published events not yet resolved, with their stream sequences.
    pub fn unresolved(&self) -> Vec<(u64, u64)> {
        let mut all: Vec<_> = self
            .lock()
            .unresolved
            .iter()
            .map(|(&e, &s)| (e, s))
            .collect();
        all.sort_unstable();
        all
    }

    pub fn unresolved_count(&self) -> usize {
        self.lock().unresolved.len()
    }

    /// Publishes still awaiting an answer or not yet sent.
    pub fn publishes_open(&self) -> u64 {
        let live = &self.live;
        Live::get(&live.scheduled).saturating_sub(
            Live::get(&live.published)
                + Live::get(&live.publish_failed)
                + Live::get(&live.indeterminate),
        )
    }

    /// The accounting as it stands mid-run: every count kept as it
    /// happens, with pending the unresolved backlog. What only the closed
    /// books can tell (not_sent, lost, recovered) is 0.
    pub fn live_counts(&self) -> Accounting {
        let live = &self.live;
        let get = Live::get;
        Accounting {
            scheduled: get(&live.scheduled),
            published: get(&live.published),
            deduplicated: get(&live.deduplicated),
            publish_failed: get(&live.publish_failed),
            indeterminate: get(&live.indeterminate),
            processed: get(&live.processed),
            dead_lettered: get(&live.dead_lettered),
            pending: self.unresolved_count() as u64,
            unexpected: get(&live.unexpected),
            collisions: get(&live.collisions),
            intended_out_of_range: get(&live.intended_out_of_range),
            duplicates: get(&live.duplicates),
            stream_duplicates: get(&live.stream_duplicates),
            redelivered: get(&live.redelivered),
            retries: get(&live.retries),
            held_back: get(&live.held_back),
            exhausted: get(&live.exhausted),
            outputs: get(&live.outputs),
            output_duplicates: get(&live.output_duplicates),
            output_corrupt: get(&live.output_corrupt),
            ..Accounting::default()
        }
    }

    /// Closes the books: `gone` holds the unresolved events no longer in the
    /// stream (lost); the other unresolved ones are pending.
    pub fn account(&self, gone: &[u64]) -> Accounting {
        let mut accounting = {
            let inner = self.lock();
            accounting::tally(
                self,
                &inner.states,
                &inner.unresolved,
                gone,
                inner.last_resolved,
                &inner.indeterminate,
                &inner.dead_lettered,
            )
        };
        accounting.output_missing = self.processed_without_output();
        accounting
    }
}

#[cfg(test)]
mod tests;
