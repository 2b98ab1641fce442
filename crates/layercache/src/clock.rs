//! The time a [`TieredCache`](crate::TieredCache) reads: the [`TieredClock`] trait, the
//! default [`SystemClock`], and the [`ManualTieredClock`] that tests move by hand.
//!
//! A tiered cache keeps time in two places, and one clock drives both:
//! - **L1 deadlines**, on the engine's monotonic [`Clock`](layercache_memory::Clock): a
//!   `u64` count of **nanoseconds** since an origin of the clock's choosing
//!   ([`Clock::now`](layercache_memory::Clock::now)).
//! - **L2 envelopes**, whose created-at and expires-at fields are wall-clock **milliseconds
//!   since the Unix epoch** ([`TieredClock::epoch_ms`]), so that every process sharing the L2
//!   agrees on when an entry expires. A value promoted from L2 into L1 gets the envelope's
//!   remaining lifetime (`expires_at - epoch_ms()`) as its L1 time to live.
//!
//! Neither covers the L2 tier's own expiry (Redis `PX`, the disk tier's own clock): the
//! envelope's expiry is checked
//! on every read whatever the tier does, so an entry the tier still holds is a miss once its
//! envelope has expired on this clock. The L2 call timeout and the circuit breaker
//! ([`BreakerConfig`](crate::BreakerConfig)) run on tokio's timer (`tokio::time`), which
//! tests control with tokio's paused time (`#[tokio::test(start_paused = true)]`,
//! `tokio::time::advance`), not on this clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use layercache_memory::{Clock, CoarseClock, ManualClock};

/// The time source of a [`TieredCache`](crate::TieredCache): a monotonic
/// [`Clock`](layercache_memory::Clock) for L1's deadlines (nanoseconds since the clock's own
/// origin) that also tells wall-clock time for L2 envelopes ([`epoch_ms`](Self::epoch_ms),
/// milliseconds since the Unix epoch). Set it with
/// [`TieredCacheBuilder::clock`](crate::TieredCacheBuilder::clock); the default is
/// [`SystemClock`].
///
/// The two readings should advance together: a move of `d` in
/// [`now`](layercache_memory::Clock::now) should be a move of `d` in `epoch_ms`, so that an
/// entry promoted from L2 leaves L1 when its envelope expires. [`ManualTieredClock`] keeps
/// them exactly in step (to the millisecond); [`SystemClock`] as closely as the operating
/// system's monotonic and wall clocks agree.
pub trait TieredClock: Clock {
    /// Wall-clock time in milliseconds since the Unix epoch (1970-01-01 00:00:00 UTC).
    fn epoch_ms(&self) -> u64;
}

/// Milliseconds in `d`, saturating at `u64::MAX`.
pub(crate) fn saturating_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The default clock: L1 reads the engine's [`CoarseClock`] (the operating system's coarse
/// monotonic clock, in steps of one kernel tick, 1–4 ms on Linux; see
/// [`layercache_memory::expiry`] for why), and envelopes read [`SystemTime`] (0 if the system
/// clock is set before 1970).
///
/// Clones share the monotonic origin.
///
/// ```
/// use layercache::memory::Clock;
/// use layercache::{SystemClock, TieredClock};
///
/// let clock = SystemClock::new();
/// assert!(clock.epoch_ms() > 1_600_000_000_000); // after September 2020
/// let a = clock.now();
/// assert!(clock.clone().now() >= a);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock {
    monotonic: CoarseClock,
}

impl SystemClock {
    /// A clock whose monotonic reading is 0 now.
    pub fn new() -> Self {
        SystemClock {
            monotonic: CoarseClock::new(),
        }
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> u64 {
        self.monotonic.now()
    }
}

impl TieredClock for SystemClock {
    fn epoch_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, saturating_ms)
    }
}

