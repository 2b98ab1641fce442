//! [`Cache`]: the sharded, thread-safe front of the engine.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use crate::biased_lock::BiasedRwLock;
use crossbeam_utils::CachePadded;

use crate::builder::CacheBuilder;
use crate::expiry::Expiration;
use crate::listener::{Listener, RemovalCause};
use crate::loader::Coalescer;
use crate::shard::{Expiring, Inserted, Now, Removed, Shard, Stamp};
use crate::stats::{CacheStats, Stats};
use crate::{DefaultHashBuilder, EvictionPolicy};

pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32 + Send + Sync>;
type Shards<K, V, T> = Box<[CachePadded<BiasedRwLock<Shard<K, V, T>>>]>;

/// The shards: their entries keep an inline deadline only when the cache expires entries,
/// so caches without expiration pay nothing for it. Methods are written once, over both
/// kinds, with the `each!` macro (below).
enum ShardSet<K, V> {
    Plain(Shards<K, V, ()>),
    Timed(Shards<K, V, AtomicU64>),
}

/// Runs `$body` with `$s` bound to the shards, whichever kind they are.
macro_rules! each {
    ($set:expr, $s:ident => $body:expr) => {
        match $set {
            ShardSet::Plain($s) => $body,
            ShardSet::Timed($s) => $body,
        }
    };
}

impl<K, V> ShardSet<K, V> {
    fn len(&self) -> usize {
        each!(self, s => s.len())
    }
}

fn make_shards<K: Hash + Eq, V, T: Stamp>(
    policy: EvictionPolicy,
    max_capacity: u64,
    n: u64,
    weighted: bool,
    expiring: Option<Expiring>,
) -> Shards<K, V, T> {
    (0..n)
        .map(|i| {
            let capacity = max_capacity / n + u64::from(i < max_capacity % n);
            let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i + 1);
            let shard = Shard::new(policy, capacity, weighted, seed, expiring);
            CachePadded::new(BiasedRwLock::new(shard))
        })
        .collect()
}

/// A thread-safe, bounded, in-memory cache.
///
/// `Cache` is a cheap handle: cloning it gives another handle to the same cache. Keys are
/// spread over independently locked shards by a randomly seeded hash; each shard runs its own
/// instance of the [`EvictionPolicy`].
///
/// # Capacity
/// The capacity is split exactly over the shards (shard `i` of `n` gets
/// `max_capacity / n`, plus one for the first `max_capacity % n` shards), and a shard never
/// holds more than its share once an operation on it returns. So **the cache never holds more
/// than `max_capacity`** (entries, or total weight with a weigher) once an `insert` returns.
/// The price is that an entry heavier than its shard's share is not stored, even if it would
/// fit in the whole cache; with one shard, that is exactly "an entry heavier than the cache".
/// Build with [`CacheBuilder::shards`]`(1)` for caches of few, heavy entries. A shard holds at
/// most 2^28 − 1 entries (slab indices are 28 bits); beyond that, new keys are not stored.
///
/// # Consistency
/// Every operation on a key is atomic and linearizable (it runs under its shard's lock).
/// Operations over the whole cache ([`entry_count`](Self::entry_count),
/// [`weighted_size`](Self::weighted_size), [`invalidate_all`](Self::invalidate_all),
/// [`iter`](Self::iter)) visit shards one at a time, so they are not a snapshot of one instant
/// under concurrent writes.
///
/// ```
/// use layercache_memory::Cache;
///
/// let cache = Cache::new(10_000);
/// cache.insert("apple", 3);
/// assert_eq!(cache.get("apple"), Some(3));
/// cache.invalidate("apple");
/// assert_eq!(cache.get("apple"), None);
/// ```
pub struct Cache<K, V, S = DefaultHashBuilder> {
    inner: Arc<Inner<K, V, S>>,
}

pub(crate) struct Inner<K, V, S> {
    shards: ShardSet<K, V>,
    mask: usize,
    hasher: S,
    weigher: Option<Weigher<K, V>>,
    max_capacity: u64,
    policy: EvictionPolicy,
    expiration: Option<Expiration<K, V>>,
    listener: Option<Listener<K, V>>,
    stats: Option<Stats>,
    coalescer: Coalescer<K, V>,
}

