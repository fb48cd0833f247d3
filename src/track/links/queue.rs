//! Genes wanted by every requester, computed in shared batches: [`LinkEngine::genes`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError, Weak};
use std::time::Duration;

use crate::error::{shared, Cause, SharedCause};
use crate::genome::genes::Tss;
use crate::genome::Contig;

use super::codec::{decode_gene, encode_gene, gene_bytes};
use super::{Error, GeneKey, GeneLinks, LinkEngine, LinksView, Prepared, State, GENE_BATCH};

/// What requesters share, each briefly: genes being computed, genes waiting (finished genes
/// are records of the build's cache).
#[derive(Default)]
pub(super) struct Shared {
    /// One slot per gene wanted and not finished; requesters of the same gene share it (they
    /// hold it; a slot nobody holds any more is a gene nobody waits for).
    inflight: HashMap<GeneKey, Weak<GeneSlot>>,
    /// Genes to compute, from every requester, first come first served.
    waiting: VecDeque<Wanted>,
}

/// A gene to compute.
struct Wanted {
    key: GeneKey,
    contig: Contig,
    tss: Tss,
    slot: Weak<GeneSlot>,
}

/// The result of one gene, for everyone who asked for it.
#[derive(Default)]
struct GeneSlot {
    done: Mutex<Option<Result<Arc<GeneLinks>, SharedCause>>>,
    ready: Condvar,
}

impl GeneSlot {
    fn finish(&self, result: Result<Arc<GeneLinks>, SharedCause>) {
        *self.done.lock().expect("gene slot poisoned; this is a bug") = Some(result);
        self.ready.notify_all();
    }

    fn result(&self) -> Option<Result<Arc<GeneLinks>, SharedCause>> {
        self.done
            .lock()
            .expect("gene slot poisoned; this is a bug")
            .clone()
    }

    /// Waits up to `timeout` for the result.
    fn wait(&self, timeout: Duration) {
        let done = self.done.lock().expect("gene slot poisoned; this is a bug");
        if done.is_none() {
            let _ = self.ready.wait_timeout(done, timeout);
        }
    }
}

impl LinkEngine {
    /// The links of the genes `near` (TSS records of `contig`), whole, in the same order:
    /// from the cache, or computed. `keep` is polled between gene batches; when it returns
    /// false the wait stops and the genes not finished are `pending` (a gene nobody else waits
    /// for is then dropped from the queue).
    ///
    /// # Concurrency: one batch for every requester
    ///
    /// Genes missing from the cache go on one queue shared by every requester (a gene wanted by
    /// several is queued once and they share its result). Whoever takes the model (the
    /// *combiner*) computes up to [`GENE_BATCH`] queued genes of one contig at once, its own or
    /// anyone else's, with their elements embedded in batches; the others wait for their genes
    /// and take the model in turn while some of theirs are unfinished.
    ///
    /// # Errors
    ///
    /// [`Error::Failed`] when inputs cannot be read or the model fails.
    pub fn genes(
        &self,
        contig: &Contig,
        near: &[Tss],
        keep: impl Fn() -> bool,
    ) -> Result<LinksView, Error> {
        let keys: Vec<GeneKey> = near
            .iter()
            .map(|t| (contig.name.clone(), t.position0, t.id.clone()))
            .collect();
        // the cache (memory, then disk), outside any lock of the engine
        let mut results: Vec<Option<Arc<GeneLinks>>> = keys
            .iter()
            .map(|key| {
                self.cache.get_record(
                    &self.namespace,
                    &self.record_key(key),
                    |bytes| decode_gene(bytes, &contig.name),
                    gene_bytes,
                )
            })
            .collect();
        // the rest: join a gene already queued, or queue it
        let mut slots: Vec<(usize, Arc<GeneSlot>)> = Vec::new();
        {
            let mut shared = self.shared();
            for (i, key) in keys.iter().enumerate() {
                if results[i].is_some() {
                    continue;
                }
                // finished since the lookup above (a gene is stored before its slot is
                // released, both under this lock)
                if let Some(g) = self.memory_gene(key) {
                    results[i] = Some(g);
                    continue;
                }
                let slot = match shared.inflight.get(key).and_then(Weak::upgrade) {
                    Some(slot) => slot,
                    None => {
                        let slot = Arc::new(GeneSlot::default());
                        shared.inflight.insert(key.clone(), Arc::downgrade(&slot));
                        shared.waiting.push_back(Wanted {
                            key: key.clone(),
                            contig: contig.clone(),
                            tss: near[i].clone(),
                            slot: Arc::downgrade(&slot),
                        });
                        slot
                    }
                };
                slots.push((i, slot));
            }
        }
        let computed = slots.len();
        let mut pending = Vec::new();
        loop {
            slots.retain(|(i, slot)| match slot.result() {
                Some(Ok(g)) => {
                    results[*i] = Some(g);
                    false
                }
                _ => true,
            });
            if let Some(Err(message)) = slots
                .iter()
                .find_map(|(_, s)| s.result().filter(Result::is_err))
            {
                return Err(Error::Failed(message));
            }
            if slots.is_empty() {
                break;
            }
            if !keep() {
                pending.extend(
                    slots
                        .iter()
                        .map(|(i, _)| (near[*i].name.clone(), near[*i].position0)),
                );
                break;
            }
            match self.state.try_lock() {
                Ok(mut state) => self.combine(&mut state),
                Err(TryLockError::WouldBlock) => slots[0].1.wait(Duration::from_millis(20)),
                Err(TryLockError::Poisoned(_)) => {
                    return Err(Error::Failed(shared(
                        "link model state poisoned by an earlier failure",
                    )))
                }
            }
        }
        Ok(LinksView {
            genes: results.into_iter().flatten().collect(),
            computed: computed - pending.len(),
            pending,
            sequence_masked: !self.build.contigs().has_sequence(&contig.name),
        })
    }

