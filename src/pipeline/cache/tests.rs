use super::*;
use rusqlite::{params, Connection};

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
fn test_a_value_under_another_key_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.sqlite");
    let stats = Arc::new(Stats::default());
    let store = DiskStore::open(&path, 1 << 30, stats.clone()).unwrap();
    store.put(&key(1359), &tile_with(3));
    store.put(&key(1390), &tile_with(40));
    store.flush();
    // swap the two rows' values together with their checksums behind the store's back
    let conn = Connection::open(&path).unwrap();
    let row = |k: &TileKey| -> (Vec<u8>, i64) {
        conn.query_row(
            "SELECT value, crc FROM tiles WHERE key = ?1",
            params![k.bytes()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (a, b) = (row(&key(1359)), row(&key(1390)));
    for (k, (v, crc)) in [(key(1359), b), (key(1390), a)] {
        conn.execute(
            "UPDATE tiles SET value = ?2, crc = ?3 WHERE key = ?1",
            params![k.bytes(), v, crc],
        )
        .unwrap();
    }
    let report = check::check(&path, false).unwrap();
    assert!(report.damaged());
    assert_eq!(report.entries, 2);
    assert_eq!(report.bad_checksum.len(), 2, "{report:?}");
    assert_eq!(store.get(&key(1359), &stats).unwrap(), None);
    assert_eq!(store.get(&key(1390), &stats).unwrap(), None);
    assert_eq!(stats.corrupt_entries.load(Ordering::Relaxed), 2);
}

#[test]
fn test_check_repair_deletes_damaged_entries_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.sqlite");
    let stats = Arc::new(Stats::default());
    {
        let store = DiskStore::open(&path, 1 << 30, stats.clone()).unwrap();
        for t in 0..4 {
            store.put(&key(t), &tile_with(10));
        }
        store.put_raw(b"background\tb:m/1".to_vec(), b"{}".to_vec());
    }
    let conn = Connection::open(&path).unwrap();
    // tile 1: a damaged value; tile 2: a value that passes its checksum but is no tile
    conn.execute(
        "UPDATE tiles SET value = x'00' WHERE key = ?1",
        params![key(1).bytes()],
    )
    .unwrap();
    let junk = b"not a tile".to_vec();
    let crc = disk::entry_crc(&key(2).bytes(), &junk);
    conn.execute(
        "UPDATE tiles SET value = ?2, crc = ?3 WHERE key = ?1",
        params![key(2).bytes(), junk, crc],
    )
    .unwrap();
    let before = std::fs::read(&path).unwrap();
    let report = check::check(&path, false).unwrap();
    assert_eq!(report.entries, 5);
    assert_eq!(
        report.bad_checksum,
        vec!["b:m/1:abcdef12:s200:00000000 chr1 1"]
    );
    assert_eq!(
        report.unreadable,
        vec!["b:m/1:abcdef12:s200:00000000 chr1 2"]
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a check without --repair writes nothing"
    );
    assert!(
        !report.repaired(),
        "a check without --repair repairs nothing"
    );
    let repaired = check::check(&path, true).unwrap();
    assert_eq!(repaired.deleted, 2);
    assert!(repaired.damaged() && repaired.repaired());
    let after = check::check(&path, false).unwrap();
    assert!(!after.damaged(), "{after:?}");
    assert_eq!(after.entries, 3);
}

#[test]
fn test_entries_of_the_older_format_are_dropped_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.sqlite");
    {
        // a format-1 file: user_version 0, checksum over the value alone
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE tiles (key BLOB PRIMARY KEY, value BLOB NOT NULL, crc INTEGER NOT NULL,
                                 size INTEGER NOT NULL, last_used INTEGER NOT NULL);",
        )
        .unwrap();
        let value = tile_with(5).encode();
        let crc = crc32fast::hash(&value) as i64;
        conn.execute(
            "INSERT INTO tiles VALUES (?1, ?2, ?3, ?4, 0)",
            params![key(7).bytes(), value, crc, 10],
        )
        .unwrap();
    }
    assert_eq!(check::check(&path, false).unwrap().other_format, Some(0));
    // another format is never repaired in place, whatever was deleted
    let other = check::CheckReport {
        other_format: Some(0),
        deleted: 1,
        ..Default::default()
    };
    assert!(other.damaged() && !other.repaired());
    let stats = Arc::new(Stats::default());
    let store = DiskStore::open(&path, 1 << 30, stats.clone()).unwrap();
    assert_eq!(store.get(&key(7), &stats).unwrap(), None);
    assert_eq!(
        stats.corrupt_entries.load(Ordering::Relaxed),
        0,
        "dropped, not corrupt"
    );
    store.put(&key(7), &tile_with(5));
    drop(store);
    let report = check::check(&path, false).unwrap();
    assert!(!report.damaged(), "{report:?}");
    // a file of a later format is refused, not overwritten
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 9)
        .unwrap();
    let e = DiskStore::open(&path, 1 << 30, stats).unwrap_err();
    assert!(
        chain(&e).contains("newer cistrack (file format 9"),
        "{}",
        chain(&e)
    );
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

