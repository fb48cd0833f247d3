//! End-to-end tests of `cistrack annotate` (the real binary, the fixture build, the real
//! ONNX model): VCF and BED output read back by bcftools and by an independent Rust parser,
//! the round trip, every reason code, batch invariance, stdin and gzip, bad input with its
//! line number, a closed stdout, and the real hg38 variant files.

#[path = "support/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use helpers::*;

const VARIANTS: &str = "tests/data/annotate/variants.vcf";
const INTERVALS: &str = "tests/data/annotate/intervals.bed";

fn fixture_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--config",
        "tests/data/fixture.toml",
        "--device",
        "cpu",
        "--threads",
        "2",
        "annotate",
    ];
    // Tests are independent of any cache unless they name one.
    if !extra.contains(&"--cache-dir") {
        args.push("--no-cache");
    }
    args.extend_from_slice(extra);
    args
}

/// Runs cistrack with `stdin` as its standard input (a clean environment, as `cistrack`).
fn cistrack_stdin(args: &[&str], stdin: Vec<u8>) -> Output {
    let mut cmd = cistrack_command();
    cmd.args(args).current_dir(root());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the cistrack binary");
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn bgzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("bgzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bgzip (Debian package tabix) is needed");
    let mut input = child.stdin.take().unwrap();
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success());
    output.stdout
}

/// Drops the header line that records the command (it names the arguments, which differ).
fn without_command(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("##cistrack_command=") && !l.starts_with("#cistrack 0."))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The annotation removed again: cistrack's header lines and the CISTRACK, CISTRACK_SKIP and
/// CISTRACK_MOTIFS INFO entries (an INFO left empty becomes `.`). Written here independently of cistrack's code.
fn strip_annotation(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if line.starts_with("##INFO=<ID=CISTRACK,")
            || line.starts_with("##INFO=<ID=CISTRACK_SKIP,")
            || line.starts_with("##INFO=<ID=CISTRACK_MOTIFS,")
            || line.starts_with("##INFO=<ID=CISTRACK_LINKS,")
            || line.starts_with("##cistrack_")
        {
            continue;
        }
        if line.starts_with('#') {
            out.push_str(line);
            continue;
        }
        let (body, ending) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let mut fields: Vec<String> = body.split('\t').map(String::from).collect();
        let kept: Vec<&str> = fields[7]
            .split(';')
            .filter(|e| {
                ![
                    "CISTRACK=",
                    "CISTRACK_SKIP=",
                    "CISTRACK_MOTIFS=",
                    "CISTRACK_LINKS=",
                ]
                .iter()
                .any(|key| e.starts_with(key))
            })
            .collect();
        fields[7] = if kept.is_empty() {
            ".".into()
        } else {
            kept.join(";")
        };
        out.push_str(&fields.join("\t"));
        out.push_str(ending);
    }
    out
}

/// One annotated VCF record, parsed independently.
#[derive(Debug, Clone)]
struct Annotated {
    chrom: String,
    id: String,
    alts: Vec<String>,
    /// CISTRACK entries, split at `|`.
    entries: Vec<Vec<String>>,
    /// CISTRACK_SKIP values.
    skip: Vec<String>,
}

fn parse_vcf(text: &str) -> Vec<Annotated> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let mut entries = Vec::new();
            let mut skip = Vec::new();
            for entry in f[7].split(';') {
                if let Some(v) = entry.strip_prefix("CISTRACK=") {
                    entries = v
                        .split(',')
                        .map(|e| e.split('|').map(String::from).collect())
                        .collect();
                } else if let Some(v) = entry.strip_prefix("CISTRACK_SKIP=") {
                    skip = v.split(',').map(String::from).collect();
                }
            }
            Annotated {
                chrom: f[0].into(),
                id: f[2].into(),
                alts: if f[4] == "." {
                    vec![]
                } else {
                    f[4].split(',').map(String::from).collect()
                },
                entries,
                skip,
            }
        })
        .collect()
}

fn annotate_fixture_vcf() -> (String, String) {
    let out = cistrack(&fixture_args(&["-i", VARIANTS]));
    let stdout = assert_ok(&out);
    (stdout, stderr_of(&out))
}

#[test]
fn vcf_output_is_valid_for_bcftools_with_one_value_per_alt() {
    let (stdout, _) = annotate_fixture_vcf();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.vcf");
    std::fs::write(&path, &stdout).unwrap();
    let view = bcftools(&["view", "-H"], &path);
    let input_records = std::fs::read_to_string(root().join(VARIANTS))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    assert_eq!(view.lines().count(), input_records);
    let header = bcftools(&["view", "-h"], &path);
    for line in [
        "##INFO=<ID=CISTRACK,Number=.,Type=String,Description=\"cistrack enhancer scores (model enhancer-student/0.2.0), one entry per ALT in ALT order. Format: ALT|ref_prob|alt_prob|delta|ref_logit|alt_logit|nearest_gene|gene_distance|linked_gene|link_score|delta_percentile.",
        "##cistrack_variant_background=none",
        "##INFO=<ID=CISTRACK_SKIP,Number=.,Type=String,",
        "##cistrack_version=0.1.0",
        "##cistrack_build=fixture",
        "##cistrack_model=enhancer-student/0.2.0",
        "##cistrack_model_sha256=",
        "##cistrack_command=",
    ] {
        assert!(header.contains(line), "bcftools header lacks {line:?}:\n{header}");
    }
    let query = bcftools(
        &[
            "query",
            "-f",
            "%CHROM\t%POS\t%ALT\t%INFO/CISTRACK\t%INFO/CISTRACK_SKIP\n",
        ],
        &path,
    );
    assert_eq!(query.lines().count(), input_records);
    for line in query.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let alts: Vec<&str> = f[2].split(',').collect();
        if f[3] != "." {
            let entries: Vec<&str> = f[3].split(',').collect();
            assert_eq!(
                entries.len(),
                alts.len(),
                "one CISTRACK entry per ALT: {line}"
            );
            for (entry, alt) in entries.iter().zip(&alts) {
                let fields: Vec<&str> = entry.split('|').collect();
                assert_eq!(fields.len(), 11, "{entry}");
                assert_eq!(fields[0], *alt, "entries in ALT order: {line}");
            }
        }
        assert!(
            f[3] != "." || f[4] != ".",
            "every record says something: {line}"
        );
        let skips: Vec<&str> = f[4].split(',').collect();
        assert!(
            skips.len() == 1 || skips.len() == alts.len(),
            "CISTRACK_SKIP has one value or one per ALT: {line}"
        );
    }
}

#[test]
fn vcf_round_trip_equals_the_input_byte_for_byte() {
    let (stdout, _) = annotate_fixture_vcf();
    let input = std::fs::read_to_string(root().join(VARIANTS)).unwrap();
    assert_eq!(strip_annotation(&stdout), input);
    // and the records keep the input order (the fixture is unsorted on purpose)
    let ids = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').nth(2).unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&stdout), ids(&input));
}

