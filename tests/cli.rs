//! End-to-end tests of the `cistrack` binary on the fixture build and on real hg38 data:
//! outputs read back by an independent reader, and every bad input ending in one clear message.

#[path = "support/helpers.rs"]
mod helpers;

use std::path::Path;

use helpers::*;

fn fixture_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--config",
        "tests/data/fixture.toml",
        "--device",
        "cpu",
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    args
}

/// Data lines (not `#`) of BED text.
fn data_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn score_writes_bed_with_header_and_consistent_elements() {
    let dir = tempfile::tempdir().unwrap();
    let windows = dir.path().join("w.bedGraph");
    let out = cistrack(&fixture_args(&[
        "score",
        "--region",
        "chr1:1-60,000",
        "--windows",
        windows.to_str().unwrap(),
        "--threshold",
        "0.3",
    ]));
    let stdout = assert_ok(&out);
    let header: Vec<&str> = stdout.lines().take_while(|l| l.starts_with('#')).collect();
    assert!(
        header[0].starts_with(
            "#cistrack 0.1.0 score build=fixture model=enhancer-student/0.2.0 sha256="
        ),
        "{}",
        header[0]
    );
    assert!(
        header[0].contains("region=chr1:1-60000 stride=200 threshold=0.3 device=cpu"),
        "{}",
        header[0]
    );
    assert!(
        header[1].contains("masked_modalities=none windows=300 scored=300 skipped_all_n=0"),
        "{}",
        header[1]
    );
    assert_eq!(header[2], "#chrom\tstart\tend\tname\tscore\tstrand\tpeak_probability\tpeak_logit\tmean_probability\twindows\tpeak_start\tpeak_end\tshare_sequence\tshare_h3k27ac\tshare_accessibility\tpeak_percentile");

    // The window scores: 300 cores of 200 bp tiling chr1 exactly.
    let scores: Vec<(u64, u64, f64)> = std::fs::read_to_string(&windows)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f[0], "chr1");
            (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(scores.len(), 300);
    assert!(
        scores.windows(2).all(|w| w[0].1 == w[1].0) && scores[0].0 == 0 && scores[299].1 == 60_000
    );
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(&s.2)));

    // Every element is a maximal run of windows at or above the threshold.
    let mut expected = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    for &(s, e, p) in &scores {
        if p >= 0.3 {
            run = Some(run.map_or((s, e), |(rs, _)| (rs, e)));
        } else if let Some(r) = run.take() {
            expected.push(r);
        }
    }
    expected.extend(run);
    let elements: Vec<(u64, u64)> = data_lines(&stdout)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 16, "{l}");
            let shares: f64 = f[12..15].iter().map(|s| s.parse::<f64>().unwrap()).sum();
            assert!((shares - 1.0).abs() < 2e-3, "shares sum to {shares}: {l}");
            (f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    assert_eq!(elements, expected);
}

#[test]
fn score_bigbed_reads_back_like_the_bed_output() {
    let dir = tempfile::tempdir().unwrap();
    let bb = dir.path().join("e.bb");
    // one run, two outputs: BED on stdout and the bigBed
    let bed = assert_ok(&cistrack(&fixture_args(&[
        "score",
        "--region",
        "chr2:1-40,000",
        "--threshold",
        "0.2",
        "-o",
        "-",
        "-o",
        bb.to_str().unwrap(),
    ])));
    let expected = data_lines(&bed);
    assert!(
        !expected.is_empty(),
        "the fixture should call some elements at p >= 0.2"
    );
    assert_eq!(bigbed_lines(&bb), expected);
    let sql = bigbed_autosql(&bb);
    for column in [
        "peakProbability",
        "peakLogit",
        "meanProbability",
        "windows",
        "peakStart",
        "peakEnd",
        "shareSequence",
        "shareH3k27ac",
        "shareAccessibility",
    ] {
        assert!(sql.contains(column), "autoSql lacks {column}:\n{sql}");
    }
}

#[test]
fn score_without_elements_writes_valid_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let bb = dir.path().join("none.bb");
    let out = cistrack(&fixture_args(&[
        "score",
        "--region",
        "chr1:1-2000",
        "--threshold",
        "1",
        "-o",
        bb.to_str().unwrap(),
    ]));
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 enhancer elements"));
    assert!(bigbed_lines(&bb).is_empty());
    assert!(bigbed_autosql(&bb).contains("table cistrackEnhancers"));
}

