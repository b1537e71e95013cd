//! A consumer with faults to order: the reference service for checking
//! that the harness reports exactly what an external consumer did. Every
//! fault is off unless its variable is set. The periodic ones pick messages
//! by stream sequence, so what they do does not hang on the order of
//! deliveries; the one-off ones count messages as this process receives
//! them, from 1, redeliveries included.
//!
//! - `FAULTY_DROP_EVERY=N`: a message whose stream sequence is a multiple
//!   of N is neither acked nor NAKed at its first delivery, so the server
//!   delivers it again after ack_wait, and it is handled then;
//! - `FAULTY_NEVER_EVERY=N`: such a message is never answered, at any
//!   delivery, until its deliveries run out;
//! - `FAULTY_FAIL_EVERY=N`: such a message is dead-lettered, then TERMed;
//! - `FAULTY_TWICE_EVERY=N`: such a message has its result published twice;
//! - `FAULTY_CORRUPT_EVERY=N`: such a message's first result carries a
//!   wrong payload hash;
//! - `FAULTY_CRASH_AT=N`: it exits with code 1 at the Nth message;
//! - `FAULTY_LOSE_AT=N`: it acks the Nth message, then exits with code 1
//!   before publishing its result (an event lost by the service);
//! - `FAULTY_HANG_AT=N`: it stops reading at the Nth message, and stays up.
//!
//! Otherwise it is the audit consumer: the same settings, results and
//! dead letters (see examples/audit_consumer.rs).

mod support;

use support::{number, Delivery, Handling, Settings};

struct Faults {
    drop_every: u64,
    never_every: u64,
    fail_every: u64,
    twice_every: u64,
    corrupt_every: u64,
    crash_at: u64,
    lose_at: u64,
    hang_at: u64,
}

/// `value` is a multiple of a period that is set.
fn every(value: u64, period: u64) -> bool {
    period > 0 && value.is_multiple_of(period)
}

impl Faults {
    fn from_env() -> Result<Faults, String> {
        Ok(Faults {
            drop_every: number("FAULTY_DROP_EVERY")?,
            never_every: number("FAULTY_NEVER_EVERY")?,
            fail_every: number("FAULTY_FAIL_EVERY")?,
            twice_every: number("FAULTY_TWICE_EVERY")?,
            corrupt_every: number("FAULTY_CORRUPT_EVERY")?,
            crash_at: number("FAULTY_CRASH_AT")?,
            lose_at: number("FAULTY_LOSE_AT")?,
            hang_at: number("FAULTY_HANG_AT")?,
        })
    }

    fn handling(&self, d: Delivery) -> Handling {
        let seq = d.stream_sequence;
        let at = |n: u64| n > 0 && d.n == n;
        if at(self.crash_at) {
            Handling::Crash
        } else if at(self.lose_at) {
            Handling::AckThenCrash
        } else if at(self.hang_at) {
            Handling::Hang
        } else if every(seq, self.never_every) || (every(seq, self.drop_every) && d.delivered == 1)
        {
            Handling::Drop
        } else if every(seq, self.fail_every) {
            Handling::DeadLetter
        } else {
            Handling::Ack {
                results: if every(seq, self.twice_every) { 2 } else { 1 },
                corrupt: every(seq, self.corrupt_every),
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let served = match (Settings::from_env(), Faults::from_env()) {
        (Ok(settings), Ok(faults)) => {
            support::serve("faulty_consumer", settings, |d| faults.handling(d)).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    if let Err(e) = served {
        eprintln!("faulty_consumer: {e}");
        std::process::exit(1);
    }
}
