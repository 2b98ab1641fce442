//! Adaptive W-TinyLFU (Einziger, Friedman & Manes, ACM ToS 2017; window adaptation from
//! Einziger et al., Middleware 2018), structured as in Caffeine.
//!
//! - New entries enter an LRU **window** (initially 1% of capacity).
//! - Entries leaving the window become *candidates* at the new end of the **probation**
//!   segment of a segmented-LRU main space. When room is needed, a candidate duels the
//!   probation LRU *victim*: the one with the lower TinyLFU frequency estimate
//!   ([`FrequencySketch`]) is evicted. Ties go to the victim, except that a warm candidate
//!   (estimate above 5) is admitted with probability 1/128, so an attacker cannot pin hot
//!   victims by colliding hashes (hash flooding).
//! - A hit in probation promotes to **protected** (80% of main); protected overflow is demoted
//!   back to probation.
//! - A [`HillClimber`] moves capacity between window and protected to follow the workload:
//!   recency-heavy traces get a large window, frequency-heavy ones a small one.

use super::climber::HillClimber;
use super::list::{List, Nodes, NIL};
use super::sketch::FrequencySketch;
use super::Policy;

const WINDOW: u8 = 0;
const PROBATION: u8 = 1;
const PROTECTED: u8 = 2;

const PERCENT_MAIN: f64 = 0.99;
const PERCENT_MAIN_PROTECTED: f64 = 0.80;
/// Caps the entries moved between segments by one window adjustment.
const QUEUE_TRANSFER_THRESHOLD: usize = 1000;
/// A candidate whose estimate is at most this is never admitted on a tie.
const ADMIT_HASHDOS_THRESHOLD: u8 = 5;

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
    /// Candidates moved out of the window in the current eviction round.
    candidates: u32,
    /// The next candidate to duel (walks from probation's new end towards its old end).
    candidate: u32,
    rng: u64,
    ghost: std::collections::VecDeque<u32>,
    ghost_set: std::collections::HashMap<u32, u32>,
    ghost_max: usize,
    /// The incoming key was counted by `admit` already.
    counted: bool,
}

