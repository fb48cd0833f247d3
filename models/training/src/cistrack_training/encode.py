"""Reference encoding of enhancer-model inputs (``models/CONTRACT.md``, section "Encoding").

This module is the one Python definition of how a 2,000-bp window becomes model inputs. The Rust
runtime (``cistrack::model::encode``) implements the same rules and is checked against the golden
files that :mod:`cistrack_training.export` writes with these functions.

* Sequence: ``A/a, C/c, G/g, T/t`` one-hot, channels first ``(4, L)``; every other byte (``N``,
  IUPAC codes, ``-``) is all zeros.
* Signal: 200 bins of 10 bp; a bin is the sum of its 10 per-base values divided by 10, where bases
  without a bigWig interval and NaN values count as 0 (the "zero-filled mean"), in float64.
* Normalisation ``zero-filled-bin-mean/track-mean/log1p/clip8``:
  ``min(log1p(max(bin, 0) / scale), 8.0)`` in float64, then cast to float32, where ``scale`` is the
  track's ``sumData / basesCovered`` from the bigWig total summary.
* Windows may hang over either contig end; positions outside ``[0, contig_length)`` read as ``N``
  and as signal 0.
"""

from __future__ import annotations

import math
import struct
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WINDOW_LENGTH = 2000
"""Length of a model window in bp."""
BIN_SIZE = 10
"""Signal bin size in bp."""
N_BINS = WINDOW_LENGTH // BIN_SIZE
"""Number of signal bins per window."""
CLIP_MAX = 8.0
"""Upper clip of normalised signal values."""
NORMALISATION = "zero-filled-bin-mean/track-mean/log1p/clip8"
"""Identifier of the signal normalisation (``model.json`` ``signal.normalisation``)."""
MODALITIES = ("sequence", "h3k27ac", "accessibility")
"""Modality order of ``modality_mask``."""
SIGNALS = ("h3k27ac", "accessibility")
"""The signal modalities, in input order."""

BIGWIG_MAGIC = 0x888FFC26

_ONE_HOT = np.zeros((256, 4), dtype=np.uint8)
for _i, _base in enumerate("ACGT"):
    _ONE_HOT[ord(_base), _i] = 1
    _ONE_HOT[ord(_base.lower()), _i] = 1


def one_hot(sequence: bytes | str) -> np.ndarray:
    """One-hot encode a DNA sequence, channels first.

    Parameters
    ----------
    sequence : bytes or str
        DNA bases. ``A/C/G/T`` in either case map to channels 0-3; every other byte maps to zeros.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(4, len(sequence))``.

    Examples
    --------
    >>> one_hot("AcgTN").T.tolist()
    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    """
    if isinstance(sequence, str):
        sequence = sequence.encode("latin-1")
    codes = np.frombuffer(bytes(sequence), dtype=np.uint8)
    return np.ascontiguousarray(_ONE_HOT[codes].T)


def bin_means(values: np.ndarray, bin_size: int = BIN_SIZE) -> np.ndarray:
    """Zero-filled bin means of per-base signal values.

    Parameters
    ----------
    values : numpy.ndarray
        Per-base values along the last axis; NaN counts as 0. The last axis' length must be a
        multiple of ``bin_size``. Leading axes (a batch of windows) are kept.
    bin_size : int, optional
        Bases per bin (default 10).

    Returns
    -------
    numpy.ndarray
        ``float64`` bin means, shape ``values.shape[:-1] + (n // bin_size,)``. The values of a bin
        are summed left to right, then divided by ``bin_size`` (the Rust side sums in the same
        order, so the float64 results are bit-identical).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 1 or v.shape[-1] % bin_size:
        raise ValueError(f"need a last axis whose length is a multiple of {bin_size}, got {v.shape}")
    v = np.where(np.isnan(v), 0.0, v).reshape(*v.shape[:-1], -1, bin_size)
    total = v[..., 0].copy()
    for j in range(1, bin_size):
        total += v[..., j]
    return total / float(bin_size)


def normalise(bins: np.ndarray, scale: float) -> np.ndarray:
    """Normalise bin means: ``min(log1p(max(bin, 0) / scale), 8.0)`` in float64, then float32.

    Parameters
    ----------
    bins : numpy.ndarray
        Bin means (any shape).
    scale : float
        The track scale (its mean over covered bases); must be finite and positive.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of the same shape.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"track scale must be finite and positive, got {scale}")
    b = np.asarray(bins, dtype=np.float64)
    x = np.minimum(np.log1p(np.maximum(b, 0.0) / float(scale)), CLIP_MAX)
    return x.astype(np.float32)


@dataclass(frozen=True)
class TotalSummary:
    """The total summary block of a bigWig file."""

    bases_covered: int
    min_val: float
    max_val: float
    sum_data: float
    sum_squares: float


