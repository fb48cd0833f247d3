//! Rust ↔ Python parity for the link model (`models/CONTRACT.md`, "Link models"): ONNX Runtime
//! on the golden inputs of both graphs reproduces PyTorch's outputs at several batch sizes, the
//! per-gene (unpadded) API agrees with the padded one, the all-padding gene stays finite with an
//! all-zero attention row, and the element features recomputed in Rust — from the golden table
//! and from the demo build's bigWigs — equal the Python reference's.
//!
//! The golden files are written by `models/training/src/cistrack_training/link_export.py`.

#[path = "support/helpers.rs"]
mod helpers;

use std::collections::BTreeMap;
use std::path::PathBuf;

use cistrack::io::bbi::SignalTrack;
use cistrack::model::link::{
    powerlaw_contact, ElementFeatures, ElementInput, GeneBatch, GeneInput, LinkPredictor, LinkSpec,
    FEATURES,
};
use cistrack::model::onnx::SessionOptions;
use cistrack::model::Device;
use ndarray::{s, Array1, Array2, Array3, Axis};
use ndarray_npy::read_npy;

/// Every shipped version of the link model.
fn model_dirs() -> Vec<PathBuf> {
    let root = helpers::root().join("models/link-epinformer");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.json").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no link model under {}", root.display());
    dirs
}

struct Golden {
    spec: LinkSpec,
    sequence: Array3<u8>,
    embedding: Array2<f32>,
    promoter_embedding: Array2<f32>,
    promoter_sequence_mask: Array1<f32>,
    promoter_features: Array2<f32>,
    candidate_embedding: Array3<f32>,
    candidate_sequence_mask: Array2<f32>,
    candidate_features: Array3<f32>,
    candidate_mask: Array2<f32>,
    expression: Array1<f32>,
    attention: Array2<f32>,
    atol: f32,
}

/// The golden files of every shipped version.
fn goldens() -> Vec<Golden> {
    model_dirs().iter().map(|d| golden(d)).collect()
}

fn golden(dir: &std::path::Path) -> Golden {
    let spec = LinkSpec::load(dir).unwrap();
    let g = spec
        .golden
        .clone()
        .expect("the shipped link model carries golden files");
    let gdir = dir.join(&g.dir);
    let file = |map: &BTreeMap<String, String>, key: &str| -> PathBuf { gdir.join(&map[key]) };
    let (pi, po) = (&g.predictor.inputs, &g.predictor.outputs);
    Golden {
        sequence: read_npy(file(&g.encoder.inputs, "sequence")).unwrap(),
        embedding: read_npy(file(&g.encoder.outputs, "embedding")).unwrap(),
        promoter_embedding: read_npy(file(pi, "promoter_embedding")).unwrap(),
        promoter_sequence_mask: read_npy(file(pi, "promoter_sequence_mask")).unwrap(),
        promoter_features: read_npy(file(pi, "promoter_features")).unwrap(),
        candidate_embedding: read_npy(file(pi, "candidate_embedding")).unwrap(),
        candidate_sequence_mask: read_npy(file(pi, "candidate_sequence_mask")).unwrap(),
        candidate_features: read_npy(file(pi, "candidate_features")).unwrap(),
        candidate_mask: read_npy(file(pi, "candidate_mask")).unwrap(),
        expression: read_npy(file(po, "expression")).unwrap(),
        attention: read_npy(file(po, "attention")).unwrap(),
        atol: g.atol as f32,
        spec,
    }
}

fn predictor(spec: &LinkSpec) -> LinkPredictor {
    LinkPredictor::new(
        spec,
        SessionOptions {
            device: Device::Cpu,
            intra_threads: 2,
        },
    )
    .unwrap()
}

fn max_abs_diff<'a>(
    a: impl IntoIterator<Item = &'a f32>,
    b: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The golden rows `lo..hi` as a padded batch (the golden padding).
