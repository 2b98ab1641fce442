//! Data survives the process: a child writes and exits, the parent reads everything back.

use std::time::{Duration, Instant};

use layercache_disk::DiskOptions;
use layercache_tier::Tier;

use crate::{charge, child_role, entries, open, pattern, runtime, Read, Watched};

const N: u64 = 500;
const MAX_BYTES: u64 = 64 << 20;
/// The longest the child may take (it takes well under a second); past that, it is killed
/// and the test fails.
const CHILD: Duration = Duration::from_secs(120);

fn key(i: u64) -> Vec<u8> {
    format!("restart-{i}").into_bytes()
}

/// The child: writes N entries (every third with a long TTL, the last ten by one
/// `set_many`) with the default durability, then exits normally.
#[test]
fn restart_child_writer() {
    let Some((dir, _)) = child_role() else { return };
    let rt = runtime();
    let tier = open(dir.as_ref(), DiskOptions::new(MAX_BYTES));
    rt.block_on(async {
        for i in 0..N - 10 {
            let ttl = (i % 3 == 0).then_some(Duration::from_secs(3600));
            tier.set(&key(i), &pattern(i), ttl).await.unwrap();
        }
        let (keys, values): (Vec<_>, Vec<_>) = (N - 10..N).map(|i| (key(i), pattern(i))).unzip();
        tier.set_many(&entries(&keys, &values), None).await.unwrap();
    });
    println!("wrote {N}");
}

#[tokio::test]
async fn entries_written_by_another_process_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Watched::spawn("restart::restart_child_writer", dir.path(), "");
    let deadline = Instant::now() + CHILD;
    let what = "the restart child";
    let mut stdout = String::new();
    // Bounded: each read waits until the deadline at the latest.
    while let Read::Line(line) = child.read(deadline, what) {
        stdout.push_str(&line);
    }
    let status = child.exit_status(deadline, what);
    assert!(status.success(), "the child failed: {status:?}");
    assert!(stdout.contains(&format!("wrote {N}")));

    let expected: u64 = (0..N).map(|i| charge(&key(i), &pattern(i))).sum();
    for round in 0..2 {
        let tier = open(dir.path(), DiskOptions::new(MAX_BYTES));
        assert_eq!(tier.len(), N, "round {round}");
        assert_eq!(tier.used_bytes(), expected, "round {round}");
        for i in 0..N {
            assert_eq!(
                tier.get(&key(i)).await.unwrap(),
                Some(pattern(i)),
                "entry {i}"
            );
        }
        assert_eq!(tier.corrupt_records(), 0);
        // Closing in this process and reopening keeps everything too.
    }
}
