//! Hill climbing of the W-TinyLFU admission window size.
//!
//! The hit ratio is sampled over periods of `sample_size` requests (10 × capacity, the
//! sketch's aging period). After each period the window is moved by the step size in the
//! direction that last improved the hit ratio, or turned back when it got worse. The step
//! decays by 2% per period and is restarted at 6.25% of capacity when the hit ratio jumps by
//! 5 points or more (a workload change). Constants as in Caffeine's `BoundedLocalCache`;
//! method from Einziger et al., "Adaptive Software Cache Management", Middleware 2018.

const STEP_PERCENT: f64 = 0.0625;
const STEP_DECAY_RATE: f64 = 0.98;
const RESTART_THRESHOLD: f64 = 0.05;

pub(crate) struct HillClimber {
    hits: u64,
    misses: u64,
    previous_hit_rate: f64,
    step: f64,
    maximum: u64,
}

impl HillClimber {
    pub(crate) fn new(maximum: u64) -> Self {
        HillClimber {
            hits: 0,
            misses: 0,
            previous_hit_rate: 0.0,
            // The first move shrinks the window: most workloads favour frequency.
            step: -STEP_PERCENT * maximum as f64,
            maximum,
        }
    }

    #[inline]
    pub(crate) fn record_hit(&mut self) {
        self.hits += 1;
    }

    /// Counts `count` hits at once.
    #[inline]
    pub(crate) fn record_hits(&mut self, count: u64) {
        self.hits += count;
    }

    #[inline]
    pub(crate) fn record_miss(&mut self) {
        self.misses += 1;
    }

    /// Forgets the current sample (used while the sketch is not yet sized).
    pub(crate) fn reset_sample(&mut self) {
        self.hits = 0;
        self.misses = 0;
        self.previous_hit_rate = 0.0;
    }

    /// The signed window adjustment in weight units, once a sample of `sample_size` requests
    /// is complete; `None` before that.
    pub(crate) fn adjustment(&mut self, sample_size: u64) -> Option<i64> {
        let requests = self.hits + self.misses;
        if requests < sample_size.max(1) {
            return None;
        }
        let hit_rate = self.hits as f64 / requests as f64;
        let change = hit_rate - self.previous_hit_rate;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            STEP_PERCENT * self.maximum as f64 * if amount >= 0.0 { 1.0 } else { -1.0 }
        } else {
            STEP_DECAY_RATE * amount
        };
        self.previous_hit_rate = hit_rate;
        self.hits = 0;
        self.misses = 0;
        Some(amount as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_direction_while_improving_and_turns_back_when_worse() {
        let mut c = HillClimber::new(1000);
        for _ in 0..50 {
            c.record_hit();
        }
        for _ in 0..50 {
            c.record_miss();
        }
        assert_eq!(c.adjustment(200), None);
        // 50% after 0%: improved, keep the initial (shrinking) direction at 6.25%.
        assert_eq!(c.adjustment(100), Some(-62));
        for _ in 0..100 {
            c.record_miss();
        }
        // 0% after 50%: worse, turn around.
        assert!(c.adjustment(100).unwrap() > 0);
    }
}
