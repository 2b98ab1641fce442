//! Timeouts and a circuit breaker around an L2 [`Tier`], so a sick L2 never takes the
//! application down: every call has a deadline, and after repeated failures the tier is
//! not called at all for a while (calls fail fast with [`TierError::CircuitOpen`]) until
//! one probe call succeeds.
//!
//! States (the classic breaker of Nygard, *Release It!*, 2007):
//! - **closed**: calls go through; `failure_threshold` failures in a row open it;
//! - **open**: calls fail at once, for `open_for`;
//! - **half-open**: one probe call goes through; success closes the breaker, failure opens
//!   it again. Other calls fail fast while the probe is in flight.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use layercache_tier::{Tier, TierError};
use parking_lot::Mutex;
use tokio::time::Instant;

/// Settings of the timeout and circuit breaker around L2 calls.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// The deadline of one L2 call. Default: 250 ms.
    pub call_timeout: Duration,
    /// Failures (errors or timeouts) in a row that open the breaker. Default: 5.
    pub failure_threshold: u32,
    /// How long the breaker stays open before a probe. Default: 500 ms.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            call_timeout: Duration::from_millis(250),
            failure_threshold: 5,
            open_for: Duration::from_millis(500),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// An L2 tier behind a timeout and a circuit breaker.
pub(crate) struct Guarded {
    tier: Arc<dyn Tier>,
    config: BreakerConfig,
    state: Mutex<State>,
    /// The cache's name, for metrics.
    cache: Arc<str>,
    /// `layercache_l2_errors_total{kind="circuit_open"}` per op in [`OPS`], made once: while
    /// the breaker is open every L1 miss is refused here, so no label set is built per call.
    refused: [metrics::Counter; OPS.len()],
}

/// The ops [`Guarded::call`] is called with (the `op` label).
const OPS: [&str; 8] = [
    "get",
    "set",
    "delete",
    "get_many",
    "set_many",
    "add",
    "compare_and_set",
    "compare_and_delete",
];

impl Guarded {
    pub(crate) fn new(tier: Arc<dyn Tier>, config: BreakerConfig, cache: Arc<str>) -> Self {
        let refused = OPS.map(|op| {
            metrics::counter!("layercache_l2_errors_total", "cache" => cache.to_string(), "tier" => tier.name(), "op" => op, "kind" => "circuit_open")
        });
        let g = Guarded {
            tier,
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
            cache,
            refused,
        };
        g.gauge(0.0);
        g
    }

    fn gauge(&self, open: f64) {
        metrics::gauge!("layercache_l2_breaker_open", "cache" => self.cache.to_string(), "tier" => self.tier.name())
            .set(open);
    }

    /// Whether a call may go to the tier now.
    fn admit(&self) -> bool {
        let mut state = self.state.lock();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    fn record(&self, ok: bool) {
        let mut state = self.state.lock();
        let next = match (*state, ok) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.config.failure_threshold => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            (_, false) => State::Open {
                until: Instant::now() + self.config.open_for,
            },
        };
        let was_open = !matches!(*state, State::Closed { .. });
        let is_open = !matches!(next, State::Closed { .. });
        *state = next;
        drop(state);
        if was_open != is_open {
            self.gauge(f64::from(u8::from(is_open)));
            tracing::info!(cache = %self.cache, tier = self.tier.name(), open = is_open, "L2 circuit breaker changed state");
        }
    }

