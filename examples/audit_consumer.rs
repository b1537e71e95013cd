//! A well-behaved audit consumer: the reference service for a scenario's
//! `[consumer] mode = "external"`, and the shape a real one can take.
//!
//! It pulls batches from its durable pull consumer and acks each message it
//! handled; with `HARNESS_OUTPUT_SUBJECT` set it first publishes a result
//! that names the event (`Harness-Event-Id`) and the SHA-256 of its payload
//! (`Harness-Payload-Sha256`). A message it cannot handle is copied to the
//! dead-letter subject, carrying the event's id in `Harness-Event-Id`, and
//! TERMed once the copy is stored. SIGTERM or Ctrl+C: it stops pulling,
//! finishes what it holds, and exits 0.
//!
//! Settings, from the environment (what the harness gives a service it
//! runs): `NATS_URL`, `HARNESS_STREAM`, `HARNESS_DURABLE`,
//! `HARNESS_DEAD_LETTER_SUBJECT`, `HARNESS_OUTPUT_SUBJECT` (optional), and
//! `AUDIT_FAIL_EVERY` (optional: every Nth message fails, to show the
//! dead-letter path).

mod support;

use support::{Handling, Settings};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let served = match (Settings::from_env(), support::number("AUDIT_FAIL_EVERY")) {
        (Ok(settings), Ok(fail_every)) => {
            support::serve("audit_consumer", settings, |d| {
                if fail_every > 0 && d.n.is_multiple_of(fail_every) {
                    Handling::DeadLetter
                } else {
                    Handling::Ack {
                        results: 1,
                        corrupt: false,
                    }
                }
            })
            .await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    if let Err(e) = served {
        eprintln!("audit_consumer: {e}");
        std::process::exit(1);
    }
}
