//! `GET /v1/builds/{build}/links?ref=&start=&end=`: enhancer–gene links (needs a link model).
//!
//! Answer fields are declared in sorted order: serde_json (without `preserve_order`) wrote the
//! `json!` objects these replaced with sorted keys, and the bytes stay the same.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::track::links::E2G_ROLE;
use crate::track::links_output::{GeneLinks, LinkRecord};

use super::super::error::ApiError;
use super::super::query::{self, LinksQuery, MinScore};
use super::super::router::{json_ok, RouteResult};
use super::super::state::State;
use super::{round4, ModelJson, View};

/// The answer. `elapsed_ms` and `genes_computed` are absent for a view wholly past the contig
/// end; `e2g` and `threshold` are `null` without an E2G model.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    build: &'a str,
    complete: bool,
    e2g: Option<E2gJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_ms: Option<u64>,
    end: u64,
    genes: Vec<GeneJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    genes_computed: Option<usize>,
    links: Vec<LinkJson<'a>>,
    /// Links of the listed genes that `min_score` left out.
    links_hidden: usize,
    min_score: f64,
    model: ModelJson<'a>,
    pending: Vec<PendingGene>,
    /// `ref` as the client gave it.
    #[serde(rename = "ref")]
    contig: &'a str,
    /// `e2g` (calibrated) or `attention`.
    score_kind: &'static str,
    sequence_masked: bool,
    start: u64,
    threshold: Option<f64>,
}

/// The E2G model scoring the links.
#[derive(Debug, Serialize)]
struct E2gJson<'a> {
    name: &'a str,
    sha256: &'a str,
    threshold: f64,
    threshold_recall: f64,
    version: &'a str,
}

/// A gene in reach not computed before the deadline.
#[derive(Debug, Serialize)]
struct PendingGene {
    name: String,
    tss: u64,
}

/// A gene, answered whole.
#[derive(Debug, Serialize)]
struct GeneJson<'a> {
    candidates: usize,
    expression: f64,
    id: &'a str,
    /// How many links the gene has (all listed unless `min_score` hides some).
    links: usize,
    name: &'a str,
    partial: bool,
    strand: String,
    tss: u64,
}

impl<'a> From<&'a GeneLinks> for GeneJson<'a> {
    fn from(g: &'a GeneLinks) -> Self {
        Self {
            id: &g.id,
            name: &g.name,
            tss: g.tss,
            strand: g.strand.to_string(),
            expression: round4(g.expression),
            candidates: g.candidates,
            links: g.links.len(),
            partial: false,
        }
    }
}

/// One link, with its gene's fields repeated.
#[derive(Debug, Serialize)]
struct LinkJson<'a> {
    abc_score: f64,
    activity: f64,
    attention: f64,
    contact: f64,
    contact_source: &'static str,
    distance: u64,
    element_end: u64,
    element_start: u64,
    end: u64,
    gene_id: &'a str,
    gene_name: &'a str,
    score: f64,
    start: u64,
    strand: String,
    tss: u64,
}

impl<'a> From<LinkRecord<'a>> for LinkJson<'a> {
    fn from(r: LinkRecord<'a>) -> Self {
        Self {
            start: r.start,
            end: r.end,
            gene_id: r.gene_id,
            gene_name: r.gene_name,
            tss: r.tss,
            strand: r.strand.to_string(),
            element_start: r.link.element_start,
            element_end: r.link.element_end,
            distance: r.link.distance,
            score: round4(r.link.score),
            attention: round4(r.link.attention),
            abc_score: round4(r.link.abc_score),
            activity: round4(r.link.activity),
            contact: round4(r.link.contact),
            contact_source: r.link.contact_source.as_str(),
        }
    }
}

/// Sets a flag when dropped: the request went away (or was answered).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Answers `/links`.
pub(in crate::server) async fn answer(state: &Arc<State>, build: &str, query: &str) -> RouteResult {
    let b = state.build(build)?;
    let q: LinksQuery = query::parse(query)?;
    let engine = b.links()?;
    let threshold = engine.e2g().map(|m| m.threshold);
    let min_score = match q.min_score {
        None => 0.0,
        Some(MinScore::Threshold) => threshold.ok_or_else(|| {
            ApiError::bad_request(format!(
                "min_score=threshold needs a calibrated link score, and build {} has no E2G model (`{} = \"link-e2g/0.1.0\"` in its models table); give a number between 0 and 1",
                b.build.name(),
                E2G_ROLE
            ))
        })?,
        Some(MinScore::Value(x)) => x,
    };
    let wait = state.config.wait(q.wait);
    let view = View::new(
        b,
        q.contig.as_deref(),
        q.start,
        q.end,
        state.config.max_region_bp,
    )?;
    let _permit = state.admit()?;
    let ((name, version), sha256) = engine.model_identity();
    let mut answer = Answer {
        build: b.build.name(),
        contig: view.contig,
        model: ModelJson {
            name: name.into(),
            version: version.into(),
            sha256: sha256.into(),
        },
        e2g: engine.e2g().map(|m| E2gJson {
            name: &m.name,
            version: &m.version,
            sha256: &m.sha256,
            threshold: round4(m.threshold),
            threshold_recall: m.threshold_recall,
        }),
        score_kind: if threshold.is_some() {
            "e2g"
        } else {
            "attention"
        },
        threshold: threshold.map(round4),
        min_score: round4(min_score),
        links_hidden: 0,
        sequence_masked: false,
        genes: Vec::new(),
        links: Vec::new(),
        pending: Vec::new(),
        complete: true,
        start: view.start,
        end: view.end,
        genes_computed: None,
        elapsed_ms: None,
    };
    let Some(region) = view.region else {
        return json_ok(&answer);
    };
    let contig = super::region_contig(b, &region)?;
    let gone = Arc::new(AtomicBool::new(false));
    let _flag = DropFlag(gone.clone());
    let deadline = Instant::now() + wait;
    let started = Instant::now();
    let (start0, end0) = (region.start0(), region.end0());
    let links_engine = engine.clone();
    let found = tokio::task::spawn_blocking(move || {
        links_engine.view(
            &contig,
            start0,
            end0,
            (min_score > 0.0).then_some(min_score),
            || !gone.load(Ordering::Relaxed) && Instant::now() < deadline,
        )
    })
    .await??;
    answer.start = start0;
    answer.end = end0;
    answer.complete = found.pending.is_empty();
    answer.pending = found
        .pending
        .into_iter()
        .map(|(name, tss)| PendingGene { name, tss })
        .collect();
    answer.genes_computed = Some(found.computed);
    answer.elapsed_ms = Some(started.elapsed().as_millis() as u64);
    answer.sequence_masked = found.sequence_masked;
    answer.genes = found.genes.iter().map(|g| GeneJson::from(&**g)).collect();
    // Every listed gene is answered whole (all its links, not only those crossing the view),
    // so a gene's scores can be compared and summed; `min_score` alone leaves links out.
    let all = found.genes.iter().map(|g| g.links.len()).sum::<usize>();
    answer.links = found
        .genes
        .iter()
        .flat_map(|g| g.records())
        .filter(|r| r.link.score >= min_score)
        .map(LinkJson::from)
        .collect();
    answer.links_hidden = all - answer.links.len();
    json_ok(&answer)
}
