"""Real K562 inputs of the enhancer-gene link model (EPInformer design), without PyTorch.

Usage (from ``models/training``)::

    python -m cistrack_training.link_data --config configs/link-0.1.0.json

writes ``runs/<name>/data/dataset.npz`` and ``dataset.json`` (counts and coverage). Everything is
built from the files named in the config (``LINK_DEFAULTS["data"]``), all under ``../shared/data``:

* **Genes**: the 18,377 genes of ``GeneList.TSS1kb.bed`` (TSS +- 500 bp windows, name = Ensembl
  ID). The TSS coordinate is the window's start + 500 (ABC's convention: the gene start for ``+``,
  the gene end for ``-``). Genes are joined by Ensembl ID to the 12-fold leave-chromosome-out split.
* **Expression**: ``log10(1 + TPM)``, TPM summed over the K562 CAGE peaks (ENCODE, TPM >= 1; the
  only CAGE file with hg38 coordinates) on the gene's strand whose summit lies in
  ``[tss - 500, tss + 500)``; 0 when there is none.
* **Candidates**: the 116,669 ABC-style K562 candidate regions (``candidates`` file, DHS
  ``CountReads`` bedgraph). Per gene, the candidates whose midpoint ``(start + end) // 2`` lies
  within ``max_distance`` (100 kb) of the TSS, excluding those that overlap the core promoter
  ``[tss - 500, tss + 500)``, nearest first (ties by start), at most ``max_candidates`` (60).
* **Per-element features** (:data:`FEATURES`; ``models/CONTRACT.md``, "Link models"): what the
  daemon computes from a build's ``candidates`` file and its ``accessibility`` / ``h3k27ac``
  bigWigs. Here the bigWigs are the ones ``scripts/prepare_demo_data.py`` derives (reads per kb of
  candidate, piecewise constant over candidates, zero elsewhere), computed from the same counts.
* **Contact**: the ABC power law relative to its value at ``min_distance`` (5 kb); on chr22, K562
  Hi-C (ENCFF621AIY, 5 kb bins, from the ABC chr22 run's per-pair tables) where the pair's bins
  are listed there (``use_hic``).
* **Sequence**: 2-kb windows centred on the element (TSS for the promoter) from
  ``hg38.partial.fa.gz``, kept only when the window lies inside one of ``loci.bed``'s real blocks
  with at most 1 % non-ACGT bases; every other element is sequence-masked.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import encode
from .config import data_path, resolve
from .link_config import load_link_config

FEATURES = ("distance", "contact", "activity", "accessibility", "h3k27ac")
"""Per-element feature order (last axis of ``promoter_features`` / ``candidate_features``)."""
SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}
"""Codes of the per-fold split matrix."""
N_FOLDS = 12


def log(message: str) -> None:
    """Print a progress line with a timestamp (flushed, for ``nohup`` logs)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _open_text(path: Path):
    return gzip.open(path, "rt") if str(path).endswith(".gz") else open(path)


# ---------------------------------------------------------------------------------------------
# Candidates and their signals


@dataclass
class Candidates:
    """Candidate regions with per-candidate signal, grouped by chromosome, sorted by start.

    Attributes
    ----------
    chrom : numpy.ndarray
        ``(N,)`` chromosome names (``<U8``).
    start, end : numpy.ndarray
        ``(N,)`` 0-based half-open coordinates (int64).
    accessibility, h3k27ac : numpy.ndarray
        ``(N,)`` reads per kb of candidate (float64): ``count * 1000 / (end - start)``, H3K27ac
        summed over replicates, as ``scripts/prepare_demo_data.py`` writes them to the bigWigs.
    """

    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray
    accessibility: np.ndarray
    h3k27ac: np.ndarray

    def __post_init__(self):
        self.by_chrom: dict[str, tuple[int, int]] = {}
        for c in dict.fromkeys(self.chrom.tolist()):
            idx = np.nonzero(self.chrom == c)[0]
            lo, hi = int(idx[0]), int(idx[-1]) + 1
            if hi - lo != len(idx):
                raise ValueError(f"candidates of {c} are not contiguous")
            if np.any(np.diff(self.start[lo:hi]) < 0):
                raise ValueError(f"candidates of {c} are not sorted by start")
            if np.any(self.start[lo + 1 : hi] < self.end[lo : hi - 1]):
                raise ValueError(f"candidates of {c} overlap")
            self.by_chrom[c] = (lo, hi)

    def __len__(self) -> int:
        return len(self.start)

    def chrom_slice(self, chrom: str) -> slice:
        """Rows of ``chrom`` (empty when it has no candidate)."""
        lo, hi = self.by_chrom.get(chrom, (0, 0))
        return slice(lo, hi)


