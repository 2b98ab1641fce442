//! The store: redb tables, the write path with its byte accounting and eviction, the read
//! path. Everything here blocks; `DiskTier` runs it on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, WriteTransaction,
};

use crate::options::{Clock, DiskOptions, Durability};
use crate::record::{self, Header};
use crate::Error;

/// key → record.
pub(crate) const RECORDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("records");
/// Insertion order: sequence number → key.
pub(crate) const ORDER: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("order");
/// (expiry, sequence number) → (), for records with an expiry.
pub(crate) const EXPIRY: TableDefinition<'_, (u64, u64), ()> = TableDefinition::new("expiry");
/// `layout` → u64; `counters` → used bytes, entries, next sequence number (u64 each; all
/// little-endian).
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

/// The layout (tables and record format) this version reads and writes.
pub(crate) const LAYOUT: u64 = 1;
/// The store's file name inside the tier's directory.
pub(crate) const FILE_NAME: &str = "layercache.redb";
/// Under `Durability::Periodic`, every this many non-durable commits the next commit is
/// durable: redb can only reuse the pages a commit frees once a durable commit follows, so
/// this bounds how far the file grows between durable commits (measured: without it, 8× the
/// counted bytes; with it, 2×).
pub(crate) const MAX_UNSYNCED_COMMITS: u64 = 256;
/// At most this many expired records are swept by one write that needs room.
const SWEEP_LIMIT: usize = 256;

/// The counters the writer keeps (persisted in `META` by every write transaction).
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    used: u64,
    entries: u64,
    next_seq: u64,
}