/// A clock that moves only when told to, for tests: one handle moves L1's deadlines and the
/// envelopes' wall-clock time together, so time-to-live in both tiers is tested without
/// sleeping.
///
/// Its monotonic reading starts at 0 nanoseconds and its wall-clock reading at the epoch time
/// it was made with ([`new`](Self::new): the system's time then; [`starting_at`](Self::starting_at):
/// a fixed time). Clones share one time (an `Arc` inside): a test keeps a clone, hands another
/// to [`TieredCacheBuilder::clock`](crate::TieredCacheBuilder::clock) (several caches may
/// share it) and calls [`advance`](Self::advance). Time never goes back, and saturates at
/// `u64::MAX` nanoseconds (about 584 years).
///
/// ```
/// use std::time::Duration;
/// use layercache::memory::Clock;
/// use layercache::{ManualTieredClock, TieredClock};
///
/// let clock = ManualTieredClock::starting_at(1_000);
/// let handle = clock.clone();
/// handle.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now(), 1_500_000_000); // nanoseconds since the clock was made
/// assert_eq!(clock.epoch_ms(), 2_500); // milliseconds since the Unix epoch
/// ```
#[derive(Debug, Clone)]
pub struct ManualTieredClock {
    /// The monotonic time, shared by all clones.
    monotonic: ManualClock,
    /// The wall-clock time, in Unix milliseconds, when `monotonic` read 0.
    origin_ms: u64,
}

impl ManualTieredClock {
    /// A clock whose wall-clock time starts at the system's time now (so that envelopes it
    /// stamps look like any other process's), and stays there until moved.
    pub fn new() -> Self {
        Self::starting_at(SystemClock::new().epoch_ms())
    }

    /// A clock whose wall-clock time starts at `epoch_ms` milliseconds since the Unix epoch.
    pub fn starting_at(epoch_ms: u64) -> Self {
        ManualTieredClock {
            monotonic: ManualClock::new(),
            origin_ms: epoch_ms,
        }
    }

    /// Moves both readings forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        self.monotonic.advance(by);
    }

    /// The time elapsed since the clock was made (the monotonic reading as a [`Duration`]).
    pub fn elapsed(&self) -> Duration {
        self.monotonic.now_duration()
    }
}

impl Default for ManualTieredClock {
    /// Same as [`ManualTieredClock::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualTieredClock {
    #[inline]
    fn now(&self) -> u64 {
        self.monotonic.now()
    }
}

impl TieredClock for ManualTieredClock {
    fn epoch_ms(&self) -> u64 {
        self.origin_ms
            .saturating_add(self.monotonic.now() / 1_000_000)
    }
}

/// The clock a built cache keeps for envelopes.
pub(crate) type SharedClock = Arc<dyn TieredClock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_both_readings_together() {
        let clock = ManualTieredClock::starting_at(5_000);
        let twin = clock.clone();
        assert_eq!((clock.now(), clock.epoch_ms()), (0, 5_000));
        twin.advance(Duration::from_micros(1_500));
        assert_eq!((clock.now(), clock.epoch_ms()), (1_500_000, 5_001));
        twin.advance(Duration::from_secs(10));
        assert_eq!(clock.epoch_ms(), 15_001);
        assert_eq!(clock.elapsed(), Duration::from_micros(10_001_500));
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), u64::MAX);
        assert_eq!(clock.epoch_ms(), 5_000 + u64::MAX / 1_000_000);
        assert_eq!(
            ManualTieredClock::starting_at(u64::MAX - 1).epoch_ms(),
            u64::MAX - 1
        );
    }

    #[test]
    fn system_clock_tells_the_system_time() {
        let clock = SystemClock::new();
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let read = clock.epoch_ms();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(saturating_ms(before) <= read && read <= saturating_ms(after));
        let manual = ManualTieredClock::new();
        assert!(saturating_ms(before) <= manual.epoch_ms());
        assert_eq!(saturating_ms(Duration::MAX), u64::MAX);
    }
}
