//! What an allele inside a candidate element does to the link model (`CISTRACK_LINKS`), on the
//! demo build (real K562 inputs, real chr22 sequence at the DiGeorge locus).
//!
//! The oracle is the link model run on a genome that carries the allele: chr22 is written out
//! twice, once as it is and once with the SNV in the FASTA, and the link view of each gene (the
//! daemon's own code path, `LinkEngine::genes`) is computed on both. The allele's reported
//! attention and expression, with REF and with ALT, must be those two views' numbers.

#[path = "support/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cistrack::genome::Build;
use cistrack::track::links::{AlleleEdit, LinkEngine};

/// rs146218436, chr22:19041137 C>T (1-based), inside a K562 candidate element at the DiGeorge
/// locus (real sequence): the common SNP of chr22 that moves the link model most.
const POS1: u64 = 19_041_137;
const REF: u8 = b'C';
const ALT: u8 = b'T';

/// chr22 alone as a one-line FASTA in `dir` (indexed by samtools), with `change` applied.
fn chr22_fasta(dir: &Path, name: &str, change: Option<(u64, u8)>) -> PathBuf {
    let mut bases = helpers::samtools_bases(
        Path::new("../shared/data/hg38/genome/hg38.partial.fa.gz"),
        "chr22",
    );
    if let Some((pos0, base)) = change {
        bases[pos0 as usize] = base;
    }
    let path = dir.join(name);
    let mut text = b">chr22\n".to_vec();
    text.extend_from_slice(&bases);
    text.push(b'\n');
    std::fs::write(&path, text).unwrap();
    let status = Command::new("samtools")
        .arg("faidx")
        .arg(&path)
        .status()
        .expect("samtools (scripts/setup.sh installs it)");
    assert!(status.success());
    path
}

/// The demo build with its FASTA replaced by `fasta`.
fn build_with(fasta: &Path) -> Arc<Build> {
    let root = helpers::root();
    let mut config = cistrack::config::Config::load(&root.join("examples/hg38.toml")).unwrap();
    let build = config.builds.get_mut("hg38").unwrap();
    build.fasta = fasta.to_path_buf();
    Arc::new(Build::open(build).unwrap())
}

/// The link model alone (no E2G: the reach and candidates the link model sees).
fn link_model(build: &Arc<Build>) -> LinkEngine {
    cistrack::track::links::open(
        build.clone(),
        Arc::new(cistrack::pipeline::cache::Cache::open(None, "hg38", 64).unwrap()),
        &cistrack::pipeline::engine::inputs_fingerprint(build),
        cistrack::model::Device::Cpu,
        2,
        false,
    )
    .unwrap()
}

