//! # layercache-disk
//!
//! A persistent, byte-bounded [`Tier`] on a local [redb](https://docs.rs/redb) file: the
//! default L2 of [layercache](https://docs.rs/layercache) when no Redis is configured.
//!
//! ```
//! use std::time::Duration;
//! use layercache_disk::{DiskOptions, DiskTier};
//! use layercache_tier::Tier;
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // At most 256 MiB of keys and records, in `dir` (created if needed).
//! let tier = DiskTier::open(dir.path(), DiskOptions::new(256 << 20))?;
//! tier.set(b"user:42", b"{\"name\":\"Ada\"}", Some(Duration::from_secs(600))).await?;
//! assert_eq!(tier.get(b"user:42").await?, Some(b"{\"name\":\"Ada\"}".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! ## Runtime
//!
//! The store blocks (file I/O, `fsync`), so each call runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]) when its future is polled inside a tokio runtime (either
//! flavour); polled outside any runtime, it runs inline on the polling thread. A call whose
//! future is dropped (the front crate's timeout) still finishes in the background: a timed-out
//! `set` may land. [`DiskTier::open`] and [`DiskTier::flush`] block the calling thread.
//!
//! ## Guarantees
//!
//! - **Byte bound, no slack.** The *counted* bytes of an entry are its key's length plus its
//!   record's length ([`RECORD_HEADER_BYTES`] = 21, plus the value's length); an entry with
//!   a 16-byte key and a 1 KiB value counts 1 061 bytes. Once any call has returned,
//!   [`DiskTier::used_bytes`] ≤ [`DiskOptions::new`]'s `max_bytes`: a write checks and evicts
//!   in the same transaction that stores. An entry counting more than `max_bytes` on its own
//!   is not stored, and the key's previous value is deleted (a stale value is never left to be
//!   served). Expired entries not yet deleted still count.
//! - **Eviction order.** When a write needs room it first deletes expired entries (earliest
//!   expiry first, at most 256 per write), then evicts the **oldest-written** entries (a
//!   secondary index by write sequence number; overwriting a key makes it the newest; reads
//!   do not reorder) until the new entry fits. `set_many` writes its entries in order in one
//!   transaction, so a batch larger than the bound keeps its last entries.
//! - **TTL.** A record stores its absolute expiry in unix milliseconds (0 for none): the
//!   write's clock reading plus the TTL rounded up to the millisecond, and at least 1 ms. It is
//!   expired when the clock reads ≥ its expiry; an expired record is a miss, and the read that
//!   finds it deletes it. Expiry holds across restarts (a wall-clock base). The clock is
//!   [`DiskOptions::clock`], for tests.
//! - **Checksums.** Every record carries a CRC-32 over its key, expiry, sequence number and
//!   payload (see "Record format"). A record that does not parse or does not match is a
//!   miss, is deleted, and is counted by [`DiskTier::corrupt_records`]; it is never served,
//!   and never a panic. redb's own crash safety (copy-on-write pages, checksummed commits)
//!   means a crash does not tear records; the record checksum catches what happens to the
//!   bytes afterwards (media errors, edits behind the tier's back).
//! - **Crashes and durability.** Every call that writes is one redb write transaction:
//!   atomic (a `set_many` is all or nothing) and crash-consistent. When it is *durable*
//!   depends on [`Durability`]: [`Durability::Immediate`] syncs each write before it returns;
//!   the default, `Periodic(1 s)`, commits without syncing and syncs at least once a second,
//!   on the write that follows 256 unsynced ones, on [`DiskTier::flush`] and on drop. After
//!   a crash (SIGKILL, power loss) reopening repairs the file and serves the last durable
//!   state: every value served is one that was written, whole.
//! - **Restarts.** The byte counter, entry count and sequence number are stored in the same
//!   transactions as the data, so reopening reads them back (no scan) and they are exact
//!   after a crash too. A clean reopen takes milliseconds (3 ms for 63 250 entries, 128 MiB
//!   file); after a crash redb first walks the whole file to repair it (243 ms for that file,
//!   page cache warm: plan on reading the file once). Reopening with a smaller `max_bytes`
//!   evicts down to it before `open` returns.
//! - **Conditional writes.** [`add`](Tier::add) and
//!   [`compare_and_set`](Tier::compare_and_set) read the key and write in one write
//!   transaction (writes are serialised): atomic, and durable as any write. An expired or
//!   corrupt record counts as absent (so `add` stores over it and `compare_and_set` does not
//!   match it); the comparison is byte for byte; the new TTL replaces the old (`None`: no
//!   expiry). A new value larger than the bound is not stored (`false`), and the value it
//!   would have replaced is deleted, as for `set`.
//! - **Concurrency.** Reads run in parallel with each other and with writes (each read sees a
//!   snapshot); writes are serialised. One [`DiskTier`] per directory: the file is locked,
//!   and a second open fails with [`Error::AlreadyOpen`].
//!
//! ## Size of the file
//!
//! The file is larger than the counted bytes: redb's B-tree pages are partly filled, each
//! entry also has an insertion-order index entry (8 bytes plus its key) and, with a TTL, an
//! expiry index entry (16 bytes), pages are allocated in power-of-two sizes, and the file
//! grows by doubling (until redb's region size). Under `Periodic` durability the pages a
//! commit frees are reused only after the next durable commit, hence the durable commit every
//! 256 writes (without it the file reached 8× `max_bytes` in the run below). Measured with
//! the `overhead` example, writing 2–3 × `max_bytes` of random keys (overwrites and
//! evictions) into a 64 MiB tier:
//!
//! | values | file / `max_bytes` | redb pages in use / `max_bytes` |
//! |---|---:|---:|
//! | 1 KiB | 2.01 | 1.73 |
//! | 100 B | 4.02 | 1.99 |
//! | 16 KiB | 4.02 | 2.02 (16 KiB + header rounds to a 32 KiB page) |
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-disk cargo run --release -p layercache-disk --example overhead -- \
//!     --max-mib 64 --rounds 3 --value-bytes 1024
//! ```
//!
//! So budget the disk at about 4 × `max_bytes` (2 × for values of about 1 KiB).
//!
//! ## Record format
//!
//! The value stored under each key (layout 1):
//!
//! | offset | bytes | field |
//! |---:|---:|---|
//! | 0 | 4 | CRC-32 (IEEE, `crc32fast`), little-endian, of: the key's length (u64 LE), the key, then bytes 4.. of the record |
//! | 4 | 1 | format, 1 |
//! | 5 | 8 | expiry, unix milliseconds, u64 LE (0 = none) |
//! | 13 | 8 | sequence number of the write, u64 LE |
//! | 21 | n | payload: the value |
//!
//! ## On-disk layout
//!
//! One redb file, [`FILE_NAME`], in the directory given to [`DiskTier::open`], with four
//! tables: `records` (`&[u8]` key → `&[u8]` record), `order` (`u64` sequence number → key),
//! `expiry` (`(u64, u64)` (expiry, sequence number) → `()`, for records with an expiry) and
//! `meta` (`&str` → `&[u8]`: `layout` = 1 and `counters` = used bytes, entries, next sequence
//! number, each u64 LE). A file with another layout is refused ([`Error::UnsupportedLayout`]).
//!
//! ## Why redb
//!
//! Two well-kept embedded stores were measured, each driven the way this tier drives its
//! store (a `set` reads the key's previous record and writes the record, its order-index entry
//! and the counters atomically; 20 000 entries of 12-byte keys and 1 KiB values):
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-disk cargo bench -p layercache-disk \
//!     --features compare-stores --bench store_compare
//! ```
//!
//! Two runs on the project's CI machine kind (2 vCPUs, shared: expect ±30 % between runs),
//! criterion medians:
//!
//! | | redb 4.5.0 | fjall 3.1.13 |
//! |---|---:|---:|
//! | open, 20 000 entries, clean | 0.085 / 0.41 ms | 67 / 81 ms |
//! | get, 1 KiB hit | 1.2 / 1.7 µs | 1.0 / 1.1 µs |
//! | set, not synced (redb `Durability::None`; fjall `PersistMode::Buffer`) | 58 / 39 µs | 22 / 19 µs |
//! | set, synced (redb `Durability::Immediate`; fjall `SyncData`) | 218 / 209 µs | 59 / 53 µs |
//! | set of a new key evicting the oldest (redb synced each second) | 30 / 21 µs | 25 / 55 µs ¹ |
//! | disk space after that churn, 20.2 MiB live | 122 / 54 MiB | 679 / 416 MiB ² |
//!
//! ¹ With a cursor kept in memory; finding the oldest with `first_key_value` walks the
//! tombstones left at the head of the order index: 2.8 ms a set after 9 000 sets.
//! ² Including its journals (up to 512 MiB by default) and the tables awaiting compaction.
//!
//! fjall writes faster (2–4×, the synced write most) and reads a little faster. redb was
//! chosen for what a byte-bounded cache needs beyond speed: a **predictable file size**
//! (freed B-tree pages are reused; fjall's log-structured space is at the mercy of its
//! compaction, 20–34 × the live data in these runs), an **open in well under a millisecond**
//! instead of 70–80 ms, **no background threads** on a 2-core machine (fjall runs flush and
//! compaction workers), no tombstone pitfall for the eviction queue, and **no
//! dependencies** (fjall brings lsm-tree, lz4_flex and more; it also caps keys at 64 KiB).
//! Through the tier, a set costs about 0.1 ms; the default L2 sits behind an in-memory L1,
//! where that is the price of a miss.
//!
//! ## Throughput
//!
//! `benches/disk.rs` measures the tier through the [`Tier`] trait, driven by a tokio
//! multi-threaded runtime (so each call includes the hop to the blocking pool: about 7 µs
//! of the 9 µs of a get), 20 000 entries of 16-byte keys and 1 KiB values:
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-disk cargo bench -p layercache-disk --bench disk
//! ```
//!
//! | benchmark | time (median) | throughput |
//! |---|---:|---:|
//! | `disk_get_1KiB/hit` | 8.7 µs | 115 k gets/s |
//! | `disk_get_1KiB/miss` | 8.9 µs | 112 k gets/s |
//! | `disk_get_1KiB/hit_8_concurrent` | 54 µs per 8 | 148 k gets/s |
//! | `disk_get_1KiB/get_many_16` | 29 µs per 16 | 545 k keys/s |
//! | `disk_set_1KiB/periodic_1s` (default durability) | 95 µs | 10.6 k sets/s |
//! | `disk_set_1KiB/set_many_16_periodic_1s` | 515 µs per 16 | 31 k entries/s |
//! | `disk_set_1KiB/set_evict_periodic_1s` (full tier) | 71 µs | 14 k sets/s |
//! | `disk_set_1KiB/immediate` | 250 µs | 4.0 k sets/s |

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use layercache_tier::{Tier, TierError, TierFuture};

