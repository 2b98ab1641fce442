//! The [`Tier`] trait and [`TierError`].

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

    /// Whether [`add`](Self::add), [`compare_and_set`](Self::compare_and_set) and
    /// [`compare_and_delete`](Self::compare_and_delete) are implemented (atomically). Default: `false`. The front crate uses them for *leases*
    /// (see below) where they are, and plain [`set`](Self::set) where they are not.
    fn supports_conditional_writes(&self) -> bool {
        false
    }

    /// Stores `value` under `key` only if `key` holds nothing now; whether it stored.
    /// Atomic: of concurrent `add`s of one absent key, at most one returns `true`.
    ///
    /// layercache uses it to take a *lease* on a missing key before loading it (a small
    /// marker value, as memcache's leases: Nishtala et al., "Scaling Memcache at Facebook",
    /// NSDI 2013), and [`compare_and_set`](Self::compare_and_set) to replace its own marker
    /// with the loaded value: a `delete` or `set` of the key in between (an invalidation)
    /// makes that fill fail, so a value loaded before an invalidation never lands after it.
    ///
    /// # Errors
    /// [`TierError::Unsupported`] by default; [`TierError`] if the backend could not be asked.
    fn add<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        let _ = (key, value, ttl);
        Box::pin(async move {
            Err(TierError::Unsupported {
                tier: self.name(),
                op: "add",
            })
        })
    }

    /// Replaces the value of `key` with `value` (and its TTL with `ttl`) only if `key` holds
    /// exactly the bytes `expected` now; whether it replaced. Atomic with respect to every
    /// other call on the key.
    ///
    /// # Errors
    /// [`TierError::Unsupported`] by default; [`TierError`] if the backend could not be asked.
    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        let _ = (key, expected, value, ttl);
        Box::pin(async move {
            Err(TierError::Unsupported {
                tier: self.name(),
                op: "compare_and_set",
            })
        })
    }

    /// Deletes `key` only if it holds exactly the bytes `expected` now; whether it deleted.
    /// Atomic with respect to every other call on the key (how a fill gives its lease back
    /// without removing a value someone else wrote meanwhile).
    ///
    /// # Errors
    /// [`TierError::Unsupported`] by default; [`TierError`] if the backend could not be asked.
    fn compare_and_delete<'a>(&'a self, key: &'a [u8], expected: &'a [u8]) -> TierFuture<'a, bool> {
        let _ = (key, expected);
        Box::pin(async move {
            Err(TierError::Unsupported {
                tier: self.name(),
                op: "compare_and_delete",
            })
        })
    }

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
    /// The tier does not implement this call (see
    /// [`Tier::supports_conditional_writes`]).
    #[error("{tier} tier: {op} is not supported")]
    Unsupported {
        /// The tier's name.
        tier: &'static str,
        /// The call.
        op: &'static str,
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
        assert!(!t.supports_conditional_writes());
        assert!(matches!(
            t.add(b"k", b"v", None).await,
            Err(TierError::Unsupported { op: "add", .. })
        ));
        assert!(matches!(
            t.compare_and_set(b"k", b"v", b"w", None).await,
            Err(TierError::Unsupported {
                op: "compare_and_set",
                ..
            })
        ));
        let e = TierError::backend("map", std::io::Error::other("down"));
        assert_eq!(e.to_string(), "map tier: down");
    }
}
