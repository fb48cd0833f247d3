//! Enhancer–gene links as data (the daemon's JSON) and as UCSC bigInteract files.
//!
//! A link joins a candidate element (the *source*) to a gene's TSS (the *target*). Its span,
//! `[min(element start, TSS), max(element end, TSS + 1))`, is what arcs are drawn over.

use std::path::Path;

use bigtools::BedEntry;
use serde::Serialize;

use crate::genome::Contigs;
use crate::io::bbi;

use super::output::chrom_sizes;

/// One gene of a links answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneLinks {
    /// Gene identifier (Ensembl ID where the annotation has one).
    pub id: String,
    /// Gene name (symbol), or the id.
    pub name: String,
    /// Contig (the FASTA's name).
    #[serde(skip)]
    pub contig: String,
    /// TSS, 0-based.
    pub tss: u64,
    /// `+` or `-`.
    pub strand: char,
    /// Predicted expression, log10(1 + TPM).
    pub expression: f32,
    /// Promoter activity, sqrt(accessibility × H3K27ac) over the promoter window.
    pub promoter_activity: f32,
    /// Candidate elements considered.
    pub candidates: usize,
    /// The gene's links, one per candidate, nearest first.
    #[serde(skip)]
    pub links: Vec<Link>,
}

/// One element of a gene.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    /// Element start, 0-based.
    pub element_start: u64,
    /// Element end, exclusive.
    pub element_end: u64,
    /// Distance from the element's midpoint to the TSS, bp (always >= 0).
    pub distance: u64,
    /// The link score: the E2G model's calibrated probability, or the attention when the build
    /// has no E2G model.
    pub score: f32,
    /// The link model's promoter attention on this element, normalised over the candidates
    /// it saw (0 when it did not see this one: see `attended`).
    pub attention: f32,
    /// True when the element was among the link model's candidates (the nearest within its
    /// reach).
    pub attended: bool,
    /// ABC score from the same inputs: activity × contact over the sum of activity × contact of
    /// the gene's candidates and its promoter (contact 1), as ABC counts its own promoter.
    pub abc_score: f32,
    /// Activity, sqrt(accessibility × H3K27ac), in the model's units.
    pub activity: f32,
    /// Contact relative to 5 kb (the ABC power law, or the build's contact table).
    pub contact: f32,
    /// Where the contact came from.
    pub contact_source: ContactSource,
    /// TSSs of other genes strictly between the element's midpoint and this TSS.
    pub tss_between: u32,
}

/// Where a link's contact value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactSource {
    /// The ABC power law of distance.
    Powerlaw,
    /// The build's contact table (Hi-C).
    Hic,
}

impl ContactSource {
    /// As the JSON and TSV spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Powerlaw => "powerlaw",
            Self::Hic => "hic",
        }
    }
}

/// A link as the JSON answer lists it (gene fields repeated, so each can be drawn alone).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkRecord<'a> {
    /// Arc start: the lower of the element start and the TSS.
    pub start: u64,
    /// Arc end, exclusive.
    pub end: u64,
    /// Gene id.
    pub gene_id: &'a str,
    /// Gene name.
    pub gene_name: &'a str,
    /// TSS, 0-based.
    pub tss: u64,
    /// Gene strand.
    pub strand: char,
    /// The element and its scores.
    #[serde(flatten)]
    pub link: &'a Link,
}

impl GeneLinks {
    /// The gene's links as records.
    pub fn records(&self) -> impl Iterator<Item = LinkRecord<'_>> {
        self.links.iter().map(move |l| LinkRecord {
            start: l.element_start.min(self.tss),
            end: l.element_end.max(self.tss + 1),
            gene_id: &self.id,
            gene_name: &self.name,
            tss: self.tss,
            strand: self.strand,
            link: l,
        })
    }
}

/// autoSql of `links.bb`: the UCSC `interact` format (BED5+13), source = element, target =
/// the gene's TSS, `value` = link score.
pub const INTERACT_AUTOSQL: &str = r#"table interact
"cistrack enhancer-gene links: the E2G score of each candidate element and gene"
(
string chrom;        "Reference sequence"
uint   chromStart;   "Start of the lower end of the link, 0-based"
uint   chromEnd;     "End of the upper end of the link, exclusive"
string name;         "gene/element"
uint   score;        "Link score x 1000, rounded"
double value;        "Link score: E2G probability (attention without an E2G model)"
string exp;          "Model name/version"
string color;        "Item colour, r,g,b"
string sourceChrom;  "Element reference sequence"
uint   sourceStart;  "Element start, 0-based"
uint   sourceEnd;    "Element end, exclusive"
string sourceName;   "Element id: chrom:start-end"
string sourceStrand; "Not applicable: ."
string targetChrom;  "Gene reference sequence"
uint   targetStart;  "TSS, 0-based"
uint   targetEnd;    "TSS + 1"
string targetName;   "Gene name"
string targetStrand; "Gene strand"
)
"#;

