//! Time in `TieredCache`, over the real disk tier: expired L2 envelopes are misses, promotion
//! into L1 keeps the remaining lifetime, and the injected clock stamps envelopes and times L1.
//! Time moves only through a `ManualTieredClock` (or lies in 1970); nothing sleeps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use layercache::disk::{DiskOptions, DiskTier};
use layercache::{
    envelope, Codec, EntryOptions, ManualTieredClock, Postcard, Tier, TieredCache, TieredClock,
};

/// The cache's name, the prefix of its L2 keys.
const NAME: &str = "clock";
/// `compress_above` for planted envelopes (the cache's default).
const COMPRESS_ABOVE: usize = 1024;
/// The payload cap the cache decodes with (its default).
const MAX_PAYLOAD: usize = 1 << 20;

/// A disk tier in a fresh temporary directory; with `clock`, its own expiry reads it too.
fn disk(clock: Option<&ManualTieredClock>) -> (Arc<DiskTier>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = DiskOptions::new(16 << 20);
    if let Some(clock) = clock {
        let clock = clock.clone();
        options = options.clock(move || clock.epoch_ms());
    }
    let tier = DiskTier::open(dir.path(), options).expect("open disk tier");
    (Arc::new(tier), dir)
}

fn l2_key(key: u64) -> Vec<u8> {
    format!("{NAME}:{key}").into_bytes()
}

/// Writes, straight into the tier (no tier TTL), the envelope another instance would have
/// written for `value` at `created_ms`, expiring at `expires_ms` (Unix milliseconds).
async fn plant(tier: &DiskTier, key: u64, value: &str, created_ms: u64, expires_ms: Option<u64>) {
    let payload = Codec::<String>::encode(&Postcard, &value.to_string()).expect("encode");
    let k2 = l2_key(key);
    let bytes = envelope::encode(&k2, Some(&payload), created_ms, expires_ms, COMPRESS_ABOVE);
    tier.set(&k2, &bytes, None).await.expect("plant");
}

/// A loader that counts its runs and returns `"loaded"`.
fn counting(
    runs: &AtomicUsize,
) -> impl FnOnce() -> std::future::Ready<Result<String, std::io::Error>> + '_ {
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok("loaded".to_string()))
    }
}

#[tokio::test]
async fn an_envelope_that_expired_in_1970_is_a_miss_on_every_read_path() {
    // Real clocks everywhere: 1970 is long past.
    let (tier, _dir) = disk(None);
    let cache: TieredCache<u64, String> =
        TieredCache::builder(NAME).l2_shared(tier.clone()).build();
    // Control: the same planting without expiry is found, so the planted key is the one the
    // cache reads.
    plant(&tier, 10, "planted", 1_000, None).await;
    assert_eq!(cache.get(&10).await.unwrap().as_deref(), Some("planted"));

    for key in [1, 2, 3] {
        plant(&tier, key, "stale", 1_000, Some(2_000)).await;
    }
    assert_eq!(
        cache.get(&1).await.unwrap(),
        None,
        "get served an expired envelope"
    );

    let runs = AtomicUsize::new(0);
    let got = cache.get_or_load(2, counting(&runs)).await.unwrap();
    assert_eq!((got.as_str(), runs.load(Ordering::SeqCst)), ("loaded", 1));

    let asked = std::sync::Mutex::new(Vec::new());
    let got = cache
        .get_many_or_load(vec![3], |keys: Vec<u64>| {
            asked.lock().unwrap().extend(keys.iter().copied());
            async move {
                Ok::<_, std::io::Error>(
                    keys.into_iter()
                        .map(|k| (k, "loaded".to_string()))
                        .collect::<HashMap<_, _>>(),
                )
            }
        })
        .await
        .unwrap();
    assert_eq!(got.get(&3).map(String::as_str), Some("loaded"));
    assert_eq!(
        *asked.lock().unwrap(),
        vec![3],
        "the batch loader was not asked for the expired key"
    );

    // The loads replaced the stale envelopes with fresh ones.
    for key in [2, 3] {
        let raw = tier.get(&l2_key(key)).await.unwrap().expect("written back");
        let env = envelope::decode(&l2_key(key), &raw, MAX_PAYLOAD).unwrap();
        let value: String = Codec::<String>::decode(&Postcard, &env.payload.unwrap()).unwrap();
        assert_eq!(value, "loaded");
    }
}

/// Plants keys 1 (read by `get`), 2 (`get_or_load`) and 3 (`get_many_or_load`), each written
/// 50 s ago and expiring in 10 s, reads them through `cache` (promoting them into L1), removes
/// them from L2, and checks that L1 serves them for exactly `lifetime` more (to the
/// millisecond) on `clock`.
async fn check_promotion(
    cache: &TieredCache<u64, String>,
    tier: &DiskTier,
    clock: &ManualTieredClock,
    lifetime: Duration,
) {
    let now = clock.epoch_ms();
    for key in [1, 2, 3] {
        plant(tier, key, "planted", now - 50_000, Some(now + 10_000)).await;
    }
    assert_eq!(cache.get(&1).await.unwrap().as_deref(), Some("planted"));
    let runs = AtomicUsize::new(0);
    assert_eq!(
        cache.get_or_load(2, counting(&runs)).await.unwrap(),
        "planted"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "the loader ran on an L2 hit"
    );
    let got = cache
        .get_many_or_load(vec![3], |_: Vec<u64>| async {
            Err::<HashMap<u64, String>, _>(std::io::Error::other("batch loader ran on an L2 hit"))
        })
        .await
        .unwrap();
    assert_eq!(got.get(&3).map(String::as_str), Some("planted"));
    // From here on only L1 can serve them.
    for key in [1, 2, 3] {
        tier.delete(&l2_key(key)).await.unwrap();
    }
    assert_eq!(cache.l1_entry_count(), 3);

    clock.advance(lifetime - Duration::from_millis(1));
    for key in [1, 2, 3] {
        assert_eq!(
            cache.get(&key).await.unwrap().as_deref(),
            Some("planted"),
            "key {key} left L1 before {lifetime:?}"
        );
    }
    clock.advance(Duration::from_millis(1));
    for key in [1, 2, 3] {
        assert_eq!(
            cache.get(&key).await.unwrap(),
            None,
            "key {key} outlived {lifetime:?} in L1"
        );
    }
}

