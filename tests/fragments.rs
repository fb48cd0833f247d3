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
    // a fragments line without a barcode
    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, "chr22\t100\t200\tAAA\t1\nchr22\t150\t300\n").unwrap();
    assert!(Command::new("bgzip").arg(&bad).status().unwrap().success());
    let bad = dir.path().join("bad.tsv.gz");
    assert!(Command::new("tabix")
        .args(["-p", "bed"])
        .arg(&bad)
        .status()
        .unwrap()
        .success());
    let mut out = Vec::new();
    let e = Fragments::open(&bad, Groups::pseudobulk())
        .unwrap()
        .cut_sites("chr22", 0, 1000, &mut out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.tsv.gz") && e.contains("not a fragment line"),
        "{e}"
    );
    let one = dir.path().join("one.tsv");
    std::fs::write(&one, "# header\nAAA x\n").unwrap();
    let e = Groups::read(&one).unwrap_err().to_string();
    assert!(e.contains("one.tsv, line 2"), "{e}");
}

/// A build whose accessibility is one group's cut sites (`tests/data/scatac.toml`): the build
/// reads the group's cut sites per base, its scale is the group's cut sites per base over chr22,
/// and `cistrack score` scores every window for the common group and for the rare one (1 % of
/// the fragments), with different inputs giving different scores.
#[test]
fn a_fragments_build_reads_its_group_and_scores() {
    let config_path = helpers::root().join("tests/data/scatac.toml");
    let config = cistrack::config::Config::load(&config_path).unwrap();
    let chr22_length = 50_818_468f64;
    let mut probabilities = Vec::new();
    for (build, group, fragments) in [
        ("common", 0usize, 56_535u64),
        ("rare", 1, 580),
        ("pseudobulk", 0, 57_115),
    ] {
        let b = cistrack::genome::Build::open(config.build(Some(build)).unwrap()).unwrap();
        let signal = &b.signals()[0];
        let f = signal.track.fragments().expect("a fragments track");
        assert_eq!(f.total(), fragments, "{build}");
        assert!((signal.scale - 2.0 * fragments as f64 / chr22_length).abs() < 1e-12);
        // what the model reads is the group's cut sites (checked against Python above)
        let contig = b.contigs().resolve("chr22").unwrap().clone();
        let (start0, end0) = (17_000_000u64, 17_500_000u64);
        let mut span = cistrack::genome::build::Span::default();
        b.reader()
            .unwrap()
            .read_signals(&contig, start0 as i64, end0 as i64, &mut span)
            .unwrap();
        let groups = match build {
            "pseudobulk" => Groups::pseudobulk(),
            _ => Groups::read(&groups_file()).unwrap(),
        };
        let mut counts = Vec::new();
        Fragments::open(&fragments_file(), groups)
            .unwrap()
            .cut_sites("chr22", start0, end0, &mut counts)
            .unwrap();
        let expected: Vec<f32> = counts[group].iter().map(|&c| c as f32).collect();
        assert_eq!(span.accessibility, expected, "{build}");
        assert!(span.accessibility.iter().any(|&v| v > 0.0), "{build}");
        // a contig without fragments reads as zeros
        let chr1 = b.contigs().resolve("chr1").unwrap().clone();
        b.reader()
            .unwrap()
            .read_signals(&chr1, 1_000_000, 1_002_000, &mut span)
            .unwrap();
        assert!(span.accessibility.iter().all(|&v| v == 0.0));
        // scored end to end
        let out = helpers::cistrack(&[
            "--quiet",
            "--config",
            config_path.to_str().unwrap(),
            "--build",
            build,
            "--device",
            "cpu",
            "score",
            "--region",
            "chr22:17,400,001-17,440,000",
            "--no-cache",
            "--windows",
            "-",
            "-o",
            "/dev/null",
        ]);
        let text = helpers::assert_ok(&out);
        let p: Vec<f64> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("track"))
            .map(|l| l.split('\t').nth(3).unwrap().parse().unwrap())
            .collect();
        assert_eq!(p.len(), 200, "{build}");
        probabilities.push(p);
    }
    assert_ne!(
        probabilities[0], probabilities[1],
        "common and rare read different inputs"
    );
}

