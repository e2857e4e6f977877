//! The queue port: where object events wait for a dispatcher (`glueless worker`). The Lambda
//! function does not need it to receive (the SQS event source does that), only to delay a
//! retry.

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    /// The handle of this receive: delete and visibility changes need it.
    pub receipt: String,
    pub body: String,
    /// How often the queue has handed it out, this time included.
    pub receive_count: u32,
}

/// A queue that could not answer.
#[derive(Debug, thiserror::Error)]
#[error("queue {queue}: {message}")]
pub struct QueueError {
    pub queue: String,
    pub message: String,
    /// The SDK's error, when there is one (its words are in `message` too).
    #[source]
    pub source: Option<super::ErrorSource>,
}

#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    /// Where the queue is, for messages.
    fn describe(&self) -> String;

    /// Waits up to `wait_secs` for up to `max` messages, hidden from other consumers for
    /// `visibility_secs`.
    async fn receive(&self, max: u32, wait_secs: u32, visibility_secs: u32) -> Result<Vec<QueueMessage>, QueueError>;

    /// Deletes the messages (they are done); returns the ids that could not be deleted (they
    /// come back after their visibility timeout, and are recognised as duplicates).
    async fn delete(&self, messages: &[QueueMessage]) -> Result<Vec<String>, QueueError>;

    /// Puts a message on the queue (`glueless replay` re-drives a file this way).
    async fn send(&self, body: &str) -> Result<(), QueueError>;

    /// Hides the messages for `secs` from now: longer while they are in work, or until a
    /// retry is due (0 makes them visible at once).
    async fn set_visibility(&self, messages: &[QueueMessage], secs: u32) -> Result<(), QueueError>;
}
