//! The time source of expiration: the [`Clock`] trait, the default [`CoarseClock`], the
//! precise [`MonotonicClock`] and the [`ManualClock`] for tests.
//!
//! # Why the default clock is coarse
//! A `get` on a cache that expires entries must read the clock (an expired entry is never
//! returned). Reading a precise clock (`Instant::now`, or the TSC through `quanta`) executes
//! `rdtsc`, which on the machines we measured holds back the memory loads that follow it: on
//! a 1M-entry cache, whose hits miss the CPU caches, it took a hit from about 120 ns to
//! about 260 ns. [`CoarseClock`] reads the kernel's coarse monotonic clock
//! (`CLOCK_MONOTONIC_COARSE` on Linux, through the [`coarsetime`] crate): a couple of plain
//! loads from a page the kernel updates every scheduler tick (1 to 4 ms), and a hit costs
//! about 5–10 ns more than without expiration. Deadlines are then exact *on that clock*:
//! an entry can be served up to one kernel tick after its deadline in wall time, and
//! never after it on the clock. Build with [`MonotonicClock`] when time to live is in
//! microseconds.
//!
//! Every reading is a `u64` count of **nanoseconds** since an origin fixed when the clock was
//! made (not since the Unix epoch), so deadlines are plain integers and comparing them with
//! the clock is one instruction. `u64` nanoseconds last about 584 years from the origin;
//! conversions from [`Duration`] saturate at `u64::MAX` rather than wrap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Monotonic time in nanoseconds since an origin fixed when the clock was made.
///
/// A cache reads its clock once per operation and compares the reading with entries'
/// deadlines, so `now` should be cheap. Readings must never go backwards; a clock whose
/// readings did would only make entries expire later than they should, never earlier.
/// The clock is shared by every thread using the cache, hence `Send + Sync + 'static`.
///
/// Implement it to drive expiration from another time source:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use layercache_memory::Clock;
///
/// /// Time counted in whole milliseconds by some external event loop.
/// struct Ticks(AtomicU64);
///
/// impl Clock for Ticks {
///     fn now(&self) -> u64 {
///         self.0.load(Ordering::Acquire).saturating_mul(1_000_000)
///     }
/// }
///
/// let ticks = Ticks(AtomicU64::new(3));
/// assert_eq!(ticks.now(), 3_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time, in nanoseconds since this clock's origin.
    fn now(&self) -> u64;
}

/// Nanoseconds in `d`, saturating at `u64::MAX` (about 584 years).
fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A precise clock: [`Instant`]-based monotonic time (nanosecond resolution), whose origin
/// (reading 0) is the moment [`MonotonicClock::new`] was called. Each reading costs a
/// serializing time-stamp read; see the [crate docs](crate#expiration) for when to prefer it
/// over the default [`CoarseClock`].
///
/// Clones share the origin, so they read the same time. It is `Send + Sync` and reading it
/// takes no lock. A reading saturates at `u64::MAX` nanoseconds (about 584 years after the
/// origin).
///
/// ```
/// use layercache_memory::{Clock, MonotonicClock};
///
/// let clock = MonotonicClock::new();
/// let a = clock.now();
/// let b = clock.clone().now();
/// assert!(b >= a);
/// ```
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    /// The instant that reads as 0.
    origin: Instant,
}

impl MonotonicClock {
    /// A clock reading 0 now.
    pub fn new() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    /// Same as [`MonotonicClock::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> u64 {
        saturating_nanos(self.origin.elapsed())
    }
}

/// The default clock: the operating system's coarse monotonic clock, in nanoseconds since
/// [`CoarseClock::new`] was called, advancing in steps of one kernel tick (1–4 ms on Linux;
/// see the [crate docs](crate#expiration) for why it is the default and what it guarantees).
///
/// Reading it takes no lock and writes no shared memory. Clones share the origin.
///
/// ```
/// use layercache_memory::{Clock, CoarseClock};
///
/// let clock = CoarseClock::new();
/// let a = clock.now();
/// assert!(clock.clone().now() >= a);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CoarseClock {
    /// The reading (in coarsetime's 2^-32 s ticks) that is 0.
    origin: u64,
}

impl CoarseClock {
    /// A clock reading 0 now.
    pub fn new() -> Self {
        CoarseClock {
            origin: coarsetime::Instant::now_without_cache_update().as_ticks(),
        }
    }
}

