//! Alerts without a cloud: a Slack-compatible webhook ([`WebhookAlerts`]) or the log
//! ([`LogAlerts`]). SNS alerts are in [`super::aws`].

pub mod log;
pub mod webhook;

pub use log::LogAlerts;
pub use webhook::WebhookAlerts;