#[test]
fn allele_effects_equal_the_link_model_on_a_genome_carrying_the_allele() {
    helpers::require_demo_data();
    let dir = tempfile::tempdir().unwrap();
    let pos0 = POS1 - 1;
    let reference = build_with(&chr22_fasta(dir.path(), "ref.fa", None));
    let alternate = build_with(&chr22_fasta(dir.path(), "alt.fa", Some((pos0, ALT))));
    let contig = reference.contigs().resolve("chr22").unwrap().clone();
    assert_eq!(
        helpers::samtools_bases(&dir.path().join("ref.fa"), &format!("chr22:{POS1}-{POS1}")),
        [REF]
    );
    let engine = link_model(&reference);
    let effects = engine
        .allele_links(
            &contig,
            AlleleEdit {
                start0: pos0,
                reference_length: 1,
                alternate: &[ALT],
            },
        )
        .unwrap();
    assert!(
        effects.len() >= 3,
        "genes attending the element: {effects:?}"
    );
    let on = |engine: &LinkEngine, gene: &str, tss: u64| {
        let tss = engine
            .genes_on("chr22")
            .iter()
            .find(|t| t.id == gene && t.position0 == tss)
            .unwrap()
            .clone();
        let view = engine.genes(&contig, &[tss], || true).unwrap();
        view.genes[0].clone()
    };
    let oracle_alt = link_model(&alternate);
    let oracle_ref = link_model(&reference);
    let mut moved = 0;
    for e in &effects {
        assert!(e.element.0 <= pos0 && pos0 < e.element.1, "{e:?}");
        let (r, a) = (
            on(&oracle_ref, &e.gene_id, e.tss),
            on(&oracle_alt, &e.gene_id, e.tss),
        );
        let attention = |g: &cistrack::track::links_output::GeneLinks| {
            g.links
                .iter()
                .find(|l| (l.element_start, l.element_end) == e.element)
                .map(|l| l.attention)
                .unwrap()
        };
        let close = |x: f32, y: f32| (x - y).abs() <= 2e-7 + 1e-5 * y.abs();
        assert!(
            close(e.attention.0, attention(&r)),
            "{e:?} ref {}",
            attention(&r)
        );
        assert!(
            close(e.attention.1, attention(&a)),
            "{e:?} alt {}",
            attention(&a)
        );
        assert!(
            close(e.expression.0, r.expression),
            "{e:?} {}",
            r.expression
        );
        assert!(
            close(e.expression.1, a.expression),
            "{e:?} {}",
            a.expression
        );
        moved += usize::from(e.attention_delta().abs() > 1e-5);
    }
    // the oracle tells REF from ALT: a run that ignored the allele would fail above
    assert!(moved > 0, "{effects:?}");

    // an allele in no candidate element, and one on a contig without sequence (HBE1 on
    // chr11: every window masked), change nothing the model reads
    let outside = |contig: &str, start0: u64| {
        let c = reference.contigs().resolve(contig).unwrap().clone();
        engine
            .allele_links(
                &c,
                AlleleEdit {
                    start0,
                    reference_length: 1,
                    alternate: b"A",
                },
            )
            .unwrap()
    };
    assert!(outside("chr22", 16_000_000).is_empty());
    let hbe1_lcr = 5_280_700; // HS2 of the beta-globin LCR (hg38), a K562 candidate
    assert!(outside("chr11", hbe1_lcr).is_empty());
    // a deletion and an insertion in the element are computed as well
    for (reference_length, alternate) in [(3, &b""[..]), (0, &b"GATA"[..])] {
        let indel = engine
            .allele_links(
                &contig,
                AlleleEdit {
                    start0: pos0,
                    reference_length,
                    alternate,
                },
            )
            .unwrap();
        assert_eq!(indel.len(), effects.len());
        assert!(indel.iter().any(|e| e.attention_delta() != 0.0));
    }
}