impl<K, V, S> Clone for Cache<K, V, S> {
    fn clone(&self) -> Self {
        Cache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: Hash + Eq, V> Cache<K, V, DefaultHashBuilder> {
    /// A cache of at most `max_capacity` entries with the default policy (W-TinyLFU).
    pub fn new(max_capacity: u64) -> Self {
        Self::builder().max_capacity(max_capacity).build()
    }

    /// A builder to configure capacity, weigher, policy, shards and hasher.
    pub fn builder() -> CacheBuilder<K, V, DefaultHashBuilder> {
        CacheBuilder::new()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Cache<K, V, S> {
    pub(crate) fn from_builder(mut b: CacheBuilder<K, V, S>, shards: usize) -> Self {
        let n = shards as u64;
        let weighted = b.weigher.is_some();
        let expiration = b.expiration();
        let max_capacity = b.max_capacity;
        let shards = match &expiration {
            None => ShardSet::Plain(make_shards(b.policy, max_capacity, n, weighted, None)),
            Some(e) => {
                let expiring = Expiring {
                    now: e.now(),
                    track_custom: e.expiry.is_some(),
                    reads_matter: e.reads_matter(),
                };
                ShardSet::Timed(make_shards(
                    b.policy,
                    max_capacity,
                    n,
                    weighted,
                    Some(expiring),
                ))
            }
        };
        Cache {
            inner: Arc::new(Inner {
                mask: shards.len() - 1,
                stats: b.record_stats.then(|| Stats::new(shards.len())),
                coalescer: Coalescer::new(shards.len()),
                shards,
                hasher: b.hasher,
                weigher: b.weigher,
                max_capacity,
                policy: b.policy,
                expiration,
                listener: b.listener,
            }),
        }
    }

    /// The shard index of a key and the 32 hash bits the shard uses.
    #[inline]
    pub(crate) fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> (usize, u32) {
        let h = self.inner.hasher.hash_one(key);
        ((h >> 32) as usize & self.inner.mask, h as u32)
    }

    /// The clock reading for an operation, when the cache expires entries.
    #[inline]
    fn now(&self) -> Now<'_, K, V> {
        self.inner.expiration.as_ref().map(|e| (e, e.now()))
    }

    /// Tells the listener and the counters that an entry left shard `idx`.
    fn notify(&self, idx: usize, key: &K, value: &V, cause: RemovalCause) {
        if let Some(stats) = &self.inner.stats {
            stats.removal(idx, cause);
        }
        if let Some(listener) = &self.inner.listener {
            listener(key, value, cause);
        }
    }

    /// Reports removed entries (outside the shard lock), then drops them.
    fn report(&self, idx: usize, removed: Removed<K, V>) {
        if !removed.is_empty() && (self.inner.listener.is_some() || self.inner.stats.is_some()) {
            removed.for_each(|k, v, c| self.notify(idx, k, v, c));
        }
    }

    /// Returns a clone of the value for `key`, recording the access with the eviction
    /// policy; `None` if absent. Cheap when `V` is cheap to clone (wrap large values in
    /// [`Arc`]).
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let (value, idx) = self.lookup(key);
        if let Some(stats) = &self.inner.stats {
            if value.is_some() {
                stats.hit(idx);
            } else {
                stats.miss(idx);
            }
        }
        value
    }

    /// As [`get`](Self::get), but instead of cloning the value, runs `f` on it and returns
    /// what `f` returns: for a value of which the caller needs only a part, or a check,
    /// without the cost of a clone (an `Arc` inside the value is not touched). Counted and
    /// recorded with the policy as `get` is. `None` if absent.
    ///
    /// `f` runs under the shard's read lock: it must be short and must not use this cache.
    ///
    /// ```
    /// use layercache_memory::Cache;
    ///
    /// let cache: Cache<u32, (String, Vec<u8>)> = Cache::new(10);
    /// cache.insert(1, ("name".into(), vec![0; 4096]));
    /// assert_eq!(cache.get_map(&1, |(name, _)| name.len()), Some(4));
    /// assert_eq!(cache.get_map(&2, |(name, _)| name.len()), None);
    /// ```
    #[inline]
    pub fn get_map<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (value, idx) = self.lookup_with(key, f);
        if let Some(stats) = &self.inner.stats {
            if value.is_some() {
                stats.hit(idx);
            } else {
                stats.miss(idx);
            }
        }
        value
    }

    /// `get` without the counters: the live value (recording the hit with the policy) and
    /// the shard index.
    #[inline]
    pub(crate) fn lookup<Q>(&self, key: &Q) -> (Option<V>, usize)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.lookup_with(key, V::clone)
    }

