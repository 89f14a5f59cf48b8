//! Signed JSON webhooks.
//!
//! Each delivery is `POST <url>` with the body [`payload`] and these headers:
//!
//! - `Content-Type: application/json`
//! - `X-Warden-Timestamp: <unix seconds>`
//! - `X-Warden-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`
//! - `X-Warden-Delivery: <delivery id>`: the same for every attempt of one alert to one sink,
//!   so receivers can drop duplicates.
//!
//! A receiver verifies a delivery by recomputing the HMAC over the timestamp header, a `.`, and
//! the raw body bytes exactly as received (before any JSON parsing), comparing it in constant
//! time with the signature header ([`verify_signature`] does both), and rejecting timestamps
//! more than a few minutes from its own clock so that a captured request cannot be replayed.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use sha2::Sha256;
use warden_core::Alert;

use crate::error::Failure;
use crate::http::Endpoint;

/// Header carrying the signature, `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-warden-signature";
/// Header carrying the signing time, in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-warden-timestamp";
/// Header carrying the delivery id (idempotency key).
pub const DELIVERY_HEADER: &str = "x-warden-delivery";

/// The shortest accepted HMAC key.
pub const MIN_SECRET_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The webhook body: the alert as Warden's API shows it, and as an OCSF Detection Finding.
pub fn payload(alert: &Alert) -> Value {
    json!({ "alert": alert, "ocsf": warden_ocsf::alert(alert) })
}

/// The `X-Warden-Signature` value for `body` sent at `timestamp`: `sha256=` and the hex
/// HMAC-SHA256 of `timestamp`, `.`, `body` under `secret`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Whether `header` (an `X-Warden-Signature` value) signs `body` sent at `timestamp` under
/// `secret`. The comparison is constant-time. Checking that `timestamp` is recent is the
/// caller's job.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&sig).is_ok()
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// An HMAC key. `Debug` never shows it.
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    /// A key from the bytes of a file or variable, without surrounding whitespace.
    pub(crate) fn new(raw: &[u8]) -> Option<Self> {
        let trimmed = raw.trim_ascii();
        (trimmed.len() >= MIN_SECRET_LEN).then(|| Self(trimmed.to_vec()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A built webhook sink.
#[derive(Debug)]
pub(crate) struct Webhook {
    pub(crate) endpoint: Endpoint,
    pub(crate) secret: Secret,
}

impl Webhook {
    /// One signed delivery of `alert`.
    pub(crate) async fn deliver(&self, alert: &Alert, delivery_id: &str) -> Result<(), Failure> {
        let body = serde_json::to_vec(&payload(alert)).map_err(std::io::Error::from)?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let signature = sign(&self.secret.0, &timestamp, &body);
        let mut headers = HeaderMap::new();
        for (name, value) in [
            (SIGNATURE_HEADER, signature.as_str()),
            (TIMESTAMP_HEADER, timestamp.as_str()),
            (DELIVERY_HEADER, delivery_id),
        ] {
            let value = HeaderValue::from_str(value)
                .map_err(|_| Failure::DeliveryId(delivery_id.to_owned()))?;
            headers.insert(HeaderName::from_static(name), value);
        }
        self.endpoint.post_json(body, headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trips_and_rejects_tampering() {
        let secret = b"0123456789abcdef";
        let sig = sign(secret, "1700000000", b"{\"a\":1}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify_signature(secret, "1700000000", b"{\"a\":1}", &sig));
        assert!(!verify_signature(secret, "1700000001", b"{\"a\":1}", &sig));
        assert!(!verify_signature(secret, "1700000000", b"{\"a\":2}", &sig));
        assert!(!verify_signature(
            b"another-secret-key",
            "1700000000",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            secret,
            "1700000000",
            b"{\"a\":1}",
            &sig[7..]
        ));
        assert!(!verify_signature(
            secret,
            "1700000000",
            b"{\"a\":1}",
            "sha256=zz"
        ));
    }

    #[test]
    fn matches_openssl() {
        // printf '1.{}' | openssl dgst -sha256 -hmac 0123456789abcdef
        assert_eq!(
            sign(b"0123456789abcdef", "1", b"{}"),
            "sha256=2af693cb56b22c16912222aeefdc75a01de562bf70ee2015f41ecea48382997f"
        );
    }

    #[test]
    fn secret_is_trimmed_checked_and_never_shown() {
        assert!(Secret::new(b"short\n").is_none());
        let s = Secret::new(b"  0123456789abcdef\n").unwrap();
        assert_eq!(s.0, b"0123456789abcdef");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }
}
