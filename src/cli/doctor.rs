//! `cistrack doctor`: check the installation and the configured builds.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use cistrack::config::{BuildConfig, Config};
use cistrack::error::chain;
use cistrack::genome::build::ScaleSource;
use cistrack::genome::{genes, Build};
use cistrack::model::onnx::{self, OrtPredictor, SessionOptions};
use cistrack::model::{runtime, Batch, Device, ModelSpec, Predictor};

use super::GlobalArgs;

/// Check ONNX Runtime, CUDA, the config's builds and their models.
#[derive(Debug, Args)]
pub struct DoctorArgs {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Fail,
    No,
}

/// The report on stdout. Write errors (a closed stdout) propagate with `?` and end the run.
struct Report {
    problems: usize,
    out: std::io::StdoutLock<'static>,
}

impl Report {
    fn line(
        &mut self,
        indent: usize,
        status: Status,
        what: &str,
        detail: impl std::fmt::Display,
    ) -> std::io::Result<()> {
        if status == Status::Fail {
            self.problems += 1;
        }
        let tag = match status {
            Status::Ok => "ok",
            Status::Fail => "FAIL",
            Status::No => "no",
        };
        writeln!(self.out, "{:indent$}{tag:<5} {what:<22} {detail}", "")
    }

    fn text(&mut self, text: impl std::fmt::Display) -> std::io::Result<()> {
        writeln!(self.out, "{text}")
    }
}

