"""Labelled enhancer windows from every source the enhancer models train on.

Four sources, each a :class:`SourceSet` of 2,000-bp windows with per-base read counts:

``simulated``
    The simulator (:mod:`cistrack_training.simulate`): real GRCh38 background, real JASPAR sites,
    simulated H3K27ac/accessibility coverage and labels.
``ienhancer``
    The iEnhancer training set (Liu et al. 2016, hg19): 200-bp enhancers / non-enhancers placed at
    the centre of an all-``N`` window; only the sequence modality is available.
``k562_sequence``
    K562 candidate elements (ABC candidate list, genome-wide) whose window lies inside real
    sequence of ``hg38.partial.fa.gz`` (``loci.bed``, both block kinds), plus background windows
    from those blocks with no candidate; all three modalities.
``k562_signal``
    K562 candidate elements anywhere else: no real sequence, so the sequence modality is masked.

K562 signals are real read counts per candidate (DNase ENCFF257HEE; H3K27ac replicate
ENCFF704LGA), the only K562 signal the data folder has. Each read is placed at a uniformly random
base of its candidate (seeded), so a window's binned signal is the candidate's read density plus
sampling noise, and Poisson downsampling is exact (each read kept with probability ``f``). The
track scale is the genome-wide density ``sum(reads) / sum(candidate bp)``, which is what a bigWig
of per-candidate density (``scripts/prepare_demo_data.py``) reports as its mean over covered bases.

The K562 label is ABC's activity, ``sqrt(DNase RPM x H3K27ac RPM)``, computed with the *other two*
H3K27ac replicates (ENCFF232RQF, ENCFF600THN): a candidate is an active enhancer (label 1) when it
does not overlap a TSS +-250 bp and its activity is in the top ``positive_quantile`` of such
distal candidates genome-wide. Promoter candidates, weaker distal candidates and background
windows are negatives. The accessibility input and the label share the DNase experiment.

Splits are by chromosome for every source at once (``sources.split`` in the config).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import encode
from .config import DEFAULTS, data_path, merge, resolve
from .simulate import CLASSES as SIM_CLASSES
from .simulate import Simulator, coverage_scale, encode_counts, read_blocks, thin

SOURCES = ("simulated", "ienhancer", "k562_sequence", "k562_signal")
SPLITS = ("train", "validation", "test")
K562_CLASSES = ("active_distal", "weak_distal", "promoter", "background")
IENHANCER_CLASSES = ("non_enhancer", "enhancer")
W = encode.WINDOW_LENGTH

_TRAIN = {
    "batch_size": 32,
    "weight_decay": 0.01,
    "min_lr_fraction": 0.05,
    "grad_clip": 1.0,
    "modality_dropout": 0.25,
    "downsampled_fraction": 0.7,
    "coverage_fractions": [0.5, 0.25, 0.1, 0.05, 0.01],
}
SOURCE_DEFAULTS = {
    # merged over config.DEFAULTS by defaults(); see configs/enhancer-0.2.0.json
    "data": {
        "ienhancer_enhancers": "benchmarks/ienhancer/original_enhancer_train.fa.gz",
        "ienhancer_non_enhancers": "benchmarks/ienhancer/original_non_enhancer_train.fa.gz",
        "k562_dnase": "hg38/k562/candidates/Enhancers.DHS.ENCFF257HEE.bam.CountReads.bedgraph.gz",
        "k562_h3k27ac_input": "hg38/k562/candidates/Enhancers.H3K27ac.ENCFF704LGA.bam.CountReads.bedgraph.gz",
        "k562_h3k27ac_label": [
            "hg38/k562/candidates/Enhancers.H3K27ac.ENCFF232RQF.bam.CountReads.bedgraph.gz",
            "hg38/k562/candidates/Enhancers.H3K27ac.ENCFF600THN.bam.CountReads.bedgraph.gz",
        ],
        "k562_tss500": "hg38/k562/abc_reference/CollapsedGeneBounds.hg38.TSS500bp.bed.gz",
    },
    "sources": {
        "use": list(SOURCES),
        "split": {
            "train": [
                "chr2",
                "chr3",
                "chr4",
                "chr5",
                "chr6",
                "chr7",
                "chr10",
                "chr11",
                "chr12",
                "chr13",
                "chr14",
                "chr15",
                "chr18",
                "chr19",
                "chr20",
                "chr21",
                "chrX",
            ],
            "validation": ["chr9", "chr16", "chr17"],
            "test": ["chr1", "chr8", "chr22"],
        },
        "windows": {"simulated": {"train": 2500, "validation": 300, "test": 400}},
        "ienhancer": {"max_windows": {"train": None, "validation": None, "test": None}},
        "k562": {
            "positive_quantile": 0.75,
            "centre_jitter": 250,
            "max_n_fraction": 0.01,
            "windows": {
                "k562_sequence": {"train": 100000, "validation": 300, "test": 400},
                "k562_signal": {"train": 3000, "validation": 300, "test": 500},
            },
            "background_windows": {"train": 150, "validation": 40, "test": 60},
            "train_class_shares": {"active_distal": 0.45, "weak_distal": 0.35, "promoter": 0.2},
        },
    },
    "init": {
        "teacher": "runs/enhancer-0.1.0/teacher/best.pt",
        "motifs": "runs/enhancer-0.1.0/motifs/motif.pt",
    },
    "roles": ["teacher", "student", "scratch", "finetune", "cnn"],
    "teacher": {"epochs": 3, "lr": 5.0e-4, "warmup_steps": 100},
    "student": {"epochs": 3, "lr": 1.0e-3, "warmup_steps": 150},
    "scratch": {**_TRAIN, "epochs": 3, "lr": 1.0e-3, "warmup_steps": 150},
    "finetune": {**_TRAIN, "epochs": 1, "lr": 2.0e-4, "warmup_steps": 50},
    "cnn": {
        **_TRAIN,
        "epochs": 3,
        "lr": 1.0e-3,
        "warmup_steps": 100,
        "model": {"channels": 128, "signal_channels": 64, "hidden": 128, "dropout": 0.3},
    },
    "evaluation": {"coverage_seeds": 5, "reference_models": {}},
}


def defaults() -> dict:
    """The enhancer defaults (:data:`config.DEFAULTS`) with :data:`SOURCE_DEFAULTS` merged over them."""
    return merge(DEFAULTS, SOURCE_DEFAULTS)


@dataclass
class SourceSet:
    """Windows of one source and split.

    ``scale_mode`` is ``"coverage"`` (scale = the split's mean over covered bases, thinned
    analytically; simulated tracks) or ``"density"`` (scale = ``track_scale * fraction``;
    per-candidate density tracks).
    """

    source: str
    split: str
    classes: list[str]
    sequence: np.ndarray  # uint8 (n, 2000)
    counts: np.ndarray  # uint16 (n, 2, 2000)
    label: np.ndarray  # float32 (n,)
    klass: np.ndarray  # int8 (n,), index into classes
    available: np.ndarray  # float32 (n, 3)
    chrom: np.ndarray  # str (n,)
    start0: np.ndarray  # int64 (n,)
    scale_mode: str = "coverage"
    track_scale: np.ndarray = field(default_factory=lambda: np.ones(2))

    def __len__(self) -> int:
        return len(self.label)

    def has_signal(self) -> bool:
        """Whether any window has a signal modality."""
        return bool(self.available[:, 1:].any())

    def scales(self, fraction: float = 1.0) -> np.ndarray:
        """Track scales ``(2,)`` at a coverage fraction."""
        if self.scale_mode == "density":
            return np.asarray(self.track_scale, dtype=np.float64) * fraction
        out = np.ones(2)
        for t in range(2):
            if self.counts[:, t].any():
                out[t] = coverage_scale(self.counts[:, t], fraction)
        return out

    def save(self, path: str | Path) -> None:
        """Write to a compressed ``.npz``."""
        np.savez_compressed(
            path,
            source=np.array(self.source),
            split=np.array(self.split),
            classes=np.array(self.classes),
            sequence=self.sequence,
            counts=self.counts,
            label=self.label,
            klass=self.klass,
            available=self.available,
            chrom=self.chrom.astype(str),
            start0=self.start0,
            scale_mode=np.array(self.scale_mode),
            track_scale=self.track_scale,
        )

    @classmethod
    def load(cls, path: str | Path) -> SourceSet:
        """Read a set written by :meth:`save`."""
        with np.load(path) as z:
            return cls(
                source=str(z["source"]),
                split=str(z["split"]),
                classes=[str(c) for c in z["classes"]],
                sequence=z["sequence"],
                counts=z["counts"],
                label=z["label"],
                klass=z["klass"],
                available=z["available"],
                chrom=z["chrom"],
                start0=z["start0"],
                scale_mode=str(z["scale_mode"]),
                track_scale=z["track_scale"],
            )


def split_of(chrom: str, split: dict[str, list[str]]) -> str | None:
    """The split a chromosome belongs to (``chr`` prefix and case ignored), or None."""
    key = chrom.lower().removeprefix("chr")
    for name, chroms in split.items():
        if key in {c.lower().removeprefix("chr") for c in chroms}:
            return name
    return None


def check_split(split: dict[str, list[str]]) -> None:
    """Raise if two splits share a chromosome."""
    seen: dict[str, str] = {}
    for name, chroms in split.items():
        for c in chroms:
            key = c.lower().removeprefix("chr")
            if key in seen:
                raise ValueError(f"chromosome {c} is in both {seen[key]} and {name}")
            seen[key] = name


# ----------------------------------------------------------------------------------------------
# simulated


def simulated(config: dict, split: str) -> SourceSet:
    """Simulated windows of a split (chromosomes from ``simulation.split``)."""
    n = int(config["sources"]["windows"]["simulated"][split])
    sim = Simulator(config).generate(split, n)
    for c in sim.chromosomes:
        if split_of(c, config["sources"]["split"]) != split:
            raise ValueError(f"simulation split {split} uses {c}, which sources.split puts elsewhere")
    return SourceSet(
        source="simulated",
        split=split,
        classes=list(SIM_CLASSES),
        sequence=sim.sequence,
        counts=sim.counts,
        label=sim.label.astype(np.float32),
        klass=sim.klass.astype(np.int8),
        available=np.ones((len(sim), 3), dtype=np.float32),
        chrom=np.asarray(sim.chrom, dtype=str),
        start0=sim.start0.astype(np.int64),
    )


# ----------------------------------------------------------------------------------------------
# iEnhancer


def read_fasta_gz(path: Path) -> list[tuple[str, bytes]]:
    """Records of a (b)gzipped FASTA as ``(header, sequence)``."""
    out: list[tuple[str, bytes]] = []
    name, parts = None, []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(b">"):
                if name is not None:
                    out.append((name, b"".join(parts)))
                name, parts = line[1:].decode(), []
            elif line:
                parts.append(line)
    if name is not None:
        out.append((name, b"".join(parts)))
    return out


def parse_ienhancer_header(header: str) -> tuple[str, int, int]:
    """``CHR<n>_<start0>_<end>`` -> ``("chr<n>", start0, end)`` (hg19)."""
    fields = header.split("_")
    if len(fields) != 3 or not fields[0].upper().startswith("CHR"):
        raise ValueError(f"unexpected iEnhancer header {header!r}")
    return "chr" + fields[0][3:], int(fields[1]), int(fields[2])


def ienhancer(config: dict) -> dict[str, SourceSet]:
    """IEnhancer windows for every split: the 200-bp sequence centred in an ``N`` window."""
    cfg = config["sources"]["ienhancer"]
    split = config["sources"]["split"]
    rows: dict[str, list] = {s: [] for s in SPLITS}
    for label, key in ((1, "ienhancer_enhancers"), (0, "ienhancer_non_enhancers")):
        path = data_path(config, key)
        for header, seq in read_fasta_gz(path):
            chrom, start0, end = parse_ienhancer_header(header)
            if end - start0 != len(seq):
                raise ValueError(f"{path}: {header} spans {end - start0} bp but has {len(seq)} bases")
            s = split_of(chrom, split)
            if s is not None:
                rows[s].append((chrom, start0, end, seq, label))
    out = {}
    for s in SPLITS:
        rng = np.random.default_rng([int(config["seed"]), 11, SPLITS.index(s)])
        items = rows[s]
        limit = cfg["max_windows"].get(s)
        if limit is not None and len(items) > limit:
            items = [items[i] for i in sorted(rng.choice(len(items), int(limit), replace=False))]
        n = len(items)
        sequence = np.full((n, W), ord("N"), dtype=np.uint8)
        for i, (_, _, _, seq, _) in enumerate(items):
            lo = (W - len(seq)) // 2
            sequence[i, lo : lo + len(seq)] = np.frombuffer(seq, dtype=np.uint8)
        label = np.array([r[4] for r in items], dtype=np.float32)
        available = np.zeros((n, 3), dtype=np.float32)
        available[:, 0] = 1.0
        out[s] = SourceSet(
            source="ienhancer",
            split=s,
            classes=list(IENHANCER_CLASSES),
            sequence=sequence,
            counts=np.zeros((n, 2, W), dtype=np.uint16),
            label=label,
            klass=label.astype(np.int8),
            available=available,
            chrom=np.array([r[0] for r in items], dtype=str),
            start0=np.array([r[1] - (W - (r[2] - r[1])) // 2 for r in items], dtype=np.int64),
        )
    return out


# ----------------------------------------------------------------------------------------------
# K562 candidates


@dataclass
class Candidates:
    """The genome-wide K562 candidate list with its counts (0-based half-open)."""

    chrom: np.ndarray
    start: np.ndarray
    end: np.ndarray
    dnase: np.ndarray
    h3k27ac_input: np.ndarray
    h3k27ac_label: np.ndarray  # (n, r) replicates used for the label
    promoter: np.ndarray
    activity: np.ndarray
    klass: np.ndarray  # index into K562_CLASSES (never background)


def _read_counts(path: Path) -> tuple[list[tuple[str, int, int]], np.ndarray]:
    keys, values = [], []
    with gzip.open(path, "rt") as fh:
        for line_no, line in enumerate(fh, 1):
            f = line.rstrip("\n").split("\t")
            if len(f) < 4:
                raise ValueError(f"{path}:{line_no}: expected chrom, start, end, count")
            keys.append((f[0], int(f[1]), int(f[2])))
            values.append(float(f[3]))
    return keys, np.asarray(values)


def _overlaps_any(chrom: np.ndarray, start: np.ndarray, end: np.ndarray, intervals: dict) -> np.ndarray:
    out = np.zeros(len(chrom), dtype=bool)
    for c in np.unique(chrom):
        if c not in intervals:
            continue
        s, e = intervals[c]
        sel = np.where(chrom == c)[0]
        # an interval [s_j, e_j) overlaps [a, b) iff s_j < b and e_j > a; intervals sorted by start
        idx = np.searchsorted(s, end[sel], side="left")  # intervals starting before b: [0, idx)
        running_max = np.maximum.accumulate(e) if len(e) else e
        ok = idx > 0
        out[sel[ok]] = running_max[idx[ok] - 1] > start[sel[ok]]
    return out


def read_bed_intervals(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A BED file as per-chromosome sorted ``(starts, ends)`` arrays (header lines skipped)."""
    per: dict[str, list[tuple[int, int]]] = {}
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        for line in fh:
            f = line.split("\t")
            if len(f) < 3 or not f[1].strip().isdigit():
                continue
            per.setdefault(f[0], []).append((int(f[1]), int(f[2])))
    return {
        c: (np.array([a for a, _ in sorted(v)]), np.array([b for _, b in sorted(v)])) for c, v in per.items()
    }


