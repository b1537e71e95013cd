use super::*;
use crate::shard::ShardInfo;

/// Shard `index` of `count` of run `r1`, with `samples` latencies (µs) in
/// every histogram, `n` events all processed, and a series of 3 points.
fn shard(index: u32, count: u32, samples: &[u64], n: u64) -> (String, Report) {
    let mut r = crate::report::example();
    r.run_id = "r1".into();
    r.config = serde_json::json!({
        "load": {"rate": 100.0, "duration": "3s"},
        "criteria": {"checks": ["lost == 0", "end_to_end.p99 < 50ms"]}
    });
    r.shard = Some(ShardInfo {
        index,
        count,
        scenario_hash: "abc".into(),
        schedule_start: "2026-12-04T18:00:00Z".into(),
        late_secs: 0.0,
    });
    let mut h = crate::stats::new_histogram();
    for &us in samples {
        h.record(us).unwrap();
    }
    r.histograms = Latency::ALL
        .iter()
        .map(|l| (l.name().to_string(), crate::series::encode_text(&h)))
        .collect();
    r.latency = Latency::ALL
        .iter()
        .map(|l| (l.name().to_string(), Summary::of(&h)))
        .collect();
    r.counts = Accounting {
        scheduled: n,
        published: n,
        processed: n,
        retries: index.into(),
        invariants: vec![crate::ledger::Invariant {
            name: "scheduled = published + publish_failed + indeterminate + not_sent".into(),
            left: n,
            right: n,
            holds: true,
        }],
        ..Accounting::default()
    };
    r.series.points.truncate(3);
    for p in &mut r.series.points {
        p.histograms = vec![crate::series::encode(&h); Latency::ALL.len()];
    }
    r.passed = true;
    (format!("shard{index}.json"), r)
}

#[test]
fn counts_add_and_percentiles_come_from_one_histogram_of_every_sample() {
    let a: Vec<u64> = (1..=900).map(|i| i * 10).collect();
    let b: Vec<u64> = (1..=100).map(|i| 20_000 + i * 300).collect();
    let merged = merge(vec![shard(0, 2, &a, 900), shard(1, 2, &b, 100)]).unwrap();
    let c = &merged.counts;
    assert_eq!((c.scheduled, c.processed, c.retries), (1000, 1000, 1));
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!(c.invariants[0].left, 1000);
    let mut all = crate::stats::new_histogram();
    for &us in a.iter().chain(&b) {
        all.record(us).unwrap();
    }
    let exact = Summary::of(&all);
    assert_eq!(merged.latency["end_to_end"], exact);
    // Averaging the shards' p99 would have said otherwise.
    let p99 = |s: &[u64]| {
        let mut h = crate::stats::new_histogram();
        s.iter().for_each(|&us| h.record(us).unwrap());
        Summary::of(&h).p99
    };
    assert!((exact.p99 - (p99(&a) + p99(&b)) / 2.0).abs() > 1.0);
    assert_eq!(merged.rates.target, 200.0);
    assert_eq!(merged.merged.as_ref().unwrap().shards, vec![0, 1]);
    assert!(merged.merged.as_ref().unwrap().problems.is_empty());
    // The criteria are judged once, on the merged figures: p99 is 49 ms.
    assert_eq!(merged.criteria.len(), 2);
    assert!(
        merged.criteria.iter().all(|c| c.passed),
        "{:?}",
        merged.criteria
    );
    assert!(merged.passed);
    assert!(merged.shard.is_none());
}

#[test]
fn the_merged_criteria_fail_on_the_merged_figures() {
    let slow: Vec<u64> = vec![90_000; 50];
    let fast: Vec<u64> = vec![1_000; 50];
    let merged = merge(vec![shard(0, 2, &fast, 50), shard(1, 2, &slow, 50)]).unwrap();
    let p99 = merged
        .criteria
        .iter()
        .find(|c| c.name == "end_to_end.p99")
        .unwrap();
    assert!(!p99.passed, "{p99:?}");
    assert!(!merged.passed);
}

#[test]
fn a_missing_shard_fails_the_verdict_with_its_own_reason() {
    let merged = merge(vec![shard(0, 3, &[100], 10), shard(2, 3, &[100], 10)]).unwrap();
    let problems = &merged.merged.as_ref().unwrap().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("shard 1 of 3 missing"), "{problems:?}");
    assert_eq!(merged.counts.scheduled, 20);
    assert!(!merged.passed);
    assert!(merged.warnings.iter().any(|w| w.contains("missing")));
}