def read_bedgraph_counts(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read a ``chrom start end count`` (bgzipped) bedgraph into arrays, in file order."""
    chroms, starts, ends, counts = [], [], [], []
    with _open_text(Path(path)) as fh:
        for line in fh:
            if not line.strip() or line.startswith(("#", "track")):
                continue
            f = line.rstrip("\n").split("\t")
            chroms.append(f[0])
            starts.append(int(f[1]))
            ends.append(int(f[2]))
            counts.append(float(f[3]))
    return (
        np.array(chroms),
        np.array(starts, dtype=np.int64),
        np.array(ends, dtype=np.int64),
        np.array(counts, dtype=np.float64),
    )


def read_candidates(regions: Path, accessibility: list[Path], h3k27ac: list[Path]) -> Candidates:
    """Candidate regions and their per-kb signals (replicates summed).

    Raises
    ------
    ValueError
        When a count file's regions differ from ``regions``.
    """
    chrom, start, end, _ = read_bedgraph_counts(regions)
    length = (end - start).astype(np.float64)
    if np.any(length <= 0):
        raise ValueError(f"{regions}: empty candidate region")
    signals = {}
    for name, paths in (("accessibility", accessibility), ("h3k27ac", h3k27ac)):
        total = np.zeros(len(start))
        for p in paths:
            c, s, e, n = read_bedgraph_counts(p)
            if not (np.array_equal(c, chrom) and np.array_equal(s, start) and np.array_equal(e, end)):
                raise ValueError(f"{p}: candidate rows differ from {regions}")
            total += n
        signals[name] = total * 1000.0 / length
    return Candidates(chrom, start, end, signals["accessibility"], signals["h3k27ac"])


def track_mean(start: np.ndarray, end: np.ndarray, value: np.ndarray) -> float:
    """Mean over covered bases of a piecewise-constant track (bigWig ``sumData / basesCovered``)."""
    length = (end - start).astype(np.float64)
    return float(np.sum(value * length) / np.sum(length))


def window_mean(start: np.ndarray, end: np.ndarray, value: np.ndarray, lo: int, hi: int) -> float:
    """Zero-filled mean of a piecewise-constant track over ``[lo, hi)``.

    ``start``/``end``/``value`` are one chromosome's sorted, non-overlapping intervals; bases not
    covered by any interval count as 0 (as the enhancer encoding reads bigWigs).
    """
    if hi <= lo:
        raise ValueError(f"empty window {lo}-{hi}")
    i = int(np.searchsorted(end, lo, side="right"))
    total = 0.0
    while i < len(start) and start[i] < hi:
        overlap = min(end[i], hi) - max(start[i], lo)
        if overlap > 0:
            total += overlap * value[i]
        i += 1
    return total / (hi - lo)


def powerlaw_contact(distance, gamma: float, min_distance: int = 5000):
    """ABC power-law contact relative to its value at ``min_distance`` (so it is 1 up to there).

    ``((min_distance + 1) / (max(distance, min_distance) + 1)) ** gamma``; ABC's
    ``exp(scale - gamma * ln(max(d, min_distance) + 1))`` divided by its value at
    ``min_distance``, so the ABC ``scale`` cancels.
    """
    d = np.maximum(np.asarray(distance, dtype=np.float64), float(min_distance))
    return ((min_distance + 1.0) / (d + 1.0)) ** gamma


def powerlaw_reference(gamma: float, scale: float, min_distance: int = 5000) -> float:
    """ABC's absolute power-law contact at ``min_distance`` (divides Hi-C values into our scale)."""
    return math.exp(scale - gamma * math.log(min_distance + 1.0))


def element_features(distance, contact, accessibility_norm, h3k27ac_norm) -> np.ndarray:
    """The per-element feature vector (:data:`FEATURES`), float32 on the last axis.

    Parameters
    ----------
    distance : array_like
        ``|element midpoint - TSS|`` in bp (0 for the promoter).
    contact : array_like
        Relative contact (:func:`powerlaw_contact`, or Hi-C divided by the power law's value at
        ``min_distance``).
    accessibility_norm, h3k27ac_norm : array_like
        Mean signal over the element divided by the track's mean over covered bases.

    Returns
    -------
    numpy.ndarray
        ``[..., 5]``: ``log1p(distance / 1000)``, ``contact``, ``log1p(sqrt(a * h))``,
        ``log1p(a)``, ``log1p(h)``, computed in float64 and cast to float32.
    """
    d = np.asarray(distance, dtype=np.float64)
    a = np.maximum(np.asarray(accessibility_norm, dtype=np.float64), 0.0)
    h = np.maximum(np.asarray(h3k27ac_norm, dtype=np.float64), 0.0)
    c = np.asarray(contact, dtype=np.float64)
    out = np.stack([np.log1p(d / 1000.0), c, np.log1p(np.sqrt(a * h)), np.log1p(a), np.log1p(h)], axis=-1)
    return out.astype(np.float32)


def select_candidates(
    tss: int,
    start: np.ndarray,
    end: np.ndarray,
    max_distance: int = 100_000,
    max_candidates: int = 60,
    promoter_exclusion: int = 500,
) -> np.ndarray:
    """Indices of one gene's candidates, nearest first.

    Parameters
    ----------
    tss : int
        TSS coordinate.
    start, end : numpy.ndarray
        One chromosome's candidates, sorted by start.
    max_distance : int
        Keep candidates whose midpoint ``(start + end) // 2`` is at most this far from the TSS.
    max_candidates : int
        Keep at most this many (the nearest).
    promoter_exclusion : int
        Drop candidates overlapping ``[tss - promoter_exclusion, tss + promoter_exclusion)``: the
        promoter token covers them.

    Returns
    -------
    numpy.ndarray
        int64 indices into ``start``, sorted by distance, then by start.
    """
    mid = (start + end) // 2
    distance = np.abs(mid - tss)
    overlaps = (start < tss + promoter_exclusion) & (end > tss - promoter_exclusion)
    keep = np.nonzero((distance <= max_distance) & ~overlaps)[0]
    order = np.lexsort((start[keep], distance[keep]))
    return keep[order][:max_candidates]


# ---------------------------------------------------------------------------------------------
# Genes, split, expression


@dataclass
class Genes:
    """The genes with TSS, strand and fold assignment.

    Attributes
    ----------
    ensid, chrom, strand : numpy.ndarray
        ``(G,)`` strings.
    tss : numpy.ndarray
        ``(G,)`` int64 TSS coordinates.
    split : numpy.ndarray
        ``(G, 12)`` int8 codes (:data:`SPLIT_CODES`) of folds 1-12.
    symbol : numpy.ndarray
        ``(G,)`` gene names from the split file.
    """

    ensid: np.ndarray
    chrom: np.ndarray
    strand: np.ndarray
    tss: np.ndarray
    split: np.ndarray
    symbol: np.ndarray

    def __len__(self) -> int:
        return len(self.tss)


def read_genes(genes_tss: Path, split_csv: Path) -> Genes:
    """Genes of the TSS +- 500 bp file joined with the fold table by Ensembl ID.

    Raises
    ------
    ValueError
        When a gene of the TSS file is missing from the split, or a split row is not
        ``train``/``valid``/``test``, or the chromosomes disagree.
    """
    with _open_text(split_csv) as fh:
        split_rows = {r["ENSID"]: r for r in csv.DictReader(fh)}
    ensid, chrom, strand, tss, split, symbol = [], [], [], [], [], []
    with _open_text(genes_tss) as fh:
        for line in fh:
            f = line.rstrip("\n").split("\t")
            row = split_rows.get(f[3])
            if row is None:
                raise ValueError(f"{genes_tss}: gene {f[3]} is not in {split_csv}")
            if "chr" + row["chrom"] != f[0]:
                raise ValueError(f"gene {f[3]}: chromosome {f[0]} but the split says {row['chrom']}")
            ensid.append(f[3])
            chrom.append(f[0])
            strand.append(f[5])
            tss.append(int(f[1]) + 500)
            try:
                split.append([SPLIT_CODES[row[f"fold_{k}"]] for k in range(1, N_FOLDS + 1)])
            except KeyError as e:
                raise ValueError(f"gene {f[3]}: unknown split value {e}") from None
            symbol.append(row.get("Gene name", ""))
    return Genes(
        np.array(ensid),
        np.array(chrom),
        np.array(strand),
        np.array(tss, dtype=np.int64),
        np.array(split, dtype=np.int8),
        np.array(symbol),
    )


def gene_expression(genes: Genes, cage_bed: Path, window: int = 500) -> np.ndarray:
    """``log10(1 + TPM)`` per gene: CAGE TPM summed over same-strand peak summits near the TSS.

    The peak file is BED9 + summit (0-based) + TPM.
    """
    peaks: dict[tuple[str, str], list[tuple[int, float]]] = {}
    with _open_text(cage_bed) as fh:
        for line in fh:
            f = line.rstrip("\n").split("\t")
            peaks.setdefault((f[0], f[5]), []).append((int(f[9]), float(f[10])))
    index = {}
    for key, rows in peaks.items():
        rows.sort()
        pos = np.array([r[0] for r in rows], dtype=np.int64)
        cum = np.concatenate([[0.0], np.cumsum([r[1] for r in rows])])
        index[key] = (pos, cum)
    tpm = np.zeros(len(genes))
    for i in range(len(genes)):
        entry = index.get((str(genes.chrom[i]), str(genes.strand[i])))
        if entry is None:
            continue
        pos, cum = entry
        lo = np.searchsorted(pos, genes.tss[i] - window, side="left")
        hi = np.searchsorted(pos, genes.tss[i] + window, side="left")
        tpm[i] = cum[hi] - cum[lo]
    return np.log10(1.0 + tpm).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Sequence and Hi-C


class SequenceBlocks:
    """Real-sequence blocks of ``hg38.partial.fa.gz`` held in memory.

    Parameters
    ----------
    fasta : pathlib.Path
        The partial genome (faidx-indexed).
    loci : pathlib.Path
        ``loci.bed``; blocks whose kind (``name`` before ``|``) is in ``kinds`` are loaded,
        overlapping blocks merged.
    kinds : sequence of str
        ``true_hg38`` and/or ``lifted_hg19``.
    """

    def __init__(self, fasta: Path, loci: Path, kinds=("true_hg38", "lifted_hg19")):
        blocks: dict[str, list[list[int]]] = {}
        with open(loci) as fh:
            for line in fh:
                if line.startswith("#") or not line.strip():
                    continue
                chrom, start, end, name = line.rstrip("\n").split("\t")[:4]
                if name.split("|")[0] in kinds:
                    blocks.setdefault(chrom, []).append([int(start), int(end)])
        reader = encode.FastaReader(fasta)
        self.blocks: dict[str, list[tuple[int, int, bytes]]] = {}
        for chrom, ivs in blocks.items():
            ivs.sort()
            merged = [ivs[0]]
            for s, e in ivs[1:]:
                if s <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], e)
                else:
                    merged.append([s, e])
            self.blocks[chrom] = [(s, e, reader.fetch(chrom, s, e)) for s, e in merged]

    def bases(self) -> int:
        """Total bases held."""
        return sum(e - s for ivs in self.blocks.values() for s, e, _ in ivs)

    def window(self, chrom: str, start0: int, end0: int, max_n_fraction: float) -> bytes | None:
        """``[start0, end0)`` when it lies inside one block with few enough non-ACGT bases."""
        for s, e, seq in self.blocks.get(chrom, []):
            if s <= start0 and end0 <= e:
                out = seq[start0 - s : end0 - s]
                acgt = int(encode.one_hot(out).sum())
                if (len(out) - acgt) / len(out) <= max_n_fraction:
                    return out
                return None
        return None


