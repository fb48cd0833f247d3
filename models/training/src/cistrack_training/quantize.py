"""An int8 version of an exported enhancer model, shipped beside the fp32 one.

Usage (from ``models/training``)::

    python -m cistrack_training.quantize --model ../enhancer-student/0.3.0 --run runs/enhancer-0.3.0

writes ``../enhancer-student/0.3.0-int8/`` (``model.onnx``, ``model.json``, ``golden/``) and
prints the per-source held-out AUROC of both versions and the rule's verdict.

How, and why this way:

* **Static** quantisation (QDQ, activation scales fixed from calibration windows), never
  dynamic: ONNX Runtime's dynamic quantisation computes each activation's scale from the whole
  batch, so a window's score depends on which windows share its batch (0.2.0 student, golden
  windows: logit batch 64 vs batch 1 differs by up to 0.039, fp32 by 1e-6). cistrack caches
  scores and batches windows of unrelated requests together, so that is not acceptable.
* Only the **weight** MatMul/Gemm nodes (second input an initializer) are quantised (int8
  weights, uint8 activations). The attention products (query x key, weights x value) stay fp32:
  quantising them crushes the ``-1e4`` key-mask bias (logits off by ~7 on the golden windows).
* Calibration windows: a seeded sample of the run's **training** windows of every source, full
  coverage, the modalities each window has.
* The rule (issue 13): the int8 model is the CPU default only if its AUROC on **every**
  held-out source is within ``--max-auroc-drop`` (0.005) of fp32's; ``model.json`` records
  both, the deltas and the verdict (``quantisation.default_on_cpu``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import calibration, metrics, sources
from .config import resolve
from .export import INPUT_NAMES, OUTPUT_NAMES, ort_run, ort_session, ort_speed, sha256
from .train import log, model_inputs


def weight_matmuls(path: Path) -> list[str]:
    """Names of the MatMul/Gemm nodes whose second input is an initializer (a weight)."""
    import onnx

    model = onnx.load(str(path))
    weights = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in weights]


def feeds(data: sources.Mixed, index: np.ndarray, fraction: float = 1.0, rng=None) -> dict[str, np.ndarray]:
    """ONNX Runtime inputs of windows ``index`` (:func:`.train.model_inputs`: masked modalities zeroed)."""
    signals = data.full[index] if fraction >= 1.0 else data.signals(index, np.full(len(index), fraction), rng)
    inputs = model_inputs(data.sequence[index], signals, data.available[index], torch.device("cpu"))
    return {name: np.ascontiguousarray(t.numpy(), dtype=np.float32) for name, t in inputs.items()}


def quantise(fp32: Path, out: Path, calibration_feeds: dict[str, np.ndarray], chunk: int = 32) -> list[str]:
    """Write the static-QDQ int8 graph of ``fp32`` to ``out``; returns the quantised node names."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.start = 0

        def get_next(self):
            n = len(calibration_feeds["sequence"])
            if self.start >= n:
                return None
            part = {k: v[self.start : self.start + chunk] for k, v in calibration_feeds.items()}
            self.start += chunk
            return part

    with tempfile.TemporaryDirectory() as tmp:
        # the exporter's value_info disagrees with ONNX shape inference on the dynamic batch,
        # which the quantiser runs: drop it (ONNX Runtime infers shapes itself)
        model = onnx.load(str(fp32))
        del model.graph.value_info[:]
        plain = Path(tmp) / "plain.onnx"
        onnx.save(model, str(plain))
        nodes = weight_matmuls(plain)
        quantize_static(
            str(plain),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            nodes_to_quantize=nodes,
            per_channel=False,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )
    # keep the contract's metadata (the quantiser copies it; check)
    q = onnx.load(str(out))
    if not any(p.key == "cistrack.name" for p in q.metadata_props):
        raise SystemExit(f"{out}: the quantiser dropped the cistrack metadata")
    return nodes


MAX_BATCH_SPREAD = 1e-5
"""Largest logit difference allowed between batch sizes 1, 7 and 64 (fp32 graphs: about 1e-6)."""


