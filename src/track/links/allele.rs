//! What an allele does to the link model: for an allele inside a candidate element, the gene
//! graph of every gene that attends the element, run with the reference sequence and again with
//! the allele applied to every sequence window that holds it (the element's, a neighbour's, the
//! promoter's), so that the attention and the predicted expression are the model's own
//! alt − ref.

use super::*;

/// The link model's response to one allele, for one gene and one element holding the allele.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlleleLink {
    /// Gene id.
    pub gene_id: String,
    /// Gene name (symbol), or the id.
    pub gene_name: String,
    /// TSS, 0-based.
    pub tss: u64,
    /// The element holding the allele: `[start0, end0)`.
    pub element: (u64, u64),
    /// The promoter's attention on the element (normalised over the gene's candidates), with
    /// the reference and with the allele.
    pub attention: (f32, f32),
    /// Predicted expression, log10(1 + TPM), with the reference and with the allele.
    pub expression: (f32, f32),
}

impl AlleleLink {
    /// Attention with the allele minus attention with the reference.
    pub fn attention_delta(&self) -> f32 {
        self.attention.1 - self.attention.0
    }

    /// Predicted expression with the allele minus with the reference.
    pub fn expression_delta(&self) -> f32 {
        self.expression.1 - self.expression.0
    }
}

/// An allele in reference coordinates: `reference_length` bases from `start0` (0-based)
/// replaced by `alternate` (an insertion before `start0` when `reference_length` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlleleEdit<'a> {
    /// First changed base (or insertion point), 0-based.
    pub start0: u64,
    /// Reference bases removed.
    pub reference_length: u64,
    /// Bases inserted.
    pub alternate: &'a [u8],
}

impl AlleleEdit<'_> {
    /// The reference bases the allele touches (an insertion touches the base after it).
    fn touched(&self) -> (u64, u64) {
        (self.start0, self.start0 + self.reference_length.max(1))
    }

    /// The window of `length` bases from `window0` with the allele applied, read from `bases`
    /// (the reference from `lo`, long enough for a deletion to pull bases in from the right):
    /// the window keeps its start, bases after the change shift.
    fn apply(&self, bases: &[u8], lo: u64, window0: u64, length: usize) -> Vec<u8> {
        let s = self.start0.clamp(window0, window0 + length as u64);
        let e = (self.start0 + self.reference_length).max(s);
        let at = |p: u64| (p - lo) as usize;
        let mut out = Vec::with_capacity(length + self.alternate.len());
        out.extend_from_slice(&bases[at(window0)..at(s)]);
        // the part of an allele that starts before the window is left out with it
        let skip = (s - self.start0.min(s)) as usize;
        out.extend_from_slice(&self.alternate[skip.min(self.alternate.len())..]);
        out.extend_from_slice(&bases[at(e).min(bases.len())..]);
        out.resize(length, b'N');
        out
    }
}

impl LinkEngine {
    /// The link model's response to `edit` on `contig`: one entry per gene attending a candidate
    /// element that overlaps the allele and whose sequence the model reads (windows with too
    /// many non-A/C/G/T bases are masked: no entry), in gene then element order. Empty when the
    /// allele is in no candidate, or in scores-only mode.
    ///
    /// # Errors
    ///
    /// Inputs that cannot be read, or a model failure.
    pub fn allele_links(
        &self,
        contig: &Contig,
        edit: AlleleEdit<'_>,
    ) -> Result<Vec<AlleleLink>, Error> {
        let (s, e) = edit.touched();
        if self.scores_only || self.candidates_overlapping(&contig.name, s, e).is_empty() {
            return Ok(Vec::new());
        }
        // kept in the build's cache (memory and disk) under the engine's namespace, which
        // names the model and the build's inputs
        let namespace = format!("{}:alleles", self.namespace);
        let key = format!(
            "{}\t{}\t{}\t{}",
            contig.name,
            edit.start0,
            edit.reference_length,
            String::from_utf8_lossy(edit.alternate)
        );
        let size = |v: &Vec<AlleleLink>| 64 + 96 * v.len();
        if let Some(found) = self.cache.get_record(
            &namespace,
            &key,
            |bytes| serde_json::from_slice::<Vec<AlleleLink>>(bytes).ok(),
            size,
        ) {
            return Ok((*found).clone());
        }
        let links = self.compute_allele_links(contig, edit)?;
        let encoded = serde_json::to_vec(&links).map_err(|e| Error::Failed(Arc::new(e)))?;
        self.cache.put_record(
            &namespace,
            &key,
            Arc::new(links.clone()),
            size(&links),
            Some(encoded),
        );
        Ok(links)
    }

