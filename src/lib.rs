//! cistrack computes cis-regulatory annotations with deep-learning models, on demand: enhancer
//! scores from DNA sequence, H3K27ac and chromatin accessibility, for the part of the genome a
//! person is looking at or streaming through.
//!
//! The library is what the `cistrack` binary, the tests and the benchmarks use:
//!
//! - [`config`]: the TOML builds config;
//! - [`genome`]: contigs, aliases, regions, FASTA access, the opened [`genome::Build`];
//! - [`io`]: bigWig input, bigBed/bigWig output;
//! - [`model`]: the model contract, encoding, ONNX Runtime sessions;
//! - [`pipeline`]: the scoring core every command uses (grid, queue, model workers, engine,
//!   cache);
//! - [`track`]: scoring a region, calling enhancer elements, links, writing BED and bigBed.
//!
//! # Examples
//!
//! Score a region of the small test build (needs the ONNX Runtime library that `make setup`
//! installs):
//!
//! ```no_run
//! use std::sync::Arc;
//! use cistrack::{config::Config, genome::Build, model::ModelSpec, track::score};
//! let config = Config::load("tests/data/fixture.toml".as_ref())?;
//! let build = Arc::new(Build::open(config.build(Some("fixture"))?)?);
//! let spec = Arc::new(ModelSpec::load(&build.model_dir(None)?)?);
//! let region = build.contigs().check(&"chr1:10,001-20,000".parse()?)?;
//! let result = score::score_region(&build, &spec, &region, &score::ScoreOptions::default())?;
//! for element in score::call_elements(region.name(), &result.windows, spec.threshold) {
//!     println!("{}\t{}\t{}\t{:.3}", element.contig, element.start0, element.end0, element.peak.probability);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod annotate;
pub mod config;
pub mod error;
pub mod genome;
pub mod io;
pub mod model;
pub mod motif;
pub mod pipeline;
pub mod server;
pub mod track;

pub use error::{Error, Result};
