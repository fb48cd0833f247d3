//! Helpers shared by the integration tests: paths, running the real binary, the independent
//! Python reader (pyBigWig in the repo's .venv, which `make setup` creates).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared real-data folder beside the repository.
pub fn shared() -> PathBuf {
    let path = root().join("../shared/data");
    assert!(
        path.is_dir(),
        "{} is missing: the real-data tests need ../shared/data",
        path.display()
    );
    path
}

/// The fixture config.
pub fn fixture_config() -> PathBuf {
    root().join("tests/data/fixture.toml")
}

/// Runs the cistrack binary with a clean environment (no CISTRACK_* variables).
pub fn cistrack(args: &[&str]) -> Output {
    cistrack_env(args, &[])
}

/// Runs the cistrack binary with extra environment variables.
pub fn cistrack_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = cistrack_command();
    cmd.args(args).current_dir(root());
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("cannot run the cistrack binary")
}

/// Asserts success and returns stdout.
pub fn assert_ok(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cistrack failed ({:?}):\n{stderr}",
        output.status
    );
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// Asserts a clean failure (exit status 1, no panic, no signal) whose stderr contains every
/// needle; returns stderr.
pub fn assert_fails_with(output: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit status 1, got {:?}; stderr:\n{stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "cistrack panicked:\n{stderr}");
    assert!(
        stderr.starts_with("error: ") || stderr.contains("\nerror: "),
        "no error line:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr should contain {needle:?}:\n{stderr}"
        );
    }
    stderr
}

/// The Python with numpy and pyBigWig: `CISTRACK_TEST_PYTHON`, else the repo's `.venv`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CISTRACK_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `make setup` (the tests read files back with pyBigWig)",
        venv.display()
    );
    venv
}

/// Runs a Python snippet with arguments and returns its stdout.
pub fn run_python(code: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("cannot run python");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("python output is UTF-8")
}

/// The BED lines of a bigBed as read by pyBigWig (an independent reader: libBigWig), in the
/// same tab-separated form cistrack writes.
pub fn bigbed_lines(path: &Path) -> Vec<String> {
    let code = r#"
import sys, pyBigWig
bb = pyBigWig.open(sys.argv[1])
assert bb.isBigBed(), "not a bigBed"
for chrom in bb.chroms():
    for start, end, rest in (bb.entries(chrom, 0, bb.chroms(chrom)) or []):
        print(f"{chrom}\t{start}\t{end}\t{rest}")
"#;
    run_python(code, &[path.to_str().unwrap()])
        .lines()
        .map(String::from)
        .collect()
}

/// The autoSql of a bigBed as read by pyBigWig.
pub fn bigbed_autosql(path: &Path) -> String {
    run_python("import sys, pyBigWig\ns = pyBigWig.open(sys.argv[1]).SQL()\nprint(s.decode() if isinstance(s, bytes) else s)", &[path.to_str().unwrap()])
}

/// The derived hg38 demo tracks, which `make data` (run by `make test`) creates.
pub fn require_demo_data() {
    let derived = root().join(".cistrack/derived/hg38/k562.h3k27ac.candidates.bw");
    assert!(
        derived.exists(),
        "{} is missing: run `make data` (make test runs it)",
        derived.display()
    );
}

