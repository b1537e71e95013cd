//! Faults on the consumer under test: a crash, a stall and slowness.

use crate::consumer::UnderTest;
use crate::scenario::bounds::number;
use crate::scenario::{require, ConsumerMode, Fault, Invalid, Scenario};

/// What happens to the consumer under test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConsumerFault {
    /// It crashes: every in-flight delivery is dropped unacknowledged, and
    /// it starts again at the end of the fault.
    Crash,
    /// It stops reading deliveries.
    Stall,
    /// Processing takes this many times longer.
    Slow { factor: f64 },
}

/// The kinds of this module, as scenarios name them.
pub const KINDS: &[&str] = &["consumer_crash", "consumer_stall", "consumer_slow"];

impl ConsumerFault {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerFault::Crash => "consumer_crash",
            ConsumerFault::Stall => "consumer_stall",
            ConsumerFault::Slow { .. } => "consumer_slow",
        }
    }

    /// The fault `spec` describes, if its kind is one of this module's,
    /// with its settings checked.
    pub fn plan(spec: &Fault, key: &str, s: &Scenario) -> Option<Result<Self, Invalid>> {
        let fault = match spec.kind.as_str() {
            "consumer_crash" => Ok(ConsumerFault::Crash),
            "consumer_stall" => Ok(ConsumerFault::Stall),
            "consumer_slow" => number(
                &format!("{key}.factor"),
                spec.factor,
                1.0,
                1_000.0,
                " times",
            )
            .map(|()| ConsumerFault::Slow {
                factor: spec.factor,
            }),
            _ => return None,
        };
        Some(fault.and_then(|fault| {
            require(
                s.consumer.mode == ConsumerMode::Simulated,
                &format!("{key}.kind"),
                || {
                    format!(
                        "`{}` acts on the harness's own consumer, and `consumer.mode` is \
                         `external`: the harness cannot crash, stall or slow a service it \
                         does not run",
                        fault.name()
                    )
                },
            )?;
            Ok(fault)
        }))
    }

    pub fn inject(self, consumer: &UnderTest) {
        match self {
            ConsumerFault::Crash => consumer.crash(),
            ConsumerFault::Stall => consumer.set_stalled(true),
            ConsumerFault::Slow { factor } => consumer.set_slow_factor(factor),
        }
    }

    pub fn recover(self, consumer: &UnderTest) {
        match self {
            ConsumerFault::Crash => consumer.revive(),
            ConsumerFault::Stall => consumer.set_stalled(false),
            ConsumerFault::Slow { .. } => consumer.set_slow_factor(1.0),
        }
    }
}
