//! Single-cell ATAC fragments (10x Genomics `fragments.tsv.gz`, bgzipped and tabix-indexed) as
//! an accessibility signal: Tn5 cut sites counted per cell group.
//!
//! A fragments line is `chrom start end barcode count` (0-based, half-open; `count` is the
//! number of read pairs of the fragment, duplicates included). Cell Ranger ATAC writes the
//! coordinates already adjusted for the Tn5 insertion (+4 on the forward read, −5 on the
//! reverse), so the two cut sites of a fragment are its first base, `start`, and its last base,
//! `end − 1`. Each fragment counts once (its `count` is ignored, as duplicates are PCR copies of
//! one insertion pair), and each of its two cut sites adds 1 at its position.
//!
//! Barcodes are assigned to groups by a two-column table (`barcode<TAB>group`, `#` comments; a
//! barcode listed twice is an error); fragments of barcodes the table does not list are left
//! out. Without a table every barcode is in one pseudobulk group, [`PSEUDOBULK`].

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::tabix::TabixReader;

/// A whole-file pass says how far it is every this many fragments (≈ 5 s at 3.7 M/s).
const PROGRESS_EVERY: u64 = 20_000_000;

/// The first line of a kept counts file ([`Fragments::totals_kept`]).
const COUNTS_HEADER: &str = "# cistrack: fragments per cell group and contig, v1";

/// The group of every barcode when no group table is given.
pub const PSEUDOBULK: &str = "all";

/// A folder name for cell group `group`: ASCII letters, digits, `-` and `_` kept, every other
/// byte as `%XX`, so that names like `../x` or `a/b` stay one folder inside the track folder.
pub fn group_dir_name(group: &str) -> String {
    let mut out = String::with_capacity(group.len());
    for b in group.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Barcode → group.
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    /// Group names, in order of first appearance in the table.
    pub names: Vec<String>,
    by_barcode: HashMap<String, usize>,
    /// Every barcode in group 0 (no table).
    all: bool,
}

impl Groups {
    /// One pseudobulk group of every barcode.
    pub fn pseudobulk() -> Self {
        Self {
            names: vec![PSEUDOBULK.to_string()],
            by_barcode: HashMap::new(),
            all: true,
        }
    }

    /// Reads a `barcode<TAB>group` table (plain or gzip).
    ///
    /// # Errors
    ///
    /// I/O errors, and [`io::ErrorKind::InvalidData`] naming the file and line for a line
    /// without two columns or a barcode listed twice.
    pub fn read(path: &Path) -> io::Result<Self> {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut super::text::open(path)?, &mut text)?;
        let bad = |line: usize, message: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}, line {line}: {message}", path.display()),
            )
        };
        let mut names: Vec<String> = Vec::new();
        let mut by_barcode = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split('\t');
            let (Some(barcode), Some(group)) = (fields.next(), fields.next()) else {
                return Err(bad(
                    i + 1,
                    format!("expected barcode<TAB>group, found {line:?}"),
                ));
            };
            let (barcode, group) = (barcode.trim(), group.trim());
            if barcode.is_empty() || group.is_empty() {
                return Err(bad(i + 1, format!("empty barcode or group in {line:?}")));
            }
            let index = match names.iter().position(|n| n == group) {
                Some(g) => g,
                None => {
                    names.push(group.to_string());
                    names.len() - 1
                }
            };
            if by_barcode.insert(barcode.to_string(), index).is_some() {
                return Err(bad(i + 1, format!("barcode {barcode} is listed twice")));
            }
        }
        if names.is_empty() {
            return Err(bad(1, "no barcode<TAB>group line".into()));
        }
        Ok(Self {
            names,
            by_barcode,
            all: false,
        })
    }

    /// The group of `barcode`, if any.
    pub fn of(&self, barcode: &str) -> Option<usize> {
        if self.all {
            Some(0)
        } else {
            self.by_barcode.get(barcode).copied()
        }
    }
}

