//! Concurrency tests: several threads on overlapping keys over several shards, for every
//! policy, weighted and not. Checks the engine's invariants while running (per shard, under
//! its lock) and when quiescent, that a read only ever returns a value written for that key,
//! and that reads of one key never go back in time. Each test body runs under
//! [`common::within`], and every thread that waits for another one to finish waits until a
//! [`common::Deadline`] at most, so a hang or a lost wake-up fails the test instead of
//! stalling the run.

mod common;

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use common::{within, Deadline};
use layercache_memory::{Cache, CacheBuilder, EvictionPolicy, NotAdmitted};

type Fixed = BuildHasherDefault<DefaultHasher>;

// Compile-time: a cache (and its builder) can be shared and sent between threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cache<u64, u64>>();
    assert_send_sync::<Cache<String, String>>();
    assert_send_sync::<Cache<String, Arc<Vec<u8>>>>();
    assert_send_sync::<Cache<Arc<str>, Arc<str>, Fixed>>();
    assert_send_sync::<Cache<(u32, u32), Vec<u8>>>();
    assert_send_sync::<CacheBuilder<u64, u64>>();
    assert_send_sync::<NotAdmitted<u64, u64>>();
};

/// xorshift64*: cheap per-thread randomness.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A value names its key in the high 32 bits; the low bits are the writer and a counter.
fn value(key: u64, thread: u64, n: u64) -> u64 {
    key << 32 | thread << 24 | (n & 0xFF_FFFF)
}

fn key_of(v: u64) -> u64 {
    v >> 32
}

/// The weigher of the weighted caches: 1..=8 from the value, 0 for some values.
fn weigh(_: &u64, v: &u64) -> u32 {
    match v & 0xF {
        0 => 0,
        x => (x as u32 % 8) + 1,
    }
}

fn build(policy: EvictionPolicy, cap: u64, shards: usize, weighted: bool) -> Cache<u64, u64> {
    let b = Cache::builder()
        .max_capacity(cap)
        .eviction_policy(policy)
        .shards(shards);
    if weighted {
        b.weigher(weigh).build()
    } else {
        b.build()
    }
}

/// Quiescent checks: invariants, counts and weights agree with `iter()`, capacity holds,
/// every stored value belongs to its key.
fn check_quiescent(cache: &Cache<u64, u64>, weighted: bool, what: &str) {
    if let Err(e) = cache.validate() {
        panic!("{what}: {e}");
    }
    let items: Vec<(u64, u64)> = cache.iter().collect();
    assert_eq!(
        cache.entry_count(),
        items.len() as u64,
        "{what}: entry_count"
    );
    let weight: u64 = items
        .iter()
        .map(|(k, v)| if weighted { u64::from(weigh(k, v)) } else { 1 })
        .sum();
    assert_eq!(cache.weighted_size(), weight, "{what}: weighted_size");
    assert!(
        cache.weighted_size() <= cache.max_capacity(),
        "{what}: {} over capacity {}",
        cache.weighted_size(),
        cache.max_capacity()
    );
    for &(k, v) in &items {
        assert_eq!(key_of(v), k, "{what}: value {v:#x} stored under key {k}");
        assert!(
            cache.contains_key(&k),
            "{what}: iter() yields absent key {k}"
        );
    }
    let mut keys: Vec<u64> = items.iter().map(|&(k, _)| k).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), items.len(), "{what}: a key is stored twice");
}

const THREADS: u64 = 6;

/// How long a thread waits for others to finish, in seconds. A whole test here takes seconds
/// (the slowest, `more_readers_than_reader_slots`, 5-12 s on a loaded 2-core machine), so
/// only a hang reaches this.
const WAIT_SECS: u64 = 45;
/// The bound of each test body (see [`within`]): beyond [`WAIT_SECS`], so that a thread
/// that waits too long fails first, saying what it waited for.
const BODY_SECS: u64 = 60;