def read_total_summary(path: str | Path) -> TotalSummary:
    """Read a bigWig's total summary directly from the file bytes.

    pyBigWig's ``header()`` truncates ``sumData`` to an integer, so the summary is parsed here:
    ``totalSummaryOffset`` is the ``u64`` at byte 44 of the 64-byte header, and the summary holds
    ``basesCovered`` (u64) and ``min``, ``max``, ``sumData``, ``sumSquares`` (f64).

    Parameters
    ----------
    path : str or pathlib.Path
        A bigWig file.

    Returns
    -------
    TotalSummary

    Raises
    ------
    ValueError
        If the magic number is wrong or the file has no total summary.
    """
    with open(path, "rb") as fh:
        header = fh.read(64)
        if len(header) < 64:
            raise ValueError(f"{path}: too short for a bigWig header")
        if struct.unpack_from("<I", header, 0)[0] == BIGWIG_MAGIC:
            endian = "<"
        elif struct.unpack_from(">I", header, 0)[0] == BIGWIG_MAGIC:
            endian = ">"
        else:
            raise ValueError(f"{path}: not a bigWig file (bad magic)")
        (offset,) = struct.unpack_from(endian + "Q", header, 44)
        if offset == 0:
            raise ValueError(f"{path}: bigWig has no total summary")
        fh.seek(offset)
        block = fh.read(40)
        if len(block) < 40:
            raise ValueError(f"{path}: truncated total summary")
    covered, lo, hi, total, squares = struct.unpack(endian + "Qdddd", block)
    return TotalSummary(covered, lo, hi, total, squares)


def track_scale(path: str | Path) -> float:
    """Normalisation scale of a bigWig track: ``sumData / basesCovered`` of its total summary.

    Parameters
    ----------
    path : str or pathlib.Path
        A bigWig file.

    Returns
    -------
    float
        The track's mean over covered bases.

    Raises
    ------
    ValueError
        If the summary has no covered bases or a non-positive mean.
    """
    summary = read_total_summary(path)
    if summary.bases_covered == 0:
        raise ValueError(f"{path}: bigWig summary has no covered bases")
    scale = summary.sum_data / summary.bases_covered
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"{path}: bigWig mean {scale} is not positive")
    return scale


def _faidx_region(chrom: str, start0: int, end0: int) -> str:
    name = "{" + chrom + "}" if ":" in chrom else chrom
    return f"{name}:{start0 + 1}-{end0}"


