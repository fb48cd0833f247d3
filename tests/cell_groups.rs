//! Cell groups of a scATAC build beyond the build's own: every group in one `/enhancers` answer
//! (`group=*`), a track file per group (`/tracks/*?group=`), `precompute`/`export` per group,
//! and the fragment counts per group kept after the first pass over the file. Real chr22
//! fragments (`../shared/data/hg38/scatac/`); groups from `tests/data/scatac/groups.tsv`
//! (`common`: 99 barcodes, 56,535 fragments; `rare`: one barcode, 580 fragments).

#[path = "support/helpers.rs"]
mod helpers;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

const CONFIG: &str = "tests/data/scatac.toml";
const VIEW: &str = "ref=chr22&start=17400000&end=17410000";

fn serve(cache: &Path) -> helpers::Daemon {
    let mut command = helpers::cistrack_command();
    command.args([
        "--config",
        CONFIG,
        "--device",
        "cpu",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    helpers::Daemon::start(command)
}

fn get(d: &helpers::Daemon, path: &str) -> (u16, Value) {
    let (status, body) = helpers::http_get(d.addr, path, Duration::from_secs(180)).unwrap();
    let value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status}: {body}"));
    (status, value)
}

fn get_ok(d: &helpers::Daemon, path: &str) -> Value {
    let (status, value) = get(d, path);
    assert_eq!(status, 200, "{path}: {value}");
    value
}

/// The values of a bigWig (local path or URL, read by libBigWig) at the starts of `windows`.
fn bigwig_values(file: &str, windows: &[(u64, f64)]) -> Vec<f64> {
    let code = r#"
import sys, pyBigWig
bw = pyBigWig.open(sys.argv[1])
for s in sys.argv[2:]:
    print(bw.values("chr22", int(s), int(s) + 1)[0])
"#;
    let mut args = vec!["-c".to_string(), code.to_string(), file.to_string()];
    args.extend(windows.iter().map(|(s, _)| s.to_string()));
    let out = std::process::Command::new("/usr/bin/python3")
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

fn assert_same_scores(file: &str, windows: &[(u64, f64)]) {
    let values = bigwig_values(file, windows);
    assert_eq!(values.len(), windows.len());
    for ((start, p), v) in windows.iter().zip(values) {
        assert!((p - v).abs() <= 5e-5, "{file} at {start}: {v} vs {p}");
    }
}

/// `group=*` answers each group as `group=NAME` does, in the table's order; a group's
/// `scores.bw` holds that group's windows; the errors name what is wrong.
#[test]
fn every_group_in_one_answer_and_a_track_file_per_group() {
    let cache = tempfile::tempdir().unwrap();
    let d = serve(cache.path());
    let all = get_ok(
        &d,
        &format!("/v1/builds/common/enhancers?{VIEW}&group=*&wait=120000"),
    );
    assert_eq!(all["complete"], true);
    assert_eq!(
        (&all["ref"], &all["start"], &all["end"], &all["build"]),
        (
            &Value::from("chr22"),
            &Value::from(17_400_000),
            &Value::from(17_410_000),
            &Value::from("common")
        )
    );
    let groups = all["groups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["single_cell"]["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["common", "rare"]);
    assert_eq!(groups[1]["single_cell"]["fragments"], 580);
    for g in groups {
        let name = g["single_cell"]["group"].as_str().unwrap();
        let one = get_ok(
            &d,
            &format!("/v1/builds/common/enhancers?{VIEW}&group={name}&wait=60000"),
        );
        for field in ["windows", "elements", "single_cell", "model", "complete"] {
            assert_eq!(g[field], one[field], "{name}: {field}");
        }
        assert_eq!(g["windows"].as_array().unwrap().len(), 50);
    }
    assert_ne!(groups[0]["windows"], groups[1]["windows"]);
    // the build's own group is read by the build's own engine: one engine more, for `rare`,
    // on the same model session
    let health = get_ok(&d, "/healthz");
    let engines = health["builds"]["common"].as_object().unwrap();
    let keys: Vec<&String> = engines.keys().collect();
    assert_eq!(keys, ["student", "student group=rare"], "{health}");
    assert_eq!(engines["student group=rare"]["group"], "rare");
    assert_eq!(engines["student group=rare"]["role"], "student");
    assert!(engines["student"].get("group").is_none(), "{health}");
    let (status, metrics) = helpers::http_get(d.addr, "/metrics", Duration::from_secs(30)).unwrap();
    assert_eq!(status, 200);
    // one session per build (common, rare, pseudobulk): `rare` read through `common` shares it
    assert!(
        metrics.lines().any(|l| l == "cistrack_model_sessions 3"),
        "both groups' engines run on the one session of the model:\n{metrics}"
    );
    for group in ["", "rare"] {
        let series = format!(
            r#"cistrack_windows_scored_total{{build="common",model="enhancer-student/0.2.0",role="student",group="{group}"}}"#
        );
        assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    }

    // one track file per group, read over HTTP by libBigWig: the group's own windows
    let url = |file: &str, group: &str| {
        format!(
            "http://{}/v1/builds/common/tracks/{file}?group={group}",
            d.addr
        )
    };
    assert_same_scores(
        &url("scores.bw", "rare"),
        &helpers::window_probabilities(&groups[1]),
    );
    assert_same_scores(
        &url("scores.bw", "common"),
        &helpers::window_probabilities(&groups[0]),
    );
    // the build's own group's files are the build's own, not a copy under groups/
    let tracks = cache.path().join("tracks/common/student");
    assert!(tracks.join("scores.bw").is_file());
    assert!(tracks.join("groups/rare/scores.bw").is_file());
    assert!(!tracks.join("groups/common").exists());

    // errors
    let (status, e) = get(&d, "/v1/builds/common/tracks/percentiles.bw?group=rare");
    assert_eq!(status, 404, "{e}");
    assert!(
        e.to_string()
            .contains("cell group rare: its background is not computed; run `cistrack precompute --background --group rare`"),
        "{e}"
    );
    let (status, e) = get(&d, "/v1/builds/common/tracks/scores.bw?group=*");
    assert_eq!(status, 400, "{e}");
    assert!(e.to_string().contains("one per cell group"), "{e}");
    let (status, e) = get(&d, "/v1/builds/common/tracks/scores.bw?group=nope");
    assert_eq!(status, 404, "{e}");
    assert!(e.to_string().contains("(groups: common, rare)"), "{e}");
    let pseudobulk = get_ok(
        &d,
        &format!("/v1/builds/pseudobulk/enhancers?{VIEW}&group=*&wait=60000&include=elements"),
    );
    assert_eq!(pseudobulk["groups"].as_array().unwrap().len(), 1);
    assert_eq!(pseudobulk["groups"][0]["single_cell"]["group"], "all");
    let (status, e) = get(
        &d,
        "/v1/builds/common/enhancers?ref=chr22&start=5&end=1&group=*",
    );
    assert_eq!(status, 400, "{e}");
    assert!(e.to_string().contains("must be below end"), "{e}");
    let mut fixture = helpers::cistrack_command();
    fixture.args(helpers::FIXTURE_SERVE);
    let f = helpers::Daemon::start(fixture);
    let (status, e) = get(
        &f,
        "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=1000&group=*",
    );
    assert_eq!(status, 400, "{e}");
    assert!(e.to_string().contains("reads no scATAC fragments"), "{e}");
}

/// `precompute --all-groups` fills the cache for every group (a daemon on it then scores
/// nothing), and `export --all-groups` writes one folder of track files per group holding the
/// scores the daemon serves.
#[test]
fn precompute_and_export_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("out"));
    let bed = dir.path().join("view.bed");
    std::fs::write(&bed, "chr22\t17400000\t17410000\n").unwrap();
    let config = Path::new(CONFIG);
    let pre =
        helpers::precompute_with(config, &bed, &cache, &["--build", "common", "--all-groups"]);
    helpers::assert_ok(&pre);
    let stderr = String::from_utf8_lossy(&pre.stderr);
    assert!(
        stderr.contains("group=\"common\"") && stderr.contains("group=\"rare\""),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("precomputed 50 windows").count(),
        2,
        "{stderr}"
    );
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--config",
            CONFIG,
            "--build",
            "common",
            "export",
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        helpers::cistrack(&a)
    };
    helpers::assert_ok(&args(&["--all-groups", "-o", out.to_str().unwrap()]));
    for group in ["common", "rare"] {
        for file in ["enhancers.bb", "scores.bw"] {
            assert!(out.join(group).join(file).is_file(), "{group}/{file}");
        }
    }
    assert!(!out.join("scores.bw").exists());

    // a daemon on that cache answers every group from it, with the exported scores
    let d = serve(&cache);
    let all = get_ok(
        &d,
        &format!("/v1/builds/common/enhancers?{VIEW}&group=*&wait=0"),
    );
    assert_eq!(all["complete"], true, "{all}");
    for (g, name) in all["groups"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["common", "rare"])
    {
        assert_eq!(g["windows_cached"], g["windows_needed"], "{name}");
        let file = out.join(name).join("scores.bw");
        assert_same_scores(file.to_str().unwrap(), &helpers::window_probabilities(g));
    }

    // one group only
    let one = dir.path().join("one");
    helpers::assert_ok(&args(&["--group", "rare", "-o", one.to_str().unwrap()]));
    assert!(one.join("rare/scores.bw").is_file() && !one.join("common").exists());

    // errors name the flag and the groups
    helpers::assert_fails_with(
        &args(&["--group", "nope", "-o", one.to_str().unwrap()]),
        &["--group nope", "no cell group \"nope\"", "common, rare"],
    );
    helpers::assert_fails_with(
        &helpers::precompute_with(
            config,
            &bed,
            &cache,
            &["--build", "rare", "--group", "rare", "--variant-background"],
        ),
        &["--variant-background", "own cell group"],
    );
    let fixture = helpers::fixture_config();
    helpers::assert_fails_with(
        &helpers::precompute_with(&fixture, &bed, &cache, &["--all-groups"]),
        &["--all-groups", "reads no scATAC fragments"],
    );
}

