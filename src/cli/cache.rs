//! `cistrack cache stats|clear`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use cistrack::pipeline::cache::{DiskStore, Stats, DEFAULT_DISK_MIB};

use super::GlobalArgs;

/// Inspect or clear the score caches.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: CacheAction,
    /// Score cache folder [default: the config's cache_dir]
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
}

/// Cache actions.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Tiles and bytes per build, model and stride
    Stats,
    /// Delete cached scores (of --build only, when given)
    Clear,
}

/// Runs `cistrack cache`.
///
/// # Errors
///
/// Config or cache errors.
pub fn run(global: &GlobalArgs, args: CacheArgs) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| config.cache_dir.clone());
    let builds: Vec<String> = match &global.build {
        Some(b) => vec![config.build(Some(b))?.name.clone()],
        None => config.builds.keys().cloned().collect(),
    };
    let mut out = std::io::stdout().lock();
    for build in builds {
        let path = dir.join(format!("{build}.sqlite"));
        if !path.exists() {
            writeln!(out, "{build}: no cache at {}", path.display())?;
            continue;
        }
        let store = DiskStore::open(
            &path,
            DEFAULT_DISK_MIB * 1024 * 1024,
            std::sync::Arc::new(Stats::default()),
        )?;
        match args.action {
            CacheAction::Stats => {
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                writeln!(out, "{build}: {} ({size} bytes on disk)", path.display())?;
                let stats = store.stats()?;
                if stats.is_empty() {
                    writeln!(out, "  empty")?;
                }
                for v in stats {
                    writeln!(
                        out,
                        "  {:<70} {:>8} tiles {:>12} bytes",
                        v.variant, v.tiles, v.bytes
                    )?;
                }
            }
            CacheAction::Clear => {
                store.clear(None);
                writeln!(out, "{build}: cleared {}", path.display())?;
            }
        }
    }
    Ok(())
}