/// Runs `cistrack doctor`; exit status 1 when any check fails.
///
/// # Errors
///
/// Never for a failed check (those are reported); only for output errors.
pub fn run(global: &GlobalArgs, _args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut report = Report {
        problems: 0,
        out: std::io::stdout().lock(),
    };
    report.text(format!("cistrack {}", env!("CARGO_PKG_VERSION")))?;
    let runtime_ok = match runtime::init() {
        Ok(info) => {
            report.line(
                0,
                Status::Ok,
                "ONNX Runtime",
                format!("{} at {}", info.version, info.path.display()),
            )?;
            true
        }
        Err(e) => {
            report.line(0, Status::Fail, "ONNX Runtime", e)?;
            false
        }
    };
    let config = match &global.config {
        None => {
            report.line(
                0,
                Status::No,
                "config",
                "none given (--config FILE or CISTRACK_CONFIG); builds not checked",
            )?;
            None
        }
        Some(path) => match Config::load(path) {
            Ok(config) => {
                let n = config.builds.len();
                let detail = format!(
                    "{} ({n} build{}, models in {})",
                    path.display(),
                    if n == 1 { "" } else { "s" },
                    config.models_dir.display()
                );
                report.line(0, Status::Ok, "config", detail)?;
                Some(config)
            }
            Err(e) => {
                report.line(0, Status::Fail, "config", chain(&e))?;
                None
            }
        },
    };
    let mut cuda_spec: Option<ModelSpec> = None;
    if let Some(config) = &config {
        let builds: Vec<&BuildConfig> = match &global.build {
            Some(name) => match config.build(Some(name)) {
                Ok(b) => vec![b],
                Err(e) => {
                    report.line(0, Status::Fail, "build", e)?;
                    vec![]
                }
            },
            None => config.builds.values().collect(),
        };
        for b in builds {
            check_build(&mut report, b, runtime_ok, &mut cuda_spec)?;
        }
    }
    match (runtime_ok, &cuda_spec, global.device) {
        (_, _, Device::Cpu) => report.line(0, Status::No, "CUDA", "not checked (--device cpu)")?,
        (false, _, _) => report.line(0, Status::No, "CUDA", "not checked: no ONNX Runtime")?,
        (true, None, _) => report.line(
            0,
            Status::No,
            "CUDA",
            "not checked: no model verified to try it with",
        )?,
        (true, Some(spec), _) => match onnx::check_cuda(spec) {
            Ok(()) => report.line(
                0,
                Status::Ok,
                "CUDA",
                "the CUDA execution provider loads; --device auto uses it",
            )?,
            Err(reason) => report.line(
                0,
                Status::No,
                "CUDA",
                format!(
                    "not usable, models run on the CPU ({})",
                    first_line(&reason)
                ),
            )?,
        },
    }
    if report.problems == 0 {
        report.text("all checks passed")?;
        Ok(ExitCode::SUCCESS)
    } else {
        let n = report.problems;
        report.text(format!(
            "{n} problem{} found",
            if n == 1 { "" } else { "s" }
        ))?;
        Ok(ExitCode::FAILURE)
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

fn check_build(
    report: &mut Report,
    config: &BuildConfig,
    runtime_ok: bool,
    cuda_spec: &mut Option<ModelSpec>,
) -> std::io::Result<()> {
    let description = config
        .description
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    report.text(format!("build {}{description}", config.name))?;
    let build = match Build::open(config) {
        Ok(build) => build,
        Err(e) => return report.line(2, Status::Fail, "inputs", chain(&e)),
    };
    let contigs = build.contigs();
    let total: u64 = contigs.iter().map(|c| c.length).sum();
    report.line(
        2,
        Status::Ok,
        "fasta",
        format!(
            "{}: {} contigs, {total} bp",
            config.fasta.display(),
            contigs.len()
        ),
    )?;
    if let Err(e) = build.reader() {
        report.line(2, Status::Fail, "fasta", chain(&e))?;
    }
    for signal in build.signals() {
        let scale = match signal.scale_source {
            ScaleSource::Config => format!("scale {:.4} (config)", signal.scale),
            ScaleSource::Summary => {
                format!(
                    "scale {:.4} (mean over {} covered bases)",
                    signal.scale,
                    signal.track.bigwig().map_or(0, |t| t.bases_covered())
                )
            }
            ScaleSource::Fragments => {
                let f = signal.track.fragments().expect("a fragments scale");
                format!(
                    "scale {:.6} (cut sites per base; group {} of {}: {} fragments)",
                    signal.scale,
                    f.group_name(),
                    f.group_names().join(", "),
                    f.total()
                )
            }
        };
        let detail = format!(
            "{}: {} contigs, {} of the build's; {scale}",
            signal.track.path().display(),
            signal.track.contig_count(),
            signal.covered_contigs()
        );
        report.line(2, Status::Ok, signal.modality.as_str(), detail)?;
    }
    for m in build.masked_modalities() {
        report.line(
            2,
            Status::No,
            m.as_str(),
            "no track: scored with this modality masked",
        )?;
    }
    match &config.genes {
        None => report.line(2, Status::No, "genes", "none configured")?,
        Some((path, base)) => match genes::read_tss(path, *base) {
            Ok(tss) => {
                let on_build = tss
                    .iter()
                    .filter(|t| contigs.resolve(&t.contig).is_some())
                    .count();
                let detail = format!(
                    "{}: {} TSS, {on_build} on the build's contigs",
                    path.display(),
                    tss.len()
                );
                report.line(2, Status::Ok, "genes", detail)?
            }
            Err(e) => report.line(2, Status::Fail, "genes", chain(&e))?,
        },
    }
    match &config.candidates {
        None => report.line(2, Status::No, "candidates", "none configured")?,
        Some(path) => match genes::read_intervals(path) {
            Ok(iv) => report.line(
                2,
                Status::Ok,
                "candidates",
                format!("{}: {} elements", path.display(), iv.len()),
            )?,
            Err(e) => report.line(2, Status::Fail, "candidates", chain(&e))?,
        },
    }
    if config.models.is_empty() {
        let hint =
            "none configured: add [builds.NAME] models = { student = \"enhancer-student/0.2.0\" }";
        report.line(2, Status::Fail, "models", hint)?;
    }
    for role in config.models.keys() {
        let what = format!("model {role}");
        if let Ok(dir) = build.model_dir(Some(role)) {
            if cistrack::model::e2g::is_e2g_model(&dir) {
                match cistrack::model::e2g::E2gModel::load(&dir) {
                    Ok(m) => report.line(
                        2,
                        Status::Ok,
                        &what,
                        format!(
                            "{}: logistic regression over {} features, calibrated threshold {:.4} ({:.0} % recall on its CV), reach {} kb",
                            m.id(),
                            m.feature_names().len(),
                            m.threshold,
                            m.threshold_recall * 100.0,
                            m.max_distance / 1000
                        ),
                    )?,
                    Err(e) => report.line(2, Status::Fail, &what, chain(&e))?,
                }
                continue;
            }
            if super::models::is_link_model(&dir) {
                match verify_link_model(&dir, runtime_ok) {
                    Ok(detail) => report.line(2, Status::Ok, &what, detail)?,
                    Err(e) => report.line(2, Status::Fail, &what, format!("{e:#}"))?,
                }
                continue;
            }
        }
        let spec = match build
            .model_dir(Some(role))
            .map_err(anyhow::Error::from)
            .and_then(|dir| Ok(ModelSpec::load(&dir)?))
        {
            Ok(spec) => spec,
            Err(e) => {
                report.line(2, Status::Fail, &what, format!("{e:#}"))?;
                continue;
            }
        };
        if !runtime_ok {
            match spec.verify_checksum() {
                Ok(()) => report.line(
                    2,
                    Status::Ok,
                    &what,
                    format!("{}: sha256 ok (not run: no ONNX Runtime)", spec.id()),
                )?,
                Err(e) => report.line(2, Status::Fail, &what, chain(&e))?,
            }
            continue;
        }
        match verify_model(&spec) {
            Ok(()) => {
                let detail = format!(
                    "{}: sha256 ok, graph matches model.json, runs on the CPU",
                    spec.id()
                );
                report.line(2, Status::Ok, &what, detail)?;
                cuda_spec.get_or_insert(spec);
            }
            Err(e) => report.line(2, Status::Fail, &what, format!("{e:#}"))?,
        }
    }
    Ok(())
}

/// Checks a link model: checksums, and with ONNX Runtime both graphs on the CPU (one element
/// embedded, one gene predicted).
fn verify_link_model(dir: &std::path::Path, runtime_ok: bool) -> anyhow::Result<String> {
    use cistrack::model::link::{GeneBatch, LinkPredictor, LinkSpec};
    let spec = LinkSpec::load(dir)?;
    spec.verify_checksums()?;
    if !runtime_ok {
        return Ok(format!(
            "{}: sha256 ok (not run: no ONNX Runtime)",
            spec.id()
        ));
    }
    let mut predictor = LinkPredictor::new(
        &spec,
        SessionOptions {
            device: Device::Cpu,
            intra_threads: 1,
        },
    )?;
    let one_hot = ndarray::Array3::<f32>::zeros((1, 4, spec.sequence_length));
    let embedding = predictor.encode_elements(one_hot.view())?;
    anyhow::ensure!(
        embedding.iter().all(|v| v.is_finite()),
        "the encoder returned non-finite values"
    );
    let mut batch = GeneBatch::zeros(1, 1, predictor.embedding_dim());
    batch.candidate_mask[0] = 1.0;
    let (expression, attention) = predictor.predict_genes(&batch)?;
    anyhow::ensure!(
        expression[0].is_finite() && (attention[[0, 0]] - 1.0).abs() < 1e-4,
        "the gene model returned no finite expression or an attention not summing to 1"
    );
    Ok(format!(
        "{}: sha256 ok, both graphs match model.json and run on the CPU",
        spec.id()
    ))
}

/// Loads the model on the CPU (checksum, graph and metadata checks) and runs one window.
fn verify_model(spec: &ModelSpec) -> anyhow::Result<()> {
    let mut predictor = OrtPredictor::new(
        spec,
        SessionOptions {
            device: Device::Cpu,
            intra_threads: 1,
        },
    )?;
    let mut batch = Batch::for_spec(spec, 1);
    let row = batch.push_row(0);
    row.sequence.iter_mut().step_by(4).for_each(|v| *v = 1.0);
    row.modality_mask.fill(1.0);
    let out = predictor.predict(&batch)?;
    anyhow::ensure!(
        out.probability.len() == 1 && out.probability[0].is_finite(),
        "the model returned no finite probability for a test window"
    );
    Ok(())
}