impl Counters {
    fn to_bytes(self) -> [u8; 24] {
        let mut b = [0; 24];
        b[0..8].copy_from_slice(&self.used.to_le_bytes());
        b[8..16].copy_from_slice(&self.entries.to_le_bytes());
        b[16..24].copy_from_slice(&self.next_seq.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let word = |i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
        Some(Counters {
            used: word(0)?,
            entries: word(8)?,
            next_seq: word(16)?,
        })
    }
}

struct Writer {
    counters: Counters,
    /// Commits since the last durable one.
    unsynced: u64,
}

/// The blocking half of `DiskTier`.
pub(crate) struct Store {
    db: Database,
    path: PathBuf,
    max_bytes: u64,
    durability: Durability,
    clock: Clock,
    writer: Mutex<Writer>,
    used: AtomicU64,
    entries: AtomicU64,
    corrupt: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

type StoreResult<T> = Result<T, redb::Error>;

impl Store {
    /// Opens or creates the store in `dir` (see `DiskTier::open`).
    pub(crate) fn open(dir: &Path, options: &DiskOptions) -> Result<Store, Error> {
        if options.max_bytes == 0 {
            return Err(Error::InvalidOptions {
                reason: "max_bytes must be at least 1",
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(&path)
            .map_err(|e| match e {
                DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen { path: path.clone() },
                e => store_error(&path, e),
            })?;
        let counters = init(&db).map_err(|e| match e {
            Init::Layout(found) => Error::UnsupportedLayout {
                path: path.clone(),
                found,
                supported: LAYOUT,
            },
            Init::Store(e) => store_error(&path, e),
            Init::Malformed(what) => Error::Store {
                path: path.clone(),
                source: Box::new(std::io::Error::new(std::io::ErrorKind::InvalidData, what)),
            },
        })?;
        let store = Store {
            db,
            path,
            max_bytes: options.max_bytes,
            durability: options.durability,
            clock: options.clock.clone(),
            writer: Mutex::new(Writer {
                counters,
                unsynced: 0,
            }),
            used: AtomicU64::new(counters.used),
            entries: AtomicU64::new(counters.entries),
            corrupt: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
        };
        if counters.used > store.max_bytes {
            // Reopened with a smaller bound: evict down to it now.
            store.write(true, |tx| tx.make_room(0).map(drop))?;
        }
        Ok(store)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
    pub(crate) fn used_bytes(&self) -> u64 {
        self.used.load(Relaxed)
    }
    pub(crate) fn entries(&self) -> u64 {
        self.entries.load(Relaxed)
    }
    pub(crate) fn corrupt_records(&self) -> u64 {
        self.corrupt.load(Relaxed)
    }
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }
    pub(crate) fn expirations(&self) -> u64 {
        self.expirations.load(Relaxed)
    }

    /// The values of `keys`, in order. Expired and corrupt records are misses, and are then
    /// deleted (best effort: if that write fails they are retried on their next read).
    pub(crate) fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let now = (self.clock)();
        let mut out = Vec::with_capacity(keys.len());
        let mut stale = Vec::new();
        {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let records = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
            for key in keys {
                let Some(guard) = records.get(key.as_slice()).map_err(|e| self.err(e))? else {
                    out.push(None);
                    continue;
                };
                let bytes = guard.value();
                match record::decode(key, bytes) {
                    Some((h, payload)) if !h.is_expired(now) => out.push(Some(payload.to_vec())),
                    _ => {
                        stale.push((key.clone(), bytes.to_vec()));
                        out.push(None);
                    }
                }
            }
        }
        if !stale.is_empty() {
            let _ = self.write(false, |tx| tx.remove_stale(&stale));
        }
        Ok(out)
    }

    /// Stores each `(key, record)` (records built by `record::unsealed`) with `expiry`;
    /// returns how many were stored (the others were larger than the bound).
    pub(crate) fn set_many(
        &self,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        expiry: impl Fn(u64) -> u64,
    ) -> Result<usize, Error> {
        self.write(false, |tx| {
            let expiry = expiry(tx.now);
            let mut stored = 0;
            for (key, record) in entries {
                stored += usize::from(tx.set(&key, record, expiry)?);
            }
            Ok(stored)
        })
    }

    /// Stores `record` (built by `record::unsealed`) under `key` with `expiry` if `holds`
    /// says yes to the key's live value now (`None` if absent, expired or corrupt), all in
    /// one write transaction (writes are serialised, so nothing comes in between); whether it
    /// stored. An entry larger than the bound is not stored (false), and the value it
    /// would have replaced is deleted, as `set_many` does.
    pub(crate) fn set_if(
        &self,
        key: Vec<u8>,
        record: Vec<u8>,
        expiry: impl Fn(u64) -> u64,
        holds: impl FnOnce(Option<&[u8]>) -> bool,
    ) -> Result<bool, Error> {
        self.write(false, |tx| {
            if !tx.live_value_is(&key, holds)? {
                return Ok(false);
            }
            let expiry = expiry(tx.now);
            tx.set(&key, record, expiry)
        })
    }

    /// Deletes `key` if `holds` says yes to its live value now (`None` if absent, expired
    /// or corrupt), in one write transaction; whether it deleted.
    pub(crate) fn delete_if(
        &self,
        key: &[u8],
        holds: impl FnOnce(Option<&[u8]>) -> bool,
    ) -> Result<bool, Error> {
        self.write(false, |tx| {
            if !tx.live_value_is(key, holds)? {
                return Ok(false);
            }
            tx.remove_key(key).map(|_| true)
        })
    }

    /// Deletes `key` (absent is fine).
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Error> {
        self.write(false, |tx| tx.remove_key(key).map(drop))
    }

    /// Makes every write so far durable.
    pub(crate) fn flush(&self) -> Result<(), Error> {
        self.write(true, |_| Ok(()))
    }

    /// Makes every write so far durable if some are not.
    pub(crate) fn flush_if_dirty(&self) -> Result<(), Error> {
        let dirty = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unsynced
            > 0;
        if dirty {
            self.flush()?;
        }
        Ok(())
    }

    /// Runs `f` in one write transaction, commits it (durably if `durable` or if the tier's
    /// durability asks), then publishes the counters. On any error the transaction is
    /// aborted and nothing changes.
    fn write<T>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Tx<'_>) -> StoreResult<T>,
    ) -> Result<T, Error> {
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let durable = durable
            || match self.durability {
                Durability::Immediate => true,
                Durability::Periodic(interval) => interval.is_zero(),
            }
            || w.unsynced >= MAX_UNSYNCED_COMMITS;
        let (out, tx_counters, counts) = (|| -> StoreResult<_> {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(if durable {
                redb::Durability::Immediate
            } else {
                redb::Durability::None
            })?;
            let (out, c, counts) = {
                let mut tx = Tx::new(&txn, w.counters, self.max_bytes, (self.clock)())?;
                let out = f(&mut tx)?;
                let counts = [tx.corrupt, tx.evicted, tx.expired];
                (out, tx.counters, counts)
            };
            let mut meta = txn.open_table(META)?;
            meta.insert("counters", c.to_bytes().as_slice())?;
            drop(meta);
            txn.commit()?;
            Ok((out, c, counts))
        })()
        .map_err(|e| self.err(e))?;
        w.counters = tx_counters;
        if durable {
            w.unsynced = 0;
        } else {
            w.unsynced += 1;
        }
        self.used.store(tx_counters.used, Relaxed);
        self.entries.store(tx_counters.entries, Relaxed);
        self.corrupt.fetch_add(counts[0], Relaxed);
        self.evictions.fetch_add(counts[1], Relaxed);
        self.expirations.fetch_add(counts[2], Relaxed);
        Ok(out)
    }

    fn err(&self, e: impl Into<redb::Error>) -> Error {
        store_error(&self.path, e)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // redb also persists on close; this makes it explicit (and errors are moot here).
        let _ = self.flush_if_dirty();
    }
}

fn store_error(path: &Path, e: impl Into<redb::Error>) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        source: Box::new(e.into()),
    }
}

enum Init {
    Layout(u64),
    Malformed(&'static str),
    Store(redb::Error),
}

impl<E: Into<redb::Error>> From<E> for Init {
    fn from(e: E) -> Self {
        Init::Store(e.into())
    }
}

/// Creates the tables if needed, checks the layout, reads the counters.
fn init(db: &Database) -> Result<Counters, Init> {
    let txn = db.begin_write()?;
    let counters = {
        let records = txn.open_table(RECORDS)?;
        txn.open_table(ORDER)?;
        txn.open_table(EXPIRY)?;
        let mut meta = txn.open_table(META)?;
        let layout = meta
            .get("layout")?
            .map(|v| v.value().try_into().map_or(u64::MAX, u64::from_le_bytes));
        match layout {
            Some(LAYOUT) => {}
            None if records.is_empty()? => {
                meta.insert("layout", LAYOUT.to_le_bytes().as_slice())?;
            }
            found => return Err(Init::Layout(found.unwrap_or(0))),
        }
        let counters = meta
            .get("counters")?
            .map(|v| Counters::from_bytes(v.value()));
        match counters {
            None => Counters::default(),
            Some(Some(c)) => c,
            Some(None) => return Err(Init::Malformed("malformed counters in the meta table")),
        }
    };
    txn.commit()?;
    Ok(counters)
}

/// The counted bytes of an entry: its key plus its record.
fn charge(key_len: usize, record_len: usize) -> u64 {
    key_len as u64 + record_len as u64
}

/// What `Tx::drop_listed` found.
enum Dropped {
    /// The listed write's record, now deleted.
    Entry,
    /// A corrupt record, now deleted.
    Corrupt,
    /// Nothing of that write is left (the index entry was stale).
    Orphan,
}

/// One write transaction's tables and counters.
struct Tx<'t> {
    records: Table<'t, &'static [u8], &'static [u8]>,
    order: Table<'t, u64, &'static [u8]>,
    expiry: Table<'t, (u64, u64), ()>,
    counters: Counters,
    max_bytes: u64,
    now: u64,
    corrupt: u64,
    evicted: u64,
    expired: u64,
}

impl<'t> Tx<'t> {
    fn new(
        txn: &'t WriteTransaction,
        counters: Counters,
        max_bytes: u64,
        now: u64,
    ) -> StoreResult<Self> {
        Ok(Tx {
            records: txn.open_table(RECORDS)?,
            order: txn.open_table(ORDER)?,
            expiry: txn.open_table(EXPIRY)?,
            counters,
            max_bytes,
            now,
            corrupt: 0,
            evicted: 0,
            expired: 0,
        })
    }

