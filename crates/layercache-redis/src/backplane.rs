//! [`RedisBackplane`]: a [`Backplane`] on one Redis Stream per channel.

use std::fmt;
use std::time::Duration;

use layercache_tier::{
    malformed, Backplane, Delivery, Read, StreamId, Subscription, TierError, TierFuture,
};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::AsyncConnectionConfig;

use crate::error::{redact, Error};
use crate::tier::{
    backend, RedisTier, RedisTierBuilder, CLUSTER_MAX_RETRY_WAIT_MS, CLUSTER_MIN_RETRY_WAIT_MS,
    CLUSTER_RETRIES, TIER,
};

/// Default `MAXLEN ~` of every `XADD`: the stream keeps about this many entries.
const DEFAULT_MAX_LEN: usize = 10_000;

/// The field of a stream entry that holds the payload.
const FIELD: &str = "m";

/// The stream key of `channel`: `__layercache:bus:{<channel>}`. The braces are a Cluster
/// hash tag, so that the key's slot depends on the channel only.
pub fn stream_key(channel: &str) -> String {
    format!("__layercache:bus:{{{channel}}}")
}

/// A Redis server or Redis Cluster as a [`Backplane`]: one Redis Stream per channel (see
/// the [crate docs](crate#backplane) for the keys, commands and gap rule).
///
/// Publishes share one multiplexed connection (as [`RedisTier`]); each
/// [`subscribe`](Backplane::subscribe) opens a connection of its own for its blocking reads.
pub struct RedisBackplane {
    /// Publishes go through a tier's connection (same timeouts and reconnection).
    shared: RedisTier,
    /// Where subscriptions open their own connections.
    source: Source,
    max_len: usize,
    connection_timeout: Duration,
    response_timeout: Duration,
    target: String,
}

/// What a subscription connects to.
#[derive(Clone)]
enum Source {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

/// Configures and connects a [`RedisBackplane`] (from [`RedisBackplane::builder`]).
#[derive(Debug, Clone)]
pub struct RedisBackplaneBuilder {
    tier: RedisTierBuilder,
    connection_timeout: Duration,
    response_timeout: Duration,
    max_len: usize,
}

impl Default for RedisBackplaneBuilder {
    fn default() -> Self {
        RedisBackplaneBuilder {
            tier: RedisTierBuilder::default(),
            connection_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
            max_len: DEFAULT_MAX_LEN,
        }
    }
}

impl RedisBackplaneBuilder {
    /// The limit of one connection attempt to a node. Default: 1 s.
    ///
    /// # Panics
    /// If `timeout` is zero.
    #[must_use]
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.tier = self.tier.connection_timeout(timeout);
        self.connection_timeout = timeout;
        self
    }

    /// The limit of the wait for one reply. Default: 500 ms. A publish is limited to the
    /// connection timeout plus this; a read to its `block` plus both.
    ///
    /// # Panics
    /// If `timeout` is zero.
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.tier = self.tier.response_timeout(timeout);
        self.response_timeout = timeout;
        self
    }

    /// The `MAXLEN ~ n` of every `XADD`: each stream keeps at least `n` entries and, as
    /// Redis trims whole radix-tree nodes only, somewhat more (by default up to 100 more).
    /// Default: 10 000 entries. A reader that falls further behind than this gets
    /// [`Read::Gap`].
    ///
    /// # Panics
    /// If `n` is zero.
    #[must_use]
    pub fn max_len(mut self, n: usize) -> Self {
        assert!(n > 0, "max_len must be positive");
        self.max_len = n;
        self
    }

    /// Connects to one Redis server (URL forms as [`RedisTierBuilder::connect`]).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] if `url` does not parse; [`Error::Connect`] if the server could
    /// not be reached.
    pub async fn connect(self, url: &str) -> Result<RedisBackplane, Error> {
        let shared = self.tier.clone().connect(url).await?;
        let client = redis::Client::open(url).map_err(|e| Error::InvalidUrl {
            url: redact(url),
            source: Box::new(e),
        })?;
        Ok(self.finish(shared, Source::Single(client), redact(url)))
    }

    /// Connects to a Redis Cluster through some of its nodes (as
    /// [`RedisTierBuilder::connect_cluster`]).
    ///
    /// # Errors
    /// [`Error::NoNodes`], [`Error::InvalidUrl`] or [`Error::Connect`], as for
    /// [`RedisTierBuilder::connect_cluster`].
    pub async fn connect_cluster(self, nodes: &[&str]) -> Result<RedisBackplane, Error> {
        let shared = self.tier.clone().connect_cluster(nodes).await?;
        let target = nodes
            .iter()
            .map(|n| redact(n))
            .collect::<Vec<_>>()
            .join(", ");
        // No response timeout of redis-rs's own: a blocking XREAD outlasts any fixed one;
        // each read is bounded by a timeout around it instead.
        let client = ClusterClientBuilder::new(nodes.iter().copied())
            .connection_timeout(self.connection_timeout)
            .overall_response_timeout(None)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
            .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
            .retry_wait_formula(10, 2)
            .build()
            .map_err(|e| Error::Connect {
                target: target.clone(),
                source: Box::new(e),
            })?;
        Ok(self.finish(shared, Source::Cluster(Box::new(client)), target))
    }

    fn finish(self, shared: RedisTier, source: Source, target: String) -> RedisBackplane {
        RedisBackplane {
            shared,
            source,
            max_len: self.max_len,
            connection_timeout: self.connection_timeout,
            response_timeout: self.response_timeout,
            target,
        }
    }
}

