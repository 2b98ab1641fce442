//! The scenarios `TieredCache` must pass over any L2, written once and run by three test
//! binaries: `tiered.rs` (an in-process map tier), `redis.rs` (a real Redis, single node and
//! Cluster) and `disk.rs` (`DiskTier` in a temporary directory).
//!
//! A [`Backend`] gives the tier, and ways around the cache to plant bytes and to read what
//! is stored (the bytes, and the TTL they were stored with). Each scenario puts the tier
//! behind a [`Probe`], which counts the calls the cache makes and can play a dead L2.
//!
//! Concurrent calls are made to overlap with gates (a loader finishes only once every
//! caller has been polled once, so each is then waiting on that load or, were loads not
//! coalesced, running its own), never with sleeps; every scenario runs under [`within`], so a
//! hang fails with the scenario's name instead of hanging CI.
//!
//! Each scenario uses its own cache names (L2 key prefixes), so several scenarios can share
//! one backend (the Cluster test runs them all on one cluster).

pub(crate) mod core;
pub(crate) mod loading;
pub(crate) mod options;

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use layercache::{BreakerConfig, EntryOptions, Tier, TierError, TierFuture, TieredCache};
use layercache::{ManualTieredClock, TieredCacheBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;

/// The TTL of the scenarios' default entry options.
pub(crate) const TTL: Duration = Duration::from_secs(60);
/// The L1 TTL of the scenarios' default entry options.
pub(crate) const L1_TTL: Duration = Duration::from_secs(30);
/// A TTL other than [`TTL`], for options given per call.
pub(crate) const OTHER_TTL: Duration = Duration::from_secs(20);
/// One millisecond: envelopes' resolution, and the step across an expiry.
pub(crate) const MS: Duration = Duration::from_millis(1);
/// How long one scenario may take before it counts as hung (generous: a loaded 2-core
/// machine, 1000-task scenarios, real servers).
pub(crate) const LIMIT: Duration = Duration::from_secs(120);

/// An L2 under test, with access around the cache.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The tier the caches use.
    fn tier(&self) -> Arc<dyn Tier>;
    /// The bytes stored under `key`, read around any cache.
    fn raw<'a>(&'a self, key: &'a [u8]) -> impl Future<Output = Option<Vec<u8>>> + Send + 'a;
    /// Stores `bytes` under `key` without a TTL, around any cache.
    fn plant<'a>(&'a self, key: &'a [u8], bytes: &'a [u8]) -> impl Future<Output = ()> + Send + 'a;
    /// Asserts that `key` is stored with the TTL `ttl` (`None`: no expiry), as closely as
    /// the backend can tell.
    fn assert_ttl<'a>(
        &'a self,
        key: &'a [u8],
        ttl: Option<Duration>,
    ) -> impl Future<Output = ()> + Send + 'a;
}

/// Runs `scenario`, failing with its name if it does not finish within [`LIMIT`] (and, as a
/// last resort, under a [`Watchdog`]).
pub(crate) async fn within<F: Future>(name: &str, scenario: F) -> F::Output {
    let _watchdog = Watchdog::arm(&format!("scenario {name}"), LIMIT + WATCHDOG_GRACE);
    match tokio::time::timeout(LIMIT, scenario).await {
        Ok(out) => out,
        Err(_) => panic!("scenario {name} did not finish within {LIMIT:?}: a hang"),
    }
}

/// How long after its own timeout a test's [`Watchdog`] fires.
pub(crate) const WATCHDOG_GRACE: Duration = Duration::from_secs(30);

/// A last resort against a hang that blocks every runtime thread (a deadlock in a sync
/// lock), which `tokio::time::timeout` cannot see, since no thread is left to drive its
/// timer: if not dropped within its limit, a plain thread prints what hung, kills this
/// process's child processes (the test's own Redis servers) by pid, and exits the test
/// process with a failure.
pub(crate) struct Watchdog(Arc<(Mutex<bool>, Condvar)>);

impl Watchdog {
    /// Arms a watchdog for `what`, firing after `limit`.
    pub(crate) fn arm(what: &str, limit: Duration) -> Watchdog {
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let seen = Arc::clone(&done);
        let what = what.to_string();
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let (lock, cvar) = &*seen;
                let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
                let (guard, _) = cvar
                    .wait_timeout_while(guard, limit, |done| !*done)
                    .unwrap_or_else(PoisonError::into_inner);
                if !*guard {
                    // Straight to the process's stderr: the test harness's capture of
                    // `eprintln!` is lost when the process exits.
                    let _ = writeln!(
                        std::io::stderr(),
                        "{what}: still running after {limit:?} with its threads blocked \
                         (its tokio timeout could not fire): a hang; ending the test process"
                    );
                    kill_children();
                    std::process::exit(101);
                }
            })
            .expect("could not start a watchdog thread");
        Watchdog(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.0;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cvar.notify_all();
    }
}

