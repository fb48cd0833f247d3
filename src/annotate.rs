//! `cistrack annotate`: VCF or BED records streamed through an enhancer model and written back,
//! annotated, in input order, in bounded memory.
//!
//! # Pipeline
//!
//! ```text
//! input ─► reader thread ──items──► encoder ──planned records──► collector ─► output
//!          (decompress, parse,      (FASTA + bigWig,   │            (reorder buffer,
//!           check lines)             REF check,        │             linked genes,
//!                                    windows cut)      │             format, write)
//!                                          │           │                ▲
//!                                          └─► pipeline::Engine ────────┘ results
//!                                              (the queue and model workers of every command)
//! ```
//!
//! - The **reader** thread decompresses (gzip and bgzip, detected by magic bytes), splits lines,
//!   checks them and parses records; a malformed line travels down the pipeline as a fatal item
//!   in its place, so every record before it is still written.
//! - The **encoder** resolves each record's contig through the build's aliases, reads the
//!   reference and signals, decides whether (and which of) the record can be scored, and pushes
//!   its windows through [`scorer::WindowScorer`], the single entry point of windows into the
//!   model: a cache hit is answered at once, a miss goes on the engine's queue (the same queue,
//!   batch rules and workers as `score` and the daemon). It then sends the record, with the ids
//!   of its windows, to the collector.
//! - The **collector** keeps records in input order in a reorder buffer, fills in model results
//!   as they come back, looks up each record's linked gene (the link model's work, kept off the
//!   encoder so the enhancer model's queue never waits for it), and writes each record as soon
//!   as it and all records before it are complete. Records that need no model (pass-through)
//!   are complete on arrival.
//!
//! # Memory
//!
//! Every queue is bounded: [`ITEM_QUEUE`] parsed records between reader and encoder,
//! [`PLANNED_QUEUE`] records between encoder and collector and at most [`MAX_IN_FLIGHT`]
//! records in the reorder buffer; the windows queued on the engine belong to those records.
//! Memory therefore does not grow with the input; it grows with the length of the longest line
//! and, for BED, with the number of windows of the longest interval (at most
//! [`bed::MAX_INTERVAL`] bases).
//!
//! # What is fatal and what is passed through
//!
//! Fatal (exit status 1, message naming the line; every record before it is written): an
//! empty input (no bytes, VCF and BED alike), a missing or invalid VCF header (no
//! `##fileformat=VCF` first line, an unknown version, no `#CHROM` line, data before it), a
//! line longer than `--max-line-length` (16 MiB; memory stays bounded), a truncated or corrupt
//! gzip/bgzip stream (naming the last complete line), and read/write/model errors.
//!
//! Written unchanged, with a warning (the first ten) and a count: a data line that cannot be
//! parsed at all (wrong column count, bad POS/start/end, empty CHROM, an empty line, a header
//! line after `#CHROM`, non-UTF-8 bytes). A VCF record whose REF or ALT is not a valid allele
//! keeps its place too, with `CISTRACK_SKIP=invalid_allele`. With `--strict` each of these
//! stops the run instead, as a fatal error.
//!
//! Passed through with a reason ([`Reason`]), never dropped: everything that is well-formed but
//! cannot be scored. An input annotated before (its header declares `INFO/CISTRACK`, or records
//! carry `CISTRACK=`/`CISTRACK_SKIP=` values without it) is annotated again: the old header
//! lines and values are replaced, never doubled, and the count is reported with a warning. Unsorted input is fine (annotation needs no order); cistrack warns once,
//! because the reference is then read less efficiently.

pub mod bed;
pub mod genes;
pub mod input;
pub mod ism;
pub mod linker;
mod pipeline;
mod progress;
mod reader;
pub mod reference;
pub mod scorer;
pub mod variant;
pub mod variant_background;
pub mod vcf;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::time::Duration;

use crate::genome::Build;
use crate::model::onnx::ActiveDevice;
use crate::model::{Device, ModelSpec};

pub use input::Input;

