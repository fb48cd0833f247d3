//! Input extraction: read a span of the fixture build (`genome::fasta` + bigtools) and encode its
//! windows into a batch, as `track::score` does. Throughput is in windows.

use criterion::{Criterion, Throughput};

use cistrack::config::Config;
use cistrack::genome::build::Span;
use cistrack::genome::{Build, Region};
use cistrack::model::{Batch, ModelSpec};
use cistrack::pipeline::inputs::{encode_window, normalisers};
use cistrack::pipeline::Grid;

pub fn bench(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::load(&root.join("tests/data/fixture.toml")).unwrap();
    let build = Build::open(config.build(None).unwrap()).unwrap();
    let spec = ModelSpec::load(&build.model_dir(None).unwrap()).unwrap();
    let norms = normalisers(&build, &spec);
    let mask = build.modality_mask();
    let contig = build.contigs().resolve("chr2").unwrap().clone();
    // 64 windows at the default stride over real bases and real signal
    let region = Region::new("chr2", 5_000, 5_000 + 64 * 200).unwrap();
    let windows: Vec<_> = Grid::new(2000, 200).unwrap().windows(&region).collect();
    let mut group = c.benchmark_group("extract");
    group.throughput(Throughput::Elements(windows.len() as u64));
    let mut reader = build.reader().unwrap();
    let mut span = Span::default();
    let mut batch = Batch::for_spec(&spec, windows.len());
    group.bench_function("read_and_encode_64_windows", |b| {
        b.iter(|| {
            reader
                .read_span(
                    &contig,
                    windows[0].start0,
                    windows[63].start0 + 2000,
                    &mut span,
                )
                .unwrap();
            batch.clear();
            for w in &windows {
                encode_window(&span, w.start0, 10, &norms, mask, batch.push_row(w.index));
            }
            std::hint::black_box(&batch);
        })
    });
    group.bench_function("encode_only_64_windows", |b| {
        b.iter(|| {
            batch.clear();
            for w in &windows {
                encode_window(&span, w.start0, 10, &norms, mask, batch.push_row(w.index));
            }
            std::hint::black_box(&batch);
        })
    });
    group.finish();
}
