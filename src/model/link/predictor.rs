//! [`LinkPredictor`]: the two ONNX Runtime sessions of a link model, checked against its
//! `model.json` when they load.

use std::fmt;

use ndarray::{Array1, Array2, ArrayView3};
use ort::session::Session;
use ort::value::TensorRef;

use super::{
    GeneBatch, GeneInput, GenePrediction, GraphSpec, LinkSpec, FEATURES, FEATURE_NAMES, KIND,
};
use crate::error::{context, Cause};
use crate::model::onnx::{
    check_metadata, check_outlets, open_verified_session, tensor, ActiveDevice, SessionOptions,
};
use crate::model::{Device, Error};

/// Two ONNX Runtime sessions (encoder and gene model) for one link model.
pub struct LinkPredictor {
    encoder: Session,
    predictor: Session,
    model: String,
    dim: usize,
    sequence_length: usize,
    device: ActiveDevice,
}

impl fmt::Debug for LinkPredictor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkPredictor")
            .field("model", &self.model)
            .field("device", &self.device)
            .finish()
    }
}

impl LinkPredictor {
    /// Loads both graphs: checks their sha256, creates the sessions on the requested device
    /// (CPU fallback when CUDA does not load) and checks each graph's inputs, outputs and
    /// metadata against `model.json`.
    ///
    /// # Errors
    ///
    /// [`Error::LibraryNotFound`]/[`Error::Library`] (ONNX Runtime), [`Error::Io`],
    /// [`Error::Checksum`], [`Error::Load`] or [`Error::Mismatch`].
    pub fn new(spec: &LinkSpec, options: SessionOptions) -> Result<Self, Error> {
        let (encoder, device) = open_session(spec, &spec.encoder, "encoder", options)?;
        let (predictor, _) = open_session(spec, &spec.predictor, "predictor", options)?;
        Ok(Self {
            encoder,
            predictor,
            model: spec.id(),
            dim: spec.embedding_dim,
            sequence_length: spec.sequence_length,
            device,
        })
    }

    /// Where the sessions run.
    pub fn device(&self) -> ActiveDevice {
        self.device
    }

    /// Embedding width.
    pub fn embedding_dim(&self) -> usize {
        self.dim
    }

    fn infer_error(&self, source: Cause) -> Error {
        Error::Inference {
            model: self.model.clone(),
            source,
        }
    }

    /// Embeds one-hot element windows `[n, 4, sequence_length]` (channels A, C, G, T; other
    /// bases all zeros) into `[n, embedding_dim]`.
    ///
    /// # Errors
    ///
    /// [`Error::Inference`] on a wrong shape or when ONNX Runtime fails.
    pub fn encode_elements(
        &mut self,
        sequences: ArrayView3<'_, f32>,
    ) -> Result<Array2<f32>, Error> {
        let (n, channels, length) = sequences.dim();
        if channels != 4 || length != self.sequence_length {
            return Err(self.infer_error(
                format!(
                    "sequences have shape [{n}, {channels}, {length}], the encoder expects [n, 4, {}]",
                    self.sequence_length
                )
                .into(),
            ));
        }
        if n == 0 {
            return Ok(Array2::zeros((0, self.dim)));
        }
        let owned;
        let data = match sequences.as_slice() {
            Some(s) => s,
            None => {
                owned = sequences.as_standard_layout().into_owned();
                owned.as_slice().expect("standard layout; this is a bug")
            }
        };
        let input = TensorRef::from_array_view((vec![n, 4, length], data))
            .map_err(|e| self.infer_error(e.into()))?;
        let model = self.model.clone();
        let err = |source: Cause| Error::Inference {
            model: model.clone(),
            source,
        };
        let outputs = self
            .encoder
            .run(ort::inputs!["sequence" => input])
            .map_err(|e| err(e.into()))?;
        let (_, values) = outputs["embedding"]
            .try_extract_tensor::<f32>()
            .map_err(|e| err(context("output embedding", e)))?;
        if values.len() != n * self.dim {
            return Err(err(format!(
                "output embedding has {} values for {n} elements",
                values.len()
            )
            .into()));
        }
        Array2::from_shape_vec((n, self.dim), values.to_vec()).map_err(|e| err(e.into()))
    }

