//! `cistrack precompute`: fill a build's score cache ahead of time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use cistrack::genome::genes::read_intervals;
use cistrack::genome::{Build, Region};
use cistrack::model::ModelSpec;
use cistrack::pipeline::background::{self, Background};
use cistrack::pipeline::cache::{Cache, DiskStore, Stats, DEFAULT_DISK_MIB, TILE_WINDOWS};
use cistrack::pipeline::engine::{inputs_fingerprint, ort_predictors, Engine, EngineOptions};
use cistrack::pipeline::pool::PredictorPool;
use cistrack::pipeline::regions::for_each_piece;
use cistrack::track::links;
use cistrack::track::score::DEFAULT_STRIDE;

use super::{at_least_one, GlobalArgs};

/// Score regions into the build's cache so that `cistrack serve` answers them at once.
#[derive(Debug, Args)]
pub struct PrecomputeArgs {
    /// Regions to score densely (BED, plain or gzip) [default: the build's candidate elements]
    #[arg(long, value_name = "BED", conflicts_with = "all")]
    pub regions: Option<PathBuf>,
    /// Score every contig end to end (windows over N are skipped quickly)
    #[arg(long)]
    pub all: bool,
    /// Model role [default: the build's default_model]
    #[arg(short, long, value_name = "ROLE")]
    pub model: Option<String>,
    /// Distance between window centres, bp (must match `cistrack serve --stride`)
    #[arg(long, default_value_t = DEFAULT_STRIDE, value_name = "BP")]
    pub stride: u64,
    /// Score cache folder [default: the config's cache_dir]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// On-disk cache limit, MiB
    #[arg(long, default_value_t = DEFAULT_DISK_MIB, value_name = "MIB")]
    pub disk_cache: u64,
    /// Also compute enhancer-gene links for the genes whose TSS or candidates fall in the
    /// regions (needs the build's link model)
    #[arg(long)]
    pub links: bool,
    /// Score windows drawn at random from the whole build and keep their probabilities as the
    /// model's background, so that `serve`, `score` and `export` report percentiles. Alone it
    /// scores only the background; with --regions, --all or --links those run too
    #[arg(long)]
    pub background: bool,
    /// Windows the background scores (drawn in blocks of 16 adjacent windows over all contigs)
    #[arg(long, default_value_t = background::DEFAULT_WINDOWS as u64, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub background_windows: u64,
    /// Annotate random single-base substitutions across the build (one per block of the
    /// background's draw) and keep their |delta| as the model's variant background, so that
    /// `annotate` reports each allele's delta_percentile. Alone it computes only that
    #[arg(long)]
    pub variant_background: bool,
    /// Substitutions the variant background draws
    #[arg(long, default_value_t = cistrack::annotate::variant_background::DEFAULT_SNVS as u64, value_name = "N", value_parser = at_least_one::<u64>)]
    pub variant_background_snvs: u64,
    /// Score only shard I of N (0-based), for a job array: the regions are cut at cache-tile
    /// boundaries and tile k goes to shard k mod N, so N jobs together score every window
    /// exactly once and never write the same tile
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    #[command(flatten)]
    pub groups: super::GroupArgs,
}

/// `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This job's shard, 0-based.
    pub index: u64,
    /// Shards in all.
    pub count: u64,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let bad =
        || format!("{text:?} is not I/N with 0 <= I < N (e.g. 0/4 for the first of four jobs)");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (index, count) = (
        i.trim().parse::<u64>().map_err(|_| bad())?,
        n.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// The parts of `regions` (0-based half-open, one contig each) that `shard` scores: each is cut
/// at multiples of `tile_bp` (one cache tile of window cores) and piece `k` (the `k`-th tile of
/// its contig) is kept when `k mod count == index`.
fn shard_pieces(
    regions: Vec<(String, u64, u64)>,
    tile_bp: u64,
    shard: Shard,
) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for (contig, start, end) in regions {
        let mut k = start / tile_bp;
        while k * tile_bp < end {
            let (s, e) = ((k * tile_bp).max(start), ((k + 1) * tile_bp).min(end));
            if k % shard.count == shard.index && s < e {
                out.push((contig.clone(), s, e));
            }
            k += 1;
        }
    }
    out
}

