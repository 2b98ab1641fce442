//! Per-key coalescing of loads ("single flight"), shared by the sync and the async cache.
//!
//! When several callers miss the same key at once, one of them (the *leader*) runs the
//! initializer and the others (the *waiters*) wait for it and share its outcome. The same
//! per-key slot serializes `and_compute_with`: a compute holds the slot as leader while it
//! reads, modifies and writes, and finishes with [`Outcome::Retry`] so that waiters look again.
//!
//! # Protocol
//! 1. The caller looks the key up in the cache; on a miss it calls [`Coalescer::join`].
//! 2. `join` locks one shard of the in-flight table and looks for the `(kind, key)` slot. If
//!    there is one it clones its `Arc` and returns [`Join::Wait`]; otherwise it inserts a new
//!    slot and returns [`Join::Lead`]. The only user code run under the shard mutex is the
//!    key's `Eq` and `Clone`; it is never held while waiting or while an initializer runs.
//! 3. The leader looks the key up again (a previous leader may have inserted the value and left
//!    between steps 1 and 2), runs the initializer, inserts a value into the cache **before**
//!    finishing, then calls [`Lead::finish`], which
//!    (a) removes the slot from the table, (b) stores the outcome in the slot (a `OnceLock`),
//!    (c) under the slot's waiter mutex takes the registered wakers and `notify_all`s the
//!    condition variable, (d) wakes the wakers after unlocking. Dropping a [`Lead`] without
//!    finishing (the initializer panicked, or the leader's future was dropped mid-load) does
//!    the same with [`Outcome::Retry`].
//! 4. A waiter reads the outcome: a value is cloned out, an error (`Arc<E>` as `dyn Any`) is
//!    shared, and on `Retry` the waiter goes back to step 1, where one of the retrying waiters
//!    becomes the next leader.
//!
//! # Races, and why they are harmless
//! * **A waiter joins just before the leader finishes.** It cloned the slot's `Arc` under the
//!   shard mutex, so it waits on that slot; the outcome is stored *in the slot*, not only
//!   signalled, so the waiter reads it however late it looks.
//! * **Lost wake-ups.** A waiter checks the outcome while holding the slot's waiter mutex and
//!   then parks on the condition variable or registers its `Waker` without releasing it in
//!   between; the leader stores the outcome before it takes that mutex to notify. So either the
//!   waiter sees the outcome, or it is parked/registered before the leader notifies.
//! * **A caller misses the slot just after the leader left.** The slot is removed only after
//!   the value is in the cache (step 3), so the caller finds it on the leader's re-check. An
//!   error is not cached: such a caller starts a new load, as moka does.
//! * **Retry.** The slot is removed *before* waiters are woken, so a retrying waiter cannot
//!   find the dead slot again; exactly one of them inserts the next slot and leads.
//! * **A waiter is dropped.** Everyone is woken (`notify_all` and every `Waker`), so no waiter
//!   is responsible for passing anything on. A dropped [`WaitFuture`] deregisters its `Waker`,
//!   leaving a `None` in the slot's list until the load finishes (one word per such future).
//! * **Clones.** Waiters clone the value out of the slot without holding any lock, so a slow or
//!   panicking `V::clone` only affects that waiter.
//! * **Recursion.** An initializer that calls back into the blocking path for its own key
//!   would wait for itself forever; [`Wait::wait`] panics instead (the leader's `Lead` is then
//!   dropped by the unwinding and waiters retry). The check compares the waiting thread with
//!   the one that created the slot, which is exact for sync leaders. It also fires when a
//!   thread blocks (`wait`) on a load that an async leader started on that same thread and
//!   has not finished: a real deadlock on a current-thread executor, and blocking inside
//!   async code on any other. [`Wait::wait_async`] has no such check.
//!
//! # Kinds
//! Slots are keyed by `(kind, key)` where `kind` is a [`TypeId`]: `get_with`, `try_get_with`
//! with error type `E1` and with `E2` coalesce only with their own kind, so a waiter always
//! receives an error of the type it expects and can downcast it. Use a private marker type
//! for each kind that is not an error type (e.g. `TypeId::of::<GetWith>()`) so that it cannot
//! collide with a user's `E`, and `TypeId::of::<E>()` for `try_get_with::<E>`. One kind for
//! everything also works, provided a waiter retries on an error it cannot downcast.