#[test]
fn score_windows_bigwig_matches_bedgraph() {
    let dir = tempfile::tempdir().unwrap();
    let (bw, bg) = (dir.path().join("w.bw"), dir.path().join("w.bedGraph"));
    assert_ok(&cistrack(&fixture_args(&[
        "score",
        "--region",
        "chr1:20,001-30,000",
        "-o",
        "/dev/null",
        "--windows",
        bw.to_str().unwrap(),
        "--windows",
        bg.to_str().unwrap(),
    ])));
    let from_bigwig = run_python(
        "import sys, pyBigWig\nb = pyBigWig.open(sys.argv[1])\nfor s, e, v in b.intervals('chr1'): print(f'chr1\\t{s}\\t{e}\\t{v:.4f}')",
        &[bw.to_str().unwrap()],
    );
    assert_eq!(from_bigwig, std::fs::read_to_string(&bg).unwrap());
}

#[test]
fn score_accepts_aliases_and_reports_all_n_windows() {
    let dir = tempfile::tempdir().unwrap();
    let bg = dir.path().join("w.bedGraph");
    // chr2 has N at [22000, 25000). Cores start at 20000 + 200·i and windows 900 bp before
    // their core, so the windows wholly inside the N stretch start at 22100..=22900: cores
    // [23000, 24000).
    let out = cistrack(&fixture_args(&[
        "score",
        "--region",
        "2:20,001-27,000",
        "--windows",
        bg.to_str().unwrap(),
    ]));
    let stdout = assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("region=chr2:20001-27000"),
        "the alias 2 resolves to chr2"
    );
    assert!(
        stdout.contains("windows=35 scored=30 skipped_all_n=5"),
        "{stdout}"
    );
    assert!(
        stderr.contains("skipped 5 windows with no A/C/G/T base (all N) at chr2:23001-24000"),
        "{stderr}"
    );
    let cores: Vec<u64> = std::fs::read_to_string(&bg)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(cores.len(), 30);
    assert!(!cores.iter().any(|c| (23_000..24_000).contains(c)));
    assert!(
        cores.contains(&22_800) && cores.contains(&24_000),
        "windows that reach real bases are scored"
    );
}

#[test]
fn score_near_contig_ends_pads_with_n() {
    let out = cistrack(&fixture_args(&["score", "--region", "chr1:1-400"]));
    assert!(assert_ok(&out).contains("windows=2 scored=2"));
    let out = cistrack(&fixture_args(&["score", "--region", "chr1:59,801-60,000"]));
    assert!(assert_ok(&out).contains("windows=1 scored=1"));
}

#[test]
fn score_with_a_missing_modality_masks_it_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = edited_fixture_config(dir.path(), |t| {
        let start = t.find("[builds.fixture.signals.accessibility]").unwrap();
        t[..start].to_string()
    });
    let out = cistrack(&[
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
        "score",
        "--region",
        "chr1:10,001-20,000",
    ]);
    let stdout = assert_ok(&out);
    assert!(
        stdout.contains("masked_modalities=accessibility"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has no accessibility track: the model scores with accessibility masked"),
        "{stderr}"
    );
    for line in data_lines(&stdout) {
        assert_eq!(
            line.split('\t').nth(14),
            Some("0.0000"),
            "a masked modality gets no attention: {line}"
        );
    }
}

#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let out = cistrack(&fixture_args(&[
        "score",
        "--region",
        "chr1:1-400",
        "-o",
        "/dev/null",
    ]));
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "ANSI escape codes in piped logs: {stderr:?}"
    );
}

#[test]
fn teacher_model_is_selectable() {
    let out = cistrack(&fixture_args(&[
        "score",
        "--region",
        "chr1:10,001-11,000",
        "--model",
        "teacher",
    ]));
    assert!(assert_ok(&out).contains("model=enhancer-teacher/0.2.0"));
}

#[test]
fn bad_regions_fail_clearly() {
    let cases: &[(&str, &[&str])] = &[
        (
            "chrZ:1-100",
            &["unknown contig \"chrZ\" in build fixture", "chr1"],
        ),
        (
            "chr1:59,000-60,001",
            &["region chr1:59000-60001 ends past the end of chr1 (60000 bp)"],
        ),
        ("chr1:200-100", &["starts at 200 after its end 100"]),
        ("chr1:abc-100", &["invalid position \"abc\""]),
        ("chr1", &["has no interval"]),
        ("chr1:0-10", &["positions are 1-based"]),
        ("", &["empty region"]),
    ];
    for (region, needles) in cases {
        assert_fails_with(
            &cistrack(&fixture_args(&["score", "--region", region])),
            needles,
        );
    }
}

