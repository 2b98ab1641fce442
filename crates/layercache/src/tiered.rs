//! [`TieredCache`]: an in-process L1 over an optional shared L2, with coalesced loading.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use layercache_memory::{future::Cache as L1, EvictionPolicy, Expiry};
use layercache_tier::Tier;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use crate::breaker::{BreakerConfig, Guarded};
use crate::clock::{saturating_ms, SharedClock, SystemClock, TieredClock};
use crate::codec::{Codec, Postcard};
use crate::envelope;
use crate::error::Error;
use crate::key::{l2_key, CacheKey};
use crate::meters::Meters;
use crate::options::EntryOptions;

/// A boxed error from a loader, shared by every caller of one load.
pub type SharedError = Arc<dyn std::error::Error + Send + Sync>;

/// What L1 holds for a key: a value or a cached absence, with its own lifetime.
#[derive(Clone)]
pub(crate) struct Slot<V> {
    pub(crate) value: Option<V>,
    pub(crate) ttl: Option<Duration>,
}

/// Gives each L1 entry the lifetime its [`Slot`] carries.
struct SlotExpiry;

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

/// Why a fill produced no slot.
#[derive(Clone)]
pub(crate) enum Unfilled {
    /// The loader failed.
    Failed(SharedError),
    /// A batch loader returned nothing for the key.
    Absent,
}

/// A multi-level cache: an in-process L1 ([`layercache_memory`]) over an optional shared
/// L2 [`Tier`] (Redis, the embedded disk tier, ...), with loads coalesced per key.
///
/// A read looks in L1, then in L2 (a value found there is *promoted* into L1 with its
/// remaining lifetime), then, for the `get_or_load` family, asks the loader, once per key
/// per process however many callers ask at the same moment, and writes what it returns to
/// both tiers. Values reach L2 through the [`Codec`] inside a versioned
/// [envelope](crate::envelope); anything in L2 that does not decode is a miss, is deleted,
/// and is counted (`layercache_decode_failures_total`).
///
/// L2 calls have a deadline and sit behind a circuit breaker ([`BreakerConfig`]): while
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
/// - `layercache_l2_errors_total{tier,op,kind}`: failed L2 calls, `tier` the [`Tier`]'s name,
///   `op` one of `get`, `set`, `delete`, `get_many`, `set_many`, and `kind` `backend`,
///   `timeout` or `circuit_open` (refused without calling the tier);
/// - `layercache_decode_failures_total{reason}`: L2 entries that did not decode, by
///   [`DecodeError::reason`](crate::envelope::DecodeError::reason), or `codec` when the
///   envelope was sound but the codec rejected its payload;
/// - `layercache_l2_writes_skipped_total{reason="oversized"|"l2_error"}`: values not stored in
///   L2, over [`max_payload`](TieredCacheBuilder::max_payload) or because the write failed;
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
    pub(crate) name: Arc<str>,
    pub(crate) l1: L1<K, Slot<V>>,
    pub(crate) l2: Option<Guarded>,
    codec: Box<dyn Codec<V>>,
    pub(crate) defaults: EntryOptions,
    pub(crate) meters: Meters,
    max_payload: usize,
    compress_above: usize,
    /// The wall clock of envelopes (the same time as L1's clock).
    clock: SharedClock,
}

/// The engine builder L1 is made with.
type L1Builder<K, V> = layercache_memory::CacheBuilder<K, Slot<V>>;

/// Hands the clock to the L1 builder and keeps it for envelopes.
type ClockSetter<K, V> =
    Box<dyn FnOnce(L1Builder<K, V>) -> (L1Builder<K, V>, SharedClock) + Send + Sync>;

/// Configures a [`TieredCache`]; from [`TieredCache::builder`]. `build` cannot fail.
#[must_use = "a builder does nothing until `build` is called"]
pub struct TieredCacheBuilder<K, V> {
    name: String,
    l1_capacity: u64,
    l1_policy: EvictionPolicy,
    l2: Option<Arc<dyn Tier>>,
    codec: Box<dyn Codec<V>>,
    defaults: EntryOptions,
    breaker: BreakerConfig,
    max_payload: usize,
    compress_above: usize,
    clock: ClockSetter<K, V>,
    _key: std::marker::PhantomData<fn(K)>,
}

