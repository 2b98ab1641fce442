//! S3-FIFO (Yang et al., SOSP 2023): three FIFO queues.
//!
//! - **Small** (10% of capacity) takes new keys. When it must give up an entry, an entry hit
//!   at least [`MOVE_TO_MAIN`] times moves to main; the others are evicted and their key hash
//!   is remembered in the ghost queue.
//! - **Main** (the rest) evicts from its head, reinserting entries that were hit since they
//!   last passed the head (their 2-bit counter is decremented each pass).
//! - **Ghost** remembers hashes of keys evicted from small, up to 90% of the capacity in
//!   weight; a key that comes back while remembered goes straight to main and leaves the ghost.
//!
//! # Relation to libCacheSim
//!
//! This is libCacheSim's `S3FIFOv0.c` ("the original S3FIFO implementation used in the
//! paper"), with its defaults: small `⌊0.1 × capacity⌋`, ghost `⌊0.9 × capacity⌋`,
//! move-to-main threshold 2. Byte-weighted on `cloudPhysicsIO.oracleGeneral.bin` at 128 …
//! 1024 MiB its miss counts equal libCacheSim's regression values for `S3FIFOv0`
//! (`test/test_evictionAlgo.c`, `test_S3FIFOv0`: 89307 … 70355), which is the S3-FIFO row of
//! the traces README; `layercache-cli/tests/sim.rs` checks all eight. Two details make that
//! exact:
//!
//! - libCacheSim takes a returning key out of the ghost when it is looked up, before the
//!   evictions that make room for it; here the policy first learns the key in
//!   [`Policy::on_insert`], after them. So a ghost record that those evictions push out is kept
//!   aside until the insert, and if the new key was remembered, its weight is freed and the
//!   records pushed out meanwhile come back as far as they fit: the ghost ends as
//!   libCacheSim's would.
//! - A key that leaves the ghost frees its weight at once (a FIFO removal in libCacheSim),
//!   not when its record reaches the queue's head.
//!
//! Where this differs from libCacheSim, by design or necessity:
//!
//! - libCacheSim's current `S3FIFO.c` (the `S3FIFO` of its Python package 0.3.5, regression
//!   values 90117 … 56045) adds a rule: until the first eviction, a new key goes to main once
//!   small is full. Not done here.
//! - `S3FIFOv0` refuses an object of 10% of the capacity or more (it would fill small alone);
//!   the engine stores every entry that fits in the cache, and here such an entry enters small
//!   like any other. No object of the cloudPhysicsIO trace is that large at 128 MiB or more.
//! - The ghost keeps 32-bit key hashes, not keys: two keys with the same hash share a record.
//! - Small is at least 1 unit (libCacheSim refuses a cache of fewer than 10 units).

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

/// One remembered key: its hash and weight, and the push that made it (`seq`).
#[derive(Clone, Copy, Debug)]
struct Record {
    hash: u32,
    weight: u32,
    seq: u64,
}

/// Hash → (seq, weight) of the ghost's live records.
type Live = HashMap<u32, (u64, u32), foldhash::fast::FixedState>;

impl Record {
    /// Whether this record is its hash's live one (not one a later push or a take killed).
    fn is_live(&self, live: &Live) -> bool {
        live.get(&self.hash).map(|&(seq, _)| seq) == Some(self.seq)
    }
}

/// Hashes of keys recently evicted from the small queue, in FIFO order.
struct Ghost {
    /// Oldest first. A record is live while `live` maps its hash to its `seq`; the others are
    /// dead (their key left the ghost) and are skipped, or dropped by [`Ghost::compact`].
    queue: VecDeque<Record>,
    /// Hash → (seq, weight) of the live records.
    live: Live,
    /// The weight of the live records.
    weight: u64,
    max: u64,
    seq: u64,
    /// Live records pushed out since the last [`Ghost::take`], oldest first. Only evictions
    /// push records out, and every eviction round ends with an insert, which takes: this holds
    /// at most the records of one round.
    trimmed: VecDeque<Record>,
}

impl Ghost {
    fn new(max: u64) -> Self {
        Ghost {
            queue: VecDeque::new(),
            live: HashMap::with_hasher(foldhash::fast::FixedState::default()),
            weight: 0,
            max,
            seq: 0,
            trimmed: VecDeque::new(),
        }
    }

    /// Remembers `hash`, pushing out the oldest records while the ghost is over its maximum.
    /// A key heavier than the whole ghost is not remembered (libCacheSim's FIFO cannot hold it).
    fn push(&mut self, hash: u32, weight: u32) {
        if u64::from(weight) > self.max {
            return;
        }
        if let Some((_, w)) = self.live.remove(&hash) {
            // Another key with the same hash: its record dies.
            self.weight -= u64::from(w);
        }
        self.seq += 1;
        self.queue.push_back(Record {
            hash,
            weight,
            seq: self.seq,
        });
        self.live.insert(hash, (self.seq, weight));
        self.weight += u64::from(weight);
        while self.weight > self.max {
            let Some(r) = self.queue.pop_front() else {
                break;
            };
            if r.is_live(&self.live) {
                self.live.remove(&r.hash);
                self.weight -= u64::from(r.weight);
                self.trimmed.push_back(r);
            }
        }
    }

    /// Forgets `hash` if remembered (or pushed out since the last call); tells whether it was.
    /// When it was, the records pushed out since the last call come back, newest first, while
    /// they fit: the ghost is then as if `hash` had left it before they were pushed out.
    fn take(&mut self, hash: u32) -> bool {
        let found = if let Some((_, w)) = self.live.remove(&hash) {
            self.weight -= u64::from(w);
            true
        } else if let Some(pos) = self.trimmed.iter().rposition(|r| r.hash == hash) {
            self.trimmed.remove(pos);
            true
        } else {
            false
        };
        if found {
            while let Some(r) = self.trimmed.pop_back() {
                if self.weight + u64::from(r.weight) > self.max || self.live.contains_key(&r.hash) {
                    break;
                }
                self.live.insert(r.hash, (r.seq, r.weight));
                self.weight += u64::from(r.weight);
                self.queue.push_front(r);
            }
            self.compact();
        }
        self.trimmed.clear();
        found
    }

    /// Drops the dead records once they outnumber the live ones (amortised O(1) per push).
    fn compact(&mut self) {
        if self.queue.len() > 2 * self.live.len() + 64 {
            let live = &self.live;
            self.queue.retain(|r| r.is_live(live));
        }
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.live.clear();
        self.weight = 0;
        self.trimmed.clear();
    }
}

impl S3Fifo {
    pub(crate) fn new(capacity: u64) -> Self {
        let small_max = (capacity / 10).max(1);
        S3Fifo {
            small: List::default(),
            main: List::default(),
            main_max: capacity.saturating_sub(small_max),
            // ⌊0.9 × capacity⌋, as libCacheSim's `(int64_t)(cache_size * 0.9)`.
            ghost: Ghost::new(capacity - capacity.div_ceil(10)),
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
