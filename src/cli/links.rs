//! `cistrack links`: enhancer–gene links of a region or of named genes, written as TSV (every
//! score and every E2G feature), BEDPE or bigInteract — the same pipeline as the daemon's
//! `/links`, sharing its cache.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use cistrack::genome::genes::Tss;
use cistrack::genome::{Build, Contig, Region};
use cistrack::model::e2g::{self, GeneList, FEATURE_NAMES};
use cistrack::pipeline::cache::{Cache, CacheSettings, DEFAULT_DISK_MIB};
use cistrack::pipeline::engine::inputs_fingerprint;
use cistrack::track::links::{self, LinkEngine};
use cistrack::track::links_output::{write_links_biginteract, GeneLinks};

use super::GlobalArgs;

/// Write the enhancer–gene links of a region or of named genes.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cistrack --config examples/hg38.toml links --region chr17:42,600,001-42,700,000 -o links.tsv
  cistrack --config examples/hg38.toml links --region chr22 -o chr22.bb -o chr22.bedpe --min-score threshold
  cistrack --config examples/hg38.toml links --gene ENSG00000068137 --gene MYC -o -")]
pub struct LinksArgs {
    /// Region `chr:start-end` (1-based, inclusive) or a whole contig `chr`: the genes whose TSS
    /// lies in it (repeatable)
    #[arg(long, value_name = "REGION", required_unless_present_any = ["gene", "genes"])]
    pub region: Vec<String>,
    /// A gene by Ensembl id or, failing that, by name (repeatable)
    #[arg(long, value_name = "ID")]
    pub gene: Vec<String>,
    /// A file of gene ids or names, one per line
    #[arg(long, value_name = "FILE")]
    pub genes: Option<PathBuf>,
    /// Output: `.tsv` (every score and E2G feature), `.bedpe`, or `.bb`/`.bigInteract`; `-`
    /// is TSV on stdout (repeatable)
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    pub output: Vec<PathBuf>,
    /// Leave out links scoring below this: a number in [0, 1], or `threshold` (the E2G
    /// model's calibrated threshold)
    #[arg(long, value_name = "P|threshold", default_value = "0")]
    pub min_score: String,
    /// Consider candidates up to this far from a TSS, bp [default: the E2G model's reach, else
    /// the link model's]
    #[arg(long, value_name = "BP")]
    pub reach: Option<u64>,
    /// Do not apply the build's E2G model: `score` is the attention (features are still
    /// written)
    #[arg(long)]
    pub no_e2g: bool,
    /// Ubiquitously-expressed genes for the `ubiquitous` feature of the TSV [default: the E2G
    /// model's list]
    #[arg(long, value_name = "FILE")]
    pub ubiquitous_genes: Option<PathBuf>,
    /// Score cache folder [default: the config's cache_dir]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Runs `cistrack links`.
///
/// # Errors
///
/// Config, input, model or output errors.
pub fn run(global: &GlobalArgs, args: LinksArgs) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let build_config = config.build(global.build.as_deref())?;
    anyhow::ensure!(
        build_config.models.contains_key(links::LINK_ROLE),
        "build {} has no link model: add `{} = \"link-epinformer/0.1.0\"` to its models table",
        build_config.name,
        links::LINK_ROLE
    );
    let build = Arc::new(Build::open(build_config)?);
    let cache_dir = args.cache_dir.clone().unwrap_or(config.cache_dir.clone());
    let settings = CacheSettings {
        dir: cache_dir,
        max_bytes: DEFAULT_DISK_MIB * 1024 * 1024,
        shared: config.redis.clone(),
    };
    let cache = Arc::new(Cache::open(Some(&settings), build.name(), 64)?);
    let engine = links::open(
        build.clone(),
        cache,
        &inputs_fingerprint(&build),
        global.device,
        global.threads(),
        !args.no_e2g,
    )?;
    let engine = match args.reach {
        Some(reach) => engine.with_reach(reach),
        None => engine,
    };
    let min_score = match args.min_score.as_str() {
        "threshold" => engine.e2g().map(|m| m.threshold).with_context(|| {
            format!(
                "--min-score threshold: build {} has no E2G model (models.{})",
                build.name(),
                links::E2G_ROLE
            )
        })?,
        v => v
            .parse::<f32>()
            .ok()
            .filter(|x| (0.0..=1.0).contains(x))
            .with_context(|| {
                format!("--min-score {v:?} is not a number in [0, 1], nor `threshold`")
            })?,
    };
    let ubiquitous = match &args.ubiquitous_genes {
        Some(path) => GeneList::load(path)?,
        None => engine
            .e2g()
            .map(|m| m.ubiquitous.clone())
            .unwrap_or_default(),
    };
    let wanted = genes_wanted(&build, &engine, &args)?;
    let total: usize = wanted.iter().map(|(_, g)| g.len()).sum();
    let bar = super::progress_bar(total as u64, "genes");
    let started = Instant::now();
    let mut genes: Vec<GeneLinks> = Vec::with_capacity(total);
    let mut computed = 0;
    for (contig, tss) in &wanted {
        for chunk in tss.chunks(64) {
            let view = engine
                .genes(contig, chunk, || true)
                .with_context(|| format!("links of genes on {}", contig.name))?;
            computed += view.computed;
            bar.inc(chunk.len() as u64);
            genes.extend(view.genes.iter().map(|g| (**g).clone()));
        }
    }
    bar.finish_and_clear();
    let links: usize = genes.iter().map(|g| g.links.len()).sum();
    tracing::info!(
        "{} genes ({computed} computed, {} cached), {links} links in {:.1} s; score = {}",
        genes.len(),
        genes.len() - computed.min(genes.len()),
        started.elapsed().as_secs_f64(),
        engine
            .e2g()
            .map_or("attention (no E2G model)".to_string(), |m| format!(
                "{} (calibrated threshold {:.4})",
                m.id(),
                m.threshold
            )),
    );
    for out in &args.output {
        write_output(out, &build, &engine, &genes, &ubiquitous, min_score)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}

/// The genes asked for, grouped by contig in FASTA order, each group by TSS.
fn genes_wanted(
    build: &Build,
    engine: &LinkEngine,
    args: &LinksArgs,
) -> anyhow::Result<Vec<(Contig, Vec<Tss>)>> {
    let mut found: Vec<(Contig, Tss)> = Vec::new();
    for r in &args.region {
        let region: Region = if r.contains(':') {
            r.parse()?
        } else {
            let c = build
                .contigs()
                .resolve(r)
                .ok_or_else(|| build.contigs().unknown(r))?;
            Region::new(&c.name, 0, c.length)?
        };
        let region = build.contigs().check(&region)?;
        let contig = build
            .contigs()
            .resolve(region.name())
            .expect("checked")
            .clone();
        for t in engine.genes_on(&contig.name) {
            if (region.start0()..region.end0()).contains(&t.position0) {
                found.push((contig.clone(), t.clone()));
            }
        }
    }
    let mut queries = args.gene.clone();
    if let Some(path) = &args.genes {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut cistrack::io::text::open(path)?, &mut text)
            .with_context(|| format!("cannot read gene list {}", path.display()))?;
        queries.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    let mut missing = Vec::new();
    for q in &queries {
        let hits = engine.find_genes(q);
        if hits.is_empty() {
            missing.push(q.as_str());
        }
        found.extend(hits);
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(10).copied().collect();
        tracing::warn!(
            "{} of {} genes asked for are not in the build's genes file (by id, name or alias): {}{}",
            missing.len(),
            queries.len(),
            shown.join(", "),
            if missing.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
    let order: std::collections::HashMap<&str, usize> = build
        .contigs()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    found.sort_by(|a, b| {
        (order[a.0.name.as_str()], a.1.position0, &a.1.id).cmp(&(
            order[b.0.name.as_str()],
            b.1.position0,
            &b.1.id,
        ))
    });
    found.dedup_by(|a, b| {
        a.0.name == b.0.name && a.1.position0 == b.1.position0 && a.1.id == b.1.id
    });
    let mut grouped: Vec<(Contig, Vec<Tss>)> = Vec::new();
    for (c, t) in found {
        match grouped.last_mut() {
            Some((last, list)) if last.name == c.name => list.push(t),
            _ => grouped.push((c, vec![t])),
        }
    }
    Ok(grouped)
}

/// One output file, by its extension.
fn write_output(
    path: &Path,
    build: &Build,
    engine: &LinkEngine,
    genes: &[GeneLinks],
    ubiquitous: &GeneList,
    min_score: f32,
) -> anyhow::Result<()> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".bb") || name.ends_with(".biginteract") {
        let model = engine
            .e2g()
            .map_or(engine.model_name().to_string(), |m| m.id());
        write_links_biginteract(path, build.contigs(), genes, &model, min_score)?;
        return Ok(());
    }
    let bedpe = name.ends_with(".bedpe");
    let mut out: Box<dyn Write> = if path == Path::new("-") {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        Box::new(std::io::BufWriter::new(std::fs::File::create(path)?))
    };
    if bedpe {
        write_bedpe(&mut out, genes, min_score)?;
    } else {
        write_tsv(&mut out, build, engine, genes, ubiquitous, min_score)?;
    }
    out.flush()?;
    Ok(())
}

/// BEDPE: element, TSS (1 bp), `gene|element`, score, `.`, gene strand, then gene id,
/// attention, ABC score, distance.
fn write_bedpe(out: &mut dyn Write, genes: &[GeneLinks], min_score: f32) -> std::io::Result<()> {
    writeln!(
        out,
        "#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tname\tscore\tstrand1\tstrand2\tgene_id\tattention\tabc_score\tdistance"
    )?;
    for g in genes {
        for l in g.links.iter().filter(|l| l.score >= min_score) {
            writeln!(
                out,
                "{c}\t{}\t{}\t{c}\t{}\t{}\t{}|{c}:{}-{}\t{:.4}\t.\t{}\t{}\t{:.4}\t{:.4}\t{}",
                l.element_start,
                l.element_end,
                g.tss,
                g.tss + 1,
                g.name,
                l.element_start,
                l.element_end,
                l.score,
                g.strand,
                g.id,
                l.attention,
                l.abc_score,
                l.distance,
                c = g.contig,
            )?;
        }
    }
    Ok(())
}

/// TSV: one line per link with its scores and every E2G feature, full precision, so the
/// training pipeline learns from exactly what the runtime computes.
fn write_tsv(
    out: &mut dyn Write,
    build: &Build,
    engine: &LinkEngine,
    genes: &[GeneLinks],
    ubiquitous: &GeneList,
    min_score: f32,
) -> std::io::Result<()> {
    let (model, sha) = engine.model_identity();
    writeln!(
        out,
        "##cistrack {} links build={} model={}/{} sha256={} e2g={} reach={}",
        env!("CARGO_PKG_VERSION"),
        build.name(),
        model.0,
        model.1,
        sha,
        engine.e2g().map_or("none".to_string(), |m| format!(
            "{} sha256={}",
            m.id(),
            m.sha256
        )),
        engine.reach(),
    )?;
    write!(
        out,
        "chrom\telement_start\telement_end\tgene_id\tgene_name\ttss\tstrand\tdistance\tscore\tattention\tabc_score\tactivity\tcontact\tcontact_source\tattended\ttss_between\texpression\tpromoter_activity"
    )?;
    for f in FEATURE_NAMES {
        write!(out, "\tf_{f}")?;
    }
    writeln!(out)?;
    for g in genes {
        let features = e2g::features(g, ubiquitous.contains(g));
        for (l, f) in g.links.iter().zip(&features) {
            if l.score < min_score {
                continue;
            }
            write!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                g.contig,
                l.element_start,
                l.element_end,
                g.id,
                g.name,
                g.tss,
                g.strand,
                l.distance,
                l.score,
                l.attention,
                l.abc_score,
                l.activity,
                l.contact,
                l.contact_source.as_str(),
                u8::from(l.attended),
                l.tss_between,
                g.expression,
                g.promoter_activity,
            )?;
            for x in f {
                write!(out, "\t{x}")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}
