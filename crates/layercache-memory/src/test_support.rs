//! Bounds for tests whose threads could hang (`#[cfg(test)]` only). The integration tests
//! use this same file: `tests/common/mod.rs` includes it by path, since they cannot see this
//! crate's test code.

use std::panic::resume_unwind;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `f` on a thread of its own and returns what it returns (re-raising its panic, if it
/// panicked); fails the test with "the test hung: ..." if `f` has not finished after `secs`
/// seconds. A test whose threads could block forever (a lock, a join, a wait for a load) runs
/// its body under this, so that a hang fails the test instead of stalling the run; the hung
/// threads are left behind and end with the test binary.
///
/// Under Miri, `f` runs on the calling thread: Miri itself fails a run whose threads all
/// block, and its clock is virtual (a fixed time per step interpreted), so a limit in
/// seconds says nothing there.
#[track_caller]
pub(crate) fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    if cfg!(miri) {
        return f();
    }
    let (tx, rx) = mpsc::channel();
    let name = thread::current()
        .name()
        .map_or_else(|| "test body".to_string(), |n| format!("{n} (body)"));
    let body = thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn the test body");
    match rx.recv_timeout(Duration::from_secs(secs)) {
        // The body sent its result as its last step: the join only waits for it to return.
        Ok(v) => {
            let _ = body.join();
            v
        }
        Err(RecvTimeoutError::Timeout) => {
            panic!("the test hung: {what} did not finish within {secs} s")
        }
        Err(RecvTimeoutError::Disconnected) => match body.join() {
            Err(panic) => resume_unwind(panic),
            Ok(()) => unreachable!("the body returned without sending its result"),
        },
    }
}

/// A time limit for the waits of one test (a thread spinning until another one is done, a
/// poll until a condition holds). Copied into each thread that waits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Instant,
    secs: u64,
}

impl Deadline {
    /// `secs` seconds from now.
    pub(crate) fn after(secs: u64) -> Self {
        Deadline {
            at: Instant::now() + Duration::from_secs(secs),
            secs,
        }
    }

    /// Whether the deadline has passed.
    pub(crate) fn passed(&self) -> bool {
        Instant::now() > self.at
    }

    /// Fails (panics on the calling thread) once the deadline has passed, saying what the
    /// caller was still waiting for. Called on each round of a wait loop.
    #[track_caller]
    pub(crate) fn check(&self, waiting_for: std::fmt::Arguments<'_>) {
        if self.passed() {
            panic!("still waiting for {waiting_for} after {} s", self.secs);
        }
    }
}