#[test]
fn bad_parameters_fail_clearly() {
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "score",
            "--region",
            "chr1:1-1000",
            "--stride",
            "0",
        ])),
        &["--stride 0 is invalid"],
    );
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "score",
            "--region",
            "chr1:1-1000",
            "--stride",
            "2001",
        ])),
        &["between 1 and the model's window (2000 bp)"],
    );
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "score",
            "--region",
            "chr1:1-1000",
            "--threshold",
            "2",
        ])),
        &["--threshold 2 is not a probability"],
    );
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "score",
            "--region",
            "chr1:1-1000",
            "--batch-size",
            "0",
        ])),
        &["--batch-size must be at least 1"],
    );
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "score",
            "--region",
            "chr1:1-1000",
            "--model",
            "huge",
        ])),
        &["build fixture has no model \"huge\" (configured: links, student, teacher)"],
    );
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "--build",
            "hg99",
            "score",
            "--region",
            "chr1:1-1000",
        ])),
        &["no build \"hg99\"", "(builds: fixture)"],
    );
    assert_fails_with(
        &cistrack(&["score", "--region", "chr1:1-1000"]),
        &["no builds config: pass --config FILE or set CISTRACK_CONFIG"],
    );
    assert_fails_with(
        &cistrack(&["--config", "nope.toml", "score", "--region", "chr1:1-1000"]),
        &["cannot read config nope.toml"],
    );
    let out = cistrack(&fixture_args(&[
        "score",
        "--region",
        "chr1:1-1000",
        "-o",
        "/nonexistent-dir/x.bed",
    ]));
    assert_fails_with(&out, &["/nonexistent-dir/x.bed"]);
    let out = cistrack(&fixture_args(&[
        "score",
        "--region",
        "chr1:1-1000",
        "--windows",
        "-",
    ]));
    assert_fails_with(
        &out,
        &["only one of the -o/--windows/--percentiles outputs can be stdout"],
    );
    // a cache folder that cannot be made: named, before any scoring
    let out = cistrack(&fixture_args(&[
        "score",
        "--region",
        "chr1:1-1000",
        "--cache-dir",
        "/dev/null/cache",
        "-o",
        "/dev/null",
    ]));
    assert_fails_with(
        &out,
        &["cache /dev/null/cache/fixture.sqlite", "cannot create"],
    );
}

#[test]
fn bad_input_files_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixture = root().join("tests/data/fixture");
    let run = |config: &Path| {
        cistrack(&[
            "--config",
            config.to_str().unwrap(),
            "--device",
            "cpu",
            "score",
            "--region",
            "chr2:1-2000",
        ])
    };

    // missing FASTA
    let c = edited_fixture_config(d, |t| {
        t.replace("fixture/genome.fa.gz", "fixture/missing.fa.gz")
    });
    assert_fails_with(
        &run(&c),
        &["cannot open build fixture", "cannot read", "missing.fa.gz"],
    );
    // a directory where a file should be (unreadable as a bigWig)
    std::fs::create_dir_all(d.join("dir.bw")).unwrap();
    let c = edited_fixture_config(d, |t| {
        t.replace(
            &format!("{}/h3k27ac.bw", fixture.display()),
            &d.join("dir.bw").display().to_string(),
        )
    });
    assert_fails_with(&run(&c), &["cannot open bigWig", "dir.bw"]);
    // FASTA without index (never created behind the user's back)
    std::fs::copy(fixture.join("genome.fa.gz"), d.join("noindex.fa.gz")).unwrap();
    let c = edited_fixture_config(d, |t| {
        t.replace(
            &format!("{}/genome.fa.gz", fixture.display()),
            &d.join("noindex.fa.gz").display().to_string(),
        )
    });
    assert_fails_with(&run(&c), &["noindex.fa.gz has no index", "samtools faidx"]);
    assert!(!d.join("noindex.fa.gz.fai").exists());
    // a bigWig that is not one
    std::fs::write(d.join("text.bw"), "chr1\t0\t10\t1\n").unwrap();
    let c = edited_fixture_config(d, |t| {
        t.replace(
            &format!("{}/h3k27ac.bw", fixture.display()),
            &d.join("text.bw").display().to_string(),
        )
    });
    assert_fails_with(&run(&c), &["cannot open bigWig", "text.bw"]);
    // a bigWig without the contig asked for
    let only_chr1 = d.join("only_chr1.bw");
    cistrack::io::bbi::write_bigwig(
        &only_chr1,
        [("chr1".to_string(), 60_000u32)].into_iter().collect(),
        vec![(
            "chr1".to_string(),
            bigtools::Value {
                start: 0,
                end: 100,
                value: 1.0,
            },
        )],
    )
    .unwrap();
    let c = edited_fixture_config(d, |t| {
        t.replace(
            &format!("{}/h3k27ac.bw", fixture.display()),
            &only_chr1.display().to_string(),
        )
    });
    assert_fails_with(
        &run(&c),
        &[
            "only_chr1.bw has no contig \"chr2\" (looked for chr2, 2)",
            "its contigs: chr1",
        ],
    );
    // an invalid config value, with its line
    let c = edited_fixture_config(d, |t| {
        t.replace(
            "[builds.fixture.signals.h3k27ac]",
            "[builds.fixture.signals.h3k27ac]\nscale = \"big\"",
        )
    });
    assert_fails_with(&run(&c), &["invalid config", "line"]);
}

