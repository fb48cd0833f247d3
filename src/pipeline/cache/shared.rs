//! The shared tier of the cache: Redis, so that several daemons (replicas behind a load
//! balancer, a job array of `precompute`) share every tile, record and window score.
//!
//! Keys are the SQLite store's keys under `<prefix>:<build>:`; values are the same encodings,
//! preceded by a CRC32 (4 bytes, little-endian) over the full Redis key and the value, so a
//! value found under another key, truncated or overwritten by something else fails it and is
//! deleted. Redis evicts by its own policy: cistrack sets no expiry, so the server should run
//! with `maxmemory` and `maxmemory-policy allkeys-lru` (a warning says so when it does not).
//!
//! Redis speeds things up but is never needed: reads time out quickly, writes go through a
//! bounded queue drained by one thread (dropped and counted when it is full), and while Redis
//! cannot be reached every call answers "missing" at once, with one warning per outage and a
//! new attempt every [`RETRY`]. The local tiers hold everything this process computed, so an
//! outage loses nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use redis::{Connection, RedisError, RedisResult};

use super::disk::{entry_crc, Stats};

/// How long to wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long to wait for one reply.
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// After a failure, how long calls answer "missing" before the next attempt.
pub const RETRY: Duration = Duration::from_secs(5);
/// Writes waiting for the writer thread, at most (more are dropped and counted).
pub const WRITE_QUEUE: usize = 16_384;
/// Writes sent in one pipeline, at most.
const WRITE_BATCH: usize = 256;
/// Idle connections kept for readers.
const IDLE_CONNECTIONS: usize = 8;
/// A server error (not an outage) is logged at most this often.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

/// Where the shared tier lives: `cache = { redis = "redis://host:6379/0" }` in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSettings {
    /// `redis://[user:password@]host[:port][/db]` or `redis+unix:///path` (TLS is not built in).
    pub url: String,
    /// First part of every key (`cache.redis_prefix`, default `cistrack`), so that several
    /// deployments can share one Redis.
    pub prefix: String,
}

/// Errors of the shared tier's settings.
#[derive(Debug, thiserror::Error)]
#[error("Redis URL {url}")]
pub struct UrlError {
    /// The URL, password hidden.
    pub url: String,
    /// Why it is not usable.
    #[source]
    pub source: RedisError,
}

impl SharedSettings {
    /// Checks the URL without connecting.
    ///
    /// # Errors
    ///
    /// [`UrlError`] for a URL the client cannot use.
    pub fn validate(&self) -> Result<(), UrlError> {
        redis::Client::open(self.url.as_str())
            .map(drop)
            .map_err(|source| UrlError {
                url: redact(&self.url),
                source,
            })
    }
}

/// The URL with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

/// The connections and the outage state, shared by readers and the writer thread.
struct Link {
    client: redis::Client,
    url: String,
    idle: Mutex<Vec<Connection>>,
    /// While set and in the future, calls answer at once without trying.
    retry_at: Mutex<Option<Instant>>,
    outage: AtomicBool,
    last_error_log: Mutex<Option<Instant>>,
    stats: Arc<Stats>,
}

impl Link {
    /// Runs `f` on a connection; `None` when Redis is down (or just failed) or answered with an
    /// error, each counted and logged as described in the module documentation.
    fn call<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> Option<T> {
        if let Some(at) = *lock(&self.retry_at) {
            if Instant::now() < at {
                return None;
            }
        }
        let idle = lock(&self.idle).pop();
        let mut conn = match idle.map_or_else(|| self.connect(), Ok) {
            Ok(conn) => conn,
            Err(e) => {
                self.failed(&e);
                return None;
            }
        };
        match f(&mut conn) {
            Ok(value) => {
                self.reached();
                let mut idle = lock(&self.idle);
                if idle.len() < IDLE_CONNECTIONS {
                    idle.push(conn);
                }
                Some(value)
            }
            Err(e) if is_outage(&e) => {
                self.failed(&e);
                None
            }
            Err(e) => {
                // The server answered: the connection is fine, the command was refused (a full
                // Redis without eviction answers OOM to writes).
                self.stats.redis_errors.fetch_add(1, Ordering::Relaxed);
                let mut last = lock(&self.last_error_log);
                if last.is_none_or(|t| t.elapsed() >= ERROR_LOG_EVERY) {
                    *last = Some(Instant::now());
                    tracing::warn!("Redis {} refused a cache command: {e}", self.url);
                }
                drop(last);
                lock(&self.idle).push(conn);
                None
            }
        }
    }

    fn connect(&self) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    fn failed(&self, e: &RedisError) {
        self.stats.redis_errors.fetch_add(1, Ordering::Relaxed);
        *lock(&self.retry_at) = Some(Instant::now() + RETRY);
        lock(&self.idle).clear();
        if !self.outage.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "Redis {} cannot be reached ({e}): serving from the local cache tiers and the model; trying again every {} s",
                self.url,
                RETRY.as_secs()
            );
        }
    }

    fn reached(&self) {
        if self.outage.load(Ordering::Relaxed) {
            *lock(&self.retry_at) = None;
            if self.outage.swap(false, Ordering::Relaxed) {
                tracing::info!(
                    "Redis {} reachable again: the shared cache tier is back",
                    self.url
                );
            }
        }
    }
}

