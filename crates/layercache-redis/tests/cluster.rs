//! RedisTier against a throwaway 6-node Redis Cluster (3 masters, 3 replicas): commands,
//! batches across hash slots, TTLs checked on the node that owns each key.
//!
//! One test function: the cluster takes a few seconds to form and its ports are fixed.

use std::collections::HashSet;
use std::time::Duration;

use layercache_redis::testing::RedisCluster;
use layercache_redis::RedisTier;
use layercache_tier::Tier;
use redis::cluster_routing::Slot;

#[tokio::test]
async fn cluster_commands_batches_and_ttls() {
    let cluster = RedisCluster::start();
    let nodes = cluster.nodes();
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let tier = RedisTier::connect_cluster(&nodes).await.unwrap();
    assert!(tier.is_cluster());
    // A raw cluster connection: routes PTTL to the master of each key's slot.
    let mut raw = redis::cluster::ClusterClient::new(nodes.clone())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let mut pttl = async |key: &[u8]| -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap()
    };

    // Single-key commands, sizes, binary keys.
    assert_eq!(tier.get(b"missing").await.unwrap(), None);
    tier.set(b"a", b"1", None).await.unwrap();
    assert_eq!(tier.get(b"a").await.unwrap(), Some(b"1".to_vec()));
    tier.delete(b"a").await.unwrap();
    assert_eq!(tier.get(b"a").await.unwrap(), None);
    tier.set(b"empty", b"", None).await.unwrap();
    assert_eq!(tier.get(b"empty").await.unwrap(), Some(Vec::new()));
    let big: Vec<u8> = (0..1usize << 20).map(|i| (i % 251) as u8).collect();
    tier.set(b"big", &big, None).await.unwrap();
    assert_eq!(tier.get(b"big").await.unwrap().as_deref(), Some(&big[..]));
    let binary: &[u8] = &[0xff, 0x00, b'{', 0x80, b'}', b'\n'];
    tier.set(binary, b"bin", None).await.unwrap();
    assert_eq!(tier.get(binary).await.unwrap(), Some(b"bin".to_vec()));

    // TTLs, read on the owning node.
    let ttl = Duration::from_secs(30) + Duration::from_nanos(1);
    tier.set(b"t", b"v", Some(ttl)).await.unwrap();
    let left = pttl(b"t").await;
    assert!(0 < left && left <= 30_001, "PTTL {left}");
    assert_eq!(pttl(b"big").await, -1);

    // 400 keys over many slots (and so over all 3 masters).
    let keys: Vec<Vec<u8>> = (0..400).map(|i| format!("key:{i}").into_bytes()).collect();
    let slots: HashSet<Slot> = keys.iter().map(Slot::for_key).collect();
    assert!(slots.len() > 300, "only {} slots", slots.len());
    let values: Vec<Vec<u8>> = (0..400)
        .map(|i| format!("value:{i}").into_bytes())
        .collect();
    let entries: Vec<(&[u8], &[u8])> = keys
        .iter()
        .zip(&values)
        .map(|(k, v)| (&k[..], &v[..]))
        .collect();
    tier.set_many(&entries, Some(Duration::from_secs(20)))
        .await
        .unwrap();
    for key in keys.iter().step_by(7) {
        let left = pttl(key).await;
        assert!(0 < left && left <= 20_000, "PTTL {left}");
    }

    // get_many across slots: values come back in the order asked, misses included, the
    // same key twice, hash-tagged keys sharing a slot.
    tier.set_many(&[(b"{u}1", b"x"), (b"{u}2", b"y")], None)
        .await
        .unwrap();
    let mut asked: Vec<&[u8]> = Vec::new();
    let mut expected: Vec<Option<Vec<u8>>> = Vec::new();
    for i in (0..400).rev() {
        asked.push(&keys[i]);
        expected.push(Some(values[i].clone()));
        if i % 50 == 0 {
            asked.push(b"absent");
            expected.push(None);
            asked.push(&keys[399 - i]);
            expected.push(Some(values[399 - i].clone()));
        }
    }
    asked.extend([&b"{u}2"[..], b"{u}1", b"empty"]);
    expected.extend([Some(b"y".to_vec()), Some(b"x".to_vec()), Some(Vec::new())]);
    assert_eq!(tier.get_many(&asked).await.unwrap(), expected);
    assert_eq!(
        tier.get_many(&[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );

    // set_many without a TTL: no expiry, earlier TTLs removed.
    tier.set_many(&entries[..50], None).await.unwrap();
    for key in &keys[..50] {
        assert_eq!(pttl(key).await, -1);
    }

    // The keys really are spread: every master holds some.
    let mut masters_with_keys = 0;
    for url in &nodes {
        let mut conn = redis::Client::open(*url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut conn)
            .await
            .unwrap();
        if info.contains("role:master") {
            let size: i64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
            assert!(size > 50, "master {url} holds only {size} keys");
            masters_with_keys += 1;
        }
    }
    assert_eq!(masters_with_keys, 3);
}
