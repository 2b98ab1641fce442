//! Coherence across instances: the backplane's sending and receiving side, the local race
//! guard, tag versions and the staleness bound (see the crate docs' *Coherence* section for
//! the guarantees).
//!
//! The pieces, after the design in the project's `COHERENCE.md`:
//! - **one clock, the stream**: every invalidation is one message on the cache's
//!   [`Backplane`] stream, and its [`StreamId`] is its version; no wall clock orders
//!   anything ([`Coherence::version`]);
//! - **receivers drop, never re-read**: a key message removes the key from L1 (no L2 read,
//!   so no read storm); [`subscriber`] applies messages in stream order;
//! - **the local race** ([`guard`]): a load that overlaps an invalidation of its key does
//!   not put its result into L1;
//! - **tags without an index** ([`tags`]): an entry carries its version and tags, a tag
//!   invalidation raises the tag's version;
//! - **bounded staleness**: while the subscriber has not heard from the stream for
//!   `max_staleness`, L1 is not served ([`Coherence::l1_trusted`]).

pub(crate) mod guard;
mod outbox;
pub(crate) mod subscriber;
pub(crate) mod tags;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use layercache_tier::{Backplane, StreamId};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::message::{self, Action, Message};

pub(crate) use guard::{RaceGuard, Ticket};
pub(crate) use outbox::Outbox;
pub(crate) use tags::TagVersions;

/// Settings of the backplane side of a cache (builder options).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackplaneConfig {
    /// See [`TieredCacheBuilder::max_staleness`](crate::TieredCacheBuilder::max_staleness).
    pub(crate) max_staleness: Duration,
    /// See [`TieredCacheBuilder::backplane_queue`](crate::TieredCacheBuilder::backplane_queue).
    pub(crate) queue: usize,
    /// The limit of a publish made by a write (then it is queued).
    pub(crate) publish_timeout: Duration,
}

impl Default for BackplaneConfig {
    fn default() -> Self {
        BackplaneConfig {
            max_staleness: Duration::from_secs(5),
            queue: 10_000,
            publish_timeout: Duration::from_millis(250),
        }
    }
}

impl BackplaneConfig {
    /// How long one read waits for a message: a quarter of `max_staleness`, within
    /// 10 ms..=2 s, so a quiet stream still proves the connection alive well within the bound.
    pub(crate) fn block(&self) -> Duration {
        (self.max_staleness / 4).clamp(Duration::from_millis(10), Duration::from_secs(2))
    }
}

/// What L1 is told to drop when a message arrives: implemented by the cache (which knows
/// its key type), so the subscriber is not generic.
pub(crate) trait Sink: Send + Sync {
    /// Drops the key whose [`CacheKey`](crate::CacheKey) bytes are `key` from L1 (all of L1
    /// if they do not decode as a key).
    fn drop_key(&self, key: &[u8]);
    /// Drops every entry of L1.
    fn drop_all(&self);
}

/// The coherence state of one cache instance.
pub(crate) struct Coherence {
    /// This instance's id (messages it published are skipped when they come back).
    pub(crate) instance: u128,
    pub(crate) name: Arc<str>,
    pub(crate) guard: RaceGuard,
    pub(crate) tags: TagVersions,
    /// The newest stream id known to be in the past of every load that starts now: every
    /// message up to it was applied or published here.
    latest: Mutex<StreamId>,
    /// Whether L1 may be served (always, without a backplane).
    trusted: AtomicBool,
    /// When L1 stopped being served because of a fault, while it is not.
    bypassed_since: Mutex<Option<tokio::time::Instant>>,
    /// When the stream last vouched for L1: the send time of the last read that returned.
    heard: Mutex<tokio::time::Instant>,
    pub(crate) backplane: Option<Arc<dyn Backplane>>,
    pub(crate) config: BackplaneConfig,
    pub(crate) outbox: Mutex<Outbox>,
    /// Set when the cache is dropped; wakes the subscriber to stop.
    pub(crate) shutdown: Notify,
    pub(crate) stopped: AtomicBool,
    pub(crate) started: AtomicBool,
    pub(crate) clock: SharedClock,
    pub(crate) meters: subscriber::BusMeters,
}

impl Coherence {
    pub(crate) fn new(
        name: Arc<str>,
        backplane: Option<Arc<dyn Backplane>>,
        config: BackplaneConfig,
        clock: SharedClock,
    ) -> Self {
        // Without a backplane this instance is its own clock: versions start at its wall
        // clock, so entries written before a restart are not all older than this run.
        let latest = if backplane.is_some() {
            StreamId::ZERO
        } else {
            StreamId::new(clock.epoch_ms(), 0)
        };
        Coherence {
            instance: rand::random(),
            meters: if backplane.is_some() {
                subscriber::BusMeters::new(&name)
            } else {
                subscriber::BusMeters::noop()
            },
            name,
            guard: RaceGuard::new(),
            // Without a backplane nothing keeps tag versions current: re-read them.
            tags: TagVersions::new(
                backplane.is_none().then_some(config.max_staleness),
                Arc::clone(&clock),
            ),
            latest: Mutex::new(latest),
            trusted: AtomicBool::new(backplane.is_none()),
            bypassed_since: Mutex::new(None),
            heard: Mutex::new(tokio::time::Instant::now()),
            outbox: Mutex::new(Outbox::new(config.queue)),
            backplane,
            config,
            shutdown: Notify::new(),
            stopped: AtomicBool::new(false),
            started: AtomicBool::new(false),
            clock,
        }
    }

