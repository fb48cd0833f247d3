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

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayView3};
use ort::session::Session;
use ort::value::TensorRef;
use serde::Deserialize;

use super::onnx::{
    check_metadata, check_outlets, open_verified_session, tensor, ActiveDevice, SessionOptions,
};
use super::{sha256_file, Device, Dim, Error, TensorSpec};

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
/// Per-element features, in input order.
pub const FEATURE_NAMES: [&str; 5] = [
    "distance",
    "contact",
    "activity",
    "accessibility",
    "h3k27ac",
];
/// Number of per-element features.
pub const FEATURES: usize = FEATURE_NAMES.len();
/// The feature normalisation this runtime implements (`features.normalisation` in model.json).
pub const FEATURE_NORMALISATION: &str = "window-mean/track-mean/log1p";

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

/// How candidates are chosen and features computed (model.json `features`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpec {
    /// Candidates whose midpoint is farther than this from the TSS (bp) are not used.
    pub max_distance: u64,
    /// At most this many candidates per gene (the nearest).
    pub max_candidates: usize,
    /// Candidates overlapping `[tss - promoter_exclusion, tss + promoter_exclusion)` are dropped.
    pub promoter_exclusion: u64,
    /// The promoter's signal window is `[tss - promoter_window, tss + promoter_window)`.
    pub promoter_window: u64,
    /// Power-law exponent of the contact feature.
    pub gamma: f64,
    /// Distance (bp) below which the power-law contact is 1.
    pub min_distance: u64,
}

/// Golden inputs/outputs of one graph, file names by tensor name.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenGraph {
    /// Input arrays.
    pub inputs: BTreeMap<String, String>,
    /// Output arrays.
    pub outputs: BTreeMap<String, String>,
}

/// Golden files of a link model (model.json `golden`).
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenSpec {
    /// Folder, relative to the model folder.
    pub dir: String,
    /// Encoder golden files.
    pub encoder: GoldenGraph,
    /// Predictor golden files.
    pub predictor: GoldenGraph,
    /// Gene table.
    pub genes: String,
    /// Element table (coordinates, normalised signals, features).
    pub elements: String,
    /// Number of golden genes.
    pub gene_count: usize,
    /// Absolute tolerance for outputs.
    pub atol: f64,
}