    /// Runs the gene model on a padded batch: expression `[genes]` and attention
    /// `[genes, candidates]` (0 at padding; each gene's row sums to 1 over its candidates, or
    /// is all 0 when it has none).
    ///
    /// # Errors
    ///
    /// [`Error::Inference`] on a wrong embedding width or when ONNX Runtime fails.
    pub fn predict_genes(
        &mut self,
        batch: &GeneBatch,
    ) -> Result<(Array1<f32>, Array2<f32>), Error> {
        let (g, c, d) = (batch.genes, batch.candidates, batch.dim);
        if d != self.dim {
            return Err(self.infer_error(
                format!(
                    "batch embeddings have {d} values, the model expects {}",
                    self.dim
                )
                .into(),
            ));
        }
        if g == 0 {
            return Ok((Array1::zeros(0), Array2::zeros((0, c))));
        }
        let model = self.model.clone();
        let err = |source: Cause| Error::Inference {
            model: model.clone(),
            source,
        };
        let inputs = (|| -> Result<_, ort::Error> {
            Ok(ort::inputs![
                "promoter_embedding" => tensor(vec![g, d], &batch.promoter_embedding)?,
                "promoter_sequence_mask" => tensor(vec![g], &batch.promoter_sequence_mask)?,
                "promoter_features" => tensor(vec![g, FEATURES], &batch.promoter_features)?,
                "candidate_embedding" => tensor(vec![g, c, d], &batch.candidate_embedding)?,
                "candidate_sequence_mask" => tensor(vec![g, c], &batch.candidate_sequence_mask)?,
                "candidate_features" => tensor(vec![g, c, FEATURES], &batch.candidate_features)?,
                "candidate_mask" => tensor(vec![g, c], &batch.candidate_mask)?,
            ])
        })()
        .map_err(|e| err(e.into()))?;
        let outputs = self.predictor.run(inputs).map_err(|e| err(e.into()))?;
        let extract = |name: &str, len: usize| -> Result<Vec<f32>, Error> {
            let (_, values) = outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(|e| err(context(format!("output {name}"), e)))?;
            if values.len() != len {
                return Err(err(format!(
                    "output {name} has {} values, expected {len}",
                    values.len()
                )
                .into()));
            }
            Ok(values.to_vec())
        };
        let expression = Array1::from(extract("expression", g)?);
        let attention = Array2::from_shape_vec((g, c), extract("attention", g * c)?)
            .map_err(|e| err(e.into()))?;
        Ok((expression, attention))
    }

    /// Convenience: packs `genes` ([`GeneBatch::from_genes`]), runs [`Self::predict_genes`] and
    /// unpads the attention of each gene.
    ///
    /// # Errors
    ///
    /// As [`Self::predict_genes`].
    pub fn predict(&mut self, genes: &[GeneInput]) -> Result<Vec<GenePrediction>, Error> {
        let batch = GeneBatch::from_genes(genes, self.dim).map_err(|e| match e {
            Error::Inference { source, .. } => self.infer_error(source),
            other => other,
        })?;
        let (expression, attention) = self.predict_genes(&batch)?;
        Ok(genes
            .iter()
            .enumerate()
            .map(|(i, gene)| GenePrediction {
                expression: expression[i],
                attention: attention
                    .row(i)
                    .iter()
                    .take(gene.candidates.len())
                    .copied()
                    .collect(),
            })
            .collect())
    }
}

fn open_session(
    spec: &LinkSpec,
    graph: &GraphSpec,
    name: &str,
    options: SessionOptions,
) -> Result<(Session, ActiveDevice), Error> {
    let (session, device, fallback) =
        open_verified_session(&graph.onnx_path, &graph.sha256, options)?;
    if let Some(reason) = fallback {
        if options.device == Device::Cuda {
            tracing::warn!(model = %spec.id(), graph = name, "CUDA requested but its execution provider did not load ({reason}); using the CPU");
        } else {
            tracing::debug!(model = %spec.id(), graph = name, "CUDA execution provider not available ({reason}); using the CPU");
        }
    }
    check_session(spec, graph, name, &session)?;
    Ok((session, device))
}

/// Metadata keys the exporter writes into both graphs, with the value each must have.
fn expected_metadata(spec: &LinkSpec, graph: &str) -> Vec<(&'static str, String)> {
    vec![
        ("cistrack.name", spec.name.clone()),
        ("cistrack.version", spec.version.clone()),
        ("cistrack.kind", KIND.to_string()),
        ("cistrack.graph", graph.to_string()),
        ("cistrack.sequence_length", spec.sequence_length.to_string()),
        ("cistrack.embedding_dim", spec.embedding_dim.to_string()),
        ("cistrack.features", FEATURE_NAMES.join(",")),
    ]
}

fn check_session(
    spec: &LinkSpec,
    graph: &GraphSpec,
    name: &str,
    session: &Session,
) -> Result<(), Error> {
    let mismatch = |message: String| Error::Mismatch {
        path: graph.onnx_path.clone(),
        message,
    };
    for (what, outlets, declared) in [
        ("input", session.inputs(), &graph.inputs),
        ("output", session.outputs(), &graph.outputs),
    ] {
        let found: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
        let names: Vec<&str> = declared.iter().map(|t| t.name.as_str()).collect();
        if found != names {
            return Err(mismatch(format!(
                "the {name} graph's {what}s are {found:?}, model.json declares {names:?}"
            )));
        }
        check_outlets(what, outlets, declared, &mismatch)?;
    }
    check_metadata(session, expected_metadata(spec, name), &mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::link::test_util::edited_copy;

    #[test]
    fn test_new_rejects_graph_that_disagrees_with_model_json() {
        // the two graphs swapped (with their checksums): the sessions load, the checks refuse
        let dir = tempfile::tempdir().unwrap();
        let d = edited_copy(dir.path(), |j| {
            let (e, p) = (
                j["graphs"]["encoder"].clone(),
                j["graphs"]["predictor"].clone(),
            );
            for key in ["onnx", "sha256"] {
                j["graphs"]["encoder"][key] = p[key].clone();
                j["graphs"]["predictor"][key] = e[key].clone();
            }
        });
        let spec = LinkSpec::load(&d).unwrap();
        let options = SessionOptions {
            device: Device::Cpu,
            intra_threads: 1,
        };
        let err = LinkPredictor::new(&spec, options).unwrap_err();
        assert!(matches!(err, Error::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("encoder graph's inputs"), "{err}");
    }
}
