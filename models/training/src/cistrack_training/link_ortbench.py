"""ONNX Runtime CPU throughput of the link model's two graphs (own process, without PyTorch).

Usage::

    python -m cistrack_training.link_ortbench MODEL_DIR [--threads 2] [--seconds 5] [--repeats 3]

Feeds the encoder 64 golden-like windows (the golden windows, repeated) and the predictor a batch
of 64 genes with 60 candidates each (the golden genes' rows repeated and padded, every candidate
present), and prints JSON with the median elements/s and genes/s over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _rate(session, feed: dict, items: int, seconds: float, repeats: int) -> list[float]:
    for _ in range(3):
        session.run(None, feed)
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 3:
            session.run(None, feed)
            n += 1
        rates.append(n * items / (time.perf_counter() - t0))
    return rates


def measure(model_dir: str | Path, threads: int = 2, seconds: float = 5.0, repeats: int = 3) -> dict:
    """Median elements/s (encoder, batch 64) and genes/s (predictor, 64 genes x 60 candidates)."""
    import onnxruntime as ort

    model_dir = Path(model_dir)
    spec = json.loads((model_dir / "model.json").read_text())
    golden = model_dir / spec["golden"]["dir"]
    enc = spec["golden"]["encoder"]
    pred = spec["golden"]["predictor"]
    seq = np.load(golden / enc["inputs"]["sequence"]).astype(np.float32)
    seq = np.concatenate([seq] * (64 // len(seq) + 1))[:64]
    encoder = _session(model_dir / spec["graphs"]["encoder"]["onnx"], threads)
    enc_rates = _rate(encoder, {"sequence": seq}, 64, seconds, repeats)

    arrays = {k: np.load(golden / v).astype(np.float32) for k, v in pred["inputs"].items()}
    rows = np.arange(64) % len(arrays["promoter_features"])
    c = 60
    feed = {}
    for name, a in arrays.items():
        a = a[rows]
        if name.startswith("candidate_"):
            pad = np.zeros((64, c) + a.shape[2:], dtype=np.float32)
            pad[:, : min(c, a.shape[1])] = a[:, :c]
            a = pad
        feed[name] = np.ascontiguousarray(a)
    # every candidate present, with the features of a real one (the first gene's first candidate)
    donor = np.argmax(arrays["candidate_mask"].sum(1))
    feed["candidate_mask"][:] = 1.0
    feed["candidate_features"][:] = arrays["candidate_features"][donor, 0]
    predictor = _session(model_dir / spec["graphs"]["predictor"]["onnx"], threads)
    pred_rates = _rate(predictor, feed, 64, seconds, repeats)
    return {
        "encoder_elements_per_second": statistics.median(enc_rates),
        "encoder_runs": enc_rates,
        "predictor_genes_per_second": statistics.median(pred_rates),
        "predictor_runs": pred_rates,
        "batch_size": 64,
        "candidates_per_gene": c,
        "intra_op_threads": threads,
        "onnxruntime": ort.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.model_dir, args.threads, args.seconds, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
