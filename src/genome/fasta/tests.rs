use super::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixture/genome.fa.gz")
}

#[test]
fn test_fetch() {
    let mut reader = Reader::open(&fixture()).unwrap();
    let seq = reader.fetch(&Region::new("chr1", 0, 60).unwrap()).unwrap();
    assert_eq!(&seq[..20], b"TTATTTATATATCATAGTTG"); // hg38 chr22:17,400,001-17,400,020
    let seq = reader
        .fetch(&Region::new("chr2", 21_995, 22_005).unwrap())
        .unwrap();
    assert_eq!(&seq[5..], b"NNNNN");
    let seq = reader
        .fetch(&Region::new("chr2", 39_990, 40_000).unwrap())
        .unwrap();
    assert_eq!(seq.len(), 10);
}

#[test]
fn test_fetch_errors() {
    let mut reader = Reader::open(&fixture()).unwrap();
    let err = reader
        .fetch(&Region::new("chr9", 0, 10).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::UnknownContig { .. }), "{err}");
    let err = reader
        .fetch(&Region::new("chr2", 39_995, 40_001).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, Error::OutOfBounds { length: 40_000, .. }),
        "{err}"
    );
}

/// `samtools faidx FASTA REGION...`: the sequences, line breaks removed.
fn samtools(fasta: &Path, regions: &[Region]) -> Vec<Vec<u8>> {
    let out = std::process::Command::new("samtools")
        .arg("faidx")
        .arg(fasta)
        .args(
            regions
                .iter()
                .map(|r| format!("{}:{}-{}", r.name(), r.start0() + 1, r.end0())),
        )
        .output()
        .expect("samtools (installed by scripts/setup.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split('>')
        .skip(1)
        .map(|record| record.lines().skip(1).collect::<String>().into_bytes())
        .collect()
}

/// A small deterministic generator, so that failures reproduce.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Random FASTAs (several sequences, line widths 1 to 80, LF or CRLF, lowercase and N
/// runs), plain and bgzip (blocks of 64 KiB, so that reads cross blocks), indexed by
/// samtools: every random region reads as samtools reads it, and as the sequence written.
#[test]
fn fetch_agrees_with_samtools_on_random_fastas() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(12);
    for (case, (width, crlf)) in [(60, false), (1, false), (7, true), (80, false), (13, true)]
        .into_iter()
        .enumerate()
    {
        let mut text = Vec::new();
        let mut sequences = Vec::new();
        for s in 0..3 {
            let length = [1, 150_000, 777][s] + rng.below(50) as usize;
            let bases: Vec<u8> = (0..length)
                .map(|i| {
                    if (i / 1000) % 7 == 3 {
                        b'N'
                    } else {
                        b"ACGTacgt"[rng.below(8) as usize]
                    }
                })
                .collect();
            text.extend_from_slice(format!(">seq{s} description\n").as_bytes());
            for line in bases.chunks(width) {
                text.extend_from_slice(line);
                text.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            sequences.push((format!("seq{s}"), bases));
        }
        let plain = dir.path().join(format!("case{case}.fa"));
        std::fs::write(&plain, &text).unwrap();
        let bgz = dir.path().join(format!("case{case}.fa.gz"));
        let compressed = std::process::Command::new("bgzip")
            .args(["-c"])
            .arg(&plain)
            .output()
            .unwrap();
        std::fs::write(&bgz, compressed.stdout).unwrap();
        for path in [&plain, &bgz] {
            let status = std::process::Command::new("samtools")
                .arg("faidx")
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let mut regions = Vec::new();
        for (name, bases) in &sequences {
            let n = bases.len() as u64;
            regions.push(Region::new(name, 0, n).unwrap());
            for _ in 0..20 {
                let start = rng.below(n);
                let end = (start + 1 + rng.below(70_000)).min(n);
                regions.push(Region::new(name, start, end).unwrap());
            }
        }
        let expected = samtools(&bgz, &regions);
        for path in [&plain, &bgz] {
            let mut reader = Reader::open(path).unwrap();
            for (region, want) in regions.iter().zip(&expected) {
                let got = reader.fetch(region).unwrap();
                assert!(got == *want, "{} {region}", path.display());
                let (_, bases) = sequences.iter().find(|(n, _)| n == region.name()).unwrap();
                assert!(
                    got == bases[region.start0() as usize..region.end0() as usize],
                    "{region}"
                );
            }
        }
    }
}

/// The real partial hg38 (bgzip): regions in real blocks, across a block's edge, in N and
/// at a contig's end read as samtools reads them.
#[test]
fn fetch_agrees_with_samtools_on_real_hg38() {
    let fasta =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/hg38/genome/hg38.partial.fa.gz");
    if !fasta.exists() {
        eprintln!("skipped: {} is missing (make data)", fasta.display());
        return;
    }
    let regions: Vec<Region> = [
        ("chr22", 17_200_000, 17_260_000),
        ("chr22", 17_400_000, 17_400_020),
        ("chr2", 2_300_000, 2_400_000),
        ("chr6", 30_000_000, 30_010_000),
        ("chr1", 0, 10_500),
        ("chrX", 156_040_000, 156_040_895),
        ("chr17", 42_600_000, 42_700_000),
    ]
    .iter()
    .map(|(n, s, e)| Region::new(*n, *s, *e).unwrap())
    .collect();
    let expected = samtools(&fasta, &regions);
    let mut reader = Reader::open(&fasta).unwrap();
    for (region, want) in regions.iter().zip(&expected) {
        assert!(reader.fetch(region).unwrap() == *want, "{region}");
    }
}

/// Damage is reported with the file and region, never as wrong bases: a FASTA edited after
/// indexing, a corrupted BGZF block, a truncated .gzi.
#[test]
fn damaged_files_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("a.fa");
    std::fs::write(&plain, ">a\nACGTACGTAC\nGTACGTACGT\nAC\n").unwrap();
    std::fs::write(dir.path().join("a.fa.fai"), "a\t22\t3\t10\t11\n").unwrap();
    let mut reader = Reader::open(&plain).unwrap();
    assert_eq!(
        reader.fetch(&Region::new("a", 8, 12).unwrap()).unwrap(),
        b"ACGT"
    );
    // a line made longer after indexing: the newline lands inside the read
    std::fs::write(&plain, ">a\nACGTACGTACG\nTACGTACGT\nAC\n").unwrap();
    let mut reader = Reader::open(&plain).unwrap();
    let err = reader.fetch(&Region::new("a", 5, 15).unwrap()).unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        chain.contains("a.fa") && chain.contains("does not match its .fai"),
        "{chain}"
    );

    let bgz = dir.path().join("b.fa.gz");
    std::fs::copy(fixture(), &bgz).unwrap();
    std::fs::copy(sibling(&fixture(), ".fai"), sibling(&bgz, ".fai")).unwrap();
    std::fs::copy(sibling(&fixture(), ".gzi"), sibling(&bgz, ".gzi")).unwrap();
    let mut bytes = std::fs::read(&bgz).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&bgz, &bytes).unwrap();
    let mut reader = Reader::open(&bgz).unwrap();
    let failed = ["chr1", "chr2"].iter().any(|name| {
        let length = reader.index[*name].length;
        reader
            .fetch(&Region::new(*name, 0, length).unwrap())
            .is_err_and(|e| {
                let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
                assert!(
                    chain.contains("b.fa.gz") && chain.contains("BGZF block"),
                    "{chain}"
                );
                true
            })
    });
    assert!(failed, "a corrupted block must fail a read of every base");

    std::fs::write(sibling(&bgz, ".gzi"), [1u8, 0, 0, 0, 0, 0, 0, 0, 9]).unwrap();
    let err = Reader::open(&bgz).unwrap_err();
    assert!(
        matches!(err, Error::Compression { .. }) && err.to_string().contains(".gzi"),
        "{err}"
    );
}

