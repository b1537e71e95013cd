//! A consumer with faults to order: the reference service for checking
//! that the harness reports exactly what an external consumer did. Every
//! fault is off unless its variable is set; the nth message counts from 1,
//! redeliveries included.
//!
//! - `FAULTY_DROP_EVERY=N`: every Nth message is neither acked nor NAKed,
//!   so the server delivers it again after ack_wait;
//! - `FAULTY_FAIL_EVERY=N`: every Nth is dead-lettered, then TERMed;
//! - `FAULTY_TWICE_EVERY=N`: every Nth has its result published twice;
//! - `FAULTY_CORRUPT_EVERY=N`: every Nth has a result with a wrong hash;
//! - `FAULTY_CRASH_AT=N`: it exits with code 1 at the Nth message;
//! - `FAULTY_LOSE_AT=N`: it acks the Nth message, then exits with code 1
//!   before publishing its result (an event lost by the service);
//! - `FAULTY_HANG_AT=N`: it stops reading at the Nth message, and stays up.
//!
//! Otherwise it is the audit consumer: the same settings, results and
//! dead letters (see examples/audit_consumer.rs).

mod support;

use support::{number, Handling, Settings};

struct Faults {
    drop_every: u64,
    fail_every: u64,
    twice_every: u64,
    corrupt_every: u64,
    crash_at: u64,
    lose_at: u64,
    hang_at: u64,
}

fn every(n: u64, period: u64) -> bool {
    period > 0 && n.is_multiple_of(period)
}

impl Faults {
    fn from_env() -> Result<Faults, String> {
        Ok(Faults {
            drop_every: number("FAULTY_DROP_EVERY")?,
            fail_every: number("FAULTY_FAIL_EVERY")?,
            twice_every: number("FAULTY_TWICE_EVERY")?,
            corrupt_every: number("FAULTY_CORRUPT_EVERY")?,
            crash_at: number("FAULTY_CRASH_AT")?,
            lose_at: number("FAULTY_LOSE_AT")?,
            hang_at: number("FAULTY_HANG_AT")?,
        })
    }

    fn handling(&self, n: u64) -> Handling {
        if self.crash_at > 0 && n == self.crash_at {
            Handling::Crash
        } else if self.lose_at > 0 && n == self.lose_at {
            Handling::AckThenCrash
        } else if self.hang_at > 0 && n == self.hang_at {
            Handling::Hang
        } else if every(n, self.drop_every) {
            Handling::Drop
        } else if every(n, self.fail_every) {
            Handling::DeadLetter
        } else {
            Handling::Ack {
                results: if every(n, self.twice_every) { 2 } else { 1 },
                corrupt: every(n, self.corrupt_every),
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let served = match (Settings::from_env(), Faults::from_env()) {
        (Ok(settings), Ok(faults)) => {
            support::serve("faulty_consumer", settings, |n| faults.handling(n)).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    if let Err(e) = served {
        eprintln!("faulty_consumer: {e}");
        std::process::exit(1);
    }
}