    /// Stores `record` (unsealed) under `key`, replacing any previous record; returns false,
    /// having removed the previous record, if the entry is larger than the bound.
    fn set(&mut self, key: &[u8], mut record: Vec<u8>, expiry: u64) -> StoreResult<bool> {
        let charge = charge(key.len(), record.len());
        if charge > self.max_bytes {
            self.remove_key(key)?;
            return Ok(false);
        }
        let seq = self.counters.next_seq;
        self.counters.next_seq += 1;
        record::seal(&mut record, key, expiry, seq);
        // Replace in place (one tree update), then account for the old record and make room
        // for the new one: eviction cannot take the new record, as it is not in the order
        // index yet (a stale index entry of this key finds a record of another write).
        let old = self
            .records
            .insert(key, record.as_slice())?
            .map(|old| (old.value().len(), record::header(old.value())));
        if let Some((len, header)) = old {
            self.unaccount(key.len(), len);
            if let Some(h) = header {
                self.unlink(key, h)?;
            }
        }
        self.make_room(charge)?;
        self.order.insert(seq, key)?;
        if expiry != 0 {
            self.expiry.insert((expiry, seq), ())?;
        }
        self.counters.used += charge;
        self.counters.entries += 1;
        Ok(true)
    }

    /// `holds` of the live value of `key` (`None` if absent, expired or corrupt).
    fn live_value_is(
        &self,
        key: &[u8],
        holds: impl FnOnce(Option<&[u8]>) -> bool,
    ) -> StoreResult<bool> {
        let Some(guard) = self.records.get(key)? else {
            return Ok(holds(None));
        };
        Ok(match record::decode(key, guard.value()) {
            Some((h, payload)) if !h.is_expired(self.now) => holds(Some(payload)),
            _ => holds(None),
        })
    }

