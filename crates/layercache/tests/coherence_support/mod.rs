//! The machinery of the chaos tests in `coherence.rs`: a shared origin, a version oracle,
//! workload tasks and a backplane that a test can cut off.
//!
//! # The model
//! - Keys `0..KEYS`; key `k` is in class `k % 10` and, if it is [`tagged`], carries the tag
//!   `t<class>`.
//! - The **origin** is a map `key -> version`, the source of truth; the value of version `v`
//!   of key `k` is the string `"k:v"`. Loaders read it.
//! - Every change (a write, a remove, a tag invalidation) takes the next **version** from one
//!   global counter. Changes to keys of one class are serialized by the class's lock, so
//!   each key's changes are ordered by version and by time. A write updates the origin, then calls `set`; a remove updates the
//!   origin, then calls `remove` (cache-aside); a tag invalidation gives every tagged key
//!   of the class still in the origin the new version, then calls `invalidate_tag`.
//! - A change is **acknowledged** when its cache call returns `Ok`. A call that fails (Redis
//!   down: the L2 write failed) is not an acknowledgement; the workload retries it every
//!   [`RETRY_EVERY`] until it succeeds, as a cache-aside writer must, holding the class lock
//!   meanwhile. The **oracle** records, per key, each acknowledged change: its version and
//!   the instant of its acknowledgement (taken under the key's oracle lock, so a read that
//!   starts later and is checked after it ends always sees it).
//! - A read is `get_or_load` whose loader reads the origin (a key not in the origin is a
//!   loader error: the read found it absent, from the origin, so it is never stale).
//!
//! # Staleness
//! A read that started at instant `T` and returned version `v` of a key is **stale by**
//! `S = T - A`, where `A` is the acknowledgement instant of the first acknowledged change of
//! that key with a version newer than `v` (a write, a remove or a tag invalidation), if that
//! change exists and `S > 0`. (A value of a key that the oracle had removed is covered: the
//! remove is such a change.) Reads are grouped into [`Phase`]s by `T`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use layercache::redis::{RedisBackplane, RedisTier};
use layercache::{
    Backplane, EntryOptions, Error, StreamId, Subscription, TierError, TierFuture, TieredCache,
};
use layercache_redis::testing::RedisServer;
use layercache_tier::Read;

/// The keys of the workload: `0..KEYS`.
pub(crate) const KEYS: u64 = 200;
/// Key classes: key `k` carries the tag `t{k % CLASSES}`.
pub(crate) const CLASSES: u64 = 10;
/// Whether `key` carries its class's tag: keys `100..180` carry none, so that only key
/// messages (and L1 clears) keep them coherent, and a tag invalidation, which kills every
/// tagged copy of its class, cannot hide a message that was missed.
pub(crate) fn tagged(key: u64) -> bool {
    !(100..180).contains(&key)
}

/// The instances' `max_staleness`.
pub(crate) const MAX_STALENESS: Duration = Duration::from_secs(1);
/// What a read may exceed [`MAX_STALENESS`] by during a fault: the watchdog fires when
/// `max_staleness` has passed since the subscriber last heard from the stream, on a timer,
/// and then a read already past its L1 lookup may still return; on a loaded 2-core machine
/// (3 workload tasks, 3 subscribers and redis-server on 2 worker threads) a task can wait
/// tens of milliseconds to be polled. 250 ms is a generous ceiling for that scheduling
/// delay, still a quarter of the bound.
pub(crate) const SLACK: Duration = Duration::from_millis(250);
/// What a read may be stale by in a healthy phase: the time a message takes from the
/// writer's acknowledgement to being applied on another instance (p99 target 2 ms on
/// loopback), plus scheduling delay on a loaded 2-core machine.
pub(crate) const ALLOWANCE: Duration = Duration::from_millis(50);
/// The period of [`World::probe`].
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(5);
/// The wait between tries of a failed cache call.
pub(crate) const RETRY_EVERY: Duration = Duration::from_millis(25);
/// The most operations one workload task runs.
const MAX_OPS: u64 = 5_000_000;
/// Stale reads kept for the failure message, at most.
const KEEP_STALE: usize = 10_000;

