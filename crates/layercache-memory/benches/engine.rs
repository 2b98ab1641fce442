//! Throughput of the engine against moka and quick_cache on one workload.
//!
//! Workload: Zipf(0.99) over 1,000,000 `u64` keys, `u64` values. The key sequence
//! (2^20 keys) is generated once, up front, so the RNG is not measured; the timed loops walk
//! it with a cursor that carries over from one sample to the next.
//!
//! | group | cache | operations |
//! |---|---|---|
//! | `get/{1,2}t` | capacity 1,000,000, prefilled with all keys (coldest first) | `get` along the sequence |
//! | `insert/{1,2}t` | capacity 65,536 (so inserts evict), prefilled with the sequence | `insert` along the sequence |
//! | `mixed/{1,2}t` | capacity 65,536, prefilled with the sequence | 90% `get`, 10% `insert` (a miss does not insert) |
//!
//! Every group has the functions `layercache` (default W-TinyLFU, default shards),
//! `moka` (`moka::sync::Cache::new`) and `quick_cache` (`quick_cache::sync::Cache::new`).
//! The `settings/{get,insert}/{1,2}t` groups run the same workloads on layercache with a
//! time to live (1 hour, so nothing expires), with statistics, and with both, next to moka
//! with and without the same time to live.
//!
//! Two-thread runs split each sample's operations evenly between two scoped threads and
//! report the wall time of the slowest, so the throughput is total operations per second.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p layercache-memory --bench engine
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_main, BenchmarkGroup, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::Zipf;

/// Distinct keys of the Zipf distribution.
const N_KEYS: u64 = 1_000_000;
/// Zipf exponent.
const ZIPF_S: f64 = 0.99;
/// Length of the pre-generated key sequence (a power of two, so indices wrap with a mask).
const SEQ_LEN: usize = 1 << 20;
/// Capacity of the eviction workloads.
const SMALL_CAPACITY: u64 = 1 << 16;
/// Operations in one criterion iteration (over all threads).
const OPS_PER_ITER: u64 = 4096;

/// The operations the benchmarks need, with the same meaning for every cache.
trait BenchCache: Send + Sync {
    fn with_capacity(capacity: u64) -> Self;
    fn lookup(&self, key: u64) -> Option<u64>;
    fn put(&self, key: u64, value: u64);
    /// Settles deferred work (moka) before the cache is inspected or measured.
    fn settle(&self) {}
    fn entries(&self) -> u64;
}

impl BenchCache for layercache_memory::Cache<u64, u64> {
    fn with_capacity(capacity: u64) -> Self {
        layercache_memory::Cache::new(capacity)
    }
    #[inline]
    fn lookup(&self, key: u64) -> Option<u64> {
        layercache_memory::Cache::get(self, &key)
    }
    #[inline]
    fn put(&self, key: u64, value: u64) {
        layercache_memory::Cache::insert(self, key, value);
    }
    fn entries(&self) -> u64 {
        self.entry_count()
    }
}

impl BenchCache for moka::sync::Cache<u64, u64> {
    fn with_capacity(capacity: u64) -> Self {
        moka::sync::Cache::new(capacity)
    }
    #[inline]
    fn lookup(&self, key: u64) -> Option<u64> {
        moka::sync::Cache::get(self, &key)
    }
    #[inline]
    fn put(&self, key: u64, value: u64) {
        moka::sync::Cache::insert(self, key, value);
    }
    fn settle(&self) {
        self.run_pending_tasks();
    }
    fn entries(&self) -> u64 {
        self.entry_count()
    }
}

impl BenchCache for quick_cache::sync::Cache<u64, u64> {
    fn with_capacity(capacity: u64) -> Self {
        quick_cache::sync::Cache::new(capacity as usize)
    }
    #[inline]
    fn lookup(&self, key: u64) -> Option<u64> {
        quick_cache::sync::Cache::get(self, &key)
    }
    #[inline]
    fn put(&self, key: u64, value: u64) {
        quick_cache::sync::Cache::insert(self, key, value);
    }
    fn entries(&self) -> u64 {
        self.len() as u64
    }
}