mod error;
mod options;
mod record;
mod store;

pub use error::Error;
pub use options::{DiskOptions, Durability, DEFAULT_CACHE_BYTES, DEFAULT_DURABILITY};

use options::expiry_ms;
use store::Store;

/// The size of a record's header, in bytes: what each entry counts on top of its key and
/// value (see the crate docs, "Record format").
pub const RECORD_HEADER_BYTES: u64 = record::HEADER as u64;

/// The name of the store's file inside the tier's directory.
pub const FILE_NAME: &str = store::FILE_NAME;

/// A persistent, byte-bounded [`Tier`] on a local [redb](https://docs.rs/redb) file; its
/// name is `"disk"`.
///
/// See the [crate docs](crate) for the guarantees (byte bound, eviction order, TTL, checksums,
/// durability, restarts). Open it once per directory: a second open of the same directory, in
/// this process or another, fails with [`Error::AlreadyOpen`] while the first is alive.
///
/// Calls run on tokio's blocking pool ([`tokio::task::spawn_blocking`]) when polled inside a
/// tokio runtime, and inline (blocking the polling thread) otherwise.
///
/// A failed call returns [`TierError::Backend`] with tier `"disk"` and, as its source, an
/// [`Error::Store`] (an I/O error, a full disk...) or, if the blocking task panicked, tokio's
/// `JoinError`. A failed write changes nothing (its transaction is aborted).
///
/// Dropping the tier stops its background flusher and, once no call is in flight, closes the
/// store, making every write durable first (one `fsync`, on the thread that drops the last
/// reference).
pub struct DiskTier {
    store: Arc<Store>,
    flusher: Option<Flusher>,
}