/// A link model described by its `model.json`, checked against the contract.
#[derive(Debug, Clone)]
pub struct LinkSpec {
    /// The model folder.
    pub dir: PathBuf,
    /// Model name (`link-epinformer`).
    pub name: String,
    /// Model version.
    pub version: String,
    /// One line.
    pub description: Option<String>,
    /// The per-element sequence encoder.
    pub encoder: GraphSpec,
    /// The per-gene fusion and interaction graph.
    pub predictor: GraphSpec,
    /// Width of an element embedding.
    pub embedding_dim: usize,
    /// Element window length (bp).
    pub sequence_length: usize,
    /// Candidate selection and feature parameters.
    pub features: FeatureSpec,
    /// Golden files, if any.
    pub golden: Option<GoldenSpec>,
    /// The whole model.json, for reporting.
    pub json: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct RawSpec {
    schema_version: u32,
    name: String,
    version: String,
    kind: String,
    description: Option<String>,
    graphs: RawGraphs,
    embedding_dim: usize,
    sequence: RawSequence,
    features: RawFeatures,
    golden: Option<GoldenSpec>,
}

#[derive(Debug, Deserialize)]
struct RawGraphs {
    encoder: RawGraph,
    predictor: RawGraph,
}

#[derive(Debug, Deserialize)]
struct RawGraph {
    onnx: String,
    sha256: String,
    inputs: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
}

#[derive(Debug, Deserialize)]
struct RawSequence {
    alphabet: String,
    layout: String,
    other_bases: String,
    length: usize,
}

#[derive(Debug, Deserialize)]
struct RawFeatures {
    names: Vec<String>,
    max_distance: u64,
    max_candidates: usize,
    promoter_exclusion: u64,
    promoter_window: u64,
    powerlaw: RawPowerlaw,
    normalisation: String,
}

#[derive(Debug, Deserialize)]
struct RawPowerlaw {
    gamma: f64,
    min_distance: u64,
}

impl LinkSpec {
    /// Reads `dir/model.json` and checks it against the contract this runtime implements.
    /// Does not read the ONNX files (see [`LinkSpec::verify_checksums`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Spec`] naming the file and the field.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use cistrack::model::link::LinkSpec;
    ///
    /// let spec = LinkSpec::load("models/link-epinformer/0.1.0".as_ref())?;
    /// assert_eq!(spec.embedding_dim, 64);
    /// # Ok::<(), cistrack::model::Error>(())
    /// ```
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let (path, json) = super::read_model_json(dir)?;
        let spec_error = |message: String| Error::Spec {
            path: path.clone(),
            message,
        };
        let raw: RawSpec =
            serde_json::from_value(json.clone()).map_err(|e| spec_error(e.to_string()))?;
        if raw.schema_version != 1 {
            return Err(spec_error(format!(
                "schema_version {} is not supported (this cistrack reads 1)",
                raw.schema_version
            )));
        }
        if raw.kind != KIND {
            return Err(spec_error(format!(
                "model kind {:?} is not a link model (expected \"{KIND}\")",
                raw.kind
            )));
        }
        let s = &raw.sequence;
        if s.alphabet != "ACGT" || s.layout != "channels_first" || s.other_bases != "zeros" {
            return Err(spec_error(
                "sequence encoding must be alphabet ACGT, layout channels_first, other_bases zeros"
                    .into(),
            ));
        }
        if s.length == 0 || s.length % 2 != 0 {
            return Err(spec_error(format!(
                "sequence length must be even and positive, got {}",
                s.length
            )));
        }
        if raw.embedding_dim == 0 {
            return Err(spec_error("embedding_dim must be positive".into()));
        }
        let f = &raw.features;
        if f.names != FEATURE_NAMES {
            return Err(spec_error(format!(
                "features.names must be {FEATURE_NAMES:?}, got {:?}",
                f.names
            )));
        }
        if f.normalisation != FEATURE_NORMALISATION {
            return Err(spec_error(format!(
                "feature normalisation {:?} is not the one this cistrack implements ({FEATURE_NORMALISATION:?})",
                f.normalisation
            )));
        }
        if f.max_candidates == 0 || f.max_distance == 0 {
            return Err(spec_error(
                "features.max_candidates and features.max_distance must be positive".into(),
            ));
        }
        if !(f.powerlaw.gamma.is_finite() && f.powerlaw.gamma > 0.0) {
            return Err(spec_error(format!(
                "features.powerlaw.gamma must be positive, got {}",
                f.powerlaw.gamma
            )));
        }
        let d = raw.embedding_dim as i64;
        let l = s.length as i64;
        let fixed = |n: i64| Dim::Fixed(n);
        let named = |n: &str| Dim::Named(n.into());
        let encoder = graph(
            dir,
            "encoder",
            raw.graphs.encoder,
            &[("sequence", vec![named("elements"), fixed(4), fixed(l)])],
            &[("embedding", vec![named("elements"), fixed(d)])],
        )
        .map_err(spec_error)?;
        let (g, c) = (|| named("genes"), || named("candidates"));
        let nf = FEATURES as i64;
        let predictor = graph(
            dir,
            "predictor",
            raw.graphs.predictor,
            &[
                ("promoter_embedding", vec![g(), fixed(d)]),
                ("promoter_sequence_mask", vec![g()]),
                ("promoter_features", vec![g(), fixed(nf)]),
                ("candidate_embedding", vec![g(), c(), fixed(d)]),
                ("candidate_sequence_mask", vec![g(), c()]),
                ("candidate_features", vec![g(), c(), fixed(nf)]),
                ("candidate_mask", vec![g(), c()]),
            ],
            &[("expression", vec![g()]), ("attention", vec![g(), c()])],
        )
        .map_err(spec_error)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            name: raw.name,
            version: raw.version,
            description: raw.description,
            encoder,
            predictor,
            embedding_dim: raw.embedding_dim,
            sequence_length: s.length,
            features: FeatureSpec {
                max_distance: f.max_distance,
                max_candidates: f.max_candidates,
                promoter_exclusion: f.promoter_exclusion,
                promoter_window: f.promoter_window,
                gamma: f.powerlaw.gamma,
                min_distance: f.powerlaw.min_distance,
            },
            golden: raw.golden,
            json,
        })
    }

    /// `name/version`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }

    /// Streams both ONNX files through sha256 and compares with model.json.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Checksum`] for the first graph that differs.
    pub fn verify_checksums(&self) -> Result<(), Error> {
        for g in [&self.encoder, &self.predictor] {
            let actual = sha256_file(&g.onnx_path)?;
            if actual != g.sha256 {
                return Err(Error::Checksum {
                    path: g.onnx_path.clone(),
                    expected: g.sha256.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }
}

fn graph(
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

/// The power-law contact of an element `distance` bp from the TSS, relative to its value at
/// `min_distance`: `((min_distance + 1) / (max(distance, min_distance) + 1)) ^ gamma`.
pub fn powerlaw_contact(distance: u64, gamma: f64, min_distance: u64) -> f64 {
    let d = distance.max(min_distance) as f64;
    ((min_distance as f64 + 1.0) / (d + 1.0)).powf(gamma)
}

/// The five per-element features, in [`FEATURE_NAMES`] order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElementFeatures {
    /// `ln(1 + d / 1000)`, `d` = |midpoint − TSS| in bp.
    pub distance: f32,
    /// Relative contact (1 for the promoter).
    pub contact: f32,
    /// `ln(1 + sqrt(a · h))`.
    pub activity: f32,
    /// `ln(1 + a)`.
    pub accessibility: f32,
    /// `ln(1 + h)`.
    pub h3k27ac: f32,
}

impl ElementFeatures {
    /// Computes the features in f64 and rounds them to f32 (`models/CONTRACT.md`).
    ///
    /// `accessibility` and `h3k27ac` are the element's zero-filled mean signal divided by the
    /// track's mean over covered bases; negative values count as 0. `contact` is
    /// [`powerlaw_contact`] (or a Hi-C value on the same scale).
    ///
    /// # Examples
    ///
    /// ```
    /// use cistrack::model::link::ElementFeatures;
    ///
    /// let promoter = ElementFeatures::compute(0, 1.0, 3.0, 3.0);
    /// assert_eq!(promoter.distance, 0.0);
    /// assert!((promoter.activity - 4f32.ln()).abs() < 1e-6);
    /// ```
    pub fn compute(distance_bp: u64, contact: f64, accessibility: f64, h3k27ac: f64) -> Self {
        let a = accessibility.max(0.0);
        let h = h3k27ac.max(0.0);
        Self {
            distance: (distance_bp as f64 / 1000.0).ln_1p() as f32,
            contact: contact as f32,
            activity: (a * h).sqrt().ln_1p() as f32,
            accessibility: a.ln_1p() as f32,
            h3k27ac: h.ln_1p() as f32,
        }
    }

    /// As an array in input order.
    pub fn to_array(self) -> [f32; FEATURES] {
        [
            self.distance,
            self.contact,
            self.activity,
            self.accessibility,
            self.h3k27ac,
        ]
    }
}

/// One element (promoter or candidate) of a gene.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementInput {
    /// The encoder's embedding of the element's window, `None` when there is no real sequence.
    pub embedding: Option<Vec<f32>>,
    /// The element's features.
    pub features: ElementFeatures,
}

/// One gene's inputs: its promoter and its candidates, nearest first.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneInput {
    /// The promoter (TSS-centred) element.
    pub promoter: ElementInput,
    /// Candidates (at most the model's `max_candidates`).
    pub candidates: Vec<ElementInput>,
}

/// One gene's outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct GenePrediction {
    /// Predicted `log10(1 + TPM)`.
    pub expression: f32,
    /// Link score of each candidate, in input order; sums to 1 (0 values when there are none).
    pub attention: Vec<f32>,
}