/// Runs `cistrack precompute`.
///
/// # Errors
///
/// Config, input, model or cache errors.
pub fn run(global: &GlobalArgs, args: PrecomputeArgs) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let build_config = config.build(global.build.as_deref())?;
    let build = Arc::new(Build::open(build_config)?);
    let spec = Arc::new(ModelSpec::load(&build.model_dir(args.model.as_deref())?)?);
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| config.cache_dir.clone());
    let path = cache_dir.join(format!("{}.sqlite", build.name()));
    let stats = Arc::new(Stats::default());
    let disk = DiskStore::open(&path, args.disk_cache * 1024 * 1024, stats.clone())?;
    let cache = Arc::new(
        Cache::new(64, Some(disk), stats).with_shared(config.redis.as_ref(), build.name())?,
    );
    let regions_too = !(args.background || args.variant_background)
        || args.regions.is_some()
        || args.all
        || args.links;
    let groups = args.groups.builds(&build)?;
    anyhow::ensure!(
        !(args.variant_background && groups[0].0.is_some()),
        "--variant-background is computed for the build's own cell group (what `annotate` reads); leave out --group/--all-groups"
    );
    let mut link_regions = None;
    let mut sessions = None; // loaded once, lent to every group's engine
    for (group, group_build) in groups {
        if let Some(group) = &group {
            tracing::info!(build = build.name(), group, "cell group");
        }
        let options = EngineOptions::command(
            &group_build,
            args.stride,
            global.device,
            global.workers(),
            global.threads(),
            None,
        );
        let pool = match &sessions {
            Some(pool) => Arc::clone(pool),
            None => {
                let (predictors, device) = ort_predictors(&spec, &options)?;
                sessions
                    .insert(PredictorPool::new(predictors, device))
                    .clone()
            }
        };
        let engine = Arc::new(Engine::with_predictors(
            group_build.clone(),
            spec.clone(),
            cache.clone(),
            &options,
            pool.handles(),
            pool.device(),
        )?);
        if regions_too {
            link_regions = Some(precompute_regions(&args, &engine, &path)?);
        }
        if args.background {
            precompute_background(&engine, args.background_windows as usize)?;
        }
    }
    if let Some(regions) = link_regions.filter(|_| args.links) {
        // links read no cell group: computed once, with the build's own reading
        precompute_links(global, &build, &cache, &regions)?;
    }
    if args.variant_background {
        precompute_variant_background(global, &args, &build, &spec, &cache, &cache_dir)?;
    }
    cache.flush();
    Ok(())
}

/// Scores the regions (`--regions`, `--all` or the build's candidates); returns them (merged,
/// this shard's pieces) for the links.
fn precompute_regions(
    args: &PrecomputeArgs,
    engine: &Arc<Engine>,
    path: &std::path::Path,
) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let build = engine.build();
    let build_config = build.config();
    let spec = engine.spec();
    // regions: merged, per contig, in FASTA order
    let mut intervals: Vec<(String, u64, u64)> = if args.all {
        build
            .contigs()
            .iter()
            .map(|c| (c.name.clone(), 0, c.length))
            .collect()
    } else {
        let bed = match (&args.regions, &build_config.candidates) {
            (Some(p), _) => p.clone(),
            (None, Some(p)) => p.clone(),
            (None, None) => anyhow::bail!(
                "build {} has no candidate elements: give --regions BED or --all",
                build.name()
            ),
        };
        let mut out = Vec::new();
        for iv in read_intervals(&bed)? {
            let Some(c) = build.contigs().resolve(&iv.contig) else {
                continue;
            };
            out.push((
                c.name.clone(),
                iv.start0.min(c.length),
                iv.end0.min(c.length),
            ));
        }
        out
    };
    let order: std::collections::HashMap<String, usize> = build
        .contigs()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    intervals.retain(|(_, s, e)| s < e);
    intervals.sort_by_key(|(c, s, _)| (order[c], *s));
    let mut merged: Vec<(String, u64, u64)> = Vec::new();
    for (c, s, e) in intervals {
        match merged.last_mut() {
            Some(last) if last.0 == c && s <= last.2 => last.2 = last.2.max(e),
            _ => merged.push((c, s, e)),
        }
    }
    if let Some(shard) = args.shard {
        merged = shard_pieces(merged, TILE_WINDOWS as u64 * args.stride, shard);
        tracing::info!(
            "shard {}/{}: {} pieces of whole cache tiles",
            shard.index,
            shard.count,
            merged.len()
        );
    }
    // with --shard, each job's links are those of its pieces (a gene near a piece boundary may
    // be computed by two jobs; its links are the same)
    let regions = merged
        .iter()
        .map(|(c, s, e)| Region::new(c, *s, *e))
        .collect::<Result<Vec<_>, _>>()?;
    let total: u64 = regions
        .iter()
        .map(|r| r.end0().div_ceil(args.stride) - r.start0() / args.stride)
        .sum();
    tracing::info!(build = build.name(), model = %spec.id(), regions = regions.len(), windows = total, cache = %path.display(), device = %engine.device(), "precomputing");
    let bar = super::progress_bar(total, "windows");
    let started = Instant::now();
    let (mut scored, mut cached) = (0usize, 0usize);
    for_each_piece(engine, &regions, |region, _, view| {
        scored += view.windows.len();
        cached += view.cached;
        bar.inc(view.needed as u64);
        tracing::trace!(region = %regions[region], windows = view.windows.len(), "piece done");
    })
    .context("precompute")?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        "precomputed {total} windows in {seconds:.1} s: {scored} scored windows in the cache ({cached} were already there, {} newly scored, {} all-N skipped); {:.0} windows/s",
        engine.stats().windows_scored.load(std::sync::atomic::Ordering::Relaxed),
        engine.stats().windows_skipped.load(std::sync::atomic::Ordering::Relaxed),
        total as f64 / seconds.max(1e-9)
    );
    Ok(merged)
}