    /// Runs one L2 call under the breaker and the timeout; `call` is only invoked if the
    /// breaker lets it through.
    pub(crate) async fn call<'a, R, F>(
        &'a self,
        op: &'static str,
        call: impl FnOnce(&'a dyn Tier) -> F,
    ) -> Result<R, TierError>
    where
        F: Future<Output = Result<R, TierError>>,
    {
        let name = self.tier.name();
        if !self.admit() {
            match OPS.iter().position(|&o| o == op) {
                Some(i) => self.refused[i].increment(1),
                None => self.count_error(op, "circuit_open"),
            }
            return Err(TierError::CircuitOpen { tier: name });
        }
        let result = match tokio::time::timeout(self.config.call_timeout, call(&*self.tier)).await {
            Ok(r) => r,
            Err(_) => Err(TierError::Timeout {
                tier: name,
                after: self.config.call_timeout,
            }),
        };
        self.record(result.is_ok());
        if let Err(e) = &result {
            let kind = match e {
                TierError::Timeout { .. } => "timeout",
                TierError::CircuitOpen { .. } => "circuit_open",
                _ => "backend",
            };
            self.count_error(op, kind);
            tracing::debug!(cache = %self.cache, tier = name, op, error = %e, "L2 call failed");
        }
        result
    }

    /// Counts one failed (or refused) call in `layercache_l2_errors_total`.
    fn count_error(&self, op: &'static str, kind: &'static str) {
        metrics::counter!("layercache_l2_errors_total", "cache" => self.cache.to_string(), "tier" => self.tier.name(), "op" => op, "kind" => kind)
            .increment(1);
    }

    /// The tier (for what it supports; calls go through [`call`](Self::call)).
    pub(crate) fn tier(&self) -> &dyn Tier {
        &*self.tier
    }

    /// Whether the breaker is open now (for tests and metrics).
    pub(crate) fn is_open(&self) -> bool {
        !matches!(*self.state.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use layercache_tier::TierFuture;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// A tier that fails while `down` and counts the calls that reach it.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        calls: AtomicU32,
    }

    impl Tier for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn get<'a>(&'a self, _: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let down = self.down.load(Ordering::SeqCst);
            Box::pin(async move {
                if down {
                    Err(TierError::backend("flaky", std::io::Error::other("down")))
                } else {
                    Ok(None)
                }
            })
        }
        fn set<'a>(&'a self, _: &'a [u8], _: &'a [u8], _: Option<Duration>) -> TierFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
        fn delete<'a>(&'a self, _: &'a [u8]) -> TierFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_probes_and_closes() {
        let flaky = Arc::new(Flaky::default());
        let g = Guarded::new(flaky.clone(), BreakerConfig::default(), "t".into());
        flaky.down.store(true, Ordering::SeqCst);
        for _ in 0..100 {
            let _ = g.call("get", |t| t.get(b"k")).await;
        }
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            5,
            "the breaker capped the calls"
        );
        assert!(g.is_open());
        tokio::time::advance(Duration::from_millis(501)).await;
        assert!(
            g.call("get", |t| t.get(b"k")).await.is_err(),
            "the probe fails"
        );
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 6);
        flaky.down.store(false, Ordering::SeqCst);
        assert!(matches!(
            g.call("get", |t| t.get(b"k")).await,
            Err(TierError::CircuitOpen { .. })
        ));
        tokio::time::advance(Duration::from_millis(501)).await;
        assert!(g.call("get", |t| t.get(b"k")).await.is_ok());
        assert!(!g.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_call_times_out() {
        struct Slow;
        impl Tier for Slow {
            fn name(&self) -> &'static str {
                "slow"
            }
            fn get<'a>(&'a self, _: &'a [u8]) -> TierFuture<'a, Option<Vec<u8>>> {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok(None)
                })
            }
            fn set<'a>(
                &'a self,
                _: &'a [u8],
                _: &'a [u8],
                _: Option<Duration>,
            ) -> TierFuture<'a, ()> {
                Box::pin(async { Ok(()) })
            }
            fn delete<'a>(&'a self, _: &'a [u8]) -> TierFuture<'a, ()> {
                Box::pin(async { Ok(()) })
            }
        }
        let g = Guarded::new(Arc::new(Slow), BreakerConfig::default(), "t".into());
        let r = g.call("get", |t| t.get(b"k")).await;
        assert!(matches!(r, Err(TierError::Timeout { .. })), "{r:?}");
    }
}
