//! The `Alerts` port on an Amazon SNS topic.
//!
//! # What it sends
//!
//! One `Publish` per alert:
//!
//! - `Subject`: [`Alert::subject`], made printable ASCII (other characters become `?`, line
//!   breaks spaces) and cut to SNS's 100 characters. E-mail subscriptions show it.
//! - `Message`: a JSON document in the custom-notification format of AWS Chatbot (Amazon Q
//!   Developer in chat applications), which machines can read too:
//!
//!   ```json
//!   {
//!     "version": "1.0",
//!     "source": "custom",
//!     "content": {
//!       "textType": "client-markdown",
//!       "title": ":rotating_light: glueless: DEAD file in dataset sales",
//!       "description": "<Alert::slack_text(): state, object, reason, rows, row errors, how to replay>",
//!       "keywords": ["glueless", "DEAD", "sales"]
//!     },
//!     "metadata": {
//!       "summary": "<the subject>",
//!       "eventType": "glueless.file.DEAD",
//!       "relatedResources": ["s3://bucket/landing/sales/a.csv"],
//!       "additionalContext": {
//!         "dataset": "sales", "object": "s3://…", "state": "DEAD", "reason": "…",
//!         "attempts": "3", "rows_read": "120", "rows_rejected": "2",
//!         "row_errors": "[{\"line\":4,\"row\":3,\"field\":\"qty\",\"rule\":\"type\",…}]",
//!         "quarantine": "s3://…/quarantine/…", "truncated": "false"
//!       }
//!     }
//!   }
//!   ```
//!
//!   Chatbot's schema only allows strings in `metadata.additionalContext`, so the structured
//!   alert is there with every value a string: numbers in decimal, `row_errors` a JSON array
//!   (each element the report's row error: `line`, `row`, `field`, `rule`, `value`, `message`).
//!   Absent values (`rows_read` of a file that was never read, no quarantine) are left out.
//! - Message attributes `dataset` and `state` (type `String`), for subscription filter policies,
//!   e.g. `{"state": ["DEAD"]}` or `{"dataset": ["sales", "orders"]}`.
//!
//! The whole message stays under SNS's 256 KB limit: a very long reason or many row errors are
//! cut, the text says so, and `additionalContext.truncated` is `"true"` (the quarantine and
//! `glueless status` keep everything).
//!
//! # Permissions and routing
//!
//! The credentials in use need `sns:Publish` on the topic (and, for a topic encrypted with a
//! customer-managed KMS key, `kms:GenerateDataKey` and `kms:Decrypt` on that key). To see the
//! alerts in Slack (or Teams, Chime), subscribe an AWS Chatbot channel configuration to the
//! topic: it renders `content` and ignores the rest. Other subscribers (e-mail, SQS, Lambda,
//! HTTPS) get the same message and can filter on the attributes. The description is escaped
//! for Slack as the webhook's text is (Chatbot renders it there): no mention, link or
//! formatting comes from data.
//!
//! A publish that fails on throttling, a 5xx or the network is tried once more; then the
//! [`AlertError`] names the topic and what to check. Messages never include credentials.

use crate::ports::{Alert, AlertError, Alerts};
use aws_sdk_sns::Client;
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use std::time::Duration;

/// SNS's limit on a subject, in characters (printable ASCII only).
const SUBJECT_MAX: usize = 100;
/// SNS's limit on a whole message (body, subject and attributes) is 256 KiB; the body stays
/// under this, leaving room for the subject, the attributes and the JSON escaping margin.
const BODY_MAX: usize = 250_000;
/// Longest value of a message attribute (a filter key; real dataset names are far shorter).
const ATTRIBUTE_MAX: usize = 256;

/// Sends alerts to one SNS topic.
pub struct SnsAlerts {
    client: Client,
    topic_arn: String,
}

impl SnsAlerts {
    /// Alerts to the topic `topic_arn`, with the region, credentials and endpoint of the usual
    /// AWS environment (`AWS_REGION`, `AWS_PROFILE`, `AWS_ACCESS_KEY_ID`, instance or task
    /// roles, `AWS_ENDPOINT_URL`…). The region is the topic ARN's when it names one (SNS only
    /// accepts a publish in the topic's own region), else the environment's. No call is made
    /// until the first alert.
    pub async fn connect(topic_arn: &str) -> SnsAlerts {
        let conf = super::config_loader()
            // `send` makes its own two tries; one SDK attempt each keeps the total at two.
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .load()
            .await;
        let mut b = aws_sdk_sns::config::Builder::from(&conf);
        if let Some(region) = arn_region(topic_arn) {
            b = b.region(aws_sdk_sns::config::Region::new(region.to_string()));
        }
        SnsAlerts::with_client(Client::from_conf(b.build()), topic_arn)
    }

