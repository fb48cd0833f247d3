//! `CISTRACK_LINKS`: what an ALT inside a candidate element does to the build's link model.
//!
//! For each gene whose link model attends a candidate element holding the allele, the gene graph
//! is run with the reference and again with the allele applied to every sequence window that
//! holds it (see [`crate::track::links::LinkEngine::allele_links`]). One entry per gene and
//! element, grouped by ALT in ALT order, at most [`MAX_PER_ALT`] per ALT (largest
//! |attention_delta| first): `ALT|gene|attention_ref|attention_alt|attention_delta|expression_delta`.
//! Numbers with 4 significant digits (attention is spread over up to 60 candidates, and the
//! changes are small); expression is log10(1 + TPM).
//!
//! The E2G link probability (`CISTRACK`'s `link_score`) uses no sequence: an allele cannot
//! change it, so the consequence is read from the link model.

use std::fmt::Write as _;

use crate::genome::Contig;
use crate::track::links::{AlleleEdit, AlleleLink};

use super::super::linker::Linker;
use super::super::sanitize;

/// The INFO field.
pub const LINKS_ID: &str = "CISTRACK_LINKS";
/// Entries written per ALT, at most.
pub const MAX_PER_ALT: usize = 5;

/// The `##INFO` line declaring [`LINKS_ID`], for the link model `model` (`name/version`).
pub fn header_line(model: &str) -> String {
    format!(
        "##INFO=<ID={LINKS_ID},Number=.,Type=String,Description=\"What an ALT inside a candidate element does to the link model {model}: for each gene whose promoter attends that element, the attention on the element (normalised over the gene's candidates) with REF and with ALT, their difference, and the change of the gene's predicted expression (log10(1+TPM)), the model run again with the allele (indels left-aligned) in every sequence window that holds it. Format: ALT|gene|attention_ref|attention_alt|attention_delta|expression_delta, at most {MAX_PER_ALT} per ALT, largest |attention_delta| first; absent when no ALT lies in a candidate element whose sequence the model reads (windows with too many N are masked). The E2G link_score of {id} uses no sequence and does not change with an allele\">\n",
        id = super::INFO_ID,
    )
}

/// One ALT's allele, to look up: its text as written and its left-aligned edit.
#[derive(Debug, Clone, PartialEq)]
pub struct Allele {
    /// The ALT as written in the record.
    pub alt: String,
    /// First changed base (or insertion point), 0-based.
    pub start0: u64,
    /// Reference bases removed.
    pub reference_length: u64,
    /// Bases inserted.
    pub alternate: Vec<u8>,
}

/// A record's link consequences: asked for by the encoder, computed by the collector (like
/// [`super::super::linker::LinkedGene`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum LinkEffects {
    /// Nothing to look up.
    #[default]
    NotAsked,
    /// To compute: the scored ALTs of a record on `contig`.
    Ask {
        /// The contig.
        contig: Contig,
        /// The scored ALTs, in ALT order.
        alleles: Vec<Allele>,
    },
    /// Computed: the `CISTRACK_LINKS` entries (empty when no ALT changes a link), and the
    /// links behind them per ALT, for [`LinkEffects::bed_lines`].
    Found {
        /// The `CISTRACK_LINKS` value.
        entries: String,
        /// The contig (the build's name).
        contig: String,
        /// Per ALT with entries: the ALT, its edit's reference interval, and its links.
        links: Vec<(String, (u64, u64), Vec<AlleleLink>)>,
    },
}

/// The header line of `--links-bed` files.
pub const BED_HEADER: &str = "#chrom\tstart\tend\tname\tscore\tstrand\tgene\tgene_id\ttss\telement_start\telement_end\tattention_ref\tattention_alt\tattention_delta\texpression_delta\n";

