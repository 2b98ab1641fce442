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
//! ## Coherence across instances: the backplane
//!
//! Without a backplane, L1 copies are per process: another instance's write reaches this
//! L1 only when the copy expires (keep `l1_ttl` short) or when this process writes the key.
//! With one ([`TieredCacheBuilder::backplane`]; `layercache-redis` has
//! [`RedisBackplane`](layercache_redis::RedisBackplane), one Redis Stream per cache), every
//! instance's L1 follows the others' writes:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use layercache::redis::{RedisBackplane, RedisTier};
//! use layercache::{EntryOptions, TieredCache};
//!
//! let url = "redis://127.0.0.1:6379";
//! let products: TieredCache<u64, String> = TieredCache::builder("products")
//!     .l2(RedisTier::connect(url).await?)
//!     .backplane(RedisBackplane::connect(url).await?)
//!     .max_staleness(Duration::from_secs(2))
//!     .default_entry_options(EntryOptions::new().ttl(Duration::from_secs(300)))
//!     .build();
//! let lamp = EntryOptions::new().ttl(Duration::from_secs(300)).tags(["shop:3"]);
//! products.set_with(7, "lamp".into(), &lamp).await?;
//! products.remove(&8).await?;              // every instance drops key 8 from its L1
//! products.invalidate_tag("shop:3").await?; // every entry tagged shop:3 is a miss
//! products.clear().await?;                 // every entry of the cache
//! # Ok(())
//! # }
//! ```
//!
//! **What it does.** `set`, `remove`, `invalidate_tag` and `clear` change L2 first, then
//! this L1, then publish one small message ([`message`]: the action, the key's bytes or the
//! tag, this instance's [id](TieredCache::instance_id)). Each instance runs one subscriber
//! task that reads the stream in order and *drops* the named key from its L1; it does not
//! read L2 (no read storm: an instance that does not read the key never touches L2 for
//! it). The stream's ids, given by the server, are the only clock: they order messages and
//! version tags and clears; no wall clock is compared across machines. A reconnecting
//! instance replays from its last id.
//!
//! **Guarantees** (each has a test in `tests/coherence*.rs`):
//! - *Propagation*: while the backplane works, another instance stops serving an old value
//!   as soon as it applies the message (milliseconds on a LAN; see BENCHMARKS.md).
//! - *Bounded staleness*: an instance serves L1 only while its subscriber has heard from
//!   the stream within [`max_staleness`](TieredCacheBuilder::max_staleness) and is caught
//!   up; otherwise reads go to L2, then the loader. A frozen server sends no error, so a
//!   watchdog beside the blocking read notices the silence. So during a partition, a
//!   frozen or restarted Redis, no read returns a value that the fleet overwrote or
//!   removed more than `max_staleness` (plus the invalidation lag) before the read.
//! - *Gaps*: if the stream lost messages after this instance's position (trimmed past it by
//!   `MAXLEN`, or lost with a server that restarted empty), the instance cannot know what it
//!   missed: it clears its L1, forgets its tag versions and starts again
//!   (`layercache_backplane_gaps_total`).
//! - *Publish failures never fail a write*: a message that cannot be published within
//!   [`publish_timeout`](TieredCacheBuilder::publish_timeout) is queued (one entry per key
//!   or tag, bounded by [`backplane_queue`](TieredCacheBuilder::backplane_queue)) and sent
//!   when the backplane answers; if the queue overflows, one clear of the cache is sent
//!   instead.
//! - *The invalidate-during-load race*: a load or L2 read that began before an invalidation
//!   of its key was applied here does not put its result into L1 after it (a per-key
//!   generation taken before the load, FusionCache #535/#628).
//! - *Stale sets in L2*: on tiers with conditional writes (Redis, the disk tier), a fill
//!   takes a lease on the missing key and stores its value by compare-and-set over the
//!   lease, so a value loaded before an invalidation of the key never lands in L2 after
//!   it (memcache's leases, Nishtala et al., NSDI 2013; see [`Tier::add`]).
//! - *Tags and clear without an index*: an entry carries its tags and the stream position
//!   its load began at; `invalidate_tag` publishes one message and stores the tag's version
//!   in L2 (`name:\0tag:<tag>`), so its cost does not depend on how many entries carry the
//!   tag. An entry is dead if one of its tags (or the clear) has a newer version. An
//!   instance learns versions from the stream, and reads a version it has not seen from L2
//!   once (so an instance started later, or one that missed the message, still sees it); a
//!   gap forgets them. L2 entries are not deleted: they are misses, and expire by TTL.
//!
//! **What is not guaranteed.**
//! - Writes made to L2 (or the database) behind the cache's back send no message: other
//!   instances' L1 copies stay until `l1_ttl` (the PostgreSQL change feed of a later
//!   release covers the database side).
//! - Cache-aside is not a transaction: if a process dies between writing the origin and
//!   calling `remove`, L2 and the L1 copies keep the old value until their TTLs.
//! - A *writer* cut off from the backplane but not from L2 still acknowledges its writes
//!   (their messages wait in its queue): the other instances keep serving their L1 copies
//!   of those keys until the queue is sent. The staleness bound covers instances that
//!   cannot *hear* the backplane, not writes that cannot reach it.
//! - A tag invalidated while the backplane is down is applied here and in L2 at once, and
//!   on the other instances when the queued message is sent.
//! - A key type without [`CacheKey::decode_key`] costs a whole-L1 clear per message.
//! - Redis restarted empty with its clock set back gives ids older than the cursor, so the
//!   gap is not seen (documented in `layercache-redis`).
//!
//! Metrics of the backplane (label `cache`): `layercache_backplane_published_total`,
//! `_applied_total`, `_skipped_own_total`, `_publish_retries_total`, `_malformed_total`,
//! `_gaps_total`, `_l1_clears_total`, `_queue_overflows_total`, the gauges
//! `layercache_backplane_queue_depth` and `layercache_backplane_l1_bypassed` (1 while L1 is
//! not served), `layercache_backplane_stale_milliseconds_total` (time L1 was not served),
//! and the histogram `layercache_backplane_lag_seconds` (publish to apply, by the stream
//! id's server time against this machine's clock); and `layercache_fills_raced_total`
//! (fills whose lease an invalidation took). The subscriber runs in the tracing span
//! `layercache.backplane`.

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
