//! Events on the wire: headers and payloads, encoded by the publisher and
//! decoded by the consumer.
//!
//! The event id travels as `Nats-Msg-Id` (so the stream deduplicates
//! retries) and the intended send time as `Harness-Intended-At` (unix
//! nanoseconds), so end-to-end latency is measured from the schedule, not
//! from whenever the publisher got round to sending.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use bytes::Bytes;
use rand::RngCore;
use serde::Deserialize;

use crate::scenario::{Payload, PayloadKind};

mod signature;

pub use signature::{Signer, SIGNATURE};

pub const MSG_ID: &str = "Nats-Msg-Id";
pub const INTENDED_AT: &str = "Harness-Intended-At";

/// The hot path's header names as async-nats keys them. A name given as
/// `&str` is checked, parsed and (unless standard) copied into a new
/// allocation at every insert and every lookup; these are made once.
pub mod names {
    use async_nats::HeaderName;

    pub const MSG_ID: HeaderName = HeaderName::from_static(super::MSG_ID);
    pub const INTENDED_AT: HeaderName = HeaderName::from_static(super::INTENDED_AT);
    pub const SIGNATURE: HeaderName = HeaderName::from_static(super::SIGNATURE);
}

/// Headers on a dead-lettered copy.
pub const DLQ_SUBJECT: &str = "Harness-Original-Subject";
pub const DLQ_STREAM_SEQ: &str = "Harness-Stream-Sequence";
pub const DLQ_DELIVERIES: &str = "Harness-Deliveries";
pub const DLQ_REASON: &str = "Harness-Reason";
pub const DLQ_EVENT_ID: &str = "Harness-Event-Id";
/// On a dead-lettered copy of a message that is not one of the run's
/// events: the id it carried (garbage, a forged or foreign copy).
pub const DLQ_CLAIMED_ID: &str = "Harness-Claimed-Id";

pub fn unix_nanos(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()
}

/// The headers of one event, signed with the run's secret. The id and the
/// strings made here move into the map, uncopied.
pub fn headers(event_id: String, intended_at: SystemTime, signer: &Signer) -> HeaderMap {
    let intended = unix_nanos(intended_at).to_string();
    let signature = signer.sign(&event_id, &intended);
    let mut headers = HeaderMap::new();
    headers.insert(names::MSG_ID, event_id);
    headers.insert(names::SIGNATURE, signature);
    headers.insert(names::INTENDED_AT, intended);
    headers
}

/// The most bytes one event of `payload` puts against the server's
/// `max_payload`: the payload and its headers as the wire carries them
/// (`NATS/1.0`, one `Name: value` line each, a blank line), built for the
/// longest event id the run can have.
pub fn largest_message(payload: &Payload, run_id: &str) -> usize {
    largest_headers(run_id) + largest_body(payload, run_id)
}

/// The most header bytes an event of the run carries on the wire.
pub fn largest_headers(run_id: &str) -> usize {
    let event_id = format!("{run_id}-{}", u64::MAX);
    wire_headers(&headers(event_id, SystemTime::now(), &Signer::random()))
}

/// The longest payload an event of the run can have.
pub fn largest_body(payload: &Payload, run_id: &str) -> usize {
    use rand::SeedableRng;
    let event_id = format!("{run_id}-{}", u64::MAX);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    PayloadBuilder::new(payload)
        .build(&event_id, u64::MAX, SystemTime::now(), &mut rng)
        .len()
}

/// Headers as the wire carries them: `NATS/1.0`, one `Name: value` line
/// each, a blank line.
pub fn wire_headers(headers: &HeaderMap) -> usize {
    let lines: usize = headers
        .iter()
        .flat_map(|(name, values)| values.iter().map(move |v| (name, v)))
        .map(|(name, value)| {
            AsRef::<str>::as_ref(name).len() + ": ".len() + value.as_str().len() + 2
        })
        .sum();
    "NATS/1.0\r\n".len() + lines + "\r\n".len()
}

