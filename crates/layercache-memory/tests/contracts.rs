//! Contracts of the public documentation, each pinned by the minimal reproduction of a bug it
//! once had: a growing replace evicting itself, weightless entries evicted for size, a
//! zero-capacity cache storing weightless entries, `invalidate_all` not being panic-safe,
//! and values dropped under the shard lock (a re-entrant `Drop` deadlocked).

mod common;

use std::time::Duration;

use common::within;
use layercache_memory::{Cache, EvictionPolicy, ManualClock, Op};

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
/// `get_map` is `get` without the clone: same answers, same hit and miss counts, and a hit
/// counts as an access for the policy (a scan of new keys evicts the key read by `get_map`
/// last under LRU, never first).
#[test]
fn get_map_answers_and_counts_as_get_does() {
    let cache: Cache<u32, String> = Cache::builder()
        .max_capacity(3)
        .eviction_policy(EvictionPolicy::Lru)
        .record_stats()
        .build();
    for k in 1..=3 {
        cache.insert(k, format!("v{k}"));
    }
    assert_eq!(cache.get_map(&1, String::len), Some(2));
    assert_eq!(cache.get_map(&9, String::len), None);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    // 1 was read last: LRU evicts 2, then 3, before it.
    cache.insert(4, "v4".into());
    cache.insert(5, "v5".into());
    cache.run_pending_tasks();
    assert!(
        cache.contains_key(&1),
        "the get_map hit was recorded with the policy"
    );
    assert!(!cache.contains_key(&2) && !cache.contains_key(&3));
}

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

/// Crate docs: "Entries evicted, replaced, removed or cleared are dropped after their shard's
/// lock is released, so a value's `Drop` may use the cache." Once untrue of evictions (an
/// insert that evicted dropped the victim under the lock, and a `Drop` that used the cache
/// deadlocked), so every path that drops values is run here, under every policy, with
/// values whose `Drop` writes to the same one-shard cache: dropped under that shard's lock
/// (on the same thread), such a value deadlocks its case, which then fails on a timeout.
#[test]
fn values_are_dropped_outside_the_shard_lock_on_every_path_and_policy() {
    for policy in EvictionPolicy::ALL {
        for &(path, scenario) in DROP_PATHS {
            let case = format!("{policy}, {path}");
            let what = format!(
                "{case} (a hang there means that a value was dropped under the shard lock, \
                 where its Drop, which uses the cache, deadlocked)"
            );
            let seen = within(10, &what, move || drop_case(policy, scenario));
            let ids = &seen.dropped;
            assert_eq!(ids.len(), seen.want, "{case}: values dropped: {ids:?}");
            let (dropped, live) = (seen.dropped.len(), seen.live);
            assert_eq!(
                dropped + live,
                seen.made,
                "{case}: each value live or dropped"
            );
        }
    }
}

/// What one case of the test above saw.
struct Seen {
    /// How many values the scenario drops.
    want: usize,
    /// The ids of the values it dropped.
    dropped: Vec<u32>,
    /// How many values were left in the cache.
    live: usize,
    /// How many values it made.
    made: usize,
}

/// A value whose `Drop` uses the cache it was stored in (see [`CASE`]) and records its id.
struct Reenter {
    id: u32,
    weight: u32,
}

type Val = std::sync::Arc<Reenter>;
type DropCache = Cache<u32, Val>;

/// A key no case stores: a value's `Drop` invalidates it, which takes the shard's write lock.
const NEVER: u32 = u32::MAX;

type Cell<T> = std::cell::RefCell<T>;

thread_local! {
    /// The cache of the case running on this thread, for the values' `Drop`.
    static CASE: Cell<Option<DropCache>> = const { Cell::new(None) };
    /// The ids of the values dropped on this thread, and how many values were made.
    static DROPPED: Cell<(Vec<u32>, usize)> = const { Cell::new((Vec::new(), 0)) };
}

impl Drop for Reenter {
    fn drop(&mut self) {
        if let Some(cache) = CASE.try_with(|c| c.borrow().clone()).ok().flatten() {
            cache.invalidate(&NEVER);
        }
        let _ = DROPPED.try_with(|d| d.borrow_mut().0.push(self.id));
    }
}

/// A new value of weight `weight`.
fn val(id: u32, weight: u32) -> Val {
    DROPPED.with(|d| d.borrow_mut().1 += 1);
    std::sync::Arc::new(Reenter { id, weight })
}

