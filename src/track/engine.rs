//! On-demand scoring for the daemon: views → tiles → cache → deduplicated tile jobs →
//! a scheduler that batches windows from every request for the model worker threads.
//!
//! - A tile job computes some slots of one tile. Requesters hold it by `Arc`; the queued window
//!   jobs hold it by `Weak`. When every requester has gone (client disconnected, or the response
//!   was sent), queued windows fail to upgrade and are skipped, so an abandoned request stops
//!   costing compute. Windows already computed are never lost: they merge into the cache as they
//!   finish, and what a cancelled job computed is persisted when it drops.
//! - Identical tiles asked for at the same time join one job.
//! - Worker threads (one ONNX Runtime session and one set of file readers each) take whatever
//!   windows are queued, up to the batch size: batches fill from all concurrent requests.
//! - Nothing here blocks an async executor thread: cache disk reads run in `spawn_blocking`,
//!   input reading and inference on the worker threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::genome::build::Span;
use crate::genome::{Build, Contig, Region};
use crate::model::encode::Normaliser;
use crate::model::onnx::{ActiveDevice, OrtPredictor, SessionOptions};
use crate::model::{Batch, Device, ModelSpec, Predictor};

use super::cache::{variant_id, Cache, Score, Slot, Tile, TileKey, TILE_WINDOWS};
use super::score::{encode_window, normalisers, WindowScore};

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
    #[error("{0}")]
    Failed(Arc<str>),
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Windows run through the model.
    pub windows_scored: AtomicU64,
    /// Windows skipped as all-N.
    pub windows_skipped: AtomicU64,
    /// Queued windows dropped because their requesters left.
    pub windows_cancelled: AtomicU64,
    /// Model calls.
    pub batches: AtomicU64,
    /// Sum of batch sizes (fill = this / (batches × max batch)).
    pub batch_rows: AtomicU64,
    /// Seconds spent in inference, in microseconds.
    pub inference_micros: AtomicU64,
}

/// How to run an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Grid stride (core length).
    pub stride: u64,
    /// Requested device.
    pub device: Device,
    /// Model worker threads (one ONNX Runtime session each).
    pub workers: usize,
    /// ONNX Runtime intra-op threads per worker.
    pub intra_threads: usize,
    /// Maximum windows per model call; `None`: 4 on CPU, 128 on CUDA.
    pub max_batch: Option<usize>,
    /// Maximum windows waiting in the queue before requests get `Overloaded`.
    pub max_queued_windows: usize,
    /// Fingerprint of the inputs (see [`inputs_fingerprint`]).
    pub fingerprint: String,
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
#[derive(Debug, Clone)]
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
    queue: Option<mpsc::UnboundedSender<WindowJob>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    device: ActiveDevice,
    max_batch: usize,
}

struct Inner {
    build: Arc<Build>,
    spec: Arc<ModelSpec>,
    stride: u64,
    variant: Arc<str>,
    cache: Arc<Cache>,
    inflight: Mutex<HashMap<TileKey, Vec<Weak<TileJob>>>>,
    jobs_created: AtomicU64,
    queued: AtomicUsize,
    max_queued: usize,
    stats: EngineStats,
    failures_logged: Mutex<std::collections::HashSet<String>>,
}

struct WindowJob {
    job: Weak<TileJob>,
    slot: usize,
    start0: i64,
}

/// The computation of some slots of one tile, shared by every requester of that tile.
struct TileJob {
    key: TileKey,
    contig: Contig,
    slots: Vec<usize>,
    state: Mutex<JobState>,
    done: tokio::sync::watch::Sender<bool>,
    cache: Arc<Cache>,
}

#[derive(Default)]
struct JobState {
    remaining: usize,
    results: Vec<(usize, Slot)>,
    error: Option<Arc<str>>,
    merged: bool,
}

impl TileJob {
    fn record(&self, slot: usize, value: Slot) {
        let mut state = self
            .state
            .lock()
            .expect("tile job lock poisoned; this is a bug");
        state.results.push((slot, value));
        state.remaining -= 1;
        if state.remaining == 0 {
            self.cache.merge(&self.key, &state.results, true);
            state.merged = true;
            drop(state);
            self.done.send_replace(true);
        }
    }

    fn fail(&self, message: &Arc<str>) {
        let mut state = self
            .state
            .lock()
            .expect("tile job lock poisoned; this is a bug");
        if state.error.is_none() {
            state.error = Some(message.clone());
        }
        drop(state);
        self.done.send_replace(true);
    }
}

