//! BED text (3 to 12 columns, or more), line by line: header lines told apart from records, and
//! records parsed into a caller-owned, reused [`Record`] that keeps the line's own text.
//!
//! Header lines are `#` comments, `track` and `browser` lines, and empty lines; they may appear
//! anywhere, and [`line_kind`] says which a line is. A record has at least three tab-separated
//! columns: chrom (non-empty), start and end (non-negative integers, 0-based half-open,
//! `start <= end`; `start == end` is a zero-length feature).

use std::io::BufRead;

use super::text::{Ending, LineError, LineReader};

/// What is wrong with a record line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// Fewer than three tab-separated columns.
    #[error("expected at least 3 tab-separated columns (chrom, start, end), found {0}")]
    TooFewColumns(usize),
    /// An empty chrom column.
    #[error("chrom is empty")]
    EmptyChrom,
    /// A start that is not a non-negative integer.
    #[error("start {0:?} is not a non-negative integer")]
    InvalidStart(String),
    /// An end that is not a non-negative integer.
    #[error("end {0:?} is not a non-negative integer")]
    InvalidEnd(String),
    /// `end < start`.
    #[error("end {end} is before start {start}")]
    EndBeforeStart {
        /// 0-based start.
        start: u64,
        /// End.
        end: u64,
    },
    /// The line is not UTF-8.
    #[error("the line is not valid UTF-8")]
    NotUtf8,
}

/// A malformed line, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// Whether a line is a record or a header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// `#...`, `track ...`, `browser ...` or an empty line.
    Header,
    /// Anything else.
    Record,
}

/// Classifies a line (without terminator).
///
/// # Examples
///
/// ```
/// use cistrack::io::bed::{line_kind, LineKind};
/// assert_eq!(line_kind("track name=x"), LineKind::Header);
/// assert_eq!(line_kind("#chrom\tstart\tend"), LineKind::Header);
/// assert_eq!(line_kind("trackX\t1\t2"), LineKind::Record);
/// ```
pub fn line_kind(line: &str) -> LineKind {
    let keyword = |word: &str| {
        line.strip_prefix(word)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    };
    if line.is_empty() || line.starts_with('#') || keyword("track") || keyword("browser") {
        LineKind::Header
    } else {
        LineKind::Record
    }
}

/// A BED record: its text and its first three columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    line: String,
    chrom_end: usize,
    start0: u64,
    end0: u64,
    columns: usize,
}

impl Record {
    /// Parses a record line (no terminator) into `self`, reusing its buffer.
    ///
    /// # Errors
    ///
    /// [`ParseError`] naming `number`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut record = cistrack::io::bed::Record::default();
    /// record.parse_into("chr1\t100\t250\tpeak1", 7)?;
    /// assert_eq!((record.chrom(), record.start0(), record.end0(), record.columns()), ("chr1", 100, 250, 4));
    /// # Ok::<(), cistrack::io::bed::ParseError>(())
    /// ```
    pub fn parse_into(&mut self, line: &str, number: usize) -> Result<(), ParseError> {
        let error = |kind| ParseError { line: number, kind };
        let mut fields = line.split('\t');
        let chrom = fields.next().unwrap_or_default();
        let start = fields.next();
        let end = fields.next();
        let (Some(start), Some(end)) = (start, end) else {
            return Err(error(ParseErrorKind::TooFewColumns(
                line.split('\t').count(),
            )));
        };
        if chrom.is_empty() {
            return Err(error(ParseErrorKind::EmptyChrom));
        }
        let number_of = |text: &str| -> Option<u64> {
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                text.parse().ok()
            } else {
                None
            }
        };
        let start0 =
            number_of(start).ok_or_else(|| error(ParseErrorKind::InvalidStart(start.into())))?;
        let end0 = number_of(end).ok_or_else(|| error(ParseErrorKind::InvalidEnd(end.into())))?;
        if end0 < start0 {
            return Err(error(ParseErrorKind::EndBeforeStart {
                start: start0,
                end: end0,
            }));
        }
        self.columns = 3 + fields.count();
        self.line.clear();
        self.line.push_str(line);
        self.chrom_end = chrom.len();
        self.start0 = start0;
        self.end0 = end0;
        Ok(())
    }

    /// The whole line, without terminator.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// Chrom as written.
    pub fn chrom(&self) -> &str {
        &self.line[..self.chrom_end]
    }

    /// 0-based start.
    pub fn start0(&self) -> u64 {
        self.start0
    }

    /// 0-based exclusive end.
    pub fn end0(&self) -> u64 {
        self.end0
    }

    /// Number of columns.
    pub fn columns(&self) -> usize {
        self.columns
    }
}

