"""ONNX Runtime CPU throughput of an enhancer model (run in its own process, without PyTorch).

Usage::

    python -m cistrack_training.ortbench MODEL.onnx GOLDEN_DIR [--threads 2] [--seconds 5] [--repeats 3]

Feeds the 64 golden windows (all modalities present) as one batch and prints JSON with the median
windows/s over the repeats. A separate process keeps PyTorch's idle worker threads from competing
with ONNX Runtime's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

INPUT_NAMES = ["sequence", "h3k27ac", "accessibility", "modality_mask"]


def measure(model: str, golden: str, threads: int = 2, seconds: float = 5.0, repeats: int = 3) -> dict:
    """Median and all windows/s of ``repeats`` timed runs of ``seconds`` each (after warm-up)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {k: np.load(f"{golden}/{k}.npy").astype(np.float32) for k in INPUT_NAMES}
    feed["modality_mask"] = np.ones_like(feed["modality_mask"])
    batch = len(feed["sequence"])
    for _ in range(3):
        session.run(None, feed)
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds or n < 3:
            session.run(None, feed)
            n += 1
        rates.append(n * batch / (time.perf_counter() - t0))
    return {
        "windows_per_second": statistics.median(rates),
        "runs": rates,
        "batch_size": batch,
        "intra_op_threads": threads,
        "onnxruntime": ort.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("golden")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.model, args.golden, args.threads, args.seconds, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
