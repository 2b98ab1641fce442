//! The measurement behind the choice of embedded store (see the crate docs, "Why redb").
//!
//! Two candidates, each driven the way `DiskTier` drives its store: a `set` is one atomic
//! write of the data record, its entry in the insertion-order index and the byte counter
//! (after reading the previous record of the key, to unlink its index entry); a `get` is one
//! point lookup. 20 000 preloaded entries, 12-byte keys, 1 KiB values (plus the 21-byte record
//! header), overwritten in place (so the store size stays put).
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-disk cargo bench -p layercache-disk \
//!     --features compare-stores --bench store_compare
//! ```
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand::{Rng, SeedableRng};

const N: u64 = 20_000;
const VALUE: usize = 1024;
const HEADER: usize = 21;

fn key(i: u64) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

fn record(seq: u64) -> Vec<u8> {
    let mut r = vec![0xA5; HEADER + VALUE];
    r[13..21].copy_from_slice(&seq.to_le_bytes());
    r
}

fn seq_of(r: &[u8]) -> u64 {
    u64::from_le_bytes(r[13..21].try_into().unwrap())
}

// ---------------------------------------------------------------- redb

mod rb {
    use super::*;
    use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

    const DATA: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("data");
    const ORDER: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("order");
    const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

    pub(crate) struct Store {
        pub(crate) db: Database,
        seq: u64,
        durability: Durability,
        last_durable: Instant,
    }

    impl Store {
        pub(crate) fn open(path: &Path, durability: Durability) -> Self {
            let db = Database::create(path.join("redb")).unwrap();
            Self {
                db,
                seq: N,
                durability,
                last_durable: Instant::now(),
            }
        }

        pub(crate) fn set(&mut self, k: &[u8]) {
            self.seq += 1;
            let mut tx = self.db.begin_write().unwrap();
            tx.set_durability(self.durability).unwrap();
            {
                let mut data = tx.open_table(DATA).unwrap();
                let mut order = tx.open_table(ORDER).unwrap();
                let mut meta = tx.open_table(META).unwrap();
                let old = data
                    .insert(k, record(self.seq).as_slice())
                    .unwrap()
                    .map(|o| seq_of(o.value()));
                if let Some(s) = old {
                    order.remove(s).unwrap();
                }
                order.insert(self.seq, k).unwrap();
                let used = meta.get("used").unwrap().map_or(0, |v| v.value());
                meta.insert("used", used + 1).unwrap();
            }
            tx.commit().unwrap();
        }

        /// Inserts a new key and evicts the oldest entry (a full cache's steady state).
        pub(crate) fn set_evict(&mut self, k: &[u8]) {
            self.seq += 1;
            let mut tx = self.db.begin_write().unwrap();
            tx.set_durability(self.durability).unwrap();
            if self.last_durable.elapsed() >= Duration::from_secs(1) {
                // What `DiskTier` does: a durable commit at least once a second.
                self.last_durable = Instant::now();
                tx.set_durability(Durability::Immediate).unwrap();
            }
            {
                let mut data = tx.open_table(DATA).unwrap();
                let mut order = tx.open_table(ORDER).unwrap();
                let mut meta = tx.open_table(META).unwrap();
                let oldest = order.pop_first().unwrap().map(|(_, v)| v.value().to_vec());
                if let Some(o) = oldest {
                    data.remove(o.as_slice()).unwrap();
                }
                data.insert(k, record(self.seq).as_slice()).unwrap();
                order.insert(self.seq, k).unwrap();
                let used = meta.get("used").unwrap().map_or(0, |v| v.value());
                meta.insert("used", used + 1).unwrap();
            }
            tx.commit().unwrap();
        }

        pub(crate) fn file_bytes(&self, path: &Path) -> u64 {
            std::fs::metadata(path.join("redb")).unwrap().len()
        }

        pub(crate) fn get(&self, k: &[u8]) -> usize {
            let tx = self.db.begin_read().unwrap();
            let data = tx.open_table(DATA).unwrap();
            data.get(k).unwrap().map_or(0, |v| v.value().len())
        }

