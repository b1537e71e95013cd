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
    /// The machine refused a thread or a descriptor the run needs.
    #[error("cannot start {what}: {source}")]
    System {
        what: &'static str,
        source: std::io::Error,
    },
    /// The external consumer's service could not be started, or was not
    /// ready in time.
    #[error("the consumer under test: {0}")]
    Service(String),
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
            HarnessError::Target(_)
            | HarnessError::Provision(_)
            | HarnessError::System { .. }
            | HarnessError::Service(_) => exit::INFRASTRUCTURE,
            HarnessError::Interrupted(_) => exit::INTERRUPTED,
        }
    }
}
