//! Cache statistics: per-shard atomic counters and the [`CacheStats`] snapshot.
//!
//! Counting is off unless the cache is built with
//! [`record_stats`](crate::CacheBuilder::record_stats); then every shard owns a cache-padded
//! block of relaxed atomic counters (so threads on different shards never share a line), and
//! [`Cache::stats`](crate::Cache::stats) sums them. When off, the hit path pays one
//! predictable branch on a `None`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::listener::RemovalCause;

/// One shard's counters.
#[derive(Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    removals: [AtomicU64; 4],
    load_successes: AtomicU64,
    load_failures: AtomicU64,
    load_nanos: AtomicU64,
}

/// The counters of every shard (present only with `record_stats`).
pub(crate) struct Stats {
    shards: Box<[CachePadded<Counters>]>,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Stats {
    pub(crate) fn new(shards: usize) -> Self {
        Stats {
            shards: (0..shards).map(|_| CachePadded::default()).collect(),
        }
    }

    #[inline]
    pub(crate) fn hit(&self, shard: usize) {
        add(&self.shards[shard].hits, 1);
    }

    #[inline]
    pub(crate) fn miss(&self, shard: usize) {
        add(&self.shards[shard].misses, 1);
    }

    pub(crate) fn insert(&self, shard: usize) {
        add(&self.shards[shard].inserts, 1);
    }

    pub(crate) fn removal(&self, shard: usize, cause: RemovalCause) {
        add(&self.shards[shard].removals[cause.index()], 1);
    }

    pub(crate) fn load(&self, shard: usize, ok: bool, took: Duration) {
        let c = &self.shards[shard];
        add(
            if ok {
                &c.load_successes
            } else {
                &c.load_failures
            },
            1,
        );
        add(
            &c.load_nanos,
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
        );
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let mut s = CacheStats::default();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for c in self.shards.iter() {
            s.hits += get(&c.hits);
            s.misses += get(&c.misses);
            s.insertions += get(&c.inserts);
            s.expirations += get(&c.removals[RemovalCause::Expired.index()]);
            s.explicit_removals += get(&c.removals[RemovalCause::Explicit.index()]);
            s.replacements += get(&c.removals[RemovalCause::Replaced.index()]);
            s.size_evictions += get(&c.removals[RemovalCause::Size.index()]);
            s.load_successes += get(&c.load_successes);
            s.load_failures += get(&c.load_failures);
            s.total_load_time += Duration::from_nanos(get(&c.load_nanos));
        }
        s
    }
}

/// A snapshot of a cache's counters since it was built, from
/// [`Cache::stats`](crate::Cache::stats). All zero unless the cache was built with
/// [`record_stats`](crate::CacheBuilder::record_stats).
///
/// The counters are read shard by shard without stopping writers, so under concurrent use a
/// snapshot is not of one instant (each counter is exact once the cache is quiescent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups (`get`, and the first lookup of `get_with` and friends) that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing, or only an expired entry.
    pub misses: u64,
    /// Values stored by `insert`, loads and computes (including replacements).
    pub insertions: u64,
    /// Entries removed because they expired ([`RemovalCause::Expired`]).
    pub expirations: u64,
    /// Entries removed by the application ([`RemovalCause::Explicit`]).
    pub explicit_removals: u64,
    /// Values replaced by a newer value under the same key ([`RemovalCause::Replaced`]).
    pub replacements: u64,
    /// Entries evicted, or not admitted, for size ([`RemovalCause::Size`]).
    pub size_evictions: u64,
    /// Loads (`get_with`, `try_get_with`, …) whose initializer returned a value.
    pub load_successes: u64,
    /// Loads whose initializer returned an error (or, for an optional load, nothing).
    pub load_failures: u64,
    /// Total time spent in initializers, successful or not.
    pub total_load_time: Duration,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or 1.0 when there were no lookups (as Caffeine does).
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            1.0
        } else {
            self.hits as f64 / total as f64
        }
    }

    /// Entries that left for [`RemovalCause::Expired`] or [`RemovalCause::Size`].
    pub fn evictions(&self) -> u64 {
        self.expirations + self.size_evictions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sums_shards() {
        let s = Stats::new(4);
        s.hit(0);
        s.hit(3);
        s.miss(1);
        s.insert(2);
        s.removal(1, RemovalCause::Size);
        s.removal(2, RemovalCause::Expired);
        s.load(0, true, Duration::from_millis(2));
        s.load(1, false, Duration::from_millis(1));
        let snap = s.snapshot();
        assert_eq!((snap.hits, snap.misses, snap.insertions), (2, 1, 1));
        assert_eq!((snap.size_evictions, snap.expirations), (1, 1));
        assert_eq!(snap.evictions(), 2);
        assert_eq!((snap.load_successes, snap.load_failures), (1, 1));
        assert_eq!(snap.total_load_time, Duration::from_millis(3));
        assert!((snap.hit_ratio() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(CacheStats::default().hit_ratio(), 1.0);
    }
}
