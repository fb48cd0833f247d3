//! `GET/HEAD /v1/builds/{build}/tracks/{enhancers.bb,scores.bw,percentiles.bw,links.bb}`:
//! track files exported from the cache, served with Range (`percentiles.bw` once the model's
//! background is computed); `?group=NAME` for a cell group's files (scATAC builds).

use std::sync::Arc;
use std::time::Instant;

use hyper::header;
use hyper::Request;

use crate::track::export;
use crate::track::links::LINK_ROLE;

use super::super::error::ApiError;
use super::super::files::serve_file;
use super::super::query::{self, TrackQuery};
use super::super::router::RouteResult;
use super::super::state::{BuildState, EngineKey, State, TrackFiles};

/// Answers `/tracks/{name}`.
pub(in crate::server) async fn answer<B>(
    state: &Arc<State>,
    build: &str,
    name: &str,
    query: &str,
    req: &Request<B>,
) -> RouteResult {
    let b = state.build(build)?;
    let q: TrackQuery = query::parse(query)?;
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let file = match name {
        "enhancers.bb" | "scores.bw" | "percentiles.bw" => name,
        "links.bb" => return links_track(state, b, range_header.as_deref(), req).await,
        _ => {
            return Err(ApiError::not_found(format!(
                "no track {name:?}; tracks: enhancers.bb, scores.bw, percentiles.bw, links.bb"
            )))
        }
    };
    if q.group.as_deref() == Some(super::enhancers::ALL_GROUPS) {
        return Err(ApiError::bad_request(
            "track files are one per cell group: ask group=NAME (the groups are listed in /v1/builds)",
        ));
    }
    let engine = state
        .group_engine(b, q.model.as_deref(), q.group.as_deref())
        .await?;
    let role = q
        .model
        .unwrap_or_else(|| b.build.config().default_model.clone());
    // a group's files beside the build's own (the build's own group's are the build's), under
    // a name no group can turn into a path
    let group = b.other_group(q.group.as_deref());
    let key = EngineKey::new(&role, group);
    let dir = match group {
        None => b.track_dir.join(&role),
        Some(group) => b
            .track_dir
            .join(&role)
            .join("groups")
            .join(crate::io::fragments::group_dir_name(group)),
    };
    let starts_at_zero = starts_at_zero(range_header.as_deref());
    {
        // Rebuild stale files only when a reader starts from the header, and not too often, so a
        // reader paging through a file sees one version.
        let mut tracks = b.tracks.lock().await;
        let generation = b.cache.generation();
        let stale = tracks
            .get(&key)
            .is_none_or(|t| t.is_stale(generation, starts_at_zero, state.config.track_refresh));
        if stale || !dir.join(file).exists() {
            let (build_arc, cache, variant, stride, threshold, out) = (
                engine.build().clone(),
                b.cache.clone(),
                engine.variant().to_string(),
                engine.stride(),
                engine.spec().threshold,
                dir.clone(),
            );
            let exported = tokio::task::spawn_blocking(move || {
                export::export(&build_arc, &cache, &variant, stride, threshold, &out)
            })
            .await?
            .map_err(|e| ApiError::internal(crate::error::chain(&e)))?;
            tracing::debug!(
                build,
                key = %key,
                windows = exported.windows,
                elements = exported.elements,
                "track files rebuilt"
            );
            tracks.insert(
                key,
                TrackFiles {
                    generation,
                    built: Instant::now(),
                },
            );
        }
    }
    if file == "percentiles.bw" && !dir.join(file).exists() {
        return Err(ApiError::not_found(format!(
            "no percentiles.bw for {} on build {build}{}: its background is not computed; run `cistrack precompute --background{}` for this build and model",
            engine.spec().id(),
            q.group.as_deref().map(|g| format!(", cell group {g}")).unwrap_or_default(),
            q.group.as_deref().map(|g| format!(" --group {g}")).unwrap_or_default(),
        )));
    }
    serve_file(&dir.join(file), range_header.as_deref(), req).await
}

/// `links.bb`, exported from the link engine's genes.
async fn links_track<B>(
    state: &Arc<State>,
    b: &BuildState,
    range_header: Option<&str>,
    req: &Request<B>,
) -> RouteResult {
    let engine = b.links()?;
    let dir = b.track_dir.join(LINK_ROLE);
    let path = dir.join("links.bb");
    let starts_at_zero = starts_at_zero(range_header);
    {
        let mut tracks = b.tracks.lock().await;
        let generation = engine.generation();
        let stale = tracks
            .get(&EngineKey::new(LINK_ROLE, None))
            .is_none_or(|t| t.is_stale(generation, starts_at_zero, state.config.track_refresh));
        if stale || !path.exists() {
            let build = b.build.clone();
            tokio::task::spawn_blocking(move || export::export_links(&build, &engine, &dir))
                .await?
                .map_err(|e| ApiError::internal(crate::error::chain(&e)))?;
            tracks.insert(
                EngineKey::new(LINK_ROLE, None),
                TrackFiles {
                    generation,
                    built: Instant::now(),
                },
            );
        }
    }
    serve_file(&path, range_header, req).await
}

/// Whether a reader starts from the file's header (no Range, or one from byte 0).
fn starts_at_zero(range_header: Option<&str>) -> bool {
    range_header.is_none_or(|r| r.trim().starts_with("bytes=0-"))
}
