//! The reader thread of an annotation run: decompressed lines checked and parsed into records,
//! in input order. A data line that cannot be parsed is passed on unchanged in its place (the
//! first few with a warning), or, with `--strict`, as a fatal item; a VCF record whose only
//! fault is its REF or ALT goes on as a record, for the planner to skip as `invalid_allele`.

use std::collections::HashSet;
use std::io::BufRead;

use crossbeam_channel::Sender;

use crate::io::text::{Ending, LineError, LineReader};
use crate::io::{bed as bed_io, vcf as vcf_io};

use super::{Error, Format};

pub(super) type Lines = LineReader<Box<dyn BufRead + Send>>;

/// From the reader thread to the encoder, in input order.
pub(super) enum Item {
    /// A line written as it is (a BED comment or track line), terminator included.
    Text(String),
    /// A VCF record.
    Vcf(vcf_io::Record, Ending),
    /// A BED record.
    Bed(bed_io::Record, Ending),
    /// A data line that cannot be parsed, written back as it came (terminator included).
    Unparsed {
        /// The line's bytes.
        raw: Vec<u8>,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        error: String,
    },
    /// The input cannot go on: everything before is written, then this error ends the run.
    Fatal(Error),
}

/// Names an input for error messages.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub(super) name: String,
    pub(super) compressed: bool,
    pub(super) format: Format,
    /// Unparsable data lines are fatal (`--strict`).
    pub(super) strict: bool,
}

/// Unparsable data lines logged individually before the rest are only counted.
const LOGGED_UNPARSED: usize = 10;

impl Source {
    pub(super) fn line_error(&self, error: LineError) -> Error {
        match error {
            LineError::NotUtf8 { line } => match self.format {
                Format::Vcf => Error::Vcf {
                    input: self.name.clone(),
                    source: vcf_io::ParseError {
                        line,
                        kind: vcf_io::ParseErrorKind::NotUtf8,
                    },
                },
                Format::Bed => Error::Bed {
                    input: self.name.clone(),
                    source: bed_io::ParseError {
                        line,
                        kind: bed_io::ParseErrorKind::NotUtf8,
                    },
                },
            },
            LineError::TooLong { line, limit } => Error::LineTooLong {
                input: self.name.clone(),
                line,
                limit,
            },
            LineError::Io { line, source } if self.compressed => Error::Truncated {
                input: self.name.clone(),
                line,
                source,
            },
            LineError::Io { line, source } => Error::Read {
                input: self.name.clone(),
                line,
                source,
            },
        }
    }

    pub(super) fn vcf_error(&self, source: vcf_io::ParseError) -> Error {
        Error::Vcf {
            input: self.name.clone(),
            source,
        }
    }

    pub(super) fn bed_error(&self, source: bed_io::ParseError) -> Error {
        Error::Bed {
            input: self.name.clone(),
            source,
        }
    }
}

/// Turns a data line that cannot be parsed into its item: fatal with `--strict`, otherwise the
/// line unchanged (warned about, the first [`LOGGED_UNPARSED`]).
struct Unparsable<'a> {
    source: &'a Source,
    logged: usize,
}

impl<'a> Unparsable<'a> {
    fn new(source: &'a Source) -> Self {
        Self { source, logged: 0 }
    }

    /// `error` is what is wrong with the last line of `lines`; `fatal` makes the strict item.
    fn item(
        &mut self,
        lines: &Lines,
        error: &dyn std::fmt::Display,
        fatal: impl FnOnce() -> Error,
    ) -> Item {
        if self.source.strict {
            return Item::Fatal(fatal());
        }
        let line = lines.line_number();
        if self.logged < LOGGED_UNPARSED {
            self.logged += 1;
            tracing::warn!(
                "{}: cannot parse line {line} ({error}); written unchanged{}",
                self.source.name,
                if self.logged == LOGGED_UNPARSED {
                    "; further such lines are counted, not logged"
                } else {
                    ""
                }
            );
        }
        let (bytes, ending) = lines.raw();
        let mut raw = Vec::with_capacity(bytes.len() + 2);
        raw.extend_from_slice(bytes);
        raw.extend_from_slice(ending.as_str().as_bytes());
        Item::Unparsed {
            raw,
            line,
            error: error.to_string(),
        }
    }

    /// A line the reader could not turn into text: not UTF-8 is a data-line fault, anything
    /// else (a read error, a line past the length limit) ends the run.
    fn line_error(&mut self, lines: &Lines, error: LineError) -> Item {
        match error {
            LineError::NotUtf8 { .. } => {
                let source = self.source;
                let message = "the line is not valid UTF-8";
                self.item(lines, &message, || source.line_error(error))
            }
            other => Item::Fatal(self.source.line_error(other)),
        }
    }
}

/// Warns once when records are not sorted (which annotation does not need).
#[derive(Default)]
struct OrderCheck {
    current: Option<(String, u64)>,
    finished: HashSet<String>,
    warned: bool,
}

impl OrderCheck {
    fn check(&mut self, input: &str, contig: &str, position: u64, line: usize) {
        if self.warned {
            return;
        }
        let unsorted = match &mut self.current {
            Some((current, last)) if current == contig => {
                let before = position < *last;
                *last = position;
                before
            }
            current => {
                if let Some((previous, _)) = current.take() {
                    self.finished.insert(previous);
                }
                *current = Some((contig.to_string(), position));
                self.finished.contains(contig)
            }
        };
        if unsorted {
            self.warned = true;
            tracing::warn!("{input} is not sorted by position (line {line}, {contig}:{position}); that is fine: annotation keeps input order and needs no sorting, but reads the reference less efficiently");
        }
    }
}

