//! SIGKILL during writes: the reopened tier holds exactly what the bound model says some
//! prefix of the child's writes leaves, and with `Durability::Immediate` that prefix is every
//! acknowledged write (and at most the one in flight).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use layercache_disk::{DiskOptions, DiskTier, Durability};
use layercache_tier::Tier;

use crate::bound::Model;
use crate::{charge, child_role, open, parse_pattern, pattern, runtime, Read, Watched};

const KEYS: u64 = 128;
/// About half of KEYS values of up to 4 KiB: nearly every write of the child evicts.
const MAX_BYTES: u64 = 128 << 10;
/// The most ops a child makes: far more than any round waits for (it kills the child once
/// 150 + 97 × round writes have been acknowledged), a bound in case the parent is gone.
const CHILD_OPS: usize = 10_000;
/// The longest a round may take, from starting the child to reading its end (a round takes
/// well under a second); past that, the child is killed and the test fails.
const ROUND: Duration = Duration::from_secs(120);

fn key(k: u64) -> Vec<u8> {
    format!("crash-{k}").into_bytes()
}

fn durability(arg: &str) -> Durability {
    match arg {
        "immediate" => Durability::Immediate,
        _ => Durability::Periodic(Duration::from_millis(20)),
    }
}

/// One write of the child: write `i` is `pattern(i)` under `key(i % KEYS)`.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `set` of write `i`.
    Set(u64),
    /// One `set_many` of writes `i..i + 4`.
    Batch(u64),
    /// `delete` of `key(i % KEYS)`.
    Delete(u64),
}

impl Op {
    /// The number the child prints once the op has returned.
    fn last(self) -> u64 {
        match self {
            Op::Batch(i) => i + 3,
            Op::Set(i) | Op::Delete(i) => i,
        }
    }

    /// The op, on the bound model.
    fn apply(self, model: &mut Model) {
        match self {
            Op::Set(i) => model.set(&key(i % KEYS), &pattern(i), MAX_BYTES),
            Op::Batch(i) => {
                for j in i..i + 4 {
                    model.set(&key(j % KEYS), &pattern(j), MAX_BYTES);
                }
            }
            Op::Delete(i) => model.remove(&key(i % KEYS)),
        }
    }
}

/// The child's ops from write `start` on: every 16th write starts a `set_many` of 4, every
/// 50th (not in a batch) is a delete, the rest are `set`s.
fn schedule(start: u64) -> impl Iterator<Item = Op> {
    let mut i = start;
    std::iter::from_fn(move || {
        let op = if i.is_multiple_of(16) {
            Op::Batch(i)
        } else if i.is_multiple_of(50) {
            Op::Delete(i)
        } else {
            Op::Set(i)
        };
        i = op.last() + 1;
        Some(op)
    })
}

/// The child: runs `schedule(start)`, printing `acked n` (`n` = `Op::last`) after each op
/// returns, until it is killed (or has made `CHILD_OPS` ops, or run for a minute).
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
        for op in schedule(start).take(CHILD_OPS) {
            // Bounded in count and time, in case the parent dies without killing this child.
            if started.elapsed() >= Duration::from_secs(60) {
                break;
            }
            match op {
                Op::Set(i) => tier.set(&key(i % KEYS), &pattern(i), None).await.unwrap(),
                Op::Batch(i) => {
                    let ks: Vec<_> = (i..i + 4).map(|j| key(j % KEYS)).collect();
                    let vs: Vec<_> = (i..i + 4).map(pattern).collect();
                    let batch: Vec<(&[u8], &[u8])> =
                        ks.iter().zip(&vs).map(|(k, v)| (&k[..], &v[..])).collect();
                    tier.set_many(&batch, None).await.unwrap();
                }
                Op::Delete(i) => tier.delete(&key(i % KEYS)).await.unwrap(),
            }
            println!("acked {}", op.last());
        }
    });
}

/// What the tier holds: key → value, for the child's keys.
async fn contents(tier: &DiskTier) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    for k in 0..KEYS {
        if let Some(v) = tier.get(&key(k)).await.unwrap() {
            out.insert(key(k), v);
        }
    }
    out
}

/// Whether `model` holds exactly `found`.
fn same(model: &Model, found: &BTreeMap<Vec<u8>, Vec<u8>>) -> bool {
    model.entries.len() == found.len()
        && model
            .entries
            .iter()
            .all(|(k, v)| found.get(k).is_some_and(|f| f == v))
}

/// The keys where `model` and `found` differ, with the write each holds (at most 8).
fn differences(model: &Model, found: &BTreeMap<Vec<u8>, Vec<u8>>) -> String {
    let want: BTreeMap<&Vec<u8>, &Vec<u8>> = model.entries.iter().map(|(k, v)| (k, v)).collect();
    let write = |v: Option<&Vec<u8>>| v.map(|v| parse_pattern(v));
    let keys: std::collections::BTreeSet<&Vec<u8>> =
        want.keys().copied().chain(found.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| want.get(k).copied() != found.get(*k))
        .take(8)
        .map(|k| {
            format!(
                "{}: model {:?}, tier {:?}",
                String::from_utf8_lossy(k),
                write(want.get(k).copied()),
                write(found.get(k))
            )
        })
        .collect();
    diff.join("; ")
}

