//! What `TieredCache` costs over the pieces it wraps, on three comparisons.
//!
//! | group | functions | one iteration |
//! |---|---|---|
//! | `l1_hit` | `tiered` (`TieredCache::get`, an L1 hit), `engine` (`layercache_memory::future::Cache::get`), `engine+expiry` (the engine as TieredCache configures its L1: a per-entry `Expiry` and a `Slot { value, ttl }` value) | one get of a key drawn uniformly from 10,000 prefilled `u64` keys, 100-byte `String` values, capacity 20,000 (nothing evicted) |
//! | `l2_hit` | `tiered` (`TieredCache::get` with `skip_l1_read().skip_l1_write()` as default entry options, so every get goes to Redis), `redis_get+postcard` (redis-rs `GET` on one `MultiplexedConnection` plus `postcard::from_bytes` of the payload, from the same keys on the same server) | one get of a key drawn uniformly from 1,000 keys, 1 KiB `String` values (1,058 bytes in Redis: 32-byte envelope + postcard) |
//! | `get_many` | `get_many_or_load` (100 keys, all in L2, L1 skipped), `get_x100_sequential` (100 `get`s one after the other), `get_x100_join_all` (100 `get`s awaited together, pipelined on the multiplexed connection), all through the same `TieredCache` | 100 distinct keys of the `l2_hit` set |
//! | `l1_hit_zipf_u64`, `l1_hit_str100` | `engine` (`layercache_memory::Cache::get`), `tiered` (no backplane), `tiered+bp+tags` (a `RedisBackplane`, two tags per entry), and models of the hit path's pieces (see `tiered/hit_path.rs`) | one get: Zipf(0.99) over 100,000 `u64` keys with `u64` values, or uniform over 10,000 keys with 100-byte `String` values |
//!
//! Redis is a private `redis-server` on a free loopback port (`layercache_redis::testing::
//! RedisServer`), killed when the run ends. Everything runs on one current-thread tokio
//! runtime: each criterion sample is one `block_on` around a loop of `iters` operations, so
//! the per-operation harness cost is the same loop on both sides of a comparison. Key
//! sequences are generated up front (not timed); each side walks the same sequence with its
//! own cursor. No `metrics` recorder is installed (the `metrics` macros still build their
//! keys and labels) and no `tracing` subscriber.
//!
//! After the criterion groups, a paired summary runs the two sides of each comparison in
//! alternating rounds (A B B A ...) and prints the median time per operation of each side and
//! the median of the per-round ratios, which is less sensitive to other load on the machine
//! than comparing two criterion estimates taken seconds apart. It is skipped by
//! `cargo test --benches`.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-tbench cargo bench -p layercache --bench tiered
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_main, BenchmarkGroup, Criterion, Throughput};
use futures_util::future::join_all;
use layercache::envelope::HEADER_LEN;
use layercache::memory::{future::Cache as Engine, Expiry};
use layercache::{EntryOptions, EvictionPolicy, Tier, TieredCache};
use layercache_redis::testing::RedisServer;
use layercache_redis::RedisTier;
use redis::aio::MultiplexedConnection;
use tokio::runtime::Runtime;

#[path = "tiered/hit_path.rs"]
mod hit_path;

/// Keys prefilled for the L1 comparison.
const L1_KEYS: u64 = 10_000;
/// Length of an L1 value.
const L1_VALUE_LEN: usize = 100;
/// L1 capacity on both sides: room for every key, so nothing is evicted.
const L1_CAPACITY: u64 = 20_000;
/// Keys stored in Redis for the L2 comparisons.
const L2_KEYS: u64 = 1_000;
/// Length of an L2 value (postcard adds a 2-byte length, the envelope 32 bytes).
const L2_VALUE_LEN: usize = 1024;
/// Keys per `get_many` call.
const BATCH: usize = 100;
/// Length of a pre-generated key sequence (a power of two, so cursors wrap with a mask).
const SEQ_LEN: usize = 1 << 16;
/// Batches pre-generated for `get_many` (each a slice of a permutation of the L2 keys).
const N_BATCHES: usize = 200;
/// Rounds of the paired summary.
const ROUNDS: usize = 31;

/// SplitMix64: a small deterministic generator (the key sequences must not depend on a
/// crate that this bench would otherwise not need).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `SEQ_LEN` keys drawn uniformly from `0..n_keys`.
fn key_sequence(n_keys: u64, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix(seed);
    (0..SEQ_LEN).map(|_| rng.below(n_keys)).collect()
}

