//! The builds config: a TOML file naming genome builds and their inputs.
//!
//! ```toml
//! models_dir = "../models"            # default: "models" beside this file
//! cache_dir = "../.cistrack/cache"    # score caches; default: ~/.cache/cistrack
//! cache = { redis = "redis://127.0.0.1:6379/0" }   # optional tier shared by several daemons
//! default_build = "hg38"              # with several builds: the one commands use without --build
//!
//! [builds.hg38]
//! description = "partial GRCh38 with K562 tracks"
//! fasta = "hg38.fa.gz"                # bgzip + .fai + .gzi (or plain + .fai)
//! genes = { path = "tss.bed.gz", start = "one-based" }   # or just a path (BED6, 0-based)
//! # genes = { path = "genes.bed.gz", id_column = 7 }     # a column with Ensembl gene ids
//! candidates = "candidates.bed.gz"    # optional candidate elements (BED)
//! chrom_sizes = "hg38.chrom.sizes"    # optional: contigs the FASTA lacks (sequence masked)
//! contacts = { path = "hic.tsv.gz", resolution = 5000 }   # optional contact table for links
//! gene_aliases = "aliases.csv"        # optional: alias,gene id (renamed symbols)
//! motifs = "JASPAR2024.jaspar"        # optional: motifs annotate scans (JASPAR or MEME)
//! models = { student = "enhancer-student/0.2.0", teacher = "enhancer-teacher/0.2.0" }
//! default_model = "student"
//! auto_aliases = true                 # chr1 <-> 1, chrM <-> MT (default true)
//!
//! [builds.hg38.aliases]               # alias -> FASTA name
//! "NC_000022.11" = "chr22"
//!
//! [builds.hg38.signals.h3k27ac]       # signal keys: h3k27ac, accessibility
//! bigwig = "k562.h3k27ac.bw"
//! scale = 1.0                         # optional; default: the bigWig's mean over covered bases
//!
//! [builds.hg38.signals.accessibility] # or scATAC: a group's Tn5 cut sites (crate::io::fragments)
//! fragments = "fragments.tsv.gz"      # bgzipped + tabix-indexed, as Cell Ranger ATAC writes
//! groups = "barcode_groups.tsv"       # optional; default one pseudobulk of every barcode
//! group = "common"                    # optional; default the table's first group
//! ```
//!
//! Relative paths resolve against the folder of the config file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::genome::genes::{GenesFormat, StartBase};
use crate::model::Modality;
use crate::pipeline::cache::SharedSettings;

