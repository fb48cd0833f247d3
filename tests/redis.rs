//! The shared cache tier on a real `redis-server` (started here on a free loopback port): two
//! daemons with their own disk caches serve each other's tiles; a value moved to another key
//! is refused; a killed Redis degrades to the local tiers with one warning and loses nothing;
//! a restarted one is used again; `cache stats|clear` reach it.

#[path = "support/helpers.rs"]
mod helpers;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const LONG: Duration = Duration::from_secs(120);

/// A `redis-server` on `port`, without persistence, evicting least recently used keys.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])
            .stdout(Stdio::null())
            .spawn()
            .expect(
                "redis-server is not installed: run scripts/setup.sh (Debian package redis-server)",
            );
        let redis = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while redis.connection().is_none() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    fn connection(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).ok()?;
        client
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()
    }

    /// Every key under `prefix`.
    fn keys(&self, prefix: &str) -> Vec<Vec<u8>> {
        let mut c = self.connection().unwrap();
        let mut keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut c)
            .unwrap();
        keys.sort();
        keys
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fixture config with `cache = { redis = … }` pointing at `port`.
fn config_with_redis(dir: &Path, port: u16, prefix: &str) -> std::path::PathBuf {
    helpers::edited_fixture_config(dir, |text| {
        text.replacen(
            "\n[builds.fixture]",
            &format!(
                "cache = {{ redis = \"redis://127.0.0.1:{port}/0\", redis_prefix = \"{prefix}\" }}\n\n[builds.fixture]"
            ),
            1,
        )
    })
}

fn daemon(config: &Path, cache_dir: &Path) -> helpers::Daemon {
    let mut command = helpers::cistrack_command();
    command
        .args([
            "--config",
            config.to_str().unwrap(),
            "--device",
            "cpu",
            "serve",
        ])
        .args(["--bind", "127.0.0.1:0", "--grace=10"])
        .args(["--cache-dir", cache_dir.to_str().unwrap()]);
    helpers::Daemon::start(command)
}

fn json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = helpers::http_get(addr, path, LONG).expect("an answer");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    let (_, text) = helpers::http_get(addr, "/metrics", LONG).unwrap();
    helpers::metric_sum(&text, name)
}

fn enhancers(addr: SocketAddr, contig: &str, start: u64, end: u64) -> Value {
    let v = json(
        addr,
        &format!("/v1/builds/fixture/enhancers?ref={contig}&start={start}&end={end}&wait=60000"),
    );
    assert_eq!(v["complete"], true, "{v}");
    v
}

