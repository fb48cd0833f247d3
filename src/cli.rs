//! Command-line interface: global options and the subcommands.

pub mod annotate;
pub mod cache;
pub mod doctor;
pub mod export;
pub mod links;
pub mod models;
pub mod precompute;
pub mod score;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgAction, Args, Parser, Subcommand};

use cistrack::config::Config;
use cistrack::model::Device;

/// cistrack: enhancer scores from DNA, H3K27ac and accessibility, computed by deep-learning
/// models on demand.
#[derive(Debug, Parser)]
#[command(
    name = "cistrack",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Builds config (TOML), e.g. examples/hg38.toml
    #[arg(long, global = true, env = "CISTRACK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Genome build from the config [default: the config's only build]
    #[arg(long, global = true, env = "CISTRACK_BUILD", value_name = "NAME")]
    pub build: Option<String>,
    /// Where models run: auto = CUDA when its execution provider loads, else CPU
    #[arg(long, global = true, env = "CISTRACK_DEVICE", value_enum, default_value_t = Device::Auto)]
    pub device: Device,
    /// ONNX Runtime threads [default: all cores]
    #[arg(long, global = true, env = "CISTRACK_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// Model workers, one ONNX Runtime session each [default: 1 on the CPU, 4 with CUDA]
    #[arg(long, global = true, env = "CISTRACK_WORKERS", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub workers: Option<u64>,
    /// More log output on stderr (-v: debug, -vv: trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl GlobalArgs {
    /// Loads the config named by `--config`/`CISTRACK_CONFIG`.
    ///
    /// # Errors
    ///
    /// When none is given or it cannot be read.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let path = self.config.as_ref().context("no builds config: pass --config FILE or set CISTRACK_CONFIG (examples/hg38.toml is one)")?;
        Ok(Config::load(path)?)
    }

    /// Model workers asked for (`None`: the device's default).
    pub fn workers(&self) -> Option<usize> {
        self.workers.map(|n| n as usize)
    }

    /// ONNX Runtime threads to use.
    pub fn threads(&self) -> usize {
        self.threads
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score a region: enhancer elements as BED or bigBed, optionally window scores
    Score(score::ScoreArgs),
    /// Annotate VCF or BED records (stdin or a file) with enhancer scores, in input order
    Annotate(annotate::AnnotateArgs),
    /// Enhancer-gene links of a region or of named genes as TSV (scores and E2G features),
    /// BEDPE or bigInteract
    Links(links::LinksArgs),
    /// Run the HTTP daemon that genome browsers ask for the visible window
    Serve(serve::ServeArgs),
    /// Fill a build's score cache ahead of time
    Precompute(precompute::PrecomputeArgs),
    /// Write track files (bigBed, bigWig) from the score cache
    Export(export::ExportArgs),
    /// Inspect or clear the score caches
    Cache(cache::CacheArgs),
    /// Check the installation: ONNX Runtime, CUDA, configured builds and models
    Doctor(doctor::DoctorArgs),
    /// List the models in a models folder and verify their checksums
    Models(models::ModelsArgs),
}

/// Parses a count or a duration that must be at least 1 (0 is refused naming the option,
/// instead of being raised silently).
pub(crate) fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(
    text: &str,
) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err("not a whole number".into()),
    }
}

/// A progress bar on stderr counting `len` `unit` (drawn only when stderr is a terminal).
pub(crate) fn progress_bar(len: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {{pos}}/{{len}} {unit} [{{elapsed_precise}}] {{per_sec}} ETA {{eta}}"
        ))
        .expect("a valid template"),
    );
    bar
}

/// Sets up logging to stderr.
pub fn init_logging(global: &GlobalArgs) {
    let level = if global.quiet {
        "warn"
    } else {
        match global.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("cistrack={level},ort=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .compact()
        // no colour codes in log files and pipes (set after compact(), which resets it)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Runs the chosen subcommand.
///
/// # Errors
///
/// The subcommand's error, with context.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Score(args) => score::run(&cli.global, args).map(|()| ExitCode::SUCCESS),
        Command::Annotate(args) => annotate::run(&cli.global, args).map(|()| ExitCode::SUCCESS),
        Command::Links(args) => links::run(&cli.global, args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(&cli.global, args).map(|()| ExitCode::SUCCESS),
        Command::Precompute(args) => precompute::run(&cli.global, args).map(|()| ExitCode::SUCCESS),
        Command::Export(args) => export::run(&cli.global, args).map(|()| ExitCode::SUCCESS),
        Command::Cache(args) => cache::run(&cli.global, args).map(|()| ExitCode::SUCCESS),
        Command::Doctor(args) => doctor::run(&cli.global, args),
        Command::Models(args) => models::run(&cli.global, args).map(|()| ExitCode::SUCCESS),
    }
}

/// The score-cache flags of `score` and `annotate`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Score cache folder, shared with `cistrack serve` (one SQLite file per build)
    /// [default: the config's cache_dir]
    #[arg(
        long,
        env = "CISTRACK_CACHE_DIR",
        value_name = "DIR",
        conflicts_with = "no_cache"
    )]
    pub cache_dir: Option<PathBuf>,
    /// Compute every window: neither read nor write the score cache
    #[arg(long)]
    pub no_cache: bool,
    /// On-disk cache limit per build, MiB (least recently used entries are evicted)
    #[arg(long, default_value_t = cistrack::pipeline::cache::DEFAULT_DISK_MIB, value_name = "MIB")]
    pub disk_cache: u64,
}