/// The gene-level graph's inputs for a batch of genes with padded candidates, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneBatch {
    genes: usize,
    candidates: usize,
    dim: usize,
    /// `[genes, dim]`.
    pub promoter_embedding: Vec<f32>,
    /// `[genes]`.
    pub promoter_sequence_mask: Vec<f32>,
    /// `[genes, FEATURES]`.
    pub promoter_features: Vec<f32>,
    /// `[genes, candidates, dim]`.
    pub candidate_embedding: Vec<f32>,
    /// `[genes, candidates]`.
    pub candidate_sequence_mask: Vec<f32>,
    /// `[genes, candidates, FEATURES]`.
    pub candidate_features: Vec<f32>,
    /// `[genes, candidates]`, 1 for a real candidate, 0 for padding.
    pub candidate_mask: Vec<f32>,
}

impl GeneBatch {
    /// All-zero (all-padding) inputs for `genes` genes with room for `candidates` candidates
    /// each (at least 1: the graph needs a non-empty candidate axis) and embeddings of `dim`.
    pub fn zeros(genes: usize, candidates: usize, dim: usize) -> Self {
        let c = candidates.max(1);
        Self {
            genes,
            candidates: c,
            dim,
            promoter_embedding: vec![0.0; genes * dim],
            promoter_sequence_mask: vec![0.0; genes],
            promoter_features: vec![0.0; genes * FEATURES],
            candidate_embedding: vec![0.0; genes * c * dim],
            candidate_sequence_mask: vec![0.0; genes * c],
            candidate_features: vec![0.0; genes * c * FEATURES],
            candidate_mask: vec![0.0; genes * c],
        }
    }

