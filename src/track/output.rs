//! Writing called elements (BED, bigBed) and window scores (bedGraph, bigWig).
//!
//! The BED text and the bigBed hold the same columns with the same text, so a bigBed read back
//! gives exactly the BED lines; [`ELEMENTS_AUTOSQL`] names every column.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use bigtools::{BedEntry, Value};

use crate::genome::Contigs;
use crate::io::bbi;
use crate::pipeline::background::Background;

use super::score::{Element, WindowScore};
use super::Error;

/// autoSql of the called-elements bigBed (BED6+10).
pub const ELEMENTS_AUTOSQL: &str = r#"table cistrackEnhancers
"Enhancer elements called by cistrack: merged windows at or above the probability threshold"
(
string chrom;              "Reference sequence"
uint   chromStart;         "Start, 0-based"
uint   chromEnd;           "End, exclusive"
string name;               "Element id: chrom:start-end, 1-based inclusive"
uint   score;              "Peak probability x 1000, rounded"
char[1] strand;            "Not applicable: ."
float  peakProbability;    "Highest window probability"
float  peakLogit;          "Logit of the peak window"
float  meanProbability;    "Mean probability of the merged windows"
uint   windows;            "Number of windows merged"
uint   peakStart;          "Core start of the peak window, 0-based"
uint   peakEnd;            "Core end of the peak window, exclusive"
float  shareSequence;      "Peak window: attention share of the DNA sequence tokens"
float  shareH3k27ac;       "Peak window: attention share of the H3K27ac tokens"
float  shareAccessibility; "Peak window: attention share of the accessibility tokens"
float  peakPercentile;     "Percentile of the peak probability among the build's background windows (0-100); -1: no background (cistrack precompute --background)"
)
"#;

/// Column names of the BED output, as in its `#` header line.
pub const ELEMENT_COLUMNS: [&str; 16] = [
    "chrom",
    "start",
    "end",
    "name",
    "score",
    "strand",
    "peak_probability",
    "peak_logit",
    "mean_probability",
    "windows",
    "peak_start",
    "peak_end",
    "share_sequence",
    "share_h3k27ac",
    "share_accessibility",
    "peak_percentile",
];

/// The percentile column's value when the build has no background.
pub const NO_PERCENTILE: f32 = -1.0;

/// What a window track holds.
#[derive(Debug, Clone, Copy)]
pub enum WindowValue<'a> {
    /// The window's probability.
    Probability,
    /// The percentile (0–100) of its probability among the background's windows.
    Percentile(&'a Background),
}

impl WindowValue<'_> {
    /// The value of `w`.
    pub fn of(self, w: &WindowScore) -> f32 {
        match self {
            Self::Probability => w.probability,
            Self::Percentile(b) => b.percentile(w.probability).unwrap_or(NO_PERCENTILE),
        }
    }
}

/// Output kinds chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tab-separated text (BED or bedGraph).
    Text,
    /// bigBed or bigWig.
    Binary,
}

/// `.bb`/`.bigbed`/`.bw`/`.bigwig` are binary; anything else (or `-`) is text.
pub fn format_of(target: &str) -> Format {
    let lower = target.to_ascii_lowercase();
    if [".bb", ".bigbed", ".bw", ".bigwig"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        Format::Binary
    } else {
        Format::Text
    }
}

/// The BED fields after chrom/start/end, as written in both BED and bigBed; the percentile is
/// against `background` ([`NO_PERCENTILE`] without one).
pub fn element_rest(e: &Element, background: Option<&Background>) -> String {
    let score = (e.peak.probability as f64 * 1000.0)
        .round()
        .clamp(0.0, 1000.0) as u32;
    let s = e.peak.modality_share;
    let percentile = background
        .and_then(|b| b.percentile(e.peak.probability))
        .unwrap_or(NO_PERCENTILE);
    format!(
        "{}:{}-{}\t{score}\t.\t{:.4}\t{:.4}\t{:.4}\t{}\t{}\t{}\t{:.4}\t{:.4}\t{:.4}\t{percentile:.2}",
        e.contig,
        e.start0 + 1,
        e.end0,
        e.peak.probability,
        e.peak.logit,
        e.mean_probability,
        e.windows,
        e.peak.core_start0,
        e.peak.core_end0,
        s[0],
        s[1],
        s[2]
    )
}

/// Contig lengths as bigBed/bigWig writers take them.
pub(crate) fn chrom_sizes(contigs: &Contigs) -> HashMap<String, u32> {
    contigs
        .iter()
        .map(|c| (c.name.clone(), c.length.min(u32::MAX as u64) as u32))
        .collect()
}

