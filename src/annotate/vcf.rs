//! VCF annotation: the header lines cistrack adds, how each record is checked and turned into
//! model windows, and how its INFO column is written.
//!
//! # Output
//!
//! Only the INFO column changes (`.` is replaced; otherwise the new fields are appended after
//! `;`), so the annotated file minus the new fields and header lines equals the input, byte for
//! byte. The header gains, before the `#CHROM` line:
//!
//! ```text
//! ##INFO=<ID=CISTRACK,Number=.,Type=String,Description="...">
//! ##INFO=<ID=CISTRACK_SKIP,Number=.,Type=String,Description="...">
//! ##cistrack_version=0.1.0
//! ##cistrack_build=hg38
//! ##cistrack_model=enhancer-student/0.2.0
//! ##cistrack_model_sha256=72f610cb...
//! ##cistrack_command=cistrack --config examples/hg38.toml annotate -i calls.vcf.gz
//! ```
//!
//! `CISTRACK` has one entry per ALT, in ALT order (as SpliceAI's `SpliceAI` field):
//! `ALT|ref_prob|alt_prob|delta|ref_logit|alt_logit|nearest_gene|gene_distance|linked_gene|link_score|delta_percentile`,
//! numbers with 4 decimals, `delta = alt_prob - ref_prob`, `delta_percentile` the rank of
//! |delta| among the variant background's (see [`super::variant_background`]), `.` without one.
//! With a motif file, `CISTRACK_MOTIFS` lists motifs gained or lost (see [`motifs`]). An ALT that could not be scored has `.` for its
//! five numbers. `CISTRACK_SKIP` says why: one value for the record when the reason concerns
//! the whole record (`invalid_allele`, `no_alt`, `unknown_contig`, `out_of_bounds`,
//! `ref_mismatch`), else one per
//! ALT in ALT order with `.` for scored ALTs (`symbolic_allele`, `breakend`, `star_allele`,
//! `allele_too_long`, `all_n`). A record with no scored ALT gets `CISTRACK_SKIP` only.
//!
//! # Checks, in order (the first that applies decides)
//!
//! 0. `invalid_allele` (REF not a base string, or an ALT of no VCF kind, e.g. `X`);
//! 1. `no_alt` (ALT is `.`); 2. `unknown_contig`; 3. `out_of_bounds` (POS 0, or REF past the
//!    contig end);
//! 4. per ALT: `star_allele`, `symbolic_allele`, `breakend`, `allele_too_long` (more than half
//!    the window changes), `all_n` (its reference or alternate window has no A/C/G/T);
//!    when no ALT is left, the record carries these per-ALT reasons;
//! 5. `ref_mismatch` when REF differs from the FASTA (the REF check runs for every record on a
//!    known contig and is counted in the summary even when step 4 decided);
//! 6. the remaining ALTs are scored.
//!
//! # Signals
//!
//! Both windows of an ALT get the H3K27ac and accessibility bins of the *reference* window:
//! the measured chromatin is the reference sample's, so `delta` is the effect of the sequence
//! change alone.

use std::fmt::Write as _;

use crate::genome::build::{InputReader, Span};
use crate::genome::{Build, Contig};
use crate::io::text::Ending;
use crate::io::vcf::{Allele, Record};
use crate::model::encode::Normaliser;
use crate::model::ModelSpec;
use crate::pipeline::inputs::normalisers;

use super::genes::NearestGenes;
use super::linker::{LinkedGene, Linker};
use super::reference::ReferenceCache;
use super::scorer::{reference_bins, Prediction, SignalBins, WindowScorer};
use std::sync::Arc;

use crate::motif::{MotifChange, MotifSet};
use crate::pipeline::background::Background;

use super::variant::{check_reference, count_bases, left_align, trim, RefCheck};
use super::{decimal4, sanitize, Error, Reason, Summary};

/// The INFO field with the scores.
pub const INFO_ID: &str = "CISTRACK";
/// The INFO field with the reasons for not scoring.
pub const SKIP_ID: &str = "CISTRACK_SKIP";

