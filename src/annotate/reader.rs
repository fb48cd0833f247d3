//! The reader thread of an annotation run: decompressed lines checked and parsed into records,
//! in input order, with a malformed line passed on as a fatal item in its place.

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
    /// The input cannot go on: everything before is written, then this error ends the run.
    Fatal(Error),
}

/// Names an input for error messages.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub(super) name: String,
    pub(super) compressed: bool,
    pub(super) format: Format,
}

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
            return Err(source.vcf_error(vcf_io::ParseError {
                line: number,
                kind: if number == 0 {
                    vcf_io::ParseErrorKind::EmptyInput
                } else {
                    vcf_io::ParseErrorKind::MissingHeaderLine
                },
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
/// line after them (a record, or the error that line gives), if any.
pub(super) fn read_bed_header(lines: &mut Lines, source: &Source) -> (String, Option<Item>) {
    let mut leading = String::new();
    let mut line = String::new();
    loop {
        match lines.read_line(&mut line) {
            Ok(None) => return (leading, None),
            Ok(Some(ending)) => {
                if bed_io::line_kind(&line) == bed_io::LineKind::Header {
                    leading.push_str(&line);
                    leading.push_str(ending.as_str());
                    continue;
                }
                let mut record = bed_io::Record::default();
                let item = match record.parse_into(&line, lines.line_number()) {
                    Ok(()) => Item::Bed(record, ending),
                    Err(e) => Item::Fatal(source.bed_error(e)),
                };
                return (leading, Some(item));
            }
            Err(e) => return (leading, Some(Item::Fatal(source.line_error(e)))),
        }
    }
}

/// The reader thread for VCF data lines.
pub(super) fn read_vcf(mut lines: Lines, columns: usize, source: &Source, items: &Sender<Item>) {
    let mut line = String::new();
    let mut order = OrderCheck::default();
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
                    Err(e) => Item::Fatal(source.vcf_error(e)),
                }
            }
            Err(e) => Item::Fatal(source.line_error(e)),
        };
        let fatal = matches!(item, Item::Fatal(_));
        if items.send(item).is_err() || fatal {
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
    let mut check = |record: &bed_io::Record, number| {
        order.check(&source.name, record.chrom(), record.start0(), number);
    };
    if let Some(item) = first {
        if let Item::Bed(record, _) = &item {
            check(record, lines.line_number());
        }
        let fatal = matches!(item, Item::Fatal(_));
        if items.send(item).is_err() || fatal {
            return;
        }
    } else {
        return;
    }
    let mut line = String::new();
    loop {
        let item = match lines.read_line(&mut line) {
            Ok(None) => return,
            Ok(Some(ending)) => {
                let number = lines.line_number();
                if bed_io::line_kind(&line) == bed_io::LineKind::Header {
                    Item::Text(format!("{line}{}", ending.as_str()))
                } else {
                    let mut record = bed_io::Record::default();
                    match record.parse_into(&line, number) {
                        Ok(()) => {
                            check(&record, number);
                            Item::Bed(record, ending)
                        }
                        Err(e) => Item::Fatal(source.bed_error(e)),
                    }
                }
            }
            Err(e) => Item::Fatal(source.line_error(e)),
        };
        let fatal = matches!(item, Item::Fatal(_));
        if items.send(item).is_err() || fatal {
            return;
        }
    }
}
