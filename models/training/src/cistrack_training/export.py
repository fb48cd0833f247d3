"""Export trained enhancer models to ONNX with ``model.json`` and golden files (``models/CONTRACT.md``).

Usage (from ``models/training``)::

    python -m cistrack_training.export --run runs/enhancer-0.1.0

For each of the teacher and the student this writes ``models/enhancer-<role>/<version>/``:

* ``model.onnx``: ``torch.onnx.export(..., dynamo=True, opset_version=18)``, dynamic batch named
  ``batch``, one file, with the contract's ``cistrack.*`` metadata;
* ``golden/``: 64 windows of the test fixture build (``tests/data/fixture.toml``) encoded by
  :mod:`cistrack_training.encode`, and PyTorch's eval-mode outputs for them;
* ``model.json``: the sidecar, with sha256 of the final ``model.onnx`` and the held-out metrics.

ONNX Runtime (CPU) is checked against the golden outputs at batch sizes 1, 7 and 64; any
difference above ``atol = 1e-4`` fails the export. ONNX Runtime throughput at batch 64 with 2
threads is measured in a separate process (:mod:`cistrack_training.ortbench`) and recorded in
``model.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from . import calibration, encode
from .config import TRAINING_ROOT
from .model import AttLightEnhancer, example_inputs, parameter_count
from .train import load_model, log

INPUT_NAMES = ["sequence", "h3k27ac", "accessibility", "modality_mask"]
OUTPUT_NAMES = ["logit", "probability", "modality_share"]
ATOL = 1e-4
PARITY_BATCH_SIZES = (1, 7, 64)
REPO_ROOT = TRAINING_ROOT.parents[1]
MODELS_ROOT = TRAINING_ROOT.parent
FIXTURE = REPO_ROOT / "tests" / "data" / "fixture.toml"

MASKS = [(s, h, a) for s in (1, 0) for h in (1, 0) for a in (1, 0)]
"""All eight modality-mask combinations, all present first, all missing last."""

# fmt: off
GOLDEN_STARTS = {
    # chr1 is 60,000 bp; signal peaks at 12,712-13,262, 18,948-19,496 and 43,413-44,001.
    "chr1": [-1999, -1000, -1, 0, 1500, 3000, 6000, 8000, 11987, 12400, 14000, 18222, 18600, 20000,
             22000, 25000, 27500, 30000, 35000, 40000, 42707, 43000, 45000, 47500, 50000, 55000,
             57999, 58000, 58500, 59000, 59999],
    # chr2 is 40,000 bp with N at [22,000, 25,000): 22,000, 22,500 and 23,000 are all-N windows.
    "chr2": [-1999, -500, 0, 1000, 2500, 5000, 9000, 10000, 10500, 12000, 15000, 17000, 20000,
             20500, 21000, 21500, 22000, 22500, 23000, 23500, 24000, 24500, 25000, 26000, 28000,
             30000, 33000, 37999, 38000, 39000, 39500, 39999, 35000],
}
# fmt: on


def golden_windows() -> list[tuple[str, str, int, int, tuple[int, int, int]]]:
    """The 64 golden windows: ``(id, chrom, start0, end0, mask)``; mask combinations cycle."""
    out = []
    for chrom, starts in GOLDEN_STARTS.items():
        for start0 in starts:
            i = len(out)
            out.append((f"w{i:02d}", chrom, start0, start0 + encode.WINDOW_LENGTH, MASKS[i % len(MASKS)]))
    if len(out) != 64:
        raise AssertionError(f"expected 64 golden windows, got {len(out)}")
    return out


def encode_golden(build: encode.Build, windows) -> dict[str, np.ndarray]:
    """Encode windows with the reference encoding (masked modalities zeroed)."""
    rows = [build.encode_window(chrom, start0, mask) for _, chrom, start0, _, mask in windows]
    return {name: np.stack([r[name] for r in rows]) for name in INPUT_NAMES}


def torch_inputs(inputs: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    """Golden arrays -> float32 tensors in input order."""
    return tuple(torch.from_numpy(inputs[n].astype(np.float32)) for n in INPUT_NAMES)


@torch.no_grad()
def torch_outputs(model: AttLightEnhancer, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch eval-mode outputs."""
    model.eval()
    out = model(*torch_inputs(inputs))
    return {n: t.numpy().astype(np.float32) for n, t in zip(OUTPUT_NAMES, out, strict=True)}


