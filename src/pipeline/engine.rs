//! The engine: views → tiles → cache → deduplicated tile jobs → the one queue in front of the
//! model workers ([`super::batcher`]). The daemon, `score`, `precompute` and `export` ask it
//! for views of the genome; `annotate` also queues windows it cut itself.
//!
//! - A tile job computes some slots of one tile. Requesters hold it by `Arc`; the queued window
//!   jobs hold it by `Weak`. When every requester has gone (client disconnected, or the response
//!   was sent), queued windows fail to upgrade and are skipped, so an abandoned request stops
//!   costing compute. Windows already computed are never lost: they merge into the cache as they
//!   finish, and what a cancelled job computed is persisted when it drops.
//! - Identical tiles asked for at the same time join one job.
//! - Worker threads (one ONNX Runtime session and one set of file readers each,
//!   [`super::workers`]) take whatever windows are queued, up to the batch size: batches fill
//!   from all concurrent requests.
//! - Nothing here blocks an async executor thread: cache disk reads run in `spawn_blocking`,
//!   input reading and inference on the worker threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::error::SharedCause;
use crate::genome::{Build, Region};
use crate::model::onnx::{ActiveDevice, OrtPredictor, SessionOptions};
use crate::model::{Device, ModelSpec, Predictor};
use crate::track::score::WindowScore;

use super::batcher::{self, Input, Queue, Sink, Work};
use super::cache::{variant_id, Cache, Slot, Tile, TileKey, TILE_WINDOWS};
use super::grid::Grid;
use super::workers::{self, Shared};

pub use super::cache::key::{add_file_identity, inputs_fingerprint, variant_for};
use super::jobs::{JobState, TileJob};
pub use super::workers::EngineStats;

/// Which windows of a view to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every window.
    Dense,
    /// Only windows whose core overlaps a candidate element.
    Candidates,
}

impl Mode {
    /// Name used in responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Dense => "dense",
            Mode::Candidates => "candidates",
        }
    }
}

/// Errors of on-demand scoring.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The window queue is full.
    #[error("the scoring queue is full ({queued} windows waiting, limit {limit}); retry shortly")]
    Overloaded {
        /// Windows queued now.
        queued: usize,
        /// The limit.
        limit: usize,
    },
    /// Reading inputs or inference failed for some windows.
    #[error("scoring failed")]
    Failed(#[source] SharedCause),
}

/// How to run an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Grid stride (core length).
    pub stride: u64,
    /// Requested device.
    pub device: Device,
    /// Model worker threads (one ONNX Runtime session each); `None`: 1 on the CPU,
    /// [`CUDA_WORKERS`] with CUDA.
    pub workers: Option<usize>,
    /// ONNX Runtime intra-op threads per worker.
    pub intra_threads: usize,
    /// Maximum windows per model call; `None`: 4 on CPU, 128 on CUDA.
    pub max_batch: Option<usize>,
    /// Maximum windows waiting in the queue before requests get `Overloaded`.
    pub max_queued_windows: usize,
    /// Fingerprint of the inputs (see [`inputs_fingerprint`]).
    pub fingerprint: String,
}

impl EngineOptions {
    /// A one-process command's engine (`score`, `annotate`, `precompute`): the device's
    /// number of model workers with `threads` intra-op threads, no queue limit, the build's
    /// input fingerprint.
    pub fn command(
        build: &Build,
        stride: u64,
        device: Device,
        workers: Option<usize>,
        threads: usize,
        max_batch: Option<usize>,
    ) -> Self {
        Self {
            stride,
            device,
            workers,
            intra_threads: threads,
            max_batch,
            max_queued_windows: usize::MAX,
            fingerprint: inputs_fingerprint(build),
        }
    }
}

/// Makes the predictors of an engine's workers and says where they run: ONNX Runtime sessions
/// ([`ort_predictors`]) in every command, wrappers of them in tests (a gate, injected faults).
pub type PredictorFactory = Arc<
    dyn Fn(&ModelSpec, &EngineOptions) -> crate::Result<(Vec<Box<dyn Predictor>>, ActiveDevice)>
        + Send
        + Sync,
>;

/// Model workers of a CUDA engine when none are asked for. A worker reads and encodes its batch
/// on its own CPU thread, then waits for the GPU, so one worker leaves the GPU idle while it
/// encodes; on the CPU one session with every core is fastest. `benches/cuda_e2e.py` on an H200
/// at batch 512: 4 workers against 1 gave the daemon's cold dense view 1.2 ×, `score` the same.
pub const CUDA_WORKERS: usize = 4;

