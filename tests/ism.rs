//! In-silico mutagenesis (`/v1/builds/{b}/ism`) and motif matches (`/motifs`) from a real daemon
//! on the fixture build (real hg38 sequence and K562 signal): every effect equals the `delta`
//! `cistrack annotate` writes for that SNV, answers fill in with `complete: false` while the
//! model works, finished positions are kept in the build's disk cache, and motif matches agree
//! with the motifs `annotate` reports lost or gained.

#[path = "support/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

fn daemon(config: &Path, cache: Option<&Path>) -> helpers::Daemon {
    daemon_with(config, cache, &[])
}

fn daemon_with(config: &Path, cache: Option<&Path>, extra: &[&str]) -> helpers::Daemon {
    let mut command = helpers::cistrack_command();
    command.args([
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--grace=10",
    ]);
    match cache {
        Some(dir) => command.args(["--cache-dir", dir.to_str().unwrap()]),
        None => command.arg("--no-disk-cache"),
    };
    command.args(extra);
    helpers::Daemon::start(command)
}

fn get(daemon: &helpers::Daemon, path: &str) -> (u16, Value) {
    let (status, body) = helpers::http_get(daemon.addr, path, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("no answer to {path}"));
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

/// Asks until the answer is complete (bounded), checking on the way that every answer lists
/// each position once, as computed or pending.
fn ism_complete(daemon: &helpers::Daemon, query: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, v) = get(
            daemon,
            &format!("/v1/builds/fixture/ism?{query}&wait=20000"),
        );
        assert_eq!(status, 200, "{v}");
        let pending: u64 = v["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[1].as_u64().unwrap() - r[0].as_u64().unwrap())
            .sum();
        let done = v["positions"].as_array().unwrap().len() as u64;
        assert_eq!(done + pending, v["positions_needed"].as_u64().unwrap());
        assert_eq!(done, v["positions_done"].as_u64().unwrap());
        if v["complete"] == true {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "never complete"
        );
    }
}

/// The fixture config, with absolute paths, in `dir`.
fn fixture_config(dir: &Path, with_motifs: bool) -> std::path::PathBuf {
    helpers::edited_fixture_config(dir, |text| {
        if with_motifs {
            let jaspar =
                helpers::shared().join("motifs/JASPAR2024_CORE_vertebrates_nonredundant.jaspar");
            text.replace(
                "candidates = ",
                &format!("motifs = \"{}\"\ncandidates = ", jaspar.display()),
            )
        } else {
            text
        }
    })
}

/// `(pos0, alt) -> (ref_prob, alt_prob, delta)`.
type Effects = HashMap<(u64, char), [f64; 3]>;

/// `annotate` of every SNV at `positions0` of `contig` (all three ALTs of each base, one
/// record each): `(pos0, alt) -> (ref_prob, alt_prob, delta)` and the raw INFO per record.
fn annotate_all_snvs(
    config: &Path,
    dir: &Path,
    contig: &str,
    positions0: &[(u64, u8)],
) -> (Effects, Vec<(u64, char, String)>) {
    let vcf = dir.join("snvs.vcf");
    let mut text =
        String::from("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n");
    for &(p, base) in positions0 {
        for alt in b"ACGT".iter().filter(|&&a| a != base.to_ascii_uppercase()) {
            text.push_str(&format!(
                "{contig}\t{}\t.\t{}\t{}\t.\t.\t.\n",
                p + 1,
                base as char,
                *alt as char
            ));
        }
    }
    std::fs::write(&vcf, text).unwrap();
    let out = helpers::cistrack(&[
        "--quiet",
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
        "annotate",
        "-i",
        vcf.to_str().unwrap(),
        "--no-cache",
    ]);
    let stdout = helpers::assert_ok(&out);
    let mut effects = HashMap::new();
    let mut infos = Vec::new();
    for line in stdout.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let pos0 = f[1].parse::<u64>().unwrap() - 1;
        let alt = f[4].chars().next().unwrap();
        let entry = f[7]
            .split(';')
            .find_map(|e| e.strip_prefix("CISTRACK="))
            .unwrap_or_else(|| panic!("not scored: {line}"));
        let v: Vec<&str> = entry.split('|').collect();
        let num = |i: usize| v[i].parse::<f64>().unwrap();
        effects.insert((pos0, alt), [num(1), num(2), num(3)]);
        infos.push((pos0, alt, f[7].to_string()));
    }
    (effects, infos)
}

fn bases(contig: &str, start0: u64, end0: u64) -> Vec<u8> {
    helpers::samtools_bases(
        Path::new("tests/data/fixture/genome.fa.gz"),
        &format!("{contig}:{}-{end0}", start0 + 1),
    )
}

