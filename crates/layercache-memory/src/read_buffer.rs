//! A shard's buffer of hits that readers record under the shared lock.
//!
//! A `get` runs under the shard's *read* lock, so it cannot touch the policy. It records the
//! slab index of its hit here instead (one atomic increment and one store). The reader that
//! fills the buffer drains it into the policy if it can take the write lock without waiting,
//! and every writer drains it before changing the shard; so buffered indices are always valid
//! when applied, and with one thread every hit is applied in order before the next write
//! (replays stay exact). Under contention the buffer may overflow before a drain; the
//! overflowing hits are not recorded (the buffer is lossy, as Caffeine's read buffers are):
//! the policy then sees fewer hits, never wrong ones.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Hits buffered per shard before they are applied to the policy as one batch.
pub(crate) const READ_BATCH: usize = 64;

pub(crate) struct ReadBuffer {
    len: AtomicUsize,
    slots: [AtomicU32; READ_BATCH],
}

impl ReadBuffer {
    pub(crate) fn new() -> Self {
        ReadBuffer {
            len: AtomicUsize::new(0),
            slots: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Records a hit on slab index `i` (the caller holds the shard's read lock). Returns true
    /// when the buffer is full and should be drained.
    #[inline]
    pub(crate) fn record(&self, i: u32) -> bool {
        let pos = self.len.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.slots.get(pos) {
            slot.store(i, Ordering::Relaxed);
        }
        pos + 1 >= READ_BATCH
    }

    /// Moves the recorded hits, oldest first, into `out`. The caller holds the shard's write
    /// lock, so every reader that reserved a slot has stored it (the lock orders those stores
    /// before this load).
    pub(crate) fn take_into(&self, out: &mut Vec<u32>) {
        let n = self.len.swap(0, Ordering::Relaxed).min(READ_BATCH);
        out.extend(self.slots[..n].iter().map(|s| s.load(Ordering::Relaxed)));
    }

    /// Forgets the recorded hits (the shard is being cleared; the caller holds the write lock).
    pub(crate) fn clear(&self) {
        self.len.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_and_reports_full() {
        let b = ReadBuffer::new();
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
}
