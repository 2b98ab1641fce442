//! Coherence across instances over a test-owned redis-server: the backplane (Redis Streams)
//! keeps every instance's L1 in step with the others' writes, removes, tag invalidations
//! and clears.

use std::sync::Arc;
use std::time::{Duration, Instant};

use layercache::redis::{RedisBackplane, RedisTier};
use layercache::{EntryOptions, TieredCache};
use layercache_redis::testing::RedisServer;

/// Polls `done` every millisecond until it holds or `limit` passes; whether it held.
async fn within(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// An instance of cache `name` over `server`, with its own connections (as a process of
/// its own would have).
async fn instance(server: &RedisServer, name: &str) -> TieredCache<u64, String> {
    let tier = RedisTier::connect(&server.url()).await.expect("tier");
    let bus = RedisBackplane::connect(&server.url())
        .await
        .expect("backplane");
    let cache = TieredCache::builder(name)
        .l2(tier)
        .backplane(bus)
        .max_staleness(Duration::from_secs(1))
        .default_entry_options(EntryOptions::new().ttl(Duration::from_secs(600)))
        .build();
    assert!(
        within(Duration::from_secs(10), async || cache.l1_trusted()).await,
        "the backplane subscriber did not catch up within 10 s"
    );
    cache
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_remove_tag_or_clear_on_one_instance_reaches_the_others_l1() {
    let server = RedisServer::start();
    let a = instance(&server, "co").await;
    let b = instance(&server, "co").await;
    assert_ne!(a.instance_id(), b.instance_id());

    // B holds key 1 in L1.
    let v = b
        .get_or_load(1, || async { Ok::<_, std::io::Error>("old".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "old");
    a.set(1, "new".into()).await.unwrap();
    assert!(
        within(Duration::from_secs(2), async || b
            .get(&1)
            .await
            .unwrap()
            .as_deref()
            == Some("new"))
        .await,
        "B still serves the old value 2 s after A's write"
    );
    a.remove(&1).await.unwrap();
    assert!(
        within(Duration::from_secs(2), async || b
            .get(&1)
            .await
            .unwrap()
            .is_none())
        .await,
        "B still serves the value 2 s after A removed it"
    );

    // Tags: B loads two tagged entries and one untagged; A invalidates one tag.
    let shop = EntryOptions::new()
        .ttl(Duration::from_secs(600))
        .tags(["shop:1"]);
    let other = EntryOptions::new()
        .ttl(Duration::from_secs(600))
        .tags(["shop:2"]);
    for (k, opts) in [(10u64, &shop), (11, &shop), (12, &other)] {
        b.get_or_load_with(k, opts, || async move {
            Ok::<_, std::io::Error>(format!("v{k}"))
        })
        .await
        .unwrap();
    }
    a.invalidate_tag("shop:1").await.unwrap();
    assert!(
        within(Duration::from_secs(2), async || b
            .get(&10)
            .await
            .unwrap()
            .is_none()
            && b.get(&11).await.unwrap().is_none())
        .await,
        "B still serves entries of the invalidated tag"
    );
    assert_eq!(
        b.get(&12).await.unwrap().as_deref(),
        Some("v12"),
        "another tag's entry stays"
    );
    // A third instance, built afterwards, sees the tag as invalidated in L2.
    let c = instance(&server, "co").await;
    assert_eq!(c.get(&10).await.unwrap(), None, "a dead tagged entry in L2");
    assert_eq!(c.get(&12).await.unwrap().as_deref(), Some("v12"));

    // Clear.
    b.get_or_load(20, || async { Ok::<_, std::io::Error>("x".to_string()) })
        .await
        .unwrap();
    a.clear().await.unwrap();
    assert!(
        within(Duration::from_secs(2), async || b
            .get(&20)
            .await
            .unwrap()
            .is_none()
            && b.get(&12).await.unwrap().is_none())
        .await,
        "B still serves entries after A cleared the cache"
    );
    assert_eq!(c.get(&20).await.unwrap(), None);
    let _ = Arc::new(());
}
