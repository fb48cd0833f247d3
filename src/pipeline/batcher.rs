//! The one queue in front of the model workers, and the rules every batch follows.
//!
//! Whoever needs windows scored — a daemon view, `score`, `precompute`, `export`, `annotate` —
//! puts [`Work`] on the engine's queue. Each model worker takes whatever is queued, up to the
//! batch size, so a batch fills from every concurrent request (continuous batching: no timer,
//! a worker that finds one window runs it at once, and a busy worker finds a full queue).
//!
//! Work holds its requester ([`Sink`]) weakly: when every requester has gone, queued windows
//! are dropped unscored (counted as cancelled).
//!
//! # Why no batch of one row?
//!
//! ONNX Runtime on the CPU gives bitwise-identical outputs for a window in every batch of two
//! or more rows, whatever its neighbours and position (measured for both shipped models, batch
//! sizes 2 to 128), but a batch of one row takes another kernel path and differs by about 1e-6
//! in the logit, which can flip the 4th decimal of an output. So a batch is never run with one
//! row: the row is repeated under the [`PADDING`] key and that result is dropped
//! ([`pad_lone_row`]). Scores then depend neither on the batch size nor on what else was
//! queued, in every command.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::error::SharedCause;
use crate::genome::Contig;
use crate::model::onnx::ActiveDevice;
use crate::model::Batch;

use super::cache::Slot;
use super::inputs::EncodedWindow;

/// Default windows per model call on the CPU. Measured (benches/README.md): the enhancer
/// models' attention over 600 tokens runs fastest in small batches on CPU caches, and batch 4
/// scores a region about 1.4x faster than batch 64.
pub const DEFAULT_BATCH_SIZE_CPU: usize = 4;
/// Default windows per model call with CUDA, where large batches keep the GPU busy.
pub const DEFAULT_BATCH_SIZE_CUDA: usize = 128;

/// The key of a repeated row that pads a batch to two rows; its result is dropped.
pub const PADDING: u64 = u64::MAX;

/// Windows per model call: `requested`, or the device's default.
///
/// # Errors
///
/// [`crate::track::Error::InvalidBatchSize`] for 0.
pub fn batch_size(
    requested: Option<usize>,
    device: ActiveDevice,
) -> Result<usize, crate::track::Error> {
    match requested {
        Some(0) => Err(crate::track::Error::InvalidBatchSize),
        Some(n) => Ok(n),
        None => Ok(match device {
            ActiveDevice::Cpu => DEFAULT_BATCH_SIZE_CPU,
            ActiveDevice::Cuda => DEFAULT_BATCH_SIZE_CUDA,
        }),
    }
}

/// Repeats the only row of a one-row batch under [`PADDING`] (see the module docs). The batch
/// must have room for two rows.
pub fn pad_lone_row(batch: &mut Batch) {
    if batch.len() != 1 {
        return;
    }
    let (window, bins) = (batch.window(), batch.bins());
    batch.push_row(PADDING);
    batch.sequence.copy_within(0..4 * window, 4 * window);
    batch.h3k27ac.copy_within(0..bins, bins);
    batch.accessibility.copy_within(0..bins, bins);
    batch.modality_mask.copy_within(0..3, 3);
}

/// Where the results of queued windows go.
pub trait Sink: Send + Sync {
    /// Window `tag` is done: scored, or skipped (no A/C/G/T base).
    fn deliver(&self, tag: u64, slot: Slot);
    /// Reading inputs or inference failed for a batch holding window `tag`.
    fn fail(&self, tag: u64, cause: &SharedCause);
}

/// What a worker must do to get a window's model input.
#[derive(Debug)]
pub enum Input {
    /// A window of the reference genome: the worker reads and encodes it.
    Genome {
        /// The contig.
        contig: Contig,
        /// 0-based window start (may be negative near the contig start).
        start0: i64,
    },
    /// A window the caller cut (an allele's haplotype).
    Encoded(Box<EncodedWindow>),
}

impl Input {
    /// The contig and window start of a genome window.
    pub fn genome(&self) -> Option<(&Contig, i64)> {
        match self {
            Input::Genome { contig, start0 } => Some((contig, *start0)),
            Input::Encoded(_) => None,
        }
    }
}

/// One window on the queue.
pub struct Work {
    /// Its requester; dropped unscored when gone.
    pub sink: Weak<dyn Sink>,
    /// The requester's name for the window.
    pub tag: u64,
    /// Its input.
    pub input: Input,
}

/// A window taken from the queue, its requester still there.
pub struct Taken {
    /// The requester.
    pub sink: Arc<dyn Sink>,
    /// The requester's name for the window.
    pub tag: u64,
    /// Its input.
    pub input: Input,
}

/// The sending side of the queue: unbounded, with a count of what waits (for admission
/// control and metrics). Dropping it closes the queue; workers end once it is drained.
pub struct Queue {
    tx: Sender<Work>,
    queued: Arc<AtomicUsize>,
}

/// The receiving side, one clone per worker.
#[derive(Clone)]
pub struct Receiving {
    rx: Receiver<Work>,
    queued: Arc<AtomicUsize>,
}

impl Queue {
    /// A new queue and its receiving side.
    pub fn new() -> (Self, Receiving) {
        let (tx, rx) = unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        (
            Self {
                tx,
                queued: queued.clone(),
            },
            Receiving { rx, queued },
        )
    }

    /// Windows waiting.
    pub fn len(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues windows.
    pub fn push(&self, work: impl IntoIterator<Item = Work>) {
        for w in work {
            self.queued.fetch_add(1, Ordering::Relaxed);
            self.tx
                .send(w)
                .expect("model workers stopped; this is a bug");
        }
    }
}

impl Receiving {
    /// Waits for work, then takes what is queued up to `max` windows. Windows whose requesters
    /// have gone are dropped and counted in `cancelled`. `None` once the queue is closed and
    /// drained.
    pub fn take(&self, max: usize, cancelled: &AtomicU64) -> Option<Vec<Taken>> {
        let mut taken = Vec::with_capacity(max);
        let accept = |w: Work, taken: &mut Vec<Taken>| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            match w.sink.upgrade() {
                Some(sink) => taken.push(Taken {
                    sink,
                    tag: w.tag,
                    input: w.input,
                }),
                None => {
                    cancelled.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        while taken.is_empty() {
            accept(self.rx.recv().ok()?, &mut taken);
            while taken.len() < max {
                match self.rx.try_recv() {
                    Ok(w) => accept(w, &mut taken),
                    Err(_) => break,
                }
            }
        }
        Some(taken)
    }
}
