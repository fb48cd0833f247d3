//! An opened genome build: its files checked once, then per-thread readers for model inputs.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::config::BuildConfig;
use crate::io::signal::{Track, TrackReader};
use crate::model::Modality;

use super::{fasta, Contig, Contigs, Error as GenomeError, Region};

/// Where a signal's normalisation scale came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleSource {
    /// `scale = ...` in the config.
    Config,
    /// The bigWig's mean over covered bases.
    Summary,
    /// A fragments group's cut sites per base over the build's contigs that have fragments
    /// (2 × fragments / their length).
    Fragments,
}

/// A fragments group's scale: its cut sites per base over the build's contigs that have its
/// fragments (2 × fragments / their length); `None` when it has none there.
fn fragments_scale(
    contigs: &Contigs,
    names: &HashMap<String, String>,
    f: &crate::io::signal::FragmentsTrack,
) -> Option<f64> {
    let (mut length, mut total) = (0u64, 0u64);
    for c in contigs.iter() {
        if let Some(n) = names.get(&c.name).and_then(|n| f.fragments.get(n)) {
            length += c.length;
            total += n;
        }
    }
    (length > 0 && total > 0).then(|| 2.0 * total as f64 / length as f64)
}

/// A configured signal track, opened and checked.
#[derive(Debug, Clone)]
pub struct Signal {
    /// Which model input it feeds.
    pub modality: Modality,
    /// The file: a bigWig, or one group of a fragments file.
    pub track: Track,
    /// Normalisation scale.
    pub scale: f64,
    /// Where the scale came from.
    pub scale_source: ScaleSource,
    /// Assay, if configured.
    pub assay: Option<String>,
    /// FASTA contig name -> the file's name for it.
    names: HashMap<String, String>,
}

impl Signal {
    /// The file's own name for a FASTA contig.
    ///
    /// # Errors
    ///
    /// [`crate::io::Error::MissingContig`] listing the names tried.
    pub fn file_contig(&self, contigs: &Contigs, contig: &str) -> Result<&str, crate::io::Error> {
        self.names
            .get(contig)
            .map(String::as_str)
            .ok_or_else(|| crate::io::Error::MissingContig {
                path: self.track.path().into(),
                name: contig.into(),
                tried: contigs
                    .names_of(contig)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                available: self.track.contig_sample(8),
            })
    }

    /// Whether the file has the FASTA contig `contig` (by any alias).
    pub fn covers(&self, contig: &str) -> bool {
        self.names.contains_key(contig)
    }

    /// FASTA contigs this file covers (by any alias).
    pub fn covered_contigs(&self) -> usize {
        self.names.len()
    }
}

/// An opened genome build.
#[derive(Debug, Clone)]
pub struct Build {
    config: BuildConfig,
    contigs: Contigs,
    signals: Vec<Signal>,
}

impl Build {
    /// The cell groups of the build's fragments file (table order); `None` for a build that
    /// reads no fragments.
    pub fn cell_groups(&self) -> Option<&[String]> {
        self.signals
            .iter()
            .find_map(|s| s.track.fragments())
            .map(|f| f.group_names())
    }

    /// The cell group the build reads; `None` for a build that reads no fragments.
    pub fn cell_group(&self) -> Option<&str> {
        self.signals
            .iter()
            .find_map(|s| s.track.fragments())
            .map(|f| f.group_name())
    }

    /// The same build reading the cell group `group` of its fragments file (scale recomputed
    /// unless the config sets one).
    ///
    /// # Errors
    ///
    /// A message when the build reads no fragments, or its group table has no such group.
    pub fn with_group(&self, group: &str) -> Result<Self, String> {
        let mut out = self.clone();
        let Some(signal) = out
            .signals
            .iter_mut()
            .find(|s| s.track.fragments().is_some())
        else {
            return Err(format!(
                "build {} reads no scATAC fragments: it has no cell groups",
                self.name()
            ));
        };
        let f = signal.track.fragments().expect("found above");
        let Some(chosen) = f.with_group(group) else {
            return Err(format!(
                "build {} has no cell group {group:?} (groups: {})",
                self.name(),
                f.group_names().join(", ")
            ));
        };
        if signal.scale_source == ScaleSource::Fragments {
            signal.scale =
                fragments_scale(&self.contigs, &signal.names, &chosen).ok_or_else(|| {
                    format!("group {group:?} has no fragments on the build's contigs")
                })?;
        }
        signal.track = Track::Fragments(chosen);
        if let Some(config) = out.config.signals.get_mut(&signal.modality) {
            if let Some(fragments) = &mut config.fragments {
                fragments.group = Some(group.to_string());
            }
        }
        Ok(out)
    }

