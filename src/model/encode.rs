//! Input encoding shared with `models/training` (`cistrack_training.encode`); the definition is
//! `models/CONTRACT.md`, and the golden-file tests check that both sides agree.

/// Channel of each byte in the one-hot encoding (A, C, G, T), or 4 for "all zeros".
const CHANNEL: [u8; 256] = {
    let mut table = [4u8; 256];
    table[b'A' as usize] = 0;
    table[b'a' as usize] = 0;
    table[b'C' as usize] = 1;
    table[b'c' as usize] = 1;
    table[b'G' as usize] = 2;
    table[b'g' as usize] = 2;
    table[b'T' as usize] = 3;
    table[b't' as usize] = 3;
    table
};

/// One-hot encodes `seq` into `out` laid out `[4, seq.len()]` (channels A, C, G, T first).
/// Lower-case (soft-masked) bases count as upper-case; N, IUPAC codes and anything else are all
/// zeros. Returns the number of A/C/G/T bases (0 means an all-N window).
///
/// # Examples
///
/// ```
/// let mut out = vec![0.0; 4 * 3];
/// assert_eq!(cistrack::model::encode::one_hot_into(b"aNT", &mut out), 2);
/// assert_eq!(out, [1., 0., 0., /* C */ 0., 0., 0., /* G */ 0., 0., 0., /* T */ 0., 0., 1.]);
/// ```
///
/// # Panics
///
/// When `out.len() != 4 * seq.len()`.
pub fn one_hot_into(seq: &[u8], out: &mut [f32]) -> usize {
    let len = seq.len();
    assert_eq!(
        out.len(),
        4 * len,
        "one-hot buffer must be 4 x sequence length"
    );
    out.fill(0.0);
    let mut known = 0;
    for (i, &base) in seq.iter().enumerate() {
        let channel = CHANNEL[base as usize] as usize;
        if channel < 4 {
            out[channel * len + i] = 1.0;
            known += 1;
        }
    }
    known
}

/// The signal normalisation `min(log1p(max(bin, 0) / scale), clip_max)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normaliser {
    /// Track scale (mean over covered bases unless configured).
    pub scale: f64,
    /// Upper clip after `log1p`.
    pub clip_max: f64,
}

impl Normaliser {
    /// Normalises one bin mean.
    pub fn apply(&self, bin_mean: f64) -> f32 {
        (bin_mean.max(0.0) / self.scale).ln_1p().min(self.clip_max) as f32
    }
}

/// Zero-filled bin means of per-base `values` (NaN already zeroed by the reader), normalised,
/// into `out` (`values.len() / bin_size` bins). Sums run in f64, in base order.
///
/// # Panics
///
/// When `values.len() != out.len() * bin_size`.
pub fn encode_signal_into(
    values: &[f32],
    bin_size: usize,
    normaliser: &Normaliser,
    out: &mut [f32],
) {
    assert_eq!(
        values.len(),
        out.len() * bin_size,
        "signal buffer must be bins x bin_size"
    );
    for (bin, chunk) in out.iter_mut().zip(values.chunks_exact(bin_size)) {
        let sum: f64 = chunk.iter().map(|&v| v as f64).sum();
        *bin = normaliser.apply(sum / bin_size as f64);
    }
}

/// Sets a row's `modality_mask` and zeroes the inputs of masked modalities, so that their
/// values cannot reach the model (the contract feeds a missing modality as zeros).
pub fn apply_modality_mask(row: super::RowMut<'_>, mask: [f32; 3]) {
    row.modality_mask.copy_from_slice(&mask);
    for (input, m) in [
        (row.sequence, mask[0]),
        (row.h3k27ac, mask[1]),
        (row.accessibility, mask[2]),
    ] {
        if m == 0.0 {
            input.fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_one_hot_into() {
        let seq = b"ACGTacgtNRYn-";
        let mut out = vec![9.0; 4 * seq.len()];
        assert_eq!(one_hot_into(seq, &mut out), 8);
        let l = seq.len();
        for (i, expected) in [0usize, 1, 2, 3, 0, 1, 2, 3].iter().enumerate() {
            for c in 0..4 {
                assert_eq!(
                    out[c * l + i],
                    if c == *expected { 1.0 } else { 0.0 },
                    "base {i} channel {c}"
                );
            }
        }
        for i in 8..l {
            assert!(
                (0..4).all(|c| out[c * l + i] == 0.0),
                "base {i} must be all zeros"
            );
        }
        assert_eq!(one_hot_into(b"NNNN", &mut [0.0; 16]), 0);
    }

    #[test]
    fn test_encode_signal_into() {
        let n = Normaliser {
            scale: 2.0,
            clip_max: 8.0,
        };
        let mut values = vec![0.0f32; 30];
        values[..10].fill(2.0); // mean 2 -> log1p(1)
        values[10] = 10.0; // mean 1 -> log1p(0.5)
        values[20..].fill(1e9); // clipped
        let mut out = [0.0f32; 3];
        encode_signal_into(&values, 10, &n, &mut out);
        assert_eq!(out[0], (1.0f64).ln_1p() as f32);
        assert_eq!(out[1], (0.5f64).ln_1p() as f32);
        assert_eq!(out[2], 8.0);
        assert_eq!(n.apply(-5.0), 0.0);
    }
}
