//! Model inputs of one window: read from a span of the build (FASTA + signal tracks) or handed
//! over already cut (an allele's haplotype), and encoded into a batch row.

use crate::genome::build::Span;
use crate::genome::Build;
use crate::model::encode::{apply_modality_mask, encode_signal_into, one_hot_into, Normaliser};
use crate::model::{Modality, ModelSpec, RowMut};

/// Normalised signal bins of one window (shared by a variant's reference and alternate
/// windows).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalBins {
    /// H3K27ac bins.
    pub h3k27ac: Vec<f32>,
    /// Accessibility bins.
    pub accessibility: Vec<f32>,
}

impl SignalBins {
    /// Bins the per-base signal of `span` over `[offset, offset + window)` (zeros for a
    /// modality without a normaliser, i.e. without a track).
    pub fn from_span(
        &mut self,
        span: &Span,
        offset: usize,
        window: usize,
        bin_size: usize,
        normalisers: &[Option<Normaliser>; 2],
    ) {
        let bins = window / bin_size;
        for (values, out, normaliser) in [
            (&span.h3k27ac, &mut self.h3k27ac, normalisers[0]),
            (&span.accessibility, &mut self.accessibility, normalisers[1]),
        ] {
            out.clear();
            out.resize(bins, 0.0);
            if let Some(n) = normaliser {
                encode_signal_into(&values[offset..offset + window], bin_size, &n, out);
            }
        }
    }
}

/// A window cut by the caller: its bases (as in the FASTA, or an allele's haplotype) and its
/// normalised signal bins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodedWindow {
    /// Bases, `window` long.
    pub sequence: Vec<u8>,
    /// Signal bins.
    pub signals: SignalBins,
}

impl EncodedWindow {
    /// Writes the window into a batch row with `mask` applied; returns the number of A/C/G/T
    /// bases (0: an all-N window that must not be scored).
    pub fn encode_into(&self, mask: [f32; 3], row: RowMut<'_>) -> usize {
        let known = one_hot_into(&self.sequence, &mut *row.sequence);
        row.h3k27ac.copy_from_slice(&self.signals.h3k27ac);
        row.accessibility
            .copy_from_slice(&self.signals.accessibility);
        apply_modality_mask(row, mask);
        known
    }
}

/// Encodes the window starting at `window_start0` of `span` into a batch row, with `mask`
/// applied (masked modalities zeroed). Returns the number of A/C/G/T bases (0: an all-N window
/// that must not be scored).
pub fn encode_window(
    span: &Span,
    window_start0: i64,
    bin_size: usize,
    normalisers: &[Option<Normaliser>; 2],
    mask: [f32; 3],
    row: RowMut<'_>,
) -> usize {
    let offset = (window_start0 - span.start0) as usize;
    let length = row.sequence.len() / 4;
    let known = one_hot_into(&span.sequence[offset..offset + length], &mut *row.sequence);
    for (values, out, normaliser) in [
        (&span.h3k27ac, &mut *row.h3k27ac, normalisers[0]),
        (&span.accessibility, &mut *row.accessibility, normalisers[1]),
    ] {
        match normaliser {
            Some(n) => encode_signal_into(&values[offset..offset + length], bin_size, &n, out),
            None => out.fill(0.0),
        }
    }
    apply_modality_mask(row, mask);
    known
}

/// The normalisers of a build's two signal inputs for a model (`None` for a masked modality).
pub fn normalisers(build: &Build, spec: &ModelSpec) -> [Option<Normaliser>; 2] {
    [Modality::H3k27ac, Modality::Accessibility].map(|m| {
        build.signal(m).map(|s| Normaliser {
            scale: s.scale,
            clip_max: spec.clip_max,
        })
    })
}
