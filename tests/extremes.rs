//! Extreme values in every numeric key: 0, tiny, huge, NaN, ±inf and the
//! type's maximum. Each is either rejected with an error that names its key
//! (or a key of the same table it contradicts), or the scenario validates
//! and rehearses without a panic. Then the accepted extremes run for real.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use proptest::prelude::*;
use toml::Value;

/// Constant rate, exponential handlers, every optional part present.
const CONSTANT: &str = r#"
[target]
[stream]
max_bytes = "1GiB"
max_age = "1h"
[load]
rate = 50
duration = "10s"
[load.garbage]
rate = 2.0
[publish.backoff]
[consumer]
backoff = ["1s", "2s"]
[consumer.processing]
distribution = "exponential"
mean = "5ms"
stddev = "1ms"
[drain]
[recovery]
[criteria]
abort_grace = "1s"
[[faults]]
at = "2s"
kind = "consumer_slow"
factor = 10.0
duration = "1s"
[[faults]]
at = "3s"
kind = "latency"
delay = "10ms"
jitter = "5ms"
[[faults]]
at = "4s"
kind = "bandwidth"
bandwidth = "64KiB"
[[faults]]
at = "5s"
kind = "kill"
node = 0
"#;

/// Phases of every kind, uniform handlers.
const PHASED: &str = r#"
[load]
[[load.phases]]
kind = "constant"
rate = 10
duration = "2s"
[[load.phases]]
kind = "ramp"
from = 10
to = 100
duration = "2s"
[[load.phases]]
kind = "step"
from = 100
to = 10
steps = 3
duration = "3s"
[consumer.processing]
distribution = "uniform"
min = "1ms"
max = "3ms"
"#;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Duration,
    Float,
    Integer,
    Size,
}

const COMMON: &[(&str, Kind)] = &[
    ("target.connect_timeout", Kind::Duration),
    ("target.reconnect_wait", Kind::Duration),
    ("target.max_reconnects", Kind::Integer),
    ("target.ping_interval", Kind::Duration),
    ("target.nodes", Kind::Integer),
    ("stream.max_age", Kind::Duration),
    ("stream.max_messages", Kind::Integer),
    ("stream.max_bytes", Kind::Size),
    ("stream.replicas", Kind::Integer),
    ("stream.duplicate_window", Kind::Duration),
    ("load.max_in_flight", Kind::Integer),
    ("load.seed", Kind::Integer),
    ("load.payload.size", Kind::Size),
    ("publish.timeout", Kind::Duration),
    ("publish.max_retries", Kind::Integer),
    ("publish.backoff.initial", Kind::Duration),
    ("publish.backoff.multiplier", Kind::Float),
    ("publish.backoff.max", Kind::Duration),
    ("publish.backoff.jitter", Kind::Float),
    ("consumer.workers", Kind::Integer),
    ("consumer.batch", Kind::Integer),
    ("consumer.ack_wait", Kind::Duration),
    ("consumer.max_deliver", Kind::Integer),
    ("consumer.max_ack_pending", Kind::Integer),
    ("consumer.processing.mean", Kind::Duration),
    ("consumer.processing.stddev", Kind::Duration),
    ("consumer.processing.min", Kind::Duration),
    ("consumer.processing.max", Kind::Duration),
    ("consumer.processing_timeout", Kind::Duration),
    ("consumer.timeout_ratio", Kind::Float),
    ("consumer.error_ratio", Kind::Float),
    ("consumer.nak_delay", Kind::Duration),
    ("drain.timeout", Kind::Duration),
    ("drain.interrupt_timeout", Kind::Duration),
    ("recovery.rate", Kind::Float),
    ("recovery.end_to_end_p99", Kind::Duration),
    ("recovery.window", Kind::Duration),
    ("recovery.stuck_after", Kind::Duration),
    ("criteria.abort_grace", Kind::Duration),
];

const CONSTANT_ONLY: &[(&str, Kind)] = &[
    ("load.rate", Kind::Float),
    ("load.duration", Kind::Duration),
    ("load.garbage.rate", Kind::Float),
    ("consumer.backoff[0]", Kind::Duration),
    ("faults[0].at", Kind::Duration),
    ("faults[0].duration", Kind::Duration),
    ("faults[0].factor", Kind::Float),
    ("faults[1].delay", Kind::Duration),
    ("faults[1].jitter", Kind::Duration),
    ("faults[2].bandwidth", Kind::Size),
    ("faults[3].node", Kind::Integer),
    ("faults[3].at", Kind::Duration),
];

