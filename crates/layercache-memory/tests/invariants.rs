//! Engine invariants for every policy (W-TinyLFU included), with one or several shards,
//! unit weights or weights including 0 and too-heavy ones: after every operation
//! `validate()` is Ok, `weighted_size() <= max_capacity`, `entry_count()` equals the keys
//! `contains_key` reports and the entries `iter()` yields (whose weights sum to
//! `weighted_size()`), and no operation ever returns a value that is not the last one written
//! for its key. Plus edge cases (heavy entries, zero capacity, `invalidate_all`, unbounded
//! caches), documented contracts, and a W-TinyLFU stress run long enough for the hill climber
//! to move the window both ways.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{build, config, op, Op, K, V};
use layercache_memory::{Cache, EvictionPolicy};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Invariants for every policy (W-TinyLFU included), several shards, weights including 0
// ---------------------------------------------------------------------------------------------

const INV_KEYS: u32 = 64;

/// Weights: `raw % (share + 3)`, where share = cap / shards: zero, fitting, and too heavy.
fn check_invariants(
    policy: EvictionPolicy,
    cap: u64,
    shards: usize,
    weighted: bool,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let cache = build(policy, cap, shards, weighted);
    let n = cache.shard_count() as u64;
    prop_assert_eq!(n, shards as u64);
    let (min_share, max_share) = (cap / n, cap / n + u64::from(!cap.is_multiple_of(n)));
    // The last value written to each key that the cache may still hold.
    let mut last: HashMap<K, V> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        let serial = step as u64 + 1;
        match *op {
            Op::Get(k) => {
                if let Some(v) = cache.get(&k) {
                    prop_assert_eq!(
                        Some(&v),
                        last.get(&k),
                        "step {}: stale or foreign value",
                        step
                    );
                }
            }
            Op::Insert(k, raw) => {
                let w = if weighted {
                    raw % (min_share as u32 + 3)
                } else {
                    1
                };
                let v = serial << 8 | V::from(w);
                match cache.try_insert(k, v) {
                    Ok(old) => {
                        prop_assert!(
                            u64::from(w) <= max_share,
                            "step {}: stored weight {} > share",
                            step,
                            w
                        );
                        if let Some(o) = old {
                            prop_assert_eq!(
                                Some(&o),
                                last.get(&k),
                                "step {}: wrong old value",
                                step
                            );
                        } else {
                            prop_assert!(
                                cache.contains_key(&k),
                                "step {}: new entry not stored",
                                step
                            );
                        }
                        last.insert(k, v);
                    }
                    Err(e) => {
                        prop_assert!(
                            u64::from(w) > min_share || min_share == 0,
                            "step {}: weight {} rejected",
                            step,
                            w
                        );
                        prop_assert_eq!((e.key, e.value, e.weight), (k, v, w));
                        prop_assert!(
                            !cache.contains_key(&k),
                            "step {}: rejected key still present",
                            step
                        );
                        last.remove(&k);
                    }
                }
            }
            Op::Remove(k) => {
                let old = cache.remove(&k);
                if old.is_some() {
                    prop_assert_eq!(
                        old.as_ref(),
                        last.get(&k),
                        "step {}: wrong removed value",
                        step
                    );
                }
                prop_assert!(!cache.contains_key(&k));
                last.remove(&k);
            }
            Op::Clear => {
                cache.invalidate_all();
                last.clear();
                prop_assert_eq!(cache.entry_count(), 0);
            }
        }
        if let Err(e) = cache.validate() {
            return Err(TestCaseError::fail(format!("step {step}: {op:?}: {e}")));
        }
        let size = cache.weighted_size();
        prop_assert!(
            size <= cap,
            "step {}: weighted size {} > capacity {}",
            step,
            size,
            cap
        );
        let present = (0..INV_KEYS).filter(|k| cache.contains_key(k)).count() as u64;
        prop_assert_eq!(cache.entry_count(), present, "step {}", step);
        let items: Vec<(K, V)> = cache.iter().collect();
        prop_assert_eq!(items.len() as u64, present);
        let weight: u64 = items
            .iter()
            .map(|&(_, v)| if weighted { v & 0xFF } else { 1 })
            .sum();
        prop_assert_eq!(
            weight,
            size,
            "step {}: weights of iter() != weighted_size",
            step
        );
        for (k, v) in items {
            prop_assert_eq!(
                Some(&v),
                last.get(&k),
                "step {}: iter() yields a stale value",
                step
            );
        }
    }
    Ok(())
}

