//! Hit ratios of layercache against moka and quick_cache on the real traces.
//!
//! Replays every (trace, capacity) pair of the "Known figures" table of
//! `shared/traces/README.md` through:
//!
//! * LRU: layercache with `EvictionPolicy::Lru`;
//! * moka 0.12: `moka::sync::Cache::new(cap)`, default settings, plain `get`/`insert` (no
//!   `run_pending_tasks`), as the README's figures were taken;
//! * quick_cache 0.7: `quick_cache::sync::Cache::new(cap)`, default settings;
//! * layercache: the default policy (W-TinyLFU), built as `layercache sim` builds it (one
//!   shard, fixed-seed foldhash);
//! * OPT: Bélády's optimum from `layercache_trace::Belady`.
//!
//! Every cache sees the same requests with the same semantics: `get`, and `insert` on a
//! miss, single-threaded; independent replays run on a small pool of threads.
//!
//! moka and quick_cache seed their hashers randomly, so their figures move by up to a point
//! or more between runs on the small caches (e.g. quick_cache on loop @ 768); `--runs N`
//! replays them N times and reports the mean (and the range in the reproduction table).
//!
//! ```text
//! cargo run --release -p layercache-cli --example peers [-- --traces DIR] [--threads N] [--runs N]
//! ```

#[path = "../src/replay.rs"]
mod replay;
#[path = "common/shared_traces.rs"]
mod shared_traces;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use layercache_memory::EvictionPolicy;
use layercache_trace::{Belady, Request};

/// One row of the README's "Known figures" table (hit ratios in %).
struct Known {
    file: &'static str,
    capacity: u64,
    requests: usize,
    lru: f64,
    moka: f64,
    quick_cache: f64,
    opt: f64,
}

const fn k(
    file: &'static str,
    capacity: u64,
    requests: usize,
    lru: f64,
    moka: f64,
    quick_cache: f64,
    opt: f64,
) -> Known {
    Known {
        file,
        capacity,
        requests,
        lru,
        moka,
        quick_cache,
        opt,
    }
}