    fn compute_allele_links(
        &self,
        contig: &Contig,
        edit: AlleleEdit<'_>,
    ) -> Result<Vec<AlleleLink>, Error> {
        let (s, e) = edit.touched();
        let overlapping = self.candidates_overlapping(&contig.name, s, e);
        if overlapping.is_empty() || self.scores_only {
            return Ok(Vec::new());
        }
        let length = self.settings.sequence_length as u64;
        let mut state = self.state.lock().map_err(|_| {
            Error::Failed(crate::error::shared(
                "link model state poisoned by an earlier failure",
            ))
        })?;
        let near: Vec<Tss> = self.genes_near(&contig.name, s, e).to_vec();
        // genes attending an overlapping element whose window the model reads
        let mut genes: Vec<(Prepared, Vec<usize>)> = Vec::new();
        for tss in &near {
            let p = self.prepare(&mut state, contig, tss)?;
            let hits: Vec<usize> = p
                .candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    c.attended
                        && !matches!(c.sequence, Sequence::Masked)
                        && overlapping.contains(&(c.cand.start0, c.cand.end0))
                })
                .map(|(j, _)| j)
                .collect();
            if !hits.is_empty() {
                genes.push((p, hits));
            }
        }
        if genes.is_empty() {
            return Ok(Vec::new());
        }
        // every read window (by centre) that holds the allele, with the allele applied
        let holds = |centre: u64| {
            let w0 = centre.saturating_sub(length / 2);
            s < w0 + length && e > w0
        };
        let mut centres: Vec<u64> = Vec::new();
        for (p, _) in &genes {
            let read = |seq: &Sequence| !matches!(seq, Sequence::Masked);
            if read(&p.promoter_sequence) && holds(p.tss.position0) {
                centres.push(p.tss.position0);
            }
            for c in p.candidates.iter().filter(|c| c.attended) {
                let centre = (c.cand.start0 + c.cand.end0) / 2;
                if read(&c.sequence) && holds(centre) {
                    centres.push(centre);
                }
            }
        }
        centres.sort_unstable();
        centres.dedup();
        let alternates = self.alternate_embeddings(&mut state, contig, &edit, &centres)?;
        let swap = |centre: u64, seq: &Sequence| match alternates.get(&centre) {
            Some(Some(e)) => Sequence::Embedded(e.clone()),
            Some(None) => Sequence::Masked,
            None => seq.clone(),
        };
        let (reference, hits): (Vec<Prepared>, Vec<Vec<usize>>) = genes.into_iter().unzip();
        let alternate: Vec<Prepared> = reference
            .iter()
            .map(|p| Prepared {
                tss: p.tss.clone(),
                promoter_features: p.promoter_features,
                promoter_activity: p.promoter_activity,
                promoter_sequence: swap(p.tss.position0, &p.promoter_sequence),
                candidates: p
                    .candidates
                    .iter()
                    .map(|c| PreparedCandidate {
                        sequence: if c.attended {
                            swap((c.cand.start0 + c.cand.end0) / 2, &c.sequence)
                        } else {
                            c.sequence.clone()
                        },
                        ..*c
                    })
                    .collect(),
            })
            .collect();
        let (expression_ref, attention_ref) = self.link_model(&mut state, contig, &reference)?;
        let (expression_alt, attention_alt) = self.link_model(&mut state, contig, &alternate)?;
        let mut out = Vec::new();
        for (i, (p, hits)) in reference.iter().zip(&hits).enumerate() {
            for &j in hits {
                let c = &p.candidates[j];
                out.push(AlleleLink {
                    gene_id: p.tss.id.clone(),
                    gene_name: p.tss.name.clone(),
                    tss: p.tss.position0,
                    element: (c.cand.start0, c.cand.end0),
                    attention: (attention_ref[[i, j]], attention_alt[[i, j]]),
                    expression: (expression_ref[i], expression_alt[i]),
                });
            }
        }
        Ok(out)
    }

    /// Candidate elements of `contig` overlapping `[start0, end0)`.
    fn candidates_overlapping(&self, contig: &str, start0: u64, end0: u64) -> Vec<(u64, u64)> {
        let Some((list, longest)) = self.candidates.get(contig) else {
            return Vec::new();
        };
        let from = list.partition_point(|&(s, _)| s + longest <= start0);
        list[from..]
            .iter()
            .take_while(|&&(s, _)| s < end0)
            .filter(|&&(s, e)| s < end0 && e > start0)
            .copied()
            .collect()
    }

    /// The encoder's embedding of each window (by centre) with `edit` applied; `None` where
    /// the altered window is masked (too many bases not A/C/G/T).
    fn alternate_embeddings(
        &self,
        state: &mut State,
        contig: &Contig,
        edit: &AlleleEdit<'_>,
        centres: &[u64],
    ) -> Result<HashMap<u64, Embedding>, Error> {
        let length = self.settings.sequence_length;
        let mut out = HashMap::new();
        let mut one_hots: Vec<(u64, Vec<f32>)> = Vec::new();
        for &centre in centres {
            let window0 = centre as i64 - (length / 2) as i64;
            // a deletion pulls in bases from the right of the window
            let lo = window0.min(edit.start0 as i64);
            let hi = window0 + (length as u64 + edit.reference_length) as i64;
            let span = self.read_span(state, contig, lo, hi)?;
            // positions before the contig start are N in the span; shift to keep indices >= 0
            let shift = (-lo).max(0) as u64;
            let at = |p: i64| (p + shift as i64) as u64;
            let bases =
                edit_shifted(edit, shift).apply(&span.sequence, at(lo), at(window0), length);
            match self.one_hot(&bases) {
                None => {
                    out.insert(centre, None);
                }
                Some(one_hot) => one_hots.push((centre, one_hot)),
            }
        }
        let windows: Vec<&[f32]> = one_hots.iter().map(|(_, v)| &v[..]).collect();
        for ((centre, _), e) in one_hots.iter().zip(self.encode(state, &windows)?) {
            out.insert(*centre, Some(e));
        }
        Ok(out)
    }
}