impl Drop for TileJob {
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .expect("tile job lock poisoned; this is a bug");
        if !state.merged && !state.results.is_empty() {
            // Cancelled part-way: keep what was computed.
            self.cache.merge(&self.key, &state.results, true);
        }
    }
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
        let workers = options.workers.max(1);
        let mut predictors = Vec::with_capacity(workers);
        for _ in 0..workers {
            predictors.push(OrtPredictor::new(
                &spec,
                SessionOptions {
                    device: options.device,
                    intra_threads: options.intra_threads,
                },
            )?);
        }
        let device = predictors[0].device();
        let predictors = predictors
            .into_iter()
            .map(|p| Box::new(p) as Box<dyn Predictor>)
            .collect();
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
        let max_batch = options.max_batch.unwrap_or(match device {
            ActiveDevice::Cpu => super::score::DEFAULT_BATCH_SIZE_CPU,
            ActiveDevice::Cuda => super::score::DEFAULT_BATCH_SIZE_CUDA,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let variant: Arc<str> = variant_id(
            build.name(),
            &spec.id(),
            &spec.sha256,
            options.stride,
            &options.fingerprint,
        )
        .into();
        let inner = Arc::new(Inner {
            build,
            spec,
            stride: options.stride,
            variant,
            cache,
            inflight: Mutex::new(HashMap::new()),
            jobs_created: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            max_queued: options.max_queued_windows,
            stats: EngineStats::default(),
            failures_logged: Mutex::new(Default::default()),
        });
        let rx = Arc::new(Mutex::new(rx));
        let threads = predictors
            .into_iter()
            .enumerate()
            .map(|(i, predictor)| {
                let inner = inner.clone();
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("model-worker-{i}"))
                    .spawn(move || worker_loop(inner, rx, predictor, max_batch))
                    .expect("cannot spawn a model worker thread; this is a bug")
            })
            .collect();
        Ok(Self {
            inner,
            queue: Some(tx),
            workers: threads,
            device,
            max_batch,
        })
    }

    /// Where the model runs.
    pub fn device(&self) -> ActiveDevice {
        self.device
    }

    /// Maximum windows per model call.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Grid stride.
    pub fn stride(&self) -> u64 {
        self.inner.stride
    }

    /// The model.
    pub fn spec(&self) -> &ModelSpec {
        &self.inner.spec
    }

    /// The cache namespace of this engine.
    pub fn variant(&self) -> &str {
        &self.inner.variant
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.inner.stats
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
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Global window indices whose cores overlap `region` (FASTA names, bounds checked).
    pub fn window_range(&self, region: &Region) -> (u64, u64) {
        (
            region.start0() / self.inner.stride,
            region.end0().div_ceil(self.inner.stride),
        )
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
        let contig = inner
            .build
            .contigs()
            .resolve(region.name())
            .expect("region checked by the caller; this is a bug")
            .clone();
        let (first, end) = self.window_range(region);
        let contig_windows = contig.length.div_ceil(inner.stride);
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
        if !absent.is_empty() && inner.cache.disk().is_some() {
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
        let mut new_windows: Vec<(Weak<TileJob>, usize, i64)> = Vec::new();
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
                    contig: contig.clone(),
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
                for &slot in &uncovered {
                    let index = key.tile * TILE_WINDOWS as u64 + slot as u64;
                    let start0 = (index * inner.stride) as i64
                        - ((inner.spec.window.length as u64 - inner.stride) / 2) as i64;
                    new_windows.push((Arc::downgrade(&job), slot, start0));
                }
                jobs.push(job);
            }
        }

        // 3. admission, then queue the new windows
        if !new_windows.is_empty() {
            let queued = inner.queued.load(Ordering::Relaxed);
            if queued + new_windows.len() > inner.max_queued {
                return Err(Error::Overloaded {
                    queued,
                    limit: inner.max_queued,
                });
            }
            inner.queued.fetch_add(new_windows.len(), Ordering::Relaxed);
            let queue = self
                .queue
                .as_ref()
                .expect("engine used after shutdown; this is a bug");
            for (job, slot, start0) in new_windows {
                queue
                    .send(WindowJob { job, slot, start0 })
                    .expect("model workers stopped; this is a bug");
            }
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
                let core_start0 = (index * inner.stride).max(region.start0());
                let core_end0 = ((index + 1) * inner.stride)
                    .min(region.end0())
                    .min(contig.length);
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

    fn log_failure_once(inner: &Inner, message: &str) {
        let mut logged = inner
            .failures_logged
            .lock()
            .expect("lock poisoned; this is a bug");
        if logged.insert(message.to_string()) {
            tracing::error!(model = %inner.spec.id(), build = inner.build.name(), "{message}");
        }
    }
}

fn push_merged(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
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

fn worker_loop(
    inner: Arc<Inner>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<WindowJob>>>,
    mut predictor: Box<dyn Predictor>,
    max_batch: usize,
) {
    let norms: [Option<Normaliser>; 2] = normalisers(&inner.build, &inner.spec);
    let mask = inner.build.modality_mask();
    let mut batch = Batch::for_spec(&inner.spec, max_batch);
    let mut reader = None;
    let mut span = Span::default();
    loop {
        // take what is queued, up to the batch size
        let mut jobs: Vec<(Arc<TileJob>, usize, i64)> = Vec::with_capacity(max_batch);
        {
            let mut rx = rx.lock().expect("queue lock poisoned; this is a bug");
            let Some(first) = rx.blocking_recv() else {
                return;
            };
            let take = |w: WindowJob, jobs: &mut Vec<(Arc<TileJob>, usize, i64)>| {
                inner.queued.fetch_sub(1, Ordering::Relaxed);
                match w.job.upgrade() {
                    Some(job) => jobs.push((job, w.slot, w.start0)),
                    None => {
                        inner
                            .stats
                            .windows_cancelled
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            };
            take(first, &mut jobs);
            while jobs.len() < max_batch {
                match rx.try_recv() {
                    Ok(w) => take(w, &mut jobs),
                    Err(_) => break,
                }
            }
        }
        if jobs.is_empty() {
            continue;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            process(
                &inner,
                predictor.as_mut(),
                &mut reader,
                &mut span,
                &mut batch,
                &jobs,
                &norms,
                mask,
            )
        }));
        let failure: Option<Arc<str>> = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(message)) => Some(message.into()),
            Err(_) => {
                reader = None; // rebuild readers after a panic
                Some(
                    "internal error while scoring (a model worker panicked); see the daemon log"
                        .into(),
                )
            }
        };
        if let Some(message) = failure {
            Engine::log_failure_once(&inner, &message);
            for (job, _, _) in &jobs {
                job.fail(&message);
            }
            reader = None; // a file may have changed: reopen next time
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn process(
    inner: &Inner,
    predictor: &mut dyn Predictor,
    reader: &mut Option<crate::genome::build::InputReader>,
    span: &mut Span,
    batch: &mut Batch,
    jobs: &[(Arc<TileJob>, usize, i64)],
    norms: &[Option<Normaliser>; 2],
    mask: [f32; 3],
) -> Result<(), String> {
    if reader.is_none() {
        *reader = Some(inner.build.reader().map_err(|e| format!("{e:#}"))?);
    }
    let reader = reader.as_mut().expect("set above");
    let window = inner.spec.window.length as i64;
    batch.clear();
    let mut skipped = Vec::new();
    // consecutive windows of one tile job share one read
    let mut i = 0;
    while i < jobs.len() {
        let mut j = i + 1;
        while j < jobs.len()
            && Arc::ptr_eq(&jobs[j].0, &jobs[i].0)
            && jobs[j].2 == jobs[j - 1].2 + inner.stride as i64
        {
            j += 1;
        }
        let job = &jobs[i].0;
        reader
            .read_span(&job.contig, jobs[i].2, jobs[j - 1].2 + window, span)
            .map_err(|e| format!("{e:#}"))?;
        for (k, (_, _, start0)) in jobs[i..j].iter().enumerate() {
            let row = batch.push_row((i + k) as u64);
            if encode_window(span, *start0, inner.spec.window.bin_size, norms, mask, row) == 0 {
                batch.pop_row();
                skipped.push(i + k);
            }
        }
        i = j;
    }
    let started = Instant::now();
    let predictions = if batch.is_empty() {
        Default::default()
    } else {
        predictor.predict(batch).map_err(|e| e.to_string())?
    };
    if !batch.is_empty() {
        inner.stats.batches.fetch_add(1, Ordering::Relaxed);
        inner
            .stats
            .batch_rows
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        inner
            .stats
            .inference_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        inner
            .stats
            .windows_scored
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    inner
        .stats
        .windows_skipped
        .fetch_add(skipped.len() as u64, Ordering::Relaxed);
    for &k in &skipped {
        jobs[k].0.record(jobs[k].1, Slot::Skipped);
    }
    for (row, &key) in batch.keys().iter().enumerate() {
        let (job, slot, _) = &jobs[key as usize];
        let score = Score {
            logit: predictions.logit[row],
            probability: predictions.probability[row],
            share: predictions.modality_share[row],
        };
        job.record(*slot, Slot::Scored(score));
    }
    Ok(())
}

/// A fingerprint of everything outside the model that a score depends on: FASTA and signal
/// paths, sizes and modification times, signal scales, stride.
pub fn inputs_fingerprint(build: &Build) -> String {
    use sha2::Digest;
    let add = add_file_identity;
    let mut h = sha2::Sha256::new();
    add(&mut h, &build.config().fasta);
    for s in build.signals() {
        add(&mut h, s.track.path());
        h.update(s.modality.as_str().as_bytes());
        h.update(s.scale.to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds a file's path, size and modification time to a digest (what the cache namespaces
/// use to notice that an input changed).
pub fn add_file_identity(h: &mut sha2::Sha256, path: &std::path::Path) {
    use sha2::Digest;
    h.update(path.to_string_lossy().as_bytes());
    if let Ok(meta) = std::fs::metadata(path) {
        h.update(meta.len().to_le_bytes());
        if let Ok(modified) = meta.modified() {
            let nanos = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            h.update(nanos.to_le_bytes());
        }
    }
}

/// The cache namespace an engine for `build`, `spec` and `stride` reads and writes.
pub fn variant_for(build: &Build, spec: &ModelSpec, stride: u64) -> String {
    variant_id(
        build.name(),
        &spec.id(),
        &spec.sha256,
        stride,
        &inputs_fingerprint(build),
    )
}

/// Waits helper for tests and the server: `deadline` from now.
pub fn deadline_in(wait: Duration) -> Instant {
    Instant::now() + wait
}
