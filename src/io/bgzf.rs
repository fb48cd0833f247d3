//! Random access to BGZF files (bgzip's format) through their `.gzi` index, in safe Rust.
//!
//! BGZF is a series of gzip members ("blocks") of at most 64 KiB of data each, every one
//! carrying its compressed size in a `BC` extra subfield (SAM/BAM specification, section 4.1).
//! `bgzip -i` and `samtools faidx` write a `.gzi` index: a little-endian `u64` count, then one
//! `(compressed offset, uncompressed offset)` pair of `u64`s per block after the first. With it,
//! the bytes at any uncompressed offset are one block read and one inflate away.
//!
//! [`BgzfReader`] reads with positioned reads (no shared file cursor), checks every block's
//! CRC-32 and size, and keeps the last few inflated blocks, so that reads moving forward
//! through a file (sorted records, neighbouring windows) inflate each block once.

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Inflated blocks kept (64 KiB each at most).
pub const CACHED_BLOCKS: usize = 16;

/// A BGZF file opened for reads at uncompressed offsets.
pub struct BgzfReader {
    file: File,
    path: PathBuf,
    /// `(compressed, uncompressed)` offset of every block, the first `(0, 0)` included.
    blocks: Vec<(u64, u64)>,
    cache: lru::LruCache<u64, Arc<Vec<u8>>>,
    inflater: flate2::Decompress,
    compressed: Vec<u8>,
}

impl std::fmt::Debug for BgzfReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BgzfReader")
            .field("path", &self.path)
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

