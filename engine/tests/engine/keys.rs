//! The key index past its memory: a file job whose `primaryKey` and `unique` indexes spill to
//! disk (a 64 KiB budget, about twenty runs each) rejects exactly the rows, with exactly the
//! first lines, that the same job rejects with the keys in memory.

use glueless_engine::{Dataset, FileJob, Limits, Report, Stores, contract::load_str};
use object_store::{ObjectStoreExt, PutPayload, path::Path as StorePath};

const ROWS: u64 = 12_000;

fn dataset(schema: &str) -> Dataset {
    let toml = format!("name = \"t\"\n[load]\nmax_rejected_ratio = 1.0\n{schema}");
    Dataset::from_contract(load_str(&toml, "t.toml", std::path::Path::new(".")).expect("contract")).expect("dataset")
}

fn run(dataset: &Dataset, body: &[u8], limits: Limits) -> Report {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let stores = Stores::new();
    rt.block_on(stores.memory().put(&StorePath::from("in.csv"), PutPayload::from(body.to_vec()))).expect("put");
    let job =
        FileJob::new(dataset, stores.resolve("memory://in.csv").expect("url")).limits(limits).max_errors(usize::MAX);
    rt.block_on(job.run()).expect("runs")
}

/// Rows with keys drawn from a range smaller than the file (a fixed xorshift), so that about a
/// third repeat an earlier key.
fn csv(header: &str, row: impl Fn(u64, u64) -> String) -> Vec<u8> {
    let mut s = format!("{header}\n");
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..ROWS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&row(i, x));
        s.push('\n');
    }
    s.into_bytes()
}

fn same_answers(d: &Dataset, body: &[u8]) {
    let memory = run(d, body, Limits::default());
    let spilled = run(d, body, Limits { key_index_bytes: 64 << 10, ..Limits::default() });
    assert!(memory.rows_rejected > ROWS / 10 && memory.rows_valid > ROWS / 4, "{} rejected", memory.rows_rejected);
    assert!(memory.errors.iter().all(|e| e.message.contains("first seen on line")));
    assert_eq!((spilled.rows_valid, spilled.rows_rejected), (memory.rows_valid, memory.rows_rejected));
    assert_eq!(spilled.errors, memory.errors, "the same rows rejected, naming the same first lines");
}

#[test]
fn an_integer_key_and_a_unique_text_field_spilled_answer_as_in_memory() {
    let d = dataset(
        "[schema]\nprimaryKey = [\"id\"]\n[[schema.fields]]\nname = \"id\"\ntype = \"integer\"\n\
         [[schema.fields]]\nname = \"code\"\ntype = \"string\"\nconstraints = { unique = true }\n",
    );
    let body = csv("id,code", |i, x| format!("{},C-{}", x % 9_000, (x >> 20) % 16_000 + i % 2));
    same_answers(&d, &body);
}

#[test]
fn a_composite_text_key_spilled_answers_as_in_memory() {
    let d = dataset(
        "[schema]\nprimaryKey = [\"region\", \"n\"]\n[[schema.fields]]\nname = \"region\"\ntype = \"string\"\n\
         [[schema.fields]]\nname = \"n\"\ntype = \"integer\"\n",
    );
    let body = csv("region,n", |_, x| format!("r{},{}", x % 7, (x >> 8) % 1_200));
    same_answers(&d, &body);
}