#[test]
fn ism_effects_are_annotates_deltas_fill_in_and_stay_cached() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), false);
    let cache = dir.path().join("cache");
    let d = daemon(&config, Some(&cache));
    // chr1:19,401-19,600 (1-based) holds the fixture's strongest enhancer windows
    let (start0, end0) = (19_400u64, 19_600u64);
    let query = format!("ref=chr1&start={start0}&end={end0}");
    // at once: nothing can be finished yet, and the answer says what is pending
    let (status, first) = get(&d, &format!("/v1/builds/fixture/ism?{query}&wait=0"));
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["complete"], false, "{first}");
    assert_eq!(first["positions_needed"], end0 - start0);
    assert_eq!(first["window"], 2000);
    let v = ism_complete(&d, &query);
    let positions = v["positions"].as_array().unwrap();
    assert_eq!(positions.len() as u64, end0 - start0);
    let reference = bases("chr1", start0, end0);
    let mut planned = Vec::new();
    for (i, p) in positions.iter().enumerate() {
        assert_eq!(p["pos"], start0 + i as u64);
        let base = reference[i];
        assert_eq!(p["base"], (base.to_ascii_uppercase() as char).to_string());
        let delta = p["delta"].as_object().unwrap();
        assert_eq!(delta.len(), 3, "{p}");
        assert!(!delta.contains_key(&(base.to_ascii_uppercase() as char).to_string()));
        // importance is minus the mean of the three effects (each rounded to 4 decimals)
        let sum: f64 = delta.values().map(|x| x.as_f64().unwrap()).sum();
        assert!(
            (p["importance"].as_f64().unwrap() + sum / 3.0).abs() <= 1.5e-4,
            "{p}"
        );
        planned.push((start0 + i as u64, base));
    }
    // every substitution of every second base, annotated as a VCF: the same numbers
    let every_other: Vec<(u64, u8)> = planned.iter().copied().step_by(2).collect();
    let (annotated, _) = annotate_all_snvs(&config, dir.path(), "chr1", &every_other);
    assert_eq!(annotated.len(), 3 * every_other.len());
    let mut largest = 0f64;
    for ((pos0, alt), [r, a, delta]) in &annotated {
        let p = &positions[(pos0 - start0) as usize];
        let key = alt.to_string();
        let close = |x: f64, y: f64| (x - y).abs() <= 1.0001e-4; // one unit of the 4th decimal
        assert!(close(p["ref_prob"].as_f64().unwrap(), *r), "{p} vs ref {r}");
        assert!(
            close(p["alt_prob"][&key].as_f64().unwrap(), *a),
            "{p} vs {alt} {a}"
        );
        assert!(
            close(p["delta"][&key].as_f64().unwrap(), *delta),
            "{p} vs {alt} {delta}"
        );
        largest = largest.max(delta.abs());
    }
    // the comparison means something: some substitutions move the model
    assert!(largest >= 0.01, "largest |delta| {largest}");

    // asked again: every position from the cache at once
    let (_, again) = get(&d, &format!("/v1/builds/fixture/ism?{query}&wait=0"));
    assert_eq!(again["complete"], true);
    assert_eq!(again["positions"], v["positions"]);
    // a daemon started again on the same cache folder has them on disk
    let (status, _) = d.stop();
    assert!(status.success());
    let d = daemon(&config, Some(&cache));
    let (_, restarted) = get(&d, &format!("/v1/builds/fixture/ism?{query}&wait=0"));
    assert_eq!(restarted["complete"], true, "{restarted}");
    assert_eq!(restarted["positions"], v["positions"]);

    // the contig's N run: positions without a base say so, the others are scored
    let v = ism_complete(&d, "ref=chr2&start=21990&end=22010");
    for p in v["positions"].as_array().unwrap() {
        let pos = p["pos"].as_u64().unwrap();
        if pos < 22_000 {
            assert!(p["delta"].is_object(), "{p}");
        } else {
            assert_eq!(
                (p["base"].as_str(), p["skip"].as_str()),
                (Some("N"), Some("n_base"))
            );
            assert!(p.get("delta").is_none());
        }
    }
    // bad requests
    let (status, v) = get(&d, "/v1/builds/fixture/ism?ref=chr1&start=0&end=1001");
    assert_eq!(status, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 1000 bp"),
        "{v}"
    );
    let (status, _) = get(&d, "/v1/builds/fixture/ism?ref=chr7&start=0&end=10");
    assert_eq!(status, 404);
    let (status, v) = get(&d, "/v1/builds/fixture/ism?ref=chr1&start=10&end=10");
    assert_eq!(status, 400, "{v}");
    let (status, v) = get(
        &d,
        "/v1/builds/fixture/ism?ref=chr1&start=0&end=10&model=links",
    );
    assert_eq!(status, 400, "{v}");
    // past the contig end: an empty, complete answer (browsers ask there)
    let (status, v) = get(&d, "/v1/builds/fixture/ism?ref=chr1&start=60000&end=60100");
    assert_eq!((status, &v["complete"]), (200, &Value::Bool(true)), "{v}");
    assert_eq!(v["positions"].as_array().unwrap().len(), 0);
}