/// Kills (SIGKILL, by pid) every process whose parent is this one.
fn kill_children() {
    let me = std::process::id().to_string();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": the comm may hold spaces, so split after its ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid == Some(me.as_str()) {
            let _ = writeln!(std::io::stderr(), "killing child process {pid}");
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
        }
    }
}

/// A counter whose reaching a value can be awaited.
#[derive(Clone)]
pub(crate) struct Counter(Arc<watch::Sender<usize>>);

impl Default for Counter {
    fn default() -> Self {
        Counter(Arc::new(watch::Sender::new(0)))
    }
}

impl Counter {
    /// Adds one.
    pub(crate) fn bump(&self) {
        self.0.send_modify(|n| *n += 1);
    }
    /// The count now.
    pub(crate) fn get(&self) -> usize {
        *self.0.borrow()
    }
    /// Waits until the count is at least `n`.
    pub(crate) async fn reached(&self, n: usize) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = rx.wait_for(|&count| count >= n).await;
    }
}

/// Awaits `fut`, calling `then` right after its first poll (which has then run up to its
/// first pending point: for a cache call, past registering as the leader or a waiter of
/// each key's load).
pub(crate) async fn after_first_poll<F: Future>(fut: F, then: impl FnOnce()) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut then = Some(then);
    std::future::poll_fn(|cx| {
        let out = fut.as_mut().poll(cx);
        if let Some(then) = then.take() {
            then();
        }
        out
    })
    .await
}

/// The tier as a scenario's caches see it: counts their calls, and can be switched off.
pub(crate) struct Probe {
    inner: Arc<dyn Tier>,
    calls: AtomicUsize,
    down: AtomicBool,
    /// `get_many` calls that have returned (successfully or not).
    pub(crate) get_manys_done: Counter,
}

impl Probe {
    /// A probe over `inner`, up, with no calls counted.
    pub(crate) fn new(inner: Arc<dyn Tier>) -> Self {
        Probe {
            inner,
            calls: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            get_manys_done: Counter::default(),
        }
    }
    /// Counts a call on `keys` (not if they are all the cache's own metadata keys, the
    /// tag and clear versions under `name:\0`), and fails it while down.
    fn check_keys(&self, keys: &[&[u8]]) -> Result<(), TierError> {
        let metadata = |k: &&[u8]| k.windows(2).any(|w| w == b":\0");
        if keys.is_empty() || !keys.iter().all(metadata) {
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
        self.fail_if_down()
    }
    fn check(&self) -> Result<(), TierError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.fail_if_down()
    }
    fn fail_if_down(&self) -> Result<(), TierError> {
        if self.down.load(Ordering::SeqCst) {
            Err(TierError::backend("probe", std::io::Error::other("down")))
        } else {
            Ok(())
        }
    }
    /// The calls made so far (including refused ones).
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    /// While `down`, every call fails at once without reaching the tier.
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

impl Tier for Probe {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.check_keys(&[key])?;
            self.inner.get(key).await
        })
    }
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        Box::pin(async move {
            self.check_keys(&[key])?;
            self.inner.set(key, value, ttl).await
        })
    }
    fn supports_conditional_writes(&self) -> bool {
        self.inner.supports_conditional_writes()
    }
    fn add<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        Box::pin(async move {
            self.check_keys(&[key])?;
            self.inner.add(key, value, ttl).await
        })
    }
    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        Box::pin(async move {
            self.check_keys(&[key])?;
            self.inner.compare_and_set(key, expected, value, ttl).await
        })
    }
    fn compare_and_delete<'a>(&'a self, key: &'a [u8], expected: &'a [u8]) -> TierFuture<'a, bool> {
        Box::pin(async move {
            self.check_keys(&[key])?;
            self.inner.compare_and_delete(key, expected).await
        })
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.inner.delete(key).await
        })
    }
    fn get_many<'a>(&'a self, keys: &'a [&'a [u8]]) -> TierFuture<'a, Vec<Option<Vec<u8>>>> {
        Box::pin(async move {
            let out = match self.check_keys(keys) {
                Ok(()) => self.inner.get_many(keys).await,
                Err(e) => Err(e),
            };
            self.get_manys_done.bump();
            out
        })
    }
    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a [u8], &'a [u8])],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.inner.set_many(entries, ttl).await
        })
    }
}