fn golden_batch(g: &Golden, lo: usize, hi: usize) -> GeneBatch {
    let c = g.candidate_mask.ncols();
    let dim = g.spec.embedding_dim;
    let mut b = GeneBatch::zeros(hi - lo, c, dim);
    let flat = |a: ndarray::ArrayViewD<'_, f32>| a.iter().copied().collect::<Vec<f32>>();
    b.promoter_embedding = flat(g.promoter_embedding.slice(s![lo..hi, ..]).into_dyn());
    b.promoter_sequence_mask = flat(g.promoter_sequence_mask.slice(s![lo..hi]).into_dyn());
    b.promoter_features = flat(g.promoter_features.slice(s![lo..hi, ..]).into_dyn());
    b.candidate_embedding = flat(g.candidate_embedding.slice(s![lo..hi, .., ..]).into_dyn());
    b.candidate_sequence_mask = flat(g.candidate_sequence_mask.slice(s![lo..hi, ..]).into_dyn());
    b.candidate_features = flat(g.candidate_features.slice(s![lo..hi, .., ..]).into_dyn());
    b.candidate_mask = flat(g.candidate_mask.slice(s![lo..hi, ..]).into_dyn());
    b
}

/// Golden gene `i` as plain per-gene inputs, without padding.
fn gene_input(g: &Golden, i: usize) -> GeneInput {
    let features = |f: ndarray::ArrayView1<'_, f32>| ElementFeatures {
        distance: f[0],
        contact: f[1],
        activity: f[2],
        accessibility: f[3],
        h3k27ac: f[4],
    };
    let promoter = ElementInput {
        embedding: (g.promoter_sequence_mask[i] == 1.0)
            .then(|| g.promoter_embedding.row(i).to_vec()),
        features: features(g.promoter_features.row(i)),
    };
    let n = g
        .candidate_mask
        .row(i)
        .iter()
        .filter(|&&m| m == 1.0)
        .count();
    let candidates = (0..n)
        .map(|j| ElementInput {
            embedding: (g.candidate_sequence_mask[[i, j]] == 1.0).then(|| {
                g.candidate_embedding
                    .slice(s![i, j, ..])
                    .iter()
                    .copied()
                    .collect()
            }),
            features: features(g.candidate_features.slice(s![i, j, ..])),
        })
        .collect();
    GeneInput {
        promoter,
        candidates,
    }
}

#[test]
fn golden_files_are_complete() {
    for g in goldens() {
        let spec = &g.spec;
        spec.verify_checksums().unwrap();
        let genes = spec.golden.as_ref().unwrap().gene_count;
        let (n, c, d) = (genes, g.candidate_mask.ncols(), spec.embedding_dim);
        assert_eq!(g.sequence.shape()[1..], [4, spec.sequence_length]);
        assert_eq!(g.embedding.shape(), [g.sequence.shape()[0], d]);
        assert_eq!(g.promoter_embedding.shape(), [n, d]);
        assert_eq!(g.promoter_features.shape(), [n, FEATURES]);
        assert_eq!(g.candidate_embedding.shape(), [n, c, d]);
        assert_eq!(g.candidate_features.shape(), [n, c, FEATURES]);
        assert_eq!((g.expression.len(), g.attention.shape()), (n, &[n, c][..]));
        let counts: Vec<usize> = g
            .candidate_mask
            .rows()
            .into_iter()
            .map(|r| r.iter().filter(|&&m| m == 1.0).count())
            .collect();
        assert!(
            counts.contains(&0),
            "an all-padding gene is part of the golden set"
        );
        assert!(
            counts.contains(&spec.features.max_candidates),
            "a gene with the most candidates"
        );
        assert!(
            g.promoter_sequence_mask.sum() + g.candidate_sequence_mask.sum() > 0.0,
            "some golden elements carry real sequence"
        );
        // the all-N window (last) is one-hot all zeros
        let last = g.sequence.index_axis(Axis(0), g.sequence.shape()[0] - 1);
        assert!(last.iter().all(|&v| v == 0));
    }
}

#[test]
fn encoder_matches_pytorch_at_every_batch_size() {
    for g in goldens() {
        let mut p = predictor(&g.spec);
        let seq = g.sequence.mapv(f32::from);
        let n = seq.shape()[0];
        for batch in [1, 7, n] {
            let mut out = Vec::with_capacity(n * g.spec.embedding_dim);
            for lo in (0..n).step_by(batch) {
                let hi = (lo + batch).min(n);
                let e = p.encode_elements(seq.slice(s![lo..hi, .., ..])).unwrap();
                assert_eq!(e.shape(), [hi - lo, g.spec.embedding_dim]);
                out.extend(e.iter().copied());
            }
            let d = max_abs_diff(&out, g.embedding.iter());
            assert!(
                d <= g.atol,
                "encoder at batch {batch} differs from PyTorch by {d} (tolerance {})",
                g.atol
            );
        }
        // a non-contiguous view (every other element) works too
        let strided = seq.slice(s![..;2, .., ..]);
        let e = p.encode_elements(strided).unwrap();
        let expected = g.embedding.slice(s![..;2, ..]);
        assert!(max_abs_diff(e.iter(), expected.iter()) <= g.atol);
        // the golden embeddings are the ones the predictor inputs carry
        assert!(g
            .promoter_embedding
            .rows()
            .into_iter()
            .zip(g.promoter_sequence_mask.iter())
            .filter(|(_, &m)| m == 1.0)
            .all(|(row, _)| g.embedding.rows().into_iter().any(|e| e == row)));
    }
}

