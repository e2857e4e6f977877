//! AWS through its SDKs: the DynamoDB state store, the SQS queue, the ECS launcher and SNS
//! alerts (feature `aws`), and the one SDK configuration every glueless AWS client starts from,
//! the Redshift Data API warehouse's too (feature `redshift`).

#[cfg(feature = "aws")]
pub mod dynamodb_state;
#[cfg(feature = "aws")]
pub mod ecs_launcher;
#[cfg(feature = "aws")]
pub mod sns_alerts;
#[cfg(feature = "aws")]
pub mod sqs_queue;

#[cfg(feature = "aws")]
pub use dynamodb_state::DynamoDbStateStore;
#[cfg(feature = "aws")]
pub use ecs_launcher::EcsLauncher;
#[cfg(feature = "aws")]
pub use sns_alerts::SnsAlerts;
#[cfg(feature = "aws")]
pub use sqs_queue::SqsQueue;

/// Whether an AWS SDK call is worth another try: a timeout, a network failure, an unreadable
/// response, a 5xx, or one of the service's `throttle_codes`.
#[cfg(feature = "aws")]
pub(crate) fn retryable<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(
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
pub(crate) fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .operation_attempt_timeout(std::time::Duration::from_secs(10))
            .build(),
    )
}

/// For unit tests of the adapters' errors: a real SDK configuration whose endpoint is a
/// loopback port nobody listens on, without retries, so every call fails at once with a
/// dispatch failure (a connection refused).
#[cfg(all(test, feature = "aws"))]
pub(crate) async fn refused_config() -> aws_config::SdkConfig {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config_loader()
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// For unit tests: `e`'s source is the SDK's error, and its words are in `e`'s message.
#[cfg(all(test, feature = "aws"))]
pub(crate) fn assert_sdk_source(e: &(dyn std::error::Error + 'static)) {
    use aws_sdk_sqs::error::DisplayErrorContext;
    let source = e.source().unwrap_or_else(|| panic!("no source: {e}"));
    let sdk = DisplayErrorContext(source).to_string();
    assert!(sdk.contains("dispatch failure"), "{sdk}");
    assert!(e.to_string().contains(&sdk), "{e} does not say {sdk}");
}
