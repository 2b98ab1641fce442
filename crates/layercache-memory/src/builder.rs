//! [`CacheBuilder`]: configuration of a [`Cache`].

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::{Cache, Weigher};
use crate::expiry::{nanos, Clock, CoarseClock, Expiration, Expiry};
use crate::listener::{Listener, RemovalCause};
use crate::{DefaultHashBuilder, EvictionPolicy};

/// Shards are only split while each keeps at least this many entries, so that small caches
/// keep the hit ratio of one exact policy instance.
const MIN_SHARD_ENTRIES: u64 = 4096;
/// With a weigher, shards are only split while each keeps at least this much weight (1 MiB if
/// weights are bytes), so that ordinary values are never larger than a shard's share.
const MIN_SHARD_WEIGHT: u64 = 1 << 20;
/// The most shards a cache gets by default.
const MAX_DEFAULT_SHARDS: usize = 256;

/// Builds a [`Cache`]; obtain one from [`Cache::builder`].
///
/// Every setting has a default, and [`CacheBuilder::build`] cannot fail or panic.
///
/// ```
/// use layercache_memory::{Cache, EvictionPolicy};
///
/// let cache: Cache<String, Vec<u8>> = Cache::builder()
///     .max_capacity(64 * 1024 * 1024) // bytes, because of the weigher
///     .weigher(|k: &String, v: &Vec<u8>| (k.len() + v.len()).try_into().unwrap_or(u32::MAX))
///     .eviction_policy(EvictionPolicy::WTinyLfu)
///     .build();
/// cache.insert("a".to_string(), vec![0; 100]);
/// assert_eq!(cache.weighted_size(), 101);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct CacheBuilder<K, V, S = DefaultHashBuilder> {
    pub(crate) max_capacity: u64,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) policy: EvictionPolicy,
    shards: Option<usize>,
    pub(crate) hasher: S,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    expiry: Option<Box<dyn Expiry<K, V>>>,
    clock: Option<Arc<dyn Clock>>,
    pub(crate) listener: Option<Listener<K, V>>,
    pub(crate) record_stats: bool,
    _marker: PhantomData<fn(K, V)>,
}

impl<K, V> CacheBuilder<K, V, DefaultHashBuilder> {
    pub(crate) fn new() -> Self {
        CacheBuilder {
            max_capacity: u64::MAX,
            weigher: None,
            policy: EvictionPolicy::default(),
            shards: None,
            hasher: DefaultHashBuilder::default(),
            ttl: None,
            tti: None,
            expiry: None,
            clock: None,
            listener: None,
            record_stats: false,
            _marker: PhantomData,
        }
    }
}

impl<K, V, S> CacheBuilder<K, V, S> {
    /// The capacity bound: the number of entries, or with a [`weigher`](Self::weigher) the sum
    /// of the entries' weights (in whatever unit the weigher returns, such as bytes).
    ///
    /// Default: `u64::MAX` (unbounded). Zero gives a cache that stores nothing.
    pub fn max_capacity(mut self, max_capacity: u64) -> Self {
        self.max_capacity = max_capacity;
        self
    }

