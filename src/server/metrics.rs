//! Prometheus metrics in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request counters and latency histograms by route.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, route: &'static str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .expect("metrics lock poisoned; this is a bug")
            .entry((route, status))
            .or_default() += 1;
        let mut latency = self
            .latency
            .lock()
            .expect("metrics lock poisoned; this is a bug");
        let h = latency.entry(route).or_default();
        for (bucket, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if seconds <= *bucket {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Requests and latencies, as text.
    pub fn render_requests(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP cistrack_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE cistrack_requests_total counter");
        for ((route, status), n) in self
            .requests
            .lock()
            .expect("metrics lock poisoned; this is a bug")
            .iter()
        {
            let _ = writeln!(
                out,
                "cistrack_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP cistrack_request_duration_seconds HTTP request latency by route."
        );
        let _ = writeln!(out, "# TYPE cistrack_request_duration_seconds histogram");
        for (route, h) in self
            .latency
            .lock()
            .expect("metrics lock poisoned; this is a bug")
            .iter()
        {
            for (bucket, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "cistrack_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bucket}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "cistrack_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "cistrack_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "cistrack_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
    }
}

/// Writes one metric family with labelled samples.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_render() {
        let m = Metrics::default();
        m.observe("enhancers", 200, 0.02);
        m.observe("enhancers", 404, 0.001);
        let mut out = String::new();
        m.render_requests(&mut out);
        assert!(out.contains("cistrack_requests_total{route=\"enhancers\",status=\"200\"} 1"));
        assert!(out.contains(
            "cistrack_request_duration_seconds_bucket{route=\"enhancers\",le=\"0.005\"} 1"
        ));
        assert!(out.contains(
            "cistrack_request_duration_seconds_bucket{route=\"enhancers\",le=\"0.025\"} 2"
        ));
        assert!(out.contains("cistrack_request_duration_seconds_count{route=\"enhancers\"} 2"));
    }
}
