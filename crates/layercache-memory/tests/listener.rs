//! The eviction listener: every value that leaves the cache is reported exactly once, with
//! the right cause, including under concurrent load; and the statistics agree with it.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::within;
use layercache_memory::{Cache, EvictionPolicy, ManualClock, RemovalCause};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Reports = Arc<Mutex<Vec<(u64, RemovalCause)>>>;

/// One shard of weight 2 under LRU, so that the victim of each eviction is known; a value
/// weighs its last digit. Each removal is reported once, in order, with its cause, and the
/// statistics count each cause apart.
#[test]
fn each_cause_is_reported() {
    use RemovalCause::{Expired, Explicit, Replaced, Size};
    let clock = ManualClock::new();
    let reports: Reports = Arc::default();
    let r = Arc::clone(&reports);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(2)
        .shards(1)
        .eviction_policy(EvictionPolicy::Lru)
        .weigher(|_, v: &u64| (*v % 10) as u32)
        .time_to_live(Duration::from_secs(5))
        .clock(clock.clone())
        .eviction_listener(move |_: &u64, v: &u64, c| r.lock().unwrap().push((*v, c)))
        .record_stats()
        .build();
    cache.insert(1, 11);
    cache.insert(1, 21); // replaces 11
    cache.insert(2, 31); // weights 1 + 1 fit in 2
    cache.insert(5, 61); // 1 + 1 + 1 do not: evicts the least recently used, 21
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.weighted_size(), 2);
    assert!(cache.try_insert(3, 43).is_err()); // weight 3 > capacity 2: not admitted
    cache.invalidate(&1); // already evicted: nothing to report
    cache.invalidate(&2);
    cache.invalidate(&5);
    cache.insert(4, 51);
    clock.advance(Duration::from_secs(10));
    cache.run_pending_tasks();
    let got = reports.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            (11, Replaced),
            (21, Size),
            (43, Size),
            (31, Explicit),
            (61, Explicit),
            (51, Expired)
        ]
    );
    let stats = cache.stats();
    let count = |c| got.iter().filter(|r| r.1 == c).count() as u64;
    assert_eq!(stats.replacements, count(Replaced));
    assert_eq!(stats.size_evictions, count(Size));
    assert_eq!(stats.explicit_removals, count(Explicit));
    assert_eq!(stats.expirations, count(Expired));
    assert_eq!(
        stats.insertions, 5,
        "11, 21, 31, 61 and 51; 43 was not stored"
    );
}

/// Four threads insert unique values, read, remove and invalidate at random over a small
/// expiring cache while a fifth moves the clock. At the end every inserted value was either
/// reported exactly once or is still in the cache, values handed back by `remove` were
/// reported as `Explicit`, and the statistics count the same removals.
#[test]
fn every_removal_is_reported_once_under_concurrent_load() {
    within(60, "4 workers and a ticker", every_removal_is_reported_once);
}

/// The body of [`every_removal_is_reported_once_under_concurrent_load`].
fn every_removal_is_reported_once() {
    let clock = ManualClock::new();
    let reports: Reports = Arc::default();
    let r = Arc::clone(&reports);
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(64)
        .shards(4)
        .time_to_live(Duration::from_secs(2))
        .clock(clock.clone())
        .eviction_listener(move |_: &u64, v: &u64, c| r.lock().unwrap().push((*v, c)))
        .record_stats()
        .build();
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let cache = cache.clone();
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                let (mut inserted, mut removed) = (Vec::new(), Vec::new());
                for i in 0..20_000u64 {
                    let key = rng.gen_range(0..200);
                    match rng.gen_range(0..10) {
                        0..=3 => {
                            let value = (t << 32) | i;
                            cache.insert(key, value);
                            inserted.push(value);
                        }
                        4..=7 => drop(cache.get(&key)),
                        8 => removed.extend(cache.remove(&key)),
                        _ => cache.invalidate(&key),
                    }
                }
                (inserted, removed)
            })
        })
        .collect();
    // The ticker moves the clock (at most 100 s of it, as it used to) while the workers run;
    // however the threads are scheduled, the final advance below expires whatever is still
    // live, so every removal cause occurs.
    let done = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (clock, done) = (clock.clone(), Arc::clone(&done));
        thread::spawn(move || {
            for _ in 0..2_000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                clock.advance(Duration::from_millis(50));
                thread::yield_now();
            }
        })
    };
    let (mut inserted, mut removed) = (Vec::new(), Vec::new());
    for w in workers {
        let (i, r) = w.join().unwrap();
        inserted.extend(i);
        removed.extend(r);
    }
    done.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    cache.run_pending_tasks();
    cache.validate().unwrap();

    let mut cause_of = HashMap::new();
    for &(v, c) in reports.lock().unwrap().iter() {
        assert!(
            cause_of.insert(v, c).is_none(),
            "value {v:#x} reported twice"
        );
    }
    let live: Vec<u64> = cache.iter().map(|(_, v)| v).collect();
    for v in &live {
        assert!(!cause_of.contains_key(v), "live value {v:#x} was reported");
    }
    assert_eq!(
        cause_of.len() + live.len(),
        inserted.len(),
        "reported + live = inserted"
    );
    for v in &inserted {
        assert!(
            cause_of.contains_key(v) || live.contains(v),
            "value {v:#x} lost"
        );
    }
    for v in &removed {
        assert_eq!(cause_of.get(v), Some(&RemovalCause::Explicit));
    }

    // Past every deadline: each value still live is reported once, as expired.
    clock.advance(Duration::from_secs(3));
    cache.run_pending_tasks();
    assert_eq!(cache.iter().count(), 0);
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), inserted.len(), "every value reported once");
    let expired_now: Vec<u64> = reports[cause_of.len()..].iter().map(|r| r.0).collect();
    assert!(reports[cause_of.len()..]
        .iter()
        .all(|r| r.1 == RemovalCause::Expired));
    let mut expected = live.clone();
    expected.sort_unstable();
    let mut got = expired_now;
    got.sort_unstable();
    assert_eq!(got, expected, "the values live before the advance expired");

    let count = |c| reports.iter().filter(|r| r.1 == c).count() as u64;
    for c in [
        RemovalCause::Expired,
        RemovalCause::Replaced,
        RemovalCause::Size,
    ] {
        assert!(
            count(c) > 0,
            "no {c} removal happened; the test is too weak"
        );
    }
    let stats = cache.stats();
    assert_eq!(stats.expirations, count(RemovalCause::Expired));
    assert_eq!(stats.explicit_removals, count(RemovalCause::Explicit));
    assert_eq!(stats.replacements, count(RemovalCause::Replaced));
    assert_eq!(stats.size_evictions, count(RemovalCause::Size));
    assert_eq!(stats.insertions, inserted.len() as u64);
}