        pub(crate) fn load(&mut self) {
            let tx = self.db.begin_write().unwrap();
            {
                let mut data = tx.open_table(DATA).unwrap();
                let mut order = tx.open_table(ORDER).unwrap();
                for i in 0..N {
                    data.insert(key(i).as_slice(), record(i).as_slice())
                        .unwrap();
                    order.insert(i, key(i).as_slice()).unwrap();
                }
                tx.open_table(META).unwrap().insert("used", 0).unwrap();
            }
            tx.commit().unwrap();
        }
    }
}

// ---------------------------------------------------------------- fjall

mod fj {
    use super::*;
    use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

    pub(crate) struct Store {
        pub(crate) db: Database,
        data: Keyspace,
        order: Keyspace,
        meta: Keyspace,
        seq: u64,
        cursor: u64,
        durability: Option<PersistMode>,
    }

    impl Store {
        pub(crate) fn open(path: &Path, durability: Option<PersistMode>) -> Self {
            let db = Database::builder(path.join("fjall")).open().unwrap();
            let data = db.keyspace("data", KeyspaceCreateOptions::default).unwrap();
            let order = db
                .keyspace("order", KeyspaceCreateOptions::default)
                .unwrap();
            let meta = db.keyspace("meta", KeyspaceCreateOptions::default).unwrap();
            Self {
                db,
                data,
                order,
                meta,
                seq: N,
                cursor: 0,
                durability,
            }
        }

        pub(crate) fn set(&mut self, k: &[u8]) {
            self.seq += 1;
            let old = self.data.get(k).unwrap().map(|o| seq_of(&o));
            let used = self
                .meta
                .get("used")
                .unwrap()
                .map_or(0, |v| u64::from_le_bytes((*v).try_into().unwrap()));
            let mut b = self.db.batch().durability(self.durability);
            b.insert(&self.data, k, record(self.seq));
            if let Some(s) = old {
                b.remove(&self.order, s.to_be_bytes());
            }
            b.insert(&self.order, self.seq.to_be_bytes(), k);
            b.insert(&self.meta, "used", (used + 1).to_le_bytes());
            b.commit().unwrap();
        }

        /// Inserts a new key and evicts the oldest entry (a full cache's steady state).
        pub(crate) fn set_evict(&mut self, k: &[u8]) {
            self.seq += 1;
            // Seek from an in-memory cursor rather than `first_key_value`, which walks every
            // tombstone at the head of the queue (2.8 ms a set after 9k sets).
            let oldest = self
                .order
                .range(self.cursor.to_be_bytes()..)
                .next()
                .map(|g| g.into_inner().unwrap());
            if let Some((ok, _)) = &oldest {
                self.cursor = u64::from_be_bytes((**ok).try_into().unwrap()) + 1;
            }
            let used = self
                .meta
                .get("used")
                .unwrap()
                .map_or(0, |v| u64::from_le_bytes((*v).try_into().unwrap()));
            let mut b = self.db.batch().durability(self.durability);
            if let Some((ok, ov)) = oldest {
                b.remove(&self.order, ok);
                b.remove(&self.data, ov);
            }
            b.insert(&self.data, k, record(self.seq));
            b.insert(&self.order, self.seq.to_be_bytes(), k);
            b.insert(&self.meta, "used", (used + 1).to_le_bytes());
            b.commit().unwrap();
        }

        pub(crate) fn file_bytes(&self) -> u64 {
            self.db.disk_space().unwrap()
        }

        pub(crate) fn get(&self, k: &[u8]) -> usize {
            self.data.get(k).unwrap().map_or(0, |v| v.len())
        }

