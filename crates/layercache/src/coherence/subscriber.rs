//! The subscriber: one task per cache instance that reads the backplane stream in order and
//! applies each message to L1, sends what the outbox holds, and keeps the staleness bound.
//!
//! Each round: send the outbox; (re)subscribe if needed; if there is no cursor (first start,
//! or after a gap), publish a `Hello` to get one, drop L1 and forget tag versions (what
//! happened before the cursor cannot be known); then read after the cursor, waiting up to
//! [`BackplaneConfig::block`](super::BackplaneConfig::block). A read that returns (messages or none) proves the stream was
//! heard at the moment it was *sent*; L1 is trusted again once a read returns fewer
//! messages than asked (caught up). A watchdog beside the read distrusts L1 when nothing
//! has been heard for `max_staleness`, even if the read never returns (a frozen server
//! sends no error).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use layercache_tier::{Backplane, Read, StreamId, Subscription};
use metrics::{Counter, Gauge, Histogram};
use tokio::time::Instant;
use tracing::Instrument;

use super::{Coherence, Sink};
use crate::message::{self, Action, Message};

/// Messages asked for per read.
const READ_BATCH: usize = 512;
/// Wait after a failed round, doubled per failure in a row up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// The backplane's metrics (label `cache`).
pub(crate) struct BusMeters {
    pub(crate) published: Counter,
    pub(crate) publish_retries: Counter,
    pub(crate) applied: Counter,
    pub(crate) skipped_own: Counter,
    pub(crate) malformed: Counter,
    pub(crate) gaps: Counter,
    pub(crate) l1_clears: Counter,
    pub(crate) queue_depth: Gauge,
    pub(crate) overflows: Counter,
    pub(crate) bypassing: Gauge,
    pub(crate) stale_seconds: Counter,
    pub(crate) lag: Histogram,
}

impl BusMeters {
    /// Handles that record nothing (a cache without a backplane registers none of these).
    pub(crate) fn noop() -> Self {
        BusMeters {
            published: Counter::noop(),
            publish_retries: Counter::noop(),
            applied: Counter::noop(),
            skipped_own: Counter::noop(),
            malformed: Counter::noop(),
            gaps: Counter::noop(),
            l1_clears: Counter::noop(),
            queue_depth: Gauge::noop(),
            overflows: Counter::noop(),
            bypassing: Gauge::noop(),
            stale_seconds: Counter::noop(),
            lag: Histogram::noop(),
        }
    }

    pub(crate) fn new(cache: &str) -> Self {
        let c = |name: &'static str| metrics::counter!(name, "cache" => cache.to_string());
        let g = |name: &'static str| metrics::gauge!(name, "cache" => cache.to_string());
        BusMeters {
            published: c("layercache_backplane_published_total"),
            publish_retries: c("layercache_backplane_publish_retries_total"),
            applied: c("layercache_backplane_applied_total"),
            skipped_own: c("layercache_backplane_skipped_own_total"),
            malformed: c("layercache_backplane_malformed_total"),
            gaps: c("layercache_backplane_gaps_total"),
            l1_clears: c("layercache_backplane_l1_clears_total"),
            queue_depth: g("layercache_backplane_queue_depth"),
            overflows: c("layercache_backplane_queue_overflows_total"),
            bypassing: g("layercache_backplane_l1_bypassed"),
            stale_seconds: c("layercache_backplane_stale_milliseconds_total"),
            lag: metrics::histogram!("layercache_backplane_lag_seconds", "cache" => cache.to_string()),
        }
    }
}

/// The subscriber's state between rounds.
struct Reader {
    co: Arc<Coherence>,
    sink: Weak<dyn Sink>,
    bp: Arc<dyn Backplane>,
    sub: Option<Box<dyn Subscription>>,
    cursor: Option<StreamId>,
    failures: u32,
}

