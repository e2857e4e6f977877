//! Object events as they arrive in an SQS message body, in the three shapes AWS sends them:
//!
//! - the EventBridge event of an S3 `Object Created` (`detail.object.key` is NOT URL-encoded;
//!   the ETag is `etag`, tolerated as `eTag`);
//! - the S3 event notification (`Records[]`, `s3.object.key` URL-encoded with `+` for a space;
//!   `s3:TestEvent`, sent when a notification is configured, is ignored);
//! - either of them wrapped in an SNS notification (`Type = "Notification"`, the event as a JSON
//!   string in `Message`).
//!
//! Anything else — other EventBridge detail types ("Object Tags Added", "Object Deleted"),
//! other S3 event names, bodies that are not JSON — is [`Parsed::Ignored`] with the reason, so
//! the dispatcher can acknowledge and count it; a message is never failed for its shape.
//!
//! ```
//! use glueless_jobs::events::{Parsed, parse_body};
//! let body = r#"{"detail-type":"Object Created","source":"aws.s3","time":"2026-11-20T10:00:00Z",
//!   "detail":{"bucket":{"name":"lake"},"object":{"key":"landing/orders/a b.csv","size":10,"etag":"abc"}}}"#;
//! let Parsed::Objects(objects) = parse_body(body) else { panic!() };
//! assert_eq!(objects[0].key, "landing/orders/a b.csv");
//! assert_eq!(objects[0].url(), "s3://lake/landing/orders/a b.csv");
//! ```

mod wire;

use crate::ports::Millis;

/// One created object named by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    pub bucket: String,
    /// Decoded: exactly the object's key.
    pub key: String,
    pub size: Option<u64>,
    /// Without surrounding quotes.
    pub etag: Option<String>,
    /// When S3 says the object was created.
    pub event_time: Option<Millis>,
}

impl S3Object {
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// What a message body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// One or more created objects (an S3 notification may carry several records).
    Objects(Vec<S3Object>),
    /// Nothing to load: acknowledge and count.
    Ignored { reason: String },
}

/// Reads one SQS message body. Never fails: a body it cannot use is [`Parsed::Ignored`].
pub fn parse_body(body: &str) -> Parsed {
    let value: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Parsed::Ignored { reason: format!("the body is not JSON: {e}") },
    };
    parse_value(&value, 0)
}

fn parse_value(v: &serde_json::Value, depth: u8) -> Parsed {
    if v.get("Type").and_then(|t| t.as_str()) == Some("Notification") && depth == 0 {
        return match v.get("Message").and_then(|m| m.as_str()).map(serde_json::from_str::<serde_json::Value>) {
            Some(Ok(inner)) => parse_value(&inner, depth + 1),
            _ => Parsed::Ignored { reason: "an SNS notification whose Message is not a JSON event".into() },
        };
    }
    if v.get("detail-type").is_some() {
        return wire::eventbridge(v);
    }
    if v.get("Records").is_some() {
        return wire::s3_notification(v);
    }
    if v.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return Parsed::Ignored { reason: "s3:TestEvent (sent when the notification was configured)".into() };
    }
    Parsed::Ignored { reason: "neither an EventBridge event, an S3 notification, nor SNS-wrapped one".into() }
}

/// The body `glueless replay` puts on the queue to re-drive an object: an EventBridge
/// `Object Created` event with `source = "glueless.replay"`, read like the ones S3 sends.
pub fn replay_body(bucket: &str, key: &str, size: u64, etag: &str) -> String {
    serde_json::json!({
        "version": "0",
        "detail-type": "Object Created",
        "source": "glueless.replay",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "etag": etag}, "reason": "Replay"},
    })
    .to_string()
}

/// Decodes an S3 notification key: `+` is a space, `%XX` a byte (UTF-8 as a whole).
pub fn decode_key(key: &str) -> String {
    String::from_utf8_lossy(&url_decoded(key)).into_owned()
}

/// [`decode_key`] for a key that must be exact (a listing's `encoding-type=url` keys): `None`
/// when the decoded bytes are not UTF-8, instead of replacing them.
pub fn decode_key_exact(key: &str) -> Option<String> {
    String::from_utf8(url_decoded(key)).ok()
}

/// The bytes of a URL-encoded key: `+` is a space, `%XX` a byte; a `%` not followed by two hex
/// digits stays as it is.
fn url_decoded(key: &str) -> Vec<u8> {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() => {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