/// The time to live of the expiring variants: long enough that nothing expires in a run.
const TTL: Duration = Duration::from_secs(3600);

/// layercache built with a time to live and/or statistics (the `settings` groups).
struct Configured<const TTL_ON: bool, const STATS_ON: bool>(layercache_memory::Cache<u64, u64>);

impl<const TTL_ON: bool, const STATS_ON: bool> BenchCache for Configured<TTL_ON, STATS_ON> {
    fn with_capacity(capacity: u64) -> Self {
        let mut b = layercache_memory::Cache::builder().max_capacity(capacity);
        if TTL_ON {
            b = b.time_to_live(TTL);
        }
        if STATS_ON {
            b = b.record_stats();
        }
        Configured(b.build())
    }
    #[inline]
    fn lookup(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    #[inline]
    fn put(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
    fn entries(&self) -> u64 {
        self.0.entry_count()
    }
}

/// moka with the same time to live (moka 0.12 has no statistics to turn on).
struct MokaTtl(moka::sync::Cache<u64, u64>);

impl BenchCache for MokaTtl {
    fn with_capacity(capacity: u64) -> Self {
        MokaTtl(
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(TTL)
                .build(),
        )
    }
    #[inline]
    fn lookup(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    #[inline]
    fn put(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
    fn settle(&self) {
        self.0.run_pending_tasks();
    }
    fn entries(&self) -> u64 {
        self.0.entry_count()
    }
}

#[derive(Clone, Copy)]
enum Op {
    Get,
    Insert,
    /// 90% get, 10% insert.
    Mixed,
}

/// The Zipf key sequence: ranks 1..=N_KEYS mapped to keys 0..N_KEYS (rank 1 = key 0).
fn zipf_keys() -> Vec<u64> {
    let zipf = Zipf::new(N_KEYS, ZIPF_S).expect("valid Zipf parameters");
    let mut rng = StdRng::seed_from_u64(0x5eed);
    (0..SEQ_LEN).map(|_| rng.sample(zipf) as u64 - 1).collect()
}

/// Runs `n` operations of kind `op`, starting at position `start` of `keys`.
#[inline(always)]
fn work<C: BenchCache>(cache: &C, keys: &[u64], start: usize, n: usize, op: Op) -> u64 {
    let mask = keys.len() - 1;
    let mut hits = 0u64;
    for i in start..start + n {
        let j = i & mask;
        let k = keys[j];
        match op {
            Op::Get => hits += u64::from(cache.lookup(k).is_some()),
            Op::Insert => cache.put(k, k),
            Op::Mixed => {
                if j.is_multiple_of(10) {
                    cache.put(k, k);
                } else {
                    hits += u64::from(cache.lookup(k).is_some());
                }
            }
        }
    }
    hits
}

/// Times `iters` iterations of `OPS_PER_ITER` operations split over `threads` threads.
fn timed<C: BenchCache>(
    cache: &C,
    keys: &[u64],
    cursor: &AtomicUsize,
    threads: usize,
    iters: u64,
    op: Op,
) -> Duration {
    let total = (iters * OPS_PER_ITER) as usize;
    let start = cursor.fetch_add(total, Ordering::Relaxed);
    if threads == 1 {
        let t = Instant::now();
        black_box(work(cache, keys, start, total, op));
        return t.elapsed();
    }
    let per_thread = total / threads;
    let stride = keys.len() / threads;
    let barrier = Barrier::new(threads + 1);
    let mut began = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                black_box(work(cache, keys, start + t * stride, per_thread, op));
            });
        }
        barrier.wait();
        began = Instant::now();
    });
    began.elapsed()
}

