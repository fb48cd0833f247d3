//! Scoring a region with `cistrack score`, and calling enhancer elements from window scores.
//!
//! A region is scored through the same [`Engine`] as the daemon's views (same grid, same queue
//! and batch rules, same cache): `score` at the daemon's stride reads what `serve` or
//! `precompute` computed and leaves what it computes for them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::genome::{Build, Region};
use crate::model::onnx::ActiveDevice;
use crate::model::{Device, Modality, ModelSpec};
use crate::pipeline::background::Background;
use crate::pipeline::cache::{Cache, CacheSettings};
use crate::pipeline::engine::{Engine, EngineOptions};
use crate::pipeline::regions::score_regions;

pub use crate::pipeline::grid::DEFAULT_STRIDE;

/// In-memory tier of `score`'s cache, MiB: a region is read once, so memory only bridges the
/// pieces in flight.
const SCORE_MEMORY_MIB: usize = 64;

/// How to score.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Distance between window centres (the core length), in bases.
    pub stride: u64,
    /// Windows per model call; `None` picks the device's default.
    pub batch_size: Option<usize>,
    /// Model workers (`None`: 1 on the CPU, 4 with CUDA).
    pub workers: Option<usize>,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Requested device.
    pub device: Device,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// The build's on-disk score cache (shared with `serve`); `None` keeps scores in memory.
    pub cache: Option<CacheSettings>,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        Self {
            stride: DEFAULT_STRIDE,
            batch_size: None,
            workers: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            device: Device::Auto,
            progress: false,
            cache: None,
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
    /// Of those, read from the cache.
    pub cached: usize,
    /// Cores of windows skipped because they hold no A/C/G/T base, merged into regions.
    pub skipped: Vec<Region>,
    /// Where the model ran.
    pub device: ActiveDevice,
    /// Modalities the build has no track for (fed to the model masked).
    pub masked: Vec<Modality>,
    /// The model's background on the build (`cistrack precompute --background`), for
    /// percentiles; `None` when the cache holds none.
    pub background: Option<Arc<Background>>,
    /// Wall time.
    pub elapsed: Duration,
}

impl ScoreResult {
    /// Number of windows skipped as all-N.
    pub fn skipped_windows(&self) -> usize {
        self.window_count - self.windows.len()
    }
}

/// Scores every window of `region` (FASTA names, bounds already checked) on the build's grid.
///
/// # Errors
///
/// Invalid options, model loading, cache, input reading or inference errors, each naming its
/// file.
pub fn score_region(
    build: &Arc<Build>,
    spec: &Arc<ModelSpec>,
    region: &Region,
    options: &ScoreOptions,
) -> crate::Result<ScoreResult> {
    let started = Instant::now();
    build
        .contigs()
        .resolve(region.name())
        .ok_or_else(|| build.contigs().unknown(region.name()))?;
    let cache = Arc::new(Cache::open(
        options.cache.as_ref(),
        build.name(),
        SCORE_MEMORY_MIB,
    )?);
    let engine = Arc::new(Engine::start(
        build.clone(),
        spec.clone(),
        cache.clone(),
        &EngineOptions::command(
            build,
            options.stride,
            options.device,
            options.workers,
            options.threads,
            options.batch_size,
        ),
    )?);
    let window_count = engine.grid().count(region);
    let masked = build.masked_modalities();
    tracing::info!(
        region = %region, windows = window_count, model = %spec.id(), device = %engine.device(),
        batch_size = engine.max_batch(),
        masked = %if masked.is_empty() { "none".to_string() } else { masked.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(",") },
        cache = %options.cache.as_ref().map_or("memory only".to_string(), |c| c.path(build.name()).display().to_string()),
        "scoring"
    );
    let progress = progress_bar(options.progress, window_count as u64);
    let views = score_regions(&engine, std::slice::from_ref(region), |n| progress.inc(n))?;
    progress.finish_and_clear();
    let view = views.into_iter().next().expect("one view per region");
    cache.flush();
    let skipped = view
        .skipped
        .iter()
        .map(|&(s, e)| Region::new(region.name(), s, e))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::debug!(
        scored = engine.stats().windows_scored.load(Ordering::Relaxed),
        cached = view.cached,
        "scored"
    );
    Ok(ScoreResult {
        region: region.clone(),
        window_count,
        cached: view.cached,
        windows: view.windows,
        skipped,
        device: engine.device(),
        masked,
        background: Background::load(&cache, engine.variant()),
        elapsed: started.elapsed(),
    })
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