fn copy_model(dir: &Path, name: &str) -> std::path::PathBuf {
    let src = root().join("models").join(name).join("0.2.0");
    let dst = dir.join("models").join(name).join("0.2.0");
    std::fs::create_dir_all(&dst).unwrap();
    for file in ["model.onnx", "model.json"] {
        std::fs::copy(src.join(file), dst.join(file)).unwrap();
    }
    dst
}

fn config_with_models(dir: &Path) -> std::path::PathBuf {
    let models = dir.join("models");
    edited_fixture_config(dir, |t| {
        t.replace(
            &format!("models_dir = \"{}\"", root().join("models").display()),
            &format!("models_dir = \"{}\"", models.display()),
        )
    })
}

#[test]
fn bad_models_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = copy_model(d, "enhancer-student");
    copy_model(d, "enhancer-teacher");
    let config = config_with_models(d);
    let run = || {
        cistrack(&[
            "--config",
            config.to_str().unwrap(),
            "--device",
            "cpu",
            "score",
            "--region",
            "chr1:1-1000",
        ])
    };
    assert_ok(&run());

    // sha256 mismatch
    let original = std::fs::read(model.join("model.onnx")).unwrap();
    let mut changed = original.clone();
    changed.push(0);
    std::fs::write(model.join("model.onnx"), &changed).unwrap();
    assert_fails_with(&run(), &["model.onnx has sha256", "but model.json records"]);
    std::fs::write(model.join("model.onnx"), &original).unwrap();

    let json_text = std::fs::read_to_string(model.join("model.json")).unwrap();
    let edit_json = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut json: serde_json::Value = serde_json::from_str(&json_text).unwrap();
        edit(&mut json);
        std::fs::write(
            model.join("model.json"),
            serde_json::to_string_pretty(&json).unwrap(),
        )
        .unwrap();
    };
    // inputs declared differently from the contract
    edit_json(&|j| j["inputs"][3]["name"] = "mask".into());
    assert_fails_with(&run(), &["model.json", "inputs must be"]);
    // metadata of the graph disagrees with model.json
    edit_json(&|j| j["version"] = "9.9.9".into());
    assert_fails_with(
        &run(),
        &["does not match its model.json", "cistrack.version"],
    );
    // not JSON
    std::fs::write(model.join("model.json"), "{").unwrap();
    assert_fails_with(&run(), &["is not a valid model.json", "EOF while parsing"]);
    // a missing model file
    std::fs::write(model.join("model.json"), &json_text).unwrap();
    std::fs::remove_file(model.join("model.onnx")).unwrap();
    assert_fails_with(&run(), &["cannot read", "model.onnx"]);
}

