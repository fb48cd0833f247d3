//! Enhancer–gene link models (kind `link`, the EPInformer design): a per-element sequence
//! encoder and a per-gene interaction model, two ONNX graphs described by one `model.json`.
//!
//! The daemon encodes each element's 2-kb window once ([`LinkPredictor::encode_elements`]) and
//! caches the embedding; per gene it then fills a [`GeneBatch`] (promoter + up to 60 candidates,
//! padded) and calls [`LinkPredictor::predict_genes`], which returns the predicted expression and
//! the link scores (the promoter's attention over the candidates, normalised per gene). An
//! element without real sequence is passed without an embedding (its sequence mask is 0).
//!
//! The features of an element are defined in `models/CONTRACT.md` ("Link models") and computed
//! by [`ElementFeatures::compute`] from the element's distance to the TSS, its contact and its
//! normalised accessibility and H3K27ac signal.

mod batch;
mod features;
mod graph;
mod predictor;
mod spec;

pub use batch::{ElementInput, GeneBatch, GeneInput, GenePrediction};
pub use features::{
    powerlaw_contact, ElementFeatures, FEATURES, FEATURE_NAMES, FEATURE_NORMALISATION,
};
pub use graph::GraphSpec;
pub use predictor::LinkPredictor;
pub use spec::{FeatureSpec, GoldenGraph, GoldenSpec, LinkSpec};

/// The model kind this module loads.
pub const KIND: &str = "link";
/// Input of the encoder graph.
pub const ENCODER_INPUTS: [&str; 1] = ["sequence"];
/// Output of the encoder graph.
pub const ENCODER_OUTPUTS: [&str; 1] = ["embedding"];
/// Inputs of the gene-level graph, in order.
pub const PREDICTOR_INPUTS: [&str; 7] = [
    "promoter_embedding",
    "promoter_sequence_mask",
    "promoter_features",
    "candidate_embedding",
    "candidate_sequence_mask",
    "candidate_features",
    "candidate_mask",
];
/// Outputs of the gene-level graph, in order.
pub const PREDICTOR_OUTPUTS: [&str; 2] = ["expression", "attention"];

/// Test helpers shared by the submodules' tests.
#[cfg(test)]
mod test_util {
    use std::path::{Path, PathBuf};

    pub(super) fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/link-epinformer/0.1.0")
    }

    /// A copy of the shipped model folder (graphs hard-linked or copied) with `edit` applied to
    /// its model.json.
    pub(super) fn edited_copy(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
        let src = shipped();
        for name in ["encoder.onnx", "predictor.onnx"] {
            std::fs::copy(src.join(name), dir.join(name)).unwrap();
        }
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(src.join("model.json")).unwrap())
                .unwrap();
        edit(&mut json);
        std::fs::write(
            dir.join("model.json"),
            serde_json::to_string_pretty(&json).unwrap(),
        )
        .unwrap();
        dir.to_path_buf()
    }
}
