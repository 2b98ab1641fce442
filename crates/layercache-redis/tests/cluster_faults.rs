//! RedisTier against a throwaway Redis Cluster whose nodes the tests break: client
//! connections dropped by the server, a master killed with SIGKILL and restarted, and a slot
//! migrated to another master (`ASK` while it moves, `MOVED` after).
//!
//! Only the cluster's own nodes are killed (by pid, through [`RedisCluster`]) or
//! reconfigured. Every wait on a node has a generous deadline and a bounded number of tries.

use std::time::{Duration, Instant};

use layercache_redis::testing::RedisCluster;
use layercache_redis::RedisTier;
use layercache_tier::Tier;

/// The tier's connection and response timeouts: generous, so that a loaded machine does not
/// make a call time out; a call that fails here fails for a reason other than slowness.
const TIER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the cluster may take to settle after a node is restarted.
const SETTLE: Duration = Duration::from_secs(30);
/// Bound of the polling loops that wait for the tier to work again.
const RECOVERY: Duration = Duration::from_secs(20);
/// The pause between two tries of such a loop.
const POLL: Duration = Duration::from_millis(20);

async fn connect(cluster: &RedisCluster) -> RedisTier {
    let nodes = cluster.nodes();
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let tier = RedisTier::builder()
        .connection_timeout(TIER_TIMEOUT)
        .response_timeout(TIER_TIMEOUT)
        .connect_cluster(&nodes)
        .await
        .unwrap();
    assert!(tier.is_cluster());
    tier
}

/// Any node's port, to ask about the cluster.
fn any_node(cluster: &RedisCluster) -> u16 {
    cluster.ports()[0]
}

/// The hash slot of `key` (`CLUSTER KEYSLOT`).
fn slot_of(cluster: &RedisCluster, key: &str) -> u16 {
    let slot = cluster
        .command(any_node(cluster), &["CLUSTER", "KEYSLOT", key])
        .unwrap();
    slot.parse().unwrap()
}

/// For each master (ascending port), a key of a slot it serves.
fn key_per_master(cluster: &RedisCluster) -> Vec<(u16, String)> {
    let asked = any_node(cluster);
    let masters = cluster.masters(asked);
    assert_eq!(masters.len(), 3, "masters: {masters:?}");
    let mut found: Vec<(u16, String)> = Vec::new();
    for i in 0..1_000 {
        let key = format!("key:{i}");
        let owner = cluster.slot_owner(asked, slot_of(cluster, &key));
        if !found.iter().any(|(port, _)| *port == owner) {
            found.push((owner, key));
        }
        if found.len() == masters.len() {
            found.sort();
            return found;
        }
    }
    panic!("1000 keys did not reach every master: {found:?}");
}

/// `GET key` sent straight to the node on `port` (no redirection followed); an error reply
/// or a nil is an `Err` with the reply.
fn get_on(cluster: &RedisCluster, port: u16, key: &str) -> Result<String, String> {
    cluster
        .command(port, &["GET", key])
        .map_err(|e| e.to_string())
}

