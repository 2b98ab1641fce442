//! A shard's buffer of hits that readers record under the shared lock.
//!
//! A `get` runs under the shard's *read* lock, so it cannot touch the policy. It records the
//! slab index of its hit here instead: one relaxed load and two relaxed stores, with no
//! read-modify-write. (An atomic increment of the length is a locked instruction, a full
//! fence on x86 that waits for the lookup's cache misses. On a 1M-entry Zipf(0.99) workload
//! a FIFO cache's hit took 154–159 ns with it, 118–130 ns with the plain stores, and 95–101
//! ns without recording at all.) The reader that fills the buffer drains it into the policy if
//! it can take the write lock without waiting, and every writer drains it before changing the
//! shard; so buffered indices are always valid when applied, and with one thread every hit is
//! applied in order before the next write (replays stay exact).
//!
//! A hit that the policy would not act on (a SIEVE entry already visited, a saturated
//! S3-FIFO counter, any FIFO hit, a referenced entry in W-TinyLFU's window or protected
//! segment: see `Policy::quiet_hits`) is only counted: in the reader's own slot of the shard lock when it
//! read through one (see `biased_lock`), else in a second word beside the length. It takes
//! no slot here and its drain costs nothing per hit. In a shard whose entries expire, every
//! `READ_BATCH` quiet hits still ask for a drain when the shard's timer wheel may have
//! something to expire (the clock has entered a later tick, about once a second), so a
//! read-only shard expires its entries.
//!
//! The buffer is lossy, as Caffeine's read buffers are: two readers racing for the same slot
//! both write it and one hit is lost, and under contention it may fill before a drain, after
//! which hits are not recorded. The policy then sees fewer hits, never wrong ones: every slot
//! below the length was written since the last drain (a reader stores a length only after the
//! slot below it, and the lock orders a drain against every reader), with the index of an
//! entry that was live under the read lock, so still live when the write lock drains it.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Hits buffered per shard before they are applied to the policy as one batch.
pub(crate) const READ_BATCH: usize = 64;

/// `repr(C)`: the two words readers write come first (see `Shard`).
#[repr(C)]
pub(crate) struct ReadBuffer {
    len: AtomicUsize,
    /// Hits counted but not recorded: the policy needs only their number (see
    /// `Policy::quiet_hits`). Lossy like the slots, and wrapping (a lost or wrapped count
    /// only skews W-TinyLFU's hill-climbing sample).
    quiet: AtomicUsize,
    slots: [AtomicU32; READ_BATCH],
}

impl ReadBuffer {
    pub(crate) fn new() -> Self {
        ReadBuffer {
            len: AtomicUsize::new(0),
            quiet: AtomicUsize::new(0),
            slots: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Records a hit on slab index `i` (the caller holds the shard's read lock). Returns true
    /// when the buffer is full and should be drained.
    ///
    /// Not a read-modify-write: a reader racing another for the same slot may overwrite its
    /// hit, or store a shorter length after a longer one; either loses hits, never records a
    /// wrong index (see the module docs).
    #[inline]
    pub(crate) fn record(&self, i: u32) -> bool {
        let pos = self.len.load(Ordering::Relaxed);
        if let Some(slot) = self.slots.get(pos) {
            slot.store(i, Ordering::Relaxed);
            self.len.store(pos + 1, Ordering::Relaxed);
        }
        pos + 1 >= READ_BATCH
    }

    /// Counts a hit that needs no policy work but its number (the caller holds the shard's
    /// read lock): see [`count_quiet`].
    #[inline]
    pub(crate) fn count_quiet(&self) -> bool {
        count_quiet(&self.quiet)
    }

    /// Adds `n` quiet hits counted elsewhere (in the shard lock's reader slots).
    pub(crate) fn add_quiet(&mut self, n: usize) {
        let q = self.quiet.get_mut();
        *q = q.wrapping_add(n);
    }

    /// Takes the number of hits counted by [`ReadBuffer::count_quiet`] since the last call.
    pub(crate) fn take_quiet(&mut self) -> usize {
        std::mem::take(self.quiet.get_mut())
    }

    /// Moves the recorded hits, oldest first, into `out`. It takes `&mut self` (the caller
    /// holds the shard's write lock), so no reader can be recording, and it uses plain loads
    /// and stores: every write takes this path, and an atomic `swap` would be a locked
    /// instruction.
    pub(crate) fn take_into(&mut self, out: &mut Vec<u32>) {
        let len = self.len.get_mut();
        let n = std::mem::take(len).min(READ_BATCH);
        out.extend(self.slots[..n].iter_mut().map(|s| *s.get_mut()));
    }

    /// Forgets the recorded hits (the shard is being cleared; the caller holds the write lock).
    pub(crate) fn clear(&mut self) {
        *self.len.get_mut() = 0;
        *self.quiet.get_mut() = 0;
    }
}

/// Counts a quiet hit in `word`: a relaxed load and store, as [`ReadBuffer::record`] (racing
/// writers may lose counts). Returns true every [`READ_BATCH`] counts, so that a read-mostly
/// shard whose hits are all quiet still gets its maintenance (expiring entries) as often as
/// if the hits were recorded.
#[inline]
pub(crate) fn count_quiet(word: &AtomicUsize) -> bool {
    let q = word.load(Ordering::Relaxed).wrapping_add(1);
    word.store(q, Ordering::Relaxed);
    q.is_multiple_of(READ_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_and_reports_full() {
        let mut b = ReadBuffer::new();
        for i in 0..READ_BATCH as u32 - 1 {
            assert!(!b.record(i));
        }
        assert!(b.record(99));
        assert!(
            b.record(100),
            "an overflowing record still asks for a drain"
        );
        let mut out = Vec::new();
        b.take_into(&mut out);
        assert_eq!(out.len(), READ_BATCH);
        assert_eq!(out[0], 0);
        assert_eq!(out[READ_BATCH - 1], 99);
        out.clear();
        b.take_into(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn quiet_hits_are_counted_apart_and_taken_once() {
        let mut b = ReadBuffer::new();
        let due = (0..1000).filter(|_| b.count_quiet()).count();
        assert_eq!(
            due,
            1000 / READ_BATCH,
            "a drain is due every READ_BATCH quiet hits"
        );
        assert!(!b.record(5), "quiet hits do not fill the buffer");
        assert_eq!(b.take_quiet(), 1000);
        assert_eq!(b.take_quiet(), 0);
        let mut out = Vec::new();
        b.take_into(&mut out);
        assert_eq!(out, [5]);
        assert!(!b.count_quiet());
        b.clear();
        assert_eq!(b.take_quiet(), 0);
    }

    #[test]
    fn racing_readers_lose_hits_but_record_no_wrong_index() {
        // Each thread records its own indices; whatever survives the races must be indices
        // that some thread recorded, and never more than the buffer holds.
        let mut b = ReadBuffer::new();
        let mut out = Vec::new();
        for round in 0..200u32 {
            std::thread::scope(|s| {
                for t in 0..4u32 {
                    let b = &b;
                    s.spawn(move || {
                        for j in 0..40 {
                            b.record(1_000_000 * (t + 1) + round * 100 + j);
                        }
                    });
                }
            });
            out.clear();
            b.take_into(&mut out);
            assert!(out.len() <= READ_BATCH);
            for &i in &out {
                let (t, rest) = (i / 1_000_000, i % 1_000_000);
                assert!(
                    (1..=4).contains(&t) && rest / 100 == round && rest % 100 < 40,
                    "{i}"
                );
            }
        }
    }
}
