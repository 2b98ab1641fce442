//! Reads, writes, promotion, planted bytes, negative caching, a dead L2, loader errors,
//! payload size and compression.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use layercache::{envelope, BreakerConfig, EntryOptions, Error, Tier, TieredCache};

use super::{after_first_poll, Backend, Counter, Env, L1_TTL, MS, TTL};

/// `set` writes both tiers under `name:key` with the TTL; another instance finds the value
/// in L2 and promotes it; `remove` clears both tiers.
pub(crate) async fn set_get_remove_and_promotion<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let a = env.cache("p");
    a.set(1, "one".into()).await.unwrap();
    let bytes = backend
        .raw(b"p:1")
        .await
        .expect("written to L2 under name:key");
    backend.assert_ttl(b"p:1", Some(TTL)).await;
    assert!(envelope::decode(b"p:1", &bytes, 1 << 20).is_ok());
    // Another instance (its own L1) finds it in L2 and promotes it.
    let b = env.cache("p");
    assert_eq!(b.l1_entry_count(), 0);
    assert_eq!(b.get(&1).await.unwrap().as_deref(), Some("one"));
    assert_eq!(b.l1_entry_count(), 1, "promoted into L1");
    let calls = env.calls();
    assert_eq!(b.get(&1).await.unwrap().as_deref(), Some("one"));
    assert_eq!(env.calls(), calls, "the second read is an L1 hit");
    // remove reaches both tiers.
    b.remove(&1).await.unwrap();
    assert!(backend.raw(b"p:1").await.is_none(), "gone from L2");
    assert_eq!(b.get(&1).await.unwrap(), None);
    assert_eq!(env.cache("p").get(&1).await.unwrap(), None);
}

