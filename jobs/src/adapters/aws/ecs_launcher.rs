//! The `Launcher` port on Amazon ECS (`[ecs] cluster = "…"`, feature `aws`): a file above
//! `run.inline_max_bytes` runs in its own task, started with `ecs:RunTask`.
//!
//! The dispatcher claims the file first (RUNNING, route `ecs`, owner `ecs-launch:<id>`, lease
//! `ecs.start_lease_secs`), then starts the task. The container named `ecs.container` gets
//! three environment variables in its overrides, and its command (`glueless task`, the task
//! definition's) reads them:
//!
//! | variable | value |
//! | --- | --- |
//! | `GLUELESS_TASK_URL` | the object (`s3://bucket/key`) |
//! | `GLUELESS_TASK_VERSION` | its ETag: the file version the claim is for |
//! | `GLUELESS_TASK_OWNER` | the claim's owner: the task takes the claim over (renews it) as that owner |
//!
//! If the task never starts, or dies, its lease lapses and the file is claimable again: the
//! next delivery of its message, or a dispatcher's sweep, launches it again (attempts count, so
//! a file that kills every task ends DEAD with an alert).
//!
//! Networking is `awsvpc` (Fargate's only mode): `ecs.subnets`, `ecs.security_groups`
//! (comma-separated ids) and `ecs.assign_public_ip` (needed only without a NAT gateway or VPC
//! endpoints for S3, DynamoDB, ECR and CloudWatch Logs). `ecs.launch_type` is `FARGATE`, `EC2`,
//! or `FARGATE_SPOT` (then run through the capacity provider of that name).
//!
//! Permissions of the dispatcher: `ecs:RunTask` on the task definition, and `iam:PassRole` on
//! the task's task role and execution role.

use crate::ports::{ErrorSource, FileRecord, LaunchError, Launched, Launcher};
use crate::settings::EcsSettings;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::error::DisplayErrorContext;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride, KeyValuePair, LaunchType,
    NetworkConfiguration, TaskOverride,
};

/// The environment variables that name the file a task is for.
pub const TASK_URL_VAR: &str = "GLUELESS_TASK_URL";
pub const TASK_VERSION_VAR: &str = "GLUELESS_TASK_VERSION";
pub const TASK_OWNER_VAR: &str = "GLUELESS_TASK_OWNER";

/// Starts one ECS task per large file.
#[derive(Debug, Clone)]
pub struct EcsLauncher {
    client: Client,
    settings: EcsSettings,
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
}

impl EcsLauncher {
    /// A launcher with the usual AWS environment (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn connect(settings: &EcsSettings) -> EcsLauncher {
        let conf = super::config_loader().load().await;
        EcsLauncher::with_client(Client::new(&conf), settings)
    }

    pub fn with_client(client: Client, settings: &EcsSettings) -> EcsLauncher {
        EcsLauncher { client, settings: settings.clone() }
    }

    fn error(&self, file: &FileRecord, message: String, source: Option<ErrorSource>) -> LaunchError {
        LaunchError { launcher: "ecs", url: file.key.url.clone(), message, source }
    }
}

#[async_trait::async_trait]
impl Launcher for EcsLauncher {
    fn name(&self) -> &'static str {
        "ecs"
    }

    async fn launch(&self, file: &FileRecord) -> Result<Launched, LaunchError> {
        let s = &self.settings;
        let env = |name: &str, value: &str| KeyValuePair::builder().name(name).value(value).build();
        let owner = file.owner.clone().unwrap_or_default();
        let overrides = TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(&s.container)
                    .environment(env(TASK_URL_VAR, &file.key.url))
                    .environment(env(TASK_VERSION_VAR, &file.key.version))
                    .environment(env(TASK_OWNER_VAR, &owner))
                    .build(),
            )
            .build();
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(list(&s.subnets)))
            .set_security_groups(Some(list(&s.security_groups)))
            .assign_public_ip(if s.assign_public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
            .build()
            .map_err(|e| self.error(file, format!("bad [ecs] network settings: {e}"), Some(e.into())))?;
        let mut req = self
            .client
            .run_task()
            .cluster(&s.cluster)
            .task_definition(&s.task_definition)
            .count(1)
            .started_by("glueless")
            .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
            .overrides(overrides);
        req = match s.launch_type.as_str() {
            "FARGATE_SPOT" => req.capacity_provider_strategy(
                CapacityProviderStrategyItem::builder()
                    .capacity_provider("FARGATE_SPOT")
                    .weight(1)
                    .build()
                    .map_err(|e| self.error(file, e.to_string(), Some(e.into())))?,
            ),
            other => req.launch_type(LaunchType::from(other)),
        };
        let out = req.send().await.map_err(|e| {
            self.error(
                file,
                format!(
                    "ecs:RunTask on cluster {} with task definition {} failed: {}; check [ecs] and the dispatcher's ecs:RunTask and iam:PassRole permissions",
                    s.cluster,
                    s.task_definition,
                    DisplayErrorContext(&e)
                ),
                Some(e.into()),
            )
        })?;
        if let Some(f) = out.failures().first() {
            return Err(self.error(
                file,
                format!(
                    "ECS could not place the task: {} {}",
                    f.reason().unwrap_or("no reason given"),
                    f.detail().unwrap_or("")
                ),
                None,
            ));
        }
        match out.tasks().first().and_then(|t| t.task_arn()) {
            Some(arn) => Ok(Launched::Remote { id: arn.to_string() }),
            None => Err(self.error(file, "ecs:RunTask answered without a task and without a failure".into(), None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{FileKey, FileState};

    /// Issue 13: the SDK's error is the source of a launch error, not only words in it.
    #[tokio::test]
    async fn a_failed_run_task_keeps_the_sdk_error() {
        let conf = super::super::refused_config().await;
        let settings = EcsSettings {
            cluster: "c".into(),
            task_definition: "glueless".into(),
            subnets: "subnet-1".into(),
            ..EcsSettings::default()
        };
        let launcher = EcsLauncher::with_client(Client::new(&conf), &settings);
        let file = FileRecord {
            key: FileKey { url: "s3://lake/landing/a.csv".into(), version: "v1".into() },
            dataset: "a".into(),
            size: 1,
            state: FileState::Running,
            owner: None,
            lease_until: None,
            attempts: 1,
            retry_at: None,
            route: None,
            last_error: None,
            event_time: None,
            received_at: 0,
            updated_at: 0,
            load_id: None,
            rows_loaded: None,
            rows_rejected: None,
        };
        let e = launcher.launch(&file).await.expect_err("nobody listens");
        assert!(e.message.starts_with("ecs:RunTask on cluster c"), "{e}");
        super::super::assert_sdk_source(&e);
    }
}
