//! `cistrack serve`: the HTTP daemon that genome browsers ask for the visible window.
//!
//! Routes (0-based, half-open coordinates, JSON unless noted):
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | status, version, per-build device and queue |
//! | `GET /metrics` | Prometheus text |
//! | `GET /v1/builds` | configured builds |
//! | `GET /v1/builds/{build}/refnames` | contigs with lengths and aliases |
//! | `GET /v1/builds/{build}/enhancers?ref=&start=&end=` | window scores and called elements |
//! | `GET /v1/builds/{build}/links?ref=&start=&end=` | enhancer–gene links (needs a link model) |
//! | `GET/HEAD /v1/builds/{build}/tracks/{enhancers.bb,scores.bw}` | track files, with Range |
//!
//! [`handle`] answers a request without a socket (tests call it directly); [`serve`] runs the
//! accept loop with graceful shutdown.

pub mod error;
pub mod metrics;
pub mod range;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::genome::genes::{read_intervals, IntervalIndex};
use crate::genome::{Build, Region};
use crate::model::{Device, Modality, ModelSpec};
use crate::pipeline::cache::{Cache, DiskStore, Stats, DEFAULT_DISK_MIB, DEFAULT_MEMORY_MIB};
use crate::pipeline::engine::{self, inputs_fingerprint, Engine, EngineOptions, Mode};
use crate::track::export;
use crate::track::links::{self, LinkEngine};
use crate::track::score::{call_elements, DEFAULT_STRIDE};

use error::{ApiError, ErrorKind};
use metrics::{family, Metrics};
use range::RangeAnswer;

/// The port `cistrack serve` listens on by default (on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 8765;
/// Largest region one request may ask for, in bp.
pub const DEFAULT_MAX_REGION_BP: u64 = 10_000_000;
/// Views up to this size are scored densely on a CPU; larger ones score candidates first.
pub const DEFAULT_DENSE_MAX_BP_CPU: u64 = 100_000;
/// How long a request waits for scores by default before answering with what is ready.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// Upper bound on a request's wait.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests handled at once before 429.
pub const DEFAULT_MAX_CONCURRENT: usize = 64;
/// Windows queued at once before 429.
pub const DEFAULT_MAX_QUEUED_WINDOWS: usize = 200_000;

/// Response body type.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Daemon settings (from `cistrack serve` flags).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Per-build SQLite caches live here; `None` keeps scores in memory only.
    pub cache_dir: Option<PathBuf>,
    /// In-memory tier per build, MiB.
    pub memory_cache_mib: usize,
    /// On-disk tier limit per build, MiB.
    pub disk_cache_mib: u64,
    /// Grid stride, bp.
    pub stride: u64,
    /// Requested device.
    pub device: Device,
    /// Model workers per build and model.
    pub workers: usize,
    /// ONNX Runtime intra-op threads per worker.
    pub intra_threads: usize,
    /// Maximum windows per model call (`None`: 4 on CPU, 128 on CUDA).
    pub max_batch: Option<usize>,
    /// Largest region per request.
    pub max_region_bp: u64,
    /// Largest view scored densely in `mode=auto` (`None`: 100 kb on CPU, the region limit on CUDA).
    pub dense_max_bp: Option<u64>,
    /// Requests in flight before 429.
    pub max_concurrent: usize,
    /// Windows queued before 429.
    pub max_queued_windows: usize,
    /// Upper bound on any request's wait.
    pub request_timeout: Duration,
    /// Default wait for scores before answering with what is ready.
    pub default_wait: Duration,
    /// Allowed browser origins; empty allows any (`*`).
    pub cors_origins: Vec<String>,
    /// Track files are rebuilt from the cache at most this often.
    pub track_refresh: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            cache_dir: None,
            memory_cache_mib: DEFAULT_MEMORY_MIB,
            disk_cache_mib: DEFAULT_DISK_MIB,
            stride: DEFAULT_STRIDE,
            device: Device::Auto,
            workers: 1,
            intra_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_batch: None,
            max_region_bp: DEFAULT_MAX_REGION_BP,
            dense_max_bp: None,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_queued_windows: DEFAULT_MAX_QUEUED_WINDOWS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            default_wait: DEFAULT_WAIT,
            cors_origins: Vec::new(),
            track_refresh: Duration::from_secs(10),
        }
    }
}

/// One build as the daemon holds it.
pub struct BuildState {
    build: Arc<Build>,
    cache: Arc<Cache>,
    fingerprint: String,
    candidates: Option<IntervalIndex>,
    engines: tokio::sync::Mutex<HashMap<String, Arc<Engine>>>,
    tracks: tokio::sync::Mutex<HashMap<String, TrackFiles>>,
    track_dir: PathBuf,
    links: Option<Arc<LinkEngine>>,
}

#[derive(Debug, Clone)]
struct TrackFiles {
    generation: u64,
    built: Instant,
}

impl TrackFiles {
    /// Whether files built at this `generation` should be rebuilt for a reader: only when the
    /// cache has changed since, the reader starts from the header (so a reader paging through
    /// a file sees one version), and not more often than `refresh`.
    fn is_stale(&self, generation: u64, starts_at_zero: bool, refresh: Duration) -> bool {
        self.generation != generation && starts_at_zero && self.built.elapsed() >= refresh
    }
}

