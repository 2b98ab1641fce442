//! The shards' lock: a read-write lock whose readers, while no one writes, write no cache
//! line that other threads use (past 16 threads, some share their slots).
//!
//! This is BRAVO (Dice & Kogan, "BRAVO — Biased Locking for Reader-Writer Locks", USENIX
//! ATC 2019) over a plain read-write lock, with the table of visible readers kept per lock.
//! A reader of an ordinary read-write lock increments and decrements one shared word: two
//! locked read-modify-writes per `get`, and with several threads the word's cache line moves
//! between cores on every read. Here, while the lock is *biased* to readers, a reader claims
//! its thread's slot (one compare-and-swap on a line no other thread normally writes),
//! checks that the bias still holds, reads, and frees the slot with a plain store. A writer
//! takes the underlying lock, clears the bias and waits until every slot is free; readers
//! that then find no bias take the underlying lock as before, and after [`REBIAS`] such reads
//! one of them, holding the read lock, sets the bias again. A write-heavy shard so stays on
//! the plain lock, and a read-mostly one on the fast path. As in BRAVO, a writer that had to
//! wait for biased readers (more threads than cores, say, and a reader descheduled in its
//! slot) keeps the bias off for [`INHIBIT`] times as long as it waited, which keeps the time
//! writers spend waiting for slots to about a tenth of the total on average (one write still
//! waits as long as a reader stays in its slot).
//!
//! Why it is sound: a reader's claim and its check of the bias, and a writer's clearing of
//! the bias and its scan of the slots, are sequentially consistent. So either the reader
//! sees the bias cleared (and releases its slot without reading), or the writer sees the
//! slot claimed and waits for the reader's releasing store, after which the reader's loads
//! happen before the writer's stores. A reader that sees the bias set sees every write
//! before it: the bias is set only under the read lock, after the last writer unlocked, or
//! again by a `try_write` that found a slot held and gives up without changing anything.
//! Threads share a slot when there are more than [`SLOTS`] of them (their numbers modulo
//! [`SLOTS`]); one that finds its slot taken takes the read lock instead.
//!
//! Each slot also keeps a *tally* that only its holder writes (a `get` counts its quiet hits
//! there, see `Policy::quiet_hits`, instead of in a word of the shard that every thread
//! writes). A writer that clears the bias adds the tallies to the data ([`Tallied`]); with
//! every slot free and the bias cleared, no one else can be writing them.
//!
//! How it is checked: `tests/shuttle.rs` runs readers against a writer under the shuttle
//! model checker, which counts the readers inside and fails if a writer holds the data
//! while one is there. The unit tests below also run under Miri (`.ci/run`), which checks
//! the aliasing rules. Miri is why the guards keep the data's address rather than a
//! reference (see [`BiasedRwLock::data_ptr`]).

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crate::sync::{
    back_off, elapsed_nanos, thread_number, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

/// Reader slots per lock (a power of two). Each is a cache line pair of its own, so a lock
/// takes `SLOTS * 128` bytes for them (2 KiB, on the heap).
pub(crate) const SLOTS: usize = 16;

/// Reads on the underlying lock, after a writer cleared the bias, before a reader sets it
/// again. Clearing costs a writer a scan of the [`SLOTS`] slots; a biased read saves a
/// locked instruction and, with several threads, a shared cache line.
pub(crate) const REBIAS: u32 = 32;

/// After a writer waited `t` for biased readers, the bias stays off for `INHIBIT * t`
/// (BRAVO's multiplier).
pub(crate) const INHIBIT: u64 = 9;

const FREE: usize = 0;
const HELD: usize = 1;

/// A read-write lock biased to readers (see the module docs).
///
/// `repr(C)`: the words every read looks at (the bias and the underlying lock) come first,
/// then the data (whose own first words a hit writes; see `Shard`).
#[repr(C)]
pub(crate) struct BiasedRwLock<T> {
    bias: AtomicBool,
    /// Reads on the underlying lock since the last write (lossy: relaxed load and store).
    slow_reads: AtomicU32,
    /// No re-bias before this time (`elapsed_nanos`; 0: none), set by a writer that waited.
    inhibit_until: AtomicU64,
    lock: RwLock<()>,
    data: UnsafeCell<T>,
    /// On the heap: inline, their 2 KiB spread the shards' hot fields apart, which cost
    /// writes 15–20 % (insert benchmark, one thread).
    slots: Box<[CachePadded<Slot>; SLOTS]>,
    /// Under the model checker: readers between a successful bias check and the release of
    /// their slot, which a writer holding the data asserts is zero.
    #[cfg(shuttle)]
    inside: AtomicUsize,
    /// Tests: how many times a writer began to wait for a slot.
    #[cfg(all(test, not(shuttle)))]
    waits: AtomicUsize,
}

/// A reader slot: whether a reader holds it, and the holder's tally.
struct Slot {
    state: AtomicUsize,
    /// A std atomic even under the model checker: only the slot's holder and a writer that
    /// found it free touch it, ordered by `state`.
    tally: std::sync::atomic::AtomicUsize,
}

/// Data that takes the tallies biased readers kept in their slots.
pub(crate) trait Tallied {
    /// Adds `n` counts that readers tallied (called under the write lock).
    fn add_tally(&mut self, n: usize);
}

// SAFETY: the lock hands out `&T` to several threads at once only as a read-write lock does
// (shared references while no writer holds it, see the module docs), and `&mut T` to one
// writer at a time; so it is `Sync` exactly when `RwLock<T>` is: `T: Send + Sync`.
unsafe impl<T: Send + Sync> Sync for BiasedRwLock<T> {}

impl<T: Tallied> BiasedRwLock<T> {
    /// A lock around `data`, biased to readers from the start.
    pub(crate) fn new(data: T) -> Self {
        BiasedRwLock {
            bias: AtomicBool::new(true),
            slow_reads: AtomicU32::new(0),
            inhibit_until: AtomicU64::new(0),
            lock: RwLock::new(()),
            data: UnsafeCell::new(data),
            slots: Box::new(std::array::from_fn(|_| {
                CachePadded::new(Slot {
                    state: AtomicUsize::new(FREE),
                    tally: std::sync::atomic::AtomicUsize::new(0),
                })
            })),
            #[cfg(shuttle)]
            inside: AtomicUsize::new(0),
            #[cfg(all(test, not(shuttle)))]
            waits: AtomicUsize::new(0),
        }
    }

    /// Shared access: through the thread's slot while the lock is biased, otherwise the read
    /// lock.
    #[inline]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        if self.bias.load(Ordering::Relaxed) {
            let slot = &self.slots[thread_number() % SLOTS];
            if slot
                .state
                .compare_exchange(FREE, HELD, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                if self.bias.load(Ordering::SeqCst) {
                    // Shared access holds: the slot is claimed and the bias was seen set
                    // after the claim (both sequentially consistent), so a writer either has
                    // not cleared the bias yet, and will wait for this slot before it takes
                    // `&mut T`, or has not got the lock yet; no `&mut T` exists until the
                    // guard frees the slot (module docs). The guard's `deref` relies on it.
                    // Under the model checker, count this reader in, then let others run
                    // while it is inside.
                    #[cfg(shuttle)]
                    {
                        self.inside.fetch_add(1, Ordering::SeqCst);
                        shuttle::thread::yield_now();
                    }
                    return ReadGuard {
                        data: self.data_ptr(),
                        hold: Hold::Slot(slot),
                        _data: PhantomData,
                        #[cfg(shuttle)]
                        inside: &self.inside,
                    };
                }
                slot.state.store(FREE, Ordering::Release);
            }
        }
        self.read_locked()
    }

    /// Shared access on the plain read lock, never through a slot: for long reads (a whole
    /// shard copied or checked), during which a writer then parks on the lock instead of
    /// spinning on a slot.
    #[cold]
    pub(crate) fn read_locked(&self) -> ReadGuard<'_, T> {
        let guard = self.lock.read();
        if !self.bias.load(Ordering::Relaxed) {
            let n = self.slow_reads.load(Ordering::Relaxed) + 1;
            if n >= REBIAS {
                self.slow_reads.store(0, Ordering::Relaxed);
                let until = self.inhibit_until.load(Ordering::Relaxed);
                if until == 0 || elapsed_nanos() >= until {
                    // Under the read lock: no writer holds the lock, and the next one to
                    // take it sees the bias and clears it again.
                    self.bias.store(true, Ordering::SeqCst);
                }
            } else {
                self.slow_reads.store(n, Ordering::Relaxed);
            }
        }
        // The read lock is held, so no writer holds `&mut T` (writers take the write lock)
        // until the guard is dropped.
        ReadGuard {
            data: self.data_ptr(),
            hold: Hold::Lock(guard),
            _data: PhantomData,
            #[cfg(shuttle)]
            inside: &self.inside,
        }
    }

    /// Exclusive access: the write lock, after every biased reader left.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        let guard = self.lock.write();
        // SAFETY: the write lock is held and no biased reader is inside (`revoke` waits for
        // them), so this is the only reference to the data until the guard is dropped.
        let Some(data) = (unsafe { self.revoke(Readers::Wait) }) else {
            unreachable!("a revocation that waits for readers always ends with the data")
        };
        WriteGuard {
            data,
            _guard: guard,
            _data: PhantomData,
            #[cfg(shuttle)]
            inside: &self.inside,
        }
    }

    /// [`BiasedRwLock::write`] if no one holds the lock now, neither on the plain lock nor
    /// in a slot; it never waits. (A reader may call it while it holds a slot itself: a
    /// `get` that drains the read buffer, inside a value's `Clone` run by an outer `get`.)
    pub(crate) fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        let guard = self.lock.try_write()?;
        // SAFETY: as in `write`; `revoke` gives up (and keeps the bias) rather than wait.
        let data = unsafe { self.revoke(Readers::GiveUp) }?;
        Some(WriteGuard {
            data,
            _guard: guard,
            _data: PhantomData,
            #[cfg(shuttle)]
            inside: &self.inside,
        })
    }

    /// Clears the bias, waits for the readers that took the fast path (or, with
    /// [`Readers::GiveUp`], sets the bias again and returns `None` if there are any), hands
    /// their tallies to the data and returns it.
    ///
    /// # Safety
    ///
    /// The caller holds the write lock (and keeps it while it uses the result, the data's
    /// address, which it may then read and write through).
    unsafe fn revoke(&self, readers: Readers) -> Option<NonNull<T>> {
        // Only a holder of the read lock sets the bias (or a writer that gives up, under
        // the write lock), so it cannot change under the write lock.
        let mut tally = 0usize;
        if self.bias.load(Ordering::Relaxed) {
            self.bias.store(false, Ordering::SeqCst);
            // When the first wait began: the clock is read only by a writer that waits.
            let mut waited_since = None;
            for slot in self.slots.iter() {
                let mut spins = 0;
                while slot.state.load(Ordering::SeqCst) != FREE {
                    if let Readers::GiveUp = readers {
                        // Nothing was changed (no tally taken yet), and the write lock is
                        // still held: the biased readers may go on as before.
                        self.bias.store(true, Ordering::SeqCst);
                        return None;
                    }
                    waited_since.get_or_insert_with(|| {
                        #[cfg(all(test, not(shuttle)))]
                        self.waits.fetch_add(1, Ordering::SeqCst);
                        elapsed_nanos()
                    });
                    back_off(&mut spins);
                }
            }
            // Every slot was seen free after the bias was cleared, and none can be claimed
            // with the bias seen set until a reader of the lock sets it again, which the
            // caller's write lock excludes: the tallies are the caller's.
            for slot in self.slots.iter() {
                let t = slot.tally.load(Ordering::Relaxed);
                if t != 0 {
                    tally = tally.wrapping_add(t);
                    slot.tally.store(0, Ordering::Relaxed);
                }
            }
            let until = waited_since.map_or(0, |since| {
                let now = elapsed_nanos();
                now.saturating_add(INHIBIT.saturating_mul(now - since))
            });
            self.inhibit_until.store(until, Ordering::Relaxed);
        }
        self.slow_reads.store(0, Ordering::Relaxed);
        #[cfg(shuttle)]
        assert_eq!(
            self.inside.load(Ordering::SeqCst),
            0,
            "a biased reader is inside"
        );
        let mut data = self.data_ptr();
        if tally > 0 {
            // SAFETY: the caller holds the write lock, and every biased reader has left;
            // the reference ends here.
            unsafe { data.as_mut() }.add_tally(tally);
        }
        Some(data)
    }

    /// The data's address. Guards keep it rather than a reference: a reference held in a
    /// guard would still be live (and, as part of a function argument, protected) while
    /// the guard's `drop` releases the lock, and so overlap the next holder's reference,
    /// which the aliasing rules forbid (Miri's Stacked Borrows reported it).
    pub(crate) fn data_ptr(&self) -> NonNull<T> {
        NonNull::from(&self.data).cast()
    }
}

