//! Indexed FASTA access (plain or bgzip, with `samtools faidx`'s `.fai` and `.gzi`), in safe
//! Rust, with every fetch checked first.
//!
//! A `.fai` line gives each sequence's length, the byte offset of its first base, and its
//! bases and bytes per line; the bytes of any interval are therefore one read away
//! ([`crate::io::bgzf`] for bgzip). The reader never creates an index (htslib's `fai_load`
//! would write one next to the user's file), names the file and region in every error, and
//! checks that what it read is bases: a FASTA whose lines do not match its `.fai` (edited
//! after indexing) fails instead of returning shifted sequence.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Contigs, Error, Region};
use crate::io::bgzf::BgzfReader;

/// One line of a `.fai` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaiEntry {
    /// Sequence name.
    pub name: String,
    /// Bases.
    pub length: u64,
    /// Byte offset (uncompressed) of the first base.
    pub offset: u64,
    /// Bases per line.
    pub line_bases: u64,
    /// Bytes per line, line terminator included.
    pub line_width: u64,
}

impl FaiEntry {
    /// Byte offset (uncompressed) of base `position0`.
    fn byte_of(&self, position0: u64) -> u64 {
        self.offset + position0 / self.line_bases * self.line_width + position0 % self.line_bases
    }
}

/// Reads a `.fai` index (`samtools faidx`: name, length, offset, line bases, line width).
///
/// # Errors
///
/// [`Error::Io`] when it cannot be read, [`Error::BadIndex`] naming the line when a line is
/// malformed, or when it lists no sequence.
pub fn read_fai(path: &Path) -> Result<Vec<FaiEntry>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = |message: &str| Error::BadIndex {
            path: path.to_path_buf(),
            line: i + 1,
            message: message.into(),
        };
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 5 {
            return Err(bad(
                "expected 5 tab-separated fields (name, length, offset, line bases, line width)",
            ));
        }
        let length: u64 = fields[1]
            .parse()
            .map_err(|_| bad("length is not a number"))?;
        let mut numbers = [0u64; 3];
        for (n, f) in numbers.iter_mut().zip(&fields[2..5]) {
            *n = f
                .parse()
                .map_err(|_| bad("offset or line size is not a number"))?;
        }
        let [offset, line_bases, line_width] = numbers;
        if length > 0 && (line_bases == 0 || line_width < line_bases) {
            return Err(bad(
                "line bases must be at least 1 and line width at least line bases",
            ));
        }
        entries.push(FaiEntry {
            name: fields[0].to_string(),
            length,
            offset,
            line_bases: line_bases.max(1),
            line_width: line_width.max(1),
        });
    }
    if entries.is_empty() {
        return Err(Error::BadIndex {
            path: path.to_path_buf(),
            line: 0,
            message: "no sequences".into(),
        });
    }
    Ok(entries)
}

enum Source {
    Plain(File),
    Bgzf(Box<BgzfReader>),
}

/// An indexed FASTA (plain or bgzip). Not `Sync`: open one per thread.
pub struct Reader {
    source: Source,
    path: PathBuf,
    index: HashMap<String, FaiEntry>,
    raw: Vec<u8>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.path)
            .field("sequences", &self.index.len())
            .finish()
    }
}

