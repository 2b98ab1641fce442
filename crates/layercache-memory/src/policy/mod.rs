//! Eviction policies: one trait, one file per algorithm.
//!
//! A policy owns only per-entry *links* (see [`list`]); keys and values stay in the shard. The
//! shard calls the policy on every insert, hit, update and removal, and asks it for a victim
//! whenever an insert needs room. Policies never allocate per entry.

pub(crate) mod list;

mod climber;
mod fifo;
mod ghost;
mod lfu;
mod lru;
mod s3fifo;
mod sieve;
mod sketch;
mod wtinylfu;

use std::fmt;
use std::str::FromStr;

use list::{List, Nodes};

/// Which eviction policy a [`Cache`](crate::Cache) uses.
///
/// All policies share one engine (table, sharding, weights); only the choice of victim differs.
/// The default, [`EvictionPolicy::WTinyLfu`], has the best hit ratio across the traces we test
/// on (see `BENCHMARKS.md`); the others are there for comparison and for workloads that are
/// known to suit them.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EvictionPolicy {
    /// Adaptive W-TinyLFU: a small LRU admission window in front of a segmented-LRU main space,
    /// with a 4-bit count-min sketch deciding admission and a hill climber sizing the window.
    ///
    /// Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy",
    /// ACM Transactions on Storage 13(4), 2017; window adaptation after Einziger et al.,
    /// "Adaptive Software Cache Management", Middleware 2018 (as in Caffeine).
    #[default]
    WTinyLfu,
    /// S3-FIFO: a small FIFO (10%) that filters one-hit wonders, a main FIFO with reinsertion,
    /// and a ghost FIFO of recently evicted keys.
    ///
    /// Yang et al., "FIFO Queues are All You Need for Cache Eviction", SOSP 2023.
    S3Fifo,
    /// SIEVE: a FIFO queue with a visited bit and a moving hand that skips (and clears)
    /// visited entries.
    ///
    /// Zhang et al., "SIEVE is Simpler than LRU: an Efficient Turn-Key Eviction Algorithm for
    /// Web Caches", NSDI 2024.
    Sieve,
    /// Least recently used.
    Lru,
    /// Least frequently used with aging: 4-bit access counts that are halved every
    /// 10 × (entries) accesses, ties broken by recency.
    ///
    /// Counts as in Shah, Mitra & Matani, "An O(1) algorithm for implementing the LFU cache
    /// eviction scheme", 2010; aging by periodic halving as in Einziger et al. (TinyLFU).
    Lfu,
    /// First in, first out: hits do not change the order.
    Fifo,
}

impl EvictionPolicy {
    /// The W-TinyLFU policy (moka's spelling).
    pub fn tiny_lfu() -> Self {
        EvictionPolicy::WTinyLfu
    }

    /// The LRU policy (moka's spelling).
    pub fn lru() -> Self {
        EvictionPolicy::Lru
    }

    /// Every policy, in the order the CLI lists them.
    pub const ALL: [EvictionPolicy; 6] = [
        EvictionPolicy::WTinyLfu,
        EvictionPolicy::S3Fifo,
        EvictionPolicy::Sieve,
        EvictionPolicy::Lru,
        EvictionPolicy::Lfu,
        EvictionPolicy::Fifo,
    ];

    /// The short name used on the command line: `wtinylfu`, `s3fifo`, `sieve`, `lru`, `lfu`,
    /// `fifo`.
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::WTinyLfu => "wtinylfu",
            EvictionPolicy::S3Fifo => "s3fifo",
            EvictionPolicy::Sieve => "sieve",
            EvictionPolicy::Lru => "lru",
            EvictionPolicy::Lfu => "lfu",
            EvictionPolicy::Fifo => "fifo",
        }
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an [`EvictionPolicy`] from a name that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown eviction policy {0:?}; expected one of wtinylfu, s3fifo, sieve, lru, lfu, fifo")]
pub struct UnknownPolicy(pub String);

impl FromStr for EvictionPolicy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Ok(match norm.as_str() {
            "wtinylfu" | "tinylfu" => EvictionPolicy::WTinyLfu,
            "s3fifo" => EvictionPolicy::S3Fifo,
            "sieve" => EvictionPolicy::Sieve,
            "lru" => EvictionPolicy::Lru,
            "lfu" => EvictionPolicy::Lfu,
            "fifo" => EvictionPolicy::Fifo,
            _ => return Err(UnknownPolicy(s.to_string())),
        })
    }
}

