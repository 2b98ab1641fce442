//! Expiration on a manual clock: time to live, time to idle, per-entry `Expiry`, and the
//! timer wheel's promptness. No test sleeps: time moves only when a test advances it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::within;
use layercache_memory::{Cache, Clock, EvictionPolicy, Expiry, ManualClock, RemovalCause};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The timer wheel's tick, as documented in `layercache_memory::expiry`: 2^30 ns.
const TICK: u64 = 1 << 30;

fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

type Log = Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

/// A listener that logs `(key, value, cause)`.
fn logger() -> (
    Log,
    impl Fn(&u64, &u64, RemovalCause) + Send + Sync + 'static,
) {
    let log: Log = Arc::default();
    let l = Arc::clone(&log);
    (log, move |k: &u64, v: &u64, c| {
        l.lock().unwrap().push((*k, *v, c))
    })
}

#[test]
fn time_to_live_is_exact_to_the_nanosecond() {
    let clock = ManualClock::new();
    let (log, listener) = logger();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(100)
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .eviction_listener(listener)
        .build();
    cache.insert(1, 10);
    clock.advance(Duration::from_secs(10) - ns(1));
    assert_eq!(
        cache.get(&1),
        Some(10),
        "one nanosecond before the deadline"
    );
    assert!(cache.contains_key(&1));
    clock.advance(ns(2));
    assert_eq!(cache.get(&1), None, "one nanosecond past the deadline");
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.iter().count(), 0);
    // Not cleaned up yet (less than a tick has passed), but never returned.
    assert!(log.lock().unwrap().is_empty());
    cache.validate().unwrap();
    clock.advance(Duration::from_secs(2));
    cache.run_pending_tasks();
    assert_eq!(*log.lock().unwrap(), vec![(1, 10, RemovalCause::Expired)]);
    assert_eq!(cache.entry_count(), 0);
    cache.validate().unwrap();
}

#[test]
fn an_update_restarts_time_to_live_and_an_expired_entry_is_not_replaced() {
    let clock = ManualClock::new();
    let (log, listener) = logger();
    let cache: Cache<u64, u64> = Cache::builder()
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .eviction_listener(listener)
        .build();
    cache.insert(1, 10);
    clock.advance(Duration::from_secs(8));
    assert_eq!(cache.try_insert(1, 11).ok(), Some(Some(10)));
    clock.advance(Duration::from_secs(8));
    assert_eq!(cache.get(&1), Some(11), "the update restarted the TTL");
    clock.advance(Duration::from_secs(2));
    // The entry expired: an insert is a new entry, and the old value is reported expired.
    assert_eq!(cache.try_insert(1, 12).ok(), Some(None));
    assert_eq!(cache.remove(&1), Some(12));
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            (1, 10, RemovalCause::Replaced),
            (1, 11, RemovalCause::Expired),
            (1, 12, RemovalCause::Explicit),
        ]
    );
}

#[test]
fn time_to_idle_is_extended_by_reads_and_capped_by_time_to_live() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .time_to_idle(Duration::from_secs(5))
        .time_to_live(Duration::from_secs(60))
        .clock(clock.clone())
        .build();
    cache.insert(1, 1);
    cache.insert(2, 2);
    for _ in 0..11 {
        clock.advance(Duration::from_secs(4));
        assert_eq!(cache.get(&1), Some(1), "read within the idle time");
    }
    // Key 2 was never read: idle for 44 s.
    assert_eq!(cache.get(&2), None);
    // Key 1 is read every 4 s, but time to live ends it at 60 s.
    clock.advance(Duration::from_secs(4));
    assert_eq!(cache.get(&1), Some(1), "48 s");
    clock.advance(Duration::from_secs(4));
    assert_eq!(cache.get(&1), Some(1), "52 s");
    clock.advance(Duration::from_secs(4));
    assert_eq!(cache.get(&1), Some(1), "56 s");
    clock.advance(Duration::from_secs(4));
    assert_eq!(cache.get(&1), None, "60 s");
    cache.validate().unwrap();
}

/// Each entry lives as many nanoseconds as its value says.
struct ValueIsTtl;
impl Expiry<u64, u64> for ValueIsTtl {
    fn expire_after_create(&self, _: &u64, value: &u64) -> Option<Duration> {
        (*value != u64::MAX).then(|| ns(*value))
    }
    fn expire_after_update(&self, _: &u64, value: &u64, _: Option<Duration>) -> Option<Duration> {
        self.expire_after_create(&0, value)
    }
}

#[test]
fn a_custom_expiry_gives_each_entry_its_own_time_to_live() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .expire_after(ValueIsTtl)
        .clock(clock.clone())
        .build();
    for k in 1..=100 {
        cache.insert(k, k * 1_000);
    }
    cache.insert(0, u64::MAX); // never expires
    for step in 1..=100u64 {
        clock.advance(ns(1_000));
        let now = step * 1_000;
        for k in 1..=100 {
            assert_eq!(
                cache.get(&k).is_some(),
                k * 1_000 > now,
                "key {k} at {now} ns"
            );
        }
    }
    assert_eq!(cache.get(&0), Some(u64::MAX));
    clock.advance(Duration::from_secs(3600 * 24 * 365));
    cache.run_pending_tasks();
    assert_eq!(cache.entry_count(), 1);
    cache.validate().unwrap();
}

