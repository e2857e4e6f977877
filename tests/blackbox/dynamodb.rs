//! The DynamoDB state store against the local AWS emulator: the acceptance suite of the
//! `StateStore` port with a fresh table per check, claims racing across two clients, the time
//! to live of LOADED files, and what a missing table says.
//!
//! The emulator (moto) checks a condition and then applies the update without a lock, so two
//! concurrent conditional writes to one item can both pass there, where DynamoDB serialises the
//! writes to an item. The clients here therefore reach it through [`serial_endpoint`], a
//! loopback proxy that passes one request at a time: the races still exercise the adapter's
//! conditions (any order of 16 claims has exactly one winner), not the emulator's locking.

use crate::support::http_message;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use glueless_jobs::adapters::DynamoDbStateStore;
use glueless_jobs::adapters::aws::dynamodb_state::{ERROR_MAX, LOADED_TTL_DAYS};
use glueless_jobs::ports::*;

const T0: Millis = 1_000_000;
const LEASE: u64 = 60_000;

/// The emulator behind a proxy that passes one request at a time (see the module docs).
fn serial_endpoint() -> String {
    static PROXY: OnceLock<String> = OnceLock::new();
    PROXY
        .get_or_init(|| {
            let upstream = crate::support::aws_endpoint();
            let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
            let addr = listener.local_addr().unwrap();
            let turn = Arc::new(Mutex::new(()));
            // Lives until the test process ends.
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let (upstream, turn) = (upstream.clone(), Arc::clone(&turn));
                    std::thread::spawn(move || {
                        let _ = relay(client, &upstream, &turn);
                    });
                }
            });
            format!("http://{addr}")
        })
        .clone()
}

/// Relays the requests of one client connection, each alone with the emulator.
fn relay(client: TcpStream, upstream: &str, turn: &Mutex<()>) -> std::io::Result<()> {
    let mut requests = BufReader::new(client.try_clone()?);
    let mut answers = client;
    while let Some(request) = http_message(&mut requests)? {
        let response = {
            let _turn = turn.lock().unwrap_or_else(PoisonError::into_inner);
            let mut emulator = TcpStream::connect(upstream)?;
            emulator.write_all(&request)?;
            http_message(&mut BufReader::new(emulator))?
        };
        let Some(response) = response else { return Ok(()) };
        answers.write_all(&response)?;
    }
    Ok(())
}

/// A client of the emulator, built explicitly (the process environment is left alone).
fn client() -> Client {
    Client::new(&crate::support::local_sdk_config(&serial_endpoint()))
}

fn unique(test: &str) -> String {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("glueless-{test}-{}-{nanos}-{}", std::process::id(), MADE.fetch_add(1, Ordering::Relaxed))
}

/// A store on a new, empty table.
async fn fresh_store(test: &str) -> DynamoDbStateStore {
    let table = unique(test);
    let store = DynamoDbStateStore::with_client(client(), table.clone());
    store.ensure_table().await.expect("create the table");
    assert_eq!(store.describe(), format!("dynamodb://{table}"));
    store
}