/// The contract between a shard and its eviction policy.
///
/// Indices are slab indices; every call but [`Policy::relocate`] and [`Policy::clear`] names an
/// entry whose [`list::Link`] (hash and weight) is already set.
pub(crate) trait Policy {
    /// A new entry joins the cache (after [`Policy::evict`] made room for it).
    fn on_insert<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32);
    /// A lookup found the entry.
    fn on_hit<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32);
    /// A batch of hits, in order (the default applies them one by one).
    fn on_hits<N: Nodes + ?Sized>(&mut self, n: &mut N, hits: &[u32]) {
        for &i in hits {
            self.on_hit(n, i);
        }
    }
    /// Loads what [`Policy::on_hits`] will touch for `hits` (neighbours, sketch blocks), so
    /// that the cache misses of a batch overlap instead of stalling one after another. Only a
    /// hint: the default does nothing.
    fn warm<N: Nodes + ?Sized>(&self, _n: &N, _hits: &[u32]) {}
    /// Which hits change nothing but the policy's hit count: a hit on an entry whose meta
    /// bits match is not recorded by the reader, only counted, and the count reaches
    /// [`Policy::on_quiet_hits`]. The default, [`QuietHits::NONE`], records every hit.
    ///
    /// The reader tests the entry's meta when the hit happens, while earlier hits may still
    /// be buffered; a policy may name a state only if no buffered hit can take an entry out
    /// of it (or if the difference is acceptable, as W-TinyLFU's docs argue).
    fn quiet_hits(&self) -> QuietHits {
        QuietHits::NONE
    }
    /// `count` hits that [`Policy::quiet_hits`] let readers count instead of record.
    fn on_quiet_hits(&mut self, _count: u64) {}
    /// The entry's value was replaced; its weight changed from `old_weight` to the link's.
    fn on_update<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32, old_weight: u32);
    /// The entry leaves the cache for a reason other than [`Policy::evict`].
    fn on_remove<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32);
    /// Picks a victim to make room for a new entry of weight `incoming`, unlinks it and
    /// returns it; `None` when the policy holds nothing.
    fn evict<N: Nodes + ?Sized>(&mut self, n: &mut N, incoming: u32) -> Option<u32>;
    /// An entry moved in the slab from `from` to `to`; its neighbours' links are fixed already.
    fn relocate(&mut self, from: u32, to: u32);
    /// Forgets every entry (the slab is being cleared).
    fn clear(&mut self);
    /// The lists that hold the live entries (for invariant checks).
    fn lists(&self) -> Vec<&List>;
}

/// The entries whose hits need no policy work: those whose meta bits, masked with `mask`,
/// equal `value` (see [`Policy::quiet_hits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QuietHits {
    pub(crate) mask: u8,
    pub(crate) value: u8,
}

impl QuietHits {
    /// No hit is quiet: every one is recorded.
    pub(crate) const NONE: QuietHits = QuietHits { mask: 0, value: 1 };
    /// Every hit is quiet (hits don't change the policy).
    pub(crate) const ALL: QuietHits = QuietHits { mask: 0, value: 0 };

    /// Whether a hit on an entry with meta bits `meta` is quiet.
    #[inline]
    pub(crate) fn contains(self, meta: u8) -> bool {
        meta & self.mask == self.value
    }
}

/// Static dispatch over the policies (an enum keeps the hot path free of virtual calls).
pub(crate) enum AnyPolicy {
    WTinyLfu(Box<wtinylfu::WTinyLfu>),
    S3Fifo(Box<s3fifo::S3Fifo>),
    Sieve(sieve::Sieve),
    Lru(lru::Lru),
    Lfu(Box<lfu::Lfu>),
    Fifo(fifo::Fifo),
}

macro_rules! dispatch {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            AnyPolicy::WTinyLfu($p) => $e,
            AnyPolicy::S3Fifo($p) => $e,
            AnyPolicy::Sieve($p) => $e,
            AnyPolicy::Lru($p) => $e,
            AnyPolicy::Lfu($p) => $e,
            AnyPolicy::Fifo($p) => $e,
        }
    };
}

