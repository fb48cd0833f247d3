//! `/healthz`, `/v1/builds` and `/v1/builds/{build}/refnames`.
//!
//! Answer fields are declared in sorted order: serde_json (without `preserve_order`) wrote the
//! `json!` objects these replaced with sorted keys, and the bytes stay the same.

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::router::{json_ok, RouteResult};
use super::super::state::State;
use super::round4;

/// `GET /healthz`.
#[derive(Debug, Serialize)]
struct Health<'a> {
    /// Build → model role → engine.
    builds: BTreeMap<&'a str, BTreeMap<String, EngineHealth>>,
    connections: ConnectionHealth,
    /// In-silico mutagenesis work, over all builds.
    ism: IsmHealth,
    /// The shared cache tier, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<RedisHealth>,
    status: &'static str,
    uptime_seconds: u64,
    version: &'static str,
}

/// Open connections against the cap.
#[derive(Debug, Serialize)]
struct ConnectionHealth {
    max: usize,
    open: usize,
}

/// In-silico mutagenesis jobs: computing, waiting their turn, and the positions they hold.
#[derive(Debug, Serialize)]
struct IsmHealth {
    positions: usize,
    queued: usize,
    running: usize,
}

/// The shared cache tier: its URL (password hidden) and whether it answered last time.
#[derive(Debug, Serialize)]
struct RedisHealth {
    up: bool,
    url: String,
}

/// A started engine.
#[derive(Debug, Serialize)]
struct EngineHealth {
    device: String,
    /// The cell group it reads (absent: the build's own reading).
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    model: String,
    role: String,
    queued_windows: usize,
}

/// `GET /healthz`: status, version, open connections, per build the started models, their
/// device and queue.
pub(in crate::server) async fn healthz(state: &State) -> RouteResult {
    let mut builds = BTreeMap::new();
    for (name, b) in &state.builds {
        let engines = b.engines.lock().await;
        let models = engines
            .iter()
            .map(|(key, e)| {
                let health = EngineHealth {
                    device: e.device().to_string(),
                    group: key.group.clone(),
                    model: e.spec().id().to_string(),
                    role: key.role.clone(),
                    queued_windows: e.queued(),
                };
                (key.to_string(), health)
            })
            .collect();
        builds.insert(name.as_str(), models);
    }
    let mut shared = state.builds.values().filter_map(|b| b.cache.shared());
    let redis = shared.next().map(|first| RedisHealth {
        up: first.is_up() && shared.all(|s| s.is_up()),
        url: first.url().to_string(),
    });
    let mut ism = IsmHealth {
        positions: 0,
        queued: 0,
        running: 0,
    };
    for b in state.builds.values() {
        let (running, queued, positions) = b.ism.counts();
        ism.running += running;
        ism.queued += queued;
        ism.positions += positions;
    }
    json_ok(&Health {
        builds,
        ism,
        connections: ConnectionHealth {
            max: state.connections.max(),
            open: state.connections.open(),
        },
        redis,
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
    })
}

/// `GET /v1/builds`.
#[derive(Debug, Serialize)]
struct Builds<'a> {
    builds: Vec<BuildInfo<'a>>,
}

/// One configured build.
#[derive(Debug, Serialize)]
struct BuildInfo<'a> {
    /// Candidate elements (`null` without a candidates file).
    candidates: Option<usize>,
    contigs: usize,
    contigs_without_sequence: usize,
    default_model: &'a str,
    description: Option<&'a str>,
    /// The E2G model (`null` without one).
    e2g: Option<E2gInfo>,
    /// The link model's name (`null` without one).
    links: Option<&'a str>,
    masked_modalities: Vec<&'static str>,
    /// Model role → model.
    models: &'a BTreeMap<String, String>,
    name: &'a str,
    signals: Vec<&'static str>,
    /// Accessibility from a fragments file: which cell group, and its depth (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    single_cell: Option<super::SingleCellJson>,
    stride: u64,
}

/// A build's E2G model.
#[derive(Debug, Serialize)]
struct E2gInfo {
    model: String,
    threshold: f64,
}

/// `GET /v1/builds`: the configured builds.
pub(in crate::server) fn builds(state: &State) -> RouteResult {
    let builds = state
        .builds
        .values()
        .map(|b| {
            let c = b.build.config();
            let links = b.link_engine();
            BuildInfo {
                name: b.build.name(),
                description: c.description.as_deref(),
                contigs: b.build.contigs().len(),
                signals: b
                    .build
                    .signals()
                    .iter()
                    .map(|s| s.modality.as_str())
                    .collect(),
                masked_modalities: b
                    .build
                    .masked_modalities()
                    .iter()
                    .map(|m| m.as_str())
                    .collect(),
                models: &c.models,
                default_model: &c.default_model,
                stride: state.config.stride,
                candidates: b.candidates.as_ref().map(|c| c.len()),
                links: links.map(|l| l.model_name()),
                e2g: links.and_then(|l| l.e2g()).map(|m| E2gInfo {
                    model: m.id(),
                    threshold: round4(m.threshold),
                }),
                contigs_without_sequence: b.build.contigs().sequence_less(),
                single_cell: super::SingleCellJson::of(&b.build),
            }
        })
        .collect();
    json_ok(&Builds { builds })
}

/// `GET /v1/builds/{build}/refnames`.
#[derive(Debug, Serialize)]
struct Refnames<'a> {
    build: &'a str,
    refnames: Vec<Refname<'a>>,
}

/// One contig.
#[derive(Debug, Serialize)]
struct Refname<'a> {
    /// Other names that resolve to it.
    aliases: Vec<&'a str>,
    length: u64,
    name: &'a str,
}

/// `GET /v1/builds/{build}/refnames`: contigs with lengths and aliases.
pub(in crate::server) fn refnames(state: &State, build: &str) -> RouteResult {
    let b = state.build(build)?;
    let contigs = b.build.contigs();
    let refnames = contigs
        .iter()
        .map(|c| Refname {
            name: &c.name,
            length: c.length,
            aliases: contigs.names_of(&c.name).into_iter().skip(1).collect(),
        })
        .collect();
    json_ok(&Refnames {
        build: b.build.name(),
        refnames,
    })
}
