//! RedisBackplane against throwaway servers: order, batches, blocking, resumption after
//! lost connections and restarts, gaps after trims, a frozen server, MAXLEN; and the same
//! order, resume and gap checks on a Redis Cluster.

use std::time::{Duration, Instant};

use layercache_redis::testing::{RedisCluster, RedisServer};
use layercache_redis::{stream_key, RedisBackplane};
use layercache_tier::{Backplane, Delivery, Read, StreamId, Subscription};

/// Connection and response timeouts of most backplanes here: generous, so that a loaded
/// machine does not fail a call that should work.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a backplane may take to work again after its server is back.
const RECOVERY: Duration = Duration::from_secs(20);
/// The block of reads that expect messages already there.
const BLOCK: Duration = Duration::from_millis(100);

async fn connect(server: &RedisServer) -> RedisBackplane {
    RedisBackplane::builder()
        .connection_timeout(TIMEOUT)
        .response_timeout(TIMEOUT)
        .connect(&server.url())
        .await
        .unwrap()
}

async fn connect_cluster(cluster: &RedisCluster) -> RedisBackplane {
    let nodes = cluster.nodes();
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let bus = RedisBackplane::builder()
        .connection_timeout(TIMEOUT)
        .response_timeout(TIMEOUT)
        .connect_cluster(&nodes)
        .await
        .unwrap();
    assert!(bus.is_cluster());
    bus
}

/// The payload of message `i`: not UTF-8, with a 0 byte, and of varying length.
fn payload(i: usize) -> Vec<u8> {
    let mut p = vec![0xff, 0x00, (i % 256) as u8];
    p.extend(format!("message {i}").bytes().cycle().take(i % 40));
    p
}

/// Publishes messages `range`; their ids, checked to increase.
async fn publish_range(
    bus: &RedisBackplane,
    channel: &str,
    range: std::ops::Range<usize>,
) -> Vec<StreamId> {
    let mut ids: Vec<StreamId> = Vec::new();
    for i in range {
        let id = bus.publish(channel, &payload(i)).await.unwrap();
        if let Some(last) = ids.last() {
            assert!(*last < id, "ids do not increase: {last} then {id}");
        }
        ids.push(id);
    }
    ids
}

/// Reads from `after` in batches of `max` until `count` messages came (at most `count + 10`
/// reads), failing on a gap or an error.
async fn read_n(
    sub: &mut dyn Subscription,
    mut after: StreamId,
    count: usize,
    max: usize,
) -> Vec<Delivery> {
    let mut got: Vec<Delivery> = Vec::new();
    for _ in 0..count + 10 {
        if got.len() >= count {
            break;
        }
        match sub.read(after, BLOCK, max).await.unwrap() {
            Read::Messages(batch) => {
                assert!(batch.len() <= max, "{} messages, max {max}", batch.len());
                if let Some(last) = batch.last() {
                    after = last.id;
                }
                got.extend(batch);
            }
            Read::Gap => panic!("unexpected gap after {after} ({} read)", got.len()),
        }
    }
    assert_eq!(got.len(), count, "messages read");
    got
}

/// Checks that `got` are messages `first..` with the published `ids`.
fn check(got: &[Delivery], ids: &[StreamId], first: usize) {
    assert_eq!(got.len(), ids.len());
    for (n, (d, id)) in got.iter().zip(ids).enumerate() {
        assert_eq!(d.id, *id, "message {n}");
        assert_eq!(d.payload, payload(first + n), "payload of message {n}");
    }
}

/// Checks that `got` is the one message `id` with `payload`.
fn check_one(got: &[Delivery], id: StreamId, payload: &[u8]) {
    let expected = Delivery {
        id,
        payload: payload.to_vec(),
    };
    assert_eq!(got, [expected]);
}

/// Calls `attempt` until it returns `Some`, 20 ms apart, for at most [`RECOVERY`] and 1000
/// tries.
async fn until<T>(what: &str, mut attempt: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    for _ in 0..1_000 {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            started.elapsed() < RECOVERY,
            "{what}: not within {RECOVERY:?}"
        );
        // A wait on the real server, bounded by the loop.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 1000 tries");
}

/// Reads after `after` until a read succeeds (the connection may have to be reopened).
async fn read_ok(sub: &mut dyn Subscription, after: StreamId) -> Read {
    until("a successful read", async || {
        sub.read(after, BLOCK, 100).await.ok()
    })
    .await
}

