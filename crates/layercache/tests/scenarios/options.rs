//! `EntryOptions`: TTLs given per call (`set_with`, `get_or_load_with`), and the skip flags,
//! per call and as a cache's defaults.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

use layercache::{EntryOptions, TieredCache};

use super::{defaults, Backend, Env, MS, OTHER_TTL, TTL};

/// `set_with`: its TTL (or none) reaches L2; `skip_l2_write` keeps the value in this
/// process; `skip_l1_write` keeps it out of L1, so reads go to L2.
pub(crate) async fn set_with_follows_its_options<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let a = env.cache("sw");
    a.set_with(1, "short".into(), &EntryOptions::new().ttl(OTHER_TTL))
        .await
        .unwrap();
    backend.assert_ttl(b"sw:1", Some(OTHER_TTL)).await;
    let other = env.cache("sw");
    assert_eq!(other.get(&1).await.unwrap().as_deref(), Some("short"));
    // It lives for its own TTL, in this instance's L1 and in L2.
    env.advance(OTHER_TTL - MS);
    assert_eq!(a.get(&1).await.unwrap().as_deref(), Some("short"));
    assert_eq!(
        env.cache("sw").get(&1).await.unwrap().as_deref(),
        Some("short")
    );
    env.advance(MS);
    assert_eq!(a.get(&1).await.unwrap(), None, "expired in L1 at its TTL");
    assert_eq!(
        other.get(&1).await.unwrap(),
        None,
        "expired in a promoted copy"
    );
    assert_eq!(
        env.cache("sw").get(&1).await.unwrap(),
        None,
        "expired in L2"
    );
    a.set_with(2, "forever".into(), &EntryOptions::new())
        .await
        .unwrap();
    backend.assert_ttl(b"sw:2", None).await;

    a.set_with(3, "local".into(), &defaults().skip_l2_write())
        .await
        .unwrap();
    assert!(
        backend.raw(b"sw:3").await.is_none(),
        "skip_l2_write: not in L2"
    );
    let calls = env.calls();
    assert_eq!(a.get(&3).await.unwrap().as_deref(), Some("local"));
    assert_eq!(env.calls(), calls, "served by L1");
    assert_eq!(env.cache("sw").get(&3).await.unwrap(), None);

    let in_l1 = a.l1_entry_count();
    a.set_with(4, "shared".into(), &defaults().skip_l1_write())
        .await
        .unwrap();
    // Not added to L1 (the count may also drop: the write purges expired entries it meets).
    assert!(a.l1_entry_count() <= in_l1, "skip_l1_write: not in L1");
    backend.assert_ttl(b"sw:4", Some(TTL)).await;
    let calls = env.calls();
    assert_eq!(a.get(&4).await.unwrap().as_deref(), Some("shared"));
    assert_eq!(env.calls(), calls + 1, "read from L2");
}

/// `get_or_load_with`: its TTL reaches L2; `skip_l2_read` loads over a value L2 has (and
/// replaces it); `skip_l2_write` keeps the loaded value in this process; `skip_l1_write`
/// keeps it out of L1, so the next call is served by L2.
pub(crate) async fn get_or_load_with_follows_its_options<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let a = env.cache("glw");
    let loads = AtomicUsize::new(0);
    let load = |v: &'static str| {
        let loads = &loads;
        move || async move {
            loads.fetch_add(1, SeqCst);
            Ok::<_, io::Error>(v.to_string())
        }
    };
    let opts = EntryOptions::new().ttl(OTHER_TTL);
    assert_eq!(
        a.get_or_load_with(1, &opts, load("one")).await.unwrap(),
        "one"
    );
    backend.assert_ttl(b"glw:1", Some(OTHER_TTL)).await;
    env.advance(OTHER_TTL - MS);
    assert_eq!(a.get_or_load(1, load("early")).await.unwrap(), "one");
    env.advance(MS);
    assert_eq!(
        a.get_or_load(1, load("one, reloaded")).await.unwrap(),
        "one, reloaded",
        "expired at its own TTL"
    );
    assert_eq!(loads.load(SeqCst), 2);

    env.cache("glw").set(2, "in L2".into()).await.unwrap();
    let opts = defaults().skip_l2_read();
    assert_eq!(
        a.get_or_load_with(2, &opts, load("origin")).await.unwrap(),
        "origin"
    );
    assert_eq!(
        loads.load(SeqCst),
        3,
        "skip_l2_read: loaded although L2 had it"
    );
    assert_eq!(
        env.cache("glw").get(&2).await.unwrap().as_deref(),
        Some("origin"),
        "the loaded value replaced L2's"
    );

    let opts = defaults().skip_l2_write();
    assert_eq!(
        a.get_or_load_with(3, &opts, load("local")).await.unwrap(),
        "local"
    );
    assert!(
        backend.raw(b"glw:3").await.is_none(),
        "skip_l2_write: not in L2"
    );
    assert_eq!(a.get(&3).await.unwrap().as_deref(), Some("local"));

    // skip_l1_write: L1 serves nothing of it (its count may include the expired slot that
    // carried the value to waiters), so the next call reads L2.
    let opts = defaults().skip_l1_write();
    assert_eq!(
        a.get_or_load_with(4, &opts, load("shared")).await.unwrap(),
        "shared"
    );
    backend.assert_ttl(b"glw:4", Some(TTL)).await;
    let calls = env.calls();
    assert_eq!(a.get_or_load(4, load("again")).await.unwrap(), "shared");
    assert_eq!(env.calls(), calls + 1, "served by L2");
    assert_eq!(loads.load(SeqCst), 5);
}

