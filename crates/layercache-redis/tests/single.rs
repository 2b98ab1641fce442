//! RedisTier against one throwaway redis-server: commands, sizes, binary keys, TTLs, and
//! connect-time errors.

use std::time::{Duration, Instant};

use layercache_redis::testing::RedisServer;
use layercache_redis::{Error, RedisTier};
use layercache_tier::{Tier, TierError};

/// A raw redis-rs connection to `server`, to look behind the tier's back.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn pttl(conn: &mut redis::aio::MultiplexedConnection, key: &[u8]) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
}

/// `len` bytes that are not all alike.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn get_set_delete_and_sizes() {
    let server = RedisServer::start();
    let tier = RedisTier::connect(&server.url()).await.unwrap();
    assert_eq!(tier.name(), "redis");
    assert!(!tier.is_cluster());

    assert_eq!(tier.get(b"missing").await.unwrap(), None);
    tier.set(b"a", b"1", None).await.unwrap();
    assert_eq!(tier.get(b"a").await.unwrap(), Some(b"1".to_vec()));
    tier.set(b"a", b"2", None).await.unwrap();
    assert_eq!(tier.get(b"a").await.unwrap(), Some(b"2".to_vec()));
    tier.delete(b"a").await.unwrap();
    assert_eq!(tier.get(b"a").await.unwrap(), None);
    tier.delete(b"a").await.unwrap(); // absent: not an error

    // 0 bytes is a value, not an absence.
    tier.set(b"empty", b"", None).await.unwrap();
    assert_eq!(tier.get(b"empty").await.unwrap(), Some(Vec::new()));

    let big = bytes(1 << 20, 7);
    tier.set(b"big", &big, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(tier.get(b"big").await.unwrap().as_deref(), Some(&big[..]));

    // Binary keys: NUL, CR LF, space, invalid UTF-8.
    let keys: [&[u8]; 4] = [b"\0", b"a\r\nb c", &[0xff, 0xfe, 0x00, 0x80], &[0u8; 300]];
    for (i, key) in keys.iter().enumerate() {
        tier.set(key, &[i as u8], None).await.unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(tier.get(key).await.unwrap(), Some(vec![i as u8]));
    }
    let mut conn = raw(&server).await;
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(&[0xffu8, 0xfe, 0x00, 0x80][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        stored,
        [2],
        "keys are stored as given, without prefix or encoding"
    );
}

#[tokio::test]
async fn batches_keep_order() {
    let server = RedisServer::start();
    let tier = RedisTier::connect(&server.url()).await.unwrap();
    let tier: &dyn Tier = &tier;

    assert_eq!(
        tier.get_many(&[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    tier.set_many(&[], None).await.unwrap();

    let big = bytes(1 << 20, 3);
    let entries: [(&[u8], &[u8]); 4] = [
        (b"k1", b"v1"),
        (b"k2", b""),
        (b"\xffbin\0", b"\x00\x01"),
        (b"big", &big),
    ];
    tier.set_many(&entries, None).await.unwrap();
    let got = tier
        .get_many(&[b"big", b"nope", b"k2", b"k1", b"\xffbin\0", b"k1"])
        .await
        .unwrap();
    assert_eq!(
        got,
        [
            Some(big.clone()),
            None,
            Some(Vec::new()),
            Some(b"v1".to_vec()),
            Some(b"\x00\x01".to_vec()),
            Some(b"v1".to_vec()),
        ]
    );

    let many: Vec<Vec<u8>> = (0..500).map(|i| format!("many:{i}").into_bytes()).collect();
    let entries: Vec<(&[u8], &[u8])> = many.iter().map(|k| (&k[..], &k[..])).collect();
    tier.set_many(&entries, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    let asked: Vec<&[u8]> = many.iter().rev().map(Vec::as_slice).collect();
    let got = tier.get_many(&asked).await.unwrap();
    for (key, value) in asked.iter().zip(got) {
        assert_eq!(value.as_deref(), Some(*key));
    }
}

#[tokio::test]
async fn ttls_are_set_with_px() {
    let server = RedisServer::start();
    let tier = RedisTier::connect(&server.url()).await.unwrap();
    let mut conn = raw(&server).await;

    // 60 s + 1 ns is rounded up to 60 001 ms.
    let ttl = Duration::from_secs(60) + Duration::from_nanos(1);
    tier.set(b"t", b"v", Some(ttl)).await.unwrap();
    let left = pttl(&mut conn, b"t").await;
    assert!(0 < left && left <= 60_001, "PTTL {left}");

    // A sub-millisecond TTL is 1 ms, not 0 (which Redis would reject) and not "forever".
    tier.set(b"tiny", b"v", Some(Duration::from_nanos(10)))
        .await
        .unwrap();
    assert!(pttl(&mut conn, b"tiny").await <= 1);

    // A TTL too long for Redis's clock is cut, not refused.
    tier.set(b"forever", b"v", Some(Duration::MAX))
        .await
        .unwrap();
    assert!(pttl(&mut conn, b"forever").await > 1_000_000_000_000);

    // No TTL: no expiry, and a plain SET removes an earlier one.
    tier.set(b"n", b"v", None).await.unwrap();
    assert_eq!(pttl(&mut conn, b"n").await, -1);
    tier.set(b"t", b"v2", None).await.unwrap();
    assert_eq!(pttl(&mut conn, b"t").await, -1);

    let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("b{i}").into_bytes()).collect();
    let entries: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &b"x"[..])).collect();
    tier.set_many(&entries, Some(Duration::from_millis(20_000)))
        .await
        .unwrap();
    for key in &keys {
        let left = pttl(&mut conn, key).await;
        assert!(0 < left && left <= 20_000, "PTTL {left}");
    }
    tier.set_many(&entries, None).await.unwrap();
    for key in &keys {
        assert_eq!(pttl(&mut conn, key).await, -1);
    }
}

#[tokio::test]
async fn frozen_server_fails_calls_within_the_timeouts() {
    let server = RedisServer::start();
    let tier = RedisTier::builder()
        .connection_timeout(Duration::from_millis(200))
        .response_timeout(Duration::from_millis(200))
        .connect(&server.url())
        .await
        .unwrap();
    tier.set(b"k", b"v", None).await.unwrap();

    server.freeze();
    let started = Instant::now();
    let result = tier.get(b"k").await;
    let took = started.elapsed();
    assert!(result.is_err(), "{result:?}");
    eprintln!(
        "call to a frozen server failed after {took:?}: {}",
        result.unwrap_err()
    );
    // The response timeout (200 ms), or at worst the whole-call bound (400 ms).
    assert!(took < Duration::from_millis(450), "failed after {took:?}");
    let batch = tier.get_many(&[b"k", b"j"]).await;
    assert!(matches!(
        batch,
        Err(TierError::Backend { tier: "redis", .. } | TierError::Timeout { .. })
    ));

    server.thaw();
    let thawed = Instant::now();
    let deadline = thawed + Duration::from_secs(2);
    loop {
        match tier.get(b"k").await {
            Ok(value) => {
                assert_eq!(value, Some(b"v".to_vec()));
                eprintln!("back {:?} after the thaw", thawed.elapsed());
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "still failing after thaw: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn connect_errors() {
    let started = Instant::now();
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = RedisTier::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    let err = RedisTier::connect("http://user:hunter2@example/")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");

    let err = RedisTier::connect_cluster(&[]).await.unwrap_err();
    assert!(matches!(err, Error::NoNodes), "{err:?}");

    // A server that is not in cluster mode is not a cluster.
    let server = RedisServer::start();
    let err = RedisTier::connect_cluster(&[&server.url()])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}
