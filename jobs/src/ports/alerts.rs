//! The alerts port: tell a person that a file needs them (REJECTED, DEAD).

use super::FileState;
use glueless_engine::job::ReportError;
use serde::Serialize;

/// What a person needs to act on one file.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub dataset: String,
    pub object: String,
    pub state: FileState,
    pub reason: String,
    pub attempts: u32,
    pub rows_read: Option<u64>,
    pub rows_rejected: Option<u64>,
    /// The first few row errors, when there were any.
    pub row_errors: Vec<ReportError>,
    /// Where the rejected rows are, when they were quarantined.
    pub quarantine: Option<String>,
}

impl Alert {
    /// A short subject line.
    pub fn subject(&self) -> String {
        format!("glueless: {} {} ({})", self.dataset, self.state, self.object)
    }

    /// A few lines of plain text (also what Slack shows).
    pub fn text(&self) -> String {
        let mut s = format!(
            "*{}* file `{}` of dataset `{}` after {} attempt(s)\nreason: {}",
            self.state, self.object, self.dataset, self.attempts, self.reason
        );
        if let (Some(read), Some(rej)) = (self.rows_read, self.rows_rejected) {
            s.push_str(&format!("\nrows: {read} read, {rej} rejected"));
        }
        for e in &self.row_errors {
            s.push_str(&format!(
                "\n  line {}: {} {}: {}",
                e.line,
                e.field.as_deref().unwrap_or("-"),
                e.rule,
                e.message
            ));
        }
        if let Some(q) = &self.quarantine {
            s.push_str(&format!("\nrejected rows: {q}"));
        }
        s.push_str(&format!("\nto retry: glueless replay --url '{}'", self.object));
        s
    }
}

/// An alert that could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("cannot deliver the alert through {channel}: {message}")]
pub struct AlertError {
    pub channel: String,
    pub message: String,
}

/// Delivers alerts.
#[async_trait::async_trait]
pub trait Alerts: Send + Sync {
    async fn send(&self, alert: &Alert) -> Result<(), AlertError>;
}
