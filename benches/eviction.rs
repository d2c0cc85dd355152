//! The eviction index at 10^6 entries: insert, evict-oldest, age cutoff.

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use mcp_orchestrator::actors::evictor::EvictionIndex;

const N: i64 = 1_000_000;

fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap_or_default()
}

fn full() -> EvictionIndex {
    let mut idx = EvictionIndex::default();
    for i in 0..N {
        // Completion order differs from insertion order, as in real runs.
        let ms = (i * 7919) % N;
        idx.insert(t(ms), &format!("wf_{i:08}"));
    }
    idx
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("eviction_index_1e6");
    g.sample_size(10);
    g.bench_function("insert_one_into_1e6", |b| {
        b.iter_batched_ref(
            full,
            |idx| idx.insert(t(N / 2), "wf_new"),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("evict_oldest_one_of_1e6", |b| {
        b.iter_batched_ref(
            full,
            |idx| idx.over_capacity(N as usize - 1),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("evict_1000_oldest_of_1e6", |b| {
        b.iter_batched_ref(
            full,
            |idx| idx.over_capacity(N as usize - 1000),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("age_cutoff_1000_of_1e6", |b| {
        b.iter_batched_ref(full, |idx| idx.older_than(t(1000)), BatchSize::LargeInput)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
