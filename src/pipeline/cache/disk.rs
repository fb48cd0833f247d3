//! The persistent tier of the cache: one SQLite file per build, written by one thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{chain, context};

use super::tile::{
    decode_score, encode_score, window_key, RawEntry, Score, Tile, TileKey, WindowDigest,
};

/// Counters of a cache, for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Tiles found in memory.
    pub memory_hits: AtomicU64,
    /// Tiles not in memory.
    pub memory_misses: AtomicU64,
    /// Tiles found on disk.
    pub disk_hits: AtomicU64,
    /// Tiles not on disk.
    pub disk_misses: AtomicU64,
    /// Entries that failed their checksum or did not parse (deleted, recomputed).
    pub corrupt_entries: AtomicU64,
    /// Entries evicted from disk to stay under the size limit.
    pub disk_evictions: AtomicU64,
    /// Tiles found in the shared tier (Redis).
    pub redis_hits: AtomicU64,
    /// Tiles not in the shared tier, or not read because it was down.
    pub redis_misses: AtomicU64,
    /// Failed calls to the shared tier (outages and refused commands).
    pub redis_errors: AtomicU64,
    /// Writes sent to the shared tier.
    pub redis_writes: AtomicU64,
    /// Writes not sent: the queue was full or the shared tier down.
    pub redis_writes_dropped: AtomicU64,
}

/// Errors of the on-disk store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("cache {}", .path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// SQLite's (or the file system's) error.
        #[source]
        source: crate::error::Cause,
    },
    /// The shared tier's URL is unusable.
    #[error(transparent)]
    Shared(#[from] super::shared::UrlError),
}

/// Summary of a store, for `cistrack cache stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantStats {
    /// The namespace.
    pub variant: String,
    /// Tiles stored.
    pub tiles: u64,
    /// Bytes of values.
    pub bytes: u64,
}

enum WriteOp {
    Put(Vec<u8>, Vec<u8>),
    Touch(Vec<u8>),
    Delete(Vec<u8>),
    Clear(Option<String>),
    Flush(Sender<()>),
}

/// The persistent tier: one SQLite file, a read connection, and a writer thread that batches
/// writes into transactions and evicts least-recently-used entries past the size limit.
pub struct DiskStore {
    path: PathBuf,
    read: Mutex<Connection>,
    writes: Sender<WriteOp>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for DiskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Version of the file layout (`PRAGMA user_version`): 2 since checksums cover the key.
pub(super) const FORMAT: i64 = 2;

/// The checksum stored with an entry: CRC32 of the key's length, the key and the value, so a
/// value found under another key (a moved or swapped row) fails it.
pub(super) fn entry_crc(key: &[u8], value: &[u8]) -> i64 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(value);
    i64::from(h.finalize())
}

/// Brings a store to [`FORMAT`]: entries of format 1 (checksum over the value alone) are
/// dropped, to be recomputed; a store of a later format is refused.
fn migrate(conn: &Connection, path: &Path) -> rusqlite::Result<Result<(), String>> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > FORMAT {
        return Ok(Err(format!(
            "written by a newer cistrack (file format {version}; this one reads {FORMAT})"
        )));
    }
    if version < FORMAT {
        let dropped = conn.execute("DELETE FROM tiles", [])?;
        conn.pragma_update(None, "user_version", FORMAT)?;
        if dropped > 0 {
            tracing::info!(
                "cache {}: {dropped} entries of an older format (checksums did not cover the key) dropped; they will be recomputed",
                path.display()
            );
        }
    }
    Ok(Ok(()))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS tiles (
             key BLOB PRIMARY KEY,
             value BLOB NOT NULL,
             crc INTEGER NOT NULL,
             size INTEGER NOT NULL,
             last_used INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS tiles_last_used ON tiles(last_used);",
    )?;
    // Reading one row proves the file is a usable database, not just openable.
    conn.query_row("SELECT count(*) FROM tiles", [], |r| r.get::<_, i64>(0))?;
    Ok(conn)
}

