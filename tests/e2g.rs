//! The supervised enhancer–gene (E2G) score end to end on the demo build (real K562 inputs):
//! the runtime recomputes the features of the model's golden genes and matches the training
//! table it was fitted on; the served score is the calibrated logistic regression of
//! `model.json` applied to those features; `--min-score threshold` reads the calibrated
//! threshold from `model.json`; and a contig the FASTA lacks answers with its sequence masked.

#[path = "support/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

const MODEL: &str = "models/link-e2g/0.1.0";

/// Rows keyed by (gene id, element start, element end).
type Rows = HashMap<(String, u64, u64), Vec<String>>;

/// The header and rows of a `cistrack links` TSV.
fn read_tsv(text: &str) -> (Vec<String>, Rows) {
    let mut lines = text.lines().filter(|l| !l.starts_with("##"));
    let header: Vec<String> = lines
        .next()
        .expect("a header line")
        .split('\t')
        .map(str::to_string)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (g, s, e) = (col("gene_id"), col("element_start"), col("element_end"));
    let mut rows = HashMap::new();
    for line in lines {
        let f: Vec<String> = line.split('\t').map(str::to_string).collect();
        let key = (f[g].clone(), f[s].parse().unwrap(), f[e].parse().unwrap());
        assert!(
            rows.insert(key, f).is_none(),
            "one row per gene and element"
        );
    }
    (header, rows)
}

fn model_json() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(helpers::root().join(MODEL).join("model.json")).unwrap(),
    )
    .unwrap()
}

/// model.json, the golden table's header and rows, and its genes.
fn golden() -> (Value, Vec<String>, Rows, Vec<String>) {
    let text =
        std::fs::read_to_string(helpers::root().join(MODEL).join("golden_features.tsv")).unwrap();
    let (header, rows) = read_tsv(&text);
    let genes = golden_genes(&rows);
    (model_json(), header, rows, genes)
}

fn golden_genes(golden: &Rows) -> Vec<String> {
    let mut genes: Vec<String> = golden.keys().map(|k| k.0.clone()).collect();
    genes.sort();
    genes.dedup();
    genes
}

fn links_tsv(dir: &Path, extra: &[&str], genes: &[String]) -> String {
    let cache = dir.join("cache");
    let mut args = vec![
        "-q",
        "--config",
        "examples/hg38.toml",
        "links",
        "--cache-dir",
        cache.to_str().unwrap(),
        "-o",
        "-",
    ];
    args.extend_from_slice(extra);
    for g in genes {
        args.extend_from_slice(&["--gene", g]);
    }
    helpers::assert_ok(&helpers::cistrack(&args))
}

#[test]
fn runtime_features_of_golden_genes_match_the_training_table() {
    helpers::require_demo_data();
    let (spec, header, golden, genes) = golden();
    assert!(genes.len() >= 3 && golden.len() > 100, "{genes:?}");
    let reach = spec["max_distance"].as_u64().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let list = format!("{MODEL}/ubiquitous_genes.txt");
    let text = links_tsv(
        dir.path(),
        &["--no-e2g", "--reach", &reach, "--ubiquitous-genes", &list],
        &genes,
    );
    let (got_header, got) = read_tsv(&text);
    assert_eq!(got_header, header);
    assert_eq!(
        got.len(),
        golden.len(),
        "the same candidates for the golden genes"
    );
    let atol = spec["golden"]["atol"].as_f64().unwrap();
    let features: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.starts_with("f_"))
        .map(|(i, _)| i)
        .collect();
    // the table holds every feature the runtime computes; the model uses some of them
    let names: Vec<String> = cistrack::model::e2g::FEATURE_NAMES
        .iter()
        .map(|f| format!("f_{f}"))
        .collect();
    let header_features: Vec<&String> = features.iter().map(|&i| &header[i]).collect();
    assert_eq!(header_features, names.iter().collect::<Vec<_>>());
    for f in spec["features"].as_array().unwrap() {
        assert!(names.contains(&format!("f_{}", f.as_str().unwrap())), "{f}");
    }
    let mut compared = 0;
    for (key, want) in &golden {
        let have = got
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} not computed"));
        for &i in &features {
            let (a, b): (f64, f64) = (have[i].parse().unwrap(), want[i].parse().unwrap());
            assert!(
                (a - b).abs() <= atol,
                "{key:?} {}: runtime {a} vs training table {b}",
                header[i]
            );
            compared += 1;
        }
    }
    assert_eq!(compared, golden.len() * features.len());
}