/// Starts the subscriber of `co` on the current Tokio runtime, if there is one and it has
/// not started yet; `false` if there is no runtime (the next async call tries again).
pub(crate) fn start(co: &Arc<Coherence>, sink: Weak<dyn Sink>) -> bool {
    let Some(bp) = co.backplane.clone() else {
        return true;
    };
    if co.started.load(Ordering::Acquire) {
        return true;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    if co.started.swap(true, Ordering::AcqRel) {
        return true;
    }
    let reader = Reader {
        co: Arc::clone(co),
        sink,
        bp,
        sub: None,
        cursor: None,
        failures: 0,
    };
    let span = tracing::info_span!("layercache.backplane", cache = %co.name);
    handle.spawn(reader.run().instrument(span));
    true
}

impl Reader {
    async fn run(mut self) {
        let co = Arc::clone(&self.co);
        loop {
            if co.stopped.load(Ordering::Acquire) {
                return;
            }
            let ok = {
                let round = self.round();
                tokio::pin!(round);
                loop {
                    // Read afresh each time: the round moves it when a read returns.
                    let deadline = co.heard() + co.config.max_staleness;
                    tokio::select! {
                        ok = &mut round => break ok,
                        () = co.shutdown.notified() => return,
                        () = tokio::time::sleep_until(deadline), if co.l1_trusted() => {
                            if co.heard() + co.config.max_staleness <= Instant::now() {
                                tracing::warn!(cache = %co.name, "backplane silent for max_staleness; L1 is bypassed until it is back");
                                co.distrust(deadline);
                            }
                        }
                    }
                }
            };
            self.after(ok).await;
        }
    }

    /// Records a round's outcome; after a failure, waits (within the round's bound).
    async fn after(&mut self, ok: bool) {
        let deadline = self.co.heard() + self.co.config.max_staleness;
        if deadline <= Instant::now() {
            self.co.distrust(deadline);
        }
        if ok {
            self.failures = 0;
            return;
        }
        self.sub = None;
        let wait = MIN_BACKOFF.saturating_mul(1 << self.failures.min(6));
        self.failures = self.failures.saturating_add(1);
        // The staleness deadline keeps running during the wait.
        let co = &self.co;
        let until = Instant::now() + wait.min(MAX_BACKOFF);
        loop {
            let deadline = co.heard() + co.config.max_staleness;
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                () = co.shutdown.notified() => {
                    // Let the run loop see `stopped` (the permit is spent here).
                    co.shutdown.notify_one();
                    return;
                }
                () = tokio::time::sleep_until(deadline), if co.l1_trusted() => {
                    tracing::warn!(cache = %co.name, "backplane silent for max_staleness; L1 is bypassed until it is back");
                    co.distrust(deadline);
                }
            }
        }
    }

    /// One round (see the module docs); `false` if the backplane failed.
    async fn round(&mut self) -> bool {
        if !self.flush().await {
            return false;
        }
        let co = Arc::clone(&self.co);
        if self.sub.is_none() {
            match self.bp.subscribe(&co.name).await {
                Ok(sub) => self.sub = Some(sub),
                Err(e) => {
                    tracing::debug!(error = %e, "backplane subscribe failed");
                    return false;
                }
            }
        }
        let cursor = match self.cursor {
            Some(c) => c,
            None => match self.hello().await {
                Some(c) => c,
                None => return false,
            },
        };
        let Some(sub) = self.sub.as_mut() else {
            return false;
        };
        let sent = Instant::now();
        match sub.read(cursor, co.config.block(), READ_BATCH).await {
            Ok(Read::Messages(batch)) => {
                let caught_up = batch.len() < READ_BATCH;
                for d in &batch {
                    self.apply(d.id, &d.payload);
                    self.cursor = Some(d.id);
                }
                co.heard_at(sent);
                if caught_up && !co.l1_trusted() {
                    tracing::info!("backplane caught up; L1 is served again");
                    co.trust();
                }
                true
            }
            Ok(Read::Gap) => {
                co.meters.gaps.increment(1);
                tracing::warn!(cursor = %cursor, "backplane stream lost messages after this instance's cursor; L1 is cleared");
                co.distrust(Instant::now());
                self.cursor = None;
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "backplane read failed");
                false
            }
        }
    }

    /// Gets a cursor by publishing a `Hello`, then drops L1 and forgets tag versions: what
    /// was published before it was not seen here.
    async fn hello(&mut self) -> Option<StreamId> {
        let co = &self.co;
        let bytes = message::encode(&Message {
            action: Action::Hello,
            source: co.instance,
            subject: (&[][..]).into(),
        });
        let id = match self.bp.publish(&co.name, &bytes).await {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(error = %e, "backplane hello failed");
                return None;
            }
        };
        co.meters.published.increment(1);
        co.tags.forget();
        if let Some(sink) = self.sink.upgrade() {
            co.meters.l1_clears.increment(1);
            sink.drop_all();
        }
        co.advance(id);
        self.cursor = Some(id);
        Some(id)
    }

    /// Sends what the outbox holds, oldest first; `false` if the backplane failed.
    async fn flush(&mut self) -> bool {
        let co = Arc::clone(&self.co);
        loop {
            let Some((action, subject)) = co.outbox.lock().front() else {
                return true;
            };
            let bytes = message::encode(&Message {
                action,
                source: co.instance,
                subject: subject.as_slice().into(),
            });
            co.meters.publish_retries.increment(1);
            match self.bp.publish(&co.name, &bytes).await {
                Ok(id) => {
                    co.advance(id);
                    co.meters.published.increment(1);
                    let mut outbox = co.outbox.lock();
                    if outbox.overflowed() {
                        co.meters.overflows.increment(1);
                    }
                    outbox.sent();
                    co.meters.queue_depth.set(outbox.len() as f64);
                    drop(outbox);
                    if action == Action::Tag {
                        if let Ok(tag) = std::str::from_utf8(&subject) {
                            co.tags.raise_tag(tag, id);
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "backplane publish of a queued message failed");
                    return false;
                }
            }
        }
    }

    /// Applies one message read from the stream.
    fn apply(&self, id: StreamId, payload: &[u8]) {
        let co = &self.co;
        let Some(sink) = self.sink.upgrade() else {
            return;
        };
        let msg = match message::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                // It may have been an invalidation: dropping L1 is the safe reading.
                co.meters.malformed.increment(1);
                tracing::warn!(id = %id, error = %e, "undecodable backplane message; L1 is cleared");
                sink.drop_all();
                co.advance(id);
                return;
            }
        };
        if msg.source == co.instance {
            co.meters.skipped_own.increment(1);
            co.advance(id);
            return;
        }
        match msg.action {
            Action::Set | Action::Remove => sink.drop_key(&msg.subject),
            Action::Tag => match std::str::from_utf8(&msg.subject) {
                Ok(tag) => co.tags.raise_tag(tag, id),
                Err(_) => co.tags.forget(),
            },
            Action::Clear => {
                co.tags.raise_clear(id);
                sink.drop_all();
            }
            Action::Hello => {
                // Another instance announcing itself: nothing to apply.
                co.advance(id);
                return;
            }
        }
        co.advance(id);
        co.meters.applied.increment(1);
        let now = co.clock.epoch_ms();
        co.meters
            .lag
            .record(now.saturating_sub(id.ms) as f64 / 1000.0);
    }
}
