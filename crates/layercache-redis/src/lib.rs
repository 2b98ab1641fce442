//! # layercache-redis
//!
//! [Redis](https://redis.io) as a [`layercache_tier::Tier`]: the shared second-level (L2)
//! cache of [layercache](https://docs.rs/layercache)'s `TieredCache`, on a single node or a
//! Redis Cluster, through [redis-rs](https://docs.rs/redis).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use layercache_redis::RedisTier;
//! use layercache_tier::Tier;
//!
//! // One node (reconnects by itself after the server comes back):
//! let tier: Arc<dyn Tier> = Arc::new(RedisTier::connect("redis://127.0.0.1:6379").await?);
//! tier.set(b"user:42", b"...", Some(Duration::from_secs(60))).await?;
//! assert_eq!(tier.get(b"user:42").await?.as_deref(), Some(&b"..."[..]));
//!
//! // A cluster, with tighter timeouts than the defaults:
//! let cluster = RedisTier::builder()
//!     .connection_timeout(Duration::from_millis(250))
//!     .response_timeout(Duration::from_millis(100))
//!     .connect_cluster(&["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
//!     .await?;
//! # let _ = cluster;
//! # Ok(())
//! # }
//! ```
//!
//! ## Commands
//!
//! | [`Tier`](layercache_tier::Tier) method | Redis |
//! | --- | --- |
//! | `get` | `GET key` |
//! | `set` | `SET key value PX ms` (TTL rounded up to whole milliseconds, at least 1 ms; no `PX` without a TTL) |
//! | `delete` | `DEL key` |
//! | `get_many` | `MGET`; on a cluster one `MGET` per hash slot, sent concurrently, values put back in the order asked |
//! | `set_many` | a pipeline of `SET .. PX`; on a cluster one pipeline per hash slot, sent concurrently |
//!
//! Keys and values are raw bytes (binary-safe); nothing is added to them.
//!
//! ## Timeouts and reconnection
//!
//! Every call finishes or fails in bounded time: each connection attempt is limited by the
//! [connection timeout](RedisTierBuilder::connection_timeout) (default 1 s), each reply by the
//! [response timeout](RedisTierBuilder::response_timeout) (default 500 ms), and a whole call
//! (reconnection and cluster redirections included) by their sum (default 1.5 s), after which
//! it fails with [`TierError::Timeout`](layercache_tier::TierError::Timeout). Other failures
//! are [`TierError::Backend`](layercache_tier::TierError::Backend) with `tier: "redis"`.
//!
//! On a single node the connection is a redis-rs `ConnectionManager`: one multiplexed
//! connection shared by all calls. When it breaks, the call that noticed fails and a
//! reconnection starts in the background: up to 3 attempts, 10–20 ms then 20–40 ms apart.
//! Calls made meanwhile wait for it (within their time limit); if every attempt fails they
//! fail, and the next call starts a new reconnection. So while the server is down calls fail
//! fast (a refused connection costs well under a millisecond on a LAN), and once it is back
//! they succeed again within milliseconds (about 1–4 ms after a local restart, measured by
//! this crate's tests). A cluster connection (redis-rs's async cluster client) reconnects to
//! a node whose connection broke and re-reads the slot map on `MOVED` (and follows `ASK`
//! during a slot migration); a request is retried up to 3 times, 5–80 ms apart, within the
//! call's time limit. As on a single node, a call that meets a connection the server has
//! just closed may still fail (the retries can run out before the background reconnection
//! is done); calls succeed again within a bounded time (`tests/cluster_faults.rs`). While a
//! slot is half-migrated, Redis answers multi-key reads of it (`get_many`) with `TRYAGAIN`,
//! so they fail until the migration ends.
//!
//! There is no circuit breaker here: layercache's `TieredCache` wraps every tier call in its
//! own timeout and breaker.
//!
//! ## Runtime
//!
//! Calls must run inside a [Tokio](https://tokio.rs) runtime with the time driver enabled
//! (`#[tokio::main]` and `#[tokio::test]` have it).

mod error;
mod tier;

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use error::Error;
pub use tier::{RedisTier, RedisTierBuilder};