#[test]
fn annotate_writes_link_effects_that_bcftools_reads() {
    helpers::require_demo_data();
    let dir = tempfile::tempdir().unwrap();
    let vcf = dir.path().join("in.vcf");
    std::fs::write(
        &vcf,
        format!(
            "##fileformat=VCFv4.2\n##contig=<ID=chr22,length=50818468>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n\
             chr22\t{POS1}\trs146218436\tC\tT,G\t.\t.\t.\n\
             chr22\t16000000\toutside\tN\tA\t.\t.\t.\n"
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = dir.path().join(format!("out{}.vcf", extra.len()));
        let mut args = vec![
            "--quiet",
            "--config",
            "examples/hg38.toml",
            "annotate",
            "-i",
            vcf.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--no-cache",
        ];
        args.extend_from_slice(extra);
        helpers::assert_ok(&helpers::cistrack(&args));
        out
    };
    let with = run(&[]);
    let without = run(&["--no-link-effects"]);
    let header = helpers::bcftools(&["view", "-h"], &with);
    assert!(header.contains("##INFO=<ID=CISTRACK_LINKS,"), "{header}");
    assert!(!helpers::bcftools(&["view", "-h"], &without).contains("CISTRACK_LINKS"));
    let query = helpers::bcftools(&["query", "-f", "%ID\t%INFO/CISTRACK_LINKS\n"], &with);
    let rows: Vec<(&str, &str)> = query.lines().map(|l| l.split_once('\t').unwrap()).collect();
    assert_eq!(rows[1], ("outside", "."));
    let entries: Vec<Vec<&str>> = rows[0]
        .1
        .split(',')
        .map(|e| e.split('|').collect())
        .collect();
    assert!(entries.len() >= 2, "{entries:?}");
    let mut alts = Vec::new();
    for e in &entries {
        assert_eq!(e.len(), 6, "{e:?}");
        alts.push(e[0]);
        let [r, a, d]: [f64; 3] = [e[2], e[3], e[4]].map(|v| v.parse().unwrap());
        // 4 significant digits each
        assert!((a - r - d).abs() <= 1e-3 * r.abs().max(a.abs()), "{e:?}");
        assert!(e[5].parse::<f64>().is_ok(), "{e:?}");
    }
    // grouped by ALT in ALT order, at most 5 each
    let last_t = alts.iter().rposition(|a| *a == "T").unwrap();
    let first_g = alts.iter().position(|a| *a == "G").unwrap();
    assert!(last_t < first_g, "{alts:?}");
    assert!(alts.iter().filter(|a| **a == "T").count() <= 5);
    // nothing else changes
    let strip = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("##"))
            .map(|l| {
                l.split(';')
                    .filter(|f| !f.starts_with("CISTRACK_LINKS="))
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&with), strip(&without));

    // the same entries as BED, one line per allele and gene
    let bed = dir.path().join("links.bed");
    run(&["--links-bed", bed.to_str().unwrap()]);
    let bed_text = std::fs::read_to_string(&bed).unwrap();
    let mut lines = bed_text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("#chrom\tstart\tend\tname"));
    let bed_rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(bed_rows.len(), entries.len());
    for (row, e) in bed_rows.iter().zip(&entries) {
        assert_eq!(row.len(), 15, "{row:?}");
        assert_eq!(
            (row[0], row[1], row[2]),
            ("chr22", &*(POS1 - 1).to_string(), &*POS1.to_string())
        );
        assert_eq!(row[3], format!("rs146218436:{}>{}", e[0], e[1]));
        assert_eq!(row[6], e[1]);
        assert_eq!(&row[11..15], &e[2..6], "{row:?} vs {e:?}");
        let start: u64 = row[9].parse().unwrap();
        let end: u64 = row[10].parse().unwrap();
        assert!(
            start < POS1 && POS1 <= end,
            "the element holds the allele: {row:?}"
        );
    }
    // BED input has no alleles
    let intervals = dir.path().join("in.bed");
    std::fs::write(&intervals, "chr22\t19041000\t19042000\n").unwrap();
    let out = helpers::cistrack(&[
        "--config",
        "examples/hg38.toml",
        "annotate",
        "-i",
        intervals.to_str().unwrap(),
        "--links-bed",
        bed.to_str().unwrap(),
        "--no-cache",
    ]);
    helpers::assert_fails_with(&out, &["--links-bed needs VCF input"]);

    // kept in the build's cache: a second run with the same cache folder reads them back
    let cache = dir.path().join("cache");
    let cached_run = |name: &str| {
        let out = dir.path().join(name);
        helpers::assert_ok(&helpers::cistrack(&[
            "--quiet",
            "--config",
            "examples/hg38.toml",
            "annotate",
            "-i",
            vcf.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ]));
        std::fs::read_to_string(out).unwrap()
    };
    let first = cached_run("first.vcf");
    let stats = helpers::assert_ok(&helpers::cistrack(&[
        "--config",
        "examples/hg38.toml",
        "cache",
        "stats",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]));
    let alleles = stats
        .lines()
        .find(|l| l.contains(":alleles "))
        .unwrap_or_else(|| panic!("no allele records in the cache:\n{stats}"));
    assert!(alleles.contains(" 2 entries"), "{alleles}");
    let second = cached_run("second.vcf");
    let body = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("##cistrack_command"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&first), body(&second));
    assert_eq!(strip(&dir.path().join("first.vcf")), strip(&with));
}
