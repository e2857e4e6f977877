//! Adapters: one module per technology and port (`<Tech><Port>`).

#[cfg(feature = "aws")]
pub mod dynamodb_state;
#[cfg(feature = "aws")]
pub mod ecs_launcher;
pub mod in_process_launcher;
pub mod log_alerts;
#[cfg(feature = "postgres")]
pub mod postgres_warehouse;
#[cfg(feature = "redshift")]
pub mod redshift_data;
pub mod redshift_sql;
#[cfg(feature = "aws")]
pub mod sns_alerts;
pub mod sqlite_state;
pub mod sqlite_warehouse;
#[cfg(feature = "aws")]
pub mod sqs_queue;
pub mod staged_parquet;
pub mod webhook_alerts;

#[cfg(feature = "aws")]
pub use dynamodb_state::DynamoDbStateStore;
#[cfg(feature = "aws")]
pub use ecs_launcher::EcsLauncher;
pub use in_process_launcher::InProcessLauncher;
pub use log_alerts::LogAlerts;
#[cfg(feature = "postgres")]
pub use postgres_warehouse::PostgresWarehouse;
#[cfg(feature = "redshift")]
pub use redshift_data::RedshiftDataWarehouse;
#[cfg(feature = "aws")]
pub use sns_alerts::SnsAlerts;
pub use sqlite_state::SqliteStateStore;
pub use sqlite_warehouse::SqliteWarehouse;
#[cfg(feature = "aws")]
pub use sqs_queue::SqsQueue;
pub use webhook_alerts::WebhookAlerts;

/// Runs `f` again while SQLite says the file is busy, for up to `limit`. Switching a new file
/// to WAL needs an exclusive lock and SQLite does not wait for it through the busy timeout, so
/// two processes opening one file at the same moment would otherwise fail.
pub(crate) fn sqlite_busy_retry<T>(
    limit: std::time::Duration,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let started = std::time::Instant::now();
    loop {
        match f() {
            Err(e) if sqlite_is_busy(&e) && started.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(10 + rand::random_range(0..40)));
            }
            r => return r,
        }
    }
}

/// SQLite answered that another connection holds the lock: worth another try.
pub(crate) fn sqlite_is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Whether an AWS SDK call is worth another try: a timeout, a network failure, an unreadable
/// response, a 5xx, or one of the service's `throttle_codes`.
#[cfg(feature = "aws")]
pub(crate) fn aws_retryable<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(
    e: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    throttle_codes: &[&str],
) -> bool {
    use aws_sdk_dynamodb::error::SdkError;
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(s) => {
            s.raw().status().as_u16() >= 500 || s.err().code().is_some_and(|c| throttle_codes.contains(&c))
        }
        _ => false,
    }
}

/// The usual AWS environment (region, credentials, `AWS_ENDPOINT_URL`…) with the timeouts every
/// glueless AWS client uses: 5 s to connect, 10 s per attempt.
#[cfg(feature = "aws")]
pub(crate) fn aws_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .operation_attempt_timeout(std::time::Duration::from_secs(10))
            .build(),
    )
}