/// What happened to one ALT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Scored: window ids of the reference and the alternate window.
    Scored { reference: u64, alternate: u64 },
    /// Not scored.
    Skipped(Reason),
}

/// A record waiting for its window scores.
#[derive(Debug)]
pub struct Pending {
    record: Record,
    ending: Ending,
    record_reason: Option<Reason>,
    alleles: Vec<Outcome>,
    gene: Option<(String, i64)>,
    link: LinkedGene,
    ref_check: Option<RefCheck>,
    /// The `CISTRACK_MOTIFS` entries (empty when no ALT changes a motif).
    motif_entries: String,
    /// The `CISTRACK_LINKS` entries, computed by the collector.
    link_effects: LinkEffects,
    /// |delta| of random substitutions, for percentiles.
    variant_background: Option<Arc<Background>>,
}

impl Pending {
    /// The record's linked gene, for the collector to look up before [`Pending::write`].
    pub fn link_mut(&mut self) -> &mut LinkedGene {
        &mut self.link
    }

    /// The record's link consequences, for the collector to compute before [`Pending::write`].
    pub fn link_effects_mut(&mut self) -> &mut LinkEffects {
        &mut self.link_effects
    }

    /// Appends the record's `--links-bed` lines (see [`links::BED_HEADER`]) to `out`.
    pub fn links_bed(&self, out: &mut String) {
        let id = self.record.line().split('\t').nth(2).unwrap_or(".");
        self.link_effects.bed_lines(id, self.record.position(), out);
    }

    /// Appends the annotated line to `out`, with `results` holding the predictions of the
    /// record's windows (ids from `first_id`), and counts it in `summary`.
    ///
    /// # Panics
    ///
    /// When a scored ALT's result is missing (the collector writes complete records only).
    pub fn write(
        &self,
        first_id: u64,
        results: &[Option<Prediction>],
        out: &mut String,
        summary: &mut Summary,
    ) {
        summary.records += 1;
        match self.ref_check {
            Some(RefCheck::Match) => summary.reference.matched += 1,
            Some(RefCheck::Mismatch { at_n }) => {
                summary.reference.mismatched += 1;
                summary.reference.mismatched_at_n += u64::from(at_n);
            }
            None => {}
        }
        let mut fields = String::new();
        if let Some(reason) = self.record_reason {
            summary.passed_through += 1;
            *summary.skipped.entry(reason).or_default() +=
                self.record.alternate_count().max(1) as u64;
            let _ = write!(fields, "{SKIP_ID}={reason}");
        } else {
            let scored = self
                .alleles
                .iter()
                .filter(|o| matches!(o, Outcome::Scored { .. }))
                .count();
            summary.alleles_scored += scored as u64;
            if scored > 0 {
                summary.scored += 1;
            } else {
                summary.passed_through += 1;
            }
            for outcome in &self.alleles {
                if let Outcome::Skipped(reason) = outcome {
                    *summary.skipped.entry(*reason).or_default() += 1;
                }
            }
            let (gene, distance) = match &self.gene {
                Some((name, distance)) => (name.as_str(), distance.to_string()),
                None => (".", ".".to_string()),
            };
            let (linked, link_score) = match self.link.get() {
                Some((name, score)) => (name.as_str(), decimal4(*score as f64)),
                None => (".", ".".to_string()),
            };
            if scored > 0 {
                fields.push_str(INFO_ID);
                fields.push('=');
                let alternates = self.record.alternate_text().split(',');
                for (i, (outcome, alt)) in self.alleles.iter().zip(alternates).enumerate() {
                    if i > 0 {
                        fields.push(',');
                    }
                    match *outcome {
                        Outcome::Scored {
                            reference,
                            alternate,
                        } => {
                            let get = |id: u64| {
                                results[(id - first_id) as usize]
                                    .expect("a complete record has every result; this is a bug")
                            };
                            let (r, a) = (get(reference), get(alternate));
                            // ranked as written (4 decimals), as the background was
                            let delta = decimal4(a.probability as f64 - r.probability as f64);
                            let percentile = self
                                .variant_background
                                .as_ref()
                                .zip(delta.parse::<f32>().ok())
                                .and_then(|(b, d)| b.percentile(d.abs()))
                                .map_or_else(|| ".".to_string(), |p| format!("{p:.2}"));
                            let _ = write!(
                                fields,
                                "{alt}|{}|{}|{}|{}|{}|{gene}|{distance}|{linked}|{link_score}|{percentile}",
                                decimal4(r.probability as f64),
                                decimal4(a.probability as f64),
                                delta,
                                decimal4(r.logit as f64),
                                decimal4(a.logit as f64),
                            );
                        }
                        Outcome::Skipped(_) => {
                            let _ = write!(
                                fields,
                                "{alt}|.|.|.|.|.|{gene}|{distance}|{linked}|{link_score}|."
                            );
                        }
                    }
                }
            }
            if !self.motif_entries.is_empty() {
                let _ = write!(fields, ";{MOTIF_ID}={}", self.motif_entries);
            }
            if !self.link_effects.entries().is_empty() {
                let _ = write!(fields, ";{LINKS_ID}={}", self.link_effects.entries());
            }
            if scored < self.alleles.len() {
                if !fields.is_empty() {
                    fields.push(';');
                }
                fields.push_str(SKIP_ID);
                fields.push('=');
                for (i, outcome) in self.alleles.iter().enumerate() {
                    if i > 0 {
                        fields.push(',');
                    }
                    match outcome {
                        Outcome::Scored { .. } => fields.push('.'),
                        Outcome::Skipped(reason) => fields.push_str(reason.as_str()),
                    }
                }
            }
        }
        let line = self.record.line();
        let info = self.record.info_range();
        out.push_str(&line[..info.start]);
        let (kept, replaced) = without_our_fields(self.record.info());
        summary.replaced += u64::from(replaced);
        if !kept.is_empty() {
            out.push_str(&kept);
            out.push(';');
        }
        out.push_str(&fields);
        out.push_str(&line[info.end..]);
        out.push_str(self.ending.as_str());
    }
}

