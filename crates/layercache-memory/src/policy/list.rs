//! Intrusive doubly-linked lists over the shard's entry slab.
//!
//! Every live entry sits in exactly one list of its policy. Links are `u32` slab indices, so
//! a node costs 16 bytes (prev, next + 4 policy bits, key hash, weight) instead of two
//! pointers and a heap allocation.

/// The "no node" index.
pub(crate) const NIL: u32 = (1 << 28) - 1;
/// The largest number of entries one shard can hold (indices must stay below [`NIL`]).
pub(crate) const MAX_SHARD_ENTRIES: usize = NIL as usize;
const META_SHIFT: u32 = 28;

/// Per-entry policy links. `next` carries four policy-owned bits in its top nibble.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Link {
    prev: u32,
    next_meta: u32,
    /// The low 32 bits of the key's hash (used by the table, sketches and ghosts).
    pub(crate) hash: u32,
    /// The entry's weight in capacity units.
    pub(crate) weight: u32,
}

impl Link {
    pub(crate) fn new(hash: u32, weight: u32) -> Self {
        Link {
            prev: NIL,
            next_meta: NIL,
            hash,
            weight,
        }
    }
    #[inline]
    pub(crate) fn prev(&self) -> u32 {
        self.prev
    }
    #[inline]
    pub(crate) fn next(&self) -> u32 {
        self.next_meta & NIL
    }
    #[inline]
    pub(crate) fn set_prev(&mut self, p: u32) {
        self.prev = p;
    }
    #[inline]
    pub(crate) fn set_next(&mut self, n: u32) {
        self.next_meta = (self.next_meta & !NIL) | n;
    }
    /// Four bits of policy state (queue id, reference bit, small counter).
    #[inline]
    pub(crate) fn meta(&self) -> u8 {
        (self.next_meta >> META_SHIFT) as u8
    }
    #[inline]
    pub(crate) fn set_meta(&mut self, m: u8) {
        debug_assert!(m < 16);
        self.next_meta = (self.next_meta & NIL) | (u32::from(m) << META_SHIFT);
    }
}

/// Access to the links of a slab of entries.
pub(crate) trait Nodes {
    fn link(&self, i: u32) -> &Link;
    fn link_mut(&mut self, i: u32) -> &mut Link;
}

impl Nodes for [Link] {
    fn link(&self, i: u32) -> &Link {
        &self[i as usize]
    }
    fn link_mut(&mut self, i: u32) -> &mut Link {
        &mut self[i as usize]
    }
}

/// A doubly-linked list: `head` is the oldest (LRU / FIFO-out) end, `tail` the newest.
#[derive(Clone, Debug)]
pub(crate) struct List {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) len: u32,
    /// Sum of the weights of the nodes in the list.
    pub(crate) weight: u64,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
            len: 0,
            weight: 0,
        }
    }
}

impl List {
    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Appends `i` at the newest end.
    pub(crate) fn push_back<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        let w = {
            let l = n.link_mut(i);
            l.set_prev(self.tail);
            l.set_next(NIL);
            l.weight
        };
        if self.tail == NIL {
            self.head = i;
        } else {
            n.link_mut(self.tail).set_next(i);
        }
        self.tail = i;
        self.len += 1;
        self.weight += u64::from(w);
    }

    /// Unlinks `i`, which must be in this list.
    pub(crate) fn unlink<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        let l = *n.link(i);
        let (p, nx) = (l.prev(), l.next());
        if p == NIL {
            self.head = nx;
        } else {
            n.link_mut(p).set_next(nx);
        }
        if nx == NIL {
            self.tail = p;
        } else {
            n.link_mut(nx).set_prev(p);
        }
        let l = n.link_mut(i);
        l.set_prev(NIL);
        l.set_next(NIL);
        self.len -= 1;
        self.weight -= u64::from(l.weight);
    }

    /// Removes and returns the oldest node.
    pub(crate) fn pop_front<N: Nodes + ?Sized>(&mut self, n: &mut N) -> Option<u32> {
        let h = self.head;
        if h == NIL {
            return None;
        }
        self.unlink(n, h);
        Some(h)
    }

    /// Moves `i` (in this list) to the newest end.
    pub(crate) fn move_to_back<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        if self.tail != i {
            self.unlink(n, i);
            self.push_back(n, i);
        }
    }

    /// Adjusts the list weight after the weight of a member changed.
    pub(crate) fn reweigh(&mut self, old: u32, new: u32) {
        self.weight = self.weight - u64::from(old) + u64::from(new);
    }

    /// A node moved in the slab from `from` to `to` (its neighbours are already fixed).
    pub(crate) fn relocate(&mut self, from: u32, to: u32) {
        if self.head == from {
            self.head = to;
        }
        if self.tail == from {
            self.tail = to;
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = List::default();
    }

    /// Walks the list from head to tail (for invariant checks).
    #[cfg(test)]
    pub(crate) fn iter<'a, N: Nodes + ?Sized>(&self, n: &'a N) -> impl Iterator<Item = u32> + 'a {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            if cur == NIL {
                None
            } else {
                let i = cur;
                cur = n.link(i).next();
                Some(i)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_bits_do_not_disturb_links() {
        let mut l = Link::new(7, 1);
        l.set_next(12345);
        l.set_meta(0xF);
        assert_eq!(l.next(), 12345);
        assert_eq!(l.meta(), 0xF);
        l.set_next(NIL);
        assert_eq!(l.meta(), 0xF);
        assert_eq!(l.next(), NIL);
    }

    #[test]
    fn push_unlink_move() {
        let mut nodes: Vec<Link> = (0..4).map(|i| Link::new(i, 1)).collect();
        let n = nodes.as_mut_slice();
        let mut list = List::default();
        for i in 0..4 {
            list.push_back(n, i);
        }
        assert_eq!(list.iter(n).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        list.move_to_back(n, 1);
        assert_eq!(list.iter(n).collect::<Vec<_>>(), vec![0, 2, 3, 1]);
        list.unlink(n, 3);
        assert_eq!(list.iter(n).collect::<Vec<_>>(), vec![0, 2, 1]);
        assert_eq!(list.pop_front(n), Some(0));
        assert_eq!(list.len, 2);
        assert_eq!(list.weight, 2);
    }
}