#[test]
fn daemons_share_tiles_through_redis_and_survive_its_death() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let prefix = format!("t{}", std::process::id());
    let redis = Redis::start(port);
    let config = config_with_redis(tmp.path(), port, &prefix);

    // daemon A computes a view; its tiles reach Redis
    let a = daemon(&config, &tmp.path().join("a"));
    let first = enhancers(a.addr, "chr1", 20_000, 26_000);
    assert!(metric(a.addr, "cistrack_windows_scored_total") > 0.0);
    let health = json(a.addr, "/healthz");
    assert_eq!(health["redis"]["up"], true, "{health}");
    // the view spans several tiles, written through a queue: wait for two of them (waiting
    // for the first write alone raced the second on a loaded machine)
    let deadline = Instant::now() + LONG;
    let keys = loop {
        let keys = redis.keys(&format!("{prefix}:fixture:"));
        if keys.len() >= 2 {
            break keys;
        }
        assert!(Instant::now() < deadline, "tiles in Redis: {keys:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(metric(a.addr, "cistrack_cache_redis_writes_total") >= 2.0);
    assert!(!a.log().contains("maxmemory"), "{}", a.log());

    // daemon B, with its own empty disk cache, serves the same view without scoring a window
    let b = daemon(&config, &tmp.path().join("b"));
    let second = enhancers(b.addr, "chr1", 20_000, 26_000);
    assert_eq!(first["windows"], second["windows"]);
    assert_eq!(first["elements"], second["elements"]);
    assert_eq!(metric(b.addr, "cistrack_windows_scored_total"), 0.0);
    let (_, text) = helpers::http_get(b.addr, "/metrics", LONG).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("cistrack_cache_hits_total{")
                && l.contains("tier=\"redis\"")
                && !l.ends_with(" 0")),
        "{text}"
    );

    // a value under another key of the same build is refused: swap two tiles' values
    {
        let mut c = redis.connection().unwrap();
        assert!(keys.len() >= 2, "the view spans several tiles: {keys:?}");
        let (k1, k2) = (&keys[0], &keys[1]);
        let v1: Vec<u8> = redis::cmd("GET").arg(k1).query(&mut c).unwrap();
        let v2: Vec<u8> = redis::cmd("GET").arg(k2).query(&mut c).unwrap();
        assert_ne!(v1, v2);
        let _: () = redis::cmd("SET").arg(k1).arg(&v2).query(&mut c).unwrap();
        let _: () = redis::cmd("SET").arg(k2).arg(&v1).query(&mut c).unwrap();
    }
    let c = daemon(&config, &tmp.path().join("c"));
    let third = enhancers(c.addr, "chr1", 20_000, 26_000);
    assert_eq!(
        first["windows"], third["windows"],
        "swapped values were served"
    );
    assert!(metric(c.addr, "cistrack_cache_corrupt_entries_total") >= 2.0);
    assert!(metric(c.addr, "cistrack_windows_scored_total") > 0.0);
    drop(c);

    // Redis dies: B answers a new view from the model and its own tiers, warning once
    redis.kill();
    let fresh = enhancers(b.addr, "chr2", 10_000, 16_000);
    let again = enhancers(b.addr, "chr2", 30_000, 34_000);
    assert!(fresh["windows"].as_array().is_some_and(|w| !w.is_empty()));
    assert!(again["windows"].as_array().is_some_and(|w| !w.is_empty()));
    let log = b.log();
    assert_eq!(log.matches("cannot be reached").count(), 1, "{log}");
    assert_eq!(json(b.addr, "/healthz")["redis"]["up"], false);
    assert_eq!(metric(b.addr, "cistrack_cache_redis_up"), 0.0);
    assert!(metric(b.addr, "cistrack_cache_redis_errors_total") >= 1.0);
    let (status, log) = b.stop();
    assert!(status.success(), "{log}");

    // nothing was lost: B's disk holds the tiles it read from Redis and those it computed
    let b = daemon(&config, &tmp.path().join("b"));
    assert_eq!(
        enhancers(b.addr, "chr1", 20_000, 26_000)["windows"],
        first["windows"]
    );
    assert_eq!(
        enhancers(b.addr, "chr2", 10_000, 16_000)["windows"],
        fresh["windows"]
    );
    assert_eq!(metric(b.addr, "cistrack_windows_scored_total"), 0.0);

    // Redis comes back (empty): B uses it again after its retry pause
    let redis = Redis::start(port);
    let deadline = Instant::now() + LONG;
    loop {
        enhancers(b.addr, "chr2", 20_000, 22_000);
        if json(b.addr, "/healthz")["redis"]["up"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never reached the restarted Redis"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    enhancers(b.addr, "chr1", 40_000, 42_000);
    let deadline = Instant::now() + LONG;
    while redis.keys(&format!("{prefix}:fixture:")).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no write reached the restarted Redis"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(b.log().contains("reachable again"), "{}", b.log());
    drop(b);
    drop(a);

    // `cache stats` counts the build's entries in Redis; `cache clear` deletes them
    let config_arg = config.to_str().unwrap();
    let cache_dir = tmp.path().join("a");
    let cache_arg = cache_dir.to_str().unwrap();
    let stats = helpers::assert_ok(&helpers::cistrack(&[
        "--config",
        config_arg,
        "cache",
        "stats",
        "--cache-dir",
        cache_arg,
    ]));
    let n = redis.keys(&format!("{prefix}:fixture:")).len();
    assert!(
        stats.contains(&format!(
            "fixture: Redis redis://127.0.0.1:{port}/0: {n} entries"
        )),
        "{stats}"
    );
    let cleared = helpers::assert_ok(&helpers::cistrack(&[
        "--config",
        config_arg,
        "cache",
        "clear",
        "--cache-dir",
        cache_arg,
    ]));
    assert!(
        cleared.contains(&format!("cleared {n} entries")),
        "{cleared}"
    );
    assert!(redis.keys(&format!("{prefix}:fixture:")).is_empty());
}

#[test]
fn an_unreachable_redis_is_reported_by_cache_stats_and_a_bad_url_by_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config_with_redis(tmp.path(), free_port(), "x");
    let out = helpers::cistrack(&["--config", config.to_str().unwrap(), "cache", "stats"]);
    helpers::assert_fails_with(
        &out,
        &["fixture: Redis redis://127.0.0.1:", "cannot be reached"],
    );

    let bad = helpers::edited_fixture_config(tmp.path(), |text| {
        text.replacen(
            "\n[builds.fixture]",
            "cache = { redis = \"http://:secret@example.org\" }\n\n[builds.fixture]",
            1,
        )
    });
    let out = helpers::cistrack(&["--config", bad.to_str().unwrap(), "cache", "stats"]);
    let err = helpers::assert_fails_with(&out, &["cache.redis", "http://:***@example.org"]);
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn a_precompute_job_fills_redis_for_every_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let prefix = format!("p{}", std::process::id());
    let redis = Redis::start(port);
    let config = config_with_redis(tmp.path(), port, &prefix);
    let regions = tmp.path().join("regions.bed");
    std::fs::write(&regions, "chr2\t4000\t12000\n").unwrap();
    // two shards of a job array, each with its own disk cache (as on two hosts)
    for shard in ["0/2", "1/2"] {
        let cache = tmp.path().join(format!("job{}", &shard[..1]));
        helpers::assert_ok(&helpers::precompute_with(
            &config,
            &regions,
            &cache,
            &["--shard", shard],
        ));
    }
    assert!(!redis.keys(&format!("{prefix}:fixture:")).is_empty());
    let d = daemon(&config, &tmp.path().join("daemon"));
    let v = enhancers(d.addr, "chr2", 4000, 12_000);
    assert!(v["windows"].as_array().is_some_and(|w| w.len() > 10), "{v}");
    assert_eq!(metric(d.addr, "cistrack_windows_scored_total"), 0.0);
}

