//! The acceptance suite of the `StateStore` port: the per-file state machine of
//! `jobs/src/ports/state.rs`, checked through the trait only, so every adapter (SQLite here,
//! DynamoDB later) must pass the very same checks.
//!
//! It checks identity (URL + version, idempotent registration), claims (once, under races,
//! lease expiry and takeover), lease renewal, every outcome of `finish` field by field (attempt
//! counting, FAILED's `retry_at`, a lost claim changing nothing), replay, `get`, `list` (filters,
//! limit, order) and `count_by_state`.
//!
//! An adapter runs it with one line in a `#[tokio::test(flavor = "multi_thread")]`:
//!
//! ```ignore
//! suite(|| async { MyStore::connect(fresh_table()).await.unwrap() }).await;
//! ```
//!
//! `make` is called once per check and must return a fresh, empty store, so the checks are
//! independent of each other and of their order. Time is passed explicitly (from [`T0`]): no
//! check sleeps or reads the clock.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use glueless_jobs::adapters::SqliteStateStore;
use glueless_jobs::ports::*;

/// The "now" the checks start from.
const T0: Millis = 1_000_000;
const LEASE: u64 = 60_000;

/// Runs every check, each against a store of its own.
pub async fn suite<S, F, Fut>(make: F)
where
    S: StateStore + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    macro_rules! checks {
        ($($check:ident),* $(,)?) => {
            $(
                eprintln!("state store suite: {}", stringify!($check));
                $check(make().await).await;
            )*
        };
    }
    checks!(
        a_new_store_is_empty,
        register_is_idempotent_per_url_and_version,
        a_new_version_of_a_url_is_a_separate_file,
        unknown_files_are_none_and_unchanged,
        claim_takes_a_received_file_once,
        two_concurrent_claims_have_one_winner,
        many_concurrent_claims_have_one_winner,
        renew_by_the_owner_extends_the_lease,
        renew_by_anyone_else_is_refused,
        an_expired_lease_can_be_taken_over,
        finish_loaded_records_the_load,
        loaded_clears_an_earlier_error,
        finish_rejected_records_the_reason,
        finish_failed_waits_for_retry_at,
        finish_dead_stays_until_replayed,
        released_gives_the_attempt_back,
        finish_by_a_non_owner_changes_nothing,
        replay_puts_rejected_failed_and_dead_back,
        replay_refuses_other_states,
        list_filters_by_state_dataset_and_url_prefix,
        list_is_newest_first_and_limited,
        count_by_state_counts_per_state_and_dataset,
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn key(url: &str, version: &str) -> FileKey {
    FileKey { url: url.to_string(), version: version.to_string() }
}

fn new_file(url: &str, version: &str, dataset: &str) -> NewFile {
    NewFile { key: key(url, version), dataset: dataset.to_string(), size: 1234, event_time: Some(T0 - 500) }
}

fn claim_at(owner: &str, now: Millis) -> Claim<'_> {
    Claim { owner, now, lease_ms: LEASE, route: "inline" }
}

async fn get<S: StateStore>(store: &S, key: &FileKey) -> FileRecord {
    store.get(key).await.unwrap().unwrap_or_else(|| panic!("{} should be known", key.url))
}

/// Registers a file at `T0` and returns its key.
async fn registered<S: StateStore>(store: &S, url: &str) -> FileKey {
    let file = new_file(url, "v1", "orders");
    assert!(store.register(&file, T0).await.unwrap(), "{url} is new");
    file.key
}

/// Registers a file at `T0` and claims it for `owner` at `T0 + 10`; returns the key and the
/// record after the claim.
async fn running<S: StateStore>(store: &S, url: &str, owner: &str) -> (FileKey, FileRecord) {
    let key = registered(store, url).await;
    let record = store.claim(&key, &claim_at(owner, T0 + 10)).await.unwrap().expect("a RECEIVED file is claimable");
    (key, record)
}

/// Takes `key` through claim and `outcome` for `owner`, at `now` and `now + 1`.
async fn run_to<S: StateStore>(store: &S, key: &FileKey, owner: &str, outcome: Outcome, now: Millis) {
    store.claim(key, &claim_at(owner, now)).await.unwrap().expect("claimable");
    assert!(store.finish(key, owner, &outcome, now + 1).await.unwrap(), "the owner finishes");
}

fn states(records: &[FileRecord]) -> Vec<(&str, FileState)> {
    records.iter().map(|r| (r.key.url.as_str(), r.state)).collect()
}

