//! The L1 hit with coherence on (issue 14, must-show 6): the raw engine's `get` against
//! `TieredCache::get` without a backplane and with a `RedisBackplane` and tags on every
//! entry, on two workloads, plus models of the hit path's pieces to say where the time goes.
//!
//! | workload | keys | draws | values | L1 capacity |
//! |---|---|---|---|---|
//! | `zipf_u64` | 100,000 | Zipf(0.99) over the keys (rank `r` is key `r - 1`), 2^20 draws precomputed | `u64` | 200,000 |
//! | `str100` | 10,000 | uniform, 2^20 draws precomputed | 100-byte `String` | 20,000 |
//!
//! Sides (every one holds every key; each walks the same key sequence with its own cursor):
//! - `engine`: `layercache_memory::Cache::get` (the synchronous engine, no expiry);
//! - `engine+slot`: the same engine configured as TieredCache's L1 (a per-entry `Expiry`
//!   and a value of the same shape as its private `Slot { value, ttl, stamp }`, `stamp`
//!   `None`), a hit cloning the slot;
//! - `engine+slot+stamp`: as `engine+slot` with the stamp of a tagged entry (an `Arc` to a
//!   version, the tags and an `AtomicU64`) and the fast-path check TieredCache makes (the
//!   stamp's `checked` against a tag epoch reached through an `Arc`);
//! - `engine+slot+inline`: a possible shape: the fast-path check's data inline in the slot
//!   (the version and the epoch it was last checked at, plain integers, no `Arc`; the tags
//!   are left out, as only the slow path would need them);
//! - `tiered`: `TieredCache::get`, no backplane, no tags, L2 = the bench's Redis;
//! - `tiered+bp+tags`: `TieredCache::get` with a `RedisBackplane` on the same Redis and two
//!   tags on each entry (`all` and one of 1,000 groups), L2 = the same Redis. It is built on
//!   a second (multi-thread, one worker) runtime, so that its subscriber keeps running, as in
//!   a service, while the gets run on the bench's current-thread runtime.
//!
//! Every TieredCache entry is warmed until its tag check is the fast path (a first hit on a
//! tagged entry reads its tags' versions from L2); a full timed pass must then cost under
//! 2 µs per get (an L2 read costs tens of µs), or the bench panics.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use futures_util::future::join_all;
use layercache::memory::{Cache as SyncEngine, Expiry};
use layercache::redis::{RedisBackplane, RedisTier};
use layercache::{EntryOptions, EvictionPolicy, Tier, TieredCache};
use layercache_redis::testing::RedisServer;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::runtime::Runtime;

use super::{bench, paired, value_of, Side, SplitMix};

/// Keys of the Zipf workload.
const ZIPF_KEYS: u64 = 100_000;
/// Its exponent.
const ZIPF_S: f64 = 0.99;
/// Keys of the string workload (today's `l1_hit` group).
const STR_KEYS: u64 = 10_000;
/// Length of a string value.
const STR_LEN: usize = 100;
/// Length of a key sequence (a power of two).
const SEQ: usize = 1 << 20;
/// Tag groups of the tagged entries (each entry has `all` and `g<k % 1000>`).
const TAG_GROUPS: u64 = 1_000;
/// Writes and warm-up reads in flight at once.
const CONCURRENCY: usize = 256;

/// A precomputed key sequence walked with a wrapping cursor.
struct Seq {
    keys: Arc<[u64]>,
    pos: usize,
}

impl Seq {
    fn new(keys: &Arc<[u64]>) -> Seq {
        Seq {
            keys: Arc::clone(keys),
            pos: 0,
        }
    }

    #[inline(always)]
    fn next(&mut self) -> u64 {
        let k = self.keys[self.pos & (SEQ - 1)];
        self.pos = self.pos.wrapping_add(1);
        k
    }
}

