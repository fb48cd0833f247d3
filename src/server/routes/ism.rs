//! `GET /v1/builds/{build}/ism?ref=&start=&end=`: in-silico mutagenesis of a stretch of at most
//! [`MAX_ISM_BP`] bases — every base changed to each of the other three, scored as `annotate`
//! scores that SNV (see [`crate::annotate::ism`]).
//!
//! Positions are computed in the background through the model's workers and kept in the build's
//! cache (one record per position, memory and disk), so an answer that runs out of `wait` says
//! `complete: false` with the `pending` ranges, and asking again returns more, as
//! `/enhancers` does. Positions already being computed for another request are not queued twice;
//! one view is computed at a time per build (the next waits its turn), and a view nobody asks
//! for any more (`serve --ism-idle`, 20 s) is dropped, so a browser panning across a region does
//! not pile up work.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::annotate::ism::{Ism, IsmPosition, IsmSkip, BASES, MAX_ISM_BP};
use crate::annotate::scorer::{Prediction, WindowCache};
use crate::genome::Contig;
use crate::pipeline::cache::{window_namespace, Cache};
use crate::pipeline::engine::push_merged;
use crate::pipeline::Engine;

use super::super::error::ApiError;
use super::super::query::{self, IsmQuery};
use super::super::router::{json_ok, RouteResult};
use super::super::state::State;
use super::{round4, ModelJson, View};

/// How often a waiting request looks for finished positions.
const POLL: Duration = Duration::from_millis(50);

/// Mutagenesis jobs computing at once per build; the others wait their turn (a browser that
/// pans queues views, and each is thousands of model windows).
const RUNNING: usize = 1;

/// Default of `serve --ism-idle`: a job whose positions no request has asked for in this long
/// stops (waiting for its turn, or between chunks) and releases what it has not computed.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(20);

/// A position being computed: `(engine variant, contig, position)`.
type PositionKey = (String, String, u64);

/// Mutagenesis jobs of one build: which job computes each position, when each job's positions
/// were last asked for, and the turns.
#[derive(Debug, Default)]
pub struct IsmJobs {
    state: Mutex<JobsState>,
    turn: Condvar,
}

#[derive(Debug, Default)]
struct JobsState {
    next: u64,
    inflight: HashMap<PositionKey, u64>,
    asked: HashMap<u64, Instant>,
    /// Jobs waiting for their turn; the oldest starts first.
    waiting: std::collections::BTreeSet<u64>,
    running: usize,
}

impl JobsState {
    fn idle(&self, job: u64, idle: Duration) -> bool {
        self.asked.get(&job).is_none_or(|t| t.elapsed() > idle)
    }

    /// Forgets `job` and releases the positions it still holds.
    fn release(&mut self, job: u64) {
        self.inflight.retain(|_, j| *j != job);
        self.asked.remove(&job);
        self.waiting.remove(&job);
    }
}

impl IsmJobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, JobsState> {
        self.state
            .lock()
            .expect("ISM bookkeeping poisoned; this is a bug")
    }

    /// Marks `jobs` as wanted now.
    fn touch(&self, jobs: &HashSet<u64>) {
        let mut state = self.lock();
        let now = Instant::now();
        for j in jobs {
            if let Some(t) = state.asked.get_mut(j) {
                *t = now;
            }
        }
    }

    /// Jobs computing, jobs waiting their turn, positions held (for `/healthz`).
    pub fn counts(&self) -> (usize, usize, usize) {
        let state = self.lock();
        (
            state.running,
            state.asked.len() - state.running,
            state.inflight.len(),
        )
    }
}

/// The answer.
#[derive(Debug, Serialize)]
struct Answer<'a> {
    build: &'a str,
    complete: bool,
    elapsed_ms: u64,
    end: u64,
    model: ModelJson<'a>,
    /// Positions not computed yet, merged.
    pending: Vec<(u64, u64)>,
    positions: Vec<PositionJson>,
    positions_done: usize,
    positions_needed: usize,
    #[serde(rename = "ref")]
    contig: &'a str,
    start: u64,
    /// The model window, bp: each position's windows are centred on it.
    window: usize,
}

