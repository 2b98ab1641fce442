//! The local race guard: a load (or an L2 read) that overlaps an invalidation of its key
//! must not put its older result into L1 after the invalidation was applied (the race of
//! FusionCache #535 and #628).
//!
//! A fixed array of generation counters indexed by a hash of the key, and one global
//! generation for clears. Before a load a caller takes a [`Ticket`] (the key's stripe
//! generation and the global one); its result goes into L1 through [`RaceGuard::commit`],
//! which inserts only if neither generation moved, under the stripe's lock. Applying an
//! invalidation bumps the stripe (or the global generation) under that lock *before*
//! removing the key from L1, so either the insert happened first (and the removal that
//! follows takes it out) or the commit sees the bump and does not insert. Two keys that
//! share a stripe only cost each other an L1 insert, never a stale read.

use std::hash::{BuildHasher, Hash};

use parking_lot::{Mutex, RwLock};

/// Stripes per cache (a power of two): 16 KiB of counters and locks.
const STRIPES: usize = 1024;

/// What a caller read before its load: see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    stripe: usize,
    key_gen: u64,
    global_gen: u64,
}

pub(crate) struct RaceGuard {
    stripes: Box<[Mutex<u64>]>,
    global: RwLock<u64>,
    hasher: foldhash::fast::FixedState,
}

impl RaceGuard {
    pub(crate) fn new() -> Self {
        RaceGuard {
            stripes: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
            global: RwLock::new(0),
            hasher: foldhash::fast::FixedState::with_seed(0x6c63_6775_6172_6400),
        }
    }

    fn stripe<K: Hash + ?Sized>(&self, key: &K) -> usize {
        (self.hasher.hash_one(key) as usize) & (STRIPES - 1)
    }

    /// The generations a load of `key` starts from.
    pub(crate) fn ticket<K: Hash + ?Sized>(&self, key: &K) -> Ticket {
        let global_gen = *self.global.read();
        let stripe = self.stripe(key);
        Ticket {
            stripe,
            key_gen: *self.stripes[stripe].lock(),
            global_gen,
        }
    }

    /// Runs `insert` if no invalidation of the ticket's key (or a clear) was applied since
    /// the ticket was taken; whether it ran. `insert` runs under the stripe's lock: it must
    /// not use the guard.
    pub(crate) fn commit(&self, ticket: Ticket, insert: impl FnOnce()) -> bool {
        let global = self.global.read();
        let stripe = self.stripes[ticket.stripe].lock();
        if *global != ticket.global_gen || *stripe != ticket.key_gen {
            return false;
        }
        insert();
        true
    }

    /// Records an invalidation of `key`: loads that started before it will not commit.
    /// Call it *before* removing the key from L1.
    pub(crate) fn bump<K: Hash + ?Sized>(&self, key: &K) {
        *self.stripes[self.stripe(key)].lock() += 1;
    }

    /// Records a clear: no load that started before it will commit. Call it *before*
    /// clearing L1.
    pub(crate) fn bump_all(&self) {
        *self.global.write() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_after_a_bump_of_its_key_or_a_clear_does_not_insert() {
        let g = RaceGuard::new();
        let t = g.ticket("a");
        assert!(g.commit(t, || ()), "nothing happened in between");
        let t = g.ticket("a");
        g.bump("a");
        let mut ran = false;
        assert!(!g.commit(t, || ran = true));
        assert!(!ran);
        let t = g.ticket("a");
        g.bump_all();
        assert!(!g.commit(t, || ()));
        // Another stripe's bump does not get in the way (find a key on another stripe).
        let t = g.ticket("a");
        let other = (0..10_000u32)
            .find(|i| g.stripe(i) != g.stripe("a"))
            .expect("1024 stripes");
        g.bump(&other);
        assert!(g.commit(t, || ()));
    }
}