/// The INFO column without `CISTRACK`/`CISTRACK_SKIP` entries (an earlier annotation's, with
/// or without a header line), and whether it had any; `.` becomes empty.
fn without_our_fields(info: &str) -> (String, bool) {
    if info == "." {
        return (String::new(), false);
    }
    let ours = |entry: &str| {
        let key = entry.split('=').next().unwrap_or(entry);
        [INFO_ID, SKIP_ID, MOTIF_ID, LINKS_ID].contains(&key)
    };
    if !info.split(';').any(ours) {
        return (info.to_string(), false);
    }
    let kept: Vec<&str> = info.split(';').filter(|e| !ours(e)).collect();
    (kept.join(";"), true)
}

/// One ALT that passed the checks, waiting to be scored.
struct Candidate {
    reference_start0: i64,
    reference: Vec<u8>,
    alternate: Vec<u8>,
    motif_changes: Vec<MotifChange>,
    /// The left-aligned edit, for the link consequences: `(start0, reference_length, ALT bases)`.
    edit: (u64, u64, Vec<u8>),
}

/// Checks records and pushes their windows (one per encoder thread).
pub struct Planner<'a> {
    build: &'a Build,
    genes: Option<&'a NearestGenes>,
    linker: Option<&'a Linker>,
    motifs: Option<&'a MotifSet>,
    variant_background: Option<Arc<Background>>,
    reference: ReferenceCache,
    window: u64,
    bin_size: usize,
    max_changed: u64,
    normalisers: [Option<Normaliser>; 2],
    span: Span,
    bases: Vec<u8>,
}

impl std::fmt::Debug for Planner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("build", &self.build.name())
            .field("window", &self.window)
            .finish()
    }
}

