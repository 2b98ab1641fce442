//! [`RedisTier`] and its builder.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use futures_util::future::try_join_all;
use layercache_tier::{Tier, TierError, TierFuture};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, Pipeline, Script, Value};

use crate::error::{redact, Error};

/// The tier's name in errors, metrics and logs.
pub(crate) const TIER: &str = "redis";

/// Default limit of one connection attempt (TCP connect and handshake).
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// Default limit of the wait for one reply.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// Single node: reconnection attempts after the first one (so 3 attempts in all).
const RECONNECT_RETRIES: usize = 2;
/// Single node: delay before the first retry; doubled for each further retry, plus up to
/// 100% jitter (so 10–20 ms, then 20–40 ms).
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(10);
/// Single node: cap of the delay between attempts (before jitter).
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(100);

/// Cluster: retries of a request (after a `MOVED`, a lost connection...).
pub(crate) const CLUSTER_RETRIES: u32 = 3;
/// Cluster: wait before a retry is drawn from `min..min(max, 10 ms × 2^retry)`.
pub(crate) const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 5;
/// Cluster: cap of the wait before a retry.
pub(crate) const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 100;

/// The largest `PX` sent (2^62 ms, about 146 million years): Redis rejects an expiry time
/// that overflows its clock, so longer TTLs are cut to this, which is "forever" all the same.
const MAX_PX_MS: u64 = 1 << 62;

/// `compare_and_set`: `KEYS[1]` the key, `ARGV[1]` the expected bytes, `ARGV[2]` the new
/// value, `ARGV[3]` the TTL in milliseconds (empty: none, so a plain `SET` that clears any
/// TTL). Lua strings are byte strings and `==` compares them byte for byte; an absent key's
/// `GET` is `false`, which equals no string.
const CAS_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
  return 1
end
return 0
";

/// [`CAS_LUA`], with its SHA-1 computed once.
static CAS_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CAS_LUA));

/// `compare_and_delete`: `KEYS[1]` the key, `ARGV[1]` the expected bytes.
const CAD_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// [`CAD_LUA`], with its SHA-1 computed once.
static CAD_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CAD_LUA));

/// A Redis server or Redis Cluster as a [`Tier`] (see the [crate docs](crate) for the
/// commands, timeouts and reconnection).
///
/// Cheap to share: wrap it in an `Arc` (as `Arc<dyn Tier>` for layercache); all calls go
/// over one multiplexed connection per node.
pub struct RedisTier {
    conn: Conn,
    /// The bound of one whole call: connection timeout + response timeout.
    call_timeout: Duration,
    /// The URL(s) connected to, passwords redacted (for `Debug`).
    target: String,
}

/// The connection: one node or a cluster.
enum Conn {
    /// A single node, through a reconnecting multiplexed connection.
    Single(ConnectionManager),
    /// A cluster, through redis-rs's async cluster connection.
    Cluster(ClusterConnection),
}

/// Configures and connects a [`RedisTier`] (from [`RedisTier::builder`]).
///
/// ```no_run
/// # async fn demo() -> Result<(), layercache_redis::Error> {
/// use std::time::Duration;
/// let tier = layercache_redis::RedisTier::builder()
///     .connection_timeout(Duration::from_millis(300))
///     .response_timeout(Duration::from_millis(100))
///     .connect("redis://127.0.0.1:6379")
///     .await?;
/// # let _ = tier;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisTierBuilder {
    connection_timeout: Duration,
    response_timeout: Duration,
}

