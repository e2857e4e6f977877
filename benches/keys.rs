//! Criterion benchmarks of the in-file key index ([`KeyIndex`]): a probe and a claim per row, as
//! the validator does for a `primaryKey`, over one million distinct keys in a shuffled order.
//!
//! - `int/memory`: integer keys, the default budget (32 MiB): nothing spills, the common case;
//! - `text/memory`: text keys (`ORD-` and 12 digits) hashed and compared by their bytes;
//! - `int/spill` and `text/spill`: the same keys with a 4 MiB budget, so the index spills
//!   several runs to the temp dir and looks every key up in them too.
//!
//! Each is in keys per second. Run with `cargo bench -p glueless-engine --bench keys`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use glueless_engine::validate::keys::{Key, KeyHasher, KeyIndex, Probe};
use std::hash::RandomState;
use std::time::Duration;

const KEYS: u64 = 1_000_000;

/// The numbers 0..KEYS in a fixed pseudo-random order (an odd multiplier modulo a power of two
/// is a bijection), as order ids arrive in a file that is not sorted by them.
fn ids() -> Vec<u64> {
    let n = KEYS.next_power_of_two();
    (0..n).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & (n - 1)).filter(|&v| v < KEYS).collect()
}

/// Inserts every key once; all are new. Returns the keys seen (none).
fn run(index: &mut KeyIndex, keys: impl Iterator<Item = Key>) -> u64 {
    let mut seen = 0;
    for (line, key) in keys.enumerate() {
        match index.probe(key) {
            Probe::Seen(_) => seen += 1,
            p => index.claim(p, line as u64 + 2),
        }
    }
    seen
}

fn text_key(hasher: &RandomState, id: u64) -> Key {
    let mut h = KeyHasher::new(hasher);
    h.piece(format!("ORD-{id:012}").as_bytes());
    h.finish()
}

fn keys(c: &mut Criterion) {
    let ids = ids();
    let hasher = RandomState::new();
    let mut group = c.benchmark_group("keys");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(KEYS));
    for (name, budget) in [("memory", 32usize << 20), ("spill", 4 << 20)] {
        let index = || {
            let mut k = KeyIndex::default();
            k.set_budget(budget, None);
            k
        };
        group.bench_function(format!("int/{name}"), |b| {
            b.iter_batched_ref(
                index,
                |k| assert_eq!(run(k, ids.iter().map(|&v| Key::Int(v))), 0),
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("text/{name}"), |b| {
            b.iter_batched_ref(
                index,
                |k| assert_eq!(run(k, ids.iter().map(|&v| text_key(&hasher, v))), 0),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, keys);
criterion_main!(benches);