#[test]
fn fragments_config_errors_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let write = |body: &str| {
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!("[builds.x]\nfasta = \"a.fa\"\n[builds.x.signals.{body}\n"),
        )
        .unwrap();
        cistrack::config::Config::load(&path)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let e = write("h3k27ac]\nfragments = \"f.tsv.gz\"");
    assert!(e.contains("can only feed accessibility"), "{e}");
    let e = write("accessibility]\nbigwig = \"a.bw\"\ngroups = \"g.tsv\"");
    assert!(e.contains("go with `fragments`"), "{e}");
    let e = write("accessibility]\nassay = \"ATAC\"");
    assert!(e.contains("one of `bigwig"), "{e}");
    // a group the table does not have
    let config = dir.path().join("g.toml");
    std::fs::write(
        &config,
        format!(
            "[builds.x]\nfasta = \"{}\"\n[builds.x.signals.accessibility]\nfragments = \"{}\"\ngroups = \"{}\"\ngroup = \"nope\"\n",
            helpers::shared().join("hg38/genome/hg38.partial.fa.gz").display(),
            fragments_file().display(),
            groups_file().display()
        ),
    )
    .unwrap();
    let config = cistrack::config::Config::load(&config).unwrap();
    let e = cistrack::genome::Build::open(config.build(Some("x")).unwrap()).unwrap_err();
    let chain = cistrack::error::chain(&e);
    assert!(
        chain.contains("group \"nope\" is not in the group table"),
        "{chain}"
    );
}

/// The daemon says which cell group a fragments build reads and how deep it is: in
/// `/v1/builds` and in every `/enhancers` answer (the rare group: 580 fragments).
#[test]
fn the_daemon_reports_the_group_and_its_depth() {
    let mut command = helpers::cistrack_command();
    command.args([
        "--config",
        "tests/data/scatac.toml",
        "--device",
        "cpu",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--no-disk-cache",
    ]);
    let d = helpers::Daemon::start(command);
    let get = |path: &str| {
        let (status, body) =
            helpers::http_get(d.addr, path, std::time::Duration::from_secs(120)).unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let builds = get("/v1/builds");
    let by_name = |name: &str| {
        builds["builds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_name("rare")["single_cell"],
        serde_json::json!({"file": "test.fragments.tsv.gz", "fragments": 580, "group": "rare",
                           "groups": ["common", "rare"],
                           "fragments_by_group": {"common": 56535, "rare": 580}})
    );
    assert_eq!(
        by_name("pseudobulk")["single_cell"]["groups"],
        serde_json::json!(["all"])
    );
    let view = "ref=chr22&start=17400000&end=17410000&wait=60000";
    let answer = get(&format!("/v1/builds/rare/enhancers?{view}"));
    assert_eq!(answer["single_cell"]["fragments"], 580);
    assert_eq!(answer["complete"], true);
    assert_eq!(answer["windows"].as_array().unwrap().len(), 50);
    // another group of the same file from one build: group= gives what that group's own build gives
    let common = get(&format!("/v1/builds/common/enhancers?{view}"));
    let asked = get(&format!("/v1/builds/common/enhancers?{view}&group=rare"));
    assert_eq!(asked["single_cell"]["group"], "rare");
    assert_eq!(asked["windows"], answer["windows"]);
    assert_ne!(asked["windows"], common["windows"]);
    let back = get(&format!("/v1/builds/rare/enhancers?{view}&group=common"));
    assert_eq!(back["windows"], common["windows"]);
    // a group the table lacks, and a build without fragments
    let (status, body) = helpers::http_get(
        d.addr,
        &format!("/v1/builds/common/enhancers?{view}&group=nope"),
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("no cell group") && body.contains("common, rare"),
        "{body}"
    );
    let mut fixture = helpers::cistrack_command();
    fixture.args(helpers::FIXTURE_SERVE);
    let f = helpers::Daemon::start(fixture);
    let (status, body) = helpers::http_get(
        f.addr,
        "/v1/builds/fixture/enhancers?ref=chr1&start=0&end=1000&group=rare",
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("reads no scATAC fragments"), "{body}");
}
