//! The supervised enhancer–gene (E2G) score: a logistic regression, in the ENCODE-rE2G mould,
//! over features that cistrack computes itself from a build's inputs (ABC score, activity,
//! contact, distance, candidates and TSSs between element and gene, promoter activity, the link
//! model's attention, predicted expression, a ubiquitously-expressed flag), calibrated to a
//! probability (Platt scaling fitted on chromosome-held-out predictions) and shipped with the
//! threshold at 70 % recall of its training cross-validation.
//!
//! The features are defined once, here ([`features`]); `cistrack links -o x.tsv` writes them,
//! `models/training`'s `e2g_train.py` learns from that table, and the runtime scores with the
//! same function, so training and serving cannot drift apart.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use super::{read_model_json, Error};
use crate::track::links_output::GeneLinks;

/// `kind` of an E2G model's `model.json`.
pub const KIND: &str = "e2g";

/// Feature names, in the order of [`features`].
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "log_distance",
    "log_contact",
    "log_activity",
    "abc_score",
    "log_abc_score",
    "log_abc_denominator",
    "log_promoter_activity",
    "log_candidates_between",
    "log_tss_between",
    "log_abc_rank",
    "attention",
    "attention_x_activity",
    "attended",
    "expression",
    "ubiquitous",
];

/// Number of features.
pub const FEATURES: usize = 15;

/// The features computed from the link model's outputs (the others need only the inputs).
pub const LINK_MODEL_FEATURES: [&str; 3] = ["attention", "attention_x_activity", "expression"];

/// The E2G features of every link of `gene`, in link order ([`FEATURE_NAMES`] order within).
///
/// - `log_distance` = ln(1 + d / 1 kb), `d` = |element midpoint − TSS|;
/// - `log_contact` = ln(contact) (power law relative to 5 kb, or the contact table's value);
/// - `log_activity` = ln(1 + activity), activity = sqrt(accessibility × H3K27ac);
/// - `abc_score` = activity × contact / (promoter activity + Σ activity × contact over the gene's
///   candidates), the promoter counted with contact 1 as ABC counts its own promoter;
///   `log_abc_score` = ln(abc_score + 1e-4); `log_abc_denominator` = ln(1 + denominator);
/// - `log_promoter_activity` = ln(1 + promoter activity);
/// - `log_candidates_between` = ln(1 + n), n = the gene's candidates whose midpoint lies
///   strictly between the element's midpoint and the TSS;
/// - `log_tss_between` = ln(1 + n), n = other TSSs of the genes file strictly between;
/// - `log_abc_rank` = ln(1 + r), r = how many of the gene's candidates have a higher ABC score;
/// - `attention` (0 when the link model did not see the element), `attention_x_activity` =
///   attention × log_activity, `attended` = 1 when it did;
/// - `expression` = the link model's predicted log10(1 + TPM);
/// - `ubiquitous` = 1 for a gene on the ubiquitously-expressed list.
pub fn features(gene: &GeneLinks, ubiquitous: bool) -> Vec<[f64; FEATURES]> {
    let promoter = gene.promoter_activity as f64;
    let (numerators, denominator) = abc_parts(gene);
    let mids: Vec<i64> = gene
        .links
        .iter()
        .map(|l| ((l.element_start + l.element_end) / 2) as i64)
        .collect();
    let tss = gene.tss as i64;
    // sorted copies for the counts "between" and the ranks: O(n log n) per gene
    let mut sorted_mids = mids.clone();
    sorted_mids.sort_unstable();
    let mut sorted_numerators = numerators.clone();
    sorted_numerators.sort_unstable_by(f64::total_cmp);
    gene.links
        .iter()
        .enumerate()
        .map(|(j, l)| {
            let abc = abc_of(numerators[j], denominator);
            let m = mids[j];
            let between = count_strictly_between(&sorted_mids, m.min(tss), m.max(tss));
            // how many numerators are strictly greater than this one
            let rank = sorted_numerators.len()
                - sorted_numerators.partition_point(|&o| o <= numerators[j]);
            let log_activity = (l.activity as f64).max(0.0).ln_1p();
            let (attention, attended) = if l.attended {
                (l.attention as f64, 1.0)
            } else {
                (0.0, 0.0)
            };
            [
                (l.distance as f64 / 1000.0).ln_1p(),
                (l.contact as f64).max(1e-12).ln(),
                log_activity,
                abc,
                (abc + 1e-4).ln(),
                denominator.max(0.0).ln_1p(),
                promoter.max(0.0).ln_1p(),
                (between as f64).ln_1p(),
                (l.tss_between as f64).ln_1p(),
                (rank as f64).ln_1p(),
                attention,
                attention * log_activity,
                attended,
                gene.expression as f64,
                if ubiquitous { 1.0 } else { 0.0 },
            ]
        })
        .collect()
}

