//! The three shapes, written as AWS documents them (field for field), with our own values.

use super::*;

const EVENTBRIDGE: &str = r#"{
  "version": "0",
  "id": "2d1b5e41-9c7e-4f0a-8a55-3f1c0d4e7b21",
  "detail-type": "Object Created",
  "source": "aws.s3",
  "account": "111122223333",
  "time": "2026-11-20T10:15:30Z",
  "region": "eu-west-1",
  "resources": ["arn:aws:s3:::acme-lake"],
  "detail": {
    "version": "0",
    "bucket": {"name": "acme-lake"},
    "object": {
      "key": "landing/orders/2026/11/orders 20+21%.csv",
      "size": 88412,
      "etag": "b1946ac92492d2347c6235b4d2611184",
      "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
      "sequencer": "00617F08299329D189"
    },
    "request-id": "N4N7GDK58NMKJ12R",
    "requester": "111122223333",
    "source-ip-address": "203.0.113.15",
    "reason": "PutObject"
  }
}"#;

const S3_NOTIFICATION: &str = r#"{
  "Records": [
    {
      "eventVersion": "2.1",
      "eventSource": "aws:s3",
      "awsRegion": "eu-west-1",
      "eventTime": "2026-11-20T10:15:30.123Z",
      "eventName": "ObjectCreated:Put",
      "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
      "requestParameters": {"sourceIPAddress": "203.0.113.15"},
      "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
      "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "glueless-landing",
        "bucket": {"name": "acme-lake", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": "arn:aws:s3:::acme-lake"},
        "object": {"key": "landing/orders/2026/11/orders+20%2B21%25.csv", "size": 88412, "eTag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "0055AED6DCD90281E5"}
      }
    },
    {
      "eventVersion": "2.1",
      "eventSource": "aws:s3",
      "eventTime": "2026-11-20T10:16:00.000Z",
      "eventName": "ObjectRemoved:Delete",
      "s3": {"bucket": {"name": "acme-lake"}, "object": {"key": "landing/orders/old.csv", "sequencer": "0055AED6DCD90281E6"}}
    }
  ]
}"#;

const TEST_EVENT: &str = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-20T10:00:00.000Z","Bucket":"acme-lake","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;

fn sns(inner: &str) -> String {
    serde_json::json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:landing-events",
        "Subject": "Amazon S3 Notification",
        "Message": inner,
        "Timestamp": "2026-11-20T10:15:31.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"
    })
    .to_string()
}

fn expected(time: Millis) -> S3Object {
    S3Object {
        bucket: "acme-lake".into(),
        key: "landing/orders/2026/11/orders 20+21%.csv".into(),
        size: Some(88412),
        etag: Some("b1946ac92492d2347c6235b4d2611184".into()),
        event_time: Some(time),
    }
}

#[test]
fn eventbridge_keys_are_taken_as_they_are() {
    assert_eq!(parse_body(EVENTBRIDGE), Parsed::Objects(vec![expected(1_795_169_730_000)]));
    // `eTag` is tolerated as well as `etag`.
    let other = EVENTBRIDGE.replace("\"etag\"", "\"eTag\"");
    assert_eq!(parse_body(&other), Parsed::Objects(vec![expected(1_795_169_730_000)]));
}

#[test]
fn s3_notification_keys_are_url_decoded_and_other_records_skipped() {
    assert_eq!(parse_body(S3_NOTIFICATION), Parsed::Objects(vec![expected(1_795_169_730_123)]));
}

#[test]
fn sns_wrapped_events_are_unwrapped() {
    assert_eq!(parse_body(&sns(S3_NOTIFICATION)), Parsed::Objects(vec![expected(1_795_169_730_123)]));
    assert_eq!(parse_body(&sns(EVENTBRIDGE)), Parsed::Objects(vec![expected(1_795_169_730_000)]));
}

#[test]
fn anything_else_is_ignored_with_a_reason() {
    let tags = EVENTBRIDGE.replace("Object Created", "Object Tags Added");
    for (body, why) in [
        (TEST_EVENT, "TestEvent"),
        (tags.as_str(), "Object Tags Added"),
        ("not json", "not JSON"),
        (r#"{"hello": 1}"#, "neither"),
        (r#"{"Records": [{"eventName": "ObjectRemoved:Delete"}]}"#, "ObjectRemoved"),
    ] {
        match parse_body(body) {
            Parsed::Ignored { reason } => assert!(reason.contains(why), "{reason}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    assert!(matches!(parse_body(&sns(TEST_EVENT)), Parsed::Ignored { .. }));
}

#[test]
fn keys_decode_like_s3_encodes_them() {
    assert_eq!(decode_key("a+b%2Bc%20d"), "a b+c d");
    assert_eq!(decode_key("caf%C3%A9.csv"), "café.csv");
    assert_eq!(decode_key("100%"), "100%", "a lone percent sign stays");
    assert_eq!(decode_key("%+1x"), "% 1x", "not hex: kept");
}

/// Keys S3 allows that have broken glueless before (issue 11): UTF-8, spaces and every sign in
/// `+ ~ % [ ] " ' # { } ^ | < > \ * ?`.
const HOSTILE_KEYS: &[&str] = &[
    "landing/orders/café.csv",
    "landing/orders/a~b.csv",
    "landing/orders/a[1].csv",
    "landing/orders/q\"uote.csv",
    "landing/orders/it's.csv",
    "landing/orders/a%41.csv",
    "landing/orders/100%.csv",
    "landing/orders/data.csv#1",
    "landing/orders/sp ace+plus.csv",
    "landing/orders/{b}^|<a>\\*?.csv",
    "landing/orders/日本/😀.csv",
];

/// How S3 writes a key into a notification: form-encoded, `+` for a space.
fn s3_encode(key: &str) -> String {
    let mut out = String::new();
    for &b in key.as_bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn only_object(p: Parsed) -> S3Object {
    match p {
        Parsed::Objects(mut o) if o.len() == 1 => o.remove(0),
        other => panic!("one object expected: {other:?}"),
    }
}

#[test]
fn hostile_keys_round_trip_through_every_event_shape() {
    for &key in HOSTILE_KEYS {
        let eb = serde_json::json!({
            "detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-20T10:15:30Z",
            "detail": {"bucket": {"name": "lake"}, "object": {"key": key, "size": 3, "etag": "e"}}
        });
        let o = only_object(parse_body(&eb.to_string()));
        assert_eq!(o.key, key, "EventBridge");
        assert_eq!(o.url(), format!("s3://lake/{key}"));

        let n = serde_json::json!({"Records": [{
            "eventName": "ObjectCreated:Put", "eventTime": "2026-11-20T10:15:30.123Z",
            "s3": {"bucket": {"name": "lake"}, "object": {"key": s3_encode(key), "size": 3, "eTag": "e"}}
        }]});
        assert_eq!(only_object(parse_body(&n.to_string())).key, key, "S3 notification of {}", s3_encode(key));

        let sns = serde_json::json!({"Type": "Notification", "Message": n.to_string()});
        assert_eq!(only_object(parse_body(&sns.to_string())).key, key, "SNS-wrapped");

        let replayed = only_object(parse_body(&replay_body("lake", key, 3, "e")));
        assert_eq!((replayed.key.as_str(), replayed.etag.as_deref()), (key, Some("e")), "replay body");
    }
}
