//! One shard: a hash index of slab positions, a dense slab of entries and a policy.
//!
//! Memory layout: the [`Index`] holds 4-byte positions into `entries` (about 7–10 bytes per
//! entry: 64-byte groups of 12 tagged slots, at most 3/4 full, sized exactly for a bounded
//! shard), and `entries` is a vector kept dense by swap-removal and aligned to a 64-byte cache
//! line (`aligned-vec`'s `AVec`: a `Vec` is only as aligned as its element, 8 bytes here, and
//! the allocator typically returns large blocks at 16 bytes past a page, so every other
//! 32-byte entry straddled two cache lines and a hit that reads the key, the value and the
//! entry's policy bits missed twice). An entry is its key, its value and a 16-byte [`Link`]
//! (policy links, 4 policy bits, 32 bits of hash, weight), so `u64 → u64` entries take
//! 32 bytes in the slab. The index works from the stored 32-bit hash, so neither growing it
//! nor relocating an entry ever re-hashes a key.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aligned_vec::{AVec, ConstAlign};

use crate::biased_lock::Tallied;
use crate::expiry::{Deadlines, Expiration, TimerWheel, NEVER};
use crate::index::Index;
use crate::listener::RemovalCause;
use crate::policy::list::{Link, Nodes, MAX_SHARD_ENTRIES, NIL};
use crate::policy::{AnyPolicy, EvictionPolicy, Policy, QuietHits};
use crate::read_buffer::{count_quiet, ReadBuffer};

/// The slab of entries: aligned to a cache line, so that entries whose size divides 64
/// bytes never straddle two lines.
type Slab<E> = AVec<E, ConstAlign<64>>;

pub(crate) struct Entry<K, V, T> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) link: Link,
    /// The entry's deadline, inline so a `get` checks it without touching the timer wheel
    /// (`()` in caches that do not expire entries: no space at all).
    stamp: T,
}

/// Where an entry keeps its deadline: `()` (never expires, zero bytes) or an `AtomicU64`
/// (nanoseconds on the cache's clock; readers extend it under the shared lock).
pub(crate) trait Stamp: Send + Sync {
    /// Whether entries carry a deadline (the shard then has timers).
    const TIMED: bool;
    fn new(deadline: u64) -> Self;
    fn get(&self) -> u64;
    fn set(&self, deadline: u64);
}

impl Stamp for () {
    const TIMED: bool = false;
    #[inline]
    fn new(_: u64) -> Self {}
    #[inline]
    fn get(&self) -> u64 {
        NEVER
    }
    #[inline]
    fn set(&self, _: u64) {}
}

impl Stamp for AtomicU64 {
    const TIMED: bool = true;
    #[inline]
    fn new(deadline: u64) -> Self {
        AtomicU64::new(deadline)
    }
    #[inline]
    fn get(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
    #[inline]
    fn set(&self, deadline: u64) {
        self.store(deadline, Ordering::Relaxed);
    }
}

impl<K, V, T> Nodes for [Entry<K, V, T>] {
    #[inline]
    fn link(&self, i: u32) -> &Link {
        &self[i as usize].link
    }
    #[inline]
    fn link_mut(&mut self, i: u32) -> &mut Link {
        &mut self[i as usize].link
    }
}

/// How a hit found by [`Shard::find_hit`] reaches the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    /// A weightless entry: outside the policy.
    Untracked,
    /// The policy would not act on it; only counted ([`Policy::quiet_hits`]).
    Quiet,
    /// Buffered by slab index for the policy.
    Record(u32),
}

/// What an insert did.
pub(crate) enum Inserted<K, V> {
    /// A new entry.
    New,
    /// The key was present; its previous value.
    Replaced(V),
    /// The entry is heavier than the shard (or the shard has no capacity or no free index);
    /// it was not stored (key and value handed back), and a previous value under the key was
    /// removed.
    Rejected { key: K, value: V, old: Option<V> },
}

/// Entries taken out of a shard, to be dropped by the caller after it releases the shard's
/// lock (so that a value's `Drop` may use the cache). Holds one entry without allocating.
#[must_use = "removed entries are meant to be dropped outside the shard lock"]
pub(crate) struct Removed<K, V> {
    one: Option<(K, V, RemovalCause)>,
    more: Vec<(K, V, RemovalCause)>,
    /// A key equal to the written one that is no longer needed: the caller's key of an
    /// in-place replace, or the old key of an entry that re-entered.
    pub(crate) key: Option<K>,
}

