//! [`Cache`]: the sharded, thread-safe front of the engine.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use parking_lot::RwLock;

use crate::builder::CacheBuilder;
use crate::shard::{Inserted, Shard};
use crate::{DefaultHashBuilder, EvictionPolicy};

pub(crate) type Weigher<K, V> = Box<dyn Fn(&K, &V) -> u32 + Send + Sync>;
type Shards<K, V> = Box<[CachePadded<RwLock<Shard<K, V>>>]>;

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

struct Inner<K, V, S> {
    shards: Shards<K, V>,
    mask: usize,
    hasher: S,
    weigher: Option<Weigher<K, V>>,
    max_capacity: u64,
    policy: EvictionPolicy,
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
    pub(crate) fn from_parts(
        max_capacity: u64,
        weigher: Option<Weigher<K, V>>,
        policy: EvictionPolicy,
        shards: usize,
        hasher: S,
    ) -> Self {
        let n = shards as u64;
        let weighted = weigher.is_some();
        let shards = (0..n)
            .map(|i| {
                let capacity = max_capacity / n + u64::from(i < max_capacity % n);
                let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i + 1);
                CachePadded::new(RwLock::new(Shard::new(policy, capacity, weighted, seed)))
            })
            .collect::<Box<[_]>>();
        Cache {
            inner: Arc::new(Inner {
                mask: shards.len() - 1,
                shards,
                hasher,
                weigher,
                max_capacity,
                policy,
            }),
        }
    }

    /// The shard of a key and the 32 hash bits the shard uses.
    #[inline]
    fn locate<Q: Hash + ?Sized>(&self, key: &Q) -> (&RwLock<Shard<K, V>>, u32) {
        let h = self.inner.hasher.hash_one(key);
        let shard = &self.inner.shards[(h >> 32) as usize & self.inner.mask];
        (shard, h as u32)
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
        let (lock, h) = self.locate(key);
        let (value, full) = {
            let shard = lock.read();
            let (i, value, record) = shard.find_hit(h, key)?;
            (value.clone(), record && shard.record_hit(i))
        };
        if full {
            // Apply the batch if no one holds the shard; otherwise the next writer will.
            if let Some(mut shard) = lock.try_write() {
                shard.apply_reads();
            }
        }
        Some(value)
    }

    /// Tells whether `key` is present, without counting as an access.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (shard, h) = self.locate(key);
        shard.read().contains(h, key)
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
        let (shard, h) = self.locate(&key);
        let (outcome, removed) = shard.write().insert(h, key, value, weight);
        // Evicted entries are dropped here, outside the shard lock.
        drop(removed);
        match outcome {
            Inserted::New => Ok(None),
            Inserted::Replaced(old) => Ok(Some(old)),
            Inserted::Rejected { key, value, old } => {
                drop(old);
                Err(NotAdmitted { key, value, weight })
            }
        }
    }

    /// Removes `key` and returns its value, if present.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (shard, h) = self.locate(key);
        let removed = shard.write().remove(h, key);
        removed.map(|(_, v)| v)
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
        for shard in self.inner.shards.iter() {
            let entries = shard.write().clear();
            drop(entries);
        }
    }

    /// The number of entries (summed over the shards, one at a time).
    pub fn entry_count(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.read().len() as u64)
            .sum()
    }

    /// The total weight of the entries: the entry count when there is no weigher.
    pub fn weighted_size(&self) -> u64 {
        self.inner.shards.iter().map(|s| s.read().weight()).sum()
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
        let mut out = Vec::new();
        for shard in self.inner.shards.iter() {
            shard
                .read()
                .for_each(|k, v| out.push((k.clone(), v.clone())));
        }
        out.into_iter()
    }

    /// Checks the engine's internal invariants (table, slab, policy queues, weights, capacity)
    /// shard by shard. O(entries); meant for tests and debugging.
    ///
    /// # Errors
    /// [`InvariantViolation`] naming the shard and what disagrees.
    pub fn validate(&self) -> Result<(), InvariantViolation> {
        for (i, shard) in self.inner.shards.iter().enumerate() {
            shard
                .read()
                .validate()
                .map_err(|m| InvariantViolation(format!("shard {i}: {m}")))?;
        }
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
