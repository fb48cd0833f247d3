//! [`Error`]: everything that can go wrong loading or running a model.

use std::path::PathBuf;

/// Errors loading or running models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a model file.
    #[error("cannot read {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `model.json` is invalid or describes something this runtime does not support.
    #[error("{}: {message}", .path.display())]
    Spec {
        /// The model.json.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `model.onnx` does not have the sha256 that `model.json` records.
    #[error("{} has sha256 {actual} but model.json records {expected}: the file was changed or is incomplete", .path.display())]
    Checksum {
        /// The ONNX file.
        path: PathBuf,
        /// From model.json.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The ONNX graph disagrees with `model.json` (names, dtypes, shapes, metadata).
    #[error("{} does not match its model.json: {message}", .path.display())]
    Mismatch {
        /// The ONNX file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// The ONNX Runtime shared library could not be found.
    #[error("ONNX Runtime library not found (looked for {}); run `make setup` (scripts/setup.sh) to install it into .cistrack/onnxruntime, or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.24 or later", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    LibraryNotFound {
        /// Every path tried.
        searched: Vec<PathBuf>,
    },
    /// The library exists but cannot be used.
    #[error("cannot use ONNX Runtime library {}: {message}", .path.display())]
    Library {
        /// The library.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// ONNX Runtime refused the model.
    #[error("ONNX Runtime cannot load {}: {message}", .path.display())]
    Load {
        /// The ONNX file.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
    /// Inference failed.
    #[error("inference with model {model} failed: {message}")]
    Inference {
        /// Model name and version.
        model: String,
        /// ONNX Runtime's message.
        message: String,
    },
    /// A model role the build does not configure.
    #[error("build {build} has no model {role:?} (configured: {})", if .available.is_empty() { "none; add a [builds.NAME.models] table".to_string() } else { .available.join(", ") })]
    UnknownModel {
        /// The build.
        build: String,
        /// The role asked for.
        role: String,
        /// Configured roles.
        available: Vec<String>,
    },
    /// All model workers have stopped.
    #[error("model workers stopped: {0}")]
    WorkersGone(String),
}
