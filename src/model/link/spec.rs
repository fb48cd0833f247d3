//! [`LinkSpec`]: a link model's `model.json`, loaded and checked against the contract
//! (`models/CONTRACT.md`, "Link models"), and the checksums of its two graphs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::graph::{graph, RawGraph};
use super::{GraphSpec, FEATURES, FEATURE_NAMES, FEATURE_NORMALISATION, KIND};
use crate::model::{read_model_json, sha256_file, Dim, Error};

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
        let (path, json) = read_model_json(dir)?;
        let spec_error = |message: String| Error::Spec {
            path: path.clone(),
            message,
        };
        let raw: RawSpec = serde_json::from_value(json.clone()).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::link::test_util::{edited_copy, shipped};

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
            crate::model::error::assert_load_error(&err, needle);
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
}
