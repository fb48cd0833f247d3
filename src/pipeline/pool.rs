//! Model sessions shared by several engines of one model.
//!
//! The daemon starts one engine per model and cell group (`group=`): the groups read different
//! accessibility but run the same model, so they share its ONNX Runtime sessions instead of
//! loading a set each (a session holds the graph and its activation arena, tens of MB on the
//! CPU). Each engine keeps its own worker threads, queue and view state; a worker borrows a free
//! session for one batch. On the CPU this also keeps groups scored side by side (`group=*`)
//! from running several sessions that each want every core.

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::model::onnx::ActiveDevice;
use crate::model::{Batch, Error, Predictions, Predictor};

/// Sessions of one model, lent to the workers of every engine that runs it.
pub struct PredictorPool {
    slots: Vec<Mutex<Box<dyn Predictor>>>,
    device: ActiveDevice,
}

impl std::fmt::Debug for PredictorPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictorPool")
            .field("sessions", &self.slots.len())
            .field("device", &self.device)
            .finish()
    }
}

impl PredictorPool {
    /// A pool of `predictors` (at least one), running on `device` (as [`ort_predictors`]
    /// returns them).
    ///
    /// [`ort_predictors`]: super::engine::ort_predictors
    ///
    /// # Panics
    ///
    /// When `predictors` is empty.
    pub fn new(predictors: Vec<Box<dyn Predictor>>, device: ActiveDevice) -> Arc<Self> {
        assert!(
            !predictors.is_empty(),
            "a pool needs a predictor; this is a bug"
        );
        Arc::new(Self {
            slots: predictors.into_iter().map(Mutex::new).collect(),
            device,
        })
    }

    /// Where the sessions run.
    pub fn device(&self) -> ActiveDevice {
        self.device
    }

    /// One predictor per session for one engine's workers: worker `i` prefers session `i` and
    /// takes any other that is free when it is busy.
    pub fn handles(self: &Arc<Self>) -> Vec<Box<dyn Predictor>> {
        (0..self.slots.len())
            .map(|home| {
                Box::new(Pooled {
                    pool: self.clone(),
                    home,
                }) as Box<dyn Predictor>
            })
            .collect()
    }

    /// A free session, looking from `home` on; `home`'s, waiting for it, when all are busy.
    fn borrow(&self, home: usize) -> MutexGuard<'_, Box<dyn Predictor>> {
        let n = self.slots.len();
        for i in 0..n {
            match self.slots[(home + i) % n].try_lock() {
                Ok(guard) => return guard,
                // a worker that panicked mid-batch leaves the session as usable as before
                Err(TryLockError::Poisoned(e)) => return e.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.slots[home]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A worker's handle on a [`PredictorPool`].
struct Pooled {
    pool: Arc<PredictorPool>,
    home: usize,
}

impl Predictor for Pooled {
    fn predict(&mut self, batch: &Batch) -> Result<Predictions, Error> {
        self.pool.borrow(self.home).predict(batch)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;

    use super::*;

    /// Counts its calls; the first call of session 0 waits at `gate` (if any) so a test can
    /// hold that session busy.
    struct Counting {
        id: usize,
        calls: Arc<[AtomicUsize; 2]>,
        gate: Option<Arc<Barrier>>,
    }

    impl Predictor for Counting {
        fn predict(&mut self, batch: &Batch) -> Result<Predictions, Error> {
            self.calls[self.id].fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = self.gate.take() {
                gate.wait(); // the other thread knows session 0 is taken
                gate.wait(); // ... and has run its batch
            }
            Ok(Predictions {
                probability: vec![self.id as f32; batch.len()],
                ..Predictions::default()
            })
        }
    }

    #[test]
    fn busy_session_sends_the_batch_to_a_free_one() {
        let calls: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let gate = Arc::new(Barrier::new(2));
        let pool = PredictorPool::new(
            vec![
                Box::new(Counting {
                    id: 0,
                    calls: calls.clone(),
                    gate: Some(gate.clone()),
                }),
                Box::new(Counting {
                    id: 1,
                    calls: calls.clone(),
                    gate: None,
                }),
            ],
            ActiveDevice::Cpu,
        );
        assert_eq!(pool.slots.len(), 2);
        // two engines' workers, both preferring session 0
        let mut first = pool.handles().remove(0);
        let mut second = pool.handles().remove(0);
        let mut batch = Batch::new(1, 20, 2);
        batch.push_row(0);
        let holder = std::thread::spawn(move || {
            let mut batch = Batch::new(1, 20, 2);
            batch.push_row(0);
            first.predict(&batch).unwrap().probability
        });
        gate.wait();
        let answer = second.predict(&batch).unwrap();
        gate.wait();
        assert_eq!(answer.probability, [1.0], "session 0 was busy");
        assert_eq!(holder.join().unwrap(), [0.0]);
        assert_eq!(calls[0].load(Ordering::SeqCst), 1);
        assert_eq!(calls[1].load(Ordering::SeqCst), 1);
        // free again: each handle goes to its own session
        assert_eq!(second.predict(&batch).unwrap().probability, [0.0]);
    }
}
