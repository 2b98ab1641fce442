//! Adaptive W-TinyLFU (Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission
//! Policy", ACM ToS 2017), structured as in Caffeine, with ghost feedback.
//!
//! - New entries enter a **window** (initially 1% of capacity) kept in CLOCK order: a hit
//!   sets the entry's reference bit instead of moving it, and a referenced entry that reaches
//!   the window's old end gets a second chance at its new end, unreferenced, instead of
//!   leaving (Caffeine's window is an exact LRU). A window entry hit again before its second
//!   chance is not counted again in the sketch, so its estimate, which it duels with when it
//!   leaves, counts one hit per pass through the window. Measured on the 28 rows of
//!   BENCHMARKS.md §1 against fixed peer figures: +0.66 mean margin with 5 rows below −0.5,
//!   against +0.61 and 7 rows with the LRU window; and a repeated hit on a hot window entry
//!   costs a reader nothing beyond the entry, as in protected (below).
//! - Entries leaving the window become *candidates* at the new end of the **probation**
//!   segment of a segmented-LRU main space. When room is needed, a candidate duels the
//!   probation LRU *victim* on their TinyLFU frequency estimates ([`FrequencySketch`]). The
//!   candidate must beat the victim by more than [`ADMIT_MARGIN`]: a resident entry is worth
//!   more than an unproven newcomer with a similar count, which keeps looping workloads stable.
//! - A warm candidate (estimate above 5) that loses is still admitted with probability 1/128,
//!   so an attacker cannot pin hot victims by colliding hashes (hash flooding).
//! - A hit in probation only sets the entry's reference bit; when a referenced entry reaches
//!   probation's old end (before each eviction), it is promoted to **protected** (80% of
//!   main), and protected overflow is demoted back to probation's new end. So promotion is
//!   lazy, as in CLOCK-based policies (S3-FIFO, SIEVE), and every hit on an entry already
//!   referenced, in any segment, is quiet (below). Measured against eager promotion (a move
//!   on the hit, as in Caffeine): the same hit ratio on the 28 rows of BENCHMARKS.md §1 (+0.20
//!   points summed over the rows, none moving by more than 0.43), and a hit on a cache whose
//!   entries are read evenly (every entry hit now and then, as when the working set fits)
//!   costs about a third (BENCHMARKS.md §2): eager promotion made a fifth of such hits move
//!   two entries, and the demoted entry's next hit moved two more.
//! - A hit in protected only sets a reference bit in the entry's links
//!   (its neighbours are not touched); when protected overflows, referenced entries at its
//!   old end get a second chance at its new end, unreferenced, and the first unreferenced one
//!   is demoted. So protected keeps an approximate LRU order, as CLOCK (Corbató, 1968)
//!   approximates LRU. A protected entry hit again before its second chance is not counted
//!   again in the sketch either: it cannot be an admission victim before it is demoted, and
//!   its counter was raised by the hit that referenced it. So a repeated hit on a hot entry
//!   touches no memory beyond the entry itself: readers see its state and only count the hit
//!   (for the hill climber) instead of recording it ([`Policy::quiet_hits`]). A reader makes
//!   that call when the hit happens, while earlier hits may still be buffered; applying one of
//!   those may give the entry its second chance first, and the quiet hit then does not
//!   reference it again. Measured on the 28 rows of BENCHMARKS.md §1 against fixed peer
//!   figures: CLOCK and not recounting moved the mean margin from +0.40 (exact LRU moves,
//!   every hit counted) to +0.42, and made a hit about 40 % cheaper; counting quiet hits
//!   instead of recording them moved it by −0.01.
//! - The window size adapts two ways. A [`HillClimber`] samples the hit ratio every
//!   10 × capacity requests and moves capacity between window and protected (Einziger et al.,
//!   "Adaptive Software Cache Management", Middleware 2018). Between samples, two [`Ghost`]s
//!   give per-miss feedback in the manner of ARC (Megiddo & Modha, FAST 2003): a miss on a key
//!   that recently *lost* a duel grows the window by the key's weight (the workload rewards
//!   recency), and a miss on a key recently *evicted from main* shrinks it (the workload rewards
//!   frequency). A candidate that returns while remembered as rejected is admitted on a near
//!   tie. The ghost feedback makes the policy adapt within short traces, where a 10 × capacity
//!   sample period would never complete.

use super::climber::HillClimber;
use super::ghost::Ghost;
use super::list::{List, Nodes, NIL};
use super::sketch::FrequencySketch;
use super::{Policy, QuietHits};

