//! The invalidate-during-load races, over test-owned Redis servers (a single node, and the
//! same scenarios on one 3-master Cluster), each interleaving forced with gates the test
//! holds (never sleeps):
//! - a **load** in flight on instance B when A writes or removes the key: B's call may return
//!   the older value (it began before the write), but B's L1 never keeps it;
//! - an **L2 read** in flight on B (its tier holds the read, with the old bytes in hand, on a
//!   gate): the same;
//! - a **stale set in L2**: B's loader read the old row; A updates the row and invalidates;
//!   B's fill must not land in L2 (memcache's leases), so a third instance never reads it.
//!
//! (That receivers make no L2 reads is checked in `coherence_tags.rs`.)
//!
//! "B has applied A's message" is B's `backplane_version()` reaching the id of the last
//! entry of the cache's stream (read with `XREVRANGE` on a connection of the test's own,
//! and checked to be A's message).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use layercache::envelope::{self, DecodeError};
use layercache::message::{self, Action};
use layercache::redis::{RedisBackplane, RedisTier};
use layercache::{
    BreakerConfig, Codec, EntryOptions, Postcard, StreamId, Tier, TierFuture, TieredCache,
};
use layercache_redis::stream_key;
use layercache_redis::testing::{RedisCluster, RedisServer};
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::FromRedisValue;
use tokio::sync::oneshot;

type Cache = TieredCache<u64, String>;

/// The value before the race.
const OLD: &str = "old";
/// The value A writes during the race.
const NEW: &str = "new";
/// The longest one wait of a scenario may take (a loaded 2-core machine; a hang fails).
const WAIT: Duration = Duration::from_secs(30);
/// The longest one test may take.
const TEST_LIMIT: Duration = Duration::from_secs(240);
/// Well above every wait here: L1 stays trusted through each scenario (a distrusted L1
/// would hide a stale entry behind L2 reads, and the tests could not fail).
const MAX_STALENESS: Duration = Duration::from_secs(60);
/// What `envelope::decode` may unpack (the builder's default `max_payload`).
const MAX_PAYLOAD: usize = 1 << 20;

/// Awaits `fut` for at most [`WAIT`], failing with `what`.
async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: not within {WAIT:?}"),
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

/// Runs a test body under [`TEST_LIMIT`].
async fn limited<F: Future>(name: &str, body: F) -> F::Output {
    match tokio::time::timeout(TEST_LIMIT, body).await {
        Ok(out) => out,
        Err(_) => panic!("{name} did not finish within {TEST_LIMIT:?}: a hang"),
    }
}

/// The L2 key of `k` in cache `name`.
fn l2_key(name: &str, k: u64) -> Vec<u8> {
    format!("{name}:{k}").into_bytes()
}

/// A read of one key held by the test: the bytes L2 returned are handed to the test, and
/// the read returns them once the test opens the gate.
struct Held {
    key: Vec<u8>,
    read: oneshot::Sender<Option<Vec<u8>>>,
    open: oneshot::Receiver<()>,
}

/// An instance's tier: forwards to Redis, counts each key's reads, and can hold one read
/// (see [`Held`]).
struct Watched {
    inner: Arc<dyn Tier>,
    reads: Mutex<HashMap<Vec<u8>, usize>>,
    held: Mutex<Option<Held>>,
}

impl Watched {
    fn new(inner: Arc<dyn Tier>) -> Arc<Watched> {
        Arc::new(Watched {
            inner,
            reads: Mutex::new(HashMap::new()),
            held: Mutex::new(None),
        })
    }

    /// The reads (`get`, or a key of a `get_many`) of `key` so far.
    fn reads_of(&self, key: &[u8]) -> usize {
        let reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
        reads.get(key).copied().unwrap_or(0)
    }

    fn count_reads(&self, keys: &[&[u8]]) {
        let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
        for k in keys {
            *reads.entry(k.to_vec()).or_default() += 1;
        }
    }

    /// Holds the next `get` of `key`: the receiver gets the bytes it read from Redis, and
    /// it returns them once the sender is sent to (or dropped).
    fn hold_next_get(
        &self,
        key: &[u8],
    ) -> (oneshot::Receiver<Option<Vec<u8>>>, oneshot::Sender<()>) {
        let (read, read_rx) = oneshot::channel();
        let (open_tx, open) = oneshot::channel();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        *held = Some(Held {
            key: key.to_vec(),
            read,
            open,
        });
        (read_rx, open_tx)
    }