#[test]
fn vcf_scores_indels_and_multiallelics_and_gives_every_reason() {
    let (stdout, stderr) = annotate_fixture_vcf();
    let records: HashMap<String, Annotated> = parse_vcf(&stdout)
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let scored = [
        "snv",
        "multi",
        "mnv",
        "ins",
        "del",
        "hgsvc17404351",
        "hgsvc17404369",
        "hgsvc17409225",
        "hgsvc17419493",
        "hgsvc17419497",
        "alias",
        "contig_start",
        "near_gap",
        "unsorted",
    ];
    for id in scored {
        let r = &records[id];
        assert!(r.skip.is_empty(), "{id} should be scored: {r:?}");
        assert_eq!(r.entries.len(), r.alts.len(), "{id}");
        for (entry, alt) in r.entries.iter().zip(&r.alts) {
            assert_eq!(&entry[0], alt);
            let number = |i: usize| -> f64 { entry[i].parse().unwrap() };
            let (ref_prob, alt_prob, delta) = (number(1), number(2), number(3));
            assert!((0.0..=1.0).contains(&ref_prob) && (0.0..=1.0).contains(&alt_prob));
            assert!(
                (delta - (alt_prob - ref_prob)).abs() <= 1.5e-4,
                "delta = alt - ref: {entry:?}"
            );
            assert!(entry[1].split('.').nth(1).unwrap().len() == 4, "4 decimals");
            // the fixture genes file has TSSs on both contigs
            assert_ne!(entry[6], ".", "{id}");
            let _: i64 = entry[7].parse().unwrap();
        }
    }
    // Indels change the sequence of the alternate window, so its logit differs.
    for id in ["mnv", "ins", "del", "hgsvc17404351", "hgsvc17419493"] {
        let e = &records[id].entries[0];
        assert_ne!(e[4], e[5], "{id}: ref and alt logits should differ: {e:?}");
    }
    // Multi-allelic: one entry per ALT, sharing the reference window.
    let multi = &records["multi"];
    assert_eq!(multi.entries.len(), 2);
    assert_eq!(multi.entries[0][1], multi.entries[1][1]);
    assert_eq!(multi.entries[0][4], multi.entries[1][4]);
    // A scored ALT and a `*` in one record: both listed, the star with dots and a reason.
    let star = &records["star"];
    assert_eq!(star.entries.len(), 2);
    assert_eq!(star.entries[1][..6], ["*", ".", ".", ".", ".", "."]);
    assert_eq!(star.skip, [".", "star_allele"]);
    // Pass-through reasons; no CISTRACK field at all for these.
    for (id, reason) in [
        ("hgsvc17432074", "allele_too_long"), // a real 1,518-bp insertion
        ("mismatch", "ref_mismatch"),
        ("sym", "symbolic_allele"),
        ("bnd", "breakend"),
        ("unknown", "unknown_contig"),
        ("alln_refn", "all_n"), // chr2 is N over [22000, 25000)
        ("alln_refa", "all_n"), // REF A against N: all_n decides before ref_mismatch
        ("noalt", "no_alt"),
        ("oob", "out_of_bounds"),
    ] {
        let r = &records[id];
        assert!(r.entries.is_empty(), "{id}: {r:?}");
        assert_eq!(r.skip, [reason], "{id}");
    }
    // The alias `1` resolves to chr1 but the output keeps the input's name.
    assert_eq!(records["alias"].chrom, "1");
    // The summary counts: 24 records; ALT alleles skipped by reason; REF against the FASTA.
    for needle in [
        "annotated 24 records",
        "15 scored (16 ALT alleles",
        "9 passed through unscored",
        "not scored, by reason (ALT alleles): no_alt 1, unknown_contig 1, out_of_bounds 1, ref_mismatch 1, symbolic_allele 1, breakend 1, star_allele 1, allele_too_long 1, all_n 2",
        // 21 records reach the REF check (not no_alt, unknown_contig, out_of_bounds); the two
        // mismatches are `mismatch` and `alln_refa` (A against N)
        "REF against the FASTA: 19 match, 2 mismatch (1 where the FASTA has N)",
        "is not sorted by position (line 20, chr1:4351)",
    ] {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
}

/// The reference window of an SNV is the window `cistrack score` uses for a 200-bp core
/// starting 99 bp before the variant: both must give the same probability (to 1e-4: `score`
/// runs that single window in a batch of one row, which ONNX Runtime computes along another
/// kernel path, about 1e-6 apart).
#[test]
fn snv_reference_window_matches_cistrack_score() {
    let (stdout, _) = annotate_fixture_vcf();
    let snv = parse_vcf(&stdout)
        .into_iter()
        .find(|r| r.id == "snv")
        .unwrap();
    let ref_prob: f64 = snv.entries[0][1].parse().unwrap();
    // snv: POS 1005 -> 0-based 1004; window [1004 - 999, +2000) = [5, 2005). On the grid of
    // stride 10 (lead 995) that is window 100, core [1000, 1010).
    let dir = tempfile::tempdir().unwrap();
    let bedgraph = dir.path().join("w.bedGraph");
    assert_ok(&cistrack(&[
        "--config",
        "tests/data/fixture.toml",
        "--device",
        "cpu",
        "score",
        "--no-cache",
        "--stride",
        "10",
        "--region",
        "chr1:1001-1010",
        "-o",
        "/dev/null",
        "--windows",
        bedgraph.to_str().unwrap(),
    ]));
    let line = std::fs::read_to_string(&bedgraph).unwrap();
    let f: Vec<&str> = line.trim().split('\t').collect();
    assert_eq!((f[1], f[2]), ("1000", "1010"));
    let score_prob: f64 = f[3].parse().unwrap();
    assert!(
        (score_prob - ref_prob).abs() <= 1e-4,
        "{score_prob} vs {ref_prob}"
    );
}

#[test]
fn batch_size_does_not_change_the_output() {
    let default = assert_ok(&cistrack(&fixture_args(&["-i", VARIANTS])));
    for batch in ["1", "3"] {
        let other = assert_ok(&cistrack(&fixture_args(&[
            "-i",
            VARIANTS,
            "--batch-size",
            batch,
        ])));
        assert_eq!(
            without_command(&other),
            without_command(&default),
            "batch size {batch}"
        );
    }
    let default = assert_ok(&cistrack(&fixture_args(&["-i", INTERVALS])));
    let one = assert_ok(&cistrack(&fixture_args(&[
        "-i",
        INTERVALS,
        "--batch-size",
        "1",
    ])));
    assert_eq!(without_command(&one), without_command(&default));
}

#[test]
fn stdin_plain_and_gzip_and_output_file_give_the_same_records() {
    let expected = without_command(&assert_ok(&cistrack(&fixture_args(&["-i", VARIANTS]))));
    let input = std::fs::read(root().join(VARIANTS)).unwrap();
    // stdin, no --format: the first line says VCF
    let plain = cistrack_stdin(&fixture_args(&[]), input.clone());
    assert_eq!(without_command(&assert_ok(&plain)), expected);
    // gzip-compressed stdin, detected by its magic bytes
    let gz = cistrack_stdin(&fixture_args(&["-i", "-"]), bgzip(&input));
    assert_eq!(without_command(&assert_ok(&gz)), expected);
    // a .vcf.gz file and -o
    let dir = tempfile::tempdir().unwrap();
    let gz_path = dir.path().join("v.vcf.gz");
    std::fs::write(&gz_path, bgzip(&input)).unwrap();
    let out_path = dir.path().join("out.vcf");
    let out = cistrack(&fixture_args(&[
        "-i",
        gz_path.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]));
    assert!(assert_ok(&out).is_empty(), "nothing on stdout with -o");
    assert_eq!(
        without_command(&std::fs::read_to_string(&out_path).unwrap()),
        expected
    );
    // BED on stdin is recognised as BED
    let bed = std::fs::read(root().join(INTERVALS)).unwrap();
    let from_stdin = assert_ok(&cistrack_stdin(&fixture_args(&[]), bed));
    let from_file = assert_ok(&cistrack(&fixture_args(&["-i", INTERVALS])));
    assert_eq!(without_command(&from_stdin), without_command(&from_file));
}

#[test]
fn bed_appends_columns_and_passes_every_line_through() {
    let out = cistrack(&fixture_args(&["-i", INTERVALS]));
    let stdout = assert_ok(&out);
    let input = std::fs::read_to_string(root().join(INTERVALS)).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let input_lines: Vec<&str> = input.lines().collect();
    assert_eq!(&lines[..2], &input_lines[..2], "leading header lines first");
    assert!(lines[2].starts_with(
        "#cistrack 0.1.0 annotate build=fixture model=enhancer-student/0.2.0 sha256="
    ));
    assert!(
        lines[2].contains("threshold=0.5 stride=200"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "#cistrack columns appended to each record:\tcistrack_max_prob\tcistrack_mean_prob\tcistrack_elements\tcistrack_nearest_gene\tcistrack_gene_distance\tcistrack_linked_gene\tcistrack_link_score\tcistrack_skip");
    // every input line once, in order, with its own text first
    let body: Vec<&str> = lines[4..].to_vec();
    assert_eq!(body.len(), input_lines.len() - 2);
    let mut reasons = HashMap::new();
    for (out_line, in_line) in body.iter().zip(&input_lines[2..]) {
        if in_line.starts_with('#') {
            assert_eq!(out_line, in_line, "comments pass through in place");
            continue;
        }
        let prefix = format!("{in_line}\t");
        assert!(out_line.starts_with(&prefix), "{out_line}");
        let added: Vec<&str> = out_line[prefix.len()..].split('\t').collect();
        assert_eq!(added.len(), 8, "{out_line}");
        let name = in_line.split('\t').nth(3).unwrap_or("unnamed");
        reasons.insert(
            name.to_string(),
            added.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
    }
    for name in [
        "one_window_pair",
        "bed6",
        "bed12",
        "partly_n",
        "alias",
        "unnamed",
    ] {
        let a = &reasons[name];
        assert_eq!(a[7], ".", "{name}: {a:?}");
        // a linked gene comes with its score, or neither
        assert_eq!(a[5] == ".", a[6] == ".", "{name}: {a:?}");
        if a[6] != "." {
            let score: f64 = a[6].parse().unwrap();
            assert!((0.0..=1.0).contains(&score), "{name}: {a:?}");
        }
        let (max, mean): (f64, f64) = (a[0].parse().unwrap(), a[1].parse().unwrap());
        assert!(
            mean <= max + 1e-9 && (0.0..=1.0).contains(&max),
            "{name}: {a:?}"
        );
        let _: usize = a[2].parse().unwrap();
        assert_ne!(a[3], ".", "{name}");
    }
    for (name, reason) in [
        ("all_n", "all_n"),
        ("unknown", "unknown_contig"),
        ("past_end", "out_of_bounds"),
        ("empty", "empty_interval"),
    ] {
        let a = &reasons[name];
        assert_eq!(&a[..3], [".", ".", "."], "{name}");
        assert_eq!(&a[5..7], [".", "."], "{name}: no link when not scored");
        assert_eq!(a[7], reason, "{name}");
    }
    assert_eq!(
        &reasons["unknown"][3..5],
        [".", "."],
        "no genes on an unknown contig"
    );
    // bed6 (chr1:17000-19000) overlaps the candidate chr1:18948-19496, a candidate of CLCP1
    // only (it overlaps the other chr1 gene's core promoter, so that gene leaves it out)
    assert_eq!(reasons["bed6"][5], "CLCP1", "{:?}", reasons["bed6"]);
    assert!(body
        .iter()
        .any(|l| l.starts_with("2\t30000\t30400\talias\t")));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("annotated 10 intervals") && stderr.contains("6 scored"),
        "{stderr}"
    );
}

/// BED scores equal what `cistrack score` reports for the same region: the max of its window
/// probabilities, their mean, and its element count at the same threshold.
#[test]
fn bed_scores_match_cistrack_score() {
    let dir = tempfile::tempdir().unwrap();
    let bed = dir.path().join("one.bed");
    std::fs::write(&bed, "chr2\t21500\t23500\tx\n").unwrap();
    let annotated = assert_ok(&cistrack(&fixture_args(&[
        "-i",
        bed.to_str().unwrap(),
        "--threshold",
        "0.05",
    ])));
    let line = annotated.lines().find(|l| !l.starts_with('#')).unwrap();
    let f: Vec<&str> = line.split('\t').collect();
    let (max, mean, elements): (f64, f64, usize) = (
        f[4].parse().unwrap(),
        f[5].parse().unwrap(),
        f[6].parse().unwrap(),
    );
    let bedgraph = dir.path().join("w.bedGraph");
    let elements_bed = assert_ok(&cistrack(&[
        "--config",
        "tests/data/fixture.toml",
        "--device",
        "cpu",
        "score",
        "--region",
        "chr2:21501-23500",
        "--threshold",
        "0.05",
        "--windows",
        bedgraph.to_str().unwrap(),
    ]));
    let probabilities: Vec<f64> = std::fs::read_to_string(&bedgraph)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(
        probabilities.len() < 10,
        "all-N windows are skipped by both"
    );
    let score_max = probabilities.iter().cloned().fold(0.0, f64::max);
    let score_mean = probabilities.iter().sum::<f64>() / probabilities.len() as f64;
    assert!((score_max - max).abs() <= 1e-4, "{score_max} vs {max}");
    assert!((score_mean - mean).abs() <= 1e-4, "{score_mean} vs {mean}");
    let score_elements = elements_bed.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(elements, score_elements);
    assert!(elements > 0, "the fixture has windows above 0.05 here");
}

/// A small valid VCF head: two records that pass through without the model.
const HEAD: &str = "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=60000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n\
chr9\t1\tfirst\tA\tG\t.\t.\t.\nchr1\t1005\tsecond\tG\tA\t.\t.\t.\n";

fn write_input(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn with_strict_malformed_vcf_lines_fail_with_their_line_number_after_writing_the_records_before() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[u8], &str)] = &[
        (
            b"chr1\t1005\t.\tG\n",
            "line 6: expected 8 tab-separated columns as in the #CHROM line, found 4",
        ),
        (
            b"chr1\tx\t.\tG\tA\t.\t.\t.\n",
            "line 6: POS \"x\" is not a non-negative integer",
        ),
        (
            b"chr1\t1005\t.\tZ\tA\t.\t.\t.\n",
            "line 6: REF \"Z\" is not a string of A, C, G, T and N",
        ),
        (
            b"chr1\t1005\t.\tG\tA,<\t.\t.\t.\n",
            "line 6: ALT allele \"<\" is not a base string, *, a symbolic <ID> or a breakend",
        ),
        (
            b"chr1\t1005\t.\tG\tA\t.\t.\tNOTE=caf\xe9\n",
            "line 6: the line is not valid UTF-8",
        ),
        (b"\n", "line 6: empty line"),
        (b"##late=1\n", "line 6: header line after the #CHROM line"),
    ];
    for (i, (bad, message)) in cases.iter().enumerate() {
        let mut bytes = HEAD.as_bytes().to_vec();
        bytes.extend_from_slice(bad);
        bytes.extend_from_slice(b"chr9\t2\tafter\tA\tG\t.\t.\t.\n");
        let path = write_input(dir.path(), &format!("bad{i}.vcf"), &bytes);
        let out = cistrack(&fixture_args(&["-i", path.to_str().unwrap(), "--strict"]));
        assert_fails_with(&out, &["invalid VCF", path.to_str().unwrap(), message]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let ids: Vec<&str> = stdout
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').nth(2).unwrap())
            .collect();
        assert_eq!(
            ids,
            ["first", "second"],
            "records before the bad line, once: {message}"
        );
    }
}

#[test]
fn bad_vcf_headers_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
            "line 1: a VCF must start with a ##fileformat=VCF line",
        ),
        (
            "##fileformat=VCFv4.2\n##contig=<ID=chr1>\n",
            "line 2: the header has no #CHROM line (the input ended first)",
        ),
        (
            "##fileformat=VCFv4.2\nchr1\t5\t.\tA\tG\t.\t.\t.\n",
            "line 2: data line before the #CHROM header line",
        ),
        (
            "##fileformat=VCFv4.2\n#CHROM POS ID REF ALT QUAL FILTER INFO\n",
            "line 2: the #CHROM line must start with the 8 tab-separated columns",
        ),
        (
            "##fileformat=VCFv9.9\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
            "line 1: \"##fileformat=VCFv9.9\" is not a VCF version cistrack reads (VCFv4.0 to VCFv4.5)",
        ),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let path = write_input(dir.path(), &format!("h{i}.vcf"), text.as_bytes());
        let out = cistrack(&fixture_args(&["-i", path.to_str().unwrap()]));
        assert_fails_with(&out, &["invalid VCF", message]);
        assert!(
            out.stdout.is_empty(),
            "nothing written for a bad header: {message}"
        );
    }
    // BED text read as VCF because of --format
    let out = cistrack(&fixture_args(&["-i", INTERVALS, "--format", "vcf"]));
    assert_fails_with(
        &out,
        &["line 1: a VCF must start with a ##fileformat=VCF line"],
    );
}