/// `SEQ` draws of Zipf(`s`) over `0..n` by inverting the exact CDF (P(rank r) ∝ r^-s, as
/// `rand_distr::Zipf`; the draws are not timed).
fn zipf_sequence(n: u64, s: f64, seed: u64) -> Arc<[u64]> {
    let mut cdf = Vec::with_capacity(n as usize);
    let mut total = 0.0;
    for r in 1..=n {
        total += (r as f64).powf(-s);
        cdf.push(total);
    }
    let mut rng = SplitMix(seed);
    (0..SEQ)
        .map(|_| {
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
            (cdf.partition_point(|&c| c <= u) as u64).min(n - 1)
        })
        .collect()
}

/// `SEQ` uniform draws over `0..n`.
fn uniform_sequence(n: u64, seed: u64) -> Arc<[u64]> {
    let mut rng = SplitMix(seed);
    (0..SEQ).map(|_| rng.below(n)).collect()
}

// ---------------------------------------------------------------------------------------
// models of the L1 entry

/// The stamp of a tagged entry, shaped as TieredCache's.
struct StampModel {
    version: (u64, u64),
    _tags: Arc<[Arc<str>]>,
    checked: AtomicU64,
}

/// TieredCache's `Slot`, shaped alike (`stamp` `None` for an untagged entry).
#[derive(Clone)]
struct SlotModel<V> {
    value: Option<V>,
    ttl: Option<Duration>,
    stamp: Option<Arc<StampModel>>,
}

/// A slot with the fast-path check's data inline.
#[derive(Clone)]
struct InlineSlot<V> {
    value: Option<V>,
    ttl: Option<Duration>,
    version: (u64, u64),
    checked: u64,
}

/// What carries its own lifetime (as TieredCache's `SlotExpiry`).
trait Ttl {
    fn ttl(&self) -> Option<Duration>;
}
impl<V> Ttl for SlotModel<V> {
    fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
}
impl<V> Ttl for InlineSlot<V> {
    fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
}

struct ModelExpiry;

impl<S: Ttl> Expiry<u64, S> for ModelExpiry {
    fn expire_after_create(&self, _: &u64, s: &S) -> Option<Duration> {
        s.ttl()
    }
    fn expire_after_update(&self, _: &u64, s: &S, _: Option<Duration>) -> Option<Duration> {
        s.ttl()
    }
    fn reads_change_deadlines(&self) -> bool {
        false
    }
}

/// The tag epoch, reached through an `Arc` as TieredCache's (`inner.co.tags.epoch`).
struct EpochModel {
    epoch: AtomicU64,
}

// ---------------------------------------------------------------------------------------
// sides

/// `layercache_memory::Cache::get`.
struct Raw<V> {
    cache: SyncEngine<u64, V>,
    seq: Seq,
}

impl<V: Clone + Send + Sync + 'static> Side for Raw<V> {
    #[inline(always)]
    async fn op(&mut self) {
        let k = self.seq.next();
        let v = self.cache.get(&k);
        debug_assert!(v.is_some());
        black_box(v);
    }
}

/// The engine holding `SlotModel`s; a hit clones the slot and, for a stamped one, makes
/// TieredCache's fast-path check.
struct Slotted<V> {
    cache: SyncEngine<u64, SlotModel<V>>,
    epoch: Arc<EpochModel>,
    seq: Seq,
}

impl<V: Clone + Send + Sync + 'static> Side for Slotted<V> {
    #[inline(always)]
    async fn op(&mut self) {
        let k = self.seq.next();
        let slot = self.cache.get(&k);
        let v = slot.and_then(|s| {
            if let Some(stamp) = &s.stamp {
                let epoch = self.epoch.epoch.load(Ordering::Acquire);
                if stamp.checked.load(Ordering::Relaxed) != epoch {
                    // The slow path (never taken here: every stamp is at the epoch).
                    black_box(stamp.version);
                    return None;
                }
            }
            s.value
        });
        debug_assert!(v.is_some());
        black_box(v);
    }
}

/// The engine holding `InlineSlot`s; a hit compares the slot's `checked` with the epoch.
struct Inline<V> {
    cache: SyncEngine<u64, InlineSlot<V>>,
    epoch: Arc<EpochModel>,
    seq: Seq,
}