impl Default for RedisTierBuilder {
    fn default() -> Self {
        RedisTierBuilder {
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }
}

impl RedisTierBuilder {
    /// The limit of one connection attempt to a node: TCP connect plus the handshake (`AUTH`,
    /// `SELECT`...). Default: 1 s.
    ///
    /// # Panics
    /// If `timeout` is zero.
    #[must_use]
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "the connection timeout must be positive"
        );
        self.connection_timeout = timeout;
        self
    }

    /// The limit of the wait for one reply once a request is sent. Default: 500 ms.
    ///
    /// A whole call (reconnection and cluster redirections included) is limited to the
    /// connection timeout plus this, and then fails with [`TierError::Timeout`].
    ///
    /// # Panics
    /// If `timeout` is zero.
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "the response timeout must be positive");
        self.response_timeout = timeout;
        self
    }

    /// Connects to one Redis server, e.g. `redis://127.0.0.1:6379`,
    /// `redis://user:password@host:6379/2`, or `redis+unix:///run/redis.sock` (see
    /// redis-rs's `IntoConnectionInfo` for every form).
    ///
    /// Waits for the first connection: up to 3 attempts (the reconnection schedule of the
    /// [crate docs](crate)), each limited by the connection timeout. After that the tier
    /// reconnects by itself whenever the connection breaks.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] if `url` does not parse; [`Error::Connect`] if no attempt
    /// connected (server down, wrong password...).
    pub async fn connect(self, url: &str) -> Result<RedisTier, Error> {
        let client = redis::Client::open(url).map_err(|e| Error::InvalidUrl {
            url: redact(url),
            source: Box::new(e),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_exponent_base(2.0);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| Error::Connect {
                target: redact(url),
                source: Box::new(e),
            })?;
        Ok(RedisTier {
            conn: Conn::Single(manager),
            call_timeout: self.call_timeout(),
            target: redact(url),
        })
    }

    /// Connects to a Redis Cluster through some of its nodes (`redis://host:port` each; one
    /// reachable node is enough, the others are found from it).
    ///
    /// Waits until the slot map is read and the masters are connected. Replicas are not
    /// read from: every command goes to the master of its key's slot.
    ///
    /// # Errors
    /// [`Error::NoNodes`] if `nodes` is empty; [`Error::InvalidUrl`] if a URL does not parse;
    /// [`Error::Connect`] if no node could be reached or they are not a working cluster.
    pub async fn connect_cluster(self, nodes: &[&str]) -> Result<RedisTier, Error> {
        if nodes.is_empty() {
            return Err(Error::NoNodes);
        }
        for node in nodes {
            node.into_connection_info().map_err(|e| Error::InvalidUrl {
                url: redact(node),
                source: Box::new(e),
            })?;
        }
        let target = nodes
            .iter()
            .map(|n| redact(n))
            .collect::<Vec<_>>()
            .join(", ");
        let connect_error = |e: redis::RedisError| Error::Connect {
            target: target.clone(),
            source: Box::new(e),
        };
        let client = ClusterClientBuilder::new(nodes.iter().copied())
            .connection_timeout(self.connection_timeout)
            .response_timeout(self.response_timeout)
            .overall_response_timeout(Some(self.call_timeout()))
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
            .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
            .retry_wait_formula(10, 2)
            .build()
            .map_err(connect_error)?;
        let conn = client.get_async_connection().await.map_err(connect_error)?;
        Ok(RedisTier {
            conn: Conn::Cluster(conn),
            call_timeout: self.call_timeout(),
            target,
        })
    }

    fn call_timeout(&self) -> Duration {
        self.connection_timeout + self.response_timeout
    }
}

impl RedisTier {
    /// A builder, to set timeouts before connecting.
    pub fn builder() -> RedisTierBuilder {
        RedisTierBuilder::default()
    }

    /// Connects to one Redis server with the default timeouts; see
    /// [`RedisTierBuilder::connect`].
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] if `url` does not parse; [`Error::Connect`] if the server could
    /// not be reached.
    pub async fn connect(url: &str) -> Result<RedisTier, Error> {
        RedisTierBuilder::default().connect(url).await
    }

    /// Connects to a Redis Cluster with the default timeouts; see
    /// [`RedisTierBuilder::connect_cluster`].
    ///
    /// # Errors
    /// [`Error::NoNodes`], [`Error::InvalidUrl`] or [`Error::Connect`], as for
    /// [`RedisTierBuilder::connect_cluster`].
    pub async fn connect_cluster(nodes: &[&str]) -> Result<RedisTier, Error> {
        RedisTierBuilder::default().connect_cluster(nodes).await
    }

    /// Whether this tier talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// The limit of one whole call: connection timeout + response timeout.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Sends `cmd` to the node that serves it, within the call timeout.
    pub(crate) fn query<'a, T: FromRedisValue + Send + 'a>(
        &'a self,
        cmd: &'a Cmd,
    ) -> TierFuture<'a, T> {
        self.call(async move { self.conn.query(cmd).await })
    }

    /// Runs `op` within the call timeout.
    fn call<'a, T: Send + 'a>(
        &'a self,
        op: impl Future<Output = Result<T, TierError>> + Send + 'a,
    ) -> TierFuture<'a, T> {
        let after = self.call_timeout;
        Box::pin(async move {
            tokio::time::timeout(after, op)
                .await
                .unwrap_or(Err(TierError::Timeout { tier: TIER, after }))
        })
    }
}

