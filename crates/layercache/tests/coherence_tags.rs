//! Tags at scale and the cost of an invalidation to its receivers, over test-owned Redis
//! servers (a single node, and the same checks on one 3-master Cluster):
//! - **must-show 4**: 100,000 entries under 1,000 tags (entry `i` has tag `t<i % 1000>` and
//!   the tag `all`) loaded on instance B; `invalidate_tag` on A makes every entry of the tag
//!   a miss on B (measured, printed, and bounded generously), and on a third instance C
//!   built afterwards, which reads them from L2; `invalidate_tag` takes the same time for a
//!   tag on 10 entries and on 100,000 (medians printed, compared robustly);
//! - **must-show 5**: instances that hold keys in L1 but do not read them make zero L2 calls
//!   while another instance invalidates those keys and a tag 100 times each.
//!
//! The tests of this binary run one at a time ([`SERIAL`]), so that the timings are not
//! taken while another test loads Redis.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use layercache::envelope::{self, Meta};
use layercache::redis::{RedisBackplane, RedisTier};
use layercache::{
    BreakerConfig, Codec, EntryOptions, EvictionPolicy, Postcard, StreamId, Tier, TierFuture,
    TieredCache,
};
use layercache_redis::stream_key;
use layercache_redis::testing::{RedisCluster, RedisServer};
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;

type Cache = TieredCache<u64, String>;

/// The entries under the 1,000 tags (and all under the tag `all`).
const ENTRIES: u64 = 100_000;
/// The tags `t0` ... `t999`.
const TAGS: u64 = 1_000;
/// Entries `ENTRIES..ENTRIES + FEW` carry only the tag `few`.
const FEW: u64 = 10;
/// Tags invalidated one by one for the latency figures.
const LATENCY_ROUNDS: u64 = 20;
/// `invalidate_tag` calls timed per tag (`few` and `all`, interleaved).
const TIMING_ROUNDS: usize = 200;
/// The bound asserted on "every entry of the tag is a miss on B" (the target is 10 ms; see
/// [`tag_latency`] for why the test asserts this much looser bound).
const LATENCY_BOUND: Duration = Duration::from_secs(1);
/// The longest one wait may take (a loaded 2-core machine; a hang fails).
const WAIT: Duration = Duration::from_secs(30);
/// The longest one test may take.
const TEST_LIMIT: Duration = Duration::from_secs(240);
/// Well above every wait here: L1 stays trusted (else reads would bypass it).
const MAX_STALENESS: Duration = Duration::from_secs(60);
/// `get_many_or_load` calls in flight at once while B reads the entries.
const READ_CONCURRENCY: usize = 4;

/// One test of this binary at a time (see the module docs).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs a test body under [`TEST_LIMIT`], alone in this binary.
async fn limited<F: Future>(name: &str, body: F) -> F::Output {
    let _alone = SERIAL.lock().await;
    match tokio::time::timeout(TEST_LIMIT, body).await {
        Ok(out) => out,
        Err(_) => panic!("{name} did not finish within {TEST_LIMIT:?}: a hang"),
    }
}

/// Polls `done` every millisecond until it holds or `limit` passes; whether it held.
async fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// An instance's tier: forwards to Redis and counts every call (of any kind, the cache's
/// tag versions included).
struct Counted {
    inner: Arc<dyn Tier>,
    calls: AtomicUsize,
}

impl Counted {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl Tier for Counted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        self.count();
        self.inner.get(key)
    }
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        self.count();
        self.inner.set(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
        self.count();
        self.inner.delete(key)
    }
    fn supports_conditional_writes(&self) -> bool {
        self.inner.supports_conditional_writes()
    }
    fn add<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        self.count();
        self.inner.add(key, value, ttl)
    }
    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        self.count();
        self.inner.compare_and_set(key, expected, value, ttl)
    }
    fn compare_and_delete<'a>(&'a self, key: &'a [u8], expected: &'a [u8]) -> TierFuture<'a, bool> {
        self.count();
        self.inner.compare_and_delete(key, expected)
    }
    fn get_many<'a>(&'a self, keys: &'a [&'a [u8]]) -> TierFuture<'a, Vec<Option<Vec<u8>>>> {
        self.count();
        self.inner.get_many(keys)
    }
    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a [u8], &'a [u8])],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        self.count();
        self.inner.set_many(entries, ttl)
    }
}