impl<V: Clone + Send + Sync + 'static> Side for Inline<V> {
    #[inline(always)]
    async fn op(&mut self) {
        let k = self.seq.next();
        let slot = self.cache.get(&k);
        let v = slot.and_then(|s| {
            if s.checked != self.epoch.epoch.load(Ordering::Acquire) {
                black_box(s.version);
                return None;
            }
            s.value
        });
        debug_assert!(v.is_some());
        black_box(v);
    }
}

/// `TieredCache::get`, every key in L1.
struct Tiered<V> {
    cache: TieredCache<u64, V>,
    seq: Seq,
}

impl<V: Clone + Send + Sync + 'static> Side for Tiered<V> {
    #[inline(always)]
    async fn op(&mut self) {
        let k = self.seq.next();
        let v = self.cache.get(&k).await;
        debug_assert!(matches!(v, Ok(Some(_))));
        let _ = black_box(v);
    }
}

// ---------------------------------------------------------------------------------------
// set-up

/// Every side of one workload.
struct Workload<V> {
    name: &'static str,
    keys: u64,
    raw: Raw<V>,
    slot: Slotted<V>,
    stamp: Slotted<V>,
    inline: Inline<V>,
    tiered: Tiered<V>,
    coherent: Tiered<V>,
}

/// Both workloads, and the runtime that drives the coherent caches' subscribers.
pub(super) struct HitPath {
    zipf: Workload<u64>,
    strings: Workload<String>,
    bg: Runtime,
}

/// The options of key `k`'s tagged entry (one set of options per tag group).
fn tagged(groups: &[EntryOptions], k: u64) -> &EntryOptions {
    &groups[(k % TAG_GROUPS) as usize]
}

/// Writes `keys` entries into `cache` (`opts(k)` for each), `CONCURRENCY` at a time, then
/// reads each until its tag check is the fast path.
async fn fill<V, F>(cache: &TieredCache<u64, V>, keys: u64, value: F, opts: &[EntryOptions])
where
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    F: Fn(u64) -> V,
{
    let all: Vec<u64> = (0..keys).collect();
    for chunk in all.chunks(CONCURRENCY) {
        let writes = chunk.iter().map(|&k| {
            let o = if opts.is_empty() {
                EntryOptions::new()
            } else {
                tagged(opts, k).clone()
            };
            let v = value(k);
            async move { cache.set_with(k, v, &o).await }
        });
        for r in join_all(writes).await {
            r.expect("set");
        }
    }
    // A tagged entry's first hit reads its tags' versions from L2 and re-reads the entry;
    // the second marks it checked at the epoch. Three passes leave every one on the fast
    // path.
    for _ in 0..3 {
        for chunk in all.chunks(CONCURRENCY) {
            for v in join_all(chunk.iter().map(|k| cache.get(k))).await {
                assert!(matches!(v, Ok(Some(_))), "an entry went missing");
            }
        }
    }
    assert_eq!(cache.l1_entry_count(), keys, "L1 lost entries");
}

