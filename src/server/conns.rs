//! Connection hygiene for the accept loop.
//!
//! Every accepted connection is registered with the time it last finished a request (or was
//! accepted) and the number of requests it has in flight. From that:
//!
//! - **a cap** (`--max-connections`, lowered to fit the open-file limit): a connection accepted
//!   at the cap closes the longest-idle connection (no request in flight) to make room, so a
//!   flood of idle or slow clients cannot lock out a health probe; if every connection is busy,
//!   the new one is closed instead;
//! - **an idle timeout** (`--idle-timeout`): a keep-alive connection with no request in flight
//!   for that long is closed (a sweep once a second);
//! - **accept errors**: running out of descriptors (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`)
//!   closes the longest-idle connection and pauses accepting (10 ms, doubling to 1 s), instead
//!   of retrying in a busy loop; the warning is logged at most once per 10 s with a count.
//!
//! Reading the request head is bounded by hyper's header-read timeout (`--header-timeout`),
//! which [`super::serve`] sets together with a timer; it also closes a connection that sends
//! nothing at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default time a client has to send a complete request head.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a keep-alive connection may sit idle between requests.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Descriptors kept free for everything else (cache files, models, logs, track files).
const FD_RESERVE: u64 = 64;
/// Longest pause after an accept error.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// Accept-error warnings are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// One connection's state, shared by its task, its requests and the registry.
#[derive(Debug)]
pub struct Slot {
    in_flight: AtomicUsize,
    idle_since_ms: AtomicU64,
    closing: AtomicBool,
    close: tokio::sync::Notify,
}

impl Slot {
    /// No request in flight and not already asked to close: the connection may be closed.
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && !self.closing.load(Ordering::SeqCst)
    }

    /// Resolves once the registry has asked this connection to close.
    pub async fn closed(&self) {
        self.close.notified().await;
    }
}

/// Why the daemon closed connections itself (counters for `/metrics`).
#[derive(Debug, Default)]
pub struct Counts {
    /// Closed after `--idle-timeout` without a request.
    pub idle: AtomicU64,
    /// Closed to make room for a newer connection (cap or descriptor limit reached).
    pub evicted: AtomicU64,
    /// New connections closed at once because every open one had a request in flight.
    pub rejected: AtomicU64,
    /// `accept` failures.
    pub accept_errors: AtomicU64,
}

/// The registry of open connections.
#[derive(Debug)]
pub struct Connections {
    max: usize,
    idle_timeout: Duration,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    /// What the daemon closed, and why.
    pub counts: Counts,
}

/// Keeps a connection registered; dropping it (the connection task ended) unregisters it.
#[derive(Debug)]
pub struct Registered {
    registry: Arc<Connections>,
    id: u64,
    slot: Arc<Slot>,
}

