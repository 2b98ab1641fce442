//! Reading the shared traces in the examples that replay them.

use std::path::{Path, PathBuf};

use layercache_trace::{Format, Request};

/// The traces directory when `--traces` is not given: `LAYERCACHE_TRACES`, else
/// `../shared/traces` from the repository root, as the tests find it
/// ([`layercache_trace::shared_traces::dir`]).
pub(crate) fn default_dir() -> PathBuf {
    layercache_trace::shared_traces::dir()
}

/// Reads `file` (a path relative to the traces directory `dir`), choosing the format from
/// the extension and, where that is ambiguous, from the folder the README puts the trace in
/// (`cache2k/`, `lirs/`).
///
/// # Panics
/// If the trace cannot be read: the examples have nothing to do without it.
pub(crate) fn read(dir: &Path, file: &str) -> Vec<Request> {
    let path = dir.join(file);
    layercache_trace::read_all(&path, None)
        .or_else(|e| {
            let fallback = if file.starts_with("cache2k/") {
                Some(Format::Cache2k)
            } else if file.starts_with("lirs/") {
                Some(Format::Lirs)
            } else {
                None
            };
            match fallback {
                Some(f) => {
                    eprintln!("note: format detection failed for {file} ({e}); using {f:?}");
                    layercache_trace::read_all(&path, Some(f))
                }
                None => Err(e),
            }
        })
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
