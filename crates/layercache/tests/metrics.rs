//! Every metric `TieredCache` documents, read back with its labels from a `metrics-util`
//! `DebuggingRecorder`, over the real disk tier (behind an in-process wrapper that can make
//! its calls fail or hang).
//!
//! Each test has its own recorder, set as the thread's default on a current-thread runtime, so
//! the cache's code (which runs on that thread) records there and tests do not share counts.
//! Each reading drains what was recorded since the last, and is compared whole: a metric
//! recorded twice, with other labels, or on a path that should not record it, fails too.
//! Time is tokio's paused clock (the breaker and load durations read it); nothing sleeps.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use layercache::disk::{DiskOptions, DiskTier};
use layercache::{
    envelope, BreakerConfig, Codec, EntryOptions, Error, Postcard, Tier, TierError, TierFuture,
    TieredCache,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// Runs `test` on a paused current-thread runtime with a fresh recorder as the thread's
/// default; `test` gets the recorder's snapshotter.
fn recorded<F, Fut>(test: F)
where
    F: FnOnce(Snapshotter) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || runtime.block_on(test(snapshotter)));
}

/// What was recorded since the last reading: non-zero counters and every histogram sample,
/// keyed `name{label=value,...}` (labels sorted), and gauges at their value.
#[derive(Debug, Default)]
struct Reading {
    counters: BTreeMap<String, u64>,
    gauges: BTreeMap<String, f64>,
    histograms: BTreeMap<String, Vec<f64>>,
}

fn read(snapshotter: &Snapshotter) -> Reading {
    let mut reading = Reading::default();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (_, key) = key.into_parts();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match value {
            DebugValue::Counter(0) => {}
            DebugValue::Counter(n) => {
                reading.counters.insert(name, n);
            }
            DebugValue::Gauge(g) => {
                reading.gauges.insert(name, g.into_inner());
            }
            DebugValue::Histogram(h) if h.is_empty() => {}
            DebugValue::Histogram(h) => {
                reading
                    .histograms
                    .insert(name, h.into_iter().map(|x| x.into_inner()).collect());
            }
        }
    }
    reading
}

/// The expected counters, from `(name{labels}, count)` pairs.
fn counters(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|&(k, n)| (k.to_string(), n)).collect()
}

/// The cache's name, in every metric's `cache` label.
const NAME: &str = "m";

/// A wrapper around a real tier that can fail its calls (`fail`) or never finish them
/// (`hang`), and counts the calls that reach the real tier.
#[derive(Clone)]
struct Faulty {
    inner: Arc<DiskTier>,
    fail: Arc<AtomicBool>,
    hang: Arc<AtomicBool>,
    reached: Arc<AtomicUsize>,
}

impl Faulty {
    /// Waits forever, errs, or lets `call` reach the real tier.
    fn run<'a, T: Send + 'a>(&'a self, call: TierFuture<'a, T>) -> TierFuture<'a, T> {
        Box::pin(async move {
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(TierError::backend(
                    "disk",
                    std::io::Error::other("injected"),
                ));
            }
            self.reached.fetch_add(1, Ordering::SeqCst);
            call.await
        })
    }
}

impl Tier for Faulty {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        self.run(self.inner.get(key))
    }
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        self.run(self.inner.set(key, value, ttl))
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
        self.run(self.inner.delete(key))
    }
    fn get_many<'a>(&'a self, keys: &'a [&'a [u8]]) -> TierFuture<'a, Vec<Option<Vec<u8>>>> {
        self.run(self.inner.get_many(keys))
    }
    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a [u8], &'a [u8])],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        self.run(self.inner.set_many(entries, ttl))
    }
}

/// A disk tier in a fresh temporary directory, wrapped.
fn faulty() -> (Faulty, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tier = DiskTier::open(dir.path(), DiskOptions::new(16 << 20)).expect("open disk tier");
    let faulty = Faulty {
        inner: Arc::new(tier),
        fail: Arc::default(),
        hang: Arc::default(),
        reached: Arc::default(),
    };
    (faulty, dir)
}

fn builder(tier: &Faulty) -> layercache::TieredCacheBuilder<u64, String> {
    TieredCache::builder(NAME)
        .l2(tier.clone())
        .default_entry_options(
            EntryOptions::new()
                .ttl(Duration::from_secs(600))
                .negative_ttl(Duration::from_secs(60)),
        )
}