#[test]
fn missing_onnx_runtime_fails_clearly() {
    let args = fixture_args(&["score", "--region", "chr1:1-1000"]);
    let out = cistrack_env(
        &args,
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
    );
    assert_fails_with(
        &out,
        &[
            "cannot use ONNX Runtime library",
            "/nonexistent/libonnxruntime.so",
            "ORT_DYLIB_PATH names a file that does not exist",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a library").unwrap();
    let out = cistrack_env(&args, &[("ORT_DYLIB_PATH", fake.to_str().unwrap())]);
    assert_fails_with(
        &out,
        &["cannot use ONNX Runtime library", "libonnxruntime.so"],
    );
    let out = cistrack_env(
        &["doctor"],
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL  ONNX Runtime"));
}

#[test]
fn doctor_reports_a_healthy_fixture_build() {
    let stdout = assert_ok(&cistrack(&fixture_args(&["doctor"])));
    for needle in [
        "ok    ONNX Runtime           1.31.1 at ",
        "ok    fasta                  ",
        "2 contigs, 100000 bp",
        "ok    h3k27ac",
        "ok    accessibility",
        "ok    genes                  ",
        "6 TSS",
        "ok    model student          enhancer-student/0.2.0: sha256 ok, graph matches model.json, runs on the CPU",
        "ok    model teacher",
        "all checks passed",
    ] {
        assert!(stdout.contains(needle), "doctor output lacks {needle:?}:\n{stdout}");
    }
}

#[test]
fn doctor_reports_problems_with_exit_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = edited_fixture_config(dir.path(), |t| {
        t.replace("fixture/genes.tss.bed", "fixture/candidates.bed")
    });
    let out = cistrack(&[
        "--config",
        config.to_str().unwrap(),
        "--device",
        "cpu",
        "doctor",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL  genes")
            && stdout.contains("expected at least 6 tab-separated columns"),
        "{stdout}"
    );
    assert!(stdout.contains("1 problem found"), "{stdout}");
}

#[test]
fn models_lists_and_verifies() {
    let stdout = assert_ok(&cistrack(&["models", "--dir", "models"]));
    assert!(
        stdout.contains("enhancer-student/0.2.0")
            && stdout.contains("enhancer-teacher/0.2.0")
            && stdout.contains("sha256 ok"),
        "{stdout}"
    );
}

/// Runs cistrack with its stdout closed before it writes (like `| head -0`).
fn run_with_closed_stdout(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cistrack"))
        .args(args)
        .current_dir(root())
        .env_remove("CISTRACK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

#[test]
fn closed_stdout_ends_quietly() {
    for args in [
        fixture_args(&[
            "score",
            "--region",
            "chr1:1-60000",
            "--threshold",
            "0",
            "-q",
        ]),
        fixture_args(&["doctor", "-q"]),
        vec!["models", "--dir", "models"],
    ] {
        let (status, stderr) = run_with_closed_stdout(&args);
        assert!(status.success(), "{args:?}: {status:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{args:?}: {stderr}"
        );
    }
}

/// The issue's real-data check: a real hg38 locus (true GRCh38 bases, K562 signals derived by
/// `make data`), bigBed read back by pyBigWig with the same records as the BED output.
#[test]
fn real_hg38_locus_bigbed_matches_bed() {
    require_demo_data();
    let _ = shared();
    let dir = tempfile::tempdir().unwrap();
    let bb = dir.path().join("hg38.bb");
    let bed_text = assert_ok(&cistrack(&[
        "--config",
        "examples/hg38.toml",
        "--device",
        "cpu",
        "score",
        "--region",
        "chr22:17,200,001-17,800,000",
        "-o",
        "-",
        "-o",
        bb.to_str().unwrap(),
    ]));
    assert!(
        bed_text.contains("windows=3000 scored=3000 skipped_all_n=0"),
        "{bed_text}"
    );
    let expected = data_lines(&bed_text);
    assert!(
        !expected.is_empty(),
        "K562 candidates on chr22:17.2-17.8 Mb should give some elements"
    );
    assert_eq!(bigbed_lines(&bb), expected);
}

#[test]
fn hg19_example_scores_with_accessibility_masked() {
    let _ = shared();
    let out = cistrack(&[
        "--config",
        "examples/hg19.toml",
        "--device",
        "cpu",
        "score",
        "--region",
        "chr22:18,240,001-18,250,000",
    ]);
    let stdout = assert_ok(&out);
    assert!(
        stdout.contains("build=hg19")
            && stdout.contains("masked_modalities=accessibility windows=50 scored=50"),
        "{stdout}"
    );
}

#[test]
fn precompute_export_and_cache_commands() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("tracks");
    let regions = dir.path().join("regions.bed");
    std::fs::write(&regions, "chr1\t16000\t20000\n").unwrap();
    let base = ["--config", "tests/data/fixture.toml", "--device", "cpu"];
    let run = |args: &[&str]| {
        let mut all = base.to_vec();
        all.extend_from_slice(args);
        cistrack(&all)
    };
    let cache_arg = cache.to_str().unwrap();
    let pre = run(&[
        "precompute",
        "--regions",
        regions.to_str().unwrap(),
        "--links",
        "--cache-dir",
        cache_arg,
    ]);
    assert_ok(&pre);
    let stderr = String::from_utf8_lossy(&pre.stderr);
    assert!(stderr.contains("precomputed 20 windows"), "{stderr}");
    assert!(stderr.contains("2 computed (0 were cached)"), "{stderr}");
    let exp = run(&[
        "export",
        "-o",
        out.to_str().unwrap(),
        "--cache-dir",
        cache_arg,
    ]);
    assert_ok(&exp);
    for f in ["enhancers.bb", "scores.bw", "links.bb"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // read back by libBigWig (Debian's pyBigWig): 20 windows, and the links of both chr1 genes
    let code = r#"
import sys, pyBigWig
bw = pyBigWig.open(sys.argv[1] + "/scores.bw")
print(len(bw.intervals("chr1", 0, 60000)))
bb = pyBigWig.open(sys.argv[1] + "/links.bb")
print(sorted({e[2].split(chr(9))[13] for e in bb.entries("chr1", 0, 60000)}))
"#;
    let py = std::process::Command::new("/usr/bin/python3")
        .args(["-c", code, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&py.stdout),
        "20\n['CLCP1', 'ENSG00000229492']\n"
    );
    let stats = run(&["cache", "stats", "--cache-dir", cache_arg]);
    let text = assert_ok(&stats);
    assert!(text.contains(":links"), "{text}");
    assert!(text.contains("enhancer-student/0.2.0"), "{text}");
    assert_ok(&run(&["cache", "clear", "--cache-dir", cache_arg]));
    let text = assert_ok(&run(&["cache", "stats", "--cache-dir", cache_arg]));
    assert!(!text.contains(":links"), "{text}");
}

#[test]
fn background_gives_percentiles_in_score_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let (bed, windows, percentiles) = (
        dir.path().join("elements.bed"),
        dir.path().join("windows.bedGraph"),
        dir.path().join("percentiles.bedGraph"),
    );
    let score = |extra: &[&str]| {
        let mut args = vec![
            "score",
            "--region",
            "chr1:15001-30000",
            "--cache-dir",
            cache_arg,
        ];
        args.extend_from_slice(extra);
        cistrack(&fixture_args(&args))
    };
    // no background yet: the BED says -1 and --percentiles names the command that makes one
    assert_ok(&score(&["-o", bed.to_str().unwrap()]));
    let text = std::fs::read_to_string(&bed).unwrap();
    assert!(text.contains("percentile_background=none"), "{text}");
    assert!(
        data_lines(&text).iter().all(|l| l.ends_with("\t-1.00")),
        "{text}"
    );
    assert_fails_with(
        &score(&["--percentiles", percentiles.to_str().unwrap()]),
        &[
            "--percentiles",
            "no background",
            "cistrack precompute --background",
        ],
    );
    // the fixture has 500 grid windows, 495 with a base: all of them, fewer than asked for
    let pre = cistrack(&fixture_args(&[
        "precompute",
        "--background",
        "--cache-dir",
        cache_arg,
    ]));
    let stderr = assert_ok(&pre) + &String::from_utf8_lossy(&pre.stderr);
    assert!(
        stderr.contains("495 windows scored of 500 drawn in 32 blocks"),
        "{stderr}"
    );
    assert!(
        stderr.contains("percentiles from so few are coarse"),
        "{stderr}"
    );
    let again = cistrack(&fixture_args(&[
        "precompute",
        "--background",
        "--cache-dir",
        cache_arg,
    ]));
    assert!(String::from_utf8_lossy(&again.stderr)
        .contains("already in the cache (495 windows, every window of the build)"));

    assert_ok(&score(&[
        "-o",
        bed.to_str().unwrap(),
        "--windows",
        windows.to_str().unwrap(),
        "--percentiles",
        percentiles.to_str().unwrap(),
    ]));
    let values = |path: &Path| -> Vec<f64> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| l.rsplit('\t').next().unwrap().parse().unwrap())
            .collect()
    };
    let (p, pct) = (values(&windows), values(&percentiles));
    assert_eq!(p.len(), 75);
    assert_eq!(pct.len(), 75);
    assert!(pct.iter().all(|x| (0.0..=100.0).contains(x)), "{pct:?}");
    // percentiles rank windows as their probabilities do
    for i in 0..p.len() {
        for j in 0..p.len() {
            if p[i] < p[j] {
                assert!(
                    pct[i] <= pct[j],
                    "p {} < {} but percentile {} > {}",
                    p[i],
                    p[j],
                    pct[i],
                    pct[j]
                );
            }
        }
    }
    let best = p.iter().cloned().fold(0.0, f64::max);
    let best_pct = pct[p.iter().position(|&x| x == best).unwrap()];
    assert!(best_pct > 90.0, "{best_pct}");
    // each element's peak_percentile is its peak window's percentile
    let text = std::fs::read_to_string(&bed).unwrap();
    assert!(text.contains("percentile_background=495_windows"), "{text}");
    let elements = data_lines(&text);
    assert!(!elements.is_empty(), "{text}");
    let windows_text = std::fs::read_to_string(&windows).unwrap();
    let percentile_text = std::fs::read_to_string(&percentiles).unwrap();
    for e in &elements {
        let f: Vec<&str> = e.split('\t').collect();
        let at = windows_text
            .lines()
            .position(|l| l.split('\t').nth(1) == Some(f[10]))
            .unwrap();
        let expected = percentile_text
            .lines()
            .nth(at)
            .unwrap()
            .rsplit('\t')
            .next()
            .unwrap();
        let got: f64 = f[15].parse().unwrap();
        assert!(
            (got - expected.parse::<f64>().unwrap()).abs() < 0.01,
            "{e} vs {expected}"
        );
    }
    // export writes percentiles.bw beside scores.bw, window for window
    let out = dir.path().join("tracks");
    assert_ok(&cistrack(&fixture_args(&[
        "export",
        "-o",
        out.to_str().unwrap(),
        "--cache-dir",
        cache_arg,
    ])));
    let code = r#"
import sys, pyBigWig
s, p = (pyBigWig.open(sys.argv[1] + f) for f in ("/scores.bw", "/percentiles.bw"))
a = [i for c in s.chroms() for i in s.intervals(c)]
b = [i for c in p.chroms() for i in p.intervals(c)]
assert [x[:2] for x in a] == [x[:2] for x in b]
print(len(b), min(x[2] for x in b), max(x[2] for x in b))
"#;
    let printed = run_python(code, &[out.to_str().unwrap()]);
    let fields: Vec<f64> = printed
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(fields[0], 495.0, "{printed}");
    assert!(fields[1] < 1.0 && fields[2] > 99.0, "{printed}");
}

#[test]
fn cache_check_finds_damage_and_stats_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let regions = dir.path().join("regions.bed");
    std::fs::write(&regions, "chr1\t0\t60000\nchr2\t0\t40000\n").unwrap();
    let run = |args: &[&str]| cistrack(&fixture_args(args));
    // score both contigs into the cache, and find it sound: 9 tiles
    let fill_and_check = || {
        let r = regions.to_str().unwrap();
        assert_ok(&run(&[
            "precompute",
            "--regions",
            r,
            "--cache-dir",
            cache_arg,
        ]));
        let text = assert_ok(&run(&["cache", "check", "--cache-dir", cache_arg]));
        assert!(text.contains("ok (9 entries)"), "{text}");
    };
    fill_and_check();
    // flip 256 bytes spread over the file's pages after the first, behind cistrack's back
    let db = cache.join("fixture.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 3 * 4096, "{} bytes", bytes.len());
    let step = (bytes.len() - 4096) / 256;
    for i in 0..256 {
        bytes[4096 + i * step] ^= 0xa5;
    }
    std::fs::write(&db, &bytes).unwrap();
    let listing = |d: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let files = listing(&cache);
    // stats and check only read: same bytes, nothing moved aside; check exits 1 naming the fix
    let stats = run(&["cache", "stats", "--cache-dir", cache_arg]);
    let check = run(&["cache", "check", "--cache-dir", cache_arg]);
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
    assert_eq!(listing(&cache), files);
    assert!(stats.status.code().is_some(), "stats did not crash");
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.contains("DAMAGED"), "{report}");
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("cistrack cache check --repair"),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let repaired = run(&["cache", "check", "--repair", "--cache-dir", cache_arg]);
    let text = assert_ok(&repaired);
    assert!(text.contains("repaired: "), "{text}");
    // afterwards the cache is sound again, and what was lost is scored again
    fill_and_check();
}

#[test]
fn a_background_of_no_windows_is_refused() {
    let out = cistrack(&fixture_args(&[
        "precompute",
        "--background",
        "--background-windows",
        "0",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--background-windows"), "{stderr}");
    assert!(stderr.contains("0 is not in 1.."), "{stderr}");
}

#[test]
fn serve_refuses_a_weak_or_missing_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("token");
    std::fs::write(&short, "abc\n").unwrap();
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "serve",
            "--token-file",
            short.to_str().unwrap(),
        ])),
        &["--token-file", "at least 16 characters", "(found 3)"],
    );
    let missing = dir.path().join("nothing");
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "serve",
            "--token-file",
            missing.to_str().unwrap(),
        ])),
        &["--token-file", "nothing"],
    );
}

