//! Invalidation latency over the Redis backplane: how long after instance A writes or
//! removes a key does instance B stop serving its old L1 copy?
//!
//! Two `TieredCache<u64, u64>` values, each with its own `RedisTier` and `RedisBackplane`
//! connections and its own current-thread Tokio runtime on its own OS thread (as two
//! processes would have), share one cache name (unique per run: `invalidation-latency-<pid>`)
//! over one Redis. Every key is written once by A before the measurement. Each round, on a
//! fresh key `k`:
//!
//! 1. B reads `k` (from L2, promoted into its L1), then reads it again and checks, by the
//!    cache's own `layercache_hits_total` counters, that this second read was an L1 hit
//!    returning the old value;
//! 2. a task on B's runtime spins on `B.get(&k)` (the L1 hit path), yielding to the runtime
//!    between reads so that B's backplane subscriber runs;
//! 3. A takes the time and calls `set(k, new)` (even rounds) or `remove(&k)` (odd rounds);
//! 4. the spinner stops at its first read that does not return the old value. The latency is
//!    from just before A's call to the *start* of that read (B had dropped its copy by then;
//!    the read itself then goes to L2, which the `read_end_*` figures include).
//!
//! The last value B read is checked (the new value after a `set`, nothing after a `remove`).
//! Entries are written with a 10-minute TTL; at the end the run's backplane stream is deleted
//! (nothing else is touched).
//!
//! ```text
//! cargo run --release -p layercache --example invalidation_latency -- --json
//! cargo run --release -p layercache --example invalidation_latency -- --cluster --json
//! cargo run --release -p layercache --example invalidation_latency -- --redis redis://host:6379 --count 1000
//! ```
//!
//! Options: `--redis URL` (default: `redis://127.0.0.1:6379` if it answers `PING` within
//! 200 ms, else a throwaway `redis-server` started by the example), `--cluster` (a throwaway
//! 3-master Redis Cluster instead), `--count N` rounds (default 10,000), `--json` (print one
//! JSON object: `p50_us`, `p99_us`, `max_us`, `count`, and more), `--baseline` (no cache:
//! the same Redis round trips with bare redis-rs, for the floor on this machine: A sends
//! `SET` then `XADD` on one multiplexed connection, B waits in `XREAD BLOCK` pipelined with
//! `XRANGE - + COUNT 1` as `RedisBackplane` reads, on a connection and runtime of its own;
//! the latency is from before A's `SET` to B's reply; single node only; with `--spin`, a
//! task on B's runtime spins as the measuring task does, without reading anything), and
//! `--poll-us N` (the spinning task sleeps its thread N µs before each yield: it reads less
//! often and leaves the CPU to others; default 0, a pure spin).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use layercache::{EntryOptions, EvictionPolicy, Tier, TieredCache};
use layercache_redis::testing::{RedisCluster, RedisServer};
use layercache_redis::{stream_key, RedisBackplane, RedisTier};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::sync::{mpsc, oneshot};

/// TTL of every entry written (so an external Redis is left with nothing lasting).
const ENTRY_TTL: Duration = Duration::from_secs(600);
/// How long a spinner waits for the old value to go before the round fails.
const ROUND_LIMIT: Duration = Duration::from_secs(2);
/// How long an instance may take to trust its L1 (subscriber connected and caught up).
const TRUST_LIMIT: Duration = Duration::from_secs(10);

/// Command-line options.
struct Args {
    redis: Option<String>,
    cluster: bool,
    count: usize,
    json: bool,
    baseline: bool,
    spin: bool,
    poll: Duration,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        redis: None,
        cluster: false,
        count: 10_000,
        json: false,
        baseline: false,
        spin: false,
        poll: Duration::ZERO,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--redis" => args.redis = Some(it.next().context("--redis needs a URL")?),
            "--cluster" => args.cluster = true,
            "--count" => {
                args.count = it
                    .next()
                    .context("--count needs a number")?
                    .parse()
                    .context("--count")?;
            }
            "--json" => args.json = true,
            "--baseline" => args.baseline = true,
            "--spin" => args.spin = true,
            "--poll-us" => {
                let us: u64 = it
                    .next()
                    .context("--poll-us needs a number")?
                    .parse()
                    .context("--poll-us")?;
                args.poll = Duration::from_micros(us);
            }
            "-h" | "--help" => {
                println!(
                    "invalidation_latency [--redis URL | --cluster] [--count N (10000)] [--json] [--baseline [--spin]] [--poll-us N (0)]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if args.cluster && args.redis.is_some() {
        bail!("--cluster starts its own cluster; it does not take --redis");
    }
    if args.cluster && args.baseline {
        bail!("--baseline runs on a single node only");
    }
    if args.count == 0 {
        bail!("--count must be positive");
    }
    Ok(args)
}

/// Whether a Redis on `127.0.0.1:6379` answers `PING` (within 200 ms per step).
fn local_redis_answers() -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], 6379));
    let limit = Duration::from_millis(200);
    let Ok(mut s) = TcpStream::connect_timeout(&addr, limit) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(limit));
    let _ = s.set_write_timeout(Some(limit));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Where the two instances connect, and the throwaway servers (if any) kept alive for the run.
