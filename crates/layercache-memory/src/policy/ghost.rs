//! A ghost: a compact memory of recently evicted keys, by their 32-bit hashes.
//!
//! Direct-mapped fingerprint table: a key hash goes to one slot chosen by the high bits of its
//! mixed value and is overwritten by a later hash mapped to the same slot, so the ghost
//! remembers roughly the last `slots` keys with an age-biased, random replacement instead of an
//! exact FIFO. A slot keeps a 16-bit fingerprint (the hash's low 16 bits, with the lowest bit
//! set to mark the slot used): together with the slot's own position that tells keys apart
//! well enough that an absent key is taken for a remembered one with probability at most
//! 2^-15. It costs 2 bytes per slot and O(1) per operation, with no allocation before the first
//! use (the table is allocated on the first eviction, so caches that never evict never pay for
//! it).

pub(crate) struct Ghost {
    table: Vec<u16>,
    slots: usize,
}

/// Maps `hash` to `0..slots` by multiply-shift (Lemire, "A fast alternative to the modulo
/// reduction", 2016), so the table can have exactly the asked size.
#[inline]
fn slot_of(hash: u32, slots: usize) -> usize {
    ((u64::from(hash.wrapping_mul(0x9E37_79B1)) * slots as u64) >> 32) as usize
}

/// What a slot keeps of `hash`: its low 16 bits (the slot is chosen by the mixed high bits),
/// never 0, which marks an empty slot.
#[inline]
fn fingerprint(hash: u32) -> u16 {
    hash as u16 | 1
}

impl Ghost {
    /// A ghost of `slots` keys (0 disables it).
    pub(crate) fn new(slots: u64) -> Self {
        let slots = slots.min(1 << 30) as usize;
        Ghost {
            table: Vec::new(),
            slots,
        }
    }

    /// The number of remembered keys (O(slots); for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.iter().filter(|&&s| s != 0).count()
    }

    /// Remembers `hash`.
    pub(crate) fn insert(&mut self, hash: u32) {
        if self.slots == 0 {
            return;
        }
        if self.table.is_empty() {
            self.table = vec![0; self.slots];
        }
        self.table[slot_of(hash, self.slots)] = fingerprint(hash);
    }

    /// Tells whether `hash` is remembered.
    pub(crate) fn contains(&self, hash: u32) -> bool {
        !self.table.is_empty() && self.table[slot_of(hash, self.slots)] == fingerprint(hash)
    }

    pub(crate) fn clear(&mut self) {
        self.table = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets() {
        let mut g = Ghost::new(64);
        assert!(!g.contains(5));
        g.insert(5);
        assert!(g.contains(5));
        assert_eq!(g.len(), 1);
        g.insert(5);
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn absent_keys_are_rarely_taken_for_remembered_ones() {
        let mut g = Ghost::new(4096);
        for h in 0..4096u32 {
            g.insert(h.wrapping_mul(2_654_435_761));
        }
        let false_hits = (1_000_000..1_200_000u32)
            .filter(|h| g.contains(h.wrapping_mul(2_654_435_761)))
            .count();
        // 200,000 lookups at most 2^-15 each (less: not every slot is used): expect under 7.
        assert!(false_hits < 40, "{false_hits} false hits");
    }

    #[test]
    fn disabled_ghost_remembers_nothing() {
        let mut g = Ghost::new(0);
        g.insert(5);
        assert!(!g.contains(5));
    }

    #[test]
    fn holds_about_its_size() {
        let mut g = Ghost::new(1024);
        for h in 0..100_000u32 {
            g.insert(h.wrapping_mul(2_654_435_761));
        }
        assert!(g.len() <= 1024);
        assert!(g.len() > 900, "len {}", g.len());
    }
}
