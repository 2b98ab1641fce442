//! The backplane's metrics, read back from a `metrics-util` `DebuggingRecorder`, over a
//! test-owned redis-server: published, applied and skipped messages, the invalidation lag,
//! a gap and the L1 clear it causes, the outbox (queue depth and retries) while Redis is
//! down, and the time L1 is bypassed while the server is frozen.
//!
//! The caches are built under the recorder (`metrics::with_local_recorder`), so every
//! handle they make at build time, the backplane's among them, records there from any
//! thread; each reading is compared with what the step must have caused.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use layercache::redis::{RedisBackplane, RedisTier};
use layercache::TieredCache;
use layercache_redis::testing::RedisServer;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// Counters and histogram sample counts (cumulative) of one recorder, and its gauges as the
/// last snapshot read them (a snapshot drains gauges to 0 too: read one right after the step
/// that sets it), by name.
#[derive(Clone, Debug, Default)]
struct Reading {
    counters: BTreeMap<String, u64>,
    gauges: BTreeMap<String, f64>,
    samples: BTreeMap<String, usize>,
}

/// A recorder's readings summed since the start (a snapshot drains counters and
/// histograms).
struct Tally {
    snap: Snapshotter,
    total: Mutex<Reading>,
}

impl Tally {
    fn new(recorder: &DebuggingRecorder) -> Self {
        Tally {
            snap: recorder.snapshotter(),
            total: Mutex::default(),
        }
    }

    fn read(&self) -> Reading {
        let mut r = self.total.lock().unwrap();
        for (key, _, _, value) in self.snap.snapshot().into_vec() {
            let (_, key) = key.into_parts();
            let name = key.name().to_string();
            match value {
                DebugValue::Counter(n) => *r.counters.entry(name).or_default() += n,
                DebugValue::Gauge(g) => {
                    r.gauges.insert(name, g.into_inner());
                }
                DebugValue::Histogram(h) => *r.samples.entry(name).or_default() += h.len(),
            }
        }
        r.clone()
    }
}

/// Polls `done` every 2 ms until it holds or `limit` passes; whether it held.
async fn within(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn instance(server: &RedisServer, recorder: &DebuggingRecorder) -> TieredCache<u64, String> {
    let tier = RedisTier::connect(&server.url()).await.expect("tier");
    let bus = RedisBackplane::connect(&server.url())
        .await
        .expect("backplane");
    let cache = metrics::with_local_recorder(recorder, || {
        TieredCache::builder("c")
            .l2(tier)
            .backplane(bus)
            .max_staleness(Duration::from_millis(300))
            .build()
    });
    assert!(
        within(Duration::from_secs(10), async || cache.l1_trusted()).await,
        "subscriber did not catch up"
    );
    cache
}

const PUBLISHED: &str = "layercache_backplane_published_total";
const APPLIED: &str = "layercache_backplane_applied_total";
const OWN: &str = "layercache_backplane_skipped_own_total";
const GAPS: &str = "layercache_backplane_gaps_total";
const CLEARS: &str = "layercache_backplane_l1_clears_total";
const RETRIES: &str = "layercache_backplane_publish_retries_total";
const DEPTH: &str = "layercache_backplane_queue_depth";
const BYPASSED: &str = "layercache_backplane_l1_bypassed";
const STALE: &str = "layercache_backplane_stale_milliseconds_total";
const LAG: &str = "layercache_backplane_lag_seconds";

fn count(r: &Reading, name: &str) -> u64 {
    r.counters.get(name).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backplane_metrics_follow_messages_gaps_the_outbox_and_the_staleness_bound() {
    let server = RedisServer::start();
    // One recorder per instance, so each reading is one instance's.
    let (ra, rb) = (DebuggingRecorder::new(), DebuggingRecorder::new());
    let (sa, sb) = (Tally::new(&ra), Tally::new(&rb));
    let a = instance(&server, &ra).await;
    let b = instance(&server, &rb).await;
    // Each instance's hello: published, an L1 clear at start; not applied by the other.
    let (a0, b0) = (sa.read(), sb.read());
    assert_eq!((count(&a0, PUBLISHED), count(&a0, CLEARS)), (1, 1));
    assert_eq!((count(&b0, PUBLISHED), count(&b0, CLEARS)), (1, 1));
    assert_eq!(b0.gauges.get(BYPASSED), Some(&0.0));

    // Three writes on A: published by A, applied by B (with a lag sample each).
    a.set(1, "x".into()).await.unwrap();
    a.remove(&1).await.unwrap();
    a.invalidate_tag("t").await.unwrap();
    assert!(
        within(Duration::from_secs(5), async || count(&sb.read(), APPLIED)
            == 3)
        .await,
        "B applied {} of A's 3 messages",
        count(&sb.read(), APPLIED)
    );
    let (a1, b1) = (sa.read(), sb.read());
    assert_eq!(count(&a1, PUBLISHED), 4, "the hello and 3 writes: {a1:?}");
    assert_eq!(count(&a1, APPLIED), 0, "A applies nothing of its own");
    assert_eq!(
        b1.samples.get(LAG),
        Some(&3),
        "one lag sample per applied message"
    );
    // A's own messages come back to A and are skipped (once read).
    assert!(within(Duration::from_secs(5), async || count(&sa.read(), OWN) == 3).await);

    // The stream trimmed to nothing under B's cursor: a gap, and B clears its L1.
    server
        .command(&["XTRIM", &layercache_redis::stream_key("c"), "MAXLEN", "0"])
        .expect("XTRIM");
    assert!(
        within(Duration::from_secs(5), async || count(&sb.read(), GAPS)
            == 1)
        .await,
        "B saw no gap"
    );
    assert!(
        within(Duration::from_secs(5), async || count(&sb.read(), CLEARS)
            == 2)
        .await
    );

    // Redis down: A's write is queued (depth 1), sent when Redis is back (a retry, and one
    // more published message than A's own hello after the restart).
    let published_before = count(&sa.read(), PUBLISHED);
    server.kill9();
    a.remove(&2).await.unwrap_err();
    // A gauge reads 0 once read (the recorder drains it), so it is read once, right after
    // the step that must have set it.
    assert_eq!(sa.read().gauges.get(DEPTH), Some(&1.0));
    server.restart();
    assert!(
        within(Duration::from_secs(10), async || {
            let r = sa.read();
            count(&r, RETRIES) >= 1 && count(&r, PUBLISHED) >= published_before + 2
        })
        .await,
        "A's queued message was not sent after the restart: {:?}",
        sa.read()
    );

    // Redis frozen past max_staleness: L1 bypassed (the gauge at 1), then served again
    // after the thaw, with the time bypassed counted.
    assert!(within(Duration::from_secs(10), async || b.l1_trusted()).await);
    let stale_before = count(&sb.read(), STALE);
    let frozen_at = Instant::now();
    server.freeze();
    let bypassed = within(Duration::from_secs(5), async || !b.l1_trusted()).await;
    let gauge = sb.read().gauges.get(BYPASSED).copied();
    server.thaw();
    assert!(bypassed, "L1 still served with the server frozen");
    assert_eq!(gauge, Some(1.0));
    assert!(
        within(Duration::from_secs(10), async || b.l1_trusted()).await,
        "L1 not served again after the thaw"
    );
    let fault_ms = frozen_at.elapsed().as_millis() as u64;
    let stale = count(&sb.read(), STALE) - stale_before;
    assert!(
        stale > 0 && stale <= fault_ms,
        "L1 bypassed for {stale} ms, counted; the fault lasted at most {fault_ms} ms"
    );
}
