//! Throwaway Redis servers for tests (cargo feature `testing`; not for production use).
//!
//! - [`RedisServer`]: one `redis-server` on a free loopback port (in 20000–29999, below the
//!   usual ephemeral range), no persistence; it can be killed with SIGKILL and restarted on
//!   the same port to test reconnection.
//! - [`RedisCluster`]: a 6-node Redis Cluster (3 masters, 3 replicas) on free loopback ports
//!   (client and cluster bus), whose nodes can be killed, restarted and reconfigured one by
//!   one. One at a time per process: [`RedisCluster::start`] waits for the previous one to be
//!   dropped.
//!
//! Both need `redis-server` (and the cluster `redis-cli`) on `PATH`, and panic with a clear
//! message if it is missing, so that tests fail rather than pass without running. Processes
//! are killed (only the ones started here) and their temporary directories removed on drop.
//!
//! Use from another crate's tests:
//!
//! ```toml
//! [dev-dependencies]
//! layercache-redis = { workspace = true, features = ["testing"] }
//! ```
//!
//! ```no_run
//! # async fn demo() {
//! use layercache_redis::{testing::RedisServer, RedisTier};
//! let server = RedisServer::start();
//! let tier = RedisTier::connect(&server.url()).await.unwrap();
//! # let _ = tier;
//! # }
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a server may take to answer `PING` after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new cluster may take to report `cluster_state:ok` on every node.
const CLUSTER_OK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`RedisCluster::start`] waits for the previous cluster of the process to be
/// dropped.
const LEASE_TIMEOUT: Duration = Duration::from_secs(600);
/// The interval of polling loops.
const POLL: Duration = Duration::from_millis(10);
/// [`RedisServer`] ports are drawn from `PORT_BASE..PORT_BASE + PORT_SPAN`.
const PORT_BASE: u32 = 20_000;
/// See [`PORT_BASE`].
const PORT_SPAN: u32 = 10_000;

/// The number of nodes of a [`RedisCluster`].
const CLUSTER_SIZE: usize = 6;

/// One `redis-server` process on `127.0.0.1`, without persistence (`--save ""
/// --appendonly no`), killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Mutex<Option<Child>>,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    /// If `redis-server` is not on `PATH`, or the server does not come up within 10 s.
    pub fn start() -> RedisServer {
        require("redis-server", "redis-server");
        let dir = TempDir::new("server");
        let mut last_log = String::new();
        // A port free when probed may be taken before the server binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            match spawn_server(port, &dir.path, &[]) {
                Ok(child) => {
                    return RedisServer {
                        port,
                        child: Mutex::new(Some(child)),
                        dir,
                    }
                }
                Err(log) if log.contains("Address already in use") => last_log = log,
                Err(log) => panic!("redis-server on port {port} did not start:\n{log}"),
            }
        }
        panic!("redis-server found no free port after 5 tries; last log:\n{last_log}");
    }

    /// The server's port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server process's id, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.lock_child().as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (no shutdown, no goodbye to clients) and waits for it
    /// to be gone. Does nothing if it is not running.
    pub fn kill9(&self) {
        if let Some(mut child) = self.lock_child().take() {
            kill(&mut child);
        }
    }

    /// Suspends the server with SIGSTOP: connections stay open but nothing is answered (a
    /// hung server). Undo with [`thaw`](RedisServer::thaw); dropping also works.
    ///
    /// # Panics
    /// If the server is not running or `kill` fails.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a server suspended by [`freeze`](RedisServer::freeze) (SIGCONT).
    ///
    /// # Panics
    /// If the server is not running or `kill` fails.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Sends one command to the server, as [`RedisCluster::command`] does.
    ///
    /// # Errors
    /// An error reply, a nil or another kind of reply; or the server cannot be reached.
    pub fn command(&self, args: &[&str]) -> io::Result<String> {
        command(self.port, args)
    }

    /// Closes every normal client connection of the server (`CLIENT KILL TYPE normal`) and
    /// returns how many were closed; the server keeps running.
    ///
    /// # Panics
    /// If the server does not answer.
    pub fn drop_clients(&self) -> u64 {
        drop_clients(self.port)
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the redis-server is not running");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("could not run kill");
        assert!(status.success(), "kill {signal} {pid} failed: {status}");
    }

    /// Starts the server again on the same port (killing it first if it runs) and waits
    /// until it answers `PING`. It starts empty (there is no persistence).
    ///
    /// # Panics
    /// If it does not come up within 10 s (for instance because the port was taken
    /// meanwhile).
    pub fn restart(&self) {
        let mut child = self.lock_child();
        if let Some(mut old) = child.take() {
            kill(&mut old);
        }
        match spawn_server(self.port, &self.dir.path, &[]) {
            Ok(new) => *child = Some(new),
            Err(log) => panic!("redis-server did not restart on port {}:\n{log}", self.port),
        }
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A Redis Cluster of 6 nodes on free loopback ports (3 masters with one replica each),
/// without persistence; the nodes are killed and their directory removed on drop.
///
/// Replicas never fail over on their own (`cluster-replica-no-failover yes`): a node that a
/// test kills stays the master of its slots until it is restarted, even on a machine so
/// loaded that it misses the 5 s node timeout. Clusters in one process start one at a time
/// ([`start`](RedisCluster::start) waits for the previous one to be dropped), to keep the
/// load of a test run down; clusters of different processes do not collide (each node takes
/// a free client port and a free cluster-bus port).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    dir: TempDir,
    _lease: ClusterLease,
}

