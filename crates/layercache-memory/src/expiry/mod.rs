//! Expiration: time to live, time to idle and per-entry [`Expiry`], on an injectable
//! [`Clock`], cleaned up through a per-shard hierarchical timer wheel.
//!
//! # Model
//! Every entry of a cache built with [`time_to_live`](crate::CacheBuilder::time_to_live),
//! [`time_to_idle`](crate::CacheBuilder::time_to_idle) or an
//! [`expire_after`](crate::CacheBuilder::expire_after) policy has one *deadline*, in
//! nanoseconds on the cache's [`Clock`]. It is the earliest of:
//! - the write deadline: last create or update + time to live;
//! - the idle deadline: last create, update or read + time to idle;
//! - the [`Expiry`]'s deadline: last create, update or read + what the matching
//!   `expire_after_*` method returned (`None`: no deadline from it).
//!
//! An entry is expired once `now >= deadline`. **An expired entry is never returned**: every
//! lookup compares the deadline with the clock, whether or not cleanup has run. Cleanup runs
//! inside cache operations (writes, and reads that apply the hit buffer), advancing each
//! shard's timer wheel, and reports each expired entry to the eviction listener with
//! [`RemovalCause::Expired`](crate::RemovalCause::Expired) within one wheel tick
//! (2^30 ns ≈ 1.07 s) of its deadline, as measured by the clock, provided the cache is used
//! or [`run_pending_tasks`](crate::Cache::run_pending_tasks) is called. No background thread
//! is needed. Until cleanup, an expired entry still counts in
//! [`entry_count`](crate::Cache::entry_count) and [`weighted_size`](crate::Cache::weighted_size).

mod clock;
mod wheel;

use std::sync::Arc;
use std::time::Duration;

pub use clock::{Clock, CoarseClock, ManualClock, MonotonicClock};
pub(crate) use wheel::{TimerWheel, NEVER};

/// Per-entry expiration, as in moka's and Caffeine's `Expiry`: each method returns how long
/// the entry may live from now (`None`: no deadline from this policy).
///
/// The methods run under the entry's shard lock (the read lock for `expire_after_read`), so
/// they must be quick and must not call the cache. Durations are saturated at about 584
/// years. A cache-wide [`time_to_live`](crate::CacheBuilder::time_to_live) or
/// [`time_to_idle`](crate::CacheBuilder::time_to_idle) still applies on top: the earliest
/// deadline wins.
///
/// ```
/// use std::time::Duration;
/// use layercache_memory::{Cache, Expiry};
///
/// /// Sessions live 30 minutes, API tokens as long as they say.
/// struct ByKind;
/// impl Expiry<String, (bool, u64)> for ByKind {
///     fn expire_after_create(&self, _key: &String, value: &(bool, u64)) -> Option<Duration> {
///         let (is_token, seconds) = *value;
///         Some(if is_token { Duration::from_secs(seconds) } else { Duration::from_secs(1800) })
///     }
/// }
///
/// let cache = Cache::builder().max_capacity(1000).expire_after(ByKind).build();
/// cache.insert("t1".to_string(), (true, 60));
/// assert!(cache.get("t1").is_some());
/// ```
pub trait Expiry<K, V>: Send + Sync {
    /// After `key` is first stored with `value`. Default: `None` (no deadline).
    fn expire_after_create(&self, key: &K, value: &V) -> Option<Duration> {
        let _ = (key, value);
        None
    }

    /// After a read that found the entry live. `remaining` is the time left before the entry
    /// would expire (`None`: it would not). Default: `remaining` (a read changes nothing).
    fn expire_after_read(
        &self,
        key: &K,
        value: &V,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        let _ = (key, value);
        remaining
    }

    /// Whether [`expire_after_read`](Self::expire_after_read) can change a deadline.
    /// Default: `true`. Return `false` when it keeps the default (reads change nothing): then
    /// a hit on an entry without a deadline reads no clock at all, and no hit calls
    /// `expire_after_read`.
    fn reads_change_deadlines(&self) -> bool {
        true
    }

    /// After `value` replaced a live entry's value. `remaining` is as for
    /// [`expire_after_read`](Self::expire_after_read). Default: `remaining`.
    fn expire_after_update(
        &self,
        key: &K,
        value: &V,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        let _ = (key, value);
        remaining
    }
}

/// The expiration settings of a cache and the arithmetic of deadlines (nanoseconds).
pub(crate) struct Expiration<K, V> {
    pub(crate) clock: Arc<dyn Clock>,
    /// Time to live, nanoseconds.
    pub(crate) ttl: Option<u64>,
    /// Time to idle, nanoseconds.
    pub(crate) tti: Option<u64>,
    pub(crate) expiry: Option<Box<dyn Expiry<K, V>>>,
    /// Time to idle is set, or the `Expiry` changes deadlines on reads.
    pub(crate) reads_matter: bool,
}