impl<K, V> Removed<K, V> {
    pub(crate) fn new() -> Self {
        Removed {
            one: None,
            more: Vec::new(),
            key: None,
        }
    }

    fn push(&mut self, k: K, v: V, cause: RemovalCause) {
        if self.one.is_none() {
            self.one = Some((k, v, cause));
        } else {
            self.more.push((k, v, cause));
        }
    }

    /// Visits the removed entries, oldest removal first.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V, RemovalCause)) {
        for (k, v, c) in self.one.iter().chain(self.more.iter()) {
            f(k, v, *c);
        }
    }

    /// Whether no entry was removed.
    pub(crate) fn is_empty(&self) -> bool {
        self.one.is_none()
    }
}

/// A shard's expiration state: the timer wheel (one node per slab index, holding the
/// deadline and the write deadline) and, with an `Expiry`, its own deadline per entry.
struct Timers {
    wheel: TimerWheel,
    /// The `Expiry`'s deadline per slab index (empty without an `Expiry`).
    custom: Vec<AtomicU64>,
    track_custom: bool,
    /// Whether reads move deadlines (time to idle or an `Expiry`): then an entry's inline
    /// deadline may be ahead of the wheel's until the hit buffer is applied (recorded hits)
    /// or the entry's old bucket fires (quiet hits, and hits the full buffer dropped).
    reads_matter: bool,
}

impl Timers {
    /// Entry `i`'s `Expiry` deadline ([`NEVER`] without an `Expiry`).
    fn custom(&self, i: u32) -> u64 {
        if self.track_custom {
            self.custom[i as usize].load(Ordering::Relaxed)
        } else {
            NEVER
        }
    }

    fn push(&mut self, d: Deadlines) {
        self.wheel.push(d.at, d.write);
        if self.track_custom {
            self.custom.push(AtomicU64::new(d.custom));
        }
    }

    fn set(&mut self, i: u32, d: Deadlines) {
        self.wheel.reschedule(i, d.at, d.write);
        if self.track_custom {
            *self.custom[i as usize].get_mut() = d.custom;
        }
    }

    fn swap_remove(&mut self, i: u32) {
        self.wheel.swap_remove(i);
        if self.track_custom {
            self.custom.swap_remove(i as usize);
        }
    }
}

/// How a shard of an expiring cache starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expiring {
    /// The clock's reading.
    pub(crate) now: u64,
    /// Whether there is an `Expiry` (whose own deadline is kept per entry).
    pub(crate) track_custom: bool,
    /// Whether reads move deadlines.
    pub(crate) reads_matter: bool,
}

/// The clock reading and settings an operation on an expiring cache passes to its shard.
pub(crate) type Now<'a, K, V> = Option<(&'a Expiration<K, V>, u64)>;

/// `repr(C)` with the read buffer first: the shard sits right after its lock's words (see
/// `biased_lock::BiasedRwLock`), so a hit on the plain lock writes one cache line (the lock
/// word, then the buffer's length or quiet count). A hit through a reader slot writes only
/// its slot, unless it records its index in the buffer.
#[repr(C)]
pub(crate) struct Shard<K, V, T> {
    /// Hits recorded by readers under the shared lock (see [`ReadBuffer`]).
    buffer: ReadBuffer,
    table: Index,
    entries: Slab<Entry<K, V, T>>,
    policy: AnyPolicy,
    capacity: u64,
    weight: u64,
    /// Entries of weight 0: they are kept out of the policy, so they are never evicted.
    weightless: usize,
    /// The hits readers count instead of recording (the policy's [`Policy::quiet_hits`]).
    quiet: QuietHits,
    /// Scratch space for applying the buffered hits (see [`Shard::apply_reads`]).
    reads: Vec<u32>,
    /// The most entries the shard can ever hold when every entry weighs 1 (the slab is never
    /// grown past it), or `usize::MAX` when weighted.
    entry_limit: usize,
    /// Present when the cache expires entries.
    timers: Option<Box<Timers>>,
}

