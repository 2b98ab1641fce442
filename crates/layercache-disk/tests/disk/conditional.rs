//! Conditional writes (`add`, `compare_and_set`): results, atomicity of concurrent adds,
//! TTLs on an injected clock, expired records counted as absent, exact byte comparison,
//! byte accounting and persistence.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use layercache_disk::DiskOptions;
use layercache_tier::Tier;

use crate::{charge, manual_clock, open};

const START: u64 = 1_700_000_000_000;

#[tokio::test]
async fn add_stores_only_over_nothing_live() {
    let dir = tempfile::tempdir().unwrap();
    let (now, options) = manual_clock(1 << 20, START);
    let tier = open(dir.path(), options);
    assert!(tier.supports_conditional_writes());

    assert!(tier.add(b"k", b"first", None).await.unwrap());
    assert!(!tier.add(b"k", b"second", None).await.unwrap());
    assert_eq!(tier.get(b"k").await.unwrap(), Some(b"first".to_vec()));
    // An empty value is a value.
    assert!(tier.add(b"e", b"", None).await.unwrap());
    assert!(!tier.add(b"e", b"x", None).await.unwrap());
    assert_eq!(tier.get(b"e").await.unwrap(), Some(Vec::new()));

    // With a TTL: live until the clock reaches it, then absent for add too.
    assert!(tier
        .add(b"t", b"lease", Some(Duration::from_secs(10)))
        .await
        .unwrap());
    now.store(START + 9_999, Ordering::Relaxed);
    assert!(!tier.add(b"t", b"other", None).await.unwrap());
    now.store(START + 10_000, Ordering::Relaxed);
    assert!(tier.add(b"t", b"other", None).await.unwrap());
    assert_eq!(tier.get(b"t").await.unwrap(), Some(b"other".to_vec()));
    assert_eq!(tier.len(), 3);
    assert_eq!(
        tier.used_bytes(),
        charge(b"k", b"first") + charge(b"e", b"") + charge(b"t", b"other")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_16_concurrent_adds_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let tier = Arc::new(open(dir.path(), DiskOptions::new(1 << 20)));
    for round in 0..5 {
        let key = format!("race-{round}").into_bytes();
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let tier = Arc::clone(&tier);
                let key = key.clone();
                tokio::spawn(async move { (i, tier.add(&key, &[i], None).await.unwrap()) })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (i, won) = task.await.unwrap();
            if won {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(tier.get(&key).await.unwrap(), Some(vec![winners[0]]));
    }
    assert_eq!(tier.len(), 5);
}

#[tokio::test]
async fn compare_and_set_replaces_only_an_exact_live_match() {
    let dir = tempfile::tempdir().unwrap();
    let (now, options) = manual_clock(1 << 20, START);
    let tier = open(dir.path(), options);

    // A match replaces value and TTL.
    tier.set(b"k", b"lease-1", Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let ttl = Some(Duration::from_secs(60));
    assert!(tier
        .compare_and_set(b"k", b"lease-1", b"value", ttl)
        .await
        .unwrap());
    assert_eq!(tier.get(b"k").await.unwrap(), Some(b"value".to_vec()));
    now.store(START + 59_999, Ordering::Relaxed);
    assert_eq!(tier.get(b"k").await.unwrap(), Some(b"value".to_vec()));
    // Without a TTL: no expiry any more.
    assert!(tier
        .compare_and_set(b"k", b"value", b"forever", None)
        .await
        .unwrap());
    now.store(START + 10_000_000, Ordering::Relaxed);
    assert_eq!(tier.get(b"k").await.unwrap(), Some(b"forever".to_vec()));
    assert_eq!(tier.used_bytes(), charge(b"k", b"forever"));

    // A mismatch leaves value and TTL alone.
    let t = START + 10_000_000;
    tier.set(b"k", b"value", Some(Duration::from_secs(1)))
        .await
        .unwrap();
    for wrong in [
        &b"lease-1"[..],
        b"valu",
        b"value\0",
        b"",
        b"VALUE",
        b"forever",
    ] {
        assert!(!tier
            .compare_and_set(b"k", wrong, b"new", None)
            .await
            .unwrap());
    }
    assert_eq!(tier.get(b"k").await.unwrap(), Some(b"value".to_vec()));
    now.store(t + 1_000, Ordering::Relaxed);
    assert_eq!(tier.get(b"k").await.unwrap(), None, "the TTL was kept");

    // Absent, deleted or expired: nothing matches, not even the old bytes or empty ones.
    assert!(!tier
        .compare_and_set(b"none", b"", b"new", None)
        .await
        .unwrap());
    assert_eq!(tier.get(b"none").await.unwrap(), None);
    tier.set(b"d", b"lease", None).await.unwrap();
    tier.delete(b"d").await.unwrap();
    assert!(!tier
        .compare_and_set(b"d", b"lease", b"stale", None)
        .await
        .unwrap());
    let t = now.load(Ordering::Relaxed);
    tier.set(b"x", b"lease", Some(Duration::from_millis(5)))
        .await
        .unwrap();
    now.store(t + 5, Ordering::Relaxed);
    assert!(!tier
        .compare_and_set(b"x", b"lease", b"late", None)
        .await
        .unwrap());
    assert_eq!(tier.get(b"x").await.unwrap(), None);
    assert_eq!(tier.len(), 0);
}

#[tokio::test]
async fn compare_and_set_compares_binary_bytes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open(dir.path(), DiskOptions::new(1 << 20));
    let key: &[u8] = &[0xff, 0x00, 0xfe];
    let stored: &[u8] = &[0x00, 0xff, 0xc3, 0x28, 0x00, 0x80];
    tier.set(key, stored, None).await.unwrap();
    for wrong in [
        &[0x00, 0xff, 0xc3, 0x28, 0x00, 0x81][..],
        &[0x00, 0x7f, 0xc3, 0x28, 0x00, 0x80],
        &[0x00, 0xff, 0xc3, 0x28, 0x00],
        &[0x00, 0xff, 0xc3, 0x28, 0x00, 0x80, 0x00],
        &[0x00],
    ] {
        assert!(!tier.compare_and_set(key, wrong, b"no", None).await.unwrap());
    }
    let new: &[u8] = &[0x00, 0x00, 0xfe, 0xff];
    assert!(tier.compare_and_set(key, stored, new, None).await.unwrap());
    assert_eq!(tier.get(key).await.unwrap().as_deref(), Some(new));
    assert!(tier
        .compare_and_set(key, new, &[0u8; 1000], None)
        .await
        .unwrap());
    assert_eq!(tier.get(key).await.unwrap(), Some(vec![0u8; 1000]));

    // compare_and_delete: only an exact match goes; an absent key is false.
    for wrong in [&[0u8; 999][..], &[0u8; 1001], b""] {
        assert!(!tier.compare_and_delete(key, wrong).await.unwrap());
    }
    assert!(tier.get(key).await.unwrap().is_some());
    assert!(tier.compare_and_delete(key, &[0u8; 1000]).await.unwrap());
    assert_eq!(tier.get(key).await.unwrap(), None);
    assert!(!tier.compare_and_delete(key, &[0u8; 1000]).await.unwrap());
}

#[tokio::test]
async fn conditional_writes_persist_and_respect_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let max = 200;
    {
        let tier = open(dir.path(), DiskOptions::new(max));
        assert!(tier.add(b"a", b"lease", None).await.unwrap());
        assert!(tier
            .compare_and_set(b"a", b"lease", b"v1", None)
            .await
            .unwrap());
        // A new value larger than the bound is not stored, and the matched value is gone.
        assert!(tier.add(b"b", b"lease", None).await.unwrap());
        let huge = vec![7u8; max as usize];
        assert!(!tier
            .compare_and_set(b"b", b"lease", &huge, None)
            .await
            .unwrap());
        assert_eq!(tier.get(b"b").await.unwrap(), None);
        assert!(!tier.add(b"c", &huge, None).await.unwrap());
        assert_eq!(tier.get(b"c").await.unwrap(), None);
        assert!(tier.used_bytes() <= max);
    }
    let tier = open(dir.path(), DiskOptions::new(max));
    assert_eq!(tier.get(b"a").await.unwrap(), Some(b"v1".to_vec()));
    assert!(!tier.add(b"a", b"again", None).await.unwrap());
    assert_eq!(tier.used_bytes(), charge(b"a", b"v1"));
}