#[tokio::test]
async fn messages_are_read_in_order_in_batches() {
    let server = RedisServer::start();
    let bus = connect(&server).await;
    assert_eq!(bus.name(), "redis");
    let mut sub = bus.subscribe("orders").await.unwrap();
    // Nothing published yet: from 0-0 that is no messages, not a gap.
    assert_eq!(
        sub.read(StreamId::ZERO, BLOCK, 10).await.unwrap(),
        Read::Messages(vec![])
    );
    let ids = publish_range(&bus, "orders", 0..100).await;
    let got = read_n(sub.as_mut(), StreamId::ZERO, 100, 7).await;
    check(&got, &ids, 0);
    // From the middle, and from the first entry (still there: no gap).
    let got = read_n(sub.as_mut(), ids[49], 50, 100).await;
    check(&got, &ids[50..], 50);
    let got = read_n(sub.as_mut(), ids[0], 99, 1000).await;
    check(&got, &ids[1..], 1);
    // Another channel is another stream.
    let mut other = bus.subscribe("other").await.unwrap();
    assert_eq!(
        other.read(StreamId::ZERO, BLOCK, 10).await.unwrap(),
        Read::Messages(vec![])
    );
    let len = server.command(&["XLEN", &stream_key("orders")]).unwrap();
    assert_eq!(len, "100");
    assert_eq!(
        sub.read(ids[0], BLOCK, 0).await.unwrap(),
        Read::Messages(vec![]),
        "max 0"
    );
}

#[tokio::test]
async fn a_read_with_nothing_new_waits_about_its_block() {
    let server = RedisServer::start();
    let bus = connect(&server).await;
    let mut sub = bus.subscribe("quiet").await.unwrap();
    let ids = publish_range(&bus, "quiet", 0..3).await;
    for block in [Duration::from_millis(300), Duration::from_millis(800)] {
        let started = Instant::now();
        let read = sub.read(ids[2], block, 10).await.unwrap();
        let took = started.elapsed();
        assert_eq!(read, Read::Messages(vec![]));
        // Redis checks blocked clients' timeouts about every 100 ms (hz 10).
        assert!(
            took >= block.saturating_sub(Duration::from_millis(50)),
            "returned after {took:?}, block {block:?}"
        );
        assert!(
            took < block + Duration::from_secs(3),
            "returned after {took:?}, block {block:?}"
        );
    }
    // A message published while a read blocks ends the block early.
    let started = Instant::now();
    let (read, id) = tokio::join!(sub.read(ids[2], Duration::from_secs(20), 10), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        bus.publish("quiet", &payload(3)).await.unwrap()
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        read.unwrap(),
        Read::Messages(vec![Delivery {
            id,
            payload: payload(3)
        }])
    );
}

#[tokio::test]
async fn reads_resume_after_the_server_closes_the_connections() {
    let server = RedisServer::start();
    let bus = connect(&server).await;
    let mut sub = bus.subscribe("c").await.unwrap();
    let ids = publish_range(&bus, "c", 0..10).await;
    let got = read_n(sub.as_mut(), StreamId::ZERO, 5, 5).await;
    check(&got, &ids[..5], 0);
    let closed = server.drop_clients();
    assert!(closed >= 2, "closed {closed} connections");
    // The next read may fail; one soon after succeeds, from the same cursor, with no gap.
    let Read::Messages(rest) = read_ok(sub.as_mut(), ids[4]).await else {
        panic!("a gap after CLIENT KILL");
    };
    check(&rest, &ids[5..], 5);
    // Publishing works again too, and the reader sees it.
    let id = until("a publish", async || {
        bus.publish("c", &payload(10)).await.ok()
    })
    .await;
    let got = read_n(sub.as_mut(), ids[9], 1, 10).await;
    check(&got, &[id], 10);
}

