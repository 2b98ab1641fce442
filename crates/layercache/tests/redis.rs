//! `TieredCache` over real Redis, each server started by the test on its own ports (never
//! the server on 6379): every scenario of `scenarios/` on a single node (one server per
//! scenario) and on a 3-master Cluster (one cluster, the scenarios in turn), with the TTL
//! checked by `PTTL` (the `PX` the tier sent); plus a server killed with SIGKILL in the
//! middle of a load.

#[macro_use]
mod scenarios;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use layercache::{EntryOptions, Tier, TieredCache};
use layercache_redis::testing::{RedisCluster, RedisServer};
use layercache_redis::RedisTier;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::FromRedisValue;
use scenarios::{Backend, Probe};

/// A connection of the test's own, around the tier.
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// A Redis deployment under test.
struct Redis {
    tier: Arc<RedisTier>,
    conn: Conn,
    /// The servers (a `RedisServer` or `RedisCluster`), killed when this is dropped.
    _servers: Box<dyn std::any::Any + Send + Sync>,
}

impl Redis {
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let got = match &self.conn {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        };
        got.unwrap_or_else(|e| panic!("the test's own Redis command failed: {e}"))
    }
}

impl Backend for Redis {
    fn tier(&self) -> Arc<dyn Tier> {
        Arc::clone(&self.tier) as Arc<dyn Tier>
    }
    async fn raw<'a>(&'a self, key: &'a [u8]) -> Option<Vec<u8>> {
        self.query(redis::cmd("GET").arg(key)).await
    }
    async fn plant<'a>(&'a self, key: &'a [u8], bytes: &'a [u8]) {
        let () = self.query(redis::cmd("SET").arg(key).arg(bytes)).await;
    }
    /// `PTTL`: for a TTL, more than half of it and at most all of it remains (the check
    /// follows the write at once; half leaves seconds for a loaded machine); for none, `-1`.
    async fn assert_ttl<'a>(&'a self, key: &'a [u8], ttl: Option<Duration>) {
        let ms: i64 = self.query(redis::cmd("PTTL").arg(key)).await;
        let key = String::from_utf8_lossy(key);
        match ttl {
            Some(ttl) => {
                let full = i64::try_from(ttl.as_millis()).expect("a test TTL fits i64");
                assert!(
                    ms > full / 2 && ms <= full,
                    "PTTL {key}: {ms} ms, not in ({}, {full}]",
                    full / 2
                );
            }
            None => assert_eq!(ms, -1, "PTTL {key}: no expiry expected"),
        }
    }
}

/// A tier whose calls may take long (1000-task scenarios on a loaded 2-core machine):
/// the default 500 ms response timeout would turn a slow `set_many` into missing keys.
fn patient() -> layercache_redis::RedisTierBuilder {
    RedisTier::builder()
        .connection_timeout(Duration::from_secs(10))
        .response_timeout(Duration::from_secs(20))
}

/// A single node, its own for each scenario.
async fn single_node() -> Redis {
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("RedisServer::start panicked");
    let tier = Arc::new(patient().connect(&server.url()).await.unwrap());
    let client = redis::Client::open(server.url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    Redis {
        tier,
        conn: Conn::Single(conn),
        _servers: Box::new(server),
    }
}

async fn cluster() -> Redis {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .expect("RedisCluster::start panicked");
    let nodes = cluster.nodes();
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let tier = Arc::new(patient().connect_cluster(&refs).await.unwrap());
    let client = redis::cluster::ClusterClient::new(nodes.clone()).unwrap();
    let conn = client.get_async_connection().await.unwrap();
    Redis {
        tier,
        conn: Conn::Cluster(conn),
        _servers: Box::new(cluster),
    }
}

/// Every scenario, one test each, on a single node.
mod single {
    use super::single_node;
    scenario_tests!(single_node);
}

/// Every scenario in turn on one 3-master Cluster (keys of each scenario spread over the
/// slots of all three masters).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_of_three_masters_passes_every_scenario() {
    let backend = cluster().await;
    run_every_scenario!(&backend);
}

/// The longest the SIGKILL test may take in all.
const KILL_TEST_LIMIT: Duration = Duration::from_secs(180);
/// The longest one wait for the workers' progress may take.
const PROGRESS_LIMIT: Duration = Duration::from_secs(60);
/// The most loads one worker makes (32 workers; the test needs about 25,000 in all).
const MAX_OPS_PER_WORKER: u64 = 20_000;
/// How soon after the restart L2 hits must resume: the breaker's 500 ms open period plus the
/// connection manager's reconnect, with room for a loaded 2-core machine (a breaker that
/// never closes again, or a tier that never reconnects, still fails it).
const RESUME_LIMIT: Duration = Duration::from_secs(10);

