//! The link model on prepared genes: element embeddings in batches, then the gene graph, then
//! ABC and the E2G score.

use super::*;

impl LinkEngine {
    /// The links of `prepared` genes: the link model's expression and attention (none in
    /// scores-only mode), then ABC and the E2G score.
    pub(super) fn run(
        &self,
        state: &mut State,
        contig: &Contig,
        prepared: Vec<Prepared>,
    ) -> Result<Vec<GeneLinks>, Error> {
        let (expression, attention) = if self.scores_only {
            let c = prepared
                .iter()
                .map(|p| p.candidates.len())
                .max()
                .unwrap_or(0);
            (
                ndarray::Array1::zeros(prepared.len()),
                ndarray::Array2::zeros((prepared.len(), c)),
            )
        } else {
            self.link_model(state, contig, &prepared)?
        };
        self.assemble(contig, prepared, &expression, &attention)
    }

    /// Embeds the one-hot windows of `prepared` (those not embedded yet), runs the gene graph:
    /// predicted expression per gene, attention per gene and attended candidate.
    pub(super) fn link_model(
        &self,
        state: &mut State,
        contig: &Contig,
        prepared: &[Prepared],
    ) -> Result<(ndarray::Array1<f32>, ndarray::Array2<f32>), Error> {
        let dim = state.predictor.embedding_dim();
        // Windows (by centre) that still need the encoder.
        let mut pending: Vec<(u64, Arc<[f32]>)> = Vec::new();
        let mut centres = |centre: u64, seq: &Sequence| {
            if let Sequence::OneHot(s) = seq {
                if !pending.iter().any(|(c, _)| *c == centre) {
                    pending.push((centre, s.clone()));
                }
            }
        };
        for p in prepared {
            centres(p.tss.position0, &p.promoter_sequence);
            for c in &p.candidates {
                centres((c.cand.start0 + c.cand.end0) / 2, &c.sequence);
            }
        }
        let mut embedded: HashMap<u64, Arc<[f32]>> = HashMap::new();
        let windows: Vec<&[f32]> = pending.iter().map(|(_, s)| &s[..]).collect();
        for ((centre, _), e) in pending.iter().zip(self.encode(state, &windows)?) {
            self.keep_embedding(&contig.name, *centre, Some(e.clone()));
            embedded.insert(*centre, e);
        }
        let embedding = |centre: u64, seq: &Sequence| -> Option<Arc<[f32]>> {
            match seq {
                Sequence::Masked => None,
                Sequence::Embedded(e) => Some(e.clone()),
                Sequence::OneHot(_) => embedded.get(&centre).cloned(),
            }
        };
        // The link model sees the attended candidates (the nearest within its reach), which
        // come first in each gene's list.
        let attended = |p: &Prepared| p.candidates.iter().take_while(|c| c.attended).count();
        let c = prepared.iter().map(attended).max().unwrap_or(0).max(1);
        let mut batch = GeneBatch::zeros(prepared.len(), c, dim);
        for (i, p) in prepared.iter().enumerate() {
            if let Some(e) = embedding(p.tss.position0, &p.promoter_sequence) {
                batch.promoter_embedding[i * dim..(i + 1) * dim].copy_from_slice(&e);
                batch.promoter_sequence_mask[i] = 1.0;
            }
            batch.promoter_features[i * 5..(i + 1) * 5].copy_from_slice(&p.promoter_features);
            for (j, cand) in p.candidates.iter().take(attended(p)).enumerate() {
                let slot = i * c + j;
                let centre = (cand.cand.start0 + cand.cand.end0) / 2;
                if let Some(e) = embedding(centre, &cand.sequence) {
                    batch.candidate_embedding[slot * dim..(slot + 1) * dim].copy_from_slice(&e);
                    batch.candidate_sequence_mask[slot] = 1.0;
                }
                batch.candidate_features[slot * 5..(slot + 1) * 5].copy_from_slice(&cand.features);
                batch.candidate_mask[slot] = 1.0;
            }
        }
        state
            .predictor
            .predict_genes(&batch)
            .map_err(|e| Error::Failed(Arc::new(e)))
    }

    /// The encoder's embedding of each one-hot window (4 × sequence length), in batches of
    /// [`EMBED_BATCH`].
    pub(super) fn encode(
        &self,
        state: &mut State,
        windows: &[&[f32]],
    ) -> Result<Vec<Arc<[f32]>>, Error> {
        let length = self.settings.sequence_length;
        let mut out = Vec::with_capacity(windows.len());
        for chunk in windows.chunks(EMBED_BATCH) {
            let one_hot: Vec<f32> = chunk.concat();
            let view = ndarray::ArrayView3::from_shape((chunk.len(), 4, length), &one_hot)
                .map_err(|e| Error::Failed(Arc::new(e)))?;
            let embedded = state
                .predictor
                .encode_elements(view)
                .map_err(|e| Error::Failed(Arc::new(e)))?;
            out.extend(embedded.rows().into_iter().map(|r| r.to_vec().into()));
        }
        Ok(out)
    }

    /// Genes from their prepared inputs and the link model's outputs.
    fn assemble(
        &self,
        contig: &Contig,
        prepared: Vec<Prepared>,
        expression: &ndarray::Array1<f32>,
        attention: &ndarray::Array2<f32>,
    ) -> Result<Vec<GeneLinks>, Error> {
        Ok(prepared
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let links = p
                    .candidates
                    .iter()
                    .enumerate()
                    .map(|(j, cand)| {
                        let activity = (cand.cand.accessibility * cand.cand.h3k27ac).sqrt();
                        let attention = if cand.attended {
                            attention[[i, j]]
                        } else {
                            0.0
                        };
                        Link {
                            element_start: cand.cand.start0,
                            element_end: cand.cand.end0,
                            distance: cand.distance,
                            score: attention,
                            attention,
                            attended: cand.attended,
                            abc_score: 0.0,
                            activity: activity as f32,
                            contact: cand.contact as f32,
                            contact_source: cand.contact_source,
                            tss_between: cand.tss_between,
                        }
                    })
                    .collect();
                let mut gene = GeneLinks {
                    id: p.tss.id.clone(),
                    name: p.tss.name.clone(),
                    contig: contig.name.clone(),
                    tss: p.tss.position0,
                    strand: p.tss.strand,
                    expression: expression[i],
                    promoter_activity: p.promoter_activity as f32,
                    candidates: p.candidates.len(),
                    links,
                };
                let abc = e2g::abc_scores(&gene);
                for (l, abc) in gene.links.iter_mut().zip(abc) {
                    l.abc_score = abc as f32;
                }
                if let Some(model) = &self.e2g {
                    model.score(&mut gene);
                }
                gene
            })
            .collect())
    }
}
