//! [`WindowScorer`]: the one place where annotation windows enter the model.
//!
//! Callers hand over windows already cut (sequence bytes and normalised signal bins); the
//! scorer gives each an id, in submission order, and queues it on the [`Engine`] — the same
//! queue, batch rules and model workers as `score` and the daemon (see
//! [`crate::pipeline::batcher`] for why a batch never has one row). Results come back to
//! whoever holds the receiving end of the scorer's [`Results`] channel (the collector), tagged
//! with those ids, in any order.
//!
//! # The per-build cache
//!
//! With a [`WindowCache`], [`WindowScorer::push`] looks a window up before it queues it: a
//! reference window that lies on the daemon's tile grid is read from the daemon's tiles
//! (`cistrack serve`/`precompute` scores), any other window by the digest of its model input
//! (what an earlier `annotate` run stored). A hit is sent to the collector at once; a miss is
//! scored and stored when its result comes back ([`WindowCache::store`]). Output is the same
//! with or without the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

use crate::error::{shared, SharedCause};
use crate::genome::build::{InputReader, Span};
use crate::genome::Contig;
use crate::model::encode::Normaliser;
use crate::pipeline::batcher::{Input, Sink};
use crate::pipeline::cache::{Cache, Score, Slot, Tile, TileKey, WindowDigest, TILE_WINDOWS};
use crate::pipeline::grid::Grid;
use crate::pipeline::inputs::EncodedWindow;
use crate::pipeline::Engine;

pub use crate::pipeline::inputs::SignalBins;

/// The model's output for one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Logit.
    pub logit: f32,
    /// Enhancer probability.
    pub probability: f32,
}

/// A window's result as the collector receives it: its id and its score, or why it failed.
pub type Outcome = (u64, Result<Score, SharedCause>);

/// Windows pushed and not yet received by the collector, at most: [`WindowScorer::push`]
/// waits beyond (about 3.6 kB each for the enhancer models' 2-kb windows).
pub const MAX_WINDOWS_IN_FLIGHT: usize = 8192;

/// The receiving end of a scorer's results. It keeps the scorer's requester alive: windows
/// queued on the engine are scored as long as it exists, even after the scorer is dropped.
pub struct Results {
    rx: Receiver<Outcome>,
    permits: Receiver<()>,
    _requester: Arc<dyn Sink>,
}

impl Results {
    /// The channel.
    pub fn receiver(&self) -> &Receiver<Outcome> {
        &self.rx
    }

    /// Tells the scorer that a result was taken from [`Results::receiver`], so that it may push
    /// another window.
    pub fn taken(&self) {
        let _ = self.permits.try_recv();
    }
}

/// Forwards the engine's results to the collector.
struct ToCollector(Sender<Outcome>);

impl Sink for ToCollector {
    fn deliver(&self, tag: u64, slot: Slot) {
        let outcome = match slot {
            Slot::Scored(score) => Ok(score),
            // the planners queue only windows with a base; the contract skips the rest
            _ => Err(shared(
                "a window without A/C/G/T bases reached the model; this is a bug",
            )),
        };
        let _ = self.0.send((tag, outcome));
    }

    fn fail(&self, tag: u64, cause: &SharedCause) {
        let _ = self.0.send((tag, Err(cause.clone())));
    }
}

/// The per-build score cache as annotation reads and writes it.
pub struct WindowCache {
    cache: Arc<Cache>,
    namespace: String,
    tiles: Arc<str>,
    grid: Grid,
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
            .field("cache", &self.cache)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl WindowCache {
    /// A cache over `cache` (which must have a disk tier to keep anything past this run):
    /// window scores under `namespace`, daemon tiles under `tiles` on `grid`, for inputs with
    /// modality `mask`.
    pub fn new(
        cache: Arc<Cache>,
        namespace: String,
        tiles: &str,
        grid: Grid,
        mask: [f32; 3],
    ) -> Self {
        Self {
            cache,
            namespace,
            tiles: tiles.into(),
            grid,
            mask,
            pending: Mutex::new(HashMap::new()),
            tile_hits: AtomicU64::new(0),
            window_hits: AtomicU64::new(0),
        }
    }

    /// Records the model's result for window `id`, if it was a cache miss.
    pub fn store(&self, id: u64, score: &Score) {
        let digest = self
            .pending
            .lock()
            .expect("cache bookkeeping poisoned; this is a bug")
            .remove(&id);
        if let Some(digest) = digest {
            self.cache.put_window(&self.namespace, &digest, score);
        }
    }

    /// Waits until every stored score is written.
    pub fn flush(&self) {
        self.cache.flush();
    }
}

/// The signal bins of the reference window `[start0, start0 + window)` of `contig` (bins of
/// `bin_size`, normalised as the model expects): what both windows of an allele get, so that
/// alt − ref is the sequence change alone.
///
/// # Errors
///
/// A bigWig read error.
pub fn reference_bins(
    signals: &mut InputReader,
    contig: &Contig,
    (start0, window, bin_size): (i64, usize, usize),
    normalisers: &[Option<Normaliser>; 2],
    span: &mut Span,
) -> crate::Result<SignalBins> {
    signals.read_signals(contig, start0, start0 + window as i64, span)?;
    let mut bins = SignalBins::default();
    bins.from_span(span, 0, window, bin_size, normalisers);
    Ok(bins)
}

/// The daemon tile last read, so that consecutive windows read it once.
type TileMemo = Option<(String, u64, Option<Arc<Tile>>)>;

/// Gives windows ids and queues them on the engine (or answers them from the cache).
pub struct WindowScorer<'e> {
    engine: &'e Engine,
    sink: Arc<dyn Sink>,
    results: Sender<Outcome>,
    permits: Sender<()>,
    next_id: u64,
    cache: Option<Arc<WindowCache>>,
    memo: TileMemo,
}

