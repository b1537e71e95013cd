//! Faults on the user's service, when the harness runs it as the external
//! consumer under test (`[consumer.service]`): killed, restarted and paused.

use crate::consumer::service::Service;
use crate::scenario::{require, ConsumerMode, Fault, Invalid, Scenario};

/// What happens to the service's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceFault {
    /// SIGKILL: what it holds is never acked; it is started again at the
    /// end of the fault, and waited for until ready.
    Kill,
    /// SIGTERM (a graceful stop, SIGKILL after `stop_timeout`), started
    /// again at the end of the fault.
    Restart,
    /// SIGSTOP for the fault's duration, then SIGCONT.
    Pause,
}

/// The kinds of this module, as scenarios name them.
pub const KINDS: &[&str] = &["service_kill", "service_restart", "service_pause"];

impl ServiceFault {
    pub fn name(self) -> &'static str {
        match self {
            ServiceFault::Kill => "service_kill",
            ServiceFault::Restart => "service_restart",
            ServiceFault::Pause => "service_pause",
        }
    }

    /// The fault `spec` describes, if its kind is one of this module's:
    /// the scenario must have the harness run the service.
    pub fn plan(spec: &Fault, key: &str, s: &Scenario) -> Option<Result<Self, Invalid>> {
        let fault = match spec.kind.as_str() {
            "service_kill" => ServiceFault::Kill,
            "service_restart" => ServiceFault::Restart,
            "service_pause" => ServiceFault::Pause,
            _ => return None,
        };
        let runs_it = s.consumer.mode == ConsumerMode::External && s.consumer.service.is_some();
        Some(
            require(runs_it, &format!("{key}.kind"), || {
                format!(
                    "`{}` acts on the service the harness runs: set consumer.mode = \"external\" \
                     and give its [consumer.service] command",
                    fault.name()
                )
            })
            .map(|()| fault),
        )
    }

    pub async fn inject(self, service: &Service) -> Result<(), String> {
        match self {
            ServiceFault::Kill => service.kill().await,
            ServiceFault::Restart => service.stop().await,
            ServiceFault::Pause => service.pause(true).await,
        }
    }

    pub async fn recover(self, service: &Service) -> Result<(), String> {
        match self {
            ServiceFault::Kill | ServiceFault::Restart => service.start().await,
            ServiceFault::Pause => service.pause(false).await,
        }
    }
}
