//! How much larger than `max_bytes` the store's file gets: fills a tier, then keeps writing
//! (random keys from a space twice the capacity, so writes both overwrite and evict) until
//! `--rounds` times `max_bytes` has been written, and prints the file size against the
//! counted bytes after each round.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-disk cargo run --release -p layercache-disk --example overhead -- \
//!     [--max-mib 64] [--value-bytes 1024] [--rounds 4] [--durability periodic|immediate] \
//!     [--dir DIR]
//! ```
//!
//! With `--dir`, the tier lives in `DIR` (kept afterwards); `--rounds 0` then only times an
//! open of `DIR` (for example after killing a previous run, to time the store's repair).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use layercache_disk::{DiskOptions, DiskTier, Durability};
use layercache_tier::Tier;
use rand::{Rng, SeedableRng};

fn main() {
    let mut max_mib = 64u64;
    let mut value_bytes = 1024usize;
    let mut rounds = 4u64;
    let mut durability = Durability::default();
    let mut dir_arg = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().expect("a value after each flag");
        match a.as_str() {
            "--max-mib" => max_mib = v.parse().unwrap(),
            "--value-bytes" => value_bytes = v.parse().unwrap(),
            "--rounds" => rounds = v.parse().unwrap(),
            "--dir" => dir_arg = Some(std::path::PathBuf::from(v)),
            "--durability" => {
                durability = match v.as_str() {
                    "immediate" => Durability::Immediate,
                    "periodic" => Durability::Periodic(Duration::from_secs(1)),
                    other => panic!("unknown durability {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    let max = max_mib << 20;
    let temp = tempfile::tempdir().unwrap();
    let dir = dir_arg.as_deref().unwrap_or(temp.path());
    if rounds == 0 {
        let start = Instant::now();
        let tier = DiskTier::open(dir, DiskOptions::new(max)).unwrap();
        println!("opened in {:?}: {} entries", start.elapsed(), tier.len());
        return;
    }
    let tier = DiskTier::open(dir, DiskOptions::new(max).durability(durability)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    let entry = 16 + value_bytes as u64 + layercache_disk::RECORD_HEADER_BYTES;
    let key_space = 2 * max / entry;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let value = vec![0x5A; value_bytes];
    println!(
        "max_bytes {max_mib} MiB, {value_bytes}-byte values, {durability:?}, keys from a space of {key_space}"
    );
    let start = Instant::now();
    let mut written = 0u64;
    for round in 1..=rounds {
        rt.block_on(async {
            while written < round * max {
                let key = format!("key-{:012}", rng.gen_range(0..key_space));
                tier.set(key.as_bytes(), &value, None).await.unwrap();
                written += entry;
            }
        });
        let file = std::fs::metadata(tier.path()).unwrap().len();
        println!(
            "after {round}× max written: used {:.1} MiB in {} entries, file {:.1} MiB = {:.2}× max_bytes ({:.1} s)",
            tier.used_bytes() as f64 / (1 << 20) as f64,
            tier.len(),
            file as f64 / (1 << 20) as f64,
            file as f64 / max as f64,
            start.elapsed().as_secs_f64()
        );
    }
    tier.flush().unwrap();
    let file = std::fs::metadata(tier.path()).unwrap().len();
    let path = tier.path().to_path_buf();
    drop(tier);
    // What the store's pages hold, against the file's length (which grows by doubling).
    let db = redb::Database::open(&path).unwrap();
    let stats = db.begin_write().unwrap().stats().unwrap();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "store pages: {:.1} MiB allocated ({:.1} MiB stored, {:.1} MiB metadata, {:.1} MiB fragmented) = {:.2}× max_bytes",
        mib(stats.allocated_pages() * stats.page_size() as u64),
        mib(stats.stored_bytes()),
        mib(stats.metadata_bytes()),
        mib(stats.fragmented_bytes()),
        (stats.allocated_pages() * stats.page_size() as u64) as f64 / max as f64,
    );
    drop(db);
    let reopen = Instant::now();
    let tier = DiskTier::open(dir, DiskOptions::new(max)).unwrap();
    println!(
        "after flush: file {:.2}× max_bytes; clean reopen in {:?} ({} entries)",
        file as f64 / max as f64,
        reopen.elapsed(),
        tier.len()
    );
}
