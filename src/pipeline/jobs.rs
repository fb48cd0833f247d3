//! Tile jobs: the computation of some slots of one tile, shared by every requester of that
//! tile. Requesters hold a job by `Arc`, the queued windows by `Weak` (see [`super::batcher`]).

use std::sync::{Arc, Mutex};

use super::batcher::Sink;
use super::cache::{Cache, Slot, TileKey};
use crate::error::SharedCause;

/// The computation of some slots of one tile, shared by every requester of that tile.
pub(super) struct TileJob {
    pub(super) key: TileKey,
    /// The slots this job computes.
    pub(super) slots: Vec<usize>,
    pub(super) state: Mutex<JobState>,
    /// Becomes true when every slot is done or the job failed.
    pub(super) done: tokio::sync::watch::Sender<bool>,
    pub(super) cache: Arc<Cache>,
}

/// What a job has computed so far.
#[derive(Default)]
pub(super) struct JobState {
    pub(super) remaining: usize,
    pub(super) results: Vec<(usize, Slot)>,
    pub(super) error: Option<SharedCause>,
    pub(super) merged: bool,
}

impl Sink for TileJob {
    fn deliver(&self, slot: u64, value: Slot) {
        self.record(slot as usize, value);
    }

    fn fail(&self, _slot: u64, cause: &SharedCause) {
        TileJob::fail(self, cause);
    }
}

impl TileJob {
    fn record(&self, slot: usize, value: Slot) {
        let mut state = self
            .state
            .lock()
            .expect("tile job lock poisoned; this is a bug");
        state.results.push((slot, value));
        state.remaining -= 1;
        if state.remaining == 0 {
            self.cache.merge(&self.key, &state.results, true);
            state.merged = true;
            drop(state);
            self.done.send_replace(true);
        }
    }

    fn fail(&self, cause: &SharedCause) {
        let mut state = self
            .state
            .lock()
            .expect("tile job lock poisoned; this is a bug");
        if state.error.is_none() {
            state.error = Some(cause.clone());
        }
        drop(state);
        self.done.send_replace(true);
    }
}

impl Drop for TileJob {
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .expect("tile job lock poisoned; this is a bug");
        if !state.merged && !state.results.is_empty() {
            // Cancelled part-way: keep what was computed.
            self.cache.merge(&self.key, &state.results, true);
        }
    }
}
