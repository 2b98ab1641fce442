//! The L2 side of [`TieredCache`]: opening and sealing envelopes, the tag and clear checks
//! of what L2 returns, and leases around fills.
//!
//! A fill that misses L2 first takes a *lease* on the key where the tier has conditional
//! writes ([`Tier::add`](layercache_tier::Tier::add) of a marker, or a compare-and-set over
//! an expired or dead entry), then stores its value by compare-and-set over its own
//! marker. A `remove` (a delete) or a `set` in between replaces the marker, so the
//! compare-and-set fails and a value loaded before an invalidation never lands in L2
//! after it: memcache's leases (Nishtala et al., "Scaling Memcache at Facebook", NSDI
//! 2013), kept in the key itself so that on a Redis Cluster the marker and the value share
//! a slot. A fill that finds another filler's marker loads without writing L2.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use layercache_tier::StreamId;
use tracing::Instrument;

use crate::breaker::Guarded;
use crate::clock::saturating_ms;
use crate::envelope::{self, DecodeError, Meta};
use crate::error::Error;
use crate::key::CacheKey;
use crate::options::EntryOptions;
use crate::tiered::{Slot, TieredCache};

/// What L2 had for a key, opened.
pub(crate) enum Found<V> {
    /// A live entry.
    Hit(Slot<V>),
    /// An entry that expired or that a tag or clear killed.
    Dead,
    /// Another fill's lease marker.
    Lease,
    /// Bytes that do not decode as this key's envelope (counted).
    Corrupt,
}

/// A fill's hold on its L2 key (see the [module docs](self)).
pub(crate) enum Lease {
    /// The tier has no conditional writes (or L2 is not read): write as `set` does.
    Plain,
    /// This fill's marker is in L2.
    Held(Vec<u8>),
    /// Someone else fills the key, a value appeared, or L2 failed: do not write L2.
    Busy,
    /// No L2, or the options do not write it.
    NoWrite,
}

/// Checks `opts`' tags against the envelope's limits.
pub(crate) fn check_tags(opts: &EntryOptions) -> Result<(), Error> {
    envelope::check_tags(opts.tag_list()).map_err(|e| Error::Tag(e.to_string()))
}

/// The L2 key of a tag's version (`None`: of the clear): `name:` then a NUL byte, so no
/// key of the `CacheKey` impls of this crate but a byte vector starting with NUL can meet it.
pub(crate) fn version_key(name: &str, tag: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 8 + tag.map_or(0, str::len));
    k.extend_from_slice(name.as_bytes());
    k.extend_from_slice(b":\0");
    match tag {
        Some(t) => {
            k.extend_from_slice(b"tag:");
            k.extend_from_slice(t.as_bytes());
        }
        None => k.extend_from_slice(b"clear"),
    }
    k
}

/// A stored version (`<ms>-<seq>` as text, readable in `redis-cli`).
fn parse_version(bytes: &[u8]) -> Option<StreamId> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

