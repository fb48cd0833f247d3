//! Text files that may be gzip- or bgzip-compressed (detected by their magic bytes), and a
//! line reader that counts lines and checks UTF-8.
//!
//! One decompressor for every text input (annotation streams, gene tables, candidates,
//! aliases, contacts): flate2's multi-member gzip reader, which reads plain gzip and BGZF (a
//! series of gzip members) alike and reports a truncated or corrupt stream as an I/O error.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// `reader`, decompressed when it starts with the gzip magic bytes; buffered either way.
///
/// # Errors
///
/// The I/O error of reading the first two bytes.
pub fn decompressed<R: Read + Send + 'static>(
    mut reader: R,
) -> std::io::Result<(Box<dyn BufRead + Send>, bool)> {
    let mut magic = Vec::with_capacity(2);
    (&mut reader).take(2).read_to_end(&mut magic)?;
    let compressed = magic == [0x1f, 0x8b];
    let raw = std::io::Cursor::new(magic).chain(reader);
    Ok(if compressed {
        (
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, raw)),
            )),
            true,
        )
    } else {
        (Box::new(BufReader::with_capacity(1 << 16, raw)), false)
    })
}

/// Opens a text file for buffered reading, decompressing gzip/bgzip transparently.
///
/// # Errors
///
/// The I/O error of opening the file.
pub fn open(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    Ok(decompressed(std::fs::File::open(path)?)?.0)
}

/// How a line ended in the input, so that output can end it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ending {
    /// `\n`.
    #[default]
    Lf,
    /// `\r\n`.
    CrLf,
    /// The last line of an input without a final newline.
    None,
}

impl Ending {
    /// The terminator's bytes.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Lf => "\n",
            Ending::CrLf => "\r\n",
            Ending::None => "",
        }
    }
}

/// Errors of [`LineReader`].
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line is not UTF-8.
    #[error("line {line} is not valid UTF-8")]
    NotUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// A line longer than the reader's limit (the rest of it is not read).
    #[error("line {line} is longer than {limit} bytes (the line-length limit)")]
    TooLong {
        /// 1-based number of the long line.
        line: usize,
        /// The limit, bytes (terminator excluded).
        limit: usize,
    },
    /// Reading (or decompressing) failed after `line` complete lines.
    #[error("cannot read past line {line}")]
    Io {
        /// Lines read completely before the failure.
        line: usize,
        /// The cause (for a cut gzip stream, an `UnexpectedEof`).
        #[source]
        source: std::io::Error,
    },
}

/// Reads a text stream line by line into a caller-owned `String`, counting lines and checking
/// that each is UTF-8. Terminators (`\n` or `\r\n`) are removed and reported.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    line: usize,
    bytes: Vec<u8>,
    ending: Ending,
    max_line: usize,
}

/// Default longest line a [`LineReader`] accepts: 16 MiB.
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

