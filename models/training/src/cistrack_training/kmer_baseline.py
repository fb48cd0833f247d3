"""A k-mer composition reference for the sequence-only sources: how much of a task is composition.

Usage (from ``models/training``, on a run directory that holds its built data)::

    python -m cistrack_training.kmer_baseline runs/enhancer-0.3.0-seed1 [--source ienhancer] [--role student]

Each window's real bases (``N`` left out) become canonical k-mer frequencies for every ``k`` up
to ``K`` (a k-mer and its reverse complement counted together, so both strands score the same),
standardised on the training split, and an L2-penalised logistic regression is fitted on the
training split. ``K`` and the penalty are chosen by validation AUROC over a small grid; the test
split is scored once, with the chosen pair. With ``--role`` the run's checkpoint of that role
is scored on the same windows, and the report adds its AUROC, the Pearson correlation of its
logits with the k-mer logits on validation, and the AUROC of their mean (each standardised on
validation) with the weight chosen on validation.

Writes ``kmer_baseline-<source>.json`` into the run directory and prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from . import metrics, sources

GRID_K = (3, 4, 5, 6)
GRID_PENALTY = (1e-3, 1e-2, 1e-1, 1.0)
ENSEMBLE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
_CODE = np.full(256, -1, dtype=np.int64)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _i
    _CODE[ord(chr(_b).lower())] = _i


def kmer_frequencies(sequences: np.ndarray, k_max: int) -> np.ndarray:
    """Canonical k-mer frequencies, ``k`` = 1..``k_max``, of each row's A/C/G/T bases.

    ``sequences`` is ``uint8`` ASCII ``(n, length)``; other bytes (``N``) are dropped and the
    bases on either side are joined, as in a record padded with ``N`` to the window. Each
    ``k`` block sums to 1 over the row (0 for a row shorter than ``k``).
    """
    blocks = []
    for k in range(1, k_max + 1):
        out = np.zeros((len(sequences), 4**k), dtype=np.float64)
        for i, row in enumerate(sequences):
            code = _CODE[row]
            code = code[code >= 0]
            m = len(code) - k + 1
            if m <= 0:
                continue
            fwd = np.zeros(m, dtype=np.int64)
            rev = np.zeros(m, dtype=np.int64)
            rc = 3 - code[::-1]
            for j in range(k):
                fwd = fwd * 4 + code[j : j + m]
                rev = rev * 4 + rc[j : j + m]
            out[i] = np.bincount(fwd, minlength=4**k) + np.bincount(rev, minlength=4**k)
            out[i] /= out[i].sum()
        blocks.append(out)
    return np.hstack(blocks)


def fit_logistic(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, float]:
    """Weights and intercept of the logistic regression minimising mean log-loss + ``penalty``/2 |w|²."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    yt = torch.from_numpy(np.asarray(y, dtype=np.float64))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt)
        loss = loss + penalty * (w * w).sum() / 2
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach())


def select(splits: dict, grid_k=GRID_K, grid_penalty=GRID_PENALTY) -> dict:
    """Fit every (K, penalty) on ``train``, keep the best by validation AUROC, score ``test`` once.

    ``splits`` maps ``train``/``validation``/``test`` to ``(sequences, labels)``. Returns the
    grid's validation AUROCs, the choice, and the chosen model's logits on validation and test.
    """
    k_top = max(grid_k)
    feats = {s: kmer_frequencies(seq, k_top) for s, (seq, _) in splits.items()}
    width = {k: sum(4**j for j in range(1, k + 1)) for k in grid_k}
    grid, best = [], None
    for k in grid_k:
        cols = slice(0, width[k])
        mu = feats["train"][:, cols].mean(0)
        sd = feats["train"][:, cols].std(0) + 1e-6
        std = {s: (f[:, cols] - mu) / sd for s, f in feats.items()}
        for penalty in grid_penalty:
            w, b = fit_logistic(std["train"], splits["train"][1], penalty)
            val = std["validation"] @ w + b
            auc = metrics.auroc(splits["validation"][1], val)
            grid.append({"k_max": k, "penalty": penalty, "validation_auroc": auc})
            if best is None or auc > best[0]:
                best = (auc, k, penalty, val, std["test"] @ w + b)
    auc, k, penalty, val, test = best
    return {
        "grid": grid,
        "chosen": {"k_max": k, "penalty": penalty},
        "validation_auroc": auc,
        "test_auroc": metrics.auroc(splits["test"][1], test),
        "logits": {"validation": val, "test": test},
    }


def with_model(kmer: dict, model_logits: dict, labels: dict) -> dict:
    """A model beside the k-mer reference: correlation and the validation-weighted mean of the two."""

    def z(values, ref):
        return (values - ref.mean()) / (ref.std() + 1e-12)

    kv, mv = kmer["logits"]["validation"], model_logits["validation"]
    scored = []
    for a in ENSEMBLE_WEIGHTS:
        v = a * z(kv, kv) + (1 - a) * z(mv, mv)
        scored.append((metrics.auroc(labels["validation"], v), a))
    val_auc, a = max(scored)
    test = a * z(kmer["logits"]["test"], kv) + (1 - a) * z(model_logits["test"], mv)
    return {
        "validation_auroc": metrics.auroc(labels["validation"], mv),
        "test_auroc": metrics.auroc(labels["test"], model_logits["test"]),
        "validation_pearson_with_kmer": float(np.corrcoef(kv, mv)[0, 1]),
        "mean_with_kmer": {
            "kmer_weight": a,
            "validation_auroc": val_auc,
            "test_auroc": metrics.auroc(labels["test"], test),
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: the reference for one source of a run, and optionally a role beside it."""
    parser = argparse.ArgumentParser(prog="python -m cistrack_training.kmer_baseline", description=__doc__)
    parser.add_argument("run", type=Path, help="a run directory with data/<source>-<split>.npz")
    parser.add_argument("--source", default="ienhancer", help="a source with sequence (default ienhancer)")
    parser.add_argument("--role", help="also score this role's best checkpoint (e.g. student)")
    args = parser.parse_args(argv)
    sets = {}
    for split in ("train", "validation", "test"):
        path = args.run / "data" / f"{args.source}-{split}.npz"
        if not path.exists():
            parser.error(f"{path} does not exist: build the run's data first (train_sources --stage data)")
        sets[split] = sources.SourceSet.load(path)
    if not sets["train"].available[:, 0].all():
        parser.error(f"source {args.source!r} has windows without sequence; pick a sequence source")
    splits = {s: (d.sequence, d.label) for s, d in sets.items()}
    kmer = select(splits)
    report = {
        "run": str(args.run),
        "source": args.source,
        "windows": {s: len(d) for s, d in sets.items()},
        "kmer": {k: v for k, v in kmer.items() if k != "logits"},
    }
    if args.role:
        from .train_sources import load_role, predict

        config = json.loads((args.run / "config.json").read_text())
        model = load_role(args.run, args.role, config, torch.device("cpu"))
        logits = {}
        for split in ("validation", "test"):
            mixed = sources.Mixed([sets[split]])
            avail = sets[split].available
            logits[split], _ = predict(model, mixed, mixed.full, avail, 64, torch.device("cpu"))
        labels = {s: sets[s].label for s in ("validation", "test")}
        report[args.role] = with_model(kmer, logits, labels)
    text = json.dumps(report, indent=2)
    (args.run / f"kmer_baseline-{args.source}.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
