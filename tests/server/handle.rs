//! The daemon without a socket: requests handed to `server::handle` with the fixture build,
//! answers read back whole (status, headers, bytes).

use std::sync::Arc;

use bytes::Bytes;
use cistrack::config::Config;
use cistrack::server::{self, State};
use http_body_util::BodyExt;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use super::{helpers, serve_config};

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// The fixture build's state and a runtime to answer with.
struct Daemon {
    state: Arc<State>,
    runtime: tokio::runtime::Runtime,
}

impl Daemon {
    fn start() -> Self {
        Self::with(serve_config(None))
    }

    fn with(serve: cistrack::server::ServeConfig) -> Self {
        let config = Config::load(&helpers::fixture_config()).unwrap();
        let state = Arc::new(State::new(&config, None, serve).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self { state, runtime }
    }

    fn request(&self, method: Method, uri: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(()).unwrap();
        self.runtime.block_on(async {
            let response = server::handle(self.state.clone(), req).await;
            let (parts, body) = response.into_parts();
            Answer {
                status: parts.status,
                headers: parts.headers,
                body: body.collect().await.unwrap().to_bytes(),
            }
        })
    }

    fn get(&self, uri: &str) -> Answer {
        self.request(Method::GET, uri, &[])
    }
}

/// `{"error":{"message":...,"status":...}}`, exactly.
fn assert_error(answer: &Answer, status: u16, message: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let expected = serde_json::json!({"error": {"message": message, "status": status}});
    assert_eq!(answer.text(), expected.to_string());
}

#[test]
fn handle_answers_bad_requests_with_the_parameter_named() {
    let d = Daemon::start();
    let view = "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=100";
    assert_error(
        &d.get(&format!("{view}&colour=red")),
        400,
        "unknown query parameter \"colour\" (known: ref, start, end, model, wait, mode, include, stride, group)",
    );
    assert_error(
        &d.get("/v1/builds/fixture/links?ref=chr1&start=0&end=100&mode=dense"),
        400,
        "unknown query parameter \"mode\" (known: ref, start, end, wait, min_score)",
    );
    assert_error(
        &d.get(&format!("{view}&start=5")),
        400,
        "query parameter \"start\" is given more than once",
    );
    assert_error(
        &d.get("/v1/builds/fixture/links?ref=chr1&start=0&end=100&wait=1&w%61it=2"),
        400,
        "query parameter \"wait\" is given more than once",
    );
    assert_error(
        &d.get("/v1/builds/fixture/enhancers?ref=chr1&start=0&end=1e3"),
        400,
        "end=\"1e3\" is not a non-negative integer",
    );
    assert_error(
        &d.get(&format!("{view}&wait=-1")),
        400,
        "wait=\"-1\" is not a non-negative integer",
    );
    assert_error(
        &d.get("/v1/builds/fixture/links?ref=chr1&start=0&end=100&min_score=high"),
        400,
        "min_score=\"high\" is not a number between 0 and 1, nor `threshold`",
    );
    assert_error(
        &d.get(&format!("{view}&ref=chr%zz")),
        400,
        "malformed percent-encoding in query \"chr%zz\"",
    );
    assert_error(
        &d.get("/v1/builds/hg99/refnames"),
        404,
        "unknown build \"hg99\" (builds: fixture)",
    );
    assert_error(
        &d.get("/v1/builds/hg99/enhancers?ref=chr1&start=0&end=100"),
        404,
        "unknown build \"hg99\" (builds: fixture)",
    );
    assert_error(
        &d.get("/v1/nothing?x=1"),
        404,
        "no route /v1/nothing; see /v1/builds",
    );
    assert_error(
        &d.request(Method::DELETE, "/v1/builds", &[]),
        405,
        "method DELETE is not supported; use GET",
    );
    // unknown keys are ignored on track files (readers add their own), repeated ones are not
    assert_error(
        &d.get("/v1/builds/fixture/tracks/scores.bw?model=a&model=b"),
        400,
        "query parameter \"model\" is given more than once",
    );
    assert_error(
        &d.get("/v1/builds/fixture/tracks/nothing.bw?v=2"),
        404,
        "no track \"nothing.bw\"; tracks: enhancers.bb, scores.bw, percentiles.bw, links.bb",
    );
}

#[test]
fn handle_answers_builds_refnames_and_preflight() {
    let d = Daemon::start();
    let builds = d.request(
        Method::GET,
        "/v1/builds",
        &[("Origin", "http://localhost:3000")],
    );
    assert_eq!(builds.status, StatusCode::OK);
    assert_eq!(builds.header("content-type"), Some("application/json"));
    assert_eq!(
        builds.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    // keys in sorted order, as the answers have always been written
    let text = builds.text();
    assert!(
        text.starts_with(r#"{"builds":[{"candidates":31,"contigs":2,"contigs_without_sequence":0,"default_model":"student","description":"test fixture: "#),
        "{text}"
    );
    assert!(
        text.contains(r#","e2g":null,"links":"link-epinformer/0.1.0","masked_modalities":[],"models":{"links":"link-epinformer/0.1.0","student":"enhancer-student/0.2.0","teacher":"enhancer-teacher/0.2.0"},"name":"fixture","signals":["#),
        "{text}"
    );
    assert!(text.ends_with(r#""stride":200}]}"#), "{text}");
    let refnames = d.get("/v1/builds/fixture/refnames");
    assert_eq!(refnames.status, StatusCode::OK);
    assert_eq!(
        refnames.text(),
        r#"{"build":"fixture","refnames":[{"aliases":["1"],"length":60000,"name":"chr1"},{"aliases":["2"],"length":40000,"name":"chr2"}]}"#
    );
    let health = d.get("/healthz").json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["builds"]["fixture"]["student"]["device"], "cpu");

    let preflight = d.request(
        Method::OPTIONS,
        "/v1/builds/fixture/tracks/scores.bw",
        &[
            ("Origin", "http://localhost:3000"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range, if-none-match"),
        ],
    );
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
    assert!(preflight.body.is_empty());
    for (name, value) in [
        ("access-control-allow-origin", "http://localhost:3000"),
        ("access-control-allow-methods", "GET, HEAD, OPTIONS"),
        (
            "access-control-allow-headers",
            "Range, If-None-Match, Content-Type",
        ),
        ("access-control-max-age", "86400"),
        (
            "access-control-expose-headers",
            "Content-Length, Content-Range, Accept-Ranges, ETag",
        ),
    ] {
        assert_eq!(preflight.header(name), Some(value), "{name}");
    }
    let bare = d.request(Method::OPTIONS, "/v1/builds", &[]);
    assert_eq!(
        bare.header("access-control-allow-headers"),
        Some("Range, If-None-Match, Content-Type")
    );
}

#[test]
fn handle_guards_host_and_token() {
    let d = Daemon::start();
    let rebound = d.request(
        Method::GET,
        "/v1/builds",
        &[("Host", "rebind.evil.example:8765")],
    );
    assert_eq!(rebound.status, StatusCode::FORBIDDEN);
    assert!(rebound.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--allow-host rebind.evil.example"));
    for host in ["localhost:8765", "127.0.0.1:8765", "[::1]:8765"] {
        assert_eq!(
            d.request(Method::GET, "/v1/builds", &[("Host", host)])
                .status,
            StatusCode::OK,
            "{host}"
        );
    }
    let d = Daemon::with(cistrack::server::ServeConfig {
        token: Some(cistrack::server::Token("0123456789abcdef".into())),
        allowed_hosts: vec!["tracks.lab.example".into()],
        ..serve_config(None)
    });
    assert!(
        !format!("{:?}", d.state.config()).contains("0123456789abcdef"),
        "never logged"
    );
    let missing = d.request(Method::GET, "/v1/builds", &[("Host", "tracks.lab.example")]);
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    let wrong = d.request(
        Method::GET,
        "/v1/builds",
        &[("Authorization", "Bearer 0123456789abcdeX")],
    );
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = d.request(
        Method::GET,
        "/v1/builds",
        &[("Authorization", "Bearer 0123456789abcdef")],
    );
    assert_eq!(right.status, StatusCode::OK);
    // probes need no token; a preflight (browsers send no credentials) allows Authorization
    assert_eq!(d.get("/healthz").status, StatusCode::OK);
    let preflight = d.request(
        Method::OPTIONS,
        "/v1/builds",
        &[("Origin", "http://localhost:1")],
    );
    assert_eq!(preflight.status, StatusCode::NO_CONTENT);
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("Range, If-None-Match, Content-Type, Authorization")
    );
}

/// A sample: metric name, labels in order, value.
type Sample = (String, Vec<(String, String)>, f64);

/// One sample line: `name{label="value",...} value`, label values escaped as the text format
/// says (`\\`, `\"`, `\n`).
fn parse_sample(line: &str) -> Result<Sample, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let name_len = line.find(|c: char| !is_name(c)).unwrap_or(line.len());
    let name = &line[..name_len];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("bad metric name".into());
    }
    let mut chars = line[name_len..].chars().peekable();
    let mut labels = Vec::new();
    if chars.next_if_eq(&'{').is_some() {
        loop {
            let mut key = String::new();
            while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
                key.push(c);
            }
            if key.is_empty() || chars.next() != Some('=') || chars.next() != Some('"') {
                return Err(format!("bad label after {key:?}"));
            }
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated label value")? {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    c => value.push(c),
                }
            }
            labels.push((key, value));
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                _ => return Err("labels not closed".into()),
            }
        }
    }
    if chars.next() != Some(' ') {
        return Err("no space before the value".into());
    }
    let value: String = chars.collect();
    let value = match value.as_str() {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse()
            .map_err(|_| format!("value {v:?} is not a number"))?,
    };
    Ok((name.to_string(), labels, value))
}

