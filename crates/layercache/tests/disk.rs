//! `TieredCache` over `DiskTier` (`layercache::disk`, the default L2 of the `cache_aside`
//! example), in a temporary directory: every scenario of `scenarios/`. The tier's clock is a
//! manual one, so the TTL a record was stored with is read exactly, by moving that clock to
//! just before and to the expiry.

#![cfg(feature = "disk")]

#[macro_use]
mod scenarios;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use layercache::disk::{DiskOptions, DiskTier};
use layercache::Tier;
use scenarios::Backend;

/// A `DiskTier` in its own temporary directory, on a clock that stands still at `base`
/// unless [`Backend::assert_ttl`] moves it.
struct Disk {
    tier: Arc<DiskTier>,
    clock: Arc<AtomicU64>,
    base: u64,
    _dir: tempfile::TempDir,
}

/// 100 years in milliseconds: "no expiry" is checked that far ahead.
const CENTURY_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

impl Disk {
    async fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.tier.get(key).await.expect("the disk tier read")
    }
    async fn get_at(&self, now_ms: u64, key: &[u8]) -> Option<Vec<u8>> {
        self.clock.store(now_ms, Ordering::SeqCst);
        let got = self.get(key).await;
        self.clock.store(self.base, Ordering::SeqCst);
        got
    }
}

impl Backend for Disk {
    fn tier(&self) -> Arc<dyn Tier> {
        Arc::clone(&self.tier) as Arc<dyn Tier>
    }
    async fn raw<'a>(&'a self, key: &'a [u8]) -> Option<Vec<u8>> {
        self.get(key).await
    }
    async fn plant<'a>(&'a self, key: &'a [u8], bytes: &'a [u8]) {
        self.tier
            .set(key, bytes, None)
            .await
            .expect("the disk tier wrote");
    }
    /// Every write happened at `base` (the clock stands still), so a record stored with
    /// `ttl` is served at `base + ttl - 1 ms` and not at `base + ttl`. The second read
    /// deletes it; it is written back as it was (same bytes, same expiry).
    async fn assert_ttl<'a>(&'a self, key: &'a [u8], ttl: Option<Duration>) {
        let name = String::from_utf8_lossy(key);
        let bytes = self
            .get(key)
            .await
            .unwrap_or_else(|| panic!("{name} is not stored"));
        match ttl {
            Some(ttl) => {
                let ms = u64::try_from(ttl.as_millis()).expect("a test TTL fits u64");
                assert!(
                    self.get_at(self.base + ms - 1, key).await.is_some(),
                    "{name} expired before its TTL of {ttl:?}"
                );
                assert!(
                    self.get_at(self.base + ms, key).await.is_none(),
                    "{name} served after its TTL of {ttl:?}"
                );
                self.tier
                    .set(key, &bytes, Some(ttl))
                    .await
                    .expect("the disk tier wrote");
            }
            None => assert!(
                self.get_at(self.base + CENTURY_MS, key).await.is_some(),
                "{name} has an expiry; none expected"
            ),
        }
    }
}

async fn disk() -> Disk {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let base = u64::try_from(base).expect("fits u64");
    let clock = Arc::new(AtomicU64::new(base));
    let now = Arc::clone(&clock);
    let options = DiskOptions::new(64 << 20).clock(move || now.load(Ordering::SeqCst));
    let tier = DiskTier::open(dir.path(), options).expect("the disk tier opens");
    Disk {
        tier: Arc::new(tier),
        clock,
        base,
        _dir: dir,
    }
}

scenario_tests!(disk);