/// `THREADS` workers do random gets, inserts, replaces and removes (and rarely
/// `invalidate_all`) on overlapping keys while a checker thread validates shard by shard.
fn hammer(policy: EvictionPolicy, weighted: bool, ops_per_thread: u64) {
    let what = format!("{policy} weighted={weighted}");
    let cap = 300;
    let cache = build(policy, cap, 8, weighted);
    let keys = 1024;
    let deadline = Deadline::after(WAIT_SECS);
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(THREADS as usize + 2));
    let checker = {
        let (cache, done, start, what) = (cache.clone(), done.clone(), start.clone(), what.clone());
        thread::spawn(move || {
            start.wait();
            let mut rounds = 0u64;
            // At least one round, even if the workers finish before this thread runs.
            while rounds == 0 || !done.load(Ordering::Acquire) {
                deadline.check(format_args!(
                    "the workers to finish ({what}; checker, round {rounds})"
                ));
                if let Err(e) = cache.validate() {
                    panic!("{what}: while running: {e}");
                }
                // Each shard is within its share whenever its lock is free, so the sum of
                // shards read one after the other is too.
                let size = cache.weighted_size();
                assert!(size <= cap, "{what}: while running: size {size} > {cap}");
                for (k, v) in cache.iter() {
                    assert_eq!(key_of(v), k, "{what}: iter() value {v:#x} under key {k}");
                }
                rounds += 1;
                thread::yield_now();
            }
            rounds
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, start, what) = (cache.clone(), start.clone(), what.clone());
            thread::spawn(move || {
                let mut rng = Rng::new(t + 1);
                let (mut hits, mut stored) = (0u64, 0u64);
                start.wait();
                for n in 0..ops_per_thread {
                    // Skewed keys: half the operations go to a hot eighth of the key space.
                    let k = if rng.below(2) == 0 {
                        rng.below(keys / 8)
                    } else {
                        rng.below(keys)
                    };
                    match rng.below(100) {
                        0..=44 => {
                            if let Some(v) = cache.get(&k) {
                                assert_eq!(key_of(v), k, "{what}: get({k}) = {v:#x}");
                                hits += 1;
                            }
                        }
                        45..=79 => {
                            if cache.try_insert(k, value(k, t, n)).is_ok() {
                                stored += 1;
                            }
                        }
                        80..=89 => {
                            // Replace a present key (exercises on_update and weight changes).
                            if let Some(old) = cache.get(&k) {
                                assert_eq!(key_of(old), k, "{what}");
                                if let Ok(Some(prev)) = cache.try_insert(k, value(k, t, n)) {
                                    assert_eq!(key_of(prev), k, "{what}");
                                }
                            }
                        }
                        90..=98 => {
                            if let Some(v) = cache.remove(&k) {
                                assert_eq!(key_of(v), k, "{what}: remove({k}) = {v:#x}");
                            }
                        }
                        _ => {
                            if rng.below(20) == 0 {
                                cache.invalidate_all();
                            } else {
                                let _ = cache.contains_key(&k);
                            }
                        }
                    }
                }
                (hits, stored)
            })
        })
        .collect();
    start.wait();
    let (mut hits, mut stored) = (0, 0);
    for w in workers {
        let (h, s) = w.join().unwrap();
        hits += h;
        stored += s;
    }
    done.store(true, Ordering::Release);
    let rounds = checker.join().unwrap();
    assert!(rounds > 0, "{what}: the checker never ran");
    // The workload must actually hit and store, or the checks above prove little.
    assert!(hits > ops_per_thread / 10, "{what}: only {hits} hits");
    assert!(stored > ops_per_thread, "{what}: only {stored} stored");
    check_quiescent(&cache, weighted, &what);
    assert!(cache.entry_count() > 0, "{what}: empty after the run");

    // The cache keeps working after the storm: exactly fills, then empties.
    cache.invalidate_all();
    check_quiescent(&cache, weighted, &what);
    assert_eq!(cache.entry_count(), 0, "{what}");
    for k in 0..keys {
        cache.insert(k, value(k, 99, k));
    }
    check_quiescent(&cache, weighted, &what);
}

#[test]
fn concurrent_mixed_ops_unweighted() {
    for policy in EvictionPolicy::ALL {
        let what = format!("mixed ops on {policy}, unweighted");
        within(BODY_SECS, &what, move || hammer(policy, false, 12_000));
    }
}