/// Polls `done` every millisecond until it holds or `limit` passes; whether it held.
pub(crate) async fn within(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The phase a read started in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    /// Before the fault: healthy, bound [`ALLOWANCE`].
    Before = 0,
    /// From the fault's start until `max_staleness` after it healed: bound
    /// `MAX_STALENESS + SLACK`.
    During = 1,
    /// `max_staleness` after the fault healed, and later: bound [`ALLOWANCE`].
    After = 2,
}

impl std::fmt::Debug for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} read key {} at {:.3} s ({}): version {}, stale by {:.1} ms (version {} by {} was \
             acknowledged before; {} served L1 then: {})",
            self.who,
            self.key,
            self.at.as_secs_f64(),
            self.phase.name(),
            self.read,
            self.by.as_secs_f64() * 1000.0,
            self.newer.version,
            self.newer.by,
            self.newer.by,
            self.newer.writer_trusted,
        )
    }
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::Before, Phase::During, Phase::After];

    fn bound(self) -> Duration {
        match self {
            Phase::Before | Phase::After => ALLOWANCE,
            Phase::During => MAX_STALENESS + SLACK,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::During => "during",
            Phase::After => "after",
        }
    }
}

/// One acknowledged change of a key.
#[derive(Clone, Copy, Debug)]
struct Change {
    version: u64,
    acked: Instant,
    /// The instance that made it.
    by: &'static str,
    /// Whether that instance served L1 when it was acknowledged (if not, its backplane was
    /// not caught up, and the change's message may have waited in its queue).
    writer_trusted: bool,
}

/// A stale read, for the failure message.
#[derive(Clone)]
pub(crate) struct Stale {
    started: Instant,
    who: &'static str,
    key: u64,
    phase: Phase,
    /// When the read started, since the world began.
    at: Duration,
    by: Duration,
    read: u64,
    newer: Change,
}

/// Counts of one phase.
#[derive(Default)]
struct PhaseCounts {
    reads: AtomicU64,
    absent: AtomicU64,
    stale: AtomicU64,
    over: AtomicU64,
    max_us: AtomicU64,
}

/// A change a workload makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// A new version of the key: origin, then `set`.
    Set,
    /// The key leaves the origin, then `remove`.
    Remove,
    /// Every key of the key's class still in the origin gets a new version, then
    /// `invalidate_tag` of the class's tag.
    Tag,
}