/// Builds a cache for `op` with the state its benchmark starts from.
fn prepare<C: BenchCache>(name: &str, keys: &[u64], op: Op) -> C {
    match op {
        Op::Get => {
            let cache = C::with_capacity(N_KEYS);
            // Coldest key first: key k has Zipf rank k + 1, so if a cache cannot hold every
            // key (layercache splits the capacity exactly over its shards, so a shard that
            // hashes more than its share evicts), what it drops is cold, not the hottest keys.
            for k in (0..N_KEYS).rev() {
                cache.put(k, k);
            }
            cache.settle();
            let present = (0..N_KEYS).filter(|&k| cache.lookup(k).is_some()).count();
            let seq_hits = keys.iter().filter(|&&k| cache.lookup(k).is_some()).count();
            eprintln!(
                "[get prefill] {name}: {present} of {N_KEYS} keys present, entry_count {}, \
                 {:.4}% hits on the Zipf sequence",
                cache.entries(),
                100.0 * seq_hits as f64 / keys.len() as f64
            );
            cache
        }
        Op::Insert | Op::Mixed => {
            let cache = C::with_capacity(SMALL_CAPACITY);
            for &k in keys {
                cache.put(k, k);
            }
            cache.settle();
            cache
        }
    }
}

fn bench_one<C: BenchCache>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    keys: &[u64],
    threads: usize,
    op: Op,
) {
    let cache: C = prepare(name, keys, op);
    let cursor = AtomicUsize::new(0);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| timed(&cache, keys, &cursor, threads, iters, op));
    });
    if let Op::Mixed = op {
        // Report the hit ratio of the mixed workload once the cache has run it.
        let hits = work(&cache, keys, 0, keys.len(), Op::Get);
        eprintln!(
            "[mixed] {name}: {:.2}% hits over the sequence after the run, {} entries",
            100.0 * hits as f64 / keys.len() as f64,
            {
                cache.settle();
                cache.entries()
            }
        );
    }
}

fn engine(c: &mut Criterion) {
    let keys = zipf_keys();
    let distinct = {
        let mut seen = vec![false; N_KEYS as usize];
        keys.iter()
            .filter(|&&k| !std::mem::replace(&mut seen[k as usize], true))
            .count()
    };
    eprintln!("Zipf({ZIPF_S}) over {N_KEYS} keys: {SEQ_LEN} requests, {distinct} distinct");
    for (label, op) in [
        ("get", Op::Get),
        ("insert", Op::Insert),
        ("mixed", Op::Mixed),
    ] {
        for threads in [1usize, 2] {
            let mut group = c.benchmark_group(format!("{label}/{threads}t"));
            group
                .throughput(Throughput::Elements(OPS_PER_ITER))
                .measurement_time(Duration::from_secs(3))
                .warm_up_time(Duration::from_secs(1))
                .sample_size(20);
            bench_one::<layercache_memory::Cache<u64, u64>>(
                &mut group,
                "layercache",
                &keys,
                threads,
                op,
            );
            bench_one::<moka::sync::Cache<u64, u64>>(&mut group, "moka", &keys, threads, op);
            bench_one::<quick_cache::sync::Cache<u64, u64>>(
                &mut group,
                "quick_cache",
                &keys,
                threads,
                op,
            );
            group.finish();
        }
    }
    // The same get and insert workloads with a time to live and with statistics on.
    for (label, op) in [("get", Op::Get), ("insert", Op::Insert)] {
        for threads in [1usize, 2] {
            let mut group = c.benchmark_group(format!("settings/{label}/{threads}t"));
            group
                .throughput(Throughput::Elements(OPS_PER_ITER))
                .measurement_time(Duration::from_secs(3))
                .warm_up_time(Duration::from_secs(1))
                .sample_size(20);
            bench_one::<Configured<false, false>>(&mut group, "layercache", &keys, threads, op);
            bench_one::<Configured<true, false>>(&mut group, "layercache+ttl", &keys, threads, op);
            bench_one::<Configured<false, true>>(
                &mut group,
                "layercache+stats",
                &keys,
                threads,
                op,
            );
            bench_one::<Configured<true, true>>(
                &mut group,
                "layercache+ttl+stats",
                &keys,
                threads,
                op,
            );
            bench_one::<moka::sync::Cache<u64, u64>>(&mut group, "moka", &keys, threads, op);
            bench_one::<MokaTtl>(&mut group, "moka+ttl", &keys, threads, op);
            group.finish();
        }
    }
}

/// `criterion_group!` defines an undocumented `pub fn`; keep the lint quiet for it alone.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::engine);
}
criterion_main!(harness::benches);