def read_candidates(config: dict) -> Candidates:
    """Candidates with counts, promoter flags, label activity and class."""
    cfg = config["sources"]["k562"]
    keys, dnase = _read_counts(data_path(config, "k562_dnase"))
    k2, h_in = _read_counts(data_path(config, "k562_h3k27ac_input"))
    if k2 != keys:
        raise ValueError("the H3K27ac input counts list other candidates than the DNase counts")
    label_reps = []
    for name in config["data"]["k562_h3k27ac_label"]:
        p = Path(name) if Path(name).is_absolute() else resolve(config["data_dir"]) / name
        k3, v = _read_counts(p)
        if k3 != keys:
            raise ValueError(f"{p}: lists other candidates than the DNase counts")
        label_reps.append(v)
    h_label = np.stack(label_reps, axis=1)
    chrom = np.array([k[0] for k in keys])
    start = np.array([k[1] for k in keys], dtype=np.int64)
    end = np.array([k[2] for k in keys], dtype=np.int64)
    tss = read_bed_intervals(data_path(config, "k562_tss500"))
    promoter = _overlaps_any(chrom, start, end, tss)
    rpm = lambda v: v / v.sum() * 1e6  # noqa: E731
    activity = np.sqrt(rpm(dnase) * np.mean([rpm(h_label[:, r]) for r in range(h_label.shape[1])], axis=0))
    cut = float(np.quantile(activity[~promoter], cfg["positive_quantile"]))
    klass = np.where(promoter, K562_CLASSES.index("promoter"), K562_CLASSES.index("weak_distal"))
    klass[(~promoter) & (activity >= cut)] = K562_CLASSES.index("active_distal")
    return Candidates(chrom, start, end, dnase, h_in, h_label, promoter, activity, klass.astype(np.int8))


