"""Simulated enhancer windows on real hg38 sequence with real JASPAR motifs.

What is real and what is simulated:

* **Real**: the 2,000-bp background sequence (sampled from the ``true_hg38`` blocks of
  ``hg38/genome/hg38.partial.fa.gz`` listed in ``loci.bed``) and the motif models (JASPAR 2024
  CORE vertebrates count matrices, from which binding sites are sampled).
* **Simulated**: the labels, the placement of planted sites, and both signal tracks (per-base read
  coverage drawn from Poisson distributions around hand-made peak shapes).

Classes (label 1 only for ``enhancer``), chosen so that no single modality decides alone:

``enhancer``
    3-8 sites of K562 factors (GATA1, GATA1::TAL1, KLF1, NFE2, RUNX1, FOS::JUN) in the central
    ~500 bp, bimodal (sometimes unimodal) H3K27ac flanking the centre, a central accessibility peak.
``background``
    Plain genomic sequence with baseline signal.
``open_ctcf``
    CTCF sites under an accessibility peak, without acetylation (open, not active).
``acetylated_no_grammar``
    Enhancer-like H3K27ac (and often an accessibility peak) over sites of unrelated factors.
``closed_motif_cluster``
    The enhancer motif grammar in closed chromatin.

Any window may also get off-centre peaks. Signals are converted with the same functions as real
bigWig data (:func:`cistrack_training.encode.bin_means`, :func:`~cistrack_training.encode.normalise`);
the scale is the simulated track's mean over covered (non-zero) bases, as ``sumData / basesCovered``
of a bigWig written from it would be. Lower coverage is simulated by Poisson (binomial) thinning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import encode
from .config import data_path

CLASSES = ("background", "enhancer", "open_ctcf", "acetylated_no_grammar", "closed_motif_cluster")
"""Window classes; the index is stored per window, label = class is ``enhancer``."""
ENHANCER = CLASSES.index("enhancer")
_COMPLEMENT = bytes.maketrans(b"ACGTacgtNn", b"TGCAtgcaNn")


@dataclass
class Motif:
    """A JASPAR motif as base probabilities ``(length, 4)`` in A, C, G, T order."""

    id: str
    name: str
    probabilities: np.ndarray

    def __len__(self) -> int:
        return self.probabilities.shape[0]


def read_jaspar(path: str | Path, pseudocount: float = 0.5) -> dict[str, Motif]:
    """Read JASPAR-format count matrices.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.jaspar`` file (``>ID name`` then four rows ``A [ counts ]`` ... ``T [ ... ]``).
    pseudocount : float
        Added to every count before normalising each column.

    Returns
    -------
    dict of str to Motif
        Motifs by matrix ID, in file order.
    """
    motifs: dict[str, Motif] = {}
    current: tuple[str, str] | None = None
    rows: dict[str, list[float]] = {}
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                fields = line[1:].split(None, 1)
                current = (fields[0], fields[1] if len(fields) > 1 else fields[0])
                rows = {}
                continue
            base, _, rest = line.partition("[")
            rows[base.strip()] = [float(x) for x in rest.rstrip("]").split()]
            if current is not None and len(rows) == 4:
                counts = np.array([rows[b] for b in "ACGT"], dtype=np.float64).T + pseudocount
                motifs[current[0]] = Motif(current[0], current[1], counts / counts.sum(1, keepdims=True))
                current = None
    return motifs


def sample_site(motif: Motif, rng: np.random.Generator, sharpen: float = 1.0) -> bytes:
    """Sample one binding site (forward strand) from a motif's base probabilities.

    Parameters
    ----------
    motif : Motif
        The motif.
    rng : numpy.random.Generator
        Random source.
    sharpen : float
        Exponent applied to the probabilities before renormalising (1 = sample the PWM as is).
    """
    p = motif.probabilities**sharpen
    p = p / p.sum(1, keepdims=True)
    u = rng.random(len(motif))[:, None]
    idx = (u > np.cumsum(p, axis=1)).sum(1).clip(0, 3)
    return bytes(b"ACGT"[i] for i in idx)


def reverse_complement(sequence: bytes) -> bytes:
    """Reverse complement (case kept; other bytes unchanged)."""
    return sequence.translate(_COMPLEMENT)[::-1]


def read_blocks(loci: str | Path, chroms: list[str], kind: str = "true_hg38") -> list[tuple[str, int, int]]:
    """Blocks of ``loci.bed`` of the given kind on the given chromosomes (0-based half-open)."""
    out = []
    with open(loci) as fh:
        for line in fh:
            if line.startswith("#") or not line.strip():
                continue
            chrom, start, end, name = line.rstrip("\n").split("\t")[:4]
            if chrom in chroms and name.split("|")[0] == kind:
                out.append((chrom, int(start), int(end)))
    return out


class BackgroundSampler:
    """Sample 2,000-bp windows of real sequence from a set of blocks.

    Parameters
    ----------
    fasta : encode.FastaReader
        The genome.
    blocks : list of (str, int, int)
        Blocks to sample from.
    max_n_fraction : float
        Windows with a larger fraction of non-ACGT bases are rejected.
    """

    def __init__(self, fasta: encode.FastaReader, blocks: list[tuple[str, int, int]], max_n_fraction: float):
        self.blocks = [b for b in blocks if b[2] - b[1] >= encode.WINDOW_LENGTH]
        if not self.blocks:
            raise ValueError("no block is long enough for a window")
        self.sequences = [fasta.fetch(*b) for b in self.blocks]
        sizes = np.array([b[2] - b[1] - encode.WINDOW_LENGTH + 1 for b in self.blocks], dtype=np.float64)
        self.weights = sizes / sizes.sum()
        self.max_n_fraction = max_n_fraction

    def sample(self, rng: np.random.Generator) -> tuple[str, int, bytes]:
        """Return ``(chrom, start0, sequence)`` of a random acceptable window."""
        for _ in range(10_000):
            i = rng.choice(len(self.blocks), p=self.weights)
            chrom, start, end = self.blocks[i]
            offset = int(rng.integers(0, end - start - encode.WINDOW_LENGTH + 1))
            seq = self.sequences[i][offset : offset + encode.WINDOW_LENGTH]
            if encode.one_hot(seq).sum() >= (1.0 - self.max_n_fraction) * encode.WINDOW_LENGTH:
                return chrom, start + offset, seq
        raise RuntimeError("could not find a window with few enough N bases")


def _range(rng: np.random.Generator, bounds) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _int_range(rng: np.random.Generator, bounds) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _gauss(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def plant_sites(
    sequence: bytearray,
    motifs: list[int],
    all_motifs: list[Motif],
    lo: int,
    hi: int,
    rng: np.random.Generator,
    sharpen: float,
    occupied: list[tuple[int, int]],
) -> list[tuple[int, int, int]]:
    """Write sampled sites of ``motifs`` at random non-overlapping positions in ``[lo, hi)``.

    Returns
    -------
    list of (int, int, int)
        ``(motif index, start position, strand)`` per planted site; strand 1 is forward, -1 reverse.
    """
    planted = []
    for m in motifs:
        motif = all_motifs[m]
        width = len(motif)
        for _ in range(200):
            pos = int(rng.integers(max(lo, 0), min(hi, encode.WINDOW_LENGTH) - width + 1))
            if all(pos + width + 2 <= s or pos >= e + 2 for s, e in occupied):
                break
        else:
            continue
        site = sample_site(motif, rng, sharpen)
        strand = 1
        if rng.random() < 0.5:
            site, strand = reverse_complement(site), -1
        sequence[pos : pos + width] = site
        occupied.append((pos, pos + width))
        planted.append((m, pos, strand))
    return planted


@dataclass
class SimulatedSet:
    """One split of simulated windows.

    Attributes
    ----------
    split : str
        ``train``, ``validation`` or ``test``.
    chromosomes : list of str
        Chromosomes the background was sampled from.
    sequence : numpy.ndarray
        ``uint8 (n, 2000)`` ASCII bases (after planting).
    counts : numpy.ndarray
        ``uint16 (n, 2, 2000)`` per-base read coverage at full depth (h3k27ac, accessibility).
    label : numpy.ndarray
        ``float32 (n,)``.
    klass : numpy.ndarray
        ``int8 (n,)`` index into :data:`CLASSES`.
    chrom : numpy.ndarray
        Contig of each window's background.
    start0 : numpy.ndarray
        0-based start of each window's background.
    reverse : numpy.ndarray
        Whether the background was reverse-complemented.
    sites : numpy.ndarray
        ``int32 (m, 5)``: window, motif index (into ``motif_ids``), start, strand, length.
    motif_ids : list of str
        Motif IDs indexed by ``sites[:, 1]``.
    """

    split: str
    chromosomes: list[str]
    sequence: np.ndarray
    counts: np.ndarray
    label: np.ndarray
    klass: np.ndarray
    chrom: np.ndarray
    start0: np.ndarray
    reverse: np.ndarray
    sites: np.ndarray
    motif_ids: list[str]

    def __len__(self) -> int:
        return len(self.label)

    def save(self, path: str | Path) -> None:
        """Write to a compressed ``.npz``."""
        np.savez_compressed(
            path,
            split=np.array(self.split),
            chromosomes=np.array(self.chromosomes),
            sequence=self.sequence,
            counts=self.counts,
            label=self.label,
            klass=self.klass,
            chrom=self.chrom,
            start0=self.start0,
            reverse=self.reverse,
            sites=self.sites,
            motif_ids=np.array(self.motif_ids),
        )

    @classmethod
    def load(cls, path: str | Path) -> SimulatedSet:
        """Read a set written by :meth:`save`."""
        with np.load(path) as z:
            return cls(
                split=str(z["split"]),
                chromosomes=[str(c) for c in z["chromosomes"]],
                sequence=z["sequence"],
                counts=z["counts"],
                label=z["label"],
                klass=z["klass"],
                chrom=z["chrom"],
                start0=z["start0"],
                reverse=z["reverse"],
                sites=z["sites"],
                motif_ids=[str(m) for m in z["motif_ids"]],
            )

    def scales(self, fraction: float = 1.0) -> np.ndarray:
        """Track scales (h3k27ac, accessibility) at a coverage fraction; see :func:`coverage_scale`."""
        return np.array([coverage_scale(self.counts[:, t], fraction) for t in range(2)])

    def signals(self, index: np.ndarray, fraction: float, rng: np.random.Generator | None) -> np.ndarray:
        """Normalised ``float32 (len(index), 2, 200)`` signals at a coverage fraction.

        Counts are thinned with ``rng`` when ``fraction < 1``; the scale is the split's track mean
        at that fraction.
        """
        counts = self.counts[index]
        if fraction < 1.0:
            if rng is None:
                raise ValueError("thinning needs a random generator")
            counts = thin(counts, fraction, rng)
        return encode_counts(counts, self.scales(fraction))


def thin(counts: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson thinning: keep each read independently with probability ``fraction``."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"coverage fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return counts
    return rng.binomial(counts.astype(np.int64), fraction).astype(counts.dtype)


def coverage_scale(counts: np.ndarray, fraction: float = 1.0) -> float:
    """Expected ``sumData / basesCovered`` of a track of per-base counts thinned to ``fraction``.

    Covered bases are those with a non-zero value (a bedGraph/bigWig written from the coverage
    omits zeros). A base with ``c`` reads stays covered with probability ``1 - (1 - f)^c``.
    """
    c = counts.astype(np.float64).ravel()
    c = c[c > 0]
    if c.size == 0:
        raise ValueError("track has no covered bases")
    covered = c.size if fraction >= 1.0 else float(np.sum(1.0 - (1.0 - fraction) ** c))
    return float(fraction * c.sum() / covered)


def encode_counts(counts: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Bin and normalise per-base counts ``(n, 2, 2000)`` with per-track scales -> ``(n, 2, 200)``."""
    bins = encode.bin_means(counts)
    out = np.empty(bins.shape, dtype=np.float32)
    for t in range(counts.shape[1]):
        out[:, t] = encode.normalise(bins[:, t], float(scales[t]))
    return out


