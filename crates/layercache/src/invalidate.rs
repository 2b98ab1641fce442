//! Tag invalidation and clear: [`TieredCache::invalidate_tag`] and [`TieredCache::clear`].

use std::hash::Hash;

use layercache_tier::StreamId;

use crate::error::Error;
use crate::key::CacheKey;
use crate::l2::version_key;
use crate::message::Action;
use crate::tiered::TieredCache;

impl<K, V> TieredCache<K, V>
where
    K: CacheKey + Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Makes every entry tagged `tag` (see [`EntryOptions::tags`](crate::EntryOptions::tags))
    /// a miss, on every instance and in L2, written before this call: one backplane message
    /// and one small L2 write, however many entries carry the tag (nothing is scanned;
    /// entries are checked when read, and expire by their TTL).
    ///
    /// The tag's version is the message's stream id. If the backplane cannot be reached,
    /// the message is queued and this instance applies a local version at once; other
    /// instances apply it when it is sent (they stop serving L1 meanwhile if they cannot
    /// hear the backplane either, see
    /// [`max_staleness`](crate::TieredCacheBuilder::max_staleness)).
    ///
    /// # Errors
    /// [`Error::Tag`] if `tag` is empty or too long (nothing is done); [`Error::Tier`] if
    /// the tag's version could not be written to L2 (this instance and the backplane still
    /// have it; instances started later may not, until the tag is invalidated again).
    pub async fn invalidate_tag(&self, tag: &str) -> Result<(), Error> {
        self.start_backplane();
        crate::l2::check_tags(&crate::EntryOptions::new().tags([tag]))?;
        let v = self.version_of(Action::Tag, tag.as_bytes()).await;
        self.inner.co.tags.raise_tag(tag, v);
        self.store_version(&version_key(&self.inner.name, Some(tag)), v)
            .await
    }

    /// Removes every entry of this cache: from this L1 at once, from every other
    /// instance's L1 through the backplane, and from L2 by a clear version that every entry
    /// written before it is older than (L2 entries are not deleted; they are misses and
    /// expire by their TTL).
    ///
    /// # Errors
    /// [`Error::Tier`] if the clear version could not be written to L2 (as for
    /// [`invalidate_tag`](Self::invalidate_tag)).
    pub async fn clear(&self) -> Result<(), Error> {
        self.start_backplane();
        let v = self.version_of(Action::Clear, b"").await;
        self.inner.co.tags.raise_clear(v);
        self.inner.co.guard.bump_all();
        self.inner.l1.invalidate_all();
        self.store_version(&version_key(&self.inner.name, None), v)
            .await
    }

    /// Publishes a tag or clear message; its version (see [`Coherence::local_version`] when
    /// it could not be published).
    ///
    /// [`Coherence::local_version`]: crate::coherence::Coherence::local_version
    async fn version_of(&self, action: Action, subject: &[u8]) -> StreamId {
        match self.inner.co.publish(action, subject).await {
            Some(id) => id,
            None => self.inner.co.local_version(),
        }
    }
}