/// The origin, the version oracle and the counts, shared by every workload.
pub(crate) struct World {
    began: Instant,
    /// Retries give up after this (the test fails).
    deadline: Instant,
    origin: Mutex<HashMap<u64, u64>>,
    next: AtomicU64,
    history: Vec<Mutex<Vec<Change>>>,
    classes: Vec<tokio::sync::Mutex<()>>,
    /// The options of tagged keys, by class.
    opts: Vec<EntryOptions>,
    /// The options of untagged keys.
    untagged: EntryOptions,
    phase: AtomicU8,
    counts: [PhaseCounts; 3],
    sets: AtomicU64,
    removes: AtomicU64,
    tags: AtomicU64,
    retries: AtomicU64,
    stale: Mutex<Vec<Stale>>,
    /// The runtime's stalls seen by [`World::probe`]: (from, to, how much later than asked
    /// a timer task ran in that span).
    stalls: Mutex<Vec<(Instant, Instant, Duration)>>,
    /// Stops the probe.
    done: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl World {
    /// A world whose retries give up `limit` from now.
    pub(crate) fn new(limit: Duration) -> Arc<World> {
        let now = Instant::now();
        Arc::new(World {
            began: now,
            deadline: now + limit,
            // Every key starts at version 0 (no change of it acknowledged yet).
            origin: Mutex::new((0..KEYS).map(|k| (k, 0)).collect()),
            next: AtomicU64::new(0),
            history: (0..KEYS).map(|_| Mutex::new(Vec::new())).collect(),
            classes: (0..CLASSES).map(|_| tokio::sync::Mutex::new(())).collect(),
            opts: (0..CLASSES)
                .map(|c| {
                    EntryOptions::new()
                        .ttl(Duration::from_secs(600))
                        .tags([format!("t{c}")])
                })
                .collect(),
            untagged: EntryOptions::new().ttl(Duration::from_secs(600)),
            phase: AtomicU8::new(Phase::Before as u8),
            counts: Default::default(),
            sets: AtomicU64::new(0),
            removes: AtomicU64::new(0),
            tags: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            stale: Mutex::new(Vec::new()),
            stalls: Mutex::new(Vec::new()),
            done: AtomicBool::new(false),
        })
    }

    /// The entry options of `key`: its class's tag if it is [`tagged`].
    fn options(&self, key: u64) -> &EntryOptions {
        if tagged(key) {
            &self.opts[(key % CLASSES) as usize]
        } else {
            &self.untagged
        }
    }

    /// Reads from now on are in `phase`.
    pub(crate) fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Before,
            1 => Phase::During,
            _ => Phase::After,
        }
    }

    /// Reads `key` through `cache` (`get_or_load`, the loader reading the origin) and checks
    /// what it returned against the oracle.
    pub(crate) async fn read(&self, who: &'static str, cache: &TieredCache<u64, String>, key: u64) {
        let phase = self.phase();
        let started = Instant::now();
        let origin = &self.origin;
        let got = cache
            .get_or_load_with(key, self.options(key), || async move {
                match lock(origin).get(&key) {
                    Some(v) => Ok(format!("{key}:{v}")),
                    None => Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "not in the origin",
                    )),
                }
            })
            .await;
        let counts = &self.counts[phase as usize];
        counts.reads.fetch_add(1, Ordering::Relaxed);
        let value = match got {
            Ok(v) => v,
            Err(Error::Loader(_)) => {
                counts.absent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => panic!("{who}: get_or_load of {key} failed: {e}"),
        };
        let version = value
            .strip_prefix(&format!("{key}:"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{who}: key {key} returned {value:?}, not a value of it"));
        let history = lock(&self.history[key as usize]);
        let first_newer = history.partition_point(|c| c.version <= version);
        let Some(newer) = history.get(first_newer).copied() else {
            return;
        };
        drop(history);
        let Some(by) = started.checked_duration_since(newer.acked) else {
            return;
        };
        if by.is_zero() {
            return;
        }
        counts.stale.fetch_add(1, Ordering::Relaxed);
        counts
            .max_us
            .fetch_max(by.as_micros() as u64, Ordering::Relaxed);
        if by > phase.bound() {
            counts.over.fetch_add(1, Ordering::Relaxed);
        }
        let mut kept = lock(&self.stale);
        if kept.len() < KEEP_STALE || by > phase.bound() {
            kept.push(Stale {
                started,
                who,
                key,
                phase,
                at: started - self.began,
                by,
                read: version,
                newer,
            });
        }
    }

    /// Makes change `op` of `key` through `cache` (see [`Op`]), retrying the cache call
    /// until it succeeds, and records its acknowledgement.
    ///
    /// # Panics
    /// If the call still fails at the world's deadline.
    pub(crate) async fn write(
        &self,
        who: &'static str,
        cache: &TieredCache<u64, String>,
        key: u64,
        op: Op,
    ) {
        let class = key % CLASSES;
        let _class = self.classes[class as usize].lock().await;
        let version = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let opts = self.options(key);
        let changed: Vec<u64> = match op {
            Op::Set => {
                lock(&self.origin).insert(key, version);
                let value = format!("{key}:{version}");
                self.retry(|| cache.set_with(key, value.clone(), opts))
                    .await;
                self.sets.fetch_add(1, Ordering::Relaxed);
                vec![key]
            }
            Op::Remove => {
                lock(&self.origin).remove(&key);
                self.retry(|| cache.remove(&key)).await;
                self.removes.fetch_add(1, Ordering::Relaxed);
                vec![key]
            }
            Op::Tag => {
                let keys: Vec<u64> = {
                    let mut origin = lock(&self.origin);
                    (class..KEYS)
                        .step_by(CLASSES as usize)
                        .filter(|k| tagged(*k))
                        .filter(|k| match origin.get_mut(k) {
                            Some(v) => {
                                *v = version;
                                true
                            }
                            None => false,
                        })
                        .collect()
                };
                let tag = format!("t{class}");
                self.retry(|| cache.invalidate_tag(&tag)).await;
                self.tags.fetch_add(1, Ordering::Relaxed);
                keys
            }
        };
        // Every changed key's oracle lock (ascending; a read holds one at a time), then one
        // acknowledgement instant.
        let mut histories: Vec<_> = changed
            .iter()
            .map(|k| lock(&self.history[*k as usize]))
            .collect();
        let acked = Instant::now();
        let writer_trusted = cache.l1_trusted();
        for h in &mut histories {
            h.push(Change {
                version,
                acked,
                by: who,
                writer_trusted,
            });
        }
    }

    async fn retry<F, Fut>(&self, mut call: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), Error>>,
    {
        loop {
            match call().await {
                Ok(()) => return,
                Err(e) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    assert!(
                        Instant::now() < self.deadline,
                        "a cache call still failed at the test's deadline: {e}"
                    );
                    tokio::time::sleep(RETRY_EVERY).await;
                }
            }
        }
    }

    /// Measures how late this runtime runs a ready task: sleeps [`PROBE_EVERY`] at a time
    /// until [`World::stop_probe`] or the world's deadline, and records each wake-up later
    /// than [`PROBE_EVERY`] by more than 2 ms. On a loaded machine (other processes on the
    /// same 2 cores, or this runtime's 2 threads busy) the subscribers' tasks wait as long,
    /// and their messages are applied that much later: a healthy phase's read is excused
    /// from [`ALLOWANCE`] by the largest stall seen between the change's acknowledgement and
    /// the read's start.
    pub(crate) async fn probe(self: Arc<Self>) {
        while !self.done.load(Ordering::Acquire) && Instant::now() < self.deadline {
            let from = Instant::now();
            tokio::time::sleep(PROBE_EVERY).await;
            let to = Instant::now();
            let late = (to - from).saturating_sub(PROBE_EVERY);
            if late > Duration::from_millis(2) {
                lock(&self.stalls).push((from, to, late));
            }
        }
    }

    /// Stops [`World::probe`].
    pub(crate) fn stop_probe(&self) {
        self.done.store(true, Ordering::Release);
    }

    /// The largest stall of the runtime that overlapped `from..to`.
    fn stall(&self, from: Instant, to: Instant) -> Duration {
        lock(&self.stalls)
            .iter()
            .filter(|(a, b, _)| *a <= to && *b >= from)
            .map(|(_, _, late)| *late)
            .max()
            .unwrap_or_default()
    }

    /// Prints the counts (`--nocapture` shows them) and asserts that there was work in every
    /// phase and that no read was stale by more than its phase's bound.
    ///
    /// # Panics
    /// On a read stale past its bound, or a phase without reads.
    pub(crate) fn report(&self, test: &str) {
        let c = |p: Phase, f: fn(&PhaseCounts) -> &AtomicU64| {
            f(&self.counts[p as usize]).load(Ordering::Relaxed)
        };
        println!(
            "{test}: {:.1} s; sets {}, removes {}, tag invalidations {}, failed calls retried {}",
            self.began.elapsed().as_secs_f64(),
            self.sets.load(Ordering::Relaxed),
            self.removes.load(Ordering::Relaxed),
            self.tags.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
        );
        for p in Phase::ALL {
            println!(
                "{test}:   {:>6}: reads {:>8} (absent {:>6}), stale {:>5}, stale past {:?} {:>3}, max staleness {:.1} ms",
                p.name(),
                c(p, |c| &c.reads),
                c(p, |c| &c.absent),
                c(p, |c| &c.stale),
                p.bound(),
                c(p, |c| &c.over),
                c(p, |c| &c.max_us) as f64 / 1000.0,
            );
        }
        let stale = lock(&self.stale);
        for p in Phase::ALL {
            for s in stale.iter().filter(|s| s.phase == p).take(3) {
                println!("{test}:     e.g. {s:?}");
            }
        }
        let over: Vec<&Stale> = stale.iter().filter(|s| s.by > s.phase.bound()).collect();
        let (excused, over): (Vec<&Stale>, Vec<&Stale>) = over.into_iter().partition(|s| {
            s.phase != Phase::During && s.by <= ALLOWANCE + self.stall(s.started - s.by, s.started)
        });
        let stalls = lock(&self.stalls);
        println!(
            "{test}:   runtime stalls over 2 ms: {}, longest {:.1} ms; reads past {ALLOWANCE:?} \
             excused by a stall as long: {}",
            stalls.len(),
            stalls
                .iter()
                .map(|s| s.2)
                .max()
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0,
            excused.len()
        );
        drop(stalls);
        for s in excused.iter().take(3) {
            println!("{test}:     excused: {s:?}");
        }
        assert!(
            over.is_empty(),
            "{test}: {} reads stale past their phase's bound, e.g. {:#?}",
            over.len(),
            &over[..over.len().min(8)]
        );
        for p in Phase::ALL {
            assert!(
                // While Redis is down, reads wait on its timeouts: fewer of them.
                c(p, |c| &c.reads) >= if p == Phase::During { 20 } else { 100 },
                "{test}: too few reads in phase {}",
                p.name()
            );
        }
        assert!(
            self.sets.load(Ordering::Relaxed) >= 100,
            "{test}: too few writes"
        );
    }
}

