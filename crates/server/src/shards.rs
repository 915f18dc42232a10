//! Counters and histograms that the hot paths write without sharing a cache line between cores.
//!
//! A Prometheus counter is one atomic, a histogram one lock: every request on every core writes
//! the same cache line, which then moves between the cores (on this kind of machine, a virtual
//! one, that was a fifth of a cached catalogue answer's cost). Here each thread writes its own
//! shard (a thread takes a shard index the first time it counts; threads past [`SHARDS`] share
//! one), and a scrape adds the shards up: the totals are exact when read, the writes are local.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Shards per metric: more than the runtime's worker threads on the machines this runs on.
const SHARDS: usize = 8;

/// The calling thread's shard.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// One value on a cache line of its own.
#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A monotonic counter (Prometheus `counter`), one shard per thread. Clones share the count.
#[derive(Clone, Default)]
pub struct ShardedCounter(Arc<[Padded; SHARDS]>);

impl ShardedCounter {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, n: u64) {
        self.0[shard()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total over the shards.
    pub fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ShardedCounter").field(&self.get()).finish()
    }
}

impl TypedMetric for ShardedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for ShardedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// The latency buckets' upper bounds, in seconds (an implicit `+Inf` bucket follows).
pub const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// One thread's part of a histogram: the count per bucket and the sum in nanoseconds.
#[derive(Default)]
#[repr(align(128))]
struct HistogramShard {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

/// A latency histogram over [`LATENCY_BUCKETS`] (Prometheus `histogram`), one shard per thread.
/// Clones share the counts.
#[derive(Clone, Default)]
pub struct ShardedHistogram(Arc<[HistogramShard; SHARDS]>);

impl ShardedHistogram {
    pub fn observe(&self, elapsed: std::time::Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS.iter().position(|&upper| secs <= upper).unwrap_or(BUCKETS - 1);
        let shard = &self.0[shard()];
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The sum in seconds, the count, and the count per bucket (not cumulative), over the shards.
    fn totals(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS.iter().chain([&f64::MAX]).map(|&upper| (upper, 0)).collect();
        let mut sum_nanos = 0u64;
        for shard in self.0.iter() {
            for (total, count) in buckets.iter_mut().zip(&shard.buckets) {
                total.1 += count.load(Ordering::Relaxed);
            }
            sum_nanos = sum_nanos.saturating_add(shard.sum_nanos.load(Ordering::Relaxed));
        }
        let count = buckets.iter().map(|b| b.1).sum();
        (sum_nanos as f64 / 1e9, count, buckets)
    }
}

impl std::fmt::Debug for ShardedHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sum, count, _) = self.totals();
        f.debug_struct("ShardedHistogram")
            .field("sum", &sum)
            .field("count", &count)
            .finish()
    }
}

impl TypedMetric for ShardedHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ShardedHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.totals();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_from_many_threads_add_up() {
        let counter = ShardedCounter::default();
        let histogram = ShardedHistogram::default();
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    for i in 0..1000u64 {
                        counter.inc();
                        histogram.observe(Duration::from_micros(i));
                    }
                });
            }
        });
        assert_eq!(counter.get(), 12_000);
        let (sum, count, buckets) = histogram.totals();
        assert_eq!(count, 12_000);
        // 0..=999 µs: all in the first bucket (≤ 1 ms), except 1 ms itself which is not observed.
        assert_eq!(buckets[0], (0.001, 12_000));
        assert!((sum - 12.0 * (0..1000u64).sum::<u64>() as f64 / 1e6).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn the_text_exposition_matches_prometheus_clients_own_types() {
        use prometheus_client::metrics::counter::Counter;
        use prometheus_client::metrics::histogram::Histogram;
        let render = |register: &dyn Fn(&mut prometheus_client::registry::Registry)| {
            let mut registry = prometheus_client::registry::Registry::default();
            register(&mut registry);
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        };
        // Exact in binary and in nanoseconds, so that both sums are the same float.
        let observed = [0.125, 0.25, 0.5, 2.0, 40.0];
        let ours = render(&|r| {
            let (c, h) = (ShardedCounter::default(), ShardedHistogram::default());
            c.inc_by(3);
            for v in observed {
                h.observe(Duration::from_secs_f64(v));
            }
            r.register("requests", "help", c);
            r.register("latency", "help", h);
        });
        let theirs = render(&|r| {
            let (c, h) = (Counter::<u64>::default(), Histogram::new(LATENCY_BUCKETS));
            c.inc_by(3);
            for v in observed {
                h.observe(v);
            }
            r.register("requests", "help", c);
            r.register("latency", "help", h);
        });
        assert_eq!(ours, theirs);
    }
}
