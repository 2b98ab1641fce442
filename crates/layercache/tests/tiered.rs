//! `TieredCache` over an in-process map tier (the logic: promotion, envelopes, negative
//! caching, coalescing, the breaker). The same scenarios against a real Redis are in
//! `redis.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use layercache::{envelope, BreakerConfig, EntryOptions, Tier, TierError, TierFuture, TieredCache};

/// Stored bytes and the TTL they were written with.
type Stored = (Vec<u8>, Option<Duration>);

/// An in-process tier that can be switched off, counts calls and lets tests plant bytes.
#[derive(Default)]
struct MapTier {
    map: Mutex<HashMap<Vec<u8>, Stored>>,
    down: AtomicBool,
    calls: AtomicUsize,
}

impl MapTier {
    fn check(&self) -> Result<(), TierError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(TierError::backend("map", std::io::Error::other("down")))
        } else {
            Ok(())
        }
    }
    fn plant(&self, key: &[u8], bytes: &[u8]) {
        self.map
            .lock()
            .unwrap()
            .insert(key.to_vec(), (bytes.to_vec(), None));
    }
    fn raw(&self, key: &[u8]) -> Option<Stored> {
        self.map.lock().unwrap().get(key).cloned()
    }
}

impl Tier for MapTier {
    fn name(&self) -> &'static str {
        "map"
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.map.lock().unwrap().get(key).map(|v| v.0.clone()))
        })
    }
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.map
                .lock()
                .unwrap()
                .insert(key.to_vec(), (value.to_vec(), ttl));
            Ok(())
        })
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.map.lock().unwrap().remove(key);
            Ok(())
        })
    }
}

/// A handle sharing one `MapTier` with a cache.
#[derive(Clone, Default)]
struct Shared(Arc<MapTier>);

impl Tier for Shared {
    fn name(&self) -> &'static str {
        "map"
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        self.0.get(key)
    }
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        self.0.set(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
        self.0.delete(key)
    }
}

fn cache(tier: &Shared) -> TieredCache<u64, String> {
    TieredCache::builder("p")
        .l2(tier.clone())
        .default_entry_options(EntryOptions::new().ttl(Duration::from_secs(60)))
        .build()
}

#[tokio::test]
async fn set_get_remove_through_both_tiers_and_promotion() {
    let tier = Shared::default();
    let a = cache(&tier);
    a.set(1, "one".into()).await.unwrap();
    let (bytes, ttl) = tier.0.raw(b"p:1").expect("written to L2 under name:key");
    assert_eq!(ttl, Some(Duration::from_secs(60)));
    assert!(envelope::decode(b"p:1", &bytes, 1 << 20).is_ok());
    // Another instance (its own L1) finds it in L2 and promotes it.
    let b = cache(&tier);
    assert_eq!(b.l1_entry_count(), 0);
    assert_eq!(b.get(&1).await.unwrap().as_deref(), Some("one"));
    assert_eq!(b.l1_entry_count(), 1, "promoted into L1");
    let calls = tier.0.calls.load(Ordering::SeqCst);
    assert_eq!(b.get(&1).await.unwrap().as_deref(), Some("one"));
    assert_eq!(
        tier.0.calls.load(Ordering::SeqCst),
        calls,
        "the second read is an L1 hit"
    );
    b.remove(&1).await.unwrap();
    assert!(tier.0.raw(b"p:1").is_none());
    assert_eq!(b.get(&1).await.unwrap(), None);
}

#[tokio::test]
async fn planted_bytes_are_misses_and_are_deleted() {
    let tier = Shared::default();
    let c = cache(&tier);
    let other = envelope::encode(b"p:2", Some(&[3, b'a', b'b', b'c']), 0, None, 1024);
    let good = envelope::encode(b"p:1", Some(&[3, b'a', b'b', b'c']), 0, None, 1024);
    let cases: Vec<Vec<u8>> = vec![
        b"random bytes that are not an envelope at all".to_vec(),
        other,                           // another key's envelope
        good[..good.len() - 2].to_vec(), // truncated
        vec![],
    ];
    for planted in cases {
        tier.0.plant(b"p:1", &planted);
        assert_eq!(c.get(&1).await.unwrap(), None);
        assert!(
            tier.0.raw(b"p:1").is_none() || planted.is_empty(),
            "corrupt entry deleted"
        );
        let v = c
            .get_or_load(1, || async { Ok::<_, std::io::Error>("fresh".to_string()) })
            .await
            .unwrap();
        assert_eq!(v, "fresh");
        c.remove(&1).await.unwrap();
    }
}