/// Calls `attempt` until it returns `Ok`, pausing [`POLL`] between tries, for at most
/// [`RECOVERY`] and 1000 tries; returns the number of tries.
///
/// # Panics
/// When the bound is reached, with `what` and the last error.
async fn until_ok<E: std::fmt::Debug>(
    what: &str,
    mut attempt: impl AsyncFnMut() -> Result<(), E>,
) -> u32 {
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match attempt().await {
            Ok(()) => return tries,
            Err(e) => e,
        };
        assert!(
            started.elapsed() < RECOVERY && tries < 1_000,
            "{what}: still failing after {tries} tries in {:?}: {error:?}",
            started.elapsed()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A set through the tier then a get straight from `port`, which must show it.
async fn write_reaches(
    tier: &RedisTier,
    cluster: &RedisCluster,
    port: u16,
    key: &str,
    value: &str,
) -> Result<(), String> {
    let wrote = tier.set(key.as_bytes(), value.as_bytes(), None).await;
    wrote.map_err(|e| format!("set: {e}"))?;
    match get_on(cluster, port, key) {
        Ok(found) if found == value => Ok(()),
        other => Err(format!("{key} on {port}: {other:?}")),
    }
}

/// A tier over `cluster`, and a key per master (as [`key_per_master`]), each written through
/// the tier as `"before"` and seen on its master.
async fn connect_and_reach_every_master(cluster: &RedisCluster) -> (RedisTier, Vec<(u16, String)>) {
    let tier = connect(cluster).await;
    let keys = key_per_master(cluster);
    for (port, key) in &keys {
        write_reaches(&tier, cluster, *port, key, "before")
            .await
            .unwrap();
    }
    (tier, keys)
}

/// Every client connection of every node is closed by the server (`CLIENT KILL`), the
/// tier's included; the nodes stay up. Without a new tier, calls to each master work again
/// within a bounded time (the call that meets a closed connection may fail, as on a single
/// node: the reconnection runs in the background).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_work_again_after_the_servers_close_every_connection() {
    let cluster = RedisCluster::start();
    let (tier, keys) = connect_and_reach_every_master(&cluster).await;

    for port in cluster.ports() {
        let closed = cluster.drop_clients(port);
        eprintln!("node {port}: {closed} client connection(s) closed");
        if keys.iter().any(|(master, _)| *master == port) {
            assert!(
                closed >= 1,
                "master {port} had no client connection to close"
            );
        }
    }

    for (port, key) in &keys {
        // The old connection is closed: a success means the tier reconnected.
        let tries = until_ok(&format!("get from master {port}"), async || {
            match tier.get(key.as_bytes()).await {
                Ok(Some(v)) if v == b"before" => Ok(()),
                other => Err(other),
            }
        })
        .await;
        eprintln!("master {port}: get worked again after {tries} tries");
        write_reaches(&tier, &cluster, *port, key, "after")
            .await
            .unwrap();
    }
    let asked: Vec<&[u8]> = keys.iter().map(|(_, k)| k.as_bytes()).collect();
    let got = tier.get_many(&asked).await.unwrap();
    assert!(
        got.iter().all(|v| v.as_deref() == Some(&b"after"[..])),
        "{got:?}"
    );
}

/// A master is killed with SIGKILL: calls for its slots fail, each within the call's time
/// limit, while the other masters go on serving. Once it is restarted (on the same port,
/// empty) and the cluster has settled, the same tier reaches it again within a bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_reconnected_after_its_restart() {
    let cluster = RedisCluster::start();
    // The other masters keep serving their slots while one is down, however long the
    // outage lasts on a loaded machine (otherwise the cluster refuses every command once the
    // killed master is marked failed, 5 s after the kill).
    for port in cluster.ports() {
        let set = ["CONFIG", "SET", "cluster-require-full-coverage", "no"];
        assert_eq!(cluster.command(port, &set).unwrap(), "OK");
    }
    let (tier, keys) = connect_and_reach_every_master(&cluster).await;
    let (victim, victim_key) = keys[0].clone();
    let pid = cluster.pid(victim).unwrap();

    cluster.kill9(victim);
    eprintln!("killed master {victim} (pid {pid})");
    let limit = tier.call_timeout();
    for round in 0..3 {
        let started = Instant::now();
        // The outer bound only keeps a tier that ignores its time limit from hanging the
        // test: the call must end by itself within `limit`.
        let result = tokio::time::timeout(limit * 2, tier.get(victim_key.as_bytes())).await;
        let took = started.elapsed();
        let result = result.unwrap_or_else(|_| panic!("round {round}: get hung for {took:?}"));
        assert!(
            result.is_err(),
            "round {round}: get from a dead master: {result:?}"
        );
        eprintln!("round {round}: get from the dead master failed after {took:?}");
        for (port, key) in &keys[1..] {
            let got = tier.get(key.as_bytes()).await;
            assert_eq!(
                got.as_ref().ok(),
                Some(&Some(b"before".to_vec())),
                "round {round}: master {port} while {victim} is down: {got:?}"
            );
        }
    }

    cluster.restart(victim);
    assert_ne!(cluster.pid(victim), Some(pid));
    cluster.wait_ok(SETTLE);
    // The restarted master is empty: once reached, a get finds nothing.
    let tries = until_ok("get from the restarted master", async || {
        match tier.get(victim_key.as_bytes()).await {
            Ok(None) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    eprintln!("restarted master reached after {tries} tries");
    write_reaches(&tier, &cluster, victim, &victim_key, "after")
        .await
        .unwrap();
    assert_eq!(
        tier.get(victim_key.as_bytes()).await.unwrap(),
        Some(b"after".to_vec())
    );
}

/// The migration of one hash slot from its master to another, step by step, as
/// `redis-cli --cluster reshard` does it.
struct Migration<'c> {
    cluster: &'c RedisCluster,
    slot: u16,
    source: u16,
    target: u16,
    target_id: String,
}

impl<'c> Migration<'c> {
    /// The migration of `key`'s slot from its master to another master.
    fn of(cluster: &'c RedisCluster, key: &str) -> Migration<'c> {
        let asked = any_node(cluster);
        let slot = slot_of(cluster, key);
        let source = cluster.slot_owner(asked, slot);
        let target = *cluster
            .masters(asked)
            .iter()
            .find(|&&m| m != source)
            .unwrap();
        let target_id = cluster.node_id(target);
        Migration {
            cluster,
            slot,
            source,
            target,
            target_id,
        }
    }

    /// Sends `args` to the node on `port`, which must answer `OK`.
    fn ok(&self, port: u16, args: &[&str]) {
        let reply = self.cluster.command(port, args);
        assert_eq!(
            reply.as_deref().ok(),
            Some("OK"),
            "{args:?} on {port}: {reply:?}"
        );
    }

    /// `SETSLOT IMPORTING` on the target, then `SETSLOT MIGRATING` on the source.
    fn begin(&self) {
        let slot = self.slot.to_string();
        let source_id = self.cluster.node_id(self.source);
        self.ok(
            self.target,
            &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &source_id],
        );
        self.ok(
            self.source,
            &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &self.target_id],
        );
    }

    /// `MIGRATE`s `key` from the source to the target.
    fn move_key(&self, key: &str) {
        let port = self.target.to_string();
        let args = ["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", key];
        self.ok(self.source, &args);
    }

    /// Checks that the source holds no key of the slot any more, then assigns the slot to
    /// the target: on the target first, then the source, then the other masters.
    fn finish(&self) {
        let slot = self.slot.to_string();
        let left = self
            .cluster
            .command(self.source, &["CLUSTER", "COUNTKEYSINSLOT", &slot]);
        assert_eq!(
            left.as_deref().ok(),
            Some("0"),
            "keys left on {}",
            self.source
        );
        let assign = ["CLUSTER", "SETSLOT", &slot, "NODE", &self.target_id];
        self.ok(self.target, &assign);
        self.ok(self.source, &assign);
        for master in self.cluster.masters(any_node(self.cluster)) {
            if master != self.source && master != self.target {
                self.ok(master, &assign);
            }
        }
    }

    /// The redirection the source answers for a key of the slot that it does not hold.
    fn redirection(&self, kind: &str) -> String {
        format!("{kind} {} 127.0.0.1:{}", self.slot, self.target)
    }
}

/// Midway through a slot's migration (`MIGRATING` on the old master, `IMPORTING` on the
/// new one, some keys moved), the tier follows `ASK` for a key already moved and for a new
/// key, and reads a key not moved yet from the old master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_being_migrated_is_followed_through_ask() {
    let cluster = RedisCluster::start();
    let tier = connect(&cluster).await;
    let [moved, staying, created] = ["{ask}moved", "{ask}staying", "{ask}created"];
    let migration = Migration::of(&cluster, moved);
    tier.set(moved.as_bytes(), b"M", None).await.unwrap();
    tier.set(staying.as_bytes(), b"S", None).await.unwrap();
    assert_eq!(
        get_on(&cluster, migration.source, moved).as_deref(),
        Ok("M")
    );

    migration.begin();
    migration.move_key(moved);
    // The old master no longer holds `moved`: it answers ASK, and the only copy is on the
    // new master.
    let ask = migration.redirection("ASK");
    assert_eq!(get_on(&cluster, migration.source, moved), Err(ask.clone()));
    let got = tier.get(moved.as_bytes()).await;
    assert_eq!(
        got.as_ref().ok(),
        Some(&Some(b"M".to_vec())),
        "a key already migrated: {got:?}"
    );
    let got = tier.get(staying.as_bytes()).await;
    assert_eq!(
        got.as_ref().ok(),
        Some(&Some(b"S".to_vec())),
        "a key not migrated yet: {got:?}"
    );
    // A key the old master does not hold is written to the new one.
    tier.set(created.as_bytes(), b"C", None).await.unwrap();
    assert_eq!(get_on(&cluster, migration.source, created), Err(ask));

    migration.move_key(staying);
    migration.finish();
    for (key, value) in [(moved, "M"), (staying, "S"), (created, "C")] {
        assert_eq!(
            get_on(&cluster, migration.target, key).as_deref(),
            Ok(value)
        );
    }
}

