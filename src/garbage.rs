//! Foreign input: garbage published into the load subject from a separate
//! connection while the load runs, so that the consumer under test meets
//! what anything could throw into a subject. Each message carries no event
//! id; the consumer must dead-letter it as poison and count it unexpected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::scenario::{Garbage, GarbageKind};

/// Room left under max_payload for the headers a dead-lettered copy adds.
const HEADER_ROOM: usize = 1024;

fn payload(kind: GarbageKind, max_payload: usize, rng: &mut StdRng) -> Bytes {
    let random = |len: usize, rng: &mut StdRng| {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        Bytes::from(bytes)
    };
    match kind {
        GarbageKind::Random => random(64, rng),
        GarbageKind::Truncated => {
            Bytes::from_static(b"{\"event_id\":\"r0-1\",\"event_type\":\"harn")
        }
        GarbageKind::WrongSchema => Bytes::from_static(b"{\"hello\":\"world\",\"n\":1}"),
        GarbageKind::Empty => Bytes::new(),
        GarbageKind::NearMaxPayload => random(max_payload.saturating_sub(HEADER_ROOM).max(1), rng),
    }
}

/// The time between two garbage messages; never zero, which a timer refuses.
pub fn period(rate: f64) -> Duration {
    crate::clock::secs(1.0 / rate).max(Duration::from_micros(1))
}

/// Publishes garbage at `garbage.rate` until `stop`, counting in `sent`
/// the messages the stream acknowledged.
pub async fn throw(
    client: Client,
    subject: String,
    garbage: Garbage,
    seed: u64,
    sent: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let js = async_nats::jetstream::new(client.clone());
    let max_payload = client.server_info().max_payload;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6761_7262);
    let mut ticker = tokio::time::interval(period(garbage.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for kind in garbage.kinds.iter().cycle() {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => break,
        }
        let body = payload(*kind, max_payload, &mut rng);
        let acked = match js.publish(subject.clone(), body).await {
            Ok(ack) => tokio::time::timeout(Duration::from_secs(10), ack)
                .await
                .is_ok_and(|a| a.is_ok()),
            Err(_) => false,
        };
        if acked {
            sent.fetch_add(1, Ordering::Relaxed);
        } else {
            tracing::warn!(kind = ?kind, "garbage not acknowledged by the stream");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_garbage_to_the_consumer() {
        let mut rng = StdRng::seed_from_u64(1);
        for kind in [
            GarbageKind::Random,
            GarbageKind::Truncated,
            GarbageKind::WrongSchema,
            GarbageKind::Empty,
        ] {
            let body = payload(kind, 1 << 20, &mut rng);
            assert!(
                crate::event::check_payload(crate::scenario::PayloadKind::Json, "r0-1", &body)
                    .is_err(),
                "{kind:?}"
            );
        }
        let big = payload(GarbageKind::NearMaxPayload, 1 << 20, &mut rng);
        assert_eq!(big.len(), (1 << 20) - HEADER_ROOM);
    }
}
