//! Belady's OPT: the offline optimal replacement policy, as a reference upper
//! bound for hit ratios. See the [crate docs](crate#beladys-opt) for the
//! definitions and how they were validated.

use std::collections::{BinaryHeap, HashMap};

use crate::Request;

/// Next-use index of a request whose key is never requested again.
const NEVER: usize = usize::MAX;

/// The outcome of an OPT simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct OptResult {
    /// Requests that hit.
    pub hits: u64,
    /// Requests simulated.
    pub requests: u64,
}

impl OptResult {
    /// Requests that missed.
    pub fn misses(&self) -> u64 {
        self.requests - self.hits
    }

    /// `hits / requests`, or 0 for an empty trace.
    pub fn hit_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.hits as f64 / self.requests as f64
        }
    }
}

/// Whether a missed object must be admitted into the cache.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Admission {
    /// Demand paging: every missed object (that fits at all) is inserted,
    /// evicting the cached objects with the farthest next use until it fits.
    /// This is Belady's MIN as usually simulated (libCacheSim, the README's
    /// oracle numbers) and the default.
    #[default]
    Always,
    /// The missed object may be bypassed: it is inserted only if every object
    /// that would have to be evicted for it is needed later than it is
    /// (objects never requested again are never admitted into a full cache).
    /// With unit sizes this is the true offline optimum, at least as good as
    /// [`Admission::Always`]; it bounds policies with admission control
    /// (e.g. TinyLFU). With sizes it is a heuristic like the other.
    Bypass,
}

/// Runs Belady's OPT over `requests` with the given capacity, with demand
/// paging ([`Admission::Always`]).
///
/// * `weighted = false`: `capacity` counts entries and sizes are ignored.
/// * `weighted = true`: `capacity` counts bytes (sizes from the trace); the
///   policy is the size-unaware "evict the farthest next use until the object
///   fits" of libCacheSim, and an object larger than the whole capacity is a
///   miss and not inserted.
///
/// To simulate several capacities over one trace, build a [`Belady`] once.
pub fn belady(requests: &[Request], capacity: u64, weighted: bool) -> OptResult {
    Belady::new(requests).simulate(capacity, weighted)
}

/// A trace prepared for OPT simulation (keys mapped to dense ids and the
/// next use of every request precomputed), reusable across capacities.
///
/// Preparation is one backward pass with a hash map; each simulation is
/// `O(n log n)` with a max-heap of `(next use, id)` and lazy deletion.
#[derive(Debug, Clone)]
pub struct Belady {
    /// Dense id of each request's key.
    ids: Vec<u32>,
    /// Size of each request.
    sizes: Vec<u32>,
    /// Index of the next request for the same key, or [`NEVER`].
    next: Vec<usize>,
    /// Number of distinct keys.
    distinct: usize,
}

impl Belady {
    /// Prepares `requests` for simulation.
    ///
    /// # Panics
    /// If the trace has more than `u32::MAX` distinct keys.
    pub fn new(requests: &[Request]) -> Belady {
        let mut dense: HashMap<u64, u32> = HashMap::new();
        let ids: Vec<u32> = requests
            .iter()
            .map(|r| {
                let n = dense.len();
                *dense
                    .entry(r.key)
                    .or_insert_with(|| u32::try_from(n).expect("more than u32::MAX distinct keys"))
            })
            .collect();
        let distinct = dense.len();
        drop(dense);
        let mut last = vec![NEVER; distinct];
        let mut next = vec![NEVER; ids.len()];
        for (i, &id) in ids.iter().enumerate().rev() {
            next[i] = last[id as usize];
            last[id as usize] = i;
        }
        Belady {
            ids,
            sizes: requests.iter().map(|r| r.size).collect(),
            next,
            distinct,
        }
    }

    /// The number of requests.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the trace is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The number of distinct keys.
    pub fn distinct_keys(&self) -> usize {
        self.distinct
    }

    /// Simulates OPT at `capacity` with [`Admission::Always`]; see [`belady`].
    pub fn simulate(&self, capacity: u64, weighted: bool) -> OptResult {
        self.simulate_with(capacity, weighted, Admission::Always)
    }