use std::any::{Any, TypeId};
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::sync::{thread_id, Condvar, Mutex, ThreadId};
use hashbrown::HashTable;

/// What a load produced, as handed to the waiters.
#[derive(Clone, Debug)]
pub(crate) enum Outcome<V> {
    /// The value; each waiter gets a clone.
    Value(V),
    /// The initializer's error, shared by all waiters (an `Arc<E>` where `TypeId::of::<E>()`
    /// is typically the kind; downcast with `Arc::downcast`).
    Error(Arc<dyn Any + Send + Sync>),
    /// The leader gave up (panicked, was cancelled, or was a compute): look the key up again.
    Retry,
}

/// One shard of the in-flight table.
type Table<K, V> = Mutex<HashTable<InFlight<K, V>>>;

/// Per-key coalescing of loads: a sharded table of the loads in flight.
pub(crate) struct Coalescer<K, V> {
    /// The in-flight slots, sharded by hash.
    shards: Box<[Table<K, V>]>,
    /// `shards.len() - 1` (the length is a power of two).
    mask: usize,
}

/// One entry of the in-flight table.
struct InFlight<K, V> {
    /// The mixed hash the entry is stored under.
    hash: u64,
    /// The kind of load (see the module docs).
    kind: TypeId,
    /// The key being loaded.
    key: K,
    /// The slot shared by the leader and the waiters.
    slot: Arc<Slot<V>>,
}

/// What the leader and the waiters of one load share.
struct Slot<V> {
    /// Set once by the leader, before the waiters are notified.
    outcome: OnceLock<Outcome<V>>,
    /// The wakers of waiting futures, indexed by [`WaitFuture::id`] (`None` where one was
    /// dropped); also the condition variable's mutex.
    waiters: Mutex<Vec<Option<Waker>>>,
    /// Blocking waiters park here.
    cond: Condvar,
    /// The thread that created the slot, to turn a self-wait into a panic.
    leader: ThreadId,
}

/// The result of [`Coalescer::join`]: lead the load, or wait for it.
#[must_use = "dropping a Join abandons the load (waiters retry)"]
pub(crate) enum Join<'a, K, V> {
    /// No load of this key and kind was in flight: the caller runs it and must finish it.
    Lead(Lead<'a, K, V>),
    /// A load is in flight: wait for its outcome.
    Wait(Wait<V>),
}

/// The right and duty to run one load; dropping it without [`finish`](Lead::finish)
/// finishes it with [`Outcome::Retry`].
#[must_use = "dropping a Lead abandons the load (waiters retry)"]
pub(crate) struct Lead<'a, K, V> {
    /// The table the slot is in.
    coalescer: &'a Coalescer<K, V>,
    /// The mixed hash of the slot's entry.
    hash: u64,
    /// The slot of this load.
    slot: Arc<Slot<V>>,
    /// The outcome to publish on drop; `None` means `Retry`.
    outcome: Option<Outcome<V>>,
}

/// A handle on a load in flight, to wait for its outcome.
#[must_use = "a Wait does nothing unless waited on"]
pub(crate) struct Wait<V> {
    /// The slot of the load.
    slot: Arc<Slot<V>>,
}

/// The future of [`Wait::wait_async`]; runtime-agnostic. Dropping it deregisters its waker.
#[must_use = "futures do nothing unless polled"]
pub(crate) struct WaitFuture<V> {
    /// The slot of the load.
    slot: Arc<Slot<V>>,
    /// Index of this future's waker in the slot's list, once registered.
    id: Option<usize>,
}