#[test]
fn a_partial_tile_on_disk_is_completed_from_redis_and_kept() {
    use cistrack::pipeline::cache::{
        Cache, DiskStore, Score, SharedSettings, Slot, Stats, TileKey,
    };
    use std::sync::Arc;

    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(free_port());
    let settings = SharedSettings {
        url: format!("redis://127.0.0.1:{}", redis.port),
        prefix: "unit".into(),
    };
    let open = |dir: &str, shared: bool| {
        let stats = Arc::new(Stats::default());
        let path = tmp.path().join(dir).join("b.sqlite");
        let disk = DiskStore::open(&path, 1 << 20, stats.clone()).unwrap();
        let cache = Cache::new(4, Some(disk), stats);
        cache.with_shared(shared.then_some(&settings), "b").unwrap()
    };
    let scored = |p: f32| {
        Slot::Scored(Score {
            logit: p,
            probability: p,
            share: [0.5, 0.25, 0.25],
        })
    };
    let key = TileKey {
        variant: "b:model/1:abc:s50:f".into(),
        contig: "chr1".into(),
        tile: 3,
    };
    // host one computed slots 0 and 1; host two, before it joined Redis, slot 0 only
    let one = open("one", true);
    one.merge(&key, &[(0, scored(0.1)), (1, scored(0.2))], true);
    one.flush();
    let two = open("two", false);
    two.merge(&key, &[(0, scored(0.1))], true);
    two.flush();
    drop(two);

    let two = open("two", true);
    let tile = two.get(&key).unwrap();
    assert_eq!(tile.slots[..3], [scored(0.1), scored(0.2), Slot::Missing]);
    let stats = two.stats();
    assert_eq!(
        stats.disk_hits.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        stats.redis_hits.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    two.flush();
    drop(two);
    // what Redis gave is on host two's disk now
    let alone = open("two", false);
    assert_eq!(alone.get(&key).unwrap().slots[1], scored(0.2));
}