def export_onnx(model: AttLightEnhancer, path: Path, metadata: dict[str, str]) -> None:
    """Export to one ONNX file (opset 18, dynamic batch ``batch``) with custom metadata."""
    import onnx

    model = model.cpu().eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    dynamic_shapes = {name: {0: batch} for name in INPUT_NAMES}
    program = torch.onnx.export(
        model,
        example_inputs(3),
        dynamo=True,
        opset_version=18,
        input_names=INPUT_NAMES,
        output_names=OUTPUT_NAMES,
        dynamic_shapes=dynamic_shapes,
        external_data=False,
    )
    proto = program.model_proto
    old = {v.type.tensor_type.shape.dim[0].dim_param for v in [*proto.graph.input, *proto.graph.output]}
    old.discard("")
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in old:
                dim.dim_param = "batch"
    for value in [*proto.graph.input, *proto.graph.output]:
        dim0 = value.type.tensor_type.shape.dim[0]
        if dim0.dim_param != "batch":
            raise RuntimeError(f"{value.name}: batch dimension is not dynamic after export")
    kept = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    for p in kept:
        proto.metadata_props.add(key=p.key, value=p.value)
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(path), save_as_external_data=False)


def ort_session(path: Path, threads: int = 2):
    """CPU ONNX Runtime session with all graph optimisations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_run(session, inputs: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    """Run ``session`` over ``inputs`` in chunks of ``batch_size`` and concatenate."""
    n = len(inputs["sequence"])
    parts: list[list[np.ndarray]] = [[] for _ in OUTPUT_NAMES]
    for lo in range(0, n, batch_size):
        feed = {
            k: np.ascontiguousarray(inputs[k][lo : lo + batch_size].astype(np.float32)) for k in INPUT_NAMES
        }
        for i, arr in enumerate(session.run(OUTPUT_NAMES, feed)):
            parts[i].append(arr)
    return {name: np.concatenate(parts[i]) for i, name in enumerate(OUTPUT_NAMES)}


def check_parity(session, inputs: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> dict:
    """Max absolute ORT-vs-PyTorch difference per output and batch size; raises above ``ATOL``."""
    report: dict = {}
    worst = 0.0
    for bs in PARITY_BATCH_SIZES:
        got = ort_run(session, inputs, bs)
        diffs = {}
        for name in OUTPUT_NAMES:
            if got[name].shape != expected[name].shape or not np.all(np.isfinite(got[name])):
                raise SystemExit(
                    f"ONNX Runtime output {name} at batch {bs} has shape {got[name].shape} or non-finite"
                )
            diffs[name] = float(np.max(np.abs(got[name].astype(np.float64) - expected[name])))
        report[str(bs)] = diffs
        worst = max(worst, *diffs.values())
    report["max_abs_diff"] = worst
    if worst > ATOL:
        raise SystemExit(f"ONNX Runtime differs from PyTorch by {worst:.3g} > {ATOL}: {report}")
    return report


def ort_speed(model: Path, golden: Path, threads: int = 2) -> dict:
    """ONNX Runtime windows/s at batch 64, measured by :mod:`.ortbench` in a fresh process."""
    import subprocess

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cistrack_training.ortbench",
            str(model),
            str(golden),
            "--threads",
            str(threads),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def json_safe(value):
    """``value`` with every non-finite float replaced by ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def sha256(path: Path) -> str:
    """Lower-case hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def machine_description() -> str:
    """CPU model, core count and OS, for speed records."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores visible, {platform.system()} {platform.release()}"


def _split_text(run_metrics: dict) -> str:
    split = run_metrics["split"]
    return (
        "; ".join(
            f"{name} {', '.join(info['chromosomes'])} "
            f"({info['windows']:,} windows, {info['positives']:,} enhancers)"
            for name, info in split.items()
        )
        + " - windows sampled only from true_hg38 blocks of hg38.partial.fa.gz, chromosome-disjoint splits"
    )


SOURCES_DATA = (
    "MIXED SOURCES (run config sources.use), split by chromosome for all sources at once: "
    "(1) simulated windows: real GRCh38 background (true_hg38 blocks) with planted real JASPAR 2024 sites "
    "and simulated H3K27ac/accessibility coverage and labels; "
    "(2) iEnhancer training set (Liu et al. 2016, hg19, 200 bp centred in an all-N window; sequence only, "
    "signals masked); "
    "(3) K562 ABC candidate elements genome-wide with real read counts (DNase ENCFF257HEE, H3K27ac "
    "ENCFF704LGA) spread uniformly over each candidate, label = distal candidate in the top quarter of "
    "ABC activity computed with two other H3K27ac replicates (ENCFF232RQF, ENCFF600THN), negatives = "
    "weaker distal candidates, promoter candidates and candidate-free windows; real sequence where "
    "hg38.partial.fa.gz has it, sequence masked elsewhere."
)


