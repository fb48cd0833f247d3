//! [`WindowScorer`]: the one place where annotation windows enter the model.
//!
//! Callers hand over windows already cut (sequence bytes and normalised signal bins); the
//! scorer writes them into a batch buffer taken from a fixed, circulating set and submits full
//! batches to the [`WorkerPool`]. Each window gets an id, in submission order; results come back
//! to whoever holds the pool's reply channel (the collector) tagged with those ids.
//!
//! # Why no batch of one row?
//!
//! ONNX Runtime on the CPU gives bitwise-identical outputs for a window in every batch of two
//! or more rows, whatever its neighbours and position (measured for both shipped models, batch
//! sizes 2 to 128), but a batch of one row takes another kernel path and differs by about 1e-6
//! in the logit, which can flip the 4th decimal of the output. So a batch is never submitted
//! with one row: the row is repeated under the [`PADDING`] key, whose result is dropped. Output
//! then depends neither on `--batch-size` nor on when a partly filled batch is flushed.
//!
//! # The per-build cache
//!
//! With a [`WindowCache`], [`WindowScorer::push`] looks a window up before it takes a batch
//! row: a reference window that lies on the daemon's tile grid is read from the daemon's tiles
//! (`cistrack serve`/`precompute` scores), any other window by the digest of its model input
//! (what an earlier `annotate` run stored). A hit is sent to the collector under the window's
//! id on the `hits` channel; a miss is scored and stored when its result comes back
//! ([`WindowCache::store`]). Output is the same with or without the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::track::cache::{
    DiskStore, Score, Slot, Stats, Tile, TileKey, WindowDigest, TILE_WINDOWS,
};

use crate::genome::build::Span;
use crate::model::encode::{apply_modality_mask, encode_signal_into, one_hot_into, Normaliser};
use crate::model::worker::{Done, WorkerPool};
use crate::model::{Batch, Error};

/// The model's output for one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Logit.
    pub logit: f32,
    /// Enhancer probability.
    pub probability: f32,
}

/// The key of a repeated row that pads a batch to two rows; its result is dropped.
pub const PADDING: u64 = u64::MAX;

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

/// The per-build score cache as annotation reads and writes it.
pub struct WindowCache {
    store: Arc<DiskStore>,
    stats: Arc<Stats>,
    namespace: String,
    tiles: Arc<str>,
    stride: u64,
    lead: i64,
    mask: [f32; 3],
    pending: Mutex<HashMap<u64, WindowDigest>>,
    /// Windows found on the daemon's tile grid.
    pub tile_hits: AtomicU64,
    /// Windows found by content.
    pub window_hits: AtomicU64,
}

impl std::fmt::Debug for WindowCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowCache")
            .field("store", &self.store)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl WindowCache {
    /// A cache over `store`: window scores under `namespace`, daemon tiles under `tiles`
    /// (grid of `stride`-bp cores in windows of `window` bp), for inputs with modality `mask`.
    pub fn new(
        store: DiskStore,
        stats: Arc<Stats>,
        namespace: String,
        tiles: &str,
        stride: u64,
        window: u64,
        mask: [f32; 3],
    ) -> Self {
        Self {
            store: Arc::new(store),
            stats,
            namespace,
            tiles: tiles.into(),
            stride,
            lead: ((window - stride) / 2) as i64,
            mask,
            pending: Mutex::new(HashMap::new()),
            tile_hits: AtomicU64::new(0),
            window_hits: AtomicU64::new(0),
        }
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }

    /// The store, shared (the link model keeps its gene results in the same file).
    pub fn store_shared(&self) -> Arc<DiskStore> {
        self.store.clone()
    }

    /// The store's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Records the model's result for window `id`, if it was a cache miss.
    pub fn store(&self, id: u64, score: &Score) {
        let digest = self
            .pending
            .lock()
            .expect("cache bookkeeping poisoned; this is a bug")
            .remove(&id);
        if let Some(digest) = digest {
            self.store.put_window(&self.namespace, &digest, score);
        }
    }

    /// Waits until every stored score is written.
    pub fn flush(&self) {
        self.store.flush();
    }
}

/// The cache and where its hits go.
type CacheLink = Option<(Arc<WindowCache>, Sender<(u64, Score)>)>;

/// The daemon tile last read, so that consecutive windows read it once.
type TileMemo = Option<(String, u64, Option<Tile>)>;

/// Fills batches with windows and submits them to the model workers.
pub struct WindowScorer<'p> {
    pool: &'p WorkerPool,
    free: Receiver<Batch>,
    reply: Sender<Done>,
    current: Option<Batch>,
    since: Option<Instant>,
    next_id: u64,
    batch_size: usize,
    mask: [f32; 3],
    cache: CacheLink,
    memo: TileMemo,
}

impl std::fmt::Debug for WindowScorer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowScorer")
            .field("next_id", &self.next_id)
            .field("pending", &self.pending())
            .finish()
    }
}

impl<'p> WindowScorer<'p> {
    /// A scorer filling batches of `batch_size` windows taken from `free` (each with room for
    /// at least two rows, see [`PADDING`]) and sending results to `reply`; `mask` is the
    /// build's modality mask.
    ///
    /// # Panics
    ///
    /// When `batch_size` is 0.
    pub fn new(
        pool: &'p WorkerPool,
        free: Receiver<Batch>,
        reply: Sender<Done>,
        batch_size: usize,
        mask: [f32; 3],
    ) -> Self {
        assert!(batch_size > 0, "batch size 0; this is a bug");
        Self {
            pool,
            free,
            reply,
            current: None,
            since: None,
            next_id: 0,
            batch_size,
            mask,
            cache: None,
            memo: None,
        }
    }

