//! Faults on the network between the clients under test and the
//! server(s), through the harness's proxy: latency, bandwidth, blackhole
//! and reset, each one way or both.

use std::time::Duration;

use crate::scenario::bounds::{count, duration, HOUR, MS};
use crate::scenario::{require, Fault, Invalid};
use crate::target::proxy::{Direction, Proxy};

/// What happens to the bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NetworkFault {
    /// Every chunk held for `delay ± jitter`.
    Latency { delay: Duration, jitter: Duration },
    /// Each connection limited to this many bytes per second.
    Bandwidth { bytes_per_sec: u64 },
    /// Connections stay open, every byte is dropped; at the end the
    /// connections that lost bytes are reset.
    Blackhole,
    /// Every open connection is reset, and new ones are reset on arrival,
    /// for the fault's duration.
    Reset,
}

/// The kinds of this module, as scenarios name them.
pub const KINDS: &[&str] = &["latency", "bandwidth", "blackhole", "reset"];

impl NetworkFault {
    pub fn name(self) -> &'static str {
        match self {
            NetworkFault::Latency { .. } => "latency",
            NetworkFault::Bandwidth { .. } => "bandwidth",
            NetworkFault::Blackhole => "blackhole",
            NetworkFault::Reset => "reset",
        }
    }

    /// The fault `spec` describes, if its kind is one of this module's,
    /// with its settings checked.
    pub fn plan(spec: &Fault, key: &str) -> Option<Result<(Direction, Self), Invalid>> {
        let fault = match spec.kind.as_str() {
            "latency" => Ok(NetworkFault::Latency {
                delay: spec.delay,
                jitter: spec.jitter,
            }),
            "bandwidth" => match spec.bandwidth {
                Some(bytes) => Ok(NetworkFault::Bandwidth {
                    bytes_per_sec: bytes.0,
                }),
                None => Err(Invalid {
                    key: format!("{key}.bandwidth"),
                    message: "a bandwidth fault needs `bandwidth`, in bytes per second, such as \"64KiB\"".into(),
                }),
            },
            "blackhole" => Ok(NetworkFault::Blackhole),
            "reset" => Ok(NetworkFault::Reset),
            _ => return None,
        };
        Some(fault.and_then(|fault| {
            fault.check(key)?;
            require(!spec.leader, &format!("{key}.leader"), || {
                "network faults act on the connections to every server; `leader` is for kill, restart and pause".into()
            })?;
            Ok((spec.direction, fault))
        }))
    }

    fn check(self, key: &str) -> Result<(), Invalid> {
        match self {
            NetworkFault::Latency { delay, jitter } => {
                duration(&format!("{key}.delay"), delay, MS, HOUR)?;
                duration(&format!("{key}.jitter"), jitter, Duration::ZERO, HOUR)
            }
            NetworkFault::Bandwidth { bytes_per_sec } => {
                count(&format!("{key}.bandwidth"), bytes_per_sec, 1, 100 << 30)
            }
            NetworkFault::Blackhole | NetworkFault::Reset => Ok(()),
        }
    }

    pub fn inject(self, proxy: &Proxy, direction: Direction) {
        match self {
            NetworkFault::Latency { delay, jitter } => {
                proxy.set_latency(direction, Some((delay, jitter)))
            }
            NetworkFault::Bandwidth { bytes_per_sec } => {
                proxy.set_bandwidth(direction, Some(bytes_per_sec))
            }
            NetworkFault::Blackhole => proxy.set_blackhole(direction, true),
            NetworkFault::Reset => proxy.reset_all(true),
        }
    }

    pub fn recover(self, proxy: &Proxy, direction: Direction) {
        match self {
            NetworkFault::Latency { .. } => proxy.set_latency(direction, None),
            NetworkFault::Bandwidth { .. } => proxy.set_bandwidth(direction, None),
            NetworkFault::Blackhole => proxy.set_blackhole(direction, false),
            NetworkFault::Reset => proxy.reset_all(false),
        }
    }
}