/// One position.
#[derive(Debug, Serialize)]
struct PositionJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    alt_prob: Option<BTreeMap<String, f64>>,
    base: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<BTreeMap<String, f64>>,
    /// −(mean of the three deltas): > 0 where the reference base supports the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    importance: Option<f64>,
    pos: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ref_prob: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skip: Option<&'static str>,
}

impl From<&IsmPosition> for PositionJson {
    fn from(p: &IsmPosition) -> Self {
        let base = (p.base as char).to_string();
        match &p.scores {
            Err(skip) => Self {
                alt_prob: None,
                base,
                delta: None,
                importance: None,
                pos: p.position0,
                ref_prob: None,
                skip: Some(skip.as_str()),
            },
            Ok((reference, alternates)) => {
                let by_base = |f: &dyn Fn(&Prediction) -> f32| {
                    BASES
                        .iter()
                        .zip(alternates)
                        .filter_map(|(b, a)| {
                            a.as_ref()
                                .map(|a| ((*b as char).to_string(), round4(f(a)) + 0.0))
                        })
                        .collect::<BTreeMap<_, _>>()
                };
                Self {
                    alt_prob: Some(by_base(&|a| a.probability)),
                    base,
                    delta: Some(by_base(&|a| a.probability - reference.probability)),
                    // + 0.0: no negative zero on the wire
                    importance: p.importance().map(|x| round4(x) + 0.0),
                    pos: p.position0,
                    ref_prob: Some(round4(reference.probability)),
                    skip: None,
                }
            }
        }
    }
}

/// The cache namespace of an engine's mutagenesis records.
fn namespace(engine: &Engine) -> String {
    format!("ism:{}", engine.variant())
}

fn key(contig: &str, position0: u64) -> String {
    format!("{contig}\t{position0}")
}

/// A position's record as stored on disk: its base, a status byte (0 scored, 1 `n_base`, 2
/// `all_n`), and when scored the reference window's logit and probability, then per base a
/// presence byte and the alternate window's logit and probability (little-endian f32).
fn encode(p: &IsmPosition) -> Vec<u8> {
    let mut out = vec![p.base];
    match &p.scores {
        Err(IsmSkip::NBase) => out.push(1),
        Err(IsmSkip::AllN) => out.push(2),
        Ok((r, alts)) => {
            out.push(0);
            let mut put = |x: &Prediction| {
                out.extend_from_slice(&x.logit.to_le_bytes());
                out.extend_from_slice(&x.probability.to_le_bytes());
            };
            put(r);
            for a in alts {
                match a {
                    Some(a) => {
                        put(a);
                    }
                    None => put(&Prediction {
                        logit: f32::NAN,
                        probability: f32::NAN,
                    }),
                }
            }
        }
    }
    out
}

fn decode(position0: u64, bytes: &[u8]) -> Option<IsmPosition> {
    let (&base, rest) = bytes.split_first()?;
    let (&status, rest) = rest.split_first()?;
    let scores = match status {
        1 => Err(IsmSkip::NBase),
        2 => Err(IsmSkip::AllN),
        0 if rest.len() == 5 * 8 => {
            let at = |i: usize| {
                let f = |j: usize| f32::from_le_bytes(rest[j..j + 4].try_into().expect("4 bytes"));
                Prediction {
                    logit: f(8 * i),
                    probability: f(8 * i + 4),
                }
            };
            let alts: [Option<Prediction>; 4] =
                std::array::from_fn(|i| Some(at(i + 1)).filter(|p| !p.probability.is_nan()));
            Ok((at(0), alts))
        }
        _ => return None,
    };
    Some(IsmPosition {
        position0,
        base,
        scores,
    })
}

/// A position's record, from memory or disk.
fn lookup(
    cache: &Cache,
    namespace: &str,
    contig: &str,
    position0: u64,
) -> Option<Arc<IsmPosition>> {
    cache.get_record(
        namespace,
        &key(contig, position0),
        |bytes| decode(position0, bytes),
        |_| 64,
    )
}

