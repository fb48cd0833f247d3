"""Evaluate the link model's held-out predictions: expression (Pearson r) and CRISPRi links (AUPRC).

Usage (from ``models/training``)::

    python -m cistrack_training.link_eval --config configs/link-0.1.0.json

Reads the run's dataset and every ``fold_<k>/predictions.npz`` that exists (each holds the
fold's held-out genes, predicted by the model that never saw their chromosomes) and writes
``runs/<name>/eval/``:

* ``metrics.json``: everything below, with counts;
* ``expression.tsv``: Pearson r per fold and pooled over all evaluated folds;
* ``crispri.tsv``: AUPRC and precision at 70 % recall of each score, overall and per distance bin;
* ``crispri_pairs.tsv``: every benchmark pair used, with its fold and the three scores.

CRISPRi scores for a pair (element, gene), always from the fold where the gene's chromosome was
held out:

* ``attention``: the model's normalised attention of the gene's promoter on the candidate that
  overlaps the element (the maximum when several do; 0 when none of the gene's <= 60 candidates
  overlaps it);
* ``abc``: ``activity * contact`` of that candidate divided by the sum over the gene's candidates,
  with ``activity = sqrt(accessibility * H3K27ac)`` (per-kb, track-mean-normalised) and the same
  contact the model saw (power law; Hi-C where ``link_data`` found it); 0 when no candidate
  overlaps;
* ``distance``: ``-|element midpoint - TSS|`` (defined for every pair).

The script needs no PyTorch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import metrics
from .config import data_path, resolve
from .link_config import load_link_config
from .link_data import N_FOLDS, dataset_path, load_dataset, log, pair_slots, read_crispri

SCORES = ("attention", "abc", "distance")
"""The CRISPRi scores compared."""
PUBLISHED = {
    "source": "EPInformer (Lin et al.), K562 CRISPRi benchmark, element-gene pairs within 100 kb",
    "distance_based_contact": {"attention": 0.600, "abc": 0.579},
    "hic_contact": {"attention": 0.732, "abc": 0.698},
}
"""Published AUPRC reference points quoted by the issue (not measured here)."""


def json_safe(value):
    """``value`` with every NaN or infinite float replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (NaN when either side is constant or empty)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt(np.sum(x * x) * np.sum(y * y)))
    return float(np.sum(x * y) / denom) if denom > 0 else float("nan")