/// One clock for the cache and the disk tier, fixed at 2001-09-09.
fn manual() -> ManualTieredClock {
    ManualTieredClock::starting_at(1_000_000_000_000)
}

#[tokio::test]
async fn promotion_keeps_the_remaining_lifetime() {
    let clock = manual();
    let (tier, _dir) = disk(Some(&clock));
    let cache: TieredCache<u64, String> = TieredCache::builder(NAME)
        .l2_shared(tier.clone())
        .clock(clock.clone())
        .build();
    // Written 50 s ago for 60 s: 10 s are left, not 60.
    check_promotion(&cache, &tier, &clock, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn promotion_keeps_a_shorter_l1_ttl() {
    let clock = manual();
    let (tier, _dir) = disk(Some(&clock));
    let cache: TieredCache<u64, String> = TieredCache::builder(NAME)
        .l2_shared(tier.clone())
        .clock(clock.clone())
        .default_entry_options(EntryOptions::new().l1_ttl(Duration::from_secs(3)))
        .build();
    check_promotion(&cache, &tier, &clock, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn the_injected_clock_stamps_envelopes_and_times_both_tiers() {
    let clock = manual();
    // The disk tier keeps the real clock: its own TTL (10 s from now, really) cannot pass
    // during the test, so every miss below comes from the envelope's expiry.
    let (tier, _dir) = disk(None);
    let ttl = Duration::from_secs(10);
    let build = || -> TieredCache<u64, String> {
        TieredCache::builder(NAME)
            .l2_shared(tier.clone())
            .clock(clock.clone())
            .default_entry_options(EntryOptions::new().ttl(ttl))
            .build()
    };
    let writer = build();
    let start = clock.epoch_ms();
    writer.set(1, "one".to_string()).await.unwrap();
    let raw = tier.get(&l2_key(1)).await.unwrap().expect("written to L2");
    let env = envelope::decode(&l2_key(1), &raw, MAX_PAYLOAD).unwrap();
    assert_eq!(
        (env.created_ms, env.expires_ms),
        (start, Some(start + 10_000)),
        "the envelope is not stamped with the injected clock"
    );

    clock.advance(ttl - Duration::from_millis(1));
    assert_eq!(writer.get(&1).await.unwrap().as_deref(), Some("one"));
    // A second instance (empty L1) finds it in L2 with 1 ms left.
    let reader = build();
    assert_eq!(reader.get(&1).await.unwrap().as_deref(), Some("one"));

    clock.advance(Duration::from_millis(1));
    assert_eq!(writer.get(&1).await.unwrap(), None, "L1 outlived the TTL");
    assert_eq!(
        reader.get(&1).await.unwrap(),
        None,
        "the promoted copy outlived the envelope"
    );
    let fresh = build();
    assert_eq!(
        fresh.get(&1).await.unwrap(),
        None,
        "an expired envelope was served"
    );
    assert!(
        tier.get(&l2_key(1)).await.unwrap().is_some(),
        "the tier still holds the bytes: the misses are the envelope check's"
    );
}

/// Without a backplane nothing tells an instance that another one invalidated a tag or
/// cleared the cache, so versions read from L2 are trusted for `max_staleness` only, then
/// read again; and an entry's version is the writer's wall clock, so what an instance
/// writes after another's invalidation is live for both.
#[tokio::test]
async fn without_a_backplane_tag_versions_are_read_again_after_max_staleness() {
    let clock = ManualTieredClock::new();
    let (tier, _dir) = disk(Some(&clock));
    let build = || {
        TieredCache::<u64, String>::builder(NAME)
            .l2_shared(Arc::clone(&tier) as Arc<dyn Tier>)
            .clock(clock.clone())
            .max_staleness(Duration::from_secs(5))
            // L1 is per process without a backplane: every read here goes to L2.
            .default_entry_options(
                EntryOptions::new()
                    .ttl(Duration::from_secs(600))
                    .tags(["t"])
                    .skip_l1_write(),
            )
            .build()
    };
    let (a, b) = (build(), build());
    a.set(1, "one".into()).await.unwrap();
    assert_eq!(b.get(&1).await.unwrap().as_deref(), Some("one"));
    a.invalidate_tag("t").await.unwrap();
    assert_eq!(a.get(&1).await.unwrap(), None, "A knows at once");
    clock.advance(Duration::from_millis(4_999));
    assert_eq!(
        b.get(&1).await.unwrap().as_deref(),
        Some("one"),
        "B trusts the version it read for max_staleness"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(b.get(&1).await.unwrap(), None, "then reads it again");
    b.set(2, "two".into()).await.unwrap();
    assert_eq!(
        a.get(&2).await.unwrap().as_deref(),
        Some("two"),
        "written after the invalidation: live"
    );
    b.clear().await.unwrap();
    assert_eq!(b.get(&2).await.unwrap(), None);
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        a.get(&2).await.unwrap(),
        None,
        "A reads the clear within the bound"
    );
}
