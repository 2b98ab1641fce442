//! SIEVE (Zhang et al., NSDI 2024): a FIFO queue plus one "visited" bit per entry.
//!
//! A hit only sets the bit. To evict, a hand walks from the oldest entry towards the newest,
//! clearing visited bits, and evicts the first unvisited entry; the hand stays where it stopped
//! and wraps to the oldest entry when it runs off the new end. New entries join at the new end
//! unvisited. This matches libCacheSim's `SIEVE` (freq capped at 1), so miss counts agree
//! exactly with its regression values.

use super::list::{List, Nodes, NIL};
use super::{Policy, QuietHits};

const VISITED: u8 = 1;

/// SIEVE over one list (head = oldest) and a hand.
pub(crate) struct Sieve {
    list: List,
    hand: u32,
}

impl Default for Sieve {
    fn default() -> Self {
        Sieve {
            list: List::default(),
            hand: NIL,
        }
    }
}

impl Policy for Sieve {
    fn on_insert<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        n.link_mut(i).set_meta(0);
        self.list.push_back(n, i);
    }
    fn on_hit<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        n.link_mut(i).set_meta(VISITED);
    }
    fn quiet_hits(&self) -> QuietHits {
        // Only an eviction clears the bit, and writes apply the buffered hits first.
        QuietHits {
            mask: VISITED,
            value: VISITED,
        }
    }
    fn on_update<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32, old_weight: u32) {
        self.list.reweigh(old_weight, n.link(i).weight);
        n.link_mut(i).set_meta(VISITED);
    }
    fn on_remove<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        if self.hand == i {
            self.hand = n.link(i).next();
        }
        self.list.unlink(n, i);
    }
    fn evict<N: Nodes + ?Sized>(&mut self, n: &mut N, _incoming: u32) -> Option<u32> {
        if self.list.is_empty() {
            return None;
        }
        let mut p = if self.hand == NIL {
            self.list.head
        } else {
            self.hand
        };
        while n.link(p).meta() == VISITED {
            n.link_mut(p).set_meta(0);
            p = n.link(p).next();
            if p == NIL {
                p = self.list.head;
            }
        }
        self.hand = n.link(p).next();
        self.list.unlink(n, p);
        Some(p)
    }
    fn relocate(&mut self, from: u32, to: u32) {
        self.list.relocate(from, to);
        if self.hand == from {
            self.hand = to;
        }
    }
    fn clear(&mut self) {
        self.list.clear();
        self.hand = NIL;
    }
    fn lists(&self) -> Vec<&List> {
        vec![&self.list]
    }
}