    /// Alerts to the topic `topic_arn` through an SDK client built by the caller (its own
    /// endpoint, region, credentials, retry or timeout settings): what [`SnsAlerts::connect`]
    /// does after reading the environment, and how tests point the adapter at a local emulator
    /// without touching the process environment. `send` still makes two tries of its own, on
    /// top of whatever retries the client's configuration makes.
    pub fn with_client(client: Client, topic_arn: &str) -> SnsAlerts {
        SnsAlerts { client, topic_arn: topic_arn.trim().to_string() }
    }

    fn channel(&self) -> String {
        format!("SNS topic {}", self.topic_arn)
    }

    fn region(&self) -> String {
        self.client.config().region().map(|r| r.to_string()).unwrap_or_else(|| "(no region set)".into())
    }

    /// What to check, after an error with this code (None: the request never got an answer).
    fn hint(&self, code: Option<&str>) -> String {
        let region = self.region();
        match code {
            Some("NotFound" | "NotFoundException") => format!(
                "check that the topic ARN is right and that the topic exists in region {region} \
                 (and that the credentials in use have sns:Publish on it)"
            ),
            Some("AuthorizationError" | "AuthorizationErrorException" | "AccessDenied" | "AccessDeniedException") => {
                "check that the credentials in use are allowed sns:Publish on this topic \
                  (the IAM policy and the topic's access policy)"
                    .into()
            }
            Some(
                "InvalidClientTokenId"
                | "UnrecognizedClientException"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "SignatureDoesNotMatch"
                | "IncompleteSignature"
                | "MissingAuthenticationToken"
                | "InvalidSecurity",
            ) => "check the AWS credentials in the environment (expired or wrong keys, profile or role)".into(),
            Some(c) if c.contains("Throttl") || c == "TooManyRequestsException" || c == "RequestThrottled" => {
                format!("SNS is throttling publishes: check the account's SNS publish quota in region {region}")
            }
            Some("InternalError" | "InternalFailure" | "ServiceUnavailable") => {
                format!("SNS answered with a server error twice: check the AWS Health Dashboard for SNS in {region}")
            }
            Some(c) if c.starts_with("KMS") || c.starts_with("Kms") => {
                "the topic is encrypted: check that the credentials in use are allowed kms:GenerateDataKey \
                 and kms:Decrypt on its KMS key"
                    .into()
            }
            Some(_) => format!(
                "check that the topic exists in region {region} and that the credentials in use have \
                 sns:Publish on it"
            ),
            None => format!(
                "check the network path to SNS in region {region} (and AWS_ENDPOINT_URL, if set), that the \
                 topic exists and that the credentials in use have sns:Publish on it"
            ),
        }
    }
}

#[async_trait::async_trait]
impl Alerts for SnsAlerts {
    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        let message = message(alert);
        let attribute = |v: &str| {
            let v = if v.trim().is_empty() { "-" } else { v };
            MessageAttributeValue::builder().data_type("String").string_value(cut(v, ATTRIBUTE_MAX)).build()
        };
        let (dataset, state) = match (attribute(&alert.dataset), attribute(alert.state.as_str())) {
            (Ok(d), Ok(s)) => (d, s),
            (Err(e), _) | (_, Err(e)) => {
                return Err(AlertError { channel: self.channel(), message: format!("cannot build the message: {e}") });
            }
        };
        let mut last = String::new();
        let mut code = None;
        // Two tries: a throttled or briefly unavailable SNS should not lose the alert.
        for attempt in 1..=2 {
            let sent = self
                .client
                .publish()
                .topic_arn(&self.topic_arn)
                .subject(subject(alert))
                .message(&message)
                .message_attributes("dataset", dataset.clone())
                .message_attributes("state", state.clone())
                .send()
                .await;
            let e = match sent {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let retry = retryable(&e);
            code = e.code().map(str::to_string);
            last = match (e.code(), e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => DisplayErrorContext(&e).to_string(),
            };
            if !retry {
                last.push_str(&format!(" (after {attempt} {})", if attempt == 1 { "try" } else { "tries" }));
                break;
            }
            if attempt == 1 {
                tokio::time::sleep(Duration::from_millis(500 + rand::random_range(0..500))).await;
            } else {
                last.push_str(" (after 2 tries)");
            }
        }
        Err(AlertError { channel: self.channel(), message: format!("{last}; {}", self.hint(code.as_deref())) })
    }
}