    /// Removes the record of `key` and its index entries; returns whether there was one.
    fn remove_key(&mut self, key: &[u8]) -> StoreResult<bool> {
        let (len, header) = match self.records.remove(key)? {
            None => return Ok(false),
            Some(old) => (old.value().len(), record::header(old.value())),
        };
        self.unaccount(key.len(), len);
        if let Some(h) = header {
            self.unlink(key, h)?;
        }
        Ok(true)
    }

    /// Removes the index entries of `key`'s removed record with header `h`. The header was
    /// not checked (no checksum): only entries that are this key's are removed.
    fn unlink(&mut self, key: &[u8], h: Header) -> StoreResult<()> {
        let other = match self.order.remove(h.seq)? {
            None => return Ok(()),
            Some(k) if k.value() == key => None,
            Some(k) => Some(k.value().to_vec()),
        };
        match other {
            None if h.expiry != 0 => {
                self.expiry.remove((h.expiry, h.seq))?;
            }
            None => {}
            // Another key's entry (this header was damaged): put it back.
            Some(other) => {
                self.order.insert(h.seq, other.as_slice())?;
            }
        }
        Ok(())
    }

    /// Removes each `(key, record)` that a reader found expired or corrupt, if the key still
    /// holds exactly that record.
    fn remove_stale(&mut self, stale: &[(Vec<u8>, Vec<u8>)]) -> StoreResult<()> {
        for (key, seen) in stale {
            let same = self
                .records
                .get(key.as_slice())?
                .is_some_and(|r| r.value() == seen.as_slice());
            if same {
                self.remove_key(key)?;
                if record::decode(key, seen).is_some() {
                    self.expired += 1;
                } else {
                    self.corrupt += 1;
                }
            }
        }
        Ok(())
    }

