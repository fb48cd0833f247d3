"""Train the enhancer teacher, distil the student, and evaluate both on the held-out split.

Usage (from ``models/training``)::

    python -m cistrack_training.train --config configs/enhancer-0.1.0.json
    python -m cistrack_training.train --config configs/enhancer-0.1.0.json --resume

Stages (``--stage``, default ``all``):

1. ``data``: simulate the train / validation / test splits (:mod:`cistrack_training.simulate`) into
   ``runs/<name>/data/*.npz`` (reused when present).
2. ``motifs``: a small sequence-only network (:class:`~cistrack_training.model.MotifPretrainer`) is
   trained to tell training windows that carry the simulated K562 motif grammar (classes
   ``enhancer`` and ``closed_motif_cluster``: the simulator's record of planted sites) from the
   rest; its motif convolution warm-starts both models' sequence stems. Without it neither model
   learned the motif half of the task within the CPU budget (``models/README.md``).
3. ``teacher``: AdamW, BCE, linear learning-rate warm-up then cosine decay, modality dropout, full
   coverage. The checkpoint with the best validation AUROC becomes ``teacher/best.pt``.
4. ``student``: the frozen teacher is distilled into the student with
   ``alpha * BCE + (1 - alpha) * T^2 * KL(teacher_T || student_T)``, ``T = 4`` and ``alpha``
   cosine-annealed 0.1 -> 1.0 over the steps. The student sees a 7:3 mix of Poisson-downsampled
   (50/25/10/5/1 %) and full-coverage signal; the teacher always sees the full-coverage version of
   the same window (same modality mask).
5. ``evaluate``: metrics on the test split into ``runs/<name>/metrics.json``.

Every epoch writes ``<stage>/last.pt`` (model, optimiser, history); ``--resume`` continues from it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import encode, metrics
from .config import load_config, pin_run_config, resolve
from .losses import alpha_schedule, distillation_loss
from .model import AttLightEnhancer, ModelConfig, MotifPretrainer, flops_per_window, parameter_count
from .simulate import CLASSES, SimulatedSet, Simulator, encode_counts, thin

SPLITS = ("train", "validation", "test")


def log(message: str) -> None:
    """Print a progress line with a timestamp (flushed, for ``nohup`` logs)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def pick_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def format_seconds(seconds: float) -> str:
    """``1h02m03s`` style duration."""
    seconds = max(int(seconds), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def prepare_data(config: dict, run_dir: Path) -> dict[str, SimulatedSet]:
    """Simulate (or load previously simulated) splits into ``run_dir/data``."""
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    simulator = None
    for split in SPLITS:
        path = data_dir / f"{split}.npz"
        if path.exists():
            out[split] = SimulatedSet.load(path)
            continue
        if simulator is None:
            simulator = Simulator(config)
        t0 = time.time()
        out[split] = simulator.generate(split)
        out[split].save(path)
        log(
            f"simulated {split}: {len(out[split])} windows on {out[split].chromosomes} "
            f"in {time.time() - t0:.1f}s"
        )
    split_info = {
        s: {
            "chromosomes": out[s].chromosomes,
            "windows": len(out[s]),
            "positives": int(out[s].label.sum()),
            "classes": {c: int(np.sum(out[s].klass == i)) for i, c in enumerate(CLASSES)},
        }
        for s in SPLITS
    }
    (run_dir / "split.json").write_text(json.dumps(split_info, indent=2) + "\n")
    return out


def one_hot_batch(sequence: np.ndarray) -> np.ndarray:
    """``uint8 (B, L)`` ASCII -> ``float32 (B, 4, L)`` one-hot (the :func:`encode.one_hot` table)."""
    return encode._ONE_HOT[sequence].transpose(0, 2, 1).astype(np.float32)


def modality_dropout(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Random modality masks ``(n, 3)``: each modality dropped with probability ``p``, never all."""
    mask = (rng.random((n, 3)) >= p).astype(np.float32)
    empty = mask.sum(1) == 0
    mask[empty, rng.integers(0, 3, size=int(empty.sum()))] = 1.0
    return mask


def model_inputs(
    sequence: np.ndarray, signals: np.ndarray, mask: np.ndarray, device: torch.device
) -> dict[str, torch.Tensor]:
    """Model input tensors, masked modalities zeroed.

    ``sequence`` is ASCII ``(B, L)``, ``signals`` ``(B, 2, 200)`` and ``mask`` ``(B, 3)``.
    """
    seq = one_hot_batch(sequence) * mask[:, 0, None, None]
    sig = signals * mask[:, 1:, None]
    return {
        "sequence": torch.from_numpy(seq).to(device),
        "h3k27ac": torch.from_numpy(np.ascontiguousarray(sig[:, 0])).to(device),
        "accessibility": torch.from_numpy(np.ascontiguousarray(sig[:, 1])).to(device),
        "modality_mask": torch.from_numpy(np.ascontiguousarray(mask)).to(device),
    }


class Batches:
    """Turn a :class:`SimulatedSet` into model input tensors.

    Full-coverage signals are encoded once; downsampled ones are thinned per batch.
    """

    def __init__(self, data: SimulatedSet, device: torch.device):
        self.data = data
        self.device = device
        self.full = data.signals(np.arange(len(data)), 1.0, None)
        self._scales: dict[float, np.ndarray] = {}

    def signals(self, index: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Signals ``(B, 2, 200)`` with per-example coverage fractions."""
        out = self.full[index].copy()
        for f in np.unique(fractions):
            if f >= 1.0:
                continue
            sel = fractions == f
            if f not in self._scales:
                self._scales[f] = self.data.scales(float(f))
            out[sel] = encode_counts(thin(self.data.counts[index[sel]], float(f), rng), self._scales[f])
        return out

    def tensors(self, index: np.ndarray, signals: np.ndarray, mask: np.ndarray) -> dict[str, torch.Tensor]:
        """Model inputs with masked modalities zeroed."""
        return model_inputs(self.data.sequence[index], signals, mask, self.device)

    def labels(self, index: np.ndarray) -> torch.Tensor:
        """Labels as a float tensor."""
        return torch.from_numpy(self.data.label[index]).to(self.device)


def lr_at(step: int, total: int, base: float, warmup: int, min_fraction: float) -> float:
    """Linear warm-up to ``base`` over ``warmup`` steps, then cosine decay to ``min_fraction * base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return base * (min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


@torch.no_grad()
def predict(
    model: AttLightEnhancer,
    batches: Batches,
    signals: np.ndarray,
    mask: np.ndarray,
    batch_size: int,
    with_share: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (and modality shares) for every window of ``batches.data``."""
    model.eval()
    n = len(batches.data)
    logits, shares = [], []
    for lo in range(0, n, batch_size):
        idx = np.arange(lo, min(lo + batch_size, n))
        inputs = batches.tensors(idx, signals[idx], mask[idx])
        if with_share:
            logit, _, share = model(**inputs)
            shares.append(share.cpu().numpy())
        else:
            logit = model.logits(**inputs, fast=True)
        logits.append(logit.float().cpu().numpy())
    return np.concatenate(logits), (np.concatenate(shares) if with_share else None)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def save_checkpoint(path: Path, **state) -> None:
    """Write a checkpoint atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_model(path: Path, device: torch.device) -> AttLightEnhancer:
    """Load ``best.pt`` / ``last.pt`` of a stage as an eval-mode model."""
    state = torch.load(path, map_location=device, weights_only=False)
    model = AttLightEnhancer(ModelConfig.from_dict(state["model_config"])).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    return model


def resume_stage(
    last: Path,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    device: torch.device,
    resume: bool,
    role: str,
    epochs: int,
    history: dict,
) -> tuple[dict, float, int]:
    """``(history, best validation AUROC, first epoch to run)`` of a stage.

    With ``resume`` and an existing ``last`` checkpoint, the model and optimiser are restored from
    it; without ``resume``, an existing checkpoint stops the run instead of being overwritten.
    Otherwise the stage starts afresh with ``history``.
    """
    if resume and last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        start_epoch = state["epoch"] + 1
        log(f"{role}: resumed after epoch {start_epoch}/{epochs}")
        return state["history"], state["best_auroc"], start_epoch
    if last.exists():
        raise SystemExit(f"{last} exists; pass --resume to continue or remove {last.parent}")
    return history, -1.0, 0


def pretrain_motifs(config: dict, data: dict[str, SimulatedSet], run_dir: Path, device: torch.device) -> dict:
    """Warm-start weights for the motif convolution (stage ``motifs``), written to ``motifs/motif.pt``.

    Trains :class:`MotifPretrainer` on the training windows' sequence alone, with target 1 for the
    classes in ``motif_pretraining.target_classes`` (learning-rate warm-up, then cosine decay). Every
    ``eval_every`` steps the validation AUROC of that target is measured; training stops once it
    reaches ``target_auroc`` or after ``steps`` steps, and the best-scoring filters are kept.
    Returns the history; reuses a finished result.
    """
    cfg = config["motif_pretraining"]
    out_dir = run_dir / "motifs"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "motif.pt"
    if path.exists():
        return torch.load(path, map_location=device, weights_only=False)["history"]
    channels = {config[r]["model"]["stem_channels"] for r in ("teacher", "student")}
    kernels = {config[r]["model"]["stem_kernel"] for r in ("teacher", "student")}
    if len(channels) != 1 or len(kernels) != 1:
        raise SystemExit("motif pretraining needs equal stem_channels and stem_kernel in teacher and student")
    seed = int(config["seed"])
    torch.manual_seed(seed * 10)
    rng = np.random.default_rng([seed, 0])
    model = MotifPretrainer(channels.pop(), kernels.pop()).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    classes = [CLASSES.index(c) for c in cfg["target_classes"]]
    train, validation = data["train"], data["validation"]
    target = np.isin(train.klass, classes).astype(np.float32)
    val_target = np.isin(validation.klass, classes).astype(np.float32)
    val_x = torch.from_numpy(one_hot_batch(validation.sequence)).to(device)
    steps, bs = int(cfg["steps"]), int(cfg["batch_size"])
    history: dict = {"steps": steps, "target_classes": cfg["target_classes"], "validation": []}
    best: tuple[float, dict] = (-1.0, {})
    t0 = time.time()
    for step in range(steps):
        lr = lr_at(step, steps, cfg["lr"], cfg["warmup_steps"], cfg["min_lr_fraction"])
        for group in optimiser.param_groups:
            group["lr"] = lr
        idx = rng.choice(len(train), bs, replace=False)
        model.train()
        logit = model(torch.from_numpy(one_hot_batch(train.sequence[idx])).to(device))
        loss = F.binary_cross_entropy_with_logits(logit, torch.from_numpy(target[idx]).to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if (step + 1) % int(cfg["eval_every"]) == 0 or step + 1 == steps:
            model.eval()
            with torch.no_grad():
                val_logit = torch.cat([model(val_x[i : i + 100]) for i in range(0, len(val_x), 100)])
            auc = metrics.auroc(val_target, val_logit.cpu().numpy())
            history["validation"].append({"step": step + 1, "grammar_auroc": auc})
            if auc > best[0]:
                best = (auc, {k: v.detach().clone() for k, v in model.stem.motif.state_dict().items()})
            rate = (step + 1) * bs / (time.time() - t0)
            log(
                f"motifs step {step + 1}/{steps} loss {loss.item():.4f} validation grammar AUROC {auc:.4f} "
                f"{rate:.1f} windows/s"
            )
            if auc >= cfg["target_auroc"]:
                break
    history["seconds"] = time.time() - t0
    history["steps_run"] = step + 1
    history["best_validation_grammar_auroc"] = best[0]
    save_checkpoint(path, motif=best[1], history=history)
    return history


def train_stage(
    role: str,
    config: dict,
    data: dict[str, SimulatedSet],
    run_dir: Path,
    device: torch.device,
    resume: bool,
) -> dict:
    """Train the teacher (``role="teacher"``) or distil the student (``role="student"``).

    Returns
    -------
    dict
        The stage's history (per-epoch validation numbers, timings).
    """
    cfg = config[role]
    seed = int(config["seed"])
    stage_id = 1 if role == "teacher" else 2
    stage_dir = run_dir / role
    stage_dir.mkdir(parents=True, exist_ok=True)
    model_config = ModelConfig.from_dict(cfg["model"])
    torch.manual_seed(seed * 10 + stage_id)
    model = AttLightEnhancer(model_config).to(device)
    motif_path = run_dir / "motifs" / "motif.pt"
    if config["motif_pretraining"]["steps"] > 0:
        state = torch.load(motif_path, map_location=device, weights_only=False)
        model.sequence_stem.motif.load_state_dict(state["motif"])
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    teacher = None
    if role == "student":
        teacher = load_model(run_dir / "teacher" / "best.pt", device)
        for p in teacher.parameters():
            p.requires_grad_(False)
    train = Batches(data["train"], device)
    validation = Batches(data["validation"], device)
    n = len(train.data)
    bs = int(cfg["batch_size"])
    steps_per_epoch = math.ceil(n / bs)
    epochs = int(cfg["epochs"])
    total_steps = epochs * steps_per_epoch
    history: dict = {"epochs": [], "parameters": parameter_count(model), "train_seconds": 0.0}
    last = stage_dir / "last.pt"
    history, best_auroc, start_epoch = resume_stage(
        last, model, optimiser, device, resume, role, epochs, history
    )
    if start_epoch >= epochs:
        log(f"{role}: already trained ({epochs} epochs)")
        return history
    val_mask = np.ones((len(validation.data), 3), dtype=np.float32)
    every = int(config["progress_every"])
    for epoch in range(start_epoch, epochs):
        torch.manual_seed(seed * 1000 + stage_id * 100 + epoch)
        rng = np.random.default_rng([seed, stage_id, epoch])
        order = rng.permutation(n)
        model.train()
        t0 = time.time()
        running = 0.0
        seen = 0
        for step in range(steps_per_epoch):
            global_step = epoch * steps_per_epoch + step
            lr = lr_at(global_step, total_steps, cfg["lr"], cfg["warmup_steps"], cfg["min_lr_fraction"])
            for group in optimiser.param_groups:
                group["lr"] = lr
            idx = order[step * bs : (step + 1) * bs]
            mask = modality_dropout(len(idx), cfg["modality_dropout"], rng)
            y = train.labels(idx)
            if role == "teacher":
                fractions = np.ones(len(idx))
                inputs = train.tensors(idx, train.full[idx], mask)
                logit = model.logits(**inputs, fast=True)
                loss = F.binary_cross_entropy_with_logits(logit, y)
                alpha = 1.0
            else:
                fractions = np.where(
                    rng.random(len(idx)) < cfg["downsampled_fraction"],
                    rng.choice(cfg["coverage_fractions"], size=len(idx)),
                    1.0,
                )
                with torch.no_grad():
                    teacher_logit = teacher.logits(**train.tensors(idx, train.full[idx], mask), fast=True)
                inputs = train.tensors(idx, train.signals(idx, fractions, rng), mask)
                logit = model.logits(**inputs, fast=True)
                alpha = alpha_schedule(
                    global_step / max(total_steps - 1, 1), cfg["alpha_start"], cfg["alpha_end"]
                )
                loss, _, _ = distillation_loss(logit, teacher_logit, y, alpha, cfg["temperature"])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            optimiser.step()
            running += loss.item() * len(idx)
            seen += len(idx)
            if (step + 1) % every == 0 or step + 1 == steps_per_epoch:
                elapsed = time.time() - t0
                rate = seen / elapsed
                left_epoch = (n - seen) / rate
                left_stage = left_epoch + (epochs - epoch - 1) * n / rate
                log(
                    f"{role} epoch {epoch + 1}/{epochs} step {step + 1}/{steps_per_epoch} "
                    f"loss {running / seen:.4f} lr {lr:.2e} alpha {alpha:.2f} {rate:.1f} windows/s "
                    f"ETA epoch {format_seconds(left_epoch)} stage {format_seconds(left_stage)}"
                )
        train_seconds = time.time() - t0
        logits, _ = predict(model, validation, validation.full, val_mask, config["evaluation"]["batch_size"])
        y_val = validation.data.label
        val = metrics.summary(y_val, sigmoid(logits))
        val_loss = float(
            F.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(y_val)).item()
        )
        record = {
            "epoch": epoch + 1,
            "train_loss": running / seen,
            "validation_loss": val_loss,
            "validation_auroc": val["auroc"],
            "validation_auprc": val["auprc"],
            "train_seconds": train_seconds,
            "windows_per_second": n / train_seconds,
            "validation_mean_probability_by_class": {
                c: float(sigmoid(logits)[validation.data.klass == i].mean())
                for i, c in enumerate(CLASSES)
                if np.any(validation.data.klass == i)
            },
        }
        history["epochs"].append(record)
        history["train_seconds"] += train_seconds
        log(
            f"{role} epoch {epoch + 1}/{epochs} done in {format_seconds(train_seconds)}: "
            f"train loss {record['train_loss']:.4f} validation loss {val_loss:.4f} "
            f"AUROC {val['auroc']:.4f} AUPRC {val['auprc']:.4f}; mean probability by class "
            + " ".join(f"{c}={v:.2f}" for c, v in record["validation_mean_probability_by_class"].items())
        )
        if val["auroc"] > best_auroc:
            best_auroc = val["auroc"]
            history["best_epoch"] = epoch + 1
            save_checkpoint(
                stage_dir / "best.pt",
                model=model.state_dict(),
                model_config=model_config.to_dict(),
                epoch=epoch,
                validation_auroc=best_auroc,
            )
        save_checkpoint(
            last,
            model=model.state_dict(),
            model_config=model_config.to_dict(),
            optimiser=optimiser.state_dict(),
            epoch=epoch,
            history=history,
            best_auroc=best_auroc,
        )
    (stage_dir / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    return history


def evaluate(
    model: AttLightEnhancer, data: SimulatedSet, config: dict, device: torch.device, role: str
) -> dict:
    """Held-out metrics: coverage levels, modality ablations, attention shares.

    All coverage levels use the same thinned test signals for every model (seeded by the run
    seed and the level), so teacher and student numbers are comparable.
    """
    ev = config["evaluation"]
    batches = Batches(data, device)
    n = len(data)
    y = data.label
    full_mask = np.ones((n, 3), dtype=np.float32)
    out: dict = {"split": "test", "chromosomes": data.chromosomes, "coverage": {}, "ablation": {}}
    t0 = time.time()
    logits, shares = predict(model, batches, batches.full, full_mask, ev["batch_size"], with_share=True)
    p = sigmoid(logits)
    out["full"] = metrics.summary(y, p, ev["threshold"], ev["ece_bins"])
    out["mean_probability_by_class"] = {
        c: float(p[data.klass == i].mean()) for i, c in enumerate(CLASSES) if np.any(data.klass == i)
    }
    called = p >= ev["threshold"]
    out["attention_share_on_predicted_enhancers"] = {
        "n_windows": int(called.sum()),
        **{
            m: float(shares[called, i].mean()) if called.any() else None
            for i, m in enumerate(encode.MODALITIES)
        },
    }
    for level in ev["coverage_levels"]:
        key = f"{round(level * 100):g}%"
        if level >= 1.0:
            out["coverage"][key] = out["full"]
            continue
        rng = np.random.default_rng([int(config["seed"]), 7, round(level * 1e6)])
        signals = batches.signals(np.arange(n), np.full(n, level), rng)
        lg, _ = predict(model, batches, signals, full_mask, ev["batch_size"])
        out["coverage"][key] = metrics.summary(y, sigmoid(lg), ev["threshold"], ev["ece_bins"])
    for i, name in enumerate(encode.MODALITIES):
        mask = full_mask.copy()
        mask[:, i] = 0.0
        lg, _ = predict(model, batches, batches.full, mask, ev["batch_size"])
        auc = metrics.auroc(y, sigmoid(lg))
        out["ablation"][f"without_{name}"] = {"auroc": auc, "delta_auroc": auc - out["full"]["auroc"]}
    out["evaluation_seconds"] = time.time() - t0
    log(
        f"{role} test: AUROC {out['full']['auroc']:.4f} AUPRC {out['full']['auprc']:.4f} "
        f"F1 {out['full']['f1']:.4f} ECE {out['full']['ece']:.4f}; "
        + " ".join(f"{k}:{v['auroc']:.3f}" for k, v in out["coverage"].items())
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Train the cistrack enhancer teacher and student.")
    parser.add_argument("--config", type=Path, help="run config JSON (merged over the defaults)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoints")
    parser.add_argument(
        "--stage", choices=["data", "motifs", "teacher", "student", "evaluate", "all"], default="all"
    )
    parser.add_argument("--run-dir", type=Path, help="default: <runs_dir>/<name>")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    run_dir = args.run_dir or resolve(config["runs_dir"]) / config["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    pin_run_config(run_dir, config)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = pick_device()
    log(f"run {run_dir} on {device} with {torch.get_num_threads()} threads")
    t_start = time.time()
    data = prepare_data(config, run_dir)
    if args.stage == "data":
        return 0
    histories = {}
    if args.stage in ("motifs", "all") and config["motif_pretraining"]["steps"] > 0:
        histories["motifs"] = pretrain_motifs(config, data, run_dir, device)
    if args.stage in ("teacher", "all"):
        histories["teacher"] = train_stage("teacher", config, data, run_dir, device, args.resume)
    if args.stage in ("student", "all"):
        histories["student"] = train_stage("student", config, data, run_dir, device, args.resume)
    if args.stage in ("evaluate", "all"):
        result = {
            "data": "SIMULATED windows: real hg38 background sequence (true_hg38 blocks) with planted real "
            "JASPAR 2024 motif sites; simulated H3K27ac and accessibility coverage",
            "seed": config["seed"],
            "config": config.get("config_path"),
            "split": json.loads((run_dir / "split.json").read_text()),
        }
        motif_path = run_dir / "motifs" / "motif.pt"
        if motif_path.exists():
            result["motif_pretraining"] = torch.load(motif_path, map_location="cpu", weights_only=False)[
                "history"
            ]
        for role in ("teacher", "student"):
            history_path = run_dir / role / "history.json"
            history = json.loads(history_path.read_text()) if history_path.exists() else {}
            model = load_model(run_dir / role / "best.pt", device)
            result[role] = {
                "parameters": parameter_count(model),
                "gflop_per_window": flops_per_window(model) / 1e9,
                "model": model.config.to_dict(),
                "training": history,
                "test": evaluate(model, data["test"], config, device, role),
            }
        result["student_teacher_parameter_ratio"] = (
            result["student"]["parameters"] / result["teacher"]["parameters"]
        )
        result["wall_seconds_this_invocation"] = time.time() - t_start
        (run_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {run_dir / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