/// A connection of the test's own, around the caches.
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// A test-owned deployment: a single node or a 3-master Cluster.
struct Redis {
    nodes: Vec<String>,
    cluster: bool,
    conn: Conn,
    /// The servers, killed when this is dropped.
    _servers: Box<dyn Any + Send + Sync>,
}

impl Redis {
    async fn single() -> Redis {
        let server = tokio::task::spawn_blocking(RedisServer::start)
            .await
            .expect("RedisServer::start panicked");
        let client = redis::Client::open(server.url()).expect("client");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("the test's own connection");
        Redis {
            nodes: vec![server.url()],
            cluster: false,
            conn: Conn::Single(conn),
            _servers: Box::new(server),
        }
    }

    async fn cluster() -> Redis {
        let cluster = tokio::task::spawn_blocking(RedisCluster::start)
            .await
            .expect("RedisCluster::start panicked");
        let nodes = cluster.nodes();
        let client = redis::cluster::ClusterClient::new(nodes.clone()).expect("client");
        let conn = client
            .get_async_connection()
            .await
            .expect("the test's own cluster connection");
        Redis {
            nodes,
            cluster: true,
            conn: Conn::Cluster(conn),
            _servers: Box::new(cluster),
        }
    }

    fn kind(&self) -> &'static str {
        if self.cluster {
            "cluster"
        } else {
            "single node"
        }
    }

    /// The id of the last entry of cache `name`'s stream.
    async fn last_id(&self, name: &str) -> StreamId {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(stream_key(name))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let got: Result<Vec<(String, redis::Value)>, _> = match &self.conn {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        };
        let entries = got.unwrap_or_else(|e| panic!("XREVRANGE failed: {e}"));
        let (id, _) = entries.into_iter().next().expect("the stream is empty");
        id.parse().expect("a stream id")
    }

    /// Waits until every instance of `caches` has applied the last message of cache
    /// `name`'s stream; that message's id.
    async fn applied(&self, name: &str, caches: &[&Cache]) -> StreamId {
        let last = self.last_id(name).await;
        for c in caches {
            assert!(
                within(WAIT, || c.backplane_version() >= last).await,
                "an instance did not apply stream entry {last} within {WAIT:?}"
            );
        }
        last
    }

    /// A tier of its own (patient: big batches on a loaded machine).
    async fn tier(&self) -> Arc<dyn Tier> {
        let refs: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        let tier = RedisTier::builder()
            .connection_timeout(Duration::from_secs(10))
            .response_timeout(Duration::from_secs(20));
        let tier = if self.cluster {
            tier.connect_cluster(&refs).await
        } else {
            tier.connect(refs[0]).await
        };
        Arc::new(tier.expect("tier"))
    }

    /// An instance of cache `name` with its own connections and an L1 of `capacity`
    /// entries, its tier behind a [`Counted`]; caught up with the stream.
    async fn instance(&self, name: &str, capacity: u64) -> (Cache, Arc<Counted>) {
        let refs: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        let bus = RedisBackplane::builder()
            .connection_timeout(Duration::from_secs(10))
            .response_timeout(Duration::from_secs(10));
        let bus = if self.cluster {
            bus.connect_cluster(&refs).await
        } else {
            bus.connect(refs[0]).await
        };
        let tier = Arc::new(Counted {
            inner: self.tier().await,
            calls: AtomicUsize::new(0),
        });
        let cache = TieredCache::builder(name)
            .l1(capacity, EvictionPolicy::default())
            .l2_shared(Arc::clone(&tier) as Arc<dyn Tier>)
            .backplane(bus.expect("backplane"))
            .max_staleness(MAX_STALENESS)
            // Big batches on a loaded machine: no L2 call may time out (an entry read
            // would be a miss, a tag version unknown).
            .breaker(BreakerConfig {
                call_timeout: Duration::from_secs(20),
                ..BreakerConfig::default()
            })
            .default_entry_options(EntryOptions::new().ttl(Duration::from_secs(600)))
            .build();
        assert!(
            within(Duration::from_secs(20), || cache.l1_trusted()).await,
            "the backplane subscriber did not catch up within 20 s"
        );
        (cache, tier)
    }
}

