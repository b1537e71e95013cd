use super::*;

fn ledger_with(n: u64) -> Ledger {
    let ledger = Ledger::new("r1");
    for seq in 0..n {
        ledger.schedule(seq, std::time::SystemTime::now(), seq);
    }
    ledger
}

#[test]
fn ids_round_trip_and_foreign_ids_are_rejected() {
    let ledger = Ledger::new("run7");
    assert_eq!(ledger.event_id(42), "run7-42");
    assert_eq!(ledger.parse_event_id("run7-42"), Some(42));
    assert_eq!(ledger.parse_event_id("run8-42"), None);
    assert_eq!(ledger.parse_event_id("run7-042"), None);
    assert_eq!(ledger.parse_event_id("run7-"), None);
    assert_eq!(ledger.parse_event_id("run742"), None);
    assert_eq!(ledger.parse_event_id("garbage"), None);
}

#[test]
fn a_calm_run_accounts_for_every_event() {
    let ledger = ledger_with(4);
    for seq in 0..4 {
        ledger.sent(seq);
        ledger.published(seq, seq + 1, false);
    }
    for seq in 0..3 {
        assert!(ledger.delivered(seq, 1, seq + 1).first);
        assert!(ledger.processed(seq, seq + 1));
    }
    assert!(ledger.dead_lettered(3, 4, "error"));
    let a = ledger.account(&[]);
    assert_eq!(
        (a.scheduled, a.published, a.processed, a.dead_lettered),
        (4, 4, 3, 1)
    );
    assert_eq!((a.pending, a.lost, a.recovered), (0, 0, 0));
    assert!(a.invariants_hold(), "{:?}", a.invariants);
    assert_eq!(a.samples.dead_lettered[0].event_id, "r1-3");
    assert_eq!(a.samples.dead_lettered[0].stream_sequence, Some(4));
}

#[test]
fn unresolved_events_are_pending_if_present_and_lost_if_gone() {
    let ledger = ledger_with(5);
    for seq in 0..5 {
        ledger.sent(seq);
        ledger.published(seq, 100 + seq, false);
    }
    ledger.processed(0, 1);
    ledger.processed(3, 3 + 1);
    assert_eq!(ledger.unresolved(), vec![(1, 101), (2, 102), (4, 104)]);
    let a = ledger.account(&[1, 4]);
    assert_eq!(
        (a.pending, a.lost, a.lost_mid_run, a.lost_tail),
        (1, 2, 1, 1)
    );
    assert_eq!(a.samples.lost[0].event_id, "r1-1");
    assert_eq!(a.samples.lost[0].stream_sequence, Some(101));
    assert!(a.invariants_hold());
}

#[test]
fn a_second_delivery_is_a_duplicate_never_a_second_count() {
    let ledger = ledger_with(1);
    ledger.sent(0);
    ledger.published(0, 1, false);
    assert!(ledger.delivered(0, 1, 1).first);
    assert!(ledger.processed(0, 1));
    // The ack was lost: the same stream message comes again.
    let again = ledger.delivered(0, 2, 1);
    assert!(!again.first && again.already_resolved);
    assert!(!ledger.processed(0, 1));
    // A restarted server rewound the consumer: the same message, count 1.
    ledger.delivered(0, 1, 1);
    // A retry stored after the duplicate window: a second stream message,
    // which counts once however often it is delivered; a third copy counts too.
    ledger.delivered(0, 1, 7);
    ledger.delivered(0, 2, 7);
    ledger.delivered(0, 1, 9);
    let a = ledger.account(&[]);
    assert_eq!(
        (
            a.processed,
            a.duplicates,
            a.stream_duplicates,
            a.redelivered
        ),
        (1, 5, 2, 2)
    );
    assert!(a.invariants_hold());
}

#[test]
fn a_second_copy_counts_as_a_stream_duplicate_while_its_event_is_recent() {
    let events = RECENT_LIMIT as u64 + 2;
    let ledger = ledger_with(events);
    for seq in 0..events {
        ledger.sent(seq);
        ledger.published(seq, seq + 1, false);
        ledger.delivered(seq, 1, seq + 1);
        assert!(ledger.processed(seq, seq + 1));
    }
    // Event 1's slot now holds event RECENT_LIMIT + 1: a second copy of it
    // is still a duplicate, no longer a stream one. Event 2's is recent.
    ledger.delivered(1, 1, 10 * events);
    ledger.delivered(2, 1, 10 * events + 1);
    // The slot's own event, delivered again from its own message: no copy.
    ledger.delivered(RECENT_LIMIT as u64 + 1, 2, RECENT_LIMIT as u64 + 2);
    let a = ledger.account(&[]);
    assert_eq!((a.duplicates, a.stream_duplicates), (3, 1));
    assert!(a.invariants_hold(), "{:?}", a.invariants);
}

#[test]
fn failed_or_indeterminate_events_that_arrive_anyway_are_recovered() {
    let ledger = ledger_with(3);
    for seq in 0..3 {
        ledger.sent(seq);
    }
    ledger.indeterminate(0);
    ledger.publish_failed(1);
    ledger.indeterminate(2);
    ledger.delivered(0, 1, 1);
    ledger.processed(0, 1);
    let a = ledger.account(&[]);
    assert_eq!(
        (a.published, a.indeterminate, a.publish_failed, a.recovered),
        (0, 2, 1, 1)
    );
    assert_eq!(a.processed, 1);
    assert!(a.invariants_hold(), "{:?}", a.invariants);
    assert_eq!(a.samples.indeterminate.len(), 2);
}

#[test]
fn the_consumer_may_see_an_event_before_its_puback() {
    let ledger = ledger_with(1);
    ledger.sent(0);
    ledger.delivered(0, 1, 1);
    ledger.processed(0, 1);
    ledger.published(0, 1, false);
    assert!(
        ledger.unresolved().is_empty(),
        "a resolved event is never unresolved"
    );
    let a = ledger.account(&[]);
    assert_eq!((a.published, a.processed, a.pending, a.lost), (1, 1, 0, 0));
    assert!(a.invariants_hold());
}

#[test]
fn unsent_and_unanswered_events_close_as_not_sent_and_indeterminate() {
    let ledger = ledger_with(3);
    ledger.sent(1);
    ledger.sent(2);
    ledger.published(2, 1, true);
    let a = ledger.account(&[]);
    assert_eq!(
        (a.not_sent, a.indeterminate, a.published, a.deduplicated),
        (1, 1, 1, 1)
    );
    assert_eq!(a.pending, 1);
    assert!(a.invariants_hold());
}

#[test]
fn deliveries_of_unknown_seqs_change_nothing() {
    let ledger = ledger_with(1);
    let delivery = ledger.delivered(99, 1, 99 + 1);
    assert!(!delivery.first);
    assert!(!ledger.processed(99, 99 + 1));
    assert!(!ledger.dead_lettered(99, 5, "poison"));
    assert_eq!(ledger.account(&[]).processed, 0);
}

#[test]
fn samples_stop_at_the_limit() {
    let n = SAMPLE_LIMIT as u64 + 20;
    let ledger = ledger_with(n);
    for seq in 0..n {
        ledger.sent(seq);
        ledger.indeterminate(seq);
    }
    let a = ledger.account(&[]);
    assert_eq!(a.indeterminate, n);
    assert_eq!(a.samples.indeterminate.len(), SAMPLE_LIMIT);
}
