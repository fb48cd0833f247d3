//! scATAC fragments through their tabix index, on the real chr22 fragments file
//! (`../shared/data/hg38/scatac/`, 57,115 fragments, 100 barcodes): the lines read for a region
//! are `tabix`'s own, and the cut sites per group equal an independent count (Python's gzip
//! module over the whole file, no index) for the fixture's two groups and the pseudobulk.

#[path = "support/helpers.rs"]
mod helpers;

use std::path::PathBuf;
use std::process::Command;

use cistrack::io::fragments::{Fragments, Groups, PSEUDOBULK};
use cistrack::io::tabix::TabixReader;

fn fragments_file() -> PathBuf {
    helpers::shared().join("hg38/scatac/test.fragments.tsv.gz")
}

fn groups_file() -> PathBuf {
    helpers::root().join("tests/data/scatac/groups.tsv")
}

/// The lines `tabix` itself gives for chr22 `[start0, end0)` of `path`.
fn tabix(path: &std::path::Path, start0: u64, end0: u64) -> Vec<String> {
    let out = Command::new("tabix")
        .arg(path)
        .arg(format!("chr22:{}-{end0}", start0 + 1))
        .output()
        .expect("tabix (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Regions across the file: its first fragments, dense and sparse stretches, block boundaries
/// (wide regions), one past the last fragment, one before the first.
const REGIONS: [(u64, u64); 7] = [
    (10_636_000, 10_660_000),
    (17_000_000, 17_500_000),
    (20_000_000, 20_002_000),
    (29_000_000, 33_000_000),
    (42_100_000, 42_100_100),
    (50_800_000, 50_818_468),
    (0, 10_000_000),
];

#[test]
fn lines_of_a_region_are_tabix_own() {
    let mut reader = TabixReader::open(&fragments_file()).unwrap();
    assert!(reader.index().has_sequence("chr22"));
    assert!(reader.index().zero_based, "indexed with tabix -p bed");
    let mut total = 0;
    for (start0, end0) in REGIONS {
        let expected = tabix(&fragments_file(), start0, end0);
        let mut ours = Vec::new();
        reader
            .for_each_overlapping("chr22", start0, end0, |l| ours.push(l.to_string()))
            .unwrap();
        assert_eq!(ours, expected, "chr22:{start0}-{end0}");
        total += ours.len();
    }
    assert!(total > 5_000, "the regions hold fragments: {total}");
    // a contig without fragments: nothing, no error
    let mut none = 0;
    reader
        .for_each_overlapping("chr1", 0, 1_000_000, |_| none += 1)
        .unwrap();
    assert_eq!(none, 0);
}

/// The same reader on a VCF's index (1-based, records ending where REF ends): the real HGSVC
/// indels, whose long REFs start before the regions they overlap.
#[test]
fn vcf_lines_are_tabix_own() {
    let vcf = helpers::shared().join("hg38/variants/HGSVC_chr22_17200000_17800000.vcf.gz");
    let mut reader = TabixReader::open(&vcf).unwrap();
    assert!(reader.index().vcf && !reader.index().zero_based);
    for (start0, end0) in [
        (17_200_000, 17_800_000),
        (17_404_360, 17_404_400),
        (17_409_300, 17_409_301),
        (17_404_500, 17_404_510),
        (17_432_073, 17_432_074),
    ] {
        let expected = tabix(&vcf, start0, end0);
        let mut ours = Vec::new();
        reader
            .for_each_overlapping("chr22", start0, end0, |l| ours.push(l.to_string()))
            .unwrap();
        assert_eq!(ours, expected, "chr22:{start0}-{end0}");
        assert!(!ours.is_empty(), "chr22:{start0}-{end0}");
    }
}

#[test]
fn cut_sites_per_group_equal_an_independent_count() {
    let groups = Groups::read(&groups_file()).unwrap();
    assert_eq!(groups.names, ["common", "rare"]);
    // Python: every fragment of the file, its two cut sites (start and end - 1), per group
    let script = r#"
import gzip, json, sys
path, groups_path, regions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
group = {}
for line in open(groups_path):
    if line.startswith('#') or not line.strip():
        continue
    b, g = line.rstrip('\n').split('\t')
    group[b] = g
# per group and region: {offset: cut sites} where not zero
counts = {g: [{} for _ in regions] for g in ('common', 'rare', 'all')}
for line in gzip.open(path, 'rt'):
    chrom, s, e, barcode = line.split('\t')[:4]
    for cut in (int(s), int(e) - 1):
        for i, (a, b) in enumerate(regions):
            if a <= cut < b:
                for g in ['all'] + ([group[barcode]] if barcode in group else []):
                    counts[g][i][cut - a] = counts[g][i].get(cut - a, 0) + 1
print(json.dumps(counts))
"#;
    let small: Vec<(u64, u64)> = vec![
        (10_636_000, 10_660_000),
        (17_000_000, 17_500_000),
        (29_000_000, 33_000_000),
        (42_100_000, 42_100_100),
    ];
    // the non-zero bases of a count, as Python writes them
    let sparse = |v: &[u32]| -> std::collections::BTreeMap<String, u32> {
        v.iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (i.to_string(), c))
            .collect()
    };
    let regions_json = serde_json::to_string(&small).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&helpers::run_python(
        script,
        &[
            fragments_file().to_str().unwrap(),
            groups_file().to_str().unwrap(),
            &regions_json,
        ],
    ))
    .unwrap();
    let mut by_group = Fragments::open(&fragments_file(), groups).unwrap();
    let mut pseudobulk = Fragments::open(&fragments_file(), Groups::pseudobulk()).unwrap();
    assert_eq!(pseudobulk.groups().names, [PSEUDOBULK]);
    let mut out = Vec::new();
    let (mut cuts, mut rare) = (0u64, 0u64);
    for (i, &(start0, end0)) in small.iter().enumerate() {
        by_group.cut_sites("chr22", start0, end0, &mut out).unwrap();
        for (g, name) in ["common", "rare"].iter().enumerate() {
            let want: std::collections::BTreeMap<String, u32> =
                serde_json::from_value(expected[name][i].clone()).unwrap();
            assert_eq!(out[g].len() as u64, end0 - start0);
            assert_eq!(sparse(&out[g]), want, "{name} chr22:{start0}-{end0}");
        }
        cuts += out.iter().flatten().map(|&c| u64::from(c)).sum::<u64>();
        rare += out[1].iter().map(|&c| u64::from(c)).sum::<u64>();
        pseudobulk
            .cut_sites("chr22", start0, end0, &mut out)
            .unwrap();
        let want: std::collections::BTreeMap<String, u32> =
            serde_json::from_value(expected["all"][i].clone()).unwrap();
        assert_eq!(sparse(&out[0]), want, "pseudobulk chr22:{start0}-{end0}");
    }
    assert!(
        cuts > 5_000 && rare > 20,
        "the regions hold cut sites: {cuts}, rare {rare}"
    );
}