impl LinkEffects {
    /// Answers a [`LinkEffects::Ask`] with `linker`.
    ///
    /// # Errors
    ///
    /// Inputs that cannot be read, or a model failure.
    pub fn resolve(&mut self, linker: Option<&Linker>) -> Result<(), crate::Error> {
        let (LinkEffects::Ask { contig, alleles }, Some(linker)) = (&*self, linker) else {
            return Ok(());
        };
        let mut entries = String::new();
        let mut found = Vec::new();
        for allele in alleles {
            let mut links = linker.allele_links(
                contig,
                AlleleEdit {
                    start0: allele.start0,
                    reference_length: allele.reference_length,
                    alternate: &allele.alternate,
                },
            )?;
            links.sort_by(|a, b| {
                b.attention_delta()
                    .abs()
                    .total_cmp(&a.attention_delta().abs())
            });
            links.truncate(MAX_PER_ALT);
            write_entries(&mut entries, &allele.alt, &links);
            if !links.is_empty() {
                let end0 = allele.start0 + allele.reference_length.max(1);
                found.push((allele.alt.clone(), (allele.start0, end0), links));
            }
        }
        *self = LinkEffects::Found {
            entries,
            contig: contig.name.clone(),
            links: found,
        };
        Ok(())
    }

    /// The entries, once computed (empty before, or when nothing changes).
    pub fn entries(&self) -> &str {
        match self {
            LinkEffects::Found { entries, .. } => entries,
            _ => "",
        }
    }

    /// One BED line per entry (see [`BED_HEADER`]), for the record with ID `id` at 1-based
    /// `position`: the allele's changed reference bases (left-aligned; the base after an
    /// insertion point), name `ID:ALT>gene` (`contig:position` without an ID), score 0–1000 the
    /// share of the reference attention the allele changes (1000 at 100 % or more).
    pub fn bed_lines(&self, id: &str, position: u64, out: &mut String) {
        let LinkEffects::Found { contig, links, .. } = self else {
            return;
        };
        let id = if id == "." {
            format!("{contig}:{position}")
        } else {
            id.to_string()
        };
        for (alt, (start0, end0), links) in links {
            for l in links {
                let share =
                    (l.attention_delta().abs() / l.attention.0.max(f32::MIN_POSITIVE)).min(1.0);
                let _ = writeln!(
                    out,
                    "{contig}\t{start0}\t{end0}\t{id}:{alt}>{gene}\t{score}\t.\t{gene}\t{gene_id}\t{tss}\t{es}\t{ee}\t{}\t{}\t{}\t{}",
                    significant(l.attention.0),
                    significant(l.attention.1),
                    significant(l.attention_delta()),
                    significant(l.expression_delta()),
                    gene = sanitize(&l.gene_name),
                    gene_id = sanitize(&l.gene_id),
                    tss = l.tss,
                    es = l.element.0,
                    ee = l.element.1,
                    score = (share * 1000.0).round() as u32,
                );
            }
        }
    }
}

/// Appends the entries of one ALT (after a `,` when `out` already has some).
pub fn write_entries(out: &mut String, alt: &str, links: &[AlleleLink]) {
    for link in links {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(
            out,
            "{alt}|{}|{}|{}|{}|{}",
            sanitize(&link.gene_name),
            significant(link.attention.0),
            significant(link.attention.1),
            significant(link.attention_delta()),
            significant(link.expression_delta()),
        );
    }
}

/// `value` with 4 significant digits, in plain notation down to 1e-6 and `0` for zero.
fn significant(value: f32) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let digits = (3 - value.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let text = format!("{value:.digits$}");
    if text
        .trim_start_matches('-')
        .trim_start_matches(['0', '.'])
        .is_empty()
    {
        format!("{value:.3e}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_significant() {
        assert_eq!(significant(0.0), "0");
        assert_eq!(significant(0.123456), "0.1235");
        assert_eq!(significant(-0.000123456), "-0.0001235");
        assert_eq!(significant(1.5), "1.500");
        assert_eq!(significant(3e-12), "3.000e-12");
    }

    #[test]
    fn test_entries() {
        let link = |name: &str, r: f32, a: f32| AlleleLink {
            gene_id: "ENSG1".into(),
            gene_name: name.into(),
            tss: 10,
            element: (0, 5),
            attention: (r, a),
            expression: (1.0, 0.75),
        };
        let mut out = String::new();
        write_entries(&mut out, "T", &[link("A B", 0.25, 0.125)]);
        write_entries(&mut out, "G", &[link("C", 0.5, 0.5)]);
        assert_eq!(
            out,
            "T|A_B|0.2500|0.1250|-0.1250|-0.2500,G|C|0.5000|0.5000|0|-0.2500"
        );
    }
}