/// A failure of the link (not an error answer of the server).
fn is_outage(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("shared cache lock poisoned; this is a bug")
}

enum Write {
    Set(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Flush(Sender<()>),
}

/// The shared tier of one build: see the module documentation.
pub struct SharedStore {
    prefix: Vec<u8>,
    link: Arc<Link>,
    writes: Option<Sender<Write>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("url", &self.link.url)
            .finish()
    }
}

impl SharedStore {
    /// The shared tier of `build`. Does not fail when Redis is down (that is logged, and the
    /// tier answers "missing" until it is back); checks Redis' eviction policy when it is up.
    ///
    /// # Errors
    ///
    /// [`UrlError`] for a URL the client cannot use.
    pub fn open(
        settings: &SharedSettings,
        build: &str,
        stats: Arc<Stats>,
    ) -> Result<Self, UrlError> {
        let url = redact(&settings.url);
        let client = redis::Client::open(settings.url.as_str()).map_err(|source| UrlError {
            url: url.clone(),
            source,
        })?;
        let link = Arc::new(Link {
            client,
            url,
            idle: Mutex::new(Vec::new()),
            retry_at: Mutex::new(None),
            outage: AtomicBool::new(false),
            last_error_log: Mutex::new(None),
            stats,
        });
        check_eviction(&link);
        let (tx, rx) = bounded(WRITE_QUEUE);
        let writer_link = link.clone();
        let writer = std::thread::Builder::new()
            .name("cache-redis".into())
            .spawn(move || write_loop(&writer_link, &rx))
            .expect("cannot start the Redis writer thread");
        Ok(Self {
            prefix: format!("{}:{build}:", settings.prefix).into_bytes(),
            link,
            writes: Some(tx),
            writer: Some(writer),
        })
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.link.url
    }

    /// Whether the last attempt reached Redis.
    pub fn is_up(&self) -> bool {
        !self.link.outage.load(Ordering::Relaxed)
    }

    fn full_key(&self, key: &[u8]) -> Vec<u8> {
        let mut full = self.prefix.clone();
        full.extend_from_slice(key);
        full
    }

    /// The value stored under the local `key`, checked; a value that fails its checksum is
    /// deleted, counted in [`Stats::corrupt_entries`] and answered as missing, as is anything
    /// while Redis is down. Blocking (at most [`IO_TIMEOUT`]).
    pub fn get_raw(&self, key: &[u8]) -> Option<Vec<u8>> {
        let full = self.full_key(key);
        let framed = self
            .link
            .call(|c| redis::cmd("GET").arg(&full).query::<Option<Vec<u8>>>(c))??;
        match unframe(&full, &framed) {
            Some(value) => Some(value.to_vec()),
            None => {
                self.link
                    .stats
                    .corrupt_entries
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "Redis {}: a cache entry failed its checksum; deleted, it will be recomputed",
                    self.link.url
                );
                self.send(Write::Delete(full));
                None
            }
        }
    }

    /// Queues the write of `value` under the local `key` (dropped and counted when the queue is
    /// full or Redis is down).
    pub fn put_raw(&self, key: &[u8], value: &[u8]) {
        let full = self.full_key(key);
        let framed = frame(&full, value);
        self.send(Write::Set(full, framed));
    }

    fn send(&self, write: Write) {
        let Some(tx) = &self.writes else { return };
        if let Err(TrySendError::Full(_)) = tx.try_send(write) {
            self.link
                .stats
                .redis_writes_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every queued write has been sent (or dropped).
    pub fn flush(&self) {
        let Some(tx) = &self.writes else { return };
        let (done, wait) = bounded(1);
        if tx.send(Write::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Deletes this build's keys whose local key starts with `prefix` (all of them with
    /// `None`); returns how many, or `None` when Redis cannot be reached.
    pub fn clear(&self, prefix: Option<&str>) -> Option<u64> {
        self.flush();
        self.scan(prefix, |c, keys| {
            redis::cmd("UNLINK").arg(keys).query::<u64>(c)
        })
    }

    /// How many keys this build has in Redis (a `SCAN`, reads only); `None` when Redis cannot
    /// be reached.
    pub fn count(&self) -> Option<u64> {
        self.scan(None, |_, keys| Ok(keys.len() as u64))
    }

    /// Runs `each` on every batch of this build's keys whose local key starts with `prefix`,
    /// summing what it returns.
    fn scan(
        &self,
        prefix: Option<&str>,
        mut each: impl FnMut(&mut Connection, &[Vec<u8>]) -> RedisResult<u64>,
    ) -> Option<u64> {
        let mut pattern = glob_escape(&self.full_key(prefix.unwrap_or("").as_bytes()));
        pattern.push(b'*');
        self.link.call(|c| {
            let mut cursor: u64 = 0;
            let mut total = 0;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)?;
                if !keys.is_empty() {
                    total += each(c, &keys)?;
                }
                if next == 0 {
                    return Ok(total);
                }
                cursor = next;
            }
        })
    }
}

impl Drop for SharedStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer send what is queued and stop.
        self.writes = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The stored form of a value: CRC32 of the full key and the value (little-endian), then the
/// value.
fn frame(full_key: &[u8], value: &[u8]) -> Vec<u8> {
    let crc = entry_crc(full_key, value) as u32;
    let mut out = Vec::with_capacity(4 + value.len());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// The value of a stored form, if its checksum holds for `full_key`.
fn unframe<'a>(full_key: &[u8], framed: &'a [u8]) -> Option<&'a [u8]> {
    let (crc, value) = framed.split_first_chunk::<4>()?;
    (u32::from_le_bytes(*crc) == entry_crc(full_key, value) as u32).then_some(value)
}

