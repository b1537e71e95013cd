//! Dead letters: a copy on the dead-letter subject, its PubAck awaited,
//! then the original TERMed. The copy's `Nats-Msg-Id` is derived from the
//! original's stream sequence, so a message dead-lettered twice (a TERM
//! lost, an advisory racing a worker) is stored once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{AckKind, Context, Message};
use async_nats::HeaderMap;
use bytes::Bytes;

use crate::event;
use crate::ledger::{Ledger, Live};
use crate::scenario::Scenario;

/// The message being dead-lettered, as it was stored.
pub struct Original<'a> {
    pub subject: &'a str,
    pub headers: Option<&'a HeaderMap>,
    pub payload: Bytes,
    pub stream_seq: u64,
    pub deliveries: i64,
}

/// The headers of a dead-lettered copy. `is_event`: the original is a
/// signed event of this run.
fn copy_headers(
    run_id: &str,
    stream: &str,
    original: &Original<'_>,
    reason: &str,
    is_event: bool,
) -> HeaderMap {
    let mut copy = HeaderMap::new();
    // The run in the id: a rerun on a recreated stream numbers its messages
    // from 1 again, and its copies must not be deduplicated against an
    // earlier run's.
    let id = format!("dlq-{run_id}-{stream}-{}", original.stream_seq);
    copy.insert(event::MSG_ID, id.as_str());
    copy.insert(event::DLQ_SUBJECT, original.subject);
    copy.insert(
        event::DLQ_STREAM_SEQ,
        original.stream_seq.to_string().as_str(),
    );
    copy.insert(
        event::DLQ_DELIVERIES,
        original.deliveries.to_string().as_str(),
    );
    copy.insert(event::DLQ_REASON, reason);
    if let Some(id) = event::event_id(original.headers) {
        // Only a signed event of this run is named as the event; any other
        // id is only what the message claimed.
        let header = if is_event {
            event::DLQ_EVENT_ID
        } else {
            event::DLQ_CLAIMED_ID
        };
        copy.insert(header, id);
    }
    copy
}

/// The most header bytes a dead-lettered copy of one of the run's events
/// carries on the wire: it must fit `max_payload` as the event does.
pub fn largest_copy_headers(scenario: &Scenario, run_id: &str) -> usize {
    let mut original_headers = HeaderMap::new();
    original_headers.insert(event::MSG_ID, format!("{run_id}-{}", u64::MAX).as_str());
    let original = Original {
        subject: &scenario.load.subject,
        headers: Some(&original_headers),
        payload: Bytes::new(),
        stream_seq: u64::MAX,
        deliveries: i64::MAX,
    };
    let longest_reason = "max_deliveries";
    let copy = copy_headers(
        run_id,
        &scenario.stream.name,
        &original,
        longest_reason,
        true,
    );
    event::wire_headers(&copy)
}

pub struct DeadLetters {
    js: Context,
    subject: String,
    stream: String,
    nak_delay: Duration,
    ledger: Arc<Ledger>,
    /// Copies stored on the dead-letter stream (events and poison alike).
    pub copies: AtomicU64,
}

impl DeadLetters {
    pub fn new(js: Context, scenario: &Scenario, ledger: Arc<Ledger>) -> DeadLetters {
        DeadLetters {
            js,
            subject: scenario.consumer.dead_letter_subject.clone(),
            stream: scenario.stream.name.clone(),
            nak_delay: scenario.consumer.nak_delay,
            ledger,
            copies: AtomicU64::new(0),
        }
    }

    pub fn copies(&self) -> u64 {
        self.copies.load(Ordering::Relaxed)
    }

    /// Stores a copy of a message. `event` is the run's event seq, if it is one.
    pub async fn store(
        &self,
        original: Original<'_>,
        event: Option<u64>,
        reason: &str,
    ) -> Result<(), String> {
        let stream_seq = original.stream_seq;
        let copy = copy_headers(
            self.ledger.run_id(),
            &self.stream,
            &original,
            reason,
            event.is_some(),
        );
        let message = PublishMessage::build()
            .payload(original.payload)
            .headers(copy);
        let ack = tokio::time::timeout(Duration::from_secs(10), async {
            let future = self
                .js
                .send_publish(self.subject.clone(), message)
                .await
                .map_err(|e| e.to_string())?;
            future.await.map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| "no PubAck from the dead-letter stream".to_string())??;
        if !ack.duplicate {
            self.copies.fetch_add(1, Ordering::Relaxed);
            let live = &self.ledger.live;
            Live::add(match reason {
                "poison" => &live.dead_letters_poison,
                "max_deliveries" => &live.dead_letters_max_deliveries,
                _ => &live.dead_letters_error,
            });
        }
        if let Some(seq) = event {
            self.ledger.dead_lettered(seq, stream_seq, reason);
        }
        Ok(())
    }

    /// Dead-letters a delivery and TERMs it; if the copy cannot be stored,
    /// NAKs it instead so that it comes back and nothing is dropped.
    pub async fn term(
        &self,
        message: &Message,
        event: Option<u64>,
        stream_seq: u64,
        deliveries: i64,
        reason: &str,
    ) {
        let original = Original {
            subject: message.subject.as_str(),
            headers: message.headers.as_ref(),
            payload: message.payload.clone(),
            stream_seq,
            deliveries,
        };
        let stored = self.store(original, event, reason).await;
        let id = event
            .map(|seq| self.ledger.event_id(seq))
            .unwrap_or_else(|| "-".into());
        match stored {
            Ok(()) => {
                tracing::info!(event_id = %id, stream_seq, reason, "dead-lettered");
                match message.ack_with(AckKind::Term).await {
                    Ok(()) => Live::add(&self.ledger.live.terms),
                    Err(e) => tracing::warn!(event_id = %id, error = %e, "TERM not sent"),
                }
            }
            Err(e) => {
                tracing::warn!(event_id = %id, stream_seq, error = %e, "dead letter not stored; NAK");
                if message
                    .ack_with(AckKind::Nak(Some(self.nak_delay)))
                    .await
                    .is_ok()
                {
                    Live::add(&self.ledger.live.naks);
                }
            }
        }
    }
}