/// The options of entry `i`: tags `t<i % 1000>` and `all`; or `few` for the last [`FEW`].
fn entry_options(i: u64) -> EntryOptions {
    let opts = EntryOptions::new().ttl(Duration::from_secs(600));
    if i >= ENTRIES {
        opts.tags(["few"])
    } else {
        opts.tags([format!("t{}", i % TAGS), "all".to_string()])
    }
}

fn value(i: u64) -> String {
    format!("v{i}")
}

/// The 100 entries of tag `t<tag>`.
fn entries_of(tag: u64) -> impl Iterator<Item = u64> {
    (tag..ENTRIES).step_by(TAGS as usize)
}

/// The median of `samples` (sorted here).
fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Reads `keys` on `cache` at once; how many returned a value.
async fn present(cache: &Cache, keys: impl Iterator<Item = u64>) -> usize {
    let reads = join_all(keys.map(|k| async move { cache.get(&k).await.expect("get") })).await;
    reads.iter().filter(|v| v.is_some()).count()
}

/// Writes entries `0..ENTRIES` to L2 around the caches, as an instance at stream position
/// `version` would (the library's own envelope, tags and version), with one `set_many` per
/// 5,000 entries: loading 100,000 tagged entries through `get_or_load_with` (an L2 read, a
/// lease and a compare-and-set each) takes over 30 s in a debug build on two cores, and
/// what is tested here is what happens to entries once held, not how they got there.
async fn plant_entries(redis: &Redis, name: &str, version: StreamId) {
    let tier = redis.tier().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let all: Arc<str> = Arc::from("all");
    for chunk in (0..ENTRIES).collect::<Vec<_>>().chunks(5_000) {
        let sealed: Vec<(Vec<u8>, Vec<u8>)> = chunk
            .iter()
            .map(|&i| {
                let key = format!("{name}:{i}").into_bytes();
                let payload = Postcard.encode(&value(i)).expect("postcard");
                let tags = [Arc::from(format!("t{}", i % TAGS)), Arc::clone(&all)];
                let meta = Meta {
                    created_ms: now,
                    expires_ms: Some(now + 600_000),
                    version,
                    tags: &tags,
                };
                let bytes = envelope::encode_with(&key, Some(&payload), &meta, usize::MAX);
                (key, bytes)
            })
            .collect();
        let refs: Vec<(&[u8], &[u8])> = sealed
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        tier.set_many(&refs, Some(Duration::from_secs(600)))
            .await
            .expect("planting entries");
    }
}

