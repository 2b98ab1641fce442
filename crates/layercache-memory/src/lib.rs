//! # layercache-memory
//!
//! The in-process cache engine of [layercache]: a thread-safe, bounded, sharded cache with
//! pluggable eviction policies and weighted capacity. No async runtime, no I/O.
//!
//! ```
//! use layercache_memory::{Cache, EvictionPolicy};
//!
//! let cache: Cache<u64, String> = Cache::builder()
//!     .max_capacity(10_000)
//!     .eviction_policy(EvictionPolicy::WTinyLfu) // the default
//!     .build();
//! cache.insert(1, "one".to_string());
//! assert_eq!(cache.get(&1).as_deref(), Some("one"));
//! assert_eq!(cache.entry_count(), 1);
//! ```
//!
//! ## Policies
//! | [`EvictionPolicy`] | idea | source |
//! |---|---|---|
//! | [`WTinyLfu`](EvictionPolicy::WTinyLfu) (default) | CLOCK window + segmented LRU, admission by a 4-bit count-min sketch, window sized by hill climbing and ghost feedback | Einziger, Friedman & Manes, ACM ToS 2017; Einziger et al., Middleware 2018; Megiddo & Modha, FAST 2003 |
//! | [`S3Fifo`](EvictionPolicy::S3Fifo) | small + main + ghost FIFO queues | Yang et al., SOSP 2023 |
//! | [`Sieve`](EvictionPolicy::Sieve) | FIFO with a visited bit and a moving hand | Zhang et al., NSDI 2024 |
//! | [`Lru`](EvictionPolicy::Lru) | least recently used | — |
//! | [`Lfu`](EvictionPolicy::Lfu) | least frequently used, counts halved periodically | Shah et al. 2010 |
//! | [`Fifo`](EvictionPolicy::Fifo) | first in, first out | — |
//!
//! Every policy runs in the same engine: a shard is a hash index of `u32` positions into a
//! dense slab of entries, and the policy threads its queues through 16 bytes of links per
//! entry. The index is the engine's own rather than `hashbrown`'s: its 64-byte groups hold
//! each slot's one-byte tag next to the slot's position, so a lookup reads one cache line of
//! index where `hashbrown::HashTable<u32>` reads two (its control bytes and its slots live
//! apart), and a `get` on a large cache misses the cache twice instead of three times. It is
//! also sized exactly for a bounded shard instead of to a power of two. A `u64 → u64` entry
//! costs about 43 bytes in all, about 44 once the cache evicts and W-TinyLFU's ghosts are in
//! use (see `BENCHMARKS.md` §2 and §3 for both figures against the `hashbrown` table). The
//! slab is an
//! [`aligned_vec::AVec`] aligned to a 64-byte cache line (a `Vec` is only as aligned as its
//! element), so that a 32-byte entry never straddles two lines; a hit reads the key, the value
//! and the entry's policy bits in one cache miss. A hit that the policy would not act on (an
//! entry SIEVE already marked visited, a saturated S3-FIFO counter, any FIFO hit, a
//! referenced entry in W-TinyLFU's window or protected segment) is only counted, not
//! buffered for the policy.
//!
//! ### How the default differs from Caffeine's W-TinyLFU
//! The structure (window, probation, protected, sketch, hill climber, random admission of
//! warm candidates) is Caffeine's. Two additions, measured on the shared traces, make it adapt
//! within short traces: a candidate must beat the victim's estimate by more than one (a
//! resident entry is worth more than a newcomer with a similar count), and two compact ghosts
//! of recently rejected candidates and recently evicted victims nudge the window on every miss
//! in the manner of ARC. The sketch has 8 counters per entry (Caffeine: 16), which measured no
//! worse and halves its memory, but never fewer than 16 KiB per shard (up to 16 times the
//! capacity's own table): a small cache's few counters collide too often, and the floor raised
//! the mean margin of BENCHMARKS.md §1 by 0.2 points. The window and the protected segment
//! are kept in CLOCK order (a hit sets a reference bit; a referenced entry at a segment's old
//! end gets a second chance) where Caffeine moves the entry on every hit, and a referenced
//! entry's further hits are not counted again in the sketch: a repeated hit on a hot entry
//! then touches only the entry, and on the shared traces the mean margin came out slightly
//! higher (+0.66 against +0.61 for the window, +0.42 against +0.40 for protected).
//!
//! ## Capacity and sharding
//! The capacity counts entries, or with a [`weigher`](CacheBuilder::weigher) the sum of
//! weights. It is split exactly over the shards, so the cache never holds more than
//! `max_capacity` once an insert returns; see [`Cache`] for the one consequence (an entry
//! heavier than a shard's share is not stored).
//!
//! ## Removal and `Drop`
//! Entries evicted, replaced, removed or cleared are dropped after their shard's lock is
//! released, so a value's `Drop` may use the cache. Keys and values are never cloned by the
//! engine except by [`Cache::get`] (the value), [`Cache::iter`] and the loading methods (the
//! key once per load, the value for each caller that shares it).
//!
//! ## Consistency model
//! Each key lives in one shard guarded by one reader-writer lock: `get` and `contains_key`
//! take it shared, writes take it exclusive. Operations on a key are linearizable, and a `get`
//! after an `insert` returns (in any thread) sees that insert or a later write. The lock is
//! biased to readers (BRAVO: Dice & Kogan, USENIX ATC 2019): while a shard is not being
//! written, a reader marks itself in a slot of its own thread (one compare-and-swap on a
//! cache line that other threads write only when more than 16 threads share the slots)
//! instead of in the shared lock word, so `get`s on several threads do not pass one line
//! back and forth; a writer clears the bias and waits for those readers, and about 32 reads
//! on the plain lock later the bias is set again (later still if that writer had to wait).
//! Whole-cache operations (`entry_count`, `invalidate_all`, `iter`) visit shards one at a
//! time and are weakly consistent under concurrent writes. Eviction is synchronous: it runs
//! inside the `insert` that needs room, so there is no background thread.
//!
//! The eviction policy learns of hits in batches: a `get` records its hit in a small
//! per-shard buffer, applied to the policy when it fills or before the next write to the
//! shard (a hit the policy would not act on is only counted, in the reader's slot of the
//! lock or in the buffer; in a cache that expires entries every 64 such hits also ask for the
//! buffer to be applied if the shard's timer wheel has entered a new tick since its last
//! maintenance, so that a read-only shard still expires its entries, within a tick). With
//! one thread every hit is applied, in order, before the next write, so replays are exact
//! and deterministic (W-TinyLFU's hill climber checks its sample once per batch rather than
//! after every hit). Under contention some records are lost, as with Caffeine's
//! read buffers: a full buffer drops them until it is drained, and two readers racing for
//! one slot keep one of their hits (the buffer is written without locked instructions, which
//! measured 25 % faster `get`s). The policy then sees fewer hits, which can only change which
//! entries are evicted later, never what a `get` returns. `Cache` is `Send + Sync` when `K`
//! and `V` are. `get` clones the value, and compares keys, under the shard's read lock: a
//! `Clone` or `Eq` implementation must not use the same cache. A write from there waits
//! forever for the read that runs it, even on one thread, and a read from there can wait
//! behind another thread's writer that waits for the outer read: a deadlock either way.