const PHASED_ONLY: &[(&str, Kind)] = &[
    ("load.phases[0].duration", Kind::Duration),
    ("load.phases[0].rate", Kind::Float),
    ("load.phases[1].from", Kind::Float),
    ("load.phases[1].to", Kind::Float),
    ("load.phases[1].duration", Kind::Duration),
    ("load.phases[2].steps", Kind::Integer),
    ("load.phases[2].to", Kind::Float),
    ("load.phases[2].duration", Kind::Duration),
];

fn extremes(kind: Kind) -> Vec<Value> {
    let s = |t: &str| Value::String(t.into());
    let nan = Value::Float(f64::NAN);
    let inf = Value::Float(f64::INFINITY);
    match kind {
        Kind::Duration => vec![
            s("0s"),
            s("1ns"),
            s("1ms"),
            s("400000000000y"),
            s("18446744073709551615s"),
            s("-1s"),
            nan,
            Value::Integer(i64::MAX),
        ],
        Kind::Float => vec![
            Value::Float(0.0),
            Value::Float(5e-324),
            Value::Float(1e-300),
            Value::Float(1e300),
            nan,
            inf,
            Value::Float(f64::NEG_INFINITY),
            Value::Float(f64::MAX),
            Value::Float(-1.0),
            Value::Integer(i64::MAX),
        ],
        Kind::Integer => vec![
            Value::Integer(0),
            Value::Integer(1),
            Value::Integer(-1),
            Value::Integer(i64::from(u32::MAX)),
            Value::Integer(i64::MAX),
            Value::Integer(i64::MIN),
            nan,
            inf,
        ],
        Kind::Size => vec![
            Value::Integer(0),
            Value::Integer(1),
            Value::Integer(-1),
            Value::Integer(i64::MAX),
            s("18446744073709551615B"),
            s("16777216TiB"),
            nan,
        ],
    }
}

/// `path` such as `load.phases[2].steps`, as steps into the document.
fn set(doc: &mut Value, path: &str, value: Value) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut here = doc;
    for (i, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (
                name,
                Some(rest.trim_end_matches(']').parse::<usize>().unwrap()),
            ),
            None => (*part, None),
        };
        let table = here.as_table_mut().unwrap();
        let last = i + 1 == parts.len();
        if last && index.is_none() {
            table.insert(name.into(), value);
            return;
        }
        let entry = table
            .entry(name)
            .or_insert_with(|| Value::Table(Default::default()));
        here = match index {
            Some(k) => {
                let slot = &mut entry.as_array_mut().unwrap()[k];
                if last {
                    *slot = value;
                    return;
                }
                slot
            }
            None => entry,
        };
    }
}

fn table_of(key: &str) -> &str {
    key.split(['.', '[']).next().unwrap_or(key)
}

/// Rejected with a key of the same table, or valid and rehearsed.
fn check(base: &str, changes: &[(&str, Value)]) {
    let mut doc: Value = toml::from_str(base).unwrap();
    for (key, value) in changes {
        set(&mut doc, key, value.clone());
    }
    let text = toml::to_string(&doc).unwrap();
    let parsed = catch_unwind(|| harness::scenario::parse(&text, Path::new("x.toml")));
    let parsed = parsed.unwrap_or_else(|_| panic!("validation panicked on {changes:?}"));
    match parsed {
        Err(e) => {
            assert!(!e.message.is_empty());
            assert!(
                changes
                    .iter()
                    .any(|(key, _)| table_of(&e.key) == table_of(key)),
                "{changes:?} rejected under another key: {e}"
            );
        }
        Ok(s) => {
            let rehearsed = catch_unwind(AssertUnwindSafe(|| harness::rehearsal::rehearse(&s, 7)));
            assert!(rehearsed.is_ok(), "{changes:?} validated, then panicked");
        }
    }
}

fn every_key() -> Vec<(&'static str, &'static str, Kind)> {
    let mut keys = Vec::new();
    for &(key, kind) in COMMON {
        keys.push((CONSTANT, key, kind));
        keys.push((PHASED, key, kind));
    }
    keys.extend(CONSTANT_ONLY.iter().map(|&(k, kind)| (CONSTANT, k, kind)));
    keys.extend(PHASED_ONLY.iter().map(|&(k, kind)| (PHASED, k, kind)));
    keys
}

#[test]
fn every_numeric_key_takes_every_extreme_without_a_panic() {
    // Quiet: the default hook would print every caught panic.
    let mut cases = 0;
    for (base, key, kind) in every_key() {
        for value in extremes(kind) {
            check(base, &[(key, value)]);
            cases += 1;
        }
    }
    assert!(cases > 700, "{cases}");
}