/// The ABC score of each link of `gene` (feature `abc_score`).
pub fn abc_scores(gene: &GeneLinks) -> Vec<f64> {
    let (numerators, denominator) = abc_parts(gene);
    numerators
        .into_iter()
        .map(|n| abc_of(n, denominator))
        .collect()
}

/// ABC's numerator (activity × contact) of each link, and the gene's denominator: the sum of
/// the numerators and the promoter's activity (contact 1).
fn abc_parts(gene: &GeneLinks) -> (Vec<f64>, f64) {
    let numerators: Vec<f64> = gene
        .links
        .iter()
        .map(|l| l.activity as f64 * l.contact as f64)
        .collect();
    let denominator = gene.promoter_activity as f64 + numerators.iter().sum::<f64>();
    (numerators, denominator)
}

fn abc_of(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

/// How many values of the ascending `sorted` lie strictly between `lo` and `hi`
/// (`lo < v < hi`); 0 when `hi <= lo`.
pub fn count_strictly_between<T: PartialOrd + Copy>(sorted: &[T], lo: T, hi: T) -> usize {
    sorted
        .partition_point(|&v| v < hi)
        .saturating_sub(sorted.partition_point(|&v| v <= lo))
}

#[derive(Debug, Deserialize)]
struct RawModel {
    schema_version: u32,
    name: String,
    version: String,
    kind: String,
    features: Vec<String>,
    mean: Vec<f64>,
    scale: Vec<f64>,
    coefficients: Vec<f64>,
    intercept: f64,
    calibration: Calibration,
    threshold: f64,
    threshold_recall: f64,
    max_distance: u64,
    ubiquitous_genes: String,
    ubiquitous_genes_sha256: String,
}

/// A list of ubiquitously-expressed genes (names or ids, one per line, `#` comments).
#[derive(Debug, Clone, Default)]
pub struct GeneList(HashSet<String>);

impl GeneList {
    /// Reads the list.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
        ))
    }

    /// True when the gene's name or id is listed.
    pub fn contains(&self, gene: &GeneLinks) -> bool {
        self.0.contains(&gene.name) || self.0.contains(&gene.id)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Platt scaling of the regression's logit: `p = σ(a · logit + b)`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Calibration {
    /// Slope.
    pub a: f64,
    /// Offset.
    pub b: f64,
}

/// True when `dir/model.json` declares an E2G model (kind `e2g`).
pub fn is_e2g_model(dir: &Path) -> bool {
    read_model_json(dir).is_ok_and(|(_, v)| v["kind"] == KIND)
}

/// A loaded E2G model.
#[derive(Debug, Clone)]
pub struct E2gModel {
    /// Model name (`link-e2g`).
    pub name: String,
    /// Version.
    pub version: String,
    /// sha256 of `model.json` (names the cache namespace).
    pub sha256: String,
    /// Calibrated probability at or above which a link is called (70 % recall on the CV).
    pub threshold: f32,
    /// Recall at that threshold on the training cross-validation.
    pub threshold_recall: f64,
    /// Candidates farther than this from the TSS are not scored (bp).
    pub max_distance: u64,
    /// One term per feature the model uses: (index in [`FEATURE_NAMES`], mean, scale,
    /// coefficient).
    terms: Vec<(usize, f64, f64, f64)>,
    intercept: f64,
    calibration: Calibration,
    /// The ubiquitously-expressed genes (feature `ubiquitous`), shipped with the model.
    pub ubiquitous: GeneList,
}

