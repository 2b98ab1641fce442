//! A `get` miss in layercache against quick_cache, in alternating rounds, after eviction
//! churn.
//!
//! Both caches (capacity 65,536 entries, default policy and shards) first take 2^21 inserts
//! along a Zipf(0.99) sequence over 1,000,000 `u64` keys, so they have evicted hundreds of
//! thousands of entries, as a cache in service has. Then each round times 2^20 gets of keys
//! that were never inserted (every get misses) on one cache, then on the other, alternating
//! which goes first; the example prints the median wall time per get of each and the median
//! of the per-round ratios (quick_cache's time over layercache's: above 1 is layercache
//! faster). A miss is what every `get_with` and every insert of a new key starts with.
//!
//! ```text
//! cargo run --release -p layercache-memory --example miss_path
//! ```

use std::hint::black_box;
use std::time::Instant;

use layercache_memory::Cache;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::Zipf;

/// Capacity of both caches, in entries.
const CAPACITY: u64 = 1 << 16;
/// Distinct keys of the Zipf sequence that fills them.
const KEYS: u64 = 1_000_000;
/// Alternating rounds.
const ROUNDS: usize = 15;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Nanoseconds per call of `get` over `keys`, which must all miss.
fn time_misses(keys: &[u64], get: impl Fn(u64) -> bool) -> f64 {
    let start = Instant::now();
    let mut hits = 0u64;
    for &k in keys {
        hits += u64::from(get(black_box(k)));
    }
    let ns = start.elapsed().as_nanos() as f64 / keys.len() as f64;
    assert_eq!(hits, 0, "the absent keys must miss");
    ns
}

fn main() {
    let mut rng = StdRng::seed_from_u64(11);
    let zipf = Zipf::new(KEYS, 0.99).expect("valid Zipf parameters");
    let fill: Vec<u64> = (0..1 << 21).map(|_| rng.sample(zipf) as u64 - 1).collect();
    // Absent keys: above every key of the fill.
    let absent: Vec<u64> = (0..1 << 20)
        .map(|_| rng.gen_range(KEYS..u64::MAX))
        .collect();

    let ours: Cache<u64, u64> = Cache::new(CAPACITY);
    let theirs: quick_cache::sync::Cache<u64, u64> =
        quick_cache::sync::Cache::new(CAPACITY as usize);
    for &k in &fill {
        ours.insert(k, k);
        theirs.insert(k, k);
    }
    ours.run_pending_tasks();
    println!(
        "filled by {} inserts: layercache holds {} entries, quick_cache {}",
        fill.len(),
        ours.entry_count(),
        theirs.len()
    );

    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let run_ours = || time_misses(&absent, |k| ours.get(&k).is_some());
        let run_theirs = || time_misses(&absent, |k| theirs.get(&k).is_some());
        let (x, y) = if round % 2 == 0 {
            let x = run_ours();
            (x, run_theirs())
        } else {
            let y = run_theirs();
            (run_ours(), y)
        };
        a.push(x);
        b.push(y);
        ratio.push(y / x);
    }
    println!(
        "get miss, ns per get (median of {ROUNDS} rounds): layercache {:.1}, quick_cache {:.1}; \
         quick_cache's time / layercache's: {:.2}x",
        median(&mut a),
        median(&mut b),
        median(&mut ratio)
    );
}