/// The first open of a fragments file counts its fragments per group and keeps them in the
/// config's cache folder; later opens read them from there (a count edited there shows, so it
/// is read), and a changed group table or a damaged kept file is counted again.
#[test]
fn fragment_counts_are_kept_and_counted_again_when_an_input_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = helpers::root();
    let table = dir.path().join("groups.tsv");
    std::fs::copy(root.join("tests/data/scatac/groups.tsv"), &table).unwrap();
    let config = dir.path().join("scatac.toml");
    std::fs::write(
        &config,
        format!(
            "models_dir = \"{models}\"\ncache_dir = \"cache\"\n[builds.rare]\nfasta = \"{fasta}\"\nmodels = {{ student = \"enhancer-student/0.2.0\" }}\n[builds.rare.signals.accessibility]\nfragments = \"{fragments}\"\ngroups = \"groups.tsv\"\ngroup = \"rare\"\n",
            models = root.join("models").display(),
            fasta = helpers::shared().join("hg38/genome/hg38.partial.fa.gz").display(),
            fragments = helpers::shared().join("hg38/scatac/test.fragments.tsv.gz").display(),
        ),
    )
    .unwrap();
    let doctor = || {
        let out = helpers::cistrack(&["--config", config.to_str().unwrap(), "-v", "doctor"]);
        helpers::assert_ok(&out);
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let kept_files = || {
        std::fs::read_dir(dir.path().join("cache/fragments"))
            .map(|d| d.map(|e| e.unwrap().path()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let first = doctor();
    assert!(first.contains("counting the fragments"), "{first}");
    assert!(
        first.contains("rare of common, rare: 580 fragments"),
        "{first}"
    );
    let kept = kept_files();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let text = std::fs::read_to_string(&kept[0]).unwrap();
    assert!(
        text.contains("common\tchr22\t56535\n") && text.contains("rare\tchr22\t580\n"),
        "{text}"
    );

    // read back, not counted: an edited count shows
    std::fs::write(
        &kept[0],
        text.replace("rare\tchr22\t580", "rare\tchr22\t290"),
    )
    .unwrap();
    let second = doctor();
    assert!(!second.contains("counting the fragments"), "{second}");
    assert!(second.contains("read from the kept counts"), "{second}");
    assert!(second.contains(": 290 fragments"), "{second}");

    // a damaged kept file is counted again
    std::fs::write(&kept[0], "not counts\n").unwrap();
    let third = doctor();
    assert!(third.contains("counting the fragments"), "{third}");
    assert!(third.contains(": 580 fragments"), "{third}");

    // a changed group table: counted again, into a file of its own
    let mut rows = std::fs::read_to_string(&table).unwrap();
    rows.push_str("# edited\n");
    std::fs::write(&table, rows).unwrap();
    let fourth = doctor();
    assert!(fourth.contains("counting the fragments"), "{fourth}");
    assert_eq!(kept_files().len(), 2);
}
