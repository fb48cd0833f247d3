//! The daemon, started for real on 127.0.0.1:0 with the fixture build and spoken to over TCP:
//! every route, every error, concurrency, cache persistence and corruption recovery, byte
//! ranges, track files read back over HTTP by an independent reader, faults while running.

#[path = "support/helpers.rs"]
mod helpers;

#[path = "support/gated.rs"]
mod gated;

/// The same daemon without a socket (`server::handle`).
#[path = "server/handle.rs"]
mod handle;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cistrack::config::Config;
use cistrack::model::Device;
use cistrack::server::{self, ServeConfig, State};
use serde_json::Value;

struct TestServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(config: &Path, serve: ServeConfig) -> Self {
        let config = Config::load(config).unwrap();
        Self::serve(State::new(&config, None, serve).unwrap())
    }

    fn serve(state: State) -> Self {
        let state = Arc::new(state);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                server::serve(
                    listener,
                    state,
                    async move {
                        let _ = rx.await;
                    },
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[])
    }

    fn json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path);
        let v = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
            panic!(
                "{path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&r.body)
            )
        });
        (r.status, v)
    }

    fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        self.thread.take().unwrap().join().unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client: one request per connection, bytes as sent.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut text = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        text.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            l.split_once(": ")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .unwrap()
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn serve_config(cache_dir: Option<&Path>) -> ServeConfig {
    ServeConfig {
        cache_dir: cache_dir.map(Path::to_path_buf),
        device: Device::Cpu,
        intra_threads: 2,
        ..Default::default()
    }
}

fn fixture_server(cache_dir: Option<&Path>) -> TestServer {
    TestServer::start(&helpers::fixture_config(), serve_config(cache_dir))
}

fn metric(server: &TestServer, name: &str) -> f64 {
    let text = String::from_utf8(server.get("/metrics").body).unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l.len() == name.len()
                    || l.as_bytes()[name.len()] == b'{'
                    || l.as_bytes()[name.len()] == b' ')
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn error_message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap()
}

#[test]
fn info_routes_answer() {
    let s = fixture_server(None);
    let (status, health) = s.json("/healthz");
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(health["builds"]["fixture"]["student"]["device"], "cpu");
    let (_, builds) = s.json("/v1/builds");
    assert_eq!(builds["builds"][0]["name"], "fixture");
    assert_eq!(builds["builds"][0]["stride"], 200);
    assert_eq!(builds["builds"][0]["candidates"], 31);
    let (_, refnames) = s.json("/v1/builds/fixture/refnames");
    assert_eq!(
        refnames["refnames"][0],
        serde_json::json!({"name": "chr1", "length": 60000, "aliases": ["1"]})
    );
    let metrics = s.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(metrics.body).unwrap();
    for family in [
        "cistrack_requests_total",
        "cistrack_request_duration_seconds_bucket",
        "cistrack_windows_scored_total",
        "cistrack_batch_fill_ratio",
        "cistrack_queue_windows",
        "cistrack_cache_hits_total",
        "cistrack_device_info",
    ] {
        assert!(text.contains(family), "metrics lack {family}");
    }
    assert!(text.contains("device=\"cpu\""));
}

#[test]
fn enhancers_match_the_cli_and_clip_at_contig_ends() {
    let s = fixture_server(None);
    let (status, v) =
        s.json("/v1/builds/fixture/enhancers?ref=chr2&start=19000&end=26000&wait=60000");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["complete"].as_bool(),
            v["mode"].as_str(),
            v["start"].as_u64(),
            v["end"].as_u64()
        ),
        (Some(true), Some("dense"), Some(19_000), Some(26_000))
    );
    assert_eq!(v["skipped"], serde_json::json!([[23000, 24000]]));
    // the same windows as `cistrack score` (whose grid starts at the region start: 19000 = 95 x 200)
    let out = helpers::cistrack(&[
        "--config",
        "tests/data/fixture.toml",
        "--device",
        "cpu",
        "score",
        "--region",
        "chr2:19,001-26,000",
        "-o",
        "/dev/null",
        "--windows",
        "-",
    ]);
    let cli: Vec<(u64, f64)> = helpers::assert_ok(&out)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[1].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect();
    let served = helpers::window_probabilities(&v);
    assert_eq!(served.len(), cli.len());
    for (a, b) in served.iter().zip(&cli) {
        assert_eq!(a.0, b.0);
        assert!((a.1 - b.1).abs() <= 1e-4, "{a:?} vs {b:?}");
    }
    // elements are runs of windows at or above the threshold, with shares
    for e in v["elements"].as_array().unwrap() {
        assert!(e["probability"].as_f64().unwrap() >= 0.5);
        assert!(e["shares"]["h3k27ac"].is_number());
    }
    // past the contig end: clipped; wholly past it: empty
    let (_, v) = s.json("/v1/builds/fixture/enhancers?ref=2&start=39800&end=45000&wait=60000");
    assert_eq!(
        (v["end"].as_u64(), v["windows"].as_array().unwrap().len()),
        (Some(40_000), 1)
    );
    let (status, v) = s.json("/v1/builds/fixture/enhancers?ref=chr2&start=40000&end=45000");
    assert_eq!((status, v["windows"].as_array().unwrap().len()), (200, 0));
    // include=elements only
    let (_, v) = s
        .json("/v1/builds/fixture/enhancers?ref=chr2&start=0&end=2000&include=elements&wait=60000");
    assert!(v.get("windows").is_none() && v["elements"].is_array());
}