#[test]
fn concurrent_mixed_ops_weighted() {
    for policy in EvictionPolicy::ALL {
        let what = format!("mixed ops on {policy}, weighted");
        within(BODY_SECS, &what, move || hammer(policy, true, 12_000));
    }
}

/// Checks that `v` (key in the high 32 bits, version in the low) was read under key `k`
/// and that `k`'s version did not go back since the last read (`seen`), then records it.
fn check_version(seen: &mut [u64], k: u64, v: u64, what: &str) {
    assert_eq!(v >> 32, k, "{what}: get({k}) = {v:#x}");
    let version = v & 0xFFFF_FFFF;
    let last = seen[k as usize];
    assert!(
        version >= last,
        "{what}: key {k} went back from version {last} to {version}"
    );
    seen[k as usize] = version;
}

/// Each key has one writer that writes increasing versions (and sometimes removes it); the
/// other threads read. Since operations on a key are linearizable, a reader never sees a
/// version older than one it saw before, and every value belongs to its key.
#[test]
fn reads_of_a_key_never_go_back_in_time() {
    const KEYS: u64 = 256;
    const ROUNDS: u64 = 150;
    for policy in EvictionPolicy::ALL {
        let what = format!("versioned reads and writes on {policy}");
        within(BODY_SECS, &what, move || {
            // Capacity well below the key count: eviction and slab relocation run constantly.
            let cache: Cache<u64, u64> = build(policy, 96, 4, false);
            let writers = 3u64;
            let readers = 3u64;
            let start = Arc::new(Barrier::new((writers + readers) as usize));
            let deadline = Deadline::after(WAIT_SECS);
            let done = Arc::new(AtomicBool::new(false));
            let mut handles = Vec::new();
            for w in 0..writers {
                let (cache, start) = (cache.clone(), start.clone());
                handles.push(thread::spawn(move || {
                    start.wait();
                    let mut rng = Rng::new(100 + w);
                    for version in 1..=ROUNDS {
                        for k in (w..KEYS).step_by(writers as usize) {
                            if rng.below(50) == 0 {
                                cache.invalidate(&k);
                            } else {
                                cache.insert(k, k << 32 | version);
                            }
                        }
                    }
                    0u64
                }));
            }
            for r in 0..readers {
                let (cache, start, done) = (cache.clone(), start.clone(), done.clone());
                handles.push(thread::spawn(move || {
                    start.wait();
                    let mut rng = Rng::new(200 + r);
                    let mut seen = vec![0u64; KEYS as usize];
                    let (mut hits, mut reads_after_done) = (0u64, 0u64);
                    // Keep reading while the writers run, then 2,000 more times once they are done
                    // (on 2 cores a reader may run entirely before or after the writers; reads
                    // after the writers finish find about 96 resident keys, so some must hit).
                    while reads_after_done < 2_000 {
                        if done.load(Ordering::Acquire) {
                            reads_after_done += 1;
                        } else {
                            deadline.check(format_args!(
                                "the writers to finish ({policy}; reader {r})"
                            ));
                        }
                        let k = rng.below(KEYS);
                        if let Some(v) = cache.get(&k) {
                            check_version(&mut seen, k, v, policy.name());
                            hits += 1;
                        }
                    }
                    hits
                }));
            }
            let readers_handles = handles.split_off(writers as usize);
            for h in handles {
                h.join().unwrap();
            }
            done.store(true, Ordering::Release);
            let hits: u64 = readers_handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert!(hits > 0, "{policy}: readers never hit");
            check_quiescent(&cache, false, policy.name());
            // Quiescent: whatever is stored is the last version written (or the key was removed
            // in its last round and is absent).
            for (k, v) in cache.iter() {
                assert_eq!(v >> 32, k);
                let version = v & 0xFFFF_FFFF;
                assert_eq!(
                    version, ROUNDS,
                    "{policy}: key {k} holds stale version {version}"
                );
            }
        });
    }
}

