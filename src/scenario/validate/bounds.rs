//! The range of every number a scenario holds: durations, rates, ratios,
//! factors and counts. Checked before anything adds, multiplies or
//! allocates with them, so a value that validates never overflows an
//! `Instant`, panics a timer or exhausts memory later.
//!
//! The ranges are generous (a year-long soak, ten million events a second)
//! and say so in the error, which names the key and the allowed range.

use std::time::Duration;

use super::{require, Check};
use crate::scenario::{Fault, Phase, Scenario};

pub(crate) const MS: Duration = Duration::from_millis(1);
pub(crate) const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
/// The longest load, drain, fault offset or anything else on a run's clock.
pub const YEAR: Duration = Duration::from_secs(366 * 86_400);
/// Events per second, the most a rate may ask for.
pub const MAX_RATE: f64 = 10_000_000.0;
/// Events per second, the least a constant rate may ask for (one every 11.6 days).
pub const MIN_RATE: f64 = 1e-6;
/// Events in one run: the ledger keeps a byte for each, so a gigabyte at
/// most (a day at 10,000 events/s is 864 million).
pub const MAX_EVENTS: f64 = 1_000_000_000.0;
/// Phases, steps of one step phase, faults, consumer backoff steps.
const MAX_PHASES: usize = 1_000;
const MAX_STEPS: u32 = 10_000;
const MAX_FAULTS: usize = 1_000;
const MAX_BACKOFF_STEPS: usize = 100;

/// A duration within `[min, max]`.
pub(crate) fn duration(key: &str, value: Duration, min: Duration, max: Duration) -> Check {
    require(value >= min && value <= max, key, || {
        format!(
            "{} is out of range: use {} to {}",
            humantime::format_duration(value),
            show(min),
            show(max)
        )
    })
}

