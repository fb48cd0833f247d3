//! Prometheus metrics, encoded by `prometheus-client` in the text format (version 0.0.4).
//!
//! Request counts and latencies are kept here as requests finish. The engines' and caches'
//! counters (atomics the engines own) are read at scrape time into constant metrics. Samples
//! are encoded in a fixed order (builds, then model roles, sorted; requests by route and
//! status), so two scrapes read the same way: prometheus-client's `Family` keeps its samples
//! in a hash map.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::Response;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::registry::Registry;

use super::error::ApiError;
use super::router::{full, RouteResult};
use super::state::State;

/// Upper bounds of the request latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct EngineLabels {
    build: String,
    model: String,
    role: String,
    /// The cell group read; empty for the build's own reading.
    group: String,
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct DeviceLabels {
    build: String,
    model: String,
    role: String,
    group: String,
    device: String,
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct TierLabels {
    build: String,
    tier: &'static str,
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct BuildLabels {
    build: String,
}

/// Request counters and latency histograms by route.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestLabels, Counter>>,
    latency: Mutex<BTreeMap<RouteLabels, Histogram>>,
    abandoned: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, route: &'static str, status: u16, seconds: f64) {
        self.requests
            .lock()
            .expect("metrics lock poisoned; this is a bug")
            .entry(RequestLabels { route, status })
            .or_default()
            .inc();
        self.latency
            .lock()
            .expect("metrics lock poisoned; this is a bug")
            .entry(RouteLabels { route })
            .or_insert_with(|| Histogram::new(BUCKETS))
            .observe(seconds);
    }

    /// Records a request whose client went away before it was answered.
    pub fn abandoned(&self) {
        self.abandoned.inc();
    }

    /// Registers the request families (handles on the live metrics) with `registry`.
    fn register(&self, registry: &mut Registry) {
        let requests = self
            .requests
            .lock()
            .expect("metrics lock poisoned; this is a bug")
            .iter()
            .map(|(l, c)| (l.clone(), c.clone()))
            .collect();
        registry.register_collector(Box::new(Ordered {
            name: "cistrack_requests",
            help: "HTTP requests by route and status.",
            samples: requests,
        }));
        let latency = self
            .latency
            .lock()
            .expect("metrics lock poisoned; this is a bug")
            .iter()
            .map(|(l, h)| (l.clone(), h.clone()))
            .collect();
        registry.register_collector(Box::new(Ordered {
            name: "cistrack_request_duration_seconds",
            help: "HTTP request latency by route.",
            samples: latency,
        }));
        registry.register_collector(Box::new(Single {
            name: "cistrack_requests_abandoned",
            help: "HTTP requests whose client went away before the answer (their queued windows are dropped).",
            metric: self.abandoned.clone(),
        }));
    }

    /// The request families alone, as text (tests).
    #[cfg(test)]
    fn encode_requests(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a string");
        out
    }
}

/// One metric family with its samples in the order given. The name is without the `_total`
/// that the encoder adds to counters.
#[derive(Debug)]
struct Ordered<L, M> {
    name: &'static str,
    help: &'static str,
    samples: Vec<(L, M)>,
}

impl<L, M> Ordered<L, M> {
    fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: L, metric: M) {
        self.samples.push((labels, metric));
    }
}

impl<L, M> Collector for Ordered<L, M>
where
    L: EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
    M: EncodeMetric + TypedMetric + std::fmt::Debug + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let mut family = encoder.encode_descriptor(self.name, self.help, None, M::TYPE)?;
        for (labels, metric) in &self.samples {
            metric.encode(family.encode_family(labels)?)?;
        }
        Ok(())
    }
}

/// One metric without labels.
#[derive(Debug)]
struct Single<M> {
    name: &'static str,
    help: &'static str,
    metric: M,
}

impl<M> Collector for Single<M>
where
    M: EncodeMetric + TypedMetric + std::fmt::Debug + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        self.metric
            .encode(encoder.encode_descriptor(self.name, self.help, None, M::TYPE)?)
    }
}

