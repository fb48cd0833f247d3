#!/usr/bin/env python3
"""Writes the small VCF and BED fixtures of tests/annotate.rs (run from the repository root).

REF alleles come from the fixture genome (tests/data/fixture/genome.fa.gz) through
`samtools faidx`, so every "matching" REF really matches. Six records are real HGSVC indels
(../shared/data/hg38/variants/HGSVC_chr22_17200000_17800000.vcf.gz) moved onto the fixture's
chr1, which is hg38 chr22:17,400,001-17,460,000: POS - 17,400,000, alleles unchanged.
"""
import gzip
import subprocess

GENOME = "tests/data/fixture/genome.fa.gz"
HGSVC = "../shared/data/hg38/variants/HGSVC_chr22_17200000_17800000.vcf.gz"
OFFSET = 17_400_000


def ref(contig, pos, length=1):
    out = subprocess.run(
        ["samtools", "faidx", GENOME, f"{contig}:{pos}-{pos + length - 1}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return "".join(out.splitlines()[1:])


def other(base):
    return {"A": "G", "C": "T", "G": "A", "T": "C"}[base.upper()]


def hgsvc():
    records = {}
    with gzip.open(HGSVC, "rt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            pos = int(fields[1])
            if OFFSET < pos < OFFSET + 60_000:
                records[pos - OFFSET] = (fields[3], fields[4])
    return records


def main():
    real = hgsvc()
    rows = []

    def row(contig, pos, id_, reference, alternate, info=".", qual="50", filt="PASS", gt="0/1"):
        rows.append("\t".join([contig, str(pos), id_, reference, alternate, qual, filt, info, "GT", gt]))

    a = ref("chr1", 1005)
    row("chr1", 1005, "snv", a, other(a), info="DP=10")
    c = ref("chr1", 5001)
    alts = [b for b in "ACGT" if b != c.upper()][:2]
    row("chr1", 5001, "multi", c, ",".join(alts), info="DP=7;AF=0.1,0.2", gt="1/2")
    m = ref("chr1", 5003, 3)
    row("chr1", 5003, "mnv", m, other(m[0]) + other(m[1]) + m[2])
    i = ref("chr1", 10001)
    row("chr1", 10001, "ins", i, i + "ACGTACGT")
    d = ref("chr1", 12001, 11)
    row("chr1", 12001, "del", d, d[0])
    for pos in sorted(real):
        reference, alternate = real[pos]
        row("chr1", pos, f"hgsvc{pos + OFFSET}", reference, alternate, info="NS=1")
    x = ref("chr1", 20001)
    row("chr1", 20001, "mismatch", other(x), x)
    x = ref("chr1", 21001)
    row("chr1", 21001, "sym", x, "<DEL>", info="SVTYPE=DEL;END=21500")
    x = ref("chr1", 22001)
    row("chr1", 22001, "star", x, f"{other(x)},*", gt="1/2")
    x = ref("chr1", 23001)
    row("chr1", 23001, "bnd", x, f"{x}]chr2:100]", info="SVTYPE=BND")
    row("chr9", 100, "unknown", "A", "G")
    row("chr2", 23501, "alln_refn", "N", "A")
    row("chr2", 23601, "alln_refa", "A", "G")
    x = ref("chr1", 30001)
    row("1", 30001, "alias", x, other(x))
    x = ref("chr1", 40001)
    row("chr1", 40001, "noalt", x, ".", gt="0/0")
    row("chr1", 60001, "oob", "A", "G")
    x = ref("chr2", 100)
    row("chr2", 100, "contig_start", x, other(x))
    x = ref("chr2", 21900)
    row("chr2", 21900, "near_gap", x, other(x))
    x = ref("chr1", 50001)
    row("chr1", 50001, "unsorted", x, other(x), qual=".", filt=".")

    header = [
        "##fileformat=VCFv4.2",
        "##source=tests/data/annotate/make_fixtures.py",
        "##contig=<ID=chr1,length=60000>",
        "##contig=<ID=chr2,length=40000>",
        "##contig=<ID=1,length=60000>",
        "##contig=<ID=chr9,length=1000>",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">',
        '##INFO=<ID=NS,Number=1,Type=Integer,Description="Samples with data">',
        '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">',
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End position">',
        '##ALT=<ID=DEL,Description="Deletion">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1",
    ]
    with open("tests/data/annotate/variants.vcf", "w") as f:
        f.write("\n".join(header + rows) + "\n")

    bed = [
        'track name=fixture description="cistrack annotate fixture"',
        "#chrom\tstart\tend\tname",
        "chr1\t1000\t1500\tone_window_pair",
        "chr1\t17000\t19000\tbed6\t0\t+",
        "chr1\t2000\t2600\tbed12\t0\t+\t2000\t2600\t0\t1\t600,\t0,",
        "chr2\t23000\t23200\tall_n",
        "chr2\t21500\t23500\tpartly_n",
        "2\t30000\t30400\talias",
        "chrZ\t1\t100\tunknown",
        "chr1\t59900\t60100\tpast_end",
        "chr1\t500\t500\tempty",
        "# a comment between records",
        "chr1\t100\t300",
    ]
    with open("tests/data/annotate/intervals.bed", "w") as f:
        f.write("\n".join(bed) + "\n")


if __name__ == "__main__":
    main()