/// Builds payloads of the scenario's kind and size.
#[derive(Debug, Clone)]
pub struct PayloadBuilder {
    kind: PayloadKind,
    size: usize,
    event_type: String,
    source: String,
}

impl PayloadBuilder {
    pub fn new(payload: &Payload) -> PayloadBuilder {
        PayloadBuilder {
            kind: payload.kind,
            size: payload.size.0 as usize,
            event_type: payload.event_type.clone(),
            source: payload.source.clone(),
        }
    }

    pub fn build(
        &self,
        event_id: &str,
        seq: u64,
        intended_at: SystemTime,
        rng: &mut impl RngCore,
    ) -> Bytes {
        match self.kind {
            PayloadKind::Random => {
                let mut bytes = vec![0u8; self.size];
                rng.fill_bytes(&mut bytes);
                Bytes::from(bytes)
            }
            PayloadKind::Json => self.json(event_id, seq, intended_at),
        }
    }

    /// `{event_id, event_type, source, sequence, sent_at, data}`, with `data`
    /// padding the document to the configured size when there is room.
    fn json(&self, event_id: &str, seq: u64, intended_at: SystemTime) -> Bytes {
        let head = format!(
            "{{\"event_id\":{},\"event_type\":{},\"source\":{},\"sequence\":{seq},\"sent_at\":{},\"data\":\"",
            json_string(event_id),
            json_string(&self.event_type),
            json_string(&self.source),
            unix_nanos(intended_at),
        );
        let tail = "\"}";
        let padding = self.size.saturating_sub(head.len() + tail.len());
        let mut out = String::with_capacity(head.len() + padding + tail.len());
        out.push_str(&head);
        out.extend(std::iter::repeat_n('x', padding));
        out.push_str(tail);
        Bytes::from(out)
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// What the consumer needs from a delivery's payload.
#[derive(Debug, Deserialize)]
struct JsonEvent {
    event_id: String,
    #[allow(dead_code)]
    event_type: String,
    #[allow(dead_code)]
    source: String,
}

/// Checks a JSON payload against the id in its headers.
pub fn check_payload(kind: PayloadKind, event_id: &str, payload: &[u8]) -> Result<(), String> {
    if kind != PayloadKind::Json {
        return Ok(());
    }
    let event: JsonEvent =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not an event: {e}"))?;
    if event.event_id != event_id {
        return Err(format!(
            "payload event_id {} does not match the header {event_id}",
            event.event_id
        ));
    }
    Ok(())
}

/// The header's event id, if any.
pub fn event_id(headers: Option<&HeaderMap>) -> Option<&str> {
    headers?.get(names::MSG_ID).map(|v| v.as_str())
}

/// The intended send time, from the `Harness-Intended-At` header.
pub fn intended_at(headers: Option<&HeaderMap>) -> Option<SystemTime> {
    let nanos: u64 = headers?.get(names::INTENDED_AT)?.as_str().parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_nanos(nanos))
}

/// One moment on both clocks: the wall clock that headers carry and the
/// monotonic one that measures.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    pub wall: SystemTime,
    pub instant: Instant,
}

impl Moment {
    pub fn now() -> Moment {
        Moment {
            wall: SystemTime::now(),
            instant: Instant::now(),
        }
    }

    /// The moment the wall clock reads (or read) `wall`, placed on the
    /// monotonic clock through now; None if that clock cannot reach it
    /// (before the machine started, or beyond its range).
    pub fn at(wall: SystemTime) -> Option<Moment> {
        let (instant_now, wall_now) = (Instant::now(), SystemTime::now());
        let instant = match wall.duration_since(wall_now) {
            Ok(ahead) => instant_now.checked_add(ahead)?,
            Err(behind) => instant_now.checked_sub(behind.duration())?,
        };
        Some(Moment { wall, instant })
    }
}

