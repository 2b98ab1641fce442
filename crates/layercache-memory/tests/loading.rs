//! Loading with coalescing (`get_with`, `try_get_with`, async), computes, and what happens
//! when an initializer panics or is cancelled. Tests that could hang run under
//! [`common::within`], which fails them after a timeout instead.

mod common;

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::within;
use layercache_memory::{future, Cache, Computed, Op};

/// Widens the race window of an initializer. Not a wait for time: correctness never
/// depends on it.
fn linger() {
    thread::sleep(Duration::from_millis(20));
}

/// A key that counts how many times the cache compares it with an equal key. While a load
/// of a key that is not in the cache is in flight, the only such comparison is the
/// coalescer's: a caller that finds the load compares its key with the loading one, under
/// the lock of the in-flight table, and holds the load's slot when that lock is released,
/// before the leader can finish. So the count says how many callers wait for the load.
#[derive(Clone, Debug)]
struct Watched {
    id: u64,
    compared: Arc<AtomicUsize>,
}

impl Watched {
    fn new(id: u64) -> Self {
        Watched {
            id,
            compared: Arc::default(),
        }
    }

    /// How many callers joined the key's loads as waiters (see the type's docs).
    fn waiters(&self) -> usize {
        self.compared.load(Ordering::SeqCst)
    }
}

impl PartialEq for Watched {
    fn eq(&self, other: &Self) -> bool {
        self.compared.fetch_add(1, Ordering::SeqCst);
        self.id == other.id
    }
}

impl Eq for Watched {}

impl Hash for Watched {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

/// Polls `done` until it holds or 10 s have passed; returns whether it held. An initializer
/// calls it to hold its load open until the callers it expects wait for it.
fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

#[test]
fn sixty_four_threads_run_one_initializer() {
    within(30, "64 threads loading one key", || {
        let cache: Cache<u64, Arc<String>> = Cache::builder().record_stats().build();
        let calls = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    cache.get_with(7, || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        linger();
                        Arc::new("seven".to_string())
                    })
                })
            })
            .collect();
        for h in handles {
            assert_eq!(*h.join().unwrap(), "seven");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let stats = cache.stats();
        assert_eq!((stats.load_successes, stats.load_failures), (1, 0));
        assert_eq!(stats.insertions, 1);
        assert_eq!(stats.hits + stats.misses, 64);
        cache.validate().unwrap();
    });
}

#[test]
fn an_error_is_shared_and_nothing_is_cached() {
    within(30, "16 threads sharing one error", || {
        const N: usize = 16;
        let cache: Cache<Watched, u64> = Cache::new(100);
        let key = Watched::new(1);
        let calls = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(N));
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
                let key = key.clone();
                thread::spawn(move || {
                    barrier.wait();
                    cache.try_get_with(key.clone(), || {
                        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                        // Errors are not cached: fail only once every other caller waits for
                        // this load (or, if loads do not coalesce, as soon as a second runs).
                        wait_until(|| key.waiters() >= N - 1 || calls.load(Ordering::SeqCst) > 1);
                        Err::<u64, _>(format!("origin down ({n})"))
                    })
                })
            })
            .collect();
        let errors: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap_err())
            .collect();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one load for {N} callers");
        assert_eq!(key.waiters(), N - 1);
        // Every caller got the one load's very error.
        assert_eq!(*errors[0], "origin down (1)");
        assert!(errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])));
        assert!(cache.get(&key).is_none());
        assert_eq!(cache.entry_count(), 0);
    });
}

#[test]
fn a_panicking_initializer_never_hangs_its_waiters() {
    within(30, "64 threads whose loads all panic", || {
        let cache: Cache<u64, u64> = Cache::new(100);
        let calls = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    catch_unwind(AssertUnwindSafe(|| {
                        cache.get_with(1, || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(1));
                            panic!("initializer failed")
                        })
                    }))
                    .is_err()
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap(), "every caller sees a panic, none hangs");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 64, "each caller led in turn");
        assert_eq!(cache.entry_count(), 0);
        // The key is not stuck: a later load works.
        assert_eq!(cache.get_with(1, || 5), 5);
    });
}

