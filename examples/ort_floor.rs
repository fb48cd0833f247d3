//! The ONNX Runtime floor of `cistrack score`: the windows of a region read and encoded up
//! front, then only the model calls timed (same model, batch size and threads as `score`), so
//! that `benches/pipeline_e2e.sh` can report `score`'s windows/s as a ratio of it.
//!
//! ```text
//! cargo run --release --example ort_floor -- examples/hg38.toml chr22:17,200,001-17,800,000 [BATCH] [THREADS] [DEVICE]
//! ```
//! DEVICE is `cpu` (the default) or `cuda` (benches/cuda_e2e.sh); one batch is run untimed first
//! (session warm-up: CUDA loads its kernels and picks convolution algorithms on the first call).
//! Prints `windows=N seconds=S windows_per_s=R batch=B threads=T device=D`.

use std::sync::Arc;
use std::time::Instant;

use cistrack::config::Config;
use cistrack::genome::build::Span;
use cistrack::genome::Build;
use cistrack::model::onnx::{ActiveDevice, OrtPredictor, SessionOptions};
use cistrack::model::{Batch, Device, ModelSpec, Predictor};
use cistrack::pipeline::batcher::{batch_size, pad_lone_row};
use cistrack::pipeline::grid::{Grid, DEFAULT_STRIDE};
use cistrack::pipeline::inputs::{encode_window, normalisers};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(config), Some(region)) = (args.first(), args.get(1)) else {
        eprintln!("usage: ort_floor CONFIG REGION [BATCH] [THREADS] [DEVICE]");
        std::process::exit(2);
    };
    let threads = match args.get(3) {
        Some(t) => t.parse()?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let device = match args.get(4).map(String::as_str) {
        None | Some("cpu") => Device::Cpu,
        Some("cuda") => Device::Cuda,
        Some(other) => return Err(format!("DEVICE must be cpu or cuda, not {other:?}").into()),
    };
    let config = Config::load(config.as_ref())?;
    let build = Arc::new(Build::open(config.build(None)?)?);
    let region = build.contigs().check(&region.parse()?)?;
    let spec = ModelSpec::load(&build.model_dir(None)?)?;
    let mut predictor = OrtPredictor::new(
        &spec,
        SessionOptions {
            device,
            intra_threads: threads,
        },
    )?;
    if device == Device::Cuda && predictor.device() != ActiveDevice::Cuda {
        return Err("the CUDA execution provider did not load (see `cistrack doctor`)".into());
    }
    let requested = args
        .get(2)
        .filter(|b| !b.is_empty())
        .map(|b| b.parse())
        .transpose()?;
    let batch_size = batch_size(requested, predictor.device())?;
    let contig = build
        .contigs()
        .resolve(region.name())
        .expect("checked")
        .clone();

    // read and encode every scorable window first, in batches as `score` forms them
    let grid = Grid::new(spec.window.length as u64, DEFAULT_STRIDE)?;
    let (norms, mask) = (normalisers(&build, &spec), build.modality_mask());
    let mut reader = build.reader()?;
    let mut span = Span::default();
    let mut batches = Vec::new();
    let mut windows = 0;
    let all: Vec<_> = grid.windows(&region).collect();
    for chunk in all.chunks(batch_size) {
        let mut batch = Batch::for_spec(&spec, batch_size.max(2));
        let last = chunk[chunk.len() - 1].start0 + spec.window.length as i64;
        reader.read_span(&contig, chunk[0].start0, last, &mut span)?;
        for w in chunk {
            let row = batch.push_row(w.index);
            if encode_window(&span, w.start0, spec.window.bin_size, &norms, mask, row) == 0 {
                batch.pop_row();
            }
        }
        windows += batch.len();
        if !batch.is_empty() {
            pad_lone_row(&mut batch);
            batches.push(batch);
        }
    }
    if let Some(first) = batches.first() {
        predictor.predict(first)?; // warm-up, untimed
    }
    let started = Instant::now();
    for batch in &batches {
        predictor.predict(batch)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "windows={windows} seconds={seconds:.3} windows_per_s={:.1} batch={batch_size} threads={threads} device={}",
        windows as f64 / seconds,
        predictor.device()
    );
    Ok(())
}