impl<K, V, T> Tallied for Shard<K, V, T> {
    /// Quiet hits that readers counted in their slots of the shard lock.
    fn add_tally(&mut self, n: usize) {
        self.buffer.add_quiet(n);
    }
}

impl<K: Hash + Eq, V, T: Stamp> Shard<K, V, T> {
    /// A shard; `expiring` is `Some((now, with_expiry))` when the cache expires entries.
    pub(crate) fn new(
        kind: EvictionPolicy,
        capacity: u64,
        weighted: bool,
        seed: u64,
        expiring: Option<Expiring>,
    ) -> Self {
        let policy = AnyPolicy::new(kind, capacity, weighted, seed);
        Shard {
            table: Index::default(),
            entries: Slab::new(0),
            quiet: policy.quiet_hits(),
            policy,
            capacity,
            weight: 0,
            weightless: 0,
            buffer: ReadBuffer::new(),
            reads: Vec::new(),
            entry_limit: if weighted {
                usize::MAX
            } else {
                usize::try_from(capacity).unwrap_or(usize::MAX)
            },
            timers: expiring.map(|x| {
                debug_assert!(
                    T::TIMED,
                    "an expiring shard stores deadlines in its entries"
                );
                Box::new(Timers {
                    wheel: TimerWheel::new(x.now),
                    custom: Vec::new(),
                    track_custom: x.track_custom,
                    reads_matter: x.reads_matter,
                })
            }),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    #[inline]
    fn find<Q>(&self, hash: u32, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = &self.entries;
        self.table
            .find(hash, |i| entries[i as usize].key.borrow() == key)
    }

    /// Looks `key` up without changing anything: how a hit on it reaches the policy ([`Hit`]:
    /// weightless entries are outside it, and some hits are only counted) and its value.
    ///
    /// With expiration, an expired entry is not found, and a live one's deadline is extended
    /// as time to idle or the `Expiry` say (under the shared lock: the wheel catches up when
    /// the entry's bucket fires).
    #[inline]
    pub(crate) fn find_hit<Q>(
        &self,
        hash: u32,
        key: &Q,
        exp: Option<&Expiration<K, V>>,
    ) -> Option<(Hit, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.find(hash, key)?;
        let e = &self.entries[i as usize];
        if let (Some(exp), Some(t)) = (exp, self.timers.as_deref()) {
            let at = e.stamp.get();
            // The clock is read only for an entry that can expire, after the lookup's loads
            // are under way (reading a clock can hold back the loads that follow it).
            if at != NEVER || exp.reads_matter() {
                let now = exp.now();
                if now >= at {
                    return None;
                }
                if exp.reads_matter() {
                    let old = Deadlines {
                        at,
                        // Only touch the wheel's node when there is a write deadline.
                        write: if exp.ttl.is_some() {
                            t.wheel.cap(i)
                        } else {
                            NEVER
                        },
                        custom: t.custom(i),
                    };
                    let d = exp.on_read(&e.key, &e.value, now, old);
                    if d.at != old.at {
                        // Only the inline deadline: the wheel is re-synced when the hit
                        // buffer is applied, or when the entry's old bucket fires.
                        e.stamp.set(d.at);
                    }
                    if t.track_custom && d.custom != old.custom {
                        t.custom[i as usize].store(d.custom, Ordering::Relaxed);
                    }
                }
            }
        }
        // The entry's line is in cache already (the lookup compared its key).
        let hit = if e.link.weight == 0 {
            Hit::Untracked
        } else if self.quiet.contains(e.link.meta()) {
            Hit::Quiet
        } else {
            Hit::Record(i)
        };
        Some((hit, &e.value))
    }

    /// Whether entry `i` has expired by `now`.
    #[inline]
    fn expired(&self, i: u32, now: Option<u64>) -> bool {
        match now {
            Some(now) if T::TIMED => now >= self.entries[i as usize].stamp.get(),
            _ => false,
        }
    }

    /// Records a hit found by [`Shard::find_hit`] (the caller holds the shared lock), or only
    /// counts it if the policy would not act on it ([`Policy::quiet_hits`]): in `tally`, the
    /// reader's own slot of the shard lock when it has one, else in the read buffer. Returns
    /// true when the buffer should be applied: it is full, or, in a shard whose entries
    /// expire, another [`READ_BATCH`](crate::read_buffer::READ_BATCH) quiet hits were
    /// counted and the timer wheel has something to do ([`TimerWheel::is_due`]).
    #[inline]
    pub(crate) fn record_hit(
        &self,
        hit: Hit,
        tally: Option<&AtomicUsize>,
        exp: Option<&Expiration<K, V>>,
    ) -> bool {
        match hit {
            Hit::Untracked => false,
            // Quiet hits ask for maintenance only where entries expire, and only when an
            // entry may have expired since the last: otherwise a drain would only pass their
            // count to the policy, which the next write does anyway, and it takes the write
            // lock, which clears the shard lock's reader bias.
            Hit::Quiet => {
                let due = match tally {
                    Some(word) => count_quiet(word),
                    None => self.buffer.count_quiet(),
                };
                due && T::TIMED && self.maintenance_due(exp)
            }
            Hit::Record(i) => self.buffer.record(i),
        }
    }

    /// Whether the timer wheel may have entries to expire now (reads the clock).
    #[cold]
    fn maintenance_due(&self, exp: Option<&Expiration<K, V>>) -> bool {
        match (exp, self.timers.as_deref()) {
            (Some(exp), Some(t)) => t.wheel.is_due(exp.now()),
            _ => false,
        }
    }

    /// Looks `key` up without recording an access.
    pub(crate) fn contains<Q>(&self, hash: u32, key: &Q, now: Option<u64>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find(hash, key).is_some_and(|i| !self.expired(i, now))
    }

    /// Applies the buffered hits and removes the entries that expired by `now`.
    pub(crate) fn run_pending(&mut self, now: Option<u64>) -> Removed<K, V> {
        self.apply_reads();
        let mut removed = Removed::new();
        self.expire(now, &mut removed);
        removed
    }

    /// Advances the timer wheel to `now` and takes out what expired.
    fn expire(&mut self, now: Option<u64>, removed: &mut Removed<K, V>) {
        let (Some(now), Some(t)) = (now, self.timers.as_deref_mut()) else {
            return;
        };
        t.wheel.advance(now);
        // Threads read the clock before taking the lock, so the wheel may already be ahead
        // of this caller's reading: judge by the wheel's time, as `pop_expired` does
        // (judging by an older `now` would re-queue what the wheel pops, forever).
        let now = t.wheel.time();
        while let Some(i) = self
            .timers
            .as_deref_mut()
            .and_then(|t| t.wheel.pop_expired())
        {
            // The inline deadline is the truth: a read may have extended it since the wheel
            // last saw it.
            let at = self.entries[i as usize].stamp.get();
            if at > now {
                if let Some(t) = self.timers.as_deref_mut() {
                    let cap = t.wheel.cap(i);
                    t.wheel.reschedule(i, at, cap);
                }
                continue;
            }
            let e = self.unlink_and_take(i);
            removed.push(e.key, e.value, RemovalCause::Expired);
        }
    }

    /// Removes the live entries for which `pred` holds (it runs under the shard's write lock).
    pub(crate) fn remove_if(
        &mut self,
        now: Option<u64>,
        pred: &mut dyn FnMut(&K, &V) -> bool,
    ) -> Removed<K, V> {
        let mut removed = self.run_pending(now);
        // Downwards, so a swap-removal only moves an entry that was already visited.
        for i in (0..self.entries.len() as u32).rev() {
            let e = &self.entries[i as usize];
            if !self.expired(i, now) && pred(&e.key, &e.value) {
                let e = self.unlink_and_take(i);
                removed.push(e.key, e.value, RemovalCause::Explicit);
            }
        }
        removed
    }

    /// Applies the recorded hits to the policy, in order, in three passes: touch the entries,
    /// let the policy touch what it will change, then change it. The loads of each pass are
    /// independent, so their cache misses overlap. Every operation that changes the slab or the
    /// policy applies them first, so the policy sees the same events in the same order as if
    /// each hit were applied at once (only W-TinyLFU's hill climber checks its sample once per
    /// batch), and the recorded indices are always valid.
    pub(crate) fn apply_reads(&mut self) {
        let quiet = self.buffer.take_quiet();
        if quiet > 0 {
            self.policy.on_quiet_hits(quiet as u64);
        }
        let mut reads = std::mem::take(&mut self.reads);
        self.buffer.take_into(&mut reads);
        if !reads.is_empty() {
            let mut acc = 0u32;
            for &i in &reads {
                acc ^= self.entries[i as usize].link.hash;
            }
            std::hint::black_box(acc);
            self.policy.warm(self.entries.as_slice(), &reads);
            self.policy.on_hits(self.entries.as_mut_slice(), &reads);
            // Reads that moved deadlines (time to idle, `Expiry`) re-file their entries.
            if let Some(t) = self.timers.as_deref_mut().filter(|t| t.reads_matter) {
                for &i in &reads {
                    let at = self.entries[i as usize].stamp.get();
                    if at != t.wheel.deadline(i) {
                        let cap = t.wheel.cap(i);
                        t.wheel.reschedule(i, at, cap);
                    }
                }
            }
            reads.clear();
        }
        self.reads = reads;
    }

    /// Inserts or replaces; evicted entries (and a removed previous value's key) come back in
    /// [`Removed`].
    ///
    /// With expiration, `now` gives the new entry its deadlines; an expired previous entry is
    /// removed as [`RemovalCause::Expired`] and the insert counts as new.
    pub(crate) fn insert(
        &mut self,
        hash: u32,
        key: K,
        value: V,
        weight: u32,
        now: Now<'_, K, V>,
    ) -> (Inserted<K, V>, Removed<K, V>) {
        let mut removed = self.run_pending(now.map(|(_, t)| t));
        let fits = self.capacity > 0 && u64::from(weight) <= self.capacity;
        let mut previous = None;
        // The deadlines of the new value, for an update of a live entry.
        let mut updated = None;
        if let Some(i) = self.find(hash, &key) {
            if self.expired(i, now.map(|(_, t)| t)) {
                let old = self.unlink_and_take(i);
                removed.push(old.key, old.value, RemovalCause::Expired);
            } else {
                if let (Some((exp, t)), Some(timers)) = (now, self.timers.as_deref()) {
                    updated = Some(exp.on_update(&key, &value, t, timers.custom(i)));
                }
                let old_weight = self.entries[i as usize].link.weight;
                if fits && self.weight - u64::from(old_weight) + u64::from(weight) <= self.capacity
                {
                    // The stored key stays; the caller's equal key is dropped outside the lock.
                    removed.key = Some(key);
                    if let (Some(d), Some(timers)) = (updated, self.timers.as_deref_mut()) {
                        timers.set(i, d);
                        self.entries[i as usize].stamp.set(d.at);
                    }
                    return (self.update_in_place(i, value, weight), removed);
                }
                // The new value needs room (or cannot be stored at all): the old entry leaves,
                // and the new one enters as a new entry, so room is never made by evicting it.
                let old = self.unlink_and_take(i);
                if !fits {
                    removed.push(old.key, old.value, RemovalCause::Replaced);
                    return (
                        Inserted::Rejected {
                            key,
                            value,
                            old: None,
                        },
                        removed,
                    );
                }
                previous = Some(old.value);
                removed.key = Some(old.key);
            }
        }
        if !fits || self.entries.len() >= MAX_SHARD_ENTRIES {
            return (
                Inserted::Rejected {
                    key,
                    value,
                    old: previous,
                },
                removed,
            );
        }
        while self.weight + u64::from(weight) > self.capacity {
            match self.policy.evict(self.entries.as_mut_slice(), weight) {
                Some(v) => {
                    let e = self.remove_at(v);
                    removed.push(e.key, e.value, RemovalCause::Size);
                }
                None => break,
            }
        }
        if self.entries.len() == self.entries.capacity() {
            let len = self.entries.len();
            let want = (len * 2).clamp(8, self.entry_limit.max(8));
            self.entries.reserve_exact(want.saturating_sub(len).max(1));
        }
        let mut deadline = NEVER;
        if let (Some((exp, t)), Some(timers)) = (now, self.timers.as_deref_mut()) {
            let d = updated.unwrap_or_else(|| exp.on_create(&key, &value, t));
            deadline = d.at;
            timers.push(d);
        }
        let i = self.entries.len() as u32;
        self.entries.push(Entry {
            key,
            value,
            link: Link::new(hash, weight),
            stamp: T::new(deadline),
        });
        let entries = &self.entries;
        self.table
            .insert(hash, i, self.entry_limit, |j| entries[j as usize].link.hash);
        self.weight += u64::from(weight);
        self.link_new(i);
        let outcome = match previous {
            Some(old) => Inserted::Replaced(old),
            None => Inserted::New,
        };
        (outcome, removed)
    }

    /// Replaces the value of entry `i`, whose new weight fits without eviction.
    fn update_in_place(&mut self, i: u32, value: V, weight: u32) -> Inserted<K, V> {
        let e = &mut self.entries[i as usize];
        let old_weight = std::mem::replace(&mut e.link.weight, weight);
        let old = std::mem::replace(&mut e.value, value);
        self.weight = self.weight - u64::from(old_weight) + u64::from(weight);
        match (old_weight, weight) {
            (0, 0) => {}
            (0, _) => {
                self.weightless -= 1;
                self.link_new(i);
            }
            (_, 0) => {
                // Unlink with the weight the policy knows, then record it as weightless.
                self.entries[i as usize].link.weight = old_weight;
                self.policy.on_remove(self.entries.as_mut_slice(), i);
                self.entries[i as usize].link.weight = 0;
                self.weightless += 1;
            }
            _ => self
                .policy
                .on_update(self.entries.as_mut_slice(), i, old_weight),
        }
        Inserted::Replaced(old)
    }

    /// Hands entry `i` (already in table and slab) to the policy, unless it is weightless.
    fn link_new(&mut self, i: u32) {
        if self.entries[i as usize].link.weight == 0 {
            self.weightless += 1;
        } else {
            self.policy.on_insert(self.entries.as_mut_slice(), i);
        }
    }

    /// Unlinks entry `i` from the policy and takes it out of the shard.
    fn unlink_and_take(&mut self, i: u32) -> Entry<K, V, T> {
        if self.entries[i as usize].link.weight == 0 {
            self.weightless -= 1;
        } else {
            self.policy.on_remove(self.entries.as_mut_slice(), i);
        }
        self.remove_at(i)
    }

    /// Removes `key` and returns its live entry, if any; an expired entry under `key` is
    /// removed too and comes back in [`Removed`] (cause `Expired`), with whatever else
    /// expired by `now`.
    pub(crate) fn remove<Q>(
        &mut self,
        hash: u32,
        key: &Q,
        now: Option<u64>,
    ) -> (Option<(K, V)>, Removed<K, V>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut removed = self.run_pending(now);
        let Some(i) = self.find(hash, key) else {
            return (None, removed);
        };
        let live = !self.expired(i, now);
        let e = self.unlink_and_take(i);
        if live {
            return (Some((e.key, e.value)), removed);
        }
        removed.push(e.key, e.value, RemovalCause::Expired);
        (None, removed)
    }

    /// Empties the shard and returns the entries (expired ones as `Expired`, the others as
    /// `Explicit`), for the caller to report and drop outside the lock. The bookkeeping is
    /// reset before anything is dropped, so a panicking `Drop` cannot leave the shard
    /// inconsistent.
    pub(crate) fn clear(&mut self, now: Option<u64>) -> Removed<K, V> {
        let mut removed = self.run_pending(now);
        let expired: Vec<bool> = match self.timers {
            Some(_) => (0..self.entries.len() as u32)
                .map(|i| self.expired(i, now))
                .collect(),
            None => Vec::new(),
        };
        if let Some(t) = self.timers.as_deref_mut() {
            t.wheel.clear();
            t.custom.clear();
        }
        self.buffer.clear();
        self.reads.clear();
        self.policy.clear();
        self.table.clear();
        self.weight = 0;
        self.weightless = 0;
        let mut entries = std::mem::replace(&mut self.entries, Slab::new(0));
        // Newest slot first (`AVec` has no owning iterator); the order is not specified.
        while let Some(e) = entries.pop() {
            let i = entries.len();
            let cause = if expired.get(i).copied().unwrap_or(false) {
                RemovalCause::Expired
            } else {
                RemovalCause::Explicit
            };
            removed.push(e.key, e.value, cause);
        }
        removed
    }

    /// Takes entry `i` (already unlinked from the policy) out of the table and the slab,
    /// moving the last entry into its place.
    fn remove_at(&mut self, i: u32) -> Entry<K, V, T> {
        let hash = self.entries[i as usize].link.hash;
        let entries = &self.entries;
        let found = self
            .table
            .remove(hash, i, |j| entries[j as usize].link.hash);
        debug_assert!(found, "entry {i} is in the index");
        let last = (self.entries.len() - 1) as u32;
        if i != last {
            let moved = self.entries[last as usize].link;
            let found = self.table.relocate(moved.hash, last, i);
            debug_assert!(found, "entry {last} is in the index");
            if moved.prev() != NIL {
                self.entries[moved.prev() as usize].link.set_next(i);
            }
            if moved.next() != NIL {
                self.entries[moved.next() as usize].link.set_prev(i);
            }
            self.policy.relocate(last, i);
        }
        if let Some(t) = self.timers.as_deref_mut() {
            t.swap_remove(i);
        }
        // `AVec` has no `swap_remove`: the same, in two steps.
        self.entries.swap(i as usize, last as usize);
        let e = self
            .entries
            .pop()
            .expect("remove_at is given the index of a live entry");
        self.weight -= u64::from(e.link.weight);
        e
    }

    /// Checks that table, slab, policy lists and weights agree.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let n = self.entries.len();
        if n > 0 && self.entries.as_ptr().cast::<u8>().align_offset(64) != 0 {
            return Err("the slab is not aligned to a cache line".into());
        }
        if self.table.len() != n {
            return Err(format!(
                "table holds {} indices, slab {} entries",
                self.table.len(),
                n
            ));
        }
        for i in self.table.iter() {
            let e = self
                .entries
                .get(i as usize)
                .ok_or(format!("table index {i} out of range"))?;
            if self.find(e.link.hash, &e.key) != Some(i) {
                return Err(format!("entry {i} is not found by its own key"));
            }
        }
        let mut seen = vec![false; n];
        let (mut count, mut weight) = (0usize, 0u64);
        for list in self.policy.lists() {
            let (mut len, mut w, mut prev, mut cur) = (0u32, 0u64, NIL, list.head);
            while cur != NIL {
                let e = self
                    .entries
                    .get(cur as usize)
                    .ok_or(format!("link {cur} out of range"))?;
                if std::mem::replace(&mut seen[cur as usize], true) {
                    return Err(format!("entry {cur} is linked twice"));
                }
                if e.link.prev() != prev {
                    return Err(format!("entry {cur}: prev {} != {prev}", e.link.prev()));
                }
                len += 1;
                w += u64::from(e.link.weight);
                prev = cur;
                cur = e.link.next();
            }
            if prev != list.tail || len != list.len || w != list.weight {
                return Err(format!(
                    "list bookkeeping: tail {} vs {prev}, len {} vs {len}, weight {} vs {w}",
                    list.tail, list.len, list.weight
                ));
            }
            count += len as usize;
            weight += w;
        }
        if count + self.weightless != n || weight != self.weight {
            return Err(format!(
                "lists hold {count} entries of weight {weight} (+{} weightless); shard has {n} of weight {}",
                self.weightless, self.weight
            ));
        }
        if self.weight > self.capacity {
            return Err(format!(
                "weight {} over capacity {}",
                self.weight, self.capacity
            ));
        }
        if let Some(t) = self.timers.as_deref() {
            if t.wheel.len() != n || (t.track_custom && t.custom.len() != n) {
                return Err(format!(
                    "timer wheel holds {} nodes ({} custom deadlines) for {n} entries",
                    t.wheel.len(),
                    t.custom.len()
                ));
            }
            t.wheel
                .validate()
                .map_err(|m| format!("timer wheel: {m}"))?;
            for (i, e) in self.entries.iter().enumerate() {
                if !t.reads_matter && e.stamp.get() != t.wheel.deadline(i as u32) {
                    return Err(format!(
                        "entry {i}: deadline {} but {} in the timer wheel",
                        e.stamp.get(),
                        t.wheel.deadline(i as u32)
                    ));
                }
            }
        }
        Ok(())
    }

    /// Visits every live entry (no policy effect).
    pub(crate) fn for_each(&self, now: Option<u64>, mut f: impl FnMut(&K, &V)) {
        for (i, e) in self.entries.iter().enumerate() {
            if !self.expired(i as u32, now) {
                f(&e.key, &e.value);
            }
        }
    }
}