/// The daemon's shared state.
pub struct State {
    config: ServeConfig,
    builds: BTreeMap<String, BuildState>,
    metrics: Metrics,
    admission: Arc<Semaphore>,
    started: Instant,
    _tempdir: Option<PathBuf>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("builds", &self.builds.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl State {
    /// Opens every build of `config` (or only `only`), their caches and candidate indexes, and
    /// starts each build's default model. Blocking: call before the runtime, or from
    /// `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// Any build, cache or model error, naming the file.
    pub fn new(config: &Config, only: Option<&str>, serve: ServeConfig) -> crate::Result<Self> {
        let mut builds = BTreeMap::new();
        let selected: Vec<_> = match only {
            Some(name) => vec![config.build(Some(name))?],
            None => config.builds.values().collect(),
        };
        let scratch = match &serve.cache_dir {
            Some(_) => None,
            None => {
                Some(std::env::temp_dir().join(format!("cistrack-serve-{}", std::process::id())))
            }
        };
        for build_config in selected {
            let build = Arc::new(Build::open(build_config)?);
            let stats = Arc::new(Stats::default());
            let disk = match &serve.cache_dir {
                Some(dir) => Some(
                    DiskStore::open(
                        &dir.join(format!("{}.sqlite", build.name())),
                        serve.disk_cache_mib * 1024 * 1024,
                        stats.clone(),
                    )
                    .map_err(|e| crate::io::Error::Write {
                        path: dir.clone(),
                        message: e.to_string(),
                    })?,
                ),
                None => None,
            };
            let cache = Arc::new(Cache::new(serve.memory_cache_mib, disk, stats));
            let candidates = match &build_config.candidates {
                Some(path) => Some(IntervalIndex::new(&read_intervals(path)?, build.contigs())),
                None => None,
            };
            let track_dir = serve
                .cache_dir
                .clone()
                .or(scratch.clone())
                .expect("one of the two is set")
                .join("tracks")
                .join(build.name());
            let fingerprint = inputs_fingerprint(&build);
            let links = match build_config.models.get(links::LINK_ROLE) {
                None => None,
                Some(_) => {
                    let engine = links::open(
                        build.clone(),
                        cache.disk_shared(),
                        cache.stats().clone(),
                        &fingerprint,
                        serve.device,
                        serve.intra_threads,
                        true,
                    )?;
                    tracing::info!(
                        build = build.name(),
                        model = engine.model_name(),
                        "link model ready"
                    );
                    Some(Arc::new(engine))
                }
            };
            let state = BuildState {
                fingerprint,
                build,
                cache,
                links,
                candidates,
                engines: tokio::sync::Mutex::new(HashMap::new()),
                tracks: tokio::sync::Mutex::new(HashMap::new()),
                track_dir,
            };
            // Start the default model now: a broken model fails at start-up, not on a request.
            let role = state.build.config().default_model.clone();
            let engine = start_engine(&state, &serve, &role)?;
            state
                .engines
                .try_lock()
                .expect("fresh lock")
                .insert(role, Arc::new(engine));
            builds.insert(state.build.name().to_string(), state);
        }
        Ok(Self {
            admission: Arc::new(Semaphore::new(serve.max_concurrent)),
            config: serve,
            builds,
            metrics: Metrics::default(),
            started: Instant::now(),
            _tempdir: scratch,
        })
    }

    /// The builds served.
    pub fn build_names(&self) -> Vec<&str> {
        self.builds.keys().map(String::as_str).collect()
    }

    /// The effective settings.
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }

    /// Waits until every cache write is on disk (used at shutdown).
    pub fn flush(&self) {
        for b in self.builds.values() {
            if let Some(disk) = b.cache.disk() {
                disk.flush();
            }
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(dir) = &self._tempdir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn start_engine(state: &BuildState, serve: &ServeConfig, role: &str) -> crate::Result<Engine> {
    let spec = ModelSpec::load(&state.build.model_dir(Some(role))?)?;
    let options = EngineOptions {
        stride: serve.stride,
        device: serve.device,
        workers: serve.workers,
        intra_threads: serve.intra_threads,
        max_batch: serve.max_batch,
        max_queued_windows: serve.max_queued_windows,
        fingerprint: state.fingerprint.clone(),
    };
    let engine = Engine::start(
        state.build.clone(),
        Arc::new(spec),
        state.cache.clone(),
        &options,
    )?;
    tracing::info!(build = state.build.name(), model = %engine.spec().id(), device = %engine.device(), batch = engine.max_batch(), "model ready");
    Ok(engine)
}

/// Runs the accept loop on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (up to `grace`) and flushes the caches.
///
/// # Errors
///
/// Accept errors that are not per-connection.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        continue;
                    }
                };
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(state, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => tracing::warn!("requests still running after {grace:?}; stopping anyway"),
    }
    let flush_state = state.clone();
    let _ = tokio::task::spawn_blocking(move || flush_state.flush()).await;
    Ok(())
}

/// Answers one request (used by [`serve`] and directly by tests).
pub async fn handle<B>(state: Arc<State>, req: Request<B>) -> Response<Body> {
    let started = Instant::now();
    let origin = req.headers().get(header::ORIGIN).cloned();
    let (route, result) = route(&state, &req).await;
    let mut response = result.unwrap_or_else(|e| {
        if e.kind != ErrorKind::Internal {
            tracing::debug!(route, "{e}");
        }
        json_response(e.kind.status(), e.body())
    });
    add_cors(&state.config, origin.as_ref(), response.headers_mut());
    state.metrics.observe(
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

type RouteResult = Result<Response<Body>, ApiError>;

async fn route<B>(state: &Arc<State>, req: &Request<B>) -> (&'static str, RouteResult) {
    let path = req.uri().path();
    if req.method() == Method::OPTIONS {
        return ("preflight", Ok(preflight(req.headers())));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (
            "other",
            Err(ApiError::new(
                ErrorKind::MethodNotAllowed,
                format!("method {} is not supported; use GET", req.method()),
            )),
        );
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query = req.uri().query().unwrap_or("");
    match segments.as_slice() {
        ["healthz"] => ("healthz", Ok(healthz(state).await)),
        ["metrics"] => ("metrics", Ok(metrics(state).await)),
        ["v1", "builds"] | ["v1", "builds", ""] => ("builds", Ok(builds(state))),
        ["v1", "builds", build, "refnames"] => ("refnames", with_build(state, build).map(refnames)),
        ["v1", "builds", build, "enhancers"] => ("enhancers", enhancers(state, build, query).await),
        ["v1", "builds", build, "links"] => ("links", links_route(state, build, query).await),
        ["v1", "builds", build, "tracks", name] => {
            ("tracks", tracks(state, build, name, query, req).await)
        }
        _ => (
            "other",
            Err(ApiError::not_found(format!(
                "no route {path}; see /v1/builds"
            ))),
        ),
    }
}

fn with_build<'a>(state: &'a State, name: &str) -> Result<&'a BuildState, ApiError> {
    state.builds.get(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown build {name:?} (builds: {})",
            state.build_names().join(", ")
        ))
    })
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn json_ok(value: Value) -> Response<Body> {
    json_response(StatusCode::OK, value.to_string())
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn add_cors(config: &ServeConfig, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    let allowed = if config.cors_origins.is_empty() {
        Some(HeaderValue::from_static("*"))
    } else {
        origin
            .filter(|o| {
                config
                    .cors_origins
                    .iter()
                    .any(|a| o.as_bytes() == a.as_bytes())
            })
            .cloned()
    };
    if let Some(value) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Length, Content-Range, Accept-Ranges, ETag"),
        );
        if !config.cors_origins.is_empty() {
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

fn preflight(headers: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested.unwrap_or_else(|| HeaderValue::from_static("Range, If-None-Match, Content-Type")),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

async fn healthz(state: &State) -> Response<Body> {
    let mut builds = serde_json::Map::new();
    for (name, b) in &state.builds {
        let engines = b.engines.lock().await;
        let models: serde_json::Map<String, Value> = engines
            .iter()
            .map(|(role, e)| (role.clone(), json!({"model": e.spec().id(), "device": e.device().to_string(), "queued_windows": e.queued()})))
            .collect();
        builds.insert(name.clone(), Value::Object(models));
    }
    json_ok(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "builds": builds,
    }))
}

fn builds(state: &State) -> Response<Body> {
    let list: Vec<Value> = state
        .builds
        .values()
        .map(|b| {
            let c = b.build.config();
            json!({
                "name": b.build.name(),
                "description": c.description,
                "contigs": b.build.contigs().len(),
                "signals": b.build.signals().iter().map(|s| s.modality.as_str()).collect::<Vec<_>>(),
                "masked_modalities": b.build.masked_modalities().iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                "models": c.models,
                "default_model": c.default_model,
                "stride": state.config.stride,
                "candidates": b.candidates.as_ref().map(|c| c.len()),
                "links": b.links.as_ref().map(|l| l.model_name()),
                "e2g": b.links.as_ref().and_then(|l| l.e2g()).map(|m| json!({"model": m.id(), "threshold": round4(m.threshold)})),
                "contigs_without_sequence": b.build.contigs().sequence_less(),
            })
        })
        .collect();
    json_ok(json!({"builds": list}))
}

fn refnames(b: &BuildState) -> Response<Body> {
    let contigs = b.build.contigs();
    let list: Vec<Value> = contigs
        .iter()
        .map(|c| json!({"name": c.name, "length": c.length, "aliases": contigs.names_of(&c.name)[1..].to_vec()}))
        .collect();
    json_ok(json!({"build": b.build.name(), "refnames": list}))
}

/// Query parameters, percent-decoded; duplicates are an error.
fn parse_query(query: &str) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        let value = percent_decode(value)?;
        if out.insert(key.clone(), value).is_some() {
            return Err(ApiError::bad_request(format!(
                "query parameter {key:?} is given more than once"
            )));
        }
    }
    Ok(out)
}

fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(byte) = hex else {
                    return Err(ApiError::bad_request(format!(
                        "malformed percent-encoding in query {text:?}"
                    )));
                };
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request(format!("query {text:?} is not UTF-8")))
}

fn param_u64(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{name}={v:?} is not a non-negative integer"))
        }),
    }
}

/// Validates `ref`, `start`, `end` (0-based, half-open) against the build; clips `end` to the
/// contig length (browsers ask past contig ends). `Ok(None)` for a view wholly past the end.
fn view_region(
    b: &BuildState,
    params: &HashMap<String, String>,
    max_region_bp: u64,
) -> Result<Option<Region>, ApiError> {
    let name = params
        .get("ref")
        .ok_or_else(|| ApiError::bad_request("missing query parameter ref (a contig name)"))?;
    let start = param_u64(params, "start")?
        .ok_or_else(|| ApiError::bad_request("missing query parameter start (0-based)"))?;
    let end = param_u64(params, "end")?
        .ok_or_else(|| ApiError::bad_request("missing query parameter end (0-based, exclusive)"))?;
    let contig = b
        .build
        .contigs()
        .resolve(name)
        .ok_or_else(|| ApiError::not_found(b.build.contigs().unknown(name).to_string()))?;
    if start >= end {
        return Err(ApiError::bad_request(format!(
            "start {start} must be below end {end} (0-based, half-open)"
        )));
    }
    if end - start > max_region_bp {
        return Err(ApiError::new(
            ErrorKind::RegionTooLarge,
            format!("region of {} bp exceeds the limit of {max_region_bp} bp per request (cistrack serve --max-region)", end - start),
        ));
    }
    if start >= contig.length {
        return Ok(None);
    }
    Ok(Some(
        Region::new(&contig.name, start, end.min(contig.length)).expect("start < end; checked"),
    ))
}

