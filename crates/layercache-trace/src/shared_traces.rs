//! Where the shared real traces are, for the tests and examples that replay them.
//!
//! The real traces are data, not source: they are kept beside the repository, in
//! `../shared/traces` (relative to the repository root), or wherever [`DIR_VAR`]
//! (`LAYERCACHE_TRACES`) points; a relative `LAYERCACHE_TRACES` is taken from the repository
//! root. A checkout without them still builds and passes its tests: every test that replays
//! them starts with [`for_test`], which returns the paths when the files are there and
//! otherwise prints one line and lets the test pass without checking anything:
//!
//! ```text
//! skipped: traces not found at /home/me/shared/traces/arc/OLTP.lis.zst (arc_oltp; set LAYERCACHE_TRACES, or fetch them with scripts/fetch_traces.sh)
//! ```
//!
//! The line goes straight to the process's standard error, which the test harness does not
//! capture, so plain `cargo test` shows it for tests that pass. With [`REQUIRE_VAR`]
//! (`LAYERCACHE_REQUIRE_TRACES=1`, as CI sets it) a missing trace fails the test instead,
//! naming the missing path, so CI never skips them.
//!
//! ```no_run
//! use layercache_trace::shared_traces;
//!
//! let Some([oltp]) = shared_traces::for_test(["arc/OLTP.lis.zst"]) else {
//!     return; // skipped, and said so
//! };
//! let requests = layercache_trace::read_all(&oltp, None).unwrap();
//! # let _ = requests;
//! ```
//!
//! # Where the traces come from
//!
//! `scripts/fetch_traces.sh DIR` downloads them (where a network allows it) into the layout
//! below and checks each file's SHA-256 against the copies the figures in `BENCHMARKS.md`
//! and the tests were taken from. The addresses were found in the public repositories named
//! here; the script says which of them could not be tried from the machine it was written on.
//!
//! | file | public source |
//! |---|---|
//! | `arc/OLTP.lis.zst`, `arc/P3.lis.zst` | the ARC paper's traces (N. Megiddo and D. S. Modha, FAST '03; citing the paper is the condition of their release), zstd-compressed as in <https://github.com/moka-rs/cache-trace> (`arc/`) |
//! | `lirs/{loop,sprite,multi2,gli}.trace.gz` | the LIRS paper's traces (S. Jiang and X. Zhang, SIGMETRICS '02), gzipped as in Caffeine's simulator, <https://github.com/ben-manes/caffeine> (`simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser/lirs/`) |
//! | `cache2k/web07.trace.xz`, `cache2k/LICENSE.txt` | cache2k's benchmark traces, © headissue GmbH, CC BY 4.0, as in the same Caffeine directory (`…/parser/cache2k/`) |
//! | `libcachesim/cloudPhysicsIO.oracleGeneral.bin` | libCacheSim's test data (a CloudPhysics block I/O sample), <https://github.com/1a1a11a/libCacheSim> (`data/`) |

use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable that names the traces directory (default: `../shared/traces`
/// from the repository root).
pub const DIR_VAR: &str = "LAYERCACHE_TRACES";

/// The environment variable that makes a missing trace fail the test that needs it: set, and
/// neither empty nor `0` (CI sets `LAYERCACHE_REQUIRE_TRACES=1`).
pub const REQUIRE_VAR: &str = "LAYERCACHE_REQUIRE_TRACES";

/// The repository root, as this crate was built (`crates/layercache-trace` within it).
fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The traces directory: [`DIR_VAR`] if set (a relative path is taken from the repository
/// root), else `../shared/traces` beside the repository root. The directory need not exist.
///
/// The repository root is where this crate was compiled from, so the default is meaningful
/// for the workspace's own tests and examples only.
pub fn dir() -> PathBuf {
    let root = repo_root();
    match std::env::var_os(DIR_VAR) {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root
            .parent()
            .map_or_else(|| root.join(".."), Path::to_path_buf)
            .join("shared")
            .join("traces"),
    }
}

/// Whether [`REQUIRE_VAR`] asks for the traces.
pub fn required() -> bool {
    std::env::var_os(REQUIRE_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The paths of `names` (relative to [`dir`]) if all of them are files; `None` when one is
/// missing, after writing one line, `skipped: traces not found at <path> (<test>; …)`, to the
/// process's standard error (past the test harness's capture, so `cargo test` shows it).
///
/// # Panics
/// When a file is missing and [`required`] holds: the test that asked fails, naming the path.
pub fn for_test<const N: usize>(names: [&str; N]) -> Option<[PathBuf; N]> {
    let dir = dir();
    let paths = names.map(|n| dir.join(n));
    let Some(missing) = paths.iter().find(|p| !p.is_file()) else {
        return Some(paths);
    };
    let hint =
        format!("set {DIR_VAR} to their directory, or fetch them with scripts/fetch_traces.sh");
    if required() {
        panic!(
            "traces not found at {} ({REQUIRE_VAR} is set; {hint})",
            missing.display()
        );
    }
    let thread = std::thread::current();
    let test = thread.name().filter(|&n| n != "main").unwrap_or("test");
    // Straight to the file descriptor: `eprintln!` would be captured for a passing test.
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipped: traces not found at {} ({test}; {hint})",
        missing.display()
    );
    None
}