    /// Gives each entry a weight (called once per insert, outside any lock). Weights count
    /// towards [`max_capacity`](Self::max_capacity) instead of the number of entries.
    ///
    /// An entry heavier than its shard's share of the capacity is not stored (see
    /// [`Cache`]'s capacity notes). By default a weighted cache keeps at least 2^20 weight
    /// units (1 MiB, if weights are bytes) per shard; if single entries can be a large part of
    /// the capacity, build with [`shards`](Self::shards)`(1)`. A weight of 0 is allowed: such
    /// entries are never evicted for size.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Box::new(weigher));
        self
    }

    /// The eviction policy. Default: [`EvictionPolicy::WTinyLfu`].
    pub fn eviction_policy(mut self, policy: EvictionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The number of independently locked shards, rounded up to a power of two (at most
    /// 65,536).
    ///
    /// Default: 16 × the available parallelism, rounded up to a power of two (at most 256), but
    /// halved until each shard has at least 4,096 entries of capacity (2^20 weight units with a
    /// weigher). One shard gives the exact behaviour of the policy (as in the paper that
    /// defines it) at the price of concurrency.
    ///
    /// Memory: with W-TinyLFU each shard keeps its own frequency sketch of at least 16 KiB
    /// once it is half full (16 × its capacity-sized table below 256 entries), so many small
    /// shards cost more than the per-entry figures suggest.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.clamp(1, 1 << 16).next_power_of_two());
        self
    }

    /// Uses `hasher` to hash keys instead of the default, randomly seeded
    /// [`DefaultHashBuilder`]. A fixed seed makes runs reproducible (the simulator uses one);
    /// a random one resists hash flooding.
    pub fn hasher<S2: BuildHasher>(self, hasher: S2) -> CacheBuilder<K, V, S2> {
        CacheBuilder {
            max_capacity: self.max_capacity,
            weigher: self.weigher,
            policy: self.policy,
            shards: self.shards,
            hasher,
            ttl: self.ttl,
            tti: self.tti,
            expiry: self.expiry,
            clock: self.clock,
            listener: self.listener,
            record_stats: self.record_stats,
            _marker: PhantomData,
        }
    }

    /// Time to live: an entry expires this long after it was inserted or last updated.
    /// Default: none. See the [`expiry`](crate::Expiry) docs for how deadlines combine.
    pub fn time_to_live(mut self, duration: Duration) -> Self {
        self.ttl = Some(duration);
        self
    }

    /// Time to idle: an entry expires this long after it was inserted, updated or last
    /// read. Default: none.
    pub fn time_to_idle(mut self, duration: Duration) -> Self {
        self.tti = Some(duration);
        self
    }

    /// Per-entry expiration through an [`Expiry`]. Default: none.
    pub fn expire_after(mut self, expiry: impl Expiry<K, V> + 'static) -> Self {
        self.expiry = Some(Box::new(expiry));
        self
    }

    /// The clock expiration reads. Default: [`CoarseClock`] (millisecond steps; pass a
    /// [`MonotonicClock`](crate::MonotonicClock) for nanoseconds). Tests pass a
    /// [`ManualClock`](crate::ManualClock) to move time by hand instead of sleeping.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Calls `listener` once for every entry that leaves the cache, with the key, the value
    /// and the [`RemovalCause`]; also for an insert that is not admitted (`Size`).
    ///
    /// It runs synchronously on the thread whose operation removed the entry, after the
    /// shard's lock is released and before that operation returns (for expirations, inside
    /// whichever operation did the cleanup, or [`run_pending_tasks`](Cache::run_pending_tasks)).
    /// It may use the cache. A panic in the listener propagates to that operation's caller;
    /// the cache stays consistent.
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Counts hits, misses, insertions, removals by cause and loads, for
    /// [`Cache::stats`]. Default: off (then the counters cost one branch per operation).
    pub fn record_stats(mut self) -> Self {
        self.record_stats = true;
        self
    }

    /// The expiration settings, if any are set.
    pub(crate) fn expiration(&mut self) -> Option<Expiration<K, V>> {
        if self.ttl.is_none() && self.tti.is_none() && self.expiry.is_none() {
            return None;
        }
        Some(Expiration {
            clock: self
                .clock
                .take()
                .unwrap_or_else(|| Arc::new(CoarseClock::new())),
            ttl: self.ttl.map(nanos),
            tti: self.tti.map(nanos),
            reads_matter: self.tti.is_some()
                || self
                    .expiry
                    .as_ref()
                    .is_some_and(|e| e.reads_change_deadlines()),
            expiry: self.expiry.take(),
        })
    }

    /// Builds the cache.
    pub fn build(self) -> Cache<K, V, S>
    where
        K: Hash + Eq,
        S: BuildHasher,
    {
        let shards = self
            .shards
            .unwrap_or_else(|| default_shards(self.max_capacity, self.weigher.is_some()));
        Cache::from_builder(self, shards)
    }
}

fn default_shards(max_capacity: u64, weighted: bool) -> usize {
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut shards = (parallelism * 16)
        .next_power_of_two()
        .min(MAX_DEFAULT_SHARDS);
    let min_share = if weighted {
        MIN_SHARD_WEIGHT
    } else {
        MIN_SHARD_ENTRIES
    };
    while shards > 1 && max_capacity / (shards as u64) < min_share {
        shards /= 2;
    }
    shards
}

impl<K, V, S> fmt::Debug for CacheBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("weigher", &self.weigher.is_some())
            .field("eviction_policy", &self.policy)
            .field("shards", &self.shards)
            .field("time_to_live", &self.ttl)
            .field("time_to_idle", &self.tti)
            .field("expiry", &self.expiry.is_some())
            .field("eviction_listener", &self.listener.is_some())
            .field("record_stats", &self.record_stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_caches_get_one_shard() {
        assert_eq!(default_shards(100, false), 1);
        assert_eq!(default_shards(0, false), 1);
        assert!(default_shards(u64::MAX, false).is_power_of_two());
        // A byte-weighted cache of 1 MiB is one shard: a 100 KiB value must fit.
        assert_eq!(default_shards(1 << 20, true), 1);
        assert!(default_shards(64 << 20, true) <= 64);
    }

    #[test]
    fn shard_count_is_rounded() {
        let c: Cache<u64, u64> = Cache::builder().max_capacity(10).shards(3).build();
        assert_eq!(c.shard_count(), 4);
        let c: Cache<u64, u64> = Cache::builder().shards(0).build();
        assert_eq!(c.shard_count(), 1);
    }
}