#[test]
fn bad_requests_get_clear_errors() {
    let s = TestServer::start(
        &helpers::fixture_config(),
        ServeConfig {
            max_region_bp: 50_000,
            ..serve_config(None)
        },
    );
    let cases: &[(&str, u16, &str)] = &[
        (
            "/v1/builds/hg99/enhancers?ref=chr1&start=0&end=10",
            404,
            "unknown build \"hg99\" (builds: fixture)",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chrZ&start=0&end=10",
            404,
            "unknown contig \"chrZ\" in build fixture",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=500&end=100",
            400,
            "start 500 must be below end 100",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=5&end=5",
            400,
            "must be below end",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=-5&end=100",
            400,
            "start=\"-5\" is not a non-negative integer",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=abc&end=100",
            400,
            "is not a non-negative integer",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&end=100",
            400,
            "missing query parameter start",
        ),
        (
            "/v1/builds/fixture/enhancers?start=0&end=100",
            400,
            "missing query parameter ref",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=100&start=5",
            400,
            "given more than once",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr%zz&start=0&end=100",
            400,
            "malformed percent-encoding",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=100&colour=red",
            400,
            "unknown query parameter \"colour\"",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=100&mode=fast",
            400,
            "mode=\"fast\"",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=100&stride=50",
            400,
            "scores at stride 200",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=60000",
            413,
            "region of 60000 bp exceeds the limit of 50000 bp",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=100&model=huge",
            404,
            "unknown model \"huge\" for build fixture (models: student, teacher)",
        ),
        (
            "/v1/builds/fixture/links?ref=chr1&start=0&end=100&min_score=2",
            400,
            "min_score=\"2\" is not a number between 0 and 1",
        ),
        (
            "/v1/builds/fixture/links?ref=chr1&start=0&end=100&model=student",
            400,
            "unknown query parameter \"model\"",
        ),
        (
            "/v1/builds/fixture/links?ref=chrZ&start=0&end=100",
            404,
            "chrZ",
        ),
        (
            "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=100&model=links",
            400,
            "is an enhancer-gene link model",
        ),
        (
            "/v1/builds/fixture/tracks/secrets.txt",
            404,
            "no track \"secrets.txt\"",
        ),
        (
            "/v1/builds/fixture/tracks/../../../etc/passwd",
            404,
            "no route",
        ),
        (
            "/v1/builds/fixture/tracks/..%2F..%2Fetc%2Fpasswd",
            404,
            "no track",
        ),
        ("/v1/nothing", 404, "no route /v1/nothing"),
    ];
    for (path, status, needle) in cases {
        let (got, v) = s.json(path);
        assert_eq!(got, *status, "{path}: {v}");
        assert_eq!(v["error"]["status"], *status);
        assert!(error_message(&v).contains(needle), "{path}: {v}");
    }
    let r = request(s.addr, "POST", "/v1/builds", &[]);
    assert_eq!(r.status, 405);
    // the daemon is still fine
    assert_eq!(s.json("/healthz").0, 200);
}

