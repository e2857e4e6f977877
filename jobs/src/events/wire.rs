//! The AWS wire shapes, read leniently with `serde_json::Value`: only the fields glueless uses
//! are required, and a missing optional one (size, ETag, time) is `None`.

use super::{Parsed, S3Object, decode_key};
use crate::ports::Millis;
use serde_json::Value;

fn time(v: Option<&Value>) -> Option<Millis> {
    let s = v?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

fn etag(object: &Value) -> Option<String> {
    object
        .get("etag")
        .or_else(|| object.get("eTag"))
        .or_else(|| object.get("ETag"))
        .and_then(|e| e.as_str())
        .map(|e| e.trim_matches('"').to_string())
}

/// `{"detail-type": "Object Created", "source": "aws.s3", "time": …, "detail": {"bucket":
/// {"name"}, "object": {"key", "size", "etag", …}}}`; the key is not URL-encoded.
pub fn eventbridge(v: &Value) -> Parsed {
    let kind = v.get("detail-type").and_then(|d| d.as_str()).unwrap_or("");
    if kind != "Object Created" {
        return Parsed::Ignored { reason: format!("EventBridge detail-type `{kind}` is not `Object Created`") };
    }
    let detail = v.get("detail");
    let bucket = detail.and_then(|d| d.pointer("/bucket/name")).and_then(|b| b.as_str());
    let object = detail.and_then(|d| d.get("object"));
    let key = object.and_then(|o| o.get("key")).and_then(|k| k.as_str());
    match (bucket, object, key) {
        (Some(bucket), Some(object), Some(key)) => Parsed::Objects(vec![S3Object {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size: object.get("size").and_then(|s| s.as_u64()),
            etag: etag(object),
            event_time: time(v.get("time")),
        }]),
        _ => {
            Parsed::Ignored { reason: "an Object Created event without detail.bucket.name or detail.object.key".into() }
        }
    }
}

/// `{"Records": [{"eventName": "ObjectCreated:Put", "eventTime", "s3": {"bucket": {"name"},
/// "object": {"key" (URL-encoded), "size", "eTag"}}}]}`.
pub fn s3_notification(v: &Value) -> Parsed {
    let Some(records) = v.get("Records").and_then(|r| r.as_array()) else {
        return Parsed::Ignored { reason: "`Records` is not an array".into() };
    };
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for r in records {
        let name = r.get("eventName").and_then(|n| n.as_str()).unwrap_or("");
        if !name.starts_with("ObjectCreated:") {
            skipped.push(name.to_string());
            continue;
        }
        let bucket = r.pointer("/s3/bucket/name").and_then(|b| b.as_str());
        let object = r.pointer("/s3/object");
        let key = object.and_then(|o| o.get("key")).and_then(|k| k.as_str());
        if let (Some(bucket), Some(object), Some(key)) = (bucket, object, key) {
            objects.push(S3Object {
                bucket: bucket.to_string(),
                key: decode_key(key),
                size: object.get("size").and_then(|s| s.as_u64()),
                etag: etag(object),
                event_time: time(r.get("eventTime")),
            });
        } else {
            skipped.push(format!("{name} without s3.bucket.name or s3.object.key"));
        }
    }
    if objects.is_empty() {
        return Parsed::Ignored { reason: format!("no ObjectCreated record (events: {})", skipped.join(", ")) };
    }
    Parsed::Objects(objects)
}
