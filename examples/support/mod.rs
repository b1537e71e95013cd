//! What the reference services share: their settings from the environment
//! the harness gives a service it runs, the wait for the durable, and the
//! loop that pulls, handles and replies. Each service uses what it needs.
#![allow(dead_code)]

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, Message};
use async_nats::HeaderMap;
use futures::StreamExt;
use sha2::Digest;

const EVENT_ID: &str = "Harness-Event-Id";
const PAYLOAD_SHA256: &str = "Harness-Payload-Sha256";
const MSG_ID: &str = "Nats-Msg-Id";

/// Where the service reads, and where it writes.
pub struct Settings {
    pub url: String,
    pub stream: String,
    pub durable: String,
    pub dead_letters: String,
    /// Where a result per processed message goes, if anywhere.
    pub output: Option<String>,
}

fn setting(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// A whole number from the environment; 0 when unset.
pub fn number(name: &str) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(n) => n.parse().map_err(|e| format!("{name}: {e}")),
        Err(_) => Ok(0),
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        Ok(Settings {
            url: setting("NATS_URL")?,
            stream: setting("HARNESS_STREAM")?,
            durable: setting("HARNESS_DURABLE")?,
            dead_letters: setting("HARNESS_DEAD_LETTER_SUBJECT")?,
            output: std::env::var("HARNESS_OUTPUT_SUBJECT").ok(),
        })
    }
}

/// What to do with the nth message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Handle it: publish its results (with an output subject), then ack.
    Ack { results: usize, corrupt: bool },
    /// It fails: copy it to the dead-letter subject, then TERM it.
    DeadLetter,
    /// Neither ack nor NAK: the server delivers it again after ack_wait.
    Drop,
    /// Exit at once with code 1, holding what was pulled.
    Crash,
    /// Ack it, then exit with code 1 before its result is published: the
    /// bug of a service that acks on receipt, losing the event.
    AckThenCrash,
    /// Stop reading, and stay up.
    Hang,
}

/// One delivery, as a service's policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// The nth message this process received, from 1, redeliveries included.
    pub n: u64,
    /// Its stream sequence.
    pub stream_sequence: u64,
    /// Its delivery count: 1 at its first delivery.
    pub delivered: i64,
}

/// Pulls batches from the durable until SIGTERM or Ctrl+C, handling each
/// delivery as `decide` says.
pub async fn serve(
    name: &str,
    settings: Settings,
    mut decide: impl FnMut(Delivery) -> Handling,
) -> Result<(), String> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    let mut stop = std::pin::pin!(shutdown(term));
    // NATS_URL may list several servers, comma-separated, as NATS clients
    // take it.
    let servers = settings
        .url
        .split(',')
        .map(|url| url.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("NATS_URL `{}`: {e}", settings.url))?;
    let client = async_nats::connect(servers)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", settings.url))?;
    let js = jetstream::new(client.clone());
    let (stream, durable) = (&settings.stream, &settings.durable);
    // The durable may not exist yet: the harness provisions it as its run
    // starts. Wait for it, a while.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let consumer: jetstream::consumer::PullConsumer = loop {
        match js.get_consumer_from_stream(durable, stream).await {
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
    eprintln!("{name}: consuming `{durable}` on `{stream}`");
    let mut seen: u64 = 0;
    loop {
        let next = tokio::select! {
            next = messages.next() => next,
            _ = &mut stop => break,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                eprintln!("{name}: pull: {e}");
                continue;
            }
            None => break,
        };
        seen += 1;
        let (stream_sequence, delivered) = message
            .info()
            .map_or((0, 0), |info| (info.stream_sequence, info.delivered));
        let delivery = Delivery {
            n: seen,
            stream_sequence,
            delivered,
        };
        match decide(delivery) {
            Handling::Ack { results, corrupt } => {
                publish_results(&js, &settings, &message, results, corrupt).await;
                if let Err(e) = message.ack().await {
                    eprintln!("{name}: ack: {e}");
                }
            }
            Handling::DeadLetter => dead_letter(&js, &settings, &message).await,
            Handling::Drop => {}
            Handling::Crash => {
                eprintln!("{name}: crashing at message {seen}");
                std::process::exit(1);
            }
            Handling::AckThenCrash => {
                // Double ack: the server confirms it, as a service that
                // commits its read before its work would.
                if let Err(e) = message.double_ack().await {
                    eprintln!("{name}: ack: {e}");
                }
                eprintln!("{name}: crashing after acking message {seen}");
                std::process::exit(1);
            }
            Handling::Hang => {
                eprintln!("{name}: hanging at message {seen}");
                (&mut stop).await;
                break;
            }
        }
    }
    // Acks are sent without waiting; make sure they left before exiting.
    client
        .flush()
        .await
        .map_err(|e| format!("cannot flush: {e}"))?;
    eprintln!("{name}: stopped after {seen} messages");
    Ok(())
}

fn event_id(message: &Message) -> Option<String> {
    let id = message.headers.as_ref()?.get(MSG_ID)?;
    Some(id.as_str().to_string())
}

/// `results` results for `message`, each naming its event and the hash of
/// its payload (a wrong one in the first if `corrupt`), each stored before
/// the ack.
async fn publish_results(
    js: &jetstream::Context,
    settings: &Settings,
    message: &Message,
    results: usize,
    corrupt: bool,
) {
    let Some(subject) = &settings.output else {
        return;
    };
    let hash: Vec<u8> = sha2::Sha256::digest(&message.payload).to_vec();
    for result in 0..results {
        let mut hash = hash.clone();
        if corrupt && result == 0 {
            hash[0] ^= 0xff;
        }
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let mut headers = HeaderMap::new();
        if let Some(id) = event_id(message) {
            headers.insert(EVENT_ID, id.as_str());
        }
        headers.insert(PAYLOAD_SHA256, hex.as_str());
        if let Ok(ack) = js
            .publish_with_headers(subject.clone(), headers, "processed".into())
            .await
        {
            let _ = ack.await;
        }
    }
}

/// A copy on the dead-letter subject naming the event, then a TERM once
/// the copy is stored; a NAK if it was not, so nothing is dropped.
async fn dead_letter(js: &jetstream::Context, settings: &Settings, message: &Message) {
    let mut copy = HeaderMap::new();
    if let Some(id) = event_id(message) {
        copy.insert(EVENT_ID, id.as_str());
    }
    let stored = match js
        .publish_with_headers(settings.dead_letters.clone(), copy, message.payload.clone())
        .await
    {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    let reply = if stored {
        AckKind::Term
    } else {
        AckKind::Nak(Some(Duration::from_secs(1)))
    };
    let _ = message.ack_with(reply).await;
}

/// SIGTERM or Ctrl+C.
async fn shutdown(mut term: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
