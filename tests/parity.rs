//! Rust ↔ Python parity on the golden files of every shipped model (`models/CONTRACT.md`):
//! Rust encoding of the golden windows equals the Python reference encoding, and ONNX Runtime
//! on the golden inputs reproduces PyTorch's outputs at batch sizes 1, 7 and 64.

#[path = "support/helpers.rs"]
mod helpers;

use std::path::PathBuf;

use cistrack::config::Config;
use cistrack::genome::build::Span;
use cistrack::genome::Build;
use cistrack::model::onnx::{OrtPredictor, SessionOptions};
use cistrack::model::{Batch, Device, ModelSpec, Predictions, Predictor};
use cistrack::pipeline::inputs::{encode_window, normalisers};
use ndarray::{Array1, Array2, Array3};
use ndarray_npy::read_npy;

/// Every shipped enhancer model version: `models/enhancer-*/<version>/` with a `model.json`,
/// as `"name/version"`.
fn shipped() -> Vec<String> {
    let root = helpers::root().join("models");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with("enhancer-") {
            continue;
        }
        for version in std::fs::read_dir(root.join(&name)).unwrap() {
            let version = version.unwrap().file_name().to_string_lossy().into_owned();
            if root.join(&name).join(&version).join("model.json").exists() {
                out.push(format!("{name}/{version}"));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_shipped_model_and_the_fixture_defaults_are_covered() {
    let models = shipped();
    let config = Config::load(&helpers::root().join("tests/data/fixture.toml")).unwrap();
    let build = config.build(None).unwrap();
    for default in build.models.values() {
        if default.starts_with("enhancer-") {
            assert!(
                models.contains(default),
                "{default} has no golden files: {models:?}"
            );
        }
    }
    for role in ["student", "teacher"] {
        assert!(
            models
                .iter()
                .any(|m| m.starts_with(&format!("enhancer-{role}/"))),
            "no shipped {role}: {models:?}"
        );
    }
}

struct Golden {
    spec: ModelSpec,
    windows: Vec<(String, i64, i64, [f32; 3])>,
    sequence: Array3<u8>,
    h3k27ac: Array2<f32>,
    accessibility: Array2<f32>,
    mask: Array2<f32>,
    logit: Array1<f32>,
    probability: Array1<f32>,
    share: Array2<f32>,
}

fn golden(name: &str) -> Golden {
    let dir = helpers::root().join("models").join(name);
    let spec = ModelSpec::load(&dir).unwrap();
    let g = spec
        .golden
        .clone()
        .expect("shipped models carry golden files");
    let gdir = dir.join(&g.dir);
    let file = |key: &str, map: &std::collections::BTreeMap<String, String>| -> PathBuf {
        gdir.join(&map[key])
    };
    let text = std::fs::read_to_string(gdir.join(&g.windows)).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap().split('\t').collect::<Vec<_>>(),
        [
            "id",
            "chrom",
            "start0",
            "end0",
            "mask_sequence",
            "mask_h3k27ac",
            "mask_accessibility"
        ]
    );
    let windows = lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                [
                    f[4].parse().unwrap(),
                    f[5].parse().unwrap(),
                    f[6].parse().unwrap(),
                ],
            )
        })
        .collect();
    Golden {
        windows,
        sequence: read_npy(file("sequence", &g.inputs)).unwrap(),
        h3k27ac: read_npy(file("h3k27ac", &g.inputs)).unwrap(),
        accessibility: read_npy(file("accessibility", &g.inputs)).unwrap(),
        mask: read_npy(file("modality_mask", &g.inputs)).unwrap(),
        logit: read_npy(file("logit", &g.outputs)).unwrap(),
        probability: read_npy(file("probability", &g.outputs)).unwrap(),
        share: read_npy(file("modality_share", &g.outputs)).unwrap(),
        spec,
    }
}

#[test]
fn golden_files_are_complete() {
    for name in shipped() {
        let name = name.as_str();
        let g = golden(name);
        let n = g.windows.len();
        assert_eq!(n, 64, "{name}: the contract asks for 64 golden windows");
        assert_eq!(g.sequence.shape(), [n, 4, 2000]);
        assert_eq!(
            (g.h3k27ac.shape(), g.accessibility.shape(), g.mask.shape()),
            (&[n, 200][..], &[n, 200][..], &[n, 3][..])
        );
        assert_eq!(
            (g.logit.len(), g.probability.len(), g.share.shape()),
            (n, n, &[n, 3][..])
        );
        let masks: std::collections::BTreeSet<[u8; 3]> =
            g.windows.iter().map(|w| w.3.map(|m| m as u8)).collect();
        assert_eq!(
            masks.len(),
            8,
            "{name}: every mask combination must be present"
        );
        assert!(
            g.windows.iter().any(|w| w.1 < 0),
            "{name}: a window hanging over a contig start"
        );
        assert!(
            g.windows
                .iter()
                .any(|w| w.0 == "chr2" && w.1 >= 22_000 && w.2 <= 25_000),
            "{name}: a window inside chr2's N stretch"
        );
    }
}