impl DiskTier {
    /// Opens the tier stored in the directory `dir` (creating the directory and the store
    /// file [`FILE_NAME`] in it if needed), with `options`.
    ///
    /// The store's counters are read back from the file: reopening is O(1) in the number of
    /// entries after a clean shutdown. After a crash the store first checks and repairs its
    /// file (proportional to its size; see the crate docs), and serves the state of its last
    /// durable commit. If the stored bytes exceed `options`' `max_bytes` (the bound was
    /// lowered), the oldest-written entries are evicted before this returns.
    ///
    /// This blocks (file I/O); call it at start-up or from a blocking context.
    ///
    /// # Errors
    /// - [`Error::InvalidOptions`] if `max_bytes` is 0;
    /// - [`Error::CreateDir`] if the directory cannot be created;
    /// - [`Error::AlreadyOpen`] if the store is open (its file is locked) elsewhere;
    /// - [`Error::UnsupportedLayout`] if the file was written by an incompatible version;
    /// - [`Error::Store`] for an I/O error or a file that is not a valid store.
    pub fn open(dir: impl AsRef<Path>, options: DiskOptions) -> Result<DiskTier, Error> {
        DiskTier::open_paced(dir.as_ref(), options, Arc::new(RealPace::default()))
    }

    /// [`DiskTier::open`], with the flusher of [`Durability::Periodic`] waiting on `pace`
    /// (real time, or a manual clock in tests).
    fn open_paced(
        dir: &Path,
        options: DiskOptions,
        pace: Arc<dyn Pace>,
    ) -> Result<DiskTier, Error> {
        let store = Arc::new(Store::open(dir, &options)?);
        let flusher = match options.durability {
            Durability::Periodic(interval) if !interval.is_zero() => Some(
                Flusher::spawn(Arc::downgrade(&store), interval, pace).map_err(|e| {
                    Error::Store {
                        path: store.path().to_path_buf(),
                        source: Box::new(e),
                    }
                })?,
            ),
            _ => None,
        };
        Ok(DiskTier { store, flusher })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The byte bound the tier was opened with.
    pub fn max_bytes(&self) -> u64 {
        self.store.max_bytes()
    }

    /// The counted bytes stored now: for each entry, its key's length plus its record's length
    /// ([`RECORD_HEADER_BYTES`] plus the value's length). Never more than
    /// [`max_bytes`](Self::max_bytes) once a write has returned. Entries that have expired
    /// but not been deleted yet still count.
    pub fn used_bytes(&self) -> u64 {
        self.store.used_bytes()
    }

    /// The number of entries stored now (expired ones not yet deleted included).
    pub fn len(&self) -> u64 {
        self.store.entries()
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many corrupt records (checksum mismatch, or unparsable) this handle found and
    /// deleted since it was opened. Each was a miss, never served.
    pub fn corrupt_records(&self) -> u64 {
        self.store.corrupt_records()
    }

    /// How many entries were evicted (oldest-written first) to respect the byte bound since
    /// this handle was opened.
    pub fn evictions(&self) -> u64 {
        self.store.evictions()
    }

    /// How many expired entries were deleted (found by a read, or swept to make room) since
    /// this handle was opened.
    pub fn expirations(&self) -> u64 {
        self.store.expirations()
    }

    /// Makes every write so far durable (one `fsync`), whatever the [`Durability`]. Blocks.
    ///
    /// # Errors
    /// [`Error::Store`] if the commit failed.
    pub fn flush(&self) -> Result<(), Error> {
        self.store.flush()
    }

    /// Runs `f` on tokio's blocking pool if a runtime is current, else inline.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, TierError> {
        let store = Arc::clone(&self.store);
        let result = match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || f(&store))
                .await
                .map_err(|e| TierError::backend(NAME, e))?,
            Err(_) => f(&store),
        };
        result.map_err(|e| TierError::backend(NAME, e))
    }
}