#[test]
fn annotating_again_replaces_the_old_annotation() {
    let annotated = assert_ok(&cistrack(&fixture_args(&["-i", VARIANTS])));
    let body = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with("##cistrack_command"))
            .map(String::from)
            .collect()
    };
    // header and values of the earlier run are replaced: the same output again, one header
    // line each, and a warning
    let again = cistrack_stdin(&fixture_args(&[]), annotated.clone().into_bytes());
    let twice = assert_ok(&again);
    assert_eq!(body(&twice), body(&annotated));
    assert_eq!(twice.matches("##INFO=<ID=CISTRACK,").count(), 1);
    assert_eq!(twice.matches("##cistrack_model=").count(), 1);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("stdin is already annotated by cistrack"),
        "{stderr}"
    );
    assert!(
        stderr.contains("already carried CISTRACK/CISTRACK_SKIP values"),
        "{stderr}"
    );
    // records carrying the values without the header lines: replaced too, never doubled
    let headerless: String = annotated
        .lines()
        .filter(|l| !l.starts_with("##INFO=<ID=CISTRACK") && !l.starts_with("##cistrack_"))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = cistrack_stdin(&fixture_args(&[]), headerless.into_bytes());
    let text = assert_ok(&out);
    assert_eq!(body(&text), body(&annotated));
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let info = line.split('\t').nth(7).unwrap();
        assert!(info.matches("CISTRACK").count() <= 2, "{line}");
        assert!(info.matches("CISTRACK=").count() <= 1, "{line}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("already carried CISTRACK"));
}

