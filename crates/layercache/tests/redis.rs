//! `TieredCache` over real Redis: a single node and a 3-master Cluster, each started by the
//! test on its own ports (never the server on 6379), plus a server killed with SIGKILL in
//! the middle of a load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use layercache::{envelope, EntryOptions, Tier, TierFuture, TieredCache};
use layercache_redis::testing::{RedisCluster, RedisServer};
use layercache_redis::RedisTier;
use redis::AsyncCommands;

const TTL: Duration = Duration::from_secs(120);

fn options() -> EntryOptions {
    EntryOptions::new().ttl(TTL).l1_ttl(Duration::from_secs(30))
}

/// A tier that counts the calls reaching the wrapped tier.
#[derive(Clone)]
struct Counted {
    inner: Arc<RedisTier>,
    calls: Arc<AtomicU64>,
}

impl Tier for Counted {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key)
    }
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.set(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key)
    }
    fn get_many<'a>(&'a self, keys: &'a [&'a [u8]]) -> TierFuture<'a, Vec<Option<Vec<u8>>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get_many(keys)
    }
    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a [u8], &'a [u8])],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.set_many(entries, ttl)
    }
}

fn cache(tier: &Arc<RedisTier>, name: &str) -> TieredCache<u64, String> {
    TieredCache::builder(name)
        .l2_shared(tier.clone() as Arc<dyn Tier>)
        .default_entry_options(options())
        .build()
}

