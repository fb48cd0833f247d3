//! `cistrack annotate`: stream VCF or BED records through the enhancer model.

use super::at_least_one;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use cistrack::annotate::{self, AnnotateOptions, Format, Input, Summary};
use cistrack::genome::Build;
use cistrack::model::ModelSpec;

use super::GlobalArgs;

/// Annotate VCF or BED records.
#[derive(Debug, Args)]
#[command(after_help = "VCF: adds INFO/CISTRACK, one entry per ALT in ALT order:
  ALT|ref_prob|alt_prob|delta|ref_logit|alt_logit|nearest_gene|gene_distance|linked_gene|link_score|delta_percentile
(delta_percentile: with `cistrack precompute --variant-background`, |delta| ranked among random substitutions)
and INFO/CISTRACK_SKIP with the reason a record or ALT was not scored (invalid_allele, no_alt,
unknown_contig, out_of_bounds, ref_mismatch; per ALT: star_allele, symbolic_allele, breakend,
allele_too_long, all_n). With a motif file (the build's `motifs`, or --motifs), also
INFO/CISTRACK_MOTIFS: ALT|motif_id|motif_name|gained or lost|ref_score|alt_score|strand, at most 5
per ALT. With a link model, INFO/CISTRACK_LINKS for ALTs inside candidate elements, per gene attending
the element: ALT|gene|attention_ref|attention_alt|attention_delta|expression_delta, at most 5 per ALT
(--no-link-effects: none; --links-bed FILE: also as BED). Indels are left-aligned (bcftools norm) before scoring. Nothing else in a record changes; records are never dropped: a line
that cannot be parsed is written unchanged with a warning (--strict stops there instead).
BED: appends cistrack_max_prob, cistrack_mean_prob, cistrack_elements, cistrack_nearest_gene,
cistrack_gene_distance, cistrack_linked_gene, cistrack_link_score, cistrack_skip.

Examples:
  bcftools view calls.vcf.gz | cistrack --config examples/hg38.toml annotate | bgzip > out.vcf.gz
  cistrack --config examples/hg38.toml annotate -i peaks.bed -o peaks.annotated.bed")]
pub struct AnnotateArgs {
    /// Input VCF or BED, plain, gzip or bgzip; - or none: stdin
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output, plain text (pipe through bgzip to compress); - or none: stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Input format [default: from the file name (.vcf, .vcf.gz, .bed, .bed.gz, ...), else
    /// from the first line: ##fileformat=VCF means VCF, anything else BED]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Model role from the build's [models] table [default: the build's default_model]
    #[arg(short, long, value_name = "ROLE")]
    pub model: Option<String>,
    /// Windows per model call [default: 4 on the CPU, 128 with CUDA]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// BED: probability at or above which windows count as an element [default: the model's]
    #[arg(long, value_name = "P")]
    pub threshold: Option<f64>,
    /// Stop with an error at the first line that cannot be parsed (by default such a line is
    /// written unchanged, warned about and counted, and REF/ALT that are not valid alleles get
    /// CISTRACK_SKIP=invalid_allele)
    #[arg(long)]
    pub strict: bool,
    /// Longest input line accepted, bytes (a longer one stops the run before it is held in
    /// memory)
    #[arg(long, default_value_t = cistrack::io::text::DEFAULT_MAX_LINE, value_name = "BYTES", value_parser = at_least_one::<usize>)]
    pub max_line_length: usize,
    /// Motif file (JASPAR or MEME) to scan around each VCF allele for motifs gained or lost
    /// [default: the build's `motifs`]
    #[arg(long, value_name = "FILE", conflicts_with = "no_motifs")]
    pub motifs: Option<PathBuf>,
    /// p-value a motif match must reach (log-odds against a uniform background)
    #[arg(long, default_value_t = cistrack::motif::DEFAULT_P_VALUE, value_name = "P", value_parser = p_value)]
    pub motif_p_value: f64,
    /// Do not scan motifs, even when the build names a motif file
    #[arg(long)]
    pub no_motifs: bool,
    /// Do not compute what VCF alleles in candidate elements do to the build's link model
    /// (INFO/CISTRACK_LINKS)
    #[arg(long)]
    pub no_link_effects: bool,
    /// Also write the link consequences (CISTRACK_LINKS) as BED, one line per allele and gene
    /// (VCF input)
    #[arg(long, value_name = "FILE", conflicts_with = "no_link_effects")]
    pub links_bed: Option<PathBuf>,
    #[command(flatten)]
    pub cache: super::CacheArgs,
}

/// The command line as typed, for the output header (arguments with spaces quoted).
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cistrack annotate`.
///
/// # Errors
///
/// Any input (with its line), model, build or output error.
pub fn run(global: &GlobalArgs, args: AnnotateArgs) -> anyhow::Result<()> {
    let output = args.output.as_ref().filter(|p| p.as_os_str() != "-");
    if let Some(path) = output {
        let name = path.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".gz") || name.ends_with(".bgz") {
            anyhow::bail!(
                "cistrack annotate writes plain text; to compress, pipe it through bgzip: cistrack annotate ... | bgzip > {}",
                path.display()
            );
        }
    }
    let config = global.load_config()?;
    let build_config = config.build(global.build.as_deref())?;
    let build = Build::open(build_config)
        .with_context(|| format!("cannot open build {}", build_config.name))?;
    let spec = ModelSpec::load(&build.model_dir(args.model.as_deref())?)?;
    for m in build.masked_modalities() {
        tracing::warn!("build {} has no {m} track: the model scores with {m} masked, which it was trained to handle but which weakens its scores", build.name());
    }
    let input = Input::open(args.input.as_deref(), args.format)?;
    let (sink, target): (Box<dyn Write + Send>, String) = match output {
        None => (Box::new(std::io::stdout()), "stdout".into()),
        Some(path) => (
            Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            ),
            path.display().to_string(),
        ),
    };
    let options = AnnotateOptions {
        batch_size: args.batch_size,
        workers: global.workers(),
        threads: global.threads(),
        device: global.device,
        threshold: args.threshold,
        progress: !global.quiet,
        command: command_line(),
        target,
        cache: args.cache.settings(&config),
        strict: args.strict,
        max_line_bytes: args.max_line_length,
        motifs: match (
            args.no_motifs,
            args.motifs.as_ref().or(build.config().motifs.as_ref()),
        ) {
            (false, Some(path)) => Some(std::sync::Arc::new(cistrack::motif::MotifSet::load(
                path,
                args.motif_p_value,
            )?)),
            _ => None,
        },
        link_effects: !args.no_link_effects,
        links_bed: args.links_bed.clone(),
    };
    let summary = annotate::annotate(&build, &spec, input, sink, &options)?;
    report(&summary);
    Ok(())
}

fn unparsed(s: &Summary) {
    if let Some((line, error)) = &s.first_unparsed {
        tracing::warn!(
            "{} line(s) could not be parsed and were written unchanged (the first: line {line}: {error}); --strict makes such a line an error",
            s.unparsed
        );
    }
}

fn report(s: &Summary) {
    let seconds = s.elapsed.as_secs_f64();
    match s.format {
        Format::Vcf => {
            tracing::info!(
                "annotated {} records in {seconds:.1} s ({:.0} records/s, {}, batch size {}): {} scored ({} ALT alleles, {} windows of which {} from the cache, {:.0} alleles/s), {} passed through unscored",
                s.records,
                s.records_per_second(),
                s.device,
                s.batch_size,
                s.scored,
                s.alleles_scored,
                s.windows,
                s.windows_cached,
                s.alleles_scored as f64 / seconds.max(1e-9),
                s.passed_through,
            );
            tracing::info!("not scored, by reason (ALT alleles): {}", s.skipped_text());
            unparsed(s);
            if s.replaced > 0 {
                tracing::warn!(
                    "{} records already carried CISTRACK/CISTRACK_SKIP values (an earlier annotation); they were replaced",
                    s.replaced
                );
            }
            let r = s.reference;
            tracing::info!(
                "REF against the FASTA: {} match, {} mismatch ({} where the FASTA has N)",
                r.matched,
                r.mismatched,
                r.mismatched_at_n
            );
        }
        Format::Bed => {
            tracing::info!(
                "annotated {} intervals in {seconds:.1} s ({:.0} intervals/s, {}, batch size {}): {} scored ({} windows of which {} from the cache, {:.0} windows/s), {} passed through unscored",
                s.records,
                s.records_per_second(),
                s.device,
                s.batch_size,
                s.scored,
                s.windows,
                s.windows_cached,
                s.windows as f64 / seconds.max(1e-9),
                s.passed_through,
            );
            tracing::info!("not scored, by reason (intervals): {}", s.skipped_text());
            unparsed(s);
        }
    }
}

/// A p-value: a number in (0, 1).
fn p_value(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err("must be a number between 0 and 1 (exclusive)".into()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn test_try_parse_from() {
        let cli = Cli::try_parse_from([
            "cistrack",
            "--build",
            "hg38",
            "annotate",
            "-i",
            "calls.vcf.gz",
            "-o",
            "-",
            "--format",
            "vcf",
            "--batch-size",
            "1",
            "--model",
            "teacher",
            "--threads",
            "2",
        ])
        .unwrap();
        assert_eq!(cli.global.threads, Some(2));
        let Command::Annotate(args) = cli.command else {
            panic!("expected annotate")
        };
        assert_eq!(args.input.as_deref(), Some("calls.vcf.gz".as_ref()));
        assert_eq!(args.format, Some(Format::Vcf));
        assert_eq!(args.batch_size, Some(1));
        let bare = Cli::try_parse_from(["cistrack", "annotate"]).unwrap();
        let Command::Annotate(args) = bare.command else {
            panic!("expected annotate")
        };
        assert!(args.input.is_none() && args.output.is_none() && args.format.is_none());
        assert!(Cli::try_parse_from(["cistrack", "annotate", "--format", "gff"]).is_err());
        assert!(Cli::try_parse_from(["cistrack", "annotate", "--batch-size", "-1"]).is_err());
    }
}