fn urls(records: &[FileRecord]) -> Vec<&str> {
    records.iter().map(|r| r.key.url.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// Identity and registration

async fn a_new_store_is_empty<S: StateStore>(store: S) {
    assert!(!store.describe().is_empty(), "describe names the store");
    assert_eq!(store.list(&Filter::default()).await.unwrap(), vec![]);
    assert_eq!(store.count_by_state(None).await.unwrap(), vec![]);
}

async fn register_is_idempotent_per_url_and_version<S: StateStore>(store: S) {
    let file = new_file("s3://landing/orders/a.csv", "etag-1", "orders");
    assert!(store.register(&file, T0).await.unwrap(), "the first delivery is new");
    let expected = FileRecord {
        key: file.key.clone(),
        dataset: "orders".to_string(),
        size: 1234,
        state: FileState::Received,
        owner: None,
        lease_until: None,
        attempts: 0,
        retry_at: None,
        route: None,
        last_error: None,
        event_time: Some(T0 - 500),
        received_at: T0,
        updated_at: T0,
        load_id: None,
        rows_loaded: None,
        rows_rejected: None,
    };
    assert_eq!(get(&store, &file.key).await, expected);

    // The same URL and version again, even with other details, changes nothing.
    let again = NewFile { dataset: "other".to_string(), size: 99, event_time: None, ..file.clone() };
    assert!(!store.register(&again, T0 + 5).await.unwrap(), "a duplicate delivery is not new");
    assert_eq!(get(&store, &file.key).await, expected);

    // Whatever the state: a duplicate of a running or loaded file does not reset it.
    let claimed = store.claim(&file.key, &claim_at("w1", T0 + 10)).await.unwrap().unwrap();
    assert!(!store.register(&file, T0 + 20).await.unwrap());
    assert_eq!(get(&store, &file.key).await, claimed);
    let loaded = Outcome::Loaded { load_id: "load-1".to_string(), rows_loaded: 10, rows_rejected: 0 };
    assert!(store.finish(&file.key, "w1", &loaded, T0 + 30).await.unwrap());
    let after = get(&store, &file.key).await;
    assert!(!store.register(&file, T0 + 40).await.unwrap());
    assert_eq!(get(&store, &file.key).await, after);
    assert_eq!(store.list(&Filter::default()).await.unwrap().len(), 1, "still one file");
}

async fn a_new_version_of_a_url_is_a_separate_file<S: StateStore>(store: S) {
    let v1 = new_file("s3://landing/orders/a.csv", "etag-1", "orders");
    let v2 = new_file("s3://landing/orders/a.csv", "etag-2", "orders");
    assert!(store.register(&v1, T0).await.unwrap());
    run_to(&store, &v1.key, "w1", Outcome::Loaded { load_id: "l1".into(), rows_loaded: 1, rows_rejected: 0 }, T0 + 10)
        .await;
    assert!(store.register(&v2, T0 + 100).await.unwrap(), "new content under the same URL is a new file");

    let first = get(&store, &v1.key).await;
    let second = get(&store, &v2.key).await;
    assert_eq!(first.state, FileState::Loaded, "the old version keeps its state");
    assert_eq!((second.state, second.attempts, second.received_at), (FileState::Received, 0, T0 + 100));
    assert!(store.claim(&v2.key, &claim_at("w2", T0 + 200)).await.unwrap().is_some(), "the new version is claimable");
    assert_eq!(get(&store, &v1.key).await, first, "claiming one version leaves the other alone");

    let mut listed: Vec<FileKey> = store.list(&Filter::default()).await.unwrap().into_iter().map(|r| r.key).collect();
    listed.sort();
    assert_eq!(listed, vec![v1.key, v2.key]);
}

async fn unknown_files_are_none_and_unchanged<S: StateStore>(store: S) {
    registered(&store, "s3://landing/orders/known.csv").await;
    let unknown = key("s3://landing/orders/unknown.csv", "v1");
    let other_version = key("s3://landing/orders/known.csv", "v2");
    for k in [&unknown, &other_version] {
        assert_eq!(store.get(k).await.unwrap(), None);
        assert_eq!(store.claim(k, &claim_at("w1", T0)).await.unwrap(), None, "an unknown file is not claimable");
        assert!(!store.renew(k, "w1", T0, LEASE).await.unwrap());
        assert!(!store.finish(k, "w1", &Outcome::Dead { error: "x".into() }, T0).await.unwrap());
        assert!(!store.replay(k, T0).await.unwrap());
    }
    let all = store.list(&Filter::default()).await.unwrap();
    assert_eq!(urls(&all), vec!["s3://landing/orders/known.csv"], "nothing was created for unknown keys");
}

// ---------------------------------------------------------------------------------------------
// Claims

async fn claim_takes_a_received_file_once<S: StateStore>(store: S) {
    let key = registered(&store, "s3://landing/orders/a.csv").await;
    let before = get(&store, &key).await;
    let claim = Claim { owner: "worker-1", now: T0 + 10, lease_ms: 30_000, route: "in-process" };
    let claimed = store.claim(&key, &claim).await.unwrap().expect("a RECEIVED file is claimable");
    let expected = FileRecord {
        state: FileState::Running,
        owner: Some("worker-1".to_string()),
        lease_until: Some(T0 + 10 + 30_000),
        attempts: 1,
        route: Some("in-process".to_string()),
        updated_at: T0 + 10,
        ..before
    };
    assert_eq!(claimed, expected, "the claim returns the record after it");
    assert_eq!(get(&store, &key).await, expected, "and stores it");

    // While the lease runs nobody can claim it, not even the owner again.
    for (owner, now) in [("worker-2", T0 + 11), ("worker-1", T0 + 20), ("worker-2", T0 + 10 + 29_999)] {
        assert_eq!(store.claim(&key, &claim_at(owner, now)).await.unwrap(), None, "{owner} at {now}");
    }
    assert_eq!(get(&store, &key).await, expected, "refused claims change nothing");
}

async fn two_concurrent_claims_have_one_winner<S: StateStore>(store: S) {
    let key = registered(&store, "s3://landing/orders/a.csv").await;
    let (claim_a, claim_b) = (claim_at("worker-a", T0 + 10), claim_at("worker-b", T0 + 10));
    let (a, b) = tokio::join!(store.claim(&key, &claim_a), store.claim(&key, &claim_b));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() != b.is_some(), "exactly one of two concurrent claims wins: {a:?} / {b:?}");
    let winner = a.or(b).unwrap();
    let stored = get(&store, &key).await;
    assert_eq!(stored, winner);
    assert_eq!(stored.attempts, 1, "the losing claim did not count an attempt");
}

async fn many_concurrent_claims_have_one_winner<S: StateStore + 'static>(store: S) {
    let store = Arc::new(store);
    for round in 0..3 {
        let key = registered(&*store, &format!("s3://landing/orders/race-{round}.csv")).await;
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = Arc::clone(&store);
                let key = key.clone();
                tokio::spawn(async move {
                    let owner = format!("worker-{i}");
                    let claim = Claim { owner: &owner, now: T0 + 10, lease_ms: LEASE, route: "inline" };
                    store.claim(&key, &claim).await.unwrap().map(|r| (owner.clone(), r))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            if let Some(won) = task.await.unwrap() {
                winners.push(won);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one of 16 concurrent claims wins: {winners:?}");
        let (owner, record) = winners.pop().unwrap();
        let stored = get(&*store, &key).await;
        assert_eq!(stored, record);
        assert_eq!((stored.owner.as_deref(), stored.attempts), (Some(owner.as_str()), 1));
    }
}

async fn an_expired_lease_can_be_taken_over<S: StateStore>(store: S) {
    let (key, first) = running(&store, "s3://landing/orders/a.csv", "worker-old").await;
    let expiry = first.lease_until.unwrap();
    assert_eq!(expiry, T0 + 10 + LEASE as Millis);
    assert_eq!(store.claim(&key, &claim_at("worker-new", expiry - 1)).await.unwrap(), None, "the lease still runs");

    let taken = store.claim(&key, &claim_at("worker-new", expiry)).await.unwrap().expect("the lease is over at expiry");
    assert_eq!(taken.state, FileState::Running);
    assert_eq!(taken.owner.as_deref(), Some("worker-new"));
    assert_eq!(taken.lease_until, Some(expiry + LEASE as Millis));
    assert_eq!(taken.attempts, 2, "the dead worker's claim counted");
    assert_eq!(taken.updated_at, expiry);

    // The old owner comes back: it lost the claim and can record nothing.
    let loaded = Outcome::Loaded { load_id: "late".into(), rows_loaded: 5, rows_rejected: 0 };
    assert!(!store.renew(&key, "worker-old", expiry + 1, LEASE).await.unwrap(), "the old owner lost the claim");
    assert!(!store.finish(&key, "worker-old", &loaded, expiry + 2).await.unwrap(), "the old owner's finish is refused");
    assert!(!store.finish(&key, "worker-old", &Outcome::Released, expiry + 3).await.unwrap());
    assert_eq!(get(&store, &key).await, taken, "and changed nothing");

    assert!(store.finish(&key, "worker-new", &loaded, expiry + 4).await.unwrap(), "the new owner finishes");
}

// ---------------------------------------------------------------------------------------------
// Renewal

async fn renew_by_the_owner_extends_the_lease<S: StateStore>(store: S) {
    let (key, claimed) = running(&store, "s3://landing/orders/a.csv", "w1").await;
    let first_expiry = claimed.lease_until.unwrap();

    assert!(store.renew(&key, "w1", T0 + 30_000, LEASE).await.unwrap(), "the owner renews");
    let renewed = get(&store, &key).await;
    let new_expiry = T0 + 30_000 + LEASE as Millis;
    assert_eq!(renewed, FileRecord { lease_until: Some(new_expiry), ..claimed.clone() }, "only the lease moves");

    // Past the first lease the file is still held.
    assert_eq!(store.claim(&key, &claim_at("w2", first_expiry)).await.unwrap(), None, "the renewed lease holds");
    assert_eq!(store.claim(&key, &claim_at("w2", new_expiry - 1)).await.unwrap(), None);
    assert_eq!(get(&store, &key).await, renewed);

    // An owner whose lease ran out but whom nobody replaced still holds the file.
    assert!(store.renew(&key, "w1", new_expiry + 5, LEASE).await.unwrap(), "nobody took it over yet");
    assert_eq!(get(&store, &key).await.lease_until, Some(new_expiry + 5 + LEASE as Millis));
    assert_eq!(store.claim(&key, &claim_at("w2", new_expiry + 6)).await.unwrap(), None);
    let taken = store.claim(&key, &claim_at("w2", new_expiry + 5 + LEASE as Millis)).await.unwrap();
    assert_eq!(taken.map(|r| r.owner), Some(Some("w2".to_string())), "claimable once the renewed lease ends");
}

async fn renew_by_anyone_else_is_refused<S: StateStore>(store: S) {
    let (key, claimed) = running(&store, "s3://landing/orders/a.csv", "w1").await;
    assert!(!store.renew(&key, "w2", T0 + 20, LEASE).await.unwrap(), "a non-owner cannot renew");
    assert_eq!(get(&store, &key).await, claimed, "and changed nothing");

    // Not RUNNING: nothing to renew, even for the last owner.
    let received = registered(&store, "s3://landing/orders/b.csv").await;
    assert!(!store.renew(&received, "w1", T0 + 20, LEASE).await.unwrap(), "a RECEIVED file has no lease");
    assert!(store.finish(&key, "w1", &Outcome::Dead { error: "gone".into() }, T0 + 30).await.unwrap());
    let dead = get(&store, &key).await;
    assert!(!store.renew(&key, "w1", T0 + 40, LEASE).await.unwrap(), "a finished file has no lease");
    assert_eq!(get(&store, &key).await, dead);
}

// ---------------------------------------------------------------------------------------------
// Outcomes

async fn finish_loaded_records_the_load<S: StateStore>(store: S) {
    let (key, claimed) = running(&store, "s3://landing/orders/a.csv", "w1").await;
    let outcome = Outcome::Loaded { load_id: "load-7".into(), rows_loaded: 1000, rows_rejected: 3 };
    assert!(store.finish(&key, "w1", &outcome, T0 + 500).await.unwrap());
    let expected = FileRecord {
        state: FileState::Loaded,
        lease_until: None,
        last_error: None,
        load_id: Some("load-7".into()),
        rows_loaded: Some(1000),
        rows_rejected: Some(3),
        updated_at: T0 + 500,
        ..claimed
    };
    assert_eq!(get(&store, &key).await, expected, "owner, route and attempts stay for the record");

    assert!(!store.finish(&key, "w1", &Outcome::Released, T0 + 600).await.unwrap(), "finished once");
    assert_eq!(store.claim(&key, &claim_at("w2", T0 + 10_000_000)).await.unwrap(), None, "LOADED is final");
    assert_eq!(get(&store, &key).await, expected);
}

async fn loaded_clears_an_earlier_error<S: StateStore>(store: S) {
    let (key, _) = running(&store, "s3://landing/orders/a.csv", "w1").await;
    let failed = Outcome::Failed { error: "warehouse unreachable".into(), retry_at: T0 + 1_000 };
    assert!(store.finish(&key, "w1", &failed, T0 + 100).await.unwrap());
    assert_eq!(get(&store, &key).await.last_error.as_deref(), Some("warehouse unreachable"));

    let retried = store.claim(&key, &claim_at("w2", T0 + 1_000)).await.unwrap().expect("retry_at passed");
    assert_eq!(retried.last_error.as_deref(), Some("warehouse unreachable"), "a claim keeps the last error");
    let loaded = Outcome::Loaded { load_id: "load-1".into(), rows_loaded: 7, rows_rejected: 0 };
    assert!(store.finish(&key, "w2", &loaded, T0 + 1_100).await.unwrap());
    let record = get(&store, &key).await;
    assert_eq!((record.state, record.last_error, record.attempts), (FileState::Loaded, None, 2));
}

async fn finish_rejected_records_the_reason<S: StateStore>(store: S) {
    let (key, claimed) = running(&store, "s3://landing/orders/a.csv", "w1").await;
    let outcome = Outcome::Rejected { reason: "column `amount` is missing".into(), rows_rejected: 12 };
    assert!(store.finish(&key, "w1", &outcome, T0 + 500).await.unwrap());
    let expected = FileRecord {
        state: FileState::Rejected,
        lease_until: None,
        last_error: Some("column `amount` is missing".into()),
        rows_rejected: Some(12),
        updated_at: T0 + 500,
        ..claimed
    };
    assert_eq!(get(&store, &key).await, expected);
    assert_eq!(store.claim(&key, &claim_at("w2", T0 + 10_000_000)).await.unwrap(), None, "REJECTED waits for replay");
    assert_eq!(get(&store, &key).await, expected);
}

async fn finish_failed_waits_for_retry_at<S: StateStore>(store: S) {
    let (key, claimed) = running(&store, "s3://landing/orders/a.csv", "w1").await;
    let retry_at = T0 + 5_000;
    let outcome = Outcome::Failed { error: "timed out".into(), retry_at };
    assert!(store.finish(&key, "w1", &outcome, T0 + 500).await.unwrap());
    let expected = FileRecord {
        state: FileState::Failed,
        lease_until: None,
        last_error: Some("timed out".into()),
        retry_at: Some(retry_at),
        updated_at: T0 + 500,
        ..claimed
    };
    assert_eq!(get(&store, &key).await, expected);

    assert_eq!(store.claim(&key, &claim_at("w2", T0 + 501)).await.unwrap(), None, "not before retry_at");
    assert_eq!(store.claim(&key, &claim_at("w2", retry_at - 1)).await.unwrap(), None, "not before retry_at");
    assert_eq!(get(&store, &key).await, expected);
    let again = store.claim(&key, &claim_at("w2", retry_at)).await.unwrap().expect("claimable at retry_at");
    assert_eq!(again.state, FileState::Running);
    assert_eq!(again.owner.as_deref(), Some("w2"));
    assert_eq!(again.attempts, 2, "the retry is a second attempt");
    assert_eq!(again.lease_until, Some(retry_at + LEASE as Millis));

    // And a third, after another failure, well after its retry_at.
    let outcome = Outcome::Failed { error: "timed out again".into(), retry_at: retry_at + 10_000 };
    assert!(store.finish(&key, "w2", &outcome, retry_at + 100).await.unwrap());
    let third = store.claim(&key, &claim_at("w3", retry_at + 999_999)).await.unwrap().expect("claimable");
    assert_eq!(third.attempts, 3);
}

async fn finish_dead_stays_until_replayed<S: StateStore>(store: S) {
    let (key, claimed) = running(&store, "s3://landing/orders/a.csv", "w1").await;
    let outcome = Outcome::Dead { error: "gave up after 5 attempts: timed out".into() };
    assert!(store.finish(&key, "w1", &outcome, T0 + 500).await.unwrap());
    let expected = FileRecord {
        state: FileState::Dead,
        lease_until: None,
        last_error: Some("gave up after 5 attempts: timed out".into()),
        updated_at: T0 + 500,
        ..claimed
    };
    assert_eq!(get(&store, &key).await, expected);
    assert_eq!(store.claim(&key, &claim_at("w2", T0 + 10_000_000)).await.unwrap(), None, "DEAD waits for replay");
    assert_eq!(get(&store, &key).await, expected);
}

async fn released_gives_the_attempt_back<S: StateStore>(store: S) {
    let (key, claimed) = running(&store, "s3://landing/orders/a.csv", "w1").await;
    assert_eq!(claimed.attempts, 1);
    assert!(store.finish(&key, "w1", &Outcome::Released, T0 + 20).await.unwrap());
    let expected =
        FileRecord { state: FileState::Received, lease_until: None, attempts: 0, updated_at: T0 + 20, ..claimed };
    assert_eq!(get(&store, &key).await, expected);

    // RECEIVED again: claimable at once by anyone, well within the released lease.
    let next = store.claim(&key, &claim_at("w2", T0 + 21)).await.unwrap().expect("a released file is claimable");
    assert_eq!((next.owner.as_deref(), next.attempts), (Some("w2"), 1));

    // After a real failure, the released retry gives back only its own attempt.
    assert!(
        store.finish(&key, "w2", &Outcome::Failed { error: "e".into(), retry_at: T0 + 100 }, T0 + 30).await.unwrap()
    );
    let retry = store.claim(&key, &claim_at("w3", T0 + 100)).await.unwrap().unwrap();
    assert_eq!(retry.attempts, 2);
    assert!(store.finish(&key, "w3", &Outcome::Released, T0 + 110).await.unwrap());
    let record = get(&store, &key).await;
    assert_eq!((record.state, record.attempts, record.lease_until), (FileState::Received, 1, None));
}

async fn finish_by_a_non_owner_changes_nothing<S: StateStore>(store: S) {
    let (key, claimed) = running(&store, "s3://landing/orders/a.csv", "w1").await;
    let outcomes = [
        Outcome::Loaded { load_id: "l".into(), rows_loaded: 1, rows_rejected: 0 },
        Outcome::Rejected { reason: "r".into(), rows_rejected: 1 },
        Outcome::Failed { error: "f".into(), retry_at: T0 },
        Outcome::Dead { error: "d".into() },
        Outcome::Released,
    ];
    for outcome in &outcomes {
        assert!(!store.finish(&key, "w2", outcome, T0 + 20).await.unwrap(), "{outcome:?} by a non-owner");
    }
    assert_eq!(get(&store, &key).await, claimed, "nothing changed");

    // A file nobody claimed cannot be finished either.
    let received = registered(&store, "s3://landing/orders/b.csv").await;
    let before = get(&store, &received).await;
    for outcome in &outcomes {
        assert!(!store.finish(&received, "w1", outcome, T0 + 20).await.unwrap(), "{outcome:?} of a RECEIVED file");
    }
    assert_eq!(get(&store, &received).await, before);
}

// ---------------------------------------------------------------------------------------------
// Replay

async fn replay_puts_rejected_failed_and_dead_back<S: StateStore>(store: S) {
    let cases = [
        ("s3://landing/orders/rejected.csv", Outcome::Rejected { reason: "bad header".into(), rows_rejected: 2 }),
        ("s3://landing/orders/failed.csv", Outcome::Failed { error: "timeout".into(), retry_at: T0 + 9_999_999 }),
        ("s3://landing/orders/dead.csv", Outcome::Dead { error: "gave up".into() }),
    ];
    for (url, outcome) in cases {
        let (key, _) = running(&store, url, "w1").await;
        assert!(store.finish(&key, "w1", &outcome, T0 + 100).await.unwrap());
        assert_eq!(store.claim(&key, &claim_at("w2", T0 + 200)).await.unwrap(), None, "{url}: waits for replay");
        let finished = get(&store, &key).await;
        assert_eq!(finished.attempts, 1);
        assert!(finished.last_error.is_some());

        assert!(store.replay(&key, T0 + 1_000).await.unwrap(), "{url}: replayable");
        let expected = FileRecord {
            state: FileState::Received,
            attempts: 0,
            retry_at: None,
            lease_until: None,
            updated_at: T0 + 1_000,
            ..finished.clone()
        };
        let replayed = get(&store, &key).await;
        assert_eq!(replayed, expected, "{url}: back to RECEIVED, last_error kept");

        assert!(!store.replay(&key, T0 + 2_000).await.unwrap(), "{url}: replaying twice is harmless");
        assert_eq!(get(&store, &key).await, replayed, "{url}: the second replay changed nothing");

        let claimed = store.claim(&key, &claim_at("w3", T0 + 1_001)).await.unwrap().expect("claimable after replay");
        assert_eq!(claimed.attempts, 1, "{url}: attempts start over");
    }
}

async fn replay_refuses_other_states<S: StateStore>(store: S) {
    let received = registered(&store, "s3://landing/orders/received.csv").await;
    let (running_key, _) = running(&store, "s3://landing/orders/running.csv", "w1").await;
    let (loaded, _) = running(&store, "s3://landing/orders/loaded.csv", "w1").await;
    let outcome = Outcome::Loaded { load_id: "l".into(), rows_loaded: 1, rows_rejected: 0 };
    assert!(store.finish(&loaded, "w1", &outcome, T0 + 20).await.unwrap());
    for key in [&received, &running_key, &loaded] {
        let before = get(&store, key).await;
        assert!(!store.replay(key, T0 + 1_000).await.unwrap(), "{} is {}: not replayable", key.url, before.state);
        assert_eq!(get(&store, key).await, before, "{}: nothing changed", key.url);
    }
    assert!(!store.replay(&key("s3://landing/orders/unknown.csv", "v1"), T0).await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// Listing and counting

/// Five files in three datasets and four states, updated at distinct instants:
/// `orders/a` RECEIVED (T0), `orders/b` LOADED (T0+2), `orders/c` FAILED (T0+4),
/// `returns/d` REJECTED (T0+6), `other/e` RECEIVED in no dataset (T0+8).
async fn a_small_lake<S: StateStore>(store: &S) {
    let files = [
        ("s3://lake/orders/a.csv", "orders", T0),
        ("s3://lake/orders/b.csv", "orders", T0 + 1),
        ("s3://lake/orders/c.csv", "orders", T0 + 3),
        ("s3://lake/returns/d.csv", "returns", T0 + 5),
        ("s3://lake/other/e.csv", "", T0 + 8),
    ];
    for (url, dataset, at) in files {
        assert!(store.register(&new_file(url, "v1", dataset), at).await.unwrap());
    }
    let loaded = Outcome::Loaded { load_id: "l".into(), rows_loaded: 1, rows_rejected: 0 };
    run_to(store, &key("s3://lake/orders/b.csv", "v1"), "w", loaded, T0 + 1).await;
    let failed = Outcome::Failed { error: "e".into(), retry_at: T0 + 100 };
    run_to(store, &key("s3://lake/orders/c.csv", "v1"), "w", failed, T0 + 3).await;
    let rejected = Outcome::Rejected { reason: "r".into(), rows_rejected: 0 };
    run_to(store, &key("s3://lake/returns/d.csv", "v1"), "w", rejected, T0 + 5).await;
}

async fn list_filters_by_state_dataset_and_url_prefix<S: StateStore>(store: S) {
    a_small_lake(&store).await;
    let list = |filter: Filter| {
        let store = &store;
        async move { store.list(&filter).await.unwrap() }
    };

    let by_state = list(Filter { states: vec![FileState::Received], ..Filter::default() }).await;
    assert_eq!(urls(&by_state), vec!["s3://lake/other/e.csv", "s3://lake/orders/a.csv"]);
    let replayable =
        list(Filter { states: vec![FileState::Rejected, FileState::Failed, FileState::Dead], ..Filter::default() })
            .await;
    assert_eq!(
        states(&replayable),
        vec![("s3://lake/returns/d.csv", FileState::Rejected), ("s3://lake/orders/c.csv", FileState::Failed)]
    );
    assert_eq!(list(Filter { states: vec![FileState::Dead], ..Filter::default() }).await, vec![]);

    let orders = list(Filter { dataset: Some("orders".into()), ..Filter::default() }).await;
    assert_eq!(urls(&orders), vec!["s3://lake/orders/c.csv", "s3://lake/orders/b.csv", "s3://lake/orders/a.csv"]);
    let no_dataset = list(Filter { dataset: Some(String::new()), ..Filter::default() }).await;
    assert_eq!(urls(&no_dataset), vec!["s3://lake/other/e.csv"], "the empty dataset is a dataset too");
    assert_eq!(list(Filter { dataset: Some("nothing".into()), ..Filter::default() }).await, vec![]);

    let prefixed = list(Filter { url_prefix: Some("s3://lake/o".into()), ..Filter::default() }).await;
    assert_eq!(
        urls(&prefixed),
        vec!["s3://lake/other/e.csv", "s3://lake/orders/c.csv", "s3://lake/orders/b.csv", "s3://lake/orders/a.csv"]
    );
    let exact = list(Filter { url_prefix: Some("s3://lake/orders/b.csv".into()), ..Filter::default() }).await;
    assert_eq!(urls(&exact), vec!["s3://lake/orders/b.csv"], "a full URL is its own prefix");
    // A prefix is a prefix: not a pattern, not a substring.
    for literal in ["s3://lake/orders/_.csv", "s3://lake/%", "lake/orders", "S3://LAKE/"] {
        assert_eq!(list(Filter { url_prefix: Some(literal.into()), ..Filter::default() }).await, vec![], "{literal}");
    }

    let combined = list(Filter {
        states: vec![FileState::Received, FileState::Failed],
        dataset: Some("orders".into()),
        url_prefix: Some("s3://lake/orders/".into()),
        limit: None,
    })
    .await;
    assert_eq!(
        states(&combined),
        vec![("s3://lake/orders/c.csv", FileState::Failed), ("s3://lake/orders/a.csv", FileState::Received)]
    );
}

async fn list_is_newest_first_and_limited<S: StateStore>(store: S) {
    a_small_lake(&store).await;
    let all = store.list(&Filter::default()).await.unwrap();
    let order: Vec<(&str, Millis)> = all.iter().map(|r| (r.key.url.as_str(), r.updated_at)).collect();
    assert_eq!(
        order,
        vec![
            ("s3://lake/other/e.csv", T0 + 8),
            ("s3://lake/returns/d.csv", T0 + 6),
            ("s3://lake/orders/c.csv", T0 + 4),
            ("s3://lake/orders/b.csv", T0 + 2),
            ("s3://lake/orders/a.csv", T0),
        ],
        "most recently updated first"
    );
    assert_eq!(all[0], get(&store, &key("s3://lake/other/e.csv", "v1")).await, "list returns whole records");

    // A change moves a file to the front.
    assert!(store.replay(&key("s3://lake/orders/c.csv", "v1"), T0 + 50).await.unwrap());
    let first = store.list(&Filter { limit: Some(1), ..Filter::default() }).await.unwrap();
    assert_eq!(urls(&first), vec!["s3://lake/orders/c.csv"]);

    let two = store.list(&Filter { limit: Some(2), ..Filter::default() }).await.unwrap();
    assert_eq!(urls(&two), vec!["s3://lake/orders/c.csv", "s3://lake/other/e.csv"]);
    let limited = Filter { dataset: Some("orders".into()), limit: Some(2), ..Filter::default() };
    assert_eq!(urls(&store.list(&limited).await.unwrap()), vec!["s3://lake/orders/c.csv", "s3://lake/orders/b.csv"]);
    assert_eq!(store.list(&Filter { limit: Some(100), ..Filter::default() }).await.unwrap().len(), 5);
    assert_eq!(store.list(&Filter { limit: Some(0), ..Filter::default() }).await.unwrap(), vec![]);
}

async fn count_by_state_counts_per_state_and_dataset<S: StateStore>(store: S) {
    a_small_lake(&store).await;
    // A second RUNNING file and a second version of a loaded one.
    running(&store, "s3://lake/orders/f.csv", "w").await;
    assert!(store.register(&new_file("s3://lake/orders/b.csv", "v2", "orders"), T0 + 9).await.unwrap());

    let sorted = |mut counts: Vec<(FileState, u64)>| {
        counts.sort();
        counts
    };
    assert_eq!(
        sorted(store.count_by_state(None).await.unwrap()),
        vec![
            (FileState::Received, 3),
            (FileState::Running, 1),
            (FileState::Loaded, 1),
            (FileState::Rejected, 1),
            (FileState::Failed, 1),
        ],
        "states with no file are left out"
    );
    assert_eq!(
        sorted(store.count_by_state(Some("orders")).await.unwrap()),
        vec![(FileState::Received, 2), (FileState::Running, 1), (FileState::Loaded, 1), (FileState::Failed, 1)]
    );
    assert_eq!(store.count_by_state(Some("returns")).await.unwrap(), vec![(FileState::Rejected, 1)]);
    assert_eq!(store.count_by_state(Some("")).await.unwrap(), vec![(FileState::Received, 1)]);
    assert_eq!(store.count_by_state(Some("nothing")).await.unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// The SQLite adapter

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_state_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let made = AtomicUsize::new(0);
    suite(|| {
        let path = dir.path().join(format!("state-{}.db", made.fetch_add(1, Ordering::Relaxed)));
        async move {
            let store = SqliteStateStore::open(&path).unwrap();
            assert_eq!(store.describe(), format!("sqlite://{}", path.display()));
            store
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_claims_race_across_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    // Two handles on one file, as two `glueless run` processes have: they share nothing but the file.
    let stores = [Arc::new(SqliteStateStore::open(&path).unwrap()), Arc::new(SqliteStateStore::open(&path).unwrap())];
    race_two_handles(stores, 20).await;
}

/// Two handles on one store (two processes, two clients), `rounds` files, 16 concurrent claims
/// on each split between the handles: exactly one wins, and both handles see the winner.
pub async fn race_two_handles<S: StateStore + 'static>(stores: [Arc<S>; 2], rounds: usize) {
    for round in 0..rounds {
        let file = new_file(&format!("s3://landing/orders/race-{round}.csv"), "v1", "orders");
        assert!(stores[round % 2].register(&file, T0).await.unwrap());
        assert!(!stores[(round + 1) % 2].register(&file, T0).await.unwrap(), "the other handle sees it");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = Arc::clone(&stores[i % 2]);
                let key = file.key.clone();
                tokio::spawn(async move {
                    let owner = format!("handle-{}-worker-{i}", i % 2);
                    let claim = Claim { owner: &owner, now: T0 + 10, lease_ms: LEASE, route: "inline" };
                    store.claim(&key, &claim).await.unwrap().map(|r| r.owner)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one claim wins across two handles: {winners:?}");
        for store in &stores {
            let record = get(&**store, &file.key).await;
            assert_eq!((record.owner, record.attempts), (winners[0].clone(), 1), "round {round}: both see the winner");
        }
    }
}
