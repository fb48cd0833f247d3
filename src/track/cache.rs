//! The per-build score cache: an in-memory LRU of tiles over a persistent SQLite store.
//!
//! A *tile* holds [`TILE_WINDOWS`] consecutive windows of a global grid (window `i` of a contig
//! has the core `[i·stride, (i+1)·stride)`), so requests for overlapping views share tiles.
//! Each slot is missing, skipped (no A/C/G/T base, or past the contig end) or scored.
//!
//! Keys name everything a score depends on: build, model name/version and sha256, stride and a
//! fingerprint of the inputs (FASTA and bigWig paths, sizes, modification times, scales), so a
//! changed input or model never reads back stale scores.
//!
//! # Why SQLite?
//!
//! It is an existing engine with atomic transactions (a crash mid-write leaves the previous
//! state), concurrent readers with one writer (WAL), and one file per build that several daemon
//! processes on one host can share. SQLite does not checksum pages, so every value also carries
//! a CRC32; a value that fails it is deleted and recomputed. A database file that SQLite cannot
//! open is moved aside and a new one created. Across hosts the same key/value layout maps onto a
//! shared store (Redis, an object store); see README.md.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use lru::LruCache;
use rusqlite::{params, Connection, OptionalExtension};

/// Windows per tile.
pub const TILE_WINDOWS: usize = 64;

/// Default size of the in-memory tier, in MiB.
pub const DEFAULT_MEMORY_MIB: usize = 256;
/// Default size limit of the on-disk tier, in MiB.
pub const DEFAULT_DISK_MIB: u64 = 2048;

const FORMAT_VERSION: u8 = 1;

/// A window's model outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Logit.
    pub logit: f32,
    /// Probability.
    pub probability: f32,
    /// Attention share per modality (sequence, h3k27ac, accessibility).
    pub share: [f32; 3],
}

/// One window slot of a tile.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Slot {
    /// Not computed yet.
    #[default]
    Missing,
    /// Not scorable: no A/C/G/T base, or past the contig's end.
    Skipped,
    /// Scored.
    Scored(Score),
}

/// [`TILE_WINDOWS`] slots.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Slots in window order.
    pub slots: [Slot; TILE_WINDOWS],
}

impl Default for Tile {
    fn default() -> Self {
        Self {
            slots: [Slot::Missing; TILE_WINDOWS],
        }
    }
}

impl Tile {
    /// Serialises: version, then per slot a tag and, when scored, five little-endian f32.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + TILE_WINDOWS * 21);
        out.push(FORMAT_VERSION);
        for slot in &self.slots {
            match slot {
                Slot::Missing => out.push(0),
                Slot::Skipped => out.push(1),
                Slot::Scored(s) => {
                    out.push(2);
                    for v in [s.logit, s.probability, s.share[0], s.share[1], s.share[2]] {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
        }
        out
    }

    /// Parses [`Tile::encode`]'s output; `None` for anything malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != FORMAT_VERSION {
            return None;
        }
        let mut tile = Tile::default();
        for slot in tile.slots.iter_mut() {
            let (&tag, tail) = rest.split_first()?;
            rest = tail;
            *slot = match tag {
                0 => Slot::Missing,
                1 => Slot::Skipped,
                2 => {
                    if rest.len() < 20 {
                        return None;
                    }
                    let f = |i: usize| {
                        f32::from_le_bytes(rest[i * 4..i * 4 + 4].try_into().expect("4 bytes"))
                    };
                    let score = Score {
                        logit: f(0),
                        probability: f(1),
                        share: [f(2), f(3), f(4)],
                    };
                    rest = &rest[20..];
                    Slot::Scored(score)
                }
                _ => return None,
            };
        }
        rest.is_empty().then_some(tile)
    }

    /// Merges `other` into `self`: slots known in `other` replace missing ones here.
    pub fn merge(&mut self, other: &Tile) {
        for (mine, theirs) in self.slots.iter_mut().zip(&other.slots) {
            if *mine == Slot::Missing {
                *mine = *theirs;
            }
        }
    }
}