/// Parsed records waiting between reader and encoder.
pub const ITEM_QUEUE: usize = 1024;
/// Planned records waiting between encoder and collector.
pub const PLANNED_QUEUE: usize = 1024;
/// Records held in the collector's reorder buffer at most.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Input and output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// VCF: an INFO field per record.
    Vcf,
    /// BED: columns appended to each record.
    Bed,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Vcf => "VCF",
            Format::Bed => "BED",
        })
    }
}

/// Why a record, an ALT allele or an interval was not scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// VCF: REF or an ALT is not an allele VCF allows (`B`, `.` as REF, `X`, `I`, ...); the
    /// record is written unchanged otherwise (`annotate --strict` stops at it instead).
    InvalidAllele,
    /// VCF: ALT is `.` (no alternate allele).
    NoAlt,
    /// The contig is not in the build's FASTA under any alias.
    UnknownContig,
    /// VCF: REF (POS 0 or past the contig end); BED: the interval ends past the contig.
    OutOfBounds,
    /// VCF: REF differs from the FASTA (case-insensitive; FASTA N counts as a mismatch unless
    /// the VCF REF base is N too).
    RefMismatch,
    /// VCF: a symbolic ALT (`<DEL>`).
    SymbolicAllele,
    /// VCF: a breakend ALT.
    Breakend,
    /// VCF: the `*` ALT (overlapping deletion).
    StarAllele,
    /// VCF: the changed sequence (after trimming shared bases) is longer than half the model
    /// window.
    AlleleTooLong,
    /// The window(s) hold no A/C/G/T base (assembly gaps, the N parts of a partial genome).
    AllN,
    /// BED: a zero-length interval (`start == end`).
    EmptyInterval,
    /// BED: an interval longer than [`bed::MAX_INTERVAL`].
    TooLong,
}

impl Reason {
    /// Every reason, in a fixed order.
    pub const ALL: [Reason; 12] = [
        Reason::InvalidAllele,
        Reason::NoAlt,
        Reason::UnknownContig,
        Reason::OutOfBounds,
        Reason::RefMismatch,
        Reason::SymbolicAllele,
        Reason::Breakend,
        Reason::StarAllele,
        Reason::AlleleTooLong,
        Reason::AllN,
        Reason::EmptyInterval,
        Reason::TooLong,
    ];

