//! The header lines `annotate` adds to a VCF: the `##INFO` declarations of its fields and the
//! `##cistrack_*` provenance lines.

use std::fmt::Write as _;

use crate::genome::Build;
use crate::io::vcf::Header;
use crate::model::ModelSpec;
use crate::motif::MotifSet;
use crate::pipeline::background::Background;

use super::{links, motifs, INFO_ID, LINKS_ID, MOTIF_ID, SKIP_ID};

/// The `##INFO` line declaring [`INFO_ID`].
pub fn info_header_line(spec: &ModelSpec, variant_background: Option<&Background>) -> String {
    format!(
        "##INFO=<ID={INFO_ID},Number=.,Type=String,Description=\"cistrack enhancer scores (model {model}), one entry per ALT in ALT order. Format: ALT|ref_prob|alt_prob|delta|ref_logit|alt_logit|nearest_gene|gene_distance|linked_gene|link_score|delta_percentile. ref_prob and alt_prob: enhancer probability of the {w}-bp window centred on the variant in the reference and in the alternate haplotype (indels left-aligned as bcftools norm does, applied, and the window re-centred); both windows use the reference H3K27ac and accessibility signal, so delta is the effect of the sequence change. delta: alt_prob - ref_prob. ref_logit and alt_logit: the model logits. nearest_gene: gene with the nearest TSS in the build's gene annotation; gene_distance: signed bp from that TSS to the variant along the gene's strand (negative upstream, 0 overlapping). linked_gene and link_score: with the build's link model, the gene whose promoter gives a candidate element containing the variant the highest link score (the calibrated E2G probability with the build's E2G model, else the attention normalised over the gene's candidates), and that score. delta_percentile: the percentile (0-100, mid-rank) of |delta| among the |delta| of {background} (cistrack precompute --variant-background). A dot where a value is not available (ALT not scored, see {SKIP_ID}; no gene annotation; no variant background)\">\n",
        model = spec.id(),
        w = spec.window.length,
        background = variant_background.map_or_else(
            || "random substitutions: none computed for this model and build".to_string(),
            |b| format!("{} random single-base substitutions in this build's scorable windows", b.len())
        ),
    )
}

/// The `##INFO` line declaring [`SKIP_ID`].
pub fn skip_header_line() -> String {
    format!(
        "##INFO=<ID={SKIP_ID},Number=.,Type=String,Description=\"Why cistrack did not score the record or an ALT. One value for the whole record: invalid_allele (REF or an ALT is not a valid VCF allele), no_alt (ALT is a dot), unknown_contig (not in the build under any alias), out_of_bounds (REF outside the contig), ref_mismatch (REF differs from the reference FASTA). Otherwise one value per ALT in ALT order, a dot for a scored ALT: star_allele, symbolic_allele, breakend, allele_too_long (more than half the model window changes), all_n (window without A/C/G/T bases)\">\n"
    )
}

/// The output header: the input's meta lines, cistrack's lines, the input's `#CHROM` line.
pub fn header_text(
    header: &Header,
    build: &Build,
    spec: &ModelSpec,
    motifs: Option<&MotifSet>,
    (variant_background, link_model): (Option<&Background>, Option<&str>),
    command: &str,
) -> String {
    let mut text = String::new();
    // an earlier cistrack annotation's lines are replaced by this one's
    let ours = |line: &str| {
        [INFO_ID, SKIP_ID, MOTIF_ID, LINKS_ID]
            .iter()
            .any(|id| line.starts_with(&format!("##INFO=<ID={id},")))
            || line.starts_with("##cistrack_")
    };
    for line in header.meta.iter().filter(|l| !ours(l)) {
        text.push_str(line);
    }
    text.push_str(&info_header_line(spec, variant_background));
    text.push_str(&skip_header_line());
    if let Some(set) = motifs {
        text.push_str(&motifs::header_line(set));
    }
    if let Some(model) = link_model {
        text.push_str(&links::header_line(model));
    }
    let _ = writeln!(text, "##cistrack_version={}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(text, "##cistrack_build={}", build.name());
    let _ = writeln!(text, "##cistrack_model={}", spec.id());
    let _ = writeln!(text, "##cistrack_model_sha256={}", spec.sha256);
    let _ = writeln!(
        text,
        "##cistrack_variant_background={}",
        crate::annotate::variant_background::describe(variant_background)
    );
    let _ = writeln!(
        text,
        "##cistrack_command={}",
        command.replace(['\n', '\r'], " ")
    );
    text.push_str(&header.column_line);
    text
}
