//! The enhancer models' input batch ([`Batch`], [`RowMut`]), their outputs ([`Predictions`])
//! and the [`Predictor`] trait that turns one into the other.

use super::{Error, ModelSpec};

/// A batch of encoded windows in the enhancer models' input layout, reused between calls.
#[derive(Debug, Clone)]
pub struct Batch {
    len: usize,
    keys: Vec<u64>,
    capacity: usize,
    window: usize,
    bins: usize,
    /// `[capacity, 4, window]`, channels A, C, G, T.
    pub sequence: Vec<f32>,
    /// `[capacity, bins]`.
    pub h3k27ac: Vec<f32>,
    /// `[capacity, bins]`.
    pub accessibility: Vec<f32>,
    /// `[capacity, 3]`.
    pub modality_mask: Vec<f32>,
}

/// Mutable views of one row of a [`Batch`].
pub struct RowMut<'a> {
    /// `[4, window]`.
    pub sequence: &'a mut [f32],
    /// `[bins]`.
    pub h3k27ac: &'a mut [f32],
    /// `[bins]`.
    pub accessibility: &'a mut [f32],
    /// `[3]`.
    pub modality_mask: &'a mut [f32],
}

impl Batch {
    /// An empty batch holding up to `capacity` windows of `window` bases and `bins` bins.
    pub fn new(capacity: usize, window: usize, bins: usize) -> Self {
        Self {
            len: 0,
            keys: Vec::with_capacity(capacity),
            capacity,
            window,
            bins,
            sequence: vec![0.0; capacity * 4 * window],
            h3k27ac: vec![0.0; capacity * bins],
            accessibility: vec![0.0; capacity * bins],
            modality_mask: vec![0.0; capacity * 3],
        }
    }

    /// For a model's window geometry.
    pub fn for_spec(spec: &ModelSpec, capacity: usize) -> Self {
        Self::new(capacity, spec.window.length, spec.window.bins)
    }

    /// Windows in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more rows fit.
    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    /// Maximum rows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Window length in bases.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Bins per window.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Empties the batch (buffers are kept).
    pub fn clear(&mut self) {
        self.len = 0;
        self.keys.clear();
    }

    /// The caller's key of each row, in row order.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// Appends a row with the caller's `key` and returns it for filling (contents are stale
    /// until written).
    ///
    /// # Panics
    ///
    /// When the batch is full.
    pub fn push_row(&mut self, key: u64) -> RowMut<'_> {
        assert!(self.len < self.capacity, "batch is full; this is a bug");
        let i = self.len;
        self.len += 1;
        self.keys.push(key);
        self.row_mut(i)
    }

    /// Row `i` for writing.
    pub fn row_mut(&mut self, i: usize) -> RowMut<'_> {
        let (w, b) = (4 * self.window, self.bins);
        RowMut {
            sequence: &mut self.sequence[i * w..(i + 1) * w],
            h3k27ac: &mut self.h3k27ac[i * b..(i + 1) * b],
            accessibility: &mut self.accessibility[i * b..(i + 1) * b],
            modality_mask: &mut self.modality_mask[i * 3..(i + 1) * 3],
        }
    }

    /// Drops the last row (used when a window turns out not to be scorable).
    pub fn pop_row(&mut self) {
        if self.len > 0 {
            self.len -= 1;
            self.keys.pop();
        }
    }
}

/// Model outputs for a batch, one entry per row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    /// Logits.
    pub logit: Vec<f32>,
    /// Probabilities.
    pub probability: Vec<f32>,
    /// Attention share per modality (sequence, h3k27ac, accessibility).
    pub modality_share: Vec<[f32; 3]>,
}

/// Something that turns a [`Batch`] into [`Predictions`].
///
/// # Why `&mut self`?
///
/// ONNX Runtime's `Session::run` takes `&mut self`; a predictor is owned by one worker thread.
pub trait Predictor: Send {
    /// Runs the model on the first `batch.len()` rows.
    ///
    /// # Errors
    ///
    /// [`Error::Inference`].
    fn predict(&mut self, batch: &Batch) -> Result<Predictions, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_batch_rows() {
        let mut b = Batch::new(2, 20, 2);
        assert!(b.is_empty());
        b.push_row(7).h3k27ac[1] = 3.0;
        let row = b.push_row(9);
        row.sequence[79] = 1.0;
        assert!(b.is_full());
        assert_eq!(b.h3k27ac[1], 3.0);
        assert_eq!(b.sequence[2 * 80 - 1], 1.0);
        assert_eq!(b.keys(), [7, 9]);
        b.pop_row();
        assert_eq!((b.len(), b.keys()), (1, &[7][..]));
    }
}