def batch_invariant_outputs(session, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
    """Outputs at batch 64 and the largest logit difference to batch 1 and 7.

    Raises ``SystemExit`` naming the difference when it exceeds :data:`MAX_BATCH_SPREAD`: cistrack
    batches windows of unrelated requests together and caches their scores, so a window's score
    must not depend on its batch-mates (dynamic quantisation breaks this).
    """
    by_batch = {b: ort_run(session, inputs, b) for b in (1, 7, 64)}
    spread = max(float(np.abs(by_batch[b]["logit"] - by_batch[64]["logit"]).max()) for b in (1, 7))
    if spread > MAX_BATCH_SPREAD:
        raise SystemExit(f"the int8 graph's logits depend on the batch (max difference {spread:.3g})")
    return dict(by_batch[64]), spread


def held_out(session_fp32, session_int8, sets: dict, use: list[str], spec_calibration, seed: int) -> dict:
    """Per-source test AUROC (and calibrated ECE) of both graphs, full coverage and 10 % / 1 %."""
    out = {}
    for src in use:
        data = sources.Mixed([sets[src]["test"]])
        index = np.arange(len(data.label))
        levels = [1.0] + ([0.1, 0.01] if sets[src]["test"].has_signal() else [])
        row = {}
        for level in levels:
            rng = np.random.default_rng([seed, 7, round(level * 1e6), 0])
            feed = feeds(data, index, level, rng)
            key = f"{round(level * 100):g}%"
            for name, session in (("fp32", session_fp32), ("int8", session_int8)):
                logit = ort_run(session, feed, 64)["logit"].astype(np.float64)
                row.setdefault(name, {})[key] = {
                    "auroc": metrics.auroc(data.label, logit),
                    "ece": metrics.ece(
                        data.label, calibration.apply(spec_calibration, logit, feed["modality_mask"])
                    ),
                }
        # a test split with one class has no AUROC: JSON null, and the rule cannot pass on it
        for name in ("fp32", "int8"):
            for level in row[name].values():
                level.update({k: (None if np.isnan(v) else v) for k, v in level.items()})
        a8, a32 = row["int8"]["100%"]["auroc"], row["fp32"]["100%"]["auroc"]
        row["delta_auroc_full"] = None if a8 is None or a32 is None else a8 - a32
        out[src] = row
        delta = row["delta_auroc_full"]
        log(f"{src}: AUROC fp32 {_num(a32)} int8 {_num(a8)} (delta {_num(delta, '+.4f')})")
    return out


def _num(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="exported fp32 model folder")
    parser.add_argument("--run", type=Path, required=True, help="the training run (data/, config.json)")
    parser.add_argument("--out", type=Path, help="default: <model>-int8 beside it")
    parser.add_argument("--calibration-windows", type=int, default=512)
    parser.add_argument("--max-auroc-drop", type=float, default=0.005)
    args = parser.parse_args(argv)
    model_dir = resolve(args.model)
    run_dir = resolve(args.run)
    spec = json.loads((model_dir / "model.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    version = f"{spec['version']}-int8"
    out = args.out or model_dir.parent / version
    if out.exists():
        raise SystemExit(f"{out} exists; remove it first")
    use = config["sources"]["use"]
    sets = {
        s: {
            split: sources.SourceSet.load(run_dir / "data" / f"{s}-{split}.npz")
            for split in ("train", "test")
        }
        for s in use
    }
    train = sources.Mixed([sets[s]["train"] for s in use])
    rng = np.random.default_rng([int(config["seed"]), 31])
    pick = np.sort(
        rng.choice(len(train.label), min(args.calibration_windows, len(train.label)), replace=False)
    )
    out.mkdir(parents=True)
    onnx_path = out / "model.onnx"
    nodes = quantise(model_dir / "model.onnx", onnx_path, feeds(train, pick))
    log(f"quantised {len(nodes)} weight MatMul/Gemm nodes from {len(pick)} training windows")
    # metadata: the int8 graph is its own version
    import onnx

    q = onnx.load(str(onnx_path))
    for p in q.metadata_props:
        if p.key == "cistrack.version":
            p.value = version
    onnx.save(q, str(onnx_path))
    s32, s8 = ort_session(model_dir / "model.onnx"), ort_session(onnx_path)
    golden_dir = model_dir / spec["golden"]["dir"]
    golden_in = {k: np.load(golden_dir / spec["golden"]["inputs"][k]) for k in INPUT_NAMES}
    outputs, spread = batch_invariant_outputs(s8, golden_in)
    outputs["probability"] = calibration.apply(
        spec.get("calibration"), outputs["logit"], golden_in["modality_mask"]
    ).astype(np.float32)
    # same windows and inputs as the fp32 model; the outputs are the int8 graph's (ONNX Runtime)
    shutil.copytree(golden_dir, out / "golden")
    for name in OUTPUT_NAMES:
        np.save(out / "golden" / spec["golden"]["outputs"][name], outputs[name].astype(np.float32))
    results = held_out(s32, s8, sets, use, spec.get("calibration"), int(config["seed"]))
    default = all(
        r["delta_auroc_full"] is not None and r["delta_auroc_full"] >= -args.max_auroc_drop
        for r in results.values()
    )
    speed = {
        "fp32": ort_speed(model_dir / "model.onnx", golden_dir),
        "int8": ort_speed(onnx_path, out / "golden"),
    }
    sidecar = dict(spec)
    sidecar.update(
        version=version,
        metrics={
            "note": f"this int8 graph's held-out numbers are quantisation.held_out; the fp32 model's "
            f"full metrics are in {spec['name']}/{spec['version']}/model.json",
            "test": {src: r["int8"] for src, r in results.items()},
        },
        sha256=sha256(onnx_path),
        description=f"{spec['description']} — int8 (static QDQ, weight MatMul/Gemm only)",
        quantisation={
            "from": f"{spec['name']}/{spec['version']} (sha256 {spec['sha256']})",
            "method": "onnxruntime.quantization.quantize_static, QDQ, int8 weights / uint8 activations, "
            "per-tensor, MinMax over calibration windows; attention products and convolutions stay fp32",
            "nodes": len(nodes),
            "calibration_windows": f"{len(pick)} training windows of {', '.join(use)} "
            f"(seed {config['seed']})",
            "batch_spread_max_abs_logit": spread,
            "held_out": results,
            "rule": "CPU default only if AUROC on every held-out source is within "
            f"{args.max_auroc_drop} of fp32",
            "default_on_cpu": default,
            "onnxruntime_cpu": speed,
        },
    )
    (out / "model.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    log(
        f"wrote {out}: int8 {speed['int8']['windows_per_second']:.1f} vs fp32 "
        f"{speed['fp32']['windows_per_second']:.1f} windows/s; default on the CPU: {default}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