enum Target {
    Single {
        url: String,
        _server: Option<RedisServer>,
    },
    Cluster {
        nodes: Vec<String>,
        _cluster: RedisCluster,
    },
}

impl Target {
    fn open(args: &Args) -> Target {
        if args.cluster {
            let cluster = RedisCluster::start();
            return Target::Cluster {
                nodes: cluster.nodes(),
                _cluster: cluster,
            };
        }
        if let Some(url) = &args.redis {
            return Target::Single {
                url: url.clone(),
                _server: None,
            };
        }
        if local_redis_answers() {
            return Target::Single {
                url: "redis://127.0.0.1:6379".into(),
                _server: None,
            };
        }
        let server = RedisServer::start();
        Target::Single {
            url: server.url(),
            _server: Some(server),
        }
    }

    /// What the report calls this Redis.
    fn describe(&self) -> String {
        match self {
            Target::Single { url, _server: None } => format!("single node {url}"),
            Target::Single { url, .. } => format!("single node {url} (throwaway)"),
            Target::Cluster { nodes, .. } => {
                format!("cluster of {} nodes (3 masters, throwaway)", nodes.len())
            }
        }
    }

    /// A tier and a backplane on connections of their own.
    async fn connect(&self) -> Result<(Arc<dyn Tier>, RedisBackplane)> {
        Ok(match self {
            Target::Single { url, .. } => (
                Arc::new(RedisTier::connect(url).await?),
                RedisBackplane::connect(url).await?,
            ),
            Target::Cluster { nodes, .. } => {
                let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
                (
                    Arc::new(RedisTier::connect_cluster(&nodes).await?),
                    RedisBackplane::connect_cluster(&nodes).await?,
                )
            }
        })
    }
}

