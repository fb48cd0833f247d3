//! A link model's inputs and outputs: one gene's elements ([`GeneInput`], [`ElementInput`]),
//! its prediction ([`GenePrediction`]) and the padded gene-level batch ([`GeneBatch`]).

use super::{ElementFeatures, FEATURES};
use crate::model::Error;

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
    pub(super) genes: usize,
    pub(super) candidates: usize,
    pub(super) dim: usize,
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
            source: format!("{what} embedding has {n} values, the model expects {dim}").into(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(crate::error::chain(&err).contains("3 values"), "{err:?}");
    }
}