fn any_value(kind: Kind) -> BoxedStrategy<Value> {
    let special = proptest::sample::select(extremes(kind));
    let ordinary = match kind {
        Kind::Duration => (0u64..10_000_000_000)
            .prop_map(|ms| Value::String(format!("{ms}ms")))
            .boxed(),
        Kind::Float => proptest::num::f64::ANY.prop_map(Value::Float).boxed(),
        Kind::Integer | Kind::Size => any::<i64>().prop_map(Value::Integer).boxed(),
    };
    prop_oneof![special, ordinary].boxed()
}

fn any_change(keys: &[(&'static str, Kind)]) -> BoxedStrategy<(&'static str, Value)> {
    proptest::sample::select(keys.to_vec())
        .prop_flat_map(|(key, kind)| any_value(kind).prop_map(move |v| (key, v)))
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Several keys at once, where one value's range depends on another's
    /// (processing_timeout within ack_wait, phases that sum past a year).
    #[test]
    fn extremes_in_several_keys_at_once(
        constant in proptest::collection::vec(any_change(&[COMMON, CONSTANT_ONLY].concat()), 1..4),
        phased in proptest::collection::vec(any_change(&[COMMON, PHASED_ONLY].concat()), 1..4),
    ) {
        check(CONSTANT, &constant);
        check(PHASED, &phased);
    }
}

#[test]
fn validate_goes_on_past_an_extreme_file() {
    use common::cli::{harness, text, write};
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "a.toml",
        "[load]\nrate = 1\nduration = \"1s\"\n",
    );
    let bad = write(
        dir.path(),
        "bad.toml",
        "[load]\n[[load.phases]]\nkind = \"constant\"\nrate = 1\nduration = \"400000000000y\"\n\
         [[load.phases]]\nkind = \"constant\"\nrate = 1\nduration = \"400000000000y\"\n",
    );
    let also_good = write(
        dir.path(),
        "c.toml",
        "[load]\nrate = 1\nduration = \"2s\"\n",
    );
    let output = harness()
        .arg("validate")
        .args([&good, &bad, &also_good])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.matches(": ok").count(), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("load.phases[0].duration"),
        "{stderr}"
    );
}

/// The largest or smallest value each range allows, together, for a short
/// run: nothing panics, the books balance, and nothing is switched off.
const ACCEPTED_EXTREMES: &str = r#"
[target]
ping_interval = "100ms"
[stream]
name = "EXTREMES"
subjects = ["extremes.>"]
storage = "memory"
[load]
subject = "extremes.events"
rate = 20
duration = "2s"
[load.garbage]
rate = 1000.0
[publish]
timeout = "1h"
max_retries = 100
[publish.backoff]
initial = "1h"
max = "1h"
multiplier = 100.0
jitter = 1.0
[consumer]
ack_wait = "1day"
max_deliver = 2
processing_timeout = "100ms"
nak_delay = "0s"
dead_letter_subject = "extremes_dlq.events"
dead_letter_stream = "EXTREMES_DLQ"
[consumer.processing]
distribution = "exponential"
mean = "1day"
[drain]
timeout = "7days"
interrupt_timeout = "1h"
[criteria]
abort_grace = "366days"
[[faults]]
at = "1s"
kind = "consumer_slow"
factor = 1000.0
duration = "366days"
[[faults]]
at = "366days"
kind = "consumer_stall"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accepted_extremes_run() {
    let server = common::NatsServer::start().await;
    let config = common::run_config(ACCEPTED_EXTREMES, &server, "extremes");
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        harness::run::run(config, harness::run::Signals::default()),
    )
    .await
    .expect("the run ends by itself")
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.panics.is_empty(), "{:?}", report.panics);
    let c = &report.counts;
    assert_eq!(c.scheduled, 40);
    assert!(c.invariants_hold(), "{:?}", c.invariants);
    assert_eq!((c.lost, c.pending), (0, 0), "{c:?}");
    assert_eq!(c.processed + c.dead_lettered, 40, "{c:?}");
    // Sent one at a time with its ack awaited, garbage reaches its highest
    // rate only on a quiet machine; what matters is that it runs at all
    // (a zero period used to panic the task, and the run passed with none).
    assert!(
        report.garbage_sent >= 10,
        "garbage at its highest rate: {}",
        report.garbage_sent
    );
    assert!(c.unexpected >= report.garbage_sent, "{c:?}");
    let warnings = report.warnings.join("\n");
    assert!(warnings.contains("never started"), "{warnings}");
}
