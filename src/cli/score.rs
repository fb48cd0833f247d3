//! `cistrack score`: enhancer scores for one region.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use cistrack::genome::{Build, Region};
use cistrack::model::ModelSpec;
use cistrack::pipeline::background::{self, Background};
use cistrack::track::output::{self, Format, WindowValue};
use cistrack::track::score::{self, ScoreOptions, DEFAULT_STRIDE};

use super::GlobalArgs;

/// Score a region.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cistrack score --config examples/hg38.toml --region chr22:17,200,001-17,800,000 -o enhancers.bb
  cistrack score --config examples/hg38.toml --region chr22:17400001-17460000 --windows scores.bedGraph > elements.bed")]
pub struct ScoreArgs {
    /// Region to score, chr:start-end (1-based, inclusive; commas allowed); contig aliases work
    #[arg(short, long, value_name = "REGION")]
    pub region: String,
    /// Distance between window centres, in bp; each window's score covers this many bases
    #[arg(long, default_value_t = DEFAULT_STRIDE, value_name = "BP")]
    pub stride: u64,
    /// Model role from the build's [models] table [default: the build's default_model]
    #[arg(short, long, value_name = "ROLE")]
    pub model: Option<String>,
    /// Probability at or above which windows are merged into elements [default: the model's]
    #[arg(long, value_name = "P")]
    pub threshold: Option<f64>,
    /// Called elements: BED text, or bigBed when the name ends in .bb/.bigBed; - is stdout.
    /// Repeat to write several files from one run
    #[arg(short, long, default_value = "-", value_name = "FILE")]
    pub output: Vec<String>,
    /// Also write every window's probability: bedGraph, or bigWig when the name ends in .bw.
    /// Repeat to write several files
    #[arg(long, value_name = "FILE")]
    pub windows: Vec<String>,
    /// Also write every window's percentile (0-100) against the build's background (computed
    /// once by `cistrack precompute --background`): bedGraph, or bigWig when the name ends in
    /// .bw. Repeat to write several files
    #[arg(long, value_name = "FILE")]
    pub percentiles: Vec<String>,
    /// Windows per model call [default: 4 on the CPU, 128 with CUDA]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    #[command(flatten)]
    pub cache: super::CacheArgs,
}