/// `precompute --shard I/N`: three jobs into one cache score every window of a region once;
/// an unsharded run afterwards finds them all cached, and the counts add up to an unsharded run
/// into a fresh cache.
#[test]
fn precompute_shards_cover_a_region_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let regions = dir.path().join("regions.bed");
    // 200 windows at stride 200 over cache tiles 0-3 (64 windows each)
    std::fs::write(&regions, "chr1\t0\t40000\n").unwrap();
    let counts = |cache: &Path, shard: Option<&str>| -> (u64, u64, u64) {
        let extra: &[&str] = match shard {
            Some(s) => &["--shard", s],
            None => &[],
        };
        let out = fixture_precompute(&regions, cache, extra);
        assert_ok(&out);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let number = |before: &str, after: &str| -> u64 {
            let tail = stderr
                .split(after)
                .next()
                .unwrap_or_else(|| panic!("{stderr}"));
            tail.rsplit(before)
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{e}: {stderr}"))
        };
        (
            number("precomputed", " windows in"),
            number(",", " newly scored"),
            number(",", " all-N skipped"),
        )
    };
    let shared = dir.path().join("shared");
    let parts: Vec<(u64, u64, u64)> = ["0/3", "1/3", "2/3"]
        .iter()
        .map(|s| counts(&shared, Some(s)))
        .collect();
    // tiles 0 and 3 to shard 0, tile 1 to shard 1, tile 2 to shard 2
    assert_eq!(parts.iter().map(|p| p.0).collect::<Vec<_>>(), [72, 64, 64]);
    let whole = counts(&dir.path().join("fresh"), None);
    assert_eq!(whole.0, 200);
    let sum = |f: fn(&(u64, u64, u64)) -> u64| parts.iter().map(f).sum::<u64>();
    assert_eq!((sum(|p| p.0), sum(|p| p.1), sum(|p| p.2)), whole);
    // every window is in the shared cache already
    let again = counts(&shared, None);
    assert_eq!((again.0, again.1, again.2), (200, 0, 0));
    // a bad shard is refused by name
    let out = cistrack(&[
        "--config",
        "tests/data/fixture.toml",
        "precompute",
        "--shard",
        "3/3",
    ]);
    // a usage error: clap's status 2
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value '3/3' for '--shard <I/N>'")
            && stderr.contains("is not I/N with 0 <= I < N"),
        "{stderr}"
    );
}