fn policy() -> impl Strategy<Value = EvictionPolicy> {
    prop::sample::select(EvictionPolicy::ALL.to_vec())
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn invariants_hold_for_every_policy(
        policy in policy(),
        cap in 0..48u64,
        shards in prop::sample::select(vec![1usize, 2, 4, 8]),
        weighted in any::<bool>(),
        ops in prop::collection::vec(op(16, INV_KEYS), 0..300),
    ) {
        check_invariants(policy, cap, shards, weighted, &ops)?;
    }

    /// W-TinyLFU's eviction rounds (candidates leaving the window duel probation's victim)
    /// only span several evictions when a heavy entry arrives: one shard, mixed weights.
    #[test]
    fn wtinylfu_weighted_invariants(
        cap in 8..64u64,
        ops in prop::collection::vec(op(16, INV_KEYS), 100..400),
    ) {
        check_invariants(EvictionPolicy::WTinyLfu, cap, 1, true, &ops)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Edge cases
// ---------------------------------------------------------------------------------------------

#[test]
fn entry_heavier_than_the_cache_is_never_stored_and_drops_the_old_value() {
    for policy in EvictionPolicy::ALL {
        let cache = build(policy, 10, 1, true);
        assert!(cache.try_insert(1, 1 << 8 | 4).is_ok());
        assert!(cache.try_insert(2, 2 << 8 | 5).is_ok());
        let err = cache.try_insert(1, 3 << 8 | 11).unwrap_err();
        assert_eq!(
            (err.key, err.value, err.weight),
            (1, 3 << 8 | 11, 11),
            "{policy}"
        );
        assert_eq!(cache.get(&1), None, "{policy}: old value survived");
        assert_eq!(
            cache.get(&2),
            Some(2 << 8 | 5),
            "{policy}: bystander evicted"
        );
        assert_eq!(cache.weighted_size(), 5, "{policy}");
        // A heavy new key is rejected without evicting anything.
        assert!(cache.try_insert(3, 4 << 8 | 11).is_err());
        assert!(!cache.contains_key(&3));
        assert_eq!(cache.entry_count(), 1, "{policy}");
        // Exactly the capacity fits.
        assert!(cache.try_insert(4, 5 << 8 | 10).is_ok(), "{policy}");
        assert_eq!(cache.get(&4), Some(5 << 8 | 10));
        assert_eq!(cache.weighted_size(), 10, "{policy}");
        cache.validate().unwrap();

        // With shards the bound is the shard's share: 10 over 2 shards is 5 each.
        let cache = build(policy, 10, 2, true);
        assert!(cache.try_insert(1, 1 << 8 | 5).is_ok(), "{policy}");
        assert!(cache.try_insert(1, 2 << 8 | 6).is_err(), "{policy}");
        assert!(!cache.contains_key(&1), "{policy}");
        cache.validate().unwrap();
    }
}

#[test]
fn zero_capacity_stores_nothing() {
    for policy in EvictionPolicy::ALL {
        for shards in [1, 4] {
            let cache = build(policy, 0, shards, false);
            for k in 0..100 {
                assert!(cache.try_insert(k, u64::from(k)).is_err(), "{policy}");
                cache.insert(k, u64::from(k));
                assert_eq!(cache.get(&k), None, "{policy}");
            }
            assert_eq!(cache.entry_count(), 0, "{policy}");
            assert_eq!(cache.weighted_size(), 0, "{policy}");
            assert_eq!(cache.iter().count(), 0, "{policy}");
            cache.validate().unwrap();
        }
    }
}

#[test]
fn invalidate_all_empties_and_the_cache_stays_usable() {
    for policy in EvictionPolicy::ALL {
        for shards in [1, 4] {
            let cache = build(policy, 64, shards, false);
            for round in 0..3u64 {
                for k in 0..200 {
                    cache.insert(k, round);
                    let _ = cache.get(&(k / 2));
                }
                assert!(cache.entry_count() > 0, "{policy}");
                cache.validate().unwrap();
                cache.invalidate_all();
                assert_eq!(cache.entry_count(), 0, "{policy}");
                assert_eq!(cache.weighted_size(), 0, "{policy}");
                assert!((0..200).all(|k| !cache.contains_key(&k)), "{policy}");
                assert_eq!(cache.iter().count(), 0, "{policy}");
                cache.validate().unwrap();
            }
            // Refills to exactly its capacity.
            for k in 0..64 {
                cache.insert(1000 + k, 0);
            }
            if shards == 1 {
                assert_eq!(cache.entry_count(), 64, "{policy}");
            }
            assert!(cache.entry_count() <= 64);
        }
    }
}

#[test]
fn unbounded_caches_keep_everything() {
    for policy in EvictionPolicy::ALL {
        // Default capacity (u64::MAX) and default shard count.
        let cache: Cache<u64, u64> = Cache::builder().eviction_policy(policy).build();
        assert_eq!(cache.max_capacity(), u64::MAX);
        assert_eq!(cache.eviction_policy(), policy);
        for k in 0..5_000 {
            cache.insert(k, k);
            let _ = cache.get(&(k / 3));
        }
        assert_eq!(cache.entry_count(), 5_000, "{policy}");
        assert!((0..5_000).all(|k| cache.get(&k) == Some(k)), "{policy}");
        cache.validate().unwrap();

        // The heaviest possible weights still fit in an unbounded weighted cache.
        let cache: Cache<u64, u64> = Cache::builder()
            .eviction_policy(policy)
            .weigher(|_, _| u32::MAX)
            .build();
        for k in 0..1_000 {
            assert!(cache.try_insert(k, k).is_ok(), "{policy}");
        }
        assert_eq!(
            cache.weighted_size(),
            1_000 * u64::from(u32::MAX),
            "{policy}"
        );
        cache.validate().unwrap();
    }
}

#[test]
fn the_weigher_runs_once_per_insert() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(10)
        .weigher(move |_, v: &u64| {
            counter.fetch_add(1, Ordering::Relaxed);
            *v as u32
        })
        .build();
    cache.insert(1, 3);
    cache.insert(1, 4); // replace
    let _ = cache.try_insert(2, 11); // too heavy
    let _ = cache.get(&1);
    let _ = cache.remove(&1);
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}

#[test]
fn iter_and_contains_key_do_not_count_as_access() {
    for policy in [
        EvictionPolicy::Lru,
        EvictionPolicy::Sieve,
        EvictionPolicy::Lfu,
    ] {
        let cache = build(policy, 3, 1, false);
        for k in 0..3 {
            cache.insert(k, 0);
        }
        for _ in 0..3 {
            assert!(cache.contains_key(&0));
            assert_eq!(cache.iter().count(), 3);
        }
        cache.insert(3, 0);
        // Key 0 is the oldest, least recently and least frequently used, never visited.
        assert!(!cache.contains_key(&0), "{policy}: a peek protected key 0");
        // ... while a real access does protect it.
        let cache = build(policy, 3, 1, false);
        for k in 0..3 {
            cache.insert(k, 0);
        }
        assert_eq!(cache.get(&0), Some(0));
        cache.insert(3, 0);
        assert!(
            cache.contains_key(&0),
            "{policy}: a hit did not protect key 0"
        );
    }
}

/// W-TinyLFU's hill climber samples `10 × capacity` requests and then moves capacity between
/// the window and the protected segment. Alternate frequency-heavy and recency-heavy phases
/// long enough for many adjustments both ways, weighted and not, checking the invariants.
#[test]
fn wtinylfu_survives_window_adaptation() {
    for (weighted, cap) in [(false, 120u64), (true, 300)] {
        for seed in 1..=3u64 {
            let cache = build(EvictionPolicy::WTinyLfu, cap, 1, weighted);
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move || {
                rng ^= rng >> 12;
                rng ^= rng << 25;
                rng ^= rng >> 27;
                rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 8
            };
            let mut serial = 0u64;
            let (mut hits, mut requests) = (0u64, 0u64);
            for phase in 0..8u64 {
                for i in 0..2_500u64 {
                    let k: K = if phase % 2 == 0 {
                        // Frequency-heavy: a skewed distribution over 600 keys.
                        let r = next() % 1_000;
                        ((r * r) / 1_700) as K
                    } else {
                        // Recency-heavy: a loop slightly larger than the cache, then new keys.
                        (1_000 + phase * 10_000 + (i % (cap * 3 / 2)) + i / 500) as K
                    };
                    requests += 1;
                    match cache.get(&k) {
                        Some(v) => {
                            assert_eq!(v >> 32, u64::from(k));
                            hits += 1;
                            if next() % 8 == 0 {
                                // A replace, with a new weight.
                                serial += 1;
                                let w = if weighted { next() % 9 } else { 1 };
                                cache.insert(k, u64::from(k) << 32 | serial << 8 | w);
                            }
                        }
                        None => {
                            serial += 1;
                            let w = if weighted { 1 + next() % 8 } else { 1 };
                            cache.insert(k, u64::from(k) << 32 | serial << 8 | w);
                        }
                    }
                    if next() % 64 == 0 {
                        cache.invalidate(&((next() % 600) as K));
                    }
                    if i % 250 == 0 {
                        if let Err(e) = cache.validate() {
                            panic!("weighted={weighted} seed {seed} phase {phase} op {i}: {e}");
                        }
                        assert!(cache.weighted_size() <= cap);
                    }
                }
            }
            cache.validate().unwrap();
            let items: Vec<(K, V)> = cache.iter().collect();
            assert_eq!(items.len() as u64, cache.entry_count());
            let w: u64 = items
                .iter()
                .map(|&(_, v)| if weighted { v & 0xFF } else { 1 })
                .sum();
            assert_eq!(w, cache.weighted_size());
            assert!(
                hits * 10 > requests,
                "hit ratio {hits}/{requests}: the workload is broken"
            );
        }
    }
}
