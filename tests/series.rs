//! The run as a time series in the report: a point per second, each
//! holding its own interval's figures, which add up to the run's; the
//! phases and fault windows on the same timeline.

mod common;

const SCENARIO: &str = r#"
[stream]
name = "SERIES"
subjects = ["series.>"]
storage = "memory"
[load]
subject = "series.events"
rate = 50
duration = "4s"
[consumer]
durable = "series"
dead_letter_subject = "series_dlq.events"
dead_letter_stream = "SERIES_DLQ"
[consumer.processing]
mean = "0s"
[[faults]]
at = "1s"
kind = "consumer_stall"
duration = "1s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_tells_the_run_over_time() {
    let server = common::NatsServer::start().await;
    let report = common::run_to_report(common::run_config(SCENARIO, &server, "series")).await;
    assert_eq!(report.counts.processed, 200, "{:?}", report.counts);
    let s = &report.series;
    assert_eq!(s.interval_secs, 1.0);
    assert!(s.points.len() >= 4, "{:#?}", s.points);
    let times: Vec<f64> = s.points.iter().map(|p| p.t_secs).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");

    // Each interval's share adds up to the run's whole.
    let mut before = 0.0;
    let (mut sent, mut processed, mut intended) = (0.0, 0.0, 0.0);
    for p in &s.points {
        let dt = p.t_secs - before;
        sent += p.achieved_rate * dt;
        processed += p.processed_rate * dt;
        intended += p.target_rate * dt;
        before = p.t_secs;
    }
    assert!((sent - 200.0).abs() < 0.5, "{sent}");
    assert!((processed - 200.0).abs() < 0.5, "{processed}");
    assert!((intended - 200.0).abs() < 0.5, "{intended}");
    let counted: u64 = s.points.iter().map(|p| p.latency["end_to_end"].count).sum();
    assert_eq!(counted, report.latency["end_to_end"].count);

    // The stall shows where it happened: nothing processed during it, and
    // the end-to-end latency of the interval after it carries the wait.
    let stalled = s
        .points
        .iter()
        .find(|p| p.t_secs > 1.6 && p.t_secs <= 2.1)
        .unwrap_or_else(|| panic!("a point inside the stall: {times:?}"));
    assert!(stalled.processed_rate < 30.0, "{stalled:?}");
    let worst = s
        .points
        .iter()
        .map(|p| p.latency["end_to_end"].max)
        .fold(0.0, f64::max);
    assert!(worst > 500.0, "events held by the stall: {worst} ms");

    let names: Vec<&str> = s.phases.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["load", "drain"]);
    assert!((s.phases[0].end_secs.unwrap() - 4.0).abs() < 0.5);
    assert_eq!(s.faults.len(), 1);
    assert_eq!(s.faults[0].name, "consumer_stall");
    assert!((s.faults[0].start_secs - 1.0).abs() < 0.3, "{:?}", s.faults);
    assert!(
        (s.faults[0].end_secs.unwrap() - 2.0).abs() < 0.3,
        "{:?}",
        s.faults
    );

    // And in the JSON, under `series`.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["series"]["points"].as_array().unwrap().len(),
        s.points.len()
    );
    assert!(json["series"]["points"][0]["latency"]["publish"]["p99"].is_number());
}