/// The README table, copied verbatim (file paths relative to the traces directory).
const KNOWN: &[Known] = &[
    k("arc/OLTP.lis.zst", 250, 914145, 16.47, 22.85, 19.31, 38.43),
    k("arc/OLTP.lis.zst", 500, 914145, 23.45, 29.76, 27.38, 46.42),
    k("arc/OLTP.lis.zst", 1000, 914145, 32.83, 35.71, 35.23, 53.61),
    k("arc/OLTP.lis.zst", 2000, 914145, 42.47, 41.28, 43.75, 60.40),
    k("arc/P3.lis.zst", 20000, 3912296, 2.28, 11.94, 8.38, 21.95),
    k("arc/P3.lis.zst", 80000, 3912296, 18.95, 34.42, 31.50, 56.55),
    k(
        "arc/P3.lis.zst",
        160000,
        3912296,
        51.58,
        50.78,
        53.77,
        70.83,
    ),
    k("lirs/loop.trace.gz", 256, 505500, 0.00, 24.71, 24.48, 25.22),
    k("lirs/loop.trace.gz", 512, 505500, 0.00, 50.52, 48.96, 50.54),
    k("lirs/loop.trace.gz", 768, 505500, 0.00, 75.74, 53.01, 75.81),
    k(
        "lirs/loop.trace.gz",
        1024,
        505500,
        99.80,
        99.80,
        94.79,
        99.80,
    ),
    k(
        "lirs/sprite.trace.gz",
        256,
        133996,
        49.90,
        58.06,
        55.04,
        75.06,
    ),
    k(
        "lirs/sprite.trace.gz",
        512,
        133996,
        78.94,
        75.86,
        76.71,
        88.20,
    ),
    k(
        "lirs/sprite.trace.gz",
        1024,
        133996,
        90.73,
        83.40,
        87.80,
        93.31,
    ),
    k(
        "lirs/sprite.trace.gz",
        2048,
        133996,
        93.52,
        88.32,
        92.02,
        94.62,
    ),
    k(
        "lirs/multi2.trace.gz",
        512,
        26311,
        36.37,
        50.48,
        46.78,
        53.83,
    ),
    k(
        "lirs/multi2.trace.gz",
        1024,
        26311,
        47.87,
        58.91,
        57.31,
        62.52,
    ),
    k(
        "lirs/multi2.trace.gz",
        2048,
        26311,
        49.12,
        69.78,
        70.92,
        75.01,
    ),
    k("lirs/gli.trace.gz", 250, 6015, 0.91, 14.85, 16.04, 17.64),
    k("lirs/gli.trace.gz", 500, 6015, 0.95, 28.99, 32.00, 34.26),
    k("lirs/gli.trace.gz", 1000, 6015, 11.21, 41.81, 48.86, 53.13),
    k("lirs/gli.trace.gz", 1500, 6015, 36.56, 53.43, 53.52, 57.96),
    k(
        "cache2k/web07.trace.xz",
        500,
        76118,
        45.58,
        47.83,
        47.84,
        59.16,
    ),
    k(
        "cache2k/web07.trace.xz",
        2000,
        76118,
        55.50,
        55.84,
        57.82,
        67.97,
    ),
    k(
        "cache2k/web07.trace.xz",
        8000,
        76118,
        66.92,
        66.13,
        67.47,
        73.09,
    ),
    k(
        "libcachesim/cloudPhysicsIO.oracleGeneral.bin",
        1000,
        113872,
        16.73,
        17.42,
        17.34,
        23.58,
    ),
    k(
        "libcachesim/cloudPhysicsIO.oracleGeneral.bin",
        5000,
        113872,
        19.62,
        24.87,
        21.77,
        37.38,
    ),
    k(
        "libcachesim/cloudPhysicsIO.oracleGeneral.bin",
        20000,
        113872,
        36.72,
        46.95,
        47.06,
        54.47,
    ),
];

/// The caches compared, in column order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sim {
    Lru,
    Moka,
    QuickCache,
    LayerCache,
    Opt,
}

const SIMS: [Sim; 5] = [
    Sim::Lru,
    Sim::Moka,
    Sim::QuickCache,
    Sim::LayerCache,
    Sim::Opt,
];

fn layercache(requests: &[Request], capacity: u64, policy: EvictionPolicy) -> u64 {
    let setup = replay::Setup {
        policy,
        capacity,
        weighted: false,
        shards: 1,
        seed: replay::HASH_SEED,
    };
    replay::replay(requests, setup, |_| {})
}

fn moka(requests: &[Request], capacity: u64) -> u64 {
    let cache = moka::sync::Cache::<u64, u32>::new(capacity);
    let mut hits = 0;
    for r in requests {
        if cache.get(&r.key).is_some() {
            hits += 1;
        } else {
            cache.insert(r.key, r.size);
        }
    }
    hits
}

fn quick_cache(requests: &[Request], capacity: u64) -> u64 {
    let cache = quick_cache::sync::Cache::<u64, u32>::new(capacity as usize);
    let mut hits = 0;
    for r in requests {
        if cache.get(&r.key).is_some() {
            hits += 1;
        } else {
            cache.insert(r.key, r.size);
        }
    }
    hits
}

/// A loaded trace.
struct Trace {
    file: &'static str,
    requests: Vec<Request>,
    belady: Belady,
}

fn load(dir: &Path, file: &'static str) -> Trace {
    let requests = shared_traces::read(dir, file);
    let belady = Belady::new(&requests);
    Trace {
        file,
        requests,
        belady,
    }
}

/// Runs `jobs` on `threads` threads, taking them in order from a shared counter.
fn parallel<T: Sync, R: Send>(jobs: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let r = f(job);
                out.lock().unwrap().push((i, r));
            });
        }
    });
    let mut out = out.into_inner().unwrap();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

fn pct(hits: u64, requests: usize) -> f64 {
    100.0 * hits as f64 / requests as f64
}

