//! Track files from the cache: called elements as bigBed and window scores as bigWig, for
//! everything a build has computed or precomputed with one model and stride.

use std::path::{Path, PathBuf};

use crate::genome::Build;

use super::links::LinkEngine;
use super::links_output::write_links_biginteract;
use super::output;
use super::score::{call_elements, Element, WindowScore};
use crate::pipeline::background::Background;
use crate::pipeline::cache::{Cache, Slot, TILE_WINDOWS};

/// What an export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// `enhancers.bb`.
    pub enhancers: PathBuf,
    /// `scores.bw`.
    pub scores: PathBuf,
    /// `percentiles.bw`, when the cache holds the background of `variant`.
    pub percentiles: Option<PathBuf>,
    /// Scored windows.
    pub windows: usize,
    /// Called elements.
    pub elements: usize,
}

/// Scored windows per contig (FASTA order), from every cached tile of `variant`.
pub fn cached_windows(
    build: &Build,
    cache: &Cache,
    variant: &str,
    stride: u64,
) -> Vec<(String, Vec<WindowScore>)> {
    let mut tiles = cache.scan(variant);
    tiles.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<(String, Vec<WindowScore>)> = Vec::new();
    for contig in build.contigs().iter() {
        let mut windows = Vec::new();
        for (_, tile_index, tile) in tiles.iter().filter(|t| t.0 == contig.name) {
            for (slot, value) in tile.slots.iter().enumerate() {
                if let Slot::Scored(s) = value {
                    let index = tile_index * TILE_WINDOWS as u64 + slot as u64;
                    let core_start0 = index * stride;
                    if core_start0 >= contig.length {
                        continue;
                    }
                    windows.push(WindowScore {
                        core_start0,
                        core_end0: ((index + 1) * stride).min(contig.length),
                        logit: s.logit,
                        probability: s.probability,
                        modality_share: s.share,
                    });
                }
            }
        }
        if !windows.is_empty() {
            out.push((contig.name.clone(), windows));
        }
    }
    out
}

/// Writes `enhancers.bb` and `scores.bw` into `dir`, and `percentiles.bw` (each window's
/// percentile against the build's background) when the cache holds the background of `variant`
/// (atomically: temporary file, then rename).
///
/// # Errors
///
/// [`crate::io::Error::Write`] naming the file.
pub fn export(
    build: &Build,
    cache: &Cache,
    variant: &str,
    stride: u64,
    threshold: f64,
    dir: &Path,
) -> Result<Exported, crate::io::Error> {
    std::fs::create_dir_all(dir).map_err(|e| crate::io::Error::Write {
        path: dir.into(),
        source: e.into(),
    })?;
    let windows = cached_windows(build, cache, variant, stride);
    let elements: Vec<Element> = windows
        .iter()
        .flat_map(|(contig, ws)| call_elements(contig, ws, threshold))
        .collect();
    let background = Background::load(cache, variant);
    let background = background.as_deref();
    let enhancers = dir.join("enhancers.bb");
    let scores = dir.join("scores.bw");
    let (tmp_bb, tmp_bw) = (dir.join(".enhancers.bb.tmp"), dir.join(".scores.bw.tmp"));
    output::write_elements_bigbed(&tmp_bb, build.contigs(), &elements, background)?;
    let probability = output::WindowValue::Probability;
    output::write_windows_bigwig(&tmp_bw, build.contigs(), &windows, probability)?;
    let mut written = vec![(tmp_bb, enhancers.clone()), (tmp_bw, scores.clone())];
    let percentiles = match background {
        Some(b) => {
            let (tmp, path) = (dir.join(".percentiles.bw.tmp"), dir.join("percentiles.bw"));
            let value = output::WindowValue::Percentile(b);
            output::write_windows_bigwig(&tmp, build.contigs(), &windows, value)?;
            written.push((tmp, path.clone()));
            Some(path)
        }
        None => {
            // no background (any more): no percentiles from an earlier one
            let _ = std::fs::remove_file(dir.join("percentiles.bw"));
            None
        }
    };
    for (tmp, path) in &written {
        std::fs::rename(tmp, path).map_err(|e| crate::io::Error::Write {
            path: path.clone(),
            source: e.into(),
        })?;
    }
    Ok(Exported {
        enhancers,
        scores,
        percentiles,
        windows: windows.iter().map(|(_, w)| w.len()).sum(),
        elements: elements.len(),
    })
}

/// What a links export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedLinks {
    /// `links.bb`.
    pub path: PathBuf,
    /// Genes written.
    pub genes: usize,
    /// Links written.
    pub links: usize,
}

/// Writes `links.bb` (bigInteract) of every gene `engine` has computed into `dir` (atomically:
/// temporary file, then rename).
///
/// # Errors
///
/// [`crate::io::Error::Write`] naming the file.
pub fn export_links(
    build: &Build,
    engine: &LinkEngine,
    dir: &Path,
) -> Result<ExportedLinks, crate::io::Error> {
    let write_error = |path: &Path, e: std::io::Error| crate::io::Error::Write {
        path: path.into(),
        source: e.into(),
    };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let genes = engine.computed_genes();
    let path = dir.join("links.bb");
    let tmp = dir.join(".links.bb.tmp");
    write_links_biginteract(&tmp, build.contigs(), &genes, engine.model_name(), 0.0)?;
    std::fs::rename(&tmp, &path).map_err(|e| write_error(&path, e))?;
    Ok(ExportedLinks {
        path,
        genes: genes.len(),
        links: genes.iter().map(|g| g.links.len()).sum(),
    })
}
