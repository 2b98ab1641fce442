//! First in, first out: insertion order only; hits change nothing.

use super::list::{List, Nodes};
use super::{Policy, QuietHits};

/// FIFO over one list (head = oldest insertion).
#[derive(Default)]
pub(crate) struct Fifo {
    list: List,
}

impl Policy for Fifo {
    fn on_insert<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.list.push_back(n, i);
    }
    fn on_hit<N: Nodes + ?Sized>(&mut self, _n: &mut N, _i: u32) {}
    fn quiet_hits(&self) -> QuietHits {
        QuietHits::ALL
    }
    fn on_update<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32, old_weight: u32) {
        self.list.reweigh(old_weight, n.link(i).weight);
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