fn l2_key(key: u64) -> Vec<u8> {
    format!("{NAME}:{key}").into_bytes()
}

/// A loader that takes `secs` seconds of tokio time and returns `value`.
async fn slow_ok(secs: u64, value: &str) -> Result<String, std::io::Error> {
    tokio::time::sleep(Duration::from_secs(secs)).await;
    Ok(value.to_string())
}

#[test]
fn reads_count_hits_misses_loads_and_load_time() {
    recorded(|snap| async move {
        let (tier, _dir) = faulty();
        let cache = builder(&tier).build();
        let r = read(&snap);
        assert_eq!(
            r.gauges,
            BTreeMap::from([("layercache_l2_breaker_open{cache=m,tier=disk}".into(), 0.0)])
        );
        assert_eq!(r.counters, counters(&[]));

        // A miss in both tiers.
        assert_eq!(cache.get(&1).await.unwrap(), None);
        assert_eq!(
            read(&snap).counters,
            counters(&[("layercache_misses_total{cache=m,tier=all}", 1)])
        );

        // A load that takes 3 s: counted, timed, written to both tiers.
        assert_eq!(
            cache.get_or_load(1, || slow_ok(3, "one")).await.unwrap(),
            "one"
        );
        let r = read(&snap);
        assert_eq!(
            r.counters,
            counters(&[
                ("layercache_misses_total{cache=m,tier=all}", 1),
                ("layercache_loads_total{cache=m,outcome=ok}", 1),
            ])
        );
        let times = &r.histograms["layercache_load_seconds{cache=m}"];
        assert_eq!(times.len(), 1);
        // Paused time advances exactly by the sleep; the disk write runs after the timer stops.
        assert!((3.0..3.001).contains(&times[0]), "load took {times:?} s");

        // An L1 hit, through `get` and through `get_or_load`.
        assert_eq!(cache.get(&1).await.unwrap().as_deref(), Some("one"));
        let none = || async { Err::<String, _>(std::io::Error::other("loader ran on a hit")) };
        assert_eq!(cache.get_or_load(1, none).await.unwrap(), "one");
        assert_eq!(
            read(&snap).counters,
            counters(&[("layercache_hits_total{cache=m,tier=l1}", 2)])
        );

        // L2 hits: a second instance (empty L1) over the same tier, through both paths.
        let other = builder(&tier).build();
        assert_eq!(other.get(&1).await.unwrap().as_deref(), Some("one"));
        other.set(2, "two".into()).await.unwrap();
        let fresh = builder(&tier).build();
        assert_eq!(fresh.get_or_load(2, none).await.unwrap(), "two");
        let r = read(&snap);
        assert_eq!(
            r.counters,
            counters(&[("layercache_hits_total{cache=m,tier=l2}", 2)])
        );
        assert!(r.histograms.is_empty(), "no loader ran: {:?}", r.histograms);

        // A loader that finds nothing (cached for the negative TTL), and one that fails.
        let absent = || async { Ok::<Option<String>, std::io::Error>(None) };
        assert_eq!(cache.get_or_load_optional(3, absent).await.unwrap(), None);
        let failing = || async { Err::<String, _>(std::io::Error::other("db down")) };
        assert!(matches!(
            cache.get_or_load(4, failing).await,
            Err(Error::Loader(_))
        ));
        let r = read(&snap);
        assert_eq!(
            r.counters,
            counters(&[
                ("layercache_misses_total{cache=m,tier=all}", 2),
                ("layercache_loads_total{cache=m,outcome=absent}", 1),
                ("layercache_loads_total{cache=m,outcome=error}", 1),
            ])
        );
        assert_eq!(r.histograms["layercache_load_seconds{cache=m}"].len(), 2);
        // The cached absence is an L1 hit.
        assert_eq!(cache.get(&3).await.unwrap(), None);
        assert_eq!(
            read(&snap).counters,
            counters(&[("layercache_hits_total{cache=m,tier=l1}", 1)])
        );

        // A batch: key 1 in L1, key 2 in L2 only (for this instance), 5 and 6 from one call
        // of the batch loader, which leaves 6 out.
        let got = cache
            .get_many_or_load(vec![1, 2, 5, 6], |keys: Vec<u64>| async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                assert_eq!(keys.len(), 2, "asked for {keys:?}");
                Ok::<_, std::io::Error>(HashMap::from([(5, "five".to_string())]))
            })
            .await
            .unwrap();
        assert_eq!(got.len(), 3);
        let r = read(&snap);
        assert_eq!(
            r.counters,
            counters(&[
                ("layercache_hits_total{cache=m,tier=l1}", 1),
                ("layercache_hits_total{cache=m,tier=l2}", 1),
                ("layercache_misses_total{cache=m,tier=all}", 2),
                ("layercache_loads_total{cache=m,outcome=ok}", 1),
            ])
        );
        let times = &r.histograms["layercache_load_seconds{cache=m}"];
        assert!(
            times.len() == 1 && (2.0..2.001).contains(&times[0]),
            "{times:?}"
        );

        // Ten concurrent loads of one key: one miss and load, nine shared (L1 hits).
        let loads = (0..10).map(|_| cache.get_or_load(7, || slow_ok(1, "seven")));
        let values = futures_util::future::join_all(loads).await;
        assert!(values.iter().all(|v| v.as_deref().ok() == Some("seven")));
        assert_eq!(
            read(&snap).counters,
            counters(&[
                ("layercache_misses_total{cache=m,tier=all}", 1),
                ("layercache_loads_total{cache=m,outcome=ok}", 1),
                ("layercache_hits_total{cache=m,tier=l1}", 9),
            ])
        );
        assert!(read(&snap).gauges.values().all(|&g| g == 0.0));
    });
}

