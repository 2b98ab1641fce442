//! The crate's error type.

use std::sync::Arc;

use layercache_tier::TierError;

/// What can go wrong in a [`TieredCache`](crate::TieredCache) operation.
///
/// L2 trouble is not among them for reads and loads: a sick L2 is a miss (and a metric), so
/// a caller's `get_or_load` fails only if its loader does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The loader returned an error (shared by every caller that waited on the same load).
    #[error("loader failed: {0}")]
    Loader(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// A value could not be encoded by the cache's codec.
    #[error("could not encode the value: {0}")]
    Encode(#[source] CodecError),
    /// A key could not be encoded.
    #[error("could not encode the key: {0}")]
    Key(String),
    /// An entry's tags are out of the envelope's limits (see
    /// [`EntryOptions::tags`](crate::EntryOptions::tags)); nothing was done.
    #[error("invalid tags: {0}")]
    Tag(String),
    /// A write to L2 failed (`set` and `remove` report it; reads and loads do not).
    #[error(transparent)]
    Tier(#[from] TierError),
}

/// A codec could not encode or decode a value.
#[derive(Debug, thiserror::Error)]
#[error("{codec}: {message}")]
pub struct CodecError {
    /// The codec's name.
    pub codec: &'static str,
    /// What went wrong.
    pub message: String,
}

impl CodecError {
    pub(crate) fn new(codec: &'static str, e: impl std::fmt::Display) -> Self {
        CodecError {
            codec,
            message: e.to_string(),
        }
    }
}
