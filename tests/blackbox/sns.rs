//! The SNS alerts adapter against the local AWS emulator: each test makes its own topic and
//! a local HTTP subscriber, sends an alert through `SnsAlerts`, and checks what a subscriber
//! (AWS Chatbot, or a program) receives.

use crate::support::{HttpReceiver, local_sdk_config};
use aws_sdk_sns::Client;
use aws_sdk_sns::config::Credentials;
use glueless_engine::job::ReportError;
use glueless_jobs::adapters::SnsAlerts;
use glueless_jobs::ports::{Alert, Alerts, FileState};
use serde_json::Value;
use std::time::{Duration, Instant};

pub(crate) fn client_with(credentials: Credentials) -> Client {
    let conf = aws_sdk_sns::config::Builder::from(&local_sdk_config(&crate::support::aws_endpoint()))
        .credentials_provider(credentials)
        .build();
    Client::from_conf(conf)
}

pub(crate) fn client() -> Client {
    Client::new(&local_sdk_config(&crate::support::aws_endpoint()))
}

fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("glueless-{test}-{}-{nanos}", std::process::id())
}

/// A fresh topic; returns its ARN.
async fn topic(c: &Client, test: &str) -> String {
    let made = c.create_topic().name(unique(test)).send().await.expect("create topic");
    made.topic_arn().expect("topic ARN").to_string()
}

/// A local HTTP endpoint that answers 200 to everything and records the request bodies.
pub(crate) struct Subscriber {
    url: String,
    http: HttpReceiver,
}

impl Subscriber {
    pub(crate) fn start() -> Subscriber {
        let http = HttpReceiver::start();
        Subscriber { url: format!("http://127.0.0.1:{}/alerts", http.port), http }
    }

    /// The JSON bodies received so far whose `Type` is `kind`.
    pub(crate) fn received(&self, kind: &str) -> Vec<Value> {
        self.http
            .bodies()
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .filter(|v| v["Type"] == kind)
            .collect()
    }

