//! Tracks: a region cut into windows, the windows scored, enhancer elements called, and the
//! results written as BED, bedGraph, bigBed or bigWig.

pub mod export;
pub mod link_inputs;
pub mod links;
pub mod links_output;
pub mod output;
pub mod score;

/// Errors in track parameters and output.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stride outside `1..=window`.
    #[error(
        "--stride {stride} is invalid: it must be between 1 and the model's window ({window} bp)"
    )]
    InvalidStride {
        /// The stride asked for.
        stride: u64,
        /// The window length.
        window: u64,
    },
    /// A batch size of 0.
    #[error("--batch-size must be at least 1")]
    InvalidBatchSize,
    /// A threshold outside `[0, 1]`.
    #[error("--threshold {0} is not a probability between 0 and 1")]
    InvalidThreshold(f64),
    /// Writing text output failed.
    #[error("cannot write {target}")]
    Write {
        /// File name or `stdout`.
        target: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