/// Records: memory first, then the disk tier (decoded once, then kept in memory), bounded
/// in bytes with the least recently used out first, typed (a value of another type under a
/// key is a miss), listed per namespace.
#[test]
fn test_records_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let stats = Arc::new(Stats::default());
    let disk = DiskStore::open(&dir.path().join("r.sqlite"), 1 << 30, stats.clone()).unwrap();
    // 4 MiB: 1 MiB of records
    let cache = Cache::new(4, Some(disk), stats.clone());
    let text = |v: &String| v.len();
    cache.put_record(
        "genes",
        "a",
        Arc::new("alpha".to_string()),
        5,
        Some(b"alpha".to_vec()),
    );
    cache.put_record("elements", "x", Arc::new((1.5f64, 2.0f64)), 16, None);
    assert_eq!(
        *cache
            .get_memory_record::<(f64, f64)>("elements", "x")
            .unwrap(),
        (1.5, 2.0)
    );
    assert!(
        cache.get_memory_record::<String>("elements", "x").is_none(),
        "another type is a miss"
    );
    assert!(cache.get_memory_record::<String>("genes", "x").is_none());
    cache.disk().unwrap().flush();
    cache.clear_memory();
    assert_eq!(cache.memory_record_bytes(), 0);
    assert!(cache.get_memory_record::<String>("genes", "a").is_none());
    let decoded = std::cell::Cell::new(0);
    let decode = |b: &[u8]| {
        decoded.set(decoded.get() + 1);
        String::from_utf8(b.to_vec()).ok()
    };
    assert_eq!(
        *cache.get_record("genes", "a", decode, text).unwrap(),
        "alpha"
    );
    assert_eq!(
        *cache.get_record("genes", "a", decode, text).unwrap(),
        "alpha"
    );
    assert_eq!(decoded.get(), 1, "decoded once, then from memory");
    assert!(
        cache.get_record("elements", "x", decode, text).is_none(),
        "memory only"
    );
    assert_eq!(
        cache.stored_records("genes"),
        [("a".to_string(), b"alpha".to_vec())]
    );

    // 1 MiB of 100-kB records keeps the last ten or so, the oldest out first
    for i in 0..40 {
        cache.put_record(
            "big",
            &i.to_string(),
            Arc::new(vec![0u8; 10]),
            100_000,
            None,
        );
    }
    assert!(cache.memory_record_bytes() <= 1 << 20);
    let kept = cache.memory_records::<Vec<u8>>("big").len();
    assert!((8..=10).contains(&kept), "{kept}");
    assert!(cache.get_memory_record::<Vec<u8>>("big", "39").is_some());
    assert!(cache.get_memory_record::<Vec<u8>>("big", "0").is_none());
    assert!(
        cache.get_memory_record::<String>("genes", "a").is_none(),
        "evicted too"
    );
}
