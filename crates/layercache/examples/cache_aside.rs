//! Cache-aside in front of a real database: "products" are loaded from SQLite through a
//! `TieredCache` whose L2 is Redis when `REDIS_URL` is set, and the embedded disk tier
//! otherwise. Two "instances" (two caches over the same L2) serve a skewed workload; the
//! example prints hits per tier and how often the origin was asked.
//!
//! ```text
//! cargo run --release -p layercache --example cache_aside                       # disk L2
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --release -p layercache --example cache_aside
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use layercache::disk::{DiskOptions, DiskTier};
use layercache::redis::RedisTier;
use layercache::{EntryOptions, Tier, TieredCache};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// A row of the origin's `products` table.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Product {
    id: u64,
    name: String,
    price_cents: u32,
}

const PRODUCTS: u64 = 2_000;
const REQUESTS_PER_INSTANCE: u64 = 40_000;
const TASKS: u64 = 8;

/// The origin: a SQLite database with a products table, and a count of queries.
struct Origin {
    db: Mutex<Connection>,
    queries: AtomicU64,
}

impl Origin {
    fn create(path: &std::path::Path) -> rusqlite::Result<Origin> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL);",
        )?;
        let tx = db.unchecked_transaction()?;
        for id in 0..PRODUCTS {
            tx.execute(
                "INSERT INTO products (id, name, price_cents) VALUES (?1, ?2, ?3)",
                params![
                    id as i64,
                    format!("product #{id}"),
                    (100 + (id * 37) % 10_000) as i64
                ],
            )?;
        }
        tx.commit()?;
        Ok(Origin {
            db: Mutex::new(db),
            queries: AtomicU64::new(0),
        })
    }

    fn product(&self, id: u64) -> rusqlite::Result<Option<Product>> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let db = self.db.lock().expect("origin lock");
        db.query_row(
            "SELECT id, name, price_cents FROM products WHERE id = ?1",
            params![id as i64],
            |r| {
                Ok(Product {
                    id: r.get::<_, i64>(0)? as u64,
                    name: r.get(1)?,
                    price_cents: r.get(2)?,
                })
            },
        )
        .optional()
    }
}

/// A skewed id: the first ids are much more popular (a simple power law).
fn skewed(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let u = (*seed >> 11) as f64 / (1u64 << 53) as f64;
    ((PRODUCTS as f64).powf(u) - 1.0) as u64
}

async fn serve(
    name: &str,
    cache: &TieredCache<u64, Product>,
    origin: &Arc<Origin>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (cache, origin) = (cache.clone(), Arc::clone(origin));
            tokio::spawn(async move {
                let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (t + 1);
                for _ in 0..REQUESTS_PER_INSTANCE / TASKS {
                    let id = skewed(&mut seed);
                    let origin = Arc::clone(&origin);
                    let product = cache
                        .get_or_load_optional(id, || async move {
                            let row =
                                tokio::task::spawn_blocking(move || origin.product(id)).await??;
                            Ok::<_, anyhow::Error>(row)
                        })
                        .await?;
                    assert_eq!(product.map(|p| p.id), Some(id));
                }
                Ok::<_, layercache::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    println!(
        "{name}: {REQUESTS_PER_INSTANCE} requests in {:.2?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;

    let dir = tempfile::tempdir()?;
    let origin = Arc::new(Origin::create(&dir.path().join("shop.db"))?);
    let (l2, label): (Arc<dyn Tier>, String) = match std::env::var("REDIS_URL") {
        Ok(url) => (
            Arc::new(RedisTier::connect(&url).await?),
            format!("Redis at {url}"),
        ),
        Err(_) => {
            let path = dir.path().join("l2");
            let tier = DiskTier::open(&path, DiskOptions::new(256 << 20))?;
            (Arc::new(tier), format!("disk tier at {}", path.display()))
        }
    };
    println!("L2: {label}; origin: SQLite with {PRODUCTS} products");

    let options = EntryOptions::new()
        .ttl(Duration::from_secs(600))
        .l1_ttl(Duration::from_secs(60))
        .negative_ttl(Duration::from_secs(30));
    let instance = |l1_capacity: u64| {
        TieredCache::<u64, Product>::builder("example:products")
            .l1(l1_capacity, layercache::EvictionPolicy::WTinyLfu)
            .l2_shared(Arc::clone(&l2))
            .default_entry_options(options.clone())
            .build()
    };
    // Clear what an earlier run left in a shared Redis.
    let first = instance(500);
    for id in 0..PRODUCTS {
        first.remove(&id).await.ok();
    }
    serve("instance A", &first, &origin).await?;
    let second = instance(500);
    serve("instance B (same L2, cold L1)", &second, &origin).await?;

    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if let DebugValue::Counter(n) = value {
            let labels: Vec<String> = key
                .key()
                .labels()
                .filter(|l| l.key() != "cache")
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            *counts
                .entry(format!("{}{{{}}}", key.key().name(), labels.join(",")))
                .or_default() += n;
        }
    }
    println!();
    for (name, n) in &counts {
        println!("{name:<60} {n:>8}");
    }
    println!(
        "\norigin queries: {} for {} requests",
        origin.queries.load(Ordering::Relaxed),
        2 * REQUESTS_PER_INSTANCE
    );
    Ok(())
}
