//! Helpers shared by the integration tests (`mod common;`).
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::panic::resume_unwind;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

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

/// Runs `f` on a thread of its own and returns what it returns (re-raising its panic, if it
/// panicked); fails the test with "the test hung: ..." if `f` has not finished after `secs`
/// seconds. A test whose threads could block forever (a lock, a join, a barrier, a wait for
/// a load) runs its body under this, so that a hang fails the test instead of stalling the
/// run; the hung threads are left behind and end with the test binary.
#[track_caller]
pub(crate) fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let name = thread::current()
        .name()
        .map_or_else(|| "test body".to_string(), |n| format!("{n} (body)"));
    let body = thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn the test body");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        // The body sent its result as its last step: the join only waits for it to return.
        Ok(v) => {
            let _ = body.join();
            v
        }
        Err(RecvTimeoutError::Timeout) => {
            panic!("the test hung: {what} did not finish within {secs} s")
        }
        Err(RecvTimeoutError::Disconnected) => match body.join() {
            Err(panic) => resume_unwind(panic),
            Ok(()) => unreachable!("the body returned without sending its result"),
        },
    }
}

/// A time limit for the waits of one test (a thread spinning until another one is done, a
/// poll until a condition holds). Copied into each thread that waits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Instant,
    secs: u64,
}

impl Deadline {
    /// `secs` seconds from now.
    pub(crate) fn after(secs: u64) -> Self {
        Deadline {
            at: Instant::now() + Duration::from_secs(secs),
            secs,
        }
    }

    /// Fails (panics on the calling thread) once the deadline has passed, saying what the
    /// caller was still waiting for. Called on each round of a wait loop.
    #[track_caller]
    pub(crate) fn check(&self, waiting_for: fmt::Arguments<'_>) {
        if Instant::now() > self.at {
            panic!("still waiting for {waiting_for} after {} s", self.secs);
        }
    }
}