/// B reads every planted entry into L1 (`get_many_or_load`, 1,000 keys a call: all are in
/// L2, so its loader is never called) and loads the [`FEW`] others itself
/// (`get_or_load_with`); then it holds every entry in L1 and knows every tag's version.
async fn load_entries(b: &Cache, b_tier: &Counted) {
    let started = Instant::now();
    let keys: Vec<u64> = (0..ENTRIES).collect();
    stream::iter(keys.chunks(1_000))
        .map(|chunk| async move {
            let got = b
                .get_many_or_load(chunk.to_vec(), |keys| async move {
                    Err::<HashMap<u64, String>, _>(std::io::Error::other(format!(
                        "{} planted entries not found in L2",
                        keys.len()
                    )))
                })
                .await
                .expect("B's reads");
            assert_eq!(got.len(), chunk.len());
        })
        .buffer_unordered(READ_CONCURRENCY)
        .collect::<()>()
        .await;
    for i in ENTRIES..ENTRIES + FEW {
        let opts = entry_options(i);
        let v = b
            .get_or_load_with(i, &opts, move || async move {
                Ok::<_, std::io::Error>(value(i))
            })
            .await
            .expect("B's load");
        assert_eq!(v, value(i));
    }
    let loaded = started.elapsed();
    // Every entry is now an L1 hit on B (the first read of an entry loaded with tags whose
    // versions were unknown checks them in L2 once).
    for i in ENTRIES..ENTRIES + FEW {
        assert_eq!(b.get(&i).await.unwrap(), Some(value(i)));
    }
    let calls = b_tier.calls();
    for i in 0..ENTRIES + FEW {
        assert_eq!(b.get(&i).await.unwrap(), Some(value(i)), "entry {i}");
    }
    assert_eq!(b_tier.calls(), calls, "B serves its entries from L1");
    eprintln!(
        "B holds {} tagged entries in L1 ({loaded:?} to read or load them)",
        ENTRIES + FEW
    );
}

/// Must-show 4's latency: A invalidates tag after tag; for each, the time from A's
/// `invalidate_tag` returning until B has applied it, and until B's reads of all 100
/// entries of the tag (made at once) return `None`. The target is 10 ms, but a timing
/// assertion that tight fails on a loaded 2-core machine for reasons that are not the
/// library's (the test, two or six redis-servers and other test binaries share two cores):
/// the figures are printed for BENCHMARKS.md and only [`LATENCY_BOUND`] is asserted, which
/// still fails if B keeps serving the entries (a tag message not applied, or not checked
/// on the L1 hit path).
async fn tag_latency(a: &Cache, b: &Cache, kind: &str) -> Vec<u64> {
    let (mut applied, mut missed, mut calls) = (Vec::new(), Vec::new(), Vec::new());
    let mut tags = Vec::new();
    for round in 0..LATENCY_ROUNDS {
        let tag = round * 37 % TAGS;
        tags.push(tag);
        let name = format!("t{tag}");
        assert_eq!(present(b, entries_of(tag)).await, 100, "B holds tag {name}");
        let called = Instant::now();
        a.invalidate_tag(&name).await.expect("A's invalidate_tag");
        let t0 = Instant::now();
        calls.push(t0 - called);
        let target = a.backplane_version();
        assert!(
            within(LATENCY_BOUND, || b.backplane_version() >= target).await,
            "B did not apply A's invalidation of {name} within {LATENCY_BOUND:?}"
        );
        applied.push(t0.elapsed());
        let mut all_missed = false;
        // Bounded by LATENCY_BOUND, and by count (100 reads per try).
        for _ in 0..1_000 {
            if present(b, entries_of(tag)).await == 0 {
                all_missed = true;
                break;
            }
            if t0.elapsed() > LATENCY_BOUND {
                break;
            }
        }
        let took = t0.elapsed();
        assert!(
            all_missed && took <= LATENCY_BOUND,
            "B still served entries of {name} {took:?} after A's invalidate_tag returned"
        );
        missed.push(took);
        // Another tag's entries are untouched.
        let other = (tag + 1) % TAGS;
        assert_eq!(
            present(b, entries_of(other)).await,
            100,
            "tag t{other} stays"
        );
    }
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    eprintln!(
        "tag invalidation on A -> miss on B ({kind}, {LATENCY_ROUNDS} tags of 100 entries): \
         A's call median {:?}; after it returned, B had applied it: median {:?} max {:?}; \
         all 100 reads None: median {:?} max {:?}",
        median(&mut calls),
        median(&mut applied.clone()),
        max(&applied),
        median(&mut missed.clone()),
        max(&missed)
    );
    tags
}

