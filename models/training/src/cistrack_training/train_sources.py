"""Train and judge the enhancer models on every labelled source (real and simulated).

Usage (from ``models/training``)::

    python -m cistrack_training.train_sources --config configs/enhancer-0.2.0.json
    python -m cistrack_training.train_sources --config configs/enhancer-0.2.0.json --resume
    python -m cistrack_training.train_sources --config configs/enhancer-0.2.0.json --stage evaluate

Stages (``--stage``, default ``all``), each written under ``runs/<name>/``:

1. ``data``: every source of :mod:`cistrack_training.sources` into ``data/<source>-<split>.npz``
   and ``split.json`` (windows, positives, classes and chromosomes per source and split).
2. ``teacher``: the teacher (warm-started from ``init.teacher`` when set), BCE at full coverage,
   modality dropout among the modalities each window has.
3. ``student``: the student distilled from the frozen teacher exactly as designed:
   ``alpha * BCE + (1 - alpha) * T^2 * KL(teacher_T || student_T)``, ``T = 4``, ``alpha`` cosine
   0.1 -> 1.0, a 7:3 mix of Poisson-downsampled (50/25/10/5/1 %) and full-coverage signal; the
   teacher sees the full-coverage version of the same window.
4. ``scratch``: the same student architecture, data, coverage mix and initialisation without the
   teacher (``alpha = 1``): the from-scratch baseline.
5. ``finetune``: the trained teacher fine-tuned with BCE on the same downsampled mix.
6. ``cnn``: a DeepCAPE-like two-branch CNN (:class:`TwoBranchCNN`) trained like the teacher.
7. ``evaluate``: every model on every source's test split: full coverage, each coverage level
   repeated with ``evaluation.coverage_seeds`` seeds (the same thinned inputs for every model),
   modality ablations, attention shares and mean probability by class, into ``metrics.json``
   and ``tables.md``.

Every epoch writes ``<stage>/last.pt``; ``--resume`` continues from it. A CUDA GPU is used when present.
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
from torch import nn

from . import calibration, encode, metrics, sources
from .config import data_path, load_config, merge, pin_run_config, resolve
from .losses import alpha_schedule, distillation_loss
from .model import (
    AttLightEnhancer,
    ModelConfig,
    active_parameter_count,
    flops_per_window,
    jaspar_filters,
    parameter_count,
    reverse_complement,
)
from .simulate import read_jaspar
from .train import (
    format_seconds,
    log,
    lr_at,
    modality_dropout,
    model_inputs,
    pick_device,
    resume_stage,
    save_checkpoint,
    sigmoid,
)

ROLES = ("teacher", "student", "scratch", "finetune", "cnn", "moe")

ATTLIGHT_ARCH = {
    "teacher": "teacher",
    "student": "student",
    "scratch": "student",
    "finetune": "teacher",
    "moe": "moe",
}

DISTILLED = ("student", "moe")
"""Roles trained from the teacher's logits (the sparse-MoE student like the dense one)."""