#[test]
fn test_open_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.fa");
    assert!(matches!(Reader::open(&missing), Err(Error::Io { .. })));

    let plain = dir.path().join("plain.fa");
    std::fs::write(&plain, ">a\nACGT\n").unwrap();
    let err = Reader::open(&plain).unwrap_err();
    assert!(matches!(err, Error::MissingIndex { .. }), "{err}");
    assert!(
        !dir.path().join("plain.fa.fai").exists(),
        "must never create an index"
    );

    std::fs::write(dir.path().join("plain.fa.fai"), "a\t4\t3\t4\t5\n").unwrap();
    let mut reader = Reader::open(&plain).unwrap();
    assert_eq!(
        reader.fetch(&Region::new("a", 1, 3).unwrap()).unwrap(),
        b"CG"
    );

    let gz = dir.path().join("gzip.fa.gz");
    let mut encoder = std::process::Command::new("gzip")
        .arg("-c")
        .arg(&plain)
        .output()
        .unwrap();
    std::fs::write(&gz, std::mem::take(&mut encoder.stdout)).unwrap();
    std::fs::write(dir.path().join("gzip.fa.gz.fai"), "a\t4\t3\t4\t5\n").unwrap();
    let err = Reader::open(&gz).unwrap_err();
    assert!(
        err.to_string().contains("not with bgzip") || err.to_string().contains("not bgzip"),
        "{err}"
    );

    let bgz = dir.path().join("bgzf.fa.gz");
    std::fs::copy(fixture(), &bgz).unwrap();
    std::fs::copy(sibling(&fixture(), ".fai"), sibling(&bgz, ".fai")).unwrap();
    let err = Reader::open(&bgz).unwrap_err();
    assert!(err.to_string().contains(".gzi"), "{err}");
}