/// An entry's deadlines (nanoseconds on the clock; [`NEVER`] for none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadlines {
    /// When the entry expires: the earliest of the others and the idle deadline.
    pub(crate) at: u64,
    /// Last write + time to live.
    pub(crate) write: u64,
    /// The [`Expiry`]'s own deadline.
    pub(crate) custom: u64,
}

/// Saturating nanoseconds of a duration.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn after(now: u64, d: Option<u64>) -> u64 {
    d.map_or(NEVER, |d| now.saturating_add(d))
}

fn remaining(now: u64, deadline: u64) -> Option<Duration> {
    (deadline != NEVER).then(|| Duration::from_nanos(deadline.saturating_sub(now)))
}

impl<K, V> Expiration<K, V> {
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Whether a read changes the deadline (time to idle or an `Expiry`).
    #[inline]
    pub(crate) fn reads_matter(&self) -> bool {
        self.reads_matter
    }

    fn combine(&self, now: u64, write: u64, custom: u64) -> Deadlines {
        Deadlines {
            at: write.min(custom).min(after(now, self.tti)),
            write,
            custom,
        }
    }

    /// The deadlines of a new entry.
    pub(crate) fn on_create(&self, key: &K, value: &V, now: u64) -> Deadlines {
        let custom = self.expiry.as_ref().map_or(NEVER, |e| {
            after(now, e.expire_after_create(key, value).map(nanos))
        });
        self.combine(now, after(now, self.ttl), custom)
    }

    /// The deadlines after `value` replaced the value of a live entry whose `Expiry`
    /// deadline was `custom`.
    pub(crate) fn on_update(&self, key: &K, value: &V, now: u64, custom: u64) -> Deadlines {
        let custom = self.expiry.as_ref().map_or(NEVER, |e| {
            after(
                now,
                e.expire_after_update(key, value, remaining(now, custom))
                    .map(nanos),
            )
        });
        self.combine(now, after(now, self.ttl), custom)
    }

    /// The deadlines after a read of a live entry (meaningful when
    /// [`reads_matter`](Self::reads_matter)).
    pub(crate) fn on_read(&self, key: &K, value: &V, now: u64, old: Deadlines) -> Deadlines {
        let custom = match &self.expiry {
            Some(e) if e.reads_change_deadlines() => after(
                now,
                e.expire_after_read(key, value, remaining(now, old.custom))
                    .map(nanos),
            ),
            Some(_) => old.custom,
            None => NEVER,
        };
        self.combine(now, old.write, custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u64);
    impl Expiry<u32, u32> for Fixed {
        fn expire_after_create(&self, _: &u32, _: &u32) -> Option<Duration> {
            Some(Duration::from_nanos(self.0))
        }
    }

    fn exp(ttl: Option<u64>, tti: Option<u64>, custom: Option<u64>) -> Expiration<u32, u32> {
        Expiration {
            clock: Arc::new(ManualClock::new()),
            ttl,
            tti,
            reads_matter: tti.is_some() || custom.is_some(),
            expiry: custom.map(|c| Box::new(Fixed(c)) as Box<dyn Expiry<u32, u32>>),
        }
    }

    #[test]
    fn earliest_deadline_wins() {
        let e = exp(Some(100), Some(30), None);
        let d = e.on_create(&1, &1, 1000);
        assert_eq!((d.at, d.write, d.custom), (1030, 1100, NEVER));
        // A read at 1020 extends the idle deadline, never past the write deadline.
        let d = e.on_read(&1, &1, 1020, d);
        assert_eq!(d.at, 1050);
        let d = e.on_read(&1, &1, 1090, d);
        assert_eq!(d.at, 1100);
        // An update resets time to live.
        let d = e.on_update(&1, &1, 1095, d.custom);
        assert_eq!((d.at, d.write), (1125, 1195));
    }

    #[test]
    fn custom_expiry_keeps_its_own_deadline() {
        let e = exp(Some(100), None, Some(40));
        let d = e.on_create(&1, &1, 0);
        assert_eq!((d.at, d.custom), (40, 40));
        // The default expire_after_read keeps the remaining time.
        assert_eq!(e.on_read(&1, &1, 10, d), d);
        // The default expire_after_update keeps the custom deadline, and time to live restarts.
        let d = e.on_update(&1, &1, 20, d.custom);
        assert_eq!((d.at, d.write, d.custom), (40, 120, 40));
        let none = exp(None, None, None);
        assert_eq!(none.on_create(&1, &1, 5).at, NEVER);
    }

    #[test]
    fn saturates() {
        let e = exp(Some(u64::MAX), None, None);
        assert_eq!(e.on_create(&1, &1, 10).at, u64::MAX);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }
}
