//! The variant background of a model on a build: |delta| of random single-base substitutions,
//! so that an annotated allele's |delta| can be read as a **percentile** ("a larger effect than
//! 99.5 % of random substitutions").
//!
//! `cistrack precompute --variant-background` draws the substitutions from the same seeded
//! blocks as the window background ([`crate::pipeline::background`]; contigs the FASTA lacks
//! are left out): one position per block (a
//! seeded offset, up to [`TRIES`] offsets until one holds an A/C/G/T base), and one of the three
//! other bases at random. They are annotated like any VCF (same windows, same signals, indels
//! not involved), and the |delta| of every scored one is kept, sorted, in the build's cache under
//! the record namespace [`NAMESPACE`], keyed by build, model, sha256 and inputs (as annotate's
//! windows are). The percentile is the mid-rank of |delta| among them.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::genome::Build;
use crate::model::ModelSpec;
use crate::pipeline::background::{self, shuffled_blocks, splitmix, Background};
use crate::pipeline::cache::key::variant_for;
use crate::pipeline::cache::Cache;
use crate::track::score::DEFAULT_STRIDE;

use super::reference::{ReferenceCache, DEFAULT_CHUNK};
use super::{AnnotateOptions, Error, Format, Input};

/// Record namespace of variant backgrounds in the cache.
pub const NAMESPACE: &str = "variant-background";
/// Substitutions drawn by default.
pub const DEFAULT_SNVS: usize = 10_000;
/// Offsets tried per block for an A/C/G/T base.
pub const TRIES: usize = 8;
/// Seed of the positions and bases (the blocks use the window background's seed).
const SEED: u64 = 0x736e_7673; // "snvs"
/// Blocks read per round (sorted, so the FASTA is read forward).
const BLOCKS_PER_ROUND: usize = 4096;

/// The cache key of `spec`'s variant background on `build` (annotate's windows' namespace).
pub fn key(build: &Build, spec: &ModelSpec) -> String {
    variant_for(build, spec, DEFAULT_STRIDE)
}

/// The variant background of `spec` on `build`, if computed.
pub fn load(cache: &Cache, build: &Build, spec: &ModelSpec) -> Option<Arc<Background>> {
    Background::load_in(cache, NAMESPACE, &key(build, spec))
}

/// One drawn substitution: contig, 0-based position, reference and alternate base.
type Substitution = (String, u64, u8, u8);

/// The substitutions drawn, in genome order, and how many blocks were visited for them.
#[derive(Debug, Clone)]
pub struct Drawn {
    /// Contig, 0-based position, reference and alternate base.
    pub substitutions: Vec<Substitution>,
    /// Blocks visited (every block of the build when fewer than asked were found).
    pub blocks_visited: usize,
}

/// Blocks a variant background can visit on `build` (all of them: it stops early when it has
/// enough).
pub fn block_count(build: &Build) -> usize {
    background::block_count(build, DEFAULT_STRIDE)
}

/// Draws up to `target` substitutions (fewer when the build's blocks run out).
///
/// # Errors
///
/// FASTA read errors.
pub fn draw(build: &Build, target: usize) -> Result<Drawn, Error> {
    let span = background::BLOCK_WINDOWS * DEFAULT_STRIDE;
    let (contigs, _, blocks) = shuffled_blocks(build, span);
    let mut reference = ReferenceCache::open(&build.config().fasta, DEFAULT_CHUNK)?;
    let mut next = splitmix(SEED);
    let mut bases = Vec::new();
    // (index in `contigs`, which keeps the build's order; position; REF; ALT)
    let mut out: Vec<(u32, u64, u8, u8)> = Vec::with_capacity(target);
    let mut visited = 0;
    for round in blocks.chunks(BLOCKS_PER_ROUND) {
        if out.len() >= target {
            break;
        }
        visited += round.len();
        let mut round = round.to_vec();
        round.sort_unstable();
        for (c, b) in round {
            let contig = contigs[c as usize];
            // a contig from chrom_sizes has no bases to substitute
            if !build.contigs().has_sequence(&contig.name) {
                continue;
            }
            let start = u64::from(b) * span;
            let end = (start + span).min(contig.length);
            reference.fill(contig, start as i64, end as i64, &mut bases)?;
            for _ in 0..TRIES {
                let offset = (next() % (end - start)) as usize;
                let base = bases[offset].to_ascii_uppercase();
                if b"ACGT".contains(&base) {
                    let pick = (next() % 3) as usize;
                    let alt = b"ACGT".iter().copied().filter(|&x| x != base).nth(pick);
                    out.push((
                        c,
                        start + offset as u64,
                        base,
                        alt.expect("three other bases"),
                    ));
                    break;
                }
            }
        }
    }
    out.truncate(target);
    out.sort_unstable();
    Ok(Drawn {
        substitutions: out
            .into_iter()
            .map(|(c, position0, r, a)| (contigs[c as usize].name.clone(), position0, r, a))
            .collect(),
        blocks_visited: visited,
    })
}

/// A writer into shared memory (the annotated text is read back here).
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Annotates the drawn substitutions with `spec` and returns the background of their |delta|
/// (`blocks`: substitutions drawn; `windows_drawn`: blocks visited).
///
/// # Errors
///
/// What annotating fails with.
pub fn compute(
    build: &Build,
    spec: &ModelSpec,
    drawn: &Drawn,
    options: &AnnotateOptions,
) -> Result<Background, Error> {
    let substitutions = &drawn.substitutions;
    let mut vcf =
        String::from("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n");
    for (contig, position0, reference, alternate) in substitutions {
        vcf.push_str(&format!(
            "{contig}\t{}\t.\t{}\t{}\t.\t.\t.\n",
            position0 + 1,
            *reference as char,
            *alternate as char
        ));
    }
    let input = Input::from_reader(
        "variant background",
        Box::new(std::io::Cursor::new(vcf.into_bytes())),
        None,
        Some(Format::Vcf),
    )?;
    let text = Arc::new(Mutex::new(Vec::new()));
    let options = AnnotateOptions {
        motifs: None,
        link_effects: false,
        target: "variant background".into(),
        ..options.clone()
    };
    super::annotate(build, spec, input, Box::new(Shared(text.clone())), &options)?;
    let text = std::mem::take(&mut *text.lock().expect("buffer lock"));
    let deltas = String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let info = line.split('\t').nth(7)?;
            let entry = info.split(';').find_map(|e| e.strip_prefix("CISTRACK="))?;
            entry.split('|').nth(3)?.parse::<f32>().ok().map(f32::abs)
        })
        .collect();
    Ok(Background::new(
        &key(build, spec),
        DEFAULT_STRIDE,
        substitutions.len(),
        drawn.blocks_visited as u64,
        deltas,
    ))
}

/// For output headers: `N_substitutions`, or `none`.
pub fn describe(background: Option<&Background>) -> String {
    background.map_or_else(
        || "none".to_string(),
        |b| format!("{}_substitutions", b.len()),
    )
}