    /// A finished gene in the cache's memory.
    fn memory_gene(&self, key: &GeneKey) -> Option<Arc<GeneLinks>> {
        self.cache
            .get_memory_record(&self.namespace, &self.record_key(key))
    }

    pub(super) fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .expect("link cache lock poisoned; this is a bug")
    }

    /// Computes one batch of queued genes (anyone's), storing and handing out the results.
    /// Genes whose requesters have all gone (they stopped waiting) are dropped unscored.
    fn combine(&self, state: &mut State) {
        let batch: Vec<Wanted> = {
            let mut shared = self.shared();
            let mut batch: Vec<Wanted> = Vec::with_capacity(GENE_BATCH);
            while batch.len() < GENE_BATCH {
                let Some(w) = shared.waiting.pop_front() else {
                    break;
                };
                if w.slot.strong_count() == 0 {
                    if shared
                        .inflight
                        .get(&w.key)
                        .is_some_and(|s| s.strong_count() == 0)
                    {
                        shared.inflight.remove(&w.key);
                    }
                } else if batch
                    .first()
                    .is_some_and(|b| b.contig.name != w.contig.name)
                {
                    // one contig per batch: put it back for the next one
                    shared.waiting.push_front(w);
                    break;
                } else {
                    batch.push(w);
                }
            }
            batch
        };
        let Some(contig) = batch.first().map(|w| w.contig.clone()) else {
            return;
        };
        let outcome = batch
            .iter()
            .map(|w| self.prepare(state, &contig, &w.tss))
            .collect::<Result<Vec<Prepared>, _>>()
            .and_then(|prepared| self.run(state, &contig, prepared));
        let mut shared = self.shared();
        match outcome {
            Ok(genes) => {
                for (w, g) in batch.iter().zip(genes) {
                    let g = Arc::new(g);
                    self.cache.put_record(
                        &self.namespace,
                        &self.record_key(&w.key),
                        g.clone(),
                        gene_bytes(&g),
                        Some(encode_gene(&g)),
                    );
                    shared.inflight.remove(&w.key);
                    self.generation
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(slot) = w.slot.upgrade() {
                        slot.finish(Ok(g));
                    }
                }
            }
            Err(e) => {
                let cause = SharedCause::from(Cause::from(e));
                for w in &batch {
                    // a failed gene is computed afresh by whoever asks next
                    shared.inflight.remove(&w.key);
                    if let Some(slot) = w.slot.upgrade() {
                        slot.finish(Err(cause.clone()));
                    }
                }
            }
        }
    }
}