class TwoBranchCNN(nn.Module):
    """DeepCAPE-like baseline: a sequence CNN branch and a signal CNN branch, concatenated.

    Sequence: conv(15) -> ReLU -> max-pool 10 -> conv(7) -> ReLU -> global max and mean pool.
    Signals (H3K27ac and accessibility as two channels of 200 bins): conv(5) -> ReLU -> conv(5)
    -> ReLU -> global max and mean pool. The two summaries and the modality mask feed an MLP.
    Missing modalities are zeroed at the input; the mask tells the head which ones were present.
    """

    def __init__(
        self, channels: int = 128, signal_channels: int = 64, hidden: int = 128, dropout: float = 0.3
    ):
        super().__init__()
        self.seq = nn.Sequential(
            nn.Conv1d(4, channels, 15, padding=7),
            nn.ReLU(),
            nn.MaxPool1d(10),
            nn.Conv1d(channels, channels, 7, padding=3),
            nn.ReLU(),
        )
        self.sig = nn.Sequential(
            nn.Conv1d(2, signal_channels, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(signal_channels, signal_channels, 5, padding=2),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Linear(2 * channels + 2 * signal_channels + 3, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def strand_logits(
        self, sequence, h3k27ac, accessibility, modality_mask, fast: bool = True
    ) -> torch.Tensor:
        """Inference logits (one strand; the CNN is not exported)."""
        return self.logits(sequence, h3k27ac, accessibility, modality_mask, fast=fast)

    def logits(self, sequence, h3k27ac, accessibility, modality_mask, fast: bool = True) -> torch.Tensor:
        """Logits ``(B,)`` (``fast`` is accepted for the AttLight interface and ignored)."""
        s = self.seq(sequence * modality_mask[:, 0, None, None])
        sig = torch.stack([h3k27ac * modality_mask[:, 1, None], accessibility * modality_mask[:, 2, None]], 1)
        g = self.sig(sig)
        x = torch.cat([s.amax(-1), s.mean(-1), g.amax(-1), g.mean(-1), modality_mask], dim=1)
        return self.head(x).squeeze(-1)


def build_model(role: str, config: dict) -> nn.Module:
    """A fresh model for a role."""
    if role == "cnn":
        return TwoBranchCNN(**config["cnn"]["model"])
    return AttLightEnhancer(ModelConfig.from_dict(config[ATTLIGHT_ARCH[role]]["model"]))


def with_moe(config: dict) -> dict:
    """Resolve the sparse-MoE student's section: the dense student's, ``moe`` merged over it.

    The ``moe`` section holds only what differs (``model.moe_experts``, ``moe_balance``, ...).
    """
    if "moe" in config:
        config["moe"] = merge(config["student"], config["moe"])
    return config


def load_teacher(run_dir: Path, cfg: dict, config: dict, device: torch.device) -> nn.Module:
    """Load the frozen teacher of a distilled role.

    The run's own, or the checkpoint the role's ``teacher`` names (a sparse-MoE student
    distilled from another run's teacher).
    """
    if cfg.get("teacher"):
        path = resolve(cfg["teacher"])
        if not path.exists():
            raise SystemExit(f"teacher checkpoint {path} not found (the role's `teacher` setting)")
        state = torch.load(path, map_location=device, weights_only=False)
        teacher = AttLightEnhancer(ModelConfig.from_dict(state["model_config"])).to(device)
        teacher.load_state_dict(state["model"])
        teacher.eval()
        log(f"teacher: {path}")
    else:
        teacher = load_role(run_dir, "teacher", config, device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def load_role(run_dir: Path, role: str, config: dict, device: torch.device) -> nn.Module:
    """The best checkpoint of a role, in eval mode."""
    state = torch.load(run_dir / role / "best.pt", map_location=device, weights_only=False)
    model = build_model(role, config).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    return model


def present_mask(available: np.ndarray, p: float, rng: np.random.Generator | None) -> np.ndarray:
    """Modality masks: dropout (probability ``p`` each) among the available modalities, never none."""
    if rng is None or p <= 0:
        return available.copy()
    mask = modality_dropout(len(available), p, rng) * available
    empty = mask.sum(1) == 0
    mask[empty] = available[empty]
    return mask.astype(np.float32)


def tensors(
    data: sources.Mixed,
    index: np.ndarray,
    signals: np.ndarray,
    mask: np.ndarray,
    device,
    flip: np.ndarray | None = None,
) -> dict:
    """Model inputs of the windows ``index`` of ``data``, masked modalities zeroed.

    ``flip`` (bool per window) reads those windows on the other strand (reverse-complement
    augmentation; :func:`cistrack_training.model.reverse_complement`).
    """
    inputs = model_inputs(data.sequence[index], signals, mask, device)
    if flip is not None and flip.any():
        rows = torch.from_numpy(np.flatnonzero(flip)).to(device)
        rc = reverse_complement(
            inputs["sequence"][rows], inputs["h3k27ac"][rows], inputs["accessibility"][rows]
        )
        for name, value in zip(("sequence", "h3k27ac", "accessibility"), rc, strict=True):
            inputs[name] = inputs[name].index_copy(0, rows, value)
    return inputs


@torch.no_grad()
def predict(model, data: sources.Mixed, signals: np.ndarray, mask: np.ndarray, bs: int, device, share=False):
    """Logits (and modality shares for AttLight models) of every window of ``data``."""
    model.eval()
    logits, shares = [], []
    for lo in range(0, len(data), bs):
        idx = np.arange(lo, min(lo + bs, len(data)))
        inputs = tensors(data, idx, signals[idx], mask[idx], device)
        if share and isinstance(model, AttLightEnhancer):
            logit, _, s = model(**inputs)
            shares.append(s.cpu().numpy())
        else:
            logit = model.strand_logits(**inputs, fast=True)
        logits.append(logit.float().cpu().numpy())
    return np.concatenate(logits), (np.concatenate(shares) if shares else None)


def init_checkpoint(config: dict, key: str) -> Path:
    """The checkpoint ``init.<key>`` names, or a clear stop when it is missing."""
    path = resolve(config["init"][key])
    if not path.exists():
        raise SystemExit(
            f"init.{key}: {path} not found. It comes from the simulated run (`make train`, "
            f"runs/enhancer-0.1.0); run that first, or set init.{key} to null in the config"
        )
    return path


def selection_score(pooled: float, per_source: dict, rule: str) -> float:
    """The validation number a role's checkpoints are ranked by.

    ``pooled``: AUROC over every validation window (0.2.0). ``mean_source``: the mean of the
    per-source AUROCs, so that a source with few windows or another base rate (iEnhancer's 302
    sequence-only records) counts as much as the others.
    """
    if rule == "pooled":
        return pooled
    if rule == "mean_source":
        return float(np.mean(list(per_source.values())))
    raise ValueError(f"selection {rule!r}: expected 'pooled' or 'mean_source'")


def epochs_since_best(history: dict, finished: int) -> int:
    """Epochs finished since the best one (0 before any epoch; all of them when none was best)."""
    if not history["epochs"]:
        return 0
    return finished - history.get("best_epoch", 0)


def fit(role: str, config: dict, sets: dict, run_dir: Path, device: torch.device, resume: bool) -> dict:
    """Train one role; keeps the checkpoint with the best validation score (:func:`selection_score`).

    With ``patience`` set in the role's config, training stops once that many epochs in a row
    have not improved the score (``epochs`` is then the most it runs).
    """
    cfg = config[role]
    seed = int(config.get("training_seed", config["seed"]))
    stage_id = ROLES.index(role) + 1
    stage_dir = run_dir / role
    stage_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed * 10 + stage_id)
    model = build_model(role, config).to(device)
    init = config["init"]
    if role == "teacher" and init.get("teacher"):
        state = torch.load(init_checkpoint(config, "teacher"), map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        log(f"teacher: warm start from {init['teacher']}")
    elif role == "finetune":
        state = torch.load(run_dir / "teacher" / "best.pt", map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
    elif role in ("student", "scratch", "moe") and init.get("motifs"):
        state = torch.load(init_checkpoint(config, "motifs"), map_location=device, weights_only=False)
        model.sequence_stem.motif.load_state_dict(state["motif"])
    if (
        init.get("jaspar_motifs")
        and role in ("teacher", "student", "scratch", "moe")
        and not init.get("teacher" if role == "teacher" else "motifs")
    ):
        motifs = read_jaspar(data_path(config, "jaspar"))
        conv = model.sequence_stem.motif
        weight, bias = jaspar_filters(
            [m.probabilities for m in motifs.values()], conv.out_channels, conv.kernel_size[0], seed
        )
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
        log(f"{role}: motif filters from {conv.out_channels} JASPAR matrices (seed {seed})")
    teacher = None
    if role in DISTILLED:
        teacher = load_teacher(run_dir, cfg, config, device)
        for p in teacher.parameters():
            p.requires_grad_(False)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    train = sources.Mixed([sets[s]["train"] for s in config["sources"]["use"]])
    val = sources.Mixed([sets[s]["validation"] for s in config["sources"]["use"]])
    n, bs, epochs = len(train), int(cfg["batch_size"]), int(cfg["epochs"])
    steps_per_epoch = math.ceil(n / bs)
    total_steps = epochs * steps_per_epoch
    downsample = role in ("student", "scratch", "finetune", "moe")
    history: dict = {"epochs": [], "parameters": parameter_count(model), "train_seconds": 0.0}
    last = stage_dir / "last.pt"
    history, best_auroc, start_epoch = resume_stage(
        last, model, optimiser, device, resume, role, epochs, history
    )
    if start_epoch >= epochs:
        log(f"{role}: already trained ({epochs} epochs)")
        return history
    every = int(config["progress_every"])
    rule = cfg.get("selection", "pooled")
    patience = cfg.get("patience")
    for epoch in range(start_epoch, epochs):
        since_best = epochs_since_best(history, epoch)
        if patience is not None and since_best >= int(patience):
            log(f"{role}: stopped after epoch {epoch}: {since_best} epochs without a better {rule} score")
            history["stopped_early_after"] = epoch
            break
        torch.manual_seed(seed * 1000 + stage_id * 100 + epoch)
        rng = np.random.default_rng([seed, stage_id, epoch])
        order = rng.permutation(n)
        model.train()
        t0, running, seen = time.time(), 0.0, 0
        for step in range(steps_per_epoch):
            global_step = epoch * steps_per_epoch + step
            lr = lr_at(global_step, total_steps, cfg["lr"], cfg["warmup_steps"], cfg["min_lr_fraction"])
            for group in optimiser.param_groups:
                group["lr"] = lr
            idx = order[step * bs : (step + 1) * bs]
            mask = present_mask(train.available[idx], cfg["modality_dropout"], rng)
            y = torch.from_numpy(train.label[idx]).to(device)
            if downsample:
                fractions = np.where(
                    rng.random(len(idx)) < cfg["downsampled_fraction"],
                    rng.choice(cfg["coverage_fractions"], size=len(idx)),
                    1.0,
                )
                signals = train.signals(idx, fractions, rng)
            else:
                signals = train.full[idx]
            # reverse-complement augmentation: each window on a random strand (the teacher reads
            # the same strand as the student)
            flip = rng.random(len(idx)) < 0.5 if cfg.get("reverse_complement", False) else None
            logit = model.logits(**tensors(train, idx, signals, mask, device, flip), fast=True)
            alpha = 1.0
            if teacher is not None:
                with torch.no_grad():
                    t_logit = teacher.logits(
                        **tensors(train, idx, train.full[idx], mask, device, flip), fast=True
                    )
                alpha = alpha_schedule(
                    global_step / max(total_steps - 1, 1), cfg["alpha_start"], cfg["alpha_end"]
                )
                loss, _, _ = distillation_loss(logit, t_logit, y, alpha, cfg["temperature"])
            else:
                loss = F.binary_cross_entropy_with_logits(logit, y)
            if isinstance(model, AttLightEnhancer) and model.config.moe_experts > 0:
                loss = loss + float(cfg.get("moe_balance", 0.01)) * model.balance_loss()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            optimiser.step()
            running += loss.item() * len(idx)
            seen += len(idx)
            if (step + 1) % every == 0 or step + 1 == steps_per_epoch:
                rate = seen / (time.time() - t0)
                left = (n - seen) / rate + (epochs - epoch - 1) * n / rate
                log(
                    f"{role} epoch {epoch + 1}/{epochs} step {step + 1}/{steps_per_epoch} "
                    f"loss {running / seen:.4f} "
                    f"lr {lr:.2e} alpha {alpha:.2f} {rate:.1f} windows/s ETA stage {format_seconds(left)}"
                )
        train_seconds = time.time() - t0
        logits, _ = predict(model, val, val.full, val.available, config["evaluation"]["batch_size"], device)
        pooled = metrics.auroc(val.label, logits)
        per_source = {}
        for i, src in enumerate(config["sources"]["use"]):
            sel = val.source == i
            if len(np.unique(val.label[sel])) == 2:
                per_source[src] = metrics.auroc(val.label[sel], logits[sel])
        score = selection_score(pooled, per_source, rule)
        record = {
            "epoch": epoch + 1,
            "train_loss": running / seen,
            "validation_score": score,
            "validation_auroc": pooled,
            "validation_auroc_by_source": per_source,
            "train_seconds": train_seconds,
            "windows_per_second": n / train_seconds,
        }
        history["epochs"].append(record)
        history["train_seconds"] += train_seconds
        log(
            f"{role} epoch {epoch + 1}/{epochs} done in {format_seconds(train_seconds)}: "
            f"loss {record['train_loss']:.4f} "
            f"validation AUROC {pooled:.4f} ("
            + ", ".join(f"{k} {v:.3f}" for k, v in per_source.items())
            + ")"
        )
        if score > best_auroc:
            best_auroc = score
            history["best_epoch"] = epoch + 1
            save_checkpoint(
                stage_dir / "best.pt",
                model=model.state_dict(),
                epoch=epoch,
                validation_auroc=pooled,
                validation_score=score,
                **_model_config(model),
            )
        save_checkpoint(
            last,
            model=model.state_dict(),
            optimiser=optimiser.state_dict(),
            epoch=epoch,
            history=history,
            best_auroc=best_auroc,
            **_model_config(model),
        )
    (stage_dir / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    return history


def _model_config(model: nn.Module) -> dict:
    return {"model_config": model.config.to_dict()} if isinstance(model, AttLightEnhancer) else {}


def _mean_sd(values: list[dict], key: str) -> dict:
    v = np.array([d[key] for d in values], dtype=np.float64)
    return {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0}


def fit_calibrations(models: dict, sets: dict, config: dict, device) -> tuple[dict, dict]:
    """Each model's calibration (:mod:`.calibration`) and how its method was chosen.

    Fitted on the pooled validation windows of every source at full coverage (each window with
    its source's modality mask); ``evaluation.calibration`` names the method (one of
    :data:`calibration.METHODS`), ``auto`` picks per model the method with the lowest
    cross-fitted validation ECE on its worst source (:func:`calibration.choose`), ``null``: none.
    """
    method = config["evaluation"].get("calibration")
    if not method:
        return {}, {}
    val = sources.Mixed([sets[s]["validation"] for s in config["sources"]["use"]])
    fitted_on = f"validation split ({', '.join(config['sources']['use'])}; {len(val)} windows, full coverage)"
    names = np.array(config["sources"]["use"])[val.source]
    out, choices = {}, {}
    for role, model in models.items():
        logits, _ = predict(model, val, val.full, val.available, config["evaluation"]["batch_size"], device)
        chosen = method
        if method == "auto":
            chosen, table = calibration.choose(val.label, logits, val.available, names, metrics.ece)
            choices[role] = {"chosen": chosen, "cross_fitted_validation_ece": table}
            log(
                f"calibration {role}: {chosen} (cross-fitted validation ECE, worst source: "
                + ", ".join(f"{m} {max(t.values()):.3f}" for m, t in table.items() if "error" not in t)
                + ")"
            )
        out[role] = calibration.fit(val.label, logits, chosen, fitted_on, val.available)
        log(f"calibration {role}: {json.dumps(out[role])[:160]}")
    return out, choices


def thinned_signals(data: sources.SourceSet, config: dict) -> dict[float, list[np.ndarray]]:
    """The test signals of ``data`` thinned to each coverage level below 1.

    ``coverage_seeds`` draws each, fixed by the run's seed (so every model and every run of the
    same seed sees the same inputs); empty for a source without signals.
    """
    ev = config["evaluation"]
    if not data.has_signal():
        return {}
    mixed = sources.Mixed([data])
    seed = int(config["seed"])
    return {
        level: [
            mixed.signals(
                np.arange(len(data)),
                np.full(len(data), level),
                np.random.default_rng([seed, 7, round(level * 1e6), rep]),
            )
            for rep in range(int(ev["coverage_seeds"]))
        ]
        for level in ev["coverage_levels"]
        if level < 1.0
    }


def evaluate_source(
    models: dict, data: sources.SourceSet, config: dict, device, calibrations: dict | None = None
) -> dict:
    """Every model on one source's test split (identical thinned inputs for every model).

    With ``calibrations`` (role -> fitted calibration), ``full_calibrated`` holds the full-coverage
    metrics of the calibrated probabilities beside the raw ones.
    """
    ev = config["evaluation"]
    mixed = sources.Mixed([data])
    y = data.label
    avail = data.available
    bs = ev["batch_size"]
    thinned = thinned_signals(data, config)
    out: dict = {
        "windows": len(data),
        "positives": int(y.sum()),
        "classes": {c: int(np.sum(data.klass == i)) for i, c in enumerate(data.classes)},
        "chromosomes": sorted(set(data.chrom.tolist())),
        "models": {},
    }
    for role, model in models.items():
        t0 = time.time()
        logits, shares = predict(model, mixed, mixed.full, avail, bs, device, share=True)
        p = sigmoid(logits)
        r: dict = {"full": metrics.summary(y, p, ev["threshold"], ev["ece_bins"], floor=True)}
        if calibrations and role in calibrations:
            p_cal = calibration.apply(calibrations[role], logits, avail)
            r["full_calibrated"] = metrics.summary(y, p_cal, ev["threshold"], ev["ece_bins"], floor=True)
        r["mean_probability_by_class"] = {
            c: float(p[data.klass == i].mean()) for i, c in enumerate(data.classes) if np.any(data.klass == i)
        }
        if shares is not None:
            called = p >= ev["threshold"]
            r["attention_share_on_predicted_enhancers"] = {
                "n_windows": int(called.sum()),
                **{
                    m: (float(shares[called, i].mean()) if called.any() else None)
                    for i, m in enumerate(encode.MODALITIES)
                },
            }
        r["coverage"] = {}
        for level, reps in thinned.items():
            runs = [
                metrics.summary(
                    y,
                    sigmoid(predict(model, mixed, sig, avail, bs, device)[0]),
                    ev["threshold"],
                    ev["ece_bins"],
                )
                for sig in reps
            ]
            r["coverage"][f"{round(level * 100):g}%"] = {
                k: _mean_sd(runs, k) for k in ("auroc", "auprc", "f1", "ece")
            } | {"seeds": len(runs)}
        r["ablation"] = {}
        for i, name in enumerate(encode.MODALITIES):
            if not avail[:, i].all() or avail.sum(1).min() < 2:
                continue
            mask = avail.copy()
            mask[:, i] = 0.0
            auc = metrics.auroc(y, predict(model, mixed, mixed.full, mask, bs, device)[0])
            r["ablation"][f"without_{name}"] = {"auroc": auc, "delta_auroc": auc - r["full"]["auroc"]}
        r["seconds"] = time.time() - t0
        out["models"][role] = r
        log(
            f"evaluate {data.source} {role}: AUROC {r['full']['auroc']:.4f} AUPRC {r['full']['auprc']:.4f} "
            f"F1 {r['full']['f1']:.3f} ECE {r['full']['ece']:.3f}; "
            + " ".join(f"{k}:{v['auroc']['mean']:.3f}" for k, v in r["coverage"].items())
            + f" ({format_seconds(r['seconds'])})"
        )
    return out


def _ece_cell(summary: dict) -> str:
    """``ECE (floor)``: the floor is the ECE a perfectly calibrated model would show on these windows."""
    floor = summary.get("ece_floor")
    return f"{summary['ece']:.3f} ({floor['mean']:.3f})" if floor else f"{summary['ece']:.3f}"


def tables(result: dict) -> str:
    """Markdown tables of ``metrics.json`` (the model card quotes them)."""
    lines = []
    roles = [r for r in result["models"]]
    for src, res in result["test"].items():
        lines.append(
            f"### {src}: {res['windows']:,} test windows ({res['positives']:,} positive), "
            f"{', '.join(res['chromosomes'][:6])}{' ...' if len(res['chromosomes']) > 6 else ''}\n"
        )
        levels = ["100%"] + list(next(iter(res["models"].values()))["coverage"])
        ece_levels = [lv for lv in ("10%", "1%") if lv in levels]
        lines.append(
            "| model | "
            + " | ".join(f"AUROC {lv}" for lv in levels)
            + " | AUPRC 100% | F1 100% | ECE 100% |"
            + ("".join(f" ECE {lv} |" for lv in ece_levels))
            + " ECE 100% calibrated (floor) |"
        )
        lines.append("|---|" + "---:|" * (len(levels) + 4 + len(ece_levels)))
        for role in roles:
            m = res["models"].get(role)
            if m is None:
                continue
            cells = [f"{m['full']['auroc']:.3f}"] + [
                f"{m['coverage'][lv]['auroc']['mean']:.3f} ± {m['coverage'][lv]['auroc']['sd']:.3f}"
                for lv in levels[1:]
            ]
            cells += [f"{m['full']['auprc']:.3f}", f"{m['full']['f1']:.3f}", f"{m['full']['ece']:.3f}"]
            cells += [f"{m['coverage'][lv]['ece']['mean']:.3f}" for lv in ece_levels]
            cal = m.get("full_calibrated")
            cells.append(_ece_cell(cal) if cal else "-")
            lines.append(f"| {role} | " + " | ".join(cells) + " |")
        lines.append("")
        abl = [(role, res["models"][role]) for role in roles if res["models"].get(role, {}).get("ablation")]
        if abl:
            lines.append(
                "| model | "
                + " | ".join(f"Δ AUROC {k.removeprefix('without_')} masked" for k in abl[0][1]["ablation"])
                + " | attention share seq / H3K27ac / acc. (n) |"
            )
            lines.append("|---|" + "---:|" * (len(abl[0][1]["ablation"]) + 1))
            for role, m in abl:
                share = m.get("attention_share_on_predicted_enhancers")
                s = (
                    f"{share['sequence']:.3f} / {share['h3k27ac']:.3f} / {share['accessibility']:.3f} "
                    f"({share['n_windows']})"
                    if share and share["sequence"] is not None
                    else "-"
                )
                lines.append(
                    f"| {role} | "
                    + " | ".join(f"{v['delta_auroc']:+.3f}" for v in m["ablation"].values())
                    + f" | {s} |"
                )
            lines.append("")
    lines.append(
        "ECE floor (in brackets): the mean ECE of a perfectly calibrated model with the same "
        "probabilities on the same number of windows (labels drawn from the probabilities, 200 "
        "draws); the binned estimator cannot go much below it on sets this size.\n"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description="Train and evaluate the enhancer models on every labelled source."
    )
    parser.add_argument(
        "--config", type=Path, required=True, help="run config JSON (merged over the defaults)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoints")
    parser.add_argument("--stage", choices=["data", *ROLES, "evaluate", "all"], default="all")
    parser.add_argument(
        "--run-dir", type=Path, help="default: <runs_dir>/<name>, or <name>-seed<N> with --seed"
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="training seed (overrides the config's; the data, split and thinning keep the config's seed)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    args = parser.parse_args(argv)
    config = with_moe(load_config(args.config, defaults=sources.defaults()))
    name = config["name"] if args.seed is None else f"{config['name']}-seed{args.seed}"
    if args.seed is not None:
        config["training_seed"] = args.seed
    run_dir = args.run_dir or resolve(config["runs_dir"]) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    pin_run_config(run_dir, config)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = pick_device()
    log(f"run {run_dir} on {device} with {torch.get_num_threads()} threads")
    t_start = time.time()
    sets = sources.build(config, run_dir / "data", log)
    (run_dir / "split.json").write_text(json.dumps(sources.describe(sets), indent=2) + "\n")
    if args.stage == "data":
        return 0
    histories = {}
    for role in config["roles"]:
        if args.stage in (role, "all"):
            histories[role] = fit(role, config, sets, run_dir, device, args.resume)
    if args.stage in ("evaluate", "all"):
        models = {role: load_role(run_dir, role, config, device) for role in config["roles"]}
        for name, path in config["evaluation"].get("reference_models", {}).items():
            p = resolve(path)
            if p.exists():
                state = torch.load(p, map_location=device, weights_only=False)
                m = AttLightEnhancer(ModelConfig.from_dict(state["model_config"])).to(device)
                m.load_state_dict(state["model"])
                models[name] = m.eval()
            else:
                log(f"reference model {name}: {p} not found, skipped")
        result: dict = {
            "seed": config["seed"],
            "config": config.get("config_path"),
            "split": json.loads((run_dir / "split.json").read_text()),
            "models": {},
            "test": {},
        }
        for role, model in models.items():
            history_path = run_dir / role / "history.json"
            result["models"][role] = {
                "parameters": parameter_count(model),
                "active_parameters": active_parameter_count(model),
                "gflop_per_window": (flops_per_window(model) / 1e9)
                if isinstance(model, AttLightEnhancer)
                else None,
                "training": json.loads(history_path.read_text()) if history_path.exists() else None,
            }
        result["student_teacher_parameter_ratio"] = (
            result["models"]["student"]["parameters"] / result["models"]["teacher"]["parameters"]
            if {"student", "teacher"} <= set(models)
            else None
        )
        calibrations, choices = fit_calibrations(
            {r: m for r, m in models.items() if r in config["roles"]}, sets, config, device
        )
        result["calibration"] = calibrations
        result["calibration_choice"] = choices
        for src in config["sources"]["use"]:
            result["test"][src] = evaluate_source(models, sets[src]["test"], config, device, calibrations)
        result["wall_seconds_this_invocation"] = time.time() - t_start
        (run_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        (run_dir / "tables.md").write_text(tables(result))
        log(f"wrote {run_dir / 'metrics.json'} and tables.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