fn new_file(url: &str) -> NewFile {
    NewFile {
        key: FileKey { url: url.to_string(), version: "v1".to_string() },
        dataset: "orders".to_string(),
        size: 1234,
        event_time: Some(T0 - 500),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_state_store_passes_the_suite() {
    crate::acceptance::state_store::suite(|| fresh_store("suite")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_claims_race_across_clients() {
    let first = fresh_store("race").await;
    // Two stores with clients of their own on one table, as two workers have.
    let second = DynamoDbStateStore::with_client(client(), first.table());
    second.ensure_table().await.expect("an existing table is left as it is");
    let stores = [Arc::new(first), Arc::new(second)];
    crate::acceptance::state_store::race_two_handles(stores, 10).await;
}

/// The raw item of `key`, as DynamoDB holds it.
async fn raw_item(table: &str, key: &FileKey) -> std::collections::HashMap<String, AttributeValue> {
    let got = client()
        .get_item()
        .table_name(table)
        .key("url", AttributeValue::S(key.url.clone()))
        .key("version", AttributeValue::S(key.version.clone()))
        .consistent_read(true)
        .send()
        .await
        .expect("get the item");
    got.item().cloned().expect("the item exists")
}

#[tokio::test]
async fn dynamodb_loaded_files_get_a_time_to_live() {
    let store = fresh_store("ttl").await;
    let ttl = client().describe_time_to_live().table_name(store.table()).send().await.expect("describe the TTL");
    let spec = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(spec.attribute_name(), Some("ttl"), "ensure_table turns time to live on, on `ttl`: {spec:?}");
    assert_eq!(spec.time_to_live_status(), Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled), "{spec:?}");
    let loaded = new_file("s3://landing/orders/loaded.csv");
    let failed = new_file("s3://landing/orders/failed.csv");
    for file in [&loaded, &failed] {
        assert!(store.register(file, T0).await.unwrap());
        assert!(!raw_item(store.table(), &file.key).await.contains_key("ttl"), "a RECEIVED file does not expire");
        store.claim(&file.key, &Claim { owner: "w1", now: T0 + 10, lease_ms: LEASE, route: "inline" }).await.unwrap();
    }
    let done_at: Millis = 1_700_000_000_500;
    let outcome = Outcome::Loaded { load_id: "load-1".into(), rows_loaded: 10, rows_rejected: 0 };
    assert!(store.finish(&loaded.key, "w1", &outcome, done_at).await.unwrap());
    let item = raw_item(store.table(), &loaded.key).await;
    // Epoch seconds, as DynamoDB's time to live wants (the emulator stores it, never expires it).
    let expected = 1_700_000_000 + LOADED_TTL_DAYS * 86_400;
    assert_eq!(item.get("ttl"), Some(&AttributeValue::N(expected.to_string())), "{item:?}");
    assert_eq!(item.get("state"), Some(&AttributeValue::S("LOADED".into())));
    assert_eq!(store.get(&loaded.key).await.unwrap().unwrap().state, FileState::Loaded);

    // A file waiting for a person does not expire.
    let outcome = Outcome::Failed { error: "timed out".into(), retry_at: done_at + 1_000 };
    assert!(store.finish(&failed.key, "w1", &outcome, done_at).await.unwrap());
    assert!(!raw_item(store.table(), &failed.key).await.contains_key("ttl"));
}

#[tokio::test]
async fn dynamodb_a_missing_table_says_what_to_do() {
    let table = unique("missing");
    let store = DynamoDbStateStore::with_client(client(), table.clone());
    let err = store.register(&new_file("s3://landing/orders/a.csv"), T0).await.expect_err("no such table");
    assert_eq!(err.store, format!("dynamodb://{table}"));
    assert!(!err.retryable, "{err}");
    assert!(err.message.contains("create it") && err.message.contains("[state] url"), "{err}");
    let err = store.list(&Filter::default()).await.expect_err("no such table");
    assert!(err.message.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn dynamodb_connect_wants_a_table_name() {
    let err = DynamoDbStateStore::connect("dynamodb://").await.expect_err("no table");
    assert_eq!(err.store, "dynamodb://");
    assert!(err.message.contains("dynamodb://TABLE"), "{err}");
}

/// More than DynamoDB's 1 MB per response (the emulator keeps that limit too): `list` and
/// `count_by_state` follow the pages, by scan and through the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_list_and_count_follow_the_pages() {
    let store = fresh_store("pages").await;
    let long_error = "x".repeat(ERROR_MAX + 10);
    let files = 24;
    for i in 0..files {
        let file = new_file(&format!("s3://landing/orders/{i:02}.csv"));
        let at = T0 + 10 * i as Millis;
        assert!(store.register(&file, at).await.unwrap());
        store.claim(&file.key, &Claim { owner: "w", now: at + 1, lease_ms: LEASE, route: "inline" }).await.unwrap();
        let failed = Outcome::Failed { error: long_error.clone(), retry_at: T0 + 1_000_000 };
        assert!(store.finish(&file.key, "w", &failed, at + 2).await.unwrap());
    }
    let record = store.list(&Filter { limit: Some(1), ..Filter::default() }).await.unwrap().remove(0);
    let kept = record.last_error.unwrap();
    assert!(kept.len() <= ERROR_MAX && kept.starts_with("xxx") && kept.contains("cut"), "a long error is cut");

    let newest_first: Vec<String> = (0..files).rev().map(|i| format!("s3://landing/orders/{i:02}.csv")).collect();
    let urls = |records: Vec<FileRecord>| records.into_iter().map(|r| r.key.url).collect::<Vec<_>>();
    assert_eq!(urls(store.list(&Filter::default()).await.unwrap()), newest_first, "the scan follows the pages");
    let failed = Filter { states: vec![FileState::Failed], ..Filter::default() };
    assert_eq!(urls(store.list(&failed).await.unwrap()), newest_first, "the index query follows the pages");
    let oldest = Filter { url_prefix: Some("s3://landing/orders/00".into()), ..failed.clone() };
    assert_eq!(urls(store.list(&oldest).await.unwrap()), vec!["s3://landing/orders/00.csv"], "the last page too");
    assert_eq!(store.count_by_state(None).await.unwrap(), vec![(FileState::Failed, files as u64)]);
    assert_eq!(store.count_by_state(Some("orders")).await.unwrap(), vec![(FileState::Failed, files as u64)]);
    assert_eq!(store.count_by_state(Some("")).await.unwrap(), vec![]);
}
