//! `layercache sim`: replays a trace through the real engine.
//!
//! Every (policy, capacity) pair gets a fresh [`Cache`](layercache_memory::Cache) built as
//! a user would build it, with one shard by default (so the figures are the policy's own, free of shard imbalance; pass
//! `--shards` to see the effect of sharding) and a fixed-seed hasher (so runs are
//! reproducible). Each request is a `get`; a miss is followed by an `insert`. `opt` is
//! Bélády's offline optimum computed over the same requests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use layercache_memory::EvictionPolicy;
use layercache_trace::{synth, Belady, Format, Request, TraceReader};

use crate::capacity::parse_capacities;
use crate::replay::{replay, Setup, HASH_SEED};
use crate::report::{self, SimResult};

/// Arguments of `layercache sim`.
#[derive(Args, Debug)]
pub(crate) struct SimArgs {
    /// Trace file (.zst, .gz and .xz are decompressed on the fly). Without it, a built-in
    /// workload is replayed: 2,000,000 requests, Zipf(0.99) over 100,000 keys.
    #[arg(long)]
    trace: Option<PathBuf>,

    /// Trace format: arc, lirs, cache2k, oracle-general, csv, twitter. Default: from the
    /// file name (and content, where the name is ambiguous).
    #[arg(long)]
    format: Option<Format>,

    /// Comma-separated policies: wtinylfu, s3fifo, sieve, lru, lfu, fifo, opt (Bélády), or
    /// `all`.
    #[arg(
        long,
        default_value = "wtinylfu,s3fifo,sieve,lru,lfu,fifo,opt",
        value_delimiter = ','
    )]
    policy: Vec<String>,

    /// Comma-separated capacities: entries, or bytes with --weighted. Units k, m, g
    /// (x1000) and KiB, MiB, GiB; ranges START..END:STEP. Default: 0.1%, 1% and 10% of the
    /// trace's distinct keys (of its total distinct bytes with --weighted); 100, 1000 and
    /// 10000 for the built-in workload.
    #[arg(long)]
    capacity: Option<String>,

    /// Capacity in bytes, each entry weighing its object size (oracle-general, csv and
    /// twitter traces); an object larger than the cache is a miss and is not inserted.
    #[arg(long)]
    weighted: bool,

    /// Shards per simulated cache (1 = the exact policy).
    #[arg(long, default_value_t = 1)]
    shards: usize,

    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,

    /// Write an SVG plot of hit ratio against capacity, one line per policy.
    #[arg(long, value_name = "OUT.svg")]
    plot: Option<PathBuf>,

    /// Seed of the simulated caches' hasher. The figures depend on it only through the
    /// policies that use key hashes: W-TinyLFU's sketch, and S3-FIFO's ghost, which keeps
    /// 32-bit hashes (two keys with the same one share a ghost record).
    #[arg(long, default_value_t = HASH_SEED)]
    seed: u64,

    /// Worker threads (default: the available parallelism).
    #[arg(long)]
    threads: Option<usize>,
}

/// A policy to simulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SimPolicy {
    Engine(EvictionPolicy),
    Opt,
}

impl SimPolicy {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SimPolicy::Engine(p) => p.name(),
            SimPolicy::Opt => "opt",
        }
    }
}

fn parse_policies(names: &[String]) -> Result<Vec<SimPolicy>> {
    let mut out = Vec::new();
    for name in names.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let add: Vec<SimPolicy> = match name.to_ascii_lowercase().as_str() {
            "all" => EvictionPolicy::ALL
                .iter()
                .map(|&p| SimPolicy::Engine(p))
                .chain([SimPolicy::Opt])
                .collect(),
            "opt" | "belady" => vec![SimPolicy::Opt],
            _ => vec![SimPolicy::Engine(name.parse()?)],
        };
        for p in add {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        bail!("no policy given");
    }
    Ok(out)
}

struct Workload {
    name: String,
    requests: Vec<Request>,
}