    /// Simulates OPT at `capacity` (entries, or bytes when `weighted`) with
    /// the given admission rule.
    ///
    /// A hit only updates the object's next use; its size stays the one it
    /// was inserted with (as in libCacheSim), even if the trace later gives
    /// the same key another size.
    pub fn simulate_with(&self, capacity: u64, weighted: bool, admission: Admission) -> OptResult {
        let mut result = OptResult {
            hits: 0,
            requests: self.ids.len() as u64,
        };
        // `cached[id]` is the next use of a cached key, or `None`.
        let mut cached: Vec<Option<usize>> = vec![None; self.distinct];
        let mut cached_size: Vec<u32> = if weighted {
            vec![0; self.distinct]
        } else {
            Vec::new()
        };
        let size_of = |cached_size: &[u32], id: u32| {
            if weighted {
                u64::from(cached_size[id as usize])
            } else {
                1
            }
        };
        let mut heap = Heap::default();
        let mut victims: Vec<(usize, u32)> = Vec::new();
        let mut used = 0u64;
        let mut count = 0u64;
        for (i, (&id, &next)) in self.ids.iter().zip(&self.next).enumerate() {
            if cached[id as usize].is_some() {
                result.hits += 1;
                cached[id as usize] = Some(next);
                heap.push(next, id);
                continue;
            }
            let size = if weighted {
                u64::from(self.sizes[i])
            } else {
                1
            };
            if size > capacity {
                continue;
            }
            // Take the farthest-next-use victims until the object fits.
            victims.clear();
            let mut freed = 0u64;
            while used - freed + size > capacity {
                let Some(top) = heap.pop_valid(&cached) else {
                    break;
                };
                freed += size_of(&cached_size, top.1);
                victims.push(top);
                if admission == Admission::Bypass && top.0 <= next {
                    break;
                }
            }
            if admission == Admission::Bypass && victims.iter().any(|&(far, _)| far <= next) {
                for &(far, victim) in &victims {
                    heap.push(far, victim);
                }
                continue;
            }
            for &(_, victim) in &victims {
                cached[victim as usize] = None;
                used -= size_of(&cached_size, victim);
                count -= 1;
            }
            cached[id as usize] = Some(next);
            if weighted {
                cached_size[id as usize] = self.sizes[i];
            }
            used += size;
            count += 1;
            heap.push(next, id);
            heap.maybe_compact(&cached, count);
        }
        result
    }
}

/// A max-heap of `(next use, id)` with lazy deletion: an entry is live only
/// while `cached[id] == Some(next use)`. Every cached key has a live entry.
#[derive(Default)]
struct Heap {
    heap: BinaryHeap<(usize, u32)>,
}

impl Heap {
    fn push(&mut self, next: usize, id: u32) {
        self.heap.push((next, id));
    }

    /// Removes and returns the live entry with the farthest next use,
    /// discarding stale entries on the way; `None` if no key is cached.
    fn pop_valid(&mut self, cached: &[Option<usize>]) -> Option<(usize, u32)> {
        while let Some((next, id)) = self.heap.pop() {
            if cached[id as usize] == Some(next) {
                return Some((next, id));
            }
        }
        None
    }