impl WTinyLfu {
    pub(crate) fn new(maximum: u64, weighted: bool, seed: u64) -> Self {
        let pm: f64 = std::env::var("LC_WIN").ok().and_then(|v| v.parse::<f64>().ok()).map(|w| 1.0 - w).unwrap_or(PERCENT_MAIN);
        let window_max = maximum - (pm * maximum as f64) as u64;
        let pp: f64 = std::env::var("LC_PROT").ok().and_then(|v| v.parse().ok()).unwrap_or(PERCENT_MAIN_PROTECTED);
        let mut protected_max = (pp * (maximum - window_max) as f64) as u64;
        let mut window_max = window_max;
        if std::env::var("LC_MOKA").is_ok() { window_max = 0; protected_max = std::env::var("LC_MOKAP").ok().and_then(|v| v.parse::<f64>().ok()).map_or(0, |p| (p * maximum as f64) as u64); }
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
            candidates: 0,
            candidate: NIL,
            rng: seed | 1,
            counted: false,
            ghost: Default::default(),
            ghost_set: Default::default(),
            ghost_max: (std::env::var("LC_GHOST").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) * maximum as f64) as usize,
        }
    }

    fn total_weight(&self) -> u64 {
        self.window.weight + self.probation.weight + self.protected.weight
    }

    fn queue(&mut self, meta: u8) -> &mut List {
        match meta {
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

    fn ghost_push(&mut self, h: u32) {
        if self.ghost_max == 0 { return; }
        self.ghost.push_back(h);
        *self.ghost_set.entry(h).or_insert(0) += 1;
        while self.ghost.len() > self.ghost_max {
            let o = self.ghost.pop_front().unwrap();
            let c = self.ghost_set.get_mut(&o).unwrap();
            *c -= 1;
            if *c == 0 { self.ghost_set.remove(&o); }
        }
    }

    fn admit(&mut self, candidate: u32, victim: u32) -> bool {
        let victim_freq = self.sketch.frequency(victim);
        let candidate_freq = self.sketch.frequency(candidate);
        if candidate_freq <= victim_freq && self.ghost_max > 0 && self.ghost_set.contains_key(&candidate) {
            return true;
        }
        let margin: u8 = std::env::var("LC_MARGIN").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        if candidate_freq > victim_freq.saturating_add(margin) {
            true
        } else if candidate_freq <= ADMIT_HASHDOS_THRESHOLD || std::env::var("LC_NORAND").is_ok() {
            false
        } else {
            self.random() & 127 == 0
        }
    }

    fn demote_protected<N: Nodes + ?Sized>(&mut self, n: &mut N) {
        for _ in 0..QUEUE_TRANSFER_THRESHOLD {
            if self.protected.weight <= self.protected_max {
                break;
            }
            let Some(d) = self.protected.pop_front(n) else {
                break;
            };
            n.link_mut(d).set_meta(PROBATION);
            self.probation.push_back(n, d);
        }
    }

    /// Moves window entries to probation while the window (plus `incoming`) is over its
    /// maximum; returns how many moved.
    fn drain_window<N: Nodes + ?Sized>(&mut self, n: &mut N, incoming: u32) -> u32 {
        let mut moved = 0;
        while self.window.weight + u64::from(incoming) > self.window_max {
            let Some(c) = self.window.pop_front(n) else {
                break;
            };
            n.link_mut(c).set_meta(PROBATION);
            self.probation.push_back(n, c);
            moved += 1;
        }
        moved
    }

    fn climb<N: Nodes + ?Sized>(&mut self, n: &mut N) {
        if !self.sketch.is_initialized() {
            self.climber.reset_sample();
            return;
        }
        if std::env::var("LC_NOCLIMB").is_ok() { return; }
        let mult: f64 = std::env::var("LC_SAMPLE").ok().and_then(|v| v.parse().ok()).unwrap_or(10.0);
        let sample = (self.maximum as f64 * mult) as u64;
        match self.climber.adjustment(sample) {
            Some(a) if a > 0 => self.increase_window(n, a.unsigned_abs()),
            Some(a) if a < 0 => self.decrease_window(n, a.unsigned_abs()),
            _ => {}
        }
    }

    fn increase_window<N: Nodes + ?Sized>(&mut self, n: &mut N, amount: u64) {
        if self.protected_max == 0 {
            return;
        }
        let mut quota = amount.min(self.protected_max);
        self.protected_max -= quota;
        self.window_max += quota;
        self.demote_protected(n);
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

    fn touch<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.sketch.increment(n.link(i).hash);
        match n.link(i).meta() {
            WINDOW => self.window.move_to_back(n, i),
            PROBATION => {
                self.probation.unlink(n, i);
                n.link_mut(i).set_meta(PROTECTED);
                self.protected.push_back(n, i);
                self.demote_protected(n);
            }
            _ => self.protected.move_to_back(n, i),
        }
    }
}

impl Policy for WTinyLfu {
    fn admit<N: Nodes + ?Sized>(&mut self, n: &mut N, hash: u32, weight: u32) -> bool {
        if self.window_max > 0 {
            return true;
        }
        self.sketch.increment(hash);
        self.counted = true;
        let candidate = self.sketch.frequency(hash);
        let (mut w, mut f, mut v) = (0u64, 0u32, self.probation.head);
        while w < u64::from(weight) && v != NIL {
            w += u64::from(n.link(v).weight);
            f += u32::from(self.sketch.frequency(n.link(v).hash));
            v = n.link(v).next();
        }
        let ok = w >= u64::from(weight) && u32::from(candidate) > f;
        if !ok {
            self.counted = false;
            self.climber.record_miss();
        }
        ok
    }

    fn on_insert<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.end_round();
        n.link_mut(i).set_meta(WINDOW);
        self.window.push_back(n, i);
        self.len += 1;
        if self.total_weight() >= self.maximum / 2 {
            // Size the sketch lazily, once the cache is half full (as Caffeine does).
            self.sketch.ensure_capacity(if self.weighted {
                self.len
            } else {
                self.maximum
            });
        }
        if !std::mem::take(&mut self.counted) {
            self.sketch.increment(n.link(i).hash);
        }
        self.climber.record_miss();
        self.drain_window(n, 0);
        self.climb(n);
    }

    fn on_hit<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        self.end_round();
        self.climber.record_hit();
        self.touch(n, i);
        self.climb(n);
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
        } else if victim == NIL {
            self.candidates -= 1;
            self.candidate = n.link(candidate).prev();
            candidate
        } else {
            self.candidates -= 1;
            let (ch, vh) = (n.link(candidate).hash, n.link(victim).hash);
            if self.admit(ch, vh) {
                victim
            } else {
                self.ghost_push(ch);
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
        self.len = 0;
        self.end_round();
    }

    fn lists(&self) -> Vec<&List> {
        vec![&self.window, &self.probation, &self.protected]
    }
}
