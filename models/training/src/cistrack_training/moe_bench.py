r"""The sparse-MoE student against the dense one: size and ONNX Runtime CPU speed, in one run.

Usage::

    python -m cistrack_training.moe_bench --config configs/enhancer-0.3.0-moe.json \\
        [--dense runs/enhancer-0.3.0-seed1/student/best.pt] \\
        [--moe runs/enhancer-0.3.0-moe-seed1/moe/best.pt] [--threads 2] [--rounds 3]

Builds the dense student (the config's ``student`` section) and the sparse-MoE student (its
``moe`` section merged over the student's), from checkpoints when given, else freshly
initialised (size and speed do not depend on the weights), exports both to ONNX (the shipped
graph: both strands) and measures ONNX Runtime windows/s at batch 64 on the golden windows of
``models/enhancer-student/0.2.0`` (:mod:`.ortbench`, a fresh process per measurement), dense
and MoE alternating for ``rounds`` rounds. Prints a Markdown table and writes JSON beside it
(``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from . import sources
from .config import load_config
from .export import export_onnx, ort_speed
from .model import (
    AttLightEnhancer,
    ModelConfig,
    active_parameter_count,
    flops_per_window,
    parameter_count,
)
from .train_sources import with_moe

GOLDEN = Path(__file__).resolve().parents[3] / "enhancer-student/0.2.0/golden"
"""The shipped 0.2.0 student's 64 golden windows (real hg38 and K562 signal)."""


def build(section: dict, checkpoint: Path | None) -> AttLightEnhancer:
    """A model of the config section's architecture, with the checkpoint's weights if given."""
    if checkpoint is None:
        torch.manual_seed(0)
        return AttLightEnhancer(ModelConfig.from_dict(section["model"])).eval()
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = AttLightEnhancer(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--dense", type=Path, help="dense student checkpoint (default: fresh weights)")
    parser.add_argument("--moe", type=Path, help="sparse-MoE student checkpoint (default: fresh weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--golden", type=Path, default=GOLDEN, help="golden windows folder")
    parser.add_argument("--out", type=Path, help="JSON report (default: none)")
    args = parser.parse_args(argv)
    config = with_moe(load_config(args.config, defaults=sources.defaults()))
    if "moe" not in config:
        raise SystemExit(f"{args.config}: no `moe` section")
    golden = args.golden
    checkpoints = {"dense": args.dense, "moe": args.moe}
    models = {
        "dense": build(config["student"], args.dense),
        "moe": build(config["moe"], args.moe),
    }
    report: dict = {"cpu": cpu_model(), "threads": args.threads, "batch": 64, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, model in models.items():
            paths[name] = Path(tmp) / f"{name}.onnx"
            export_onnx(model, paths[name], {"cistrack.name": name})
            c = model.config
            report["models"][name] = {
                "experts": c.moe_experts,
                "top_k": c.moe_top_k if c.moe_experts else None,
                "parameters": parameter_count(model),
                "active_parameters": active_parameter_count(model),
                "gflop_per_window": flops_per_window(model) / 1e9,
                "windows_per_second": [],
                "weights": str(checkpoints[name] or "fresh"),
            }
        for _ in range(args.rounds):
            for name in models:
                rate = ort_speed(paths[name], golden, args.threads)["windows_per_second"]
                report["models"][name]["windows_per_second"].append(rate)
    for m in report["models"].values():
        m["median_windows_per_second"] = statistics.median(m["windows_per_second"])
    dense = report["models"]["dense"]["median_windows_per_second"]
    lines = [
        f"CPU: {report['cpu']}, {args.threads} threads, batch 64, median of {args.rounds} alternating rounds",
        "",
        "| model | experts (top-k) | parameters | active per token | GFLOP/window | windows/s | vs dense |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in report["models"].items():
        experts = f"{m['experts']} (top-{m['top_k']})" if m["experts"] else "dense"
        lines.append(
            f"| {name} | {experts} | {m['parameters']:,} | {m['active_parameters']:,} | "
            f"{m['gflop_per_window']:.3f} | {m['median_windows_per_second']:.1f} | "
            f"{m['median_windows_per_second'] / dense:.2f} |"
        )
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