    /// Makes room for `need` more counted bytes: when they do not fit, sweeps expired
    /// records (up to `SWEEP_LIMIT`), then evicts the oldest-written until they do. Returns
    /// false if they cannot fit (`need > max_bytes`).
    fn make_room(&mut self, need: u64) -> StoreResult<bool> {
        if need > self.max_bytes {
            return Ok(false);
        }
        let fits = |c: &Counters, max| c.used.saturating_add(need) <= max;
        if fits(&self.counters, self.max_bytes) {
            return Ok(true);
        }
        self.sweep_expired(SWEEP_LIMIT)?;
        while !fits(&self.counters, self.max_bytes) {
            let Some((seq, key)) = self
                .order
                .pop_first()?
                .map(|(s, k)| (s.value(), k.value().to_vec()))
            else {
                // Every record is listed in the order index, so an empty index means no
                // records: the counters can only be off here if the file was edited.
                self.counters.used = 0;
                self.counters.entries = 0;
                break;
            };
            if let Dropped::Entry = self.drop_listed(seq, &key)? {
                self.evicted += 1;
            }
        }
        Ok(true)
    }

    /// Deletes up to `limit` records whose expiry has passed, earliest expiry first.
    fn sweep_expired(&mut self, limit: usize) -> StoreResult<()> {
        for _ in 0..limit {
            let Some((expiry, seq)) = self.expiry.first()?.map(|(k, _)| k.value()) else {
                break;
            };
            if expiry > self.now {
                break;
            }
            self.expiry.remove((expiry, seq))?;
            let key = self.order.remove(seq)?.map(|k| k.value().to_vec());
            if let Some(key) = key {
                if let Dropped::Entry = self.drop_listed(seq, &key)? {
                    self.expired += 1;
                }
            }
        }
        Ok(())
    }

    /// Deletes the record that the insertion-order index listed under `seq` for `key` (its
    /// order entry already removed) if the key still holds that write, or a corrupt record.
    fn drop_listed(&mut self, seq: u64, key: &[u8]) -> StoreResult<Dropped> {
        let found = match self.records.get(key)? {
            None => None,
            Some(r) => {
                let bytes = r.value();
                match record::header(bytes) {
                    Some(h) if h.seq == seq => Some((bytes.len(), Some(h))),
                    // Not that write's header: corrupt, or a later write (a stale entry).
                    _ if record::decode(key, bytes).is_none() => Some((bytes.len(), None)),
                    _ => None,
                }
            }
        };
        let Some((len, header)) = found else {
            return Ok(Dropped::Orphan);
        };
        self.records.remove(key)?;
        self.unaccount(key.len(), len);
        Ok(match header {
            Some(Header { expiry, seq }) => {
                if expiry != 0 {
                    self.expiry.remove((expiry, seq))?;
                }
                Dropped::Entry
            }
            None => {
                self.corrupt += 1;
                Dropped::Corrupt
            }
        })
    }

