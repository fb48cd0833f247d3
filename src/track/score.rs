//! Scoring a region: windows → model inputs → ONNX Runtime → per-window scores, and calling
//! enhancer elements from them.
//!
//! One thread reads and encodes windows in chunks of `batch_size` (one FASTA fetch and one
//! bigWig query per track per chunk) while the model worker runs the previous batch; a fixed
//! set of batch buffers circulates between them, so memory does not grow with the region.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, RecvTimeoutError};

use crate::genome::build::Span;
use crate::genome::{Build, Region};
use crate::model::encode::{apply_modality_mask, encode_signal_into, one_hot_into, Normaliser};
use crate::model::onnx::{ActiveDevice, OrtPredictor, SessionOptions};
use crate::model::worker::WorkerPool;
use crate::model::{Batch, Device, Modality, ModelSpec, RowMut};

use super::{Error, Tiling, Window};

/// Default distance between window centres, in bases.
pub const DEFAULT_STRIDE: u64 = 200;
/// Default windows per model call on the CPU. Measured (benches/README.md): the enhancer
/// models' attention over 600 tokens runs fastest in small batches on CPU caches, and batch 4
/// scores a region about 1.4x faster than batch 64.
pub const DEFAULT_BATCH_SIZE_CPU: usize = 4;
/// Default windows per model call with CUDA, where large batches keep the GPU busy.
pub const DEFAULT_BATCH_SIZE_CUDA: usize = 128;

/// How to score.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Distance between window centres (the core length), in bases.
    pub stride: u64,
    /// Windows per model call; `None` picks the device's default.
    pub batch_size: Option<usize>,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Requested device.
    pub device: Device,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        Self {
            stride: DEFAULT_STRIDE,
            batch_size: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            device: Device::Auto,
            progress: false,
        }
    }
}

/// The score of one window, reported for its core.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowScore {
    /// 0-based core start.
    pub core_start0: u64,
    /// 0-based exclusive core end.
    pub core_end0: u64,
    /// Model logit.
    pub logit: f32,
    /// Enhancer probability.
    pub probability: f32,
    /// Attention share per modality (sequence, h3k27ac, accessibility).
    pub modality_share: [f32; 3],
}

/// The result of scoring a region.
#[derive(Debug, Clone)]
pub struct ScoreResult {
    /// The region (FASTA contig name).
    pub region: Region,
    /// Scored windows in order (windows that were skipped are absent).
    pub windows: Vec<WindowScore>,
    /// Number of windows the region was cut into.
    pub window_count: usize,
    /// Cores of windows skipped because they hold no A/C/G/T base, merged into regions.
    pub skipped: Vec<Region>,
    /// Where the model ran.
    pub device: ActiveDevice,
    /// Modalities the build has no track for (fed to the model masked).
    pub masked: Vec<Modality>,
    /// Wall time.
    pub elapsed: Duration,
}

impl ScoreResult {
    /// Number of windows skipped as all-N.
    pub fn skipped_windows(&self) -> usize {
        self.window_count - self.windows.len()
    }
}

/// Encodes the window starting at `window_start0` of `span` into a batch row, with `mask`
/// applied (masked modalities zeroed). Returns the number of A/C/G/T bases (0: an all-N window
/// that must not be scored).
pub fn encode_window(
    span: &Span,
    window_start0: i64,
    bin_size: usize,
    normalisers: &[Option<Normaliser>; 2],
    mask: [f32; 3],
    row: RowMut<'_>,
) -> usize {
    let offset = (window_start0 - span.start0) as usize;
    let length = row.sequence.len() / 4;
    let known = one_hot_into(&span.sequence[offset..offset + length], &mut *row.sequence);
    for (values, out, normaliser) in [
        (&span.h3k27ac, &mut *row.h3k27ac, normalisers[0]),
        (&span.accessibility, &mut *row.accessibility, normalisers[1]),
    ] {
        match normaliser {
            Some(n) => encode_signal_into(&values[offset..offset + length], bin_size, &n, out),
            None => out.fill(0.0),
        }
    }
    apply_modality_mask(row, mask);
    known
}

/// The normalisers of a build's two signal inputs for a model (`None` for a masked modality).
pub fn normalisers(build: &Build, spec: &ModelSpec) -> [Option<Normaliser>; 2] {
    [Modality::H3k27ac, Modality::Accessibility].map(|m| {
        build.signal(m).map(|s| Normaliser {
            scale: s.scale,
            clip_max: spec.clip_max,
        })
    })
}