/// Scores the model's genome-wide background into the cache (see
/// [`cistrack::pipeline::background`]), unless the cache already holds one as large.
fn precompute_background(engine: &Arc<Engine>, target: usize) -> anyhow::Result<()> {
    let build = engine.build().name().to_string();
    if let Some(b) = Background::load(engine.cache(), engine.variant()) {
        let every_block = b.blocks == background::block_count(engine.build(), engine.stride());
        if b.len() >= target || every_block {
            tracing::info!(
                "the background of {} on {build} is already in the cache ({} windows{}); nothing to do",
                engine.spec().id(),
                b.len(),
                if every_block { ", every window of the build" } else { "" }
            );
            return Ok(());
        }
    }
    tracing::info!(build, model = %engine.spec().id(), windows = target, stride = engine.stride(), "scoring the background: windows drawn at random over every contig");
    let bar = super::progress_bar(target as u64, "background windows");
    let started = Instant::now();
    let computed = background::compute(engine, target, |n| bar.set_position(n as u64))
        .context("precompute --background")?;
    bar.finish_and_clear();
    anyhow::ensure!(
        !computed.is_empty(),
        "precompute --background: none of the {} windows drawn on build {build} holds an A/C/G/T base",
        computed.windows_drawn
    );
    if !computed.contigs_without_signal.is_empty() {
        let names = &computed.contigs_without_signal;
        tracing::info!(
            "{} contigs left out of the background because a signal track lacks them: {}{}",
            names.len(),
            names.iter().take(8).cloned().collect::<Vec<_>>().join(", "),
            if names.len() > 8 { ", ..." } else { "" }
        );
    }
    if computed.len() < background::FEW_WINDOWS {
        tracing::warn!(
            "the build has only {} scorable windows: percentiles from so few are coarse",
            computed.len()
        );
    }
    let quantiles = [50.0, 90.0, 99.0, 99.9].map(|q| computed.quantile(q).unwrap_or(f32::NAN));
    tracing::info!(
        "background of {} on {build}: {} windows scored of {} drawn in {} blocks, in {:.1} s; probability at the 50th/90th/99th/99.9th percentile {:.4}/{:.4}/{:.4}/{:.4}",
        engine.spec().id(),
        computed.len(),
        computed.windows_drawn,
        computed.blocks,
        started.elapsed().as_secs_f64(),
        quantiles[0],
        quantiles[1],
        quantiles[2],
        quantiles[3],
    );
    computed.store(engine.cache());
    Ok(())
}

/// Computes the links of every gene within reach of `regions` into the cache.
fn precompute_links(
    global: &GlobalArgs,
    build: &Arc<Build>,
    cache: &Arc<Cache>,
    regions: &[(String, u64, u64)],
) -> anyhow::Result<()> {
    anyhow::ensure!(
        build.config().models.contains_key(links::LINK_ROLE),
        "--links: build {} has no link model (models.{} in its config)",
        build.name(),
        links::LINK_ROLE
    );
    let engine = links::open(
        build.clone(),
        cache.clone(),
        &inputs_fingerprint(build),
        global.device,
        global.threads(),
        true,
    )?;
    let total: usize = regions
        .iter()
        .map(|(c, s, e)| engine.genes_in_reach(c, *s, *e))
        .sum();
    let bar = super::progress_bar(total as u64, "genes in reach");
    let started = Instant::now();
    let mut computed = 0;
    for (name, s, e) in regions {
        let contig = build
            .contigs()
            .resolve(name)
            .expect("regions are resolved contigs")
            .clone();
        let view = engine
            .view(&contig, *s, *e, None, || true)
            .with_context(|| format!("links of {name}:{s}-{e}"))?;
        computed += view.computed;
        bar.inc(engine.genes_in_reach(name, *s, *e) as u64);
    }
    bar.finish_and_clear();
    tracing::info!(
        "links: {total} genes in reach, {computed} computed ({} were cached) in {:.1} s with {}",
        total - computed.min(total),
        started.elapsed().as_secs_f64(),
        engine.model_name()
    );
    Ok(())
}

