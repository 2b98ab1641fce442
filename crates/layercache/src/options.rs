//! [`EntryOptions`]: how long an entry lives in each tier, and which tiers it touches.

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct EntryOptions {
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