    /// Looks windows up in `cache` before scoring them; hits go to `hits` as `(id, score)`.
    pub fn with_cache(mut self, cache: Arc<WindowCache>, hits: Sender<(u64, Score)>) -> Self {
        self.cache = Some((cache, hits));
        self
    }

    /// A cached score for a window (daemon tile first, then content), or `None`, having
    /// noted the window's digest for [`WindowCache::store`] under `id`.
    fn lookup(
        &mut self,
        id: u64,
        sequence: &[u8],
        signals: &SignalBins,
        at: Option<(&str, i64)>,
    ) -> Option<Score> {
        let (cache, _) = self.cache.as_ref()?;
        if let Some((contig, start0)) = at {
            let core = start0 + cache.lead;
            if core >= 0 && core as u64 % cache.stride == 0 {
                let index = core as u64 / cache.stride;
                let tile = index / TILE_WINDOWS as u64;
                let fresh = !matches!(&self.memo, Some((c, t, _)) if c == contig && *t == tile);
                if fresh {
                    let key = TileKey {
                        variant: cache.tiles.clone(),
                        contig: contig.into(),
                        tile,
                    };
                    let found = cache.store.get(&key, &cache.stats).unwrap_or_else(|e| {
                        tracing::warn!("{e}; scoring without it");
                        None
                    });
                    self.memo = Some((contig.to_string(), tile, found));
                }
                if let Some((_, _, Some(t))) = &self.memo {
                    if let Slot::Scored(score) = t.slots[(index % TILE_WINDOWS as u64) as usize] {
                        cache.tile_hits.fetch_add(1, Ordering::Relaxed);
                        return Some(score);
                    }
                }
            }
        }
        let digest = WindowDigest::of(
            sequence,
            &signals.h3k27ac,
            &signals.accessibility,
            cache.mask,
        );
        match cache
            .store
            .get_window(&cache.namespace, &digest, &cache.stats)
        {
            Ok(Some(score)) => {
                cache.window_hits.fetch_add(1, Ordering::Relaxed);
                return Some(score);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("{e}; scoring without it"),
        }
        cache
            .pending
            .lock()
            .expect("cache bookkeeping poisoned; this is a bug")
            .insert(id, digest);
        None
    }

    /// Submits a batch, repeating a lone row (see [`PADDING`]).
    fn submit(&self, mut batch: Batch) -> Result<(), Error> {
        if batch.len() == 1 {
            let (window, bins) = (batch.window(), batch.bins());
            batch.push_row(PADDING);
            batch.sequence.copy_within(0..4 * window, 4 * window);
            batch.h3k27ac.copy_within(0..bins, bins);
            batch.accessibility.copy_within(0..bins, bins);
            batch.modality_mask.copy_within(0..3, 3);
        }
        self.pool.submit(0, batch, &self.reply)
    }

    /// Queues one window for the model and returns its id. The window must hold at least one
    /// A/C/G/T base (the contract does not score all-N windows). `at` is the window's contig
    /// and 0-based start when it is a window of the reference genome itself (not an allele's
    /// haplotype): such a window may be found in the daemon's tiles.
    ///
    /// # Errors
    ///
    /// [`Error::WorkersGone`] when the batches stop coming back (the collector or the workers
    /// have stopped).
    pub fn push(
        &mut self,
        sequence: &[u8],
        signals: &SignalBins,
        at: Option<(&str, i64)>,
    ) -> Result<u64, Error> {
        if self.cache.is_some() {
            let id = self.next_id;
            if let Some(score) = self.lookup(id, sequence, signals, at) {
                self.next_id += 1;
                let (_, hits) = self.cache.as_ref().expect("checked");
                hits.send((id, score)).map_err(|_| {
                    Error::WorkersGone("the annotation pipeline has stopped".into())
                })?;
                return Ok(id);
            }
        }
        let mut batch = match self.current.take() {
            Some(batch) => batch,
            None => {
                let mut batch = self.free.recv().map_err(|_| {
                    Error::WorkersGone("the annotation pipeline has stopped".into())
                })?;
                batch.clear();
                self.since = Some(Instant::now());
                batch
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        let row = batch.push_row(id);
        one_hot_into(sequence, &mut *row.sequence);
        row.h3k27ac.copy_from_slice(&signals.h3k27ac);
        row.accessibility.copy_from_slice(&signals.accessibility);
        apply_modality_mask(row, self.mask);
        if batch.len() >= self.batch_size {
            self.submit(batch)?;
        } else {
            self.current = Some(batch);
        }
        Ok(id)
    }

    /// Submits the partly filled batch, if any.
    ///
    /// # Errors
    ///
    /// [`Error::WorkersGone`] when every worker has stopped.
    pub fn flush(&mut self) -> Result<(), Error> {
        match self.current.take() {
            Some(batch) if !batch.is_empty() => self.submit(batch),
            Some(batch) => {
                self.current = Some(batch);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// How long the oldest window of the partly filled batch has waited.
    pub fn pending_for(&self) -> Duration {
        match (&self.current, self.since) {
            (Some(batch), Some(since)) if !batch.is_empty() => since.elapsed(),
            _ => Duration::ZERO,
        }
    }

    /// Windows waiting in the partly filled batch.
    pub fn pending(&self) -> usize {
        self.current.as_ref().map_or(0, Batch::len)
    }

    /// The id the next window will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }
}