def density_scale(c: Candidates) -> np.ndarray:
    """Genome-wide ``sum(reads) / sum(candidate bp)`` of the two input tracks."""
    bp = float(np.sum(c.end - c.start))
    return np.array([c.h3k27ac_input.sum() / bp, c.dnase.sum() / bp])


class SequenceBlocks:
    """Real-sequence blocks of ``loci.bed`` (both kinds), loaded once, for window look-ups."""

    def __init__(self, config: dict, chroms: list[str]):
        fasta = encode.FastaReader(data_path(config, "fasta"))
        self.blocks: dict[str, list[tuple[int, int, bytes]]] = {}
        for kind in ("true_hg38", "lifted_hg19"):
            for chrom, s, e in read_blocks(data_path(config, "loci"), chroms, kind):
                self.blocks.setdefault(chrom, []).append((s, e, fasta.fetch(chrom, s, e)))

    def window(self, chrom: str, start0: int) -> bytes | None:
        """The window's bases when it lies inside one block, else None."""
        for s, e, seq in self.blocks.get(chrom, []):
            if s <= start0 and start0 + W <= e:
                return seq[start0 - s : start0 - s + W]
        return None

    def spans(self) -> list[tuple[str, int, int]]:
        """Every loaded block as ``(chrom, start0, end0)``."""
        return [(c, s, e) for c, v in self.blocks.items() for s, e, _ in v]


