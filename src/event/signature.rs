//! Each event is signed with a secret of its run: a keyed BLAKE3 hash of
//! its id and intended time, in the `Harness-Signature` header. Anyone who
//! can publish on the subject can copy an id; nobody without the secret can
//! sign one, so a forged copy counts as unexpected, never as a real event,
//! and cannot bring a made-up intended time into the latency figures.
//!
//! The cost is one hash of a few dozen bytes per event on each side, well
//! under a microsecond.

use async_nats::HeaderMap;

use super::names;

pub const SIGNATURE: &str = "Harness-Signature";
/// Bytes of the hash kept: 128 bits, as 32 hex digits.
const KEPT: usize = 16;
const HEX: &[u8; 16] = b"0123456789abcdef";

/// The run's secret, which never leaves the process.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    /// A signer with a new random secret.
    pub fn random() -> Signer {
        Signer {
            key: rand::random(),
        }
    }

    /// The signature of an event: its id and intended time, as the headers
    /// carry them.
    pub fn sign(&self, event_id: &str, intended_at: &str) -> String {
        let tag = self.tag(event_id, intended_at);
        let mut hex = [0u8; 2 * KEPT];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(tag) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        String::from_utf8_lossy(&hex).into_owned()
    }

    /// The kept bytes of the keyed hash of (id, intended time).
    fn tag(&self, event_id: &str, intended_at: &str) -> [u8; KEPT] {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(event_id.as_bytes());
        // A separator no id contains, so (id, time) pairs cannot run together.
        hasher.update(b"\n");
        hasher.update(intended_at.as_bytes());
        let mut tag = [0u8; KEPT];
        tag.copy_from_slice(&hasher.finalize().as_bytes()[..KEPT]);
        tag
    }

    /// Whether the headers carry this run's signature of their own id and
    /// intended time. Constant-time comparison is not needed: the signature
    /// is checked, never revealed, and a wrong one is simply unexpected.
    pub fn verify(&self, headers: Option<&HeaderMap>) -> bool {
        let Some(headers) = headers else {
            return false;
        };
        let (Some(id), Some(intended), Some(signature)) = (
            headers.get(names::MSG_ID),
            headers.get(names::INTENDED_AT),
            headers.get(names::SIGNATURE),
        ) else {
            return false;
        };
        let tag = self.tag(id.as_str(), intended.as_str());
        let given = signature.as_str().as_bytes();
        given.len() == 2 * KEPT
            && given.chunks_exact(2).zip(tag).all(|(pair, byte)| {
                pair[0] == HEX[usize::from(byte >> 4)] && pair[1] == HEX[usize::from(byte & 0xf)]
            })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::event::INTENDED_AT;

    #[test]
    fn a_signed_event_verifies_and_any_change_does_not() {
        let signer = Signer::random();
        let intended = SystemTime::now();
        let headers = super::super::headers("r1-7".into(), intended, &signer);
        assert!(signer.verify(Some(&headers)));
        assert_eq!(headers.get(SIGNATURE).unwrap().as_str().len(), 32);

        let other_run = Signer::random();
        assert!(!other_run.verify(Some(&headers)), "another run's secret");

        let moved =
            super::super::headers("r1-7".into(), intended - Duration::from_secs(3600), &signer);
        let mut forged = headers.clone();
        forged.insert(INTENDED_AT, moved.get(INTENDED_AT).unwrap().as_str());
        assert!(!signer.verify(Some(&forged)), "a changed intended time");

        let mut copied = super::super::headers("r1-8".into(), intended, &signer);
        copied.insert(SIGNATURE, headers.get(SIGNATURE).unwrap().as_str());
        assert!(
            !signer.verify(Some(&copied)),
            "a signature moved to another id"
        );

        let mut unsigned = headers.clone();
        unsigned.insert(SIGNATURE, "");
        assert!(!signer.verify(Some(&unsigned)));
        assert!(!signer.verify(None));
        assert_eq!(format!("{signer:?}"), "Signer(***)");
    }
}
