//! The replay loop shared by `layercache sim` and the peers comparison example: one fresh
//! [`Cache`] per run, `get` for every request and `insert` on a miss.

use layercache_memory::{Cache, EvictionPolicy};
use layercache_trace::Request;

/// Hash seed of the simulated caches by default (fixed, so that runs are reproducible).
pub(crate) const HASH_SEED: u64 = 0x6c61_7965_7263_6163;

/// Requests between two calls of the progress callback.
pub(crate) const PROGRESS_CHUNK: usize = 1 << 16;

/// How a simulated cache is built.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setup {
    pub(crate) policy: EvictionPolicy,
    /// Entries, or bytes when `weighted`.
    pub(crate) capacity: u64,
    /// Each entry weighs its object size.
    pub(crate) weighted: bool,
    pub(crate) shards: usize,
    /// Seed of the cache's hasher (normally [`HASH_SEED`]).
    pub(crate) seed: u64,
}

/// Replays `requests` through a fresh cache built as `setup` says and returns the hits;
/// `progress` is told how many requests were replayed, every [`PROGRESS_CHUNK`].
pub(crate) fn replay(requests: &[Request], setup: Setup, mut progress: impl FnMut(u64)) -> u64 {
    let builder = Cache::<u64, u32>::builder()
        .max_capacity(setup.capacity)
        .eviction_policy(setup.policy)
        .shards(setup.shards);
    let builder = if setup.weighted {
        builder.weigher(|_, &size: &u32| size)
    } else {
        builder
    };
    let cache = builder
        .hasher(foldhash::fast::FixedState::with_seed(setup.seed))
        .build();
    let mut hits = 0u64;
    for chunk in requests.chunks(PROGRESS_CHUNK) {
        for r in chunk {
            if cache.get(&r.key).is_some() {
                hits += 1;
            } else {
                cache.insert(r.key, r.size);
            }
        }
        progress(chunk.len() as u64);
    }
    hits
}
