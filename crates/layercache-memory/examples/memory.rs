//! Bytes per entry of the engine, moka and quick_cache, measured with a counting allocator.
//!
//! Each cache is built with capacity 1,000,000, filled with the `u64 → u64` entries
//! `0..1_000_000`, and measured as (live heap bytes after − live heap bytes before the cache
//! was built) / entries held. The caches are measured one after the other in this process,
//! each dropped before the next is built. moka defers eviction and bookkeeping, so its
//! `run_pending_tasks` is called before measuring.
//!
//! ```text
//! cargo run --release -p layercache-memory --example memory
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Wraps the system allocator and counts live bytes (and their high-water mark).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments, so `System`'s
// guarantees carry over; the counters do not touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds the contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const N: u64 = 1_000_000;

struct Row {
    name: &'static str,
    entries: u64,
    /// Bytes still live after the cache was dropped (global state it allocated lazily).
    leftover: usize,
    bytes: usize,
    peak: usize,
}

/// Builds a cache with `build`, fills it with `fill`, settles it with `settle`, and measures.
fn measure<C>(
    name: &'static str,
    build: impl FnOnce() -> C,
    fill: impl FnOnce(&C),
    count: impl FnOnce(&C) -> u64,
) -> Row {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let cache = build();
    fill(&cache);
    let entries = count(&cache);
    let after = LIVE.load(Ordering::SeqCst);
    let peak = PEAK.load(Ordering::SeqCst);
    drop(cache);
    let leftover = LIVE.load(Ordering::SeqCst).saturating_sub(before);
    Row {
        name,
        entries,
        leftover,
        bytes: after.saturating_sub(before),
        peak: peak.saturating_sub(before),
    }
}

fn main() {
    let mut rows = Vec::new();

    rows.push(measure(
        "layercache (W-TinyLFU, default shards)",
        || layercache_memory::Cache::<u64, u64>::new(N),
        |c| (0..N).for_each(|k| c.insert(k, k)),
        |c| c.entry_count(),
    ));
    rows.push(measure(
        "layercache (W-TinyLFU, 1 shard)",
        || {
            layercache_memory::Cache::<u64, u64>::builder()
                .max_capacity(N)
                .shards(1)
                .build()
        },
        |c| (0..N).for_each(|k| c.insert(k, k)),
        |c| c.entry_count(),
    ));
    rows.push(measure(
        "layercache (W-TinyLFU, default shards), after 1M evictions",
        || layercache_memory::Cache::<u64, u64>::new(N),
        |c| (0..2 * N).for_each(|k| c.insert(k, k)),
        |c| c.entry_count(),
    ));
    rows.push(measure(
        "moka 0.12 sync::Cache",
        || moka::sync::Cache::<u64, u64>::new(N),
        |c| {
            (0..N).for_each(|k| c.insert(k, k));
            c.run_pending_tasks();
        },
        |c| c.entry_count(),
    ));
    rows.push(measure(
        "quick_cache 0.7 sync::Cache",
        || quick_cache::sync::Cache::<u64, u64>::new(N as usize),
        |c| (0..N).for_each(|k| c.insert(k, k)),
        |c| c.len() as u64,
    ));
    rows.push(measure(
        "quick_cache 0.7 sync::Cache, after 1M evictions",
        || quick_cache::sync::Cache::<u64, u64>::new(N as usize),
        |c| (0..2 * N).for_each(|k| c.insert(k, k)),
        |c| c.len() as u64,
    ));

    println!(
        "{N} inserts of u64 -> u64 (keys 0..{N}), capacity {N}; \"after 1M evictions\": {} inserts\n",
        2 * N
    );
    println!("| cache | entries held | live bytes | bytes/entry | peak bytes/entry |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        let per = |b: usize| {
            if r.entries == 0 {
                f64::NAN
            } else {
                b as f64 / r.entries as f64
            }
        };
        println!(
            "| {} | {} | {} | {:.1} | {:.1} |",
            r.name,
            r.entries,
            r.bytes,
            per(r.bytes),
            per(r.peak)
        );
    }
    for r in rows.iter().filter(|r| r.leftover > 0) {
        println!(
            "\nnote: {}: {} bytes still live after the drop (lazily allocated global state)",
            r.name, r.leftover
        );
    }
}
