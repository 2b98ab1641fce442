//! Coherence across instances over a test-owned redis-server: the backplane (Redis Streams)
//! keeps every instance's L1 in step with the others' writes, removes, tag invalidations
//! and clears; and the chaos tests: three instances under a random workload, checked
//! against a version oracle through four faults (see [`coherence_support`] for the model
//! and the definition of staleness).
//!
//! Chaos property: no read that starts during a fault, or within `max_staleness` (1 s)
//! after it healed, is stale by more than `max_staleness` plus `SLACK` (250 ms); no read
//! before the fault, or later than `max_staleness` after it healed, is stale by more than
//! `ALLOWANCE` (50 ms). The chaos tests run one at a time (they share 2 cores).

mod coherence_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coherence_support::{instance as chaos_instance, within, Fleet, Op, MAX_STALENESS};
use layercache::redis::{stream_key, RedisBackplane, RedisTier};
use layercache::{EntryOptions, TieredCache};
use layercache_redis::testing::RedisServer;

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

/// The chaos tests run one at a time: each drives 3 instances and a redis-server on 2
/// cores, and two at once would measure each other's scheduling delays.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a chaos test may take in all (its workloads stop by themselves earlier).
const TEST_LIMIT: Duration = Duration::from_secs(58);

/// Runs a chaos test's body under the one-at-a-time lock and [`TEST_LIMIT`].
async fn chaos(body: impl std::future::Future<Output = ()>) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    tokio::time::timeout(TEST_LIMIT, body)
        .await
        .expect("the chaos test did not finish within its limit");
    println!("took {:.1} s", started.elapsed().as_secs_f64());
}

/// Fault 1: Redis SIGKILLed, down for 1.5 s (past `max_staleness`), restarted empty (the
/// stream and L2 are gone, so every cursor is a gap). Calls made while it is down fail and
/// are retried; they are acknowledged once Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_redis_killed_and_restarted_empty() {
    chaos(async {
        let mut fleet = Fleet::start("chaos-kill").await;
        fleet.warm_then_fault().await;
        fleet.server.kill9();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        fleet.server.restart();
        fleet.heal();
        fleet.finish("chaos_redis_killed_and_restarted_empty").await;
    })
    .await;
}

/// Fault 2: the server frozen (SIGSTOP) for 3 s, then thawed (SIGCONT): no error reaches
/// the subscribers, so each must notice the silence itself and stop serving L1 within
/// `max_staleness`; L2 is frozen too (calls time out and are retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_backplane_frozen_for_3_s() {
    chaos(async {
        let mut fleet = Fleet::start("chaos-freeze").await;
        fleet.warm_then_fault().await;
        fleet.server.freeze();
        tokio::time::sleep(Duration::from_secs(3)).await;
        fleet.server.thaw();
        fleet.heal();
        fleet.finish("chaos_backplane_frozen_for_3_s").await;
    })
    .await;
}

/// Fault 3: C cut off the backplane (its [`Switch`](coherence_support::Switch): publishes
/// and reads fail; L2 still answers) until it stops serving L1; meanwhile A writes every key
/// of `100..200`, which C held in L1, and the stream is trimmed to nothing (`XTRIM MAXLEN
/// 0`), so C's cursor is gone; then C is reconnected and must detect the gap and clear its
/// L1. While cut off, C reads only keys `0..100` (so its L1 keeps the old copies of the
/// others) and writes nothing: a writer cut off from the backplane cannot tell the others
/// (its invalidations wait in its queue), which no reader can detect; see the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_stream_trimmed_past_a_disconnected_instance() {
    chaos(async {
        let mut fleet = Fleet::start("chaos-trim").await;
        fleet.warm_then_fault().await;
        fleet.c_ctl.read_only.store(true, Ordering::Release);
        fleet.c_ctl.keys(0, 100);
        fleet.c_down.store(true, Ordering::Release);
        // C must stop serving L1 within max_staleness; if it does not, it keeps serving
        // what the others change meanwhile, which the oracle sees (then this fails too).
        let cut_at = Instant::now();
        let stopped = within(MAX_STALENESS + Duration::from_secs(1), async || {
            !fleet.c_view().l1_trusted()
        })
        .await;
        let distrusted_after = cut_at.elapsed();
        for key in 100..200 {
            fleet.world.write("A", &fleet.a, key, Op::Set).await;
        }
        let trimmed = fleet
            .server
            .command(&["XTRIM", &stream_key(fleet.name), "MAXLEN", "0"])
            .expect("XTRIM");
        fleet.c_down.store(false, Ordering::Release);
        fleet.heal();
        println!(
            "C stopped serving L1 {:.0} ms after it was cut off (stopped: {stopped}); XTRIM \
             removed {trimmed} entries",
            distrusted_after.as_secs_f64() * 1000.0
        );
        assert!(
            within(Duration::from_secs(5), async || fleet.c_view().l1_trusted()).await,
            "C did not come back within 5 s"
        );
        fleet.c_ctl.keys(0, 200);
        fleet.c_ctl.read_only.store(false, Ordering::Release);
        // Past max_staleness, every key C held is read once on C (the workload reads them
        // too, at random).
        fleet.settle().await;
        let c = fleet.c_view();
        for key in 100..200 {
            fleet.world.read("C", &c, key).await;
        }
        drop(c);
        fleet
            .finish("chaos_stream_trimmed_past_a_disconnected_instance")
            .await;
        assert!(
            stopped,
            "C still served L1 1 s past max_staleness after it lost the backplane"
        );
    })
    .await;
}

/// Fault 4: C dropped mid-run (its workload stops after its current operation and its
/// `TieredCache` is dropped: its subscriber stops); while it is gone A invalidates every
/// tag and writes C's own keys (`180..200`, which only C reads, so their old entries stay
/// in L2, dead by the tags); then a new C with the same name is built and continues: it
/// knows no tag version and must read them from L2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_instance_dropped_and_rebuilt() {
    chaos(async {
        let mut fleet = Fleet::start("chaos-rebuild").await;
        fleet.warm_then_fault().await;
        fleet.stop_c().await;
        for class in 0..10 {
            fleet.world.write("A", &fleet.a, class, Op::Tag).await;
        }
        for key in (180..200).step_by(2) {
            fleet.world.write("A", &fleet.a, key, Op::Set).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let c = chaos_instance(&fleet.server, fleet.name, Some(Arc::clone(&fleet.c_down))).await;
        fleet.run_c(c, 0x27d4_eb2f);
        fleet.heal();
        fleet.finish("chaos_instance_dropped_and_rebuilt").await;
    })
    .await;
}