/// Worth another try: throttling, a 5xx, a timeout or a network failure.
fn retryable<E: ProvideErrorMetadata>(e: &SdkError<E, aws_sdk_sns::config::http::HttpResponse>) -> bool {
    super::retryable(
        e,
        &[
            "Throttling",
            "ThrottlingException",
            "ThrottledException",
            "RequestThrottled",
            "TooManyRequestsException",
            "InternalError",
            "InternalFailure",
            "ServiceUnavailable",
        ],
    )
}

/// The region of an ARN (`arn:aws:sns:eu-west-1:123456789012:alerts`), when it names one.
fn arn_region(arn: &str) -> Option<&str> {
    let mut parts = arn.trim().split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_), Some("sns"), Some(r)) if !r.is_empty() => Some(r),
        _ => None,
    }
}

/// The subject: printable ASCII only, at most [`SUBJECT_MAX`] characters.
fn subject(alert: &Alert) -> String {
    let clean: String = alert
        .subject()
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        })
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        return "glueless alert".into();
    }
    if clean.len() <= SUBJECT_MAX {
        return clean.to_string();
    }
    format!("{}...", clean[..SUBJECT_MAX - 3].trim_end())
}

/// `s` cut to at most `max` bytes, on a character boundary, marked with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// How hard to shrink an alert: the reason's length, how many row errors, each error text's length.
struct Shrink {
    reason: usize,
    errors: usize,
    field: usize,
}

/// The message body, shrunk until it fits in [`BODY_MAX`] bytes.
fn message(alert: &Alert) -> String {
    const LEVELS: [Shrink; 3] = [
        Shrink { reason: 16_384, errors: 100, field: 1024 },
        Shrink { reason: 4096, errors: 20, field: 256 },
        Shrink { reason: 1024, errors: 0, field: 1024 },
    ];
    let full = body(alert, None);
    if full.len() <= BODY_MAX {
        return full;
    }
    let mut smallest = full;
    for level in &LEVELS {
        smallest = body(alert, Some(level));
        if smallest.len() <= BODY_MAX {
            break;
        }
    }
    smallest
}

