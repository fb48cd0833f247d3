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
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixture/genome.fa.gz")
    }

    #[test]
    fn test_fetch() {
        let mut reader = Reader::open(&fixture()).unwrap();
        let seq = reader.fetch(&Region::new("chr1", 0, 60).unwrap()).unwrap();
        assert_eq!(&seq[..20], b"TTATTTATATATCATAGTTG"); // hg38 chr22:17,400,001-17,400,020
        let seq = reader
            .fetch(&Region::new("chr2", 21_995, 22_005).unwrap())
            .unwrap();
        assert_eq!(&seq[5..], b"NNNNN");
        let seq = reader
            .fetch(&Region::new("chr2", 39_990, 40_000).unwrap())
            .unwrap();
        assert_eq!(seq.len(), 10);
    }

    #[test]
    fn test_fetch_errors() {
        let mut reader = Reader::open(&fixture()).unwrap();
        let err = reader
            .fetch(&Region::new("chr9", 0, 10).unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::UnknownContig { .. }), "{err}");
        let err = reader
            .fetch(&Region::new("chr2", 39_995, 40_001).unwrap())
            .unwrap_err();
        assert!(
            matches!(err, Error::OutOfBounds { length: 40_000, .. }),
            "{err}"
        );
    }

    /// `samtools faidx FASTA REGION...`: the sequences, line breaks removed.
    fn samtools(fasta: &Path, regions: &[Region]) -> Vec<Vec<u8>> {
        let out = std::process::Command::new("samtools")
            .arg("faidx")
            .arg(fasta)
            .args(
                regions
                    .iter()
                    .map(|r| format!("{}:{}-{}", r.name(), r.start0() + 1, r.end0())),
            )
            .output()
            .expect("samtools (installed by scripts/setup.sh)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        text.split('>')
            .skip(1)
            .map(|record| record.lines().skip(1).collect::<String>().into_bytes())
            .collect()
    }

    /// A small deterministic generator, so that failures reproduce.
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// Random FASTAs (several sequences, line widths 1 to 80, LF or CRLF, lowercase and N
    /// runs), plain and bgzip (blocks of 64 KiB, so that reads cross blocks), indexed by
    /// samtools: every random region reads as samtools reads it, and as the sequence written.
    #[test]
    fn fetch_agrees_with_samtools_on_random_fastas() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Lcg(12);
        for (case, (width, crlf)) in [(60, false), (1, false), (7, true), (80, false), (13, true)]
            .into_iter()
            .enumerate()
        {
            let mut text = Vec::new();
            let mut sequences = Vec::new();
            for s in 0..3 {
                let length = [1, 150_000, 777][s] + rng.below(50) as usize;
                let bases: Vec<u8> = (0..length)
                    .map(|i| {
                        if (i / 1000) % 7 == 3 {
                            b'N'
                        } else {
                            b"ACGTacgt"[rng.below(8) as usize]
                        }
                    })
                    .collect();
                text.extend_from_slice(format!(">seq{s} description\n").as_bytes());
                for line in bases.chunks(width) {
                    text.extend_from_slice(line);
                    text.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                }
                sequences.push((format!("seq{s}"), bases));
            }
            let plain = dir.path().join(format!("case{case}.fa"));
            std::fs::write(&plain, &text).unwrap();
            let bgz = dir.path().join(format!("case{case}.fa.gz"));
            let compressed = std::process::Command::new("bgzip")
                .args(["-c"])
                .arg(&plain)
                .output()
                .unwrap();
            std::fs::write(&bgz, compressed.stdout).unwrap();
            for path in [&plain, &bgz] {
                let status = std::process::Command::new("samtools")
                    .arg("faidx")
                    .arg(path)
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            let mut regions = Vec::new();
            for (name, bases) in &sequences {
                let n = bases.len() as u64;
                regions.push(Region::new(name, 0, n).unwrap());
                for _ in 0..20 {
                    let start = rng.below(n);
                    let end = (start + 1 + rng.below(70_000)).min(n);
                    regions.push(Region::new(name, start, end).unwrap());
                }
            }
            let expected = samtools(&bgz, &regions);
            for path in [&plain, &bgz] {
                let mut reader = Reader::open(path).unwrap();
                for (region, want) in regions.iter().zip(&expected) {
                    let got = reader.fetch(region).unwrap();
                    assert!(got == *want, "{} {region}", path.display());
                    let (_, bases) = sequences.iter().find(|(n, _)| n == region.name()).unwrap();
                    assert!(
                        got == bases[region.start0() as usize..region.end0() as usize],
                        "{region}"
                    );
                }
            }
        }
    }

    /// The real partial hg38 (bgzip): regions in real blocks, across a block's edge, in N and
    /// at a contig's end read as samtools reads them.
    #[test]
    fn fetch_agrees_with_samtools_on_real_hg38() {
        let fasta = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/hg38/genome/hg38.partial.fa.gz");
        if !fasta.exists() {
            eprintln!("skipped: {} is missing (make data)", fasta.display());
            return;
        }
        let regions: Vec<Region> = [
            ("chr22", 17_200_000, 17_260_000),
            ("chr22", 17_400_000, 17_400_020),
            ("chr2", 2_300_000, 2_400_000),
            ("chr6", 30_000_000, 30_010_000),
            ("chr1", 0, 10_500),
            ("chrX", 156_040_000, 156_040_895),
            ("chr17", 42_600_000, 42_700_000),
        ]
        .iter()
        .map(|(n, s, e)| Region::new(*n, *s, *e).unwrap())
        .collect();
        let expected = samtools(&fasta, &regions);
        let mut reader = Reader::open(&fasta).unwrap();
        for (region, want) in regions.iter().zip(&expected) {
            assert!(reader.fetch(region).unwrap() == *want, "{region}");
        }
    }

    /// Damage is reported with the file and region, never as wrong bases: a FASTA edited after
    /// indexing, a corrupted BGZF block, a truncated .gzi.
    #[test]
    fn damaged_files_fail_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.fa");
        std::fs::write(&plain, ">a\nACGTACGTAC\nGTACGTACGT\nAC\n").unwrap();
        std::fs::write(dir.path().join("a.fa.fai"), "a\t22\t3\t10\t11\n").unwrap();
        let mut reader = Reader::open(&plain).unwrap();
        assert_eq!(
            reader.fetch(&Region::new("a", 8, 12).unwrap()).unwrap(),
            b"ACGT"
        );
        // a line made longer after indexing: the newline lands inside the read
        std::fs::write(&plain, ">a\nACGTACGTACG\nTACGTACGT\nAC\n").unwrap();
        let mut reader = Reader::open(&plain).unwrap();
        let err = reader.fetch(&Region::new("a", 5, 15).unwrap()).unwrap_err();
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            chain.contains("a.fa") && chain.contains("does not match its .fai"),
            "{chain}"
        );

        let bgz = dir.path().join("b.fa.gz");
        std::fs::copy(fixture(), &bgz).unwrap();
        std::fs::copy(sibling(&fixture(), ".fai"), sibling(&bgz, ".fai")).unwrap();
        std::fs::copy(sibling(&fixture(), ".gzi"), sibling(&bgz, ".gzi")).unwrap();
        let mut bytes = std::fs::read(&bgz).unwrap();
        let middle = bytes.len() / 2;
        for b in &mut bytes[middle..middle + 64] {
            *b ^= 0x5a;
        }
        std::fs::write(&bgz, &bytes).unwrap();
        let mut reader = Reader::open(&bgz).unwrap();
        let failed = ["chr1", "chr2"].iter().any(|name| {
            let length = reader.index[*name].length;
            reader
                .fetch(&Region::new(*name, 0, length).unwrap())
                .is_err_and(|e| {
                    let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
                    assert!(
                        chain.contains("b.fa.gz") && chain.contains("BGZF block"),
                        "{chain}"
                    );
                    true
                })
        });
        assert!(failed, "a corrupted block must fail a read of every base");

        std::fs::write(sibling(&bgz, ".gzi"), [1u8, 0, 0, 0, 0, 0, 0, 0, 9]).unwrap();
        let err = Reader::open(&bgz).unwrap_err();
        assert!(
            matches!(err, Error::Compression { .. }) && err.to_string().contains(".gzi"),
            "{err}"
        );
    }

    #[test]
    fn test_open_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.fa");
        assert!(matches!(Reader::open(&missing), Err(Error::Io { .. })));

        let plain = dir.path().join("plain.fa");
        std::fs::write(&plain, ">a\nACGT\n").unwrap();
        let err = Reader::open(&plain).unwrap_err();
        assert!(matches!(err, Error::MissingIndex { .. }), "{err}");
        assert!(
            !dir.path().join("plain.fa.fai").exists(),
            "must never create an index"
        );

        std::fs::write(dir.path().join("plain.fa.fai"), "a\t4\t3\t4\t5\n").unwrap();
        let mut reader = Reader::open(&plain).unwrap();
        assert_eq!(
            reader.fetch(&Region::new("a", 1, 3).unwrap()).unwrap(),
            b"CG"
        );

        let gz = dir.path().join("gzip.fa.gz");
        let mut encoder = std::process::Command::new("gzip")
            .arg("-c")
            .arg(&plain)
            .output()
            .unwrap();
        std::fs::write(&gz, std::mem::take(&mut encoder.stdout)).unwrap();
        std::fs::write(dir.path().join("gzip.fa.gz.fai"), "a\t4\t3\t4\t5\n").unwrap();
        let err = Reader::open(&gz).unwrap_err();
        assert!(
            err.to_string().contains("not with bgzip") || err.to_string().contains("not bgzip"),
            "{err}"
        );

        let bgz = dir.path().join("bgzf.fa.gz");
        std::fs::copy(fixture(), &bgz).unwrap();
        std::fs::copy(sibling(&fixture(), ".fai"), sibling(&bgz, ".fai")).unwrap();
        let err = Reader::open(&bgz).unwrap_err();
        assert!(err.to_string().contains(".gzi"), "{err}");
    }
}