#[test]
fn with_strict_malformed_bed_lines_fail_with_their_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "chr1\t5\n",
            "line 3: expected at least 3 tab-separated columns (chrom, start, end), found 2",
        ),
        (
            "chr1 5 10\n",
            "line 3: expected at least 3 tab-separated columns (chrom, start, end), found 1",
        ),
        (
            "chr1\t-5\t10\n",
            "line 3: start \"-5\" is not a non-negative integer",
        ),
        ("chr1\t50\t10\n", "line 3: end 10 is before start 50"),
    ];
    for (i, (bad, message)) in cases.iter().enumerate() {
        let text = format!("# header\nchrZ\t1\t2\tfirst\n{bad}chrZ\t3\t4\tafter\n");
        let path = write_input(dir.path(), &format!("bad{i}.bed"), text.as_bytes());
        let out = cistrack(&fixture_args(&["-i", path.to_str().unwrap(), "--strict"]));
        assert_fails_with(&out, &["invalid BED", message]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let records: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(records.len(), 1, "{message}: {stdout}");
        assert!(records[0].starts_with("chrZ\t1\t2\tfirst\t"));
    }
    // the first record itself is bad
    let path = write_input(dir.path(), "first.bed", b"chr1\tx\t10\n");
    assert_fails_with(
        &cistrack(&fixture_args(&["-i", path.to_str().unwrap(), "--strict"])),
        &["line 1: start \"x\" is not a non-negative integer"],
    );
}

/// The inputs peers' test suites carry that `bcftools view` reads: alleles that are not VCF
/// alleles, a line with more columns than the header, a trailing blank line.
const PEER_RECORDS: &str = "chr1\t1005\taltX\tG\tX\t.\t.\t.\n\
chr1\t1006\trefB\tB\tA\t.\t.\t.\nchr1\t1007\trefBA\tBA\tA\t.\t.\t.\n\
chr1\t1008\trefdot\t.\tA\t.\t.\t.\nchr1\t1009\taltI\tG\tI\t.\t.\t.\n\
chr1\t1010\trefstar\t*\tA\t.\t.\t.\n\
chr1\t1011\tthirteen\tG\tA\t.\t.\t.\tGT\t0/1\t0/1\t1/1\t0/0\n\
chr9\t2\tafter\tA\tG\t.\t.\t.\n\n";

fn data_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| !l.starts_with(b"#"))
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn lines_bcftools_reads_are_passed_through_never_stopping_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("{HEAD}{PEER_RECORDS}");
    let path = write_input(dir.path(), "peers.vcf", input.as_bytes());
    let out = cistrack(&fixture_args(&["-i", path.to_str().unwrap()]));
    let stdout = assert_ok(&out);
    let stderr = stderr_of(&out);
    // every line in order: the six invalid alleles as records skipped with a reason, the
    // 13-column and the blank line byte for byte
    let (lines_in, lines_out) = (data_lines(input.as_bytes()), data_lines(stdout.as_bytes()));
    assert_eq!(lines_out.len(), lines_in.len(), "{stdout}");
    let text = |l: &[u8]| String::from_utf8(l.to_vec()).unwrap();
    for (i, o) in lines_in.iter().zip(&lines_out) {
        let (i, o) = (text(i), text(o));
        let id = i.split('\t').nth(2).unwrap_or("");
        if ["altX", "refB", "refBA", "refdot", "altI", "refstar"].contains(&id) {
            let (before, info) = o.trim_end().rsplit_once('\t').unwrap();
            assert_eq!(before, i.trim_end().rsplit_once('\t').unwrap().0);
            assert_eq!(info, "CISTRACK_SKIP=invalid_allele", "{o}");
        } else if id == "thirteen" || i == "\n" {
            assert_eq!(o, i, "written unchanged");
        }
    }
    assert!(stdout.contains("\tafter\tA\tG\t"), "the stream goes on");
    assert!(
        stderr.contains("cannot parse line 12 (expected 8 tab-separated columns as in the #CHROM line, found 13); written unchanged"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "2 line(s) could not be parsed and were written unchanged (the first: line 12"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("by reason (ALT alleles): invalid_allele 6,"),
        "counted by reason: {stderr}"
    );
    // bcftools reads the output as it read the input, and sees the reason
    let annotated = write_input(dir.path(), "out.vcf", stdout.as_bytes());
    let q = bcftools(&["query", "-f", "%ID %INFO/CISTRACK_SKIP\n"], &annotated);
    for id in ["altX", "refB", "refBA", "refdot", "altI", "refstar"] {
        assert!(q.contains(&format!("{id} invalid_allele\n")), "{q}");
    }
    // --strict stops at the first of them, after writing the records before it
    let strict = cistrack(&fixture_args(&["-i", path.to_str().unwrap(), "--strict"]));
    assert_fails_with(&strict, &["line 6: ALT allele \"X\" is not a base string"]);
    assert_eq!(data_lines(&strict.stdout).len(), 2);
}