    /// Waits up to 10 s for `n` deliveries of `kind`.
    pub(crate) async fn wait_for(&self, kind: &str, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let got = self.received(kind);
            if got.len() >= n || started.elapsed() > Duration::from_secs(10) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Subscribes this endpoint to `topic` (protocol http), with an optional filter policy on
    /// the message attributes, and confirms the subscription when SNS asks for it.
    pub(crate) async fn subscribe(&self, c: &Client, topic: &str, filter: Option<&str>) {
        let mut req = c.subscribe().topic_arn(topic).protocol("http").endpoint(&self.url).return_subscription_arn(true);
        if let Some(f) = filter {
            req = req.attributes("FilterPolicy", f);
        }
        let sub = req.send().await.expect("subscribe");
        let arn = sub.subscription_arn().unwrap_or_default().to_string();
        let pending = if arn.is_empty() || arn == "pending confirmation" {
            true
        } else {
            let attrs = c.get_subscription_attributes().subscription_arn(&arn).send().await.expect("attributes");
            attrs.attributes().and_then(|a| a.get("PendingConfirmation")).is_some_and(|p| p == "true")
        };
        if pending {
            let asked = self.wait_for("SubscriptionConfirmation", 1).await;
            let ask = asked.iter().find(|v| v["TopicArn"] == topic).expect("a SubscriptionConfirmation");
            c.confirm_subscription()
                .topic_arn(topic)
                .token(ask["Token"].as_str().expect("a token"))
                .send()
                .await
                .expect("confirm subscription");
        }
    }
}

fn row_error(line: u64, message: &str) -> ReportError {
    ReportError {
        line,
        row: line - 1,
        field: Some("qty".into()),
        rule: "type",
        value: Some("x".into()),
        message: message.into(),
    }
}

fn alert(state: FileState) -> Alert {
    Alert {
        dataset: "sales".into(),
        object: "s3://lake/landing/sales/2026-11-27.csv".into(),
        state,
        reason: "2 of 10 rows rejected (max_rejected_rows = 0)".into(),
        attempts: 1,
        rows_read: Some(10),
        rows_rejected: Some(2),
        row_errors: vec![row_error(4, "not an integer"), row_error(9, "not an integer")],
        quarantine: Some("s3://lake/quarantine/sales/2026-11-27.csv".into()),
    }
}

/// The notification's `Message`, parsed.
fn message(notification: &Value) -> Value {
    serde_json::from_str(notification["Message"].as_str().expect("a Message")).expect("the Message is JSON")
}

#[tokio::test]
async fn an_alert_reaches_a_subscriber_in_chatbot_format_with_the_structured_alert() {
    let c = client();
    let topic = topic(&c, "alert").await;
    let sub = Subscriber::start();
    sub.subscribe(&c, &topic, None).await;
    let a = alert(FileState::Rejected);
    SnsAlerts::with_client(c.clone(), &topic).send(&a).await.expect("published");

    let got = sub.wait_for("Notification", 1).await;
    assert_eq!(got.len(), 1, "one notification: {got:?}");
    let n = &got[0];
    assert_eq!(n["TopicArn"], topic.as_str());
    assert_eq!(n["Subject"], a.subject().as_str());
    let m = message(n);
    // AWS Chatbot's custom notification shape.
    assert_eq!(m["version"], "1.0");
    assert_eq!(m["source"], "custom");
    assert_eq!(m["content"]["textType"], "client-markdown");
    let title = m["content"]["title"].as_str().unwrap();
    assert!(title.contains("REJECTED") && title.contains("sales"), "{title}");
    assert_eq!(m["content"]["description"], a.slack_text().as_str());
    // The structured alert, for machines.
    let ctx = &m["metadata"]["additionalContext"];
    assert_eq!(ctx["dataset"], "sales");
    assert_eq!(ctx["object"], a.object.as_str());
    assert_eq!(ctx["state"], "REJECTED");
    assert_eq!(ctx["reason"], a.reason.as_str());
    assert_eq!(ctx["attempts"], "1");
    assert_eq!(ctx["rows_read"], "10");
    assert_eq!(ctx["rows_rejected"], "2");
    assert_eq!(ctx["quarantine"], "s3://lake/quarantine/sales/2026-11-27.csv");
    assert_eq!(ctx["truncated"], "false");
    let errors: Value = serde_json::from_str(ctx["row_errors"].as_str().unwrap()).unwrap();
    assert_eq!(errors, serde_json::to_value(&a.row_errors).unwrap());
    assert_eq!(errors[1]["line"], 9);
    assert_eq!(errors[1]["field"], "qty");
    assert_eq!(m["metadata"]["eventType"], "glueless.file.REJECTED");
    assert_eq!(m["metadata"]["relatedResources"][0], a.object.as_str());
    // Every additionalContext value is a string, as Chatbot's schema wants.
    assert!(ctx.as_object().unwrap().values().all(Value::is_string), "{ctx}");
}

#[tokio::test]
async fn subscriptions_can_filter_alerts_on_dataset_and_state() {
    let c = client();
    let topic = topic(&c, "filter").await;
    let dead_only = Subscriber::start();
    dead_only.subscribe(&c, &topic, Some(r#"{"state": ["DEAD"]}"#)).await;
    let orders_only = Subscriber::start();
    orders_only.subscribe(&c, &topic, Some(r#"{"dataset": ["orders"]}"#)).await;
    let sales_rejected = Subscriber::start();
    sales_rejected.subscribe(&c, &topic, Some(r#"{"dataset": ["sales"], "state": ["REJECTED"]}"#)).await;
    let alerts = SnsAlerts::with_client(c.clone(), &topic);

    alerts.send(&alert(FileState::Rejected)).await.expect("published");
    let got = sales_rejected.wait_for("Notification", 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(message(&got[0])["metadata"]["additionalContext"]["state"], "REJECTED");

    let mut dead = alert(FileState::Dead);
    dead.reason = "gave up after 3 attempts: relation fact_sales is a view".into();
    dead.attempts = 3;
    alerts.send(&dead).await.expect("published");
    let got = dead_only.wait_for("Notification", 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(message(&got[0])["metadata"]["additionalContext"]["reason"], dead.reason.as_str());

    // Give stray deliveries a moment, then check nobody got what they filtered out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dead_only.received("Notification").len(), 1);
    assert_eq!(orders_only.received("Notification").len(), 0);
    assert_eq!(sales_rejected.received("Notification").len(), 1);
}

#[tokio::test]
async fn a_long_reason_and_many_row_errors_still_publish_under_the_size_limit() {
    let c = client();
    let topic = topic(&c, "big").await;
    let sub = Subscriber::start();
    sub.subscribe(&c, &topic, None).await;
    let mut a = alert(FileState::Dead);
    a.reason = format!("ERROR: {}", "the warehouse said no. ".repeat(20_000));
    a.row_errors = (2..10_002).map(|line| row_error(line, &"ü".repeat(600))).collect();
    a.object = format!("s3://lake/landing/sales/{}-naïve\tname.csv", "long-".repeat(40));
    SnsAlerts::with_client(c.clone(), &topic).send(&a).await.expect("published despite the size");

    let got = sub.wait_for("Notification", 1).await;
    assert_eq!(got.len(), 1);
    let n = &got[0];
    let raw = n["Message"].as_str().unwrap();
    assert!(raw.len() < 256 * 1024, "{} bytes", raw.len());
    let subject = n["Subject"].as_str().unwrap();
    assert!(subject.len() <= 100, "{subject}");
    assert!(subject.chars().all(|ch| (' '..='~').contains(&ch)), "{subject}");
    assert!(subject.starts_with("glueless: sales DEAD (s3://lake/landing/sales/long-"), "{subject}");

    let m = message(n);
    let ctx = &m["metadata"]["additionalContext"];
    assert_eq!(ctx["truncated"], "true");
    assert_eq!(ctx["object"], a.object.as_str(), "the object is short enough to stay whole");
    let reason = ctx["reason"].as_str().unwrap();
    assert!(reason.starts_with("ERROR: the warehouse said no.") && reason.len() < a.reason.len(), "{}", reason.len());
    let errors: Vec<Value> = serde_json::from_str(ctx["row_errors"].as_str().unwrap()).unwrap();
    assert!(!errors.is_empty() && errors.len() < a.row_errors.len(), "{}", errors.len());
    assert_eq!(errors[0]["line"], 2, "the first row errors are kept");
    let text = m["content"]["description"].as_str().unwrap();
    let tail = text.char_indices().rev().nth(400).map_or(text, |(i, _)| &text[i..]);
    assert!(text.contains("256 KB") && text.contains("of 10000 row errors shown"), "{tail}");
}

#[tokio::test]
async fn publishing_to_a_missing_topic_names_the_topic_and_what_to_check() {
    let secret = "sns-test-secret-key-do-not-print";
    let c = client_with(Credentials::new("AKIASNSTESTKEYID", secret, Some("sns-session-token".into()), None, "test"));
    let missing = format!("arn:aws:sns:us-east-1:123456789012:{}", unique("missing"));
    let started = Instant::now();
    let err = SnsAlerts::with_client(c, &missing).send(&alert(FileState::Dead)).await.expect_err("no such topic");
    let shown = err.to_string();
    assert!(shown.contains(&missing), "names the topic: {shown}");
    assert!(shown.contains("exists") && shown.contains("sns:Publish"), "says what to check: {shown}");
    for s in ["AKIASNSTESTKEYID", secret, "sns-session-token"] {
        assert!(!shown.contains(s), "no credentials in: {shown}");
    }
    assert!(started.elapsed() < Duration::from_secs(10), "a missing topic is not retried for long");
}

#[tokio::test]
async fn an_unreachable_sns_is_tried_twice_then_says_what_to_check() {
    // A port nobody listens on: every try fails to connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = aws_sdk_sns::config::Builder::from(&local_sdk_config(&format!("http://127.0.0.1:{port}")))
        .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
        .build();
    let topic = "arn:aws:sns:us-east-1:123456789012:glueless-unreachable";
    let started = Instant::now();
    let err = SnsAlerts::with_client(Client::from_conf(conf), topic).send(&alert(FileState::Dead)).await.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(topic) && shown.contains("after 2 tries"), "{shown}");
    assert!(shown.contains("network") && shown.contains("sns:Publish"), "{shown}");
    assert!(started.elapsed() >= Duration::from_millis(500), "waits before the second try");
}
