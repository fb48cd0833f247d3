"""The distillation table over training seeds: is the distilled student better than the scratch one.

Usage (from ``models/training``)::

    python -m cistrack_training.seeds runs/enhancer-0.3.0 runs/enhancer-0.3.0-seed2 runs/enhancer-0.3.0-seed3

Reads each run's ``metrics.json`` (same data, split and thinned test inputs; only the training
seed differs) and prints Markdown: for every source and coverage level, each role's AUROC as
mean ± s.d. over the seeds, then the paired difference distilled − scratch (seed *k*'s student
was distilled from seed *k*'s teacher; seed *k*'s scratch student shares its initialisation seed).

The verdict for a source and coverage is "KD better" (or "scratch better") only when the paired
difference has the same sign in every seed **and** its mean is larger than its s.d. over the
seeds; otherwise "within the seed spread". With 3 seeds this is a modest bar, and the tables say
so; it is not a significance test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROLES = ("teacher", "student", "scratch", "finetune")


def auroc_at(model: dict, level: str) -> float | None:
    """A model's test AUROC at a coverage level (``100%``: full; else the mean over thinning seeds)."""
    if level == "100%":
        value = model["full"]["auroc"]
    else:
        cell = model.get("coverage", {}).get(level)
        value = None if cell is None else cell["auroc"]["mean"]
    return None if value is None or np.isnan(value) else float(value)


def collect(runs: list[dict]) -> dict:
    """``{source: {level: {role: [auroc per seed]}}}`` over the runs (roles missing from a run skipped)."""
    out: dict = {}
    for metrics in runs:
        for src, res in metrics["test"].items():
            models = res["models"]
            first = next(iter(models.values()))
            for level in ["100%", *first.get("coverage", {})]:
                for role in ROLES:
                    if role in models:
                        value = auroc_at(models[role], level)
                        if value is not None:
                            out.setdefault(src, {}).setdefault(level, {}).setdefault(role, []).append(value)
    return out


def verdict(student: list[float], scratch: list[float]) -> tuple[float, float, str]:
    """Mean and s.d. of the paired difference student − scratch, and the verdict (module docstring)."""
    diff = np.asarray(student, dtype=np.float64) - np.asarray(scratch, dtype=np.float64)
    mean = float(diff.mean())
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
    if len(diff) < 2 or not (np.all(diff > 0) or np.all(diff < 0)) or abs(mean) <= sd:
        return mean, sd, "within the seed spread"
    return mean, sd, "KD better" if mean > 0 else "scratch better"


def table(runs: list[dict]) -> str:
    """The Markdown tables."""
    data = collect(runs)
    n = len(runs)
    lines = [f"AUROC, mean ± s.d. over {n} training seeds.", ""]
    for src, levels in data.items():
        lines.append(f"#### {src}")
        lines.append("")
        roles = [r for r in ROLES if any(r in v for v in levels.values())]
        lines.append("| coverage | " + " | ".join(roles) + " | distilled − scratch (paired) | verdict |")
        lines.append("|---|" + "---:|" * len(roles) + "---:|---|")
        for level, by_role in levels.items():
            cells = []
            for role in roles:
                v = by_role.get(role)
                cells.append(
                    "-"
                    if not v
                    else f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}"
                    if len(v) > 1
                    else f"{v[0]:.3f}"
                )
            if len(by_role.get("student", [])) == len(by_role.get("scratch", [])) == n and n > 0:
                mean, sd, word = verdict(by_role["student"], by_role["scratch"])
                cells += [f"{mean:+.3f} ± {sd:.3f}", word]
            else:
                cells += ["-", "-"]
            lines.append(f"| {level} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with metrics.json, one per seed")
    parser.add_argument("--out", type=Path, help="also write the tables here")
    args = parser.parse_args(argv)
    runs = []
    for run in args.runs:
        path = run / "metrics.json"
        if not path.exists():
            raise SystemExit(f"{path} not found: run the evaluate stage of that seed first")
        runs.append(json.loads(path.read_text()))
    text = table(runs)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
