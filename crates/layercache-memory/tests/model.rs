//! Model-based tests: random operation sequences run against a one-shard cache (fixed-seed
//! hasher) and against a small, obviously-correct reference model of each deterministic policy
//! (LRU, FIFO, SIEVE, S3-FIFO, LFU), unit-weighted and weighted. Every `get` hit/miss (and
//! value), every insert/remove outcome, the full contents (`contains_key` of every key), the
//! entry count and the weighted size must agree after every operation.
//!
//! W-TinyLFU is not modelled exactly (sketch, hill climber, random admission); see
//! `invariants.rs` for the checks that cover it.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;

use common::{build, config, op, outcome, Fixed, Op, Outcome, K, V};
use layercache_memory::EvictionPolicy;
use proptest::prelude::*;

const NKEYS: u32 = 32;

// ---------------------------------------------------------------------------------------------
// Reference models
// ---------------------------------------------------------------------------------------------

type Weights = BTreeMap<K, (V, u32)>;

/// The victim choice of one policy; the shell below does storage, weights and capacity.
trait ModelPolicy {
    fn new(cap: u64) -> Self;
    /// A key that is not cached is about to be inserted, before room is made for it.
    fn on_miss(&mut self, _k: K) {}
    fn on_insert(&mut self, k: K);
    fn on_hit(&mut self, k: K);
    fn on_update(&mut self, k: K);
    fn on_remove(&mut self, k: K);
    fn evict(&mut self, entries: &Weights) -> Option<K>;
    fn clear(&mut self);
}

/// Storage and capacity: a new key evicts until `used + w <= cap`; a replace that fits in
/// place is an access; a replace that needs room removes the old entry and enters as a new
/// key (so it never evicts itself); an entry heavier than `cap` is not stored and removes the
/// old value.
struct Model<P> {
    cap: u64,
    used: u64,
    entries: Weights,
    p: P,
}

impl<P: ModelPolicy> Model<P> {
    fn new(cap: u64) -> Self {
        Model {
            cap,
            used: 0,
            entries: BTreeMap::new(),
            p: P::new(cap),
        }
    }
    fn get(&mut self, k: K) -> Option<V> {
        let v = self.entries.get(&k)?.0;
        self.p.on_hit(k);
        Some(v)
    }
    fn take(&mut self, k: K) -> Option<V> {
        let (v, w) = self.entries.remove(&k)?;
        self.used -= u64::from(w);
        Some(v)
    }
    fn make_room(&mut self, incoming: u32) {
        while self.used + u64::from(incoming) > self.cap {
            let Some(victim) = self.p.evict(&self.entries) else {
                break;
            };
            self.take(victim).expect("model evicted an absent key");
        }
    }
    fn insert(&mut self, k: K, v: V, w: u32) -> Outcome {
        if let Some(&(old, old_w)) = self.entries.get(&k) {
            if u64::from(w) > self.cap {
                self.p.on_remove(k);
                self.take(k);
                return Outcome::Rejected;
            }
            if self.used - u64::from(old_w) + u64::from(w) <= self.cap {
                self.entries.insert(k, (v, w));
                self.used = self.used - u64::from(old_w) + u64::from(w);
                self.p.on_update(k);
                return Outcome::Replaced(old);
            }
            self.p.on_remove(k);
            self.take(k);
            self.p.on_miss(k);
            self.make_room(w);
            self.entries.insert(k, (v, w));
            self.used += u64::from(w);
            self.p.on_insert(k);
            return Outcome::Replaced(old);
        }
        if u64::from(w) > self.cap {
            return Outcome::Rejected;
        }
        self.p.on_miss(k);
        self.make_room(w);
        self.entries.insert(k, (v, w));
        self.used += u64::from(w);
        self.p.on_insert(k);
        Outcome::New
    }
    fn remove(&mut self, k: K) -> Option<V> {
        if self.entries.contains_key(&k) {
            self.p.on_remove(k);
        }
        self.take(k)
    }
    fn clear(&mut self) {
        self.entries.clear();
        self.used = 0;
        self.p.clear();
    }
}

fn remove_from(q: &mut VecDeque<K>, k: K) -> bool {
    match q.iter().position(|&x| x == k) {
        Some(i) => {
            q.remove(i);
            true
        }
        None => false,
    }
}

/// LRU: front = least recently used; hits and replaces move to the back.
struct LruModel(VecDeque<K>);

