//! Why entries leave the cache ([`RemovalCause`]) and the eviction listener that hears of it.

use std::fmt;

/// Why an entry left the cache, as reported to the
/// [eviction listener](crate::CacheBuilder::eviction_listener) and counted in
/// [`CacheStats`](crate::CacheStats). Named after moka's and Caffeine's causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Its time to live, time to idle or per-entry [`Expiry`](crate::Expiry) deadline passed.
    Expired,
    /// The application removed it: `remove`, `invalidate`, `invalidate_all`,
    /// `invalidate_entries_if`, or a compute that returned [`Op::Remove`](crate::Op::Remove).
    Explicit,
    /// An `insert` (or a compute) stored a new value under its key.
    Replaced,
    /// The eviction policy evicted it to make room, or it was never admitted because it is
    /// heavier than its shard's share of the capacity.
    Size,
}

impl RemovalCause {
    /// Whether the cache removed the entry on its own (`Expired` or `Size`), as opposed to
    /// an application's write.
    pub fn was_evicted(self) -> bool {
        matches!(self, RemovalCause::Expired | RemovalCause::Size)
    }

    /// All causes, in the order of their index.
    #[cfg(test)]
    pub(crate) const ALL: [RemovalCause; 4] = [
        RemovalCause::Expired,
        RemovalCause::Explicit,
        RemovalCause::Replaced,
        RemovalCause::Size,
    ];

    pub(crate) fn index(self) -> usize {
        match self {
            RemovalCause::Expired => 0,
            RemovalCause::Explicit => 1,
            RemovalCause::Replaced => 2,
            RemovalCause::Size => 3,
        }
    }
}

impl fmt::Display for RemovalCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemovalCause::Expired => "expired",
            RemovalCause::Explicit => "explicit",
            RemovalCause::Replaced => "replaced",
            RemovalCause::Size => "size",
        })
    }
}

/// The boxed listener a cache holds.
pub(crate) type Listener<K, V> = Box<dyn Fn(&K, &V, RemovalCause) + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_match_all() {
        for (i, c) in RemovalCause::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        assert!(RemovalCause::Size.was_evicted());
        assert!(!RemovalCause::Replaced.was_evicted());
        assert_eq!(RemovalCause::Expired.to_string(), "expired");
    }
}
