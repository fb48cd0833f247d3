//! In-silico mutagenesis: every base of a stretch changed to each of the other three, each
//! change scored exactly as `annotate` scores that SNV (the same variant-centred reference and
//! alternate windows, the reference sample's signal bins in both, the same model queue and
//! per-build window cache), so the effect shown at a base is the `delta` `annotate` writes for
//! that substitution.

use std::sync::Arc;

use crate::genome::build::{InputReader, Span};
use crate::genome::{Build, Contig};
use crate::model::encode::Normaliser;
use crate::pipeline::inputs::normalisers;
use crate::pipeline::Engine;

use super::reference::{ReferenceCache, DEFAULT_CHUNK};
use super::scorer::{reference_bins, Prediction, WindowCache, WindowScorer};
use super::variant::{count_bases, Edit};
use super::Error;

/// The longest stretch one request mutates, bp (≈ 4,000 model windows on the CPU).
pub const MAX_ISM_BP: u64 = 1_000;

/// Positions pushed to the model at once (4 windows each), between progress reports.
pub const CHUNK_POSITIONS: usize = 32;

/// The bases, in the order of [`IsmPosition::alternates`].
pub const BASES: [u8; 4] = *b"ACGT";

/// Why a position has no effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsmSkip {
    /// The reference base is not A/C/G/T.
    NBase,
    /// The window centred on it has no A/C/G/T base (cannot happen with an A/C/G/T base at
    /// its centre; kept for the contract's all-N rule).
    AllN,
}

impl IsmSkip {
    /// The code in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            IsmSkip::NBase => "n_base",
            IsmSkip::AllN => "all_n",
        }
    }
}

/// One position's mutagenesis.
#[derive(Debug, Clone, PartialEq)]
pub struct IsmPosition {
    /// 0-based position.
    pub position0: u64,
    /// The reference base, upper case (`N` for any other letter).
    pub base: u8,
    /// The reference window's prediction and each base's alternate window's prediction (by
    /// [`BASES`]; `None` at the reference base), or why there are none.
    pub scores: Result<(Prediction, [Option<Prediction>; 4]), IsmSkip>,
}

impl IsmPosition {
    /// `alt − ref` probability per base (`None` at the reference base or when skipped).
    pub fn deltas(&self) -> [Option<f32>; 4] {
        match &self.scores {
            Ok((r, alts)) => alts.map(|a| a.map(|a| a.probability - r.probability)),
            Err(_) => [None; 4],
        }
    }

    /// The importance of the reference base: minus the mean of the three deltas (> 0 where the
    /// reference base supports the enhancer call).
    pub fn importance(&self) -> Option<f32> {
        let d: Vec<f32> = self.deltas().into_iter().flatten().collect();
        (!d.is_empty()).then(|| -d.iter().sum::<f32>() / d.len() as f32)
    }
}

/// A position queued: its 0-based position, its base, and the ids of its reference window and
/// of the alternate window per base (or why it has none).
type Planned = (u64, u8, Result<(u64, [Option<u64>; 4]), IsmSkip>);

/// Mutagenesis through an engine's model workers.
pub struct Ism<'e> {
    engine: &'e Engine,
    cache: Option<Arc<WindowCache>>,
    reference: ReferenceCache,
    signals: InputReader,
    normalisers: [Option<Normaliser>; 2],
    window: u64,
    bin_size: usize,
    span: Span,
    bases: Vec<u8>,
}

impl std::fmt::Debug for Ism<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ism").field("window", &self.window).finish()
    }
}

impl<'e> Ism<'e> {
    /// Mutagenesis with `engine`'s model on its build, reading and storing window scores in
    /// `cache` when given.
    ///
    /// # Errors
    ///
    /// The FASTA or a bigWig cannot be opened.
    pub fn new(engine: &'e Engine, cache: Option<Arc<WindowCache>>) -> Result<Self, Error> {
        let build: &Build = engine.build();
        let spec = engine.spec();
        Ok(Self {
            engine,
            cache,
            reference: ReferenceCache::open(&build.config().fasta, DEFAULT_CHUNK)?,
            signals: build.reader()?,
            normalisers: normalisers(build, spec),
            window: spec.window.length as u64,
            bin_size: spec.window.bin_size,
            span: Span::default(),
            bases: Vec::new(),
        })
    }

