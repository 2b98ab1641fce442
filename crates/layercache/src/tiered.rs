//! [`TieredCache`]: an in-process L1 over an optional shared L2, with coalesced loading.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use layercache_memory::{future::Cache as L1, Expiry};
use layercache_tier::StreamId;
use tracing::Instrument;

use crate::breaker::Guarded;
use crate::clock::SharedClock;
use crate::codec::Codec;
use crate::coherence::{subscriber, Coherence, Sink};
use crate::error::Error;
use crate::key::{l2_key, CacheKey};
use crate::message::Action;
use crate::meters::Meters;
use crate::options::EntryOptions;

/// A boxed error from a loader, shared by every caller of one load.
pub type SharedError = Arc<dyn std::error::Error + Send + Sync>;

/// What L1 holds for a key: a value or a cached absence, with its own lifetime, and for a
/// tagged entry its [`Stamp`].
#[derive(Clone)]
pub(crate) struct Slot<V> {
    pub(crate) value: Option<V>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) stamp: Option<Arc<Stamp>>,
}

/// A tagged L1 entry's version and tags, and the tag epoch at which they were last found
/// live (so a hit compares one number unless a tag or clear message arrived since).
pub(crate) struct Stamp {
    pub(crate) version: StreamId,
    pub(crate) tags: Arc<[Arc<str>]>,
    pub(crate) checked: AtomicU64,
}

/// What an L1 lookup found.
pub(crate) enum L1Hit<V> {
    /// A value or cached absence that may be served.
    Hit(Option<V>),
    /// Nothing servable (absent, L1 not trusted, or skipped).
    Miss,
    /// An entry a tag or clear killed (or whose tag versions are not known here).
    Dead,
}

/// Gives each L1 entry the lifetime its [`Slot`] carries.
pub(crate) struct SlotExpiry;

impl<K, V> Expiry<K, Slot<V>> for SlotExpiry {
    fn expire_after_create(&self, _: &K, slot: &Slot<V>) -> Option<Duration> {
        slot.ttl
    }
    fn expire_after_update(&self, _: &K, slot: &Slot<V>, _: Option<Duration>) -> Option<Duration> {
        slot.ttl
    }
    fn reads_change_deadlines(&self) -> bool {
        false
    }
}

/// What a fill produced. Fills put their result into L1 themselves (through the race
/// guard), so they hand it to the engine's coalesced load as this "error", which the
/// engine shares with the waiters and does not store.
pub(crate) enum Filled<V> {
    /// The slot, already in L1 if it was allowed to go there.
    Done(Slot<V>),
    /// The loader failed.
    Failed(SharedError),
    /// A batch loader returned nothing for the key.
    Absent,
}

