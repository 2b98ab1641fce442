//! [`future::Cache`](Cache): the cache for async code.
//!
//! It is the same engine as the sync [`crate::Cache`] (it wraps one), with async loading:
//! [`get_with`](Cache::get_with) takes a future, and callers that wait for another caller's
//! load yield instead of blocking a thread. Sync and async callers of one cache share the
//! same per-key coalescing, so a sync `get_with` and an async one on the same key run one
//! initializer between them.
//!
//! It is runtime-agnostic: waiting is done with plain [`std::task::Waker`]s, so it works under
//! tokio, async-std, smol or a hand-written executor. No operation blocks on I/O; the short
//! shard locks are taken as in the sync cache.
//!
//! If the caller that runs an initializer is cancelled (its future dropped mid-load), the
//! callers waiting on it wake up and one of them runs its own initializer.
//!
//! ```
//! # futures_executor_stand_in::block_on(async {
//! use layercache_memory::future::Cache;
//!
//! let cache: Cache<u64, String> = Cache::new(10_000);
//! let v = cache.get_with(1, async { "one".to_string() }).await;
//! assert_eq!(v, "one");
//! assert_eq!(cache.get(&1).await.as_deref(), Some("one"));
//! # });
//! # mod futures_executor_stand_in {
//! #     pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #         let waker = std::task::Waker::noop();
//! #         let mut cx = std::task::Context::from_waker(&waker);
//! #         let mut f = std::pin::pin!(f);
//! #         loop {
//! #             if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
//! #         }
//! #     }
//! # }
//! ```

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Instant;

use crate::builder::CacheBuilder;
use crate::load::{Computed, NoValue, Op, Step};
use crate::loader::{Join, Outcome};
use crate::{CacheStats, DefaultHashBuilder, InvariantViolation};

/// A thread-safe, bounded cache for async code; see the [module docs](self).
///
/// Build one with [`Cache::new`], or with [`Cache::builder`] and
/// [`CacheBuilder::build_async`]; [`From`] turns a sync [`crate::Cache`] into one that
/// shares its entries.
pub struct Cache<K, V, S = DefaultHashBuilder> {
    sync: crate::Cache<K, V, S>,
}

impl<K, V, S> Clone for Cache<K, V, S> {
    fn clone(&self) -> Self {
        Cache {
            sync: self.sync.clone(),
        }
    }
}

impl<K, V, S> fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("future::Cache").field(&self.sync).finish()
    }
}

impl<K, V, S> From<crate::Cache<K, V, S>> for Cache<K, V, S> {
    fn from(sync: crate::Cache<K, V, S>) -> Self {
        Cache { sync }
    }
}

impl<K: Hash + Eq, V> Cache<K, V, DefaultHashBuilder> {
    /// A cache of at most `max_capacity` entries with the default policy (W-TinyLFU).
    pub fn new(max_capacity: u64) -> Self {
        crate::Cache::new(max_capacity).into()
    }

    /// The builder of the sync cache; finish with [`CacheBuilder::build_async`].
    pub fn builder() -> CacheBuilder<K, V, DefaultHashBuilder> {
        crate::Cache::builder()
    }
}

impl<K, V, S> CacheBuilder<K, V, S> {
    /// Builds a [`future::Cache`](Cache).
    pub fn build_async(self) -> Cache<K, V, S>
    where
        K: Hash + Eq,
        S: BuildHasher,
    {
        self.build().into()
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// The sync handle on the same cache (same entries, same in-flight loads).
    ///
    /// Its loading methods block the thread while another caller loads the key: do not
    /// call them from async code (a blocked executor thread may be the one that has to
    /// finish the load).
    #[inline]
    pub fn as_sync(&self) -> &crate::Cache<K, V, S> {
        &self.sync
    }

    /// As [`crate::Cache::get`].
    pub async fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.sync.get(key)
    }