/// What a revoking writer does about readers still in their slots.
enum Readers {
    /// Waits until they leave.
    Wait,
    /// Sets the bias again and gives up the write.
    GiveUp,
}

/// What a reader holds: its slot, or the read lock.
enum Hold<'a> {
    Slot(&'a Slot),
    Lock(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
}

/// Shared access to a [`BiasedRwLock`]'s data.
pub(crate) struct ReadGuard<'a, T> {
    /// Shared access to it while the guard lives (see [`BiasedRwLock::data_ptr`]).
    data: NonNull<T>,
    hold: Hold<'a>,
    _data: PhantomData<&'a T>,
    #[cfg(shuttle)]
    inside: &'a AtomicUsize,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds a slot claimed before the bias was seen set, or the read
        // lock (see `read`): no `&mut T` exists while it lives, and the reference cannot
        // outlive it.
        unsafe { self.data.as_ref() }
    }
}

impl<T> ReadGuard<'_, T> {
    /// The tally of the slot this reader holds, if it took the fast path: only the holder
    /// writes it (relaxed loads and stores suffice), and a writer that clears the bias takes
    /// it ([`Tallied`]).
    #[inline]
    pub(crate) fn tally(&self) -> Option<&std::sync::atomic::AtomicUsize> {
        match self.hold {
            Hold::Slot(slot) => Some(&slot.tally),
            Hold::Lock(_) => None,
        }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Hold::Slot(slot) = self.hold {
            #[cfg(shuttle)]
            self.inside.fetch_sub(1, Ordering::SeqCst);
            // Not a read-modify-write: only this reader writes the slot while it holds it.
            slot.state.store(FREE, Ordering::Release);
        }
    }
}

