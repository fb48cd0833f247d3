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
use crate::model::encode::one_hot_into;
use crate::model::link::{
    powerlaw_contact, ElementFeatures, FeatureSpec, GeneBatch, LinkPredictor, LinkSpec,
};
use crate::model::onnx::SessionOptions;
use crate::model::Modality;

use super::cache::{DiskStore, Stats};
use super::links_output::{GeneLinks, Link};

/// The model role of a build's link model (`models.links` in its config).
pub const LINK_ROLE: &str = "links";

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

/// One gene's prepared inputs.
struct Prepared {
    tss: Tss,
    promoter_features: [f32; 5],
    promoter_sequence: Sequence,
    candidates: Vec<(Candidate, u64, f64, [f32; 5], Sequence)>,
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
    pub fn new(
        build: Arc<Build>,
        settings: FeatureSettings,
        predictor: LinkPredictor,
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
            list.sort_by(|a, b| (a.position0, &a.name).cmp(&(b.position0, &b.name)));
            list.dedup_by(|a, b| a.name == b.name && a.position0 == b.position0);
        }
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
        let lo = start0.saturating_sub(self.settings.model.max_distance);
        let hi = end0 + self.settings.model.max_distance;
        let a = list.partition_point(|t| t.position0 < lo);
        let b = list.partition_point(|t| t.position0 < hi);
        &list[a..b]
    }

    /// Number of genes a view of `[start0, end0)` involves (before any computation).
    pub fn genes_in_reach(&self, contig: &str, start0: u64, end0: u64) -> usize {
        self.genes_near(contig, start0, end0).len()
    }

    /// Genes and links for a view: blocking (reads inputs, runs the model); call it off the
    /// async threads. `keep` is polled between gene batches; when it returns false the work
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
        keep: impl Fn() -> bool,
    ) -> Result<LinksView, Error> {
        let near: Vec<Tss> = self.genes_near(&contig.name, start0, end0).to_vec();
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::Failed("link model state poisoned by an earlier failure".into()))?;
        let mut results: Vec<Option<Arc<GeneLinks>>> = Vec::with_capacity(near.len());
        let mut missing = Vec::new();
        for (i, t) in near.iter().enumerate() {
            let key = (contig.name.clone(), t.position0, t.name.clone());
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
                let key = (contig.name.clone(), g.tss, near[i].name.clone());
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
        let genes = results
            .into_iter()
            .flatten()
            .filter(|g| {
                (start0..end0).contains(&g.tss)
                    || g.links
                        .iter()
                        .any(|l| l.element_start < end0 && l.element_end > start0)
            })
            .collect();
        Ok(LinksView {
            genes,
            computed,
            pending,
        })
    }

    fn disk_key(&self, key: &(String, u64, String)) -> Vec<u8> {
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
        let mut span = Span::default();
        let reader = self.reader(state)?;
        if let Err(e) = reader.read_span(contig, lo, hi, &mut span) {
            state.reader = None;
            return Err(Error::Failed(format!("{e:#}")));
        }
        let signals = signals.unwrap_or_else(|| {
            let part = (start0 as i64 - lo) as usize..(end0 as i64 - lo) as usize;
            let mean = |values: &[f32], scale: f64| {
                if scale > 0.0 {
                    values.iter().map(|&v| v.max(0.0) as f64).sum::<f64>()
                        / values.len() as f64
                        / scale
                } else {
                    0.0
                }
            };
            let v = (
                mean(&span.accessibility[part.clone()], self.scales[0]),
                mean(&span.h3k27ac[part], self.scales[1]),
            );
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
        let (list, longest) = self
            .candidates
            .get(&contig.name)
            .map_or((&[][..], 0), |(list, longest)| (list.as_slice(), *longest));
        // A midpoint within max_distance of the TSS needs a start within max_distance plus the
        // longest candidate before it, and no later than max_distance after it.
        let lo = t.saturating_sub(s.max_distance + longest);
        let from = list.partition_point(|&(start, _)| start < lo);
        let mut chosen: Vec<(u64, u64, u64)> = Vec::new(); // (distance, start, end)
        for &(start, end) in &list[from..] {
            if start > t + s.max_distance {
                break;
            }
            let mid = (start + end) / 2;
            let distance = mid.abs_diff(t);
            let overlaps =
                start < t + s.promoter_exclusion && end > t.saturating_sub(s.promoter_exclusion);
            if distance <= s.max_distance && !overlaps {
                chosen.push((distance, start, end));
            }
        }
        chosen.sort_unstable();
        chosen.truncate(s.max_candidates);
        let mut candidates = Vec::with_capacity(chosen.len());
        for (distance, start, end) in chosen {
            let ((a, h), sequence) =
                self.element(state, contig, (start, end), (start + end) / 2)?;
            let contact = powerlaw_contact(distance, s.gamma, s.min_distance);
            let features = ElementFeatures::compute(distance, contact, a, h).to_array();
            candidates.push((
                Candidate {
                    start0: start,
                    end0: end,
                    accessibility: a,
                    h3k27ac: h,
                },
                distance,
                contact,
                features,
                sequence,
            ));
        }
        Ok(Prepared {
            tss: tss.clone(),
            promoter_features,
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
            for (c, _, _, _, seq) in &p.candidates {
                centres((c.start0 + c.end0) / 2, seq);
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
        let c = prepared
            .iter()
            .map(|p| p.candidates.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut batch = GeneBatch::zeros(prepared.len(), c, dim);
        for (i, p) in prepared.iter().enumerate() {
            if let Some(e) = embedding(p.tss.position0, &p.promoter_sequence) {
                batch.promoter_embedding[i * dim..(i + 1) * dim].copy_from_slice(&e);
                batch.promoter_sequence_mask[i] = 1.0;
            }
            batch.promoter_features[i * 5..(i + 1) * 5].copy_from_slice(&p.promoter_features);
            for (j, (cand, _, _, features, seq)) in p.candidates.iter().enumerate() {
                let slot = i * c + j;
                if let Some(e) = embedding((cand.start0 + cand.end0) / 2, seq) {
                    batch.candidate_embedding[slot * dim..(slot + 1) * dim].copy_from_slice(&e);
                    batch.candidate_sequence_mask[slot] = 1.0;
                }
                batch.candidate_features[slot * 5..(slot + 1) * 5].copy_from_slice(features);
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
                let abc: Vec<f64> = p
                    .candidates
                    .iter()
                    .map(|(cand, _, contact, _, _)| {
                        (cand.accessibility * cand.h3k27ac).sqrt() * contact
                    })
                    .collect();
                let abc_total: f64 = abc.iter().sum();
                let links = p
                    .candidates
                    .iter()
                    .enumerate()
                    .map(|(j, (cand, distance, contact, _, _))| Link {
                        element_start: cand.start0,
                        element_end: cand.end0,
                        distance: *distance,
                        score: attention[[i, j]],
                        abc_score: if abc_total > 0.0 {
                            (abc[j] / abc_total) as f32
                        } else {
                            0.0
                        },
                        activity: (cand.accessibility * cand.h3k27ac).sqrt() as f32,
                        contact: *contact as f32,
                    })
                    .collect();
                GeneLinks {
                    id: p.tss.name.clone(),
                    name: p.tss.name.clone(),
                    contig: contig.name.clone(),
                    tss: p.tss.position0,
                    strand: p.tss.strand,
                    expression: expression[i],
                    candidates: p.candidates.len(),
                    links,
                }
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

/// Serialises a gene result (JSON: compact, versioned by the namespace's model sha256).
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
                l.contact
            ])
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "id": g.id, "name": g.name, "tss": g.tss, "strand": g.strand.to_string(),
        "expression": g.expression, "candidates": g.candidates, "links": links,
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
        candidates: v["candidates"].as_u64()? as usize,
        links,
    })
}

/// Opens the build's link model (role [`LINK_ROLE`]): checks it, loads both graphs, and
/// reads the build's genes and candidates.
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
) -> crate::Result<LinkEngine> {
    let dir = build.model_dir(Some(LINK_ROLE))?;
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
    let namespace = format!(
        "{}:{}:{}{}:{}:links",
        build.name(),
        spec.id(),
        short(&spec.encoder.sha256),
        short(sha),
        short(fingerprint)
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
            candidates: 1,
            links: vec![Link {
                element_start: 10,
                element_end: 20,
                distance: 85,
                score: 1.0,
                abc_score: 1.0,
                activity: 0.25,
                contact: 1.0,
            }],
        };
        assert_eq!(decode_gene(&encode_gene(&g), "chr1"), Some(g));
        assert_eq!(decode_gene(b"{}", "chr1"), None);
    }
}
