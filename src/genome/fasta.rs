//! Indexed FASTA access through htslib's faidx, with every fetch checked first.
//!
//! # Why not `rust_htslib::faidx::Reader`?
//!
//! Its `from_path` calls `fai_load`, which silently *creates* a missing `.fai` next to the user's
//! FASTA and returns a null handle on failure that the wrapper does not check; its `fetch_seq`
//! builds a `Vec` from htslib's pointer without checking for null (unknown contig) and clips
//! past a contig's end. This wrapper uses the same htslib (`rust_htslib::htslib`) but loads with
//! `fai_load3(.., flags = 0)` (never writes an index), checks every pointer, and validates the
//! contig and the bounds against the parsed `.fai` before each fetch.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use rust_htslib::htslib;

use super::{Contigs, Error, Region};

/// A faidx handle on one FASTA (plain or bgzip). Not `Sync`: open one per thread.
#[derive(Debug)]
pub struct Reader {
    inner: NonNull<htslib::faidx_t>,
    path: PathBuf,
    lengths: HashMap<String, u64>,
}

// SAFETY: a faidx_t may move between threads; it must not be used from two at once, which
// `&mut self` on every use guarantees (the type is deliberately not `Sync`).
unsafe impl Send for Reader {}

impl Reader {
    /// Checks the FASTA and its indexes, then opens it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] for a missing or unreadable FASTA, [`Error::MissingIndex`] without `.fai`,
    /// [`Error::Compression`] for gzip that is not BGZF or BGZF without `.gzi`,
    /// [`Error::BadIndex`] for a malformed `.fai`, [`Error::Open`] when htslib refuses it.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let contigs = check_files(path)?;
        let c_path =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Error::Compression {
                path: path.into(),
                message: "path contains a NUL byte".into(),
            })?;
        // SAFETY: valid C string; NULL index names mean "<fasta>.fai" / "<fasta>.gzi"; flags 0
        // means never create index files.
        let raw =
            unsafe { htslib::fai_load3(c_path.as_ptr(), std::ptr::null(), std::ptr::null(), 0) };
        let inner = NonNull::new(raw).ok_or_else(|| Error::Open(path.into()))?;
        let lengths = contigs.iter().map(|c| (c.name.clone(), c.length)).collect();
        Ok(Self {
            inner,
            path: path.into(),
            lengths,
        })
    }

    /// Fetches the bases of `region` (FASTA names, 0-based half-open) as stored (case kept).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownContig`], [`Error::OutOfBounds`], or [`Error::Fetch`] if htslib fails.
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
        let Some(&length) = self.lengths.get(region.name()) else {
            let mut names: Vec<String> = self.lengths.keys().cloned().collect();
            names.sort();
            names.truncate(6);
            return Err(Error::UnknownContig {
                name: region.name().into(),
                build: self.path.display().to_string(),
                suggestions: names,
            });
        };
        if region.end0() > length {
            return Err(Error::OutOfBounds {
                region: region.clone(),
                contig: region.name().into(),
                length,
            });
        }
        let fetch_error = || Error::Fetch {
            path: self.path.clone(),
            region: region.clone(),
        };
        let name = CString::new(region.name()).map_err(|_| fetch_error())?;
        let mut len: htslib::hts_pos_t = 0;
        // SAFETY: handle is valid; the name is a known contig and 0 <= start < end <= length,
        // so the inclusive end `end0 - 1` is in range.
        let ptr = unsafe {
            htslib::faidx_fetch_seq64(
                self.inner.as_ptr(),
                name.as_ptr(),
                region.start0() as htslib::hts_pos_t,
                (region.end0() - 1) as htslib::hts_pos_t,
                &mut len,
            )
        };
        let Some(ptr) = NonNull::new(ptr) else {
            return Err(fetch_error());
        };
        let ok = len >= 0 && len as u64 == region.len();
        if ok {
            // SAFETY: htslib returned `len` valid bytes at `ptr`.
            out.extend_from_slice(unsafe {
                std::slice::from_raw_parts(ptr.as_ptr() as *const u8, len as usize)
            });
        }
        // SAFETY: htslib allocated the buffer with malloc.
        unsafe { libc::free(ptr.as_ptr() as *mut libc::c_void) };
        if ok {
            Ok(())
        } else {
            Err(fetch_error())
        }
    }

    /// The FASTA path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // SAFETY: the handle came from fai_load3 and is destroyed once.
        unsafe { htslib::fai_destroy(self.inner.as_ptr()) };
    }
}

/// Checks that a FASTA, its `.fai` and (for compressed files) its `.gzi` exist and agree, and
/// returns the contigs of the index.
///
/// # Errors
///
/// As [`Reader::open`].
pub fn check_files(path: &Path) -> Result<Contigs, Error> {
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
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
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
    Contigs::from_fai(&path.display().to_string(), &index)
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