/// A [`ClockSetter`] for `clock`: L1 gets one clone, the envelopes another.
fn clock_setter<K, V, C: TieredClock + Clone>(clock: C) -> ClockSetter<K, V> {
    Box::new(move |l1: L1Builder<K, V>| {
        let kept: SharedClock = Arc::new(clock.clone());
        (l1.clock(clock), kept)
    })
}

impl<K, V> TieredCache<K, V>
where
    V: Serialize + DeserializeOwned + 'static,
{
    /// A builder for a cache called `name`: the prefix of its keys in L2 (`name:key`) and
    /// the `cache` label of its metrics.
    pub fn builder(name: impl Into<String>) -> TieredCacheBuilder<K, V> {
        TieredCacheBuilder {
            name: name.into(),
            l1_capacity: 10_000,
            l1_policy: EvictionPolicy::default(),
            l2: None,
            codec: Box::new(Postcard),
            defaults: EntryOptions::default(),
            breaker: BreakerConfig::default(),
            max_payload: 1 << 20,
            compress_above: 1024,
            clock: clock_setter(SystemClock::new()),
            _key: std::marker::PhantomData,
        }
    }
}

impl<K, V> TieredCacheBuilder<K, V> {
    /// L1's capacity in entries and its eviction policy. Default: 10,000 entries, W-TinyLFU.
    pub fn l1(mut self, max_capacity: u64, policy: EvictionPolicy) -> Self {
        self.l1_capacity = max_capacity;
        self.l1_policy = policy;
        self
    }

    /// The shared second level. Default: none (an L1-only cache).
    pub fn l2(mut self, tier: impl Tier) -> Self {
        self.l2 = Some(Arc::new(tier));
        self
    }

    /// The shared second level, already shared (several caches over one connection).
    pub fn l2_shared(mut self, tier: Arc<dyn Tier>) -> Self {
        self.l2 = Some(tier);
        self
    }

    /// How values are encoded for L2. Default: [`Postcard`].
    pub fn codec(mut self, codec: impl Codec<V>) -> Self {
        self.codec = Box::new(codec);
        self
    }

    /// The [`EntryOptions`] of operations that take none. Default: no TTL, no negative
    /// caching, both tiers.
    pub fn default_entry_options(mut self, options: EntryOptions) -> Self {
        self.defaults = options;
        self
    }

    /// The timeout and circuit breaker of L2 calls. Default: [`BreakerConfig::default`].
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// The largest encoded value stored in L2, in bytes; larger ones live in L1 only.
    /// Default: 1 MiB.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Encoded values longer than this many bytes are lz4-compressed in L2 (when that makes
    /// them smaller). Default: 1 KiB.
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.compress_above = bytes;
        self
    }

    /// The clock that times entries in both tiers: L1's deadlines (its
    /// [`Clock::now`](layercache_memory::Clock::now), nanoseconds) and the expiry written
    /// into and checked in L2 envelopes (its [`epoch_ms`](TieredClock::epoch_ms),
    /// milliseconds since the Unix epoch). Default: [`SystemClock`] (the coarse monotonic
    /// clock and the system's wall clock). Tests pass a
    /// [`ManualTieredClock`](crate::ManualTieredClock) and move time by hand; see
    /// [`clock`](crate::clock) for what it does not cover (the tier's own TTL, the breaker).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use layercache::{EntryOptions, ManualTieredClock, TieredCache};
    ///
    /// let clock = ManualTieredClock::new();
    /// let cache: TieredCache<u64, String> = TieredCache::builder("c")
    ///     .clock(clock.clone())
    ///     .default_entry_options(EntryOptions::new().ttl(Duration::from_secs(10)))
    ///     .build();
    /// cache.set(1, "one".into()).await?;
    /// clock.advance(Duration::from_secs(9));
    /// assert_eq!(cache.get(&1).await?.as_deref(), Some("one"));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.get(&1).await?, None);
    /// # Ok::<(), layercache::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn clock<C: TieredClock + Clone>(mut self, clock: C) -> Self {
        self.clock = clock_setter(clock);
        self
    }

    /// Builds the cache.
    pub fn build(self) -> TieredCache<K, V>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        let name: Arc<str> = self.name.into();
        let (l1, clock) = (self.clock)(
            layercache_memory::Cache::builder()
                .max_capacity(self.l1_capacity)
                .eviction_policy(self.l1_policy)
                .expire_after(SlotExpiry),
        );
        let l1 = l1.build_async();
        TieredCache {
            inner: Arc::new(Inner {
                meters: Meters::new(&name),
                l2: self
                    .l2
                    .map(|t| Guarded::new(t, self.breaker, Arc::clone(&name))),
                name,
                l1,
                codec: self.codec,
                defaults: self.defaults,
                max_payload: self.max_payload,
                compress_above: self.compress_above,
                clock,
            }),
        }
    }
}

