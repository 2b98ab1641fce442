//! A shard's hash index: from an entry's 32-bit hash to its slab index, one cache line per
//! lookup.
//!
//! The table is an array of 64-byte groups. A group holds 12 one-byte tags, an overflow count
//! and the 12 four-byte slab indices that the tags belong to, so the tag that matches and the
//! index it guards are in the same cache line. A `get` on a large cache therefore misses the
//! cache twice (the group, then the entry) instead of three times as with
//! `hashbrown::HashTable<u32>`, whose control bytes and slots live in two different regions of
//! its allocation (group, slot, entry). Measured on `hit_path` in BENCHMARKS.md §2.
//!
//! A key's *home* group is picked by the high bits of its mixed hash (multiply-shift, so the
//! table can have any number of groups, sized exactly for a bounded shard), and its tag is
//! another byte of that value (0 marks an empty slot). An insert takes the first empty slot
//! from the home group on (linear probing over groups); every full group it passes counts one
//! more overflow, and a lookup goes on past a group only while that count is not zero. A
//! group also has one bit per slot that marks a key stored beyond its home group
//! (*displaced*). The table is kept at most 3/4 full.
//!
//! A removal clears the slot, takes back the overflow counts its key added, and then, while
//! the group of the hole still has overflow (so some key further on passed it), moves such a
//! displaced key back into the hole and goes on from the slot that key left: backward-shift
//! deletion (Knuth, TAOCP vol. 3, §6.4, Algorithm R) over groups. The displaced bit means only
//! displaced keys are looked at, and their hashes read, on the way. So a group with overflow is
//! always full, and the table stays as if its keys had just been inserted: without the shift,
//! a cache that evicts on every insert piles up displaced keys, and a lookup of an absent key
//! walked 14.5 groups on average (and up to about 100 in a model of random evictions) instead
//! of about 1.3; BENCHMARKS.md §2 has the measurements.
//!
//! Tags are matched 8 at a time with word operations (SWAR), so the code is portable and has
//! no `unsafe`.
//!
//! An overflow count is 16 bits. One that reaches `u16::MAX` (more than 65,534 keys displaced
//! past one group, which takes a hash function that sends that many keys to one group) stays
//! there: lookups then always go on past that group, which is slower but never wrong.

/// Slots per group.
const SLOTS: usize = 12;
/// Groups are filled to at most `MAX_LOAD_NUM / MAX_LOAD_DEN` of their slots.
const MAX_LOAD_NUM: usize = 3;
const MAX_LOAD_DEN: usize = 4;
const LO7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const ONES: u64 = 0x0101_0101_0101_0101;
/// An overflow count that has saturated: it is never taken back (see the module docs).
const STICKY: u16 = u16::MAX;

/// One cache line: 12 tags, the overflow count, the displaced bits, 12 slab indices.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Group {
    /// Per slot: 0 when empty, else the tag of the key whose index is in `slots`.
    tags: [u8; SLOTS],
    /// How many keys whose probe started at or before this group passed it because it was
    /// full (so lie beyond it); [`STICKY`] once saturated.
    overflow: u16,
    /// Bit `s` is set when slot `s` holds a key whose home is another group.
    displaced: u16,
    slots: [u32; SLOTS],
}

/// A mask with the high bit set in each byte of `x` that is zero (exact: no false positives).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LO7).wrapping_add(LO7)) | x | LO7)
}

impl Group {
    /// Slots whose tag is `tag`, as a bit mask with one high bit per matching byte
    /// (bytes 0..8 in the low word, 8..12 in the high one).
    #[inline]
    fn matches(&self, tag: u8) -> u128 {
        let pattern = ONES.wrapping_mul(u64::from(tag));
        let mut lo = [0u8; 8];
        lo.copy_from_slice(&self.tags[..8]);
        let mut hi = [0u8; 4];
        hi.copy_from_slice(&self.tags[8..]);
        let lo = zero_bytes(u64::from_le_bytes(lo) ^ pattern);
        let hi = zero_bytes(u64::from(u32::from_le_bytes(hi)) ^ pattern) & 0x8080_8080;
        u128::from(lo) | (u128::from(hi) << 64)
    }

    /// Stores `tag` and `index` in slot `s`, marked displaced unless this is their home.
    #[inline]
    fn set(&mut self, s: usize, tag: u8, index: u32, home: bool) {
        self.tags[s] = tag;
        self.slots[s] = index;
        if home {
            self.displaced &= !(1 << s);
        } else {
            self.displaced |= 1 << s;
        }
    }

