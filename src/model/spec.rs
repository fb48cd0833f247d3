//! [`ModelSpec`]: an enhancer model's `model.json`, loaded and checked against the contract
//! (`models/CONTRACT.md`), and the checksum of its ONNX file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::calibration::Calibration;
use super::{read_model_json, sha256_file, Dim, Error, Modality, TensorSpec, NORMALISATION_ID};

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
    #[serde(default)]
    calibration: Option<Calibration>,
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
    /// Probability threshold for calling elements (of the calibrated probability, when the
    /// model is calibrated).
    pub threshold: f64,
    /// The map from logit to probability the runtime applies; `None`: the graph's
    /// `sigmoid(logit)`.
    pub calibration: Option<Calibration>,
    /// Golden files, if any.
    pub golden: Option<GoldenSpec>,
    /// The whole model.json, for reporting.
    pub json: serde_json::Value,
}

/// Input names of enhancer models, in order.
pub const ENHANCER_INPUTS: [&str; 4] = ["sequence", "h3k27ac", "accessibility", "modality_mask"];
/// Output names of enhancer models, in order.
pub const ENHANCER_OUTPUTS: [&str; 3] = ["logit", "probability", "modality_share"];

impl ModelSpec {
    /// Reads `dir/model.json` and checks it against the contract this runtime implements.
    /// Does not read the ONNX file (see [`ModelSpec::verify_checksum`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Spec`] naming the file and the field.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let (path, json) = read_model_json(dir)?;
        let raw: RawSpec = serde_json::from_value(json.clone()).map_err(|source| Error::Json {
            path: path.clone(),
            source,
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
        if let Some(c) = &raw.calibration {
            c.check().map_err(spec_error)?;
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
            calibration: raw.calibration,
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
                Box::new(|j| {
                    j["calibration"] =
                        serde_json::json!({"method": "temperature", "temperature": -1.0})
                }),
                "calibration temperature must be positive, got -1",
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
            crate::model::error::assert_load_error(&err, needle);
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
}