    fn unaccount(&mut self, key_len: usize, record_len: usize) {
        let c = &mut self.counters;
        c.used = c.used.saturating_sub(charge(key_len, record_len));
        c.entries = c.entries.saturating_sub(1);
    }
}

/// The keys of the records in `db`'s last commit, in key order (for tests).
#[cfg(test)]
pub(crate) fn record_keys(db: &Database) -> Vec<Vec<u8>> {
    let txn = db.begin_read().unwrap();
    let records = txn.open_table(RECORDS).unwrap();
    let keys = records
        .iter()
        .unwrap()
        .map(|r| r.unwrap().0.value().to_vec())
        .collect();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_round_trip() {
        let c = Counters {
            used: 1,
            entries: 2,
            next_seq: u64::MAX,
        };
        let back = Counters::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!((back.used, back.entries, back.next_seq), (1, 2, u64::MAX));
        assert!(Counters::from_bytes(&[0; 23]).is_none());
    }

    /// The keys of the records stored now, in key order.
    fn stored_keys(store: &Store) -> Vec<Vec<u8>> {
        record_keys(&store.db)
    }

    #[test]
    fn a_write_sweeps_at_most_sweep_limit_expired_records_and_writes_sweep_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let key = |i: u64| i.to_be_bytes().to_vec();
        let value = [7u8; 10];
        let each = charge(key(0).len(), record::HEADER + value.len());
        assert_eq!(SWEEP_LIMIT, 256, "the limit the crate docs state");
        let planted = 2 * SWEEP_LIMIT as u64 + 7;
        // A clock that stands still: every planted record is expired already.
        let now = 1_000_000;
        let options = DiskOptions::new(planted * each).clock(move || now);
        let store = Store::open(dir.path(), &options).unwrap();
        // The later a record is written, the earlier it expired.
        for i in 0..planted {
            let entry = vec![(key(i), record::unsealed(&value))];
            store.set_many(entry, |_| now - 1 - i).unwrap();
        }
        assert_eq!(store.used_bytes(), store.max_bytes(), "planted to the brim");
        assert_eq!((store.expirations(), store.evictions()), (0, 0));

        // Live writes (no expiry) of the same size, each one when the tier is full needing
        // room for one record; the model: a write that needs room sweeps up to SWEEP_LIMIT
        // expired records, earliest expiry first, and evicts nothing while one is left.
        let (mut left, mut live, mut sweeps) = (planted, 0u64, 0);
        for w in 0..2 * planted {
            let before = store.expirations();
            store
                .set_many(vec![(key(planted + w), record::unsealed(&value))], |_| 0)
                .unwrap();
            live += 1;
            let needed_room = (left + live) * each > store.max_bytes();
            let swept = if needed_room {
                left.min(SWEEP_LIMIT as u64)
            } else {
                0
            };
            left -= swept;
            let did = store.expirations() - before;
            assert!(did <= SWEEP_LIMIT as u64, "write {w} swept {did}");
            assert_eq!(did, swept, "write {w} (needed room: {needed_room})");
            assert_eq!(
                store.evictions(),
                0,
                "write {w}: evicted while expired remain"
            );
            assert_eq!(store.entries(), left + live, "write {w}");
            if swept > 0 {
                sweeps += 1;
                // The ones left are those of the latest expiries: the earliest written.
                let planted_left: Vec<u64> = stored_keys(&store)
                    .iter()
                    .map(|k| u64::from_be_bytes(k.as_slice().try_into().unwrap()))
                    .filter(|&i| i < planted)
                    .collect();
                assert!(
                    planted_left.iter().copied().eq(0..left),
                    "write {w}: {} planted left, from {:?} to {:?}, not 0..{left}",
                    planted_left.len(),
                    planted_left.first(),
                    planted_left.last()
                );
            }
            if left == 0 {
                break;
            }
        }
        assert_eq!(left, 0, "the writes swept every expired record");
        assert_eq!(store.expirations(), planted);
        assert_eq!(sweeps, planted.div_ceil(SWEEP_LIMIT as u64));
        assert_eq!(store.used_bytes(), live * each);
    }

    fn edit_meta(dir: &Path, key: &str, value: &[u8]) {
        let db = Database::open(dir.join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META).unwrap().insert(key, value).unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn another_layout_or_malformed_counters_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let options = DiskOptions::new(1000);
        let store = Store::open(dir.path(), &options).unwrap();
        store
            .set_many(vec![(b"k".to_vec(), record::unsealed(b"v"))], |_| 0)
            .unwrap();
        drop(store);
        edit_meta(dir.path(), "counters", b"short");
        let err = Store::open(dir.path(), &options).err().unwrap();
        assert!(err.to_string().contains("malformed counters"), "{err}");
        edit_meta(dir.path(), "layout", &2u64.to_le_bytes());
        match Store::open(dir.path(), &options) {
            Err(Error::UnsupportedLayout {
                found: 2,
                supported: LAYOUT,
                ..
            }) => {}
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn a_file_that_is_not_a_store_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"not a redb file at all").unwrap();
        let err = Store::open(dir.path(), &DiskOptions::new(1000))
            .err()
            .unwrap();
        assert!(matches!(err, Error::Store { .. }), "{err:?}");
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let err = Store::open(&file, &DiskOptions::new(1000)).err().unwrap();
        assert!(matches!(err, Error::CreateDir { .. }), "{err:?}");
    }
}