/// `N_BATCHES` batches of `BATCH` distinct keys of `0..L2_KEYS`.
fn batches(seed: u64) -> Vec<Vec<u64>> {
    let mut rng = SplitMix(seed);
    let mut out = Vec::with_capacity(N_BATCHES);
    while out.len() < N_BATCHES {
        let mut perm: Vec<u64> = (0..L2_KEYS).collect();
        for i in (1..perm.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            perm.swap(i, j);
        }
        out.extend(perm.chunks(BATCH).map(<[u64]>::to_vec));
    }
    out.truncate(N_BATCHES);
    out
}

/// A deterministic alphanumeric string of `len` bytes for `key` (random-looking, so lz4 does
/// not shrink it and the envelope stores it as is).
fn value_of(key: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = SplitMix(key ^ 0xdead_beef);
    (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// One side of a comparison: an operation run `iters` times in a timed loop.
trait Side {
    /// One operation (one get, or one batch of `BATCH` keys).
    async fn op(&mut self);
}

/// Runs `iters` operations of `side` inside one `block_on` and returns their wall time.
fn timed<S: Side>(rt: &Runtime, side: &mut S, iters: u64) -> Duration {
    rt.block_on(async {
        let started = Instant::now();
        for _ in 0..iters {
            side.op().await;
        }
        started.elapsed()
    })
}

/// Next key of a sequence walked with a wrapping cursor.
#[inline(always)]
fn next_key(seq: &[u64], pos: &mut usize) -> u64 {
    let k = seq[*pos & (SEQ_LEN - 1)];
    *pos = pos.wrapping_add(1);
    k
}

// ---------------------------------------------------------------------------------------
// l1_hit

/// `TieredCache::get`, every key in L1.
struct TieredGet {
    cache: TieredCache<u64, String>,
    seq: Vec<u64>,
    pos: usize,
}

impl Side for TieredGet {
    #[inline(always)]
    async fn op(&mut self) {
        let k = next_key(&self.seq, &mut self.pos);
        let v = self.cache.get(&k).await;
        debug_assert!(matches!(v, Ok(Some(_))));
        let _ = black_box(v);
    }
}

/// The engine's own async `get`.
struct EngineGet {
    cache: Engine<u64, String>,
    seq: Vec<u64>,
    pos: usize,
}

impl Side for EngineGet {
    #[inline(always)]
    async fn op(&mut self) {
        let k = next_key(&self.seq, &mut self.pos);
        let v = self.cache.get(&k).await;
        debug_assert!(v.is_some());
        black_box(v);
    }
}

/// What TieredCache keeps in L1 (its `Slot` is private; this has the same shape).
#[derive(Clone)]
struct Slot {
    value: Option<String>,
    ttl: Option<Duration>,
}

/// The same per-entry expiry as TieredCache's L1.
struct SlotExpiry;

impl Expiry<u64, Slot> for SlotExpiry {
    fn expire_after_create(&self, _: &u64, slot: &Slot) -> Option<Duration> {
        slot.ttl
    }
    fn expire_after_update(&self, _: &u64, slot: &Slot, _: Option<Duration>) -> Option<Duration> {
        slot.ttl
    }
    fn reads_change_deadlines(&self) -> bool {
        false
    }
}

/// The engine configured as TieredCache's L1, without the TieredCache around it.
struct EngineSlotGet {
    cache: Engine<u64, Slot>,
    seq: Vec<u64>,
    pos: usize,
}

impl Side for EngineSlotGet {
    #[inline(always)]
    async fn op(&mut self) {
        let k = next_key(&self.seq, &mut self.pos);
        let v = self.cache.get(&k).await.and_then(|s| s.value);
        debug_assert!(v.is_some());
        black_box(v);
    }
}

// ---------------------------------------------------------------------------------------
// l2_hit

/// `TieredCache::get` with L1 skipped: every call is a Redis `GET`, an envelope check and a
/// postcard decode.
struct TieredL2Get {
    cache: TieredCache<u64, String>,
    seq: Vec<u64>,
    pos: usize,
}

impl Side for TieredL2Get {
    #[inline(always)]
    async fn op(&mut self) {
        let k = next_key(&self.seq, &mut self.pos);
        let v = self.cache.get(&k).await.expect("get");
        assert!(v.is_some(), "key {k} missing from L2");
        black_box(v);
    }
}

/// What a hand-written client does: build the key, `GET` it on a multiplexed connection,
/// postcard-decode the payload (the envelope's header is skipped, not checked).
struct BareL2Get {
    conn: MultiplexedConnection,
    prefix: &'static str,
    seq: Vec<u64>,
    pos: usize,
}

/// `prefix:key`, as TieredCache writes its Redis keys.
fn redis_key(prefix: &str, key: u64) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::with_capacity(prefix.len() + 21);
    out.extend_from_slice(prefix.as_bytes());
    out.push(b':');
    let _ = write!(out, "{key}");
    out
}

impl Side for BareL2Get {
    #[inline(always)]
    async fn op(&mut self) {
        let k = next_key(&self.seq, &mut self.pos);
        let k2 = redis_key(self.prefix, k);
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&k2)
            .query_async(&mut self.conn)
            .await
            .expect("GET");
        let bytes = bytes.unwrap_or_else(|| panic!("key {k} missing from Redis"));
        let v: String = postcard::from_bytes(&bytes[HEADER_LEN..]).expect("postcard");
        black_box(v);
    }
}

