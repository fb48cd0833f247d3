//! Inference: windows/s of each shipped enhancer model on the CPU per batch size
//! (`BenchmarkId` = batch size), ONNX Runtime with as many intra-op threads as cores.

use criterion::{BenchmarkId, Criterion, Throughput};

use cistrack::model::onnx::{OrtPredictor, SessionOptions};
use cistrack::model::{Batch, Device, ModelSpec, Predictor};

pub fn bench(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for name in ["enhancer-student", "enhancer-teacher"] {
        let spec = ModelSpec::load(&root.join("models").join(name).join("0.1.0")).unwrap();
        let mut predictor = OrtPredictor::new(
            &spec,
            SessionOptions {
                device: Device::Cpu,
                intra_threads: threads,
            },
        )
        .unwrap();
        let mut group = c.benchmark_group(format!("infer_{name}"));
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