/// Spreads any 64-bit hash (even one with only 32 significant bits) over all 64 bits; a
/// bijection, so distinct hashes stay distinct.
#[inline]
fn mix(hash: u64) -> u64 {
    (hash ^ (hash >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl<K, V> Coalescer<K, V> {
    /// A coalescer with `shards` shards (rounded up to a power of two, at least one).
    pub(crate) fn new(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        Self {
            shards: (0..n).map(|_| Mutex::new(HashTable::new())).collect(),
            mask: n - 1,
        }
    }

    /// The shard of a mixed hash.
    #[inline]
    fn shard(&self, hash: u64) -> &Table<K, V> {
        &self.shards[(hash >> 32) as usize & self.mask]
    }

    /// Removes the entry of `slot`; the removed key is dropped after the shard is unlocked.
    fn remove(&self, hash: u64, slot: &Arc<Slot<V>>) {
        let mut table = self.shard(hash).lock();
        let removed = match table.find_entry(hash, |f| Arc::ptr_eq(&f.slot, slot)) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        };
        drop(table);
        drop(removed);
    }

    /// The number of loads in flight (slots in the table).
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// The number of waiter handles on loads in flight (each slot is also held by its entry
    /// and its leader).
    #[cfg(test)]
    fn waiters(&self) -> usize {
        let slots = |s: &Table<K, V>| {
            let table = s.lock();
            table
                .iter()
                .map(|f| Arc::strong_count(&f.slot) - 2)
                .sum::<usize>()
        };
        self.shards.iter().map(slots).sum()
    }
}

impl<K: Eq + Clone, V> Coalescer<K, V> {
    /// Joins the load of `key` of the given `kind`: leads it if none is in flight, else waits
    /// for it. `hash` is any 64-bit hash of the key that is equal for equal keys (pass the
    /// cache's own, e.g. its `hash_one`; it is mixed here, never recomputed).
    pub(crate) fn join(&self, key: &K, hash: u64, kind: TypeId) -> Join<'_, K, V> {
        let hash = mix(hash);
        let mut table = self.shard(hash).lock();
        if let Some(f) = table.find(hash, |f| f.kind == kind && f.key == *key) {
            return Join::Wait(Wait {
                slot: Arc::clone(&f.slot),
            });
        }
        let slot = Arc::new(Slot {
            outcome: OnceLock::new(),
            waiters: Mutex::new(Vec::new()),
            cond: Condvar::new(),
            leader: thread_id(),
        });
        let entry = InFlight {
            hash,
            kind,
            key: key.clone(),
            slot: Arc::clone(&slot),
        };
        table.insert_unique(hash, entry, |f| f.hash);
        drop(table);
        Join::Lead(Lead {
            coalescer: self,
            hash,
            slot,
            outcome: None,
        })
    }
}

impl<V> Slot<V> {
    /// Stores the outcome and wakes every waiter, blocking and async.
    fn publish(&self, outcome: Outcome<V>) {
        // Only the leader sets the outcome, once.
        let _ = self.outcome.set(outcome);
        let mut waiters = self.waiters.lock();
        let wakers = mem::take(&mut *waiters);
        self.cond.notify_all();
        drop(waiters);
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}

impl<K, V> Lead<'_, K, V> {
    /// Finishes the load: removes the slot from the table, then hands `outcome` to every
    /// waiter. Insert a loaded value into the cache *before* calling this.
    pub(crate) fn finish(mut self, outcome: Outcome<V>) {
        self.outcome = Some(outcome);
        // `Drop` publishes it.
    }
}

impl<K, V> Drop for Lead<'_, K, V> {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or(Outcome::Retry);
        self.coalescer.remove(self.hash, &self.slot);
        self.slot.publish(outcome);
    }
}

impl<V: Clone> Wait<V> {
    /// Blocks the thread until the load finishes and returns its outcome.
    ///
    /// # Panics
    /// If this thread leads the load (an initializer waiting for its own key), which would
    /// otherwise deadlock.
    pub(crate) fn wait(self) -> Outcome<V> {
        let slot = &*self.slot;
        if let Some(outcome) = slot.outcome.get() {
            return outcome.clone();
        }
        assert!(
            slot.leader != thread_id(),
            "layercache: an initializer waited for the load of its own key (recursive load); \
             this would deadlock"
        );
        let mut waiters = slot.waiters.lock();
        loop {
            if let Some(outcome) = slot.outcome.get() {
                drop(waiters);
                return outcome.clone();
            }
            slot.cond.wait(&mut waiters);
        }
    }

