use std::time::Duration;

use super::*;

const STEP: f64 = 0.25;

fn bounds() -> Recovery {
    Recovery {
        rate: 0.9,
        end_to_end_p99: Duration::from_millis(500),
        window: Duration::from_secs(2),
        stuck_after: Duration::from_secs(5),
    }
}

/// A run at 10 events/s, ticked every 250 ms, where `acked(at)` says
/// whether the events due in the step before `at` were acknowledged and
/// `e2e_ms(at)` is the latency of what was delivered then.
struct Sim {
    tracker: Tracker,
    at: f64,
    counters: Counters,
    deliveries: u64,
}

impl Sim {
    fn new(faults: usize) -> Sim {
        Sim {
            tracker: Tracker::new(bounds(), faults),
            at: 0.0,
            counters: Counters::default(),
            deliveries: 0,
        }
    }

    fn step(&mut self, acked: bool, e2e_ms: Option<u64>, server: Option<ServerView>, busy: u64) {
        self.at += STEP;
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        if acked {
            self.counters.published += 2;
        }
        if let Some(ms) = e2e_ms {
            h.record(ms * 1000).unwrap();
            h.record(ms * 1000).unwrap();
            self.deliveries += 2;
        }
        self.tracker.tick(Tick {
            at: self.at,
            expected: self.at * 8.0,
            counters: self.counters,
            end_to_end: Some(h),
            deliveries: self.deliveries,
            busy,
            server,
        });
    }

    /// Steps until `until`, healthy or not.
    fn run(&mut self, until: f64, acked: bool, e2e_ms: Option<u64>) {
        while self.at + 1e-9 < until {
            self.step(acked, e2e_ms, None, 0);
        }
    }
}

#[test]
fn recovery_lasts_until_latency_is_back_within_bounds() {
    let mut sim = Sim::new(1);
    sim.run(2.0, true, Some(5));
    sim.tracker.fault_started(0, 2.0, sim.counters);
    sim.run(4.0, false, None);
    sim.tracker.fault_ended(0, 4.0);
    // The backlog arrives late for a second, then all is well.
    sim.run(5.0, true, Some(3000));
    sim.run(9.0, true, Some(5));
    let cost = sim.tracker.costs()[0];
    let secs = cost.recovery_secs.expect("recovered");
    assert!((1.0..=1.25).contains(&secs), "{secs}");
    let figures = sim.tracker.figures(sim.at, true);
    assert_eq!(figures.unrecovered, 0);
    assert!((figures.recovery_ms - secs * 1000.0).abs() < 1e-6);
}

#[test]
fn a_fault_without_effect_recovers_at_once() {
    let mut sim = Sim::new(1);
    sim.run(2.0, true, Some(5));
    sim.tracker.fault_started(0, 2.0, sim.counters);
    sim.run(3.0, true, Some(5));
    sim.tracker.fault_ended(0, 3.0);
    sim.run(6.0, true, Some(5));
    let secs = sim.tracker.costs()[0].recovery_secs.unwrap();
    assert!(secs <= STEP, "{secs}");
}

#[test]
fn a_fault_that_never_recovers_is_infinite_at_the_end_and_growing_before() {
    let mut sim = Sim::new(1);
    sim.run(2.0, true, Some(5));
    sim.tracker.fault_started(0, 2.0, sim.counters);
    sim.run(3.0, false, None);
    sim.tracker.fault_ended(0, 3.0);
    sim.run(8.0, false, None);
    assert_eq!(sim.tracker.costs()[0].recovery_secs, None);
    let live = sim.tracker.figures(sim.at, false);
    assert!(
        (live.recovery_ms - 5000.0).abs() < 1.0,
        "{}",
        live.recovery_ms
    );
    assert_eq!(live.unrecovered, 0);
    let end = sim.tracker.figures(sim.at, true);
    assert_eq!(end.unrecovered, 1);
    assert!(end.recovery_ms.is_infinite());
}

#[test]
fn failures_count_from_the_fault_start_to_its_recovery_only() {
    let mut sim = Sim::new(1);
    sim.counters.publish_failed = 3; // before the fault
    sim.run(2.0, true, Some(5));
    sim.tracker.fault_started(0, 2.0, sim.counters);
    sim.run(3.0, false, None);
    sim.counters.publish_failed += 4;
    sim.counters.indeterminate += 6;
    sim.tracker.fault_ended(0, 3.0);
    sim.run(4.0, false, None);
    sim.counters.indeterminate += 1; // after the end, before recovery
    sim.run(8.0, true, Some(5));
    sim.counters.publish_failed += 100; // long after recovery
    sim.run(9.0, true, Some(5));
    let cost = sim.tracker.costs()[0];
    assert_eq!((cost.publish_failed, cost.indeterminate), (4, 7));
    let figures = sim.tracker.figures(sim.at, true);
    assert_eq!((figures.publish_failed, figures.indeterminate), (4, 7));
}

