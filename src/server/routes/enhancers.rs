//! `GET /v1/builds/{build}/enhancers?ref=&start=&end=`: window scores and called elements.
//!
//! Answer fields are declared in sorted order: serde_json (without `preserve_order`) wrote the
//! `json!` objects these replaced with sorted keys, and the bytes stay the same.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::model::onnx::ActiveDevice;
use crate::pipeline::background::Background;
use crate::pipeline::engine::Mode;
use crate::track::score::{call_elements, Element, WindowScore};

use super::super::error::ApiError;
use super::super::query::{self, EnhancersQuery, RequestedMode};
use super::super::router::{json_ok, RouteResult};
use super::super::state::{State, DEFAULT_DENSE_MAX_BP_CPU};
use super::{round4, ModelJson, SingleCellJson, View};

/// The answer. `skipped`, `windows_needed`, `windows_cached` and `elapsed_ms` are absent for a
/// view wholly past the contig end, `windows` and `elements` when `include` leaves them out.
#[derive(Debug, Serialize)]
struct Answer {
    /// The model's genome-wide background on the build that `percentile` fields rank against;
    /// absent until `cistrack precompute --background` has run.
    #[serde(skip_serializing_if = "Option::is_none")]
    background: Option<BackgroundJson>,
    build: String,
    complete: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elements: Option<Vec<ElementJson>>,
    end: u64,
    masked_modalities: Vec<&'static str>,
    mode: &'static str,
    model: ModelJson<'static>,
    /// Cores still being computed, merged.
    pending: Vec<(u64, u64)>,
    /// `ref` as the client gave it.
    #[serde(rename = "ref")]
    contig: String,
    /// The cell group and its depth, for a build reading scATAC fragments.
    #[serde(skip_serializing_if = "Option::is_none")]
    single_cell: Option<super::SingleCellJson>,
    /// Cores of windows without sequence, merged.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<Vec<(u64, u64)>>,
    start: u64,
    stride: u64,
    threshold: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    windows: Option<Vec<WindowJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    windows_cached: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    windows_needed: Option<usize>,
}

/// What the percentiles are against.
#[derive(Debug, Serialize)]
struct BackgroundJson {
    /// Scored windows drawn at random over the build.
    windows: usize,
}

/// One window, reported for its core.
#[derive(Debug, Serialize)]
struct WindowJson {
    end: u64,
    logit: f64,
    /// Percentile (0–100) of `probability` among the background's windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    percentile: Option<f64>,
    probability: f64,
    /// Attention share per modality: sequence, h3k27ac, accessibility.
    shares: [f64; 3],
    start: u64,
}

impl WindowJson {
    fn new(w: &WindowScore, background: Option<&Background>) -> Self {
        Self {
            start: w.core_start0,
            end: w.core_end0,
            probability: round4(w.probability),
            percentile: percentile(background, w.probability),
            logit: round4(w.logit),
            shares: w.modality_share.map(round4),
        }
    }
}

/// The percentile of `probability`, to 2 decimals.
fn percentile(background: Option<&Background>, probability: f32) -> Option<f64> {
    let p = background?.percentile(probability)?;
    Some((f64::from(p) * 100.0).round() / 100.0)
}

/// One called element.
#[derive(Debug, Serialize)]
struct ElementJson {
    end: u64,
    logit: f64,
    mean_probability: f64,
    /// `contig:start-end`, 1-based inclusive.
    name: String,
    peak_end: u64,
    peak_start: u64,
    /// Percentile (0–100) of the peak probability among the background's windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    percentile: Option<f64>,
    probability: f64,
    /// The peak probability × 1000, as BED scores go.
    score: u32,
    shares: Shares,
    start: u64,
    windows: usize,
}

/// The peak window's attention share per modality (keys: [`crate::model::Modality::as_str`]).
#[derive(Debug, Serialize)]
struct Shares {
    accessibility: f64,
    h3k27ac: f64,
    sequence: f64,
}

