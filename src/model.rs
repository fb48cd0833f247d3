//! Models: the `model.json` contract, input encoding, the ONNX Runtime predictor and workers.
//!
//! The contract between training (Python) and this runtime is `models/CONTRACT.md`.

pub mod e2g;
pub mod encode;
pub mod link;
pub mod onnx;
pub mod runtime;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

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

/// Window geometry from model.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct WindowSpec {
    /// Window length in bases.
    pub length: usize,
    /// Signal bin size in bases.
    pub bin_size: usize,
    /// Number of bins.
    pub bins: usize,
}

#[derive(Debug, Deserialize)]
struct RawSpec {
    schema_version: u32,
    name: String,
    version: String,
    kind: String,
    role: Option<String>,
    description: Option<String>,
    onnx: String,
    sha256: String,
    window: WindowSpec,
    sequence: RawSequence,
    signal: RawSignal,
    modalities: Vec<String>,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    threshold: f64,
    golden: Option<GoldenSpec>,
}

#[derive(Debug, Deserialize)]
struct RawSequence {
    alphabet: String,
    layout: String,
    other_bases: String,
}

#[derive(Debug, Deserialize)]
struct RawSignal {
    normalisation: String,
    clip_max: f64,
}

/// Golden files for the parity tests.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenSpec {
    /// Folder, relative to the model folder.
    pub dir: String,
    /// Window list.
    pub windows: String,
    /// Input arrays by input name.
    pub inputs: BTreeMap<String, String>,
    /// Output arrays by output name.
    pub outputs: BTreeMap<String, String>,
    /// Build config the windows come from, relative to the repository root.
    pub build: String,
    /// Absolute tolerance for outputs.
    pub atol: f64,
}

/// A model described by its `model.json`, checked against the contract.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// The model folder.
    pub dir: PathBuf,
    /// Model name (`enhancer-student`).
    pub name: String,
    /// Model version.
    pub version: String,
    /// Model kind (`enhancer`).
    pub kind: String,
    /// Role (`student`, `teacher`).
    pub role: Option<String>,
    /// One line.
    pub description: Option<String>,
    /// The ONNX file.
    pub onnx_path: PathBuf,
    /// Recorded sha256 of the ONNX file.
    pub sha256: String,
    /// Window geometry.
    pub window: WindowSpec,
    /// Signal clip after log1p.
    pub clip_max: f64,
    /// Declared inputs.
    pub inputs: Vec<TensorSpec>,
    /// Declared outputs.
    pub outputs: Vec<TensorSpec>,
    /// Probability threshold for calling elements.
    pub threshold: f64,
    /// Golden files, if any.
    pub golden: Option<GoldenSpec>,
    /// The whole model.json, for reporting.
    pub json: serde_json::Value,
}

/// Input names of enhancer models, in order.
pub const ENHANCER_INPUTS: [&str; 4] = ["sequence", "h3k27ac", "accessibility", "modality_mask"];
/// Output names of enhancer models, in order.
pub const ENHANCER_OUTPUTS: [&str; 3] = ["logit", "probability", "modality_share"];

/// Reads and parses `dir/model.json` (any kind of model): the file's path and its JSON.
///
/// # Errors
///
/// [`Error::Io`], or [`Error::Spec`] when it is not JSON.
pub fn read_model_json(dir: &Path) -> Result<(PathBuf, serde_json::Value), Error> {
    let path = dir.join("model.json");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let json = serde_json::from_str(&text).map_err(|e| Error::Spec {
        path: path.clone(),
        message: format!("invalid JSON: {e}"),
    })?;
    Ok((path, json))
}