/// One node of a [`RedisCluster`].
#[derive(Debug)]
struct ClusterNode {
    port: u16,
    bus_port: u16,
    child: Mutex<Option<Child>>,
}

impl RedisCluster {
    /// Starts the 6 nodes, joins them with `redis-cli --cluster create ... --cluster-replicas
    /// 1`, and waits for `cluster_state:ok` on every node (typically 2–3 s in all).
    ///
    /// # Panics
    /// If `redis-server` or `redis-cli` is not on `PATH`, or if the cluster is not up within
    /// 30 s.
    pub fn start() -> RedisCluster {
        require("redis-server", "redis-server");
        require("redis-cli", "redis-tools");
        let lease = ClusterLease::acquire();
        let dir = TempDir::new("cluster");
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            dir,
            _lease: lease,
        };
        for _ in 0..CLUSTER_SIZE {
            let node = start_cluster_node(&cluster.dir.path);
            cluster.nodes.push(node);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(cluster.ports().iter().map(|p| format!("127.0.0.1:{p}")));
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = create
            .stdin(Stdio::null())
            .output()
            .expect("could not run redis-cli");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_ok(CLUSTER_OK_TIMEOUT);
        // `--cluster create` returns before every node has heard that the last 3 are
        // replicas: wait until each sees 3 masters serving slots and 3 replicas.
        let deadline = Instant::now() + CLUSTER_OK_TIMEOUT;
        for port in cluster.ports() {
            let settled = poll_until(deadline, || {
                let nodes = cluster_nodes(port);
                let masters = nodes.iter().filter(|n| n.master && !n.slots.is_empty());
                let replicas = nodes.iter().filter(|n| !n.master);
                masters.count() == CLUSTER_SIZE / 2 && replicas.count() == CLUSTER_SIZE / 2
            });
            assert!(
                settled,
                "cluster node {port} did not see 3 masters and 3 replicas within \
                 {CLUSTER_OK_TIMEOUT:?}"
            );
        }
        cluster
    }

