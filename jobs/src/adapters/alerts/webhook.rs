//! The `Alerts` port on a Slack-compatible incoming webhook: a JSON POST whose `text` Slack
//! shows as the message ([`Alert::slack_text`]: no mention, link or formatting comes from
//! data); the structured alert rides along under `glueless` for other receivers. The URL's
//! path is Slack's secret token: messages show only its scheme and host.

use crate::ports::{Alert, AlertError, Alerts};
use std::error::Error as _;
use std::time::Duration;

pub struct WebhookAlerts {
    url: String,
    client: reqwest::Client,
}

impl WebhookAlerts {
    pub fn new(url: &str) -> WebhookAlerts {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        WebhookAlerts { url: url.to_string(), client }
    }

    /// The URL without its path, which for Slack holds the secret token.
    fn channel(&self) -> String {
        format!("webhook {}", crate::redact::url(&self.url))
    }
}

#[async_trait::async_trait]
impl Alerts for WebhookAlerts {
    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        let body = serde_json::json!({ "text": alert.slack_text(), "glueless": alert });
        let err = |message: String| AlertError { channel: self.channel(), message };
        let mut last = String::new();
        // Two tries: a webhook that hiccups once should not lose the alert.
        for attempt in 0..2 {
            match self.client.post(&self.url).json(&body).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = crate::redact::text(&chain(&e.without_url())).into_owned(),
            }
            if attempt == 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Err(err(format!("{last}; check [alerts] webhook_url")))
    }
}

/// The error with its causes (reqwest's own text says only "error sending request").
fn chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}