impl RedisBackplane {
    /// A builder, to set timeouts and `max_len` before connecting.
    pub fn builder() -> RedisBackplaneBuilder {
        RedisBackplaneBuilder::default()
    }

    /// Connects to one Redis server with the defaults; see [`RedisBackplaneBuilder::connect`].
    ///
    /// # Errors
    /// As [`RedisBackplaneBuilder::connect`].
    pub async fn connect(url: &str) -> Result<RedisBackplane, Error> {
        RedisBackplaneBuilder::default().connect(url).await
    }

    /// Connects to a Redis Cluster with the defaults; see
    /// [`RedisBackplaneBuilder::connect_cluster`].
    ///
    /// # Errors
    /// As [`RedisBackplaneBuilder::connect_cluster`].
    pub async fn connect_cluster(nodes: &[&str]) -> Result<RedisBackplane, Error> {
        RedisBackplaneBuilder::default()
            .connect_cluster(nodes)
            .await
    }

    /// Whether this backplane talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.source, Source::Cluster(_))
    }

    /// The `MAXLEN ~` of each `XADD`.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("cluster", &self.is_cluster())
            .field("target", &self.target)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl Backplane for RedisBackplane {
    fn name(&self) -> &'static str {
        TIER
    }

    fn publish<'a>(&'a self, channel: &'a str, payload: &'a [u8]) -> TierFuture<'a, StreamId> {
        Box::pin(async move {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(stream_key(channel))
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
                .arg("*")
                .arg(FIELD)
                .arg(payload);
            let id: String = self.shared.query(&cmd).await?;
            id.parse()
                .map_err(|e| malformed(TIER, format!("XADD answered an id that {e}")))
        })
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> TierFuture<'a, Box<dyn Subscription>> {
        Box::pin(async move {
            let mut sub = RedisSubscription {
                key: stream_key(channel),
                source: self.source.clone(),
                conn: None,
                connection_timeout: self.connection_timeout,
                response_timeout: self.response_timeout,
            };
            let limit = self.connection_timeout + self.response_timeout;
            match tokio::time::timeout(limit, sub.connect()).await {
                Ok(conn) => sub.conn = Some(conn?),
                Err(_) => {
                    return Err(TierError::Timeout {
                        tier: TIER,
                        after: limit,
                    })
                }
            }
            Ok(Box::new(sub) as Box<dyn Subscription>)
        })
    }
}

/// A subscription's own connection.
enum ReadConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// A reader of one stream, on a connection of its own (see [`RedisBackplane`]).
struct RedisSubscription {
    key: String,
    source: Source,
    /// `None` after a failed read: the next read opens a new connection. (A read that timed
    /// out may leave its `XREAD BLOCK` pending on the server, which would hold up the next
    /// command on that connection; a new connection has nothing pending.)
    conn: Option<ReadConn>,
    connection_timeout: Duration,
    response_timeout: Duration,
}

/// One stream entry as redis-rs decodes it: id and the flat `field, value, ...` list.
type Entry = (String, Vec<Vec<u8>>);
/// An `XREAD` reply: nil when the block ran out, else `[[key, [entry...]]]`.
type XreadReply = Option<Vec<(Vec<u8>, Vec<Entry>)>>;

