//! Checks a parsed scenario for values that parse but cannot work: rates,
//! ratios, names, subjects, and settings that contradict each other.

use std::time::Duration;

use super::{ConsumerMode, Distribution, PayloadKind, Phase, Scenario};

/// The first invalid value found, by its dotted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

pub(crate) type Check = Result<(), Invalid>;

pub(crate) fn require(ok: bool, key: &str, message: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(Invalid {
            key: key.to_string(),
            message: message(),
        })
    }
}

mod target;

use target::target;

/// Every check: first the range of every number ([`bounds`], so that
/// nothing below can overflow), then presence, names and what the numbers
/// say together, in file order: target, stream, load, publish, consumer,
/// criteria, faults.
pub fn validate(s: &Scenario) -> Check {
    bounds::check(s)?;
    target(s)?;
    stream(s)?;
    load(s)?;
    publish(s)?;
    consumer(s)?;
    // The criteria and the faults, each compiled as the run will use them.
    crate::plan::Plan::compile(s).map(drop)
}

/// A NATS stream or consumer name: no whitespace, dots, wildcards or separators.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

fn valid_subject(subject: &str, wildcards: bool) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    !subject.is_empty()
        && tokens.iter().enumerate().all(|(i, t)| {
            !t.is_empty()
                && !t.chars().any(char::is_whitespace)
                && (wildcards && (*t == "*" || (*t == ">" && i == tokens.len() - 1))
                    || !t.contains(['*', '>']))
        })
}

