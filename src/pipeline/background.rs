//! A model's genome-wide background on a build: the probabilities of windows drawn at random from
//! every contig, so that a window's score can be read as a **percentile** on a build without
//! labels ("higher than 99.2 % of the genome").
//!
//! `cistrack precompute --background` draws blocks of [`BLOCK_WINDOWS`] adjacent grid windows
//! uniformly without replacement from all contigs that every signal track of the build has (a
//! bigWig without a contig cannot be read there, e.g. chrM or unplaced contigs; a fixed seed, so a rerun draws the same
//! blocks), scores them through the [`Engine`] (windows without an A/C/G/T base are skipped, as
//! everywhere) until at least the requested number of windows is scored or every block is used,
//! and stores their sorted probabilities in the build's cache under the record namespace
//! [`NAMESPACE`], keyed by the engine's cache namespace (build, model id and sha256, stride and
//! inputs fingerprint): a changed model or input never reads back another's background.
//!
//! A window's percentile is the mid-rank of its probability among the background's:
//! `100 × (below + equal / 2) / n`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::genome::Region;

use super::cache::Cache;
use super::engine::Engine;
use super::regions::for_each_piece;

/// Record namespace of backgrounds in the cache.
pub const NAMESPACE: &str = "background";
/// Windows `precompute --background` scores by default.
pub const DEFAULT_WINDOWS: usize = 20_000;
/// Adjacent grid windows per drawn block (3.2 kb at the default stride): blocks keep the reads
/// of the FASTA and bigWigs sequential while spreading the sample over the whole genome.
pub const BLOCK_WINDOWS: u64 = 16;
/// Fewer background windows than this make coarse percentiles (warned about).
pub const FEW_WINDOWS: usize = 1_000;
/// Seed of the block draw.
const SEED: u64 = 0x6369_7374_7261_636b; // "cistrack"
/// Blocks scored per round before checking whether enough windows are in.
const BLOCKS_PER_ROUND: usize = 64;

/// The background of one model on one build, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Background {
    /// The engine cache namespace it belongs to (build, model, stride, inputs).
    pub variant: String,
    /// Grid stride, bp.
    pub stride: u64,
    /// Blocks drawn (of [`BLOCK_WINDOWS`] windows each; those past a contig end are shorter).
    pub blocks: usize,
    /// Windows in the drawn blocks, scored or skipped.
    pub windows_drawn: u64,
    /// FASTA contigs left out because a signal track lacks them.
    #[serde(default)]
    pub contigs_without_signal: Vec<String>,
    /// Probabilities of the scored windows, ascending.
    pub probabilities: Vec<f32>,
}

impl Background {
    /// A background from scored probabilities (any order; NaN is dropped).
    pub fn new(
        variant: &str,
        stride: u64,
        blocks: usize,
        windows_drawn: u64,
        mut probabilities: Vec<f32>,
    ) -> Self {
        probabilities.retain(|p| !p.is_nan());
        probabilities.sort_by(f32::total_cmp);
        Self {
            variant: variant.to_string(),
            stride,
            blocks,
            windows_drawn,
            contigs_without_signal: Vec::new(),
            probabilities,
        }
    }

    /// Scored windows in the background.
    pub fn len(&self) -> usize {
        self.probabilities.len()
    }

    /// Whether no window was scored.
    pub fn is_empty(&self) -> bool {
        self.probabilities.is_empty()
    }

    /// The percentile (0–100) of `probability`: the share of background windows below it, ties
    /// counted half. `None` for an empty background or a NaN probability.
    pub fn percentile(&self, probability: f32) -> Option<f32> {
        if self.is_empty() || probability.is_nan() {
            return None;
        }
        let p = &self.probabilities;
        let below = p.partition_point(|&x| x < probability);
        let at_or_below = p.partition_point(|&x| x <= probability);
        let rank = below as f64 + (at_or_below - below) as f64 / 2.0;
        Some((100.0 * rank / p.len() as f64) as f32)
    }