/// `precompute --variant-background`: draws substitutions, annotates them with the model and
/// keeps their |delta| in the cache.
fn precompute_variant_background(
    global: &GlobalArgs,
    args: &PrecomputeArgs,
    build: &Build,
    spec: &ModelSpec,
    cache: &Cache,
    cache_dir: &std::path::Path,
) -> anyhow::Result<()> {
    use cistrack::annotate::{variant_background, AnnotateOptions, CacheSettings};
    let target = args.variant_background_snvs as usize;
    if let Some(b) = variant_background::load(cache, build, spec) {
        let every_block = b.windows_drawn as usize == variant_background::block_count(build);
        if b.blocks >= target || every_block {
            tracing::info!(
                "the variant background of {} on {} is already in the cache ({} substitutions{}); nothing to do",
                spec.id(),
                build.name(),
                b.len(),
                if every_block { ", one per block of the whole build" } else { "" }
            );
            return Ok(());
        }
    }
    let started = Instant::now();
    tracing::info!(build = build.name(), model = %spec.id(), substitutions = target, "drawing random substitutions over the build");
    let drawn =
        variant_background::draw(build, target).context("precompute --variant-background")?;
    anyhow::ensure!(
        !drawn.substitutions.is_empty(),
        "precompute --variant-background: build {} has no A/C/G/T base in the blocks drawn",
        build.name()
    );
    tracing::info!(
        "annotating {} substitutions ({} blocks visited)",
        drawn.substitutions.len(),
        drawn.blocks_visited
    );
    let options = AnnotateOptions {
        workers: global.workers(),
        threads: global.threads(),
        device: global.device,
        progress: !global.quiet,
        command: "cistrack precompute --variant-background".into(),
        cache: Some(CacheSettings {
            dir: cache_dir.to_path_buf(),
            max_bytes: args.disk_cache * 1024 * 1024,
            shared: None,
        }),
        ..AnnotateOptions::default()
    };
    let computed = variant_background::compute(build, spec, &drawn, &options)
        .context("precompute --variant-background")?;
    anyhow::ensure!(
        !computed.is_empty(),
        "precompute --variant-background: none of the {} substitutions drawn could be scored",
        drawn.substitutions.len()
    );
    if computed.len() < background::FEW_WINDOWS {
        tracing::warn!(
            "only {} substitutions could be scored on build {}: percentiles from so few are coarse",
            computed.len(),
            build.name()
        );
    }
    let quantiles = [50.0, 90.0, 99.0].map(|q| computed.quantile(q).unwrap_or(f32::NAN));
    let n = computed.len();
    computed.store_in(cache, variant_background::NAMESPACE);
    tracing::info!(
        "variant background of {} on {}: {n} substitutions scored in {:.0?}; |delta| at the 50th, 90th, 99th percentile: {:.4}, {:.4}, {:.4}",
        spec.id(),
        build.name(),
        started.elapsed(),
        quantiles[0],
        quantiles[1],
        quantiles[2]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_base_once_in_whole_tiles() {
        let regions = vec![
            ("chr1".to_string(), 150, 1_000),
            ("chr1".to_string(), 3_200, 3_300),
            ("chr2".to_string(), 0, 640),
        ];
        let tile = 200;
        for count in 1..=4 {
            let mut covered: Vec<(String, u64)> = Vec::new();
            for index in 0..count {
                for (c, s, e) in shard_pieces(regions.clone(), tile, Shard { index, count }) {
                    // inside one tile, and that tile belongs to this shard
                    assert_eq!(s / tile, (e - 1) / tile);
                    assert_eq!((s / tile) % count, index);
                    covered.extend((s..e).map(|b| (c.clone(), b)));
                }
            }
            let mut want: Vec<(String, u64)> = regions
                .iter()
                .flat_map(|(c, s, e)| (*s..*e).map(move |b| (c.clone(), b)))
                .collect();
            covered.sort();
            want.sort();
            assert_eq!(covered, want, "{count} shards");
        }
    }

    #[test]
    fn shard_text_is_checked() {
        assert_eq!(parse_shard("1/4"), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "0/0", "1", "a/2", "-1/2"] {
            let e = parse_shard(bad).unwrap_err();
            assert!(e.contains("is not I/N"), "{e}");
        }
    }
}
