//! [`EntryOptions`]: how long an entry lives in each tier, and which tiers it touches.

use std::sync::Arc;
use std::time::Duration;

/// Per-entry settings of a [`TieredCache`](crate::TieredCache) write or load; the cache's
/// defaults come from [`default_entry_options`](crate::TieredCacheBuilder::default_entry_options).
///
/// ```
/// use std::time::Duration;
/// use layercache::EntryOptions;
///
/// let opts = EntryOptions::new()
///     .ttl(Duration::from_secs(600))        // L2 (and L1 unless shorter below)
///     .l1_ttl(Duration::from_secs(30))      // L1 copies go stale sooner
///     .negative_ttl(Duration::from_secs(5)) // cache "not found" briefly
///     .skip_l2_write();                     // this value stays in this process
/// assert_eq!(opts.effective_l1_ttl(), Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct EntryOptions {
    tags: Option<Arc<[Arc<str>]>>,
    ttl: Option<Duration>,
    l1_ttl: Option<Duration>,
    negative_ttl: Option<Duration>,
    skip_l1_read: bool,
    skip_l1_write: bool,
    skip_l2_read: bool,
    skip_l2_write: bool,
}

impl EntryOptions {
    /// No TTL, negative caching off, both tiers read and written.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long the value lives (in L2, and in L1 unless [`l1_ttl`](Self::l1_ttl) is
    /// shorter). Default: none (until evicted).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// A shorter lifetime for L1 copies (so instances pick up other instances' writes from L2
    /// sooner). Default: the `ttl`.
    pub fn l1_ttl(mut self, ttl: Duration) -> Self {
        self.l1_ttl = Some(ttl);
        self
    }

    /// How long a "not found" from an optional loader is cached, in both tiers. Default:
    /// none (absences are not cached).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Do not look in L1 (reads go to L2, then the loader).
    pub fn skip_l1_read(mut self) -> Self {
        self.skip_l1_read = true;
        self
    }

    /// Do not store in L1.
    pub fn skip_l1_write(mut self) -> Self {
        self.skip_l1_write = true;
        self
    }

    /// Do not look in L2.
    pub fn skip_l2_read(mut self) -> Self {
        self.skip_l2_read = true;
        self
    }

    /// Do not store in L2.
    pub fn skip_l2_write(mut self) -> Self {
        self.skip_l2_write = true;
        self
    }

    /// The entry's tags: [`TieredCache::invalidate_tag`](crate::TieredCache::invalidate_tag)
    /// of any of them makes it a miss, on every instance and in L2. Each tag is 1 to
    /// [`MAX_TAG_LEN`](crate::envelope::MAX_TAG_LEN) bytes, at most
    /// [`MAX_TAGS`](crate::envelope::MAX_TAGS) per entry; writes and loads with other tags
    /// fail with [`Error::Tag`](crate::Error::Tag) before doing anything. Duplicates are
    /// kept once. Default: none. Cloning the options shares the list.
    ///
    /// ```
    /// use layercache::EntryOptions;
    /// let opts = EntryOptions::new().tags(["shop:3", "category:lamps"]);
    /// assert_eq!(opts.tag_list().len(), 2);
    /// ```
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Arc<str>>,
    {
        let mut list: Vec<Arc<str>> = Vec::new();
        for t in tags {
            let t = t.into();
            if !list.contains(&t) {
                list.push(t);
            }
        }
        self.tags = (!list.is_empty()).then(|| list.into());
        self
    }

    /// The entry's tags (see [`tags`](Self::tags)).
    pub fn tag_list(&self) -> &[Arc<str>] {
        self.tags.as_deref().unwrap_or(&[])
    }

    pub(crate) fn shared_tags(&self) -> Option<&Arc<[Arc<str>]>> {
        self.tags.as_ref()
    }

    /// The L2 lifetime.
    pub fn effective_ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// The L1 lifetime: the shorter of `ttl` and `l1_ttl`.
    pub fn effective_l1_ttl(&self) -> Option<Duration> {
        match (self.ttl, self.l1_ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The lifetime of a cached absence.
    pub fn effective_negative_ttl(&self) -> Option<Duration> {
        self.negative_ttl
    }

    #[inline]
    pub(crate) fn reads_l1(&self) -> bool {
        !self.skip_l1_read
    }
    pub(crate) fn writes_l1(&self) -> bool {
        !self.skip_l1_write
    }
    pub(crate) fn reads_l2(&self) -> bool {
        !self.skip_l2_read
    }
    pub(crate) fn writes_l2(&self) -> bool {
        !self.skip_l2_write
    }
}