    /// The probability at `percentile` (0–100; nearest rank), e.g. for a threshold.
    pub fn quantile(&self, percentile: f64) -> Option<f32> {
        let n = self.probabilities.len();
        if n == 0 || !(0.0..=100.0).contains(&percentile) {
            return None;
        }
        let i = ((percentile / 100.0) * n as f64).ceil() as usize;
        Some(self.probabilities[i.clamp(1, n) - 1])
    }

    /// The stored bytes (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a background serialises; this is a bug")
    }

    /// Reads stored bytes; `None` when they are not a background (or not sorted).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let b: Self = serde_json::from_slice(bytes).ok()?;
        b.probabilities
            .windows(2)
            .all(|w| w[0] <= w[1])
            .then_some(b)
    }

    fn bytes(&self) -> usize {
        self.probabilities.len() * 4 + self.variant.len() + 64
    }

    /// The background of the engine cache namespace `variant`, if one was computed.
    pub fn load(cache: &Cache, variant: &str) -> Option<Arc<Self>> {
        Self::load_in(cache, NAMESPACE, variant)
    }

    /// Keeps the background in `cache` (memory and disk).
    pub fn store(self, cache: &Cache) -> Arc<Self> {
        self.store_in(cache, NAMESPACE)
    }

    /// A sorted sample kept under another record namespace (the variant background's).
    pub fn load_in(cache: &Cache, namespace: &str, variant: &str) -> Option<Arc<Self>> {
        cache.get_record(namespace, variant, Self::decode, Self::bytes)
    }

    /// Keeps the sample in `cache` under `namespace`.
    pub fn store_in(self, cache: &Cache, namespace: &str) -> Arc<Self> {
        let encoded = self.encode();
        let bytes = self.bytes();
        let variant = self.variant.clone();
        let value = Arc::new(self);
        cache.put_record(namespace, &variant, value.clone(), bytes, Some(encoded));
        value
    }
}

/// For output headers: `N_windows`, or `none`.
pub fn describe(background: Option<&Background>) -> String {
    background.map_or_else(|| "none".to_string(), |b| format!("{}_windows", b.len()))
}

/// Draws blocks over every contig of the engine's build and scores them until `target` windows
/// are scored (or every block is used), calling `progress` with the windows scored so far.
///
/// # Errors
///
/// What scoring fails with (inputs that cannot be read, inference).
pub fn compute(
    engine: &Arc<Engine>,
    target: usize,
    mut progress: impl FnMut(usize),
) -> Result<Background, super::engine::Error> {
    let stride = engine.stride();
    let span = BLOCK_WINDOWS * stride;
    let build = engine.build();
    let (contigs, without, blocks) = shuffled_blocks(build, span);
    let mut probabilities = Vec::with_capacity(target + span as usize);
    let (mut used, mut drawn) = (0usize, 0u64);
    for round in blocks.chunks(BLOCKS_PER_ROUND) {
        if probabilities.len() >= target {
            break;
        }
        // in genome order, so the reads of one round go forward through the files
        let mut round = round.to_vec();
        round.sort_unstable();
        let regions: Vec<Region> = round
            .iter()
            .map(|&(c, b)| {
                let contig = contigs[c as usize];
                let start = u64::from(b) * span;
                Region::new(&contig.name, start, (start + span).min(contig.length))
                    .expect("a block starts before its contig's end")
            })
            .collect();
        for_each_piece(engine, &regions, |_, _, view| {
            probabilities.extend(view.windows.iter().map(|w| w.probability));
        })?;
        used += round.len();
        drawn += regions
            .iter()
            .map(|r| r.len().div_ceil(stride))
            .sum::<u64>();
        progress(probabilities.len());
    }
    let mut background = Background::new(engine.variant(), stride, used, drawn, probabilities);
    background.contigs_without_signal = without.iter().map(|c| c.name.clone()).collect();
    Ok(background)
}

