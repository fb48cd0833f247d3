//! [`OrtPredictor`]: one ONNX Runtime session for an enhancer model, checked against its
//! `model.json` when it loads.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::{Outlet, TensorRef, ValueType};

use crate::error::{chain, context, Cause};
use crate::model::calibration::Calibration;

use super::{
    runtime, Batch, Device, Dim, Error, ModelSpec, Predictions, Predictor, TensorSpec,
    ENHANCER_INPUTS, ENHANCER_OUTPUTS,
};

/// The execution provider a session actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveDevice {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// The CUDA execution provider.
    Cuda,
}

impl fmt::Display for ActiveDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActiveDevice::Cpu => "cpu",
            ActiveDevice::Cuda => "cuda",
        })
    }
}

/// How to build a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Requested device.
    pub device: Device,
    /// ONNX Runtime intra-op threads for this session.
    pub intra_threads: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            device: Device::Auto,
            intra_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// An ONNX Runtime session for one enhancer model.
pub struct OrtPredictor {
    session: Session,
    model: String,
    device: ActiveDevice,
    calibration: Option<Calibration>,
}

impl fmt::Debug for OrtPredictor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrtPredictor")
            .field("model", &self.model)
            .field("device", &self.device)
            .finish()
    }
}

/// Metadata keys the exporter writes, and the model.json value each must equal.
fn expected_metadata(spec: &ModelSpec) -> Vec<(&'static str, String)> {
    vec![
        ("cistrack.name", spec.name.clone()),
        ("cistrack.version", spec.version.clone()),
        ("cistrack.kind", spec.kind.clone()),
        ("cistrack.window", spec.window.length.to_string()),
        ("cistrack.bin_size", spec.window.bin_size.to_string()),
        (
            "cistrack.normalisation",
            super::NORMALISATION_ID.to_string(),
        ),
    ]
}

impl OrtPredictor {
    /// Loads the model: checks the sha256, creates a session on the requested device (falling
    /// back to the CPU with a log line when CUDA does not load) and checks the graph's inputs,
    /// outputs and metadata against `model.json`.
    ///
    /// # Errors
    ///
    /// [`Error::LibraryNotFound`]/[`Error::Library`] (ONNX Runtime), [`Error::Io`],
    /// [`Error::Checksum`], [`Error::Load`] or [`Error::Mismatch`].
    pub fn new(spec: &ModelSpec, options: SessionOptions) -> Result<Self, Error> {
        let (session, device, fallback) =
            open_verified_session(&spec.onnx_path, &spec.sha256, options)?;
        if let Some(reason) = fallback {
            if options.device == Device::Cuda {
                tracing::warn!(model = %spec.id(), "CUDA requested but its execution provider did not load ({reason}); using the CPU");
            } else {
                tracing::info!(model = %spec.id(), "CUDA execution provider not available ({reason}); using the CPU");
            }
        }
        check_session(spec, &session)?;
        OPEN_SESSIONS.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            session,
            model: spec.id(),
            device,
            calibration: spec.calibration.clone(),
        })
    }

    /// Where this session runs.
    pub fn device(&self) -> ActiveDevice {
        self.device
    }
}

