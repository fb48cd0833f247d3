//! The daemon's scoring engine on the fixture build: same scores as `cistrack score`, shared
//! work for concurrent identical views, cancellation when requesters leave, and a cache that
//! survives restarts.

#[path = "support/helpers.rs"]
mod helpers;

#[path = "support/gated.rs"]
mod gated;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cistrack::config::Config;
use cistrack::genome::{Build, Region};
use cistrack::model::{Device, ModelSpec};
use cistrack::pipeline::cache::{Cache, DiskStore, Stats};
use cistrack::pipeline::engine::{deadline_in, inputs_fingerprint, Engine, EngineOptions};
use cistrack::track::score::{score_region, ScoreOptions};
use gated::{ort, Gated};

fn setup() -> (Arc<Build>, Arc<ModelSpec>) {
    let config = Config::load(&helpers::fixture_config()).unwrap();
    let build = Build::open(config.build(None).unwrap()).unwrap();
    let spec = ModelSpec::load(&build.model_dir(None).unwrap()).unwrap();
    (Arc::new(build), Arc::new(spec))
}

fn options(build: &Arc<Build>, max_batch: Option<usize>) -> EngineOptions {
    EngineOptions {
        stride: 200,
        device: Device::Cpu,
        workers: Some(1),
        intra_threads: 2,
        max_batch,
        max_queued_windows: 100_000,
        fingerprint: inputs_fingerprint(build),
    }
}

fn engine(build: &Arc<Build>, spec: &Arc<ModelSpec>, cache: Arc<Cache>) -> Engine {
    Engine::start(build.clone(), spec.clone(), cache, &options(build, None)).unwrap()
}