/// One line of a BED stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A header line (its text is in the reader's buffer, see [`Reader::header_line`]).
    Header(Ending),
    /// A record, parsed into the caller's [`Record`].
    Record(Ending),
}

/// Errors of [`Reader`].
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A malformed line.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Reading failed.
    #[error(transparent)]
    Io(LineError),
}

impl From<LineError> for ReadError {
    fn from(e: LineError) -> Self {
        match e {
            LineError::NotUtf8 { line } => ReadError::Parse(ParseError {
                line,
                kind: ParseErrorKind::NotUtf8,
            }),
            e => ReadError::Io(e),
        }
    }
}

/// A BED reader over any buffered text stream.
#[derive(Debug)]
pub struct Reader<R> {
    lines: LineReader<R>,
    line: String,
}

impl<R: BufRead> Reader<R> {
    /// Wraps a stream.
    pub fn new(inner: R) -> Self {
        Self {
            lines: LineReader::new(inner),
            line: String::new(),
        }
    }

    /// Reads the next line: a header line (see [`Reader::header_line`]) or a record parsed
    /// into `record`; `None` at the end.
    ///
    /// # Errors
    ///
    /// [`ReadError::Parse`] for a malformed record, [`ReadError::Io`] when reading fails.
    pub fn read_line(&mut self, record: &mut Record) -> Result<Option<Line>, ReadError> {
        let Some(ending) = self.lines.read_line(&mut self.line)? else {
            return Ok(None);
        };
        match line_kind(&self.line) {
            LineKind::Header => Ok(Some(Line::Header(ending))),
            LineKind::Record => {
                record.parse_into(&self.line, self.lines.line_number())?;
                Ok(Some(Line::Record(ending)))
            }
        }
    }

    /// The last header line read.
    pub fn header_line(&self) -> &str {
        &self.line
    }

    /// Lines read so far.
    pub fn line_number(&self) -> usize {
        self.lines.line_number()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_reader() {
        let text = "track name=x\n#c\tb\n\nchr1\t0\t10\n1\t5\t5\tname\t0\t+\r\n# late\nchr2\t1\t2";
        let mut reader = Reader::new(text.as_bytes());
        let mut record = Record::default();
        let mut seen = Vec::new();
        while let Some(line) = reader.read_line(&mut record).unwrap() {
            seen.push(match line {
                Line::Header(_) => format!("H {}", reader.header_line()),
                Line::Record(e) => format!(
                    "R {} {} {} {} {e:?}",
                    record.chrom(),
                    record.start0(),
                    record.end0(),
                    record.columns()
                ),
            });
        }
        assert_eq!(
            seen,
            [
                "H track name=x",
                "H #c\tb",
                "H ",
                "R chr1 0 10 3 Lf",
                "R 1 5 5 6 CrLf",
                "H # late",
                "R chr2 1 2 3 None"
            ]
        );
    }

    #[test]
    fn test_parse_into_errors() {
        let cases: &[(&str, ParseErrorKind)] = &[
            ("chr1\t5", ParseErrorKind::TooFewColumns(2)),
            ("chr1 5 10", ParseErrorKind::TooFewColumns(1)),
            ("\t5\t10", ParseErrorKind::EmptyChrom),
            ("chr1\t-5\t10", ParseErrorKind::InvalidStart("-5".into())),
            ("chr1\t5\t1e3", ParseErrorKind::InvalidEnd("1e3".into())),
            (
                "chr1\t50\t10",
                ParseErrorKind::EndBeforeStart { start: 50, end: 10 },
            ),
        ];
        let mut record = Record::default();
        for (line, kind) in cases {
            assert_eq!(
                record.parse_into(line, 4),
                Err(ParseError {
                    line: 4,
                    kind: kind.clone()
                }),
                "{line:?}"
            );
        }
        let mut reader = Reader::new(&b"chr1\t1\t2\nchr1\t\xff\t3\n"[..]);
        reader.read_line(&mut record).unwrap();
        assert!(matches!(
            reader.read_line(&mut record),
            Err(ReadError::Parse(ParseError {
                line: 2,
                kind: ParseErrorKind::NotUtf8
            }))
        ));
    }
}