/// `bytes` with Redis glob characters escaped, for `SCAN MATCH`.
fn glob_escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// Warns when Redis would not evict cistrack's keys (they carry no expiry).
fn check_eviction(link: &Link) {
    let policy = link.call(|c| {
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory*")
            .query::<std::collections::HashMap<String, String>>(c)
    });
    // CONFIG is often disabled on managed services: then nothing is known, nothing is said.
    let Some(config) = policy else { return };
    let policy = config.get("maxmemory-policy").map_or("", String::as_str);
    let limit = config.get("maxmemory").map_or("", String::as_str);
    if limit == "0" || !policy.starts_with("allkeys-") {
        tracing::warn!(
            "Redis {}: maxmemory {limit}, maxmemory-policy {policy}: cistrack's keys have no expiry, so set maxmemory and maxmemory-policy allkeys-lru for Redis to evict old entries (without them it grows until writes fail)",
            link.url
        );
    }
}

fn write_loop(link: &Link, rx: &Receiver<Write>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        let mut commands = 0;
        let mut waiting = Vec::new();
        for write in batch {
            match write {
                Write::Set(k, v) => {
                    pipe.cmd("SET").arg(k).arg(v).ignore();
                    commands += 1;
                }
                Write::Delete(k) => {
                    pipe.cmd("DEL").arg(k).ignore();
                    commands += 1;
                }
                Write::Flush(done) => waiting.push(done),
            }
        }
        if commands > 0 {
            match link.call(|c| pipe.query::<()>(c)) {
                Some(()) => {
                    link.stats
                        .redis_writes
                        .fetch_add(commands, Ordering::Relaxed);
                }
                None => {
                    link.stats
                        .redis_writes_dropped
                        .fetch_add(commands, Ordering::Relaxed);
                }
            }
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_check_key_and_value() {
        let framed = frame(b"p:hg38:a", b"value");
        assert_eq!(unframe(b"p:hg38:a", &framed), Some(&b"value"[..]));
        // the same bytes under another key, truncated, or altered fail
        assert_eq!(unframe(b"p:hg38:b", &framed), None);
        assert_eq!(unframe(b"p:hg38:a", &framed[..framed.len() - 1]), None);
        assert_eq!(unframe(b"p:hg38:a", &framed[..3]), None);
        let mut altered = framed.clone();
        altered[5] ^= 1;
        assert_eq!(unframe(b"p:hg38:a", &altered), None);
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(redact("redis://user:pw@host/1"), "redis://user:***@host/1");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis+unix:///run/redis.sock"),
            "redis+unix:///run/redis.sock"
        );
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape(b"a*b?[c]\\"), b"a\\*b\\?\\[c\\]\\\\".to_vec());
    }

    #[test]
    fn a_bad_url_is_refused_naming_it() {
        let settings = SharedSettings {
            url: "http://:pw@example.org".into(),
            prefix: "cistrack".into(),
        };
        let e = settings.validate().unwrap_err();
        assert!(e.to_string().contains("http://:***@example.org"), "{e}");
        for (url, usable) in [
            ("redis://127.0.0.1:6379/0", true),
            ("redis+unix:///run/redis/redis.sock", true),
            ("rediss://127.0.0.1:6379", false),
        ] {
            let settings = SharedSettings {
                url: url.into(),
                prefix: "cistrack".into(),
            };
            assert_eq!(settings.validate().is_ok(), usable, "{url}");
        }
    }

    #[test]
    fn a_dead_redis_answers_missing_at_once() {
        // a port nothing listens on
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let stats = Arc::new(Stats::default());
        let settings = SharedSettings {
            url: format!("redis://127.0.0.1:{port}"),
            prefix: "t".into(),
        };
        let store = SharedStore::open(&settings, "hg38", stats.clone()).unwrap();
        assert!(!store.is_up());
        for _ in 0..1000 {
            assert_eq!(store.get_raw(b"k"), None);
            store.put_raw(b"k", b"v");
        }
        store.flush();
        // one failed attempt opens the outage; the calls after it try nothing until RETRY
        let attempts = stats.redis_errors.load(Ordering::Relaxed);
        assert!(
            (1..=3).contains(&attempts),
            "{attempts} connection attempts"
        );
        assert_eq!(stats.redis_writes_dropped.load(Ordering::Relaxed), 1000);
        assert_eq!(store.clear(None), None);
    }
}
