r"""The sparse-MoE student against the dense student, held-out source by source and coverage by coverage.

Usage (from ``models/training``)::

    python -m cistrack_training.moe_compare --dense runs/enhancer-0.3.0-seed1 \
        --moe runs/enhancer-0.3.0-moe-seed1 [--bench moe_bench.json] [--resamples 1000] \
        [--out moe_compare.json]

Both runs must hold the same data and split and the same seed (so the thinned test inputs are
the same; checked). Loads the dense run's ``student`` and the MoE run's ``moe`` best
checkpoints, predicts every source's test windows at full coverage and at each thinned
coverage level (the draws :func:`.train_sources.evaluate_source` makes), and gives per source
and level each model's AUROC (the mean over thinning draws below 100 %), the paired difference
MoE − dense, and its 95 % interval from a paired bootstrap over test windows (both models
scored on the same resampled windows; below 100 % the difference is averaged over the draws in
each resample). A cell says "MoE better" or "dense better" only when the interval excludes 0.
With ``--bench`` (the JSON of :mod:`.moe_bench` run on the same checkpoints) the size and
speed rows are added. Prints Markdown; ``--out`` writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from . import metrics, sources
from .train import sigmoid
from .train_sources import load_role, predict, thinned_signals


def run_config(run: Path) -> dict:
    """The configuration a run was trained with (its pinned ``config.json``)."""
    path = run / "config.json"
    if not path.exists():
        raise SystemExit(f"{path} not found: is {run} a train_sources run directory?")
    return json.loads(path.read_text())


def check_comparable(dense: Path, moe: Path) -> tuple[dict, dict]:
    """The two runs' configurations (dense, MoE), if they share split and seed.

    Stops otherwise: the comparison needs the same test windows and thinned inputs.
    """
    d, m = run_config(dense), run_config(moe)
    if d["seed"] != m["seed"]:
        raise SystemExit(f"seeds differ: {dense} {d['seed']}, {moe} {m['seed']}")
    for run in (dense, moe):
        if not (run / "split.json").exists():
            raise SystemExit(f"{run / 'split.json'} not found: run its data stage")
    if json.loads((dense / "split.json").read_text()) != json.loads((moe / "split.json").read_text()):
        raise SystemExit(f"{dense} and {moe} have different splits (split.json)")
    return d, m


def paired_bootstrap(
    y: np.ndarray, a: list[np.ndarray], b: list[np.ndarray], resamples: int, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over draws of AUROC(b) − AUROC(a), and its 95 % paired bootstrap interval over windows.

    ``a`` and ``b`` hold one probability vector per input draw (one at full coverage). NaN when
    ``y`` has one class; resamples with one class are drawn again.
    """

    def diff(index: np.ndarray) -> float:
        return float(
            np.mean(
                [
                    metrics.auroc(y[index], pb[index]) - metrics.auroc(y[index], pa[index])
                    for pa, pb in zip(a, b, strict=True)
                ]
            )
        )

    if not 0 < y.sum() < len(y):
        return float("nan"), float("nan"), float("nan")  # one class: no AUROC
    full = diff(np.arange(len(y)))
    rng = np.random.default_rng(seed)
    draws = []
    while len(draws) < resamples:
        index = rng.integers(0, len(y), len(y))
        if 0 < y[index].sum() < len(index):  # both classes, else AUROC is undefined
            draws.append(diff(index))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return full, float(lo), float(hi)


def compare(dense: Path, moe: Path, resamples: int, device: torch.device) -> dict:
    """Per source and coverage level: both AUROCs, the difference and its interval, the verdict."""
    config, moe_config = check_comparable(dense, moe)
    sets = sources.build(config, dense / "data", lambda message: None)
    models = {
        "dense": load_role(dense, "student", config, device),
        "moe": load_role(moe, "moe", moe_config, device),
    }
    bs = config["evaluation"]["batch_size"]
    out: dict = {"dense": str(dense), "moe": str(moe), "resamples": resamples, "sources": {}}
    for name in config["sources"]["use"]:
        data = sets[name]["test"]
        mixed = sources.Mixed([data])
        y = data.label
        levels = {"100%": [mixed.full]} | {
            f"{round(level * 100):g}%": draws for level, draws in thinned_signals(data, config).items()
        }
        cells = {}
        for level, signals in levels.items():
            p = {
                role: [sigmoid(predict(model, mixed, s, data.available, bs, device)[0]) for s in signals]
                for role, model in models.items()
            }
            delta, lo, hi = paired_bootstrap(y, p["dense"], p["moe"], resamples)
            verdict = (
                "MoE better"
                if lo > 0
                else "dense better"
                if hi < 0
                else "no difference"
                if lo <= 0 <= hi
                else "one class in the test set"
            )
            cells[level] = {
                "dense": float(np.mean([metrics.auroc(y, q) for q in p["dense"]])),
                "moe": float(np.mean([metrics.auroc(y, q) for q in p["moe"]])),
                "delta": delta,
                "interval": [lo, hi],
                "draws": len(signals),
                "verdict": verdict,
            }
        out["sources"][name] = {"windows": len(data), "positives": int(y.sum()), "levels": cells}
    return out


def markdown(result: dict, bench: dict | None) -> str:
    """The card's table: one row per source and coverage level, then size and speed."""
    lines = [
        "| source (test windows) | coverage | dense AUROC | MoE AUROC "
        "| MoE − dense (95 % interval) | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, src in result["sources"].items():
        for level, c in src["levels"].items():
            lo, hi = c["interval"]
            lines.append(
                f"| {name} ({src['windows']}) | {level} | {c['dense']:.3f} | {c['moe']:.3f} | "
                f"{c['delta']:+.3f} ({lo:+.3f} to {hi:+.3f}) | {c['verdict']} |"
            )
    if bench:
        dense = bench["models"]["dense"]["median_windows_per_second"]
        lines += [
            "",
            f"CPU: {bench['cpu']}, ONNX Runtime, {bench['threads']} threads, batch {bench['batch']}:",
            "",
            "| model | parameters | active per token | GFLOP/window | windows/s | vs dense |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, m in bench["models"].items():
            rate = m["median_windows_per_second"]
            lines.append(
                f"| {name} | {m['parameters']:,} | {m['active_parameters']:,} | "
                f"{m['gflop_per_window']:.3f} | {rate:.1f} | {rate / dense:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: compare, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dense", type=Path, required=True, help="run directory with a trained `student`")
    parser.add_argument("--moe", type=Path, required=True, help="run directory with a trained `moe`")
    parser.add_argument("--bench", type=Path, help="moe_bench JSON for the size and speed rows")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = compare(args.dense, args.moe, args.resamples, torch.device("cpu"))
    bench = json.loads(args.bench.read_text()) if args.bench else None
    if bench:
        result["bench"] = bench
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(markdown(result, bench))
    return 0


if __name__ == "__main__":
    sys.exit(main())
