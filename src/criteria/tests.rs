use super::*;

fn figure(value: f64, kind: Kind, base: Option<f64>) -> Figure {
    Figure { value, kind, base }
}

/// One figure under `name`, with the base that a report would give it.
fn one(name: &str, value: f64, base: Option<f64>) -> Option<Figure> {
    let kind = kind_of(name).expect("test figure is catalogued");
    Some(figure(value, kind, base))
}

fn passes(expression: &str, figure: &Option<Figure>) -> bool {
    parse(expression)
        .expect("test expression parses")
        .evaluate_figure(*figure)
        .passed
}

fn error(expression: &str) -> CriteriaError {
    parse(expression).expect_err("test expression is rejected")
}

#[test]
fn every_operator_compares_as_written() {
    let lost = one("lost", 2.0, Some(100.0));
    let cases = [
        ("lost < 3", true),
        ("lost < 2", false),
        ("lost <= 2", true),
        ("lost <= 1", false),
        ("lost > 1", true),
        ("lost > 2", false),
        ("lost >= 2", true),
        ("lost >= 3", false),
        ("lost == 2", true),
        ("lost == 0", false),
        ("lost != 0", true),
        ("lost != 2", false),
    ];
    for (expression, expected) in cases {
        assert_eq!(passes(expression, &lost), expected, "{expression}");
    }
}

#[test]
fn whitespace_around_the_operator_is_optional() {
    let lost = one("lost", 0.0, Some(100.0));
    for expression in ["lost==0", "lost == 0", "  lost   ==0 ", "lost\t<=\t0"] {
        assert!(passes(expression, &lost), "{expression}");
    }
}

#[test]
fn numbers_accept_decimals_exponents_and_underscores() {
    let scheduled = one("scheduled", 1000.0, Some(1000.0));
    for expression in [
        "scheduled == 1e3",
        "scheduled == 1_000",
        "scheduled == 1000.0",
        "scheduled == +1E3",
    ] {
        assert!(passes(expression, &scheduled), "{expression}");
    }
    assert!(passes(
        "success_rate >= 0.95",
        &one("success_rate", 0.95, None)
    ));
    assert!(passes(
        "success_rate >= .5",
        &one("success_rate", 0.5, None)
    ));
}

#[test]
fn latency_units_convert_to_milliseconds() {
    let p99 = one("publish.p99", 250.0, None);
    let cases = [
        ("publish.p99 == 250", true),
        ("publish.p99 == 250ms", true),
        ("publish.p99 == 250000us", true),
        ("publish.p99 == 250000µs", true),
        ("publish.p99 == 250000μs", true),
        ("publish.p99 == 0.25s", true),
        ("publish.p99 < 1m", true),
        ("publish.p99 > 0.004m", true),
        ("publish.p99 < 249999us", false),
        ("publish.p99 < 250 ms", false),
    ];
    for (expression, expected) in cases {
        assert_eq!(passes(expression, &p99), expected, "{expression}");
    }
    assert!(passes(
        "end_to_end.p999 < 2s",
        &one("end_to_end.p999", 1999.0, None)
    ));
    assert!(!passes(
        "end_to_end.p999 < 2s",
        &one("end_to_end.p999", 2000.0, None)
    ));
}

#[test]
fn percent_of_a_count_is_a_share_of_the_scheduled_total() {
    assert!(passes(
        "dead_lettered <= 1%",
        &one("dead_lettered", 10.0, Some(1000.0))
    ));
    assert!(!passes(
        "dead_lettered <= 1%",
        &one("dead_lettered", 11.0, Some(1000.0))
    ));
    assert!(passes(
        "processed >= 99.5%",
        &one("processed", 995.0, Some(1000.0))
    ));
    // With nothing scheduled, the share is of zero.
    assert!(passes("lost <= 5%", &one("lost", 0.0, Some(0.0))));
    assert!(!passes("lost < 5%", &one("lost", 0.0, Some(0.0))));
    // No base, no meaning for `%`: the criterion cannot pass.
    assert!(!passes("lost <= 5%", &one("lost", 0.0, None)));
}

#[test]
fn percent_of_a_rate_is_a_share_of_the_target_rate() {
    assert!(passes(
        "achieved_rate >= 99%",
        &one("achieved_rate", 990.0, Some(1000.0))
    ));
    assert!(!passes(
        "achieved_rate >= 99%",
        &one("achieved_rate", 989.9, Some(1000.0))
    ));
    assert!(passes(
        "achieved_rate >= 500",
        &one("achieved_rate", 990.0, Some(1000.0))
    ));
}