impl ElementJson {
    fn new(e: &Element, background: Option<&Background>) -> Self {
        let s = e.peak.modality_share;
        Self {
            start: e.start0,
            end: e.end0,
            name: format!("{}:{}-{}", e.contig, e.start0 + 1, e.end0),
            score: (e.peak.probability as f64 * 1000.0)
                .round()
                .clamp(0.0, 1000.0) as u32,
            probability: round4(e.peak.probability),
            percentile: percentile(background, e.peak.probability),
            logit: round4(e.peak.logit),
            mean_probability: round4(e.mean_probability),
            windows: e.windows,
            peak_start: e.peak.core_start0,
            peak_end: e.peak.core_end0,
            shares: Shares {
                sequence: round4(s[0]),
                h3k27ac: round4(s[1]),
                accessibility: round4(s[2]),
            },
        }
    }
}

/// `group=*`: every cell group of the build's fragments file in one answer.
pub(in crate::server) const ALL_GROUPS: &str = "*";

/// Answers `/enhancers`.
pub(in crate::server) async fn answer(state: &Arc<State>, build: &str, query: &str) -> RouteResult {
    let q: EnhancersQuery = query::parse(query)?;
    if q.group.as_deref() == Some(ALL_GROUPS) {
        return every_group(state, build, q).await;
    }
    json_ok(&one_group(state, build, &q, q.group.as_deref(), true).await?)
}

/// The answer for `group=*`: the view, and one answer per group (in the group table's order),
/// each what `group=NAME` answers. The groups are scored side by side within one wait.
#[derive(Debug, Serialize)]
struct GroupsAnswer {
    build: String,
    /// Every group's answer is complete.
    complete: bool,
    end: u64,
    groups: Vec<Answer>,
    #[serde(rename = "ref")]
    contig: String,
    start: u64,
}

/// Answers `/enhancers?group=*`.
async fn every_group(state: &Arc<State>, build: &str, q: EnhancersQuery) -> RouteResult {
    let b = state.build(build)?;
    check_stride(state, &q)?;
    let view = View::new(
        b,
        q.contig.as_deref(),
        q.start,
        q.end,
        state.config.max_region_bp,
    )?;
    let groups: Vec<String> = b
        .build
        .cell_groups()
        .map(<[String]>::to_vec)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "build {build} reads no scATAC fragments: it has no cell groups (group=* needs a build whose accessibility is a fragments file)"
            ))
        })?;
    let _permit = state.admit()?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, group) in groups.iter().enumerate() {
        let (state, build, q, group) = (state.clone(), build.to_string(), q.clone(), group.clone());
        tasks.spawn(async move { (i, one_group(&state, &build, &q, Some(&group), false).await) });
    }
    let mut answers: Vec<Option<Answer>> = (0..groups.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, answer) = joined?;
        answers[i] = Some(answer?);
    }
    let groups: Vec<Answer> = answers.into_iter().flatten().collect();
    let (start, end) = match &view.region {
        Some(r) => (r.start0(), r.end0()),
        None => (view.start, view.end),
    };
    json_ok(&GroupsAnswer {
        build: build.to_string(),
        complete: groups.iter().all(|g| g.complete),
        end,
        groups,
        contig: view.contig.to_string(),
        start,
    })
}

/// A 400 when the client expects another stride than the daemon's.
fn check_stride(state: &State, q: &EnhancersQuery) -> Result<(), ApiError> {
    match q.stride {
        Some(stride) if stride != state.config.stride => Err(ApiError::bad_request(format!("this daemon scores at stride {} bp (cistrack serve --stride); stride={stride} is not available", state.config.stride))),
        _ => Ok(()),
    }
}