#[test]
fn handle_exposes_metrics_in_the_prometheus_text_format() {
    let d = Daemon::start();
    assert_eq!(d.get("/v1/builds").status, StatusCode::OK);
    assert_eq!(d.get("/v1/nothing").status, StatusCode::NOT_FOUND);
    let answer = d.get("/metrics");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    let text = answer.text();
    assert!(text.ends_with('\n'));
    let mut types: Vec<(String, String)> = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (kind, name, rest) = (words.next(), words.next(), words.next());
            match (kind, name, rest) {
                (Some("HELP"), Some(_), Some(help)) => assert!(!help.is_empty(), "{line}"),
                (Some("TYPE"), Some(name), Some(t)) => {
                    assert!(
                        ["counter", "gauge", "histogram", "untyped"].contains(&t),
                        "{line}"
                    );
                    types.push((name.to_string(), t.to_string()));
                }
                _ => panic!("not a HELP or TYPE comment: {line:?}"),
            }
            continue;
        }
        let (name, labels, value) = parse_sample(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        // every sample belongs to the family declared last
        let (family, kind) = types
            .last()
            .unwrap_or_else(|| panic!("no TYPE before {line}"));
        let suffixes: &[&str] = if kind == "histogram" {
            &["_bucket", "_sum", "_count"]
        } else {
            &[""]
        };
        assert!(
            suffixes
                .iter()
                .any(|s| name.strip_suffix(s) == Some(family.as_str())),
            "{name} in family {family}"
        );
        samples.push((name, labels, value));
    }
    let family_names: Vec<&str> = types.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        family_names,
        [
            "cistrack_requests_total",
            "cistrack_request_duration_seconds",
            "cistrack_requests_abandoned_total",
            "cistrack_windows_scored_total",
            "cistrack_windows_skipped_total",
            "cistrack_windows_cancelled_total",
            "cistrack_batches_total",
            "cistrack_batch_windows_total",
            "cistrack_batch_fill_ratio",
            "cistrack_queue_windows",
            "cistrack_inference_seconds_total",
            "cistrack_device_info",
            "cistrack_model_sessions",
            "cistrack_cache_hits_total",
            "cistrack_cache_misses_total",
            "cistrack_cache_corrupt_entries_total",
            "cistrack_cache_evictions_total",
            "cistrack_requests_in_flight",
            "cistrack_connections_open",
            "cistrack_connections_closed_total",
            "cistrack_accept_errors_total",
        ]
    );
    for (name, kind) in &types {
        let want = if name.ends_with("_total") {
            "counter"
        } else if name == "cistrack_request_duration_seconds" {
            "histogram"
        } else {
            "gauge"
        };
        assert_eq!(kind, want, "{name}");
    }
    let find = |name: &str, want: &[(&str, &str)]| {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .eq(want.iter().copied())
            })
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no {name} {want:?} in\n{text}"))
    };
    assert_eq!(
        find(
            "cistrack_requests_total",
            &[("route", "builds"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        find(
            "cistrack_requests_total",
            &[("route", "other"), ("status", "404")]
        ),
        1.0
    );
    // handle() is called without a socket: no connection was ever registered
    assert_eq!(find("cistrack_connections_open", &[]), 0.0);
    for reason in ["idle", "evicted", "rejected"] {
        assert_eq!(
            find("cistrack_connections_closed_total", &[("reason", reason)]),
            0.0
        );
    }
    assert_eq!(
        find(
            "cistrack_request_duration_seconds_bucket",
            &[("route", "builds"), ("le", "+Inf")]
        ),
        1.0
    );
    assert_eq!(
        find(
            "cistrack_device_info",
            &[
                ("build", "fixture"),
                ("model", "enhancer-student/0.2.0"),
                ("role", "student"),
                ("group", ""),
                ("device", "cpu")
            ]
        ),
        1.0
    );
    assert_eq!(
        find(
            "cistrack_cache_hits_total",
            &[("build", "fixture"), ("tier", "memory")]
        ),
        0.0
    );
    // no scoring request is in flight (scrapes take no slot)
    assert_eq!(find("cistrack_requests_in_flight", &[]), 0.0);
    // a second scrape counts the first
    let again = d.get("/metrics");
    assert!(again
        .text()
        .contains("cistrack_requests_total{route=\"metrics\",status=\"200\"} 1\n"));
}

#[test]
fn the_sample_parser_rejects_malformed_lines() {
    let (name, labels, value) = parse_sample(r#"a_b{x="1",y="q\"\\\n"} 2.5"#).unwrap();
    assert_eq!((name.as_str(), value), ("a_b", 2.5));
    assert_eq!(labels[1], ("y".to_string(), "q\"\\\n".to_string()));
    assert_eq!(parse_sample("up +Inf").unwrap().2, f64::INFINITY);
    for bad in [
        "a{x=1} 1",
        "a{x=\"1\" 1",
        "a{x=\"1\"}1",
        "a 1 2",
        "a{=\"1\"} 1",
        "1a 1",
        "a{x=\"\\t\"} 1",
        "a",
    ] {
        assert!(parse_sample(bad).is_err(), "{bad}");
    }
}