    /// Packs genes into one batch padded to the largest candidate count.
    ///
    /// # Errors
    ///
    /// [`Error::Inference`] when an embedding does not have `dim` values.
    pub fn from_genes(genes: &[GeneInput], dim: usize) -> Result<Self, Error> {
        let c = genes.iter().map(|g| g.candidates.len()).max().unwrap_or(0);
        let mut batch = Self::zeros(genes.len(), c, dim);
        let c = batch.candidates;
        let bad = |what: String, n: usize| Error::Inference {
            model: "link".into(),
            message: format!("{what} embedding has {n} values, the model expects {dim}"),
        };
        for (i, gene) in genes.iter().enumerate() {
            let p = &gene.promoter;
            batch.promoter_features[i * FEATURES..(i + 1) * FEATURES]
                .copy_from_slice(&p.features.to_array());
            if let Some(e) = &p.embedding {
                if e.len() != dim {
                    return Err(bad(format!("gene {i} promoter"), e.len()));
                }
                batch.promoter_embedding[i * dim..(i + 1) * dim].copy_from_slice(e);
                batch.promoter_sequence_mask[i] = 1.0;
            }
            for (j, cand) in gene.candidates.iter().enumerate() {
                let k = i * c + j;
                batch.candidate_mask[k] = 1.0;
                batch.candidate_features[k * FEATURES..(k + 1) * FEATURES]
                    .copy_from_slice(&cand.features.to_array());
                if let Some(e) = &cand.embedding {
                    if e.len() != dim {
                        return Err(bad(format!("gene {i} candidate {j}"), e.len()));
                    }
                    batch.candidate_embedding[k * dim..(k + 1) * dim].copy_from_slice(e);
                    batch.candidate_sequence_mask[k] = 1.0;
                }
            }
        }
        Ok(batch)
    }

    /// Genes in the batch.
    pub fn genes(&self) -> usize {
        self.genes
    }

