//! Enhancer–gene links for a view: the genes near it, each gene's candidate elements and their
//! features (as `models/training`'s `link_data.py` defines them, see `models/CONTRACT.md`),
//! the link model's predicted expression and promoter attention, and a cache of element
//! embeddings and gene results.
//!
//! A gene's inputs: its promoter (`[tss − w, tss + w)`) and up to `max_candidates` candidate
//! elements of the build's `candidates` file whose midpoint lies within `max_distance` of the
//! TSS, excluding those overlapping the core promoter, nearest first. Per element: distance,
//! contact (the ABC power law relative to its value at `min_distance`; the runtime has no Hi-C),
//! activity and the two signals (mean over the element divided by the track's mean, from the
//! build's accessibility and H3K27ac bigWigs). Sequence: the 2-kb window centred on the element
//! is encoded when at most `max_n_fraction` of it is not A/C/G/T, otherwise masked.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::genome::build::{InputReader, Span};
use crate::genome::genes::{read_intervals, read_tss, Tss};
use crate::genome::{Build, Contig};
use crate::model::e2g::{self, E2gModel};
use crate::model::encode::one_hot_into;
use crate::model::link::{
    powerlaw_contact, ElementFeatures, FeatureSpec, GeneBatch, LinkPredictor, LinkSpec,
};
use crate::model::onnx::SessionOptions;
use crate::model::Modality;

use super::link_inputs::{read_aliases, ContactTable};
use super::links_output::{ContactSource, GeneLinks, Link};
use crate::pipeline::cache::{DiskStore, Stats};

/// The model role of a build's link model (`models.links` in its config).
pub const LINK_ROLE: &str = "links";

/// The model role of a build's supervised enhancer–gene model (`models.e2g`), which scores
/// the link model's candidates (see [`crate::model::e2g`]).
pub const E2G_ROLE: &str = "e2g";

/// How the daemon builds a link model's inputs: the model's feature settings plus the
/// sequence window and its masking rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSettings {
    /// From the model's `model.json`.
    pub model: FeatureSpec,
    /// Sequence window length, bp.
    pub sequence_length: usize,
    /// A sequence window with more than this fraction of non-A/C/G/T bases is masked.
    pub max_n_fraction: f64,
}

/// A candidate element with its normalised signals.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    start0: u64,
    end0: u64,
    accessibility: f64,
    h3k27ac: f64,
}

/// An element's sequence input.
#[derive(Debug, Clone)]
enum Sequence {
    /// Too much of the window is not A/C/G/T: masked.
    Masked,
    /// The one-hot window, not embedded yet.
    OneHot(Arc<[f32]>),
    /// The encoder's output.
    Embedded(Arc<[f32]>),
}

/// One candidate of a gene, prepared.
struct PreparedCandidate {
    cand: Candidate,
    distance: u64,
    contact: f64,
    contact_source: ContactSource,
    features: [f32; 5],
    sequence: Sequence,
    /// Among the link model's inputs (the nearest `max_candidates` within its reach).
    attended: bool,
    tss_between: u32,
}

/// One gene's prepared inputs.
struct Prepared {
    tss: Tss,
    promoter_features: [f32; 5],
    promoter_activity: f64,
    promoter_sequence: Sequence,
    candidates: Vec<PreparedCandidate>,
}

/// Genes with their links for a view.
#[derive(Debug, Clone, Default)]
pub struct LinksView {
    /// Genes (with links) whose TSS lies in the view or that have an element in it.
    pub genes: Vec<Arc<GeneLinks>>,
    /// Genes computed for this answer (the rest came from the cache).
    pub computed: usize,
    /// Genes in reach not computed yet (the work stopped at the deadline): `(name, tss)`.
    pub pending: Vec<(String, u64)>,
    /// The contig has no sequence in the build: every element's sequence was masked.
    pub sequence_masked: bool,
}

/// Errors of link computation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The build lacks something links need.
    #[error("build {build} cannot compute links: {message}")]
    Unsupported {
        /// Build name.
        build: String,
        /// What is missing.
        message: String,
    },
    /// Inputs could not be read, or the model failed.
    #[error("{0}")]
    Failed(String),
}