/// Scores every window of `region` (FASTA names, bounds already checked).
///
/// # Errors
///
/// Invalid options, model loading, input reading or inference errors, each naming its file.
pub fn score_region(
    build: &Build,
    spec: &ModelSpec,
    region: &Region,
    options: &ScoreOptions,
) -> crate::Result<ScoreResult> {
    let started = Instant::now();
    if options.batch_size == Some(0) {
        return Err(Error::InvalidBatchSize.into());
    }
    let tiling = Tiling::new(spec.window.length as u64, options.stride)?;
    let contig = build
        .contigs()
        .resolve(region.name())
        .ok_or_else(|| build.contigs().unknown(region.name()))?
        .clone();
    let windows: Vec<Window> = tiling.windows(region).collect();
    let predictor = OrtPredictor::new(
        spec,
        SessionOptions {
            device: options.device,
            intra_threads: options.threads,
        },
    )?;
    let device = predictor.device();
    let batch_size = options.batch_size.unwrap_or(match device {
        ActiveDevice::Cpu => DEFAULT_BATCH_SIZE_CPU,
        ActiveDevice::Cuda => DEFAULT_BATCH_SIZE_CUDA,
    });
    let masked = build.masked_modalities();
    tracing::info!(
        region = %region, windows = windows.len(), model = %spec.id(), %device, batch_size,
        masked = %if masked.is_empty() { "none".to_string() } else { masked.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(",") },
        "scoring"
    );
    let pool = WorkerPool::new(vec![predictor], 1);
    let (free_tx, free_rx) = bounded::<Batch>(3);
    for _ in 0..3 {
        free_tx
            .send(Batch::for_spec(spec, batch_size))
            .expect("fresh channel; this is a bug");
    }
    let (done_tx, done_rx) = unbounded();
    let submitted = AtomicUsize::new(0);
    let producer_done = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let mut scores: Vec<Option<WindowScore>> = vec![None; windows.len()];
    let progress = progress_bar(options.progress, windows.len() as u64);
    let norms = normalisers(build, spec);
    let mask = build.modality_mask();

    let (produced, collected) = std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            let _finish = SetOnDrop(&producer_done);
            let mut reader = build.reader()?;
            let mut span = Span::default();
            for chunk in windows.chunks(batch_size) {
                let mut batch = loop {
                    if stop.load(Ordering::SeqCst) {
                        return Ok(()); // the collector failed and reports why
                    }
                    match free_rx.recv_timeout(Duration::from_millis(50)) {
                        Ok(batch) => break batch,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => {
                            unreachable!("the scope holds a sender")
                        }
                    }
                };
                batch.clear();
                let first = chunk[0].start0;
                let last = chunk[chunk.len() - 1].start0 + spec.window.length as i64;
                reader.read_span(&contig, first, last, &mut span)?;
                for window in chunk {
                    let row = batch.push_row(window.index as u64);
                    if encode_window(
                        &span,
                        window.start0,
                        spec.window.bin_size,
                        &norms,
                        mask,
                        row,
                    ) == 0
                    {
                        batch.pop_row();
                        progress.inc(1);
                    }
                }
                if batch.is_empty() {
                    let _ = free_tx.send(batch);
                    continue;
                }
                submitted.fetch_add(1, Ordering::SeqCst);
                pool.submit(0, batch, &done_tx)?;
            }
            Ok::<(), crate::Error>(())
        });
        let collected = (|| -> crate::Result<()> {
            let mut received = 0usize;
            loop {
                if producer_done.load(Ordering::SeqCst)
                    && received == submitted.load(Ordering::SeqCst)
                {
                    return Ok(());
                }
                let done = match done_rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(done) => done,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        unreachable!("the collector holds a sender")
                    }
                };
                received += 1;
                let predictions = done.result?;
                for (row, &key) in done.batch.keys().iter().enumerate() {
                    let w = &windows[key as usize];
                    scores[key as usize] = Some(WindowScore {
                        core_start0: w.core_start0,
                        core_end0: w.core_end0,
                        logit: predictions.logit[row],
                        probability: predictions.probability[row],
                        modality_share: predictions.modality_share[row],
                    });
                }
                progress.inc(done.batch.len() as u64);
                let _ = free_tx.send(done.batch);
            }
        })();
        // On a collector error the producer must not wait for a free batch forever.
        stop.store(true, Ordering::SeqCst);
        (
            producer
                .join()
                .expect("the input reader thread panicked; this is a bug"),
            collected,
        )
    });
    drop(pool);
    progress.finish_and_clear();
    collected?;
    produced?;

    let mut skipped: Vec<Region> = Vec::new();
    for (window, score) in windows.iter().zip(&scores) {
        if score.is_none() {
            match skipped.last_mut() {
                Some(last) if last.end0() == window.core_start0 => {
                    *last = Region::new(last.name(), last.start0(), window.core_end0)?
                }
                _ => skipped.push(Region::new(
                    region.name(),
                    window.core_start0,
                    window.core_end0,
                )?),
            }
        }
    }
    Ok(ScoreResult {
        region: region.clone(),
        window_count: windows.len(),
        windows: scores.into_iter().flatten().collect(),
        skipped,
        device,
        masked,
        elapsed: started.elapsed(),
    })
}

struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn progress_bar(enabled: bool, total: u64) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} scoring {pos}/{len} windows [{elapsed_precise}] {per_sec} ETA {eta}",
        )
        .expect("static progress template; this is a bug"),
    );
    bar
}

/// An enhancer element: a run of adjacent windows at or above the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// FASTA contig name.
    pub contig: String,
    /// 0-based start (first core's start).
    pub start0: u64,
    /// 0-based exclusive end (last core's end).
    pub end0: u64,
    /// The window with the highest probability.
    pub peak: WindowScore,
    /// Mean probability over the element's windows.
    pub mean_probability: f32,
    /// Number of windows merged.
    pub windows: usize,
}

/// Merges runs of adjacent scored windows with `probability >= threshold` into elements. A
/// skipped (all-N) window breaks a run.
pub fn call_elements(contig: &str, windows: &[WindowScore], threshold: f64) -> Vec<Element> {
    let mut elements: Vec<Element> = Vec::new();
    let mut run: Vec<&WindowScore> = Vec::new();
    let flush = |run: &mut Vec<&WindowScore>, elements: &mut Vec<Element>| {
        if let (Some(first), Some(last)) = (run.first(), run.last()) {
            let peak = **run
                .iter()
                .max_by(|a, b| a.probability.total_cmp(&b.probability))
                .expect("non-empty run");
            let mean = run.iter().map(|w| w.probability as f64).sum::<f64>() / run.len() as f64;
            elements.push(Element {
                contig: contig.to_string(),
                start0: first.core_start0,
                end0: last.core_end0,
                peak,
                mean_probability: mean as f32,
                windows: run.len(),
            });
        }
        run.clear();
    };
    for w in windows {
        let adjacent = run
            .last()
            .is_none_or(|last| last.core_end0 == w.core_start0);
        if !adjacent {
            flush(&mut run, &mut elements);
        }
        if w.probability as f64 >= threshold {
            run.push(w);
        } else {
            flush(&mut run, &mut elements);
        }
    }
    flush(&mut run, &mut elements);
    elements
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(start: u64, p: f32) -> WindowScore {
        WindowScore {
            core_start0: start,
            core_end0: start + 10,
            logit: 0.0,
            probability: p,
            modality_share: [0.2, 0.3, 0.5],
        }
    }

    #[test]
    fn test_call_elements() {
        let windows = [
            w(0, 0.1),
            w(10, 0.6),
            w(20, 0.9),
            w(30, 0.7),
            w(40, 0.2),
            w(50, 0.8),
            /* gap */ w(70, 0.9),
            w(80, 0.5),
        ];
        let e = call_elements("chr1", &windows, 0.5);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].start0, e[0].end0, e[0].windows, e[0].peak.core_start0),
            (10, 40, 3, 20)
        );
        assert!((e[0].mean_probability - (0.6 + 0.9 + 0.7) / 3.0).abs() < 1e-6);
        assert_eq!((e[1].start0, e[1].end0), (50, 60));
        assert_eq!((e[2].start0, e[2].end0, e[2].windows), (70, 90, 2)); // 0.5 >= threshold
        assert!(call_elements("chr1", &windows, 0.95).is_empty());
        assert!(call_elements("chr1", &[], 0.5).is_empty());
    }
}
