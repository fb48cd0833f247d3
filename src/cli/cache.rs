//! `cistrack cache stats|check|clear`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use cistrack::error::chain;
use cistrack::pipeline::cache::check::{self, CheckReport};
use cistrack::pipeline::cache::{DiskStore, SharedStore, Stats, DEFAULT_DISK_MIB};

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
    /// Tiles and bytes per build, model and stride (reads only; never changes the files), and
    /// the build's entries in Redis when the config names a shared tier
    Stats,
    /// Check every cache file: SQLite's integrity check, every entry's checksum (which covers
    /// its key) and that tiles and window scores parse. Exits 1 when anything is damaged
    Check {
        /// Delete the damaged entries (a file SQLite cannot trust is moved aside to
        /// <file>.corrupt-<time>; the next run starts an empty cache)
        #[arg(long)]
        repair: bool,
    },
    /// Delete cached scores (of --build only, when given), in Redis too when the config names
    /// a shared tier
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
    let mut failed: Vec<String> = Vec::new();
    for build in builds {
        if let Some(settings) = &config.redis {
            let shared = SharedStore::open(settings, &build, std::sync::Arc::default())?;
            let url = shared.url();
            // Redis checks its own data, and every value read is checked against its key.
            let done = match args.action {
                CacheAction::Stats => shared.count().map(|n| format!("{n} entries")),
                CacheAction::Clear => shared.clear(None).map(|n| format!("cleared {n} entries")),
                CacheAction::Check { .. } => Some("not checked (Redis checks its own data; every value read is checked against its key)".into()),
            };
            match done {
                Some(what) => writeln!(out, "{build}: Redis {url}: {what}")?,
                None => failed.push(format!("{build}: Redis {url} cannot be reached")),
            }
        }
        let path = dir.join(format!("{build}.sqlite"));
        if !path.exists() {
            writeln!(out, "{build}: no cache at {}", path.display())?;
            continue;
        }
        match args.action {
            CacheAction::Stats => match check::stats(&path) {
                Ok(stats) => {
                    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    writeln!(out, "{build}: {} ({size} bytes on disk)", path.display())?;
                    if stats.is_empty() {
                        writeln!(out, "  empty")?;
                    }
                    for v in stats {
                        writeln!(
                            out,
                            "  {:<70} {:>8} entries {:>12} bytes",
                            v.variant, v.tiles, v.bytes
                        )?;
                    }
                }
                Err(e) => {
                    writeln!(
                        out,
                        "{build}: {} cannot be read: {}",
                        path.display(),
                        chain(&e)
                    )?;
                    failed.push(format!(
                        "{build}: unreadable cache (run `cistrack cache check --repair`)"
                    ));
                }
            },
            CacheAction::Check { repair } => {
                let report = check::check(&path, repair)?;
                write_report(&mut out, &build, &path, &report)?;
                if report.damaged() && !report.repaired() {
                    failed.push(format!(
                        "{build}: damaged cache{}",
                        if repair {
                            ""
                        } else {
                            " (cistrack cache check --repair deletes what is damaged)"
                        }
                    ));
                }
            }
            CacheAction::Clear => {
                let store = DiskStore::open(
                    &path,
                    DEFAULT_DISK_MIB * 1024 * 1024,
                    std::sync::Arc::new(Stats::default()),
                )?;
                store.clear(None);
                writeln!(out, "{build}: cleared {}", path.display())?;
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// Prints what `cache check` found in one file (at most 10 keys per kind of damage).
fn write_report(
    out: &mut dyn Write,
    build: &str,
    path: &std::path::Path,
    r: &CheckReport,
) -> std::io::Result<()> {
    if !r.damaged() {
        return writeln!(
            out,
            "{build}: {} ok ({} entries)",
            path.display(),
            r.entries
        );
    }
    writeln!(out, "{build}: {} DAMAGED", path.display())?;
    for line in &r.integrity {
        writeln!(out, "  integrity: {line}")?;
    }
    if let Some(v) = r.other_format {
        writeln!(out, "  file format {v}, not this version's (the daemon drops older entries when it opens the file)")?;
    }
    for (what, keys) in [
        (
            "checksum fails (damaged, or under another key)",
            &r.bad_checksum,
        ),
        ("value does not parse", &r.unreadable),
    ] {
        if keys.is_empty() {
            continue;
        }
        writeln!(out, "  {} of {} entries: {what}", keys.len(), r.entries)?;
        for k in keys.iter().take(10) {
            writeln!(out, "    {k}")?;
        }
        if keys.len() > 10 {
            writeln!(out, "    ... and {} more", keys.len() - 10)?;
        }
    }
    if r.deleted > 0 {
        writeln!(
            out,
            "  repaired: {} entries deleted (they will be recomputed)",
            r.deleted
        )?;
    }
    if let Some(aside) = &r.moved_to {
        writeln!(
            out,
            "  repaired: moved to {} (the next run starts an empty cache)",
            aside.display()
        )?;
    }
    Ok(())
}
