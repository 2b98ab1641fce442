//! Loading and computing through the cache: `get_with`, `try_get_with`,
//! `optionally_get_with`, `and_compute_with` and [`EntryRef`].
//!
//! All of them go through one per-key slot of the cache's
//! [`Coalescer`](crate::loader::Coalescer), for the sync cache here and for
//! [`future::Cache`](crate::future::Cache): concurrent callers for one missing key run one
//! initializer and share its outcome; a compute holds the slot while it
//! reads, modifies and writes, so computes (and loads) on one key never interleave.
//! The steps both front ends share live here ([`Cache::begin_load`], [`Cache::complete`]);
//! each front end only adds its own way of running the initializer and of waiting.

use std::any::{Any, TypeId};
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Instant;

use crate::cache::Cache;
use crate::loader::{Join, Lead, Outcome, Wait};

/// The one kind of load: loads of every error type and computes share a key's slot, so a
/// compute never interleaves with a load; a waiter that cannot use an outcome retries.
pub(crate) fn load_kind() -> TypeId {
    TypeId::of::<Cache<(), ()>>()
}

/// What a compute does with the entry (see [`Cache::and_compute_with`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op<V> {
    /// Store this value (insert, or replace the current one).
    Put(V),
    /// Remove the entry, if present.
    Remove,
    /// Leave the entry as it is.
    Nop,
}

/// What a compute did (see [`Cache::and_compute_with`]); mirrors moka's `CompResult`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Computed<V> {
    /// There was no entry; this value was stored.
    Inserted(V),
    /// The entry's value was replaced by this one.
    ReplacedWith(V),
    /// The entry, with this value, was removed.
    Removed(V),
    /// The entry, with this value, was left as it is.
    Unchanged(V),
    /// There was no entry and none was stored (or the value was not admitted).
    StillNone,
}

/// What a caller does after looking a key up (shared by the sync and async front ends).
pub(crate) enum Step<'a, K, V> {
    /// The value is there.
    Hit(V),
    /// Run the load and [`complete`](Cache::complete) it.
    Lead(Lead<'a, K, V>),
    /// Wait for another caller's load, then [`take`](Cache::take) its outcome.
    Wait(Wait<V>),
}

