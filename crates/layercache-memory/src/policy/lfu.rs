//! Least frequently used with aging.
//!
//! Each entry keeps a 4-bit access count (1 on insert, +1 per hit, saturating at 15) and sits
//! in the list of its count, in recency order. The victim is the least recently used entry of
//! the lowest non-empty count. Every `10 × entries` accesses all counts are halved, so that
//! entries that were hot long ago lose their advantage (aging); halving costs O(entries) and is
//! amortized over the period, keeping operations O(1) on average.

use super::list::{List, Nodes};
use super::Policy;

const LEVELS: usize = 16;
const AGING_FACTOR: u64 = 10;
const MIN_PERIOD: u64 = 64;

/// Frequency-bucketed lists; the entry's meta is its count.
#[derive(Default)]
pub(crate) struct Lfu {
    buckets: [List; LEVELS],
    len: u64,
    ops: u64,
}

impl Lfu {
    fn tick<N: Nodes + ?Sized>(&mut self, n: &mut N) {
        self.ops += 1;
        if self.ops >= (AGING_FACTOR * self.len).max(MIN_PERIOD) {
            self.ops = 0;
            self.age(n);
        }
    }

    /// Halves every count, merging list `c` into list `c / 2` oldest-first.
    fn age<N: Nodes + ?Sized>(&mut self, n: &mut N) {
        for c in 1..LEVELS {
            while let Some(i) = self.buckets[c].pop_front(n) {
                let half = (c / 2) as u8;
                n.link_mut(i).set_meta(half);
                self.buckets[usize::from(half)].push_back(n, i);
            }
        }
    }
}

impl Policy for Lfu {
    fn on_insert<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        n.link_mut(i).set_meta(1);
        self.buckets[1].push_back(n, i);
        self.len += 1;
        self.tick(n);
    }
    fn on_hit<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        let c = usize::from(n.link(i).meta());
        let next = (c + 1).min(LEVELS - 1);
        self.buckets[c].unlink(n, i);
        n.link_mut(i).set_meta(next as u8);
        self.buckets[next].push_back(n, i);
        self.tick(n);
    }
    fn on_update<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32, old_weight: u32) {
        let c = usize::from(n.link(i).meta());
        self.buckets[c].reweigh(old_weight, n.link(i).weight);
        self.on_hit(n, i);
    }
    fn on_remove<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        let c = usize::from(n.link(i).meta());
        self.buckets[c].unlink(n, i);
        self.len -= 1;
    }
    fn evict<N: Nodes + ?Sized>(&mut self, n: &mut N, _incoming: u32) -> Option<u32> {
        let victim = self
            .buckets
            .iter_mut()
            .find(|b| !b.is_empty())?
            .pop_front(n)?;
        self.len -= 1;
        Some(victim)
    }
    fn relocate(&mut self, from: u32, to: u32) {
        for b in &mut self.buckets {
            b.relocate(from, to);
        }
    }
    fn clear(&mut self) {
        *self = Lfu::default();
    }
    fn lists(&self) -> Vec<&List> {
        self.buckets.iter().collect()
    }
}
