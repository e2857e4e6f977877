//! The `Alerts` port on a Slack-compatible incoming webhook: a JSON POST whose `text` Slack
//! shows as the message; the structured alert rides along under `glueless` for other receivers.

use crate::ports::{Alert, AlertError, Alerts};
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
        match url::Url::parse(&self.url) {
            Ok(u) => format!("webhook {}://{}", u.scheme(), u.host_str().unwrap_or("?")),
            Err(_) => "webhook (invalid URL)".into(),
        }
    }
}

#[async_trait::async_trait]
impl Alerts for WebhookAlerts {
    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        let body = serde_json::json!({ "text": alert.text(), "glueless": alert });
        let err = |message: String| AlertError { channel: self.channel(), message };
        let mut last = String::new();
        // Two tries: a webhook that hiccups once should not lose the alert.
        for attempt in 0..2 {
            match self.client.post(&self.url).json(&body).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.without_url().to_string(),
            }
            if attempt == 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Err(err(format!("{last}; check [alerts] webhook_url")))
    }
}
