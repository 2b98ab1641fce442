//! [`DiskOptions`] and [`Durability`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A clock: the current time in unix milliseconds.
pub(crate) type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The default [`DiskOptions::cache_bytes`]: 64 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// The default [`Durability`]: [`Durability::Periodic`] every second.
pub const DEFAULT_DURABILITY: Durability = Durability::Periodic(Duration::from_secs(1));

/// When a write reaches stable storage.
///
/// Every write is atomic and crash-consistent whatever the durability: after a crash (the
/// process killed, or the machine losing power) the tier reopens on the state of some earlier
/// moment, with every record it serves exactly as it was written. The durability says how
/// far back that moment may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Each `set`, `set_many` and `delete` is on stable storage (`fsync`) before its future
    /// completes. A crash loses nothing that was acknowledged. Costs one `fsync` per write
    /// (about 200 µs on the project's CI machine, see the crate docs).
    Immediate,
    /// Writes are committed (visible to every later call, atomic, crash-consistent) at once,
    /// and made durable (one `fsync` for many writes) by whichever comes first: a background
    /// thread that wakes every interval and commits durably if any commit since the last
    /// durable one was not; the write that follows 256 unsynced ones (which bounds how far
    /// the file grows between durable commits, see the crate docs);
    /// [`DiskTier::flush`](crate::DiskTier::flush); dropping the
    /// [`DiskTier`](crate::DiskTier). A crash loses at most the writes of about the last
    /// interval: the reopened tier serves what the last durable commit held.
    /// `Periodic(Duration::ZERO)` behaves as [`Durability::Immediate`].
    Periodic(Duration),
}

impl Default for Durability {
    /// [`DEFAULT_DURABILITY`]: `Periodic(1 s)`.
    fn default() -> Self {
        DEFAULT_DURABILITY
    }
}

/// How to open a [`DiskTier`](crate::DiskTier): its byte bound, durability, read cache and
/// clock.
///
/// ```
/// use std::time::Duration;
/// use layercache_disk::{DiskOptions, Durability};
///
/// let options = DiskOptions::new(512 << 20) // 512 MiB of keys and records
///     .durability(Durability::Periodic(Duration::from_millis(250)))
///     .cache_bytes(16 << 20);
/// assert_eq!(options.max_bytes(), 512 << 20);
/// ```
#[derive(Clone)]
pub struct DiskOptions {
    pub(crate) max_bytes: u64,
    pub(crate) durability: Durability,
    pub(crate) cache_bytes: usize,
    pub(crate) clock: Clock,
}

impl DiskOptions {
    /// Options with the byte bound `max_bytes` (required: there is no default size for a disk
    /// cache) and the defaults for the rest: [`DEFAULT_DURABILITY`], [`DEFAULT_CACHE_BYTES`],
    /// the system clock.
    ///
    /// `max_bytes` bounds the *counted* bytes: for each entry, its key's length plus its
    /// record's length (21 bytes of header plus the value's length). See the crate docs for
    /// what the file on disk adds. [`DiskTier::open`](crate::DiskTier::open) refuses 0.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            durability: DEFAULT_DURABILITY,
            cache_bytes: DEFAULT_CACHE_BYTES,
            clock: Arc::new(system_clock_ms),
        }
    }

    /// Sets when writes reach stable storage (default [`DEFAULT_DURABILITY`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the memory, in bytes, the store may use to cache file pages (default
    /// [`DEFAULT_CACHE_BYTES`], 64 MiB). The operating system's page cache comes on top.
    #[must_use]
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Replaces the clock that TTLs are measured against: a function returning the current
    /// time in unix milliseconds (default: [`SystemTime::now`]). Meant for tests, which can
    /// move time forward without sleeping.
    ///
    /// Expiry times are stored as absolute unix milliseconds, so the clock must be the same
    /// (wall-clock) time base across restarts.
    #[must_use]
    pub fn clock(mut self, now_unix_ms: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(now_unix_ms);
        self
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The durability.
    pub fn durability_mode(&self) -> Durability {
        self.durability
    }
}

impl fmt::Debug for DiskOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskOptions")
            .field("max_bytes", &self.max_bytes)
            .field("durability", &self.durability)
            .field("cache_bytes", &self.cache_bytes)
            .finish_non_exhaustive()
    }
}

/// The system clock in unix milliseconds (0 before 1970, which no expiry can be).
pub(crate) fn system_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The absolute expiry, in unix milliseconds, of a write at `now` with `ttl`: 0 for none, else
/// `now + ttl` rounded up to the millisecond and at least 1 ms (never 0, which means none).
pub(crate) fn expiry_ms(now: u64, ttl: Option<Duration>) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => {
            let ms = ttl.as_nanos().div_ceil(1_000_000).max(1);
            now.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_up_and_never_to_zero() {
        assert_eq!(expiry_ms(1000, None), 0);
        assert_eq!(expiry_ms(1000, Some(Duration::ZERO)), 1001);
        assert_eq!(expiry_ms(1000, Some(Duration::from_nanos(1))), 1001);
        assert_eq!(expiry_ms(1000, Some(Duration::from_millis(5))), 1005);
        assert_eq!(expiry_ms(1000, Some(Duration::from_micros(5001))), 1006);
        assert_eq!(expiry_ms(0, Some(Duration::ZERO)), 1);
        assert_eq!(expiry_ms(u64::MAX - 1, Some(Duration::MAX)), u64::MAX);
    }

    #[test]
    fn defaults_and_debug() {
        let o = DiskOptions::new(10);
        assert_eq!(o.max_bytes(), 10);
        assert_eq!(o.durability_mode(), Durability::default());
        assert!(format!("{o:?}").contains("max_bytes: 10"));
        assert!(system_clock_ms() > 1_600_000_000_000);
        let o = o.clock(|| 42).durability(Durability::Immediate);
        assert_eq!((o.clock)(), 42);
        assert_eq!(o.durability_mode(), Durability::Immediate);
    }
}
