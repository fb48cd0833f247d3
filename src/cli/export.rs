//! `cistrack export`: track files from the score cache.

use std::path::PathBuf;

use clap::Args;

use cistrack::genome::Build;
use cistrack::model::ModelSpec;
use cistrack::pipeline::cache::{Cache, DiskStore, Stats, DEFAULT_DISK_MIB};
use cistrack::pipeline::engine::{inputs_fingerprint, variant_for};
use cistrack::track::export;
use cistrack::track::links;
use cistrack::track::score::DEFAULT_STRIDE;

use super::GlobalArgs;

/// Write enhancers.bb (called elements) and scores.bw (window scores) for everything cached.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output folder
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    /// Model role [default: the build's default_model]
    #[arg(short, long, value_name = "ROLE")]
    pub model: Option<String>,
    /// Stride of the cached scores, bp
    #[arg(long, default_value_t = DEFAULT_STRIDE, value_name = "BP")]
    pub stride: u64,
    /// Probability at or above which windows merge into elements [default: the model's]
    #[arg(long, value_name = "P")]
    pub threshold: Option<f64>,
    /// Score cache folder [default: the config's cache_dir]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// With --group or --all-groups, each group's files go to a folder of its own under --out
    /// (the group's name, characters other than letters, digits, - and _ as %XX)
    #[command(flatten)]
    pub groups: super::GroupArgs,
}

/// Runs `cistrack export`.
///
/// # Errors
///
/// Config, cache or write errors.
pub fn run(global: &GlobalArgs, args: ExportArgs) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let build = std::sync::Arc::new(Build::open(config.build(global.build.as_deref())?)?);
    let groups = args.groups.builds(&build)?;
    let spec = ModelSpec::load(&build.model_dir(args.model.as_deref())?)?;
    let threshold = args.threshold.unwrap_or(spec.threshold);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(cistrack::track::Error::InvalidThreshold(threshold).into());
    }
    let path = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| config.cache_dir.clone())
        .join(format!("{}.sqlite", build.name()));
    anyhow::ensure!(
        path.exists(),
        "no score cache for build {} at {}: run `cistrack precompute` or `cistrack serve` first",
        build.name(),
        path.display()
    );
    let stats = std::sync::Arc::new(Stats::default());
    let cache = std::sync::Arc::new(Cache::new(
        16,
        Some(DiskStore::open(
            &path,
            DEFAULT_DISK_MIB * 1024 * 1024,
            stats.clone(),
        )?),
        stats,
    ));
    for (group, group_build) in groups {
        let out = match &group {
            Some(g) => args.out.join(cistrack::io::fragments::group_dir_name(g)),
            None => args.out.clone(),
        };
        let variant = variant_for(&group_build, &spec, args.stride);
        let exported =
            export::export(&group_build, &cache, &variant, args.stride, threshold, &out)?;
        let of_group = group
            .map(|g| format!(" of cell group {g}"))
            .unwrap_or_default();
        tracing::info!(
            "wrote {} ({} elements) and {} ({} windows){of_group} from cache {}",
            exported.enhancers.display(),
            exported.elements,
            exported.scores.display(),
            exported.windows,
            variant
        );
        if exported.windows == 0 {
            tracing::warn!(
                "the cache holds no scores{of_group} for {variant}: the files are valid but empty"
            );
        }
    }
    if build.config().models.contains_key(links::LINK_ROLE) {
        // links read no cell group: once, beside the groups' folders
        let engine = links::open(
            build.clone(),
            cache.clone(),
            &inputs_fingerprint(&build),
            global.device,
            global.threads(),
            true,
        )?;
        let links = export::export_links(&build, &engine, &args.out)?;
        tracing::info!(
            "wrote {} ({} genes, {} links) from cache {}",
            links.path.display(),
            links.genes,
            links.links,
            engine.namespace()
        );
    }
    Ok(())
}
