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
use std::sync::{Arc, Mutex};

use crate::error::SharedCause;
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

mod allele;
mod codec;
mod inputs;
mod queue;
mod run;

pub use allele::{AlleleEdit, AlleleLink};
use queue::Shared;

use super::link_inputs::{read_aliases, ContactTable};
use super::links_output::{ContactSource, GeneLinks, Link};
use crate::pipeline::cache::Cache;

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
    #[error("links failed")]
    Failed(#[source] SharedCause),
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
    /// Only the E2G score is wanted: the link model is not run (see [`LinkEngine::scores_only`]).
    scores_only: bool,
    state: Mutex<State>,
    shared: Mutex<Shared>,
    /// Namespace of element embeddings and signals (records of the cache, memory only): the
    /// build's inputs and the link model's encoder, not the E2G model or the reach.
    elements: String,
    /// The build's cache: gene results are its records under [`LinkEngine::namespace`].
    cache: Arc<Cache>,
}

/// What computing genes needs: the model and the readers. One requester at a time holds it
/// (the *combiner*, see [`LinkEngine::genes`]). Element embeddings and signals, like gene
/// results, are records of the build's [`Cache`] (memory only, under `elements`).
struct State {
    predictor: LinkPredictor,
    reader: Option<InputReader>,
}

/// An element's cached sequence input: its embedding, or `None` when masked.
type Embedding = Option<Arc<[f32]>>;

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
        (namespace, elements): (String, String),
        cache: Arc<Cache>,
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
        for t in read_tss(&genes_path, base).map_err(|e| unsupported(crate::error::chain(&e)))? {
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
        for i in
            read_intervals(&candidates_path).map_err(|e| unsupported(crate::error::chain(&e)))?
        {
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
        Ok(Self {
            build,
            settings,
            namespace,
            elements,
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
            scores_only: false,
            state: Mutex::new(State {
                predictor,
                reader: None,
            }),
            shared: Mutex::new(Shared::default()),
            cache,
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

    /// For callers that want only each link's E2G score (`annotate`'s linked gene): the link
    /// model is not run when the build's E2G model does not use its outputs, so links carry no
    /// attention (0) and genes no expression (0); results are cached under their own namespace.
    /// The engine is unchanged when there is no E2G model or it uses the link model's outputs
    /// (see [`LinkEngine::is_scores_only`]).
    pub fn scores_only(mut self) -> Self {
        if self.e2g.as_ref().is_some_and(|m| !m.uses_link_model()) {
            self.scores_only = true;
            self.namespace = format!("{}:scores-only", self.namespace);
        }
        self
    }

    /// Whether the link model is skipped ([`LinkEngine::scores_only`]).
    pub fn is_scores_only(&self) -> bool {
        self.scores_only
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
        if self.cache.disk().is_some() {
            return self.stored_genes();
        }
        self.cache
            .memory_records::<GeneLinks>(&self.namespace)
            .into_iter()
            .map(|g| (*g).clone())
            .collect()
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
    cache: Arc<Cache>,
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
    let elements = format!(
        "{}:{}:{}:{}:elements",
        build.name(),
        spec.id(),
        short(&spec.encoder.sha256),
        short(&link_inputs)
    );
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
        (namespace, elements),
        cache,
    )?)
}

/// Sequence windows with more non-A/C/G/T bases than this fraction are masked when the model
/// does not say (the training pipeline's rule).
pub const DEFAULT_MAX_N_FRACTION: f64 = 0.01;