/// An engine with one worker around `predictor` (a wrapper of the real model), memory cache.
fn engine_around(
    build: &Arc<Build>,
    spec: &Arc<ModelSpec>,
    max_batch: usize,
    predictor: Box<dyn cistrack::model::Predictor>,
) -> Engine {
    let cache = Arc::new(Cache::new(16, None, Arc::new(Stats::default())));
    let options = options(build, Some(max_batch));
    let device = cistrack::model::onnx::ActiveDevice::Cpu;
    Engine::with_predictors(
        build.clone(),
        spec.clone(),
        cache,
        &options,
        vec![predictor],
        device,
    )
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn dense_view_equals_the_cli_pipeline() {
    let (build, spec) = setup();
    let cache = Arc::new(Cache::new(16, None, Arc::new(Stats::default())));
    let engine = engine(&build, &spec, cache);
    // grid-aligned (multiple of the stride), across the N stretch of chr2 and into the contig end
    let region = Region::new("chr2", 20_000, 40_000).unwrap();
    let view = runtime()
        .block_on(engine.view(&region, |_| true, deadline_in(Duration::from_secs(120))))
        .unwrap();
    assert!(view.pending.is_empty());
    let options = ScoreOptions {
        device: Device::Cpu,
        ..Default::default()
    };
    let cli = score_region(&build, &spec, &region, &options).unwrap();
    assert_eq!(view.windows.len(), cli.windows.len());
    for (a, b) in view.windows.iter().zip(&cli.windows) {
        assert_eq!((a.core_start0, a.core_end0), (b.core_start0, b.core_end0));
        assert!(
            (a.probability - b.probability).abs() < 1e-5,
            "{a:?} vs {b:?}"
        );
    }
    assert_eq!(view.skipped, vec![(23_000, 24_000)]);
    assert_eq!(view.needed, 100);
}

#[test]
fn workers_default_to_one_on_the_cpu_and_several_give_the_same_scores() {
    let (build, spec) = setup();
    let region = Region::new("chr2", 20_000, 40_000).unwrap();
    let scores = |workers: Option<usize>| {
        let cache = Arc::new(Cache::new(16, None, Arc::new(Stats::default())));
        let options = EngineOptions {
            workers,
            ..options(&build, Some(4))
        };
        let engine = Engine::start(build.clone(), spec.clone(), cache, &options).unwrap();
        let view = runtime()
            .block_on(engine.view(&region, |_| true, deadline_in(Duration::from_secs(120))))
            .unwrap();
        (engine.workers(), view.windows)
    };
    let (one, expected) = scores(None);
    assert_eq!(
        one, 1,
        "the CPU default is one worker with every intra-op thread"
    );
    let (three, windows) = scores(Some(3));
    assert_eq!(three, 3);
    assert_eq!(windows.len(), expected.len());
    for (a, b) in windows.iter().zip(&expected) {
        assert_eq!(
            (a.core_start0, a.probability),
            (b.core_start0, b.probability)
        );
    }
}

#[test]
fn concurrent_identical_views_share_one_computation() {
    let (build, spec) = setup();
    let cache = Arc::new(Cache::new(16, None, Arc::new(Stats::default())));
    let engine = Arc::new(engine(&build, &spec, cache));
    let region = Region::new("chr1", 0, 25_600).unwrap(); // 128 windows, 2 tiles
    let rt = runtime();
    let results: Vec<_> = rt.block_on(async {
        let mut handles = Vec::new();
        for _ in 0..4 {
            let engine = engine.clone();
            let region = region.clone();
            handles.push(tokio::spawn(async move {
                engine
                    .view(&region, |_| true, deadline_in(Duration::from_secs(120)))
                    .await
                    .unwrap()
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    });
    for r in &results[1..] {
        assert_eq!(
            r.windows, results[0].windows,
            "concurrent results must be identical"
        );
    }
    assert_eq!(
        engine.stats().windows_scored.load(Ordering::Relaxed),
        128,
        "each window scored once"
    );
}

#[test]
fn abandoned_views_stop_costing_compute_and_keep_partial_work() {
    let (build, spec) = setup();
    let (started_tx, started) = crossbeam_channel::unbounded();
    let (open, gate) = crossbeam_channel::bounded::<()>(0);
    let gated = Gated {
        inner: ort(&spec),
        started: started_tx,
        gate,
    };
    let engine = Arc::new(engine_around(&build, &spec, 4, Box::new(gated)));
    let region = Region::new("chr1", 0, 60_000).unwrap(); // 300 windows
    let rt = runtime();
    // A requester that goes away (a client disconnecting) while the worker holds its first
    // batch at the gate; the rest of its windows wait in the queue.
    let requester = {
        let (engine, region) = (engine.clone(), region.clone());
        rt.spawn(async move {
            engine
                .view(&region, |_| true, deadline_in(Duration::from_secs(120)))
                .await
        })
    };
    let first_batch = started.recv().unwrap() as u64; // rows of the batch at the gate
    requester.abort();
    assert!(rt.block_on(requester).unwrap_err().is_cancelled());
    drop(open); // every batch may finish from now on
                // A barrier: with one worker and a first-in first-out queue, a view queued now completes
                // only after the held batch is done and the abandoned windows queued before it are dropped.
    let barrier = Region::new("chr2", 0, 200).unwrap();
    let barrier = rt
        .block_on(engine.view(&barrier, |_| true, deadline_in(Duration::from_secs(120))))
        .unwrap();
    let stats = engine.stats();
    assert_eq!(
        stats.windows_cancelled.load(Ordering::Relaxed),
        300 - first_batch,
        "queued windows of the abandoned view are dropped unscored"
    );
    // Asking again computes only what is missing: the windows of the held batch were kept.
    let full = rt
        .block_on(engine.view(&region, |_| true, deadline_in(Duration::from_secs(120))))
        .unwrap();
    assert!(full.pending.is_empty());
    assert_eq!(full.windows.len(), 300);
    assert_eq!(
        full.cached as u64, first_batch,
        "windows scored before the cancellation are reused"
    );
    assert_eq!(
        stats.windows_scored.load(Ordering::Relaxed),
        300 + barrier.windows.len() as u64
    );
}

#[test]
fn cache_survives_a_restart() {
    let (build, spec) = setup();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixture.sqlite");
    let region = Region::new("chr2", 0, 12_800).unwrap();
    let rt = runtime();
    let first = {
        let stats = Arc::new(Stats::default());
        let cache = Arc::new(Cache::new(
            16,
            Some(DiskStore::open(&path, 1 << 30, stats.clone()).unwrap()),
            stats,
        ));
        let engine = engine(&build, &spec, cache.clone());
        let view = rt
            .block_on(engine.view(&region, |_| true, deadline_in(Duration::from_secs(120))))
            .unwrap();
        drop(engine);
        cache.disk().unwrap().flush();
        view
    };
    let stats = Arc::new(Stats::default());
    let cache = Arc::new(Cache::new(
        16,
        Some(DiskStore::open(&path, 1 << 30, stats.clone()).unwrap()),
        stats.clone(),
    ));
    let engine = engine(&build, &spec, cache);
    let second = rt
        .block_on(engine.view(&region, |_| true, deadline_in(Duration::from_secs(120))))
        .unwrap();
    assert_eq!(second.windows, first.windows);
    assert_eq!(
        second.cached, second.needed,
        "everything came from the disk tier"
    );
    assert_eq!(engine.stats().windows_scored.load(Ordering::Relaxed), 0);
    assert_eq!(stats.disk_hits.load(Ordering::Relaxed), 1);
}

/// The real ONNX Runtime predictor, made to fail on chosen calls: an error on the first, a
/// panic on the second, then normal service.
struct Faulty {
    inner: cistrack::model::onnx::OrtPredictor,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl cistrack::model::Predictor for Faulty {
    fn predict(
        &mut self,
        batch: &cistrack::model::Batch,
    ) -> Result<cistrack::model::Predictions, cistrack::model::Error> {
        match self.calls.fetch_add(1, Ordering::SeqCst) {
            0 => Err(cistrack::model::Error::Inference {
                model: "test".into(),
                source: "injected failure".into(),
            }),
            1 => panic!("injected panic"),
            _ => self.inner.predict(batch),
        }
    }
}

#[test]
fn a_failing_model_worker_fails_its_views_and_then_recovers() {
    let (build, spec) = setup();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let faulty = Faulty {
        inner: ort(&spec),
        calls: calls.clone(),
    };
    let engine = engine_around(&build, &spec, 64, Box::new(faulty));
    let rt = runtime();
    let region = Region::new("chr1", 12_800, 25_600).unwrap(); // one tile, 64 windows, 1 batch
    let view = |region: &Region| {
        rt.block_on(engine.view(region, |_| true, deadline_in(Duration::from_secs(120))))
    };
    let first = view(&region).expect_err("the injected error fails the view");
    // the view's error keeps the model's error as its cause
    let text = cistrack::error::chain(&first);
    assert!(text.contains("injected failure"), "{text}");
    let second = view(&region).expect_err("the injected panic fails the view");
    let text = cistrack::error::chain(&second);
    assert!(text.contains("panicked"), "{text}");
    // The worker survived both and the failed tile is computed again, correctly.
    let third = view(&region).unwrap();
    assert!(third.pending.is_empty());
    let cli = score_region(
        &build,
        &spec,
        &region,
        &ScoreOptions {
            device: Device::Cpu,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(third.windows.len(), cli.windows.len());
    for (a, b) in third.windows.iter().zip(&cli.windows) {
        assert!(
            (a.probability - b.probability).abs() < 1e-5,
            "{a:?} vs {b:?}"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn concurrent_link_views_share_genes_and_batches() {
    let (build, _) = setup();
    let engine = cistrack::track::links::open(
        build.clone(),
        Arc::new(Cache::new(16, None, Arc::new(Stats::default()))),
        &inputs_fingerprint(&build),
        Device::Cpu,
        2,
        true,
    )
    .unwrap();
    let contig = build.contigs().resolve("chr1").unwrap().clone();
    // overlapping views of four requesters at once: every gene in reach of any of them is
    // computed once, whoever computes it, and every requester gets the same answer
    let views: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = [(0, 60_000), (0, 30_000), (20_000, 60_000), (0, 60_000)]
            .into_iter()
            .map(|(s, e)| {
                let (engine, contig) = (&engine, &contig);
                scope.spawn(move || engine.view(contig, s, e, None, || true).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let genes = engine.genes_in_reach("chr1", 0, 60_000) as u64;
    assert!(genes > 0);
    assert_eq!(engine.generation(), genes, "each gene computed once");
    let alone = engine.view(&contig, 0, 60_000, None, || true).unwrap();
    assert_eq!(alone.computed, 0, "all from the cache now");
    for v in [&views[0], &views[3]] {
        assert!(v.pending.is_empty());
        assert_eq!(v.genes.len(), alone.genes.len());
        for (a, b) in v.genes.iter().zip(&alone.genes) {
            assert_eq!(a, b);
        }
    }
}
