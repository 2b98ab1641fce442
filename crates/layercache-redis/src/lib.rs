//! # layercache-redis
//!
//! [Redis](https://redis.io) as a [`layercache_tier::Tier`]: the shared second-level (L2)
//! cache of [layercache](https://docs.rs/layercache)'s `TieredCache`, on a single node or a
//! Redis Cluster, through [redis-rs](https://docs.rs/redis); and as a
//! [`layercache_tier::Backplane`] ([`RedisBackplane`], on Redis Streams; see
//! [Backplane](#backplane)).
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
//! | `supports_conditional_writes` | `true` |
//! | `add` | `SET key value [PX ms] NX`: `true` on `OK`, `false` on nil |
//! | `compare_and_set` | `EVALSHA` of a Lua script on `KEYS[1] = key` (loaded with `SCRIPT LOAD`, on a cluster on every master, when a server answers `NOSCRIPT`): `GET key`, compared with `expected` byte for byte; on a match `SET key value PX ms`, or without `PX` (clearing any TTL) when `ttl` is `None`; `true` if it replaced |
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
//! ## Backplane
//!
//! [`RedisBackplane`] implements [`layercache_tier::Backplane`]: one Redis Stream per
//! channel, on a single node or a cluster (same URLs, timeouts and reconnection as the tier).
//!
//! | What | Redis |
//! | --- | --- |
//! | stream key of channel `c` | `__layercache:bus:{c}` ([`stream_key`]): the braces are a hash tag, so on a cluster the stream lives in the one slot of `c` |
//! | `publish(c, payload)` | `XADD key MAXLEN ~ n * m <payload>` on the shared multiplexed connection, `n` the [`max_len`](RedisBackplaneBuilder::max_len) (default 10 000); the reply is the message's [`StreamId`](layercache_tier::StreamId) |
//! | `subscribe(c)` | a new connection of its own (a single node: a multiplexed connection; a cluster: a cluster connection), so blocking reads never hold up publishes |
//! | `read(after, block, max)` | one pipeline: `XREAD COUNT max BLOCK ms STREAMS key after`, then `XRANGE key - + COUNT 1` |
//!
//! A read's answer:
//! - [`Read::Gap`](layercache_tier::Read::Gap) if `after` is not `0-0` and the stream's first
//!   entry (the `XRANGE`, run after the `XREAD` returned) is later than `after`, or the stream
//!   is empty or gone (trimmed by `MAXLEN ~`, deleted, or lost with a server restarted without
//!   persistence). `after` was an entry of the stream, so it is gone and so may be messages
//!   after it. Conservative: when only `after` itself was trimmed, that is a gap too. (If a
//!   server restarts empty *and* its clock went back so that new entries sort before `after`,
//!   this rule cannot see the loss; Redis ids come from the server's clock.)
//! - otherwise the entries after `after`, oldest first, at most `max`, each entry's field `m`
//!   as its payload (an entry without `m`, not written by `publish`, is delivered with an
//!   empty payload, so that the cursor can move past it); none if the block ran out.
//!
//! `block` is sent in whole milliseconds, at least 1 (`BLOCK 0` would wait forever); `max`
//! of 0 answers no messages at once, without asking the server. A read is bounded by its
//! `block` plus the connection and response timeouts, then fails with
//! [`TierError::Timeout`](layercache_tier::TierError::Timeout). A failed read drops the
//! subscription's connection and the next read opens a new one (a read that timed out may
//! leave its `XREAD BLOCK` pending on the server, which would hold up the next command on the
//! same connection), so the same cursor can be read again after the server restarts or
//! closes the connection.
//!
//! There is no circuit breaker here: layercache's `TieredCache` wraps every tier call in its
//! own timeout and breaker.
//!
//! ## Runtime
//!
//! Calls must run inside a [Tokio](https://tokio.rs) runtime with the time driver enabled
//! (`#[tokio::main]` and `#[tokio::test]` have it).

mod backplane;
mod error;
mod tier;

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

pub use backplane::{stream_key, RedisBackplane, RedisBackplaneBuilder};
pub use error::Error;
pub use tier::{RedisTier, RedisTierBuilder};