/// Exclusive access to a [`BiasedRwLock`]'s data.
pub(crate) struct WriteGuard<'a, T> {
    /// Exclusive access to it while the guard lives (see [`BiasedRwLock::data_ptr`]).
    data: NonNull<T>,
    _guard: RwLockWriteGuard<'a, ()>,
    _data: PhantomData<&'a mut T>,
    #[cfg(shuttle)]
    inside: &'a AtomicUsize,
}

/// Under the model checker: no biased reader got in while the writer held the data.
#[cfg(shuttle)]
impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        assert_eq!(
            self.inside.load(Ordering::SeqCst),
            0,
            "a biased reader got in"
        );
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the write lock and no biased reader is inside, so no
        // other reference to the data exists while it lives.
        unsafe { self.data.as_ref() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the guard's only reference.
        unsafe { self.data.as_mut() }
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;
    use crate::test_support::{within, Deadline};
    use std::sync::Arc;

    /// The bound of a test body whose threads could block (see [`within`]), in seconds.
    const BODY_SECS: u64 = 60;
    /// How long a thread waits for another one to finish, in seconds: less than
    /// [`BODY_SECS`], so that a thread that waits too long fails first, saying for what.
    /// Miri's clock is virtual (a fixed time per basic block it interprets, whatever the
    /// load): there the 100 writes of `readers_on_several_threads_never_see_a_write_half_done`
    /// took 67 virtual seconds, and [`within`] sets no limit.
    const WAIT_SECS: u64 = if cfg!(miri) { 600 } else { 45 };

    impl Tallied for u64 {
        fn add_tally(&mut self, n: usize) {
            *self += n as u64;
        }
    }
    impl Tallied for () {
        fn add_tally(&mut self, _: usize) {}
    }
    impl Tallied for Vec<u64> {
        fn add_tally(&mut self, _: usize) {}
    }

    /// Whether a writer began to wait for a held slot of `lock` within 10 s (a bounded
    /// spin; yields so that a scheduler that runs threads rarely, Miri's, gets to it).
    fn writer_waits<T>(lock: &BiasedRwLock<T>) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while lock.waits.load(Ordering::SeqCst) == 0 {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    #[test]
    fn tallies_kept_in_slots_reach_the_data_when_a_writer_clears_the_bias() {
        let lock = BiasedRwLock::new(0u64);
        for _ in 0..3 {
            let r = lock.read();
            let t = r.tally().expect("biased read");
            t.store(t.load(Ordering::Relaxed) + 2, Ordering::Relaxed);
        }
        assert_eq!(*lock.write(), 6);
        assert_eq!(*lock.write(), 6, "taken once");
    }

    #[test]
    fn a_write_clears_the_bias_and_reads_on_the_lock_set_it_again() {
        let lock = BiasedRwLock::new(0u64);
        assert!(lock.bias.load(Ordering::Relaxed));
        {
            let r = lock.read();
            assert!(matches!(r.hold, Hold::Slot(_)), "biased read takes a slot");
        }
        *lock.write() += 1;
        assert!(!lock.bias.load(Ordering::Relaxed));
        for _ in 0..REBIAS - 1 {
            let r = lock.read();
            assert!(matches!(r.hold, Hold::Lock(_)));
            assert_eq!(*r, 1);
        }
        assert!(!lock.bias.load(Ordering::Relaxed));
        drop(lock.read());
        assert!(
            lock.bias.load(Ordering::Relaxed),
            "re-biased after REBIAS reads"
        );
        let r = lock.read();
        assert!(matches!(r.hold, Hold::Slot(_)));
        assert_eq!(*r, 1);
    }

    #[test]
    fn a_writer_that_waited_for_a_reader_keeps_the_bias_off_for_a_while() {
        within(BODY_SECS, "a writer waiting for a biased reader", || {
            let lock = Arc::new(BiasedRwLock::new(0u64));
            let r = lock.read();
            assert!(matches!(r.hold, Hold::Slot(_)));
            let writer = {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || *lock.write() += 1)
            };
            // The writer cleared the bias and now waits for this reader's slot.
            assert!(
                writer_waits(&lock),
                "the writer never waited for the reader"
            );
            drop(r);
            writer.join().expect("writer");
            let until = lock.inhibit_until.load(Ordering::Relaxed);
            assert!(until > 0, "a writer that waited sets an inhibition");
            // While inhibited, reads on the lock do not set the bias again...
            lock.inhibit_until.store(u64::MAX, Ordering::Relaxed);
            for _ in 0..2 * REBIAS {
                assert!(matches!(lock.read().hold, Hold::Lock(_)));
            }
            assert!(!lock.bias.load(Ordering::Relaxed));
            // ...and once it is over, they do.
            lock.inhibit_until.store(1, Ordering::Relaxed);
            for _ in 0..REBIAS {
                drop(lock.read());
            }
            assert!(lock.bias.load(Ordering::Relaxed));
            // A writer that did not wait clears the inhibition.
            *lock.write() += 1;
            assert_eq!(lock.inhibit_until.load(Ordering::Relaxed), 0);
            assert_eq!(*lock.read(), 2);
        });
    }

    #[test]
    fn try_write_never_waits_for_a_biased_reader_not_even_its_own_thread() {
        let lock = BiasedRwLock::new(0u64);
        {
            let r = lock.read();
            let t = r.tally().expect("biased read");
            t.store(5, Ordering::Relaxed);
            // The same thread, still in its slot: a blocking write would wait forever.
            assert!(lock.try_write().is_none());
            assert!(lock.bias.load(Ordering::Relaxed), "the bias is kept");
            let again = lock.read();
            assert!(
                matches!(again.hold, Hold::Lock(_)),
                "own slot taken: plain lock"
            );
        }
        let w = lock.try_write().expect("no reader left");
        assert_eq!(*w, 5, "the tally was kept, then taken once");
    }

    #[test]
    fn a_reader_whose_slot_is_taken_uses_the_lock() {
        let lock = BiasedRwLock::new(());
        let a = lock.read();
        let b = lock.read();
        assert!(matches!(a.hold, Hold::Slot(_)));
        assert!(matches!(b.hold, Hold::Lock(_)));
        assert!(
            lock.try_write().is_none(),
            "a reader on the lock blocks writers"
        );
        drop(b);
        drop(a);
        assert!(lock.try_write().is_some());
        assert!(lock
            .slots
            .iter()
            .all(|s| s.state.load(Ordering::Relaxed) == FREE));
    }

    #[test]
    fn a_writer_waits_for_biased_readers() {
        within(BODY_SECS, "a writer waiting for a biased reader", || {
            let lock = Arc::new(BiasedRwLock::new(vec![0u64; 4]));
            let r = lock.read();
            assert!(matches!(r.hold, Hold::Slot(_)));
            let writer = {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    let mut w = lock.write();
                    w.iter_mut().for_each(|x| *x += 1);
                })
            };
            // The writer has taken the write lock, cleared the bias and found this reader's slot
            // held: from here on it must not touch the data until the reader leaves.
            assert!(
                writer_waits(&lock),
                "the writer never waited for the reader"
            );
            // Give a writer that would not wait every chance to write (or finish) now.
            for _ in 0..1_000 {
                std::thread::yield_now();
            }
            assert!(!writer.is_finished(), "the writer finished under a reader");
            assert_eq!(*r, [0; 4], "the writer wrote under a reader");
            drop(r);
            writer.join().expect("writer");
            assert_eq!(*lock.read(), [1; 4]);
        });
    }

    #[test]
    fn readers_on_several_threads_never_see_a_write_half_done() {
        within(BODY_SECS, "2 readers and a writer", || {
            use std::sync::atomic::AtomicBool as StdBool;
            // A writer sets all 64 words to the next number, one word at a time; a reader that
            // saw them differ would have read during a write.
            let lock = Arc::new(BiasedRwLock::new(vec![0u64; 64]));
            let done = Arc::new(StdBool::new(false));
            let deadline = Deadline::after(WAIT_SECS);
            let readers: Vec<_> = (0..2)
                .map(|n| {
                    let (lock, done) = (Arc::clone(&lock), Arc::clone(&done));
                    std::thread::spawn(move || {
                        let mut biased = 0u64;
                        while !done.load(Ordering::Relaxed) {
                            deadline.check(format_args!("the writer's writes (reader {n})"));
                            let r = lock.read();
                            biased += u64::from(r.tally().is_some());
                            let first = r[0];
                            assert!(r.iter().all(|&x| x == first), "torn read: {:?}", *r);
                        }
                        biased
                    })
                })
                .collect();
            // Fewer under Miri, which interprets every step.
            let writes = if cfg!(miri) { 100 } else { 2_000u64 };
            for i in 1..=writes {
                let mut w = lock.write();
                for x in w.iter_mut() {
                    *x = std::hint::black_box(i);
                }
                drop(w);
                // A writer that waited for a reader keeps the bias off for a while, which under
                // load could last the whole test: let the readers re-bias the lock right away.
                lock.inhibit_until.store(0, Ordering::Relaxed);
                // And give them time to (32 reads on the lock), so that the next write races
                // biased readers; a scheduler that runs threads rarely (Miri's) needs yields.
                for _ in 0..1_000 {
                    if lock.bias.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::yield_now();
                }
            }
            done.store(true, Ordering::Relaxed);
            let biased: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
            // Natively the readers take the biased path between writes. Miri's scheduler may
            // run the writer whenever a reader re-biases (seed 1 did with an earlier version of
            // this test, seed 3 with this one at 300 writes): there the test still checks the
            // aliasing of whatever interleavings ran, and the tests above take the biased path
            // deterministically.
            assert!(biased > 0 || cfg!(miri), "some reads took the biased path");
            assert_eq!(*lock.read(), vec![writes; 64]);
        });
    }
}