/// What L2 had for a key.
enum Found<V> {
    Hit(Slot<V>),
    Miss,
    /// Bytes that did not decode: deleted.
    Corrupt,
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

    pub(crate) fn count(&self, metric: &'static str, label: &'static str, value: &'static str) {
        metrics::counter!(metric, "cache" => self.inner.name.to_string(), label => value)
            .increment(1);
    }

    /// Opens the envelope `bytes` found in L2 under `k2`.
    fn open(&self, k2: &[u8], bytes: &[u8], opts: &EntryOptions) -> Found<V> {
        let env = match envelope::decode(k2, bytes, self.inner.max_payload) {
            Ok(env) => env,
            Err(e) => {
                self.count("layercache_decode_failures_total", "reason", e.reason());
                tracing::warn!(cache = %self.inner.name, error = %e, "undecodable L2 entry; treated as a miss");
                return Found::Corrupt;
            }
        };
        let now = self.inner.clock.epoch_ms();
        let remaining = match env.expires_ms {
            Some(at) if at <= now => return Found::Miss,
            Some(at) => Some(Duration::from_millis(at - now)),
            None => None,
        };
        let Some(payload) = env.payload else {
            return Found::Hit(Slot {
                value: None,
                ttl: remaining,
            });
        };
        match self.inner.codec.decode(&payload) {
            Ok(v) => {
                let l1 = opts.effective_l1_ttl();
                let ttl = match (remaining, l1) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Found::Hit(Slot {
                    value: Some(v),
                    ttl,
                })
            }
            Err(e) => {
                self.count("layercache_decode_failures_total", "reason", "codec");
                tracing::warn!(cache = %self.inner.name, error = %e, "L2 value does not decode; treated as a miss");
                Found::Corrupt
            }
        }
    }

    /// Looks `k2` up in L2; a corrupt entry is deleted.
    async fn l2_lookup(&self, k2: &[u8], opts: &EntryOptions) -> Option<Slot<V>> {
        let l2 = self.inner.l2.as_ref().filter(|_| opts.reads_l2())?;
        let span = tracing::trace_span!("layercache.l2", op = "get", cache = %self.inner.name);
        let bytes = l2
            .call("get", |t| t.get(k2))
            .instrument(span)
            .await
            .ok()??;
        self.settle(l2, k2, &bytes, opts).await
    }

    /// Opens the envelope `bytes` found in L2 under `k2`: the slot if it is live, `None` if
    /// it expired or does not decode (then it is deleted).
    pub(crate) async fn settle(
        &self,
        l2: &Guarded,
        k2: &[u8],
        bytes: &[u8],
        opts: &EntryOptions,
    ) -> Option<Slot<V>> {
        match self.open(k2, bytes, opts) {
            Found::Hit(slot) => Some(slot),
            Found::Miss => None,
            Found::Corrupt => {
                let _ = l2.call("delete", |t| t.delete(k2)).await;
                None
            }
        }
    }

    /// Counts an L2 hit and promotes its slot into L1 (if `opts` write L1); the value.
    pub(crate) async fn promote(&self, key: K, slot: Slot<V>, opts: &EntryOptions) -> Option<V> {
        self.inner.meters.hit_l2.increment(1);
        let value = slot.value.clone();
        if opts.writes_l1() {
            self.inner.l1.insert(key, slot).await;
        }
        value
    }

