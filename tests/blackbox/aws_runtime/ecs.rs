//! A large object: the Lambda handler claims it and starts an ECS task (the emulator records
//! RunTask; nothing runs), then `glueless task` runs with the environment ECS would give the
//! container, and takes the claim over.

use super::lambda::{event, function};
use super::*;
use aws_sdk_ecs::Client as Ecs;
use glueless_jobs::ports::FileState;

fn ecs() -> Ecs {
    Ecs::new(&local_sdk_config(&aws_endpoint()))
}

/// A subnet of the emulator's default VPC (Fargate tasks need one).
fn default_subnet() -> String {
    let script = format!(
        "import boto3\nc = boto3.client('ec2', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\nprint(c.describe_subnets()['Subnets'][0]['SubnetId'])",
        aws_endpoint()
    );
    let out = std::process::Command::new(python()).args(["-c", &script]).output().expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The stack's settings plus ECS: every file is "large" (over 100 bytes), the template's cluster
/// and task definition, a subnet of the default VPC.
pub(crate) fn ecs_env(
    stack: &Stack,
    contracts: &std::path::Path,
    db: &std::path::Path,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = stack.env(contracts, &format!("sqlite://{}", path_str(db)));
    for (k, v) in [
        ("GLUELESS__RUN__INLINE_MAX_BYTES", "100".to_string()),
        ("GLUELESS__ECS__CLUSTER", stack.ecs_cluster.clone()),
        ("GLUELESS__ECS__TASK_DEFINITION", stack.task_definition.clone()),
        ("GLUELESS__ECS__SUBNETS", default_subnet()),
        ("GLUELESS__ECS__SECURITY_GROUPS", "sg-0123456789abcdef0".into()),
    ] {
        env.push((k.into(), v));
    }
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

pub(crate) async fn task_arns(cluster: &str) -> Vec<String> {
    ecs().list_tasks().cluster(cluster).send().await.expect("list tasks").task_arns().to_vec()
}

#[test]
fn a_large_object_is_launched_on_ecs_and_the_task_loads_it() {
    rt().block_on(async {
        let stack = Stack::deploy("ecs", &[("DatasetPrefixes", "landing/sales/")]);
        // The template's cluster and task definition (its container `glueless` runs `task`).
        let cluster = stack.ecs_cluster.clone();
        let contracts = contracts();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("warehouse.db");
        let env = ecs_env(&stack, contracts.path(), &db, &[]);
        let f = function(env.clone()).await;
        let body = sales(1, 20, 0);
        assert!(body.len() > 100);
        let version = stack.put("landing/sales/big.csv", &body).await;
        let received = receive(&stack.queue_url, Duration::from_secs(10), 60).await;
        assert_eq!(received.len(), 1);
        let ev = event(&stack, &received, &[]);
        let response = f.handle(ev.clone(), Some(Instant::now() + Duration::from_secs(60))).await;
        assert!(response.batch_item_failures.is_empty(), "the launch is the end of the message");

        let rec = stack.record("landing/sales/big.csv", &version).await;
        assert_eq!((rec.state, rec.route.as_deref(), rec.attempts), (FileState::Running, Some("ecs"), 1), "{rec:?}");
        let owner = rec.owner.clone().expect("the claim's owner");
        assert!(owner.starts_with("ecs-launch:"), "{owner}");
        assert!(rec.lease_until.is_some());

        let listed = ecs().list_tasks().cluster(&cluster).send().await.expect("list tasks");
        assert_eq!(listed.task_arns().len(), 1, "one task started");
        let tasks =
            ecs().describe_tasks().cluster(&cluster).set_tasks(Some(listed.task_arns().to_vec())).send().await.unwrap();
        let task = &tasks.tasks()[0];
        assert_eq!(task.started_by(), Some("glueless"));
        let overrides = task.overrides().expect("overrides");
        let c = &overrides.container_overrides()[0];
        assert_eq!(c.name(), Some("glueless"));
        let var = |n: &str| {
            c.environment()
                .iter()
                .find(|kv| kv.name() == Some(n))
                .and_then(|kv| kv.value())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(var("GLUELESS_TASK_URL"), stack.url("landing/sales/big.csv"));
        assert_eq!(var("GLUELESS_TASK_VERSION"), version);
        assert_eq!(var("GLUELESS_TASK_OWNER"), owner);

        // A duplicate delivery while the task has the file: done, and no second task.
        let response = f.handle(ev, Some(Instant::now() + Duration::from_secs(60))).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(task_arns(&cluster).await.len(), 1);

        // The container, as ECS would start it: the task definition's command and the overrides.
        let mut task_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (u, v, o) = (var("GLUELESS_TASK_URL"), var("GLUELESS_TASK_VERSION"), var("GLUELESS_TASK_OWNER"));
        task_env.extend([
            ("GLUELESS_TASK_URL", u.as_str()),
            ("GLUELESS_TASK_VERSION", v.as_str()),
            ("GLUELESS_TASK_OWNER", o.as_str()),
        ]);
        // JSON log lines, as in the ECS container: the takeover line carries its fields.
        let json_env = [task_env.as_slice(), &[("GLUELESS_LOG_FORMAT", "json")]].concat();
        let run = glueless_with_env(dir.path(), &["task", "--format", "json"], &json_env);
        assert_eq!(run.code, 0, "task: {}", run.stderr);
        let report = run.json();
        assert_eq!(report["state"], "LOADED", "{report}");
        let lines = crate::logs::json_lines(&run.stderr);
        let took_over = lines
            .iter()
            .find(|l| l["message"].as_str().is_some_and(|m| m.contains("took over the claim")))
            .unwrap_or_else(|| panic!("a takeover line: {}", run.stderr));
        assert_eq!((&took_over["owner"], &took_over["attempts"]), (&o.as_str().into(), &1.into()), "{took_over}");
        assert_eq!(took_over["url"], u.as_str(), "{took_over}");
        let rec = stack.record("landing/sales/big.csv", &version).await;
        assert_eq!((rec.state, rec.rows_loaded, rec.attempts), (FileState::Loaded, Some(20), 1), "{rec:?}");
        let n: i64 = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT count(*) FROM fact_sales", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 20);

        // Started again (ECS retried the container): nothing to do.
        let run = glueless_with_env(dir.path(), &["task"], &task_env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains("already LOADED"), "{}", run.stderr);
    });
}

#[test]
fn a_task_that_never_took_its_file_is_launched_again_by_the_sweep() {
    rt().block_on(async {
        let stack = Stack::deploy("sweep", &[("DatasetPrefixes", "landing/sales/")]);
        let contracts = contracts();
        let dir = tempfile::tempdir().unwrap();
        let extra = [("GLUELESS__ECS__START_LEASE_SECS", "1"), ("GLUELESS__ECS__SWEEP_SECS", "0")];
        let f = function(ecs_env(&stack, contracts.path(), &dir.path().join("w.db"), &extra)).await;
        let version = stack.put("landing/sales/big.csv", &sales(1, 20, 0)).await;
        let received = receive(&stack.queue_url, Duration::from_secs(10), 60).await;
        let response = f.handle(event(&stack, &received, &[]), Some(Instant::now() + Duration::from_secs(60))).await;
        assert!(response.batch_item_failures.is_empty());
        let first = stack.record("landing/sales/big.csv", &version).await;
        assert_eq!((first.state, first.attempts), (FileState::Running, 1));
        assert_eq!(task_arns(&stack.ecs_cluster).await.len(), 1);

        // The task never starts (the emulator runs nothing): its start lease lapses, and the
        // next invocation's sweep launches the file again, as a new attempt with a new owner.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let response = f.handle(event(&stack, &[], &[]), Some(Instant::now() + Duration::from_secs(60))).await;
        assert!(response.batch_item_failures.is_empty());
        let second = stack.record("landing/sales/big.csv", &version).await;
        assert_eq!((second.state, second.attempts, second.route.as_deref()), (FileState::Running, 2, Some("ecs")));
        assert_ne!(second.owner, first.owner, "the new task holds a new claim");
        assert_eq!(task_arns(&stack.ecs_cluster).await.len(), 2, "launched again");
    });
}