/// Candidates, genes and caches of one build and link model.
pub struct LinkEngine {
    build: Arc<Build>,
    settings: FeatureSettings,
    namespace: String,
    model_name: String,
    identity: ((String, String), String),
    generation: std::sync::atomic::AtomicU64,
    /// Candidate intervals per FASTA contig, sorted by start (signals read lazily), with the
    /// length of the contig's longest candidate.
    candidates: HashMap<String, (Vec<(u64, u64)>, u64)>,
    /// TSSs per FASTA contig, sorted by position.
    genes: HashMap<String, Vec<Tss>>,
    /// Distinct TSS positions per FASTA contig, sorted.
    tss_positions: HashMap<String, Vec<u64>>,
    /// The supervised score, when the build has one.
    e2g: Option<E2gModel>,
    /// The build's contact table, when it names one.
    contacts: Option<ContactTable>,
    /// Alias -> gene ids (the build's `gene_aliases`).
    aliases: HashMap<String, Vec<String>>,
    /// How far from a TSS candidates are considered: the E2G model's reach, else the link
    /// model's.
    reach: u64,
    scales: [f64; 2],
    state: Mutex<State>,
    disk: Option<Arc<DiskStore>>,
    stats: Arc<Stats>,
}

struct State {
    predictor: LinkPredictor,
    reader: Option<InputReader>,
    embeddings: LruCache<(String, u64), Option<Arc<[f32]>>>, // None: masked
    signals: LruCache<(String, u64, u64), (f64, f64)>,
    genes: LruCache<(String, u64, String), Arc<GeneLinks>>,
}

/// A gene's cache key: FASTA contig, TSS, gene id.
type GeneKey = (String, u64, String);

impl std::fmt::Debug for LinkEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkEngine")
            .field("build", &self.build.name())
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Gene batches given to the model at once.
const GENE_BATCH: usize = 16;
/// Windows given to the sequence encoder at once.
const EMBED_BATCH: usize = 16;