/// Runs `cistrack score`.
///
/// # Errors
///
/// Any input, model or output error, with the file or parameter it concerns.
pub fn run(global: &GlobalArgs, args: ScoreArgs) -> anyhow::Result<()> {
    if let Some(t) = args.threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(cistrack::track::Error::InvalidThreshold(t).into());
        }
    }
    let stdout_targets = args
        .output
        .iter()
        .chain(&args.windows)
        .chain(&args.percentiles)
        .filter(|t| *t == "-")
        .count();
    if stdout_targets > 1 {
        anyhow::bail!(
            "only one of the -o/--windows/--percentiles outputs can be stdout (-); give the others a file name"
        );
    }
    let config = global.load_config()?;
    let build_config = config.build(global.build.as_deref())?;
    let build = Arc::new(
        Build::open(build_config)
            .with_context(|| format!("cannot open build {}", build_config.name))?,
    );
    let region: Region = args.region.parse()?;
    let region = build.contigs().check(&region)?;
    let model_dir = build.model_dir(args.model.as_deref())?;
    let spec = Arc::new(ModelSpec::load(&model_dir)?);
    for m in build.masked_modalities() {
        tracing::warn!("build {} has no {m} track: the model scores with {m} masked, which it was trained to handle but which weakens its scores", build.name());
    }
    let options = ScoreOptions {
        stride: args.stride,
        batch_size: args.batch_size,
        workers: global.workers(),
        threads: global.threads(),
        device: global.device,
        progress: !global.quiet,
        cache: args.cache.settings(&config),
    };
    let result = score::score_region(&build, &spec, &region, &options)?;
    let threshold = args.threshold.unwrap_or(spec.threshold);
    let background = result.background.as_deref();
    if background.is_none() && !args.percentiles.is_empty() {
        anyhow::bail!(
            "--percentiles: the cache {} holds no background for {} on build {} at stride {}; compute it once with `cistrack precompute --background{}` (the scores of this run are cached, so running this again after it is quick)",
            options.cache.as_ref().map_or("(memory only)".to_string(), |c| c.path(build.name()).display().to_string()),
            spec.id(),
            build.name(),
            args.stride,
            if args.stride == DEFAULT_STRIDE { String::new() } else { format!(" --stride {}", args.stride) },
        );
    }
    let elements = score::call_elements(region.name(), &result.windows, threshold);

    let header = vec![
        format!(
            "cistrack {} score build={} model={} sha256={} region={} stride={} threshold={} device={}",
            env!("CARGO_PKG_VERSION"),
            build.name(),
            spec.id(),
            spec.sha256,
            region,
            args.stride,
            threshold,
            result.device
        ),
        format!(
            "masked_modalities={} windows={} scored={} skipped_all_n={} percentile_background={}",
            if result.masked.is_empty() { "none".into() } else { result.masked.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(",") },
            result.window_count,
            result.windows.len(),
            result.skipped_windows(),
            background::describe(background),
        ),
    ];
    for target in &args.output {
        write_elements(target, &build, &header, &elements, background)?;
    }
    for target in &args.windows {
        write_windows(
            target,
            &build,
            &region,
            &result.windows,
            WindowValue::Probability,
        )?;
    }
    if let Some(b) = background {
        for target in &args.percentiles {
            write_windows(
                target,
                &build,
                &region,
                &result.windows,
                WindowValue::Percentile(b),
            )?;
        }
    }

    let seconds = result.elapsed.as_secs_f64();
    tracing::info!(
        "scored {} of {} windows in {:.1} s ({:.0} windows/s, {}); {} enhancer elements at p >= {threshold}",
        result.windows.len(),
        result.window_count,
        seconds,
        result.windows.len() as f64 / seconds.max(1e-9),
        result.device,
        elements.len()
    );
    if !result.skipped.is_empty() {
        let shown: Vec<String> = result
            .skipped
            .iter()
            .take(5)
            .map(ToString::to_string)
            .collect();
        tracing::info!(
            "skipped {} windows with no A/C/G/T base (all N) at {}{}",
            result.skipped_windows(),
            shown.join(", "),
            if result.skipped.len() > 5 {
                format!(" and {} more", result.skipped.len() - 5)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// Opens a text output target: stdout for `-`, else a new file.
fn text_target(target: &str) -> anyhow::Result<Box<dyn Write>> {
    Ok(if target == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        let file =
            std::fs::File::create(target).with_context(|| format!("cannot create {target}"))?;
        Box::new(std::io::BufWriter::new(file))
    })
}

fn target_name(target: &str) -> &str {
    if target == "-" {
        "stdout"
    } else {
        target
    }
}

fn write_elements(
    target: &str,
    build: &Build,
    header: &[String],
    elements: &[score::Element],
    background: Option<&Background>,
) -> anyhow::Result<()> {
    match output::format_of(target) {
        Format::Text => output::write_elements_bed(
            &mut *text_target(target)?,
            target_name(target),
            header,
            elements,
            background,
        )?,
        Format::Binary => {
            output::write_elements_bigbed(Path::new(target), build.contigs(), elements, background)?
        }
    }
    Ok(())
}

fn write_windows(
    target: &str,
    build: &Build,
    region: &Region,
    windows: &[score::WindowScore],
    value: WindowValue,
) -> anyhow::Result<()> {
    match output::format_of(target) {
        Format::Text => output::write_windows_bedgraph(
            &mut *text_target(target)?,
            target_name(target),
            region.name(),
            windows,
            value,
        )?,
        Format::Binary => output::write_windows_bigwig(
            Path::new(target),
            build.contigs(),
            &[(region.name().to_string(), windows.to_vec())],
            value,
        )?,
    }
    Ok(())
}
