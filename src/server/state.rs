//! What the daemon holds: its settings, and per build the cache, the candidate index, the
//! scoring engines (started on first use) and the link engine.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::genome::genes::{read_intervals, IntervalIndex};
use crate::genome::Build;
use crate::model::{Device, ModelSpec};
use crate::pipeline::cache::{Cache, DiskStore, Stats, DEFAULT_DISK_MIB, DEFAULT_MEMORY_MIB};
use crate::pipeline::engine::{
    inputs_fingerprint, ort_predictors, Engine, EngineOptions, PredictorFactory,
};
use crate::pipeline::pool::PredictorPool;
use crate::track::links::{self, LinkEngine};
use crate::track::score::DEFAULT_STRIDE;

use super::conns::{
    Connections, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};

use super::error::{ApiError, ErrorKind};
use super::metrics::Metrics;

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
    /// Model workers per build and model (`None`: 1 on the CPU, 4 with CUDA).
    pub workers: Option<usize>,
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
    /// Browser origins CORS allows besides loopback ones; `*` allows any.
    pub cors_origins: Vec<String>,
    /// Host names answered besides loopback ones (checked when bound to loopback, or whenever
    /// this is not empty).
    pub allowed_hosts: Vec<String>,
    /// Bearer token every request but `/healthz` must carry.
    pub token: Option<Token>,
    /// Track files are rebuilt from the cache at most this often.
    pub track_refresh: Duration,
    /// Open connections at most (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// Time a client has to send a complete request head.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Mutagenesis work nobody has asked for in this long is dropped (`/ism`).
    pub ism_idle: Duration,
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
            workers: None,
            intra_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_batch: None,
            max_region_bp: DEFAULT_MAX_REGION_BP,
            dense_max_bp: None,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_queued_windows: DEFAULT_MAX_QUEUED_WINDOWS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            default_wait: DEFAULT_WAIT,
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            token: None,
            track_refresh: Duration::from_secs(10),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            ism_idle: super::routes::ism::DEFAULT_IDLE,
        }
    }
}

/// A secret that is never printed (the daemon logs its settings).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl ServeConfig {
    /// A request's wait: `wait` ms if given, else the default; never past the request timeout.
    pub(super) fn wait(&self, wait_ms: Option<u64>) -> Duration {
        match wait_ms {
            Some(ms) => Duration::from_millis(ms).min(self.request_timeout),
            None => self.default_wait.min(self.request_timeout),
        }
    }
}

/// One build as the daemon holds it.
pub struct BuildState {
    pub(super) build: Arc<Build>,
    pub(super) cache: Arc<Cache>,
    fingerprint: String,
    pub(super) candidates: Option<IntervalIndex>,
    pub(super) engines: tokio::sync::Mutex<HashMap<EngineKey, Arc<Engine>>>,
    /// The model sessions of each role, shared by its engines (the build's and its groups').
    sessions: Arc<Sessions>,
    /// The build read for other cell groups of its fragments file (`group=`), by group.
    group_builds: tokio::sync::Mutex<HashMap<String, Arc<Build>>>,
    /// Track files by engine (`links` files under the link role).
    pub(super) tracks: tokio::sync::Mutex<HashMap<EngineKey, TrackFiles>>,
    pub(super) track_dir: PathBuf,
    links: Option<Arc<LinkEngine>>,
    /// In-silico mutagenesis positions being computed.
    pub(super) ism: Arc<super::routes::ism::IsmJobs>,
    /// The build's motif file, read on the first `/motifs` request.
    pub(super) motifs: std::sync::OnceLock<Result<Arc<crate::motif::MotifSet>, String>>,
}

impl BuildState {
    /// The link engine, when the build has a link model (404 saying how to add one otherwise).
    pub(super) fn links(&self) -> Result<Arc<LinkEngine>, ApiError> {
        self.links.clone().ok_or_else(|| {
            ApiError::not_found(format!(
                "build {} has no enhancer-gene link model: add `{} = \"link-epinformer/0.1.0\"` to its models table (it also needs genes and candidates files)",
                self.build.name(),
                links::LINK_ROLE,
            ))
        })
    }

    /// The link engine if there is one (for listings, not for answering link requests).
    pub(super) fn link_engine(&self) -> Option<&LinkEngine> {
        self.links.as_deref()
    }