impl ModelSpec {
    /// Reads `dir/model.json` and checks it against the contract this runtime implements.
    /// Does not read the ONNX file (see [`ModelSpec::verify_checksum`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Spec`] naming the file and the field.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let (path, json) = read_model_json(dir)?;
        let raw: RawSpec = serde_json::from_value(json.clone()).map_err(|e| Error::Spec {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let spec_error = |message: String| Error::Spec {
            path: path.clone(),
            message,
        };
        if raw.schema_version != 1 {
            return Err(spec_error(format!(
                "schema_version {} is not supported (this cistrack reads 1)",
                raw.schema_version
            )));
        }
        if raw.kind != "enhancer" {
            return Err(spec_error(format!(
                "model kind {:?} is not supported here (expected \"enhancer\")",
                raw.kind
            )));
        }
        let w = raw.window;
        if w.bin_size == 0 || w.length != w.bins * w.bin_size {
            return Err(spec_error(format!(
                "window length {} is not bins {} x bin_size {}",
                w.length, w.bins, w.bin_size
            )));
        }
        if raw.sequence.alphabet != "ACGT"
            || raw.sequence.layout != "channels_first"
            || raw.sequence.other_bases != "zeros"
        {
            return Err(spec_error(
                "sequence encoding must be alphabet ACGT, layout channels_first, other_bases zeros"
                    .into(),
            ));
        }
        if raw.signal.normalisation != NORMALISATION_ID {
            return Err(spec_error(format!("signal normalisation {:?} is not the one this cistrack implements ({NORMALISATION_ID:?})", raw.signal.normalisation)));
        }
        if !(raw.signal.clip_max.is_finite() && raw.signal.clip_max > 0.0) {
            return Err(spec_error(format!(
                "signal.clip_max must be positive, got {}",
                raw.signal.clip_max
            )));
        }
        let expected_modalities: Vec<&str> = Modality::ALL.iter().map(|m| m.as_str()).collect();
        if raw.modalities != expected_modalities {
            return Err(spec_error(format!(
                "modalities must be {expected_modalities:?}, got {:?}",
                raw.modalities
            )));
        }
        if !(0.0..=1.0).contains(&raw.threshold) {
            return Err(spec_error(format!(
                "threshold must be a probability, got {}",
                raw.threshold
            )));
        }
        if raw.sha256.len() != 64 || !raw.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(spec_error(format!(
                "sha256 {:?} is not 64 hex digits",
                raw.sha256
            )));
        }
        let bins = w.bins as i64;
        let batch = || Dim::Named("batch".into());
        let expected_inputs = [
            (
                "sequence",
                vec![batch(), Dim::Fixed(4), Dim::Fixed(w.length as i64)],
            ),
            ("h3k27ac", vec![batch(), Dim::Fixed(bins)]),
            ("accessibility", vec![batch(), Dim::Fixed(bins)]),
            ("modality_mask", vec![batch(), Dim::Fixed(3)]),
        ];
        let expected_outputs = [
            ("logit", vec![batch()]),
            ("probability", vec![batch()]),
            ("modality_share", vec![batch(), Dim::Fixed(3)]),
        ];
        check_tensors("inputs", &raw.inputs, &expected_inputs).map_err(spec_error)?;
        check_tensors("outputs", &raw.outputs, &expected_outputs).map_err(spec_error)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            onnx_path: dir.join(&raw.onnx),
            name: raw.name,
            version: raw.version,
            kind: raw.kind,
            role: raw.role,
            description: raw.description,
            sha256: raw.sha256.to_ascii_lowercase(),
            window: w,
            clip_max: raw.signal.clip_max,
            inputs: raw.inputs,
            outputs: raw.outputs,
            threshold: raw.threshold,
            golden: raw.golden,
            json,
        })
    }

    /// `name/version`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }

    /// Streams the ONNX file through sha256 and compares with model.json.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Checksum`].
    pub fn verify_checksum(&self) -> Result<(), Error> {
        let actual = sha256_file(&self.onnx_path)?;
        if actual != self.sha256 {
            return Err(Error::Checksum {
                path: self.onnx_path.clone(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

fn check_tensors(
    what: &str,
    found: &[TensorSpec],
    expected: &[(&str, Vec<Dim>)],
) -> Result<(), String> {
    let names: Vec<&str> = found.iter().map(|t| t.name.as_str()).collect();
    let expected_names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    if names != expected_names {
        return Err(format!(
            "{what} must be {expected_names:?} in this order, got {names:?}"
        ));
    }
    for (t, (name, shape)) in found.iter().zip(expected) {
        if t.dtype != "float32" {
            return Err(format!(
                "{what} {name}: dtype must be float32, got {}",
                t.dtype
            ));
        }
        let same = t.shape.len() == shape.len()
            && t.shape.iter().zip(shape).all(|(a, b)| match (a, b) {
                (Dim::Named(_), Dim::Named(_)) => true,
                (a, b) => a == b,
            });
        if !same {
            let show = |s: &[Dim]| {
                format!(
                    "[{}]",
                    s.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(format!(
                "{what} {name}: shape must be {}, got {}",
                show(shape),
                show(&t.shape)
            ));
        }
    }
    Ok(())
}

/// Lower-case hex sha256 of a file.
///
/// # Errors
///
/// [`Error::Io`] naming the file.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let io = |source| Error::Io {
        path: path.into(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A batch of encoded windows in the enhancer models' input layout, reused between calls.
#[derive(Debug, Clone)]
pub struct Batch {
    len: usize,
    keys: Vec<u64>,
    capacity: usize,
    window: usize,
    bins: usize,
    /// `[capacity, 4, window]`, channels A, C, G, T.
    pub sequence: Vec<f32>,
    /// `[capacity, bins]`.
    pub h3k27ac: Vec<f32>,
    /// `[capacity, bins]`.
    pub accessibility: Vec<f32>,
    /// `[capacity, 3]`.
    pub modality_mask: Vec<f32>,
}

/// Mutable views of one row of a [`Batch`].
pub struct RowMut<'a> {
    /// `[4, window]`.
    pub sequence: &'a mut [f32],
    /// `[bins]`.
    pub h3k27ac: &'a mut [f32],
    /// `[bins]`.
    pub accessibility: &'a mut [f32],
    /// `[3]`.
    pub modality_mask: &'a mut [f32],
}

impl Batch {
    /// An empty batch holding up to `capacity` windows of `window` bases and `bins` bins.
    pub fn new(capacity: usize, window: usize, bins: usize) -> Self {
        Self {
            len: 0,
            keys: Vec::with_capacity(capacity),
            capacity,
            window,
            bins,
            sequence: vec![0.0; capacity * 4 * window],
            h3k27ac: vec![0.0; capacity * bins],
            accessibility: vec![0.0; capacity * bins],
            modality_mask: vec![0.0; capacity * 3],
        }
    }

    /// For a model's window geometry.
    pub fn for_spec(spec: &ModelSpec, capacity: usize) -> Self {
        Self::new(capacity, spec.window.length, spec.window.bins)
    }

    /// Windows in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more rows fit.
    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// Maximum rows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Window length in bases.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Bins per window.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Empties the batch (buffers are kept).
    pub fn clear(&mut self) {
        self.len = 0;
        self.keys.clear();
    }

    /// The caller's key of each row, in row order.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// Appends a row with the caller's `key` and returns it for filling (contents are stale
    /// until written).
    ///
    /// # Panics
    ///
    /// When the batch is full.
    pub fn push_row(&mut self, key: u64) -> RowMut<'_> {
        assert!(self.len < self.capacity, "batch is full; this is a bug");
        let i = self.len;
        self.len += 1;
        self.keys.push(key);
        self.row_mut(i)
    }

    /// Row `i` for writing.
    pub fn row_mut(&mut self, i: usize) -> RowMut<'_> {
        let (w, b) = (4 * self.window, self.bins);
        RowMut {
            sequence: &mut self.sequence[i * w..(i + 1) * w],
            h3k27ac: &mut self.h3k27ac[i * b..(i + 1) * b],
            accessibility: &mut self.accessibility[i * b..(i + 1) * b],
            modality_mask: &mut self.modality_mask[i * 3..(i + 1) * 3],
        }
    }

    /// Drops the last row (used when a window turns out not to be scorable).
    pub fn pop_row(&mut self) {
        if self.len > 0 {
            self.len -= 1;
            self.keys.pop();
        }
    }
}

/// Model outputs for a batch, one entry per row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    /// Logits.
    pub logit: Vec<f32>,
    /// Probabilities.
    pub probability: Vec<f32>,
    /// Attention share per modality (sequence, h3k27ac, accessibility).
    pub modality_share: Vec<[f32; 3]>,
}

/// Something that turns a [`Batch`] into [`Predictions`].
///
/// # Why `&mut self`?
///
/// ONNX Runtime's `Session::run` takes `&mut self`; a predictor is owned by one worker thread.
pub trait Predictor: Send {
    /// Runs the model on the first `batch.len()` rows.
    ///
    /// # Errors
    ///
    /// [`Error::Inference`].
    fn predict(&mut self, batch: &Batch) -> Result<Predictions, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_spec(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/enhancer-student/0.1.0/model.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(src).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(
            dir.join("model.json"),
            serde_json::to_string_pretty(&json).unwrap(),
        )
        .unwrap();
        dir.to_path_buf()
    }

    #[test]
    fn test_load_shipped_models() {
        for name in ["enhancer-student", "enhancer-teacher"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models")
                .join(name)
                .join("0.1.0");
            let spec = ModelSpec::load(&dir).unwrap();
            assert_eq!(spec.name, name);
            assert_eq!(
                spec.window,
                WindowSpec {
                    length: 2000,
                    bin_size: 10,
                    bins: 200
                }
            );
            spec.verify_checksum().unwrap();
        }
    }

    #[test]
    fn test_load_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(ModelSpec::load(dir.path()), Err(Error::Io { .. })));
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|j| j["schema_version"] = 2.into()),
                "schema_version 2",
            ),
            (
                Box::new(|j| j["signal"]["normalisation"] = "zscore".into()),
                "normalisation \"zscore\"",
            ),
            (
                Box::new(|j| j["inputs"][0]["name"] = "dna".into()),
                "inputs must be",
            ),
            (
                Box::new(|j| j["inputs"][1]["shape"][1] = 100.into()),
                "inputs h3k27ac: shape must be [batch, 200], got [batch, 100]",
            ),
            (
                Box::new(|j| j["outputs"][0]["dtype"] = "float16".into()),
                "dtype must be float32",
            ),
            (
                Box::new(|j| j["window"]["bins"] = 100.into()),
                "window length",
            ),
            (
                Box::new(|j| j["sha256"] = "abc".into()),
                "not 64 hex digits",
            ),
            (
                Box::new(|j| j["threshold"] = 1.5.into()),
                "threshold must be a probability",
            ),
            (
                Box::new(|j| {
                    j.as_object_mut().unwrap().remove("onnx");
                }),
                "missing field `onnx`",
            ),
        ];
        for (edit, needle) in cases {
            let d = write_spec(dir.path(), edit);
            let err = ModelSpec::load(&d).unwrap_err();
            assert!(matches!(err, Error::Spec { .. }), "{err}");
            assert!(
                err.to_string().contains(needle),
                "{err} should contain {needle}"
            );
        }
    }

    #[test]
    fn test_verify_checksum_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let d = write_spec(dir.path(), |j| j["sha256"] = "0".repeat(64).into());
        std::fs::write(d.join("model.onnx"), b"not the model").unwrap();
        let spec = ModelSpec::load(&d).unwrap();
        let err = spec.verify_checksum().unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
    }

    #[test]
    fn test_batch_rows() {
        let mut b = Batch::new(2, 20, 2);
        assert!(b.is_empty());
        b.push_row(7).h3k27ac[1] = 3.0;
        let row = b.push_row(9);
        row.sequence[79] = 1.0;
        assert!(b.is_full());
        assert_eq!(b.h3k27ac[1], 3.0);
        assert_eq!(b.sequence[2 * 80 - 1], 1.0);
        assert_eq!(b.keys(), [7, 9]);
        b.pop_row();
        assert_eq!((b.len(), b.keys()), (1, &[7][..]));
    }
}