    /// [`lookup`](Self::lookup) with `f` applied to the value instead of a clone.
    #[inline]
    fn lookup_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> (Option<R>, usize)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (idx, h) = self.locate(key);
        let exp = self.inner.expiration.as_ref();
        each!(&self.inner.shards, s => {
            let lock = &s[idx];
            let found = {
                let shard = lock.read();
                shard
                    .find_hit(h, key, exp)
                    .map(|(hit, value)| (f(value), shard.record_hit(hit, shard.tally(), exp)))
            };
            let Some((value, full)) = found else {
                return (None, idx);
            };
            if full {
                // Apply the batch if no one holds the shard; otherwise the next writer will.
                if let Some(mut shard) = lock.try_write() {
                    let removed = shard.run_pending(exp.map(Expiration::now));
                    drop(shard);
                    self.report(idx, removed);
                }
            }
            (Some(value), idx)
        })
    }

    /// The in-flight loads and computes.
    pub(crate) fn coalescer(&self) -> &Coalescer<K, V> {
        &self.inner.coalescer
    }

    /// Counts a load that took since `started`.
    pub(crate) fn record_load(&self, key: &K, ok: bool, started: Instant) {
        if let Some(stats) = &self.inner.stats {
            stats.load(self.locate(key).0, ok, started.elapsed());
        }
    }

    /// Tells whether `key` is present, without counting as an access.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (idx, h) = self.locate(key);
        let now = self.now().map(|(_, t)| t);
        each!(&self.inner.shards, s => s[idx].read().contains(h, key, now))
    }

    /// Inserts or replaces the value for `key`, evicting entries as the policy chooses until
    /// it fits.
    ///
    /// An entry heavier than its shard's share of the capacity is not stored, and any
    /// previous value for `key` is removed (so the cache never serves a value older than the
    /// last insert). Use [`try_insert`](Self::try_insert) to learn whether the entry was
    /// stored.
    pub fn insert(&self, key: K, value: V) {
        let _ = self.try_insert(key, value);
    }

    /// As [`insert`](Self::insert), but tells what happened.
    ///
    /// # Errors
    /// [`NotAdmitted`] with the key and value handed back when the entry is heavier than its
    /// shard's share of the capacity (or the shard already holds 2^28 − 1 entries).
    pub fn try_insert(&self, key: K, value: V) -> Result<Option<V>, NotAdmitted<K, V>> {
        let weight = self.inner.weigher.as_ref().map_or(1, |w| w(&key, &value));
        let (idx, h) = self.locate(&key);
        let now = self.now();
        let (outcome, removed) =
            each!(&self.inner.shards, s => s[idx].write().insert(h, key, value, weight, now));
        // Removed entries are reported and dropped here, outside the shard lock.
        let result = match outcome {
            Inserted::New => Ok(None),
            Inserted::Replaced(old) => {
                if let Some(key) = &removed.key {
                    self.notify(idx, key, &old, RemovalCause::Replaced);
                }
                Ok(Some(old))
            }
            Inserted::Rejected { key, value, old } => {
                if let Some(old) = old {
                    self.notify(idx, &key, &old, RemovalCause::Replaced);
                }
                self.notify(idx, &key, &value, RemovalCause::Size);
                Err(NotAdmitted { key, value, weight })
            }
        };
        if let (Some(stats), true) = (&self.inner.stats, result.is_ok()) {
            stats.insert(idx);
        }
        self.report(idx, removed);
        result
    }

    /// Removes `key` and returns its value, if present.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (idx, h) = self.locate(key);
        let now = self.now().map(|(_, t)| t);
        let (entry, removed) = each!(&self.inner.shards, s => s[idx].write().remove(h, key, now));
        self.report(idx, removed);
        let (key, value) = entry?;
        self.notify(idx, &key, &value, RemovalCause::Explicit);
        Some(value)
    }

    /// Removes `key`, if present.
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        drop(self.remove(key));
    }

    /// Removes every entry. Shards are cleared one after the other; the entries of each are
    /// dropped after its lock is released.
    pub fn invalidate_all(&self) {
        let now = self.now().map(|(_, t)| t);
        each!(&self.inner.shards, s => {
            for (idx, shard) in s.iter().enumerate() {
                let removed = shard.write().clear(now);
                self.report(idx, removed);
            }
        });
    }

    /// Removes every live entry for which `predicate` holds, shard by shard, and returns how
    /// many it removed. Each is reported with [`RemovalCause::Explicit`].
    ///
    /// `predicate` runs under each shard's write lock: it must not use this cache. Entries
    /// inserted into a shard after it was visited are not checked.
    pub fn invalidate_entries_if(&self, mut predicate: impl FnMut(&K, &V) -> bool) -> u64 {
        let now = self.now().map(|(_, t)| t);
        let mut count = 0;
        each!(&self.inner.shards, s => {
            for (idx, shard) in s.iter().enumerate() {
                let removed = shard.write().remove_if(now, &mut predicate);
                removed.for_each(|_, _, c| count += u64::from(c == RemovalCause::Explicit));
                self.report(idx, removed);
            }
        });
        count
    }

    /// Does the pending maintenance now: applies buffered hits to the policy and removes
    /// every entry whose expiry was reached (reporting it to the listener). Cache operations
    /// do this as they go; call it before reading [`entry_count`](Self::entry_count) for an
    /// exact figure, or in tests after advancing a [`ManualClock`](crate::ManualClock).
    pub fn run_pending_tasks(&self) {
        let now = self.now().map(|(_, t)| t);
        each!(&self.inner.shards, s => {
            for (idx, shard) in s.iter().enumerate() {
                let removed = shard.write().run_pending(now);
                self.report(idx, removed);
            }
        });
    }

    /// A snapshot of the statistics: all zero unless the cache was built with
    /// [`record_stats`](crate::CacheBuilder::record_stats). See [`CacheStats`].
    pub fn stats(&self) -> CacheStats {
        self.inner
            .stats
            .as_ref()
            .map_or_else(CacheStats::default, Stats::snapshot)
    }

    /// The number of entries (summed over the shards, one at a time). Expired entries count
    /// until they are cleaned up (see [`run_pending_tasks`](Self::run_pending_tasks)).
    pub fn entry_count(&self) -> u64 {
        each!(&self.inner.shards, s => s.iter().map(|s| s.read().len() as u64).sum())
    }

    /// The total weight of the entries: the entry count when there is no weigher.
    pub fn weighted_size(&self) -> u64 {
        each!(&self.inner.shards, s => s.iter().map(|s| s.read().weight()).sum())
    }

    /// The capacity the cache was built with (entries, or weight units with a weigher).
    pub fn max_capacity(&self) -> u64 {
        self.inner.max_capacity
    }

    /// The eviction policy the cache was built with.
    pub fn eviction_policy(&self) -> EvictionPolicy {
        self.inner.policy
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// A weakly consistent snapshot of the entries: each shard is copied under its lock in
    /// turn. Does not count as access.
    pub fn iter(&self) -> impl Iterator<Item = (K, V)>
    where
        K: Clone,
        V: Clone,
    {
        let now = self.now().map(|(_, t)| t);
        let mut out = Vec::new();
        each!(&self.inner.shards, s => {
            for shard in s.iter() {
                // The plain lock: a writer waits parked while the shard is copied.
                shard
                    .read_locked()
                    .for_each(now, |k, v| out.push((k.clone(), v.clone())));
            }
        });
        out.into_iter()
    }

    /// Checks the engine's internal invariants (table, slab, policy queues, weights, capacity)
    /// shard by shard. O(entries); meant for tests and debugging.
    ///
    /// # Errors
    /// [`InvariantViolation`] naming the shard and what disagrees.
    pub fn validate(&self) -> Result<(), InvariantViolation> {
        each!(&self.inner.shards, s => {
            for (i, shard) in s.iter().enumerate() {
                shard
                    .read_locked()
                    .validate()
                    .map_err(|m| InvariantViolation(format!("shard {i}: {m}")))?;
            }
        });
        Ok(())
    }
}

