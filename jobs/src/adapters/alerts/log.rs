//! The `Alerts` port when no webhook is configured: one line on stderr per alert.

use crate::ports::{Alert, AlertError, Alerts};

pub struct LogAlerts;

#[async_trait::async_trait]
impl Alerts for LogAlerts {
    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        eprintln!("glueless: ALERT {}\n{}", alert.subject(), alert.text());
        Ok(())
    }
}
