//! Scoring whole regions through an [`Engine`] from blocking code (`score`, `precompute`):
//! regions are cut into pieces of at most [`PIECE_WINDOWS`] windows, a few pieces are in
//! flight at once (so the queue never runs dry between pieces), and results come back in
//! region order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::genome::Region;

use super::engine::{push_merged, Engine, Error, ViewResult};

/// Windows per piece.
pub const PIECE_WINDOWS: u64 = 1024;
/// Pieces in flight at once.
const IN_FLIGHT: usize = 4;

/// Cuts `region` into pieces of at most [`PIECE_WINDOWS`] grid windows, on the grid.
pub fn pieces(region: &Region, stride: u64) -> Vec<Region> {
    let piece = PIECE_WINDOWS * stride;
    let mut out = Vec::new();
    let mut start = region.start0();
    while start < region.end0() {
        // the next boundary on the grid, so pieces never split a window
        let end = ((start / piece + 1) * piece).min(region.end0());
        out.push(Region::new(region.name(), start, end).expect("start < end"));
        start = end;
    }
    out
}

/// Scores every window of each region (FASTA names, bounds checked) and waits for all of them,
/// handing each finished piece to `done` with the index of its region, in completion order
/// (nothing is kept here: memory does not grow with the regions).
///
/// # Errors
///
/// [`Error::Failed`] when inputs could not be read or inference failed; the first error ends
/// the run.
pub fn for_each_piece(
    engine: &Arc<Engine>,
    regions: &[Region],
    mut done: impl FnMut(usize, usize, ViewResult),
) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot start an async runtime; this is a bug");
    let stride = engine.stride();
    let mut work = regions
        .iter()
        .enumerate()
        .flat_map(|(i, r)| pieces(r, stride).into_iter().map(move |p| (i, p)))
        .enumerate();
    runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        loop {
            while set.len() < IN_FLIGHT {
                let Some((at, (region, piece))) = work.next() else {
                    break;
                };
                let engine = engine.clone();
                set.spawn(async move {
                    // no deadline: a blocking caller waits for every window
                    let forever = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
                    (at, region, engine.view(&piece, |_| true, forever).await)
                });
            }
            let Some(finished) = set.join_next().await else {
                return Ok(());
            };
            let (at, region, view) = finished.expect("a scoring task panicked; this is a bug");
            done(region, at, view?);
        }
    })
}

/// Like [`for_each_piece`], keeping the results: one per region, its pieces merged in order.
///
/// # Errors
///
/// As [`for_each_piece`].
pub fn score_regions(
    engine: &Arc<Engine>,
    regions: &[Region],
    progress: impl Fn(u64),
) -> Result<Vec<ViewResult>, Error> {
    let mut finished: Vec<(usize, usize, ViewResult)> = Vec::new();
    for_each_piece(engine, regions, |region, at, view| {
        progress(view.needed as u64);
        finished.push((region, at, view));
    })?;
    finished.sort_by_key(|(_, at, _)| *at);
    let mut merged: Vec<ViewResult> = regions.iter().map(|_| ViewResult::default()).collect();
    for (region, _, view) in finished {
        let into = &mut merged[region];
        into.windows.extend(view.windows);
        for (s, e) in view.skipped {
            push_merged(&mut into.skipped, s, e);
        }
        for (s, e) in view.pending {
            push_merged(&mut into.pending, s, e);
        }
        into.needed += view.needed;
        into.cached += view.cached;
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pieces() {
        let r = Region::new("c", 100, 2 * 1024 * 200 + 50).unwrap();
        let p = pieces(&r, 200);
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].start0(), p[0].end0()), (100, 1024 * 200));
        assert_eq!((p[1].start0(), p[1].end0()), (1024 * 200, 2048 * 200));
        assert_eq!((p[2].start0(), p[2].end0()), (2048 * 200, 2048 * 200 + 50));
        assert_eq!(pieces(&Region::new("c", 5, 6).unwrap(), 200).len(), 1);
    }
}
