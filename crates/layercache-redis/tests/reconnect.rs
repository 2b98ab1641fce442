//! A RedisTier survives its server being killed (SIGKILL) and restarted on the same port:
//! calls fail fast while it is down and succeed again soon after it is back, without a new
//! tier. It also reopens connections that the server closes.

use std::time::{Duration, Instant};

use layercache_redis::testing::RedisServer;
use layercache_redis::RedisTier;
use layercache_tier::Tier;

/// The tier's connection and response timeouts: long, so that a call that fails fast
/// cannot have been failed by one of them.
const TIMEOUT: Duration = Duration::from_secs(5);
/// "Fast": far below either timeout, far above a refused connection on loopback (well under
/// a millisecond) plus the reconnection schedule (at most 60 ms), even on a loaded machine.
const FAST: Duration = Duration::from_secs(1);
/// How long the tier may take to work again after the server is back.
const RECOVERY: Duration = Duration::from_secs(10);

async fn connect(server: &RedisServer) -> RedisTier {
    RedisTier::builder()
        .connection_timeout(TIMEOUT)
        .response_timeout(TIMEOUT)
        .connect(&server.url())
        .await
        .unwrap()
}

/// Calls `attempt` until it returns true, pausing 5 ms between tries, for at most
/// [`RECOVERY`] and 1000 tries; returns the number of tries.
async fn until(what: &str, mut attempt: impl AsyncFnMut() -> bool) -> u32 {
    let started = Instant::now();
    for tries in 1..=1_000 {
        if attempt().await {
            return tries;
        }
        if started.elapsed() >= RECOVERY {
            panic!("{what}: not within {RECOVERY:?} ({tries} tries)");
        }
        // A wait on the real server, bounded by the loop.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{what}: not within 1000 tries");
}

/// How long `call` took, and whether it failed.
async fn timed<T, E>(call: impl std::future::Future<Output = Result<T, E>>) -> (Duration, bool) {
    let started = Instant::now();
    let failed = call.await.is_err();
    (started.elapsed(), failed)
}

#[tokio::test]
async fn kill9_then_restart_on_the_same_port() {
    let server = RedisServer::start();
    let tier = connect(&server).await;
    let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("k{i}").into_bytes()).collect();
    for key in &keys {
        tier.set(key, b"before", None).await.unwrap();
    }
    assert_eq!(tier.get(b"k0").await.unwrap(), Some(b"before".to_vec()));

    server.kill9();

    // Every kind of call fails, each fast (without waiting for a timeout), however many are
    // made.
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
                took < FAST,
                "round {round}: {name} took {took:?} to fail (timeouts {TIMEOUT:?})"
            );
            slowest = slowest.max(took);
        }
    }
    eprintln!("slowest failing call while the server was down: {slowest:?}");

    server.restart();
    let restarted = Instant::now();
    let tries = until("set + get after the restart", async || {
        tier.set(b"after", b"1", None).await.is_ok()
            && tier.get(b"after").await.ok() == Some(Some(b"1".to_vec()))
    })
    .await;
    eprintln!(
        "set + get succeeded {:?} after the restart ({tries} tries)",
        restarted.elapsed()
    );

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
    let tier = connect(&server).await;
    tier.set(b"k", b"v", None).await.unwrap();
    server.kill9();
    for _ in 0..10 {
        assert!(tier.get(b"k").await.is_err());
    }
    server.restart();
    let restarted = Instant::now();
    let tries = until("get after the restart", async || {
        tier.get(b"k").await.is_ok()
    })
    .await;
    eprintln!(
        "idle tier back {:?} after the restart ({tries} tries)",
        restarted.elapsed()
    );
}

#[tokio::test]
async fn connections_closed_by_the_server_are_reopened() {
    // The server stays up but closes every client connection (`CLIENT KILL`): the call
    // that meets the closed connection may fail; the tier reconnects by itself.
    let server = RedisServer::start();
    let tier = connect(&server).await;
    tier.set(b"k", b"v", None).await.unwrap();
    let closed = server.drop_clients();
    assert!(closed >= 1, "the tier had no connection to close");
    let tries = until("get after CLIENT KILL", async || {
        tier.get(b"k").await.ok() == Some(Some(b"v".to_vec()))
    })
    .await;
    eprintln!("get worked again after {tries} tries");
}
