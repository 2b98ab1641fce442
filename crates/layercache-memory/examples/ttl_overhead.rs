//! The cost of expiration and statistics on the hit path, measured in alternating rounds
//! so that other load on the machine hits every variant alike (criterion's separate
//! estimates move by ±30 % on the project's 2-core VM).
//!
//! Each variant is a 1M-entry `Cache<u64, u64>` prefilled with every key; a round times
//! 4 × 2^20 gets along a Zipf(0.99) sequence (all hits). Variants: `plain`, `ttl` (time to
//! live 1 h on the default `CoarseClock`), `ttl+manual clock` (the same on a `ManualClock`,
//! whose reading is one atomic load: what expiration costs besides reading the clock),
//! `stats` (`record_stats`). Prints the median ns per get of each and its median ratio to
//! `plain` over the rounds.
//!
//! ```text
//! cargo run --release -p layercache-memory --example ttl_overhead -- [rounds]
//! ```

// Only its `median`: this example rotates four variants, not a pair.
#[allow(dead_code)]
#[path = "common/paired.rs"]
mod paired;

use std::time::{Duration, Instant};

use layercache_memory::{Cache, ManualClock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::Zipf;

const KEYS: u64 = 1_000_000;

fn build(variant: &str) -> Cache<u64, u64> {
    let b = Cache::builder().max_capacity(KEYS);
    let cache = match variant {
        "plain" => b.build(),
        "ttl" => b.time_to_live(Duration::from_secs(3600)).build(),
        "ttl+manual clock" => b
            .time_to_live(Duration::from_secs(3600))
            .clock(ManualClock::new())
            .build(),
        "stats" => b.record_stats().build(),
        _ => unreachable!(),
    };
    for k in (0..KEYS).rev() {
        cache.insert(k, k);
    }
    cache
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let zipf = Zipf::new(KEYS, 0.99).expect("valid Zipf parameters");
    let mut rng = StdRng::seed_from_u64(7);
    let keys: Vec<u64> = (0..1 << 20).map(|_| rng.sample(zipf) as u64 - 1).collect();
    let names = ["plain", "ttl", "ttl+manual clock", "stats"];
    let caches: Vec<Cache<u64, u64>> = names.iter().map(|n| build(n)).collect();
    let mut ns = vec![Vec::new(); names.len()];
    let mut ratios = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        let mut this = vec![0.0; names.len()];
        // Alternate the order so no variant always runs first.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..names.len()).collect()
        } else {
            (0..names.len()).rev().collect()
        };
        for &i in &order {
            let started = Instant::now();
            let mut hits = 0u64;
            for _ in 0..4 {
                for k in &keys {
                    hits += u64::from(caches[i].get(k).is_some());
                }
            }
            std::hint::black_box(hits);
            this[i] = started.elapsed().as_nanos() as f64 / (4 * keys.len()) as f64;
        }
        for i in 0..names.len() {
            ns[i].push(this[i]);
            ratios[i].push(this[i] / this[0]);
        }
    }
    println!("median of {rounds} alternating rounds, 1M entries, Zipf(0.99) hits");
    for i in 0..names.len() {
        println!(
            "{:<18} {:>7.1} ns/get   ratio to plain {:.3}",
            names[i],
            paired::median(&mut ns[i]),
            paired::median(&mut ratios[i])
        );
    }
}