const WINDOW: u8 = 0;
const PROBATION: u8 = 1;
const PROTECTED: u8 = 2;
/// Set on an entry hit since it last reached the old end of its segment: a window or
/// protected entry gets a second chance there, and a probation entry is promoted to
/// protected, instead of a move on every hit.
const REFERENCED: u8 = 4;
/// The bits of an entry's policy state that name its segment (the rest is [`REFERENCED`]).
const SEGMENT: u8 = 3;
/// The states whose hits need no policy work (an entry already referenced): `touch` returns
/// at once for them, and readers only count their hits.
const QUIET: QuietHits = QuietHits {
    mask: REFERENCED,
    value: REFERENCED,
};

const PERCENT_MAIN: f64 = 0.99;
const PERCENT_MAIN_PROTECTED: f64 = 0.80;
/// Caps the entries moved between segments by one window adjustment.
const QUEUE_TRANSFER_THRESHOLD: usize = 1000;
/// A candidate whose estimate is at most this is never admitted by chance.
const ADMIT_HASHDOS_THRESHOLD: u8 = 5;
/// How much a candidate's estimate must exceed the victim's to be admitted.
const ADMIT_MARGIN: u8 = 1;
/// Size of the ghost of rejected candidates, as a share of capacity.
const REJECTED_GHOST: f64 = 0.2;
/// Size of the ghost of entries evicted from main, as a share of capacity.
const EVICTED_GHOST: f64 = 0.5;

pub(crate) struct WTinyLfu {
    window: List,
    probation: List,
    protected: List,
    maximum: u64,
    window_max: u64,
    protected_max: u64,
    weighted: bool,
    len: u64,
    sketch: FrequencySketch,
    climber: HillClimber,
    rejected: Ghost,
    evicted: Ghost,
    /// Candidates moved out of the window in the current eviction round.
    candidates: u32,
    /// The next candidate to duel (walks from probation's new end towards its old end).
    candidate: u32,
    rng: u64,
}

impl WTinyLfu {
    pub(crate) fn new(maximum: u64, weighted: bool, seed: u64) -> Self {
        let window_max = maximum - (PERCENT_MAIN * maximum as f64) as u64;
        let protected_max = (PERCENT_MAIN_PROTECTED * (maximum - window_max) as f64) as u64;
        // Ghosts count keys; with a weigher the capacity is not an entry count, so they are
        // sized (like the sketch) once the number of entries is known.
        let ghost_base = if weighted { 0 } else { maximum };
        WTinyLfu {
            window: List::default(),
            probation: List::default(),
            protected: List::default(),
            maximum,
            window_max,
            protected_max,
            weighted,
            len: 0,
            sketch: FrequencySketch::new(),
            climber: HillClimber::new(maximum),
            rejected: Ghost::new((REJECTED_GHOST * ghost_base as f64) as u64),
            evicted: Ghost::new((EVICTED_GHOST * ghost_base as f64) as u64),
            candidates: 0,
            candidate: NIL,
            rng: seed | 1,
        }
    }

    fn total_weight(&self) -> u64 {
        self.window.weight + self.probation.weight + self.protected.weight
    }

    fn queue(&mut self, meta: u8) -> &mut List {
        match meta & SEGMENT {
            WINDOW => &mut self.window,
            PROBATION => &mut self.probation,
            _ => &mut self.protected,
        }
    }