    /// The envelope of `value` (`None`: an absence), or `None` if it should not go to L2.
    pub(crate) fn seal(
        &self,
        k2: &[u8],
        value: Option<&V>,
        ttl: Option<Duration>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let payload = value
            .map(|v| self.inner.codec.encode(v))
            .transpose()
            .map_err(Error::Encode)?;
        if payload
            .as_ref()
            .is_some_and(|p| p.len() > self.inner.max_payload)
        {
            self.inner.meters.skipped_oversized.increment(1);
            return Ok(None);
        }
        let now = self.inner.clock.epoch_ms();
        Ok(Some(envelope::encode(
            k2,
            payload.as_deref(),
            now,
            ttl.map(|t| now.saturating_add(saturating_ms(t))),
            self.inner.compress_above,
        )))
    }

    /// Writes to L2 (if there is one and `opts` allow).
    async fn l2_write(
        &self,
        k2: &[u8],
        value: Option<&V>,
        ttl: Option<Duration>,
        opts: &EntryOptions,
    ) -> Result<(), Error> {
        let Some(l2) = self.inner.l2.as_ref().filter(|_| opts.writes_l2()) else {
            return Ok(());
        };
        let Some(sealed) = self.seal(k2, value, ttl)? else {
            return Ok(());
        };
        let span = tracing::trace_span!("layercache.l2", op = "set", cache = %self.inner.name);
        l2.call("set", |t| t.set(k2, &sealed, ttl))
            .instrument(span)
            .await
            .map_err(|e| {
                self.inner.meters.skipped_l2_error.increment(1);
                Error::Tier(e)
            })
    }

    pub(crate) fn l1_slot(
        &self,
        value: Option<V>,
        ttl: Option<Duration>,
        opts: &EntryOptions,
    ) -> Slot<V> {
        // An entry L1 must not keep lives for zero time: it still reaches every caller
        // waiting on the same load.
        let ttl = if opts.writes_l1() {
            ttl
        } else {
            Some(Duration::ZERO)
        };
        Slot { value, ttl }
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
        if let Some(value) = self.l1_hit(key) {
            return Ok(value);
        }
        self.get_below_l1(key).await
    }

    /// The value (or cached absence) L1 holds for `key`, counted as an L1 hit; `None` on an
    /// L1 miss or when the default options skip reading L1.
    #[inline]
    fn l1_hit(&self, key: &K) -> Option<Option<V>> {
        let inner = &*self.inner;
        if !inner.defaults.reads_l1() {
            return None;
        }
        let slot = inner.l1.as_sync().get(key)?;
        inner.meters.hit_l1.increment(1);
        Some(slot.value)
    }

    /// `get` after an L1 miss: L2, promoting what it finds.
    async fn get_below_l1(&self, key: &K) -> Result<Option<V>, Error> {
        let opts = self.inner.defaults;
        let k2 = l2_key(&self.inner.name, key);
        if let Some(slot) = self.l2_lookup(&k2, &opts).await {
            return Ok(self.promote(key.clone(), slot, &opts).await);
        }
        self.inner.meters.miss.increment(1);
        Ok(None)
    }

    /// Stores `value` under `key` in both tiers, with the default [`EntryOptions`].
    ///
    /// # Errors
    /// [`Error::Encode`] if the codec cannot encode it (nothing is stored);
    /// [`Error::Tier`] if the L2 write failed (L1 is still updated, so this process sees the
    /// new value).
    pub async fn set(&self, key: K, value: V) -> Result<(), Error> {
        let opts = self.inner.defaults;
        self.set_with(key, value, &opts).await
    }