#[tokio::test]
async fn a_server_restarted_empty_is_a_gap_then_reads_resume() {
    let server = RedisServer::start();
    let bus = connect(&server).await;
    let mut sub = bus.subscribe("c").await.unwrap();
    let ids = publish_range(&bus, "c", 0..5).await;
    let got = read_n(sub.as_mut(), StreamId::ZERO, 5, 10).await;
    check(&got, &ids, 0);
    server.kill9();
    let started = Instant::now();
    assert!(sub.read(ids[4], BLOCK, 10).await.is_err());
    assert!(
        started.elapsed() < TIMEOUT,
        "a read of a dead server took {:?}",
        started.elapsed()
    );
    assert!(sub.read(ids[4], BLOCK, 10).await.is_err());
    server.restart();
    // The stream was lost with the server: the old cursor is a gap.
    assert_eq!(read_ok(sub.as_mut(), ids[4]).await, Read::Gap);
    // Publishes after the restart are a gap for the old cursor too, and read from 0-0.
    let new = until("a publish", async || {
        bus.publish("c", &payload(0)).await.ok()
    })
    .await;
    assert_eq!(sub.read(ids[4], BLOCK, 10).await.unwrap(), Read::Gap);
    let got = read_n(sub.as_mut(), StreamId::ZERO, 1, 10).await;
    check(&got, &[new], 0);
}

#[tokio::test]
async fn a_trim_past_the_cursor_is_a_gap_and_one_short_of_it_is_not() {
    let server = RedisServer::start();
    let bus = connect(&server).await;
    let key = stream_key("t");
    let mut sub = bus.subscribe("t").await.unwrap();
    let ids = publish_range(&bus, "t", 0..10).await;
    // Trimmed up to the cursor, which stays: no gap.
    let minid = ids[3].to_string();
    assert_eq!(
        server.command(&["XTRIM", &key, "MINID", &minid]).unwrap(),
        "3"
    );
    let got = read_n(sub.as_mut(), ids[3], 6, 10).await;
    check(&got, &ids[4..], 4);
    // The cursor itself trimmed away: a gap, though every later message is still there.
    let minid = ids[4].to_string();
    assert_eq!(
        server.command(&["XTRIM", &key, "MINID", &minid]).unwrap(),
        "1"
    );
    assert_eq!(sub.read(ids[3], BLOCK, 10).await.unwrap(), Read::Gap);
    assert_eq!(
        sub.read(ids[4], BLOCK, 10).await.unwrap(),
        Read::Messages(got[1..].to_vec())
    );
    // Everything trimmed (the stream stays, empty): a gap from any old cursor.
    assert_eq!(
        server.command(&["XTRIM", &key, "MAXLEN", "0"]).unwrap(),
        "6"
    );
    assert_eq!(server.command(&["XLEN", &key]).unwrap(), "0");
    for cursor in [ids[0], ids[4], ids[9]] {
        assert_eq!(sub.read(cursor, BLOCK, 10).await.unwrap(), Read::Gap);
    }
    // From 0-0 an empty stream is no gap; new messages after the trim read normally.
    assert_eq!(
        sub.read(StreamId::ZERO, BLOCK, 10).await.unwrap(),
        Read::Messages(vec![])
    );
    let more = publish_range(&bus, "t", 10..12).await;
    let got = read_n(sub.as_mut(), more[0], 1, 10).await;
    check(&got, &more[1..], 11);
}

#[tokio::test]
async fn a_frozen_server_fails_reads_in_bounded_time_then_they_work_again() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(300);
    let bus = RedisBackplane::builder()
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .connect(&server.url())
        .await
        .unwrap();
    let mut sub = bus.subscribe("f").await.unwrap();
    let ids = publish_range(&bus, "f", 0..3).await;
    let block = Duration::from_millis(200);
    server.freeze();
    let mut results = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let read = sub.read(ids[0], block, 10).await;
        let took = started.elapsed();
        assert!(read.is_err(), "read a frozen server: {read:?}");
        // block + connection + response timeout = 800 ms, plus scheduling slack.
        assert!(
            took < Duration::from_secs(3),
            "a read of a frozen server failed after {took:?}"
        );
        results.push(format!("{took:?}: {}", read.unwrap_err()));
    }
    eprintln!("reads of the frozen server: {results:?}");
    let started = Instant::now();
    assert!(bus.publish("f", b"x").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
    server.thaw();
    let Read::Messages(got) = read_ok(sub.as_mut(), ids[0]).await else {
        panic!("a gap after thaw");
    };
    // The publish that failed during the freeze may still have been appended after thaw.
    assert!(got.len() == 2 || got.len() == 3, "{got:?}");
    check(&got[..2], &ids[1..], 1);
}