impl<K, V> TieredCache<K, V>
where
    K: CacheKey + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Opens the envelope `bytes` found in L2 under `k2`, with its tag and clear check.
    pub(crate) async fn open(&self, k2: &[u8], bytes: &[u8], opts: &EntryOptions) -> Found<V> {
        let inner = &*self.inner;
        let env = match envelope::decode(k2, bytes, inner.max_payload) {
            Ok(env) => env,
            Err(DecodeError::Lease) => return Found::Lease,
            Err(e) => {
                self.count("layercache_decode_failures_total", "reason", e.reason());
                tracing::warn!(cache = %inner.name, error = %e, "undecodable L2 entry; treated as a miss");
                return Found::Corrupt;
            }
        };
        let now = inner.clock.epoch_ms();
        let remaining = match env.expires_ms {
            Some(at) if at <= now => return Found::Dead,
            Some(at) => Some(Duration::from_millis(at - now)),
            None => None,
        };
        let tags: Vec<Arc<str>> = env.tags.iter().map(|t| Arc::from(&**t)).collect();
        if self.is_dead(env.version, &tags).await {
            return Found::Dead;
        }
        let stamp_opts;
        let opts = if tags.is_empty() {
            opts
        } else {
            stamp_opts = opts.clone().tags(tags);
            &stamp_opts
        };
        let Some(payload) = env.payload else {
            return Found::Hit(self.slot(None, remaining, env.version, opts));
        };
        match inner.codec.decode(&payload) {
            Ok(v) => {
                let ttl = match (remaining, opts.effective_l1_ttl()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Found::Hit(self.slot(Some(v), ttl, env.version, opts))
            }
            Err(e) => {
                self.count("layercache_decode_failures_total", "reason", "codec");
                tracing::warn!(cache = %inner.name, error = %e, "L2 value does not decode; treated as a miss");
                Found::Corrupt
            }
        }
    }

    /// Whether an entry written at `version` with `tags` is dead by a tag or clear: by the
    /// versions known here, reading unknown ones from L2 (and every one while L1 is not
    /// trusted, since messages may have been missed). Dead if they cannot be read.
    pub(crate) async fn is_dead(&self, version: StreamId, tags: &[Arc<str>]) -> bool {
        let co = &self.inner.co;
        if !co.l1_trusted() && co.backplane.is_some() {
            self.fetch_versions(tags, true).await;
        }
        for _ in 0..2 {
            if let Some(dead) = co.tags.is_dead(version, tags.iter().map(|t| &**t)) {
                return dead;
            }
            self.fetch_versions(tags, false).await;
        }
        true
    }

    /// Reads the clear's and `tags`' versions from L2 (only the unknown ones unless `all`).
    /// Without an L2 nothing else can know them: unknown ones are `ZERO`.
    async fn fetch_versions(&self, tags: &[Arc<str>], all: bool) {
        let co = &self.inner.co;
        let Some(l2) = self.inner.l2.as_ref() else {
            if co.tags.clear() == crate::coherence::tags::Known::Unknown {
                co.tags.raise_clear(StreamId::ZERO);
            }
            for t in tags {
                co.tags.raise_tag(t, StreamId::ZERO);
            }
            return;
        };
        use crate::coherence::tags::Known;
        let mut wanted: Vec<Option<&str>> = Vec::new();
        if all || co.tags.clear() == Known::Unknown {
            wanted.push(None);
        }
        for t in tags {
            if all || co.tags.tag(t) == Known::Unknown {
                wanted.push(Some(t));
            }
        }
        if wanted.is_empty() {
            return;
        }
        let keys: Vec<Vec<u8>> = wanted
            .iter()
            .map(|t| version_key(&self.inner.name, *t))
            .collect();
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let Ok(found) = l2.call("get_many", |t| t.get_many(&refs)).await else {
            return;
        };
        for (tag, bytes) in wanted.into_iter().zip(found) {
            let v = match bytes {
                None => StreamId::ZERO,
                Some(b) => match parse_version(&b) {
                    Some(v) => v,
                    None => {
                        tracing::warn!(cache = %self.inner.name, tag = ?tag, "unreadable tag version in L2; its entries are misses");
                        continue;
                    }
                },
            };
            match tag {
                Some(t) => co.tags.raise_tag(t, v),
                None => co.tags.raise_clear(v),
            }
        }
    }

    /// Raises the version stored in L2 under `key` to `v` (never lowers it: with
    /// conditional writes by compare-and-set, retried a few times; without, a plain set).
    pub(crate) async fn store_version(&self, key: &[u8], v: StreamId) -> Result<(), Error> {
        let Some(l2) = self.inner.l2.as_ref() else {
            return Ok(());
        };
        let text = v.to_string().into_bytes();
        if !l2.tier().supports_conditional_writes() {
            return l2
                .call("set", |t| t.set(key, &text, None))
                .await
                .map_err(Error::Tier);
        }
        for _ in 0..8 {
            let current = l2.call("get", |t| t.get(key)).await?;
            let done = match &current {
                Some(b) if parse_version(b).is_some_and(|c| c >= v) => return Ok(()),
                Some(b) => {
                    l2.call("compare_and_set", |t| {
                        t.compare_and_set(key, b, &text, None)
                    })
                    .await?
                }
                None => l2.call("add", |t| t.add(key, &text, None)).await?,
            };
            if done {
                return Ok(());
            }
        }
        Err(Error::Tier(layercache_tier::TierError::Backend {
            tier: l2.tier().name(),
            source: "a tag version kept changing under 8 compare-and-sets".into(),
        }))
    }

    /// Looks `k2` up in L2: a live slot, or `None` (a corrupt entry is deleted).
    pub(crate) async fn l2_lookup(&self, k2: &[u8], opts: &EntryOptions) -> Option<Slot<V>> {
        let l2 = self.inner.l2.as_ref().filter(|_| opts.reads_l2())?;
        let span = tracing::trace_span!("layercache.l2", op = "get", cache = %self.inner.name);
        let bytes = l2
            .call("get", |t| t.get(k2))
            .instrument(span)
            .await
            .ok()??;
        self.settle(l2, k2, &bytes, opts).await
    }

    /// Opens `bytes` found under `k2`: the slot if it is live; `None` if not (a corrupt
    /// entry is then deleted).
    pub(crate) async fn settle(
        &self,
        l2: &Guarded,
        k2: &[u8],
        bytes: &[u8],
        opts: &EntryOptions,
    ) -> Option<Slot<V>> {
        match self.open(k2, bytes, opts).await {
            Found::Hit(slot) => Some(slot),
            Found::Dead | Found::Lease => None,
            Found::Corrupt => {
                let _ = l2.call("delete", |t| t.delete(k2)).await;
                None
            }
        }
    }

    /// A fill's L2 step: the live slot, or the lease it holds for storing its load.
    pub(crate) async fn l2_fill_lookup(
        &self,
        k2: &[u8],
        opts: &EntryOptions,
    ) -> Result<Slot<V>, Lease> {
        let Some(l2) = self.inner.l2.as_ref() else {
            return Err(Lease::NoWrite);
        };
        if !opts.reads_l2() {
            return Err(if opts.writes_l2() {
                Lease::Plain
            } else {
                Lease::NoWrite
            });
        }
        let span = tracing::trace_span!("layercache.l2", op = "get", cache = %self.inner.name);
        // A failed read is taken as a miss: the write after the load is still tried (and
        // counted if it fails too).
        let bytes = l2
            .call("get", |t| t.get(k2))
            .instrument(span)
            .await
            .ok()
            .flatten();
        let previous = match bytes {
            None => None,
            Some(b) => match self.open(k2, &b, opts).await {
                Found::Hit(slot) => return Ok(slot),
                Found::Lease => return Err(Lease::Busy),
                Found::Dead | Found::Corrupt => Some(b),
            },
        };
        Err(self.take_lease(l2, k2, previous, opts).await)
    }

    /// Takes a lease on `k2`, which holds nothing live: `previous` is what it holds (an
    /// expired, dead or corrupt entry), replaced by the marker by compare-and-set; with
    /// nothing there, the marker is added.
    pub(crate) async fn take_lease(
        &self,
        l2: &Guarded,
        k2: &[u8],
        previous: Option<Vec<u8>>,
        opts: &EntryOptions,
    ) -> Lease {
        if !opts.writes_l2() {
            return Lease::NoWrite;
        }
        if !l2.tier().supports_conditional_writes() {
            if previous.is_some() {
                let _ = l2.call("delete", |t| t.delete(k2)).await;
            }
            return Lease::Plain;
        }
        let marker = envelope::lease(rand::random());
        let ttl = Some(self.inner.lease_ttl);
        let taken = match &previous {
            None => l2.call("add", |t| t.add(k2, &marker, ttl)).await,
            Some(old) => {
                l2.call("compare_and_set", |t| {
                    t.compare_and_set(k2, old, &marker, ttl)
                })
                .await
            }
        };
        match taken {
            Ok(true) => Lease::Held(marker),
            Ok(false) | Err(_) => Lease::Busy,
        }
    }

    /// Stores a fill's result in L2 under its lease; `false` if the lease was lost (an
    /// invalidation or a write came in between: the result must not go to L1 either).
    pub(crate) async fn l2_fill_store(
        &self,
        k2: &[u8],
        value: Option<&V>,
        ttl: Option<Duration>,
        version: StreamId,
        opts: &EntryOptions,
        lease: Lease,
    ) -> bool {
        let marker = match lease {
            Lease::NoWrite | Lease::Busy => return true,
            Lease::Plain => {
                if let Err(e) = self.l2_write(k2, value, ttl, version, opts).await {
                    tracing::debug!(cache = %self.inner.name, error = %e, "loaded value not written to L2");
                }
                return true;
            }
            Lease::Held(marker) => marker,
        };
        let sealed = self.seal(k2, value, ttl, version, opts).ok().flatten();
        self.store_leased(k2, marker, sealed, ttl).await
    }

    /// Replaces this fill's lease `marker` on `k2` by `sealed` (compare-and-set); with
    /// nothing to store (oversized, not encodable), gives the lease back. `false` if the
    /// lease was lost (an invalidation or a write came in between), counted.
    pub(crate) async fn store_leased(
        &self,
        k2: &[u8],
        marker: Vec<u8>,
        sealed: Option<Vec<u8>>,
        ttl: Option<Duration>,
    ) -> bool {
        let Some(l2) = self.inner.l2.as_ref() else {
            return true;
        };
        let Some(sealed) = sealed else {
            self.release(k2, Lease::Held(marker)).await;
            return true;
        };
        let span = tracing::trace_span!("layercache.l2", op = "set", cache = %self.inner.name);
        match l2
            .call("compare_and_set", |t| {
                t.compare_and_set(k2, &marker, &sealed, ttl)
            })
            .instrument(span)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                self.count("layercache_fills_raced_total", "tier", "l2");
                false
            }
            Err(_) => {
                self.inner.meters.skipped_l2_error.increment(1);
                true
            }
        }
    }

    /// Gives a lease back (the fill stores nothing): deletes the marker if it is still ours
    /// (a plain delete could remove a value someone wrote meanwhile).
    pub(crate) async fn release(&self, k2: &[u8], lease: Lease) {
        let (Lease::Held(marker), Some(l2)) = (lease, self.inner.l2.as_ref()) else {
            return;
        };
        let _ = l2
            .call("compare_and_delete", |t| t.compare_and_delete(k2, &marker))
            .await;
    }

    /// The envelope of `value` (`None`: an absence) written at `version` with `opts`' tags,
    /// or `None` if it should not go to L2.
    pub(crate) fn seal(
        &self,
        k2: &[u8],
        value: Option<&V>,
        ttl: Option<Duration>,
        version: StreamId,
        opts: &EntryOptions,
    ) -> Result<Option<Vec<u8>>, Error> {
        let inner = &*self.inner;
        let payload = value
            .map(|v| inner.codec.encode(v))
            .transpose()
            .map_err(Error::Encode)?;
        if payload
            .as_ref()
            .is_some_and(|p| p.len() > inner.max_payload)
        {
            inner.meters.skipped_oversized.increment(1);
            return Ok(None);
        }
        let now = inner.clock.epoch_ms();
        let meta = Meta {
            created_ms: now,
            expires_ms: ttl.map(|t| now.saturating_add(saturating_ms(t))),
            version,
            tags: opts.tag_list(),
        };
        Ok(Some(envelope::encode_with(
            k2,
            payload.as_deref(),
            &meta,
            inner.compress_above,
        )))
    }

    /// Writes to L2 (if there is one and `opts` allow), unconditionally.
    pub(crate) async fn l2_write(
        &self,
        k2: &[u8],
        value: Option<&V>,
        ttl: Option<Duration>,
        version: StreamId,
        opts: &EntryOptions,
    ) -> Result<(), Error> {
        let Some(l2) = self.inner.l2.as_ref().filter(|_| opts.writes_l2()) else {
            return Ok(());
        };
        let Some(sealed) = self.seal(k2, value, ttl, version, opts)? else {
            return Ok(());
        };
        let span = tracing::trace_span!("layercache.l2", op = "set", cache = %self.inner.name);
        l2.call("set", |t| t.set(k2, &sealed, ttl))
            .instrument(span)
            .await
            .map_err(|e| {
                self.inner.meters.skipped_l2_error.increment(1);
                Error::Tier(e)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_sit_beside_the_cache_keys_and_versions_parse_back() {
        assert_eq!(version_key("p", Some("shop:3")), b"p:\0tag:shop:3");
        assert_eq!(version_key("p", None), b"p:\0clear");
        assert_eq!(parse_version(b"17-2"), Some(StreamId::new(17, 2)));
        assert_eq!(parse_version(b"17"), None);
        assert_eq!(parse_version(&[0xff]), None);
    }
}
