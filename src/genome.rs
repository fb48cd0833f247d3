//! Genome builds: reference sequences (contigs), their aliases, regions and FASTA access.

pub mod build;
pub mod fasta;
pub mod genes;
pub mod region;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use build::Build;
pub use region::Region;

/// Errors about contigs, regions and reference files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A contig name that is neither a FASTA sequence nor an alias of one.
    #[error("unknown contig {name:?} in build {build}{}", suggest(.suggestions))]
    UnknownContig {
        /// The name as given.
        name: String,
        /// Build name.
        build: String,
        /// Close or example names.
        suggestions: Vec<String>,
    },
    /// A region that ends past its contig.
    #[error("region {region} ends past the end of {contig} ({length} bp)")]
    OutOfBounds {
        /// The region as given.
        region: Region,
        /// Canonical contig name.
        contig: String,
        /// Contig length.
        length: u64,
    },
    /// An I/O failure on a named file.
    #[error("cannot read {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The FASTA has no `.fai` index.
    #[error("FASTA {} has no index {}: create it with `samtools faidx {}`", .fasta.display(), .index.display(), .fasta.display())]
    MissingIndex {
        /// The FASTA.
        fasta: PathBuf,
        /// The expected index path.
        index: PathBuf,
    },
    /// A compressed FASTA that is not BGZF, or lacks its `.gzi`.
    #[error("FASTA {}: {message}", .path.display())]
    Compression {
        /// The FASTA.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A malformed chrom.sizes line.
    #[error("{}:{line}: malformed chrom.sizes line: {message}", .path.display())]
    BadSizes {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A malformed `.fai` line.
    #[error("{}:{line}: malformed FASTA index line: {message}", .path.display())]
    BadIndex {
        /// The index file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A fetch that passed the checks failed: the file cannot be read, or does not match its
    /// index.
    #[error("cannot read {region} from {}", .path.display())]
    Fetch {
        /// The FASTA.
        path: PathBuf,
        /// The region.
        region: Region,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An alias that names an unknown contig, or two contigs.
    #[error("alias {alias:?} -> {target:?}: {message}")]
    BadAlias {
        /// The alias.
        alias: String,
        /// Its target.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// A malformed line in a BED-like annotation file.
    #[error("{}:{line}: {message}", .path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An invalid 0-based interval.
    #[error(transparent)]
    Interval(#[from] region::EmptyInterval),
}

fn suggest(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (known contigs include {})", names.join(", "))
    }
}

/// One reference sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contig {
    /// Name as in the FASTA.
    pub name: String,
    /// Length in bases.
    pub length: u64,
}

/// The reference sequences of a build, with alias resolution (`chr1`/`1`, `chrM`/`MT`).
#[derive(Debug, Clone)]
pub struct Contigs {
    build: String,
    list: Vec<Contig>,
    lookup: HashMap<String, usize>,
    /// Contigs the FASTA lacks (from a `chrom_sizes` file): their sequence reads as N.
    without_sequence: std::collections::HashSet<String>,
}

impl Contigs {
    /// Reads contig names and lengths from a FASTA index (`.fai`).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::BadIndex`] naming the file and line.
    pub fn from_fai(build: &str, path: &Path) -> Result<Self, Error> {
        let list = fasta::read_fai(path)?
            .into_iter()
            .map(|e| Contig {
                name: e.name,
                length: e.length,
            })
            .collect();
        Ok(Self::new(build, list))
    }

    /// Contigs from a list (names must be unique).
    pub fn new(build: &str, list: Vec<Contig>) -> Self {
        let lookup = list
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Self {
            build: build.to_string(),
            list,
            lookup,
            without_sequence: Default::default(),
        }
    }

    /// Adds contigs that have no sequence (a `chrom_sizes` file's contigs the FASTA lacks):
    /// they resolve like the others, read as N, and their signals, genes and candidates are
    /// used. A contig already present under its name or its automatic `chr` alias is skipped,
    /// so a full chrom.sizes beside a partial FASTA adds only what is missing. Call it before
    /// [`Contigs::with_aliases`].
    pub fn with_sequence_less(mut self, extra: Vec<Contig>) -> Self {
        for c in extra {
            let known = self.lookup.contains_key(&c.name)
                || automatic_aliases(&c.name)
                    .iter()
                    .any(|a| self.lookup.contains_key(a));
            if known {
                continue;
            }
            self.lookup.insert(c.name.clone(), self.list.len());
            self.without_sequence.insert(c.name.clone());
            self.list.push(c);
        }
        self
    }

    /// False for a contig added by [`Contigs::with_sequence_less`] (FASTA name).
    pub fn has_sequence(&self, contig: &str) -> bool {
        !self.without_sequence.contains(contig)
    }

    /// Number of contigs without sequence.
    pub fn sequence_less(&self) -> usize {
        self.without_sequence.len()
    }

    /// Adds aliases: explicit `alias -> FASTA name` pairs, and with `automatic` the usual
    /// `chr` prefix toggles (`1`/`chr1`, `MT`/`chrM`) where they do not collide.
    ///
    /// # Errors
    ///
    /// [`Error::BadAlias`] for an alias whose target is unknown or that shadows a contig.
    pub fn with_aliases(
        mut self,
        explicit: &BTreeMap<String, String>,
        automatic: bool,
    ) -> Result<Self, Error> {
        for (alias, target) in explicit {
            let bad = |message: String| Error::BadAlias {
                alias: alias.clone(),
                target: target.clone(),
                message,
            };
            let Some(&index) = self
                .lookup
                .get(target)
                .filter(|&&i| self.list[i].name == *target)
            else {
                return Err(bad(format!("{target:?} is not a sequence of the FASTA")));
            };
            if let Some(&other) = self.lookup.get(alias) {
                if other != index {
                    return Err(bad(format!(
                        "{alias:?} already names {}",
                        self.list[other].name
                    )));
                }
            }
            self.lookup.insert(alias.clone(), index);
        }
        if automatic {
            for index in 0..self.list.len() {
                for alias in automatic_aliases(&self.list[index].name) {
                    self.lookup.entry(alias).or_insert(index);
                }
            }
        }
        Ok(self)
    }

    /// The contig a name or alias refers to.
    pub fn resolve(&self, name: &str) -> Option<&Contig> {
        self.lookup.get(name).map(|&i| &self.list[i])
    }

    /// Every name (FASTA name first, then aliases) that refers to this contig.
    pub fn names_of(&self, contig: &str) -> Vec<&str> {
        let Some(&index) = self.lookup.get(contig) else {
            return Vec::new();
        };
        let mut names = vec![self.list[index].name.as_str()];
        let mut aliases: Vec<&str> = self
            .lookup
            .iter()
            .filter(|(n, &i)| i == index && **n != self.list[index].name)
            .map(|(n, _)| n.as_str())
            .collect();
        aliases.sort_unstable();
        names.extend(aliases);
        names
    }

    /// Resolves a region's contig and checks its bounds; returns it with the FASTA name.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownContig`] or [`Error::OutOfBounds`].
    pub fn check(&self, region: &Region) -> Result<Region, Error> {
        let contig = self
            .resolve(region.name())
            .ok_or_else(|| self.unknown(region.name()))?;
        if region.end0() > contig.length {
            return Err(Error::OutOfBounds {
                region: region.clone(),
                contig: contig.name.clone(),
                length: contig.length,
            });
        }
        Ok(region.renamed(contig.name.clone()))
    }

    /// The error for an unknown name, with a few known names as hints.
    pub fn unknown(&self, name: &str) -> Error {
        let lower = name.to_ascii_lowercase();
        let mut suggestions: Vec<String> = self
            .list
            .iter()
            .filter(|c| c.name.to_ascii_lowercase().contains(&lower))
            .take(5)
            .map(|c| c.name.clone())
            .collect();
        if suggestions.is_empty() {
            suggestions = self.list.iter().take(6).map(|c| c.name.clone()).collect();
            if self.list.len() > 6 {
                suggestions.push(format!("... {} in all", self.list.len()));
            }
        }
        Error::UnknownContig {
            name: name.to_string(),
            build: self.build.clone(),
            suggestions,
        }
    }

    /// Contigs in FASTA order.
    pub fn iter(&self) -> impl Iterator<Item = &Contig> {
        self.list.iter()
    }

    /// Number of contigs.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are no contigs.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The build these contigs belong to.
    pub fn build(&self) -> &str {
        &self.build
    }
}

/// Reads a chrom.sizes file (`name<TAB>length` per line, further columns ignored, `#` lines
/// skipped; plain or gzip).
///
/// # Errors
///
/// [`Error::Io`] or [`Error::BadSizes`] naming the file and line.
pub fn read_chrom_sizes(path: &Path) -> Result<Vec<Contig>, Error> {
    use std::io::BufRead;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for (i, line) in crate::io::text::open(path).map_err(io)?.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |message: String| Error::BadSizes {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let mut fields = line.split('\t');
        let name = fields.next().unwrap_or_default();
        let length = fields
            .next()
            .ok_or_else(|| bad("expected name<TAB>length".into()))?;
        let length: u64 = length
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(format!("length {length:?} is not a positive number")))?;
        out.push(Contig {
            name: name.to_string(),
            length,
        });
    }
    Ok(out)
}

fn automatic_aliases(name: &str) -> Vec<String> {
    match name {
        "chrM" => vec!["M".into(), "MT".into(), "chrMT".into()],
        "MT" | "M" => vec!["chrM".into(), "chrMT".into()],
        _ => match name.strip_prefix("chr") {
            Some(rest) if !rest.is_empty() => vec![rest.to_string()],
            _ => vec![format!("chr{name}")],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contigs() -> Contigs {
        Contigs::new(
            "test",
            vec![
                Contig {
                    name: "chr1".into(),
                    length: 1000,
                },
                Contig {
                    name: "chr2".into(),
                    length: 500,
                },
                Contig {
                    name: "chrM".into(),
                    length: 16,
                },
            ],
        )
    }

    #[test]
    fn test_sequence_less_contigs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sizes.txt");
        std::fs::write(
            &path,
            "chr1\t1000\n# note\n2\t500\nchr11\t135086622\textra\n",
        )
        .unwrap();
        let sizes = read_chrom_sizes(&path).unwrap();
        assert_eq!(sizes.len(), 3);
        // chr1 is in the FASTA; `2` is chr2's automatic alias, so only chr11 is added
        let c = contigs()
            .with_sequence_less(sizes)
            .with_aliases(&Default::default(), true)
            .unwrap();
        assert_eq!(c.sequence_less(), 1);
        assert_eq!(c.resolve("11").map(|c| c.length), Some(135_086_622));
        assert!(!c.has_sequence("chr11"));
        assert!(c.has_sequence("chr1"));
        std::fs::write(&path, "chr1\t1000\nchr9\tlong\n").unwrap();
        let e = read_chrom_sizes(&path).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "sizes.txt:2: malformed chrom.sizes line: length \"long\" is not a positive number"
            ),
            "{e}"
        );
    }

    #[test]
    fn test_resolve_aliases() {
        let explicit = BTreeMap::from([("one".to_string(), "chr1".to_string())]);
        let c = contigs().with_aliases(&explicit, true).unwrap();
        assert_eq!(c.resolve("chr1").unwrap().name, "chr1");
        assert_eq!(c.resolve("1").unwrap().name, "chr1");
        assert_eq!(c.resolve("one").unwrap().name, "chr1");
        assert_eq!(c.resolve("MT").unwrap().name, "chrM");
        assert!(c.resolve("chr3").is_none());
        assert_eq!(c.names_of("1"), vec!["chr1", "1", "one"]);
        let plain = contigs().with_aliases(&BTreeMap::new(), false).unwrap();
        assert!(plain.resolve("1").is_none());
    }

    #[test]
    fn test_with_aliases_errors() {
        let bad = BTreeMap::from([("x".to_string(), "chr9".to_string())]);
        assert!(matches!(
            contigs().with_aliases(&bad, true),
            Err(Error::BadAlias { .. })
        ));
        let shadow = BTreeMap::from([("chr2".to_string(), "chr1".to_string())]);
        assert!(matches!(
            contigs().with_aliases(&shadow, true),
            Err(Error::BadAlias { .. })
        ));
    }

    #[test]
    fn test_check() {
        let c = contigs().with_aliases(&BTreeMap::new(), true).unwrap();
        let r = c.check(&"1:1-1000".parse().unwrap()).unwrap();
        assert_eq!(r.to_string(), "chr1:1-1000");
        let err = c.check(&"chr1:1-1001".parse().unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "region chr1:1-1001 ends past the end of chr1 (1000 bp)"
        );
        let err = c.check(&"chrX:1-10".parse().unwrap()).unwrap_err();
        assert!(matches!(err, Error::UnknownContig { .. }));
        assert!(
            err.to_string()
                .starts_with("unknown contig \"chrX\" in build test"),
            "{err}"
        );
    }

    #[test]
    fn test_from_fai_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.fai");
        std::fs::write(&path, "chr1\t10\t6\t60\t61\nchr2\tten\t0\t60\t61\n").unwrap();
        let err = Contigs::from_fai("b", &path).unwrap_err();
        assert!(matches!(err, Error::BadIndex { line: 2, .. }), "{err}");
        assert!(matches!(
            Contigs::from_fai("b", &dir.path().join("none.fai")),
            Err(Error::Io { .. })
        ));
    }
}
