//! Helpers shared by the integration tests (`mod common;`).
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use layercache_memory::{Cache, EvictionPolicy, NotAdmitted};
use proptest::prelude::*;

/// SipHash with fixed keys: deterministic across runs and processes.
pub(crate) type Fixed = BuildHasherDefault<DefaultHasher>;
pub(crate) type K = u32;
/// A value is `(serial << 8) | weight`, so every written value is distinct and carries its
/// weight for the weigher of weighted caches.
pub(crate) type V = u64;

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Get(K),
    /// Key and a raw weight that each test maps into its own weight range.
    Insert(K, u32),
    Remove(K),
    Clear,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    New,
    Replaced(V),
    Rejected,
}

pub(crate) fn outcome(r: Result<Option<V>, NotAdmitted<K, V>>) -> Outcome {
    match r {
        Ok(None) => Outcome::New,
        Ok(Some(v)) => Outcome::Replaced(v),
        Err(_) => Outcome::Rejected,
    }
}

/// A value's weight under the weigher of [`build`].
pub(crate) fn weight_of(v: V) -> u32 {
    (v & 0xFF) as u32
}

/// A cache with the fixed hasher; weighted caches weigh a value by its low byte.
pub(crate) fn build(
    policy: EvictionPolicy,
    cap: u64,
    shards: usize,
    weighted: bool,
) -> Cache<K, V, Fixed> {
    let b = Cache::builder()
        .max_capacity(cap)
        .eviction_policy(policy)
        .shards(shards);
    if weighted {
        b.weigher(|_: &K, v: &V| weight_of(*v))
            .hasher(Fixed::default())
            .build()
    } else {
        b.hasher(Fixed::default()).build()
    }
}

/// Operations over keys `0..nkeys`, biased towards the first `hot` keys so that hits,
/// replaces and re-inserts are common.
pub(crate) fn op(hot: K, nkeys: K) -> impl Strategy<Value = Op> {
    let key = prop_oneof![3 => 0..hot, 1 => 0..nkeys];
    prop_oneof![
        50 => key.clone().prop_map(Op::Get),
        40 => (key.clone(), any::<u32>()).prop_map(|(k, w)| Op::Insert(k, w)),
        10 => key.prop_map(Op::Remove),
        1 => Just(Op::Clear),
    ]
}

pub(crate) fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// The bounds of every threaded test (`within`, `Deadline`) are the unit tests' own helpers,
// shared by path so the two kinds of test cannot drift apart.
#[path = "../../src/test_support.rs"]
mod test_support;
#[allow(unused_imports)] // not every test file has threads to bound
pub(crate) use test_support::{within, Deadline};