#[test]
fn percent_of_a_ratio_divides_by_a_hundred() {
    let rate = one("success_rate", 0.95, None);
    assert!(passes("success_rate >= 95%", &rate));
    assert!(!passes("success_rate > 95%", &rate));
    assert!(passes("success_rate <= 100%", &rate));
}

#[test]
fn a_missing_figure_fails_with_no_actual_value() {
    let criterion = parse("publish.p99 < 500ms").unwrap();
    let outcome = criterion.evaluate_figure(None);
    assert_eq!(
        outcome,
        Outcome {
            name: "publish.p99".into(),
            expression: "publish.p99 < 500ms".into(),
            actual: None,
            passed: false,
        }
    );
}

#[test]
fn a_figure_that_is_not_a_number_never_passes() {
    let nan = one("lost", f64::NAN, Some(10.0));
    for expression in ["lost != 0", "lost == 0", "lost >= 0"] {
        assert!(!passes(expression, &nan), "{expression}");
    }
    assert!(!passes("lost != 1%", &one("lost", 0.0, Some(f64::NAN))));
}

#[test]
fn the_outcome_keeps_the_expression_as_written_and_the_actual_value() {
    let criterion = parse("  dead_lettered<=1 %\n").unwrap();
    assert_eq!(criterion.expression(), "dead_lettered<=1 %");
    assert_eq!(criterion.figure(), "dead_lettered");
    let outcome = criterion.evaluate_figure(one("dead_lettered", 3.0, Some(1000.0)));
    assert_eq!(outcome.name, "dead_lettered");
    assert_eq!(outcome.expression, "dead_lettered<=1 %");
    assert_eq!(outcome.actual, Some(3.0));
    assert!(outcome.passed);
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"name": "dead_lettered", "expression": "dead_lettered<=1 %", "actual": 3.0, "passed": true})
    );
}

#[test]
fn the_catalogue_knows_every_figure_and_nothing_else() {
    assert_eq!(kind_of("lost"), Some(Kind::Count));
    assert_eq!(kind_of("held_back"), Some(Kind::Count));
    assert_eq!(kind_of("success_rate"), Some(Kind::Ratio));
    assert_eq!(kind_of("target_rate"), Some(Kind::Rate));
    assert_eq!(kind_of("achieved_rate"), Some(Kind::Rate));
    assert_eq!(kind_of("schedule_lag.p999"), Some(Kind::Latency));
    assert_eq!(kind_of("processing.mean"), Some(Kind::Latency));
    assert_eq!(kind_of("end_to_end.count"), Some(Kind::Count));
    for unknown in [
        "",
        "lost.p99",
        "publish",
        "publish.p95",
        "publish.count.max",
        "LOST",
    ] {
        assert_eq!(kind_of(unknown), None, "{unknown}");
    }
    assert_eq!(
        figures::names().count(),
        figures::CATALOGUE.len() + HISTOGRAMS.len() * (STATS.len() + 1)
    );
    for name in figures::names() {
        assert!(parse(&format!("{name} >= 0")).is_ok(), "{name}");
    }
}

#[test]
fn an_unknown_figure_is_named_with_the_closest_one_and_the_catalogue() {
    let err = error("publsh.p99 < 500ms");
    assert_eq!(
        err,
        CriteriaError::UnknownFigure {
            expression: "publsh.p99 < 500ms".into(),
            figure: "publsh.p99".into(),
            suggestion: Some("publish.p99".into()),
        }
    );
    let message = err.to_string();
    assert!(message.starts_with(
        "criterion `publsh.p99 < 500ms` names an unknown figure `publsh.p99` (did you mean `publish.p99`?); known figures are scheduled, published,"
    ), "{message}");
    assert!(
        message.ends_with(
            "<publish|end_to_end|processing|schedule_lag>.<min|mean|p50|p90|p99|p999|max|count>"
        ),
        "{message}"
    );
    assert!(error("dead_letters <= 1%")
        .to_string()
        .contains("did you mean `dead_lettered`?"));
    assert!(error("Lost == 0")
        .to_string()
        .contains("did you mean `lost`?"));
    assert!(error("publish-p99 < 5")
        .to_string()
        .contains("did you mean `publish.p99`?"));
    let far = error("throughput > 5").to_string();
    assert!(!far.contains("did you mean"), "{far}");
    assert!(far.contains("known figures are"), "{far}");
}