#[test]
fn cors_for_browsers_on_other_ports() {
    let s = fixture_server(None);
    // a page served from this machine (another port): allowed, by its own origin
    let r = request(
        s.addr,
        "OPTIONS",
        "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=100",
        &[
            ("Origin", "http://localhost:3000"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "range, x-anything"),
        ],
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("GET"));
    // only the headers the API reads, whatever was asked
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Range, If-None-Match, Content-Type")
    );
    let r = request(
        s.addr,
        "GET",
        "/v1/builds",
        &[("Origin", "http://127.0.0.1:5173")],
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://127.0.0.1:5173")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    assert!(r
        .header("access-control-expose-headers")
        .unwrap()
        .contains("Content-Range"));
    // any other web page: answered (the request is harmless) but not readable by its script
    let other = request(
        s.addr,
        "GET",
        "/v1/builds",
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
    // a page on a domain re-pointed at 127.0.0.1 (DNS rebinding) names its own Host: refused
    let rebound = request(
        s.addr,
        "GET",
        "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=100",
        &[("Host", "rebind.evil.example")],
    );
    assert_eq!(rebound.status, 403);
    drop(s);
    let s = TestServer::start(
        &helpers::fixture_config(),
        ServeConfig {
            cors_origins: vec!["https://igv.org".into()],
            ..serve_config(None)
        },
    );
    let listed = request(
        s.addr,
        "GET",
        "/v1/builds",
        &[("Origin", "https://igv.org")],
    );
    assert_eq!(
        listed.header("access-control-allow-origin"),
        Some("https://igv.org")
    );
    let other = request(
        s.addr,
        "GET",
        "/v1/builds",
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
    drop(s);
    let s = TestServer::start(
        &helpers::fixture_config(),
        ServeConfig {
            cors_origins: vec!["*".into()],
            ..serve_config(None)
        },
    );
    let any = request(
        s.addr,
        "GET",
        "/v1/builds",
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(any.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn concurrent_requests_equal_sequential_ones() {
    let s = fixture_server(None);
    let paths: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "/v1/builds/fixture/enhancers?ref=chr1&start={}&end={}&wait=60000",
                i * 4_000,
                i * 4_000 + 12_000
            )
        })
        .collect();
    let addr = s.addr;
    let concurrent: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = paths
            .iter()
            .map(|p| {
                scope.spawn(move || {
                    serde_json::from_slice::<Value>(&request(addr, "GET", p, &[]).body).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let scored = metric(&s, "cistrack_windows_scored_total");
    assert_eq!(
        scored, 200.0,
        "overlapping views share windows: chr1:0-40000 is 200 windows, each scored once"
    );
    for (p, c) in paths.iter().zip(&concurrent) {
        let (_, sequential) = s.json(p);
        assert_eq!(c["windows"], sequential["windows"], "{p}");
        assert_eq!(c["elements"], sequential["elements"], "{p}");
    }
}

#[test]
fn partial_answers_say_what_is_pending_and_disconnects_cancel_work() {
    // The model worker holds each batch at a gate until the test opens it, so what is queued,
    // scored or dropped does not depend on how fast the model is.
    let (started_tx, started) = crossbeam_channel::unbounded();
    let (open, gate) = crossbeam_channel::bounded::<()>(0);
    let factory: cistrack::pipeline::engine::PredictorFactory = Arc::new(move |spec, _options| {
        let inner = gated::ort(spec);
        let device = inner.device();
        let worker: Box<dyn cistrack::model::Predictor> = Box::new(gated::Gated {
            inner,
            started: started_tx.clone(),
            gate: gate.clone(),
        });
        Ok((vec![worker], device))
    });
    let config = Config::load(&helpers::fixture_config()).unwrap();
    let s = TestServer::serve(
        State::with_predictors(&config, None, serve_config(None), factory).unwrap(),
    );
    // two clients that will go away: A holds chr1's 300 windows (its first batch is at the
    // gate once `started` says so), B chr2's 200 behind them
    let send = |path: &str| {
        let mut stream = TcpStream::connect(s.addr).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        stream
    };
    let a = send("/v1/builds/fixture/enhancers?ref=chr1&start=0&end=60000&wait=30000");
    let first_batch = started.recv().unwrap() as f64;
    // a request that will not wait: a partial answer that says what is pending
    let (_, v) = s.json("/v1/builds/fixture/enhancers?ref=chr1&start=0&end=60000&wait=0");
    assert_eq!(v["complete"], false);
    assert!(!v["pending"].as_array().unwrap().is_empty());
    let stream = send("/v1/builds/fixture/enhancers?ref=chr2&start=0&end=40000&wait=30000");
    // wait until B's windows are queued (its request is being handled), then both leave
    let queued = |s: &TestServer| {
        let (_, health) = s.json("/healthz");
        health["builds"]["fixture"]["student"]["queued_windows"]
            .as_f64()
            .unwrap()
    };
    let waited = std::time::Instant::now();
    let until = |done: &dyn Fn() -> bool, what: &str| {
        while !done() {
            assert!(waited.elapsed() < Duration::from_secs(60), "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    until(
        &|| queued(&s) == 300.0 - first_batch + 200.0,
        "chr2's windows never queued",
    );
    drop((a, stream));
    until(
        &|| metric(&s, "cistrack_requests_abandoned_total") == 2.0,
        "the disconnect was never seen",
    );
    drop(open);
    // A barrier: one worker, a first-in first-out queue: a view queued now completes after
    // every window queued before it was scored or dropped.
    let (_, barrier) =
        s.json("/v1/builds/fixture/enhancers?ref=chr1&start=59800&end=60000&wait=60000");
    assert_eq!(barrier["complete"], true);
    assert_eq!(
        metric(&s, "cistrack_windows_cancelled_total"),
        300.0 - first_batch + 200.0,
        "every queued window of the two departed views was dropped unscored"
    );
    // waiting long enough gives the whole view, reusing what was computed before
    let (_, v) = s.json("/v1/builds/fixture/enhancers?ref=chr1&start=0&end=60000&wait=60000");
    assert_eq!(
        (
            v["complete"].as_bool(),
            v["windows"].as_array().unwrap().len(),
            v["windows_cached"].as_f64().unwrap()
        ),
        (Some(true), 300, first_batch + 1.0),
        "the first batch and the barrier's window are reused"
    );
}

#[test]
fn overload_gets_429() {
    let s = TestServer::start(
        &helpers::fixture_config(),
        ServeConfig {
            max_queued_windows: 50,
            ..serve_config(None)
        },
    );
    let (status, v) = s.json("/v1/builds/fixture/enhancers?ref=chr1&start=0&end=60000&wait=0");
    assert_eq!(status, 429, "{v}");
    assert!(error_message(&v).contains("the scoring queue is full"));
    let (status, _) = s.json("/v1/builds/fixture/enhancers?ref=chr1&start=0&end=4000&wait=60000");
    assert_eq!(status, 200, "small requests still pass");
}

#[test]
fn candidates_mode_scores_only_candidate_windows() {
    let s = fixture_server(None);
    let (_, v) = s
        .json("/v1/builds/fixture/enhancers?ref=chr1&start=0&end=60000&mode=candidates&wait=60000");
    assert_eq!(v["mode"], "candidates");
    let n = v["windows"].as_array().unwrap().len();
    assert!(
        n > 0 && n < 40,
        "only windows over the 4 candidates of chr1: {n}"
    );
    assert_eq!(v["windows_needed"].as_u64().unwrap() as usize, n);
    // auto switches to candidates above --dense-max
    drop(s);
    let s = TestServer::start(
        &helpers::fixture_config(),
        ServeConfig {
            dense_max_bp: Some(10_000),
            ..serve_config(None)
        },
    );
    let (_, v) = s.json("/v1/builds/fixture/enhancers?ref=chr1&start=0&end=60000&wait=60000");
    assert_eq!(v["mode"], "candidates");
    let (_, v) = s.json("/v1/builds/fixture/enhancers?ref=chr1&start=0&end=8000&wait=60000");
    assert_eq!(v["mode"], "dense");
}

#[test]
fn cache_survives_restart_and_recovers_from_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = "/v1/builds/fixture/enhancers?ref=chr2&start=0&end=12800&wait=60000";
    let first = {
        let s = fixture_server(Some(dir.path()));
        let (_, v) = s.json(path);
        assert_eq!(metric(&s, "cistrack_windows_scored_total"), 64.0);
        s.stop(); // graceful: flushes the cache
        v
    };
    {
        let s = fixture_server(Some(dir.path()));
        let (_, v) = s.json(path);
        assert_eq!(v["windows"], first["windows"]);
        assert_eq!(v["windows_cached"], v["windows_needed"]);
        assert_eq!(
            metric(&s, "cistrack_windows_scored_total"),
            0.0,
            "nothing recomputed after a restart"
        );
        s.stop();
    }
    // flip bytes inside the stored value behind the daemon's back
    let db = dir.path().join("fixture.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut value: Vec<u8> = conn
        .query_row("SELECT value FROM tiles LIMIT 1", [], |r| r.get(0))
        .unwrap();
    for b in value.iter_mut().skip(10).step_by(97) {
        *b ^= 0x5a;
    }
    conn.execute("UPDATE tiles SET value = ?1", [value])
        .unwrap();
    drop(conn);
    let s = fixture_server(Some(dir.path()));
    let (status, v) = s.json(path);
    assert_eq!(status, 200);
    assert_eq!(
        v["windows"], first["windows"],
        "a corrupt entry is recomputed, never served"
    );
    assert_eq!(metric(&s, "cistrack_cache_corrupt_entries_total"), 1.0);
    assert_eq!(metric(&s, "cistrack_windows_scored_total"), 64.0);
    s.stop();
    // a database file that is garbage: moved aside, the daemon starts with an empty cache
    std::fs::write(&db, vec![7u8; 4096]).unwrap();
    let _ = std::fs::remove_file(dir.path().join("fixture.sqlite-wal"));
    let s = fixture_server(Some(dir.path()));
    let (status, v) = s.json(path);
    assert_eq!(
        (status, v["windows"].clone()),
        (200, first["windows"].clone())
    );
}

#[test]
fn enhancers_report_percentiles_once_the_background_is_computed() {
    let dir = tempfile::tempdir().unwrap();
    let path = "/v1/builds/fixture/enhancers?ref=chr1&start=15000&end=30000&wait=60000";
    let s = fixture_server(Some(dir.path()));
    let (status, v) = s.json(path);
    assert_eq!(status, 200, "{v}");
    assert!(v.get("background").is_none(), "{v}");
    assert!(v["windows"][0].get("percentile").is_none(), "{v}");
    let (status, e) = s.json("/v1/builds/fixture/tracks/percentiles.bw");
    assert_eq!(status, 404, "{e}");
    assert!(
        error_message(&e).contains("cistrack precompute --background"),
        "{e}"
    );
    // computed by another process while the daemon runs: the next answer has percentiles
    let pre = helpers::cistrack(&[
        "--config",
        "tests/data/fixture.toml",
        "--device",
        "cpu",
        "precompute",
        "--background",
        "--cache-dir",
        dir.path().to_str().unwrap(),
    ]);
    helpers::assert_ok(&pre);
    let (status, v) = s.json(path);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["background"]["windows"], 495, "{v}");
    let windows = v["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 75);
    let pairs: Vec<(f64, f64)> = windows
        .iter()
        .map(|w| {
            (
                w["probability"].as_f64().unwrap(),
                w["percentile"].as_f64().unwrap(),
            )
        })
        .collect();
    for &(p, pct) in &pairs {
        assert!((0.0..=100.0).contains(&pct), "{p} {pct}");
        for &(q, qct) in &pairs {
            if p < q {
                assert!(
                    pct <= qct,
                    "probability {p} < {q} but percentile {pct} > {qct}"
                );
            }
        }
    }
    let elements = v["elements"].as_array().unwrap();
    assert!(!elements.is_empty(), "{v}");
    for e in elements {
        let peak = windows
            .iter()
            .find(|w| w["start"] == e["peak_start"])
            .unwrap();
        assert_eq!(e["percentile"], peak["percentile"], "{e}");
    }
    // and the percentile track file is served (a bigWig: magic 0x888FFC26, little-endian)
    let file = s.get("/v1/builds/fixture/tracks/percentiles.bw");
    assert_eq!(file.status, 200);
    assert_eq!(&file.body[..4], &[0x26, 0xfc, 0x8f, 0x88]);
    s.stop();
}

fn python_system() -> PathBuf {
    // Debian's python3-pybigwig has remote (HTTP) support; the PyPI wheel in .venv does not.
    let python = PathBuf::from("/usr/bin/python3");
    let ok = std::process::Command::new(&python)
        .args([
            "-c",
            "import pyBigWig, sys; sys.exit(0 if pyBigWig.remote else 1)",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "/usr/bin/python3 with python3-pybigwig (remote support) is needed: run `make setup`"
    );
    python
}

#[test]
fn track_files_serve_byte_ranges_and_read_back_over_http() {
    let s = fixture_server(None);
    let (_, v) = s.json("/v1/builds/fixture/enhancers?ref=chr2&start=0&end=40000&wait=60000");
    let full = s.get("/v1/builds/fixture/tracks/enhancers.bb");
    assert_eq!(full.status, 200);
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    let len = full.body.len();
    assert_eq!(
        full.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        len
    );
    let etag = full.header("etag").unwrap().to_string();
    let range = |spec: &str| {
        request(
            s.addr,
            "GET",
            "/v1/builds/fixture/tracks/enhancers.bb",
            &[("Range", spec)],
        )
    };
    for (spec, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, len - 1),
        ("bytes=-50", len - 50, len - 1),
        (&format!("bytes=10-{}", len + 1000) as &str, 10, len - 1),
    ] {
        let r = range(spec);
        assert_eq!(r.status, 206, "{spec}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {start}-{end}/{len}").as_str()),
            "{spec}"
        );
        assert_eq!(r.body, full.body[start..=end], "{spec}: bytes differ");
    }
    let r = range(&format!("bytes={len}-"));
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    let head = request(
        s.addr,
        "HEAD",
        "/v1/builds/fixture/tracks/enhancers.bb",
        &[],
    );
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(
        head.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        len
    );
    let cached = request(
        s.addr,
        "GET",
        "/v1/builds/fixture/tracks/enhancers.bb",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(cached.status, 304);

    // an independent reader (libBigWig via Debian's pyBigWig) reads both files over HTTP
    let url = |name: &str| format!("http://{}/v1/builds/fixture/tracks/{name}", s.addr);
    let code = r#"
import sys, pyBigWig
bb = pyBigWig.open(sys.argv[1])
assert bb.isBigBed()
for start, end, rest in bb.entries("chr2", 0, 40000) or []:
    print(f"E\t{start}\t{end}\t{rest.split(chr(9))[3]}")
bw = pyBigWig.open(sys.argv[2])
assert bw.isBigWig()
for start, end, value in bw.intervals("chr2", 0, 40000):
    print(f"W\t{start}\t{end}\t{value:.4f}")
"#;
    let out = std::process::Command::new(python_system())
        .args(["-c", code, &url("enhancers.bb"), &url("scores.bw")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let elements: Vec<(u64, u64, f64)> = text
        .lines()
        .filter(|l| l.starts_with("E\t"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(u64, u64, f64)> = v["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["start"].as_u64().unwrap(),
                e["end"].as_u64().unwrap(),
                e["probability"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(elements.len(), expected.len());
    for (a, b) in elements.iter().zip(&expected) {
        assert_eq!((a.0, a.1), (b.0, b.1));
        assert!((a.2 - b.2).abs() < 1e-4);
    }
    let windows = text.lines().filter(|l| l.starts_with("W\t")).count();
    assert_eq!(
        windows,
        v["windows"].as_array().unwrap().len(),
        "one bigWig interval per scored window"
    );
}

#[test]
fn a_signal_file_truncated_while_running_gives_503_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = helpers::root().join("tests/data/fixture");
    let moved = dir.path().join("h3k27ac.bw");
    std::fs::copy(fixture.join("h3k27ac.bw"), &moved).unwrap();
    let config = helpers::edited_fixture_config(dir.path(), |t| {
        t.replace(
            &format!("{}/h3k27ac.bw", fixture.display()),
            &moved.display().to_string(),
        )
    });
    let s = TestServer::start(&config, serve_config(None));
    assert_eq!(
        s.json("/v1/builds/fixture/enhancers?ref=chr2&start=0&end=2000&wait=60000")
            .0,
        200
    );
    let original = std::fs::read(&moved).unwrap();
    std::fs::write(&moved, &original[..original.len() / 3]).unwrap();
    let (status, v) =
        s.json("/v1/builds/fixture/enhancers?ref=chr2&start=20000&end=22000&wait=60000");
    assert_eq!(status, 503, "{v}");
    assert!(error_message(&v).contains("h3k27ac.bw"), "{v}");
    assert_eq!(s.json("/healthz").0, 200, "the daemon keeps serving");
    assert_eq!(
        s.json("/v1/builds/fixture/enhancers?ref=chr2&start=0&end=2000")
            .0,
        200,
        "cached views still answer"
    );
    std::fs::write(&moved, &original).unwrap();
    let (status, v) =
        s.json("/v1/builds/fixture/enhancers?ref=chr2&start=20000&end=22000&wait=60000");
    assert_eq!(status, 200, "the file is read again once it is back: {v}");
}

#[test]
fn the_binary_serves_and_stops_gracefully_on_sigterm() {
    let mut command = helpers::cistrack_command();
    command.args(helpers::FIXTURE_SERVE);
    let daemon = helpers::Daemon::start(command);
    let addr = daemon.addr;
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    let r = request(
        addr,
        "GET",
        "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=2000&wait=60000",
        &[],
    );
    assert_eq!(r.status, 200);
    let (status, rest) = daemon.stop();
    assert!(status.success(), "{status:?}\n{rest}");
    assert!(
        rest.contains("shutting down") && rest.contains("stopped"),
        "{rest}"
    );
}

#[test]
fn links_answer_genes_and_per_gene_normalised_scores() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture_server(Some(dir.path()));
    let (_, builds) = s.json("/v1/builds");
    assert_eq!(builds["builds"][0]["links"], "link-epinformer/0.1.0");
    let (status, v) = s.json("/v1/builds/fixture/links?ref=chr1&start=0&end=60000&wait=60000");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["complete"], true);
    assert_eq!(v["model"]["name"], "link-epinformer");
    // the fixture build has no E2G model: the score is the attention, and there is no threshold
    assert_eq!(v["score_kind"], "attention");
    assert_eq!(v["threshold"], Value::Null);
    assert_eq!(v["sequence_masked"], false);
    let genes = v["genes"].as_array().unwrap();
    // chr1 of the fixture has two TSSs (genes.tss.bed)
    let names: Vec<&str> = genes.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ENSG00000229492", "CLCP1"]);
    assert!(v["genes_computed"].as_u64().unwrap() == 2);
    let candidates: Vec<(u64, u64)> =
        std::fs::read_to_string(helpers::root().join("tests/data/fixture/candidates.bed"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("chr1\t"))
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[1].parse().unwrap(), f[2].parse().unwrap())
            })
            .collect();
    let links = v["links"].as_array().unwrap();
    for g in genes {
        let tss = g["tss"].as_u64().unwrap();
        let mine: Vec<&Value> = links
            .iter()
            .filter(|l| l["gene_name"] == g["name"])
            .collect();
        // every chr1 candidate is within 100 kb and none overlaps the +-500 bp core promoter here
        let expected = candidates
            .iter()
            .filter(|(s, e)| !(*s < tss + 500 && *e > tss.saturating_sub(500)))
            .count();
        assert_eq!(mine.len(), expected, "{}", g["name"]);
        assert_eq!(g["candidates"].as_u64().unwrap() as usize, expected);
        let total: f64 = mine.iter().map(|l| l["score"].as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-3, "attention sums to {total}");
        assert!(mine.iter().all(|l| l["score"] == l["attention"]));
        assert!(mine.iter().all(|l| l["contact_source"] == "powerlaw"));
        assert_eq!(g["links"].as_u64().unwrap() as usize, mine.len());
        // ABC counts the gene's own promoter in its denominator (as ABC does), so a gene's
        // element scores sum to less than 1 when the promoter has activity
        let abc: f64 = mine.iter().map(|l| l["abc_score"].as_f64().unwrap()).sum();
        assert!(abc > 0.0 && abc < 1.0 + 1e-3, "ABC sums to {abc}");
        let mut last = 0;
        for l in &mine {
            let (es, ee) = (
                l["element_start"].as_u64().unwrap(),
                l["element_end"].as_u64().unwrap(),
            );
            assert!(candidates.contains(&(es, ee)));
            let distance = ((es + ee) / 2).abs_diff(tss);
            assert_eq!(l["distance"].as_u64().unwrap(), distance);
            assert!(distance >= last, "nearest first");
            last = distance;
            assert_eq!(l["start"].as_u64().unwrap(), es.min(tss));
            assert_eq!(l["end"].as_u64().unwrap(), ee.max(tss + 1));
        }
        assert!(g["expression"].as_f64().unwrap().is_finite());
    }
    // a narrow view keeps the genes with an element or the TSS in it, each answered whole
    // (every link of the gene, not only those crossing the view)
    let (_, narrow) = s.json("/v1/builds/fixture/links?ref=chr1&start=43000&end=44500");
    assert_eq!(narrow["genes_computed"], 0, "genes are cached");
    let narrow_links = narrow["links"].as_array().unwrap();
    assert!(narrow_links
        .iter()
        .any(|l| l["start"].as_u64().unwrap() < 44_500 && l["end"].as_u64().unwrap() > 43_000));
    for g in narrow["genes"].as_array().unwrap() {
        let in_narrow = narrow_links
            .iter()
            .filter(|l| l["gene_id"] == g["id"])
            .count();
        let in_wide = links.iter().filter(|l| l["gene_id"] == g["id"]).count();
        assert_eq!(in_narrow, in_wide, "{} is answered whole", g["name"]);
    }
    assert_eq!(narrow["links_hidden"], 0);
    // min_score filters links
    let scores: Vec<f64> = links.iter().map(|l| l["score"].as_f64().unwrap()).collect();
    let (lo, hi) = scores
        .iter()
        .fold((1f64, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    assert!(hi > lo, "link scores differ between candidates");
    let cut = (lo + hi) / 2.0;
    let (_, strong) = s.json(&format!(
        "/v1/builds/fixture/links?ref=chr1&start=0&end=60000&min_score={cut}"
    ));
    let hidden = strong["links_hidden"].as_u64().unwrap() as usize;
    let strong = strong["links"].as_array().unwrap();
    assert!(strong.iter().all(|l| l["score"].as_f64().unwrap() >= cut));
    assert!(!strong.is_empty() && strong.len() < links.len());
    assert_eq!(
        strong.len() + hidden,
        links.len(),
        "links_hidden counts what min_score left out"
    );
    // without an E2G model there is no calibrated threshold to ask for
    let (status, e) =
        s.json("/v1/builds/fixture/links?ref=chr1&start=0&end=60000&min_score=threshold");
    assert_eq!(status, 400);
    assert!(error_message(&e).contains("has no E2G model"), "{e}");

    // links.bb: bigInteract, read back over HTTP by an independent reader
    let url = format!("http://{}/v1/builds/fixture/tracks/links.bb", s.addr);
    let code = r#"
import sys, pyBigWig
bb = pyBigWig.open(sys.argv[1])
assert bb.isBigBed()
assert "targetStrand" in bb.SQL().decode()
for start, end, rest in bb.entries("chr1", 0, 60000) or []:
    f = rest.split(chr(9))
    print(start, end, f[1], f[6], f[7], f[13])
"#;
    let out = std::process::Command::new(python_system())
        .args(["-c", code, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut read: Vec<(u64, u64, u64, u64, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].to_string(),
            )
        })
        .collect();
    let mut expected: Vec<(u64, u64, u64, u64, String)> = links
        .iter()
        .map(|l| {
            (
                l["start"].as_u64().unwrap(),
                l["end"].as_u64().unwrap(),
                l["element_start"].as_u64().unwrap(),
                l["element_end"].as_u64().unwrap(),
                l["gene_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    read.sort();
    expected.sort();
    assert_eq!(read, expected);
    s.stop();

    // a restarted daemon reads the genes from its disk cache
    let s = fixture_server(Some(dir.path()));
    let (_, again) = s.json("/v1/builds/fixture/links?ref=chr1&start=0&end=60000");
    assert_eq!(again["genes_computed"], 0);
    assert_eq!(again["links"], v["links"]);
    s.stop();

    // a build without a link model says how to add one
    let config = helpers::fixture_config_without_links(dir.path());
    let s = TestServer::start(&config, serve_config(None));
    for path in [
        "/v1/builds/fixture/links?ref=chr1&start=0&end=100",
        "/v1/builds/fixture/tracks/links.bb",
    ] {
        let (status, v) = s.json(path);
        assert_eq!(status, 404);
        assert!(
            error_message(&v).contains("has no enhancer-gene link model"),
            "{v}"
        );
    }
    s.stop();
}

/// The demo build (real K562 inputs, E2G model, contigs beyond the partial FASTA from
/// hg38.chrom.sizes): /links answers on a contig without sequence, says its sequence is
/// masked, scores links with the calibrated E2G model and applies model.json's threshold.
#[test]
fn links_on_the_demo_build_use_the_e2g_score_and_answer_without_sequence() {
    helpers::require_demo_data();
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(
        &helpers::root().join("examples/hg38.toml"),
        serve_config(Some(dir.path())),
    );
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(helpers::root().join("models/link-e2g/0.1.0/model.json")).unwrap(),
    )
    .unwrap();
    let threshold = spec["threshold"].as_f64().unwrap();
    // chr11 (beta-globin locus) is not in the partial FASTA
    let (status, v) = s.json(
        "/v1/builds/hg38/links?ref=chr11&start=5200000&end=5300000&wait=120000&min_score=threshold",
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["complete"], true);
    assert_eq!(v["sequence_masked"], true);
    assert_eq!(v["score_kind"], "e2g");
    assert_eq!(v["e2g"]["name"], "link-e2g");
    assert!((v["threshold"].as_f64().unwrap() - threshold).abs() < 1e-4);
    assert!((v["min_score"].as_f64().unwrap() - threshold).abs() < 1e-4);
    let links = v["links"].as_array().unwrap();
    assert!(!links.is_empty() && v["links_hidden"].as_u64().unwrap() > 0);
    assert!(links
        .iter()
        .all(|l| l["score"].as_f64().unwrap() >= threshold - 1e-4));
    let genes = v["genes"].as_array().unwrap();
    let hbe1 = genes
        .iter()
        .find(|g| g["name"] == "HBE1")
        .expect("HBE1 listed");
    // Ensembl id from the genes file; the minus-strand TSS is the gene body's last base
    // (ABC's CollapsedGeneBounds row `chr11 5268349 5270143 HBE1 0 - ENSG00000213931`)
    assert_eq!(hbe1["id"], "ENSG00000213931");
    assert_eq!(hbe1["strand"], "-");
    assert_eq!(hbe1["tss"], 5_270_142);
    assert!(links.iter().any(|l| l["gene_id"] == "ENSG00000213931"));
    // every link of a gene is listed whole, however far its element is from the view
    let (_, all) = s.json("/v1/builds/hg38/links?ref=chr11&start=5200000&end=5300000");
    let hbe1_links = all["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["gene_id"] == "ENSG00000213931")
        .count();
    assert_eq!(hbe1_links as u64, hbe1["links"].as_u64().unwrap());
    let (_, builds) = s.json("/v1/builds");
    assert_eq!(builds["builds"][0]["e2g"]["model"], "link-e2g/0.1.0");
    assert_eq!(builds["builds"][0]["contigs_without_sequence"], 13);
    s.stop();
}

/// A build with a contact table: links whose element and TSS bins are in it use its value
/// (divided by the table's scale) and say `contact_source: "hic"`; the others keep the power
/// law. A malformed table stops the daemon at start-up with the file and line.
#[test]
fn links_use_the_build_contact_table_where_it_has_a_value() {
    let dir = tempfile::tempdir().unwrap();
    // CLCP1's TSS (24,774) is in 5-kb bin 4; cand3 (43,413-44,001, midpoint 43,707) in bin 8,
    // cand1 (12,712-13,262, midpoint 12,987) in bin 2
    let table = dir.path().join("hic.tsv");
    std::fs::write(&table, "chr1\t40000\t20000\t6.0\nchr1\t10000\t20000\t0.5\n").unwrap();
    let config = helpers::edited_fixture_config(dir.path(), |text| {
        text.replace(
            "candidates = \"",
            &format!(
                "contacts = {{ path = \"{}\", resolution = 5000, scale = 2.0 }}\ncandidates = \"",
                table.display()
            ),
        )
    });
    let s = TestServer::start(&config, serve_config(None));
    let (status, v) = s.json("/v1/builds/fixture/links?ref=chr1&start=0&end=60000&wait=60000");
    assert_eq!(status, 200, "{v}");
    let links = v["links"].as_array().unwrap();
    let find = |gene: &str, start: u64| {
        links
            .iter()
            .find(|l| l["gene_name"] == gene && l["element_start"] == start)
            .unwrap_or_else(|| panic!("{gene} {start}"))
    };
    let far = find("CLCP1", 43_413);
    assert_eq!(far["contact_source"], "hic");
    assert!(
        (far["contact"].as_f64().unwrap() - 3.0).abs() < 1e-6,
        "{far}"
    );
    let near = find("CLCP1", 12_712);
    assert_eq!(near["contact_source"], "hic");
    assert!(
        (near["contact"].as_f64().unwrap() - 0.25).abs() < 1e-6,
        "{near}"
    );
    let n_hic = links
        .iter()
        .filter(|l| l["contact_source"] == "hic")
        .count();
    assert!(
        n_hic >= 2 && n_hic < links.len(),
        "{n_hic} of {}",
        links.len()
    );
    for l in links.iter().filter(|l| l["contact_source"] == "powerlaw") {
        let d = l["distance"].as_f64().unwrap().max(5000.0);
        let want = (5001.0 / (d + 1.0)).powf(1.024_238_616_787_792);
        assert!((l["contact"].as_f64().unwrap() - want).abs() < 2e-3, "{l}");
    }
    s.stop();
    std::fs::write(&table, "chr1\t40000\t20000\tmany\n").unwrap();
    let c = cistrack::config::Config::load(&config).unwrap();
    let e = State::new(&c, None, serve_config(None))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("hic.tsv:1: contact \"many\" is not a number >= 0"),
        "{e}"
    );
}
