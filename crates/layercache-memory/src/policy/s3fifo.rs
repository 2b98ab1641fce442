//! S3-FIFO (Yang et al., SOSP 2023): three FIFO queues.
//!
//! - **Small** (10% of capacity) takes new keys. When it must give up an entry, an entry hit
//!   at least [`MOVE_TO_MAIN`] times moves to main; the others are evicted and their key hash
//!   is remembered in the ghost queue.
//! - **Main** (the rest) evicts from its head, reinserting entries that were hit since they
//!   last passed the head (their 2-bit counter is decremented each pass).
//! - **Ghost** remembers hashes of keys evicted from small, bounded by main's capacity; a key
//!   that comes back while remembered goes straight to main.
//!
//! Parameters follow libCacheSim's defaults (small 10%, ghost 90%, move-to-main threshold 2).

use std::collections::VecDeque;

use hashbrown::HashMap;

use super::list::{List, Nodes};
use super::{Policy, QuietHits};

const IN_MAIN: u8 = 0b100;
const FREQ_MASK: u8 = 0b011;
const MAX_FREQ: u8 = 3;
/// Hits needed while in small to be moved to main.
const MOVE_TO_MAIN: u8 = 2;

/// S3-FIFO's queues; the entry's meta holds `IN_MAIN | freq`.
pub(crate) struct S3Fifo {
    small: List,
    main: List,
    main_max: u64,
    ghost: Ghost,
}

/// Hashes of keys recently evicted from the small queue, in FIFO order.
struct Ghost {
    queue: VecDeque<(u32, u32, u64)>,
    live: HashMap<u32, u64, foldhash::fast::FixedState>,
    weight: u64,
    max: u64,
    seq: u64,
}

impl Ghost {
    fn push(&mut self, hash: u32, weight: u32) {
        if self.max == 0 {
            return;
        }
        self.seq += 1;
        self.queue.push_back((hash, weight, self.seq));
        self.live.insert(hash, self.seq);
        self.weight += u64::from(weight);
        while self.weight > self.max {
            let Some((h, w, s)) = self.queue.pop_front() else {
                break;
            };
            self.weight -= u64::from(w);
            if self.live.get(&h) == Some(&s) {
                self.live.remove(&h);
            }
        }
    }

    /// Forgets `hash` if remembered; tells whether it was.
    fn take(&mut self, hash: u32) -> bool {
        self.live.remove(&hash).is_some()
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.live.clear();
        self.weight = 0;
    }
}

impl S3Fifo {
    pub(crate) fn new(capacity: u64) -> Self {
        let small_max = (capacity / 10).max(1);
        S3Fifo {
            small: List::default(),
            main: List::default(),
            main_max: capacity.saturating_sub(small_max),
            ghost: Ghost {
                queue: VecDeque::new(),
                live: HashMap::with_hasher(foldhash::fast::FixedState::default()),
                weight: 0,
                max: capacity - small_max.min(capacity),
                seq: 0,
            },
        }
    }

    fn list_of(&mut self, meta: u8) -> &mut List {
        if meta & IN_MAIN != 0 {
            &mut self.main
        } else {
            &mut self.small
        }
    }

    fn evict_small<N: Nodes + ?Sized>(&mut self, n: &mut N) -> Option<u32> {
        while let Some(t) = self.small.pop_front(n) {
            let link = n.link_mut(t);
            if link.meta() & FREQ_MASK >= MOVE_TO_MAIN {
                link.set_meta(IN_MAIN);
                self.main.push_back(n, t);
            } else {
                let (h, w) = (link.hash, link.weight);
                self.ghost.push(h, w);
                return Some(t);
            }
        }
        self.evict_main(n)
    }

    fn evict_main<N: Nodes + ?Sized>(&mut self, n: &mut N) -> Option<u32> {
        while let Some(t) = self.main.pop_front(n) {
            let link = n.link_mut(t);
            let freq = link.meta() & FREQ_MASK;
            if freq > 0 {
                link.set_meta(IN_MAIN | (freq - 1));
                self.main.push_back(n, t);
            } else {
                return Some(t);
            }
        }
        None
    }
}

impl Policy for S3Fifo {
    fn on_insert<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        if self.ghost.take(n.link(i).hash) {
            n.link_mut(i).set_meta(IN_MAIN);
            self.main.push_back(n, i);
        } else {
            n.link_mut(i).set_meta(0);
            self.small.push_back(n, i);
        }
    }
    fn on_hit<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        let l = n.link_mut(i);
        let m = l.meta();
        if m & FREQ_MASK < MAX_FREQ {
            l.set_meta(m + 1);
        }
    }
    fn quiet_hits(&self) -> QuietHits {
        // A saturated counter stays so until an eviction pass, and writes apply the
        // buffered hits first.
        QuietHits {
            mask: FREQ_MASK,
            value: MAX_FREQ,
        }
    }
    fn on_update<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32, old_weight: u32) {
        let new = n.link(i).weight;
        self.list_of(n.link(i).meta()).reweigh(old_weight, new);
        self.on_hit(n, i);
    }
    fn on_remove<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        let meta = n.link(i).meta();
        self.list_of(meta).unlink(n, i);
    }
    fn evict<N: Nodes + ?Sized>(&mut self, n: &mut N, _incoming: u32) -> Option<u32> {
        // As libCacheSim: evict from main when it is over its share (or small is empty).
        if self.main.weight > self.main_max || self.small.is_empty() {
            self.evict_main(n).or_else(|| self.evict_small(n))
        } else {
            self.evict_small(n)
        }
    }
    fn relocate(&mut self, from: u32, to: u32) {
        self.small.relocate(from, to);
        self.main.relocate(from, to);
    }
    fn clear(&mut self) {
        self.small.clear();
        self.main.clear();
        self.ghost.clear();
    }
    fn lists(&self) -> Vec<&List> {
        vec![&self.small, &self.main]
    }
}
