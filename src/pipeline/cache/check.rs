//! Reading a cache file without changing it (`cistrack cache stats`), and checking it
//! (`cistrack cache check [--repair]`): SQLite's integrity check, every entry's checksum (which
//! covers its key, so a value under another key fails), and every tile and window value parses.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags};

use super::disk::{entry_crc, Error, VariantStats, FORMAT};
use super::tile::{decode_score, Tile};

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// Entries read.
    pub entries: u64,
    /// SQLite's integrity-check messages, or why the file could not be read as a database
    /// (empty: the file is sound).
    pub integrity: Vec<String>,
    /// Keys (as text) whose checksum fails: a damaged value, or a value under another key.
    pub bad_checksum: Vec<String>,
    /// Keys whose value passes its checksum but does not parse as what the key names.
    pub unreadable: Vec<String>,
    /// The file's format (`PRAGMA user_version`) when it is not this version's.
    pub other_format: Option<i64>,
    /// With `repair`: entries deleted.
    pub deleted: u64,
    /// With `repair`: where a file SQLite could not trust was moved (a new one is made on the
    /// next open).
    pub moved_to: Option<PathBuf>,
}

impl CheckReport {
    /// Whether anything is wrong.
    pub fn damaged(&self) -> bool {
        !self.integrity.is_empty()
            || !self.bad_checksum.is_empty()
            || !self.unreadable.is_empty()
            || self.other_format.is_some()
    }

    /// Whether a `--repair` run removed what was damaged: it deleted the bad entries or moved an
    /// untrustworthy file aside. A file of another format is never repaired in place.
    pub fn repaired(&self) -> bool {
        (self.moved_to.is_some() || self.deleted > 0) && self.other_format.is_none()
    }
}

fn store_error(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Store {
        path: path.into(),
        source: e.into(),
    }
}

fn open(path: &Path, write: bool) -> rusqlite::Result<Connection> {
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// Entries and bytes per namespace, read without changing the file (no table is created, no
/// broken file moved aside).
///
/// # Errors
///
/// [`Error::Store`] when the file cannot be read as a cache (`cistrack cache check` says
/// more).
pub fn stats(path: &Path) -> Result<Vec<VariantStats>, Error> {
    let conn = open(path, false).map_err(store_error(path))?;
    let mut stmt = conn
        .prepare("SELECT key, size FROM tiles")
        .map_err(store_error(path))?;
    let mut by_variant: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
        .map_err(store_error(path))?;
    for row in rows {
        let (key, size) = row.map_err(store_error(path))?;
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

/// Whether a value parses as what its key names: tiles (`variant\tcontig\tindex`, the variant
/// ending in `:s<stride>:<fingerprint>`) and window scores (`...:windows\t<digest>`); records
/// of other namespaces are only checksummed.
fn parses(key: &str, value: &[u8]) -> bool {
    let parts: Vec<&str> = key.split('\t').collect();
    let is_tile_variant = |v: &str| {
        let mut fields = v.rsplit(':');
        let (_, stride) = (fields.next(), fields.next());
        stride.is_some_and(|s| {
            s.len() > 1 && s.starts_with('s') && s[1..].bytes().all(|b| b.is_ascii_digit())
        })
    };
    match parts.as_slice() {
        [variant, _, index] if is_tile_variant(variant) && index.parse::<u64>().is_ok() => {
            Tile::decode(value).is_some()
        }
        [namespace, _] if namespace.ends_with(":windows") => decode_score(value).is_some(),
        _ => true,
    }
}

/// Checks the cache file at `path`; with `repair`, deletes the entries that fail, or moves a
/// file SQLite finds damaged aside (`<path>.corrupt-<unix time>`; the next open starts an
/// empty cache). Without `repair` the file is opened read-only.
///
/// # Errors
///
/// [`Error::Store`] when SQLite fails while repairing.
pub fn check(path: &Path, repair: bool) -> Result<CheckReport, Error> {
    let mut report = CheckReport::default();
    let conn = match open(path, repair) {
        Ok(c) => c,
        Err(e) => {
            report.integrity.push(format!("cannot open: {e}"));
            return finish_broken(path, repair, report);
        }
    };
    let integrity: rusqlite::Result<Vec<String>> = (|| {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    })();
    match integrity {
        Ok(lines) if lines == ["ok"] => {}
        Ok(lines) => report.integrity = lines,
        Err(e) => report
            .integrity
            .push(format!("not a readable database: {e}")),
    }
    if !report.integrity.is_empty() {
        drop(conn);
        return finish_broken(path, repair, report);
    }
    match conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)) {
        Ok(v) if v == FORMAT => {}
        Ok(v) => report.other_format = Some(v),
        Err(e) => report
            .integrity
            .push(format!("cannot read the format: {e}")),
    }
    let mut bad: Vec<Vec<u8>> = Vec::new();
    {
        let mut stmt = conn
            .prepare("SELECT key, value, crc FROM tiles")
            .map_err(store_error(path))?;
        let mut rows = stmt.query([]).map_err(store_error(path))?;
        while let Some(row) = rows.next().map_err(store_error(path))? {
            report.entries += 1;
            let key: Vec<u8> = row.get(0).map_err(store_error(path))?;
            let value: Vec<u8> = row.get(1).map_err(store_error(path))?;
            let crc: i64 = row.get(2).map_err(store_error(path))?;
            let text = String::from_utf8_lossy(&key).replace('\t', " ");
            if entry_crc(&key, &value) != crc {
                report.bad_checksum.push(text);
                bad.push(key);
            } else if !parses(&String::from_utf8_lossy(&key), &value) {
                report.unreadable.push(text);
                bad.push(key);
            }
        }
    }
    if repair && !bad.is_empty() {
        let tx = conn.unchecked_transaction().map_err(store_error(path))?;
        for key in &bad {
            report.deleted += tx
                .execute("DELETE FROM tiles WHERE key = ?1", params![key])
                .map_err(store_error(path))? as u64;
        }
        tx.commit().map_err(store_error(path))?;
    }
    Ok(report)
}

/// The end of a check of a file SQLite cannot trust: with `repair`, moved aside.
fn finish_broken(path: &Path, repair: bool, mut report: CheckReport) -> Result<CheckReport, Error> {
    if repair {
        let aside = PathBuf::from(format!(
            "{}.corrupt-{}",
            path.display(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ));
        std::fs::rename(path, &aside).map_err(|e| Error::Store {
            path: path.into(),
            source: crate::error::context("cannot move the damaged file aside", e),
        })?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        report.moved_to = Some(aside);
    }
    Ok(report)
}