/// Builds one workload: the engines filled directly, `tiered` on `rt`, `coherent` (and its
/// connections) on `bg`.
fn workload<V, F>(
    name: &'static str,
    rt: &Runtime,
    bg: &Runtime,
    url: &str,
    keys: u64,
    seq: Arc<[u64]>,
    value: F,
) -> Workload<V>
where
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    F: Fn(u64) -> V + Copy,
{
    let capacity = 2 * keys;
    fn slotted<S: Ttl + Clone + Send + Sync + 'static>(capacity: u64) -> SyncEngine<u64, S> {
        SyncEngine::builder()
            .max_capacity(capacity)
            .expire_after(ModelExpiry)
            .build()
    }
    let raw: SyncEngine<u64, V> = SyncEngine::builder().max_capacity(capacity).build();
    let slot: SyncEngine<u64, SlotModel<V>> = slotted(capacity);
    let stamp: SyncEngine<u64, SlotModel<V>> = slotted(capacity);
    let inline: SyncEngine<u64, InlineSlot<V>> = slotted(capacity);
    let epoch = Arc::new(EpochModel {
        epoch: AtomicU64::new(7),
    });
    let tags: Arc<[Arc<str>]> = vec![Arc::from("all"), Arc::from("g")].into();
    for k in 0..keys {
        raw.insert(k, value(k));
        let s = SlotModel {
            value: Some(value(k)),
            ttl: None,
            stamp: None,
        };
        slot.insert(k, s.clone());
        let stamped = SlotModel {
            stamp: Some(Arc::new(StampModel {
                version: (k, 0),
                _tags: Arc::clone(&tags),
                checked: AtomicU64::new(7),
            })),
            ..s
        };
        stamp.insert(k, stamped);
        let i = InlineSlot {
            value: Some(value(k)),
            ttl: None,
            version: (k, 0),
            checked: 7,
        };
        inline.insert(k, i);
    }
    for c in [&slot, &stamp] {
        c.run_pending_tasks();
        assert_eq!(c.entry_count(), keys);
    }
    raw.run_pending_tasks();
    inline.run_pending_tasks();
    assert_eq!(raw.entry_count(), keys);
    assert_eq!(inline.entry_count(), keys);

    let tiered = rt.block_on(async {
        let tier: Arc<dyn Tier> = Arc::new(RedisTier::connect(url).await.expect("connect"));
        let cache: TieredCache<u64, V> = TieredCache::builder(format!("hit-{name}"))
            .l1(capacity, EvictionPolicy::default())
            .l2_shared(tier)
            .build();
        fill(&cache, keys, value, &[]).await;
        cache
    });
    let coherent = bg.block_on(async {
        let tier: Arc<dyn Tier> = Arc::new(RedisTier::connect(url).await.expect("connect"));
        let bp = RedisBackplane::connect(url).await.expect("backplane");
        let cache: TieredCache<u64, V> = TieredCache::builder(format!("hit-{name}-bp"))
            .l1(capacity, EvictionPolicy::default())
            .l2_shared(tier)
            .backplane(bp)
            .build();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cache.l1_trusted() {
            assert!(Instant::now() < deadline, "the backplane did not connect");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let groups: Vec<EntryOptions> = (0..TAG_GROUPS)
            .map(|g| EntryOptions::new().tags(["all".to_string(), format!("g{g}")]))
            .collect();
        fill(&cache, keys, value, &groups).await;
        cache
    });
    let mut w = Workload {
        name,
        keys,
        raw: Raw {
            cache: raw,
            seq: Seq::new(&seq),
        },
        slot: Slotted {
            cache: slot,
            epoch: Arc::clone(&epoch),
            seq: Seq::new(&seq),
        },
        stamp: Slotted {
            cache: stamp,
            epoch: Arc::clone(&epoch),
            seq: Seq::new(&seq),
        },
        inline: Inline {
            cache: inline,
            epoch,
            seq: Seq::new(&seq),
        },
        tiered: Tiered {
            cache: tiered,
            seq: Seq::new(&seq),
        },
        coherent: Tiered {
            cache: coherent,
            seq: Seq::new(&seq),
        },
    };
    w.check_hits(rt);
    w
}

impl<V: Clone + Send + Sync + 'static> Workload<V> {
    /// Panics unless one pass of the sequence costs every TieredCache side under 2 µs per
    /// get (all L1 hits) and the coherent cache still serves L1.
    fn check_hits(&mut self, rt: &Runtime) {
        assert!(self.coherent.cache.l1_trusted(), "the backplane is down");
        for side in [&mut self.tiered, &mut self.coherent] {
            let t = super::timed(rt, side, SEQ as u64);
            let ns = t.as_nanos() as f64 / SEQ as f64;
            assert!(
                ns < 2_000.0,
                "{}: {ns:.0} ns per get: not L1 hits",
                self.name
            );
            assert_eq!(side.cache.l1_entry_count(), self.keys);
        }
    }
}

