//! Criterion benchmarks of the embedded (SQLite) state store, the part of a small file's cost
//! that is not the engine's or the warehouse's, and of what `glueless status` asks it:
//!
//! - `file_life`: one file's transitions as `glueless run` makes them (register, claim, finish
//!   LOADED), each its own statement and commit;
//! - `status_100k/counts`, `status_100k/counts_dataset`, `status_100k/attention`: the counts per
//!   state (all, and of one dataset) and the list of files needing attention, over a store of
//!   100,000 records (99 % LOADED, the rest spread over the other states).
//!
//! Run with `cargo bench -p glueless-jobs --bench state` (the 100,000 records take a few
//! seconds to write, once).

use criterion::{Criterion, criterion_group, criterion_main};
use glueless_jobs::adapters::sqlite::SqliteStateStore;
use glueless_jobs::ports::{Claim, FileKey, FileState, Filter, NewFile, Outcome, StateStore};
use std::hint::black_box;

const RECORDS: u64 = 100_000;

fn new_file(i: u64) -> NewFile {
    NewFile {
        key: FileKey { url: format!("/srv/lake/landing/orders/d{}/part-{i}.csv", i % 50), version: format!("v{i}") },
        dataset: format!("ds{}", i % 3),
        size: 1000,
        event_time: Some(1_700_000_000_000 + i as i64),
    }
}

/// Register, claim and finish file `i` the way the pipeline does; `state` is the outcome.
async fn life(store: &SqliteStateStore, i: u64, state: FileState) {
    let f = new_file(i);
    let now = 1_700_000_000_000 + i as i64;
    assert!(store.register(&f, now).await.unwrap());
    let claim = Claim { owner: "bench", now, lease_ms: 300_000, route: "inline" };
    store.claim(&f.key, &claim).await.unwrap().expect("claimed");
    let outcome = match state {
        FileState::Loaded => Outcome::Loaded { load_id: "load".into(), rows_loaded: 1000, rows_rejected: 0 },
        FileState::Rejected => Outcome::Rejected { reason: "a reason".into(), rows_rejected: 1 },
        FileState::Failed => Outcome::Failed { error: "an error".into(), retry_at: now + 1000 },
        FileState::Dead => Outcome::Dead { error: "an error".into() },
        FileState::Received => Outcome::Released,
        FileState::Running => return,
    };
    assert!(store.finish(&f.key, "bench", &outcome, now).await.unwrap());
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let store = SqliteStateStore::open(&dir.path().join("life.db")).unwrap();
    let mut i = 0;
    c.bench_function("file_life", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(life(&store, i, FileState::Loaded))
        })
    });

    let store = SqliteStateStore::open(&dir.path().join("100k.db")).unwrap();
    rt.block_on(async {
        let others = [FileState::Rejected, FileState::Failed, FileState::Dead, FileState::Received, FileState::Running];
        for i in 0..RECORDS {
            let state = if i % 100 == 0 { others[(i / 100) as usize % others.len()] } else { FileState::Loaded };
            life(&store, i, state).await;
        }
    });
    let mut g = c.benchmark_group("status_100k");
    g.bench_function("counts", |b| b.iter(|| black_box(rt.block_on(store.count_by_state(None)).unwrap())));
    g.bench_function("counts_dataset", |b| {
        b.iter(|| black_box(rt.block_on(store.count_by_state(Some("ds1"))).unwrap()))
    });
    let attention = Filter {
        states: vec![FileState::Dead, FileState::Failed, FileState::Rejected],
        limit: Some(20),
        ..Filter::default()
    };
    g.bench_function("attention", |b| b.iter(|| black_box(rt.block_on(store.list(&attention)).unwrap())));
    g.finish();
}

criterion_group!(state, benches);
criterion_main!(state);