/// Starts job `id` computing `positions` (claimed for it by the caller) in the background,
/// after its turn (jobs start in the order they were made, whichever thread wakes first); each
/// finished position is stored in the cache and released. The job stops,
/// releasing the rest, when no request has asked for its positions in `idle`. Returns the
/// slot its error lands in.
fn spawn_job(
    engine: Arc<Engine>,
    jobs: Arc<IsmJobs>,
    (id, idle): (u64, Duration),
    contig: Contig,
    positions: Vec<u64>,
) -> Arc<Mutex<Option<String>>> {
    let failed = Arc::new(Mutex::new(None));
    let error_slot = failed.clone();
    let run = move || {
        {
            let mut state = jobs.lock();
            loop {
                if state.idle(id, idle) {
                    state.release(id);
                    // it may have been the oldest waiting: the next one's turn
                    jobs.turn.notify_all();
                    return;
                }
                if state.running < RUNNING && state.waiting.first() == Some(&id) {
                    state.waiting.remove(&id);
                    state.running += 1;
                    break;
                }
                state = jobs
                    .turn
                    .wait_timeout(state, Duration::from_millis(500))
                    .expect("ISM bookkeeping poisoned; this is a bug")
                    .0;
            }
        }
        let variant = engine.variant().to_string();
        let namespace = namespace(&engine);
        let cache = engine.cache().clone();
        let build = engine.build().clone();
        let spec = engine.spec();
        let window_cache = cache.has_lower_tiers().then(|| {
            Arc::new(WindowCache::new(
                cache.clone(),
                window_namespace(build.name(), &spec.id(), &spec.sha256),
                engine.variant(),
                engine.grid(),
                build.modality_mask(),
            ))
        });
        let result = Ism::new(&engine, window_cache).and_then(|mut ism| {
            ism.run(&contig, &positions, |done| {
                let mut state = jobs.lock();
                for p in done {
                    let bytes = encode(&p);
                    let position0 = p.position0;
                    cache.put_record(
                        &namespace,
                        &key(&contig.name, position0),
                        Arc::new(p),
                        64,
                        Some(bytes),
                    );
                    state
                        .inflight
                        .remove(&(variant.clone(), contig.name.clone(), position0));
                }
                !state.idle(id, idle)
            })
        });
        if let Err(e) = result {
            let message = crate::error::chain(&e);
            tracing::warn!(contig = %contig.name, "in-silico mutagenesis failed: {message}");
            *error_slot.lock().expect("error slot") = Some(message);
        }
        // whatever was not finished is released for the next request
        let mut state = jobs.lock();
        state.running -= 1;
        state.release(id);
        jobs.turn.notify_all();
    };
    std::thread::Builder::new()
        .name("ism".into())
        .spawn(run)
        .expect("cannot spawn a mutagenesis thread");
    failed
}

