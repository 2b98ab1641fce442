//! A `get` hit in layercache against quick_cache, in alternating rounds.
//!
//! Both caches hold the same 1,000,000 `u64 → u64` entries (capacity 1M, default policy
//! and shards) and read along the same pre-generated Zipf(0.99) sequence of 2^20 keys
//! (every get hits), on one thread or, with `--threads N`, on N threads that each read their
//! share of the sequence at once (as the criterion benchmark does). Each round times
//! 2 × 2^20 gets of one cache then the other, alternating which goes first; the example
//! prints the median wall time per get of each and the median of the per-round ratios,
//! which is steadier on a noisy machine than two criterion estimates taken apart (see
//! BENCHMARKS.md §2).
//!
//! ```text
//! cargo run --release -p layercache-memory --example hit_path [-- --threads 2]
//! ```

#[path = "common/paired.rs"]
mod paired;

use std::hint::black_box;
use std::time::Instant;

use layercache_memory::Cache;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::Zipf;

/// Keys in both caches (and their capacity).
const KEYS: u64 = 1_000_000;
/// Gets per round and cache: passes over the 2^20-key sequence.
const PASSES: usize = 2;
/// Alternating rounds.
const ROUNDS: usize = 15;

/// `--threads N` (default 1).
fn threads() -> Result<usize, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(1),
        [flag, n] if flag == "--threads" => match n.parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("--threads wants a positive number, not {n:?}")),
        },
        _ => Err(format!("usage: hit_path [--threads N]; got {args:?}")),
    }
}

fn main() {
    let threads = match threads() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut rng = StdRng::seed_from_u64(7);
    let zipf = Zipf::new(KEYS, 0.99).expect("valid Zipf parameters");
    let keys: Vec<u64> = (0..1 << 20).map(|_| rng.sample(zipf) as u64 - 1).collect();
    let ours: Cache<u64, u64> = Cache::new(KEYS);
    let theirs: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(KEYS as usize);
    for k in 0..KEYS {
        ours.insert(k, k);
        theirs.insert(k, k);
    }
    let gets = (PASSES * keys.len()) as f64;
    let share = keys.len().div_ceil(threads);
    let time = |use_ours: bool| {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for part in keys.chunks(share) {
                let (ours, theirs) = (&ours, &theirs);
                scope.spawn(move || {
                    let mut sum = 0u64;
                    for _ in 0..PASSES {
                        for k in part {
                            let v = if use_ours { ours.get(k) } else { theirs.get(k) };
                            sum = sum.wrapping_add(v.unwrap_or(0));
                        }
                    }
                    black_box(sum);
                });
            }
        });
        started.elapsed().as_nanos() as f64 / gets
    };
    let m = paired::paired(ROUNDS, || time(true), || time(false));
    let r = m.ratio;
    println!(
        "{threads} thread(s): layercache {:.1} ns/get, quick_cache {:.1} ns/get (wall time per \
         get); time ratio {r:.3} (layercache's throughput is {:.2}x quick_cache's); median of \
         {ROUNDS} rounds",
        m.ours,
        m.theirs,
        1.0 / r
    );
}
