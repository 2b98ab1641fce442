//! The crate's [`Error`].

use std::path::PathBuf;

/// Why opening (or, wrapped in a [`TierError`](layercache_tier::TierError), using) a
/// [`DiskTier`](crate::DiskTier) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The options cannot be used (a `max_bytes` of 0).
    #[error("invalid disk tier options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: &'static str,
    },
    /// The tier's directory could not be created.
    #[error("cannot create the disk tier directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The store is already open, by this process or another one (the file is locked).
    #[error("the disk tier at {path} is already open")]
    AlreadyOpen {
        /// The store's file.
        path: PathBuf,
    },
    /// The store was written by a version of this crate with another layout.
    #[error("the disk tier at {path} has layout {found}; this version reads layout {supported}")]
    UnsupportedLayout {
        /// The store's file.
        path: PathBuf,
        /// The layout found in the file.
        found: u64,
        /// The layout this version reads and writes.
        supported: u64,
    },
    /// The store failed: an I/O error, a file that is not a store, a corrupted file structure.
    #[error("the disk tier at {path} failed: {source}")]
    Store {
        /// The store's file.
        path: PathBuf,
        /// The store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
