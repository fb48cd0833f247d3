//! BED annotation: each interval is tiled into model windows as `cistrack score` tiles a
//! region (cores of the default stride partition the interval, each window centred on its
//! core), and eight columns are appended to the record:
//!
//! | column | value |
//! |---|---|
//! | `cistrack_max_prob` | highest window probability (4 decimals) |
//! | `cistrack_mean_prob` | mean window probability |
//! | `cistrack_elements` | enhancer elements called from the interval's windows at the threshold (runs of adjacent windows at or above it, as `cistrack score` calls them) |
//! | `cistrack_nearest_gene` | gene with the TSS nearest to the interval (`.` without gene annotation) |
//! | `cistrack_gene_distance` | signed bp from that TSS to the interval along the gene's strand (negative upstream, 0 overlapping) |
//! | `cistrack_linked_gene` | with a link model: the gene whose promoter gives a candidate element overlapping the interval the highest link score (`.` without a link model or overlapping candidate) |
//! | `cistrack_link_score` | that link score (the calibrated E2G probability with the build's E2G model, else the promoter's attention normalised over the gene's candidates) |
//! | `cistrack_skip` | `.` when scored, else why not: `unknown_contig`, `out_of_bounds` (ends past the contig), `empty_interval` (`start == end`), `too_long` (over [`MAX_INTERVAL`]), `all_n` (no window has an A/C/G/T base) |
//!
//! Windows with no A/C/G/T base are left out of the max and the mean; an unscored interval
//! has `.` in the three score columns. Header lines (`#`, `track`, `browser`, empty) pass through
//! where they are; two `#` lines after the leading header name the build, model and columns.

use std::fmt::Write as _;

use crate::genome::build::{InputReader, Span};
use crate::genome::{Build, Region};
use crate::io::bed::Record;
use crate::io::text::Ending;
use crate::model::encode::Normaliser;
use crate::model::ModelSpec;
use crate::pipeline::inputs::normalisers;
use crate::pipeline::Grid;
use crate::track::score::{call_elements, WindowScore, DEFAULT_STRIDE};

use super::genes::NearestGenes;
use super::linker::{LinkedGene, Linker};
use super::scorer::{Prediction, SignalBins, WindowScorer};
use super::variant::count_bases;
use super::{decimal4, sanitize, Error, Reason, Summary};

/// Longest interval scored, in bases (50,000 windows at the default stride).
pub const MAX_INTERVAL: u64 = 10_000_000;

/// Windows read from the FASTA and bigWigs at once.
const CHUNK_WINDOWS: usize = 64;

/// The appended columns, in order.
pub const COLUMNS: [&str; 8] = [
    "cistrack_max_prob",
    "cistrack_mean_prob",
    "cistrack_elements",
    "cistrack_nearest_gene",
    "cistrack_gene_distance",
    "cistrack_linked_gene",
    "cistrack_link_score",
    "cistrack_skip",
];

/// The output header: the input's leading header lines, then cistrack's two lines.
pub fn header_text(
    leading: &str,
    build: &Build,
    spec: &ModelSpec,
    threshold: f64,
    command: &str,
) -> String {
    let mut text = leading.to_string();
    let _ = writeln!(
        text,
        "#cistrack {} annotate build={} model={} sha256={} threshold={threshold} stride={DEFAULT_STRIDE} command={}",
        env!("CARGO_PKG_VERSION"),
        build.name(),
        spec.id(),
        spec.sha256,
        command.replace(['\n', '\r'], " ")
    );
    let _ = writeln!(
        text,
        "#cistrack columns appended to each record:\t{}",
        COLUMNS.join("\t")
    );
    text
}

/// An interval waiting for its window scores.
#[derive(Debug)]
pub struct Pending {
    record: Record,
    ending: Ending,
    contig: String,
    reason: Option<Reason>,
    /// Core of each window and its id (`None`: all N, not scored).
    windows: Vec<(u64, u64, Option<u64>)>,
    gene: Option<(String, i64)>,
    link: LinkedGene,
    threshold: f64,
}

