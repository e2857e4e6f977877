//! The `Queue` port on Amazon SQS (feature `aws`): `glueless worker` long-polls it, and the
//! Lambda function uses it to delay the redelivery of a file whose retry is not due yet.
//!
//! Deletes and visibility changes go in batches of ten (SQS's limit per call). Permissions:
//! `sqs:ReceiveMessage`, `sqs:DeleteMessage`, `sqs:ChangeMessageVisibility` on the queue
//! (`sqs:SendMessage` for `glueless replay`) (and
//! `sqs:GetQueueUrl` for [`SqsQueue::from_arn`]).

use crate::ports::{Queue, QueueError, QueueMessage};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
};

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    /// The queue at `url`, with the usual AWS environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn connect(url: &str) -> SqsQueue {
        let conf = super::config_loader().load().await;
        SqsQueue { client: Client::new(&conf), url: url.to_string() }
    }

    pub fn with_client(client: Client, url: &str) -> SqsQueue {
        SqsQueue { client, url: url.to_string() }
    }

    /// The queue named by an ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`, as in a Lambda SQS
    /// record's `eventSourceARN`), looked up with `GetQueueUrl`.
    pub async fn from_arn(arn: &str) -> Result<SqsQueue, QueueError> {
        let parts: Vec<&str> = arn.split(':').collect();
        let err = |message: String, source| QueueError { queue: arn.to_string(), message, source };
        let [_, _, "sqs", _region, account, name] = parts.as_slice() else {
            return Err(err("not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)".into(), None));
        };
        let conf = super::config_loader().load().await;
        let client = Client::new(&conf);
        let out = client
            .get_queue_url()
            .queue_name(*name)
            .queue_owner_aws_account_id(*account)
            .send()
            .await
            .map_err(|e| err(format!("GetQueueUrl failed: {}", DisplayErrorContext(&e)), Some(e.into())))?;
        let url = out.queue_url().ok_or_else(|| err("GetQueueUrl answered without a URL".into(), None))?;
        Ok(SqsQueue::with_client(client, url))
    }

    fn error(&self, what: &str, e: impl std::error::Error + Send + Sync + 'static) -> QueueError {
        let message = format!("{what} failed: {}", DisplayErrorContext(&e));
        QueueError { queue: self.url.clone(), message, source: Some(e.into()) }
    }
}

#[async_trait::async_trait]
impl Queue for SqsQueue {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn receive(&self, max: u32, wait_secs: u32, visibility_secs: u32) -> Result<Vec<QueueMessage>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait_secs.min(20) as i32)
            .visibility_timeout(visibility_secs as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.error("ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(QueueMessage {
                    id: m.message_id()?.to_string(),
                    receipt: m.receipt_handle()?.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receive_count,
                })
            })
            .collect())
    }

    async fn delete(&self, messages: &[QueueMessage]) -> Result<Vec<String>, QueueError> {
        let mut failed = Vec::new();
        for chunk in messages.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(&m.receipt).build().ok()
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error("DeleteMessageBatch", e))?;
            for f in out.failed() {
                if let Some(m) = f.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                    failed.push(m.id.clone());
                }
            }
        }
        Ok(failed)
    }

    async fn send(&self, body: &str) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| self.error("SendMessage", e))?;
        Ok(())
    }

    async fn set_visibility(&self, messages: &[QueueMessage], secs: u32) -> Result<(), QueueError> {
        for chunk in messages.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt)
                        .visibility_timeout(secs.min(43_200) as i32)
                        .build()
                        .ok()
                })
                .collect();
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.error("ChangeMessageVisibilityBatch", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: the SDK's error is the source of a queue error, not only words in it.
    #[tokio::test]
    async fn a_failed_call_keeps_the_sdk_error() {
        let conf = super::super::refused_config().await;
        let q = SqsQueue::with_client(Client::new(&conf), "http://127.0.0.1/000000000000/q");
        let e = q.send("{}").await.expect_err("nobody listens");
        assert!(e.message.starts_with("SendMessage failed: "), "{e}");
        super::super::assert_sdk_source(&e);
    }
}