    /// `group` unless it is the build's own cell group (read by the build's own engine, cache
    /// namespace and track files).
    pub(super) fn other_group<'a>(&self, group: Option<&'a str>) -> Option<&'a str> {
        group.filter(|g| self.build.cell_group() != Some(*g))
    }
}

/// A started engine of a build: its model role and the cell group it reads (`None`: the build's
/// own reading, see [`BuildState::other_group`]). Also the key of its track files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct EngineKey {
    pub(super) role: String,
    pub(super) group: Option<String>,
}

impl EngineKey {
    pub(super) fn new(role: &str, group: Option<&str>) -> Self {
        Self {
            role: role.to_string(),
            group: group.map(str::to_string),
        }
    }
}

impl std::fmt::Display for EngineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            None => f.write_str(&self.role),
            Some(group) => write!(f, "{} group={group}", self.role),
        }
    }
}

/// When a build's track files for one model were last written.
#[derive(Debug, Clone)]
pub(super) struct TrackFiles {
    /// The cache (or link engine) generation they were built from.
    pub(super) generation: u64,
    /// When.
    pub(super) built: Instant,
}

impl TrackFiles {
    /// Whether files built at this `generation` should be rebuilt for a reader: only when the
    /// cache has changed since, the reader starts from the header (so a reader paging through
    /// a file sees one version), and not more often than `refresh`.
    pub(super) fn is_stale(
        &self,
        generation: u64,
        starts_at_zero: bool,
        refresh: Duration,
    ) -> bool {
        self.generation != generation && starts_at_zero && self.built.elapsed() >= refresh
    }
}