/// A third instance built after the invalidations reads the invalidated tags' entries from
/// L2 as misses, and the others as values.
async fn third_instance(redis: &Redis, name: &str, invalidated: &[u64]) {
    let (c, _) = redis.instance(name, 10_000).await;
    let started = Instant::now();
    for &tag in invalidated {
        assert_eq!(
            present(&c, entries_of(tag)).await,
            0,
            "C reads entries of the invalidated tag t{tag} from L2"
        );
    }
    let took = started.elapsed();
    for tag in invalidated.iter().map(|t| (t + 1) % TAGS) {
        assert_eq!(
            present(&c, entries_of(tag)).await,
            100,
            "C reads tag t{tag}"
        );
    }
    eprintln!(
        "third instance ({}): {} entries of {} invalidated tags read from L2 as misses in {took:?}",
        redis.kind(),
        invalidated.len() * 100,
        invalidated.len()
    );
}

/// Must-show 4's cost: `invalidate_tag` of a tag on 10 entries and of one on 100,000,
/// [`TIMING_ROUNDS`] calls each, interleaved. Both are one stream append and one small L2
/// write whatever the entries, so their medians must agree within noise. A wall-clock
/// comparison on a shared 2-core machine is noisy (one scheduler hiccup is milliseconds),
/// so only a robust bound is asserted: the 100,000-entry median under 5 times the
/// 10-entry median plus 1 ms. Any per-entry work (even 1 µs per entry, 100 ms a call)
/// breaks it by far.
async fn invalidate_tag_cost(a: &Cache, b: &Cache, kind: &str) {
    let (mut few, mut all) = (Vec::new(), Vec::new());
    for _ in 0..TIMING_ROUNDS {
        let t = Instant::now();
        a.invalidate_tag("few").await.expect("invalidate few");
        few.push(t.elapsed());
        let t = Instant::now();
        a.invalidate_tag("all").await.expect("invalidate all");
        all.push(t.elapsed());
    }
    let (few, all) = (median(&mut few), median(&mut all));
    eprintln!(
        "invalidate_tag ({kind}, {TIMING_ROUNDS} calls each): median {few:?} for a tag on \
         {FEW} entries, {all:?} for a tag on {ENTRIES}"
    );
    assert!(
        all < few * 5 + Duration::from_millis(1),
        "invalidate_tag of a tag on {ENTRIES} entries ({all:?}) is not within noise of one on \
         {FEW} ({few:?})"
    );
    // They took effect.
    let target = a.backplane_version();
    assert!(within(WAIT, || b.backplane_version() >= target).await);
    assert_eq!(present(b, ENTRIES..ENTRIES + FEW).await, 0, "tag few");
    assert_eq!(present(b, (0..ENTRIES).step_by(997)).await, 0, "tag all");
}

/// Must-show 4 on `redis`, cache `name`.
async fn tags_at_scale(redis: &Redis, name: &str) {
    let started = Instant::now();
    let (a, _) = redis.instance(name, 10_000).await;
    let (b, b_tier) = redis.instance(name, 2 * ENTRIES).await;
    plant_entries(redis, name, a.backplane_version()).await;
    load_entries(&b, &b_tier).await;
    let invalidated = tag_latency(&a, &b, redis.kind()).await;
    third_instance(redis, name, &invalidated).await;
    invalidate_tag_cost(&a, &b, redis.kind()).await;
    eprintln!(
        "tags at scale ({}): {:?} in all",
        redis.kind(),
        started.elapsed()
    );
}