/// The answer for the view of `q` read with cell group `group` (the build's own reading if
/// `None`); `admit` takes a place among the requests in flight.
async fn one_group(
    state: &Arc<State>,
    build: &str,
    q: &EnhancersQuery,
    group: Option<&str>,
    admit: bool,
) -> Result<Answer, ApiError> {
    let b = state.build(build)?;
    check_stride(state, q)?;
    let wait = state.config.wait(q.wait);
    let view = View::new(
        b,
        q.contig.as_deref(),
        q.start,
        q.end,
        state.config.max_region_bp,
    )?;
    let engine = state.group_engine(b, q.model.as_deref(), group).await?;
    let _permit = admit.then(|| state.admit()).transpose()?;
    let spec = engine.spec();
    let background = Background::load(engine.cache(), engine.variant());
    let background = background.as_deref();
    let mut answer = Answer {
        background: background.map(|b| BackgroundJson { windows: b.len() }),
        build: b.build.name().to_string(),
        contig: view.contig.to_string(),
        model: ModelJson {
            name: spec.name.clone().into(),
            version: spec.version.clone().into(),
            sha256: spec.sha256.clone().into(),
        },
        stride: engine.stride(),
        threshold: spec.threshold,
        masked_modalities: b
            .build
            .masked_modalities()
            .iter()
            .map(|m| m.as_str())
            .collect(),
        start: view.start,
        end: view.end,
        mode: Mode::Dense.as_str(),
        complete: true,
        pending: Vec::new(),
        windows: Some(Vec::new()),
        elements: Some(Vec::new()),
        single_cell: SingleCellJson::of(engine.build()),
        skipped: None,
        windows_needed: None,
        windows_cached: None,
        elapsed_ms: None,
    };
    let Some(region) = view.region else {
        return Ok(answer);
    };
    let dense_max = state.config.dense_max_bp.unwrap_or(match engine.device() {
        ActiveDevice::Cpu => DEFAULT_DENSE_MAX_BP_CPU,
        ActiveDevice::Cuda => state.config.max_region_bp,
    });
    let mode = match (q.mode, &b.candidates) {
        (RequestedMode::Dense, _) => Mode::Dense,
        (RequestedMode::Candidates, Some(_)) => Mode::Candidates,
        (RequestedMode::Candidates, None) => {
            return Err(ApiError::bad_request(format!(
                "build {} has no candidate elements configured; use mode=dense",
                b.build.name()
            )))
        }
        (_, Some(_)) if region.len() > dense_max => Mode::Candidates,
        _ => Mode::Dense,
    };
    let stride = engine.stride();
    let contig = region.name().to_string();
    let needed = |index: u64| match mode {
        Mode::Dense => true,
        Mode::Candidates => b
            .candidates
            .as_ref()
            .is_some_and(|c| c.overlaps(&contig, index * stride, (index + 1) * stride)),
    };
    let started = Instant::now();
    let scored = engine.view(&region, needed, Instant::now() + wait).await?;
    answer.start = region.start0();
    answer.end = region.end0();
    answer.mode = mode.as_str();
    answer.complete = scored.pending.is_empty();
    answer.pending = scored.pending;
    answer.skipped = Some(scored.skipped);
    answer.windows_needed = Some(scored.needed);
    answer.windows_cached = Some(scored.cached);
    answer.elapsed_ms = Some(started.elapsed().as_millis() as u64);
    answer.windows = q.include.windows.then(|| {
        scored
            .windows
            .iter()
            .map(|w| WindowJson::new(w, background))
            .collect()
    });
    answer.elements = q.include.elements.then(|| {
        call_elements(region.name(), &scored.windows, spec.threshold)
            .iter()
            .map(|e| ElementJson::new(e, background))
            .collect()
    });
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Modality;

    #[test]
    fn test_share_keys_are_the_modality_names() {
        let shares = Shares {
            sequence: 0.1,
            h3k27ac: 0.2,
            accessibility: 0.7,
        };
        let v = serde_json::to_value(&shares).unwrap();
        for (i, m) in [
            Modality::Sequence,
            Modality::H3k27ac,
            Modality::Accessibility,
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(v[m.as_str()], [0.1, 0.2, 0.7][i]);
        }
        assert_eq!(
            serde_json::to_string(&shares).unwrap(),
            r#"{"accessibility":0.7,"h3k27ac":0.2,"sequence":0.1}"#
        );
    }
}
