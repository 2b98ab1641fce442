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
    // The key first exists without expiry, so that a SET without PX would leave PTTL at -1.
    let _: () = redis::cmd("SET")
        .arg("tiny")
        .arg("old")
        .query_async(&mut conn)
        .await
        .unwrap();
    tier.set(b"tiny", b"v", Some(Duration::from_nanos(10)))
        .await
        .unwrap();
    let left = pttl(&mut conn, b"tiny").await;
    // 1 or 0: it expires within the millisecond; -2: it already expired and is gone. Not -1
    // (no expiry) nor more than 1 ms.
    assert!(matches!(left, -2..=1) && left != -1, "PTTL {left}");

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

/// The response timeout of [`frozen_server_fails_calls_within_the_timeouts`].
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(200);
/// Its connection timeout: far longer than the response timeout, so that a call failed by
/// the response timeout ends long before the whole-call bound (their sum), however loaded
/// the machine is.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a tier may take to work again after its server comes back.
const RECOVERY: Duration = Duration::from_secs(10);

#[tokio::test]
async fn frozen_server_fails_calls_within_the_timeouts() {
    let server = RedisServer::start();
    let tier = RedisTier::builder()
        .connection_timeout(CONNECTION_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .connect(&server.url())
        .await
        .unwrap();
    let bound = tier.call_timeout();
    tier.set(b"k", b"v", None).await.unwrap();

    server.freeze();
    let started = Instant::now();
    // The outer bound only keeps a tier that ignores its time limits from hanging the test.
    let result = tokio::time::timeout(bound * 2, tier.get(b"k")).await;
    let took = started.elapsed();
    let result = result.unwrap_or_else(|_| panic!("get hung for {took:?}"));
    eprintln!("call to a frozen server failed after {took:?}: {result:?}");
    // The response timeout ended it: redis-rs's timeout error (a backend error), not the
    // whole-call bound (`TierError::Timeout`), and not before the response timeout.
    assert!(
        matches!(&result, Err(TierError::Backend { tier: "redis", source }) if source.to_string().contains("timed out")),
        "{result:?} after {took:?}"
    );
    assert!(took >= RESPONSE_TIMEOUT, "failed after {took:?}");
    assert!(
        took < bound,
        "failed after {took:?}, the call bound is {bound:?}"
    );
    let started = Instant::now();
    let batch = tokio::time::timeout(bound * 2, tier.get_many(&[b"k", b"j"])).await;
    let took = started.elapsed();
    let batch = batch.unwrap_or_else(|_| panic!("get_many hung for {took:?}"));
    assert!(
        matches!(
            batch,
            Err(TierError::Backend { tier: "redis", .. } | TierError::Timeout { .. })
        ),
        "{batch:?}"
    );

    server.thaw();
    let thawed = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        match tier.get(b"k").await {
            Ok(value) => {
                assert_eq!(value, Some(b"v".to_vec()));
                break;
            }
            Err(e) => assert!(
                thawed.elapsed() < RECOVERY && tries < 1_000,
                "still failing {:?} after the thaw ({tries} tries): {e}",
                thawed.elapsed()
            ),
        }
        // A wait on the real server, bounded by the assertion above.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("back {:?} after the thaw ({tries} tries)", thawed.elapsed());
}

#[tokio::test]
async fn connect_errors() {
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = RedisTier::builder()
        .connection_timeout(CONNECTION_TIMEOUT)
        .connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // Refused at once, each of the 3 attempts: no wait for a connection timeout.
    assert!(took < CONNECTION_TIMEOUT, "refused after {took:?}");

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
