//! Cache traces for layercache: streaming readers for real traces, synthetic
//! workload generators, and Belady's OPT as a reference policy.
//!
//! ```no_run
//! use std::path::Path;
//! use layercache_trace::{belady, read_all, Format, TraceReader};
//!
//! // Stream a trace (format from the file name, zstd decompressed on the fly).
//! let mut requests = 0u64;
//! for request in TraceReader::open(Path::new("arc/OLTP.lis.zst"), None)? {
//!     let _key = request?.key;
//!     requests += 1;
//! }
//!
//! // Or load it and compute the optimal hit ratio at 1000 entries.
//! let trace = read_all(Path::new("lirs/loop.trace.gz"), Some(Format::Lirs))?;
//! println!("OPT hit ratio: {:.4}", belady(&trace, 1000, false).hit_ratio());
//! # Ok::<(), layercache_trace::TraceError>(())
//! ```
//!
//! # Formats
//!
//! Every reader yields [`Request`]s `{ key: u64, size: u32 }`; formats without
//! object sizes give `size = 1` ([`Format::has_sizes`]).
//!
//! | [`Format`] | name | layout | key | size |
//! |---|---|---|---|---|
//! | [`Arc`](Format::Arc) | `arc` | text lines `start_block num_blocks ignore request_no` | each line is `num_blocks` requests for `start_block ..= start_block + num_blocks - 1`, yielded one by one | 1 |
//! | [`Lirs`](Format::Lirs) | `lirs` | one integer key per line; blank lines and lines starting with `*` skipped | the integer (a negative one as its two's-complement `u64`) | 1 |
//! | [`Cache2k`](Format::Cache2k) | `cache2k` | big-endian `i32` per request | the value zero-extended: `v as u32 as u64` | 1 |
//! | [`OracleGeneral`](Format::OracleGeneral) | `oracle-general` | packed little-endian 24-byte records `u32 clock_time, u64 obj_id, u32 obj_size, i64 next_access_vtime` | `obj_id` | `obj_size` |
//! | [`LibCacheSimCsv`](Format::LibCacheSimCsv) | `csv` | `version,time,op,size,lbn`; the header is optional and may reorder columns; every record is yielded | `lbn` | `size` |
//! | [`TwitterCsv`](Format::TwitterCsv) | `twitter` | `timestamp,anon_key,key_size,value_size,client_id,op,ttl`, no header; only `get`/`gets` are yielded | 64-bit FNV-1a of `anon_key` (seed-free, so reproducible) | `key_size + value_size` |
//!
//! Text lines may end in `\n` or `\r\n`; CSV fields are not quoted. Text
//! lines longer than 64 KiB are malformed.
//!
//! ## Format detection
//! [`Format::from_path`] looks only at the name (after a compression
//! suffix): `.lis` is ARC, `.oracleGeneral[.bin]` is oracleGeneral, `.csv` is
//! libCacheSim CSV. `.trace` is used both by the LIRS traces (text) and the
//! cache2k traces (binary), so it is resolved by the parent directory name
//! (`lirs/` or `cache2k/`) and is otherwise `None`. [`TraceReader::open`]
//! with no format uses [`Format::detect`], which also sniffs content: the
//! first line of a `.csv` file decides between libCacheSim and Twitter, and a
//! `.trace` file in another directory is LIRS if its first 4 KiB are
//! printable text, cache2k otherwise. Pass a format explicitly whenever the
//! name is ambiguous.
//!
//! # Compression
//! Decompression is transparent and chosen by the last extension
//! ([`Compression`]): `.zst` (zstd), `.gz` (gzip, multi-member) and `.xz`
//! (xz, multi-stream). Readers stream through a 64 KiB buffer and never load
//! the whole file.
//!
//! # Errors
//! Everything fails with [`TraceError`]. I/O and decompression failures
//! (including corrupt or truncated compressed data) are
//! [`TraceError::Io`]; a bad record (non-numeric field, wrong field count,
//! truncated binary record, over-long line, invalid UTF-8) is
//! [`TraceError::Malformed`], naming the file and the 1-based line (text) or
//! record (binary) number, e.g. `OLTP.lis: line 17: expected 4 fields, found 2`.
//! A [`TraceReader`] stops after its first error. No input makes a reader
//! panic.
//!
//! # Belady's OPT
//! [`belady`] (and [`Belady`] for several capacities over one trace)
//! simulates the offline optimal policy of L. A. Belady, "A study of
//! replacement algorithms for a virtual-storage computer", IBM Systems
//! Journal 5(2), 1966: on a miss with a full cache, evict the object whose
//! next request is farthest in the future (never again counts as infinitely
//! far). Next uses are precomputed in one backward pass.
//!
//! * **Unit size** (`weighted = false`, capacity in entries): demand paging,
//!   i.e. every missed object is inserted ([`opt::Admission::Always`]). This is
//!   the variant that reproduces the reference hit counts on `OLTP.lis`
//!   (capacity 250 → 351,350; 500 → 424,319; 1000 → 490,093; 2000 → 552,149)
//!   and every OPT column of the traces README. Allowing the missed object
//!   to be bypassed ([`opt::Admission::Bypass`], via
//!   [`Belady::simulate_with`]) is the true optimum when admission may be
//!   refused and is slightly higher (e.g. 351,662 at 250).
//! * **Weighted** (`weighted = true`, capacity in bytes): libCacheSim's
//!   size-unaware Belady. An object larger than the capacity is a miss and is
//!   not inserted; otherwise the farthest-next-use objects are evicted until
//!   `used + size <= capacity` and the object is inserted. A hit only updates
//!   the next use. This reproduces libCacheSim's regression values on
//!   `cloudPhysicsIO.oracleGeneral.bin` exactly (miss counts 79256 … 48974 at
//!   128 … 1024 MiB). It is a heuristic, not the optimum, for variable sizes.
//!
//! # Synthetic workloads
//! [`synth`] has seeded, reproducible generators: [`synth::Zipf`]
//! (rejection-inversion sampling), [`synth::Scan`], [`synth::Loop`] and
//! [`synth::Mix`].
//!
//! # Trace sources
//! * ARC traces (`OLTP`, `P3`): N. Megiddo and D. S. Modha, "ARC: A
//!   Self-Tuning, Low Overhead Replacement Cache", USENIX FAST '03.
//! * LIRS traces (`loop`, `sprite`, `multi2`, `gli`): S. Jiang and X. Zhang,
//!   "LIRS: An Efficient Low Inter-reference Recency Set Replacement Policy
//!   to Improve Buffer Cache Performance", ACM SIGMETRICS '02.
//! * cache2k benchmark traces (`web07`), © headissue GmbH, CC BY 4.0.
//! * libCacheSim (oracleGeneral and CSV formats, the CloudPhysics sample):
//!   J. Yang et al., <https://github.com/1a1a11a/libCacheSim>.
//! * Twitter cache traces: J. Yang, Y. Yue and K. V. Rashmi, "A large scale
//!   analysis of hundreds of in-memory cache clusters at Twitter", OSDI '20.
//!
//! Where the workspace's tests find these traces, where each one can be downloaded, and
//! what a test does when they are absent: [`shared_traces`].

use std::path::Path;

mod error;
mod format;
pub mod opt;
mod reader;
pub mod shared_traces;
pub mod synth;

pub use error::{RecordUnit, TraceError};
pub use format::{Compression, Format};
pub use opt::{belady, Belady, OptResult};
pub use reader::TraceReader;

/// One request of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Request {
    /// The requested key.
    pub key: u64,
    /// The object's size in bytes; 1 for formats without sizes.
    pub size: u32,
}

/// Reads a whole trace into memory (see [`TraceReader::open`] for `format`).
pub fn read_all(path: &Path, format: Option<Format>) -> Result<Vec<Request>, TraceError> {
    TraceReader::open(path, format)?.collect()
}
