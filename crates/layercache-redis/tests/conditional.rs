//! RedisTier's conditional writes (`add`, `compare_and_set`) on one server and on a Redis
//! Cluster: results, atomicity of concurrent adds, values and TTLs behind the tier's back,
//! binary bytes compared exactly.

use std::sync::Arc;
use std::time::Duration;

use layercache_redis::testing::{RedisCluster, RedisServer};
use layercache_redis::RedisTier;
use layercache_tier::Tier;

/// Generous timeouts: a loaded machine must not fail a call.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `PTTL key` through a raw connection of the same kind as the tier's.
async fn pttl(raw: &mut impl redis::aio::ConnectionLike, key: &[u8]) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(raw).await.unwrap()
}

/// Every check, on `tier`; `raw` reads TTLs behind its back. `prefix` keeps the keys of
/// two runs apart.
async fn conditional_writes(
    tier: Arc<RedisTier>,
    raw: &mut impl redis::aio::ConnectionLike,
    prefix: &str,
) {
    assert!(tier.supports_conditional_writes());
    let key = |name: &str| format!("{prefix}:{name}").into_bytes();

    // add: on an absent key true, on a present one false (the value stays).
    let k = key("add");
    assert!(tier.add(&k, b"first", None).await.unwrap());
    assert!(!tier.add(&k, b"second", None).await.unwrap());
    assert_eq!(tier.get(&k).await.unwrap(), Some(b"first".to_vec()));
    assert_eq!(pttl(raw, &k).await, -1);
    // add with a TTL sets it; an empty value is present.
    let k = key("add-ttl");
    assert!(tier
        .add(&k, b"", Some(Duration::from_secs(30)))
        .await
        .unwrap());
    let left = pttl(raw, &k).await;
    assert!(0 < left && left <= 30_000, "PTTL {left}");
    assert!(!tier.add(&k, b"x", None).await.unwrap());
    assert_eq!(tier.get(&k).await.unwrap(), Some(Vec::new()));

    // 16 concurrent adds of one absent key: exactly one wins, and its value is stored.
    for round in 0..5 {
        let k = key(&format!("race-{round}"));
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let tier = Arc::clone(&tier);
                let k = k.clone();
                tokio::spawn(async move { (i, tier.add(&k, &[i], None).await.unwrap()) })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (i, won) = task.await.unwrap();
            if won {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(tier.get(&k).await.unwrap(), Some(vec![winners[0]]));
    }

    // compare_and_set: a match replaces value and TTL.
    let k = key("cas");
    tier.set(&k, b"lease-1", Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let ttl = Duration::from_secs(60);
    assert!(tier
        .compare_and_set(&k, b"lease-1", b"value", Some(ttl))
        .await
        .unwrap());
    assert_eq!(tier.get(&k).await.unwrap(), Some(b"value".to_vec()));
    let left = pttl(raw, &k).await;
    assert!(5_000 < left && left <= 60_000, "PTTL {left}");
    // Without a TTL it clears the TTL.
    assert!(tier
        .compare_and_set(&k, b"value", b"forever", None)
        .await
        .unwrap());
    assert_eq!(pttl(raw, &k).await, -1);
    // A mismatch (another value, a prefix, a longer one) leaves value and TTL alone.
    tier.set(&k, b"value", Some(ttl)).await.unwrap();
    for wrong in [&b"lease-1"[..], b"valu", b"value\0", b"", b"VALUE"] {
        assert!(!tier.compare_and_set(&k, wrong, b"new", None).await.unwrap());
    }
    assert_eq!(tier.get(&k).await.unwrap(), Some(b"value".to_vec()));
    assert!(pttl(raw, &k).await > 0);
    // An absent key matches nothing, the empty value included, and stays absent.
    let k = key("cas-absent");
    assert!(!tier.compare_and_set(&k, b"", b"new", None).await.unwrap());
    assert!(!tier.compare_and_set(&k, b"x", b"new", None).await.unwrap());
    assert_eq!(tier.get(&k).await.unwrap(), None);
    // After a delete (an invalidation), the old lease no longer matches.
    let k = key("cas-deleted");
    assert!(tier.add(&k, b"lease", None).await.unwrap());
    tier.delete(&k).await.unwrap();
    assert!(!tier
        .compare_and_set(&k, b"lease", b"stale", None)
        .await
        .unwrap());
    assert_eq!(tier.get(&k).await.unwrap(), None);

    // Binary bytes, compared exactly: NUL bytes, invalid UTF-8, bytes differing in the last
    // or high bit only; binary keys and new values too.
    let k: Vec<u8> = [prefix.as_bytes(), &[0xff, 0x00, 0xfe]].concat();
    let stored: &[u8] = &[0x00, 0xff, 0xc3, 0x28, 0x00, 0x80];
    tier.set(&k, stored, None).await.unwrap();
    for wrong in [
        &[0x00, 0xff, 0xc3, 0x28, 0x00, 0x81][..],
        &[0x00, 0x7f, 0xc3, 0x28, 0x00, 0x80],
        &[0x00, 0xff, 0xc3, 0x28, 0x00],
        &[0x00, 0xff, 0xc3, 0x28, 0x00, 0x80, 0x00],
        &[0x00],
    ] {
        assert!(!tier.compare_and_set(&k, wrong, b"no", None).await.unwrap());
    }
    let new: &[u8] = &[0x00, 0x00, 0xfe, 0xff];
    assert!(tier.compare_and_set(&k, stored, new, None).await.unwrap());
    assert_eq!(tier.get(&k).await.unwrap().as_deref(), Some(new));
    assert!(tier
        .compare_and_set(&k, new, &[0u8; 1000], None)
        .await
        .unwrap());
    assert_eq!(tier.get(&k).await.unwrap(), Some(vec![0u8; 1000]));

    // compare_and_delete: only an exact match goes; an absent key is false.
    let k = key("cad");
    tier.set(&k, b"mine", None).await.unwrap();
    for wrong in [&b"min"[..], b"mine\0", b"MINE", b""] {
        assert!(!tier.compare_and_delete(&k, wrong).await.unwrap());
    }
    assert_eq!(tier.get(&k).await.unwrap().as_deref(), Some(&b"mine"[..]));
    assert!(tier.compare_and_delete(&k, b"mine").await.unwrap());
    assert_eq!(tier.get(&k).await.unwrap(), None);
    assert!(!tier.compare_and_delete(&k, b"mine").await.unwrap());
}

#[tokio::test]
async fn conditional_writes_on_one_server() {
    let server = RedisServer::start();
    let tier = RedisTier::builder()
        .connection_timeout(TIMEOUT)
        .response_timeout(TIMEOUT)
        .connect(&server.url())
        .await
        .unwrap();
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    conditional_writes(Arc::new(tier), &mut raw, "single").await;
}

#[tokio::test]
async fn compare_and_set_works_after_the_server_forgets_its_scripts() {
    // A restarted server has no scripts: EVALSHA answers NOSCRIPT and the script is loaded
    // again. SCRIPT FLUSH has the same effect, without a restart.
    let server = RedisServer::start();
    let tier = RedisTier::connect(&server.url()).await.unwrap();
    tier.set(b"k", b"a", None).await.unwrap();
    assert!(tier.compare_and_set(b"k", b"a", b"b", None).await.unwrap());
    server.command(&["SCRIPT", "FLUSH"]).unwrap();
    assert!(tier.compare_and_set(b"k", b"b", b"c", None).await.unwrap());
    assert_eq!(tier.get(b"k").await.unwrap(), Some(b"c".to_vec()));
}

#[tokio::test]
async fn conditional_writes_on_a_cluster() {
    let cluster = RedisCluster::start();
    let nodes = cluster.nodes();
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let tier = RedisTier::builder()
        .connection_timeout(TIMEOUT)
        .response_timeout(TIMEOUT)
        .connect_cluster(&nodes)
        .await
        .unwrap();
    let mut raw = redis::cluster::ClusterClient::new(nodes.clone())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let tier = Arc::new(tier);
    // Several prefixes, so that the keys land on every master.
    for prefix in ["a", "b", "c", "d", "e", "f"] {
        conditional_writes(Arc::clone(&tier), &mut raw, prefix).await;
    }
}