fn show(d: Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// A finite number within `[min, max]` (NaN and infinities never are).
pub(crate) fn number(key: &str, value: f64, min: f64, max: f64, unit: &str) -> Check {
    require(
        value.is_finite() && value >= min && value <= max,
        key,
        || {
            if min > 0.0 && value <= 0.0 {
                format!("{value}: must be above 0{unit} (from {min} to {max})")
            } else {
                format!("{value} is out of range: use {min} to {max}{unit}")
            }
        },
    )
}

/// A count within `[min, max]`.
pub(crate) fn count(key: &str, value: u64, min: u64, max: u64) -> Check {
    require((min..=max).contains(&value), key, || {
        format!("{value} is out of range: use {min} to {max}")
    })
}

/// Every range, in file order.
pub fn check(s: &Scenario) -> Check {
    target(s)?;
    stream(s)?;
    load(s)?;
    publish(s)?;
    consumer(s)?;
    service(s)?;
    let d = &s.drain;
    duration("drain.timeout", d.timeout, Duration::ZERO, 7 * DAY)?;
    duration(
        "drain.interrupt_timeout",
        d.interrupt_timeout,
        Duration::ZERO,
        HOUR,
    )?;
    let r = &s.recovery;
    number(
        "recovery.rate",
        r.rate,
        0.0,
        1.0,
        " (a share of the target rate)",
    )?;
    duration("recovery.end_to_end_p99", r.end_to_end_p99, MS, DAY)?;
    duration("recovery.window", r.window, MS, DAY)?;
    duration("recovery.stuck_after", r.stuck_after, MS, DAY)?;
    duration(
        "criteria.abort_grace",
        s.criteria.abort_grace,
        Duration::ZERO,
        YEAR,
    )?;
    capacity(s)?;
    compare(s)?;
    faults(s)
}

fn capacity(s: &Scenario) -> Check {
    let c = &s.capacity;
    number(
        "capacity.start_rate",
        c.start_rate,
        MIN_RATE,
        MAX_RATE,
        " events/s",
    )?;
    number(
        "capacity.max_rate",
        c.max_rate,
        MIN_RATE,
        MAX_RATE,
        " events/s",
    )?;
    number(
        "capacity.precision",
        c.precision,
        0.001,
        1.0,
        " (a share of the rate)",
    )?;
    duration("capacity.trial", c.trial, 100 * MS, DAY)?;
    duration("capacity.warmup", c.warmup, Duration::ZERO, DAY)?;
    number(
        "capacity.max_backlog_growth",
        c.max_backlog_growth,
        0.0,
        1.0,
        " (a share of the rate, per second)",
    )?;
    // Publishes still in flight when the load ends need a moment.
    duration("capacity.drain", c.drain, 100 * MS, DAY)?;
    duration(
        "capacity.max_schedule_lag",
        c.max_schedule_lag,
        Duration::from_micros(1),
        HOUR,
    )?;
    count("capacity.max_trials", u64::from(c.max_trials), 1, 1_000)?;
    if let Some(rate) = c.common_rate {
        number(
            "capacity.common_rate",
            rate,
            MIN_RATE,
            MAX_RATE,
            " events/s",
        )?;
    }
    for (i, v) in s.variants.iter().enumerate() {
        if let Some(replicas) = v.replicas {
            count(&format!("variants[{i}].replicas"), replicas as u64, 1, 5)?;
        }
        if let Some(workers) = v.workers {
            count(&format!("variants[{i}].workers"), workers as u64, 1, 10_000)?;
        }
        if let Some(payload) = v.payload {
            count(&format!("variants[{i}].payload"), payload.0, 1, 8 << 20)?;
        }
    }
    require(s.variants.len() <= 100, "variants", || {
        format!("{} variants: at most 100", s.variants.len())
    })
}

fn compare(s: &Scenario) -> Check {
    let c = &s.compare;
    number(
        "compare.latency",
        c.latency,
        0.0,
        100.0,
        " (a share: 0.25 is 25%)",
    )?;
    duration(
        "compare.latency_floor",
        c.latency_floor,
        Duration::ZERO,
        HOUR,
    )?;
    number("compare.rate", c.rate, 0.0, 1.0, " (a share: 0.01 is 1%)")?;
    number("compare.msr", c.msr, 0.0, 1.0, " (a share: 0.1 is 10%)")?;
    for (i, p) in c.percentiles.iter().enumerate() {
        number(&format!("compare.percentiles[{i}]"), *p, 0.0, 100.0, "")?;
    }
    for (i, name) in c.latencies.iter().enumerate() {
        require(
            crate::stats::Latency::ALL.iter().any(|l| l.name() == name),
            &format!("compare.latencies[{i}]"),
            || {
                format!(
                    "`{name}` is no latency; use {}",
                    crate::stats::Latency::ALL.map(|l| l.name()).join(", ")
                )
            },
        )?;
    }
    Ok(())
}

fn target(s: &Scenario) -> Check {
    let t = &s.target;
    duration("target.connect_timeout", t.connect_timeout, MS, HOUR)?;
    duration(
        "target.reconnect_wait",
        t.reconnect_wait,
        Duration::ZERO,
        HOUR,
    )?;
    count(
        "target.max_reconnects",
        t.max_reconnects as u64,
        0,
        1_000_000,
    )?;
    // async-nats pings on a timer of this period; a zero period panics it.
    duration("target.ping_interval", t.ping_interval, 100 * MS, HOUR)
}

fn stream(s: &Scenario) -> Check {
    let st = &s.stream;
    // JetStream keeps these as signed nanoseconds; ten years is far inside.
    duration("stream.max_age", st.max_age, Duration::ZERO, 3650 * DAY)?;
    duration("stream.duplicate_window", st.duplicate_window, MS, 30 * DAY)?;
    if let Some(bytes) = st.max_bytes {
        count("stream.max_bytes", bytes.0, 1, i64::MAX as u64)?;
    }
    Ok(())
}

fn load(s: &Scenario) -> Check {
    let l = &s.load;
    if let Some(duration) = l.duration {
        self::duration("load.duration", duration, MS, YEAR)?;
    }
    if let Some(rate) = l.rate {
        number("load.rate", rate, MIN_RATE, MAX_RATE, " events/s")?;
    }
    count("load.phases", l.phases.len() as u64, 0, MAX_PHASES as u64)?;
    let mut total = Duration::ZERO;
    for (i, phase) in l.phases.iter().enumerate() {
        let key = format!("load.phases[{i}]");
        self::phase(phase, &key)?;
        total = total.saturating_add(phase.duration());
        duration("load.phases", total, MS, YEAR).map_err(|mut e| {
            e.message = format!(
                "the phases last longer than the longest load, {}",
                show(YEAR)
            );
            e
        })?;
    }
    count("load.max_in_flight", l.max_in_flight as u64, 1, 1_000_000)?;
    if let Some(garbage) = &l.garbage {
        number(
            "load.garbage.rate",
            garbage.rate,
            0.001,
            1_000.0,
            " messages/s",
        )?;
    }
    let expected = crate::schedule::Profile::from_load(l).expected_events();
    require(
        expected <= MAX_EVENTS,
        if l.phases.is_empty() {
            "load.rate"
        } else {
            "load.phases"
        },
        || {
            format!(
            "the load schedules about {expected:.3e} events; one run takes at most {MAX_EVENTS:.0} \
             (the ledger keeps a byte for each): shorten the load or lower the rate"
        )
        },
    )
}

fn phase(phase: &Phase, key: &str) -> Check {
    duration(&format!("{key}.duration"), phase.duration(), MS, YEAR)?;
    let rate = |name: &str, value: f64| {
        number(&format!("{key}.{name}"), value, 0.0, MAX_RATE, " events/s")
    };
    match *phase {
        Phase::Constant { rate: r, .. } => rate("rate", r),
        Phase::Ramp { from, to, .. } => rate("from", from).and(rate("to", to)),
        Phase::Step {
            from, to, steps, ..
        } => {
            rate("from", from)?;
            rate("to", to)?;
            count(
                &format!("{key}.steps"),
                u64::from(steps),
                1,
                u64::from(MAX_STEPS),
            )
        }
    }
}

fn publish(s: &Scenario) -> Check {
    let p = &s.publish;
    duration("publish.timeout", p.timeout, MS, HOUR)?;
    count("publish.max_retries", u64::from(p.max_retries), 0, 100)?;
    duration(
        "publish.backoff.initial",
        p.backoff.initial,
        Duration::ZERO,
        HOUR,
    )?;
    duration("publish.backoff.max", p.backoff.max, Duration::ZERO, HOUR)?;
    number(
        "publish.backoff.multiplier",
        p.backoff.multiplier,
        1.0,
        100.0,
        "",
    )?;
    number("publish.backoff.jitter", p.backoff.jitter, 0.0, 1.0, "")
}

fn consumer(s: &Scenario) -> Check {
    let c = &s.consumer;
    count("consumer.workers", c.workers as u64, 1, 10_000)?;
    count("consumer.batch", c.batch as u64, 1, 10_000)?;
    duration("consumer.ack_wait", c.ack_wait, MS, DAY)?;
    count(
        "consumer.backoff",
        c.backoff.len() as u64,
        0,
        MAX_BACKOFF_STEPS as u64,
    )?;
    for (i, step) in c.backoff.iter().enumerate() {
        duration(&format!("consumer.backoff[{i}]"), *step, MS, DAY)?;
    }
    duration("consumer.processing_timeout", c.processing_timeout, MS, DAY)?;
    duration("consumer.nak_delay", c.nak_delay, Duration::ZERO, DAY)?;
    number("consumer.timeout_ratio", c.timeout_ratio, 0.0, 1.0, "")?;
    number("consumer.error_ratio", c.error_ratio, 0.0, 1.0, "")?;
    let p = &c.processing;
    for (key, value) in [
        ("consumer.processing.mean", p.mean),
        ("consumer.processing.stddev", p.stddev),
        ("consumer.processing.min", p.min),
        ("consumer.processing.max", p.max),
    ] {
        duration(key, value, Duration::ZERO, DAY)?;
    }
    Ok(())
}

fn service(s: &Scenario) -> Check {
    let Some(service) = &s.consumer.service else {
        return Ok(());
    };
    let key = "consumer.service";
    duration(
        &format!("{key}.ready_timeout"),
        service.ready_timeout,
        MS,
        HOUR,
    )?;
    duration(
        &format!("{key}.stop_timeout"),
        service.stop_timeout,
        MS,
        HOUR,
    )
}

fn faults(s: &Scenario) -> Check {
    count("faults", s.faults.len() as u64, 0, MAX_FAULTS as u64)?;
    for (i, fault) in s.faults.iter().enumerate() {
        self::fault(fault, &format!("faults[{i}]"))?;
    }
    Ok(())
}

/// When a fault starts and how long it lasts; each kind checks its own
/// settings ([`crate::faults`]).
fn fault(fault: &Fault, key: &str) -> Check {
    duration(&format!("{key}.at"), fault.at, Duration::ZERO, YEAR)?;
    duration(&format!("{key}.duration"), fault.duration, MS, YEAR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_error_names_the_key_and_the_range() {
        let e = duration("publish.timeout", YEAR * 2, MS, HOUR).unwrap_err();
        assert_eq!(e.key, "publish.timeout");
        assert!(e.message.contains("1ms to 1h"), "{}", e.message);
        let e = number("load.rate", f64::NAN, MIN_RATE, MAX_RATE, " events/s").unwrap_err();
        assert!(e.message.contains("NaN is out of range"), "{}", e.message);
        assert!(number("x", f64::INFINITY, 0.0, f64::MAX, "").is_err());
        assert!(count("consumer.workers", 0, 1, 10).is_err());
        assert!(count("consumer.workers", 10, 1, 10).is_ok());
    }
}