/// What a test's driver tells one workload task.
pub(crate) struct Control {
    /// Stop at the next operation.
    pub(crate) stop: AtomicBool,
    /// Only read (no writes, removes or tag invalidations).
    pub(crate) read_only: AtomicBool,
    /// The keys the task uses: `lo..hi`.
    pub(crate) lo: AtomicU64,
    pub(crate) hi: AtomicU64,
}

impl Control {
    /// A task on keys `lo..hi`, reading and writing.
    pub(crate) fn new(lo: u64, hi: u64) -> Arc<Control> {
        Arc::new(Control {
            stop: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
            lo: AtomicU64::new(lo),
            hi: AtomicU64::new(hi),
        })
    }

    /// Moves the task to keys `lo..hi`.
    pub(crate) fn keys(&self, lo: u64, hi: u64) {
        self.lo.store(lo, Ordering::Release);
        self.hi.store(hi, Ordering::Release);
    }
}

/// Runs a workload on `cache` until told to stop, [`MAX_OPS`] operations or `limit`: of
/// every 100 operations about 88 reads, 9 writes, 2 removes and 1 tag invalidation, on
/// random keys of its range (a xorshift generator seeded by `seed`). Yields after each
/// operation, so that the subscribers and the other workloads share the threads.
pub(crate) async fn workload(
    who: &'static str,
    world: Arc<World>,
    cache: TieredCache<u64, String>,
    ctl: Arc<Control>,
    seed: u64,
    limit: Duration,
) -> u64 {
    let until = Instant::now() + limit;
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut ops = 0;
    while ops < MAX_OPS && !ctl.stop.load(Ordering::Acquire) && Instant::now() < until {
        let (lo, hi) = (
            ctl.lo.load(Ordering::Acquire),
            ctl.hi.load(Ordering::Acquire),
        );
        let key = lo + next() % (hi - lo).max(1);
        let roll = if ctl.read_only.load(Ordering::Acquire) {
            0
        } else {
            next() % 100
        };
        match roll {
            0..88 => world.read(who, &cache, key).await,
            88..97 => world.write(who, &cache, key, Op::Set).await,
            97..99 => world.write(who, &cache, key, Op::Remove).await,
            _ => world.write(who, &cache, key, Op::Tag).await,
        }
        ops += 1;
        tokio::task::yield_now().await;
    }
    ops
}