impl<'a> Planner<'a> {
    /// A planner for `spec`'s windows on `build`.
    ///
    /// # Errors
    ///
    /// When the FASTA cannot be opened.
    pub fn new(
        build: &'a Build,
        spec: &ModelSpec,
        genes: Option<&'a NearestGenes>,
        linker: Option<&'a Linker>,
        motifs: Option<&'a MotifSet>,
        variant_background: Option<Arc<Background>>,
    ) -> Result<Self, Error> {
        let window = spec.window.length as u64;
        Ok(Self {
            build,
            genes,
            linker,
            motifs,
            variant_background,
            reference: ReferenceCache::open(
                &build.config().fasta,
                super::reference::DEFAULT_CHUNK,
            )?,
            window,
            bin_size: spec.window.bin_size,
            max_changed: window / 2,
            normalisers: normalisers(build, spec),
            span: Span::default(),
            bases: Vec::new(),
        })
    }

    /// Checks `record` and pushes the windows of its scorable ALTs.
    ///
    /// # Errors
    ///
    /// FASTA or bigWig read errors, or [`crate::model::Error::WorkersGone`] when the pipeline
    /// has stopped.
    pub fn plan(
        &mut self,
        record: Record,
        ending: Ending,
        signals: &mut InputReader,
        scorer: &mut WindowScorer<'_>,
    ) -> Result<Pending, Error> {
        let mut pending = Pending {
            record,
            ending,
            record_reason: None,
            alleles: Vec::new(),
            gene: None,
            link: LinkedGene::NotAsked,
            ref_check: None,
            motif_entries: String::new(),
            link_effects: LinkEffects::NotAsked,
            variant_background: self.variant_background.clone(),
        };
        pending.record_reason = self.check_record(&mut pending, signals, scorer)?;
        Ok(pending)
    }

    /// Fills `pending` and returns the record-level reason, if any.
    fn check_record(
        &mut self,
        pending: &mut Pending,
        signals: &mut InputReader,
        scorer: &mut WindowScorer<'_>,
    ) -> Result<Option<Reason>, Error> {
        let record = &pending.record;
        if !record.alleles_valid() {
            return Ok(Some(Reason::InvalidAllele));
        }
        if record.alternate_count() == 0 {
            return Ok(Some(Reason::NoAlt));
        }
        let Some(contig) = self.build.contigs().resolve(record.chrom()).cloned() else {
            return Ok(Some(Reason::UnknownContig));
        };
        let reference = record.reference().as_bytes();
        let length = reference.len() as u64;
        if record.position() == 0 || record.position() - 1 + length > contig.length {
            return Ok(Some(Reason::OutOfBounds));
        }
        let position0 = record.position() - 1;
        pending.gene = self
            .genes
            .and_then(|g| g.nearest(&contig.name, position0, position0 + length))
            .map(|n| (sanitize(n.name), n.distance));
        self.reference.fill(
            &contig,
            position0 as i64,
            (position0 + length) as i64,
            &mut self.bases,
        )?;
        let ref_check = check_reference(reference, &self.bases);
        pending.ref_check = Some(ref_check);

        let mut candidates = Vec::new();
        for (index, allele) in record.alternates().enumerate() {
            let allele =
                allele.expect("ALT alleles are checked when the line is parsed; this is a bug");
            let outcome = match allele {
                Allele::Star => Outcome::Skipped(Reason::StarAllele),
                Allele::Symbolic(_) => Outcome::Skipped(Reason::SymbolicAllele),
                Allele::Breakend(_) => Outcome::Skipped(Reason::Breakend),
                Allele::Bases(alternate) => {
                    match self.candidate(&contig, position0, reference, alternate.as_bytes())? {
                        Ok(candidate) => {
                            candidates.push((index, candidate));
                            // ids are filled in below
                            Outcome::Scored {
                                reference: 0,
                                alternate: 0,
                            }
                        }
                        Err(reason) => Outcome::Skipped(reason),
                    }
                }
            };
            pending.alleles.push(outcome);
        }
        if candidates.is_empty() {
            return Ok(None);
        }
        if ref_check != RefCheck::Match {
            pending.alleles.clear();
            return Ok(Some(Reason::RefMismatch));
        }
        // A reference window shared by ALTs with the same centre is scored once; an alternate
        // window equal to its reference window (REF == ALT) reuses its id.
        let mut reference_windows: Vec<(i64, u64, SignalBins)> = Vec::new();
        for (index, candidate) in &candidates {
            let known = reference_windows
                .iter()
                .position(|(start0, _, _)| *start0 == candidate.reference_start0);
            let slot = match known {
                Some(slot) => slot,
                None => {
                    let start0 = candidate.reference_start0;
                    // the bases are the candidate's own (read once, above)
                    let bins = reference_bins(
                        signals,
                        &contig,
                        (start0, self.window as usize, self.bin_size),
                        &self.normalisers,
                        &mut self.span,
                    )?;
                    let id = scorer.push(&candidate.reference, &bins, Some((&contig, start0)));
                    reference_windows.push((start0, id, bins));
                    reference_windows.len() - 1
                }
            };
            let (_, reference_id, bins) = &reference_windows[slot];
            let alternate_id = if candidate.alternate == candidate.reference {
                *reference_id
            } else {
                scorer.push(&candidate.alternate, bins, None)
            };
            pending.alleles[*index] = Outcome::Scored {
                reference: *reference_id,
                alternate: alternate_id,
            };
        }
        if let Some(set) = self.motifs {
            let alternates: Vec<&str> = pending.record.alternate_text().split(',').collect();
            for (index, candidate) in &candidates {
                let alt = alternates[*index];
                motifs::write_entries(
                    &mut pending.motif_entries,
                    alt,
                    &candidate.motif_changes,
                    set,
                );
            }
        }
        if self.linker.is_some() && !candidates.is_empty() {
            pending.link = LinkedGene::Ask {
                contig: contig.clone(),
                start0: position0,
                end0: position0 + length,
            };
        }
        if self.linker.is_some_and(Linker::has_effects) {
            let alternates: Vec<&str> = pending.record.alternate_text().split(',').collect();
            let alleles = candidates.into_iter().map(|(index, c)| links::Allele {
                alt: alternates[index].to_string(),
                start0: c.edit.0,
                reference_length: c.edit.1,
                alternate: c.edit.2,
            });
            pending.link_effects = LinkEffects::Ask {
                contig,
                alleles: alleles.collect(),
            };
        }
        Ok(None)
    }