/// `get_or_load_with(.., skip_l1_read)` does not look in L1: with an old value in L1 and a
/// newer one in L2 (another instance's write), it returns L2's (issue 23 found loads reading
/// L1 whatever the flag said).
pub(crate) async fn get_or_load_with_skip_l1_read_reads_l2<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let a = env.cache("glr");
    a.set(5, "old".into()).await.unwrap();
    env.cache("glr").set(5, "new".into()).await.unwrap();
    let opts = defaults().skip_l1_read();
    let v = a
        .get_or_load_with(5, &opts, || async {
            Ok::<_, io::Error>("origin".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "new", "skip_l1_read: L2's value, not L1's");
}

/// A cache's default options steer `get`, `get_or_load` and `get_many_or_load`:
/// `skip_l1_read` sees another instance's write at once, `skip_l2_write` keeps every value
/// in the process, `skip_l2_read` ignores what L2 has, `skip_l1_write` keeps batch-loaded
/// values out of L1.
pub(crate) async fn default_options_steer_get_and_batches<B: Backend>(backend: &B) {
    let env = Env::new(backend);
    let with = |name: &str, opts: EntryOptions| -> TieredCache<u64, String> {
        env.builder(name).default_entry_options(opts).build()
    };
    let asked = Mutex::new(Vec::<Vec<u64>>::new());
    let loader = |mut keys: Vec<u64>| {
        keys.sort_unstable();
        asked.lock().unwrap().push(keys.clone());
        async move {
            Ok::<_, io::Error>(
                keys.into_iter()
                    .map(|k| (k, format!("l{k}")))
                    .collect::<HashMap<_, _>>(),
            )
        }
    };
    let take_asked = || std::mem::take(&mut *asked.lock().unwrap());

    // skip_l1_read: reads go to L2 although L1 has the key.
    let a = with("slr", defaults().skip_l1_read());
    let b = env.cache("slr");
    a.set(1, "v1".into()).await.unwrap();
    b.set(1, "v2".into()).await.unwrap();
    assert_eq!(a.get(&1).await.unwrap().as_deref(), Some("v2"), "get");
    b.set(1, "v3".into()).await.unwrap();
    let got = a.get_many_or_load(vec![1], loader).await.unwrap();
    assert_eq!(got[&1], "v3", "get_many_or_load");
    assert!(take_asked().is_empty());

    // skip_l2_write: nothing reaches L2.
    let local = with("sl2w", defaults().skip_l2_write());
    assert_eq!(
        local
            .get_many_or_load(vec![1, 2], loader)
            .await
            .unwrap()
            .len(),
        2
    );
    let v = local
        .get_or_load(3, || async { Ok::<_, io::Error>("three".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "three");
    local.set(4, "four".into()).await.unwrap();
    for k in 1..=4u64 {
        assert!(
            backend.raw(format!("sl2w:{k}").as_bytes()).await.is_none(),
            "key {k} not in L2"
        );
    }
    assert_eq!(take_asked(), vec![vec![1, 2]]);

    // skip_l2_read: what L2 has is not looked at.
    let writer = env.cache("sl2r");
    for k in 1..=3u64 {
        writer.set(k, format!("in L2 {k}")).await.unwrap();
    }
    let blind = with("sl2r", defaults().skip_l2_read());
    assert_eq!(blind.get(&1).await.unwrap(), None, "get");
    let got = blind.get_many_or_load(vec![1, 2], loader).await.unwrap();
    assert_eq!((got[&1].as_str(), got[&2].as_str()), ("l1", "l2"));
    assert_eq!(take_asked(), vec![vec![1, 2]], "get_many_or_load");
    let v = blind
        .get_or_load(3, || async { Ok::<_, io::Error>("origin".to_string()) })
        .await
        .unwrap();
    assert_eq!(v, "origin", "get_or_load");

    // skip_l1_write: batch-loaded values are in L2 only.
    let nol1 = with("sl1w", defaults().skip_l1_write());
    assert_eq!(
        nol1.get_many_or_load(vec![1, 2], loader)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(take_asked(), vec![vec![1, 2]]);
    backend.assert_ttl(b"sl1w:1", Some(TTL)).await;
    let calls = env.calls();
    assert_eq!(nol1.get(&1).await.unwrap().as_deref(), Some("l1"));
    assert_eq!(env.calls(), calls + 1, "read from L2, not L1");
    let got = nol1.get_many_or_load(vec![1, 2], loader).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(take_asked().is_empty(), "served by L2");
}