const NAME: &str = "disk";

impl Tier for DiskTier {
    fn name(&self) -> &'static str {
        NAME
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        let keys = vec![key.to_vec()];
        Box::pin(async move {
            let mut values = self.blocking(move |s| s.get_many(&keys)).await?;
            Ok(values.pop().flatten())
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        let entries = vec![(key.to_vec(), record::unsealed(value))];
        Box::pin(async move {
            self.blocking(move |s| s.set_many(entries, |now| expiry_ms(now, ttl)))
                .await
                .map(drop)
        })
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
        let key = key.to_vec();
        Box::pin(async move { self.blocking(move |s| s.delete(&key)).await })
    }

    fn supports_conditional_writes(&self) -> bool {
        true
    }

    /// One write transaction reads the key and stores only if it holds no live value (an
    /// expired or corrupt record counts as none).
    fn add<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        let (key, record) = (key.to_vec(), record::unsealed(value));
        Box::pin(async move {
            self.blocking(move |s| {
                s.set_if(key, record, |now| expiry_ms(now, ttl), |v| v.is_none())
            })
            .await
        })
    }

    /// One write transaction reads the key and stores only if its live value is `expected`,
    /// byte for byte (an expired or corrupt record matches nothing).
    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        let (key, record) = (key.to_vec(), record::unsealed(value));
        let expected = expected.to_vec();
        Box::pin(async move {
            self.blocking(move |s| {
                let holds = |v: Option<&[u8]>| v == Some(expected.as_slice());
                s.set_if(key, record, |now| expiry_ms(now, ttl), holds)
            })
            .await
        })
    }

    /// One write transaction reads the key and deletes it only if its live value is
    /// `expected`, byte for byte.
    fn compare_and_delete<'a>(&'a self, key: &'a [u8], expected: &'a [u8]) -> TierFuture<'a, bool> {
        let (key, expected) = (key.to_vec(), expected.to_vec());
        Box::pin(async move {
            self.blocking(move |s| s.delete_if(&key, |v| v == Some(expected.as_slice())))
                .await
        })
    }

    /// All keys are read in one read transaction (one consistent snapshot).
    fn get_many<'a>(&'a self, keys: &'a [&'a [u8]]) -> TierFuture<'a, Vec<Option<Vec<u8>>>> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        Box::pin(async move { self.blocking(move |s| s.get_many(&keys)).await })
    }

    /// All entries are written in one atomic transaction (all or none after a crash), in
    /// order: a key given twice keeps its last value, and if the batch is larger than the
    /// bound its first entries are evicted by its last ones.
    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a [u8], &'a [u8])],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .map(|(k, v)| (k.to_vec(), record::unsealed(v)))
            .collect();
        Box::pin(async move {
            self.blocking(move |s| s.set_many(entries, |now| expiry_ms(now, ttl)))
                .await
                .map(drop)
        })
    }
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("path", &self.path())
            .field("max_bytes", &self.max_bytes())
            .field("used_bytes", &self.used_bytes())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Drop for DiskTier {
    fn drop(&mut self) {
        // Stop the flusher first so that it holds no reference to the store: the store then
        // closes (durably) as soon as the last in-flight call ends.
        if let Some(flusher) = self.flusher.take() {
            flusher.stop();
        }
    }
}