impl Default for CoarseClock {
    /// Same as [`CoarseClock::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> u64 {
        // `now_without_cache_update`: `now` would also store into a global shared by all
        // threads.
        let ticks = coarsetime::Instant::now_without_cache_update()
            .as_ticks()
            .saturating_sub(self.origin);
        // Ticks are 2^-32 s.
        u64::try_from((u128::from(ticks) * 1_000_000_000) >> 32).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to, for tests: expiration can be exercised without
/// sleeping, deterministically.
///
/// It starts at 0. Clones share one time (an `Arc` inside), so a test keeps a clone, hands
/// another to the cache (see [`CacheBuilder::clock`](crate::CacheBuilder::clock)) and moves
/// time from the test. All methods take `&self` and are safe to call from any thread; a move
/// is visible to every clone as soon as the call returns. Time never goes back: [`set`]
/// to an earlier time is ignored, and [`advance`] saturates at `u64::MAX` nanoseconds
/// (about 584 years), as do all conversions from [`Duration`].
///
/// [`set`]: ManualClock::set
/// [`advance`]: ManualClock::advance
///
/// ```
/// use std::time::Duration;
/// use layercache_memory::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let handle = clock.clone(); // shares the time
/// assert_eq!(clock.now(), 0);
///
/// handle.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now(), 1_500_000_000);
///
/// clock.set(Duration::from_secs(10));
/// assert_eq!(handle.now_duration(), Duration::from_secs(10));
///
/// clock.set(Duration::from_secs(1)); // earlier than now: ignored
/// assert_eq!(clock.now(), 10_000_000_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    /// The current time in nanoseconds, shared by all clones.
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by` (saturating at `u64::MAX` nanoseconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercache_memory::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(1));
    /// clock.advance(Duration::from_nanos(5));
    /// assert_eq!(clock.now(), 1_000_000_005);
    /// clock.advance(Duration::MAX);
    /// assert_eq!(clock.now(), u64::MAX);
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = saturating_nanos(by);
        // The closure always returns `Some`, so the update cannot fail.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(by))
            });
    }

    /// Sets the time to `to` since the origin, unless that is earlier than the current time,
    /// in which case nothing changes (time never goes back).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercache_memory::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.set(Duration::from_secs(60));
    /// clock.set(Duration::from_secs(30)); // ignored
    /// assert_eq!(clock.now_duration(), Duration::from_secs(60));
    /// ```
    pub fn set(&self, to: Duration) {
        self.nanos.fetch_max(saturating_nanos(to), Ordering::AcqRel);
    }

    /// The current time as a [`Duration`] since the origin (the same reading as
    /// [`Clock::now`]).
    pub fn now_duration(&self) -> Duration {
        Duration::from_nanos(self.now())
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_clock<C: Clock + Clone + Default + std::fmt::Debug>() {}

    #[test]
    fn clocks_are_send_sync_static() {
        assert_clock::<MonotonicClock>();
        assert_clock::<ManualClock>();
        let clocks: Vec<Arc<dyn Clock>> = vec![
            Arc::new(MonotonicClock::default()),
            Arc::new(ManualClock::new()),
        ];
        assert!(clocks.iter().all(|c| c.now() < 60_000_000_000));
    }

    #[test]
    fn monotonic_clock_starts_near_zero_and_never_goes_back() {
        let clock = MonotonicClock::new();
        let twin = clock.clone();
        let mut last = clock.now();
        // Generous: the machine may be busy, but not for a minute.
        assert!(last < 60_000_000_000, "a new clock reads {last} ns");
        for c in [&clock, &twin].iter().cycle().take(1000) {
            let now = c.now();
            assert!(now >= last);
            last = now;
        }
        std::thread::sleep(Duration::from_millis(2));
        assert!(clock.now() >= last + 2_000_000);
    }

    #[test]
    fn manual_clock_moves_only_forward_and_clones_share_it() {
        let clock = ManualClock::new();
        let twin = clock.clone();
        assert_eq!(clock.now(), 0);
        assert_eq!(ManualClock::default().now(), 0);
        twin.advance(Duration::from_nanos(7));
        assert_eq!(clock.now(), 7);
        clock.set(Duration::from_secs(3));
        assert_eq!(twin.now(), 3_000_000_000);
        clock.set(Duration::from_secs(2));
        assert_eq!(twin.now_duration(), Duration::from_secs(3));
        clock.set(Duration::ZERO);
        assert_eq!(clock.now(), 3_000_000_000);
        clock.advance(Duration::ZERO);
        assert_eq!(clock.now(), 3_000_000_000);
    }

    #[test]
    fn manual_clock_saturates() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(u64::MAX));
        assert_eq!(clock.now(), u64::MAX);
        clock.advance(Duration::from_nanos(1));
        assert_eq!(clock.now(), u64::MAX);
        let other = ManualClock::new();
        other.set(Duration::MAX);
        assert_eq!(other.now(), u64::MAX);
        assert_eq!(other.now_duration(), Duration::from_nanos(u64::MAX));
        assert_eq!(
            saturating_nanos(Duration::new(18_446_744_073, 709_551_615)),
            u64::MAX
        );
        assert_eq!(
            saturating_nanos(Duration::new(18_446_744_073, 709_551_616)),
            u64::MAX
        );
        assert_eq!(saturating_nanos(Duration::new(1, 2)), 1_000_000_002);
    }

    #[test]
    fn manual_clock_advances_add_up_across_threads() {
        let clock = ManualClock::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let c = clock.clone();
                s.spawn(move || {
                    for _ in 0..1000 {
                        c.advance(Duration::from_nanos(3));
                    }
                });
            }
            let c = clock.clone();
            s.spawn(move || {
                let mut last = 0;
                for _ in 0..1000 {
                    let now = c.now();
                    assert!(now >= last);
                    last = now;
                }
            });
        });
        assert_eq!(clock.now(), 12_000);
    }
}
