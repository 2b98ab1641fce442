//! Model checks of the engine's core paths on one key with
//! [shuttle](https://github.com/awslabs/shuttle): insert vs remove vs expiry vs load, loads
//! vs loads, computes vs computes, biased readers vs a writer. Each test explores 10,000
//! random schedules of the real engine (its locks are shuttle's under `--cfg shuttle`, see
//! `src/sync.rs`) and runs the invariant checker after each. Shuttle bounds each schedule:
//! it fails one whose threads all block (a deadlock) and one that takes more than its default
//! 1,000,000 steps (a livelock), so no schedule here can hang.
//!
//! ```text
//! RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle \
//!     cargo test -p layercache-memory --release --test shuttle
//! ```
#![cfg(shuttle)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use layercache_memory::{Cache, ManualClock, Op, RemovalCause};
use shuttle::thread;

/// Schedules explored per test.
const SCHEDULES: usize = 10_000;

/// Counts of removals reported to the listener, by cause.
#[derive(Default)]
struct Reported {
    count: AtomicU64,
    sum: AtomicU64,
}

fn expiring_cache(clock: &ManualClock, reported: &Arc<Reported>) -> Cache<u64, u64> {
    let r = Arc::clone(reported);
    Cache::builder()
        .max_capacity(2)
        .shards(1)
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .eviction_listener(move |_: &u64, v: &u64, _: RemovalCause| {
            r.count.fetch_add(1, Ordering::Relaxed);
            r.sum.fetch_add(*v, Ordering::Relaxed);
        })
        .build()
}

/// Insert, remove, expiry and a load race on one key; every value stored is reported once
/// or still live.
fn insert_remove_expiry_and_load() {
    let clock = ManualClock::new();
    let reported = Arc::new(Reported::default());
    let cache = expiring_cache(&clock, &reported);
    cache.insert(1, 1);
    let handles = vec![
        {
            let cache = cache.clone();
            thread::spawn(move || {
                cache.insert(1, 10);
                10
            })
        },
        {
            let cache = cache.clone();
            thread::spawn(move || {
                cache.invalidate(&1);
                0
            })
        },
        {
            let (cache, clock) = (cache.clone(), clock.clone());
            thread::spawn(move || {
                clock.advance(Duration::from_secs(20));
                cache.run_pending_tasks();
                0
            })
        },
        {
            let cache = cache.clone();
            thread::spawn(move || {
                // Returns the value it stored, if its initializer ran.
                let ran = AtomicU64::new(0);
                cache.get_with(1, || {
                    ran.store(100, Ordering::Relaxed);
                    100
                });
                ran.load(Ordering::Relaxed)
            })
        },
    ];
    let values: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // An entry stored with a deadline already behind the wheel (its writer read the clock
    // before another thread moved it) is expired but not yet reported: clean up first.
    cache.run_pending_tasks();
    let stored: u64 = 1 + values.iter().sum::<u64>();
    let stored_n = 1 + values.iter().filter(|&&v| v != 0).count() as u64;
    cache.validate().unwrap();
    // Every stored value is reported once or still live.
    let live: u64 = cache.iter().map(|(_, v)| v).sum();
    let live_n = cache.iter().count() as u64;
    assert!(live_n <= 1);
    assert_eq!(reported.sum.load(Ordering::Relaxed) + live, stored);
    assert_eq!(reported.count.load(Ordering::Relaxed) + live_n, stored_n);
}

#[test]
fn insert_remove_expiry_and_load_on_one_key() {
    shuttle::check_random(insert_remove_expiry_and_load, SCHEDULES);
}

/// Readers on the shard lock's biased path race a writer: a reader never sees a key's value
/// go back, and the shard's accounting holds (the lock asserts, under shuttle, that no
/// biased reader is inside while a writer holds the shard).
fn biased_readers_and_a_writer() {
    let cache: Cache<u64, u64> = Cache::builder().max_capacity(4).shards(1).build();
    cache.insert(1, 0);
    cache.insert(2, 0);
    // Reads on the lock after the inserts set the reader bias again (after 32 of them).
    for _ in 0..40 {
        assert_eq!(cache.get(&1), Some(0));
    }
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let cache = cache.clone();
            thread::spawn(move || {
                let mut last = 0;
                for _ in 0..3 {
                    let v = cache.get(&1).expect("key 1 is never removed");
                    assert!(v >= last, "read {v} after {last}");
                    last = v;
                    cache.get(&2);
                }
            })
        })
        .collect();
    let writer = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.insert(1, 1);
            cache.invalidate(&2);
            cache.insert(1, 2);
        })
    };
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    cache.run_pending_tasks();
    cache.validate().unwrap();
    assert_eq!(cache.get(&1), Some(2));
    assert_eq!(cache.entry_count(), 1);
}

#[test]
fn biased_readers_race_a_writer() {
    shuttle::check_random(biased_readers_and_a_writer, SCHEDULES);
}

#[test]
fn concurrent_loads_run_one_initializer() {
    shuttle::check_random(
        || {
            let cache: Cache<u64, u64> = Cache::builder().shards(1).build();
            let calls = Arc::new(AtomicU64::new(0));
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let (cache, calls) = (cache.clone(), Arc::clone(&calls));
                    thread::spawn(move || {
                        cache.get_with(7, || {
                            calls.fetch_add(1, Ordering::Relaxed);
                            thread::yield_now();
                            49
                        })
                    })
                })
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), 49);
            }
            assert_eq!(calls.load(Ordering::Relaxed), 1);
            cache.validate().unwrap();
        },
        SCHEDULES,
    );
}

#[test]
fn a_panicking_load_hands_over() {
    shuttle::check_random(
        || {
            let cache: Cache<u64, u64> = Cache::builder().shards(1).build();
            let calls = Arc::new(AtomicU64::new(0));
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let (cache, calls) = (cache.clone(), Arc::clone(&calls));
                    thread::spawn(move || {
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            cache.get_with(7, || {
                                if calls.fetch_add(1, Ordering::Relaxed) == 0 {
                                    panic!("first load fails");
                                }
                                49
                            })
                        }))
                        .ok()
                    })
                })
                .collect();
            let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(got.iter().filter(|g| g.is_none()).count(), 1);
            assert!(got.iter().flatten().all(|&v| v == 49));
            cache.validate().unwrap();
        },
        SCHEDULES,
    );
}

#[test]
fn computes_lose_no_update() {
    shuttle::check_random(
        || {
            let cache: Cache<u64, u64> = Cache::builder().shards(1).build();
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let cache = cache.clone();
                    thread::spawn(move || {
                        for _ in 0..2 {
                            cache.and_compute_with(1, |v| Op::Put(v.map_or(1, |n| n + 1)));
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(cache.get(&1), Some(6));
            cache.validate().unwrap();
        },
        SCHEDULES,
    );
}