/// One instance: a cache over its own connections (call inside the runtime that will drive
/// it, so the connections' and the subscriber's tasks run there), once it trusts its L1.
async fn instance(target: &Target, name: &str, count: usize) -> Result<TieredCache<u64, u64>> {
    let (tier, backplane) = target.connect().await?;
    let cache = TieredCache::builder(name)
        // Room for every key: nothing is evicted or refused admission during the run.
        .l1(2 * count as u64 + 1_000, EvictionPolicy::default())
        .l2_shared(tier)
        .backplane(backplane)
        .default_entry_options(EntryOptions::new().ttl(ENTRY_TTL))
        .build();
    let deadline = Instant::now() + TRUST_LIMIT;
    while !cache.l1_trusted() {
        if Instant::now() > deadline {
            bail!("instance did not trust its L1 within {TRUST_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(cache)
}

/// The old and new value of round `i`'s key.
fn old_value(i: u64) -> u64 {
    2 * i
}
fn new_value(i: u64) -> u64 {
    2 * i + 1
}

/// L1 and L2 hits counted (for every instance of the run's cache) since the last call.
fn hits_since(snap: &Snapshotter, name: &str) -> (u64, u64) {
    let (mut l1, mut l2) = (0, 0);
    for (key, _, _, value) in snap.snapshot().into_vec() {
        let key = key.key();
        if key.name() != "layercache_hits_total" {
            continue;
        }
        let label = |l: &str| key.labels().find(|x| x.key() == l).map(|x| x.value());
        if label("cache") != Some(name) {
            continue;
        }
        if let DebugValue::Counter(n) = value {
            match label("tier") {
                Some("l1") => l1 += n,
                Some("l2") => l2 += n,
                _ => {}
            }
        }
    }
    (l1, l2)
}

/// One round asked of B: hold `key` in L1, tell `ready`, spin until the old value is gone.
struct Round {
    i: u64,
    ready: oneshot::Sender<()>,
    done: oneshot::Sender<Result<Seen>>,
}

/// What B's spinner saw.
struct Seen {
    /// When the first read without the old value started, and when it returned.
    started: Instant,
    returned: Instant,
    value: Option<u64>,
    /// Reads that still returned the old value after `ready`.
    old_reads: u64,
}

/// What a spinning task does between reads: sleeps its thread for `poll` (if not zero),
/// then yields to the runtime (whose I/O driver then runs: the subscriber's reads complete).
async fn pause(poll: Duration) {
    if !poll.is_zero() {
        std::thread::sleep(poll);
    }
    tokio::task::yield_now().await;
}

/// B's side of one round (runs on B's runtime).
async fn b_round(
    b: &TieredCache<u64, u64>,
    snap: &Snapshotter,
    name: &str,
    poll: Duration,
    r: Round,
) {
    let Round { i, ready, done } = r;
    let old = Some(old_value(i));
    let prepared = async {
        if !b.l1_trusted() {
            bail!("round {i}: B does not trust its L1");
        }
        if b.get(&i).await? != old {
            bail!("round {i}: B did not read the old value from L2");
        }
        hits_since(snap, name);
        let again = b.get(&i).await?;
        let hits = hits_since(snap, name);
        if again != old || hits != (1, 0) {
            bail!("round {i}: B's second read was not an L1 hit of the old value ({again:?}, hits l1/l2 {hits:?})");
        }
        Ok(())
    }
    .await;
    if let Err(e) = prepared {
        let _ = done.send(Err(e));
        return;
    }
    let _ = ready.send(());
    let limit = Instant::now() + ROUND_LIMIT;
    let mut old_reads = 0;
    let seen = loop {
        let started = Instant::now();
        let value = match b.get(&i).await {
            Ok(v) => v,
            Err(e) => break Err(e.into()),
        };
        if value != old {
            break Ok(Seen {
                started,
                returned: Instant::now(),
                value,
                old_reads,
            });
        }
        if started > limit {
            break Err(anyhow!(
                "round {i}: B still served the old value after {ROUND_LIMIT:?}"
            ));
        }
        old_reads += 1;
        pause(poll).await;
    };
    let _ = done.send(seen);
}

/// B's thread: its runtime, its instance, and its rounds until the channel closes.
fn run_b(
    target: Arc<Target>,
    name: String,
    count: usize,
    poll: Duration,
    snap: Snapshotter,
    started: oneshot::Sender<Result<TieredCache<u64, u64>>>,
    mut rounds: mpsc::Receiver<Round>,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let b = match instance(&target, &name, count).await {
            Ok(b) => b,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        let _ = started.send(Ok(b.clone()));
        while let Some(r) = rounds.recv().await {
            b_round(&b, &snap, &name, poll, r).await;
        }
    });
    Ok(())
}

/// `--baseline`: see the module docs. Latencies, one per message.
fn baseline(url: &str, name: &str, count: usize, spin: Option<Duration>) -> Result<Vec<Duration>> {
    let key = stream_key(name);
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Instant>();
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let reader = {
        let (url, key) = (url.to_owned(), key.clone());
        std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let client = redis::Client::open(url.as_str())?;
                let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                if let Some(poll) = spin {
                    let stop = Arc::clone(&stop);
                    tokio::spawn(async move {
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            pause(poll).await;
                        }
                    });
                }
                let _stop = StopOnDrop(stop);
                let _ = ready_tx.send(());
                let (mut last, mut got) = ("0-0".to_string(), 0);
                let mut heard = Instant::now();
                while got < count {
                    if heard.elapsed() > ROUND_LIMIT {
                        bail!("baseline reader heard nothing for {ROUND_LIMIT:?}");
                    }
                    let mut pipe = redis::pipe();
                    pipe.cmd("XREAD")
                        .arg("COUNT")
                        .arg(512)
                        .arg("BLOCK")
                        .arg(500)
                        .arg("STREAMS")
                        .arg(&key)
                        .arg(&last);
                    pipe.cmd("XRANGE")
                        .arg(&key)
                        .arg("-")
                        .arg("+")
                        .arg("COUNT")
                        .arg(1);
                    type Reply = Option<Vec<(String, Vec<(String, Vec<Vec<u8>>)>)>>;
                    let (read, _first): (Reply, redis::Value) = pipe.query_async(&mut conn).await?;
                    let now = Instant::now();
                    for (_, entries) in read.into_iter().flatten() {
                        for (id, _) in entries {
                            last = id;
                            got += 1;
                            heard = now;
                            let _ = seen_tx.send(now);
                        }
                    }
                }
                Ok(())
            })
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let lat = rt.block_on(async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        ready_rx.await.context("the baseline reader ended")?;
        let mut lat = Vec::with_capacity(count);
        for i in 0..count {
            let t0 = Instant::now();
            redis::cmd("SET")
                .arg(format!("{name}:{i}"))
                .arg(i)
                .arg("EX")
                .arg(ENTRY_TTL.as_secs())
                .exec_async(&mut conn)
                .await?;
            redis::cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(10_000)
                .arg("*")
                .arg("m")
                .arg(&[0u8; 24][..])
                .exec_async(&mut conn)
                .await?;
            let seen = tokio::time::timeout(ROUND_LIMIT, seen_rx.recv())
                .await
                .context("the baseline reader did not see a message")?
                .context("the baseline reader ended")?;
            lat.push(seen.duration_since(t0));
        }
        redis::cmd("DEL").arg(&key).exec_async(&mut conn).await?;
        anyhow::Ok(lat)
    });
    let read = reader
        .join()
        .map_err(|_| anyhow!("the baseline reader panicked"))?;
    let lat = lat?;
    read?;
    Ok(lat)
}