/// A [`Backplane`] in front of a [`RedisBackplane`] that a test can cut off: while `down`,
/// publishes and subscribes fail, and so do reads (a read in flight when it goes down
/// fails when it returns, its messages lost with the connection).
pub(crate) struct Switch {
    inner: Arc<RedisBackplane>,
    down: Arc<AtomicBool>,
}

fn cut() -> TierError {
    TierError::backend(
        "switch",
        std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut off by the test"),
    )
}

impl Backplane for Switch {
    fn name(&self) -> &'static str {
        "switch"
    }

    fn publish<'a>(&'a self, channel: &'a str, payload: &'a [u8]) -> TierFuture<'a, StreamId> {
        Box::pin(async move {
            if self.down.load(Ordering::Acquire) {
                return Err(cut());
            }
            self.inner.publish(channel, payload).await
        })
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> TierFuture<'a, Box<dyn Subscription>> {
        Box::pin(async move {
            if self.down.load(Ordering::Acquire) {
                return Err(cut());
            }
            let inner = self.inner.subscribe(channel).await?;
            Ok(Box::new(SwitchedSub {
                inner,
                down: Arc::clone(&self.down),
            }) as Box<dyn Subscription>)
        })
    }
}

struct SwitchedSub {
    inner: Box<dyn Subscription>,
    down: Arc<AtomicBool>,
}