impl LinkEngine {
    /// Loads the build's candidates and genes.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the build has no `genes` or `candidates` file, or files that
    /// cannot be read.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        build: Arc<Build>,
        settings: FeatureSettings,
        predictor: LinkPredictor,
        e2g: Option<E2gModel>,
        identity: ((String, String), String),
        namespace: String,
        disk: Option<Arc<DiskStore>>,
        stats: Arc<Stats>,
    ) -> Result<Self, Error> {
        let model_name = format!("{}/{}", identity.0 .0, identity.0 .1);
        let unsupported = |message: String| Error::Unsupported {
            build: build.name().to_string(),
            message,
        };
        let Some((genes_path, base)) = build.config().genes.clone() else {
            return Err(unsupported(
                "it has no genes file (set `genes` in its config)".into(),
            ));
        };
        let Some(candidates_path) = build.config().candidates.clone() else {
            return Err(unsupported(
                "it has no candidates file (set `candidates` in its config)".into(),
            ));
        };
        let mut genes: HashMap<String, Vec<Tss>> = HashMap::new();
        for t in read_tss(&genes_path, base).map_err(|e| unsupported(e.to_string()))? {
            if let Some(c) = build.contigs().resolve(&t.contig) {
                genes.entry(c.name.clone()).or_default().push(t);
            }
        }
        for list in genes.values_mut() {
            list.sort_by(|a, b| (a.position0, &a.id).cmp(&(b.position0, &b.id)));
            list.dedup_by(|a, b| a.id == b.id && a.position0 == b.position0);
        }
        let tss_positions = genes
            .iter()
            .map(|(c, list)| {
                let mut p: Vec<u64> = list.iter().map(|t| t.position0).collect();
                p.dedup();
                (c.clone(), p)
            })
            .collect();
        let reach = e2g
            .as_ref()
            .map_or(settings.model.max_distance, |m| m.max_distance)
            .max(settings.model.max_distance);
        let mut candidates: HashMap<String, (Vec<(u64, u64)>, u64)> = HashMap::new();
        for i in read_intervals(&candidates_path).map_err(|e| unsupported(e.to_string()))? {
            if let Some(c) = build.contigs().resolve(&i.contig) {
                let (list, longest) = candidates.entry(c.name.clone()).or_default();
                list.push((i.start0, i.end0));
                *longest = (*longest).max(i.end0.saturating_sub(i.start0));
            }
        }
        for (list, _) in candidates.values_mut() {
            list.sort_unstable();
            list.dedup();
        }
        let contacts = match &build.config().contacts {
            None => None,
            Some(c) => Some(
                ContactTable::read(&c.path, c.resolution, c.scale, build.contigs())
                    .map_err(unsupported)?,
            ),
        };
        let aliases = match &build.config().gene_aliases {
            None => HashMap::new(),
            Some(path) => read_aliases(path).map_err(unsupported)?,
        };
        let scale = |m: Modality| build.signal(m).map_or(0.0, |s| s.scale);
        let scales = [scale(Modality::Accessibility), scale(Modality::H3k27ac)];
        let cap = |n: usize| NonZeroUsize::new(n).expect("non-zero");
        Ok(Self {
            build,
            settings,
            namespace,
            model_name,
            identity,
            generation: Default::default(),
            candidates,
            genes,
            tss_positions,
            e2g,
            contacts,
            aliases,
            reach,
            scales,
            state: Mutex::new(State {
                predictor,
                reader: None,
                embeddings: LruCache::new(cap(20_000)),
                signals: LruCache::new(cap(200_000)),
                genes: LruCache::new(cap(20_000)),
            }),
            disk,
            stats,
        })
    }

    /// The cache namespace of gene results.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Model name/version, for track files.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Feature settings.
    pub fn settings(&self) -> &FeatureSettings {
        &self.settings
    }

    /// `((name, version), sha256)` of the model.
    pub fn model_identity(&self) -> &((String, String), String) {
        &self.identity
    }

    /// The supervised model scoring the links, when the build has one.
    pub fn e2g(&self) -> Option<&E2gModel> {
        self.e2g.as_ref()
    }

    /// How far from a TSS (bp) candidates are considered.
    pub fn reach(&self) -> u64 {
        self.reach
    }

    /// Considers candidates up to `reach` bp from a TSS (at least the link model's reach); the
    /// link model still sees only its own candidates. For feature tables made before an E2G
    /// model exists (`cistrack links --reach`); gene results are cached per reach.
    pub fn with_reach(mut self, reach: u64) -> Self {
        self.reach = reach.max(self.settings.model.max_distance);
        self.namespace = format!("{}:reach{}", self.namespace, self.reach);
        self
    }

    /// Genes (TSS records) whose id is `query`, else whose name is, else whose id the build's
    /// `gene_aliases` give for it, on any contig; `(FASTA contig, TSS)`. Ids are matched first,
    /// so an Ensembl id never falls through to a symbol.
    pub fn find_genes(&self, query: &str) -> Vec<(Contig, Tss)> {
        let aliased = self.aliases.get(query).map_or(&[][..], Vec::as_slice);
        let mut by_id = Vec::new();
        let mut by_name = Vec::new();
        let mut by_alias = Vec::new();
        for (contig, list) in &self.genes {
            let Some(c) = self.build.contigs().resolve(contig) else {
                continue;
            };
            for t in list {
                if t.id == query {
                    by_id.push((c.clone(), t.clone()));
                } else if t.name == query {
                    by_name.push((c.clone(), t.clone()));
                } else if aliased.contains(&t.id) {
                    by_alias.push((c.clone(), t.clone()));
                }
            }
        }
        let mut found = [by_id, by_name, by_alias]
            .into_iter()
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        found.sort_by(|a, b| (&a.0.name, a.1.position0).cmp(&(&b.0.name, b.1.position0)));
        found
    }

    /// Every gene of the genes file on `contig` (FASTA name), by TSS.
    pub fn genes_on(&self, contig: &str) -> &[Tss] {
        self.genes.get(contig).map_or(&[], Vec::as_slice)
    }

    /// Grows whenever genes are computed (track files built before are then stale).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every gene computed so far: those on disk, else those in memory.
    pub fn computed_genes(&self) -> Vec<GeneLinks> {
        if self.disk.is_some() {
            return self.stored_genes();
        }
        match self.state.lock() {
            Ok(state) => state.genes.iter().map(|(_, g)| (**g).clone()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Genes whose TSS lies in `[start0 − max_distance, end0 + max_distance)` of `contig`.
    fn genes_near(&self, contig: &str, start0: u64, end0: u64) -> &[Tss] {
        let Some(list) = self.genes.get(contig) else {
            return &[];
        };
        let lo = start0.saturating_sub(self.reach);
        let hi = end0 + self.reach;
        let a = list.partition_point(|t| t.position0 < lo);
        let b = list.partition_point(|t| t.position0 < hi);
        &list[a..b]
    }

    /// Number of genes a view of `[start0, end0)` involves (before any computation).
    pub fn genes_in_reach(&self, contig: &str, start0: u64, end0: u64) -> usize {
        self.genes_near(contig, start0, end0).len()
    }

    /// Genes and links for a view: blocking (reads inputs, runs the model); call it off the
    /// async threads. A gene is kept when its TSS or one of its elements lies in the view, or,
    /// with `arcs_from`, when one of its links scoring at least that spans the view (an arc
    /// passing over it). `keep` is polled between gene batches; when it returns false the work
    /// stops (what is done stays cached).
    ///
    /// # Errors
    ///
    /// [`Error::Failed`] when inputs cannot be read or the model fails.
    pub fn view(
        &self,
        contig: &Contig,
        start0: u64,
        end0: u64,
        arcs_from: Option<f32>,
        keep: impl Fn() -> bool,
    ) -> Result<LinksView, Error> {
        let near: Vec<Tss> = self.genes_near(&contig.name, start0, end0).to_vec();
        let mut view = self.genes(contig, &near, keep)?;
        view.genes.retain(|g| {
            (start0..end0).contains(&g.tss)
                || g.links.iter().any(|l| {
                    (l.element_start < end0 && l.element_end > start0)
                        || arcs_from.is_some_and(|m| {
                            l.score >= m
                                && l.element_start.min(g.tss) < end0
                                && l.element_end.max(g.tss + 1) > start0
                        })
                })
        });
        Ok(view)
    }

    /// The links of the genes `near` (TSS records of `contig`), whole, in the same order:
    /// from the cache, or computed. `keep` is polled between gene batches; when it returns
    /// false the work stops and the rest are `pending`.
    ///
    /// # Errors
    ///
    /// [`Error::Failed`] when inputs cannot be read or the model fails.
    pub fn genes(
        &self,
        contig: &Contig,
        near: &[Tss],
        keep: impl Fn() -> bool,
    ) -> Result<LinksView, Error> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::Failed("link model state poisoned by an earlier failure".into()))?;
        let mut results: Vec<Option<Arc<GeneLinks>>> = Vec::with_capacity(near.len());
        let mut missing = Vec::new();
        for (i, t) in near.iter().enumerate() {
            let key: GeneKey = (contig.name.clone(), t.position0, t.id.clone());
            let found = state.genes.get(&key).cloned().or_else(|| {
                let disk = self.disk.as_ref()?;
                let g = disk
                    .get_raw(&self.disk_key(&key), &self.stats)
                    .ok()
                    .flatten()
                    .and_then(|bytes| decode_gene(&bytes, &contig.name))?;
                let g = Arc::new(g);
                state.genes.put(key.clone(), g.clone());
                Some(g)
            });
            if found.is_none() {
                missing.push(i);
            }
            results.push(found);
        }
        let mut computed = 0;
        let mut pending = Vec::new();
        for chunk in missing.chunks(GENE_BATCH) {
            if !pending.is_empty() || !keep() {
                pending.extend(
                    chunk
                        .iter()
                        .map(|&i| (near[i].name.clone(), near[i].position0)),
                );
                continue;
            }
            let prepared: Vec<Prepared> = chunk
                .iter()
                .map(|&i| self.prepare(&mut state, contig, &near[i]))
                .collect::<Result<_, _>>()?;
            let genes = self.run(&mut state, contig, prepared)?;
            for (&i, g) in chunk.iter().zip(genes) {
                let key: GeneKey = (contig.name.clone(), g.tss, near[i].id.clone());
                let g = Arc::new(g);
                if let Some(disk) = &self.disk {
                    disk.put_raw(self.disk_key(&key), encode_gene(&g));
                }
                state.genes.put(key, g.clone());
                results[i] = Some(g);
                computed += 1;
                self.generation
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(LinksView {
            genes: results.into_iter().flatten().collect(),
            computed,
            pending,
            sequence_masked: !self.build.contigs().has_sequence(&contig.name),
        })
    }

    fn disk_key(&self, key: &GeneKey) -> Vec<u8> {
        format!("{}\t{}\t{}\t{}", self.namespace, key.0, key.1, key.2).into_bytes()
    }

    fn reader<'s>(&self, state: &'s mut State) -> Result<&'s mut InputReader, Error> {
        if state.reader.is_none() {
            state.reader = Some(
                self.build
                    .reader()
                    .map_err(|e| Error::Failed(format!("{e:#}")))?,
            );
        }
        Ok(state.reader.as_mut().expect("set above"))
    }

    /// One element's inputs: the zero-filled means of accessibility and H3K27ac over
    /// `[start0, end0)`, each divided by its track's mean, and the sequence input of the window
    /// centred on `centre` (its cached embedding, its one-hot, or masked when too much of it is
    /// not A/C/G/T). Whatever is not cached is read in one span.
    fn element(
        &self,
        state: &mut State,
        contig: &Contig,
        (start0, end0): (u64, u64),
        centre: u64,
    ) -> Result<((f64, f64), Sequence), Error> {
        let signal_key = (contig.name.clone(), start0, end0);
        let sequence_key = (contig.name.clone(), centre);
        let signals = state.signals.get(&signal_key).copied();
        let embedded = state.embeddings.get(&sequence_key).cloned();
        if let (Some(v), Some(e)) = (signals, &embedded) {
            return Ok((v, e.clone().map_or(Sequence::Masked, Sequence::Embedded)));
        }
        let length = self.settings.sequence_length;
        let window0 = centre as i64 - (length / 2) as i64;
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        if signals.is_none() {
            (lo, hi) = (start0 as i64, end0 as i64);
        }
        if embedded.is_none() {
            (lo, hi) = (lo.min(window0), hi.max(window0 + length as i64));
        }
        let span = self.read_span(state, contig, lo, hi)?;
        let signals = signals.unwrap_or_else(|| {
            let part = (start0 as i64 - lo) as usize..(end0 as i64 - lo) as usize;
            let v = self.signal_means(&span, part);
            state.signals.put(signal_key, v);
            v
        });
        let sequence = match embedded {
            Some(e) => e.map_or(Sequence::Masked, Sequence::Embedded),
            None => {
                let at = (window0 - lo) as usize;
                let bases = &span.sequence[at..at + length];
                let other = bases
                    .iter()
                    .filter(|b| !matches!(b.to_ascii_uppercase(), b'A' | b'C' | b'G' | b'T'))
                    .count();
                if other as f64 > self.settings.max_n_fraction * length as f64 {
                    state.embeddings.put(sequence_key, None);
                    Sequence::Masked
                } else {
                    let mut one_hot = vec![0f32; 4 * length];
                    one_hot_into(bases, &mut one_hot);
                    Sequence::OneHot(one_hot.into()) // embedded in `run`, batched
                }
            }
        };
        Ok((signals, sequence))
    }

    /// `[lo, hi)` of `contig` through the state's reader; a failed read drops the reader, so
    /// the next one opens the files again (a file replaced or repaired meanwhile is read).
    fn read_span(
        &self,
        state: &mut State,
        contig: &Contig,
        lo: i64,
        hi: i64,
    ) -> Result<Span, Error> {
        let mut span = Span::default();
        let reader = self.reader(state)?;
        if let Err(e) = reader.read_span(contig, lo, hi, &mut span) {
            state.reader = None;
            return Err(Error::Failed(format!("{e:#}")));
        }
        Ok(span)
    }

    /// Accessibility and H3K27ac over `part` of `span`: zero-filled means, each divided by its
    /// track's mean (0 for a missing track).
    fn signal_means(&self, span: &Span, part: std::ops::Range<usize>) -> (f64, f64) {
        let mean = |values: &[f32], scale: f64| {
            if scale > 0.0 {
                values.iter().map(|&v| v.max(0.0) as f64).sum::<f64>() / values.len() as f64 / scale
            } else {
                0.0
            }
        };
        (
            mean(&span.accessibility[part.clone()], self.scales[0]),
            mean(&span.h3k27ac[part], self.scales[1]),
        )
    }

    /// An element's normalised signals only (for candidates the link model does not see).
    fn signals(
        &self,
        state: &mut State,
        contig: &Contig,
        (start0, end0): (u64, u64),
    ) -> Result<(f64, f64), Error> {
        let key = (contig.name.clone(), start0, end0);
        if let Some(v) = state.signals.get(&key) {
            return Ok(*v);
        }
        let span = self.read_span(state, contig, start0 as i64, end0 as i64)?;
        let v = self.signal_means(&span, 0..(end0 - start0) as usize);
        state.signals.put(key, v);
        Ok(v)
    }

    fn prepare(&self, state: &mut State, contig: &Contig, tss: &Tss) -> Result<Prepared, Error> {
        let s = &self.settings.model;
        let t = tss.position0;
        let ((pa, ph), promoter_sequence) = self.element(
            state,
            contig,
            (t.saturating_sub(s.promoter_window), t + s.promoter_window),
            t,
        )?;
        let promoter_features = ElementFeatures::compute(0, 1.0, pa, ph).to_array();
        let promoter_activity = (pa.max(0.0) * ph.max(0.0)).sqrt();
        let (list, longest) = self
            .candidates
            .get(&contig.name)
            .map_or((&[][..], 0), |(list, longest)| (list.as_slice(), *longest));
        // A midpoint within the reach of the TSS needs a start within the reach plus the
        // longest candidate before it, and no later than the reach after it.
        let reach = self.reach;
        let lo = t.saturating_sub(reach + longest);
        let from = list.partition_point(|&(start, _)| start < lo);
        let mut chosen: Vec<(u64, u64, u64)> = Vec::new(); // (distance, start, end)
        for &(start, end) in &list[from..] {
            if start > t + reach {
                break;
            }
            let mid = (start + end) / 2;
            let distance = mid.abs_diff(t);
            let overlaps =
                start < t + s.promoter_exclusion && end > t.saturating_sub(s.promoter_exclusion);
            if distance <= reach && !overlaps {
                chosen.push((distance, start, end));
            }
        }
        chosen.sort_unstable();
        if self.e2g.is_none() && reach == s.max_distance {
            chosen.truncate(s.max_candidates); // the link model's inputs only
        }
        let positions = self
            .tss_positions
            .get(&contig.name)
            .map_or(&[][..], Vec::as_slice);
        let mut candidates = Vec::with_capacity(chosen.len());
        for (rank, (distance, start, end)) in chosen.into_iter().enumerate() {
            let attended = rank < s.max_candidates && distance <= s.max_distance;
            let mid = (start + end) / 2;
            let ((a, h), sequence) = if attended {
                self.element(state, contig, (start, end), mid)?
            } else {
                (self.signals(state, contig, (start, end))?, Sequence::Masked)
            };
            let (contact, contact_source) = match self
                .contacts
                .as_ref()
                .and_then(|table| table.get(&contig.name, mid, t))
            {
                Some(v) => (v, ContactSource::Hic),
                None => (
                    powerlaw_contact(distance, s.gamma, s.min_distance),
                    ContactSource::Powerlaw,
                ),
            };
            let features = ElementFeatures::compute(distance, contact, a, h).to_array();
            // TSSs strictly between the element's midpoint and this TSS, this one excluded
            let between = e2g::count_strictly_between(positions, mid.min(t), mid.max(t));
            candidates.push(PreparedCandidate {
                cand: Candidate {
                    start0: start,
                    end0: end,
                    accessibility: a,
                    h3k27ac: h,
                },
                distance,
                contact,
                contact_source,
                features,
                sequence,
                attended,
                tss_between: between as u32,
            });
        }
        Ok(Prepared {
            tss: tss.clone(),
            promoter_features,
            promoter_activity,
            promoter_sequence,
            candidates,
        })
    }

    /// Embeds the one-hot windows of `prepared` (those not embedded yet), runs the gene graph.
    fn run(
        &self,
        state: &mut State,
        contig: &Contig,
        prepared: Vec<Prepared>,
    ) -> Result<Vec<GeneLinks>, Error> {
        let dim = state.predictor.embedding_dim();
        let length = self.settings.sequence_length;
        // Windows (by centre) that still need the encoder.
        let mut pending: Vec<(u64, Arc<[f32]>)> = Vec::new();
        let mut centres = |centre: u64, seq: &Sequence| {
            if let Sequence::OneHot(s) = seq {
                if !pending.iter().any(|(c, _)| *c == centre) {
                    pending.push((centre, s.clone()));
                }
            }
        };
        for p in &prepared {
            centres(p.tss.position0, &p.promoter_sequence);
            for c in &p.candidates {
                centres((c.cand.start0 + c.cand.end0) / 2, &c.sequence);
            }
        }
        let mut embedded: HashMap<u64, Arc<[f32]>> = HashMap::new();
        for chunk in pending.chunks(EMBED_BATCH) {
            let mut one_hot = Vec::with_capacity(chunk.len() * 4 * length);
            for (_, s) in chunk {
                one_hot.extend_from_slice(s);
            }
            let view = ndarray::ArrayView3::from_shape((chunk.len(), 4, length), &one_hot)
                .map_err(|e| Error::Failed(e.to_string()))?;
            let out = state
                .predictor
                .encode_elements(view)
                .map_err(|e| Error::Failed(e.to_string()))?;
            for (i, (centre, _)) in chunk.iter().enumerate() {
                let e: Arc<[f32]> = out.row(i).to_vec().into();
                state
                    .embeddings
                    .put((contig.name.clone(), *centre), Some(e.clone()));
                embedded.insert(*centre, e);
            }
        }
        let embedding = |centre: u64, seq: &Sequence| -> Option<Arc<[f32]>> {
            match seq {
                Sequence::Masked => None,
                Sequence::Embedded(e) => Some(e.clone()),
                Sequence::OneHot(_) => embedded.get(&centre).cloned(),
            }
        };
        // The link model sees the attended candidates (the nearest within its reach), which
        // come first in each gene's list.
        let attended = |p: &Prepared| p.candidates.iter().take_while(|c| c.attended).count();
        let c = prepared.iter().map(attended).max().unwrap_or(0).max(1);
        let mut batch = GeneBatch::zeros(prepared.len(), c, dim);
        for (i, p) in prepared.iter().enumerate() {
            if let Some(e) = embedding(p.tss.position0, &p.promoter_sequence) {
                batch.promoter_embedding[i * dim..(i + 1) * dim].copy_from_slice(&e);
                batch.promoter_sequence_mask[i] = 1.0;
            }
            batch.promoter_features[i * 5..(i + 1) * 5].copy_from_slice(&p.promoter_features);
            for (j, cand) in p.candidates.iter().take(attended(p)).enumerate() {
                let slot = i * c + j;
                let centre = (cand.cand.start0 + cand.cand.end0) / 2;
                if let Some(e) = embedding(centre, &cand.sequence) {
                    batch.candidate_embedding[slot * dim..(slot + 1) * dim].copy_from_slice(&e);
                    batch.candidate_sequence_mask[slot] = 1.0;
                }
                batch.candidate_features[slot * 5..(slot + 1) * 5].copy_from_slice(&cand.features);
                batch.candidate_mask[slot] = 1.0;
            }
        }
        let (expression, attention) = state
            .predictor
            .predict_genes(&batch)
            .map_err(|e| Error::Failed(e.to_string()))?;
        Ok(prepared
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let links = p
                    .candidates
                    .iter()
                    .enumerate()
                    .map(|(j, cand)| {
                        let activity = (cand.cand.accessibility * cand.cand.h3k27ac).sqrt();
                        let attention = if cand.attended {
                            attention[[i, j]]
                        } else {
                            0.0
                        };
                        Link {
                            element_start: cand.cand.start0,
                            element_end: cand.cand.end0,
                            distance: cand.distance,
                            score: attention,
                            attention,
                            attended: cand.attended,
                            abc_score: 0.0,
                            activity: activity as f32,
                            contact: cand.contact as f32,
                            contact_source: cand.contact_source,
                            tss_between: cand.tss_between,
                        }
                    })
                    .collect();
                let mut gene = GeneLinks {
                    id: p.tss.id.clone(),
                    name: p.tss.name.clone(),
                    contig: contig.name.clone(),
                    tss: p.tss.position0,
                    strand: p.tss.strand,
                    expression: expression[i],
                    promoter_activity: p.promoter_activity as f32,
                    candidates: p.candidates.len(),
                    links,
                };
                let abc = e2g::abc_scores(&gene);
                for (l, abc) in gene.links.iter_mut().zip(abc) {
                    l.abc_score = abc as f32;
                }
                if let Some(model) = &self.e2g {
                    model.score(&mut gene);
                }
                gene
            })
            .collect())
    }

    /// Every gene result stored on disk under this engine's namespace.
    pub fn stored_genes(&self) -> Vec<GeneLinks> {
        let Some(disk) = &self.disk else {
            return Vec::new();
        };
        let prefix = format!("{}\t", self.namespace);
        disk.scan_raw(&prefix, &self.stats)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(key, value)| {
                let key = String::from_utf8_lossy(&key).into_owned();
                let contig = key.split('\t').nth(1)?.to_string();
                decode_gene(&value, &contig)
            })
            .collect()
    }
}

