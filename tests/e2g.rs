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

/// annotate's linked gene (`Linker::top`, which reads the links of a whole 20-kb stretch once
/// for all its records) is, for any interval, the gene of the best-scoring link whose element
/// overlaps the interval in a link view of that interval alone (the first such link in view
/// order on a tie): at element edges, inside elements, between them, across stretch
/// boundaries and for intervals longer than a stretch, in unsorted order.
#[test]
fn the_linked_gene_is_the_best_overlapping_link_of_the_records_own_view() {
    use std::sync::Arc;
    let config = cistrack::config::Config::load(Path::new("examples/hg38.toml")).unwrap();
    let build =
        Arc::new(cistrack::genome::Build::open(config.build(Some("hg38")).unwrap()).unwrap());
    let cache = || Arc::new(cistrack::pipeline::cache::Cache::open(None, "hg38", 64).unwrap());
    let linker = cistrack::annotate::linker::Linker::open(
        &build,
        cistrack::model::Device::Cpu,
        2,
        cache(),
        false,
    )
    .unwrap()
    .expect("the demo build has a link model");
    let engine = cistrack::track::links::open(
        build.clone(),
        cache(),
        &cistrack::pipeline::engine::inputs_fingerprint(&build),
        cistrack::model::Device::Cpu,
        2,
        true,
    )
    .unwrap()
    .scores_only();
    let contig = build.contigs().resolve("chr22").unwrap().clone();
    let expected = |start0: u64, end0: u64| {
        let end0 = end0.max(start0 + 1);
        let view = engine.view(&contig, start0, end0, None, || true).unwrap();
        let mut best: Option<(String, f32)> = None;
        for g in &view.genes {
            for l in &g.links {
                if l.element_start < end0
                    && l.element_end > start0
                    && best.as_ref().is_none_or(|(_, s)| l.score > *s)
                {
                    best = Some((g.name.clone(), l.score));
                }
            }
        }
        best
    };
    // intervals around the elements of one stretch, and a few that cross stretches
    let around = engine
        .view(&contig, 17_530_000, 17_560_000, None, || true)
        .unwrap();
    let mut elements: Vec<(u64, u64)> = around
        .genes
        .iter()
        .flat_map(|g| g.links.iter().map(|l| (l.element_start, l.element_end)))
        .filter(|(s, e)| *s < 17_560_000 && *e > 17_530_000)
        .collect();
    elements.sort_unstable();
    elements.dedup();
    assert!(elements.len() >= 5, "{elements:?}");
    let block = cistrack::annotate::linker::BLOCK;
    // and every element in the locus that crosses a stretch boundary
    let locus = engine
        .view(&contig, 17_200_000, 17_800_000, None, || true)
        .unwrap();
    let crossing: Vec<(u64, u64)> = locus
        .genes
        .iter()
        .flat_map(|g| g.links.iter().map(|l| (l.element_start, l.element_end)))
        .filter(|(s, e)| s / block != (e - 1) / block)
        .collect();
    assert!(!crossing.is_empty());
    elements.extend(crossing);
    let mut intervals = Vec::new();
    for &(s, e) in &elements {
        intervals.extend([
            (s - 1, s),
            (s, s + 1),
            ((s + e) / 2, (s + e) / 2 + 3),
            (e - 1, e),
            (e, e + 1),
        ]);
    }
    intervals.extend([
        (17_540_000 - 2, 17_540_000 + 2),
        (17_535_000, 17_535_000 + block + 7_000),
        (17_200_000, 17_200_001),
        (17_547_710, 17_547_711),
        (16_000_000, 16_000_001),
    ]);
    // unsorted: the stretch read changes back and forth
    intervals.reverse();
    let middle = intervals.len() / 2;
    intervals.swap(0, middle);
    let mut linked = 0;
    for &(s, e) in &intervals {
        let got = linker.top(&contig, s, e).unwrap();
        assert_eq!(got, expected(s, e), "chr22:{s}-{e}");
        linked += usize::from(got.is_some());
    }
    assert!(
        linked * 2 > intervals.len(),
        "{linked} of {}",
        intervals.len()
    );
    assert!(linked < intervals.len(), "some intervals touch no element");
}