impl Subscription for SwitchedSub {
    fn read(&mut self, after: StreamId, block: Duration, max: usize) -> TierFuture<'_, Read> {
        Box::pin(async move {
            if self.down.load(Ordering::Acquire) {
                return Err(cut());
            }
            let read = self.inner.read(after, block, max).await;
            if self.down.load(Ordering::Acquire) {
                return Err(cut());
            }
            read
        })
    }
}

/// An instance of cache `name` over `server` with its own connections (as a process of its
/// own would have), `max_staleness` [`MAX_STALENESS`] and a stream long enough that no
/// reader falls off it by load alone; behind a [`Switch`] on `down` if given. Waits (up to
/// 10 s) until its subscriber has caught up.
///
/// # Panics
/// If Redis cannot be reached or the subscriber does not catch up in time.
pub(crate) async fn instance(
    server: &RedisServer,
    name: &str,
    down: Option<Arc<AtomicBool>>,
) -> TieredCache<u64, String> {
    let tier = RedisTier::connect(&server.url()).await.expect("tier");
    let bus = RedisBackplane::builder()
        .max_len(1_000_000)
        .connect(&server.url())
        .await
        .expect("backplane");
    let builder = TieredCache::builder(name)
        .l2(tier)
        .max_staleness(MAX_STALENESS)
        .default_entry_options(EntryOptions::new().ttl(Duration::from_secs(600)));
    let cache = match down {
        Some(down) => builder
            .backplane(Switch {
                inner: Arc::new(bus),
                down,
            })
            .build(),
        None => builder.backplane(bus).build(),
    };
    assert!(
        within(Duration::from_secs(10), async || cache.l1_trusted()).await,
        "the backplane subscriber did not catch up within 10 s"
    );
    cache
}

/// How long the workloads run healthy before a fault.
pub(crate) const WARM: Duration = Duration::from_millis(1500);
/// How long they run after the `max_staleness` that follows the heal.
pub(crate) const AFTER: Duration = Duration::from_secs(2);
/// The limit of a whole chaos test; retries give up there, and workloads stop.
pub(crate) const LIMIT: Duration = Duration::from_secs(50);

/// Three instances A, B, C of one cache over one test-owned server, each running a
/// [`workload`]: A and B on keys `0..180`, C on all `0..200` (keys `180..` are C's own: no
/// other instance reads them, so what L1 or L2 holds for them stays until C reads it). C's
/// backplane is behind a [`Switch`].
pub(crate) struct Fleet {
    pub(crate) server: RedisServer,
    pub(crate) name: &'static str,
    pub(crate) world: Arc<World>,
    pub(crate) a: TieredCache<u64, String>,
    pub(crate) b: TieredCache<u64, String>,
    /// C's switch: `true` cuts C off the backplane.
    pub(crate) c_down: Arc<AtomicBool>,
    /// C's workload's controls.
    pub(crate) c_ctl: Arc<Control>,
    ctls: Vec<Arc<Control>>,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
    c_task: Option<tokio::task::JoinHandle<u64>>,
    c: Option<TieredCache<u64, String>>,
    c_ops: u64,
    probe: Option<tokio::task::JoinHandle<()>>,
    faulted: Option<Instant>,
    healed: Option<Instant>,
}