    /// The nodes' URLs, `redis://127.0.0.1:<port>`, in the order of [`ports`](Self::ports).
    pub fn nodes(&self) -> Vec<String> {
        self.ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The nodes' client ports on `127.0.0.1`. The first 3 were made masters by `redis-cli
    /// --cluster create`, but ask [`masters`](Self::masters) rather than rely on it.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The process id of the node on `port`, if it is running.
    ///
    /// # Panics
    /// If no node of this cluster listens on `port`.
    pub fn pid(&self, port: u16) -> Option<u32> {
        self.node(port).lock_child().as_ref().map(Child::id)
    }

    /// Kills the node on `port` with SIGKILL (only that process, by its pid) and waits for it
    /// to be gone. Does nothing if it is not running.
    ///
    /// # Panics
    /// If no node of this cluster listens on `port`.
    pub fn kill9(&self, port: u16) {
        if let Some(mut child) = self.node(port).lock_child().take() {
            kill(&mut child);
        }
    }

    /// Starts the node on `port` again (killing it first if it runs), with the same ports and
    /// cluster configuration file, so it rejoins as the node it was (empty: there is no
    /// persistence); waits until it answers `PING`. Its cluster state may still be `fail`
    /// for a while after that (a restarted master waits before it serves): call
    /// [`wait_ok`](Self::wait_ok) before expecting it to answer.
    ///
    /// # Panics
    /// If no node of this cluster listens on `port`, or it does not come up within 10 s.
    pub fn restart(&self, port: u16) {
        let node = self.node(port);
        let mut child = node.lock_child();
        if let Some(mut old) = child.take() {
            kill(&mut old);
        }
        match spawn_server(port, &self.dir.path, &node_args(port, node.bus_port)) {
            Ok(new) => *child = Some(new),
            Err(log) => panic!("cluster node did not restart on port {port}:\n{log}"),
        }
    }

    /// Waits until every running node reports `cluster_state:ok` and all 16384 slots
    /// assigned and `ok`.
    ///
    /// # Panics
    /// If that does not happen within `timeout` (the message names the node).
    pub fn wait_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for node in &self.nodes {
            if node.lock_child().is_none() {
                continue;
            }
            let port = node.port;
            let ok = poll_until(deadline, || {
                command(port, &["CLUSTER", "INFO"]).is_ok_and(|info| {
                    info.contains("cluster_state:ok")
                        && info.contains("cluster_slots_assigned:16384")
                        && info.contains("cluster_slots_ok:16384")
                })
            });
            assert!(
                ok,
                "cluster node {port} did not reach cluster_state:ok within {timeout:?}"
            );
        }
    }

    /// Sends one command to the node on `port` (a node of this cluster: panics otherwise; a
    /// fresh connection, 2 s read and write timeouts) and returns its reply if that is a simple string, a bulk string or an
    /// integer (in decimal); an error reply (`MOVED ...`, `ASK ...`), a nil or any other
    /// reply is an `Err` whose message is the reply.
    ///
    /// # Errors
    /// As above, and if the node cannot be reached.
    pub fn command(&self, port: u16, args: &[&str]) -> io::Result<String> {
        command(self.node(port).port, args)
    }

    /// The cluster node id of the node on `port` (`CLUSTER MYID`).
    ///
    /// # Panics
    /// If the node does not answer.
    pub fn node_id(&self, port: u16) -> String {
        command(port, &["CLUSTER", "MYID"])
            .unwrap_or_else(|e| panic!("CLUSTER MYID on {port} failed: {e}"))
    }

    /// The ports of the masters that serve slots, as the node on `asked` sees them (`CLUSTER
    /// NODES`), in ascending order.
    ///
    /// # Panics
    /// If the node does not answer.
    pub fn masters(&self, asked: u16) -> Vec<u16> {
        let mut masters: Vec<u16> = cluster_nodes(asked)
            .iter()
            .filter(|n| n.master && !n.slots.is_empty())
            .map(|n| n.port)
            .collect();
        masters.sort_unstable();
        masters
    }

    /// The port of the master that serves `slot`, as the node on `asked` sees it.
    ///
    /// # Panics
    /// If the node does not answer or knows no master for `slot`.
    pub fn slot_owner(&self, asked: u16, slot: u16) -> u16 {
        cluster_nodes(asked)
            .iter()
            .find(|n| n.master && n.slots.iter().any(|r| r.contains(&slot)))
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("node {asked} knows no master for slot {slot}"))
    }

    /// Closes every normal client connection of the node on `port` (`CLIENT KILL TYPE
    /// normal`; the cluster bus and replication links stay) and returns how many were
    /// closed. The node keeps running.
    ///
    /// # Panics
    /// If the node does not answer.
    pub fn drop_clients(&self, port: u16) -> u64 {
        drop_clients(self.node(port).port)
    }

    fn node(&self, port: u16) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node of this cluster listens on port {port}"))
    }
}

impl ClusterNode {
    fn lock_child(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(mut child) = node.lock_child().take() {
                kill(&mut child);
            }
        }
        // Then `dir` is removed and `_lease` released.
    }
}