/// Serialises a gene result (JSON: compact, versioned by the namespace's model sha256s).
fn encode_gene(g: &GeneLinks) -> Vec<u8> {
    let links: Vec<_> = g
        .links
        .iter()
        .map(|l| {
            serde_json::json!([
                l.element_start,
                l.element_end,
                l.distance,
                l.score,
                l.abc_score,
                l.activity,
                l.contact,
                l.attention,
                l.attended,
                l.contact_source.as_str(),
                l.tss_between,
            ])
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "id": g.id, "name": g.name, "tss": g.tss, "strand": g.strand.to_string(),
        "expression": g.expression, "promoter_activity": g.promoter_activity,
        "candidates": g.candidates, "links": links,
    }))
    .expect("JSON of plain values")
}

fn decode_gene(bytes: &[u8], contig: &str) -> Option<GeneLinks> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let links = v["links"]
        .as_array()?
        .iter()
        .map(|l| {
            let l = l.as_array()?;
            let u = |i: usize| l.get(i)?.as_u64();
            let f = |i: usize| l.get(i)?.as_f64().map(|x| x as f32);
            Some(Link {
                element_start: u(0)?,
                element_end: u(1)?,
                distance: u(2)?,
                score: f(3)?,
                abc_score: f(4)?,
                activity: f(5)?,
                contact: f(6)?,
                attention: f(7)?,
                attended: l.get(8)?.as_bool()?,
                contact_source: match l.get(9)?.as_str()? {
                    "hic" => ContactSource::Hic,
                    "powerlaw" => ContactSource::Powerlaw,
                    _ => return None,
                },
                tss_between: u32::try_from(u(10)?).ok()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(GeneLinks {
        id: v["id"].as_str()?.to_string(),
        name: v["name"].as_str()?.to_string(),
        contig: contig.to_string(),
        tss: v["tss"].as_u64()?,
        strand: v["strand"].as_str()?.chars().next()?,
        expression: v["expression"].as_f64()? as f32,
        promoter_activity: v["promoter_activity"].as_f64()? as f32,
        candidates: v["candidates"].as_u64()? as usize,
        links,
    })
}

/// Opens the build's link model (role [`LINK_ROLE`]): checks it, loads both graphs, and
/// reads the build's genes and candidates; with `use_e2g`, also the build's E2G model (role
/// [`E2G_ROLE`]) when its config names one (without it, links carry features and attention,
/// and `score` is the attention).
///
/// # Errors
///
/// Model errors (missing files, checksum, contract) and [`Error::Unsupported`] when the build
/// lacks genes or candidates.
pub fn open(
    build: Arc<Build>,
    disk: Option<Arc<DiskStore>>,
    stats: Arc<Stats>,
    fingerprint: &str,
    device: crate::model::Device,
    threads: usize,
    use_e2g: bool,
) -> crate::Result<LinkEngine> {
    let dir = build.model_dir(Some(LINK_ROLE))?;
    let e2g = if use_e2g && build.config().models.contains_key(E2G_ROLE) {
        Some(E2gModel::load(&build.model_dir(Some(E2G_ROLE))?)?)
    } else {
        None
    };
    let spec = LinkSpec::load(&dir)?;
    let predictor = LinkPredictor::new(
        &spec,
        SessionOptions {
            device,
            intra_threads: threads,
        },
    )?;
    let max_n_fraction = spec
        .json
        .pointer("/sequence/max_n_fraction")
        .or_else(|| spec.json.pointer("/features/max_n_fraction"))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(DEFAULT_MAX_N_FRACTION);
    let sha = &spec.predictor.sha256;
    let short = |s: &str| s[..8.min(s.len())].to_string();
    // what the links depend on beyond the signals and the FASTA: genes (and how they are
    // read), candidates, contig sizes and the contact table
    let link_inputs = {
        use sha2::Digest;
        let c = build.config();
        let mut h = sha2::Sha256::new();
        h.update(fingerprint.as_bytes());
        for path in c
            .genes
            .iter()
            .map(|(p, _)| p)
            .chain(c.candidates.iter())
            .chain(c.chrom_sizes.iter())
            .chain(c.contacts.iter().map(|t| &t.path))
        {
            crate::pipeline::engine::add_file_identity(&mut h, path);
        }
        h.update(format!("{:?}{:?}", c.genes.as_ref().map(|g| g.1), c.contacts).as_bytes());
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let e2g_id = e2g.as_ref().map_or("attention".to_string(), |m| {
        format!("{}:{}", m.id(), short(&m.sha256))
    });
    let namespace = format!(
        "{}:{}:{}{}:{}:{e2g_id}:links2",
        build.name(),
        spec.id(),
        short(&spec.encoder.sha256),
        short(sha),
        short(&link_inputs)
    );
    let settings = FeatureSettings {
        model: spec.features.clone(),
        sequence_length: spec.sequence_length,
        max_n_fraction,
    };
    Ok(LinkEngine::new(
        build,
        settings,
        predictor,
        e2g,
        ((spec.name.clone(), spec.version.clone()), sha.clone()),
        namespace,
        disk,
        stats,
    )?)
}

/// Sequence windows with more non-A/C/G/T bases than this fraction are masked when the model
/// does not say (the training pipeline's rule).
pub const DEFAULT_MAX_N_FRACTION: f64 = 0.01;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_gene_round_trip() {
        let g = GeneLinks {
            id: "G".into(),
            name: "G".into(),
            contig: "chr1".into(),
            tss: 100,
            strand: '-',
            expression: 1.5,
            promoter_activity: 2.0,
            candidates: 1,
            links: vec![Link {
                element_start: 10,
                element_end: 20,
                distance: 85,
                score: 0.75,
                attention: 1.0,
                attended: true,
                abc_score: 1.0,
                activity: 0.25,
                contact: 1.0,
                contact_source: ContactSource::Hic,
                tss_between: 3,
            }],
        };
        assert_eq!(decode_gene(&encode_gene(&g), "chr1"), Some(g));
        assert_eq!(decode_gene(b"{}", "chr1"), None);
    }
}