impl Fleet {
    /// Starts the server, the three instances and their workloads (phase [`Phase::Before`]).
    pub(crate) async fn start(name: &'static str) -> Fleet {
        let server = RedisServer::start();
        let world = World::new(LIMIT);
        let a = instance(&server, name, None).await;
        let b = instance(&server, name, None).await;
        let c_down = Arc::new(AtomicBool::new(false));
        let c = instance(&server, name, Some(Arc::clone(&c_down))).await;
        let mut fleet = Fleet {
            server,
            name,
            world,
            a,
            b,
            c_down,
            c_ctl: Control::new(0, KEYS),
            ctls: Vec::new(),
            tasks: Vec::new(),
            c_task: None,
            c: None,
            c_ops: 0,
            probe: None,
            faulted: None,
            healed: None,
        };
        for (who, cache, seed) in [
            ("A", fleet.a.clone(), 0x9e37_79b9),
            ("B", fleet.b.clone(), 0x85eb_ca6b),
        ] {
            let ctl = Control::new(0, 180);
            fleet.ctls.push(Arc::clone(&ctl));
            fleet.tasks.push(tokio::spawn(workload(
                who,
                Arc::clone(&fleet.world),
                cache,
                ctl,
                seed,
                LIMIT,
            )));
        }
        fleet.run_c(c, 0xc2b2_ae35);
        fleet.probe = Some(tokio::spawn(Arc::clone(&fleet.world).probe()));
        fleet
    }

    /// Starts C's workload on `c` (a new C after [`stop_c`](Self::stop_c)).
    pub(crate) fn run_c(&mut self, c: TieredCache<u64, String>, seed: u64) {
        self.c_ctl.stop.store(false, Ordering::Release);
        self.c = Some(c.clone());
        self.c_task = Some(tokio::spawn(workload(
            "C",
            Arc::clone(&self.world),
            c,
            Arc::clone(&self.c_ctl),
            seed,
            LIMIT,
        )));
    }

    /// Stops C's workload and waits for it; drops the fleet's handle on C too, so C's
    /// `TieredCache` is gone; the operations C's workloads ran so far.
    pub(crate) async fn stop_c(&mut self) -> u64 {
        self.c_ctl.stop.store(true, Ordering::Release);
        self.c = None;
        if let Some(task) = self.c_task.take() {
            self.c_ops += tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("C's workload did not stop within 10 s")
                .expect("C's workload panicked");
        }
        self.c_ops
    }

    /// A handle on C.
    ///
    /// # Panics
    /// Between [`stop_c`](Self::stop_c) and [`run_c`](Self::run_c).
    pub(crate) fn c_view(&self) -> TieredCache<u64, String> {
        self.c.clone().expect("C is not running")
    }

    /// The healthy warm-up, then the fault begins (phase [`Phase::During`]).
    pub(crate) async fn warm_then_fault(&mut self) {
        tokio::time::sleep(WARM).await;
        self.world.enter(Phase::During);
        self.faulted = Some(Instant::now());
    }

    /// The fault healed now.
    pub(crate) fn heal(&mut self) {
        self.healed = Some(Instant::now());
    }

    /// Waits until `max_staleness` after the heal: the phase is [`Phase::After`] from then.
    pub(crate) async fn settle(&mut self) {
        let healed = *self.healed.get_or_insert_with(Instant::now);
        tokio::time::sleep_until((healed + MAX_STALENESS).into()).await;
        self.world.enter(Phase::After);
    }

    /// Heals (if not yet), settles (if not yet), runs [`AFTER`] longer, then stops the
    /// workloads and checks the counts.
    ///
    /// # Panics
    /// See [`World::report`]; and if a workload panicked.
    pub(crate) async fn finish(mut self, test: &str) {
        self.settle().await;
        tokio::time::sleep(AFTER).await;
        for ctl in &self.ctls {
            ctl.stop.store(true, Ordering::Release);
        }
        let c_ops = self.stop_c().await;
        self.world.stop_probe();
        if let Some(probe) = self.probe.take() {
            tokio::time::timeout(Duration::from_secs(10), probe)
                .await
                .expect("the probe did not stop within 10 s")
                .expect("the probe panicked");
        }
        let mut ops = Vec::new();
        for task in self.tasks.drain(..) {
            ops.push(
                tokio::time::timeout(Duration::from_secs(10), task)
                    .await
                    .expect("a workload did not stop within 10 s")
                    .expect("a workload panicked"),
            );
        }
        let (f, h) = (self.faulted.expect("fault"), self.healed.expect("heal"));
        println!(
            "{test}: fault at {:.2} s, healed {:.2} s later; operations: A {}, B {}, C {c_ops}",
            (f - self.world.began).as_secs_f64(),
            (h - f).as_secs_f64(),
            ops[0],
            ops[1],
        );
        self.world.report(test);
    }
}
