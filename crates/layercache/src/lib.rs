//! # layercache
//!
//! A multi-level cache for Rust services: an in-process L1
//! ([`layercache_memory`], re-exported as [`memory`]) over an optional shared L2 [`Tier`]
//! (Redis through `layercache-redis`, or the embedded persistent `layercache-disk`), with
//! per-key coalesced loading, negative caching, a versioned L2 [`envelope`], and a timeout
//! plus circuit breaker around every L2 call.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//! use layercache::{EntryOptions, TieredCache};
//!
//! let products: TieredCache<u64, String> = TieredCache::builder("products")
//!     .default_entry_options(EntryOptions::new().ttl(Duration::from_secs(300)))
//!     // .l2(redis_tier) for a cache shared by every instance
//!     .build();
//! // However many tasks ask for product 7 at once, the loader runs once.
//! let p = products
//!     .get_or_load(7, || async { Ok::<_, std::io::Error>("lamp".to_string()) })
//!     .await?;
//! assert_eq!(p, "lamp");
//! # Ok::<(), layercache::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Reads, writes and failures
//! See [`TieredCache`]. In short: L1, then L2 (promoting into L1 with the remaining TTL),
//! then the loader; writes go to L2 then L1. A sick L2 (errors, timeouts, an open breaker)
//! is a miss for reads and a skipped write, counted in metrics; it never fails a load.
//! Bytes in L2 that do not decode as this key's envelope are misses, deleted and counted.
//!
//! ## Consistency
//! L1 copies are per process: another instance's write reaches this L1 when the copy
//! expires (keep `l1_ttl` short) or when this process writes the key. Cross-instance
//! invalidation is the next piece of the project.

mod batch;
mod breaker;
mod builder;
pub mod clock;
mod codec;
mod coherence;
pub mod envelope;
mod error;
mod invalidate;
mod key;
mod l2;
pub mod message;
mod meters;
mod options;
mod tiered;

pub use breaker::BreakerConfig;
pub use clock::{ManualTieredClock, SystemClock, TieredClock};
#[cfg(feature = "json")]
pub use codec::JsonCodec;
#[cfg(feature = "msgpack")]
pub use codec::MsgPack;
pub use codec::{Codec, Postcard};
pub use error::{CodecError, Error};
pub use key::CacheKey;
#[cfg(feature = "json")]
pub use key::Json;
pub use layercache_memory as memory;

pub use builder::TieredCacheBuilder;
/// The embedded persistent tier (feature `disk`, on by default): [`disk::DiskTier`].
#[cfg(feature = "disk")]
pub use layercache_disk as disk;
pub use layercache_memory::EvictionPolicy;
/// Redis as a tier, single node or Cluster (feature `redis`, on by default):
/// [`redis::RedisTier`].
#[cfg(feature = "redis")]
pub use layercache_redis as redis;
pub use layercache_tier::{Backplane, StreamId, Subscription, Tier, TierError, TierFuture};
pub use options::EntryOptions;
pub use tiered::{SharedError, TieredCache};

/// The README's Rust examples, compiled (and run unless marked `no_run`) as doctests; they
/// use both tiers, so only with the `disk` and `redis` features (the default).
#[cfg(all(doctest, feature = "disk", feature = "redis"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn tiered_cache_is_send_and_sync() {
        assert_send_sync::<TieredCache<u64, String>>();
        assert_send_sync::<TieredCacheBuilder<String, Vec<u8>>>();
    }
}