def place_reads(cand: Candidates, order: np.ndarray, start0: int, rng: np.random.Generator) -> np.ndarray:
    """``uint16 (2, 2000)`` read starts of the candidates ``order`` (sorted by start on one chrom)."""
    out = np.zeros((2, W), dtype=np.int64)
    for j in order:
        s, e = int(cand.start[j]), int(cand.end[j])
        for t, n in enumerate((cand.h3k27ac_input[j], cand.dnase[j])):
            pos = rng.integers(s, e, size=int(round(n))) - start0
            pos = pos[(pos >= 0) & (pos < W)]
            np.add.at(out[t], pos, 1)
    return np.minimum(out, np.iinfo(np.uint16).max).astype(np.uint16)


def k562(config: dict) -> dict[str, dict[str, SourceSet]]:
    """``{"k562_sequence": {split: set}, "k562_signal": {split: set}}``."""
    cfg = config["sources"]["k562"]
    split = config["sources"]["split"]
    cand = read_candidates(config)
    scale = density_scale(cand)
    chroms = sorted({c for c in cand.chrom})
    blocks = SequenceBlocks(config, chroms)
    by_chrom = {c: np.where(cand.chrom == c)[0] for c in chroms}
    seed = int(config["seed"])
    jitter = int(cfg["centre_jitter"])
    out: dict[str, dict[str, SourceSet]] = {"k562_sequence": {}, "k562_signal": {}}
    for s_i, s in enumerate(SPLITS):
        rng = np.random.default_rng([seed, 13, s_i])
        in_split = np.array([split_of(c, split) == s for c in cand.chrom])
        # window starts for every candidate of the split
        idx = np.where(in_split)[0]
        centre = (cand.start[idx] + cand.end[idx]) // 2 + rng.integers(-jitter, jitter + 1, size=len(idx))
        wstart = centre - W // 2
        has_seq = np.array(
            [blocks.window(cand.chrom[j], int(w)) is not None for j, w in zip(idx, wstart, strict=True)]
        )
        for source, pick in (("k562_sequence", has_seq), ("k562_signal", ~has_seq)):
            chosen = _sample_windows(idx[pick], cand, cfg, source, s, rng)
            starts = dict(zip(idx[pick], wstart[pick], strict=True))
            rows = [(int(j), cand.chrom[j], int(starts[j])) for j in chosen]
            if source == "k562_sequence":
                rows += _background_rows(cand, blocks, by_chrom, split, s, cfg, rng)
            out[source][s] = _build_set(source, s, rows, cand, blocks, by_chrom, scale, rng)
    return out