#[test]
fn units_must_fit_the_kind_of_figure() {
    let message = error("publish.p99 < 5%").to_string();
    assert_eq!(
        message,
        "criterion `publish.p99 < 5%`: `publish.p99` is a latency, so `%` is not allowed; \
         use us, µs, ms, s or m (a bare number means milliseconds)"
    );
    let message = error("lost == 5ms").to_string();
    assert_eq!(
        message,
        "criterion `lost == 5ms`: `lost` is a count, not a latency, so the time unit `ms` is not allowed; \
         use a bare number or `%`"
    );
    assert!(matches!(
        error("achieved_rate > 5s"),
        CriteriaError::TimeUnitOnNonLatency {
            kind: Kind::Rate,
            ..
        }
    ));
    assert!(matches!(
        error("success_rate > 1m"),
        CriteriaError::TimeUnitOnNonLatency {
            kind: Kind::Ratio,
            ..
        }
    ));
    let message = error("publish.p99 < 5h").to_string();
    assert!(message.contains("unknown unit `h`"), "{message}");
    assert!(matches!(error("lost < 5kb"), CriteriaError::UnknownUnit { unit, .. } if unit == "kb"));
}

#[test]
fn a_ratio_threshold_stays_between_zero_and_one() {
    let message = error("success_rate >= 95").to_string();
    assert!(message.contains("write it as `0.95` or `95%`"), "{message}");
    assert!(matches!(
        error("success_rate > 101%"),
        CriteriaError::RatioOutOfRange { .. }
    ));
    assert!(parse("success_rate <= 1").is_ok());
}

#[test]
fn malformed_expressions_are_rejected_with_what_is_allowed() {
    assert_eq!(error("   "), CriteriaError::Empty);
    assert!(error("")
        .to_string()
        .contains("`<figure> <op> <number>[unit]`"));
    assert!(matches!(error("< 5"), CriteriaError::MissingFigure { .. }));
    let message = error("lost 0").to_string();
    assert_eq!(
        message,
        "criterion `lost 0` needs an operator after `lost`: one of <, <=, >, >=, ==, !="
    );
    assert!(matches!(
        error("lost = 0"),
        CriteriaError::MissingOperator { .. }
    ));
    assert!(matches!(
        error("lost =< 0"),
        CriteriaError::MissingOperator { .. }
    ));
    assert!(matches!(
        error("lost"),
        CriteriaError::MissingOperator { .. }
    ));
    assert!(
        matches!(error("lost <"), CriteriaError::MissingNumber { operator, .. } if operator == "<")
    );
    assert!(matches!(
        error("lost === 0"),
        CriteriaError::MissingNumber { .. }
    ));
    assert!(matches!(
        error("lost < ten"),
        CriteriaError::MissingNumber { .. }
    ));
    assert!(matches!(
        error("lost < inf"),
        CriteriaError::MissingNumber { .. }
    ));
    assert!(
        matches!(error("lost < 1.2.3"), CriteriaError::BadNumber { number, .. } if number == "1.2.3")
    );
    assert!(matches!(
        error("lost < 1e999"),
        CriteriaError::BadNumber { .. }
    ));
    let message = error("lost == 0 and duplicates == 0").to_string();
    assert!(
        message.starts_with(
            "criterion `lost == 0 and duplicates == 0` has unexpected text `and duplicates == 0`"
        ),
        "{message}"
    );
    assert!(
        matches!(error("lost == 0 0"), CriteriaError::TrailingInput { rest, .. } if rest == "0")
    );
    assert!(
        matches!(error("publish.p99 < 500ms;"), CriteriaError::TrailingInput { rest, .. } if rest == "ms;")
    );
    assert!(matches!(
        error("lost < 5%%"),
        CriteriaError::UnknownUnit { .. }
    ));
}

#[test]
fn negative_thresholds_are_rejected() {
    let message = error("lost >= -1").to_string();
    assert!(
        message.contains("the threshold for `lost` cannot be negative"),
        "{message}"
    );
    assert!(matches!(
        error("publish.p99 > -5ms"),
        CriteriaError::Negative { .. }
    ));
    assert!(parse("lost >= -0").is_ok());
}

#[test]
fn equality_is_exact() {
    let mean = one("publish.mean", 0.1 + 0.2, None);
    assert!(!passes("publish.mean == 0.3", &mean));
    assert!(passes("publish.mean > 0.3", &mean));
}

#[test]
fn edit_distance_counts_single_character_edits() {
    assert_eq!(edit_distance("lost", "lost"), 0);
    assert_eq!(edit_distance("lots", "lost"), 2);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("µs", "us"), 1);
}

#[test]
fn actual_values_show_their_units() {
    assert_eq!(show("processed", 40.0), "40");
    assert_eq!(show("success_rate", 0.985), "98.50%");
    assert_eq!(show("achieved_rate", 10.0), "10.00/s");
    assert_eq!(show("publish.p99", 7.3391), "7.34 ms");
    assert_eq!(show("end_to_end.count", 500.0), "500");
    assert_eq!(show("recovery_time", f64::INFINITY), "∞");
    assert_eq!(show("recovery_time", 1250.0), "1250.00 ms");
}
