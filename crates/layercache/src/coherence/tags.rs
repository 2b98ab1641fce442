//! Tag versions: the stream id of each tag's latest invalidation, and of the latest clear.
//!
//! An entry (in L1 or in L2) carries the version its writer had when its load began and
//! its tags. It is dead if the clear version or the version of one of its tags is newer
//! than its own: invalidating a tag is one message and one small L2 write however many
//! entries carry the tag (no index of tagged keys).
//!
//! This instance learns versions from the backplane (tag and clear messages, applied in
//! stream order) and, for a tag it has not seen, from L2 (read once, then kept current by
//! the stream). A gap in the stream forgets them all, so they are read again: a version is
//! never kept past the point where the stream can vouch for it. Without a backplane
//! nothing keeps them current, so a version read from L2 is trusted for a bounded time
//! (`max_staleness`), then read again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use layercache_tier::StreamId;
use parking_lot::RwLock;

use crate::clock::SharedClock;

/// What is known of one tag (or of the clear).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// Its latest invalidation (`StreamId::ZERO`: none).
    At(StreamId),
    /// Not known here: read it from L2.
    Unknown,
}

/// A version and when it was learned (the clock's nanoseconds).
type Learned = (StreamId, u64);

pub(crate) struct TagVersions {
    tags: RwLock<HashMap<Arc<str>, Learned>>,
    /// The latest clear; `None` while unknown.
    clear: RwLock<Option<Learned>>,
    /// How long a version is trusted, in nanoseconds (`None`: until forgotten).
    ttl_ns: Option<u64>,
    clock: SharedClock,
    /// Moves whenever a version moves or the map is forgotten: an L1 entry whose tags were
    /// checked at the current epoch need not be checked again.
    epoch: AtomicU64,
}

impl TagVersions {
    /// Versions trusted until forgotten (`ttl: None`, with a backplane) or for `ttl`.
    pub(crate) fn new(ttl: Option<std::time::Duration>, clock: SharedClock) -> Self {
        TagVersions {
            tags: RwLock::new(HashMap::new()),
            clear: RwLock::new(None),
            ttl_ns: ttl.map(|t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)),
            clock,
            epoch: AtomicU64::new(1),
        }
    }

    /// `learned` as known now: `Unknown` once older than the TTL.
    fn known(&self, learned: Option<Learned>) -> Known {
        match (learned, self.ttl_ns) {
            (None, _) => Known::Unknown,
            (Some((v, _)), None) => Known::At(v),
            (Some((v, at)), Some(ttl)) => {
                if self.clock.now().saturating_sub(at) < ttl {
                    Known::At(v)
                } else {
                    Known::Unknown
                }
            }
        }
    }

    fn stamp(&self) -> u64 {
        if self.ttl_ns.is_some() {
            self.clock.now()
        } else {
            0
        }
    }

    /// The current epoch (see the field).
    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn moved(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// What is known of `tag`.
    pub(crate) fn tag(&self, tag: &str) -> Known {
        self.known(self.tags.read().get(tag).copied())
    }

    /// What is known of the clear.
    pub(crate) fn clear(&self) -> Known {
        self.known(*self.clear.read())
    }

    /// Raises `tag`'s version to `at` (a version never goes back) and marks it learned now.
    pub(crate) fn raise_tag(&self, tag: &str, at: StreamId) {
        let now = self.stamp();
        let mut tags = self.tags.write();
        match tags.get_mut(tag) {
            Some((v, learned)) if *v >= at => {
                *learned = now;
                return;
            }
            Some(v) => *v = (at, now),
            None => {
                tags.insert(Arc::from(tag), (at, now));
            }
        }
        drop(tags);
        self.moved();
    }

    /// Raises the clear version to `at` and marks it learned now.
    pub(crate) fn raise_clear(&self, at: StreamId) {
        let now = self.stamp();
        let mut clear = self.clear.write();
        match clear.as_mut() {
            Some((v, learned)) if *v >= at => {
                *learned = now;
                return;
            }
            _ => *clear = Some((at, now)),
        }
        drop(clear);
        self.moved();
    }

    /// Forgets every version (after a gap in the stream): they are read from L2 again.
    pub(crate) fn forget(&self) {
        self.tags.write().clear();
        *self.clear.write() = None;
        self.moved();
    }

    /// Whether an entry written at `version` with `tags` is dead by what is known; `None`
    /// if that depends on a version not known here (the caller reads it from L2 and asks
    /// again).
    pub(crate) fn is_dead<'t>(
        &self,
        version: StreamId,
        tags: impl IntoIterator<Item = &'t str>,
    ) -> Option<bool> {
        let newer = |k: Known| match k {
            Known::At(v) => Some(v > version),
            Known::Unknown => None,
        };
        if newer(self.clear())? {
            return Some(true);
        }
        let known = self.tags.read();
        for tag in tags {
            match self.known(known.get(tag).copied()) {
                Known::At(v) if v > version => return Some(true),
                Known::At(_) => {}
                Known::Unknown => return None,
            }
        }
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    #[test]
    fn an_entry_dies_by_a_newer_tag_or_clear_and_unknowns_are_asked_for() {
        let t = TagVersions::new(None, Arc::new(crate::ManualTieredClock::new()));
        assert_eq!(t.is_dead(id(5), ["a"]), None, "nothing known yet");
        t.raise_clear(StreamId::ZERO);
        assert_eq!(t.is_dead(id(5), []), Some(false));
        assert_eq!(t.is_dead(id(5), ["a"]), None);
        t.raise_tag("a", id(5));
        assert_eq!(
            t.is_dead(id(5), ["a"]),
            Some(false),
            "written at the invalidation"
        );
        assert_eq!(t.is_dead(id(4), ["a"]), Some(true));
        let e = t.epoch();
        t.raise_tag("a", id(3));
        assert_eq!(t.epoch(), e, "an older version changes nothing");
        assert_eq!(t.is_dead(id(4), ["a"]), Some(true));
        t.raise_clear(id(9));
        assert!(t.epoch() > e);
        assert_eq!(t.is_dead(id(8), []), Some(true));
        t.forget();
        assert_eq!(t.is_dead(id(10), []), None);
        assert_eq!(t.tag("a"), Known::Unknown);
    }

    #[test]
    fn with_a_ttl_versions_are_unknown_again_once_it_passes() {
        let clock = crate::ManualTieredClock::new();
        let t = TagVersions::new(
            Some(std::time::Duration::from_secs(1)),
            Arc::new(clock.clone()),
        );
        t.raise_clear(StreamId::ZERO);
        t.raise_tag("a", id(5));
        assert_eq!(t.is_dead(id(4), ["a"]), Some(true));
        clock.advance(std::time::Duration::from_millis(999));
        assert_eq!(t.tag("a"), Known::At(id(5)));
        clock.advance(std::time::Duration::from_millis(1));
        assert_eq!(t.tag("a"), Known::Unknown, "read from L2 again");
        assert_eq!(t.clear(), Known::Unknown);
        assert_eq!(t.is_dead(id(4), ["a"]), None);
        // Learning it again (even the same version) trusts it for another TTL.
        t.raise_tag("a", id(5));
        t.raise_clear(StreamId::ZERO);
        assert_eq!(t.is_dead(id(4), ["a"]), Some(true));
    }
}