/// The scenarios both deployments must pass; `pttl` reads a key's PTTL from Redis.
async fn exercise<F, Fut>(tier: Arc<RedisTier>, pttl: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let a = cache(&tier, "products");
    let b = cache(&tier, "products"); // another instance: its own L1, the same L2

    // set / get / PTTL / promotion
    a.set(1, "lamp".into()).await.unwrap();
    let ms = pttl("products:1").await;
    assert!(ms > 0 && ms <= TTL.as_millis() as i64, "PTTL {ms}");
    assert_eq!(b.l1_entry_count(), 0);
    assert_eq!(b.get(&1).await.unwrap().as_deref(), Some("lamp"));
    assert_eq!(b.l1_entry_count(), 1, "promoted into L1");

    // remove reaches both tiers
    a.remove(&1).await.unwrap();
    assert_eq!(pttl("products:1").await, -2, "gone from Redis");
    let c = cache(&tier, "products");
    assert_eq!(c.get(&1).await.unwrap(), None);

    // get_or_load: the loader runs once, then L2 serves other instances
    let loads = AtomicU64::new(0);
    let v = a
        .get_or_load(2, || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>("desk".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "desk");
    let v = c
        .get_or_load(2, || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>("not from the origin".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "desk", "served from L2");
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let ms = pttl("products:2").await;
    assert!(ms > 0 && ms <= TTL.as_millis() as i64, "PTTL {ms}");

    // get_many_or_load over keys in many slots: L2 has some, the loader the rest
    for k in 100..150u64 {
        a.set(k, format!("p{k}")).await.unwrap();
    }
    let fresh = cache(&tier, "products");
    let batch_calls = AtomicU64::new(0);
    let got = fresh
        .get_many_or_load((100..200).collect(), |missing: Vec<u64>| {
            batch_calls.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(
                    missing.iter().all(|&k| k >= 150),
                    "only L2 misses are loaded"
                );
                Ok::<_, std::io::Error>(
                    missing
                        .into_iter()
                        .map(|k| (k, format!("p{k}")))
                        .collect::<HashMap<_, _>>(),
                )
            }
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 100);
    assert!((100..200).all(|k| got[&k] == format!("p{k}")));
    assert_eq!(batch_calls.load(Ordering::SeqCst), 1);
    let ms = pttl("products:199").await;
    assert!(ms > 0, "batch-loaded values reach L2 with the TTL: {ms}");

    // bytes planted in Redis are misses, never panics
    let another = envelope::encode(b"products:8", Some(b"\x03abc"), 0, None, 1024);
    let valid = envelope::encode(b"products:7", Some(b"\x03abc"), 0, None, 1024);
    let planted: [&[u8]; 4] = [
        b"\x00\xffrandom garbage, not an envelope",
        &another,
        &valid[..valid.len() - 1],
        &[],
    ];
    for bytes in planted {
        tier.set(b"products:7", bytes, None).await.unwrap();
        let probe = cache(&tier, "products");
        assert_eq!(probe.get(&7).await.unwrap(), None);
        let v = probe
            .get_or_load(7, || async { Ok::<_, std::io::Error>("chair".to_string()) })
            .await
            .unwrap();
        assert_eq!(v, "chair");
        assert_eq!(
            cache(&tier, "products").get(&7).await.unwrap().as_deref(),
            Some("chair"),
            "overwritten"
        );
        probe.remove(&7).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node() {
    let server = RedisServer::start();
    let tier = Arc::new(RedisTier::connect(&server.url()).await.unwrap());
    let client = redis::Client::open(server.url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    exercise(tier, |key| {
        let mut conn = conn.clone();
        async move { conn.pttl(key).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_of_three_masters() {
    let cluster = RedisCluster::start();
    let nodes = cluster.nodes();
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let tier = Arc::new(RedisTier::connect_cluster(&refs).await.unwrap());
    let client = redis::cluster::ClusterClient::new(nodes.clone()).unwrap();
    let conn = client.get_async_connection().await.unwrap();
    exercise(tier, |key| {
        let mut conn = conn.clone();
        async move { conn.pttl(key).await.unwrap() }
    })
    .await;
}

/// 32 tasks call `get_or_load` in a loop; the server is killed with SIGKILL, then restarted on
/// the same port. No caller sees an error; while the server is dead the breaker keeps calls
/// to it few; after the restart L2 hits resume within 2 s, on the same cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_never_fails_a_load() {
    let server = RedisServer::start();
    let redis = Arc::new(RedisTier::connect(&server.url()).await.unwrap());
    let calls = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: Arc::clone(&redis),
        calls: Arc::clone(&calls),
    };
    let c: TieredCache<u64, String> = TieredCache::builder("k")
        .l2(counted)
        .default_entry_options(
            EntryOptions::new()
                .ttl(TTL)
                .l1_ttl(Duration::from_millis(1)),
        )
        .build();
    let stop = Arc::new(AtomicBool::new(false));
    let (ops, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..32u64)
        .map(|t| {
            let (c, stop, ops, errors) = (c.clone(), stop.clone(), ops.clone(), errors.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let k = (t * 1_000 + i) % 500;
                    match c
                        .get_or_load(
                            k,
                            || async move { Ok::<_, std::io::Error>(format!("v{k}")) },
                        )
                        .await
                    {
                        Ok(v) => assert_eq!(v, format!("v{k}")),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    ops.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let wait_ops = |n: u64| {
        let ops = ops.clone();
        async move {
            let target = ops.load(Ordering::SeqCst) + n;
            while ops.load(Ordering::SeqCst) < target {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_ops(2_000).await;
    server.kill9();
    let (calls_at_kill, ops_at_kill) = (calls.load(Ordering::SeqCst), ops.load(Ordering::SeqCst));
    wait_ops(20_000).await;
    let dead_calls = calls.load(Ordering::SeqCst) - calls_at_kill;
    let dead_ops = ops.load(Ordering::SeqCst) - ops_at_kill;
    assert!(
        c.l2_breaker_open() || dead_calls < 200,
        "breaker open while L2 is dead"
    );
    assert!(
        dead_calls * 20 < dead_ops,
        "the breaker capped L2 calls: {dead_calls} calls for {dead_ops} loads"
    );
    server.restart();
    let restarted = Instant::now();
    // The same cache (same RedisTier) writes and reads L2 again.
    let probe = cache(&redis, "k");
    loop {
        let _ = c.set(9_999, "back".into()).await;
        if probe.get(&9_999).await.unwrap().as_deref() == Some("back") {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(2),
            "L2 hits did not resume within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed_after = restarted.elapsed();
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        errors.load(Ordering::SeqCst),
        0,
        "no error reached a caller"
    );
    eprintln!(
        "dead L2: {dead_calls} calls for {dead_ops} loads; L2 hits resumed {resumed_after:?} after the restart"
    );
}