#[tokio::test]
async fn a_thousand_concurrent_loads_of_one_key_run_the_loader_once() {
    let tier = Shared::default();
    let c = cache(&tier);
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (c, calls) = (c.clone(), calls.clone());
            tokio::spawn(async move {
                c.get_or_load(9, || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, std::io::Error>("nine".to_string())
                })
                .await
                .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "nine");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batch_loads_load_each_key_once() {
    let tier = Shared::default();
    let c = cache(&tier);
    let loaded = Arc::new(Mutex::new(Vec::<u64>::new()));
    let batches = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000u64)
        .map(|i| {
            let (c, loaded, batches) = (c.clone(), loaded.clone(), batches.clone());
            tokio::spawn(async move {
                // Each call asks for 10 of the 100 keys.
                let keys: Vec<u64> = (0..10).map(|j| (i * 7 + j * 13) % 100).collect();
                let got = c
                    .get_many_or_load(keys.clone(), |missing: Vec<u64>| {
                        let (loaded, batches) = (loaded.clone(), batches.clone());
                        async move {
                            batches.fetch_add(1, Ordering::SeqCst);
                            loaded.lock().unwrap().extend(&missing);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            Ok::<_, std::io::Error>(
                                missing.iter().map(|&k| (k, format!("v{k}"))).collect(),
                            )
                        }
                    })
                    .await
                    .unwrap();
                for k in keys {
                    assert_eq!(got[&k], format!("v{k}"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut loaded = loaded.lock().unwrap().clone();
    let n = loaded.len();
    loaded.sort_unstable();
    loaded.dedup();
    assert_eq!(n, 100, "every key loaded exactly once");
    assert_eq!(loaded.len(), 100);
    assert!(batches.load(Ordering::SeqCst) <= 100);
    // All 100 are now one L2 get_many away for a fresh instance.
    let fresh = cache(&tier);
    let got = fresh
        .get_many_or_load((0..100).collect(), |_: Vec<u64>| async {
            Err::<HashMap<u64, String>, _>(std::io::Error::other("not called"))
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 100);
}

#[tokio::test]
async fn absences_are_cached_for_the_negative_ttl() {
    let tier = Shared::default();
    let c: TieredCache<u64, String> = TieredCache::builder("n")
        .l2(tier.clone())
        .default_entry_options(EntryOptions::new().negative_ttl(Duration::from_secs(30)))
        .build();
    let calls = AtomicUsize::new(0);
    for _ in 0..3 {
        let got = c
            .get_or_load_optional(5, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(None)
            })
            .await
            .unwrap();
        assert_eq!(got, None);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let (_, ttl) = tier.0.raw(b"n:5").expect("the absence is in L2 too");
    assert_eq!(ttl, Some(Duration::from_secs(30)));
    // get_or_load needs a value: it loads one over the cached absence.
    let v = c
        .get_or_load(5, || async {
            Ok::<_, std::io::Error>("now here".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "now here");
}

#[tokio::test]
async fn a_dead_l2_never_fails_a_load_and_the_breaker_caps_calls() {
    let tier = Shared::default();
    let c: TieredCache<u64, String> = TieredCache::builder("d")
        .l2(tier.clone())
        .breaker(BreakerConfig {
            open_for: Duration::from_secs(3600),
            ..BreakerConfig::default()
        })
        .build();
    tier.0.down.store(true, Ordering::SeqCst);
    for k in 0..200u64 {
        let v = c
            .get_or_load(
                k,
                || async move { Ok::<_, std::io::Error>(format!("v{k}")) },
            )
            .await
            .unwrap();
        assert_eq!(v, format!("v{k}"));
    }
    assert!(c.l2_breaker_open());
    assert!(
        tier.0.calls.load(Ordering::SeqCst) <= 5,
        "{} calls",
        tier.0.calls.load(Ordering::SeqCst)
    );
    // Writes are skipped with an error the caller can see, and L1 still has the value.
    assert!(c.set(1000, "x".into()).await.is_err());
    assert_eq!(c.get(&1000).await.unwrap().as_deref(), Some("x"));
}

#[tokio::test]
async fn loader_errors_are_shared_and_not_cached() {
    let c: TieredCache<u64, String> = TieredCache::builder("e").build();
    let e = c
        .get_or_load(1, || async {
            Err::<String, _>(std::io::Error::other("origin down"))
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("origin down"), "{e}");
    let v = c
        .get_or_load(1, || async { Ok::<_, std::io::Error>("up".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "up");
}

#[tokio::test]
async fn oversized_values_stay_in_l1() {
    let tier = Shared::default();
    let c: TieredCache<u64, Vec<u8>> = TieredCache::builder("big")
        .l2(tier.clone())
        .max_payload(1000)
        .build();
    c.set(1, vec![7; 5000]).await.unwrap();
    assert!(tier.0.raw(b"big:1").is_none());
    assert_eq!(c.get(&1).await.unwrap().map(|v| v.len()), Some(5000));
    // Compressible values under the cap are compressed in L2.
    let c2: TieredCache<u64, Vec<u8>> = TieredCache::builder("z").l2(tier.clone()).build();
    c2.set(1, vec![0; 100_000]).await.unwrap();
    assert!(tier.0.raw(b"z:1").unwrap().0.len() < 2_000);
}