/// Waits until `ops` has grown by `n`, at most [`PROGRESS_LIMIT`] (polling every 5 ms, so at
/// most `PROGRESS_LIMIT / 5 ms` + 1 times).
async fn wait_ops(ops: &AtomicU64, n: u64, phase: &str) {
    let target = ops.load(Ordering::SeqCst) + n;
    let started = Instant::now();
    let polls = PROGRESS_LIMIT.as_millis() / 5 + 1;
    for _ in 0..polls {
        if ops.load(Ordering::SeqCst) >= target {
            return;
        }
        if started.elapsed() > PROGRESS_LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let done = ops.load(Ordering::SeqCst) + n - target;
    assert!(
        ops.load(Ordering::SeqCst) >= target,
        "{phase}: the workers made {done} of {n} loads within {PROGRESS_LIMIT:?} (stalled?)"
    );
}

/// 32 tasks call `get_or_load` in a loop; the server is killed with SIGKILL, then restarted on
/// the same port. No caller sees an error; while the server is dead the breaker keeps calls
/// to it few; after the restart L2 hits resume within [`RESUME_LIMIT`], on the same cache. Every loop is
/// bounded in count and time, and the whole test by [`KILL_TEST_LIMIT`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_never_fails_a_load() {
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("RedisServer::start panicked");
    let stop = Arc::new(AtomicBool::new(false));
    let _watchdog = scenarios::Watchdog::arm(
        "a_killed_redis_never_fails_a_load",
        KILL_TEST_LIMIT + scenarios::WATCHDOG_GRACE,
    );
    let test = killed_redis_scenario(&server, &stop);
    let outcome = tokio::time::timeout(KILL_TEST_LIMIT, test).await;
    // Whatever happened, the workers stop (they also stop by their own count).
    stop.store(true, Ordering::SeqCst);
    assert!(
        outcome.is_ok(),
        "a_killed_redis_never_fails_a_load did not finish within {KILL_TEST_LIMIT:?}: a hang"
    );
}

async fn killed_redis_scenario(server: &RedisServer, stop: &Arc<AtomicBool>) {
    let redis = Arc::new(RedisTier::connect(&server.url()).await.unwrap());
    // Counts the calls that reach Redis (it never plays a dead L2 here).
    let probe = Arc::new(Probe::new(Arc::clone(&redis) as Arc<dyn Tier>));
    let c: TieredCache<u64, String> = TieredCache::builder("k")
        .l2_shared(Arc::clone(&probe) as Arc<dyn Tier>)
        .default_entry_options(
            EntryOptions::new()
                .ttl(Duration::from_secs(120))
                .l1_ttl(Duration::from_millis(1)),
        )
        .build();
    let (ops, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..32u64)
        .map(|t| {
            let (c, stop, ops, errors) = (c.clone(), stop.clone(), ops.clone(), errors.clone());
            tokio::spawn(async move {
                for i in 0..MAX_OPS_PER_WORKER {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
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
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    wait_ops(&ops, 2_000, "before the kill").await;
    server.kill9();
    let (calls_at_kill, ops_at_kill) = (probe.calls() as u64, ops.load(Ordering::SeqCst));
    wait_ops(&ops, 20_000, "while Redis is dead").await;
    let dead_calls = probe.calls() as u64 - calls_at_kill;
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
    let probe: TieredCache<u64, String> = TieredCache::builder("k")
        .l2_shared(Arc::clone(&redis) as Arc<dyn Tier>)
        .default_entry_options(
            EntryOptions::new()
                .ttl(Duration::from_secs(120))
                .l1_ttl(Duration::from_secs(30)),
        )
        .build();
    let mut resumed = false;
    // Bounded by RESUME_LIMIT, and by count (a try every 20 ms at most).
    for _ in 0..=RESUME_LIMIT.as_millis() / 20 {
        let _ = c.set(9_999, "back".into()).await;
        if probe.get(&9_999).await.unwrap().as_deref() == Some("back") {
            resumed = true;
            break;
        }
        if restarted.elapsed() >= RESUME_LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resumed_after = restarted.elapsed();
    assert!(resumed, "L2 hits did not resume within {RESUME_LIMIT:?}");
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