class Simulator:
    """Generate :class:`SimulatedSet` splits from a run configuration.

    Parameters
    ----------
    config : dict
        The run configuration (:func:`cistrack_training.config.load_config`).
    """

    def __init__(self, config: dict):
        self.config = config
        self.sim = config["simulation"]
        motifs = read_jaspar(data_path(config, "jaspar"), self.sim["motifs"]["pseudocount"])
        self.motif_ids = list(motifs)
        self.motifs = [motifs[m] for m in self.motif_ids]
        index = {m: i for i, m in enumerate(self.motif_ids)}
        try:
            self.enhancer_motifs = [index[m] for m in self.sim["motifs"]["enhancer"]]
            self.ctcf_motifs = [index[m] for m in self.sim["motifs"]["ctcf"]]
        except KeyError as err:
            raise KeyError(f"motif {err} is not in the JASPAR file") from None
        weights = self.sim["motifs"].get("enhancer_weights") or [1.0] * len(self.enhancer_motifs)
        if len(weights) != len(self.enhancer_motifs):
            raise ValueError("enhancer_weights must have one weight per enhancer motif")
        self.enhancer_weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        exclude = re.compile(self.sim["motifs"]["decoy_exclude"], re.IGNORECASE)
        self.decoy_motifs = [
            i
            for i, m in enumerate(self.motifs)
            if not any(exclude.search(part) for part in m.name.split("::"))
        ]
        self.fasta = encode.FastaReader(data_path(config, "fasta"))
        self.loci = data_path(config, "loci")

    def check_split(self) -> None:
        """Raise if the split's chromosome sets overlap."""
        split = self.sim["split"]
        names = list(split)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                common = set(split[a]) & set(split[b])
                if common:
                    raise ValueError(f"splits {a} and {b} share chromosomes {sorted(common)}")

    def generate(self, split: str, n: int | None = None, seed: int | None = None) -> SimulatedSet:
        """Simulate ``n`` windows of a split (default: the configured count), seeded.

        Parameters
        ----------
        split : str
            A key of ``simulation.split``.
        n : int, optional
            Number of windows.
        seed : int, optional
            Random seed (default: derived from the run seed and the split name).
        """
        self.check_split()
        sim = self.sim
        chroms = list(sim["split"][split])
        n = int(sim["windows"][split] if n is None else n)
        if seed is None:
            seed = int(self.config["seed"])
        rng = np.random.default_rng([seed, sum(split.encode()), len(split)])
        blocks = read_blocks(self.loci, chroms, sim["block_kind"])
        sampler = BackgroundSampler(self.fasta, blocks, sim["max_n_fraction"])
        names = list(sim["classes"])
        p = np.array([sim["classes"][c] for c in names], dtype=np.float64)
        klasses = rng.choice([CLASSES.index(c) for c in names], size=n, p=p / p.sum())
        sequence = np.empty((n, encode.WINDOW_LENGTH), dtype=np.uint8)
        counts = np.empty((n, 2, encode.WINDOW_LENGTH), dtype=np.uint16)
        chrom = np.empty(n, dtype=object)
        start0 = np.empty(n, dtype=np.int64)
        reverse = np.zeros(n, dtype=bool)
        sites: list[tuple[int, int, int, int, int]] = []
        for w in range(n):
            c, s, seq = sampler.sample(rng)
            if rng.random() < sim["reverse_complement"]:
                seq, reverse[w] = reverse_complement(seq), True
            chrom[w], start0[w] = c, s
            buf = bytearray(seq)
            planted, lam = self._window(int(klasses[w]), buf, rng)
            sequence[w] = np.frombuffer(bytes(buf), dtype=np.uint8)
            drawn = rng.poisson(lam * sim["depth"])
            if drawn.max() >= np.iinfo(np.uint16).max:
                raise ValueError("simulated coverage overflows uint16; lower the depth")
            counts[w] = drawn
            sites.extend((w, m, pos, strand, len(self.motifs[m])) for m, pos, strand in planted)
        return SimulatedSet(
            split=split,
            chromosomes=chroms,
            sequence=sequence,
            counts=counts,
            label=(klasses == ENHANCER).astype(np.float32),
            klass=klasses.astype(np.int8),
            chrom=chrom.astype(str),
            start0=start0,
            reverse=reverse,
            sites=np.array(sites, dtype=np.int32).reshape(-1, 5),
            motif_ids=self.motif_ids,
        )

    def _window(self, klass: int, buf: bytearray, rng: np.random.Generator):
        """Plant the class's sites into ``buf``; return planted sites and expected coverage (2, L)."""
        sim, g, dec = self.sim, self.sim["grammar"], self.sim["decoys"]
        sharpen = sim["motifs"]["sharpen"]
        x = np.arange(encode.WINDOW_LENGTH, dtype=np.float64) + 0.5
        centre = encode.WINDOW_LENGTH / 2 + _range(rng, [-g["centre_jitter"], g["centre_jitter"]])
        lo, hi = int(centre - g["core_width"] / 2), int(centre + g["core_width"] / 2)
        lam = np.zeros((2, encode.WINDOW_LENGTH))
        for t, key in enumerate(("h3k27ac", "accessibility")):
            lam[t] = sim[key]["baseline"] * rng.lognormal(0.0, sim[key]["baseline_sigma"])
        occupied: list[tuple[int, int]] = []
        planted: list[tuple[int, int, int]] = []
        name = CLASSES[klass]

        def grammar():
            k = _int_range(rng, g["sites"])
            return list(rng.choice(self.enhancer_motifs, size=k, p=self.enhancer_weights))

        if name in ("enhancer", "closed_motif_cluster"):
            planted += plant_sites(buf, grammar(), self.motifs, lo, hi, rng, sharpen, occupied)
        elif name == "acetylated_no_grammar":
            chosen = list(rng.choice(self.decoy_motifs, size=_int_range(rng, g["decoy_sites"])))
            if rng.random() < g["decoy_enhancer_site_probability"]:
                chosen.append(int(rng.choice(self.enhancer_motifs, p=self.enhancer_weights)))
            planted += plant_sites(buf, chosen, self.motifs, lo, hi, rng, sharpen, occupied)
        elif name == "open_ctcf":
            chosen = list(rng.choice(self.ctcf_motifs, size=_int_range(rng, g["ctcf_sites"])))
            planted += plant_sites(
                buf, chosen, self.motifs, int(centre - 80), int(centre + 80), rng, sharpen, occupied
            )

        if name in ("enhancer", "acetylated_no_grammar"):
            lam[0] += self._h3k27ac(x, centre, rng, 1.0)
        if name == "enhancer" or (
            name == "acetylated_no_grammar" and rng.random() < dec["acetylated_accessibility_probability"]
        ):
            lam[1] += self._accessibility(x, centre, rng, 1.0)
        if name == "open_ctcf":
            lam[1] += self._accessibility(x, centre, rng, 1.0)
            if rng.random() < dec["ctcf_weak_h3k27ac_probability"]:
                lam[0] += self._h3k27ac(x, centre, rng, dec["weak_factor"])
        if name == "closed_motif_cluster" and rng.random() < dec["closed_weak_accessibility_probability"]:
            lam[1] += self._accessibility(x, centre, rng, dec["weak_factor"])
        for t in range(2):
            if rng.random() < dec["off_centre_peak_probability"]:
                side = 1 if rng.random() < 0.5 else -1
                where = encode.WINDOW_LENGTH / 2 + side * _range(rng, dec["off_centre_offset"])
                peak = self._h3k27ac if t == 0 else self._accessibility
                lam[t] += peak(x, where, rng, dec["off_centre_factor"], unimodal=True)
        return planted, lam

    def _h3k27ac(self, x, centre, rng, factor, unimodal=False):
        h = self.sim["h3k27ac"]
        height = factor * h["peak_height"] * rng.lognormal(0.0, h["peak_sigma"])
        if unimodal or rng.random() < h["unimodal_probability"]:
            return height * _gauss(x, centre, _range(rng, h["unimodal_width"]))
        offset = _range(rng, h["flank_offset"])
        ratio = rng.uniform(0.5, 1.0)
        left, right = (1.0, ratio) if rng.random() < 0.5 else (ratio, 1.0)
        return height * (
            left * _gauss(x, centre - offset, _range(rng, h["flank_width"]))
            + right * _gauss(x, centre + offset, _range(rng, h["flank_width"]))
        )

    def _accessibility(self, x, centre, rng, factor, unimodal=True):
        a = self.sim["accessibility"]
        height = factor * a["peak_height"] * rng.lognormal(0.0, a["peak_sigma"])
        return height * _gauss(x, centre + rng.normal(0, 10), _range(rng, a["peak_width"]))