impl<R: BufRead> LineReader<R> {
    /// Wraps a buffered reader; lines may be up to [`DEFAULT_MAX_LINE`] bytes.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            line: 0,
            bytes: Vec::new(),
            ending: Ending::None,
            max_line: DEFAULT_MAX_LINE,
        }
    }

    /// Sets the longest line accepted, bytes without the terminator (at least 1): a longer line
    /// is a [`LineError::TooLong`] after reading at most that many bytes of it, so memory stays
    /// bounded whatever the input.
    #[must_use]
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// The last line read, as bytes without its terminator, and its terminator: also after a
    /// [`LineError::NotUtf8`], so a caller can pass such a line on unchanged.
    pub fn raw(&self) -> (&[u8], Ending) {
        (&self.bytes, self.ending)
    }

    /// `read_until(b'\n')` that stops with [`LineError::TooLong`] once the line (terminator
    /// excluded) passes the limit; returns the bytes consumed.
    fn read_bounded(&mut self) -> Result<usize, LineError> {
        let mut total = 0;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(LineError::Io {
                        line: self.line,
                        source,
                    })
                }
            };
            if available.is_empty() {
                return Ok(total);
            }
            let (take, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            self.bytes.extend_from_slice(&available[..take]);
            self.inner.consume(take);
            total += take;
            // the limit excludes the terminator ("\r\n" counts as one)
            let content = self.bytes.len()
                - usize::from(done)
                - usize::from(done && self.bytes.ends_with(b"\r\n"));
            if content > self.max_line {
                return Err(LineError::TooLong {
                    line: self.line + 1,
                    limit: self.max_line,
                });
            }
            if done {
                return Ok(total);
            }
        }
    }

    /// Number of lines read so far (the number of the last line returned).
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// Reads the next line into `line` (cleared first) without its terminator; `Ok(None)` at
    /// the end of the input.
    ///
    /// # Errors
    ///
    /// [`LineError::Io`] when reading fails, [`LineError::NotUtf8`] for a line that is not UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// use cistrack::io::text::{Ending, LineReader};
    /// let mut reader = LineReader::new(&b"a\r\nb"[..]);
    /// let mut line = String::new();
    /// assert_eq!(reader.read_line(&mut line)?, Some(Ending::CrLf));
    /// assert_eq!(line, "a");
    /// assert_eq!(reader.read_line(&mut line)?, Some(Ending::None));
    /// assert_eq!((line.as_str(), reader.line_number()), ("b", 2));
    /// assert_eq!(reader.read_line(&mut line)?, None);
    /// # Ok::<(), cistrack::io::text::LineError>(())
    /// ```
    pub fn read_line(&mut self, line: &mut String) -> Result<Option<Ending>, LineError> {
        line.clear();
        self.bytes.clear();
        self.ending = Ending::None;
        let n = self.read_bounded()?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let ending = if self.bytes.ends_with(b"\r\n") {
            self.bytes.truncate(self.bytes.len() - 2);
            Ending::CrLf
        } else if self.bytes.ends_with(b"\n") {
            self.bytes.pop();
            Ending::Lf
        } else {
            Ending::None
        };
        self.ending = ending;
        let text =
            std::str::from_utf8(&self.bytes).map_err(|_| LineError::NotUtf8 { line: self.line })?;
        line.push_str(text);
        Ok(Some(ending))
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_open_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.txt");
        std::fs::write(&plain, "line1\nline2\n").unwrap();
        let gz = dir.path().join("a.txt.gz");
        let out = std::process::Command::new("gzip")
            .arg("-c")
            .arg(&plain)
            .output()
            .unwrap();
        std::fs::write(&gz, out.stdout).unwrap();
        for p in [&plain, &gz] {
            let lines: Vec<String> = open(p).unwrap().lines().map(Result::unwrap).collect();
            assert_eq!(lines, ["line1", "line2"]);
        }
        let truncated = dir.path().join("t.gz");
        let bytes = std::fs::read(&gz).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() - 6]).unwrap();
        let result: Result<Vec<String>, _> = open(&truncated).unwrap().lines().collect();
        assert!(result.is_err());
    }

    #[test]
    fn test_line_reader() {
        let mut reader = LineReader::new(&b"one\ntwo\r\n\xff\nlast"[..]);
        let mut line = String::new();
        assert_eq!(reader.read_line(&mut line).unwrap(), Some(Ending::Lf));
        assert_eq!(line, "one");
        assert_eq!(reader.read_line(&mut line).unwrap(), Some(Ending::CrLf));
        assert_eq!(line, "two");
        assert!(matches!(
            reader.read_line(&mut line),
            Err(LineError::NotUtf8 { line: 3 })
        ));
        // the bytes of a non-UTF-8 line stay readable, for a caller that passes them on
        assert_eq!(reader.raw(), (&b"\xff"[..], Ending::Lf));
        assert_eq!(reader.read_line(&mut line).unwrap(), Some(Ending::None));
        assert_eq!((line.as_str(), reader.line_number()), ("last", 4));
        assert_eq!(reader.read_line(&mut line).unwrap(), None);
    }

    #[test]
    fn test_line_length_limit() {
        // a reader with a 3-byte buffer, so lines span many fill_buf calls
        let text = b"abcd\r\nabcde\nok\n";
        let mut reader =
            LineReader::new(std::io::BufReader::with_capacity(3, &text[..])).with_max_line(4);
        let mut line = String::new();
        // exactly at the limit, "\r\n" not counted
        assert_eq!(reader.read_line(&mut line).unwrap(), Some(Ending::CrLf));
        assert_eq!(line, "abcd");
        let err = reader.read_line(&mut line).unwrap_err();
        assert!(
            matches!(err, LineError::TooLong { line: 2, limit: 4 }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "line 2 is longer than 4 bytes (the line-length limit)"
        );
        // only the limit and one buffer of the long line were held
        assert!(reader.raw().0.len() <= 4 + 3);
        // a 1 MB line against the default limit is fine; against 1000 bytes it is refused early
        let long = format!("{}\n", "x".repeat(1 << 20));
        let mut ok = LineReader::new(long.as_bytes());
        assert_eq!(ok.read_line(&mut line).unwrap(), Some(Ending::Lf));
        assert_eq!(line.len(), 1 << 20);
        let mut small = LineReader::new(long.as_bytes()).with_max_line(1000);
        assert!(matches!(
            small.read_line(&mut line),
            Err(LineError::TooLong { line: 1, .. })
        ));
    }
}