/// The bigInteract line after `chrom start end` for one link.
fn interact_rest(gene: &GeneLinks, link: &Link, model: &str) -> String {
    let element = format!(
        "{}:{}-{}",
        gene.contig, link.element_start, link.element_end
    );
    format!(
        "{}/{}\t{}\t{:.6}\t{}\t0,0,0\t{}\t{}\t{}\t{}\t.\t{}\t{}\t{}\t{}\t{}",
        gene.name,
        element,
        (link.score * 1000.0).round().clamp(0.0, 1000.0) as u32,
        link.score,
        model,
        gene.contig,
        link.element_start,
        link.element_end,
        element,
        gene.contig,
        gene.tss,
        gene.tss + 1,
        gene.name,
        gene.strand,
    )
}

/// Writes the links of `genes` as a bigInteract file (sorted by contig name and start, as
/// bigBed requires). Links with a score below `min_score` are left out.
///
/// # Errors
///
/// [`crate::io::Error::Write`] naming the file.
pub fn write_links_biginteract(
    path: &Path,
    contigs: &Contigs,
    genes: &[GeneLinks],
    model: &str,
    min_score: f32,
) -> Result<(), crate::io::Error> {
    let mut records: Vec<(String, BedEntry)> = genes
        .iter()
        .flat_map(|g| {
            g.records()
                .filter(|r| r.link.score >= min_score)
                .map(|r| {
                    (
                        g.contig.clone(),
                        BedEntry {
                            start: r.start as u32,
                            end: r.end as u32,
                            rest: interact_rest(g, r.link, model),
                        },
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    records.sort_by(|a, b| {
        a.0.as_bytes()
            .cmp(b.0.as_bytes())
            .then(a.1.start.cmp(&b.1.start))
            .then(a.1.end.cmp(&b.1.end))
    });
    bbi::write_bigbed(path, chrom_sizes(contigs), INTERACT_AUTOSQL, records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genome::Contig;

    #[test]
    fn test_biginteract_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("links.bb");
        let contigs = Contigs::new(
            "t",
            vec![
                Contig {
                    name: "chr2".into(),
                    length: 10_000,
                },
                Contig {
                    name: "chr10".into(),
                    length: 10_000,
                },
            ],
        );
        let link = |s, e, score| Link {
            element_start: s,
            element_end: e,
            distance: 0,
            score,
            attention: 0.5,
            attended: true,
            abc_score: 0.5,
            activity: 1.0,
            contact: 1.0,
            contact_source: ContactSource::Powerlaw,
            tss_between: 0,
        };
        let genes = vec![
            GeneLinks {
                id: "A".into(),
                name: "A".into(),
                contig: "chr2".into(),
                tss: 5000,
                strand: '-',
                expression: 1.0,
                promoter_activity: 1.0,
                candidates: 2,
                links: vec![link(7000, 7500, 0.75), link(1000, 1200, 0.25)],
            },
            GeneLinks {
                id: "B".into(),
                name: "B".into(),
                contig: "chr10".into(),
                tss: 100,
                strand: '+',
                expression: 0.0,
                promoter_activity: 0.0,
                candidates: 1,
                links: vec![link(300, 400, 1.0)],
            },
        ];
        write_links_biginteract(&path, &contigs, &genes, "link/0.1.0", 0.3).unwrap();
        let mut read = bigtools::BigBedRead::open_file(&path).unwrap();
        let autosql = read.autosql().unwrap().unwrap();
        assert!(autosql.contains("string targetStrand;"), "{autosql}");
        let chr2: Vec<_> = read
            .get_interval("chr2", 0, 10_000)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        // the 0.25 link is under min_score; the arc spans the TSS to the element's end
        assert_eq!(chr2.len(), 1);
        assert_eq!((chr2[0].start, chr2[0].end), (5000, 7500));
        let fields: Vec<&str> = chr2[0].rest.split('\t').collect();
        assert_eq!(fields.len(), 15, "{:?}", chr2[0].rest);
        assert_eq!(fields[0], "A/chr2:7000-7500");
        assert_eq!((fields[1], fields[2]), ("750", "0.750000"));
        assert_eq!(
            &fields[5..],
            [
                "chr2",
                "7000",
                "7500",
                "chr2:7000-7500",
                ".",
                "chr2",
                "5000",
                "5001",
                "A",
                "-"
            ]
        );
        let chr10: Vec<_> = read
            .get_interval("chr10", 0, 10_000)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!((chr10[0].start, chr10[0].end), (100, 400));
    }
}