impl Drop for OrtPredictor {
    fn drop(&mut self) {
        OPEN_SESSIONS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Enhancer-model sessions ([`OrtPredictor`]s) open in this process.
static OPEN_SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// Enhancer-model sessions open in this process (the daemon's `cistrack_model_sessions`).
pub fn open_sessions() -> usize {
    OPEN_SESSIONS.load(Ordering::Relaxed)
}

/// Reads the ONNX file at `path`, checks its sha256 against `sha256`, and creates a session on
/// the requested device (graph optimisation `all`, `intra_threads` threads). With `Auto` or
/// `Cuda`, a CUDA session is tried first; when it does not load, a CPU session is made and the
/// reason is returned for the caller to log.
///
/// # Errors
///
/// [`Error::LibraryNotFound`]/[`Error::Library`] (ONNX Runtime), [`Error::Io`],
/// [`Error::Checksum`] or [`Error::Load`].
pub(crate) fn open_verified_session(
    path: &std::path::Path,
    sha256: &str,
    options: SessionOptions,
) -> Result<(Session, ActiveDevice, Option<String>), Error> {
    let runtime = runtime::init()?;
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let actual = sha256_bytes(&bytes);
    if actual != sha256 {
        return Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: sha256.to_string(),
            actual,
        });
    }
    let load_error = |e: ort::Error| Error::Load {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let builder = || -> Result<SessionBuilder, Error> {
        Session::builder(&runtime.environment)
            .and_then(|b| {
                b.with_optimization_level(GraphOptimizationLevel::All)
                    .map_err(Into::into)
            })
            .and_then(|b| {
                b.with_intra_threads(options.intra_threads.max(1))
                    .map_err(Into::into)
            })
            .and_then(|b| {
                // Idle intra-op threads sleep instead of spinning: between model calls the same
                // cores read and encode windows (the model workers, annotate's encoder and
                // writer), and spinning threads took their time. On 2 busy cores: annotate on
                // chr22 common SNPs 8.4-10.8 s instead of 11.8-14.9 s, the floor 117-133
                // windows/s instead of 84-100 (benches/README.md).
                b.with_intra_op_spinning(false).map_err(Into::into)
            })
            .map_err(load_error)
    };
    let cpu =
        || -> Result<Session, Error> { builder()?.commit_from_memory(&bytes).map_err(load_error) };
    Ok(match options.device {
        Device::Cpu => (cpu()?, ActiveDevice::Cpu, None),
        Device::Auto | Device::Cuda => match cuda_session(builder()?, &bytes) {
            Ok(session) => (session, ActiveDevice::Cuda, None),
            Err(reason) => (cpu()?, ActiveDevice::Cpu, Some(reason)),
        },
    })
}

/// Tries to create a CUDA session for `spec` without falling back, for `cistrack doctor`.
///
/// # Errors
///
/// Why CUDA is not usable (library, provider or driver message).
pub fn check_cuda(spec: &ModelSpec) -> Result<(), String> {
    let runtime = runtime::init().map_err(|e| chain(&e))?;
    let bytes =
        std::fs::read(&spec.onnx_path).map_err(|e| format!("{}: {e}", spec.onnx_path.display()))?;
    let builder = Session::builder(&runtime.environment).map_err(|e| e.to_string())?;
    cuda_session(builder, &bytes).map(drop)
}

#[cfg(feature = "cuda")]
fn cuda_session(builder: SessionBuilder, bytes: &[u8]) -> Result<Session, String> {
    // Heuristic convolution algorithms: the default exhaustive search benchmarks every cuDNN
    // algorithm again for each new input shape, and a daemon's batches come in many sizes.
    let provider = ort::ep::CUDA::default()
        .with_conv_algorithm_search(ort::ep::cuda::ConvAlgorithmSearch::Heuristic)
        .build()
        .error_on_failure();
    let builder = builder
        .with_execution_providers([provider])
        .map_err(|e| e.to_string())?;
    let mut builder = builder;
    builder.commit_from_memory(bytes).map_err(|e| e.to_string())
}

#[cfg(not(feature = "cuda"))]
fn cuda_session(_builder: SessionBuilder, _bytes: &[u8]) -> Result<Session, String> {
    Err("this cistrack was built without the `cuda` feature".into())
}

/// A borrowed f32 tensor of `shape` over `data`.
pub(crate) fn tensor(shape: Vec<usize>, data: &[f32]) -> ort::Result<TensorRef<'_, f32>> {
    TensorRef::from_array_view((shape, data))
}

fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check_session(spec: &ModelSpec, session: &Session) -> Result<(), Error> {
    let mismatch = |message: String| Error::Mismatch {
        path: spec.onnx_path.clone(),
        message,
    };
    for (what, outlets, declared, names) in [
        (
            "input",
            session.inputs(),
            &spec.inputs,
            &ENHANCER_INPUTS[..],
        ),
        (
            "output",
            session.outputs(),
            &spec.outputs,
            &ENHANCER_OUTPUTS[..],
        ),
    ] {
        let found: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
        if found != names {
            return Err(mismatch(format!(
                "the graph's {what}s are {found:?}, model.json declares {names:?}"
            )));
        }
        check_outlets(what, outlets, declared, &mismatch)?;
    }
    check_metadata(session, expected_metadata(spec), &mismatch)
}