    /// The version a load that starts now gives its entry: the stream position; without a
    /// backplane, this instance's wall clock (the only clock it has; other instances over
    /// the same L2 compare it with theirs, so their clocks should agree).
    pub(crate) fn version(&self) -> StreamId {
        let latest = *self.latest.lock();
        if self.backplane.is_some() {
            latest
        } else {
            latest.max(StreamId::new(self.clock.epoch_ms(), 0))
        }
    }

    /// Moves [`version`](Self::version) up to `id`.
    pub(crate) fn advance(&self, id: StreamId) {
        let mut latest = self.latest.lock();
        if id > *latest {
            *latest = id;
        }
    }

    /// Whether L1 may be served now: always without a backplane; with one, only while the
    /// subscriber is caught up and has heard from the stream within `max_staleness`.
    #[inline]
    pub(crate) fn l1_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// When the stream last vouched for L1.
    pub(crate) fn heard(&self) -> tokio::time::Instant {
        *self.heard.lock()
    }

    /// A read sent at `at` returned.
    pub(crate) fn heard_at(&self, at: tokio::time::Instant) {
        *self.heard.lock() = at;
    }

    /// Stops serving L1 because of a fault noticed at `since` (silence past
    /// `max_staleness`, a gap); the time until [`trust`](Self::trust) is counted.
    pub(crate) fn distrust(&self, since: tokio::time::Instant) {
        let mut bypassed = self.bypassed_since.lock();
        if self.l1_trusted() {
            self.meters.bypassing.set(1.0);
            *bypassed = Some(since);
            self.trusted.store(false, Ordering::Release);
        }
    }

    /// Serves L1 again (the subscriber caught up), counting how long it was not served
    /// because of a fault (not the time before the first catch-up).
    pub(crate) fn trust(&self) {
        let mut bypassed = self.bypassed_since.lock();
        if let Some(since) = bypassed.take() {
            self.meters
                .stale_seconds
                .increment(since.elapsed().as_millis() as u64);
        }
        self.meters.bypassing.set(0.0);
        self.trusted.store(true, Ordering::Release);
    }

    /// Publishes one invalidation: on the backplane if it answers within the publish
    /// timeout (its id is returned), else into the outbox for the subscriber to send when
    /// the backplane is back. Without a backplane, `None`.
    pub(crate) async fn publish(&self, action: Action, subject: &[u8]) -> Option<StreamId> {
        let bp = self.backplane.as_ref()?;
        if !self.outbox.lock().is_empty() {
            // The backplane is known to be down: keep messages in order behind the queue.
            self.enqueue(action, subject);
            return None;
        }
        let (action, subject) = sendable(action, subject);
        let bytes = message::encode(&Message {
            action,
            source: self.instance,
            subject: subject.into(),
        });
        match tokio::time::timeout(self.config.publish_timeout, bp.publish(&self.name, &bytes))
            .await
        {
            Ok(Ok(id)) => {
                self.meters.published.increment(1);
                self.advance(id);
                Some(id)
            }
            Ok(Err(e)) => {
                tracing::debug!(cache = %self.name, error = %e, "backplane publish failed; queued");
                self.enqueue(action, subject);
                None
            }
            Err(_) => {
                tracing::debug!(cache = %self.name, "backplane publish timed out; queued");
                self.enqueue(action, subject);
                None
            }
        }
    }

    fn enqueue(&self, action: Action, subject: &[u8]) {
        let (action, subject) = sendable(action, subject);
        let mut outbox = self.outbox.lock();
        outbox.push(action, subject);
        self.meters.queue_depth.set(outbox.len() as f64);
    }

    /// A version for an invalidation that has no stream id: without a backplane, this
    /// instance's own clock (and it becomes the current version); with one whose publish
    /// failed, just after the current version (not adopted: a later load's entry stays
    /// older than it, which costs reloads until the message is published, never a stale
    /// read).
    pub(crate) fn local_version(&self) -> StreamId {
        let mut latest = self.latest.lock();
        let base = if self.backplane.is_some() {
            *latest
        } else {
            // After every version handed out so far, this one included.
            (*latest).max(StreamId::new(self.clock.epoch_ms(), 0))
        };
        let next = StreamId::new(base.ms, base.seq.saturating_add(1));
        if self.backplane.is_none() {
            *latest = next;
        }
        next
    }
}

/// The message that can carry an invalidation of `subject`: itself, or a clear of the cache
/// when the subject is over [`message::MAX_SUBJECT`] (a key that long cannot be named in
/// a message; dropping every L1 is the correct, costly reading).
fn sendable(action: Action, subject: &[u8]) -> (Action, &[u8]) {
    let probe = Message {
        action,
        source: 0,
        subject: subject.into(),
    };
    if probe.check().is_ok() {
        (action, subject)
    } else {
        (Action::Clear, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_too_long_for_a_message_becomes_a_clear() {
        let long = vec![b'k'; message::MAX_SUBJECT + 1];
        assert_eq!(sendable(Action::Remove, &long), (Action::Clear, &[][..]));
        assert_eq!(sendable(Action::Remove, b"k"), (Action::Remove, &b"k"[..]));
        assert_eq!(sendable(Action::Tag, &[0xff]), (Action::Clear, &[][..]));
    }
}