#[test]
fn predictor_matches_pytorch_at_every_batch_size() {
    for g in goldens() {
        let mut p = predictor(&g.spec);
        let n = g.expression.len();
        for batch in [1, 7, n] {
            let mut expression = Vec::new();
            let mut attention = Vec::new();
            for lo in (0..n).step_by(batch) {
                let hi = (lo + batch).min(n);
                let (e, a) = p.predict_genes(&golden_batch(&g, lo, hi)).unwrap();
                expression.extend(e.iter().copied());
                attention.extend(a.iter().copied());
            }
            let d = max_abs_diff(&expression, g.expression.iter())
                .max(max_abs_diff(&attention, g.attention.iter()));
            assert!(
                d <= g.atol,
                "predictor at batch {batch} differs from PyTorch by {d} (tolerance {})",
                g.atol
            );
            assert!(expression.iter().chain(&attention).all(|v| v.is_finite()));
        }
    }
}

#[test]
fn per_gene_inputs_match_the_padded_golden_outputs() {
    for g in goldens() {
        let mut p = predictor(&g.spec);
        let n = g.expression.len();
        let genes: Vec<GeneInput> = (0..n).map(|i| gene_input(&g, i)).collect();
        // several batch compositions: each gene alone, then all together (padding differs)
        let mut alone = Vec::new();
        for gene in &genes {
            alone.extend(p.predict(std::slice::from_ref(gene)).unwrap());
        }
        let together = p.predict(&genes).unwrap();
        for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
            let k = genes[i].candidates.len();
            assert_eq!((a.attention.len(), b.attention.len()), (k, k));
            let golden_row = g.attention.slice(s![i, ..k]);
            for pred in [a, b] {
                assert!(
                    (pred.expression - g.expression[i]).abs() <= g.atol,
                    "gene {i}"
                );
                assert!(
                    max_abs_diff(&pred.attention, golden_row.iter()) <= g.atol,
                    "gene {i}"
                );
            }
            if k > 0 {
                let sum: f32 = b.attention.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-4,
                    "gene {i}: attention sums to {sum}"
                );
            }
        }
    }
}

#[test]
fn all_padding_gene_is_finite_with_zero_attention() {
    for g in goldens() {
        let mut p = predictor(&g.spec);
        let i = (0..g.expression.len())
            .find(|&i| g.candidate_mask.row(i).sum() == 0.0)
            .expect("golden genes include one without candidates");
        let gene = gene_input(&g, i);
        assert!(gene.candidates.is_empty());
        let batch =
            GeneBatch::from_genes(std::slice::from_ref(&gene), g.spec.embedding_dim).unwrap();
        assert_eq!(batch.candidates(), 1, "one padded slot");
        let (e, a) = p.predict_genes(&batch).unwrap();
        assert!(e[0].is_finite());
        assert!((e[0] - g.expression[i]).abs() <= g.atol);
        assert_eq!(a.row(0).to_vec(), [0.0]);
        // a whole batch of such genes
        let (e, a) = p
            .predict_genes(&GeneBatch::zeros(5, 3, g.spec.embedding_dim))
            .unwrap();
        assert!(e.iter().all(|v| v.is_finite()));
        assert!(a.iter().all(|&v| v == 0.0));
    }
}

/// One row of `golden/elements.tsv`.
struct Element {
    row: usize,
    slot: Option<usize>,
    chrom: String,
    start0: u32,
    end0: u32,
    distance_bp: u64,
    accessibility_norm: f64,
    h3k27ac_norm: f64,
    is_hic: bool,
    features: [f32; FEATURES],
}