/// Answers `/ism`.
pub(in crate::server) async fn answer(state: &Arc<State>, build: &str, query: &str) -> RouteResult {
    let b = state.build(build)?;
    let q: IsmQuery = query::parse(query)?;
    let wait = state.config.wait(q.wait);
    let view = View::new(
        b,
        q.contig.as_deref(),
        q.start,
        q.end,
        state.config.max_region_bp,
    )?;
    view.at_most(MAX_ISM_BP, "in-silico mutagenesis covers")?;
    let engine = state.engine(b, q.model.as_deref()).await?;
    let _permit = state.admit()?;
    let started = Instant::now();
    let spec = engine.spec();
    let mut answer = Answer {
        build: b.build.name(),
        complete: true,
        elapsed_ms: 0,
        end: view.end,
        model: ModelJson {
            name: spec.name.as_str().into(),
            version: spec.version.as_str().into(),
            sha256: spec.sha256.as_str().into(),
        },
        pending: Vec::new(),
        positions: Vec::new(),
        positions_done: 0,
        positions_needed: 0,
        contig: view.contig,
        start: view.start,
        window: spec.window.length,
    };
    let Some(region) = view.region else {
        return json_ok(&answer);
    };
    let contig = super::region_contig(b, &region)?;
    let (start0, end0) = (region.start0(), region.end0());
    let namespace = namespace(&engine);
    let variant = engine.variant().to_string();
    // what is cached (disk reads: off the async threads), and a job for what nobody computes
    let (found, job, wanted) = {
        let (engine, jobs, contig, namespace) = (
            engine.clone(),
            b.ism.clone(),
            contig.clone(),
            namespace.clone(),
        );
        let idle = state.config.ism_idle;
        tokio::task::spawn_blocking(move || {
            let cache = engine.cache().clone();
            let found: Vec<Option<Arc<IsmPosition>>> = (start0..end0)
                .map(|p| lookup(&cache, &namespace, &contig.name, p))
                .collect();
            // the jobs computing the missing positions: others', and a new one for the rest
            let mut wanted = HashSet::new();
            let mut claimed = Vec::new();
            let id = {
                let mut st = jobs.lock();
                let id = st.next;
                for p in (start0..end0).filter(|p| found[(p - start0) as usize].is_none()) {
                    let k = (variant.clone(), contig.name.clone(), p);
                    match st.inflight.get(&k) {
                        Some(j) => {
                            wanted.insert(*j);
                        }
                        None => {
                            st.inflight.insert(k, id);
                            claimed.push(p);
                        }
                    }
                }
                if !claimed.is_empty() {
                    st.next += 1;
                    st.asked.insert(id, Instant::now());
                    st.waiting.insert(id);
                    wanted.insert(id);
                }
                id
            };
            jobs.touch(&wanted);
            let job =
                (!claimed.is_empty()).then(|| spawn_job(engine, jobs, (id, idle), contig, claimed));
            (found, job, wanted)
        })
        .await?
    };
    let mut found = found;
    let deadline = Instant::now() + wait;
    loop {
        for (i, slot) in found.iter_mut().enumerate().filter(|(_, s)| s.is_none()) {
            *slot = engine
                .cache()
                .get_memory_record(&namespace, &key(&contig.name, start0 + i as u64));
        }
        if found.iter().all(Option::is_some) {
            break;
        }
        if let Some(message) = job
            .as_ref()
            .and_then(|j| j.lock().expect("error slot").clone())
        {
            return Err(ApiError::internal(message));
        }
        if Instant::now() >= deadline {
            break;
        }
        b.ism.touch(&wanted);
        tokio::time::sleep(POLL).await;
    }
    answer.start = start0;
    answer.end = end0;
    answer.positions_needed = found.len();
    for (i, slot) in found.iter().enumerate() {
        match slot {
            Some(p) => answer.positions.push(PositionJson::from(&**p)),
            None => push_merged(
                &mut answer.pending,
                start0 + i as u64,
                start0 + i as u64 + 1,
            ),
        }
    }
    answer.positions_done = answer.positions.len();
    answer.complete = answer.pending.is_empty();
    answer.elapsed_ms = started.elapsed().as_millis() as u64;
    json_ok(&answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_records_round_trip() {
        let p = |logit: f32| Prediction {
            logit,
            probability: 1.0 / (1.0 + (-logit).exp()),
        };
        for position in [
            IsmPosition {
                position0: 7,
                base: b'C',
                scores: Ok((p(0.5), [Some(p(1.0)), None, Some(p(-2.0)), Some(p(0.25))])),
            },
            IsmPosition {
                position0: 8,
                base: b'N',
                scores: Err(IsmSkip::NBase),
            },
            IsmPosition {
                position0: 9,
                base: b'A',
                scores: Err(IsmSkip::AllN),
            },
        ] {
            assert_eq!(
                decode(position.position0, &encode(&position)),
                Some(position.clone())
            );
        }
        assert_eq!(decode(1, b"C"), None);
        assert_eq!(decode(1, b"C\x00short"), None);
    }
}