def _role_metrics(run_metrics: dict, role: str) -> tuple[dict, dict, str]:
    """``(training history + sizes, held-out metrics, split description)`` for both run layouts.

    ``train.py`` runs (simulated data) hold ``run_metrics[role]["test"]``; ``train_sources.py``
    runs hold ``run_metrics["models"][role]`` and per-source results under ``run_metrics["test"]``.
    """
    if "models" not in run_metrics:
        test = run_metrics[role]["test"]
        test_split = run_metrics["split"]["test"]
        split_desc = (
            f"test split: {test_split['windows']:,} SIMULATED windows on "
            f"{', '.join(test_split['chromosomes'])} "
            "(held out from training and validation by chromosome)"
        )
        held_out = {
            "split": split_desc,
            "auroc": test["full"]["auroc"],
            "auprc": test["full"]["auprc"],
            "f1_at_threshold": test["full"]["f1"],
            "accuracy_at_threshold": test["full"]["accuracy"],
            "ece_15_bins": test["full"]["ece"],
            "coverage": {
                k: {
                    "auroc": v["auroc"],
                    "auprc": v["auprc"],
                    "f1_at_threshold": v["f1"],
                    "ece_15_bins": v["ece"],
                }
                for k, v in test["coverage"].items()
            },
            "ablation_delta_auroc": {k: v["delta_auroc"] for k, v in test["ablation"].items()},
            "attention_share_on_predicted_enhancers": test["attention_share_on_predicted_enhancers"],
            "mean_probability_by_class": test["mean_probability_by_class"],
        }
        validation = "validation split: SIMULATED windows on " + ", ".join(
            run_metrics["split"]["validation"]["chromosomes"]
        )
        return run_metrics[role], held_out, validation
    held_out = {}
    for src, res in run_metrics["test"].items():
        m = res["models"][role]
        held_out[src] = {
            "windows": res["windows"],
            "positives": res["positives"],
            "chromosomes": res["chromosomes"],
            "auroc": m["full"]["auroc"],
            "auprc": m["full"]["auprc"],
            "f1_at_threshold": m["full"]["f1"],
            "ece_15_bins": m["full"]["ece"],
            "coverage_mean_sd_over_seeds": m["coverage"],
            "ablation_delta_auroc": {k: v["delta_auroc"] for k, v in m["ablation"].items()},
            "attention_share_on_predicted_enhancers": m.get("attention_share_on_predicted_enhancers"),
            "mean_probability_by_class": m["mean_probability_by_class"],
        }
    chroms = sorted({c for res in run_metrics["test"].values() for c in res["chromosomes"]})
    validation = "validation split: windows of every source on chromosomes held out of training"
    held_out = {"split": "test split by source, chromosomes " + ", ".join(chroms), "by_source": held_out}
    return run_metrics["models"][role], held_out, validation