/// The contigs a background draws from, those it leaves out, and every block of `span` bases
/// on the first as `(contig index, block index)`, in a seeded random order.
#[allow(clippy::type_complexity)]
pub fn shuffled_blocks(
    build: &crate::genome::Build,
    span: u64,
) -> (
    Vec<&crate::genome::Contig>,
    Vec<&crate::genome::Contig>,
    Vec<(u32, u32)>,
) {
    let (contigs, without): (Vec<&crate::genome::Contig>, Vec<&crate::genome::Contig>) =
        build.contigs().iter().partition(|c| drawable(build, c));
    let mut blocks: Vec<(u32, u32)> = contigs
        .iter()
        .enumerate()
        .flat_map(|(c, contig)| {
            (0..contig.length.div_ceil(span)).map(move |b| (c as u32, b as u32))
        })
        .collect();
    shuffle(&mut blocks, SEED);
    (contigs, without, blocks)
}

/// Blocks of [`BLOCK_WINDOWS`] windows a background of `build` can draw at `stride` (on the
/// contigs every signal track has).
pub fn block_count(build: &crate::genome::Build, stride: u64) -> usize {
    let span = BLOCK_WINDOWS * stride;
    build
        .contigs()
        .iter()
        .filter(|c| drawable(build, c))
        .map(|c| c.length.div_ceil(span) as usize)
        .sum()
}

/// Whether a background may draw from `contig`: every signal track of the build has it.
fn drawable(build: &crate::genome::Build, contig: &crate::genome::Contig) -> bool {
    build.signals().iter().all(|s| s.covers(&contig.name))
}

/// splitmix64: a seeded stream of 64-bit numbers (deterministic across platforms and releases).
pub fn splitmix(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Fisher–Yates with [`splitmix`].
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut next = splitmix(seed);
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bg(values: &[f32]) -> Background {
        Background::new("v", 200, 1, values.len() as u64, values.to_vec())
    }

    #[test]
    fn test_percentile_is_the_mid_rank() {
        let b = bg(&[0.4, 0.1, 0.2, 0.3, 0.2]); // sorted: 0.1 0.2 0.2 0.3 0.4
        assert_eq!(b.percentile(0.05), Some(0.0));
        assert_eq!(b.percentile(0.1), Some(10.0)); // half of one of five
        assert_eq!(b.percentile(0.2), Some(40.0)); // one below, two equal
        assert_eq!(b.percentile(0.25), Some(60.0));
        assert_eq!(b.percentile(0.9), Some(100.0));
        assert_eq!(b.percentile(f32::NAN), None);
        assert_eq!(bg(&[]).percentile(0.5), None);
        // monotone in the probability
        let many = bg(&(0..1000)
            .map(|i| (i as f32 / 1000.0).powi(3))
            .collect::<Vec<_>>());
        let ps: Vec<f32> = (0..=100)
            .map(|i| many.percentile(i as f32 / 100.0).unwrap())
            .collect();
        assert!(ps.windows(2).all(|w| w[0] <= w[1]), "{ps:?}");
        assert!((many.percentile(0.125).unwrap() - 50.0).abs() < 0.2); // 0.5^3
    }

    #[test]
    fn test_quantile_inverts_the_percentile() {
        let b = bg(&(1..=100).map(|i| i as f32 / 100.0).collect::<Vec<_>>());
        assert_eq!(b.quantile(99.0), Some(0.99));
        assert_eq!(b.quantile(0.0), Some(0.01));
        assert_eq!(b.quantile(100.0), Some(1.0));
        assert_eq!(b.quantile(101.0), None);
    }

    #[test]
    fn test_encoding_round_trips_and_rejects_other_bytes() {
        let b = bg(&[0.3, f32::NAN, 0.1]);
        assert_eq!(b.probabilities, vec![0.1, 0.3]);
        assert_eq!(Background::decode(&b.encode()), Some(b.clone()));
        assert_eq!(Background::decode(b"not json"), None);
        let mut unsorted = b;
        unsorted.probabilities = vec![0.5, 0.1];
        assert_eq!(Background::decode(&unsorted.encode()), None);
    }

    #[test]
    fn test_shuffle_is_a_seeded_permutation() {
        let mut a: Vec<u32> = (0..1000).collect();
        let mut b = a.clone();
        shuffle(&mut a, 7);
        shuffle(&mut b, 7);
        assert_eq!(a, b);
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..1000).collect::<Vec<_>>());
    }
}
