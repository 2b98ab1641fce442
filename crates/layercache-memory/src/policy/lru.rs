//! Least recently used: one list in access order; the victim is the least recently used entry.

use super::list::{List, Nodes};
use super::Policy;

/// LRU over one list (head = least recently used).
#[derive(Default)]
pub(crate) struct Lru {
    list: List,
}

impl Policy for Lru {
    fn on_insert<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.list.push_back(n, i);
    }
    fn on_hit<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.list.move_to_back(n, i);
    }
    fn on_update<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32, old_weight: u32) {
        self.list.reweigh(old_weight, n.link(i).weight);
        self.list.move_to_back(n, i);
    }
    fn on_remove<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.list.unlink(n, i);
    }
    fn evict<N: Nodes + ?Sized>(&mut self, n: &mut N, _incoming: u32) -> Option<u32> {
        self.list.pop_front(n)
    }
    fn relocate(&mut self, from: u32, to: u32) {
        self.list.relocate(from, to);
    }
    fn clear(&mut self) {
        self.list.clear();
    }
    fn lists(&self) -> Vec<&List> {
        vec![&self.list]
    }
}
