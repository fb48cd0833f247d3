//! Where a model input signal comes from: a bigWig, or the Tn5 cut sites of one cell group in a
//! scATAC fragments file ([`super::fragments`]). Both give per-base values for a region through
//! a per-thread reader; the build normalises them by its scale ([`crate::genome::build`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::SignalConfig;

use super::bbi::{SignalReader, SignalTrack};
use super::fragments::{Fragments, Groups};
use super::Error;

/// A signal file, opened and checked.
#[derive(Debug, Clone)]
pub enum Track {
    /// A bigWig.
    BigWig(SignalTrack),
    /// One group of a fragments file.
    Fragments(FragmentsTrack),
}

/// One cell group of a 10x fragments file.
#[derive(Debug, Clone)]
pub struct FragmentsTrack {
    path: PathBuf,
    groups: Groups,
    /// The group whose cut sites are read.
    pub group: usize,
    /// The group table, when there is one.
    pub groups_path: Option<PathBuf>,
    /// Fragments of the group per contig (the file's names).
    pub fragments: HashMap<String, u64>,
    /// Fragments per contig of every group.
    totals: Vec<HashMap<String, u64>>,
    contigs: Vec<String>,
}

impl FragmentsTrack {
    /// The group's name.
    pub fn group_name(&self) -> &str {
        &self.groups.names[self.group]
    }

    /// Every group of the file.
    pub fn group_names(&self) -> &[String] {
        &self.groups.names
    }

    /// The group's fragments over the whole file.
    pub fn total(&self) -> u64 {
        self.fragments.values().sum()
    }

    /// Every group's fragments over the whole file, in table order.
    pub fn group_totals(&self) -> Vec<u64> {
        self.totals.iter().map(|t| t.values().sum()).collect()
    }

    /// The same file read for the group named `name`, or `None` when the table has no such
    /// group.
    pub fn with_group(&self, name: &str) -> Option<Self> {
        let group = self.groups.names.iter().position(|n| n == name)?;
        Some(Self {
            group,
            fragments: self.totals[group].clone(),
            ..self.clone()
        })
    }
}

fn open_error(kind: &'static str, path: &Path, source: impl Into<super::Cause>) -> Error {
    Error::Open {
        kind,
        path: path.into(),
        source: source.into(),
    }
}

impl Track {
    /// Opens the configured file: a bigWig's header and summary, or a fragments file's index,
    /// group table and the group's fragment counts (one pass over the file, kept in the
    /// config's cache folder for later opens).
    ///
    /// # Errors
    ///
    /// [`Error::Open`] naming the file (or the group table, or the group that is not in it).
    pub fn open(config: &SignalConfig) -> Result<Self, Error> {
        let Some(settings) = &config.fragments else {
            return Ok(Track::BigWig(SignalTrack::open(&config.path)?));
        };
        let path = &config.path;
        let groups = match &settings.groups {
            Some(table) => Groups::read(table).map_err(|e| open_error("group table", table, e))?,
            None => Groups::pseudobulk(),
        };
        let group = match &settings.group {
            None => 0,
            Some(name) => groups.names.iter().position(|n| n == name).ok_or_else(|| {
                open_error(
                    "fragments",
                    path,
                    format!(
                        "group {name:?} is not in the group table (groups: {})",
                        groups.names.join(", ")
                    ),
                )
            })?,
        };
        let mut reader =
            Fragments::open(path, groups.clone()).map_err(|e| open_error("fragments", path, e))?;
        let totals = reader
            .totals_kept(settings.counts_dir.as_deref(), settings.groups.as_deref())
            .map_err(|e| open_error("fragments", path, e))?;
        let mut contigs: Vec<String> = totals.iter().flat_map(|t| t.keys().cloned()).collect();
        contigs.sort_unstable();
        contigs.dedup();
        Ok(Track::Fragments(FragmentsTrack {
            path: path.clone(),
            groups,
            group,
            groups_path: settings.groups.clone(),
            fragments: totals[group].clone(),
            totals,
            contigs,
        }))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Track::BigWig(t) => t.path(),
            Track::Fragments(f) => &f.path,
        }
    }

    /// Whether the file names the contig `name` (a fragments file: has fragments on it).
    pub fn has_contig(&self, name: &str) -> bool {
        match self {
            Track::BigWig(t) => t.contig_length(name).is_some(),
            Track::Fragments(f) => f.contigs.iter().any(|c| c == name),
        }
    }

    /// Number of contigs in the file.
    pub fn contig_count(&self) -> usize {
        match self {
            Track::BigWig(t) => t.contig_count(),
            Track::Fragments(f) => f.contigs.len(),
        }
    }

    /// A few contig names, for messages.
    pub fn contig_sample(&self, n: usize) -> String {
        match self {
            Track::BigWig(t) => t.contig_sample(n),
            Track::Fragments(f) => {
                let mut text = f
                    .contigs
                    .iter()
                    .take(n)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if f.contigs.len() > n {
                    text.push_str(&format!(", ... ({} in all)", f.contigs.len()));
                }
                text
            }
        }
    }

    /// The fragments file's group, for a fragments track.
    pub fn fragments(&self) -> Option<&FragmentsTrack> {
        match self {
            Track::Fragments(f) => Some(f),
            Track::BigWig(_) => None,
        }
    }

    /// The bigWig, for a bigWig track.
    pub fn bigwig(&self) -> Option<&SignalTrack> {
        match self {
            Track::BigWig(t) => Some(t),
            Track::Fragments(_) => None,
        }
    }

    /// A reader for one thread.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] if the file can no longer be opened.
    pub fn reader(&self) -> Result<TrackReader, Error> {
        Ok(match self {
            Track::BigWig(t) => TrackReader::BigWig(t.reader()?),
            Track::Fragments(f) => TrackReader::Fragments {
                reader: Box::new(
                    Fragments::open(&f.path, f.groups.clone())
                        .map_err(|e| open_error("fragments", &f.path, e))?,
                ),
                group: f.group,
                counts: Vec::new(),
            },
        })
    }
}

/// A per-thread reader of a [`Track`].
pub enum TrackReader {
    /// A bigWig's.
    BigWig(SignalReader),
    /// A fragments file's, for one group.
    Fragments {
        /// The file.
        reader: Box<Fragments>,
        /// The group read.
        group: usize,
        /// Cut sites per group (reused).
        counts: Vec<Vec<u32>>,
    },
}

impl TrackReader {
    /// Writes per-base values of `[start0, end0)` on `contig` (the file's own name) into `out`
    /// (length `end0 - start0`): the bigWig's values (0 where none), or the group's cut sites
    /// per base.
    ///
    /// # Errors
    ///
    /// [`Error::Read`] when the file cannot be read.
    pub fn read_into(
        &mut self,
        contig: &str,
        start0: u32,
        end0: u32,
        out: &mut [f32],
    ) -> Result<(), Error> {
        match self {
            TrackReader::BigWig(r) => r.read_into(contig, start0, end0, out),
            TrackReader::Fragments {
                reader,
                group,
                counts,
            } => {
                reader
                    .cut_sites(contig, u64::from(start0), u64::from(end0), counts)
                    .map_err(|e| Error::Read {
                        path: reader.path(),
                        contig: contig.into(),
                        start0,
                        end0,
                        source: e.into(),
                    })?;
                for (o, &c) in out.iter_mut().zip(&counts[*group]) {
                    *o = c as f32;
                }
                Ok(())
            }
        }
    }
}