/// Borrowed lookups (`&str` for `String` keys) and `Arc` values from several threads.
#[test]
fn string_keys_and_shared_values_across_threads() {
    for policy in EvictionPolicy::ALL {
        let what = format!("string keys on {policy}");
        within(BODY_SECS, &what, move || {
            let cache: Cache<String, Arc<str>> = Cache::builder()
                .max_capacity(200)
                .eviction_policy(policy)
                .shards(4)
                .weigher(|k: &String, v: &Arc<str>| (k.len() + v.len()) as u32 / 8)
                .build();
            thread::scope(|s| {
                for t in 0..4u64 {
                    let cache = &cache;
                    s.spawn(move || {
                        let mut rng = Rng::new(300 + t);
                        for _ in 0..3_000 {
                            let k = format!("key-{}", rng.below(400));
                            if rng.below(3) == 0 {
                                let v: Arc<str> =
                                    format!("{k}={}", "x".repeat(rng.below(40) as usize)).into();
                                cache.insert(k, v);
                            } else if let Some(v) = cache.get(k.as_str()) {
                                assert!(v.starts_with(&format!("{k}=")), "{policy}: {k} -> {v}");
                            }
                        }
                    });
                }
            });
            cache.validate().unwrap();
            let items: Vec<_> = cache.iter().collect();
            assert_eq!(items.len() as u64, cache.entry_count());
            let weight: u64 = items
                .iter()
                .map(|(k, v)| ((k.len() + v.len()) / 8) as u64)
                .sum();
            assert_eq!(weight, cache.weighted_size(), "{policy}");
            assert!(cache.weighted_size() <= 200, "{policy}");
            for (k, v) in items {
                assert!(v.starts_with(&format!("{k}=")), "{policy}");
            }
        });
    }
}

/// A clone is a handle to the same cache, also when it is dropped on another thread.
#[test]
fn clones_share_one_cache() {
    within(
        BODY_SECS,
        "inserts through a clone on another thread",
        || {
            let cache: Cache<u64, u64, Fixed> = Cache::builder()
                .max_capacity(1000)
                .shards(4)
                .hasher(Fixed::default())
                .build();
            let c2 = cache.clone();
            thread::spawn(move || {
                for k in 0..100 {
                    c2.insert(k, k * 2);
                }
            })
            .join()
            .unwrap();
            assert_eq!(cache.entry_count(), 100);
            assert_eq!(cache.get(&7), Some(14));
        },
    );
}

/// More reader threads than the shard lock has reader slots (16): threads whose numbers
/// share a slot take turns on it or fall back to the plain lock, while a writer keeps
/// clearing the reader bias. Reads never go back in time, and every value belongs to its key.
#[test]
fn more_readers_than_reader_slots() {
    const KEYS: u64 = 64;
    // Few rounds: 24 busy readers on a machine of few cores leave the writer a small share
    // of the CPU (the readers never wait for it while the lock is biased).
    const ROUNDS: u64 = 20;
    const READERS: u64 = 24;
    within(BODY_SECS, "24 readers and a writer", || {
        let cache: Cache<u64, u64> = build(EvictionPolicy::WTinyLfu, 2 * KEYS, 1, false);
        for k in 0..KEYS {
            cache.insert(k, k << 32);
        }
        let deadline = Deadline::after(WAIT_SECS);
        let done = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(READERS as usize + 1));
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (cache, done, start) = (cache.clone(), done.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    let mut rng = Rng::new(300 + r);
                    let mut seen = vec![0u64; KEYS as usize];
                    let mut reads_after_done = 0;
                    while reads_after_done < 500 {
                        if done.load(Ordering::Acquire) {
                            reads_after_done += 1;
                        } else {
                            deadline
                                .check(format_args!("the writer's {ROUNDS} rounds (reader {r})"));
                        }
                        let k = rng.below(KEYS);
                        let v = cache.get(&k).expect("no key is ever removed or evicted");
                        check_version(&mut seen, k, v, "more readers than slots");
                    }
                })
            })
            .collect();
        start.wait();
        for version in 1..=ROUNDS {
            for k in 0..KEYS {
                cache.insert(k, k << 32 | version);
            }
            // Room for the readers to set the bias again before the next round clears it.
            thread::yield_now();
        }
        done.store(true, Ordering::Release);
        for r in readers {
            r.join().unwrap();
        }
        check_quiescent(&cache, false, "more readers than slots");
        for k in 0..KEYS {
            assert_eq!(cache.get(&k), Some(k << 32 | ROUNDS));
        }
    });
}
