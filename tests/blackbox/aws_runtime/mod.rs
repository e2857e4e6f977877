//! The AWS runtime end to end against the local AWS emulator. Each test deploys its own copy of
//! `infra/template.yaml` into the emulator (through `infra/local_stack.py`, which expands the
//! SAM transform and says what the emulator cannot do), so the template and the code cannot
//! drift apart. Then: a CSV put into S3 → the bucket's EventBridge event → the rule → SQS →
//! `glueless worker` (a real process) or the Lambda handler (in-process, with the batch SQS
//! handed out; or the `glueless-lambda` binary behind a stand-in Runtime API, [`runtime_api`])
//! → Parquet staging in S3 → the warehouse → the file's state in DynamoDB.

mod bootstrap;
pub(crate) mod ecs;
pub mod lambda;
#[cfg(all(feature = "redshift", feature = "postgres"))]
mod redshift;
pub mod runtime_api;
pub(crate) mod worker;

use crate::support::*;
use aws_sdk_sqs::Client as Sqs;
use glueless_jobs::adapters::DynamoDbStateStore;
use glueless_jobs::ports::{FileKey, FileRecord, Filter, StateStore};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::time::{Duration, Instant};

/// The resources of one deployed stack (the template's outputs).
pub struct Stack {
    pub bucket: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub table: String,
    pub topic: String,
    pub ecs_cluster: String,
    pub task_definition: String,
    pub dashboard: String,
}

/// A unique name for `test`'s stack.
fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("gl-{}-{}-{nanos}", test.replace('_', "-"), std::process::id())
}

/// The Python that `scripts/test` installed the emulator into (it has boto3 and the SAM translator).
pub fn python() -> String {
    std::env::var("GLUELESS_TEST_PYTHON").expect(
        "GLUELESS_TEST_PYTHON is not set: run the tests with scripts/test, which installs the local AWS emulator",
    )
}