#[test]
fn unparsable_vcf_and_bed_lines_are_written_unchanged_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let bad: &[&[u8]] = &[
        b"chr1\tx\t.\tG\tA\t.\t.\t.\n",
        b"\tnochrom\t.\tG\tA\t.\t.\t.\n",
        b"chr1\t1005\t.\tG\tA\t.\t.\tNOTE=caf\xe9\r\n",
        b"##late=1\n",
        b"chr1\t1005\t.\tG\n",
    ];
    let mut vcf = HEAD.as_bytes().to_vec();
    for line in bad {
        vcf.extend_from_slice(line);
    }
    vcf.extend_from_slice(b"chr9\t2\tafter\tA\tG\t.\t.\t.\n");
    let path = write_input(dir.path(), "bad.vcf", &vcf);
    let out = cistrack(&fixture_args(&["-i", path.to_str().unwrap()]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    // every line after the #CHROM line, the late header line included
    let start = out
        .stdout
        .windows(7)
        .position(|w| w == b"#CHROM\t")
        .unwrap();
    let lines: Vec<&[u8]> = out.stdout[start..]
        .split_inclusive(|&b| b == b'\n')
        .skip(1)
        .collect();
    assert_eq!(lines.len(), 2 + bad.len() + 1);
    for (i, line) in bad.iter().enumerate() {
        assert_eq!(lines[2 + i], *line, "line {} byte for byte", 6 + i);
    }
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("cannot parse line 8 (the line is not valid UTF-8)"),
        "{stderr}"
    );
    assert!(stderr.contains("5 line(s) could not be parsed"), "{stderr}");
    // BED: the same, and the records around keep their columns
    let bed = b"# header\nchrZ\t1\t2\tfirst\nchr1\t5\nchr1\t50\t10\nchrZ\t3\t4\tafter\n";
    let path = write_input(dir.path(), "bad.bed", bed);
    let out = cistrack(&fixture_args(&["-i", path.to_str().unwrap()]));
    let stdout = assert_ok(&out);
    let records: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(records.len(), 4, "{stdout}");
    assert!(records[0].starts_with("chrZ\t1\t2\tfirst\t"));
    assert_eq!(&records[1..3], ["chr1\t5", "chr1\t50\t10"]);
    assert!(records[3].starts_with("chrZ\t3\t4\tafter\t"));
    assert!(stderr_of(&out).contains("cannot parse line 4 (end 10 is before start 50)"));
}

#[test]
fn a_line_past_the_length_limit_stops_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut vcf = HEAD.to_string();
    vcf.push_str(&format!(
        "chr1\t1006\tlong\tG\tA\t.\t.\tNOTE={}\n",
        "x".repeat(300_000)
    ));
    vcf.push_str("chr9\t2\tafter\tA\tG\t.\t.\t.\n");
    let path = write_input(dir.path(), "long.vcf", vcf.as_bytes());
    let limited = cistrack(&fixture_args(&[
        "-i",
        path.to_str().unwrap(),
        "--max-line-length",
        "100000",
    ]));
    assert_fails_with(
        &limited,
        &[
            "line 6 is longer than 100000 bytes, the line-length limit",
            "raise --max-line-length",
        ],
    );
    assert_eq!(
        data_lines(&limited.stdout).len(),
        2,
        "the records before it"
    );
    // the default limit (16 MiB) takes it
    let out = cistrack(&fixture_args(&["-i", path.to_str().unwrap()]));
    assert_eq!(data_lines(assert_ok(&out).as_bytes()).len(), 4);
}

#[test]
fn an_empty_input_is_the_same_error_for_vcf_and_bed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_input(dir.path(), "empty", b"");
    for format in ["vcf", "bed"] {
        let out = cistrack(&fixture_args(&[
            "-i",
            path.to_str().unwrap(),
            "--format",
            format,
        ]));
        assert_fails_with(&out, &["is empty: nothing to annotate"]);
        assert!(out.stdout.is_empty(), "{format}");
        let out = cistrack_stdin(&fixture_args(&["--format", format]), Vec::new());
        assert_fails_with(&out, &["stdin is empty: nothing to annotate"]);
    }
    // a BED with only a header is not empty: its header comes back, no records
    let path = write_input(dir.path(), "header.bed", b"# only a header\n");
    let out = cistrack(&fixture_args(&["-i", path.to_str().unwrap()]));
    assert!(assert_ok(&out).contains("# only a header\n"));
}

/// A bgzip stream cut in the middle: every complete line before the cut is written once, and
/// the error names the line count reached.
#[test]
fn truncated_bgzip_fails_after_writing_the_complete_lines() {
    let mut text = String::from(HEAD);
    for i in 0..20_000 {
        text.push_str(&format!("chr9\t{}\tv{i}\tA\tG\t.\t.\t.\n", i + 10));
    }
    let compressed = bgzip(text.as_bytes());
    let cut = &compressed[..compressed.len() / 2];
    let dir = tempfile::tempdir().unwrap();
    let path = write_input(dir.path(), "cut.vcf.gz", cut);
    for out in [
        cistrack(&fixture_args(&["-i", path.to_str().unwrap()])),
        cistrack_stdin(&fixture_args(&[]), cut.to_vec()),
    ] {
        let stderr = assert_fails_with(&out, &["the compressed stream is truncated or corrupt"]);
        let line: usize = stderr
            .split("past line ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no line number in {stderr}"));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let records: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
        // lines 1-3 are the header, so `line` complete lines hold line - 3 records
        assert_eq!(records.len(), line - 3, "{stderr}");
        assert!(records.len() > 1000, "about half the records come through");
        let ids: Vec<&str> = records
            .iter()
            .map(|l| l.split('\t').nth(2).unwrap())
            .collect();
        assert_eq!(ids[..2], ["first", "second"]);
        for (i, id) in ids[2..].iter().enumerate() {
            assert_eq!(*id, format!("v{i}"), "in order, none lost or repeated");
        }
    }
}

#[test]
fn bad_arguments_and_files_fail_clearly() {
    assert_fails_with(
        &cistrack(&fixture_args(&["-i", "tests/data/annotate/missing.vcf"])),
        &[
            "cannot open tests/data/annotate/missing.vcf",
            "No such file",
        ],
    );
    assert_fails_with(
        &cistrack(&fixture_args(&["-i", VARIANTS, "-o", "out.vcf.gz"])),
        &["writes plain text", "bgzip"],
    );
    assert!(!root().join("out.vcf.gz").exists());
    assert_fails_with(
        &cistrack(&fixture_args(&["-i", VARIANTS, "--batch-size", "0"])),
        &["--batch-size must be at least 1"],
    );
    assert_fails_with(
        &cistrack(&fixture_args(&["-i", INTERVALS, "--threshold", "7"])),
        &["--threshold 7 is not a probability"],
    );
    assert_fails_with(
        &cistrack(&fixture_args(&["-i", VARIANTS, "--model", "huge"])),
        &["build fixture has no model \"huge\""],
    );
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "-i",
            VARIANTS,
            "-o",
            "/nonexistent-dir/x.vcf",
        ])),
        &["cannot create /nonexistent-dir/x.vcf"],
    );
}