#[tokio::test]
async fn a_killed_writer_leaves_only_values_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let mut next = 0u64;
    // What the tier holds when a round starts.
    let mut model = Model::default();
    for round in 0..4 {
        let mode = if round % 2 == 0 {
            "immediate"
        } else {
            "periodic"
        };
        std::fs::write(dir.path().join("next"), next.to_string()).unwrap();
        let mut child = Watched::spawn("crash::crash_child_writer", dir.path(), mode);
        // Every read is bounded: past the round's deadline (or a long silence), the child
        // is killed and the test fails, naming the round and the last line read.
        let deadline = Instant::now() + ROUND;
        let what = format!("round {round} ({mode})");
        // Kill it after a varying number of acknowledged writes, then read what it
        // printed before it died: `acked` counts the ops it acknowledged (whole lines).
        let target = next + 150 + 97 * round;
        let mut acked = 0;
        let mut killed = false;
        loop {
            let line = match child.read(deadline, &what) {
                Read::Line(line) if line.ends_with('\n') => line,
                _ => break, // the end, or a line cut short by the kill
            };
            // The harness may print on the same line before the first ack.
            let Some((_, printed)) = line.trim_end().rsplit_once("acked ") else {
                continue;
            };
            let printed: u64 = printed.parse().unwrap();
            let expected = schedule(next).nth(acked).unwrap();
            assert_eq!(printed, expected.last(), "round {round}: ack {acked}");
            acked += 1;
            if printed >= target && !killed {
                child.kill(); // SIGKILL
                killed = true;
            }
        }
        assert!(
            killed,
            "round {round}: the child stopped before write {target}"
        );
        // The acknowledged ops, and the one that may have been in flight.
        let ops: Vec<Op> = schedule(next).take(acked + 1).collect();

        let reopen = Instant::now();
        let tier = open(dir.path(), DiskOptions::new(MAX_BYTES));
        let reopen = reopen.elapsed();
        let found = contents(&tier).await;
        let mut counted = 0;
        for (k, v) in &found {
            let i = parse_pattern(v).unwrap_or_else(|| {
                panic!("round {round}: {} is corrupt", String::from_utf8_lossy(k))
            });
            assert_eq!(
                key(i % KEYS),
                *k,
                "round {round}: a value under another key"
            );
            counted += charge(k, v);
        }
        assert_eq!(tier.corrupt_records(), 0, "round {round}");
        assert!(tier.used_bytes() <= MAX_BYTES);
        assert_eq!(
            tier.used_bytes(),
            counted,
            "round {round}: counter ≠ entries"
        );
        assert_eq!(tier.len(), found.len() as u64, "round {round}");

        // The tier holds exactly the model after some prefix of the ops: every acknowledged
        // one and perhaps the one in flight (Immediate), or those of the last durable commit
        // (Periodic).
        let mut prefixes = Vec::new();
        let mut state = model.clone();
        let mut acked_state = None;
        for n in 0..=acked + 1 {
            if n > 0 {
                ops[n - 1].apply(&mut state);
            }
            if state.used == counted && same(&state, &found) {
                prefixes.push(n);
            }
            if n == acked {
                acked_state = Some(state.clone());
            }
        }
        let acked_state = acked_state.unwrap();
        assert!(
            acked_state.evicted > 0,
            "round {round}: the ops evict nothing"
        );
        if mode == "immediate" {
            assert!(
                prefixes.iter().any(|&n| n >= acked),
                "round {round}: not the state after the {acked} acknowledged ops (or one \
                 more){}; against the acknowledged state: {}",
                if prefixes.is_empty() {
                    String::new()
                } else {
                    format!(", but after {prefixes:?}")
                },
                differences(&acked_state, &found)
            );
            assert!(!found.is_empty());
        } else {
            assert!(
                !prefixes.is_empty(),
                "round {round}: no prefix of the {acked} acknowledged ops (or one more) leaves \
                 this; against the acknowledged state: {}",
                differences(&acked_state, &found)
            );
        }
        eprintln!(
            "round {round} ({mode}): killed after {acked} ops (to write {}), {} keys back, \
             the state after {prefixes:?} ops, reopened in {reopen:?}",
            ops[acked - 1].last(),
            found.len()
        );
        // The store is usable after the crash.
        tier.set(b"after", b"crash", None).await.unwrap();
        assert_eq!(tier.get(b"after").await.unwrap(), Some(b"crash".to_vec()));
        tier.delete(b"after").await.unwrap();
        // The next round starts from what the tier holds now (that write may have evicted),
        // after every write this child may have made.
        let now = contents(&tier).await;
        let mut held: Vec<(u64, Vec<u8>, Vec<u8>)> = now
            .into_iter()
            .map(|(k, v)| (parse_pattern(&v).unwrap(), k, v))
            .collect();
        held.sort_by_key(|(i, _, _)| *i);
        model = Model::with(held.into_iter().map(|(_, k, v)| (k, v)));
        next = ops[acked].last() + 1;
    }
}
