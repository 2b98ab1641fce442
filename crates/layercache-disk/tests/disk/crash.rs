//! SIGKILL during writes: whatever the reopened tier serves is exactly a value the child
//! wrote, and with `Durability::Immediate` nothing acknowledged is lost.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use layercache_disk::{DiskOptions, Durability};
use layercache_tier::Tier;

use crate::{charge, child_role, open, parse_pattern, pattern, runtime, spawn_child};

const KEYS: u64 = 128;
/// Smaller than KEYS values of up to 4 KiB: the child also evicts.
const MAX_BYTES: u64 = 256 << 10;

fn key(k: u64) -> Vec<u8> {
    format!("crash-{k}").into_bytes()
}

fn durability(arg: &str) -> Durability {
    match arg {
        "immediate" => Durability::Immediate,
        _ => Durability::Periodic(Duration::from_millis(20)),
    }
}

/// The child: writes `pattern(i)` under `key(i % KEYS)` for i = 0, 1, 2, ... (every 16th
/// write a `set_many` of 4, every 50th a delete), printing `acked i` after each write
/// returns, until it is killed.
#[test]
fn crash_child_writer() {
    let Some((dir, arg)) = child_role() else {
        return;
    };
    let tier = open(
        dir.as_ref(),
        DiskOptions::new(MAX_BYTES).durability(durability(&arg)),
    );
    let start: u64 = std::fs::read_to_string(std::path::Path::new(&dir).join("next"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let rt = runtime();
    let started = Instant::now();
    rt.block_on(async {
        let mut i = start;
        // Bounded, in case the parent dies without killing this child.
        while started.elapsed() < Duration::from_secs(60) {
            if i.is_multiple_of(16) {
                let ks: Vec<_> = (i..i + 4).map(|j| key(j % KEYS)).collect();
                let vs: Vec<_> = (i..i + 4).map(pattern).collect();
                let batch: Vec<(&[u8], &[u8])> =
                    ks.iter().zip(&vs).map(|(k, v)| (&k[..], &v[..])).collect();
                tier.set_many(&batch, None).await.unwrap();
                i += 4;
            } else if i.is_multiple_of(50) {
                tier.delete(&key(i % KEYS)).await.unwrap();
                i += 1;
            } else {
                tier.set(&key(i % KEYS), &pattern(i), None).await.unwrap();
                i += 1;
            }
            println!("acked {}", i - 1);
        }
    });
}

#[tokio::test]
async fn a_killed_writer_leaves_only_values_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let mut next = 0u64;
    for round in 0..4 {
        let mode = if round % 2 == 0 {
            "immediate"
        } else {
            "periodic"
        };
        std::fs::write(dir.path().join("next"), next.to_string()).unwrap();
        let mut child = KillOnDrop(spawn_child("crash::crash_child_writer", dir.path(), mode));
        let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        // Kill it after a varying number of acknowledged writes.
        let target = next + 150 + 97 * round;
        let mut acked = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(i) = line.strip_prefix("acked ") {
                let i: u64 = i.parse().unwrap();
                acked = Some(i);
                if i >= target {
                    break;
                }
            }
        }
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        let acked = acked.expect("the child acknowledged no write");

        let reopen = Instant::now();
        let tier = open(dir.path(), DiskOptions::new(MAX_BYTES));
        let reopen = reopen.elapsed();
        let mut counted = 0;
        let mut present = 0;
        for k in 0..KEYS {
            let Some(v) = tier.get(&key(k)).await.unwrap() else {
                continue;
            };
            let i =
                parse_pattern(&v).unwrap_or_else(|| panic!("round {round}: key {k} is corrupt"));
            assert_eq!(i % KEYS, k, "round {round}: a value under another key");
            assert!(i <= acked + 4, "round {round}: write {i} was never made");
            if mode == "immediate" {
                // Not older than the last acknowledged write (or delete) of this key: an
                // absent key may have been evicted, a present one cannot have gone back.
                let last_acked = (next..=acked).rev().find(|j| j % KEYS == k);
                if let Some(j) = last_acked {
                    assert!(
                        i >= j,
                        "round {round}: key {k} has write {i}, lost write {j}"
                    );
                }
            }
            counted += charge(&key(k), &v);
            present += 1;
        }
        assert_eq!(tier.corrupt_records(), 0, "round {round}");
        assert!(tier.used_bytes() <= MAX_BYTES);
        assert_eq!(
            tier.used_bytes(),
            counted,
            "round {round}: counter ≠ entries"
        );
        assert_eq!(tier.len(), present, "round {round}");
        if mode == "immediate" {
            assert!(present > 0);
        }
        eprintln!("round {round} ({mode}): killed after write {acked}, {present} keys back, reopened in {reopen:?}");
        // The store is usable after the crash.
        tier.set(b"after", b"crash", None).await.unwrap();
        assert_eq!(tier.get(b"after").await.unwrap(), Some(b"crash".to_vec()));
        tier.delete(b"after").await.unwrap();
        next = acked + 5;
    }
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