fn load(args: &SimArgs) -> Result<Workload> {
    match &args.trace {
        None => {
            if args.weighted {
                bail!("--weighted needs a trace with object sizes (oracle-general, csv, twitter); the built-in workload has none");
            }
            Ok(Workload {
                name: "zipf-0.99-100k".to_string(),
                requests: synth::Zipf::new(100_000, 0.99, 42)
                    .take(2_000_000)
                    .collect(),
            })
        }
        Some(path) => {
            let reader = TraceReader::open(path, args.format)
                .with_context(|| format!("opening trace {}", path.display()))?;
            let format = reader.format();
            if args.weighted && !format.has_sizes() {
                bail!(
                    "--weighted needs object sizes, but {} is in {} format, which has none (formats with sizes: oracle-general, csv, twitter)",
                    path.display(),
                    format.name()
                );
            }
            let requests = reader
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("reading trace {}", path.display()))?;
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            Ok(Workload { name, requests })
        }
    }
}

fn default_capacities(requests: &[Request], weighted: bool) -> Vec<u64> {
    let mut seen = std::collections::HashMap::new();
    for r in requests {
        seen.entry(r.key).or_insert(r.size);
    }
    let footprint: u64 = if weighted {
        seen.values().map(|&s| u64::from(s)).sum()
    } else {
        seen.len() as u64
    };
    let mut caps: Vec<u64> = [1000, 100, 10]
        .iter()
        .map(|d| (footprint / d).max(1))
        .collect();
    caps.dedup();
    caps
}

/// Runs `layercache sim`.
pub(crate) fn run(args: SimArgs) -> Result<()> {
    let policies = parse_policies(&args.policy)?;
    let workload = load(&args)?;
    if workload.requests.is_empty() {
        bail!("the trace holds no requests");
    }
    let capacities = match &args.capacity {
        Some(list) => parse_capacities(list)?,
        None if args.trace.is_none() => vec![100, 1_000, 10_000],
        None => default_capacities(&workload.requests, args.weighted),
    };
    let jobs: Vec<(SimPolicy, u64)> = policies
        .iter()
        .flat_map(|&p| capacities.iter().map(move |&c| (p, c)))
        .collect();

    let total = (jobs.len() * workload.requests.len()) as u64;
    let progress = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let opt = policies
        .contains(&SimPolicy::Opt)
        .then(|| Belady::new(&workload.requests));

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, jobs.len());
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(policy, capacity)) = jobs.get(j) else {
                    break;
                };
                let start = Instant::now();
                let hits = match policy {
                    SimPolicy::Opt => {
                        let r = opt
                            .as_ref()
                            .map_or(0, |o| o.simulate(capacity, args.weighted).hits);
                        progress.inc(workload.requests.len() as u64);
                        r
                    }
                    SimPolicy::Engine(p) => {
                        let setup = Setup {
                            policy: p,
                            capacity,
                            weighted: args.weighted,
                            shards: args.shards,
                            seed: args.seed,
                        };
                        replay(&workload.requests, setup, |n| progress.inc(n))
                    }
                };
                let result = SimResult {
                    trace: workload.name.clone(),
                    policy: policy.name(),
                    capacity,
                    requests: workload.requests.len() as u64,
                    hits,
                    seconds: start.elapsed().as_secs_f64(),
                };
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((j, result));
            });
        }
    });
    progress.finish_and_clear();

    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(j, _)| *j);
    let results: Vec<SimResult> = results.into_iter().map(|(_, r)| r).collect();
    if args.json {
        report::print_json(&results)?;
    } else {
        report::print_table(
            &workload.name,
            args.weighted,
            &policies,
            &capacities,
            &results,
        );
    }
    if let Some(path) = &args.plot {
        report::plot(path, &workload.name, args.weighted, &policies, &results)
            .with_context(|| format!("writing plot {}", path.display()))?;
    }
    Ok(())
}
