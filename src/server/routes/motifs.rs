//! `GET /v1/builds/{build}/motifs?ref=&start=&end=`: the matches of the build's motif file
//! (`motifs` in its config, as `annotate` scans) in a view of at most [`MAX_MOTIF_BP`] bases,
//! each placement on either strand at the motif's p-value threshold.

use std::sync::Arc;

use serde::Serialize;

use crate::annotate::reference::ReferenceCache;
use crate::motif::{MotifSet, DEFAULT_P_VALUE};

use super::super::error::ApiError;
use super::super::query::{self, MotifsQuery};
use super::super::router::{json_ok, RouteResult};
use super::super::state::{BuildState, State};
use super::View;

/// The largest view scanned, bp.
pub const MAX_MOTIF_BP: u64 = 10_000;

/// The answer.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    build: &'a str,
    end: u64,
    /// The motif file's name.
    file: String,
    matches: Vec<MatchJson>,
    /// Matrices in the file.
    motifs: usize,
    p_value: f64,
    #[serde(rename = "ref")]
    contig: &'a str,
    start: u64,
}

/// One match.
#[derive(Debug, Serialize)]
struct MatchJson {
    end: u64,
    id: String,
    name: String,
    /// Log-odds against a uniform background, bits (2 decimals).
    score: f64,
    start: u64,
    strand: char,
}

/// The build's motif set, read once (404 when the build names none).
fn motif_set(b: &BuildState) -> Result<Arc<MotifSet>, ApiError> {
    let Some(path) = b.build.config().motifs.clone() else {
        return Err(ApiError::not_found(format!(
            "build {} has no motif file: set `motifs = \"…jaspar\"` in its config",
            b.build.name()
        )));
    };
    b.motifs
        .get_or_init(|| {
            MotifSet::load(&path, DEFAULT_P_VALUE)
                .map(Arc::new)
                .map_err(|e| crate::error::chain(&e))
        })
        .clone()
        .map_err(ApiError::internal)
}

/// Answers `/motifs`.
pub(in crate::server) async fn answer(state: &Arc<State>, build: &str, query: &str) -> RouteResult {
    let b = state.build(build)?;
    let q: MotifsQuery = query::parse(query)?;
    let view = View::new(
        b,
        q.contig.as_deref(),
        q.start,
        q.end,
        state.config.max_region_bp,
    )?;
    view.at_most(MAX_MOTIF_BP, "motif matches cover")?;
    let _permit = state.admit()?;
    let state2 = state.clone();
    let build_name = build.to_string();
    let region = view.region.clone();
    let (set, matches) = tokio::task::spawn_blocking(move || {
        let b = state2.build(&build_name)?;
        let set = motif_set(b)?;
        let Some(region) = region else {
            return Ok::<_, ApiError>((set, Vec::new()));
        };
        let contig = super::region_contig(b, &region)?;
        let mut reference = ReferenceCache::open(&b.build.config().fasta, region.len())
            .map_err(ApiError::internal)?;
        let mut bases = Vec::new();
        reference
            .fill(
                &contig,
                region.start0() as i64,
                region.end0() as i64,
                &mut bases,
            )
            .map_err(ApiError::internal)?;
        let matches = set
            .scan(&bases)
            .into_iter()
            .map(|m| {
                let motif = &set.motifs[m.motif];
                let start = region.start0() + m.start as u64;
                MatchJson {
                    start,
                    end: start + motif.width() as u64,
                    id: motif.id.clone(),
                    name: motif.name.clone(),
                    score: (m.score * 100.0).round() / 100.0,
                    strand: if m.forward { '+' } else { '-' },
                }
            })
            .collect();
        Ok((set, matches))
    })
    .await??;
    let (start, end) = view
        .region
        .as_ref()
        .map_or((view.start, view.end), |r| (r.start0(), r.end0()));
    json_ok(&Answer {
        build: b.build.name(),
        contig: view.contig,
        start,
        end,
        file: set
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        motifs: set.motifs.len(),
        p_value: set.p_value,
        matches,
    })
}
