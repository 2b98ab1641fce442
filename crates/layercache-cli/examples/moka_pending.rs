//! How much of moka's hit ratio on the real traces depends on when it runs its maintenance.
//!
//! moka 0.12 queues reads and writes and applies them to its policy in batches, later. The
//! `peers` example (and the traces README) replay moka without ever calling
//! `run_pending_tasks`, as a user who only calls `get` and `insert` would. This example
//! replays the same rows both ways — as is, and with `run_pending_tasks()` after every
//! insert, so that each miss is applied before the next request — and prints the mean hit
//! ratio (%) of 3 runs of each (moka seeds its hasher randomly).
//!
//! A fourth replay, as is, counts the entries moka holds (`iter().count()`, every
//! capacity / 8 requests) and prints their mean and maximum as a share of the capacity: moka
//! evicts only when its maintenance runs, so between runs it can hold more than
//! `max_capacity`, and a larger cache hits more.
//!
//! ```text
//! cargo run --release -p layercache-cli --example moka_pending [-- --traces DIR]
//! ```

#[path = "common/shared_traces.rs"]
mod shared_traces;

use std::path::PathBuf;

use layercache_trace::Request;

/// Runs per variant (moka's figures move with its random hasher seed).
const RUNS: usize = 3;

/// The rows of the traces README's table, except P3's (3.9M requests each, slow for moka).
const ROWS: &[(&str, &[u64])] = &[
    ("arc/OLTP.lis.zst", &[250, 500, 1000, 2000]),
    ("lirs/sprite.trace.gz", &[256, 512, 1024, 2048]),
    ("lirs/multi2.trace.gz", &[512, 1024, 2048]),
    ("lirs/loop.trace.gz", &[256, 512, 768, 1024]),
    ("lirs/gli.trace.gz", &[250, 500, 1000, 1500]),
    ("cache2k/web07.trace.xz", &[500, 2000, 8000]),
    (
        "libcachesim/cloudPhysicsIO.oracleGeneral.bin",
        &[1000, 5000, 20000],
    ),
];

/// When a replay runs moka's maintenance.
#[derive(Clone, Copy)]
enum Maintenance {
    /// Never: as a user who only calls `get` and `insert` (and as the README's figures).
    AsIs,
    /// `run_pending_tasks()` after every insert.
    AfterEachInsert,
}

/// Replays `requests` through a fresh moka cache (`get`, and `insert` on a miss), calling
/// `after(n, &cache)` after request `n`; returns the hit ratio in %.
fn replay(
    requests: &[Request],
    capacity: u64,
    maintenance: Maintenance,
    mut after: impl FnMut(usize, &moka::sync::Cache<u64, ()>),
) -> f64 {
    let cache = moka::sync::Cache::<u64, ()>::new(capacity);
    let mut hits = 0u64;
    for (n, r) in requests.iter().enumerate() {
        if cache.get(&r.key).is_some() {
            hits += 1;
        } else {
            cache.insert(r.key, ());
            if let Maintenance::AfterEachInsert = maintenance {
                cache.run_pending_tasks();
            }
        }
        after(n, &cache);
    }
    100.0 * hits as f64 / requests.len() as f64
}

/// The entries moka holds while replaying `requests` as is, sampled every capacity / 8
/// requests: (mean, maximum), in % of `capacity`.
fn occupancy(requests: &[Request], capacity: u64) -> (f64, f64) {
    let every = (capacity / 8).max(1) as usize;
    let (mut sum, mut max, mut samples) = (0u64, 0u64, 0u64);
    replay(requests, capacity, Maintenance::AsIs, |n, cache| {
        if n % every == every - 1 {
            let held = cache.iter().count() as u64;
            sum += held;
            max = max.max(held);
            samples += 1;
        }
    });
    let pct = |x: f64| 100.0 * x / capacity as f64;
    (pct(sum as f64 / samples.max(1) as f64), pct(max as f64))
}

/// moka's mean hit ratio in % over [`RUNS`] replays.
fn mean_of_runs(requests: &[Request], capacity: u64, maintenance: Maintenance) -> f64 {
    (0..RUNS)
        .map(|_| replay(requests, capacity, maintenance, |_, _| {}))
        .sum::<f64>()
        / RUNS as f64
}

fn main() {
    let mut dir = shared_traces::default_dir();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {}
        [flag, value] if flag == "--traces" => dir = PathBuf::from(value),
        _ => {
            eprintln!("usage: moka_pending [--traces DIR]");
            std::process::exit(2);
        }
    }
    println!(
        "| trace | capacity | moka as is | moka, run_pending_tasks after each insert | difference \
         | entries held as is, mean / max (% of capacity) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (file, capacities) in ROWS {
        let requests = shared_traces::read(&dir, file);
        let name = file.rsplit('/').next().unwrap_or(file);
        for &capacity in capacities.iter() {
            let lazy = mean_of_runs(&requests, capacity, Maintenance::AsIs);
            let eager = mean_of_runs(&requests, capacity, Maintenance::AfterEachInsert);
            let (mean, max) = occupancy(&requests, capacity);
            println!(
                "| {name} | {capacity} | {lazy:.2} | {eager:.2} | {:+.2} | {mean:.1} / {max:.1} |",
                eager - lazy
            );
        }
    }
}