def model_json(
    role: str,
    version: str,
    model: AttLightEnhancer,
    onnx_sha256: str,
    run_metrics: dict,
    config: dict,
    parity: dict,
    speed: dict,
) -> dict:
    """The contract's ``model.json`` for one exported model."""
    c = model.config
    role_metrics, held_out, validation_desc = _role_metrics(run_metrics, role)
    mixed = "models" in run_metrics
    student = role in ("student", "moe")
    distilled = " distilled from enhancer-teacher " + version if student else ""
    if c.moe_experts > 0:
        distilled = (
            f", sparse mixture-of-experts feed-forward ({c.moe_experts} experts, top-{c.moe_top_k} "
            f"routing){distilled}"
        )
    if mixed:
        data_text = SOURCES_DATA + (
            " Student distilled on a 7:3 mix of Poisson-downsampled (50/25/10/5/1%) and full-coverage signal."
            if student
            else f" Teacher warm-started from {config['init']['teacher']} and trained at full coverage."
        )
        split_text = (
            "; ".join(
                f"{s} {', '.join(config['sources']['split'][s])}" for s in ("train", "validation", "test")
            )
            + " (every source)"
        )
        trained_on = "trained on real K562 candidate counts, the iEnhancer set and simulated windows"
    else:
        data_text = (
            "SIMULATED: 2,000-bp windows of real GRCh38 sequence (true_hg38 blocks of "
            "shared/data/hg38/genome/hg38.partial.fa.gz) with planted binding sites sampled from real "
            "JASPAR 2024 CORE vertebrate matrices; labels, site placement and per-base H3K27ac and "
            "accessibility coverage (Poisson around hand-made peak shapes) are simulated. Classes: "
            "enhancer (K562 motif grammar + bimodal H3K27ac + central accessibility), background, "
            "open CTCF decoys, acetylated decoys without the grammar, motif clusters in closed chromatin."
            + (
                " Student distilled on a 7:3 mix of Poisson-downsampled (50/25/10/5/1%) and "
                "full-coverage signal."
                if student
                else " Full coverage only."
            )
        )
        split_text = _split_text(run_metrics)
        trained_on = (
            "trained on SIMULATED data (real hg38 sequence and JASPAR motifs, simulated "
            "H3K27ac/accessibility), not calibrated on real tracks"
        )
    return {
        "schema_version": 1,
        "name": f"enhancer-{role}",
        "version": version,
        "kind": "enhancer",
        "role": role,
        "description": (
            f"AttLight-Enhancer {role} (D={c.d_model}, {c.heads} heads, {c.encoder_layers} encoder "
            f"layer{'s' if c.encoder_layers > 1 else ''}){distilled}; {trained_on}"
        ),
        "onnx": "model.onnx",
        "sha256": onnx_sha256,
        "window": {"length": encode.WINDOW_LENGTH, "bin_size": encode.BIN_SIZE, "bins": encode.N_BINS},
        "sequence": {"alphabet": "ACGT", "layout": "channels_first", "other_bases": "zeros"},
        "signal": {"normalisation": encode.NORMALISATION, "clip_max": encode.CLIP_MAX},
        "modalities": list(encode.MODALITIES),
        "inputs": [
            {"name": "sequence", "dtype": "float32", "shape": ["batch", 4, encode.WINDOW_LENGTH]},
            {"name": "h3k27ac", "dtype": "float32", "shape": ["batch", encode.N_BINS]},
            {"name": "accessibility", "dtype": "float32", "shape": ["batch", encode.N_BINS]},
            {"name": "modality_mask", "dtype": "float32", "shape": ["batch", 3]},
        ],
        "outputs": [
            {"name": "logit", "dtype": "float32", "shape": ["batch"]},
            {"name": "probability", "dtype": "float32", "shape": ["batch"]},
            {"name": "modality_share", "dtype": "float32", "shape": ["batch", 3]},
        ],
        "threshold": config["evaluation"]["threshold"],
        **(
            {"calibration": run_metrics["calibration"][role]}
            if role in run_metrics.get("calibration", {})
            else {}
        ),
        "architecture": {
            "d_model": c.d_model,
            "heads": c.heads,
            "encoder_layers": c.encoder_layers,
            "dropout": c.dropout,
            "parameters": parameter_count(model),
            "sequence_token_mask": c.sequence_token_mask,
            "both_strands": c.both_strands,
            "sequence_blocks": c.sequence_blocks,
        },
        "strands": "both (mean logit of the window and its reverse complement, in the graph)"
        if c.both_strands
        else "forward",
        "training": {
            "data": data_text,
            "split": split_text,
            "seed": run_metrics["seed"],
            "config": run_metrics.get("config"),
        },
        "metrics": {
            "test": held_out,
            "validation": {
                "split": validation_desc,
                "best_auroc": max(e["validation_auroc"] for e in role_metrics["training"]["epochs"]),
                "best_epoch": role_metrics["training"].get("best_epoch"),
            },
            "gflop_per_window": role_metrics["gflop_per_window"],
            "onnxruntime_cpu": {
                "windows_per_second": speed["windows_per_second"],
                "runs_windows_per_second": speed["runs"],
                "batch_size": speed["batch_size"],
                "intra_op_threads": speed["intra_op_threads"],
                "graph_optimization": "all",
                "onnxruntime": speed["onnxruntime"],
                "machine": machine_description(),
                "note": "median of 3 runs of 5 s on the 64 golden windows with all modalities present; "
                "the machine was shared with other work, so treat as approximate",
            },
            "parity_onnxruntime_vs_pytorch": {
                "max_abs_diff": parity["max_abs_diff"],
                "by_batch_size": {k: v for k, v in parity.items() if k != "max_abs_diff"},
                "golden_windows": 64,
            },
        },
        "golden": {
            "dir": "golden",
            "windows": "windows.tsv",
            "inputs": {
                "sequence": "sequence.npy",
                "h3k27ac": "h3k27ac.npy",
                "accessibility": "accessibility.npy",
                "modality_mask": "modality_mask.npy",
            },
            "outputs": {
                "logit": "logit.npy",
                "probability": "probability.npy",
                "modality_share": "modality_share.npy",
            },
            "build": "tests/data/fixture.toml",
            "atol": ATOL,
        },
    }