/// One ONNX Runtime session per worker (checksum and graph checks included); as many workers as
/// asked, else 1 on the CPU and [`CUDA_WORKERS`] when the first session runs on CUDA.
///
/// # Errors
///
/// Model or runtime errors from [`OrtPredictor::new`].
pub fn ort_predictors(
    spec: &ModelSpec,
    options: &EngineOptions,
) -> crate::Result<(Vec<Box<dyn Predictor>>, ActiveDevice)> {
    let session = || {
        OrtPredictor::new(
            spec,
            SessionOptions {
                device: options.device,
                intra_threads: options.intra_threads,
            },
        )
    };
    let first = session()?;
    let device = first.device();
    let count = options.workers.unwrap_or(match device {
        ActiveDevice::Cpu => 1,
        ActiveDevice::Cuda => CUDA_WORKERS,
    });
    let mut predictors: Vec<Box<dyn Predictor>> = vec![Box::new(first)];
    for _ in 1..count.max(1) {
        predictors.push(Box::new(session()?));
    }
    Ok((predictors, device))
}

/// A result slot for a view: a window index on the grid and what is known about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewWindow {
    /// Global window index on the contig (core `[i·stride, (i+1)·stride)`).
    pub index: u64,
    /// The slot.
    pub slot: Slot,
}

/// What a view request returns.
#[derive(Debug, Clone, Default)]
pub struct ViewResult {
    /// Scored windows in order, cores clipped to the contig.
    pub windows: Vec<WindowScore>,
    /// Cores of skipped (all-N) windows, merged.
    pub skipped: Vec<(u64, u64)>,
    /// Cores still being computed (or not attempted before the deadline), merged.
    pub pending: Vec<(u64, u64)>,
    /// Windows the mode asked for.
    pub needed: usize,
    /// Of those, found in the cache.
    pub cached: usize,
}

/// On-demand scoring of one build with one model at one stride.
pub struct Engine {
    inner: Arc<Inner>,
    queue: Option<Queue>,
    workers: Vec<std::thread::JoinHandle<()>>,
    device: ActiveDevice,
    max_batch: usize,
}

struct Inner {
    shared: Arc<Shared>,
    grid: Grid,
    variant: Arc<str>,
    cache: Arc<Cache>,
    inflight: Mutex<HashMap<TileKey, Vec<Weak<TileJob>>>>,
    jobs_created: AtomicU64,
    max_queued: usize,
}

impl Engine {
    /// Starts the model workers. Loads one ONNX Runtime session per worker (checksum and graph
    /// checks included).
    ///
    /// # Errors
    ///
    /// Model or runtime errors from [`OrtPredictor::new`], or input files that cannot be opened.
    pub fn start(
        build: Arc<Build>,
        spec: Arc<ModelSpec>,
        cache: Arc<Cache>,
        options: &EngineOptions,
    ) -> crate::Result<Self> {
        let (predictors, device) = ort_predictors(&spec, options)?;
        Self::with_predictors(build, spec, cache, options, predictors, device)
    }

    /// Starts one model worker per predictor (the daemon uses ONNX Runtime sessions, see
    /// [`Engine::start`]; a test may wrap them to inject faults). `device` is where they run.
    ///
    /// # Errors
    ///
    /// Input files that cannot be opened.
    ///
    /// # Panics
    ///
    /// When `predictors` is empty.
    pub fn with_predictors(
        build: Arc<Build>,
        spec: Arc<ModelSpec>,
        cache: Arc<Cache>,
        options: &EngineOptions,
        predictors: Vec<Box<dyn Predictor>>,
        device: ActiveDevice,
    ) -> crate::Result<Self> {
        assert!(
            !predictors.is_empty(),
            "an engine needs a predictor; this is a bug"
        );
        build.reader()?; // fail now, not in a worker, if the files cannot be opened
        let grid = Grid::new(spec.window.length as u64, options.stride)?;
        let max_batch = batcher::batch_size(options.max_batch, device)?;
        let variant: Arc<str> = variant_id(
            build.name(),
            &spec.id(),
            &spec.sha256,
            options.stride,
            &options.fingerprint,
        )
        .into();
        let shared = Arc::new(Shared::new(build, spec));
        let (queue, receiving) = Queue::new();
        let warm_up = device == ActiveDevice::Cuda;
        let threads = workers::spawn(&shared, &receiving, predictors, max_batch, warm_up);
        let inner = Arc::new(Inner {
            shared,
            grid,
            variant,
            cache,
            inflight: Mutex::new(HashMap::new()),
            jobs_created: AtomicU64::new(0),
            max_queued: options.max_queued_windows,
        });
        Ok(Self {
            inner,
            queue: Some(queue),
            workers: threads,
            device,
            max_batch,
        })
    }

    /// Where the model runs.
    pub fn device(&self) -> ActiveDevice {
        self.device
    }

    /// Model worker threads (one predictor each).
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Maximum windows per model call.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Grid stride.
    pub fn stride(&self) -> u64 {
        self.inner.grid.stride()
    }