/// Writes elements as BED text to `out`, after `header` lines (each written with a leading `#`)
/// and the column header.
///
/// # Errors
///
/// [`Error::Write`] naming `target`.
pub fn write_elements_bed(
    out: &mut dyn Write,
    target: &str,
    header: &[String],
    elements: &[Element],
    background: Option<&Background>,
) -> Result<(), Error> {
    let write_error = |source: std::io::Error| Error::Write {
        target: target.into(),
        source,
    };
    for line in header {
        writeln!(out, "#{line}").map_err(write_error)?;
    }
    writeln!(out, "#{}", ELEMENT_COLUMNS.join("\t")).map_err(write_error)?;
    for e in elements {
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            e.contig,
            e.start0,
            e.end0,
            element_rest(e, background)
        )
        .map_err(write_error)?;
    }
    out.flush().map_err(write_error)
}

/// Writes elements (of any contigs) as a bigBed with [`ELEMENTS_AUTOSQL`]; records are sorted
/// by contig name and start, the order bigBed requires.
///
/// # Errors
///
/// [`crate::io::Error::Write`] naming the file.
pub fn write_elements_bigbed(
    path: &Path,
    contigs: &Contigs,
    elements: &[Element],
    background: Option<&Background>,
) -> Result<(), crate::io::Error> {
    let mut records: Vec<(String, BedEntry)> = elements
        .iter()
        .map(|e| {
            (
                e.contig.clone(),
                BedEntry {
                    start: e.start0 as u32,
                    end: e.end0 as u32,
                    rest: element_rest(e, background),
                },
            )
        })
        .collect();
    records.sort_by(|a, b| {
        a.0.as_bytes()
            .cmp(b.0.as_bytes())
            .then(a.1.start.cmp(&b.1.start))
    });
    bbi::write_bigbed(path, chrom_sizes(contigs), ELEMENTS_AUTOSQL, records)
}

/// Writes a value of each window (`value`) as bedGraph text (one line per scored core).
///
/// # Errors
///
/// [`Error::Write`] naming `target`.
pub fn write_windows_bedgraph(
    out: &mut dyn Write,
    target: &str,
    contig: &str,
    windows: &[WindowScore],
    value: WindowValue,
) -> Result<(), Error> {
    let write_error = |source: std::io::Error| Error::Write {
        target: target.into(),
        source,
    };
    for w in windows {
        writeln!(
            out,
            "{contig}\t{}\t{}\t{:.4}",
            w.core_start0,
            w.core_end0,
            value.of(w)
        )
        .map_err(write_error)?;
    }
    out.flush().map_err(write_error)
}

/// Writes a value of each window (`value`) of one or more contigs as a bigWig (contigs sorted
/// by name, the order bigWig requires).
///
/// # Errors
///
/// [`crate::io::Error::Write`] naming the file.
pub fn write_windows_bigwig(
    path: &Path,
    contigs: &Contigs,
    windows: &[(String, Vec<WindowScore>)],
    value: WindowValue,
) -> Result<(), crate::io::Error> {
    let mut order: Vec<&(String, Vec<WindowScore>)> = windows.iter().collect();
    order.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let values = order
        .into_iter()
        .flat_map(|(contig, ws)| {
            ws.iter().map(move |w| {
                (
                    contig.clone(),
                    Value {
                        start: w.core_start0 as u32,
                        end: w.core_end0 as u32,
                        value: value.of(w),
                    },
                )
            })
        })
        .collect();
    bbi::write_bigwig(path, chrom_sizes(contigs), values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_format_of() {
        assert_eq!(format_of("-"), Format::Text);
        assert_eq!(format_of("out.bed"), Format::Text);
        assert_eq!(format_of("OUT.BB"), Format::Binary);
        assert_eq!(format_of("x.bigWig"), Format::Binary);
    }

    #[test]
    fn test_autosql_names_every_column() {
        let declared = ELEMENTS_AUTOSQL.lines().filter(|l| l.contains(';')).count();
        assert_eq!(declared, ELEMENT_COLUMNS.len());
        let e = Element {
            contig: "chr1".into(),
            start0: 100,
            end0: 300,
            peak: WindowScore {
                core_start0: 200,
                core_end0: 300,
                logit: 2.0,
                probability: 0.88,
                modality_share: [0.1, 0.6, 0.3],
            },
            mean_probability: 0.7,
            windows: 2,
        };
        let rest = element_rest(&e, None);
        assert_eq!(rest.split('\t').count() + 3, ELEMENT_COLUMNS.len());
        assert_eq!(
            rest,
            "chr1:101-300\t880\t.\t0.8800\t2.0000\t0.7000\t2\t200\t300\t0.1000\t0.6000\t0.3000\t-1.00"
        );
        // the percentile of the peak probability among the background's
        let background = Background::new("v", 100, 1, 4, vec![0.1, 0.5, 0.9, 0.95]);
        assert!(element_rest(&e, Some(&background)).ends_with("\t0.3000\t50.00"));
    }
}