    /// Mutates `positions` of `contig` (0-based), [`CHUNK_POSITIONS`] at a time, handing each
    /// chunk's results to `done` in order; stops early when `done` returns false.
    ///
    /// # Errors
    ///
    /// Inputs that cannot be read, or a model failure.
    pub fn run(
        &mut self,
        contig: &Contig,
        positions: &[u64],
        mut done: impl FnMut(Vec<IsmPosition>) -> bool,
    ) -> Result<(), Error> {
        let (mut scorer, results) = WindowScorer::new(self.engine);
        if let Some(cache) = &self.cache {
            scorer = scorer.with_cache(cache.clone());
        }
        for chunk in positions.chunks(CHUNK_POSITIONS) {
            // per position: its base, and the window ids (reference, then one per base)
            let mut planned: Vec<Planned> = Vec::with_capacity(chunk.len());
            let first = scorer.next_id();
            for &position0 in chunk {
                let plan = self.plan(contig, position0, &mut scorer)?;
                planned.push(plan);
            }
            let n = (scorer.next_id() - first) as usize;
            let mut scores: Vec<Option<Prediction>> = vec![None; n];
            for _ in 0..n {
                let (id, outcome) = results
                    .receiver()
                    .recv()
                    .expect("the scorer's sender lives while it does; this is a bug");
                results.taken();
                let score = outcome.map_err(|cause| {
                    crate::Error::from(crate::pipeline::engine::Error::Failed(cause))
                })?;
                if let Some(cache) = &self.cache {
                    cache.store(id, &score);
                }
                scores[(id - first) as usize] = Some(Prediction {
                    logit: score.logit,
                    probability: score.probability,
                });
            }
            let get = |id: u64| scores[(id - first) as usize].expect("every result received");
            let out = planned
                .into_iter()
                .map(|(position0, base, plan)| IsmPosition {
                    position0,
                    base,
                    scores: plan.map(|(r, alts)| (get(r), alts.map(|a| a.map(get)))),
                })
                .collect();
            if !done(out) {
                break;
            }
        }
        if let Some(cache) = &self.cache {
            cache.flush();
        }
        Ok(())
    }

    /// Queues the windows of one position: its reference window and one alternate window per
    /// other base.
    fn plan(
        &mut self,
        contig: &Contig,
        position0: u64,
        scorer: &mut WindowScorer<'_>,
    ) -> Result<Planned, Error> {
        self.reference.fill(
            contig,
            position0 as i64,
            position0 as i64 + 1,
            &mut self.bases,
        )?;
        let base = self.bases[0].to_ascii_uppercase();
        if !BASES.contains(&base) {
            return Ok((position0, b'N', Err(IsmSkip::NBase)));
        }
        let mut reference = None;
        let mut alternates = [None; 4];
        for (slot, &alt) in BASES.iter().enumerate() {
            if alt == base {
                continue;
            }
            let alternate = [alt];
            let edit = Edit {
                start0: position0,
                reference_length: 1,
                alternate: &alternate,
            };
            let (geometry, reference_window, alternate) =
                self.reference
                    .allele_windows(contig, &edit, self.window, &mut self.bases)?;
            if count_bases(&reference_window) == 0 {
                return Ok((position0, base, Err(IsmSkip::AllN)));
            }
            // the three substitutions share the reference window and its signal bins
            if reference.is_none() {
                let start0 = geometry.reference_start0;
                let bins = reference_bins(
                    &mut self.signals,
                    contig,
                    (start0, self.window as usize, self.bin_size),
                    &self.normalisers,
                    &mut self.span,
                )?;
                let id = scorer.push(&reference_window, &bins, Some((contig, start0)));
                reference = Some((id, bins));
            }
            let (_, bins) = reference.as_ref().expect("set above");
            alternates[slot] = Some(scorer.push(&alternate, bins, None));
        }
        let reference_id = reference.expect("an A/C/G/T base has three others").0;
        Ok((position0, base, Ok((reference_id, alternates))))
    }
}