/// The error shared by the waiters of an `optionally_get_with` whose initializer gave `None`.
#[derive(Debug)]
pub(crate) struct NoValue;

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    /// A 64-bit hash of the key for the coalescer (equal keys, equal hashes).
    pub(crate) fn load_hash(&self, key: &K) -> u64 {
        let (idx, h) = self.locate(key);
        ((idx as u64) << 32) | u64::from(h)
    }

    /// Looks `key` up (a counted lookup) and, on a miss, joins the key's slot. A new leader
    /// looks again without counting, since a previous leader may have stored the value and
    /// left in between.
    pub(crate) fn begin_load(&self, key: &K) -> Step<'_, K, V> {
        if let Some(v) = self.get(key) {
            return Step::Hit(v);
        }
        self.join_slot(key)
    }

    /// Joins the key's slot (after a miss).
    pub(crate) fn join_slot(&self, key: &K) -> Step<'_, K, V> {
        match self.coalescer().join(key, self.load_hash(key), load_kind()) {
            Join::Lead(lead) => match self.get_uncounted(key) {
                Some(v) => {
                    lead.finish(Outcome::Value(v.clone()));
                    Step::Hit(v)
                }
                None => Step::Lead(lead),
            },
            Join::Wait(wait) => Step::Wait(wait),
        }
    }

    /// Stores what a leader's initializer returned, counts the load and hands the outcome
    /// to the waiters. `Ok(Some(v))` is stored; `Err(e)` and `Ok(None)` are shared, not stored.
    pub(crate) fn complete<E: Send + Sync + 'static>(
        &self,
        key: K,
        lead: Lead<'_, K, V>,
        result: Result<Option<V>, E>,
        started: Instant,
    ) -> Result<Option<V>, Arc<E>> {
        self.record_load(&key, matches!(result, Ok(Some(_))), started);
        match result {
            Ok(Some(v)) => {
                // Stored before the waiters are told, so a retrying waiter finds it.
                self.insert(key, v.clone());
                lead.finish(Outcome::Value(v.clone()));
                Ok(Some(v))
            }
            Ok(None) => {
                lead.finish(Outcome::Error(Arc::new(NoValue)));
                Ok(None)
            }
            Err(e) => {
                let e = Arc::new(e);
                lead.finish(Outcome::Error(Arc::clone(&e) as Arc<dyn Any + Send + Sync>));
                Err(e)
            }
        }
    }

    /// What a waiter makes of an outcome: `None` to retry.
    pub(crate) fn take<E: Send + Sync + 'static>(
        outcome: Outcome<V>,
    ) -> Option<Result<Option<V>, Arc<E>>> {
        match outcome {
            Outcome::Value(v) => Some(Ok(Some(v))),
            Outcome::Error(e) => match e.downcast::<E>() {
                Ok(e) => Some(Err(e)),
                Err(e) => e.downcast::<NoValue>().ok().map(|_| Ok(None)),
            },
            Outcome::Retry => None,
        }
    }

    /// Returns the value of `key`, or runs `init` to make it, stores it and returns it.
    ///
    /// Concurrent callers for a missing key run one `init` between them: the others block
    /// until it returns and get a clone of its value. If `init` panics, the panic reaches
    /// this caller and one of the waiting callers runs its own `init` instead. The value is
    /// returned even if it is not admitted (heavier than a shard).
    ///
    /// # Panics
    /// If `init` panics, or if `init` loads the same key from this cache (which would wait
    /// for itself).
    ///
    /// ```
    /// use layercache_memory::Cache;
    ///
    /// let cache = Cache::new(100);
    /// let v = cache.get_with(7, || 7 * 6);
    /// assert_eq!(v, 42);
    /// assert_eq!(cache.get_with(7, || unreachable!()), 42);
    /// ```
    pub fn get_with(&self, key: K, init: impl FnOnce() -> V) -> V {
        match self.try_get_with(key, || Ok::<_, std::convert::Infallible>(init())) {
            Ok(v) => v,
            Err(e) => match *e {},
        }
    }

    /// As [`get_with`](Self::get_with), but `init` may fail: its error is returned to this
    /// caller and to every caller waiting on the same load, as one shared `Arc<E>`, and
    /// nothing is stored.
    ///
    /// # Errors
    /// The error `init` (this caller's or the one it waited for) returned.
    ///
    /// # Panics
    /// As [`get_with`](Self::get_with).
    pub fn try_get_with<E: Send + Sync + 'static>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, Arc<E>> {
        let mut init = Some(init);
        let mut step = self.begin_load(&key);
        loop {
            match step {
                Step::Hit(v) => return Ok(v),
                Step::Lead(lead) => {
                    let started = Instant::now();
                    let init = init.take().expect("a caller leads at most once");
                    let result = init().map(Some);
                    return self
                        .complete(key, lead, result, started)
                        .map(|v| v.expect("a value was loaded"));
                }
                Step::Wait(wait) => match Self::take::<E>(wait.wait()) {
                    Some(Ok(Some(v))) => return Ok(v),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(None)) | None => step = self.join_slot(&key),
                },
            }
        }
    }

    /// As [`get_with`](Self::get_with), but `init` may find nothing: `None` is returned to
    /// this caller and to those waiting on the same load, and nothing is stored.
    pub fn optionally_get_with(&self, key: K, init: impl FnOnce() -> Option<V>) -> Option<V> {
        // A `None` travels to the waiters as a shared `NoValue` error, and is not stored.
        self.try_get_with(key, || init().ok_or(NoValue)).ok()
    }

    /// Atomically reads, modifies and writes the entry of `key`: `f` sees the current value
    /// (`None` if absent or expired) and returns an [`Op`]; the result says what happened.
    ///
    /// Computes and loads (`get_with` and friends) on one key run one at a time, so
    /// concurrent computes never lose an update. Plain `insert`/`remove` calls do not wait
    /// for a compute. `f` runs without any shard lock held.
    ///
    /// # Panics
    /// If `f` panics (the entry is left as it was, and waiting callers proceed).
    ///
    /// ```
    /// use layercache_memory::{Cache, Computed, Op};
    ///
    /// let hits: Cache<&str, u64> = Cache::new(100);
    /// let bump = |v: Option<&u64>| Op::Put(v.map_or(1, |n| n + 1));
    /// assert_eq!(hits.and_compute_with("home", bump), Computed::Inserted(1));
    /// assert_eq!(hits.and_compute_with("home", bump), Computed::ReplacedWith(2));
    /// ```
    pub fn and_compute_with(&self, key: K, f: impl FnOnce(Option<&V>) -> Op<V>) -> Computed<V> {
        let hash = self.load_hash(&key);
        let mut f = Some(f);
        loop {
            match self.coalescer().join(&key, hash, load_kind()) {
                Join::Lead(lead) => {
                    let current = self.get_uncounted(&key);
                    let f = f.take().expect("a caller leads at most once");
                    let op = f(current.as_ref());
                    let done = self.apply_op(key, current, op);
                    lead.finish(Outcome::Retry);
                    return done;
                }
                Join::Wait(wait) => drop(wait.wait()),
            }
        }
    }

    /// Applies a compute's decision (the caller holds the key's slot).
    pub(crate) fn apply_op(&self, key: K, current: Option<V>, op: Op<V>) -> Computed<V> {
        match (op, current) {
            (Op::Put(v), current) => match (self.try_insert(key, v.clone()), current) {
                (Err(_), _) => Computed::StillNone,
                (Ok(_), Some(_)) => Computed::ReplacedWith(v),
                (Ok(_), None) => Computed::Inserted(v),
            },
            (Op::Remove, Some(_)) => self
                .remove(&key)
                .map_or(Computed::StillNone, Computed::Removed),
            (Op::Nop, Some(v)) => Computed::Unchanged(v),
            (Op::Remove | Op::Nop, None) => Computed::StillNone,
        }
    }

    /// The entry API for `key`, as in moka: `cache.entry(k).or_insert_with(..)`.
    pub fn entry(&self, key: K) -> EntryRef<'_, K, V, S> {
        EntryRef { cache: self, key }
    }
}

/// A key of a [`Cache`], for loading or computing its entry; from [`Cache::entry`].
#[must_use = "an EntryRef does nothing until one of its methods is called"]
pub struct EntryRef<'a, K, V, S> {
    cache: &'a Cache<K, V, S>,
    key: K,
}

impl<K, V, S> EntryRef<'_, K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    /// The value, loaded with `init` if absent: [`Cache::get_with`].
    pub fn or_insert_with(self, init: impl FnOnce() -> V) -> V {
        self.cache.get_with(self.key, init)
    }

    /// The value, loaded with a fallible `init` if absent: [`Cache::try_get_with`].
    ///
    /// # Errors
    /// The error `init` returned, shared.
    pub fn or_try_insert_with<E: Send + Sync + 'static>(
        self,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, Arc<E>> {
        self.cache.try_get_with(self.key, init)
    }

    /// An atomic read-modify-write of the entry: [`Cache::and_compute_with`].
    pub fn and_compute_with(self, f: impl FnOnce(Option<&V>) -> Op<V>) -> Computed<V> {
        self.cache.and_compute_with(self.key, f)
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// The live value of `key`, without counting a hit or a miss.
    pub(crate) fn get_uncounted<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.lookup(key).0
    }
}
