//! [`Error`]: everything that can go wrong loading or running a model.

use std::path::PathBuf;

use crate::error::Cause;

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
    /// `model.json` is not JSON, or its JSON does not have the fields of its kind of model.
    #[error("{} is not a valid model.json", .path.display())]
    Json {
        /// The model.json.
        path: PathBuf,
        /// serde_json's error, with line and column or the field.
        #[source]
        source: serde_json::Error,
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
    #[error("cannot use ONNX Runtime library {}", .path.display())]
    Library {
        /// The library.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Cause,
    },
    /// ONNX Runtime refused the model.
    #[error("ONNX Runtime cannot load {}", .path.display())]
    Load {
        /// The ONNX file.
        path: PathBuf,
        /// ONNX Runtime's error.
        #[source]
        source: Cause,
    },
    /// Inference failed.
    #[error("inference with model {model} failed")]
    Inference {
        /// Model name and version.
        model: String,
        /// ONNX Runtime's error, or what is wrong with its output.
        #[source]
        source: Cause,
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

/// Test helper for the model.json loaders: a missing field is serde's error (the cause of
/// [`Error::Json`]); a value that parses but makes no sense is the spec's own message
/// ([`Error::Spec`]). Either way the printed chain names the problem (`needle`).
#[cfg(test)]
pub(crate) fn assert_load_error(err: &Error, needle: &str) {
    if needle.starts_with("missing field") {
        assert!(matches!(err, Error::Json { .. }), "{err}");
    } else {
        assert!(matches!(err, Error::Spec { .. }), "{err}");
    }
    let text = crate::error::chain(err);
    assert!(text.contains(needle), "{text} should contain {needle}");
}
