#!/usr/bin/env python3
"""Derive the hg38 demo build's signal bigWigs from the real K562 data in ../shared/data.

The shared data have no base-resolution K562 signal for hg38, only ABC-style read counts per
candidate region (116,669 regions genome-wide, from the ENCODE BAMs named below). This writes
them as bigWigs that are piecewise constant over each candidate and zero elsewhere:

* ``k562.h3k27ac.candidates.bw``: H3K27ac reads per kb of candidate, summed over the three
  ENCODE replicates ENCFF232RQF, ENCFF600THN and ENCFF704LGA;
* ``k562.dnase.candidates.bw``: DNase-seq (ENCFF257HEE) reads per kb of candidate.

This is coarser than a coverage track (no shape inside a candidate, nothing between
candidates), so enhancer scores on this build reflect candidate-level activity, not peak shape.

Usage (``make demo`` and ``make test`` run it; it does nothing when the outputs are newer than
the inputs)::

    .venv/bin/python scripts/prepare_demo_data.py [--shared ../shared/data] [--out .cistrack/derived/hg38]
"""
import argparse
import gzip
import os
import sys

import pyBigWig

H3K27AC = ("ENCFF232RQF", "ENCFF600THN", "ENCFF704LGA")


def read_counts(path):
    rows = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            chrom, start, end, count = line.rstrip("\n").split("\t")[:4]
            rows.append((chrom, int(start), int(end), float(count)))
    return rows


def write(path, sizes, rows):
    by_chrom = {}
    for chrom, start, end, value in rows:
        by_chrom.setdefault(chrom, []).append((start, end, value))
    chroms = [(c, n) for c, n in sizes if c in by_chrom]
    tmp = path + ".tmp"
    bw = pyBigWig.open(tmp, "w")
    bw.addHeader(chroms, maxZooms=10)
    for chrom, _ in chroms:
        ivs = sorted(by_chrom[chrom])
        for (s0, e0, _), (s1, _, _) in zip(ivs, ivs[1:]):
            if s1 < e0:
                sys.exit(f"{path}: overlapping candidates on {chrom} at {s0}-{e0} and {s1}")
        bw.addEntries([chrom] * len(ivs), [s for s, _, _ in ivs], ends=[e for _, e, _ in ivs], values=[v for _, _, v in ivs])
    bw.close()
    os.replace(tmp, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=os.path.join(here, "../../shared/data"))
    parser.add_argument("--out", default=os.path.join(here, "../.cistrack/derived/hg38"))
    args = parser.parse_args()
    cand = os.path.join(args.shared, "hg38/k562/candidates")
    dnase_in = os.path.join(cand, "Enhancers.DHS.ENCFF257HEE.bam.CountReads.bedgraph.gz")
    h3_in = [os.path.join(cand, f"Enhancers.H3K27ac.{r}.bam.CountReads.bedgraph.gz") for r in H3K27AC]
    sizes_path = os.path.join(args.shared, "hg38/genome/hg38.chrom.sizes")
    inputs = [dnase_in, *h3_in, sizes_path]
    for p in inputs:
        if not os.path.exists(p):
            sys.exit(f"prepare_demo_data: missing input {p} (is ../shared/data present?)")
    os.makedirs(args.out, exist_ok=True)
    outputs = {name: os.path.join(args.out, name) for name in ("k562.h3k27ac.candidates.bw", "k562.dnase.candidates.bw")}
    newest_input = max(os.path.getmtime(p) for p in inputs + [os.path.abspath(__file__)])
    if all(os.path.exists(p) and os.path.getmtime(p) >= newest_input for p in outputs.values()):
        return
    sizes = []
    with open(sizes_path) as fh:
        for line in fh:
            name, length = line.split()[:2]
            sizes.append((name, int(length)))

    dnase = read_counts(dnase_in)
    write(outputs["k562.dnase.candidates.bw"], sizes, [(c, s, e, n * 1000.0 / (e - s)) for c, s, e, n in dnase])

    reps = [read_counts(p) for p in h3_in]
    for rep, path in zip(reps[1:], h3_in[1:]):
        if [r[:3] for r in rep] != [r[:3] for r in reps[0]]:
            sys.exit(f"{path}: candidate rows differ from {h3_in[0]}")
    summed = [(c, s, e, sum(rep[i][3] for rep in reps) * 1000.0 / (e - s)) for i, (c, s, e, _) in enumerate(reps[0])]
    write(outputs["k562.h3k27ac.candidates.bw"], sizes, summed)
    print(f"prepare_demo_data: wrote {len(dnase)} candidates per track to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