/// Rust's encoding (`genome::fasta` + bigtools + `model::encode`) of the golden windows equals the
/// Python reference's (pyBigWig + numpy), masks applied.
#[test]
fn rust_encoding_matches_python_reference() {
    for name in shipped() {
        let name = name.as_str();
        let g = golden(name);
        let config =
            Config::load(&helpers::root().join(&g.spec.golden.as_ref().unwrap().build)).unwrap();
        let build = Build::open(config.build(None).unwrap()).unwrap();
        let mut reader = build.reader().unwrap();
        let norms = normalisers(&build, &g.spec);
        let mut batch = Batch::for_spec(&g.spec, 1);
        let mut span = Span::default();
        let mut worst = 0.0f32;
        for (i, (chrom, start0, end0, mask)) in g.windows.iter().enumerate() {
            let contig = build.contigs().resolve(chrom).unwrap().clone();
            reader
                .read_span(&contig, *start0, *end0, &mut span)
                .unwrap();
            batch.clear();
            encode_window(&span, *start0, 10, &norms, *mask, batch.push_row(0));
            let seq_expected: Vec<f32> = g
                .sequence
                .index_axis(ndarray::Axis(0), i)
                .iter()
                .map(|&v| v as f32)
                .collect();
            assert_eq!(
                batch.sequence, seq_expected,
                "{name}: window {i} ({chrom}:{start0}-{end0}) one-hot differs"
            );
            for (got, want) in [
                (&batch.h3k27ac, g.h3k27ac.row(i)),
                (&batch.accessibility, g.accessibility.row(i)),
            ] {
                for (a, b) in got.iter().zip(want.iter()) {
                    worst = worst.max((a - b).abs());
                }
            }
            assert_eq!(batch.modality_mask, g.mask.row(i).to_vec());
        }
        assert!(
            worst <= 1e-6,
            "{name}: signal encoding differs from the Python reference by up to {worst}"
        );
    }
}

fn run_in_batches(predictor: &mut OrtPredictor, g: &Golden, batch_size: usize) -> Predictions {
    let n = g.windows.len();
    let mut all = Predictions::default();
    let mut batch = Batch::for_spec(&g.spec, batch_size);
    for start in (0..n).step_by(batch_size) {
        batch.clear();
        for i in start..(start + batch_size).min(n) {
            let row = batch.push_row(i as u64);
            row.sequence
                .iter_mut()
                .zip(g.sequence.index_axis(ndarray::Axis(0), i).iter())
                .for_each(|(d, &s)| *d = s as f32);
            row.h3k27ac
                .copy_from_slice(g.h3k27ac.row(i).as_slice().unwrap());
            row.accessibility
                .copy_from_slice(g.accessibility.row(i).as_slice().unwrap());
            row.modality_mask
                .copy_from_slice(g.mask.row(i).as_slice().unwrap());
        }
        let p = predictor.predict(&batch).unwrap();
        all.logit.extend(p.logit);
        all.probability.extend(p.probability);
        all.modality_share.extend(p.modality_share);
    }
    all
}

fn max_diff(p: &Predictions, logit: &[f32], probability: &[f32], share: &[[f32; 3]]) -> f32 {
    let mut worst = 0.0f32;
    for i in 0..logit.len() {
        worst = worst
            .max((p.logit[i] - logit[i]).abs())
            .max((p.probability[i] - probability[i]).abs());
        for (got, want) in p.modality_share[i].iter().zip(&share[i]) {
            worst = worst.max((got - want).abs());
        }
    }
    worst
}

/// ONNX Runtime reproduces the PyTorch outputs within the golden tolerance at batch sizes 1, 7
/// and 64, and the three batch sizes agree with each other (batch invariance).
#[test]
fn onnx_runtime_matches_python_outputs_at_every_batch_size() {
    for name in shipped() {
        let name = name.as_str();
        let g = golden(name);
        let atol = g.spec.golden.as_ref().unwrap().atol as f32;
        let mut predictor = OrtPredictor::new(
            &g.spec,
            SessionOptions {
                device: Device::Cpu,
                intra_threads: 2,
            },
        )
        .unwrap();
        let share: Vec<[f32; 3]> = g
            .share
            .rows()
            .into_iter()
            .map(|r| [r[0], r[1], r[2]])
            .collect();
        let runs: Vec<Predictions> = [1, 7, 64]
            .iter()
            .map(|&b| run_in_batches(&mut predictor, &g, b))
            .collect();
        for (run, b) in runs.iter().zip([1, 7, 64]) {
            let d = max_diff(
                run,
                g.logit.as_slice().unwrap(),
                g.probability.as_slice().unwrap(),
                &share,
            );
            assert!(
                d <= atol,
                "{name}: batch size {b} differs from PyTorch by {d} (tolerance {atol})"
            );
            assert!(
                run.probability.iter().all(|p| p.is_finite()),
                "{name}: non-finite output at batch size {b}"
            );
        }
        for other in &runs[1..] {
            let d = max_diff(
                other,
                &runs[0].logit,
                &runs[0].probability,
                &runs[0].modality_share,
            );
            assert!(d <= atol, "{name}: batch sizes disagree by {d}");
        }
    }
}