/// Runs cistrack with its stdout read for `keep` bytes and then closed (like `| head -c`).
fn run_with_stdout_closed_after(args: &[&str], keep: usize) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cistrack"))
        .args(args)
        .current_dir(root())
        .env_remove("CISTRACK_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut buffer = vec![0u8; keep];
    if keep > 0 {
        stdout.read_exact(&mut buffer).unwrap();
    }
    drop(stdout);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

#[test]
fn closed_stdout_ends_quietly() {
    // A VCF large enough not to fit in a pipe buffer: the writes after the close fail.
    let mut text = String::from(HEAD);
    for i in 0..20_000 {
        text.push_str(&format!("chr9\t{}\tv{i}\tA\tG\t.\t.\t.\n", i + 10));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_input(dir.path(), "big.vcf", text.as_bytes());
    for keep in [0, 100] {
        let (status, stderr) = run_with_stdout_closed_after(
            &fixture_args(&["-q", "-i", path.to_str().unwrap()]),
            keep,
        );
        assert!(status.success(), "{status:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{stderr}"
        );
    }
}

/// Annotates `vcf` on the demo hg38 build (no cache), checks that stderr's summary holds every
/// one of `needles`, and returns the output.
fn annotate_on_demo_build(vcf: &Path, needles: &[&str]) -> String {
    let out = cistrack(&[
        "--config",
        "examples/hg38.toml",
        "--device",
        "cpu",
        "annotate",
        "--no-cache",
        "-i",
        vcf.to_str().unwrap(),
    ]);
    let stdout = assert_ok(&out);
    let stderr = stderr_of(&out);
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    stdout
}

/// The bytes of a bgzipped file, decompressed by bgzip itself.
fn decompressed(path: &Path) -> Vec<u8> {
    Command::new("bgzip")
        .args(["-dc"])
        .arg(path)
        .output()
        .unwrap()
        .stdout
}

/// The real common-SNP VCF of hg38 chr22 against the partial hg38 genome
/// (`../shared/data/hg38/genome/hg38.partial.fa.gz`, real bases only in `loci.bed`).
///
/// The data README's REF table says: 4,517 records; 3,921 with an N reference base (no real
/// sequence there); in true_hg38 blocks 108 match / 2 mismatch; in lifted_hg19 blocks 486 / 0.
/// cistrack reports exactly that:
/// - 594 = 108 + 486 REF matches, and each of them is scored (one SNV ALT each, 2 windows);
/// - 3,923 mismatches, 3,921 of them where the FASTA has N. Those 3,921 lie in N stretches far
///   from any real block, so their whole 2,000-bp window is N: they pass through as `all_n`
///   (which the checks decide before `ref_mismatch`);
/// - the 2 real mismatches, rs174369 (REF G, genome C: the complement of a listed allele) and
///   rs695817 (genome base = ALT), inside the true hg38 block, pass through as `ref_mismatch`.
#[test]
fn real_hg38_chr22_common_snps_ref_agreement() {
    require_demo_data();
    let vcf = shared().join("hg38/variants/common_snps.hg38.chr22.vcf.gz");
    let stdout = annotate_on_demo_build(
        &vcf,
        &[
            "annotated 4517 records",
            "594 scored (594 ALT alleles, 1188 windows",
            "3923 passed through unscored",
            "not scored, by reason (ALT alleles): ref_mismatch 2, all_n 3921",
            "REF against the FASTA: 594 match, 3923 mismatch (3921 where the FASTA has N)",
        ],
    );
    let records = parse_vcf(&stdout);
    assert_eq!(records.len(), 4517);
    let mismatched: Vec<&str> = records
        .iter()
        .filter(|r| r.skip == ["ref_mismatch"])
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(mismatched, ["rs174369", "rs695817"]);
    assert_eq!(records.iter().filter(|r| r.entries.len() == 1).count(), 594);
    // the round trip holds on real data too
    let input = decompressed(&vcf);
    assert_eq!(strip_annotation(&stdout).as_bytes(), &input[..]);
}

/// Contigs the demo build knows from its `chrom_sizes` but whose sequence its partial FASTA
/// lacks (chr3 here) pass through as `all_n`, next to scored records, instead of stopping the
/// run (the genome-wide common SNPs failed on their first chr3 record before).
#[test]
fn contigs_without_sequence_pass_through() {
    require_demo_data();
    let dir = tempfile::tempdir().unwrap();
    let vcf = dir.path().join("in.vcf");
    std::fs::write(
        &vcf,
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n\
         chr3\t1000000\tno_sequence\tA\tG\t.\t.\t.\n\
         chr22\t19443735\trs185036527\tC\tT\t.\t.\t.\n",
    )
    .unwrap();
    let stdout = annotate_on_demo_build(&vcf, &["annotated 2 records", "1 scored"]);
    let records = parse_vcf(&stdout);
    assert_eq!(records[0].skip, ["all_n"], "{:?}", records[0]);
    assert_eq!(records[1].entries.len(), 1, "{:?}", records[1]);
}

/// The real HGSVC indels/SVs on chr22:17.2-17.8 Mb (true hg38 there): all 17 REF alleles match
/// (as the data README says); 22 ALT alleles (indels up to 850 bp changed, on 13 records, some
/// multi-allelic) are scored; the 7 ALT alleles changing more than 1,000 bp (half the window)
/// pass through as `allele_too_long`.
#[test]
fn real_hgsvc_indels() {
    require_demo_data();
    let vcf = shared().join("hg38/variants/HGSVC_chr22_17200000_17800000.vcf.gz");
    let stdout = annotate_on_demo_build(
        &vcf,
        &[
            "annotated 17 records",
            "13 scored (22 ALT alleles",
            "4 passed through unscored",
            "not scored, by reason (ALT alleles): allele_too_long 7",
            "REF against the FASTA: 17 match, 0 mismatch",
        ],
    );
    let records = parse_vcf(&stdout);
    for r in &records {
        let listed = if r.entries.is_empty() {
            r.skip.len()
        } else {
            r.entries.len()
        };
        assert_eq!(listed, r.alts.len(), "one value per ALT: {r:?}");
    }
    let input = decompressed(&vcf);
    assert_eq!(strip_annotation(&stdout).as_bytes(), &input[..]);
}

/// The number in "... windows of which N from the cache" of the summary line.
fn cached_windows(stderr: &str) -> u64 {
    let at = stderr
        .find(" from the cache")
        .unwrap_or_else(|| panic!("no cache count in the summary:\n{stderr}"));
    let before = &stderr[..at];
    before[before.rfind(' ').unwrap() + 1..].parse().unwrap()
}

fn windows_in_summary(stderr: &str) -> u64 {
    let at = stderr.find(" windows of which").expect("summary line");
    let before = &stderr[..at];
    before[before.rfind(|c: char| !c.is_ascii_digit()).unwrap() + 1..]
        .parse()
        .unwrap()
}

#[test]
fn the_score_cache_is_reused_verified_and_never_changes_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let vcf = std::fs::read(root().join(VARIANTS)).unwrap();
    let uncached = assert_ok(&cistrack_stdin(&fixture_args(&[]), vcf.clone()));

    // First run: everything computed and stored; second run: everything read back.
    let first = cistrack_stdin(&fixture_args(&["--cache-dir", cache_arg]), vcf.clone());
    let first_out = assert_ok(&first);
    assert_eq!(
        cached_windows(&stderr_of(&first)),
        0,
        "{}",
        stderr_of(&first)
    );
    let second = cistrack_stdin(&fixture_args(&["--cache-dir", cache_arg]), vcf.clone());
    let second_out = assert_ok(&second);
    let windows = windows_in_summary(&stderr_of(&second));
    assert!(windows > 10);
    assert_eq!(cached_windows(&stderr_of(&second)), windows);
    assert_eq!(without_command(&first_out), without_command(&uncached));
    assert_eq!(without_command(&second_out), without_command(&uncached));

    // Corrupt every stored window score: each is detected by its checksum, deleted and
    // recomputed, and the output does not change.
    let db = cache.join("fixture.sqlite");
    let status = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); n=c.execute(\"UPDATE tiles SET value=zeroblob(21) WHERE CAST(key AS TEXT) LIKE '%:windows\t%'\").rowcount; c.commit(); print(n)",
            db.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let corrupted: u64 = String::from_utf8_lossy(&status.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(corrupted > 0);
    let third = cistrack_stdin(&fixture_args(&["--cache-dir", cache_arg]), vcf);
    let third_out = assert_ok(&third);
    assert_eq!(
        cached_windows(&stderr_of(&third)),
        0,
        "{}",
        stderr_of(&third)
    );
    assert!(
        stderr_of(&third).contains("failed its checksum"),
        "{}",
        stderr_of(&third)
    );
    assert_eq!(without_command(&third_out), without_command(&uncached));

    // BED windows lie on the daemon's grid and are read from the tiles that `precompute` (the
    // daemon's engine) stored, wherever the interval starts.
    let bed = b"chr1\t17000\t19000\tgrid\nchr1\t17050\t19050\toff_grid\n".to_vec();
    let regions = write_input(dir.path(), "regions.bed", b"chr1\t16000\t20000\n");
    let tiles = dir.path().join("tiles");
    let pre = fixture_precompute(&regions, &tiles, &[]);
    assert_ok(&pre);
    let plain = assert_ok(&cistrack_stdin(
        &fixture_args(&["--format", "bed"]),
        bed.clone(),
    ));
    let from_tiles = cistrack_stdin(
        &fixture_args(&["--format", "bed", "--cache-dir", tiles.to_str().unwrap()]),
        bed,
    );
    let from_tiles_out = assert_ok(&from_tiles);
    // 10 grid windows of the first interval ([17000, 19000): windows 85..95) and 11 of the
    // second ([17050, 19050): windows 85..96, first and last cores clipped).
    assert_eq!(
        cached_windows(&stderr_of(&from_tiles)),
        21,
        "{}",
        stderr_of(&from_tiles)
    );
    assert_eq!(without_command(&from_tiles_out), without_command(&plain));
}

#[test]
fn an_unusable_cache_dir_warns_and_annotates_without_it() {
    let dir = tempfile::tempdir().unwrap();
    // a regular file where the cache folder should be: no database can be created under it
    let not_a_dir = write_input(dir.path(), "plain-file", b"x");
    let vcf = std::fs::read(root().join(VARIANTS)).unwrap();
    let uncached = assert_ok(&cistrack_stdin(&fixture_args(&[]), vcf.clone()));
    let out = cistrack_stdin(
        &fixture_args(&["--cache-dir", not_a_dir.to_str().unwrap()]),
        vcf,
    );
    let stdout = assert_ok(&out);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("annotating without the score cache") && stderr.contains("plain-file"),
        "{stderr}"
    );
    assert_eq!(without_command(&stdout), without_command(&uncached));
}

#[test]
fn an_indel_written_anywhere_in_its_repeat_gets_the_same_scores() {
    // a homopolymer run of real fixture sequence, far from the contig ends
    let bases: Vec<u8> = samtools_bases(
        Path::new("tests/data/fixture/genome.fa.gz"),
        "chr1:20001-40000",
    )
    .to_ascii_uppercase();
    let run = bases
        .windows(6)
        .position(|w| w.iter().all(|&b| b == w[0]) && b"ACGT".contains(&w[0]))
        .expect("a 6-base homopolymer");
    let (base, anchor) = (bases[run] as char, bases[run - 1] as char);
    let pos = 20_000 + run as u64; // 1-based POS of the anchor base
                                   // one base deleted: at the run's start (normalised), at its end, and in its middle
    let mut vcf = String::from(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=60000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
    );
    vcf.push_str(&format!(
        "chr1\t{pos}\tleft\t{anchor}{base}\t{anchor}\t.\t.\t.\n"
    ));
    vcf.push_str(&format!(
        "chr1\t{}\tmiddle\t{base}{base}\t{base}\t.\t.\t.\n",
        pos + 3
    ));
    vcf.push_str(&format!(
        "chr1\t{}\tright\t{base}{base}\t{base}\t.\t.\t.\n",
        pos + 5
    ));
    let out = cistrack_stdin(&fixture_args(&["-i", "-"]), vcf.into_bytes());
    let records = parse_vcf(&assert_ok(&out));
    assert_eq!(records.len(), 3);
    let scores = |r: &Annotated| r.entries[0][1..=5].to_vec();
    assert!(records.iter().all(|r| r.skip.is_empty()), "{records:?}");
    assert_eq!(scores(&records[0]), scores(&records[1]));
    assert_eq!(scores(&records[0]), scores(&records[2]));
}

/// An independent motif scan (numpy): the same matrices, pseudocount, score grid and p-value
/// threshold (computed by convolution), best overlapping placement on either strand. Prints one
/// line per change: `id motif gained|lost ref alt size`.
const MOTIF_ORACLE: &str = r#"
import sys, numpy as np
jaspar, p_value, segments = sys.argv[1], float(sys.argv[2]), sys.argv[3]
def round_half_away(x):
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)
motifs = []
for block in open(jaspar).read().split('>')[1:]:
    lines = block.strip().split('\n')
    head = lines[0].split()
    counts = np.array([[float(v) for v in l.split('[')[1].split(']')[0].split()] for l in lines[1:5]])
    bits = np.log2((counts + 0.2) / (counts.sum(0) + 0.8) / 0.25)
    scale = min(100.0, 2000.0 / max((bits.max(0) - bits.min(0)).sum(), 1e-9))
    grid = round_half_away(bits * scale)  # 4 x w
    dist = np.array([1.0])
    for j in range(grid.shape[1]):
        col = grid[:, j]
        step = np.zeros(col.max() - col.min() + 1)
        for v in col:
            step[v - col.min()] += 0.25
        dist = np.convolve(dist, step)
    low = grid.min(0).sum()
    tail, threshold = 0.0, low
    for i in range(len(dist) - 1, -1, -1):
        if tail + dist[i] > p_value:
            threshold = low + i + 1
            break
        tail += dist[i]
    motifs.append((head[0], grid, grid[::-1, ::-1], threshold, scale))