#[test]
fn l2_faults_count_errors_skipped_writes_and_the_breaker() {
    recorded(|snap| async move {
        let (tier, _dir) = faulty();
        let cache = builder(&tier)
            .breaker(BreakerConfig {
                call_timeout: Duration::from_secs(1),
                failure_threshold: 2,
                open_for: Duration::from_secs(30),
            })
            .build();
        read(&snap);

        // A failing write: an error for the caller, an L2 error and a skipped write.
        tier.fail.store(true, Ordering::SeqCst);
        assert!(matches!(
            cache.set(1, "one".into()).await,
            Err(Error::Tier(TierError::Backend { .. }))
        ));
        assert_eq!(
            read(&snap).counters,
            counters(&[
                (
                    "layercache_l2_errors_total{cache=m,kind=backend,op=set,tier=disk}",
                    1
                ),
                (
                    "layercache_l2_writes_skipped_total{cache=m,reason=l2_error}",
                    1
                ),
            ])
        );

        // A failing read is a miss; it is the second failure in a row, so the breaker opens.
        assert_eq!(cache.get(&2).await.unwrap(), None);
        let r = read(&snap);
        assert_eq!(
            r.counters,
            counters(&[
                (
                    "layercache_l2_errors_total{cache=m,kind=backend,op=get,tier=disk}",
                    1
                ),
                ("layercache_misses_total{cache=m,tier=all}", 1),
            ])
        );
        assert_eq!(
            r.gauges,
            BTreeMap::from([("layercache_l2_breaker_open{cache=m,tier=disk}".into(), 1.0)])
        );
        assert!(cache.l2_breaker_open());

        // While open, calls are refused without reaching the tier, even once it is healthy.
        tier.fail.store(false, Ordering::SeqCst);
        let reached = tier.reached.load(Ordering::SeqCst);
        assert_eq!(
            cache.get_or_load(3, || slow_ok(0, "three")).await.unwrap(),
            "three"
        );
        assert!(cache.remove(&3).await.is_err());
        assert_eq!(tier.reached.load(Ordering::SeqCst), reached);
        assert_eq!(
            read(&snap).counters,
            counters(&[
                (
                    "layercache_l2_errors_total{cache=m,kind=circuit_open,op=get,tier=disk}",
                    1
                ),
                (
                    "layercache_l2_errors_total{cache=m,kind=circuit_open,op=set,tier=disk}",
                    1
                ),
                (
                    "layercache_l2_errors_total{cache=m,kind=circuit_open,op=delete,tier=disk}",
                    1
                ),
                (
                    "layercache_l2_writes_skipped_total{cache=m,reason=l2_error}",
                    1
                ),
                ("layercache_misses_total{cache=m,tier=all}", 1),
                ("layercache_loads_total{cache=m,outcome=ok}", 1),
            ])
        );

        // After `open_for`, a probe that succeeds closes it.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(cache.get(&9).await.unwrap(), None);
        let r = read(&snap);
        assert_eq!(
            r.counters,
            counters(&[("layercache_misses_total{cache=m,tier=all}", 1)])
        );
        assert_eq!(
            r.gauges,
            BTreeMap::from([("layercache_l2_breaker_open{cache=m,tier=disk}".into(), 0.0)])
        );

        // A call that never finishes times out (tokio's paused clock jumps to the deadline).
        tier.hang.store(true, Ordering::SeqCst);
        assert_eq!(cache.get(&10).await.unwrap(), None);
        tier.hang.store(false, Ordering::SeqCst);
        assert_eq!(
            read(&snap).counters,
            counters(&[
                (
                    "layercache_l2_errors_total{cache=m,kind=timeout,op=get,tier=disk}",
                    1
                ),
                ("layercache_misses_total{cache=m,tier=all}", 1),
            ])
        );

        // Batch calls: a failing get_many is a miss for each key; it is the second failure in
        // a row, so the breaker opens again and refuses the set_many (a skipped write).
        tier.fail.store(true, Ordering::SeqCst);
        let got = cache
            .get_many_or_load(vec![11, 12], |keys: Vec<u64>| async move {
                Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k, k.to_string())).collect())
            })
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            read(&snap).counters,
            counters(&[
                (
                    "layercache_l2_errors_total{cache=m,kind=backend,op=get_many,tier=disk}",
                    1
                ),
                (
                    "layercache_l2_errors_total{cache=m,kind=circuit_open,op=set_many,tier=disk}",
                    1
                ),
                (
                    "layercache_l2_writes_skipped_total{cache=m,reason=l2_error}",
                    1
                ),
                ("layercache_misses_total{cache=m,tier=all}", 2),
                ("layercache_loads_total{cache=m,outcome=ok}", 1),
            ])
        );
        assert!(cache.l2_breaker_open());
    });
}