impl CacheArgs {
    /// Where the cache lives, or `None` with `--no-cache`.
    pub fn settings(&self, config: &Config) -> Option<cistrack::pipeline::cache::CacheSettings> {
        (!self.no_cache).then(|| cistrack::pipeline::cache::CacheSettings {
            dir: self
                .cache_dir
                .clone()
                .unwrap_or_else(|| config.cache_dir.clone()),
            max_bytes: self.disk_cache.saturating_mul(1024 * 1024),
            shared: config.redis.clone(),
        })
    }
}

/// The cell-group flags of `precompute` and `export`, for a build whose accessibility is a
/// scATAC fragments file.
#[derive(Debug, Args)]
pub struct GroupArgs {
    /// Cell group of the build's fragments file to compute for, instead of the build's own
    /// (repeat, or separate with commas, for several)
    #[arg(
        long,
        value_name = "NAME",
        value_delimiter = ',',
        conflicts_with = "all_groups"
    )]
    pub group: Vec<String>,
    /// Every cell group of the build's fragments file, one after another
    #[arg(long)]
    pub all_groups: bool,
}

impl GroupArgs {
    /// The builds to compute for: the build itself without flags, else the build read for
    /// each group asked (name and build).
    ///
    /// # Errors
    ///
    /// A build without fragments, or a group its table lacks (naming the groups).
    pub fn builds(
        &self,
        build: &std::sync::Arc<cistrack::genome::Build>,
    ) -> anyhow::Result<Vec<(Option<String>, std::sync::Arc<cistrack::genome::Build>)>> {
        let names: Vec<String> = if self.all_groups {
            build
                .cell_groups()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--all-groups: build {} reads no scATAC fragments: it has no cell groups",
                        build.name()
                    )
                })?
                .to_vec()
        } else {
            self.group.clone()
        };
        if names.is_empty() {
            return Ok(vec![(None, build.clone())]);
        }
        names
            .into_iter()
            .map(|name| {
                let b = build
                    .with_group(&name)
                    .map_err(|e| anyhow::anyhow!("--group {name}: {e}"))?;
                Ok((Some(name), std::sync::Arc::new(b)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn test_cli_debug_assert() {
        Cli::command().debug_assert();
    }

    #[test]
    fn test_workers_is_global_and_positive() {
        let cli = Cli::try_parse_from(["cistrack", "serve", "--workers", "2"]).unwrap();
        assert_eq!(cli.global.workers(), Some(2));
        let cli = Cli::try_parse_from([
            "cistrack",
            "--workers",
            "3",
            "score",
            "--region",
            "chr1:1-10",
        ])
        .unwrap();
        assert_eq!(cli.global.workers(), Some(3));
        let cli = Cli::try_parse_from(["cistrack", "score", "--region", "chr1:1-10"]).unwrap();
        assert_eq!(cli.global.workers(), None, "the device picks");
        assert!(Cli::try_parse_from(["cistrack", "serve", "--workers", "0"]).is_err());
    }

    #[test]
    fn test_try_parse_from() {
        let cli = Cli::try_parse_from([
            "cistrack",
            "score",
            "--region",
            "chr1:1-10",
            "--build",
            "b",
            "--device",
            "cpu",
            "-o",
            "x.bb",
        ])
        .unwrap();
        assert_eq!(cli.global.build.as_deref(), Some("b"));
        assert_eq!(cli.global.device, Device::Cpu);
        let Command::Score(args) = cli.command else {
            panic!("expected score")
        };
        assert_eq!(args.stride, cistrack::track::score::DEFAULT_STRIDE);
        assert!(
            Cli::try_parse_from(["cistrack", "score"]).is_err(),
            "--region is required"
        );
        assert!(Cli::try_parse_from(["cistrack", "--device", "tpu", "doctor"]).is_err());
        assert!(
            Cli::try_parse_from(["cistrack", "score", "--region", "r", "--stride", "-5"]).is_err()
        );
        assert!(Cli::try_parse_from(["cistrack", "doctor", "-q", "-v"]).is_err());
    }
}