impl Pending {
    /// The interval's linked gene, for the collector to look up before [`Pending::write`].
    pub fn link_mut(&mut self) -> &mut LinkedGene {
        &mut self.link
    }

    /// Appends the annotated line to `out`, with `results` holding the predictions of the
    /// interval's windows (ids from `first_id`), and counts it in `summary`.
    ///
    /// # Panics
    ///
    /// When a scored window's result is missing (the collector writes complete records only).
    pub fn write(
        &self,
        first_id: u64,
        results: &[Option<Prediction>],
        out: &mut String,
        summary: &mut Summary,
    ) {
        summary.records += 1;
        out.push_str(self.record.line());
        match self.reason {
            Some(reason) => {
                summary.passed_through += 1;
                *summary.skipped.entry(reason).or_default() += 1;
                out.push_str("\t.\t.\t.");
            }
            None => {
                summary.scored += 1;
                let scores: Vec<WindowScore> = self
                    .windows
                    .iter()
                    .filter_map(|&(core_start0, core_end0, id)| {
                        let p = results[(id? - first_id) as usize]
                            .expect("a complete record has every result; this is a bug");
                        Some(WindowScore {
                            core_start0,
                            core_end0,
                            logit: p.logit,
                            probability: p.probability,
                            modality_share: [0.0; 3],
                        })
                    })
                    .collect();
                let max = scores
                    .iter()
                    .map(|w| w.probability)
                    .fold(f32::NEG_INFINITY, f32::max);
                let mean =
                    scores.iter().map(|w| w.probability as f64).sum::<f64>() / scores.len() as f64;
                let elements = call_elements(&self.contig, &scores, self.threshold).len();
                let _ = write!(
                    out,
                    "\t{}\t{}\t{elements}",
                    decimal4(max as f64),
                    decimal4(mean)
                );
            }
        }
        match &self.gene {
            Some((name, distance)) => {
                let _ = write!(out, "\t{name}\t{distance}");
            }
            None => out.push_str("\t.\t."),
        }
        match self.link.get() {
            Some((name, score)) => {
                let _ = write!(out, "\t{name}\t{}", decimal4(*score as f64));
            }
            None => out.push_str("\t.\t."),
        }
        out.push('\t');
        out.push_str(self.reason.map_or(".", Reason::as_str));
        out.push_str(self.ending.as_str());
    }
}

/// Checks intervals and pushes their windows.
pub struct Planner<'a> {
    build: &'a Build,
    genes: Option<&'a NearestGenes>,
    linker: Option<&'a Linker>,
    grid: Grid,
    window: usize,
    bin_size: usize,
    threshold: f64,
    normalisers: [Option<Normaliser>; 2],
    span: Span,
    bins: SignalBins,
}

impl std::fmt::Debug for Planner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("build", &self.build.name())
            .field("grid", &self.grid)
            .finish()
    }
}

impl<'a> Planner<'a> {
    /// A planner for `spec`'s windows on `build`, calling elements at `threshold`.
    ///
    /// # Errors
    ///
    /// [`crate::track::Error::InvalidStride`] (never with the default stride).
    pub fn new(
        build: &'a Build,
        spec: &ModelSpec,
        genes: Option<&'a NearestGenes>,
        linker: Option<&'a Linker>,
        threshold: f64,
    ) -> Result<Self, Error> {
        Ok(Self {
            build,
            genes,
            linker,
            grid: Grid::new(spec.window.length as u64, DEFAULT_STRIDE)?,
            window: spec.window.length,
            bin_size: spec.window.bin_size,
            threshold,
            normalisers: normalisers(build, spec),
            span: Span::default(),
            bins: SignalBins::default(),
        })
    }