/// A calibrated model (model.json `calibration`) reports the calibrated probability of the
/// graph's logit, for both methods, through the real ONNX Runtime; the logit is untouched.
#[test]
fn calibration_in_model_json_is_applied_to_the_graph_logit() {
    use cistrack::model::calibration::Calibration;
    let mut g = golden("enhancer-student/0.2.0");
    let options = SessionOptions {
        device: Device::Cpu,
        intra_threads: 2,
    };
    let cases = [
        Calibration::Temperature {
            temperature: 2.0,
            fitted_on: None,
        },
        Calibration::Isotonic {
            logits: vec![-3.0, 0.0, 3.0],
            probabilities: vec![0.05, 0.2, 0.8],
            fitted_on: None,
        },
        // every window with all three modalities at T = 2, any other set at T = 0.5
        Calibration::ByModalities {
            sets: [(
                "sequence+h3k27ac+accessibility".to_string(),
                Calibration::Temperature {
                    temperature: 2.0,
                    fitted_on: None,
                },
            )]
            .into(),
            default: Box::new(Calibration::Temperature {
                temperature: 0.5,
                fitted_on: None,
            }),
            fitted_on: None,
        },
    ];
    let all_present = |i: usize| g.mask.row(i).iter().all(|&m| m > 0.5);
    assert!((0..g.mask.nrows()).any(all_present));
    assert!(
        !(0..g.mask.nrows()).all(all_present),
        "golden windows cover other sets too"
    );
    for calibration in cases {
        g.spec.calibration = Some(calibration.clone());
        let mut predictor = OrtPredictor::new(&g.spec, options).unwrap();
        let run = run_in_batches(&mut predictor, &g, 7);
        for (i, (&z, &want_logit)) in run.logit.iter().zip(g.logit.iter()).enumerate() {
            assert!((z - want_logit).abs() <= 1e-4, "window {i}: logit {z}");
            let want = match &calibration {
                Calibration::Temperature { temperature, .. } => {
                    1.0 / (1.0 + (-f64::from(z) / temperature).exp())
                }
                Calibration::Isotonic { .. } => {
                    let z = f64::from(z).clamp(-3.0, 3.0);
                    if z < 0.0 {
                        0.05 + 0.15 * (z + 3.0) / 3.0
                    } else {
                        0.2 + 0.6 * z / 3.0
                    }
                }
                Calibration::ByModalities { .. } => {
                    let t = if all_present(i) { 2.0 } else { 0.5 };
                    1.0 / (1.0 + (-f64::from(z) / t).exp())
                }
            } as f32;
            assert!(
                (run.probability[i] - want).abs() < 1e-6,
                "{calibration:?} window {i}: {} vs {want}",
                run.probability[i]
            );
        }
    }
}

/// The bigWig values Rust reads (bigtools) equal pyBigWig's (libBigWig), as zero-filled 10-bp
/// bin means, on both fixture tracks (the accessibility track names its contigs `1`/`2`).
#[test]
fn bin_means_match_pybigwig() {
    let root = helpers::root();
    let windows: [(&str, &str, u32); 6] = [
        ("h3k27ac.bw", "chr1", 12_000),
        ("h3k27ac.bw", "chr2", 0),
        ("h3k27ac.bw", "chr2", 21_337),
        ("accessibility.bw", "1", 42_900),
        ("accessibility.bw", "2", 5_000),
        ("accessibility.bw", "2", 38_000),
    ];
    let code = r#"
import sys, numpy as np, pyBigWig
for spec in sys.argv[1:]:
    path, chrom, start = spec.split(",")
    start = int(start)
    bw = pyBigWig.open(path)
    v = np.nan_to_num(np.array(bw.values(chrom, start, start + 2000), dtype=np.float64))
    print(",".join(repr(float(x)) for x in v.reshape(200, 10).mean(axis=1)))
"#;
    let args: Vec<String> = windows
        .iter()
        .map(|(f, c, s)| {
            format!(
                "{},{c},{s}",
                root.join("tests/data/fixture").join(f).display()
            )
        })
        .collect();
    let python = helpers::run_python(code, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut nonzero = 0;
    for ((file, chrom, start), line) in windows.iter().zip(python.lines()) {
        let expected: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let track =
            cistrack::io::bbi::SignalTrack::open(&root.join("tests/data/fixture").join(file))
                .unwrap();
        let mut values = vec![0.0f32; 2000];
        track
            .reader()
            .unwrap()
            .read_into(chrom, *start, start + 2000, &mut values)
            .unwrap();
        for (bin, want) in values.chunks(10).zip(&expected) {
            let got = bin.iter().map(|&v| v as f64).sum::<f64>() / 10.0;
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{file} {chrom}:{start}: {got} vs {want}"
            );
            nonzero += (*want != 0.0) as usize;
        }
    }
    assert!(
        nonzero > 100,
        "the chosen windows must hold real signal ({nonzero} non-zero bins)"
    );
}