    /// The code written to the output.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidAllele => "invalid_allele",
            Reason::NoAlt => "no_alt",
            Reason::UnknownContig => "unknown_contig",
            Reason::OutOfBounds => "out_of_bounds",
            Reason::RefMismatch => "ref_mismatch",
            Reason::SymbolicAllele => "symbolic_allele",
            Reason::Breakend => "breakend",
            Reason::StarAllele => "star_allele",
            Reason::AlleleTooLong => "allele_too_long",
            Reason::AllN => "all_n",
            Reason::EmptyInterval => "empty_interval",
            Reason::TooLong => "too_long",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of an annotation run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed VCF line or header.
    #[error("invalid VCF {input}")]
    Vcf {
        /// Input name (`stdin` or the path).
        input: String,
        /// The line and what is wrong.
        #[source]
        source: crate::io::vcf::ParseError,
    },
    /// A malformed BED line.
    #[error("invalid BED {input}")]
    Bed {
        /// Input name.
        input: String,
        /// The line and what is wrong.
        #[source]
        source: crate::io::bed::ParseError,
    },
    /// A compressed input that ends early or is corrupt.
    #[error("cannot read {input} past line {line}: the compressed stream is truncated or corrupt")]
    Truncated {
        /// Input name.
        input: String,
        /// Lines read completely.
        line: usize,
        /// The decompressor's error.
        #[source]
        source: std::io::Error,
    },
    /// Reading the input failed.
    #[error("cannot read {input} past line {line}")]
    Read {
        /// Input name.
        input: String,
        /// Lines read completely.
        line: usize,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The input cannot be opened.
    #[error("cannot open {input}")]
    Open {
        /// Input name.
        input: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line longer than `--max-line-length`.
    #[error("{input}: line {line} is longer than {limit} bytes, the line-length limit; nothing after it was read (raise --max-line-length if the line is a real record)")]
    LineTooLong {
        /// Input name.
        input: String,
        /// 1-based number of the long line.
        line: usize,
        /// The limit, bytes.
        limit: usize,
    },
    /// No bytes at all (VCF and BED alike).
    #[error("{input} is empty: nothing to annotate (did an earlier step of the pipeline fail?)")]
    Empty {
        /// Input name.
        input: String,
    },
    /// `--links-bed` with BED input (its records have no alleles).
    #[error("--links-bed needs VCF input: {input} is BED, whose intervals have no alleles")]
    LinksBedNeedsVcf {
        /// The input's name.
        input: String,
    },
    /// Writing the output failed (a closed pipe included).
    #[error("cannot write {target}")]
    Write {
        /// Output name (`stdout` or the path).
        target: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Build, model or parameter errors.
    #[error(transparent)]
    Cistrack(#[from] crate::Error),
}

impl From<crate::genome::Error> for Error {
    fn from(e: crate::genome::Error) -> Self {
        Error::Cistrack(e.into())
    }
}

impl From<crate::model::Error> for Error {
    fn from(e: crate::model::Error) -> Self {
        Error::Cistrack(e.into())
    }
}

impl From<crate::track::Error> for Error {
    fn from(e: crate::track::Error) -> Self {
        Error::Cistrack(e.into())
    }
}

/// How to annotate.
#[derive(Debug, Clone)]
pub struct AnnotateOptions {
    /// Windows per model call; `None` picks the device's default (as `cistrack score`).
    pub batch_size: Option<usize>,
    /// Model workers (`None`: 1 on the CPU, 4 with CUDA).
    pub workers: Option<usize>,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Requested device.
    pub device: Device,
    /// BED: probability at or above which windows merge into elements (default: the model's).
    pub threshold: Option<f64>,
    /// Show a progress line on stderr (drawn only when stderr is a terminal).
    pub progress: bool,
    /// The command line, recorded in the output header.
    pub command: String,
    /// Output name for messages (`stdout` or the path).
    pub target: String,
    /// The per-build score cache; `None` computes every window.
    pub cache: Option<CacheSettings>,
    /// Stop at the first line that cannot be parsed (default: write it unchanged and go on).
    pub strict: bool,
    /// Longest input line, bytes.
    pub max_line_bytes: usize,
    /// Motifs scanned around each VCF allele (`CISTRACK_MOTIFS`); `None`: no scan.
    pub motifs: Option<std::sync::Arc<crate::motif::MotifSet>>,
    /// What VCF alleles in candidate elements do to the build's link model
    /// (`CISTRACK_LINKS`), when the build has one.
    pub link_effects: bool,
    /// Also write the link consequences as BED here (VCF input).
    pub links_bed: Option<std::path::PathBuf>,
}

pub use crate::pipeline::cache::CacheSettings;

impl Default for AnnotateOptions {
    fn default() -> Self {
        Self {
            batch_size: None,
            workers: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            device: Device::Auto,
            threshold: None,
            progress: false,
            command: "cistrack annotate".into(),
            target: "stdout".into(),
            cache: None,
            strict: false,
            max_line_bytes: crate::io::text::DEFAULT_MAX_LINE,
            motifs: None,
            link_effects: true,
            links_bed: None,
        }
    }
}

/// How VCF REF alleles compared with the FASTA (records on known contigs, within bounds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReferenceStats {
    /// REF equal to the FASTA.
    pub matched: u64,
    /// REF different from the FASTA.
    pub mismatched: u64,
    /// Of the mismatches, those where the FASTA has N (no sequence there).
    pub mismatched_at_n: u64,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Input format.
    pub format: Format,
    /// Data records read (and written).
    pub records: u64,
    /// Records with at least one score (VCF: an ALT scored; BED: the interval scored).
    pub scored: u64,
    /// Records written without any score.
    pub passed_through: u64,
    /// VCF: ALT alleles scored.
    pub alleles_scored: u64,
    /// Not scored, by reason: VCF ALT alleles (a record-level reason counts once per ALT,
    /// `no_alt` once per record), BED intervals.
    pub skipped: BTreeMap<Reason, u64>,
    /// VCF: REF against the FASTA.
    pub reference: ReferenceStats,
    /// VCF: records that already carried `CISTRACK` or `CISTRACK_SKIP` values (replaced).
    pub replaced: u64,
    /// Data lines that could not be parsed, written unchanged (not counted in `records`).
    pub unparsed: u64,
    /// The first of those: line number and what was wrong.
    pub first_unparsed: Option<(usize, String)>,
    /// Model windows scored.
    pub windows: u64,
    /// Of those, windows read from the per-build cache instead of computed.
    pub windows_cached: u64,
    /// Where the model ran.
    pub device: ActiveDevice,
    /// Windows per model call.
    pub batch_size: usize,
    /// Wall time of the pipeline.
    pub elapsed: Duration,
}

impl Summary {
    fn new(format: Format, device: ActiveDevice, batch_size: usize) -> Self {
        Self {
            format,
            records: 0,
            scored: 0,
            passed_through: 0,
            alleles_scored: 0,
            skipped: BTreeMap::new(),
            reference: ReferenceStats::default(),
            replaced: 0,
            unparsed: 0,
            first_unparsed: None,
            windows: 0,
            windows_cached: 0,
            device,
            batch_size,
            elapsed: Duration::ZERO,
        }
    }

    /// Records per second.
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// `reason count, ...` of [`Summary::skipped`], or `none`.
    pub fn skipped_text(&self) -> String {
        if self.skipped.is_empty() {
            return "none".into();
        }
        self.skipped
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Annotates `input` into `output` with the model `spec` of `build`.
///
/// The header is read and checked before the model loads, so a bad input fails fast; every
/// record is then written exactly once, in input order.
///
/// # Errors
///
/// [`Error`]: a malformed input (with its line), invalid options,
/// build/model errors, read or write failures. Records before a malformed line are written
/// before the error is returned.
///
/// # Examples
///
/// ```no_run
/// use cistrack::annotate::{self, AnnotateOptions, Format, Input};
/// use cistrack::{config::Config, genome::Build, model::ModelSpec};
/// let config = Config::load("tests/data/fixture.toml".as_ref())?;
/// let build = Build::open(config.build(Some("fixture"))?)?;
/// let spec = ModelSpec::load(&build.model_dir(None)?)?;
/// let input = Input::open(Some("tests/data/annotate/indels.vcf".as_ref()), None)?;
/// let summary = annotate::annotate(&build, &spec, input, Box::new(std::io::stdout()), &AnnotateOptions::default())?;
/// eprintln!("{} records, {} scored", summary.records, summary.scored);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn annotate(
    build: &Build,
    spec: &ModelSpec,
    input: Input,
    output: Box<dyn Write + Send>,
    options: &AnnotateOptions,
) -> Result<Summary, Error> {
    pipeline::run(build, spec, input, output, options)
}

/// Writes `text` to `out`, naming `target` on failure.
fn write_all(out: &mut dyn Write, target: &str, text: &str) -> Result<(), Error> {
    write_bytes(out, target, text.as_bytes())
}

/// Writes `bytes` to `out`, naming `target` on failure.
fn write_bytes(out: &mut dyn Write, target: &str, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes).map_err(|source| Error::Write {
        target: target.to_string(),
        source,
    })
}

/// Replaces the characters that INFO values and BED columns cannot hold (`,;=|` and white
/// space) by `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if matches!(c, ',' | ';' | '=' | '|') || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A number with 4 decimals, `0.0000` for values that round to zero (no `-0.0000`).
pub fn decimal4(value: f64) -> String {
    let text = format!("{value:.4}");
    if text == "-0.0000" {
        "0.0000".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sanitize_and_decimal4() {
        assert_eq!(sanitize("A|B,C;D=E F"), "A_B_C_D_E_F");
        assert_eq!(decimal4(-0.00001), "0.0000");
        assert_eq!(decimal4(0.12345), "0.1235");
        assert_eq!(decimal4(-0.5), "-0.5000");
    }

    #[test]
    fn test_reason_codes_are_unique() {
        let codes: std::collections::HashSet<&str> =
            Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(codes.len(), Reason::ALL.len());
    }
}
