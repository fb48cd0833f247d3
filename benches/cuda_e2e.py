#!/usr/bin/env python3
"""CUDA against the CPU, in one run on one machine (issue 12's GPU point).

Needs a machine with an NVIDIA GPU, an ONNX Runtime whose CUDA execution provider loads
(`libonnxruntime.so` with `libonnxruntime_providers_cuda.so` beside it, named by ORT_DYLIB_PATH
or found as cistrack documents), the CUDA 13 and cuDNN 9 libraries on the loader path, and a
release build (`cargo build --release --example ort_floor`). Python's standard library only:
no curl, bc or hyperfine on the GPU machine.

    python3 benches/cuda_e2e.py [--config examples/hg38.toml] [--out benches/results/cuda_e2e.md]

It measures, on the same region, model and machine:
  - `cistrack doctor --device cuda` (its CUDA line must say `ok`);
  - the window probabilities of a 100-kb region on CUDA against the CPU (4 decimals);
  - the ONNX Runtime floor (examples/ort_floor.rs: windows read and encoded first, only the
    model calls timed, one untimed warm-up batch) on CUDA at batch 128, 256, 512, 1024 and on
    the CPU (all cores) at batch 4 (the CPU default) and 64;
  - `cistrack score --no-cache` at the same settings: windows/s, process start and model
    loading included, and the ratio to the floor of the same device and batch;
  - with 1 model worker as well as the default (4 with CUDA) at batch 512 (`B:W` settings);
  - the daemon, cold (empty cache), a dense 1-Mb view: windows/s and the ratio to the floor;
    warm: p50 of 21 requests for the same view.
Each number is the median of --runs runs. Writes a Markdown table to --out (and stdout).
"""

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="examples/hg38.toml")
    p.add_argument("--bin", default="target/release/cistrack")
    p.add_argument("--floor-bin", default="target/release/examples/ort_floor")
    p.add_argument("--region", default="chr22:17,200,001-21,600,000",
                   help="region scored by the floor and `score` (default: 4.4 Mb of real chr22 sequence, 22,000 windows)")
    p.add_argument("--view", default="ref=chr22&start=17200000&end=18200000",
                   help="the daemon's dense view (query string)")
    p.add_argument("--cuda-batches", default="128,256,512,1024,512:1",
                   help="batch sizes on CUDA; B:W also sets W model workers for `score` and the daemon "
                        "(default: the device's, 4 with CUDA)")
    p.add_argument("--cpu-batches", default="4,64")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="ONNX Runtime intra-op threads on the CPU (default: every core)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--parity-region", default="chr22:17,400,001-17,500,000",
                   help="region scored on both devices to compare the window probabilities")
    p.add_argument("--out", default="benches/results/cuda_e2e.md")
    p.add_argument("--commit", help="commit measured (default: git rev-parse; a GPU machine may have no git)")
    return p.parse_args()