impl ModelPolicy for LruModel {
    fn new(_: u64) -> Self {
        LruModel(VecDeque::new())
    }
    fn on_insert(&mut self, k: K) {
        self.0.push_back(k);
    }
    fn on_hit(&mut self, k: K) {
        assert!(remove_from(&mut self.0, k));
        self.0.push_back(k);
    }
    fn on_update(&mut self, k: K) {
        self.on_hit(k);
    }
    fn on_remove(&mut self, k: K) {
        assert!(remove_from(&mut self.0, k));
    }
    fn evict(&mut self, _: &Weights) -> Option<K> {
        self.0.pop_front()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// FIFO: insertion order; hits and replaces change nothing.
struct FifoModel(VecDeque<K>);

impl ModelPolicy for FifoModel {
    fn new(_: u64) -> Self {
        FifoModel(VecDeque::new())
    }
    fn on_insert(&mut self, k: K) {
        self.0.push_back(k);
    }
    fn on_hit(&mut self, _: K) {}
    fn on_update(&mut self, _: K) {}
    fn on_remove(&mut self, k: K) {
        assert!(remove_from(&mut self.0, k));
    }
    fn evict(&mut self, _: &Weights) -> Option<K> {
        self.0.pop_front()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
}

/// SIEVE: `(key, visited)` oldest first, and the hand as the key it points at (`None` = start
/// at the oldest).
struct SieveModel {
    q: Vec<(K, bool)>,
    hand: Option<K>,
}

impl SieveModel {
    fn pos(&self, k: K) -> usize {
        self.q.iter().position(|e| e.0 == k).unwrap()
    }
}

impl ModelPolicy for SieveModel {
    fn new(_: u64) -> Self {
        SieveModel {
            q: Vec::new(),
            hand: None,
        }
    }
    fn on_insert(&mut self, k: K) {
        self.q.push((k, false));
    }
    fn on_hit(&mut self, k: K) {
        let i = self.pos(k);
        self.q[i].1 = true;
    }
    fn on_update(&mut self, k: K) {
        self.on_hit(k);
    }
    fn on_remove(&mut self, k: K) {
        let i = self.pos(k);
        if self.hand == Some(k) {
            self.hand = self.q.get(i + 1).map(|e| e.0);
        }
        self.q.remove(i);
    }
    fn evict(&mut self, _: &Weights) -> Option<K> {
        if self.q.is_empty() {
            return None;
        }
        let mut i = self.hand.map_or(0, |h| self.pos(h));
        while self.q[i].1 {
            self.q[i].1 = false;
            i = (i + 1) % self.q.len();
        }
        self.hand = self.q.get(i + 1).map(|e| e.0);
        Some(self.q.remove(i).0)
    }
    fn clear(&mut self) {
        self.q.clear();
        self.hand = None;
    }
}

/// S3-FIFO as libCacheSim's `S3FIFOv0.c` (which src/policy/s3fifo.rs follows): a small FIFO
/// (a tenth of the capacity, at least 1), a main FIFO with 2-bit counters, and a ghost FIFO of
/// the keys evicted from small, at most 9/10 of the capacity in weight. As in libCacheSim, a
/// returning key leaves the ghost when it is looked up, before room is made for it (here:
/// [`ModelPolicy::on_miss`]), and a key that was remembered enters main. The ghost is keyed by
/// key instead of by 32-bit hash: `s3fifo_model_matches` first asserts that the hashes of the
/// key space do not collide.
struct S3Model {
    small: VecDeque<K>,
    main: VecDeque<K>,
    freq: HashMap<K, u8>,
    main_max: u64,
    ghost: VecDeque<(K, u32)>,
    ghost_max: u64,
    hit_on_ghost: bool,
}

impl S3Model {
    /// libCacheSim's FIFO `get` on the ghost: a key not in it is inserted after evicting the
    /// oldest keys until it fits; a key heavier than the ghost is not.
    fn ghost_push(&mut self, k: K, w: u32) {
        if self.ghost.iter().any(|&(g, _)| g == k) || u64::from(w) > self.ghost_max {
            return;
        }
        let weight = |g: &VecDeque<(K, u32)>| g.iter().map(|&(_, w)| u64::from(w)).sum::<u64>();
        while weight(&self.ghost) + u64::from(w) > self.ghost_max {
            self.ghost.pop_front();
        }
        self.ghost.push_back((k, w));
    }
    fn evict_small(&mut self, e: &Weights) -> Option<K> {
        while let Some(t) = self.small.pop_front() {
            if self.freq[&t] >= 2 {
                self.freq.insert(t, 0);
                self.main.push_back(t);
            } else {
                self.ghost_push(t, e[&t].1);
                self.freq.remove(&t);
                return Some(t);
            }
        }
        self.evict_main()
    }
    fn evict_main(&mut self) -> Option<K> {
        while let Some(t) = self.main.pop_front() {
            let f = self.freq[&t];
            if f > 0 {
                self.freq.insert(t, f - 1);
                self.main.push_back(t);
            } else {
                self.freq.remove(&t);
                return Some(t);
            }
        }
        None
    }
}

impl ModelPolicy for S3Model {
    fn new(cap: u64) -> Self {
        let small_max = (cap / 10).max(1);
        S3Model {
            small: VecDeque::new(),
            main: VecDeque::new(),
            freq: HashMap::new(),
            main_max: cap.saturating_sub(small_max),
            ghost: VecDeque::new(),
            ghost_max: cap * 9 / 10,
            hit_on_ghost: false,
        }
    }
    fn on_miss(&mut self, k: K) {
        let before = self.ghost.len();
        self.ghost.retain(|&(g, _)| g != k);
        self.hit_on_ghost = self.ghost.len() < before;
    }
    fn on_insert(&mut self, k: K) {
        if std::mem::take(&mut self.hit_on_ghost) {
            self.main.push_back(k);
        } else {
            self.small.push_back(k);
        }
        self.freq.insert(k, 0);
    }
    fn on_hit(&mut self, k: K) {
        let f = self.freq.get_mut(&k).unwrap();
        *f = (*f + 1).min(3);
    }
    fn on_update(&mut self, k: K) {
        self.on_hit(k);
    }
    fn on_remove(&mut self, k: K) {
        assert!(remove_from(&mut self.small, k) || remove_from(&mut self.main, k));
        self.freq.remove(&k);
    }
    fn evict(&mut self, e: &Weights) -> Option<K> {
        let main_weight: u64 = self.main.iter().map(|k| u64::from(e[k].1)).sum();
        if main_weight > self.main_max || self.small.is_empty() {
            self.evict_main().or_else(|| self.evict_small(e))
        } else {
            self.evict_small(e)
        }
    }
    fn clear(&mut self) {
        self.small.clear();
        self.main.clear();
        self.freq.clear();
        self.ghost.clear();
        self.hit_on_ghost = false;
    }
}

/// LFU with aging: each key has a count (1 on insert, +1 per hit or replace, at most 15) and
/// a recency stamp (renewed by every count change). The victim has the lowest count, then the
/// oldest stamp. Every `max(10 * len, 64)` policy ticks (insert, hit, replace) all counts are
/// halved; keys are re-stamped in (old count, old stamp) order, which is where the halved
/// buckets leave them (old bucket `2c` before old bucket `2c + 1`).
struct LfuModel {
    e: HashMap<K, (u8, u64)>,
    stamp: u64,
    ops: u64,
}

impl LfuModel {
    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }
    fn tick(&mut self) {
        self.ops += 1;
        if self.ops >= (10 * self.e.len() as u64).max(64) {
            self.ops = 0;
            let mut all: Vec<(K, u8, u64)> = self.e.iter().map(|(&k, &(c, s))| (k, c, s)).collect();
            all.sort_by_key(|&(_, c, s)| (c, s));
            for (k, c, _) in all {
                let s = self.next_stamp();
                self.e.insert(k, (c / 2, s));
            }
        }
    }
}

impl ModelPolicy for LfuModel {
    fn new(_: u64) -> Self {
        LfuModel {
            e: HashMap::new(),
            stamp: 0,
            ops: 0,
        }
    }
    fn on_insert(&mut self, k: K) {
        let s = self.next_stamp();
        self.e.insert(k, (1, s));
        self.tick();
    }
    fn on_hit(&mut self, k: K) {
        let s = self.next_stamp();
        let c = self.e[&k].0;
        self.e.insert(k, ((c + 1).min(15), s));
        self.tick();
    }
    fn on_update(&mut self, k: K) {
        self.on_hit(k);
    }
    fn on_remove(&mut self, k: K) {
        self.e.remove(&k).unwrap();
    }
    fn evict(&mut self, _: &Weights) -> Option<K> {
        let (&k, _) = self.e.iter().min_by_key(|(_, &(c, s))| (c, s))?;
        self.e.remove(&k);
        Some(k)
    }
    fn clear(&mut self) {
        self.e.clear();
        self.ops = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Runs `ops` on a one-shard cache and on `Model<P>`, comparing every result and the contents.
fn check_model<P: ModelPolicy>(
    policy: EvictionPolicy,
    cap: u64,
    weighted: bool,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let cache = build(policy, cap, 1, weighted);
    let mut model = Model::<P>::new(cap);
    for (step, op) in ops.iter().enumerate() {
        let serial = step as u64 + 1;
        match *op {
            Op::Get(k) => {
                let (c, m) = (cache.get(&k), model.get(k));
                prop_assert_eq!(c, m, "step {}: {:?}", step, op);
            }
            Op::Insert(k, raw) => {
                let w = if weighted {
                    1 + raw % (cap as u32 + 1)
                } else {
                    1
                };
                let v = serial << 8 | V::from(w);
                let (c, m) = (outcome(cache.try_insert(k, v)), model.insert(k, v, w));
                prop_assert_eq!(c, m, "step {}: {:?} (weight {})", step, op, w);
            }
            Op::Remove(k) => {
                let (c, m) = (cache.remove(&k), model.remove(k));
                prop_assert_eq!(c, m, "step {}: {:?}", step, op);
            }
            Op::Clear => {
                cache.invalidate_all();
                model.clear();
            }
        }
        for k in 0..NKEYS {
            prop_assert_eq!(
                cache.contains_key(&k),
                model.entries.contains_key(&k),
                "step {}: {:?}: contents differ at key {}",
                step,
                op,
                k
            );
        }
        prop_assert_eq!(
            cache.entry_count(),
            model.entries.len() as u64,
            "step {}",
            step
        );
        prop_assert_eq!(cache.weighted_size(), model.used, "step {}", step);
        if let Err(e) = cache.validate() {
            return Err(TestCaseError::fail(format!("step {step}: {op:?}: {e}")));
        }
    }
    Ok(())
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(8, NKEYS), 0..250)
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn lru_model_matches(cap in 1..16u64, ops in ops()) {
        check_model::<LruModel>(EvictionPolicy::Lru, cap, false, &ops)?;
    }

    #[test]
    fn lru_weighted_model_matches(cap in 1..16u64, ops in ops()) {
        check_model::<LruModel>(EvictionPolicy::Lru, cap, true, &ops)?;
    }

    #[test]
    fn fifo_model_matches(cap in 1..16u64, ops in ops()) {
        check_model::<FifoModel>(EvictionPolicy::Fifo, cap, false, &ops)?;
    }

    #[test]
    fn fifo_weighted_model_matches(cap in 1..16u64, ops in ops()) {
        check_model::<FifoModel>(EvictionPolicy::Fifo, cap, true, &ops)?;
    }

    #[test]
    fn sieve_model_matches(cap in 1..16u64, ops in ops()) {
        check_model::<SieveModel>(EvictionPolicy::Sieve, cap, false, &ops)?;
    }

    #[test]
    fn sieve_weighted_model_matches(cap in 1..16u64, ops in ops()) {
        check_model::<SieveModel>(EvictionPolicy::Sieve, cap, true, &ops)?;
    }

    #[test]
    fn s3fifo_model_matches(cap in 1..16u64, ops in ops()) {
        assert_hashes_distinct();
        check_model::<S3Model>(EvictionPolicy::S3Fifo, cap, false, &ops)?;
    }

    #[test]
    fn s3fifo_weighted_model_matches(cap in 1..16u64, ops in ops()) {
        assert_hashes_distinct();
        check_model::<S3Model>(EvictionPolicy::S3Fifo, cap, true, &ops)?;
    }

    #[test]
    fn lfu_model_matches(cap in 1..16u64, ops in ops()) {
        check_model::<LfuModel>(EvictionPolicy::Lfu, cap, false, &ops)?;
    }

    #[test]
    fn lfu_weighted_model_matches(cap in 1..16u64, ops in ops()) {
        check_model::<LfuModel>(EvictionPolicy::Lfu, cap, true, &ops)?;
    }
}

/// The S3-FIFO model keys its ghost by key; the engine keys it by the low 32 bits of the hash.
fn assert_hashes_distinct() {
    let hashes: HashSet<u32> = (0..NKEYS)
        .map(|k| Fixed::default().hash_one(k) as u32)
        .collect();
    assert_eq!(
        hashes.len(),
        NKEYS as usize,
        "32-bit hashes of the key space collide"
    );
}

#[test]
fn lfu_keeps_the_frequent_key_and_lru_does_not() {
    // A small deterministic example of the difference between the two policies.
    for (policy, kept) in [(EvictionPolicy::Lfu, true), (EvictionPolicy::Lru, false)] {
        let cache = build(policy, 3, 1, false);
        cache.insert(0, 0);
        for _ in 0..5 {
            assert_eq!(cache.get(&0), Some(0));
        }
        for k in 1..=3 {
            cache.insert(k, 0);
        }
        assert_eq!(cache.contains_key(&0), kept, "{policy}");
        assert_eq!(cache.entry_count(), 3, "{policy}");
    }
}