async fn engine_for(
    state: &State,
    b: &BuildState,
    role: Option<&str>,
) -> Result<Arc<Engine>, ApiError> {
    let role = role.unwrap_or(&b.build.config().default_model).to_string();
    if role == links::LINK_ROLE || role == links::E2G_ROLE {
        return Err(ApiError::bad_request(format!(
            "model {role:?} is an enhancer-gene link model; ask /v1/builds/{}/links for links",
            b.build.name()
        )));
    }
    if !b.build.config().models.contains_key(&role) {
        let known: Vec<&str> = b
            .build
            .config()
            .models
            .keys()
            .map(String::as_str)
            .filter(|r| *r != links::LINK_ROLE && *r != links::E2G_ROLE)
            .collect();
        return Err(ApiError::not_found(format!(
            "unknown model {role:?} for build {} (models: {})",
            b.build.name(),
            known.join(", ")
        )));
    }
    let mut engines = b.engines.lock().await;
    if let Some(e) = engines.get(&role) {
        return Ok(e.clone());
    }
    // Loading a model is blocking work: off the executor threads.
    let (config, build, cache, fingerprint) = (
        state.config.clone(),
        b.build.clone(),
        b.cache.clone(),
        b.fingerprint.clone(),
    );
    let role_clone = role.clone();
    let engine = tokio::task::spawn_blocking(move || {
        let tmp = BuildState {
            build,
            cache,
            fingerprint,
            candidates: None,
            engines: Default::default(),
            tracks: Default::default(),
            track_dir: PathBuf::new(),
            links: None,
        };
        start_engine(&tmp, &config, &role_clone)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| {
        ApiError::new(
            ErrorKind::Unavailable,
            format!("model {role:?} cannot be loaded: {e:#}"),
        )
    })?;
    let engine = Arc::new(engine);
    engines.insert(role, engine.clone());
    Ok(engine)
}

async fn enhancers(state: &Arc<State>, build: &str, query: &str) -> RouteResult {
    let b = with_build(state, build)?;
    let params = parse_query(query)?;
    for key in params.keys() {
        if ![
            "ref", "start", "end", "model", "wait", "mode", "include", "stride",
        ]
        .contains(&key.as_str())
        {
            return Err(ApiError::bad_request(format!("unknown query parameter {key:?} (known: ref, start, end, model, wait, mode, include, stride)")));
        }
    }
    if let Some(stride) = param_u64(&params, "stride")? {
        if stride != state.config.stride {
            return Err(ApiError::bad_request(format!("this daemon scores at stride {} bp (cistrack serve --stride); stride={stride} is not available", state.config.stride)));
        }
    }
    let wait = match param_u64(&params, "wait")? {
        Some(ms) => Duration::from_millis(ms).min(state.config.request_timeout),
        None => state.config.default_wait.min(state.config.request_timeout),
    };
    let include: Vec<&str> = params
        .get("include")
        .map_or(vec!["windows", "elements"], |v| v.split(',').collect());
    for part in &include {
        if !["windows", "elements"].contains(part) {
            return Err(ApiError::bad_request(format!(
                "include={part:?}: use windows, elements or both"
            )));
        }
    }
    let requested_mode = params.get("mode").map(String::as_str).unwrap_or("auto");
    if !["auto", "dense", "candidates"].contains(&requested_mode) {
        return Err(ApiError::bad_request(format!(
            "mode={requested_mode:?}: use auto, dense or candidates"
        )));
    }
    let region = view_region(b, &params, state.config.max_region_bp)?;
    let engine = engine_for(state, b, params.get("model").map(String::as_str)).await?;
    let _permit = state.admission.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            ErrorKind::Overloaded,
            format!(
                "too many requests in flight (limit {}); retry shortly",
                state.config.max_concurrent
            ),
        )
    })?;
    let spec = engine.spec();
    let mut body = json!({
        "build": b.build.name(),
        "ref": params["ref"],
        "model": {"name": spec.name, "version": spec.version, "sha256": spec.sha256},
        "stride": engine.stride(),
        "threshold": spec.threshold,
        "masked_modalities": b.build.masked_modalities().iter().map(|m| m.as_str()).collect::<Vec<_>>(),
    });
    let Some(region) = region else {
        body["start"] = json!(params["start"].parse::<u64>().unwrap_or(0));
        body["end"] = json!(params["end"].parse::<u64>().unwrap_or(0));
        body["mode"] = json!("dense");
        body["complete"] = json!(true);
        body["pending"] = json!([]);
        body["windows"] = json!([]);
        body["elements"] = json!([]);
        return Ok(json_ok(body));
    };
    let dense_max = state.config.dense_max_bp.unwrap_or(match engine.device() {
        crate::model::onnx::ActiveDevice::Cpu => DEFAULT_DENSE_MAX_BP_CPU,
        crate::model::onnx::ActiveDevice::Cuda => state.config.max_region_bp,
    });
    let mode = match (requested_mode, &b.candidates) {
        ("dense", _) => Mode::Dense,
        ("candidates", Some(_)) => Mode::Candidates,
        ("candidates", None) => {
            return Err(ApiError::bad_request(format!(
                "build {} has no candidate elements configured; use mode=dense",
                b.build.name()
            )))
        }
        (_, Some(_)) if region.len() > dense_max => Mode::Candidates,
        _ => Mode::Dense,
    };
    let stride = engine.stride();
    let contig = region.name().to_string();
    let needed = |index: u64| match mode {
        Mode::Dense => true,
        Mode::Candidates => b
            .candidates
            .as_ref()
            .is_some_and(|c| c.overlaps(&contig, index * stride, (index + 1) * stride)),
    };
    let started = Instant::now();
    let view = engine
        .view(&region, needed, Instant::now() + wait)
        .await
        .map_err(|e| match e {
            engine::Error::Overloaded { .. } => ApiError::new(ErrorKind::Overloaded, e.to_string()),
            engine::Error::Failed(message) => {
                ApiError::new(ErrorKind::Unavailable, format!("scoring failed: {message}"))
            }
        })?;
    body["start"] = json!(region.start0());
    body["end"] = json!(region.end0());
    body["mode"] = json!(mode.as_str());
    body["complete"] = json!(view.pending.is_empty());
    body["pending"] = json!(view.pending);
    body["skipped"] = json!(view.skipped);
    body["windows_needed"] = json!(view.needed);
    body["windows_cached"] = json!(view.cached);
    body["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
    if include.contains(&"windows") {
        body["windows"] = Value::Array(
            view.windows
                .iter()
                .map(|w| json!({"start": w.core_start0, "end": w.core_end0, "probability": round4(w.probability), "logit": round4(w.logit), "shares": w.modality_share.map(round4)}))
                .collect(),
        );
    }
    if include.contains(&"elements") {
        let elements = call_elements(region.name(), &view.windows, spec.threshold);
        body["elements"] = Value::Array(
            elements
                .iter()
                .map(|e| {
                    let s = e.peak.modality_share;
                    json!({
                        "start": e.start0, "end": e.end0,
                        "name": format!("{}:{}-{}", e.contig, e.start0 + 1, e.end0),
                        "score": (e.peak.probability as f64 * 1000.0).round().clamp(0.0, 1000.0) as u32,
                        "probability": round4(e.peak.probability),
                        "logit": round4(e.peak.logit),
                        "mean_probability": round4(e.mean_probability),
                        "windows": e.windows,
                        "peak_start": e.peak.core_start0, "peak_end": e.peak.core_end0,
                        "shares": {
                            Modality::Sequence.as_str(): round4(s[0]),
                            Modality::H3k27ac.as_str(): round4(s[1]),
                            Modality::Accessibility.as_str(): round4(s[2]),
                        },
                    })
                })
                .collect(),
        );
    }
    Ok(json_ok(body))
}

