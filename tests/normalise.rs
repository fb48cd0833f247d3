//! Indel normalisation against `bcftools norm -f FASTA -m -any` on real hg38 sequence: the real
//! HGSVC indels of chr22:17.2-17.8 Mb, and every 1-3 bp deletion and duplication-insertion
//! written at each position of a real 4-kb stretch (so that repeats of every period occur).
//! `variant::left_align` of each allele must give the edit bcftools writes.

#[path = "support/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use cistrack::annotate::variant::{left_align, trim};

/// Bases the test reads: chr22 from `START0` (0-based) on.
const START0: u64 = 17_200_000;
const END0: u64 = 17_800_000;

fn fasta() -> std::path::PathBuf {
    helpers::shared().join("hg38/genome/hg38.partial.fa.gz")
}

/// chr22 `[START0, END0)` from the FASTA, by samtools (the independent reader).
fn region_bases() -> Vec<u8> {
    let bases = helpers::samtools_bases(&fasta(), &format!("chr22:{}-{}", START0 + 1, END0));
    assert_eq!(bases.len() as u64, END0 - START0);
    bases
}

/// `(id, 1-based POS, REF, ALT)` records: the HGSVC file's (one per ALT) and the generated ones.
fn records(bases: &[u8]) -> Vec<(String, u64, String, String)> {
    let hgsvc = helpers::shared().join("hg38/variants/HGSVC_chr22_17200000_17800000.vcf.gz");
    let query = helpers::bcftools(&["query", "-f", "%POS\\t%REF\\t%ALT\\n"], &hgsvc);
    let mut records = Vec::new();
    for (i, line) in query.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        for (j, alt) in f[2].split(',').enumerate() {
            records.push((
                format!("hgsvc{i}.{j}"),
                f[0].parse().unwrap(),
                f[1].into(),
                alt.into(),
            ));
        }
    }
    // 17 records, several of them multi-allelic
    assert_eq!(records.iter().filter(|r| r.0.ends_with(".0")).count(), 17);
    assert!(records.len() > 17);
    // a real stretch at 17,404,001-17,408,000 (1-based), written in every right-shifted way
    let text = |from: u64, to: u64| {
        String::from_utf8(bases[(from - START0) as usize..(to - START0) as usize].to_vec()).unwrap()
    };
    for p in 17_404_000..17_408_000u64 {
        // p is 0-based: the anchor base is p - 1
        for k in 1..=3 {
            let anchor = text(p - 1, p);
            let deleted = text(p - 1, p + k);
            let copied = text(p, p + k);
            records.push((format!("del{p}.{k}"), p, deleted, anchor.clone()));
            records.push((
                format!("dup{p}.{k}"),
                p,
                anchor.clone(),
                format!("{anchor}{copied}"),
            ));
        }
    }
    records
}

#[test]
fn left_alignment_agrees_with_bcftools_norm() {
    let bases = region_bases();
    let records = records(&bases);
    // the input VCF, sorted by position
    let mut vcf = String::from(
        "##fileformat=VCFv4.2\n##contig=<ID=chr22,length=50818468>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
    );
    let mut sorted: Vec<_> = records.iter().collect();
    sorted.sort_by_key(|r| r.1);
    for (id, pos, reference, alternate) in &sorted {
        vcf.push_str(&format!(
            "chr22\t{pos}\t{id}\t{reference}\t{alternate}\t.\t.\t.\n"
        ));
    }
    let mut child = Command::new("bcftools")
        .args(["norm", "--no-version", "-m", "-any", "-f"])
        .arg(fasta())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(vcf.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // bcftools' edits by record id (it re-sorts what it moves)
    let mut normalised: HashMap<String, (u64, u64, Vec<u8>)> = HashMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        if line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let pos: u64 = f[1].parse().unwrap();
        let e = trim(pos - 1, f[3].as_bytes(), f[4].as_bytes());
        let edit = (
            e.start0,
            e.reference_length,
            e.alternate.to_ascii_uppercase(),
        );
        assert!(
            normalised.insert(f[2].to_string(), edit).is_none(),
            "{line}"
        );
    }
    assert_eq!(normalised.len(), records.len());

    let fetch = |s: u64, e: u64, out: &mut Vec<u8>| -> Result<(), String> {
        out.clear();
        if s < START0 {
            return Err(format!("{s} is before the bases the test read"));
        }
        out.extend_from_slice(&bases[(s - START0) as usize..(e - START0) as usize]);
        Ok(())
    };
    let (mut moved, mut checked) = (0, 0);
    for (id, pos, reference, alternate) in &records {
        let edit = trim(pos - 1, reference.as_bytes(), alternate.as_bytes());
        let ours = left_align(&edit, fetch).unwrap();
        let ours = (
            ours.start0,
            ours.reference_length,
            ours.alternate.to_ascii_uppercase(),
        );
        assert_eq!(
            &ours, &normalised[id],
            "{id}: POS {pos} REF {reference} ALT {alternate}"
        );
        moved += usize::from(ours.0 != edit.start0);
        checked += 1;
    }
    eprintln!("{moved} of {checked} alleles left-aligned, as bcftools norm did");
    // the generated set moves thousands of alleles; bcftools moved 2 HGSVC records too
    assert!(moved > 1000, "{moved} of {checked} alleles moved");
    let hgsvc_moved = records
        .iter()
        .filter(|r| r.0.starts_with("hgsvc"))
        .filter(|(id, pos, reference, alternate)| {
            normalised[id].0 != trim(pos - 1, reference.as_bytes(), alternate.as_bytes()).start0
        })
        .count();
    assert_eq!(hgsvc_moved, 2);
}