/// The daemon's shared state.
pub struct State {
    pub(super) config: ServeConfig,
    pub(super) builds: BTreeMap<String, BuildState>,
    pub(super) metrics: Metrics,
    pub(super) admission: Arc<Semaphore>,
    pub(super) connections: Arc<Connections>,
    pub(super) started: Instant,
    predictors: PredictorFactory,
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
        Self::with_predictors(config, only, serve, Arc::new(ort_predictors))
    }

    /// Like [`State::new`], with the model workers' predictors made by `predictors` (tests wrap
    /// the ONNX Runtime sessions to hold batches at a gate).
    ///
    /// # Errors
    ///
    /// As [`State::new`].
    pub fn with_predictors(
        config: &Config,
        only: Option<&str>,
        serve: ServeConfig,
        predictors: PredictorFactory,
    ) -> crate::Result<Self> {
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
                        source: e.into(),
                    })?,
                ),
                None => None,
            };
            let cache = Arc::new(
                Cache::new(serve.memory_cache_mib, disk, stats)
                    .with_shared(config.redis.as_ref(), build.name())?,
            );
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
                        cache.clone(),
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
            // Start the default model now: a broken model fails at start-up, not on a request.
            let role = build.config().default_model.clone();
            let sessions = Arc::new(Sessions::default());
            let engine = start_engine(
                &build,
                &cache,
                &fingerprint,
                &serve,
                &role,
                &predictors,
                &sessions,
            )?;
            let state = BuildState {
                fingerprint,
                build,
                cache,
                links,
                candidates,
                engines: tokio::sync::Mutex::new(HashMap::from([(
                    EngineKey::new(&role, None),
                    Arc::new(engine),
                )])),
                sessions,
                tracks: tokio::sync::Mutex::new(HashMap::new()),
                group_builds: tokio::sync::Mutex::new(HashMap::new()),
                track_dir,
                ism: Arc::default(),
                motifs: std::sync::OnceLock::new(),
            };
            builds.insert(state.build.name().to_string(), state);
        }
        Ok(Self {
            admission: Arc::new(Semaphore::new(serve.max_concurrent)),
            connections: Arc::new(Connections::new(serve.max_connections, serve.idle_timeout)),
            config: serve,
            builds,
            metrics: Metrics::default(),
            started: Instant::now(),
            predictors,
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
            b.cache.flush();
        }
    }

    /// The build named `name` (404 listing the builds otherwise).
    pub(super) fn build(&self, name: &str) -> Result<&BuildState, ApiError> {
        self.builds.get(name).ok_or_else(|| {
            ApiError::not_found(format!(
                "unknown build {name:?} (builds: {})",
                self.build_names().join(", ")
            ))
        })
    }

    /// A slot among the requests in flight, or 429.
    pub(super) fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admission.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorKind::Overloaded,
                format!(
                    "too many requests in flight (limit {}); retry shortly",
                    self.config.max_concurrent
                ),
            )
        })
    }

    /// Requests being handled now.
    pub(super) fn in_flight(&self) -> usize {
        self.config.max_concurrent - self.admission.available_permits()
    }

    /// The scoring engine of `b` for the model `role` (the build's default model if `None`),
    /// started on first use.
    pub(super) async fn engine(
        &self,
        b: &BuildState,
        role: Option<&str>,
    ) -> Result<Arc<Engine>, ApiError> {
        self.group_engine(b, role, None).await
    }

    /// The engine of `role` on the build read for cell group `group` (the build's own reading
    /// without one): 400 for a build without fragments, 404 for a group its table lacks.
    pub(super) async fn group_engine(
        &self,
        b: &BuildState,
        role: Option<&str>,
        group: Option<&str>,
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
        // the build's own group is the build's own engine
        let group = b.other_group(group);
        let key = EngineKey::new(&role, group);
        let (build, fingerprint) = match group {
            None => (b.build.clone(), b.fingerprint.clone()),
            Some(group) => {
                let build = {
                    let mut builds = b.group_builds.lock().await;
                    match builds.get(group) {
                        Some(build) => build.clone(),
                        None => {
                            let build = Arc::new(b.build.with_group(group).map_err(|message| {
                                if b.build
                                    .signals()
                                    .iter()
                                    .any(|s| s.track.fragments().is_some())
                                {
                                    ApiError::not_found(message)
                                } else {
                                    ApiError::bad_request(message)
                                }
                            })?);
                            builds.insert(group.to_string(), build.clone());
                            build
                        }
                    }
                };
                let fingerprint = inputs_fingerprint(&build);
                (build, fingerprint)
            }
        };
        let mut engines = b.engines.lock().await;
        if let Some(e) = engines.get(&key) {
            return Ok(e.clone());
        }
        // Loading a model is blocking work: off the executor threads.
        let (config, cache, predictors, sessions) = (
            self.config.clone(),
            b.cache.clone(),
            self.predictors.clone(),
            b.sessions.clone(),
        );
        let role_clone = role.clone();
        let engine = tokio::task::spawn_blocking(move || {
            start_engine(
                &build,
                &cache,
                &fingerprint,
                &config,
                &role_clone,
                &predictors,
                &sessions,
            )
        })
        .await?
        .map_err(|e| {
            ApiError::new(
                ErrorKind::Unavailable,
                format!(
                    "model {role:?} cannot be loaded: {}",
                    crate::error::chain(&e)
                ),
            )
        })?;
        let engine = Arc::new(engine);
        engines.insert(key, engine.clone());
        Ok(engine)
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if let Some(dir) = &self._tempdir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The model sessions of a build by role, loaded by the role's first engine and lent to every
/// later one (a cell group's engine reads other inputs through the same model).
type Sessions = std::sync::Mutex<HashMap<String, Arc<PredictorPool>>>;

/// Starts the scoring engine of `build` for the model `role`, on the role's sessions in
/// `sessions` (loaded now if it has none).
fn start_engine(
    build: &Arc<Build>,
    cache: &Arc<Cache>,
    fingerprint: &str,
    serve: &ServeConfig,
    role: &str,
    predictors: &PredictorFactory,
    sessions: &Sessions,
) -> crate::Result<Engine> {
    let spec = ModelSpec::load(&build.model_dir(Some(role))?)?;
    let options = EngineOptions {
        stride: serve.stride,
        device: serve.device,
        workers: serve.workers,
        intra_threads: serve.intra_threads,
        max_batch: serve.max_batch,
        max_queued_windows: serve.max_queued_windows,
        fingerprint: fingerprint.to_string(),
    };
    let pool = {
        let mut sessions = sessions.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions.get(role) {
            Some(pool) => pool.clone(),
            None => {
                let (loaded, device) = predictors(&spec, &options)?;
                let pool = PredictorPool::new(loaded, device);
                sessions.insert(role.to_string(), pool.clone());
                pool
            }
        }
    };
    let engine = Engine::with_predictors(
        build.clone(),
        Arc::new(spec),
        cache.clone(),
        &options,
        pool.handles(),
        pool.device(),
    )?;
    tracing::info!(build = build.name(), model = %engine.spec().id(), device = %engine.device(), batch = engine.max_batch(), "model ready");
    Ok(engine)
}