    /// As [`set`](Self::set), with `options`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub async fn set_with(&self, key: K, value: V, options: &EntryOptions) -> Result<(), Error> {
        let k2 = l2_key(&self.inner.name, &key);
        let l2 = self
            .l2_write(&k2, Some(&value), options.effective_ttl(), options)
            .await;
        if let Err(Error::Encode(e)) = l2 {
            return Err(Error::Encode(e));
        }
        if options.writes_l1() {
            let slot = self.l1_slot(Some(value), options.effective_l1_ttl(), options);
            self.inner.l1.insert(key, slot).await;
        }
        l2
    }

    /// Removes `key` from both tiers.
    ///
    /// # Errors
    /// [`Error::Tier`] if the L2 delete failed (L1 is still cleared).
    pub async fn remove(&self, key: &K) -> Result<(), Error> {
        self.inner.l1.invalidate(key).await;
        let Some(l2) = self.inner.l2.as_ref() else {
            return Ok(());
        };
        let k2 = l2_key(&self.inner.name, key);
        l2.call("delete", |t| t.delete(&k2))
            .await
            .map_err(Error::Tier)
    }

    /// Fills L1's slot for `key` on a miss: L2, else the loader (whose value is written to
    /// L2). Runs once per key per process at a time (inside L1's coalesced load).
    async fn fill<F, Fut, E>(
        &self,
        key: &K,
        opts: &EntryOptions,
        loader: F,
    ) -> Result<Slot<V>, Unfilled>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let k2 = l2_key(&self.inner.name, key);
        if let Some(slot) = self.l2_lookup(&k2, opts).await {
            self.inner.meters.hit_l2.increment(1);
            return Ok(self.l1_slot(slot.value, slot.ttl, opts));
        }
        self.inner.meters.miss.increment(1);
        // tokio's clock: real time, or a paused test's.
        let started = tokio::time::Instant::now();
        let loaded = loader().await;
        self.inner
            .meters
            .load_seconds
            .record(started.elapsed().as_secs_f64());
        match loaded {
            Ok(Some(v)) => {
                self.inner.meters.load_ok.increment(1);
                if let Err(e) = self
                    .l2_write(&k2, Some(&v), opts.effective_ttl(), opts)
                    .await
                {
                    tracing::debug!(cache = %self.inner.name, error = %e, "loaded value not written to L2");
                }
                Ok(self.l1_slot(Some(v), opts.effective_l1_ttl(), opts))
            }
            Ok(None) => {
                self.inner.meters.load_absent.increment(1);
                let ttl = opts.effective_negative_ttl();
                if ttl.is_some() {
                    let _ = self.l2_write(&k2, None, ttl, opts).await;
                }
                Ok(self.l1_slot(None, Some(ttl.unwrap_or(Duration::ZERO)), opts))
            }
            Err(e) => {
                self.inner.meters.load_error.increment(1);
                Err(Unfilled::Failed(Arc::from(e.into())))
            }
        }
    }

    /// The shared core of the `get_or_load` family.
    async fn load<F, Fut, E>(
        &self,
        key: K,
        opts: EntryOptions,
        loader: F,
    ) -> Result<Option<V>, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if !opts.reads_l1() {
            // `skip_l1_read`: what L1 holds is not returned. Dropping it makes the coalesced
            // load below look in L2, then ask the loader, and (if the options write L1) put
            // the result back; callers already waiting on a load of the key share it.
            self.inner.l1.invalidate(&key).await;
        }
        let span = tracing::debug_span!("layercache.load", cache = %self.inner.name);
        let fill_key = key.clone();
        let filled = std::sync::atomic::AtomicBool::new(false);
        let fill = async {
            filled.store(true, std::sync::atomic::Ordering::Relaxed);
            self.fill(&fill_key, &opts, loader).await
        };
        let slot = self.inner.l1.try_get_with(key, fill).instrument(span).await;
        if !filled.load(std::sync::atomic::Ordering::Relaxed) {
            // Found in L1, or shared from another caller's load of the key.
            self.inner.meters.hit_l1.increment(1);
        }
        match slot {
            Ok(slot) => Ok(slot.value),
            Err(e) => match &*e {
                Unfilled::Failed(e) => Err(Error::Loader(Arc::clone(e))),
                Unfilled::Absent => Ok(None),
            },
        }
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
        let opts = self.inner.defaults;
        self.get_or_load_with(key, &opts, loader).await
    }

    /// As [`get_or_load`](Self::get_or_load), with `options`.
    ///
    /// # Errors
    /// As [`get_or_load`](Self::get_or_load).
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
            .load(key.clone(), *options, || run(loader.take()))
            .await?
        {
            return Ok(v);
        }
        // A cached absence (from `get_or_load_optional`) is in the way: this caller needs a
        // value, so it loads one and replaces the absence.
        self.inner.l1.invalidate(&key).await;
        match self
            .load(key, options.skip_l2_read(), || run(loader.take()))
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
        self.load(key, self.inner.defaults, loader).await
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
