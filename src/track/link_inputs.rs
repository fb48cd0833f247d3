//! Optional inputs of a build's enhancer–gene links: a contact table (Hi-C) that replaces the
//! power law where it has a value, and gene aliases for gene queries.

use std::collections::HashMap;

/// A contact table: values per (FASTA contig, lower bin, upper bin) at one resolution, already
/// divided by the configured scale.
#[derive(Debug, Default)]
pub struct ContactTable {
    resolution: u64,
    values: HashMap<(String, u64, u64), f32>,
}

impl ContactTable {
    /// Reads `chrom bin1_start bin2_start value` lines, or BEDPE
    /// (`chrom1 start1 end1 chrom2 start2 end2 value`, same-contig pairs only), tab- or
    /// space-separated, plain or gzip; `#` and header lines (a non-numeric position) are
    /// skipped; contigs are resolved through the build's aliases (others are left out).
    ///
    /// # Errors
    ///
    /// A message naming the file and line.
    pub fn read(
        path: &std::path::Path,
        resolution: u64,
        scale: f64,
        contigs: &crate::genome::Contigs,
    ) -> Result<Self, String> {
        use std::io::BufRead;
        let reader = crate::io::text::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut values = HashMap::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.is_empty() || f[0].starts_with('#') {
                continue;
            }
            let bad = |m: &str| format!("{}:{}: {m}", path.display(), i + 1);
            let (chrom, a, b, value) = match f.len() {
                4 => (f[0], f[1], f[2], f[3]),
                n if n >= 7 => {
                    if f[0] != f[3] {
                        continue;
                    }
                    (f[0], f[1], f[4], f[6])
                }
                n => return Err(bad(&format!("expected 4 columns (chrom bin1 bin2 value) or BEDPE with a value in column 7, found {n}"))),
            };
            let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) else {
                if i == 0 {
                    continue; // a header
                }
                return Err(bad("a position is not a number"));
            };
            let value: f64 = value
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| bad(&format!("contact {value:?} is not a number >= 0")))?;
            let Some(c) = contigs.resolve(chrom) else {
                continue;
            };
            let (lo, hi) = (a.min(b) / resolution, a.max(b) / resolution);
            values.insert((c.name.clone(), lo, hi), (value / scale) as f32);
        }
        Ok(Self { resolution, values })
    }

    /// The contact between two positions, when the table has their bin pair.
    pub fn get(&self, contig: &str, x: u64, y: u64) -> Option<f64> {
        let (lo, hi) = (x.min(y) / self.resolution, x.max(y) / self.resolution);
        self.values
            .get(&(contig.to_string(), lo, hi))
            .map(|&v| v as f64)
    }

    /// Bin pairs held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Reads `alias,gene id` (or tab-separated) lines, a header and `#` lines allowed; an alias may
/// name several ids.
pub(crate) fn read_aliases(path: &std::path::Path) -> Result<HashMap<String, Vec<String>>, String> {
    use std::io::BufRead;
    let reader = crate::io::text::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split([',', '\t']).map(str::trim);
        let (Some(alias), Some(id)) = (f.next(), f.next()) else {
            return Err(format!(
                "{}:{}: expected `alias,gene id`",
                path.display(),
                i + 1
            ));
        };
        if i == 0 && !id.chars().any(|c| c.is_ascii_digit()) {
            continue; // a header such as TargetGene,Ensembl_ID
        }
        if !alias.is_empty() && !id.is_empty() {
            out.entry(alias.to_string())
                .or_default()
                .push(id.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_contact_table_formats_and_errors() {
        let contigs = crate::genome::Contigs::new(
            "b",
            vec![crate::genome::Contig {
                name: "chr1".into(),
                length: 1_000_000,
            }],
        )
        .with_aliases(&Default::default(), true)
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hic.txt");
        // a header, the 4-column form (alias `1`), BEDPE, another contig (left out)
        std::fs::write(
            &path,
            "chrom\tbin1\tbin2\tvalue\n1\t5000\t15000\t4\nchr1 20000 25000 chr1 0 5000 3\nchr9\t0\t0\t1\n",
        )
        .unwrap();
        let t = ContactTable::read(&path, 5000, 2.0, &contigs).unwrap();
        assert_eq!(t.len(), 2);
        // bins 1 and 3, either order, divided by the scale
        assert_eq!(t.get("chr1", 7_000, 16_000), Some(2.0));
        assert_eq!(t.get("chr1", 16_000, 7_000), Some(2.0));
        assert_eq!(t.get("chr1", 1_000, 24_999), Some(1.5));
        assert_eq!(t.get("chr1", 1_000, 30_000), None);
        std::fs::write(&path, "chr1\t0\t5000\t-1\n").unwrap();
        let e = ContactTable::read(&path, 5000, 1.0, &contigs).unwrap_err();
        assert!(
            e.ends_with("hic.txt:1: contact \"-1\" is not a number >= 0"),
            "{e}"
        );
        std::fs::write(&path, "chr1\t0\t5000\nchr1\t0\t5000\t1\n").unwrap();
        let e = ContactTable::read(&path, 5000, 1.0, &contigs).unwrap_err();
        assert!(e.contains("hic.txt:1: expected 4 columns"), "{e}");
    }

    #[test]
    fn test_aliases_header_separators_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aliases.csv");
        std::fs::write(
            &path,
            "TargetGene,Ensembl_ID\nBTBD8,ENSG00000189195\n# note\nX\tENSG1\nX,ENSG2\n",
        )
        .unwrap();
        let a = read_aliases(&path).unwrap();
        assert_eq!(a["BTBD8"], ["ENSG00000189195"]);
        assert_eq!(a["X"], ["ENSG1", "ENSG2"], "one alias, several ids");
        assert!(!a.contains_key("TargetGene"), "the header is skipped");
        std::fs::write(&path, "BTBD8,ENSG00000189195\nlonely\n").unwrap();
        let e = read_aliases(&path).unwrap_err();
        assert!(
            e.ends_with("aliases.csv:2: expected `alias,gene id`"),
            "{e}"
        );
    }
}