/// Must-show 5: B and C hold keys in L1 (plain and tagged) and do not read them while A
/// sets, removes and tag-invalidates them 100 times each: their tiers see no call at all
/// (a receiver drops keys, it does not re-read them). Afterwards their reads go to L2.
async fn no_read_storm(redis: &Redis, name: &str) {
    let (a, _) = redis.instance(name, 10_000).await;
    let (b, b_tier) = redis.instance(name, 10_000).await;
    let (c, c_tier) = redis.instance(name, 10_000).await;
    let keys: Vec<u64> = (0..20).collect();
    for cache in [&b, &c] {
        for &k in &keys {
            let opts = EntryOptions::new().ttl(Duration::from_secs(600));
            // Odd keys carry the tag "hot".
            let opts = if k % 2 == 1 { opts.tags(["hot"]) } else { opts };
            cache
                .get_or_load_with(k, &opts, move || async move {
                    Ok::<_, std::io::Error>(format!("v{k}"))
                })
                .await
                .expect("load");
        }
        // Warm: tag versions known, every key an L1 hit.
        for &k in &keys {
            cache.get(&k).await.expect("get");
        }
    }
    redis.applied(name, &[&b, &c]).await;
    let (b0, c0) = (b_tier.calls(), c_tier.calls());
    for &k in &keys {
        assert_eq!(b.get(&k).await.unwrap(), Some(format!("v{k}")));
        assert_eq!(c.get(&k).await.unwrap(), Some(format!("v{k}")));
    }
    assert_eq!(
        (b_tier.calls(), c_tier.calls()),
        (b0, c0),
        "B and C hold every key in L1 (the test's premise)"
    );
    // Keys 1 (tagged "hot") and 2 (untagged) are set or removed, and "hot" invalidated,
    // 100 times each.
    for i in 0..100u64 {
        if i % 2 == 0 {
            a.set(1, format!("a{i}")).await.expect("A's set");
            a.set(2, format!("a{i}")).await.expect("A's set");
        } else {
            a.remove(&1).await.expect("A's remove");
            a.remove(&2).await.expect("A's remove");
        }
        a.invalidate_tag("hot").await.expect("A's invalidate_tag");
    }
    let last = redis.applied(name, &[&b, &c]).await;
    let (b1, c1) = (b_tier.calls(), c_tier.calls());
    eprintln!(
        "no read storm ({}): 300 invalidations up to {last}; B's tier saw {} calls, C's {}",
        redis.kind(),
        b1 - b0,
        c1 - c0
    );
    assert_eq!(
        b1, b0,
        "B's tier was called while B only received invalidations"
    );
    assert_eq!(
        c1, c0,
        "C's tier was called while C only received invalidations"
    );
    // The invalidations were applied: the keys are gone from L1 (reads reach L2) ...
    assert_eq!(b.get(&2).await.unwrap(), None, "A removed key 2 last");
    assert!(b_tier.calls() > b1, "B's read of key 2 reached L2");
    assert_eq!(
        c.get(&3).await.unwrap(),
        None,
        "key 3 carries the tag A invalidated"
    );
    assert!(c_tier.calls() > c1, "C's read of key 3 reached L2");
    // ... and an untouched untagged key is still an L1 hit.
    let b2 = b_tier.calls();
    assert_eq!(b.get(&4).await.unwrap().as_deref(), Some("v4"));
    assert_eq!(b_tier.calls(), b2, "key 4 is still in B's L1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_on_100_000_entries_is_invalidated_everywhere_at_the_cost_of_one_on_10() {
    limited("tags at scale on a single node", async {
        let redis = Redis::single().await;
        tags_at_scale(&redis, "tags").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_of_invalidations_make_no_l2_reads() {
    limited("no read storm on a single node", async {
        let redis = Redis::single().await;
        no_read_storm(&redis, "storm").await;
    })
    .await;
}

/// Must-show 7: the same on one 3-master Cluster (one cluster per test binary: it takes
/// seconds to form, so its checks run in turn here, as `tests/redis.rs` does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_tags_and_the_read_storm_check_hold_too() {
    limited("tags on a cluster", async {
        let redis = Redis::cluster().await;
        tags_at_scale(&redis, "ctags").await;
        no_read_storm(&redis, "cstorm").await;
    })
    .await;
}