def _sample_windows(
    idx: np.ndarray, cand: Candidates, cfg: dict, source: str, split: str, rng: np.random.Generator
) -> np.ndarray:
    """Candidates to use: class-balanced for training, as they come (random subset) otherwise."""
    limit = cfg["windows"][source][split]
    if len(idx) <= limit:
        return idx
    if split != "train":
        return np.sort(rng.choice(idx, limit, replace=False))
    chosen = []
    for k, share in cfg["train_class_shares"].items():
        pool = idx[cand.klass[idx] == K562_CLASSES.index(k)]
        take = min(len(pool), int(round(limit * share)))
        chosen.append(rng.choice(pool, take, replace=False))
    return np.sort(np.concatenate(chosen))


def _background_rows(cand, blocks, by_chrom, split, s, cfg, rng) -> list[tuple[int, str, int]]:
    """Windows inside real sequence of the split that overlap no candidate (label 0)."""
    spans = [b for b in blocks.spans() if split_of(b[0], split) == s and b[2] - b[1] >= W]
    want = int(cfg["background_windows"][s])
    if not spans or want == 0:
        return []
    sizes = np.array([e - st - W for _, st, e in spans], dtype=np.float64) + 1
    rows: list[tuple[int, str, int]] = []
    for _ in range(want * 50):
        if len(rows) >= want:
            break
        c, st, e = spans[rng.choice(len(spans), p=sizes / sizes.sum())]
        w = int(rng.integers(st, e - W + 1))
        ids = by_chrom.get(c, np.array([], dtype=int))
        if np.any((cand.start[ids] < w + W) & (cand.end[ids] > w)):
            continue
        seq = blocks.window(c, w)
        if seq is None or encode.one_hot(seq).sum() < (1 - cfg["max_n_fraction"]) * W:
            continue
        rows.append((-1, c, w))
    return rows


