//! Inference: windows/s of each shipped enhancer model version on the CPU per batch size
//! (`BenchmarkId` = batch size), ONNX Runtime with as many intra-op threads as cores. Every
//! `models/enhancer-*/<version>/` is measured in the same run (fp32 beside its `-int8` graph,
//! students beside teachers); `CISTRACK_BENCH_MODELS=enhancer-student/0.2.0,...` keeps only those.

use criterion::{BenchmarkId, Criterion, Throughput};

use cistrack::model::onnx::{OrtPredictor, SessionOptions};
use cistrack::model::{Batch, Device, ModelSpec, Predictor};

pub fn bench(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wanted: Option<Vec<String>> = std::env::var("CISTRACK_BENCH_MODELS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let mut models = Vec::new();
    for name in ["enhancer-student", "enhancer-teacher"] {
        let mut versions: Vec<_> = std::fs::read_dir(root.join("models").join(name))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("model.json").is_file())
            .collect();
        versions.sort();
        models.extend(versions.into_iter().map(|dir| (name, dir)));
    }
    for (name, dir) in models {
        let version = dir.file_name().unwrap().to_string_lossy().into_owned();
        let id = format!("{name}/{version}");
        if wanted.as_ref().is_some_and(|w| !w.contains(&id)) {
            continue;
        }
        let spec = ModelSpec::load(&dir).unwrap();
        let mut predictor = OrtPredictor::new(
            &spec,
            SessionOptions {
                device: Device::Cpu,
                intra_threads: threads,
            },
        )
        .unwrap();
        let mut group = c.benchmark_group(format!("infer_{name}_{version}"));
        group.sample_size(10);
        for batch_size in [1usize, 4, 8, 32, 64, 128] {
            let mut batch = Batch::for_spec(&spec, batch_size);
            let mut state = 0x2545_f491_4f6c_dd1du64;
            for i in 0..batch_size {
                let row = batch.push_row(i as u64);
                for pos in 0..2000 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    row.sequence[(state % 4) as usize * 2000 + pos] = 1.0;
                }
                for (j, v) in row
                    .h3k27ac
                    .iter_mut()
                    .chain(row.accessibility.iter_mut())
                    .enumerate()
                {
                    *v = ((i + j) % 17) as f32 / 8.0;
                }
                row.modality_mask.fill(1.0);
            }
            group.throughput(Throughput::Elements(batch_size as u64));
            group.bench_with_input(
                BenchmarkId::from_parameter(batch_size),
                &batch,
                |b, batch| b.iter(|| predictor.predict(batch).unwrap()),
            );
        }
        group.finish();
    }
}