#[test]
fn faults_that_never_started_cost_nothing() {
    let mut sim = Sim::new(2);
    sim.run(3.0, true, Some(5));
    let figures = sim.tracker.figures(sim.at, true);
    assert_eq!(figures, FaultFigures::default());
}

fn waiting(num_pending: u64) -> Option<ServerView> {
    Some(ServerView {
        num_pending,
        at_ack_limit: false,
    })
}

#[test]
fn a_consumer_with_messages_waiting_and_nothing_delivered_is_stuck() {
    let mut sim = Sim::new(0);
    sim.run(2.0, true, Some(5));
    for _ in 0..(4.0 / STEP) as usize {
        sim.step(true, None, waiting(40), 0);
    }
    assert_eq!(sim.tracker.stuck(), None, "4 s is below stuck_after");
    for _ in 0..(2.0 / STEP) as usize {
        sim.step(true, None, waiting(50), 0);
    }
    let stuck = sim.tracker.stuck().expect("stuck");
    assert!((stuck.since_secs - 2.0).abs() < 1e-9, "{stuck:?}");
    assert!(stuck.for_secs >= 5.0 && stuck.pending == 50, "{stuck:?}");
    assert_eq!(sim.tracker.figures(sim.at, true).consumer_stuck, 1);
}

#[test]
fn busy_handlers_an_ack_limit_or_a_fault_are_not_stuck() {
    let mut sim = Sim::new(1);
    for _ in 0..40 {
        sim.step(true, None, waiting(10), 1); // handlers busy
    }
    for _ in 0..40 {
        let limit = Some(ServerView {
            num_pending: 10,
            at_ack_limit: true,
        });
        sim.step(true, None, limit, 0);
    }
    sim.tracker.fault_started(0, sim.at, sim.counters);
    for _ in 0..40 {
        sim.step(false, None, waiting(10), 0); // e.g. a consumer_stall
    }
    sim.tracker.fault_ended(0, sim.at);
    for _ in 0..(4.0 / STEP) as usize {
        sim.step(true, None, waiting(10), 0);
    }
    assert_eq!(
        sim.tracker.stuck(),
        None,
        "the quiet time counts from the fault's end"
    );
    for _ in 0..8 {
        sim.step(true, None, waiting(10), 0);
    }
    assert!(sim.tracker.stuck().is_some());
}

#[test]
fn a_relapse_after_the_end_pushes_recovery_back() {
    let mut sim = Sim::new(1);
    sim.run(2.0, true, Some(5));
    sim.tracker.fault_started(0, 2.0, sim.counters);
    sim.run(4.0, false, None);
    sim.tracker.fault_ended(0, 4.0);
    // Fine at once, then deliveries dropped during the fault come back late.
    sim.run(7.0, true, Some(5));
    assert!(sim.tracker.costs()[0].recovery_secs.is_some());
    sim.run(8.0, true, Some(4000));
    assert_eq!(sim.tracker.costs()[0].recovery_secs, None, "relapsed");
    sim.run(12.0, true, Some(5));
    let secs = sim.tracker.costs()[0].recovery_secs.unwrap();
    assert!((4.0..=4.25).contains(&secs), "{secs}");
}

#[test]
fn a_later_fault_does_not_undo_an_earlier_recovery() {
    let mut sim = Sim::new(2);
    sim.run(2.0, true, Some(5));
    sim.tracker.fault_started(0, 2.0, sim.counters);
    sim.run(3.0, false, None);
    sim.tracker.fault_ended(0, 3.0);
    sim.run(6.0, true, Some(5));
    sim.tracker.fault_started(1, 6.0, sim.counters);
    sim.run(8.0, false, None);
    sim.tracker.fault_ended(1, 8.0);
    sim.run(9.0, true, Some(3000));
    sim.run(12.0, true, Some(5));
    let costs = sim.tracker.costs();
    assert!(costs[0].recovery_secs.unwrap() <= STEP, "{costs:?}");
    assert!(
        (1.0..=1.25).contains(&costs[1].recovery_secs.unwrap()),
        "{costs:?}"
    );
}

#[test]
fn a_run_drained_dry_ends_the_recovery_of_what_was_still_recovering() {
    let mut sim = Sim::new(1);
    sim.run(2.0, true, Some(5));
    sim.tracker.fault_started(0, 2.0, sim.counters);
    sim.run(3.0, false, None);
    sim.tracker.fault_ended(0, 3.0);
    sim.run(4.0, true, Some(3000));
    let mut interrupted = Sim::new(0);
    std::mem::swap(&mut interrupted.tracker, &mut sim.tracker);
    interrupted.tracker.finish(4.0, false);
    assert_eq!(interrupted.tracker.figures(4.0, true).unrecovered, 1);
    interrupted.tracker.finish(4.0, true);
    assert_eq!(interrupted.tracker.costs()[0].recovery_secs, Some(1.0));
    assert_eq!(interrupted.tracker.figures(4.0, true).unrecovered, 0);
}