/// What the flusher waits on between its ticks.
trait Pace: Send + Sync {
    /// Waits `interval`; returns false (at once if called after) once [`Pace::stop`] was
    /// called.
    fn wait(&self, interval: Duration) -> bool;
    /// Ends the current wait and every later one.
    fn stop(&self);
}

/// Real time: a condition variable's timed wait.
#[derive(Default)]
struct RealPace {
    stopped: Mutex<bool>,
    cvar: Condvar,
}

impl Pace for RealPace {
    fn wait(&self, interval: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .cvar
            .wait_timeout_while(stopped, interval, |s| !*s)
            .unwrap_or_else(PoisonError::into_inner);
        !*stopped
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cvar.notify_all();
    }
}

/// The background thread of [`Durability::Periodic`]: every interval, a durable commit if
/// some commit since the last durable one was not.
struct Flusher {
    pace: Arc<dyn Pace>,
    thread: JoinHandle<()>,
}

impl Flusher {
    fn spawn(
        store: Weak<Store>,
        interval: Duration,
        pace: Arc<dyn Pace>,
    ) -> std::io::Result<Flusher> {
        let waits = Arc::clone(&pace);
        let thread = std::thread::Builder::new()
            .name("layercache-disk-flush".into())
            .spawn(move || {
                while waits.wait(interval) {
                    let Some(store) = store.upgrade() else { return };
                    // A failed flush is retried on the next tick.
                    let _ = store.flush_if_dirty();
                }
            })?;
        Ok(Flusher { pace, thread })
    }