#[test]
fn motif_matches_agree_with_the_motifs_annotate_reports() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), true);
    let d = daemon(&config, None);
    let (start0, end0) = (19_400u64, 19_700u64);
    let (status, v) = get(
        &d,
        &format!("/v1/builds/fixture/motifs?ref=chr1&start={start0}&end={end0}"),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["motifs"], 879);
    assert_eq!(v["file"], "JASPAR2024_CORE_vertebrates_nonredundant.jaspar");
    let matches = v["matches"].as_array().unwrap();
    assert!(!matches.is_empty());
    for m in matches {
        let (s, e) = (m["start"].as_u64().unwrap(), m["end"].as_u64().unwrap());
        assert!(start0 <= s && s < e && e <= end0, "{m}");
        assert!(["+", "-"].contains(&m["strand"].as_str().unwrap()));
    }
    // at every 10th base, each motif annotate calls lost is a match of the reference covering
    // the base, at the reported score; each motif it calls gained is not
    let reference = bases("chr1", start0, end0);
    // (35 bp inside the view: the widest JASPAR 2024 matrix has 33 columns)
    let positions: Vec<(u64, u8)> = (start0 + 35..end0 - 35)
        .step_by(10)
        .map(|p| (p, reference[(p - start0) as usize]))
        .collect();
    let (_, infos) = annotate_all_snvs(&config, dir.path(), "chr1", &positions);
    let mut checked = [0usize; 2];
    for (pos0, _, info) in infos {
        let Some(entries) = info
            .split(';')
            .find_map(|e| e.strip_prefix("CISTRACK_MOTIFS="))
        else {
            continue;
        };
        for entry in entries.split(',') {
            let f: Vec<&str> = entry.split('|').collect();
            let covering: Vec<&Value> = matches
                .iter()
                .filter(|m| {
                    m["id"] == f[1]
                        && m["start"].as_u64().unwrap() <= pos0
                        && pos0 < m["end"].as_u64().unwrap()
                })
                .collect();
            if f[3] == "lost" {
                let score: f64 = f[4].parse().unwrap();
                assert!(
                    covering
                        .iter()
                        .any(|m| (m["score"].as_f64().unwrap() - score).abs() < 0.006),
                    "{entry} at {pos0}: {covering:?}"
                );
                checked[0] += 1;
            } else {
                assert!(covering.is_empty(), "{entry} at {pos0}: {covering:?}");
                checked[1] += 1;
            }
        }
    }
    assert!(checked[0] > 0 && checked[1] > 0, "{checked:?}");
    // too large a view, and a build without a motif file
    let (status, _) = get(&d, "/v1/builds/fixture/motifs?ref=chr1&start=0&end=10001");
    assert_eq!(status, 400);
    let plain_dir = dir.path().join("plain");
    std::fs::create_dir(&plain_dir).unwrap();
    let plain = daemon(&fixture_config(&plain_dir, false), None);
    let (status, v) = get(&plain, "/v1/builds/fixture/motifs?ref=chr1&start=0&end=100");
    assert_eq!(status, 404, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("motifs ="),
        "{v}"
    );
}

/// Views are computed one at a time per build, and a view nobody asks for any more is dropped
/// (`--ism-idle`) without being computed, its positions released: panning does not pile up work.
#[test]
fn ism_views_take_turns_and_abandoned_ones_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config(dir.path(), false);
    let d = daemon_with(&config, None, &["--ism-idle", "2"]);
    let health = |d: &helpers::Daemon| get(d, "/healthz").1["ism"].clone();
    let a = "ref=chr1&start=19000&end=20000";
    let c = "ref=chr1&start=30000&end=30200";
    let (_, first) = get(&d, &format!("/v1/builds/fixture/ism?{a}&wait=0"));
    assert_eq!(first["complete"], false);
    let (_, other) = get(&d, &format!("/v1/builds/fixture/ism?{c}&wait=0"));
    assert_eq!(other["complete"], false);
    // one computes, the other waits its turn (once the first job's thread has started)
    let started = Instant::now();
    let mut h = health(&d);
    while h["running"] != 1 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        h = health(&d);
    }
    assert_eq!(
        (h["running"].as_u64(), h["queued"].as_u64()),
        (Some(1), Some(1)),
        "{h}"
    );
    // what the two jobs hold: the second's 200, and what the first has not finished yet
    let held = h["positions"].as_u64().unwrap();
    assert!((200..=1200).contains(&held), "{h}");
    // only the first view is asked for again (a browser that moved there)
    ism_complete(&d, a);
    // (the first job's thread ends just after storing its last positions)
    let started = Instant::now();
    let mut h = health(&d);
    while h["running"] != 0 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        h = health(&d);
    }
    assert_eq!(
        h,
        serde_json::json!({"positions": 0, "queued": 0, "running": 0}),
        "{h}"
    );
    // the other view was dropped while it waited: asked again, nothing of it is there
    let (_, again) = get(&d, &format!("/v1/builds/fixture/ism?{c}&wait=0"));
    assert!(again["positions_done"].as_u64().unwrap() < 32, "{again}");
    // and it is computed when asked for
    let done = ism_complete(&d, c);
    assert_eq!(done["positions_done"], 200);
}