/// `GET /metrics`.
pub(super) async fn answer(state: &State) -> RouteResult {
    let mut registry = Registry::default();
    state.metrics.register(&mut registry);
    let mut scored = Ordered::new("cistrack_windows_scored", "Windows run through the model.");
    let mut skipped = Ordered::new(
        "cistrack_windows_skipped",
        "Windows skipped for having no A/C/G/T base.",
    );
    let mut cancelled = Ordered::new(
        "cistrack_windows_cancelled",
        "Queued windows dropped because their requesters left.",
    );
    let mut batches = Ordered::new("cistrack_batches", "Model calls.");
    let mut rows = Ordered::new(
        "cistrack_batch_windows",
        "Windows in all model calls (divide by batches for the mean batch size).",
    );
    let mut fill = Ordered::new(
        "cistrack_batch_fill_ratio",
        "Mean batch size over the maximum batch size.",
    );
    let mut queue = Ordered::new(
        "cistrack_queue_windows",
        "Windows waiting for a model worker.",
    );
    let mut inference = Ordered::new("cistrack_inference_seconds", "Time spent in ONNX Runtime.");
    let mut device = Ordered::new(
        "cistrack_device_info",
        "Where each model runs (cpu or cuda).",
    );
    let mut hits = Ordered::new("cistrack_cache_hits", "Tile cache hits by tier.");
    let mut misses = Ordered::new("cistrack_cache_misses", "Tile cache misses by tier.");
    let mut corrupt = Ordered::new(
        "cistrack_cache_corrupt_entries",
        "Cache entries that failed their checksum (recomputed).",
    );
    let mut evictions = Ordered::new(
        "cistrack_cache_evictions",
        "Disk cache entries evicted to stay under the size limit.",
    );
    let mut redis_up = Ordered::new(
        "cistrack_cache_redis_up",
        "1 while the shared cache tier (Redis) answers, 0 during an outage.",
    );
    let mut redis_errors = Ordered::new(
        "cistrack_cache_redis_errors",
        "Failed calls to the shared cache tier (outages and refused commands).",
    );
    let mut redis_writes = Ordered::new(
        "cistrack_cache_redis_writes",
        "Entries written to the shared cache tier.",
    );
    let mut redis_dropped = Ordered::new(
        "cistrack_cache_redis_writes_dropped",
        "Entries not written to the shared cache tier (queue full or Redis down); the local \
         tiers keep them.",
    );
    for (name, b) in &state.builds {
        let mut engines: Vec<_> = b
            .engines
            .lock()
            .await
            .iter()
            .map(|(key, e)| (key.clone(), e.clone()))
            .collect();
        engines.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, e) in engines {
            let labels = EngineLabels {
                build: name.clone(),
                model: e.spec().id().to_string(),
                role: key.role,
                group: key.group.unwrap_or_default(),
            };
            let s = e.stats();
            let n_batches = s.batches.load(Ordering::Relaxed);
            let n_rows = s.batch_rows.load(Ordering::Relaxed);
            let count = |n: &AtomicU64| ConstCounter::new(n.load(Ordering::Relaxed));
            scored.push(labels.clone(), count(&s.windows_scored));
            skipped.push(labels.clone(), count(&s.windows_skipped));
            cancelled.push(labels.clone(), count(&s.windows_cancelled));
            batches.push(labels.clone(), ConstCounter::new(n_batches));
            rows.push(labels.clone(), ConstCounter::new(n_rows));
            let ratio = if n_batches > 0 {
                n_rows as f64 / (n_batches as f64 * e.max_batch() as f64)
            } else {
                0.0
            };
            fill.push(labels.clone(), ConstGauge::new(ratio));
            queue.push(labels.clone(), ConstGauge::new(e.queued() as u64));
            let seconds = s.inference_micros.load(Ordering::Relaxed) as f64 / 1e6;
            inference.push(labels.clone(), ConstCounter::new(seconds));
            let on = DeviceLabels {
                build: labels.build,
                model: labels.model,
                role: labels.role,
                group: labels.group,
                device: e.device().to_string(),
            };
            device.push(on, ConstGauge::new(1u64));
        }
        let c = &b.cache.stats;
        let shared = b.cache.shared();
        let mut tiers = vec![
            ("memory", &c.memory_hits, &c.memory_misses),
            ("disk", &c.disk_hits, &c.disk_misses),
        ];
        if shared.is_some() {
            tiers.push(("redis", &c.redis_hits, &c.redis_misses));
        }
        for (tier, h, m) in tiers {
            let labels = TierLabels {
                build: name.clone(),
                tier,
            };
            hits.push(labels.clone(), ConstCounter::new(h.load(Ordering::Relaxed)));
            misses.push(labels, ConstCounter::new(m.load(Ordering::Relaxed)));
        }
        let labels = BuildLabels {
            build: name.clone(),
        };
        let n = c.corrupt_entries.load(Ordering::Relaxed);
        corrupt.push(labels.clone(), ConstCounter::new(n));
        let n = c.disk_evictions.load(Ordering::Relaxed);
        evictions.push(labels.clone(), ConstCounter::new(n));
        if let Some(shared) = shared {
            redis_up.push(labels.clone(), ConstGauge::new(u64::from(shared.is_up())));
            let n = c.redis_errors.load(Ordering::Relaxed);
            redis_errors.push(labels.clone(), ConstCounter::new(n));
            let n = c.redis_writes.load(Ordering::Relaxed);
            redis_writes.push(labels.clone(), ConstCounter::new(n));
            let n = c.redis_writes_dropped.load(Ordering::Relaxed);
            redis_dropped.push(labels, ConstCounter::new(n));
        }
    }
    registry.register_collector(Box::new(scored));
    registry.register_collector(Box::new(skipped));
    registry.register_collector(Box::new(cancelled));
    registry.register_collector(Box::new(batches));
    registry.register_collector(Box::new(rows));
    registry.register_collector(Box::new(fill));
    registry.register_collector(Box::new(queue));
    registry.register_collector(Box::new(inference));
    registry.register_collector(Box::new(device));
    registry.register_collector(Box::new(Single {
        name: "cistrack_model_sessions",
        help: "ONNX Runtime sessions of enhancer models open in this process (a model's engines \
               share them: the build's own and every cell group's).",
        metric: ConstGauge::new(crate::model::onnx::open_sessions() as u64),
    }));
    registry.register_collector(Box::new(hits));
    registry.register_collector(Box::new(misses));
    registry.register_collector(Box::new(corrupt));
    registry.register_collector(Box::new(evictions));
    // the Redis families only where a build has the tier
    if state.builds.values().any(|b| b.cache.shared().is_some()) {
        registry.register_collector(Box::new(redis_up));
        for collector in [redis_errors, redis_writes, redis_dropped] {
            registry.register_collector(Box::new(collector));
        }
    }
    registry.register_collector(Box::new(Single {
        name: "cistrack_requests_in_flight",
        help: "Requests being handled.",
        metric: ConstGauge::new(state.in_flight() as u64),
    }));
    let conns = &state.connections;
    registry.register_collector(Box::new(Single {
        name: "cistrack_connections_open",
        help: "Client connections open.",
        metric: ConstGauge::new(conns.open() as u64),
    }));
    let mut closed = Ordered::new(
        "cistrack_connections_closed",
        "Connections the daemon closed itself, by reason: idle (past --idle-timeout), evicted \
         (the longest-idle one, to make room at the cap or when descriptors ran out), rejected \
         (a new one, every open one being busy).",
    );
    for (reason, n) in [
        ("idle", &conns.counts.idle),
        ("evicted", &conns.counts.evicted),
        ("rejected", &conns.counts.rejected),
    ] {
        closed.push(
            ReasonLabels { reason },
            ConstCounter::new(n.load(Ordering::Relaxed)),
        );
    }
    registry.register_collector(Box::new(closed));
    registry.register_collector(Box::new(Single {
        name: "cistrack_accept_errors",
        help: "Failed accepts (out of descriptors pauses accepting).",
        metric: ConstCounter::new(conns.counts.accept_errors.load(Ordering::Relaxed)),
    }));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .map_err(ApiError::internal)?;
    let mut response = Response::new(full(Bytes::from(out)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_requests() {
        let m = Metrics::default();
        m.observe("enhancers", 200, 0.02);
        m.observe("enhancers", 404, 0.001);
        m.observe("builds", 200, 0.5);
        let out = m.encode_requests();
        let expected = "\
# HELP cistrack_requests_total HTTP requests by route and status.
# TYPE cistrack_requests_total counter
cistrack_requests_total{route=\"builds\",status=\"200\"} 1
cistrack_requests_total{route=\"enhancers\",status=\"200\"} 1
cistrack_requests_total{route=\"enhancers\",status=\"404\"} 1
# HELP cistrack_request_duration_seconds HTTP request latency by route.
# TYPE cistrack_request_duration_seconds histogram
";
        assert!(out.starts_with(expected), "{out}");
        for line in [
            "cistrack_request_duration_seconds_bucket{route=\"enhancers\",le=\"0.005\"} 1",
            "cistrack_request_duration_seconds_bucket{route=\"enhancers\",le=\"0.025\"} 2",
            "cistrack_request_duration_seconds_bucket{route=\"enhancers\",le=\"1\"} 2",
            "cistrack_request_duration_seconds_bucket{route=\"enhancers\",le=\"30\"} 2",
            "cistrack_request_duration_seconds_bucket{route=\"enhancers\",le=\"+Inf\"} 2",
            "cistrack_request_duration_seconds_count{route=\"enhancers\"} 2",
            "cistrack_request_duration_seconds_sum{route=\"builds\"} 0.5",
            "cistrack_request_duration_seconds_bucket{route=\"builds\",le=\"0.25\"} 0",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
        // builds before enhancers: sorted by route
        let first = |route: &str| out.find(&format!("_bucket{{route=\"{route}\"")).unwrap();
        assert!(first("builds") < first("enhancers"));
    }

    #[test]
    fn test_label_values_are_escaped() {
        let mut registry = Registry::default();
        let mut family = Ordered::new("cistrack_cache_hits", "Tile cache hits by tier.");
        family.samples.push((
            TierLabels {
                build: "a\"b\\c\nd".into(),
                tier: "memory",
            },
            ConstCounter::new(3u64),
        ));
        registry.register_collector(Box::new(family));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        assert!(
            out.contains(
                "cistrack_cache_hits_total{build=\"a\\\"b\\\\c\\nd\",tier=\"memory\"} 3\n"
            ),
            "{out}"
        );
    }
}