def _build_set(source, s, rows, cand, blocks, by_chrom, scale, rng) -> SourceSet:
    n = len(rows)
    sequence = np.full((n, W), ord("N"), dtype=np.uint8)
    counts = np.zeros((n, 2, W), dtype=np.uint16)
    klass = np.empty(n, dtype=np.int8)
    available = np.ones((n, 3), dtype=np.float32)
    for i, (j, c, w) in enumerate(rows):
        ids = by_chrom[c]
        near = ids[(cand.start[ids] < w + W) & (cand.end[ids] > w)]
        counts[i] = place_reads(cand, near, w, rng)
        klass[i] = K562_CLASSES.index("background") if j < 0 else cand.klass[j]
        if source == "k562_sequence":
            sequence[i] = np.frombuffer(blocks.window(c, w), dtype=np.uint8)
        else:
            available[i, 0] = 0.0
    return SourceSet(
        source=source,
        split=s,
        classes=list(K562_CLASSES),
        sequence=sequence,
        counts=counts,
        label=(klass == K562_CLASSES.index("active_distal")).astype(np.float32),
        klass=klass,
        available=available,
        chrom=np.array([r[1] for r in rows], dtype=str),
        start0=np.array([r[2] for r in rows], dtype=np.int64),
        scale_mode="density",
        track_scale=scale,
    )


