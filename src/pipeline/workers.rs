//! Model worker threads: one [`Predictor`] (one ONNX Runtime session) and one set of input
//! readers each. A worker takes a batch of [`Work`](super::batcher::Work) from the queue, reads
//! and encodes the genome windows (consecutive windows of a contig share one read), copies the
//! windows its callers encoded, runs the model and hands each result to its requester.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::{chain, Cause, SharedCause};
use crate::genome::build::{InputReader, Span};
use crate::genome::Build;
use crate::model::encode::Normaliser;
use crate::model::{Batch, ModelSpec, Predictor};

use super::batcher::{pad_lone_row, Input, Receiving, Taken, PADDING};
use super::cache::{Score, Slot};
use super::inputs::{encode_window, normalisers};

/// Counters of the model workers, for metrics.
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
    /// Sum of batch sizes, padding rows excluded (fill = this / (batches × max batch)).
    pub batch_rows: AtomicU64,
    /// Seconds spent in inference, in microseconds.
    pub inference_micros: AtomicU64,
}

/// What every worker of an engine shares.
pub(crate) struct Shared {
    pub build: Arc<Build>,
    pub spec: Arc<ModelSpec>,
    pub stats: EngineStats,
    failures_logged: Mutex<HashSet<String>>,
}

impl Shared {
    pub fn new(build: Arc<Build>, spec: Arc<ModelSpec>) -> Self {
        Self {
            build,
            spec,
            stats: EngineStats::default(),
            failures_logged: Mutex::new(HashSet::new()),
        }
    }

    fn log_failure_once(&self, message: &str) {
        let mut logged = self
            .failures_logged
            .lock()
            .expect("lock poisoned; this is a bug");
        if logged.insert(message.to_string()) {
            tracing::error!(model = %self.spec.id(), build = self.build.name(), "{message}");
        }
    }
}

/// Starts one worker thread per predictor, taking up to `max_batch` windows per model call.
/// With `warm_up` (CUDA), each worker first runs one full batch of empty windows, so that the
/// first request does not wait while CUDA loads its kernels and sets up the session's buffers.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    queue: &Receiving,
    predictors: Vec<Box<dyn Predictor>>,
    max_batch: usize,
    warm_up: bool,
) -> Vec<std::thread::JoinHandle<()>> {
    predictors
        .into_iter()
        .enumerate()
        .map(|(i, predictor)| {
            let (shared, queue) = (shared.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("model-worker-{i}"))
                .spawn(move || run(&shared, &queue, predictor, max_batch, warm_up))
                .expect("cannot spawn a model worker thread; this is a bug")
        })
        .collect()
}

struct Worker {
    predictor: Box<dyn Predictor>,
    reader: Option<InputReader>,
    span: Span,
    batch: Batch,
    norms: [Option<Normaliser>; 2],
    mask: [f32; 3],
}

fn run(
    shared: &Shared,
    queue: &Receiving,
    predictor: Box<dyn Predictor>,
    max_batch: usize,
    warm_up: bool,
) {
    let mut worker = Worker {
        predictor,
        reader: None,
        span: Span::default(),
        // room for the padding row of a one-window batch
        batch: Batch::for_spec(&shared.spec, max_batch.max(2)),
        norms: normalisers(&shared.build, &shared.spec),
        mask: shared.build.modality_mask(),
    };
    if warm_up {
        let started = Instant::now();
        for key in 0..max_batch.max(2) as u64 {
            worker.batch.push_row(key); // all-zero rows: N bases, no signal
        }
        match worker.predictor.predict(&worker.batch) {
            Ok(_) => tracing::debug!(
                seconds = started.elapsed().as_secs_f64(),
                "model worker warmed up"
            ),
            Err(e) => tracing::warn!("model worker warm-up failed: {}", chain(&e)),
        }
        worker.batch.clear();
    }
    while let Some(taken) = queue.take(max_batch, &shared.stats.windows_cancelled) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            worker.process(shared, &taken)
        }));
        let failure: SharedCause = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(cause)) => cause.into(),
            Err(_) => crate::error::shared(
                "internal error while scoring (a model worker panicked); see the log",
            ),
        };
        shared.log_failure_once(&chain(&*failure));
        for t in &taken {
            t.sink.fail(t.tag, &failure);
        }
        worker.reader = None; // a file may have changed, or a panic left it broken: reopen
    }
}

impl Worker {
    fn process(&mut self, shared: &Shared, taken: &[Taken]) -> Result<(), Cause> {
        let spec = &shared.spec;
        let window = spec.window.length as i64;
        self.batch.clear();
        let mut skipped = Vec::new();
        let mut i = 0;
        while i < taken.len() {
            match &taken[i].input {
                Input::Encoded(w) => {
                    let row = self.batch.push_row(i as u64);
                    if w.encode_into(self.mask, row) == 0 {
                        self.batch.pop_row();
                        skipped.push(i);
                    }
                    i += 1;
                }
                Input::Genome { contig, start0 } => {
                    // consecutive windows of the contig (each within a window of the last)
                    // share one read
                    let (mut last, mut j) = (*start0, i + 1);
                    while let Some((c, s)) = taken.get(j).and_then(|t| t.input.genome()) {
                        if c.name != contig.name || s <= last || s - last > window {
                            break;
                        }
                        (last, j) = (s, j + 1);
                    }
                    if self.reader.is_none() {
                        self.reader = Some(shared.build.reader()?);
                    }
                    let reader = self.reader.as_mut().expect("set above");
                    reader.read_span(contig, *start0, last + window, &mut self.span)?;
                    for (k, t) in taken[i..j].iter().enumerate() {
                        let (_, start0) = t.input.genome().expect("the run is genome windows");
                        let row = self.batch.push_row((i + k) as u64);
                        let known = encode_window(
                            &self.span,
                            start0,
                            spec.window.bin_size,
                            &self.norms,
                            self.mask,
                            row,
                        );
                        if known == 0 {
                            self.batch.pop_row();
                            skipped.push(i + k);
                        }
                    }
                    i = j;
                }
            }
        }
        let rows = self.batch.len();
        let stats = &shared.stats;
        if rows > 0 {
            pad_lone_row(&mut self.batch);
            let started = Instant::now();
            let predictions = self.predictor.predict(&self.batch)?;
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.batch_rows.fetch_add(rows as u64, Ordering::Relaxed);
            stats
                .windows_scored
                .fetch_add(rows as u64, Ordering::Relaxed);
            stats
                .inference_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            for (row, &key) in self.batch.keys().iter().enumerate() {
                if key == PADDING {
                    continue;
                }
                let t = &taken[key as usize];
                let score = Score {
                    logit: predictions.logit[row],
                    probability: predictions.probability[row],
                    share: predictions
                        .modality_share
                        .get(row)
                        .copied()
                        .unwrap_or_default(),
                };
                t.sink.deliver(t.tag, Slot::Scored(score));
            }
        }
        stats
            .windows_skipped
            .fetch_add(skipped.len() as u64, Ordering::Relaxed);
        for k in skipped {
            taken[k].sink.deliver(taken[k].tag, Slot::Skipped);
        }
        Ok(())
    }
}