#[test]
fn a_shard_given_twice_counts_once_and_fails_the_verdict() {
    let merged = merge(vec![
        shard(0, 2, &[100], 10),
        shard(1, 2, &[100], 10),
        shard(1, 2, &[100], 10),
    ])
    .unwrap();
    assert_eq!(merged.counts.scheduled, 20);
    let problems = &merged.merged.as_ref().unwrap().problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("shard 1/2 appears twice")),
        "{problems:?}"
    );
    assert!(!merged.passed);
}

#[test]
fn reports_of_other_runs_scenarios_or_counts_are_left_out_and_named() {
    let mut other_run = shard(1, 2, &[100], 10);
    other_run.1.run_id = "r2".into();
    let mut other_scenario = shard(1, 2, &[100], 10);
    other_scenario.1.shard.as_mut().unwrap().scenario_hash = "def".into();
    let other_count = shard(1, 3, &[100], 10);
    let mut whole_run = shard(1, 2, &[100], 10);
    whole_run.1.shard = None;
    for (intruder, says) in [
        (other_run, "run id `r2`"),
        (other_scenario, "another scenario"),
        (other_count, "shard count 3"),
        (whole_run, "not a shard's report"),
    ] {
        let merged = merge(vec![shard(0, 2, &[100], 10), intruder]).unwrap();
        let problems = &merged.merged.as_ref().unwrap().problems;
        assert!(
            problems.iter().any(|p| p.contains(says)),
            "{says}: {problems:?}"
        );
        // Left out, so shard 1 is missing too.
        assert!(
            problems.iter().any(|p| p.contains("missing")),
            "{problems:?}"
        );
        assert_eq!(merged.counts.scheduled, 10);
        assert!(!merged.passed);
    }
    assert!(merge(vec![]).is_none());
}

#[test]
fn series_line_up_on_the_absolute_timeline() {
    let (na, a) = shard(0, 2, &[1_000, 2_000], 10);
    let (nb, mut b) = shard(1, 2, &[3_000], 10);
    // Shard 1 began its schedule a second later.
    b.shard.as_mut().unwrap().schedule_start = "2026-12-04T18:00:01Z".into();
    let merged = merge(vec![(na, a.clone()), (nb, b.clone())]).unwrap();
    let points = &merged.series.points;
    // a at 1, 2, 3 s; b at 2, 3, 4 s.
    let ts: Vec<f64> = points.iter().map(|p| p.t_secs).collect();
    assert_eq!(ts, vec![1.0, 2.0, 3.0, 4.0]);
    let counts: Vec<u64> = points
        .iter()
        .map(|p| p.latency["end_to_end"].count)
        .collect();
    assert_eq!(counts, vec![2, 3, 3, 1]);
    assert_eq!(points[1].target_rate, a.series.points[1].target_rate * 2.0);
    let load = merged
        .series
        .phases
        .iter()
        .find(|m| m.name == "load")
        .unwrap();
    assert_eq!(load.start_secs, 0.0);
}

#[test]
fn a_histogram_missing_or_unlike_its_summary_fails_the_verdict() {
    let (na, a) = shard(0, 2, &[1_000; 10], 10);
    let (nb, mut b) = shard(1, 2, &[2_000; 10], 10);
    b.histograms.remove("end_to_end");
    b.latency.get_mut("publish").unwrap().count = 11;
    let merged = merge(vec![(na, a), (nb, b)]).unwrap();
    let problems = &merged.merged.as_ref().unwrap().problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("shard 1: no readable end_to_end histogram")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("publish histogram holds 10 samples against 11")),
        "{problems:?}"
    );
    assert!(!merged.passed);
}

/// One shard with points every second, another coarsened to every two
/// seconds: each interval's rates weigh each point by the time it covers.
#[test]
fn points_of_one_shard_in_one_interval_are_weighted_by_their_time() {
    let (na, mut a) = shard(0, 2, &[1_000], 10);
    let (nb, mut b) = shard(1, 2, &[1_000], 10);
    a.series.interval_secs = 1.0;
    b.series.interval_secs = 2.0;
    for (t, p) in a.series.points.iter_mut().enumerate() {
        p.t_secs = (t + 1) as f64;
        p.achieved_rate = if t == 0 { 100.0 } else { 300.0 };
    }
    b.series.points.truncate(1);
    b.series.points[0].t_secs = 2.0;
    b.series.points[0].achieved_rate = 50.0;
    let merged = merge(vec![(na, a), (nb, b)]).unwrap();
    let points = &merged.series.points;
    assert_eq!(merged.series.interval_secs, 2.0);
    // 0-2 s: shard 0 at 100 then 300 (mean 200), shard 1 at 50.
    assert_eq!(points[0].t_secs, 2.0);
    assert!(
        (points[0].achieved_rate - 250.0).abs() < 1e-9,
        "{:?}",
        points[0]
    );
}
