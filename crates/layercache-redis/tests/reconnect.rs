//! A RedisTier survives its server being killed (SIGKILL) and restarted on the same port:
//! calls fail fast while it is down and succeed again soon after it is back, without a new
//! tier.

use std::time::{Duration, Instant};

use layercache_redis::testing::RedisServer;
use layercache_redis::RedisTier;
use layercache_tier::Tier;

/// The default response timeout: calls to a dead server must fail within it.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long `call` took, and whether it failed.
async fn timed<T, E>(call: impl std::future::Future<Output = Result<T, E>>) -> (Duration, bool) {
    let started = Instant::now();
    let failed = call.await.is_err();
    (started.elapsed(), failed)
}

#[tokio::test]
async fn kill9_then_restart_on_the_same_port() {
    let server = RedisServer::start();
    // Default timeouts: this is what a user gets.
    let tier = RedisTier::connect(&server.url()).await.unwrap();
    let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("k{i}").into_bytes()).collect();
    for key in &keys {
        tier.set(key, b"before", None).await.unwrap();
    }
    assert_eq!(tier.get(b"k0").await.unwrap(), Some(b"before".to_vec()));

    server.kill9();

    // Every kind of call fails, each within the response timeout, however many are made.
    let mut slowest = Duration::ZERO;
    for round in 0..4 {
        let asked: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let entries: Vec<(&[u8], &[u8])> = asked.iter().map(|k| (*k, &b"x"[..])).collect();
        let results = [
            ("get", timed(tier.get(b"k0")).await),
            ("set", timed(tier.set(b"k0", b"x", None)).await),
            ("delete", timed(tier.delete(b"k0")).await),
            ("get_many", timed(tier.get_many(&asked)).await),
            ("set_many", timed(tier.set_many(&entries, None)).await),
        ];
        for (name, (took, failed)) in results {
            assert!(
                failed,
                "round {round}: {name} succeeded against a dead server"
            );
            assert!(
                took < RESPONSE_TIMEOUT,
                "round {round}: {name} took {took:?} to fail (response timeout {RESPONSE_TIMEOUT:?})"
            );
            slowest = slowest.max(took);
        }
    }
    eprintln!("slowest failing call while the server was down: {slowest:?}");

    server.restart();
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(2);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let ok = tier.set(b"after", b"1", None).await.is_ok()
            && tier.get(b"after").await.ok() == Some(Some(b"1".to_vec()));
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no successful set + get within 2 s of the restart ({attempts} attempts)"
        );
        // Polling pause: the loop is bounded by the deadline above.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = restarted.elapsed();
    eprintln!("set + get succeeded {took:?} after the restart ({attempts} attempts)");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // No persistence: what was written before the kill is gone; the tier works fully.
    assert_eq!(tier.get(b"k1").await.unwrap(), None);
    let asked: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let entries: Vec<(&[u8], &[u8])> = asked.iter().map(|k| (*k, &b"again"[..])).collect();
    tier.set_many(&entries, Some(Duration::from_secs(10)))
        .await
        .unwrap();
    let got = tier.get_many(&asked).await.unwrap();
    assert!(got.iter().all(|v| v.as_deref() == Some(&b"again"[..])));
}

#[tokio::test]
async fn idle_tier_recovers_after_a_long_outage() {
    // The server stays down across several failed reconnections; the tier must still come
    // back on the next calls after the restart (no reconnection schedule that gave up).
    let server = RedisServer::start();
    let tier = RedisTier::connect(&server.url()).await.unwrap();
    tier.set(b"k", b"v", None).await.unwrap();
    server.kill9();
    for _ in 0..10 {
        assert!(tier.get(b"k").await.is_err());
    }
    server.restart();
    let restarted = Instant::now();
    loop {
        if tier.get(b"k").await.is_ok() {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(2),
            "not back within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    eprintln!("idle tier back {:?} after the restart", restarted.elapsed());
}