impl Registered {
    /// The connection's slot.
    pub fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// Marks a request in flight on its connection until dropped (after the response body ends).
#[derive(Debug)]
pub struct InFlight {
    slot: Arc<Slot>,
    epoch: Instant,
}

impl InFlight {
    /// Starts a request on `slot`'s connection.
    pub fn begin(slot: &Arc<Slot>, registry: &Connections) -> Self {
        slot.in_flight.fetch_add(1, Ordering::SeqCst);
        Self {
            slot: slot.clone(),
            epoch: registry.epoch,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.slot
            .idle_since_ms
            .store(millis(self.epoch), Ordering::SeqCst);
        self.slot.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Connections {
    /// A registry allowing `max` connections (lowered to the open-file limit less a reserve).
    pub fn new(max: usize, idle_timeout: Duration) -> Self {
        let max = max.max(1);
        let fitted = match open_file_limit() {
            Some(limit) => {
                let room = usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
                let fitted = max.min(room.max(1));
                if fitted < max {
                    tracing::warn!(
                        "--max-connections {max} lowered to {fitted}: the open-file limit is \
                         {limit} (ulimit -n) and {FD_RESERVE} descriptors are kept for files"
                    );
                }
                fitted
            }
            None => max,
        };
        Self {
            max: fitted,
            idle_timeout,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            counts: Counts::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.open
            .lock()
            .expect("connection registry lock poisoned; this is a bug")
    }

    /// The cap in force.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now (including ones asked to close that have not finished).
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// Registers a newly accepted connection. At the cap, the longest-idle connection is asked
    /// to close to make room; if none is idle, `None`: the caller drops the new connection.
    pub fn admit(self: &Arc<Self>) -> Option<Registered> {
        let live = self
            .lock()
            .values()
            .filter(|s| !s.closing.load(Ordering::SeqCst))
            .count();
        if live >= self.max && !self.evict_idlest() {
            self.counts.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let slot = Arc::new(Slot {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(millis(self.epoch)),
            closing: AtomicBool::new(false),
            close: tokio::sync::Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, slot.clone());
        Some(Registered {
            registry: self.clone(),
            id,
            slot,
        })
    }

    /// Asks the connection idle the longest (no request in flight, not already closing) to
    /// close. Returns whether there was one.
    pub fn evict_idlest(&self) -> bool {
        let victim = self
            .lock()
            .values()
            .filter(|s| s.idle())
            .min_by_key(|s| s.idle_since_ms.load(Ordering::SeqCst))
            .cloned();
        match victim {
            Some(slot) => {
                close(&slot);
                self.counts.evicted.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Asks every connection idle for longer than the idle timeout to close; returns how many.
    pub fn sweep(&self) -> usize {
        let now = millis(self.epoch);
        let limit = u64::try_from(self.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let stale: Vec<Arc<Slot>> = self
            .lock()
            .values()
            .filter(|s| {
                s.idle() && now.saturating_sub(s.idle_since_ms.load(Ordering::SeqCst)) >= limit
            })
            .cloned()
            .collect();
        for slot in &stale {
            close(slot);
        }
        self.counts
            .idle
            .fetch_add(stale.len() as u64, Ordering::Relaxed);
        stale.len()
    }
}

fn close(slot: &Slot) {
    slot.closing.store(true, Ordering::SeqCst);
    // notify_one keeps a permit if the task is not waiting yet
    slot.close.notify_one();
}

/// Pauses and rate-limited warnings after `accept` errors.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    streak: u32,
    unlogged: u64,
    last_log: Option<Instant>,
}

impl AcceptErrors {
    /// A successful accept ends the streak.
    pub fn succeeded(&mut self) {
        self.streak = 0;
    }

    /// Records a failed accept: counts it, closes the longest-idle connection when descriptors
    /// ran out, logs at most once per 10 s, and returns how long to pause before accepting again.
    pub fn failed(&mut self, error: &std::io::Error, connections: &Connections) -> Duration {
        connections
            .counts
            .accept_errors
            .fetch_add(1, Ordering::Relaxed);
        self.unlogged += 1;
        let exhausted = is_exhaustion(error);
        if exhausted {
            connections.evict_idlest();
        }
        if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            tracing::warn!(
                "accept failed: {error} ({} time(s) since the last warning; {} connections open, \
                 limit {}){}",
                self.unlogged,
                connections.open(),
                connections.max(),
                if exhausted {
                    "; closing idle connections and pausing (raise ulimit -n or lower --max-connections)"
                } else {
                    ""
                }
            );
            self.unlogged = 0;
            self.last_log = Some(Instant::now());
        }
        if !exhausted {
            return Duration::ZERO;
        }
        self.streak = self.streak.saturating_add(1);
        pause(self.streak)
    }
}

/// 10 ms after the first error of a streak, doubling to at most 1 s.
fn pause(streak: u32) -> Duration {
    let ms = 10u64.saturating_mul(1u64 << streak.saturating_sub(1).min(10));
    Duration::from_millis(ms).min(MAX_PAUSE)
}

/// Out of descriptors or buffers: the errors that a busy retry would only repeat.
fn is_exhaustion(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Raises the soft open-file limit to the hard one (once per process) and returns the soft
/// limit in force; `None` where it cannot be read.
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we pass, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max: usize) -> Arc<Connections> {
        Arc::new(Connections::new(max, Duration::from_millis(50)))
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let r = registry(2);
        let a = r.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = r.admit().unwrap();
        // a request on b, finished: b's idle clock restarts, a stays the idlest
        drop(InFlight::begin(b.slot(), &r));
        let c = r.admit().expect("room is made");
        assert!(a.slot().closing.load(Ordering::SeqCst));
        assert!(!b.slot().closing.load(Ordering::SeqCst));
        assert_eq!(r.counts.evicted.load(Ordering::SeqCst), 1);
        // a has not ended yet: three registered, two live
        assert_eq!(r.open(), 3);
        drop(a);
        assert_eq!(r.open(), 2);
        drop((b, c));
        assert_eq!(r.open(), 0);
    }

    #[test]
    fn busy_connections_are_not_evicted_and_the_newcomer_is_refused() {
        let r = registry(1);
        let a = r.admit().unwrap();
        let request = InFlight::begin(a.slot(), &r);
        assert!(r.admit().is_none());
        assert_eq!(r.counts.rejected.load(Ordering::SeqCst), 1);
        assert!(!a.slot().closing.load(Ordering::SeqCst));
        drop(request);
        assert!(r.admit().is_some());
    }

    #[test]
    fn the_sweep_closes_only_connections_idle_past_the_timeout() {
        let r = registry(10);
        let idle = r.admit().unwrap();
        let busy = r.admit().unwrap();
        let _request = InFlight::begin(busy.slot(), &r);
        assert_eq!(r.sweep(), 0);
        std::thread::sleep(Duration::from_millis(80));
        let fresh = r.admit().unwrap();
        assert_eq!(r.sweep(), 1);
        assert!(idle.slot().closing.load(Ordering::SeqCst));
        assert!(!busy.slot().closing.load(Ordering::SeqCst));
        assert!(!fresh.slot().closing.load(Ordering::SeqCst));
        // asked once; the next sweep does not count it again
        assert_eq!(r.sweep(), 0);
        assert_eq!(r.counts.idle.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_closed_slot_wakes_its_task_even_if_asked_before_it_waits() {
        let r = registry(1);
        let a = r.admit().unwrap();
        assert!(r.evict_idlest());
        tokio::time::timeout(Duration::from_secs(5), a.slot().closed())
            .await
            .expect("the stored permit wakes the waiter");
    }

    #[test]
    fn descriptor_exhaustion_pauses_with_back_off_and_closes_an_idle_connection() {
        let r = registry(10);
        let idle = r.admit().unwrap();
        let mut errors = AcceptErrors::default();
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        let pauses: Vec<Duration> = (0..9).map(|_| errors.failed(&emfile, &r)).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*pauses.last().unwrap(), MAX_PAUSE);
        assert!(idle.slot().closing.load(Ordering::SeqCst));
        assert_eq!(r.counts.accept_errors.load(Ordering::SeqCst), 9);
        // a per-connection error does not pause; a success ends the streak
        let aborted = std::io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(errors.failed(&aborted, &r), Duration::ZERO);
        errors.succeeded();
        assert_eq!(errors.failed(&emfile, &r), Duration::from_millis(10));
    }

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        let limit = open_file_limit().expect("getrlimit works on Linux");
        let r = Connections::new(usize::MAX, DEFAULT_IDLE_TIMEOUT);
        assert_eq!(r.max() as u64, limit - FD_RESERVE);
        assert_eq!(Connections::new(3, DEFAULT_IDLE_TIMEOUT).max(), 3);
    }
}