    /// Waits asynchronously for the load to finish; works with any executor. The future is
    /// `Send` when `V: Send + Sync`.
    pub(crate) fn wait_async(self) -> WaitFuture<V> {
        WaitFuture {
            slot: self.slot,
            id: None,
        }
    }
}

impl<V: Clone> Future for WaitFuture<V> {
    type Output = Outcome<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<V>> {
        let this = self.get_mut();
        if let Some(outcome) = this.slot.outcome.get() {
            return Poll::Ready(outcome.clone());
        }
        let mut waiters = this.slot.waiters.lock();
        if let Some(outcome) = this.slot.outcome.get() {
            drop(waiters);
            return Poll::Ready(outcome.clone());
        }
        let waker = cx.waker();
        match this.id {
            Some(id) => {
                if let Some(Some(old)) = waiters.get_mut(id) {
                    if !old.will_wake(waker) {
                        *old = waker.clone();
                    }
                }
            }
            None => {
                this.id = Some(waiters.len());
                waiters.push(Some(waker.clone()));
            }
        }
        Poll::Pending
    }
}

impl<V> Drop for WaitFuture<V> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            // After `publish` the list is empty and there is nothing to deregister.
            let waker = self.slot.waiters.lock().get_mut(id).and_then(Option::take);
            drop(waker); // outside the lock
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{within, Deadline};
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::{mpsc, Barrier};
    use std::task::Wake;
    use std::thread;
    use std::time::Duration;

    /// The bound of each test body (see [`within`]), in seconds.
    const BODY_SECS: u64 = 60;
    /// How long a test waits for its threads or tasks to reach a point (register as
    /// waiters, finish), in seconds: less than [`BODY_SECS`], so that a wait that lasts too
    /// long fails first, saying what it waited for.
    const WAIT_SECS: u64 = 30;
    /// At most this many rounds of a load loop. A caller goes round again only after a load
    /// it waited for ended without a value (a panic, a cancel, a compute's `Retry`), at most
    /// once per such load, and no test here ends more of them than its 16 x 10,000 computes.
    const ROUNDS: usize = 200_000;

    type C = Coalescer<u64, u64>;
    /// The stand-in cache.
    type Store = Mutex<HashMap<u64, u64>>;
    type Shared = Arc<(C, Store, AtomicUsize)>;
    type Got<E> = Result<u64, Arc<E>>;

    fn shared() -> Shared {
        Arc::new((C::new(8), Store::default(), AtomicUsize::new(0)))
    }

    fn hash(key: u64) -> u64 {
        BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
    }

    /// What a waiter returns; `None` to retry.
    fn take<E: Send + Sync + 'static>(o: Outcome<u64>) -> Option<Got<E>> {
        match o {
            Outcome::Value(v) => Some(Ok(v)),
            Outcome::Error(e) => Some(Err(e.downcast().expect("the kind fixes the type"))),
            Outcome::Retry => None,
        }
    }

    /// The leader's end: stores a value, then hands the result to the waiters.
    fn complete<E: Send + Sync + 'static>(
        store: &Store,
        lead: Lead<'_, u64, u64>,
        r: Result<u64, E>,
    ) -> Got<E> {
        match r {
            Ok(v) => {
                store.lock().insert(7, v);
                lead.finish(Outcome::Value(v));
                Ok(v)
            }
            Err(e) => {
                let e = Arc::new(e);
                lead.finish(Outcome::Error(e.clone()));
                Err(e)
            }
        }
    }

    /// What `Cache::try_get_with` does, over the stand-in cache (kind: the error type).
    fn get_with<E>(c: &C, store: &Store, init: impl FnOnce() -> Result<u64, E>) -> Got<E>
    where
        E: Send + Sync + 'static,
    {
        for _ in 0..ROUNDS {
            if let Some(&v) = store.lock().get(&7) {
                return Ok(v);
            }
            match c.join(&7, hash(7), TypeId::of::<E>()) {
                Join::Lead(lead) => {
                    let cached = store.lock().get(&7).copied(); // a leader may just have left
                    return complete(store, lead, cached.map_or_else(init, Ok));
                }
                Join::Wait(w) => {
                    if let Some(r) = take(w.wait()) {
                        return r;
                    }
                }
            }
        }
        panic!("get_with: {ROUNDS} rounds and no value: the loads it waited for keep retrying")
    }

    /// What `future::Cache::try_get_with` does.
    async fn get_with_async<E, F>(c: &C, store: &Store, init: impl FnOnce() -> F) -> Got<E>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<u64, E>>,
    {
        for _ in 0..ROUNDS {
            let cached = store.lock().get(&7).copied();
            if let Some(v) = cached {
                return Ok(v);
            }
            let join = c.join(&7, hash(7), TypeId::of::<E>());
            match join {
                Join::Lead(lead) => {
                    let cached = store.lock().get(&7).copied();
                    let r = match cached {
                        Some(v) => Ok(v),
                        None => init().await,
                    };
                    return complete(store, lead, r);
                }
                Join::Wait(w) => {
                    if let Some(r) = take(w.wait_async().await) {
                        return r;
                    }
                }
            }
        }
        panic!(
            "get_with_async: {ROUNDS} rounds and no value: the loads it waited for keep retrying"
        )
    }

    /// A runtime for the async tests, which run under [`within`] (not `#[tokio::test]`), so
    /// that a worker blocked for good fails the test too.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    }

    /// Runs `f` on `n` threads started together; returns their results.
    fn race<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
        let (f, barrier) = (&f, &Barrier::new(n));
        thread::scope(|s| {
            let threads: Vec<_> = (0..n)
                .map(|i| s.spawn(move || (barrier.wait(), f(i)).1))
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    /// Runs `n` tasks of `get_with_async`; fails on a hang.
    async fn tasks<F>(s: &Shared, n: usize, init: fn(Shared) -> F) -> Vec<Got<Infallible>>
    where
        F: Future<Output = Result<u64, Infallible>> + Send + 'static,
    {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { get_with_async(&s.0, &s.1, || init(s.clone())).await })
            })
            .collect();
        let all = async {
            let mut got = Vec::new();
            for t in tasks {
                got.push(t.await.unwrap());
            }
            got
        };
        let got = tokio::time::timeout(Duration::from_secs(WAIT_SECS), all).await;
        got.unwrap_or_else(|_| panic!("still waiting for {n} tasks to load after {WAIT_SECS} s"))
    }

    #[test]
    fn threads_load_once() {
        within(BODY_SECS, "64 threads loading one key", || {
            let (c, store, calls) = &*shared();
            let got = race(64, |_| {
                get_with(c, store, || {
                    calls.fetch_add(1, SeqCst);
                    thread::sleep(Duration::from_millis(20));
                    Ok::<_, Infallible>(49)
                })
            });
            assert_eq!(calls.load(SeqCst), 1);
            assert!(got.into_iter().all(|r| r == Ok(49)));
            assert_eq!((c.in_flight(), store.lock().len()), (0, 1));
        });
    }

    #[test]
    fn tasks_load_once() {
        within(BODY_SECS, "1000 tasks loading one key", || {
            runtime().block_on(async {
                let s = shared();
                let got = tasks(&s, 1000, |s| async move {
                    s.2.fetch_add(1, SeqCst);
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(49)
                });
                assert!(got.await.into_iter().all(|r| r == Ok(49)));
                assert_eq!((s.2.load(SeqCst), s.0.in_flight()), (1, 0));
            })
        });
    }

    #[test]
    fn error_is_shared_and_not_cached() {
        within(BODY_SECS, "64 threads sharing one error", || {
            let (c, store, calls) = &*shared();
            let got = race(64, |_| {
                get_with(c, store, || {
                    calls.fetch_add(1, SeqCst);
                    // Errors are not cached: fail only once everyone waits for this load.
                    let deadline = Deadline::after(WAIT_SECS);
                    while c.waiters() < 63 {
                        deadline.check(format_args!("63 waiters (got {})", c.waiters()));
                        thread::sleep(Duration::from_millis(1));
                    }
                    Err::<u64, _>(String::from("no"))
                })
            });
            assert_eq!(calls.load(SeqCst), 1);
            let errors: Vec<Arc<String>> = got.into_iter().map(Result::unwrap_err).collect();
            assert!(errors
                .iter()
                .all(|e| Arc::ptr_eq(e, &errors[0]) && **e == "no"));
            assert!(store.lock().is_empty() && c.in_flight() == 0);
        });
    }

    /// 64 threads load a key with initializers that panic (all, or only the first one);
    /// returns how many threads got the value and how many loads ran.
    fn panicking_loads(all_panic: bool) -> (usize, usize) {
        let (c, store, calls) = &*shared();
        let got = race(64, |_| {
            catch_unwind(AssertUnwindSafe(|| {
                get_with(c, store, || {
                    let first = calls.fetch_add(1, SeqCst) == 0;
                    thread::sleep(Duration::from_millis(if all_panic { 1 } else { 20 }));
                    if all_panic || first {
                        resume_unwind(Box::new("init failed")); // unwinds without the hook
                    }
                    Ok::<_, Infallible>(49)
                })
            }))
        });
        assert_eq!(c.in_flight(), 0);
        let values = got.iter().filter(|r| matches!(r, Ok(Ok(49)))).count();
        assert_eq!(values + got.iter().filter(|r| r.is_err()).count(), 64);
        (values, calls.load(SeqCst))
    }

    #[test]
    fn panicking_inits_do_not_hang() {
        within(BODY_SECS, "64 threads whose loads all panic", || {
            assert_eq!(panicking_loads(true), (0, 64), "each thread led once")
        });
    }

    #[test]
    fn next_leader_takes_over_after_a_panic() {
        within(BODY_SECS, "64 threads after a panicking load", || {
            assert_eq!(panicking_loads(false), (63, 2))
        });
    }

    #[test]
    fn cancelled_leader_is_replaced() {
        within(BODY_SECS, "waiters of a cancelled leader", || {
            runtime().block_on(cancelled_leader_is_replaced_body())
        });
    }

    async fn cancelled_leader_is_replaced_body() {
        let s = shared();
        let (started_tx, started) = mpsc::channel();
        let s2 = s.clone();
        let leader = tokio::spawn(async move {
            get_with_async(&s2.0, &s2.1, || async {
                s2.2.fetch_add(1, SeqCst);
                let _ = started_tx.send(());
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<_, Infallible>(0)
            })
            .await
        });
        tokio::task::spawn_blocking(move || started.recv_timeout(Duration::from_secs(WAIT_SECS)))
            .await
            .unwrap()
            .expect("the leader's load never started");
        // A waiter created while the leader runs sees the leader's cancellation as Retry.
        let Join::Wait(direct) = s.0.join(&7, hash(7), TypeId::of::<Infallible>()) else {
            panic!("the load is in flight")
        };
        let direct = tokio::spawn(direct.wait_async());
        let waiters = tasks(&s, 100, |s| async move {
            s.2.fetch_add(1, SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(49)
        });
        let cancel = async {
            let deadline = Deadline::after(WAIT_SECS);
            while s.0.waiters() < 101 {
                deadline.check(format_args!("101 waiters (got {})", s.0.waiters()));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            leader.abort(); // drops the leader's future mid-load
            assert!(leader.await.unwrap_err().is_cancelled());
            assert!(matches!(direct.await.unwrap(), Outcome::Retry));
        };
        let (got, ()) = tokio::join!(waiters, cancel);
        assert!(got.into_iter().all(|r| r == Ok(49)));
        assert_eq!((s.2.load(SeqCst), s.0.in_flight()), (2, 0));
    }

    #[test]
    fn kinds_do_not_coalesce() {
        let c = C::new(1);
        let a = c.join(&7, 1, TypeId::of::<u8>());
        let b = c.join(&7, 1, TypeId::of::<u16>());
        let a2 = c.join(&7, 1, TypeId::of::<u8>());
        let other_key = c.join(&8, 1, TypeId::of::<u8>()); // same hash, other key
        assert!(matches!((&a, &b), (Join::Lead(_), Join::Lead(_))));
        assert!(matches!((&a2, &other_key), (Join::Wait(_), Join::Lead(_))));
        assert_eq!(c.in_flight(), 3);
        drop((a, b, a2, other_key));
        assert_eq!(c.in_flight(), 0);

        // Through the helper: both initializers must run at once to pass the barrier.
        within(BODY_SECS, "loads of two kinds at once", || {
            let (c, store, _) = &*shared();
            let both = Barrier::new(2);
            let init = || (both.wait(), 0).1;
            let got = race(2, |i| match i {
                0 => get_with(c, store, || Err(init() as u8))
                    .unwrap_err()
                    .to_string(),
                _ => get_with(c, store, || Err(init() as u16))
                    .unwrap_err()
                    .to_string(),
            });
            assert_eq!(got, ["0", "0"]);
        });
    }

    #[test]
    fn compute_pattern_loses_no_update() {
        within(BODY_SECS, "16 threads of computes", || {
            let (c, store, _) = &*shared();
            race(16, |_| {
                for _ in 0..10_000 {
                    let mut led = false;
                    for _ in 0..ROUNDS {
                        match c.join(&7, hash(7), TypeId::of::<Count>()) {
                            Join::Lead(lead) => {
                                let n = store.lock().get(&7).copied().unwrap_or(0);
                                store.lock().insert(7, n + 1);
                                lead.finish(Outcome::Retry);
                                led = true;
                                break;
                            }
                            Join::Wait(w) => drop(w.wait()),
                        }
                    }
                    assert!(led, "a compute waited {ROUNDS} times and never led");
                }
            });
            assert_eq!(store.lock().get(&7), Some(&160_000));
            assert_eq!(c.in_flight(), 0);
        });
    }

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn late_waiters_see_the_stored_outcome_and_wakers_are_woken() {
        within(BODY_SECS, "waits for finished loads", late_waiters_body);
    }

    fn late_waiters_body() {
        let c = C::new(4);
        let join = |key| c.join(&key, key, TypeId::of::<()>());
        let wait = |key| match join(key) {
            Join::Wait(w) => w,
            Join::Lead(_) => panic!("no load in flight"),
        };
        let Join::Lead(lead) = join(1) else { panic!() };
        let late = wait(1);
        // Two async waiters register wakers; one is dropped while registered.
        let (kept_w, gone_w) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let (mut kept, mut gone) = (wait(1).wait_async(), wait(1).wait_async());
        let poll = |f: &mut WaitFuture<u64>, w: &Arc<Count>| {
            let waker = Waker::from(w.clone());
            Pin::new(f).poll(&mut Context::from_waker(&waker))
        };
        assert!(poll(&mut kept, &kept_w).is_pending() && poll(&mut gone, &gone_w).is_pending());
        assert!(
            poll(&mut kept, &kept_w).is_pending(),
            "a re-poll keeps one registration"
        );
        drop(gone);
        lead.finish(Outcome::Value(5));
        assert_eq!(c.in_flight(), 0);
        assert_eq!((kept_w.0.load(SeqCst), gone_w.0.load(SeqCst)), (1, 0));
        assert!(matches!(
            poll(&mut kept, &kept_w),
            Poll::Ready(Outcome::Value(5))
        ));
        assert!(matches!(late.wait(), Outcome::Value(5)));
        assert!(matches!(join(1), Join::Lead(_)), "a new load after finish");

        // A lead dropped without finishing publishes Retry.
        let Join::Lead(lead) = join(2) else { panic!() };
        let w = wait(2);
        drop(lead);
        assert!(matches!(w.wait(), Outcome::Retry));
    }

    #[test]
    fn recursive_load_panics_instead_of_deadlocking() {
        within(BODY_SECS, "a load of the key it loads", || {
            let (c, store, _) = &*shared();
            let r = catch_unwind(AssertUnwindSafe(|| {
                get_with::<Infallible>(c, store, || {
                    Ok(get_with::<Infallible>(c, store, || Ok(1)).unwrap())
                })
            }));
            assert!(r.is_err());
            assert_eq!(c.in_flight(), 0);
        });
    }
}