def read_hic(paths: list[Path], resolution: int = 5000) -> dict[tuple[str, int, int], float]:
    """Hi-C contact per (chrom, lower bin, upper bin) from ABC per-pair tables.

    Reads ``test_pred_df.tsv`` (columns ``enh_midpoint``, ``TargetGeneTSS``, ``hic_contact``) and
    ``EnhancerPredictionsAllPutative*.tsv`` (``start``, ``end``, ``TargetGeneTSS``,
    ``hic_contact``); the bins are ``position // resolution`` of the element midpoint and the TSS.
    The first table wins where both list a bin pair (they agree to 5e-7 on the 49 shared pairs).
    """
    out: dict[tuple[str, int, int], float] = {}
    for path in paths:
        with _open_text(path) as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                value = r.get("hic_contact", "")
                if value in ("", "NA", "nan"):
                    continue
                if "enh_midpoint" in r:
                    mid = float(r["enh_midpoint"])
                else:
                    mid = (int(r["start"]) + int(r["end"])) / 2.0
                a, b = int(mid) // resolution, int(float(r["TargetGeneTSS"])) // resolution
                out.setdefault((r["chr"], min(a, b), max(a, b)), float(value))
    return out


# ---------------------------------------------------------------------------------------------
# The dataset


HALFLIFE_WIDTH = 8
HALFLIFE_COLUMNS = (
    "UTR5LEN_log10zscore", "CDSLEN_log10zscore", "INTRONLEN_log10zscore", "UTR3LEN_log10zscore",
    "UTR5GC", "CDSGC", "UTR3GC", "ORFEXONDENSITY",
)


