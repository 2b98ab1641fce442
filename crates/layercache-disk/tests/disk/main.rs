//! Integration tests of `DiskTier` (one binary: the crash and restart tests re-run it as a
//! child process).

mod bound;
mod conditional;
mod crash;
mod records;
mod restart;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The longest a child may go without printing a line before the parent takes it for hung
/// (the children print a line every few milliseconds).
pub(crate) const SILENCE: Duration = Duration::from_secs(30);

/// A child started by [`spawn_child`], its stdout read on a thread so that every read the
/// parent makes has a deadline. Dropping it kills the child (SIGKILL, by pid) and reaps it.
pub(crate) struct Watched {
    child: Child,
    lines: Receiver<std::io::Result<String>>,
    /// The last line read, for failure messages.
    last: Option<String>,
    started: Instant,
}

/// One read of a child's stdout.
pub(crate) enum Read {
    /// A line as read: with its `\n`, unless the child died while printing it.
    Line(String),
    /// The end: the child closed its stdout (it exited or was killed).
    End,
}

impl Watched {
    /// Starts `test` as a child (see [`spawn_child`]).
    pub(crate) fn spawn(test: &str, dir: &Path, arg: &str) -> Self {
        let mut child = spawn_child(test, dir, arg);
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || read_lines(out, tx));
        Watched {
            child,
            lines,
            last: None,
            started: Instant::now(),
        }
    }

    /// The next read, waiting until `deadline` at the latest and [`SILENCE`] at the most.
    /// Past that, kills the child and fails the test, naming `what` (the round, say) and the
    /// last line read.
    pub(crate) fn read(&mut self, deadline: Instant, what: &str) -> Read {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(SILENCE);
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                let line = line.unwrap();
                self.last = Some(line.clone());
                Read::Line(line)
            }
            Err(RecvTimeoutError::Disconnected) => Read::End,
            Err(RecvTimeoutError::Timeout) => self.hung(deadline, what),
        }
    }

    /// The child's exit status once it has closed its stdout ([`Read::End`]), polled until
    /// `deadline` at the latest; past that, as for [`Watched::read`].
    pub(crate) fn exit_status(&mut self, deadline: Instant, what: &str) -> ExitStatus {
        // Bounded by the deadline; a child that has closed its stdout is exiting.
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                self.hung(deadline, what);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends SIGKILL to the child (by pid) and reaps it.
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn hung(&mut self, deadline: Instant, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let why = if Instant::now() >= deadline {
            format!(
                "not done by its deadline ({:?})",
                deadline.saturating_duration_since(self.started)
            )
        } else {
            format!("hung: no line for {SILENCE:?}")
        };
        panic!(
            "{what}: the child (pid {}) {why}; killed {:?} after it started; the last line \
             it printed: {:?}",
            self.child.id(),
            self.started.elapsed(),
            self.last.as_deref().unwrap_or("none")
        );
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line of `out` to `tx` (the last one even if cut short), or the read error,
/// until the end. Bounded: the end comes when the child dies, at the latest when the parent
/// drops its [`Watched`] and so kills it.
fn read_lines(mut out: impl BufRead, tx: mpsc::Sender<std::io::Result<String>>) {
    loop {
        let mut line = String::new();
        let read = match out.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => Ok(line),
            Err(e) => Err(e),
        };
        let failed = read.is_err();
        if tx.send(read).is_err() || failed {
            return;
        }
    }
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