// ---------------------------------------------------------------------------------------
// get_many

/// The loader of the `get_many` side: never called, since every key is in L2.
async fn no_loader(keys: Vec<u64>) -> Result<HashMap<u64, String>, std::io::Error> {
    Err(std::io::Error::other(format!(
        "batch loader called for {} keys: L2 lost some",
        keys.len()
    )))
}

/// `get_many_or_load` of `BATCH` keys.
struct GetMany {
    cache: TieredCache<u64, String>,
    batches: Vec<Vec<u64>>,
    pos: usize,
}

impl Side for GetMany {
    async fn op(&mut self) {
        // The key vector is moved into the call, so it is built per call (about 100 ns,
        // under 0.1% of a batch).
        let keys = self.batches[self.pos % N_BATCHES].clone();
        self.pos += 1;
        let found = self
            .cache
            .get_many_or_load(keys, no_loader)
            .await
            .expect("get_many_or_load");
        assert_eq!(found.len(), BATCH);
        black_box(found);
    }
}

/// `BATCH` single gets, one after the other.
struct GetSequential {
    cache: TieredCache<u64, String>,
    batches: Vec<Vec<u64>>,
    pos: usize,
}

impl Side for GetSequential {
    async fn op(&mut self) {
        let batch = &self.batches[self.pos % N_BATCHES];
        self.pos += 1;
        let mut found = 0;
        for k in batch {
            let v = self.cache.get(k).await.expect("get");
            found += usize::from(v.is_some());
            black_box(v);
        }
        assert_eq!(found, BATCH);
    }
}

/// `BATCH` single gets awaited together.
struct GetJoinAll {
    cache: TieredCache<u64, String>,
    batches: Vec<Vec<u64>>,
    pos: usize,
}

impl Side for GetJoinAll {
    async fn op(&mut self) {
        let batch = &self.batches[self.pos % N_BATCHES];
        self.pos += 1;
        let cache = &self.cache;
        let values = join_all(batch.iter().map(|k| cache.get(k))).await;
        let found = values.iter().filter(|v| matches!(v, Ok(Some(_)))).count();
        assert_eq!(found, BATCH);
        black_box(values);
    }
}

// ---------------------------------------------------------------------------------------
// set-up

/// Everything the groups measure, built once.
struct Fixture {
    tiered_l1: TieredGet,
    engine_l1: EngineGet,
    engine_slot_l1: EngineSlotGet,
    tiered_l2: TieredL2Get,
    bare_l2: BareL2Get,
    get_many: GetMany,
    get_seq: GetSequential,
    get_join: GetJoinAll,
}

/// The L2 cache's name (its Redis key prefix).
const L2_NAME: &str = "l2bench";

