//! Records: checksums (corruption made through redb directly), TTL on an injected clock,
//! batch order, extreme key and value sizes.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use layercache_disk::{DiskOptions, RECORD_HEADER_BYTES};
use layercache_tier::Tier;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::{charge, manual_clock, open};

/// The tier's record table, as documented in the crate docs ("On-disk layout").
const RECORDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("records");

/// Rewrites the record of `key` in the (closed) tier at `dir` with `edit`.
fn edit_record(dir: &Path, key: &[u8], edit: impl FnOnce(&mut Vec<u8>)) {
    let db = redb::Database::open(dir.join(layercache_disk::FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(RECORDS).unwrap();
        let mut record = table.get(key).unwrap().unwrap().value().to_vec();
        edit(&mut record);
        table.insert(key, record.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

fn record_of(dir: &Path, key: &[u8]) -> Option<Vec<u8>> {
    let db = redb::Database::open(dir.join(layercache_disk::FILE_NAME)).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(RECORDS).unwrap();
    let record = table.get(key).unwrap().map(|r| r.value().to_vec());
    record
}

#[tokio::test]
async fn corrupt_records_are_misses_deleted_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open(dir.path(), DiskOptions::new(1 << 20));
    for k in [&b"a"[..], b"b", b"c", b"d", b"e", b"f"] {
        tier.set(k, &[k[0]; 100], Some(Duration::from_secs(3600)))
            .await
            .unwrap();
    }
    let used = tier.used_bytes();
    drop(tier);

    // The layout is as documented: header, then the payload.
    let a = record_of(dir.path(), b"a").unwrap();
    assert_eq!(a.len() as u64, RECORD_HEADER_BYTES + 100);
    assert_eq!(&a[RECORD_HEADER_BYTES as usize..], &[b'a'; 100]);

    edit_record(dir.path(), b"b", |r| r[50] ^= 0x01); // payload bit
    edit_record(dir.path(), b"c", |r| r[0] ^= 0xff); // checksum byte
    edit_record(dir.path(), b"d", |r| r.truncate(10)); // torn: shorter than a header
    edit_record(dir.path(), b"e", |r| r[6] ^= 0x80); // expiry byte
                                                     // Sequence number: made to name the index entry of "a" (deleting "f" must not unlink it).
    edit_record(dir.path(), b"f", |r| r[13..21].copy_from_slice(&a[13..21]));

    let tier = open(dir.path(), DiskOptions::new(1 << 20));
    assert_eq!(tier.get(b"a").await.unwrap(), Some(vec![b'a'; 100]));
    let got = tier
        .get_many(&[b"b", b"c", b"d", b"e", b"f"])
        .await
        .unwrap();
    assert_eq!(got, vec![None; 5]);
    assert_eq!(tier.corrupt_records(), 5);
    assert_eq!(tier.len(), 1);
    // The counter drops by each corrupt record's key and length as found: for the record
    // truncated behind the tier's back, 11 bytes rather than the 122 it was charged (the
    // counter over-counts, on the safe side, until eviction empties the tier).
    assert_eq!(
        tier.used_bytes(),
        used - 4 * charge(b"b", &[0; 100]) - (1 + 10)
    );

    // The tier stays consistent: stale index entries of the deleted records do not disturb
    // writes and eviction.
    for k in [&b"b"[..], b"c", b"d", b"e", b"f"] {
        tier.set(k, b"new", None).await.unwrap();
        assert_eq!(tier.get(k).await.unwrap(), Some(b"new".to_vec()));
    }
    for i in 0..100u32 {
        tier.set(&i.to_le_bytes(), &[0; 20_000], None)
            .await
            .unwrap();
        assert!(tier.used_bytes() <= 1 << 20);
    }
    assert_eq!(tier.get(b"a").await.unwrap(), None, "evicted, oldest first");
    assert_eq!(tier.corrupt_records(), 5);
}

#[tokio::test]
async fn corrupt_records_met_by_eviction_are_deleted_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let max = 10 * charge(b"k0", &[0; 100]);
    let tier = open(dir.path(), DiskOptions::new(max));
    for i in 0..10 {
        tier.set(format!("k{i}").as_bytes(), &[0; 100], None)
            .await
            .unwrap();
    }
    drop(tier);
    // Damage the header's sequence number of the oldest: eviction cannot match it to its
    // index entry by header, checks the checksum, and deletes it as corrupt.
    edit_record(dir.path(), b"k0", |r| r[13] ^= 0x40);
    let tier = open(dir.path(), DiskOptions::new(max));
    tier.set(b"k10", &[0; 99], None).await.unwrap(); // as large as k0
    assert_eq!(tier.corrupt_records(), 1);
    assert_eq!(tier.used_bytes(), max);
    assert_eq!(tier.get(b"k1").await.unwrap(), Some(vec![0; 100]));
}

#[tokio::test]
async fn ttl_follows_the_injected_clock_and_expired_records_are_swept_for_room() {
    let dir = tempfile::tempdir().unwrap();
    let (now, options) = manual_clock(1 << 20, 1_000_000);
    let tier = open(dir.path(), options.clone());
    tier.set(b"short", b"1", Some(Duration::from_millis(100)))
        .await
        .unwrap();
    tier.set(b"long", b"2", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    tier.set(b"forever", b"3", None).await.unwrap();
    now.store(1_000_099, Ordering::Relaxed);
    assert_eq!(tier.get(b"short").await.unwrap(), Some(b"1".to_vec()));
    now.store(1_000_100, Ordering::Relaxed); // expiry is inclusive
    assert_eq!(tier.get(b"short").await.unwrap(), None);
    assert_eq!(
        (tier.expirations(), tier.len()),
        (1, 2),
        "deleted lazily on read"
    );

    // Expiry is absolute: it holds across a restart.
    drop(tier);
    now.store(1_060_000, Ordering::Relaxed);
    let tier = open(dir.path(), options);
    assert_eq!(tier.get(b"long").await.unwrap(), None);
    assert_eq!(tier.get(b"forever").await.unwrap(), Some(b"3".to_vec()));
    drop(tier);

    // When a write needs room, expired records go before live ones, whatever their age.
    let dir = tempfile::tempdir().unwrap();
    let entry = charge(b"k00", &[0; 1000]);
    let (now, options) = manual_clock(20 * entry, 5_000);
    let tier = open(dir.path(), options);
    for i in 0..20 {
        // Odd entries expire after 1 s; even ones never.
        let ttl = (i % 2 == 1).then_some(Duration::from_secs(1));
        tier.set(format!("k{i:02}").as_bytes(), &[0; 1000], ttl)
            .await
            .unwrap();
    }
    now.store(6_000, Ordering::Relaxed);
    for i in 20..30 {
        tier.set(format!("k{i:02}").as_bytes(), &[0; 1000], None)
            .await
            .unwrap();
    }
    assert_eq!(tier.evictions(), 0);
    assert_eq!(tier.expirations(), 10);
    for i in (0..30).filter(|i| i % 2 == 0 || *i >= 20) {
        let k = format!("k{i:02}");
        assert!(tier.get(k.as_bytes()).await.unwrap().is_some(), "{k}");
    }
    assert_eq!(tier.used_bytes(), 20 * entry);
}

#[tokio::test]
async fn batches_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open(dir.path(), DiskOptions::new(1 << 20));
    tier.set_many(
        &[(b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (b"c", b"")],
        None,
    )
    .await
    .unwrap();
    let got = tier
        .get_many(&[b"c", b"x", b"a", b"b", b"a", b""])
        .await
        .unwrap();
    let want: Vec<Option<Vec<u8>>> = vec![
        Some(vec![]),
        None,
        Some(b"3".to_vec()),
        Some(b"2".to_vec()),
        Some(b"3".to_vec()),
        None,
    ];
    assert_eq!(got, want);
    assert_eq!(tier.len(), 3);
    assert_eq!(
        tier.get_many(&[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    tier.set_many(&[], None).await.unwrap();
}

#[tokio::test]
async fn extreme_key_and_value_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open(dir.path(), DiskOptions::new(8 << 20));
    let big_key = vec![0xAB; 64 << 10];
    let big_value: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let cases: [(&[u8], &[u8]); 4] = [
        (b"", b""),
        (b"", b"empty key"),
        (&big_key, b""),
        (b"big value", &big_value),
    ];
    for (k, v) in cases {
        tier.set(k, v, None).await.unwrap();
        assert_eq!(tier.get(k).await.unwrap().as_deref(), Some(v));
    }
    tier.set(&big_key, &big_value, None).await.unwrap();
    drop(tier);
    let tier = open(dir.path(), DiskOptions::new(8 << 20));
    assert_eq!(tier.get(b"").await.unwrap(), Some(b"empty key".to_vec()));
    assert_eq!(tier.get(&big_key).await.unwrap(), Some(big_value.clone()));
    assert_eq!(
        tier.get(b"big value").await.unwrap(),
        Some(big_value.clone())
    );
    let want =
        charge(b"", b"empty key") + charge(&big_key, &big_value) + charge(b"big value", &big_value);
    assert_eq!(tier.used_bytes(), want);
}