def precision_at_recall(y: np.ndarray, score: np.ndarray, recall: float = 0.7) -> float:
    """Precision at the highest score threshold whose recall reaches ``recall``.

    Pairs tied at the threshold are all called, so a score that leaves many positives at 0 gets
    the precision of calling every pair with a score of 0 or more.
    """
    y = np.asarray(y).astype(bool)
    if y.sum() == 0:
        return float("nan")
    s = np.asarray(score, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, yy = s[order], y[order]
    tp = np.cumsum(yy)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp_at, n_at = tp[last], last + 1
    reached = np.nonzero(tp_at / y.sum() >= recall - 1e-12)[0]
    i = reached[0]
    return float(tp_at[i] / n_at[i])


def abc_scores(data: dict[str, np.ndarray]) -> np.ndarray:
    """ABC score ``(G, 60)`` per gene-candidate slot from the dataset's activity and contact."""
    idx = data["candidate_index"]
    valid = idx >= 0
    means = data["track_means"]
    ci = np.maximum(idx, 0)
    activity = np.sqrt(data["cand_accessibility"][ci] / means[0] * data["cand_h3k27ac"][ci] / means[1])
    numerator = np.where(valid, activity * data["candidate_contact"], 0.0)
    total = numerator.sum(1, keepdims=True)
    return np.divide(numerator, total, out=np.zeros_like(numerator), where=total > 0)


def gene_test_fold(data: dict[str, np.ndarray]) -> np.ndarray:
    """1-based fold in which each gene is a test gene (0 when none)."""
    is_test = data["split"] == 2
    return np.where(is_test.any(1), is_test.argmax(1) + 1, 0)


def load_predictions(run_dir: Path, genes: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out expression ``(G,)``, attention ``(G, width)`` and the fold of each (0: none)."""
    expression = np.full(genes, np.nan, dtype=np.float32)
    attention = np.zeros((genes, width), dtype=np.float32)
    fold_of = np.zeros(genes, dtype=np.int64)
    for fold in range(1, N_FOLDS + 1):
        path = run_dir / f"fold_{fold}" / "predictions.npz"
        if not path.exists():
            continue
        with np.load(path) as z:
            rows = z["rows"]
            if np.any(fold_of[rows]):
                raise SystemExit(f"{path}: genes already predicted by another fold")
            expression[rows] = z["expression"]
            attention[rows] = z["attention"]
            fold_of[rows] = fold
    return expression, attention, fold_of


def _ranks(x: np.ndarray) -> np.ndarray:
    return metrics._ranks(np.asarray(x, dtype=np.float64))


def attention_diagnostics(
    data: dict[str, np.ndarray],
    attention: np.ndarray,
    abc: np.ndarray,
    rows: np.ndarray,
    min_candidates: int = 5,
) -> dict:
    """Mean within-gene Spearman correlation of the attention with ABC, -distance and activity.

    Over the held-out genes ``rows`` with at least ``min_candidates`` candidates (ties get their
    average rank); says what the attention ranks a gene's candidates by.
    """
    out = {"abc": [], "minus_distance": [], "activity": []}
    for g in rows:
        valid = data["candidate_index"][g] >= 0
        if valid.sum() < min_candidates:
            continue
        a = _ranks(attention[g, valid])
        for name, other in (
            ("abc", abc[g, valid]),
            ("minus_distance", -data["candidate_distance"][g, valid].astype(np.float64)),
            ("activity", data["candidate_features"][g, valid, 2]),
        ):
            out[name].append(pearson(a, _ranks(other)))
    return {
        "genes": len(out["abc"]),
        "min_candidates": min_candidates,
        **{f"mean_spearman_with_{k}": float(np.nanmean(v)) if v else float("nan") for k, v in out.items()},
    }


def score_pairs(data, pairs, slots, attention: np.ndarray, abc: np.ndarray) -> dict[str, np.ndarray]:
    """The three scores of every pair (max over the overlapping candidate slots)."""
    out = {name: np.zeros(len(pairs)) for name in SCORES}
    for p, sl in enumerate(slots):
        g = pairs.gene[p]
        if len(sl):
            out["attention"][p] = float(attention[g, sl].max())
            out["abc"][p] = float(abc[g, sl].max())
    out["distance"] = -pairs.distance.astype(np.float64)
    return out


def link_metrics(y: np.ndarray, scores: dict[str, np.ndarray], recall: float) -> dict:
    """AUPRC and precision at ``recall`` per score, with counts."""
    out = {"pairs": int(len(y)), "positives": int(y.sum())}
    for name, s in scores.items():
        out[name] = {
            "auprc": metrics.auprc(y, s) if y.any() else float("nan"),
            f"precision_at_{round(recall * 100)}_recall": precision_at_recall(y, s, recall)
            if y.any()
            else float("nan"),
        }
    return out


def evaluate(config: dict, run_dir: Path) -> dict:
    """Compute every held-out metric of the run (see the module docstring)."""
    t0 = time.time()
    data = load_dataset(dataset_path(config, run_dir))
    width = data["candidate_index"].shape[1]
    expression, attention, fold_of = load_predictions(run_dir, len(data["tss"]), width)
    folds = sorted(set(fold_of[fold_of > 0].tolist()))
    if not folds:
        raise SystemExit(f"{run_dir}: no fold_<k>/predictions.npz; run link_train first")
    y_expr = data["expression"]
    per_fold = []
    for fold in folds:
        rows = np.nonzero(fold_of == fold)[0]
        chroms = sorted(set(data["chrom"][rows].tolist()))
        per_fold.append(
            {
                "fold": fold,
                "test_chromosomes": chroms,
                "genes": int(len(rows)),
                "pearson": pearson(expression[rows], y_expr[rows]),
            }
        )
    done = fold_of > 0
    promoter_activity = data["promoter_features"][:, 2]
    expression_metrics = {
        "target": "log10(1 + CAGE TPM), same-strand K562 CAGE peaks (TPM >= 1) within 500 bp of the TSS",
        "folds_evaluated": folds,
        "per_fold": per_fold,
        "pooled": {"genes": int(done.sum()), "pearson": pearson(expression[done], y_expr[done])},
        "mean_of_folds": float(np.mean([f["pearson"] for f in per_fold])),
        "baseline_promoter_activity_pearson": pearson(promoter_activity[done], y_expr[done]),
    }
    log(
        f"expression: pooled r {expression_metrics['pooled']['pearson']:.4f} over {done.sum():,} genes, "
        f"folds {folds}"
    )

    ev = config["evaluation"]
    pairs = read_crispri(data_path(config, "crispri"), data, config["features"]["max_distance"])
    gene_fold = fold_of[pairs.gene]
    test_fold = gene_test_fold(data)[pairs.gene]
    if np.any((gene_fold > 0) & (gene_fold != test_fold)):
        raise SystemExit("a pair's gene was predicted by a fold that trained on its chromosome")
    keep = gene_fold > 0
    slots = pair_slots(pairs, data)
    abc = abc_scores(data)
    scores = score_pairs(data, pairs, slots, attention, abc)
    covered = np.array([len(s) > 0 for s in slots])
    is_hic = np.array(
        [bool(len(s) and data["candidate_is_hic"][pairs.gene[p], s].any()) for p, s in enumerate(slots)]
    )
    y = pairs.regulated
    result_pairs = {
        "benchmark": str(config["data"]["crispri"]),
        "selection": "gene in the dataset, element midpoint within "
        f"{config['features']['max_distance']:,} bp of "
        "the dataset TSS, gene's chromosome held out by an evaluated fold",
        "dropped": {**pairs.dropped, "fold_not_evaluated": int((~keep).sum())},
        "pairs": int(keep.sum()),
        "positives": int(y[keep].sum()),
        "positives_without_overlapping_candidate": int((y & ~covered & keep).sum()),
        "pairs_without_overlapping_candidate": int((~covered & keep).sum()),
        "pairs_with_hic_contact": int((is_hic & keep).sum()),
        "pairs_on_chr22": int((keep & (pairs.chrom == "chr22")).sum()),
        "positives_on_chr22": int((keep & (pairs.chrom == "chr22") & y).sum()),
    }
    overall = link_metrics(y[keep], {k: v[keep] for k, v in scores.items()}, ev["recall"])
    bins = {}
    for lo, hi in ev["distance_bins"]:
        sel = (
            keep
            & (pairs.distance >= lo)
            & ((pairs.distance < hi) if hi < config["features"]["max_distance"] else (pairs.distance <= hi))
        )
        bins[f"{lo // 1000}-{hi // 1000}kb"] = link_metrics(
            y[sel], {k: v[sel] for k, v in scores.items()}, ev["recall"]
        )
    by_dataset = {}
    for name in sorted(set(pairs.dataset[keep].tolist())):
        sel = keep & (pairs.dataset == name)
        by_dataset[name] = link_metrics(y[sel], {k: v[sel] for k, v in scores.items()}, ev["recall"])
    diagnostics = attention_diagnostics(data, attention, abc, np.nonzero(done)[0])
    log(
        "CRISPRi AUPRC "
        + " ".join(f"{k} {overall[k]['auprc']:.3f}" for k in SCORES)
        + f" ({overall['pairs']} pairs, {overall['positives']} positive)"
    )
    return {
        "run": str(run_dir),
        "config": config.get("config_path"),
        "expression": expression_metrics,
        "crispri": {
            **result_pairs,
            "scores": {
                "attention": "promoter attention over candidates, averaged over layers and heads, "
                "normalised per gene; "
                "max over candidates overlapping the element, 0 if none",
                "abc": "activity x contact / sum over the gene's candidates "
                "(activity = sqrt(accessibility x H3K27ac)); "
                "max over overlapping candidates, 0 if none",
                "distance": "-|element midpoint - TSS|",
            },
            "overall": overall,
            "attention_within_gene": diagnostics,
            "by_distance": bins,
            "by_dataset": by_dataset,
            "published_reference": PUBLISHED,
            "hic_note": "Hi-C (ENCFF621AIY, 5 kb) exists here only for chr22 bin pairs listed in the ABC "
            "chr22 run's tables; the Hi-C comparison of the published numbers cannot be repeated "
            "(see pairs_with_hic_contact "
            "and pairs_on_chr22).",
        },
        "tables": {
            "pairs": {
                "fold": gene_fold[keep],
                "gene": data["ensid"][pairs.gene[keep]],
                "symbol": data["symbol"][pairs.gene[keep]],
                "chrom": pairs.chrom[keep],
                "start": pairs.start[keep],
                "end": pairs.end[keep],
                "distance": pairs.distance[keep],
                "regulated": y[keep],
                "dataset": pairs.dataset[keep],
                **{k: v[keep] for k, v in scores.items()},
            }
        },
        "seconds": time.time() - t0,
    }


def write_tables(result: dict, out_dir: Path) -> None:
    """Write ``metrics.json``, ``expression.tsv``, ``crispri.tsv`` and ``crispri_pairs.tsv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = result.pop("tables")
    lines = ["fold\ttest_chromosomes\tgenes\tpearson"]
    for f in result["expression"]["per_fold"]:
        lines.append(f"{f['fold']}\t{','.join(f['test_chromosomes'])}\t{f['genes']}\t{f['pearson']:.4f}")
    pooled = result["expression"]["pooled"]
    lines.append(f"pooled\tall evaluated\t{pooled['genes']}\t{pooled['pearson']:.4f}")
    (out_dir / "expression.tsv").write_text("\n".join(lines) + "\n")
    cr = result["crispri"]
    key = next(k for k in cr["overall"]["attention"] if k.startswith("precision_at"))
    lines = ["subset\tpairs\tpositives\tscore\tauprc\t" + key]
    for subset, m in [("all", cr["overall"]), *cr["by_distance"].items()]:
        for name in SCORES:
            lines.append(
                f"{subset}\t{m['pairs']}\t{m['positives']}\t{name}\t{m[name]['auprc']:.4f}\t{m[name][key]:.4f}"
            )
    (out_dir / "crispri.tsv").write_text("\n".join(lines) + "\n")
    p = tables["pairs"]
    cols = list(p)
    rows = ["\t".join(cols)]
    for i in range(len(p["fold"])):
        rows.append(
            "\t".join(
                f"{p[c][i]:.6g}"
                if isinstance(p[c][i], np.floating)
                else str(p[c][i]).replace("True", "TRUE").replace("False", "FALSE")
                for c in cols
            )
        )
    (out_dir / "crispri_pairs.tsv").write_text("\n".join(rows) + "\n")
    (out_dir / "metrics.json").write_text(json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Evaluate the link model's held-out predictions.")
    parser.add_argument("--config", type=Path, help="run config JSON (merged over the link defaults)")
    parser.add_argument("--run-dir", type=Path, help="default: <runs_dir>/<name>")
    args = parser.parse_args(argv)
    config = load_link_config(args.config)
    run_dir = args.run_dir or resolve(config["runs_dir"]) / config["name"]
    result = evaluate(config, run_dir)
    write_tables(result, run_dir / "eval")
    log(f"wrote {run_dir / 'eval'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
