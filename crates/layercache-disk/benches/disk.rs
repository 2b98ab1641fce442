//! `DiskTier` throughput: get and set of 1 KiB values through the `Tier` trait, driven by a
//! tokio runtime (each call runs on tokio's blocking pool).
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-disk cargo bench -p layercache-disk --bench disk
//! ```
//!
//! The tier holds 20 000 entries (16-byte keys, 1 KiB values: about 20 MiB counted) under a
//! 64 MiB bound, except in `set_evict`, where it is full and every set evicts the oldest.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use layercache_disk::{DiskOptions, DiskTier, Durability};
use layercache_tier::Tier;
use rand::{Rng, SeedableRng};

const N: u64 = 20_000;
const VALUE: usize = 1024;

fn key(i: u64) -> Vec<u8> {
    format!("key-{i:012}").into_bytes()
}

fn filled(rt: &tokio::runtime::Runtime, options: DiskOptions) -> (tempfile::TempDir, DiskTier) {
    let dir = tempfile::tempdir().unwrap();
    let tier = DiskTier::open(dir.path(), options).unwrap();
    let keys: Vec<Vec<u8>> = (0..N).map(key).collect();
    let value = vec![0x5A; VALUE];
    rt.block_on(async {
        for chunk in keys.chunks(1000) {
            let batch: Vec<(&[u8], &[u8])> = chunk
                .iter()
                .map(|k| (k.as_slice(), value.as_slice()))
                .collect();
            tier.set_many(&batch, None).await.unwrap();
        }
    });
    tier.flush().unwrap();
    (dir, tier)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let keys: Vec<Vec<u8>> = (0..N).map(key).collect();
    let value = vec![0xA5; VALUE];
    let (_dir, tier) = filled(&rt, DiskOptions::new(64 << 20));

    let mut g = c.benchmark_group("disk_get_1KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hit", |b| {
        b.to_async(&rt).iter_batched(
            || &keys[rng.gen_range(0..N as usize)],
            |k| async { black_box(tier.get(k).await.unwrap()) },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("miss", |b| {
        b.to_async(&rt).iter_batched(
            || key(N + rng.gen_range(0..N)),
            |k| {
                let tier = &tier;
                async move { black_box(tier.get(&k).await.unwrap()) }
            },
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(8));
    g.bench_function("hit_8_concurrent", |b| {
        b.to_async(&rt).iter_batched(
            || {
                (0..8)
                    .map(|_| keys[rng.gen_range(0..N as usize)].clone())
                    .collect::<Vec<_>>()
            },
            |ks| {
                let tier = &tier;
                async move {
                    let gets = ks.iter().map(|k| tier.get(k));
                    black_box(futures_join_all(gets).await)
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(16));
    g.bench_function("get_many_16", |b| {
        b.to_async(&rt).iter_batched(
            || {
                (0..16)
                    .map(|_| keys[rng.gen_range(0..N as usize)].clone())
                    .collect::<Vec<_>>()
            },
            |ks| {
                let tier = &tier;
                async move {
                    let refs: Vec<&[u8]> = ks.iter().map(Vec::as_slice).collect();
                    black_box(tier.get_many(&refs).await.unwrap())
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("disk_set_1KiB");
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    g.bench_function("periodic_1s", |b| {
        b.to_async(&rt).iter_batched(
            || &keys[rng.gen_range(0..N as usize)],
            |k| async { tier.set(k, &value, None).await.unwrap() },
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(16));
    g.bench_function("set_many_16_periodic_1s", |b| {
        b.to_async(&rt).iter_batched(
            || {
                (0..16)
                    .map(|_| keys[rng.gen_range(0..N as usize)].clone())
                    .collect::<Vec<_>>()
            },
            |ks| {
                let tier = &tier;
                let value = &value;
                async move {
                    let batch: Vec<(&[u8], &[u8])> = ks
                        .iter()
                        .map(|k| (k.as_slice(), value.as_slice()))
                        .collect();
                    tier.set_many(&batch, None).await.unwrap()
                }
            },
            BatchSize::SmallInput,
        )
    });
    drop(tier);

    // A full tier: each set of a new key evicts the oldest entry.
    let entry = 16 + VALUE as u64 + layercache_disk::RECORD_HEADER_BYTES;
    let (_dir, full) = filled(&rt, DiskOptions::new(N * entry));
    let mut next = N;
    g.throughput(Throughput::Elements(1));
    g.bench_function("set_evict_periodic_1s", |b| {
        b.to_async(&rt).iter_batched(
            || {
                next += 1;
                key(next)
            },
            |k| {
                let (full, value) = (&full, &value);
                async move { full.set(&k, value, None).await.unwrap() }
            },
            BatchSize::SmallInput,
        )
    });
    drop(full);

    let (_dir, immediate) = filled(
        &rt,
        DiskOptions::new(64 << 20).durability(Durability::Immediate),
    );
    g.sample_size(20);
    g.bench_function("immediate", |b| {
        b.to_async(&rt).iter_batched(
            || &keys[rng.gen_range(0..N as usize)],
            |k| async { immediate.set(k, &value, None).await.unwrap() },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Awaits all the futures concurrently (a minimal `join_all`, to avoid a dependency).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.map(|f| Some(Box::pin(f))).collect();
    let mut out = Vec::with_capacity(pending.len());
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(Option::unwrap));
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