/// A copy of the fixture config with `edit` applied to its text, written into `dir` next to
/// links to the fixture files; returns the new config path.
pub fn edited_fixture_config(dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(fixture_config()).unwrap();
    let data = root().join("tests/data");
    let text = text
        .replace(
            "models_dir = \"../../models\"",
            &format!("models_dir = \"{}\"", root().join("models").display()),
        )
        .replace("\"fixture/", &format!("\"{}/fixture/", data.display()));
    let path = dir.join("builds.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// The fixture config without its link model, written with absolute paths into `dir`.
pub fn fixture_config_without_links(dir: &Path) -> PathBuf {
    let data = root().join("tests/data");
    let text = std::fs::read_to_string(data.join("fixture.toml"))
        .unwrap()
        .replace("\"fixture/", &format!("\"{}/fixture/", data.display()))
        .replace(
            "\"../../models\"",
            &format!("\"{}/models\"", root().display()),
        )
        .lines()
        .filter(|l| !l.trim_start().starts_with("links ="))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(", links = \"link-epinformer/0.1.0\"", "");
    let path = dir.join("fixture-no-links.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A `cistrack serve` process started for real; its stderr is collected by a thread (so the
/// daemon never blocks on a full pipe) and killed on drop.
pub struct Daemon {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts `command` (a `cistrack ... serve --bind 127.0.0.1:0 ...` command line, possibly
    /// wrapped, e.g. in `sh -c 'ulimit ...; exec ...'`) and waits for its "listening on" line.
    pub fn start(mut command: Command) -> Self {
        use std::io::BufRead;
        let mut child = command
            .current_dir(root())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("cannot start the daemon");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn({
            let log = log.clone();
            move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = tx.send(addr);
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let addr = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no listening line:\n{}", log.lock().unwrap()));
        Self {
            child,
            addr: addr.parse().expect("a socket address"),
            log,
            reader: Some(reader),
        }
    }

    /// Everything the daemon has written to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM, waits for the exit and returns its status and the whole log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.log())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Arguments of a fixture daemon on a free loopback port without a disk cache.
pub const FIXTURE_SERVE: [&str; 9] = [
    "--config",
    "tests/data/fixture.toml",
    "--device",
    "cpu",
    "serve",
    "--bind",
    "127.0.0.1:0",
    "--no-disk-cache",
    "--grace=10",
];

/// The cistrack binary with a clean environment (no CISTRACK_* variables), as a `Command`.
pub fn cistrack_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cistrack"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CISTRACK_") || key == "ORT_DYLIB_PATH" || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// `cistrack precompute` of the fixture build's `regions` into the cache folder `cache`, with
/// `extra` arguments.
pub fn fixture_precompute(regions: &Path, cache: &Path, extra: &[&str]) -> Output {
    precompute_with(Path::new("tests/data/fixture.toml"), regions, cache, extra)
}

/// `cistrack precompute` with the config `config` (a build of the fixture's data).
pub fn precompute_with(config: &Path, regions: &Path, cache: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
        "precompute",
        "--regions",
        regions.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    cistrack(&args)
}

/// The windows of an `/enhancers` answer as (start, probability).
pub fn window_probabilities(answer: &serde_json::Value) -> Vec<(u64, f64)> {
    answer["windows"]
        .as_array()
        .expect("an answer with windows")
        .iter()
        .map(|w| {
            (
                w["start"].as_u64().unwrap(),
                w["probability"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// One `GET` on a fresh connection: status and body (de-chunked), or `None` if no complete
/// answer came within `timeout`.
pub fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    timeout: std::time::Duration,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some((status, body.to_string()));
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, tail) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some((status, out));
        }
        out.push_str(tail.get(..size)?);
        rest = tail.get(size + 2..)?;
    }
}

/// The sum of a Prometheus metric's samples (all label sets) in `/metrics` text.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The bases of `region` (samtools syntax, 1-based) in `fasta` (relative to the repository
/// root, or absolute), read by samtools faidx (the independent reader), case kept.
pub fn samtools_bases(fasta: &Path, region: &str) -> Vec<u8> {
    let out = Command::new("samtools")
        .arg("faidx")
        .arg(fasta)
        .arg(region)
        .current_dir(root())
        .output()
        .expect("samtools (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .skip(1)
        .flatten()
        .copied()
        .collect()
}

/// `bcftools ARGS FILE`'s standard output (the independent VCF reader); fails the test with
/// bcftools' message when it does not succeed.
pub fn bcftools(args: &[&str], file: &Path) -> String {
    let out = Command::new("bcftools")
        .args(args)
        .arg(file)
        .output()
        .expect("bcftools (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "bcftools {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("bcftools writes UTF-8 here")
}
