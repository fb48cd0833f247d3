//! The per-build cache: in memory, an LRU of score tiles and a byte-bounded LRU of records
//! (gene results, element embeddings and signals), over a persistent SQLite store.
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
//! open is moved aside and a new one created.
//!
//! Across hosts, an optional third tier on Redis ([`shared`]) holds the same keys and
//! checksummed values: reads go memory → disk → Redis (a Redis hit is kept on disk too), and
//! every write goes to all tiers.

pub mod check;
pub mod disk;
pub mod key;
pub mod shared;
pub mod tile;

use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::error::chain;

pub use disk::{DiskStore, Error, Stats, VariantStats};
pub use shared::{SharedSettings, SharedStore};
use tile::{decode_score, encode_score, window_key};
pub use tile::{
    variant_id, window_namespace, RawEntry, Score, Slot, Tile, TileKey, WindowDigest, TILE_WINDOWS,
};

/// Default size of the in-memory tier, in MiB.
pub const DEFAULT_MEMORY_MIB: usize = 256;
/// Default size limit of the on-disk tier, in MiB.
pub const DEFAULT_DISK_MIB: u64 = 2048;

/// Where a build's on-disk cache lives (the daemon, `score`, `precompute` and `annotate` share
/// it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Folder of the `<build>.sqlite` files.
    pub dir: std::path::PathBuf,
    /// Size limit of the file, bytes (least recently used entries are evicted).
    pub max_bytes: u64,
    /// The shared tier (Redis), if configured.
    pub shared: Option<SharedSettings>,
}

impl CacheSettings {
    /// The database file of `build`.
    pub fn path(&self, build: &str) -> std::path::PathBuf {
        self.dir.join(format!("{build}.sqlite"))
    }
}

/// The part of the memory tier given to records ([`Cache::get_record`]): one in this many
/// bytes; tiles get the rest.
pub const RECORD_MEMORY_SHARE: usize = 4;

/// Records in memory: values of any type by namespace and key, least recently used first out
/// once their bytes pass the limit.
struct Records {
    entries: LruCache<Vec<u8>, (Arc<dyn Any + Send + Sync>, usize)>,
    bytes: usize,
    limit: usize,
}

impl Records {
    fn get<T: Any + Send + Sync>(&mut self, key: &[u8]) -> Option<Arc<T>> {
        let (value, _) = self.entries.get(key)?;
        value.clone().downcast::<T>().ok()
    }

    fn put(&mut self, key: Vec<u8>, value: Arc<dyn Any + Send + Sync>, bytes: usize) {
        // the key and the LRU's node count too
        let bytes = bytes + key.len() + 64;
        if let Some((_, old)) = self.entries.put(key, (value, bytes)) {
            self.bytes -= old;
        }
        self.bytes += bytes;
        while self.bytes > self.limit {
            match self.entries.pop_lru() {
                Some((_, (_, b))) => self.bytes -= b,
                None => break,
            }
        }
    }
}

/// The tiers of one build's cache.
pub struct Cache {
    memory: Mutex<LruCache<TileKey, Arc<Tile>>>,
    records: Mutex<Records>,
    disk: Option<Arc<DiskStore>>,
    shared: Option<SharedStore>,
    generation: AtomicU64,
    /// Counters.
    pub stats: Arc<Stats>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("disk", &self.disk)
            .field("shared", &self.shared)
            .finish()
    }
}

impl Cache {
    /// A cache with `memory_mib` in memory (tiles, and one [`RECORD_MEMORY_SHARE`]th for
    /// records) over an optional disk store.
    pub fn new(memory_mib: usize, disk: Option<DiskStore>, stats: Arc<Stats>) -> Self {
        let record_mib = memory_mib / RECORD_MEMORY_SHARE;
        // A tile in memory costs its slots plus the LRU's key and node: about 2 KiB.
        let capacity = NonZeroUsize::new(((memory_mib - record_mib) * 1024 / 2).max(16))
            .expect("positive; this is a bug");
        Self {
            memory: Mutex::new(LruCache::new(capacity)),
            records: Mutex::new(Records {
                entries: LruCache::unbounded(),
                bytes: 0,
                limit: record_mib.max(1) << 20,
            }),
            disk: disk.map(Arc::new),
            shared: None,
            generation: AtomicU64::new(0),
            stats,
        }
    }

