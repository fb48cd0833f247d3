//! bigWig signal input and bigBed/bigWig output through bigtools.
//!
//! Readers are opened once per thread ([`SignalTrack::reader`]); bigtools readers take
//! `&mut self`. The writers run bigtools on a dedicated thread with its own tokio runtime,
//! because bigtools' writers take an owned runtime and block on it.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use bigtools::beddata::BedParserStreamingIterator;
use bigtools::{BedEntry, BigBedWrite, BigWigRead, BigWigWrite, Value};

use super::{Cause, Error};

/// A bigWig signal track: path, contig lengths and its total summary.
#[derive(Debug, Clone)]
pub struct SignalTrack {
    path: PathBuf,
    contigs: HashMap<String, u32>,
    bases_covered: u64,
    sum: f64,
}

impl SignalTrack {
    /// Opens a bigWig and reads its header, contig list and total summary.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] naming the file when it is missing, unreadable or not a bigWig.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let mut bw = open_bigwig(path)?;
        let contigs = bw
            .chroms()
            .iter()
            .map(|c| (c.name.clone(), c.length))
            .collect();
        let summary = bw.get_summary().map_err(|e| Error::Open {
            kind: "bigWig",
            path: path.into(),
            source: e.into(),
        })?;
        Ok(Self {
            path: path.into(),
            contigs,
            bases_covered: summary.bases_covered,
            sum: summary.sum,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length of a contig as the file names it.
    pub fn contig_length(&self, name: &str) -> Option<u32> {
        self.contigs.get(name).copied()
    }

    /// Number of contigs in the file.
    pub fn contig_count(&self) -> usize {
        self.contigs.len()
    }

    /// A few contig names, sorted, for messages.
    pub fn contig_sample(&self, n: usize) -> String {
        let mut names: Vec<&str> = self.contigs.keys().map(String::as_str).collect();
        names.sort_unstable();
        let total = names.len();
        names.truncate(n);
        let mut text = names.join(", ");
        if total > n {
            text.push_str(&format!(", ... ({total} in all)"));
        }
        text
    }

    /// Mean value over covered bases (`sumData / basesCovered` of the total summary), or `None`
    /// when the file covers no bases (or is a version-1 bigWig without a summary).
    pub fn covered_mean(&self) -> Option<f64> {
        (self.bases_covered > 0).then(|| self.sum / self.bases_covered as f64)
    }

    /// Bases covered by the file's intervals.
    pub fn bases_covered(&self) -> u64 {
        self.bases_covered
    }

    /// A reader for one thread.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] if the file can no longer be opened.
    pub fn reader(&self) -> Result<SignalReader, Error> {
        Ok(SignalReader {
            bw: open_bigwig(&self.path)?,
            path: self.path.clone(),
        })
    }
}

fn open_bigwig(path: &Path) -> Result<BigWigRead<BufReader<File>>, Error> {
    let open_error = |source: Cause| Error::Open {
        kind: "bigWig",
        path: path.into(),
        source,
    };
    let file = File::open(path).map_err(|e| open_error(e.into()))?;
    BigWigRead::open(BufReader::with_capacity(1 << 16, file)).map_err(|e| {
        open_error(match e {
            bigtools::BigWigReadOpenError::NotABigWig => "not a bigWig file".into(),
            bigtools::BigWigReadOpenError::InvalidChroms => "invalid contig list".into(),
            bigtools::BigWigReadOpenError::IoError(source) => Box::new(NotABigWig { source }),
        })
    })
}

/// A read error while opening: the file is not a bigWig, or is cut short.
#[derive(Debug, thiserror::Error)]
#[error("not a bigWig file or truncated")]
struct NotABigWig {
    #[source]
    source: std::io::Error,
}

/// A per-thread bigWig reader.
pub struct SignalReader {
    bw: BigWigRead<BufReader<File>>,
    path: PathBuf,
}

impl SignalReader {
    /// Writes per-base values of `[start0, end0)` on `contig` (the file's own name) into `out`
    /// (length `end0 - start0`): zero where no interval covers a base, and for NaN values.
    ///
    /// # Errors
    ///
    /// [`Error::Read`] when the file cannot be read (truncated or replaced while running).
    pub fn read_into(
        &mut self,
        contig: &str,
        start0: u32,
        end0: u32,
        out: &mut [f32],
    ) -> Result<(), Error> {
        debug_assert_eq!(out.len(), (end0 - start0) as usize);
        out.fill(0.0);
        let read_error = |e: bigtools::BBIReadError| Error::Read {
            path: self.path.clone(),
            contig: contig.into(),
            start0,
            end0,
            source: e.into(),
        };
        let intervals = self
            .bw
            .get_interval(contig, start0, end0)
            .map_err(read_error)?;
        for value in intervals {
            let value = value.map_err(read_error)?;
            if value.value.is_nan() {
                continue;
            }
            let s = value.start.max(start0);
            let e = value.end.min(end0);
            if s < e {
                out[(s - start0) as usize..(e - start0) as usize].fill(value.value);
            }
        }
        Ok(())
    }
}

/// Writes a bigBed from records sorted by contig (in `chrom_sizes` order) and start.
///
/// `autosql` must name every column of the records' `rest` after the three BED coordinates.
///
/// # Errors
///
/// [`Error::Write`] naming the file.
pub fn write_bigbed(
    path: &Path,
    chrom_sizes: HashMap<String, u32>,
    autosql: &str,
    records: Vec<(String, BedEntry)>,
) -> Result<(), Error> {
    if records.is_empty() {
        return write_empty(path, Kind::BigBed, &chrom_sizes, autosql);
    }
    let path_buf = path.to_path_buf();
    let autosql = autosql.to_string();
    run_writer(path, move || {
        let mut writer = BigBedWrite::create_file(&path_buf, chrom_sizes)?;
        writer.autosql = Some(autosql);
        writer.options.max_zooms = 6;
        let data = BedParserStreamingIterator::wrap_infallible_iter(records.into_iter(), false);
        Ok(writer.write(data, writer_runtime()?)?)
    })
}

/// Writes a bigWig from values sorted by contig and start (non-overlapping).
///
/// # Errors
///
/// [`Error::Write`] naming the file.
pub fn write_bigwig(
    path: &Path,
    chrom_sizes: HashMap<String, u32>,
    values: Vec<(String, Value)>,
) -> Result<(), Error> {
    if values.is_empty() {
        return write_empty(path, Kind::BigWig, &chrom_sizes, "");
    }
    let path_buf = path.to_path_buf();
    run_writer(path, move || {
        let mut writer = BigWigWrite::create_file(&path_buf, chrom_sizes)?;
        writer.options.max_zooms = 6;
        let data = BedParserStreamingIterator::wrap_infallible_iter(values.into_iter(), false);
        Ok(writer.write(data, writer_runtime()?)?)
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    BigBed,
    BigWig,
}

impl Kind {
    fn magic(self) -> u32 {
        match self {
            Kind::BigBed => 0x8789_F2EB,
            Kind::BigWig => 0x888F_FC26,
        }
    }
}

/// Writes a bigBed or bigWig with no records: header, autoSql (bigBed), a zero total summary, the
/// chromosome B+ tree, a zero data count and an empty R-tree index, in the UCSC layout (all
/// little-endian). bigtools' writers refuse (or hang on) empty input, but a region without
/// elements is an ordinary result and must still give a file every reader opens.
fn write_empty(
    path: &Path,
    kind: Kind,
    chrom_sizes: &HashMap<String, u32>,
    autosql: &str,
) -> Result<(), Error> {
    let mut chroms: Vec<(&String, &u32)> = chrom_sizes.iter().collect();
    chroms.sort();
    let key_size = chroms
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let field_count = if kind == Kind::BigBed {
        autosql.lines().filter(|l| l.contains(';')).count() as u16
    } else {
        0
    };
    let mut out: Vec<u8> = Vec::new();
    let u16le = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&v.to_le_bytes());
    let u32le = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    let u64le = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
    let autosql_offset = 64u64;
    let autosql_len = if kind == Kind::BigBed {
        autosql.len() as u64 + 1
    } else {
        0
    };
    let summary_offset = autosql_offset + autosql_len;
    let chrom_tree_offset = summary_offset + 40;
    let chrom_tree_len = 32 + 4 + chroms.len() as u64 * (key_size as u64 + 8);
    let data_offset = chrom_tree_offset + chrom_tree_len;
    let index_offset = data_offset + 8;
    // header
    u32le(&mut out, kind.magic());
    u16le(&mut out, 4); // version
    u16le(&mut out, 0); // zoom levels
    u64le(&mut out, chrom_tree_offset);
    u64le(&mut out, data_offset);
    u64le(&mut out, index_offset);
    u16le(&mut out, field_count);
    u16le(&mut out, field_count); // defined field count, as bigtools writes it
    u64le(
        &mut out,
        if kind == Kind::BigBed {
            autosql_offset
        } else {
            0
        },
    );
    u64le(&mut out, summary_offset);
    u32le(&mut out, 0); // uncompressBufSize: 0 = data not compressed (there is none)
    u64le(&mut out, 0); // extension header offset
    debug_assert_eq!(out.len(), 64);
    if kind == Kind::BigBed {
        out.extend_from_slice(autosql.as_bytes());
        out.push(0);
    }
    out.extend_from_slice(&[0u8; 40]); // total summary: nothing covered
                                       // chromosome B+ tree: one leaf holding every contig
    u32le(&mut out, 0x78CA_8C91);
    u32le(&mut out, chroms.len().max(1) as u32); // block size
    u32le(&mut out, key_size as u32);
    u32le(&mut out, 8); // value size: id + size
    u64le(&mut out, chroms.len() as u64);
    u64le(&mut out, 0);
    out.push(1); // leaf
    out.push(0);
    u16le(&mut out, chroms.len() as u16);
    for (id, (name, size)) in chroms.iter().enumerate() {
        let mut key = name.as_bytes().to_vec();
        key.resize(key_size, 0);
        out.extend_from_slice(&key);
        u32le(&mut out, id as u32);
        u32le(&mut out, **size);
    }
    debug_assert_eq!(out.len() as u64, data_offset);
    u64le(&mut out, 0); // data count
                        // R-tree index with an empty root leaf
    u32le(&mut out, 0x2468_ACE0);
    u32le(&mut out, 256); // block size
    u64le(&mut out, 0); // items
    for _ in 0..4 {
        u32le(&mut out, 0); // start chrom, start base, end chrom, end base
    }
    u64le(&mut out, index_offset); // end of data
    u32le(&mut out, 1024); // items per slot
    u32le(&mut out, 0);
    out.push(1);
    out.push(0);
    u16le(&mut out, 0);
    // NOTE: a bigBed/bigWig ends with the magic again; readers check it to detect truncation.
    u32le(&mut out, kind.magic());
    std::fs::write(path, out).map_err(|e| Error::Write {
        path: path.into(),
        source: e.into(),
    })
}

/// The writer's tokio runtime could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the writer runtime")]
struct RuntimeError(#[source] std::io::Error);

fn writer_runtime() -> Result<tokio::runtime::Runtime, RuntimeError> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(RuntimeError)
}

fn run_writer(
    path: &Path,
    job: impl FnOnce() -> Result<(), Cause> + Send + 'static,
) -> Result<(), Error> {
    let result = std::thread::Builder::new()
        .name("bbi-writer".into())
        .spawn(job)
        .map_err(|e| Error::Write {
            path: path.into(),
            source: e.into(),
        })?
        .join()
        .map_err(|_| Error::Write {
            path: path.into(),
            source: "the writer thread panicked".into(),
        })?;
    result.map_err(|source| {
        let _ = std::fs::remove_file(path);
        Error::Write {
            path: path.into(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fixture")
            .join(name)
    }

    #[test]
    fn test_signal_track_open() {
        let track = SignalTrack::open(&fixture("accessibility.bw")).unwrap();
        assert_eq!(track.contig_length("1"), Some(60_000));
        assert_eq!(track.contig_length("chr1"), None);
        assert!(track.covered_mean().unwrap() > 0.0);
    }

    #[test]
    fn test_read_into_zero_fills() {
        let track = SignalTrack::open(&fixture("h3k27ac.bw")).unwrap();
        let mut reader = track.reader().unwrap();
        // chr1 signal is piecewise constant over candidates; [0, 12712) has none.
        let mut out = vec![1.0f32; 1000];
        reader.read_into("chr1", 11_712, 12_712, &mut out).unwrap();
        assert!(out.iter().all(|&v| v == 0.0));
        reader.read_into("chr1", 12_700, 13_700, &mut out).unwrap();
        assert_eq!(out[11], 0.0);
        assert!(out[12] > 0.0 && out[12] == out[500]);
        assert!(matches!(
            reader.read_into("chrZ", 0, 1000, &mut out),
            Err(Error::Read { .. })
        ));
    }

    #[test]
    fn test_open_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = SignalTrack::open(&dir.path().join("none.bw")).unwrap_err();
        assert!(err.to_string().starts_with("cannot open bigWig"), "{err}");
        let text = dir.path().join("text.bw");
        std::fs::write(&text, "chr1\t0\t10\t1.0\n").unwrap();
        let err = SignalTrack::open(&text).unwrap_err();
        assert!(matches!(err, Error::Open { .. }), "{err}");
        // A truncated file whose header survives opens, and then fails to read, naming the file.
        let truncated = dir.path().join("trunc.bw");
        let bytes = std::fs::read(fixture("h3k27ac.bw")).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        let track = SignalTrack::open(&truncated).unwrap();
        let mut out = vec![0.0; 40_000];
        let err = track
            .reader()
            .unwrap()
            .read_into("chr2", 0, 40_000, &mut out)
            .unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err}");
        assert!(err.to_string().contains("trunc.bw:chr2:0-40000"), "{err}");
    }

    #[test]
    fn test_open_errors_keep_their_cause() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        // missing: the cause is the std::io::Error, not a copy of its text
        let missing = dir.path().join("none.bw");
        let err = SignalTrack::open(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot open bigWig {}", missing.display())
        );
        let cause = err.source().expect("a cause");
        let io = cause
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            crate::error::chain(&err),
            format!("cannot open bigWig {}: {io}", missing.display())
        );
        // garbage: a description as the cause
        let garbage = dir.path().join("garbage.bw");
        std::fs::write(&garbage, [0u8; 4096]).unwrap();
        let err = SignalTrack::open(&garbage).unwrap_err();
        assert!(matches!(err, Error::Open { .. }), "{err}");
        assert_eq!(
            crate::error::chain(&err),
            format!(
                "cannot open bigWig {}: not a bigWig file",
                garbage.display()
            )
        );
        // too short for a header: the description, then the read error under it
        let short = dir.path().join("short.bw");
        std::fs::write(&short, [0x26, 0xFC, 0x8F, 0x88]).unwrap();
        let err = SignalTrack::open(&short).unwrap_err();
        let described = err.source().expect("a cause");
        assert_eq!(described.to_string(), "not a bigWig file or truncated");
        let io = described
            .source()
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .expect("the read error");
        assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(
            crate::error::chain(&err),
            format!(
                "cannot open bigWig {}: not a bigWig file or truncated: {io}",
                short.display()
            )
        );
    }

    #[test]
    fn test_read_error_keeps_its_cause() {
        let track = SignalTrack::open(&fixture("h3k27ac.bw")).unwrap();
        let err = track
            .reader()
            .unwrap()
            .read_into("chrZ", 0, 1000, &mut [0.0; 1000])
            .unwrap_err();
        let cause = std::error::Error::source(&err).expect("bigtools' error");
        assert!(cause.is::<bigtools::BBIReadError>(), "{cause:?}");
        let text = crate::error::chain(&err);
        assert!(text.starts_with("cannot read "), "{text}");
        assert!(text.ends_with(&format!(":chrZ:0-1000: {cause}")), "{text}");
    }

    #[test]
    fn test_write_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = HashMap::from([("chr1".to_string(), 100)]);
        let bb = dir.path().join("empty.bb");
        write_bigbed(&bb, sizes.clone(), bigtools::bed::autosql::BED3, Vec::new()).unwrap();
        let mut read = bigtools::BigBedRead::open_file(&bb).unwrap();
        assert_eq!(read.get_interval("chr1", 0, 100).unwrap().count(), 0);
        let bw = dir.path().join("empty.bw");
        write_bigwig(&bw, sizes, Vec::new()).unwrap();
        assert_eq!(SignalTrack::open(&bw).unwrap().covered_mean(), None);
    }

    #[test]
    fn test_write_bigwig_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bw");
        let values = vec![
            (
                "chr1".to_string(),
                Value {
                    start: 10,
                    end: 20,
                    value: 1.5,
                },
            ),
            (
                "chr1".to_string(),
                Value {
                    start: 20,
                    end: 30,
                    value: 2.5,
                },
            ),
        ];
        write_bigwig(&path, HashMap::from([("chr1".to_string(), 100)]), values).unwrap();
        let track = SignalTrack::open(&path).unwrap();
        let mut out = vec![0.0; 40];
        track
            .reader()
            .unwrap()
            .read_into("chr1", 0, 40, &mut out)
            .unwrap();
        assert_eq!((out[9], out[10], out[25], out[30]), (0.0, 1.5, 2.5, 0.0));
        assert_eq!(track.covered_mean(), Some(2.0));
    }
}
