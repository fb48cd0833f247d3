//! Reading the lines of a bgzipped, position-sorted text file that overlap a region, through its
//! tabix index (`.tbi`), in safe Rust.
//!
//! The `.tbi` format (the tabix paper, Li 2011, and htslib's `tbx.c`): a BGZF-compressed
//! binary of `TBI\1`, the number of sequences, the column layout (sequence, begin and end
//! columns, 1-based; the comment character; lines to skip), the sequence names, then per
//! sequence the UCSC-style binning index (bins of 16 kb to 512 Mb, each a list of chunks of
//! virtual file offsets) and a linear index of the smallest offset per 16-kb window. A virtual
//! offset is the compressed offset of a BGZF block shifted 16 bits left, plus an offset into
//! the block's data.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::bgzf::BgzfReader;

/// The layout and index of a `.tbi` file.
#[derive(Debug, Clone)]
pub struct TabixIndex {
    /// Sequence column, 0-based.
    pub sequence_column: usize,
    /// Begin column, 0-based.
    pub begin_column: usize,
    /// End column, 0-based (`None`: the record covers one base).
    pub end_column: Option<usize>,
    /// Begins are 0-based (BED-like, tabix `-0`/`-p bed`) rather than 1-based.
    pub zero_based: bool,
    /// Lines starting with this byte are comments.
    pub comment: u8,
    /// VCF (tabix `-p vcf`): a record ends where its REF (column 4) ends.
    pub vcf: bool,
    names: HashMap<String, usize>,
    sequences: Vec<SequenceIndex>,
}

#[derive(Debug, Clone, Default)]
struct SequenceIndex {
    bins: HashMap<u32, Vec<(u64, u64)>>,
    linear: Vec<u64>,
}

fn invalid(path: &Path, message: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {message}", path.display()),
    )
}

/// Little-endian reads from the inflated index.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let slice = self.bytes.get(self.at..self.at + n)?;
        self.at += n;
        Some(slice)
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.i32()?).ok()
    }
}

impl TabixIndex {
    /// Reads `path` (a `.tbi` file).
    ///
    /// # Errors
    ///
    /// The file's I/O error, or [`io::ErrorKind::InvalidData`] naming it when it is not a
    /// tabix index.
    pub fn read(path: &Path) -> io::Result<Self> {
        let mut bytes = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(path)?)
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(path, format!("not a BGZF-compressed tabix index ({e})")))?;
        Self::parse(&bytes)
            .ok_or_else(|| invalid(path, "not a tabix index (bad magic or truncated)"))
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let mut c = Cursor { bytes, at: 0 };
        if c.take(4)? != b"TBI\x01" {
            return None;
        }
        let n = c.count()?;
        let format = c.i32()?;
        let column = |v: i32| usize::try_from(v - 1).ok();
        let sequence_column = column(c.i32()?)?;
        let begin_column = column(c.i32()?)?;
        let end = c.i32()?;
        let comment = u8::try_from(c.i32()?).ok()?;
        let _skip = c.i32()?;
        let names_length = c.count()?;
        let names_bytes = c.take(names_length)?;
        let names: HashMap<String, usize> = names_bytes
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .enumerate()
            .map(|(i, n)| (String::from_utf8_lossy(n).into_owned(), i))
            .collect();
        if names.len() != n {
            return None;
        }
        let mut sequences = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = SequenceIndex::default();
            for _ in 0..c.count()? {
                let bin = c.u32()?;
                let chunks = (0..c.count()?)
                    .map(|_| Some((c.u64()?, c.u64()?)))
                    .collect::<Option<Vec<_>>>()?;
                s.bins.insert(bin, chunks);
            }
            s.linear = (0..c.count()?)
                .map(|_| c.u64())
                .collect::<Option<Vec<_>>>()?;
            sequences.push(s);
        }
        Some(Self {
            sequence_column,
            begin_column,
            end_column: if end > 0 { column(end) } else { None },
            // bit 16 of the format: 0-based, half-open coordinates
            zero_based: format & 0x10000 != 0,
            comment,
            vcf: format & 0xffff == 2,
            names,
            sequences,
        })
    }

    /// Whether the file has records on `name`.
    pub fn has_sequence(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// The virtual-offset chunks that may hold records overlapping `[start0, end0)` of
    /// `name`, sorted and merged (empty for a sequence the index does not list).
    fn chunks(&self, name: &str, start0: u64, end0: u64) -> Vec<(u64, u64)> {
        let Some(s) = self.names.get(name).map(|&i| &self.sequences[i]) else {
            return Vec::new();
        };
        let min_offset = s
            .linear
            .get((start0 >> 14) as usize)
            .or(s.linear.last())
            .copied()
            .unwrap_or(0);
        let mut chunks: Vec<(u64, u64)> = bins_overlapping(start0, end0)
            .filter_map(|b| s.bins.get(&b))
            .flatten()
            .copied()
            .filter(|&(_, end)| end > min_offset)
            .collect();
        chunks.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(chunks.len());
        for (b, e) in chunks {
            match merged.last_mut() {
                Some(last) if b <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((b, e)),
            }
        }
        merged
    }
}

/// The bins (UCSC binning, six levels from 512 Mb down to 16 kb) that hold intervals overlapping
/// `[start0, end0)`.
fn bins_overlapping(start0: u64, end0: u64) -> impl Iterator<Item = u32> {
    let end = end0.max(start0 + 1) - 1;
    [
        (0u32, 29u32),
        (1, 26),
        (9, 23),
        (73, 20),
        (585, 17),
        (4681, 14),
    ]
    .into_iter()
    .flat_map(move |(offset, shift)| {
        (offset + (start0 >> shift) as u32)..=(offset + (end >> shift) as u32)
    })
}