    /// Adds the shared tier of `build` (Redis) when `settings` names one.
    ///
    /// # Errors
    ///
    /// [`Error::Shared`] for a Redis URL the client cannot use (an unreachable Redis is not an
    /// error: see [`shared`]).
    pub fn with_shared(
        mut self,
        settings: Option<&SharedSettings>,
        build: &str,
    ) -> Result<Self, Error> {
        if let Some(settings) = settings {
            self.shared = Some(SharedStore::open(settings, build, self.stats.clone())?);
        }
        Ok(self)
    }

    /// The cache of `build`: `memory_mib` in memory over the SQLite file that `settings` names
    /// (and its shared tier, if any), or memory only without settings.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be created or opened, [`Error::Shared`] for an
    /// unusable Redis URL.
    pub fn open(
        settings: Option<&CacheSettings>,
        build: &str,
        memory_mib: usize,
    ) -> Result<Self, Error> {
        let stats = Arc::new(Stats::default());
        let disk = match settings {
            Some(s) => Some(DiskStore::open(&s.path(build), s.max_bytes, stats.clone())?),
            None => None,
        };
        Self::new(memory_mib, disk, stats)
            .with_shared(settings.and_then(|s| s.shared.as_ref()), build)
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

    /// Whether a tier below memory (disk or shared) can answer.
    pub fn has_lower_tiers(&self) -> bool {
        self.disk.is_some() || self.shared.is_some()
    }

    /// The tile from memory, else disk, else the shared tier (promoted to memory; a shared hit
    /// is kept on disk too). A tile on disk with slots still missing is completed from the
    /// shared tier. Blocking on disk and network reads: call from a blocking thread.
    pub fn get(&self, key: &TileKey) -> Option<Arc<Tile>> {
        if let Some(tile) = self.get_memory(key) {
            return Some(tile);
        }
        let mut found = self.disk.as_ref().and_then(|disk| {
            let read = disk.get(key, &self.stats);
            let counter = match &read {
                Ok(Some(_)) => &self.stats.disk_hits,
                _ => &self.stats.disk_misses,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            or_miss(read)
        });
        if let Some(shared) = &self.shared {
            if found.as_ref().is_none_or(Tile::has_missing) {
                let remote = shared.get_raw(&key.bytes()).and_then(|v| Tile::decode(&v));
                let counter = match &remote {
                    Some(_) => &self.stats.redis_hits,
                    None => &self.stats.redis_misses,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Some(remote) = remote {
                    let tile = match found {
                        Some(mut local) => {
                            local.merge(&remote);
                            local
                        }
                        None => remote,
                    };
                    if let Some(disk) = &self.disk {
                        disk.put(key, &tile);
                    }
                    found = Some(tile);
                }
            }
        }
        let tile = Arc::new(found?);
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
            if let Some(shared) = &self.shared {
                shared.put_raw(&key.bytes(), &merged.encode());
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
                Err(e) => tracing::warn!("{}; exporting what is in memory", chain(&e)),
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

    /// Drops the in-memory tier, tiles and records (the disk tier is kept).
    pub fn clear_memory(&self) {
        self.memory
            .lock()
            .expect("cache lock poisoned; this is a bug")
            .clear();
        let mut records = self.records();
        records.entries.clear();
        records.bytes = 0;
    }

    /// The disk tier.
    pub fn disk(&self) -> Option<&DiskStore> {
        self.disk.as_deref()
    }

    /// The shared tier.
    pub fn shared(&self) -> Option<&SharedStore> {
        self.shared.as_ref()
    }

    /// Waits until every queued write is on disk and sent to the shared tier.
    pub fn flush(&self) {
        if let Some(disk) = &self.disk {
            disk.flush();
        }
        if let Some(shared) = &self.shared {
            shared.flush();
        }
    }

    /// The on-disk tier, shared (link results live in the same file).
    pub fn disk_shared(&self) -> Option<Arc<DiskStore>> {
        self.disk.clone()
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The score of a window by the digest of its model input (windows off the grid: an
    /// allele's haplotype), from the disk tier, else the shared tier (and then kept on disk);
    /// `None` without either. A read error is logged and counts as a miss.
    pub fn get_window(&self, namespace: &str, digest: &WindowDigest) -> Option<Score> {
        if let Some(disk) = &self.disk {
            if let Some(score) = or_miss(disk.get_window(namespace, digest, &self.stats)) {
                return Some(score);
            }
        }
        self.read_shared(&window_key(namespace, digest), decode_score)
    }

    /// The value under `key` in the shared tier, parsed by `decode`, and kept on disk when it
    /// parses; `None` without a shared tier.
    fn read_shared<T>(&self, key: &[u8], decode: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
        let raw = self.shared.as_ref()?.get_raw(key)?;
        let value = decode(&raw)?;
        if let Some(disk) = &self.disk {
            disk.put_raw(key.to_vec(), raw);
        }
        Some(value)
    }

    /// Stores a window score by digest in the disk and shared tiers (nothing without either).
    pub fn put_window(&self, namespace: &str, digest: &WindowDigest, score: &Score) {
        if let Some(disk) = &self.disk {
            disk.put_window(namespace, digest, score);
        }
        if let Some(shared) = &self.shared {
            shared.put_raw(&window_key(namespace, digest), &encode_score(score));
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records
            .lock()
            .expect("cache lock poisoned; this is a bug")
    }

    /// A record (a gene's links, an element's embedding or signals) stored under `namespace`
    /// and `key`: from memory, else decoded by `decode` from the disk tier, else from the shared
    /// tier (and then kept on disk), and then kept in memory at the bytes `size` gives. A read
    /// error is logged and counts as a miss, as does a value `decode` rejects or one of another
    /// type under the same key.
    pub fn get_record<T: Any + Send + Sync>(
        &self,
        namespace: &str,
        key: &str,
        decode: impl FnOnce(&[u8]) -> Option<T>,
        size: impl FnOnce(&T) -> usize,
    ) -> Option<Arc<T>> {
        let full = record_key(namespace, key);
        if let Some(value) = self.records().get::<T>(&full) {
            return Some(value);
        }
        let local = self
            .disk
            .as_ref()
            .and_then(|disk| or_miss(disk.get_raw(&full, &self.stats)));
        let value = match local {
            Some(encoded) => decode(&encoded)?,
            None => self.read_shared(&full, decode)?,
        };
        let bytes = size(&value);
        let value = Arc::new(value);
        self.records().put(full, value.clone(), bytes);
        Some(value)
    }

    /// A record in memory only (no disk read): see [`Cache::get_record`].
    pub fn get_memory_record<T: Any + Send + Sync>(
        &self,
        namespace: &str,
        key: &str,
    ) -> Option<Arc<T>> {
        self.records().get::<T>(&record_key(namespace, key))
    }

    /// Keeps a record in memory (`bytes`: what it holds), and with `encoded` also in the disk
    /// and shared tiers (where there are).
    pub fn put_record<T: Any + Send + Sync>(
        &self,
        namespace: &str,
        key: &str,
        value: Arc<T>,
        bytes: usize,
        encoded: Option<Vec<u8>>,
    ) {
        let full = record_key(namespace, key);
        if let Some(encoded) = encoded {
            if let Some(shared) = &self.shared {
                shared.put_raw(&full, &encoded);
            }
            if let Some(disk) = &self.disk {
                disk.put_raw(full.clone(), encoded);
            }
        }
        self.records().put(full, value, bytes);
    }

    /// Every record of type `T` in memory under `namespace` (least recently used last).
    pub fn memory_records<T: Any + Send + Sync>(&self, namespace: &str) -> Vec<Arc<T>> {
        let prefix = record_key(namespace, "");
        self.records()
            .entries
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(_, (v, _))| v.clone().downcast::<T>().ok())
            .collect()
    }

    /// Bytes of records in memory.
    pub fn memory_record_bytes(&self) -> usize {
        self.records().bytes
    }

    /// Every record stored on disk under `namespace`: `(key, encoded value)`, keys without the
    /// namespace.
    pub fn stored_records(&self, namespace: &str) -> Vec<(String, Vec<u8>)> {
        let Some(disk) = &self.disk else {
            return Vec::new();
        };
        let prefix = record_key(namespace, "");
        let prefix = String::from_utf8(prefix).expect("namespaces are text");
        disk.scan_raw(&prefix, &self.stats)
            .unwrap_or_else(|e| {
                tracing::warn!("{}", chain(&e));
                Vec::new()
            })
            .into_iter()
            .filter_map(|(k, v)| {
                let k = String::from_utf8(k).ok()?;
                Some((k.strip_prefix(&prefix)?.to_string(), v))
            })
            .collect()
    }
}

/// A failed read of the disk tier, logged, as a miss (the value is computed again).
fn or_miss<T>(read: Result<Option<T>, Error>) -> Option<T> {
    read.unwrap_or_else(|e| {
        tracing::warn!("{}; computing it again", chain(&e));
        None
    })
}

/// The on-disk key of a record: `namespace`, a tab, `key`.
fn record_key(namespace: &str, key: &str) -> Vec<u8> {
    format!("{namespace}\t{key}").into_bytes()
}

#[cfg(test)]
mod tests;