/// After a slot has moved to another master, the tier follows the old master's `MOVED` on
/// the first call and reads from the new master; then it re-reads the slot map, so that its
/// calls go to the new master directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_slot_is_followed_through_moved() {
    let cluster = RedisCluster::start();
    let tier = connect(&cluster).await;
    let [first, second] = ["{moved}1", "{moved}2"];
    let migration = Migration::of(&cluster, first);
    let (source, target) = (migration.source, migration.target);
    tier.set(first.as_bytes(), b"1", None).await.unwrap();
    tier.set(second.as_bytes(), b"2", None).await.unwrap();
    assert_eq!(get_on(&cluster, source, first).as_deref(), Ok("1"));

    migration.begin();
    migration.move_key(first);
    migration.move_key(second);
    migration.finish();
    assert_eq!(
        get_on(&cluster, source, second),
        Err(migration.redirection("MOVED"))
    );
    // Change the value on the new master, behind the tier's back: reading it proves where
    // it was read.
    migration.ok(target, &["SET", second, "2 on the new master"]);
    let got = tier.get(second.as_bytes()).await;
    assert_eq!(
        got.as_ref().ok(),
        Some(&Some(b"2 on the new master".to_vec())),
        "first get after the migration: {got:?}"
    );
    let got = tier
        .get_many(&[first.as_bytes(), second.as_bytes()])
        .await
        .unwrap();
    assert_eq!(
        got,
        [Some(b"1".to_vec()), Some(b"2 on the new master".to_vec())]
    );
    tier.set(first.as_bytes(), b"1 again", None).await.unwrap();
    assert_eq!(get_on(&cluster, target, first).as_deref(), Ok("1 again"));

    // The slot map is re-read: soon the old master answers no more MOVED to the tier's
    // calls. Bounded in tries and time (the refresh runs in the background).
    let moved_replies = || {
        let stats = cluster.command(source, &["INFO", "errorstats"]).unwrap();
        stats
            .lines()
            .find_map(|l| l.strip_prefix("errorstat_MOVED:count="))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap())
    };
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let before = moved_replies();
        assert!(before >= 1, "the old master never answered MOVED");
        for key in [first, second] {
            tier.get(key.as_bytes()).await.unwrap().unwrap();
        }
        if moved_replies() == before {
            break;
        }
        assert!(
            started.elapsed() < RECOVERY && tries < 500,
            "the tier's calls still went to the old master after {tries} tries"
        );
        tokio::time::sleep(POLL).await;
    }
    eprintln!("calls went to the new master directly after {tries} tries");
}