fn setup(rt: &Runtime, server: &RedisServer) -> Fixture {
    rt.block_on(async {
        let url = server.url();
        let tier: Arc<dyn Tier> = Arc::new(RedisTier::connect(&url).await.expect("connect"));

        // l1_hit: the TieredCache has the Redis L2 too (a hit never reaches it).
        let tiered: TieredCache<u64, String> = TieredCache::builder("l1bench")
            .l1(L1_CAPACITY, EvictionPolicy::default())
            .l2_shared(Arc::clone(&tier))
            .build();
        let engine: Engine<u64, String> = Engine::builder()
            .max_capacity(L1_CAPACITY)
            .eviction_policy(EvictionPolicy::default())
            .build_async();
        let engine_slot: Engine<u64, Slot> = Engine::builder()
            .max_capacity(L1_CAPACITY)
            .eviction_policy(EvictionPolicy::default())
            .expire_after(SlotExpiry)
            .build_async();
        for k in 0..L1_KEYS {
            let v = value_of(k, L1_VALUE_LEN);
            tiered.set(k, v.clone()).await.expect("set");
            engine.insert(k, v.clone()).await;
            engine_slot
                .insert(
                    k,
                    Slot {
                        value: Some(v),
                        ttl: None,
                    },
                )
                .await;
        }
        engine.run_pending_tasks().await;
        engine_slot.run_pending_tasks().await;
        for k in 0..L1_KEYS {
            assert!(engine.contains_key(&k) && engine_slot.contains_key(&k));
        }
        assert_eq!(tiered.l1_entry_count(), L1_KEYS, "TieredCache L1 lost keys");
        assert_eq!(engine.entry_count(), L1_KEYS);
        assert_eq!(engine_slot.entry_count(), L1_KEYS);

        // l2_hit and get_many: L1 neither read nor written.
        let l2: TieredCache<u64, String> = TieredCache::builder(L2_NAME)
            .l2_shared(Arc::clone(&tier))
            .default_entry_options(EntryOptions::new().skip_l1_read().skip_l1_write())
            .build();
        for k in 0..L2_KEYS {
            l2.set(k, value_of(k, L2_VALUE_LEN)).await.expect("set");
        }
        let client = redis::Client::open(url.as_str()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("multiplexed connection");
        // Same bytes on both sides: check what is stored, and that both read it back.
        for k in [0, L2_KEYS / 2, L2_KEYS - 1] {
            let raw: Vec<u8> = redis::cmd("GET")
                .arg(redis_key(L2_NAME, k))
                .query_async(&mut conn)
                .await
                .expect("GET");
            assert_eq!(raw.len(), HEADER_LEN + 2 + L2_VALUE_LEN, "stored size");
            assert_eq!(raw[3], 0, "the envelope is not compressed");
            let bare: String = postcard::from_bytes(&raw[HEADER_LEN..]).expect("postcard");
            assert_eq!(bare, value_of(k, L2_VALUE_LEN));
            assert_eq!(l2.get(&k).await.expect("get"), Some(bare));
        }
        assert_eq!(l2.l1_entry_count(), 0, "L1 of the L2 cache stays empty");

        Fixture {
            tiered_l1: TieredGet {
                cache: tiered,
                seq: key_sequence(L1_KEYS, 1),
                pos: 0,
            },
            engine_l1: EngineGet {
                cache: engine,
                seq: key_sequence(L1_KEYS, 1),
                pos: 0,
            },
            engine_slot_l1: EngineSlotGet {
                cache: engine_slot,
                seq: key_sequence(L1_KEYS, 1),
                pos: 0,
            },
            tiered_l2: TieredL2Get {
                cache: l2.clone(),
                seq: key_sequence(L2_KEYS, 2),
                pos: 0,
            },
            bare_l2: BareL2Get {
                conn,
                prefix: L2_NAME,
                seq: key_sequence(L2_KEYS, 2),
                pos: 0,
            },
            get_many: GetMany {
                cache: l2.clone(),
                batches: batches(3),
                pos: 0,
            },
            get_seq: GetSequential {
                cache: l2.clone(),
                batches: batches(3),
                pos: 0,
            },
            get_join: GetJoinAll {
                cache: l2,
                batches: batches(3),
                pos: 0,
            },
        }
    })
}

// ---------------------------------------------------------------------------------------
// criterion groups

fn bench<S: Side>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    side: &mut S,
) {
    group.bench_function(name, |b| b.iter_custom(|iters| timed(rt, side, iters)));
}

fn groups(c: &mut Criterion, rt: &Runtime, f: &mut Fixture) {
    let mut g = c.benchmark_group("l1_hit");
    g.throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    bench(&mut g, rt, "tiered", &mut f.tiered_l1);
    bench(&mut g, rt, "engine", &mut f.engine_l1);
    bench(&mut g, rt, "engine+expiry", &mut f.engine_slot_l1);
    g.finish();

    let mut g = c.benchmark_group("l2_hit");
    g.throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    bench(&mut g, rt, "tiered", &mut f.tiered_l2);
    bench(&mut g, rt, "redis_get+postcard", &mut f.bare_l2);
    g.finish();

    let mut g = c.benchmark_group("get_many");
    g.throughput(Throughput::Elements(BATCH as u64))
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    bench(&mut g, rt, "get_many_or_load", &mut f.get_many);
    bench(&mut g, rt, "get_x100_sequential", &mut f.get_seq);
    bench(&mut g, rt, "get_x100_join_all", &mut f.get_join);
    g.finish();
}