/// Sets its flag when dropped (stops `--spin`'s task however the reader ends).
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The 1-minute load average (`?` where `/proc` has none).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The nearest-rank `q` quantile of sorted `v`, in µs.
fn quantile_us(v: &[Duration], q: f64) -> f64 {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1].as_secs_f64() * 1e6
}

/// Summary figures of `v` (sorted here), µs.
struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

fn stats(v: &mut [Duration]) -> Stats {
    v.sort_unstable();
    let mean = v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len().max(1) as f64 * 1e6;
    Stats {
        p50: quantile_us(v, 0.50),
        p90: quantile_us(v, 0.90),
        p99: quantile_us(v, 0.99),
        p999: quantile_us(v, 0.999),
        max: quantile_us(v, 1.0),
        mean,
    }
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let load_before = loadavg();
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    recorder
        .install()
        .map_err(|_| anyhow!("a metrics recorder is already installed"))?;
    let target = Arc::new(Target::open(&args));
    let name = format!("invalidation-latency-{}", std::process::id());
    let count = args.count;
    let poll = args.poll;
    if args.baseline {
        let Target::Single { url, .. } = &*target else {
            bail!("--baseline runs on a single node only");
        };
        let mut lat = baseline(url, &name, count, args.spin.then_some(args.poll))?;
        let s = stats(&mut lat);
        if args.json {
            println!(
                "{{\"mode\":\"{}\",\"count\":{count},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\"mean_us\":{:.1},\"loadavg_before\":\"{load_before}\",\"loadavg_after\":\"{}\"}}",
                if args.spin { "baseline+spin" } else { "baseline" },
                s.p50, s.p90, s.p99, s.p999, s.max, s.mean, loadavg()
            );
        } else {
            println!(
                "baseline (bare redis-rs SET + XADD to XREAD reply) over {}, {count} messages, µs: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}; load average {load_before} before, {} after",
                target.describe(), s.p50, s.p90, s.p99, s.p999, s.max, s.mean, loadavg()
            );
        }
        return Ok(());
    }

    // B on its own thread and runtime.
    let (started_tx, started_rx) = oneshot::channel();
    let (round_tx, round_rx) = mpsc::channel::<Round>(1);
    let b_thread = {
        let (target, name, snap) = (Arc::clone(&target), name.clone(), snap.clone());
        std::thread::Builder::new()
            .name("instance-b".into())
            .spawn(move || run_b(target, name, count, poll, snap, started_tx, round_rx))?
    };

    // A on this thread's runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        let a = instance(&target, &name, count).await?;
        let b = started_rx.await.context("instance B's thread ended")??;
        // Every key's old value in L2, and every Set message applied by B, before measuring.
        for i in 0..count as u64 {
            a.set(i, old_value(i)).await?;
        }
        let deadline = Instant::now() + TRUST_LIMIT;
        while b.backplane_version() < a.backplane_version() {
            if Instant::now() > deadline {
                bail!("B did not catch up with A's prefill within {TRUST_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = hits_since(&snap, &name);
        let mut lat = Vec::with_capacity(count);
        let (mut lat_set, mut lat_remove) = (Vec::new(), Vec::new());
        let mut read_end = Vec::with_capacity(count);
        let mut a_call = Vec::with_capacity(count);
        let mut old_reads = 0u64;
        for i in 0..count as u64 {
            let (ready_tx, ready_rx) = oneshot::channel();
            let (done_tx, done_rx) = oneshot::channel();
            round_tx
                .send(Round {
                    i,
                    ready: ready_tx,
                    done: done_tx,
                })
                .await
                .map_err(|_| anyhow!("instance B's thread ended"))?;
            if ready_rx.await.is_err() {
                // B failed to prepare: its error comes on `done`.
                done_rx.await.context("instance B's thread ended")??;
                bail!("round {i}: B neither prepared nor failed");
            }
            let remove = i % 2 == 1;
            let t0 = Instant::now();
            if remove {
                a.remove(&i).await?;
            } else {
                a.set(i, new_value(i)).await?;
            }
            a_call.push(t0.elapsed());
            let seen = done_rx.await.context("instance B's thread ended")??;
            let want = if remove { None } else { Some(new_value(i)) };
            if seen.value != want {
                bail!(
                    "round {i}: B read {:?} after the old value, expected {want:?}",
                    seen.value
                );
            }
            let d = seen.started.duration_since(t0);
            lat.push(d);
            if remove {
                lat_remove.push(d);
            } else {
                lat_set.push(d);
            }
            read_end.push(seen.returned.duration_since(t0));
            old_reads += seen.old_reads;
        }
        drop(round_tx);
        drop(b);
        // The run's stream is the only key without a TTL: delete it.
        let (tier, _) = target.connect().await?;
        tier.delete(stream_key(&name).as_bytes()).await?;
        Ok((lat, lat_set, lat_remove, read_end, a_call, old_reads))
    });
    let b_result = b_thread
        .join()
        .map_err(|_| anyhow!("instance B's thread panicked"))?;
    let (mut lat, mut lat_set, mut lat_remove, mut read_end, mut a_call, old_reads) = outcome?;
    b_result?;

    let all = stats(&mut lat);
    let set = stats(&mut lat_set);
    let rem = stats(&mut lat_remove);
    let end = stats(&mut read_end);
    let call = stats(&mut a_call);
    let mode = if args.cluster { "cluster" } else { "single" };
    if args.json {
        println!(
            "{{\"mode\":\"{mode}\",\"count\":{count},\"poll_us\":{},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\"mean_us\":{:.1},\"set_p99_us\":{:.1},\"remove_p99_us\":{:.1},\"read_end_p50_us\":{:.1},\"read_end_p99_us\":{:.1},\"a_call_p50_us\":{:.1},\"a_call_p99_us\":{:.1},\"old_reads_per_round\":{:.1},\"loadavg_before\":\"{load_before}\",\"loadavg_after\":\"{}\"}}",
            poll.as_micros(),
            all.p50,
            all.p90,
            all.p99,
            all.p999,
            all.max,
            all.mean,
            set.p99,
            rem.p99,
            end.p50,
            end.p99,
            call.p50,
            call.p99,
            old_reads as f64 / count as f64,
            loadavg()
        );
    } else {
        println!("invalidation latency over {}, {count} rounds (A writes or removes, until B's get no longer returns the old value), µs:", target.describe());
        let row = |what: &str, s: &Stats| {
            println!(
                "  {what:<28} p50 {:>8.1}  p90 {:>8.1}  p99 {:>8.1}  p99.9 {:>8.1}  max {:>8.1}  mean {:>8.1}",
                s.p50, s.p90, s.p99, s.p999, s.max, s.mean
            );
        };
        row("all rounds", &all);
        row("after set", &set);
        row("after remove", &rem);
        row("to the end of B's read", &end);
        row("A's call itself", &call);
        println!(
            "  B's reads of the old value after A's call began: {:.1} per round; load average {load_before} before, {} after; target p99 ≤ 2000 µs: {}",
            old_reads as f64 / count as f64,
            loadavg(),
            if all.p99 <= 2000.0 { "met" } else { "NOT met" }
        );
    }
    Ok(())
}
