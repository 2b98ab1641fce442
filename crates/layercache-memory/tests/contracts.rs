//! Contracts of the public documentation, each pinned by the minimal reproduction of a bug it
//! once had: a growing replace evicting itself, weightless entries evicted for size, a
//! zero-capacity cache storing weightless entries, `invalidate_all` not being panic-safe,
//! and values dropped under the shard lock (a re-entrant `Drop` deadlocked).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use layercache_memory::{Cache, EvictionPolicy};

fn weighted(policy: EvictionPolicy, cap: u64) -> Cache<&'static str, u32> {
    Cache::builder()
        .max_capacity(cap)
        .shards(1)
        .eviction_policy(policy)
        .weigher(|_, v: &u32| *v)
        .build()
}

/// `insert` docs: "Use `try_insert` to learn whether the entry was stored." A replace that
/// grows the entry evicts until it fits, and FIFO / S3-FIFO pick the replaced entry itself:
/// `try_insert` reports `Ok(Some(old))` but the new value is gone (while the other entry,
/// which would have made room, stays).
#[test]
fn try_insert_ok_means_the_value_is_stored_after_a_growing_replace() {
    for policy in EvictionPolicy::ALL {
        let cache = weighted(policy, 10);
        cache.insert("a", 5);
        cache.insert("b", 5);
        let r = cache.try_insert("a", 6);
        assert!(matches!(r, Ok(Some(5))), "{policy}");
        assert_eq!(
            cache.get("a"),
            Some(6),
            "{policy}: try_insert returned Ok but the value is not stored"
        );
    }
}

/// `CacheBuilder::weigher` docs: "A weight of 0 is allowed: such entries are never evicted
/// for size." Every policy evicts them like any other entry (and evicting them frees nothing).
#[test]
fn weightless_entries_are_never_evicted_for_size() {
    for policy in EvictionPolicy::ALL {
        let cache = weighted(policy, 2);
        cache.insert("zero", 0);
        cache.insert("b", 2);
        cache.insert("c", 1);
        assert!(cache.contains_key("c"), "{policy}");
        assert!(
            cache.contains_key("zero"),
            "{policy}: the weight-0 entry was evicted for size"
        );
    }
}

/// `CacheBuilder::max_capacity` docs: "Zero gives a cache that stores nothing." With a
/// weigher, weight-0 entries are stored (`0 + 0 <= 0`).
#[test]
fn zero_capacity_stores_nothing_even_weightless_entries() {
    for policy in EvictionPolicy::ALL {
        let cache = weighted(policy, 0);
        let _ = cache.try_insert("zero", 0);
        assert_eq!(cache.entry_count(), 0, "{policy}");
        assert_eq!(cache.get("zero"), None, "{policy}");
    }
}

/// A value whose `Drop` panics during `invalidate_all`: `Shard::clear` clears the table and
/// the slab, then panics before `policy.clear()` and `weight = 0`. The shard is left with
/// policy lists pointing into an empty slab: `validate()` fails, and later inserts into the
/// shard panic (index out of bounds) once eviction starts. (parking_lot mutexes do not
/// poison, so the cache stays reachable in this broken state.)
#[test]
fn invalidate_all_survives_a_panicking_drop() {
    struct Bomb(bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            if self.0 && !std::thread::panicking() {
                panic!("boom");
            }
        }
    }
    for policy in EvictionPolicy::ALL {
        let cache: Cache<u32, std::sync::Arc<Bomb>> = Cache::builder()
            .max_capacity(4)
            .shards(1)
            .eviction_policy(policy)
            .build();
        cache.insert(1, Bomb(false).into());
        cache.insert(2, Bomb(true).into());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.invalidate_all()));
        assert!(r.is_err(), "the Drop did not panic");
        assert_eq!(cache.validate(), Ok(()), "{policy}: shard corrupted");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for k in 10..20 {
                cache.insert(k, Bomb(false).into());
            }
        }));
        assert!(r.is_ok(), "{policy}: inserts panic after the failed clear");
        assert_eq!(cache.entry_count(), 4, "{policy}");
    }
}

/// Values evicted by an insert (and cleared by `invalidate_all`) are dropped while the shard
/// lock is held, so a value whose `Drop` touches the same cache (here `contains_key` of
/// another key of the same one-shard cache) deadlocks. `remove` and rejected inserts already
/// drop outside the lock (`try_insert` drops `old` explicitly after unlocking).
#[test]
fn evicted_values_are_dropped_outside_the_shard_lock() {
    static CACHE: OnceLock<Cache<u32, Reenter>> = OnceLock::new();
    static ARMED: AtomicBool = AtomicBool::new(false);
    struct Reenter;
    impl Drop for Reenter {
        fn drop(&mut self) {
            if ARMED.load(Ordering::Relaxed) {
                let _ = CACHE.get().unwrap().contains_key(&999);
            }
        }
    }
    let cache = CACHE.get_or_init(|| {
        Cache::builder()
            .max_capacity(1)
            .shards(1)
            .eviction_policy(EvictionPolicy::Lru)
            .build()
    });
    ARMED.store(true, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        cache.insert(1, Reenter);
        let _ = cache.remove(&1); // dropped after unlocking: fine
        cache.insert(1, Reenter);
        cache.insert(2, Reenter); // evicts 1 and drops it under the lock
        tx.send(()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "deadlock: an evicted value's Drop re-entered the cache under the shard lock"
    );
}
