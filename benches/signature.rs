//! What signing events costs: the publisher builds an event's headers
//! (id, intended time, signature) and the consumer checks the signature,
//! against building the same headers unsigned, in one run, alternating.
//!
//! `cargo bench --bench signature`. SIGNATURE_EVENTS (1,000,000) per round,
//! SIGNATURE_ROUNDS (5) rounds of each; the median ns per event is printed.

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use async_nats::HeaderMap;
use harness::event::{self, Signer};

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The same headers without the signature: id and intended time.
fn unsigned(event_id: String, intended: SystemTime) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(event::names::MSG_ID, event_id);
    headers.insert(
        event::names::INTENDED_AT,
        event::unix_nanos(intended).to_string(),
    );
    headers
}

/// ns per event of `work` over `events` events.
fn time(events: u64, mut work: impl FnMut(u64)) -> f64 {
    let started = Instant::now();
    for seq in 0..events {
        work(seq);
    }
    started.elapsed().as_nanos() as f64 / events as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let events = knob("SIGNATURE_EVENTS", 1_000_000);
    let rounds = knob("SIGNATURE_ROUNDS", 5);
    let signer = Signer::random();
    let now = SystemTime::now();
    let intended = event::unix_nanos(now).to_string();
    let signed_headers = event::headers("r0123abcd-123456".into(), now, &signer);
    let (mut plain, mut signed, mut verify, mut sign) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        plain.push(time(events, |seq| {
            let id = format!("r0123abcd-{seq}");
            black_box(unsigned(id, now));
        }));
        signed.push(time(events, |seq| {
            let id = format!("r0123abcd-{seq}");
            black_box(event::headers(id, now, &signer));
        }));
        sign.push(time(events, |_| {
            black_box(signer.sign(black_box("r0123abcd-123456"), &intended));
        }));
        verify.push(time(events, |_| {
            assert!(signer.verify(Some(black_box(&signed_headers))));
        }));
    }
    let (plain, signed) = (median(plain), median(signed));
    let (sign, verify) = (median(sign), median(verify));
    println!("events per round: {events}, rounds: {rounds}");
    println!("publisher, unsigned headers:  {plain:>8.0} ns/event");
    println!("publisher, signed headers:    {signed:>8.0} ns/event");
    println!("  of which the signature:     {sign:>8.0} ns/event");
    println!("consumer, verify:             {verify:>8.0} ns/event");
    println!(
        "added per event (both sides): {:>8.0} ns",
        signed - plain + verify
    );
}