//! ## Expiration
//! [`time_to_live`](CacheBuilder::time_to_live), [`time_to_idle`](CacheBuilder::time_to_idle)
//! and per-entry [`Expiry`] (through [`expire_after`](CacheBuilder::expire_after)) give each
//! entry one deadline on the cache's [`Clock`]. Lookups compare it with the clock, so an
//! expired entry is never returned; a per-shard hierarchical timer wheel (Varghese & Lauck
//! 1987, as in Caffeine) removes expired entries within one tick (2^30 ns) as the cache is
//! used, with no background thread, and [`Cache::run_pending_tasks`] forces it. The default
//! clock, [`CoarseClock`], steps every 1–4 ms because a precise clock read slows a hit down
//! by half on a large cache; see [`expiry`] for the model and the figures. Tests inject a
//! [`ManualClock`]. A cache without expiration stores no deadline at all; an expiring one
//! keeps 8 bytes in each entry and 24 in the wheel.
//!
//! ## Loading, computing and async
//! [`Cache::get_with`], [`try_get_with`](Cache::try_get_with) and
//! [`optionally_get_with`](Cache::optionally_get_with) run one initializer per missing key
//! however many callers ask at once; the others wait and share its value (or its error, as
//! one `Arc<E>`). A panicking or cancelled initializer hands over to a waiting caller.
//! [`Cache::and_compute_with`] is an atomic read-modify-write of one entry through the same
//! per-key slot. [`future::Cache`] is the same engine with `async` loading; it needs no
//! particular runtime, and sync and async callers of one cache share their loads.
//!
//! ## Listener and statistics
//! [`eviction_listener`](CacheBuilder::eviction_listener) hears of every entry that leaves,
//! once, with its [`RemovalCause`], on the thread that removed it and after the shard lock is
//! released. [`record_stats`](CacheBuilder::record_stats) turns on per-shard counters read as a
//! [`CacheStats`] snapshot; off, they cost one branch.
//!
//! ## Testing the engine
//! [`Cache::validate`] checks that table, slab, policy queues, timer wheel and weights agree;
//! every model and concurrency test ends with it. `tests/shuttle.rs` model-checks the core
//! paths on one key (insert, remove, expiry and loads racing) with
//! [shuttle](https://docs.rs/shuttle) over thousands of schedules: built with
//! `RUSTFLAGS="--cfg shuttle"`, the engine's locks are shuttle's (see the command in that
//! file).
//!
//! ## Hashing
//! Keys are hashed with [`foldhash`]'s randomly seeded hasher by default (fast, and seeded
//! per cache against hash flooding); W-TinyLFU also admits a small random share of rejected
//! warm candidates so that colliding keys cannot pin the cache. Pass a fixed-seed hasher with
//! [`CacheBuilder::hasher`] for reproducible runs.
//!
//! [layercache]: https://github.com/layercache/layercache

mod biased_lock;
mod builder;
mod cache;
pub mod expiry;
pub mod future;
mod index;
mod listener;
mod load;
mod loader;
mod policy;
mod read_buffer;
mod shard;
mod stats;
mod sync;
#[cfg(test)]
mod test_support;

pub use builder::CacheBuilder;
pub use cache::{Cache, InvariantViolation, NotAdmitted};
pub use expiry::{Clock, CoarseClock, Expiry, ManualClock, MonotonicClock};
pub use listener::RemovalCause;
pub use load::{Computed, EntryRef, Op};
pub use policy::{EvictionPolicy, UnknownPolicy};
pub use stats::CacheStats;

/// The default hasher: [`foldhash`]'s fast hasher with a random per-cache seed.
pub type DefaultHashBuilder = foldhash::fast::RandomState;

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn cache_is_send_and_sync() {
        assert_send_sync::<Cache<u64, u64>>();
        assert_send_sync::<Cache<String, std::sync::Arc<Vec<u8>>>>();
        assert_send_sync::<CacheBuilder<u64, u64>>();
    }
}