fn short(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

/// Mean, minimum and maximum of the hit ratios (in %) of several runs.
fn stats(hits: &[u64], requests: usize) -> (f64, f64, f64) {
    let r: Vec<f64> = hits.iter().map(|&h| pct(h, requests)).collect();
    let mean = r.iter().sum::<f64>() / r.len().max(1) as f64;
    let min = r.iter().copied().fold(f64::INFINITY, f64::min);
    let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, min, max)
}

fn main() {
    let mut dir = shared_traces::default_dir();
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut runs = 1usize;
    let usage = "usage: peers [--traces DIR] [--threads N] [--runs N]";
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{a} needs {what}; {usage}"))
        };
        match a.as_str() {
            "--traces" => dir = PathBuf::from(value("DIR")),
            "--threads" => threads = value("N").parse().expect("--threads N"),
            "--runs" => runs = value("N").parse::<usize>().expect("--runs N").max(1),
            _ => panic!("unknown argument {a:?}; {usage}"),
        }
    }
    let started = Instant::now();

    // Load each trace once (largest first, so the pool stays busy).
    let mut files: Vec<(&'static str, usize)> =
        KNOWN.iter().map(|k| (k.file, k.requests)).collect();
    files.dedup();
    files.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let traces = parallel(&files, threads, |&(f, _)| load(&dir, f));
    eprintln!(
        "loaded {} traces from {} in {:.1}s",
        traces.len(),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    let trace_of = |file: &str| traces.iter().find(|t| t.file == file).expect("loaded");

    // One job per (row, cache, run), longest traces first. moka and quick_cache seed their
    // hashers randomly, so they are replayed `runs` times; the others are deterministic.
    let mut jobs: Vec<(usize, Sim, usize)> = Vec::new();
    for row in 0..KNOWN.len() {
        for sim in SIMS {
            let n = if matches!(sim, Sim::Moka | Sim::QuickCache) {
                runs
            } else {
                1
            };
            jobs.extend((0..n).map(|run| (row, sim, run)));
        }
    }
    jobs.sort_by_key(|&(row, _, _)| std::cmp::Reverse(KNOWN[row].requests));
    let results = parallel(&jobs, threads, |&(row, sim, _)| {
        let known = &KNOWN[row];
        let t = trace_of(known.file);
        let cap = known.capacity;
        let start = Instant::now();
        let hits = match sim {
            Sim::Lru => layercache(&t.requests, cap, EvictionPolicy::Lru),
            Sim::Moka => moka(&t.requests, cap),
            Sim::QuickCache => quick_cache(&t.requests, cap),
            Sim::LayerCache => layercache(&t.requests, cap, EvictionPolicy::default()),
            Sim::Opt => t.belady.simulate(cap, false).hits,
        };
        (hits, start.elapsed().as_secs_f64())
    });
    let mut hits: Vec<[Vec<u64>; 5]> = (0..KNOWN.len()).map(|_| Default::default()).collect();
    let mut secs = [0f64; 5];
    for (&(row, sim, _), &(h, s)) in jobs.iter().zip(&results) {
        let col = SIMS.iter().position(|&x| x == sim).unwrap_or(0);
        hits[row][col].push(h);
        secs[col] += s;
    }
    // Mean hit ratio (%) of every row and column.
    let ratio =
        |row: usize, col: usize| stats(&hits[row][col], trace_of(KNOWN[row].file).requests.len());

    println!(
        "| trace | capacity | requests | LRU | moka | quick_cache | layercache | OPT | layercache − best peer |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut deltas = Vec::new();
    for (row, known) in KNOWN.iter().enumerate() {
        let n = trace_of(known.file).requests.len();
        let r: Vec<f64> = (0..5).map(|col| ratio(row, col).0).collect();
        let delta = r[3] - r[1].max(r[2]);
        deltas.push(delta);
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:+.2} |",
            short(known.file),
            known.capacity,
            n,
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            delta
        );
    }
    let mean = deltas.iter().sum::<f64>() / deltas.len() as f64;
    let (min_row, min) =
        deltas
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f64::INFINITY),
                |a, (i, d)| if d < a.1 { (i, d) } else { a },
            );
    let oltp_1000 = KNOWN
        .iter()
        .position(|k| k.file.ends_with("OLTP.lis.zst") && k.capacity == 1000)
        .map(|row| ratio(row, 3).0);
    println!();
    if runs > 1 {
        println!(
            "(moka and quick_cache: mean of {runs} runs, each with a fresh random hasher seed.)"
        );
        println!();
    }
    println!(
        "Summary: mean(layercache − max(moka, quick_cache)) = {:+.2} points over {} rows; \
         minimum {:+.2} at {} @ {}; OLTP@1000 layercache = {} ({} 40%).",
        mean,
        deltas.len(),
        min,
        short(KNOWN[min_row].file),
        KNOWN[min_row].capacity,
        oltp_1000.map_or("n/a".to_string(), |v| format!("{v:.2}%")),
        match oltp_1000 {
            Some(v) if v >= 40.0 => ">=",
            Some(_) => "<",
            None => "?",
        }
    );

    // Reproduction check against the README's published figures.
    println!();
    println!(
        "Reproduction of the README figures: measured / published (Δ = measured − published{})",
        if runs > 1 {
            "; moka and quick_cache: mean [min, max] of the runs"
        } else {
            ""
        }
    );
    println!();
    println!("| trace | capacity | requests | LRU | moka | Δ moka | quick_cache | Δ qc | OPT |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (mut worst_moka, mut worst_qc, mut exact_mismatch) = (0f64, 0f64, 0);
    let spread = |(mean, lo, hi): (f64, f64, f64)| {
        if runs > 1 {
            format!("{mean:.2} [{lo:.2}, {hi:.2}]")
        } else {
            format!("{mean:.2}")
        }
    };
    for (row, known) in KNOWN.iter().enumerate() {
        let n = trace_of(known.file).requests.len();
        let (lru, opt) = (ratio(row, 0).0, ratio(row, 4).0);
        let (m, q) = (ratio(row, 1), ratio(row, 2));
        let (dm, dq) = (m.0 - known.moka, q.0 - known.quick_cache);
        worst_moka = worst_moka.max(dm.abs());
        worst_qc = worst_qc.max(dq.abs());
        // LRU and OPT are exact: compare to the README's two decimals.
        let lru_ok = format!("{lru:.2}") == format!("{:.2}", known.lru);
        let opt_ok = format!("{opt:.2}") == format!("{:.2}", known.opt);
        exact_mismatch +=
            usize::from(!lru_ok) + usize::from(!opt_ok) + usize::from(n != known.requests);
        println!(
            "| {} | {} | {}{} | {:.2} / {:.2}{} | {} / {:.2} | {:+.2} | {} / {:.2} | {:+.2} | {:.2} / {:.2}{} |",
            short(known.file),
            known.capacity,
            n,
            if n == known.requests { String::new() } else { format!(" (README {})", known.requests) },
            lru,
            known.lru,
            if lru_ok { "" } else { " ✗" },
            spread(m),
            known.moka,
            dm,
            spread(q),
            known.quick_cache,
            dq,
            opt,
            known.opt,
            if opt_ok { "" } else { " ✗" },
        );
    }
    println!();
    println!(
        "Largest |Δ| of the {}: moka {worst_moka:.2}, quick_cache {worst_qc:.2} points; \
         LRU/OPT/request-count mismatches: {exact_mismatch}.",
        if runs > 1 { "means" } else { "single runs" }
    );
    eprintln!(
        "replay CPU seconds: LRU {:.1}, moka {:.1}, quick_cache {:.1}, layercache {:.1}, OPT {:.1}; \
         wall {:.1}s on {threads} threads",
        secs[0],
        secs[1],
        secs[2],
        secs[3],
        secs[4],
        started.elapsed().as_secs_f64()
    );
}