code = {'A': 0, 'C': 1, 'G': 2, 'T': 3}
for line in open(segments):
    vid, ref, alt = line.split()
    seqs = [np.array([code.get(b, 4) for b in s.upper()]) for s in (ref, alt)]
    context = len(ref) // 2  # the changed base
    for mid, fwd, rev, threshold, scale in motifs:
        w = fwd.shape[1]
        best = []
        for s in seqs:
            top = None
            for p in range(max(0, context - w + 1), min(context, len(s) - w) + 1):
                placed = s[p:p + w]
                if (placed == 4).any():
                    continue
                for m in (fwd, rev):
                    score = int(m[placed, np.arange(w)].sum())
                    top = score if top is None or score > top else top
            best.append(top)
        hit = [b is not None and b >= threshold for b in best]
        if hit[0] != hit[1]:
            r, a = (b / scale for b in best)
            print(vid, mid, 'gained' if hit[1] else 'lost', '%.2f' % r, '%.2f' % a, abs(a - r))
"#;

#[test]
fn motif_changes_agree_with_an_independent_scan() {
    let dir = tempfile::tempdir().unwrap();
    let jaspar = shared().join("motifs/JASPAR2024_CORE_vertebrates_nonredundant.jaspar");
    // every SNV at 24 positions of real fixture sequence
    let (first, last) = (30_001u64, 30_024u64);
    let context = 35; // more than the widest JASPAR 2024 motif
    let bases = samtools_bases(
        Path::new("tests/data/fixture/genome.fa.gz"),
        &format!("chr1:{}-{}", first - context, last + context),
    );
    let mut vcf = String::from(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=60000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
    );
    let mut segments = String::new();
    for pos in first..=last {
        let at = (pos - first + context) as usize;
        let reference = bases[at].to_ascii_uppercase();
        for alt in b"ACGT".iter().filter(|&&b| b != reference) {
            let id = format!("v{pos}{}", *alt as char);
            vcf.push_str(&format!(
                "chr1\t{pos}\t{id}\t{}\t{}\t.\t.\t.\n",
                reference as char, *alt as char
            ));
            // the oracle's own context, more than the widest motif needs
            let mut alternate = bases.clone();
            alternate[at] = *alt;
            let cut = |s: &[u8]| String::from_utf8(s[at - 34..=at + 34].to_vec()).unwrap();
            segments.push_str(&format!("{id} {} {}\n", cut(&bases), cut(&alternate)));
        }
    }
    let segments_path = dir.path().join("segments.txt");
    std::fs::write(&segments_path, segments).unwrap();
    let input = dir.path().join("snvs.vcf");
    std::fs::write(&input, vcf).unwrap();
    let annotated = dir.path().join("out.vcf");
    assert_ok(&cistrack(&fixture_args(&[
        "-i",
        input.to_str().unwrap(),
        "-o",
        annotated.to_str().unwrap(),
        "--motifs",
        jaspar.to_str().unwrap(),
    ])));
    let header = std::fs::read_to_string(&annotated).unwrap();
    assert!(header.contains("##INFO=<ID=CISTRACK_MOTIFS,Number=.,Type=String,Description=\"Motifs an ALT gains or loses: 879 matrices"), "{header}");

    // what cistrack reported, read back by bcftools
    let query = bcftools(&["query", "-f", "%ID\t%INFO/CISTRACK_MOTIFS\n"], &annotated);
    let mut ours: HashMap<String, Vec<(String, String, String, String)>> = HashMap::new();
    for line in query.lines() {
        let (id, entries) = line.split_once('\t').unwrap();
        if entries == "." {
            continue;
        }
        for entry in entries.split(',') {
            let f: Vec<&str> = entry.split('|').collect();
            assert_eq!(f.len(), 7, "{entry}");
            assert!(f[6] == "+" || f[6] == "-");
            ours.entry(id.to_string()).or_default().push((
                f[1].into(),
                f[3].into(),
                f[4].into(),
                f[5].into(),
            ));
        }
    }
    // the oracle's changes, largest first
    let oracle = run_python(
        MOTIF_ORACLE,
        &[
            jaspar.to_str().unwrap(),
            "1e-4",
            segments_path.to_str().unwrap(),
        ],
    );
    // motif id, gained or lost, ref score, alt score, |alt - ref|
    type OracleChange = (String, String, String, String, f64);
    let mut theirs: HashMap<String, Vec<OracleChange>> = HashMap::new();
    for line in oracle.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        theirs.entry(f[0].into()).or_default().push((
            f[1].into(),
            f[2].into(),
            f[3].into(),
            f[4].into(),
            f[5].parse().unwrap(),
        ));
    }
    assert!(
        theirs.len() >= 10,
        "the stretch should change some motifs: {}",
        theirs.len()
    );
    assert_eq!(
        ours.keys().collect::<std::collections::BTreeSet<_>>(),
        theirs.keys().collect()
    );
    for (id, expected) in &theirs {
        let got = &ours[id];
        assert_eq!(
            got.len(),
            expected.len().min(5),
            "{id}: {got:?} vs {expected:?}"
        );
        for entry in got {
            let found = expected
                .iter()
                .find(|e| e.0 == entry.0)
                .unwrap_or_else(|| panic!("{id}: {entry:?} not in {expected:?}"));
            assert_eq!(
                (&found.1, &found.2, &found.3),
                (&entry.1, &entry.2, &entry.3),
                "{id}"
            );
        }
        // cistrack keeps the largest changes
        let smallest_kept = got
            .iter()
            .map(|e| expected.iter().find(|x| x.0 == e.0).unwrap().4)
            .fold(f64::MAX, f64::min);
        let largest_dropped = expected
            .iter()
            .filter(|x| !got.iter().any(|e| e.0 == x.0))
            .map(|x| x.4)
            .fold(0.0, f64::max);
        assert!(smallest_kept + 1e-9 >= largest_dropped, "{id}");
    }

    // --no-motifs and bad options
    let plain = cistrack(&fixture_args(&[
        "-i",
        input.to_str().unwrap(),
        "--no-motifs",
    ]));
    assert!(!assert_ok(&plain).contains("CISTRACK_MOTIFS"));
    assert_fails_with(
        &cistrack(&fixture_args(&[
            "-i",
            input.to_str().unwrap(),
            "--motifs",
            "no/such.jaspar",
        ])),
        &["cannot read motif file no/such.jaspar"],
    );
    let bad = cistrack(&fixture_args(&["--motif-p-value", "2"]));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must be a number between 0 and 1"));
}

