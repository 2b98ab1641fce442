//! `get` on a 65,536-entry cache in layercache against quick_cache, in alternating rounds.
//!
//! Both caches (capacity 65,536 entries, default policy and shards) are first filled, then
//! each round times 2^20 gets on one cache, then on the other, alternating which goes
//! first; the example prints the median wall time per get of each and the median of the
//! per-round ratios (quick_cache's time over layercache's: above 1 is layercache faster).
//! Two workloads (`--workload`):
//!
//! * `miss` (the default): the caches take 2^21 inserts along a Zipf(0.99) sequence over
//!   1,000,000 `u64` keys, so they have evicted hundreds of thousands of entries, as a
//!   cache in service has; then every get asks for a key that was never inserted. A miss is
//!   what every `get_with` and every insert of a new key starts with.
//! * `even`: the caches hold 60,000 keys, and the gets read them uniformly at random, so
//!   every get hits and every entry is hit now and then (a working set that fits), unlike
//!   the Zipf reads of `hit_path`, where most hits go to a few hot entries.
//!
//! ```text
//! cargo run --release -p layercache-memory --example small_cache [-- --workload miss|even]
//! ```

#[path = "common/paired.rs"]
mod paired;

use std::hint::black_box;
use std::time::Instant;

use layercache_memory::Cache;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::Zipf;

/// Capacity of both caches, in entries.
const CAPACITY: u64 = 1 << 16;
/// Distinct keys of the Zipf sequence that fills them for `miss`.
const KEYS: u64 = 1_000_000;
/// Keys read by `even` (all held).
const EVEN_KEYS: u64 = 60_000;
/// Alternating rounds.
const ROUNDS: usize = 15;

/// Nanoseconds per call of `get` over `keys`, checking that `hit` of them hit.
fn time_gets(keys: &[u64], hit: bool, get: impl Fn(u64) -> bool) -> f64 {
    let start = Instant::now();
    let mut hits = 0usize;
    for &k in keys {
        hits += usize::from(get(black_box(k)));
    }
    let ns = start.elapsed().as_nanos() as f64 / keys.len() as f64;
    let want = if hit { keys.len() } else { 0 };
    assert_eq!(
        hits,
        want,
        "every get must {}",
        if hit { "hit" } else { "miss" }
    );
    ns
}

/// `--workload miss|even` (default `miss`): whether the gets hit.
fn workload() -> Result<bool, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["--workload", "miss"] => Ok(false),
        ["--workload", "even"] => Ok(true),
        _ => Err(format!(
            "usage: small_cache [--workload miss|even]; got {args:?}"
        )),
    }
}

fn main() {
    let hit = match workload() {
        Ok(hit) => hit,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut rng = StdRng::seed_from_u64(11);
    let (fill, gets): (Vec<u64>, Vec<u64>) = if hit {
        let gets = (0..1 << 20).map(|_| rng.gen_range(0..EVEN_KEYS)).collect();
        ((0..EVEN_KEYS).collect(), gets)
    } else {
        let zipf = Zipf::new(KEYS, 0.99).expect("valid Zipf parameters");
        let fill = (0..1 << 21).map(|_| rng.sample(zipf) as u64 - 1).collect();
        // Absent keys: above every key of the fill.
        (
            fill,
            (0..1 << 20)
                .map(|_| rng.gen_range(KEYS..u64::MAX))
                .collect(),
        )
    };

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

    let m = paired::paired(
        ROUNDS,
        || time_gets(&gets, hit, |k| ours.get(&k).is_some()),
        || time_gets(&gets, hit, |k| theirs.get(&k).is_some()),
    );
    println!(
        "get {}, ns per get (median of {ROUNDS} rounds): layercache {:.1}, quick_cache {:.1}; \
         quick_cache's time / layercache's: {:.2}x",
        if hit { "hit (even)" } else { "miss" },
        m.ours,
        m.theirs,
        1.0 / m.ratio
    );
}
