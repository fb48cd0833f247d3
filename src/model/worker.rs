//! A pool of model worker threads, each owning one [`Predictor`] (one ONNX Runtime session).
//!
//! Callers submit [`Batch`]es with a tag and a reply channel; any free worker runs it and sends
//! the batch back (for reuse) with its result. The job queue is bounded so that producers wait
//! instead of piling batches up in memory.

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::{Batch, Error, Predictions, Predictor};

/// A finished job.
#[derive(Debug)]
pub struct Done {
    /// The caller's tag.
    pub tag: u64,
    /// The batch, returned for reuse.
    pub batch: Batch,
    /// The model outputs.
    pub result: Result<Predictions, Error>,
}

struct Job {
    tag: u64,
    batch: Batch,
    reply: Sender<Done>,
}

/// Worker threads, each with its own predictor.
pub struct WorkerPool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.threads.len())
            .finish()
    }
}

impl WorkerPool {
    /// Starts one thread per predictor. The queue holds `queue` batches besides those running.
    ///
    /// # Panics
    ///
    /// When `predictors` is empty.
    pub fn new<P: Predictor + 'static>(predictors: Vec<P>, queue: usize) -> Self {
        assert!(
            !predictors.is_empty(),
            "a worker pool needs at least one predictor; this is a bug"
        );
        let (tx, rx) = bounded::<Job>(queue.max(1));
        let threads = predictors
            .into_iter()
            .enumerate()
            .map(|(i, predictor)| {
                let rx: Receiver<Job> = rx.clone();
                std::thread::Builder::new()
                    .name(format!("model-worker-{i}"))
                    .spawn(move || run(predictor, rx))
                    .expect("cannot spawn a model worker thread; this is a bug")
            })
            .collect();
        Self {
            jobs: Some(tx),
            threads,
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// Queues a batch; blocks while the queue is full.
    ///
    /// # Errors
    ///
    /// [`Error::WorkersGone`] when every worker has stopped.
    pub fn submit(&self, tag: u64, batch: Batch, reply: &Sender<Done>) -> Result<(), Error> {
        let jobs = self
            .jobs
            .as_ref()
            .expect("pool used after shutdown; this is a bug");
        jobs.send(Job {
            tag,
            batch,
            reply: reply.clone(),
        })
        .map_err(|_| Error::WorkersGone("the job queue is closed".into()))
    }
}

fn run<P: Predictor>(mut predictor: P, jobs: Receiver<Job>) {
    for job in jobs {
        let result = predictor.predict(&job.batch);
        // The requester may have gone away; its batch is simply dropped then.
        let _ = job.reply.send(Done {
            tag: job.tag,
            batch: job.batch,
            result,
        });
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
