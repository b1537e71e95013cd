//! The errors a user can cause, and the exit code each one ends in.

use crate::provision::ProvisionError;
use crate::scenario::ScenarioError;
use crate::target::TargetError;

/// Exit codes, part of the stable contract (DESIGN.md).
pub mod exit {
    /// Every criterion passed.
    pub const PASSED: i32 = 0;
    /// A criterion failed.
    pub const FAILED: i32 = 1;
    /// Bad usage or an invalid scenario.
    pub const USAGE: i32 = 2;
    /// NATS could not be started, reached or provisioned.
    pub const INFRASTRUCTURE: i32 = 3;
    /// Interrupted; the partial report was written.
    pub const INTERRUPTED: i32 = 130;
}

/// Anything that stops a run before it can reach a verdict.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// Ctrl+C, SIGTERM or SIGHUP before the load began: nothing ran, so
    /// there is no report.
    #[error("interrupted {0}; nothing was run, so there is no report")]
    Interrupted(&'static str),
    /// Every publish would fail with "maximum payload exceeded": said
    /// before the run, not as a 0% run that may still pass.
    #[error(
        "`load.payload.size` {size} B makes messages of up to {message} B with headers, \
         above the server's max_payload of {max_payload} B; lower load.payload.size to at most \
         {fits} B, or raise max_payload in the server's config"
    )]
    PayloadAboveMaxPayload {
        size: u64,
        message: usize,
        max_payload: usize,
        fits: usize,
    },
}

impl HarnessError {
    pub fn exit_code(&self) -> i32 {
        match self {
            HarnessError::Scenario(_)
            | HarnessError::Usage(_)
            | HarnessError::PayloadAboveMaxPayload { .. } => exit::USAGE,
            HarnessError::Target(_) | HarnessError::Provision(_) => exit::INFRASTRUCTURE,
            HarnessError::Interrupted(_) => exit::INTERRUPTED,
        }
    }
}

/// Checks that the scenario's events, and their dead-lettered copies, fit
/// the server's `max_payload` (from its INFO), headers included.
pub fn check_max_payload(
    scenario: &crate::scenario::Scenario,
    run_id: &str,
    max_payload: usize,
) -> Result<(), HarnessError> {
    let payload = &scenario.load.payload;
    let event = crate::event::largest_message(payload, run_id);
    let copy = crate::consumer::largest_copy_headers(scenario, run_id)
        + crate::event::largest_body(payload, run_id);
    let message = event.max(copy);
    if message <= max_payload {
        return Ok(());
    }
    let size = payload.size.0;
    Err(HarnessError::PayloadAboveMaxPayload {
        size,
        message,
        max_payload,
        fits: (size as usize).saturating_sub(message - max_payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ByteSize;

    #[test]
    fn a_payload_above_max_payload_is_a_usage_error_naming_both_sizes() {
        let mut s = crate::scenario::parse(
            "[load]\nrate = 1\nduration = \"1s\"\n[load.payload]\nsize = 8192\n",
            std::path::Path::new("s.toml"),
        )
        .unwrap();
        let e = check_max_payload(&s, "r1", 4096).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        let text = e.to_string();
        assert!(
            text.contains("`load.payload.size` 8192 B") && text.contains("max_payload of 4096 B"),
            "{text}"
        );
        let HarnessError::PayloadAboveMaxPayload { fits, .. } = e else {
            unreachable!()
        };
        s.load.payload.size = ByteSize(fits as u64);
        assert!(check_max_payload(&s, "r1", 4096).is_ok(), "{fits}");
        // The dead-lettered copy's headers are the longer: it decides.
        let event = crate::event::largest_message(&s.load.payload, "r1");
        assert!(event < 4096, "{event}");
        s.load.payload.size = ByteSize(fits as u64 + 1);
        assert!(check_max_payload(&s, "r1", 4096).is_err());
    }
}