/// Writes `bytes` under the L2 key of `key`, bypassing the cache.
async fn plant(tier: &Faulty, key: u64, bytes: &[u8]) {
    tier.inner.set(&l2_key(key), bytes, None).await.unwrap();
}

#[test]
fn oversized_values_and_undecodable_entries_are_counted() {
    recorded(|snap| async move {
        let (tier, _dir) = faulty();
        let cache = builder(&tier).max_payload(64).build();
        read(&snap);

        // Over `max_payload` once encoded: L1 only.
        let big = "x".repeat(100);
        cache.set(1, big.clone()).await.unwrap();
        assert_eq!(tier.inner.get(&l2_key(1)).await.unwrap(), None);
        assert_eq!(cache.get(&1).await.unwrap(), Some(big));
        assert_eq!(
            read(&snap).counters,
            counters(&[
                (
                    "layercache_l2_writes_skipped_total{cache=m,reason=oversized}",
                    1
                ),
                ("layercache_hits_total{cache=m,tier=l1}", 1),
            ])
        );

        // Entries that do not decode, each a miss that is deleted and counted by reason.
        let value = Codec::<String>::encode(&Postcard, &"v".to_string()).unwrap();
        let valid = |key: u64| envelope::encode(&l2_key(key), Some(&value), 1, None, 1024);
        let mut flipped = valid(12);
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let mut newer = valid(13);
        newer[2] = envelope::VERSION + 1;
        // A sound envelope around bytes that are no postcard `String` (length 5, no bytes).
        let not_a_string = envelope::encode(&l2_key(15), Some(&[5]), 1, None, 1024);
        let planted: [(u64, Vec<u8>, &str); 6] = [
            (
                10,
                b"{\"a json document\": \"not an envelope\"}".to_vec(),
                "magic",
            ),
            (11, valid(11)[..20].to_vec(), "length"),
            (12, flipped, "checksum"),
            (13, newer, "version"),
            (14, valid(99), "key_mismatch"),
            (15, not_a_string, "codec"),
        ];
        let mut expected = vec![("layercache_misses_total{cache=m,tier=all}".to_string(), 6)];
        for (key, bytes, reason) in &planted {
            plant(&tier, *key, bytes).await;
            assert_eq!(cache.get(key).await.unwrap(), None, "{reason}");
            assert_eq!(
                tier.inner.get(&l2_key(*key)).await.unwrap(),
                None,
                "{reason} kept"
            );
            expected.push((
                format!("layercache_decode_failures_total{{cache=m,reason={reason}}}"),
                1,
            ));
        }
        assert_eq!(read(&snap).counters, expected.into_iter().collect());
    });
}