    fn stop(self) {
        self.pace.stop();
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn open(dir: &Path, max: u64) -> DiskTier {
        DiskTier::open(dir, DiskOptions::new(max)).unwrap()
    }

    #[tokio::test]
    async fn set_get_delete_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        let t = open(dir.path(), 1 << 20);
        assert_eq!(t.name(), "disk");
        assert!(t.is_empty());
        t.set(b"k", b"value", None).await.unwrap();
        assert_eq!(t.get(b"k").await.unwrap(), Some(b"value".to_vec()));
        assert_eq!(t.used_bytes(), 1 + RECORD_HEADER_BYTES + 5);
        assert_eq!(t.len(), 1);
        t.set(b"k", b"v2", None).await.unwrap();
        assert_eq!(t.used_bytes(), 1 + RECORD_HEADER_BYTES + 2);
        t.delete(b"k").await.unwrap();
        t.delete(b"absent").await.unwrap();
        assert_eq!(t.get(b"k").await.unwrap(), None);
        assert_eq!((t.used_bytes(), t.len()), (0, 0));
        assert!(format!("{t:?}").contains("used_bytes: 0"));
    }

    #[test]
    fn works_without_a_runtime_and_refuses_a_zero_bound() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            DiskTier::open(dir.path(), DiskOptions::new(0)),
            Err(Error::InvalidOptions { .. })
        ));
        let t = open(dir.path(), 1000);
        let fut = t.set(b"a", b"1", None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // Polled by a runtime without being inside it: the call runs inline.
        rt.block_on(fut).unwrap();
        assert_eq!(rt.block_on(t.get(b"a")).unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn a_second_open_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let t = open(dir.path(), 1000);
        assert!(matches!(
            DiskTier::open(dir.path(), DiskOptions::new(1000)),
            Err(Error::AlreadyOpen { .. })
        ));
        drop(t);
        open(dir.path(), 1000);
    }

    /// A manual clock for the flusher: each of its waits ends once the test has advanced the
    /// clock by the interval it waits.
    #[derive(Default)]
    struct ManualPace {
        state: Mutex<PaceState>,
        cvar: Condvar,
    }

    #[derive(Default)]
    struct PaceState {
        now: Duration,
        /// Waits begun.
        waits: u64,
        /// The interval of the last wait begun.
        asked: Option<Duration>,
        stopped: bool,
    }

    impl Pace for ManualPace {
        fn wait(&self, interval: Duration) -> bool {
            let mut s = self.state.lock().unwrap();
            let deadline = s.now + interval;
            s.waits += 1;
            s.asked = Some(interval);
            self.cvar.notify_all();
            let s = self
                .cvar
                .wait_while(s, |s| !s.stopped && s.now < deadline)
                .unwrap();
            !s.stopped
        }

        fn stop(&self) {
            self.state.lock().unwrap().stopped = true;
            self.cvar.notify_all();
        }
    }

    impl ManualPace {
        fn advance(&self, by: Duration) {
            self.state.lock().unwrap().now += by;
            self.cvar.notify_all();
        }

        /// Waits until the flusher has begun its `n`th wait (so it has finished what it did
        /// after the one before), and returns the interval it waits. Bounded: a minute of real
        /// time, far more than a loaded machine needs.
        fn parked(&self, n: u64) -> Duration {
            let s = self.state.lock().unwrap();
            let (s, _) = self
                .cvar
                .wait_timeout_while(s, Duration::from_secs(60), |s| s.waits < n)
                .unwrap();
            assert!(s.waits >= n, "the flusher began {} waits, not {n}", s.waits);
            s.asked.unwrap()
        }
    }

    fn open_paced(dir: &Path, options: DiskOptions) -> (DiskTier, Arc<ManualPace>) {
        let pace = Arc::new(ManualPace::default());
        let pace_dyn: Arc<dyn Pace> = pace.clone();
        (DiskTier::open_paced(dir, options, pace_dyn).unwrap(), pace)
    }

    /// The keys of the records that a crash now would leave (no call being in flight): a copy
    /// of the file, reopened (and so repaired) as after a SIGKILL, holds the last durable
    /// commit. In key order.
    fn durable_keys(file: &Path) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(FILE_NAME);
        std::fs::copy(file, &copy).unwrap();
        store::record_keys(&redb::Database::open(&copy).unwrap())
    }

    #[tokio::test]
    async fn periodic_durability_syncs_after_max_unsynced_writes() {
        let dir = tempfile::tempdir().unwrap();
        // The default durability, its flusher on a clock that never moves: only the count
        // of writes makes them durable.
        let (t, pace) = open_paced(dir.path(), DiskOptions::new(1 << 20));
        pace.parked(1);
        let key = |n: u64| n.to_be_bytes().to_vec();
        // `MAX_UNSYNCED_COMMITS` writes not synced, then one synced.
        assert_eq!(
            store::MAX_UNSYNCED_COMMITS,
            256,
            "the figure the docs state"
        );
        let cycle = store::MAX_UNSYNCED_COMMITS + 1;
        let checks = [1, cycle - 1, cycle, cycle + 1, 2 * cycle - 1, 2 * cycle];
        for n in 1..=2 * cycle {
            t.set(&key(n - 1), b"v", None).await.unwrap();
            if checks.contains(&n) {
                let durable = n / cycle * cycle;
                let got = durable_keys(t.path());
                assert_eq!(
                    got.len() as u64,
                    durable,
                    "after write {n}: writes in the last durable commit"
                );
                assert_eq!(got, (0..durable).map(key).collect::<Vec<_>>(), "after {n}");
            }
        }
        assert_eq!(
            pace.state.lock().unwrap().waits,
            1,
            "the flusher never ticked"
        );
    }

    #[tokio::test]
    async fn periodic_durability_syncs_each_interval_on_flush_and_on_drop() {
        let Durability::Periodic(interval) = DEFAULT_DURABILITY else {
            panic!("the default durability is periodic");
        };
        let dir = tempfile::tempdir().unwrap();
        let (t, pace) = open_paced(dir.path(), DiskOptions::new(1 << 20));
        assert_eq!(pace.parked(1), interval, "the flusher waits the interval");
        t.set(b"a", b"1", None).await.unwrap();
        assert!(
            durable_keys(t.path()).is_empty(),
            "synced before the interval"
        );
        // Less than the interval: the flusher still waits, nothing is synced.
        pace.advance(interval / 2);
        t.set(b"b", b"2", None).await.unwrap();
        assert!(
            durable_keys(t.path()).is_empty(),
            "synced before the interval"
        );
        pace.advance(interval - interval / 2);
        assert_eq!(
            pace.parked(2),
            interval,
            "the next wait is the interval again"
        );
        assert_eq!(durable_keys(t.path()), [b"a", b"b"], "the tick synced");
        t.set(b"c", b"3", None).await.unwrap();
        assert_eq!(durable_keys(t.path()), [b"a", b"b"]);
        t.flush().unwrap();
        assert_eq!(durable_keys(t.path()), [b"a", b"b", b"c"], "flush syncs");
        t.set(b"d", b"4", None).await.unwrap();
        let file = t.path().to_path_buf();
        drop(t);
        assert!(pace.state.lock().unwrap().stopped, "drop stops the flusher");
        assert_eq!(durable_keys(&file), [b"a", b"b", b"c", b"d"], "drop syncs");

        // Another interval is waited as given.
        let dir = tempfile::tempdir().unwrap();
        let other = Duration::from_millis(250);
        let options = DiskOptions::new(1000).durability(Durability::Periodic(other));
        let (_t, pace) = open_paced(dir.path(), options);
        assert_eq!(pace.parked(1), other);
    }

    #[tokio::test]
    async fn lowering_the_bound_evicts_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let t = open(dir.path(), 10_000);
        for i in 0..10u8 {
            t.set(&[i], &[i; 100], None).await.unwrap();
        }
        drop(t);
        let per = 1 + RECORD_HEADER_BYTES + 100;
        let t = open(dir.path(), 3 * per);
        assert_eq!(t.used_bytes(), 3 * per);
        assert_eq!(t.get(&[6]).await.unwrap(), None);
        assert_eq!(t.get(&[7]).await.unwrap(), Some(vec![7; 100]));
    }

    #[tokio::test]
    async fn clock_is_injected() {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(1_000));
        let clock = Arc::clone(&now);
        let options = DiskOptions::new(1000).clock(move || clock.load(Ordering::Relaxed));
        let t = DiskTier::open(dir.path(), options).unwrap();
        t.set(b"a", b"1", Some(Duration::from_millis(5)))
            .await
            .unwrap();
        now.store(1_004, Ordering::Relaxed);
        assert!(t.get(b"a").await.unwrap().is_some());
        now.store(1_005, Ordering::Relaxed);
        assert!(t.get(b"a").await.unwrap().is_none());
        assert_eq!((t.expirations(), t.len()), (1, 0));
    }
}