impl fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTier")
            .field("cluster", &self.is_cluster())
            .field("target", &self.target)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl Tier for RedisTier {
    fn name(&self) -> &'static str {
        TIER
    }

    fn get<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        self.call(async move { self.conn.query(&cmd).await })
    }

    fn set<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        let cmd = set_cmd(key, value, ttl);
        self.call(async move { self.conn.query(&cmd).await })
    }

    fn delete<'a>(&'a self, key: &'a [u8]) -> TierFuture<'a, ()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        self.call(async move { self.conn.query(&cmd).await })
    }

    fn supports_conditional_writes(&self) -> bool {
        true
    }

    fn add<'a>(
        &'a self,
        key: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        let mut cmd = set_cmd(key, value, ttl);
        cmd.arg("NX");
        self.call(async move {
            match self.conn.query::<Value>(&cmd).await? {
                Value::Okay => Ok(true),
                Value::SimpleString(s) if s == "OK" => Ok(true),
                Value::Nil => Ok(false),
                other => Err(TierError::Backend {
                    tier: TIER,
                    source: format!("SET NX answered {other:?}").into(),
                }),
            }
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a [u8],
        expected: &'a [u8],
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, bool> {
        self.call(async move {
            let mut invocation = CAS_SCRIPT.key(key);
            invocation.arg(expected).arg(value);
            match ttl {
                Some(ttl) => invocation.arg(ttl_ms(ttl)),
                None => invocation.arg(""),
            };
            // EVALSHA; on NOSCRIPT (a new or restarted server) SCRIPT LOAD (on a cluster
            // redis-rs sends it to every master) and EVALSHA again.
            let replaced: i64 = match &self.conn {
                Conn::Single(manager) => invocation.invoke_async(&mut manager.clone()).await,
                Conn::Cluster(cluster) => invocation.invoke_async(&mut cluster.clone()).await,
            }
            .map_err(backend)?;
            Ok(replaced == 1)
        })
    }

    fn compare_and_delete<'a>(&'a self, key: &'a [u8], expected: &'a [u8]) -> TierFuture<'a, bool> {
        self.call(async move {
            let mut invocation = CAD_SCRIPT.key(key);
            invocation.arg(expected);
            let deleted: i64 = match &self.conn {
                Conn::Single(manager) => invocation.invoke_async(&mut manager.clone()).await,
                Conn::Cluster(cluster) => invocation.invoke_async(&mut cluster.clone()).await,
            }
            .map_err(backend)?;
            Ok(deleted == 1)
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [&'a [u8]]) -> TierFuture<'a, Vec<Option<Vec<u8>>>> {
        self.call(async move {
            match &self.conn {
                _ if keys.is_empty() => Ok(Vec::new()),
                Conn::Single(manager) => mget(&mut manager.clone(), keys.iter().copied()).await,
                Conn::Cluster(cluster) => {
                    let groups = slot_groups(keys.iter().copied());
                    let batches = groups.into_iter().map(|indices| {
                        let mut conn = cluster.clone();
                        async move {
                            let values = mget(&mut conn, indices.iter().map(|&i| keys[i])).await?;
                            Ok::<_, TierError>((indices, values))
                        }
                    });
                    let mut out = vec![None; keys.len()];
                    for (indices, values) in try_join_all(batches).await? {
                        for (i, value) in indices.into_iter().zip(values) {
                            out[i] = value;
                        }
                    }
                    Ok(out)
                }
            }
        })
    }

    fn set_many<'a>(
        &'a self,
        entries: &'a [(&'a [u8], &'a [u8])],
        ttl: Option<Duration>,
    ) -> TierFuture<'a, ()> {
        self.call(async move {
            match &self.conn {
                _ if entries.is_empty() => Ok(()),
                Conn::Single(manager) => {
                    exec_pipeline(
                        &mut manager.clone(),
                        set_pipeline(entries, ttl, 0..entries.len()),
                    )
                    .await
                }
                Conn::Cluster(cluster) => {
                    let groups = slot_groups(entries.iter().map(|(key, _)| *key));
                    let batches = groups.into_iter().map(|indices| {
                        let mut conn = cluster.clone();
                        let pipeline = set_pipeline(entries, ttl, indices);
                        async move { exec_pipeline(&mut conn, pipeline).await }
                    });
                    try_join_all(batches).await.map(drop)
                }
            }
        })
    }
}

impl Conn {
    /// Sends `cmd` to the node that serves it.
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, TierError> {
        match self {
            Conn::Single(manager) => cmd.query_async(&mut manager.clone()).await,
            Conn::Cluster(cluster) => cmd.query_async(&mut cluster.clone()).await,
        }
        .map_err(backend)
    }
}

/// `MGET` of `keys` (which, on a cluster, must share a slot), checked to answer one value
/// per key.
async fn mget<'k>(
    conn: &mut impl ConnectionLike,
    keys: impl ExactSizeIterator<Item = &'k [u8]>,
) -> Result<Vec<Option<Vec<u8>>>, TierError> {
    let asked = keys.len();
    let mut cmd = redis::cmd("MGET");
    for key in keys {
        cmd.arg(key);
    }
    let values: Vec<Option<Vec<u8>>> = cmd.query_async(conn).await.map_err(backend)?;
    if values.len() != asked {
        return Err(TierError::Backend {
            tier: TIER,
            source: format!("MGET of {asked} keys answered {} values", values.len()).into(),
        });
    }
    Ok(values)
}

