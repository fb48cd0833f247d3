//! Reference bases for streaming records: one faidx reader with a forward-reading chunk, so
//! that sorted input (the usual case) decompresses each stretch of the FASTA once.

use std::path::Path;

use crate::genome::fasta::Reader;
use crate::genome::{Contig, Error, Region};

use super::variant::{Edit, Geometry};

/// Bases fetched at once: the needed interval, extended forward to this length.
pub const DEFAULT_CHUNK: u64 = 32 * 1024;

/// A faidx reader that keeps the last chunk it fetched.
#[derive(Debug)]
pub struct ReferenceCache {
    reader: Reader,
    chunk: u64,
    contig: String,
    start0: u64,
    bases: Vec<u8>,
}

impl ReferenceCache {
    /// Opens the FASTA (checked as [`Reader::open`] does).
    ///
    /// # Errors
    ///
    /// As [`Reader::open`].
    pub fn open(fasta: &Path, chunk: u64) -> Result<Self, Error> {
        Ok(Self {
            reader: Reader::open(fasta)?,
            chunk: chunk.max(1),
            contig: String::new(),
            start0: 0,
            bases: Vec::new(),
        })
    }

    /// Writes the bases of `[start0, end0)` on `contig` into `out` (cleared first), as stored
    /// (case kept), with N where the interval passes the contig's ends, and all N on a contig
    /// the build knows only from its `chrom_sizes` (not in the FASTA), as the build reads it.
    ///
    /// # Errors
    ///
    /// A FASTA fetch error.
    pub fn fill(
        &mut self,
        contig: &Contig,
        start0: i64,
        end0: i64,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        debug_assert!(start0 <= end0);
        out.clear();
        let length = contig.length as i64;
        let (clip_start, clip_end) = (start0.clamp(0, length), end0.clamp(0, length));
        // an interval wholly past the contig end has no bases and no leading N run
        out.resize((clip_start - start0).max(0) as usize, b'N');
        if clip_start < clip_end && self.reader.has_contig(&contig.name) {
            let (clip_start, clip_end) = (clip_start as u64, clip_end as u64);
            let cached_end = self.start0 + self.bases.len() as u64;
            if self.contig != contig.name || clip_start < self.start0 || clip_end > cached_end {
                let fetch_end = clip_end.max(clip_start + self.chunk).min(contig.length);
                self.reader.fetch_into(
                    &Region::new(&contig.name, clip_start, fetch_end)?,
                    &mut self.bases,
                )?;
                self.contig.clone_from(&contig.name);
                self.start0 = clip_start;
            }
            let offset = (clip_start - self.start0) as usize;
            out.extend_from_slice(&self.bases[offset..offset + (clip_end - clip_start) as usize]);
        }
        out.resize((end0 - start0) as usize, b'N');
        Ok(())
    }

    /// The two model windows of `edit` (already trimmed and left-aligned) on `contig`: where
    /// they lie, the reference window and the alternate window (the edit applied, re-centred),
    /// each `window` bases. The one definition `annotate` and in-silico mutagenesis share.
    ///
    /// # Errors
    ///
    /// A FASTA fetch error.
    pub fn allele_windows(
        &mut self,
        contig: &Contig,
        edit: &Edit<'_>,
        window: u64,
        bases: &mut Vec<u8>,
    ) -> Result<(Geometry, Vec<u8>, Vec<u8>), Error> {
        let geometry = Geometry::new(edit, window);
        self.fill(contig, geometry.span.0, geometry.span.1, bases)?;
        let reference = geometry.reference_window(bases).to_vec();
        let mut alternate = Vec::with_capacity(window as usize);
        geometry.alternate_window(edit, bases, &mut alternate);
        Ok((geometry, reference, alternate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_fill() {
        let fasta = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixture/genome.fa.gz");
        let mut direct = Reader::open(&fasta).unwrap();
        let mut cache = ReferenceCache::open(&fasta, 100).unwrap();
        let chr1 = Contig {
            name: "chr1".into(),
            length: 60_000,
        };
        let chr2 = Contig {
            name: "chr2".into(),
            length: 40_000,
        };
        let mut out = Vec::new();
        for (contig, start0, end0) in [
            (&chr1, 10, 30),
            (&chr1, 20, 90),
            (&chr1, 80, 400),
            (&chr2, 21_990, 22_010),
            (&chr1, 5, 15),
        ] {
            cache.fill(contig, start0, end0, &mut out).unwrap();
            let expected = direct
                .fetch(&Region::new(&contig.name, start0 as u64, end0 as u64).unwrap())
                .unwrap();
            assert_eq!(out, expected, "{}:{start0}-{end0}", contig.name);
        }
        cache.fill(&chr1, -3, 2, &mut out).unwrap();
        assert_eq!(&out[..3], b"NNN");
        assert_eq!(
            &out[3..],
            &direct.fetch(&Region::new("chr1", 0, 2).unwrap()).unwrap()[..]
        );
        cache.fill(&chr1, 59_998, 60_003, &mut out).unwrap();
        assert_eq!(&out[2..], b"NNN");
        cache.fill(&chr1, 70_000, 70_010, &mut out).unwrap();
        assert_eq!(out, b"NNNNNNNNNN");
    }
}