/// The `redis-server` options of a cluster node, beyond [`spawn_server`]'s.
fn node_args(port: u16, bus_port: u16) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &format!("nodes-{port}.conf"),
        "--cluster-port",
        &bus_port.to_string(),
        "--cluster-node-timeout",
        "5000",
        "--cluster-replica-no-failover",
        "yes",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Starts one cluster node on a free client port and a free bus port (trying new ones a few
/// times if one was taken meanwhile).
fn start_cluster_node(dir: &Path) -> ClusterNode {
    let mut last_log = String::new();
    for _ in 0..5 {
        let port = free_port();
        let bus_port = free_port();
        match spawn_server(port, dir, &node_args(port, bus_port)) {
            Ok(child) => {
                return ClusterNode {
                    port,
                    bus_port,
                    child: Mutex::new(Some(child)),
                }
            }
            Err(log) if log.contains("Address already in use") => last_log = log,
            Err(log) => panic!("cluster node on port {port} did not start:\n{log}"),
        }
    }
    panic!("no cluster node could find free ports after 5 tries; last log:\n{last_log}");
}

/// A line of `CLUSTER NODES`, the parts used here.
#[derive(Debug)]
struct NodeLine {
    port: u16,
    master: bool,
    slots: Vec<std::ops::RangeInclusive<u16>>,
}

/// `CLUSTER NODES` as the node on `asked` answers it.
fn cluster_nodes(asked: u16) -> Vec<NodeLine> {
    let text = command(asked, &["CLUSTER", "NODES"])
        .unwrap_or_else(|e| panic!("CLUSTER NODES on {asked} failed: {e}"));
    text.lines().filter_map(parse_node_line).collect()
}

/// Parses `<id> <ip:port@bus[,host]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
/// (slots as `n` or `a-b`; migration markers `[...]` are skipped).
fn parse_node_line(line: &str) -> Option<NodeLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let address = fields.get(1)?;
    let port = address
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let master = fields.get(2)?.split(',').any(|f| f == "master");
    let slots = fields
        .iter()
        .skip(8)
        .filter(|f| !f.starts_with('['))
        .filter_map(|f| match f.split_once('-') {
            Some((a, b)) => Some(a.parse().ok()?..=b.parse().ok()?),
            None => f.parse().ok().map(|n| n..=n),
        })
        .collect();
    Some(NodeLine {
        port,
        master,
        slots,
    })
}

/// Permission to run a cluster, one holder at a time in this process.
#[derive(Debug)]
struct ClusterLease;

/// Whether a [`ClusterLease`] is held, and its waiters.
static CLUSTER_BUSY: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

impl ClusterLease {
    /// Waits (at most [`LEASE_TIMEOUT`]) for the previous holder to let go.
    fn acquire() -> ClusterLease {
        let (busy, freed) = &CLUSTER_BUSY;
        let busy = busy.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut busy, waited) = freed
            .wait_timeout_while(busy, LEASE_TIMEOUT, |busy| *busy)
            .unwrap_or_else(PoisonError::into_inner);
        assert!(
            !waited.timed_out(),
            "the previous RedisCluster of this process was not dropped within {LEASE_TIMEOUT:?}"
        );
        *busy = true;
        ClusterLease
    }
}

impl Drop for ClusterLease {
    fn drop(&mut self) {
        let (busy, freed) = &CLUSTER_BUSY;
        *busy.lock().unwrap_or_else(PoisonError::into_inner) = false;
        freed.notify_one();
    }
}

/// A directory removed (with its contents) on drop.
#[derive(Debug)]
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(what: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "layercache-redis-{what}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("could not create {}: {e}", path.display()));
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Panics unless `binary` runs (`binary --version`).
fn require(binary: &str, debian_package: &str) {
    if let Err(e) = Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        panic!(
            "`{binary}` could not be run ({e}): the layercache-redis test utilities need it on \
             PATH (Debian/Ubuntu: `apt-get install {debian_package}`)"
        );
    }
}

/// Spawns `redis-server` on `port` with its files and log in `dir`, and waits until it
/// answers `PING`. On failure the process is killed and its log returned.
fn spawn_server(port: u16, dir: &Path, extra: &[String]) -> Result<Child, String> {
    let log = dir.join(format!("redis-{port}.log"));
    let _ = std::fs::remove_file(&log);
    // Start-up errors (a bad option...) go to stderr, before the log file is opened.
    let stderr_path = dir.join(format!("redis-{port}.stderr"));
    let stderr = std::fs::File::create(&stderr_path)
        .map_err(|e| format!("could not create {}: {e}", stderr_path.display()))?;
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("could not spawn redis-server: {e}"))?;
    let deadline = Instant::now() + START_TIMEOUT;
    let mut exited = false;
    let up = poll_until(deadline, || {
        if matches!(child.try_wait(), Ok(Some(_))) {
            exited = true;
            return true;
        }
        command(port, &["PING"]).is_ok_and(|reply| reply == "PONG")
    });
    if up && !exited {
        return Ok(child);
    }
    kill(&mut child);
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    Err(format!(
        "{}{stderr}{log}",
        if exited {
            ""
        } else {
            "(no PING answer in time)\n"
        }
    ))
}

