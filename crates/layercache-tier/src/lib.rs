//! # layercache-tier
//!
//! The [`Tier`] trait: what a second-level (L2) cache implements for
//! [layercache](https://docs.rs/layercache)'s `TieredCache`. A tier stores **bytes** under
//! **byte keys** with an optional time to live; it knows nothing of eviction policies, codecs
//! or the values' types (the front crate encodes values into a versioned envelope before they
//! reach a tier, and checks them when they come back).
//!
//! The trait lives in its own small crate so that tier implementations
//! (`layercache-redis`, `layercache-disk`, or your own) and the front crate depend on it
//! without depending on each other.
//!
//! Methods return boxed futures ([`TierFuture`]) so that `dyn Tier` works: a cache holds its
//! L2 as an `Arc<dyn Tier>` chosen at run time. The allocation is negligible next to a
//! network or disk round trip.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::Duration;
//! use layercache_tier::{Tier, TierError, TierFuture};
//!
//! /// A toy in-process tier (no TTL), to show the shape.
//! #[derive(Default)]
//! struct MapTier(Mutex<HashMap<Vec<u8>, Vec<u8>>>);
//!
//! impl Tier for MapTier {
//!     fn name(&self) -> &'static str { "map" }
//!     fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
//!         Box::pin(async move { Ok(self.0.lock().unwrap().get(key).cloned()) })
//!     }
//!     fn set<'a>(&'a self, key: &'a [u8], value: &'a [u8], _ttl: Option<Duration>) -> TierFuture<'a, ()> {
//!         Box::pin(async move {
//!             self.0.lock().unwrap().insert(key.to_vec(), value.to_vec());
//!             Ok(())
//!         })
//!     }
//!     fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
//!         Box::pin(async move {
//!             self.0.lock().unwrap().remove(key);
//!             Ok(())
//!         })
//!     }
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The future a [`Tier`] method returns.
pub type TierFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, TierError>> + Send + 'a>>;

/// A second-level cache over bytes.
///
/// Keys arrive complete (the cache's name prefix included). Implementations must be safe to
/// call concurrently; every call should finish or fail in bounded time (the front crate also
/// wraps calls in a timeout and a circuit breaker, so a tier need not).
pub trait Tier: Send + Sync + 'static {
    /// A short name for metrics and logs (`"redis"`, `"disk"`).
    fn name(&self) -> &'static str;

    /// The bytes stored under `key`, or `None` if absent or expired.
    ///
    /// # Errors
    /// [`TierError`] if the backend could not be asked.
    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>>;

    /// Stores `value` under `key`, replacing any previous value; `ttl` is how long it may be
    /// served (`None`: until evicted or deleted). A tier may round the TTL up to its
    /// resolution (milliseconds for Redis), never down to zero.
    ///
    /// # Errors
    /// [`TierError`] if the write may not have happened.
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()>;

    /// Removes `key` (absent is not an error).
    ///
    /// # Errors
    /// [`TierError`] if the delete may not have happened.
    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()>;

    /// The values of several keys, in the order asked. The default asks one by one; tiers
    /// override it with a batch (Redis: `MGET`, grouped by hash slot on a cluster).
    ///
    /// # Errors
    /// [`TierError`] if the backend could not be asked.
    fn get_many<'a>(&'a self, keys: &'a [&'a [u8]]) -> TierFuture<'a, Vec<Option<Vec<u8>>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key).await?);
            }
            Ok(out)
        })
    }

    /// Stores several entries with one TTL. The default writes one by one; tiers override it
    /// with a batch (Redis: a pipeline).
    ///
    /// # Errors
    /// [`TierError`] if some writes may not have happened.
    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a [u8], &'a [u8])],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        Box::pin(async move {
            for (key, value) in entries {
                self.set(key, value, ttl).await?;
            }
            Ok(())
        })
    }
}

/// Why a [`Tier`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TierError {
    /// The call did not finish within its time limit.
    #[error("{tier} tier: timed out after {after:?}")]
    Timeout {
        /// The tier's name.
        tier: &'static str,
        /// The limit that passed.
        after: Duration,
    },
    /// The circuit breaker is open: the tier failed repeatedly and is not being called.
    #[error("{tier} tier: circuit open after repeated failures")]
    CircuitOpen {
        /// The tier's name.
        tier: &'static str,
    },
    /// The backend reported an error (connection refused, I/O error, protocol error...).
    #[error("{tier} tier: {source}")]
    Backend {
        /// The tier's name.
        tier: &'static str,
        /// What the backend said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl TierError {
    /// A [`TierError::Backend`] from any error.
    pub fn backend(
        tier: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TierError::Backend {
            tier,
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MapTier(Mutex<HashMap<Vec<u8>, Vec<u8>>>);

    impl Tier for MapTier {
        fn name(&self) -> &'static str {
            "map"
        }
        fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
            Box::pin(async move { Ok(self.0.lock().unwrap().get(key).cloned()) })
        }
        fn set<'a>(
            &'a self,
            key: &'a [u8],
            value: &'a [u8],
            _ttl: Option<Duration>,
        ) -> TierFuture<'a, ()> {
            Box::pin(async move {
                self.0.lock().unwrap().insert(key.to_vec(), value.to_vec());
                Ok(())
            })
        }
        fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
            Box::pin(async move {
                self.0.lock().unwrap().remove(key);
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn default_batches_go_one_by_one_and_keep_order() {
        let t: Box<dyn Tier> = Box::new(MapTier::default());
        t.set_many(&[(b"a", b"1"), (b"b", b"2")], None)
            .await
            .unwrap();
        let got = t.get_many(&[b"b", b"x", b"a"]).await.unwrap();
        assert_eq!(got, vec![Some(b"2".to_vec()), None, Some(b"1".to_vec())]);
        t.delete(b"a").await.unwrap();
        assert_eq!(t.get(b"a").await.unwrap(), None);
        let e = TierError::backend("map", std::io::Error::other("down"));
        assert_eq!(e.to_string(), "map tier: down");
    }
}