#[tokio::test]
async fn maxlen_keeps_the_stream_about_that_long() {
    let server = RedisServer::start();
    let n = 100;
    let bus = RedisBackplane::builder()
        .max_len(n)
        .connect(&server.url())
        .await
        .unwrap();
    assert_eq!(bus.max_len(), n);
    let ids = publish_range(&bus, "m", 0..3 * n).await;
    let len: usize = server
        .command(&["XLEN", &stream_key("m")])
        .unwrap()
        .parse()
        .unwrap();
    // `~`: whole nodes of up to 100 entries (stream-node-max-entries) are trimmed.
    assert!((n..=n + 100).contains(&len), "XLEN {len}");
    // What is left is the newest `len`; a cursor at the first published is a gap.
    let mut sub = bus.subscribe("m").await.unwrap();
    let got = read_n(sub.as_mut(), StreamId::ZERO, len, 1000).await;
    check(&got, &ids[3 * n - len..], 3 * n - len);
    assert_eq!(sub.read(ids[0], BLOCK, 10).await.unwrap(), Read::Gap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_order_resume_and_gap() {
    let cluster = RedisCluster::start();
    let bus = connect_cluster(&cluster).await;
    let any = cluster.ports()[0];
    let owner_of = |channel: &str| {
        let slot = cluster
            .command(any, &["CLUSTER", "KEYSLOT", &stream_key(channel)])
            .unwrap();
        cluster.slot_owner(any, slot.parse().unwrap())
    };
    // Two channels on different masters.
    let channels = ["users", "orders"];
    assert_ne!(owner_of(channels[0]), owner_of(channels[1]));
    for channel in channels {
        let owner = owner_of(channel);
        let key = stream_key(channel);
        let mut sub = bus.subscribe(channel).await.unwrap();
        // Order, in batches.
        let ids = publish_range(&bus, channel, 0..100).await;
        let got = read_n(sub.as_mut(), StreamId::ZERO, 63, 9).await;
        check(&got, &ids[..63], 0);
        assert_eq!(cluster.command(owner, &["XLEN", &key]).unwrap(), "100");
        // Resume after the owner closes every client connection.
        assert!(cluster.drop_clients(owner) >= 1);
        let Read::Messages(rest) = read_ok(sub.as_mut(), ids[62]).await else {
            panic!("{channel}: a gap after CLIENT KILL");
        };
        check(&rest, &ids[63..], 63);
        // A trim short of the cursor is no gap; past it, a gap.
        let minid = ids[50].to_string();
        assert_eq!(
            cluster
                .command(owner, &["XTRIM", &key, "MINID", &minid])
                .unwrap(),
            "50"
        );
        let got = read_n(sub.as_mut(), ids[50], 49, 100).await;
        check(&got, &ids[51..], 51);
        assert_eq!(sub.read(ids[49], BLOCK, 10).await.unwrap(), Read::Gap);
        assert_eq!(
            cluster
                .command(owner, &["XTRIM", &key, "MAXLEN", "0"])
                .unwrap(),
            "50"
        );
        assert_eq!(sub.read(ids[99], BLOCK, 10).await.unwrap(), Read::Gap);
        let id = until("a publish", async || bus.publish(channel, b"x").await.ok()).await;
        let Read::Messages(got) = sub.read(StreamId::ZERO, BLOCK, 10).await.unwrap() else {
            panic!("{channel}: a gap from 0-0");
        };
        check_one(&got, id, b"x");
    }
    // The owner of a stream killed and restarted empty: reads fail meanwhile (bounded), then
    // the old cursor is a gap, and new messages are read from 0-0.
    let channel = channels[0];
    let owner = owner_of(channel);
    let mut sub = bus.subscribe(channel).await.unwrap();
    let ids = publish_range(&bus, channel, 0..3).await;
    let got = read_n(sub.as_mut(), ids[0], 2, 10).await;
    check(&got, &ids[1..], 1);
    cluster.kill9(owner);
    let started = Instant::now();
    let read = sub.read(ids[2], BLOCK, 10).await;
    assert!(read.is_err(), "read a killed master: {read:?}");
    // block + connection + response timeout, plus slack.
    assert!(started.elapsed() < BLOCK + 2 * TIMEOUT + Duration::from_secs(2));
    cluster.restart(owner);
    cluster.wait_ok(Duration::from_secs(30));
    assert_eq!(read_ok(sub.as_mut(), ids[2]).await, Read::Gap);
    let id = until("a publish", async || bus.publish(channel, b"y").await.ok()).await;
    let got = read_n(sub.as_mut(), StreamId::ZERO, 1, 10).await;
    check_one(&got, id, b"y");
}