/// Errors reading a config.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read config {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is invalid or does not match the schema.
    #[error("invalid config {}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's error, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A value that parses but makes no sense.
    #[error("config {}: build {build}: {message}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The build.
        build: String,
        /// What is wrong.
        message: String,
    },
    /// No build of that name.
    #[error("no build {name:?} in config {} (builds: {})", .path.display(), .available.join(", "))]
    UnknownBuild {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The builds defined.
        available: Vec<String>,
    },
    /// `default_build` names no build of the file.
    #[error("config {}: default_build {name:?} is not one of its builds ({})", .path.display(), .available.join(", "))]
    UnknownDefaultBuild {
        /// The file.
        path: PathBuf,
        /// The name given.
        name: String,
        /// The builds defined.
        available: Vec<String>,
    },
    /// The shared cache tier's settings are unusable.
    #[error("config {}: cache.redis", .path.display())]
    Redis {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::pipeline::cache::shared::UrlError,
    },
    /// Several builds and none chosen.
    #[error("config {} defines several builds ({}): choose one with --build (or set default_build)", .path.display(), .available.join(", "))]
    AmbiguousBuild {
        /// The file.
        path: PathBuf,
        /// The builds defined.
        available: Vec<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    models_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    default_build: Option<String>,
    cache: Option<RawCache>,
    #[serde(default)]
    builds: BTreeMap<String, RawBuild>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    redis: String,
    redis_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    description: Option<String>,
    fasta: PathBuf,
    genes: Option<RawGenes>,
    candidates: Option<PathBuf>,
    chrom_sizes: Option<PathBuf>,
    contacts: Option<RawContacts>,
    gene_aliases: Option<PathBuf>,
    motifs: Option<PathBuf>,
    #[serde(default)]
    signals: BTreeMap<String, RawSignal>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    #[serde(default = "default_true")]
    auto_aliases: bool,
    #[serde(default)]
    models: BTreeMap<String, String>,
    default_model: Option<String>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawGenes {
    Path(PathBuf),
    Table {
        path: PathBuf,
        #[serde(default)]
        start: StartBase,
        id_column: Option<usize>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContacts {
    path: PathBuf,
    resolution: u64,
    #[serde(default = "default_one")]
    scale: f64,
}

fn default_one() -> f64 {
    1.0
}

/// A contact table for enhancer–gene links: bin pairs at `resolution` with a contact value,
/// divided by `scale` to put it on the scale of the power law (1 at 5 kb).
#[derive(Debug, Clone, PartialEq)]
pub struct ContactsConfig {
    /// The table: `chrom bin1_start bin2_start value` per line, or BEDPE
    /// (`chrom1 start1 end1 chrom2 start2 end2 value`); plain or gzip.
    pub path: PathBuf,
    /// Bin size, bp.
    pub resolution: u64,
    /// Values are divided by this.
    pub scale: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignal {
    bigwig: Option<PathBuf>,
    fragments: Option<PathBuf>,
    groups: Option<PathBuf>,
    group: Option<String>,
    assay: Option<String>,
    scale: Option<f64>,
}

/// A parsed config with paths resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file.
    pub path: PathBuf,
    /// Where model folders live.
    pub models_dir: PathBuf,
    /// Where the per-build score caches live (`cache_dir` in the file; default
    /// `$XDG_CACHE_HOME/cistrack`, else `~/.cache/cistrack`).
    pub cache_dir: PathBuf,
    /// The cache tier shared by several daemons (`cache = { redis = "redis://…" }`).
    pub redis: Option<SharedSettings>,
    /// Builds by name.
    pub builds: BTreeMap<String, BuildConfig>,
    /// The build commands use without `--build` when there are several (`default_build`).
    pub default_build: Option<String>,
}

/// One build as configured.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// Build name (`hg38`, ...).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Indexed FASTA.
    pub fasta: PathBuf,
    /// Gene TSS file and its layout.
    pub genes: Option<(PathBuf, GenesFormat)>,
    /// Candidate elements (BED).
    pub candidates: Option<PathBuf>,
    /// Contig sizes (`name<TAB>length`) adding contigs the FASTA lacks: they are served with
    /// their sequence masked (signals, genes and candidates only).
    pub chrom_sizes: Option<PathBuf>,
    /// Contact table replacing the power law where it has a value (links).
    pub contacts: Option<ContactsConfig>,
    /// Gene aliases (`alias,gene id` or tab-separated, a header allowed): names a query may use
    /// for a gene of the genes file (renamed symbols).
    pub gene_aliases: Option<PathBuf>,
    /// Motif matrices `annotate` scans around each allele (JASPAR or MEME).
    pub motifs: Option<PathBuf>,
    /// Signal tracks by modality.
    pub signals: BTreeMap<Modality, SignalConfig>,
    /// Explicit aliases, alias -> FASTA name.
    pub aliases: BTreeMap<String, String>,
    /// Add `chr`-prefix aliases automatically.
    pub auto_aliases: bool,
    /// Model roles (`student`, `teacher`) -> `name/version` under the models folder.
    pub models: BTreeMap<String, String>,
    /// The role used when `--model` is not given.
    pub default_model: String,
    /// The config's models folder (copied here so a build stands alone).
    pub models_dir: PathBuf,
}

/// One signal track as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalConfig {
    /// The bigWig, or the fragments file when `fragments` is set.
    pub path: PathBuf,
    /// Accessibility from scATAC fragments (`fragments = "…"` instead of `bigwig`).
    pub fragments: Option<FragmentsConfig>,
    /// Assay description (`DNase-seq`, `ATAC-seq`, `ChIP-seq`).
    pub assay: Option<String>,
    /// Normalisation scale; `None` means the bigWig's mean over covered bases.
    pub scale: Option<f64>,
}

/// A signal read from a 10x fragments file (see [`crate::io::fragments`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FragmentsConfig {
    /// The barcode → group table (`groups`); `None`: one pseudobulk of every barcode.
    pub groups: Option<PathBuf>,
    /// The group whose cut sites feed the model (`group`; default: the table's first).
    pub group: Option<String>,
    /// Where the fragments per group and contig are kept after the first pass over the file
    /// (`<cache_dir>/fragments`).
    pub counts_dir: Option<PathBuf>,
}