/// `CLIENT KILL TYPE normal` on `127.0.0.1:port`: the number of connections closed.
fn drop_clients(port: u16) -> u64 {
    let killed = command(port, &["CLIENT", "KILL", "TYPE", "normal"])
        .unwrap_or_else(|e| panic!("CLIENT KILL on {port} failed: {e}"));
    killed
        .parse()
        .unwrap_or_else(|_| panic!("CLIENT KILL on {port} answered {killed:?}"))
}

/// Kills `child` with SIGKILL and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Calls `done` every [`POLL`] until it returns true (then true) or `deadline` passes
/// (then false).
fn poll_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// A port in `PORT_BASE..PORT_BASE + PORT_SPAN` that nothing listens on; successive calls
/// in a process probe successive ports, from an offset that depends on the process id.
fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7919) % PORT_SPAN;
    for _ in 0..PORT_SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(PORT_BASE + (offset + n) % PORT_SPAN).expect("port fits u16");
        if port_is_free(port) {
            return port;
        }
    }
    panic!("no free port in {PORT_BASE}..{}", PORT_BASE + PORT_SPAN);
}

/// Whether `127.0.0.1:port` can be listened on.
fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Sends one command to `127.0.0.1:port` over a fresh connection and returns the reply if
/// it is a simple string, a bulk string or an integer (an error reply, a nil or an array is
/// an `Err` with the reply's first line).
fn command(port: u16, args: &[&str]) -> io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end();
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    match line.split_at_checked(1) {
        Some(("+", simple)) => Ok(simple.to_owned()),
        Some((":", integer)) => Ok(integer.to_owned()),
        Some(("-", error)) => Err(bad(error)),
        Some(("$", len)) => {
            let len: usize = len.parse().map_err(|_| bad(line))?;
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body)?;
            body.truncate(len);
            String::from_utf8(body).map_err(|_| bad("reply is not UTF-8"))
        }
        _ => Err(bad(line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_in_range() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        for port in [a, b] {
            assert!((20_000..30_000).contains(&port));
        }
    }

    #[test]
    fn temp_dirs_are_removed_on_drop() {
        let dir = TempDir::new("unit");
        let path = dir.path.clone();
        std::fs::write(path.join("f"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn command_parses_simple_bulk_integer_and_error_replies() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let replies: [&[u8]; 5] = [
            b"+PONG\r\n",
            b"$5\r\na\r\nbc\r\n",
            b"-ERR nope\r\n",
            b":42\r\n",
            b"$-1\r\n",
        ];
        let server = std::thread::spawn(move || {
            for reply in replies {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0; 64];
                let _ = conn.read(&mut buf).unwrap();
                conn.write_all(reply).unwrap();
            }
        });
        assert_eq!(command(port, &["PING"]).unwrap(), "PONG");
        assert_eq!(command(port, &["GET", "k"]).unwrap(), "a\r\nbc");
        assert_eq!(command(port, &["X"]).unwrap_err().to_string(), "ERR nope");
        assert_eq!(command(port, &["DBSIZE"]).unwrap(), "42");
        assert_eq!(command(port, &["GET", "j"]).unwrap_err().to_string(), "$-1");
        server.join().unwrap();
    }

    #[test]
    fn cluster_nodes_lines_are_parsed() {
        let master = "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host \
                      myself,master - 0 1426238317239 4 connected 0-5460 7000 [7001->-abc]";
        let node = parse_node_line(master).unwrap();
        assert_eq!(node.port, 30004);
        assert!(node.master);
        assert_eq!(node.slots, [0..=5460, 7000..=7000]);
        let replica = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 slave \
                       07c37dfeb235213a872192d90877d0cd55635b91 0 1426238316232 4 connected";
        let node = parse_node_line(replica).unwrap();
        assert_eq!((node.port, node.master), (30001, false));
        assert!(node.slots.is_empty());
        assert!(parse_node_line("").is_none());
    }
}