impl Reader {
    /// Checks the FASTA and its indexes, then opens it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] for a missing or unreadable FASTA (or `.gzi`), [`Error::MissingIndex`]
    /// without `.fai`, [`Error::Compression`] for gzip that is not BGZF, BGZF without `.gzi`
    /// or a malformed `.gzi`, [`Error::BadIndex`] for a malformed `.fai`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let compressed = check_format(path)?;
        let index = read_fai(&sibling(path, ".fai"))?
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect();
        let io_error = |source| Error::Io {
            path: path.into(),
            source,
        };
        let source = if compressed {
            let gzi = sibling(path, ".gzi");
            Source::Bgzf(Box::new(BgzfReader::open(path, &gzi).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    Error::Compression {
                        path: path.into(),
                        message: format!(
                            "{e}; re-create it with `samtools faidx {}`",
                            path.display()
                        ),
                    }
                } else {
                    io_error(e)
                }
            })?))
        } else {
            Source::Plain(File::open(path).map_err(io_error)?)
        };
        Ok(Self {
            source,
            path: path.into(),
            index,
            raw: Vec::new(),
        })
    }

    /// Whether the FASTA holds `name` (its own name, not an alias).
    pub fn has_contig(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Fetches the bases of `region` (FASTA names, 0-based half-open) as stored (case kept).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownContig`], [`Error::OutOfBounds`], or [`Error::Fetch`] when the file
    /// cannot be read or does not match its index.
    pub fn fetch(&mut self, region: &Region) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(region.len() as usize);
        self.fetch_into(region, &mut out)?;
        Ok(out)
    }

    /// Like [`Reader::fetch`], appending to a caller-owned buffer after clearing it.
    ///
    /// # Errors
    ///
    /// As [`Reader::fetch`].
    pub fn fetch_into(&mut self, region: &Region, out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        let Some(entry) = self.index.get(region.name()) else {
            let mut names: Vec<String> = self.index.keys().cloned().collect();
            names.sort();
            names.truncate(6);
            return Err(Error::UnknownContig {
                name: region.name().into(),
                build: self.path.display().to_string(),
                suggestions: names,
            });
        };
        if region.end0() > entry.length {
            return Err(Error::OutOfBounds {
                region: region.clone(),
                contig: region.name().into(),
                length: entry.length,
            });
        }
        if region.is_empty() {
            return Ok(());
        }
        let fetch_error = |source: std::io::Error| Error::Fetch {
            path: self.path.clone(),
            region: region.clone(),
            source,
        };
        let first = entry.byte_of(region.start0());
        let last = entry.byte_of(region.end0() - 1) + 1;
        self.raw.clear();
        match &mut self.source {
            Source::Plain(file) => {
                self.raw.resize((last - first) as usize, 0);
                file.read_exact_at(&mut self.raw, first)
            }
            Source::Bgzf(reader) => reader.read_into(first, (last - first) as usize, &mut self.raw),
        }
        .map_err(fetch_error)?;
        // the bases of each line, without the line terminators between them
        let wanted = region.len() as usize;
        let (line_bases, skip) = (
            entry.line_bases as usize,
            (entry.line_width - entry.line_bases) as usize,
        );
        out.reserve(wanted);
        let mut column = (region.start0() % entry.line_bases) as usize;
        let mut at = 0;
        while out.len() < wanted {
            let take = (line_bases - column).min(wanted - out.len());
            out.extend_from_slice(&self.raw[at..at + take]);
            at += take + skip;
            column = 0;
        }
        if let Some(bad) = out.iter().position(|b| !b.is_ascii_graphic() || *b == b'>') {
            return Err(fetch_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "byte {:?} at base {} is not a base: the FASTA does not match its .fai \
                     (edited after indexing?); re-create the index with `samtools faidx`",
                    out[bad] as char,
                    region.start0() + bad as u64
                ),
            )));
        }
        Ok(())
    }

    /// The FASTA path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Checks that a FASTA, its `.fai` and (for compressed files) its `.gzi` exist and agree, and
/// returns the contigs of the index.
///
/// # Errors
///
/// As [`Reader::open`].
pub fn check_files(path: &Path) -> Result<Contigs, Error> {
    check_format(path)?;
    Contigs::from_fai(&path.display().to_string(), &sibling(path, ".fai"))
}

/// Checks that the FASTA can be read, has its `.fai`, and is plain or BGZF with its `.gzi`;
/// returns whether it is compressed.
fn check_format(path: &Path) -> Result<bool, Error> {
    let mut file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    let mut magic = [0u8; 18];
    let n = read_up_to(&mut file, &mut magic).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    let index = sibling(path, ".fai");
    if !index.exists() {
        return Err(Error::MissingIndex {
            fasta: path.into(),
            index,
        });
    }
    let compressed = n >= 2 && magic[..2] == [0x1f, 0x8b];
    if compressed {
        // BGZF: gzip with FLG.FEXTRA and a 'BC' extra subfield.
        let bgzf = n >= 16 && magic[3] & 4 != 0 && magic[12] == b'B' && magic[13] == b'C';
        if !bgzf {
            return Err(Error::Compression {
                path: path.into(),
                message: "compressed with gzip, not bgzip; recompress with `zcat FILE | bgzip > FILE.gz` and index with `samtools faidx`".into(),
            });
        }
        let gzi = sibling(path, ".gzi");
        if !gzi.exists() {
            return Err(Error::Compression {
                path: path.into(),
                message: format!(
                    "bgzip index {} is missing; create it with `samtools faidx {}`",
                    gzi.display(),
                    path.display()
                ),
            });
        }
    }
    Ok(compressed)
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests;