#[test]
fn precompute_links_without_a_link_model_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture_config_without_links(dir.path());
    let regions = dir.path().join("regions.bed");
    std::fs::write(&regions, "chr1\t16000\t16400\n").unwrap();
    let out = precompute_with(&config, &regions, &dir.path().join("cache"), &["--links"]);
    assert_fails_with(
        &out,
        &["--links: build fixture has no link model (models.links in its config)"],
    );
}

#[test]
fn zero_limits_are_refused_naming_the_option() {
    let refused = |args: &[&str], option: &str| {
        let out = cistrack(&fixture_args(args));
        let err = String::from_utf8_lossy(&out.stderr);
        // a usage error: clap's exit status 2, before anything starts
        assert_eq!(out.status.code(), Some(2), "{option}: {err}");
        assert!(
            err.contains(&format!("invalid value '0' for '{option}"))
                && err.contains("must be at least 1"),
            "{option}: {err}"
        );
    };
    for option in [
        "--max-connections",
        "--header-timeout",
        "--idle-timeout",
        "--max-concurrent",
        "--max-queued-windows",
        "--request-timeout",
    ] {
        refused(&["serve", option, "0"], option);
    }
    refused(&["annotate", "--max-line-length", "0"], "--max-line-length");
    refused(
        &[
            "precompute",
            "--variant-background",
            "--variant-background-snvs",
            "0",
        ],
        "--variant-background-snvs",
    );
}
