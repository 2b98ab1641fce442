//! The [`Backplane`] trait: an ordered, resumable stream of invalidation messages shared by
//! every instance of a cache.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{TierError, TierFuture};

/// A message's position in its stream, given by the server when the message was appended;
/// the only clock the coherence protocol uses (never a writer's wall clock).
///
/// The shape is a Redis Stream id, `<ms>-<seq>`: `ms` the server's time in milliseconds
/// since the Unix epoch when the entry was added and `seq` a counter within that
/// millisecond. Ids of one stream strictly increase; [`StreamId::ZERO`] is before every
/// message.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds since the Unix epoch, on the server's clock.
    pub ms: u64,
    /// Sequence number within `ms`.
    pub seq: u64,
}

impl StreamId {
    /// Before every message (`0-0`).
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };

    /// The id `<ms>-<seq>`.
    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A string that is not a stream id (`<ms>-<seq>`, both decimal `u64`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a stream id (expected <ms>-<seq>): {0:?}")]
pub struct ParseStreamIdError(pub String);

impl FromStr for StreamId {
    type Err = ParseStreamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseStreamIdError(s.chars().take(64).collect());
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(bad());
        }
        Ok(StreamId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// One message read from a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Its position (see [`StreamId`]).
    pub id: StreamId,
    /// Its bytes, as published (the front crate's versioned message; a backplane does not
    /// look inside).
    pub payload: Vec<u8>,
}

/// What one [`Subscription::read`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// The messages after the cursor, oldest first: at most the `max` asked, and none if
    /// the wait ran out first.
    Messages(Vec<Delivery>),
    /// The cursor cannot be resumed: messages after it may have been lost (the stream was
    /// trimmed past it, or deleted, or lost with a server that restarted empty). The
    /// reader cannot know what it missed; layercache clears its L1 and starts again from
    /// a new cursor.
    Gap,
}

/// A shared, ordered, resumable message stream per cache: how one instance of a cache
/// tells the others that a key (or a tag, or everything) changed.
///
/// Contract:
/// - [`publish`](Self::publish) appends and returns the message's [`StreamId`]; ids of
///   one channel strictly increase, in the order the server accepted the messages;
/// - a [`Subscription`] reads the messages *after* a cursor in that order, resumes from
///   any cursor it was given (after a reconnection too), and answers [`Read::Gap`] when it
///   cannot know that nothing after the cursor was lost. Reporting a gap that did not
///   happen costs a reader an L1 clear; missing one that did is a broken implementation;
/// - every call finishes or fails in bounded time (a read within its `block` plus the
///   backend's response timeout).
///
/// `channel` is the cache's name; the implementation derives its own key from it.
/// `layercache-redis` implements this with one Redis Stream per channel.
pub trait Backplane: Send + Sync + 'static {
    /// A short name for metrics and logs (`"redis"`).
    fn name(&self) -> &'static str;

    /// Appends `payload` to `channel`'s stream; the id the server gave it.
    ///
    /// # Errors
    /// [`TierError`] if the message may not have been appended.
    fn publish<'a>(&'a self, channel: &'a str, payload: &'a [u8]) -> TierFuture<'a, StreamId>;

    /// A reader of `channel`, on a connection of its own (a blocking read must not hold up
    /// publishes).
    ///
    /// # Errors
    /// [`TierError`] if the reader's connection could not be opened.
    fn subscribe<'a>(&'a self, channel: &'a str) -> TierFuture<'a, Box<dyn Subscription>>;
}

/// A reader of one channel of a [`Backplane`] (from [`Backplane::subscribe`]).
pub trait Subscription: Send + 'static {
    /// The messages after `after`, oldest first, at most `max` of them; if there are none
    /// yet, waits up to `block` for one. `after` is a [`StreamId`] this channel gave
    /// (by [`Backplane::publish`] or a previous read).
    ///
    /// # Errors
    /// [`TierError`] if the backend could not be read; the same cursor may be read again
    /// (implementations reconnect by themselves).
    fn read(&mut self, after: StreamId, block: Duration, max: usize) -> TierFuture<'_, Read>;
}

/// A [`TierError`] for a backplane message that could not be handled.
pub fn malformed(tier: &'static str, what: impl Into<String>) -> TierError {
    TierError::backend(
        tier,
        std::io::Error::new(std::io::ErrorKind::InvalidData, what.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_print_and_parse_like_redis() {
        let a = StreamId::new(1_700_000_000_000, 0);
        let b = StreamId::new(1_700_000_000_000, 1);
        let c = StreamId::new(1_700_000_000_001, 0);
        assert!(StreamId::ZERO < a && a < b && b < c);
        assert_eq!(b.to_string(), "1700000000000-1");
        assert_eq!("1700000000000-1".parse::<StreamId>(), Ok(b));
        assert_eq!("0-0".parse::<StreamId>(), Ok(StreamId::ZERO));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1",
            "a-1",
            "1-b",
            "+1-2",
            "1-2-3",
            "99999999999999999999-0",
        ] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad:?} parsed");
        }
    }
}