pub(super) fn read_vcf_header(lines: &mut Lines, source: &Source) -> Result<vcf_io::Header, Error> {
    let mut parser = vcf_io::HeaderParser::new();
    let mut line = String::new();
    loop {
        let ending = lines
            .read_line(&mut line)
            .map_err(|e| source.line_error(e))?;
        let Some(ending) = ending else {
            let number = lines.line_number();
            if number == 0 {
                return Err(Error::Empty {
                    input: source.name.clone(),
                });
            }
            return Err(source.vcf_error(vcf_io::ParseError {
                line: number,
                kind: vcf_io::ParseErrorKind::MissingHeaderLine,
            }));
        };
        if parser
            .push(&line, ending, lines.line_number())
            .map_err(|e| source.vcf_error(e))?
        {
            return Ok(parser.finish());
        }
    }
}

/// Reads the leading header lines of a BED stream; returns them and the item for the first
/// line after them (a record, or what that line gives), if any.
///
/// # Errors
///
/// [`Error::Empty`] for an input without a single line.
pub(super) fn read_bed_header(
    lines: &mut Lines,
    source: &Source,
) -> Result<(String, Option<Item>), Error> {
    let mut leading = String::new();
    let mut line = String::new();
    let mut unparsable = Unparsable::new(source);
    loop {
        match lines.read_line(&mut line) {
            Ok(None) if lines.line_number() == 0 => {
                return Err(Error::Empty {
                    input: source.name.clone(),
                })
            }
            Ok(None) => return Ok((leading, None)),
            Ok(Some(ending)) => {
                if bed_io::line_kind(&line) == bed_io::LineKind::Header {
                    leading.push_str(&line);
                    leading.push_str(ending.as_str());
                    continue;
                }
                let item = bed_item(&line, ending, lines, &mut unparsable);
                return Ok((leading, Some(item)));
            }
            Err(e) => return Ok((leading, Some(unparsable.line_error(lines, e)))),
        }
    }
}

fn bed_item(line: &str, ending: Ending, lines: &Lines, unparsable: &mut Unparsable<'_>) -> Item {
    let mut record = bed_io::Record::default();
    match record.parse_into(line, lines.line_number()) {
        Ok(()) => Item::Bed(record, ending),
        Err(e) => {
            let source = unparsable.source;
            unparsable.item(lines, &e.kind, || source.bed_error(e.clone()))
        }
    }
}

/// Sends `item`; returns whether the reader goes on (not after a fatal item or a closed channel).
fn send(items: &Sender<Item>, item: Item) -> bool {
    let fatal = matches!(item, Item::Fatal(_));
    items.send(item).is_ok() && !fatal
}

/// The reader thread for VCF data lines.
pub(super) fn read_vcf(mut lines: Lines, columns: usize, source: &Source, items: &Sender<Item>) {
    let mut line = String::new();
    let mut order = OrderCheck::default();
    let mut unparsable = Unparsable::new(source);
    loop {
        let item = match lines.read_line(&mut line) {
            Ok(None) => return,
            Ok(Some(ending)) => {
                let number = lines.line_number();
                let mut record = vcf_io::Record::default();
                let parsed = if line.starts_with('#') {
                    Err(vcf_io::ParseError {
                        line: number,
                        kind: vcf_io::ParseErrorKind::HeaderAfterColumns,
                    })
                } else {
                    record.parse_into(&line, columns, number)
                };
                match parsed {
                    Ok(()) => {
                        order.check(&source.name, record.chrom(), record.position(), number);
                        Item::Vcf(record, ending)
                    }
                    // every field but the alleles is in place: the planner skips it
                    Err(vcf_io::ParseError {
                        kind:
                            vcf_io::ParseErrorKind::InvalidReference(_)
                            | vcf_io::ParseErrorKind::InvalidAlternate(_),
                        ..
                    }) if !source.strict => Item::Vcf(record, ending),
                    Err(e) => unparsable.item(&lines, &e.kind, || source.vcf_error(e.clone())),
                }
            }
            Err(e) => unparsable.line_error(&lines, e),
        };
        if !send(items, item) {
            return;
        }
    }
}

/// The reader thread for BED lines (after the leading header).
pub(super) fn read_bed(
    mut lines: Lines,
    first: Option<Item>,
    source: &Source,
    items: &Sender<Item>,
) {
    let mut order = OrderCheck::default();
    let mut check = |item: &Item, number| {
        if let Item::Bed(record, _) = item {
            order.check(&source.name, record.chrom(), record.start0(), number);
        }
    };
    let Some(first) = first else { return };
    check(&first, lines.line_number());
    if !send(items, first) {
        return;
    }
    let mut line = String::new();
    let mut unparsable = Unparsable::new(source);
    loop {
        let item = match lines.read_line(&mut line) {
            Ok(None) => return,
            Ok(Some(ending)) => {
                if bed_io::line_kind(&line) == bed_io::LineKind::Header {
                    Item::Text(format!("{line}{}", ending.as_str()))
                } else {
                    bed_item(&line, ending, &lines, &mut unparsable)
                }
            }
            Err(e) => unparsable.line_error(&lines, e),
        };
        check(&item, lines.line_number());
        if !send(items, item) {
            return;
        }
    }
}