/// Fragments per group over the whole file (the groups' depth, and the base of their
/// normalisation), against Python's count.
#[test]
fn totals_per_group_equal_an_independent_count() {
    let script = r#"
import collections, gzip, sys
group = {}
for line in open(sys.argv[2]):
    if line.startswith('#') or not line.strip():
        continue
    b, g = line.rstrip('\n').split('\t')
    group[b] = g
counts = collections.Counter()
for line in gzip.open(sys.argv[1], 'rt'):
    chrom, s, e, barcode = line.split('\t')[:4]
    counts[(group.get(barcode, '-'), chrom)] += 1
    counts[('all', chrom)] += 1
for (g, c), n in sorted(counts.items()):
    print(g, c, n)
"#;
    let expected = helpers::run_python(
        script,
        &[
            fragments_file().to_str().unwrap(),
            groups_file().to_str().unwrap(),
        ],
    );
    let mut ours = Vec::new();
    let mut by_group =
        Fragments::open(&fragments_file(), Groups::read(&groups_file()).unwrap()).unwrap();
    let totals = by_group.totals().unwrap();
    for (g, name) in by_group.groups().names.clone().iter().enumerate() {
        for (contig, n) in &totals[g] {
            ours.push(format!("{name} {contig} {n}"));
        }
    }
    let mut pseudobulk = Fragments::open(&fragments_file(), Groups::pseudobulk()).unwrap();
    for (contig, n) in &pseudobulk.totals().unwrap()[0] {
        ours.push(format!("all {contig} {n}"));
    }
    ours.sort();
    let expected: Vec<&str> = expected.lines().collect();
    assert_eq!(ours, expected);
    assert!(expected.contains(&"all chr22 57115") && expected.contains(&"rare chr22 580"));
}

#[test]
fn bad_inputs_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // no index
    let copy = dir.path().join("f.tsv.gz");
    std::fs::copy(fragments_file(), &copy).unwrap();
    let e = TabixReader::open(&copy).unwrap_err().to_string();
    assert!(e.contains("tabix -p bed") && e.contains("f.tsv.gz"), "{e}");
    // a group table with a barcode twice, and one without two columns
    let twice = dir.path().join("twice.tsv");
    std::fs::write(&twice, "AAA\tx\nBBB\ty\nAAA\ty\n").unwrap();
    let e = Groups::read(&twice).unwrap_err().to_string();
    assert!(e.contains("twice.tsv, line 3") && e.contains("AAA"), "{e}");
    let one = dir.path().join("one.tsv");
    std::fs::write(&one, "# header\nAAA x\n").unwrap();
    let e = Groups::read(&one).unwrap_err().to_string();
    assert!(e.contains("one.tsv, line 2"), "{e}");
}