    fn take_held(&self, key: &[u8]) -> Option<Held> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.as_ref().is_some_and(|h| h.key == key) {
            held.take()
        } else {
            None
        }
    }
}

impl Tier for Watched {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.count_reads(&[key]);
            let bytes = self.inner.get(key).await?;
            if let Some(held) = self.take_held(key) {
                let _ = held.read.send(bytes.clone());
                let _ = held.open.await;
            }
            Ok(bytes)
        })
    }
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        self.inner.set(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
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
        self.inner.add(key, value, ttl)
    }
    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        self.inner.compare_and_set(key, expected, value, ttl)
    }
    fn compare_and_delete<'a>(&'a self, key: &'a [u8], expected: &'a [u8]) -> TierFuture<'a, bool> {
        self.inner.compare_and_delete(key, expected)
    }
    fn get_many<'a>(&'a self, keys: &'a [&'a [u8]]) -> TierFuture<'a, Vec<Option<Vec<u8>>>> {
        self.count_reads(keys);
        self.inner.get_many(keys)
    }
    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a [u8], &'a [u8])],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
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

    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let got = match &self.conn {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        };
        got.unwrap_or_else(|e| panic!("the test's own Redis command failed: {e}"))
    }

    /// What Redis holds under `key`, read around every cache.
    async fn raw(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    /// The id and payload of the last entry of cache `name`'s stream.
    async fn last_message(&self, name: &str) -> (StreamId, Vec<u8>) {
        let entries: Vec<(String, Vec<Vec<u8>>)> = self
            .query(
                redis::cmd("XREVRANGE")
                    .arg(stream_key(name))
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await;
        let (id, mut fields) = entries.into_iter().next().expect("the stream is empty");
        let id = id.parse().expect("a stream id");
        let payload = fields.pop().expect("a stream entry without its field");
        (id, payload)
    }

    async fn tier(&self) -> Arc<dyn Tier> {
        let builder = RedisTier::builder()
            .connection_timeout(Duration::from_secs(10))
            .response_timeout(Duration::from_secs(20));
        let refs: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        let tier = if self.cluster {
            builder.connect_cluster(&refs).await
        } else {
            builder.connect(refs[0]).await
        };
        Arc::new(tier.expect("tier"))
    }

    async fn backplane(&self) -> RedisBackplane {
        let builder = RedisBackplane::builder()
            .connection_timeout(Duration::from_secs(10))
            .response_timeout(Duration::from_secs(10));
        let refs: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        let bus = if self.cluster {
            builder.connect_cluster(&refs).await
        } else {
            builder.connect(refs[0]).await
        };
        bus.expect("backplane")
    }

    /// An instance of cache `name` with its own connections (as a process of its own would
    /// have), its tier behind a [`Watched`]; caught up with the stream.
    async fn instance(&self, name: &str) -> (Cache, Arc<Watched>) {
        let tier = Watched::new(self.tier().await);
        let cache = TieredCache::builder(name)
            .l2_shared(Arc::clone(&tier) as Arc<dyn Tier>)
            .backplane(self.backplane().await)
            .max_staleness(MAX_STALENESS)
            .lease_ttl(Duration::from_secs(120))
            // A held read must not time out: the race would then not happen.
            .breaker(BreakerConfig {
                call_timeout: Duration::from_secs(120),
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

    /// Waits until every instance of `caches` has applied the last message of cache
    /// `name`'s stream; that message's id.
    async fn applied(&self, name: &str, caches: &[&Cache]) -> StreamId {
        let (last, _) = self.last_message(name).await;
        for c in caches {
            assert!(
                within(WAIT, || c.backplane_version() >= last).await,
                "an instance did not apply stream entry {last} within {WAIT:?} (it is at {})",
                c.backplane_version()
            );
        }
        last
    }

    /// Checks that the last message of `name`'s stream is `a`'s `action` on `k`, and waits
    /// until each of `caches` has applied it.
    async fn applied_from(&self, name: &str, a: &Cache, action: Action, k: u64, caches: &[&Cache]) {
        let (_, payload) = self.last_message(name).await;
        let msg = message::decode(&payload).expect("a backplane message");
        assert_eq!(msg.source, a.instance_id(), "the last message is A's");
        assert_eq!(msg.action, action);
        assert_eq!(&msg.subject[..], k.to_string().as_bytes());
        self.applied(name, caches).await;
    }
}

/// What A does to the key while B's load or read is in flight.
#[derive(Clone, Copy, Debug)]
enum Write {
    Set,
    Remove,
}

impl Write {
    async fn run(self, a: &Cache, k: u64) {
        match self {
            Write::Set => a.set(k, NEW.to_string()).await.expect("A's set"),
            Write::Remove => a.remove(&k).await.expect("A's remove"),
        }
    }
    fn action(self) -> Action {
        match self {
            Write::Set => Action::Set,
            Write::Remove => Action::Remove,
        }
    }
    /// What a read after the race must return.
    fn after(self) -> Option<&'static str> {
        match self {
            Write::Set => Some(NEW),
            Write::Remove => None,
        }
    }
}

/// Two instances of one cache: A writes, B races.
struct Pair {
    name: String,
    a: Cache,
    b: Cache,
    b_tier: Arc<Watched>,
}

impl Pair {
    async fn new(redis: &Redis, name: &str) -> Pair {
        let (a, _) = redis.instance(name).await;
        let (b, b_tier) = redis.instance(name).await;
        assert_ne!(a.instance_id(), b.instance_id());
        Pair {
            name: name.to_string(),
            a,
            b,
            b_tier,
        }
    }

    /// After the race on `k` (A did `write`): B's next read bypasses L1 (one L2 read of the
    /// key) and returns what A wrote, never [`OLD`]; and L1 then works (a value read is
    /// served from L1 next time).
    async fn check_b_after(&self, k: u64, write: Write, case: &str) {
        let k2 = l2_key(&self.name, k);
        assert!(
            self.b.l1_trusted(),
            "{case}: B's L1 is trusted (else L1 is not tested)"
        );
        let before = self.b_tier.reads_of(&k2);
        let got = self.b.get(&k).await.expect("B's get");
        assert_ne!(
            got.as_deref(),
            Some(OLD),
            "{case}: B serves the value A replaced"
        );
        assert_eq!(
            got.as_deref(),
            write.after(),
            "{case}: B's read after the race"
        );
        assert_eq!(
            self.b_tier.reads_of(&k2),
            before + 1,
            "{case}: B's read after the race went to L2 (nothing for the key in L1)"
        );
        if write.after().is_some() {
            let again = self.b.get(&k).await.expect("B's get");
            assert_eq!(again.as_deref(), write.after());
            assert_eq!(
                self.b_tier.reads_of(&k2),
                before + 1,
                "{case}: the value read from L2 is served from L1 next (L1 works)"
            );
        }
    }
}

/// Must-show 3, a load in flight: B's `get_or_load_with(k, opts)` runs a loader that waits
/// on the test, returning [`OLD`]; A does `write`; B applies it; the loader is released.
/// With `opts` writing L2, both the lease and the race guard stand between B's load and
/// its L1; with `skip_l2_write` only the guard does.
async fn load_race(redis: &Redis, pair: &Pair, k: u64, write: Write, opts: &EntryOptions) {
    let case = format!("load race, key {k}, {write:?}, {opts:?}");
    redis.applied(&pair.name, &[&pair.b]).await;
    let (started_tx, started) = oneshot::channel();
    let (release, release_rx) = oneshot::channel::<()>();
    let call = tokio::spawn({
        let (b, opts) = (pair.b.clone(), opts.clone());
        async move {
            b.get_or_load_with(k, &opts, move || async move {
                let _ = started_tx.send(());
                let _ = release_rx.await;
                Ok::<_, std::io::Error>(OLD.to_string())
            })
            .await
        }
    });
    bounded("B's loader to start", started)
        .await
        .expect("B's load ended before its loader ran");
    write.run(&pair.a, k).await;
    redis
        .applied_from(&pair.name, &pair.a, write.action(), k, &[&pair.b])
        .await;
    let _ = release.send(());
    let got = bounded("B's load to finish", call)
        .await
        .expect("B's load panicked")
        .expect("B's load failed");
    assert_eq!(got, OLD, "{case}: B's call began before A's write");
    pair.check_b_after(k, write, &case).await;
}

/// How B reads in the L2-read race.
#[derive(Clone, Copy, Debug)]
enum Via {
    Get,
    GetOrLoad,
}

/// Must-show 3, an L2 read in flight: L2 holds [`OLD`]; B's read of `k` (by `via`) is held
/// by its tier with the old bytes in hand; A does `write`; B applies it; the read returns.
async fn read_race(redis: &Redis, pair: &Pair, k: u64, write: Write, via: Via) {
    let case = format!("L2-read race, key {k}, {write:?}, via {via:?}");
    let k2 = l2_key(&pair.name, k);
    pair.a.set(k, OLD.to_string()).await.expect("A's first set");
    redis
        .applied_from(&pair.name, &pair.a, Action::Set, k, &[&pair.b])
        .await;
    let (read, open) = pair.b_tier.hold_next_get(&k2);
    let call = tokio::spawn({
        let b = pair.b.clone();
        async move {
            match via {
                Via::Get => b.get(&k).await.expect("B's get"),
                Via::GetOrLoad => Some(
                    b.get_or_load(k, || async {
                        Ok::<_, std::io::Error>("loaded".to_string())
                    })
                    .await
                    .expect("B's get_or_load"),
                ),
            }
        }
    });
    let bytes = bounded("B's L2 read", read)
        .await
        .expect("B's read ended before reaching L2")
        .expect("L2 holds the old value");
    let env = envelope::decode(&k2, &bytes, MAX_PAYLOAD).expect("an envelope");
    let held: String = Postcard
        .decode(&env.payload.expect("a value"))
        .expect("a String");
    assert_eq!(held, OLD, "{case}: B's held read has the old bytes");
    write.run(&pair.a, k).await;
    redis
        .applied_from(&pair.name, &pair.a, write.action(), k, &[&pair.b])
        .await;
    let _ = open.send(());
    let got = bounded("B's read to finish", call)
        .await
        .expect("B's read panicked");
    assert_eq!(
        got.as_deref(),
        Some(OLD),
        "{case}: B's read began before A's write"
    );
    pair.check_b_after(k, write, &case).await;
}

/// How B fills in the stale-set race.
#[derive(Clone, Copy, Debug)]
enum Fill {
    GetOrLoad,
    GetManyOrLoad,
}

/// What L2 holds for `k2` after a stale-set race: absent, a lease marker, or [`NEW`].
fn check_l2(case: &str, k2: &[u8], raw: Option<&[u8]>) {
    let Some(bytes) = raw else { return };
    match envelope::decode(k2, bytes, MAX_PAYLOAD) {
        Err(DecodeError::Lease) => {}
        Ok(env) => {
            let value: Option<String> = env.payload.map(|p| Postcard.decode(&p).expect("a String"));
            assert_eq!(
                value.as_deref(),
                Some(NEW),
                "{case}: L2 holds a value other than A's (B's stale fill landed after A's write)"
            );
        }
        Err(e) => panic!("{case}: L2 holds bytes that are not an envelope: {e}"),
    }
}

/// Must-show 3, a stale set in L2: B's loader has read the old row (held); A updates the row
/// and does `write`; B applies it; the loader returns the old row. L2 must not hold it
/// afterwards, and a third instance C, built then, never returns it.
async fn fill_race(redis: &Redis, pair: &Pair, k: u64, write: Write, fill: Fill) {
    let case = format!("stale-set race, key {k}, {write:?}, via {fill:?}");
    let k2 = l2_key(&pair.name, k);
    let origin = Arc::new(Mutex::new(OLD.to_string()));
    let read_row = {
        let origin = Arc::clone(&origin);
        move || {
            origin
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }
    };
    redis.applied(&pair.name, &[&pair.b]).await;
    let (started_tx, started) = oneshot::channel();
    let (release, release_rx) = oneshot::channel::<()>();
    let call = tokio::spawn({
        let (b, read_row) = (pair.b.clone(), read_row.clone());
        async move {
            match fill {
                Fill::GetOrLoad => b
                    .get_or_load(k, move || async move {
                        let row = read_row();
                        let _ = started_tx.send(());
                        let _ = release_rx.await;
                        Ok::<_, std::io::Error>(row)
                    })
                    .await
                    .expect("B's get_or_load"),
                Fill::GetManyOrLoad => {
                    let gates = Mutex::new(Some((started_tx, release_rx)));
                    let got = b
                        .get_many_or_load(vec![k], |keys| {
                            let row = read_row();
                            let gate = gates.lock().unwrap_or_else(PoisonError::into_inner).take();
                            async move {
                                if let Some((started_tx, release_rx)) = gate {
                                    let _ = started_tx.send(());
                                    let _ = release_rx.await;
                                }
                                Ok::<_, std::io::Error>(
                                    keys.into_iter().map(|k| (k, row.clone())).collect(),
                                )
                            }
                        })
                        .await
                        .expect("B's get_many_or_load");
                    got.get(&k).cloned().expect("the loaded key")
                }
            }
        }
    });
    bounded("B's loader to start", started)
        .await
        .expect("B's load ended before its loader ran");
    *origin.lock().unwrap_or_else(PoisonError::into_inner) = NEW.to_string();
    write.run(&pair.a, k).await;
    redis
        .applied_from(&pair.name, &pair.a, write.action(), k, &[&pair.b])
        .await;
    let _ = release.send(());
    let got = bounded("B's load to finish", call)
        .await
        .expect("B's load panicked");
    assert_eq!(
        got, OLD,
        "{case}: B's loader read the row before A's update"
    );
    check_l2(&case, &k2, redis.raw(&k2).await.as_deref());
    pair.check_b_after(k, write, &case).await;
    let (c, _) = redis.instance(&pair.name).await;
    let seen = c.get(&k).await.expect("C's get");
    assert_ne!(seen.as_deref(), Some(OLD), "{case}: C reads B's stale fill");
    assert_eq!(seen.as_deref(), write.after(), "{case}: C's read");
    let loaded = c
        .get_or_load(
            k,
            move || async move { Ok::<_, std::io::Error>(read_row()) },
        )
        .await
        .expect("C's get_or_load");
    assert_eq!(loaded, NEW, "{case}: C's load");
}

/// The load races: A sets or removes; B's load writes L2 (lease and guard protect L1) or
/// skips L2 (only the guard does).
async fn load_races(redis: &Redis, pair: &Pair, first: u64) {
    let plain = EntryOptions::new().ttl(Duration::from_secs(600));
    let guard_only = plain.clone().skip_l2_write();
    let mut k = first;
    for write in [Write::Set, Write::Remove] {
        for opts in [&plain, &guard_only] {
            load_race(redis, pair, k, write, opts).await;
            k += 1;
        }
    }
}

/// The L2-read races: A sets or removes; B reads by `get` or `get_or_load`.
async fn read_races(redis: &Redis, pair: &Pair, first: u64) {
    let mut k = first;
    for write in [Write::Set, Write::Remove] {
        for via in [Via::Get, Via::GetOrLoad] {
            read_race(redis, pair, k, write, via).await;
            k += 1;
        }
    }
}

/// The stale-set races of `get_or_load`: A removes or sets.
async fn fill_races(redis: &Redis, pair: &Pair, first: u64) {
    fill_race(redis, pair, first, Write::Remove, Fill::GetOrLoad).await;
    fill_race(redis, pair, first + 1, Write::Set, Fill::GetOrLoad).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_overlapping_an_invalidation_never_leaves_the_old_value_in_l1() {
    limited("load races on a single node", async {
        let redis = Redis::single().await;
        let pair = Pair::new(&redis, "load").await;
        load_races(&redis, &pair, 1).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_l2_read_overlapping_an_invalidation_never_leaves_the_old_value_in_l1() {
    limited("L2-read races on a single node", async {
        let redis = Redis::single().await;
        let pair = Pair::new(&redis, "read").await;
        read_races(&redis, &pair, 1).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_overlapping_an_invalidation_never_lands_in_l2() {
    limited("stale-set races on a single node", async {
        let redis = Redis::single().await;
        let pair = Pair::new(&redis, "fill").await;
        fill_races(&redis, &pair, 1).await;
    })
    .await;
}

/// The stale-set race through `get_many_or_load`'s batch loader (its fills take leases
/// since 383be3d; before, a plain `set_many` landed the old value in L2 after the
/// invalidation, and this test failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_fill_overlapping_an_invalidation_never_lands_in_l2() {
    limited("batch stale set", async {
        let redis = Redis::single().await;
        let pair = Pair::new(&redis, "batch").await;
        fill_race(&redis, &pair, 1, Write::Remove, Fill::GetManyOrLoad).await;
        fill_race(&redis, &pair, 2, Write::Set, Fill::GetManyOrLoad).await;
    })
    .await;
}

/// Must-show 7: the same races on one 3-master Cluster (one cluster per test binary: it
/// takes seconds to form, so its scenarios run in turn here, as `tests/redis.rs` does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_races_hold_too() {
    limited("races on a cluster", async {
        let redis = Redis::cluster().await;
        let pair = Pair::new(&redis, "crace").await;
        load_races(&redis, &pair, 100).await;
        read_races(&redis, &pair, 200).await;
        fill_races(&redis, &pair, 300).await;
    })
    .await;
}
