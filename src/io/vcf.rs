//! VCF text, line by line: the header checked as it streams past, and data records parsed into a
//! caller-owned, reused [`Record`] that keeps the line's own text (so a writer can change one
//! column and leave every other byte as it was).
//!
//! Only what annotation needs is interpreted: CHROM, POS, REF, ALT and the position of INFO.
//! The other columns are checked for count only. Validation follows VCF 4.2/4.3:
//!
//! - the first line starts with `##fileformat=VCF`; meta lines (`##`) follow; then the
//!   `#CHROM POS ID REF ALT QUAL FILTER INFO [FORMAT samples...]` line, tab-separated;
//! - every data line has as many tab-separated columns as the `#CHROM` line;
//! - POS is a non-negative integer (0 is allowed by the spec for telomeric breakends);
//! - REF is a non-empty string of `A`, `C`, `G`, `T`, `N` (either case);
//! - ALT is `.` (no alternate allele) or a comma-separated list of alleles, each a base string,
//!   `*`, a symbolic allele `<ID>`, or a breakend (`G]17:198982]`, `.A`, `G.`).

use std::io::BufRead;

use super::text::{Ending, LineError, LineReader};

/// Prefix of the first line of every VCF.
pub const FILEFORMAT_PREFIX: &str = "##fileformat=VCF";
/// What may follow [`FILEFORMAT_PREFIX`] (the versions of the VCF specification htslib reads).
pub const SUPPORTED_VERSIONS: [&str; 6] = ["v4.0", "v4.1", "v4.2", "v4.3", "v4.4", "v4.5"];

/// The eight fixed columns, as named in the `#CHROM` line.
pub const FIXED_COLUMNS: [&str; 8] = [
    "#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO",
];

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The input has no line at all.
    #[error("the input is empty")]
    EmptyInput,
    /// The first line is not `##fileformat=VCF...`.
    #[error("a VCF must start with a ##fileformat=VCF line")]
    MissingFileFormat,
    /// A `##fileformat` of a VCF version this reader does not know.
    #[error("{0:?} is not a VCF version cistrack reads (VCFv4.0 to VCFv4.5)")]
    UnsupportedVersion(String),
    /// The input ended before the `#CHROM` line.
    #[error("the header has no #CHROM line (the input ended first)")]
    MissingHeaderLine,
    /// A data line where the header should continue.
    #[error("data line before the #CHROM header line")]
    DataBeforeHeader,
    /// A `#` line that is neither `##meta` nor a valid `#CHROM` line.
    #[error("the #CHROM line must start with the 8 tab-separated columns #CHROM POS ID REF ALT QUAL FILTER INFO, found {0:?}")]
    InvalidHeaderLine(String),
    /// A header line after the `#CHROM` line.
    #[error("header line after the #CHROM line")]
    HeaderAfterColumns,
    /// An empty data line.
    #[error("empty line")]
    EmptyLine,
    /// A data line with a different number of columns from the `#CHROM` line.
    #[error("expected {expected} tab-separated columns as in the #CHROM line, found {found}")]
    ColumnCount {
        /// Columns of the `#CHROM` line.
        expected: usize,
        /// Columns found.
        found: usize,
    },
    /// An empty CHROM.
    #[error("CHROM is empty")]
    EmptyChrom,
    /// POS that is not a non-negative integer.
    #[error("POS {0:?} is not a non-negative integer")]
    InvalidPosition(String),
    /// REF that is not a base string.
    #[error("REF {0:?} is not a string of A, C, G, T and N")]
    InvalidReference(String),
    /// An ALT allele of no known kind.
    #[error("ALT allele {0:?} is not a base string, *, a symbolic <ID> or a breakend")]
    InvalidAlternate(String),
    /// The line is not UTF-8.
    #[error("the line is not valid UTF-8")]
    NotUtf8,
}

/// A malformed line, with its 1-based number (0 for [`ParseErrorKind::EmptyInput`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "line {}: {}", self.line, self.kind)
        }
    }
}

impl std::error::Error for ParseError {}

/// The header: meta lines and the `#CHROM` line, as read (terminators kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// The `##` lines, each with its terminator.
    pub meta: Vec<String>,
    /// The `#CHROM` line with its terminator.
    pub column_line: String,
    /// Number of columns of the `#CHROM` line (8 for sites-only files).
    pub columns: usize,
}

impl Header {
    /// True when a meta line declares INFO field `id`.
    pub fn has_info(&self, id: &str) -> bool {
        let prefix = format!("##INFO=<ID={id},");
        self.meta.iter().any(|l| l.starts_with(&prefix))
    }
}

/// Checks header lines one at a time.
#[derive(Debug, Default)]
pub struct HeaderParser {
    header: Header,
    lines: usize,
}