    fn end_round(&mut self) {
        self.candidates = 0;
        self.candidate = NIL;
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Sizes the sketch (and, when weighted, the ghosts) once the cache is half full, as
    /// Caffeine does: a cache that never fills never pays for them.
    fn ensure_sketch(&mut self) {
        if self.total_weight() < self.maximum / 2 {
            return;
        }
        let entries = if self.weighted {
            self.len
        } else {
            self.maximum
        };
        if self.weighted && !self.sketch.is_initialized() {
            self.rejected = Ghost::new((REJECTED_GHOST * entries as f64) as u64);
            self.evicted = Ghost::new((EVICTED_GHOST * entries as f64) as u64);
        }
        self.sketch.ensure_capacity(entries);
    }

    /// The duel: should `candidate` (a key hash) replace `victim`?
    fn admit(&mut self, candidate: u32, victim: u32) -> bool {
        let victim_freq = self.sketch.frequency(victim);
        let candidate_freq = self.sketch.frequency(candidate);
        if candidate_freq > victim_freq.saturating_add(ADMIT_MARGIN) {
            true
        } else if self.rejected.contains(candidate) {
            // Rejected recently and back already: recency evidence.
            true
        } else if candidate_freq <= ADMIT_HASHDOS_THRESHOLD {
            false
        } else {
            self.random() & 127 == 0
        }
    }

    /// Demotes protected's oldest unreferenced entries to probation's new end while protected
    /// is over its maximum; second chances on the way take from `budget` (see `settle`).
    fn demote_protected<N: Nodes + ?Sized>(&mut self, n: &mut N, budget: &mut usize) {
        for _ in 0..QUEUE_TRANSFER_THRESHOLD {
            if self.protected.weight <= self.protected_max {
                break;
            }
            self.settle(n, PROTECTED, budget);
            let Some(d) = self.protected.pop_front(n) else {
                break;
            };
            n.link_mut(d).set_meta(PROBATION);
            self.probation.push_back(n, d);
        }
    }

    /// Gives the referenced entries at the old end of `segment` (the window or protected)
    /// their second chance (back to the new end, unreferenced), so that its head is an entry
    /// not hit since it last got there. Each second chance takes one from `budget`, which
    /// bounds the latency: once it is spent, the head may still be referenced, and it leaves
    /// the segment all the same.
    fn settle<N: Nodes + ?Sized>(&mut self, n: &mut N, segment: u8, budget: &mut usize) {
        while *budget > 0 {
            let h = self.queue(segment).head;
            if h == NIL || n.link(h).meta() & REFERENCED == 0 {
                break;
            }
            *budget -= 1;
            n.link_mut(h).set_meta(segment);
            self.queue(segment).move_to_back(n, h);
        }
    }

    /// Promotes the referenced entries at probation's old end to protected (each demotes
    /// protected's oldest unreferenced entry to probation's new end), so that probation's
    /// head, the next victim, is an entry not hit since it entered probation. Promotions and
    /// the second chances they cause in protected take from one budget of
    /// [`QUEUE_TRANSFER_THRESHOLD`] per call, which bounds an eviction's latency; once it is
    /// spent, the head may still be referenced, and it duels (or leaves) all the same.
    fn promote_referenced<N: Nodes + ?Sized>(&mut self, n: &mut N) {
        let mut budget = QUEUE_TRANSFER_THRESHOLD;
        while budget > 0 {
            let h = self.probation.head;
            if h == NIL || n.link(h).meta() & REFERENCED == 0 {
                break;
            }
            budget -= 1;
            self.probation.unlink(n, h);
            n.link_mut(h).set_meta(PROTECTED);
            self.protected.push_back(n, h);
            self.demote_protected(n, &mut budget);
        }
    }

    /// Moves window entries to probation while the window (plus `incoming`) is over its
    /// maximum; returns how many moved. Referenced entries at the old end get their second
    /// chance instead (at most [`QUEUE_TRANSFER_THRESHOLD`] per call; after that they leave
    /// like the others).
    fn drain_window<N: Nodes + ?Sized>(&mut self, n: &mut N, incoming: u32) -> u32 {
        let mut moved = 0;
        let mut chances = QUEUE_TRANSFER_THRESHOLD;
        while self.window.weight + u64::from(incoming) > self.window_max {
            self.settle(n, WINDOW, &mut chances);
            let Some(c) = self.window.pop_front(n) else {
                break;
            };
            n.link_mut(c).set_meta(PROBATION);
            self.probation.push_back(n, c);
            moved += 1;
        }
        moved
    }

    /// Hill climbing, once per sample period.
    fn climb<N: Nodes + ?Sized>(&mut self, n: &mut N) {
        if !self.sketch.is_initialized() {
            self.climber.reset_sample();
            return;
        }
        match self.climber.adjustment(self.sketch.sample_size()) {
            Some(a) if a > 0 => self.increase_window(n, a.unsigned_abs()),
            Some(a) if a < 0 => self.decrease_window(n, a.unsigned_abs()),
            _ => {}
        }
    }

    /// Ghost feedback for a missed key that is being inserted.
    fn ghost_feedback<N: Nodes + ?Sized>(&mut self, n: &mut N, hash: u32, weight: u32) {
        if self.rejected.contains(hash) {
            self.increase_window(n, u64::from(weight.max(1)));
        } else if self.evicted.contains(hash) {
            self.decrease_window(n, u64::from(weight.max(1)));
        }
    }

    fn increase_window<N: Nodes + ?Sized>(&mut self, n: &mut N, amount: u64) {
        if self.protected_max == 0 {
            return;
        }
        let mut quota = amount.min(self.protected_max);
        self.protected_max -= quota;
        self.window_max += quota;
        self.demote_protected(n, &mut { QUEUE_TRANSFER_THRESHOLD });
        for _ in 0..QUEUE_TRANSFER_THRESHOLD {
            let mut c = self.probation.head;
            if c == NIL || quota < u64::from(n.link(c).weight) {
                c = self.protected.head;
            }
            if c == NIL {
                break;
            }
            let w = u64::from(n.link(c).weight);
            if quota < w {
                break;
            }
            quota -= w;
            let meta = n.link(c).meta();
            self.queue(meta).unlink(n, c);
            n.link_mut(c).set_meta(WINDOW);
            self.window.push_back(n, c);
        }
        self.protected_max += quota;
        self.window_max -= quota;
    }

    fn decrease_window<N: Nodes + ?Sized>(&mut self, n: &mut N, amount: u64) {
        if self.window_max <= 1 {
            return;
        }
        let mut quota = amount.min(self.window_max - 1);
        self.protected_max += quota;
        self.window_max -= quota;
        for _ in 0..QUEUE_TRANSFER_THRESHOLD {
            let c = self.window.head;
            if c == NIL {
                break;
            }
            let w = u64::from(n.link(c).weight);
            if quota < w {
                break;
            }
            quota -= w;
            self.window.unlink(n, c);
            n.link_mut(c).set_meta(PROBATION);
            self.probation.push_back(n, c);
        }
        self.protected_max -= quota;
        self.window_max += quota;
    }

    /// A hit: the entry is counted in the sketch and referenced, in whichever segment it is.
    /// Nothing moves: a referenced window or protected entry gets a second chance when it
    /// reaches its segment's old end, and a referenced probation entry is promoted to
    /// protected when it reaches probation's (`promote_referenced`).
    fn touch<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        if QUIET.contains(n.link(i).meta()) {
            // Hit again before its second chance or promotion: already referenced and
            // counted.
            return;
        }
        self.sketch.increment(n.link(i).hash);
        let meta = n.link(i).meta();
        n.link_mut(i).set_meta(meta | REFERENCED);
    }
}

