//! Policy-quality sanity check (not exact): a hot set of 50 keys accessed repeatedly,
//! interleaved with a one-off scan of 10,000 keys, in a cache of 100 entries.
//!
//! Between two accesses of a hot key the scan brings ~100 new keys plus the other 49 hot
//! keys, so LRU evicts every hot key before it comes back. W-TinyLFU (frequency-based
//! admission) and S3-FIFO (one-hit wonders die in the small queue) keep the hot set.

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use layercache_memory::{Cache, EvictionPolicy};

type Fixed = BuildHasherDefault<DefaultHasher>;

const CAPACITY: u64 = 100;
const HOT: u64 = 50;
const SCAN: u64 = 10_000;
/// The scan's last keys come without hot accesses: whatever hot key survives them was kept
/// by the policy, not by recency.
const QUIET_TAIL: u64 = 500;

struct Outcome {
    /// Hits among the hot accesses interleaved with the scan.
    hot_hit_ratio: f64,
    /// Hot keys still cached after the scan.
    hot_resident: u64,
    scan_hits: u64,
}

fn run(policy: EvictionPolicy, shards: usize) -> Outcome {
    let cache: Cache<u64, u64, Fixed> = Cache::builder()
        .max_capacity(CAPACITY)
        .eviction_policy(policy)
        .shards(shards)
        .hasher(Fixed::default())
        .build();
    // A read-through access: a miss loads the key.
    let access = |k: u64| -> bool {
        if cache.get(&k) == Some(k) {
            true
        } else {
            cache.insert(k, k);
            false
        }
    };
    for _ in 0..20 {
        for k in 0..HOT {
            access(k);
        }
    }
    let (mut hot_accesses, mut hot_hits, mut scan_hits, mut next_hot) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..SCAN {
        scan_hits += u64::from(access(1_000_000 + i));
        if i % 2 == 1 && i < SCAN - QUIET_TAIL {
            hot_accesses += 1;
            hot_hits += u64::from(access(next_hot % HOT));
            next_hot += 1;
        }
    }
    cache.validate().unwrap();
    Outcome {
        hot_hit_ratio: hot_hits as f64 / hot_accesses as f64,
        hot_resident: (0..HOT).filter(|k| cache.contains_key(k)).count() as u64,
        scan_hits,
    }
}

#[test]
fn frequency_aware_policies_keep_the_hot_set_through_a_scan() {
    let lru = run(EvictionPolicy::Lru, 1);
    // The workload is what the comment above claims: LRU loses the hot set entirely.
    assert!(
        lru.hot_hit_ratio < 0.05,
        "LRU hot hit ratio {:.3}",
        lru.hot_hit_ratio
    );
    assert_eq!(
        lru.hot_resident, 0,
        "LRU kept hot keys through a quiet scan"
    );
    assert_eq!(lru.scan_hits, 0, "a one-off scan cannot hit");
    for policy in [EvictionPolicy::WTinyLfu, EvictionPolicy::S3Fifo] {
        let o = run(policy, 1);
        eprintln!(
            "{policy}: hot hit ratio {:.3} (LRU {:.3}), hot resident {}/{HOT} (LRU {})",
            o.hot_hit_ratio, lru.hot_hit_ratio, o.hot_resident, lru.hot_resident
        );
        assert_eq!(o.scan_hits, 0, "{policy}: a one-off scan cannot hit");
        assert!(
            o.hot_hit_ratio >= 0.8 && o.hot_hit_ratio >= lru.hot_hit_ratio + 0.5,
            "{policy}: hot hit ratio {:.3} vs LRU {:.3}",
            o.hot_hit_ratio,
            lru.hot_hit_ratio
        );
        assert!(
            o.hot_resident >= HOT * 4 / 5,
            "{policy}: only {}/{HOT} hot keys survived the scan",
            o.hot_resident
        );
    }
}

/// The same with the capacity split over 4 shards (25 each, a hot share of ~12.5 per shard):
/// the margin must survive sharding.
#[test]
fn scan_resistance_survives_sharding() {
    let lru = run(EvictionPolicy::Lru, 4);
    assert!(lru.hot_hit_ratio < 0.1, "LRU {:.3}", lru.hot_hit_ratio);
    for policy in [EvictionPolicy::WTinyLfu, EvictionPolicy::S3Fifo] {
        let o = run(policy, 4);
        eprintln!(
            "{policy} x4 shards: hot hit ratio {:.3}, hot resident {}/{HOT}",
            o.hot_hit_ratio, o.hot_resident
        );
        assert!(
            o.hot_hit_ratio >= lru.hot_hit_ratio + 0.5,
            "{policy}: hot hit ratio {:.3} vs LRU {:.3}",
            o.hot_hit_ratio,
            lru.hot_hit_ratio
        );
        assert!(
            o.hot_resident >= HOT / 2,
            "{policy}: only {}/{HOT}",
            o.hot_resident
        );
    }
}