impl HeaderParser {
    /// A parser expecting line 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next line (without terminator) and its line number; returns `true` once the
    /// `#CHROM` line completed the header.
    ///
    /// # Errors
    ///
    /// [`ParseErrorKind::MissingFileFormat`], [`ParseErrorKind::DataBeforeHeader`] or
    /// [`ParseErrorKind::InvalidHeaderLine`].
    pub fn push(&mut self, line: &str, ending: Ending, number: usize) -> Result<bool, ParseError> {
        let error = |kind| ParseError { line: number, kind };
        self.lines += 1;
        if self.lines == 1 {
            let Some(version) = line.strip_prefix(FILEFORMAT_PREFIX) else {
                return Err(error(ParseErrorKind::MissingFileFormat));
            };
            if !SUPPORTED_VERSIONS.contains(&version.trim_end()) {
                let shown: String = line.chars().take(40).collect();
                return Err(error(ParseErrorKind::UnsupportedVersion(shown)));
            }
        }
        if line.starts_with("##") {
            self.header.meta.push(format!("{line}{}", ending.as_str()));
            return Ok(false);
        }
        if !line.starts_with('#') {
            return Err(error(ParseErrorKind::DataBeforeHeader));
        }
        let columns: Vec<&str> = line.split('\t').collect();
        if columns.len() < 8 || columns[..8] != FIXED_COLUMNS {
            let shown: String = line.chars().take(80).collect();
            return Err(error(ParseErrorKind::InvalidHeaderLine(shown)));
        }
        self.header.columns = columns.len();
        self.header.column_line = format!("{line}{}", ending.as_str());
        Ok(true)
    }

    /// The header read so far.
    pub fn finish(self) -> Header {
        self.header
    }
}

/// One ALT allele.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allele<'a> {
    /// A base string (`A`, `AT`, `acgN`).
    Bases(&'a str),
    /// `*`: the allele is missing because of an overlapping deletion.
    Star,
    /// `<DEL>`, `<INS:ME>`, `<*>`.
    Symbolic(&'a str),
    /// A breakend: `G]17:198982]`, `]13:123456]T`, `.A`, `G.`.
    Breakend(&'a str),
}

impl<'a> Allele<'a> {
    /// Classifies one allele of the ALT column.
    ///
    /// # Errors
    ///
    /// [`ParseErrorKind::InvalidAlternate`] for anything else.
    pub fn parse(text: &'a str) -> Result<Self, ParseErrorKind> {
        let invalid = || ParseErrorKind::InvalidAlternate(text.to_string());
        if text == "*" {
            Ok(Allele::Star)
        } else if is_bases(text) {
            Ok(Allele::Bases(text))
        } else if text.len() > 2 && text.starts_with('<') && text.ends_with('>') {
            let inner = &text[1..text.len() - 1];
            if inner.contains(['<', '>']) {
                Err(invalid())
            } else {
                Ok(Allele::Symbolic(text))
            }
        } else if text.contains(['[', ']']) {
            // Mate breakends: exactly two brackets of one kind around `chr:pos`.
            let brackets = text.matches(['[', ']']).count();
            if brackets == 2 && text.contains(':') && !text.contains(',') {
                Ok(Allele::Breakend(text))
            } else {
                Err(invalid())
            }
        } else if text.len() > 1
            && (text.strip_prefix('.').is_some_and(is_bases)
                || text.strip_suffix('.').is_some_and(is_bases))
        {
            Ok(Allele::Breakend(text))
        } else {
            Err(invalid())
        }
    }
}

fn is_bases(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| matches!(b.to_ascii_uppercase(), b'A' | b'C' | b'G' | b'T' | b'N'))
}

/// A data line: its text, where its first eight columns are, and the parsed POS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    line: String,
    /// `(start, end)` byte offsets of the first eight columns.
    fields: [(usize, usize); 8],
    columns: usize,
    position: u64,
}