/// Builds both workloads on `server`.
pub(super) fn setup(rt: &Runtime, server: &RedisServer) -> HitPath {
    let bg = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("background runtime");
    let url = server.url();
    let zipf = workload(
        "zipf_u64",
        rt,
        &bg,
        &url,
        ZIPF_KEYS,
        zipf_sequence(ZIPF_KEYS, ZIPF_S, 11),
        |k| k ^ 0x5555,
    );
    let strings = workload(
        "str100",
        rt,
        &bg,
        &url,
        STR_KEYS,
        uniform_sequence(STR_KEYS, 12),
        |k| value_of(k, STR_LEN),
    );
    HitPath { zipf, strings, bg }
}

fn group<V: Clone + Send + Sync + 'static>(c: &mut Criterion, rt: &Runtime, w: &mut Workload<V>) {
    let mut g = c.benchmark_group(format!("l1_hit_{}", w.name));
    g.throughput(criterion::Throughput::Elements(1))
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    bench(&mut g, rt, "engine", &mut w.raw);
    bench(&mut g, rt, "engine+slot", &mut w.slot);
    bench(&mut g, rt, "engine+slot+stamp", &mut w.stamp);
    bench(&mut g, rt, "engine+slot+inline", &mut w.inline);
    bench(&mut g, rt, "tiered", &mut w.tiered);
    bench(&mut g, rt, "tiered+bp+tags", &mut w.coherent);
    g.finish();
}

/// The criterion groups `l1_hit_zipf_u64` and `l1_hit_str100`.
pub(super) fn groups(c: &mut Criterion, rt: &Runtime, h: &mut HitPath) {
    group(c, rt, &mut h.zipf);
    group(c, rt, &mut h.strings);
}

/// The summary's paired result: medians of first and second (ns), of the ratio, and the
/// ratio's range.
type Paired = (f64, f64, f64, f64, f64);
/// Prints one summary line: what, first, second, result, target note.
type Line<'l> = &'l mut dyn FnMut(&str, &str, &str, Paired, &str);

/// Paired lines (ratio = first / second) for the summary, in its format.
pub(super) fn summary(rt: &Runtime, h: &mut HitPath, line: Line<'_>) {
    fn one<V: Clone + Send + Sync + 'static>(rt: &Runtime, w: &mut Workload<V>, line: Line<'_>) {
        const OPS: u64 = 200_000;
        let what = w.name;
        let r = paired(rt, &mut w.tiered, &mut w.raw, OPS);
        line(what, "tiered", "engine", r, "  target ≤ 1.30");
        let r = paired(rt, &mut w.coherent, &mut w.raw, OPS);
        line(what, "tiered+bp+tags", "engine", r, "  target ≤ 1.30");
        let r = paired(rt, &mut w.coherent, &mut w.tiered, OPS);
        line(what, "tiered+bp+tags", "tiered", r, "");
        let r = paired(rt, &mut w.slot, &mut w.raw, OPS);
        line(what, "engine+slot", "engine", r, "");
        let r = paired(rt, &mut w.stamp, &mut w.slot, OPS);
        line(what, "engine+slot+stamp", "engine+slot", r, "");
        let r = paired(rt, &mut w.inline, &mut w.raw, OPS);
        line(what, "engine+slot+inline", "engine", r, "");
        let r = paired(rt, &mut w.tiered, &mut w.slot, OPS);
        line(what, "tiered", "engine+slot", r, "");
        let r = paired(rt, &mut w.coherent, &mut w.stamp, OPS);
        line(what, "tiered+bp+tags", "engine+slot+stamp", r, "");
        w.check_hits(rt);
    }
    one(rt, &mut h.zipf, line);
    one(rt, &mut h.strings, line);
}

impl HitPath {
    /// Drops the caches (on the runtime that drives their connections) before the server.
    pub(super) fn shut_down(self) {
        let HitPath { zipf, strings, bg } = self;
        bg.block_on(async move {
            drop(zipf);
            drop(strings);
        });
        bg.shutdown_timeout(Duration::from_secs(2));
    }
}