/// One scenario's caches: they reach the backend's tier through one probe, and read one
/// manual clock (L1 deadlines and envelope expiry), which only the scenario moves.
pub(crate) struct Env<'b, B> {
    /// The tier as the caches see it.
    pub(crate) probe: Arc<Probe>,
    /// The caches' clock.
    pub(crate) clock: ManualTieredClock,
    _backend: std::marker::PhantomData<&'b B>,
}

/// The default entry options of the scenarios' caches.
pub(crate) fn defaults() -> EntryOptions {
    EntryOptions::new().ttl(TTL).l1_ttl(L1_TTL)
}

/// A breaker that opens only on real failures: L2 calls on a loaded machine (1000 tasks,
/// a blocking pool, real servers) may take far longer than the default 250 ms deadline.
pub(crate) fn patient_breaker() -> BreakerConfig {
    BreakerConfig {
        call_timeout: Duration::from_secs(30),
        ..BreakerConfig::default()
    }
}

impl<'b, B: Backend> Env<'b, B> {
    /// A fresh probe over `backend`'s tier.
    pub(crate) fn new(backend: &'b B) -> Self {
        Env {
            _backend: std::marker::PhantomData,
            clock: ManualTieredClock::new(),
            probe: Arc::new(Probe::new(backend.tier())),
        }
    }

    /// A builder of a cache called `name` over the probe, on the scenario's clock, with
    /// [`defaults`] and [`patient_breaker`].
    pub(crate) fn builder<V>(&self, name: &str) -> TieredCacheBuilder<u64, V>
    where
        V: Serialize + DeserializeOwned + 'static,
    {
        TieredCache::builder(name)
            .l2_shared(Arc::clone(&self.probe) as Arc<dyn Tier>)
            .breaker(patient_breaker())
            .clock(self.clock.clone())
            .default_entry_options(defaults())
    }

    /// A cache called `name` (another call gives another instance: its own L1, the same L2).
    pub(crate) fn cache(&self, name: &str) -> TieredCache<u64, String> {
        self.builder(name).build()
    }

    /// Moves the caches' clock forward by `by` (the backend's own clock does not move: an
    /// entry whose envelope expired is a miss whatever the tier still holds).
    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// The calls the caches made to L2 so far.
    pub(crate) fn calls(&self) -> usize {
        self.probe.calls()
    }
}

/// Calls `$callback!($($args)*; module::scenario, ...)` with every scenario: the one list,
/// so that each backend runs each scenario.
macro_rules! every_scenario {
    ($callback:ident ! ($($args:tt)*)) => {
        $callback!($($args)*;
            core::set_get_remove_and_promotion,
            core::get_or_load_runs_once_then_l2_serves_others,
            core::batch_reads_l2_then_loads_the_rest,
            core::planted_bytes_are_misses_and_are_deleted,
            core::absences_are_cached_for_the_negative_ttl,
            core::a_dead_l2_never_fails_a_load_and_the_breaker_caps_calls,
            core::loader_errors_are_shared_and_not_cached,
            core::oversized_values_stay_in_l1_and_large_ones_are_compressed,
            loading::a_thousand_concurrent_loads_of_one_key_run_the_loader_once,
            loading::batch_loads_load_each_key_once,
            loading::keys_a_batch_loader_leaves_out_are_absent_and_not_cached,
            loading::a_failed_batch_load_fails_the_call_and_caches_nothing,
            loading::a_batch_waits_for_a_single_load_of_its_key,
            loading::a_single_load_waits_for_a_batch_of_its_key,
            options::set_with_follows_its_options,
            options::get_or_load_with_follows_its_options,
            options::default_options_steer_get_and_batches,
            options::get_or_load_with_skip_l1_read_reads_l2,
        );
    };
}

/// One `#[tokio::test]` per scenario over the backend made by the async fn `$backend`.
macro_rules! scenario_tests {
    (@each $backend:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $backend().await;
                crate::scenarios::within(
                    stringify!($name),
                    crate::scenarios::$module::$name(&backend),
                )
                .await;
            }
        )*
    };
    ($backend:path) => {
        every_scenario!(scenario_tests!(@each $backend));
    };
}

/// Runs every scenario in turn on the backend `$backend` (an expression of type `&B`).
#[allow(unused_macros)] // only `redis.rs` runs them in turn (on one Cluster)
macro_rules! run_every_scenario {
    (@each $backend:expr; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            eprintln!("scenario {}", stringify!($name));
            crate::scenarios::within(
                stringify!($name),
                crate::scenarios::$module::$name($backend),
            )
            .await;
        )*
    };
    ($backend:expr) => {
        every_scenario!(run_every_scenario!(@each $backend))
    };
}