        pub(crate) fn load(&mut self) {
            let mut b = self.db.batch();
            for i in 0..N {
                b.insert(&self.data, key(i), record(i));
                b.insert(&self.order, i.to_be_bytes(), key(i));
            }
            b.insert(&self.meta, "used", 0u64.to_le_bytes());
            b.commit().unwrap();
            self.db.persist(PersistMode::SyncAll).unwrap();
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let keys: Vec<Vec<u8>> = (0..N).map(key).collect();

    // Open time of a store holding N entries (closed cleanly).
    let rdir = tempfile::tempdir().unwrap();
    let fdir = tempfile::tempdir().unwrap();
    {
        rb::Store::open(rdir.path(), redb::Durability::Immediate).load();
        fj::Store::open(fdir.path(), None).load();
    }
    let mut g = c.benchmark_group("open_20k");
    g.sample_size(20);
    g.bench_function("redb", |b| {
        b.iter_custom(|n| {
            let mut t = Duration::ZERO;
            for _ in 0..n {
                let s = Instant::now();
                let st = rb::Store::open(rdir.path(), redb::Durability::Immediate);
                t += s.elapsed();
                drop(st);
            }
            t
        })
    });
    g.bench_function("fjall", |b| {
        b.iter_custom(|n| {
            let mut t = Duration::ZERO;
            for _ in 0..n {
                let s = Instant::now();
                let st = fj::Store::open(fdir.path(), None);
                t += s.elapsed();
                drop(st);
            }
            t
        })
    });
    g.finish();

    let mut g = c.benchmark_group("get_1KiB");
    {
        let st = rb::Store::open(rdir.path(), redb::Durability::None);
        g.bench_function("redb", |b| {
            b.iter_batched(
                || &keys[rng.gen_range(0..N as usize)],
                |k| black_box(st.get(k)),
                BatchSize::SmallInput,
            )
        });
    }
    {
        let st = fj::Store::open(fdir.path(), None);
        g.bench_function("fjall", |b| {
            b.iter_batched(
                || &keys[rng.gen_range(0..N as usize)],
                |k| black_box(st.get(k)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("set_1KiB");
    g.measurement_time(Duration::from_secs(4));
    for (name, d) in [
        ("redb/durability-none", redb::Durability::None),
        ("redb/durability-immediate", redb::Durability::Immediate),
    ] {
        let mut st = rb::Store::open(rdir.path(), d);
        g.bench_function(name, |b| {
            b.iter_batched(
                || keys[rng.gen_range(0..N as usize)].clone(),
                |k| st.set(&k),
                BatchSize::SmallInput,
            )
        });
    }
    for (name, d) in [
        ("fjall/persist-buffer", None),
        ("fjall/persist-syncdata", Some(fjall::PersistMode::SyncData)),
    ] {
        let mut st = fj::Store::open(fdir.path(), d);
        g.bench_function(name, |b| {
            b.iter_batched(
                || keys[rng.gen_range(0..N as usize)].clone(),
                |k| st.set(&k),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    // A full cache: every set inserts a new key and evicts the oldest; then the space used
    // on disk for the N live entries (about 21 MiB of keys and records).
    let mut g = c.benchmark_group("set_evict_1KiB");
    g.measurement_time(Duration::from_secs(4));
    let mut next = N;
    let mut rs = rb::Store::open(rdir.path(), redb::Durability::None);
    g.bench_function("redb/durability-none+immediate-each-1s", |b| {
        b.iter(|| {
            next += 1;
            rs.set_evict(&key(next))
        })
    });
    let mut fs = fj::Store::open(fdir.path(), None);
    let mut next_f = N;
    g.bench_function("fjall/persist-buffer", |b| {
        b.iter(|| {
            next_f += 1;
            fs.set_evict(&key(next_f))
        })
    });
    g.finish();
    let live = N * (12 + (HEADER + VALUE) as u64);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    eprintln!(
        "after churn: live {:.1} MiB; redb file {:.1} MiB ({} sets); fjall disk space {:.1} MiB ({} sets)",
        mib(live),
        mib(rs.file_bytes(rdir.path())),
        next - N,
        mib(fs.file_bytes()),
        next_f - N
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