impl Policy for WTinyLfu {
    fn on_insert<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.end_round();
        n.link_mut(i).set_meta(WINDOW);
        self.window.push_back(n, i);
        self.len += 1;
        self.ensure_sketch();
        let (hash, weight) = (n.link(i).hash, n.link(i).weight);
        self.sketch.increment(hash);
        self.climber.record_miss();
        self.ghost_feedback(n, hash, weight);
        self.drain_window(n, 0);
        self.climb(n);
    }

    fn on_hit<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.on_hits(n, &[i]);
    }

    fn on_hits<N: Nodes + ?Sized>(&mut self, n: &mut N, hits: &[u32]) {
        self.end_round();
        for &i in hits {
            self.climber.record_hit();
            self.touch(n, i);
        }
        self.climb(n);
    }

    fn quiet_hits(&self) -> QuietHits {
        QUIET
    }

    fn on_quiet_hits(&mut self, count: u64) {
        self.climber.record_hits(count);
    }

    fn warm<N: Nodes + ?Sized>(&self, n: &N, hits: &[u32]) {
        // A recorded hit sets a bit in the entry and counts it in the sketch (see `touch`):
        // its neighbours are not touched, so only the sketch's block is loaded ahead.
        let mut acc = 0u32;
        for &i in hits {
            let l = n.link(i);
            if !QUIET.contains(l.meta()) {
                acc ^= self.sketch.warm(l.hash);
            }
        }
        std::hint::black_box(acc);
    }

    fn on_update<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32, old_weight: u32) {
        self.end_round();
        let (meta, new) = (n.link(i).meta(), n.link(i).weight);
        self.queue(meta).reweigh(old_weight, new);
        self.touch(n, i);
        self.drain_window(n, 0);
    }

    fn on_remove<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.end_round();
        let meta = n.link(i).meta();
        self.queue(meta).unlink(n, i);
        self.len -= 1;
    }

    fn evict<N: Nodes + ?Sized>(&mut self, n: &mut N, incoming: u32) -> Option<u32> {
        let moved = self.drain_window(n, incoming);
        if moved > 0 {
            self.candidates += moved;
            self.candidate = self.probation.tail;
        }
        self.promote_referenced(n);
        let victim = self.probation.head;
        let candidate = if self.candidates > 0 {
            self.candidate
        } else {
            NIL
        };
        let evicted = if victim == NIL && candidate == NIL {
            // Probation is empty: fall back to protected, then the window.
            let e = self
                .protected
                .pop_front(n)
                .or_else(|| self.window.pop_front(n))?;
            self.len -= 1;
            return Some(e);
        } else if candidate == NIL || candidate == victim {
            if candidate != NIL {
                self.candidates -= 1;
                self.candidate = NIL;
            }
            victim
        } else {
            // A candidate is in probation, so probation has a head: `victim` is set.
            self.candidates -= 1;
            let (ch, vh) = (n.link(candidate).hash, n.link(victim).hash);
            if self.admit(ch, vh) {
                self.evicted.insert(vh);
                victim
            } else {
                self.rejected.insert(ch);
                self.candidate = n.link(candidate).prev();
                candidate
            }
        };
        self.probation.unlink(n, evicted);
        if evicted == victim && self.candidate != NIL && self.candidates > 0 {
            // The candidate stays; the next one to duel is its older neighbour.
            self.candidate = n.link(self.candidate).prev();
        }
        self.len -= 1;
        Some(evicted)
    }

    fn relocate(&mut self, from: u32, to: u32) {
        self.window.relocate(from, to);
        self.probation.relocate(from, to);
        self.protected.relocate(from, to);
        if self.candidate == from {
            self.candidate = to;
        }
    }

    fn clear(&mut self) {
        self.window.clear();
        self.probation.clear();
        self.protected.clear();
        self.sketch.clear();
        self.rejected.clear();
        self.evicted.clear();
        self.len = 0;
        self.end_round();
    }

    fn lists(&self) -> Vec<&List> {
        vec![&self.window, &self.probation, &self.protected]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::list::Link;

    /// Protected entries `0..4` in that order (0 oldest); `referenced` get the bit.
    fn protected_of(referenced: &[u32]) -> (WTinyLfu, Vec<Link>) {
        let mut p = WTinyLfu::new(100, false, 1);
        let mut links: Vec<Link> = (0..4).map(|i| Link::new(i, 1)).collect();
        for i in 0..4 {
            let meta = if referenced.contains(&i) {
                PROTECTED | REFERENCED
            } else {
                PROTECTED
            };
            links[i as usize].set_meta(meta);
            p.protected.push_back(links.as_mut_slice(), i);
        }
        (p, links)
    }

    /// The entries of the list whose head is `head`, oldest first.
    fn order(head: u32, links: &[Link]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = head;
        while i != NIL {
            // A list has each entry once: more than there are links is a cycle.
            assert!(out.len() < links.len(), "a cycle in the list: {out:?}");
            out.push(i);
            i = links[i as usize].next();
        }
        out
    }

    #[test]
    fn a_protected_hit_sets_the_bit_and_moves_nothing() {
        let (mut p, mut links) = protected_of(&[]);
        p.touch(links.as_mut_slice(), 1);
        assert_eq!(order(p.protected.head, &links), [0, 1, 2, 3]);
        assert_eq!(links[1].meta(), PROTECTED | REFERENCED);
    }

    #[test]
    fn a_referenced_protected_entry_is_not_counted_again() {
        let (mut p, mut links) = protected_of(&[]);
        p.sketch.ensure_capacity(100);
        p.touch(links.as_mut_slice(), 1);
        let once = p.sketch.frequency(links[1].hash);
        p.touch(links.as_mut_slice(), 1);
        p.touch(links.as_mut_slice(), 1);
        assert_eq!(once, 1);
        assert_eq!(p.sketch.frequency(links[1].hash), once);
        // After its second chance (settle moves 0, then 1, both referenced, to the new end,
        // unreferenced), a hit counts again.
        links[0].set_meta(PROTECTED | REFERENCED);
        p.settle(links.as_mut_slice(), PROTECTED, &mut {
            QUEUE_TRANSFER_THRESHOLD
        });
        assert_eq!(links[1].meta(), PROTECTED);
        p.touch(links.as_mut_slice(), 1);
        assert_eq!(p.sketch.frequency(links[1].hash), once + 1);
    }

    #[test]
    fn a_probation_hit_sets_the_bit_and_a_referenced_head_is_promoted_before_eviction() {
        // Probation 0..4 (0 oldest), protected 4..6, protected full (its maximum is 2).
        let mut p = WTinyLfu::new(100, false, 1);
        p.protected_max = 2;
        p.len = 6;
        let mut links: Vec<Link> = (0..6).map(|i| Link::new(i, 1)).collect();
        for i in 0..4 {
            links[i as usize].set_meta(PROBATION);
            p.probation.push_back(links.as_mut_slice(), i);
        }
        for i in 4..6 {
            links[i as usize].set_meta(PROTECTED);
            p.protected.push_back(links.as_mut_slice(), i);
        }
        p.touch(links.as_mut_slice(), 0);
        p.touch(links.as_mut_slice(), 1);
        // The hits moved nothing.
        assert_eq!(links[0].meta(), PROBATION | REFERENCED);
        assert_eq!(p.probation.head, 0);
        // Before an eviction, 0 and 1 (referenced, at the old end) go to protected, each
        // demoting protected's oldest (4, then 5) to probation's new end; 2 is the victim.
        p.promote_referenced(links.as_mut_slice());
        assert_eq!(order(p.probation.head, &links), [2, 3, 4, 5]);
        assert_eq!(order(p.protected.head, &links), [0, 1]);
        assert_eq!(links[0].meta(), PROTECTED);
        assert_eq!(links[4].meta(), PROBATION);
        assert_eq!(p.evict(links.as_mut_slice(), 1), Some(2));
    }

    #[test]
    fn only_referenced_hits_are_quiet_and_still_count_as_hits() {
        let p = WTinyLfu::new(100, false, 1);
        let quiet = p.quiet_hits();
        for meta in [WINDOW, PROBATION, PROTECTED] {
            assert!(!quiet.contains(meta), "{meta}");
        }
        assert!(quiet.contains(PROTECTED | REFERENCED));
        assert!(quiet.contains(WINDOW | REFERENCED));
        assert!(quiet.contains(PROBATION | REFERENCED));
        // The hill climber samples the hit ratio: quiet hits are hits.
        let mut p = WTinyLfu::new(100, false, 1);
        p.sketch.ensure_capacity(100);
        p.on_quiet_hits(999);
        p.climber.record_miss();
        assert_eq!(p.climber.adjustment(1000), Some(-6));
    }

    #[test]
    fn a_window_hit_sets_the_bit_and_a_referenced_entry_gets_a_second_chance() {
        // Capacity 100: a window of 1 entry.
        let mut p = WTinyLfu::new(100, false, 1);
        let mut links: Vec<Link> = (0..3).map(|i| Link::new(i, 1)).collect();
        p.on_insert(links.as_mut_slice(), 0);
        assert_eq!(p.window.head, 0);
        p.on_hit(links.as_mut_slice(), 0);
        assert_eq!(links[0].meta(), WINDOW | REFERENCED);
        // 1 enters; the window is over its size: 0 is referenced, so it stays (unreferenced)
        // and 1, now the oldest unreferenced entry, leaves for probation.
        p.on_insert(links.as_mut_slice(), 1);
        assert_eq!(links[0].meta(), WINDOW);
        assert_eq!(links[1].meta(), PROBATION);
        assert_eq!(p.window.head, 0);
        // Without a hit since, 0 leaves when 2 enters.
        p.on_insert(links.as_mut_slice(), 2);
        assert_eq!(links[0].meta(), PROBATION);
        assert_eq!(links[2].meta(), WINDOW);
    }

    #[test]
    fn referenced_entries_at_the_old_end_get_a_second_chance() {
        let (mut p, mut links) = protected_of(&[0, 1, 3]);
        p.settle(links.as_mut_slice(), PROTECTED, &mut {
            QUEUE_TRANSFER_THRESHOLD
        });
        // 0 and 1 were hit since they last reached the old end: they go to the new end,
        // unreferenced, and 2 (not hit) is next to leave; 3 keeps its bit.
        assert_eq!(order(p.protected.head, &links), [2, 3, 0, 1]);
        assert_eq!(links[0].meta(), PROTECTED);
        assert_eq!(links[1].meta(), PROTECTED);
        assert_eq!(links[3].meta(), PROTECTED | REFERENCED);
    }

    #[test]
    fn all_referenced_ends_after_one_pass() {
        let (mut p, mut links) = protected_of(&[0, 1, 2, 3]);
        p.settle(links.as_mut_slice(), PROTECTED, &mut {
            QUEUE_TRANSFER_THRESHOLD
        });
        assert_eq!(order(p.protected.head, &links), [0, 1, 2, 3]);
        assert!(links.iter().all(|l| l.meta() == PROTECTED));
    }
}