/// `edit` with its position moved by `shift` (windows reaching before the contig start).
fn edit_shifted<'a>(edit: &AlleleEdit<'a>, shift: u64) -> AlleleEdit<'a> {
    AlleleEdit {
        start0: edit.start0 + shift,
        ..*edit
    }
}

#[cfg(test)]
mod tests {
    use super::AlleleEdit;

    #[test]
    fn test_apply_keeps_the_window_start() {
        let bases = b"AAAACCCCGGGGTTTT";
        let snv = AlleleEdit {
            start0: 5,
            reference_length: 1,
            alternate: b"T",
        };
        assert_eq!(snv.apply(bases, 0, 2, 8), b"AACTCCGG");
        let deletion = AlleleEdit {
            start0: 4,
            reference_length: 4,
            alternate: b"",
        };
        assert_eq!(deletion.apply(bases, 0, 2, 8), b"AAGGGGTT");
        let insertion = AlleleEdit {
            start0: 4,
            reference_length: 0,
            alternate: b"TTT",
        };
        assert_eq!(insertion.apply(bases, 0, 2, 8), b"AATTTCCC");
        // a deletion starting before the window: what lies inside is removed
        let before = AlleleEdit {
            start0: 0,
            reference_length: 4,
            alternate: b"",
        };
        assert_eq!(before.apply(bases, 0, 2, 8), b"CCCCGGGG");
        // past the bases read: N
        assert_eq!(snv.apply(bases, 0, 12, 8), b"TTTTNNNN");
    }

    #[test]
    fn test_touched() {
        let insertion = AlleleEdit {
            start0: 9,
            reference_length: 0,
            alternate: b"A",
        };
        assert_eq!(insertion.touched(), (9, 10));
    }
}