impl Config {
    /// Reads and checks a config file.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], [`Error::Parse`] (with toml's line and column) or [`Error::Invalid`].
    ///
    /// # Examples
    ///
    /// ```
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fixture.toml");
    /// let config = cistrack::config::Config::load(path.as_ref())?;
    /// assert!(config.builds.contains_key("fixture"));
    /// # Ok::<(), cistrack::config::Error>(())
    /// ```
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        Self::from_toml(path, &text)
    }

    /// Parses config text as if read from `path` (relative paths resolve against its folder).
    ///
    /// # Errors
    ///
    /// As [`Config::load`].
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, Error> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| Error::Parse {
            path: path.into(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let models_dir = resolve(raw.models_dir.as_deref().unwrap_or(Path::new("models")));
        let cache_dir = match &raw.cache_dir {
            Some(dir) => resolve(dir),
            None => default_cache_dir(),
        };
        let mut builds = BTreeMap::new();
        for (name, b) in raw.builds {
            let invalid = |message: String| Error::Invalid {
                path: path.into(),
                build: name.clone(),
                message,
            };
            let mut signals = BTreeMap::new();
            for (key, s) in b.signals {
                let modality = match key.as_str() {
                    "h3k27ac" => Modality::H3k27ac,
                    "accessibility" => Modality::Accessibility,
                    other => {
                        return Err(invalid(format!("unknown signal {other:?}: the enhancer models take \"h3k27ac\" and \"accessibility\"")))
                    }
                };
                if let Some(scale) = s.scale {
                    if !(scale.is_finite() && scale > 0.0) {
                        return Err(invalid(format!(
                            "signal {key}: scale must be a positive number, got {scale}"
                        )));
                    }
                }
                let (path, fragments) = match (s.bigwig, s.fragments) {
                    (Some(bigwig), None) if s.groups.is_none() && s.group.is_none() => {
                        (resolve(&bigwig), None)
                    }
                    (Some(_), None) => {
                        return Err(invalid(format!(
                            "signal {key}: `groups` and `group` go with `fragments`, not `bigwig`"
                        )))
                    }
                    (None, Some(fragments)) if modality == Modality::Accessibility => (
                        resolve(&fragments),
                        Some(FragmentsConfig {
                            groups: s.groups.as_deref().map(&resolve),
                            group: s.group,
                            counts_dir: Some(cache_dir.join("fragments")),
                        }),
                    ),
                    (None, Some(_)) => {
                        return Err(invalid(format!(
                            "signal {key}: `fragments` (scATAC) can only feed accessibility"
                        )))
                    }
                    _ => {
                        return Err(invalid(format!(
                            "signal {key}: give one of `bigwig = \"…\"` or `fragments = \"…\"`"
                        )))
                    }
                };
                signals.insert(
                    modality,
                    SignalConfig {
                        path,
                        fragments,
                        assay: s.assay,
                        scale: s.scale,
                    },
                );
            }
            let default_model = b.default_model.unwrap_or_else(|| "student".to_string());
            if !b.models.is_empty() && !b.models.contains_key(&default_model) {
                return Err(invalid(format!(
                    "default_model {default_model:?} is not one of its models ({})",
                    b.models.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            let genes = match b.genes {
                None => None,
                Some(RawGenes::Path(p)) => Some((resolve(&p), GenesFormat::default())),
                Some(RawGenes::Table {
                    path,
                    start,
                    id_column,
                }) => {
                    if id_column.is_some_and(|c| c < 1) {
                        return Err(invalid(
                            "genes.id_column counts from 1 (as `cut -f`); 0 is not a column".into(),
                        ));
                    }
                    Some((resolve(&path), GenesFormat { start, id_column }))
                }
            };
            let contacts = match b.contacts {
                None => None,
                Some(c) => {
                    if c.resolution == 0 || !(c.scale.is_finite() && c.scale > 0.0) {
                        return Err(invalid(
                            "contacts: resolution must be a positive number of bp and scale a positive number".into(),
                        ));
                    }
                    Some(ContactsConfig {
                        path: resolve(&c.path),
                        resolution: c.resolution,
                        scale: c.scale,
                    })
                }
            };
            builds.insert(
                name.clone(),
                BuildConfig {
                    name,
                    description: b.description,
                    fasta: resolve(&b.fasta),
                    genes,
                    candidates: b.candidates.as_deref().map(resolve),
                    chrom_sizes: b.chrom_sizes.as_deref().map(resolve),
                    contacts,
                    gene_aliases: b.gene_aliases.as_deref().map(resolve),
                    motifs: b.motifs.as_deref().map(resolve),
                    signals,
                    aliases: b.aliases,
                    auto_aliases: b.auto_aliases,
                    models: b.models,
                    default_model,
                    models_dir: models_dir.clone(),
                },
            );
        }
        let redis = match raw.cache {
            None => None,
            Some(c) => {
                let settings = SharedSettings {
                    url: c.redis,
                    prefix: c.redis_prefix.unwrap_or_else(|| "cistrack".into()),
                };
                settings.validate().map_err(|source| Error::Redis {
                    path: path.into(),
                    source,
                })?;
                Some(settings)
            }
        };
        if let Some(name) = &raw.default_build {
            if !builds.contains_key(name) {
                return Err(Error::UnknownDefaultBuild {
                    path: path.into(),
                    name: name.clone(),
                    available: builds.keys().cloned().collect(),
                });
            }
        }
        Ok(Self {
            path: path.into(),
            models_dir,
            cache_dir,
            redis,
            builds,
            default_build: raw.default_build,
        })
    }

    /// The build named `name`, or the only build when `name` is `None`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownBuild`] or [`Error::AmbiguousBuild`].
    pub fn build(&self, name: Option<&str>) -> Result<&BuildConfig, Error> {
        let available = || self.builds.keys().cloned().collect::<Vec<_>>();
        match name {
            Some(name) => self.builds.get(name).ok_or_else(|| Error::UnknownBuild {
                path: self.path.clone(),
                name: name.into(),
                available: available(),
            }),
            None if self.builds.len() == 1 => Ok(self
                .builds
                .values()
                .next()
                .expect("one build; this is a bug")),
            None if self.default_build.is_some() => self.build(self.default_build.as_deref()),
            None => Err(Error::AmbiguousBuild {
                path: self.path.clone(),
                available: available(),
            }),
        }
    }
}

/// `$XDG_CACHE_HOME/cistrack`, else `$HOME/.cache/cistrack`, else `.cistrack-cache`.
pub fn default_cache_dir() -> PathBuf {
    match (std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME")) {
        (Some(xdg), _) if !xdg.is_empty() => PathBuf::from(xdg).join("cistrack"),
        (_, Some(home)) if !home.is_empty() => PathBuf::from(home).join(".cache/cistrack"),
        _ => PathBuf::from(".cistrack-cache"),
    }
}

#[cfg(test)]
mod tests;