def read_halflife(path: Path) -> dict[str, np.ndarray]:
    """EPInformer's mRNA half-life features by Ensembl gene id (GC fractions and exon density
    as given; density divided by 10 to keep it near the others' range)."""
    out = {}
    with _open_text(path) as fh:
        for r in csv.DictReader(fh):
            try:
                v = np.array([float(r[c]) for c in HALFLIFE_COLUMNS], dtype=np.float32)
            except (KeyError, ValueError):
                continue
            v[7] /= 10.0
            out[r["gene_id"]] = v
    return out


def build_dataset(config: dict) -> tuple[dict[str, np.ndarray], dict]:
    """Build every gene's promoter and candidate inputs.

    Returns
    -------
    tuple
        ``(arrays, summary)``: arrays for ``dataset.npz`` (see :func:`save_dataset`) and a JSON
        summary of counts and coverage.
    """
    feat = config["features"]
    t0 = time.time()
    genes = read_genes(data_path(config, "genes_tss"), data_path(config, "split"))
    log(f"genes: {len(genes):,} with 12-fold split")
    expression = gene_expression(genes, data_path(config, "cage"), feat["expression_window"])
    log(f"expression: {np.mean(expression > 0):.1%} of genes have a CAGE peak (TPM >= 1)")

    def paths(key):
        return [resolve(config["data_dir"]) / p for p in config["data"][key]]

    cands = read_candidates(data_path(config, "candidates"), paths("accessibility"), paths("h3k27ac"))
    scale_a = track_mean(cands.start, cands.end, cands.accessibility)
    scale_h = track_mean(cands.start, cands.end, cands.h3k27ac)
    log(f"candidates: {len(cands):,}; track means accessibility {scale_a:.4f}, h3k27ac {scale_h:.4f}")

    gamma = float(feat["powerlaw"]["gamma"])
    min_d = int(feat["powerlaw"]["min_distance"])
    hic = {}
    hic_reference = None
    if feat["use_hic"]:
        hic = read_hic(paths("hic"), feat["hic_resolution"])
        hic_reference = powerlaw_reference(gamma, float(feat["powerlaw"]["scale"]), min_d)
        log(f"Hi-C: {len(hic):,} bin pairs (chr22 only); divided by {hic_reference:.6f}")

    blocks = None
    L = int(feat["sequence_length"])
    if feat["use_sequence"]:
        blocks = SequenceBlocks(
            data_path(config, "fasta"), data_path(config, "loci"), feat["sequence_blocks"]
        )
        log(f"sequence blocks: {blocks.bases():,} bp of real sequence")
    sequences: list[bytes] = []
    seq_index: dict[tuple[str, int], int] = {}

    def sequence_of(chrom: str, centre: int) -> int:
        if blocks is None:
            return -1
        key = (chrom, centre)
        if key not in seq_index:
            s = blocks.window(chrom, centre - L // 2, centre - L // 2 + L, feat["max_n_fraction"])
            seq_index[key] = -1 if s is None else len(sequences)
            if s is not None:
                sequences.append(s)
        return seq_index[key]

    G, C, F = len(genes), int(feat["max_candidates"]), len(FEATURES)
    cand_index = np.full((G, C), -1, dtype=np.int32)
    cand_distance = np.zeros((G, C), dtype=np.int64)
    cand_contact = np.zeros((G, C), dtype=np.float64)
    cand_is_hic = np.zeros((G, C), dtype=bool)
    cand_features = np.zeros((G, C, F), dtype=np.float32)
    cand_seq = np.full((G, C), -1, dtype=np.int32)
    prom_features = np.zeros((G, F), dtype=np.float32)
    prom_seq = np.full(G, -1, dtype=np.int32)
    prom_signal = np.zeros((G, 2), dtype=np.float64)
    half = int(feat["promoter_window"])
    res = int(feat["hic_resolution"])
    for g in range(G):
        chrom, tss = str(genes.chrom[g]), int(genes.tss[g])
        sl = cands.chrom_slice(chrom)
        st, en = cands.start[sl], cands.end[sl]
        pa = window_mean(st, en, cands.accessibility[sl], tss - half, tss + half) / scale_a
        ph = window_mean(st, en, cands.h3k27ac[sl], tss - half, tss + half) / scale_h
        prom_signal[g] = (pa, ph)
        prom_features[g] = element_features(0, 1.0, pa, ph)
        prom_seq[g] = sequence_of(chrom, tss)
        local = select_candidates(tss, st, en, feat["max_distance"], C, feat["promoter_exclusion"])
        n = len(local)
        if n == 0:
            continue
        idx = local + (sl.start or 0)
        mid = (cands.start[idx] + cands.end[idx]) // 2
        dist = np.abs(mid - tss)
        contact = powerlaw_contact(dist, gamma, min_d)
        if hic:
            tbin = tss // res
            for j, m in enumerate(mid):
                key = (chrom, min(int(m) // res, tbin), max(int(m) // res, tbin))
                if key in hic:
                    contact[j] = hic[key] / hic_reference
                    cand_is_hic[g, j] = True
        cand_index[g, :n] = idx
        cand_distance[g, :n] = dist
        cand_contact[g, :n] = contact
        cand_features[g, :n] = element_features(
            dist, contact, cands.accessibility[idx] / scale_a, cands.h3k27ac[idx] / scale_h
        )
        cand_seq[g, :n] = [sequence_of(chrom, int(m)) for m in mid]
        if (g + 1) % 5000 == 0:
            log(f"genes {g + 1:,}/{G:,}")
    n_cand = (cand_index >= 0).sum(1)
    seq_array = (
        np.frombuffer(b"".join(sequences), dtype=np.uint8).reshape(len(sequences), L)
        if sequences
        else np.zeros((0, L), dtype=np.uint8)
    )
    if feat.get("halflife"):
        # EPInformer's promoter features: 8 mRNA half-life features per gene (by Ensembl id),
        # and a 9th that says whether the gene has them; appended to the promoter's features
        # (the candidates get zeros there). An experiment of the training pipeline: the runtime
        # does not compute these (see models/README.md).
        table = read_halflife(data_path(config, "halflife"))
        extra = np.zeros((G, HALFLIFE_WIDTH + 1), dtype=np.float32)
        for g, e in enumerate(genes.ensid):
            row = table.get(str(e))
            if row is not None:
                extra[g, :HALFLIFE_WIDTH] = row
                extra[g, HALFLIFE_WIDTH] = 1.0
        prom_features = np.concatenate([prom_features, extra], axis=1)
        cand_features = np.concatenate(
            [cand_features, np.zeros((G, C, HALFLIFE_WIDTH + 1), dtype=np.float32)], axis=2
        )
        log(f"mRNA half-life features for {int(extra[:, -1].sum()):,} of {G:,} genes")
    arrays = {
        "ensid": genes.ensid,
        "symbol": genes.symbol,
        "chrom": genes.chrom,
        "strand": genes.strand,
        "tss": genes.tss,
        "split": genes.split,
        "expression": expression,
        "promoter_features": prom_features,
        "promoter_signal": prom_signal,
        "promoter_sequence": prom_seq,
        "candidate_index": cand_index,
        "candidate_distance": cand_distance,
        "candidate_contact": cand_contact,
        "candidate_is_hic": cand_is_hic,
        "candidate_features": cand_features,
        "candidate_sequence": cand_seq,
        "sequences": seq_array,
        "cand_chrom": cands.chrom,
        "cand_start": cands.start,
        "cand_end": cands.end,
        "cand_accessibility": cands.accessibility,
        "cand_h3k27ac": cands.h3k27ac,
        "track_means": np.array([scale_a, scale_h]),
    }
    valid = cand_index >= 0
    with_seq_gene = (prom_seq >= 0) | np.any(cand_seq >= 0, axis=1)
    summary = {
        "genes": int(G),
        "genes_with_cage_peak": int(np.sum(expression > 0)),
        "candidates": int(len(cands)),
        "track_means": {"accessibility": scale_a, "h3k27ac": scale_h},
        "candidates_per_gene": {
            "mean": float(n_cand.mean()),
            "median": float(np.median(n_cand)),
            "zero": int(np.sum(n_cand == 0)),
            "at_max": int(np.sum(n_cand == C)),
        },
        "gene_candidate_pairs": int(valid.sum()),
        "pairs_with_hic": int(cand_is_hic.sum()),
        "sequence": {
            "unique_windows": int(len(sequences)),
            "promoters_with_sequence": int(np.sum(prom_seq >= 0)),
            "candidate_slots_with_sequence": int(np.sum(cand_seq >= 0)),
            "candidate_slots_total": int(valid.sum()),
            "genes_with_any_sequence": int(with_seq_gene.sum()),
            "blocks": list(feat["sequence_blocks"]) if feat["use_sequence"] else [],
        },
        "seconds": time.time() - t0,
    }
    return arrays, summary


def save_dataset(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the dataset arrays as one ``.npz`` (strings as fixed-width unicode)."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_dataset(path: Path) -> dict[str, np.ndarray]:
    """Read :func:`save_dataset`'s file into a plain ``dict``."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def dataset_path(config: dict, run_dir: Path | None = None) -> Path:
    """``runs/<name>/data/dataset.npz``."""
    run_dir = run_dir or resolve(config["runs_dir"]) / config["name"]
    return run_dir / "data" / "dataset.npz"


def ensure_dataset(config: dict, run_dir: Path) -> dict[str, np.ndarray]:
    """Load the run's dataset, building it first when it does not exist."""
    path = dataset_path(config, run_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays, summary = build_dataset(config)
        save_dataset(path, arrays)
        (path.parent / "dataset.json").write_text(json.dumps(summary, indent=2) + "\n")
        log(f"wrote {path} ({summary['seconds']:.0f} s): {json.dumps(summary['sequence'])}")
    return load_dataset(path)


# ---------------------------------------------------------------------------------------------
# CRISPRi benchmark


@dataclass
class CrisprPairs:
    """CRISPRi element-gene pairs mapped onto the dataset's genes.

    Attributes
    ----------
    gene : numpy.ndarray
        ``(P,)`` row of the gene in the dataset.
    chrom, start, end : numpy.ndarray
        Element coordinates (0-based half-open).
    regulated : numpy.ndarray
        ``(P,)`` bool, the benchmark's ``Regulated``.
    distance : numpy.ndarray
        ``|element midpoint - dataset TSS|`` in bp.
    dataset : numpy.ndarray
        Source study.
    dropped : dict
        How many benchmark rows were left out, and why.
    """

    gene: np.ndarray
    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray
    regulated: np.ndarray
    distance: np.ndarray
    dataset: np.ndarray
    dropped: dict

    def __len__(self) -> int:
        return len(self.gene)


def read_crispri(path: Path, data: dict[str, np.ndarray], max_distance: int = 100_000) -> CrisprPairs:
    """Benchmark pairs whose gene is in the dataset and whose element is within ``max_distance``.

    The distance is measured from the element midpoint to the dataset's TSS for the gene (the
    one the model saw), not the benchmark's own ``distanceToTSS``.
    """
    row_of = {str(e): i for i, e in enumerate(data["ensid"])}
    out: dict[str, list] = {
        k: [] for k in ("gene", "chrom", "start", "end", "regulated", "distance", "dataset")
    }
    dropped = {"gene_not_in_dataset": 0, "other_chromosome": 0, "beyond_max_distance": 0}
    total = 0
    with _open_text(path) as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            total += 1
            g = row_of.get(r["measuredGeneEnsemblId"])
            if g is None:
                dropped["gene_not_in_dataset"] += 1
                continue
            if r["chrom"] != str(data["chrom"][g]):
                dropped["other_chromosome"] += 1
                continue
            s, e = int(r["chromStart"]), int(r["chromEnd"])
            d = abs((s + e) // 2 - int(data["tss"][g]))
            if d > max_distance:
                dropped["beyond_max_distance"] += 1
                continue
            for k, v in zip(
                out,
                (g, r["chrom"], s, e, r["Regulated"].upper() == "TRUE", d, r["Dataset"]),
                strict=True,
            ):
                out[k].append(v)
    dropped["benchmark_rows"] = total
    return CrisprPairs(
        np.array(out["gene"], dtype=np.int64),
        np.array(out["chrom"]),
        np.array(out["start"], dtype=np.int64),
        np.array(out["end"], dtype=np.int64),
        np.array(out["regulated"], dtype=bool),
        np.array(out["distance"], dtype=np.int64),
        np.array(out["dataset"]),
        dropped,
    )


def pair_slots(pairs: CrisprPairs, data: dict[str, np.ndarray]) -> list[np.ndarray]:
    """For each pair, the gene's candidate slots (0..59) whose region overlaps the element."""
    cs, ce = data["cand_start"], data["cand_end"]
    out = []
    for p in range(len(pairs)):
        idx = data["candidate_index"][pairs.gene[p]]
        valid = idx >= 0
        slots = np.nonzero(valid)[0]
        ci = idx[slots]
        hit = (cs[ci] < pairs.end[p]) & (ce[ci] > pairs.start[p])
        out.append(slots[hit])
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Build the link model's K562 dataset.")
    parser.add_argument("--config", type=Path, help="run config JSON (merged over the link defaults)")
    parser.add_argument("--run-dir", type=Path, help="default: <runs_dir>/<name>")
    parser.add_argument("--force", action="store_true", help="rebuild even when the dataset exists")
    args = parser.parse_args(argv)
    config = load_link_config(args.config)
    run_dir = args.run_dir or resolve(config["runs_dir"]) / config["name"]
    path = dataset_path(config, run_dir)
    if args.force and path.exists():
        path.unlink()
    ensure_dataset(config, run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