/// A million entries with random lifetimes up to 10 minutes,
/// driven by the manual clock in random steps of up to 100 ms: every entry is reported
/// expired, once, never before its deadline, and at most one wheel tick (plus the step that
/// crossed it) after.
#[test]
fn a_million_entries_expire_within_one_tick_of_their_deadline() {
    let n: u64 = 1_000_000;
    let clock = ManualClock::new();
    let reported = Arc::new(Mutex::new(Vec::<(u64, u64, u64)>::with_capacity(
        n as usize,
    )));
    let (r, c) = (Arc::clone(&reported), clock.clone());
    let cache: Cache<u64, u64> = Cache::builder()
        .expire_after(ValueIsTtl)
        .clock(clock.clone())
        .eviction_listener(move |k: &u64, v: &u64, cause| {
            assert_eq!(cause, RemovalCause::Expired);
            r.lock().unwrap().push((*k, *v, c.now()));
        })
        .build();
    let mut rng = StdRng::seed_from_u64(7);
    for k in 0..n {
        cache.insert(k, rng.gen_range(1..600_000_000_000u64));
    }
    assert_eq!(cache.entry_count(), n);
    let mut worst_step = 0;
    // Bounded in time (the clock's 700 s) and in count: steps average 50 ms, so 700 s take
    // about 14,000 of them, far fewer than this.
    let max_steps = 100_000;
    for steps in 0.. {
        if cache.entry_count() == 0 {
            break;
        }
        assert!(
            steps < max_steps,
            "{steps} steps to {} ns, {} entries left",
            clock.now(),
            cache.entry_count()
        );
        let step = rng.gen_range(1..100_000_000u64);
        worst_step = worst_step.max(step);
        clock.advance(ns(step));
        cache.run_pending_tasks();
        assert!(
            clock.now() < 700_000_000_000,
            "entries outlived their deadlines"
        );
    }
    let reported = reported.lock().unwrap();
    assert_eq!(reported.len() as u64, n, "every entry reported once");
    let mut seen = vec![false; n as usize];
    for &(k, deadline, at) in reported.iter() {
        assert!(
            !std::mem::replace(&mut seen[k as usize], true),
            "key {k} twice"
        );
        assert!(at >= deadline, "key {k} expired early: {at} < {deadline}");
        assert!(
            at - deadline <= TICK + worst_step,
            "key {k} expired {} ns late",
            at - deadline
        );
    }
    cache.validate().unwrap();
}

#[test]
fn expired_entries_leave_before_live_ones_are_evicted() {
    let clock = ManualClock::new();
    let (log, listener) = logger();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(10)
        .time_to_live(Duration::from_secs(1))
        .clock(clock.clone())
        .eviction_listener(listener)
        .build();
    for k in 0..10 {
        cache.insert(k, k);
    }
    clock.advance(Duration::from_secs(3));
    for k in 10..20 {
        cache.insert(k, k);
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 10);
    assert!(log
        .iter()
        .all(|&(k, _, c)| k < 10 && c == RemovalCause::Expired));
    assert_eq!(cache.entry_count(), 10);
}

/// A clock the test sets to any value, including an earlier one: what a thread that read
/// the clock before another thread took the shard lock sees.
#[derive(Clone, Default)]
struct Scripted(Arc<std::sync::atomic::AtomicU64>);

impl Clock for Scripted {
    fn now(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Regression: a writer whose clock reading is older than the timer wheel's time (another
/// thread advanced it first) must not loop forever re-queuing what the wheel pops.
#[test]
fn a_stale_clock_reading_neither_hangs_nor_resurrects() {
    let what = "the cleanup after a stale clock reading";
    let (has_2, valid) = within(10, what, || {
        let clock = Scripted::default();
        let secs = |s: u64| s * 1_000_000_000;
        let cache: Cache<u64, u64> = Cache::builder()
            .shards(1)
            .time_to_live(Duration::from_secs(20))
            .clock(clock.clone())
            .build();
        clock
            .0
            .store(secs(150), std::sync::atomic::Ordering::SeqCst);
        cache.insert(1, 1); // the wheel is now at 150 s
        clock
            .0
            .store(secs(100), std::sync::atomic::Ordering::SeqCst);
        cache.insert(2, 2); // deadline 120 s: already due on the wheel
        cache.insert(3, 3); // its cleanup pops key 2
        (cache.contains_key(&2), cache.validate())
    });
    assert!(
        !has_2,
        "key 2's deadline (120 s) passed on the wheel's clock"
    );
    valid.unwrap();
}

/// Reads alone keep expiring entries, even when every hit is one the policy does not act on
/// (FIFO, and SIEVE's visited entries: such hits are only counted, not buffered).
#[test]
fn reads_that_the_policy_ignores_still_expire_other_entries() {
    for policy in [EvictionPolicy::Fifo, EvictionPolicy::Sieve] {
        let clock = ManualClock::new();
        let (log, listener) = logger();
        let cache: Cache<u64, u64> = Cache::builder()
            .max_capacity(100)
            .eviction_policy(policy)
            .shards(1)
            .time_to_live(Duration::from_secs(10))
            .clock(clock.clone())
            .eviction_listener(listener)
            .build();
        cache.insert(1, 10);
        clock.advance(Duration::from_secs(5));
        cache.insert(2, 20);
        // Key 1 expired at 10 s; key 2 lives until 15 s. From here on, only reads.
        clock.advance(ns(12_000_000_000 - 5_000_000_000 + 2 * TICK));
        assert!(clock.now() < 15_000_000_000);
        for _ in 0..1_000 {
            assert_eq!(cache.get(&2), Some(20));
        }
        assert_eq!(
            *log.lock().unwrap(),
            [(1, 10, RemovalCause::Expired)],
            "{policy}"
        );
    }
}