/// Runs one scenario on this thread, over a fresh one-shard cache of weight 2 whose entries
/// live 10 s on a manual clock.
fn drop_case(policy: EvictionPolicy, scenario: fn(&DropCache, &ManualClock) -> usize) -> Seen {
    let clock = ManualClock::new();
    let cache: DropCache = Cache::builder()
        .max_capacity(2)
        .shards(1)
        .eviction_policy(policy)
        .weigher(|_, v: &Val| v.weight)
        .time_to_live(Duration::from_secs(10))
        .clock(clock.clone())
        .build();
    CASE.with(|c| *c.borrow_mut() = Some(cache.clone()));
    let want = scenario(&cache, &clock);
    let live = cache.entry_count() as usize;
    let (dropped, made) = DROPPED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    // The rest is dropped with the cache, which no Drop uses any more.
    let case = CASE.with(|c| c.borrow_mut().take());
    drop((case, cache));
    Seen {
        want,
        dropped,
        live,
        made,
    }
}

/// Each path that drops values: a scenario, and how many values it drops.
type DropPath = (&'static str, fn(&DropCache, &ManualClock) -> usize);

const DROP_PATHS: &[DropPath] = &[
    ("eviction by insert", |c, _| {
        c.insert(1, val(11, 1));
        c.insert(2, val(21, 1));
        c.insert(3, val(31, 1)); // one of the three leaves, whichever the policy picks
        1
    }),
    ("eviction by a load", |c, _| {
        c.insert(1, val(11, 1));
        c.insert(2, val(21, 1));
        drop(c.get_with(3, || val(31, 1)));
        1
    }),
    ("replacement", |c, _| {
        c.insert(1, val(11, 1));
        c.insert(1, val(12, 1));
        1
    }),
    ("growing replacement that evicts", |c, _| {
        c.insert(1, val(11, 1));
        c.insert(2, val(21, 1));
        c.insert(1, val(12, 2)); // 11 is replaced, 21 evicted to make room
        2
    }),
    ("not admitted", |c, _| {
        c.insert(1, val(11, 3)); // heavier than the shard
        1
    }),
    ("not admitted, replacing", |c, _| {
        c.insert(1, val(11, 1));
        c.insert(1, val(12, 3)); // 11 leaves, and 12 is not stored
        2
    }),
    ("remove", |c, _| {
        c.insert(1, val(11, 1));
        drop(c.remove(&1));
        1
    }),
    ("invalidate", |c, _| {
        c.insert(1, val(11, 1));
        c.invalidate(&1);
        1
    }),
    ("invalidate_all", |c, _| {
        c.insert(1, val(11, 1));
        c.insert(2, val(21, 1));
        c.invalidate_all();
        2
    }),
    ("invalidate_entries_if", |c, _| {
        c.insert(1, val(11, 1));
        c.insert(2, val(21, 1));
        c.invalidate_entries_if(|k, _| *k == 1);
        1
    }),
    ("compute that removes", |c, _| {
        c.insert(1, val(11, 1));
        c.and_compute_with(1, |_| Op::Remove);
        1
    }),
    ("compute that replaces", |c, _| {
        c.insert(1, val(11, 1));
        c.and_compute_with(1, |_| Op::Put(val(12, 1)));
        1
    }),
    ("expiry by run_pending_tasks", |c, clock| {
        c.insert(1, val(11, 1));
        clock.advance(Duration::from_secs(11));
        c.run_pending_tasks();
        1
    }),
    ("expiry by a write to another key", |c, clock| {
        c.insert(1, val(11, 1));
        clock.advance(Duration::from_secs(11));
        c.insert(2, val(21, 1));
        1
    }),
    ("expiry of the key written", |c, clock| {
        c.insert(1, val(11, 1));
        clock.advance(Duration::from_secs(11));
        c.insert(1, val(12, 1));
        1
    }),
    ("expiry of the key removed", |c, clock| {
        c.insert(1, val(11, 1));
        clock.advance(Duration::from_secs(11));
        assert!(c.remove(&1).is_none());
        1
    }),
    ("expiry by reads", |c, clock| {
        c.insert(1, val(11, 1));
        clock.advance(Duration::from_secs(5));
        c.insert(2, val(21, 1));
        // 11 has expired, 21 has not. Reads apply their buffer, and so expire entries, when
        // it fills or (hits the policy ignores) every 64 hits once the timer wheel is due.
        clock.advance(Duration::from_secs(6));
        for _ in 0..10_000 {
            if c.entry_count() == 1 {
                break;
            }
            assert!(c.get(&2).is_some());
        }
        1
    }),
];