/// Time since the intended send, if that lies within the run, from `start`
/// to `now`. The header's wall time is placed on the monotonic clock
/// through `start`, so a wall clock stepped during the run (NTP) shifts
/// nothing. An intended time outside the run (before it, or not yet come)
/// says nothing about this run's latency: `Err` with that time. `Ok(None)`
/// for no usable header.
pub fn since_intended(
    headers: Option<&HeaderMap>,
    start: Moment,
    now: Instant,
) -> Result<Option<Duration>, SystemTime> {
    let Some(intended) = intended_at(headers) else {
        return Ok(None);
    };
    let Ok(into_run) = intended.duration_since(start.wall) else {
        return Err(intended);
    };
    let elapsed = now.saturating_duration_since(start.instant);
    if into_run > elapsed {
        return Err(intended);
    }
    Ok(Some(elapsed - into_run))
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::scenario::ByteSize;

    fn builder(kind: PayloadKind, size: u64) -> PayloadBuilder {
        PayloadBuilder::new(&Payload {
            kind,
            size: ByteSize(size),
            ..Payload::default()
        })
    }

    #[test]
    fn json_payloads_have_the_configured_size_and_decode() {
        let mut rng = StdRng::seed_from_u64(1);
        let payload = builder(PayloadKind::Json, 256).build("r-7", 7, SystemTime::now(), &mut rng);
        assert_eq!(payload.len(), 256);
        let value: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(value["event_id"], "r-7");
        assert_eq!(value["sequence"], 7);
        assert!(check_payload(PayloadKind::Json, "r-7", &payload).is_ok());
        assert!(check_payload(PayloadKind::Json, "r-8", &payload).is_err());
    }

    #[test]
    fn random_payloads_have_the_configured_size() {
        let mut rng = StdRng::seed_from_u64(1);
        let payload =
            builder(PayloadKind::Random, 1000).build("r-1", 1, SystemTime::now(), &mut rng);
        assert_eq!(payload.len(), 1000);
        assert!(check_payload(PayloadKind::Random, "r-1", &payload).is_ok());
    }

    #[test]
    fn garbage_is_reported_not_panicked_on() {
        for garbage in [&b""[..], b"{", b"\xff\xfe", b"{\"event_id\":5}", b"[1,2,3]"] {
            assert!(check_payload(PayloadKind::Json, "r-1", garbage).is_err());
        }
    }

    #[test]
    fn the_largest_message_counts_payload_and_headers() {
        let payload = Payload {
            size: crate::scenario::ByteSize(4096),
            kind: PayloadKind::Random,
            ..Payload::default()
        };
        let run_id = "r0123abcd";
        // "NATS/1.0\r\n", "Nats-Msg-Id: r0123abcd-18446744073709551615\r\n",
        // "Harness-Intended-At: <19 digits>\r\n",
        // "Harness-Signature: <32 hex digits>\r\n", "\r\n".
        let headers = 10 + (11 + 2 + 30 + 2) + (19 + 2 + 19 + 2) + (17 + 2 + 32 + 2) + 2;
        assert_eq!(largest_message(&payload, run_id), 4096 + headers);
    }

    #[test]
    fn headers_carry_id_and_intended_time() {
        let start = Moment::now();
        let intended = start.wall + Duration::from_secs(1);
        let headers = headers("r-3".into(), intended, &Signer::random());
        assert_eq!(event_id(Some(&headers)), Some("r-3"));
        let now = start.instant + Duration::from_millis(1250);
        let age = since_intended(Some(&headers), start, now);
        assert_eq!(age, Ok(Some(Duration::from_millis(250))));
        assert_eq!(event_id(None), None);
        assert_eq!(since_intended(None, start, now), Ok(None));
        // Not yet come, or before the run: left out.
        let early = start.instant + Duration::from_millis(500);
        assert!(since_intended(Some(&headers), start, early).is_err());
        let later_start = Moment {
            wall: intended + Duration::from_secs(1),
            instant: start.instant,
        };
        assert!(since_intended(Some(&headers), later_start, now).is_err());
        // A wall clock stepped back an hour after the start changes nothing:
        // only the start's wall time is read.
        assert_eq!(since_intended(Some(&headers), start, now), age);
    }
}
