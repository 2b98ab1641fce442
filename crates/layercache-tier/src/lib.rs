//! # layercache-tier
//!
//! The [`Tier`] trait: what a second-level (L2) cache implements for
//! [layercache](https://docs.rs/layercache)'s `TieredCache`. A tier stores **bytes** under
//! **byte keys** with an optional time to live; it knows nothing of eviction policies, codecs
//! or the values' types (the front crate encodes values into a versioned envelope before they
//! reach a tier, and checks them when they come back).
//!
//! The trait lives in its own small crate so that tier implementations
//! (`layercache-redis`, `layercache-disk`, or your own) and the front crate depend on it
//! without depending on each other.
//!
//! It also holds the [`Backplane`] trait: the ordered, resumable message stream over which
//! the instances of a cache tell each other that a key, a tag or everything changed
//! (`layercache-redis` implements it on a Redis Stream), with [`StreamId`], the server-given
//! position that orders those messages.
//!
//! Methods return boxed futures ([`TierFuture`]) so that `dyn Tier` works: a cache holds its
//! L2 as an `Arc<dyn Tier>` chosen at run time. The allocation is negligible next to a
//! network or disk round trip.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::Duration;
//! use layercache_tier::{Tier, TierError, TierFuture};
//!
//! /// A toy in-process tier (no TTL), to show the shape.
//! #[derive(Default)]
//! struct MapTier(Mutex<HashMap<Vec<u8>, Vec<u8>>>);
//!
//! impl Tier for MapTier {
//!     fn name(&self) -> &'static str { "map" }
//!     fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
//!         Box::pin(async move { Ok(self.0.lock().unwrap().get(key).cloned()) })
//!     }
//!     fn set<'a>(&'a self, key: &'a [u8], value: &'a [u8], _ttl: Option<Duration>) -> TierFuture<'a, ()> {
//!         Box::pin(async move {
//!             self.0.lock().unwrap().insert(key.to_vec(), value.to_vec());
//!             Ok(())
//!         })
//!     }
//!     fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
//!         Box::pin(async move {
//!             self.0.lock().unwrap().remove(key);
//!             Ok(())
//!         })
//!     }
//! }
//! ```

mod backplane;
mod tier;

pub use backplane::{
    malformed, Backplane, Delivery, ParseStreamIdError, Read, StreamId, Subscription,
};
pub use tier::{Tier, TierError, TierFuture};
