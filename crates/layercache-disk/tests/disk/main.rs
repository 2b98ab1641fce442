//! Integration tests of `DiskTier` (one binary: the crash and restart tests re-run it as a
//! child process).

mod bound;
mod crash;
mod records;
mod restart;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use layercache_disk::{DiskOptions, DiskTier};

/// `keys[i]` paired with `values[i]`, borrowed as `Tier::set_many` takes them.
pub(crate) fn entries<'a, K: AsRef<[u8]>>(
    keys: &'a [K],
    values: &'a [Vec<u8>],
) -> Vec<(&'a [u8], &'a [u8])> {
    keys.iter()
        .zip(values)
        .map(|(k, v)| (k.as_ref(), v.as_slice()))
        .collect()
}

/// Set in a child process: the directory the child works in.
pub(crate) const CHILD_DIR: &str = "LAYERCACHE_DISK_TEST_CHILD_DIR";
/// Set in a child process: scenario-specific settings.
pub(crate) const CHILD_ARG: &str = "LAYERCACHE_DISK_TEST_CHILD_ARG";

/// The child's directory and argument if this process is a child (the test named `test`
/// acting as the child), else `None` (the test is then a no-op).
pub(crate) fn child_role() -> Option<(String, String)> {
    let dir = std::env::var(CHILD_DIR).ok()?;
    Some((dir, std::env::var(CHILD_ARG).unwrap_or_default()))
}

/// Re-runs this test binary as a child that runs only `test` (an exact test path), with
/// stdout piped.
pub(crate) fn spawn_child(test: &str, dir: &Path, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ARG, arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// A value that says which write `i` it is: `i` (8 bytes, LE) then 0 to 4095 bytes of a
/// xorshift stream seeded by `i`.
pub(crate) fn pattern(i: u64) -> Vec<u8> {
    let len = (i.wrapping_mul(7919) % 4096) as usize;
    let mut v = Vec::with_capacity(8 + len);
    v.extend_from_slice(&i.to_le_bytes());
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// The write `i` that `v` is exactly the value of, or `None` if it is no such value.
pub(crate) fn parse_pattern(v: &[u8]) -> Option<u64> {
    let i = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    (pattern(i) == v).then_some(i)
}

/// A manual clock (unix milliseconds) and options using it.
pub(crate) fn manual_clock(max_bytes: u64, start: u64) -> (Arc<AtomicU64>, DiskOptions) {
    let now = Arc::new(AtomicU64::new(start));
    let c = Arc::clone(&now);
    let options = DiskOptions::new(max_bytes).clock(move || c.load(Ordering::Relaxed));
    (now, options)
}

/// The counted bytes of an entry.
pub(crate) fn charge(key: &[u8], value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64 + layercache_disk::RECORD_HEADER_BYTES
}

/// A current-thread runtime, for tests that are plain `#[test]`s (the child roles).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

pub(crate) fn open(dir: &Path, options: DiskOptions) -> DiskTier {
    DiskTier::open(dir, options).unwrap()
}