#[test]
fn served_score_is_the_calibrated_model_and_the_threshold_comes_from_model_json() {
    helpers::require_demo_data();
    let (spec, header, _, genes) = golden();
    let dir = tempfile::tempdir().unwrap();
    let text = links_tsv(dir.path(), &[], &genes);
    let (_, got) = read_tsv(&text);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let v = |name: &str| -> Vec<f64> {
        spec[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (mean, scale, coef) = (v("mean"), v("scale"), v("coefficients"));
    let intercept = spec["intercept"].as_f64().unwrap();
    let (a, b) = (
        spec["calibration"]["a"].as_f64().unwrap(),
        spec["calibration"]["b"].as_f64().unwrap(),
    );
    let names: Vec<String> = spec["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("f_{}", f.as_str().unwrap()))
        .collect();
    let threshold = spec["threshold"].as_f64().unwrap();
    let mut above = 0;
    for (key, row) in &got {
        let mut logit = intercept;
        for (k, name) in names.iter().enumerate() {
            let x: f64 = row[col(name)].parse().unwrap();
            logit += coef[k] * (x - mean[k]) / scale[k];
        }
        let p = 1.0 / (1.0 + (-(a * logit + b)).exp());
        let score: f64 = row[col("score")].parse().unwrap();
        assert!(
            (score - p).abs() < 1e-5,
            "{key:?}: served {score} vs model {p}"
        );
        above += (score >= threshold) as usize;
    }
    assert!(above > 0 && above < got.len(), "{above} of {}", got.len());
    // --min-score threshold keeps exactly the links at or above model.json's threshold
    let text = links_tsv(dir.path(), &["--min-score", "threshold"], &genes);
    let (_, kept) = read_tsv(&text);
    assert_eq!(kept.len(), above);
    assert!(text.lines().next().unwrap().contains("e2g=link-e2g/0.1.0"));
}

#[test]
fn a_contig_without_sequence_gets_links_from_signals() {
    helpers::require_demo_data();
    // chr11 is not in the partial FASTA; the demo build adds it from hg38.chrom.sizes.
    // HBG1/HBG2 (beta-globin locus, highly expressed in K562) sit there.
    let dir = tempfile::tempdir().unwrap();
    let text = links_tsv(dir.path(), &[], &["HBG1".to_string()]);
    let (header, rows) = read_tsv(&text);
    assert!(!rows.is_empty());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in rows.values() {
        assert_eq!(row[col("chrom")], "chr11");
        assert_eq!(row[col("gene_id")], "ENSG00000213934");
    }
    let out = helpers::cistrack(&[
        "--config",
        "examples/hg38.toml",
        "links",
        "--gene",
        "NOT_A_GENE",
        "-o",
        "-",
        "--cache-dir",
        dir.path().join("c").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 of 1 genes asked for are not in the build's genes file"),
        "{stderr}"
    );
    let cache = dir.path().join("c");
    for value in ["2", "x"] {
        let out = helpers::cistrack(&[
            "--config",
            "examples/hg38.toml",
            "links",
            "--gene",
            "MYC",
            "--min-score",
            value,
            "--cache-dir",
            cache.to_str().unwrap(),
        ]);
        let needle = format!("--min-score \"{value}\" is not a number in [0, 1], nor `threshold`");
        helpers::assert_fails_with(&out, &[&needle]);
    }
}

#[test]
fn scores_only_links_skip_the_link_model_and_keep_every_e2g_score() {
    use std::sync::Arc;
    let config = cistrack::config::Config::load(Path::new("examples/hg38.toml")).unwrap();
    let build =
        Arc::new(cistrack::genome::Build::open(config.build(Some("hg38")).unwrap()).unwrap());
    let fingerprint = cistrack::pipeline::engine::inputs_fingerprint(&build);
    let open = || {
        cistrack::track::links::open(
            build.clone(),
            Arc::new(cistrack::pipeline::cache::Cache::open(None, "hg38", 16).unwrap()),
            &fingerprint,
            cistrack::model::Device::Cpu,
            2,
            true,
        )
        .unwrap()
    };
    let full = open();
    let fast = open().scores_only();
    assert!(
        fast.is_scores_only(),
        "link-e2g 0.1.0 does not use the link model"
    );
    assert!(!full.is_scores_only());
    assert_ne!(full.namespace(), fast.namespace(), "cached apart");
    let contig = build.contigs().resolve("chr22").unwrap().clone();
    let near: Vec<_> = full
        .genes_on("chr22")
        .iter()
        .filter(|t| (17_200_000..17_800_000).contains(&t.position0))
        .take(3)
        .cloned()
        .collect();
    assert_eq!(near.len(), 3);
    let a = full.genes(&contig, &near, || true).unwrap();
    let b = fast.genes(&contig, &near, || true).unwrap();
    let mut attended = 0;
    for (g, h) in a.genes.iter().zip(&b.genes) {
        assert_eq!((&g.id, g.links.len()), (&h.id, h.links.len()));
        for (l, m) in g.links.iter().zip(&h.links) {
            assert_eq!(l.score, m.score, "{} {}", g.id, l.element_start);
            assert_eq!((l.abc_score, l.attended), (m.abc_score, m.attended));
            assert_eq!(m.attention, 0.0);
            attended += usize::from(l.attention > 0.0);
        }
    }
    assert!(attended > 0, "the full engine ran the link model");
}