/// A multi-level cache: an in-process L1 ([`layercache_memory`]) over an optional shared
/// L2 [`Tier`](crate::Tier) (Redis, the embedded disk tier, ...), with loads coalesced per key.
///
/// A read looks in L1, then in L2 (a value found there is *promoted* into L1 with its
/// remaining lifetime), then, for the `get_or_load` family, asks the loader, once per key
/// per process however many callers ask at the same moment, and writes what it returns to
/// both tiers. Values reach L2 through the [`Codec`](crate::Codec) inside a versioned
/// [envelope](crate::envelope); anything in L2 that does not decode is a miss, is deleted,
/// and is counted (`layercache_decode_failures_total`).
///
/// L2 calls have a deadline and sit behind a circuit breaker ([`BreakerConfig`](crate::BreakerConfig)): while
/// L2 is sick, reads fall through to the loader and writes to L2 are skipped, so
/// `get_or_load` fails only when its loader fails.
///
/// Metrics (the [`metrics`] facade; every one has the label `cache`, the cache's name, and
/// none has the key; handles are made when the cache is built, so install the recorder
/// first):
/// - `layercache_hits_total{tier="l1"|"l2"}`: reads answered by L1 (also a caller that
///   shared another caller's load) or by L2 (then promoted);
/// - `layercache_misses_total{tier="all"}`: keys found in neither tier (for
///   `get_many_or_load`, each key left for its loader);
/// - `layercache_loads_total{outcome="ok"|"absent"|"error"}`: loader runs (a batch loader's
///   call is one);
/// - `layercache_load_seconds` (histogram): how long each loader run took, on tokio's clock;
/// - `layercache_l2_errors_total{tier,op,kind}`: failed L2 calls, `tier` the [`Tier`](crate::Tier)'s name,
///   `op` one of `get`, `set`, `delete`, `get_many`, `set_many`, and `kind` `backend`,
///   `timeout` or `circuit_open` (refused without calling the tier);
/// - `layercache_decode_failures_total{reason}`: L2 entries that did not decode, by
///   [`DecodeError::reason`](crate::envelope::DecodeError::reason), or `codec` when the
///   envelope was sound but the codec rejected its payload;
/// - `layercache_l2_writes_skipped_total{reason="oversized"|"l2_error"}`: values not stored in
///   L2, over [`max_payload`](crate::TieredCacheBuilder::max_payload) or because the write failed;
/// - `layercache_l2_breaker_open{tier}` (gauge): 1 while the breaker is open or half-open,
///   else 0.
///
/// Loads and L2 calls run in `tracing` spans (`layercache.load`, `layercache.l2`).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use layercache::TieredCache;
///
/// let products: TieredCache<u64, String> = TieredCache::builder("products").build();
/// let name = products
///     .get_or_load(7, || async { Ok::<_, std::io::Error>("lamp".to_string()) })
///     .await
///     .unwrap();
/// assert_eq!(name, "lamp");
/// assert_eq!(products.get(&7).await.unwrap().as_deref(), Some("lamp"));
/// # });
/// ```
pub struct TieredCache<K, V> {
    pub(crate) inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for TieredCache<K, V> {
    fn clone(&self) -> Self {
        TieredCache {
            inner: Arc::clone(&self.inner),
        }
    }
}

pub(crate) struct Inner<K, V> {
    pub(crate) co: Arc<Coherence>,
    /// See [`TieredCacheBuilder::lease_ttl`](crate::TieredCacheBuilder::lease_ttl).
    pub(crate) lease_ttl: Duration,
    pub(crate) name: Arc<str>,
    pub(crate) l1: L1<K, Slot<V>>,
    pub(crate) l2: Option<Guarded>,
    pub(crate) codec: Box<dyn Codec<V>>,
    pub(crate) defaults: EntryOptions,
    pub(crate) meters: Meters,
    pub(crate) max_payload: usize,
    pub(crate) compress_above: usize,
    /// The wall clock of envelopes (the same time as L1's clock).
    pub(crate) clock: SharedClock,
}

impl<K, V> Drop for Inner<K, V> {
    fn drop(&mut self) {
        // Stops the subscriber (it holds only a weak reference to this).
        self.co.stopped.store(true, Ordering::Release);
        self.co.shutdown.notify_one();
    }
}

impl<K, V> TieredCache<K, V>
where
    K: CacheKey + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The cache's name (its L2 key prefix and metrics label).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// This instance's id on the backplane: random, made when the cache is built (messages
    /// it published are skipped when they come back).
    pub fn instance_id(&self) -> u128 {
        self.inner.co.instance
    }

    /// Whether L1 is being served: always without a backplane; with one, once its
    /// subscriber has connected and caught up, and until it has not heard from the stream
    /// for [`max_staleness`](crate::TieredCacheBuilder::max_staleness).
    pub fn l1_trusted(&self) -> bool {
        self.inner.co.l1_trusted()
    }

    /// The newest backplane position this instance has applied or published (see
    /// [`StreamId`]): every message up to it has been applied here. `StreamId::ZERO` until
    /// the subscriber first connects; without a backplane, this instance's own clock of tag
    /// and clear versions. For tests and dashboards (compare it with the stream's last id).
    pub fn backplane_version(&self) -> StreamId {
        self.inner.co.version()
    }

    /// Starts the backplane's subscriber if it has not started (it needs a Tokio runtime,
    /// which `build` may not have had).
    pub(crate) fn start_backplane(&self) {
        let inner: Weak<Inner<K, V>> = Arc::downgrade(&self.inner);
        let sink: Weak<dyn Sink> = inner;
        subscriber::start(&self.inner.co, sink);
    }

    pub(crate) fn count(&self, metric: &'static str, label: &'static str, value: &'static str) {
        metrics::counter!(metric, "cache" => self.inner.name.to_string(), label => value)
            .increment(1);
    }

    /// The value of `key`: from L1, else from L2 (then promoted into L1), else `None`.
    /// A cached absence is `None` too.
    ///
    /// # Errors
    /// None today (a sick L2 is a miss); the `Result` leaves room for key encodings that can
    /// fail.
    #[inline]
    pub async fn get(&self, key: &K) -> Result<Option<V>, Error> {
        // The L1 hit is the hot path: it reads the shard directly (no inner future) and
        // copies nothing it does not return.
        match self.l1_hit(key) {
            L1Hit::Hit(value) => Ok(value),
            L1Hit::Miss => self.get_below_l1(key, false).await,
            L1Hit::Dead => self.get_below_l1(key, true).await,
        }
    }

    /// What L1 holds for `key` and may serve, counted as an L1 hit.
    #[inline]
    pub(crate) fn l1_hit(&self, key: &K) -> L1Hit<V> {
        let inner = &*self.inner;
        if !inner.defaults.reads_l1() || !inner.co.l1_trusted() {
            return L1Hit::Miss;
        }
        // The slot is read in place: only the value is cloned (a tagged entry's stamp, an
        // `Arc`, is not touched).
        let found = inner.l1.as_sync().get_map(key, |slot| match &slot.stamp {
            Some(stamp) if !self.stamp_live(stamp) => None,
            _ => Some(slot.value.clone()),
        });
        match found {
            None => L1Hit::Miss,
            Some(None) => L1Hit::Dead,
            Some(Some(value)) => {
                inner.meters.hit_l1.increment(1);
                L1Hit::Hit(value)
            }
        }
    }

    /// Whether a tagged L1 entry is still live by the tag versions known here: one compare
    /// unless a tag or clear message arrived since the entry was last checked.
    #[inline]
    fn stamp_live(&self, stamp: &Stamp) -> bool {
        let epoch = self.inner.co.tags.epoch();
        stamp.checked.load(Ordering::Relaxed) == epoch || self.stamp_recheck(stamp, epoch)
    }

    /// [`stamp_live`](Self::stamp_live) after the epoch moved: the entry's tags looked up.
    #[cold]
    #[inline(never)]
    fn stamp_recheck(&self, stamp: &Stamp, epoch: u64) -> bool {
        let tags = &self.inner.co.tags;
        match tags.is_dead(stamp.version, stamp.tags.iter().map(|t| &**t)) {
            Some(false) => {
                stamp.checked.store(epoch, Ordering::Relaxed);
                true
            }
            Some(true) | None => false,
        }
    }

    /// Whether L1's entry for `key` (if any) may be served; drops it if not, so a
    /// coalesced load does not return it.
    async fn drop_unservable(&self, key: &K, opts: &EntryOptions) {
        let servable = opts.reads_l1()
            && match self.inner.l1.as_sync().get(key) {
                None => true,
                Some(slot) => {
                    self.inner.co.l1_trusted()
                        && slot.stamp.as_deref().is_none_or(|s| self.stamp_live(s))
                }
            };
        if !servable {
            self.inner.l1.invalidate(key).await;
        }
    }

    /// `get` after an L1 miss: L2, promoting what it finds (`dead`: L1's entry was killed
    /// by a tag or clear, and is dropped if L2 has nothing newer).
    async fn get_below_l1(&self, key: &K, dead: bool) -> Result<Option<V>, Error> {
        self.start_backplane();
        let opts = &self.inner.defaults;
        let k2 = l2_key(&self.inner.name, key);
        let ticket = self.inner.co.guard.ticket(&k2[..]);
        if let Some(slot) = self.l2_lookup(&k2, opts).await {
            self.inner.meters.hit_l2.increment(1);
            let value = slot.value.clone();
            self.commit(ticket, key.clone(), slot, opts);
            return Ok(value);
        }
        if dead {
            self.inner.l1.invalidate(key).await;
        }
        self.inner.meters.miss.increment(1);
        Ok(None)
    }

    /// Puts a fill's slot into L1 if `opts` write L1 and no invalidation of the key was
    /// applied since `ticket` (see [`RaceGuard`](crate::coherence::RaceGuard)).
    pub(crate) fn commit(
        &self,
        ticket: crate::coherence::Ticket,
        key: K,
        slot: Slot<V>,
        opts: &EntryOptions,
    ) {
        if opts.writes_l1() {
            let l1 = self.inner.l1.as_sync();
            self.inner.co.guard.commit(ticket, || l1.insert(key, slot));
        }
    }

    /// The L1 slot of a value (or absence) written at `version` with `opts`' tags.
    pub(crate) fn slot(
        &self,
        value: Option<V>,
        ttl: Option<Duration>,
        version: StreamId,
        opts: &EntryOptions,
    ) -> Slot<V> {
        let stamp = opts.shared_tags().map(|tags| {
            Arc::new(Stamp {
                version,
                tags: Arc::clone(tags),
                checked: AtomicU64::new(0),
            })
        });
        Slot { value, ttl, stamp }
    }

    /// The bytes a backplane message names `key` by (its L2 key without the prefix).
    pub(crate) fn subject<'k>(&self, k2: &'k [u8]) -> &'k [u8] {
        &k2[self.inner.name.len() + 1..]
    }

    /// Stores `value` under `key` in both tiers, with the default [`EntryOptions`].
    ///
    /// # Errors
    /// [`Error::Encode`] if the codec cannot encode it and [`Error::Tag`] for tags out of
    /// bounds (nothing is stored); [`Error::Tier`] if the L2 write failed (L1 is still
    /// updated, so this process sees the new value, and other instances are told).
    pub async fn set(&self, key: K, value: V) -> Result<(), Error> {
        let opts = self.inner.defaults.clone();
        self.set_with(key, value, &opts).await
    }

    /// As [`set`](Self::set), with `options`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub async fn set_with(&self, key: K, value: V, options: &EntryOptions) -> Result<(), Error> {
        self.start_backplane();
        crate::l2::check_tags(options)?;
        let k2 = l2_key(&self.inner.name, &key);
        let version = self.inner.co.version();
        let l2 = self
            .l2_write(&k2, Some(&value), options.effective_ttl(), version, options)
            .await;
        if let Err(e @ Error::Encode(_)) = l2 {
            return Err(e);
        }
        // Loads of the key that started before this write must not put older values in L1.
        self.inner.co.guard.bump(&k2[..]);
        if options.writes_l1() {
            let slot = self.slot(Some(value), options.effective_l1_ttl(), version, options);
            self.inner.l1.as_sync().insert(key, slot);
        } else {
            self.inner.l1.invalidate(&key).await;
        }
        self.inner.co.publish(Action::Set, self.subject(&k2)).await;
        l2
    }

    /// Removes `key` from both tiers, and from every instance's L1 through the backplane.
    ///
    /// # Errors
    /// [`Error::Tier`] if the L2 delete failed (L1 is still cleared, and other instances
    /// are still told).
    pub async fn remove(&self, key: &K) -> Result<(), Error> {
        self.start_backplane();
        let k2 = l2_key(&self.inner.name, key);
        // L2 first: a fill that reads L2 after the L1 removal must not find the old value.
        let l2 = match self.inner.l2.as_ref() {
            None => Ok(()),
            Some(l2) => l2
                .call("delete", |t| t.delete(&k2))
                .await
                .map_err(Error::Tier),
        };
        self.inner.co.guard.bump(&k2[..]);
        self.inner.l1.invalidate(key).await;
        self.inner
            .co
            .publish(Action::Remove, self.subject(&k2))
            .await;
        l2
    }

    /// The shared core of the `get_or_load` family.
    async fn load<F, Fut, E>(
        &self,
        key: K,
        opts: &EntryOptions,
        loader: F,
    ) -> Result<Option<V>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.start_backplane();
        crate::l2::check_tags(opts)?;
        // What L1 holds and may not serve (`skip_l1_read`, L1 not trusted, a dead tagged
        // entry) is dropped, so the coalesced load below looks in L2, then asks the loader;
        // callers already waiting on a load of the key share it.
        self.drop_unservable(&key, opts).await;
        let span = tracing::debug_span!("layercache.load", cache = %self.inner.name);
        let fill_key = key.clone();
        let filled = std::sync::atomic::AtomicBool::new(false);
        let fill = async {
            filled.store(true, Ordering::Relaxed);
            Err::<Slot<V>, _>(self.fill(fill_key, opts, loader).await)
        };
        let slot = self.inner.l1.try_get_with(key, fill).instrument(span).await;
        if !filled.load(Ordering::Relaxed) {
            // Found in L1, or shared from another caller's load of the key.
            self.inner.meters.hit_l1.increment(1);
        }
        match slot {
            Ok(slot) => Ok(slot.value),
            Err(e) => match &*e {
                Filled::Done(slot) => Ok(slot.value.clone()),
                Filled::Failed(e) => Err(Error::Loader(Arc::clone(e))),
                Filled::Absent => Ok(None),
            },
        }
    }

    /// Fills `key` on an L1 miss: L2, else the loader (whose value is written to L2 under
    /// a lease where the tier has them); puts the result into L1 through the race guard.
    /// Runs once per key per process at a time (inside L1's coalesced load); a caller that
    /// waited on it shares its result and counts an L1 hit.
    async fn fill<F, Fut, E>(&self, key: K, opts: &EntryOptions, loader: F) -> Filled<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let k2 = l2_key(&self.inner.name, &key);
        let ticket = self.inner.co.guard.ticket(&k2[..]);
        let version = self.inner.co.version();
        let lease = match self.l2_fill_lookup(&k2, opts).await {
            Ok(slot) => {
                self.inner.meters.hit_l2.increment(1);
                self.commit(ticket, key, slot.clone(), opts);
                return Filled::Done(slot);
            }
            Err(lease) => lease,
        };
        self.inner.meters.miss.increment(1);
        // tokio's clock: real time, or a paused test's.
        let started = tokio::time::Instant::now();
        let loaded = loader().await;
        self.inner
            .meters
            .load_seconds
            .record(started.elapsed().as_secs_f64());
        let (value, ttl, l1_ttl) = match loaded {
            Ok(Some(v)) => {
                self.inner.meters.load_ok.increment(1);
                (Some(v), opts.effective_ttl(), opts.effective_l1_ttl())
            }
            Ok(None) => {
                self.inner.meters.load_absent.increment(1);
                let ttl = opts.effective_negative_ttl();
                // An absence not cached still reaches every caller waiting on this load.
                (None, ttl, Some(ttl.unwrap_or(Duration::ZERO)))
            }
            Err(e) => {
                self.inner.meters.load_error.increment(1);
                self.release(&k2, lease).await;
                return Filled::Failed(Arc::from(e.into()));
            }
        };
        let cache_it = value.is_some() || ttl.is_some();
        let raced = if cache_it {
            !self
                .l2_fill_store(&k2, value.as_ref(), ttl, version, opts, lease)
                .await
        } else {
            self.release(&k2, lease).await;
            false
        };
        let slot = self.slot(value, l1_ttl, version, opts);
        if !raced && cache_it {
            self.commit(ticket, key, slot.clone(), opts);
        }
        Filled::Done(slot)
    }

    /// Returns the value of `key` from L1 or L2, or runs `loader` to make it (once per key
    /// per process, however many callers ask at once; the others wait and share its result)
    /// and stores it in both tiers with the default [`EntryOptions`].
    ///
    /// # Errors
    /// [`Error::Loader`] with the loader's error, shared by every caller that waited on that
    /// load. Never because of L2.
    pub async fn get_or_load<F, Fut, E>(&self, key: K, loader: F) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let opts = self.inner.defaults.clone();
        self.get_or_load_with(key, &opts, loader).await
    }

    /// As [`get_or_load`](Self::get_or_load), with `options`.
    ///
    /// # Errors
    /// As [`get_or_load`](Self::get_or_load), and [`Error::Tag`] for tags out of bounds.
    pub async fn get_or_load_with<F, Fut, E>(
        &self,
        key: K,
        options: &EntryOptions,
        loader: F,
    ) -> Result<V, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut loader = Some(loader);
        let run = |loader: Option<F>| async move {
            match loader {
                Some(f) => f().await.map(Some),
                None => Ok(None),
            }
        };
        if let Some(v) = self
            .load(key.clone(), options, || run(loader.take()))
            .await?
        {
            return Ok(v);
        }
        // A cached absence (from `get_or_load_optional`) is in the way: this caller needs a
        // value, so it loads one and replaces the absence.
        self.inner.l1.invalidate(&key).await;
        match self
            .load(key, &options.clone().skip_l2_read(), || run(loader.take()))
            .await?
        {
            Some(v) => Ok(v),
            None => Err(Error::Loader(Arc::new(std::io::Error::other(
                "the loader of this key ran in another call",
            )))),
        }
    }

    /// As [`get_or_load`](Self::get_or_load) for a loader that may find nothing: a `None`
    /// is returned, and cached in both tiers for the `negative_ttl` of the default
    /// [`EntryOptions`] (not cached if it has none).
    ///
    /// # Errors
    /// As [`get_or_load`](Self::get_or_load).
    pub async fn get_or_load_optional<F, Fut, E>(
        &self,
        key: K,
        loader: F,
    ) -> Result<Option<V>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let opts = self.inner.defaults.clone();
        self.load(key, &opts, loader).await
    }

    /// Whether the L2 circuit breaker is open now (`false` without an L2).
    pub fn l2_breaker_open(&self) -> bool {
        self.inner.l2.as_ref().is_some_and(Guarded::is_open)
    }

    /// The L1 cache's entry count (for tests and dashboards).
    pub fn l1_entry_count(&self) -> u64 {
        self.inner.l1.entry_count()
    }
}

impl<K, V> Sink for Inner<K, V>
where
    K: CacheKey + Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop_key(&self, key: &[u8]) {
        let Some(k) = K::decode_key(key) else {
            tracing::debug!(cache = %self.name, "backplane key does not decode as this cache's key type; L1 is cleared");
            return self.drop_all();
        };
        let mut k2 = Vec::with_capacity(self.name.len() + 1 + key.len());
        k2.extend_from_slice(self.name.as_bytes());
        k2.push(b':');
        k2.extend_from_slice(key);
        self.co.guard.bump(&k2[..]);
        self.l1.as_sync().invalidate(&k);
    }

    fn drop_all(&self) {
        self.co.guard.bump_all();
        self.l1.invalidate_all();
    }
}