// ---------------------------------------------------------------------------------------
// paired summary

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `a` and `b` in `ROUNDS` alternating rounds (A B, then B A, ...) of `ops` operations
/// each, after one unrecorded warm-up round; returns the medians of the ns/op of each and of
/// the per-round ratio a/b, and the min/max of that ratio.
fn paired<A: Side, B: Side>(
    rt: &Runtime,
    a: &mut A,
    b: &mut B,
    ops: u64,
) -> (f64, f64, f64, f64, f64) {
    let ns = |d: Duration| d.as_nanos() as f64 / ops as f64;
    timed(rt, a, ops);
    timed(rt, b, ops);
    let (mut ta, mut tb, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (x, y) = if round % 2 == 0 {
            let x = ns(timed(rt, a, ops));
            (x, ns(timed(rt, b, ops)))
        } else {
            let y = ns(timed(rt, b, ops));
            (ns(timed(rt, a, ops)), y)
        };
        ta.push(x);
        tb.push(y);
        ratio.push(x / y);
    }
    let lo = ratio.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratio.iter().copied().fold(0.0, f64::max);
    (median(&mut ta), median(&mut tb), median(&mut ratio), lo, hi)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn summary(rt: &Runtime, f: &mut Fixture, h: &mut hit_path::HitPath) {
    let fmt = |ns: f64| {
        if ns >= 1e6 {
            format!("{:.3} ms", ns / 1e6)
        } else if ns >= 1e3 {
            format!("{:.2} µs", ns / 1e3)
        } else {
            format!("{ns:.1} ns")
        }
    };
    let mut lines = Vec::new();
    let mut line = |what: &str, a: &str, b: &str, r: (f64, f64, f64, f64, f64), target: &str| {
        lines.push(format!(
            "{what:<9} {a} {:>10} | {b} {:>10} | ratio {:.3} (rounds {:.3}–{:.3}){target}",
            fmt(r.0),
            fmt(r.1),
            r.2,
            r.3,
            r.4
        ));
    };
    let load_before = loadavg();
    let r = paired(rt, &mut f.tiered_l1, &mut f.engine_l1, 100_000);
    line("l1_hit", "tiered", "engine", r, "  target ≤ 1.30");
    let r = paired(rt, &mut f.tiered_l1, &mut f.engine_slot_l1, 100_000);
    line("l1_hit", "tiered", "engine+expiry", r, "");
    let r = paired(rt, &mut f.tiered_l2, &mut f.bare_l2, 1_000);
    line(
        "l2_hit",
        "tiered",
        "redis_get+postcard",
        r,
        "  target ≤ 1.15",
    );
    let r = paired(rt, &mut f.get_many, &mut f.get_seq, 10);
    line("get_many", "get_many_or_load", "get_x100_sequential", r, "");
    let r = paired(rt, &mut f.get_many, &mut f.get_join, 10);
    line("get_many", "get_many_or_load", "get_x100_join_all", r, "");
    hit_path::summary(rt, h, &mut line);
    eprintln!();
    eprintln!(
        "== paired summary: median of {ROUNDS} alternating rounds; ratio = first / second; \
         load average before {load_before}, after {} ==",
        loadavg()
    );
    for l in &lines {
        eprintln!("{l}");
    }
}

fn tiered(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = RedisServer::start();
    eprintln!(
        "private redis-server on port {}; load average {}",
        server.port(),
        loadavg()
    );
    let mut fixture = setup(&rt, &server);
    let mut hits = hit_path::setup(&rt, &server);
    groups(c, &rt, &mut fixture);
    hit_path::groups(c, &rt, &mut hits);
    assert_eq!(
        fixture.tiered_l2.cache.l1_entry_count(),
        0,
        "the L2 cache's L1 stayed empty"
    );
    assert_eq!(fixture.tiered_l1.cache.l1_entry_count(), L1_KEYS);
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (and runs each
    // function once): skip the summary there, and under `--profile-time`.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--profile-time") {
        summary(&rt, &mut fixture, &mut hits);
    }
    // The caches and connections go before the server.
    drop(fixture);
    hits.shut_down();
    drop(server);
}

/// `criterion_group!` defines an undocumented `pub fn`; keep the lint quiet for it alone.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::tiered);
}
criterion_main!(harness::benches);