def run(cmd, **kw):
    print("+", " ".join(map(str, cmd)), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def floor(args, device, batch):
    out = run([args.floor_bin, args.config, args.region, str(batch), str(args.threads), device]).stdout
    fields = dict(kv.split("=") for kv in out.split())
    if fields["device"] != device:
        sys.exit(f"the floor ran on {fields['device']}, not {device}")
    return int(fields["windows"]), float(fields["windows_per_s"])


def global_flags(args, device, workers):
    flags = ["-q", "--config", args.config, "--device", device, "--threads", str(args.threads)]
    return flags + (["--workers", str(workers)] if workers else [])


def score(args, device, batch, workers, windows):
    t0 = time.perf_counter()
    run([args.bin, *global_flags(args, device, workers), "score", "--no-cache", "--batch-size", str(batch),
         "--region", args.region, "-o", os.devnull])
    return windows / (time.perf_counter() - t0)


def parity(args, tmp, devices=("cpu", "cuda")):
    """Window probabilities of the parity region on each device (bedGraph, 4 decimals)."""
    values = {}
    for device in devices:
        out = Path(tmp) / f"parity-{device}-{len(values)}.bedGraph"
        run([args.bin, *global_flags(args, device, None), "score", "--no-cache", "--region",
             args.parity_region, "--windows", str(out), "-o", os.devnull])
        values[out.stem] = [float(l.split("\t")[3]) for l in out.read_text().splitlines() if l and l[0] != "#"]
    cpu, cuda = values.values()
    if len(cpu) != len(cuda):
        sys.exit(f"parity: {len(cpu)} windows on the CPU, {len(cuda)} on CUDA")
    diffs = [abs(a - b) for a, b in zip(cpu, cuda)]
    return len(diffs), sum(d > 0 for d in diffs), max(diffs)


def get(url, timeout=300):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def daemon(args, device, batch, workers, tmp):
    """Cold dense view windows/s and warm p50 (ms) from a fresh daemon with an empty cache."""
    port = random.randint(20000, 40000)
    cache = Path(tmp) / f"cache-{device}-{batch}-{workers}-{port}"
    log = open(Path(tmp) / f"daemon-{device}-{batch}-{workers}.log", "w")
    proc = subprocess.Popen([args.bin, *global_flags(args, device, workers), "serve", "--bind",
                             f"127.0.0.1:{port}", "--max-batch", str(batch), "--cache-dir", str(cache)],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                sys.exit(f"the daemon exited: {open(log.name).read()}")
            try:
                get(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit(f"the daemon did not answer /healthz: {open(log.name).read()}")
        url = f"{base}/v1/builds/hg38/enhancers?{args.view}&mode=dense&wait=120000"
        seconds, body = get(url)
        answer = json.loads(body)
        if not answer.get("complete"):
            sys.exit(f"the cold view is not complete: {body[:300]!r}")
        windows = len(answer["windows"])
        warm = sorted(get(url)[0] for _ in range(21))
        return windows, windows / seconds, warm[10] * 1000
    finally:
        proc.terminate()
        proc.wait()


def cuda_line(args):
    out = subprocess.run([args.bin, "--config", args.config, "--device", "cuda", "doctor"], text=True,
                         capture_output=True)
    lines = [l for l in (out.stdout + out.stderr).splitlines() if "CUDA" in l]
    return lines[0].strip() if lines else "(doctor printed no CUDA line)"


def gpu_name():
    smi = shutil.which("nvidia-smi")
    if not smi:
        return "no nvidia-smi"
    out = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         text=True, capture_output=True).stdout.strip()
    return out or "nvidia-smi printed nothing"


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main():
    args = parse_args()
    os.chdir(ROOT)
    def setting(device, text):
        batch, _, workers = text.partition(":")
        return device, int(batch), int(workers) if workers else None
    settings = [setting("cuda", b) for b in args.cuda_batches.split(",") if b] + \
               [setting("cpu", b) for b in args.cpu_batches.split(",") if b]
    doctor = cuda_line(args)
    print(doctor, file=sys.stderr)
    if any(s[0] == "cuda" for s in settings) and not doctor.startswith("ok"):
        sys.exit("CUDA is not usable here; nothing to measure (--cuda-batches '' measures the CPU alone)")
    rows = {s: {"floor": [], "score": [], "dense": [], "warm": []} for s in settings}
    meta, floors = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        if any(s[0] == "cuda" for s in settings):
            meta["parity"] = parity(args, tmp)
        for r in range(args.runs):
            for device, batch, workers in settings:
                print(f"run {r + 1}/{args.runs}: {device} batch {batch} workers {workers or 'default'}",
                      file=sys.stderr, flush=True)
                if (r, device, batch) not in floors:  # one session: the same for any worker count
                    floors[(r, device, batch)] = floor(args, device, batch)
                windows, fl = floors[(r, device, batch)]
                m = rows[(device, batch, workers)]
                m["floor"].append(fl)
                m["score"].append(score(args, device, batch, workers, windows))
                view_windows, dense, warm = daemon(args, device, batch, workers, tmp)
                m["dense"].append(dense)
                m["warm"].append(warm)
                meta.update(windows=windows, view_windows=view_windows)
    med = {s: {k: statistics.median(v) for k, v in m.items()} for s, m in rows.items()}
    best_cpu = max((s for s in settings if s[0] == "cpu"), key=lambda s: med[s]["score"])
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], text=True,
                                           capture_output=True).stdout.strip()
    lines = [
        f"# CUDA against the CPU, {time.strftime('%Y-%m-%d', time.gmtime())}",
        "",
        f"GPU: {gpu_name()}; CPU: {os.cpu_count()} cores, {cpu_name()}; commit {commit or '(no git)'}; "
        f"{doctor}; region {args.region} ({meta['windows']} windows) for the floor and `score`, "
        f"dense view {args.view} ({meta['view_windows']} windows) for the daemon; CPU with "
        f"{args.threads} ONNX Runtime threads; median of {args.runs} run(s).",
        "",
    ]
    if "parity" in meta:
        n, differ, worst = meta["parity"]
        lines += [f"CUDA against the CPU on {args.parity_region}: {n} window probabilities (4 decimals), "
                  f"{differ} differ, largest difference {worst:.4f}.", ""]
    lines += [
        "| device | batch | workers | floor windows/s | `score` windows/s | score / floor | daemon cold dense windows/s "
        "| daemon / floor | daemon warm p50 ms | `score` × best CPU |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in settings:
        m = med[s]
        lines.append(
            f"| {s[0]} | {s[1]} | {s[2] or 'default'} | {m['floor']:.0f} | {m['score']:.0f} | {m['score'] / m['floor']:.2f} | "
            f"{m['dense']:.0f} | {m['dense'] / m['floor']:.2f} | {m['warm']:.1f} | "
            f"{m['score'] / med[best_cpu]['score']:.2f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
