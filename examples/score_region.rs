//! Scores a region with the library API and prints the called enhancer elements as BED, like
//! `cistrack score --config CONFIG --region REGION` does.
//!
//! ```text
//! cargo run --release --example score_region -- tests/data/fixture.toml chr2:1-40000
//! cargo run --release --example score_region -- examples/hg38.toml chr22:17,400,001-17,460,000
//! ```

use cistrack::config::Config;
use std::sync::Arc;

use cistrack::genome::Build;
use cistrack::model::ModelSpec;
use cistrack::track::score::{call_elements, score_region, ScoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(config), Some(region)) = (args.next(), args.next()) else {
        eprintln!("usage: score_region CONFIG REGION");
        std::process::exit(2);
    };
    let config = Config::load(config.as_ref())?;
    let build = Arc::new(Build::open(config.build(None)?)?);
    let region = build.contigs().check(&region.parse()?)?;
    let spec = Arc::new(ModelSpec::load(&build.model_dir(None)?)?);
    let result = score_region(&build, &spec, &region, &ScoreOptions::default())?;
    eprintln!(
        "{} windows scored on {} in {:.1} s",
        result.windows.len(),
        result.device,
        result.elapsed.as_secs_f64()
    );
    for e in call_elements(region.name(), &result.windows, spec.threshold) {
        println!(
            "{}\t{}\t{}\t{:.3}\t{:.3}",
            e.contig, e.start0, e.end0, e.peak.probability, e.mean_probability
        );
    }
    Ok(())
}
