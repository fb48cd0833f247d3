//! Models: the `model.json` contract, input encoding, the ONNX Runtime predictor and workers.
//!
//! The contract between training (Python) and this runtime is `models/CONTRACT.md`.

pub mod calibration;
pub mod e2g;
pub mod encode;
pub mod link;
pub mod onnx;
pub mod runtime;

mod batch;
mod error;
mod files;
mod spec;

pub use batch::{Batch, Predictions, Predictor, RowMut};
pub use error::Error;
pub use files::{read_model_json, sha256_file};
pub use spec::{GoldenSpec, ModelSpec, WindowSpec, ENHANCER_INPUTS, ENHANCER_OUTPUTS};

use std::fmt;

use serde::Deserialize;

/// The signal normalisation this runtime implements (see `models/CONTRACT.md`).
pub const NORMALISATION_ID: &str = "zero-filled-bin-mean/track-mean/log1p/clip8";

/// The enhancer models' input modalities, in the order of `modality_mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Modality {
    /// One-hot DNA.
    Sequence,
    /// H3K27ac signal.
    H3k27ac,
    /// Chromatin accessibility (ATAC or DNase).
    Accessibility,
}

impl Modality {
    /// All modalities in mask order.
    pub const ALL: [Modality; 3] = [
        Modality::Sequence,
        Modality::H3k27ac,
        Modality::Accessibility,
    ];

    /// The name used in configs, model files and output columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Sequence => "sequence",
            Modality::H3k27ac => "h3k27ac",
            Modality::Accessibility => "accessibility",
        }
    }

    /// Position in `modality_mask` and `modality_share`.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Device {
    /// CUDA when its execution provider loads, else CPU.
    #[default]
    Auto,
    /// CPU only.
    Cpu,
    /// CUDA; falls back to CPU with a warning when it does not load.
    Cuda,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Device::Auto => "auto",
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// A tensor declared in model.json.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TensorSpec {
    /// Input or output name.
    pub name: String,
    /// Element type (`float32`).
    pub dtype: String,
    /// Dimensions: integers, or a name (`batch`) for a dynamic dimension.
    pub shape: Vec<Dim>,
}

/// One dimension of a [`TensorSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A dynamic, named size.
    Named(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Named(s) => f.write_str(s),
        }
    }
}
