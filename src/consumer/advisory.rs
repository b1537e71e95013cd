//! The MAX_DELIVERIES advisory: a message that used up max_deliver is never
//! delivered again, so the server's advisory is the only word of it. Each
//! one is fetched from the stream by sequence and dead-lettered.

use std::sync::Arc;

use async_nats::jetstream::stream::Stream;
use async_nats::Client;
use futures::StreamExt;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::dead_letter::Original;
use super::DeadLetters;
use crate::event;
use crate::ledger::{Ledger, Live};

#[derive(Debug, Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: i64,
}

pub fn subject(stream: &str, durable: &str) -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{durable}")
}

/// Subscribes first (so no advisory is missed), then watches until `stop`.
pub async fn watch(
    client: &Client,
    stream: Stream,
    durable: &str,
    ledger: Arc<Ledger>,
    dead_letters: Arc<DeadLetters>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let subject = subject(&stream.cached_info().config.name, durable);
    let mut advisories = client.subscribe(subject).await.map_err(|e| e.to_string())?;
    Ok(tokio::spawn(async move {
        loop {
            let advisory = tokio::select! {
                next = advisories.next() => match next { Some(m) => m, None => return },
                _ = stop.cancelled() => return,
            };
            let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(&advisory.payload) else {
                tracing::warn!("unreadable MAX_DELIVERIES advisory");
                continue;
            };
            exhausted(&stream, &ledger, &dead_letters, advisory).await;
        }
    }))
}

async fn exhausted(
    stream: &Stream,
    ledger: &Ledger,
    dead_letters: &DeadLetters,
    advisory: MaxDeliveries,
) {
    let seq = advisory.stream_seq;
    let message = match stream.get_raw_message(seq).await {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(stream_seq = seq, error = %e, "exhausted message no longer readable");
            return;
        }
    };
    // As for a delivery: only a copy signed by this run is one of its events;
    // a forged one that ran out of deliveries is dead-lettered as itself.
    let event = event::event_id(Some(&message.headers))
        .and_then(|id| ledger.parse_event_id(id))
        .filter(|&s| ledger.is_scheduled(s))
        .filter(|_| ledger.signer.verify(Some(&message.headers)));
    let original = Original {
        subject: message.subject.as_str(),
        headers: Some(&message.headers),
        payload: message.payload.clone(),
        stream_seq: seq,
        deliveries: advisory.deliveries,
    };
    if event.is_some() {
        Live::add(&ledger.live.exhausted);
    }
    let stored = dead_letters.store(original, event, "max_deliveries").await;
    match stored {
        Ok(()) => tracing::info!(
            event_id = event.map(|s| ledger.event_id(s)).unwrap_or_default(),
            stream_seq = seq,
            "max deliveries reached; dead-lettered"
        ),
        Err(e) => {
            tracing::warn!(stream_seq = seq, error = %e, "exhausted message not dead-lettered")
        }
    }
}