impl Stack {
    /// Deploys `infra/template.yaml` for `test` with the template parameters `params`.
    pub fn deploy(test: &str, params: &[(&str, &str)]) -> Stack {
        let mut cmd = std::process::Command::new(python());
        cmd.arg(repo().join("infra/local_stack.py")).args([
            "deploy",
            "--endpoint",
            &aws_endpoint(),
            "--stack",
            &unique(test),
        ]);
        for (k, v) in params {
            cmd.args(["--param", &format!("{k}={v}")]);
        }
        let out = cmd.output().expect("python runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "local_stack.py deploy failed:\n{stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("deploy prints one JSON object ({e}):\n{}", String::from_utf8_lossy(&out.stdout))
        });
        let get = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("output {k} missing in {v}")).to_string();
        Stack {
            bucket: get("LandingBucketName"),
            queue_url: get("QueueUrl"),
            queue_arn: get("QueueArn"),
            dlq_url: get("DeadLetterQueueUrl"),
            table: get("StateTableName"),
            topic: get("AlertTopicArn"),
            ecs_cluster: get("EcsClusterName"),
            task_definition: get("TaskDefinitionArn"),
            dashboard: get("DashboardName"),
        }
    }

    pub fn lake(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Puts an object, as a producer would; returns its ETag (without quotes).
    pub async fn put(&self, key: &str, body: &str) -> String {
        let s3 = emulator_bucket(&aws_endpoint(), &self.bucket).expect("s3 client");
        let r = s3.put(&ObjPath::from(key), body.as_bytes().to_vec().into()).await.expect("put object");
        r.e_tag.expect("an ETag").trim_matches('"').to_string()
    }

    /// Keys under `prefix`.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        let s3 = emulator_bucket(&aws_endpoint(), &self.bucket).expect("s3 client");
        let metas: Vec<_> = s3.list(Some(&ObjPath::from(prefix))).try_collect().await.expect("list");
        metas.into_iter().map(|m| m.location.to_string()).collect()
    }

    pub async fn state(&self) -> DynamoDbStateStore {
        DynamoDbStateStore::connect(&format!("dynamodb://{}", self.table)).await.expect("state store")
    }

    pub async fn record(&self, key: &str, version: &str) -> FileRecord {
        self.try_record(key, version).await.unwrap_or_else(|| panic!("{key} is not in the state store"))
    }

    pub async fn try_record(&self, key: &str, version: &str) -> Option<FileRecord> {
        let k = FileKey { url: self.url(key), version: version.to_string() };
        self.state().await.get(&k).await.expect("state store answers")
    }

    pub async fn records(&self) -> Vec<FileRecord> {
        self.state().await.list(&Filter::default()).await.expect("state store answers")
    }

    /// The settings every runtime gets, as `GLUELESS__…` variables.
    pub fn env(&self, contracts: &std::path::Path, warehouse: &str) -> Vec<(String, String)> {
        [
            ("GLUELESS__LAKE__URL", self.lake()),
            ("GLUELESS__CONTRACTS__DIR", path_str(contracts).to_string()),
            ("GLUELESS__STATE__URL", format!("dynamodb://{}", self.table)),
            ("GLUELESS__WAREHOUSE__URL", warehouse.to_string()),
            ("GLUELESS__ALERTS__SNS_TOPIC_ARN", self.topic.clone()),
            ("GLUELESS__QUEUE__URL", self.queue_url.clone()),
            ("GLUELESS__QUEUE__WAIT_SECS", "2".into()),
            ("GLUELESS__QUEUE__VISIBILITY_SECS", "30".into()),
            ("GLUELESS__RUN__RETRY_BASE_SECS", "0".into()),
            ("GLUELESS__RUN__RETRY_MAX_SECS", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// [`Stack::env`] with the queue's visibility timeout and the claims' lease at 2 s, so that
    /// a dead worker's messages come back and its claims lapse within a test (deploy the stack
    /// with `QueueVisibilityTimeoutSeconds` = 2 as well).
    pub fn env_short_lease(&self, contracts: &std::path::Path, warehouse: &str) -> Vec<(String, String)> {
        let mut env = self.env(contracts, warehouse);
        env.retain(|(k, _)| k != "GLUELESS__QUEUE__VISIBILITY_SECS");
        env.push(("GLUELESS__QUEUE__VISIBILITY_SECS".into(), "2".into()));
        env.push(("GLUELESS__RUN__LEASE_SECS".into(), "2".into()));
        env
    }
}

pub fn sqs() -> Sqs {
    Sqs::new(&local_sdk_config(&aws_endpoint()))
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Receives what the queue holds (waiting up to `wait` for the first message), hiding each
/// message for `visibility_secs`.
pub async fn receive(queue_url: &str, wait: Duration, visibility_secs: i32) -> Vec<aws_sdk_sqs::types::Message> {
    let started = Instant::now();
    let mut got = Vec::new();
    loop {
        let out = sqs()
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility_secs)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let n = out.messages().len();
        got.extend(out.messages().iter().cloned());
        if (n == 0 && !got.is_empty()) || started.elapsed() > wait {
            return got;
        }
    }
}

/// Messages on the queue, visible or in flight.
pub async fn queue_depth(queue_url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs()
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let attrs = out.attributes().cloned().unwrap_or_default();
    [A::ApproximateNumberOfMessages, A::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .map(|a| attrs.get(a).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum()
}

/// A folder with the `sales` contract.
pub fn contracts() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sales.toml"), crate::pipeline::CONTRACT).unwrap();
    dir
}

/// A `sales` file: `good` valid rows with ids from `first`, then `bad` rows breaking `qty >= 1`.
pub fn sales(first: u32, good: u32, bad: u32) -> String {
    let mut s = String::from(crate::pipeline::HEADER);
    for i in 0..good + bad {
        let qty = if i < good { 2 } else { 0 };
        s.push_str(&format!("{},2026-11-20T10:00:{:02}Z,{qty},9.99\n", first + i, i % 60));
    }
    s
}