impl E2gModel {
    /// Reads `dir/model.json` and the gene list it names, and checks that every feature it
    /// uses is one this runtime computes ([`FEATURE_NAMES`]; any subset, any order, no repeats).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Spec`] naming the file and what is wrong.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let (path, json) = read_model_json(dir)?;
        let spec = |message: String| Error::Spec {
            path: path.clone(),
            message,
        };
        let raw: RawModel = serde_json::from_value(json).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        if raw.kind != KIND || raw.schema_version != 1 {
            return Err(spec(format!(
                "kind {:?} schema {} is not an E2G model of schema 1",
                raw.kind, raw.schema_version
            )));
        }
        let mut index = Vec::with_capacity(raw.features.len());
        for f in &raw.features {
            let i = FEATURE_NAMES.iter().position(|n| n == f).ok_or_else(|| {
                spec(format!(
                    "feature {f:?} is not one this runtime computes ({})",
                    FEATURE_NAMES.join(", ")
                ))
            })?;
            if index.contains(&i) {
                return Err(spec(format!("feature {f:?} is listed twice")));
            }
            index.push(i);
        }
        let n = index.len();
        for (name, v) in [
            ("mean", &raw.mean),
            ("scale", &raw.scale),
            ("coefficients", &raw.coefficients),
        ] {
            if v.len() != n {
                return Err(spec(format!(
                    "{name} has {} values for {n} features",
                    v.len()
                )));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(spec(format!("{name} has a value that is not finite")));
            }
        }
        if raw.scale.iter().any(|&s| s <= 0.0) {
            return Err(spec("scale values must be positive".into()));
        }
        let terms = (0..n)
            .map(|k| (index[k], raw.mean[k], raw.scale[k], raw.coefficients[k]))
            .collect();
        if !(0.0..=1.0).contains(&raw.threshold) {
            return Err(spec(format!(
                "threshold {} is not a probability",
                raw.threshold
            )));
        }
        let list = dir.join(&raw.ubiquitous_genes);
        let actual = super::sha256_file(&list)?;
        if actual != raw.ubiquitous_genes_sha256 {
            return Err(Error::Checksum {
                path: list,
                expected: raw.ubiquitous_genes_sha256,
                actual,
            });
        }
        let ubiquitous = GeneList::load(&list)?;
        Ok(Self {
            name: raw.name,
            version: raw.version,
            sha256: super::sha256_file(&path)?,
            threshold: raw.threshold as f32,
            threshold_recall: raw.threshold_recall,
            max_distance: raw.max_distance,
            terms,
            intercept: raw.intercept,
            calibration: raw.calibration,
            ubiquitous,
        })
    }

    /// The features the model uses, by name.
    pub fn feature_names(&self) -> Vec<&'static str> {
        self.terms.iter().map(|&(i, ..)| FEATURE_NAMES[i]).collect()
    }

    /// Whether a feature the model uses comes from the link model (attention, expression).
    pub fn uses_link_model(&self) -> bool {
        self.feature_names()
            .iter()
            .any(|n| LINK_MODEL_FEATURES.contains(n))
    }

    /// `name/version`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.version)
    }

    /// The calibrated probability of one feature vector.
    pub fn probability(&self, x: &[f64; FEATURES]) -> f32 {
        let logit = self.intercept
            + self
                .terms
                .iter()
                .map(|&(i, m, s, w)| w * (x[i] - m) / s)
                .sum::<f64>();
        let z = self.calibration.a * logit + self.calibration.b;
        (1.0 / (1.0 + (-z).exp())) as f32
    }

    /// Scores every link of `gene` in place (`score`).
    pub fn score(&self, gene: &mut GeneLinks) {
        let x = features(gene, self.ubiquitous.contains(gene));
        for (l, f) in gene.links.iter_mut().zip(&x) {
            l.score = self.probability(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::links_output::{ContactSource, Link};

    fn link(start: u64, distance: u64, activity: f32, contact: f32, attended: bool) -> Link {
        Link {
            element_start: start,
            element_end: start + 500,
            distance,
            score: 0.0,
            attention: if attended { 0.5 } else { 0.0 },
            attended,
            abc_score: 0.0,
            activity,
            contact,
            contact_source: ContactSource::Powerlaw,
            tss_between: 2,
        }
    }

    fn gene() -> GeneLinks {
        // TSS 10,000; elements at midpoints 12,250 (right), 7,250 (left) and 30,250 (right)
        GeneLinks {
            id: "ENSG1".into(),
            name: "G".into(),
            contig: "chr1".into(),
            tss: 10_000,
            strand: '+',
            expression: 1.5,
            promoter_activity: 2.0,
            candidates: 3,
            links: vec![
                link(12_000, 2_250, 4.0, 1.0, true),
                link(7_000, 2_750, 1.0, 1.0, true),
                link(30_000, 20_250, 3.0, 0.25, false),
            ],
        }
    }

    #[test]
    fn test_features_by_hand() {
        let f = features(&gene(), true);
        let name = |n: &str| FEATURE_NAMES.iter().position(|x| *x == n).unwrap();
        // ABC: numerators 4, 1, 0.75; denominator 2 (promoter) + 5.75 = 7.75
        let abc = [4.0 / 7.75, 1.0 / 7.75, 0.75 / 7.75];
        for (row, want) in f.iter().zip(abc) {
            assert!((row[name("abc_score")] - want).abs() < 1e-12);
            assert!((row[name("log_abc_denominator")] - 7.75f64.ln_1p()).abs() < 1e-12);
            assert!((row[name("log_promoter_activity")] - 2f64.ln_1p()).abs() < 1e-12);
            assert_eq!(row[name("ubiquitous")], 1.0);
            assert_eq!(row[name("expression")], 1.5);
            assert!((row[name("log_tss_between")] - 2f64.ln_1p()).abs() < 1e-12);
        }
        // only the element at 12,250 lies between 30,250 and the TSS; none for the others
        assert_eq!(f[2][name("log_candidates_between")], 1f64.ln_1p());
        assert_eq!(f[0][name("log_candidates_between")], 0.0);
        assert_eq!(f[1][name("log_candidates_between")], 0.0);
        // ranks by ABC: 0, 1, 2
        assert_eq!(f[1][name("log_abc_rank")], 1f64.ln_1p());
        // the unattended element has no attention
        assert_eq!(f[2][name("attended")], 0.0);
        assert_eq!(f[2][name("attention")], 0.0);
        assert!((f[0][name("attention_x_activity")] - 0.5 * 4f64.ln_1p()).abs() < 1e-6);
        assert!((f[2][name("log_distance")] - 20.25f64.ln_1p()).abs() < 1e-12);
        assert!((f[2][name("log_contact")] - 0.25f64.ln()).abs() < 1e-6);
        assert_eq!(abc_scores(&gene()).len(), 3);
    }

    fn write_model(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        std::fs::write(dir.join("genes.txt"), "# list\nG\nOTHER\n").unwrap();
        let sha = crate::model::sha256_file(&dir.join("genes.txt")).unwrap();
        let mut v = serde_json::json!({
            "schema_version": 1, "name": "link-e2g", "version": "9.9.9", "kind": "e2g",
            "features": ["log_abc_score", "log_distance"],
            "mean": [-3.0, 2.0], "scale": [2.0, 1.0], "coefficients": [1.0, -0.5],
            "intercept": -1.0, "calibration": {"a": 1.0, "b": 0.0},
            "threshold": 0.3, "threshold_recall": 0.7, "max_distance": 1_000_000,
            "ubiquitous_genes": "genes.txt", "ubiquitous_genes_sha256": sha,
        });
        edit(&mut v);
        std::fs::write(dir.join("model.json"), v.to_string()).unwrap();
    }

    #[test]
    fn test_load_and_score_a_feature_subset() {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), |_| {});
        let m = E2gModel::load(dir.path()).unwrap();
        assert_eq!(m.feature_names(), ["log_abc_score", "log_distance"]);
        assert_eq!((m.threshold, m.max_distance), (0.3, 1_000_000));
        assert!(is_e2g_model(dir.path()));
        let mut g = gene();
        assert!(m.ubiquitous.contains(&g));
        let x = features(&g, true);
        m.score(&mut g);
        for (l, f) in g.links.iter().zip(&x) {
            let logit = -1.0 + (f[4] + 3.0) / 2.0 - 0.5 * (f[0] - 2.0);
            let p = 1.0 / (1.0 + (-logit).exp());
            assert!((l.score as f64 - p).abs() < 1e-6);
        }
        assert!(
            g.links[0].score > g.links[2].score,
            "strong and near beats weak and far"
        );
    }

    #[test]
    fn test_load_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let err = |edit: &dyn Fn(&mut serde_json::Value)| {
            write_model(dir.path(), |v| edit(v));
            crate::error::chain(&E2gModel::load(dir.path()).unwrap_err())
        };
        let e = err(&|v| v["features"][1] = "hic_magic".into());
        assert!(
            e.contains("feature \"hic_magic\" is not one this runtime computes"),
            "{e}"
        );
        let e = err(&|v| v["features"][1] = "log_abc_score".into());
        assert!(e.contains("listed twice"), "{e}");
        let e = err(&|v| v["mean"] = serde_json::json!([1.0]));
        assert!(e.contains("mean has 1 values for 2 features"), "{e}");
        let e = err(&|v| v["scale"][0] = 0.0.into());
        assert!(e.contains("scale values must be positive"), "{e}");
        let e = err(&|v| v["threshold"] = 1.5.into());
        assert!(e.contains("threshold 1.5 is not a probability"), "{e}");
        let e = err(&|v| v["kind"] = "link".into());
        assert!(e.contains("is not an E2G model"), "{e}");
        let e = err(&|v| v["ubiquitous_genes_sha256"] = "00".into());
        assert!(e.contains("genes.txt has sha256"), "{e}");
        let e = err(&|v| {
            v.as_object_mut().unwrap().remove("calibration");
        });
        assert!(e.contains("missing field `calibration`"), "{e}");
    }
}
