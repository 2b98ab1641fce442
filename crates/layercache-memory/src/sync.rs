//! The locks the engine uses, behind one seam so a model checker can replace them.
//!
//! Normally these are [`parking_lot`]'s (small, fast, no poisoning). Built with
//! `RUSTFLAGS="--cfg shuttle"`, they are thin wrappers over `shuttle`'s, which gives
//! [shuttle](https://github.com/awslabs/shuttle) a scheduling point at every lock operation,
//! so `tests/shuttle.rs` can explore thousands of interleavings of the real engine code.
//! Both variants have the same (parking_lot-style) API.

#[cfg(not(shuttle))]
pub(crate) use parking_lot::{Condvar, Mutex, RwLock};
#[cfg(not(shuttle))]
pub(crate) use parking_lot::{RwLockReadGuard, RwLockWriteGuard};
/// Atomics (shuttle's under the model checker).
#[cfg(not(shuttle))]
pub(crate) use std::sync::atomic;

/// A small number that tells the running thread from the others (threads get consecutive
/// numbers in the order they first ask), for spreading threads over per-thread slots.
#[cfg(not(shuttle))]
#[inline]
pub(crate) fn thread_number() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// Nanoseconds since the first call in this process, for heuristics that need elapsed time
/// (always 0 under the model checker, whose runs must not depend on real time).
#[cfg(not(shuttle))]
pub(crate) fn elapsed_nanos() -> u64 {
    use crate::{Clock, MonotonicClock};
    static CLOCK: std::sync::OnceLock<MonotonicClock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(MonotonicClock::new).now()
}

/// Always 0 under the model checker (see the other variant).
#[cfg(shuttle)]
pub(crate) fn elapsed_nanos() -> u64 {
    0
}

/// Waits a little in a spin loop: a pause instruction at first, then yielding the core, then
/// (after about a thousand yields) sleeping 50 µs at a time, so a long wait does not keep a
/// core busy (under the model checker, always a yield, a scheduling point).
#[cfg(not(shuttle))]
pub(crate) fn back_off(spins: &mut u32) {
    if *spins < 64 {
        std::hint::spin_loop();
    } else if *spins < 1024 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    *spins = spins.saturating_add(1);
}

/// A thread's id (a shuttle thread's under the model checker).
#[cfg(not(shuttle))]
pub(crate) type ThreadId = std::thread::ThreadId;
/// A thread's id (a shuttle thread's under the model checker).
#[cfg(shuttle)]
pub(crate) type ThreadId = shuttle::thread::ThreadId;

/// The id of the running thread (a shuttle thread under the model checker).
#[cfg(not(shuttle))]
pub(crate) fn thread_id() -> ThreadId {
    std::thread::current().id()
}

#[cfg(shuttle)]
pub(crate) use self::model::{thread_id, Condvar, Mutex, RwLock};
#[cfg(shuttle)]
pub(crate) use shuttle::sync::atomic;
#[cfg(shuttle)]
pub(crate) use shuttle::sync::{RwLockReadGuard, RwLockWriteGuard};

/// The running shuttle thread's number.
#[cfg(shuttle)]
pub(crate) fn thread_number() -> usize {
    usize::from(shuttle::thread::current().id())
}

/// A scheduling point for the model checker (a spin loop would never let the waited-for
/// thread run).
#[cfg(shuttle)]
pub(crate) fn back_off(_spins: &mut u32) {
    shuttle::thread::yield_now();
}

#[cfg(shuttle)]
mod model {
    use std::ops::{Deref, DerefMut};
    use std::sync::PoisonError;

    use shuttle::sync as s;

    pub(crate) fn thread_id() -> shuttle::thread::ThreadId {
        shuttle::thread::current().id()
    }

    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(s::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            RwLock(s::RwLock::new(value))
        }
        pub(crate) fn read(&self) -> s::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(PoisonError::into_inner)
        }
        pub(crate) fn write(&self) -> s::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(PoisonError::into_inner)
        }
        pub(crate) fn try_write(&self) -> Option<s::RwLockWriteGuard<'_, T>> {
            match self.0.try_write() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(s::Mutex<T>);

    /// A guard that a [`Condvar`] can wait on through `&mut` (as parking_lot's).
    pub(crate) struct MutexGuard<'a, T>(Option<s::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(s::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(PoisonError::into_inner)))
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard present")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard present")
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Condvar(s::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(s::Condvar::new())
        }
        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let g = guard.0.take().expect("guard present");
            guard.0 = Some(self.0.wait(g).unwrap_or_else(PoisonError::into_inner));
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}