/// A bgzipped text file with its tabix index.
pub struct TabixReader {
    path: PathBuf,
    bgzf: BgzfReader,
    index: TabixIndex,
}

impl std::fmt::Debug for TabixReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabixReader")
            .field("path", &self.path)
            .finish()
    }
}

impl TabixReader {
    /// Opens `path` and its index `path.tbi`.
    ///
    /// # Errors
    ///
    /// Either file's I/O error (a missing index names the `tabix -p bed` command that makes it),
    /// or a malformed index.
    pub fn open(path: &Path) -> io::Result<Self> {
        let tbi = PathBuf::from(format!("{}.tbi", path.display()));
        if !tbi.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} has no tabix index {}: make it with `tabix -p bed {}` (the file must be bgzipped and sorted by position)",
                    path.display(),
                    tbi.display(),
                    path.display()
                ),
            ));
        }
        Ok(Self {
            path: path.into(),
            bgzf: BgzfReader::open_unindexed(path)?,
            index: TabixIndex::read(&tbi)?,
        })
    }

    /// The index.
    pub fn index(&self) -> &TabixIndex {
        &self.index
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `each` with every line of the file (without its newline), in file order.
    ///
    /// # Errors
    ///
    /// I/O errors and damaged blocks.
    pub fn for_each_line(&mut self, mut each: impl FnMut(&str)) -> io::Result<()> {
        let mut coffset = 0;
        let mut line = Vec::new();
        loop {
            let (data, next) = self.bgzf.block_at(coffset)?;
            if data.is_empty() && next == coffset {
                break;
            }
            let mut rest = &data[..];
            while let Some(n) = rest.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&rest[..n]);
                each(&String::from_utf8_lossy(&line));
                line.clear();
                rest = &rest[n + 1..];
            }
            line.extend_from_slice(rest);
            coffset = next;
        }
        if !line.is_empty() {
            each(&String::from_utf8_lossy(&line));
        }
        Ok(())
    }

    /// Calls `each` with every line (without its newline) on sequence `name` whose interval
    /// overlaps `[start0, end0)` (0-based, half-open), in file order.
    ///
    /// # Errors
    ///
    /// I/O errors and damaged blocks, or a line whose begin or end column is not a number.
    pub fn for_each_overlapping(
        &mut self,
        name: &str,
        start0: u64,
        end0: u64,
        mut each: impl FnMut(&str),
    ) -> io::Result<()> {
        let index = &self.index;
        let chunks = index.chunks(name, start0, end0);
        let mut line = Vec::new();
        for (begin, end) in chunks {
            let (mut coffset, mut within) = (begin >> 16, (begin & 0xffff) as usize);
            'blocks: loop {
                let (data, next) = self.bgzf.block_at(coffset)?;
                if data.is_empty() {
                    break;
                }
                let mut at = within;
                while at < data.len() {
                    if (coffset << 16) | at as u64 >= end && line.is_empty() {
                        break 'blocks;
                    }
                    match data[at..].iter().position(|&b| b == b'\n') {
                        Some(n) => {
                            line.extend_from_slice(&data[at..at + n]);
                            at += n + 1;
                            let text = String::from_utf8_lossy(&line);
                            match overlap(index, &text, name, start0, end0) {
                                Ok(Overlap::Yes) => each(&text),
                                Ok(Overlap::No) => {}
                                Ok(Overlap::Past) => return Ok(()),
                                Err(message) => return Err(invalid(&self.path, message)),
                            }
                            line.clear();
                        }
                        None => {
                            // the line goes on in the next block
                            line.extend_from_slice(&data[at..]);
                            at = data.len();
                        }
                    }
                }
                coffset = next;
                within = 0;
            }
        }
        Ok(())
    }
}

enum Overlap {
    Yes,
    No,
    /// Begins at or after the region's end: nothing later in the file overlaps.
    Past,
}

fn overlap(
    index: &TabixIndex,
    line: &str,
    name: &str,
    start0: u64,
    end0: u64,
) -> Result<Overlap, String> {
    if line.is_empty() || line.as_bytes()[0] == index.comment {
        return Ok(Overlap::No);
    }
    let fields: Vec<&str> = line.split('\t').collect();
    let field = |i: usize| {
        fields.get(i).ok_or_else(|| {
            format!(
                "line with {} columns, the index needs {}: {line:?}",
                fields.len(),
                i + 1
            )
        })
    };
    if *field(index.sequence_column)? != name {
        return Ok(Overlap::No);
    }
    let number = |i: usize| -> Result<u64, String> {
        let text = field(i)?;
        text.parse::<u64>()
            .map_err(|_| format!("column {} is not a position: {text:?}", i + 1))
    };
    let begin = number(index.begin_column)?;
    let begin0 = if index.zero_based {
        begin
    } else {
        begin.saturating_sub(1)
    };
    let end = match index.end_column {
        _ if index.vcf => begin0 + field(3)?.len().max(1) as u64,
        Some(c) => number(c)?,
        None => begin0 + 1,
    };
    if begin0 >= end0 {
        return Ok(Overlap::Past);
    }
    Ok(if end.max(begin0 + 1) > start0 {
        Overlap::Yes
    } else {
        Overlap::No
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bins_cover_htslib_reg2bins() {
        // [0, 1): the root bin and the first bin of every level
        let b: Vec<u32> = bins_overlapping(0, 1).collect();
        assert_eq!(b, [0, 1, 9, 73, 585, 4681]);
        // a region across a 16-kb boundary takes both 16-kb bins
        let b: Vec<u32> = bins_overlapping(16_383, 16_385).collect();
        assert!(b.contains(&4681) && b.contains(&4682));
    }
}