impl Record {
    /// Parses `line` (no terminator) into `self`, reusing its buffer. `columns` is the column
    /// count of the `#CHROM` line; `number` the 1-based line number for errors.
    ///
    /// # Errors
    ///
    /// [`ParseError`] naming the line: empty line, column count, empty CHROM, POS, REF, ALT.
    ///
    /// # Examples
    ///
    /// ```
    /// use cistrack::io::vcf::{Allele, Record};
    /// let mut record = Record::default();
    /// record.parse_into("chr1\t100\trs1\tA\tG,<DEL>\t.\tPASS\t.", 8, 3)?;
    /// assert_eq!((record.chrom(), record.position(), record.reference()), ("chr1", 100, "A"));
    /// let alts: Vec<Allele> = record.alternates().collect::<Result<_, _>>()?;
    /// assert_eq!(alts, [Allele::Bases("G"), Allele::Symbolic("<DEL>")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse_into(
        &mut self,
        line: &str,
        columns: usize,
        number: usize,
    ) -> Result<(), ParseError> {
        let error = |kind| ParseError { line: number, kind };
        if line.is_empty() {
            return Err(error(ParseErrorKind::EmptyLine));
        }
        self.line.clear();
        self.line.push_str(line);
        let mut found = 0;
        let mut start = 0;
        for (i, piece) in line.split('\t').enumerate() {
            if i < 8 {
                self.fields[i] = (start, start + piece.len());
            }
            start += piece.len() + 1;
            found = i + 1;
        }
        if found != columns {
            return Err(error(ParseErrorKind::ColumnCount {
                expected: columns,
                found,
            }));
        }
        self.columns = found;
        if self.chrom().is_empty() {
            return Err(error(ParseErrorKind::EmptyChrom));
        }
        let pos = self.field(1);
        self.position = if !pos.is_empty() && pos.bytes().all(|b| b.is_ascii_digit()) {
            pos.parse()
                .map_err(|_| error(ParseErrorKind::InvalidPosition(pos.to_string())))?
        } else {
            return Err(error(ParseErrorKind::InvalidPosition(pos.to_string())));
        };
        if !is_bases(self.reference()) {
            return Err(error(ParseErrorKind::InvalidReference(
                self.reference().to_string(),
            )));
        }
        for allele in self.alternates() {
            allele.map_err(error)?;
        }
        Ok(())
    }

    /// Whether REF is a base string and every ALT a known kind of allele (what
    /// [`Record::parse_into`] checks last: a record that failed only that check has every other
    /// field in place).
    pub fn alleles_valid(&self) -> bool {
        is_bases(self.reference()) && self.alternates().all(|a| a.is_ok())
    }

    fn field(&self, i: usize) -> &str {
        let (start, end) = self.fields[i];
        &self.line[start..end]
    }

    /// The whole line, without terminator.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// CHROM as written.
    pub fn chrom(&self) -> &str {
        self.field(0)
    }

    /// POS (1-based).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// REF as written.
    pub fn reference(&self) -> &str {
        self.field(3)
    }

    /// The ALT column as written.
    pub fn alternate_text(&self) -> &str {
        self.field(4)
    }

    /// The ALT alleles in order (none when ALT is `.`).
    pub fn alternates(&self) -> impl Iterator<Item = Result<Allele<'_>, ParseErrorKind>> {
        let text = self.alternate_text();
        let list = if text == "." { "" } else { text };
        list.split(',')
            .filter(move |_| !list.is_empty())
            .map(Allele::parse)
    }

    /// Number of ALT alleles.
    pub fn alternate_count(&self) -> usize {
        self.alternates().count()
    }

    /// The INFO column as written.
    pub fn info(&self) -> &str {
        self.field(7)
    }

    /// Byte range of the INFO column in [`Record::line`].
    pub fn info_range(&self) -> std::ops::Range<usize> {
        let (start, end) = self.fields[7];
        start..end
    }

    /// Number of columns.
    pub fn columns(&self) -> usize {
        self.columns
    }
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

/// A VCF reader over any buffered text stream (decompress first; see `annotate::input`).
#[derive(Debug)]
pub struct Reader<R> {
    lines: LineReader<R>,
    line: String,
    columns: usize,
}

impl<R: BufRead> Reader<R> {
    /// Wraps a stream positioned at the first line.
    pub fn new(inner: R) -> Self {
        Self {
            lines: LineReader::new(inner),
            line: String::new(),
            columns: 0,
        }
    }

    /// Reads and checks the header.
    ///
    /// # Errors
    ///
    /// [`ReadError::Parse`] for a missing `##fileformat` line, a data line before the
    /// `#CHROM` line, an invalid `#CHROM` line or an input that ends first.
    pub fn read_header(&mut self) -> Result<Header, ReadError> {
        let mut parser = HeaderParser::new();
        loop {
            let Some(ending) = self.lines.read_line(&mut self.line)? else {
                return Err(ParseError {
                    line: self.lines.line_number(),
                    kind: if self.lines.line_number() == 0 {
                        ParseErrorKind::EmptyInput
                    } else {
                        ParseErrorKind::MissingHeaderLine
                    },
                }
                .into());
            };
            if parser.push(&self.line, ending, self.lines.line_number())? {
                let header = parser.finish();
                self.columns = header.columns;
                return Ok(header);
            }
        }
    }

    /// Reads the next data record into `record`; returns its line ending, or `None` at the end.
    ///
    /// # Errors
    ///
    /// [`ReadError::Parse`] for a malformed line (or a header line after `#CHROM`),
    /// [`ReadError::Io`] when reading fails.
    pub fn read_record(&mut self, record: &mut Record) -> Result<Option<Ending>, ReadError> {
        let Some(ending) = self.lines.read_line(&mut self.line)? else {
            return Ok(None);
        };
        let number = self.lines.line_number();
        if self.line.starts_with('#') {
            return Err(ParseError {
                line: number,
                kind: ParseErrorKind::HeaderAfterColumns,
            }
            .into());
        }
        record.parse_into(&self.line, self.columns, number)?;
        Ok(Some(ending))
    }

    /// Lines read so far.
    pub fn line_number(&self) -> usize {
        self.lines.line_number()
    }
}

#[cfg(test)]
mod tests;