    /// Empties slot `s`.
    #[inline]
    fn clear(&mut self, s: usize) {
        self.tags[s] = 0;
        self.displaced &= !(1 << s);
    }
}

/// The slot that the lowest bit of a [`Group::matches`] mask stands for.
#[inline]
fn first_slot(mask: u128) -> usize {
    mask.trailing_zeros() as usize / 8
}

/// The hash index of one shard (see the module docs).
#[derive(Default)]
pub(crate) struct Index {
    groups: Vec<Group>,
    len: usize,
}

impl Index {
    /// The number of indices held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<Group>()
    }

    /// The home group and the tag of `hash`.
    #[inline]
    fn home(&self, hash: u32) -> (usize, u8) {
        let mixed = u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let group = ((mixed >> 32) * self.groups.len() as u64) >> 32;
        let tag = ((mixed >> 24) as u8).max(1);
        (group as usize, tag)
    }

    #[inline]
    fn next(&self, g: usize) -> usize {
        if g + 1 == self.groups.len() {
            0
        } else {
            g + 1
        }
    }

    /// The group and slot of the first index stored under `hash` for which `eq` holds.
    #[inline]
    fn probe(&self, hash: u32, mut eq: impl FnMut(u32) -> bool) -> Option<(usize, usize)> {
        if self.groups.is_empty() {
            return None;
        }
        let (mut g, tag) = self.home(hash);
        // Every group's overflow count can be non-zero at once (keys displaced round the
        // whole table), so a probe stops after one lap.
        for _ in 0..self.groups.len() {
            let group = &self.groups[g];
            let mut m = group.matches(tag);
            while m != 0 {
                let s = first_slot(m);
                if eq(group.slots[s]) {
                    return Some((g, s));
                }
                m &= m - 1;
            }
            if group.overflow == 0 {
                return None;
            }
            g = self.next(g);
        }
        None
    }

    /// The first index stored under `hash` for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u32, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.probe(hash, eq).map(|(g, s)| self.groups[g].slots[s])
    }

    /// The group and slot holding index `i` stored under `hash`.
    fn position(&self, hash: u32, i: u32) -> Option<(usize, usize)> {
        self.probe(hash, |x| x == i)
    }

    /// Stores index `i` under `hash` (the caller knows it is not there yet). `hash_of` gives
    /// the hash of an index already stored, for when the table grows; `limit` is the most
    /// indices the table will ever hold (`usize::MAX` when unknown), so that it is not grown
    /// past what that needs.
    pub(crate) fn insert(&mut self, hash: u32, i: u32, limit: usize, hash_of: impl Fn(u32) -> u32) {
        if (self.len + 1) * MAX_LOAD_DEN > self.groups.len() * SLOTS * MAX_LOAD_NUM {
            self.grow(limit, hash_of);
        }
        self.place(hash, i);
        self.len += 1;
    }

    fn place(&mut self, hash: u32, i: u32) {
        let (home, tag) = self.home(hash);
        let mut g = home;
        loop {
            let group = &mut self.groups[g];
            let empty = group.matches(0);
            if empty != 0 {
                group.set(first_slot(empty), tag, i, g == home);
                return;
            }
            group.overflow = group.overflow.saturating_add(1);
            g = self.next(g);
        }
    }

    /// Groups for `n` indices at the maximum load.
    fn groups_for(n: usize) -> usize {
        (n.saturating_mul(MAX_LOAD_DEN))
            .div_ceil(SLOTS * MAX_LOAD_NUM)
            .max(1)
    }

    fn grow(&mut self, limit: usize, hash_of: impl Fn(u32) -> u32) {
        let needed = Self::groups_for(self.len + 1);
        let groups = (self.groups.len() * 2)
            .max(4)
            .min(Self::groups_for(limit))
            .max(needed);
        let old = std::mem::replace(&mut self.groups, vec![Group::default(); groups]);
        for group in &old {
            for s in 0..SLOTS {
                if group.tags[s] != 0 {
                    self.place(hash_of(group.slots[s]), group.slots[s]);
                }
            }
        }
    }

    /// How many groups lie from `from` forward to `to` (0 when they are the same).
    #[inline]
    fn distance(&self, from: usize, to: usize) -> usize {
        if to >= from {
            to - from
        } else {
            to + self.groups.len() - from
        }
    }

    /// Takes back one overflow from every group of `from..to` (forward, `to` excluded): a
    /// key stored in `to` whose probe started at `from` leaves.
    fn take_back(&mut self, from: usize, to: usize) {
        let mut g = from;
        while g != to {
            let group = &mut self.groups[g];
            if group.overflow != STICKY {
                group.overflow -= 1;
            }
            g = self.next(g);
        }
    }

    /// Removes index `i` stored under `hash`; false if it is not there. Displaced keys that
    /// passed the freed slot's group move back towards their homes (see the module docs);
    /// `hash_of` gives the hash of an index still stored.
    pub(crate) fn remove(&mut self, hash: u32, i: u32, hash_of: impl Fn(u32) -> u32) -> bool {
        let Some((at, s)) = self.position(hash, i) else {
            return false;
        };
        self.groups[at].clear(s);
        self.len -= 1;
        // Take back the overflows that this key's probe added on its way to `at`.
        let (home, _) = self.home(hash);
        self.take_back(home, at);
        let (mut hole, mut hole_slot) = (at, s);
        // While some key further on passed the hole's group, move the nearest one into it.
        // Such a key is displaced, and it lies before the first group without overflow.
        'fill: while self.groups[hole].overflow > 0 {
            let mut g = self.next(hole);
            for _ in 0..self.groups.len() {
                let mut m = self.groups[g].displaced;
                while m != 0 {
                    let t = m.trailing_zeros() as usize;
                    m &= m - 1;
                    let (tag, index) = (self.groups[g].tags[t], self.groups[g].slots[t]);
                    let (home, _) = self.home(hash_of(index));
                    if self.distance(home, hole) < self.distance(home, g) {
                        self.groups[g].clear(t);
                        self.groups[hole].set(hole_slot, tag, index, home == hole);
                        self.take_back(hole, g);
                        (hole, hole_slot) = (g, t);
                        continue 'fill;
                    }
                }
                if self.groups[g].overflow == 0 {
                    break;
                }
                g = self.next(g);
            }
            // No key passed the hole's group: only a saturated count can say otherwise.
            debug_assert_eq!(self.groups[hole].overflow, STICKY, "group {hole}");
            break;
        }
        true
    }

    /// Replaces index `from` stored under `hash` by `to`; false if `from` is not there.
    pub(crate) fn relocate(&mut self, hash: u32, from: u32, to: u32) -> bool {
        match self.position(hash, from) {
            Some((g, s)) => {
                self.groups[g].slots[s] = to;
                true
            }
            None => false,
        }
    }

    /// Removes every index (keeps the allocation).
    pub(crate) fn clear(&mut self) {
        self.groups.fill(Group::default());
        self.len = 0;
    }

    /// Every stored index, in table order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups
            .iter()
            .flat_map(|g| (0..SLOTS).filter(|&s| g.tags[s] != 0).map(|s| g.slots[s]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn a_group_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Group>(), 64);
        assert_eq!(std::mem::align_of::<Group>(), 64);
    }

    #[test]
    fn matches_finds_exactly_the_equal_tags() {
        let mut g = Group {
            tags: [0, 7, 0, 8, 7, 1, 0x80, 0x7F, 7, 0, 0xFF, 7],
            ..Group::default()
        };
        let slots = |mut m: u128| {
            let mut v = Vec::new();
            while m != 0 {
                v.push(first_slot(m));
                m &= m - 1;
            }
            v
        };
        assert_eq!(slots(g.matches(7)), [1, 4, 8, 11]);
        assert_eq!(slots(g.matches(0)), [0, 2, 9]);
        assert_eq!(slots(g.matches(0xFF)), [10]);
        assert_eq!(slots(g.matches(0x80)), [6]);
        assert_eq!(slots(g.matches(2)), Vec::<usize>::new());
        // The overflow count's and the displaced bits' bytes are never taken for tags.
        g.overflow = 0x0707;
        g.displaced = 0x0707;
        assert_eq!(slots(g.matches(7)), [1, 4, 8, 11]);
    }

    /// A saturated overflow count stays saturated, and keys beyond it are still found and
    /// removed.
    #[test]
    fn a_saturated_overflow_count_sticks() {
        let mut t = Index::default();
        t.insert(0, 0, 36, |_| 0);
        t.remove(0, 0, |_| 0);
        assert_eq!(t.groups.len(), 4);
        let h0 = (0u32..).find(|&h| t.home(h).0 == 0).unwrap();
        t.groups[0].overflow = STICKY - 1;
        // 12 keys fill group 0; the 13th passes it, saturating the count.
        for i in 0..13 {
            t.insert(h0, i, 36, |_| h0);
        }
        assert_eq!(t.groups[0].overflow, STICKY);
        assert_eq!(t.find(h0, |x| x == 12), Some(12));
        // Removing a key of group 0 shifts the displaced one back, yet the count stays.
        assert!(t.remove(h0, 3, |_| h0));
        assert_eq!(t.groups[0].overflow, STICKY);
        assert_eq!(t.groups[0].matches(0), 0, "the displaced key moved back");
        assert!(t.remove(h0, 12, |_| h0));
        assert!(t.remove(h0, 5, |_| h0));
        assert_eq!(t.groups[0].overflow, STICKY);
        // A removal whose hole no key can fill ends all the same.
        for i in (0..12).filter(|&i| i != 3 && i != 5 && i != 12) {
            assert_eq!(t.find(h0, |x| x == i), Some(i));
            assert!(t.remove(h0, i, |_| h0));
        }
        assert_eq!(t.len(), 0);
        assert_eq!(t.find(h0, |_| true), None);
    }

    /// Colliding hashes (all in one home group) spill into the next groups and are found,
    /// removed and relocated there; the overflow counts go back to zero.
    #[test]
    fn colliding_hashes_overflow_and_come_back() {
        let mut t = Index::default();
        // Same hash for all: every key has one home group.
        for i in 0..40 {
            t.insert(12345, i, usize::MAX, |_| 12345);
        }
        assert_eq!(t.len(), 40);
        for i in 0..40 {
            assert_eq!(t.find(12345, |x| x == i), Some(i));
        }
        assert!(t.relocate(12345, 39, 99));
        assert_eq!(t.find(12345, |x| x == 99), Some(99));
        assert_eq!(t.find(12345, |x| x == 39), None);
        for i in (0..39).chain([99]) {
            assert!(t.remove(12345, i, |_| 12345));
        }
        assert!(!t.remove(12345, 5, |_| 12345));
        assert_eq!(t.len(), 0);
        assert!(t.groups.iter().all(|g| g.overflow == 0));
    }

    /// Displaced keys round the whole table leave every overflow count non-zero; a lookup
    /// of an absent key still ends.
    #[test]
    fn a_lookup_ends_when_every_group_has_overflowed() {
        let mut t = Index::default();
        t.insert(0, 0, 27, |_| 0);
        assert_eq!(t.groups.len(), 3);
        let hash_in = |g: usize| (0u32..).find(|&h| t.home(h).0 == g).unwrap();
        let homes = [hash_in(0), hash_in(1), hash_in(2)];
        // Fill group g with keys of home g, then push one more key of home g into g + 1
        // (for g = 2, into group 0, where one of its own keys makes room); then take out
        // the groups' own keys, leaving only the displaced ones.
        t.remove(0, 0, |_| 0);
        let mut i = 0;
        let mut own = Vec::new();
        for (g, &h) in homes.iter().enumerate() {
            // A key of home g goes into g while it has room: at most SLOTS of them fill it.
            for _ in 0..SLOTS {
                if t.groups[g].matches(0) == 0 {
                    break;
                }
                t.place(h, i);
                own.push((h, i));
                i += 1;
            }
            assert_eq!(
                t.groups[g].matches(0),
                0,
                "group {g} not full after {SLOTS} keys"
            );
            if g == 2 {
                let (h0, i0) = own.remove(0);
                let (g0, s0) = t.position(h0, i0).unwrap();
                t.groups[g0].tags[s0] = 0;
            }
            t.place(h, i);
            i += 1;
        }
        for (h, i) in own {
            let (g, s) = t.position(h, i).unwrap();
            t.groups[g].tags[s] = 0;
        }
        assert!(t.groups.iter().all(|g| g.overflow > 0));
        let absent = (0u32..).find(|&h| t.find(h, |_| true).is_none()).unwrap();
        assert_eq!(t.find(absent, |_| false), None);
        assert_eq!(t.position(absent, 12345), None);
    }

    #[test]
    fn a_bounded_table_is_sized_for_its_limit() {
        let mut t = Index::default();
        let hash = |i: u32| i.wrapping_mul(0x2545_F491);
        for i in 0..32768 {
            t.insert(hash(i), i, 32768, hash);
        }
        // 32768 indices at 3/4 of 12 slots per group: 3641 groups of 64 bytes (7.1 bytes
        // per index).
        assert_eq!(t.groups.len(), Index::groups_for(32768));
        assert_eq!(t.groups.len(), 3641);
        assert!(t.allocated_bytes() <= 32768 * 8, "{}", t.allocated_bytes());
        for i in 0..32768 {
            assert_eq!(t.find(hash(i), |x| x == i), Some(i));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(u32),
        /// Swap-remove as the shard does: remove the key at `n % len`, relocate the last.
        SwapRemove(u32),
        Find(u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct hashes so that keys collide and groups overflow.
        prop_oneof![
            3 => (0..300u32).prop_map(Op::Insert),
            1 => (0..300u32).prop_map(Op::Remove),
            1 => any::<u32>().prop_map(Op::SwapRemove),
            2 => (0..300u32).prop_map(Op::Find),
        ]
    }

    proptest! {
        /// Against a model: a slab of keys (dense, swap-removed, as in the shard) and a map
        /// from key to slab index. Key `k` hashes to `k % 23` scaled, so many keys share a
        /// hash.
        #[test]
        fn agrees_with_a_model(ops in proptest::collection::vec(op(), 1..400), limit in 1usize..200) {
            let hash = |k: u32| (k % 23).wrapping_mul(0x9E37_79B1);
            let mut t = Index::default();
            let mut slab: Vec<u32> = Vec::new();
            let mut model: HashMap<u32, u32> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k) => {
                        if let std::collections::hash_map::Entry::Vacant(v) = model.entry(k) {
                            let i = slab.len() as u32;
                            slab.push(k);
                            v.insert(i);
                            let s = &slab;
                            t.insert(hash(k), i, limit, |j| hash(s[j as usize]));
                        }
                    }
                    Op::Remove(k) | Op::SwapRemove(k) => {
                        let k = match op {
                            Op::SwapRemove(n) if !slab.is_empty() => slab[n as usize % slab.len()],
                            _ => k,
                        };
                        match model.remove(&k) {
                            Some(i) => {
                                let s = &slab;
                                prop_assert!(t.remove(hash(k), i, |j| hash(s[j as usize])));
                                let last = slab.len() as u32 - 1;
                                if i != last {
                                    let moved = slab[last as usize];
                                    prop_assert!(t.relocate(hash(moved), last, i));
                                    model.insert(moved, i);
                                }
                                slab.swap_remove(i as usize);
                            }
                            None => prop_assert!(t.find(hash(k), |j| slab[j as usize] == k).is_none()),
                        }
                    }
                    Op::Find(k) => {
                        let found = t.find(hash(k), |j| slab[j as usize] == k);
                        prop_assert_eq!(found, model.get(&k).copied());
                    }
                }
                prop_assert_eq!(t.len(), model.len());
            }
            let mut all: Vec<u32> = t.iter().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..slab.len() as u32).collect::<Vec<_>>());
            // Every overflow count is exactly the number of keys whose probe passed the
            // group.
            let mut expected = vec![0u32; t.groups.len()];
            for (g, group) in t.groups.iter().enumerate() {
                for s in 0..SLOTS {
                    if group.tags[s] != 0 {
                        let (mut h, _) = t.home(hash(slab[group.slots[s] as usize]));
                        // The probe sequence visits every group, so g within as many steps.
                        for _ in 0..t.groups.len() {
                            if h == g {
                                break;
                            }
                            expected[h] += 1;
                            h = t.next(h);
                        }
                        prop_assert_eq!(h, g, "the probe never reached the key's group");
                    }
                }
            }
            let actual: Vec<u32> = t.groups.iter().map(|g| u32::from(g.overflow)).collect();
            prop_assert_eq!(actual, expected);
            for (g, group) in t.groups.iter().enumerate() {
                // A group that some key passed is full (removals shift keys back).
                if group.overflow > 0 {
                    prop_assert_eq!(group.matches(0), 0, "group {} has overflow and a hole", g);
                }
                // The displaced bit says whether the key is away from its home group.
                for s in 0..SLOTS {
                    let displaced = group.displaced & (1 << s) != 0;
                    if group.tags[s] == 0 {
                        prop_assert!(!displaced);
                    } else {
                        let (home, tag) = t.home(hash(slab[group.slots[s] as usize]));
                        prop_assert_eq!(group.tags[s], tag);
                        prop_assert_eq!(displaced, home != g);
                    }
                }
            }
        }
    }
}