/// A fragments file read through its tabix index, with its barcode groups.
#[derive(Debug)]
pub struct Fragments {
    reader: TabixReader,
    groups: Groups,
}

impl Fragments {
    /// Opens `path` (and `path.tbi`) with `groups`.
    ///
    /// # Errors
    ///
    /// As [`TabixReader::open`].
    pub fn open(path: &Path, groups: Groups) -> io::Result<Self> {
        Ok(Self {
            reader: TabixReader::open(path)?,
            groups,
        })
    }

    /// The groups.
    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    /// The file.
    pub fn path(&self) -> PathBuf {
        self.reader.path().to_path_buf()
    }

    /// Fragments per group and contig over the whole file (one pass; fragments of barcodes in
    /// no group are left out): `totals[group]` maps the file's contig names to counts.
    ///
    /// # Errors
    ///
    /// Read errors, or a line that is not a fragment (naming the file).
    pub fn totals(&mut self) -> io::Result<Vec<HashMap<String, u64>>> {
        let mut totals = vec![HashMap::new(); self.groups.names.len()];
        let groups = &self.groups;
        let comment = self.reader.index().comment;
        let mut bad = None;
        let (mut lines, started) = (0u64, std::time::Instant::now());
        self.reader.for_each_line(|line| {
            if line.is_empty() || line.as_bytes()[0] == comment {
                return;
            }
            lines += 1;
            if lines % PROGRESS_EVERY == 0 {
                tracing::info!(
                    "{lines} fragments read ({:.0} s, {contig} …)",
                    started.elapsed().as_secs_f64(),
                    contig = line.split('\t').next().unwrap_or_default()
                );
            }
            let mut f = line.split('\t');
            let (Some(contig), Some(_), Some(_), Some(barcode)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                bad.get_or_insert_with(|| format!("not a fragment line: {line:?}"));
                return;
            };
            if let Some(g) = groups.of(barcode) {
                let counts: &mut HashMap<String, u64> = &mut totals[g];
                match counts.get_mut(contig) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(contig.to_string(), 1);
                    }
                }
            }
        })?;
        match bad {
            Some(message) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {message}", self.reader.path().display()),
            )),
            None => Ok(totals),
        }
    }

    /// [`Self::totals`], kept in `dir` (`<cache_dir>/fragments`) after the first pass so that
    /// later opens of the same file with the same group table read a small file instead of the
    /// whole fragments file. The kept file is named by a digest of the fragments file's and the
    /// group table's path, size and modification time, so a changed input is counted again. A
    /// kept file that cannot be read is counted again; one that cannot be written is a warning.
    ///
    /// # Errors
    ///
    /// As [`Self::totals`].
    pub fn totals_kept(
        &mut self,
        dir: Option<&Path>,
        groups_path: Option<&Path>,
    ) -> io::Result<Vec<HashMap<String, u64>>> {
        let Some(dir) = dir else {
            return self.totals();
        };
        let kept = dir.join(self.counts_name(groups_path));
        if let Some(totals) = self.read_counts(&kept) {
            tracing::debug!(file = %kept.display(), "fragments per cell group read from the kept counts");
            return Ok(totals);
        }
        tracing::info!(
            "counting the fragments of {} per cell group (one pass over the file; kept in {} for later runs)",
            self.reader.path().display(),
            dir.display()
        );
        let started = std::time::Instant::now();
        let totals = self.totals()?;
        tracing::info!(
            "{} fragments in {} groups counted in {:.1} s",
            totals.iter().flat_map(HashMap::values).sum::<u64>(),
            totals.len(),
            started.elapsed().as_secs_f64()
        );
        if let Err(e) = self.write_counts(&kept, &totals) {
            tracing::warn!(
                "cannot keep the fragment counts in {}: {e}; the next run counts again",
                kept.display()
            );
        }
        Ok(totals)
    }

    /// The kept counts' file name for this fragments file and group table.
    fn counts_name(&self, groups_path: Option<&Path>) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        crate::pipeline::cache::key::add_file_identity(&mut h, self.reader.path());
        match groups_path {
            Some(table) => crate::pipeline::cache::key::add_file_identity(&mut h, table),
            None => h.update(PSEUDOBULK.as_bytes()),
        }
        let digest: String = h.finalize()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{digest}.tsv")
    }

    /// Reads kept counts: `None` when the file is missing or not what [`Self::write_counts`]
    /// writes for these groups.
    fn read_counts(&self, path: &Path) -> Option<Vec<HashMap<String, u64>>> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut totals = vec![HashMap::new(); self.groups.names.len()];
        let mut lines = text.lines();
        if lines.next()? != COUNTS_HEADER {
            return None;
        }
        for line in lines.filter(|l| !l.starts_with('#')) {
            let mut f = line.split('\t');
            let (Some(group), Some(contig), Some(n), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return None;
            };
            let g = self.groups.names.iter().position(|name| name == group)?;
            totals[g].insert(contig.to_string(), n.parse().ok()?);
        }
        Some(totals)
    }

    /// Writes counts (through a temporary file renamed into place).
    fn write_counts(&self, path: &Path, totals: &[HashMap<String, u64>]) -> io::Result<()> {
        use std::fmt::Write as _;
        let mut text = format!(
            "{COUNTS_HEADER}\n# fragments\t{}\n# group\tcontig\tfragments\n",
            self.reader.path().display()
        );
        for (g, counts) in totals.iter().enumerate() {
            let mut contigs: Vec<_> = counts.iter().collect();
            contigs.sort();
            for (contig, n) in contigs {
                let _ = writeln!(text, "{}\t{contig}\t{n}", self.groups.names[g]);
            }
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.{}",
            std::process::id(),
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// Cut sites per group and base of `[start0, end0)` on `contig` (the file's name for it):
    /// `out[group][position - start0]`, resized to the groups and the span and zeroed first. A
    /// contig the file has no fragments on gives zeros.
    ///
    /// # Errors
    ///
    /// Read errors, or a line that is not a fragment (naming the file).
    pub fn cut_sites(
        &mut self,
        contig: &str,
        start0: u64,
        end0: u64,
        out: &mut Vec<Vec<u32>>,
    ) -> io::Result<()> {
        let len = (end0 - start0) as usize;
        out.resize_with(self.groups.names.len(), Vec::new);
        for v in out.iter_mut() {
            v.clear();
            v.resize(len, 0);
        }
        let groups = &self.groups;
        let mut bad = None;
        self.reader
            .for_each_overlapping(contig, start0, end0, |line| {
                let mut f = line.split('\t');
                let (_, Some(s), Some(e), Some(barcode)) = (f.next(), f.next(), f.next(), f.next())
                else {
                    bad.get_or_insert_with(|| format!("not a fragment line: {line:?}"));
                    return;
                };
                let (Ok(s), Ok(e)) = (s.parse::<u64>(), e.parse::<u64>()) else {
                    bad.get_or_insert_with(|| format!("not a fragment line: {line:?}"));
                    return;
                };
                let Some(g) = groups.of(barcode) else {
                    return;
                };
                for cut in [s, e.saturating_sub(1).max(s)] {
                    if (start0..end0).contains(&cut) {
                        out[g][(cut - start0) as usize] += 1;
                    }
                }
            })?;
        match bad {
            Some(message) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {message}", self.reader.path().display()),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::group_dir_name;

    #[test]
    fn group_folder_names_stay_one_folder() {
        assert_eq!(group_dir_name("T_cells-CD4"), "T_cells-CD4");
        assert_eq!(group_dir_name("../x"), "%2E%2E%2Fx");
        assert_eq!(group_dir_name("a b/c"), "a%20b%2Fc");
        assert_eq!(group_dir_name("é"), "%C3%A9");
    }
}