/// The key of a tile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TileKey {
    /// Build, model, stride and input fingerprint (see [`variant_id`]).
    pub variant: Arc<str>,
    /// FASTA contig name.
    pub contig: Arc<str>,
    /// Tile index on the contig's grid.
    pub tile: u64,
}

impl TileKey {
    fn bytes(&self) -> Vec<u8> {
        format!("{}\t{}\t{}", self.variant, self.contig, self.tile).into_bytes()
    }
}

/// A cache namespace for one build, model and stride: `build:name/version:sha8:sSTRIDE:fingerprint8`.
pub fn variant_id(
    build: &str,
    model_id: &str,
    model_sha256: &str,
    stride: u64,
    inputs_fingerprint: &str,
) -> String {
    format!(
        "{build}:{model_id}:{}:s{stride}:{}",
        &model_sha256[..8.min(model_sha256.len())],
        &inputs_fingerprint[..8.min(inputs_fingerprint.len())]
    )
}

/// The namespace of window scores cached by content for one build and model (used by
/// `cistrack annotate`, whose windows are centred on records rather than on the tile grid):
/// `build:name/version:sha8:windows`.
pub fn window_namespace(build: &str, model_id: &str, model_sha256: &str) -> String {
    format!(
        "{build}:{model_id}:{}:windows",
        &model_sha256[..8.min(model_sha256.len())]
    )
}

/// What identifies a window's score: a SHA-256 (first 128 bits) of exactly what the model is
/// given — the bases (A, C, G, T, anything else as N; case ignored), the normalised signal bins
/// as f32 bits and the modality mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowDigest(pub [u8; 16]);

impl WindowDigest {
    /// The digest of one window's model input.
    pub fn of(sequence: &[u8], h3k27ac: &[f32], accessibility: &[f32], mask: [f32; 3]) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let bases: Vec<u8> = sequence
            .iter()
            .map(|b| match b.to_ascii_uppercase() {
                c @ (b'A' | b'C' | b'G' | b'T') => c,
                _ => b'N',
            })
            .collect();
        h.update((bases.len() as u64).to_le_bytes());
        h.update(&bases);
        for values in [h3k27ac, accessibility, &mask[..]] {
            h.update((values.len() as u64).to_le_bytes());
            for v in values {
                h.update(v.to_bits().to_le_bytes());
            }
        }
        let full = h.finalize();
        Self(full[..16].try_into().expect("16 of 32 bytes"))
    }
}

fn window_key(namespace: &str, digest: &WindowDigest) -> Vec<u8> {
    let hex: String = digest.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("{namespace}\t{hex}").into_bytes()
}

fn encode_score(s: &Score) -> Vec<u8> {
    let mut out = Vec::with_capacity(21);
    out.push(FORMAT_VERSION);
    for v in [s.logit, s.probability, s.share[0], s.share[1], s.share[2]] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode_score(bytes: &[u8]) -> Option<Score> {
    if bytes.len() != 21 || bytes[0] != FORMAT_VERSION {
        return None;
    }
    let f = |i: usize| f32::from_le_bytes(bytes[1 + i * 4..5 + i * 4].try_into().expect("4 bytes"));
    Some(Score {
        logit: f(0),
        probability: f(1),
        share: [f(2), f(3), f(4)],
    })
}

/// A raw `(key, value)` entry of the store.
pub type RawEntry = (Vec<u8>, Vec<u8>);

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
}