#[test]
fn a_variant_background_gives_each_delta_its_percentile() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let precompute = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            "tests/data/fixture.toml",
            "--device",
            "cpu",
            "precompute",
            "--variant-background",
            "--cache-dir",
            cache_arg,
        ];
        args.extend_from_slice(extra);
        cistrack(&args)
    };
    // the fixture's 100 kb hold ~31 blocks: fewer substitutions than asked, with a warning
    let out = precompute(&["--variant-background-snvs", "300"]);
    assert_ok(&out);
    let log = stderr_of(&out);
    assert!(log.contains("percentiles from so few are coarse"), "{log}");
    let n: usize = log
        .split("substitutions scored")
        .next()
        .and_then(|s| s.rsplit(": ").next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count in {log}"));
    assert!((20..=40).contains(&n), "{n} substitutions");
    // a second run finds it: enough substitutions, or every block of the build visited
    for asked in ["30", "300"] {
        let again = stderr_of(&precompute(&["--variant-background-snvs", asked]));
        assert!(again.contains("already in the cache"), "{again}");
    }
    let again = stderr_of(&precompute(&["--variant-background-snvs", "300"]));
    assert!(
        again.contains("one per block of the whole build"),
        "{again}"
    );

    let with = assert_ok(&cistrack(&fixture_args(&[
        "-i",
        VARIANTS,
        "--cache-dir",
        cache_arg,
    ])));
    assert!(with.contains(&format!(
        "##cistrack_variant_background={n}_substitutions\n"
    )));
    let mut ranked: Vec<(f64, f64)> = Vec::new();
    for r in parse_vcf(&with) {
        for e in &r.entries {
            assert_eq!(e.len(), 11, "{e:?}");
            if e[3] == "." {
                assert_eq!(e[10], ".");
                continue;
            }
            let percentile: f64 = e[10].parse().unwrap();
            assert!((0.0..=100.0).contains(&percentile), "{e:?}");
            ranked.push((e[3].parse::<f64>().unwrap().abs(), percentile));
        }
    }
    assert!(ranked.len() > 10);
    // percentiles grow with |delta|
    ranked.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(ranked.windows(2).all(|w| w[0].1 <= w[1].1), "{ranked:?}");
    // without a background the field is a dot
    let without = assert_ok(&cistrack(&fixture_args(&["-i", VARIANTS])));
    assert!(without.contains("##cistrack_variant_background=none\n"));
    for r in parse_vcf(&without) {
        assert!(r.entries.iter().all(|e| e[10] == "."), "{r:?}");
    }
}