impl std::fmt::Debug for WindowScorer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowScorer")
            .field("next_id", &self.next_id)
            .finish()
    }
}

impl<'e> WindowScorer<'e> {
    /// A scorer queueing windows on `engine`; results arrive on the returned [`Results`].
    pub fn new(engine: &'e Engine) -> (Self, Results) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (permits, permits_rx) = crossbeam_channel::bounded(MAX_WINDOWS_IN_FLIGHT);
        let sink: Arc<dyn Sink> = Arc::new(ToCollector(tx.clone()));
        let results = Results {
            rx,
            permits: permits_rx,
            _requester: sink.clone(),
        };
        (
            Self {
                engine,
                sink,
                results: tx,
                permits,
                next_id: 0,
                cache: None,
                memo: None,
            },
            results,
        )
    }

    /// Looks windows up in `cache` before scoring them.
    pub fn with_cache(mut self, cache: Arc<WindowCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// A cached score for a window (daemon tile first, then content), or `None`, having
    /// noted the window's digest for [`WindowCache::store`] under `id`.
    fn lookup(
        &mut self,
        id: u64,
        sequence: &[u8],
        signals: &SignalBins,
        at: Option<(&Contig, i64)>,
    ) -> Option<Score> {
        let cache = self.cache.as_ref()?;
        if let Some(index) = at.and_then(|(_, start0)| cache.grid.index_at(start0)) {
            let contig = at.expect("checked").0.name.as_str();
            let tile = index / TILE_WINDOWS as u64;
            let fresh = !matches!(&self.memo, Some((c, t, _)) if c == contig && *t == tile);
            if fresh {
                let key = TileKey {
                    variant: cache.tiles.clone(),
                    contig: contig.into(),
                    tile,
                };
                self.memo = Some((contig.to_string(), tile, cache.cache.get(&key)));
            }
            if let Some((_, _, Some(t))) = &self.memo {
                if let Slot::Scored(score) = t.slots[(index % TILE_WINDOWS as u64) as usize] {
                    cache.tile_hits.fetch_add(1, Ordering::Relaxed);
                    return Some(score);
                }
            }
        }
        let digest = WindowDigest::of(
            sequence,
            &signals.h3k27ac,
            &signals.accessibility,
            cache.mask,
        );
        if let Some(score) = cache.cache.get_window(&cache.namespace, &digest) {
            cache.window_hits.fetch_add(1, Ordering::Relaxed);
            return Some(score);
        }
        cache
            .pending
            .lock()
            .expect("cache bookkeeping poisoned; this is a bug")
            .insert(id, digest);
        None
    }

    /// Queues one window for the model and returns its id. The window must hold at least one
    /// A/C/G/T base (the contract does not score all-N windows). `at` is the window's contig
    /// and 0-based start when it is a window of the reference genome itself (not an allele's
    /// haplotype): such a window may be found in the daemon's tiles. Waits while
    /// [`MAX_WINDOWS_IN_FLIGHT`] windows are in flight.
    pub fn push(
        &mut self,
        sequence: &[u8],
        signals: &SignalBins,
        at: Option<(&Contig, i64)>,
    ) -> u64 {
        // Err only once the collector has gone; the run is ending then
        let _ = self.permits.send(());
        let id = self.next_id;
        self.next_id += 1;
        if let Some(score) = self.lookup(id, sequence, signals, at) {
            let _ = self.results.send((id, Ok(score)));
            return id;
        }
        // the window as the planner cut it (it has read it already: no second read)
        let input = Input::Encoded(Box::new(EncodedWindow {
            sequence: sequence.to_vec(),
            signals: signals.clone(),
        }));
        self.engine.submit(Arc::downgrade(&self.sink), id, input);
        id
    }

    /// The id the next window will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }
}
