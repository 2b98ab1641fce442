//! The byte bound: counted bytes never exceed `max_bytes` after a write, and eviction is
//! exactly oldest-written first (checked against a model).

use std::collections::VecDeque;

use layercache_disk::DiskOptions;
use layercache_tier::Tier;
use rand::{Rng, SeedableRng};

use crate::{charge, entries, open};

/// The tier's eviction, as a model: entries in write order.
#[derive(Clone, Default)]
pub(crate) struct Model {
    /// `(key, value)`, oldest-written first.
    pub(crate) entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Their counted bytes.
    pub(crate) used: u64,
    /// Entries evicted for room so far.
    pub(crate) evicted: u64,
}

impl Model {
    /// A model holding `entries`, given oldest-written first.
    pub(crate) fn with(entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        let entries: VecDeque<_> = entries.into_iter().collect();
        let used = entries.iter().map(|(k, v)| charge(k, v)).sum();
        Model {
            entries,
            used,
            evicted: 0,
        }
    }

    pub(crate) fn remove(&mut self, key: &[u8]) {
        if let Some(at) = self.entries.iter().position(|(k, _)| k == key) {
            let (k, v) = self.entries.remove(at).unwrap();
            self.used -= charge(&k, &v);
        }
    }

    pub(crate) fn set(&mut self, key: &[u8], value: &[u8], max: u64) {
        self.remove(key);
        let c = charge(key, value);
        if c > max {
            return;
        }
        while self.used + c > max {
            let (k, v) = self.entries.pop_front().unwrap();
            self.used -= charge(&k, &v);
            self.evicted += 1;
        }
        self.entries.push_back((key.to_vec(), value.to_vec()));
        self.used += c;
    }
}

#[tokio::test]
async fn counted_bytes_stay_within_the_bound_and_the_oldest_go_first() {
    const MAX: u64 = 64 << 10;
    let dir = tempfile::tempdir().unwrap();
    let tier = open(dir.path(), DiskOptions::new(MAX));
    let mut model = Model::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut written = 0u64;
    for n in 0..2_000u32 {
        // Keys from a pool (so some writes overwrite), values of random sizes; now and then
        // a value larger than the whole bound.
        let key = format!("key-{}", rng.gen_range(0..400)).into_bytes();
        let len = if n % 97 == 0 {
            MAX as usize
        } else {
            rng.gen_range(0..4096)
        };
        let value: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        written += charge(&key, &value);
        tier.set(&key, &value, None).await.unwrap();
        model.set(&key, &value, MAX);
        assert!(
            tier.used_bytes() <= MAX,
            "after set {n}: {}",
            tier.used_bytes()
        );
        assert_eq!(tier.used_bytes(), model.used, "after set {n}");
        assert_eq!(tier.len(), model.entries.len() as u64, "after set {n}");
        assert_eq!(tier.evictions(), model.evicted, "after set {n}");
        if n % 500 == 499 {
            check(&tier, &model).await;
        }
    }
    assert!(
        written > 50 * MAX,
        "the test must write far more than the bound"
    );
    assert!(tier.evictions() > 1_000);
    // The most recent entries are all there, and exactly the model's entries are.
    check(&tier, &model).await;
    let last = &model.entries.back().unwrap().0;
    assert!(tier.get(last).await.unwrap().is_some());

    // The counter survives a restart.
    let used = tier.used_bytes();
    drop(tier);
    let tier = open(dir.path(), DiskOptions::new(MAX));
    assert_eq!(tier.used_bytes(), used);
    check(&tier, &model).await;
}

async fn check(tier: &layercache_disk::DiskTier, model: &Model) {
    for (k, v) in &model.entries {
        assert_eq!(tier.get(k).await.unwrap().as_ref(), Some(v));
    }
    let mut present = 0;
    for i in 0..400 {
        let key = format!("key-{i}").into_bytes();
        present += usize::from(tier.get(&key).await.unwrap().is_some());
    }
    assert_eq!(present, model.entries.len());
}

#[tokio::test]
async fn a_record_larger_than_the_bound_is_not_stored_and_drops_the_old_value() {
    let dir = tempfile::tempdir().unwrap();
    let max = charge(b"k", &[0; 100]);
    let tier = open(dir.path(), DiskOptions::new(max));
    tier.set(b"k", &[1; 100], None).await.unwrap();
    assert_eq!(tier.used_bytes(), max, "an entry of exactly max_bytes fits");
    tier.set(b"k", &[2; 101], None).await.unwrap();
    assert_eq!(tier.get(b"k").await.unwrap(), None);
    assert_eq!((tier.used_bytes(), tier.len()), (0, 0));
    // A batch larger than the bound keeps its last entries.
    let values: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 30]).collect();
    let keys: Vec<[u8; 1]> = (0..4u8).map(|i| [i]).collect();
    tier.set_many(&entries(&keys, &values), None).await.unwrap();
    assert!(tier.used_bytes() <= max);
    let got = tier.get_many(&[&[0], &[1], &[2], &[3]]).await.unwrap();
    assert_eq!(got, vec![None, None, Some(vec![2; 30]), Some(vec![3; 30])]);
}