impl DiskStore {
    /// Opens (or creates) the store at `path`. A file SQLite cannot use is moved aside to
    /// `path.corrupt-<unix time>` with a warning, and a new store is created.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when even a new database cannot be created (unwritable folder).
    pub fn open(path: &Path, max_bytes: u64, stats: Arc<Stats>) -> Result<Self, Error> {
        let store_error = |source: crate::error::Cause| Error::Store {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| store_error(context(format!("cannot create {}", dir.display()), e)))?;
        }
        let read = match open_connection(path) {
            Ok(conn) => conn,
            Err(e) => {
                let aside = PathBuf::from(format!("{}.corrupt-{}", path.display(), now_secs()));
                tracing::warn!(
                    "cache {} is unusable ({}); moving it to {} and starting an empty cache",
                    path.display(),
                    chain(&e),
                    aside.display()
                );
                std::fs::rename(path, &aside)
                    .map_err(|e| store_error(context("cannot move the broken file aside", e)))?;
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                open_connection(path).map_err(|e| store_error(e.into()))?
            }
        };
        migrate(&read, path)
            .map_err(|e| store_error(e.into()))?
            .map_err(|message| store_error(message.into()))?;
        let write = open_connection(path).map_err(|e| store_error(e.into()))?;
        let (tx, rx) = unbounded();
        let writer_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("cache-writer".into())
            .spawn(move || write_loop(write, rx, max_bytes, stats, writer_path))
            .map_err(|e| store_error(context("cannot start the cache writer thread", e)))?;
        Ok(Self {
            path: path.into(),
            read: Mutex::new(read),
            writes: tx,
            writer: Some(writer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads an entry, verifying its checksum. Blocking: call from a blocking thread.
    ///
    /// Returns `Ok(None)` for a missing entry, and also for a corrupt one (which is deleted and
    /// counted in [`Stats::corrupt_entries`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when SQLite fails.
    pub fn get(&self, key: &TileKey, stats: &Stats) -> Result<Option<Tile>, Error> {
        self.get_checked(key.bytes(), stats, Tile::decode, || {
            tracing::warn!(contig = %key.contig, tile = key.tile, "cache entry failed its checksum; deleted, it will be recomputed");
        })
    }

    /// Reads the value under `key_bytes` and parses it with `decode`, after checking its CRC32.
    /// A value that fails either is deleted, counted, reported with `warn`, and answered as
    /// missing.
    fn get_checked<T>(
        &self,
        key_bytes: Vec<u8>,
        stats: &Stats,
        decode: impl FnOnce(&[u8]) -> Option<T>,
        warn: impl FnOnce(),
    ) -> Result<Option<T>, Error> {
        let row: Option<(Vec<u8>, i64)> = {
            let conn = self
                .read
                .lock()
                .expect("cache read connection poisoned; this is a bug");
            conn.query_row(
                "SELECT value, crc FROM tiles WHERE key = ?1",
                params![key_bytes],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| Error::Store {
                path: self.path.clone(),
                source: e.into(),
            })?
        };
        let Some((value, crc)) = row else {
            return Ok(None);
        };
        match (entry_crc(&key_bytes, &value) == crc)
            .then(|| decode(&value))
            .flatten()
        {
            Some(found) => {
                let _ = self.writes.send(WriteOp::Touch(key_bytes));
                Ok(Some(found))
            }
            None => {
                stats.corrupt_entries.fetch_add(1, Ordering::Relaxed);
                warn();
                let _ = self.writes.send(WriteOp::Delete(key_bytes));
                Ok(None)
            }
        }
    }

    /// Reads a raw value (checksum verified; a corrupt one is deleted and reported missing).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when SQLite fails.
    pub fn get_raw(&self, key: &[u8], stats: &Stats) -> Result<Option<Vec<u8>>, Error> {
        self.get_checked(
            key.to_vec(),
            stats,
            |v| Some(v.to_vec()),
            || {
                tracing::warn!("cache entry failed its checksum; deleted, it will be recomputed");
            },
        )
    }

    /// Queues the write of a raw value.
    pub fn put_raw(&self, key: Vec<u8>, value: Vec<u8>) {
        let _ = self.writes.send(WriteOp::Put(key, value));
    }

    /// Every valid `(key, value)` whose key starts with `prefix` (values failing their
    /// checksum are skipped and counted).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when SQLite fails.
    pub fn scan_raw(&self, prefix: &str, stats: &Stats) -> Result<Vec<RawEntry>, Error> {
        self.flush();
        let conn = self
            .read
            .lock()
            .expect("cache read connection poisoned; this is a bug");
        let store_error = |e: rusqlite::Error| Error::Store {
            path: self.path.clone(),
            source: e.into(),
        };
        let low = prefix.as_bytes().to_vec();
        let mut stmt = conn
            .prepare("SELECT key, value, crc FROM tiles WHERE key >= ?1 ORDER BY key")
            .map_err(store_error)?;
        let mut rows = stmt.query(params![low]).map_err(store_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            let key: Vec<u8> = row.get(0).map_err(store_error)?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let value: Vec<u8> = row.get(1).map_err(store_error)?;
            let crc: i64 = row.get(2).map_err(store_error)?;
            if entry_crc(&key, &value) == crc {
                out.push((key, value));
            } else {
                stats.corrupt_entries.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(out)
    }

    /// Reads the stored score of a window identified by its content (see [`WindowDigest`]).
    /// A corrupt entry is deleted and reported as missing.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when SQLite fails.
    pub fn get_window(
        &self,
        namespace: &str,
        digest: &WindowDigest,
        stats: &Stats,
    ) -> Result<Option<Score>, Error> {
        self.get_checked(window_key(namespace, digest), stats, decode_score, || {
            tracing::warn!(
                "cached window score failed its checksum; deleted, it will be recomputed"
            );
        })
    }

    /// Queues the write of a window's score under its content digest.
    pub fn put_window(&self, namespace: &str, digest: &WindowDigest, score: &Score) {
        let _ = self.writes.send(WriteOp::Put(
            window_key(namespace, digest),
            encode_score(score),
        ));
    }

    /// Queues a write (the writer thread commits it shortly).
    pub fn put(&self, key: &TileKey, tile: &Tile) {
        let _ = self.writes.send(WriteOp::Put(key.bytes(), tile.encode()));
    }

    /// Waits until every queued write is committed.
    pub fn flush(&self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if self.writes.send(WriteOp::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Deletes every entry, or those of namespaces starting with `prefix`.
    pub fn clear(&self, prefix: Option<&str>) {
        let _ = self.writes.send(WriteOp::Clear(prefix.map(String::from)));
        self.flush();
    }

    /// Every valid entry of namespace `variant`: `(contig, tile index, tile)`. Entries that
    /// fail their checksum are skipped and counted.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when SQLite fails.
    pub fn scan(&self, variant: &str, stats: &Stats) -> Result<Vec<(String, u64, Tile)>, Error> {
        let prefix = format!("{variant}\t");
        let entries = self.scan_raw(&prefix, stats)?;
        Ok(entries
            .into_iter()
            .filter_map(|(key, value)| {
                let key = String::from_utf8_lossy(&key);
                let mut parts = key[prefix.len()..].split('\t');
                let (Some(contig), Some(Ok(tile))) =
                    (parts.next(), parts.next().map(str::parse::<u64>))
                else {
                    return None;
                };
                match Tile::decode(&value) {
                    Some(t) => Some((contig.to_string(), tile, t)),
                    None => {
                        stats.corrupt_entries.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                }
            })
            .collect())
    }

    /// Tiles and bytes per namespace (after the queued writes).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when SQLite fails.
    pub fn stats(&self) -> Result<Vec<VariantStats>, Error> {
        self.flush();
        super::check::stats(&self.path)
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        self.flush();
        let (tx, _) = unbounded();
        drop(std::mem::replace(&mut self.writes, tx));
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write_loop(
    mut conn: Connection,
    ops: Receiver<WriteOp>,
    max_bytes: u64,
    stats: Arc<Stats>,
    path: PathBuf,
) {
    let total = |conn: &Connection| {
        conn.query_row("SELECT coalesce(sum(size), 0) FROM tiles", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_or(0) as u64
    };
    let mut bytes = total(&conn);
    let mut logged = false;
    while let Ok(first) = ops.recv() {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match ops.recv_timeout(Duration::from_millis(5)) {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let now = now_secs();
        let mut flushes = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for op in batch {
                match op {
                    WriteOp::Put(key, value) => {
                        let old: Option<i64> = tx
                            .query_row("SELECT size FROM tiles WHERE key = ?1", params![key], |r| {
                                r.get(0)
                            })
                            .optional()?;
                        let size = value.len() as i64;
                        let crc = entry_crc(&key, &value);
                        tx.execute(
                            "INSERT INTO tiles (key, value, crc, size, last_used) VALUES (?1, ?2, ?3, ?4, ?5)
                             ON CONFLICT(key) DO UPDATE SET value = ?2, crc = ?3, size = ?4, last_used = ?5",
                            params![key, value, crc, size, now],
                        )?;
                        bytes = (bytes + size as u64).saturating_sub(old.unwrap_or(0) as u64);
                    }
                    WriteOp::Touch(key) => {
                        tx.execute(
                            "UPDATE tiles SET last_used = ?2 WHERE key = ?1",
                            params![key, now],
                        )?;
                    }
                    WriteOp::Delete(key) => {
                        tx.execute("DELETE FROM tiles WHERE key = ?1", params![key])?;
                    }
                    WriteOp::Clear(None) => {
                        tx.execute("DELETE FROM tiles", [])?;
                    }
                    WriteOp::Clear(Some(prefix)) => {
                        let like = format!("{}%", prefix.replace('%', "\\%").replace('_', "\\_"));
                        tx.execute(
                            "DELETE FROM tiles WHERE CAST(key AS TEXT) LIKE ?1 ESCAPE '\\'",
                            params![like],
                        )?;
                    }
                    WriteOp::Flush(done) => flushes.push(done),
                }
            }
            if bytes > max_bytes {
                // Evict the least recently used tenth beyond the limit in one statement.
                let target = max_bytes - max_bytes / 10;
                let mut stmt = tx.prepare("SELECT key, size FROM tiles ORDER BY last_used ASC")?;
                let mut victims = Vec::new();
                let mut freed = 0u64;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    if bytes - freed <= target {
                        break;
                    }
                    victims.push(row.get::<_, Vec<u8>>(0)?);
                    freed += row.get::<_, i64>(1)? as u64;
                }
                drop(rows);
                drop(stmt);
                for key in &victims {
                    tx.execute("DELETE FROM tiles WHERE key = ?1", params![key])?;
                }
                stats
                    .disk_evictions
                    .fetch_add(victims.len() as u64, Ordering::Relaxed);
                bytes -= freed;
            }
            tx.commit()
        })();
        if let Err(e) = result {
            if !logged {
                tracing::error!(
                    "cache {}: write failed ({}); scores are still served but not persisted",
                    path.display(),
                    chain(&e)
                );
                logged = true;
            }
            bytes = total(&conn);
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