/// Sends `pipeline`, failing if any of its commands failed.
async fn exec_pipeline(
    conn: &mut impl ConnectionLike,
    pipeline: Pipeline,
) -> Result<(), TierError> {
    pipeline.exec_async(conn).await.map_err(backend)
}

/// `SET key value [PX ms]`.
fn set_cmd(key: &[u8], value: &[u8], ttl: Option<Duration>) -> Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if let Some(ttl) = ttl {
        cmd.arg("PX").arg(ttl_ms(ttl));
    }
    cmd
}

/// A pipeline of `SET .. [PX ms]` for the entries at `indices`.
fn set_pipeline(
    entries: &[(&[u8], &[u8])],
    ttl: Option<Duration>,
    indices: impl IntoIterator<Item = usize>,
) -> Pipeline {
    let mut pipeline = redis::pipe();
    for i in indices {
        let (key, value) = entries[i];
        pipeline.add_command(set_cmd(key, value, ttl)).ignore();
    }
    pipeline
}

/// `ttl` in whole milliseconds for `PX`: rounded up, at least 1, at most [`MAX_PX_MS`].
fn ttl_ms(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000).max(1);
    u64::try_from(ms).unwrap_or(u64::MAX).min(MAX_PX_MS)
}

/// The positions of `keys` grouped by hash slot (each group in ascending order).
fn slot_groups<'k>(keys: impl Iterator<Item = &'k [u8]>) -> Vec<Vec<usize>> {
    let mut groups: HashMap<Slot, Vec<usize>> = HashMap::new();
    for (i, key) in keys.enumerate() {
        groups.entry(Slot::for_key(key)).or_default().push(i);
    }
    groups.into_values().collect()
}

pub(crate) fn backend(e: redis::RedisError) -> TierError {
    TierError::backend(TIER, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_rounded_up_to_whole_milliseconds() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(999)), 1);
        assert_eq!(ttl_ms(Duration::from_millis(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1001)), 2);
        assert_eq!(ttl_ms(Duration::from_secs(60)), 60_000);
        assert_eq!(ttl_ms(Duration::MAX), MAX_PX_MS);
    }

    #[test]
    fn set_command_has_px_only_with_a_ttl() {
        let args = |cmd: &Cmd| -> Vec<Vec<u8>> {
            cmd.args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(bytes) => bytes.to_vec(),
                    _ => b"<other>".to_vec(),
                })
                .collect()
        };
        let with = set_cmd(b"k", b"v", Some(Duration::from_micros(1500)));
        assert_eq!(args(&with), [&b"SET"[..], b"k", b"v", b"PX", b"2"]);
        let without = set_cmd(b"k", b"", None);
        assert_eq!(args(&without), [&b"SET"[..], b"k", b""]);
    }

    #[test]
    fn slot_groups_cover_every_key_once_and_share_hash_tags() {
        let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key:{i}").into_bytes()).collect();
        let mut keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        keys.push(b"{user1}:a");
        keys.push(b"{user1}:b");
        let groups = slot_groups(keys.iter().copied());
        let mut seen: Vec<usize> = groups.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..keys.len()).collect::<Vec<_>>());
        assert!(groups.len() > 100, "200 keys should spread over many slots");
        for group in &groups {
            assert!(group.windows(2).all(|w| w[0] < w[1]));
            let slot = Slot::for_key(keys[group[0]]);
            assert!(group.iter().all(|&i| Slot::for_key(keys[i]) == slot));
        }
        let tagged = groups.iter().find(|g| g.contains(&200)).unwrap();
        assert!(tagged.contains(&201));
    }

    #[test]
    fn builder_defaults_and_call_timeout() {
        let b = RedisTier::builder();
        assert_eq!(b.connection_timeout, Duration::from_secs(1));
        assert_eq!(b.response_timeout, Duration::from_millis(500));
        assert_eq!(b.call_timeout(), Duration::from_millis(1500));
        let b = b
            .connection_timeout(Duration::from_millis(200))
            .response_timeout(Duration::from_millis(50));
        assert_eq!(b.call_timeout(), Duration::from_millis(250));
    }

    #[test]
    #[should_panic(expected = "must be positive")]
    fn zero_timeout_is_refused() {
        let _ = RedisTier::builder().response_timeout(Duration::ZERO);
    }
}