class FastaReader:
    """Random access to an indexed (optionally bgzipped) FASTA through ``samtools faidx``.

    Parameters
    ----------
    path : str or pathlib.Path
        FASTA file with a ``.fai`` index (and ``.gzi`` when bgzipped).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lengths: dict[str, int] = {}
        with open(str(self.path) + ".fai") as fh:
            for line in fh:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 2:
                    self.lengths[fields[0]] = int(fields[1])

    def fetch(self, chrom: str, start0: int, end0: int) -> bytes:
        """Bases of ``[start0, end0)``, padded with ``N`` outside the contig.

        Parameters
        ----------
        chrom : str
            Contig name as in the FASTA.
        start0, end0 : int
            0-based half-open interval; may extend past either contig end.

        Returns
        -------
        bytes
            ``end0 - start0`` bases, case kept.
        """
        if chrom not in self.lengths:
            raise KeyError(f"unknown contig {chrom}")
        if end0 < start0:
            raise ValueError(f"invalid interval {start0}-{end0}")
        length = self.lengths[chrom]
        s, e = max(start0, 0), min(end0, length)
        inner = b""
        if s < e:
            out = subprocess.run(
                ["samtools", "faidx", str(self.path), _faidx_region(chrom, s, e)],
                check=True,
                capture_output=True,
            ).stdout
            inner = b"".join(out.split(b"\n")[1:])
            if len(inner) != e - s:
                raise RuntimeError(f"samtools faidx returned {len(inner)} bases for {chrom}:{s}-{e}")
        return b"N" * (s - start0) + inner + b"N" * (end0 - e)


@dataclass
class SignalTrack:
    """A bigWig signal track with the contract's normalisation.

    Parameters
    ----------
    path : str or pathlib.Path
        bigWig file.
    aliases : dict of str to str, optional
        Contig aliases, alias -> FASTA name (the build config's ``aliases`` table). The bigWig may
        name a contig either by its FASTA name or by an alias of it.
    scale : float, optional
        Explicit normalisation scale; by default :func:`track_scale` of the file.
    """

    path: Path
    aliases: dict[str, str] = field(default_factory=dict)
    scale: float | None = None

    def __post_init__(self):
        import pyBigWig

        self.path = Path(self.path)
        if self.scale is None:
            self.scale = track_scale(self.path)
        elif not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"{self.path}: explicit scale {self.scale} is not positive")
        self._bw = pyBigWig.open(str(self.path))
        if self._bw is None:
            raise ValueError(f"{self.path}: cannot open bigWig")
        self._chroms: dict[str, int] = dict(self._bw.chroms())

    def bigwig_name(self, chrom: str) -> str | None:
        """Name under which the bigWig stores FASTA contig ``chrom`` (``None`` if absent)."""
        if chrom in self._chroms:
            return chrom
        for alias, target in self.aliases.items():
            if target == chrom and alias in self._chroms:
                return alias
        return None

    def values(self, chrom: str, start0: int, end0: int, contig_length: int) -> np.ndarray:
        """Per-base values of ``[start0, end0)`` as float64; 0 outside the contig, gaps and NaN.

        Parameters
        ----------
        chrom : str
            FASTA contig name.
        start0, end0 : int
            0-based half-open interval; may extend past either contig end.
        contig_length : int
            Contig length from the FASTA index.
        """
        out = np.zeros(end0 - start0, dtype=np.float64)
        name = self.bigwig_name(chrom)
        if name is None:
            return out
        s, e = max(start0, 0), min(end0, contig_length, self._chroms[name])
        if s < e:
            v = np.asarray(self._bw.values(name, s, e, numpy=True), dtype=np.float64)
            out[s - start0 : e - start0] = np.where(np.isnan(v), 0.0, v)
        return out

    def encode(self, chrom: str, start0: int, contig_length: int) -> np.ndarray:
        """Normalised ``(200,)`` float32 bins of the window starting at ``start0``."""
        v = self.values(chrom, start0, start0 + WINDOW_LENGTH, contig_length)
        return normalise(bin_means(v), self.scale)


@dataclass
class Build:
    """A genome build as configured in a cistrack build TOML (e.g. ``tests/data/fixture.toml``).

    Attributes
    ----------
    name : str
        Build name.
    fasta : FastaReader
        The build's FASTA.
    signals : dict of str to SignalTrack
        Signal tracks by assay (``h3k27ac``, ``accessibility``).
    aliases : dict of str to str
        Contig aliases, alias -> FASTA name.
    """

    name: str
    fasta: FastaReader
    signals: dict[str, SignalTrack]
    aliases: dict[str, str]

    @classmethod
    def from_toml(cls, path: str | Path, name: str | None = None) -> Build:
        """Read a build from a cistrack TOML config; paths are relative to the TOML file.

        Parameters
        ----------
        path : str or pathlib.Path
            The TOML file.
        name : str, optional
            Build name; may be omitted when the file configures exactly one build.
        """
        path = Path(path)
        with open(path, "rb") as fh:
            config = tomllib.load(fh)
        builds = config.get("builds", {})
        if name is None:
            if len(builds) != 1:
                raise ValueError(f"{path}: name one of the builds {sorted(builds)}")
            name = next(iter(builds))
        if name not in builds:
            raise KeyError(f"{path}: unknown build {name}")
        b = builds[name]
        root = path.parent
        aliases = {str(k): str(v) for k, v in b.get("aliases", {}).items()}
        signals = {}
        for assay, spec in b.get("signals", {}).items():
            if "bigwig" not in spec:
                continue
            signals[assay] = SignalTrack(root / spec["bigwig"], aliases, spec.get("scale"))
        return cls(name, FastaReader(root / b["fasta"]), signals, aliases)

    def canonical(self, chrom: str) -> str:
        """FASTA name of a contig given by its FASTA name or an alias."""
        if chrom in self.fasta.lengths:
            return chrom
        if chrom in self.aliases and self.aliases[chrom] in self.fasta.lengths:
            return self.aliases[chrom]
        raise KeyError(f"unknown contig {chrom}")

    def encode_window(
        self, chrom: str, start0: int, mask: tuple[int, int, int] = (1, 1, 1)
    ) -> dict[str, np.ndarray]:
        """Encode the window ``[start0, start0 + 2000)`` as model inputs.

        Parameters
        ----------
        chrom : str
            Contig (FASTA name or alias).
        start0 : int
            0-based window start; may be negative, and the window may pass the contig end.
        mask : tuple of int, optional
            Modality mask in the order sequence, h3k27ac, accessibility; masked modalities are
            returned as zeros. A signal whose track the build lacks must be masked.

        Returns
        -------
        dict of str to numpy.ndarray
            ``sequence`` ``uint8 (4, 2000)``, ``h3k27ac`` and ``accessibility`` ``float32 (200,)``,
            ``modality_mask`` ``float32 (3,)``.
        """
        chrom = self.canonical(chrom)
        length = self.fasta.lengths[chrom]
        out: dict[str, np.ndarray] = {}
        if mask[0]:
            out["sequence"] = one_hot(self.fasta.fetch(chrom, start0, start0 + WINDOW_LENGTH))
        else:
            out["sequence"] = np.zeros((4, WINDOW_LENGTH), dtype=np.uint8)
        for i, assay in enumerate(SIGNALS, start=1):
            if mask[i]:
                if assay not in self.signals:
                    raise KeyError(f"build {self.name} has no {assay} track")
                out[assay] = self.signals[assay].encode(chrom, start0, length)
            else:
                out[assay] = np.zeros(N_BINS, dtype=np.float32)
        out["modality_mask"] = np.asarray(mask, dtype=np.float32)
        return out