# ----------------------------------------------------------------------------------------------
# all sources


def build(config: dict, data_dir: Path, log=print) -> dict[str, dict[str, SourceSet]]:
    """Build (or load) every configured source's splits into ``data_dir/<source>-<split>.npz``."""
    check_split(config["sources"]["split"])
    data_dir.mkdir(parents=True, exist_ok=True)
    wanted = list(config["sources"]["use"])
    out: dict[str, dict[str, SourceSet]] = {}
    missing = [src for src in wanted if not all((data_dir / f"{src}-{s}.npz").exists() for s in SPLITS)]
    built: dict[str, dict[str, SourceSet]] = {}
    if "simulated" in missing:
        built["simulated"] = {s: simulated(config, s) for s in SPLITS}
    if "ienhancer" in missing:
        built["ienhancer"] = ienhancer(config)
    if {"k562_sequence", "k562_signal"} & set(missing):
        built.update(k562(config))
    for src in wanted:
        out[src] = {}
        for s in SPLITS:
            path = data_dir / f"{src}-{s}.npz"
            if src in built:
                built[src][s].save(path)
                out[src][s] = built[src][s]
                d = out[src][s]
                log(
                    f"built {src} {s}: {len(d)} windows, {int(d.label.sum())} positive, "
                    f"chromosomes {sorted(set(d.chrom.tolist()))}"
                )
            else:
                out[src][s] = SourceSet.load(path)
    return out


def describe(sets: dict[str, dict[str, SourceSet]]) -> dict:
    """Per source and split: windows, positives, classes, chromosomes."""
    return {
        src: {
            s: {
                "windows": len(d),
                "positives": int(d.label.sum()),
                "classes": {c: int(np.sum(d.klass == i)) for i, c in enumerate(d.classes)},
                "chromosomes": sorted(set(d.chrom.tolist())),
                "modalities_available": d.available.mean(axis=0).round(3).tolist(),
            }
            for s, d in per.items()
        }
        for src, per in sets.items()
    }


# ----------------------------------------------------------------------------------------------
# a mixed training set


class Mixed:
    """Several :class:`SourceSet` of one split as one indexable set with per-source scales."""

    def __init__(self, sets: list[SourceSet]):
        self.sets = sets
        self.sequence = np.concatenate([d.sequence for d in sets])
        self.counts = np.concatenate([d.counts for d in sets])
        self.label = np.concatenate([d.label for d in sets]).astype(np.float32)
        self.available = np.concatenate([d.available for d in sets]).astype(np.float32)
        self.source = np.concatenate([np.full(len(d), i, dtype=np.int64) for i, d in enumerate(sets)])
        self._scales: dict[float, np.ndarray] = {}
        self.full = self.signals(np.arange(len(self.label)), np.ones(len(self.label)), None)

    def __len__(self) -> int:
        return len(self.label)

    def scale_table(self, fraction: float) -> np.ndarray:
        """``(n_sources, 2)`` scales at a fraction."""
        if fraction not in self._scales:
            self._scales[fraction] = np.stack([d.scales(fraction) for d in self.sets])
        return self._scales[fraction]

    def signals(
        self, index: np.ndarray, fractions: np.ndarray, rng: np.random.Generator | None
    ) -> np.ndarray:
        """Normalised ``(len(index), 2, 200)`` signals, each window thinned to its fraction."""
        out = np.zeros((len(index), 2, W // encode.BIN_SIZE), dtype=np.float32)
        for f in np.unique(fractions):
            for src in np.unique(self.source[index]):
                sel = np.where((fractions == f) & (self.source[index] == src))[0]
                if len(sel) == 0:
                    continue
                counts = self.counts[index[sel]]
                if f < 1.0:
                    counts = thin(counts, float(f), rng)
                out[sel] = encode_counts(counts, self.scale_table(float(f))[src])
        return out