impl<K, V, S> fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("max_capacity", &self.inner.max_capacity)
            .field("eviction_policy", &self.inner.policy)
            .field("shards", &self.inner.shards.len())
            .finish_non_exhaustive()
    }
}

/// An entry that [`Cache::try_insert`] did not store, with its key and value handed back.
#[derive(thiserror::Error)]
#[error("entry of weight {weight} is heavier than its shard's share of the cache capacity")]
pub struct NotAdmitted<K, V> {
    /// The key that was not stored.
    pub key: K,
    /// The value that was not stored.
    pub value: V,
    /// The entry's weight.
    pub weight: u32,
}

impl<K, V> fmt::Debug for NotAdmitted<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotAdmitted")
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}

/// An internal invariant of the engine does not hold (a bug): see [`Cache::validate`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cache invariant violated: {0}")]
pub struct InvariantViolation(pub String);

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;
    use crate::policy::EvictionPolicy;

    /// A hit on the plain lock writes the lock word and the read buffer's first two words
    /// (`BiasedRwLock`, `Shard` and `ReadBuffer` are `repr(C)` with those first); they must
    /// share the lock's cache line.
    #[test]
    fn a_hits_writes_share_the_lock_words_cache_line() {
        let lock: CachePadded<BiasedRwLock<Shard<u64, u64, ()>>> = CachePadded::new(
            BiasedRwLock::new(Shard::new(EvictionPolicy::WTinyLfu, 10, false, 1, None)),
        );
        let base = &*lock as *const BiasedRwLock<_> as usize;
        let data = lock.data_ptr().as_ptr() as usize;
        assert_eq!(base % 64, 0);
        assert!(data >= base && data + 16 <= base + 64, "{}", data - base);
    }
}