/// NATS subject matching: `*` matches one token, `>` one or more at the end.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for p in pattern.split('.') {
        match (p, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

fn stream(s: &Scenario) -> Check {
    let st = &s.stream;
    require(valid_name(&st.name), "stream.name", || {
        format!(
            "`{}` is not a stream name: no spaces, dots, `*`, `>` or slashes",
            st.name
        )
    })?;
    require(!st.subjects.is_empty(), "stream.subjects", || {
        "list at least one subject".into()
    })?;
    for (i, subject) in st.subjects.iter().enumerate() {
        require(
            valid_subject(subject, true),
            &format!("stream.subjects[{i}]"),
            || {
                format!("`{subject}` is not a subject: dot-separated tokens, `*` for one token, `>` only last")
            },
        )?;
    }
    require((1..=5).contains(&st.replicas), "stream.replicas", || {
        format!("{}: use 1 to 5", st.replicas)
    })?;
    require(
        st.max_messages == -1 || st.max_messages > 0,
        "stream.max_messages",
        || "use -1 for no limit, or a positive count".into(),
    )?;
    require(
        st.max_age.is_zero() || st.duplicate_window <= st.max_age,
        "stream.duplicate_window",
        || {
            format!(
                "{} is longer than max_age {}: the server refuses a duplicate window that outlives the messages",
                humantime::format_duration(st.duplicate_window),
                humantime::format_duration(st.max_age)
            )
        },
    )
}

fn load(s: &Scenario) -> Check {
    let l = &s.load;
    require(valid_subject(&l.subject, false), "load.subject", || {
        format!(
            "`{}` is not a subject to publish to (no wildcards, no empty tokens)",
            l.subject
        )
    })?;
    require(
        s.stream
            .subjects
            .iter()
            .any(|p| subject_matches(p, &l.subject)),
        "load.subject",
        || {
            format!(
                "`{}` is not captured by stream.subjects {:?}",
                l.subject, s.stream.subjects
            )
        },
    )?;
    if l.phases.is_empty() {
        require(l.rate.is_some(), "load.rate", || {
            "set a rate in events/s (with duration), or list load.phases".into()
        })?;
        require(l.duration.is_some(), "load.duration", || {
            "set how long the load runs, e.g. \"30s\" or \"5m\"".into()
        })?;
    } else {
        require(l.rate.is_none(), "load.rate", || {
            "give either rate (with duration) or phases, not both".into()
        })?;
        for (i, phase) in l.phases.iter().enumerate() {
            self::phase(phase, &format!("load.phases[{i}]"))?;
        }
        let total: Duration = l.phases.iter().map(Phase::duration).sum();
        if let Some(duration) = l.duration {
            require(duration == total, "load.duration", || {
                format!(
                    "{} differs from the phases' total {}; leave it out",
                    humantime::format_duration(duration),
                    humantime::format_duration(total)
                )
            })?;
        }
    }
    if let Some(garbage) = &l.garbage {
        require(!garbage.kinds.is_empty(), "load.garbage.kinds", || {
            "list at least one kind".into()
        })?;
    }
    let size = l.payload.size.0;
    require((1..=8 << 20).contains(&size), "load.payload.size", || {
        format!("{size} bytes: use 1B to 8MiB")
    })?;
    require(
        l.payload.kind != PayloadKind::Json || size >= 128,
        "load.payload.size",
        || {
            format!("{size} bytes is too small for a JSON event (at least 128B); use kind = \"random\" for tiny payloads")
        },
    )
}

/// Each rate is in range ([`bounds`]); a ramp or step must still send.
fn phase(phase: &Phase, key: &str) -> Check {
    match *phase {
        Phase::Constant { .. } => Ok(()),
        Phase::Ramp { from, to, .. } | Phase::Step { from, to, .. } => {
            require(from > 0.0 || to > 0.0, &format!("{key}.to"), || {
                "a ramp or step from 0 to 0 sends nothing".into()
            })
        }
    }
}

fn publish(s: &Scenario) -> Check {
    let p = &s.publish;
    require(
        p.backoff.max >= p.backoff.initial,
        "publish.backoff.max",
        || "must be at least backoff.initial".into(),
    )
}

fn consumer(s: &Scenario) -> Check {
    let c = &s.consumer;
    if let Some(filter) = &c.filter_subject {
        require(
            valid_subject(filter, true),
            "consumer.filter_subject",
            || {
                format!("`{filter}` is not a subject: dot-separated tokens, `*` for one token, `>` only last")
            },
        )?;
        require(
            subject_matches(filter, &s.load.subject),
            "consumer.filter_subject",
            || {
                format!(
                    "`{filter}` does not match load.subject `{}`: the consumer would never see the load",
                    s.load.subject
                )
            },
        )?;
    }
    if let Some(output) = &c.output {
        require(c.mode == ConsumerMode::External, "consumer.output", || {
            "results come from a service: set consumer.mode = \"external\"".into()
        })?;
        require(
            valid_subject(&output.subject, false),
            "consumer.output.subject",
            || format!("`{}` is not a subject to publish to", output.subject),
        )?;
        require(
            !s.stream
                .subjects
                .iter()
                .any(|p| subject_matches(p, &output.subject))
                && output.subject != c.dead_letter_subject,
            "consumer.output.subject",
            || {
                format!(
                    "`{}` is captured by stream.subjects or is the dead-letter subject: \
                     results must go elsewhere",
                    output.subject
                )
            },
        )?;
    }
    if let Some(service) = &c.service {
        require(c.mode == ConsumerMode::External, "consumer.service", || {
            "a service is the external consumer under test: set consumer.mode = \"external\"".into()
        })?;
        require(
            service
                .command
                .first()
                .is_some_and(|p| !p.trim().is_empty()),
            "consumer.service.command",
            || "name the program to run, such as [\"./audit-service\", \"--flag\"]".into(),
        )?;
        require(
            !(service.ready_log.is_some() && service.ready_port.is_some()),
            "consumer.service.ready_port",
            || {
                "give one readiness check: ready_log or ready_port (or neither, to wait for its first pull)".into()
            },
        )?;
    }
    require(valid_name(&c.durable), "consumer.durable", || {
        format!(
            "`{}` is not a consumer name: no spaces, dots, `*`, `>`",
            c.durable
        )
    })?;
    require(
        valid_name(&c.dead_letter_stream),
        "consumer.dead_letter_stream",
        || format!("`{}` is not a stream name", c.dead_letter_stream),
    )?;
    require(
        c.dead_letter_stream != s.stream.name,
        "consumer.dead_letter_stream",
        || "must differ from stream.name".into(),
    )?;
    require(
        valid_subject(&c.dead_letter_subject, false),
        "consumer.dead_letter_subject",
        || format!("`{}` is not a subject to publish to", c.dead_letter_subject),
    )?;
    require(
        !s.stream
            .subjects
            .iter()
            .any(|p| subject_matches(p, &c.dead_letter_subject)),
        "consumer.dead_letter_subject",
        || {
            format!("`{}` is captured by stream.subjects: dead letters would loop back into the stream under test", c.dead_letter_subject)
        },
    )?;
    require(
        c.max_deliver >= 1 || c.max_deliver == -1,
        "consumer.max_deliver",
        || "use -1 for unlimited, or 1 or more".into(),
    )?;
    require(
        c.max_deliver == -1 || c.backoff.len() < c.max_deliver as usize,
        "consumer.backoff",
        || "JetStream needs max_deliver above the number of backoff steps".into(),
    )?;
    require(
        c.max_ack_pending >= 1 || c.max_ack_pending == -1,
        "consumer.max_ack_pending",
        || "use -1 for unlimited, or 1 or more".into(),
    )?;
    // The harness's own handlers; a service keeps its own timeouts.
    require(
        c.mode == ConsumerMode::External || c.processing_timeout <= c.ack_wait,
        "consumer.processing_timeout",
        || {
            format!(
            "{} is above ack_wait {}: a handler must finish or be NAKed before the server redelivers",
            humantime::format_duration(c.processing_timeout),
            humantime::format_duration(c.ack_wait)
        )
        },
    )?;
    require(
        c.timeout_ratio + c.error_ratio <= 1.0,
        "consumer.error_ratio",
        || "timeout_ratio + error_ratio must not exceed 1".into(),
    )?;
    let p = &c.processing;
    match p.distribution {
        Distribution::Uniform => require(
            p.max >= p.min && p.max > Duration::ZERO,
            "consumer.processing.max",
            || "a uniform distribution needs max above 0 and at least min".into(),
        ),
        Distribution::Normal | Distribution::Exponential => {
            require(p.mean > Duration::ZERO, "consumer.processing.mean", || {
                "must be above 0s for this distribution".into()
            })
        }
        Distribution::Constant => Ok(()),
    }
}

pub(crate) mod bounds;
#[cfg(test)]
mod tests;
