//! `TieredCache` over an in-process map tier: every scenario of `scenarios/` (promotion,
//! envelopes, negative caching, coalescing, batches, the breaker, entry options), with the
//! stored TTL checked exactly. The same scenarios run against a real Redis in `redis.rs`
//! and against `DiskTier` in `disk.rs`.

#[macro_use]
mod scenarios;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use layercache::{Tier, TierFuture};
use scenarios::Backend;

/// Stored bytes and the TTL they were written with.
type Stored = (Vec<u8>, Option<Duration>);

/// An in-process tier that remembers the TTL of each write (and never expires anything).
#[derive(Default)]
struct MapTier {
    map: Mutex<HashMap<Vec<u8>, Stored>>,
}

impl Tier for MapTier {
    fn name(&self) -> &'static str {
        "map"
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { Ok(self.map.lock().unwrap().get(key).map(|v| v.0.clone())) })
    }
    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        Box::pin(async move {
            self.map
                .lock()
                .unwrap()
                .insert(key.to_vec(), (value.to_vec(), ttl));
            Ok(())
        })
    }
    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
        Box::pin(async move {
            self.map.lock().unwrap().remove(key);
            Ok(())
        })
    }
}

/// A [`MapTier`] shared by the caches and the scenario.
#[derive(Clone, Default)]
struct Map(Arc<MapTier>);

impl Map {
    fn stored(&self, key: &[u8]) -> Option<Stored> {
        self.0.map.lock().unwrap().get(key).cloned()
    }
}

impl Backend for Map {
    fn tier(&self) -> Arc<dyn Tier> {
        Arc::clone(&self.0) as Arc<dyn Tier>
    }
    async fn raw<'a>(&'a self, key: &'a [u8]) -> Option<Vec<u8>> {
        self.stored(key).map(|(bytes, _)| bytes)
    }
    async fn plant<'a>(&'a self, key: &'a [u8], bytes: &'a [u8]) {
        self.0
            .map
            .lock()
            .unwrap()
            .insert(key.to_vec(), (bytes.to_vec(), None));
    }
    async fn assert_ttl<'a>(&'a self, key: &'a [u8], ttl: Option<Duration>) {
        let stored = self.stored(key);
        let key = String::from_utf8_lossy(key);
        let (_, stored) = stored.unwrap_or_else(|| panic!("{key} is not stored"));
        assert_eq!(stored, ttl, "the TTL {key} was stored with");
    }
}

async fn map() -> Map {
    Map::default()
}

scenario_tests!(map);
