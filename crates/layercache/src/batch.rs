//! `TieredCache::get_many_or_load`: batch reads and batch loads with per-key coalescing.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::future::{join_all, BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::Error;
use crate::key::{l2_key, CacheKey};
use crate::l2::{Found, Lease};
use crate::options::EntryOptions;
use crate::tiered::{Filled, L1Hit, SharedError, Slot, TieredCache};

/// What the L2 step of a batch found for a key it did not serve.
enum Prev {
    /// The options do not read L2.
    Unread,
    /// Nothing.
    Absent,
    /// Another fill's lease.
    Filling,
    /// An expired, dead or corrupt entry (these bytes).
    Stale(Vec<u8>),
}

/// What a batch load returned, and the keys whose L2 lease an invalidation took while it
/// ran (their values go to the callers, not into L1).
type Loaded<K, V> = Arc<(HashMap<K, V>, HashSet<K>)>;

/// One batch of keys on its way to the batch loader.
type Batch<'b, K, V> = Shared<BoxFuture<'b, Result<Loaded<K, V>, SharedError>>>;

/// The keys registered for the batch that is still open, and that batch.
struct OpenBatch<'b, K, V> {
    keys: Vec<K>,
    batch: Option<Batch<'b, K, V>>,
}

impl<K, V> TieredCache<K, V>
where
    K: CacheKey + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The values of `keys`: what L1 has, then what L2 has (one `get_many`), then one call
    /// of `batch_loader` with all the keys still missing (a second call only for keys this
    /// call had to wait for and then load itself), whose values are written to both tiers (L2
    /// with one `set_many`, or on a tier with conditional writes by a compare-and-set per
    /// key over the lease taken before the load, so a load that overlaps an invalidation of
    /// a key does not store it). Keys the loader does not return are absent from the
    /// result (and not cached).
    ///
    /// Per-key coalescing is kept: a key that another caller (of this method or of
    /// `get_or_load`) is loading at the same moment is not passed to `batch_loader`; this
    /// call waits for that load instead.
    ///
    /// # Errors
    /// [`Error::Loader`] if `batch_loader` failed (for any key this call needed from it).
    pub async fn get_many_or_load<F, Fut, E>(
        &self,
        keys: Vec<K>,
        batch_loader: F,
    ) -> Result<HashMap<K, V>, Error>
    where
        F: Fn(Vec<K>) -> Fut + Sync,
        Fut: Future<Output = Result<HashMap<K, V>, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        self.start_backplane();
        let opts = self.inner.defaults.clone();
        let mut out = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            match self.l1_hit(&key) {
                L1Hit::Hit(value) => {
                    if let Some(v) = value {
                        out.insert(key, v);
                    }
                }
                L1Hit::Miss => missing.push(key),
                L1Hit::Dead => {
                    // Dropped, so the coalesced load below does not return it.
                    self.inner.l1.invalidate(&key).await;
                    missing.push(key);
                }
            }
        }
        let opts = &opts;
        let found = Mutex::new(HashMap::new());
        self.l2_batch(&mut missing, &mut out, opts, &found).await;
        if missing.is_empty() {
            return Ok(out);
        }
        self.load_batch(missing, &batch_loader, opts, &found, out)
            .await
    }

    /// The loader part of [`get_many_or_load`](Self::get_many_or_load): the keys still
    /// `missing` after both tiers, with what the L2 step `found` for each.
    async fn load_batch<F, Fut, E>(
        &self,
        missing: Vec<K>,
        batch_loader: &F,
        opts: &EntryOptions,
        found: &Mutex<HashMap<K, Prev>>,
        mut out: HashMap<K, V>,
    ) -> Result<HashMap<K, V>, Error>
    where
        F: Fn(Vec<K>) -> Fut + Sync,
        Fut: Future<Output = Result<HashMap<K, V>, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        self.inner.meters.miss.increment(missing.len() as u64);
        // The keys this call leads go to the loader in batches. Each key's coalesced load
        // registers its key in the open batch and awaits it. The first batch waits until every
        // load of this call has been polled once (each has then either registered, found its
        // value, or is waiting on another caller's load), then closes, taking its keys. A
        // load that only becomes the leader later (the caller it waited on gave up) opens a
        // new batch, so every key reaches the loader exactly once.
        let n = missing.len();
        let started = AtomicUsize::new(0);
        let gate_open = AtomicBool::new(false);
        let gate = Notify::new();
        // Declared after what its batches borrow, so it is dropped first.
        let open = Arc::new(Mutex::new(OpenBatch::<K, V> {
            keys: Vec::new(),
            batch: None,
        }));
        let loader = batch_loader;
        let version = self.inner.co.version();
        let join = |key: K| {
            let mut guard = open.lock();
            guard.keys.push(key);
            if let Some(batch) = &guard.batch {
                return batch.clone();
            }
            let open = Arc::clone(&open);
            let (gate, gate_open) = (&gate, &gate_open);
            let batch = async move {
                if !gate_open.load(Ordering::SeqCst) {
                    // `notify_one` leaves a permit if it comes first.
                    gate.notified().await;
                }
                let keys = {
                    let mut guard = open.lock();
                    guard.batch = None;
                    std::mem::take(&mut guard.keys)
                };
                // tokio's clock: real time, or a paused test's.
                // The leases of the keys this batch loads (it leads their loads), taken
                // before the loader reads the origin.
                let leases = self.lease_batch(&keys, found, opts).await;
                let started = tokio::time::Instant::now();
                let loaded = loader(keys).await;
                self.inner
                    .meters
                    .load_seconds
                    .record(started.elapsed().as_secs_f64());
                match loaded {
                    Ok(map) => {
                        self.inner.meters.load_ok.increment(1);
                        let raced = self.l2_store_batch(&map, version, opts, leases).await;
                        Ok(Arc::new((map, raced)))
                    }
                    Err(e) => {
                        self.inner.meters.load_error.increment(1);
                        self.release_all(leases).await;
                        Err::<_, SharedError>(Arc::from(e.into()))
                    }
                }
            }
            .boxed()
            .shared();
            guard.batch = Some(batch.clone());
            batch
        };
        let loads = missing.into_iter().map(|key| {
            let join = &join;
            let fill = {
                let key = key.clone();
                let k2 = l2_key(&self.inner.name, &key);
                let ticket = self.inner.co.guard.ticket(&k2[..]);
                async move {
                    Err::<Slot<V>, _>(match join(key.clone()).await {
                        Ok(loaded) => match loaded.0.get(&key) {
                            Some(v) => {
                                let slot = self.slot(
                                    Some(v.clone()),
                                    opts.effective_l1_ttl(),
                                    version,
                                    opts,
                                );
                                if !loaded.1.contains(&key) {
                                    self.commit(ticket, key, slot.clone(), opts);
                                }
                                Filled::Done(slot)
                            }
                            None => Filled::Absent,
                        },
                        Err(e) => Filled::Failed(e),
                    })
                }
            };
            let started = &started;
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                (key.clone(), self.inner.l1.try_get_with(key, fill).await)
            }
        });
        let mut all = std::pin::pin!(join_all(loads));
        let results = std::future::poll_fn(|cx| {
            let r = all.as_mut().poll(cx);
            if !gate_open.load(Ordering::SeqCst) && started.load(Ordering::SeqCst) == n {
                gate_open.store(true, Ordering::SeqCst);
                gate.notify_one();
            }
            r
        })
        .await;
        for (key, result) in results {
            let value = match result {
                Ok(slot) => slot.value,
                Err(e) => match &*e {
                    Filled::Done(slot) => slot.value.clone(),
                    Filled::Failed(e) => return Err(Error::Loader(Arc::clone(e))),
                    Filled::Absent => None,
                },
            };
            if let Some(v) = value {
                out.insert(key, v);
            }
        }
        Ok(out)
    }

    /// Moves the keys L2 has from `missing` to `out` (promoting them into L1), and records
    /// in `found` what L2 holds for each key left (for its lease, if this call loads it).
    async fn l2_batch(
        &self,
        missing: &mut Vec<K>,
        out: &mut HashMap<K, V>,
        opts: &EntryOptions,
        found: &Mutex<HashMap<K, Prev>>,
    ) {
        let Some(l2) = self.inner.l2.as_ref().filter(|_| !missing.is_empty()) else {
            return;
        };
        if !opts.reads_l2() {
            found
                .lock()
                .extend(missing.iter().map(|k| (k.clone(), Prev::Unread)));
            return;
        }
        let k2s: Vec<Vec<u8>> = missing
            .iter()
            .map(|k| l2_key(&self.inner.name, k))
            .collect();
        let tickets: Vec<_> = k2s
            .iter()
            .map(|k2| self.inner.co.guard.ticket(&k2[..]))
            .collect();
        let refs: Vec<&[u8]> = k2s.iter().map(Vec::as_slice).collect();
        // A failed read is taken as all misses (as a single fill does).
        let got = match l2.call("get_many", |t| t.get_many(&refs)).await {
            Ok(got) => got,
            Err(_) => vec![None; k2s.len()],
        };
        let mut still = Vec::with_capacity(missing.len());
        for (((key, k2), bytes), ticket) in missing.drain(..).zip(&k2s).zip(got).zip(tickets) {
            let prev = match bytes {
                None => Prev::Absent,
                Some(b) => match self.open(k2, &b, opts).await {
                    Found::Hit(slot) => {
                        self.inner.meters.hit_l2.increment(1);
                        if let Some(v) = slot.value.clone() {
                            out.insert(key.clone(), v);
                        }
                        self.commit(ticket, key, slot, opts);
                        continue;
                    }
                    Found::Lease => Prev::Filling,
                    Found::Corrupt | Found::Dead => Prev::Stale(b),
                },
            };
            found.lock().insert(key.clone(), prev);
            still.push(key);
        }
        *missing = still;
    }

    /// Leases (see [`crate::l2`]) on `keys`, by what the L2 step found for each.
    async fn lease_batch(
        &self,
        keys: &[K],
        found: &Mutex<HashMap<K, Prev>>,
        opts: &EntryOptions,
    ) -> HashMap<K, Lease> {
        let Some(l2) = self.inner.l2.as_ref() else {
            return HashMap::new();
        };
        let prevs: Vec<(K, Prev)> = {
            let mut found = found.lock();
            keys.iter()
                // A key the L2 step did not see (this call leads it only because the
                // caller it waited on gave up) is read again by no one: not written.
                .map(|k| (k.clone(), found.remove(k).unwrap_or(Prev::Filling)))
                .collect()
        };
        let leases = prevs.into_iter().map(|(key, prev)| async move {
            let lease = match prev {
                Prev::Unread if opts.writes_l2() => Lease::Plain,
                Prev::Unread => Lease::NoWrite,
                Prev::Filling => Lease::Busy,
                Prev::Absent => {
                    self.take_lease(l2, &l2_key(&self.inner.name, &key), None, opts)
                        .await
                }
                Prev::Stale(b) => {
                    self.take_lease(l2, &l2_key(&self.inner.name, &key), Some(b), opts)
                        .await
                }
            };
            (key, lease)
        });
        join_all(leases).await.into_iter().collect()
    }

    /// Gives back every lease in `leases`.
    async fn release_all(&self, leases: HashMap<K, Lease>) {
        join_all(leases.into_iter().map(|(k, lease)| async move {
            self.release(&l2_key(&self.inner.name, &k), lease).await
        }))
        .await;
    }

    /// Writes a batch loader's values to L2: by compare-and-set over their leases, and with
    /// one `set_many` on a tier without conditional writes. The keys whose lease was lost
    /// (an invalidation came in between).
    async fn l2_store_batch(
        &self,
        map: &HashMap<K, V>,
        version: layercache_tier::StreamId,
        opts: &EntryOptions,
        mut leases: HashMap<K, Lease>,
    ) -> HashSet<K> {
        let mut raced = HashSet::new();
        let Some(l2) = self.inner.l2.as_ref().filter(|_| opts.writes_l2()) else {
            return raced;
        };
        let ttl = opts.effective_ttl();
        let (mut plain, mut held) = (Vec::new(), Vec::new());
        for (key, value) in map {
            match leases.remove(key) {
                Some(Lease::Plain) => plain.push((key, value)),
                Some(Lease::Held(marker)) => held.push((key, value, marker)),
                Some(Lease::Busy | Lease::NoWrite) | None => {}
            }
        }
        // Keys the loader did not return.
        self.release_all(leases).await;
        let seal = |key: &K, value: &V| {
            let k2 = l2_key(&self.inner.name, key);
            let bytes = self
                .seal(&k2, Some(value), ttl, version, opts)
                .ok()
                .flatten();
            (k2, bytes)
        };
        let sealed: Vec<(Vec<u8>, Vec<u8>)> = plain
            .iter()
            .filter_map(|(k, v)| match seal(k, v) {
                (k2, Some(bytes)) => Some((k2, bytes)),
                (_, None) => None,
            })
            .collect();
        if !sealed.is_empty() {
            let entries: Vec<(&[u8], &[u8])> = sealed
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            if l2
                .call("set_many", |t| t.set_many(&entries, ttl))
                .await
                .is_err()
            {
                self.inner.meters.skipped_l2_error.increment(1);
            }
        }
        let stores = held.into_iter().map(|(key, value, marker)| {
            let (k2, bytes) = seal(key, value);
            async move {
                let stored = self.store_leased(&k2, marker, bytes, ttl).await;
                (!stored).then(|| key.clone())
            }
        });
        raced.extend(join_all(stores).await.into_iter().flatten());
        raced
    }
}