impl AnyPolicy {
    /// A policy for a shard of `capacity` weight units. `weighted` tells whether entries have
    /// their own weights (then the sketch is sized by the entry count as it grows); `seed`
    /// seeds the policy's random choices.
    pub(crate) fn new(kind: EvictionPolicy, capacity: u64, weighted: bool, seed: u64) -> Self {
        match kind {
            EvictionPolicy::WTinyLfu => {
                AnyPolicy::WTinyLfu(Box::new(wtinylfu::WTinyLfu::new(capacity, weighted, seed)))
            }
            EvictionPolicy::S3Fifo => AnyPolicy::S3Fifo(Box::new(s3fifo::S3Fifo::new(capacity))),
            EvictionPolicy::Sieve => AnyPolicy::Sieve(sieve::Sieve::default()),
            EvictionPolicy::Lru => AnyPolicy::Lru(lru::Lru::default()),
            EvictionPolicy::Lfu => AnyPolicy::Lfu(Box::default()),
            EvictionPolicy::Fifo => AnyPolicy::Fifo(fifo::Fifo::default()),
        }
    }
}

impl Policy for AnyPolicy {
    #[inline]
    fn on_insert<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        dispatch!(self, p => p.on_insert(n, i))
    }
    #[inline]
    fn on_hit<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        dispatch!(self, p => p.on_hit(n, i))
    }
    #[inline]
    fn on_hits<N: Nodes + ?Sized>(&mut self, n: &mut N, hits: &[u32]) {
        dispatch!(self, p => p.on_hits(n, hits))
    }
    #[inline]
    fn warm<N: Nodes + ?Sized>(&self, n: &N, hits: &[u32]) {
        dispatch!(self, p => p.warm(n, hits))
    }
    fn quiet_hits(&self) -> QuietHits {
        dispatch!(self, p => p.quiet_hits())
    }
    #[inline]
    fn on_quiet_hits(&mut self, count: u64) {
        dispatch!(self, p => p.on_quiet_hits(count))
    }
    #[inline]
    fn on_update<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32, old_weight: u32) {
        dispatch!(self, p => p.on_update(n, i, old_weight))
    }
    #[inline]
    fn on_remove<N: Nodes + ?Sized>(&mut self, n: &mut N, i: u32) {
        dispatch!(self, p => p.on_remove(n, i))
    }
    #[inline]
    fn evict<N: Nodes + ?Sized>(&mut self, n: &mut N, incoming: u32) -> Option<u32> {
        dispatch!(self, p => p.evict(n, incoming))
    }
    #[inline]
    fn relocate(&mut self, from: u32, to: u32) {
        dispatch!(self, p => p.relocate(from, to))
    }
    fn clear(&mut self) {
        dispatch!(self, p => p.clear())
    }
    fn lists(&self) -> Vec<&List> {
        dispatch!(self, p => p.lists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in EvictionPolicy::ALL {
            assert_eq!(p.name().parse::<EvictionPolicy>().unwrap(), p);
        }
        assert_eq!(
            "W-TinyLFU".parse::<EvictionPolicy>().unwrap(),
            EvictionPolicy::WTinyLfu
        );
        let err = "arc".parse::<EvictionPolicy>().unwrap_err();
        assert!(err.to_string().contains("\"arc\""), "{err}");
    }

    #[test]
    fn quiet_hits_match_the_named_states_only() {
        for meta in 0..16 {
            assert!(!QuietHits::NONE.contains(meta));
            assert!(QuietHits::ALL.contains(meta));
        }
        let lru = AnyPolicy::new(EvictionPolicy::Lru, 10, false, 1);
        assert_eq!(lru.quiet_hits(), QuietHits::NONE);
        let fifo = AnyPolicy::new(EvictionPolicy::Fifo, 10, false, 1);
        assert_eq!(fifo.quiet_hits(), QuietHits::ALL);
        // SIEVE: visited entries only; S3-FIFO: a saturated counter, in either queue.
        let sieve = AnyPolicy::new(EvictionPolicy::Sieve, 10, false, 1).quiet_hits();
        assert_eq!((0..16).filter(|&m| sieve.contains(m)).count(), 8);
        assert!(sieve.contains(1) && !sieve.contains(0));
        let s3 = AnyPolicy::new(EvictionPolicy::S3Fifo, 10, false, 1).quiet_hits();
        assert!(s3.contains(0b011) && s3.contains(0b111));
        assert!(!s3.contains(0b010) && !s3.contains(0b110));
    }
}