fn body(alert: &Alert, shrink: Option<&Shrink>) -> String {
    let mut a = alert.clone();
    let mut notes = Vec::new();
    if let Some(s) = shrink {
        // The last level also bounds the names, so that it always fits.
        if s.errors == 0 {
            a.dataset = cut(&a.dataset, s.field);
            a.object = cut(&a.object, s.field);
            a.quarantine = a.quarantine.as_deref().map(|q| cut(q, s.field));
        }
        if a.reason.len() > s.reason {
            notes.push(format!("the reason is cut to {} of its {} bytes", s.reason, alert.reason.len()));
            a.reason = cut(&a.reason, s.reason);
        }
        if a.row_errors.len() > s.errors {
            notes.push(format!("{} of {} row errors shown", s.errors, alert.row_errors.len()));
            a.row_errors.truncate(s.errors);
        }
        let mut cut_fields = false;
        for e in &mut a.row_errors {
            for f in [e.field.as_mut(), e.value.as_mut(), Some(&mut e.message)].into_iter().flatten() {
                if f.len() > s.field {
                    *f = cut(f, s.field);
                    cut_fields = true;
                }
            }
        }
        if cut_fields {
            notes.push(format!("row error texts cut to {} bytes", s.field));
        }
    }
    let truncated = !notes.is_empty();
    let mut description = a.slack_text();
    if truncated {
        description.push_str(&format!(
            "\n_(shortened to fit SNS's 256 KB message limit: {}; the quarantine and `glueless status` have the rest)_",
            notes.join(", ")
        ));
    }
    let state = a.state.as_str();
    let mut context = serde_json::Map::new();
    let mut put = |k: &str, v: String| {
        context.insert(k.to_string(), serde_json::Value::String(v));
    };
    put("dataset", a.dataset.clone());
    put("object", a.object.clone());
    put("state", state.to_string());
    put("reason", a.reason.clone());
    put("attempts", a.attempts.to_string());
    if let Some(n) = a.rows_read {
        put("rows_read", n.to_string());
    }
    if let Some(n) = a.rows_rejected {
        put("rows_rejected", n.to_string());
    }
    put("row_errors", serde_json::to_string(&a.row_errors).unwrap_or_else(|_| "[]".into()));
    if let Some(q) = &a.quarantine {
        put("quarantine", q.clone());
    }
    put("truncated", truncated.to_string());
    let mut related = vec![serde_json::Value::String(a.object.clone())];
    if let Some(q) = &a.quarantine {
        related.push(serde_json::Value::String(q.clone()));
    }
    let title = format!(":rotating_light: glueless: {state} file in dataset {}", cut(&a.dataset, 200));
    serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": description,
            "keywords": ["glueless", state, cut(&a.dataset, 200)],
        },
        "metadata": {
            "summary": subject(alert),
            "eventType": format!("glueless.file.{state}"),
            "relatedResources": related,
            "additionalContext": context,
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::FileState;
    use glueless_engine::job::ReportError;

    fn alert() -> Alert {
        Alert {
            dataset: "sales".into(),
            object: "s3://lake/landing/sales/a.csv".into(),
            state: FileState::Rejected,
            reason: "2 rows rejected".into(),
            attempts: 1,
            rows_read: Some(10),
            rows_rejected: Some(2),
            row_errors: vec![ReportError {
                line: 4,
                row: 3,
                field: Some("qty".into()),
                rule: "type",
                value: Some("x".into()),
                message: "not an integer".into(),
            }],
            quarantine: None,
        }
    }

    #[test]
    fn the_subject_is_printable_ascii_and_short() {
        let mut a = alert();
        a.object = format!("s3://lake/landing/sales/ünïcode\n{}.csv", "x".repeat(200));
        let s = subject(&a);
        assert!(s.len() <= SUBJECT_MAX && s.ends_with("..."), "{s}");
        assert!(s.chars().all(|c| (' '..='~').contains(&c)), "{s}");
        // The line break is written as `\n` (the subject is inert), the rest made ASCII.
        assert!(s.starts_with("glueless: sales REJECTED (s3://lake/landing/sales/?n?code\\nx"), "{s}");
    }

    /// Issue 11: Chatbot renders the description in Slack, so data must not mention or link.
    #[test]
    fn the_description_is_escaped_for_slack() {
        let mut a = alert();
        a.object = "s3://lake/landing/sales/<!channel>&<http://evil|click>.csv".into();
        let v: serde_json::Value = serde_json::from_str(&message(&a)).unwrap();
        let text = v["content"]["description"].as_str().unwrap();
        assert!(
            !text.contains(['<', '>']) && text.contains("&lt;!channel&gt;&amp;&lt;http://evil|click&gt;"),
            "{text}"
        );
        assert_eq!(v["metadata"]["additionalContext"]["object"], a.object.as_str(), "machines get the key as it is");
    }

    #[test]
    fn the_region_comes_from_the_arn() {
        assert_eq!(arn_region("arn:aws:sns:eu-west-1:123456789012:alerts"), Some("eu-west-1"));
        assert_eq!(arn_region("alerts"), None);
    }

    #[test]
    fn a_huge_alert_is_cut_to_fit_and_says_so() {
        let mut a = alert();
        a.reason = "é".repeat(300_000);
        a.row_errors = vec![a.row_errors[0].clone(); 5000];
        let m = message(&a);
        assert!(m.len() <= BODY_MAX, "{}", m.len());
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        let ctx = &v["metadata"]["additionalContext"];
        assert_eq!(ctx["truncated"], "true");
        let errors: Vec<serde_json::Value> = serde_json::from_str(ctx["row_errors"].as_str().unwrap()).unwrap();
        assert_eq!(errors.len(), 100);
        let text = v["content"]["description"].as_str().unwrap();
        assert!(
            text.contains("100 of 5000 row errors shown") && text.contains("256 KB"),
            "{}",
            &text[text.len() - 300..]
        );
    }
}
