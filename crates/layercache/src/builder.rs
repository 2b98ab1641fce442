//! [`TieredCacheBuilder`]: how a [`TieredCache`] is configured.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use layercache_memory::EvictionPolicy;
use layercache_tier::{Backplane, Tier};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::breaker::{BreakerConfig, Guarded};
use crate::clock::{SharedClock, SystemClock, TieredClock};
use crate::codec::{Codec, Postcard};
use crate::coherence::{BackplaneConfig, Coherence};
use crate::meters::Meters;
use crate::options::EntryOptions;
use crate::tiered::{Inner, Slot, SlotExpiry, TieredCache};
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
    backplane: Option<Arc<dyn Backplane>>,
    bus: BackplaneConfig,
    lease_ttl: Duration,
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
            backplane: None,
            bus: BackplaneConfig::default(),
            lease_ttl: Duration::from_secs(10),
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

    /// The backplane that keeps this cache's L1 coherent with the other instances' (see the
    /// crate docs' *Coherence* section): each write, remove, tag invalidation and clear is
    /// published on it, and this instance applies what the others publish. Default: none
    /// (then an L1 is only safe with one instance, or with a short `l1_ttl`).
    ///
    /// With a backplane, L1 is served only while its subscriber is connected and caught up
    /// (see [`max_staleness`](Self::max_staleness)); until it first connects, reads go to L2.
    pub fn backplane(mut self, backplane: impl Backplane) -> Self {
        self.backplane = Some(Arc::new(backplane));
        self
    }

    /// As [`backplane`](Self::backplane), already shared (several caches over one
    /// connection).
    pub fn backplane_shared(mut self, backplane: Arc<dyn Backplane>) -> Self {
        self.backplane = Some(backplane);
        self
    }

    /// The staleness bound: while this instance has not heard from the backplane for this
    /// long, its L1 is not served (reads go to L2, then the loader), so no read returns a
    /// value older than the fleet's latest write by more than this, even while the
    /// backplane is partitioned away. The subscriber's blocking read waits a quarter of it
    /// (10 ms to 2 s). Default: 5 s. Ignored without a backplane. A zero bound is taken as
    /// 1 ms.
    pub fn max_staleness(mut self, bound: Duration) -> Self {
        self.bus.max_staleness = bound.max(Duration::from_millis(1));
        self
    }

    /// How many distinct invalidations are kept, in entries, while the backplane cannot be
    /// reached; past that they are replaced by one clear of the cache, published when it is
    /// back. Default: 10,000.
    pub fn backplane_queue(mut self, entries: usize) -> Self {
        self.bus.queue = entries;
        self
    }

    /// How long a publish made by a write may take before the message is queued instead
    /// (the write does not wait longer, and does not fail). Default: 250 ms.
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.bus.publish_timeout = timeout;
        self
    }

    /// How long a fill's *lease* on a missing L2 key lasts (see
    /// [`Tier::add`](layercache_tier::Tier::add)): a fill that takes longer does not write
    /// L2. Only for tiers with conditional writes. Default: 10 s.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Builds the cache.
    pub fn build(self) -> TieredCache<K, V>
    where
        K: crate::CacheKey + Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let name: Arc<str> = self.name.into();
        let (l1, clock) = (self.clock)(
            layercache_memory::Cache::builder()
                .max_capacity(self.l1_capacity)
                .eviction_policy(self.l1_policy)
                .expire_after(SlotExpiry),
        );
        let l1 = l1.build_async();
        let co = Arc::new(Coherence::new(
            Arc::clone(&name),
            self.backplane,
            self.bus,
            Arc::clone(&clock),
        ));
        let cache = TieredCache {
            inner: Arc::new(Inner {
                co,
                lease_ttl: self.lease_ttl,
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
        };
        cache.start_backplane();
        cache
    }
}
