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

    /// A raw reading of the clock `CoarseClock` reads, in coarsetime's ticks.
    fn coarse_ticks() -> u64 {
        coarsetime::Instant::now_without_cache_update().as_ticks()
    }

    /// Nanoseconds between two raw readings, by coarsetime's own conversion.
    fn coarse_nanos(from: u64, to: u64) -> u64 {
        let (from, to) = (
            coarsetime::Instant::from_ticks(from),
            coarsetime::Instant::from_ticks(to),
        );
        to.duration_since(from).as_nanos()
    }

    #[test]
    fn coarse_clock_reads_the_time_since_it_was_made() {
        // Its origin is read between `before` and `new` returning, and each reading before
        // `after`: so a reading is at most the time from `before` to `after`.
        let before = coarse_ticks();
        let clock = CoarseClock::new();
        let copy = clock;
        let (first, second) = (clock.now(), copy.now());
        let default = CoarseClock::default().now();
        let bound = coarse_nanos(before, coarse_ticks());
        assert!(first <= bound, "read {first} ns, at most {bound} ns passed");
        assert!(
            (first..=bound).contains(&second),
            "the copy read {second} ns"
        );
        assert!(default <= bound, "the default clock read {default} ns");
    }

    /// The kernel's tick: the resolution of `CLOCK_MONOTONIC_COARSE`, in nanoseconds.
    #[cfg(target_os = "linux")]
    fn kernel_tick() -> u64 {
        let mut res = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `res` is a valid, writable `timespec`, and the clock id is a constant.
        let r = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut res) };
        assert_eq!(r, 0, "clock_getres");
        u64::try_from(res.tv_sec).unwrap() * 1_000_000_000 + u64::try_from(res.tv_nsec).unwrap()
    }

    /// Docs: "advancing in steps of one kernel tick (1–4 ms on Linux)", and readings never
    /// go back, on any clone on any thread. Two threads read copies of one clock until each
    /// has seen 20 steps (at most 5 s): each step is a whole number of ticks (a tick may
    /// pass unseen while a thread is descheduled), never a part of one.
    #[cfg(target_os = "linux")]
    #[test]
    fn coarse_clock_steps_by_whole_kernel_ticks_and_never_goes_back() {
        let tick = kernel_tick();
        assert!(
            (1_000_000..=4_000_000).contains(&tick),
            "the kernel tick is {tick} ns, not 1-4 ms as the docs say"
        );
        let clock = CoarseClock::new();
        let steps: Vec<u64> = std::thread::scope(|s| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(move || {
                        let deadline = Instant::now() + Duration::from_secs(5);
                        let (mut last, mut steps) = (clock.now(), Vec::new());
                        while steps.len() < 20 && Instant::now() < deadline {
                            let now = clock.now();
                            assert!(now >= last, "went back from {last} to {now}");
                            if now > last {
                                steps.push(now - last);
                            }
                            last = now;
                        }
                        steps
                    })
                })
                .collect();
            readers
                .into_iter()
                .flat_map(|r| r.join().unwrap())
                .collect()
        });
        assert!(steps.len() >= 2, "the clock hardly moved in 5 s: {steps:?}");
        for &step in &steps {
            // NTP may slew a tick by up to 500 ppm; readings round to the nanosecond.
            let ticks = (step + tick / 2) / tick;
            let slack = step / 1_000 + 10;
            assert!(
                ticks >= 1 && step.abs_diff(ticks * tick) <= slack,
                "a step of {step} ns is not a whole number of {tick} ns ticks: {steps:?}"
            );
        }
    }

    /// The readings keep to real time: over a bounded wait of about 300 ms, the clock moves
    /// as much as `Instant` does, give or take how stale a coarse reading can be.
    #[test]
    fn coarse_clock_keeps_to_real_time() {
        // A coarse reading lags real time by up to a tick or two (and a tick delivered late
        // on a busy machine): far less than this.
        const STALE: u64 = 100_000_000;
        let start = Instant::now();
        let clock = CoarseClock::new();
        let made = Instant::now();
        let deadline = made + Duration::from_secs(10);
        let (mut reading, mut read_at) = (0, made);
        while reading < 300_000_000 && Instant::now() < deadline {
            std::thread::yield_now();
            read_at = Instant::now();
            reading = clock.now();
        }
        let end = Instant::now();
        assert!(
            reading >= 300_000_000,
            "the clock read {reading} ns after 10 s"
        );
        // It covers at most the real time from before it was made to after the reading, and
        // at least the real time from after it was made to before the reading, less staleness.
        let most = saturating_nanos(end - start) + STALE;
        let least = saturating_nanos(read_at - made).saturating_sub(STALE);
        assert!(
            (least..=most).contains(&reading),
            "read {reading} ns over {least}..={most} ns of real time"
        );
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