/// The block size a gzip header's extra subfields give (`BC`, BSIZE + 1).
fn bc_size(extra: &[u8]) -> Option<usize> {
    let mut size = None;
    let mut i = 0;
    while i + 4 <= extra.len() {
        let slen = u16::from_le_bytes([extra[i + 2], extra[i + 3]]) as usize;
        if extra[i] == b'B' && extra[i + 1] == b'C' && slen == 2 && i + 6 <= extra.len() {
            size = Some(u16::from_le_bytes([extra[i + 4], extra[i + 5]]) as usize + 1);
        }
        i += 4 + slen;
    }
    size
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads a `.gzi` index: the block offsets, `(0, 0)` first.
///
/// # Errors
///
/// The file's I/O error, or [`io::ErrorKind::InvalidData`] when its length does not match its
/// count or its offsets do not increase.
pub fn read_gzi(path: &Path) -> io::Result<Vec<(u64, u64)>> {
    let bytes = std::fs::read(path)?;
    let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    if bytes.len() < 8 {
        return Err(invalid(format!(
            "{} bytes, not a .gzi index (8-byte count, then 16 bytes per block)",
            bytes.len()
        )));
    }
    let count = word(0);
    if Some(bytes.len() as u64) != count.checked_mul(16).and_then(|n| n.checked_add(8)) {
        return Err(invalid(format!(
            "{} bytes for {count} blocks (expected 8 + 16 per block)",
            bytes.len()
        )));
    }
    let mut blocks = Vec::with_capacity(count as usize + 1);
    blocks.push((0, 0));
    for i in 0..count as usize {
        let entry = (word(1 + 2 * i), word(2 + 2 * i));
        let last = *blocks.last().expect("not empty");
        if entry.0 <= last.0 || entry.1 < last.1 {
            return Err(invalid(format!(
                "block {} at offsets {entry:?} does not follow {last:?}",
                i + 1
            )));
        }
        blocks.push(entry);
    }
    Ok(blocks)
}

impl BgzfReader {
    /// Opens `path` with the index `gzi`.
    ///
    /// # Errors
    ///
    /// I/O errors of either file, or a malformed index ([`read_gzi`]).
    pub fn open(path: &Path, gzi: &Path) -> io::Result<Self> {
        let blocks = read_gzi(gzi)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", gzi.display())))?;
        Ok(Self {
            file: File::open(path)?,
            path: path.into(),
            blocks,
            cache: lru::LruCache::new(NonZeroUsize::new(CACHED_BLOCKS).expect("not zero")),
            inflater: flate2::Decompress::new(false),
            compressed: Vec::new(),
        })
    }

    /// Opens `path` for reads by compressed block offset only ([`BgzfReader::block_at`]), as
    /// tabix's virtual offsets address it; [`BgzfReader::read_into`] then reads the first block
    /// only.
    ///
    /// # Errors
    ///
    /// The file's I/O error.
    pub fn open_unindexed(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: File::open(path)?,
            path: path.into(),
            blocks: vec![(0, 0)],
            cache: lru::LruCache::new(NonZeroUsize::new(CACHED_BLOCKS).expect("not zero")),
            inflater: flate2::Decompress::new(false),
            compressed: Vec::new(),
        })
    }

    /// The inflated data of the block at compressed offset `coffset`, and the compressed offset
    /// of the block after it (empty data at the end of the file).
    ///
    /// # Errors
    ///
    /// As [`BgzfReader::read_into`].
    pub fn block_at(&mut self, coffset: u64) -> io::Result<(Arc<Vec<u8>>, u64)> {
        if coffset >= self.file.metadata()?.len() {
            return Ok((Arc::new(Vec::new()), coffset));
        }
        let data = self.block(coffset)?;
        Ok((data, coffset + self.block_size(coffset)? as u64))
    }

    /// The compressed size of the block at `coffset` (its `BC` subfield).
    fn block_size(&self, coffset: u64) -> io::Result<usize> {
        let mut header = [0u8; 12];
        self.file.read_exact_at(&mut header, coffset)?;
        let xlen = u16::from_le_bytes([header[10], header[11]]) as usize;
        let mut extra = vec![0u8; xlen];
        self.file.read_exact_at(&mut extra, coffset + 12)?;
        bc_size(&extra).ok_or_else(|| invalid("no BC subfield (gzip, not bgzip)".into()))
    }

    /// Appends the `length` bytes at uncompressed offset `offset` to `out`.
    ///
    /// # Errors
    ///
    /// I/O errors, and [`io::ErrorKind::InvalidData`] naming the block for a damaged block
    /// (header, deflate data, CRC-32 or size) or [`io::ErrorKind::UnexpectedEof`] for a read
    /// past the end of the data.
    pub fn read_into(&mut self, offset: u64, length: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let end = offset + length as u64;
        let mut at = offset;
        let mut index = self
            .blocks
            .partition_point(|b| b.1 <= offset)
            .saturating_sub(1);
        while at < end {
            let Some(&(coffset, start)) = self.blocks.get(index) else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "offset {at} is past the end of the data ({} blocks)",
                        self.blocks.len()
                    ),
                ));
            };
            let block = self.block(coffset)?;
            let from = (at - start) as usize;
            if from >= block.len() && !block.is_empty() {
                // the index does not match the file: a block holds less than it says
                return Err(invalid(format!(
                    "block at offset {coffset} holds {} bytes, the index needs {from} or more",
                    block.len()
                )));
            }
            let take = (block.len() - from.min(block.len())).min((end - at) as usize);
            out.extend_from_slice(&block[from..from + take]);
            at += take as u64;
            index += 1;
        }
        Ok(())
    }

    /// The inflated data of the block at compressed offset `coffset`.
    fn block(&mut self, coffset: u64) -> io::Result<Arc<Vec<u8>>> {
        if let Some(block) = self.cache.get(&coffset) {
            return Ok(block.clone());
        }
        let block = Arc::new(self.inflate(coffset).map_err(|e| {
            io::Error::new(e.kind(), format!("BGZF block at offset {coffset}: {e}"))
        })?);
        self.cache.put(coffset, block.clone());
        Ok(block)
    }

    fn inflate(&mut self, coffset: u64) -> io::Result<Vec<u8>> {
        // gzip header: ID1 ID2 CM FLG MTIME(4) XFL OS XLEN(2), then XLEN bytes of subfields
        let mut header = [0u8; 12];
        self.file.read_exact_at(&mut header, coffset)?;
        if header[..4] != [0x1f, 0x8b, 8, 4] {
            return Err(invalid("not a BGZF block header".into()));
        }
        let xlen = u16::from_le_bytes([header[10], header[11]]) as usize;
        let mut extra = vec![0u8; xlen];
        self.file.read_exact_at(&mut extra, coffset + 12)?;
        let size =
            bc_size(&extra).ok_or_else(|| invalid("no BC subfield (gzip, not bgzip)".into()))?;
        let data_start = 12 + xlen;
        if size < data_start + 8 {
            return Err(invalid(format!("block size {size} is too small")));
        }
        self.compressed.resize(size - data_start, 0);
        self.file
            .read_exact_at(&mut self.compressed, coffset + data_start as u64)?;
        let (deflated, trailer) = self.compressed.split_at(size - data_start - 8);
        let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
        let isize = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes")) as usize;
        if isize > 65_536 {
            return Err(invalid(format!(
                "declares {isize} bytes, more than a block holds"
            )));
        }
        let mut data = Vec::with_capacity(isize);
        if isize == 0 {
            // the end-of-file marker block (or an empty block): nothing to inflate
            return if crc == 0 {
                Ok(data)
            } else {
                Err(invalid("empty block with a non-zero CRC-32".into()))
            };
        }
        self.inflater.reset(false);
        let status = self
            .inflater
            .decompress_vec(deflated, &mut data, flate2::FlushDecompress::Finish)
            .map_err(|e| invalid(format!("deflate data: {e}")))?;
        if status != flate2::Status::StreamEnd || data.len() != isize {
            return Err(invalid(format!(
                "inflates to {} bytes, its trailer says {isize}",
                data.len()
            )));
        }
        if crc32fast::hash(&data) != crc {
            return Err(invalid("CRC-32 does not match its data".into()));
        }
        Ok(data)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