impl RedisSubscription {
    /// Opens a connection (one attempt, within the connection timeout; on a cluster, the
    /// slot map and the masters).
    async fn connect(&self) -> Result<ReadConn, TierError> {
        match &self.source {
            Source::Single(client) => {
                // No response timeout: the read's own timeout covers its block.
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.connection_timeout))
                    .set_response_timeout(None);
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(backend)?;
                Ok(ReadConn::Single(conn))
            }
            Source::Cluster(client) => {
                let conn = client.get_async_connection().await.map_err(backend)?;
                Ok(ReadConn::Cluster(conn))
            }
        }
    }

    async fn read_once(
        &mut self,
        after: StreamId,
        block: Duration,
        max: usize,
    ) -> Result<Read, TierError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let block_ms = u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipe = redis::pipe();
        pipe.cmd("XREAD")
            .arg("COUNT")
            .arg(max)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(after.to_string());
        // After the XREAD has returned, on the same connection: the stream's first entry.
        // A trim before or during the XREAD shows here now; one after this shows at the
        // next read, whose XRANGE runs after it. Either way no trim goes unseen.
        pipe.cmd("XRANGE")
            .arg(&self.key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        let (read, first): (XreadReply, Vec<Entry>) = match self.conn.as_mut() {
            Some(ReadConn::Single(conn)) => query(conn, &pipe).await?,
            Some(ReadConn::Cluster(conn)) => query(conn, &pipe).await?,
            None => unreachable!("connected above"),
        };
        if after != StreamId::ZERO {
            // `after` was an entry of this stream. If the stream's first entry is now later
            // (or there is none), `after` was trimmed or lost, and so may entries after it:
            // a gap. (Conservative: a trim that removed only `after` itself is a gap too.)
            let first = match first.first() {
                Some((id, _)) => Some(parse_id(id)?),
                None => None,
            };
            if first.is_none_or(|first| first > after) {
                return Ok(Read::Gap);
            }
        }
        let entries = read
            .into_iter()
            .flatten()
            .find(|(key, _)| key == self.key.as_bytes())
            .map(|(_, entries)| entries)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            out.push(Delivery {
                id: parse_id(&id)?,
                payload: payload(fields),
            });
        }
        Ok(Read::Messages(out))
    }
}

impl Subscription for RedisSubscription {
    fn read(&mut self, after: StreamId, block: Duration, max: usize) -> TierFuture<'_, Read> {
        Box::pin(async move {
            if max == 0 {
                return Ok(Read::Messages(Vec::new()));
            }
            // Connecting, then the block, then the reply.
            let limit = block
                .saturating_add(self.connection_timeout)
                .saturating_add(self.response_timeout);
            let result = match tokio::time::timeout(limit, self.read_once(after, block, max)).await
            {
                Ok(result) => result,
                Err(_) => Err(TierError::Timeout {
                    tier: TIER,
                    after: limit,
                }),
            };
            if result.is_err() {
                // Reconnect at the next read.
                self.conn = None;
            }
            result
        })
    }
}

async fn query<T: redis::FromRedisValue>(
    conn: &mut impl ConnectionLike,
    pipe: &redis::Pipeline,
) -> Result<T, TierError> {
    pipe.query_async(conn).await.map_err(backend)
}

fn parse_id(id: &str) -> Result<StreamId, TierError> {
    id.parse()
        .map_err(|e| malformed(TIER, format!("stream entry id: {e}")))
}

/// The value of field `m` of an entry's `field, value, ...` list; empty if it has none (an
/// entry not written by [`RedisBackplane::publish`]).
fn payload(fields: Vec<Vec<u8>>) -> Vec<u8> {
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if name == FIELD.as_bytes() {
            return value;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hash_tagged_by_channel() {
        assert_eq!(stream_key("users"), "__layercache:bus:{users}");
        use redis::cluster_routing::Slot;
        assert_eq!(
            Slot::for_key(stream_key("users").as_bytes()),
            Slot::for_key(b"users")
        );
    }

    #[test]
    fn payload_is_field_m() {
        let f = |v: &[&[u8]]| v.iter().map(|b| b.to_vec()).collect::<Vec<_>>();
        assert_eq!(payload(f(&[b"m", b"\0x"])), b"\0x");
        assert_eq!(payload(f(&[b"a", b"1", b"m", b"2"])), b"2");
        assert_eq!(payload(f(&[b"a", b"1"])), b"");
        assert_eq!(payload(f(&[b"m"])), b"");
    }

    #[test]
    #[should_panic(expected = "max_len must be positive")]
    fn zero_max_len_is_refused() {
        let _ = RedisBackplane::builder().max_len(0);
    }
}
