//! The routes, one module each, and what they share: the view a request asks for, and how
//! scores are rounded on the wire.

pub(super) mod enhancers;
pub(super) mod ism;
pub(super) mod links;
pub(super) mod meta;
pub(super) mod motifs;
pub(super) mod tracks;

use serde::Serialize;

use crate::genome::Region;

use super::error::{ApiError, ErrorKind};
use super::state::BuildState;

/// A model as answers name it (borrowed from the engine, or owned by an answer that outlives
/// it: `group=*` answers are made on tasks of their own).
#[derive(Debug, Serialize)]
struct ModelJson<'a> {
    name: std::borrow::Cow<'a, str>,
    sha256: std::borrow::Cow<'a, str>,
    version: std::borrow::Cow<'a, str>,
}

/// The view of a request, from its `ref`, `start` and `end` (0-based, half-open), validated
/// against the build.
struct View<'q> {
    /// `ref` as the client gave it (answers echo it).
    contig: &'q str,
    /// `start` as given.
    start: u64,
    /// `end` as given.
    end: u64,
    /// The region to answer for, `end` clipped to the contig length (browsers ask past contig
    /// ends); `None` for a view wholly past the contig end.
    region: Option<Region>,
}

impl<'q> View<'q> {
    /// Checks the parameters in the order that decides which error a request with several
    /// gets: `ref`, `start`, `end` present; the contig known; `start < end`; the size.
    fn new(
        b: &BuildState,
        contig: Option<&'q str>,
        start: Option<u64>,
        end: Option<u64>,
        max_region_bp: u64,
    ) -> Result<Self, ApiError> {
        let name = contig
            .ok_or_else(|| ApiError::bad_request("missing query parameter ref (a contig name)"))?;
        let start = start
            .ok_or_else(|| ApiError::bad_request("missing query parameter start (0-based)"))?;
        let end = end.ok_or_else(|| {
            ApiError::bad_request("missing query parameter end (0-based, exclusive)")
        })?;
        let known = b
            .build
            .contigs()
            .resolve(name)
            .ok_or_else(|| ApiError::not_found(b.build.contigs().unknown(name).to_string()))?;
        if start >= end {
            return Err(ApiError::bad_request(format!(
                "start {start} must be below end {end} (0-based, half-open)"
            )));
        }
        if end - start > max_region_bp {
            return Err(ApiError::new(
                ErrorKind::RegionTooLarge,
                format!("region of {} bp exceeds the limit of {max_region_bp} bp per request (cistrack serve --max-region)", end - start),
            ));
        }
        let region = if start >= known.length {
            None
        } else {
            let clipped = Region::new(&known.name, start, end.min(known.length));
            Some(clipped.map_err(ApiError::internal)?)
        };
        Ok(Self {
            contig: name,
            start,
            end,
            region,
        })
    }
}

impl View<'_> {
    /// A 400 when the view is longer than `max` bp, a route's own limit (`what` names it).
    fn at_most(&self, max: u64, what: &str) -> Result<(), ApiError> {
        let asked = self.end - self.start;
        if asked > max {
            return Err(ApiError::bad_request(format!(
                "{what} at most {max} bp per request (asked {asked} bp): zoom in"
            )));
        }
        Ok(())
    }
}

/// The build's contig of a validated region.
fn region_contig(b: &BuildState, region: &Region) -> Result<crate::genome::Contig, ApiError> {
    b.build
        .contigs()
        .resolve(region.name())
        .cloned()
        .ok_or_else(|| ApiError::internal("a region's contig is not in its build"))
}

/// A build whose accessibility is one cell group of a fragments file: the file, the group, the
/// table's groups and every group's depth, so that users see when coverage is low.
#[derive(Debug, Serialize)]
struct SingleCellJson {
    /// The fragments file's name.
    file: String,
    /// The group's fragments over the file.
    fragments: u64,
    /// Every group's fragments over the file.
    fragments_by_group: std::collections::BTreeMap<String, u64>,
    group: String,
    groups: Vec<String>,
}

impl SingleCellJson {
    fn of(build: &crate::genome::Build) -> Option<Self> {
        build.signals().iter().find_map(|s| {
            let f = s.track.fragments()?;
            Some(Self {
                file: s
                    .track
                    .path()
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                fragments: f.total(),
                fragments_by_group: f
                    .group_names()
                    .iter()
                    .cloned()
                    .zip(f.group_totals())
                    .collect(),
                group: f.group_name().to_string(),
                groups: f.group_names().to_vec(),
            })
        })
    }
}

/// Scores are sent with four decimals.
fn round4(x: f32) -> f64 {
    (x as f64 * 10_000.0).round() / 10_000.0
}