    /// Checks the FASTA (and its indexes) and opens every signal track.
    ///
    /// # Errors
    ///
    /// [`crate::Error`] naming the file: a missing or unindexed FASTA, a bad alias, a missing
    /// or invalid bigWig, a bigWig without covered bases and no configured scale, a missing
    /// genes or candidates file.
    pub fn open(config: &BuildConfig) -> crate::Result<Self> {
        let contigs = fasta::check_files(&config.fasta)?;
        let mut contigs = Contigs::new(&config.name, contigs.iter().cloned().collect());
        if let Some(path) = &config.chrom_sizes {
            contigs = contigs.with_sequence_less(super::read_chrom_sizes(path)?);
        }
        let contigs = contigs.with_aliases(&config.aliases, config.auto_aliases)?;
        for path in config
            .genes
            .iter()
            .map(|(p, _)| p)
            .chain(config.candidates.iter())
        {
            std::fs::metadata(path).map_err(|source| GenomeError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let mut signals = Vec::new();
        for (&modality, signal) in &config.signals {
            let track = Track::open(signal)?;
            let mut names = HashMap::new();
            for contig in contigs.iter() {
                if let Some(name) = contigs
                    .names_of(&contig.name)
                    .into_iter()
                    .find(|n| track.has_contig(n))
                {
                    names.insert(contig.name.clone(), name.to_string());
                }
            }
            let kind = if track.fragments().is_some() {
                "fragments"
            } else {
                "bigWig"
            };
            let unknown_scale = |why: &str| {
                Err(crate::io::Error::Open {
                    kind,
                    path: signal.path.clone(),
                    source: format!(
                        "{why}, so its normalisation scale is unknown; set `scale` for signal {modality} in the config"
                    )
                    .into(),
                })
            };
            let (scale, scale_source) = match (signal.scale, &track) {
                (Some(scale), _) => (scale, ScaleSource::Config),
                (None, Track::BigWig(t)) => match t.covered_mean() {
                    Some(mean) if mean > 0.0 && mean.is_finite() => (mean, ScaleSource::Summary),
                    _ => unknown_scale("its summary has no covered bases or a non-positive mean")?,
                },
                (None, Track::Fragments(f)) => match fragments_scale(&contigs, &names, f) {
                    Some(scale) => (scale, ScaleSource::Fragments),
                    None => unknown_scale(&format!(
                        "group {} has no fragments on the build's contigs",
                        f.group_name()
                    ))?,
                },
            };
            if let Track::Fragments(_) = track {
                // a contig without fragments has no cut sites: zeros, not an error
                for contig in contigs.iter() {
                    names
                        .entry(contig.name.clone())
                        .or_insert_with(|| contig.name.clone());
                }
            }
            if names.is_empty() {
                return Err(crate::io::Error::Open {
                    kind,
                    path: signal.path.clone(),
                    source: format!(
                        "none of its contigs ({}) is a contig of build {} or an alias of one",
                        track.contig_sample(6),
                        config.name
                    )
                    .into(),
                }
                .into());
            }
            signals.push(Signal {
                modality,
                track,
                scale,
                scale_source,
                assay: signal.assay.clone(),
                names,
            });
        }
        Ok(Self {
            config: config.clone(),
            contigs,
            signals,
        })
    }

    /// Build name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The configuration it was opened from.
    pub fn config(&self) -> &BuildConfig {
        &self.config
    }

    /// Contigs and aliases.
    pub fn contigs(&self) -> &Contigs {
        &self.contigs
    }

    /// Configured signals.
    pub fn signals(&self) -> &[Signal] {
        &self.signals
    }

    /// The signal feeding `modality`, if configured.
    pub fn signal(&self, modality: Modality) -> Option<&Signal> {
        self.signals.iter().find(|s| s.modality == modality)
    }

    /// Modalities without a track, which the model sees masked.
    pub fn masked_modalities(&self) -> Vec<Modality> {
        [Modality::H3k27ac, Modality::Accessibility]
            .into_iter()
            .filter(|m| self.signal(*m).is_none())
            .collect()
    }

    /// The `modality_mask` row for this build: 1 for present modalities.
    pub fn modality_mask(&self) -> [f32; 3] {
        let mut mask = [1.0; 3];
        for m in self.masked_modalities() {
            mask[m.index()] = 0.0;
        }
        mask
    }

    /// The folder of the model for `role` (the build's default role when `None`).
    ///
    /// # Errors
    ///
    /// [`crate::model::Error::UnknownModel`].
    pub fn model_dir(&self, role: Option<&str>) -> Result<PathBuf, crate::model::Error> {
        let role = role.unwrap_or(&self.config.default_model);
        self.config
            .models
            .get(role)
            .map(|rel| self.config.models_dir.join(rel))
            .ok_or_else(|| crate::model::Error::UnknownModel {
                build: self.config.name.clone(),
                role: role.into(),
                available: self.config.models.keys().cloned().collect(),
            })
    }

    /// Readers for one thread.
    ///
    /// # Errors
    ///
    /// When a file can no longer be opened.
    pub fn reader(&self) -> crate::Result<InputReader> {
        let fasta = fasta::Reader::open(&self.config.fasta)?;
        let mut signals = Vec::new();
        for s in &self.signals {
            signals.push((s.clone(), s.track.reader()?));
        }
        Ok(InputReader {
            contigs: self.contigs.clone(),
            fasta,
            signals,
        })
    }
}

/// The raw inputs of a span of one contig: bases (N outside the contig) and per-base signal
/// values (0 outside the contig and for absent tracks).
#[derive(Debug, Clone, Default)]
pub struct Span {
    /// FASTA contig name.
    pub contig: String,
    /// 0-based start; may be negative.
    pub start0: i64,
    /// Bases, as stored (case kept).
    pub sequence: Vec<u8>,
    /// Per-base H3K27ac values.
    pub h3k27ac: Vec<f32>,
    /// Per-base accessibility values.
    pub accessibility: Vec<f32>,
}

impl Span {
    /// Span length.
    pub fn len(&self) -> usize {
        self.sequence.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.sequence.is_empty()
    }
}

/// Per-thread readers of a build's FASTA and signal tracks (owning what they need, so a
/// worker thread can keep one for as long as it runs).
pub struct InputReader {
    contigs: Contigs,
    fasta: fasta::Reader,
    signals: Vec<(Signal, TrackReader)>,
}

impl InputReader {
    /// Reads `[start0, end0)` of `contig` into `span`, padding with N and zero signal where the
    /// interval passes the contig's ends.
    ///
    /// # Errors
    ///
    /// A FASTA fetch error, [`crate::io::Error::MissingContig`] when a signal track lacks the
    /// contig, or [`crate::io::Error::Read`] when a track cannot be read.
    pub fn read_span(
        &mut self,
        contig: &Contig,
        start0: i64,
        end0: i64,
        span: &mut Span,
    ) -> crate::Result<()> {
        self.read_signals(contig, start0, end0, span)?;
        let len = (end0 - start0) as usize;
        let clip_start = start0.clamp(0, contig.length as i64);
        let clip_end = end0.clamp(0, contig.length as i64);
        span.sequence.resize((clip_start - start0) as usize, b'N');
        if clip_start < clip_end && self.contigs.has_sequence(&contig.name) {
            let mut fetched = Vec::new();
            self.fasta.fetch_into(
                &Region::new(&contig.name, clip_start as u64, clip_end as u64)?,
                &mut fetched,
            )?;
            span.sequence.extend_from_slice(&fetched);
        }
        span.sequence.resize(len, b'N');
        Ok(())
    }

    /// Reads only the signal values of `[start0, end0)` of `contig` into `span` (zero where
    /// the interval passes the contig's ends), for a caller that has the bases already: the
    /// span's sequence is left empty.
    ///
    /// # Errors
    ///
    /// As [`InputReader::read_span`], less the FASTA.
    pub fn read_signals(
        &mut self,
        contig: &Contig,
        start0: i64,
        end0: i64,
        span: &mut Span,
    ) -> crate::Result<()> {
        assert!(start0 < end0, "empty span; this is a bug");
        span.contig.clone_from(&contig.name);
        span.start0 = start0;
        span.sequence.clear();
        let len = (end0 - start0) as usize;
        let clip_start = start0.clamp(0, contig.length as i64);
        let clip_end = end0.clamp(0, contig.length as i64);
        for buffer in [&mut span.h3k27ac, &mut span.accessibility] {
            buffer.clear();
            buffer.resize(len, 0.0);
        }
        for (signal, reader) in &mut self.signals {
            let name = signal.file_contig(&self.contigs, &contig.name)?;
            let buffer = match signal.modality {
                Modality::H3k27ac => &mut span.h3k27ac,
                _ => &mut span.accessibility,
            };
            if clip_start < clip_end {
                let offset = (clip_start - start0) as usize;
                let n = (clip_end - clip_start) as usize;
                reader.read_into(
                    name,
                    clip_start as u32,
                    clip_end as u32,
                    &mut buffer[offset..offset + n],
                )?;
            }
        }
        Ok(())
    }
}