    /// The window grid.
    pub fn grid(&self) -> Grid {
        self.inner.grid
    }

    /// The model.
    pub fn spec(&self) -> &ModelSpec {
        &self.inner.shared.spec
    }

    /// The build.
    pub fn build(&self) -> &Arc<Build> {
        &self.inner.shared.build
    }

    /// The cache this engine reads and fills.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.inner.cache
    }

    /// The cache namespace of this engine.
    pub fn variant(&self) -> &str {
        &self.inner.variant
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.inner.shared.stats
    }

    /// Tiles with an entry in the in-flight map (bounded by the work in flight, plus at most
    /// 1,024 jobs created since the last purge).
    pub fn inflight_tiles(&self) -> usize {
        self.inner
            .inflight
            .lock()
            .expect("inflight lock poisoned; this is a bug")
            .len()
    }

    /// Windows waiting for a worker.
    pub fn queued(&self) -> usize {
        self.queue().len()
    }

    fn queue(&self) -> &Queue {
        self.queue
            .as_ref()
            .expect("engine used after shutdown; this is a bug")
    }

    /// Global window indices whose cores overlap `region` (FASTA names, bounds checked).
    pub fn window_range(&self, region: &Region) -> (u64, u64) {
        self.inner.grid.index_range(region)
    }

    /// Queues one window, on the grid or not; its result goes to `sink` under `tag`. Nothing
    /// is cached here (see [`Cache`] for the content-addressed window store), and nothing is
    /// refused: the caller bounds what it has in flight.
    pub fn submit(&self, sink: Weak<dyn Sink>, tag: u64, input: Input) {
        self.queue().push([Work { sink, tag, input }]);
    }

    /// Scores the windows of `region` that `needed` selects (by global window index), waiting
    /// until `deadline` at most; returns every known window of the view (cached ones included,
    /// whether needed or not) and what is still pending.
    ///
    /// # Errors
    ///
    /// [`Error::Overloaded`] when the queue cannot take the missing windows, [`Error::Failed`]
    /// when inputs could not be read or inference failed.
    pub async fn view(
        &self,
        region: &Region,
        needed: impl Fn(u64) -> bool,
        deadline: Instant,
    ) -> Result<ViewResult, Error> {
        let inner = &self.inner;
        let stride = inner.grid.stride();
        let contig = inner
            .shared
            .build
            .contigs()
            .resolve(region.name())
            .expect("region checked by the caller; this is a bug")
            .clone();
        let (first, end) = self.window_range(region);
        let contig_windows = contig.length.div_ceil(stride);
        let tiles: Vec<u64> =
            ((first / TILE_WINDOWS as u64)..=((end - 1) / TILE_WINDOWS as u64)).collect();
        let keys: Vec<TileKey> = tiles
            .iter()
            .map(|&t| TileKey {
                variant: inner.variant.clone(),
                contig: contig.name.as_str().into(),
                tile: t,
            })
            .collect();

        // 1. cache: memory, then disk for the rest (blocking, off the executor)
        let mut found: Vec<Option<Arc<Tile>>> =
            keys.iter().map(|k| inner.cache.get_memory(k)).collect();
        let absent: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if !absent.is_empty() && inner.cache.has_lower_tiers() {
            let cache = inner.cache.clone();
            let wanted: Vec<TileKey> = absent.iter().map(|&i| keys[i].clone()).collect();
            let loaded = tokio::task::spawn_blocking(move || {
                wanted.iter().map(|k| cache.get(k)).collect::<Vec<_>>()
            })
            .await
            .expect("cache read task panicked; this is a bug");
            for (i, tile) in absent.into_iter().zip(loaded) {
                found[i] = tile;
            }
        }

        // 2. which needed slots are missing, per tile; slots past the contig end are skipped
        let mut needed_count = 0;
        let mut cached_count = 0;
        let mut jobs: Vec<Arc<TileJob>> = Vec::new();
        let mut new_windows: Vec<Work> = Vec::new();
        for (key, tile) in keys.iter().zip(&found) {
            let mut missing = Vec::new();
            for slot in 0..TILE_WINDOWS {
                let index = key.tile * TILE_WINDOWS as u64 + slot as u64;
                if index < first || index >= end || index >= contig_windows || !needed(index) {
                    continue;
                }
                needed_count += 1;
                match tile.as_ref().map_or(Slot::Missing, |t| t.slots[slot]) {
                    Slot::Missing => missing.push(slot),
                    _ => cached_count += 1,
                }
            }
            if missing.is_empty() {
                continue;
            }
            let mut inflight = inner
                .inflight
                .lock()
                .expect("inflight lock poisoned; this is a bug");
            // Checked again under the lock: a job merges its results into the cache before it
            // can be dropped, so a slot finished since the lookup above is found here.
            if let Some(now) = inner.cache.peek_memory(key) {
                missing.retain(|&s| now.slots[s] == Slot::Missing);
                if missing.is_empty() {
                    continue;
                }
            }
            let entry = inflight.entry(key.clone()).or_default();
            entry.retain(|w| w.strong_count() > 0);
            let mut uncovered = missing.clone();
            for live in entry.iter().filter_map(Weak::upgrade) {
                // A job that already failed is never joined: its error may be stale (a file
                // that was unreadable a moment ago), and its slots are recomputed instead.
                let failed = live
                    .state
                    .lock()
                    .expect("tile job lock poisoned; this is a bug")
                    .error
                    .is_some();
                if !failed && live.slots.iter().any(|s| missing.contains(s)) {
                    uncovered.retain(|s| !live.slots.contains(s));
                    jobs.push(live);
                }
            }
            if !uncovered.is_empty() {
                let (done, _) = tokio::sync::watch::channel(false);
                let job = Arc::new(TileJob {
                    key: key.clone(),
                    slots: uncovered.clone(),
                    state: Mutex::new(JobState {
                        remaining: uncovered.len(),
                        ..Default::default()
                    }),
                    done,
                    cache: inner.cache.clone(),
                });
                entry.push(Arc::downgrade(&job));
                // Entries of finished jobs are purged now and then, so the map stays as small as
                // the work in flight however long the daemon runs.
                if inner.jobs_created.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
                    inflight.retain(|_, jobs| {
                        jobs.retain(|w| w.strong_count() > 0);
                        !jobs.is_empty()
                    });
                }
                let sink: Arc<dyn Sink> = job.clone();
                for &slot in &uncovered {
                    let index = key.tile * TILE_WINDOWS as u64 + slot as u64;
                    new_windows.push(Work {
                        sink: Arc::downgrade(&sink),
                        tag: slot as u64,
                        input: Input::Genome {
                            contig: contig.clone(),
                            start0: inner.grid.window_start0(index),
                        },
                    });
                }
                jobs.push(job);
            }
        }

        // 3. admission, then queue the new windows
        if !new_windows.is_empty() {
            let queued = self.queued();
            if queued + new_windows.len() > inner.max_queued {
                return Err(Error::Overloaded {
                    queued,
                    limit: inner.max_queued,
                });
            }
            self.queue().push(new_windows);
        }

        // 4. wait for the jobs, up to the deadline
        let mut error = None;
        for job in &jobs {
            let mut done = job.done.subscribe();
            let waited = tokio::time::timeout_at(deadline.into(), done.wait_for(|d| *d)).await;
            if waited.is_err() {
                break;
            }
            if let Some(e) = &job
                .state
                .lock()
                .expect("tile job lock poisoned; this is a bug")
                .error
            {
                error = Some(e.clone());
            }
        }
        if let Some(e) = error {
            return Err(Error::Failed(e));
        }

        // 5. assemble from the cache (now holding everything computed)
        let mut result = ViewResult {
            windows: Vec::new(),
            skipped: Vec::new(),
            pending: Vec::new(),
            needed: needed_count,
            cached: cached_count,
        };
        for key in &keys {
            let tile = inner
                .cache
                .get_memory(key)
                .or_else(|| found[keys.iter().position(|k| k == key).expect("own key")].clone());
            for slot in 0..TILE_WINDOWS {
                let index = key.tile * TILE_WINDOWS as u64 + slot as u64;
                if index < first || index >= end || index >= contig_windows {
                    continue;
                }
                let core_start0 = (index * stride).max(region.start0());
                let core_end0 = ((index + 1) * stride).min(region.end0()).min(contig.length);
                match tile.as_ref().map_or(Slot::Missing, |t| t.slots[slot]) {
                    Slot::Scored(s) => result.windows.push(WindowScore {
                        core_start0,
                        core_end0,
                        logit: s.logit,
                        probability: s.probability,
                        modality_share: s.share,
                    }),
                    Slot::Skipped => push_merged(&mut result.skipped, core_start0, core_end0),
                    Slot::Missing if needed(index) => {
                        push_merged(&mut result.pending, core_start0, core_end0)
                    }
                    Slot::Missing => {}
                }
            }
        }
        Ok(result)
    }
}

/// Appends `[start, end)` to sorted ranges, merging it with the last when they touch.
pub fn push_merged(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    match ranges.last_mut() {
        Some(last) if last.1 == start => last.1 = end,
        _ => ranges.push((start, end)),
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Closing the queue ends each worker once the queue is drained.
        self.queue.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Waits helper for tests and the server: `deadline` from now.
pub fn deadline_in(wait: Duration) -> Instant {
    Instant::now() + wait
}
