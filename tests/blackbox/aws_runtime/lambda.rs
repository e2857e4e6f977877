//! The Lambda handler, called in-process with the batch the stack's queue handed out (the
//! emulator cannot run a function without Docker).

use super::*;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use glueless_jobs::pipeline::Pipeline;
use glueless_jobs::ports::FileState;
use glueless_jobs::runtime::lambda::Function;
use glueless_jobs::settings::Settings;

/// The function as it starts in Lambda: settings from `GLUELESS__…` variables only.
pub async fn function(env: Vec<(String, String)>) -> Function {
    let settings = Settings::load(None, env).expect("settings");
    Function::new(Pipeline::build(settings, 2, true).await.expect("pipeline"))
}

/// The event Lambda's SQS event source builds from received messages (plus `extra` bodies).
pub fn event(stack: &Stack, messages: &[aws_sdk_sqs::types::Message], extra: &[&str]) -> SqsEvent {
    let mut records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": stack.queue_arn, "awsRegion": "us-east-1",
            })
        })
        .collect();
    for (i, body) in extra.iter().enumerate() {
        records.push(serde_json::json!({
            "messageId": format!("extra-{i}"), "receiptHandle": format!("extra-{i}"), "body": body,
            "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": stack.queue_arn,
        }));
    }
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("an SqsEvent")
}

pub fn failures(r: &SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

fn fact_rows(db: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("SELECT count(*) FROM fact_sales", [], |r| r.get(0)).unwrap()
}

#[test]
fn the_handler_loads_the_batch_sqs_delivered_and_fails_no_record() {
    rt().block_on(async {
        let stack = Stack::deploy("lambda", &[("DatasetPrefixes", "landing/sales/")]);
        let contracts = contracts();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("warehouse.db");
        let f = function(stack.env(contracts.path(), &format!("sqlite://{}", path_str(&db)))).await;

        let a = stack.put("landing/sales/a.csv", &sales(1, 4, 0)).await;
        // A key with a space and a plus: EventBridge names it as it is (not URL-encoded).
        let b = stack.put("landing/sales/day 2 + more.csv", &sales(10, 2, 2)).await;
        let received = receive(&stack.queue_url, Duration::from_secs(10), 60).await;
        assert!(received.len() >= 2, "both objects' events reached the queue: {received:?}");
        // Bodies that name no object are acknowledged, never failed.
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"x"}"#;
        let ev = event(&stack, &received, &[test_event, "not json"]);

        let deadline = Instant::now() + Duration::from_secs(120);
        let response = f.handle(ev.clone(), Some(deadline)).await;
        assert_eq!(failures(&response), Vec::<String>::new(), "no record to retry");
        let ra = stack.record("landing/sales/a.csv", &a).await;
        let rb = stack.record("landing/sales/day 2 + more.csv", &b).await;
        assert_eq!((ra.state, ra.rows_loaded, ra.route.as_deref()), (FileState::Loaded, Some(4), Some("lambda")));
        assert_eq!((rb.state, rb.rows_loaded, rb.rows_rejected), (FileState::Loaded, Some(2), Some(2)));
        assert_eq!(ra.load_id, rb.load_id, "one dataset's files of a batch go in one warehouse transaction");
        assert_eq!(fact_rows(&db), 6);

        // The same batch delivered again (SQS is at-least-once): nothing is loaded twice.
        let response = f.handle(ev, Some(deadline)).await;
        assert_eq!(failures(&response), Vec::<String>::new());
        assert_eq!(fact_rows(&db), 6);
        assert_eq!(stack.record("landing/sales/a.csv", &a).await.attempts, 1, "not claimed again");
    });
}

#[test]
fn near_the_deadline_the_handler_starts_nothing_and_retries_the_records() {
    rt().block_on(async {
        let stack = Stack::deploy("deadline", &[("DatasetPrefixes", "landing/sales/")]);
        let contracts = contracts();
        let dir = tempfile::tempdir().unwrap();
        let mut env = stack.env(contracts.path(), &format!("sqlite://{}", path_str(&dir.path().join("w.db"))));
        env.push(("GLUELESS__RUN__DEADLINE_RESERVE_SECS".into(), "30".into()));
        let f = function(env).await;
        let v = stack.put("landing/sales/late.csv", &sales(1, 2, 0)).await;
        let received = receive(&stack.queue_url, Duration::from_secs(10), 60).await;
        assert_eq!(received.len(), 1);

        // 10 s left, 30 s reserved: too late to start a file.
        let response = f.handle(event(&stack, &received, &[]), Some(Instant::now() + Duration::from_secs(10))).await;
        assert_eq!(failures(&response), vec![received[0].message_id().unwrap().to_string()]);
        let rec = stack.record("landing/sales/late.csv", &v).await;
        assert_eq!((rec.state, rec.attempts), (FileState::Received, 0), "registered, not claimed: {rec:?}");
        // Its visibility was set to 0: the queue hands it out again at once.
        let again = receive(&stack.queue_url, Duration::from_secs(5), 60).await;
        assert_eq!(again.len(), 1, "the retried message is visible again");
    });
}

#[test]
fn at_the_deadline_the_handler_hands_back_the_files_in_work() {
    rt().block_on(async {
        let stack = Stack::deploy("handback", &[("DatasetPrefixes", "landing/sales/")]);
        let contracts = contracts();
        let warehouse = postgres_database("aws_handback").await;
        let f = function(stack.env(contracts.path(), &warehouse)).await;
        // Hold the warehouse's DDL lock: the load waits for it past the deadline.
        let (c, conn) = tokio_postgres::connect(&warehouse, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c.execute("SELECT pg_advisory_lock(1735161189, 0)", &[]).await.unwrap();

        let v = stack.put("landing/sales/slow.csv", &sales(1, 3, 0)).await;
        let received = receive(&stack.queue_url, Duration::from_secs(10), 60).await;
        assert_eq!(received.len(), 1);
        let ev = event(&stack, &received, &[]);
        // 22 s left with the default 20 s reserve: 2 s to work, then hand back.
        let response = f.handle(ev.clone(), Some(Instant::now() + Duration::from_secs(22))).await;
        assert_eq!(failures(&response), vec![received[0].message_id().unwrap().to_string()]);
        let rec = stack.record("landing/sales/slow.csv", &v).await;
        assert_eq!((rec.state, rec.attempts), (FileState::Received, 0), "handed back, the attempt given back: {rec:?}");

        c.execute("SELECT pg_advisory_unlock(1735161189, 0)", &[]).await.unwrap();
        let response = f.handle(ev, Some(Instant::now() + Duration::from_secs(120))).await;
        assert_eq!(failures(&response), Vec::<String>::new());
        let rec = stack.record("landing/sales/slow.csv", &v).await;
        assert_eq!((rec.state, rec.rows_loaded, rec.attempts), (FileState::Loaded, Some(3), 1), "{rec:?}");
    });
}
