//! Provisioning: the stream under test, the dead-letter stream and the
//! durable pull consumer, created or checked against the scenario.

/// Provisioning failures. All of them exit 3.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "stream `{stream}` exists with other settings ({differences}); \
         set `stream.recreate = true` to delete and recreate it"
    )]
    Conflict { stream: String, differences: String },
    #[error("cannot provision {what}: {message}")]
    Api { what: String, message: String },
}