    /// As [`crate::Cache::contains_key`].
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.sync.contains_key(key)
    }

    /// As [`crate::Cache::insert`].
    pub async fn insert(&self, key: K, value: V) {
        self.sync.insert(key, value);
    }

    /// As [`crate::Cache::remove`].
    pub async fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.sync.remove(key)
    }

    /// As [`crate::Cache::invalidate`].
    pub async fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.sync.invalidate(key);
    }

    /// As [`crate::Cache::invalidate_all`].
    pub fn invalidate_all(&self) {
        self.sync.invalidate_all();
    }

    /// As [`crate::Cache::invalidate_entries_if`].
    pub fn invalidate_entries_if(&self, predicate: impl FnMut(&K, &V) -> bool) -> u64 {
        self.sync.invalidate_entries_if(predicate)
    }

    /// As [`crate::Cache::run_pending_tasks`].
    pub async fn run_pending_tasks(&self) {
        self.sync.run_pending_tasks();
    }

    /// As [`crate::Cache::entry_count`].
    pub fn entry_count(&self) -> u64 {
        self.sync.entry_count()
    }

    /// As [`crate::Cache::weighted_size`].
    pub fn weighted_size(&self) -> u64 {
        self.sync.weighted_size()
    }

    /// As [`crate::Cache::stats`].
    pub fn stats(&self) -> CacheStats {
        self.sync.stats()
    }

    /// As [`crate::Cache::iter`].
    pub fn iter(&self) -> impl Iterator<Item = (K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.sync.iter()
    }

    /// As [`crate::Cache::validate`].
    ///
    /// # Errors
    /// [`InvariantViolation`] naming the shard and what disagrees.
    pub fn validate(&self) -> Result<(), InvariantViolation> {
        self.sync.validate()
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    /// Returns the value of `key`, or awaits `init` to make it, stores it and returns it.
    ///
    /// Concurrent callers (sync or async) for a missing key run one initializer between
    /// them; the others wait without blocking their thread and get a clone of its value. If
    /// the caller running `init` is cancelled, a waiting caller runs its own `init`.
    pub async fn get_with(&self, key: K, init: impl Future<Output = V>) -> V {
        let init = async { Ok::<_, std::convert::Infallible>(init.await) };
        match self.try_get_with(key, init).await {
            Ok(v) => v,
            Err(e) => match *e {},
        }
    }

    /// As [`get_with`](Self::get_with), but `init` may fail: its error is shared by every
    /// caller waiting on the same load, as one `Arc<E>`, and nothing is stored.
    ///
    /// # Errors
    /// The error `init` (this caller's or the one it waited for) returned.
    pub async fn try_get_with<E: Send + Sync + 'static>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, Arc<E>> {
        let mut init = Some(init);
        let mut step = self.sync.begin_load(&key);
        loop {
            match step {
                Step::Hit(v) => return Ok(v),
                Step::Lead(lead) => {
                    let started = Instant::now();
                    let init = init.take().expect("a caller leads at most once");
                    let result = init.await.map(Some);
                    return self
                        .sync
                        .complete(key, lead, result, started)
                        .map(|v| v.expect("a value was loaded"));
                }
                Step::Wait(wait) => {
                    match crate::Cache::<K, V, S>::take::<E>(wait.wait_async().await) {
                        Some(Ok(Some(v))) => return Ok(v),
                        Some(Err(e)) => return Err(e),
                        Some(Ok(None)) | None => step = self.sync.join_slot(&key),
                    }
                }
            }
        }
    }

    /// As [`get_with`](Self::get_with), but `init` may find nothing: `None` is shared by the
    /// callers waiting on the same load, and nothing is stored.
    pub async fn optionally_get_with(
        &self,
        key: K,
        init: impl Future<Output = Option<V>>,
    ) -> Option<V> {
        // A `None` travels to the waiters as a shared `NoValue` error, and is not stored.
        let init = async { init.await.ok_or(NoValue) };
        self.try_get_with(key, init).await.ok()
    }

    /// Atomically reads, modifies and writes the entry of `key`, as
    /// [`crate::Cache::and_compute_with`], with an async `f` that gets a clone of the
    /// current value.
    pub async fn and_compute_with<F, Fut>(&self, key: K, f: F) -> Computed<V>
    where
        F: FnOnce(Option<V>) -> Fut,
        Fut: Future<Output = Op<V>>,
    {
        let sync = &self.sync;
        let hash = sync.load_hash(&key);
        let mut f = Some(f);
        loop {
            match sync.coalescer().join(&key, hash, crate::load::load_kind()) {
                Join::Lead(lead) => {
                    let current = sync.get_uncounted(&key);
                    let f = f.take().expect("a caller leads at most once");
                    let op = f(current.clone()).await;
                    let done = sync.apply_op(key, current, op);
                    lead.finish(Outcome::Retry);
                    return done;
                }
                Join::Wait(wait) => drop(wait.wait_async().await),
            }
        }
    }
}