fn round4(x: f32) -> f64 {
    (x as f64 * 10_000.0).round() / 10_000.0
}

fn no_links(b: &BuildState) -> ApiError {
    ApiError::not_found(format!(
        "build {} has no enhancer-gene link model: add `{} = \"link-epinformer/0.1.0\"` to its models table (it also needs genes and candidates files)",
        b.build.name(),
        links::LINK_ROLE,
    ))
}

/// Sets a flag when dropped: the request went away (or was answered).
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn links_route(state: &Arc<State>, build: &str, query: &str) -> RouteResult {
    let b = with_build(state, build)?;
    let params = parse_query(query)?;
    for key in params.keys() {
        if !["ref", "start", "end", "wait", "min_score"].contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {key:?} (known: ref, start, end, wait, min_score)"
            )));
        }
    }
    let engine = b.links.clone().ok_or_else(|| no_links(b))?;
    let threshold = engine.e2g().map(|m| m.threshold);
    let min_score = match params.get("min_score").map(String::as_str) {
        None => 0.0,
        Some("threshold") => threshold.ok_or_else(|| {
            ApiError::bad_request(format!(
                "min_score=threshold needs a calibrated link score, and build {} has no E2G model (`{} = \"link-e2g/0.1.0\"` in its models table); give a number between 0 and 1",
                b.build.name(),
                links::E2G_ROLE
            ))
        })?,
        Some(v) => match v.parse::<f32>() {
            Ok(x) if (0.0..=1.0).contains(&x) => x,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "min_score={v:?} is not a number between 0 and 1, nor `threshold`"
                )))
            }
        },
    };
    let wait = match param_u64(&params, "wait")? {
        Some(ms) => Duration::from_millis(ms).min(state.config.request_timeout),
        None => state.config.default_wait.min(state.config.request_timeout),
    };
    let region = view_region(b, &params, state.config.max_region_bp)?;
    let _permit = state.admission.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            ErrorKind::Overloaded,
            format!(
                "too many requests in flight (limit {}); retry shortly",
                state.config.max_concurrent
            ),
        )
    })?;
    let (name, sha) = engine.model_identity();
    let e2g = engine.e2g().map(|m| {
        json!({"name": m.name, "version": m.version, "sha256": m.sha256,
               "threshold": round4(m.threshold), "threshold_recall": m.threshold_recall})
    });
    let mut body = json!({
        "build": b.build.name(),
        "ref": params["ref"],
        "model": {"name": name.0, "version": name.1, "sha256": sha},
        "e2g": e2g,
        "score_kind": if threshold.is_some() { "e2g" } else { "attention" },
        "threshold": threshold.map(round4),
        "min_score": round4(min_score),
        "links_hidden": 0,
        "sequence_masked": false,
        "genes": [],
        "links": [],
        "pending": [],
        "complete": true,
    });
    let Some(region) = region else {
        body["start"] = json!(params["start"].parse::<u64>().unwrap_or(0));
        body["end"] = json!(params["end"].parse::<u64>().unwrap_or(0));
        return Ok(json_ok(body));
    };
    let contig = b
        .build
        .contigs()
        .resolve(region.name())
        .expect("resolved by view_region")
        .clone();
    let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _flag = DropFlag(gone.clone());
    let deadline = Instant::now() + wait;
    let started = Instant::now();
    let (start0, end0) = (region.start0(), region.end0());
    let view = tokio::task::spawn_blocking(move || {
        engine.view(
            &contig,
            start0,
            end0,
            (min_score > 0.0).then_some(min_score),
            || !gone.load(Ordering::Relaxed) && Instant::now() < deadline,
        )
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::new(ErrorKind::Unavailable, format!("links failed: {e}")))?;
    body["start"] = json!(start0);
    body["end"] = json!(end0);
    body["complete"] = json!(view.pending.is_empty());
    body["pending"] = Value::Array(
        view.pending
            .iter()
            .map(|(name, tss)| json!({"name": name, "tss": tss}))
            .collect(),
    );
    body["genes_computed"] = json!(view.computed);
    body["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
    body["sequence_masked"] = json!(view.sequence_masked);
    body["genes"] = Value::Array(
        view.genes
            .iter()
            .map(|g| {
                json!({"id": g.id, "name": g.name, "tss": g.tss, "strand": g.strand.to_string(),
                            "expression": round4(g.expression), "candidates": g.candidates,
                            "links": g.links.len(), "partial": false})
            })
            .collect(),
    );
    // Every listed gene is answered whole (all its links, not only those crossing the view),
    // so a gene's scores can be compared and summed; `min_score` alone leaves links out.
    let all = view.genes.iter().map(|g| g.links.len()).sum::<usize>();
    let links: Vec<Value> = view
        .genes
        .iter()
        .flat_map(|g| g.records().collect::<Vec<_>>())
        .filter(|r| r.link.score >= min_score)
        .map(|r| {
            json!({
                "start": r.start, "end": r.end,
                "gene_id": r.gene_id, "gene_name": r.gene_name, "tss": r.tss, "strand": r.strand.to_string(),
                "element_start": r.link.element_start, "element_end": r.link.element_end,
                "distance": r.link.distance,
                "score": round4(r.link.score), "attention": round4(r.link.attention),
                "abc_score": round4(r.link.abc_score),
                "activity": round4(r.link.activity), "contact": round4(r.link.contact),
                "contact_source": r.link.contact_source.as_str(),
            })
        })
        .collect();
    body["links_hidden"] = json!(all - links.len());
    body["links"] = Value::Array(links);
    Ok(json_ok(body))
}

async fn links_track<B>(
    state: &Arc<State>,
    b: &BuildState,
    range_header: Option<&str>,
    req: &Request<B>,
) -> RouteResult {
    let engine = b.links.clone().ok_or_else(|| no_links(b))?;
    let dir = b.track_dir.join(links::LINK_ROLE);
    let path = dir.join("links.bb");
    let starts_at_zero = range_header.is_none_or(|r| r.trim().starts_with("bytes=0-"));
    {
        let mut tracks = b.tracks.lock().await;
        let generation = engine.generation();
        let stale = tracks
            .get(links::LINK_ROLE)
            .is_none_or(|t| t.is_stale(generation, starts_at_zero, state.config.track_refresh));
        if stale || !path.exists() {
            let build = b.build.clone();
            tokio::task::spawn_blocking(move || export::export_links(&build, &engine, &dir))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
            tracks.insert(
                links::LINK_ROLE.to_string(),
                TrackFiles {
                    generation,
                    built: Instant::now(),
                },
            );
        }
    }
    serve_file(&path, range_header, req).await
}

async fn tracks<B>(
    state: &Arc<State>,
    build: &str,
    name: &str,
    query: &str,
    req: &Request<B>,
) -> RouteResult {
    let b = with_build(state, build)?;
    let params = parse_query(query)?;
    let file = match name {
        "enhancers.bb" | "scores.bw" => name,
        "links.bb" => {
            let range_header = req
                .headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            return links_track(state, b, range_header.as_deref(), req).await;
        }
        _ => {
            return Err(ApiError::not_found(format!(
                "no track {name:?}; tracks: enhancers.bb, scores.bw, links.bb"
            )))
        }
    };
    let engine = engine_for(state, b, params.get("model").map(String::as_str)).await?;
    let role = params
        .get("model")
        .cloned()
        .unwrap_or_else(|| b.build.config().default_model.clone());
    let dir = b.track_dir.join(&role);
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let starts_at_zero = range_header
        .as_deref()
        .is_none_or(|r| r.trim().starts_with("bytes=0-"));
    {
        // Rebuild stale files only when a reader starts from the header, and not too often, so a
        // reader paging through a file sees one version.
        let mut tracks = b.tracks.lock().await;
        let generation = b.cache.generation();
        let stale = tracks
            .get(&role)
            .is_none_or(|t| t.is_stale(generation, starts_at_zero, state.config.track_refresh));
        if stale || !dir.join(file).exists() {
            let (build_arc, cache, variant, stride, threshold, out) = (
                b.build.clone(),
                b.cache.clone(),
                engine.variant().to_string(),
                engine.stride(),
                engine.spec().threshold,
                dir.clone(),
            );
            let exported = tokio::task::spawn_blocking(move || {
                export::export(&build_arc, &cache, &variant, stride, threshold, &out)
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
            tracing::debug!(
                build,
                role,
                windows = exported.windows,
                elements = exported.elements,
                "track files rebuilt"
            );
            tracks.insert(
                role.clone(),
                TrackFiles {
                    generation,
                    built: Instant::now(),
                },
            );
        }
    }
    serve_file(&dir.join(file), range_header.as_deref(), req).await
}

async fn serve_file<B>(path: &Path, range: Option<&str>, req: &Request<B>) -> RouteResult {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(ApiError::internal)?;
    let len = meta.len();
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{len:x}-{modified:x}\"");
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CACHE_CONTROL, "no-cache");
    if range.is_none()
        && req
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(full(Bytes::new()))
            .map_err(ApiError::internal);
    }
    let (status, start, end) = match range::answer(range, len) {
        RangeAnswer::Full => (StatusCode::OK, 0, len.saturating_sub(1)),
        RangeAnswer::Partial { start, end } => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        RangeAnswer::Unsatisfiable => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(full(Bytes::from(
                    ApiError::new(
                        ErrorKind::RangeNotSatisfiable,
                        format!(
                            "range {} is outside the file ({len} bytes)",
                            range.unwrap_or("")
                        ),
                    )
                    .body(),
                )))
                .map_err(ApiError::internal);
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    builder = builder.status(status).header(header::CONTENT_LENGTH, count);
    if req.method() == Method::HEAD || count == 0 {
        return builder.body(full(Bytes::new())).map_err(ApiError::internal);
    }
    let path = path.to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(path)?;
        f.seek(SeekFrom::Start(start))?;
        let mut buf = vec![0u8; count as usize];
        f.read_exact(&mut buf)?;
        Ok(buf)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    builder
        .body(full(Bytes::from(bytes)))
        .map_err(ApiError::internal)
}

async fn metrics(state: &State) -> Response<Body> {
    let mut out = String::new();
    state.metrics.render_requests(&mut out);
    let mut scored = Vec::new();
    let mut skipped = Vec::new();
    let mut cancelled = Vec::new();
    let mut batches = Vec::new();
    let mut rows = Vec::new();
    let mut fill = Vec::new();
    let mut queue = Vec::new();
    let mut device = Vec::new();
    let mut inference = Vec::new();
    let mut hits = Vec::new();
    let mut misses = Vec::new();
    let mut corrupt = Vec::new();
    let mut evictions = Vec::new();
    for (name, b) in &state.builds {
        for (role, e) in b.engines.lock().await.iter() {
            let labels = format!(
                "build=\"{name}\",model=\"{}\",role=\"{role}\"",
                e.spec().id()
            );
            let s = e.stats();
            let n_batches = s.batches.load(Ordering::Relaxed) as f64;
            let n_rows = s.batch_rows.load(Ordering::Relaxed) as f64;
            scored.push((
                labels.clone(),
                s.windows_scored.load(Ordering::Relaxed) as f64,
            ));
            skipped.push((
                labels.clone(),
                s.windows_skipped.load(Ordering::Relaxed) as f64,
            ));
            cancelled.push((
                labels.clone(),
                s.windows_cancelled.load(Ordering::Relaxed) as f64,
            ));
            batches.push((labels.clone(), n_batches));
            rows.push((labels.clone(), n_rows));
            fill.push((
                labels.clone(),
                if n_batches > 0.0 {
                    n_rows / (n_batches * e.max_batch() as f64)
                } else {
                    0.0
                },
            ));
            queue.push((labels.clone(), e.queued() as f64));
            inference.push((
                labels.clone(),
                s.inference_micros.load(Ordering::Relaxed) as f64 / 1e6,
            ));
            device.push((format!("{labels},device=\"{}\"", e.device()), 1.0));
        }
        let c = &b.cache.stats;
        for (tier, h, m) in [
            ("memory", &c.memory_hits, &c.memory_misses),
            ("disk", &c.disk_hits, &c.disk_misses),
        ] {
            hits.push((
                format!("build=\"{name}\",tier=\"{tier}\""),
                h.load(Ordering::Relaxed) as f64,
            ));
            misses.push((
                format!("build=\"{name}\",tier=\"{tier}\""),
                m.load(Ordering::Relaxed) as f64,
            ));
        }
        corrupt.push((
            format!("build=\"{name}\""),
            c.corrupt_entries.load(Ordering::Relaxed) as f64,
        ));
        evictions.push((
            format!("build=\"{name}\""),
            c.disk_evictions.load(Ordering::Relaxed) as f64,
        ));
    }
    family(
        &mut out,
        "cistrack_windows_scored_total",
        "counter",
        "Windows run through the model.",
        &scored,
    );
    family(
        &mut out,
        "cistrack_windows_skipped_total",
        "counter",
        "Windows skipped for having no A/C/G/T base.",
        &skipped,
    );
    family(
        &mut out,
        "cistrack_windows_cancelled_total",
        "counter",
        "Queued windows dropped because their requesters left.",
        &cancelled,
    );
    family(
        &mut out,
        "cistrack_batches_total",
        "counter",
        "Model calls.",
        &batches,
    );
    family(
        &mut out,
        "cistrack_batch_windows_total",
        "counter",
        "Windows in all model calls (divide by batches for the mean batch size).",
        &rows,
    );
    family(
        &mut out,
        "cistrack_batch_fill_ratio",
        "gauge",
        "Mean batch size over the maximum batch size.",
        &fill,
    );
    family(
        &mut out,
        "cistrack_queue_windows",
        "gauge",
        "Windows waiting for a model worker.",
        &queue,
    );
    family(
        &mut out,
        "cistrack_inference_seconds_total",
        "counter",
        "Time spent in ONNX Runtime.",
        &inference,
    );
    family(
        &mut out,
        "cistrack_device_info",
        "gauge",
        "Where each model runs (cpu or cuda).",
        &device,
    );
    family(
        &mut out,
        "cistrack_cache_hits_total",
        "counter",
        "Tile cache hits by tier.",
        &hits,
    );
    family(
        &mut out,
        "cistrack_cache_misses_total",
        "counter",
        "Tile cache misses by tier.",
        &misses,
    );
    family(
        &mut out,
        "cistrack_cache_corrupt_entries_total",
        "counter",
        "Cache entries that failed their checksum (recomputed).",
        &corrupt,
    );
    family(
        &mut out,
        "cistrack_cache_evictions_total",
        "counter",
        "Disk cache entries evicted to stay under the size limit.",
        &evictions,
    );
    family(
        &mut out,
        "cistrack_requests_in_flight",
        "gauge",
        "Requests being handled.",
        &[(
            String::new(),
            (state.config.max_concurrent - state.admission.available_permits()) as f64,
        )],
    );
    let mut response = Response::new(full(Bytes::from(out)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_query() {
        let q = parse_query("ref=chr1&start=10&end=20&x=a%3Ab+c").unwrap();
        assert_eq!((q["ref"].as_str(), q["x"].as_str()), ("chr1", "a:b c"));
        assert!(parse_query("a=1&a=2")
            .unwrap_err()
            .message
            .contains("more than once"));
        assert!(parse_query("a=%zz")
            .unwrap_err()
            .message
            .contains("malformed percent-encoding"));
        assert!(parse_query("a=%ff")
            .unwrap_err()
            .message
            .contains("not UTF-8"));
        assert!(parse_query("").unwrap().is_empty());
    }
}