    /// Candidate slots per gene (padding included).
    pub fn candidates(&self) -> usize {
        self.candidates
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

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

    fn infer_error(&self, message: String) -> Error {
        Error::Inference {
            model: self.model.clone(),
            message,
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
            return Err(self.infer_error(format!(
                "sequences have shape [{n}, {channels}, {length}], the encoder expects [n, 4, {}]",
                self.sequence_length
            )));
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
            .map_err(|e| self.infer_error(e.to_string()))?;
        let model = self.model.clone();
        let err = |message: String| Error::Inference {
            model: model.clone(),
            message,
        };
        let outputs = self
            .encoder
            .run(ort::inputs!["sequence" => input])
            .map_err(|e| err(e.to_string()))?;
        let (_, values) = outputs["embedding"]
            .try_extract_tensor::<f32>()
            .map_err(|e| err(format!("output embedding: {e}")))?;
        if values.len() != n * self.dim {
            return Err(err(format!(
                "output embedding has {} values for {n} elements",
                values.len()
            )));
        }
        Array2::from_shape_vec((n, self.dim), values.to_vec()).map_err(|e| err(e.to_string()))
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
            return Err(self.infer_error(format!(
                "batch embeddings have {d} values, the model expects {}",
                self.dim
            )));
        }
        if g == 0 {
            return Ok((Array1::zeros(0), Array2::zeros((0, c))));
        }
        let model = self.model.clone();
        let err = |message: String| Error::Inference {
            model: model.clone(),
            message,
        };
        let inputs = (|| -> Result<_, String> {
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
        .map_err(err)?;
        let outputs = self.predictor.run(inputs).map_err(|e| err(e.to_string()))?;
        let extract = |name: &str, len: usize| -> Result<Vec<f32>, Error> {
            let (_, values) = outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(|e| err(format!("output {name}: {e}")))?;
            if values.len() != len {
                return Err(err(format!(
                    "output {name} has {} values, expected {len}",
                    values.len()
                )));
            }
            Ok(values.to_vec())
        };
        let expression = Array1::from(extract("expression", g)?);
        let attention = Array2::from_shape_vec((g, c), extract("attention", g * c)?)
            .map_err(|e| err(e.to_string()))?;
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
            Error::Inference { message, .. } => self.infer_error(message),
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

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/link-epinformer/0.1.0")
    }

    /// A copy of the shipped model folder (graphs hard-linked or copied) with `edit` applied to
    /// its model.json.
    fn edited_copy(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
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

    #[test]
    fn test_load_shipped_model() {
        let spec = LinkSpec::load(&shipped()).unwrap();
        assert_eq!(spec.id(), "link-epinformer/0.1.0");
        assert_eq!((spec.embedding_dim, spec.sequence_length), (64, 2000));
        assert_eq!(
            spec.features,
            FeatureSpec {
                max_distance: 100_000,
                max_candidates: 60,
                promoter_exclusion: 500,
                promoter_window: 500,
                gamma: 1.024238616787792,
                min_distance: 5000,
            }
        );
        assert!(spec.golden.is_some());
        spec.verify_checksums().unwrap();
    }

    #[test]
    fn test_load_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(LinkSpec::load(dir.path()), Err(Error::Io { .. })));
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|j| j["kind"] = "enhancer".into()), "not a link model"),
            (
                Box::new(|j| j["schema_version"] = 2.into()),
                "schema_version 2",
            ),
            (
                Box::new(|j| j["features"]["names"][0] = "dist".into()),
                "features.names must be",
            ),
            (
                Box::new(|j| j["features"]["normalisation"] = "zscore".into()),
                "feature normalisation \"zscore\"",
            ),
            (
                Box::new(|j| j["graphs"]["encoder"]["inputs"][0]["shape"][2] = 1000.into()),
                "graphs.encoder.inputs sequence: shape must be [elements, 4, 2000], got [elements, 4, 1000]",
            ),
            (
                Box::new(|j| j["graphs"]["predictor"]["outputs"][1]["shape"][1] = "c".into()),
                "graphs.predictor.outputs attention: shape must be [genes, candidates]",
            ),
            (
                Box::new(|j| {
                    let inputs = j["graphs"]["predictor"]["inputs"].as_array_mut().unwrap();
                    inputs.swap(0, 1);
                }),
                "graphs.predictor.inputs must be",
            ),
            (
                Box::new(|j| j["graphs"]["predictor"]["sha256"] = "abc".into()),
                "not 64 hex digits",
            ),
            (
                Box::new(|j| j["sequence"]["other_bases"] = "uniform".into()),
                "sequence encoding",
            ),
            (
                Box::new(|j| {
                    j.as_object_mut().unwrap().remove("graphs");
                }),
                "missing field `graphs`",
            ),
        ];
        for (edit, needle) in cases {
            let d = edited_copy(dir.path(), edit);
            let err = LinkSpec::load(&d).unwrap_err();
            assert!(matches!(err, Error::Spec { .. }), "{err}");
            assert!(
                err.to_string().contains(needle),
                "{err} should contain {needle}"
            );
        }
    }

    #[test]
    fn test_verify_checksums_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let d = edited_copy(dir.path(), |_| {});
        LinkSpec::load(&d).unwrap().verify_checksums().unwrap();
        std::fs::write(d.join("predictor.onnx"), b"not the graph").unwrap();
        let err = LinkSpec::load(&d).unwrap().verify_checksums().unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
    }

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

    #[test]
    fn test_powerlaw_contact() {
        let gamma = 1.024238616787792;
        assert_eq!(powerlaw_contact(0, gamma, 5000), 1.0);
        assert_eq!(powerlaw_contact(5000, gamma, 5000), 1.0);
        let c = powerlaw_contact(100_000, gamma, 5000);
        let expected = (5001.0f64 / 100_001.0).powf(gamma);
        assert!((c - expected).abs() < 1e-15, "{c} vs {expected}");
        assert!(powerlaw_contact(50_000, gamma, 5000) > c);
    }

    #[test]
    fn test_element_features_compute() {
        let f = ElementFeatures::compute(2500, 0.5, 4.0, 1.0);
        assert!((f.distance - 3.5f64.ln() as f32).abs() < 1e-7);
        assert_eq!(f.contact, 0.5);
        assert!((f.activity - 3f64.ln() as f32).abs() < 1e-7);
        assert!((f.accessibility - 5f64.ln() as f32).abs() < 1e-7);
        assert!((f.h3k27ac - 2f64.ln() as f32).abs() < 1e-7);
        // negative signal counts as 0
        let z = ElementFeatures::compute(0, 1.0, -2.0, 3.0);
        assert_eq!((z.activity, z.accessibility), (0.0, 0.0));
        assert_eq!(f.to_array()[1], 0.5);
    }

    fn element(value: f32, embedding: Option<Vec<f32>>) -> ElementInput {
        ElementInput {
            embedding,
            features: ElementFeatures::compute(1000, 1.0, value as f64, 1.0),
        }
    }

    #[test]
    fn test_gene_batch_from_genes_pads() {
        let genes = vec![
            GeneInput {
                promoter: element(1.0, Some(vec![1.0, 2.0])),
                candidates: vec![element(2.0, None), element(3.0, Some(vec![5.0, 6.0]))],
            },
            GeneInput {
                promoter: element(4.0, None),
                candidates: vec![],
            },
        ];
        let b = GeneBatch::from_genes(&genes, 2).unwrap();
        assert_eq!((b.genes(), b.candidates(), b.dim()), (2, 2, 2));
        assert_eq!(b.promoter_embedding, [1.0, 2.0, 0.0, 0.0]);
        assert_eq!(b.promoter_sequence_mask, [1.0, 0.0]);
        assert_eq!(b.candidate_mask, [1.0, 1.0, 0.0, 0.0]);
        assert_eq!(b.candidate_sequence_mask, [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(&b.candidate_embedding[2..4], [5.0, 6.0]);
        assert_eq!(b.candidate_features.len(), 2 * 2 * FEATURES);
        assert_eq!(
            &b.candidate_features[FEATURES..2 * FEATURES],
            genes[0].candidates[1].features.to_array()
        );
        assert!(b.candidate_features[2 * FEATURES..]
            .iter()
            .all(|&v| v == 0.0));
    }

    #[test]
    fn test_gene_batch_never_has_an_empty_candidate_axis() {
        let genes = vec![GeneInput {
            promoter: element(1.0, None),
            candidates: vec![],
        }];
        let b = GeneBatch::from_genes(&genes, 3).unwrap();
        assert_eq!(b.candidates(), 1);
        assert_eq!(b.candidate_mask, [0.0]);
    }

    #[test]
    fn test_gene_batch_rejects_wrong_embedding_width() {
        let genes = vec![GeneInput {
            promoter: element(1.0, Some(vec![1.0; 3])),
            candidates: vec![],
        }];
        let err = GeneBatch::from_genes(&genes, 2).unwrap_err();
        assert!(matches!(err, Error::Inference { .. }), "{err}");
        assert!(err.to_string().contains("3 values"), "{err}");
    }
}