/// `get_or_load` runs its loader once; then L2 serves another instance, whose loader does
/// not run.
pub(crate) async fn get_or_load_runs_once_then_l2_serves_others<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let (a, c) = (env.cache("gl"), env.cache("gl"));
    let loads = AtomicUsize::new(0);
    let v = a
        .get_or_load(2, || async {
            loads.fetch_add(1, SeqCst);
            Ok::<_, io::Error>("desk".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "desk");
    let v = c
        .get_or_load(2, || async {
            loads.fetch_add(1, SeqCst);
            Ok::<_, io::Error>("not from the origin".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "desk", "served from L2");
    assert_eq!(loads.load(SeqCst), 1);
    backend.assert_ttl(b"gl:2", Some(TTL)).await;
    // After the L1 TTL, L1 copies are gone and L2 (TTL not reached) serves them again.
    env.advance(L1_TTL - MS);
    let calls = env.calls();
    assert_eq!(a.get(&2).await.unwrap().as_deref(), Some("desk"));
    assert_eq!(env.calls(), calls, "an L1 hit until the L1 TTL");
    env.advance(MS);
    assert_eq!(a.get(&2).await.unwrap().as_deref(), Some("desk"));
    assert_eq!(env.calls(), calls + 1, "read from L2 at the L1 TTL");
    // At the TTL the value is gone from both tiers: the loader runs again.
    env.advance(TTL - L1_TTL);
    let v = c
        .get_or_load(2, || async {
            loads.fetch_add(1, SeqCst);
            Ok::<_, io::Error>("desk again".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "desk again", "expired at the TTL");
    assert_eq!(loads.load(SeqCst), 2);
}

/// `get_many_or_load` over 100 keys of which L2 has 50: one L2 `get_many`, one loader
/// call with only the other 50, one `set_many` of what it loaded, with the TTL.
pub(crate) async fn batch_reads_l2_then_loads_the_rest<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let a = env.cache("batch");
    for k in 100..150u64 {
        a.set(k, format!("p{k}")).await.unwrap();
    }
    let fresh = env.cache("batch");
    let batch_calls = AtomicUsize::new(0);
    let l2_calls = env.calls();
    let got = fresh
        .get_many_or_load((100..200).collect(), |missing: Vec<u64>| {
            batch_calls.fetch_add(1, SeqCst);
            async move {
                assert!(
                    missing.iter().all(|&k| k >= 150),
                    "only L2 misses are loaded"
                );
                Ok::<_, io::Error>(
                    missing
                        .into_iter()
                        .map(|k| (k, format!("p{k}")))
                        .collect::<HashMap<_, _>>(),
                )
            }
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 100);
    assert!((100..200).all(|k| got[&k] == format!("p{k}")));
    assert_eq!(batch_calls.load(SeqCst), 1);
    // With conditional writes, each loaded key is filled under a lease: an add before the
    // load and a compare-and-set after it (concurrent calls; see `crate::l2`).
    let writes = if env.probe.supports_conditional_writes() {
        100
    } else {
        1
    };
    assert_eq!(
        env.calls() - l2_calls,
        1 + writes,
        "one get_many for the 100 keys, then the writes of the 50 loaded"
    );
    backend.assert_ttl(b"batch:199", Some(TTL)).await;
    assert_eq!(
        env.cache("batch").get(&199).await.unwrap().as_deref(),
        Some("p199"),
        "batch-loaded values reach L2"
    );
}

/// Bytes in L2 that are not this key's envelope are misses (never panics), are deleted, and
/// are replaced by the next load.
pub(crate) async fn planted_bytes_are_misses_and_are_deleted<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let c = env.cache("corrupt");
    let another = envelope::encode(b"corrupt:8", Some(b"\x03abc"), 0, None, 1024);
    let valid = envelope::encode(b"corrupt:7", Some(b"\x03abc"), 0, None, 1024);
    let planted: [&[u8]; 6] = [
        b"random bytes that are not an envelope at all",
        b"\x00\xffrandom garbage, not an envelope",
        &another,                  // another key's envelope
        &valid[..valid.len() - 1], // truncated
        &valid[..valid.len() - 2],
        &[],
    ];
    // The planted envelope would be a hit if it were whole.
    backend.plant(b"corrupt:7", &valid).await;
    assert_eq!(
        env.cache("corrupt").get(&7).await.unwrap().as_deref(),
        Some("abc")
    );
    for bytes in planted {
        backend.plant(b"corrupt:7", bytes).await;
        let probe = env.cache("corrupt");
        assert_eq!(probe.get(&7).await.unwrap(), None, "{bytes:?}");
        assert!(
            backend.raw(b"corrupt:7").await.is_none(),
            "corrupt entry deleted: {bytes:?}"
        );
        backend.plant(b"corrupt:7", bytes).await;
        assert_eq!(c.get(&7).await.unwrap(), None, "{bytes:?}");
        let v = c
            .get_or_load(7, || async { Ok::<_, io::Error>("chair".to_string()) })
            .await
            .unwrap();
        assert_eq!(v, "chair");
        assert_eq!(
            env.cache("corrupt").get(&7).await.unwrap().as_deref(),
            Some("chair"),
            "overwritten"
        );
        c.remove(&7).await.unwrap();
    }
}

/// With a `negative_ttl`, an optional loader's `None` is cached in both tiers with that
/// TTL: later calls, of this instance or another, do not run the loader; `get_or_load`
/// loads a value over it.
pub(crate) async fn absences_are_cached_for_the_negative_ttl<B: Backend>(backend: &B) {
    const NEGATIVE_TTL: Duration = Duration::from_secs(30);
    let env = Env::new(backend);
    let build = || {
        env.builder::<String>("n")
            .default_entry_options(EntryOptions::new().negative_ttl(NEGATIVE_TTL))
            .build()
    };
    let c = build();
    let calls = AtomicUsize::new(0);
    let absent = || async {
        calls.fetch_add(1, SeqCst);
        Ok::<_, io::Error>(None)
    };
    for _ in 0..3 {
        assert_eq!(c.get_or_load_optional(5, absent).await.unwrap(), None);
    }
    assert_eq!(calls.load(SeqCst), 1);
    assert!(
        backend.raw(b"n:5").await.is_some(),
        "the absence is in L2 too"
    );
    backend.assert_ttl(b"n:5", Some(NEGATIVE_TTL)).await;
    let other = build();
    assert_eq!(other.get_or_load_optional(5, absent).await.unwrap(), None);
    assert_eq!(other.get(&5).await.unwrap(), None);
    assert_eq!(
        calls.load(SeqCst),
        1,
        "another instance reads the absence from L2"
    );
    // The absence lives for the negative TTL, in L1 and in L2, and not a millisecond more.
    env.advance(NEGATIVE_TTL - MS);
    assert_eq!(c.get_or_load_optional(5, absent).await.unwrap(), None);
    assert_eq!(build().get_or_load_optional(5, absent).await.unwrap(), None);
    assert_eq!(calls.load(SeqCst), 1, "cached until the negative TTL");
    env.advance(MS);
    assert_eq!(c.get_or_load_optional(5, absent).await.unwrap(), None);
    assert_eq!(
        calls.load(SeqCst),
        2,
        "expired in L1 and L2 at the negative TTL"
    );
    // get_or_load needs a value: it loads one over the cached absence.
    let v = c
        .get_or_load(5, || async { Ok::<_, io::Error>("now here".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "now here");
    assert_eq!(
        build().get(&5).await.unwrap().as_deref(),
        Some("now here"),
        "the value replaced the absence in L2"
    );
}

/// With L2 failing every call, every load succeeds from its loader, the breaker opens and
/// caps the calls; writes report the failure and still update L1.
pub(crate) async fn a_dead_l2_never_fails_a_load_and_the_breaker_caps_calls<B: Backend>(
    backend: &B,
) {
    let env = Env::new(backend);
    let c: TieredCache<u64, String> = env
        .builder("d")
        .breaker(BreakerConfig {
            open_for: Duration::from_secs(3600),
            ..BreakerConfig::default()
        })
        .build();
    env.probe.set_down(true);
    for k in 0..200u64 {
        let v = c
            .get_or_load(k, || async move { Ok::<_, io::Error>(format!("v{k}")) })
            .await
            .unwrap();
        assert_eq!(v, format!("v{k}"));
    }
    assert!(c.l2_breaker_open());
    assert!(env.calls() <= 5, "{} calls", env.calls());
    // Writes are skipped with an error the caller can see, and L1 still has the value.
    assert!(c.set(1000, "x".into()).await.is_err());
    assert_eq!(c.get(&1000).await.unwrap().as_deref(), Some("x"));
    assert!(
        backend.raw(b"d:0").await.is_none() && backend.raw(b"d:1000").await.is_none(),
        "nothing reached the tier"
    );
}

/// A loader's error reaches every caller waiting on that load (one run, one shared error)
/// and is not cached, in L1 or L2: the next call loads again.
pub(crate) async fn loader_errors_are_shared_and_not_cached<B: Backend>(backend: &B) {
    const CALLERS: usize = 16;
    // Without an L2.
    let c: TieredCache<u64, String> = TieredCache::builder("e").build();
    let e = c
        .get_or_load(1, || async {
            Err::<String, _>(io::Error::other("origin down"))
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("origin down"), "{e}");
    let v = c
        .get_or_load(1, || async { Ok::<_, io::Error>("up".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "up");

    // Over the backend, with callers waiting on the failing load.
    let env = Env::new(backend);
    let c = env.cache("e2");
    let (runs, polled) = (Arc::new(AtomicUsize::new(0)), Counter::default());
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (c, runs, polled) = (c.clone(), runs.clone(), polled.clone());
            tokio::spawn(async move {
                let arrived = polled.clone();
                let load = c.get_or_load(1, move || async move {
                    runs.fetch_add(1, SeqCst);
                    // Fail only once every caller has asked.
                    polled.reached(CALLERS).await;
                    Err::<String, _>(io::Error::other("origin down"))
                });
                after_first_poll(load, move || arrived.bump()).await
            })
        })
        .collect();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Err(Error::Loader(e)) => errors.push(e),
            other => panic!("expected the loader's error, got {other:?}"),
        }
    }
    assert_eq!(runs.load(SeqCst), 1, "one load for all callers");
    assert!(
        errors
            .iter()
            .all(|e| Arc::ptr_eq(e, &errors[0]) && e.to_string() == "origin down"),
        "every caller gets the one error"
    );
    assert!(backend.raw(b"e2:1").await.is_none(), "nothing in L2");
    let v = c
        .get_or_load(1, || async { Ok::<_, io::Error>("up".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "up", "the error was not cached");
    assert!(backend.raw(b"e2:1").await.is_some());
}

/// Values whose encoding is over `max_payload` live in L1 only; compressible values over
/// `compress_above` are stored compressed, and read back whole.
pub(crate) async fn oversized_values_stay_in_l1_and_large_ones_are_compressed<B: Backend>(
    backend: &B,
) {
    let env = Env::new(backend);
    let build = || env.builder::<Vec<u8>>("big").max_payload(1000).build();
    let c = build();
    c.set(1, vec![7; 5000]).await.unwrap();
    assert!(backend.raw(b"big:1").await.is_none());
    assert_eq!(c.get(&1).await.unwrap().map(|v| v.len()), Some(5000));
    assert_eq!(build().get(&1).await.unwrap(), None, "not in L2");
    // A value under the cap goes to L2.
    c.set(2, vec![7; 500]).await.unwrap();
    assert_eq!(build().get(&2).await.unwrap(), Some(vec![7; 500]));
    // Compressible values under the cap are compressed in L2.
    let z = || env.builder::<Vec<u8>>("z").build();
    z().set(1, vec![0; 100_000]).await.unwrap();
    let stored = backend.raw(b"z:1").await.expect("in L2");
    assert!(stored.len() < 2_000, "{} bytes stored", stored.len());
    assert_eq!(z().get(&1).await.unwrap(), Some(vec![0; 100_000]));
}
