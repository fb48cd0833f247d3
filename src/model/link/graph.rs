//! One ONNX graph of a link model as `model.json` declares it ([`GraphSpec`]), and the checks
//! of its sha256, inputs and outputs.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::{Dim, TensorSpec};

/// One graph of a link model, from model.json.
#[derive(Debug, Clone)]
pub struct GraphSpec {
    /// The ONNX file.
    pub onnx_path: PathBuf,
    /// Its recorded sha256 (lower-case hex).
    pub sha256: String,
    /// Declared inputs.
    pub inputs: Vec<TensorSpec>,
    /// Declared outputs.
    pub outputs: Vec<TensorSpec>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawGraph {
    onnx: String,
    sha256: String,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

pub(super) fn graph(
    dir: &Path,
    what: &str,
    raw: RawGraph,
    inputs: &[(&str, Vec<Dim>)],
    outputs: &[(&str, Vec<Dim>)],
) -> Result<GraphSpec, String> {
    if raw.sha256.len() != 64 || !raw.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "graphs.{what}.sha256 {:?} is not 64 hex digits",
            raw.sha256
        ));
    }
    check_tensors(&format!("graphs.{what}.inputs"), &raw.inputs, inputs)?;
    check_tensors(&format!("graphs.{what}.outputs"), &raw.outputs, outputs)?;
    Ok(GraphSpec {
        onnx_path: dir.join(&raw.onnx),
        sha256: raw.sha256.to_ascii_lowercase(),
        inputs: raw.inputs,
        outputs: raw.outputs,
    })
}

/// Names, dtypes and shapes must match exactly, dynamic dimensions by name.
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
        if &t.shape != shape {
            let show = |s: &[Dim]| {
                let parts: Vec<String> = s.iter().map(ToString::to_string).collect();
                format!("[{}]", parts.join(", "))
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