fn elements(spec: &LinkSpec) -> Vec<Element> {
    let g = spec.golden.as_ref().unwrap();
    let text = std::fs::read_to_string(spec.dir.join(&g.dir).join(&g.elements)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(
        header,
        [
            "row",
            "slot",
            "chrom",
            "start0",
            "end0",
            "sequence_start0",
            "distance_bp",
            "encoder_row",
            "accessibility_norm",
            "h3k27ac_norm",
            "is_hic",
            "distance",
            "contact",
            "activity",
            "accessibility",
            "h3k27ac"
        ]
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let mut features = [0.0f32; FEATURES];
            for (k, v) in features.iter_mut().enumerate() {
                *v = f[11 + k].parse().unwrap();
            }
            Element {
                row: f[0].parse().unwrap(),
                slot: (f[1] != "promoter").then(|| f[1].parse().unwrap()),
                chrom: f[2].to_string(),
                start0: f[3].parse().unwrap(),
                end0: f[4].parse().unwrap(),
                distance_bp: f[6].parse().unwrap(),
                accessibility_norm: f[8].parse().unwrap(),
                h3k27ac_norm: f[9].parse().unwrap(),
                is_hic: f[10] == "1",
                features,
            }
        })
        .collect()
}

/// `ElementFeatures::compute` on the golden distances and normalised signals reproduces the
/// Python features, which are also the golden predictor inputs.
#[test]
fn element_features_match_the_python_reference() {
    for g in goldens() {
        let fs = &g.spec.features;
        let rows = elements(&g.spec);
        assert!(rows.len() > g.expression.len());
        for e in &rows {
            let contact = if e.slot.is_none() {
                1.0
            } else if e.is_hic {
                e.features[1] as f64 // Hi-C (training data only) is not recomputed here
            } else {
                powerlaw_contact(e.distance_bp, fs.gamma, fs.min_distance)
            };
            let got = ElementFeatures::compute(
                e.distance_bp,
                contact,
                e.accessibility_norm,
                e.h3k27ac_norm,
            )
            .to_array();
            let d = max_abs_diff(&got, &e.features);
            assert!(
                d <= 2e-6,
                "row {} slot {:?}: {got:?} vs {:?}",
                e.row,
                e.slot,
                e.features
            );
            let input = match e.slot {
                None => g.promoter_features.row(e.row).to_vec(),
                Some(j) => g.candidate_features.slice(s![e.row, j, ..]).to_vec(),
            };
            assert_eq!(input, e.features, "row {} slot {:?}", e.row, e.slot);
            if let Some(j) = e.slot {
                assert!(e.distance_bp <= fs.max_distance && j < fs.max_candidates);
                let mid = (e.start0 as u64 + e.end0 as u64) / 2;
                let tss = rows
                    .iter()
                    .find(|p| p.row == e.row && p.slot.is_none())
                    .map(|p| (p.start0 + p.end0) as u64 / 2)
                    .unwrap();
                assert_eq!(mid.abs_diff(tss), e.distance_bp);
            }
        }
    }
}

/// The daemon's view: the normalised signals of the golden elements read from the demo build's
/// bigWigs (zero-filled mean over the element / the track's mean over covered bases) equal the
/// ones the model was trained with (computed from the read counts).
#[test]
fn element_signals_from_the_demo_bigwigs_match_training() {
    helpers::require_demo_data();
    for g in goldens() {
        let derived = helpers::root().join(".cistrack/derived/hg38");
        let tracks = [
            SignalTrack::open(&derived.join("k562.dnase.candidates.bw")).unwrap(),
            SignalTrack::open(&derived.join("k562.h3k27ac.candidates.bw")).unwrap(),
        ];
        let means: Vec<f64> = tracks.iter().map(|t| t.covered_mean().unwrap()).collect();
        let mut readers: Vec<_> = tracks.iter().map(|t| t.reader().unwrap()).collect();
        let mut nonzero = 0;
        for e in elements(&g.spec) {
            let mut values = vec![0.0f32; (e.end0 - e.start0) as usize];
            let mut norm = [0.0f64; 2];
            for (k, reader) in readers.iter_mut().enumerate() {
                reader
                    .read_into(&e.chrom, e.start0, e.end0, &mut values)
                    .unwrap();
                let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
                norm[k] = mean / means[k];
            }
            for (got, want) in norm.iter().zip([e.accessibility_norm, e.h3k27ac_norm]) {
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{}:{}-{}: {got} vs {want}",
                    e.chrom,
                    e.start0,
                    e.end0
                );
            }
            nonzero += (norm[0] > 0.0) as usize;
        }
        assert!(nonzero > 50, "the golden elements carry real signal");
    }
}