/// The session's inputs or outputs (`what`) against the tensors model.json declares, in order:
/// each an f32 tensor whose shape agrees (fixed dimensions equal, named ones dynamic).
pub(crate) fn check_outlets(
    what: &str,
    outlets: &[Outlet],
    declared: &[TensorSpec],
    mismatch: &dyn Fn(String) -> Error,
) -> Result<(), Error> {
    for (outlet, tensor) in outlets.iter().zip(declared) {
        let ValueType::Tensor { ty, shape, .. } = outlet.dtype() else {
            return Err(mismatch(format!("{what} {} is not a tensor", tensor.name)));
        };
        if ty.to_string() != "f32" {
            return Err(mismatch(format!(
                "{what} {} has element type {ty}, model.json declares {}",
                tensor.name, tensor.dtype
            )));
        }
        let dims: Vec<i64> = shape.iter().copied().collect();
        let agrees = dims.len() == tensor.shape.len()
            && dims.iter().zip(&tensor.shape).all(|(d, s)| match s {
                Dim::Fixed(n) => d == n,
                Dim::Named(_) => *d < 0,
            });
        if !agrees {
            let declared: Vec<String> = tensor.shape.iter().map(ToString::to_string).collect();
            return Err(mismatch(format!(
                "{what} {} has shape {dims:?}, model.json declares [{}]",
                tensor.name,
                declared.join(", ")
            )));
        }
    }
    Ok(())
}

/// The session's custom metadata holds every `(key, value)` of `expected`.
pub(crate) fn check_metadata(
    session: &Session,
    expected: Vec<(&'static str, String)>,
    mismatch: &dyn Fn(String) -> Error,
) -> Result<(), Error> {
    let metadata = session
        .metadata()
        .map_err(|e| mismatch(format!("cannot read metadata: {e}")))?;
    for (key, expected) in expected {
        match metadata.custom(key) {
            Some(value) if value == expected => {}
            Some(value) => {
                return Err(mismatch(format!(
                    "metadata {key} is {value:?}, model.json says {expected:?}"
                )))
            }
            None => {
                return Err(mismatch(format!(
                    "metadata key {key} is missing (expected {expected:?})"
                )))
            }
        }
    }
    Ok(())
}

impl Predictor for OrtPredictor {
    fn predict(&mut self, batch: &Batch) -> Result<Predictions, Error> {
        let n = batch.len();
        if n == 0 {
            return Ok(Predictions::default());
        }
        let (w, b) = (batch.window(), batch.bins());
        let infer_error = |source: Cause| Error::Inference {
            model: self.model.clone(),
            source,
        };
        let inputs = (|| -> Result<_, ort::Error> {
            Ok(ort::inputs![
                "sequence" => tensor(vec![n, 4, w], &batch.sequence[..n * 4 * w])?,
                "h3k27ac" => tensor(vec![n, b], &batch.h3k27ac[..n * b])?,
                "accessibility" => tensor(vec![n, b], &batch.accessibility[..n * b])?,
                "modality_mask" => tensor(vec![n, 3], &batch.modality_mask[..n * 3])?,
            ])
        })()
        .map_err(|e| infer_error(e.into()))?;
        let model = self.model.clone();
        let infer_error = |source: Cause| Error::Inference {
            model: model.clone(),
            source,
        };
        let outputs = self
            .session
            .run(inputs)
            .map_err(|e| infer_error(e.into()))?;
        let extract = |name: &str, per_row: usize| -> Result<Vec<f32>, Error> {
            let (_, data) = outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(|e| infer_error(context(format!("output {name}"), e)))?;
            if data.len() != n * per_row {
                return Err(infer_error(
                    format!("output {name} has {} values for {n} windows", data.len()).into(),
                ));
            }
            Ok(data.to_vec())
        };
        let logit = extract("logit", 1)?;
        let mut probability = extract("probability", 1)?;
        if let Some(c) = &self.calibration {
            let masks = batch.modality_mask[..n * 3].chunks_exact(3);
            for ((p, &z), mask) in probability.iter_mut().zip(&logit).zip(masks) {
                *p = c.apply(z, mask);
            }
        }
        let share = extract("modality_share", 3)?;
        let modality_share = share.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        Ok(Predictions {
            logit,
            probability,
            modality_share,
        })
    }
}