    /// The windows of one base-string ALT, or why it cannot be scored.
    fn candidate(
        &mut self,
        contig: &Contig,
        position0: u64,
        reference: &[u8],
        alternate: &[u8],
    ) -> Result<Result<Candidate, Reason>, Error> {
        let aligned = left_align(&trim(position0, reference, alternate), |s, e, out| {
            self.reference.fill(contig, s as i64, e as i64, out)
        })?;
        let edit = aligned.edit();
        if edit.reference_length > self.max_changed
            || edit.alternate.len() as u64 > self.max_changed
        {
            return Ok(Err(Reason::AlleleTooLong));
        }
        let (geometry, reference_window, alternate_window) =
            self.reference
                .allele_windows(contig, &edit, self.window, &mut self.bases)?;
        if count_bases(&reference_window) == 0 || count_bases(&alternate_window) == 0 {
            return Ok(Err(Reason::AllN));
        }
        let motif_changes = self.motifs.map_or_else(Vec::new, |set| {
            let at = (edit.start0 as i64 - geometry.reference_start0) as usize;
            motifs::scan(
                set,
                &reference_window,
                (at, edit.reference_length as usize),
                &alternate_window,
                (geometry.alternate_lead as usize, edit.alternate.len()),
            )
        });
        Ok(Ok(Candidate {
            reference_start0: geometry.reference_start0,
            reference: reference_window,
            alternate: alternate_window,
            motif_changes,
            edit: (edit.start0, edit.reference_length, edit.alternate.to_vec()),
        }))
    }
}

mod header;
pub mod links;
pub mod motifs;
pub use header::{header_text, info_header_line, skip_header_line};
pub use links::{LinkEffects, LINKS_ID};
pub use motifs::MOTIF_ID;

#[cfg(test)]
mod tests;