#[test]
fn after_one_panic_the_next_caller_takes_over() {
    within(30, "32 threads after a panicking load", || {
        let cache: Cache<u64, u64> = Cache::new(100);
        let calls = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(32));
        let handles: Vec<_> = (0..32)
            .map(|_| {
                let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    catch_unwind(AssertUnwindSafe(|| {
                        cache.get_with(1, || {
                            let n = calls.fetch_add(1, Ordering::SeqCst);
                            linger();
                            if n == 0 {
                                panic!("first initializer fails");
                            }
                            42
                        })
                    }))
                    .ok()
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_none()).count(), 1);
        assert!(results.iter().flatten().all(|&v| v == 42));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn sixteen_threads_of_computes_lose_no_update() {
    within(60, "16 threads of computes", || {
        let cache: Cache<&'static str, u64> = Cache::new(100);
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let cache = cache.clone();
                thread::spawn(move || {
                    for _ in 0..10_000 {
                        cache.and_compute_with("n", |v| Op::Put(v.map_or(1, |n| n + 1)));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(cache.get("n"), Some(160_000));
        cache.validate().unwrap();
    });
}

#[test]
fn compute_results_say_what_happened() {
    let cache: Cache<u64, u64> = Cache::new(100);
    assert_eq!(cache.and_compute_with(1, |_| Op::Nop), Computed::StillNone);
    assert_eq!(
        cache.and_compute_with(1, |_| Op::Put(5)),
        Computed::Inserted(5)
    );
    assert_eq!(
        cache.and_compute_with(1, |_| Op::Nop),
        Computed::Unchanged(5)
    );
    assert_eq!(
        cache.entry(1).and_compute_with(|v| Op::Put(v.unwrap() + 1)),
        Computed::ReplacedWith(6)
    );
    assert_eq!(
        cache.and_compute_with(1, |_| Op::Remove),
        Computed::Removed(6)
    );
    assert_eq!(
        cache.and_compute_with(1, |_| Op::Remove),
        Computed::StillNone
    );
    assert_eq!(cache.entry(2).or_insert_with(|| 9), 9);
    assert_eq!(cache.optionally_get_with(3, || None), None);
    assert_eq!(cache.optionally_get_with(3, || Some(3)), Some(3));
    assert_eq!(cache.entry_count(), 2);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_thousand_tasks_run_one_async_initializer() {
    within(30, "1000 tasks loading one key", || {
        runtime().block_on(async {
            let cache: future::Cache<u64, u64> = future::Cache::new(100);
            let calls = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..1000)
                .map(|_| {
                    let (cache, calls) = (cache.clone(), calls.clone());
                    tokio::spawn(async move {
                        cache
                            .get_with(1, async {
                                calls.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                11
                            })
                            .await
                    })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), 11);
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        });
    });
}

#[test]
fn a_cancelled_async_leader_hands_over_to_a_waiter() {
    within(30, "waiters of a cancelled async leader", || {
        runtime().block_on(async {
            let cache: future::Cache<u64, u64> = future::Cache::new(100);
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let leader = {
                let cache = cache.clone();
                tokio::spawn(async move {
                    cache
                        .get_with(1, async move {
                            let _ = started_tx.send(());
                            std::future::pending::<u64>().await
                        })
                        .await
                })
            };
            started_rx.await.unwrap();
            let waiters: Vec<_> = (0..10)
                .map(|i| {
                    let cache = cache.clone();
                    tokio::spawn(async move { cache.get_with(1, async move { 100 + i }).await })
                })
                .collect();
            tokio::task::yield_now().await;
            leader.abort();
            assert!(leader.await.unwrap_err().is_cancelled());
            let mut values = Vec::new();
            for w in waiters {
                values.push(w.await.unwrap());
            }
            // One waiter took over; all got its value.
            assert!(values.iter().all(|&v| v == values[0] && v >= 100));
            assert_eq!(cache.get(&1).await, Some(values[0]));
        });
    });
}

#[test]
fn sync_and_async_callers_share_one_load() {
    within(30, "a sync and an async load of one key", || {
        let cache: future::Cache<Watched, u64> = future::Cache::new(100);
        let key = Watched::new(1);
        let calls = Arc::new(AtomicUsize::new(0));
        let (started_tx, started) = mpsc::channel();
        let blocking = {
            let (sync, calls, key) = (cache.as_sync().clone(), calls.clone(), key.clone());
            thread::spawn(move || {
                sync.get_with(key.clone(), || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    started_tx.send(()).unwrap();
                    // Hold the load open until the async caller waits for it.
                    wait_until(|| key.waiters() >= 1 || calls.load(Ordering::SeqCst) > 1);
                    1
                })
            })
        };
        // The sync load is in flight: the async caller finds it and waits for it.
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        let v = runtime().block_on(cache.get_with(key.clone(), async {
            calls.fetch_add(1, Ordering::SeqCst);
            2
        }));
        assert_eq!(
            (blocking.join().unwrap(), v),
            (1, 1),
            "the sync load's value"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(key.waiters(), 1);
    });
}

#[test]
fn async_computes_lose_no_update() {
    within(60, "8 tasks of async computes", || {
        runtime().block_on(async {
            let cache: future::Cache<u64, u64> = future::Cache::new(100);
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let cache = cache.clone();
                    tokio::spawn(async move {
                        for _ in 0..500 {
                            cache
                                .and_compute_with(1, |v| async move {
                                    tokio::task::yield_now().await;
                                    Op::Put(v.map_or(1, |n| n + 1))
                                })
                                .await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(cache.get(&1).await, Some(4000));
        });
    });
}

/// A future that is ready once `done` holds (`true`) or 10 s have passed (`false`); until
/// then it wakes itself to be polled again, so it runs on any executor.
struct Until<F> {
    done: F,
    deadline: Instant,
}

fn until<F: Fn() -> bool + Unpin>(done: F) -> Until<F> {
    Until {
        done,
        deadline: Instant::now() + Duration::from_secs(10),
    }
}

impl<F: Fn() -> bool + Unpin> Future for Until<F> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        if (self.done)() {
            return Poll::Ready(true);
        }
        if Instant::now() > self.deadline {
            return Poll::Ready(false);
        }
        thread::yield_now();
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Pending once, then ready: lets other tasks run, on any executor.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

/// Module docs of `future`: "It is runtime-agnostic: waiting is done with plain
/// `std::task::Waker`s". The same coalescing and computes as the tokio tests above, on the
/// `futures` crate's thread pool.
#[test]
fn future_cache_runs_on_the_futures_thread_pool() {
    within(30, "16 tasks on the futures thread pool", || {
        const N: usize = 16;
        let pool = futures_executor::ThreadPool::builder()
            .pool_size(4)
            .create()
            .unwrap();
        let cache: future::Cache<Watched, u64> = future::Cache::new(100);
        let key = Watched::new(1);
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..N {
            let (cache, key, calls, tx) = (cache.clone(), key.clone(), calls.clone(), tx.clone());
            pool.spawn_ok(async move {
                let init = async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // Hold the load open until every other task waits for it.
                    until(|| key.waiters() >= N - 1 || calls.load(Ordering::SeqCst) > 1).await;
                    11
                };
                tx.send(cache.get_with(key.clone(), init).await).unwrap();
            });
        }
        let recv = || {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a task hung")
        };
        let got: Vec<u64> = (0..N).map(|_| recv()).collect();
        assert_eq!(got, [11; N]);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one load for {N} tasks");
        assert_eq!(key.waiters(), N - 1);

        // Computes from several tasks take turns on the key's slot and lose no update.
        let counter = Watched::new(2);
        for _ in 0..8 {
            let (cache, counter, tx) = (cache.clone(), counter.clone(), tx.clone());
            pool.spawn_ok(async move {
                for _ in 0..200 {
                    let bump = |v: Option<u64>| async move {
                        yield_once().await;
                        Op::Put(v.map_or(1, |n| n + 1))
                    };
                    cache.and_compute_with(counter.clone(), bump).await;
                }
                tx.send(0).unwrap();
            });
        }
        for _ in 0..8 {
            recv();
        }
        assert_eq!(cache.as_sync().get(&counter), Some(8 * 200));
        cache.validate().unwrap();
    });
}

/// The same under `futures`' `block_on` on several threads, with a leader polled once by
/// hand and dropped mid-load: the threads waiting for it wake, and one of them loads for all.
#[test]
fn future_cache_runs_under_block_on_and_a_dropped_leader_hands_over() {
    within(
        30,
        "8 threads under block_on after a dropped leader",
        || {
            const N: usize = 8;
            let cache: future::Cache<Watched, u64> = future::Cache::new(100);
            let key = Watched::new(1);
            let calls = Arc::new(AtomicUsize::new(0));
            let mut leader = Box::pin(cache.get_with(key.clone(), std::future::pending::<u64>()));
            let noop = Waker::noop();
            let polled = leader.as_mut().poll(&mut Context::from_waker(noop));
            assert!(polled.is_pending(), "the leader is loading");
            let threads: Vec<_> = (0..N as u64)
                .map(|i| {
                    let (cache, key, calls) = (cache.clone(), key.clone(), calls.clone());
                    thread::spawn(move || {
                        futures_executor::block_on(cache.get_with(key.clone(), async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            // All N waited for the dropped leader; now the other N - 1 wait
                            // for this load.
                            until(|| {
                                key.waiters() >= 2 * N - 1 || calls.load(Ordering::SeqCst) > 1
                            })
                            .await;
                            100 + i
                        }))
                    })
                })
                .collect();
            assert!(
                wait_until(|| key.waiters() >= N),
                "the threads wait for the leader"
            );
            drop(leader);
            let values: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            assert!(
                values[0] >= 100 && values.iter().all(|&v| v == values[0]),
                "{values:?}"
            );
            assert_eq!(
                calls.load(Ordering::SeqCst),
                1,
                "one load after the dropped one"
            );
            assert_eq!(key.waiters(), 2 * N - 1);
            assert_eq!(cache.as_sync().get(&key), Some(values[0]));
        },
    );
}