    /// Rebuilds the heap without stale entries once they dominate it.
    fn maybe_compact(&mut self, cached: &[Option<usize>], live: u64) {
        if self.heap.len() as u64 > 2 * live + 1024 {
            self.heap
                .retain(|&(next, id)| cached[id as usize] == Some(next));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn unit(keys: &[u64]) -> Vec<Request> {
        keys.iter().map(|&key| Request { key, size: 1 }).collect()
    }

    /// Exhaustive optimum over every eviction choice (and, with `bypass`,
    /// the choice not to insert), for tiny unit-size traces.
    fn brute_force(keys: &[u64], capacity: usize, bypass: bool) -> u64 {
        fn go(keys: &[u64], cap: usize, bypass: bool, cache: &mut Vec<u64>) -> u64 {
            let Some((&k, rest)) = keys.split_first() else {
                return 0;
            };
            if cache.contains(&k) {
                return 1 + go(rest, cap, bypass, cache);
            }
            if cap == 0 {
                return go(rest, cap, bypass, cache);
            }
            let mut best = 0;
            if bypass {
                best = go(rest, cap, bypass, cache);
            }
            if cache.len() < cap {
                cache.push(k);
                best = best.max(go(rest, cap, bypass, cache));
                cache.pop();
            } else {
                for slot in 0..cache.len() {
                    let old = std::mem::replace(&mut cache[slot], k);
                    best = best.max(go(rest, cap, bypass, cache));
                    cache[slot] = old;
                }
            }
            best
        }
        go(keys, capacity, bypass, &mut Vec::new())
    }

    #[test]
    fn matches_exhaustive_search_on_tiny_traces() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..300 {
            let len = rng.gen_range(0..11);
            let n_keys = rng.gen_range(1..6);
            let keys: Vec<u64> = (0..len).map(|_| rng.gen_range(0..n_keys)).collect();
            let b = Belady::new(&unit(&keys));
            for cap in 0..4u64 {
                let always = b.simulate_with(cap, false, Admission::Always).hits;
                let bypass = b.simulate_with(cap, false, Admission::Bypass).hits;
                assert_eq!(
                    always,
                    brute_force(&keys, cap as usize, false),
                    "{keys:?} cap {cap}"
                );
                assert_eq!(
                    bypass,
                    brute_force(&keys, cap as usize, true),
                    "{keys:?} cap {cap}"
                );
                // Unit sizes: the weighted simulation must agree.
                assert_eq!(b.simulate_with(cap, true, Admission::Always).hits, always);
                assert_eq!(b.simulate_with(cap, true, Admission::Bypass).hits, bypass);
            }
        }
    }

    #[test]
    fn classic_example() {
        // The textbook reference string with 3 frames: 9 faults (Silberschatz et al.).
        let r = unit(&[7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1]);
        let res = belady(&r, 3, false);
        assert_eq!(
            res,
            OptResult {
                hits: 11,
                requests: 20
            }
        );
        assert_eq!(res.misses(), 9);
        assert!((res.hit_ratio() - 11.0 / 20.0).abs() < 1e-12);
        assert_eq!(Belady::new(&r).distinct_keys(), 6);
    }

    #[test]
    fn edge_cases() {
        assert_eq!(belady(&[], 10, false), OptResult::default());
        assert_eq!(OptResult::default().hit_ratio(), 0.0);
        let r = unit(&[1, 1, 1]);
        assert_eq!(belady(&r, 0, false).hits, 0);
        assert_eq!(belady(&r, 0, true).hits, 0);
        assert_eq!(belady(&r, 1, false).hits, 2);
        assert!(Belady::new(&[]).is_empty());
        assert_eq!(Belady::new(&r).len(), 3);
    }

    #[test]
    fn weighted_size_rules() {
        let req = |key, size| Request { key, size };
        // An object larger than the cache is never inserted.
        let r = [req(1, 11), req(1, 11), req(2, 5), req(2, 5)];
        assert_eq!(belady(&r, 10, true).hits, 1);
        // Evict farthest-next-use objects until the new one fits: inserting 3
        // (size 6) into [1 (4), 2 (4)] evicts 2 (next use farthest) only.
        let r = [
            req(1, 4),
            req(2, 4),
            req(3, 6),
            req(1, 4),
            req(3, 6),
            req(2, 4),
        ];
        assert_eq!(belady(&r, 10, true).hits, 2);
        // Size-0 objects always fit.
        let r = [req(1, 0), req(2, 10), req(1, 0)];
        assert_eq!(belady(&r, 10, true).hits, 1);
        // A hit keeps the size the object was inserted with.
        let r = [req(1, 1), req(1, 100), req(2, 9), req(1, 1)];
        assert_eq!(belady(&r, 10, true).hits, 2);
    }

    #[test]
    fn bypass_never_admits_dead_objects_into_a_full_cache() {
        // 1 and 2 fill the cache; 3 is never used again, so bypassing it keeps both.
        let r = unit(&[1, 2, 3, 1, 2]);
        let b = Belady::new(&r);
        assert_eq!(b.simulate_with(2, false, Admission::Bypass).hits, 2);
        assert_eq!(b.simulate_with(2, false, Admission::Always).hits, 1);
    }

    /// Straightforward O(n * capacity) demand-paging MIN (scan the future).
    fn naive_always(keys: &[u64], capacity: usize) -> u64 {
        let mut cache: Vec<u64> = Vec::new();
        let mut hits = 0;
        for (i, k) in keys.iter().enumerate() {
            if cache.contains(k) {
                hits += 1;
                continue;
            }
            if capacity == 0 {
                continue;
            }
            if cache.len() == capacity {
                let next_use = |c: &u64| {
                    keys[i + 1..]
                        .iter()
                        .position(|x| x == c)
                        .unwrap_or(usize::MAX)
                };
                let (slot, _) = cache
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, c)| next_use(c))
                    .unwrap();
                cache.swap_remove(slot);
            }
            cache.push(*k);
        }
        hits
    }

    #[test]
    fn matches_naive_simulation_with_many_stale_heap_entries() {
        let mut rng = StdRng::seed_from_u64(11);
        // Few hot keys: many hits, so the heap accumulates stale entries and is compacted.
        let keys: Vec<u64> = (0..6000)
            .map(|_| {
                if rng.gen_bool(0.8) {
                    rng.gen_range(0..8)
                } else {
                    rng.gen_range(0..200)
                }
            })
            .collect();
        let b = Belady::new(&unit(&keys));
        for cap in [1usize, 5, 20, 100] {
            assert_eq!(
                b.simulate(cap as u64, false).hits,
                naive_always(&keys, cap),
                "cap {cap}"
            );
        }
    }
}
