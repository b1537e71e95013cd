//! A well-behaved audit consumer: the reference service for a scenario's
//! `[consumer] mode = "external"`, and the shape a real one can take.
//!
//! It pulls batches from its durable pull consumer and acks each message it
//! handled. A message it cannot handle is copied to the dead-letter
//! subject, carrying the event's id in `Harness-Event-Id`, and TERMed once
//! the copy is stored. SIGTERM or Ctrl+C: it stops pulling, finishes what
//! it holds, and exits 0.
//!
//! Settings, from the environment (the harness's external mode names them):
//!
//! - `NATS_URL`: the server, such as `nats://127.0.0.1:4222`;
//! - `HARNESS_STREAM`, `HARNESS_DURABLE`: the stream and its durable consumer;
//! - `HARNESS_DEAD_LETTER_SUBJECT`: where copies of failed messages go;
//! - `AUDIT_FAIL_EVERY` (optional): every Nth message fails, to show the
//!   dead-letter path (0 or unset: none fails).
//!
//! Run by hand: `cargo run --example audit_consumer` with those set.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use async_nats::HeaderMap;
use futures::StreamExt;

const EVENT_ID: &str = "Harness-Event-Id";
const MSG_ID: &str = "Nats-Msg-Id";

fn setting(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("audit_consumer: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let url = setting("NATS_URL")?;
    let stream = setting("HARNESS_STREAM")?;
    let durable = setting("HARNESS_DURABLE")?;
    let dead_letters = setting("HARNESS_DEAD_LETTER_SUBJECT")?;
    let fail_every: u64 = std::env::var("AUDIT_FAIL_EVERY")
        .ok()
        .map(|n| n.parse().map_err(|e| format!("AUDIT_FAIL_EVERY: {e}")))
        .transpose()?
        .unwrap_or(0);
    let client = async_nats::connect(&url)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let js = jetstream::new(client.clone());
    // The durable may not exist yet: the harness provisions it as its run
    // starts. Wait for it, a while.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let consumer: jetstream::consumer::PullConsumer = loop {
        match js.get_consumer_from_stream(&durable, &stream).await {
            Ok(consumer) => break consumer,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(format!("no durable `{durable}` on stream `{stream}`: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(256)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .map_err(|e| format!("cannot pull: {e}"))?;
    eprintln!("audit_consumer: consuming `{durable}` on `{stream}`");
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    let mut stop = std::pin::pin!(shutdown(term));
    let mut seen: u64 = 0;
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            _ = &mut stop => break,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                eprintln!("audit_consumer: pull: {e}");
                continue;
            }
            None => break,
        };
        seen += 1;
        let fails = fail_every > 0 && seen.is_multiple_of(fail_every);
        if !fails {
            if let Err(e) = message.ack().await {
                eprintln!("audit_consumer: ack: {e}");
            }
            continue;
        }
        let mut copy = HeaderMap::new();
        if let Some(id) = message.headers.as_ref().and_then(|h| h.get(MSG_ID)) {
            copy.insert(EVENT_ID, id.as_str());
        }
        let stored = match js
            .publish_with_headers(dead_letters.clone(), copy, message.payload.clone())
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if stored {
            if let Err(e) = message.ack_with(AckKind::Term).await {
                eprintln!("audit_consumer: term: {e}");
            }
        } else {
            // Not stored: let it come back rather than drop it.
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                .await;
        }
    }
    // Acks are sent without waiting; make sure they left before exiting.
    client
        .flush()
        .await
        .map_err(|e| format!("cannot flush: {e}"))?;
    eprintln!("audit_consumer: stopped after {seen} messages");
    Ok(())
}

/// SIGTERM or Ctrl+C.
async fn shutdown(mut term: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