def write_golden(
    directory: Path, windows, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]
) -> None:
    """Write ``windows.tsv`` and the ``.npy`` inputs and outputs."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["id\tchrom\tstart0\tend0\tmask_sequence\tmask_h3k27ac\tmask_accessibility"]
    lines += [f"{i}\t{c}\t{s}\t{e}\t{m[0]}\t{m[1]}\t{m[2]}" for i, c, s, e, m in windows]
    (directory / "windows.tsv").write_text("\n".join(lines) + "\n")
    np.save(directory / "sequence.npy", inputs["sequence"].astype(np.uint8))
    for name in INPUT_NAMES[1:]:
        np.save(directory / f"{name}.npy", inputs[name].astype(np.float32))
    for name in OUTPUT_NAMES:
        np.save(directory / f"{name}.npy", outputs[name].astype(np.float32))


def export_role(
    role: str,
    run_dir: Path,
    out_root: Path,
    version: str,
    build: encode.Build,
    run_metrics: dict,
    config: dict,
) -> dict:
    """Export one trained model (``teacher`` or ``student``) with its golden files and sidecar."""
    name = f"enhancer-{role}"
    target = out_root / name / version
    target.mkdir(parents=True, exist_ok=True)
    model = load_model(run_dir / role / "best.pt", torch.device("cpu"))
    windows = golden_windows()
    inputs = encode_golden(build, windows)
    outputs = torch_outputs(model, inputs)
    for key, value in outputs.items():
        if not np.all(np.isfinite(value)):
            raise SystemExit(f"{name}: PyTorch output {key} is not finite")
    # the golden probability is what the runtime reports: the graph's logit through the
    # model's calibration (CONTRACT.md); ONNX Runtime is checked against the raw graph
    fitted = run_metrics.get("calibration", {}).get(role)
    golden = dict(outputs)
    if fitted is not None:
        golden["probability"] = calibration.apply(fitted, outputs["logit"], inputs["modality_mask"]).astype(
            np.float32
        )
    write_golden(target / "golden", windows, inputs, golden)
    onnx_path = target / "model.onnx"
    metadata = {
        "cistrack.name": name,
        "cistrack.version": version,
        "cistrack.kind": "enhancer",
        "cistrack.window": str(encode.WINDOW_LENGTH),
        "cistrack.bin_size": str(encode.BIN_SIZE),
        "cistrack.normalisation": encode.NORMALISATION,
    }
    log(f"{name}: exporting ONNX")
    export_onnx(model, onnx_path, metadata)
    session = ort_session(onnx_path, threads=2)
    parity = check_parity(session, inputs, outputs)
    log(f"{name}: ONNX Runtime vs PyTorch max abs diff {parity['max_abs_diff']:.3g} (batch 1, 7, 64)")
    speed = ort_speed(onnx_path, target / "golden")
    log(f"{name}: ONNX Runtime CPU {speed['windows_per_second']:.1f} windows/s (batch 64, 2 threads)")
    digest = sha256(onnx_path)
    sidecar = model_json(role, version, model, digest, run_metrics, config, parity, speed)
    # JSON has no NaN (an AUROC of a test set without positives): null, which readers accept
    (target / "model.json").write_text(json.dumps(json_safe(sidecar), indent=2, allow_nan=False) + "\n")
    log(f"{name}: wrote {target} (sha256 {digest}, {onnx_path.stat().st_size:,} bytes)")
    return {"dir": str(target), "sha256": digest, "parity": parity, "onnxruntime_cpu": speed}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Export the cistrack enhancer models to ONNX.")
    parser.add_argument(
        "--run", type=Path, default=TRAINING_ROOT / "runs" / "enhancer-0.1.0", help="training run dir"
    )
    parser.add_argument(
        "--out", type=Path, default=MODELS_ROOT, help="models/ directory (default: this repo's)"
    )
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--build", type=Path, default=FIXTURE, help="build TOML for the golden windows")
    parser.add_argument(
        "--roles", nargs="+", default=["teacher", "student"], choices=["teacher", "student", "moe"]
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    run_metrics = json.loads((args.run / "metrics.json").read_text())
    config = json.loads((args.run / "config.json").read_text())
    build = encode.Build.from_toml(args.build)
    report = {}
    for role in args.roles:
        report[role] = export_role(role, args.run, args.out, args.version, build, run_metrics, config)
    (args.run / "export.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
