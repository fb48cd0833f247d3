//! The ONNX Runtime floor of `cistrack score`: the windows of a region read and encoded up
//! front, then only the model calls timed (same model, batch size and threads as `score`), so
//! that `benches/pipeline_e2e.sh` can report `score`'s windows/s as a ratio of it.
//!
//! ```text
//! cargo run --release --example ort_floor -- examples/hg38.toml chr22:17,200,001-17,800,000 [BATCH] [THREADS]
//! ```
//! Prints `windows=N seconds=S windows_per_s=R batch=B threads=T`.

use std::sync::Arc;
use std::time::Instant;

use cistrack::config::Config;
use cistrack::genome::build::Span;
use cistrack::genome::Build;
use cistrack::model::onnx::{OrtPredictor, SessionOptions};
use cistrack::model::{Batch, Device, ModelSpec, Predictor};
use cistrack::pipeline::batcher::{batch_size, pad_lone_row};
use cistrack::pipeline::grid::{Grid, DEFAULT_STRIDE};
use cistrack::pipeline::inputs::{encode_window, normalisers};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(config), Some(region)) = (args.first(), args.get(1)) else {
        eprintln!("usage: ort_floor CONFIG REGION [BATCH] [THREADS]");
        std::process::exit(2);
    };
    let threads = match args.get(3) {
        Some(t) => t.parse()?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let config = Config::load(config.as_ref())?;
    let build = Arc::new(Build::open(config.build(None)?)?);
    let region = build.contigs().check(&region.parse()?)?;
    let spec = ModelSpec::load(&build.model_dir(None)?)?;
    let mut predictor = OrtPredictor::new(
        &spec,
        SessionOptions {
            device: Device::Cpu,
            intra_threads: threads,
        },
    )?;
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
    let started = Instant::now();
    for batch in &batches {
        predictor.predict(batch)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "windows={windows} seconds={seconds:.3} windows_per_s={:.1} batch={batch_size} threads={threads}",
        windows as f64 / seconds
    );
    Ok(())
}
