//! Coalesced loading: many callers of one key, batches among themselves, batches and single
//! loads of the same key, and batch loaders that leave keys out or fail.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use layercache::Error;

use super::{after_first_poll, Backend, Counter, Env, LIMIT};

/// 1000 tasks call `get_or_load` on one key; the loader finishes only once every call has
/// been polled once (so each is waiting on a load when it does). It runs once.
pub(crate) async fn a_thousand_concurrent_loads_of_one_key_run_the_loader_once<B: Backend>(
    backend: &B,
) {
    const CALLERS: usize = 1000;
    let env = Env::new(backend);
    let c = env.cache("co");
    let (calls, polled) = (Arc::new(AtomicUsize::new(0)), Counter::default());
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (c, calls, polled) = (c.clone(), calls.clone(), polled.clone());
            tokio::spawn(async move {
                let arrived = polled.clone();
                let load = c.get_or_load(9, move || async move {
                    calls.fetch_add(1, SeqCst);
                    polled.reached(CALLERS).await;
                    Ok::<_, io::Error>("nine".to_string())
                });
                after_first_poll(load, move || arrived.bump())
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "nine");
    }
    assert_eq!(calls.load(SeqCst), 1);
}

/// 1000 tasks each ask `get_many_or_load` for 10 of 100 keys. Every batch loader finishes
/// only once every call has been polled once and has had its L2 `get_many` answered (so
/// every call has registered its keys before any value exists). Each key is loaded exactly
/// once, and then a fresh instance finds all 100 in L2.
pub(crate) async fn batch_loads_load_each_key_once<B: Backend>(backend: &B) {
    const CALLERS: usize = 1000;
    let env = Env::new(backend);
    let c = env.cache("many");
    let loaded = Arc::new(Mutex::new(Vec::<u64>::new()));
    let (batches, polled) = (Arc::new(AtomicUsize::new(0)), Counter::default());
    let l2_answered = env.probe.get_manys_done.clone();
    let tasks: Vec<_> = (0..CALLERS as u64)
        .map(|i| {
            let (c, loaded, batches) = (c.clone(), loaded.clone(), batches.clone());
            let (polled, l2_answered) = (polled.clone(), l2_answered.clone());
            tokio::spawn(async move {
                // Each call asks for 10 of the 100 keys.
                let keys: Vec<u64> = (0..10).map(|j| (i * 7 + j * 13) % 100).collect();
                let arrived = polled.clone();
                let call = c.get_many_or_load(keys.clone(), |missing: Vec<u64>| {
                    let (loaded, batches) = (loaded.clone(), batches.clone());
                    let (polled, l2_answered) = (polled.clone(), l2_answered.clone());
                    async move {
                        batches.fetch_add(1, SeqCst);
                        loaded.lock().unwrap().extend(&missing);
                        polled.reached(CALLERS).await;
                        // One get_many per call (as documented); a bound, so that a change
                        // there fails with this message rather than as a hang.
                        let answered = l2_answered.reached(CALLERS);
                        if tokio::time::timeout(LIMIT / 2, answered).await.is_err() {
                            panic!(
                                "{} of {CALLERS} calls had their L2 get_many answered: \
                                 does each call still read L2 with one get_many?",
                                l2_answered.get()
                            );
                        }
                        Ok::<_, io::Error>(missing.iter().map(|&k| (k, format!("v{k}"))).collect())
                    }
                });
                let got = after_first_poll(call, move || arrived.bump())
                    .await
                    .unwrap();
                for k in keys {
                    assert_eq!(got[&k], format!("v{k}"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut loaded = loaded.lock().unwrap().clone();
    let n = loaded.len();
    loaded.sort_unstable();
    loaded.dedup();
    assert_eq!(n, 100, "every key loaded exactly once");
    assert_eq!(loaded.len(), 100);
    assert!(batches.load(SeqCst) <= 100);
    // All 100 are now one L2 get_many away for a fresh instance.
    let fresh = env.cache("many");
    let got = fresh
        .get_many_or_load((0..100).collect(), |_: Vec<u64>| async {
            Err::<HashMap<u64, String>, _>(io::Error::other("not called"))
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 100);
}

/// Keys the batch loader does not return are absent from the result and cached nowhere:
/// the next call (this instance or another) asks the loader for exactly those again.
pub(crate) async fn keys_a_batch_loader_leaves_out_are_absent_and_not_cached<B: Backend>(
    backend: &B,
) {
    let env = Env::new(backend);
    let c = env.cache("gap");
    let asked = Mutex::new(Vec::<Vec<u64>>::new());
    let evens_only = |mut keys: Vec<u64>| {
        keys.sort_unstable();
        asked.lock().unwrap().push(keys.clone());
        async move {
            Ok::<_, io::Error>(
                keys.into_iter()
                    .filter(|k| k % 2 == 0)
                    .map(|k| (k, format!("g{k}")))
                    .collect::<HashMap<_, _>>(),
            )
        }
    };
    let evens: HashMap<u64, String> = (2..=10).step_by(2).map(|k| (k, format!("g{k}"))).collect();
    let odds: Vec<u64> = (1..=9).step_by(2).collect();
    assert_eq!(
        c.get_many_or_load((1..=10).collect(), evens_only)
            .await
            .unwrap(),
        evens
    );
    for k in 1..=10u64 {
        let stored = backend.raw(format!("gap:{k}").as_bytes()).await;
        assert_eq!(stored.is_some(), k % 2 == 0, "key {k} in L2");
    }
    assert_eq!(
        c.get_many_or_load((1..=10).collect(), evens_only)
            .await
            .unwrap(),
        evens
    );
    assert_eq!(c.get(&1).await.unwrap(), None);
    let fresh = env.cache("gap");
    assert_eq!(
        fresh
            .get_many_or_load((1..=10).collect(), evens_only)
            .await
            .unwrap(),
        evens
    );
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![(1..=10).collect(), odds.clone(), odds],
        "the left-out keys are asked for again, and only they"
    );
}

/// A failing batch loader fails the call with its error and caches nothing: the next call
/// asks the loader for every key again. A single load waiting on the failed batch gets the
/// same error.
pub(crate) async fn a_failed_batch_load_fails_the_call_and_caches_nothing<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let c = env.cache("berr");
    c.set(1, "cached".into()).await.unwrap();
    let asked = Mutex::new(Vec::<Vec<u64>>::new());
    let failing = |mut keys: Vec<u64>| {
        keys.sort_unstable();
        asked.lock().unwrap().push(keys);
        async { Err::<HashMap<u64, String>, _>(io::Error::other("origin down")) }
    };
    for _ in 0..2 {
        match c.get_many_or_load((1..=5).collect(), failing).await {
            Err(Error::Loader(e)) => assert_eq!(e.to_string(), "origin down"),
            other => panic!("expected the loader's error, got {other:?}"),
        }
    }
    assert_eq!(
        *asked.lock().unwrap(),
        vec![vec![2, 3, 4, 5], vec![2, 3, 4, 5]],
        "the failure was not cached"
    );
    for k in 2..=5u64 {
        assert!(backend.raw(format!("berr:{k}").as_bytes()).await.is_none());
    }
    let ok = c
        .get_many_or_load((1..=5).collect(), |keys: Vec<u64>| async move {
            Ok::<_, io::Error>(keys.into_iter().map(|k| (k, format!("b{k}"))).collect())
        })
        .await
        .unwrap();
    assert_eq!(ok.len(), 5);
    assert_eq!(ok[&1], "cached");

    // A single load of a key the failing batch is loading shares the batch's error.
    let (batch_started, release) = (Counter::default(), Counter::default());
    let batch = tokio::spawn({
        let (c, batch_started, release) = (c.clone(), batch_started.clone(), release.clone());
        async move {
            c.get_many_or_load(vec![10, 11], move |_: Vec<u64>| {
                let (batch_started, release) = (batch_started.clone(), release.clone());
                async move {
                    batch_started.bump();
                    release.reached(1).await;
                    Err::<HashMap<u64, String>, _>(io::Error::other("batch down"))
                }
            })
            .await
        }
    });
    // Key 10 is in flight once the batch loader runs.
    batch_started.reached(1).await;
    let single_runs = AtomicUsize::new(0);
    let single = c.get_or_load(10, || async {
        single_runs.fetch_add(1, SeqCst);
        Ok::<_, io::Error>("single".to_string())
    });
    match after_first_poll(single, || release.bump()).await {
        Err(Error::Loader(e)) => assert_eq!(e.to_string(), "batch down"),
        other => panic!("expected the batch's error, got {other:?}"),
    }
    assert_eq!(
        single_runs.load(SeqCst),
        0,
        "the single load waited on the batch"
    );
    match batch.await.unwrap() {
        Err(Error::Loader(e)) => assert_eq!(e.to_string(), "batch down"),
        other => panic!("expected the loader's error, got {other:?}"),
    }
}

/// A batch asking for a key that a `get_or_load` is loading waits for that load: the key
/// never reaches the batch loader, and the single loader runs once.
pub(crate) async fn a_batch_waits_for_a_single_load_of_its_key<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let c = env.cache("bs");
    let (single_started, release) = (Counter::default(), Counter::default());
    let single_runs = Arc::new(AtomicUsize::new(0));
    let single = tokio::spawn({
        let (c, single_started, release) = (c.clone(), single_started.clone(), release.clone());
        let single_runs = single_runs.clone();
        async move {
            c.get_or_load(1, move || async move {
                single_runs.fetch_add(1, SeqCst);
                single_started.bump();
                release.reached(1).await;
                Ok::<_, io::Error>("from the single load".to_string())
            })
            .await
        }
    });
    // Key 1 is in flight once its loader runs.
    single_started.reached(1).await;
    let asked = Mutex::new(Vec::<Vec<u64>>::new());
    let got = c
        .get_many_or_load(vec![1, 2], |keys: Vec<u64>| {
            asked.lock().unwrap().push(keys.clone());
            // The batch loader runs once every key of the call is polled: key 1 is then
            // waiting on the single load, which may finish now.
            release.bump();
            async move {
                Ok::<_, io::Error>(
                    keys.into_iter()
                        .map(|k| (k, format!("batch {k}")))
                        .collect(),
                )
            }
        })
        .await
        .unwrap();
    assert_eq!(
        *asked.lock().unwrap(),
        vec![vec![2]],
        "key 1 not batch-loaded"
    );
    assert_eq!(got[&1], "from the single load");
    assert_eq!(got[&2], "batch 2");
    assert_eq!(single.await.unwrap().unwrap(), "from the single load");
    assert_eq!(single_runs.load(SeqCst), 1);
}

/// A `get_or_load` of a key that a batch is loading waits for the batch: its own loader
/// never runs, and it gets the batch's value.
pub(crate) async fn a_single_load_waits_for_a_batch_of_its_key<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let c = env.cache("sb");
    let (batch_started, release) = (Counter::default(), Counter::default());
    let batch_calls = Arc::new(AtomicUsize::new(0));
    let batch = tokio::spawn({
        let (c, batch_started, release) = (c.clone(), batch_started.clone(), release.clone());
        let batch_calls = batch_calls.clone();
        async move {
            c.get_many_or_load(vec![1, 2], move |keys: Vec<u64>| {
                batch_calls.fetch_add(1, SeqCst);
                let (batch_started, release) = (batch_started.clone(), release.clone());
                async move {
                    batch_started.bump();
                    release.reached(1).await;
                    Ok::<_, io::Error>(
                        keys.into_iter()
                            .map(|k| (k, format!("batch {k}")))
                            .collect(),
                    )
                }
            })
            .await
        }
    });
    // Keys 1 and 2 are in flight once the batch loader runs.
    batch_started.reached(1).await;
    let single_runs = AtomicUsize::new(0);
    let single = c.get_or_load(1, || async {
        single_runs.fetch_add(1, SeqCst);
        Ok::<_, io::Error>("from the single load".to_string())
    });
    // Its first poll registers it as a waiter on key 1 (or runs its loader): then release.
    let v = after_first_poll(single, || release.bump()).await.unwrap();
    assert_eq!(v, "batch 1");
    assert_eq!(single_runs.load(SeqCst), 0, "the single loader never ran");
    let got = batch.await.unwrap().unwrap();
    assert_eq!((got[&1].as_str(), got[&2].as_str()), ("batch 1", "batch 2"));
    assert_eq!(batch_calls.load(SeqCst), 1);
}