    /// Checks `record` and pushes the windows of its interval.
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
            contig: String::new(),
            reason: None,
            windows: Vec::new(),
            gene: None,
            link: LinkedGene::NotAsked,
            threshold: self.threshold,
        };
        let (start0, end0) = (pending.record.start0(), pending.record.end0());
        let Some(contig) = self
            .build
            .contigs()
            .resolve(pending.record.chrom())
            .cloned()
        else {
            pending.reason = Some(Reason::UnknownContig);
            return Ok(pending);
        };
        pending.gene = self
            .genes
            .and_then(|g| g.nearest(&contig.name, start0, end0))
            .map(|n| (sanitize(n.name), n.distance));
        pending.reason = if start0 == end0 {
            Some(Reason::EmptyInterval)
        } else if end0 > contig.length {
            Some(Reason::OutOfBounds)
        } else if end0 - start0 > MAX_INTERVAL {
            Some(Reason::TooLong)
        } else {
            None
        };
        if pending.reason.is_some() {
            return Ok(pending);
        }
        let region = Region::new(&contig.name, start0, end0).map_err(crate::Error::from)?;
        let windows: Vec<_> = self.grid.windows(&region).collect();
        let mut scored = 0;
        for chunk in windows.chunks(CHUNK_WINDOWS) {
            let first = chunk[0].start0;
            let last = chunk[chunk.len() - 1].start0 + self.window as i64;
            signals.read_span(&contig, first, last, &mut self.span)?;
            for w in chunk {
                let offset = (w.start0 - first) as usize;
                let sequence = &self.span.sequence[offset..offset + self.window];
                let id = if count_bases(sequence) == 0 {
                    None
                } else {
                    self.bins.from_span(
                        &self.span,
                        offset,
                        self.window,
                        self.bin_size,
                        &self.normalisers,
                    );
                    scored += 1;
                    Some(scorer.push(sequence, &self.bins, Some((&contig, w.start0))))
                };
                pending.windows.push((w.core_start0, w.core_end0, id));
            }
        }
        if scored == 0 {
            pending.windows.clear();
            pending.reason = Some(Reason::AllN);
        } else if self.linker.is_some() {
            pending.link = LinkedGene::Ask {
                contig: contig.clone(),
                start0,
                end0,
            };
        }
        pending.contig = contig.name;
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_write() {
        let mut record = Record::default();
        record.parse_into("chr1\t0\t600\tpeak", 1).unwrap();
        let p = |probability| {
            Some(Prediction {
                logit: 0.0,
                probability,
            })
        };
        let pending = Pending {
            record: record.clone(),
            ending: Ending::CrLf,
            contig: "chr1".into(),
            reason: None,
            windows: vec![(0, 200, Some(7)), (200, 400, None), (400, 600, Some(8))],
            gene: Some(("G".into(), 5)),
            link: LinkedGene::Found(Some(("L".into(), 0.25))),
            threshold: 0.5,
        };
        let mut summary = Summary::new(
            super::super::Format::Bed,
            crate::model::onnx::ActiveDevice::Cpu,
            4,
        );
        let mut out = String::new();
        pending.write(7, &[p(0.6), p(0.2)], &mut out, &mut summary);
        assert_eq!(
            out,
            "chr1\t0\t600\tpeak\t0.6000\t0.4000\t1\tG\t5\tL\t0.2500\t.\r\n"
        );
        let skipped = Pending {
            record,
            ending: Ending::Lf,
            contig: String::new(),
            reason: Some(Reason::UnknownContig),
            windows: vec![],
            gene: None,
            link: LinkedGene::NotAsked,
            threshold: 0.5,
        };
        out.clear();
        skipped.write(9, &[], &mut out, &mut summary);
        assert_eq!(
            out,
            "chr1\t0\t600\tpeak\t.\t.\t.\t.\t.\t.\t.\tunknown_contig\n"
        );
        assert_eq!(
            (summary.records, summary.scored, summary.passed_through),
            (2, 1, 1)
        );
    }
}