/// Errors of the on-disk store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("cache {}: {message}", .path.display())]
    Store {
        /// The database file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
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
        let store_error = |message: String| Error::Store {
            path: path.into(),
            message,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| store_error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let read = match open_connection(path) {
            Ok(conn) => conn,
            Err(e) => {
                let aside = PathBuf::from(format!("{}.corrupt-{}", path.display(), now_secs()));
                tracing::warn!(
                    "cache {} is unusable ({e}); moving it to {} and starting an empty cache",
                    path.display(),
                    aside.display()
                );
                std::fs::rename(path, &aside)
                    .map_err(|e| store_error(format!("cannot move the broken file aside: {e}")))?;
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                open_connection(path).map_err(|e| store_error(e.to_string()))?
            }
        };
        let write = open_connection(path).map_err(|e| store_error(e.to_string()))?;
        let (tx, rx) = unbounded();
        let writer_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("cache-writer".into())
            .spawn(move || write_loop(write, rx, max_bytes, stats, writer_path))
            .map_err(|e| store_error(e.to_string()))?;
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
                message: e.to_string(),
            })?
        };
        let Some((value, crc)) = row else {
            return Ok(None);
        };
        match (crc32fast::hash(&value) as i64 == crc)
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
            message: e.to_string(),
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
            if crc32fast::hash(&value) as i64 == crc {
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
        self.flush();
        let conn = self
            .read
            .lock()
            .expect("cache read connection poisoned; this is a bug");
        let store_error = |e: rusqlite::Error| Error::Store {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let mut low = format!("{variant}\t").into_bytes();
        let mut high = low.clone();
        *high.last_mut().expect("non-empty") += 1; // '\t' + 1: the end of this prefix's key range
        let mut stmt = conn
            .prepare("SELECT key, value, crc FROM tiles WHERE key >= ?1 AND key < ?2")
            .map_err(store_error)?;
        let rows = stmt
            .query_map(params![std::mem::take(&mut low), high], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(store_error)?;
        let mut out = Vec::new();
        for row in rows {
            let (key, value, crc) = row.map_err(store_error)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let mut parts = key.split('\t').skip(1);
            let (Some(contig), Some(Ok(tile))) =
                (parts.next(), parts.next().map(str::parse::<u64>))
            else {
                continue;
            };
            match (crc32fast::hash(&value) as i64 == crc)
                .then(|| Tile::decode(&value))
                .flatten()
            {
                Some(t) => out.push((contig.to_string(), tile, t)),
                None => {
                    stats.corrupt_entries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(out)
    }

    /// Tiles and bytes per namespace.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when SQLite fails.
    pub fn stats(&self) -> Result<Vec<VariantStats>, Error> {
        self.flush();
        let conn = self
            .read
            .lock()
            .expect("cache read connection poisoned; this is a bug");
        let store_error = |e: rusqlite::Error| Error::Store {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let mut stmt = conn
            .prepare("SELECT key, size FROM tiles")
            .map_err(store_error)?;
        let mut by_variant: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
            .map_err(store_error)?;
        for row in rows {
            let (key, size) = row.map_err(store_error)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let variant = key.split('\t').next().unwrap_or_default().to_string();
            let entry = by_variant.entry(variant).or_default();
            entry.0 += 1;
            entry.1 += size as u64;
        }
        Ok(by_variant
            .into_iter()
            .map(|(variant, (tiles, bytes))| VariantStats {
                variant,
                tiles,
                bytes,
            })
            .collect())
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
                        let crc = crc32fast::hash(&value) as i64;
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
                    "cache {}: write failed ({e}); scores are still served but not persisted",
                    path.display()
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

/// The two tiers of one build's cache.
pub struct Cache {
    memory: Mutex<LruCache<TileKey, Arc<Tile>>>,
    disk: Option<Arc<DiskStore>>,
    generation: AtomicU64,
    /// Counters.
    pub stats: Arc<Stats>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("disk", &self.disk).finish()
    }
}

impl Cache {
    /// A cache with `memory_mib` of tiles in memory over an optional disk store.
    pub fn new(memory_mib: usize, disk: Option<DiskStore>, stats: Arc<Stats>) -> Self {
        // A tile in memory costs its slots plus the LRU's key and node: about 2 KiB.
        let capacity =
            NonZeroUsize::new((memory_mib * 1024 / 2).max(16)).expect("positive; this is a bug");
        Self {
            memory: Mutex::new(LruCache::new(capacity)),
            disk: disk.map(Arc::new),
            generation: AtomicU64::new(0),
            stats,
        }
    }

    /// The tile in memory, if present (no disk access).
    pub fn get_memory(&self, key: &TileKey) -> Option<Arc<Tile>> {
        let hit = self
            .memory
            .lock()
            .expect("cache lock poisoned; this is a bug")
            .get(key)
            .cloned();
        let counter = if hit.is_some() {
            &self.stats.memory_hits
        } else {
            &self.stats.memory_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// The tile in memory, without touching the counters or the LRU order.
    pub fn peek_memory(&self, key: &TileKey) -> Option<Arc<Tile>> {
        self.memory
            .lock()
            .expect("cache lock poisoned; this is a bug")
            .peek(key)
            .cloned()
    }

    /// The tile from memory or disk (promoted to memory). Blocking on a disk read: call from a
    /// blocking thread.
    pub fn get(&self, key: &TileKey) -> Option<Arc<Tile>> {
        if let Some(tile) = self.get_memory(key) {
            return Some(tile);
        }
        let disk = self.disk.as_ref()?;
        match disk.get(key, &self.stats) {
            Ok(Some(tile)) => {
                self.stats.disk_hits.fetch_add(1, Ordering::Relaxed);
                let tile = Arc::new(tile);
                let mut memory = self
                    .memory
                    .lock()
                    .expect("cache lock poisoned; this is a bug");
                // Another thread may have merged newer slots meanwhile: keep both.
                let merged = match memory.get(key) {
                    Some(current) => {
                        let mut m = (**current).clone();
                        m.merge(&tile);
                        Arc::new(m)
                    }
                    None => tile,
                };
                memory.put(key.clone(), merged.clone());
                Some(merged)
            }
            Ok(None) => {
                self.stats.disk_misses.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }

    /// Merges computed slots into the tile in memory and returns the result. `persist` also
    /// queues it for the disk tier.
    pub fn merge(&self, key: &TileKey, update: &[(usize, Slot)], persist: bool) -> Arc<Tile> {
        let merged = {
            let mut memory = self
                .memory
                .lock()
                .expect("cache lock poisoned; this is a bug");
            let mut tile = memory.get(key).map(|t| (**t).clone()).unwrap_or_default();
            for &(i, slot) in update {
                if slot != Slot::Missing {
                    tile.slots[i] = slot;
                }
            }
            let tile = Arc::new(tile);
            memory.put(key.clone(), tile.clone());
            tile
        };
        if persist {
            if let Some(disk) = &self.disk {
                disk.put(key, &merged);
            }
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
        merged
    }

    /// Increases with every merge: track files built at an older generation are stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Every tile of namespace `variant`: from the disk tier when there is one (it holds
    /// everything merged, once flushed), else from memory.
    pub fn scan(&self, variant: &str) -> Vec<(String, u64, Tile)> {
        if let Some(disk) = &self.disk {
            match disk.scan(variant, &self.stats) {
                Ok(tiles) => return tiles,
                Err(e) => tracing::warn!("{e}; exporting what is in memory"),
            }
        }
        let memory = self
            .memory
            .lock()
            .expect("cache lock poisoned; this is a bug");
        memory
            .iter()
            .filter(|(k, _)| &*k.variant == variant)
            .map(|(k, t)| (k.contig.to_string(), k.tile, (**t).clone()))
            .collect()
    }

    /// Drops the in-memory tier (the disk tier is kept).
    pub fn clear_memory(&self) {
        self.memory
            .lock()
            .expect("cache lock poisoned; this is a bug")
            .clear();
    }

    /// The disk tier.
    pub fn disk(&self) -> Option<&DiskStore> {
        self.disk.as_deref()
    }

    /// The on-disk tier, shared (link results live in the same file).
    pub fn disk_shared(&self) -> Option<Arc<DiskStore>> {
        self.disk.clone()
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tile: u64) -> TileKey {
        TileKey {
            variant: "b:m/1:abcdef12:s200:00000000".into(),
            contig: "chr1".into(),
            tile,
        }
    }

    fn tile_with(n: usize) -> Tile {
        let mut t = Tile::default();
        for i in 0..n {
            t.slots[i] = if i % 5 == 4 {
                Slot::Skipped
            } else {
                Slot::Scored(Score {
                    logit: i as f32,
                    probability: 0.5,
                    share: [0.2, 0.3, 0.5],
                })
            };
        }
        t
    }

    #[test]
    fn test_tile_encode_decode() {
        let t = tile_with(40);
        assert_eq!(Tile::decode(&t.encode()), Some(t.clone()));
        let bytes = t.encode();
        assert_eq!(Tile::decode(&bytes[..bytes.len() - 1]), None);
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert_eq!(Tile::decode(&bad), None);
        assert_eq!(Tile::decode(&[]), None);
    }

    #[test]
    fn test_disk_round_trip_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let stats = Arc::new(Stats::default());
        {
            let store = DiskStore::open(&path, 1 << 30, stats.clone()).unwrap();
            store.put(&key(1), &tile_with(10));
            store.flush();
            assert_eq!(store.get(&key(1), &stats).unwrap(), Some(tile_with(10)));
            assert_eq!(store.get(&key(2), &stats).unwrap(), None);
        }
        let store = DiskStore::open(&path, 1 << 30, stats.clone()).unwrap();
        assert_eq!(
            store.get(&key(1), &stats).unwrap(),
            Some(tile_with(10)),
            "survives reopening"
        );
        let s = store.stats().unwrap();
        assert_eq!((s.len(), s[0].tiles), (1, 1));
        store.clear(Some("b:"));
        assert_eq!(store.get(&key(1), &stats).unwrap(), None);
    }

    #[test]
    fn test_corrupt_entry_is_detected_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        let stats = Arc::new(Stats::default());
        let store = DiskStore::open(&path, 1 << 30, stats.clone()).unwrap();
        store.put(&key(1), &tile_with(10));
        store.flush();
        // flip one byte of the stored value behind the store's back
        let conn = Connection::open(&path).unwrap();
        let mut value: Vec<u8> = conn
            .query_row("SELECT value FROM tiles", [], |r| r.get(0))
            .unwrap();
        value[5] ^= 0x40;
        conn.execute("UPDATE tiles SET value = ?1", params![value])
            .unwrap();
        assert_eq!(store.get(&key(1), &stats).unwrap(), None);
        assert_eq!(stats.corrupt_entries.load(Ordering::Relaxed), 1);
        store.flush();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM tiles", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "the corrupt entry is deleted");
    }

    #[test]
    fn test_broken_database_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sqlite");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let stats = Arc::new(Stats::default());
        let store = DiskStore::open(&path, 1 << 30, stats.clone()).unwrap();
        store.put(&key(3), &tile_with(3));
        store.flush();
        assert!(store.get(&key(3), &stats).unwrap().is_some());
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .count();
        assert_eq!(aside, 1);
    }

    #[test]
    fn test_eviction_keeps_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(Stats::default());
        let one = tile_with(64).encode().len() as u64;
        let store = DiskStore::open(&dir.path().join("b.sqlite"), one * 10, stats.clone()).unwrap();
        for i in 0..30 {
            store.put(&key(i), &tile_with(64));
            store.flush();
        }
        let s = store.stats().unwrap();
        assert!(
            s[0].bytes <= one * 10,
            "{} bytes stored, limit {}",
            s[0].bytes,
            one * 10
        );
        assert!(stats.disk_evictions.load(Ordering::Relaxed) >= 20);
        assert!(
            store.get(&key(29), &stats).unwrap().is_some(),
            "the newest entry stays"
        );
    }

    #[test]
    fn test_cache_tiers_and_merge() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(Stats::default());
        let disk = DiskStore::open(&dir.path().join("b.sqlite"), 1 << 30, stats.clone()).unwrap();
        let cache = Cache::new(1, Some(disk), stats.clone());
        let s = Slot::Scored(Score {
            logit: 1.0,
            probability: 0.7,
            share: [0.1, 0.2, 0.7],
        });
        cache.merge(&key(1), &[(0, s), (1, Slot::Skipped)], true);
        let merged = cache.merge(&key(1), &[(2, s), (0, Slot::Missing)], true);
        assert_eq!(&merged.slots[..4], &[s, Slot::Skipped, s, Slot::Missing]);
        cache.disk().unwrap().flush();
        cache.clear_memory();
        assert!(cache.get_memory(&key(1)).is_none());
        assert_eq!(
            cache.get(&key(1)).unwrap().slots[2],
            s,
            "read back from disk"
        );
        assert_eq!(stats.disk_hits.load(Ordering::Relaxed), 1);
        assert!(cache.get_memory(&key(1)).is_some(), "promoted to memory");
    }
}
