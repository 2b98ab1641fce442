//! The metrics a [`TieredCache`](crate::TieredCache) records, with handles made once per
//! cache so the hit path does not build a metric key (a formatted label and a hash) per call.
//!
//! Handles bind to the `metrics` recorder installed when the cache is built: install the
//! recorder (for example `metrics-exporter-prometheus`) before building caches.

use metrics::{Counter, Histogram};

/// Pre-made metric handles, labelled with the cache's name.
pub(crate) struct Meters {
    pub(crate) hit_l1: Counter,
    pub(crate) hit_l2: Counter,
    pub(crate) miss: Counter,
    pub(crate) load_ok: Counter,
    pub(crate) load_absent: Counter,
    pub(crate) load_error: Counter,
    pub(crate) load_seconds: Histogram,
    pub(crate) skipped_oversized: Counter,
    pub(crate) skipped_l2_error: Counter,
}

impl Meters {
    pub(crate) fn new(cache: &str) -> Self {
        let c = |name: &'static str, key: &'static str, value: &'static str| metrics::counter!(name, "cache" => cache.to_string(), key => value);
        Meters {
            hit_l1: c("layercache_hits_total", "tier", "l1"),
            hit_l2: c("layercache_hits_total", "tier", "l2"),
            miss: c("layercache_misses_total", "tier", "all"),
            load_ok: c("layercache_loads_total", "outcome", "ok"),
            load_absent: c("layercache_loads_total", "outcome", "absent"),
            load_error: c("layercache_loads_total", "outcome", "error"),
            load_seconds: metrics::histogram!("layercache_load_seconds", "cache" => cache.to_string()),
            skipped_oversized: c("layercache_l2_writes_skipped_total", "reason", "oversized"),
            skipped_l2_error: c("layercache_l2_writes_skipped_total", "reason", "l2_error"),
        }
    }
}
